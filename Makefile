# Thin wrapper around meson for the README's commands.
BUILD ?= build
CONFIG ?=
# The ASan+UBSan build that make test also runs the tests against.
ASAN_BUILD ?= $(BUILD)-asan

.PHONY: all build run test unit integration clean deps

all: build

deps:
	scripts/setup-host.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Install everything, build, reserve hugepages and run the daemon in the
# foreground on the embedded default config (or CONFIG=file.json).
run: build
	$(BUILD)/vhostd $(if $(CONFIG),-c $(CONFIG))

# The whole suite: unit, integration and fuzz tests, then the unit tests and
# the daemon's integration tests again on an ASan+UBSan build (ASAN_BUILD).
test:
	$(MAKE) build
	scripts/run-tests.sh $(BUILD) $(ASAN_BUILD)

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

integration: build
	meson test -C $(BUILD) --suite integration --print-errorlogs

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz $(ASAN_BUILD)
