/*
 * tests/data/test_csv.c — numeric CSV: values and labels read back (label column first,
 * middle or counted from the end; header skipped; CRLF, blank lines and spaces accepted),
 * num_classes; and the bad inputs: ragged rows, non-numeric / empty / non-finite fields,
 * labels that are negative, fractional or too large, empty files, a header with no rows,
 * a missing label column, a missing file and a folder in its place. Then the edges found by
 * fuzzing and by reading the parser: features beyond float's range, numbers longer than the
 * parser's stack buffer, a UTF-8 byte-order mark, white space strtod would skip, labels
 * beyond every integer type, one very wide row (memory bounded by the file).
 */
#include <float.h>
#include <sys/resource.h>

#include "data_fixtures.h"


static ig_dataset *csv_from(const char *dir, const char *text, int label_column, bool header, char *path) {
    write_bytes(path_in(path, dir, "d.csv"), text, strlen(text));
    return ig_dataset_csv(path, label_column, header);
}

Test(data, csv_round_trip_label_last) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    ig_dataset *d = csv_from(dir,
                             "f1,f2,f3,label\r\n"
                             "1.5, -2 ,3e2,0\r\n"
                             "\r\n"
                             "0,0.25,\t7,4\n"
                             "   \n"
                             "-1,1,1,2", /* no final newline */
                             -1, true, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 3);
    int64_t shape[3];
    cr_assert_eq(ig_dataset_item_shape(d, shape), 1);
    cr_assert_eq(shape[0], 3);
    cr_assert_eq(ig_dataset_num_classes(d), 5);
    const float want[3][3] = {{1.5f, -2.0f, 300.0f}, {0.0f, 0.25f, 7.0f}, {-1.0f, 1.0f, 1.0f}};
    const int64_t labels[3] = {0, 4, 2};
    for (int i = 0; i < 3; i++) {
        float x[3];
        int64_t y;
        cr_assert_eq(ig_dataset_get(d, i, x, &y), IG_OK);
        cr_assert_eq(y, labels[i]);
        for (int k = 0; k < 3; k++) cr_assert_eq(x[k], want[i][k]);
    }
    ig_dataset_free(d);
    rm_tree(dir);
}

Test(data, csv_label_column_first_and_middle) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    ig_dataset *d = csv_from(dir, "1,10,20\n0,30,40\n", 0, false, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    float x[2];
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_OK);
    cr_assert(y == 1 && x[0] == 10.0f && x[1] == 20.0f);
    ig_dataset_free(d);
    d = csv_from(dir, "10,1,20\n30,3.0,40\n", 1, false, p); /* "3.0" is an integer */
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_get(d, 1, x, &y), IG_OK);
    cr_assert(y == 3 && x[0] == 30.0f && x[1] == 40.0f);
    cr_assert_eq(ig_dataset_num_classes(d), 4);
    ig_dataset_free(d);
    d = csv_from(dir, "10,1,20\n", -2, false, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_OK);
    cr_assert(y == 1 && x[1] == 20.0f);
    ig_dataset_free(d);
    rm_tree(dir);
}

static void expect_csv_fails(const char *text, int label_column, bool header, const char *problem) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    ig_clear_error();
    cr_assert_null(csv_from(dir, text, label_column, header, p), "accepted: %s", text);
    cr_assert_neq(ig_last_status(), IG_OK);
    expect_error("ig_dataset_csv", p, problem);
    rm_tree(dir);
}

Test(data, csv_ragged_rows) {
    expect_csv_fails("1,2,0\n3,4\n", -1, false, "line 2: ragged row of 2 fields, expected 3 (as line 1)");
    expect_csv_fails("h\n1,2,0\n\n3,4,5,0\n", -1, true, "line 4: ragged row of 4 fields, expected 3 (as line 2)");
}

Test(data, csv_non_numeric_fields) {
    expect_csv_fails("1,2,0\n3,abc,1\n", -1, false, "line 2, field 2: \"abc\" is not a number");
    expect_csv_fails("1,,0\n", -1, false, "line 1, field 2: \"\" is not a number");
    expect_csv_fails("1,2x,0\n", -1, false, "\"2x\" is not a number");
    expect_csv_fails("\"1\",2,0\n", -1, false, "field 1: \"\"1\"\" is not a number");
    expect_csv_fails("nan,2,0\n", -1, false, "\"nan\" is not a number");
    expect_csv_fails("1,inf,0\n", -1, false, "\"inf\" is not a number");
    expect_csv_fails("1,1e999,0\n", -1, false, "\"1e999\" is not a number");
    expect_csv_fails("1,2,zero\n", -1, false, "field 3: \"zero\" is not a number");
}

Test(data, csv_labels_out_of_range) {
    expect_csv_fails("1,2,-1\n", -1, false, "line 1: label -1 out of range");
    expect_csv_fails("1,2,0\n1,2,2.5\n", -1, false, "line 2: label 2.5 out of range");
    expect_csv_fails("1,2,65536\n", -1, false, "label 65536 out of range (a class in 0..65535)");
}

Test(data, csv_empty_and_columns) {
    expect_csv_fails("", -1, false, "no data rows");
    expect_csv_fails("\n\n  \n", -1, false, "no data rows");
    expect_csv_fails("a,b,label\n", -1, true, "no data rows after the header");
    expect_csv_fails("1,2,0\n", 3, false, "label column 3 does not exist (line 1 has 3 fields)");
    expect_csv_fails("1,2,0\n", -4, false, "label column -4 does not exist");
    expect_csv_fails("0\n1\n", 0, false, "only the label column");
}

Test(data, csv_unreadable) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    cr_assert_null(ig_dataset_csv(path_in(p, dir, "none.csv"), -1, false));
    expect_error("ig_dataset_csv", p, "cannot open");
    cr_assert_eq(ig_last_status(), IG_ERR_IO);
    mkdir_p(p);
    cr_assert_null(ig_dataset_csv(p, -1, false));
    expect_error(p, "not a regular file");
    ig_clear_error();
    cr_assert_null(ig_dataset_csv(NULL, -1, false));
    expect_error("ig_dataset_csv", "path");
    rm_tree(dir);
}

/* Found by tests/fuzz/fuzz_csv.c: a finite double beyond float's range became an infinite
 * feature. Now an error naming the field; values that round to FLT_MAX are kept as that. */
Test(data, csv_features_outside_float_range) {
    expect_csv_fails("1,4e38,0\n", -1, false, "line 1, field 2: \"4e38\" is outside the float range");
    expect_csv_fails("1,2,0\n-1e300,2,1\n", -1, false, "line 2, field 1: \"-1e300\" is outside the float range");
    expect_csv_fails("3.40282357e38,0\n", -1, false, "\"3.40282357e38\" is outside the float range");
    char dir[256], p[1024];
    make_tmpdir(dir);
    /* FLT_MAX to 8 digits is just above FLT_MAX; 1e-50 is below the smallest float: 0. */
    ig_dataset *d = csv_from(dir, "3.4028235e38,-3.4028235e38,1e-50,-0,1\n", -1, false, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    float x[4];
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_OK);
    cr_assert(x[0] == FLT_MAX && x[1] == -FLT_MAX && x[2] == 0.0f && x[3] == 0.0f && y == 1);
    ig_dataset_free(d);
    rm_tree(dir);
}

/* Numbers longer than the parser's 64-byte stack buffer were refused as "not a number". */
Test(data, csv_long_numbers) {
    char dir[256], p[1024], text[1024];
    make_tmpdir(dir);
    /* "0.000...0125" (300 digits after the point would underflow: keep it to 100 zeros and
     * scale back with e101), a 200-digit integer of leading zeros, a long label "000...3". */
    size_t k = 0;
    k += (size_t)snprintf(text + k, sizeof text - k, "0.");
    for (int i = 0; i < 100; i++) text[k++] = '0';
    k += (size_t)snprintf(text + k, sizeof text - k, "125e101,");
    for (int i = 0; i < 200; i++) text[k++] = '0';
    k += (size_t)snprintf(text + k, sizeof text - k, "7,");
    for (int i = 0; i < 80; i++) text[k++] = '0';
    snprintf(text + k, sizeof text - k, "3\n");
    ig_dataset *d = csv_from(dir, text, -1, false, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    float x[2];
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_OK);
    cr_assert(x[0] == 1.25f && x[1] == 7.0f && y == 3, "%g %g %lld", (double)x[0], (double)x[1], (long long)y);
    ig_dataset_free(d);
    rm_tree(dir);
    /* A long field that is not a number is reported shortened. */
    memset(text, '9', 300);
    memcpy(text + 300, "x,0\n", 5);
    expect_csv_fails(text, -1, false, "field 1: \"999999999999999999999999...\" is not a number");
}

/* A UTF-8 byte-order mark (as spreadsheet programs write) made the first field unreadable. */
Test(data, csv_utf8_bom_skipped) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    ig_dataset *d = csv_from(dir, "\xEF\xBB\xBF" "2.5,1\n", -1, false, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    float x;
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, &x, &y), IG_OK);
    cr_assert(x == 2.5f && y == 1);
    ig_dataset_free(d);
    /* With a header the mark is part of the skipped line either way. */
    d = csv_from(dir, "\xEF\xBB\xBF" "a,label\n2.5,1\n", -1, true, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 1);
    ig_dataset_free(d);
    rm_tree(dir);
    /* Only at the start of the file. */
    expect_csv_fails("1,0\n\xEF\xBB\xBF" "1,0\n", -1, false, "line 2, field 1: \"???1\" is not a number");
}

/* strtod skips \v, \f and \r before a number; the documented separators are spaces and tabs. */
Test(data, csv_other_white_space_refused) {
    expect_csv_fails("\v1,2,0\n", -1, false, "line 1, field 1: \"?1\" is not a number");
    expect_csv_fails("1,\f2,0\n", -1, false, "field 2: \"?2\" is not a number");
    expect_csv_fails("1,2,0\r\n1,\r2,0\r\n", -1, false, "line 2, field 2: \"?2\" is not a number");
}

/* Labels that no integer type holds, or that are not numbers, fail before any conversion. */
Test(data, csv_labels_extreme) {
    expect_csv_fails("1,2,1e300\n", -1, false, "line 1: label 1e+300 out of range");
    expect_csv_fails("1,2,9223372036854775808\n", -1, false, "label 9.22337e+18 out of range");
    expect_csv_fails("1,2,-9223372036854775809\n", -1, false, "label -9.22337e+18 out of range");
    expect_csv_fails("1,2,nan\n", -1, false, "field 3: \"nan\" is not a number");
    expect_csv_fails("1,2,-inf\n", -1, false, "field 3: \"-inf\" is not a number");
    expect_csv_fails("1,2,1e999\n", -1, false, "field 3: \"1e999\" is not a number");
    expect_csv_fails("1,2,0.5e0\n", -1, false, "label 0.5 out of range");
    /* -0 and 3.0e0 are integers. */
    char dir[256], p[1024];
    make_tmpdir(dir);
    ig_dataset *d = csv_from(dir, "1,-0\n2,3.0e0\n", -1, false, p);
    cr_assert_not_null(d, "%s", ig_last_error());
    float x;
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, &x, &y), IG_OK);
    cr_assert_eq(y, 0);
    cr_assert_eq(ig_dataset_get(d, 1, &x, &y), IG_OK);
    cr_assert_eq(y, 3);
    ig_dataset_free(d);
    rm_tree(dir);
}

/* One row of 2^21 features: the feature buffer started at 64 rows whatever the file held,
 * 512 MiB for a 4 MiB file. Now it never reserves more rows than the rest of the file can
 * hold. Outside ASan the address space is limited to 256 MiB above what the test uses, so
 * the old reservation fails ("out of memory for 64 rows"). */
Test(data, csv_wide_row_allocates_by_the_file) {
    const size_t F = (size_t)1 << 21;
    char *text = malloc(2 * (F + 1) + 1);
    cr_assert_not_null(text);
    for (size_t k = 0; k < F; k++) {
        text[2 * k] = (char)('0' + k % 7);
        text[2 * k + 1] = ',';
    }
    memcpy(text + 2 * F, "2\n", 3);
    char dir[256], p[1024];
    make_tmpdir(dir);
    write_bytes(path_in(p, dir, "wide.csv"), text, 2 * F + 2);
    free(text);
    struct rlimit old_lim, lim;
    cr_assert_eq(getrlimit(RLIMIT_AS, &old_lim), 0);
    /* (ASan reserves terabytes of address space: an address-space limit cannot work there) */
    if (!IG_TEST_ASAN) {
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        cr_assert_not_null(f);
        cr_assert_eq(fscanf(f, "%ld", &pages), 1);
        fclose(f);
        lim = old_lim;
        lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
        if (old_lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur < old_lim.rlim_cur)
            cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
    }
    ig_dataset *d = ig_dataset_csv(p, -1, false);
    if (!IG_TEST_ASAN) setrlimit(RLIMIT_AS, &old_lim);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 1);
    int64_t shape[3];
    cr_assert_eq(ig_dataset_item_shape(d, shape), 1);
    cr_assert_eq(shape[0], (int64_t)F);
    float *x = malloc(F * sizeof *x);
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_OK);
    cr_assert_eq(y, 2);
    size_t bad = 0;
    for (size_t k = 0; k < F; k++) bad += x[k] != (float)(k % 7);
    cr_assert_eq(bad, 0);
    free(x);
    ig_dataset_free(d);
    rm_tree(dir);
}
