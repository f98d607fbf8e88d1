#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""libvirt integration with a real libvirtd: the vhostd qemu hook
(configs/libvirt/hooks/qemu) creates a domain's vhostd port and
vhost-user-scsi controller on `virsh start` and removes them on
`virsh destroy`; the guest (our Debian kernel + busybox initramfs, a
`type='qemu'` domain under TCG) pings a dpdk-testpmd icmpecho client on the
same vhostd bridge and sees a LUN hot-added to the hook's controller.

The libvirtd is private: started by hand in its own mount namespace where
/etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and
/var/cache/libvirt are bind mounts of a temporary directory (libvirtd as
root reads qemu.conf and its hooks only from /etc/libvirt, which no option
moves), with qemu.conf user="root", security_driver="none",
cgroup_controllers=[], namespaces=[], stdio_handler="file" (no virtlogd).
The host's own libvirt files are never touched. QEMU 7.2 under TCG needs
vectors=0 on vhost-user virtio-net: a <qemu:override> on the interface's
user alias.

Also: `vhostctl libvirt xml` of live objects imports back into the same
objects, and a domain without shared memory is refused by the hook with
the fix in virsh's error.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import PEER_CPU, ROOT, VHOSTCTL, DaemonTestCase, vhost_port

from guest import Guest, GuestError, NetDev, Testpmd, build_images

HOOK = os.path.join(ROOT, "configs", "libvirt", "hooks", "qemu")
VM_MAC = "52:54:00:12:34:61"
TP_MAC = "02:00:00:00:0e:62"
PINGS = 5
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
BIND_DIRS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt",
             "log": "/var/log/libvirt", "cache": "/var/cache/libvirt"}

GUEST_SCRIPT = r'''
ifn=$(vt_ifname_by_mac %(mac)s) || vt_die "no interface with MAC %(mac)s"
vt_result ping "$(vt_ping_count 10.0.0.2 %(n)d -i 0.2)"
vt_result neigh "$(ip neigh show 10.0.0.2 dev $ifn)"
vt_mark pinged
# The LUN the host hot-adds to the hook's controller.
i=0
while [ $i -lt 90 ] && [ -z "$(vt_disks)" ]; do sleep 1; i=$((i + 1)); done
d=$(vt_disks | head -n 1)
vt_result disk "$d"
vt_result disk_sectors "$(cat /sys/block/$d/size 2>/dev/null)"
vt_mark disk
# Stay up until virsh destroy.
sleep 100000
'''


def _which(name):
    return shutil.which(name) or (os.path.exists("/usr/sbin/" + name) and "/usr/sbin/" + name)


class Libvirtd:
    """A libvirtd of our own, in a private mount namespace."""

    def __init__(self, workdir, hook_conf, extra_binds=None):
        """extra_binds: {absolute source dir: target} also bind-mounted (a
        private OVS run dir on /run/openvswitch, for libvirt's ovs-vsctl)."""
        self.dir = workdir
        self.binds = [(os.path.join(workdir, sub), target) for sub, target in BIND_DIRS.items()]
        self.binds += list((extra_binds or {}).items())
        self.sock_dir = os.path.join(workdir, "sock")
        self.uri = "qemu:///system?socket=%s/libvirt-sock" % self.sock_dir
        self.log_path = os.path.join(workdir, "libvirtd.log")
        self.proc = None
        os.makedirs(self.sock_dir)
        for sub in BIND_DIRS:
            os.makedirs(os.path.join(workdir, sub), exist_ok=True)
        etc = os.path.join(workdir, "etc")
        os.makedirs(os.path.join(etc, "hooks"))
        with open(os.path.join(etc, "libvirtd.conf"), "w") as f:
            f.write('unix_sock_dir = "%s"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n'
                    'log_outputs = "3:file:%s"\n' % (self.sock_dir, self.log_path))
        with open(os.path.join(etc, "qemu.conf"), "w") as f:
            f.write('user = "root"\ngroup = "root"\nsecurity_driver = "none"\n'
                    'dynamic_ownership = 0\nremember_owner = 0\ncgroup_controllers = []\n'
                    'namespaces = []\nstdio_handler = "file"\n')
        shutil.copy(HOOK, os.path.join(etc, "hooks", "qemu"))
        os.chmod(os.path.join(etc, "hooks", "qemu"), 0o755)
        with open(os.path.join(etc, "hooks", "vhostd.conf"), "w") as f:
            f.write(hook_conf)

    def start(self, timeout=30):
        binds = " && ".join("mkdir -p %s && mount --bind %s %s" % (target, src, target)
                            for src, target in self.binds)
        script = "%s && exec libvirtd -f %s/etc/libvirtd.conf -p %s/libvirtd.pid" % (
            binds, self.dir, self.dir)
        self._out = open(os.path.join(self.dir, "libvirtd.out"), "wb")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                      "sh", "-c", script], stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise unittest.SkipTest("libvirtd exited with %d: %s" % (
                    self.proc.returncode, self.log()[-1500:]))
            if os.path.exists(os.path.join(self.sock_dir, "libvirt-sock")):
                if self.virsh("version", check=False).returncode == 0:
                    return
            time.sleep(0.2)
        raise unittest.SkipTest("libvirtd did not come up: " + self.log()[-1500:])

    def virsh(self, *args, check=True, timeout=120):
        p = subprocess.run(["virsh", "-c", self.uri] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("virsh %s failed (%d): %s\n%s" % (
                " ".join(args), p.returncode, p.stderr, self.log()[-3000:]))
        return p

    def log(self):
        out = ""
        for name in ("libvirtd.out", "libvirtd.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()[-6000:]
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        self.proc = None


def domain_xml(name, kernel, initrd, sock, scsi_sock, workdir, shared=True, mac=VM_MAC,
               head=""):
    """head: more elements of <domain> (<uuid>, <metadata>); scsi_sock None: no
    vhost-user-scsi controller."""
    mem = ("<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"
           if shared else "")
    scsi = "" if scsi_sock is None else """
  <qemu:commandline>
    <qemu:arg value='-chardev'/>
    <qemu:arg value='socket,id=chr-vhostd-scsi0,path=%s'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='vhost-user-scsi-pci,id=vhostd-scsi0,chardev=chr-vhostd-scsi0,num_queues=1,bus=pcie.0,addr=0x10'/>
  </qemu:commandline>""" % scsi_sock
    return """<domain type='qemu' xmlns:qemu='%(ns)s'>
  <name>%(name)s</name>%(head)s
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  %(mem)s
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>%(kernel)s</kernel>
    <initrd>%(initrd)s</initrd>
    <cmdline>console=ttyS0,115200 panic=-1 rdinit=/init 8250.nr_uarts=2 mitigations=off ipv6.disable=1</cmdline>
  </os>
  <cpu mode='maximum' migratable='off'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='vhostuser'>
      <mac address='%(mac)s'/>
      <source type='unix' path='%(sock)s' mode='client'/>
      <model type='virtio'/>
      <alias name='ua-vm0'/>
    </interface>
    <serial type='file'><source path='%(w)s/console.log'/><target port='0'/></serial>
    <serial type='file'><source path='%(w)s/ctl.log'/><target port='1'/></serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>%(scsi)s
  <qemu:override>
    <qemu:device alias='ua-vm0'>
      <qemu:frontend>
        <qemu:property name='vectors' type='unsigned' value='0'/>
      </qemu:frontend>
    </qemu:device>
  </qemu:override>
</domain>
""" % {"ns": QEMU_NS, "name": name, "mem": mem, "kernel": kernel, "initrd": initrd,
       "mac": mac, "sock": sock, "scsi": scsi, "w": workdir, "head": head}


def results(path):
    res, marks = {}, set()
    try:
        with open(path, errors="replace") as f:
            for line in f:
                line = line.strip("\r\n\0 ")
                i = line.find("VT-")
                if i < 0:
                    continue
                kind, _, rest = line[i:].partition(" ")
                if kind == "VT-RESULT":
                    k, _, v = rest.partition("=")
                    res[k] = v
                elif kind == "VT-MARK":
                    marks.add(rest)
    except OSError:
        pass
    return res, marks


class LibvirtXmlRoundTrip(DaemonTestCase):
    """vhostctl libvirt xml of live objects imports back into the same objects."""

    def test_round_trip_live_objects(self):
        d = self.daemon(ports=[vhost_port("vm0", queues=4, mac=VM_MAC, mtu=9000),
                               vhost_port("vm1", bridge=None, mode="client",
                                          socket="/tmp/vhostd-lv-rt-vm1.sock")],
                        scsi=[{"name": "scsi0", "socket": "scsi0.sock", "queues": 2,
                               "max-sectors": 256}],
                        luns=[{"name": "disk0", "controller": "scsi0", "backend": "null",
                               "size": "64M"}])
        _, xml, _ = d.ctl("libvirt", "xml", "vm0", "vm1", "scsi0")
        self.assertIn("<memoryBacking>", xml)
        self.assertIn("disk0 at target 0 lun 0 (null)", xml)
        p = subprocess.run([VHOSTCTL, "libvirt", "import", "--dry-run", "-"], input=xml,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = json.loads(p.stdout)
        cfg = d.rpc("config.get")
        live = {o["name"]: o for o in cfg["ports"] + cfg["scsi"]}
        for o in got["ports"] + got["scsi"]:
            want = live[o["name"]]
            for k, v in o.items():
                self.assertEqual(want.get(k), v, "%s.%s: %s" % (o["name"], k, xml))
        self.assertEqual(sorted(o["name"] for o in got["ports"]), ["vm0", "vm1"])
        self.assertEqual([o["name"] for o in got["scsi"]], ["scsi0"])
        # Deleting and importing the snippet again recreates them.
        for m, n in (("port.del", "vm0"), ("port.del", "vm1"), ("scsi.del", "scsi0")):
            d.rpc(m, {"name": n})
        p = subprocess.run([VHOSTCTL, "-s", d.ctl_sock, "libvirt", "import", "-"], input=xml,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("port vm0: added", p.stdout)
        cfg2 = d.rpc("config.get")
        # The vhostd bridge is not in libvirt's XML (import --bridge sets one).
        strip = [{k: v for k, v in o.items() if k != "bridge"} for o in cfg2["ports"]]
        for o in cfg["ports"]:
            o.pop("bridge", None)
            self.assertIn(o, strip)
        self.assertEqual([s["name"] for s in cfg2["scsi"]], ["scsi0"])


def require_libvirt():
    """Skip unless a private libvirtd can boot our guest; the guest images."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root")
    for prog in ("libvirtd", "virsh", "unshare", "qemu-system-x86_64"):
        if not _which(prog):
            raise unittest.SkipTest("%s is not installed (scripts/setup-host.sh --test)" % prog)
    try:
        import pwd
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        raise unittest.SkipTest("no libvirt-qemu user: install libvirt-daemon-system")
    if subprocess.run(["unshare", "--mount", "true"]).returncode != 0:
        raise unittest.SkipTest("cannot make a mount namespace for a private libvirtd")
    try:
        return build_images()
    except GuestError as e:
        raise unittest.SkipTest("guest images: %s" % e)


class LibvirtHookTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        cls.images = require_libvirt()

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="vhostd-lv-")
        self.addCleanup(self._cleanup_tmp)

    def _cleanup_tmp(self):
        failed = any(t is self for t, _ in self._outcome.result.errors +
                     self._outcome.result.failures) if hasattr(self, "_outcome") else False
        if failed or os.environ.get("VHOSTD_GUEST_KEEP") == "1":
            print("\n  libvirt files kept in %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _libvirtd(self, d):
        conf = ("VHOSTCTL=%s\nVHOSTCTL_SOCKET=%s\nVHOSTD_BRIDGE=br0\nVHOSTD_HOOK_LOG=%s\n"
                % (VHOSTCTL, d.ctl_sock, os.path.join(self.tmp, "hook.log")))
        lv = Libvirtd(os.path.join(self.tmp, "libvirt"), conf)
        self.addCleanup(lv.stop)
        lv.start()
        return lv

    def _define(self, lv, name, xml):
        path = os.path.join(self.tmp, name + ".xml")
        with open(path, "w") as f:
            f.write(xml)
        lv.virsh("define", path)

        def undefine():
            lv.virsh("destroy", name, check=False)
            lv.virsh("undefine", name, check=False)
        self.addCleanup(undefine)

    def _names(self, d):
        return ({p["name"] for p in d.rpc("port.list")}, {s["name"] for s in d.rpc("scsi.list")})

    def test_hook_start_ping_destroy(self):
        d = self.daemon(ports=[vhost_port("tp0")], max_sleep_us=100)
        icmpecho(self, d, "tp0", TP_MAC, self.tmp)
        lv = self._libvirtd(d)

        # The guest's initrd: the generic one + this test's script.
        gdir = os.path.join(self.tmp, "guest")
        os.makedirs(gdir)
        g = Guest(GUEST_SCRIPT % {"mac": VM_MAC, "n": PINGS},
                  net=[NetDev(d.sock("vm0"), mac=VM_MAC, ip="10.0.0.1/24")], workdir=gdir)
        initrd = os.path.join(gdir, "initrd.img")
        g._initrd(initrd)
        name = "vhostd-lv-%d" % os.getpid()
        self._define(lv, name, domain_xml(name, self.images.kernel, initrd, d.sock("vm0"),
                                          d.sock("scsi0"), gdir))
        ports, scsi = self._names(d)
        self.assertNotIn("vm0", ports)
        self.assertNotIn("scsi0", scsi)

        t0 = time.monotonic()
        lv.virsh("start", name)
        # The hook created both objects before QEMU started.
        ports, scsi = self._names(d)
        self.assertIn("vm0", ports)
        self.assertIn("scsi0", scsi)
        vm0 = d.rpc("port.show", {"name": "vm0"})
        self.assertEqual((vm0["mode"], vm0["bridge"], vm0["mac"].lower()),
                         ("server", "br0", VM_MAC), vm0)
        d.wait_connected("vm0", timeout=60)
        # A LUN on the hook's controller, hot-added to the running guest.
        d.rpc("lun.add", {"name": "lvdisk", "controller": "scsi0", "backend": "ram",
                          "size": "16M"})

        res, marks, msg = wait_guest(gdir, lv, "disk", 240)
        boot = time.monotonic() - t0
        check_pinged(self, res, marks, msg, PINGS, TP_MAC)
        st = d.port_stats("vm0")
        self.assertGreaterEqual(st["rx"]["packets"], PINGS, st)
        self.assertGreaterEqual(st["tx"]["packets"], PINGS, st)
        self.assertTrue(d.rpc("scsi.show", {"name": "scsi0"})["status"]["connected"])
        self.assertEqual(res.get("disk_sectors"), str(16 * 1024 * 1024 // 512), msg)

        # virsh destroy: the release hook deletes the port and the controller.
        lv.virsh("destroy", name)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ports, scsi = self._names(d)
            if "vm0" not in ports and "scsi0" not in scsi:
                break
            time.sleep(0.2)
        self.assertNotIn("vm0", ports)
        self.assertNotIn("scsi0", scsi)
        self.assertEqual({l["name"] for l in d.rpc("lun.list")}, set())
        self.assertIn("tp0", ports)
        with open(os.path.join(self.tmp, "hook.log")) as f:
            hook_log = f.read()
        self.assertIn("port vm0: added", hook_log)
        self.assertIn("port vm0: deleted", hook_log)
        print("\n  start -> disk seen %.1fs; vm0 rx/tx %d/%d" % (
            boot, st["rx"]["packets"], st["tx"]["packets"]), flush=True)

    def test_hook_refuses_private_memory(self):
        d = self.daemon(ports=[])
        lv = self._libvirtd(d)
        name = "vhostd-lv-priv-%d" % os.getpid()
        self._define(lv, name, domain_xml(name, self.images.kernel, self.images.initramfs,
                                          d.sock("vm0"), d.sock("scsi0"), self.tmp,
                                          shared=False))
        p = lv.virsh("start", name, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("has no <memoryBacking>", p.stderr)
        self.assertIn("<access mode='shared'/>", p.stderr)
        self.assertEqual(self._names(d), (set(), set()))


def icmpecho(test, d, port, mac, workdir):
    """A dpdk-testpmd icmpecho (MAC @mac) on vhostd's port @port, connected."""
    tp = Testpmd(["net_virtio_user0,path=%s,mac=%s,queues=1" % (d.sock(port), mac)],
                 ["--forward-mode=icmpecho", "--nb-cores=1", "--rxq=1", "--txq=1"],
                 lcores="0@%d,1@%d" % (PEER_CPU, PEER_CPU), frontend=True, workdir=workdir)
    test.addCleanup(tp.stop)
    tp.start()
    d.wait_connected(port, timeout=30)


def wait_guest(gdir, lv, mark, timeout):
    """Wait for the guest's VT-MARK @mark (or its end) on its ctl serial:
    (results, marks, a message with the console and libvirtd's log)."""
    ctl_log = os.path.join(gdir, "ctl.log")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res, marks = results(ctl_log)
        if mark in marks or _has(ctl_log, "VT-ERROR") or _has(ctl_log, "VT-EXIT"):
            break
        time.sleep(0.5)
    res, marks = results(ctl_log)
    return res, marks, "guest results %s marks %s\nconsole:\n%s\nlibvirtd:\n%s" % (
        res, marks, _tail(os.path.join(gdir, "console.log")), lv.log()[-2000:])


def check_pinged(test, res, marks, msg, pings, peer_mac):
    """The guest's GUEST_SCRIPT-style ping: all replies, the peer's MAC learnt."""
    test.assertIn("pinged", marks, msg)
    test.assertEqual(res.get("ping"), str(pings), msg)
    test.assertIn(peer_mac, res.get("neigh", ""), msg)


def _has(path, text):
    try:
        with open(path, errors="replace") as f:
            return text in f.read()
    except OSError:
        return False


def _tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-n:])
    except OSError:
        return "(no %s)" % path


if __name__ == "__main__":
    unittest.main()
