#!/usr/bin/env bash
# ovs-dpdk-attach.sh - throughput of a vhostd port attached to an OVS-DPDK
# bridge (ovs.attach: a net_virtio_user link joined by OVS as a
# dpdkvhostuserclient Interface) against a native OVS dpdkvhostuser port.
#
# One private OVS-DPDK (netdev bridge br0, own EAL prefix, own network
# namespace, --single-file-segments) with two dpdkvhostuser ports p1
# (ofport 1) and p2 (ofport 2).  The closed-loop generator of
# net-loopback.sh (tpgen.py: a dpdk-testpmd with two net_virtio_user ports)
# is run twice, one row after the other:
#   native  gen A <-> OVS p1,                         gen B <-> OVS p2; flows 1<->2
#   vhostd  gen A <-> vhostd a -> link -> OVS (a.sock), gen B <-> OVS p2; flows link<->2
# Rx Mpps of each generator port (per direction) and vhostd/native ratio.
#
# CPUs: generator on --gen-cpu, OVS PMD (and its main thread) on --ovs-cpu;
# vhostd's PMD has no CPU of its own on a 2-CPU host and shares
# --vhostd-cpu (default: the OVS CPU).  Run by hand, as root; see
# bench/README.md.  Prints numbers, asserts nothing about them (exit 0 if
# both rows ran).

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
LIB_NAME=ovs-dpdk-attach
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

DURATION=10
WARMUP=3
SIZES=64
GEN_CPU=0
SW_CPU=1
VHOSTD_CPU=
VHOSTD="$REPO_DIR/build/vhostd"
PMD_MODE=poll
TESTPMD=$(command -v dpdk-testpmd || echo /usr/bin/dpdk-testpmd)
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
KEEP=0
GEN_MEM=512
OVS_MEM=1024
VHOSTD_MEM=1024

usage() {
	cat <<EOF
Usage: $0 [options]

Throughput of a vhostd port attached to OVS-DPDK (ovs.attach, virtio_user
link) against a native OVS dpdkvhostuser port, same generator, same run.

Options:
  --duration S        measurement window in seconds (default $DURATION)
  --warmup S          warm-up before measuring, seconds (default $WARMUP)
  --sizes LIST        frame sizes, comma separated (default $SIZES)
  --gen-cpu G         generator CPU (default $GEN_CPU)
  --ovs-cpu S         OVS lcore + PMD CPU (default $SW_CPU)
  --vhostd-cpu V      vhostd PMD CPU (default: the OVS CPU, shared)
  --pmd-mode MODE     vhostd PMD governor: poll (default), halt-poll, interrupt
  --vhostd PATH       vhostd binary (default $VHOSTD)
  --testpmd PATH      dpdk-testpmd (default $TESTPMD)
  --ovs-vswitchd PATH DPDK ovs-vswitchd (default $OVS_VSWITCHD)
  --keep              keep the temp dir
  -h, --help          this help
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--duration) DURATION=${2:?}; shift 2 ;;
	--warmup) WARMUP=${2:?}; shift 2 ;;
	--sizes) SIZES=${2:?}; shift 2 ;;
	--gen-cpu) GEN_CPU=${2:?}; shift 2 ;;
	--ovs-cpu) SW_CPU=${2:?}; shift 2 ;;
	--vhostd-cpu) VHOSTD_CPU=${2:?}; shift 2 ;;
	--pmd-mode) PMD_MODE=${2:?}; shift 2 ;;
	--vhostd) VHOSTD=${2:?}; shift 2 ;;
	--testpmd) TESTPMD=${2:?}; shift 2 ;;
	--ovs-vswitchd) OVS_VSWITCHD=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done

is_num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }
is_num "$DURATION" || die "--duration must be a number"
is_num "$WARMUP" || die "--warmup must be a number"
[ -n "$VHOSTD_CPU" ] || VHOSTD_CPU=$SW_CPU
[[ $GEN_CPU =~ ^[0-9]+$ && $SW_CPU =~ ^[0-9]+$ && $VHOSTD_CPU =~ ^[0-9]+$ ]] || die "CPUs must be integers"
[ "$GEN_CPU" != "$SW_CPU" ] || die "--gen-cpu and --ovs-cpu must differ"
[[ $PMD_MODE =~ ^(poll|halt-poll|interrupt)$ ]] || die "bad --pmd-mode"
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
for s in "${SIZE_LIST[@]}"; do
	if ! [[ $s =~ ^[0-9]+$ ]] || [ "$s" -lt 64 ] || [ "$s" -gt 9000 ]; then die "bad frame size '$s'"; fi
done
[ "$(id -u)" = 0 ] || die "must run as root"
check_cpus "$GEN_CPU" "$SW_CPU" "$VHOSTD_CPU"
for t in python3 taskset unshare; do command -v $t >/dev/null || die "$t not found"; done
[ -x "$TESTPMD" ] || die "dpdk-testpmd not found at '$TESTPMD'"
[ -x "$VHOSTD" ] || die "$VHOSTD does not exist (meson setup build && ninja -C build)"
if why=$(ovs_missing "$OVS_VSWITCHD"); then die "$why"; fi
check_hugepages $(( GEN_MEM + OVS_MEM + VHOSTD_MEM ))

TMP=$(mktemp -d /tmp/ovs-dpdk-attach.XXXXXX)
chmod 755 "$TMP"
GEN_PREFIX="oda$$gen"
OVS_PREFIX="oda$$ovs"
VHOSTD_PREFIX="oda$$vhd"
OVSDIR="$TMP/ovs"
VDIR="$TMP/vhostd"
FAILED=0
SW_PIDS=()
GEN_PID=
GEN_TP_PIDFILE="$TMP/gen-testpmd.pid"
stop_gen_testpmd() {
	local p
	[ -s "$GEN_TP_PIDFILE" ] || return 0
	p=$(cat "$GEN_TP_PIDFILE")
	if [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = dpdk-testpmd ]; then
		stop_pids "$p"
	fi
	rm -f "$GEN_TP_PIDFILE"
}
GEN_STOP_WAIT=30
# shellcheck disable=SC2317  # called by lib_cleanup
cleanup_hook() { stop_gen_testpmd; }
CLEAN_PREFIXES=("$GEN_PREFIX" "$OVS_PREFIX" "$VHOSTD_PREFIX")
install_cleanup

# ------------------------------------------------------------------ OVS --
# Like lib.sh's start_ovs, but: --single-file-segments (vhostd's virtio_user
# link needs it on OVS's side), a network namespace of its own (the netdev
# datapath's tap devices would clash with another OVS), ports p1/p2.
start_ovs_ns() {
	start_ovs_daemons "$OVS_VSWITCHD" --single-file-segments unshare --net &&
		ovs_vhost_bridge p1 p2
}

flows() {  # ofport-a ofport-b
	ovs_pmd_stats_clear
	ovs_ofctl del-flows br0
	ovs_ofctl add-flow br0 "in_port=$1,actions=output:$2"
	ovs_ofctl add-flow br0 "in_port=$2,actions=output:$1"
}

# --------------------------------------------------------------- vhostd --
rpc() {  # method json-params
	python3 - "$VDIR/ctl.sock" "$1" "$2" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall((json.dumps({"jsonrpc": "2.0", "id": 1, "method": sys.argv[2],
                       "params": json.loads(sys.argv[3])}) + "\n").encode())
s.shutdown(socket.SHUT_WR)
buf = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    buf += c
r = json.loads(buf.decode().splitlines()[0])
if "error" in r:
    sys.stderr.write("rpc error: %s\n" % json.dumps(r["error"]))
    sys.exit(1)
print(json.dumps(r["result"]))
EOF
}

start_vhostd_attached() {
	mkdir -p "$VDIR"
	cat >"$VDIR/vhostd.json" <<EOF
{
  "vhostd": {"run-dir": "$VDIR", "control-socket": "$VDIR/ctl.sock", "mlockall": false},
  "eal": {"file-prefix": "$VHOSTD_PREFIX"},
  "pmd": {"cpus": "$VHOSTD_CPU", "mode": "$PMD_MODE"},
  "bridges": [],
  "ports": [
    {"name": "a", "type": "vhost-user", "socket": "$VDIR/a.sock", "mode": "server", "mac": "52:54:00:bb:00:01"}
  ],
  "xconnects": [],
  "ovs": {"db": "unix:$OVSDIR/run/db.sock", "stats-interval-s": 1}
}
EOF
	SW_CPU=$VHOSTD_CPU launch_vhostd "$VDIR" "$VHOSTD_PREFIX" "$VDIR/a.sock" "$VDIR/ctl.sock" || return 1
	rpc ovs.attach '{"port": "a", "bridge": "br0", "iface-id": "bench-a"}' >/dev/null || return 1
	local st
	for _ in $(seq 1 600); do
		st=$(rpc ovs.show '{"port": "a"}' 2>/dev/null || true)
		if python3 -c 'import json,sys; a=json.loads(sys.argv[1]); sys.exit(not (a["state"]=="attached" and a.get("applied")))' "$st" 2>/dev/null; then
			echo "$st" >"$VDIR/attach.json"
			return 0
		fi
		sleep 0.1
	done
	log "vhostd port a not attached: $st"
	return 1
}

# ------------------------------------------------------------ generator --
declare -A RX0 RX1 STATUS
mpps() { awk -v p="$1" 'BEGIN { printf "%.3f", p / 1e6 }'; }

run_gen() {  # row size sock0 sock1
	local row=$1 size=$2 glog="$TMP/gen-$1-$2.log" line rc kv
	log "$row, ${size} B: warm-up ${WARMUP} s, measuring ${DURATION} s"
	use_prefix "$GEN_PREFIX"
	python3 "$BENCH_DIR/tpgen.py" --testpmd "$TESTPMD" --cpu "$GEN_CPU" \
		--prefix "$GEN_PREFIX" --mem "$GEN_MEM" --sock0 "$3" --sock1 "$4" \
		--size "$size" --warmup "$WARMUP" --duration "$DURATION" \
		--log "$glog" --pidfile "$GEN_TP_PIDFILE" \
		>"$glog.result" 2>"$glog.err" </dev/null &
	GEN_PID=$!
	wait "$GEN_PID" && rc=0 || rc=$?
	GEN_PID=
	stop_gen_testpmd
	clean_prefix "$GEN_PREFIX"
	line=$(grep '^RESULT ' "$glog.result" || true)
	if [ $rc != 0 ] || [ -z "$line" ]; then
		log "$row, ${size} B: generator failed: $(cat "$glog.err")"
		STATUS[$row,$size]=FAIL; FAILED=1; return 1
	fi
	for kv in ${line#RESULT }; do
		case "$kv" in
		rx0_pps=*) RX0[$row,$size]=${kv#*=} ;;
		rx1_pps=*) RX1[$row,$size]=${kv#*=} ;;
		esac
	done
	STATUS[$row,$size]=ok
	log "$row, ${size} B: rx0 $(mpps "${RX0[$row,$size]}") rx1 $(mpps "${RX1[$row,$size]}") Mpps"
}

# ------------------------------------------------------------------ run --
SHARED="vhostd PMD on CPU $VHOSTD_CPU"
if [ "$VHOSTD_CPU" = "$SW_CPU" ]; then SHARED="$SHARED, SHARED with the OVS PMD"
elif [ "$VHOSTD_CPU" = "$GEN_CPU" ]; then SHARED="$SHARED, SHARED with the generator"; fi
log "generator CPU $GEN_CPU, OVS PMD CPU $SW_CPU, $SHARED; temp dir $TMP"
warn_busy_cpus "$GEN_CPU" "$SW_CPU"

start_ovs_ns || die "OVS did not start"
P1="$OVSDIR/run/p1" P2="$OVSDIR/run/p2"
flows 1 2
for s in "${SIZE_LIST[@]}"; do run_gen native "$s" "$P1" "$P2" || true; done
ovs_report native
# p1 stays idle (no client) for the vhostd row.
if start_vhostd_attached; then
	LINK_OFPORT=$(ovs_vsctl get Interface a.sock ofport)
	log "vhostd link a.sock is ofport $LINK_OFPORT"
	flows "$LINK_OFPORT" 2
	for s in "${SIZE_LIST[@]}"; do run_gen vhostd "$s" "$VDIR/a.sock" "$P2" || true; done
	ovs_report vhostd
	rpc ovs.detach '{"port": "a"}' >/dev/null 2>&1 || true
else
	for s in "${SIZE_LIST[@]}"; do STATUS[vhostd,$s]=FAIL; done
	FAILED=1
fi

# --------------------------------------------------------------- report --
echo
echo "ovs-dpdk-attach: generator CPU $GEN_CPU, OVS PMD CPU $SW_CPU, $SHARED (vhostd pmd mode $PMD_MODE), ${DURATION} s window"
echo "  native: gen A <-> OVS dpdkvhostuser p1, gen B <-> p2, flows p1<->p2"
echo "  vhostd: gen A <-> vhostd a -> virtio_user link -> OVS dpdkvhostuserclient a.sock, gen B <-> p2, flows link<->p2"
echo "  A->B: Rx Mpps at gen B (into OVS via p1/vhostd); B->A: Rx Mpps at gen A"
printf '%-8s %6s %10s %10s %11s\n' row frame 'A->B' 'B->A' total
for s in "${SIZE_LIST[@]}"; do
	for row in native vhostd; do
		if [ "${STATUS[$row,$s]:-FAIL}" = ok ]; then
			printf '%-8s %6s %10s %10s %11s\n' "$row" "$s" "$(mpps "${RX1[$row,$s]}")" \
				"$(mpps "${RX0[$row,$s]}")" \
				"$(awk -v a="${RX0[$row,$s]}" -v b="${RX1[$row,$s]}" 'BEGIN { printf "%.3f", (a + b) / 1e6 }')"
		else
			printf '%-8s %6s %10s %10s %11s\n' "$row" "$s" FAIL - -
		fi
	done
	if [ "${STATUS[native,$s]:-}" = ok ] && [ "${STATUS[vhostd,$s]:-}" = ok ]; then
		awk -v s="$s" -v n0="${RX0[native,$s]}" -v n1="${RX1[native,$s]}" \
			-v v0="${RX0[vhostd,$s]}" -v v1="${RX1[vhostd,$s]}" 'BEGIN {
			printf "vhostd/native @ %s B: A->B %s, B->A %s, total %s\n", s,
				(n1 > 0 ? sprintf("%.2f", v1 / n1) : "n/a"),
				(n0 > 0 ? sprintf("%.2f", v0 / n0) : "n/a"),
				(n0 + n1 > 0 ? sprintf("%.2f", (v0 + v1) / (n0 + n1)) : "n/a") }'
	fi
done
echo "note: with 2 CPUs vhostd's PMD has no CPU of its own ($SHARED); the vhostd row measures that sharing, not vhostd alone."
exit 0
