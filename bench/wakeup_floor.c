/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wakeup-floor: the platform's own wake-up latency, the floor under any
 * design that sleeps when idle (halt-poll, interrupt, OVS pmd-maxsleep).
 *
 * A waiter thread on CPU W blocks in epoll_wait() on an eventfd; the main
 * thread on CPU S writes the eventfd every GAP ms (the CPU of the waiter is
 * then idle, as a halted PMD's is) and the waiter takes a CLOCK_MONOTONIC
 * timestamp as soon as epoll_wait() returns. Prints p50/p90/p99/max of
 * write -> return. No DPDK, no vhost: only the kernel (and, in a VM, the
 * hypervisor waking a halted vCPU).
 *
 *   wakeup-floor [--count N] [--gap-ms G] [--waiter-cpu W] [--sender-cpu S]
 *   defaults:     500         100          1              0
 *
 * Build: cc -O2 -pthread -o wakeup-floor bench/wakeup_floor.c (or ninja:
 * bench/wakeup-floor).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int efd, epfd;
static volatile uint64_t t_woke; /* written by the waiter, read by the sender */
static volatile int stop;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
		fprintf(stderr, "cannot pin to CPU %d\n", cpu);
		exit(2);
	}
}

static void *
waiter(void *arg)
{
	struct epoll_event ev;
	uint64_t v;

	pin(*(int *)arg);
	while (!stop) {
		int rc = epoll_wait(epfd, &ev, 1, 1000);
		uint64_t t = now_ns();

		if (rc <= 0)
			continue;
		if (read(efd, &v, sizeof(v)) != sizeof(v))
			continue;
		__atomic_store_n(&t_woke, t, __ATOMIC_RELEASE);
	}
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const uint64_t *s, int n, double p)
{
	int i = (int)(p / 100.0 * (n - 1) + 0.5);

	return (double)s[i] / 1000.0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
		{"gap-ms", required_argument, NULL, 'g'}, {"waiter-cpu", required_argument, NULL, 'w'},
		{"sender-cpu", required_argument, NULL, 's'}, {NULL, 0, NULL, 0}};
	int count = 500, wcpu = 1, scpu = 0, ch, got = 0;
	double gap_ms = 100;
	struct epoll_event ev = {.events = EPOLLIN};
	uint64_t *lat, one = 1;
	pthread_t th;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': count = atoi(optarg); break;
		case 'g': gap_ms = atof(optarg); break;
		case 'w': wcpu = atoi(optarg); break;
		case 's': scpu = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: wakeup-floor [--count N] [--gap-ms G] "
					"[--waiter-cpu W] [--sender-cpu S]\n");
			return 2;
		}
	}
	if (count < 1)
		count = 1;
	lat = calloc((size_t)count, sizeof(*lat));
	efd = eventfd(0, EFD_NONBLOCK);
	epfd = epoll_create1(0);
	ev.data.fd = efd;
	if (lat == NULL || efd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev) < 0) {
		perror("setup");
		return 2;
	}
	pin(scpu);
	pthread_create(&th, NULL, waiter, &wcpu);
	for (int i = -10; i < count; i++) { /* 10 warm-up rounds */
		struct timespec gap = {(time_t)(gap_ms / 1000),
			(long)((gap_ms - (double)(time_t)(gap_ms / 1000) * 1000) * 1e6)};
		uint64_t t0, deadline;

		nanosleep(&gap, NULL);
		__atomic_store_n(&t_woke, 0, __ATOMIC_RELEASE);
		t0 = now_ns();
		if (write(efd, &one, sizeof(one)) != sizeof(one)) {
			perror("write");
			return 2;
		}
		deadline = t0 + 1000000000ull;
		while (__atomic_load_n(&t_woke, __ATOMIC_ACQUIRE) == 0 && now_ns() < deadline)
			sched_yield();
		if (i >= 0 && t_woke != 0)
			lat[got++] = t_woke - t0;
	}
	stop = 1;
	write(efd, &one, sizeof(one));
	pthread_join(th, NULL);
	if (got == 0) {
		fprintf(stderr, "no wake-up measured\n");
		return 1;
	}
	qsort(lat, (size_t)got, sizeof(*lat), cmp_u64);
	printf("wakeup-floor: waiter CPU %d, sender CPU %d, gap %.1f ms, %d/%d wake-ups: "
	       "min %.1f p50 %.1f p90 %.1f p99 %.1f max %.1f us\n",
		wcpu, scpu, gap_ms, got, count, (double)lat[0] / 1000.0, pct(lat, got, 50),
		pct(lat, got, 90), pct(lat, got, 99), (double)lat[got - 1] / 1000.0);
	free(lat);
	return 0;
}
