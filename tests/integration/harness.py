# SPDX-License-Identifier: BSD-3-Clause
"""Integration-test harness: start a real vhostd, talk JSON-RPC to it.

Paths come from the environment that meson test sets (VHOSTD_BUILD: the
build dir); run a test by hand with
``VHOSTD_BUILD=build python3 tests/integration/test_net_switch.py -v``.
Needs root, 2 MiB hugepages and a mounted hugetlbfs (scripts/setup-host.sh).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("VHOSTD_BUILD", os.path.join(ROOT, "build")))
VHOSTD = os.path.join(BUILD, "vhostd")
VHOSTCTL = os.path.join(BUILD, "ctl", "vhostctl")
VU_PEER = os.path.join(BUILD, "tests", "tools", "vu-peer")

sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))

# The PMD runs on the last CPU, peers on CPU 0 (2-core CI machines).
NCPU = os.cpu_count() or 1
PMD_CPU = NCPU - 1
PEER_CPU = 0


class RpcError(Exception):
    def __init__(self, error):
        super().__init__("%s (code %s)" % (error.get("message"), error.get("code")))
        self.code = error.get("code")
        self.message = error.get("message", "")
        self.data = error.get("data") or {}


def rpc_raw(sock_path, payload, timeout=30.0):
    """Send raw bytes, return the decoded reply lines (list of objects)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return [json.loads(line) for line in buf.split(b"\n") if line.strip()]


def require_environment():
    """Skip (not fail) when the machine cannot run integration tests."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("integration tests need root")
    for path in (VHOSTD, VU_PEER):
        if not os.path.exists(path):
            raise unittest.SkipTest("%s is not built" % path)


class Vhostd:
    """A vhostd process with a config of our own, in a private run dir."""

    _seq = 0

    def __init__(self, ports=(), bridges=({"name": "br0"},), xconnects=(), pmd_cpus=None,
                 max_sleep_us=20, extra=None, workdir=None, scsi=(), luns=(),
                 pmd_mode=None, pmd_extra=None):
        Vhostd._seq += 1
        self.workdir = workdir or tempfile.mkdtemp(prefix="vhostd-it-")
        self.run_dir = os.path.join(self.workdir, "run")
        self.ctl_sock = os.path.join(self.run_dir, "vhostd.sock")
        self.prefix = "vit%d_%d" % (os.getpid(), Vhostd._seq)
        self.config = {
            "vhostd": {"run-dir": self.run_dir, "control-socket": self.ctl_sock,
                       "mlockall": False, "log-level": "debug"},
            "eal": {"file-prefix": self.prefix},
            "pmd": {"cpus": str(PMD_CPU if pmd_cpus is None else pmd_cpus),
                    "max-sleep-us": max_sleep_us},
            "bridges": list(bridges),
            "ports": list(ports),
            "xconnects": list(xconnects),
        }
        # vhost-user-scsi controllers and their LUNs (configs/examples/scsi-luns.json);
        # left out when empty, so configs of the net-only tests are unchanged.
        if scsi:
            self.config["scsi"] = list(scsi)
        if luns:
            self.config["luns"] = list(luns)
        # PMD governor (README "pmd"): mode, and any other members of the pmd
        # object (halt-poll-ns, threads, ...); none: the daemon's defaults.
        if pmd_mode is not None:
            self.config["pmd"]["mode"] = pmd_mode
        if pmd_extra:
            self.config["pmd"].update(pmd_extra)
        if extra:
            self.config.update(extra)
        self.config_path = os.path.join(self.workdir, "vhostd.json")
        self.log_path = os.path.join(self.workdir, "vhostd.log")
        self.proc = None

    def sock(self, name):
        return os.path.join(self.run_dir, name + ".sock")

    def start(self, timeout=30.0, expect_fail=False, write_config=True):
        if write_config:
            with open(self.config_path, "w") as f:
                json.dump(self.config, f, indent=1)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([VHOSTD, "-c", self.config_path], stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if expect_fail:
                    return self.proc.returncode
                raise AssertionError("vhostd exited with %d:\n%s" %
                                     (self.proc.returncode, self.log()))
            if os.path.exists(self.ctl_sock):
                try:
                    self.rpc("version")
                    return 0
                except (OSError, RpcError):
                    pass
            time.sleep(0.05)
        raise AssertionError("vhostd did not come up:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-8000:]
        except OSError:
            return ""

    def rpc(self, method, params=None, timeout=30.0):
        req = {"jsonrpc": "2.0", "id": 1, "method": method}
        if params is not None:
            req["params"] = params
        replies = rpc_raw(self.ctl_sock, (json.dumps(req) + "\n").encode(), timeout)
        reply = replies[0]
        if "error" in reply:
            raise RpcError(reply["error"])
        return reply["result"]

    def ctl(self, *args, check=True):
        """Run vhostctl; returns (exit code, stdout, stderr)."""
        p = subprocess.run([VHOSTCTL, "-s", self.ctl_sock] + list(args),
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("vhostctl %s failed (%d): %s" % (args, p.returncode, p.stderr))
        return p.returncode, p.stdout, p.stderr

    def port_stats(self, name):
        return self.rpc("stats.get", {"port": name})["ports"][0]

    def wait_connected(self, name, timeout=20.0, queues=None):
        """Wait until port `name` has a frontend (and `queues` rx queues on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.rpc("port.show", {"name": name})
            if st["status"]["connected"]:
                qs = st["stats"]["queues"]
                if queues is None or sum(1 for q in qs if q["rx-enabled"]) >= queues:
                    return st
            time.sleep(0.05)
        raise AssertionError("port %s not connected:\n%s" % (name, self.log()))

    def stop(self, timeout=20.0):
        """SIGTERM; returns the exit code (must be 0 for a clean shutdown)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("vhostd ignored SIGTERM:\n" + self.log())
        self._log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self._log.close()
        self.proc = None

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
        # DPDK's runtime dir of this instance (hugepage files are unlinked
        # by --huge-unlink).
        shutil.rmtree(os.path.join("/var/run/dpdk", self.prefix), ignore_errors=True)


def vhost_port(name, bridge="br0", **kw):
    p = {"name": name, "type": "vhost-user", "socket": name + ".sock"}
    if bridge:
        p["bridge"] = bridge
    p.update(kw)
    return p


# What AddressSanitizer, LeakSanitizer and UBSan print when they find something.
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error: ")


class DaemonTestCase(unittest.TestCase):
    """Keeps the daemon log of a failed test and always cleans up."""

    def setUp(self):
        require_environment()
        self._daemons = []
        self._peers = []
        self._bg = []

    def popen_bg(self, argv):
        """Start a helper process (text pipes); it is killed in the test's cleanups.

        The cleanup is registered with the first helper, so it runs before the
        ones the subclass's setUp registered (e.g. removing its temp dir).
        """
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if not self._bg:
            self.addCleanup(self._kill_bg)
        self._bg.append(p)
        return p

    def _kill_bg(self):
        for p in self._bg:
            if p.poll() is None:
                p.kill()
                p.wait()

    def daemon(self, *args, start=True, **kw):
        d = Vhostd(*args, **kw)
        self._daemons.append(d)
        if start:
            d.start()
        return d

    def peer(self, ports, **kw):
        from vupeer import VuPeer
        kw.setdefault("cpu", PEER_CPU)
        p = VuPeer(VU_PEER, ports, **kw)
        self._peers.append(p)
        return p

    def tearDown(self):
        for p in self._peers:
            try:
                p.close()
            except Exception:
                pass
        failed = any(err for _, err in (self._outcome.result.errors +
                                        self._outcome.result.failures)
                     if _ is self) if hasattr(self, "_outcome") else False
        reports = []
        for d in self._daemons:
            try:
                with open(d.log_path, errors="replace") as f:
                    report = SANITIZER_REPORT.search(f.read())
            except OSError:
                report = None
            if failed or report:
                sys.stderr.write("---- vhostd log (%s) ----\n%s\n" % (d.workdir, d.log()))
            if report:
                reports.append(d.workdir)
            d.cleanup()
        # A sanitizer build (make test's ASan+UBSan run): a report fails the test.
        if reports and not failed:
            self.fail("sanitizer report in the vhostd log of %s" % ", ".join(reports))
