/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Single-copy transfer of Ethernet frames between two vhost-user net
 * devices: take a frame from guest A's transmit virtqueue and copy it
 * straight into guest B's receive buffers, with no mbuf in between.
 * rte_vhost's own path copies twice (A's buffer -> mbuf -> B's buffer).
 *
 * Pure virtqueue work on struct virtq (virtq.h): no rte_vhost calls, so it
 * runs on fake guest memory in the unit tests. The caller owns both rings
 * for the duration of the call (vhost_net.c), flushes the used rings and
 * signals the guests.
 *
 * Both guests are untrusted. A tx chain that lies (bad address, shorter
 * than its header) is completed with 0 bytes and counted; a receive buffer
 * that lies is returned with 0 bytes; ring indexes that go wrong mark the
 * queue broken (virtq.h) and stop the burst. Nothing is read or written
 * outside the guests' memory tables.
 */
#ifndef VHOSTD_NET_COPY_H
#define VHOSTD_NET_COPY_H

#include <stdbool.h>
#include <stdint.h>

#include "virtq.h"

/* Receive buffers one frame may span with mergeable rx buffers. */
#define NET_COPY_MAX_RX_BUFS 64
/* Frames one net_copy_burst() call takes at most. */
#define NET_COPY_MAX_BURST 64
/* Copies one batch holds (a small frame takes one or a few). */
#define NET_COPY_BATCH 128

/* One device's side of a transfer. */
struct net_copy_side {
	struct virtq *vq;
	uint16_t hdr_len; /* virtio-net header: 12 with MRG_RXBUF or VERSION_1, else 10 */
	bool mrg_rxbuf;   /* receive side: VIRTIO_NET_F_MRG_RXBUF negotiated */
	bool csum;        /* tx side: VIRTIO_NET_F_CSUM; rx side: VIRTIO_NET_F_GUEST_CSUM */
};

struct net_copy_result {
	uint16_t frames;   /* frames delivered to B */
	uint64_t bytes;    /* their length without the virtio-net header */
	uint64_t in_bytes; /* length of the frames taken from A, delivered or dropped (not bad) */
	uint16_t tx_done;  /* A's chains completed (delivered, dropped or bad) */
	uint16_t too_big;  /* longer than max_frame, or than B's buffer */
	uint16_t bad_tx;   /* A chains that could not be mapped or lacked a header */
	uint16_t bad_rx;   /* B buffers that could not be mapped (returned empty) */
	bool rx_full;      /* stopped for lack of receive buffers: the rest stays in A */
	bool small;        /* stopped at a frame of min_frame bytes or less: the same */
	const char *why;   /* the last chain error, for the log */
};

/*
 * Copies of small frames (up to 256 bytes) put off to the end of a burst and
 * run back to back: their cache misses then overlap instead of each stalling
 * the descriptor work around it.
 */
struct net_copy_batch {
	unsigned int n;
	struct net_copy_job {
		void *dst;
		const void *src;
		uint32_t len;
	} job[NET_COPY_BATCH];
};

enum net_copy_rc {
	NET_COPY_DONE,      /* delivered */
	NET_COPY_DROPPED,   /* counted in the result (too big, bad chain or buffer) */
	NET_COPY_RX_FULL,   /* no receive buffer: nothing taken from the receiver */
	NET_COPY_RX_BROKEN, /* the receive ring is broken */
};

/* Header length for the negotiated @features of a device. */
uint16_t net_copy_hdr_len(uint64_t features);

/*
 * Move up to @max frames from @tx (A's transmit queue) to @rx (B's receive
 * queue), each copied once. Frames longer than @max_frame bytes are dropped.
 * A checksum offload request (NEEDS_CSUM) is passed on when both sides
 * negotiated it, and cleared otherwise (the caller only pairs devices where
 * that cannot lose a checksum: A without CSUM, or B with GUEST_CSUM).
 * When B runs out of buffers the burst stops and A's remaining frames stay
 * in its ring (back-pressure, nothing dropped). So does the first frame of
 * @min_frame bytes or less (res->small), and all after it: small frames cost
 * less through rte_vhost's batched copies (the caller's mbuf path; 0: take
 * every size). Used elements are pushed on both queues; the caller
 * publishes them with virtq_flush().
 * Returns 0, or -EINVAL when a ring of either side is broken.
 */
int net_copy_burst(const struct net_copy_side *tx, const struct net_copy_side *rx,
	uint32_t max_frame, uint32_t min_frame, unsigned int max, struct net_copy_result *res);

/*
 * The per-frame step of net_copy_burst(), for callers that take and inspect
 * frames themselves: deliver the frame of @txc (a chain mapped from @tx's
 * queue, virtio-net header first) into @rx, using @rxc as scratch. DONE and
 * DROPPED finish the frame (counted in @res; the caller completes A's head);
 * RX_FULL and RX_BROKEN leave it with the caller. Small copies may wait in
 * @batch: run net_copy_batch_run() before publishing @rx's used ring.
 * @l2 (@l2_len bytes, or NULL and 0): the frame's first bytes as the caller
 * read and checked them. B gets those, not A's, which A may have rewritten
 * since; the frame is then copied at once, not batched, and @l2 is not
 * read after the call: the caller may reuse it for the next frame.
 */
enum net_copy_rc net_copy_frame(const struct net_copy_side *tx, const struct net_copy_side *rx,
	const struct virtq_chain *txc, const void *l2, uint16_t l2_len, uint32_t max_frame,
	struct virtq_chain *rxc, struct net_copy_batch *batch, struct net_copy_result *res);

/* Add the counts of @r to @sum (rx_full and why: the latest). */
void net_copy_result_add(struct net_copy_result *sum, const struct net_copy_result *r);

/* Run and empty the copies waiting in @b. */
void net_copy_batch_run(struct net_copy_batch *b);

/* Start loading a mapped chain's frame (the first lines of a large one). */
void net_copy_prefetch(const struct virtq_chain *c);

#endif
