#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhost-user net through vhostd with a real virtio driver (DPDK virtio-user
in tests/tools/vu-peer): content, MAC learning, VLANs, multiqueue,
reconnects, cross-connect. Every check is on bytes or counters."""

import os
import time
import unittest

from harness import DaemonTestCase, vhost_port

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
MAC_C = "02:00:00:00:00:0c"
MAC_D = "02:00:00:00:00:0d"


def assert_all_valid(tc, reply, count, flow):
    tc.assertEqual(reply["received"], count, reply)
    tc.assertEqual(reply["valid"], count, reply)
    tc.assertEqual(reply["invalid"], 0, reply)
    f = reply["flows"][str(flow)]
    tc.assertEqual(f["count"], count)
    tc.assertEqual(f["seqs_missing"], 0)
    tc.assertEqual(f["dups"], 0)


class BridgeTest(DaemonTestCase):

    def three_ports(self, **portkw):
        d = self.daemon(ports=[vhost_port("a", **portkw), vhost_port("b", **portkw),
                               vhost_port("c", **portkw)])
        peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A}),
                          "b": (d.sock("b"), {"mac": MAC_B}),
                          "c": (d.sock("c"), {"mac": MAC_C})})
        for p in "abc":
            d.wait_connected(p)
        return d, peer

    def test_bytes_roundtrip_and_learning(self):
        d, peer = self.three_ports()
        # Unknown destination: flooded to b and c.
        peer.wait_forwarding("a", "b", dst=MAC_B)
        peer.drain("c")
        peer.send("a", dst=MAC_B, count=10, size=64, flow=1)
        self.assertEqual(peer.recv("b", expect=10)["valid"], 10)
        self.assertEqual(peer.recv("c", expect=10)["valid"], 10)
        # b talks: its MAC is learned; traffic to it stops flooding to c.
        peer.send("b", dst=MAC_A, count=1, size=64, flow=2)
        self.assertEqual(peer.recv("a", expect=1)["valid"], 1)
        peer.drain("c")
        table = d.rpc("bridge.show", {"name": "br0"})["mac-table"]
        learned = {(e["mac"], e["port"]) for e in table}
        self.assertIn((MAC_B, "b"), learned)
        self.assertIn((MAC_A, "a"), learned)
        d.rpc("stats.clear")
        for size, flow in ((64, 3), (1518, 4)):
            n = 1000
            peer.send("a", dst=MAC_B, count=n, size=size, flow=flow)
            r = peer.recv("b", expect=n, timeout_ms=5000)
            self.assertEqual(r["received"], n, "size %d: %s %s" % (size, r, d.port_stats("b")))
            assert_all_valid(self, r, n, flow)
        self.assertEqual(peer.recv("c", timeout_ms=300)["received"], 0)
        # The daemon's counters agree with what was sent and received.
        sa, sb, sc = (d.port_stats(p) for p in "abc")
        self.assertEqual(sa["rx"]["packets"], 2000)
        self.assertEqual(sa["rx"]["bytes"], 1000 * 64 + 1000 * 1518)
        self.assertEqual(sb["tx"]["packets"], 2000)
        self.assertEqual(sb["tx"]["bytes"], 1000 * 64 + 1000 * 1518)
        # Known unicast frames over 256 bytes between single-copy ports (the
        # default) take no mbuf, except those that found b's ring full at
        # first (the mbuf path retries them); 64-byte ones take the mbuf path.
        self.assertGreater(sb["tx"]["single-copy"], 500, sb)
        self.assertLessEqual(sb["tx"]["single-copy"], 1000, sb)
        self.assertEqual(sc["tx"]["packets"], 0)
        self.assertEqual(sum(sb["tx"]["drops"].values()), 0)

    def test_mtu(self):
        d = self.daemon(ports=[vhost_port("a", mtu=9000), vhost_port("b", mtu=9000),
                               vhost_port("c"), vhost_port("d", mtu=9000)])
        # A 9000-byte frame takes 5 receive buffers: big rings, so that a
        # receiver descheduled for a moment loses nothing.
        peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A}),
                          "b": (d.sock("b"), {"mac": MAC_B, "queue_size": 1024}),
                          "c": (d.sock("c"), {"mac": MAC_C}),
                          "d": (d.sock("d"), {"mac": MAC_D, "queue_size": 1024})})
        for p in "abcd":
            d.wait_connected(p)
        peer.wait_forwarding("b", "a", dst=MAC_A)
        peer.wait_forwarding("a", "b", dst=MAC_B)
        for p in "cd":
            peer.drain(p)  # the probes were flooded there too
        # Jumbo frames (multi-segment mbufs) cross ports with MTU 9000.
        peer.send("a", dst=MAC_B, count=200, size=9000, flow=1, window=16)
        assert_all_valid(self, peer.recv("b", expect=200, timeout_ms=5000), 200, 1)
        # A jumbo flood shares each multi-segment frame between b and d
        # (c, MTU 1500, drops its copy): every copy arrives intact.
        before = d.port_stats("c")["tx"]["drops"]["mtu"]
        peer.send("a", dst="ff:ff:ff:ff:ff:ff", count=100, size=9000, flow=5, window=16)
        assert_all_valid(self, peer.recv("b", expect=100, timeout_ms=5000), 100, 5)
        assert_all_valid(self, peer.recv("d", expect=100, timeout_ms=5000), 100, 5)
        self.assertEqual(d.port_stats("c")["tx"]["drops"]["mtu"] - before, 100)
        # Port c keeps MTU 1500: 1518-byte frames pass, 1600-byte ones are
        # dropped on the way out and counted.
        peer.drain("c")
        peer.send("a", dst=MAC_C, count=10, size=1518, flow=2)
        assert_all_valid(self, peer.recv("c", expect=10), 10, 2)
        before = d.port_stats("c")["tx"]["drops"]["mtu"]
        peer.send("a", dst=MAC_C, count=10, size=1600, flow=3)
        self.assertEqual(peer.recv("c", timeout_ms=300)["received"], 0)
        self.assertEqual(d.port_stats("c")["tx"]["drops"]["mtu"] - before, 10)
        # And ingress on c: too big for its MTU, dropped before switching.
        peer.send("c", dst=MAC_A, count=5, size=1600, flow=4)
        self.assertEqual(peer.recv("a", timeout_ms=300)["received"], 0)
        self.assertEqual(d.port_stats("c")["rx"]["drops"]["mtu"], 5)

    def test_broadcast_floods_everywhere_but_ingress(self):
        d, peer = self.three_ports()
        peer.wait_forwarding("a", "b", dst="ff:ff:ff:ff:ff:ff")
        for p in "abc":
            peer.drain(p)
        peer.send("a", dst="ff:ff:ff:ff:ff:ff", count=100, size=128, flow=7)
        assert_all_valid(self, peer.recv("b", expect=100), 100, 7)
        assert_all_valid(self, peer.recv("c", expect=100), 100, 7)
        self.assertEqual(peer.recv("a", timeout_ms=200)["received"], 0)

    def test_vlan_access_isolation_and_trunk(self):
        d = self.daemon(ports=[vhost_port("a", tag=10), vhost_port("b", tag=10),
                               vhost_port("c", tag=20), vhost_port("d", trunks=[10])])
        peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A}),
                          "b": (d.sock("b"), {"mac": MAC_B}),
                          "c": (d.sock("c"), {"mac": MAC_C}),
                          "d": (d.sock("d"), {"mac": MAC_D})})
        for p in "abcd":
            d.wait_connected(p)
        peer.wait_forwarding("a", "b", dst="ff:ff:ff:ff:ff:ff")
        for p in "abcd":
            peer.drain(p)
        peer.send("a", dst="ff:ff:ff:ff:ff:ff", count=50, size=100, flow=1)
        assert_all_valid(self, peer.recv("b", expect=50), 50, 1)
        rd = peer.recv("d", expect=50)
        # The trunk gets the frames tagged with VLAN 10 (4 bytes longer).
        self.assertEqual(rd["received"], 50, rd)
        self.assertTrue(all(fr["vlan"] == 10 and fr["len"] == 104 for fr in rd["frames"]), rd)
        self.assertEqual(peer.recv("c", timeout_ms=300)["received"], 0)
        # A tagged frame on an access port is dropped and counted.
        before = d.port_stats("a")["rx"]["drops"]["vlan"]
        peer.send("a", dst=MAC_B, vlan=10, count=5, size=100, flow=2)
        self.assertEqual(peer.recv("b", timeout_ms=300)["received"], 0)
        self.assertEqual(d.port_stats("a")["rx"]["drops"]["vlan"] - before, 5)
        # Tagged 10 from the trunk reaches access port b untagged; VLAN 20 is
        # not on the trunk and is dropped.
        peer.send("d", dst=MAC_B, vlan=10, count=20, size=100, flow=3)
        rb = peer.recv("b", expect=20)
        self.assertEqual(rb["received"], 20)
        self.assertTrue(all(fr["vlan"] is None and fr["len"] == 96 for fr in rb["frames"]), rb)
        peer.send("d", dst="ff:ff:ff:ff:ff:ff", vlan=20, count=5, size=100, flow=4)
        self.assertEqual(peer.recv("c", timeout_ms=300)["received"], 0)

    def test_multiqueue_every_queue_carries_traffic(self):
        d = self.daemon(ports=[vhost_port("a", queues=4), vhost_port("b", queues=4)])
        peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A, "queues": 4}),
                          "b": (d.sock("b"), {"mac": MAC_B, "queues": 4})})
        d.wait_connected("a", queues=4)
        d.wait_connected("b", queues=4)
        peer.wait_forwarding("b", "a", dst=MAC_A)
        peer.wait_forwarding("a", "b", dst=MAC_B)
        d.rpc("stats.clear")
        for q in range(4):
            peer.send("a", dst=MAC_B, queue=q, count=500, size=300, flow=10 + q)
        r = peer.recv("b", expect=2000, timeout_ms=5000)
        self.assertEqual(r["valid"], 2000, r)
        for q in range(4):
            self.assertEqual(r["flows"][str(10 + q)]["seqs_missing"], 0)
        qs = d.port_stats("a")["queues"]
        self.assertEqual([q["rx-packets"] for q in qs], [500, 500, 500, 500], qs)
        # Frames leave on the queue number they arrived on: b's guest side
        # gets 500 on each of its 4 rx queues too.
        qb = d.port_stats("b")["queues"]
        self.assertEqual([q["tx-packets"] for q in qb], [500, 500, 500, 500], qb)
        self.assertEqual(r["per_queue"], [500, 500, 500, 500], r)
        # And the other way round.
        for q in range(4):
            peer.send("b", dst=MAC_A, queue=q, count=300, size=128, flow=20 + q)
        ra = peer.recv("a", expect=1200, timeout_ms=5000)
        self.assertEqual(ra["valid"], 1200, ra)
        self.assertEqual(ra["per_queue"], [300, 300, 300, 300], ra)
        pmd = d.rpc("pmd.show")
        polled = {(x["port"], x["queue"]) for p in pmd for x in p["queues"] if x["type"] == "net"}
        self.assertTrue({("a", q) for q in range(4)} <= polled, pmd)

    def test_frontend_reconnect(self):
        d = self.daemon(ports=[vhost_port("a"), vhost_port("b")])
        for round_ in range(3):
            peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A}),
                              "b": (d.sock("b"), {"mac": MAC_B})})
            d.wait_connected("a")
            d.wait_connected("b")
            peer.wait_forwarding("a", "b", dst=MAC_B)
            peer.send("a", dst=MAC_B, count=200, size=200, flow=round_)
            assert_all_valid(self, peer.recv("b", expect=200), 200, round_)
            peer.close()
            deadline = time.monotonic() + 10
            while d.rpc("port.show", {"name": "a"})["status"]["connected"]:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
        st = d.rpc("port.show", {"name": "a"})["status"]
        self.assertEqual(st["connects"], 3)
        self.assertEqual(st["disconnects"], 3)

    def test_client_mode_reconnects_to_restarted_server(self):
        import tempfile
        sockdir = tempfile.mkdtemp(prefix="vu-srv-")
        sa, sb = os.path.join(sockdir, "a.sock"), os.path.join(sockdir, "b.sock")
        d = self.daemon(ports=[vhost_port("a", socket=sa, mode="client"),
                               vhost_port("b", socket=sb, mode="client")])
        for round_ in range(2):
            peer = self.peer({"a": (sa, {"mac": MAC_A, "server": True}),
                              "b": (sb, {"mac": MAC_B, "server": True})})
            peer.wait_ready(timeout=30)
            d.wait_connected("a", timeout=30)
            d.wait_connected("b", timeout=30)
            peer.wait_forwarding("a", "b", dst=MAC_B)
            peer.send("a", dst=MAC_B, count=100, size=300, flow=round_)
            assert_all_valid(self, peer.recv("b", expect=100), 100, round_)
            peer.close()
        self.assertGreaterEqual(d.rpc("port.show", {"name": "a"})["status"]["connects"], 2)


class XconnectTest(DaemonTestCase):

    def test_xconnect_forwards_without_learning(self):
        d = self.daemon(ports=[vhost_port("a", bridge=None), vhost_port("b", bridge=None)],
                        xconnects=[{"name": "x0", "ports": ["a", "b"]}])
        peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A}),
                          "b": (d.sock("b"), {"mac": MAC_B})})
        d.wait_connected("a")
        d.wait_connected("b")
        peer.wait_forwarding("a", "b", dst="02:99:99:99:99:99")
        for size, flow in ((64, 1), (1518, 2)):
            peer.send("a", dst="02:99:99:99:99:99", count=1000, size=size, flow=flow)
            assert_all_valid(self, peer.recv("b", expect=1000, timeout_ms=5000), 1000, flow)
            peer.send("b", dst=MAC_A, count=1000, size=size, flow=flow + 10)
            assert_all_valid(self, peer.recv("a", expect=1000, timeout_ms=5000), 1000,
                             flow + 10)


class SingleCopyTest(DaemonTestCase):
    """Cross-connected ports with "single-copy" (the default; set explicitly
    here so that these tests keep their meaning): frames go guest to guest with
    one copy (vhost/net_copy.c), no mbuf. Frames of 256 bytes or less take
    the mbuf path (cheaper there: SC_MIN_FRAME in dataplane/forward.c). Same
    content and counters either way; the tx "single-copy" counter shows which
    path carried them."""

    def pair(self, opts_a=None, opts_b=None, **portkw):
        d = self.daemon(ports=[vhost_port("a", bridge=None, **{"single-copy": True}, **portkw),
                               vhost_port("b", bridge=None, **{"single-copy": True}, **portkw)],
                        xconnects=[{"name": "x0", "ports": ["a", "b"]}])
        peer = self.peer({"a": (d.sock("a"), dict({"mac": MAC_A}, **(opts_a or {}))),
                          "b": (d.sock("b"), dict({"mac": MAC_B}, **(opts_b or {})))})
        d.wait_connected("a")
        d.wait_connected("b")
        peer.wait_forwarding("a", "b", dst=MAC_B)
        peer.wait_forwarding("b", "a", dst=MAC_A)
        d.rpc("stats.clear")
        return d, peer

    def roundtrip(self, d, peer, sizes, count=1000, flow0=1):
        total = {"a": [0, 0, 0], "b": [0, 0, 0]}  # frames, bytes, single copy
        for i, size in enumerate(sizes):
            for src, dst, mac in (("a", "b", MAC_B), ("b", "a", MAC_A)):
                flow = flow0 + 2 * i + (src == "b")
                peer.send(src, dst=mac, count=count, size=size, flow=flow, window=64)
                r = peer.recv(dst, expect=count, timeout_ms=5000)
                assert_all_valid(self, r, count, flow)
                total[dst][0] += count
                total[dst][1] += count * size
                total[dst][2] += count if size > 256 else 0
        for p in "ab":
            tx = d.port_stats(p)["tx"]
            self.assertEqual(tx["packets"], total[p][0], tx)
            self.assertEqual(tx["bytes"], total[p][1], tx)
            self.assertEqual(tx["single-copy"], total[p][2], tx)
            self.assertEqual(sum(tx["drops"].values()), 0, tx)
            rx = d.port_stats("b" if p == "a" else "a")["rx"]
            self.assertEqual(rx["packets"], total[p][0], rx)
            self.assertEqual(rx["bytes"], total[p][1], rx)

    def test_bytes_roundtrip_counters_and_mtu(self):
        d, peer = self.pair()
        self.roundtrip(d, peer, (64, 100, 1000, 1518))
        # Too long for b's MTU: dropped on the way, counted, a's ring drained.
        before = d.port_stats("b")["tx"]["drops"]["mtu"]
        rx0 = d.port_stats("a")["rx"]
        peer.send("a", dst=MAC_B, count=10, size=1600, flow=50)
        self.assertEqual(peer.recv("b", timeout_ms=300)["received"], 0)
        self.assertEqual(d.port_stats("b")["tx"]["drops"]["mtu"] - before, 10)
        # Received (and counted, as on the mbuf path), then dropped.
        rx1 = d.port_stats("a")["rx"]
        self.assertEqual((rx1["packets"] - rx0["packets"], rx1["bytes"] - rx0["bytes"]),
                         (10, 16000), rx1)
        peer.send("a", dst=MAC_B, count=100, size=1518, flow=51)
        assert_all_valid(self, peer.recv("b", expect=100), 100, 51)

    def test_receiver_without_mergeable_buffers(self):
        # b's guest side has 10-byte headers and one buffer per frame.
        d, peer = self.pair(opts_b={"mrg_rxbuf": 0})
        self.roundtrip(d, peer, (64, 1518))

    def test_jumbo_frames_span_descriptors_and_buffers(self):
        # 9000-byte frames: several tx descriptors, several mergeable rx buffers.
        d, peer = self.pair(opts_a={"queue_size": 1024}, opts_b={"queue_size": 1024}, mtu=9000)
        self.roundtrip(d, peer, (9000, 4000), count=200)

    def test_multiqueue(self):
        d, peer = self.pair(opts_a={"queues": 4}, opts_b={"queues": 4}, queues=4)
        d.wait_connected("a", queues=4)
        d.wait_connected("b", queues=4)
        d.rpc("stats.clear")
        for q in range(4):
            peer.send("a", dst=MAC_B, queue=q, count=500, size=300, flow=10 + q)
        r = peer.recv("b", expect=2000, timeout_ms=5000)
        self.assertEqual(r["valid"], 2000, r)
        self.assertEqual(r["per_queue"], [500, 500, 500, 500], r)
        self.assertEqual(d.port_stats("b")["tx"]["single-copy"], 2000)

    def test_falls_back_to_mbuf_path_with_a_plain_peer(self):
        d = self.daemon(ports=[vhost_port("a", bridge=None),
                               vhost_port("b", bridge=None, **{"single-copy": False})],
                        xconnects=[{"name": "x0", "ports": ["a", "b"]}])
        peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A}),
                          "b": (d.sock("b"), {"mac": MAC_B})})
        d.wait_connected("a")
        d.wait_connected("b")
        peer.wait_forwarding("a", "b", dst=MAC_B)
        d.rpc("stats.clear")
        peer.send("a", dst=MAC_B, count=500, size=700, flow=3)
        assert_all_valid(self, peer.recv("b", expect=500), 500, 3)
        peer.send("b", dst=MAC_A, count=500, size=700, flow=4)
        assert_all_valid(self, peer.recv("a", expect=500), 500, 4)
        for p in "ab":
            tx = d.port_stats(p)["tx"]
            self.assertEqual((tx["packets"], tx["single-copy"]), (500, 0), tx)

    def test_auto_times_both_paths_set_live(self):
        # "auto" on running ports: set live (no new socket, no reconnect);
        # then each rx queue times single copy against the mbuf path in
        # probes (dataplane/forward.h) and keeps the cheaper one. Content
        # and counters hold whichever path a frame took.
        d, peer = self.pair()
        for p in "ab":
            self.assertEqual(d.rpc("port.set", {"name": p, "single-copy": "auto"})
                             ["single-copy"], "auto")
        sent = {"a": 0, "b": 0}
        deadline = time.monotonic() + 20
        judged = {}
        flow = 60
        while time.monotonic() < deadline:
            for src, dst, mac in (("a", "b", MAC_B), ("b", "a", MAC_A)):
                flow += 1
                peer.send(src, dst=mac, count=20000, size=1000, flow=flow, window=256)
                assert_all_valid(self, peer.recv(dst, expect=20000, timeout_ms=10000),
                                 20000, flow)
                sent[dst] += 20000
            judged = {p: d.rpc("port.show", {"name": p})["stats"]["queues"][0]
                      ["single-copy-auto"] for p in "ab"}
            if all(j["judged"]["mbuf"]["frames"] > 0 for j in judged.values()):
                break
        for p in "ab":
            show = d.rpc("port.show", {"name": p})
            self.assertEqual(show["single-copy"], "auto")
            self.assertEqual((show["status"]["connects"], show["status"]["disconnects"]),
                             (1, 0), show["status"])
            a = judged[p]  # p's rx queue 0
            self.assertGreater(a["probes"], 0, a)
            for path in ("mbuf", "single-copy"):
                self.assertGreaterEqual(a["judged"][path]["frames"], 1024, a)
                self.assertGreater(a["judged"][path]["cycles"], 0, a)
            self.assertIn(a["path"], ("mbuf", "single-copy"))
            # Frames went both ways: some copied guest to guest, some not.
            tx = d.port_stats(p)["tx"]
            self.assertEqual(tx["packets"], sent[p], tx)
            self.assertEqual(tx["bytes"], sent[p] * 1000, tx)
            self.assertEqual(sum(tx["drops"].values()), 0, tx)
            self.assertGreater(tx["single-copy"], 0, tx)
            self.assertLess(tx["single-copy"], tx["packets"], tx)
        # Back to plain single copy, live too: every frame over 256 B copied.
        for p in "ab":
            d.rpc("port.set", {"name": p, "single-copy": True})
        d.rpc("stats.clear")
        self.roundtrip(d, peer, (1518,), count=500, flow0=200)
        self.assertNotIn("single-copy-auto",
                         d.rpc("port.show", {"name": "a"})["stats"]["queues"][0])

    def test_frontend_reconnect_under_single_copy(self):
        d, peer = self.pair()
        self.roundtrip(d, peer, (512,), count=300)
        peer.close()
        peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A}),
                          "b": (d.sock("b"), {"mac": MAC_B})})
        d.wait_connected("a")
        d.wait_connected("b")
        peer.wait_forwarding("a", "b", dst=MAC_B)
        peer.wait_forwarding("b", "a", dst=MAC_A)
        d.rpc("stats.clear")
        self.roundtrip(d, peer, (128, 1518), count=300, flow0=20)


if __name__ == "__main__":
    unittest.main()
