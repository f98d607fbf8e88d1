/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <numa.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <time.h>

#include <urcu-qsbr.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_vhost.h>

#include "datapath.h"
#include "ethdev.h"
#include "forward.h"
#include "log.h"
#include "pmd.h"
#include "vhost_scsi.h"

/* Idle loops before the first back-off sleep (poll mode). */
#define PMD_IDLE_LOOPS_BEFORE_SLEEP 1024
/*
 * A halted thread is woken by events, never by this timer: it only bounds
 * the harm of a kick eventfd that the frontend replaced while we slept.
 */
#define PMD_HALT_BACKSTOP_MS 1000
/* A queue without a wake-up fd is polled this often while the thread halts. */
#define PMD_HALT_UNWAKEABLE_MS 1
/*
 * An ethdev queue woken by rx interrupts: they are not reliable for every
 * PMD. net_tap's were seen missed now and then (the frame then waited for the
 * 1 s backstop: ping replies 0.2-1 s late or lost, test_libvirt_ovs.py), cause
 * not found. 100 wake-ups a second while idle bound the harm.
 */
#define PMD_HALT_ETHDEV_MS 10
/* Passes between two announced quiescent states (a power of two). */
#define PMD_QS_PASSES 16

const char *const pmd_mode_names[PMD_MODE_MAX] = {
	[PMD_MODE_POLL] = "poll",
	[PMD_MODE_HALT_POLL] = "halt-poll",
	[PMD_MODE_INTERRUPT] = "interrupt",
};

int
pmd_mode_from_name(const char *name)
{
	for (int i = 0; i < PMD_MODE_MAX; i++)
		if (strcmp(name, pmd_mode_names[i]) == 0)
			return i;
	return -1;
}

struct pmd *
pmd_create(uint16_t idx, int cpu, const struct pmd_gov *gov, char *err, size_t errlen)
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
	p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (p->wake_fd < 0 || p->ep_fd < 0) {
		snprintf(err, errlen, "pmd on CPU %d: %s", cpu, strerror(errno));
		goto fail;
	}
	p->fwd = rte_zmalloc_socket("pmd-fwd", sizeof(*p->fwd), RTE_CACHE_LINE_SIZE, numa);
	p->mp = dp_mempool(numa);
	if (p->fwd == NULL || p->mp == NULL) {
		snprintf(err, errlen, "pmd on CPU %d: cannot allocate mbuf pool on NUMA node %d",
			cpu, numa);
		goto fail;
	}
	p->scsi = vhost_scsi_pmd_create(idx, numa, err, errlen);
	if (p->scsi == NULL)
		goto fail;
	p->idx = idx;
	p->cpu = cpu;
	p->numa = numa;
	p->gov = *gov;
	p->ep_generation = UINT64_MAX;
	p->fwd->pmd_idx = idx;
	p->fwd->mp = p->mp;
	p->fwd->sc_backoff = rte_get_tsc_hz() / FWD_SC_BACKOFF_PER_S;
	p->fwd->sc_auto_hold = rte_get_tsc_hz() / FWD_SC_AUTO_HOLD_PER_S;
	p->fwd->sc_auto_window = rte_get_tsc_hz() / FWD_SC_AUTO_WINDOW_PER_S;
	return p;
fail:
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	if (p->ep_fd >= 0)
		close(p->ep_fd);
	rte_free(p->fwd);
	rte_free(p);
	return NULL;
}

static uint64_t
ns_to_tsc(uint64_t ns)
{
	return ns * rte_get_tsc_hz() / 1000000000ull;
}

static uint64_t
tsc_to_ns(uint64_t cycles)
{
	return cycles * 1000000000ull / rte_get_tsc_hz();
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
	p->ctr.sleep_ns += tsc_to_ns(rte_get_tsc_cycles() - t0);
}

/*
 * One pass over every queue of the plan; returns the work done. @start is
 * the TSC at the start of the pass.
 */
static uint32_t
pmd_poll_all(struct pmd *p, uint64_t start)
{
	struct fwd_ctx *c = p->fwd;
	const struct dp_pmd_plan *plan;
	uint32_t got = 0;

	c->snap = rcu_dereference(dp_current);
	c->now = start;
	plan = &c->snap->pmds[p->idx];
	if (p->idx < c->snap->n_pmd) {
		/*
		 * Per-queue load for the scheduler: the cycles of each poll that
		 * found work, from the poll to the end of its transmission (net)
		 * or of the command submissions (scsi; the shared io_uring reap
		 * and used-ring flush below are not attributed to a queue).
		 *
		 * The TSC is read once after each poll that found work and, after
		 * an empty poll, once before the next poll: a burst that follows
		 * a burst starts when the previous one ended. rdtsc costs 25-40
		 * cycles; reading it before and after every poll was 8 % of the
		 * PMD's samples in the 64 B bridge profile (bench/RESULTS.md).
		 */
		uint64_t t = start, t1;
		bool stale = false;

		/*
		 * Transmit each queue's burst before polling the next: the frames
		 * are still in cache, and fewer mbufs are in flight.
		 */
		for (uint16_t i = 0; i < plan->n_rxq; i++) {
			const struct dp_rxq_ref *r = &plan->rxq[i];
			uint16_t n;

			if (stale)
				t = rte_rdtsc();
			n = fwd_poll(c, r);

			if (c->n_dirty)
				fwd_flush(c);
			if (n == 0) {
				stale = true;
				continue;
			}
			got += n;
			t1 = rte_rdtsc();
			c->snap->ports[r->port].port->stats->rx[r->queue].cycles += t1 - t;
			t = t1;
			stale = false;
		}
		for (uint16_t i = 0; i < plan->n_sq; i++) {
			const struct dp_sq_ref *r = &plan->sq[i];
			struct scsi_ctrl *ctrl;
			unsigned int n;

			if (stale)
				t = rte_rdtsc();
			n = vhost_scsi_poll(p->scsi, c->snap, r);

			if (n == 0) {
				stale = true;
				continue;
			}
			got += n;
			t1 = rte_rdtsc();
			/* The control queue rides with request queue 0: counted there. */
			ctrl = c->snap->scsi[r->ctrl].ctrl;
			if (ctrl != NULL)
				ctrl->qstats[r->vring >= 2 ? r->vring - 2 : 0].cycles += t1 - t;
			t = t1;
			stale = false;
		}
	}
	/* Also when the plan has no scsi queue: draining ones complete here. */
	got += vhost_scsi_pmd_finish(p->scsi);
	return got;
}

/* The guest-tx vring of a net rx queue: the one the guest kicks. */
static inline uint16_t
net_kick_vring(const struct dp_rxq_ref *r)
{
	return (uint16_t)(2 * r->queue + 1);
}

/*
 * Notifications on (@enable) or off for every queue of the plan. Returns
 * true when a queue has work that no kick will announce.
 */
static bool
pmd_arm(struct pmd *p, const struct dp_snapshot *s, bool enable)
{
	const struct dp_pmd_plan *plan = &s->pmds[p->idx];
	bool pending = false;

	if (p->idx >= s->n_pmd)
		return false;
	for (uint16_t i = 0; i < plan->n_rxq; i++) {
		const struct dp_port_view *v = &s->ports[plan->rxq[i].port];
		uint16_t vring = net_kick_vring(&plan->rxq[i]);

		if (v->port == NULL)
			continue;
		if (v->type == PORT_ETHDEV) {
			/* Without rx interrupts the halted thread looks every 1 ms. */
			if (!v->up || !v->eth_rx_intr)
				continue;
			if (enable)
				rte_eth_dev_rx_intr_enable(v->eth_port, plan->rxq[i].queue);
			else
				rte_eth_dev_rx_intr_disable(v->eth_port, plan->rxq[i].queue);
			continue;
		}
		if (v->vid < 0)
			continue;
		rte_vhost_enable_guest_notification(v->vid, vring, enable);
		/* Buffers we could not take (no mbufs) would get no kick. */
		if (enable && rte_vhost_rx_queue_count(v->vid, vring) > 0)
			pending = true;
	}
	for (uint16_t i = 0; i < plan->n_sq; i++)
		pending |= vhost_scsi_arm(s, &plan->sq[i], enable);
	return pending;
}

static int
watch(struct pmd *p, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};

	if (fd < 0 || p->n_watch == RTE_DIM(p->watch_fd))
		return -1;
	if (epoll_ctl(p->ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST)
		return -1;
	p->watch_fd[p->n_watch++] = fd;
	return 0;
}

/* What wakes a halted thread for a net rx queue: a kick, or an rx interrupt. */
static int
net_kick_fd(const struct dp_snapshot *s, const struct dp_rxq_ref *r)
{
	const struct dp_port_view *v = &s->ports[r->port];
	struct rte_vhost_vring vr;

	if (v->port == NULL)
		return -1;
	if (v->type == PORT_ETHDEV)
		return v->up && v->eth_rx_intr ? ethdev_port_rx_intr_fd(v->eth_port, r->queue) : -1;
	if (v->vid < 0 || rte_vhost_get_vhost_vring(v->vid, net_kick_vring(r), &vr) != 0)
		return -1;
	return vr.kickfd;
}

/*
 * The epoll set: the wake-up eventfd, the io_uring eventfd and the kick fd of
 * every queue of the plan. Rebuilt when the plan changed or a frontend
 * replaced a kick fd (a closed fd silently leaves an epoll set).
 */
static void
pmd_watch_plan(struct pmd *p, const struct dp_snapshot *s)
{
	const struct dp_pmd_plan *plan = &s->pmds[p->idx];
	bool same = p->ep_generation == s->generation;
	uint16_t k = 2;

	if (same && p->idx < s->n_pmd) {
		for (uint16_t i = 0; i < plan->n_rxq && same; i++)
			same = net_kick_fd(s, &plan->rxq[i]) == p->watch_fd[k++];
		for (uint16_t i = 0; i < plan->n_sq && same; i++)
			same = vhost_scsi_kick_fd(s, &plan->sq[i]) == p->watch_fd[k++];
	}
	if (same)
		return;
	close(p->ep_fd);
	p->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	p->n_watch = 0;
	watch(p, p->wake_fd, EPOLLIN);
	if (watch(p, vhost_scsi_pmd_event_fd(p->scsi), EPOLLIN | EPOLLET) < 0)
		p->watch_fd[p->n_watch++] = -1;
	if (p->idx < s->n_pmd) {
		/* Slots stay aligned with the plan (-1 where a queue has no fd). */
		for (uint16_t i = 0; i < plan->n_rxq; i++) {
			int fd = net_kick_fd(s, &plan->rxq[i]);

			if (watch(p, fd, EPOLLIN | EPOLLET) < 0 &&
				p->n_watch < RTE_DIM(p->watch_fd))
				p->watch_fd[p->n_watch++] = fd;
		}
		for (uint16_t i = 0; i < plan->n_sq; i++) {
			int fd = vhost_scsi_kick_fd(s, &plan->sq[i]);

			if (watch(p, fd, EPOLLIN | EPOLLET) < 0 &&
				p->n_watch < RTE_DIM(p->watch_fd))
				p->watch_fd[p->n_watch++] = fd;
		}
	}
	p->halt_timeout_ms = PMD_HALT_BACKSTOP_MS;
	for (uint16_t i = 0; p->idx < s->n_pmd && i < plan->n_rxq; i++)
		if (s->ports[plan->rxq[i].port].type == PORT_ETHDEV)
			p->halt_timeout_ms = PMD_HALT_ETHDEV_MS;
	/* A queue nothing can wake us for (an ethdev without rx interrupts). */
	for (uint16_t i = 2; i < p->n_watch; i++)
		if (p->watch_fd[i] < 0)
			p->halt_timeout_ms = PMD_HALT_UNWAKEABLE_MS;
	p->ep_generation = s->generation;
}

uint32_t
pmd_gov_next_window(const struct pmd_gov *g, uint32_t window_ns, uint64_t halt_ns)
{
	uint32_t max = __atomic_load_n(&g->halt_poll_ns, __ATOMIC_RELAXED);
	uint32_t grow = __atomic_load_n(&g->grow, __ATOMIC_RELAXED);
	uint32_t shrink = __atomic_load_n(&g->shrink, __ATOMIC_RELAXED);
	uint64_t w = window_ns;

	if (halt_ns > max) {
		/* Polling the whole window would not have caught it: poll less. */
		w = shrink > 1 ? w / shrink : 0;
	} else if (w < max) {
		/* A longer window would have caught it without a halt. */
		w = w == 0 ? __atomic_load_n(&g->grow_start_ns, __ATOMIC_RELAXED)
			   : w * (grow > 1 ? grow : 2);
	}
	return (uint32_t)(w > max ? max : w);
}

/*
 * Halt: notifications on, one more poll (a buffer may have been added just
 * before the guest saw them on), then block until a kick, an I/O completion
 * or the control thread. Returns the work found.
 */
static uint32_t
pmd_halt(struct pmd *p)
{
	struct fwd_ctx *c = p->fwd;
	const struct dp_snapshot *s;
	struct epoll_event ev[16];
	uint64_t t0, t1, n;
	uint32_t got;
	bool pending;
	int rc;

	s = rcu_dereference(dp_current);
	pmd_watch_plan(p, s);
	pending = pmd_arm(p, s, true);
	/* The guest reads our flag after adding a buffer; we read its index after. */
	rte_atomic_thread_fence(__ATOMIC_SEQ_CST);
	got = pmd_poll_all(p, rte_get_tsc_cycles());
	if (got > 0 || pending) {
		pmd_arm(p, s, false);
		p->ctr.halt_races++;
		return got;
	}
	/*
	 * Announce the sleep, then look once more at what the control thread
	 * may have changed: it changes first and looks at `sleeping` after
	 * (pmd_kick), so one of the two sees the other.
	 */
	__atomic_store_n(&p->sleeping, 1, __ATOMIC_SEQ_CST);
	t0 = rte_get_tsc_cycles();
	if (__atomic_load_n(&p->stop, __ATOMIC_SEQ_CST) ||
		rcu_dereference(dp_current)->generation != p->ep_generation ||
		__atomic_load_n(&p->gov.mode, __ATOMIC_SEQ_CST) == PMD_MODE_POLL) {
		rc = 0;
	} else {
		rcu_thread_offline();
		rc = epoll_wait(p->ep_fd, ev, RTE_DIM(ev), p->halt_timeout_ms);
		rcu_thread_online();
	}
	t1 = rte_get_tsc_cycles();
	__atomic_store_n(&p->sleeping, 0, __ATOMIC_RELAXED);
	p->ctr.halts++;
	/* EINTR: the kernel ran task work for us (an I/O completed): an event too. */
	if (rc > 0 || (rc < 0 && errno == EINTR))
		p->ctr.wakeups++;
	p->ctr.sleep_ns += tsc_to_ns(t1 - t0);
	if (read(p->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		VLOG_WARN("pmd %u: wake-up eventfd: %s", p->idx, strerror(errno));
	/* The old snapshot may be gone: turn notifications off on the current one. */
	c->snap = rcu_dereference(dp_current);
	pmd_arm(p, c->snap, false);
	if (__atomic_load_n(&p->gov.mode, __ATOMIC_RELAXED) == PMD_MODE_HALT_POLL)
		p->window_ns = pmd_gov_next_window(
			&p->gov, p->window_ns, tsc_to_ns(t1 - t0) + p->window_ns);
	return 0;
}

static void *
pmd_main(void *arg)
{
	struct pmd *p = arg;
	uint32_t idle_loops = 0, sleep_us = 0;
	uint64_t idle_since = 0, t1;
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
	VLOG_INFO("pmd %u: polling on CPU %d (NUMA %d), mode %s", p->idx, p->cpu, p->numa,
		pmd_mode_names[p->gov.mode]);

	/* Each pass starts when the previous one ended: one TSC read per pass. */
	t1 = rte_get_tsc_cycles();
	while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
		uint64_t t0 = t1;
		uint32_t got = pmd_poll_all(p, t0);
		uint8_t mode;

		/*
		 * The snapshot is not used past this point. Saying so every few
		 * passes is enough (QSBR: not saying it only holds the old
		 * snapshot longer) and keeps a library call with a TLS lookup
		 * out of most passes.
		 */
		if ((++p->ctr.loops & (PMD_QS_PASSES - 1)) == 0)
			rcu_quiescent_state();
		t1 = rte_get_tsc_cycles();
		if (got) {
			p->ctr.busy_cycles += t1 - t0;
			p->ctr.packets += got;
			if (idle_since != 0)
				p->ctr.poll_hits++;
			idle_loops = 0;
			sleep_us = 0;
			idle_since = 0;
			continue;
		}
		p->ctr.idle_cycles += t1 - t0;
		mode = __atomic_load_n(&p->gov.mode, __ATOMIC_RELAXED);
		if (mode == PMD_MODE_POLL) {
			uint32_t max_sleep =
				__atomic_load_n(&p->gov.max_sleep_us, __ATOMIC_RELAXED);

			if (max_sleep == 0 || ++idle_loops < PMD_IDLE_LOOPS_BEFORE_SLEEP)
				continue;
			if (sleep_us < max_sleep)
				sleep_us++;
			pmd_sleep(p, sleep_us);
			t1 = rte_get_tsc_cycles(); /* the sleep is counted apart */
			continue;
		}
		if (idle_since == 0)
			idle_since = t0;
		if (mode == PMD_MODE_HALT_POLL && t1 - idle_since < ns_to_tsc(p->window_ns))
			continue;
		p->ctr.poll_misses++;
		got = pmd_halt(p);
		rcu_quiescent_state();
		if (got)
			p->ctr.packets += got;
		idle_since = 0;
		t1 = rte_get_tsc_cycles(); /* the halt is counted apart */
	}
	/* Leave no guest kicking for a thread that is gone. */
	pmd_arm(p, rcu_dereference(dp_current), false);
	rcu_unregister_thread();
	rte_thread_unregister();
	return NULL;
}

void
pmd_set_gov(struct pmd *p, const struct pmd_gov *gov)
{
	__atomic_store_n(&p->gov.max_sleep_us, gov->max_sleep_us, __ATOMIC_RELAXED);
	__atomic_store_n(&p->gov.halt_poll_ns, gov->halt_poll_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&p->gov.grow, gov->grow, __ATOMIC_RELAXED);
	__atomic_store_n(&p->gov.grow_start_ns, gov->grow_start_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&p->gov.shrink, gov->shrink, __ATOMIC_RELAXED);
	__atomic_store_n(&p->gov.mode, gov->mode, __ATOMIC_RELEASE);
	pmd_kick(p);
}

void
pmd_kick(struct pmd *p)
{
	uint64_t one = 1;

	/* Our change (snapshot, mode, stop) is visible before we look. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&p->sleeping, __ATOMIC_SEQ_CST) &&
		write(p->wake_fd, &one, sizeof(one)) < 0)
		VLOG_WARN("pmd %u: cannot wake: %s", p->idx, strerror(errno));
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
	uint64_t one = 1;

	if (p == NULL)
		return;
	if (p->running) {
		__atomic_store_n(&p->stop, true, __ATOMIC_SEQ_CST);
		if (write(p->wake_fd, &one, sizeof(one)) < 0)
			VLOG_WARN("pmd %u: cannot wake: %s", p->idx, strerror(errno));
		pthread_join(p->thread, NULL);
	}
	close(p->wake_fd);
	close(p->ep_fd);
	vhost_scsi_pmd_destroy(p->scsi);
	rte_free(p->fwd);
	rte_free(p);
}
