# SPDX-License-Identifier: BSD-3-Clause
"""Python driver for tests/tools/vu-peer, a DPDK net_virtio_user driver peer.

Example::

    with VuPeer(VU_PEER_BIN,
                ports={"a": ("/run/vhostd/a.sock", {"queues": 4}),
                       "b": ("/run/vhostd/b.sock", {"queues": 4})},
                cpu=1) as peer:
        peer.wait_link("a")
        peer.send("a", dst=peer.mac("b"), count=1000, size=64, queue=0, flow=1)
        r = peer.recv("b", expect=1000, timeout_ms=2000)
        assert r["valid"] == 1000 and r["flows"]["1"]["seqs_missing"] == 0

Every method sends one command line to the process and returns the parsed
JSON answer (a dict); an answer with "ok": false raises VuPeerError. See
vu_peer.c for the wire protocol.

Ports: ``{name: (socket_path, opts)}`` or ``{name: socket_path}``; opts keys:
``queues`` (default 1), ``mac``, ``server`` (bool: vu-peer listens on the
socket and the backend connects to it; the process then blocks until the
backend has connected), ``queue_size``, and any other net_virtio_user devarg
(e.g. ``packed_vq=1``, ``mrg_rxbuf=0``, ``in_order=1``), passed through.

Received frames are accounted continuously by vu-peer (also between commands
and while sending); ``recv`` returns, and resets, everything the port got
since the previous ``recv``/``drain``.
"""

import glob
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

__all__ = ["VuPeer", "VuPeerError", "cleanup_eal_files", "PROBE_FLOW"]

# Flow id used by wait_forwarding() probe frames.
PROBE_FLOW = 0xFFFFFFFF

_counter = itertools.count()


class VuPeerError(RuntimeError):
    """A command failed (reply has "ok": false) or the process misbehaved."""

    def __init__(self, message, reply=None, stderr_tail=None):
        text = message
        if stderr_tail:
            text += "\n--- vu-peer stderr (tail) ---\n" + stderr_tail
        super().__init__(text)
        self.reply = reply
        self.stderr_tail = stderr_tail


def _hugetlbfs_mounts():
    mounts = []
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and fields[2] == "hugetlbfs":
                    mounts.append(fields[1])
    except OSError:
        pass
    return mounts


def _runtime_dirs(prefix):
    dirs = []
    if os.geteuid() == 0:
        dirs.append(os.path.join("/var/run/dpdk", prefix))
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        dirs.append(os.path.join(xdg, "dpdk", prefix))
    dirs.append(os.path.join("/tmp/dpdk", prefix))
    return dirs


def cleanup_eal_files(prefix):
    """Remove the hugepage files and runtime dir that an EAL process with
    this --file-prefix left behind. Only call it for prefixes you created
    and whose process has exited."""
    if not prefix or "/" in prefix:
        raise ValueError("bad prefix %r" % (prefix,))
    for mnt in _hugetlbfs_mounts():
        for path in glob.glob(os.path.join(glob.escape(mnt), glob.escape(prefix) + "map_*")):
            try:
                os.unlink(path)
            except OSError:
                pass
    for d in _runtime_dirs(prefix):
        if os.path.isdir(d):
            shutil.rmtree(d, ignore_errors=True)


def _fmt(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class VuPeer:
    """A running vu-peer process (context manager)."""

    def __init__(self, binary, ports, cpu=0, prefix=None, mem_mb=128, eal_args=(),
                 log_level="*:notice", idle_us=None, wait=None, ready_timeout=60.0,
                 cmd_timeout=60.0, stderr_path=None, env=None):
        """Start vu-peer.

        binary: path of the vu-peer executable. ports: see module doc.
        cpu: CPU the single lcore is pinned to. prefix: EAL --file-prefix
        (default: a unique one). wait: wait until every port is up before
        returning (default: only if no port is in server mode; otherwise
        call wait_ready() once the backend runs). stderr_path: where the
        process's stderr goes (default: a temp file, see stderr_text()).
        """
        if not ports:
            raise ValueError("at least one port is needed")
        self.binary = binary
        self.ports = {}
        for name, spec in ports.items():
            if isinstance(spec, (tuple, list)):
                path, opts = spec[0], dict(spec[1] or {})
            else:
                path, opts = spec, {}
            self.ports[name] = (str(path), opts)
        self.cpu = cpu
        self.prefix = prefix or "vupeer%d_%d_%s" % (os.getpid(), next(_counter),
                                                    os.urandom(3).hex())
        self.cmd_timeout = cmd_timeout
        self.ready_timeout = ready_timeout
        self.info = None
        self.returncode = None
        self._buf = b""
        self._ready = False
        self._tmpdir = None
        self.proc = None

        if stderr_path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="vupeer-")
            stderr_path = os.path.join(self._tmpdir, "stderr.log")
        self.stderr_path = stderr_path

        argv = [binary, "--no-pci", "--single-file-segments",
                "--file-prefix=%s" % self.prefix, "-m", str(mem_mb),
                "--lcores", "0@%d" % cpu]
        if log_level:
            argv.append("--log-level=%s" % log_level)
        argv += list(eal_args)
        argv.append("--")
        for name, (path, opts) in self.ports.items():
            spec = "%s=%s" % (name, path)
            for key, val in opts.items():
                if val is None or (key == "server" and not val):
                    continue
                spec += ",%s=%s" % (key, _fmt(val))
            argv += ["--port", spec]
        if idle_us is not None:
            argv += ["--idle-us", str(idle_us)]
        self.argv = argv

        self._stderr_file = open(stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr_file, env=env,
                                         start_new_session=True)
        except Exception:
            self._stderr_file.close()
            self._cleanup_files()
            raise
        if wait is None:
            wait = not any(opts.get("server") for _, opts in self.ports.values())
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.close()
                raise

    # ------------------------------------------------------------ plumbing

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if self.proc is not None:
                self.close(timeout=2)
        except Exception:
            pass

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _stderr_tail(self, lines=30):
        return "\n".join(self.stderr_text().splitlines()[-lines:])

    def _readline(self, deadline):
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("vu-peer did not answer in time")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                code = self.proc.poll()
                if code is None:
                    try:
                        code = self.proc.wait(timeout=2)
                    except subprocess.TimeoutExpired:
                        code = None
                raise VuPeerError("vu-peer exited (status %s)" % code,
                                  stderr_tail=self._stderr_tail())
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def request(self, line, timeout=None, check=True):
        """Send one raw command line, return the parsed answer. With
        check=True an answer with "ok": false raises VuPeerError."""
        if "\n" in line:
            raise ValueError("command must be a single line")
        if self.proc is None or self.proc.poll() is not None:
            raise VuPeerError("vu-peer is not running (status %s)"
                              % (self.proc.returncode if self.proc else None),
                              stderr_tail=self._stderr_tail())
        if timeout is None:
            timeout = self.cmd_timeout
        if not self._ready:
            # The first answer only comes once every port is up.
            timeout = max(timeout, self.ready_timeout)
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise VuPeerError("cannot write to vu-peer: %s" % e,
                              stderr_tail=self._stderr_tail()) from e
        try:
            text = self._readline(time.monotonic() + timeout)
        except TimeoutError as e:
            raise VuPeerError("no answer to %r within %.1fs" % (line, timeout),
                              stderr_tail=self._stderr_tail()) from e
        self._ready = True
        try:
            reply = json.loads(text)
        except ValueError as e:
            raise VuPeerError("bad answer to %r: %r" % (line, text),
                              stderr_tail=self._stderr_tail()) from e
        if check and not reply.get("ok"):
            raise VuPeerError("%s: %s" % (line.split(" ", 1)[0], reply.get("error")), reply)
        return reply

    def _cmd(self, cmd, timeout=None, **kw):
        parts = [cmd]
        for key, val in kw.items():
            if val is None:
                continue
            parts.append("%s=%s" % (key, _fmt(val)))
        return self.request(" ".join(parts), timeout=timeout)

    # ------------------------------------------------------------ commands

    def ping(self, timeout=None):
        """{"ok":true,"pid":..,"ports":{name:{"port_id","queues","server",
        "multiseg","mac","path"}}}"""
        reply = self._cmd("ping", timeout=timeout)
        self.info = reply
        return reply

    def wait_ready(self, timeout=None):
        """Block until every port is up (server-mode ports: until the
        backend has connected); returns the ping answer."""
        return self.ping(timeout=self.ready_timeout if timeout is None else timeout)

    def mac(self, port):
        """The port's MAC address (lower case)."""
        if self.info is None:
            self.ping()
        return self.info["ports"][port]["mac"]

    def send(self, port, dst, count=1, size=64, queue=0, src=None, vlan=None, pcp=None,
             flow=0, burst=None, seq_start=None, timeout_ms=None, window=None,
             window_ms=None, ethertype=None, corrupt=False, timeout=None, gap_us=None):
        """Send count test frames of size bytes (Ethernet header and VLAN tag
        included, FCS excluded; 60..9000) with seqs seq_start.. on tx queue
        queue (src defaults to the port's MAC). timeout_ms: give up when the
        queue accepted nothing for that long (default 2000).

        window: at most that many frames of this command in flight (sent but
        not yet received back on any port of this vu-peer); default: half the
        smallest rx ring, in frames of this size; 0: no limit (full speed).
        If nothing comes back for window_ms (default 20) the in-flight
        frames are written off ("released") and sending continues.

        ethertype: send the same frames with another ethertype (counted as
        "other" by the receiver). corrupt=True: flip one payload byte per
        frame (the receiver must count them "invalid").

        gap_us: pacing, at most one burst (of `burst` frames; burst=1: one
        frame) every gap_us microseconds; give a `timeout` (s) covering
        count * gap_us.

        Returns {"ok","sent","requested","timed_out","window","released"}."""
        return self._cmd("send", timeout=timeout, port=port, queue=queue, count=count,
                         size=size, src=src, dst=dst, vlan=vlan, pcp=pcp, flow=flow,
                         burst=burst, seq_start=seq_start, timeout_ms=timeout_ms,
                         window=window, window_ms=window_ms,
                         ethertype=None if ethertype is None else "0x%04x" % ethertype,
                         corrupt=1 if corrupt else None, gap_us=gap_us)

    def recv(self, port, expect=None, timeout_ms=None, frames=None, max_ms=None, timeout=None):
        """Frames received on port since the last recv/drain. With expect:
        wait until that many arrived or timeout_ms (default 1000) passed;
        without: until the port was quiet for timeout_ms (at most max_ms,
        default 30000). frames: how many frame records to list (default 16).
        """
        if timeout is None:
            wait_ms = (timeout_ms or 1000) if expect is not None else (max_ms or 30000)
            timeout = self.cmd_timeout + wait_ms / 1000.0
        return self._cmd("recv", timeout=timeout, port=port, expect=expect,
                         timeout_ms=timeout_ms, frames=frames, max_ms=max_ms)

    def drain(self, port, timeout_ms=None):
        """Discard what the port received; {"ok","port","drained"}."""
        return self._cmd("drain", port=port, timeout_ms=timeout_ms)

    def stats(self, port, reset=False):
        """rte_eth_stats of the port (reset=True: zero them afterwards)."""
        return self._cmd("stats", port=port, reset=1 if reset else None)

    def link(self, port, wait_ms=None):
        """{"ok","port","up","speed","duplex","autoneg","mac"}; wait_ms: wait
        up to that long for the link to come up."""
        timeout = None if wait_ms is None else self.cmd_timeout + wait_ms / 1000.0
        return self._cmd("link", timeout=timeout, port=port, wait_ms=wait_ms)

    def wait_link(self, port, timeout=10.0):
        reply = self.link(port, wait_ms=int(timeout * 1000))
        if not reply["up"]:
            raise VuPeerError("link of port %s still down after %.1fs" % (port, timeout), reply)
        return reply

    def wait_forwarding(self, tx_port, rx_port, dst=None, queue=0, rx_peer=None, vlan=None,
                        timeout=10.0, src=None):
        """Send probe frames (flow PROBE_FLOW) from tx_port until one arrives
        on rx_port (of rx_peer, default self), then drain rx_port: use it to
        wait until a forwarding path is really set up. Returns the number of
        probes sent."""
        rx_peer = rx_peer or self
        if dst is None:
            dst = rx_peer.mac(rx_port)
        deadline = time.monotonic() + timeout
        seq = 0
        while True:
            self.send(tx_port, dst=dst, src=src, count=1, size=64, queue=queue, vlan=vlan,
                      flow=PROBE_FLOW, seq_start=seq)
            seq += 1
            reply = rx_peer.recv(rx_port, expect=1, timeout_ms=100, frames=0)
            if str(PROBE_FLOW) in reply["flows"]:
                rx_peer.drain(rx_port, timeout_ms=50)
                return seq
            if time.monotonic() > deadline:
                raise VuPeerError("no probe from %s queue %d reached %s within %.1fs"
                                  % (tx_port, queue, rx_port, timeout))

    # ------------------------------------------------------------- teardown

    def _cleanup_files(self):
        cleanup_eal_files(self.prefix)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def close(self, timeout=10.0):
        """quit, wait for exit; SIGTERM then SIGKILL on timeout. Removes the
        EAL files of this process's prefix. Returns the exit status."""
        if self.proc is None:
            return self.returncode
        proc = self.proc
        if proc.poll() is None:
            try:
                proc.stdin.write(b"quit\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):
                    try:
                        proc.send_signal(sig)
                    except ProcessLookupError:
                        break
                    try:
                        proc.wait(timeout=wait)
                        break
                    except subprocess.TimeoutExpired:
                        continue
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        self._stderr_file.close()
        self.returncode = proc.returncode
        self.proc = None
        # keep the log if the process did not exit cleanly
        if self.returncode not in (0, None) and self._tmpdir is not None:
            self._tmpdir = None
        cleanup_eal_files(self.prefix)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        return self.returncode
