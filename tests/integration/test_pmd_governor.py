#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The PMD governor (issue 4; dataplane/pmd.c): poll / halt-poll / interrupt.

Functional only: no test asserts a timing (the latency and CPU numbers are
measured by hand, bench/README.md "Governor"). What is checked:

- notifications are never lost: a slow trickle (1 frame every 50 ms for 20 s,
  400 frames) arrives complete, intact and in order in every mode, and in
  halt-poll and interrupt modes the PMD really halted and was woken by
  events (pmd.show halts > 0, wakeups > 0), i.e. the frames were announced
  by guest kicks, not found by polling;
- the same for vhost-user-scsi in interrupt mode (a 4 KiB read every 50 ms,
  completions through io_uring's eventfd);
- a live mode switch loses no frame, also frames queued in the guest ring
  while the thread is halted;
- an idle PMD with connected, silent clients halts.

Duration: the trickle runs halt-poll and interrupt at the same time (two PMD
threads, one per CPU of a 2-CPU machine, each mode on one thread, each
thread serving one sender port), then poll alone: 2 x 20 s instead of 3 x 20 s.
All three at once would need three PMD threads, and PMD threads are one per
CPU. The whole file takes about a minute.

    VHOSTD_BUILD=build python3 tests/integration/test_pmd_governor.py -v
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import PEER_CPU, PMD_CPU, DaemonTestCase, vhost_port

BENCH = os.path.join(harness.BUILD, "bench", "vhostd-scsi-bench")

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"

TRICKLE_COUNT = 400     # 20 s ...
TRICKLE_GAP_US = 50000  # ... at one frame every 50 ms
MODES = ("poll", "halt-poll", "interrupt")


def assert_trickle(tc, reply, count, flow, what):
    """All `count` frames of `flow` arrived, intact, each once, in order."""
    tc.assertEqual(reply["received"], count, "%s: %s" % (what, reply))
    tc.assertEqual(reply["valid"], count, "%s: %s" % (what, reply))
    tc.assertEqual(reply["invalid"], 0, what)
    f = reply["flows"][str(flow)]
    tc.assertEqual(f["count"], count, what)
    tc.assertEqual(f["seqs_missing"], 0, "%s: %s" % (what, f))
    tc.assertEqual(f["dups"], 0, "%s: %s" % (what, f))
    tc.assertEqual(f["reordered"], 0, "%s: %s" % (what, f))
    tc.assertEqual((f["min_seq"], f["max_seq"]), (0, count - 1), what)


def no_drops(tc, d, *ports):
    for p in ports:
        st = d.port_stats(p)
        tc.assertEqual(sum(st["rx"]["drops"].values()), 0, "port %s: %s" % (p, st))
        tc.assertEqual(sum(st["tx"]["drops"].values()), 0, "port %s: %s" % (p, st))


class GovernorCase(DaemonTestCase):

    def pmds(self, d):
        return {p["cpu"]: p for p in d.rpc("pmd.show")}

    def thread_of(self, d, port):
        """CPU of the PMD thread that polls `port`'s rx queue 0."""
        for p in d.rpc("pmd.show"):
            for q in p["queues"]:
                if q.get("type") == "net" and q.get("port") == port and q.get("queue") == 0:
                    return p["cpu"]
        self.fail("no PMD polls port %s: %s" % (port, d.rpc("pmd.show")))

    def wait_state(self, d, cpu, state, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            p = self.pmds(d)[cpu]
            if p["state"] == state:
                return p
            if time.monotonic() > deadline:
                self.fail("PMD on CPU %d not %s: %s" % (cpu, state, p))
            time.sleep(0.02)

    def two_peers(self, d):
        """Ports a and b on br0, each driven by its own vu-peer process so
        that both can trickle at the same time (a send command blocks)."""
        pa = self.peer({"a": (d.sock("a"), {"mac": MAC_A})})
        pb = self.peer({"b": (d.sock("b"), {"mac": MAC_B})})
        d.wait_connected("a")
        d.wait_connected("b")
        pa.wait_forwarding("a", "b", dst=MAC_B, rx_peer=pb)
        pb.wait_forwarding("b", "a", dst=MAC_A, rx_peer=pa)
        return pa, pb


class TrickleTest(GovernorCase):
    """A frame every 50 ms: in halt-poll and interrupt modes the PMD halts
    between any two frames, so each one must be announced by a kick."""

    def trickle(self, d, pa, pb):
        """a -> b and b -> a at the same time, 400 frames each, 50 ms apart."""
        d.rpc("stats.clear")
        replies = {}

        def send(peer, port, dst, flow):
            replies[port] = peer.send(port, dst=dst, count=TRICKLE_COUNT, size=128,
                                      flow=flow, burst=1, window=0, gap_us=TRICKLE_GAP_US,
                                      timeout=TRICKLE_COUNT * TRICKLE_GAP_US / 1e6 + 60)

        ts = [threading.Thread(target=send, args=(pa, "a", MAC_B, 1)),
              threading.Thread(target=send, args=(pb, "b", MAC_A, 2))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for port in "ab":
            self.assertIn(port, replies, "the send on %s failed" % port)
            self.assertEqual(replies[port]["sent"], TRICKLE_COUNT, replies[port])
        return (pb.recv("b", expect=TRICKLE_COUNT, timeout_ms=5000, frames=0),
                pa.recv("a", expect=TRICKLE_COUNT, timeout_ms=5000, frames=0))

    def test_trickle_halt_poll_and_interrupt(self):
        # Two PMD threads, one per mode; the two ports' rx queues go to
        # different threads (each new queue to the least loaded thread).
        ncpu = os.cpu_count() or 1
        if ncpu < 2:
            raise unittest.SkipTest("needs 2 CPUs (one PMD thread per mode)")
        d = self.daemon(ports=[vhost_port("a"), vhost_port("b")], pmd_cpus="0-1",
                        pmd_mode="halt-poll",
                        pmd_extra={"threads": [{"cpu": 0, "mode": "halt-poll"},
                                               {"cpu": 1, "mode": "interrupt"}]})
        pa, pb = self.two_peers(d)
        cpu_a, cpu_b = self.thread_of(d, "a"), self.thread_of(d, "b")
        self.assertNotEqual(cpu_a, cpu_b, "both ports on one PMD thread: %s"
                            % d.rpc("pmd.show"))
        modes = {c: p["mode"] for c, p in self.pmds(d).items()}
        self.assertEqual(modes, {0: "halt-poll", 1: "interrupt"})
        before = self.pmds(d)
        at_b, at_a = self.trickle(d, pa, pb)
        after = self.pmds(d)
        # a's frames were forwarded by a's thread, b's by b's.
        assert_trickle(self, at_b, TRICKLE_COUNT, 1, "a -> b (%s)" % modes[cpu_a])
        assert_trickle(self, at_a, TRICKLE_COUNT, 2, "b -> a (%s)" % modes[cpu_b])
        no_drops(self, d, "a", "b")
        for cpu in (0, 1):
            p, p0 = after[cpu], before[cpu]
            halts = p["halts"] - p0["halts"]
            wakeups = p["wakeups"] - p0["wakeups"]
            # 400 gaps of 50 ms, each longer than the poll window: the thread
            # halted in (nearly) every one, and kicks ended the halts (the
            # back-stop timer alone would give ~20 halts of 1 s, no wakeups).
            self.assertGreater(halts, 0, "%s: %s" % (modes[cpu], p))
            self.assertGreater(wakeups, 0, "%s: %s" % (modes[cpu], p))
            self.assertGreaterEqual(p["packets"] - p0["packets"], TRICKLE_COUNT, p)
            note = "%s: halts %d wakeups %d poll-hits %d poll-misses %d halt-races %d" % (
                modes[cpu], halts, wakeups, p["poll-hits"] - p0["poll-hits"],
                p["poll-misses"] - p0["poll-misses"], p["halt-races"] - p0["halt-races"])
            print(note)

    def test_trickle_poll(self):
        d = self.daemon(ports=[vhost_port("a"), vhost_port("b")], pmd_mode="poll",
                        max_sleep_us=0)
        pa, pb = self.two_peers(d)
        before = self.pmds(d)[PMD_CPU]
        self.assertEqual(before["mode"], "poll")
        at_b, at_a = self.trickle(d, pa, pb)
        assert_trickle(self, at_b, TRICKLE_COUNT, 1, "a -> b (poll)")
        assert_trickle(self, at_a, TRICKLE_COUNT, 2, "b -> a (poll)")
        no_drops(self, d, "a", "b")
        after = self.pmds(d)[PMD_CPU]
        # Busy polling never halts.
        self.assertEqual(after["halts"], before["halts"], after)
        self.assertEqual(after["state"], "polling", after)


class ScsiTrickleTest(GovernorCase):

    def setUp(self):
        super().setUp()
        if not os.access(BENCH, os.X_OK):
            raise unittest.SkipTest("%s is not built" % BENCH)
        # not on /tmp, which may be a tmpfs (no O_DIRECT for cache=none)
        self.tmp = tempfile.mkdtemp(prefix="vhostd-gov-it-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def bench(self, d, *args, timeout=60):
        argv = [BENCH, "--socket", d.sock("scsi0"), "--cpu", str(PEER_CPU)] + \
            [str(a) for a in args]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        self.assertEqual(p.returncode, 0, "%s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(argv), p.returncode, p.stdout, p.stderr))
        return p.stdout

    def test_scsi_trickle_interrupt(self):
        """One 4 KiB read every 50 ms for 5 s in interrupt mode: each request
        is announced by a kick, each completion by io_uring's eventfd."""
        path = os.path.join(self.tmp, "disk0.img")
        with open(path, "wb") as f:
            f.truncate(4 << 20)
        d = self.daemon(ports=[], pmd_mode="interrupt",
                        scsi=[{"name": "scsi0", "socket": "scsi0.sock", "queues": 1}],
                        luns=[{"name": "disk0", "controller": "scsi0", "target": 0,
                               "lun": 0, "backend": "file", "path": path}])
        # 100 x 4 KiB of pattern, written at full speed ...
        blocks = 100 * 4096 // 512
        out = self.bench(d, "--write-pattern", 7, "--lba", 0, "--blocks", blocks,
                         "--bs", 4096, "--qd", 8)
        self.assertIn("wrote %d blocks" % blocks, out)
        before = self.pmds(d)[PMD_CPU]
        self.assertEqual(before["mode"], "interrupt")
        st0 = d.rpc("lun.show", {"name": "disk0"})["stats"]
        # ... then read back and checked one 4 KiB read every 50 ms (~5 s).
        out = self.bench(d, "--read-pattern-check", 7, "--lba", 0, "--blocks", blocks,
                         "--bs", 4096, "--qd", 1, "--gap-ms", 50)
        self.assertIn("pattern ok %d blocks" % blocks, out)
        after = self.pmds(d)[PMD_CPU]
        st1 = d.rpc("lun.show", {"name": "disk0"})["stats"]
        self.assertGreaterEqual(st1["rd_req"] - st0["rd_req"], 100, st1)
        self.assertEqual(st1["errors"], st0["errors"], st1)
        # The thread slept between the reads and was woken by events.
        self.assertGreater(after["halts"] - before["halts"], 0, after)
        self.assertGreater(after["wakeups"] - before["wakeups"], 0, after)
        print("scsi interrupt: halts %d wakeups %d" % (after["halts"] - before["halts"],
                                                       after["wakeups"] - before["wakeups"]))


class LiveSwitchTest(GovernorCase):

    def one_peer(self, d):
        peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A}),
                          "b": (d.sock("b"), {"mac": MAC_B, "queue_size": 1024})})
        d.wait_connected("a")
        d.wait_connected("b")
        peer.wait_forwarding("b", "a", dst=MAC_A)
        peer.wait_forwarding("a", "b", dst=MAC_B)
        return peer

    def test_switch_under_steady_stream(self):
        """20000 frames at ~5000/s while the mode cycles poll -> halt-poll
        -> interrupt -> poll ... every ~70 ms (all threads, or this thread
        by cpu): every frame arrives."""
        d = self.daemon(ports=[vhost_port("a"), vhost_port("b")], pmd_mode="poll",
                        max_sleep_us=0)
        peer = self.one_peer(d)
        d.rpc("stats.clear")
        cycle = ("poll", "halt-poll", "interrupt", "poll", "halt-poll")
        stop = threading.Event()
        switches = []
        errors = []

        def switcher():
            i = 0
            try:
                while not stop.is_set():
                    mode = cycle[i % len(cycle)]
                    if i % 2:
                        d.rpc("pmd.set", {"cpu": PMD_CPU, "mode": mode})
                    else:
                        d.rpc("pmd.set", {"mode": mode})
                    switches.append(mode)
                    i += 1
                    time.sleep(0.07)
            except Exception as e:  # reported by the main thread
                errors.append(e)

        t = threading.Thread(target=switcher)
        t.start()
        try:
            n = 20000
            r = peer.send("a", dst=MAC_B, count=n, size=256, flow=5, burst=1, gap_us=200,
                          timeout_ms=5000, timeout=120)
        finally:
            stop.set()
            t.join()
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(switches), 10, switches)
        self.assertEqual(r["sent"], n, r)
        self.assertFalse(r["timed_out"], r)
        got = peer.recv("b", expect=n, timeout_ms=5000, frames=0)
        assert_trickle(self, got, n, 5, "stream during %d switches" % len(switches))
        no_drops(self, d, "a", "b")
        print("%d mode switches during the stream" % len(switches))

    def test_frames_queued_while_halted(self):
        """Bursts posted while the thread is halted in interrupt mode, with a
        switch to poll / halt-poll right behind them: nothing is lost."""
        d = self.daemon(ports=[vhost_port("a"), vhost_port("b")], pmd_mode="interrupt")
        peer = self.one_peer(d)
        d.rpc("stats.clear")
        total = 0
        for i, nxt in enumerate(("poll", "halt-poll", "interrupt", "poll", "halt-poll",
                                 "interrupt") * 3):
            self.wait_state(d, PMD_CPU, "halted")
            # 256 frames in bursts of 64, no window: the guest ring fills while
            # the thread is still waking up; the mode changes right after.
            r = peer.send("a", dst=MAC_B, count=256, size=64, flow=6, burst=64, window=0,
                          seq_start=total, timeout_ms=5000)
            self.assertEqual(r["sent"], 256, r)
            total += 256
            d.rpc("pmd.set", {"mode": nxt})
            if nxt == "poll":
                # back to interrupt so that the next round starts halted
                time.sleep(0.05)
                d.rpc("pmd.set", {"cpu": PMD_CPU, "mode": "interrupt"})
        got = peer.recv("b", expect=total, timeout_ms=5000, frames=0)
        assert_trickle(self, got, total, 6, "bursts posted while halted")
        no_drops(self, d, "a", "b")


class IdleTest(GovernorCase):

    def test_idle_halt_poll_halts(self):
        """Connected, silent ports for 2 s in halt-poll: the thread is halted
        and its own accounting says it spent most of the time asleep."""
        d = self.daemon(ports=[vhost_port("a"), vhost_port("b")], pmd_mode="halt-poll")
        peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A}),
                          "b": (d.sock("b"), {"mac": MAC_B})})
        d.wait_connected("a")
        d.wait_connected("b")
        peer.wait_forwarding("a", "b", dst=MAC_B)
        time.sleep(2)
        p = self.wait_state(d, PMD_CPU, "halted")
        self.assertEqual(p["mode"], "halt-poll")
        self.assertGreater(p["halts"], 0, p)
        # busy/idle/sleep-pct are shares of the thread's own accounted time
        # (busy + idle + sleep, from the TSC), not a wall-clock measurement:
        # a thread that halts when idle spends most of it asleep, a polling
        # one ~0 %. The 2 s of silence dominate the few ms of start-up and
        # probes, so > 50 % holds whatever the machine's speed or load.
        self.assertGreater(p["sleep-pct"], 50, p)
        self.assertLess(p["busy-pct"] + p["idle-pct"], p["sleep-pct"], p)
        # and a frame still gets through at once (woken by the kick)
        peer.send("a", dst=MAC_B, count=1, size=64, flow=9)
        r = peer.recv("b", expect=1, timeout_ms=2000, frames=0)
        self.assertEqual(r["valid"], 1, r)


if __name__ == "__main__":
    unittest.main()
