# SPDX-License-Identifier: BSD-3-Clause
"""A vhostd port attached to a real OVS-DPDK bridge (ovs-plugin, net_virtio_user link).

A private ovsdb-server and ovs-vswitchd-dpdk (dpdk-init=true, its own EAL
file prefix, no PCI, 512 MiB) run in a temp dir with a netdev bridge.
vhostd attaches its vhost-user port "a" to the bridge with the ovs.attach
RPC: OVS-DPDK is initialized, so the link is a net_virtio_user port of
vhostd in server mode that OVS joins as a dpdkvhostuserclient Interface.
A second OVS port is a dpdkvhostuser port (OVS is the server); vu-peer
drives both ends:

    vu-peer a -> vhostd a -> link (virtio_user) -> OVS-DPDK -> dpdkvhostuser -> vu-peer o

and back, with identical bytes (vu-peer checks every payload byte). Then
the rows (external_ids, the vhost-server-path lookup), ovs-vswitchd
restarting (the link reconnects), detach.

Run by hand: VHOSTD_BUILD=build python3 tests/integration/test_ovs_dpdk.py -v
"""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import vhost_port  # noqa: E402
from test_ovs import Ovs, OvsTestCase, wait_for  # noqa: E402
from vupeer import cleanup_eal_files  # noqa: E402

VSWITCHD_DPDK = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
BRIDGE = "br-vhdpdk"
MAC_A = "52:54:00:0b:00:01"
MAC_O = "52:54:00:0b:00:02"
OVS_MEM_MB = 512
# 2 MiB pages each DPDK process of the test needs, with a margin: OVS,
# vhostd (its default 1 GiB... or less), vu-peer.
HUGEPAGES_NEEDED = (OVS_MEM_MB + 512 + 256) // 2


def free_hugepages():
    try:
        with open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


class OvsDpdk(Ovs):
    """Ovs with ovs-vswitchd-dpdk; its EAL has a prefix of its own."""

    def __init__(self):
        super().__init__()
        self.prefix = "ovsdpdk-it%d" % os.getpid()

    def start_db(self, fresh=False):
        super().start_db(fresh=fresh)
        pmd = 1 if os.cpu_count() > 1 else 0
        self.vsctl("set", "Open_vSwitch", ".",
                   "other_config:dpdk-init=true",
                   "other_config:dpdk-lcore-mask=0x1",
                   "other_config:pmd-cpu-mask=0x%x" % (1 << pmd),
                   "other_config:dpdk-socket-mem=%d" % OVS_MEM_MB,
                   "other_config:dpdk-socket-limit=%d" % (OVS_MEM_MB * 2),
                   "other_config:dpdk-extra=--file-prefix=%s --no-pci --single-file-segments"
                   % self.prefix)

    def start_vswitchd(self):
        # In a network namespace of its own: the netdev datapath creates tap
        # devices (ovs-netdev, the bridge's internal port) whose names would
        # collide with any other OVS running on the host; vhost-user sockets
        # do not care about namespaces.
        subprocess.run(["unshare", "--net", VSWITCHD_DPDK, "unix:" + self.sock,
                        "--pidfile=%s/run/ovs-vswitchd.pid" % self.dir,
                        "--log-file=%s/log/ovs-vswitchd.log" % self.dir,
                        "--no-chdir", "--detach", "-vconsole:off"], check=True, env=self.env,
                       capture_output=True)
        self.pids["ovs-vswitchd"] = self._pid("ovs-vswitchd")

    def stop(self, name):
        super().stop(name)
        if name == "ovs-vswitchd":
            cleanup_eal_files(self.prefix)

    def cleanup(self):
        if os.environ.get("VHOSTD_IT_KEEP"):
            for name in list(self.pids):
                self.stop(name)
            sys.stderr.write("kept %s\n" % self.dir)
            return
        super().cleanup()

    def dpdk_initialized(self):
        return self.vsctl("get", "Open_vSwitch", ".", "dpdk_initialized") == "true"


class TestOvsDpdkAttach(OvsTestCase):
    def roundtrip(self, pa, po, n=64, sizes=(64, 1514)):
        """vu-peer a -> vhostd -> link -> OVS-DPDK -> o, and back; every byte checked."""
        pa.wait_forwarding("a", "o", dst=MAC_O, rx_peer=po, timeout=30)
        po.wait_forwarding("o", "a", dst=MAC_A, rx_peer=pa, timeout=30)
        flow = 1
        for size in sizes:
            for tx, txp, rx, rxp, dst in (("a", pa, "o", po, MAC_O), ("o", po, "a", pa, MAC_A)):
                txp.send(tx, dst=dst, count=n, size=size, flow=flow)
                r = rxp.recv(rx, expect=n, timeout_ms=5000, frames=0)
                f = r["flows"].get(str(flow), {})
                self.assertEqual(f.get("valid"), n, (tx, rx, size, r))
                self.assertEqual(r["invalid"], 0, r)
                flow += 1

    def setUp(self):
        super().setUp()
        if not os.access(VSWITCHD_DPDK, os.X_OK):
            self.skipTest("openvswitch-switch-dpdk is not installed")
        if free_hugepages() < HUGEPAGES_NEEDED:
            self.skipTest("%d free 2 MiB hugepages, %d needed" % (free_hugepages(),
                                                                  HUGEPAGES_NEEDED))
        self.ovs.cleanup()  # the plain Ovs of OvsTestCase: never started
        self.ovs = OvsDpdk()
        self.addCleanup(self.ovs.cleanup)

    def test_virtio_user_link_traffic_and_rows(self):
        self.ovs.start_db()
        self.ovs.start_vswitchd()
        wait_for("dpdk_initialized", self.ovs.dpdk_initialized, timeout=60)
        self.ovs.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE,
                       "datapath_type=netdev", wait=True)
        # OVS's own vhost-user port (OVS is the server; the socket is in its rundir).
        self.ovs.vsctl("add-port", BRIDGE, "o", "--", "set", "Interface", "o",
                       "type=dpdkvhostuser", wait=True)
        osock = os.path.join(self.ovs.dir, "run", "o")
        wait_for("the dpdkvhostuser socket", lambda: os.path.exists(osock))

        ovs = {"db": "unix:" + self.ovs.sock, "stats-interval-s": 1}
        d = self.daemon(ports=[vhost_port("a", bridge=None, mac=MAC_A)], bridges=(),
                        extra={"ovs": ovs})
        d.rpc("ovs.attach", {"port": "a", "bridge": BRIDGE, "iface-id": "iface-a",
                             "vm-uuid": "0b8c1c3e-6a5f-4a0e-8f3c-1c2d3e4f5a6c"})
        a = self.wait_state(d, "a", "attached", applied=True, timeout=60)
        self.assertEqual(a["link"]["kind"], "dpdkvhostuserclient")
        link_sock = os.path.join(d.run_dir, "ovs-a.sock")

        # Two vu-peer processes: OVS's dpdkvhostuser port does not survive an
        # ovs-vswitchd restart (a virtio_user client does not reconnect), so
        # o's peer is replaced then; vhostd's link (server mode) reconnects.
        pa = self.peer({"a": (d.sock("a"), {"mac": MAC_A})})
        po = self.peer({"o": (osock, {"mac": MAC_O})}, cpu=0)
        d.wait_connected("a")
        self.roundtrip(pa, po, n=64)
        # The rows: external_ids, and the link row found by its socket.
        row = wait_for("iface-status active", lambda: (
            lambda r: r if r["external_ids"].get("iface-status") == "active" else None)(
                self.ovs.iface("a.sock")))
        self.assertEqual(row["type"], "dpdkvhostuserclient")
        self.assertEqual(row["options"].get("vhost-server-path"), link_sock)
        ext = row["external_ids"]
        self.assertEqual(ext["iface-id"], "iface-a")
        self.assertEqual(ext["attached-mac"], MAC_A)
        self.assertEqual(ext["vm-uuid"], "0b8c1c3e-6a5f-4a0e-8f3c-1c2d3e4f5a6c")
        self.assertEqual(ext["vhostd-port"], "a")
        self.assertIn("vhostd-owner", ext)
        listed = self.ovs.vsctl("list", "Interface")
        self.assertIn("iface-a", listed)
        self.assertEqual(self.ovs.vsctl("--bare", "--columns=name", "find", "Interface",
                                        "options:vhost-server-path=" + link_sock), "a.sock")
        self.assertIn("a.sock", self.ovs.vsctl("list-ports", BRIDGE).split())
        self.assertIn(row.get("error"), (None, "", ["set", []]), row)

        # ovs-vswitchd restarts: the virtio_user server link takes the new client.
        self.ovs.stop("ovs-vswitchd")
        self.ovs.start_vswitchd()
        wait_for("dpdk_initialized", self.ovs.dpdk_initialized, timeout=60)
        po.close()
        # --wait: returns once the new ovs-vswitchd applied the config (o's socket is new)
        self.ovs.vsctl("set", "Interface", "o", "external_ids:restarted=1", wait=True)
        wait_for("the new dpdkvhostuser socket", lambda: os.path.exists(osock))
        po = self.peer({"o": (osock, {"mac": MAC_O})}, cpu=0)
        self.roundtrip(pa, po, n=64, sizes=(512,))

        d.rpc("ovs.detach", {"port": "a"})
        wait_for("a's row deleted",
                 lambda: "a.sock" not in self.ovs.vsctl("list-ports", BRIDGE).split())
        time.sleep(0.5)
        self.assertEqual(d.rpc("version")["version"], d.rpc("version")["version"])


if __name__ == "__main__":
    unittest.main()
