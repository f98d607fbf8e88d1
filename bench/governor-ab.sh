#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# governor-ab.sh - poll vs halt-poll throughput of the closed loop, measured
# inside ONE generator run: the PMD governor is switched live between the two
# modes every few seconds and each phase's rate is read from vhostd's own
# port counters.
#
# Why not separate runs: on this kind of VM the closed loop of
# net-loopback.sh gives 5-9.5 Mpps for the same binary from one run to the
# next (the generator's rate depends on where its memory landed), ten times
# the 3 % to be judged. Within one run the rate is steady, so alternating
# the modes in one run compares like with like.
#
#   sudo bench/governor-ab.sh [--phases N (10)] [--phase-s S (3)] [--size B (64)]
#                             [--switch vhostd-xconnect|vhostd-bridge] [--build DIR]
#
# Prints each phase and: poll mean, halt-poll mean, ratio, and the median of
# the ratios of each halt-poll phase to the mean of its two poll neighbours.
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)

if [ "${1:-}" = --hook ]; then
	# net-loopback.sh hook: SWITCH SIZE RUN CTL_SOCK GEN_LOG
	ctl=$5 glog=$6
	for _ in $(seq 1 600); do
		grep -q 'start tx_first' "$glog" 2>/dev/null && break
		sleep 0.1
	done
	sleep "$GA_WARMUP"
	rx() {
		"$GA_VHOSTCTL" -s "$ctl" stats --json 2>/dev/null |
			python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum(p["rx"]["packets"] for p in r["ports"]), r["time-ns"])'
	}
	for i in $(seq 1 "$GA_PHASES"); do
		if [ $((i % 2)) = 1 ]; then m=poll; else m=halt-poll; fi
		"$GA_VHOSTCTL" -s "$ctl" pmd set mode=$m >/dev/null || { echo "phase $i: pmd set failed"; exit 1; }
		sleep 0.5
		read -r a t0 <<<"$(rx)"
		sleep "$GA_PHASE_S"
		read -r b t1 <<<"$(rx)"
		# packets per ns * 1e3 = Mpps (the daemon's own clock)
		awk -v i="$i" -v m="$m" -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" \
			'BEGIN { printf "PHASE %d %s %.4f\n", i, m, (b - a) / (t1 - t0) * 1e3 }'
	done >"$GA_OUT"
	exit 0
fi

PHASES=10 PHASE_S=3 SIZE=64 SWITCH=vhostd-xconnect BUILD="$REPO_DIR/build"
while [ $# -gt 0 ]; do
	case "$1" in
	--phases) PHASES=${2:?}; shift 2 ;;
	--phase-s) PHASE_S=${2:?}; shift 2 ;;
	--size) SIZE=${2:?}; shift 2 ;;
	--switch) SWITCH=${2:?}; shift 2 ;;
	--build) BUILD=${2:?}; shift 2 ;;
	-h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "governor-ab.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
case "$SWITCH" in vhostd-xconnect|vhostd-bridge) ;; *) echo "governor-ab.sh: --switch vhostd-xconnect|vhostd-bridge" >&2; exit 2 ;; esac
[ $((PHASES % 2)) = 0 ] || PHASES=$((PHASES + 1))
OUTF=$(mktemp /tmp/governor-ab.XXXXXX)
export GA_OUT="$OUTF" GA_PHASES="$PHASES" GA_PHASE_S="$PHASE_S" GA_WARMUP=3 \
	GA_VHOSTCTL="$BUILD/ctl/vhostctl"
DUR=$(awk -v n="$PHASES" -v s="$PHASE_S" 'BEGIN { printf "%d", n * (s + 1.2) + 4 }')
"$BENCH_DIR/net-loopback.sh" --only "$SWITCH" --sizes "$SIZE" --duration "$DUR" --warmup 3 \
	--vhostd "$BUILD/vhostd" --pmd-mode poll --hook "$0 --hook" >/dev/null 2>"$OUTF.log" ||
	{ echo "governor-ab.sh: net-loopback.sh failed, see $OUTF.log" >&2; exit 1; }
cat "$OUTF"
python3 - "$OUTF" "$SWITCH" "$SIZE" <<'EOF'
import statistics, sys
ph = [l.split() for l in open(sys.argv[1]) if l.startswith("PHASE")]
rate = {int(p[1]): (p[2], float(p[3])) for p in ph}
poll = [r for m, r in rate.values() if m == "poll"]
halt = [r for m, r in rate.values() if m == "halt-poll"]
if not poll or not halt:
    sys.exit("governor-ab.sh: no phases measured")
pair = []
for i, (m, r) in sorted(rate.items()):
    if m != "halt-poll":
        continue
    nb = [rate[j][1] for j in (i - 1, i + 1) if j in rate and rate[j][0] == "poll"]
    if nb:
        pair.append(r / statistics.mean(nb))
print("%s %s B: poll mean %.3f Mpps (%d phases, spread %.1f %%), halt-poll mean %.3f Mpps "
      "(%d phases, spread %.1f %%), ratio %.3f; median ratio to the poll neighbours %.3f" % (
          sys.argv[2], sys.argv[3], statistics.mean(poll), len(poll),
          100 * (max(poll) - min(poll)) / statistics.mean(poll), statistics.mean(halt), len(halt),
          100 * (max(halt) - min(halt)) / statistics.mean(halt),
          statistics.mean(halt) / statistics.mean(poll), statistics.median(pair)))
EOF
rm -f "$OUTF" "$OUTF.log"
