#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The control socket and the config file against a running vhostd: bad
input gets a clear error and changes nothing; live changes, save-config and
a restart from the saved file; the CLI; clean shutdown."""

import json
import os
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (DaemonTestCase, RpcError, VHOSTD, Vhostd, rpc_raw, vhost_port, NCPU)

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"


class BadInputTest(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.d = self.daemon(ports=[vhost_port("a"), vhost_port("b")])
        self.before = self.d.rpc("config.get")

    def tearDown(self):
        if hasattr(self, "d") and self.d.proc is not None:
            # Whatever was tried, the daemon is alive and its state unchanged.
            self.assertEqual(self.d.rpc("config.get"), self.before)
        super().tearDown()

    def assertRpcError(self, method, params, code, errno_name=None, words=()):
        with self.assertRaises(RpcError) as cm:
            self.d.rpc(method, params)
        e = cm.exception
        self.assertEqual(e.code, code, e.message)
        if errno_name:
            self.assertEqual(e.data.get("error"), errno_name, e.message)
        for w in words:
            self.assertIn(w, e.message)
        return e

    def test_malformed_json_and_requests(self):
        for payload, code in ((b'{"jsonrpc": "2.0", "method": "version", "id": 1\n', -32700),
                              (b'not json at all\n', -32700),
                              (b'[1, 2]\n', -32600),
                              (b'{"jsonrpc": "1.0", "method": "version", "id": 1}\n', -32600),
                              (b'{"jsonrpc": "2.0", "method": 42, "id": 1}\n', -32600),
                              (b'{"jsonrpc": "2.0", "method": "port.add", "params": 7, '
                               b'"id": 1}\n', -32600)):
            replies = rpc_raw(self.d.ctl_sock, payload)
            flat = [x for r in replies for x in (r if isinstance(r, list) else [r])]
            codes = [r["error"]["code"] for r in flat]
            self.assertIn(code, codes, (payload, replies))

    def test_oversized_request_is_refused(self):
        big = b'{"jsonrpc": "2.0", "id": 1, "method": "version", "params": {"x": "' + \
            b"a" * (2 << 20) + b'"}}\n'
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.d.ctl_sock)
        try:
            s.sendall(big)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon stopped reading at 1 MiB and closed
        try:
            reply = s.recv(65536)
        except ConnectionResetError:
            reply = b""
        s.close()
        if reply:
            self.assertEqual(json.loads(reply.split(b"\n")[0])["error"]["code"], -32600)
        self.assertEqual(self.d.rpc("version")["version"], "0.1.0")

    def test_unknown_method(self):
        self.assertRpcError("port.explode", {"name": "a"}, -32601)

    def test_bad_arguments(self):
        cases = [
            ({"name": "c", "type": "vhost-user", "socket": "c.sock", "colour": "red"},
             ["colour"]),
            ({"name": "c", "type": "vhost-user"}, ["socket"]),
            ({"name": "c", "socket": "c.sock"}, ["type"]),
            ({"name": "c", "type": "tap", "socket": "c.sock"}, ["type"]),
            ({"name": "c", "type": "vhost-user", "socket": "c.sock", "queues": 0}, ["queues"]),
            ({"name": "c", "type": "vhost-user", "socket": "c.sock", "queues": "2"},
             ["queues"]),
            ({"name": "c", "type": "vhost-user", "socket": "c.sock", "tag": 4095}, ["tag"]),
            ({"name": "c", "type": "vhost-user", "socket": "c.sock", "mac": "01:00:5e:00:00:01"},
             ["mac"]),
            ({"name": "c", "type": "vhost-user", "socket": "c.sock", "mode": "both"}, ["mode"]),
            ({"name": "c", "type": "vhost-user", "socket": "x" * 200}, ["socket"]),
            ({"name": "bad name!", "type": "sink"}, ["bad name!"]),
            ({"name": "c", "type": "sink", "tag": 5, "trunks": [5]}, ["trunks"]),
        ]
        for params, words in cases:
            self.assertRpcError("port.add", params, -32602, words=words)
        self.assertRpcError("port.add", [1, 2], -32602)
        self.assertRpcError("bridge.add", {"name": "br1", "mac-aging-s": -1}, -32602,
                            words=["mac-aging-s"])
        self.assertRpcError("port.set", {"name": "a", "bridge": "nosuch"}, -32000, "ENOENT",
                            words=["nosuch"])
        self.assertRpcError("port.del", {"name": "nosuch"}, -32000, "ENOENT")

    def test_duplicates_and_references(self):
        self.assertRpcError("port.add", {"name": "a", "type": "sink"}, -32000, "EEXIST",
                            words=["port a"])
        self.assertRpcError("bridge.add", {"name": "br0"}, -32000, "EEXIST")
        self.assertRpcError("bridge.del", {"name": "br0"}, -32000, "EBUSY")
        self.assertRpcError("xconnect.add", {"name": "x", "ports": ["a", "b"]}, -32000,
                            "EBUSY")
        self.assertRpcError("xconnect.add", {"name": "x", "ports": ["zz", "a"]}, -32000,
                            "ENOENT", words=["zz"])

    def test_socket_paths_in_use(self):
        # The socket of another port.
        self.assertRpcError("port.add", {"name": "c", "type": "vhost-user", "socket": "a.sock"},
                            -32000, "EADDRINUSE", words=["port a"])
        # A socket another process listens on.
        tmp = tempfile.mkdtemp()
        path = os.path.join(tmp, "busy.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        try:
            self.assertRpcError("port.add", {"name": "c", "type": "vhost-user", "socket": path},
                                -32000, "EADDRINUSE", words=[path])
        finally:
            srv.close()
        # A regular file in the way.
        path = os.path.join(tmp, "file.sock")
        open(path, "w").close()
        self.assertRpcError("port.add", {"name": "c", "type": "vhost-user", "socket": path},
                            -32000, "EEXIST", words=["not a socket"])
        self.assertTrue(os.path.isfile(path))

    def test_impossible_cpu_lists(self):
        for cpus in ("0-3,^9x", "^0", "3-1", str(NCPU + 5), "100000", ""):
            self.assertRpcError("pmd.set", {"cpus": cpus}, -32602, words=["cpus"])
        self.assertRpcError("pmd.set", {"max-sleep-us": -5}, -32602)
        self.assertRpcError("log.set", {"level": "loud"}, -32602, words=["level"])

    def test_cli_errors_are_clear(self):
        rc, out, err = self.d.ctl("port", "add", "a", "type=sink", check=False)
        self.assertEqual(rc, 1)
        self.assertIn("port a: already exists", err)
        rc, out, err = self.d.ctl("pmd", "set", "cpus=0-3,^9x", check=False)
        self.assertEqual(rc, 1)
        self.assertIn("cpus", err)
        rc, out, err = self.d.ctl("frobnicate", check=False)
        self.assertEqual(rc, 2)


class LiveConfigTest(DaemonTestCase):

    def test_live_changes_save_and_restart(self):
        d = self.daemon(ports=[vhost_port("a"), vhost_port("b")])
        peer = self.peer({"a": (d.sock("a"), {"mac": MAC_A}),
                          "b": (d.sock("b"), {"mac": MAC_B})})
        d.wait_connected("a")
        d.wait_connected("b")
        peer.wait_forwarding("a", "b", dst=MAC_B)
        # Live: move both ports to a new bridge in VLAN 7 via the CLI, add a
        # sink, change the PMD sleep; traffic keeps flowing.
        d.ctl("bridge", "add", "br1", "mac-aging-s=60")
        d.ctl("port", "set", "a", "bridge=br1", "tag=7")
        d.ctl("port", "set", "b", "bridge=br1", "tag=7")
        d.ctl("port", "add", "s0", "type=sink", "bridge=br1", "tag=7")
        d.ctl("pmd", "set", "max-sleep-us=50")
        d.ctl("call", "log.set", '{"level": "warn"}')
        self.assertEqual(d.rpc("bridge.show", {"name": "br1"})["ports"], ["a", "b", "s0"])
        peer.wait_forwarding("a", "b", dst=MAC_B)
        peer.send("a", dst="ff:ff:ff:ff:ff:ff", count=100, size=64, flow=1)
        self.assertEqual(peer.recv("b", expect=100)["valid"], 100)
        deadline = time.monotonic() + 5
        while d.port_stats("s0")["tx"]["packets"] < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(d.port_stats("s0")["tx"]["packets"], 100)
        # Save, stop, restart from the saved file: same configuration.
        live = d.rpc("config.get")
        rc, out, err = d.ctl("save-config")
        self.assertIn(d.config_path, out + err)
        with open(d.config_path) as f:
            saved = json.load(f)
        self.assertEqual(saved, live)
        peer.close()
        self.assertEqual(d.stop(), 0)
        # A clean shutdown removes the sockets.
        self.assertFalse(os.path.exists(d.sock("a")))
        self.assertFalse(os.path.exists(d.ctl_sock))
        d.start(write_config=False)
        self.assertEqual(d.rpc("config.get"), live)

    def test_port_set_that_recreates_the_socket(self):
        d = self.daemon(ports=[vhost_port("a"), vhost_port("b")])
        # Moving a port to another socket path recreates it there...
        d.rpc("port.set", {"name": "a", "socket": "a2.sock", "queues": 2})
        self.assertFalse(os.path.exists(d.sock("a")))
        self.assertTrue(os.path.exists(d.sock("a2")))
        peer = self.peer({"a": (d.sock("a2"), {"mac": MAC_A}),
                          "b": (d.sock("b"), {"mac": MAC_B})})
        d.wait_connected("a")
        peer.wait_forwarding("a", "b", dst=MAC_B)
        peer.send("a", dst=MAC_B, count=100, size=100, flow=1)
        self.assertEqual(peer.recv("b", expect=100)["valid"], 100)
        peer.close()
        # ...and a change that cannot be made leaves the port as it was.
        tmp = tempfile.mkdtemp()
        busy = os.path.join(tmp, "busy.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(busy)
        srv.listen(1)
        before = d.rpc("port.show", {"name": "a"})
        try:
            with self.assertRaises(RpcError) as cm:
                d.rpc("port.set", {"name": "a", "socket": busy})
            self.assertEqual(cm.exception.data.get("error"), "EADDRINUSE")
        finally:
            srv.close()
        after = d.rpc("port.show", {"name": "a"})
        self.assertEqual(after["socket"], before["socket"])
        self.assertEqual(after["queues"], 2)
        self.assertTrue(os.path.exists(d.sock("a2")))

    def test_bad_config_file_is_rejected_with_location(self):
        d = Vhostd()
        self._daemons.append(d)
        os.makedirs(d.workdir, exist_ok=True)
        bad = os.path.join(d.workdir, "bad.json")
        with open(bad, "w") as f:
            f.write('{\n  "ports": [\n    {"name": "a", "type": "vhost-user",}\n  ]\n}\n')
        p = subprocess.run([VHOSTD, "--check", "-c", bad], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad.json:3:", p.stderr)
        with open(bad, "w") as f:
            json.dump({"ports": [{"name": "a", "type": "vhost-user", "socket": "a.sock",
                                  "queues": 99}]}, f)
        p = subprocess.run([VHOSTD, "--check", "-c", bad], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("port a", p.stderr)
        self.assertIn("queues", p.stderr)
        p = subprocess.run([VHOSTD, "--check"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_shipped_configs_are_valid(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        confs = [os.path.join(root, "configs", "vhostd.json")]
        ex = os.path.join(root, "configs", "examples")
        confs += [os.path.join(ex, f) for f in sorted(os.listdir(ex)) if f.endswith(".json")]
        self.assertGreater(len(confs), 2)
        for c in confs:
            p = subprocess.run([VHOSTD, "--check", "-c", c], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, "%s: %s" % (c, p.stderr))

    def test_second_instance_same_socket_fails_clearly(self):
        d = self.daemon(ports=[vhost_port("a")])
        d2 = Vhostd(ports=[vhost_port("a", socket=d.sock("a"))])
        self._daemons.append(d2)
        rc = d2.start(expect_fail=True)
        self.assertEqual(rc, 1)
        self.assertIn("in use", d2.log())
        # The first daemon is unharmed.
        self.assertTrue(os.path.exists(d.sock("a")))
        self.assertEqual(d.rpc("port.list")[0]["name"], "a")


if __name__ == "__main__":
    unittest.main()
