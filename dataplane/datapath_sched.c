/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The queue scheduler's side of the registry: load history sampled by the
 * control thread once a second, placement of queues when a snapshot is built
 * (sticky: a queue stays on its PMD between rebalances) and the rebalance
 * itself (queue_sched.c computes, this file moves the queues safely).
 *
 * Moving a queue:
 * - vhost-user net rx: the new plan is published and that is all. During one
 *   loop the old and the new PMD may both poll it; rte_vhost_dequeue_burst()
 *   takes vq->access_lock with rte_spinlock_trylock() (DPDK 22.11
 *   lib/vhost/virtio_net.c), so one of them gets nothing, and no frame is
 *   lost or reordered within the queue;
 * - other net ports (ethdev rx queues are not thread safe): parked first
 *   (published unpolled, grace period), then given to the new PMD;
 * - scsi request queues: stopped (in-flight commands complete on the
 *   io_uring of the thread that started them), moved, started again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_vhost.h>

#include "ctl_server.h"
#include "datapath.h"
#include "log.h"
#include "pmd.h"
#include "queue_sched.h"
#include "vhost_scsi.h"

static uint64_t sched_ticks;    /* samples taken */
static uint64_t last_rebalance; /* tick of the last automatic one */
/* Per PMD slot and sample: busy cycles and all cycles (busy+idle+sleep). */
static uint64_t pmd_hist[DP_MAX_PMDS][DP_SCHED_SAMPLES][2];
static bool pmd_leaving[DP_MAX_PMDS];

/* Placement state of the snapshot being built (dp_lock held). */
static struct sched_pmd place_pmd[DP_MAX_PMDS];
static uint16_t place_n;

int
dp_sched_numa(int vid)
{
	int n = vid >= 0 ? rte_vhost_get_numa_node(vid) : -1;

	return n < 0 ? -1 : n;
}

void
dp_sched_pmd_reset(uint16_t i)
{
	memset(pmd_hist[i], 0, sizeof(pmd_hist[i]));
	pmd_leaving[i] = false;
}

void
dp_sched_pmd_leaving(uint16_t i, bool leaving)
{
	pmd_leaving[i] = leaving;
}

bool
dp_sched_pmd_is_leaving(uint16_t i)
{
	return pmd_leaving[i];
}

/* The PMD slots as the scheduler sees them; isolation from the pins. */
static uint16_t
sched_pmds(struct sched_pmd *sp, bool with_isolation)
{
	uint16_t n = dp.n_pmd;

	for (uint16_t i = 0; i < n; i++) {
		const struct pmd *p = dp.pmds[i];

		memset(&sp[i], 0, sizeof(sp[i]));
		sp[i].off = p == NULL || pmd_leaving[i];
		sp[i].cpu = p != NULL ? p->cpu : -1;
		sp[i].numa = p != NULL ? p->numa : -1;
	}
	if (!with_isolation || !dp.pmd_conf.isolate)
		return n;
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		const struct port *pt = dp.ports[i];

		for (int q = 0; pt != NULL && q < DP_MAX_QUEUES; q++)
			for (uint16_t k = 0; pt->conf.rxq_pin[q] && k < n; k++)
				if (!sp[k].off && sp[k].cpu == pt->conf.rxq_pin[q] - 1)
					sp[k].isolated = true;
	}
	for (int i = 0; i < DP_MAX_SCSI; i++) {
		const struct scsi_ctrl *c = dp.scsi[i];

		for (int q = 0; c != NULL && q < DP_MAX_QUEUES; q++)
			for (uint16_t k = 0; c->conf.rxq_pin[q] && k < n; k++)
				if (!sp[k].off && sp[k].cpu == c->conf.rxq_pin[q] - 1)
					sp[k].isolated = true;
	}
	return n;
}

void
dp_sched_begin(const struct dp_snapshot *s)
{
	place_n = sched_pmds(place_pmd, true);
	if (place_n > s->n_pmd)
		place_n = s->n_pmd;
}

uint16_t
dp_sched_place(uint16_t cur, int numa, uint16_t pin, enum dp_place how)
{
	bool fallback = false;
	uint16_t m;

	if (pin != 0 && how != DP_PLACE_KEEP) {
		m = sched_pick(place_pmd, place_n, numa, pin - 1, SCHED_NONE, &fallback);
		if (m == SCHED_NONE)
			return DP_NONE;
	} else if (how != DP_PLACE_NEW && cur < place_n && !place_pmd[cur].off &&
		   (how == DP_PLACE_KEEP || !place_pmd[cur].isolated)) {
		m = cur;
	} else {
		m = sched_pick(place_pmd, place_n, numa, -1, SCHED_NONE, &fallback);
		if (m == SCHED_NONE)
			return DP_NONE;
		if (fallback)
			VLOG_INFO("sched: no PMD on NUMA node %d: a queue goes to node %d", numa,
				place_pmd[m].numa);
	}
	place_pmd[m].n_queues++;
	return m;
}

/* ---- load history ---------------------------------------------------------- */

uint32_t
dp_sched_window(void)
{
	return sched_ticks < DP_SCHED_WINDOW_S ? (uint32_t)sched_ticks : DP_SCHED_WINDOW_S;
}

static uint64_t
hist_delta(const uint64_t (*hist)[DP_MAX_QUEUES], uint16_t q)
{
	uint32_t w = dp_sched_window();

	if (w == 0)
		return 0;
	return hist[sched_ticks % DP_SCHED_SAMPLES][q] -
	       hist[(sched_ticks - w) % DP_SCHED_SAMPLES][q];
}

double
dp_sched_queue_load(const uint64_t (*hist)[DP_MAX_QUEUES], uint16_t q)
{
	uint32_t w = dp_sched_window();

	if (w == 0)
		return 0;
	return 100.0 * (double)hist_delta(hist, q) / ((double)rte_get_tsc_hz() * w);
}

double
dp_sched_pmd_busy(uint16_t i)
{
	uint32_t w = dp_sched_window();
	const uint64_t(*h)[2] = pmd_hist[i];
	uint64_t busy, all;

	if (w == 0 || i >= DP_MAX_PMDS)
		return -1;
	busy = h[sched_ticks % DP_SCHED_SAMPLES][0] - h[(sched_ticks - w) % DP_SCHED_SAMPLES][0];
	all = h[sched_ticks % DP_SCHED_SAMPLES][1] - h[(sched_ticks - w) % DP_SCHED_SAMPLES][1];
	return all ? 100.0 * (double)busy / (double)all : -1;
}

static void
sample(void)
{
	uint64_t hz = rte_get_tsc_hz();
	unsigned int k;

	sched_ticks++;
	k = sched_ticks % DP_SCHED_SAMPLES;
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		struct port *p = dp.ports[i];

		for (int q = 0; p != NULL && p->stats != NULL && q < DP_MAX_QUEUES; q++)
			p->cyc_hist[k][q] =
				__atomic_load_n(&p->stats->rx[q].cycles, __ATOMIC_RELAXED);
	}
	for (int i = 0; i < DP_MAX_SCSI; i++) {
		struct scsi_ctrl *c = dp.scsi[i];

		for (int q = 0; c != NULL && c->qstats != NULL && q < DP_MAX_QUEUES; q++)
			c->cyc_hist[k][q] = __atomic_load_n(&c->qstats[q].cycles, __ATOMIC_RELAXED);
	}
	for (uint16_t i = 0; i < dp.n_pmd; i++) {
		const struct pmd *p = dp.pmds[i];
		uint64_t busy, all;

		if (p == NULL)
			continue;
		busy = __atomic_load_n(&p->ctr.busy_cycles, __ATOMIC_RELAXED);
		all = busy + __atomic_load_n(&p->ctr.idle_cycles, __ATOMIC_RELAXED) +
		      __atomic_load_n(&p->ctr.sleep_ns, __ATOMIC_RELAXED) * hz / 1000000000ull;
		pmd_hist[i][k][0] = busy;
		pmd_hist[i][k][1] = all;
	}
}

/* ---- rebalance --------------------------------------------------------------- */

struct qref {
	bool scsi;
	uint16_t obj, queue;
};

/* Every queue that is polled, plus the pinned ones that are not. */
static uint16_t
collect(struct sched_queue *sq, struct qref *ref, uint16_t max)
{
	static uint16_t polled_by[DP_MAX_PORTS][DP_MAX_QUEUES];
	const struct dp_snapshot *s = dp_current;
	uint16_t n = 0;

	/* The plan says which net queues are polled (and by whom). */
	memset(polled_by, 0xff, sizeof(polled_by));
	for (uint16_t m = 0; m < s->n_pmd; m++)
		for (uint16_t r = 0; r < s->pmds[m].n_rxq; r++)
			polled_by[s->pmds[m].rxq[r].port][s->pmds[m].rxq[r].queue] = m;
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		struct port *p = dp.ports[i];
		int numa;

		if (p == NULL || p->deleting || s->ports[i].port != p)
			continue;
		numa = p->conf.type == PORT_VHOST_USER ? dp_sched_numa(p->vid) : -1;
		for (uint16_t q = 0; q < DP_MAX_QUEUES && n < max; q++) {
			bool polled = polled_by[i][q] != DP_NONE;

			if (!polled && !(p->conf.rxq_pin[q] && p->conf.type == PORT_VHOST_USER &&
					       (p->vring_enabled >> (2 * q + 1)) & 1))
				continue;
			sq[n] = (struct sched_queue){.load = hist_delta(p->cyc_hist, q),
				.numa = numa,
				.pin_cpu = p->conf.rxq_pin[q] ? p->conf.rxq_pin[q] - 1 : -1,
				.cur = polled ? polled_by[i][q] : SCHED_NONE};
			ref[n++] = (struct qref){false, (uint16_t)i, q};
		}
	}
	for (int i = 0; i < DP_MAX_SCSI; i++) {
		struct scsi_ctrl *c = dp.scsi[i];
		uint64_t started;

		if (c == NULL || c->deleting || c->dev == NULL)
			continue;
		started = vhost_scsi_started_vrings(c);
		for (uint16_t q = 0; q < DP_MAX_QUEUES && n < max; q++) {
			if (!((started >> (q + 2)) & 1))
				continue;
			sq[n] = (struct sched_queue){.load = hist_delta(c->cyc_hist, q),
				.numa = dp_sched_numa(c->vid),
				.pin_cpu = c->conf.rxq_pin[q] ? c->conf.rxq_pin[q] - 1 : -1,
				.cur = c->rxq_pmd[q] < dp.n_pmd ? c->rxq_pmd[q] : SCHED_NONE};
			ref[n++] = (struct qref){true, (uint16_t)i, q};
		}
	}
	return n;
}

/* Move the queues; dp_lock held. */
static void
apply(const struct dp_sched_move *mv, uint16_t n)
{
	uint64_t paused[DP_MAX_SCSI] = {0};
	bool parked = false;

	for (uint16_t i = 0; i < n; i++) {
		if (mv[i].scsi) {
			/* The control queue rides with request queue 0. */
			paused[mv[i].obj] |= 1ULL << (mv[i].queue + 2) | (mv[i].queue == 0);
		} else if (dp.ports[mv[i].obj]->conf.type != PORT_VHOST_USER &&
			   mv[i].from != DP_NONE) {
			dp.ports[mv[i].obj]->rxq_pmd[mv[i].queue] = DP_PARKED;
			parked = true;
		}
	}
	for (int c = 0; c < DP_MAX_SCSI; c++)
		if (paused[c] && dp.scsi[c] != NULL)
			vhost_scsi_pause(dp.scsi[c], paused[c]);
	if (parked) {
		dp_publish();
		dp_wait_grace();
	}
	for (uint16_t i = 0; i < n; i++) {
		if (mv[i].scsi)
			dp.scsi[mv[i].obj]->rxq_pmd[mv[i].queue] = mv[i].to;
		else
			dp.ports[mv[i].obj]->rxq_pmd[mv[i].queue] = mv[i].to;
	}
	dp_publish();
	for (int c = 0; c < DP_MAX_SCSI; c++)
		if (paused[c] && dp.scsi[c] != NULL)
			vhost_scsi_resume(dp.scsi[c]);
}

int
dp_sched_rebalance(bool dry_run, bool force, struct dp_sched_result *out, struct ctl_error *err)
{
	const uint16_t max = (DP_MAX_PORTS + DP_MAX_SCSI) * DP_MAX_QUEUES;
	struct sched_pmd sp[DP_MAX_PMDS];
	struct sched_queue *sq;
	struct qref *ref;
	uint64_t total;
	uint16_t n, np;

	memset(out, 0, sizeof(*out));
	sq = calloc(max, sizeof(*sq));
	ref = calloc(max, sizeof(*ref));
	out->moves = calloc(max, sizeof(*out->moves));
	if (sq == NULL || ref == NULL || out->moves == NULL) {
		free(sq);
		free(ref);
		free(out->moves);
		out->moves = NULL;
		ctl_error_set(err, 0, ENOMEM, "pmd.rebalance: out of memory");
		return -ENOMEM;
	}
	dp_lock();
	np = sched_pmds(sp, false);
	n = collect(sq, ref, max);
	sched_assign(sq, n, sp, np, dp.pmd_conf.isolate);
	out->window_s = dp_sched_window();
	total = rte_get_tsc_hz() * (out->window_s ? out->window_s : 1);
	out->var_before = sched_variance(sq, n, np, total, false);
	out->var_after = sched_variance(sq, n, np, total, true);
	for (uint16_t i = 0; i < n; i++) {
		uint16_t to = sq[i].out == SCHED_NONE ? DP_NONE : sq[i].out;
		uint16_t from = sq[i].cur == SCHED_NONE ? DP_NONE : sq[i].cur;

		if (to == from)
			continue;
		out->moves[out->n_moves++] =
			(struct dp_sched_move){ref[i].scsi, ref[i].obj, ref[i].queue, from, to};
	}
	if (!dry_run && out->n_moves > 0 &&
		(force || sched_improves(out->var_before, out->var_after,
				  dp.pmd_conf.rebalance_improvement))) {
		apply(out->moves, out->n_moves);
		out->applied = true;
		VLOG_INFO("sched: rebalanced: %u queue(s) moved, load variance %.1f -> %.1f",
			out->n_moves, out->var_before, out->var_after);
	}
	dp_unlock();
	free(sq);
	free(ref);
	return 0;
}

void
dp_sched_tick(void)
{
	struct dp_sched_result r;
	struct ctl_error err;
	bool busy = false;

	dp_lock();
	sample();
	if (!dp.pmd_conf.auto_rebalance || dp_sched_window() < DP_SCHED_WINDOW_S ||
		sched_ticks - last_rebalance < dp.pmd_conf.rebalance_interval_s) {
		dp_unlock();
		return;
	}
	last_rebalance = sched_ticks;
	/* Only worth disturbing queues when a thread is close to saturation. */
	for (uint16_t i = 0; i < dp.n_pmd; i++)
		if (dp.pmds[i] != NULL &&
			dp_sched_pmd_busy(i) >= (double)dp.pmd_conf.rebalance_load_threshold)
			busy = true;
	dp_unlock();
	if (busy && dp_sched_rebalance(false, false, &r, &err) == 0)
		free(r.moves);
}
