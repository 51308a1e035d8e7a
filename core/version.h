/*
 * core/version.h - the version of ignis, at compile time and at run time.
 *
 * The IG_VERSION_* macros describe the headers a program was compiled against;
 * ig_version() reports the library it is actually running with. Comparing the
 * two catches a program built against one release and loaded with another.
 * The Makefile reads IG_VERSION_STRING from this file to name the shared
 * library and fill in ignis.pc, so this is the one place the version is set.
 *
 * This header stands alone: it needs nothing else from ignis.
 */
#ifndef IG_CORE_VERSION_H
#define IG_CORE_VERSION_H

/* Marks a symbol as part of the public ABI; the library is compiled with
 * -fvisibility=hidden, so everything without it stays internal. */
#ifndef IG_API
#define IG_API __attribute__((visibility("default")))
#endif

#define IG_VERSION_MAJOR 0
#define IG_VERSION_MINOR 1
#define IG_VERSION_PATCH 0
#define IG_VERSION_STRING "0.1.0"

/* Returns the version of the running library as "MAJOR.MINOR.PATCH", e.g.
 * "0.1.0". The string is static: never free it. Never fails. */
IG_API const char *ig_version(void);

#endif /* IG_CORE_VERSION_H */
