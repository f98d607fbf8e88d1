#!/bin/sh
# Prepare a Debian 12 host (as root) for building, running and testing vhostd:
# packages, 2 MiB hugepages and a hugetlbfs mount. Idempotent.
#   scripts/setup-host.sh            build + run dependencies
#   scripts/setup-host.sh --test     also the test peers (QEMU, kernel, OVS...)
#                                    and clang + libFuzzer (libclang-rt-14-dev
#                                    holds libclang_rt.fuzzer) for the fuzz suite
# HUGEPAGES (default 2048 x 2 MiB) sets how many 2 MiB pages to reserve.
set -eu

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

build_pkgs="build-essential meson ninja-build pkg-config python3 libdpdk-dev dpdk
	libnuma-dev liburcu-dev libjansson-dev liburing-dev libxml2-dev libvirt-dev
	libcmocka-dev"
# dpdk-dev: dpdk-testpmd, the tests' virtio-user peer and the benchmarks'
# generator (Debian ships it in dpdk-dev, not in dpdk).
test_pkgs="dpdk-dev qemu-system-x86 qemu-system-common qemu-utils linux-image-amd64 busybox-static
	cpio xz-utils kmod iproute2 openvswitch-switch openvswitch-switch-dpdk
	libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-daemon-system
	clang libclang-rt-14-dev"

pkgs=$build_pkgs
[ $want_test = 1 ] && pkgs="$pkgs $test_pkgs"

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup-host: missing packages:$missing (run as root)" >&2
		exit 1
	fi
	echo "setup-host: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	# dpdk's Recommends carry the PMDs (net_virtio, net_vhost, mempool_ring).
	apt-get install -y -q $missing >/dev/null
fi

[ "$(id -u)" = 0 ] || exit 0

# The control socket's group (vhostd.control-socket-group): members may use vhostctl.
getent group vhostd >/dev/null || groupadd --system vhostd

pages=${HUGEPAGES:-2048}
nr=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ -w $nr ] && [ "$(cat $nr)" -lt "$pages" ]; then
	echo "$pages" > $nr
	echo "setup-host: reserved $(cat $nr) x 2 MiB hugepages"
fi
if ! grep -q "^[^ ]* /dev/hugepages hugetlbfs" /proc/mounts; then
	mkdir -p /dev/hugepages
	mount -t hugetlbfs nodev /dev/hugepages
	echo "setup-host: mounted hugetlbfs on /dev/hugepages"
fi

# vhostd's libvirt hook, when libvirt is installed: creates a domain's vhostd
# objects on start, deletes them on release (libvirtd reads hooks when it
# starts: restart it after the first install). vhostd.conf, kept once
# written, tells the hook where vhostctl is.
if [ -d /etc/libvirt ]; then
	src=$(cd "$(dirname "$0")/.." && pwd)
	install -D -m 755 "$src/configs/libvirt/hooks/qemu" /etc/libvirt/hooks/qemu.d/vhostd
	[ -e /etc/libvirt/hooks/vhostd.conf ] ||
		echo "VHOSTCTL=$src/${BUILD:-build}/ctl/vhostctl" > /etc/libvirt/hooks/vhostd.conf
fi
