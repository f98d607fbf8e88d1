/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of dataplane/mac_table.c: learning, VLANs, aging, static
 * entries, flushes, full buckets, walking, and lock-free concurrent use.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mac_table.h"

#define NONE MAC_PORT_NONE

static void
mac_of(uint32_t n, uint8_t mac[6])
{
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = (uint8_t)(n >> 24);
	mac[3] = (uint8_t)(n >> 16);
	mac[4] = (uint8_t)(n >> 8);
	mac[5] = (uint8_t)n;
}

static int
setup(void **state)
{
	struct mac_table *t = calloc(1, sizeof(*t));

	if (t == NULL || mac_table_init(t, 1024, 300) != 0)
		return -1;
	mac_clock_s = 1000;
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct mac_table *t = *state;

	mac_table_fini(t);
	free(t);
	return 0;
}

static void
test_init_sizes(void **state)
{
	struct mac_table t;

	(void)state;
	assert_int_equal(mac_table_init(&t, 0, 300), -EINVAL);
	assert_int_equal(mac_table_init(&t, MAC_TABLE_WAYS - 1, 300), -EINVAL);
	assert_int_equal(mac_table_init(&t, (1u << 24) + 1, 300), -EINVAL);
	assert_int_equal(mac_table_init(&t, MAC_TABLE_WAYS, 300), 0);
	assert_int_equal(t.n_buckets, 1);
	mac_table_fini(&t);
	/* Rounded up to a power of two. */
	assert_int_equal(mac_table_init(&t, 1000, 7), 0);
	assert_int_equal(t.n_buckets, 1024 / MAC_TABLE_WAYS);
	assert_int_equal(t.aging_s, 7);
	assert_int_equal(t.learn_failed, 0);
	mac_table_fini(&t);
	assert_null(t.entries);
}

static void
test_learn_lookup(void **state)
{
	struct mac_table *t = *state;
	uint8_t a[6], b[6];

	mac_of(1, a);
	mac_of(2, b);
	assert_int_equal(mac_table_lookup(t, a, 0), NONE);
	mac_table_learn(t, a, 0, 3);
	mac_table_learn(t, b, 0, 7);
	assert_int_equal(mac_table_lookup(t, a, 0), 3);
	assert_int_equal(mac_table_lookup(t, b, 0), 7);
	/* Learning again is idempotent. */
	mac_table_learn(t, a, 0, 3);
	assert_int_equal(mac_table_lookup(t, a, 0), 3);
	/* Port 0 is a port like any other. */
	mac_of(3, b);
	mac_table_learn(t, b, 0, 0);
	assert_int_equal(mac_table_lookup(t, b, 0), 0);
	assert_int_equal(t->learn_failed, 0);
}

static void
test_vlan_separation(void **state)
{
	struct mac_table *t = *state;
	uint8_t a[6];

	mac_of(42, a);
	mac_table_learn(t, a, 10, 1);
	mac_table_learn(t, a, 20, 2);
	assert_int_equal(mac_table_lookup(t, a, 10), 1);
	assert_int_equal(mac_table_lookup(t, a, 20), 2);
	assert_int_equal(mac_table_lookup(t, a, 0), NONE);
	assert_int_equal(mac_table_lookup(t, a, 30), NONE);
	mac_table_learn(t, a, 4095, 5);
	assert_int_equal(mac_table_lookup(t, a, 4095), 5);
	assert_int_equal(mac_table_lookup(t, a, 10), 1);
	/* Moving the station in VLAN 10 leaves VLAN 20 alone. */
	mac_table_learn(t, a, 10, 3);
	assert_int_equal(mac_table_lookup(t, a, 10), 3);
	assert_int_equal(mac_table_lookup(t, a, 20), 2);
}

static void
test_station_move(void **state)
{
	struct mac_table *t = *state;
	uint8_t a[6];

	mac_of(7, a);
	mac_table_learn(t, a, 0, 1);
	assert_int_equal(mac_table_lookup(t, a, 0), 1);
	/* Same second, other port: the move is seen at once. */
	mac_table_learn(t, a, 0, 2);
	assert_int_equal(mac_table_lookup(t, a, 0), 2);
	mac_clock_s += 5;
	mac_table_learn(t, a, 0, 1);
	assert_int_equal(mac_table_lookup(t, a, 0), 1);
	/* A move must not create a second entry. */
	{
		unsigned int n = 0;

		for (uint32_t i = 0; i < t->n_buckets * MAC_TABLE_WAYS; i++)
			if (t->entries[i].key != 0)
				n++;
		assert_int_equal(n, 1);
	}
}

static void
test_aging(void **state)
{
	struct mac_table *t = *state;
	uint8_t a[6], b[6];

	t->aging_s = 10;
	mac_of(1, a);
	mac_of(2, b);
	mac_table_learn(t, a, 0, 1);
	mac_clock_s += 5;
	mac_table_learn(t, b, 0, 2);
	/* Exactly aging_s seconds old: still valid. */
	mac_clock_s += 5;
	assert_int_equal(mac_table_lookup(t, a, 0), 1);
	assert_int_equal(mac_table_age(t), 0);
	mac_clock_s += 1;
	/* a is 11 s old: expired for lookups even before the ager runs. */
	assert_int_equal(mac_table_lookup(t, a, 0), NONE);
	assert_int_equal(mac_table_lookup(t, b, 0), 2);
	assert_int_equal(mac_table_age(t), 1);
	assert_int_equal(mac_table_lookup(t, a, 0), NONE);
	assert_int_equal(mac_table_lookup(t, b, 0), 2);

	/* Traffic refreshes an entry. */
	mac_clock_s += 4;
	mac_table_learn(t, b, 0, 2);
	mac_clock_s += 10;
	assert_int_equal(mac_table_lookup(t, b, 0), 2);
	mac_clock_s += 1;
	assert_int_equal(mac_table_lookup(t, b, 0), NONE);
	assert_int_equal(mac_table_age(t), 1);
	assert_int_equal(mac_table_age(t), 0);

	/* An expired entry is re-learnt in place. */
	mac_table_learn(t, a, 0, 3);
	assert_int_equal(mac_table_lookup(t, a, 0), 3);
}

/* The clock wraps around 2^32 without expiring fresh entries. */
static void
test_aging_clock_wrap(void **state)
{
	struct mac_table *t = *state;
	uint8_t a[6];

	t->aging_s = 10;
	mac_clock_s = UINT32_MAX - 2;
	mac_of(9, a);
	mac_table_learn(t, a, 0, 4);
	mac_clock_s += 8; /* wraps to 5 */
	assert_int_equal(mac_table_lookup(t, a, 0), 4);
	assert_int_equal(mac_table_age(t), 0);
	mac_clock_s += 3;
	assert_int_equal(mac_table_lookup(t, a, 0), NONE);
	assert_int_equal(mac_table_age(t), 1);
}

static void
test_static_entries(void **state)
{
	struct mac_table *t = *state;
	uint8_t s[6], d[6];

	t->aging_s = 10;
	mac_of(100, s);
	mac_of(101, d);
	assert_int_equal(mac_table_add_static(t, s, 0, 4), 0);
	mac_table_learn(t, d, 0, 4);
	assert_int_equal(mac_table_lookup(t, s, 0), 4);

	/* Traffic from elsewhere does not move a static entry. */
	mac_table_learn(t, s, 0, 9);
	assert_int_equal(mac_table_lookup(t, s, 0), 4);
	mac_clock_s += 3;
	mac_table_learn(t, s, 0, 9);
	assert_int_equal(mac_table_lookup(t, s, 0), 4);

	/* Aging spares static entries. */
	mac_clock_s += 1000;
	assert_int_equal(mac_table_age(t), 1);
	assert_int_equal(mac_table_lookup(t, s, 0), 4);
	assert_int_equal(mac_table_lookup(t, d, 0), NONE);

	/* A dynamic entry can be made static; another static add moves it. */
	mac_table_learn(t, d, 0, 5);
	assert_int_equal(mac_table_add_static(t, d, 0, 6), 0);
	assert_int_equal(mac_table_lookup(t, d, 0), 6);
	assert_int_equal(mac_table_add_static(t, s, 0, 7), 0);
	assert_int_equal(mac_table_lookup(t, s, 0), 7);

	/* Flushes without include_static keep them, by port or for all ports. */
	assert_int_equal(mac_table_flush(t, 7, false), 0);
	assert_int_equal(mac_table_flush(t, MAC_PORT_NONE, false), 0);
	assert_int_equal(mac_table_lookup(t, s, 0), 7);
	assert_int_equal(mac_table_flush(t, 7, true), 1);
	assert_int_equal(mac_table_lookup(t, s, 0), NONE);
	assert_int_equal(mac_table_lookup(t, d, 0), 6);
	assert_int_equal(mac_table_flush(t, MAC_PORT_NONE, true), 1);
	assert_int_equal(mac_table_lookup(t, d, 0), NONE);
}

static void
test_flush_by_port(void **state)
{
	struct mac_table *t = *state;
	uint8_t m[6];

	for (uint32_t i = 0; i < 30; i++) {
		mac_of(i, m);
		mac_table_learn(t, m, (uint16_t)(i % 3), (uint16_t)(i % 3));
	}
	assert_int_equal(t->learn_failed, 0);
	assert_int_equal(mac_table_flush(t, 1, false), 10);
	assert_int_equal(mac_table_flush(t, 1, false), 0);
	for (uint32_t i = 0; i < 30; i++) {
		mac_of(i, m);
		assert_int_equal(
			mac_table_lookup(t, m, (uint16_t)(i % 3)), i % 3 == 1 ? NONE : i % 3);
	}
	assert_int_equal(mac_table_flush(t, 5, false), 0);
	assert_int_equal(mac_table_flush(t, MAC_PORT_NONE, false), 20);
	for (uint32_t i = 0; i < 30; i++) {
		mac_of(i, m);
		assert_int_equal(mac_table_lookup(t, m, (uint16_t)(i % 3)), NONE);
	}
}

static void
test_bucket_full(void **state)
{
	struct mac_table t;
	uint8_t m[6];

	(void)state;
	/* One bucket: the 9th station cannot be learnt. */
	assert_int_equal(mac_table_init(&t, MAC_TABLE_WAYS, 10), 0);
	for (uint32_t i = 0; i < MAC_TABLE_WAYS; i++) {
		mac_of(i, m);
		mac_table_learn(&t, m, 0, (uint16_t)i);
	}
	assert_int_equal(t.learn_failed, 0);
	for (uint32_t i = MAC_TABLE_WAYS; i < MAC_TABLE_WAYS + 5; i++) {
		mac_of(i, m);
		mac_table_learn(&t, m, 0, 1);
		assert_int_equal(mac_table_lookup(&t, m, 0), NONE);
	}
	assert_int_equal(t.learn_failed, 5);
	/* Known stations are still refreshed and moved. */
	mac_of(0, m);
	mac_table_learn(&t, m, 0, 3);
	assert_int_equal(mac_table_lookup(&t, m, 0), 3);
	assert_int_equal(t.learn_failed, 5);
	/* A static entry does not fit either. */
	mac_of(100, m);
	assert_int_equal(mac_table_add_static(&t, m, 0, 1), -ENOSPC);
	assert_int_equal(t.learn_failed, 6);

	/* Once entries expire, newcomers take their slots (no ager run). */
	mac_clock_s += 11;
	mac_of(200, m);
	mac_table_learn(&t, m, 0, 2);
	assert_int_equal(mac_table_lookup(&t, m, 0), 2);
	assert_int_equal(mac_table_add_static(&t, m, 5, 3), 0);
	assert_int_equal(t.learn_failed, 6);
	mac_table_fini(&t);
}

struct walk_seen {
	unsigned int n;
	struct mac_table_row rows[16];
};

static void
walk_cb(const struct mac_table_row *row, void *arg)
{
	struct walk_seen *w = arg;

	if (w->n < 16)
		w->rows[w->n] = *row;
	w->n++;
}

static const struct mac_table_row *
find_row(const struct walk_seen *w, const uint8_t *mac, uint16_t vlan)
{
	for (unsigned int i = 0; i < w->n && i < 16; i++)
		if (memcmp(w->rows[i].mac, mac, 6) == 0 && w->rows[i].vlan == vlan)
			return &w->rows[i];
	return NULL;
}

static void
test_walk(void **state)
{
	struct mac_table *t = *state;
	const uint8_t a[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
	const uint8_t b[6] = {0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54};
	const uint8_t c[6] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
	const struct mac_table_row *r;
	struct walk_seen w = {0};

	t->aging_s = 100;
	assert_int_equal(mac_table_walk(t, walk_cb, &w), 0);
	mac_table_learn(t, a, 0, 1);
	mac_table_learn(t, a, 4094, 2);
	mac_clock_s += 7;
	mac_table_learn(t, b, 33, 3);
	assert_int_equal(mac_table_add_static(t, c, 1, 4), 0);
	assert_int_equal(mac_table_walk(t, walk_cb, &w), 4);
	assert_int_equal(w.n, 4);

	r = find_row(&w, a, 0);
	assert_non_null(r);
	assert_int_equal(r->port, 1);
	assert_false(r->is_static);
	assert_int_equal(r->age_s, 7);
	r = find_row(&w, a, 4094);
	assert_non_null(r);
	assert_int_equal(r->port, 2);
	r = find_row(&w, b, 33);
	assert_non_null(r);
	assert_int_equal(r->port, 3);
	assert_int_equal(r->age_s, 0);
	r = find_row(&w, c, 1);
	assert_non_null(r);
	assert_int_equal(r->port, 4);
	assert_true(r->is_static);
	assert_int_equal(r->age_s, 0);

	/* Expired entries are not shown, even before the ager removes them. */
	mac_clock_s += 95;
	memset(&w, 0, sizeof(w));
	assert_int_equal(mac_table_walk(t, walk_cb, &w), 2);
	assert_non_null(find_row(&w, b, 33));
	assert_non_null(find_row(&w, c, 1));
}

/* ---- concurrency ---------------------------------------------------------- */

#define N_LEARNERS 2
#define N_MACS 100000

struct stress {
	struct mac_table t;
	uint8_t (*macs)[6]; /* [N_LEARNERS * N_MACS]; owner = index / N_MACS */
	volatile bool stop;
	uint64_t lookups;
	uint64_t hits;
	uint64_t torn;
	uint16_t bad_port;
	uint32_t bad_idx;
	pthread_barrier_t start;
};

static inline uint16_t
owner_port(uint32_t idx)
{
	return (uint16_t)(10 + idx / N_MACS);
}

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct learner_arg {
	struct stress *s;
	int id;
};

static void *
learner(void *p)
{
	struct learner_arg *a = p;
	struct stress *s = a->s;
	uint32_t base = (uint32_t)a->id * N_MACS;
	uint64_t rnd = 0x9e3779b97f4a7c15ull * (uint64_t)(a->id + 1);

	pthread_barrier_wait(&s->start);
	/* Every MAC of this learner once, then random ones again (refreshes). */
	for (int round = 0; round < 4; round++)
		for (uint32_t i = 0; i < N_MACS; i++) {
			uint32_t idx =
				base + (round == 0 ? i : (uint32_t)(xorshift(&rnd) % N_MACS));

			mac_table_learn(&s->t, s->macs[idx], 0, owner_port(idx));
		}
	return NULL;
}

static void *
reader(void *p)
{
	struct stress *s = p;
	uint64_t rnd = 12345;

	pthread_barrier_wait(&s->start);
	while (!s->stop) {
		uint32_t idx = (uint32_t)(xorshift(&rnd) % (N_LEARNERS * N_MACS));
		uint16_t port = mac_table_lookup(&s->t, s->macs[idx], 0);

		s->lookups++;
		if (port == NONE)
			continue;
		s->hits++;
		if (port != owner_port(idx)) {
			s->torn++;
			s->bad_port = port;
			s->bad_idx = idx;
		}
	}
	return NULL;
}

/* The control thread: advances the clock and ages, reclaiming slots. */
static void *
ager(void *p)
{
	struct stress *s = p;

	pthread_barrier_wait(&s->start);
	while (!s->stop) {
		for (int i = 0; i < 2000 && !s->stop; i++)
			__asm__ volatile("pause" ::: "memory");
		__atomic_fetch_add(&mac_clock_s, 1, __ATOMIC_RELAXED);
		mac_table_age(&s->t);
	}
	return NULL;
}

struct check_arg {
	struct stress *s;
	unsigned int bad;
	unsigned int rows;
};

static void
check_row(const struct mac_table_row *row, void *arg)
{
	struct check_arg *c = arg;
	uint32_t n = (uint32_t)row->mac[2] << 24 | (uint32_t)row->mac[3] << 16 |
		     (uint32_t)row->mac[4] << 8 | row->mac[5];

	c->rows++;
	if (row->vlan != 0 || row->mac[0] != 0x52 || n >= N_LEARNERS * N_MACS ||
		row->port != owner_port(n))
		c->bad++;
}

static void
run_stress(uint32_t table_size, uint32_t aging_s, bool with_ager)
{
	pthread_t lt[N_LEARNERS], rt, at;
	struct learner_arg la[N_LEARNERS];
	struct stress *s = calloc(1, sizeof(*s));
	struct check_arg chk = {0};
	uint64_t rnd = 0xdeadbeef;

	assert_non_null(s);
	s->macs = calloc(N_LEARNERS * N_MACS, 6);
	assert_non_null(s->macs);
	/* Random MACs; the index is encoded in bytes 2-5 for the final check. */
	for (uint32_t i = 0; i < N_LEARNERS * N_MACS; i++) {
		uint64_t r = xorshift(&rnd);

		mac_of(i, s->macs[i]);
		s->macs[i][1] = (uint8_t)(r & 0xfe); /* random but keeps byte 0 unicast */
	}
	assert_int_equal(mac_table_init(&s->t, table_size, aging_s), 0);
	mac_clock_s = 1;
	assert_int_equal(pthread_barrier_init(&s->start, NULL, N_LEARNERS + 1 + with_ager), 0);
	for (int i = 0; i < N_LEARNERS; i++) {
		la[i].s = s;
		la[i].id = i;
		assert_int_equal(pthread_create(&lt[i], NULL, learner, &la[i]), 0);
	}
	assert_int_equal(pthread_create(&rt, NULL, reader, s), 0);
	if (with_ager)
		assert_int_equal(pthread_create(&at, NULL, ager, s), 0);
	for (int i = 0; i < N_LEARNERS; i++)
		pthread_join(lt[i], NULL);
	s->stop = true;
	pthread_join(rt, NULL);
	if (with_ager)
		pthread_join(at, NULL);

	print_message("table %u aging %u%s: %lu lookups, %lu hits, %lu torn, %lu learn failures\n",
		table_size, aging_s, with_ager ? " +ager" : "", (unsigned long)s->lookups,
		(unsigned long)s->hits, (unsigned long)s->torn, (unsigned long)s->t.learn_failed);
	if (s->torn)
		print_error("MAC #%u (owner port %u) looked up as port %u\n", s->bad_idx,
			owner_port(s->bad_idx), s->bad_port);
	assert_int_equal(s->torn, 0);

	/* No entry left behind may pair a MAC with another learner's port. */
	s->t.aging_s = UINT32_MAX;
	chk.s = s;
	mac_table_walk(&s->t, check_row, &chk);
	if (chk.bad)
		print_error("%u of %u entries have the wrong port\n", chk.bad, chk.rows);
	assert_int_equal(chk.bad, 0);
	if (!with_ager)
		assert_true(chk.rows > 0);

	pthread_barrier_destroy(&s->start);
	mac_table_fini(&s->t);
	free(s->macs);
	free(s);
}

/* Plenty of room: no slot changes owner, learners race on refreshes only. */
static void
test_concurrent_learners(void **state)
{
	(void)state;
	run_stress(1u << 18, 300, false);
}

/* A small table whose entries expire constantly: slots change owner all the time. */
static void
test_concurrent_learners_reclaim(void **state)
{
	(void)state;
	run_stress(4096, 0, true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_sizes),
		cmocka_unit_test_setup_teardown(test_learn_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlan_separation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_station_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aging_clock_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_static_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_by_port, setup, teardown),
		cmocka_unit_test(test_bucket_full),
		cmocka_unit_test_setup_teardown(test_walk, setup, teardown),
		cmocka_unit_test(test_concurrent_learners),
		cmocka_unit_test(test_concurrent_learners_reclaim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
