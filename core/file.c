/*
 * core/file.c — opening a user's file for reading without the traps of plain fopen():
 * a FIFO (named pipe) would block open() until a writer appears, forever, and a folder
 * opens fine and fails only at the first read. Every reader of a path the user gives
 * (checkpoints, model descriptions, datasets, the CLI's images) opens through here, so
 * all of them refuse such a path at once with a message naming it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor_impl.h"

void igi_errno_text(int err, char *buf, size_t cap) {
    if (strerror_r(err, buf, cap) != 0) snprintf(buf, cap, "error %d", err);
}

const char *igi_file_kind(const struct stat *st) {
    mode_t m = st->st_mode;
    return S_ISDIR(m) ? " (a directory)" : S_ISFIFO(m) ? " (a FIFO)" : S_ISCHR(m) ? " (a character device)"
         : S_ISBLK(m) ? " (a block device)" : S_ISSOCK(m) ? " (a socket)" : "";
}

int igi_open_regular(const char *op, const char *path, struct stat *st) {
    char why[128];
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int err = errno;
        igi_errno_text(err, why, sizeof why);
        if (op) igi_error(IG_ERR_IO, "%s: %s: cannot open: %s", op, path, why);
        errno = err;
        return -1;
    }
    if (fstat(fd, st) != 0) {
        int err = errno;
        igi_errno_text(err, why, sizeof why);
        close(fd);
        if (op) igi_error(IG_ERR_IO, "%s: %s: cannot stat: %s", op, path, why);
        errno = err;
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        if (op) igi_error(IG_ERR_IO, "%s: %s: not a regular file%s", op, path, igi_file_kind(st));
        errno = 0; /* opened, but not a file: *st says what it is */
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK); /* reads of a regular file block as usual */
    return fd;
}

FILE *igi_fopen_regular(const char *op, const char *path, struct stat *st) {
    int fd = igi_open_regular(op, path, st);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int err = errno;
        char why[128];
        igi_errno_text(err, why, sizeof why);
        close(fd);
        if (op) igi_error(IG_ERR_IO, "%s: %s: cannot open: %s", op, path, why);
        errno = err;
    }
    return f;
}
