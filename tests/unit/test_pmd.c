/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the PMD governor's pure parts (dataplane/pmd.c):
 * pmd_gov_next_window(), the KVM-style adaptation of the halt-poll window,
 * and pmd_mode_from_name(). No thread is started and no EAL is needed.
 *
 * pmd_gov_next_window(g, window, halt_ns): halt_ns is the time from the
 * start of the poll window to the wake-up. A halt no longer than
 * halt_poll_ns (the max) means a longer window would have caught the work
 * without halting: grow (0 -> grow_start, then x grow; grow <= 1 doubles).
 * A longer halt means polling would not have helped: shrink (/ shrink, or
 * to 0 when shrink <= 1). Never above the max; max 0 never polls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pmd.h"

static struct pmd_gov
gov(uint32_t max, uint32_t grow, uint32_t grow_start, uint32_t shrink)
{
	return (struct pmd_gov){.mode = PMD_MODE_HALT_POLL,
		.halt_poll_ns = max,
		.grow = grow,
		.grow_start_ns = grow_start,
		.shrink = shrink};
}

/* The defaults of pmd.h (KVM's): max 500 us, x2 from 10 us, reset on a long halt. */
static struct pmd_gov
gov_default(void)
{
	return gov(PMD_HALT_POLL_NS_DEFAULT, PMD_GROW_DEFAULT, PMD_GROW_START_NS_DEFAULT,
		PMD_SHRINK_DEFAULT);
}

static void
test_grow_from_zero_to_grow_start(void **state)
{
	struct pmd_gov g = gov_default();

	(void)state;
	/* a short halt after no polling at all: start polling at grow_start */
	assert_int_equal(pmd_gov_next_window(&g, 0, 1000), PMD_GROW_START_NS_DEFAULT);
	assert_int_equal(pmd_gov_next_window(&g, 0, 0), PMD_GROW_START_NS_DEFAULT);
	g.grow_start_ns = 50000;
	assert_int_equal(pmd_gov_next_window(&g, 0, 1000), 50000);
}

static void
test_grow_doubles(void **state)
{
	struct pmd_gov g = gov_default();
	uint32_t w = 0;
	/* 0 -> 10 us -> 20 -> 40 -> 80 -> 160 -> 320 -> 500 (cap) -> 500 */
	static const uint32_t want[] = {10000, 20000, 40000, 80000, 160000, 320000, 500000,
		500000};

	(void)state;
	for (unsigned int i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		w = pmd_gov_next_window(&g, w, 100000);
		assert_int_equal(w, want[i]);
	}
}

static void
test_grow_factor(void **state)
{
	struct pmd_gov g = gov(1000000, 4, 10000, 0);

	(void)state;
	assert_int_equal(pmd_gov_next_window(&g, 10000, 5000), 40000);
	assert_int_equal(pmd_gov_next_window(&g, 40000, 5000), 160000);
	/* grow 0 and 1 would never grow: they double */
	g.grow = 1;
	assert_int_equal(pmd_gov_next_window(&g, 10000, 5000), 20000);
	g.grow = 0;
	assert_int_equal(pmd_gov_next_window(&g, 10000, 5000), 20000);
}

static void
test_cap_at_max(void **state)
{
	struct pmd_gov g = gov_default();

	(void)state;
	assert_int_equal(pmd_gov_next_window(&g, 300000, 1000), 500000);
	assert_int_equal(pmd_gov_next_window(&g, 499999, 1000), 500000);
	/* at the max a short halt keeps it there */
	assert_int_equal(pmd_gov_next_window(&g, 500000, 1000), 500000);
	/* a grow_start above the max is capped too */
	g.grow_start_ns = 2000000;
	assert_int_equal(pmd_gov_next_window(&g, 0, 1000), 500000);
	/* the max lowered live below the current window: cut to the new max */
	g = gov_default();
	g.halt_poll_ns = 100000;
	assert_int_equal(pmd_gov_next_window(&g, 400000, 1000), 100000);
	/* no overflow of a large window times a large factor */
	g = gov(PMD_HALT_POLL_NS_MAX, 1000, 10000, 0);
	assert_int_equal(pmd_gov_next_window(&g, 50000000, 1000), PMD_HALT_POLL_NS_MAX);
}

static void
test_shrink_zero_resets(void **state)
{
	struct pmd_gov g = gov_default();

	(void)state;
	/* a halt longer than the max: polling would not have caught it */
	assert_int_equal(pmd_gov_next_window(&g, 500000, 100000000), 0);
	assert_int_equal(pmd_gov_next_window(&g, 20000, 600000), 0);
	assert_int_equal(pmd_gov_next_window(&g, 0, 600000), 0);
	/* shrink 1 cannot divide: it resets as well */
	g.shrink = 1;
	assert_int_equal(pmd_gov_next_window(&g, 500000, 600000), 0);
}

static void
test_shrink_divides(void **state)
{
	struct pmd_gov g = gov(PMD_HALT_POLL_NS_DEFAULT, 2, 10000, 2);

	(void)state;
	assert_int_equal(pmd_gov_next_window(&g, 500000, 1000000), 250000);
	assert_int_equal(pmd_gov_next_window(&g, 250000, 1000000), 125000);
	assert_int_equal(pmd_gov_next_window(&g, 1, 1000000), 0);
	assert_int_equal(pmd_gov_next_window(&g, 0, 1000000), 0);
	/* shrink then grow back */
	assert_int_equal(pmd_gov_next_window(&g, 125000, 1000), 250000);
}

static void
test_halt_exactly_at_max(void **state)
{
	struct pmd_gov g = gov_default();

	(void)state;
	/* halt == max counts as short (the window would have caught it) */
	assert_int_equal(pmd_gov_next_window(&g, 0, 500000), 10000);
	assert_int_equal(pmd_gov_next_window(&g, 160000, 500000), 320000);
	assert_int_equal(pmd_gov_next_window(&g, 500000, 500000), 500000);
	/* one ns more is long */
	assert_int_equal(pmd_gov_next_window(&g, 160000, 500001), 0);
	assert_int_equal(pmd_gov_next_window(&g, 500000, 500001), 0);
}

static void
test_max_zero_never_polls(void **state)
{
	struct pmd_gov g = gov(0, 2, 10000, 0);

	(void)state;
	assert_int_equal(pmd_gov_next_window(&g, 0, 0), 0);
	assert_int_equal(pmd_gov_next_window(&g, 0, 1), 0);
	assert_int_equal(pmd_gov_next_window(&g, 0, 1000000000), 0);
	/* a window left from a larger max is dropped */
	assert_int_equal(pmd_gov_next_window(&g, 500000, 0), 0);
	assert_int_equal(pmd_gov_next_window(&g, 500000, 1000), 0);
	g.shrink = 2;
	assert_int_equal(pmd_gov_next_window(&g, 500000, 1000), 0);
}

static void
test_halt_ns_beyond_32_bits(void **state)
{
	struct pmd_gov g = gov_default();

	(void)state;
	/* a halt of minutes (> 2^32 ns) is long, not truncated into a short one */
	assert_int_equal(pmd_gov_next_window(&g, 320000, (1ull << 32) + 1000), 0);
}

static void
test_mode_from_name(void **state)
{
	(void)state;
	assert_int_equal(pmd_mode_from_name("poll"), PMD_MODE_POLL);
	assert_int_equal(pmd_mode_from_name("halt-poll"), PMD_MODE_HALT_POLL);
	assert_int_equal(pmd_mode_from_name("interrupt"), PMD_MODE_INTERRUPT);
	for (int i = 0; i < PMD_MODE_MAX; i++)
		assert_int_equal(pmd_mode_from_name(pmd_mode_names[i]), i);
	assert_int_equal(pmd_mode_from_name(""), -1);
	assert_int_equal(pmd_mode_from_name("Poll"), -1);
	assert_int_equal(pmd_mode_from_name("halt_poll"), -1);
	assert_int_equal(pmd_mode_from_name("halt-poll "), -1);
	assert_int_equal(pmd_mode_from_name("halt"), -1);
	assert_int_equal(pmd_mode_from_name("interrupts"), -1);
	assert_int_equal(pmd_mode_from_name("busy"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow_from_zero_to_grow_start),
		cmocka_unit_test(test_grow_doubles),
		cmocka_unit_test(test_grow_factor),
		cmocka_unit_test(test_cap_at_max),
		cmocka_unit_test(test_shrink_zero_resets),
		cmocka_unit_test(test_shrink_divides),
		cmocka_unit_test(test_halt_exactly_at_max),
		cmocka_unit_test(test_max_zero_never_polls),
		cmocka_unit_test(test_halt_ns_beyond_32_bits),
		cmocka_unit_test(test_mode_from_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
