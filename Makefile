# Makefile for ignis (GNU make).
#
#   make                     library (static + shared) and the ignis CLI, in build/
#   make test                check deps, build, run the unit tests, then the install check
#   make run                 check deps, build and run `ignis train` (Fashion-MNIST, defaults)
#   make demo                check deps, build and run examples/demo_mlp
#   make bench               build bench/*.c and run the benchmarks (they print numbers)
#   make SANITIZE=1 test     the same under ASan+UBSan, in build/san/
#   make test-cuda-emu       the CUDA suite on the CPU emulator of tests/cuda/emu/ (no GPU or nvcc)
#   make fuzz                libFuzzer targets (tests/fuzz/fuzz_*.c: IDX, PNG, CIFAR, CSV and
#                            safetensors readers, model-description parser)
#   make fuzz-run FUZZ_SECONDS=60   runs each fuzz target that long, one after the other
#                            (FUZZ_TARGETS=safetensors: only that one; fuzz-safetensors is the same)
#   make DEBUG=1             -O0 -g, in build/debug/
#   make CC=clang            any C11 compiler with gcc-style flags
#   make MPI=0               without MPI (dist/ then has the single-process backend only)
#   make CUDA=0              without the CUDA backend (the default CUDA=auto builds it when
#                            nvcc is found; CUDA=1 requires it); tools/gpu-check.sh on a GPU
#   make install PREFIX=/usr/local DESTDIR=
#
# Variables you may set: CC, CXX, CFLAGS (appended to ours), LDFLAGS, SANITIZE, DEBUG, RUN_ARGS,
# BUILD (output folder), PREFIX, DESTDIR, LIBDIR, INCLUDEDIR, BINDIR, TEST_FLAGS,
# FUZZ_CC (clang), FUZZ_SECONDS (60), FUZZ_TARGETS (all), MPI (auto, 0 or 1), CUDA (auto, 0 or 1), CUDA_HOME
# (/usr/local/cuda), NVCC_CCBIN (gcc: nvcc's host compiler), CUDA_ARCHS (80 90), NCCL (auto,
# 0 or 1: the "nccl" backend of dist/, with CUDA and MPI), CUDA_EMU (auto or 0: the emulated
# CUDA run of `make test`).
# Every object gets a .d file (-MMD -MP), so editing a header rebuilds what uses it.

# ---------------------------------------------------------------------------
# Version: read from core/version.h, the single place it is written.
VERSION := $(shell sed -n 's/^\#define IG_VERSION_STRING "\(.*\)"/\1/p' core/version.h)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))

# ---------------------------------------------------------------------------
# Build variant: each one gets its own folder, so switching never mixes objects.
ifeq ($(SANITIZE),1)
  BUILD ?= build/san
  SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  OPTFLAGS := -O1 -g $(SAN_FLAGS)
  VARIANT := sanitize (ASan+UBSan)
else ifeq ($(FUZZ),1)
  # Set by `make fuzz` (with CC=clang): coverage-instrumented objects, ASan+UBSan, and
  # IGI_FUZZING, which lets the PNG reader skip CRCs so mutations reach the decoder.
  BUILD ?= build/fuzz
  SAN_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  OPTFLAGS := -O1 -g $(SAN_FLAGS) -DIGI_FUZZING
  VARIANT := fuzz (libFuzzer+ASan+UBSan)
else ifeq ($(DEBUG),1)
  BUILD ?= build/debug
  OPTFLAGS := -O0 -g
  VARIANT := debug
else
  BUILD ?= build
  OPTFLAGS := -O3 -g -fno-math-errno
  VARIANT := release
endif

# ---------------------------------------------------------------------------
# Dependencies, found through pkg-config (Debian's cblas.h lives under
# /usr/include/x86_64-linux-gnu/openblas-pthread/, which only pkg-config knows).
# The fallbacks let `make deps` and `make clean` run before pkg-config exists.
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(or $(shell pkg-config --libs openblas 2>/dev/null),-lopenblas)
# data/ reads gzip through zlib and PNG through libpng.
IMG_CFLAGS := $(shell pkg-config --cflags zlib libpng 2>/dev/null)
IMG_LIBS   := $(or $(shell pkg-config --libs zlib libpng 2>/dev/null),-lpng -lz)
CRITERION_CFLAGS := $(shell pkg-config --cflags criterion 2>/dev/null)
CRITERION_LIBS   := $(or $(shell pkg-config --libs criterion 2>/dev/null),-lcriterion)
SYSLIBS := -lm -lpthread

# MPI for dist/ (data-parallel training). MPI=auto (the default) uses it when found,
# through OpenMPI's compiler wrapper (mpicc --showme) or else pkg-config's ompi-c; MPI=1
# requires it; MPI=0 builds without (dist/ then has the single-process backend only).
# With MPI the library is compiled with its include flags and -DIGNIS_WITH_MPI and links
# its libraries (also listed in ignis.pc). $(BUILD)/mpi-config.txt records the choice, so
# switching rebuilds what depends on it.
MPI ?= auto
ifneq ($(MPI),0)
  MPI_LIBS := $(strip $(or $(shell mpicc --showme:link 2>/dev/null),$(shell pkg-config --libs ompi-c 2>/dev/null)))
  MPI_CFLAGS := $(strip $(if $(shell mpicc --showme:link 2>/dev/null),$(shell mpicc --showme:compile 2>/dev/null),\
                             $(shell pkg-config --cflags ompi-c 2>/dev/null)))
  MPI_VIA := $(if $(shell mpicc --showme:link 2>/dev/null),mpicc,pkg-config ompi-c)
endif
ifneq ($(MPI_LIBS),)
  MPI_DEFS := -DIGNIS_WITH_MPI
  MPI_SUMMARY := on ($(MPI_LIBS), via $(MPI_VIA))
  MPIRUN := mpirun --oversubscribe$(if $(filter 0,$(shell id -u)), --allow-run-as-root)
else ifeq ($(MPI),0)
  MPI_SUMMARY := off (MPI=0)
else ifeq ($(MPI),1)
  ifeq ($(filter clean deps help uninstall,$(MAKECMDGOALS)),)
    $(error MPI=1 but neither `mpicc --showme` nor `pkg-config ompi-c` finds MPI (install libopenmpi-dev))
  endif
else
  MPI_SUMMARY := off (not found: install libopenmpi-dev and openmpi-bin, or make deps)
endif

# ---------------------------------------------------------------------------
# CUDA backend (cuda/*.cu). CUDA=auto (the default) builds it when nvcc is found at
# $(CUDA_HOME)/bin/nvcc or on PATH; CUDA=1 requires it; CUDA=0 builds exactly the CPU-only
# library. With CUDA the .cu files are compiled by nvcc (host compiler NVCC_CCBIN, gcc by
# default) into the same libignis (static and shared), core/backend.c gets -DIGNIS_CUDA
# (it then calls cuda/'s igi_cuda_init on first use of IG_CUDA), and everything links
# cudart, cuBLAS and libstdc++ (nvcc's host stubs need it), with an rpath to the CUDA
# libraries. Code is generated for sm_80 and sm_90 (A100, H100/H200) plus compute_90 PTX
# that newer GPUs JIT-compile. A build without a GPU compiles and runs: the CUDA tests skip.
# Sanitizer and fuzz builds default to CUDA=0: ASan needs protect_shadow_gap=0 to run
# cudart at all and LeakSanitizer reports the driver's never-freed allocations, so they
# test the CPU code (pass CUDA=1 to try anyway). $(BUILD)/cuda-config.txt records the choice.
ifneq ($(filter 1,$(SANITIZE) $(FUZZ)),)
  CUDA ?= 0
endif
CUDA ?= auto
CUDA_HOME ?= /usr/local/cuda
NVCC_CCBIN ?= gcc
CUDA_ARCHS ?= 80 90
ifneq ($(CUDA),0)
  NVCC := $(or $(wildcard $(CUDA_HOME)/bin/nvcc),$(shell command -v nvcc 2>/dev/null))
endif
ifneq ($(NVCC),)
  # CUDA_HOME follows the nvcc found (PATH may point elsewhere than the default).
  CUDA_ROOT := $(abspath $(dir $(NVCC))..)
  CUDA_LIBDIR := $(firstword $(wildcard $(CUDA_ROOT)/lib64/libcudart.so $(CUDA_ROOT)/lib/libcudart.so \
                     $(CUDA_ROOT)/targets/x86_64-linux/lib/libcudart.so))
  CUDA_LIBDIR := $(patsubst %/,%,$(dir $(or $(CUDA_LIBDIR),$(CUDA_ROOT)/lib64/libcudart.so)))
  NVCC_VERSION := $(shell $(NVCC) --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
  CUDA_GENCODE := $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
                  -gencode arch=compute_$(lastword $(CUDA_ARCHS)),code=compute_$(lastword $(CUDA_ARCHS))
  CUDA_DEFS := -DIGNIS_CUDA
  # cuBLAS is dlopen'ed by cuda/gemm.cu on first CUDA use (linking it costs every process
  # ~150 MB of RSS at start-up); its directory is passed so no LD_LIBRARY_PATH is needed.
  CUDA_LIBS := -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcudart -ldl -lstdc++
  CUDA_SUMMARY := on (nvcc $(NVCC_VERSION) at $(NVCC), $(foreach a,$(CUDA_ARCHS),sm_$(a)) + PTX; libs in $(CUDA_LIBDIR))
else ifeq ($(CUDA),0)
  CUDA_SUMMARY := off (CUDA=0$(if $(filter 1,$(SANITIZE) $(FUZZ)), default under SANITIZE/FUZZ))
else ifeq ($(CUDA),1)
  ifeq ($(filter clean deps help uninstall,$(MAKECMDGOALS)),)
    $(error CUDA=1 but nvcc is neither at $(CUDA_HOME)/bin/nvcc nor on PATH (set CUDA_HOME))
  endif
else
  CUDA_SUMMARY := off (nvcc not found at $(CUDA_HOME)/bin/nvcc or on PATH)
endif

# NCCL (for dist/ on GPUs; NCCL=auto|0|1, default auto). Used when CUDA is on and NCCL is
# found (MPI, when on too, starts the processes and carries rank 0's ncclUniqueId; without
# MPI the backend runs one process, which is what a single-GPU machine needs): cuda/nccl.c is then
# compiled into the library with -DIGNIS_WITH_NCCL (so are dist/, tools/ and the tests, which
# select and test the backend). Nothing links NCCL: cuda/nccl.c loads libnccl.so.2 with
# dlopen when a process group selects it, first from the folder found here
# (IGNIS_NCCL_LIBDIR, overridden at run time by the environment's IGNIS_CUDA_LIBDIR).
# NCCL_HOME (a folder with include/nccl.h and lib/libnccl.so*, e.g. the nvidia-nccl Python
# package's) is searched first.
NCCL ?= auto
NCCL_HOME ?=
ifneq ($(NVCC),)
ifneq ($(NCCL),0)
  NCCL_HEADER := $(firstword $(wildcard $(if $(NCCL_HOME),$(NCCL_HOME)/include/nccl.h) $(CUDA_ROOT)/include/nccl.h \
                     /usr/include/nccl.h))
  NCCL_LIB := $(firstword $(wildcard $(if $(NCCL_HOME),$(NCCL_HOME)/lib/libnccl.so $(NCCL_HOME)/lib/libnccl.so.2) \
                  $(CUDA_ROOT)/lib/libnccl.so $(CUDA_ROOT)/lib64/libnccl.so /usr/lib/x86_64-linux-gnu/libnccl.so))
endif
endif
ifneq ($(and $(NCCL_HEADER),$(NCCL_LIB)),)
  NCCL_LIBDIR := $(patsubst %/,%,$(dir $(NCCL_LIB)))
  NCCL_DEFS := -DIGNIS_WITH_NCCL
  NCCL_SUMMARY := on ($(NCCL_HEADER); $(NCCL_LIBDIR)/libnccl.so.2 loaded at run time; dist backend "nccl"$(if $(MPI_DEFS),, in one process: MPI is off))
else ifeq ($(NCCL),1)
  ifeq ($(filter clean deps help uninstall,$(MAKECMDGOALS)),)
    $(error NCCL=1 but nccl.h and libnccl.so were not found$(if $(NVCC),, (and CUDA is off)))
  endif
else
  NCCL_SUMMARY := off ($(if $(filter 0,$(NCCL)),NCCL=0,$(if $(NVCC),not found,needs CUDA)))
endif

# The CUDA emulator's run (see "CUDA emulator" below).
CUDA_EMU ?= auto
ifneq ($(filter 1,$(SANITIZE) $(FUZZ)),)
  EMU_SUMMARY := off (not under SANITIZE/FUZZ: ASan and fiber stacks do not mix)
else ifeq ($(CUDA_EMU),0)
  EMU_SUMMARY := off (CUDA_EMU=0)
else ifeq ($(shell command -v $(CXX) 2>/dev/null),)
  EMU_SUMMARY := off ($(CXX) not found)
else
  EMU_ON := 1
  EMU_SUMMARY := on ($(CXX), in $(BUILD)/emu/; `make test` runs the cuda suite on it)
endif

# ---------------------------------------------------------------------------
# Compiler flags. Feature macro: _POSIX_C_SOURCE=200809L (strict POSIX.1-2008
# on top of C11, no GNU extensions); a file that needs a GNU/BSD extra defines
# _DEFAULT_SOURCE itself, before its first #include, and says why.
WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
IG_CPPFLAGS := -I. -D_POSIX_C_SOURCE=200809L
IG_CFLAGS := -std=c11 $(OPTFLAGS) $(WARNINGS) -pthread -MMD -MP $(CFLAGS)
# The library exports only what is marked IG_API.
LIB_CFLAGS := -fPIC -fvisibility=hidden
IG_LDFLAGS := -pthread $(SAN_FLAGS) $(LDFLAGS)
LIBS := $(BLAS_LIBS) $(IMG_LIBS) $(MPI_LIBS) $(CUDA_LIBS) $(SYSLIBS)

# ---------------------------------------------------------------------------
# Sources. Wildcards: a new .c file in a module folder is picked up by itself.
LIB_SRCS := $(wildcard core/*.c core/ops/*.c autograd/*.c nn/*.c optim/*.c data/*.c dist/*.c)
# cuda/'s C files (the NCCL backend of dist/) are compiled by $(CC) against the CUDA headers.
LIB_SRCS += $(if $(NCCL_DEFS),$(wildcard cuda/*.c))
CLI_SRCS := $(wildcard tools/*.c)
# Every tests/<module>/test_*.c is linked into one Criterion binary.
TEST_SRCS := $(wildcard tests/*/test_*.c)
EXAMPLE_SRCS := $(wildcard examples/*.c)
BENCH_SRCS := $(wildcard bench/*.c)
# libFuzzer targets: tests/fuzz/fuzz_*.c (not test_*.c, so the Criterion binary skips them).
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
# Public headers: every .h in a module folder except private *_impl.h.
PUBLIC_HEADERS := $(wildcard ignis.h) \
    $(filter-out %_impl.h,$(wildcard core/*.h autograd/*.h nn/*.h optim/*.h data/*.h dist/*.h))

CUDA_SRCS := $(if $(NVCC),$(wildcard cuda/*.cu))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CUDA_OBJS := $(CUDA_SRCS:%.cu=$(BUILD)/obj/%.o)
LIB_OBJS += $(CUDA_OBJS)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)
EXAMPLE_OBJS := $(EXAMPLE_SRCS:%.c=$(BUILD)/obj/%.o)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o)
FUZZ_OBJS := $(FUZZ_SRCS:%.c=$(BUILD)/obj/%.o)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/%)
# The MPI test driver: a program of its own, run by tests/dist/test_ddp_mpi.c under mpirun.
DIST_DRIVER_SRC := tests/dist/ddp_check.c
DIST_DRIVER_OBJ := $(DIST_DRIVER_SRC:%.c=$(BUILD)/obj/%.o)

STATIC_LIB := $(BUILD)/libignis.a
SHARED_LIB := $(BUILD)/libignis.so.$(VERSION)
SONAME := libignis.so.$(SOVERSION)
CLI := $(BUILD)/ignis
TEST_BIN := $(BUILD)/tests/ignis_tests
DIST_DRIVER := $(BUILD)/tests/ddp_check
EXAMPLES := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)
BENCHES := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

# Criterion options for `make test`; e.g. TEST_FLAGS='--filter=core/*' or '--verbose'.
TEST_FLAGS ?= --jobs=2

# Shared library: refuse undefined symbols, except under sanitizers, whose
# runtime is only linked into executables.
ifneq ($(SANITIZE),1)
  SHARED_LDFLAGS := -Wl,--no-undefined
endif

# ---------------------------------------------------------------------------
# Install layout. Headers keep their module folders under include/ignis/, so
# ignis.h's own #include "core/tensor.h" resolves with -I$(INCLUDEDIR)/ignis.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL ?= install

# ---------------------------------------------------------------------------
# Say what this build is, once per top-level make (not for clean/deps/help).
ifeq ($(MAKELEVEL),0)
ifeq ($(filter clean deps help uninstall bench fuzz fuzz-run fuzz-safetensors,$(MAKECMDGOALS)),)
$(info ignis $(VERSION) [$(VARIANT)] -> $(BUILD)/ | CC=$(CC) ($(shell $(CC) --version 2>/dev/null | head -n 1)))
$(info CFLAGS: $(IG_CPPFLAGS) $(IG_CFLAGS) | lib: $(LIB_CFLAGS) | LIBS: $(LIBS))
$(info MPI: $(MPI_SUMMARY))
$(info CUDA: $(CUDA_SUMMARY))
$(info NCCL: $(NCCL_SUMMARY))
$(info CUDA emulator: $(EMU_SUMMARY))
endif
endif

.PHONY: FORCE all lib cli examples benches test check install-check run demo deps bench install uninstall \
        clean check-warnings help fuzz fuzz-targets fuzz-run fuzz-safetensors
.DEFAULT_GOAL := all

# ---------------------------------------------------------------------------
# Main targets.
all: lib cli

lib: $(STATIC_LIB) $(BUILD)/libignis.so

cli: $(CLI)

examples: $(EXAMPLES)

benches: $(BENCHES)

help:
	@sed -n '3,18p' Makefile | sed 's/^# \{0,1\}//'

# ---------------------------------------------------------------------------
# Compiling. Library objects are position-independent with hidden visibility;
# both libignis.a and libignis.so are made from the same objects.
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(IG_CPPFLAGS) $(IG_CFLAGS) $(EXTRA_CFLAGS) -c $< -o $@

$(LIB_OBJS): EXTRA_CFLAGS := $(LIB_CFLAGS) $(BLAS_CFLAGS) $(IMG_CFLAGS) $(MPI_CFLAGS) $(MPI_DEFS) $(NCCL_DEFS)
$(BUILD)/obj/core/backend.o: EXTRA_CFLAGS += $(CUDA_DEFS)
# The CUDA headers are system headers here (-isystem): their own constructs are not ours to warn about.
$(BUILD)/obj/cuda/nccl.o: EXTRA_CFLAGS += $(CUDA_DEFS) -isystem $(CUDA_ROOT)/include \
    $(if $(filter /usr/include/nccl.h,$(NCCL_HEADER)),,-isystem $(dir $(NCCL_HEADER))) \
    -DIGNIS_NCCL_LIBDIR='"$(NCCL_LIBDIR)"'

# CUDA objects: nvcc, the same hidden visibility and PIC as the C objects, warnings on
# (and errors when CFLAGS has -Werror, as in check-warnings). -O3 -lineinfo, or -O0 -g -G
# for DEBUG=1.
NVCC_OPT := $(if $(filter 1,$(DEBUG)),-O0 -g -G,-O3 -lineinfo)
NVCC_WERROR := $(if $(filter -Werror,$(CFLAGS)),-Werror all-warnings -Xcompiler -Werror)
NVCC_FLAGS := -ccbin $(NVCC_CCBIN) -std=c++17 $(NVCC_OPT) $(CUDA_GENCODE) -I. -D_POSIX_C_SOURCE=200809L \
    $(CUDA_DEFS) -Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra $(NVCC_WERROR)
$(BUILD)/obj/cuda/gemm.o $(BUILD)/obj/cuda/cudnn.o: NVCC_FLAGS += -DIGNIS_CUDA_LIBDIR='"$(CUDA_LIBDIR)"'
$(BUILD)/obj/%.o: %.cu $(BUILD)/cuda-config.txt
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@
$(TEST_OBJS): EXTRA_CFLAGS := $(CRITERION_CFLAGS) $(BLAS_CFLAGS) $(IMG_CFLAGS) $(MPI_DEFS) $(CUDA_DEFS) $(NCCL_DEFS)
# The bench of dist/ calls MPI itself (the MPI_Allreduce it compares with).
$(BENCH_OBJS): EXTRA_CFLAGS := $(MPI_CFLAGS) $(MPI_DEFS)
$(DIST_DRIVER_OBJ): EXTRA_CFLAGS := $(MPI_DEFS) $(NCCL_DEFS)

# What was built with MPI and what without must not mix: these objects depend on the
# recorded choice.
$(BUILD)/mpi-config.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(MPI_DEFS) $(MPI_CFLAGS) $(MPI_LIBS)' | cmp -s - $@ || echo '$(MPI_DEFS) $(MPI_CFLAGS) $(MPI_LIBS)' > $@
$(filter $(BUILD)/obj/dist/% $(BUILD)/obj/cuda/nccl.o,$(LIB_OBJS)) $(TEST_OBJS) $(BENCH_OBJS) $(DIST_DRIVER_OBJ) $(SHARED_LIB) \
    $(STATIC_LIB): $(BUILD)/mpi-config.txt
# The same for CUDA: core/backend.o and the libraries depend on whether it is built.
$(BUILD)/cuda-config.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(CUDA_DEFS) $(NVCC) $(CUDA_GENCODE) $(CUDA_LIBS) $(NCCL_DEFS)' | cmp -s - $@ \
	    || echo '$(CUDA_DEFS) $(NVCC) $(CUDA_GENCODE) $(CUDA_LIBS) $(NCCL_DEFS)' > $@
$(BUILD)/obj/core/backend.o $(SHARED_LIB) $(STATIC_LIB) $(TEST_OBJS): $(BUILD)/cuda-config.txt
# Whether the NCCL backend is in decides what dist/, the CLI and the tests compile.
$(filter $(BUILD)/obj/dist/%,$(LIB_OBJS)) $(CLI_OBJS) $(DIST_DRIVER_OBJ): $(BUILD)/cuda-config.txt
$(FUZZ_OBJS): EXTRA_CFLAGS := $(IMG_CFLAGS)
# The CLI writes curves.png through libpng; `train` picks the NCCL backend for --device cuda.
$(CLI_OBJS): EXTRA_CFLAGS := $(IMG_CFLAGS) $(NCCL_DEFS)
# Tests that run the CLI binary find it through IGNIS_CLI.
$(TEST_OBJS): EXTRA_CFLAGS += -DIGNIS_CLI=\"$(abspath $(CLI))\" -DIGNIS_SOURCE_DIR=\"$(abspath .)\"

# Object lists: rewritten only when the set of sources changes, so deleting a
# .c file still relinks the library or test binary that contained it.
$(BUILD)/lib-objects.txt $(BUILD)/tests/test-objects.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(if $(findstring test-,$@),$(TEST_OBJS),$(LIB_OBJS))' | cmp -s - $@ \
	    || echo '$(if $(findstring test-,$@),$(TEST_OBJS),$(LIB_OBJS))' > $@
FORCE:

# ---------------------------------------------------------------------------
# Linking.
$(STATIC_LIB): $(LIB_OBJS) $(BUILD)/lib-objects.txt
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJS)

$(SHARED_LIB): $(LIB_OBJS) $(BUILD)/lib-objects.txt
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(SONAME) $(SHARED_LDFLAGS) $(IG_LDFLAGS) -o $@ $(LIB_OBJS) $(LIBS)

$(BUILD)/$(SONAME): $(SHARED_LIB)
	ln -sf $(notdir $<) $@

$(BUILD)/libignis.so: $(BUILD)/$(SONAME)
	ln -sf $(notdir $<) $@

# Programs link the static library: no LD_LIBRARY_PATH needed to run them,
# and the tests can call hidden internal igi_* functions.
$(CLI): $(CLI_OBJS) $(STATIC_LIB)
	$(CC) $(IG_LDFLAGS) -o $@ $(CLI_OBJS) $(STATIC_LIB) $(LIBS)

# The tests run the CLI binary, and call the CLI's own functions (checkpoint reading) in
# process: every tools/ object except main's is linked in.
CLI_LIB_OBJS := $(filter-out $(BUILD)/obj/tools/ignis.o,$(CLI_OBJS))
$(TEST_BIN): $(TEST_OBJS) $(CLI_LIB_OBJS) $(STATIC_LIB) $(BUILD)/tests/test-objects.txt $(CLI)
	@mkdir -p $(@D)
	$(CC) $(IG_LDFLAGS) -o $@ $(TEST_OBJS) $(CLI_LIB_OBJS) $(STATIC_LIB) $(CRITERION_LIBS) $(LIBS)

$(DIST_DRIVER): $(DIST_DRIVER_OBJ) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(IG_LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(IG_LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS)

# The README's C example (tests/install/readme_example.sh extracts it, as install-check
# does), built against this build's library: the sanitizer run checks it for leaks
# (install-check builds it against an installed copy).
$(BUILD)/examples/readme_example.c: README.md tests/install/readme_example.sh
	@mkdir -p $(@D)
	tests/install/readme_example.sh README.md > $@
$(BUILD)/examples/readme_example: $(BUILD)/examples/readme_example.c $(STATIC_LIB)
	$(CC) $(IG_CPPFLAGS) $(IG_CFLAGS) $(IG_LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS)

# Keep the objects of programs built through pattern chains (make deletes intermediates).
.SECONDARY: $(EXAMPLE_OBJS) $(BENCH_OBJS)

# Benchmarks link like the examples (they may read gzip'd datasets too).
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(IG_LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS)

# ---------------------------------------------------------------------------
# CUDA emulator (tests/cuda/emu/README.md): the same cuda/*.cu, rewritten by
# tests/cuda/emu/launch.pl (kernel launches become calls) and compiled by $(CXX) as C++17
# against the emulator's headers, linked with its runtime (kernels run on the CPU, the threads
# of a block as fibers) and a stand-in cuBLAS and cuDNN libraries, into a second test binary that runs
# the CUDA suite (`cuda/*`) with a device present. Neither nvcc nor a GPU is needed. It
# reuses the library's C objects except core/backend.c, and tests/cuda/test_*.c, which are
# compiled again with -DIGNIS_CUDA into $(BUILD)/emu/. CUDA_EMU=auto (the default) builds
# and runs it in `make test` when $(CXX) is found, except under SANITIZE/FUZZ (ASan and the
# fibers' stack switching do not mix); CUDA_EMU=0 leaves it out. Its own checks are the
# suite `cuda_emu` (tests/cuda/emu/test_emu.cu, compiled like cuda/*.cu), run first.
EMU_DIR := $(BUILD)/emu
EMU_CU_SRCS := $(wildcard cuda/*.cu)
EMU_CU_OBJS := $(EMU_CU_SRCS:%.cu=$(EMU_DIR)/obj/%.o)
EMU_RT_OBJ := $(EMU_DIR)/obj/tests/cuda/emu/runtime.o
EMU_BACKEND_OBJ := $(EMU_DIR)/obj/core/backend.o
EMU_TEST_SRCS := $(wildcard tests/cuda/test_*.c)
EMU_TEST_OBJS := $(EMU_TEST_SRCS:%.c=$(EMU_DIR)/obj/%.o)
EMU_SELFTEST_OBJ := $(EMU_DIR)/obj/tests/cuda/emu/test_emu.o
EMU_LIB := $(EMU_DIR)/libignis-emu.a
EMU_CUBLAS := $(EMU_DIR)/libcublas.so.13
# The stand-in cuDNN (tests/cuda/emu/cudnn.cpp) for IGNIS_CUDA_CONV=cudnn, loaded by cuda/cudnn.cu.
EMU_CUDNN := $(EMU_DIR)/libcudnn.so.9
EMU_BIN := $(EMU_DIR)/ignis_cuda_emu_tests
EMU_LIB_OBJS := $(filter-out $(CUDA_OBJS) $(BUILD)/obj/core/backend.o,$(LIB_OBJS)) $(EMU_BACKEND_OBJ) \
    $(EMU_CU_OBJS) $(EMU_RT_OBJ)
# The emulated .cu compile: what nvcc would see (-include cuda_runtime.h, as nvcc does), no
# FMA contraction (the device rounds each operation unless the code asks for fma), and off
# only the one warning the emulation itself causes (#pragma unroll, unknown to g++).
EMU_CXXFLAGS := -std=c++17 -O2 -g -ffp-contract=off -fno-math-errno -Wall -Wextra -Wno-unknown-pragmas \
    $(filter -Werror,$(CFLAGS)) -pthread -MMD -MP
EMU_CPPFLAGS := -I. -Icuda -Itests/cuda/emu/include -D_POSIX_C_SOURCE=200809L -DIGNIS_CUDA
EMU_LIBS := $(BLAS_LIBS) $(IMG_LIBS) $(MPI_LIBS) -ldl -lstdc++ $(SYSLIBS)

.PHONY: test-cuda-emu emu
emu: $(EMU_BIN) $(EMU_CUBLAS) $(EMU_CUDNN)

$(EMU_DIR)/src/%.cpp: %.cu tests/cuda/emu/launch.pl
	@mkdir -p $(@D)
	perl tests/cuda/emu/launch.pl $< > $@.tmp && mv $@.tmp $@
$(EMU_DIR)/obj/cuda/%.o: $(EMU_DIR)/src/cuda/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(EMU_CPPFLAGS) -include cuda_runtime.h $(EMU_CXXFLAGS) -c $< -o $@
$(EMU_DIR)/obj/cuda/gemm.o $(EMU_DIR)/obj/cuda/cudnn.o: EMU_CPPFLAGS += -DIGNIS_CUDA_LIBDIR='"$(abspath $(EMU_DIR))"'
$(EMU_SELFTEST_OBJ): $(EMU_DIR)/src/tests/cuda/emu/test_emu.cpp
	@mkdir -p $(@D)
	$(CXX) $(EMU_CPPFLAGS) $(CRITERION_CFLAGS) -DIGEMU_CUBLAS_PATH='"$(abspath $(EMU_CUBLAS))"' -include cuda_runtime.h \
	    $(EMU_CXXFLAGS) -c $< -o $@
.SECONDARY: $(EMU_CU_SRCS:%.cu=$(EMU_DIR)/src/%.cpp) $(EMU_DIR)/src/tests/cuda/emu/test_emu.cpp
# glibc's fortified longjmp refuses the fibers' stack switches.
$(EMU_RT_OBJ): tests/cuda/emu/runtime.cpp
	@mkdir -p $(@D)
	$(CXX) -Itests/cuda/emu/include -U_FORTIFY_SOURCE $(EMU_CXXFLAGS) -c $< -o $@
$(EMU_CUBLAS): tests/cuda/emu/cublas.cpp $(wildcard tests/cuda/emu/include/*.h)
	@mkdir -p $(@D)
	$(CXX) -Itests/cuda/emu/include $(filter-out -O2 -MMD -MP,$(EMU_CXXFLAGS)) -O3 -fPIC -shared \
	    -Wl,-soname,$(notdir $@) -o $@ $< -ldl
$(EMU_CUDNN): tests/cuda/emu/cudnn.cpp $(wildcard tests/cuda/emu/include/*.h)
	@mkdir -p $(@D)
	$(CXX) -Itests/cuda/emu/include $(filter-out -O2 -MMD -MP,$(EMU_CXXFLAGS)) -O2 -fPIC -shared \
	    -Wl,-soname,$(notdir $@) -o $@ $< -ldl
$(EMU_BACKEND_OBJ) $(EMU_TEST_OBJS): $(EMU_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(IG_CPPFLAGS) $(IG_CFLAGS) $(EXTRA_CFLAGS) -c $< -o $@
$(EMU_BACKEND_OBJ): EXTRA_CFLAGS := $(LIB_CFLAGS) -DIGNIS_CUDA
$(EMU_TEST_OBJS): EXTRA_CFLAGS := $(CRITERION_CFLAGS) $(BLAS_CFLAGS) $(IMG_CFLAGS) $(MPI_DEFS) -DIGNIS_CUDA \
    $(NCCL_DEFS) -DIGNIS_CLI=\"$(abspath $(CLI))\" -DIGNIS_SOURCE_DIR=\"$(abspath .)\"
$(EMU_DIR)/objects.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(EMU_LIB_OBJS)' | cmp -s - $@ || echo '$(EMU_LIB_OBJS)' > $@
# An archive, so the program takes only the members it uses (as the tests' libignis.a).
$(EMU_LIB): $(EMU_LIB_OBJS) $(EMU_DIR)/objects.txt
	rm -f $@
	$(AR) rcs $@ $(EMU_LIB_OBJS)
# The stand-in cuBLAS finds the runtime's device-range check in the program by name.
$(EMU_BIN): $(EMU_TEST_OBJS) $(EMU_SELFTEST_OBJ) $(EMU_LIB)
	$(CC) $(IG_LDFLAGS) -Wl,--export-dynamic-symbol=igemu_device_range -o $@ $(EMU_TEST_OBJS) $(EMU_SELFTEST_OBJ) \
	    $(EMU_LIB) $(CRITERION_LIBS) $(EMU_LIBS)

# The CLI on the emulated device: `ignis bench --device cuda` end to end (upload, training
# steps, the loss read at the end) on a few tiny steps, with IGNIS_CUDA_PROFILE's table.
EMU_CLI := $(EMU_DIR)/ignis
$(EMU_CLI): $(CLI_OBJS) $(EMU_LIB)
	$(CC) $(IG_LDFLAGS) -Wl,--export-dynamic-symbol=igemu_device_range -o $@ $(CLI_OBJS) $(EMU_LIB) $(EMU_LIBS)

ifeq ($(EMU_ON),1)
test-cuda-emu: $(EMU_BIN) $(EMU_CUBLAS) $(EMU_CUDNN) $(EMU_CLI)
	@echo "test-cuda-emu: the cuda suite on the EMULATED CUDA device (tests/cuda/emu: cuda/*.cu built by $(CXX), kernels run on the CPU; no GPU involved)"
	$(EMU_BIN) --filter 'cuda_emu/*' $(TEST_FLAGS)
	$(EMU_BIN) --filter 'cuda/*' $(TEST_FLAGS)
	IGEMU_QUIET=1 IGNIS_CUDA_PROFILE=1 $(EMU_CLI) bench --device cuda --synthetic --model resnet8 --batch 4 --steps 2 \
	    --warmup 1 --sgemm-size 0 > $(EMU_DIR)/bench.log 2>&1 || { cat $(EMU_DIR)/bench.log; exit 1; }
	@grep -E '^(train_images_per_s|final_loss):' $(EMU_DIR)/bench.log
	@grep -q '^conv2d_backward ig_conv2d ' $(EMU_DIR)/bench.log || { echo "test-cuda-emu: no profile table"; exit 1; }
	@echo "test-cuda-emu: ignis bench --device cuda on the emulated device: ok"
	IGEMU_QUIET=1 $(EMU_CLI) bench --device cuda --synthetic --model resnet8 --batch 4 --steps 2 --warmup 1 \
	    --sgemm-size 0 --amp bf16 > $(EMU_DIR)/bench-bf16.log 2>&1 || { cat $(EMU_DIR)/bench-bf16.log; exit 1; }
	@grep -qE '^final_loss: [0-9]' $(EMU_DIR)/bench-bf16.log || { cat $(EMU_DIR)/bench-bf16.log; exit 1; }
	@echo "test-cuda-emu: ignis bench --device cuda --amp bf16 (bf16 activations) on the emulated device: ok"
	@$(MAKE) --no-print-directory emu-train-check

# `ignis train --device cuda` on the emulated device, twice on a tiny generated IDX set:
# plainly (pinned async uploads, metrics kept on the device and read when shown) and with
# --log-steps (which reads every step): the epoch metrics and the weights must be identical.
# In fp32, then under --amp bf16 (bf16 activations, native bf16 kernels).
EMU_TRAIN := $(EMU_DIR)/train-check
.PHONY: emu-train-check
emu-train-check: $(EMU_CLI) $(EMU_CUBLAS) $(EMU_CUDNN)
	@for amp in off bf16; do \
	    d=$(EMU_TRAIN)/$$amp; rm -rf $$d && mkdir -p $$d/data && perl tests/cuda/emu/tiny_idx.pl $$d/data || exit 1; \
	    for mode in plain logged; do \
	        extra=; [ $$mode = logged ] && extra="--log-steps $$d/steps.txt"; \
	        IGEMU_QUIET=1 $(EMU_CLI) train --data $$d/data --model cnn --epochs 2 --batch 8 --schedule const \
	            --lr 0.05 --device cuda --amp $$amp --out $$d/$$mode $$extra > $$d/$$mode.log 2>&1 \
	            || { cat $$d/$$mode.log; exit 1; }; \
	        cut -d, -f1-6 $$d/$$mode/metrics.csv > $$d/$$mode.csv; done; \
	    cmp -s $$d/plain.csv $$d/logged.csv || { echo "emu-train-check ($$amp): metrics differ"; \
	        diff $$d/plain.csv $$d/logged.csv; exit 1; }; \
	    perl -e 'for (@ARGV) { open F,"<:raw",$$_ or die; local $$/; $$b=<F>; push @t, substr($$b, 8 + unpack("Q<",$$b)) } \
	        exit($$t[0] ne $$t[1])' $$d/plain/last.safetensors $$d/logged/last.safetensors \
	        || { echo "emu-train-check ($$amp): the weights differ"; exit 1; }; \
	    echo "amp $$amp:"; sed -n 2,3p $$d/plain.csv; done
	@echo "emu-train-check: ignis train --device cuda (fp32 and --amp bf16) on the emulated device: same metrics with and without per-step reads: ok"
else
test-cuda-emu:
	@echo "test-cuda-emu: skipped: CUDA emulator $(EMU_SUMMARY)"
endif

# ---------------------------------------------------------------------------
# Checking. `test` = deps, then `check` (tests + install check) in a sub-make,
# so the dependency check finishes before anything compiles, even with -j.
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

test: deps
	@$(MAKE) --no-print-directory check

ifeq ($(SANITIZE),1)
# Criterion counts a test as passed before its worker exits, so a leak that
# LeakSanitizer reports at exit would not fail the run: reports are written to
# $(SAN_LOG).<pid> instead, and any such file fails `check` after it is shown.
SAN_LOG := $(abspath $(BUILD))/tests/sanitizer-report
SAN_RUN_ENV := ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:log_path=$(SAN_LOG) \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SAN_LOG) \
	LSAN_OPTIONS=suppressions=$(abspath tests/dist/lsan-openmpi.supp):print_suppressions=0
check: $(TEST_BIN) $(DIST_DRIVER) all examples $(BUILD)/examples/readme_example
	@rm -f $(SAN_LOG).*
	$(SAN_RUN_ENV) $(TEST_BIN) $(TEST_FLAGS); status=$$?; \
	if ls $(SAN_LOG).* >/dev/null 2>&1; then \
	    cat $(SAN_LOG).*; echo "check: FAILED: sanitizer reports above ($(SAN_LOG).*)"; exit 1; \
	fi; exit $$status
	@# The programs a user copies from: the README's example, the demo and the one-process
	@# data-parallel example (synthetic data, 20 steps) must not leak either.
	@$(SAN_RUN_ENV) $(BUILD)/examples/readme_example >/dev/null && \
	$(SAN_RUN_ENV) $(BUILD)/examples/demo_mlp >/dev/null && \
	$(SAN_RUN_ENV) $(BUILD)/examples/ddp_train 20 /nonexistent >/dev/null; status=$$?; \
	if ls $(SAN_LOG).* >/dev/null 2>&1; then \
	    cat $(SAN_LOG).*; echo "check: FAILED: sanitizer reports from the examples above ($(SAN_LOG).*)"; exit 1; \
	fi; [ $$status -eq 0 ] || { echo "check: FAILED: an example exited with status $$status"; exit 1; }; \
	echo "check: README example, demo_mlp and ddp_train (one process) ran clean under ASan+UBSan, no leaks"
	$(MPI_TEST_NOTE)
	@echo "check: note: the emulated CUDA run (make test-cuda-emu) is not part of SANITIZE=1: ASan and fiber stacks do not mix"
	@$(MAKE) --no-print-directory install-check
else
check: $(TEST_BIN) $(DIST_DRIVER) all examples $(if $(EMU_ON),$(EMU_BIN) $(EMU_CUBLAS) $(EMU_CUDNN))
	$(TEST_BIN) $(TEST_FLAGS)
	$(MPI_TEST_NOTE)
	@$(MAKE) --no-print-directory test-cuda-emu
	@$(MAKE) --no-print-directory install-check
endif
# Says when the MPI tests of dist/ could not run (they skip themselves quietly).
MPI_TEST_NOTE = $(if $(MPI_DEFS),@command -v mpirun >/dev/null 2>&1 || echo "check: note: the MPI tests of dist/ were skipped: mpirun not found (install openmpi-bin)",\
    @echo "check: note: the MPI tests of dist/ were skipped: this build has no MPI: MPI $(MPI_SUMMARY)")

# Installs into a temporary prefix and builds the README example against it,
# through pkg-config (shared) and against libignis.a (static).
install-check: all
ifeq ($(SANITIZE),1)
	@echo "install-check: skipped under SANITIZE=1 (sanitized objects need the sanitizer runtime to link)"
else
	@CC="$(CC)" MAKE="$(MAKE)" tests/install/check_install.sh
endif

# `make run` trains the default model on Fashion-MNIST with `ignis train`'s defaults
# (RUN_ARGS are passed on, e.g. make run RUN_ARGS='--epochs 2'); `make demo` runs the
# small demo MLP.
run: deps
	@$(MAKE) --no-print-directory cli
	$(if $(filter 1,$(SANITIZE)),$(SAN_ENV)) $(CLI) train $(RUN_ARGS)

demo: deps
	@$(MAKE) --no-print-directory $(BUILD)/examples/demo_mlp
	$(if $(filter 1,$(SANITIZE)),$(SAN_ENV)) $(BUILD)/examples/demo_mlp

deps:
	@tools/deps.sh

# Each benchmark prints its numbers; the data loader's reads /usr/share/datasets/fashion-mnist
# (skipped with a message when absent). Benchmarks build in release mode by default.
# bench/compare.py runs `ignis bench` and ../shared/bench/torch_ref.py alternately on each
# config and prints medians and ratios (bench/README.md). A quick run:
#   make bench BENCH_REPS=1 BENCH_SECONDS=1 BENCH_CONFIGS='mlp:64:2 cnn:64:1'
BENCH_REPS ?= 5
BENCH_SECONDS ?= 4
BENCH_CONFIGS ?=
BENCH_TORCH ?= $(firstword $(wildcard ../shared/bench/torch_ref.py /work/shared/bench/torch_ref.py))
BENCH_PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
bench: deps
	@$(MAKE) --no-print-directory benches cli
	$(BENCH_PYTHON) bench/compare.py --ignis $(CLI) --torch '$(BENCH_TORCH)' --reps $(BENCH_REPS) \
	    --seconds $(BENCH_SECONDS) $(if $(BENCH_CONFIGS),--configs '$(BENCH_CONFIGS)')
	$(BUILD)/bench/loader_bench
	$(BUILD)/bench/conv_bench
	$(BUILD)/bench/gemm_bench
	$(BUILD)/bench/device_host_bench
	$(if $(MPI_DEFS),$(MPIRUN) -np 2 $(BUILD)/bench/allreduce_bench,@echo "bench: allreduce_bench skipped (built without MPI)")

# `ignis bench` times a reference cblas_sgemm itself.
$(BUILD)/obj/tools/cmd_bench.o: EXTRA_CFLAGS += $(BLAS_CFLAGS)

# Builds everything with -Werror under gcc and clang, each in its own folder.
check-warnings:
	$(MAKE) --no-print-directory CC=gcc BUILD=build/werror-gcc CFLAGS=-Werror \
	    all examples benches build/werror-gcc/tests/ignis_tests build/werror-gcc/tests/ddp_check \
	    build/werror-gcc/emu/ignis_cuda_emu_tests build/werror-gcc/emu/libcublas.so.13 \
	    build/werror-gcc/emu/libcudnn.so.9
	$(MAKE) --no-print-directory CC=clang BUILD=build/werror-clang CFLAGS=-Werror \
	    all examples benches build/werror-clang/tests/ignis_tests build/werror-clang/tests/ddp_check

# ---------------------------------------------------------------------------
# Fuzzing (clang's libFuzzer). `fuzz` re-enters make with FUZZ=1 so that the library
# itself is built with coverage instrumentation, in build/fuzz/.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR := build/fuzz

fuzz:
	@$(MAKE) --no-print-directory FUZZ=1 CC=$(FUZZ_CC) BUILD=$(FUZZ_DIR) fuzz-targets

fuzz-targets: $(FUZZ_BINS) $(BUILD)/make_seeds

$(BUILD)/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(STATIC_LIB)
	$(CC) $(IG_LDFLAGS) -fsanitize=fuzzer -o $@ $< $(STATIC_LIB) $(LIBS)

# The seed writer is an ordinary program (no instrumentation needed).
$(BUILD)/make_seeds: tests/fuzz/make_seeds.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O1 -g $(WARNINGS) $(IG_CPPFLAGS) $(IMG_CFLAGS) -o $@ $< $(IMG_LIBS)

# The targets fuzz-run runs (names after fuzz_), and extra libFuzzer options per target:
# safetensors gets the format's words as a dictionary and room for longer JSON headers;
# model gets the grammar's words and room for a few-KB description (fuzz_model skips more);
# csv gets separators and number forms and room for a few hundred rows; cifar room for four
# CIFAR-100 records plus the option byte (fuzz_cifar skips more).
FUZZ_TARGETS ?= $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_OPTS_safetensors := -dict=tests/fuzz/safetensors.dict -max_len=8192
FUZZ_OPTS_model := -dict=tests/fuzz/model.dict -max_len=4098
FUZZ_OPTS_csv := -dict=tests/fuzz/csv.dict -max_len=8192
FUZZ_OPTS_cifar := -max_len=12297

# One target for FUZZ_SECONDS from its corpus; a crash leaves its input in build/fuzz/.
define fuzz_run_one
	@echo "fuzz-run: fuzz_$(1) for $(FUZZ_SECONDS) s"
	@ASAN_OPTIONS=allocator_may_return_null=1 $(FUZZ_DIR)/fuzz_$(1) -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_OPTS_$(1)) \
	    $(FUZZ_DIR)/corpus/$(1) || { echo "fuzz-run: fuzz_$(1) found a problem (input saved in $(FUZZ_DIR)/)"; exit 1; }

endef

# Runs each target of FUZZ_TARGETS, one at a time, from the seeds (make_seeds for IDX and
# PNG, safetensors_seeds.sh for safetensors, model_seeds.sh for model descriptions,
# csv_seeds.sh and cifar_seeds.sh for the CSV and CIFAR readers) plus whatever corpus
# earlier runs left.
fuzz-run: fuzz
	@mkdir -p $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=$(FUZZ_DIR)/corpus/%)
	$(FUZZ_DIR)/make_seeds $(FUZZ_DIR)/corpus/idx $(FUZZ_DIR)/corpus/png
	tests/fuzz/safetensors_seeds.sh $(FUZZ_DIR)/corpus/safetensors
	tests/fuzz/model_seeds.sh $(FUZZ_DIR)/corpus/model
	tests/fuzz/csv_seeds.sh $(FUZZ_DIR)/corpus/csv
	tests/fuzz/cifar_seeds.sh $(FUZZ_DIR)/corpus/cifar
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run_one,$(t)))

# The safetensors reader alone, run exactly as fuzz-run runs it.
fuzz-safetensors:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_TARGETS=safetensors

# ---------------------------------------------------------------------------
# Installing. DESTDIR is prepended to every path (for packaging); symlinks of
# the shared library are recreated, not copied as files.
install: all
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(INCLUDEDIR)/ignis
	$(INSTALL) -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHARED_LIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libignis.so
	$(INSTALL) -m 755 $(CLI) $(DESTDIR)$(BINDIR)/
	for h in $(PUBLIC_HEADERS); do \
	    $(INSTALL) -D -m 644 $$h $(DESTDIR)$(INCLUDEDIR)/ignis/$$h || exit 1; \
	done
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@MPI_LIBS@|$(MPI_LIBS)|' \
	    -e 's|@CUDA_LIBS@|$(CUDA_LIBS)|' \
	    ignis.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/ignis.pc
	@echo "installed ignis $(VERSION) into $(DESTDIR)$(PREFIX) (run ldconfig if $(LIBDIR) is a system library folder)"

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libignis.a $(DESTDIR)$(LIBDIR)/libignis.so \
	      $(DESTDIR)$(LIBDIR)/libignis.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libignis.so.$(VERSION) \
	      $(DESTDIR)$(BINDIR)/ignis $(DESTDIR)$(PKGCONFIGDIR)/ignis.pc
	rm -rf $(DESTDIR)$(INCLUDEDIR)/ignis

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(EXAMPLE_OBJS:.o=.d) $(BENCH_OBJS:.o=.d) \
    $(FUZZ_OBJS:.o=.d) $(DIST_DRIVER_OBJ:.o=.d) $(EMU_CU_OBJS:.o=.d) $(EMU_RT_OBJ:.o=.d) $(EMU_BACKEND_OBJ:.o=.d) \
    $(EMU_TEST_OBJS:.o=.d) $(EMU_SELFTEST_OBJ:.o=.d)
