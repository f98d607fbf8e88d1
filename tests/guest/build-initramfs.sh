#!/bin/bash
# Build the boot images used by the guest-VM tests (tests/guest/guest.py).
#
# Output, in the cache dir ($VHOSTD_GUEST_CACHE, default tests/guest/cache/):
#   vmlinux             the ELF kernel pulled out of /boot/vmlinuz-$KVER (QEMU
#                       boots it through PVH, ~2x faster than the bzImage under
#                       TCG); when extraction fails this is a copy of the bzImage
#                       instead and `kernel` says which
#   kernel              one line: "vmlinux" or "bzImage"
#   initramfs.cpio.gz   busybox + applet links, the virtio/scsi/ext4 modules
#                       (decompressed), /init and /vt/lib.sh
#   stamp               inputs fingerprint; images are rebuilt when it changes
#
# The test script is not in this image: guest.py appends a small uncompressed
# cpio (holding /vt/test.sh, /vt/setup.sh and any extra files) to a per-test
# copy of initramfs.cpio.gz; the kernel unpacks concatenated archives in order.
#
# Usage: build-initramfs.sh [--force] [--no-install]
#   --force       rebuild even when the stamp matches
#   --no-install  never call apt-get (fail when something is missing)
# Env: VHOSTD_GUEST_CACHE (cache dir), VHOSTD_GUEST_KVER (kernel version,
#      default: newest /boot/vmlinuz-* that has /lib/modules/$KVER).
# Prints the cache dir on success (last line of stdout).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VHOSTD_GUEST_CACHE:-$here/cache}
force=0
install=1
for a in "$@"; do
	case "$a" in
	--force) force=1 ;;
	--no-install) install=0 ;;
	*) echo "usage: $0 [--force] [--no-install]" >&2; exit 2 ;;
	esac
done

log() { echo "build-initramfs: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Modules loaded by /init, in this order; their dependencies are resolved with
# modprobe --show-depends and loaded first. Missing/built-in ones are skipped.
MODULES="virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
failover net_failover virtio_net scsi_common scsi_mod sd_mod sg virtio_scsi
virtio_blk ext4"

# ---------------------------------------------------------------- packages
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-system-x86_64 || need_pkgs+=(qemu-system-x86)
have qemu-storage-daemon || need_pkgs+=(qemu-system-common)
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 &&
	! (ldd /bin/busybox >/dev/null 2>&1) || need_pkgs+=(busybox-static)
have cpio || need_pkgs+=(cpio)
have xz || need_pkgs+=(xz-utils)
have modprobe || need_pkgs+=(kmod)
have gzip || need_pkgs+=(gzip)
have flock || need_pkgs+=(util-linux)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need_pkgs+=(linux-image-amd64)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	[ $install = 1 ] || die "missing packages: ${need_pkgs[*]}"
	[ "$(id -u)" = 0 ] || die "missing packages (need root to install): ${need_pkgs[*]}"
	log "installing ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >&2
fi

# ---------------------------------------------------------------- kernel
kver=${VHOSTD_GUEST_KVER:-}
if [ -z "$kver" ]; then
	for f in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
		v=${f#/boot/vmlinuz-}
		if [ -d "/lib/modules/$v" ]; then kver=$v; break; fi
	done
fi
[ -n "$kver" ] || die "no /boot/vmlinuz-* with matching /lib/modules"
vmlinuz=/boot/vmlinuz-$kver
moddir=/lib/modules/$kver
[ -r "$vmlinuz" ] || die "$vmlinuz not readable"

# ---------------------------------------------------------------- stamp
mkdir -p "$cache"
# The cache is generated content: keep it out of git without touching any
# tracked .gitignore.
[ -f "$cache/.gitignore" ] || echo '*' >"$cache/.gitignore"

fingerprint() {
	{
		sha256sum "$here/build-initramfs.sh"
		echo "$kver $MODULES"
		stat -L -c '%n %s %Y' "$vmlinuz" /bin/busybox "$moddir/modules.dep"
	} | sha256sum | cut -d' ' -f1
}
want=$(fingerprint)

exec 8>"$cache/.lock"
flock 8
if [ $force = 0 ] && [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$want" ] &&
	[ -s "$cache/vmlinux" ] && [ -s "$cache/initramfs.cpio.gz" ]; then
	log "up to date ($kver)"
	echo "$cache"
	exit 0
fi

tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building for kernel $kver into $cache"

# ---------------------------------------------------------------- vmlinux
# The bzImage carries the kernel as an XZ stream: find the XZ magic
# (FD 37 7A 58 5A 00) and decompress the first stream that yields an ELF.
kind=bzImage
for off in $(LC_ALL=C grep -obUaP '\xFD\x37\x7A\x58\x5A\x00' "$vmlinuz" | cut -d: -f1 | head -8); do
	# (tail dies of SIGPIPE once xz stops reading: judge by the output only)
	(tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$tmp/vmlinux" 2>/dev/null) || true
	if [ "$(head -c 4 "$tmp/vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] &&
		[ "$(stat -c %s "$tmp/vmlinux")" -gt 1000000 ]; then
		kind=vmlinux
		break
	fi
done
if [ $kind = bzImage ]; then
	log "could not extract an ELF vmlinux from $vmlinuz; using the bzImage"
	cp "$vmlinuz" "$tmp/vmlinux"
fi
echo $kind >"$tmp/kernel"

# ---------------------------------------------------------------- rootfs
root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,mnt,root,etc,vt,lib/modules}
cp /bin/busybox "$root/bin/busybox"
for p in $(/bin/busybox --list-full); do
	[ "$p" = bin/busybox ] && continue
	mkdir -p "$root/$(dirname "$p")"
	ln -sf /bin/busybox "$root/$p"
done
# Device nodes the kernel needs before /init mounts devtmpfs (cpio as root).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
echo 'vtguest' >"$root/etc/hostname"

# Modules: resolve the load order, decompress into /lib/modules/NAME.ko.
order=()
for m in $MODULES; do
	if ! deps=$(modprobe -S "$kver" --show-depends "$m" 2>/dev/null); then
		log "module $m not found, skipped"
		continue
	fi
	while read -r verb path _; do
		[ "$verb" = insmod ] || continue
		seen=0
		for o in "${order[@]}"; do [ "$o" = "$path" ] && seen=1 && break; done
		[ $seen = 1 ] || order+=("$path")
	done <<<"$deps"
done
: >"$root/etc/vt-modules"
for path in "${order[@]}"; do
	name=$(basename "$path")
	name=${name%.xz}; name=${name%.zst}; name=${name%.gz}
	case "$path" in
	*.ko.xz) xz -dc "$path" >"$root/lib/modules/$name" ;;
	*.ko.zst) zstd -qdc "$path" >"$root/lib/modules/$name" ;;
	*.ko.gz) gzip -dc "$path" >"$root/lib/modules/$name" ;;
	*) cp "$path" "$root/lib/modules/$name" ;;
	esac
	echo "${name%.ko}" >>"$root/etc/vt-modules"
done
log "modules: $(tr '\n' ' ' <"$root/etc/vt-modules")"

# ---------------------------------------------------------------- /init
cat >"$root/init" <<'EOF'
#!/bin/sh
# vhostd guest-test init: load drivers, run /vt/setup.sh and /vt/test.sh
# (appended by guest.py), report "VT-EXIT rc=N" on ttyS1, power off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t devtmpfs dev /dev 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1
hostname -F /etc/hostname
for m in $(cat /etc/vt-modules); do
	insmod /lib/modules/$m.ko 2>/tmp/insmod.err ||
		grep -q 'File exists' /tmp/insmod.err || echo "vt-init: insmod $m: $(cat /tmp/insmod.err)"
done
ip link set lo up
# ttyS1 is the host<->init channel; keep it open so its raw mode sticks.
VT_CTL=/dev/ttyS1
if [ -c $VT_CTL ]; then
	exec 9<>$VT_CTL
	stty -F $VT_CTL raw -echo 115200 2>/dev/null
else
	VT_CTL=/dev/console
fi
export VT_CTL
. /vt/lib.sh
vt_emit "VT-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"
if [ -f /vt/test.sh ]; then
	sh -c '. /vt/lib.sh; if [ -f /vt/setup.sh ]; then . /vt/setup.sh; fi; . /vt/test.sh'
	rc=$?
else
	echo "vt-init: no /vt/test.sh"
	rc=127
fi
sync
vt_emit "VT-EXIT rc=$rc"
usleep 200000	# let the UART drain before power-off
echo "vt-init: script exited rc=$rc, powering off"
poweroff -f
sleep 5
echo o >/proc/sysrq-trigger
EOF
chmod 755 "$root/init"

# ---------------------------------------------------------------- /vt/lib.sh
cat >"$root/vt/lib.sh" <<'EOF'
# Helpers for guest test scripts (sourced before /vt/setup.sh and /vt/test.sh).
# Results reach the host through $VT_CTL (ttyS1); guest.py parses lines
# starting with "VT-". Everything else goes to the console log.

# vt_emit LINE: raw line to the host channel (and the console).
vt_emit() {
	echo "$*" >"$VT_CTL"
	[ "$VT_CTL" = /dev/console ] || echo "$*"
}
# vt_result KEY VALUE...: report KEY=VALUE (guest.py: results[KEY] = VALUE).
vt_result() { local k=$1; shift; vt_emit "VT-RESULT $k=$*"; }
# vt_mark NAME: a sync point the host can wait for (Guest.wait_marker).
vt_mark() { vt_emit "VT-MARK $1"; }
# vt_log MSG: free text the host keeps in the marker list.
vt_log() { vt_emit "VT-LOG $*"; }
# vt_die MSG: report an error and exit the test with status 125.
vt_die() { vt_emit "VT-ERROR $*"; exit 125; }
# vt_wait_host [TIMEOUT]: read one line sent by the host (Guest.send); prints it.
vt_wait_host() {
	if [ -n "${1:-}" ]; then
		read -r -t "$1" vt_line <"$VT_CTL" || return 1
	else
		read -r vt_line <"$VT_CTL" || return 1
	fi
	echo "$vt_line"
}
# vt_ifname_by_mac MAC: the interface name that has this MAC address.
vt_ifname_by_mac() {
	local mac d
	mac=$(echo "$1" | tr 'A-F' 'a-f')
	for d in /sys/class/net/*; do
		[ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] && { basename "$d"; return 0; }
	done
	return 1
}
# vt_wait_file PATH [TIMEOUT_S]: wait until PATH exists.
vt_wait_file() {
	local n=$(( ${2:-10} * 10 ))
	while [ ! -e "$1" ]; do
		n=$((n - 1)); [ $n -gt 0 ] || return 1
		usleep 100000
	done
}
# vt_wait_carrier IF [TIMEOUT_S]: wait for carrier (vhost-user backend connected).
vt_wait_carrier() {
	local n=$(( ${2:-20} * 10 ))
	while [ "$(cat /sys/class/net/$1/carrier 2>/dev/null)" != 1 ]; do
		n=$((n - 1)); [ $n -gt 0 ] || return 1
		usleep 100000
	done
}
# vt_net_up IF|MAC ADDR/PREFIX [TIMEOUT_S]: bring the link up, address it,
# wait for carrier.
vt_net_up() {
	local ifn=$1
	case "$ifn" in *:*) ifn=$(vt_ifname_by_mac "$1") || { echo "vt_net_up: no if with mac $1"; return 1; } ;; esac
	vt_wait_file /sys/class/net/$ifn 10 || { echo "vt_net_up: no $ifn"; return 1; }
	ip link set "$ifn" up || return 1
	ip addr add "$2" dev "$ifn" || return 1
	vt_wait_carrier "$ifn" "${3:-20}" || { echo "vt_net_up: $ifn: no carrier"; return 1; }
	echo "vt_net_up: $ifn $2 up"
}
# vt_queues IF: prints "RX TX" queue counts seen in sysfs.
vt_queues() {
	echo "$(ls -d /sys/class/net/$1/queues/rx-* 2>/dev/null | wc -l) $(ls -d /sys/class/net/$1/queues/tx-* 2>/dev/null | wc -l)"
}
# vt_ping_count DEST COUNT [ARGS...]: ping and print the number of replies.
vt_ping_count() {
	local d=$1 c=$2; shift 2
	ping -c "$c" -W 1 "$@" "$d" >/tmp/ping.out 2>&1
	cat /tmp/ping.out >/dev/console
	sed -n 's/.* \([0-9]*\) packets received.*/\1/p' /tmp/ping.out | head -1 | grep . || echo 0
}
# vt_disks: block devices other than ram/loop, one per line (vda sda ...).
vt_disks() { ls /sys/block | grep -v -e '^ram' -e '^loop'; }
EOF

# ---------------------------------------------------------------- pack
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
	gzip -6 -n >"$tmp/initramfs.cpio.gz"

mv -f "$tmp/vmlinux" "$cache/vmlinux"
mv -f "$tmp/kernel" "$cache/kernel"
mv -f "$tmp/initramfs.cpio.gz" "$cache/initramfs.cpio.gz"
echo "$want" >"$cache/stamp"
log "done: $kind $(du -h "$cache/vmlinux" | cut -f1), initramfs $(du -h "$cache/initramfs.cpio.gz" | cut -f1)"
echo "$cache"
