#!/usr/bin/env python3
"""Self-test of the guest-VM test infrastructure, without vhostd.

    python3 tests/guest/selftest.py [-v] [TEST...]     (as root)

Tests (default: all):
  net      2-queue vhost-user virtio-net (vectors=0) against dpdk-testpmd
           (net_vhost PMD is the vhost-user server, QEMU the client) in
           icmpecho mode: the guest pings 10.0.0.2 from each vCPU (so from
           each tx queue); checks the reply count, the 2 rx/tx queues in
           /sys/class/net/eth0/queues and testpmd's per-queue counters.
  net-server  the same with QEMU as the vhost-user server (chardev
           server=on) and testpmd connecting (net_vhost client=1).
  blk      vhost-user-blk served by qemu-storage-daemon (2 queues): the guest
           writes a shipped random pattern with dd oflag=direct, reads it
           back with iflag=direct; the host checks the bytes in the image.
  scsi     QEMU's built-in virtio-scsi (not vhost-user: no peer without
           vhostd) with a file disk: proves the scsi/sd/ext4 modules; mkfs +
           mount + file round trip. Also exercises the host<->guest channel
           (vt_mark / wait_marker / send / vt_wait_host) and QMP.
  scsi-hotplug  QemuScsiDev (virtio-scsi-pci, 2 request queues) and
           Guest.scsi_hot_add / scsi_hot_remove over QMP: the guest sees LUN 1
           appear and disappear through virtio-scsi events, without a rescan.
  timeout  a guest that never finishes: GuestTimeout and QEMU is gone.

Exit status 0 when every selected test passed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guest import (BlkDev, Guest, GuestTimeout, NetDev, QemuScsiDev,  # noqa: E402
                   ScsiDisk, Testpmd, build_images, ensure_packages)

VERBOSE = False


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def _net(tmp, qemu_server, pings):
    sock = os.path.join(tmp, 'vhost-net0.sock')
    tp = Testpmd([f'net_vhost0,iface={sock},queues=2' + (',client=1' if qemu_server else '')],
                 ['--forward-mode=icmpecho', '--rxq=2', '--txq=2',
                  '--nb-cores=1', '--no-flush-rx'],
                 workdir=tmp)
    script = f'''
        set -- $(vt_queues eth0)
        vt_result rxq $1
        vt_result txq $2
        # XPS maps vCPU N to tx queue N: ping from each vCPU.
        vt_result ping0 "$(taskset 1 sh -c '. /vt/lib.sh; vt_ping_count 10.0.0.2 {pings} -i 0.2')"
        vt_result ping1 "$(taskset 2 sh -c '. /vt/lib.sh; vt_ping_count 10.0.0.2 {pings} -i 0.2')"
        ip neigh show dev eth0
    '''
    guest = Guest(script, net=[NetDev(sock, queues=2, ip='10.0.0.1/24', server=qemu_server)],
                  timeout=180, name='selftest-net', workdir=os.path.join(tmp, 'guest'))
    try:
        if qemu_server:
            # QEMU listens and waits for the backend before booting.
            with guest as g:
                deadline = time.monotonic() + 30
                while not os.path.exists(sock) and time.monotonic() < deadline:
                    time.sleep(0.05)
                tp.start()
                rc, res = g.wait()
        else:
            tp.start(wait_paths=[sock])
            with guest as g:
                rc, res = g.wait()
        if VERBOSE:
            print(g.console())
    finally:
        tp.stop()
    log = tp.log()
    check(rc == 0, f'guest rc {rc}, results {res}')
    check(res.get('rxq') == '2' and res.get('txq') == '2',
          f'guest queues: rx {res.get("rxq")} tx {res.get("txq")}')
    check(res.get('ping0') == str(pings) and res.get('ping1') == str(pings),
          f'ping replies {res.get("ping0")}+{res.get("ping1")} of {pings}+{pings}')
    # testpmd per-stream stats: "Forward Stats for RX Port= 0/Queue= 1 ..."
    queues = set(re.findall(r'Forward Stats for RX Port=\s*0/Queue=\s*(\d+)', log))
    totals = tp.totals()
    check(totals.get('tx', 0) >= 2 * pings, f'testpmd totals {totals}')
    check(queues == {'0', '1'}, f'testpmd saw traffic on rx queues {sorted(queues)}')
    return (f'boot {g.boot_seconds:.1f}s, queues rx/tx 2/2, replies {res["ping0"]}+{res["ping1"]}, '
            f'testpmd rx queues {sorted(queues)} totals {totals}')


def test_net(tmp):
    return _net(tmp, qemu_server=False, pings=10)


def test_net_server(tmp):
    return _net(tmp, qemu_server=True, pings=3)


def test_blk(tmp):
    ensure_packages({'qemu-storage-daemon': 'qemu-system-common'})
    img = os.path.join(tmp, 'disk.img')
    sock = os.path.join(tmp, 'vhost-blk0.sock')
    with open(img, 'wb') as f:
        f.truncate(64 << 20)
    pattern = os.urandom(1 << 20)
    offset = 1 << 20
    qsd_log = open(os.path.join(tmp, 'qsd.log'), 'wb')
    qsd = subprocess.Popen(
        ['qemu-storage-daemon',
         '--blockdev', f'driver=file,node-name=f,filename={img}',
         '--export', f'type=vhost-user-blk,id=e,node-name=f,addr.type=unix,'
         f'addr.path={sock},writable=on,num-queues=2'],
        stdout=qsd_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        script = f'''
            vt_wait_file /dev/vda 10 || vt_die "no /dev/vda: $(vt_disks)"
            vt_result size "$(cat /sys/block/vda/size)"
            vt_result mq "$(ls /sys/block/vda/mq | wc -l)"
            dd if=/vt/files/pattern of=/dev/vda bs=64k seek={offset // 65536} oflag=direct conv=fsync || exit 1
            echo 3 >/proc/sys/vm/drop_caches
            vt_result readback "$(dd if=/dev/vda bs=64k skip={offset // 65536} count={len(pattern) // 65536} iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
        '''
        with Guest(script, blk=[BlkDev(sock, num_queues=2)],
                   files={'/vt/files/pattern': pattern}, timeout=180,
                   name='selftest-blk') as g:
            rc, res = g.wait()
            boot = g.boot_seconds
            if VERBOSE:
                print(g.console())
    finally:
        qsd.terminate()
        try:
            qsd.wait(10)
        except subprocess.TimeoutExpired:
            qsd.kill()
            qsd.wait()
        qsd_log.close()
    check(rc == 0, f'guest rc {rc}, results {res}')
    check(res.get('size') == str((64 << 20) // 512), f'disk size {res.get("size")} sectors')
    check(res.get('mq') == '2', f'blk-mq hw queues {res.get("mq")}')
    with open(img, 'rb') as f:
        f.seek(offset)
        got = f.read(len(pattern))
    check(got == pattern, 'pattern not found in the image at 1 MiB')
    check(res.get('readback') == hashlib.md5(pattern).hexdigest(), 'guest read-back md5 differs')
    return f'boot {boot:.1f}s, 1 MiB pattern written with O_DIRECT found in image, read-back ok, 2 hw queues'


def test_scsi(tmp):
    img = os.path.join(tmp, 'scsi.img')
    with open(img, 'wb') as f:
        f.truncate(32 << 20)
    script = r'''
        vt_wait_file /dev/sda 10 || vt_die "no /dev/sda: $(vt_disks)"
        vt_result disks "$(vt_disks | tr '\n' ' ')"
        mke2fs -q /dev/sda || exit 1
        mkdir -p /mnt/d && mount -t ext2 /dev/sda /mnt/d || exit 2
        echo vt-scsi-ok >/mnt/d/hello
        umount /mnt/d && mount -t ext2 /dev/sda /mnt/d || exit 3
        vt_result file "$(cat /mnt/d/hello)"
        umount /mnt/d
        vt_mark ready
        line=$(vt_wait_host 60) || vt_die "no line from host"
        vt_result host_said "$line"
    '''
    with Guest(script, timeout=180, name='selftest-scsi', qemu_args=[
            '-device', 'virtio-scsi-pci,id=vscsi0',
            '-drive', f'if=none,id=d0,file={img},format=raw,cache=unsafe',
            '-device', 'scsi-hd,drive=d0,bus=vscsi0.0']) as g:
        g.wait_marker('ready', timeout=120)
        status = g.qmp('query-status')
        g.send('hello guest')
        rc, res = g.wait()
        boot = g.boot_seconds
        if VERBOSE:
            print(g.console())
    check(rc == 0, f'guest rc {rc}, results {res}')
    check(res.get('file') == 'vt-scsi-ok', f'ext2 round trip: {res}')
    check(res.get('host_said') == 'hello guest', f'host line: {res.get("host_said")!r}')
    check(status.get('status') == 'running', f'QMP query-status {status}')
    return f'boot {boot:.1f}s, disks {res["disks"].strip()}, ext2 on sda ok, ctl channel + QMP ok'


def test_scsi_hotplug(tmp):
    """QemuScsiDev (2 request queues) + Guest.scsi_hot_add/scsi_hot_remove:
    the guest sees LUN 1 come and go through virtio-scsi events (no rescan)."""
    img0, img1 = os.path.join(tmp, 'lun0.img'), os.path.join(tmp, 'lun1.img')
    for p, size in ((img0, 16 << 20), (img1, 8 << 20)):
        with open(p, 'wb') as f:
            f.truncate(size)
    script = r'''
        at() { ls /sys/bus/scsi/devices/*:0:0:$1/block 2>/dev/null; }
        wait_for() {  # LUN present|absent
            n=150
            while :; do
                if [ -n "$(at $1)" ]; then s=present; else s=absent; fi
                [ $s = $2 ] && return 0
                n=$((n - 1)); [ $n -gt 0 ] || return 1
                usleep 100000
            done
        }
        wait_for 0 present || vt_die "no LUN 0"
        vt_result lun0 "$(at 0) $(cat /sys/block/$(at 0)/device/vendor) $(ls /sys/block/$(at 0)/mq | wc -l)"
        vt_mark add
        vt_wait_host 60 >/dev/null || vt_die "no word from the host"
        wait_for 1 present || vt_die "LUN 1 did not appear"
        vt_result lun1 "$(cat /sys/block/$(at 1)/size) $(cat /sys/block/$(at 1)/device/model)"
        vt_mark remove
        vt_wait_host 60 >/dev/null || vt_die "no word from the host"
        wait_for 1 absent || vt_die "LUN 1 did not go away"
        vt_result gone yes
    '''
    hot = ScsiDisk(img1, lun=1, product='hot-lun')
    with Guest(script, timeout=180, name='selftest-scsi-hotplug',
               qemu_scsi=[QemuScsiDev([ScsiDisk(img0, vendor='VTEST')], num_queues=2)]) as g:
        g.wait_marker('add', timeout=120)
        g.scsi_hot_add(0, hot)
        g.send('added')
        g.wait_marker('remove', timeout=60)
        g.scsi_hot_remove(0, hot)
        g.send('removed')
        rc, res = g.wait()
        boot = g.boot_seconds
        if VERBOSE:
            print(g.console())
    check(rc == 0, f'guest rc {rc}, results {res}')
    check(res.get('lun0', '').split()[1:] == ['VTEST', '2'], f'lun0 vendor/hw queues: {res}')
    check(res.get('lun1', '').split() == [str((8 << 20) // 512), 'hot-lun'], f'lun1: {res}')
    check(res.get('gone') == 'yes', f'hot-remove: {res}')
    return f'boot {boot:.1f}s, LUN 1 hot-added and removed, 2 hw queues'


def test_timeout(tmp):
    t0 = time.monotonic()
    g = Guest('vt_mark spinning; while :; do sleep 1; done', timeout=40,
              name='selftest-timeout', workdir=os.path.join(tmp, 'guest'))
    try:
        with g:
            g.wait_marker('spinning')
            g.wait(timeout=3)
        raise AssertionError('no GuestTimeout')
    except GuestTimeout:
        pass
    check(g.proc.poll() is not None, 'QEMU still running after timeout')
    return f'GuestTimeout raised, QEMU gone ({time.monotonic() - t0:.1f}s)'


TESTS = {'net': test_net, 'net-server': test_net_server, 'blk': test_blk, 'scsi': test_scsi,
         'scsi-hotplug': test_scsi_hotplug, 'timeout': test_timeout}


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('-v', '--verbose', action='store_true', help='print guest consoles')
    ap.add_argument('tests', nargs='*', metavar='TEST', help=' '.join(TESTS))
    args = ap.parse_args()
    for n in args.tests:
        if n not in TESTS:
            ap.error(f'unknown test {n!r} (have: {" ".join(TESTS)})')
    VERBOSE = args.verbose
    names = args.tests or list(TESTS)
    if os.geteuid() != 0:
        print('selftest: needs root (hugepages, apt-get)', file=sys.stderr)
        return 2
    t0 = time.monotonic()
    img = build_images()
    print(f'images: {img.kernel_kind} {img.kernel}, {img.initramfs} ({time.monotonic() - t0:.1f}s)')
    failed = []
    for name in names:
        tmp = tempfile.mkdtemp(prefix=f'vhostd-selftest-{name}-')
        t = time.monotonic()
        try:
            msg = TESTS[name](tmp)
            print(f'PASS {name} ({time.monotonic() - t:.1f}s): {msg}', flush=True)
            shutil.rmtree(tmp, ignore_errors=True)
        except Exception as e:  # report and go on with the next test
            failed.append(name)
            print(f'FAIL {name} ({time.monotonic() - t:.1f}s): {e}', flush=True)
            if VERBOSE:
                traceback.print_exc()
            print(f'  (files kept in {tmp})', flush=True)
    print(f'{len(names) - len(failed)}/{len(names)} passed in {time.monotonic() - t0:.1f}s')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
