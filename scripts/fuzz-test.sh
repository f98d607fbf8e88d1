#!/bin/sh
# One short libFuzzer run, as a meson test (suite "fuzz"):
#   scripts/fuzz-test.sh TARGET FUZZ_BUILD_DIR
# Builds the fuzzers in FUZZ_BUILD_DIR (CC=clang meson setup -Dfuzz=true) the
# first time, then runs fuzz_TARGET for FUZZ_SECONDS (default 30) on a copy
# of tests/fuzz/corpus/TARGET (the repository is never written). Fails on
# any crash, leak, timeout, sanitizer report or broken invariant (the input
# is kept in FUZZ_BUILD_DIR/artifacts/); exits 77 (skipped) when clang or
# libFuzzer (Debian: clang, libclang-rt-14-dev) is missing.
set -u
target=$1
fbuild=$2
secs=${FUZZ_SECONDS:-30}
src=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v clang >/dev/null 2>&1; then
	echo "SKIP: clang not installed (scripts/setup-host.sh --test)"
	exit 77
fi
if [ -z "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep /)" ] ||
	[ ! -e "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]; then
	echo "SKIP: libFuzzer runtime not installed (libclang-rt-14-dev)"
	exit 77
fi

# One build directory for every target; the first test configures it.
mkdir -p "$fbuild"
exec 9>"$fbuild/.fuzz-lock"
flock 9
if [ ! -e "$fbuild/build.ninja" ]; then
	CC=clang meson setup "$fbuild" "$src" -Dfuzz=true >"$fbuild/setup.log" 2>&1 || {
		cat "$fbuild/setup.log"
		exit 1
	}
fi
ninja -C "$fbuild" "tests/unit/fuzz_$target" >"$fbuild/ninja-$target.log" 2>&1 || {
	cat "$fbuild/ninja-$target.log"
	exit 1
}
flock -u 9

opts=""
case $target in
jsonrpc) opts="-max_len=4096 -dict=$src/tests/fuzz/jsonrpc.dict" ;;
config | ovsdb) opts="-max_len=4096" ;;
virtq) opts="-max_len=16402" ;;
scsi_cdb) opts="-max_len=1024" ;;
scsi_req) opts="-max_len=12311" ;;
net) opts="-max_len=4096" ;;
libvirt_xml) opts="-max_len=8192 -dict=$src/tests/fuzz/libvirt_xml.dict" ;;
esac

corpus=$(mktemp -d /tmp/vhostd-fuzz-$target.XXXXXX)
trap 'rm -rf "$corpus"' EXIT
if [ -d "$src/tests/fuzz/corpus/$target" ]; then
	cp "$src/tests/fuzz/corpus/$target"/* "$corpus/"
fi
mkdir -p "$fbuild/artifacts"
log="$corpus.log"
trap 'rm -rf "$corpus" "$log"' EXIT
"$fbuild/tests/unit/fuzz_$target" $opts -max_total_time="$secs" -timeout=20 \
	-rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$fbuild/artifacts/$target-" \
	"$corpus" >"$log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
	# The report (progress lines are noise).
	grep -v -e '^#[0-9]' -e '^INFO:' -e 'NEW_FUNC' -e '^"' "$log" | tail -n 80
	echo "FAIL: fuzz_$target exited $rc; input kept in $fbuild/artifacts/"
	exit 1
fi
grep -h -e '^Done' -e '^stat::' "$log"
exit 0
