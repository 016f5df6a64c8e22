# airlock: the two commands of the quick start, and a few more.
#
#   make demo   install missing dependencies, build, run the end-to-end demonstration
#   make test   install missing dependencies, build, run the whole suite, then the same
#               suite under ASan + UBSan, then a short libFuzzer run of every fuzz target
#   make bench  build and run every benchmark in bench/ 5 times (BENCH_ROUNDS), interleaved,
#               printing the median and min..max of each figure
#   make fuzz   longer fuzz runs (FUZZ_SECONDS per target, default 300)
#   make package  build the Debian package build/airlock_VERSION_ARCH.deb (CPack)
#
# Build trees: build/ (normal), build-asan/ (sanitizers), build-fuzz/ (clang + libFuzzer).

JOBS          ?= $(shell nproc 2>/dev/null || echo 2)
BUILD         ?= build
BUILD_ASAN    ?= build-asan
BUILD_FUZZ    ?= build-fuzz
FUZZ_SECONDS  ?= 20
CTEST_FLAGS   ?= --output-on-failure --no-tests=error -j $(JOBS)

# LeakSanitizer is on: every test must exit leak-free. abort_on_error gives a core/stack.
export ASAN_OPTIONS  ?= detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

.PHONY: all deps build build-asan build-fuzz test test-normal test-asan fuzz-short fuzz demo bench package clean

all: build

deps:
	@./scripts/install-deps

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DAIRLOCK_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)

build-fuzz: deps
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIRLOCK_FUZZ=ON >/dev/null
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_all

test: build build-asan
	@./scripts/check-configure-once $(BUILD)
	@echo "== test suite (normal build)"
	ctest --test-dir $(BUILD) $(CTEST_FLAGS)
	@echo "== test suite (ASan + UBSan build)"
	ctest --test-dir $(BUILD_ASAN) $(CTEST_FLAGS)
	@$(MAKE) --no-print-directory fuzz-short

# A short fuzz run of every target, part of `make test` when clang is present.
fuzz-short:
	@if command -v clang >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory build-fuzz && \
	    ./scripts/fuzz $(BUILD_FUZZ) $(FUZZ_SECONDS); \
	else echo "== fuzz: clang not found, skipping the short fuzz run"; fi

fuzz: build-fuzz
	./scripts/fuzz $(BUILD_FUZZ) $(if $(filter command line,$(origin FUZZ_SECONDS)),$(FUZZ_SECONDS),300)

demo: build
	./scripts/demo $(BUILD)

bench: build
	./scripts/bench $(BUILD)

package: build
	cmake --build $(BUILD) --target package

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
