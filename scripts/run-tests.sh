#!/bin/sh
# Run the test suite and close with the line CI reads, once for the whole run:
# "N passed, N failed, N skipped".
#   scripts/run-tests.sh BUILD [ASAN_BUILD]
# 1. every meson test of BUILD: unit, integration and fuzz (short libFuzzer
#    runs of each harness, in BUILD-fuzz; see tests/fuzz/README);
# 2. with ASAN_BUILD: the same sources built with gcc and
#    -Db_sanitize=address,undefined -fno-sanitize-recover=undefined (configured
#    here the first time), its unit tests and the integration tests of
#    ASAN_INTEGRATION against it (VHOSTD_BUILD=ASAN_BUILD), every report fatal.
set -u
build=${1:-build}
asan=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
# The integration tests that run against the sanitizer build: those that
# drive vhostd's own code (switching, control socket, scsi, ethdev, PMD
# threads) without booting a guest, which takes several times longer under
# ASan and adds no vhostd code of its own.
: "${ASAN_INTEGRATION:=net_switch control scsi ethdev pmd_governor}"
rc=0
logs="$build/meson-logs/testlog.json"

rm -f "$build/meson-logs/testlog.json"
meson test -C "$build" --print-errorlogs --num-processes 1 || rc=1

if [ -n "$asan" ]; then
	logs="$logs $asan/meson-logs/asan-unit.json $asan/meson-logs/asan-integration.json"
	rm -f "$asan/meson-logs/asan-unit.json" "$asan/meson-logs/asan-integration.json"
	if [ ! -e "$asan/build.ninja" ]; then
		# -O1: builds faster, and what the sanitizers' documentation advises.
		CC=gcc meson setup "$asan" "$src" -Db_sanitize=address,undefined -Db_lundef=false \
			-Doptimization=1 -Dc_args=-fno-sanitize-recover=undefined || rc=1
	fi
	if ninja -C "$asan"; then
		# halt_on_error + abort_on_error: the first report ends the process
		# (vhostd dies, its test fails; harness.py also fails a test whose
		# vhostd log holds a report). Leaks: tests/lsan.supp says which
		# allocations are not ours to free.
		(
			export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:check_initialization_order=1:strict_string_checks=1
			export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
			export LSAN_OPTIONS=suppressions=$src/tests/lsan.supp:print_suppressions=0
			r=0
			meson test -C "$asan" --print-errorlogs --num-processes 1 --suite unit \
				--logbase asan-unit || r=1
			# shellcheck disable=SC2086
			meson test -C "$asan" --print-errorlogs --num-processes 1 \
				--suite integration --logbase asan-integration $ASAN_INTEGRATION || r=1
			exit $r
		) || rc=1
	else
		rc=1
	fi
fi

python3 - $logs <<'PY'
import json, os, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    if not os.path.exists(path):
        failed += 1  # a phase that could not run (build failure)
        continue
    for line in open(path):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
PY
exit $rc
