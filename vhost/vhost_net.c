/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_net.h>
#include <rte_vhost.h>

#include "datapath.h"
#include "fsutil.h"
#include "log.h"
#include "vhost_net.h"

/*
 * Offloads we never offer: segmentation would hand us 64 KiB frames that a
 * frontend without the same feature could not take, and the switch does not
 * resegment. Checksum and mergeable buffers are per-port options.
 */
#define VHOSTD_DISABLED_FEATURES                                                                   \
	((1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) |                     \
		(1ULL << VIRTIO_NET_F_HOST_ECN) | (1ULL << VIRTIO_NET_F_HOST_UFO) |                \
		(1ULL << VIRTIO_NET_F_GUEST_TSO4) | (1ULL << VIRTIO_NET_F_GUEST_TSO6) |            \
		(1ULL << VIRTIO_NET_F_GUEST_ECN) | (1ULL << VIRTIO_NET_F_GUEST_UFO))

/*
 * Enabled vrings per vhost device id. vring_state_changed() runs while
 * rte_vhost holds the access locks of every queue (SET_VRING_ENABLE), and a
 * PMD may be spinning on one of them in rte_vhost_enqueue_burst(): so the
 * callback must neither take dp_lock nor wait for the PMDs. It records the
 * change here and wakes the control thread, which republishes.
 */
#define VHOST_MAX_VID 1024
static uint64_t vring_bits[VHOST_MAX_VID];
static int vring_event_fd = -1;

uint64_t
vhost_net_vring_bits(int vid)
{
	if (vid < 0 || vid >= VHOST_MAX_VID)
		return 0;
	return __atomic_load_n(&vring_bits[vid], __ATOMIC_ACQUIRE);
}

int
vhost_net_event_fd(void)
{
	if (vring_event_fd < 0)
		vring_event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return vring_event_fd;
}

void
vhost_net_handle_events(void)
{
	uint64_t n;

	if (read(vring_event_fd, &n, sizeof(n)) != sizeof(n))
		return;
	dp_lock();
	dp_publish();
	dp_unlock();
}

static struct port *
port_of_vid(int vid)
{
	char path[PATH_MAX];

	if (rte_vhost_get_ifname(vid, path, sizeof(path)) != 0)
		return NULL;
	return dp_port_find_by_socket(path);
}

static int
new_device(int vid)
{
	struct port *p;
	uint64_t features = 0;
	uint16_t nr;

	if (vid < 0 || vid >= VHOST_MAX_VID)
		return -1;
	dp_lock();
	p = port_of_vid(vid);
	if (p == NULL || p->deleting) {
		dp_unlock();
		return -1;
	}
	rte_vhost_get_negotiated_features(vid, &features);
	nr = rte_vhost_get_vring_num(vid);
	/*
	 * We poll: the frontend need not kick us. rte_vhost remembers this per
	 * vring and applies it again when a vring is enabled later.
	 */
	for (uint16_t i = 0; i < nr; i++)
		rte_vhost_enable_guest_notification(vid, i, 0);
	p->vid = vid;
	p->nr_vring = nr;
	p->features = features;
	p->connects++;
	VLOG_INFO("port %s: frontend connected (vid %d, %u vrings, features 0x%" PRIx64 ")",
		p->conf.name, vid, nr, features);
	dp_publish();
	dp_unlock();
	return 0;
}

static void
destroy_device(int vid)
{
	struct port *p;

	dp_lock();
	p = port_of_vid(vid);
	if (p != NULL && p->vid == vid) {
		p->vid = -1;
		p->disconnects++;
		VLOG_INFO("port %s: frontend disconnected", p->conf.name);
		dp_publish();
		/* rte_vhost frees the device when we return: no PMD may still use it. */
		dp_wait_grace();
	}
	if (vid >= 0 && vid < VHOST_MAX_VID)
		__atomic_store_n(&vring_bits[vid], 0, __ATOMIC_RELEASE);
	dp_unlock();
}

static int
vring_state_changed(int vid, uint16_t vring, int enable)
{
	uint64_t one = 1;

	if (vid < 0 || vid >= VHOST_MAX_VID || vring >= 64)
		return 0;
	if (enable)
		__atomic_fetch_or(&vring_bits[vid], 1ULL << vring, __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&vring_bits[vid], ~(1ULL << vring), __ATOMIC_RELEASE);
	if (write(vhost_net_event_fd(), &one, sizeof(one)) != sizeof(one))
		VLOG_WARN("vid %d: cannot signal vring %u state change", vid, vring);
	return 0;
}

static const struct rte_vhost_device_ops net_ops = {
	.new_device = new_device,
	.destroy_device = destroy_device,
	.vring_state_changed = vring_state_changed,
};

int
vhost_net_start(struct port *p, char *err, size_t errlen)
{
	const char *path = p->conf.socket;
	uint64_t flags = p->conf.client ? RTE_VHOST_USER_CLIENT : 0;
	uint64_t disable = VHOSTD_DISABLED_FEATURES;
	int rc;

	rc = fs_prepare_socket(path, p->conf.client, err, errlen);
	if (rc < 0)
		return rc;
	if (!p->conf.csum)
		disable |= (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM);
	if (!p->conf.mrg_rxbuf)
		disable |= 1ULL << VIRTIO_NET_F_MRG_RXBUF;
	if (rte_vhost_driver_register(path, flags) != 0) {
		snprintf(err, errlen, "rte_vhost cannot register %s (see the log above)", path);
		return -EINVAL;
	}
	if (rte_vhost_driver_disable_features(path, disable) != 0 ||
		rte_vhost_driver_callback_register(path, &net_ops) != 0) {
		snprintf(err, errlen, "rte_vhost rejected the settings of %s", path);
		rte_vhost_driver_unregister(path);
		return -EINVAL;
	}
	if (rte_vhost_driver_start(path) != 0) {
		snprintf(err, errlen, "cannot %s %s (see the log above)",
			p->conf.client ? "connect to" : "listen on", path);
		rte_vhost_driver_unregister(path);
		return -EADDRINUSE;
	}
	if (!p->conf.client)
		chmod(path, 0660);
	return 0;
}

void
vhost_net_stop(struct port *p)
{
	const char *path = p->conf.socket;

	if (rte_vhost_driver_unregister(path) != 0)
		VLOG_WARN("port %s: rte_vhost could not unregister %s", p->conf.name, path);
	/* rte_vhost leaves a server socket file behind. */
	if (!p->conf.client)
		unlink(path);
}
