#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Self-test of vhostd-scsi-bench and its vhost_user_frontend library without
vhostd: qemu-storage-daemon exports a raw file as vhost-user-blk and the bench
drives it with --type blk.

    python3 tests/tools/selftest_scsi_bench.py BUILD_DIR/bench/vhostd-scsi-bench [unittest args]

Needs qemu-storage-daemon (Debian qemu-system-common; SCSI_BENCH_QSD overrides
its path). Runs as any user; uses hugetlb memory when free 2 MiB pages exist,
a plain memfd otherwise. SCSI_BENCH_CPU pins the bench (default: none).
"""

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

BENCH = os.environ.get("SCSI_BENCH")
QSD = os.environ.get("SCSI_BENCH_QSD") or shutil.which("qemu-storage-daemon") or \
    "qemu-storage-daemon"
BENCH_CPU = os.environ.get("SCSI_BENCH_CPU")
IMG_SIZE = 64 << 20
MASK = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def pattern_block(seed, lba, block_size):
    """The content vhostd-scsi-bench writes to block lba (see bench/README.md)."""
    wpb = block_size // 8
    base = seed + lba * wpb
    words = [lba & MASK, seed & MASK] + [splitmix64((base + k) & MASK) for k in range(2, wpb)]
    return struct.pack("<%dQ" % wpb, *words)


class Qsd:
    """qemu-storage-daemon exporting one raw file as vhost-user-blk."""

    def __init__(self, tmpdir, img, queues=1, tag="q"):
        self.sock = os.path.join(tmpdir, "blk-%s.sock" % tag)
        self.log_path = os.path.join(tmpdir, "qsd-%s.log" % tag)
        argv = [QSD, "--blockdev", "driver=file,node-name=f,filename=%s" % img,
                "--export", "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,"
                "addr.path=%s,writable=on,num-queues=%d" % (self.sock, queues)]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("qemu-storage-daemon did not start:\n" + self.log_text())
            time.sleep(0.05)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class ScsiBenchSelftest(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="scsibench-")
        self.img = os.path.join(self.tmpdir, "disk.img")
        with open(self.img, "wb") as f:
            f.truncate(IMG_SIZE)
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def qsd(self, **kw):
        d = Qsd(self.tmpdir, self.img, tag=str(len(self.daemons)), **kw)
        self.daemons.append(d)
        return d

    def bench(self, sock, *args, expect=0, timeout=60):
        argv = [BENCH, "--socket", sock, "--type", "blk"]
        if BENCH_CPU is not None:
            argv += ["--cpu", BENCH_CPU]
        argv += list(args)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if expect is not None and p.returncode != expect:
            logs = "".join(d.log_text() for d in self.daemons)
            self.fail("%s: exit %d (expected %d)\nstdout:\n%s\nstderr:\n%s\nqsd:\n%s" % (
                " ".join(argv), p.returncode, expect, p.stdout, p.stderr, logs))
        return p

    def test_verify(self):
        d = self.qsd()
        p = self.bench(d.sock, "--verify", "--blocks", "4096", "--bs", "16k", "--qd", "16")
        self.assertIn("verify ok 4096 blocks", p.stdout)
        p = self.bench(d.sock, "--verify", "--indirect", "--no-event-idx", "--lba", "7",
                       "--blocks", "1000", "--bs", "4096")
        self.assertIn("verify ok 1000 blocks", p.stdout)

    def test_randread(self):
        d = self.qsd()
        p = self.bench(d.sock, "--rw", "randread", "--time", "2", "--json")
        r = json.loads(p.stdout)
        self.assertEqual(r["errors"], 0)
        self.assertGreater(r["ios"], 1000)
        self.assertGreater(r["iops"], 500)
        self.assertAlmostEqual(r["seconds"], 2.0, delta=0.5)
        lat = r["lat_us"]
        self.assertTrue(0 < lat["p50"] <= lat["p99"] <= lat["p99.9"] <= lat["max"], lat)
        sys.stderr.write("\n  qsd randread 4k qd32: %.0f IOPS, p50 %.1f us, p99 %.1f us\n"
                         % (r["iops"], lat["p50"], lat["p99"]))

    def test_pattern_reaches_the_file(self):
        seed, lba, blocks = 0x5eed1234, 100, 300
        d = self.qsd()
        p = self.bench(d.sock, "--write-pattern", str(seed), "--lba", str(lba),
                       "--blocks", str(blocks), "--bs", "8k", "--sync")
        self.assertIn("wrote %d blocks at lba %d" % (blocks, lba), p.stdout)
        self.assertIn("sync ok", p.stdout)
        p = self.bench(d.sock, "--read-pattern-check", str(seed), "--lba", str(lba),
                       "--blocks", str(blocks))
        self.assertIn("pattern ok %d blocks" % blocks, p.stdout)
        # a different seed must not match
        p = self.bench(d.sock, "--read-pattern-check", str(seed + 1), "--lba", str(lba),
                       "--blocks", str(blocks), expect=1)
        self.assertIn("pattern mismatch: first bad block lba %d" % lba, p.stdout)
        d.stop()
        with open(self.img, "rb") as f:
            f.seek((lba - 1) * 512)
            self.assertEqual(f.read(512), bytes(512), "block before the range was touched")
            for i in range(blocks):
                self.assertEqual(f.read(512), pattern_block(seed, lba + i, 512),
                                 "block %d differs" % (lba + i))
            self.assertEqual(f.read(512), bytes(512), "block after the range was touched")

    def test_multiqueue_randrw(self):
        d = self.qsd(queues=2)
        p = self.bench(d.sock, "--queues", "2", "--rw", "randrw", "--time", "1", "--qd", "8",
                       "--indirect", "--json")
        r = json.loads(p.stdout)
        self.assertEqual(r["queues"], 2)
        self.assertEqual(r["errors"], 0)
        self.assertGreater(r["ios"], 100)
        # more queues than the device has is refused up front
        p = self.bench(d.sock, "--queues", "3", "--time", "1", expect=2)
        self.assertIn("request queue", p.stderr)

    def test_no_hugetlb_sequential(self):
        d = self.qsd()
        p = self.bench(d.sock, "--rw", "write", "--bs", "64k", "--qd", "4", "--time", "1",
                       "--no-hugetlb", "--size", "8M", "--json")
        r = json.loads(p.stdout)
        self.assertFalse(r["hugetlb"])
        self.assertEqual(r["errors"], 0)
        self.assertEqual(r["region_blocks"], (8 << 20) // 512)

    def test_errors_are_reported(self):
        p = self.bench(os.path.join(self.tmpdir, "nonexistent.sock"), "--verify", expect=2)
        self.assertIn("connect", p.stderr)
        self.assertIn("No such file or directory", p.stderr)
        d = self.qsd()
        p = self.bench(d.sock, "--verify", "--lba", str(IMG_SIZE // 512 - 10), "--blocks", "20",
                       expect=2)
        self.assertIn("beyond the device", p.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        BENCH = sys.argv.pop(1)
    if not BENCH or not os.access(BENCH, os.X_OK):
        sys.exit("usage: selftest_scsi_bench.py BUILD_DIR/bench/vhostd-scsi-bench "
                 "[unittest args] (or SCSI_BENCH=...)")
    if not shutil.which(QSD) and not os.access(QSD, os.X_OK):
        print("qemu-storage-daemon not found: skipping")
        sys.exit(77)
    unittest.main(verbosity=2)
