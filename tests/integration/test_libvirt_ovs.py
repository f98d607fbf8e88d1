#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""libvirt + OVS: a domain whose vhostuser interface goes on an OVS bridge.

A private ovsdb-server + ovs-vswitchd (userspace datapath, as test_ovs.py),
a private libvirtd (as test_libvirt.py, with the private OVS run dir also
bind-mounted on /run/openvswitch: libvirtd runs ovs-vsctl with its default
database for `virsh domifstat`) and vhostd. The domain's <metadata>
<vhostd:ovs> puts its interface on OVS (libvirt 9.0 refuses a <virtualport>
on a vhostuser interface); the hook (VHOSTD_OVS_BRIDGE) creates the vhostd
port and attaches it to the OVS bridge before QEMU starts. The guest pings
a dpdk-testpmd icmpecho on a second vhostd port attached to the same OVS
bridge: guest -> vhostd -> tap -> OVS -> tap -> vhostd -> testpmd and back.
Then `virsh domifstat` (libvirt reads the OVS Interface row's statistics,
which vhostd writes from the port's counters) matches vhostd's port stats,
and `virsh destroy` removes the OVS row and the port.

Run by hand: VHOSTD_BUILD=build python3 tests/integration/test_libvirt_ovs.py -v
"""

import os
import re
import shutil
import tempfile
import time
import unittest

from harness import VHOSTCTL, DaemonTestCase, vhost_port
from test_libvirt import Libvirtd, check_pinged, icmpecho, domain_xml, require_libvirt, wait_guest
from test_ovs import BRIDGE, Ovs, ovs_missing, wait_for

from guest import Guest, NetDev

VM_MAC = "52:54:00:12:34:71"
TP_MAC = "02:00:00:00:0e:72"
IFACE_ID = "7f1c2b3a-0000-4000-8000-00000000a001"
VM_UUID = "0b8c6a0e-8f2a-4b6b-9c1c-3f0d5a9e7b71"
VHOSTD_NS = "http://vhostd.org/schemas/libvirt/1.0"
PINGS = 5

GUEST_SCRIPT = r'''
ifn=$(vt_ifname_by_mac %(mac)s) || vt_die "no interface with MAC %(mac)s"
vt_result ping "$(vt_ping_count 10.0.0.2 %(n)d -i 0.2)"
vt_result neigh "$(ip neigh show 10.0.0.2 dev $ifn)"
vt_mark pinged
sleep 100000
'''


def head_xml():
    """The domain's <uuid> and the <metadata> that puts its interface on OVS."""
    return """
  <uuid>%s</uuid>
  <metadata>
    <vhostd:ovs xmlns:vhostd='%s'>
      <vhostd:port mac='%s' interfaceid='%s'/>
    </vhostd:ovs>
  </metadata>""" % (VM_UUID, VHOSTD_NS, VM_MAC, IFACE_ID)


def domifstat(text):
    """{'rx_packets': N, ...} from `virsh domifstat DOM IF` ("IF rx_bytes 123")."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"\S+\s+(\w+)\s+(-?\d+)$", line.strip())
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


class LibvirtOvsTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        why = ovs_missing()
        if why:
            raise unittest.SkipTest(why)
        cls.images = require_libvirt()

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="vhostd-lvovs-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.ovs = Ovs()
        self.addCleanup(self.ovs.cleanup)
        # The bind mount target of libvirtd's namespace: made here if the
        # host has none, removed again (only if still empty).
        if not os.path.isdir("/run/openvswitch"):
            os.makedirs("/run/openvswitch")
            self.addCleanup(lambda: os.path.isdir("/run/openvswitch") and
                            not os.listdir("/run/openvswitch") and
                            os.rmdir("/run/openvswitch"))

    def tearDown(self):
        failed = hasattr(self, "_outcome") and any(
            err for t, err in (self._outcome.result.errors + self._outcome.result.failures)
            if t is self)
        if failed:
            print("\n" + self.ovs.log())
            try:
                with open(os.path.join(self.tmp, "hook.log")) as f:
                    print("---- hook.log ----\n" + f.read())
            except OSError:
                pass
        super().tearDown()

    def test_domain_on_ovs_domifstat(self):
        self.ovs.start_db()
        self.ovs.start_vswitchd()
        self.ovs.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev",
                       wait=True)
        d = self.daemon(ports=[vhost_port("tp0", bridge=None, mac=TP_MAC)], bridges=(),
                        extra={"ovs": {"db": "unix:" + self.ovs.sock, "stats-interval-s": 1}},
                        max_sleep_us=100)
        icmpecho(self, d, "tp0", TP_MAC, self.tmp)
        d.ctl("ovs", "attach", "tp0", BRIDGE)

        conf = ("VHOSTCTL=%s\nVHOSTCTL_SOCKET=%s\nVHOSTD_OVS_BRIDGE=%s\nVHOSTD_HOOK_LOG=%s\n"
                % (VHOSTCTL, d.ctl_sock, BRIDGE, os.path.join(self.tmp, "hook.log")))
        lv = Libvirtd(os.path.join(self.tmp, "libvirt"), conf,
                      extra_binds={os.path.join(self.ovs.dir, "run"): "/run/openvswitch"})
        self.addCleanup(lv.stop)
        lv.start()

        gdir = os.path.join(self.tmp, "guest")
        os.makedirs(gdir)
        g = Guest(GUEST_SCRIPT % {"mac": VM_MAC, "n": PINGS},
                  net=[NetDev(d.sock("vm0"), mac=VM_MAC, ip="10.0.0.1/24")], workdir=gdir)
        initrd = os.path.join(gdir, "initrd.img")
        g._initrd(initrd)
        name = "vhostd-lvovs-%d" % os.getpid()
        path = os.path.join(self.tmp, name + ".xml")
        with open(path, "w") as f:
            f.write(domain_xml(name, self.images.kernel, initrd, d.sock("vm0"), None, gdir,
                               mac=VM_MAC, head=head_xml()))
        lv.virsh("define", path)

        def undefine():
            lv.virsh("destroy", name, check=False)
            lv.virsh("undefine", name, check=False)
        self.addCleanup(undefine)

        t0 = time.monotonic()
        lv.virsh("start", name)
        # The hook created the port and attached it before QEMU started.
        att = d.rpc("ovs.show", {"port": "vm0"})
        self.assertEqual((att["state"], att["bridge"], att.get("iface-id"), att.get("vm-uuid")),
                         ("attached", BRIDGE, IFACE_ID, VM_UUID), att)
        ifname = os.path.basename(d.sock("vm0"))
        row = self.ovs.iface(ifname)
        ext = row["external_ids"]
        self.assertEqual((ext.get("iface-id"), ext.get("vm-uuid"), ext.get("attached-mac")),
                         (IFACE_ID, VM_UUID, VM_MAC), row)
        # libvirt found the row (QEMU mode='client': by the socket's basename).
        dl = lv.virsh("domiflist", name).stdout
        self.assertIn(ifname, dl, dl)
        d.wait_connected("vm0", timeout=60)

        res, marks, msg = wait_guest(gdir, lv, "pinged", 120)
        boot = time.monotonic() - t0
        check_pinged(self, res, marks, msg, PINGS, TP_MAC)

        # virsh domifstat: the guest's view (libvirt swaps OVS's rx/tx), equal
        # to vhostd's counters once both settled (vhostd writes every 1 s).
        last = {}

        def settled():
            st = d.port_stats("vm0")
            p = lv.virsh("domifstat", name, ifname, check=False)
            last["virsh"], last["vhostd"] = p.stdout + p.stderr, st
            if p.returncode != 0:
                return None
            s = domifstat(p.stdout)
            ok = (s.get("rx_packets") == st["tx"]["packets"] and
                  s.get("tx_packets") == st["rx"]["packets"] and
                  s.get("rx_bytes") == st["tx"]["bytes"] and
                  s.get("tx_bytes") == st["rx"]["bytes"])
            return s if ok else None
        s = wait_for("domifstat == vhostd stats (%s)" % last, settled, timeout=15)
        self.assertGreaterEqual(s["rx_packets"], PINGS, last)
        self.assertGreaterEqual(s["tx_packets"], PINGS, last)
        # Also by MAC (virsh domifstat accepts either).
        self.assertEqual(lv.virsh("domifstat", name, VM_MAC, check=False).returncode, 0)

        # virsh destroy: the release hook detaches (OVS row gone) and deletes.
        lv.virsh("destroy", name)
        wait_for("vm0 deleted", lambda: "vm0" not in {p["name"] for p in d.rpc("port.list")})
        wait_for("OVS row of vm0 gone", lambda: self.ovs.vsctl(
            "--bare", "--columns=name", "find", "Interface",
            "external_ids:vhostd-port=vm0") == "")
        self.assertEqual(self.ovs.vsctl("--bare", "--columns=name", "find", "Interface",
                                        "name=%s" % ifname), "")
        self.assertEqual(d.rpc("ovs.show", {"port": "tp0"})["state"], "attached")
        with open(os.path.join(self.tmp, "hook.log")) as f:
            hook_log = f.read()
        self.assertIn("port vm0: attached to OVS bridge %s" % BRIDGE, hook_log)
        self.assertIn("port vm0: deleted", hook_log)
        print("\n  start -> pinged %.1fs; domifstat rx/tx %d/%d packets" % (
            boot, s["rx_packets"], s["tx_packets"]), flush=True)


if __name__ == "__main__":
    unittest.main()
