/*
 * core/version.c - ig_version(), the run-time half of core/version.h.
 *
 * The string is compiled into the library, so a program can tell which build
 * of ignis it is linked with, whatever headers it was compiled against.
 */
#include "core/version.h"

const char *ig_version(void) {
    return IG_VERSION_STRING;
}
