/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <rte_pause.h>
#include <rte_vhost.h>

#include "datapath.h"
#include "fsutil.h"
#include "log.h"
#include "net_copy.h"
#include "vhost_net.h"
#include "virtq.h"

#ifndef VHOST_F_LOG_ALL
#define VHOST_F_LOG_ALL 26
#endif
#ifndef VIRTIO_F_RING_PACKED
#define VIRTIO_F_RING_PACKED 34
#endif
/* VIRTIO_F_IOMMU_PLATFORM (renamed ACCESS_PLATFORM): addresses are IOVAs. */
#define VHOSTD_F_ACCESS_PLATFORM 33

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

/* ---- single copy ---------------------------------------------------------- */

/* Owners of a vring (struct vring_owner). */
enum { SC_FREE = 0, SC_COPY = 1, SC_VHOST = 2 };

/* port->sc_state bits: single copy runs only when none is set. */
#define SC_BLOCKED 1u /* a vhost-user message is being handled */
#define SC_LOGGING 2u /* dirty-page logging (live migration): rte_vhost logs, we do not */
#define SC_BROKEN 4u  /* a ring went wrong under single copy: leave it to rte_vhost */

/* Like the mbuf path: retry a full receive ring this often, then drop. */
#define SC_RX_FULL_RETRIES 8

/*
 * Single-copy ports by vid, for the message hooks: they run with rte_vhost's
 * vring locks held, so they may neither take dp_lock nor wait for PMDs that
 * spin on those locks. Written by new_device/destroy_device, read by the
 * hooks; all run on rte_vhost's event thread.
 */
static struct port *sc_port_of_vid[VHOST_MAX_VID];
/* One log line per connection for bad chains seen by single copy. */
static bool sc_warned[DP_MAX_PORTS];

static inline bool
vring_own(struct vring_owner *o, uint32_t who)
{
	uint32_t expect = SC_FREE;

	/* Sequentially consistent: ordered before the sc_state loads that follow. */
	return __atomic_compare_exchange_n(
		&o->owner, &expect, who, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

static inline void
vring_disown(struct vring_owner *o)
{
	__atomic_store_n(&o->owner, SC_FREE, __ATOMIC_RELEASE);
}

bool
vhost_net_single_copy_ok(const struct port *p)
{
	const uint64_t unsupported =
		(1ULL << VIRTIO_F_RING_PACKED) | (1ULL << VHOSTD_F_ACCESS_PLATFORM);

	return p != NULL && p->conf.type == PORT_VHOST_USER && p->conf.single_copy != PORT_SC_OFF &&
	       p->vid >= 0 && p->sc_vring != NULL && (p->features & unsupported) == 0;
}

uint16_t
vhost_net_sc_dequeue(struct port *p, int vid, uint16_t q, struct rte_mempool *mp,
	struct rte_mbuf **pkts, uint16_t n)
{
	struct vring_owner *o = &p->sc_vring[2 * q + 1];

	/* Busy: a single-copy burst is on it (or a PMD still in the old plan). */
	if (!vring_own(o, SC_VHOST))
		return 0;
	n = rte_vhost_dequeue_burst(vid, 2 * q + 1, mp, pkts, n);
	vring_disown(o);
	return n;
}

uint16_t
vhost_net_sc_enqueue(struct port *p, int vid, uint16_t q, struct rte_mbuf **pkts, uint16_t n)
{
	struct vring_owner *o = &p->sc_vring[2 * q];

	/* Holders never wait on anything while they own: this spin is short. */
	while (!vring_own(o, SC_VHOST))
		rte_pause();
	n = rte_vhost_enqueue_burst(vid, 2 * q, pkts, n);
	vring_disown(o);
	return n;
}

/* Interrupt the guest if it wants one for what we just published. */
static void
sc_notify(int vid, uint16_t vring, const struct rte_vhost_vring *v)
{
	/*
	 * rte_vhost decides (event idx, NO_INTERRUPT) from the indexes we wrote
	 * back. Its lock is busy only while a message is being handled: then an
	 * interrupt the guest may not need is better than one it misses.
	 */
	if (rte_vhost_vring_call_nonblock(vid, vring) == -EAGAIN && v->callfd >= 0)
		eventfd_write(v->callfd, 1);
}

/*
 * Complete up to @max of A's frames unsent (B stays full): counted as drops,
 * their length (header excluded) added to *@bytes.
 */
static uint16_t
sc_drop(struct virtq *vqa, uint16_t hdr_len, unsigned int max, uint64_t *bytes)
{
	uint16_t heads[DP_BURST];
	struct virtq_chain c;
	int n = virtq_pop(vqa, heads, RTE_MIN(max, (unsigned int)DP_BURST));

	for (int i = 0; i < n; i++) {
		if (virtq_map_chain(vqa, heads[i], &c, NULL) == 0 && c.out_len > hdr_len)
			*bytes += c.out_len - hdr_len;
		virtq_push(vqa, heads[i], 0);
	}
	return n > 0 ? (uint16_t)n : 0;
}

static void
sc_warn(struct port *p, const char *what, const char *why)
{
	if (sc_warned[p->idx])
		return;
	sc_warned[p->idx] = true;
	VLOG_WARN("port %s: single copy: %s: %s (counted as errors; logged once per connection)",
		p->conf.name, what, why != NULL ? why : "?");
}

int
vhost_sc_ring_open(struct vhost_sc_ring *r, struct port *p, int vid, uint16_t vring)
{
	struct vring_owner *o = &p->sc_vring[vring];
	uint16_t avail, used;

	if (!vring_own(o, SC_COPY))
		return -EAGAIN;
	/*
	 * After taking the owner: a message hook that set SC_BLOCKED before
	 * this load waits for us to let go; one that sets it later is seen here.
	 */
	if (__atomic_load_n(&p->sc_state, __ATOMIC_SEQ_CST) != 0 || p->sc_mem == NULL ||
		p->sc_mem_vid != vid || !((vhost_net_vring_bits(vid) >> vring) & 1) ||
		rte_vhost_get_vhost_vring(vid, vring, &r->vr) != 0 ||
		rte_vhost_get_vring_base(vid, vring, &avail, &used) != 0)
		goto busy;
	virtq_init(&r->vq, &r->vr, p->sc_mem, avail, used, p->features);
	if (unlikely(r->vq.broken))
		goto busy;
	r->p = p;
	r->vid = vid;
	r->vring = vring;
	r->used0 = used;
	r->side.vq = &r->vq;
	r->side.hdr_len = net_copy_hdr_len(p->features);
	if (vring & 1) { /* the guest's transmit queue */
		r->side.mrg_rxbuf = false;
		r->side.csum = (p->features >> VIRTIO_NET_F_CSUM) & 1;
	} else {
		r->side.mrg_rxbuf = (p->features >> VIRTIO_NET_F_MRG_RXBUF) & 1;
		r->side.csum = (p->features >> VIRTIO_NET_F_GUEST_CSUM) & 1;
	}
	return 0;
busy:
	vring_disown(o);
	return -EAGAIN;
}

void
vhost_sc_ring_abort(struct vhost_sc_ring *r)
{
	vring_disown(&r->p->sc_vring[r->vring]);
}

void
vhost_sc_ring_close(struct vhost_sc_ring *r)
{
	virtq_flush(&r->vq);
	rte_vhost_set_vring_base(r->vid, r->vring, r->vq.last_avail_idx, r->vq.last_used_idx);
	if (r->vq.last_used_idx != r->used0)
		sc_notify(r->vid, r->vring, &r->vr);
	if (unlikely(r->vq.broken)) {
		/* rte_vhost's own checks take over this device from now on. */
		__atomic_fetch_or(&r->p->sc_state, SC_BROKEN, __ATOMIC_RELAXED);
		VLOG_ERR("port %s: single copy: %s; using rte_vhost's path until it reconnects",
			r->p->conf.name, r->vq.broken_why);
	}
	vring_disown(&r->p->sc_vring[r->vring]);
}

void
vhost_sc_count_rx(
	const struct net_copy_result *res, uint16_t taken, struct port *a, struct dp_counters *rxc)
{
	rxc->packets += taken - res->bad_tx;
	rxc->bytes += res->in_bytes;
	rxc->errors += res->bad_tx;
	if (unlikely(res->bad_tx != 0))
		sc_warn(a, "bad transmit chain", res->why);
}

void
vhost_sc_count_tx(const struct net_copy_result *res, uint16_t dropped, struct port *b,
	struct dp_counters *txc)
{
	txc->packets += res->frames;
	txc->single_copy += res->frames;
	txc->bytes += res->bytes;
	txc->drops[DROP_MTU] += res->too_big;
	txc->drops[DROP_QUEUE_FULL] += dropped;
	txc->errors += res->bad_rx;
	if (unlikely(res->bad_rx != 0))
		sc_warn(b, "bad receive buffer", res->why);
}

int
vhost_net_copy_burst(struct port *a, int avid, uint16_t qa, struct port *b, int bvid, uint16_t qb,
	uint32_t max_frame, uint32_t min_frame, struct dp_counters *rxc, struct dp_counters *txc,
	bool *small)
{
	struct net_copy_result res, sum = {0};
	struct vhost_sc_ring ra, rb;
	uint16_t taken = 0, dropped = 0;
	int rc;

	*small = false;
	if (vhost_sc_ring_open(&ra, a, avid, 2 * qa + 1) != 0)
		return -EAGAIN;
	if (virtq_pending(&ra.vq) == 0) {
		vhost_sc_ring_abort(&ra);
		return 0;
	}
	if (vhost_sc_ring_open(&rb, b, bvid, 2 * qb) != 0) {
		vhost_sc_ring_abort(&ra);
		return -EAGAIN;
	}
	for (int retry = 0;; retry++) {
		rc = net_copy_burst(
			&ra.side, &rb.side, max_frame, min_frame, DP_BURST - taken, &res);
		taken += res.tx_done;
		net_copy_result_add(&sum, &res);
		if (rc < 0 || !res.rx_full || taken >= DP_BURST)
			break;
		if (retry == SC_RX_FULL_RETRIES) {
			dropped = sc_drop(&ra.vq, ra.side.hdr_len, DP_BURST - taken, &sum.in_bytes);
			taken += dropped;
			break;
		}
	}
	vhost_sc_ring_close(&ra);
	vhost_sc_ring_close(&rb);
	vhost_sc_count_rx(&sum, taken, a, rxc);
	vhost_sc_count_tx(&sum, dropped, b, txc);
	*small = sum.small;
	return taken;
}

/* Request number of a vhost-user message as rte_vhost hands it to the hooks. */
static uint32_t
msg_request(const void *msg)
{
	uint32_t req;

	memcpy(&req, msg, sizeof(req));
	return req;
}

/*
 * Stop single copy on @p and wait out the bursts already running: they hold
 * no lock and finish on their own, so this wait is short even with
 * rte_vhost's vring locks held.
 */
static void
sc_block(struct port *p)
{
	__atomic_fetch_or(&p->sc_state, SC_BLOCKED, __ATOMIC_SEQ_CST);
	for (int r = 0; r < 2 * DP_MAX_QUEUES; r++)
		while (__atomic_load_n(&p->sc_vring[r].owner, __ATOMIC_SEQ_CST) == SC_COPY)
			rte_pause();
}

static enum rte_vhost_msg_result
sc_pre_msg(int vid, void *msg)
{
	struct port *p = vid >= 0 && vid < VHOST_MAX_VID ? sc_port_of_vid[vid] : NULL;

	if (p == NULL)
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	/* Any message may change the memory table, a ring or the features. */
	sc_block(p);
	if (msg_request(msg) == 5) {
		/*
		 * SET_MEM_TABLE unmaps the old regions. Forget them now: if the
		 * handler fails, the post hook (which installs the new table)
		 * does not run, and no burst may use the old one.
		 */
		free(p->sc_mem);
		p->sc_mem = NULL;
		p->sc_mem_vid = -1;
	}
	return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

static enum rte_vhost_msg_result
sc_post_msg(int vid, void *msg)
{
	struct port *p = vid >= 0 && vid < VHOST_MAX_VID ? sc_port_of_vid[vid] : NULL;
	uint64_t features, one = 1;

	if (p == NULL)
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	switch (msg_request(msg)) {
	case 5: { /* SET_MEM_TABLE: the old mappings are gone */
		struct rte_vhost_memory *mem = NULL;

		if (rte_vhost_get_mem_table(vid, &mem) != 0)
			mem = NULL;
		free(p->sc_mem);
		p->sc_mem = mem;
		p->sc_mem_vid = vid;
		break;
	}
	case 18: { /* SET_VRING_ENABLE */
		struct vhost_vring_state st;

		/*
		 * rte_vhost reports a disabled vring only after this hook: take
		 * it out of single copy's view before unblocking.
		 */
		memcpy(&st, (const char *)msg + 12, sizeof(st));
		if (st.num == 0 && st.index < 64)
			__atomic_fetch_and(&vring_bits[vid], ~(1ULL << st.index), __ATOMIC_RELEASE);
		break;
	}
	case 2: /* SET_FEATURES: VHOST_F_LOG_ALL comes and goes with live migration */
		if (rte_vhost_get_negotiated_features(vid, &features) == 0) {
			__atomic_store_n(&p->features, features, __ATOMIC_RELAXED);
			if ((features >> VHOST_F_LOG_ALL) & 1)
				__atomic_fetch_or(&p->sc_state, SC_LOGGING, __ATOMIC_RELAXED);
			else
				__atomic_fetch_and(&p->sc_state, ~SC_LOGGING, __ATOMIC_RELAXED);
			/* Offloads may have changed: let the control thread republish. */
			if (write(vhost_net_event_fd(), &one, sizeof(one)) != sizeof(one))
				VLOG_WARN("port %s: cannot signal a feature change", p->conf.name);
		}
		break;
	default:
		break;
	}
	__atomic_fetch_and(&p->sc_state, ~SC_BLOCKED, __ATOMIC_RELEASE);
	return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

static const struct rte_vhost_user_extern_ops sc_extern_ops = {
	.pre_msg_handle = sc_pre_msg,
	.post_msg_handle = sc_post_msg,
};

/*
 * new_device of a single-copy port (dp_lock held). @old is the vid the port
 * had, when a second frontend replaces one that is not gone yet: that one's
 * bursts and hooks must let go of the port first.
 */
static void
sc_connect(struct port *p, int vid, int old)
{
	sc_block(p);
	if (old >= 0 && old < VHOST_MAX_VID && sc_port_of_vid[old] == p)
		sc_port_of_vid[old] = NULL;
	free(p->sc_mem);
	p->sc_mem = NULL;
	p->sc_mem_vid = -1;
	sc_warned[p->idx] = false;
	if (rte_vhost_get_mem_table(vid, &p->sc_mem) != 0) {
		p->sc_mem = NULL;
		VLOG_WARN("port %s: no guest memory table: single copy off", p->conf.name);
		return;
	}
	if (rte_vhost_extern_callback_register(vid, &sc_extern_ops, NULL) != 0) {
		free(p->sc_mem);
		p->sc_mem = NULL;
		VLOG_WARN(
			"port %s: cannot hook vhost-user messages: single copy off", p->conf.name);
		return;
	}
	p->sc_mem_vid = vid;
	sc_port_of_vid[vid] = p;
	__atomic_store_n(&p->sc_state, ((p->features >> VHOST_F_LOG_ALL) & 1) ? SC_LOGGING : 0,
		__ATOMIC_RELEASE);
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
	int old;

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
	old = p->vid;
	p->vid = vid;
	p->nr_vring = nr;
	p->features = features;
	p->connects++;
	if (p->conf.single_copy != PORT_SC_OFF && p->sc_vring != NULL)
		sc_connect(p, vid, old);
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
		free(p->sc_mem);
		p->sc_mem = NULL;
		p->sc_mem_vid = -1;
		/* The next frontend may send large frames: no back-off carried over. */
		memset(p->sc_retry_at, 0, sizeof(p->sc_retry_at));
		memset(p->sc_misses, 0, sizeof(p->sc_misses));
		memset(p->sc_auto, 0, sizeof(p->sc_auto));
	}
	if (vid >= 0 && vid < VHOST_MAX_VID) {
		__atomic_store_n(&vring_bits[vid], 0, __ATOMIC_RELEASE);
		sc_port_of_vid[vid] = NULL;
	}
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
