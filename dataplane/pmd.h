/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PMD (poll-mode) threads: one per configured CPU, pinned, registered with
 * DPDK (for mempool caches) and with liburcu QSBR. Each polls the queues its
 * snapshot plan gives it (net rx queues, scsi request queues).
 *
 * A governor per thread decides what an idle thread does:
 * - poll: busy polling; optionally OVS-style back-off sleeps growing by 1 us
 *   per idle loop up to max_sleep_us (0: never sleep);
 * - halt-poll (default): keep polling for a window after the last work
 *   (adaptive like KVM's halt_poll_ns: grows when halts turn out short,
 *   shrinks when they are long), then halt;
 * - interrupt: halt as soon as a loop finds nothing.
 * Halting = ask every guest to kick on new buffers (notifications on), poll
 * once more to close the race with a buffer added meanwhile, then block in
 * epoll on the queues' kick eventfds, the thread's io_uring eventfd and a
 * wake-up eventfd of the control thread. No timer is involved in waking up.
 * A thread is RCU-offline while it sleeps.
 */
#ifndef VHOSTD_PMD_H
#define VHOSTD_PMD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct fwd_ctx;
struct vscsi_pmd;
struct rte_mempool;

enum pmd_mode {
	PMD_MODE_POLL,
	PMD_MODE_HALT_POLL,
	PMD_MODE_INTERRUPT,
	PMD_MODE_MAX,
};
extern const char *const pmd_mode_names[PMD_MODE_MAX];
/* enum pmd_mode of @name, or -1. */
int pmd_mode_from_name(const char *name);

#define PMD_HALT_POLL_NS_DEFAULT 500000 /* KVM's halt_poll_ns */
#define PMD_HALT_POLL_NS_MAX 100000000  /* 100 ms */
#define PMD_GROW_DEFAULT 2
#define PMD_GROW_START_NS_DEFAULT 10000
#define PMD_SHRINK_DEFAULT 0 /* KVM: a long halt resets the window */

/* Governor settings of one thread (changed live by the control thread). */
struct pmd_gov {
	uint8_t mode;          /* enum pmd_mode */
	uint32_t max_sleep_us; /* poll mode back-off ceiling, 0 = busy */
	uint32_t halt_poll_ns; /* halt-poll: the largest poll window */
	uint32_t grow;         /* window *= grow after a halt shorter than the max */
	uint32_t grow_start_ns;
	uint32_t shrink; /* window /= shrink after a halt longer than the max; 0 = reset */
};

struct pmd_counters {
	uint64_t busy_cycles; /* TSC cycles of loops that did work */
	uint64_t idle_cycles; /* TSC cycles of loops that did not (sleep excluded) */
	uint64_t sleep_ns;    /* time blocked (halt) or sleeping (poll back-off) */
	uint64_t packets;     /* frames received + scsi requests started/completed */
	uint64_t loops;
	uint64_t sleeps;      /* back-off sleeps (poll mode) */
	uint64_t halts;       /* times the thread blocked in epoll */
	uint64_t wakeups;     /* halts that ended because of an event */
	uint64_t poll_hits;   /* work arrived within the poll window */
	uint64_t poll_misses; /* the window ran out: the thread halted */
	uint64_t halt_races;  /* work found by the re-check after arming */
};

struct pmd {
	uint16_t idx;
	int cpu;
	int numa;
	struct pmd_gov gov; /* read by the thread, written by the control thread */
	uint32_t window_ns; /* current adaptive poll window (thread only) */
	uint8_t sleeping;   /* blocked in epoll now (for show and wake-ups) */
	pthread_t thread;
	bool running;
	volatile bool stop;
	int wake_fd; /* eventfd: the control thread wants the thread to look */
	int ep_fd;
	uint64_t ep_generation; /* snapshot generation the epoll set was built for */
	int halt_timeout_ms;    /* 1 when a queue of the plan cannot wake us */
	uint16_t n_watch;
	int watch_fd[1100]; /* kick fds in the epoll set */
	struct rte_mempool *mp;
	struct fwd_ctx *fwd;
	struct vscsi_pmd *scsi;  /* io_uring and used-ring batch of scsi queues */
	struct pmd_counters ctr; /* written by the thread only */
};

/*
 * The poll window after a halt of @halt_ns (poll time included) with window
 * @window_ns, KVM style: grow (x grow, from grow_start) when the halt was
 * shorter than halt_poll_ns, shrink (/ shrink, or to 0) when longer; never
 * above halt_poll_ns.
 */
uint32_t pmd_gov_next_window(const struct pmd_gov *g, uint32_t window_ns, uint64_t halt_ns);

struct pmd *pmd_create(uint16_t idx, int cpu, const struct pmd_gov *gov, char *err, size_t errlen);
int pmd_start(struct pmd *p, char *err, size_t errlen);
/* Change the governor settings of a running thread (it applies them at once). */
void pmd_set_gov(struct pmd *p, const struct pmd_gov *gov);
/* Make a halted thread look at the current snapshot (after dp_publish). */
void pmd_kick(struct pmd *p);
/* Stop and join the thread, then free it. */
void pmd_destroy(struct pmd *p);

#endif
