/*
 * core/locale.c — numbers as text the same way whatever locale the host program chose.
 * strtod and the printf family follow LC_NUMERIC: after a host's setlocale(LC_ALL, "")
 * under de_DE.UTF-8, strtod("1.5") stops at the '.', and "%g" writes 0,1. ignis reads and
 * writes files (datasets, model descriptions, checkpoint metadata) that must be the same
 * bytes on every machine, so every number it parses or formats goes through here, in the
 * "C" locale. uselocale() switches only the calling thread, so this is thread-safe and
 * leaves the host's own formatting alone. All of it is POSIX.1-2008 (strtod_l would need
 * _GNU_SOURCE on glibc and <xlocale.h> on the BSDs).
 */
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tensor_impl.h"

static pthread_once_t c_once = PTHREAD_ONCE_INIT;
static locale_t c_locale = (locale_t)0; /* made once, kept for the process's lifetime */

static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* Switches this thread to the C locale; returns the locale to restore, or (locale_t)0 when
 * there is no C locale object (newlocale failed: then the thread's locale is used as is). */
static locale_t enter_c(void) {
    pthread_once(&c_once, make_c_locale);
    if (!c_locale) return (locale_t)0;
    return uselocale(c_locale);
}

static void leave_c(locale_t prev) {
    if (prev) uselocale(prev); /* prev may be LC_GLOBAL_LOCALE, which uselocale accepts */
}

double igi_strtod(const char *s, char **end) {
    locale_t prev = enter_c();
    errno = 0;
    double v = strtod(s, end);
    int err = errno; /* ERANGE stays visible to the caller; uselocale must not clobber it */
    leave_c(prev);
    errno = err;
    return v;
}

int igi_vsnprintf_c(char *buf, size_t cap, const char *fmt, va_list ap) {
    locale_t prev = enter_c();
    int n = vsnprintf(buf, cap, fmt, ap);
    leave_c(prev);
    return n;
}

int igi_snprintf_c(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = igi_vsnprintf_c(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

int igi_fprintf_c(FILE *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    locale_t prev = enter_c();
    int n = vfprintf(f, fmt, ap);
    leave_c(prev);
    va_end(ap);
    return n;
}
