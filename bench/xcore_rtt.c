/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostd-xcore-rtt: how long one cache line takes to go from CPU A to CPU B
 * and back, right now.
 *
 * Every vhost-user request or frame moves lines between the driver's core
 * and the backend's: the driver writes descriptors, headers and the avail
 * index, the backend writes the used ring and the responses. On this
 * project's 2-vCPU test VM that transfer time is not a constant: the host
 * places the two vCPUs near each other or not, and the round trip moves
 * between ~100 and ~500 ns within seconds (bench/RESULTS.md). A benchmark
 * round then moves by 2x for the same binary. run-all.sh prints this probe
 * next to each round, so that a reader can tell the host's phase from a
 * change in vhostd.
 *
 * Two threads pinned to A and B bounce a counter in one line for --ms
 * milliseconds in slices of 1000 round trips; prints the median slice's
 * ns per round trip (and with --verbose every 50 ms slice's mean).
 *
 *   vhostd-xcore-rtt [--cpus A,B] [--ms N] [--verbose]
 *   defaults:          0,1          300
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRIPS_PER_SLICE 1000
#define MAX_SLICES 100000

/* The bounced line: odd values are A's turn to be answered, even ones B's. */
static struct {
	volatile uint64_t v;
	char pad[56];
} line __attribute__((aligned(64)));

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

static void *
responder(void *arg)
{
	uint64_t v;

	(void)arg;
	for (;;) {
		while (((v = line.v) & 1) == 0)
			;
		if (v == UINT64_MAX)
			return NULL;
		line.v = v + 1;
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"cpus", required_argument, NULL, 'c'},
		{"ms", required_argument, NULL, 'm'}, {"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int cpu_a = 0, cpu_b = 1, ms = 300, verbose = 0, c;
	uint64_t *slice, end, t0, v = 0, last_print;
	size_t n = 0;
	pthread_attr_t attr;
	cpu_set_t set;
	pthread_t t;

	while ((c = getopt_long(argc, argv, "c:m:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (sscanf(optarg, "%d,%d", &cpu_a, &cpu_b) != 2 || cpu_a < 0 ||
				cpu_b < 0 || cpu_a == cpu_b) {
				fprintf(stderr, "--cpus: two different CPUs, e.g. 0,1\n");
				return 2;
			}
			break;
		case 'm':
			ms = atoi(optarg);
			if (ms < 10 || ms > 600000) {
				fprintf(stderr, "--ms: 10..600000\n");
				return 2;
			}
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [--cpus A,B] [--ms N] [--verbose]\n", argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	slice = calloc(MAX_SLICES, sizeof(*slice));
	if (slice == NULL || pin(cpu_a) != 0) {
		fprintf(stderr, "cannot pin to CPU %d (or no memory)\n", cpu_a);
		return 1;
	}
	/* Pinned before it starts: a thread that cannot run on B never runs. */
	CPU_ZERO(&set);
	CPU_SET(cpu_b, &set);
	if (pthread_attr_init(&attr) != 0 ||
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set) != 0 ||
		pthread_create(&t, &attr, responder, NULL) != 0) {
		fprintf(stderr, "cannot start the responder thread on CPU %d\n", cpu_b);
		return 1;
	}
	end = now_ns() + (uint64_t)ms * 1000000ull;
	last_print = now_ns();
	while ((t0 = now_ns()) < end && n < MAX_SLICES) {
		for (int i = 0; i < TRIPS_PER_SLICE; i++) {
			line.v = v + 1; /* odd: B's turn */
			while (line.v != v + 2)
				;
			v += 2;
		}
		slice[n++] = now_ns() - t0;
		if (verbose && t0 - last_print >= 50000000ull) {
			printf("%.0f\n", (double)slice[n - 1] / TRIPS_PER_SLICE);
			last_print = t0;
		}
	}
	line.v = UINT64_MAX;
	pthread_join(t, NULL);
	qsort(slice, n, sizeof(*slice), cmp_u64);
	printf("%.0f\n", (double)slice[n / 2] / TRIPS_PER_SLICE);
	free(slice);
	return 0;
}
