# The two entry points of a fresh Debian 12 machine:
#   make run    install what is missing, build (Release), serve the bundled model
#   make test   install what is missing, build, run the test suite
BUILD_DIR ?= build
# ccache (when installed) hashes paths relative to the checkout, so a fresh
# clone (CI) reuses what an earlier build of the same sources compiled.
export CCACHE_BASEDIR ?= $(CURDIR)
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# The main job: rmt-server on the bundled reference model.
MODEL ?= models/rmt-babi
LISTEN ?= 0.0.0.0:50051
METRICS_LISTEN ?= 127.0.0.1:9464
# make ask: one question about one file, offline (rmt-cli).
DOC ?= /usr/share/games/fortunes/science
QUESTION ?= Where is Mary?
# make loadgen: against a running server.
SERVER ?= localhost:50051
SESSIONS ?= 16
TOKENS ?= 4096
CTEST_FLAGS ?= --output-on-failure -j $(JOBS)
# make fuzz: libFuzzer targets (clang, no torch) in their own build directory.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps build run ask loadgen test bench reference-model clean fuzz
.PHONY: format format-check tidy test-sanitize test-tsan soak
.PHONY: build-torch2 test-torch2
.PHONY: bench-compare

all: build

deps:
	@bash scripts/install_deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/server/rmt-server --model="$(MODEL)" --listen="$(LISTEN)" \
	  --metrics_listen="$(METRICS_LISTEN)"

ask: build
	$(BUILD_DIR)/tools/rmt-cli --model="$(MODEL)" --doc="$(DOC)" --question="$(QUESTION)"

loadgen: build
	$(BUILD_DIR)/client/rmt-loadgen --server="$(SERVER)" --sessions=$(SESSIONS) --tokens=$(TOKENS)

test: format-check build
	ctest --test-dir $(BUILD_DIR) $(CTEST_FLAGS)

# The second configuration: LibTorch 2.x with CUDA from PyTorch's wheel
# (scripts/torch_wheel.sh makes TORCH2_BUILD_DIR/venv; the CUDA 13 toolkit
# must be installed, no GPU needed), with RMT_CUDA on (CUDA graphs, streams,
# the GPU tests, which skip without a GPU). Everything else (gRPC, protobuf,
# abseil, ...) still comes from Debian. test-torch2 runs the whole suite there
# on the CPU (cmake/torch_wheel.cmake keeps the wheel's libc10 and protobuf
# headers apart from Debian's).
TORCH2_BUILD_DIR ?= build-torch2
TORCH_CUDA_ARCH_LIST ?= 9.0

build-torch2: deps
	@prefix=$$(TORCH2_VENV=$(TORCH2_BUILD_DIR)/venv bash scripts/torch_wheel.sh) && \
	if [ ! -f $(TORCH2_BUILD_DIR)/build.ninja ]; then \
	  set -x; CUDACXX=$$(command -v nvcc) TORCH_CUDA_ARCH_LIST="$(TORCH_CUDA_ARCH_LIST)" \
	  cmake -S . -B $(TORCH2_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	    -DCMAKE_PREFIX_PATH="$$prefix" \
	    -DTORCH_CUDA_ARCH_LIST="$(TORCH_CUDA_ARCH_LIST)" -DRMT_CUDA=ON $(CMAKE_FLAGS); \
	fi
	cmake --build $(TORCH2_BUILD_DIR) -j $(JOBS)

test-torch2: build-torch2
	ctest --test-dir $(TORCH2_BUILD_DIR) $(CTEST_FLAGS)

# clang-format (.clang-format at the root): make test fails on an unformatted
# file; make format formats them all.
format-check: deps
	@bash scripts/check_format.sh

format: deps
	@bash scripts/check_format.sh --fix

# clang-tidy with the root .clang-tidy over the project's sources (slow: about
# a minute per torch file on 2 cores). TIDY_PATHS narrows it: make tidy
# TIDY_PATHS=model/
TIDY_PATHS ?=
tidy: build
	bash scripts/run_tidy.sh $(BUILD_DIR) $(TIDY_PATHS)

# The fast suite under AddressSanitizer + UndefinedBehaviorSanitizer, and the
# engine and server tests under ThreadSanitizer, each in a build directory of
# its own. Warnings are not errors there: -O1 warns differently from -O3, and
# make test already holds the line.
ASAN_BUILD_DIR ?= build-asan
TSAN_BUILD_DIR ?= build-tsan
SANITIZER_DIR := $(CURDIR)/tests/sanitizers
SANITIZER_CMAKE_FLAGS := -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DRMT_WERROR=OFF \
  -DRMT_BUILD_BENCHMARKS=OFF
# The build runs the tests too (gtest_discover_tests lists them), so the
# options hold for cmake --build as well as ctest.
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:strict_init_order=1 \
  LSAN_OPTIONS=suppressions=$(SANITIZER_DIR)/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$(SANITIZER_DIR)/ubsan.supp
# OMP_NUM_THREADS=1: LibTorch's OpenMP workers synchronise through libgomp,
# which TSan cannot see; with one thread there are none.
TSAN_ENV := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(SANITIZER_DIR)/tsan.supp \
  OMP_NUM_THREADS=1
TSAN_TESTS := engine_test memory_pool_test server_test server_drain_test \
  metrics_endpoint_test server_hardening_test session_test \
  session_store_server_test snapshot_codec_test auth_test

test-sanitize: deps
	cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja $(SANITIZER_CMAKE_FLAGS) \
	  -DRMT_SANITIZE=address,undefined $(CMAKE_FLAGS)
	$(ASAN_ENV) cmake --build $(ASAN_BUILD_DIR) -j $(JOBS)
	$(ASAN_ENV) ctest --test-dir $(ASAN_BUILD_DIR) $(CTEST_FLAGS)

# Only TSAN_TESTS are built; ctest's placeholders for the others
# (<name>_NOT_BUILT), the deploy scripts (they need rmt-client) and
# train_init and eval_unknown (rmt-import, rmt-train, rmt-eval) are skipped.
test-tsan: deps
	cmake -S . -B $(TSAN_BUILD_DIR) -G Ninja $(SANITIZER_CMAKE_FLAGS) \
	  -DRMT_SANITIZE=thread $(CMAKE_FLAGS)
	$(TSAN_ENV) cmake --build $(TSAN_BUILD_DIR) -j $(JOBS) --target $(TSAN_TESTS)
	$(TSAN_ENV) ctest --test-dir $(TSAN_BUILD_DIR) $(CTEST_FLAGS) -E '_NOT_BUILT$$|^deploy_|^train_init$$|^eval_unknown$$'

bench: build
	$(BUILD_DIR)/bench/rmt-bench

# The C++ raw step, the C++ engine and the same step in PyTorch eager
# (bench/eager_reference.py on PYTHON's torch, which must be the build's
# LibTorch: Debian's python3-torch for this build) side by side, interleaved
# in one run, after checking that both compute the same numbers
# (docs/benchmarks.md).
PYTHON ?= /usr/bin/python3
COMPARE_THREADS ?= 2
COMPARE_FLAGS ?=
bench-compare: build
	$(PYTHON) bench/bench_compare.py --bench $(BUILD_DIR)/bench/rmt-bench \
	  --python $(PYTHON) --threads $(COMPARE_THREADS) \
	  --work_dir $(BUILD_DIR)/bench-compare $(COMPARE_FLAGS)

# Builds the fuzzers (tests/fuzz) and runs each for FUZZ_SECONDS on a copy of
# its seed corpus; fails on any crash, leak or sanitizer report.
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja \
	  -DCMAKE_BUILD_TYPE=Release -DRMT_BUILD_FUZZERS=ON
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS)
	bash scripts/run_fuzzers.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS)

# Retrains the reference model into build/reference-model and evaluates it
# on the CPU: about 76 minutes for the first three stages, many hours for
# the two 512-segment stages (10 minutes on one H100); see README "Quality".
reference-model: build
	bash scripts/reference_model.sh $(BUILD_DIR) build/reference-model

clean:
	rm -rf $(BUILD_DIR)

# 10 minutes of load and snapshot/import loops against one rmt-server;
# fails if a call fails or RSS grows more than 10% after warm-up
# (SOAK_SECONDS, SOAK_WARMUP, SOAK_SESSIONS, SOAK_TOKENS to change it).
soak: build
	bash scripts/soak.sh $(BUILD_DIR)
