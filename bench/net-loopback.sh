#!/usr/bin/env bash
# net-loopback.sh - closed-loop vhost-user forwarding benchmark.
#
# One dpdk-testpmd "generator" with two net_virtio_user ports (CPU G) is
# connected to the two vhost-user sockets of a switch under test (CPU S).
# The generator io-forwards port0 rx -> port1 tx and port1 rx -> port0 tx,
# so after `start tx_first` two loops of packets circulate, one through the
# switch in each direction, as fast as the slower side allows.  The Rx rate
# of each generator port is the switch's forwarding rate in that direction.
#
# Switches measured (same run, one after the other):
#   testpmd-vhost     dpdk-testpmd, two net_vhost ports, io forwarding
#   ovs-dpdk-normal   OVS-DPDK (Debian openvswitch-switch-dpdk), NORMAL action
#   ovs-dpdk-p2p      same OVS, in_port=1->2 / 2->1 flows
#   vhostd-bridge     build/vhostd, both ports on a learning bridge
#   vhostd-xconnect   build/vhostd, the two ports cross-connected (single
#                     copy, the default: guest to guest, no mbuf in between)
#   vhostd-xconnect-mbuf  the same with "single-copy": false: rte_vhost's
#                     dequeue/enqueue, two copies through an mbuf
#   vhostd-xconnect-auto  the same with "single-copy": "auto": each rx queue
#                     times both paths in turns of 5 ms and keeps the cheaper
#                     (`vhostctl port show` has both figures)
#
# Run by hand, as root.  See bench/README.md.  Never run from the test suite;
# it prints numbers, it asserts nothing about them.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
LIB_NAME=net-loopback
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

ALL_SWITCHES=(testpmd-vhost ovs-dpdk-normal ovs-dpdk-p2p vhostd-bridge vhostd-xconnect
	vhostd-xconnect-mbuf vhostd-xconnect-auto)

DURATION=10
WARMUP=3
SIZES=64,1518
ONLY=
GEN_CPU=0
SW_CPU=1
VHOSTD="$REPO_DIR/build/vhostd"
PMD_MODE=poll
PORT_OPTS=
TESTPMD=$(command -v dpdk-testpmd || echo /usr/bin/dpdk-testpmd)
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
GEN_FWD=io
KEEP=0
REPEAT=1
QUEUES=1
PMD_CPUS=
HOOK=

# Memory (MiB) each process asks EAL for; used for the hugepage check too.
GEN_MEM=512
TESTPMD_SW_MEM=512
OVS_MEM=1024
VHOSTD_MEM=1024   # a guess: vhostd's config leaves the amount to the daemon

usage() {
	cat <<EOF
Usage: $0 [options]

Closed-loop vhost-user benchmark: a dpdk-testpmd generator with two
net_virtio_user ports (CPU G) against each switch under test (CPU S).
Prints Rx Mpps per direction for each switch and frame size.

Options:
  --duration S        measurement window in seconds (default $DURATION)
  --warmup S          warm-up before measuring, seconds (default $WARMUP)
  --sizes LIST        frame sizes in bytes, comma separated (default $SIZES)
  --only LIST         switches to run, comma separated (default: all):
                      ${ALL_SWITCHES[*]}
  --gen-cpu G         CPU for the generator (default $GEN_CPU)
  --sw-cpu S          CPU for the switch under test (default $SW_CPU)
  --vhostd PATH       vhostd binary (default $VHOSTD)
  --testpmd PATH      dpdk-testpmd binary (default $TESTPMD)
  --ovs-vswitchd PATH DPDK-enabled ovs-vswitchd (default $OVS_VSWITCHD)
  --gen-fwd io|mac    generator forwarding mode (default $GEN_FWD)
  --pmd-mode MODE     vhostd PMD governor: poll (default), halt-poll, interrupt
  --port-opts JSON    extra members for both vhostd ports, e.g. '"single-copy": true'
  --repeat N          measure each switch/size N times, report the best (default $REPEAT)
  --queues N          queue pairs per port (generator, testpmd-vhost, vhostd; default 1)
  --pmd-cpus LIST     vhostd PMD CPUs and its taskset (default: the --sw-cpu)
  --hook CMD          for vhostd rows: run "CMD SWITCH SIZE RUN CTL_SOCK GEN_LOG"
                      in the background during each generator run (run-all.sh
                      uses it for vhostctl pmd show and perf)
  --keep              keep the temp dir (logs, configs) after the run
  -h, --help          this help

Must run as root with free 2 MiB hugepages.  Stops everything it started.
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--duration) DURATION=${2:?}; shift 2 ;;
	--warmup) WARMUP=${2:?}; shift 2 ;;
	--sizes) SIZES=${2:?}; shift 2 ;;
	--only) ONLY=${2:?}; shift 2 ;;
	--gen-cpu) GEN_CPU=${2:?}; shift 2 ;;
	--sw-cpu) SW_CPU=${2:?}; shift 2 ;;
	--vhostd) VHOSTD=${2:?}; shift 2 ;;
	--testpmd) TESTPMD=${2:?}; shift 2 ;;
	--ovs-vswitchd) OVS_VSWITCHD=${2:?}; shift 2 ;;
	--gen-fwd) GEN_FWD=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--repeat) REPEAT=${2:?}; shift 2 ;;
	--pmd-mode) PMD_MODE=${2:?}; shift 2 ;;
	--port-opts) PORT_OPTS=", ${2:?}"; shift 2 ;;
	--queues) QUEUES=${2:?}; shift 2 ;;
	--pmd-cpus) PMD_CPUS=${2:?}; shift 2 ;;
	--hook) HOOK=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done

# ---------------------------------------------------------------- checks --

is_num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }
is_num "$DURATION" || die "--duration must be a number"
is_num "$WARMUP" || die "--warmup must be a number"
[[ $GEN_CPU =~ ^[0-9]+$ && $SW_CPU =~ ^[0-9]+$ ]] || die "CPUs must be integers"
[ "$GEN_CPU" != "$SW_CPU" ] || die "--gen-cpu and --sw-cpu must differ"
[[ $GEN_FWD == io || $GEN_FWD == mac ]] || die "--gen-fwd must be io or mac"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer"
[[ $QUEUES =~ ^([1-9]|1[0-6])$ ]] || die "--queues must be 1..16"
[ -n "$PMD_CPUS" ] || PMD_CPUS=$SW_CPU
[[ $PMD_CPUS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--pmd-cpus must be a comma separated CPU list"
[[ $PMD_MODE =~ ^(poll|halt-poll|interrupt)$ ]] || die "--pmd-mode must be poll, halt-poll or interrupt"

IFS=, read -r -a SIZE_LIST <<<"$SIZES"
for s in "${SIZE_LIST[@]}"; do
	[[ $s =~ ^[0-9]+$ ]] && [ "$s" -ge 64 ] && [ "$s" -le 9000 ] ||
		die "bad frame size '$s' (64..9000)"
done

mapfile -t SWITCHES < <(select_names switch "$ONLY" "${ALL_SWITCHES[@]}")
[ ${#SWITCHES[@]} -gt 0 ] || exit 1

[ "$(id -u)" = 0 ] || die "must run as root (DPDK needs hugepages and vhost-user)"
check_cpus "$GEN_CPU" "$SW_CPU"
command -v python3 >/dev/null || die "python3 not found"
command -v stdbuf >/dev/null || die "stdbuf (coreutils) not found"
command -v taskset >/dev/null || die "taskset (util-linux) not found"
[ -x "$TESTPMD" ] || die "dpdk-testpmd not found at '$TESTPMD' (apt-get install dpdk)"

has() { local x; for x in "${SWITCHES[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }

SKIP_REASON=()   # "switch|reason"
skip() { SKIP_REASON+=("$1|$2"); log "skipping $1: $2"; }

if has ovs-dpdk-normal || has ovs-dpdk-p2p; then
	if why=$(ovs_missing "$OVS_VSWITCHD"); then
		has ovs-dpdk-normal && skip ovs-dpdk-normal "$why"
		has ovs-dpdk-p2p && skip ovs-dpdk-p2p "$why"
	fi
fi
if [ ! -x "$VHOSTD" ]; then
	why="$VHOSTD does not exist (build it: meson setup build && ninja -C build)"
	for s in vhostd-bridge vhostd-xconnect vhostd-xconnect-mbuf vhostd-xconnect-auto; do
		if has "$s"; then skip "$s" "$why"; fi
	done
fi
skipped() { local e; for e in "${SKIP_REASON[@]}"; do [ "${e%%|*}" = "$1" ] && return 0; done; return 1; }

# Hugepages: the generator and one switch run at the same time.
sw_mem=0
for s in "${SWITCHES[@]}"; do
	skipped "$s" && continue
	case "$s" in
	testpmd-vhost) m=$TESTPMD_SW_MEM ;;
	ovs-*) m=$OVS_MEM ;;
	vhostd-*) m=$VHOSTD_MEM ;;
	esac
	[ "$m" -gt "$sw_mem" ] && sw_mem=$m
done
check_hugepages $(( GEN_MEM + sw_mem ))

# -------------------------------------------------------------- cleanup --

TMP=$(mktemp -d /tmp/net-loopback.XXXXXX)
chmod 755 "$TMP"
GEN_PREFIX="nlb$$gen"
TPSW_PREFIX="nlb$$sw"
OVS_PREFIX=ovsbench
VHOSTD_PREFIX=vhostd-bench
OVSDIR="$TMP/ovs"
FAILED=0

SW_PIDS=()       # processes of the switch currently under test
GEN_PID=

# The generator testpmd is tpgen.py's child; its pid is in GEN_TP_PIDFILE.
GEN_TP_PIDFILE="$TMP/gen-testpmd.pid"
stop_gen_testpmd() {
	local p
	[ -s "$GEN_TP_PIDFILE" ] || return 0
	p=$(cat "$GEN_TP_PIDFILE")
	if [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = dpdk-testpmd ]; then
		log "generator testpmd $p still running, stopping it"
		stop_pids "$p"
	fi
	rm -f "$GEN_TP_PIDFILE"
}

# tpgen.py quits its testpmd on SIGTERM; give it time, then make sure.
GEN_STOP_WAIT=30
cleanup_hook() { stop_gen_testpmd; }
CLEAN_PREFIXES=("$GEN_PREFIX" "$TPSW_PREFIX" "$OVS_PREFIX" "$VHOSTD_PREFIX")
install_cleanup

# ------------------------------------------------------------- switches --

SOCK0=
SOCK1=

start_testpmd_vhost() {
	local d="$TMP/testpmd-vhost"
	mkdir -p "$d"
	SOCK0="$d/a.sock" SOCK1="$d/b.sock"
	use_prefix "$TPSW_PREFIX"
	# Non-interactive with --stats-period: runs until SIGTERM/SIGINT.
	taskset -c "$SW_CPU" "$TESTPMD" --lcores "0@$SW_CPU,1@$SW_CPU" -m "$TESTPMD_SW_MEM" \
		--file-prefix "$TPSW_PREFIX" --in-memory --no-pci \
		--vdev "net_vhost0,iface=$SOCK0,queues=$QUEUES" \
		--vdev "net_vhost1,iface=$SOCK1,queues=$QUEUES" -- \
		--nb-cores=1 --rxq="$QUEUES" --txq="$QUEUES" --forward-mode=io --auto-start --stats-period 10 \
		</dev/null >"$d/testpmd.log" 2>&1 &
	SW_PIDS+=($!)
	if ! wait_sockets 30 $! "$SOCK0" "$SOCK1"; then
		log "testpmd-vhost did not come up; tail of $d/testpmd.log:"
		tail -n 20 "$d/testpmd.log" >&2
		return 1
	fi
}

start_vhostd() {  # mode: bridge|xconnect|xconnect-mbuf|xconnect-auto
	local mode=$1 d="$TMP/vhostd-$1"
	mkdir -p "$d"
	SOCK0="$d/a.sock" SOCK1="$d/b.sock"
	local pa pb xc
	if [ "$mode" = bridge ]; then
		pa=', "bridge": "br0"' pb=', "bridge": "br0"' xc='[]'
	elif [ "$mode" = xconnect-mbuf ]; then
		pa=', "single-copy": false' pb=', "single-copy": false'
		xc='[{"name": "x0", "ports": ["a", "b"]}]'
	elif [ "$mode" = xconnect-auto ]; then
		pa=', "single-copy": "auto"' pb=', "single-copy": "auto"'
		xc='[{"name": "x0", "ports": ["a", "b"]}]'
	else
		pa='' pb='' xc='[{"name": "x0", "ports": ["a", "b"]}]'
	fi
	pa+=$PORT_OPTS pb+=$PORT_OPTS
	cat >"$d/vhostd.json" <<EOF
{
  "vhostd": {"run-dir": "$d", "control-socket": "$d/ctl.sock", "mlockall": false},
  "eal": {"file-prefix": "$VHOSTD_PREFIX"},
  "pmd": {"cpus": "$PMD_CPUS", "mode": "$PMD_MODE"},
  "bridges": [{"name": "br0"}],
  "ports": [
    {"name": "a", "type": "vhost-user", "socket": "$SOCK0", "mode": "server", "queues": $QUEUES$pa},
    {"name": "b", "type": "vhost-user", "socket": "$SOCK1", "mode": "server", "queues": $QUEUES$pb}
  ],
  "xconnects": $xc
}
EOF
	VHOSTD_CPUS=$PMD_CPUS launch_vhostd "$d" "$VHOSTD_PREFIX" "$SOCK0" "$SOCK1"
}

# ------------------------------------------------------------ generator --

declare -A RX0 RX1 PEAK STATUS

run_gen() {  # switch size repetition
	local sw=$1 size=$2 n=$3 glog="$TMP/gen-$1-$2-$3.log" out line r0='' r1='' pk='' per='' rc tag
	tag="$sw, ${size} B"
	[ "$REPEAT" -gt 1 ] && tag="$tag, run $n/$REPEAT"
	log "$tag: warm-up ${WARMUP} s, measuring ${DURATION} s"
	use_prefix "$GEN_PREFIX"
	# Run tpgen in the background so that SIGINT/SIGTERM reach our trap.
	python3 "$BENCH_DIR/tpgen.py" --testpmd "$TESTPMD" --cpu "$GEN_CPU" \
		--prefix "$GEN_PREFIX" --mem "$GEN_MEM" --sock0 "$SOCK0" --sock1 "$SOCK1" \
		--size "$size" --warmup "$WARMUP" --duration "$DURATION" --fwd "$GEN_FWD" \
		--log "$glog" --pidfile "$GEN_TP_PIDFILE" --queues "$QUEUES" \
		>"$glog.result" 2>"$glog.err" </dev/null &
	GEN_PID=$!
	local hook_pid=
	if [ -n "$HOOK" ] && [[ $sw == vhostd-* ]]; then
		$HOOK "$sw" "$size" "$n" "$TMP/$sw/ctl.sock" "$glog" </dev/null &
		hook_pid=$!
	fi
	wait "$GEN_PID" && rc=0 || rc=$?
	GEN_PID=
	[ -z "$hook_pid" ] || wait "$hook_pid" || true
	stop_gen_testpmd
	clean_prefix "$GEN_PREFIX"
	line=$(grep '^RESULT ' "$glog.result" || true)
	if [ $rc != 0 ] || [ -z "$line" ]; then
		log "$tag: generator failed: $(cat "$glog.err")"
		log "  (testpmd output in $glog)"
		[ "${STATUS[$sw,$size]:-}" = ok ] || STATUS[$sw,$size]=FAIL
		FAILED=1
		return 1
	fi
	[ -s "$glog.err" ] && sed 's/^/net-loopback:   /' "$glog.err" >&2
	out=${line#RESULT }
	local kv
	for kv in $out; do
		case "$kv" in
		rx0_pps=*) r0=${kv#*=} ;;
		rx1_pps=*) r1=${kv#*=} ;;
		peak_pps=*) pk=${kv#*=} ;;
		per_s=*) per=${kv#*=} ;;
		esac
	done
	log "$tag: rx0 $(mpps "$r0") Mpps, rx1 $(mpps "$r1") Mpps; per second (both): ${per//,/ }"
	# The best second of any repetition (tpgen.py): a separate column.
	if [ -n "$pk" ] && { [ -z "${PEAK[$sw,$size]:-}" ] ||
		awk -v a="$pk" -v b="${PEAK[$sw,$size]}" 'BEGIN { exit !(a > b) }'; }; then
		PEAK[$sw,$size]=$pk
	fi
	# Keep the best repetition (highest total): noise only ever slows a run.
	if [ "${STATUS[$sw,$size]:-}" != ok ] ||
	   awk -v a="$r0" -v b="$r1" -v c="${RX0[$sw,$size]}" -v d="${RX1[$sw,$size]}" \
		'BEGIN { exit !(a + b > c + d) }'; then
		RX0[$sw,$size]=$r0
		RX1[$sw,$size]=$r1
	fi
	STATUS[$sw,$size]=ok
}

mpps() { awk -v p="$1" 'BEGIN { printf "%.3f", p / 1e6 }'; }

run_sizes() {  # switch
	local s n
	for s in "${SIZE_LIST[@]}"; do
		for n in $(seq 1 "$REPEAT"); do run_gen "$1" "$s" "$n" || true; done
	done
}

mark_all() {  # switch status
	local s
	for s in "${SIZE_LIST[@]}"; do STATUS[$1,$s]=$2; done
}

# ------------------------------------------------------------------ run --

log "generator on CPU $GEN_CPU, switch on CPU $SW_CPU, sizes $SIZES, ${DURATION} s after ${WARMUP} s warm-up"
warn_busy_cpus "$GEN_CPU" "$SW_CPU"
log "temp dir: $TMP"

ovs_up=0
for sw in "${SWITCHES[@]}"; do
	if skipped "$sw"; then mark_all "$sw" SKIP; continue; fi
	case "$sw" in
	testpmd-vhost)
		if start_testpmd_vhost; then run_sizes "$sw"; else mark_all "$sw" FAIL; FAILED=1; fi
		stop_switch; clean_prefix "$TPSW_PREFIX"
		;;
	ovs-dpdk-normal|ovs-dpdk-p2p)
		if [ $ovs_up = 0 ]; then
			if start_ovs "$OVS_VSWITCHD"; then ovs_up=1; else ovs_up=-1; fi
		fi
		if [ $ovs_up = 1 ]; then
			if [ "$sw" = ovs-dpdk-normal ]; then ovs_flows_normal; else ovs_flows_p2p; fi
			run_sizes "$sw"
			ovs_report "$sw"
		else
			mark_all "$sw" FAIL; FAILED=1
		fi
		# Stop OVS after its last variant in this run.
		if [ "$sw" = ovs-dpdk-p2p ] || ! has ovs-dpdk-p2p || skipped ovs-dpdk-p2p; then
			stop_switch; clean_prefix "$OVS_PREFIX"; ovs_up=0
		fi
		;;
	vhostd-bridge|vhostd-xconnect|vhostd-xconnect-mbuf|vhostd-xconnect-auto)
		if start_vhostd "${sw#vhostd-}"; then run_sizes "$sw"; else mark_all "$sw" FAIL; FAILED=1; fi
		stop_switch; clean_prefix "$VHOSTD_PREFIX"
		;;
	esac
done

# --------------------------------------------------------------- report --

total() { awk -v a="${RX0[$1,$2]}" -v b="${RX1[$1,$2]}" 'BEGIN { printf "%.0f", a + b }'; }
ratio() {  # sw base size
	if [ "${STATUS[$1,$3]:-}" = ok ] && [ "${STATUS[$2,$3]:-}" = ok ]; then
		awk -v a="$(total "$1" "$3")" -v b="$(total "$2" "$3")" \
			'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
	else
		echo n/a
	fi
}

echo
echo "net-loopback: gen CPU $GEN_CPU, switch CPU $SW_CPU (vhostd PMDs: $PMD_CPUS), $QUEUES queue pair(s) per port, ${DURATION} s window, generator fwd=$GEN_FWD, best of $REPEAT"
printf '%-17s %6s %9s %9s %11s %11s %14s %10s\n' switch frame rx0_mpps rx1_mpps total_mpps vs_testpmd vs_ovs_normal peak_mpps
for size in "${SIZE_LIST[@]}"; do
	for sw in "${SWITCHES[@]}"; do
		st=${STATUS[$sw,$size]:-FAIL}
		if [ "$st" = ok ]; then
			printf '%-17s %6s %9s %9s %11s %11s %14s %10s\n' "$sw" "$size" \
				"$(mpps "${RX0[$sw,$size]}")" "$(mpps "${RX1[$sw,$size]}")" \
				"$(mpps "$(total "$sw" "$size")")" \
				"$(ratio "$sw" testpmd-vhost "$size")" "$(ratio "$sw" ovs-dpdk-normal "$size")" \
				"$(if [ -n "${PEAK[$sw,$size]:-}" ]; then mpps "${PEAK[$sw,$size]}"; else echo -; fi)"
		else
			printf '%-17s %6s %9s %9s %11s %11s %14s %10s\n' "$sw" "$size" "$st" - - - - -
		fi
	done
done
echo
for size in "${SIZE_LIST[@]}"; do
	echo "vhostd-bridge / testpmd-vhost   @ ${size} B: $(ratio vhostd-bridge testpmd-vhost "$size")"
	echo "vhostd-bridge / ovs-dpdk-normal @ ${size} B: $(ratio vhostd-bridge ovs-dpdk-normal "$size")"
done
for e in "${SKIP_REASON[@]}"; do echo "skipped ${e%%|*}: ${e#*|}"; done
