#!/usr/bin/env python3
"""ethdev ports: a DPDK net_tap device owned by vhostd, cross-connected to a
vhost-user port. Frames of a virtio-user client come out of the kernel tap
interface byte for byte, and frames written into the tap reach the client
intact (vu_peer checks every byte and sequence number). The PMD runs in the
default halt-poll mode, so the tap's rx interrupt must wake it."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, vhost_port  # noqa: E402

MAC_A = "02:00:00:00:0e:0a"
MAC_B = "02:00:00:00:0e:0b"
ETH_P_ALL = 0x0003


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


class EthdevTapTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        if not os.path.exists("/dev/net/tun"):
            raise unittest.SkipTest("no /dev/net/tun: net_tap needs the tun driver")
        self.ifname = "vhdt%d" % (os.getpid() % 100000)

    def tap_socket(self):
        deadline = time.monotonic() + 10
        while not os.path.exists("/sys/class/net/%s" % self.ifname):
            self.assertLess(time.monotonic(), deadline, "tap %s never appeared" % self.ifname)
            time.sleep(0.05)
        # No IPv6 chatter (router solicitations) from the kernel side.
        try:
            with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % self.ifname, "w") as f:
                f.write("1")
        except OSError:
            pass
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((self.ifname, 0))
        s.settimeout(0.2)
        self.addCleanup(s.close)
        return s

    def read_frames(self, s, dst, count, timeout=10.0):
        frames, deadline = [], time.monotonic() + timeout
        while len(frames) < count and time.monotonic() < deadline:
            try:
                data, addr = s.recvfrom(65536)
            except socket.timeout:
                continue
            # Outgoing packets (ours, sent below) show up too: keep what the
            # tap received from vhostd only.
            if addr[2] == socket.PACKET_OUTGOING or data[:6] != mac_bytes(dst):
                continue
            frames.append(data)
        return frames

    def test_tap_round_trip_xconnect(self):
        d = self.daemon(ports=[vhost_port("vhu0", bridge=None),
                               {"name": "tap0", "type": "ethdev",
                                "devargs": "net_tap_it%d,iface=%s" % (os.getpid(), self.ifname)}],
                        bridges=(), xconnects=[{"name": "x0", "ports": ["vhu0", "tap0"]}])
        s = self.tap_socket()
        peer = self.peer({"vhu0": (d.sock("vhu0"), {"mac": MAC_A})})
        d.wait_connected("vhu0")
        show = d.rpc("port.show", {"name": "tap0"})
        self.assertEqual(show["config"]["devargs"] if "config" in show else show["devargs"],
                         "net_tap_it%d,iface=%s" % (os.getpid(), self.ifname), show)

        # Guest -> vhostd -> tap -> kernel: the same bytes.
        peer.send("vhu0", dst=MAC_B, count=20, size=200, flow=7)
        frames = self.read_frames(s, MAC_B, 20)
        self.assertEqual(len(frames), 20, "frames seen on %s: %d" % (self.ifname, len(frames)))
        self.assertTrue(all(len(f) == 200 - 4 or len(f) == 200 for f in frames),
                        [len(f) for f in frames])
        self.assertEqual(len(set(frames)), 20, "every frame distinct (sequence numbers)")
        st = d.port_stats("tap0")
        self.assertEqual(st["tx"]["packets"], 20, st)

        # Kernel -> tap -> vhostd -> guest: write them back; vu_peer checks
        # every byte and the sequence numbers of flow 7.
        for f in frames:
            s.send(f)
        r = peer.recv("vhu0", expect=20, timeout_ms=10000)
        self.assertEqual(r["received"], 20, r)
        self.assertEqual(r["valid"], 20, r)
        self.assertEqual(r["flows"]["7"]["seqs_missing"], 0, r)
        self.assertGreaterEqual(d.port_stats("tap0")["rx"]["packets"], 20)

        # Deleting the port removes the device and its kernel interface.
        d.rpc("xconnect.del", {"name": "x0"})
        d.rpc("port.del", {"name": "tap0"})
        deadline = time.monotonic() + 10
        while os.path.exists("/sys/class/net/%s" % self.ifname):
            self.assertLess(time.monotonic(), deadline, "tap interface left behind")
            time.sleep(0.05)

    def test_bad_devargs_clear_error(self):
        d = self.daemon(ports=[], bridges=())
        with self.assertRaises(harness.RpcError) as e:
            d.rpc("port.add", {"name": "bad0", "type": "ethdev", "devargs": "net_nosuchdrv0"})
        self.assertIn("net_nosuchdrv0", str(e.exception))
        self.assertEqual(d.rpc("port.list"), [])
        with self.assertRaises(harness.RpcError) as e:
            d.rpc("port.add", {"name": "bad1", "type": "ethdev"})
        self.assertIn("devargs", str(e.exception))


if __name__ == "__main__":
    unittest.main()
