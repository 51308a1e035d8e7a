/*
 * tests/tmp/test_smoke.c - throwaway smoke test for the build system: proves
 * the Criterion binary links against libignis.a and runs. To become
 * tests/core/test_version.c.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/version.h"

Test(core, version_string_matches_macros) {
    cr_assert_str_eq(ig_version(), "0.1.0");
    cr_assert_str_eq(ig_version(), IG_VERSION_STRING);
    cr_assert_eq(IG_VERSION_MAJOR, 0);
    cr_assert_eq(IG_VERSION_MINOR, 1);
    cr_assert_eq(IG_VERSION_PATCH, 0);
}
