#!/bin/sh
# Run every meson test and close with the line CI reads:
# "N passed, N failed" (skipped tests are reported after it).
set -u
build=${1:-build}
meson test -C "$build" --print-errorlogs --num-processes 1
rc=$?
python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
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
