"""Boot a real Linux guest under QEMU (TCG) with vhost-user devices.

Python 3 stdlib only. Used by vhostd's integration tests; `selftest.py` next
to this file proves it works without vhostd.

How a test reaches the guest
----------------------------
`build_images()` runs build-initramfs.sh once (cached in tests/guest/cache/ or
$VHOSTD_GUEST_CACHE): an ELF `vmlinux` (PVH boot; bzImage fallback) and a
generic `initramfs.cpio.gz` (busybox, virtio/scsi/ext4 modules, /init,
/vt/lib.sh).

The test script travels in a second, uncompressed cpio archive that `Guest`
appends to a per-guest copy of that initramfs (QEMU takes one -initrd; the
kernel unpacks concatenated archives one after the other). It holds
/vt/test.sh (the test's script), /vt/setup.sh (network set-up generated from
the NetDev list) and any `files=` the test ships (e.g. a data pattern). There
is no size limit, unlike the kernel command line (2 KiB).

/init loads the modules, then runs `. /vt/lib.sh; . /vt/setup.sh; . /vt/test.sh`
in one busybox `sh`, reports `VT-EXIT rc=N` and powers off (`poweroff -f`).

Two serial ports:
  ttyS0  console (kernel + script stdout/stderr)  -> <workdir>/console.log
  ttyS1  control channel, raw, both directions    -> <workdir>/ctl.log
Lines starting with "VT-" on ttyS1 are markers:
  VT-BOOTED uptime=S        /init is up (guest uptime in seconds)
  VT-RESULT key=value       vt_result key value   -> results["key"] = "value"
  VT-MARK name              vt_mark name          -> Guest.wait_marker("name")
  VT-LOG text / VT-ERROR text (vt_die text; exits 125)
  VT-EXIT rc=N              the script's exit status
The host can send a line to the guest with Guest.send("go"); the guest reads
it with `vt_wait_host [TIMEOUT]`.

Guest-side helpers (/vt/lib.sh, see build-initramfs.sh): vt_result, vt_mark,
vt_log, vt_die, vt_wait_host, vt_net_up IF|MAC ADDR/PFX, vt_ifname_by_mac,
vt_wait_carrier, vt_wait_file, vt_queues IF ("RX TX"), vt_ping_count DEST N,
vt_disks. busybox provides ping, ip, dd (oflag=direct), md5sum, sha256sum,
mke2fs (no mkfs.ext2 link; mount -t ext2 works, ext4 module loaded), mount,
taskset (pin a ping to a vCPU = to a tx queue), nc, ...

Example
-------
    from guest import Guest, NetDev, build_images
    build_images()
    with Guest('''
            vt_result queues "$(vt_queues eth0)"
            vt_result ping_rx "$(vt_ping_count 10.0.0.2 5)"
        ''',
        net=[NetDev('/tmp/x/vhost0.sock', queues=2, ip='10.0.0.1/24')],
        timeout=120) as g:
        rc, results = g.wait()
    assert rc == 0 and results['ping_rx'] == '5'

vhost-user net devices get `vectors=0` (QEMU 7.2 under TCG segfaults on a
vhost-user virtio-net with MSI-X). A NetDev/ScsiDev/BlkDev with server=False
(the default) makes QEMU connect to an existing socket: Guest.start() waits
for it to appear (socket_wait seconds). With server=True QEMU listens, and
does not boot until the backend connects.

Environment: VHOSTD_GUEST_CACHE (image cache dir), VHOSTD_GUEST_ACCEL (QEMU
-accel value, default "tcg,thread=multi"), VHOSTD_GUEST_KEEP=1 (keep every
work dir; by default it is kept only when something failed).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_SCRIPT = os.path.join(HERE, 'build-initramfs.sh')

__all__ = ['build_images', 'Images', 'Guest', 'NetDev', 'ScsiDev', 'BlkDev',
           'QemuScsiDev', 'ScsiDisk',
           'GuestError', 'GuestTimeout', 'Testpmd', 'ensure_packages',
           'ensure_hugepages', 'make_cpio']


class GuestError(Exception):
    """The guest did not complete: QEMU failed, the kernel panicked, ..."""


class GuestTimeout(GuestError):
    """The guest did not finish in time (QEMU has been killed)."""


# --------------------------------------------------------------------------
# images

@dataclasses.dataclass(frozen=True)
class Images:
    cache: str
    kernel: str        # path to vmlinux (ELF, PVH) or the bzImage copy
    kernel_kind: str   # "vmlinux" or "bzImage"
    initramfs: str     # path to initramfs.cpio.gz


_images: Images | None = None


def build_images(force: bool = False, install: bool = True) -> Images:
    """Build (or reuse) the kernel + initramfs; returns their paths.

    Runs build-initramfs.sh, which installs missing Debian packages (as
    root) unless install=False. Cheap when up to date (~50 ms).
    """
    global _images
    if _images is not None and not force:
        return _images
    cmd = ['bash', BUILD_SCRIPT]
    if force:
        cmd.append('--force')
    if not install:
        cmd.append('--no-install')
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if p.returncode != 0:
        raise GuestError('build-initramfs.sh failed (%d):\n%s'
                         % (p.returncode, p.stderr[-4000:]))
    cache = p.stdout.strip().splitlines()[-1]
    with open(os.path.join(cache, 'kernel')) as f:
        kind = f.read().strip()
    _images = Images(cache=cache, kernel=os.path.join(cache, 'vmlinux'),
                     kernel_kind=kind,
                     initramfs=os.path.join(cache, 'initramfs.cpio.gz'))
    return _images


def make_cpio(files: dict[str, bytes | tuple[bytes, int]]) -> bytes:
    """An uncompressed newc cpio archive.

    files maps an absolute guest path to its content (bytes, mode 0644) or
    (content, mode). Parent directories are added.
    """
    out = io.BytesIO()
    ino = [0x7600]

    def entry(name: str, mode: int, data: bytes = b''):
        ino[0] += 1
        nm = name.encode() + b'\0'
        hdr = '070701' + ''.join('%08X' % v for v in (
            ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nm), 0))
        out.write(hdr.encode() + nm)
        out.write(b'\0' * (-(110 + len(nm)) % 4))
        out.write(data)
        out.write(b'\0' * (-len(data) % 4))

    dirs = set()
    for path in sorted(files):
        parts = path.strip('/').split('/')
        for i in range(1, len(parts)):
            d = '/'.join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                entry(d, 0o040755)
    for path in sorted(files):
        v = files[path]
        data, mode = (v if isinstance(v, tuple) else (v, 0o644))
        entry(path.strip('/'), 0o100000 | mode, data)
    entry('TRAILER!!!', 0)
    out.write(b'\0' * (-out.tell() % 512))
    return out.getvalue()


# --------------------------------------------------------------------------
# devices

@dataclasses.dataclass
class NetDev:
    """A vhost-user virtio-net device.

    socket: the vhost-user unix socket.
    server: False: QEMU connects to an existing socket (backend is server);
            True: QEMU listens on it (backend connects, e.g. vhostd client mode).
    queues: queue pairs (netdev queues=; mq=on when > 1).
    mac:    default 52:54:00:00:00:NN (NN = index + 1).
    ip:     "10.0.0.1/24": /vt/setup.sh brings the interface (found by MAC)
            up with this address and waits for carrier before the script.
    reconnect: client mode only: QEMU reconnects every N s after the backend
            goes away (chardev reconnect=N).
    vectors: MSI-X vectors; keep 0 under TCG (QEMU 7.2 crashes otherwise).
    extra:  appended to the -device string (",host_mtu=9000" ...).
    """
    socket: str
    queues: int = 1
    mac: str | None = None
    server: bool = False
    ip: str | None = None
    reconnect: int = 0
    vectors: int = 0
    extra: str = ''


@dataclasses.dataclass
class ScsiDev:
    """A vhost-user-scsi-pci device (num_queues request queues)."""
    socket: str
    num_queues: int = 1
    server: bool = False
    reconnect: int = 0
    extra: str = ''


@dataclasses.dataclass
class ScsiDisk:
    """A disk of a QemuScsiDev: QEMU's scsi-hd on a raw file (or block dev).

    target/lun: its address on the controller (scsi-id/lun of scsi-hd).
    vendor/product/serial: INQUIRY strings (scsi-hd limits: 8/16 chars).
    cache:  "none" (O_DIRECT on the host, like vhostd's cache=none) or
            "writeback" (page cache; files on tmpfs need this).
    """
    path: str
    target: int = 0
    lun: int = 0
    vendor: str | None = None
    product: str | None = None
    serial: str | None = None
    cache: str = 'writeback'
    readonly: bool = False
    extra: str = ''


@dataclasses.dataclass
class QemuScsiDev:
    """QEMU's built-in virtio-scsi-pci with scsi-hd disks (no vhost-user).

    The guest runs the same virtio_scsi driver as with vhost-user-scsi-pci,
    so a test written against it can be pointed at vhostd by swapping this
    for a ScsiDev. Device ids: vscsiN (controller N of the Guest's
    qemu_scsi list), disks vscsiN-tT-lL (block node of the same name);
    disks can be hot-added/removed with Guest.scsi_hot_add/_remove (QEMU
    raises VIRTIO_SCSI_T_TRANSPORT_RESET events, the guest adds the
    device without a rescan).
    """
    disks: list = dataclasses.field(default_factory=list)
    num_queues: int = 1
    extra: str = ''


def _scsi_disk_ids(ctrl: int, d: ScsiDisk) -> tuple[str, str]:
    dev = 'vscsi%d-t%d-l%d' % (ctrl, d.target, d.lun)
    return dev, dev + '-file'


def _scsi_blockdev(ctrl: int, d: ScsiDisk) -> dict:
    _, node = _scsi_disk_ids(ctrl, d)
    if d.cache not in ('none', 'writeback'):
        raise ValueError('ScsiDisk.cache must be "none" or "writeback"')
    return {'driver': 'file', 'node-name': node, 'filename': d.path,
            'cache': {'direct': d.cache == 'none', 'no-flush': False},
            'read-only': d.readonly}


def _scsi_hd_props(ctrl: int, d: ScsiDisk) -> dict:
    dev, node = _scsi_disk_ids(ctrl, d)
    props = {'driver': 'scsi-hd', 'id': dev, 'drive': node,
             'bus': 'vscsi%d.0' % ctrl, 'channel': 0, 'scsi-id': d.target,
             'lun': d.lun}
    for k in ('vendor', 'product', 'serial'):
        v = getattr(d, k)
        if v is not None:
            props[k] = v
    return props


@dataclasses.dataclass
class BlkDev:
    """A vhost-user-blk-pci device (num_queues queues)."""
    socket: str
    num_queues: int = 1
    server: bool = False
    reconnect: int = 0
    extra: str = ''


def _chardev(cid: str, dev) -> str:
    s = 'socket,id=%s,path=%s' % (cid, dev.socket)
    if dev.server:
        s += ',server=on,wait=off'
    elif dev.reconnect:
        s += ',reconnect=%d' % dev.reconnect
    return s


def _tail(path: str, n: int = 40) -> str:
    try:
        with open(path, 'rb') as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            lines = f.read().decode('utf-8', 'replace').splitlines()
        return '\n'.join(lines[-n:])
    except OSError:
        return '(no %s)' % path


# --------------------------------------------------------------------------
# the guest

class Guest:
    """One QEMU guest running one test script.

    Guest(script, net=[NetDev...], scsi=[ScsiDev...], blk=[BlkDev...],
          timeout=120, ...) — use as a context manager (starts on enter,
          always kills QEMU on exit), then wait() -> (rc, results).

    script     shell text run by busybox sh after /vt/lib.sh and the network
               set-up; its exit status is the rc that wait() returns.
    timeout    seconds from start() until QEMU is killed (GuestTimeout).
    files      {guest_path: bytes | (bytes, mode) | host path str} shipped in
               the initrd.
    mem_mb, smp  guest size (default 1024 MiB, 2 vCPUs).
    mem_backend  "memfd" (default) or "hugepages" (/dev/hugepages file).
    workdir    where the logs, initrd, QMP and control FIFOs go (default: a
               new /tmp/vhostd-guest-* dir, removed unless kept).
    cmdline    extra kernel command line.
    qemu_args  extra QEMU arguments (list).
    qemu_scsi  [QemuScsiDev...]: QEMU's own virtio-scsi-pci controllers with
               file-backed scsi-hd disks (validation peer of vhost-user-scsi);
               hot-add more with scsi_hot_add().
    socket_wait  seconds to wait for client-mode sockets to exist.

    After start: .workdir, .console_log, .qmp_path, .markers (raw VT- lines),
    .results (dict), .rc, .boot_seconds (host time start -> VT-BOOTED).
    """

    def __init__(self, script: str, net: Iterable[NetDev] = (),
                 scsi: Iterable[ScsiDev] = (), blk: Iterable[BlkDev] = (),
                 qemu_scsi: Iterable[QemuScsiDev] = (),
                 timeout: float = 120, files: dict | None = None,
                 mem_mb: int = 1024, smp: int = 2, mem_backend: str = 'memfd',
                 workdir: str | None = None, name: str = 'guest',
                 cmdline: str = '', qemu_args: Iterable[str] = (),
                 socket_wait: float = 30, keep: bool | None = None):
        self.script = script
        self.net = list(net)
        self.scsi = list(scsi)
        self.blk = list(blk)
        self.qemu_scsi = list(qemu_scsi)
        self.timeout = timeout
        self.files = dict(files or {})
        self.mem_mb = mem_mb
        self.smp = smp
        self.mem_backend = mem_backend
        self.name = name
        self.cmdline = cmdline
        self.qemu_args = list(qemu_args)
        self.socket_wait = socket_wait
        self._own_workdir = workdir is None
        self.workdir = workdir
        if keep is None:
            keep = os.environ.get('VHOSTD_GUEST_KEEP') == '1'
        self.keep = keep
        for i, n in enumerate(self.net):
            if n.mac is None:
                n.mac = '52:54:00:00:00:%02x' % (i + 1)
        self.proc: subprocess.Popen | None = None
        self.markers: list[str] = []
        self.results: dict[str, str] = {}
        self.rc: int | None = None
        self.boot_seconds: float | None = None
        self.t_start: float | None = None
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._ctl_in = self._ctl_out = None
        self._failed = False

    # -- set-up ------------------------------------------------------------
    def _setup_script(self) -> str:
        lines = ['# generated by guest.py']
        for n in self.net:
            if n.ip:
                lines.append('vt_net_up %s %s || vt_die "net set-up %s %s failed"'
                             % (n.mac, n.ip, n.mac, n.ip))
        return '\n'.join(lines) + '\n'

    def _initrd(self, path: str) -> None:
        img = build_images()
        files = {'/vt/test.sh': (self.script.encode(), 0o755),
                 '/vt/setup.sh': (self._setup_script().encode(), 0o644)}
        for gp, v in self.files.items():
            if isinstance(v, str):
                with open(v, 'rb') as f:
                    v = (f.read(), os.stat(v).st_mode & 0o777)
            files[gp] = v
        with open(img.initramfs, 'rb') as src, open(path, 'wb') as dst:
            shutil.copyfileobj(src, dst)
            dst.write(b'\0' * (-dst.tell() % 4))
            dst.write(make_cpio(files))

    def qemu_command(self, initrd: str) -> list[str]:
        img = build_images()
        w = self.workdir
        accel = os.environ.get('VHOSTD_GUEST_ACCEL', 'tcg,thread=multi')
        m = self.mem_mb
        if self.mem_backend == 'hugepages':
            mem = ('memory-backend-file,id=mem,size=%dM,mem-path=/dev/hugepages,'
                   'share=on' % m)
        else:
            mem = 'memory-backend-memfd,id=mem,size=%dM,share=on' % m
        append = ('console=ttyS0,115200 panic=-1 rdinit=/init '
                  '8250.nr_uarts=2 mitigations=off ' + self.cmdline).strip()
        cmd = ['qemu-system-x86_64', '-name', self.name,
               '-machine', 'q35', '-accel', accel, '-cpu', 'max',
               '-smp', str(self.smp), '-m', '%dM' % m,
               '-object', mem, '-numa', 'node,memdev=mem',
               '-nodefaults', '-no-user-config', '-display', 'none',
               '-no-reboot', '-monitor', 'none',
               '-chardev', 'file,id=con,path=%s' % self.console_log,
               '-serial', 'chardev:con',
               '-chardev', 'pipe,id=ctl,path=%s' % os.path.join(w, 'ctl'),
               '-serial', 'chardev:ctl',
               '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path,
               '-kernel', img.kernel, '-initrd', initrd, '-append', append]
        for i, n in enumerate(self.net):
            cmd += ['-chardev', _chardev('netc%d' % i, n),
                    '-netdev', 'vhost-user,id=net%d,chardev=netc%d,queues=%d'
                    % (i, i, n.queues),
                    '-device', 'virtio-net-pci,netdev=net%d,mac=%s,vectors=%d%s%s'
                    % (i, n.mac, n.vectors, ',mq=on' if n.queues > 1 else '',
                       n.extra)]
        for i, d in enumerate(self.scsi):
            cmd += ['-chardev', _chardev('scsic%d' % i, d),
                    '-device', 'vhost-user-scsi-pci,id=scsi%d,chardev=scsic%d,'
                    'num_queues=%d%s' % (i, i, d.num_queues, d.extra)]
        for i, c in enumerate(self.qemu_scsi):
            cmd += ['-device', 'virtio-scsi-pci,id=vscsi%d,num_queues=%d%s'
                    % (i, c.num_queues, c.extra)]
            for d in c.disks:
                props = _scsi_hd_props(i, d)
                cmd += ['-blockdev', json.dumps(_scsi_blockdev(i, d)),
                        '-device', ','.join(
                            '%s=%s' % (k, v) for k, v in props.items())
                        + d.extra]
        for i, d in enumerate(self.blk):
            cmd += ['-chardev', _chardev('blkc%d' % i, d),
                    '-device', 'vhost-user-blk-pci,id=blk%d,chardev=blkc%d,'
                    'num-queues=%d%s' % (i, i, d.num_queues, d.extra)]
        return cmd + self.qemu_args

    def start(self) -> 'Guest':
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix='vhostd-guest-')
        else:
            os.makedirs(self.workdir, exist_ok=True)
        w = self.workdir
        self.console_log = os.path.join(w, 'console.log')
        self.ctl_log = os.path.join(w, 'ctl.log')
        self.qemu_log = os.path.join(w, 'qemu.log')
        self.qmp_path = os.path.join(w, 'qmp.sock')
        try:
            initrd = os.path.join(w, 'initrd.img')
            self._initrd(initrd)
            for suffix in ('in', 'out'):
                p = os.path.join(w, 'ctl.' + suffix)
                if os.path.exists(p):
                    os.unlink(p)
                os.mkfifo(p, 0o600)
            # O_RDWR: opening a FIFO this way never blocks, whoever is there.
            self._ctl_out = os.open(os.path.join(w, 'ctl.out'),
                                    os.O_RDWR | os.O_NONBLOCK)
            self._ctl_in = os.open(os.path.join(w, 'ctl.in'), os.O_RDWR)
            self._wait_client_sockets()
            cmd = self.qemu_command(initrd)
            with open(os.path.join(w, 'qemu.cmd'), 'w') as f:
                f.write(' '.join(shlex.quote(c) for c in cmd) + '\n')
            self._qemu_log_f = open(self.qemu_log, 'wb')
            self.t_start = time.monotonic()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=self._qemu_log_f,
                                         stderr=subprocess.STDOUT,
                                         start_new_session=True)
            self._reader = threading.Thread(target=self._read_ctl,
                                            name='guest-ctl', daemon=True)
            self._reader.start()
        except BaseException:
            self._failed = True
            self.close()
            raise
        return self

    def _wait_client_sockets(self) -> None:
        deadline = time.monotonic() + self.socket_wait
        for d in self.net + self.scsi + self.blk:
            if d.server or d.reconnect:
                continue
            while not os.path.exists(d.socket):
                if time.monotonic() > deadline:
                    raise GuestError('vhost-user socket %s did not appear in %ss'
                                     % (d.socket, self.socket_wait))
                time.sleep(0.05)

    # -- control channel ---------------------------------------------------
    def _read_ctl(self) -> None:
        buf = b''
        with open(self.ctl_log, 'ab') as logf:
            while True:
                exited = self.proc.poll() is not None
                r, _, _ = select.select([self._ctl_out], [], [], 0.1)
                data = b''
                if r:
                    try:
                        data = os.read(self._ctl_out, 65536)
                    except BlockingIOError:
                        data = b''
                if data:
                    logf.write(data)
                    logf.flush()
                    buf += data
                    *lines, buf = buf.split(b'\n')
                    for ln in lines:
                        self._on_line(ln.decode('utf-8', 'replace'))
                    continue
                if exited or self._stop.is_set():
                    break
        if buf:
            self._on_line(buf.decode('utf-8', 'replace'))
        with self._cond:
            self._cond.notify_all()

    def _on_line(self, line: str) -> None:
        line = line.strip('\r\n\0 ')
        i = line.find('VT-')
        if i < 0:
            return
        line = line[i:]
        with self._cond:
            self.markers.append(line)
            kind, _, rest = line.partition(' ')
            if kind == 'VT-RESULT':
                k, _, v = rest.partition('=')
                self.results[k] = v
            elif kind == 'VT-EXIT':
                m = re.match(r'rc=(-?\d+)', rest)
                self.rc = int(m.group(1)) if m else -1
            elif kind == 'VT-BOOTED' and self.boot_seconds is None:
                self.boot_seconds = time.monotonic() - self.t_start
            self._cond.notify_all()

    def send(self, line: str) -> None:
        """Send one line to the guest (read there with vt_wait_host)."""
        os.write(self._ctl_in, (line.rstrip('\n') + '\n').encode())

    def _deadline(self, timeout: float | None) -> float:
        if timeout is not None:
            return time.monotonic() + timeout
        return self.t_start + self.timeout

    def wait_marker(self, name: str, timeout: float | None = None) -> None:
        """Wait for `vt_mark NAME` (or, with a "VT-" prefix, any exact line).

        Raises GuestError if the guest exits first, GuestTimeout (and kills
        QEMU) when the deadline (default: the guest's overall timeout) passes.
        """
        want = name if name.startswith('VT-') else 'VT-MARK ' + name
        deadline = self._deadline(timeout)
        with self._cond:
            while want not in self.markers:
                if self.rc is not None or not self._reader.is_alive():
                    self._fail(GuestError, 'guest ended before marker %r' % want)
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fail(GuestTimeout, 'timeout waiting for marker %r' % want)
                self._cond.wait(min(left, 0.5))

    def wait(self, timeout: float | None = None) -> tuple[int, dict[str, str]]:
        """Wait for the script to finish and QEMU to exit.

        Returns (rc, results): the script's exit status and the dict of its
        vt_result KEY VALUE reports (raw lines in .markers). Raises
        GuestTimeout / GuestError (QEMU killed, logs kept) otherwise.
        """
        deadline = self._deadline(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(GuestTimeout, 'guest timed out after %.0fs'
                           % (time.monotonic() - self.t_start))
            try:
                self.proc.wait(timeout=min(left, 0.5))
                break
            except subprocess.TimeoutExpired:
                pass
            with self._cond:
                rc = self.rc
            if rc is not None:
                # The script is done; poweroff should follow within seconds.
                try:
                    self.proc.wait(timeout=min(15, max(1, left)))
                except subprocess.TimeoutExpired:
                    self._kill()
                break
        self._reader.join(5)
        with self._cond:
            if self.rc is None:
                self._fail(GuestError, 'QEMU exited with status %s without VT-EXIT'
                           % self.proc.returncode)
            return self.rc, dict(self.results)

    # -- diagnostics / control --------------------------------------------
    def console(self) -> str:
        with open(self.console_log, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def describe(self, n: int = 40) -> str:
        return ('--- %s: workdir %s\n--- qemu.log:\n%s\n--- console (last %d lines):\n%s'
                % (self.name, self.workdir, _tail(self.qemu_log, 20), n,
                   _tail(self.console_log, n)))

    def _fail(self, cls, msg: str):
        self._failed = True
        self._kill()
        raise cls('%s\n%s' % (msg, self.describe()))

    def qmp(self, command: str, **arguments):
        """Run one QMP command (e.g. qmp('set_link', name='net0', up=False))
        and return its "return" value; raises GuestError on a QMP error."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(self.qmp_path)
            f = s.makefile('rwb')

            def call(cmd, args=None):
                msg = {'execute': cmd}
                if args:
                    msg['arguments'] = args
                f.write(json.dumps(msg).encode() + b'\n')
                f.flush()
                while True:
                    line = f.readline()
                    if not line:
                        raise GuestError('QMP connection closed')
                    r = json.loads(line)
                    if 'return' in r:
                        return r['return']
                    if 'error' in r:
                        raise GuestError('QMP %s: %s' % (cmd, r['error']))

            f.readline()  # greeting
            call('qmp_capabilities')
            return call(command, arguments)

    def scsi_hot_add(self, ctrl: int, disk: ScsiDisk) -> str:
        """Hot-add a scsi-hd to QemuScsiDev number `ctrl` (blockdev-add +
        device_add); returns the device id. The guest's virtio_scsi driver
        gets a TRANSPORT_RESET/RESCAN event and adds the disk by itself."""
        self.qmp('blockdev-add', **_scsi_blockdev(ctrl, disk))
        props = _scsi_hd_props(ctrl, disk)
        self.qmp('device_add', **props)
        return props['id']

    def scsi_hot_remove(self, ctrl: int, disk: ScsiDisk) -> None:
        """device_del a disk added with scsi_hot_add (or on the command line)
        and delete its block node once QEMU released it."""
        dev, node = _scsi_disk_ids(ctrl, disk)
        self.qmp('device_del', id=dev)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.qmp('blockdev-del', **{'node-name': node})
                return
            except GuestError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _kill(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()

    def close(self) -> None:
        """Kill QEMU if still running, stop the reader, clean up."""
        self._kill()
        self._stop.set()
        if self._reader is not None:
            self._reader.join(5)
        for fd in (self._ctl_in, self._ctl_out):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._ctl_in = self._ctl_out = None
        if getattr(self, '_qemu_log_f', None):
            self._qemu_log_f.close()
            self._qemu_log_f = None
        if self.workdir and self._own_workdir and not (self.keep or self._failed):
            shutil.rmtree(self.workdir, ignore_errors=True)
        elif self.workdir and self._failed:
            print('guest %s: logs kept in %s' % (self.name, self.workdir),
                  file=sys.stderr)

    def __enter__(self) -> 'Guest':
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._failed = True
        self.close()


# --------------------------------------------------------------------------
# host helpers

def ensure_packages(cmds: dict[str, str]) -> None:
    """Install Debian packages for missing commands: {command: package}."""
    missing = sorted({pkg for cmd, pkg in cmds.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise GuestError('missing packages %s (need root)' % missing)
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    subprocess.run(['apt-get', 'update', '-q'], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    subprocess.run(['apt-get', 'install', '-y', '-q', '--no-install-recommends']
                   + missing, check=True, env=env, stdout=subprocess.DEVNULL)


def ensure_hugepages(mb: int, mount: str = '/dev/hugepages') -> None:
    """Make sure `mb` MiB of free 2 MiB hugepages and a hugetlbfs mount exist."""
    def meminfo(key):
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
        return 0
    need = (mb + 1) // 2
    free = meminfo('HugePages_Free')
    if free < need:
        total = meminfo('HugePages_Total')
        with open('/proc/sys/vm/nr_hugepages', 'w') as f:
            f.write(str(total + need - free))
        if meminfo('HugePages_Free') < need:
            raise GuestError('could not reserve %d hugepages' % need)
    with open('/proc/mounts') as f:
        mounted = any(l.split()[1] == mount and l.split()[2] == 'hugetlbfs'
                      for l in f)
    if not mounted:
        os.makedirs(mount, exist_ok=True)
        subprocess.run(['mount', '-t', 'hugetlbfs', 'nodev', mount], check=True)


class Testpmd:
    """dpdk-testpmd as a vhost-user peer, non-interactive (forwarding starts
    at once; stop() sends Enter so it prints its statistics and exits).

    vdevs: e.g. ['net_vhost0,iface=/tmp/x/sock,queues=2'].
    args:  testpmd application args, e.g. ['--forward-mode=icmpecho',
           '--rxq=2', '--txq=2'].
    lcores: default '0@0,1@0': main and forwarding lcore both on CPU 0, so
            the busy-polling forwarder leaves CPU 1 to QEMU.
    Every instance gets its own --file-prefix. frontend=True adds
    --single-file-segments (needed by virtio-user frontends).
    """
    _seq = 0

    def __init__(self, vdevs: Iterable[str], args: Iterable[str] = (),
                 lcores: str = '0@0,1@0', mem_mb: int = 256,
                 workdir: str | None = None, frontend: bool = False,
                 eal_args: Iterable[str] = ()):
        Testpmd._seq += 1
        self.prefix = 'vt%d_%d' % (os.getpid(), Testpmd._seq)
        self.vdevs = list(vdevs)
        self.args = list(args)
        self.lcores = lcores
        self.mem_mb = mem_mb
        self.frontend = frontend
        self.eal_args = list(eal_args)
        self.workdir = workdir or tempfile.mkdtemp(prefix='vhostd-testpmd-')
        self.log_path = os.path.join(self.workdir, 'testpmd-%s.log' % self.prefix)
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        cmd = ['dpdk-testpmd', '--lcores', self.lcores, '--no-pci',
               '--file-prefix=' + self.prefix, '-m', str(self.mem_mb)]
        if self.frontend:
            cmd.append('--single-file-segments')
        for v in self.vdevs:
            cmd += ['--vdev', v]
        return cmd + self.eal_args + ['--'] + self.args

    def start(self, wait_paths: Iterable[str] = (), timeout: float = 30) -> 'Testpmd':
        ensure_packages({'dpdk-testpmd': 'dpdk'})
        ensure_hugepages(self.mem_mb)
        self._log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        for p in wait_paths:
            while not os.path.exists(p):
                if self.proc.poll() is not None:
                    raise GuestError('testpmd exited (%s):\n%s'
                                     % (self.proc.returncode, _tail(self.log_path)))
                if time.monotonic() > deadline:
                    self.stop()
                    raise GuestError('testpmd: %s did not appear:\n%s'
                                     % (p, _tail(self.log_path)))
                time.sleep(0.05)
        return self

    def stop(self, timeout: float = 15) -> str:
        """Stop testpmd (Enter, then SIGINT, then SIGKILL); returns its log."""
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                p.stdin.write(b'\n')
                p.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        if p is not None and p.stdin:
            try:
                p.stdin.close()
            except OSError:
                pass
        if getattr(self, '_log', None):
            self._log.close()
            self._log = None
        self._cleanup_runtime()
        return self.log()

    def _cleanup_runtime(self) -> None:
        shutil.rmtree('/var/run/dpdk/' + self.prefix, ignore_errors=True)
        try:
            for f in os.listdir('/dev/hugepages'):
                if f.startswith(self.prefix):
                    os.unlink(os.path.join('/dev/hugepages', f))
        except OSError:
            pass

    def log(self) -> str:
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def totals(self) -> dict[str, int]:
        """RX/TX totals from the statistics testpmd prints when it stops
        ('Accumulated forward statistics for all ports'): keys rx, tx,
        rx_dropped, tx_dropped. Empty if not found."""
        text = self.log()
        i = text.rfind('Accumulated forward statistics for all ports')
        if i < 0:
            return {}
        blk = text[i:]
        out = {}
        m = re.search(r'RX-packets:\s*(\d+)\s+RX-dropped:\s*(\d+)', blk)
        if m:
            out['rx'], out['rx_dropped'] = int(m.group(1)), int(m.group(2))
        m = re.search(r'TX-packets:\s*(\d+)\s+TX-dropped:\s*(\d+)', blk)
        if m:
            out['tx'], out['tx_dropped'] = int(m.group(1)), int(m.group(2))
        return out

    def __enter__(self) -> 'Testpmd':
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
