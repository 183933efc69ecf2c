# linkstyle: `make demo` runs the main job on the built-in default, `make test` runs the tests.
# Both install missing Debian packages first (as root) and build incrementally.

BUILD ?= build
JOBS ?= 2
STUDY ?= $(BUILD)/demo-shapes
# The demo's shapes generator: faithful (trained against the renderer) or gan (models/README.md).
GENERATOR ?= faithful

.PHONY: all dependencies configure build demo test test-sanitize bench fuzz clean

all: build

dependencies:
	@bash tools/ensure-dependencies.sh

$(BUILD)/build.ninja: CMakeLists.txt | dependencies
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

configure: dependencies $(BUILD)/build.ninja

build: configure
	@ninja -C $(BUILD) -j$(JOBS)

demo: build
	@bash tools/demo.sh $(BUILD)/linkstyle $(STUDY) $(GENERATOR)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The whole test suite built with AddressSanitizer and UndefinedBehaviorSanitizer (in its own
# build folder); any report fails the run.
SANITIZE_BUILD ?= build-sanitize
test-sanitize: dependencies
	cmake -S . -B $(SANITIZE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLINKSTYLE_SANITIZE=ON
	ninja -C $(SANITIZE_BUILD) -j$(JOBS)
	cd $(SANITIZE_BUILD) && \
	  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS)

bench: build
	@bash bench/run.sh $(BUILD)

# `make fuzz`: libFuzzer targets for the file parsers (npy, safetensors, study.toml, IDX, pairs
# manifest; fuzz/), built with clang++ into build-fuzz. Each runs FUZZ_SECONDS on its corpus in
# tests/fuzz_corpus/<name>, and the inputs that add coverage are merged into it (-merge=1). Fails
# when a target finds a crash, sanitizer report, hang or huge allocation; the inputs go to
# build-fuzz/findings/<name>/. FUZZ_TARGETS, FUZZ_FLAGS, FUZZ_MINIMISE: see fuzz/run.sh.
# The targets link the project's library ($(BUILD)/liblinkstyle.a) and compile the parsers named
# in cmake/linkstyle_sources.cmake. `make test` builds them too and replays each corpus once
# (the Fuzz.Replay test).
FUZZ_SECONDS ?= 60

fuzz: build
	FUZZ_SECONDS=$(FUZZ_SECONDS) BUILD_FUZZ=build-fuzz LINKSTYLE_BUILD=$(BUILD) JOBS=$(JOBS) bash fuzz/run.sh

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD) build-fuzz
