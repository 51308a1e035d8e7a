/*
 * tools/cmd_convert.c — `ignis convert`: writes a dataset (anything ig_dataset_open reads:
 * IDX, CIFAR binary, PNG folders) out as PNG image folders OUT/train/<class>/<index>.png and
 * OUT/test/..., the layout ig_dataset_open detects, so the PNG reader runs on real images
 * and `ignis train --data OUT` trains from them. --stats prints the per-channel mean and
 * standard deviation of each split (the numbers a Normalize transform wants), with or
 * without writing anything.
 */
#include <dirent.h>
#include <errno.h>
#include <ignis.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_impl.h"

/* True when path is a folder holding at least one entry besides . and .. */
static bool nonempty_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d) return false;
    struct dirent *e;
    bool any = false;
    while (!any && (e = readdir(d)) != NULL) any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return any;
}

static int convert_split(const char *data, const char *out, bool train, int64_t limit, bool stats) {
    const char *split = train ? "train" : "test";
    ig_dataset *full = ig_dataset_open(data, train);
    if (!full) return cli_error(EXIT_FAILED, "%s", ig_last_error());
    ig_dataset *d = full, *sub = NULL;
    int64_t n = ig_dataset_len(full);
    if (limit >= 0 && limit < n) {
        int64_t *idx = malloc((size_t)(limit ? limit : 1) * sizeof *idx);
        if (!idx) {
            ig_dataset_free(full);
            return cli_error(EXIT_FAILED, "convert: out of memory");
        }
        for (int64_t i = 0; i < limit; i++) idx[i] = i;
        sub = ig_dataset_subset(full, idx, limit);
        free(idx);
        if (!sub) {
            ig_dataset_free(full);
            return cli_error(EXIT_FAILED, "%s", ig_last_error());
        }
        d = sub;
        n = limit;
    }
    int64_t shape[3] = {0, 0, 0};
    int nd = ig_dataset_item_shape(d, shape);
    char shape_txt[80];
    if (nd == 3) snprintf(shape_txt, sizeof shape_txt, "[%lld,%lld,%lld]", (long long)shape[0], (long long)shape[1], (long long)shape[2]);
    else if (nd == 2) snprintf(shape_txt, sizeof shape_txt, "[%lld,%lld]", (long long)shape[0], (long long)shape[1]);
    else snprintf(shape_txt, sizeof shape_txt, "[%lld]", (long long)shape[0]);
    int status = EXIT_OK;
    if (stats) {
        int channels = nd == 3 ? (int)shape[0] : 1;
        double *mean = calloc((size_t)channels, sizeof *mean), *std = calloc((size_t)channels, sizeof *std);
        if (!mean || !std) status = cli_error(EXIT_FAILED, "convert: out of memory");
        else if (n == 0) status = cli_error(EXIT_FAILED, "convert: %s split of %s is empty: no statistics", split, data);
        else if (ig_dataset_mean_std(d, mean, std) != IG_OK) status = cli_error(EXIT_FAILED, "%s", ig_last_error());
        else {
            printf("%s: %lld images of %s, %d classes\n  mean:", split, (long long)n, shape_txt, ig_dataset_num_classes(d));
            for (int c = 0; c < channels; c++) printf(" %.4f", mean[c]);
            printf("\n  std: ");
            for (int c = 0; c < channels; c++) printf(" %.4f", std[c]);
            printf("\n");
        }
        free(mean);
        free(std);
    }
    if (status == EXIT_OK && out) {
        size_t len = strlen(out) + strlen(split) + 2;
        char *dir = malloc(len);
        if (!dir) status = cli_error(EXIT_FAILED, "convert: out of memory");
        else {
            snprintf(dir, len, "%s/%s", out, split);
            if (nonempty_dir(dir))
                status = cli_error(EXIT_FAILED, "convert: %s already exists and is not empty (remove it or choose "
                                   "another --out)", dir);
            else if (ig_dataset_export_png(d, dir) != IG_OK)
                status = cli_error(EXIT_FAILED, "%s", ig_last_error());
            else
                printf("%s: wrote %lld images of %s in %d class folders to %s\n", split, (long long)n, shape_txt,
                       ig_dataset_num_classes(d), dir);
            free(dir);
        }
    }
    fflush(stdout);
    ig_dataset_free(sub);
    ig_dataset_free(full);
    return status;
}

int cmd_convert(int argc, char **argv) {
    const char *data = "/usr/share/datasets/fashion-mnist";
    const char *out = NULL;
    const char *split = "both";
    int64_t limit = -1;
    bool stats = false, limit_seen = false;
    const cli_option opts[] = {
        {"data", CLI_STRING, &data, "DIR", "the dataset: IDX, CIFAR binary or PNG folders, detected "
                                           "(default /usr/share/datasets/fashion-mnist)", NULL},
        {"out", CLI_STRING, &out, "DIR", "write OUT/train/<class>/<index>.png and OUT/test/...", NULL},
        {"split", CLI_STRING, &split, "S", "train, test or both (default both)", NULL},
        {"limit", CLI_INT, &limit, "N", "only the first N images of each split", &limit_seen},
        {"stats", CLI_FLAG, &stats, NULL, "print each split's per-channel mean and std (for Normalize)", NULL},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    int rc = cli_parse("convert", "[--data DIR] (--out DIR | --stats) [--split train|test|both] [--limit N]",
                       "Writes a dataset as PNG image folders (OUT/train/<class>/<index>.png and OUT/test/...),\n"
                       "the layout that --data reads, and/or prints its per-channel mean and std (--stats).",
                       argc, argv, opts, nopts, NULL, NULL, 0);
    if (rc < 0) return EXIT_OK;
    if (rc) return rc;
    bool do_train = strcmp(split, "train") == 0 || strcmp(split, "both") == 0;
    bool do_test = strcmp(split, "test") == 0 || strcmp(split, "both") == 0;
    if (!do_train && !do_test)
        return cli_error(EXIT_USAGE, "convert: --split: '%s' is not train, test or both", split);
    if (limit_seen && limit < 0)
        return cli_error(EXIT_USAGE, "convert: --limit: %lld is negative", (long long)limit);
    if (!out && !stats) return cli_error(EXIT_USAGE, "convert: give --out DIR, --stats, or both");
    if (out) {
        /* The parent of the splits (one level); export creates the split folders. */
        struct stat sb;
        if (mkdir(out, 0777) != 0 && errno != EEXIST)
            return cli_error(EXIT_FAILED, "convert: cannot create %s: %s", out, strerror(errno));
        if (stat(out, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return cli_error(EXIT_FAILED, "convert: %s exists and is not a folder", out);
    }
    int status = EXIT_OK;
    if (do_train) status = convert_split(data, out, true, limit, stats);
    if (status == EXIT_OK && do_test) status = convert_split(data, out, false, limit, stats);
    return status;
}
