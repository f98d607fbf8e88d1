/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <numa.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <urcu-qsbr.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "datapath.h"
#include "forward.h"
#include "log.h"
#include "pmd.h"
#include "vhost_scsi.h"

/* Idle loops before the first sleep: a few microseconds of pure polling. */
#define PMD_IDLE_LOOPS_BEFORE_SLEEP 1024

struct pmd *
pmd_create(uint16_t idx, int cpu, uint32_t max_sleep_us, char *err, size_t errlen)
{
	struct pmd *p;
	int numa = numa_available() >= 0 ? numa_node_of_cpu(cpu) : 0;

	if (numa < 0)
		numa = 0;
	p = rte_zmalloc_socket("pmd", sizeof(*p), RTE_CACHE_LINE_SIZE, numa);
	if (p == NULL) {
		snprintf(err, errlen, "pmd on CPU %d: out of hugepage memory", cpu);
		return NULL;
	}
	p->fwd = rte_zmalloc_socket("pmd-fwd", sizeof(*p->fwd), RTE_CACHE_LINE_SIZE, numa);
	p->mp = dp_mempool(numa);
	if (p->fwd == NULL || p->mp == NULL) {
		snprintf(err, errlen, "pmd on CPU %d: cannot allocate mbuf pool on NUMA node %d",
			cpu, numa);
		rte_free(p->fwd);
		rte_free(p);
		return NULL;
	}
	p->scsi = vhost_scsi_pmd_create(idx, numa, err, errlen);
	if (p->scsi == NULL) {
		rte_free(p->fwd);
		rte_free(p);
		return NULL;
	}
	p->idx = idx;
	p->cpu = cpu;
	p->numa = numa;
	p->max_sleep_us = max_sleep_us;
	p->fwd->pmd_idx = idx;
	p->fwd->mp = p->mp;
	return p;
}

static void
pmd_sleep(struct pmd *p, uint32_t us)
{
	struct timespec ts = {0, (long)us * 1000};
	uint64_t t0 = rte_get_tsc_cycles();

	rcu_thread_offline();
	nanosleep(&ts, NULL);
	rcu_thread_online();
	p->ctr.sleeps++;
	p->ctr.sleep_ns += (rte_get_tsc_cycles() - t0) * 1000000000ull / rte_get_tsc_hz();
}

static void *
pmd_main(void *arg)
{
	struct pmd *p = arg;
	struct fwd_ctx *c = p->fwd;
	uint32_t idle_loops = 0, sleep_us = 0;
	char name[16];
	cpu_set_t set;

	snprintf(name, sizeof(name), "pmd-c%02d", p->cpu);
	pthread_setname_np(pthread_self(), name);
	CPU_ZERO(&set);
	CPU_SET(p->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		VLOG_WARN("pmd %u: cannot pin to CPU %d", p->idx, p->cpu);
	/* nanosleep() of a few us must not be stretched to the default 50 us slack. */
	prctl(PR_SET_TIMERSLACK, 1000UL);
	if (rte_thread_register() != 0)
		VLOG_WARN("pmd %u: rte_thread_register failed: %s (mempool cache disabled)", p->idx,
			rte_strerror(rte_errno));
	rcu_register_thread();
	VLOG_INFO("pmd %u: polling on CPU %d (NUMA %d)", p->idx, p->cpu, p->numa);

	while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
		uint64_t t0 = rte_get_tsc_cycles(), t1;
		const struct dp_pmd_plan *plan;
		uint32_t got = 0;

		c->snap = rcu_dereference(dp_current);
		plan = &c->snap->pmds[p->idx];
		if (p->idx < c->snap->n_pmd) {
			/*
			 * Transmit each queue's burst before polling the next: the
			 * frames are still in cache, and fewer mbufs are in flight.
			 */
			for (uint16_t i = 0; i < plan->n_rxq; i++) {
				got += fwd_poll(c, &plan->rxq[i]);
				if (c->n_dirty)
					fwd_flush(c);
			}
			for (uint16_t i = 0; i < plan->n_sq; i++)
				got += vhost_scsi_poll(p->scsi, c->snap, &plan->sq[i]);
		}
		/* Also when the plan has no scsi queue: draining ones complete here. */
		got += vhost_scsi_pmd_finish(p->scsi);
		/* The snapshot is not used past this point. */
		rcu_quiescent_state();
		t1 = rte_get_tsc_cycles();
		p->ctr.loops++;
		if (got) {
			p->ctr.busy_cycles += t1 - t0;
			p->ctr.packets += got;
			idle_loops = 0;
			sleep_us = 0;
			continue;
		}
		p->ctr.idle_cycles += t1 - t0;
		if (p->max_sleep_us == 0 || ++idle_loops < PMD_IDLE_LOOPS_BEFORE_SLEEP)
			continue;
		if (sleep_us < p->max_sleep_us)
			sleep_us++;
		pmd_sleep(p, sleep_us);
	}
	rcu_unregister_thread();
	rte_thread_unregister();
	return NULL;
}

int
pmd_start(struct pmd *p, char *err, size_t errlen)
{
	int rc = pthread_create(&p->thread, NULL, pmd_main, p);

	if (rc != 0) {
		snprintf(err, errlen, "pmd on CPU %d: cannot create thread: %s", p->cpu,
			strerror(rc));
		return -rc;
	}
	p->running = true;
	return 0;
}

void
pmd_destroy(struct pmd *p)
{
	if (p == NULL)
		return;
	if (p->running) {
		__atomic_store_n(&p->stop, true, __ATOMIC_RELAXED);
		pthread_join(p->thread, NULL);
	}
	vhost_scsi_pmd_destroy(p->scsi);
	rte_free(p->fwd);
	rte_free(p);
}
