# shellcheck shell=bash
# lib.sh - shell helpers shared by the bench/ scripts (net-loopback.sh,
# latency.sh).  Source it after setting LIB_NAME (the prefix of messages).
#
# The helpers use these globals of the calling script:
#   TMP         its temp dir
#   SW_CPU      CPU of the switch under test
#   SW_PIDS     array: processes of the switch under test (start_* append)
#   OVSDIR      OVS run/db/log/etc dir (start_ovs)
#   OVS_MEM     OVS dpdk-socket-mem in MiB
#   OVS_PREFIX  OVS EAL --file-prefix
#   SOCK0 SOCK1 set by start_ovs to the two vhost-user sockets
#   VHOSTD      the vhostd binary (launch_vhostd)
#   GEN_PID, KEEP, FAILED, CLEAN_PREFIXES, GEN_STOP_WAIT: see lib_cleanup
# Everything stopped or removed here was started or created by the caller.

die() { echo "$LIB_NAME: error: $*" >&2; exit 1; }
log() { echo "$LIB_NAME: $*" >&2; }

# --only: the names of comma-separated LIST (all if empty), in the order of
# the known names, one per line; dies on an unknown name.
select_names() {  # what LIST known...
	local what=$1 list=$2 w k ok want; shift 2
	if [ -z "$list" ]; then
		printf '%s\n' "$@"
		return 0
	fi
	IFS=, read -r -a want <<<"$list"
	for w in "${want[@]}"; do
		ok=0
		for k in "$@"; do [ "$k" = "$w" ] && ok=1; done
		[ $ok = 1 ] || die "unknown $what '$w' (known: $*)"
	done
	for k in "$@"; do
		for w in "${want[@]}"; do [ "$k" = "$w" ] && echo "$k"; done
	done
	return 0
}

# CPUs must exist and be online.
check_cpus() {
	local c
	for c in "$@"; do
		[ -d "/sys/devices/system/cpu/cpu$c" ] || die "CPU $c does not exist"
		if [ -r "/sys/devices/system/cpu/cpu$c/online" ] &&
		   [ "$(cat "/sys/devices/system/cpu/cpu$c/online")" != 1 ]; then
			die "CPU $c is offline"
		fi
	done
}

# Enough free 2 MiB hugepages for MiB megabytes (plus a 64-page margin)?
check_hugepages() {  # MiB
	local hp=/sys/kernel/mm/hugepages/hugepages-2048kB need free total
	[ -r "$hp/free_hugepages" ] || die "no 2 MiB hugepage support ($hp missing)"
	need=$(( $1 / 2 + 64 ))
	free=$(cat "$hp/free_hugepages")
	total=$(cat "$hp/nr_hugepages")
	if [ "$free" -lt "$need" ]; then
		cat >&2 <<EOF
$LIB_NAME: error: not enough free 2 MiB hugepages: need $need, $free of $total free.
  Reserve more (as root), e.g.:
    echo $(( total + need - free )) > $hp/nr_hugepages
  or at boot: default_hugepagesz=2M hugepagesz=2M hugepages=$(( total + need - free ))
  and make sure hugetlbfs is mounted: mount -t hugetlbfs nodev /dev/hugepages
EOF
		exit 1
	fi
	grep -qs ' hugetlbfs ' /proc/mounts ||
		die "no hugetlbfs mounted (mount -t hugetlbfs nodev /dev/hugepages)"
}

# Stop a list of pids: SIGTERM, wait up to STOP_WAIT (default 15) seconds,
# then SIGKILL.  Only pids the calling script started are ever passed here.
stop_pids() {
	local p alive
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for _ in $(seq 1 $(( ${STOP_WAIT:-15} * 10 ))); do
		alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "$@"; do
		if kill -0 "$p" 2>/dev/null; then
			log "pid $p did not exit on SIGTERM, killing"
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# The EXIT trap of the scripts: stop GEN_PID (waiting GEN_STOP_WAIT s,
# default 15), run cleanup_hook if the script defines one, stop the switch,
# clean the EAL prefixes in CLEAN_PREFIXES, and remove TMP unless KEEP=1,
# FAILED=1 or the script fails.
lib_cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	if [ -n "${GEN_PID:-}" ]; then
		STOP_WAIT=${GEN_STOP_WAIT:-15} stop_pids "$GEN_PID"
		GEN_PID=
	fi
	if declare -F cleanup_hook >/dev/null; then cleanup_hook; fi
	stop_switch
	for p in "${CLEAN_PREFIXES[@]}"; do clean_prefix "$p"; done
	if [ "$KEEP" = 1 ] || [ "$FAILED" = 1 ] || [ "$rc" != 0 ]; then
		log "logs and configs kept in $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}

install_cleanup() {
	trap lib_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

stop_switch() {
	if [ ${#SW_PIDS[@]} -gt 0 ]; then
		stop_pids "${SW_PIDS[@]}"
	fi
	SW_PIDS=()
}

# Remove hugepage files and the EAL runtime dir of one of OUR prefixes, and
# only once this run has used it (see use_prefix).
declare -A USED_PREFIX
use_prefix() { USED_PREFIX[$1]=1; }
clean_prefix() {
	local pfx=$1 mnt
	[ -n "${USED_PREFIX[$pfx]:-}" ] || return 0
	while read -r _ mnt fstype _; do
		[ "$fstype" = hugetlbfs ] || continue
		rm -f "$mnt/${pfx}map_"* 2>/dev/null || true
	done </proc/mounts
	rm -rf "/var/run/dpdk/$pfx"
}

wait_sockets() {  # timeout_s pid sock...
	local t=$1 pid=$2 s ok; shift 2
	for _ in $(seq 1 $((t * 10))); do
		ok=1
		for s in "$@"; do [ -S "$s" ] || ok=0; done
		[ $ok = 1 ] && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# How busy CPU $1 was over the last second, in percent (others' load).
cpu_busy() {
	local a b
	a=$(awk -v c="cpu$1" '$1 == c { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat)
	sleep 1
	b=$(awk -v c="cpu$1" '$1 == c { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
		busy = y[1] - x[1]; idle = y[2] - x[2]; pct = 0;
		if (busy + idle > 0) pct = 100 * busy / (busy + idle);
		printf "%.0f", pct }'
}

warn_busy_cpus() {  # cpu...
	local c b
	for c in "$@"; do
		b=$(cpu_busy "$c")
		if [ "$b" -gt 5 ]; then
			log "WARNING: CPU $c is already ${b}% busy with other processes: the numbers will be low and noisy"
		fi
	done
}

# ------------------------------------------------------------------ OVS --

# Tools and files the DPDK OVS rows need; prints why not, if missing.
ovs_missing() {  # path-of-ovs-vswitchd-dpdk
	local t
	if [ ! -x "$1" ]; then
		echo "DPDK ovs-vswitchd not found at $1 (apt-get install openvswitch-switch-dpdk)"
		return 0
	fi
	for t in ovsdb-tool ovsdb-server ovs-vsctl ovs-ofctl ovs-appctl; do
		if ! command -v $t >/dev/null; then
			echo "$t not found (apt-get install openvswitch-switch)"
			return 0
		fi
	done
	if [ ! -r /usr/share/openvswitch/vswitch.ovsschema ]; then
		echo "/usr/share/openvswitch/vswitch.ovsschema missing"
		return 0
	fi
	return 1
}

ovs_vsctl() { ovs-vsctl --db="unix:$OVSDIR/run/db.sock" --timeout=30 "$@"; }
ovs_ofctl() { ovs-ofctl "$@"; }
ovs_appctl() {
	ovs-appctl -t "$OVSDIR/run/ovs-vswitchd-dpdk.$(cat "$OVSDIR/run/ovs-vswitchd.pid").ctl" "$@"
}

# Private ovsdb-server + DPDK ovs-vswitchd pinned to SW_CPU, DPDK
# initialised. $2: more DPDK EAL arguments; $3...: a command that runs
# ovs-vswitchd (e.g. `unshare --net`).
start_ovs_daemons() {  # ovs-vswitchd-binary [dpdk-extra] [wrapper...]
	local d=$OVSDIR pid vswitchd=$1 extra=${2:-}
	shift $(($# > 1 ? 2 : 1))
	mkdir -p "$d/run" "$d/db" "$d/log" "$d/etc"
	use_prefix "$OVS_PREFIX"
	export OVS_RUNDIR="$d/run" OVS_DBDIR="$d/db" OVS_LOGDIR="$d/log" \
		OVS_SYSCONFDIR="$d/etc" OVS_PKGDATADIR=/usr/share/openvswitch
	ovsdb-tool create "$d/db/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	taskset -c "$SW_CPU" ovsdb-server "$d/db/conf.db" \
		--remote="punix:$d/run/db.sock" \
		--pidfile="$d/run/ovsdb-server.pid" --log-file="$d/log/ovsdb-server.log" \
		--no-chdir --detach -vconsole:off >"$d/log/ovsdb-server.out" 2>&1 || {
		log "ovsdb-server failed to start:"; cat "$d/log/ovsdb-server.out" >&2; return 1
	}
	pid=$(cat "$d/run/ovsdb-server.pid")
	SW_PIDS+=("$pid")
	ovs_vsctl --no-wait init || return 1
	ovs_vsctl --no-wait set Open_vSwitch . \
		other_config:dpdk-init=true \
		other_config:dpdk-lcore-mask="$(printf '0x%x' $((1 << SW_CPU)))" \
		other_config:pmd-cpu-mask="$(printf '0x%x' $((1 << SW_CPU)))" \
		other_config:dpdk-socket-mem="$OVS_MEM" \
		other_config:dpdk-extra="--file-prefix=$OVS_PREFIX --no-pci${extra:+ $extra}" || return 1
	taskset -c "$SW_CPU" "$@" "$vswitchd" "unix:$d/run/db.sock" \
		--pidfile="$d/run/ovs-vswitchd.pid" --log-file="$d/log/ovs-vswitchd.log" \
		--no-chdir --detach -vconsole:off >"$d/log/ovs-vswitchd.out" 2>&1 || {
		log "ovs-vswitchd failed to start; tail of $d/log/ovs-vswitchd.log:"
		tail -n 20 "$d/log/ovs-vswitchd.log" >&2
		return 1
	}
	pid=$(cat "$d/run/ovs-vswitchd.pid")
	SW_PIDS+=("$pid")
	for _ in $(seq 1 600); do
		[ "$(ovs_vsctl get Open_vSwitch . dpdk_initialized 2>/dev/null)" = true ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ "$(ovs_vsctl get Open_vSwitch . dpdk_initialized 2>/dev/null)" != true ]; then
		log "OVS DPDK initialisation failed; tail of $d/log/ovs-vswitchd.log:"
		tail -n 20 "$d/log/ovs-vswitchd.log" >&2
		return 1
	fi
}

# Bridge br0 (netdev datapath) with two dpdkvhostuser ports (OVS is the
# server), ofports 1 and 2; SOCK0/SOCK1 are their sockets.
ovs_vhost_bridge() {  # port-a port-b
	local d=$OVSDIR
	ovs_vsctl add-br br0 -- set bridge br0 datapath_type=netdev || return 1
	ovs_vsctl add-port br0 "$1" -- set Interface "$1" type=dpdkvhostuser ofport_request=1 || return 1
	ovs_vsctl add-port br0 "$2" -- set Interface "$2" type=dpdkvhostuser ofport_request=2 || return 1
	# The bridge's own (internal, tap) port would receive a copy of every
	# flooded frame; keep it out of flooding so NORMAL is a two-port bridge
	# like the other switches.
	ovs_ofctl mod-port br0 br0 no-flood
	SOCK0="$d/run/$1" SOCK1="$d/run/$2"
	if ! wait_sockets 30 "$(ovs_vswitchd_pid)" "$SOCK0" "$SOCK1"; then
		log "OVS vhost-user sockets did not appear; tail of $d/log/ovs-vswitchd.log:"
		tail -n 20 "$d/log/ovs-vswitchd.log" >&2
		return 1
	fi
}

# OVS-DPDK with br0 and ports vhu-a (SOCK0), vhu-b (SOCK1).
start_ovs() {  # ovs-vswitchd-binary
	start_ovs_daemons "$1" && ovs_vhost_bridge vhu-a vhu-b
}

ovs_vswitchd_pid() { cat "$OVSDIR/run/ovs-vswitchd.pid"; }

ovs_pmd_stats_clear() {
	ovs_appctl dpif-netdev/pmd-stats-clear >/dev/null 2>&1 || true
}

ovs_flows_normal() {
	ovs_pmd_stats_clear
	ovs_ofctl del-flows br0
	ovs_ofctl add-flow br0 "priority=0,actions=NORMAL"
}

ovs_flows_p2p() {
	ovs_pmd_stats_clear
	ovs_ofctl del-flows br0
	ovs_ofctl add-flow br0 "in_port=1,actions=output:2"
	ovs_ofctl add-flow br0 "in_port=2,actions=output:1"
}

ovs_report() {  # what OVS thinks it did, for the log
	{
		echo "== $1"
		ovs_appctl dpif-netdev/pmd-stats-show 2>&1 || true
		ovs_ofctl dump-flows br0 2>&1 || true
	} >>"$OVSDIR/log/stats.txt"
}

# --------------------------------------------------------------- vhostd --

# Run VHOSTD pinned to VHOSTD_CPUS (default SW_CPU) with DIR/vhostd.json (written by the caller),
# output in DIR/vhostd.log; ready when every given socket exists.
launch_vhostd() {  # dir prefix sock...
	local d=$1 pfx=$2 pid; shift 2
	use_prefix "$pfx"
	taskset -c "${VHOSTD_CPUS:-$SW_CPU}" "$VHOSTD" -c "$d/vhostd.json" </dev/null >"$d/vhostd.log" 2>&1 &
	pid=$!
	SW_PIDS+=("$pid")
	if ! wait_sockets 30 "$pid" "$@"; then
		log "vhostd ($d) did not create its sockets; tail of $d/vhostd.log:"
		tail -n 20 "$d/vhostd.log" >&2
		return 1
	fi
}
