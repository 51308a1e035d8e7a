#!/usr/bin/env bash
# tools/gpu-deps-bundle.sh — packs the build and test dependencies that the GPU machine's
# image may lack (OpenBLAS, libpng, zlib and Criterion: headers, and the shared libraries
# with every library they load except glibc's own) from this Debian machine into
# build/gpu-deps/ignis-gpu-deps.tar.gz.
#
# The GPU machine reaches no package registry, so a session that runs tools/gpu-check.sh
# there first runs this script here and carries the folder (device run: carry
# ["build/gpu-deps"]); gpu-check.sh unpacks the bundle and builds against it when the
# system lacks a dependency. Newer glibc there runs these Debian 12 libraries.
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/gpu-deps
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/include" "$stage/lib" "$out"

# Headers: each from where pkg-config (or the usual place) says it is.
blas_inc=$(pkg-config --cflags-only-I openblas 2>/dev/null | sed 's/^-I//; s/ *$//')
blas_inc=${blas_inc:-/usr/include}
cp -L "$blas_inc"/cblas.h "$blas_inc"/openblas_config.h "$stage/include/"
[ -e "$blas_inc/f77blas.h" ] && cp -L "$blas_inc/f77blas.h" "$stage/include/"
cp -L /usr/include/png.h "$stage/include/"
cp -L /usr/include/libpng16/pngconf.h /usr/include/libpng16/pnglibconf.h "$stage/include/"
cp -L /usr/include/zlib.h /usr/include/zconf.h "$stage/include/"
cp -rL /usr/include/criterion "$stage/include/"

# Libraries: the four the link names, under their link names and sonames, then everything
# they load (ldd) that is not part of glibc.
glibc='^(libc|libm|libpthread|libdl|librt|libresolv|libutil|ld-linux-x86-64|linux-vdso)\.so'
copy_lib() { # path soname
    cp -L "$1" "$stage/lib/$2"
}
for link in criterion openblas png16 z; do
    path=$(gcc -print-file-name="lib$link.so")
    [ -e "$path" ] || { echo "gpu-deps-bundle: lib$link.so not found (make deps first)"; exit 1; }
    real=$(readlink -f "$path")
    soname=$(objdump -p "$real" | sed -n 's/^ *SONAME *//p')
    copy_lib "$real" "$soname"
    ln -sf "$soname" "$stage/lib/lib$link.so"
    ldd "$real" | while read -r name arrow dep _; do
        [ "$arrow" = "=>" ] || continue
        [[ $name =~ $glibc ]] && continue
        [ -e "$stage/lib/$name" ] || copy_lib "$dep" "$name"
    done
done
ln -sf libpng16.so "$stage/lib/libpng.so"

tar -C "$stage" -czf "$out/ignis-gpu-deps.tar.gz" include lib
echo "gpu-deps-bundle: $out/ignis-gpu-deps.tar.gz ($(du -h "$out/ignis-gpu-deps.tar.gz" | cut -f1)):"
tar -tzf "$out/ignis-gpu-deps.tar.gz" | grep '^lib/' | tr '\n' ' '
echo
