# The two entry points of a fresh Debian 12 machine:
#   make run    install what is missing, build (Release), run the main job
#   make test   install what is missing, build, run the test suite
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# The main job: answer a question about a document.
MODEL ?=
DOC ?= /usr/share/games/fortunes/science
QUESTION ?= What is this text about?
CTEST_FLAGS ?= --output-on-failure -j $(JOBS) -LE slow

.PHONY: all deps build run test test-all bench clean

all: build

deps:
	@bash scripts/install_deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/tools/rmt-cli --model="$(MODEL)" --doc="$(DOC)" --question="$(QUESTION)"

test: build
	ctest --test-dir $(BUILD_DIR) $(CTEST_FLAGS)

# Every test, the slow ones too.
test-all: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

bench: build
	$(BUILD_DIR)/bench/rmt-bench

clean:
	rm -rf $(BUILD_DIR)
