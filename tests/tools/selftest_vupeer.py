#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Self-test of vu-peer without vhostd: dpdk-testpmd with two net_vhost
ports forwards port 0 <-> port 1 (io mode, 4 queues, rxq i -> peer txq i)
and vu-peer drives both sides through net_virtio_user.

    python3 tests/tools/selftest_vupeer.py BUILD_DIR/tests/tools/vu-peer [unittest args]

Needs root, hugepages and dpdk-testpmd (VU_PEER_TESTPMD overrides its path).
VU_PEER_CPU / VU_PEER_TESTPMD_CPU choose the CPUs (default 1 and 0).
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from vupeer import PROBE_FLOW, VuPeer, VuPeerError, cleanup_eal_files  # noqa: E402

VU_PEER = os.environ.get("VU_PEER")
TESTPMD = os.environ.get("VU_PEER_TESTPMD") or shutil.which("dpdk-testpmd") or "dpdk-testpmd"
PEER_CPU = int(os.environ.get("VU_PEER_CPU", "1" if (os.cpu_count() or 1) > 1 else "0"))
TESTPMD_CPU = int(os.environ.get("VU_PEER_TESTPMD_CPU", "0"))
ETHERTYPE = 0x88B5
QUEUES = 4
COUNT = 1000
SIZES = (64, 1518)


class Testpmd:
    """dpdk-testpmd forwarding between net_vhost ports (non-interactive)."""

    def __init__(self, tmpdir, vdevs, queues, tag):
        self.prefix = "vupst_tp%d_%s_%s" % (os.getpid(), tag, os.urandom(2).hex())
        self.log_path = os.path.join(tmpdir, "testpmd-%s.log" % tag)
        argv = [TESTPMD, "--lcores", "0@%d,1@%d" % (TESTPMD_CPU, TESTPMD_CPU), "--no-pci",
                "--file-prefix=%s" % self.prefix, "-m", "256", "--single-file-segments"]
        for vdev in vdevs:
            argv += ["--vdev", vdev]
        argv += ["--", "--forward-mode=io", "--rxq=%d" % queues, "--txq=%d" % queues,
                 "--nb-cores=1", "--total-num-mbufs=16384"]
        self.log = open(self.log_path, "wb")
        # Non-interactive: forwards until a line arrives on stdin.
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError("testpmd exited (%s):\n%s" % (self.proc.returncode,
                                                             self.log_text()[-3000:]))

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"\n")
                self.proc.stdin.flush()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.log.close()
        cleanup_eal_files(self.prefix)


def wait_paths(tmpdir, names, timeout=30.0):
    deadline = time.monotonic() + timeout
    for name in names:
        path = os.path.join(tmpdir, name)
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise RuntimeError("%s did not appear" % path)
            time.sleep(0.05)


class PeerTestBase(unittest.TestCase):
    """Shared checks; subclasses set cls.peer, cls.p0, cls.p1, cls.queues."""

    peer = None
    testpmd = None
    tmpdir = None
    p0 = p1 = None
    queues = QUEUES

    @classmethod
    def tearDownClass(cls):
        if cls.peer is not None:
            rc = cls.peer.close()
            if rc != 0:
                sys.stderr.write("vu-peer exit status %s\n%s\n" % (rc, cls.peer.stderr_text()))
            cls.peer = None
        if cls.testpmd is not None:
            cls.testpmd.stop()
            cls.testpmd = None
        if cls.tmpdir is not None:
            shutil.rmtree(cls.tmpdir, ignore_errors=True)
            cls.tmpdir = None

    def setUp(self):
        for p in (self.p0, self.p1):
            self.peer.drain(p, timeout_ms=20)

    def check_flow(self, reply, flow, count, size=None):
        f = reply["flows"].get(str(flow))
        self.assertIsNotNone(f, "flow %d missing: %s" % (flow, sorted(reply["flows"])))
        self.assertEqual(f["count"], count, f)
        self.assertEqual(f["valid"], count, f)
        self.assertEqual(f["invalid"], 0, f)
        self.assertEqual(f["seqs_missing"], 0, f)
        self.assertEqual(f["dups"], 0, f)
        self.assertEqual(f["min_seq"], 0, f)
        self.assertEqual(f["max_seq"], count - 1, f)

    def one_direction(self, tx, rx, base_flow, sizes=SIZES, count=COUNT):
        rx_mac = self.peer.mac(rx)
        tx_mac = self.peer.mac(tx)
        flows = {}
        for q in range(self.queues):
            for i, size in enumerate(sizes):
                flow = base_flow + q * len(sizes) + i
                r = self.peer.send(tx, dst=rx_mac, count=count, size=size, queue=q,
                                   flow=flow)
                self.assertEqual(r["sent"], count, r)
                self.assertFalse(r["timed_out"], r)
                flows[flow] = (q, size)
        total = count * len(flows)
        r = self.peer.recv(rx, expect=total, timeout_ms=10000)
        self.assertEqual(r["received"], total, {k: r[k] for k in r if k != "frames"})
        self.assertEqual(r["valid"], total)
        self.assertEqual(r["invalid"], 0)
        self.assertEqual(r["other"], 0)
        self.assertEqual(r["per_queue"], [count * len(sizes)] * self.queues)
        self.assertEqual(r["bytes"], sum(count * s for _, s in flows.values()))
        self.assertEqual(len(r["flows"]), len(flows))
        for flow in flows:
            self.check_flow(r, flow, count)
        self.assertEqual(len(r["frames"]), 16)
        for fr in r["frames"]:
            self.assertTrue(fr["ok"], fr)
            self.assertEqual(fr["src"], tx_mac)
            self.assertEqual(fr["dst"], rx_mac)
            self.assertIsNone(fr["vlan"])
            self.assertEqual(fr["ethertype"], ETHERTYPE)
            q, size = flows[fr["flow"]]
            self.assertEqual(fr["queue"], q)
            self.assertEqual(fr["len"], size)
            self.assertEqual(fr["hdr_len"], size)
        return r

    def test_forward_p0_to_p1(self):
        self.one_direction(self.p0, self.p1, 100)

    def test_forward_p1_to_p0(self):
        self.one_direction(self.p1, self.p0, 200)

    def test_vlan_tag(self):
        dst = self.peer.mac(self.p1)
        r = self.peer.send(self.p0, dst=dst, count=1, size=128, vlan=100, pcp=5, flow=7,
                           queue=self.queues - 1)
        self.assertEqual(r["sent"], 1)
        r = self.peer.recv(self.p1, expect=1, timeout_ms=3000)
        self.assertEqual(r["received"], 1, r)
        self.assertEqual(r["valid"], 1, r)
        fr = r["frames"][0]
        self.assertEqual(fr["vlan"], 100, fr)
        self.assertEqual(fr["pcp"], 5, fr)
        self.assertFalse(fr["vlan_stripped"], fr)
        self.assertEqual(fr["ethertype"], ETHERTYPE)
        self.assertEqual(fr["len"], 128)
        self.assertEqual(fr["flow"], 7)
        self.assertEqual(fr["seq"], 0)
        self.assertTrue(fr["ok"])
        self.check_flow(r, 7, 1)

    def test_vlan_many(self):
        dst = self.peer.mac(self.p0)
        self.peer.send(self.p1, dst=dst, count=500, size=1518, vlan=4094, flow=8)
        r = self.peer.recv(self.p0, expect=500, timeout_ms=5000)
        self.assertEqual(r["valid"], 500)
        self.check_flow(r, 8, 500)
        self.assertTrue(all(fr["vlan"] == 4094 and fr["len"] == 1518 for fr in r["frames"]))

    def test_jumbo_multiseg(self):
        dst = self.peer.mac(self.p1)
        for size in (2049, 4000, 9000):
            self.peer.send(self.p0, dst=dst, count=100, size=size, flow=size,
                           queue=1 % self.queues)
        r = self.peer.recv(self.p1, expect=300, timeout_ms=5000)
        self.assertEqual(r["received"], 300, r)
        self.assertEqual(r["valid"], 300)
        for size in (2049, 4000, 9000):
            self.check_flow(r, size, 100)

    def test_seq_start_and_quiet_recv(self):
        dst = self.peer.mac(self.p1)
        self.peer.send(self.p0, dst=dst, count=10, size=100, flow=9)
        self.peer.send(self.p0, dst=dst, count=10, size=100, flow=9, seq_start=10)
        r = self.peer.recv(self.p1, timeout_ms=300)  # no expect: until quiet
        self.assertEqual(r["received"], 20)
        self.check_flow(r, 9, 20)
        # a resend of seqs 5..9 shows up as duplicates, a gap as missing
        self.peer.send(self.p0, dst=dst, count=5, size=100, flow=9)
        self.peer.send(self.p0, dst=dst, count=5, size=100, flow=9, seq_start=3)
        self.peer.send(self.p0, dst=dst, count=1, size=100, flow=9, seq_start=20)
        r = self.peer.recv(self.p1, expect=11, timeout_ms=3000)
        f = r["flows"]["9"]
        self.assertEqual((f["count"], f["dups"], f["seqs_missing"], f["max_seq"]),
                         (11, 2, 12, 20), f)

    def test_checker_flags_corruption_and_other_ethertypes(self):
        dst = self.peer.mac(self.p1)
        self.peer.send(self.p0, dst=dst, count=20, size=300, flow=12, corrupt=True)
        self.peer.send(self.p0, dst=dst, count=5, size=300, flow=13, ethertype=0x0800)
        self.peer.send(self.p0, dst=dst, count=3, size=300, flow=12, seq_start=20)
        r = self.peer.recv(self.p1, expect=28, timeout_ms=3000, frames=28)
        self.assertEqual((r["received"], r["valid"], r["invalid"], r["other"]), (28, 3, 20, 5))
        f = r["flows"]["12"]
        self.assertEqual((f["count"], f["valid"], f["invalid"]), (23, 3, 20), f)
        # seq accounting only covers intact frames
        self.assertEqual((f["min_seq"], f["max_seq"], f["seqs_missing"]), (20, 22, 20), f)
        self.assertNotIn("13", r["flows"])
        others = [fr for fr in r["frames"] if fr["ethertype"] == 0x0800]
        self.assertEqual(len(others), 5)
        self.assertTrue(all(fr["flow"] is None and not fr["ok"] for fr in others))
        bad = [fr for fr in r["frames"] if fr["flow"] == 12 and not fr["ok"]]
        self.assertEqual(sorted(fr["seq"] for fr in bad), list(range(20)))

    def test_stats_per_queue(self):
        self.peer.stats(self.p0, reset=True)
        self.peer.stats(self.p1, reset=True)
        dst = self.peer.mac(self.p1)
        for q in range(self.queues):
            self.peer.send(self.p0, dst=dst, count=10 * (q + 1), size=200, queue=q, flow=q)
        expect = sum(10 * (q + 1) for q in range(self.queues))
        r = self.peer.recv(self.p1, expect=expect, timeout_ms=3000)
        self.assertEqual(r["per_queue"], [10 * (q + 1) for q in range(self.queues)])
        s0 = self.peer.stats(self.p0)
        s1 = self.peer.stats(self.p1)
        self.assertEqual(s0["opackets"], expect, s0)
        self.assertEqual(s0["obytes"], expect * 200, s0)
        self.assertEqual(s0["q_opackets"], [10 * (q + 1) for q in range(self.queues)])
        self.assertEqual(s1["ipackets"], expect, s1)
        self.assertEqual(s1["q_ipackets"], [10 * (q + 1) for q in range(self.queues)])

    def test_drain(self):
        dst = self.peer.mac(self.p1)
        self.peer.send(self.p0, dst=dst, count=50, size=64, flow=11)
        time.sleep(0.2)
        r = self.peer.drain(self.p1)
        self.assertEqual(r["drained"], 50)
        r = self.peer.recv(self.p1, timeout_ms=100)
        self.assertEqual(r["received"], 0)
        self.assertEqual(r["frames"], [])

    def test_link(self):
        r = self.peer.link(self.p0)
        self.assertTrue(r["up"], r)
        self.assertEqual(r["mac"], self.peer.mac(self.p0))

    def test_errors_keep_running(self):
        bad = [
            "bogus",
            "send port=nope dst=02:00:00:00:00:01",
            "send port=%s" % self.p0,  # no dst
            "send port=%s dst=02:00:00:00:00:01 size=59" % self.p0,
            "send port=%s dst=02:00:00:00:00:01 size=9001" % self.p0,
            "send port=%s dst=02:00:00:00:00:01 queue=%d" % (self.p0, self.queues),
            "send port=%s dst=zz:00:00:00:00:01" % self.p0,
            "send port=%s dst=02:00:00:00:00:01 vlan=4096" % self.p0,
            "recv port=%s what=1" % self.p0,
            "recv port=%s timeout_ms=-1" % self.p0,
            "stats",
            "link port",
        ]
        for line in bad:
            r = self.peer.request(line, check=False)
            self.assertFalse(r["ok"], (line, r))
            self.assertTrue(r["error"], r)
        with self.assertRaises(VuPeerError):
            self.peer.send("nope", dst="02:00:00:00:00:01")
        self.assertTrue(self.peer.ping()["ok"])


class ClientModeTest(PeerTestBase):
    """vu-peer connects (client) to testpmd's net_vhost server sockets."""

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.mkdtemp(prefix="vupeer-selftest-")
        cls.testpmd = None
        cls.peer = None
        try:
            a = os.path.join(cls.tmpdir, "A.sock")
            b = os.path.join(cls.tmpdir, "B.sock")
            cls.testpmd = Testpmd(cls.tmpdir, [
                "net_vhost0,iface=%s,queues=%d" % (a, QUEUES),
                "net_vhost1,iface=%s,queues=%d" % (b, QUEUES)], QUEUES, "cl")
            wait_paths(cls.tmpdir, ["A.sock", "B.sock"])
            cls.testpmd.check_alive()
            cls.peer = VuPeer(VU_PEER, ports={"a": (a, {"queues": QUEUES}),
                                              "b": (b, {"queues": QUEUES})},
                              cpu=PEER_CPU)
            cls.p0, cls.p1 = "a", "b"
            cls.queues = QUEUES
            cls.peer.wait_link("a")
            cls.peer.wait_link("b")
            # testpmd enables the extra vrings asynchronously: wait until
            # every queue forwards in both directions.
            for q in range(QUEUES):
                cls.peer.wait_forwarding("a", "b", queue=q, timeout=30)
                cls.peer.wait_forwarding("b", "a", queue=q, timeout=30)
        except BaseException:
            cls.tearDownClass()
            raise

    def test_probe_flow_absent(self):
        # wait_forwarding drained its probes
        r = self.peer.recv("b", timeout_ms=100)
        self.assertNotIn(str(PROBE_FLOW), r["flows"])


class ServerModeTest(PeerTestBase):
    """vu-peer listens (server=1); testpmd's net_vhost connects as client."""

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.mkdtemp(prefix="vupeer-selftest-")
        cls.testpmd = None
        cls.peer = None
        q = 2
        try:
            c = os.path.join(cls.tmpdir, "C.sock")
            d = os.path.join(cls.tmpdir, "D.sock")
            cls.peer = VuPeer(VU_PEER, ports={
                "c": (c, {"queues": q, "server": True, "mac": "02:00:00:00:0c:01"}),
                "d": (d, {"queues": q, "server": True, "mac": "02:00:00:00:0d:01",
                          "queue_size": 1024})}, cpu=PEER_CPU)
            assert cls.peer.alive()
            wait_paths(cls.tmpdir, ["C.sock"])
            cls.testpmd = Testpmd(cls.tmpdir, [
                "net_vhost0,iface=%s,queues=%d,client=1" % (c, q),
                "net_vhost1,iface=%s,queues=%d,client=1" % (d, q)], q, "sv")
            cls.testpmd.check_alive()
            cls.peer.wait_ready(timeout=60)
            cls.p0, cls.p1 = "c", "d"
            cls.queues = q
            cls.peer.wait_link("c")
            cls.peer.wait_link("d")
            for i in range(q):
                cls.peer.wait_forwarding("c", "d", queue=i, timeout=30)
                cls.peer.wait_forwarding("d", "c", queue=i, timeout=30)
        except BaseException:
            cls.tearDownClass()
            raise

    def test_macs_from_devargs(self):
        info = self.peer.ping()
        self.assertEqual(info["ports"]["c"]["mac"], "02:00:00:00:0c:01")
        self.assertEqual(info["ports"]["d"]["mac"], "02:00:00:00:0d:01")
        self.assertTrue(info["ports"]["c"]["server"])


def load_tests(loader, tests, pattern):
    suite = unittest.TestSuite()
    for cls in (ClientModeTest, ServerModeTest):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    VU_PEER = os.path.abspath(sys.argv.pop(1))
    if not os.access(VU_PEER, os.X_OK):
        sys.stderr.write("not executable: %s\n" % VU_PEER)
        sys.exit(2)
    unittest.main(verbosity=2)
