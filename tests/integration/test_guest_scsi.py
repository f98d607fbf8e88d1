#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A real guest on vhost-user-scsi: QEMU (TCG, 2 vCPUs) + the Debian
kernel's virtio_scsi driver with num_queues=2, one boot for everything.

Backends (module-level switch, env VHOSTD_SCSI_TEST_BACKEND):
  vhostd (default)  vhostd serves controller scsi0 on a vhost-user socket
                    (LUN lun0: a file), QEMU boots with
                    -device vhost-user-scsi-pci,chardev=...,num_queues=2; the
                    hot-add is the JSON-RPC `lun.add` (what `vhostctl lun add`
                    sends). Skips while the daemon does not know the scsi
                    config section or the RPC methods yet.
  qemu              validation of the test itself: QEMU's built-in
                    virtio-scsi-pci,num_queues=2 + scsi-hd on the same kind of
                    file (same guest driver, same event-queue hot-plug
                    protocol); the hot-add is QMP blockdev-add + device_add.

What the guest does (one busybox script, in order):
  1. identity: finds lun0 by its SCSI address (H:0:0:0), reports
     /sys/block/sdX/size (512-byte sectors), device/vendor, device/model,
     the logical block size and the number of blk-mq hardware queues;
  2. O_DIRECT pattern: writes a deterministic 4 MiB pattern to lun0 at
     32 MiB with `dd oflag=direct` (first half pinned to vCPU 0, second half
     to vCPU 1: blk-mq maps each vCPU to its own request queue), reads it
     back with `iflag=direct` crosswise (first half on vCPU 1, second on
     vCPU 0) into one md5sum; counts the completion interrupts of each
     request queue (/proc/interrupts, "virtioN-request" lines);
  3. filesystem: mke2fs on the first 16 MiB of lun0, mount, write /f
     (1 MiB of the pattern), umount, mount again, md5sum, umount;
  4. hot-add: the host adds lun1 (target 0, LUN 1, another file) while the
     guest waits; the guest polls /sys for H:0:0:1 (no rescan is written
     anywhere) for up to 15 s, reports its identity, writes 1 MiB with
     O_DIRECT and reads it back.
Host checks: every reported value against what it configured, the pattern
bytes at 32 MiB of the lun0 file (and zeros around them), `e2fsck -fn` and
`debugfs -R 'cat /f'` on the lun0 file after the guest is gone, the bytes
at offset 0 of the lun1 file; in vhostd mode the daemon's per-queue request
counters (`scsi.show`) moved on both request queues.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from harness import RpcError, Vhostd

from guest import (Guest, GuestError, QemuScsiDev, ScsiDev, ScsiDisk,
                   build_images, ensure_packages)

BACKEND = os.environ.get("VHOSTD_SCSI_TEST_BACKEND", "vhostd")

MiB = 1 << 20
NUM_QUEUES = 2
# What the host configures and the guest must see. Vendor: 8 chars max,
# product: 16 (INQUIRY); sysfs pads them with spaces.
LUN0 = {"name": "lun0", "target": 0, "lun": 0, "size": 64 * MiB,
        "vendor": "VHOSTD", "product": "vhostd-lun"}
LUN1 = {"name": "lun1", "target": 0, "lun": 1, "size": 16 * MiB,
        "vendor": "VHOSTD", "product": "vhostd-hotlun"}
PATTERN_SIZE = 4 * MiB
PATTERN_OFFSET = 32 * MiB      # on lun0, after the file system
FS_KB = 16 * 1024              # mke2fs size: the first 16 MiB of lun0
FS_FILE_SIZE = 1 * MiB         # /f = the first 1 MiB of the pattern
HOT_SIZE = 1 * MiB             # written at offset 0 of lun1
HOTADD_WAIT_S = 15


# ---------------------------------------------------------------------------
# vhostd's schema: kept here, in one place (the config section and the RPC
# are being written; fix the names here if they land differently).

def vhostd_scsi_controller(sock):
    return {"name": "scsi0", "socket": sock, "mode": "server", "queues": NUM_QUEUES}


def vhostd_lun(spec, path):
    return {"name": spec["name"], "controller": "scsi0", "target": spec["target"],
            "lun": spec["lun"], "backend": "file", "path": path, "cache": "none",
            "vendor": spec["vendor"], "product": spec["product"]}


def vhostd_config_extra(sock, lun0_path):
    """The members added to harness.Vhostd's config document."""
    return {"scsi": [vhostd_scsi_controller(sock)],
            "luns": [vhostd_lun(LUN0, lun0_path)]}


def vhostd_hot_add(d, lun1_path):
    """`vhostctl lun add` = JSON-RPC lun.add with the config's LUN object."""
    return d.rpc("lun.add", vhostd_lun(LUN1, lun1_path))


def vhostd_queue_requests(d):
    """Per request queue: commands completed, from `scsi.show scsi0`.
    Accepts {"stats": {"queues": [...]}} or {"queues": [...]}, each queue
    with "requests" (struct scsi_queue_counters)."""
    show = d.rpc("scsi.show", {"name": "scsi0"})
    qs = (show.get("stats") or {}).get("queues") or show.get("queues") or []
    return [q.get("requests") for q in qs], show


# Errors that mean "the scsi backend is not there yet" (skip, not fail).
# VHOSTD_SCSI_TEST_STRICT=1 turns those skips into failures (for the people
# landing the backend: a renamed member then shows up as an error).
NOT_YET = ("unknown member", "not a known member", "method not found",
           "not implemented", "enotsup", "operation not supported")
STRICT = os.environ.get("VHOSTD_SCSI_TEST_STRICT") == "1"


def _not_yet(text):
    t = text.lower()
    return not STRICT and any(s in t for s in NOT_YET)


# ---------------------------------------------------------------------------
# the guest side

GUEST_SCRIPT = r'''
# disk_at TARGET LUN: the sdX at SCSI address *:0:TARGET:LUN (fails if none)
disk_at() {
	for b in /sys/bus/scsi/devices/*:0:$1:$2/block/*; do
		[ -e "$b" ] && { basename "$b"; return 0; }
	done
	return 1
}
# wait_disk TARGET LUN TIMEOUT_S
wait_disk() {
	local n=$(( $3 * 20 )) d
	while ! d=$(disk_at $1 $2); do
		n=$((n - 1)); [ $n -gt 0 ] || return 1
		usleep 50000
	done
	vt_wait_file /dev/$d 5 || return 1
	echo $d
}
# identity PREFIX sdX
identity() {
	vt_result $1_dev $2
	vt_result $1_size "$(cat /sys/block/$2/size)"
	vt_result $1_vendor "$(cat /sys/block/$2/device/vendor)"
	vt_result $1_model "$(cat /sys/block/$2/device/model)"
	vt_result $1_lbs "$(cat /sys/block/$2/queue/logical_block_size)"
	vt_result $1_hwq "$(ls /sys/block/$2/mq | wc -l)"
}
# req_irqs: completion interrupts of each virtio-scsi request queue, in
# queue order (the MSI-X vectors are named virtioN-request).
req_irqs() {
	awk -v n=$(nproc) '/-request/ { s = 0; for (i = 2; i <= n + 1; i++) s += $i; printf "%%d ", s }' /proc/interrupts
}
now_ms() { awk '{ printf "%%d", $1 * 1000 }' /proc/uptime; }
P=/vt/files/pattern
BS=4096
PB=%(pattern_blocks)d
HALF=$((PB / 2))
SEEK=%(pattern_seek)d

# -- 1. identity of lun0 ---------------------------------------------------
D=$(wait_disk %(t0)d %(l0)d 30) || vt_die "lun0 not found: $(vt_disks | tr '\n' ' ')"
identity d0 $D
vt_result hosts "$(ls /sys/class/scsi_host | wc -l)"
vt_result irq_lines "$(grep -c -- '-request' /proc/interrupts)"

# -- 2. O_DIRECT pattern, half from each vCPU ---------------------------------
set -- $(req_irqs)
i0=${1:-0}; i1=${2:-0}
t=$(now_ms)
taskset 1 dd if=$P of=/dev/$D bs=$BS seek=$SEEK count=$HALF oflag=direct conv=notrunc,fsync 2>/tmp/dd.err ||
	vt_die "dd write (vCPU 0): $(cat /tmp/dd.err)"
taskset 2 dd if=$P of=/dev/$D bs=$BS seek=$((SEEK + HALF)) skip=$HALF count=$HALF oflag=direct conv=notrunc,fsync 2>/tmp/dd.err ||
	vt_die "dd write (vCPU 1): $(cat /tmp/dd.err)"
vt_result write_ms $(( $(now_ms) - t ))
# Read back crosswise (first half on vCPU 1, second half on vCPU 0): each
# queue carries reads and writes; one md5 over the whole region.
t=$(now_ms)
vt_result rd_md5 "$( (taskset 2 dd if=/dev/$D bs=$BS skip=$SEEK count=$HALF iflag=direct 2>/dev/null;
	taskset 1 dd if=/dev/$D bs=$BS skip=$((SEEK + HALF)) count=$HALF iflag=direct 2>/dev/null) | md5sum | cut -d' ' -f1)"
vt_result read_ms $(( $(now_ms) - t ))
set -- $(req_irqs)
vt_result irq_q0 $(( ${1:-0} - i0 ))
vt_result irq_q1 $(( ${2:-0} - i1 ))

# -- 3. ext2 on the first 16 MiB ----------------------------------------------
mke2fs -q -b 1024 /dev/$D %(fs_kb)d >/tmp/mkfs.out 2>&1 || vt_die "mke2fs: $(cat /tmp/mkfs.out)"
mkdir -p /mnt/d
mount -t ext2 /dev/$D /mnt/d || vt_die "mount (1)"
dd if=$P of=/mnt/d/f bs=64k count=%(fs_file_64k)d 2>/dev/null || vt_die "write /f"
echo vhostd-scsi >/mnt/d/hello
umount /mnt/d || vt_die "umount (1)"
mount -t ext2 /dev/$D /mnt/d || vt_die "mount (2)"
vt_result fs_md5 "$(md5sum /mnt/d/f | cut -d' ' -f1)"
vt_result fs_hello "$(cat /mnt/d/hello)"
umount /mnt/d || vt_die "umount (2)"

# -- 4. hot-add of lun1: no rescan, just wait for the event ---------------------
if disk_at %(t1)d %(l1)d >/dev/null; then vt_result pre_lun1 present; else vt_result pre_lun1 absent; fi
vt_mark ready-for-hotadd
line=$(vt_wait_host 90) || vt_die "no word from the host"
vt_result host_said "$line"
case "$line" in
added)
	t=$(now_ms)
	if D1=$(wait_disk %(t1)d %(l1)d %(hot_wait)d); then
		vt_result hot_ms $(( $(now_ms) - t ))
		identity d1 $D1
		dd if=$P of=/dev/$D1 bs=64k count=%(hot_64k)d oflag=direct conv=notrunc,fsync 2>/tmp/dd.err ||
			vt_die "dd write lun1: $(cat /tmp/dd.err)"
		vt_result d1_md5 "$(dd if=/dev/$D1 bs=64k count=%(hot_64k)d iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
	else
		vt_result hot_ms none
	fi
	;;
esac
vt_result disks "$(vt_disks | tr '\n' ' ')"
vt_result scsi_addrs "$(ls /sys/bus/scsi/devices | grep : | tr '\n' ' ')"
dmesg | grep -e 'Attached SCSI' -e 'virtio_scsi' -e 'sd 0:' >/dev/console
vt_mark io-done
line=$(vt_wait_host 60) || vt_die "no bye from the host"
'''


def pattern_bytes(n):
    """Deterministic, incompressible, position-dependent: sha256 chain."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"vhostd-scsi-%d" % i).digest()
        i += 1
    return bytes(out[:n])


def _md5(b):
    return hashlib.md5(b).hexdigest()


def _odirect_ok(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        return False
    os.close(fd)
    return True


def _strip(v):
    return (v or "").strip()


class GuestScsiTest(unittest.TestCase):
    """One boot (setUpClass) runs the whole scenario; each test checks a part."""

    backend = BACKEND
    res = {}
    any_failed = False

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("guest tests need root")
        if cls.backend not in ("vhostd", "qemu"):
            raise unittest.SkipTest("VHOSTD_SCSI_TEST_BACKEND=%s: want vhostd or qemu"
                                    % cls.backend)
        if cls.backend == "vhostd" and not os.path.exists(harness.VHOSTD):
            raise unittest.SkipTest("%s is not built" % harness.VHOSTD)
        try:
            build_images()
        except GuestError as e:
            raise unittest.SkipTest("guest images: %s" % e)
        ensure_packages({"debugfs": "e2fsprogs", "e2fsck": "e2fsprogs"})
        cls.tmp = tempfile.mkdtemp(prefix="vhostd-it-gscsi-")
        cls.daemon = None
        cls.guest = None
        cls.keep = os.environ.get("VHOSTD_GUEST_KEEP") == "1"
        try:
            cls._scenario()
        except unittest.SkipTest:
            cls._teardown()
            raise
        except BaseException:
            cls.keep = True
            cls._teardown()
            raise

    @classmethod
    def _scenario(cls):
        t_all = time.monotonic()
        cls.pattern = pattern_bytes(PATTERN_SIZE)
        cls.img0 = os.path.join(cls.tmp, "lun0.img")
        cls.img1 = os.path.join(cls.tmp, "lun1.img")
        for path, size in ((cls.img0, LUN0["size"]), (cls.img1, LUN1["size"])):
            with open(path, "wb") as f:
                f.truncate(size)
        cache = "none" if _odirect_ok(cls.img0) else "writeback"
        cls.hotadd_skip = None
        cls.queue_requests = None
        cls.queue_skip = "vhostd mode only (QEMU's virtio-scsi has no per-queue counters)"
        cls.scsi_show = None

        script = GUEST_SCRIPT % {
            "pattern_blocks": PATTERN_SIZE // 4096, "pattern_seek": PATTERN_OFFSET // 4096,
            "t0": LUN0["target"], "l0": LUN0["lun"], "t1": LUN1["target"], "l1": LUN1["lun"],
            "fs_kb": FS_KB, "fs_file_64k": FS_FILE_SIZE // 65536, "hot_64k": HOT_SIZE // 65536,
            "hot_wait": HOTADD_WAIT_S}
        kw = dict(files={"/vt/files/pattern": cls.pattern}, timeout=150,
                  smp=2, name="guest-scsi-" + cls.backend,
                  workdir=os.path.join(cls.tmp, "guest"), keep=True)

        disk1 = ScsiDisk(cls.img1, target=LUN1["target"], lun=LUN1["lun"],
                         vendor=LUN1["vendor"], product=LUN1["product"], cache=cache)
        if cls.backend == "qemu":
            disk0 = ScsiDisk(cls.img0, target=LUN0["target"], lun=LUN0["lun"],
                             vendor=LUN0["vendor"], product=LUN0["product"], cache=cache)
            kw["qemu_scsi"] = [QemuScsiDev([disk0], num_queues=NUM_QUEUES)]
        else:
            cls._start_vhostd()
            kw["scsi"] = [ScsiDev(cls.sock, num_queues=NUM_QUEUES)]

        cls.guest = g = Guest(script, **kw)
        with g:
            g.wait_marker("ready-for-hotadd", timeout=140)
            cls.t_io = time.monotonic() - g.t_start
            t = time.monotonic()
            if cls.backend == "qemu":
                g.scsi_hot_add(0, disk1)
                word = "added"
            else:
                try:
                    vhostd_hot_add(cls.daemon, cls.img1)
                    word = "added"
                except RpcError as e:
                    if not _not_yet(str(e)):
                        raise
                    cls.hotadd_skip = "vhostd lun.add: %s" % e
                    word = "skip"
            cls.hotadd_host_ms = (time.monotonic() - t) * 1000
            g.send(word)
            g.wait_marker("io-done", timeout=60)
            if cls.backend == "vhostd":
                try:
                    cls.queue_requests, cls.scsi_show = vhostd_queue_requests(cls.daemon)
                    cls.queue_skip = None
                except RpcError as e:
                    if not _not_yet(str(e)):
                        raise
                    cls.queue_skip = "vhostd scsi.show: %s" % e
            g.send("bye")
            cls.rc, cls.res = g.wait()
            cls.boot = g.boot_seconds
            cls.console_tail = g.describe(30)
        cls.t_guest = time.monotonic() - t_all
        if cls.daemon is not None:
            cls.daemon_rc = cls.daemon.stop()
        cls.t_all = time.monotonic() - t_all

    @classmethod
    def _start_vhostd(cls):
        wd = os.path.join(cls.tmp, "vhostd")
        os.makedirs(wd)
        d = Vhostd(bridges=(), workdir=wd)
        cls.daemon = d
        cls.sock = os.path.join(cls.tmp, "scsi0.sock")
        d.config.update(vhostd_config_extra(cls.sock, cls.img0))
        rc = d.start(expect_fail=True)
        if rc != 0:
            log = d.log()
            if _not_yet(log):
                raise unittest.SkipTest(
                    "vhostd rejects the scsi config (backend not there yet): %s"
                    % _last_error(log))
            raise AssertionError("vhostd exited with %d:\n%s" % (rc, log))
        deadline = time.monotonic() + 15
        while not os.path.exists(cls.sock):
            if time.monotonic() > deadline:
                try:
                    d.rpc("scsi.show", {"name": "scsi0"})
                except RpcError as e:
                    if _not_yet(str(e)):
                        raise unittest.SkipTest("vhostd has no scsi controllers yet: %s" % e)
                raise AssertionError("vhostd did not create %s:\n%s" % (cls.sock, d.log()))
            time.sleep(0.05)

    @classmethod
    def _teardown(cls):
        if cls.guest is not None:
            cls.guest.close()
        if cls.daemon is not None:
            if cls.keep:
                sys.stderr.write("---- vhostd log ----\n%s\n" % cls.daemon.log())
            cls.daemon.kill()
            shutil.rmtree(os.path.join("/var/run/dpdk", cls.daemon.prefix), ignore_errors=True)
        if cls.keep:
            sys.stderr.write("guest-scsi files kept in %s\n" % cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        if cls.any_failed:
            cls.keep = True
            sys.stderr.write("%s\n" % getattr(cls, "console_tail", ""))
        cls._teardown()
        if hasattr(cls, "t_all"):
            r = cls.res
            print("\n  [%s] boot %.1fs, I/O phase done at %.1fs, whole guest %.1fs; "
                  "guest: write %s ms, read %s ms, hot-add seen after %s ms; "
                  "request-queue irqs %s/%s, daemon queue requests %s"
                  % (cls.backend, cls.boot or -1, cls.t_io, cls.t_guest,
                     r.get("write_ms"), r.get("read_ms"), r.get("hot_ms"),
                     r.get("irq_q0"), r.get("irq_q1"), cls.queue_requests), flush=True)

    def tearDown(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is not None and any(t is self for t, _ in outcome.result.errors
                                       + outcome.result.failures):
            type(self).any_failed = True

    def msg(self):
        return "guest results: %s" % self.res

    def num(self, key):
        """An integer the guest reported (fails, not errors, when missing)."""
        v = self.res.get(key)
        if v is None or not v.lstrip("-").isdigit():
            self.fail("guest reported no number %s: %s" % (key, self.msg()))
        return int(v)

    # -- checks -----------------------------------------------------------
    def test_0_guest_completed(self):
        self.assertEqual(self.rc, 0, self.msg())
        self.assertEqual(self.res.get("hosts"), "1", self.msg())
        if self.daemon is not None:
            self.assertEqual(self.daemon_rc, 0, "vhostd did not stop cleanly")

    def test_1_identity(self):
        r = self.res
        self.assertEqual(self.num("d0_size"), LUN0["size"] // 512, self.msg())
        self.assertEqual(_strip(r.get("d0_vendor")), LUN0["vendor"], self.msg())
        self.assertEqual(_strip(r.get("d0_model")), LUN0["product"], self.msg())
        self.assertEqual(r.get("d0_lbs"), "512", self.msg())

    def test_2_pattern_odirect(self):
        want = _md5(self.pattern)
        self.assertEqual(self.res.get("rd_md5"), want, self.msg())
        with open(self.img0, "rb") as f:
            f.seek(PATTERN_OFFSET - 4096)
            before = f.read(4096)
            got = f.read(PATTERN_SIZE)
            after = f.read(4096)
        self.assertEqual(_md5(got), want, "pattern not in the lun0 file at %d" % PATTERN_OFFSET)
        self.assertEqual(before, bytes(4096), "bytes before the pattern changed")
        self.assertEqual(after, bytes(4096), "bytes after the pattern changed")

    def test_3_multiqueue_guest(self):
        r = self.res
        self.assertEqual(r.get("d0_hwq"), str(NUM_QUEUES), self.msg())
        self.assertEqual(r.get("irq_lines"), str(NUM_QUEUES), self.msg())
        # Each vCPU submitted on its own queue: completions on both.
        self.assertGreater(self.num("irq_q0"), 0, self.msg())
        self.assertGreater(self.num("irq_q1"), 0, self.msg())

    def test_3_multiqueue_daemon(self):
        if self.queue_skip:
            self.skipTest("daemon per-queue counters: %s" % self.queue_skip)
        q = self.queue_requests
        show = self.scsi_show
        self.assertEqual(len(q), NUM_QUEUES, show)
        self.assertTrue(all(isinstance(n, int) and n > 0 for n in q), show)
        # The guest never sent a malformed chain and the rings were not broken.
        st = show.get("status") or {}
        self.assertFalse(st.get("broken", False), show)
        qs = (show.get("stats") or {}).get("queues") or show.get("queues") or []
        self.assertEqual(sum(x.get("bad-chains", 0) for x in qs), 0, show)

    def test_4_filesystem(self):
        want = _md5(self.pattern[:FS_FILE_SIZE])
        self.assertEqual(self.res.get("fs_md5"), want, self.msg())
        self.assertEqual(self.res.get("fs_hello"), "vhostd-scsi", self.msg())
        # The file system in the lun0 file, as the host sees it.
        fsck = subprocess.run(["e2fsck", "-fn", self.img0], capture_output=True, text=True)
        self.assertEqual(fsck.returncode, 0, fsck.stdout + fsck.stderr)
        cat = subprocess.run(["debugfs", "-R", "cat /f", self.img0], capture_output=True)
        self.assertEqual(cat.returncode, 0, cat.stderr)
        self.assertEqual(_md5(cat.stdout), want, "debugfs cat /f differs")

    def test_5_hotadd(self):
        r = self.res
        self.assertEqual(r.get("pre_lun1"), "absent", self.msg())
        if self.hotadd_skip:
            self.skipTest(self.hotadd_skip)
        self.assertEqual(r.get("host_said"), "added", self.msg())
        self.assertNotEqual(r.get("hot_ms"), "none",
                            "no disk at SCSI address H:0:%d:%d within %ds (no rescan done); "
                            "the guest has %s (a LUN like 16385 = 0x4001: the event's "
                            "lun[2] carried the 0x40 flat-space flag, which QEMU only "
                            "sets for LUNs >= 256 and Linux does not mask)\n%s"
                            % (LUN1["target"], LUN1["lun"], HOTADD_WAIT_S,
                               r.get("scsi_addrs"), self.msg()))
        self.assertEqual(self.num("d1_size"), LUN1["size"] // 512, self.msg())
        self.assertEqual(_strip(r.get("d1_vendor")), LUN1["vendor"], self.msg())
        self.assertEqual(_strip(r.get("d1_model")), LUN1["product"], self.msg())
        self.assertNotEqual(r.get("d1_dev"), r.get("d0_dev"), self.msg())
        want = _md5(self.pattern[:HOT_SIZE])
        self.assertEqual(r.get("d1_md5"), want, self.msg())
        with open(self.img1, "rb") as f:
            self.assertEqual(_md5(f.read(HOT_SIZE)), want, "pattern not in the lun1 file")


def _last_error(log):
    lines = [ln for ln in log.splitlines() if _not_yet(ln)]
    return (lines or log.splitlines() or [""])[-1].strip()


if __name__ == "__main__":
    unittest.main()
