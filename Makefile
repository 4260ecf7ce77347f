# The two entry points of a fresh Debian 12 machine:
#   make run    install what is missing, build (Release), serve the bundled model
#   make test   install what is missing, build, run the test suite
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# The main job: rmt-server on the bundled reference model.
MODEL ?= models/rmt-babi
LISTEN ?= 0.0.0.0:50051
METRICS_LISTEN ?= 0.0.0.0:9464
# make ask: one question about one file, offline (rmt-cli).
DOC ?= /usr/share/games/fortunes/science
QUESTION ?= Where is Mary?
# make loadgen: against a running server.
SERVER ?= localhost:50051
SESSIONS ?= 16
TOKENS ?= 4096
CTEST_FLAGS ?= --output-on-failure -j $(JOBS) -LE slow

.PHONY: all deps build run ask loadgen test test-all bench reference-model clean

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

test: build
	ctest --test-dir $(BUILD_DIR) $(CTEST_FLAGS)

# Every test, the slow ones too.
test-all: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

bench: build
	$(BUILD_DIR)/bench/rmt-bench

# Retrains the reference model into build/reference-model and evaluates it
# (about an hour on 2 cores); see README "Quality".
reference-model: build
	bash scripts/reference_model.sh $(BUILD_DIR) build/reference-model

clean:
	rm -rf $(BUILD_DIR)
