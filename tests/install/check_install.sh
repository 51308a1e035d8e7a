#!/usr/bin/env bash
# pkg-config prints lists of flags that must split into words:
# shellcheck disable=SC2046
# tests/install/check_install.sh - does an installed ignis work for a user?
#
# Run by `make install-check` (the last step of `make test`). It installs ignis
# into a fresh temporary prefix, checks the installed tree (every public header
# compiles on its own, no private *_impl.h leaked), then takes the C program
# from README.md between <!-- readme-example:begin --> and
# <!-- readme-example:end --> and builds and runs it twice:
#   shared: cc prog.c $(pkg-config --cflags --libs ignis), run with LD_LIBRARY_PATH
#   static: cc prog.c $(pkg-config --cflags ignis) \
#               $(pkg-config --variable=staticlib ignis) $(pkg-config --variable=deplibs ignis)
# Any failing step stops the script with a message and a non-zero status.
# Environment: CC (default cc), MAKE (default make). Under make, MAKEFLAGS
# carries variables such as DEBUG=1 or CC=clang through to the install.
set -euo pipefail

cc=${CC:-cc}
make=${MAKE:-make}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ignis-install-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
strict=(-std=c11 -Wall -Wextra -Wpedantic -Werror)

fail() { echo "install-check: FAILED: $*" >&2; exit 1; }
step() { echo "install-check: $*"; }

step "installing into a temporary prefix"
"$make" -C "$root" --no-print-directory install PREFIX="$prefix" DESTDIR= >"$tmp/install.log" 2>&1 \
    || { cat "$tmp/install.log" >&2; fail "make install"; }

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pkg-config --exists ignis || fail "pkg-config cannot find ignis.pc in $PKG_CONFIG_PATH"
inc=$prefix/include/ignis
[ -f "$inc/ignis.h" ] || fail "ignis.h was not installed (is there an ignis.h at the repository root?)"
leaked=$(find "$inc" -name '*_impl.h')
[ -z "$leaked" ] || fail "private headers were installed: $leaked"
[ -L "$prefix/lib/libignis.so" ] || fail "lib/libignis.so is not a symlink"

step "compiling each installed header on its own"
while IFS= read -r h; do
    rel=${h#"$inc"/}
    printf '#include <%s>\n' "$rel" | "$cc" "${strict[@]}" $(pkg-config --cflags ignis) \
        -fsyntax-only -x c - || fail "header $rel does not compile on its own"
done < <(find "$inc" -name '*.h' | sort)

step "extracting the example from README.md"
"$root/tests/install/readme_example.sh" "$root/README.md" > "$tmp/example.c"
[ -s "$tmp/example.c" ] || fail "no \`\`\`c block between the readme-example markers in README.md"

step "shared: cc example.c \$(pkg-config --cflags --libs ignis)"
"$cc" "${strict[@]}" -o "$tmp/example-shared" "$tmp/example.c" $(pkg-config --cflags --libs ignis) \
    || fail "compiling the README example against the shared library"
LD_LIBRARY_PATH=$prefix/lib "$tmp/example-shared" > "$tmp/shared.out" \
    || fail "running the README example (shared), exit status $?"

step "static: cc example.c \$(pkg-config --cflags ignis) <staticlib> <deplibs>"
"$cc" "${strict[@]}" -o "$tmp/example-static" "$tmp/example.c" $(pkg-config --cflags ignis) \
    "$(pkg-config --variable=staticlib ignis)" $(pkg-config --variable=deplibs ignis) \
    || fail "compiling the README example against libignis.a"
dynamic=$(readelf -d "$tmp/example-static") || fail "readelf on the static example"
if grep -q 'NEEDED.*libignis' <<<"$dynamic"; then
    fail "the static build still needs libignis.so"
fi
"$tmp/example-static" > "$tmp/static.out" || fail "running the README example (static), exit status $?"
cmp -s "$tmp/shared.out" "$tmp/static.out" || fail "shared and static builds printed different output"

step "ok (example printed: $(head -n 1 "$tmp/shared.out"))"
