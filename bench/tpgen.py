#!/usr/bin/env python3
"""Drive the loopback traffic generator for bench/net-loopback.sh.

Starts ONE interactive dpdk-testpmd with two net_virtio_user ports that
connect (as vhost-user clients) to the sockets of the switch under test,
injects a closed loop of packets with `start tx_first`, and measures the Rx
packet rate of each port over `--duration` seconds after `--warmup` seconds,
from `show port stats all` snapshots taken every `--sample` seconds.

Prints one line on stdout on success:
    RESULT rx0_pps=<float> rx1_pps=<float> elapsed=<s> tries=<n>
           peak_pps=<float> windows=<n> per_s=<Mpps,Mpps,...>
(one line) and exits 0. rx0/rx1 are the whole window's rates; peak_pps is
the best sample's rate of both ports added, and per_s every sample's, in
order: on a host that steals or slows the CPUs for seconds at a time they
show the phases inside one run (bench/RESULTS.md). On failure prints
`ERROR <reason>` on stderr and exits 1.
Everything testpmd prints goes to --log.

Only the Python standard library is used.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

PROMPT = "testpmd> "


class Testpmd:
    def __init__(self, argv, log_path):
        self.log = open(log_path, "w", buffering=1)
        self.log.write("# " + " ".join(argv) + "\n")
        self.buf = ""
        self.cond = threading.Condition()
        self.eof = False
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, bufsize=0, start_new_session=False)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.proc.stdout.fileno(), 65536)
            except (OSError, ValueError):
                data = b""
            if not data:
                with self.cond:
                    self.eof = True
                    self.cond.notify_all()
                return
            text = data.decode("utf-8", "replace")
            self.log.write(text)
            with self.cond:
                self.buf += text
                self.cond.notify_all()

    def wait_for(self, needle, timeout):
        """Wait until `needle` shows up in the buffer; return and consume
        everything up to and including it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                idx = self.buf.find(needle)
                if idx >= 0:
                    out = self.buf[:idx]
                    self.buf = self.buf[idx + len(needle):]
                    return out
                if self.eof:
                    raise RuntimeError("testpmd exited (rc=%s) while waiting for %r"
                                       % (self.proc.poll(), needle))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("timeout waiting for %r from testpmd" % needle)
                self.cond.wait(left)

    def cmd(self, line, timeout=30):
        self.log.write("\n# >>> %s\n" % line)
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        return self.wait_for(PROMPT, timeout)

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.proc.stdin.write(b"quit\n")
                    self.proc.stdin.flush()
                    self.proc.stdin.close()
                except OSError:
                    pass
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.terminate()
                    try:
                        self.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                        self.proc.wait()
        finally:
            self.reader.join(timeout=2)
            self.log.close()


STATS_RE = re.compile(r"NIC statistics for port (\d+)\s*#+\s*RX-packets:\s*(\d+)")


def snapshot(tp):
    """Return (t, {port: rx_packets}) taken with `show port stats all`."""
    t0 = time.monotonic()
    out = tp.cmd("show port stats all")
    t1 = time.monotonic()
    rx = {int(p): int(n) for p, n in STATS_RE.findall(out)}
    if 0 not in rx or 1 not in rx:
        raise RuntimeError("could not parse port stats:\n" + out)
    return (t0 + t1) / 2.0, rx


def link_up(tp, port):
    out = tp.cmd("show port info %d" % port)
    m = re.search(r"Link status:\s*(\w+)", out)
    return bool(m and m.group(1).lower() == "up")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--testpmd", default="dpdk-testpmd")
    ap.add_argument("--cpu", type=int, required=True, help="generator CPU")
    ap.add_argument("--prefix", required=True, help="EAL --file-prefix")
    ap.add_argument("--sock0", required=True)
    ap.add_argument("--sock1", required=True)
    ap.add_argument("--size", type=int, required=True, help="frame size (bytes, no FCS)")
    ap.add_argument("--mem", type=int, default=512, help="EAL -m (MiB)")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds to wait after links are up before tx_first")
    ap.add_argument("--burst-count", type=int, default=32, help="start tx_first N")
    ap.add_argument("--fwd", default="io", choices=["io", "mac"])
    ap.add_argument("--mac0", default="52:54:00:bb:00:01")
    ap.add_argument("--mac1", default="52:54:00:bb:00:02")
    ap.add_argument("--retries", type=int, default=2,
                    help="re-inject packets this many times if a direction stays dead")
    ap.add_argument("--log", required=True)
    ap.add_argument("--pidfile", help="write the testpmd pid here")
    ap.add_argument("--sample", type=float, default=1.0,
                    help="seconds between rate samples in the window (peak_pps)")
    ap.add_argument("--queues", type=int, default=1,
                    help="queue pairs per port (virtio_user queues=N, --rxq/--txq N)")
    a = ap.parse_args()

    mq = ",queues=%d" % a.queues if a.queues > 1 else ""
    argv = [
        # testpmd printf()s into a pipe (block-buffered) while cmdline writes
        # the prompt straight to the fd: line-buffer stdout to keep them in order.
        "stdbuf", "-oL", "taskset", "-c", str(a.cpu), a.testpmd,
        "--lcores", "0@%d,1@%d" % (a.cpu, a.cpu),
        "-m", str(a.mem), "--file-prefix", a.prefix, "--no-pci",
        "--single-file-segments", "--log-level", "lib.eal:notice",
        "--vdev", "net_virtio_user0,path=%s,mac=%s%s" % (a.sock0, a.mac0, mq),
        "--vdev", "net_virtio_user1,path=%s,mac=%s%s" % (a.sock1, a.mac1, mq),
        "--", "-i", "--nb-cores=1", "--forward-mode=%s" % a.fwd,
        "--txpkts=%d" % a.size,
        # Each direction is addressed to the MAC of the port it arrives on,
        # so a learning bridge sees stable, known unicast destinations.
        "--eth-peer=0,%s" % a.mac1, "--eth-peer=1,%s" % a.mac0,
    ]
    if a.size > 2048:
        argv.append("--mbuf-size=%d" % (a.size + 128))
    if a.queues > 1:
        # One forwarding lcore polls every queue: stream port0/rxq i -> port1/txq i.
        argv += ["--rxq=%d" % a.queues, "--txq=%d" % a.queues]

    tp = Testpmd(argv, a.log)
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write("%d\n" % tp.proc.pid)
    rc = 1
    try:
        tp.wait_for(PROMPT, 60)
        deadline = time.monotonic() + 20
        while not (link_up(tp, 0) and link_up(tp, 1)):
            if time.monotonic() > deadline:
                raise RuntimeError("virtio_user links did not come up (is the switch "
                                   "listening on %s and %s?)" % (a.sock0, a.sock1))
            time.sleep(0.5)
        # The switch enables its queues asynchronously after the vhost-user
        # handshake; packets sent before that are dropped and a loop direction
        # would die.  Give it a moment, then check both directions below.
        time.sleep(a.settle)
        tries = 0
        tp.cmd("start tx_first %d" % a.burst_count)
        while True:
            tries += 1
            time.sleep(a.warmup)
            t0, s0 = snapshot(tp)
            time.sleep(min(1.0, a.duration))
            t1, s1 = snapshot(tp)
            dead = [p for p in (0, 1) if s1[p] == s0[p]]
            if not dead:
                break
            if tries > a.retries:
                raise RuntimeError("no packets received on port(s) %s: the switch "
                                   "does not forward that direction" % dead)
            sys.stderr.write("note: port(s) %s idle after warm-up, re-injecting "
                             "(try %d)\n" % (dead, tries + 1))
            tp.cmd("stop")
            tp.cmd("start tx_first %d" % a.burst_count)
        # Measurement window, sampled: the sum of the samples is the window.
        t0, s0 = t1, s1
        per = []
        while True:
            left = a.duration - (time.monotonic() - t0)
            if left <= 0.05 and per:
                break
            time.sleep(max(0.0, min(a.sample, left)))
            t2, s2 = snapshot(tp)
            if t2 > t1:
                per.append((s2[0] - s1[0] + s2[1] - s1[1]) / (t2 - t1))
            t1, s1 = t2, s2
        el = t1 - t0
        r0 = (s1[0] - s0[0]) / el
        r1 = (s1[1] - s0[1]) / el
        tp.cmd("stop")
        print("RESULT rx0_pps=%.0f rx1_pps=%.0f elapsed=%.3f tries=%d peak_pps=%.0f "
              "windows=%d per_s=%s"
              % (r0, r1, el, tries, max(per), len(per),
                 ",".join("%.3f" % (x / 1e6) for x in per)), flush=True)
        rc = 0
    except (RuntimeError, OSError) as e:
        sys.stderr.write("ERROR %s\n" % e)
    finally:
        tp.close()
    return rc


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
