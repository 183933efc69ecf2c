# linkstyle: `make demo` runs the main job on the built-in default, `make test` runs the tests.
# Both install missing Debian packages first (as root) and build incrementally.

BUILD ?= build
JOBS ?= 2
STUDY ?= $(BUILD)/demo-shapes

.PHONY: all dependencies configure build demo test bench clean

all: build

dependencies:
	@bash tools/ensure-dependencies.sh

$(BUILD)/build.ninja: CMakeLists.txt | dependencies
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

configure: dependencies $(BUILD)/build.ninja

build: configure
	@ninja -C $(BUILD) -j$(JOBS)

demo: build
	@bash tools/demo.sh $(BUILD)/linkstyle $(STUDY)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

bench: build
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)
