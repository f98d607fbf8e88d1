#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Two Linux guests exchange files over TCP through vhostd's bridge, with
different offloads: vm0's port offers checksum offload and mergeable
buffers, vm1's port neither (csum=false, mrg-rxbuf=false). vm0's kernel
hands vhostd TCP segments with a partial checksum (NEEDS_CSUM); vhostd
must complete it in software before vm1, which did not negotiate
GUEST_CSUM, gets them (the virtio spec forbids NEEDS_CSUM buffers then).
vm1's TCP stack drops any segment with a bad checksum, so a file that
arrives intact proves the completion right (checked by hand: a completion
that writes a wrong checksum makes this test fail; note that Linux would
also accept the partial checksum itself, so this test cannot tell whether
the completion ran, only that it is correct when it does). The other direction
carries full checksums. Each guest serves a 1 MiB random file with busybox
nc and fetches the other's; the host compares SHA-256. The same exchange
runs once more over a cross-connect of two "single-copy" ports, where
frames go from one guest's buffers to the other's without an mbuf."""

import hashlib
import os
import shutil
import sys
import tempfile
import unittest

from harness import DaemonTestCase, vhost_port

from guest import Guest, GuestError, NetDev, build_images

MACS = ("52:54:00:12:35:01", "52:54:00:12:35:02")
IPS = ("10.0.1.1", "10.0.1.2")
VIRTIO_NET_F_CSUM = 0
VIRTIO_NET_F_GUEST_CSUM = 1
VIRTIO_NET_F_MRG_RXBUF = 15

GUEST_SCRIPT = r'''
# busybox nc: the listener sends the file and closes; the client reads to EOF.
nc -l -p 8080 < /vt/files/blob &
vt_mark serving
vt_wait_host 240 >/dev/null || vt_die "no go from the host"
ok=0
for i in 1 2 3 4 5; do
	if nc %(peer)s 8080 > /tmp/got && [ -s /tmp/got ]; then ok=1; break; fi
	sleep 1
done
[ $ok = 1 ] || vt_die "fetching from %(peer)s failed"
vt_result got_sha "$(sha256sum /tmp/got | cut -d' ' -f1)"
vt_result got_len "$(wc -c < /tmp/got)"
S=/sys/class/net/$(vt_ifname_by_mac %(mac)s)/statistics
vt_result rx_errors $(cat $S/rx_errors)
vt_result tcp_in_csum_errors "$(awk '$1 == "Tcp:" { if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1 } else print $(c["InCsumErrors"]) }' /proc/net/snmp)"
vt_mark fetched
vt_wait_host 240 >/dev/null
'''


class GuestTcpTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() == 0:
            try:
                build_images()
            except GuestError as e:
                raise unittest.SkipTest("guest images: %s" % e)

    def exchange(self, d):
        """Boot both guests on d's ports vm0/vm1 and swap the files."""
        tmp = tempfile.mkdtemp(prefix="vhostd-it-tcp-")
        self.addCleanup(shutil.rmtree, tmp, True)
        blobs = [os.urandom(1 << 20) for _ in range(2)]
        shas = [hashlib.sha256(b).hexdigest() for b in blobs]
        guests = []
        for i in range(2):
            g = Guest(GUEST_SCRIPT % {"peer": IPS[1 - i], "mac": MACS[i]},
                      net=[NetDev(d.sock("vm%d" % i), mac=MACS[i], ip=IPS[i] + "/24")],
                      files={"/vt/files/blob": blobs[i]}, timeout=300, smp=1, mem_mb=512,
                      cmdline="ipv6.disable=1", name="tcp-vm%d" % i,
                      workdir=os.path.join(tmp, "vm%d" % i))
            g.start()
            self.addCleanup(g.close)
            guests.append(g)
        for g in guests:
            g.wait_marker("serving", timeout=240)
        for g in guests:
            g.send("go")
        for g in guests:
            g.wait_marker("fetched", timeout=240)
        feats = [int(d.rpc("port.show", {"name": "vm%d" % i})["status"]["features"], 16)
                 for i in range(2)]
        stats = [d.port_stats("vm%d" % i) for i in range(2)]
        res = []
        for g in guests:
            g.send("done")
        for g in guests:
            rc, r = g.wait()
            self.assertEqual(rc, 0, r)
            res.append(r)
        msg = "results %s\nfeatures %s\nstats %s" % (res, [hex(f) for f in feats], stats)
        # Each guest got the other's file, byte for byte, with no checksum
        # errors on the way.
        self.assertEqual(res[1]["got_sha"], shas[0], msg)
        self.assertEqual(res[0]["got_sha"], shas[1], msg)
        self.assertEqual(res[0]["got_len"], str(1 << 20), msg)
        self.assertEqual(res[1]["got_len"], str(1 << 20), msg)
        for r in res:
            self.assertEqual(r["tcp_in_csum_errors"], "0", msg)
            self.assertEqual(r["rx_errors"], "0", msg)
        # 1 MiB each way at most 1500 bytes a frame: at least 700 frames.
        # Every frame vhostd took from one guest was delivered to the other or
        # counted as a drop: a TCG guest can be slow to refill its ring (TCP
        # retransmits), so queue-full drops are allowed but must add up.
        for i in range(2):
            rx, tx = stats[i]["rx"], stats[1 - i]["tx"]
            self.assertGreater(rx["packets"], 700, msg)
            self.assertEqual(sum(rx["drops"].values()), 0, msg)
            self.assertEqual(rx["packets"], tx["packets"] + tx["drops"]["queue-full"], msg)
            self.assertEqual(sum(tx["drops"].values()), tx["drops"]["queue-full"], msg)
        return feats, stats, msg

    def test_tcp_between_guests_with_and_without_csum_offload(self):
        d = self.daemon(ports=[vhost_port("vm0"),
                               vhost_port("vm1", csum=False, **{"mrg-rxbuf": False})],
                        max_sleep_us=100)
        feats, stats, msg = self.exchange(d)
        # The offloads were negotiated as configured.
        self.assertTrue(feats[0] >> VIRTIO_NET_F_CSUM & 1, msg)
        self.assertTrue(feats[0] >> VIRTIO_NET_F_GUEST_CSUM & 1, msg)
        self.assertTrue(feats[0] >> VIRTIO_NET_F_MRG_RXBUF & 1, msg)
        self.assertFalse(feats[1] >> VIRTIO_NET_F_CSUM & 1, msg)
        self.assertFalse(feats[1] >> VIRTIO_NET_F_GUEST_CSUM & 1, msg)
        self.assertFalse(feats[1] >> VIRTIO_NET_F_MRG_RXBUF & 1, msg)

    def test_tcp_between_guests_over_single_copy_xconnect(self):
        # Guest to guest with one copy (vhost/net_copy.c), under interrupts and
        # event idx: vm0 with mergeable buffers, vm1 with one buffer a frame;
        # both offer checksum offload, so NEEDS_CSUM headers go through as is.
        # Data segments take single copy, ACKs (256 bytes or less) the mbuf
        # path: the two paths interleave on the same rings.
        d = self.daemon(ports=[vhost_port("vm0", bridge=None, **{"single-copy": True}),
                               vhost_port("vm1", bridge=None, **{"single-copy": True,
                                                                  "mrg-rxbuf": False})],
                        xconnects=[{"name": "x0", "ports": ["vm0", "vm1"]}],
                        max_sleep_us=100)
        feats, stats, msg = self.exchange(d)
        self.assertTrue(feats[1] >> VIRTIO_NET_F_GUEST_CSUM & 1, msg)
        self.assertFalse(feats[1] >> VIRTIO_NET_F_MRG_RXBUF & 1, msg)
        for i in range(2):
            tx = stats[i]["tx"]
            # Each guest sends 1 MiB: most frames are full segments. Some
            # follow an ACK by less than the 50 us the PMD waits before it
            # tries single copy again, and take the mbuf path.
            self.assertGreater(tx["single-copy"], tx["packets"] // 4, msg)
            self.assertLessEqual(tx["single-copy"], tx["packets"], msg)


if __name__ == "__main__":
    unittest.main()
