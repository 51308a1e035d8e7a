#!/usr/bin/env bash
# tools/gpu-check.sh — the CUDA backend's checks on a machine with an NVIDIA GPU, in one go.
#
#   tools/gpu-check.sh            build (CUDA=1, release), run the CUDA test suite, run it
#                                 again under compute-sanitizer memcheck, print a summary
#
# Stages (each timed, each printing PASS, FAIL or SKIP), most important first, so that a
# run cut short by the device lease still printed what matters:
#   1. environment   nvidia-smi, nvcc, compute-sanitizer, the build dependencies, NCCL
#                    (beside CUDA, or the nvidia-nccl Python package's: NCCL_HOME)
#   2. build         make CUDA=1 MPI=0 of the library, the CLI and the test binary (with the
#                    nccl backend, one process, when NCCL was found)
#   3. cuda tests    the Criterion suite `cuda` (CUDA vs CPU parity, backward, gradcheck,
#                    allocator, errors, the cuDNN path): every test must pass and none may
#                    skip, since a skip on a GPU machine means the device was not found
#                    (except the cuDNN tests, which skip, said so, without libcudnn.so.9)
#   4. self tests    the suites cuda_harness and cuda_fake (and cuda_nodev, which skips here)
#   5. train parity  cnn, one epoch of Fashion-MNIST on cuda and on cpu
#   6. benchmarks    ignis bench --device cuda --synthetic --batch 256, cnn and resnet20, in
#                    fp32, --tf32 and --amp bf16, beside PyTorch's torch_ref.py (carried
#                    along; run by tools/torch_bench.py) with its defaults, with TF32 off,
#                    with TF32 on and with bf16 autocast, and the ignis/torch ratios; ignis
#                    also on the older conv paths (IGNIS_CUDA_CONV=im2col for fp32, =simt
#                    under --amp) and on cuDNN's (IGNIS_CUDA_CONV=cudnn, fp32 and --amp bf16,
#                    when libcudnn.so.9 is found; ratio rows fp32-cudnn / bf16-cudnn): fp32
#                    and bf16 first, then PyTorch, then the other rows as the budget allows;
#                    then resnet20 with IGNIS_CUDA_PROFILE=1, fp32 and --amp bf16
#   7. nccl 1 rank   the GPU tests of the nccl backend (none may skip) and IGNIS_DIST=nccl
#                    ignis train --device cuda, cnn for one epoch, test accuracy >=
#                    NCCL_MIN_ACC (skipped, and said so, when the build has no NCCL)
#   8. memcheck      the `cuda` suite under compute-sanitizer --tool memcheck (skipped, and
#                    said so, when compute-sanitizer is not installed)
#   9. amp training  cnn, one epoch on cuda with --amp bf16 and --amp fp16: test accuracy
#                    within AMP_ACC_TOL points (default 1.5) of the fp32 cuda run of stage 5
#  10. nccl 2 ranks  only when `nvidia-smi -L` lists 2 GPUs or more and mpicc/mpirun exist:
#                    a build with MPI and NCCL ($BUILD-nccl), mpirun -np 2 ignis train
#                    --device cuda, the same epoch on two GPUs (else SKIP, with the reason)
# Budget: GPU_CHECK_BUDGET seconds (default 540) from the start; a stage that would not fit
# in what is left is skipped with the reason, and every timeout is capped by what is left,
# so the summary always prints before a lease or a caller's timeout ends the run.
# Exit status: 0 when every stage that ran passed, 1 otherwise; the last line says
# INCOMPLETE, naming them, when the budget left stages out.
#
# Dependencies: OpenBLAS, libpng, zlib and Criterion. When the system lacks one and
# build/gpu-deps/ignis-gpu-deps.tar.gz exists (made by tools/gpu-deps-bundle.sh on a Debian
# machine that has them, and carried along), the bundle is unpacked into $BUILD/gpu-deps,
# every library the system has itself is taken from the system, and the build and the
# tests use the rest from there.
#
# Environment: GPU_CHECK_BUDGET (540), JOBS (make -j, default nproc), STAGE_TIMEOUT (seconds per test stage, default
# 300), IGNIS_DEPS (a folder with include/ and lib/ holding dependencies missing from the
# system: added to CFLAGS/LDFLAGS with an rpath and to LD_LIBRARY_PATH for the tests),
# BUILD (default build/gpu), MEMCHECK (0 skips the memcheck stage), ACC_TOL, FASHION_DIR,
# TRAIN_TIMEOUT / CPU_TRAIN_TIMEOUT (150 / 300 s), BENCH_TIMEOUT (90 s), BENCH_STEPS (30), AMP_ACC_TOL (1.5),
# NCCL_MIN_ACC (test accuracy the NCCL runs must reach, default 80 (%)), NCCL=0 (skips 7 and 10),
# NCCL_HOME, PROFILE=0 (skips the profiled bench run), OUT (a folder: the stage logs are packed
# into $OUT/gpu-check-logs.tar.gz at the end, checkpoints left out).
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
STAGE_TIMEOUT=${STAGE_TIMEOUT:-300}
BUILD=${BUILD:-build/gpu}
LOG_DIR=$BUILD/gpu-check
mkdir -p "$LOG_DIR"

declare -a SUMMARY=()
declare -a cut_short=() # stages the budget left out
failed=0
stage_start=0
T_START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-540}
# Seconds of the budget left.
left() { echo $(( BUDGET - ($(date +%s) - T_START) )); }
# cap N: N, or what is left of the budget if that is less (at least 1).
cap() { local l; l=$(left); [ "$l" -lt 1 ] && l=1; [ "$1" -lt "$l" ] && echo "$1" || echo "$l"; }
# fits NAME SECONDS: true when SECONDS are left; else the stage is recorded as skipped.
fits() {
    local l; l=$(left)
    if [ "$l" -lt "$2" ]; then
        begin "$1"
        end "$1" SKIP "${l}s of the ${BUDGET}s budget left, the stage needs about $2s (GPU_CHECK_BUDGET)"
        cut_short+=("$1")
        return 1
    fi
}

begin() {
    printf '\n===== %s =====\n' "$1"
    stage_start=$(date +%s)
}
# end NAME STATUS(PASS|FAIL|SKIP) [detail]
end() {
    local secs=$(( $(date +%s) - stage_start ))
    local line
    line=$(printf '%-4s %-12s %4ss  %s' "$2" "$1" "$secs" "${3:-}")
    echo "$line"
    SUMMARY+=("$line")
    [ "$2" = FAIL ] && failed=1
    return 0
}

summary() {
    local rc=$?
    printf '\n===== summary =====\n'
    for l in "${SUMMARY[@]}"; do echo "$l"; done
    if [ "$failed" -eq 0 ] && [ "$rc" -eq 0 ] && [ ${#cut_short[@]} -gt 0 ]; then
        local IFS=,
        echo "gpu-check: PASS of what ran; INCOMPLETE: the budget left out ${cut_short[*]}"
    elif [ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]; then
        echo "gpu-check: PASS"
    elif [ "$failed" -eq 0 ]; then
        echo "gpu-check: FAIL (the script stopped early with status $rc; run it with bash -x to see where)"
    else
        echo "gpu-check: FAIL"
    fi
    # The device tool brings back only what lies under $OUT, and a lease is too short to
    # run again for a log: every stage's log (not the checkpoints) goes there, packed.
    if [ -n "${OUT:-}" ] && [ -d "$OUT" ] && [ -d "$LOG_DIR" ]; then
        if tar -C "$(dirname "$LOG_DIR")" -czf "$OUT/gpu-check-logs.tar.gz" --exclude='*.safetensors' \
            "$(basename "$LOG_DIR")" 2>/dev/null; then
            echo "gpu-check: stage logs in \$OUT/gpu-check-logs.tar.gz ($(du -k "$OUT/gpu-check-logs.tar.gz" | cut -f1) KiB)"
        else
            echo "gpu-check: could not pack the stage logs into \$OUT"
        fi
    fi
}
trap summary EXIT

# ---- 1. environment ----------------------------------------------------------------------
begin environment
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi || true
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv || true
else
    echo "nvidia-smi: not found"
fi
NVCC=""
for c in "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" /usr/local/cuda*/bin/nvcc "$(command -v nvcc 2>/dev/null || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then NVCC=$c; break; fi
done
SANITIZER=""
for c in "$(command -v compute-sanitizer 2>/dev/null || true)" "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" \
         /usr/local/cuda*/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer; do
    if [ -n "$c" ] && [ -x "$c" ]; then SANITIZER=$c; break; fi
done
echo "nvcc: ${NVCC:-not found}"
[ -n "$NVCC" ] && "$NVCC" --version | tail -n 2
echo "compute-sanitizer: ${SANITIZER:-not found (the memcheck stage will be skipped)}"
# What the build needs and the system (or IGNIS_DEPS) lacks.
find_missing() {
    missing=()
    local h d found
    for h in criterion/criterion.h png.h zlib.h cblas.h; do
        found=0
        for d in /usr/include /usr/local/include ${IGNIS_DEPS:+$IGNIS_DEPS/include}; do [ -e "$d/$h" ] && found=1; done
        [ "$h" = cblas.h ] && pkg-config --exists openblas 2>/dev/null && found=1
        [ $found -eq 1 ] || missing+=("$h")
    done
}
# Unpacks the carried bundle; libraries the system has are linked to the system's copy.
use_bundle() {
    local tarball=build/gpu-deps/ignis-gpu-deps.tar.gz root=$BUILD/gpu-deps f so sys
    rm -rf "$root"
    mkdir -p "$root"
    tar -C "$root" -xzf "$tarball"
    for f in "$root"/lib/*.so.*; do
        so=$(basename "$f")
        # (awk reads to the end: an early exit would fail the pipe under pipefail)
        sys=$(ldconfig -p 2>/dev/null | awk -v s="$so" '$1 == s && /x86-64/ && !done {print $NF; done = 1}')
        if [ -n "$sys" ] && [ -e "$sys" ]; then ln -sf "$sys" "$f"; fi
    done
    IGNIS_DEPS=$(cd "$root" && pwd)
    echo "dependencies: unpacked $tarball into $IGNIS_DEPS (bundled: $(cd "$IGNIS_DEPS/lib" && find . -name '*.so.*' -type f | sed 's|./||' | tr '\n' ' '))"
}
find_missing
# IGNIS_FORCE_BUNDLE=1 uses the bundle even when nothing is missing (to test it).
if { [ ${#missing[@]} -gt 0 ] || [ "${IGNIS_FORCE_BUNDLE:-0}" = 1 ]; } && [ -z "${IGNIS_DEPS:-}" ] &&
    [ -e build/gpu-deps/ignis-gpu-deps.tar.gz ]; then
    echo "dependencies missing from the system: ${missing[*]}"
    use_bundle
    find_missing
fi
# NCCL: beside CUDA, or the nvidia-nccl Python package's (PyTorch's images have it).
if [ -z "${NCCL_HOME:-}" ] && [ "${NCCL:-1}" != 0 ] && [ ! -e "${CUDA_HOME:-/usr/local/cuda}/include/nccl.h" ] &&
    [ ! -e /usr/include/nccl.h ]; then
    NCCL_HOME=$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) if nvidia.nccl.__file__ else list(nvidia.nccl.__path__)[0])' 2>/dev/null || true)
    [ -n "$NCCL_HOME" ] && [ -e "$NCCL_HOME/include/nccl.h" ] || NCCL_HOME=""
fi
echo "NCCL_HOME: ${NCCL_HOME:-(not needed or not found)}"
# MPI=0: the CUDA checks need no MPI, and a partial MPI on the GPU image must not break them.
make_vars=(CUDA=1 MPI=0 BUILD="$BUILD")
[ -n "${NCCL_HOME:-}" ] && make_vars+=(NCCL_HOME="$NCCL_HOME")
[ "${NCCL:-1}" = 0 ] && make_vars+=(NCCL=0)
if [ -n "$NVCC" ]; then make_vars+=(CUDA_HOME="$(dirname "$(dirname "$NVCC")")"); fi
if [ -n "${IGNIS_DEPS:-}" ]; then
    echo "IGNIS_DEPS: $IGNIS_DEPS"
    make_vars+=(CFLAGS="-I$IGNIS_DEPS/include" LDFLAGS="-L$IGNIS_DEPS/lib -Wl,-rpath,$IGNIS_DEPS/lib")
    export PKG_CONFIG_PATH="$IGNIS_DEPS/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    # Criterion's own dependencies are found through this, not through the rpath.
    TEST_ENV=(env "LD_LIBRARY_PATH=$IGNIS_DEPS/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
else
    TEST_ENV=()
fi
# cuDNN for IGNIS_CUDA_CONV=cudnn (cuda/cudnn.cu loads libcudnn.so.9 with dlopen): beside
# CUDA, on the loader's path, or PyTorch's copy (the nvidia-cudnn wheel's lib folder), which
# then goes on LD_LIBRARY_PATH for the tests and benches. Optional: without it the cudnn
# tests skip (said so) and the cudnn bench rows are left out.
CUDNN_DIR=
for d in ${NVCC:+"$(dirname "$(dirname "$NVCC")")/lib64" "$(dirname "$(dirname "$NVCC")")/lib"}; do
    if [ -z "$CUDNN_DIR" ] && [ -e "$d/libcudnn.so.9" ]; then CUDNN_DIR=$d; fi
done
if [ -z "$CUDNN_DIR" ] && ldconfig -p 2>/dev/null | grep -q 'libcudnn\.so\.9 '; then CUDNN_DIR=system; fi
if [ -z "$CUDNN_DIR" ]; then
    d=$(python3 -c 'import os, nvidia.cudnn as m; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null || true)
    if [ -n "$d" ] && [ -e "$d/libcudnn.so.9" ]; then
        CUDNN_DIR=$d
        TEST_ENV=(env "LD_LIBRARY_PATH=$d${IGNIS_DEPS:+:$IGNIS_DEPS/lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
    fi
fi
echo "cudnn: ${CUDNN_DIR:-not found (the cudnn tests will skip, the cudnn bench rows are left out)}"
if [ -z "$NVCC" ]; then
    end environment FAIL "nvcc not found (set CUDA_HOME)"
    exit 1
fi
if [ ${#missing[@]} -gt 0 ]; then
    end environment FAIL "missing build dependencies: ${missing[*]} (install them, or carry build/gpu-deps from tools/gpu-deps-bundle.sh, or set IGNIS_DEPS)"
    exit 1
fi
if ! command -v nvidia-smi >/dev/null 2>&1; then
    end environment PASS "no nvidia-smi; the tests will say whether a device is usable"
else
    end environment PASS
fi

# ---- 2. build ------------------------------------------------------------------------------
begin build
if make -j"$JOBS" "${make_vars[@]}" all "$BUILD/tests/ignis_tests" >"$LOG_DIR/build.log" 2>&1; then
    grep -E '^(CUDA|MPI|NCCL):' "$LOG_DIR/build.log" || true
    end build PASS "$BUILD/tests/ignis_tests"
else
    tail -n 60 "$LOG_DIR/build.log"
    end build FAIL "see $LOG_DIR/build.log"
    exit 1
fi
TEST_BIN=$BUILD/tests/ignis_tests

# Runs the test binary with a filter; output in $LOG_DIR/$1.log. Fails on any failure,
# crash or timeout; with require_no_skip, also when a test of the filter skipped.
run_suite() {
    local name=$1 filter=$2 require_no_skip=$3
    shift 3
    local log=$LOG_DIR/$name.log status=0
    timeout "$(cap "$STAGE_TIMEOUT")" ${TEST_ENV[@]+"${TEST_ENV[@]}"} "$@" "$TEST_BIN" --filter="$filter" --verbose --jobs="${SUITE_JOBS:-1}" \
        >"$log" 2>&1 || status=$?
    grep -E '^\[(PASS|FAIL|SKIP|----)\]|Synthesis|ERROR SUMMARY|========= ' "$log" | grep -v 'Test is disabled' | tail -n 200 || true
    local skips fails
    # cuDNN is optional: its tests skip with "cuDNN not usable here" where it is missing
    skips=$(grep -E '^\[SKIP\]' "$log" | grep -v 'Test is disabled' | grep -vc 'cuDNN not usable here' || true)
    local dnskips
    dnskips=$(grep -cE '^\[SKIP\].*cuDNN not usable here' "$log" || true)
    fails=$(grep -cE '^\[FAIL\]|CRASH|Crashing: [1-9]' "$log" || true)
    if [ "$status" -eq 124 ]; then
        end "$name" FAIL "timed out (STAGE_TIMEOUT ${STAGE_TIMEOUT}s, or the budget; log: $log)"
    elif [ "$status" -ne 0 ] || [ "$fails" -ne 0 ]; then
        end "$name" FAIL "exit status $status, $fails failing (log: $log)"
    elif [ "$require_no_skip" = yes ] && [ "$skips" -ne 0 ]; then
        end "$name" FAIL "$skips test(s) skipped on a GPU machine: the device was not usable (log: $log)"
    else
        end "$name" PASS "$(grep -E 'Synthesis' "$log" | tail -n 1 | sed 's/.*Synthesis: //')${skips:+, $skips skipped}$([ "${dnskips:-0}" -ne 0 ] && echo ", $dnskips cuDNN test(s) skipped: no usable libcudnn.so.9")"
    fi
}

# ---- 3. cuda tests -------------------------------------------------------------------------
if fits "cuda tests" 30; then
    begin "cuda tests"
    run_suite cuda-tests 'cuda/*' yes
fi

# ---- 4. self tests ---------------------------------------------------------------------------
if fits "self tests" 20; then
    begin "self tests"
    run_suite self-tests 'cuda_*/*' no
fi

# ---- 5. training parity ------------------------------------------------------------------------
# One epoch of cnn on Fashion-MNIST with --device cuda and with --device cpu (same seed and
# data order): the test accuracies must agree within ACC_TOL points (the GPU sums in another
# order, so the runs drift apart a little; they do not diverge).
acc_gpu=""
ACC_TOL=${ACC_TOL:-0.5}
FASHION=""
for d in "${FASHION_DIR:-}" /usr/share/datasets/fashion-mnist build/gpu-extra/fashion-mnist; do
    if [ -n "$d" ] && [ -e "$d/train-images-idx3-ubyte.gz" -o -e "$d/train-images-idx3-ubyte" ]; then FASHION=$d; break; fi
done
# Prints the test accuracy of the epoch-1 line of a train log.
test_acc() { sed -n 's/^epoch 1\/1 .* test loss [0-9.]* acc \([0-9.]*\)%.*/\1/p' "$1" | tail -n 1; }
if fits "train parity" 60; then
begin "train parity"
if [ -z "$FASHION" ]; then
    end "train parity" SKIP "Fashion-MNIST not found (set FASHION_DIR, or carry build/gpu-extra/fashion-mnist)"
else
    IGNIS=$BUILD/ignis
    rm -rf "$LOG_DIR/train-cuda" "$LOG_DIR/train-cpu"
    acc_gpu="" acc_cpu=""
    # The two runs at once: the cuda one needs a core and the GPU, the cpu one the other cores.
    s0=$(date +%s)
    (timeout "$(cap "${TRAIN_TIMEOUT:-150}")" ${TEST_ENV[@]+"${TEST_ENV[@]}"} "$IGNIS" train --model cnn --epochs 1 --seed 1 \
        --data "$FASHION" --device cuda --out "$LOG_DIR/train-cuda" >"$LOG_DIR/train-cuda.log" 2>&1 || true
     date +%s >"$LOG_DIR/train-cuda.end") &
    cuda_pid=$!
    timeout "$(cap "${CPU_TRAIN_TIMEOUT:-300}")" ${TEST_ENV[@]+"${TEST_ENV[@]}"} "$IGNIS" train --model cnn --epochs 1 --seed 1 \
        --data "$FASHION" --device cpu --out "$LOG_DIR/train-cpu" >"$LOG_DIR/train-cpu.log" 2>&1 || true
    s2=$(date +%s)
    wait "$cuda_pid" || true
    s1=$(cat "$LOG_DIR/train-cuda.end" 2>/dev/null || date +%s)
    acc_gpu=$(test_acc "$LOG_DIR/train-cuda.log")
    acc_cpu=$(test_acc "$LOG_DIR/train-cpu.log")
    grep -E '^(epoch|ignis: error)' "$LOG_DIR/train-cuda.log" "$LOG_DIR/train-cpu.log" || true
    echo "cnn, 1 epoch (run side by side): cuda test accuracy ${acc_gpu:-?}% ($((s1 - s0)) s), cpu ${acc_cpu:-?}% ($((s2 - s0)) s)"
    if [ -z "$acc_gpu" ] || [ -z "$acc_cpu" ]; then
        end "train parity" FAIL "a run did not finish (logs: $LOG_DIR/train-cuda.log, train-cpu.log)"
    elif awk -v a="$acc_gpu" -v b="$acc_cpu" -v t="$ACC_TOL" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; then
        end "train parity" PASS "cuda ${acc_gpu}% vs cpu ${acc_cpu}% (tolerance ${ACC_TOL} points)"
    else
        end "train parity" FAIL "cuda ${acc_gpu}% vs cpu ${acc_cpu}%: more than ${ACC_TOL} points apart"
    fi
fi
fi

# ---- 6. benchmarks -------------------------------------------------------------------------------
# ignis bench --device cuda --synthetic --batch 256 for cnn and resnet20 in four precision
# settings, beside PyTorch's bench/torch_ref.py on the same GPU (run by tools/torch_bench.py,
# one python process for all runs) when a copy is in build/gpu-extra/ and python3 has torch
# with CUDA (else said SKIP), with the ratio ignis/torch of train images/s per pair:
#   fp32-default  ignis (exact fp32) vs torch's defaults (cuDNN convolutions may use TF32):
#                 the comparison the issue asks for
#   fp32-exact    ignis vs torch with allow_tf32 off (both exact fp32)
#   tf32          ignis --tf32 vs torch with allow_tf32 on (cuDNN and matmul)
#   bf16          ignis --amp bf16 vs torch_ref.py --amp (bf16 autocast)
# plus ignis on the older conv paths for a before / after: IGNIS_CUDA_CONV=im2col (fp32) and
# =simt (the implicit GEMM without tensor cores, under --amp bf16). Informational: only a
# failing ignis run fails the stage.
if fits benchmarks 60; then
begin benchmarks
bench_status=PASS
have_torch=0
if [ -e build/gpu-extra/torch_ref.py ] && python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    have_torch=1
    python3 -c 'import torch; b = torch.backends; print("torch", torch.__version__, "cudnn", b.cudnn.version(), "defaults: cudnn.allow_tf32", b.cudnn.allow_tf32, "matmul.allow_tf32", b.cuda.matmul.allow_tf32)' 2>&1 | tail -n 1 || true
fi
# ig_bench MODEL NAME [ENV=VALUE] -- [bench options]: one ignis bench run; its images/s in
# IG_IPS[MODEL-NAME] and one line printed.
declare -A IG_IPS
ig_bench() {
    local model=$1 name=$2 envs=() log ips
    shift 2
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    log=$LOG_DIR/bench-$model-$name.log
    if timeout "$(cap "${BENCH_TIMEOUT:-90}")" env ${envs[@]+"${envs[@]}"} ${TEST_ENV[@]+"${TEST_ENV[@]}"} "$BUILD/ignis" bench \
        --device cuda --synthetic --model "$model" --batch 256 --steps "${BENCH_STEPS:-30}" --warmup 5 --sgemm-size 0 \
        "$@" >"$log" 2>&1; then
        ips=$(sed -n 's/^train_images_per_s: \([0-9.]*\).*/\1/p' "$log")
        IG_IPS[$model-$name]=$ips
        printf 'ignis %-8s %-14s %10s img/s  (%s)\n' "$model" "$name" "${ips:-?}" \
            "$(grep -E '^(step_ms|forward_ms|backward_ms|optimizer_ms):' "$log" | tr '\n' ' ')"
    else
        echo "ignis $model $name: FAIL (log: $log)"
        tail -n 5 "$log"
        bench_status=FAIL
    fi
}
# The rows of the issue's comparison first, then PyTorch, then the other paths (which the
# budget may cut), then the table.
for model in cnn resnet20; do
    ig_bench "$model" fp32 --
    ig_bench "$model" bf16 -- --amp bf16
done
tlog=$LOG_DIR/torch-bench.log
if [ "$have_torch" = 1 ]; then
    PYTHONUNBUFFERED=1 timeout "$(cap $(( 4 * ${BENCH_TIMEOUT:-90} )))" python3 tools/torch_bench.py build/gpu-extra/torch_ref.py \
        --models cnn,resnet20 --settings default,exact,tf32,bf16 --batch 256 --steps "${BENCH_STEPS:-30}" >"$tlog" 2>&1 || true
    grep -E '^torch ' "$tlog" || tail -n 5 "$tlog"
fi
for model in cnn resnet20; do
    [ "$(left)" -gt 30 ] || break
    ig_bench "$model" tf32 -- --tf32
    # cuDNN's convolutions (IGNIS_CUDA_CONV=cudnn: deterministic algorithms, exact fp32 =
    # FMA math) in place of ignis's own, the rest of the step unchanged
    if [ -n "$CUDNN_DIR" ] && [ "$(left)" -gt 60 ]; then
        ig_bench "$model" fp32-cudnn IGNIS_CUDA_CONV=cudnn --
        ig_bench "$model" bf16-cudnn IGNIS_CUDA_CONV=cudnn -- --amp bf16
    fi
    ig_bench "$model" fp32-im2col IGNIS_CUDA_CONV=im2col --
    ig_bench "$model" bf16-simt IGNIS_CUDA_CONV=simt -- --amp bf16
done
[ -n "$CUDNN_DIR" ] || echo "ignis cudnn rows: SKIP (no libcudnn.so.9 found)"
if [ "$have_torch" = 1 ]; then
    echo "ignis/torch, train images/s at batch 256 (>= 1.0 is the bench target):"
    for model in cnn resnet20; do
        for pair in fp32-default:fp32:default fp32-exact:fp32:exact fp32-cudnn:fp32-cudnn:exact tf32:tf32:tf32 \
            bf16:bf16:bf16 bf16-cudnn:bf16-cudnn:bf16; do
            IFS=: read -r label ig_name t_name <<<"$pair"
            a=${IG_IPS[$model-$ig_name]:-}
            b=$(sed -n "s/^torch $model $t_name train_img_per_s=\([0-9.]*\).*/\1/p" "$tlog" | tail -n 1)
            ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "?" }')
            printf '  %-8s %-12s ignis %10s  torch %10s  ratio %s\n' "$model" "$label" "${a:-?}" "${b:-?}" "$ratio"
        done
    done
else
    echo "torch: SKIP (no build/gpu-extra/torch_ref.py or no torch with CUDA)"
fi
end benchmarks "$bench_status"
# Where the device time of a resnet20 step goes (each backend call waited for, so the
# step is slower than above: the split is what counts).
if [ "${PROFILE:-1}" != 0 ] && [ "$(left)" -gt 40 ]; then
    plog=$LOG_DIR/profile-resnet20.log
    timeout "$(cap 60)" ${TEST_ENV[@]+"${TEST_ENV[@]}"} env IGNIS_CUDA_PROFILE=1 "$BUILD/ignis" bench --device cuda \
        --synthetic --model resnet20 --batch 256 --steps 10 --warmup 3 --sgemm-size 0 >"$plog" 2>&1 || true
    echo "IGNIS_CUDA_PROFILE=1 ignis bench --model resnet20 --batch 256 --steps 10 (13 steps profiled):"
    grep -A 30 '^ignis cuda profile' "$plog" | head -n 32 || true
    grep -E '^total ' "$plog" || tail -n 5 "$plog"
fi
# The same under --amp bf16 (bf16 activations: where the bf16 step's time goes).
if [ "${PROFILE:-1}" != 0 ] && [ "$(left)" -gt 60 ]; then
    plog=$LOG_DIR/profile-resnet20-bf16.log
    timeout "$(cap 60)" ${TEST_ENV[@]+"${TEST_ENV[@]}"} env IGNIS_CUDA_PROFILE=1 "$BUILD/ignis" bench --device cuda \
        --synthetic --model resnet20 --batch 256 --steps 10 --warmup 3 --sgemm-size 0 --amp bf16 >"$plog" 2>&1 || true
    echo "IGNIS_CUDA_PROFILE=1 ignis bench --model resnet20 --batch 256 --steps 10 --amp bf16:"
    grep -A 20 '^ignis cuda profile' "$plog" | head -n 22 || true
    grep -E '^total ' "$plog" || tail -n 5 "$plog"
fi
fi

# ---- 7. nccl, 1 rank ------------------------------------------------------------------------------
# The build of stage 2 has the nccl backend when make found NCCL (one process: MPI is off).
# Its GPU tests must all run; then one epoch of cnn with IGNIS_DIST=nccl (the single host
# group, the gradient buckets through ncclAllReduce on the communication stream) must train.
NCCL_MIN_ACC=${NCCL_MIN_ACC:-80}
# nccl_verdict STAGE LOG BANNER WHAT: ends STAGE from a one-epoch NCCL training log: it must
# show BANNER (the backend and world size it ran with) and a test accuracy >= NCCL_MIN_ACC.
nccl_verdict() {
    local stage=$1 log=$2 banner=$3 what=$4 acc
    grep -E '^(data parallel|epoch|ignis: error)' "$log" || true
    acc=$(test_acc "$log")
    if ! grep -q "$banner" "$log"; then
        end "$stage" FAIL "the run did not print '$banner' (log: $log)"
    elif [ -z "$acc" ]; then
        end "$stage" FAIL "the run did not finish (log: $log)"
    elif awk -v a="$acc" -v m="$NCCL_MIN_ACC" 'BEGIN { exit !(a >= m) }'; then
        end "$stage" PASS "cnn, 1 epoch, $what: test accuracy ${acc}% (>= ${NCCL_MIN_ACC}%)"
    else
        end "$stage" FAIL "cnn, 1 epoch, $what: test accuracy ${acc}% < ${NCCL_MIN_ACC}%"
    fi
}
if [ "${NCCL:-1}" = 0 ]; then
    begin "nccl 1 rank"; end "nccl 1 rank" SKIP "NCCL=0"
elif ! grep -q '^NCCL: on' "$LOG_DIR/build.log"; then
    begin "nccl 1 rank"
    end "nccl 1 rank" SKIP "the build has no nccl backend: $(grep '^NCCL:' "$LOG_DIR/build.log" || echo 'no NCCL line') (set NCCL_HOME)"
elif fits "nccl 1 rank" 40; then
    begin "nccl 1 rank"
    run_suite nccl-tests 'dist/nccl_one_rank*' yes
    if [ -z "$FASHION" ]; then
        end "nccl 1 rank" SKIP "tests ran; the training run needs Fashion-MNIST (set FASHION_DIR)"
    else
        rm -rf "$LOG_DIR/train-nccl1"
        timeout "$(cap "${TRAIN_TIMEOUT:-150}")" ${TEST_ENV[@]+"${TEST_ENV[@]}"} env IGNIS_DIST=nccl "$BUILD/ignis" train \
            --model cnn --epochs 1 --seed 1 --data "$FASHION" --device cuda --out "$LOG_DIR/train-nccl1" \
            >"$LOG_DIR/train-nccl1.log" 2>&1 || true
        nccl_verdict "nccl 1 rank" "$LOG_DIR/train-nccl1.log" 'data parallel: 1 process (nccl backend)' "nccl backend"
    fi
fi

# ---- 8. memcheck -----------------------------------------------------------------------------
if fits memcheck 60; then
begin memcheck
if [ "${MEMCHECK:-1}" = 0 ]; then
    end memcheck SKIP "MEMCHECK=0"
elif [ -z "$SANITIZER" ]; then
    end memcheck SKIP "compute-sanitizer not found"
else
    # Criterion runs each test in a child process: follow them all; any memcheck error
    # makes the child, and so the run, fail.
    # First: can the sanitizer use this GPU at all? (Under some container runtimes it
    # answers "Device not supported".)
    probe=$LOG_DIR/memcheck-probe.log
    timeout "$(cap 120)" ${TEST_ENV[@]+"${TEST_ENV[@]}"} "$SANITIZER" --tool memcheck --target-processes all \
        "$TEST_BIN" --filter='cuda/roundtrip_bit_exact' --jobs=1 >"$probe" 2>&1 || true
    if grep -qiE 'device not supported|error 999|not supported on this' "$probe"; then
        tail -n 20 "$probe"
        end memcheck SKIP "compute-sanitizer cannot run on this machine (see $probe)"
    else
        # Tests in parallel: memcheck's cost is mostly host-side instrumentation per process.
        SUITE_JOBS=$(( JOBS < 8 ? JOBS : 8 )) run_suite memcheck 'cuda/*' yes "$SANITIZER" --tool memcheck --target-processes all --error-exitcode 86 \
            --print-limit 20
        if grep -qE 'ERROR SUMMARY: [1-9]' "$LOG_DIR/memcheck.log"; then
            SUMMARY+=("FAIL memcheck      reported errors (see $LOG_DIR/memcheck.log)")
            failed=1
        fi
    fi
fi
fi

# ---- 9. amp training ------------------------------------------------------------------------------
# One epoch of cnn on cuda with --amp bf16 and with --amp fp16 (dynamic loss scaling), same
# seed as stage 6: each test accuracy must land within AMP_ACC_TOL points of the fp32 cuda
# run's (bf16/fp16 GEMM operands change the rounding, not what is learnt).
if fits "amp training" 50; then
begin "amp training"
AMP_ACC_TOL=${AMP_ACC_TOL:-1.5}
if [ -z "$FASHION" ]; then
    end "amp training" SKIP "Fashion-MNIST not found (set FASHION_DIR)"
elif [ -z "${acc_gpu:-}" ]; then
    end "amp training" SKIP "no fp32 cuda accuracy from the train parity stage to compare with"
else
    amp_status=PASS amp_detail=""
    for amp in bf16 fp16; do
        rm -rf "$LOG_DIR/train-amp-$amp"
        timeout "$(cap "${TRAIN_TIMEOUT:-150}")" ${TEST_ENV[@]+"${TEST_ENV[@]}"} "$BUILD/ignis" train --model cnn --epochs 1 --seed 1 \
            --data "$FASHION" --device cuda --amp "$amp" --out "$LOG_DIR/train-amp-$amp" >"$LOG_DIR/train-amp-$amp.log" 2>&1 || true
        grep -E '^(epoch|amp|ignis: error)' "$LOG_DIR/train-amp-$amp.log" | tail -n 5 || true
        acc=$(test_acc "$LOG_DIR/train-amp-$amp.log")
        if [ -z "$acc" ]; then
            amp_status=FAIL amp_detail="$amp_detail $amp: did not finish (log: $LOG_DIR/train-amp-$amp.log);"
        elif awk -v a="$acc" -v b="$acc_gpu" -v t="$AMP_ACC_TOL" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; then
            amp_detail="$amp_detail $amp ${acc}%;"
        else
            amp_status=FAIL amp_detail="$amp_detail $amp ${acc}% (more than ${AMP_ACC_TOL} points from fp32);"
        fi
    done
    end "amp training" "$amp_status" "fp32 ${acc_gpu}%;$amp_detail"
fi
fi

# ---- 10. nccl, 2 ranks ------------------------------------------------------------------------------
# mpirun -np 2: each rank takes the GPU of its local rank; the same epoch must train as well.
# Several processes need MPI (it carries rank 0's ncclUniqueId): a second build, with MPI.
NCCL_BUILD=$BUILD-nccl
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [ "${NCCL:-1}" = 0 ]; then
    begin "nccl 2 ranks"; end "nccl 2 ranks" SKIP "NCCL=0"
elif [ "${gpus:-0}" -lt 2 ]; then
    begin "nccl 2 ranks"; end "nccl 2 ranks" SKIP "nvidia-smi -L lists ${gpus:-0} GPU(s); two ranks on two GPUs need 2 or more"
elif ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1; then
    begin "nccl 2 ranks"; end "nccl 2 ranks" SKIP "no mpicc/mpirun: several processes need MPI (libopenmpi-dev openmpi-bin)"
elif [ -z "$FASHION" ]; then
    begin "nccl 2 ranks"; end "nccl 2 ranks" SKIP "needs Fashion-MNIST (set FASHION_DIR)"
elif fits "nccl 2 ranks" 120; then
    begin "nccl 2 ranks"
    if ! timeout "$(cap 300)" make -j"$JOBS" "${make_vars[@]/MPI=0/MPI=1}" NCCL=1 BUILD="$NCCL_BUILD" all \
            >"$LOG_DIR/build-nccl.log" 2>&1; then
        tail -n 30 "$LOG_DIR/build-nccl.log"
        end "nccl 2 ranks" FAIL "the MPI+NCCL build failed (see $LOG_DIR/build-nccl.log)"
    else
        rm -rf "$LOG_DIR/train-nccl2"
        mpi_root=$([ "$(id -u)" = 0 ] && echo --allow-run-as-root || true)
        timeout "$(cap "${TRAIN_TIMEOUT:-150}")" ${TEST_ENV[@]+"${TEST_ENV[@]}"} mpirun -np 2 $mpi_root "$NCCL_BUILD/ignis" train \
            --model cnn --epochs 1 --seed 1 --data "$FASHION" --device cuda --out "$LOG_DIR/train-nccl2" \
            >"$LOG_DIR/train-nccl2.log" 2>&1 || true
        nccl_verdict "nccl 2 ranks" "$LOG_DIR/train-nccl2.log" 'data parallel: 2 processes (nccl backend)' "2 GPUs"
    fi
fi

[ "$failed" -eq 0 ]
