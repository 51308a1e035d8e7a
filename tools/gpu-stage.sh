#!/usr/bin/env bash
# tools/gpu-stage.sh — prepares, on this (Debian, GPU-less) machine, what tools/gpu-check.sh
# needs on a GPU machine that can reach no package registry, in ignored folders that the
# device call carries:
#   build/gpu-deps/   the build and test dependencies (tools/gpu-deps-bundle.sh)
#   build/gpu-extra/  the Fashion-MNIST .gz files (fashion-mnist/) and PyTorch's reference
#                     bench/torch_ref.py (from ../shared/bench), for stages 5-8
# Then one device call runs everything (about 9 minutes of the 15 a session has):
#   run(command="tools/gpu-check.sh 2>&1 | tee $OUT/gpu-check.log",
#       carry=["build/gpu-deps", "build/gpu-extra"], timeout_s=590)
# gpu-check.sh keeps within GPU_CHECK_BUDGET (540 s) and prints its summary at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/gpu-deps-bundle.sh
mkdir -p build/gpu-extra/fashion-mnist
src=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    cp -L "$src/$f" build/gpu-extra/fashion-mnist/
done
ref=""
for c in ../shared/bench/torch_ref.py /work/shared/bench/torch_ref.py; do [ -e "$c" ] && { ref=$c; break; }; done
if [ -n "$ref" ]; then cp -L "$ref" build/gpu-extra/torch_ref.py; else echo "gpu-stage: torch_ref.py not found (stage 6 will skip PyTorch)"; fi
du -sh build/gpu-deps build/gpu-extra
echo "gpu-stage: ready; carry [\"build/gpu-deps\", \"build/gpu-extra\"] (64 MiB at most with the tree)"
