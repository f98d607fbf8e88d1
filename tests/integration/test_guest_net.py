#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A real Linux guest through vhostd: QEMU (TCG) + the Debian kernel's
virtio-net driver (2 queue pairs, vectors=0) on bridge br0, pinging a
dpdk-testpmd virtio-user client in icmpecho mode on a second port.

The guest pings from each vCPU (XPS maps vCPU N to tx queue N), so both of
its tx queues carry traffic. Checks: the guest saw 2 rx/2 tx queues, every
echo got a reply, vhostd counted rx on both vm0 queues, the MAC table
learned both MACs on the right ports, and the frame counts of the guest
(sysfs + /proc/net/snmp), vhostd (vm0, tp0) and testpmd agree exactly.
IPv6 is disabled in the guest (kernel command line), so the only frames
besides the pings are ARP.

Two socket modes: vhostd server + QEMU client, and vhostd client + QEMU
server (chardev server=on).
"""

import os
import shutil
import sys
import tempfile
import unittest

from harness import PEER_CPU, DaemonTestCase, vhost_port

from guest import Guest, GuestError, NetDev, Testpmd, build_images

VM_MAC = "52:54:00:12:34:01"
TP_MAC = "02:00:00:00:0e:02"
PINGS = 10

# Runs after /vt/setup.sh brought the NIC up with 10.0.0.1/24.
GUEST_SCRIPT = r'''
ifn=$(vt_ifname_by_mac %(mac)s) || vt_die "no interface with MAC %(mac)s"
set -- $(vt_queues $ifn)
vt_result rxq $1
vt_result txq $2
# XPS maps vCPU N to tx queue N: ping from each vCPU.
vt_result ping0 "$(taskset 1 sh -c '. /vt/lib.sh; vt_ping_count 10.0.0.2 %(n)d -i 0.2')"
vt_result ping1 "$(taskset 2 sh -c '. /vt/lib.sh; vt_ping_count 10.0.0.2 %(n)d -i 0.2')"
vt_result neigh "$(ip neigh show 10.0.0.2 dev $ifn)"
S=/sys/class/net/$ifn/statistics
vt_result tx_packets $(cat $S/tx_packets)
vt_result rx_packets $(cat $S/rx_packets)
vt_result tx_dropped $(cat $S/tx_dropped)
vt_result rx_dropped $(cat $S/rx_dropped)
# Ip: InReceives .. OutRequests; Icmp: InEchoReps, OutEchos (by header name).
snmp() { awk -v p="$1:" -v f="$2" '$1 == p { if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1 } else print $(c[f]) }' /proc/net/snmp; }
vt_result ip_in "$(snmp Ip InReceives)"
vt_result ip_out "$(snmp Ip OutRequests)"
vt_result icmp_in_echo_reps "$(snmp Icmp InEchoReps)"
vt_result icmp_out_echos "$(snmp Icmp OutEchos)"
vt_result ipv6 "$(ls /proc/net/if_inet6 2>/dev/null || echo none)"
vt_mark pinged
line=$(vt_wait_host 120) || vt_die "no word from the host"
vt_result host_said "$line"
'''


class GuestNetTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() == 0:
            try:
                build_images()
            except GuestError as e:
                raise unittest.SkipTest("guest images: %s" % e)

    def _cleanup_tmp(self, tmp):
        failed = any(t is self for t, _ in self._outcome.result.errors +
                     self._outcome.result.failures) if hasattr(self, "_outcome") else False
        if failed or os.environ.get("VHOSTD_GUEST_KEEP") == "1":
            sys.stderr.write("guest/testpmd files kept in %s\n" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def _testpmd(self, d, workdir):
        tp = Testpmd(["net_virtio_user0,path=%s,mac=%s,queues=1" % (d.sock("tp0"), TP_MAC)],
                     ["--forward-mode=icmpecho", "--nb-cores=1", "--rxq=1", "--txq=1"],
                     lcores="0@%d,1@%d" % (PEER_CPU, PEER_CPU), frontend=True,
                     workdir=workdir)
        self.addCleanup(tp.stop)
        return tp

    def _run(self, qemu_server):
        tmp = tempfile.mkdtemp(prefix="vhostd-it-guest-")
        self.addCleanup(self._cleanup_tmp, tmp)
        if qemu_server:
            vm_sock = os.path.join(tmp, "vm0.sock")
            vm0 = vhost_port("vm0", queues=2, socket=vm_sock, mode="client")
        else:
            vm0 = vhost_port("vm0", queues=2)
        d = self.daemon(ports=[vm0, vhost_port("tp0")], max_sleep_us=100)
        if not qemu_server:
            vm_sock = d.sock("vm0")

        tp = self._testpmd(d, tmp)
        tp.start()
        d.wait_connected("tp0", timeout=30)

        guest = Guest(GUEST_SCRIPT % {"mac": VM_MAC, "n": PINGS},
                      net=[NetDev(vm_sock, queues=2, mac=VM_MAC, ip="10.0.0.1/24",
                                  server=qemu_server)],
                      timeout=180, cmdline="ipv6.disable=1",
                      name="guest-net-%s" % ("qemu-server" if qemu_server else "qemu-client"),
                      workdir=os.path.join(tmp, "guest"))
        with guest as g:
            # Both queue pairs enabled in vhostd (QEMU enables them when the
            # driver sets DRIVER_OK during boot).
            d.wait_connected("vm0", timeout=150, queues=2)
            g.wait_marker("pinged", timeout=170)
            res = dict(g.results)
            # While both frontends are up: the MAC table.
            table = d.rpc("bridge.show", {"name": "br0"})["mac-table"]
            port_show = d.rpc("port.show", {"name": "vm0"})
            pmd = d.rpc("pmd.show")
            # testpmd prints its totals when it stops; nothing sends after that
            # (the guest is parked in vt_wait_host, IPv6 is off).
            tp.stop()
            totals = tp.totals()
            s_vm, s_tp = d.port_stats("vm0"), d.port_stats("tp0")
            g.send("done")
            rc, res = g.wait()
            boot = g.boot_seconds
        msg = "guest results %s\ntestpmd totals %s\nvm0 %s\ntp0 %s" % (res, totals, s_vm, s_tp)

        # --- the guest ---------------------------------------------------
        self.assertEqual(rc, 0, msg)
        self.assertEqual(res.get("host_said"), "done", msg)
        self.assertEqual((res.get("rxq"), res.get("txq")), ("2", "2"), msg)
        self.assertEqual((res.get("ping0"), res.get("ping1")), (str(PINGS), str(PINGS)), msg)
        self.assertIn(TP_MAC, res.get("neigh", ""), msg)
        self.assertEqual(res.get("ipv6"), "none", msg)
        g_tx, g_rx = int(res["tx_packets"]), int(res["rx_packets"])
        self.assertEqual(int(res["tx_dropped"]) + int(res["rx_dropped"]), 0, msg)
        # IP traffic is exactly the pings; anything else is ARP (one request,
        # maybe a re-probe: a handful at most).
        self.assertEqual(int(res["icmp_out_echos"]), 2 * PINGS, msg)
        self.assertEqual(int(res["icmp_in_echo_reps"]), 2 * PINGS, msg)
        self.assertEqual(int(res["ip_out"]), 2 * PINGS, msg)
        self.assertEqual(int(res["ip_in"]), 2 * PINGS, msg)
        arp_out, arp_in = g_tx - 2 * PINGS, g_rx - 2 * PINGS
        self.assertTrue(1 <= arp_out <= 3 and 1 <= arp_in <= 3, msg)

        # --- vhostd ------------------------------------------------------
        self.assertTrue(port_show["status"]["connected"], port_show)
        learned = {(e["mac"].lower(), e["port"]) for e in table}
        self.assertIn((VM_MAC, "vm0"), learned, table)
        self.assertIn((TP_MAC, "tp0"), learned, table)
        qs = s_vm["queues"]
        self.assertEqual(len(qs), 2, qs)
        self.assertTrue(all(q["rx-enabled"] and q["tx-enabled"] for q in qs), qs)
        # Both guest tx queues carried pings (PINGS each, plus ARP somewhere).
        self.assertTrue(all(q["rx-packets"] >= PINGS for q in qs), qs)
        self.assertEqual(sum(q["rx-packets"] for q in qs), s_vm["rx"]["packets"], qs)
        self.assertEqual(sum(q["tx-packets"] for q in qs), s_vm["tx"]["packets"], qs)
        polled = {(x["port"], x["queue"]) for p in pmd for x in p["queues"] if x["type"] == "net"}
        self.assertTrue({("vm0", 0), ("vm0", 1), ("tp0", 0)} <= polled, pmd)
        # What the guest sent is what vhostd received from vm0 and sent to tp0;
        # the other way round likewise. No drops anywhere.
        self.assertEqual(s_vm["rx"]["packets"], g_tx, msg)
        self.assertEqual(s_tp["tx"]["packets"], g_tx, msg)
        self.assertEqual(s_tp["rx"]["packets"], g_rx, msg)
        self.assertEqual(s_vm["tx"]["packets"], g_rx, msg)
        for s in (s_vm, s_tp):
            for side in ("rx", "tx"):
                self.assertEqual(sum(s[side]["drops"].values()), 0, msg)
                self.assertEqual(s[side]["errors"], 0, msg)
        # Bytes: vhostd forwards frames unchanged between the two ports.
        self.assertEqual(s_vm["rx"]["bytes"], s_tp["tx"]["bytes"], msg)
        self.assertEqual(s_tp["rx"]["bytes"], s_vm["tx"]["bytes"], msg)

        # --- testpmd -----------------------------------------------------
        # It got every frame the guest sent and answered each ARP request and
        # echo request (so its tx is what the guest received).
        self.assertEqual(totals.get("rx"), g_tx, msg)
        self.assertEqual(totals.get("tx"), g_rx, msg)
        self.assertEqual(totals.get("rx_dropped", 0) + totals.get("tx_dropped", 0), 0, msg)
        sys_msg = "boot %.1fs, guest tx/rx %d/%d (ARP %d/%d), vm0 rx queues %s" % (
            boot or -1, g_tx, g_rx, arp_out, arp_in, [q["rx-packets"] for q in qs])
        print("\n  " + sys_msg, flush=True)

    def test_guest_pings_testpmd_vhostd_server(self):
        """QEMU connects to vhostd's socket (vhostd is the vhost-user server)."""
        self._run(qemu_server=False)

    def test_guest_pings_testpmd_vhostd_client(self):
        """vhostd's vm0 port connects to QEMU's listening chardev."""
        self._run(qemu_server=True)


if __name__ == "__main__":
    unittest.main()
