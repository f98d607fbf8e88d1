# Thin wrapper around meson for the README's commands.
BUILD ?= build
CONFIG ?=

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

# The whole suite: unit tests, then integration tests with real peers.
test:
	$(MAKE) build
	scripts/run-tests.sh $(BUILD)

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

integration: build
	meson test -C $(BUILD) --suite integration --print-errorlogs

clean:
	rm -rf $(BUILD)
