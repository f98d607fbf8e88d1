/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user net ports over DPDK's rte_vhost (built-in virtio-net path).
 * rte_vhost runs the protocol in its own event thread; its callbacks update
 * the port under dp_lock() and republish the datapath snapshot. The PMD
 * threads call rte_vhost_dequeue_burst()/rte_vhost_enqueue_burst().
 */
#ifndef VHOSTD_VHOST_NET_H
#define VHOSTD_VHOST_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_vhost.h>

#include "net_copy.h"
#include "virtq.h"

struct dp_counters;
struct port;
struct rte_mbuf;
struct rte_mempool;

/*
 * Register and start the socket of @p (server: listen, client: connect and
 * keep reconnecting). Called with dp_lock held. Returns 0 or a negative
 * errno with a message in @err (e.g. -EADDRINUSE for a live socket).
 */
int vhost_net_start(struct port *p, char *err, size_t errlen);

/*
 * Close the socket and disconnect the frontend. Must be called WITHOUT
 * dp_lock: rte_vhost runs destroy_device from here and may wait for its
 * event thread, which takes dp_lock.
 */
void vhost_net_stop(struct port *p);

/* Enabled vrings (bit per vring) of a connected device. */
uint64_t vhost_net_vring_bits(int vid);

/*
 * An eventfd that becomes readable when a frontend enabled or disabled a
 * vring; the control thread then calls vhost_net_handle_events().
 */
int vhost_net_event_fd(void);
void vhost_net_handle_events(void);

/*
 * Single copy between two cross-connected vhost ports (net_copy.h does the
 * ring work). rte_vhost keeps each vring's indexes; a single-copy burst
 * reads them, works on the rings itself and writes them back, so the two
 * paths can alternate on one vring. On ports with "single-copy" every access
 * to a vring, ours or rte_vhost's, first takes that vring's owner word:
 * two PMDs never work on one vring at once, whatever snapshot each is in.
 * A vhost-user message that may change memory or rings (any message)
 * blocks single copy on the port until it is handled.
 */

/* Whether single copy can serve @p now (connected, split ring, no vIOMMU). */
bool vhost_net_single_copy_ok(const struct port *p);

/*
 * Move up to a burst of frames from @a's rx queue @qa into @b's guest rx
 * queue @qb. Returns the frames taken from @a (0: none waiting), or -EAGAIN
 * when single copy cannot run now (blocked, busy, not set up): the caller
 * then uses the mbuf path. It stops at the first frame of @min_frame bytes
 * or less and sets *small: that frame and the rest are the mbuf path's, in
 * order. @rxc/@txc: @a's rx and @b's tx counters.
 */
int vhost_net_copy_burst(struct port *a, int avid, uint16_t qa, struct port *b, int bvid,
	uint16_t qb, uint32_t max_frame, uint32_t min_frame, struct dp_counters *rxc,
	struct dp_counters *txc, bool *small);

/* One vring of a single-copy port held by a PMD for a burst. */
struct vhost_sc_ring {
	struct port *p;
	int vid;
	uint16_t vring;
	uint16_t used0; /* used index when taken: interrupt only if it moved */
	struct rte_vhost_vring vr;
	struct virtq vq;           /* indexes from rte_vhost */
	struct net_copy_side side; /* header, offloads for net_copy */
};

/*
 * Take vring @vring of @p (odd: the guest's transmit queue) for single copy.
 * Returns 0, or -EAGAIN when it is busy, blocked by a message, disabled or
 * not set up (then nothing is held).
 */
int vhost_sc_ring_open(struct vhost_sc_ring *r, struct port *p, int vid, uint16_t vring);
/* Let go of a ring nothing was taken from or given to. */
void vhost_sc_ring_abort(struct vhost_sc_ring *r);
/* Publish, give the indexes back to rte_vhost, interrupt the guest if it asks, let go. */
void vhost_sc_ring_close(struct vhost_sc_ring *r);
/*
 * Add a single-copy result to the counters (logging bad chains once): @a's
 * rx (@taken frames taken from its ring) and @b's tx (@dropped: frames
 * dropped for a full ring, besides those in @res).
 */
void vhost_sc_count_rx(
	const struct net_copy_result *res, uint16_t taken, struct port *a, struct dp_counters *rxc);
void vhost_sc_count_tx(const struct net_copy_result *res, uint16_t dropped, struct port *b,
	struct dp_counters *txc);

/* rte_vhost_dequeue_burst / enqueue_burst on a single-copy port's queue @q. */
uint16_t vhost_net_sc_dequeue(struct port *p, int vid, uint16_t q, struct rte_mempool *mp,
	struct rte_mbuf **pkts, uint16_t n);
uint16_t vhost_net_sc_enqueue(
	struct port *p, int vid, uint16_t q, struct rte_mbuf **pkts, uint16_t n);

#endif
