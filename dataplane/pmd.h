/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PMD (poll-mode) threads: one per configured CPU, pinned, registered with
 * DPDK (for mempool caches) and with liburcu QSBR. Each polls the rx queues
 * its snapshot plan gives it. When idle, it backs off with sleeps growing by
 * 1 us per idle loop up to max_sleep_us (reset by any traffic), and is an
 * RCU-offline thread while it sleeps.
 */
#ifndef VHOSTD_PMD_H
#define VHOSTD_PMD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct fwd_ctx;
struct vscsi_pmd;
struct rte_mempool;

struct pmd_counters {
	uint64_t busy_cycles; /* TSC cycles of loops that moved packets */
	uint64_t idle_cycles; /* TSC cycles of loops that did not (sleep excluded) */
	uint64_t sleep_ns;
	uint64_t packets;
	uint64_t loops;
	uint64_t sleeps;
};

struct pmd {
	uint16_t idx;
	int cpu;
	int numa;
	uint32_t max_sleep_us;
	pthread_t thread;
	bool running;
	volatile bool stop;
	struct rte_mempool *mp;
	struct fwd_ctx *fwd;
	struct vscsi_pmd *scsi; /* io_uring and used-ring batch of scsi queues */
	struct pmd_counters ctr; /* written by the thread only */
};

struct pmd *pmd_create(uint16_t idx, int cpu, uint32_t max_sleep_us, char *err, size_t errlen);
int pmd_start(struct pmd *p, char *err, size_t errlen);
/* Stop and join the thread, then free it. */
void pmd_destroy(struct pmd *p);

#endif
