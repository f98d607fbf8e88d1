#!/usr/bin/env bash
# run-all.sh - every performance target of vhostd against its peer, side by
# side in one run, and one table at the end:
#
#   scenario | vhostd | peer | ratio | target | ok
#
# Exits 1 when any ratio is below its target (or could not be measured), 2 on
# a usage or setup error, 0 when every row is ok.  See bench/README.md and
# bench/RESULTS.md.
#
# Groups (--only):
#   net    bench/net-loopback.sh, 1 queue pair, 1 PMD, 64 and 1518 B:
#          testpmd net_vhost io, OVS-DPDK NORMAL, vhostd bridge and xconnect;
#          vhostd's cycles/packet from `vhostctl pmd show` during the window;
#          a perf profile of the switch CPU during the 64 B bridge run.
#   mq     vhostd bridge, 64 B, 4 queue pairs per port on 1 PMD and on 2 PMDs
#          against 1 queue pair on 1 PMD (same run).  With 2 PMDs on a 2-CPU
#          machine one PMD shares the generator's CPU: reported, not judged.
#   scsi   vhostd-scsi-bench (initiator on the generator CPU) against a vhostd
#          controller on the switch CPU: null and ram LUNs, 4 KiB randread and
#          randwrite, qd 32 and 128; the peer is SPDK vhost-scsi (null and
#          malloc bdevs) from ../shared/DESIGN.md: SPDK is not installable
#          here, so that column is a reference, not re-measured; DESIGN.md
#          has qd 32 only, which is also used for the qd 128 rows.  A perf
#          profile of the target CPU during the null qd 32 read run.
#   file   file LUNs (io_uring) on a file on /dev/shm (tmpfs, page cache) and
#          on /var/tmp (disk, O_DIRECT) at qd 32 against fio's io_uring engine
#          on the same file, same depth, on the target CPU.
#
# Run by hand, as root.  Never from the test suite.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
LIB_NAME=run-all

# ------------------------------------------------------------ net hook --
# Called by net-loopback.sh (--hook) in the background during each vhostd
# generator run: SWITCH SIZE RUN CTL_SOCK GEN_LOG.  Waits for the traffic and
# the warm-up, snapshots `vhostctl pmd show --json` around a window (perf
# record on the switch CPU during it when asked), and writes the cycles.
if [ "${1:-}" = --net-hook ]; then
	shift
	sw=$1 size=$2 run=$3 ctl=$4 glog=$5
	for _ in $(seq 1 600); do
		grep -q 'start tx_first' "$glog" 2>/dev/null && break
		sleep 0.1
	done
	sleep "$RA_WARMUP"
	sleep 1.5
	tag="$sw-$size-$RA_TAG-$run"
	# "single-copy": "auto": both ports' probe sums at the window's edges too.
	ports() {
		[ "$sw" = vhostd-xconnect-auto ] || return 0
		for p in a b; do
			"$RA_VHOSTCTL" -s "$ctl" --json port show "$p" >"$RA_OUT/port-$tag-$p.$1.json" \
				2>/dev/null || true
		done
	}
	ports 0
	"$RA_VHOSTCTL" -s "$ctl" pmd show --json >"$RA_OUT/pmd-$tag.0.json" 2>/dev/null || exit 0
	win=$(awk -v d="$RA_DURATION" 'BEGIN { w = d - 2.5; if (w > 5) w = 5; if (w < 1) w = 1; print w }')
	if [ -n "${RA_PERF:-}" ] && [ "$sw" = vhostd-bridge ] && [ "$size" = 64 ] &&
	   [ ! -e "$RA_OUT/perf-net.data" ]; then
		# (read only) our vhostd: the one running this run's config
		pgrep -f -- "$(dirname "$ctl")/vhostd.json" | head -n 1 >"$RA_OUT/perf-net.pid" || true
		perf record -q -g -C "$RA_SW_CPU" -o "$RA_OUT/perf-net.data" -- sleep "$win" \
			>/dev/null 2>&1 || true
	else
		sleep "$win"
	fi
	"$RA_VHOSTCTL" -s "$ctl" pmd show --json >"$RA_OUT/pmd-$tag.1.json" 2>/dev/null || true
	ports 1
	exit 0
fi

# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

ALL_GROUPS=(net mq scsi file)
ONLY=
QUICK=0
ROUNDS=
GEN_CPU=0
SW_CPU=1
BUILD="$REPO_DIR/build"
PERF=1
KEEP=0
DESIGN_MD="$REPO_DIR/../shared/DESIGN.md"

usage() {
	cat <<EOF
Usage: $0 [options]

Runs every performance scenario of vhostd next to its peer and prints one
table: scenario | vhostd | peer | ratio | target | ok.  Exit status 1 when a
ratio is below its target.

Options:
  --quick          short windows (net 3 s, scsi/file 3 s) and 1 round
  --only LIST      groups, comma separated: ${ALL_GROUPS[*]} (default all)
  --rounds N       rounds per scenario, interleaved; the best counts
                   (default 3, --quick 1)
  --gen-cpu G      generator / initiator CPU (default $GEN_CPU)
  --sw-cpu S       switch / target CPU (default $SW_CPU)
  --build DIR      build dir with vhostd, ctl/vhostctl, bench/vhostd-scsi-bench
                   (default $BUILD)
  --design PATH    DESIGN.md with the SPDK reference numbers (default
                   $DESIGN_MD)
  --no-perf        no perf profiles
  --keep           keep the temp dir (logs, profiles, pmd snapshots)
  -h, --help       this help
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1; shift ;;
	--only) ONLY=${2:?}; shift 2 ;;
	--rounds) ROUNDS=${2:?}; shift 2 ;;
	--gen-cpu) GEN_CPU=${2:?}; shift 2 ;;
	--sw-cpu) SW_CPU=${2:?}; shift 2 ;;
	--build) BUILD=$(cd "${2:?}" && pwd); shift 2 ;;
	--design) DESIGN_MD=${2:?}; shift 2 ;;
	--no-perf) PERF=0; shift ;;
	--keep) KEEP=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; echo "run-all: unknown option: $1" >&2; exit 2 ;;
	esac
done
trap 'exit 2' ERR  # die() and set -e failures before the run: exit 2
die() { echo "$LIB_NAME: error: $*" >&2; exit 2; }

if [ "$QUICK" = 1 ]; then
	NET_DUR=3; NET_WARM=2; IO_TIME=3; : "${ROUNDS:=1}"
else
	NET_DUR=8; NET_WARM=3; IO_TIME=8; : "${ROUNDS:=3}"
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $GEN_CPU =~ ^[0-9]+$ && $SW_CPU =~ ^[0-9]+$ && $GEN_CPU != "$SW_CPU" ]] ||
	die "--gen-cpu and --sw-cpu must be two different CPU numbers"
mapfile -t GROUPS_RUN < <(select_names group "$ONLY" "${ALL_GROUPS[@]}")
[ ${#GROUPS_RUN[@]} -gt 0 ] || exit 2
want() { local g; for g in "${GROUPS_RUN[@]}"; do [ "$g" = "$1" ] && return 0; done; return 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
VHOSTD="$BUILD/vhostd"
VHOSTCTL="$BUILD/ctl/vhostctl"
SCSI_BENCH="$BUILD/bench/vhostd-scsi-bench"
XCORE="$BUILD/bench/vhostd-xcore-rtt"
for f in "$VHOSTD" "$VHOSTCTL"; do [ -x "$f" ] || die "$f missing (meson setup $BUILD && ninja -C $BUILD)"; done
if want scsi || want file; then
	[ -x "$SCSI_BENCH" ] || die "$SCSI_BENCH missing (ninja -C $BUILD bench/vhostd-scsi-bench)"
fi
check_cpus "$GEN_CPU" "$SW_CPU"
if [ "$PERF" = 1 ] && ! command -v perf >/dev/null; then
	log "perf not found (apt-get install linux-perf): no profiles"
	PERF=0
fi
if want file && ! command -v fio >/dev/null; then
	log "fio missing: apt-get install -y fio"
	DEBIAN_FRONTEND=noninteractive apt-get install -y fio >/dev/null || die "cannot install fio"
fi
trap - ERR

TMP=$(mktemp -d /tmp/run-all.XXXXXX)
chmod 755 "$TMP"
OUT="$TMP/out"
mkdir -p "$OUT"
SW_PIDS=()
GEN_PID=
FAILED=0
SCSI_PREFIX="ra$$scsi"
CLEAN_PREFIXES=("$SCSI_PREFIX")
SHM_FILE=/dev/shm/run-all-$$.img
DISK_FILE=/var/tmp/run-all-$$.img
cleanup_hook() { rm -f "$SHM_FILE" "$DISK_FILE"; }
install_cleanup

# ------------------------------------------------------------- results --

ROWS=()  # "scenario|vhostd|peer|target|unit" (target "-" = informational)
add_row() { ROWS+=("$1|$2|$3|$4"); }
declare -A BEST  # key -> best value seen over the rounds
declare -A PER   # key -> every round's value, in round order ("x": none)
best() {  # key value: keep the max
	local k=$1 v=$2
	PER[$k]="${PER[$k]:-} ${v:-x}"
	[[ $v =~ ^[0-9.]+$ ]] || return 0
	if [ -z "${BEST[$k]:-}" ] || awk -v a="$v" -v b="${BEST[$k]}" 'BEGIN { exit !(a > b) }'; then
		BEST[$k]=$v
	fi
}
minv() {  # key value: keep the min (cycles)
	local k=$1 v=$2
	[[ $v =~ ^[0-9.]+$ ]] || return 0
	if [ -z "${BEST[$k]:-}" ] || awk -v a="$v" -v b="${BEST[$k]}" 'BEGIN { exit !(a < b) }'; then
		BEST[$k]=$v
	fi
}

# busy cycles per packet (or request) between two `pmd show --json` snapshots
# (sum over the PMDs).
cpp_of() {  # before.json after.json
	python3 - "$1" "$2" <<'EOF'
import json, sys
try:
    a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
except Exception:
    sys.exit(0)
cyc = sum(x["busy-cycles"] for x in b) - sum(x["busy-cycles"] for x in a)
tot = cyc + sum(x["idle-cycles"] for x in b) - sum(x["idle-cycles"] for x in a)
pk = sum(x["packets"] for x in b) - sum(x["packets"] for x in a)
if pk > 0:
    print("%.0f %.0f %.1f" % (cyc / pk, tot / pk, 100.0 * cyc / tot if tot > 0 else 0))
EOF
}

# Median over the rounds of the same round's vhostd / peer ratio, or "-" when
# the peer has no per-round values (a reference) or no round has both. The
# two ran minutes apart at most, so a slow phase of the host hits both.
paired() {  # key1 key2
	python3 - "${PER[$1]:-}" "${PER[$2]:-}" <<'EOF'
import statistics, sys
a, b = sys.argv[1].split(), sys.argv[2].split()
r = []
for x, y in zip(a, b):
    try:
        if float(y) > 0:
            r.append(float(x) / float(y))
    except ValueError:
        pass
print("%.2f" % statistics.median(r) if r and len(a) == len(b) else "-")
EOF
}

# The host's phase: a cache line's round trip between the two CPUs, ns
# (bench/xcore_rtt.c), probed for 200 ms before each round and before and
# after each scsi or file run. On a VM whose vCPUs the host moves it is
# ~100 or ~500 ns, and every vhost-user request pays several such transfers.
# Sets XC_LAST ("?" if unknown); keeps the lowest and highest seen. Not in a
# subshell: it updates globals.
XC_LO= XC_HI= XC_LAST=?
xcore() {
	local x=
	XC_LAST=?
	if [ -x "$XCORE" ]; then
		x=$("$XCORE" --cpus "$GEN_CPU,$SW_CPU" --ms 200 2>/dev/null) || x=
	fi
	[[ $x =~ ^[0-9]+$ ]] || return 0
	XC_LAST=$x
	if [ -z "$XC_LO" ] || [ "$x" -lt "$XC_LO" ]; then XC_LO=$x; fi
	if [ -z "$XC_HI" ] || [ "$x" -gt "$XC_HI" ]; then XC_HI=$x; fi
	return 0
}

load_note() { awk '{ print "load average " $1 " " $2 " " $3 }' /proc/loadavg; }

log "groups: ${GROUPS_RUN[*]}; rounds $ROUNDS; generator/initiator CPU $GEN_CPU, switch/target CPU $SW_CPU; $(load_note)"
log "temp dir: $TMP"

export RA_OUT="$OUT" RA_VHOSTCTL="$VHOSTCTL" RA_SW_CPU="$SW_CPU" RA_WARMUP="$NET_WARM" \
	RA_DURATION="$NET_DUR"
[ "$PERF" = 1 ] && export RA_PERF=1

# ------------------------------------------------------------------ net --

# One net-loopback.sh run; the table lines go to $OUT/net-TAG-ROUND.txt.
net_run() {  # tag round args...
	local tag=$1 r=$2; shift 2
	RA_TAG=$tag "$BENCH_DIR/net-loopback.sh" --gen-cpu "$GEN_CPU" --sw-cpu "$SW_CPU" \
		--vhostd "$VHOSTD" --duration "$NET_DUR" --warmup "$NET_WARM" --pmd-mode poll \
		--hook "$BENCH_DIR/run-all.sh --net-hook" "$@" >"$OUT/net-$tag-$r.txt" 2>"$OUT/net-$tag-$r.log" ||
		log "net-loopback.sh ($tag, round $r) failed: see $OUT/net-$tag-$r.log"
	sed 's/^/    /' "$OUT/net-$tag-$r.txt" | grep -E '^ +(testpmd|ovs|vhostd)-' >&2 || true
}

# total Mpps of SWITCH at SIZE in a net-loopback.sh table
net_total() {  # file switch size
	awk -v s="$2" -v z="$3" '$1 == s && $2 == z && $5 ~ /^[0-9.]+$/ { print $5 }' "$1"
}

net_cpp() {  # tag switch size round -> "busy total"
	local f="$OUT/pmd-$2-$3-$1-$4"
	[ -s "$f.0.json" ] && [ -s "$f.1.json" ] && cpp_of "$f.0.json" "$f.1.json"
	return 0
}

# "auto" probe sums over one window, both ports' rx queue 0: "mbuf-cycles
# mbuf-frames sc-cycles sc-frames" (nothing when a snapshot is missing).
auto_sums() {  # prefix: $OUT/port-SWITCH-SIZE-TAG-RUN
	python3 - "$1" <<'EOF'
import json, sys
out = [0, 0, 0, 0]
try:
    for p in "ab":
        j = [json.load(open("%s-%s.%d.json" % (sys.argv[1], p, e)))
             ["stats"]["queues"][0]["single-copy-auto"]["judged"] for e in (0, 1)]
        for i, path in enumerate(("mbuf", "single-copy")):
            for k, f in enumerate(("cycles", "frames")):
                out[2 * i + k] += j[1][path][f] - j[0][path][f]
except Exception:
    sys.exit(0)
print(*out)
EOF
}
AUTO_SUM=(0 0 0 0)

if want net; then
	for r in $(seq 1 "$ROUNDS"); do
		xcore
		log "net round $r/$ROUNDS ($(load_note), cross-core round trip $XC_LAST ns)"
		net_run net "$r" --only \
			testpmd-vhost,ovs-dpdk-normal,vhostd-bridge,vhostd-xconnect,vhostd-xconnect-mbuf \
			--sizes 64,1518
		# Single copy and the mbuf path over the same moments: "auto"'s
		# probes alternate them every 5 ms on each rx queue.
		net_run auto "$r" --only vhostd-xconnect-auto --sizes 1518
		best "net,vhostd-xconnect-auto,1518" \
			"$(net_total "$OUT/net-auto-$r.txt" vhostd-xconnect-auto 1518)"
		s=$(auto_sums "$OUT/port-vhostd-xconnect-auto-1518-auto-1")
		if [ -n "$s" ]; then
			read -r c0 f0 c1 f1 <<<"$s"
			if [ "$f0" -gt 0 ] && [ "$f1" -gt 0 ]; then
				# cycles per frame; the row's ratio is mbuf / single copy
				PER[scpair,mbuf]="${PER[scpair,mbuf]:-} $((c0 / f0))"
				PER[scpair,sc]="${PER[scpair,sc]:-} $((c1 / f1))"
				AUTO_SUM=($((AUTO_SUM[0] + c0)) $((AUTO_SUM[1] + f0))
					$((AUTO_SUM[2] + c1)) $((AUTO_SUM[3] + f1)))
				log "  auto probes, round $r: mbuf $((c0 / f0)), single copy" \
					"$((c1 / f1)) cycles/frame ($f0 and $f1 frames)"
			fi
		fi
		for e in 0 1; do
			for p in a b; do
				mv -f "$OUT/port-vhostd-xconnect-auto-1518-auto-1-$p.$e.json" \
					"$OUT/port-vhostd-xconnect-auto-1518-r$r-$p.$e.json" 2>/dev/null || true
			done
		done
		for sw in testpmd-vhost ovs-dpdk-normal vhostd-bridge vhostd-xconnect \
			vhostd-xconnect-mbuf; do
			for z in 64 1518; do
				best "net,$sw,$z" "$(net_total "$OUT/net-net-$r.txt" "$sw" "$z")"
				if [[ $sw == vhostd-* ]]; then
					c=$(net_cpp net "$sw" "$z" 1)
					if [ -n "$c" ]; then
						read -r c1 c2 c3 <<<"$c"
						minv "cpp,$sw,$z" "$c1"; minv "cppt,$sw,$z" "$c2"; best "busy,$sw,$z" "$c3"
					fi
					mv -f "$OUT/pmd-$sw-$z-net-1.0.json" "$OUT/pmd-$sw-$z-net-r$r.0.json" 2>/dev/null || true
					mv -f "$OUT/pmd-$sw-$z-net-1.1.json" "$OUT/pmd-$sw-$z-net-r$r.1.json" 2>/dev/null || true
				fi
			done
		done
	done
	add_row "net 64B vhostd-bridge vs OVS-DPDK NORMAL (Mpps)" "net,vhostd-bridge,64" "net,ovs-dpdk-normal,64" 1.25
	add_row "net 64B vhostd-bridge vs testpmd io (Mpps)" "net,vhostd-bridge,64" "net,testpmd-vhost,64" 0.95
	add_row "net 64B vhostd-xconnect vs testpmd io (Mpps)" "net,vhostd-xconnect,64" "net,testpmd-vhost,64" 1.0
	add_row "net 1518B vhostd-bridge vs testpmd io (Mpps)" "net,vhostd-bridge,1518" "net,testpmd-vhost,1518" 1.0
	add_row "net 1518B vhostd-xconnect vs testpmd io (Mpps)" "net,vhostd-xconnect,1518" "net,testpmd-vhost,1518" 1.0
	add_row "net 1518B vhostd-xconnect vs OVS-DPDK NORMAL (Mpps)" "net,vhostd-xconnect,1518" "net,ovs-dpdk-normal,1518" -
	# The issue's question: does one copy guest to guest beat rte_vhost's two
	# (through an mbuf) for large frames? Same switch, "single-copy" off.
	add_row "net 1518B xconnect single copy vs mbuf path (Mpps)" "net,vhostd-xconnect,1518" "net,vhostd-xconnect-mbuf,1518" -
	add_row "net 64B xconnect single copy vs mbuf path (Mpps)" "net,vhostd-xconnect,64" "net,vhostd-xconnect-mbuf,64" -
	# The same question with both paths timed in the same moments: the
	# runs above are minutes apart, and this host's phases change the
	# cost of both paths twofold (bench/RESULTS.md). Columns: cycles per
	# frame of the mbuf path and of single copy over every round's probes;
	# ratio: how many times cheaper single copy is (judged).
	if [ "${AUTO_SUM[1]}" -gt 0 ] && [ "${AUTO_SUM[3]}" -gt 0 ]; then
		BEST[scpair,mbuf]=$((AUTO_SUM[0] / AUTO_SUM[1]))
		BEST[scpair,sc]=$((AUTO_SUM[2] / AUTO_SUM[3]))
	fi
	add_row "net 1518B xconnect sc vs mbuf path, same 5 ms turns (cycles/frame: mbuf; sc)" scpair,mbuf scpair,sc 1.0
	add_row "net 1518B xconnect single-copy auto vs mbuf path (Mpps)" "net,vhostd-xconnect-auto,1518" "net,vhostd-xconnect-mbuf,1518" -
	for sw in vhostd-bridge vhostd-xconnect vhostd-xconnect-mbuf; do
		for z in 64 1518; do
			add_row "cycles/packet $sw ${z}B (vhostd busy; busy+idle)" "cpp,$sw,$z" "cppt,$sw,$z" -
		done
	done
	# A switch PMD that is not busy ~100 % of the window waits for the
	# generator: then the Mpps ratios compare generator interplay, not
	# switch cost per packet.
	for z in 64 1518; do
		add_row "PMD busy % ${z}B vhostd-bridge; vhostd-xconnect (< ~95: generator-bound)" \
			"busy,vhostd-bridge,$z" "busy,vhostd-xconnect,$z" -
	done
fi

# ------------------------------------------------------------------- mq --

if want mq; then
	for r in $(seq 1 "$ROUNDS"); do
		xcore
		log "mq round $r/$ROUNDS ($(load_note), cross-core round trip $XC_LAST ns)"
		net_run mq1 "$r" --only vhostd-bridge --sizes 64
		net_run mq4 "$r" --only vhostd-bridge --sizes 64 --queues 4
		net_run mq4p2 "$r" --only vhostd-bridge --sizes 64 --queues 4 --pmd-cpus "$GEN_CPU,$SW_CPU"
		for t in mq1 mq4 mq4p2; do
			best "$t" "$(net_total "$OUT/net-$t-$r.txt" vhostd-bridge 64)"
			c=$(net_cpp "$t" vhostd-bridge 64 1)
			[ -z "$c" ] || minv "cpp,$t" "${c%% *}"
			for i in 0 1; do
				mv -f "$OUT/pmd-vhostd-bridge-64-$t-1.$i.json" "$OUT/pmd-vhostd-bridge-64-$t-r$r.$i.json" 2>/dev/null || true
			done
		done
	done
	add_row "mq 64B bridge 4q/port 1 PMD vs 1q 1 PMD (Mpps)" mq4 mq1 0.95
	add_row "mq 64B bridge 4q/port 2 PMDs (1 shares the generator CPU) vs 1q 1 PMD" mq4p2 mq1 -
	add_row "cycles/packet mq 4q 1 PMD; 1q 1 PMD (vhostd busy)" "cpp,mq4" "cpp,mq1" -
	add_row "cycles/packet mq 4q 2 PMDs; 1q 1 PMD (vhostd busy)" "cpp,mq4p2" "cpp,mq1" -
fi

# ----------------------------------------------------------- scsi, file --

# SPDK vhost-scsi reference IOPS (M) from DESIGN.md: "null bdev R M IOPS read
# / W M write; malloc R M read / W M write" (qd 32).
spdk_ref() {  # null|malloc read|write
	local line
	line=$(tr '\n' ' ' <"$DESIGN_MD" 2>/dev/null | grep -oE 'null bdev [0-9.]+ M IOPS read / [0-9.]+ M write; malloc [0-9.]+ M read / [0-9.]+ M write' || true)
	[ -n "$line" ] || { echo ""; return 0; }
	set -- "$1" "$2" $line
	# words: null bdev NR M IOPS read / NW M write; malloc MR M read / MW M write
	case "$1,$2" in
	null,read) echo "$5" ;;
	null,write) echo "${10}" ;;
	malloc,read) echo "${14}" ;;
	malloc,write) echo "${18}" ;;
	esac
}

scsi_up=0
start_scsi_vhostd() {
	local d="$TMP/scsi"
	mkdir -p "$d"
	# tmpfs has no O_DIRECT: the page cache is the medium (fio --direct=0);
	# the disk file is O_DIRECT on both sides (fio --direct=1).
	cat >"$d/vhostd.json" <<EOF
{
  "vhostd": {"run-dir": "$d", "control-socket": "$d/ctl.sock", "mlockall": false},
  "eal": {"file-prefix": "$SCSI_PREFIX"},
  "pmd": {"cpus": "$SW_CPU", "mode": "poll"},
  "scsi": [{"name": "scsi0", "socket": "$d/scsi0.sock", "mode": "server", "queues": 1}],
  "luns": [
    {"name": "null0", "controller": "scsi0", "target": 0, "lun": 0, "backend": "null", "size": "1T"},
    {"name": "ram0", "controller": "scsi0", "target": 0, "lun": 1, "backend": "ram", "size": "1G"},
    {"name": "shm0", "controller": "scsi0", "target": 0, "lun": 2, "backend": "file", "path": "$SHM_FILE", "cache": "writeback"},
    {"name": "disk0", "controller": "scsi0", "target": 0, "lun": 3, "backend": "file", "path": "$DISK_FILE", "cache": "none"}
  ]
}
EOF
	launch_vhostd "$d" "$SCSI_PREFIX" "$d/scsi0.sock"
}

# One vhostd-scsi-bench run; prints "iops busy_cpp", the profile when asked.
scsi_run() {  # lun rw qd tag [perf-file]
	local d="$TMP/scsi" lun=$1 rw=$2 qd=$3 tag=$4 pf=${5:-} j iops c ppid= vq=256
	# 3 descriptors per request (command, response, data): qd 128 needs a
	# ring larger than the default 256.
	[ "$qd" -le 80 ] || vq=1024
	"$VHOSTCTL" -s "$d/ctl.sock" pmd show --json >"$OUT/pmd-$tag.0.json" 2>/dev/null || true
	"$SCSI_BENCH" --socket "$d/scsi0.sock" --lun "$lun" --rw "$rw" --bs 4k --qd "$qd" --vq-size "$vq" \
		--time "$IO_TIME" --cpu "$GEN_CPU" --json >"$OUT/$tag.json" 2>"$OUT/$tag.err" &
	j=$!
	if [ -n "$pf" ]; then
		sleep 1
		perf record -q -g -C "$SW_CPU" -o "$pf" -- sleep "$(awk -v t="$IO_TIME" 'BEGIN { w = t - 2; if (w > 5) w = 5; if (w < 1) w = 1; print w }')" \
			>/dev/null 2>&1 &
		ppid=$!
	fi
	wait "$j" || log "vhostd-scsi-bench $tag failed: $(head -c 300 "$OUT/$tag.err")"
	[ -z "$ppid" ] || wait "$ppid" || true
	"$VHOSTCTL" -s "$d/ctl.sock" pmd show --json >"$OUT/pmd-$tag.1.json" 2>/dev/null || true
	iops=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.4f" % (d["iops"] / 1e6) if not d["errors"] else "")' "$OUT/$tag.json" 2>/dev/null || true)
	c=$(cpp_of "$OUT/pmd-$tag.0.json" "$OUT/pmd-$tag.1.json")
	local c1= c2= c3=
	[ -z "$c" ] || read -r c1 c2 c3 <<<"$c"
	echo "${iops:--} ${c1:--} ${c3:--}"
}

fio_run() {  # file direct rw tag -> Miops
	local f=$1 direct=$2 rw=$3 tag=$4
	fio --name="$tag" --filename="$f" --ioengine=io_uring --direct="$direct" --rw="$rw" \
		--bs=4k --iodepth=32 --numjobs=1 --cpus_allowed="$SW_CPU" --size=1G \
		--time_based --runtime="$IO_TIME" --ramp_time=1 --norandommap --randrepeat=0 \
		--group_reporting --output-format=json >"$OUT/$tag.json" 2>"$OUT/$tag.err" ||
		{ log "fio $tag failed: $(head -c 300 "$OUT/$tag.err")"; return 0; }
	python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))["jobs"][0]
print("%.4f" % ((j["read"]["iops"] + j["write"]["iops"]) / 1e6))' "$OUT/$tag.json" 2>/dev/null || true
}

if want scsi || want file; then
	if want file; then
		log "creating 1 GiB files $SHM_FILE and $DISK_FILE"
		dd if=/dev/zero of="$SHM_FILE" bs=1M count=1024 status=none
		dd if=/dev/zero of="$DISK_FILE" bs=1M count=1024 oflag=direct status=none
	else
		truncate -s 1G "$SHM_FILE" "$DISK_FILE"
	fi
	check_hugepages $(( 1024 + 1024 ))
	if start_scsi_vhostd; then scsi_up=1; else FAILED=1; fi
fi

if want scsi && [ $scsi_up = 1 ]; then
	for r in $(seq 1 "$ROUNDS"); do
		log "scsi round $r/$ROUNDS ($(load_note))"
		for qd in 32 128; do
			for b in null:0 ram:1; do
				for rw in read write; do
					pf=
					[ "$PERF" = 1 ] && [ "$b" = null:0 ] && [ $qd = 32 ] && [ $rw = read ] &&
						[ "$r" = 1 ] && pf="$OUT/perf-scsi.data" &&
						echo "${SW_PIDS[0]}" >"$OUT/perf-scsi.pid"
					xcore
					xb=$XC_LAST
					set -- $(scsi_run "${b#*:}" "rand$rw" "$qd" "scsi-${b%%:*}-$rw-$qd-r$r" "$pf")
					xcore
					log "  ${b%%:*} rand$rw qd $qd: ${1:-FAIL} M IOPS, ${2:--} cycles/request (cross-core round trip $xb ns before, $XC_LAST after)"
					best "scsi,${b%%:*},$rw,$qd" "${1:-}"
					minv "cpio,${b%%:*},$rw,$qd" "${2:-}"
					best "sbusy,${b%%:*},$rw,$qd" "${3:-}"
				done
			done
		done
	done
	for qd in 32 128; do
		for b in null:null ram:malloc; do
			for rw in read write; do
				BEST["spdk,${b#*:},$rw"]=$(spdk_ref "${b#*:}" "$rw")
				add_row "scsi ${b%%:*} 4k rand$rw qd$qd vs SPDK ${b#*:} ref qd32 (M IOPS)" \
					"scsi,${b%%:*},$rw,$qd" "spdk,${b#*:},$rw" 1.0
			done
		done
	done
	for qd in 32 128; do
		for b in null ram; do
			add_row "cycles/request scsi $b qd$qd read; write (vhostd busy)" \
				"cpio,$b,read,$qd" "cpio,$b,write,$qd" -
		done
	done
	# Below ~95 %: the target waits for the initiator, which sets the rate.
	for b in null ram; do
		add_row "PMD busy % scsi $b qd32 read; write (< ~95: initiator-bound)" \
			"sbusy,$b,read,32" "sbusy,$b,write,32" -
	done
fi

if want file && [ $scsi_up = 1 ]; then
	for r in $(seq 1 "$ROUNDS"); do
		log "file round $r/$ROUNDS ($(load_note))"
		for m in shm:2:0:"$SHM_FILE" disk:3:1:"$DISK_FILE"; do
			IFS=: read -r name lun direct path <<<"$m"
			for rw in read write; do
				xcore
				xb=$XC_LAST
				set -- $(scsi_run "$lun" "rand$rw" 32 "file-$name-$rw-r$r")
				xcore
				best "file,$name,$rw" "${1:-}"
				minv "cpio,file,$name,$rw" "${2:-}"
				[ "${1:-}" != - ] || set -- "" "${2:-}"
				f=$(fio_run "$path" "$direct" "rand$rw" "fio-$name-$rw-r$r")
				best "fio,$name,$rw" "$f"
				log "  $name rand$rw qd 32: vhostd ${1:-FAIL} M IOPS (${2:--} cycles/request, cross-core round trip $xb ns before, $XC_LAST after), fio ${f:-FAIL} M IOPS"
			done
		done
	done
	for name in shm disk; do
		for rw in read write; do
			add_row "file LUN on $name 4k rand$rw qd32 vs fio io_uring (M IOPS)" \
				"file,$name,$rw" "fio,$name,$rw" 0.9
		done
	done
	add_row "cycles/request file shm read; write (vhostd busy)" "cpio,file,shm,read" "cpio,file,shm,write" -
	add_row "cycles/request file disk read; write (vhostd busy)" "cpio,file,disk,read" "cpio,file,disk,write" -
fi
stop_switch
clean_prefix "$SCSI_PREFIX"

# -------------------------------------------------------------- profile --

profile() {  # title perf.data
	local pid=
	[ -s "$2" ] || return 0
	[ -s "${2%.data}.pid" ] && pid=$(cat "${2%.data}.pid")
	echo
	echo "perf profile: $1 (perf record -g -C $SW_CPU; top 10 symbols by self time,"
	if [ -n "$pid" ]; then
		echo "as a share of vhostd's own samples (pid $pid: $(perf report -i "$2" --pid "$pid" \
			--no-children --sort comm --stdio -q -g none 2>/dev/null |
			awk '{ s += $1 } END { printf "%.0f%%", s }') of the CPU's samples; the rest: other processes),"
	fi
	echo "librte_vhost has no symbols in Debian's package: what it exports shows, the rest as addresses in librte_vhost.so)"
	perf report -i "$2" --no-children --sort dso,sym --stdio -q -g none --percent-limit 0.5 \
		${pid:+--pid "$pid" --percentage relative} 2>/dev/null | grep -v '^$' | head -n 10
}

# ---------------------------------------------------------------- table --

fmt() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { if (v >= 100) printf "%.0f", v; else printf "%.3f", v }' || echo n/a; }
echo
echo "run-all: $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, generator/initiator CPU $GEN_CPU, switch/target CPU $SW_CPU, rounds $ROUNDS (best), $(load_note)"
[ "$QUICK" = 1 ] && echo "run-all: --quick: short windows, numbers are indicative"
printf '%-78s | %9s | %9s | %6s | %6s | %6s | %s\n' scenario vhostd peer ratio paired target ok
printf '%s\n' "$(printf '%.0s-' $(seq 1 139))"
BAD=0
for row in "${ROWS[@]}"; do
	IFS='|' read -r name k1 k2 target <<<"$row"
	a=${BEST[$k1]:-} b=${BEST[$k2]:-}
	ratio=n/a ok= pr=- two=0
	# cycles and busy rows put two vhostd values side by side: no ratio
	[[ $name == cycles* || $name == PMD\ busy* ]] && two=1
	if [ -n "$a" ] && [ -n "$b" ]; then
		ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
	fi
	[ $two = 1 ] || pr=$(paired "$k1" "$k2")
	if [ "$target" = - ]; then
		ok=info
		[ $two = 0 ] || ratio=-
	elif [ "$ratio" = n/a ]; then
		ok=FAIL; BAD=1
	elif awk -v r="$ratio" -v t="$target" 'BEGIN { exit !(r >= t) }'; then
		ok=ok
	else
		ok=FAIL; BAD=1
	fi
	printf '%-78s | %9s | %9s | %6s | %6s | %6s | %s\n' "$name" "$(fmt "$a")" "$(fmt "$b")" "$ratio" "$pr" "$target" "$ok"
done
[ -n "$XC_LO" ] && echo "cross-core round trip CPU $GEN_CPU <-> $SW_CPU (bench/xcore_rtt.c, before each round, before and after each scsi and file run): $XC_LO-$XC_HI ns. Rounds with different values ran in different phases of the host: per-round numbers are in the log above."
echo "ratio: best round of vhostd / best round of the peer (judged); paired: median over the rounds of the same round's ratio (information: on a noisy host the steadier of the two)."
if want scsi; then
	echo "SPDK column: reference from DESIGN.md (SPDK 23.05, same kind of machine), not re-measured: SPDK is not installable here; DESIGN.md has qd32 only, used for qd128 too."
fi
if want mq; then
	echo "mq with 2 PMDs: the machine has $(nproc) CPUs; the second PMD runs on the generator's CPU $GEN_CPU (reported, not judged)."
fi
profile "64 B vhostd-bridge" "$OUT/perf-net.data"
profile "null LUN, 4k randread qd32" "$OUT/perf-scsi.data"
if [ $BAD = 1 ]; then
	echo "run-all: some ratios are below target (or missing)"
	FAILED=1
	exit 1
fi
exit 0
