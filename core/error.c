/*
 * core/error.c — the thread-local error state behind ig_last_error(), and the internal
 * assert. A library call that fails leaves its status and a message here; a successful
 * call does not clear them (as errno), so read them only after a failure.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tensor_impl.h"

#define IGI_ERROR_CAP 1024

static _Thread_local char error_msg[IGI_ERROR_CAP];
static _Thread_local ig_status error_status = IG_OK;

const char *ig_last_error(void) { return error_msg; }

ig_status ig_last_status(void) { return error_status; }

void ig_clear_error(void) {
    error_msg[0] = '\0';
    error_status = IG_OK;
}

const char *ig_status_name(ig_status s) {
    switch (s) {
    case IG_OK: return "ok";
    case IG_ERR_ARG: return "bad argument";
    case IG_ERR_SHAPE: return "shape mismatch";
    case IG_ERR_DTYPE: return "dtype mismatch";
    case IG_ERR_NOMEM: return "out of memory";
    case IG_ERR_IO: return "i/o error";
    case IG_ERR_FORMAT: return "bad format";
    case IG_ERR_DEVICE: return "device error";
    case IG_ERR_STATE: return "bad state";
    case IG_ERR_GRADCHECK: return "gradcheck mismatch";
    }
    return "unknown status";
}

ig_status igi_error(ig_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    igi_vsnprintf_c(error_msg, sizeof error_msg, fmt, ap);
    va_end(ap);
    error_status = st;
    return st;
}

ig_status igi_error_null(const char *op, const char *argname) {
    if (error_status == IG_OK) igi_error(IG_ERR_ARG, "%s: argument '%s' is NULL", op, argname);
    return IG_ERR_ARG;
}

_Noreturn void igi_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "ignis: internal error at %s:%d: assertion '%s' failed\n", file, line, expr);
    abort();
}
