/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The rx queue scheduler as pure functions (no DPDK, no registry), so that
 * unit tests can drive it: which PMD thread polls which queue.
 *
 * Rules, in order:
 * - a pinned queue goes to the PMD on its CPU; with no PMD there it is not
 *   polled (the caller reports it). With isolation on, a PMD that got a
 *   pinned queue gets no other queue;
 * - the other queues, heaviest first, go to the least loaded PMD (by the
 *   load assigned so far; ties: fewer queues, then the lower index) among
 *   the non-isolated PMDs on the NUMA node of the queue's guest memory, or on
 *   any node when that node has none (the queue is flagged numa_fallback).
 *   Queues without a measured load (new ones) count as load 0: they spread
 *   by queue count.
 */
#ifndef VHOSTD_QUEUE_SCHED_H
#define VHOSTD_QUEUE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_NONE 0xffff

struct sched_queue {
	uint64_t load;      /* cycles spent on it over the measuring window */
	int numa;           /* NUMA node of its guest memory, -1: unknown */
	int pin_cpu;        /* -1: not pinned */
	uint16_t cur;       /* PMD index polling it now, SCHED_NONE: none */
	uint16_t out;       /* result: PMD index, SCHED_NONE: not polled */
	bool numa_fallback; /* result: placed on a PMD of another node */
};

struct sched_pmd {
	int cpu;
	int numa;
	uint64_t load;     /* result: sum of the loads of its queues */
	uint16_t n_queues; /* result */
	bool isolated;     /* result: polls pinned queues only */
	bool off;          /* never chosen (a hole, or a thread being removed) */
};

/*
 * Assign every queue of @q a PMD of @p (fills out, numa_fallback and the
 * PMD results). Returns the number of pinned queues left unpolled.
 */
unsigned int sched_assign(
	struct sched_queue *q, uint16_t nq, struct sched_pmd *p, uint16_t np, bool isolate);

/*
 * Choose a PMD for one queue without moving the others (a new queue between
 * rebalances): the PMD on @pin_cpu when pinned, else the least loaded
 * (@p[].load, ties fewer queues) non-isolated PMD on @numa, else on any node
 * (*@fallback set); on a tie @prefer (the queue's PMD now) wins, so that a
 * rebalance does not shuffle equal queues. SCHED_NONE: a pinned CPU without
 * a PMD, or no PMD.
 */
uint16_t sched_pick(const struct sched_pmd *p, uint16_t np, int numa, int pin_cpu, uint16_t prefer,
	bool *fallback);

/*
 * Variance of the PMD loads in percent of @total (the cycles of one PMD over
 * the window), with the queues of @q on PMD q[].cur (@use_out: q[].out).
 * Unpolled queues do not count.
 */
double sched_variance(
	const struct sched_queue *q, uint16_t nq, uint16_t np, uint64_t total, bool use_out);

/*
 * Whether a new assignment is worth applying: its variance is lower than the
 * current one by at least @threshold_pct percent of the current one.
 */
bool sched_improves(double cur_var, double new_var, unsigned int threshold_pct);

/*
 * Parse "Q:CPU,Q:CPU" (OVS pmd-rxq-affinity syntax; spaces allowed) into
 * @pins (pins[q] = cpu, -1 elsewhere; @n entries). Returns 0 or -EINVAL with
 * @err filled.
 */
int sched_parse_affinity(const char *text, int *pins, unsigned int n, char *err, size_t errlen);
/* The text form of @pins ("" when none is pinned). */
void sched_format_affinity(const int *pins, unsigned int n, char *out, size_t len);

#endif
