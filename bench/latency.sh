#!/usr/bin/env bash
# latency.sh - latency of single frames through vhostd and OVS-DPDK, side by
# side, with idle gaps between the frames (how fast does an idle switch wake
# up?), plus the switch's CPU use over the same time.
#
# The tool is build/bench/vhostd-latency (bench/latency.c) on CPU G; the
# switch under test runs on CPU S.  Rows:
#   vhostd-reflector       tool port vhu0 <-> vhostd xconnect <-> reflector
#                          port: the frame goes in and comes back out of vhu0
#                          (round trip through the switch, two vhost copies)
#   vhostd-xconnect-2port  tool ports a, b; vhostd cross-connects a <-> b:
#                          sent on a, received on b (one way)
#   ovs-dpdk               tool ports vhu-a, vhu-b (dpdkvhostuser), flows
#                          in_port=1->2, 2->1: sent on vhu-a, received on vhu-b
# each vhostd row once per --vhostd-pmd mode, the OVS row once per
# --ovs-maxsleep value.  Prints one table; asserts nothing.
#
# Run by hand, as root.  See bench/README.md.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
LIB_NAME=latency
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

ALL_ROWS=(vhostd-reflector vhostd-xconnect-2port ovs-dpdk)

COUNT=100
WARMUP=10
GAP_MS=100
TIMEOUT_MS=1000
SIZE=64
ONLY=
GEN_CPU=0
SW_CPU=1
VHOSTD="$REPO_DIR/build/vhostd"
LATENCY="$REPO_DIR/build/bench/vhostd-latency"
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
OVS_MAXSLEEP=10000
VHOSTD_PMDS=()
KEEP=0

GEN_MEM=256
OVS_MEM=1024
VHOSTD_MEM=1024   # a guess: vhostd's config leaves the amount to the daemon

usage() {
	cat <<EOF
Usage: $0 [options]

Latency of single frames with idle gaps through vhostd and OVS-DPDK (tool
bench/latency.c on CPU G, switch on CPU S), and the switch's CPU use.

Options:
  --count N           measured frames per row (default $COUNT)
  --warmup N          frames sent first, not counted (default $WARMUP)
  --gap-ms X          time between two frames, 0 = back to back (default $GAP_MS)
  --timeout-ms X      a frame not back by then is lost (default $TIMEOUT_MS)
  --size N            frame size in bytes, without FCS (default $SIZE)
  --only LIST         rows to run, comma separated (default: all):
                      ${ALL_ROWS[*]}
  --vhostd-pmd JSON   members merged into vhostd's "pmd" object, one vhostd
                      mode per option (repeatable), e.g.
                      --vhostd-pmd '{"max-sleep-us": 100}'
                      (default: one mode, '{"max-sleep-us": 100}')
  --max-sleep-us LIST shorthand: one --vhostd-pmd '{"max-sleep-us": N}' per N
  --ovs-maxsleep LIST OVS other_config:pmd-maxsleep values in us, comma
                      separated, 0 = busy polling (default $OVS_MAXSLEEP)
  --gen-cpu G         CPU of the latency tool (default $GEN_CPU)
  --sw-cpu S          CPU of the switch under test (default $SW_CPU)
  --vhostd PATH       vhostd binary (default $VHOSTD)
  --latency PATH      vhostd-latency binary (default $LATENCY)
  --ovs-vswitchd PATH DPDK-enabled ovs-vswitchd (default $OVS_VSWITCHD)
  --keep              keep the temp dir (logs, configs, raw samples)
  -h, --help          this help

Must run as root with free 2 MiB hugepages.  Stops everything it started.
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--count) COUNT=${2:?}; shift 2 ;;
	--warmup) WARMUP=${2:?}; shift 2 ;;
	--gap-ms) GAP_MS=${2:?}; shift 2 ;;
	--timeout-ms) TIMEOUT_MS=${2:?}; shift 2 ;;
	--size) SIZE=${2:?}; shift 2 ;;
	--only) ONLY=${2:?}; shift 2 ;;
	--vhostd-pmd) VHOSTD_PMDS+=("${2:?}"); shift 2 ;;
	--max-sleep-us)
		IFS=, read -r -a ms <<<"${2:?}"
		for m in "${ms[@]}"; do
			[[ $m =~ ^[0-9]+$ ]] || die "--max-sleep-us: '$m' is not a number"
			VHOSTD_PMDS+=("{\"max-sleep-us\": $m}")
		done
		shift 2 ;;
	--ovs-maxsleep) OVS_MAXSLEEP=${2:?}; shift 2 ;;
	--gen-cpu) GEN_CPU=${2:?}; shift 2 ;;
	--sw-cpu) SW_CPU=${2:?}; shift 2 ;;
	--vhostd) VHOSTD=${2:?}; shift 2 ;;
	--latency) LATENCY=${2:?}; shift 2 ;;
	--ovs-vswitchd) OVS_VSWITCHD=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done
[ ${#VHOSTD_PMDS[@]} -gt 0 ] || VHOSTD_PMDS=('{"max-sleep-us": 100}')

# ---------------------------------------------------------------- checks --

is_num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be an integer"
is_num "$GAP_MS" || die "--gap-ms must be a number"
is_num "$TIMEOUT_MS" || die "--timeout-ms must be a number"
[[ $SIZE =~ ^[0-9]+$ ]] && [ "$SIZE" -ge 60 ] && [ "$SIZE" -le 2048 ] ||
	die "--size must be 60..2048"
[[ $GEN_CPU =~ ^[0-9]+$ && $SW_CPU =~ ^[0-9]+$ ]] || die "CPUs must be integers"
[ "$GEN_CPU" != "$SW_CPU" ] || die "--gen-cpu and --sw-cpu must differ"
IFS=, read -r -a OVS_SLEEPS <<<"$OVS_MAXSLEEP"
for m in "${OVS_SLEEPS[@]}"; do
	[[ $m =~ ^[0-9]+$ ]] && [ "$m" -le 10000 ] || die "--ovs-maxsleep: '$m' must be 0..10000"
done

mapfile -t ROWS < <(select_names row "$ONLY" "${ALL_ROWS[@]}")
[ ${#ROWS[@]} -gt 0 ] || exit 1
has() { local x; for x in "${ROWS[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }

[ "$(id -u)" = 0 ] || die "must run as root (DPDK needs hugepages and vhost-user)"
check_cpus "$GEN_CPU" "$SW_CPU"
command -v python3 >/dev/null || die "python3 not found"
command -v taskset >/dev/null || die "taskset (util-linux) not found"
[ -x "$LATENCY" ] || die "$LATENCY not found (meson setup build && ninja -C build)"

# The pmd objects: {"cpus": "S", "max-sleep-us": 0} with each mode merged in.
# Prints the object and a short label on two lines.
pmd_object() {  # json
	python3 - "$SW_CPU" "$1" <<'EOF'
import json, sys
try:
    extra = json.loads(sys.argv[2])
except ValueError as e:
    sys.exit("not JSON: %s" % e)
if not isinstance(extra, dict):
    sys.exit("not a JSON object")
pmd = {"cpus": sys.argv[1], "max-sleep-us": 0}
pmd.update(extra)
print(json.dumps(pmd))
print(",".join("%s=%s" % (k, json.dumps(v).strip('"')) for k, v in extra.items()) or "default")
EOF
}
PMD_OBJ=() PMD_LABEL=()
for j in "${VHOSTD_PMDS[@]}"; do
	out=$(pmd_object "$j") || die "--vhostd-pmd '$j': bad value"
	PMD_OBJ+=("$(sed -n 1p <<<"$out")")
	PMD_LABEL+=("$(sed -n 2p <<<"$out")")
done

SKIP_REASON=()   # "row|reason"
skip() { SKIP_REASON+=("$1|$2"); log "skipping $1: $2"; }
skipped() { local e; for e in "${SKIP_REASON[@]}"; do [ "${e%%|*}" = "$1" ] && return 0; done; return 1; }
if has ovs-dpdk && why=$(ovs_missing "$OVS_VSWITCHD"); then skip ovs-dpdk "$why"; fi
for r in vhostd-reflector vhostd-xconnect-2port; do
	if has $r && [ ! -x "$VHOSTD" ]; then
		skip $r "$VHOSTD does not exist (build it: meson setup build && ninja -C build)"
	fi
done

sw_mem=0
for r in "${ROWS[@]}"; do
	skipped "$r" && continue
	case "$r" in
	ovs-*) m=$OVS_MEM ;;
	vhostd-*) m=$VHOSTD_MEM ;;
	esac
	[ "$m" -gt "$sw_mem" ] && sw_mem=$m
done
check_hugepages $(( GEN_MEM + sw_mem ))

# -------------------------------------------------------------- cleanup --

TMP=$(mktemp -d /tmp/latency.XXXXXX)
chmod 755 "$TMP"
GEN_PREFIX="vlat$$gen"
VHOSTD_PREFIX="vlat$$sw"
OVS_PREFIX="vlat$$ovs"
OVSDIR="$TMP/ovs"
FAILED=0
SW_PIDS=()
GEN_PID=
RESULTS="$TMP/results.txt"   # row|mode|path|json
: >"$RESULTS"

CLEAN_PREFIXES=("$GEN_PREFIX" "$VHOSTD_PREFIX" "$OVS_PREFIX")
install_cleanup

# ------------------------------------------------------------- switches --

SOCK0=
SOCK1=

start_vhostd_lat() {  # row mode-index
	local row=$1 i=$2 d="$TMP/$1-$2" ports xc
	mkdir -p "$d"
	if [ "$row" = vhostd-reflector ]; then
		SOCK0="$d/vhu0.sock" SOCK1=
		ports="{\"name\": \"vhu0\", \"type\": \"vhost-user\", \"socket\": \"$SOCK0\", \"mode\": \"server\"},
    {\"name\": \"refl\", \"type\": \"reflector\"}"
		xc='[{"name": "x0", "ports": ["vhu0", "refl"]}]'
	else
		SOCK0="$d/a.sock" SOCK1="$d/b.sock"
		ports="{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"$SOCK0\", \"mode\": \"server\"},
    {\"name\": \"b\", \"type\": \"vhost-user\", \"socket\": \"$SOCK1\", \"mode\": \"server\"}"
		xc='[{"name": "x0", "ports": ["a", "b"]}]'
	fi
	cat >"$d/vhostd.json" <<EOF
{
  "vhostd": {"run-dir": "$d", "control-socket": "$d/ctl.sock", "mlockall": false},
  "eal": {"file-prefix": "$VHOSTD_PREFIX"},
  "pmd": ${PMD_OBJ[$i]},
  "ports": [
    $ports
  ],
  "xconnects": $xc
}
EOF
	# shellcheck disable=SC2086
	launch_vhostd "$d" "$VHOSTD_PREFIX" $SOCK0 $SOCK1
}

# ------------------------------------------------------------------ tool --

run_tool() {  # row mode path(rtt|1-way) cpu-pid
	local row=$1 mode=$2 path=$3 pid=$4 tag="$1 $2" f rc socks=(--socket "$SOCK0")
	f="$TMP/$row-$(printf %s "$mode" | tr -c 'A-Za-z0-9_.=-' _)"
	[ -n "$SOCK1" ] && socks+=(--socket "$SOCK1")
	log "$tag: $COUNT frames, gap $GAP_MS ms ($path)"
	use_prefix "$GEN_PREFIX"
	taskset -c "$GEN_CPU" "$LATENCY" -l "$GEN_CPU" -m "$GEN_MEM" --file-prefix "$GEN_PREFIX" -- \
		"${socks[@]}" --count "$COUNT" --warmup "$WARMUP" --gap-ms "$GAP_MS" \
		--timeout-ms "$TIMEOUT_MS" --size "$SIZE" --cpu-pid "$pid" \
		--samples "$f.samples" --json >"$f.json" 2>"$f.err" </dev/null &
	GEN_PID=$!
	wait "$GEN_PID" && rc=0 || rc=$?
	GEN_PID=
	clean_prefix "$GEN_PREFIX"
	if [ $rc != 0 ] || ! [ -s "$f.json" ]; then
		log "$tag: FAILED (exit $rc); tail of $f.err:"
		tail -n 5 "$f.err" >&2
		FAILED=1
		echo "$row|$mode|$path|" >>"$RESULTS"
		return 1
	fi
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
print("latency: %s: p50 %s us, p99 %s us, lost %d, cpu %s %%" % (sys.argv[2],
  r["p50_us"], r["p99_us"], r["lost"], r["cpu_pct"]))' "$f.json" "$tag" >&2
	echo "$row|$mode|$path|$(cat "$f.json")" >>"$RESULTS"
}

fail_row() {  # row mode path
	FAILED=1
	echo "$1|$2|$3|" >>"$RESULTS"
}

# ------------------------------------------------------------------ run --

log "tool on CPU $GEN_CPU, switch on CPU $SW_CPU, $COUNT frames of $SIZE B, gap $GAP_MS ms"
warn_busy_cpus "$GEN_CPU" "$SW_CPU"
log "temp dir: $TMP"

for row in "${ROWS[@]}"; do
	case "$row" in
	vhostd-reflector|vhostd-xconnect-2port)
		[ "$row" = vhostd-reflector ] && path=rtt || path=1-way
		for i in "${!PMD_OBJ[@]}"; do
			if skipped "$row"; then echo "$row|${PMD_LABEL[$i]}|$path|SKIP" >>"$RESULTS"; continue; fi
			if start_vhostd_lat "$row" "$i"; then
				run_tool "$row" "${PMD_LABEL[$i]}" "$path" "${SW_PIDS[0]}" || true
			else
				fail_row "$row" "${PMD_LABEL[$i]}" "$path"
			fi
			stop_switch; clean_prefix "$VHOSTD_PREFIX"
		done
		;;
	ovs-dpdk)
		if skipped "$row"; then
			for m in "${OVS_SLEEPS[@]}"; do echo "$row|pmd-maxsleep=$m|1-way|SKIP" >>"$RESULTS"; done
			continue
		fi
		if start_ovs "$OVS_VSWITCHD"; then
			ovs_flows_p2p
			for m in "${OVS_SLEEPS[@]}"; do
				ovs_vsctl set Open_vSwitch . other_config:pmd-maxsleep="$m"
				sleep 1
				ovs_pmd_stats_clear
				run_tool "$row" "pmd-maxsleep=$m" 1-way "$(ovs_vswitchd_pid)" || true
				ovs_report "pmd-maxsleep=$m"
			done
		else
			for m in "${OVS_SLEEPS[@]}"; do fail_row "$row" "pmd-maxsleep=$m" 1-way; done
		fi
		stop_switch; clean_prefix "$OVS_PREFIX"
		;;
	esac
done

# --------------------------------------------------------------- report --

echo
echo "latency: tool CPU $GEN_CPU, switch CPU $SW_CPU, $SIZE B frames, $COUNT frames (after $WARMUP warm-up), gap $GAP_MS ms, timeout $TIMEOUT_MS ms"
python3 - "$RESULTS" <<'EOF'
import json, sys
fmt = "%-22s %-22s %-6s %9s %9s %9s %9s %6s %7s"
print(fmt % ("switch", "mode", "path", "min_us", "p50_us", "p99_us", "max_us", "lost", "cpu_%"))
def f(v, spec="%.1f"):
    return "-" if v is None else spec % v
for line in open(sys.argv[1]):
    row, mode, path, res = line.rstrip("\n").split("|", 3)
    if res in ("", "SKIP"):
        print(fmt % (row, mode, path, res or "FAIL", "-", "-", "-", "-", "-"))
        continue
    r = json.loads(res)
    print(fmt % (row, mode, path, f(r["min_us"]), f(r["p50_us"]), f(r["p99_us"]),
                 f(r["max_us"]), "%d/%d" % (r["lost"], r["sent"]), f(r["cpu_pct"])))
EOF
echo "path: rtt = frame sent into the switch and back (reflector); 1-way = from one port to the other"
echo "cpu_%: the switch process (vhostd; ovs-vswitchd) over the measured frames, 100 = one CPU"
for e in "${SKIP_REASON[@]}"; do echo "skipped ${e%%|*}: ${e#*|}"; done
exit 0
