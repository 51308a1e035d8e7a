#!/usr/bin/env bash
# tools/deps.sh - make sure the packages ignis builds and tests with are present.
#
# Called by `make deps`, and first thing by `make test` and `make run`. When all
# is there it prints one line and returns at once (a dpkg-query per package).
# When something is missing: as root it installs it with apt-get (this is what
# CI relies on: a fresh Debian 12 with network access to its apt mirror only);
# otherwise it prints the exact command to run and exits 1.
# On a system without dpkg it cannot tell, so it says what it needs and goes on.
set -euo pipefail

# dataset-fashion-mnist: the default dataset of the examples and of `ignis train`.
# libopenmpi-dev, openmpi-bin: dist/ over MPI and its tests under mpirun (make MPI=0 builds
# without; the MPI tests are then skipped).
packages=(libopenblas-dev libcriterion-dev zlib1g-dev libpng-dev pkg-config dataset-fashion-mnist
          libopenmpi-dev openmpi-bin)

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: not a Debian system; make sure you have a C11 compiler, pkg-config, OpenBLAS (cblas.h), Criterion, zlib and libpng (and OpenMPI for dist/)"
    exit 0
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done
# A C compiler: whatever CC names (default cc, which gcc provides).
if ! command -v "${CC:-cc}" >/dev/null 2>&1; then
    case "$(basename "${CC:-cc}")" in
        clang*) missing+=(clang) ;;
        *) missing+=(gcc) ;;
    esac
fi
# make itself is present, or this script would not have been called by it.

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: ok (${packages[*]}, ${CC:-cc})"
    exit 0
fi

echo "deps: missing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "deps: run this, then try again:"
    echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
fi
