/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MAC learning table of one bridge, shared by every PMD thread without locks.
 *
 * PMDs learn and look up concurrently; the control thread ages and flushes.
 * Each entry is a (key, value) pair of 64-bit words. A slot changes owner by
 * a compare-and-swap of its key to a BUSY marker, then the value, then the
 * final key (release); readers check the key again after reading the value,
 * so a reader never pairs a key with another key's port. Updating the port
 * of an existing key is a single 64-bit store.
 */
#ifndef VHOSTD_MAC_TABLE_H
#define VHOSTD_MAC_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#define MAC_TABLE_WAYS 8 /* entries per bucket: two cache lines */
#define MAC_PORT_NONE 0xffff

struct mac_entry {
	uint64_t key; /* 0: empty; see mac_table.c for the encoding */
	uint64_t val; /* seen (s) << 32 | static << 16 | port index */
};

struct mac_table {
	uint32_t n_buckets; /* power of two */
	uint32_t aging_s;
	uint64_t learn_failed; /* bucket full: the source keeps being flooded */
	struct mac_entry *entries;
};

/* Seconds since start, advanced by the control thread; read by PMDs. */
extern volatile uint32_t mac_clock_s;

int mac_table_init(struct mac_table *t, uint32_t n_entries, uint32_t aging_s);
void mac_table_fini(struct mac_table *t);

/* Hot path. @mac is 6 bytes; @vlan is 0..4095 (0: untagged). */
void mac_table_learn(struct mac_table *t, const uint8_t *mac, uint16_t vlan, uint16_t port);
/* Returns the port index or MAC_PORT_NONE. */
uint16_t mac_table_lookup(const struct mac_table *t, const uint8_t *mac, uint16_t vlan);

/* Control thread. */
int mac_table_add_static(struct mac_table *t, const uint8_t *mac, uint16_t vlan, uint16_t port);
/* Remove entries of @port (MAC_PORT_NONE: every dynamic entry); returns the count. */
unsigned int mac_table_flush(struct mac_table *t, uint16_t port, bool include_static);
/* Drop expired dynamic entries; returns how many. */
unsigned int mac_table_age(struct mac_table *t);

struct mac_table_row {
	uint8_t mac[6];
	uint16_t vlan;
	uint16_t port;
	bool is_static;
	uint32_t age_s;
};
/* Calls @fn for every live entry; returns the number visited. */
unsigned int mac_table_walk(const struct mac_table *t,
	void (*fn)(const struct mac_table_row *row, void *arg), void *arg);

#endif
