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
	const char *why;   /* the last chain error, for the log */
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
 * in its ring (back-pressure, nothing dropped). Used elements are pushed on
 * both queues; the caller publishes them with virtq_flush().
 * Returns 0, or -EINVAL when a ring of either side is broken.
 */
int net_copy_burst(const struct net_copy_side *tx, const struct net_copy_side *rx,
	uint32_t max_frame, unsigned int max, struct net_copy_result *res);

#endif
