#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhost-user-scsi against a running vhostd, driven by our userspace
initiator vhostd-scsi-bench (bench/README.md): no guest, a few seconds per
test. Every command goes through the real transport (vhost-user socket,
shared memory, virtqueues, the PMD) and every check is on content: INQUIRY
bytes, capacities, sense data, pattern bytes in the backing files, counters
against what the initiator counted, hot-plug events, RPC error messages.

    VHOSTD_BUILD=build python3 tests/integration/test_scsi.py -v

Needs root and hugepages for the daemon (as every integration test) and
$VHOSTD_BUILD/bench/vhostd-scsi-bench (`ninja -C build bench/vhostd-scsi-bench`).
The bench is pinned to CPU 0 (PEER_CPU), the daemon's PMD to the last CPU.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness
from harness import PEER_CPU, RpcError, Vhostd

sys.path.insert(0, os.path.join(harness.ROOT, "tests", "tools"))
from selftest_scsi_bench import pattern_block  # noqa: E402  (the bench's pattern)

BENCH = os.path.join(harness.BUILD, "bench", "vhostd-scsi-bench")

MiB = 1 << 20

# virtio-scsi response codes (virtio spec 5.6.6.1) and SCSI status bytes.
S_OK = 0
S_BAD_TARGET = 3
S_FUNCTION_SUCCEEDED = 10
GOOD = 0x00
CHECK_CONDITION = 0x02
# sense keys
SK_ILLEGAL_REQUEST = 0x5
SK_UNIT_ATTENTION = 0x6
SK_DATA_PROTECT = 0x7

CACHE_MODES = ("none", "writeback", "writethrough", "directsync")
# seconds of scsi0 load in the add/del loop test: the 10 iterations take ~2-3 s
LOOP_LOAD_S = 6


def require_bench():
    if not os.access(BENCH, os.X_OK):
        raise unittest.SkipTest("%s is not built (ninja -C %s bench/vhostd-scsi-bench)"
                                % (BENCH, harness.BUILD))


def controller(name, queues=2, **kw):
    c = {"name": name, "socket": name + ".sock", "mode": "server", "queues": queues}
    c.update(kw)
    return c


def lun(name, ctrl, target, lun_id, backend, **kw):
    o = {"name": name, "controller": ctrl, "target": target, "lun": lun_id,
         "backend": backend}
    o.update(kw)
    return o


def make_file(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def sense_of(r):
    """(key, asc, ascq) of a --cmd --json reply (fixed or descriptor format)."""
    b = bytes.fromhex(r["sense"])
    if len(b) >= 14 and b[0] & 0x7f in (0x70, 0x71):
        return b[2] & 0xf, b[12], b[13]
    if len(b) >= 4 and b[0] & 0x7f in (0x72, 0x73):
        return b[1] & 0xf, b[2], b[3]
    return None, None, None


def hexcdb(*b):
    return " ".join("%02x" % x for x in b)


def read10(lba, blocks):
    return hexcdb(0x28, 0, lba >> 24 & 0xff, lba >> 16 & 0xff, lba >> 8 & 0xff, lba & 0xff,
                  0, blocks >> 8, blocks & 0xff, 0)


def write10(lba, blocks):
    return hexcdb(0x2a, 0, lba >> 24 & 0xff, lba >> 16 & 0xff, lba >> 8 & 0xff, lba & 0xff,
                  0, blocks >> 8, blocks & 0xff, 0)


INQUIRY = "12 00 00 00 60 00"
TUR = "00 00 00 00 00 00"
READ_CAPACITY16 = "9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00"


def file_has_pattern(path, seed, lba, blocks, block_size):
    """None when the file holds the pattern, else the first bad lba."""
    with open(path, "rb") as f:
        f.seek(lba * block_size)
        data = f.read(blocks * block_size)
    for i in range(blocks):
        if data[i * block_size:(i + 1) * block_size] != pattern_block(seed, lba + i, block_size):
            return lba + i
    return None


class ScsiCase(harness.DaemonTestCase):
    """Helpers to run vhostd-scsi-bench against a controller of a Vhostd."""

    def setUp(self):
        super().setUp()
        require_bench()
        # backing files: not on /tmp, which may be a tmpfs (no O_DIRECT: cache=none)
        self.tmp = tempfile.mkdtemp(prefix="vhostd-scsi-it-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def bench_argv(self, d, ctrl, args):
        return [BENCH, "--socket", d.sock(ctrl), "--cpu", str(PEER_CPU)] + \
            [str(a) for a in args]

    def bench(self, d, ctrl, *args, rc=0, timeout=60):
        """Runs the bench to completion; checks its exit code; returns stdout."""
        p = subprocess.run(self.bench_argv(d, ctrl, args), capture_output=True, text=True,
                           timeout=timeout)
        if rc is not None:
            self.assertEqual(p.returncode, rc, "vhostd-scsi-bench %s: exit %d\nstdout: %s\n"
                             "stderr: %s" % (" ".join(map(str, args)), p.returncode,
                                             p.stdout, p.stderr))
        return p.stdout

    def bench_bg(self, d, ctrl, *args):
        return self.popen_bg(self.bench_argv(d, ctrl, args))

    def cmd(self, d, ctrl, target, lun_id, cdb, data_in=0, data_out=None):
        """One SCSI command (--cmd --json); returns the reply object."""
        args = ["--target", target, "--lun", lun_id, "--cmd", cdb, "--json"]
        if data_in:
            args += ["--data-in", data_in]
        if data_out is not None:
            path = os.path.join(self.tmp, "data-out.bin")
            with open(path, "wb") as f:
                f.write(data_out)
            args += ["--data-out-file", path]
        return json.loads(self.bench(d, ctrl, *args))

    def assertSense(self, r, key, asc, ascq=None):
        self.assertEqual(r["response"], S_OK, r)
        self.assertEqual(r["status"], CHECK_CONDITION, r)
        k, a, q = sense_of(r)
        self.assertEqual((k, a), (key, asc), r)
        if ascq is not None:
            self.assertEqual(q, ascq, r)

    def wait_scsi(self, d, name, timeout=10.0, connected=False):
        """scsi.show once the controller is idle (connected=False: no frontend)."""
        deadline = time.monotonic() + timeout
        while True:
            s = d.rpc("scsi.show", {"name": name})
            if s["status"]["connected"] == connected:
                return s
            if time.monotonic() > deadline:
                raise AssertionError("controller %s: connected is not %s: %s\n%s"
                                     % (name, connected, s["status"], d.log()))
            time.sleep(0.02)


class ScsiCommandsTest(ScsiCase):
    """One daemon, controller scsi0 (2 request queues) with LUNs of every kind."""

    VENDOR, PRODUCT, REVISION, SERIAL = "VHOSTDIT", "it-ram-lun", "0042", "IT-RAM-0001"
    RAM_SIZE = 64 * MiB

    def setUp(self):
        super().setUp()
        self.d = self.daemon(
            scsi=[controller("scsi0")],
            luns=[lun("ram0", "scsi0", 0, 0, "ram", size="64M", **{"block-size": 4096},
                      vendor=self.VENDOR, product=self.PRODUCT, revision=self.REVISION,
                      serial=self.SERIAL),
                  lun("ro", "scsi0", 0, 1, "ram", size=str(1 * MiB), readonly=True),
                  lun("tmf", "scsi0", 1, 0, "ram", size="4M")])

    def test_inquiry_and_addressing(self):
        r = self.cmd(self.d, "scsi0", 0, 0, INQUIRY, data_in=96)
        self.assertEqual((r["response"], r["status"]), (S_OK, GOOD), r)
        inq = bytes.fromhex(r["data_in"])
        self.assertGreaterEqual(len(inq), 36, r)
        self.assertEqual(inq[0], 0x00, "peripheral: connected direct-access block device")
        self.assertEqual(inq[8:16], self.VENDOR.ljust(8).encode())
        self.assertEqual(inq[16:32], self.PRODUCT.ljust(16).encode())
        self.assertEqual(inq[32:36], self.REVISION.ljust(4).encode())
        # Unit serial number VPD page (0x80) carries the configured serial.
        r = self.cmd(self.d, "scsi0", 0, 0, "12 01 80 00 ff 00", data_in=255)
        self.assertEqual((r["response"], r["status"]), (S_OK, GOOD), r)
        vpd = bytes.fromhex(r["data_in"])
        self.assertEqual(vpd[1], 0x80, r)
        self.assertEqual(vpd[4:4 + vpd[3]].decode().strip(), self.SERIAL)

        # A LUN that does not exist on an existing target: INQUIRY still
        # answers, peripheral qualifier 3 / device type 0x1f.
        r = self.cmd(self.d, "scsi0", 0, 5, INQUIRY, data_in=96)
        self.assertEqual((r["response"], r["status"]), (S_OK, GOOD), r)
        self.assertEqual(bytes.fromhex(r["data_in"])[0], 0x7f, r)
        # ... and a media command there is ILLEGAL REQUEST / LU NOT SUPPORTED.
        self.assertSense(self.cmd(self.d, "scsi0", 0, 5, TUR), SK_ILLEGAL_REQUEST, 0x25)
        # A target that does not exist: the transport says BAD_TARGET.
        r = self.cmd(self.d, "scsi0", 7, 0, INQUIRY, data_in=96)
        self.assertEqual(r["response"], S_BAD_TARGET, r)
        self.assertEqual(r["response_name"], "BAD_TARGET", r)

    def test_read_capacity16(self):
        r = self.cmd(self.d, "scsi0", 0, 0, READ_CAPACITY16, data_in=32)
        self.assertEqual((r["response"], r["status"]), (S_OK, GOOD), r)
        d = bytes.fromhex(r["data_in"])
        self.assertEqual(int.from_bytes(d[0:8], "big"), self.RAM_SIZE // 4096 - 1,
                         "last LBA")
        self.assertEqual(int.from_bytes(d[8:12], "big"), 4096, "logical block length")
        # the same numbers in lun.show
        s = self.d.rpc("lun.show", {"name": "ram0"})
        self.assertEqual((s["blocks"], s["capacity-bytes"]), (self.RAM_SIZE // 4096,
                                                             self.RAM_SIZE), s)

    def test_verify_ram_two_queues(self):
        out = self.bench(self.d, "scsi0", "--target", 0, "--lun", 0, "--verify",
                         "--seed", 11, "--queues", 2, "--qd", 16, "--bs", "64k")
        self.assertIn("verify ok %d blocks" % (8 * MiB // 4096), out)

    def test_lun_reset_sets_unit_attention(self):
        # Clear anything pending first (a fresh LUN has no UA: expect GOOD).
        self.assertEqual(self.cmd(self.d, "scsi0", 1, 0, TUR)["status"], GOOD)
        out = self.bench(self.d, "scsi0", "--target", 1, "--lun", 0, "--tmf", "lun-reset",
                         "--json")
        r = json.loads(out)
        self.assertEqual((r["response"], r["response_name"]),
                         (S_FUNCTION_SUCCEEDED, "FUNCTION_SUCCEEDED"), r)
        # SAM: the next command (not INQUIRY/REPORT LUNS/REQUEST SENSE) gets
        # UNIT ATTENTION, POWER ON, RESET, OR BUS DEVICE RESET OCCURRED.
        self.assertSense(self.cmd(self.d, "scsi0", 1, 0, TUR), SK_UNIT_ATTENTION, 0x29, 0x00)
        # reported once: the one after is GOOD
        r = self.cmd(self.d, "scsi0", 1, 0, TUR)
        self.assertEqual((r["response"], r["status"]), (S_OK, GOOD), r)
        # the reset only concerned that LUN
        self.assertEqual(self.cmd(self.d, "scsi0", 0, 0, TUR)["status"], GOOD)
        self.assertGreaterEqual(self.d.rpc("scsi.show", {"name": "scsi0"})["stats"]["tmf"], 1)

    def test_sense_errors(self):
        blocks = self.RAM_SIZE // 4096
        # READ(10) of the block after the last one: LBA OUT OF RANGE
        self.assertSense(self.cmd(self.d, "scsi0", 0, 0, read10(blocks, 1), data_in=4096),
                         SK_ILLEGAL_REQUEST, 0x21, 0x00)
        # straddling the end
        self.assertSense(self.cmd(self.d, "scsi0", 0, 0, read10(blocks - 1, 2), data_in=8192),
                         SK_ILLEGAL_REQUEST, 0x21, 0x00)
        # the last block itself is fine
        r = self.cmd(self.d, "scsi0", 0, 0, read10(blocks - 1, 1), data_in=4096)
        self.assertEqual((r["status"], r["data_in_len"]), (GOOD, 4096), r)
        # WRITE(10) to a readonly LUN: DATA PROTECT, WRITE PROTECTED
        self.assertSense(self.cmd(self.d, "scsi0", 0, 1, write10(0, 1),
                                  data_out=b"\xa5" * 512),
                         SK_DATA_PROTECT, 0x27)
        # unknown opcodes: ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE
        for cdb in ("02 00 00 00 00 00", "c7 00 00 00 00 00 00 00 00 00 00 00"):
            self.assertSense(self.cmd(self.d, "scsi0", 0, 0, cdb), SK_ILLEGAL_REQUEST, 0x20)
        st = self.d.rpc("lun.show", {"name": "ram0"})["stats"]
        self.assertGreaterEqual(st["errors"], 4, st)

    def test_rpc_errors(self):
        missing = os.path.join(self.tmp, "no-such-dir", "disk.img")
        with self.assertRaises(RpcError) as cm:
            self.d.rpc("lun.add", lun("f", "scsi0", 2, 0, "file", path=missing))
        self.assertIn(missing, cm.exception.message)
        # occupied target/lun (ram0 is 0:0)
        with self.assertRaises(RpcError) as cm:
            self.d.rpc("lun.add", lun("other", "scsi0", 0, 0, "ram", size="1M"))
        self.assertIn("ram0", cm.exception.message)
        # the name of an existing LUN
        with self.assertRaises(RpcError):
            self.d.rpc("lun.add", lun("ram0", "scsi0", 3, 0, "ram", size="1M"))
        # LUN ids stop at 255 (single-level, peripheral addressing only)
        with self.assertRaises(RpcError) as cm:
            self.d.rpc("lun.add", lun("big", "scsi0", 0, 256, "ram", size="1M"))
        self.assertEqual(cm.exception.code, -32602, cm.exception.message)
        self.assertIn('"lun"', cm.exception.message)
        # a controller that does not exist
        with self.assertRaises(RpcError) as cm:
            self.d.rpc("lun.add", lun("x", "nosuch", 0, 0, "ram", size="1M"))
        self.assertIn("nosuch", cm.exception.message)
        # the socket of scsi0
        with self.assertRaises(RpcError) as cm:
            self.d.rpc("scsi.add", controller("scsi9", socket="scsi0.sock"))
        self.assertIn("scsi0", cm.exception.message)
        # nothing of that was kept
        self.assertEqual(sorted(x["name"] for x in self.d.rpc("lun.list")),
                         ["ram0", "ro", "tmf"])
        self.assertEqual([x["name"] for x in self.d.rpc("scsi.list")], ["scsi0"])
        # and scsi0 still works
        self.assertEqual(self.cmd(self.d, "scsi0", 0, 0, TUR)["status"], GOOD)


class ScsiDataTest(ScsiCase):

    def test_file_luns_every_cache_mode(self):
        """--verify with 2 queues on a file LUN in each cache mode, then a
        pattern region per file checked in the file after a clean stop."""
        paths = {m: make_file(os.path.join(self.tmp, "%s.img" % m), 16 * MiB)
                 for m in CACHE_MODES}
        d = self.daemon(scsi=[controller("scsi0")],
                        luns=[lun("f-" + m, "scsi0", 0, i, "file", path=paths[m], cache=m)
                              for i, m in enumerate(CACHE_MODES)])
        bs = 512   # file LUNs: block-size defaults to 512
        for i, m in enumerate(CACHE_MODES):
            with self.subTest(cache=m):
                s = d.rpc("lun.show", {"name": "f-" + m})
                self.assertEqual(s["cache"], m, s)
                self.assertEqual((s["capacity-bytes"], s["block-size"]), (16 * MiB, bs), s)
                out = self.bench(d, "scsi0", "--lun", i, "--verify", "--seed", 100 + i,
                                 "--lba", 0, "--blocks", 4096, "--queues", 2, "--qd", 16,
                                 "--bs", "16k")
                self.assertIn("verify ok 4096 blocks", out)
                out = self.bench(d, "scsi0", "--lun", i, "--write-pattern", 200 + i,
                                 "--lba", 8192 + 64 * i, "--blocks", 256)
                self.assertIn("wrote 256 blocks at lba %d seed %d block_size %d"
                              % (8192 + 64 * i, 200 + i, bs), out)
        self.assertEqual(d.stop(), 0)
        for i, m in enumerate(CACHE_MODES):
            with self.subTest(cache=m):
                self.assertIsNone(file_has_pattern(paths[m], 100 + i, 0, 4096, bs),
                                  "verify region of the %s file" % m)
                self.assertIsNone(file_has_pattern(paths[m], 200 + i, 8192 + 64 * i, 256, bs),
                                  "write-pattern region of the %s file" % m)
                with open(paths[m], "rb") as f:     # nothing written beyond it
                    f.seek((8192 + 64 * i + 256) * bs)
                    self.assertEqual(f.read(MiB), bytes(MiB))

    def test_writeback_sync_survives_kill(self):
        """SYNCHRONIZE CACHE on a writeback LUN, then kill -9.

        What this proves: the writes completed to the initiator and the
        SYNCHRONIZE CACHE that followed returned GOOD before the daemon died
        without any chance to flush, so the data was in the file (at least in
        the host's page cache) and no user-space buffer of vhostd held it.
        What it cannot prove: survival of a power loss, i.e. that SYNCHRONIZE
        CACHE really reached the media (fdatasync): neither drop_caches (it
        drops clean pages only) nor an O_DIRECT read (the kernel writes dirty
        pages back first) can tell "synced by vhostd" from "still dirty in the
        page cache" after the fact; the flush counter of lun.show, checked
        before the kill, is the only evidence of that here."""
        path = make_file(os.path.join(self.tmp, "wb.img"), 32 * MiB)
        luns = [lun("wb", "scsi0", 0, 0, "file", path=path, cache="writeback")]
        d = self.daemon(scsi=[controller("scsi0")], luns=luns)
        seed, lba, blocks = 0xC0FFEE, 12345, 2048
        out = self.bench(d, "scsi0", "--write-pattern", seed, "--lba", lba, "--blocks", blocks,
                         "--sync", "--queues", 2)
        self.assertIn("wrote %d blocks at lba %d" % (blocks, lba), out)
        self.assertIn("sync ok", out)
        st = d.rpc("lun.show", {"name": "wb"})["stats"]
        self.assertGreaterEqual(st["flush_operations"], 1, st)
        self.assertGreaterEqual(st["wr_req"], 1, st)
        d.kill()
        self.assertIsNone(file_has_pattern(path, seed, lba, blocks, 512))
        # Restart on the same file (same config) and read it back through vhostd.
        d.start(write_config=False)
        out = self.bench(d, "scsi0", "--read-pattern-check", seed, "--lba", lba, "--blocks",
                         blocks, "--queues", 2)
        self.assertIn("pattern ok %d blocks" % blocks, out)
        # and a wrong seed is noticed (the check is a real one)
        out = self.bench(d, "scsi0", "--read-pattern-check", seed + 1, "--lba", lba,
                         "--blocks", blocks, rc=1)
        self.assertIn("pattern mismatch: first bad block lba %d" % lba, out)


class ScsiQueuesAndCountersTest(ScsiCase):

    def test_randread_two_queues_counters(self):
        d = self.daemon(scsi=[controller("scsi0")],
                        luns=[lun("null0", "scsi0", 0, 0, "null", size="1G")])
        before = d.rpc("scsi.show", {"name": "scsi0"})["stats"]
        d.rpc("stats.clear", {"lun": "null0"})
        lst = d.rpc("lun.show", {"name": "null0"})["stats"]
        self.assertEqual((lst["rd_req"], lst["wr_req"]), (0, 0), lst)
        r = json.loads(self.bench(d, "scsi0", "--rw", "randread", "--queues", 2, "--qd", 16,
                                  "--time", 2, "--json"))
        self.assertEqual(r["errors"], 0, r)
        self.assertGreater(r["ios"], 1000, r)
        after = self.wait_scsi(d, "scsi0")["stats"]
        qb = {q["queue"]: q["requests"] for q in before["queues"]}
        qa = {q["queue"]: q["requests"] for q in after["queues"]}
        self.assertEqual(sorted(qa), [0, 1], after)
        delta = [qa[q] - qb.get(q, 0) for q in (0, 1)]
        self.assertTrue(all(x > 0 for x in delta), "both request queues carried I/O: %s" % delta)
        # The bench counts the READ(16)s it completed ("ios", every one
        # until the drain, errors excluded: errors is 0). Before them it sends
        # exactly TEST UNIT READY (no unit attention pending on a fresh LUN,
        # so once) and READ CAPACITY(16), both on the first request queue:
        # the daemon completed ios + 2 commands.
        self.assertEqual(sum(delta), r["ios"] + 2, (delta, r))
        self.assertEqual(after["requests"] - before["requests"], r["ios"] + 2)
        self.assertEqual(after["errors"] - before["errors"], 0, after)
        self.assertEqual(after["inflight"], 0, after)
        # lun.show counts READs only (TUR and READ CAPACITY are not reads).
        lst = d.rpc("lun.show", {"name": "null0"})["stats"]
        self.assertEqual(lst["rd_req"], r["ios"], (lst, r))
        self.assertEqual(lst["rd_bytes"], r["ios"] * 4096, lst)
        self.assertEqual((lst["wr_req"], lst["errors"]), (0, 0), lst)


    def test_pmd_change_under_io(self):
        """PMD threads replaced three times under a file-LUN load: commands in
        flight on the old threads' io_uring complete first, none is lost or
        failed, and the data is intact after."""
        path = make_file(os.path.join(self.tmp, "pmd.img"), 64 * MiB)
        d = self.daemon(scsi=[controller("scsi0")],
                        luns=[lun("f0", "scsi0", 0, 0, "file", path=path, cache="writeback")])
        load = self.bench_bg(d, "scsi0", "--rw", "randrw", "--time", 4, "--qd", 32,
                             "--queues", 2, "--json")
        deadline = time.monotonic() + 10
        while d.rpc("scsi.show", {"name": "scsi0"})["stats"]["requests"] < 1000:
            self.assertIsNone(load.poll(), load.stderr.read() if load.poll() else "")
            self.assertLess(time.monotonic(), deadline, "no I/O on scsi0:\n" + d.log())
            time.sleep(0.02)
        ncpu = os.cpu_count() or 1
        for cpus in ("0", str(ncpu - 1), "0-%d" % (ncpu - 1)):
            d.rpc("pmd.set", {"cpus": cpus})
            time.sleep(0.5)
        out, err = load.communicate(timeout=30)
        self.assertEqual(load.returncode, 0, err)
        r = json.loads(out)
        self.assertEqual(r["errors"], 0, r)
        st = self.wait_scsi(d, "scsi0")["stats"]
        self.assertEqual((st["errors"], st["bad-chains"], st["inflight"]), (0, 0, 0), st)
        self.assertIn("verify ok", self.bench(d, "scsi0", "--verify", "--blocks", 4096,
                                              "--queues", 2))


class ScsiHotplugTest(ScsiCase):

    def read_lines(self, p, q):
        for line in p.stdout:
            q.put(line.rstrip("\n"))
        q.put(None)

    def next_line(self, q, what, timeout=10.0):
        try:
            line = q.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            raise AssertionError("no %r line from vhostd-scsi-bench --events" % what)
        return line

    def test_hot_add_and_remove_events(self):
        d = self.daemon(scsi=[controller("scsi0")],
                        luns=[lun("base", "scsi0", 0, 0, "ram", size="4M")])
        p = self.bench_bg(d, "scsi0", "--events", 2, "--timeout", 10)
        q = queue.Queue()
        threading.Thread(target=self.read_lines, args=(p, q), daemon=True).start()
        self.assertEqual(self.next_line(q, "events armed"), "events armed")
        self.wait_scsi(d, "scsi0", connected=True)
        d.rpc("lun.add", lun("hot", "scsi0", 2, 3, "ram", size="4M"))
        ev = self.next_line(q, "rescan event").split()
        # event 1 TRANSPORT_RESET missed=0 target 2 lun 3 reason 1 RESCAN lun_raw 0102000300000000
        # (no 0x40 flat-space bit below LUN 256: Linux takes lun[2] << 8 | lun[3]
        # unmasked, and QEMU sends it that way)
        self.assertEqual(ev[:11], ["event", "1", "TRANSPORT_RESET", "missed=0", "target", "2",
                                   "lun", "3", "reason", "1", "RESCAN"], ev)
        self.assertEqual(ev[12], "0102000300000000", ev)
        d.rpc("lun.del", {"name": "hot"})
        ev = self.next_line(q, "removed event").split()
        self.assertEqual(ev[:11], ["event", "1", "TRANSPORT_RESET", "missed=0", "target", "2",
                                   "lun", "3", "reason", "2", "REMOVED"], ev)
        self.assertEqual(p.wait(timeout=15), 0, p.stderr.read())
        p.stdout.close()
        p.stderr.close()
        self.assertEqual([x["name"] for x in d.rpc("lun.list")], ["base"])

    def test_add_del_loop_while_serving_io(self):
        """Two more controllers and their LUNs added, used and deleted 10
        times while scsi0 serves a randrw load; that load sees no error."""
        d = self.daemon(scsi=[controller("scsi0")],
                        luns=[lun("work", "scsi0", 0, 0, "ram", size="16M")])
        files = [make_file(os.path.join(self.tmp, "c%d.img" % i), 4 * MiB) for i in range(2)]
        load = self.bench_bg(d, "scsi0", "--rw", "randrw", "--time", LOOP_LOAD_S, "--qd", 8,
                             "--queues", 2, "--json")
        deadline = time.monotonic() + 10
        while d.rpc("scsi.show", {"name": "scsi0"})["stats"]["requests"] < 1000:
            self.assertIsNone(load.poll(), load.stderr.read() if load.poll() else "")
            self.assertLess(time.monotonic(), deadline, "no I/O on scsi0:\n" + d.log())
            time.sleep(0.02)
        t0 = time.monotonic()
        for it in range(10):
            for c in ("hp0", "hp1"):
                d.rpc("scsi.add", controller(c))
            d.rpc("lun.add", lun("a0", "hp0", 0, 0, "file", path=files[0], cache="none"))
            d.rpc("lun.add", lun("a1", "hp0", 0, 1, "ram", size="8M"))
            d.rpc("lun.add", lun("b0", "hp1", 1, 0, "file", path=files[1], cache="writeback"))
            d.rpc("lun.add", lun("b1", "hp1", 1, 1, "null", size="1G"))
            self.assertEqual(sorted(x["name"] for x in d.rpc("lun.list")),
                             ["a0", "a1", "b0", "b1", "work"], it)
            # The new controllers work. Only twice: the first connection to a
            # new socket waits up to 1 s (DPDK 22.11's vhost fdset thread sees a
            # new listening fd only when its poll(1000 ms) returns).
            if it in (0, 9):
                ctrl, t = ("hp0", 0) if it == 0 else ("hp1", 1)
                self.assertIn("verify ok 64 blocks",
                              self.bench(d, ctrl, "--target", t, "--lun", 0, "--verify",
                                         "--seed", it, "--blocks", 64))
            d.rpc("lun.del", {"name": "a1"})
            d.rpc("lun.del", {"name": "b0"})
            d.rpc("lun.add", lun("b0", "hp1", 1, 0, "file", path=files[1], cache="writeback"))
            d.rpc("scsi.del", {"name": "hp0"})       # takes a0 with it
            d.rpc("lun.del", {"name": "b0"})
            d.rpc("scsi.del", {"name": "hp1"})       # takes b1 with it
            self.assertEqual([x["name"] for x in d.rpc("lun.list")], ["work"], it)
            self.assertEqual([x["name"] for x in d.rpc("scsi.list")], ["scsi0"], it)
            self.assertFalse(os.path.exists(d.sock("hp0")), "socket of a deleted controller")
        loop_s = time.monotonic() - t0
        self.assertIsNone(load.poll(), "the load on scsi0 ended before the loop did (%.1f s): "
                          "raise LOOP_LOAD_S" % loop_s)
        out, err = load.communicate(timeout=LOOP_LOAD_S + 30)
        self.assertEqual(load.returncode, 0, (out, err))
        r = json.loads(out)
        self.assertEqual(r["errors"], 0, (r, err))
        self.assertGreater(r["ios"], 1000, r)
        st = self.wait_scsi(d, "scsi0")["stats"]
        self.assertEqual((st["errors"], st["bad-chains"], st["inflight"]), (0, 0, 0), st)
        # and the data of the LUN under load is intact
        self.assertIn("verify ok", self.bench(d, "scsi0", "--verify", "--queues", 2))

if __name__ == "__main__":
    unittest.main()
