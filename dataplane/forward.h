/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-burst switching logic run by PMD threads: receive a burst from a
 * queue, decide each frame's destinations (cross-connect, MAC learning
 * bridge with VLANs, reflector), batch per destination and transmit.
 * No locks, no syscalls, no allocation except mbufs for VLAN-changing floods.
 */
#ifndef VHOSTD_FORWARD_H
#define VHOSTD_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "datapath.h"

struct rte_mbuf;

struct fwd_txbuf {
	uint16_t n;
	struct rte_mbuf *pkts[DP_BURST];
};

/*
 * After a burst single copy took nothing from (small frames, floods...), the
 * queue goes straight to the mbuf path for a while: 1/20000 s (50 us) after
 * the first such try, doubling with each one in a row up to 32x (1.6 ms),
 * and back to 50 us once a try takes frames. A try (open both rings, pop,
 * map two chains, rewind) measured 3-4 % of the PMD's samples at a fixed
 * 50 us on the 64 B bridge, 4 % with 4 queue pairs; with the doubling,
 * 0.3 % (bench/RESULTS.md). A change to large frames is still picked up
 * within 1.6 ms. In time, not polls: a PMD that halts between bursts may
 * poll a few times a millisecond.
 */
#define FWD_SC_BACKOFF_PER_S 20000
#define FWD_SC_BACKOFF_MAX_SHIFT 5

/*
 * "single-copy": "auto" (per rx queue, fwd_sc_auto_pick()). Which path is
 * cheaper depends on the frame mix and the guests: on the bench, single copy
 * wins over 256 B by 1.1-1.5x, and loses below. Runs minutes apart cannot
 * tell, as a noisy host moves both paths' cost 2-4x between them
 * (bench/RESULTS.md). So "auto" times both on the traffic at hand: every
 * 1/FWD_SC_AUTO_HOLD_PER_S s (500 ms) a probe of FWD_SC_AUTO_STEPS windows
 * of 1/FWD_SC_AUTO_WINDOW_PER_S s (5 ms) each, single copy, the mbuf path,
 * the mbuf path, single copy (a steady drift weighs on both alike), then the
 * path with fewer rx cycles per frame until the next probe. Probing costs
 * 10 ms of the dearer path per 520 ms. Below FWD_SC_AUTO_MIN_FRAMES frames
 * a path in a probe, cost does not matter and single copy stays.
 */
#define FWD_SC_AUTO_HOLD_PER_S 2
#define FWD_SC_AUTO_WINDOW_PER_S 200
#define FWD_SC_AUTO_STEPS 4
#define FWD_SC_AUTO_MIN_FRAMES 1024

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
	/* "single-copy": "auto": TSC cycles between probes, and of a probe's window. */
	uint64_t sc_auto_hold;
	uint64_t sc_auto_window;
	uint16_t n_dirty;
	uint16_t dirty[DP_MAX_PORTS];
	struct fwd_txbuf txb[DP_MAX_PORTS];
};

/*
 * After a single-copy try on rx queue @q of @p: @missed (it took nothing,
 * and frames were there) backs the queue off until @c->now plus twice the
 * previous miss in a row's wait (the first: @c->sc_backoff; at most
 * 2^FWD_SC_BACKOFF_MAX_SHIFT times that); a try that took frames ends the run.
 */
void fwd_sc_backoff(const struct fwd_ctx *c, struct port *p, uint16_t q, bool missed);

/*
 * "single-copy": "auto" on rx queue @q of @p: whether to try single copy on
 * this poll. Moves the queue's probe on when its step is over at @c->now,
 * from the queue's rx counters (the cycles of polls before this one).
 */
bool fwd_sc_auto_pick(const struct fwd_ctx *c, struct port *p, uint16_t q);

/*
 * Test hook, NULL in the daemon: when set, a PORT_SINK port calls it with
 * the frames it is about to free, so that unit tests can inspect them.
 */
extern void (*fwd_tx_hook)(uint16_t port, struct rte_mbuf **pkts, uint16_t n);

/*
 * Free @n mbufs as rte_pktmbuf_free_bulk() does; a burst of direct,
 * unshared, one-segment mbufs of one pool goes back to it in one call.
 */
void fwd_free_bulk(struct rte_mbuf **pkts, uint16_t n);

/* Receive one burst from @rxq and forward it; returns the frames received. */
uint16_t fwd_poll(struct fwd_ctx *c, const struct dp_rxq_ref *rxq);
/* Transmit everything batched so far. Must run before the snapshot changes. */
void fwd_flush(struct fwd_ctx *c);
/* Forward frames received on @in_port queue @q (also used by tests). */
void fwd_process(
	struct fwd_ctx *c, uint16_t in_port, uint16_t q, struct rte_mbuf **pkts, uint16_t n);

#endif
