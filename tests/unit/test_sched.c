/* SPDX-License-Identifier: BSD-3-Clause */
/* The rx queue scheduler (dataplane/queue_sched.c) as a pure function. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "queue_sched.h"

static struct sched_queue
queue(uint64_t load, int numa, int pin, uint16_t cur)
{
	return (struct sched_queue){.load = load, .numa = numa, .pin_cpu = pin, .cur = cur};
}

static struct sched_pmd
pmd(int cpu, int numa)
{
	return (struct sched_pmd){.cpu = cpu, .numa = numa};
}

/* Four queues of unequal load over two PMDs: the sums end up close. */
static void
test_cycles_balances_loads(void **state)
{
	struct sched_queue q[4] = {queue(90, -1, -1, 0), queue(10, -1, -1, 0), queue(60, -1, -1, 0),
		queue(40, -1, -1, 0)};
	struct sched_pmd p[2] = {pmd(0, 0), pmd(1, 0)};

	(void)state;
	assert_int_equal(sched_assign(q, 4, p, 2, true), 0);
	/* 90 -> A, 60 -> B, 40 -> B (60 < 90), 10 -> A (90 < 100). */
	assert_int_equal(q[0].out, q[1].out);
	assert_int_equal(q[2].out, q[3].out);
	assert_int_not_equal(q[0].out, q[2].out);
	assert_int_equal(p[0].load + p[1].load, 200);
	assert_int_equal(p[0].n_queues, 2);
	assert_true(sched_variance(q, 4, 2, 1000, true) < sched_variance(q, 4, 2, 1000, false));
}

/* No history: queues spread by count, and stay where they are on ties. */
static void
test_no_load_spreads_and_sticks(void **state)
{
	struct sched_queue q[4] = {
		queue(0, -1, -1, 1), queue(0, -1, -1, 0), queue(0, -1, -1, 1), queue(0, -1, -1, 0)};
	struct sched_pmd p[2] = {pmd(0, 0), pmd(1, 0)};

	(void)state;
	sched_assign(q, 4, p, 2, true);
	assert_int_equal(p[0].n_queues, 2);
	assert_int_equal(p[1].n_queues, 2);
	for (int i = 0; i < 4; i++)
		assert_int_equal(q[i].out, q[i].cur);
}

static void
test_numa_preferred_then_fallback(void **state)
{
	struct sched_queue q[3] = {
		queue(50, 1, -1, SCHED_NONE), queue(50, 1, -1, SCHED_NONE), queue(5, 2, -1, 0)};
	struct sched_pmd p[3] = {pmd(0, 0), pmd(8, 1), pmd(9, 1)};

	(void)state;
	sched_assign(q, 3, p, 3, true);
	assert_int_equal(p[q[0].out].numa, 1);
	assert_int_equal(p[q[1].out].numa, 1);
	assert_int_not_equal(q[0].out, q[1].out);
	assert_false(q[0].numa_fallback);
	/* Node 2 has no PMD: any node, flagged. */
	assert_true(q[2].numa_fallback);
	assert_int_not_equal(q[2].out, SCHED_NONE);
}

static void
test_pins_and_isolation(void **state)
{
	struct sched_queue q[4] = {
		queue(1, -1, 1, 0), queue(80, -1, -1, 1), queue(70, -1, -1, 1), queue(3, -1, 7, 0)};
	struct sched_pmd p[2] = {pmd(0, 0), pmd(1, 0)};

	(void)state;
	/* Queue 3 is pinned to CPU 7: no PMD there, not polled. */
	assert_int_equal(sched_assign(q, 4, p, 2, true), 1);
	assert_int_equal(q[3].out, SCHED_NONE);
	assert_int_equal(q[0].out, 1);
	assert_true(p[1].isolated);
	/* Isolated: the heavy queues share PMD 0 although PMD 1 is idle. */
	assert_int_equal(q[1].out, 0);
	assert_int_equal(q[2].out, 0);
	/* Without isolation the pinned PMD takes a heavy queue too. */
	sched_assign(q, 4, p, 2, false);
	assert_int_equal(q[0].out, 1);
	assert_int_not_equal(q[1].out, q[2].out);
}

static void
test_off_pmds_are_never_chosen(void **state)
{
	struct sched_queue q[2] = {queue(5, -1, -1, 1), queue(5, -1, 1, 1)};
	struct sched_pmd p[2] = {pmd(0, 0), pmd(1, 0)};
	bool fb;

	(void)state;
	p[1].off = true;
	sched_assign(q, 2, p, 2, true);
	assert_int_equal(q[0].out, 0);
	assert_int_equal(q[1].out, SCHED_NONE);
	assert_int_equal(sched_pick(p, 2, -1, -1, 1, &fb), 0);
}

static void
test_improvement_threshold(void **state)
{
	(void)state;
	assert_true(sched_improves(100, 50, 25));
	assert_true(sched_improves(100, 75, 25));
	assert_false(sched_improves(100, 80, 25));
	assert_false(sched_improves(0, 0, 25));
	assert_false(sched_improves(10, 20, 0));
}

static void
test_affinity_parse(void **state)
{
	int pins[16];
	char err[160], text[64];

	(void)state;
	assert_int_equal(sched_parse_affinity("0:3, 1:7", pins, 16, err, sizeof(err)), 0);
	assert_int_equal(pins[0], 3);
	assert_int_equal(pins[1], 7);
	assert_int_equal(pins[2], -1);
	sched_format_affinity(pins, 16, text, sizeof(text));
	assert_string_equal(text, "0:3,1:7");
	assert_int_equal(sched_parse_affinity("", pins, 16, err, sizeof(err)), 0);
	assert_int_equal(pins[0], -1);
	assert_int_equal(sched_parse_affinity("0:3,0:4", pins, 16, err, sizeof(err)), -EINVAL);
	assert_int_equal(sched_parse_affinity("16:1", pins, 16, err, sizeof(err)), -EINVAL);
	assert_int_equal(sched_parse_affinity("0-3", pins, 16, err, sizeof(err)), -EINVAL);
	assert_int_equal(sched_parse_affinity("a:1", pins, 16, err, sizeof(err)), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cycles_balances_loads),
		cmocka_unit_test(test_no_load_spreads_and_sticks),
		cmocka_unit_test(test_numa_preferred_then_fallback),
		cmocka_unit_test(test_pins_and_isolation),
		cmocka_unit_test(test_off_pmds_are_never_chosen),
		cmocka_unit_test(test_improvement_threshold),
		cmocka_unit_test(test_affinity_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
