/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-burst switching logic run by PMD threads: receive a burst from a
 * queue, decide each frame's destinations (cross-connect, MAC learning
 * bridge with VLANs, reflector), batch per destination and transmit.
 * No locks, no syscalls, no allocation except mbufs for VLAN-changing floods.
 */
#ifndef VHOSTD_FORWARD_H
#define VHOSTD_FORWARD_H

#include <stdint.h>

#include "datapath.h"

struct rte_mbuf;

struct fwd_txbuf {
	uint16_t n;
	struct rte_mbuf *pkts[DP_BURST];
};

/*
 * After a burst single copy took nothing from (small frames, floods...), the
 * queue goes straight to the mbuf path for 1/20000 s (50 us): a try costs
 * a few hundred cycles, so this bounds it to well under 1 % of a core, and a
 * change of traffic is picked up soon after. In time, not polls: a PMD that
 * halts between bursts may poll a few times a millisecond.
 */
#define FWD_SC_BACKOFF_PER_S 20000

struct fwd_ctx {
	uint16_t pmd_idx;
	/* The queue the frames being forwarded arrived on (0 for internal ones). */
	uint16_t in_queue;
	const struct dp_snapshot *snap;
	struct rte_mempool *mp;
	/* TSC at the start of the current poll round (0 in tests). */
	uint64_t now;
	/* TSC cycles single copy waits after a burst it took nothing from. */
	uint64_t sc_backoff;
	uint16_t n_dirty;
	uint16_t dirty[DP_MAX_PORTS];
	struct fwd_txbuf txb[DP_MAX_PORTS];
};

/*
 * Test hook, NULL in the daemon: when set, a PORT_SINK port calls it with
 * the frames it is about to free, so that unit tests can inspect them.
 */
extern void (*fwd_tx_hook)(uint16_t port, struct rte_mbuf **pkts, uint16_t n);

/* Receive one burst from @rxq and forward it; returns the frames received. */
uint16_t fwd_poll(struct fwd_ctx *c, const struct dp_rxq_ref *rxq);
/* Transmit everything batched so far. Must run before the snapshot changes. */
void fwd_flush(struct fwd_ctx *c);
/* Forward frames received on @in_port queue @q (also used by tests). */
void fwd_process(
	struct fwd_ctx *c, uint16_t in_port, uint16_t q, struct rte_mbuf **pkts, uint16_t n);

#endif
