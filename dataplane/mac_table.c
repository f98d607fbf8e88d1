/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mac_table.h"

/*
 * Key: MAC in bits 63..16, VLAN in bits 15..4, bit 0 set for a valid key.
 * BUSY (bit 1 only) marks a slot being rewritten.
 */
#define KEY_VALID 0x1ull
#define KEY_BUSY 0x2ull
#define VAL_STATIC (1ull << 16)

volatile uint32_t mac_clock_s;

static inline uint64_t
make_key(const uint8_t *mac, uint16_t vlan)
{
	uint32_t hi;
	uint16_t lo;
	uint64_t m;

	/*
	 * Two loads and byte swaps: a loop over the six bytes was a chain of
	 * six dependent shifts on every lookup of a frame that changes
	 * destination (bench/RESULTS.md, bridge with N flows).
	 */
	memcpy(&hi, mac, sizeof(hi));
	memcpy(&lo, mac + sizeof(hi), sizeof(lo));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	hi = __builtin_bswap32(hi);
	lo = __builtin_bswap16(lo);
#endif
	m = (uint64_t)hi << 16 | lo;
	return (m << 16) | ((uint64_t)(vlan & 0xfff) << 4) | KEY_VALID;
}

static inline uint64_t
make_val(uint16_t port, bool is_static, uint32_t now)
{
	return ((uint64_t)now << 32) | (is_static ? VAL_STATIC : 0) | port;
}

static inline struct mac_entry *
bucket_of(const struct mac_table *t, uint64_t key)
{
	/* Fibonacci hashing: MACs of one vendor differ in the low bytes. */
	uint64_t h = (key * 0x9e3779b97f4a7c15ull) >> 32;

	return &t->entries[(h & (t->n_buckets - 1)) * MAC_TABLE_WAYS];
}

static inline bool
val_expired(uint64_t val, uint32_t now, uint32_t aging_s)
{
	if (val & VAL_STATIC)
		return false;
	return (uint32_t)(now - (uint32_t)(val >> 32)) > aging_s;
}

int
mac_table_init(struct mac_table *t, uint32_t n_entries, uint32_t aging_s)
{
	uint32_t n = MAC_TABLE_WAYS;

	if (n_entries < MAC_TABLE_WAYS || n_entries > (1u << 24))
		return -EINVAL;
	while (n < n_entries)
		n <<= 1;
	memset(t, 0, sizeof(*t));
	t->entries = aligned_alloc(64, n * sizeof(struct mac_entry));
	if (t->entries == NULL)
		return -ENOMEM;
	memset(t->entries, 0, n * sizeof(struct mac_entry));
	t->n_buckets = n / MAC_TABLE_WAYS;
	t->aging_s = aging_s;
	return 0;
}

void
mac_table_fini(struct mac_table *t)
{
	free(t->entries);
	t->entries = NULL;
}

/* Claim @e (currently holding @old) for @key; false if someone raced us. */
static bool
claim_slot(struct mac_entry *e, uint64_t old, uint64_t key, uint64_t val)
{
	if (!__atomic_compare_exchange_n(
		    &e->key, &old, KEY_BUSY, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return false;
	/* BUSY must be visible before the new value (free on x86). */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&e->val, val, __ATOMIC_RELAXED);
	__atomic_store_n(&e->key, key, __ATOMIC_RELEASE);
	return true;
}

/*
 * Rewrite the value of @e, which held @key, through BUSY like a new owner:
 * a plain store could land after the slot was aged, flushed or reclaimed
 * for another key and give that key our port. A learner losing a race
 * gives up (the next frame learns again); a static entry waits for a
 * concurrent refresh of the same key to finish.
 */
static void
update_slot(struct mac_entry *e, uint64_t key, uint64_t val, bool is_static)
{
	uint64_t old = key, v;

	while (!__atomic_compare_exchange_n(
		&e->key, &old, KEY_BUSY, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
		if (!is_static || old != KEY_BUSY)
			return;
		old = key;
	}
	__atomic_thread_fence(__ATOMIC_RELEASE);
	/* A static entry is only replaced by another static one. */
	v = __atomic_load_n(&e->val, __ATOMIC_RELAXED);
	if (!(v & VAL_STATIC) || is_static)
		__atomic_store_n(&e->val, val, __ATOMIC_RELAXED);
	__atomic_store_n(&e->key, key, __ATOMIC_RELEASE);
}

/*
 * Two PMDs learning the same new station at once may each claim a slot.
 * The entry in the lowest slot wins (lookups scan from slot 0); the other
 * one is released by whichever thread claimed it.
 */
static void
drop_duplicate(struct mac_entry *b, int mine, uint64_t key)
{
	for (int i = 0; i < mine; i++) {
		if (__atomic_load_n(&b[i].key, __ATOMIC_ACQUIRE) == key) {
			uint64_t k = key;

			__atomic_compare_exchange_n(
				&b[mine].key, &k, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
			return;
		}
	}
}

static void
insert(struct mac_table *t, uint64_t key, uint64_t val, bool is_static)
{
	struct mac_entry *b = bucket_of(t, key);
	uint32_t now = mac_clock_s;

	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < MAC_TABLE_WAYS; i++) {
			uint64_t k = __atomic_load_n(&b[i].key, __ATOMIC_ACQUIRE);
			uint64_t v;

			if (k == key) {
				v = __atomic_load_n(&b[i].val, __ATOMIC_RELAXED);
				/* A static entry is only replaced by another static one. */
				if ((v & VAL_STATIC) && !is_static)
					return;
				if (v != val)
					update_slot(&b[i], key, val, is_static);
				return;
			}
			if (pass == 0)
				continue;
			if (k == 0 || (k != KEY_BUSY && val_expired(__atomic_load_n(&b[i].val,
									    __ATOMIC_RELAXED),
								now, t->aging_s))) {
				if (claim_slot(&b[i], k, key, val)) {
					drop_duplicate(b, i, key);
					return;
				}
			}
		}
	}
	__atomic_fetch_add(&t->learn_failed, 1, __ATOMIC_RELAXED);
}

void
mac_table_learn(struct mac_table *t, const uint8_t *mac, uint16_t vlan, uint16_t port)
{
	uint64_t key = make_key(mac, vlan);
	uint64_t val = make_val(port, false, mac_clock_s);
	struct mac_entry *b = bucket_of(t, key);

	/* Fast path: the station is known on this port and was seen this second. */
	for (int i = 0; i < MAC_TABLE_WAYS; i++) {
		if (__atomic_load_n(&b[i].key, __ATOMIC_ACQUIRE) == key) {
			uint64_t v = __atomic_load_n(&b[i].val, __ATOMIC_RELAXED);

			if (v == val || (v & VAL_STATIC))
				return;
			break;
		}
	}
	insert(t, key, val, false);
}

uint16_t
mac_table_lookup(const struct mac_table *t, const uint8_t *mac, uint16_t vlan)
{
	uint64_t key = make_key(mac, vlan);
	struct mac_entry *b = bucket_of(t, key);

	for (int i = 0; i < MAC_TABLE_WAYS; i++) {
		uint64_t v;

		if (__atomic_load_n(&b[i].key, __ATOMIC_ACQUIRE) != key)
			continue;
		v = __atomic_load_n(&b[i].val, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&b[i].key, __ATOMIC_RELAXED) != key)
			return MAC_PORT_NONE;
		if (val_expired(v, mac_clock_s, t->aging_s))
			return MAC_PORT_NONE;
		return (uint16_t)(v & 0xffff);
	}
	return MAC_PORT_NONE;
}

int
mac_table_add_static(struct mac_table *t, const uint8_t *mac, uint16_t vlan, uint16_t port)
{
	uint64_t key = make_key(mac, vlan);

	insert(t, key, make_val(port, true, mac_clock_s), true);
	return mac_table_lookup(t, mac, vlan) == port ? 0 : -ENOSPC;
}

static unsigned int
remove_if(struct mac_table *t, bool (*pred)(uint64_t val, void *arg), void *arg)
{
	unsigned int n = 0;

	for (uint32_t i = 0; i < t->n_buckets * MAC_TABLE_WAYS; i++) {
		struct mac_entry *e = &t->entries[i];
		uint64_t k = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);

		if (k == 0 || k == KEY_BUSY)
			continue;
		if (!pred(__atomic_load_n(&e->val, __ATOMIC_RELAXED), arg))
			continue;
		if (__atomic_compare_exchange_n(
			    &e->key, &k, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			n++;
	}
	return n;
}

struct flush_arg {
	uint16_t port;
	bool include_static;
};

static bool
flush_pred(uint64_t val, void *arg)
{
	const struct flush_arg *a = arg;

	if ((val & VAL_STATIC) && !a->include_static)
		return false;
	return a->port == MAC_PORT_NONE || (uint16_t)(val & 0xffff) == a->port;
}

unsigned int
mac_table_flush(struct mac_table *t, uint16_t port, bool include_static)
{
	struct flush_arg a = {port, include_static};

	return remove_if(t, flush_pred, &a);
}

static bool
aged_pred(uint64_t val, void *arg)
{
	const struct mac_table *t = arg;

	return val_expired(val, mac_clock_s, t->aging_s);
}

unsigned int
mac_table_age(struct mac_table *t)
{
	return remove_if(t, aged_pred, t);
}

unsigned int
mac_table_walk(const struct mac_table *t, void (*fn)(const struct mac_table_row *row, void *arg),
	void *arg)
{
	unsigned int n = 0;

	for (uint32_t i = 0; i < t->n_buckets * MAC_TABLE_WAYS; i++) {
		const struct mac_entry *e = &t->entries[i];
		uint64_t k = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);
		uint64_t v = __atomic_load_n(&e->val, __ATOMIC_RELAXED);
		struct mac_table_row row;

		/* Like a lookup: the value must still belong to the key. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(k & KEY_VALID) || __atomic_load_n(&e->key, __ATOMIC_RELAXED) != k ||
			val_expired(v, mac_clock_s, t->aging_s))
			continue;
		for (int b = 0; b < 6; b++)
			row.mac[b] = (uint8_t)(k >> (56 - 8 * b));
		row.vlan = (k >> 4) & 0xfff;
		row.port = v & 0xffff;
		row.is_static = (v & VAL_STATIC) != 0;
		row.age_s = row.is_static ? 0 : mac_clock_s - (uint32_t)(v >> 32);
		fn(&row, arg);
		n++;
	}
	return n;
}
