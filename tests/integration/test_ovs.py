# SPDX-License-Identifier: BSD-3-Clause
"""vhostd ports attached to a real Open vSwitch (ovs-plugin).

A private ovsdb-server and ovs-vswitchd (userspace datapath,
datapath_type=netdev: no kernel module needed) run in a temp dir. vhostd
attaches two vhost-user ports to the OVS bridge through tap link ports;
vu-peer drives both ports and checks that frames go through OVS and back
with identical bytes. Then the rows (external_ids, statistics, the lookups
libvirt does) and the faults: ovsdb-server restart (reconcile), a database
that lost the rows, ovs-vswitchd restart, the operator deleting the port and
the bridge, OVSDB unreachable when vhostd starts.

Run by hand: VHOSTD_BUILD=build python3 tests/integration/test_ovs.py -v
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DaemonTestCase, vhost_port  # noqa: E402

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
VSWITCHD = "/usr/lib/openvswitch-switch/ovs-vswitchd"
BRIDGE = "br-vhd"
MAC_A = "52:54:00:0a:00:01"
MAC_B = "52:54:00:0a:00:02"


def ovs_missing():
    for tool in ("ovsdb-tool", "ovsdb-server", "ovs-vsctl"):
        if shutil.which(tool) is None:
            return "%s not installed (apt-get install openvswitch-switch)" % tool
    if not os.path.exists(SCHEMA) or not os.path.exists(VSWITCHD):
        return "openvswitch-switch is not installed"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    return None


class Ovs:
    """A private ovsdb-server + ovs-vswitchd; stops only what it started."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ovs-vhostd-it-")
        for sub in ("run", "db", "log", "etc"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.sock = os.path.join(self.dir, "run", "db.sock")
        self.db = os.path.join(self.dir, "db", "conf.db")
        self.env = dict(os.environ, OVS_RUNDIR=self.dir + "/run", OVS_DBDIR=self.dir + "/db",
                        OVS_LOGDIR=self.dir + "/log", OVS_SYSCONFDIR=self.dir + "/etc",
                        OVS_PKGDATADIR="/usr/share/openvswitch")
        self.pids = {}

    def _pid(self, name):
        try:
            with open(os.path.join(self.dir, "run", name + ".pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start_db(self, fresh=False):
        if fresh and os.path.exists(self.db):
            os.unlink(self.db)
        if not os.path.exists(self.db):
            subprocess.run(["ovsdb-tool", "create", self.db, SCHEMA], check=True, env=self.env)
        subprocess.run(["ovsdb-server", self.db, "--remote=punix:" + self.sock,
                        "--pidfile=%s/run/ovsdb-server.pid" % self.dir,
                        "--log-file=%s/log/ovsdb-server.log" % self.dir,
                        "--no-chdir", "--detach", "-vconsole:off"], check=True, env=self.env,
                       capture_output=True)
        self.pids["ovsdb-server"] = self._pid("ovsdb-server")
        self.vsctl("--no-wait", "init")

    def start_vswitchd(self):
        subprocess.run([VSWITCHD, "unix:" + self.sock,
                        "--pidfile=%s/run/ovs-vswitchd.pid" % self.dir,
                        "--log-file=%s/log/ovs-vswitchd.log" % self.dir,
                        "--no-chdir", "--detach", "-vconsole:off"], check=True, env=self.env,
                       capture_output=True)
        self.pids["ovs-vswitchd"] = self._pid("ovs-vswitchd")

    def stop(self, name):
        pid = self.pids.pop(name, None)
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def vsctl(self, *args, check=True, wait=False):
        argv = ["ovs-vsctl", "--db=unix:" + self.sock, "--timeout=20"]
        if not wait and args and args[0] != "--no-wait":
            argv.append("--no-wait")
        p = subprocess.run(argv + list(args), capture_output=True, text=True, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError("ovs-vsctl %s: %s" % (" ".join(args), p.stderr))
        return p.stdout.strip()

    def iface(self, name):
        """The Interface row as {column: python value} (ovs-vsctl --format=json)."""
        out = self.vsctl("--format=json", "--columns=name,type,options,external_ids,"
                         "statistics,ofport,error", "list", "Interface", name)
        doc = json.loads(out)
        row = dict(zip(doc["headings"], doc["data"][0]))
        for k, v in row.items():
            if isinstance(v, list) and v and v[0] == "map":
                row[k] = {a: b for a, b in v[1]}
        return row

    def log(self):
        out = ""
        for name in ("ovsdb-server", "ovs-vswitchd"):
            try:
                with open(os.path.join(self.dir, "log", name + ".log"), errors="replace") as f:
                    out += "---- %s ----\n%s" % (name, f.read()[-3000:])
            except OSError:
                pass
        return out

    def cleanup(self):
        for name in list(self.pids):
            self.stop(name)
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(what, fn, timeout=20.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class OvsTestCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        why = ovs_missing()
        if why:
            self.skipTest(why)
        self.ovs = Ovs()
        self.addCleanup(self.ovs.cleanup)

    def tearDown(self):
        failed = hasattr(self, "_outcome") and any(
            err for t, err in (self._outcome.result.errors + self._outcome.result.failures)
            if t is self)
        if failed:
            sys.stderr.write(self.ovs.log() + "\n")
        super().tearDown()

    def start_ovs(self, bridge=True):
        self.ovs.start_db()
        self.ovs.start_vswitchd()
        if bridge:
            self.ovs.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE,
                           "datapath_type=netdev", wait=True)

    def vhostd(self, attach, **kw):
        ports = [vhost_port("a", bridge=None, mac=MAC_A), vhost_port("b", bridge=None, mac=MAC_B)]
        ovs = {"db": "unix:" + self.ovs.sock, "stats-interval-s": 1, "attach": attach}
        return self.daemon(ports=ports, bridges=(), extra={"ovs": ovs}, **kw)

    def att(self, d, port):
        return d.rpc("ovs.show", {"port": port})

    def wait_state(self, d, port, state, applied=None, timeout=20.0):
        def ok():
            a = self.att(d, port)
            if a["state"] == state and (applied is None or a.get("applied") == applied):
                return a
            return None
        return wait_for("port %s %s" % (port, state), ok, timeout)

    def roundtrip(self, peer, n=32):
        peer.wait_forwarding("a", "b", dst=MAC_B, timeout=20)
        peer.wait_forwarding("b", "a", dst=MAC_A, timeout=20)
        for size in (64, 1514):
            # vu-peer checks every byte of the payload ("valid"); a late
            # probe of wait_forwarding may come along (another flow).
            for tx, rx, dst, flow in (("a", "b", MAC_B, 1), ("b", "a", MAC_A, 2)):
                peer.send(tx, dst=dst, count=n, size=size, flow=flow)
                r = peer.recv(rx, expect=n, timeout_ms=5000, frames=0)
                f = r["flows"].get(str(flow), {})
                self.assertEqual(f.get("valid"), n, r)
                self.assertEqual(r["invalid"], 0, r)


class TestOvsAttach(OvsTestCase):
    def test_attach_traffic_rows_and_restarts(self):
        self.start_ovs()
        d = self.vhostd([{"port": "a", "bridge": BRIDGE, "iface-id": "iface-a",
                          "vm-uuid": "0b8c1c3e-6a5f-4a0e-8f3c-1c2d3e4f5a6b", "vlan": 10},
                         {"port": "b", "bridge": BRIDGE, "vlan": 10}])
        a = self.wait_state(d, "a", "attached", applied=True)
        self.wait_state(d, "b", "attached", applied=True)
        self.assertEqual(a["link"]["kind"], "tap")
        self.assertEqual(a["interface"], "a.sock")  # basename: libvirt's client-mode lookup
        peer = self.peer({"a": d.sock("a"), "b": d.sock("b")})
        self.roundtrip(peer)

        # The rows as libvirt and orchestrators see them.
        row = wait_for("iface-status active", lambda: (
            lambda r: r if r["external_ids"].get("iface-status") == "active" else None)(
                self.ovs.iface("a.sock")))
        ext = row["external_ids"]
        self.assertEqual(ext["iface-id"], "iface-a")
        self.assertEqual(ext["attached-mac"], MAC_A)
        self.assertEqual(ext["vm-uuid"], "0b8c1c3e-6a5f-4a0e-8f3c-1c2d3e4f5a6b")
        self.assertEqual(ext["vhostd-port"], "a")
        self.assertEqual(row["type"], "")
        self.assertEqual(self.ovs.vsctl("get", "Port", "a.sock", "tag"), "10")
        self.assertEqual(self.ovs.vsctl("--bare", "--columns=name", "find", "Interface",
                                        "options:vhost-server-path=" + d.sock("a")), "a.sock")
        self.assertEqual(self.ovs.vsctl("get", "Interface", "a.sock", "name"), "a.sock")
        self.assertIn("a.sock", self.ovs.vsctl("list-ports", BRIDGE).split())

        def stats_ok():
            st = self.ovs.iface("a.sock")["statistics"]
            return st if st.get("rx_packets", 0) >= 64 and st.get("tx_packets", 0) >= 64 else None
        st = wait_for("statistics", stats_ok, timeout=15)
        self.assertIn("rx_bytes", st)
        show = d.rpc("port.show", {"name": "a"})
        self.assertEqual(show["ovs"]["state"], "attached")
        self.assertEqual(show["ovs"]["iface-status"], "active")
        _, out, _ = d.ctl("ovs", "show")
        self.assertIn("attached", out)

        # ovsdb-server restart; meanwhile vhostd serves, traffic flows, and
        # b is detached: on reconnect vhostd adopts a and deletes b's row.
        self.ovs.stop("ovsdb-server")
        wait_for("backoff", lambda: d.rpc("ovs.show")["state"] == "backoff")
        self.assertTrue(d.rpc("ovs.show")["error"])
        d.rpc("ovs.detach", {"port": "b"})
        self.ovs.start_db()
        wait_for("reconnect", lambda: d.rpc("ovs.show")["state"] == "connected")
        self.wait_state(d, "a", "attached")
        wait_for("b's row deleted", lambda: "b.sock" not in self.ovs.vsctl("list-ports", BRIDGE).split())
        self.assertIn("a.sock", self.ovs.vsctl("list-ports", BRIDGE).split())
        d.rpc("ovs.attach", {"port": "b", "bridge": BRIDGE, "vlan": 10})
        self.wait_state(d, "b", "attached", applied=True)

        # ovs-vswitchd restart: the taps stay, OVS reopens them.
        self.ovs.stop("ovs-vswitchd")
        self.ovs.start_vswitchd()
        self.roundtrip(peer)

        # A database that lost the rows: vhostd re-asserts them.
        self.ovs.stop("ovs-vswitchd")
        self.ovs.stop("ovsdb-server")
        self.ovs.start_db(fresh=True)
        self.ovs.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev")
        self.ovs.start_vswitchd()
        wait_for("rows re-asserted", lambda: {"a.sock", "b.sock"} <= set(
            self.ovs.vsctl("list-ports", BRIDGE).split()))
        self.wait_state(d, "a", "attached", applied=True)
        self.roundtrip(peer)

        # The operator deletes a port: noticed, not re-added until asked.
        self.ovs.vsctl("del-port", BRIDGE, "b.sock")
        b = self.wait_state(d, "b", "removed-by-operator")
        self.assertIn("removed", b["reason"])
        time.sleep(2)
        self.assertNotIn("b.sock", self.ovs.vsctl("list-ports", BRIDGE).split())
        self.assertEqual(d.rpc("port.show", {"name": "b"})["ovs"]["state"],
                         "removed-by-operator")
        d.rpc("ovs.attach", {"port": "b", "bridge": BRIDGE, "vlan": 10})
        self.wait_state(d, "b", "attached", applied=True)
        self.roundtrip(peer)

        # ... and the bridge.
        self.ovs.vsctl("del-br", BRIDGE)
        for p in ("a", "b"):
            r = self.wait_state(d, p, "removed-by-operator")
            self.assertIn("bridge %s was deleted" % BRIDGE, r["reason"])
        self.ovs.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev")
        time.sleep(2)
        self.assertEqual(self.ovs.vsctl("list-ports", BRIDGE), "")
        self.assertEqual(self.att(d, "a")["state"], "removed-by-operator")
        doc = d.rpc("ovs.doctor")
        self.assertTrue(doc["reachable"])
        self.assertEqual(doc["bridges"], [{"name": BRIDGE, "exists": True}])

        # detach, then the config has no attachment left
        d.ctl("ovs", "detach", "a")
        d.ctl("ovs", "detach", "b")
        self.assertEqual(d.rpc("config.get")["ovs"]["attach"], [])

    def test_unreachable_at_start_and_errors(self):
        d = self.vhostd([{"port": "a", "bridge": BRIDGE}])
        self.assertEqual(d.rpc("version")["version"], d.rpc("version")["version"])
        a = self.att(d, "a")
        self.assertEqual(a["state"], "pending")
        show = d.rpc("ovs.show")
        self.assertEqual(show["state"], "backoff")
        self.assertIn("No such file or directory", show["error"])
        self.assertIn("unreachable", d.log())
        doc = d.rpc("ovs.doctor")
        self.assertFalse(doc["reachable"])
        self.assertEqual(doc["bridges"], [{"name": BRIDGE, "exists": None}])
        # RPC errors
        for params, frag in (({"port": "nope", "bridge": BRIDGE}, "no such port"),
                             ({"port": "a"}, "bridge"),
                             ({"port": "b", "bridge": BRIDGE, "vlan": 5000}, "vlan"),
                             ({"port": "b", "bridge": BRIDGE, "x": 1}, "not a known member"),
                             ({"port": "a", "bridge": "other"}, "already attached")):
            with self.assertRaises(Exception) as cm:
                d.rpc("ovs.attach", params)
            self.assertIn(frag, str(cm.exception))
        # OVS comes up without the bridge: no-bridge, then attached when it appears.
        self.start_ovs(bridge=False)
        self.wait_state(d, "a", "no-bridge", timeout=20)
        rc, out, _ = d.ctl("ovs", "attach", "b", "nosuchbr", check=False)
        self.assertEqual(rc, 1)
        self.assertIn("does not exist", out)
        d.ctl("ovs", "detach", "b")
        self.ovs.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev")
        self.wait_state(d, "a", "attached", applied=True)
        self.assertIn("a.sock", self.ovs.vsctl("list-ports", BRIDGE).split())

    def test_config_check(self):
        d = self.vhostd([{"port": "a", "bridge": BRIDGE}], start=False)
        d.config["ovs"]["db"] = "tcp:127.0.0.1:6640"
        self.assertNotEqual(d.start(expect_fail=True), 0)
        self.assertIn("only unix:", d.log())


if __name__ == "__main__":
    unittest.main()
