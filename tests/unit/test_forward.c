/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of dataplane/forward.c without any vhost peer: a hand-built
 * snapshot of PORT_SINK (and reflector) ports, crafted frames pushed with
 * fwd_process() + fwd_flush(), results read from the port counters and,
 * for frame contents, from fwd_tx_hook.
 *
 * Needs a DPDK EAL without hugepages (--no-huge); when rte_eal_init() fails
 * (no permission, no memory...) the whole test is skipped (exit code 77).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "datapath.h"
#include "forward.h"
#include "mac_table.h"

#define N_MBUFS 4095
#define MAX_FRAME 1514
#define N_PORTS 8
#define PMD 0

static struct rte_mempool *mp;

/* The fixture: a snapshot with up to N_PORTS ports and one bridge. */
struct fx {
	struct dp_snapshot *snap;
	struct fwd_ctx *ctx;
	struct port *ports[N_PORTS];
	struct bridge br;
	struct mac_table macs;
	uint64_t trunks[N_PORTS][64];
};

/* Frames seen by fwd_tx_hook. */
#define CAP_MAX 64
struct captured {
	uint16_t port;
	uint32_t len;
	uint16_t l2_len;
	uint64_t ol_flags;
	uint8_t data[2048];
};
static struct captured cap[CAP_MAX];
static unsigned int n_cap;

static void
capture_hook(uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	for (uint16_t i = 0; i < n && n_cap < CAP_MAX; i++) {
		struct captured *c = &cap[n_cap++];
		struct rte_mbuf *m = pkts[i];

		c->port = port;
		c->len = m->pkt_len;
		c->l2_len = m->l2_len;
		c->ol_flags = m->ol_flags;
		const void *d;

		assert_true(m->pkt_len <= sizeof(c->data));
		d = rte_pktmbuf_read(m, 0, m->pkt_len, c->data);
		assert_non_null(d);
		if (d != c->data)
			memcpy(c->data, d, m->pkt_len);
	}
}

/* ---- fixture ------------------------------------------------------------------ */

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->snap = calloc(1, sizeof(*f->snap));
	f->ctx = calloc(1, sizeof(*f->ctx));
	if (f->snap == NULL || f->ctx == NULL)
		return -1;
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		f->snap->ports[i].bridge = DP_NONE;
		f->snap->ports[i].peer = DP_NONE;
		f->snap->ports[i].vid = -1;
	}
	if (mac_table_init(&f->macs, 1024, 300) != 0)
		return -1;
	f->br.macs = &f->macs;
	f->br.idx = 0;
	snprintf(f->br.conf.name, sizeof(f->br.conf.name), "br0");
	f->snap->bridges[0].br = &f->br;
	f->snap->n_pmd = 1;
	f->ctx->pmd_idx = PMD;
	f->ctx->snap = f->snap;
	f->ctx->mp = mp;
	mac_clock_s = 100;
	n_cap = 0;
	fwd_tx_hook = capture_hook;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	fwd_tx_hook = NULL;
	for (int i = 0; i < N_PORTS; i++) {
		if (f->ports[i] == NULL)
			continue;
		free(f->ports[i]->stats);
		free(f->ports[i]);
	}
	mac_table_fini(&f->macs);
	free(f->ctx);
	free(f->snap);
	free(f);
	/* Every mbuf is back: nothing leaked, nothing freed twice. */
	assert_int_equal(rte_mempool_avail_count(mp), N_MBUFS);
	return 0;
}

/* Add sink port @idx; on the bridge when @on_bridge. */
static struct dp_port_view *
add_port(struct fx *f, uint16_t idx, bool on_bridge)
{
	struct dp_port_view *v = &f->snap->ports[idx];
	struct port *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->stats = aligned_alloc(RTE_CACHE_LINE_SIZE, sizeof(*p->stats));
	assert_non_null(p->stats);
	memset(p->stats, 0, sizeof(*p->stats));
	p->idx = idx;
	p->vid = -1;
	snprintf(p->conf.name, sizeof(p->conf.name), "p%u", idx);
	p->conf.type = PORT_SINK;
	p->conf.admin_up = true;
	f->ports[idx] = p;
	v->port = p;
	v->vid = -1;
	v->type = PORT_SINK;
	v->up = 1;
	v->vlan_mode = VLAN_MODE_TRUNK_ALL;
	v->max_frame = MAX_FRAME;
	v->peer = DP_NONE;
	v->bridge = DP_NONE;
	if (on_bridge) {
		struct dp_bridge_view *bv = &f->snap->bridges[0];

		v->bridge = 0;
		bv->ports[bv->n_ports++] = idx;
	}
	return v;
}

static void
set_access(struct fx *f, uint16_t idx, uint16_t tag)
{
	f->snap->ports[idx].vlan_mode = VLAN_MODE_ACCESS;
	f->snap->ports[idx].tag = tag;
}

static void
set_trunk(struct fx *f, uint16_t idx, const uint16_t *vlans, int n)
{
	memset(f->trunks[idx], 0, sizeof(f->trunks[idx]));
	for (int i = 0; i < n; i++)
		f->trunks[idx][vlans[i] >> 6] |= 1ULL << (vlans[i] & 63);
	f->snap->ports[idx].vlan_mode = VLAN_MODE_TRUNK;
	f->snap->ports[idx].trunks = f->trunks[idx];
}

static uint64_t
tx_pkts(struct fx *f, uint16_t idx)
{
	return f->ports[idx]->stats->tx[PMD][0].packets;
}

static uint64_t
tx_bytes(struct fx *f, uint16_t idx)
{
	return f->ports[idx]->stats->tx[PMD][0].bytes;
}

static uint64_t
rx_drops(struct fx *f, uint16_t idx, enum dp_drop why)
{
	return f->ports[idx]->stats->rx[0].drops[why];
}

static uint64_t
tx_drops(struct fx *f, uint16_t idx, enum dp_drop why)
{
	return f->ports[idx]->stats->tx[PMD][0].drops[why];
}

static uint64_t
all_rx_drops(struct fx *f, uint16_t idx)
{
	uint64_t n = 0;

	for (int d = 0; d < DROP_MAX; d++)
		n += rx_drops(f, idx, d);
	return n;
}

/* ---- frames ------------------------------------------------------------------ */

static const uint8_t MAC_A[6] = {0x02, 0, 0, 0, 0, 0x0a};
static const uint8_t MAC_B[6] = {0x02, 0, 0, 0, 0, 0x0b};
static const uint8_t MAC_C[6] = {0x02, 0, 0, 0, 0, 0x0c};
static const uint8_t MAC_X[6] = {0x02, 0, 0, 0, 0, 0x99};
static const uint8_t MAC_UNKNOWN[6] = {0x02, 0, 0, 0, 0x77, 0x77};
static const uint8_t MAC_BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t MAC_MCAST[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};

#define UNTAGGED -1

/* A frame of @len bytes in total; @vlan >= 0 adds an 802.1Q tag. */
static struct rte_mbuf *
frame(const uint8_t *dst, const uint8_t *src, int vlan, uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
	uint16_t off = 12;
	uint8_t *p;

	assert_non_null(m);
	p = (uint8_t *)rte_pktmbuf_append(m, len);
	assert_non_null(p);
	memset(p, 0, len);
	if (len >= 6)
		memcpy(p, dst, 6);
	if (len >= 12)
		memcpy(p + 6, src, 6);
	if (vlan >= 0 && len >= 16) {
		p[12] = 0x81;
		p[13] = 0x00;
		p[14] = (uint8_t)(vlan >> 8);
		p[15] = (uint8_t)vlan;
		off = 16;
	}
	if (len >= off + 2) {
		p[off] = 0x08;
		p[off + 1] = 0x00;
	}
	for (uint16_t i = off + 2; i < len; i++)
		p[i] = (uint8_t)(i * 7);
	return m;
}

static void
send1(struct fx *f, uint16_t in, struct rte_mbuf *m)
{
	fwd_process(f->ctx, in, 0, &m, 1);
	fwd_flush(f->ctx);
}

static void
send_n(struct fx *f, uint16_t in, struct rte_mbuf **pkts, uint16_t n)
{
	fwd_process(f->ctx, in, 0, pkts, n);
	fwd_flush(f->ctx);
}

/* Exactly the ports of @expect (-1 terminated) got one more frame than in @before. */
static void
expect_delivered(struct fx *f, const uint64_t *before, const int *expect)
{
	for (int i = 0; i < N_PORTS; i++) {
		bool want = false;

		if (f->ports[i] == NULL)
			continue;
		for (int j = 0; expect[j] >= 0; j++)
			if (expect[j] == i)
				want = true;
		if (tx_pkts(f, i) != before[i] + want)
			fail_msg("port %d: tx %lu, expected %lu", i, (unsigned long)tx_pkts(f, i),
				(unsigned long)(before[i] + want));
	}
}

static void
snap_tx(struct fx *f, uint64_t *before)
{
	for (int i = 0; i < N_PORTS; i++)
		before[i] = f->ports[i] != NULL ? tx_pkts(f, i) : 0;
}

#define DELIVERED(f, before, ...) expect_delivered(f, before, (const int[]){__VA_ARGS__, -1})
#define NOWHERE(f, before) expect_delivered(f, before, (const int[]){-1})

/* ---- bridge ------------------------------------------------------------------ */

static void
four_ports(struct fx *f)
{
	for (uint16_t i = 0; i < 4; i++)
		add_port(f, i, true);
}

static void
test_unknown_unicast_floods(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	snap_tx(f, before);
	send1(f, 0, frame(MAC_UNKNOWN, MAC_A, UNTAGGED, 60));
	DELIVERED(f, before, 1, 2, 3);
	assert_int_equal(tx_bytes(f, 1), 60);
	assert_int_equal(all_rx_drops(f, 0), 0);
	/* The source was learnt on the ingress port. */
	assert_int_equal(mac_table_lookup(&f->macs, MAC_A, 0), 0);
	/* Every copy carries the frame unchanged. */
	assert_int_equal(n_cap, 3);
	for (unsigned int i = 0; i < n_cap; i++) {
		assert_int_equal(cap[i].len, 60);
		assert_memory_equal(cap[i].data, MAC_UNKNOWN, 6);
		assert_memory_equal(cap[i].data + 6, MAC_A, 6);
	}
}

static void
test_learning(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	/* B (port 1) talks first: flooded, and X is learnt on port 1. */
	snap_tx(f, before);
	send1(f, 1, frame(MAC_UNKNOWN, MAC_X, UNTAGGED, 64));
	DELIVERED(f, before, 0, 2, 3);
	snap_tx(f, before);
	send1(f, 0, frame(MAC_X, MAC_A, UNTAGGED, 64));
	DELIVERED(f, before, 1);
	/* The answer to A goes to A only. */
	snap_tx(f, before);
	send1(f, 1, frame(MAC_A, MAC_X, UNTAGGED, 64));
	DELIVERED(f, before, 0);

	/* X moves to port 3: the next frame to X follows it. */
	send1(f, 3, frame(MAC_BCAST, MAC_X, UNTAGGED, 64));
	snap_tx(f, before);
	send1(f, 0, frame(MAC_X, MAC_A, UNTAGGED, 64));
	DELIVERED(f, before, 3);

	/* Once X ages out, frames to it are flooded again. */
	mac_clock_s += 301;
	snap_tx(f, before);
	send1(f, 0, frame(MAC_X, MAC_A, UNTAGGED, 64));
	DELIVERED(f, before, 1, 2, 3);
}

static void
test_broadcast_multicast_flood(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	/* Learn every station first: group addresses are flooded regardless. */
	for (uint16_t i = 0; i < 4; i++)
		send1(f, i,
			frame(MAC_UNKNOWN, (const uint8_t[]){2, 0, 0, 0, 1, (uint8_t)i}, UNTAGGED,
				60));
	snap_tx(f, before);
	send1(f, 2, frame(MAC_BCAST, MAC_C, UNTAGGED, 60));
	DELIVERED(f, before, 0, 1, 3);
	snap_tx(f, before);
	send1(f, 3, frame(MAC_MCAST, MAC_C, UNTAGGED, 100));
	DELIVERED(f, before, 0, 1, 2);
	/* A multicast source is never learnt. */
	send1(f, 3, frame(MAC_BCAST, MAC_MCAST, UNTAGGED, 60));
	assert_int_equal(mac_table_lookup(&f->macs, MAC_MCAST, 0), MAC_PORT_NONE);
}

/* Down ports get nothing flooded. */
static void
test_flood_skips_down_ports(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	f->snap->ports[2].up = 0;
	snap_tx(f, before);
	send1(f, 0, frame(MAC_BCAST, MAC_A, UNTAGGED, 60));
	DELIVERED(f, before, 1, 3);
}

/* A frame to a station known on a down port is not delivered there. */
static void
test_unicast_to_down_port(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	send1(f, 1, frame(MAC_BCAST, MAC_B, UNTAGGED, 60));
	f->snap->ports[1].up = 0;
	snap_tx(f, before);
	send1(f, 0, frame(MAC_B, MAC_A, UNTAGGED, 60));
	NOWHERE(f, before);
	assert_int_equal(tx_drops(f, 1, DROP_DOWN), 1);
}

static void
test_access_vlan_isolation(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	set_access(f, 0, 10);
	set_access(f, 1, 10);
	set_access(f, 2, 20);
	set_access(f, 3, 20);
	snap_tx(f, before);
	send1(f, 0, frame(MAC_BCAST, MAC_A, UNTAGGED, 60));
	DELIVERED(f, before, 1);
	snap_tx(f, before);
	send1(f, 2, frame(MAC_UNKNOWN, MAC_C, UNTAGGED, 60));
	DELIVERED(f, before, 3);
	/* Learnt per VLAN: C is known in VLAN 20 only. */
	assert_int_equal(mac_table_lookup(&f->macs, MAC_C, 20), 2);
	assert_int_equal(mac_table_lookup(&f->macs, MAC_C, 10), MAC_PORT_NONE);
	/* A frame to C from VLAN 10 floods VLAN 10 only. */
	snap_tx(f, before);
	send1(f, 0, frame(MAC_C, MAC_A, UNTAGGED, 60));
	DELIVERED(f, before, 1);
	/* Access egress frames are untagged. */
	for (unsigned int i = 0; i < n_cap; i++) {
		assert_int_equal(cap[i].data[12], 0x08);
		assert_int_equal(cap[i].len, 60);
	}
	/* Alone in its VLAN: no destination. */
	set_access(f, 1, 30);
	snap_tx(f, before);
	send1(f, 0, frame(MAC_BCAST, MAC_A, UNTAGGED, 60));
	NOWHERE(f, before);
	assert_int_equal(rx_drops(f, 0, DROP_NO_DEST), 1);
}

static void
test_tagged_on_access_dropped(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	set_access(f, 0, 10);
	set_access(f, 1, 10);
	snap_tx(f, before);
	send1(f, 0, frame(MAC_BCAST, MAC_A, 10, 64));
	send1(f, 0, frame(MAC_BCAST, MAC_A, 0, 64)); /* priority tag */
	NOWHERE(f, before);
	assert_int_equal(rx_drops(f, 0, DROP_VLAN), 2);
	/* Nothing learnt from a dropped frame. */
	assert_int_equal(mac_table_lookup(&f->macs, MAC_A, 10), MAC_PORT_NONE);
}

/* Access port 0 (tag 10), access port 1 (tag 10), trunk port 2 {10}, access port 3 (tag 20). */
static void
trunk_setup(struct fx *f)
{
	four_ports(f);
	set_access(f, 0, 10);
	set_access(f, 1, 10);
	set_trunk(f, 2, (const uint16_t[]){10}, 1);
	set_access(f, 3, 20);
}

static const struct captured *
cap_of(uint16_t port)
{
	for (unsigned int i = 0; i < n_cap; i++)
		if (cap[i].port == port)
			return &cap[i];
	fail_msg("no frame captured on port %u", port);
	return NULL;
}

static void
test_trunk_tagging(void **state)
{
	struct fx *f = *state;
	struct rte_mbuf *m = frame(MAC_BCAST, MAC_A, UNTAGGED, 100);
	uint8_t orig[100];
	const struct captured *c;
	uint64_t before[N_PORTS];

	trunk_setup(f);
	memcpy(orig, rte_pktmbuf_mtod(m, void *), 100);
	snap_tx(f, before);
	send1(f, 0, m);
	DELIVERED(f, before, 1, 2);
	/* Port 1 (access): untagged, unchanged. */
	c = cap_of(1);
	assert_int_equal(c->len, 100);
	assert_memory_equal(c->data, orig, 100);
	/* Port 2 (trunk): the same frame with an 802.1Q tag for VLAN 10. */
	c = cap_of(2);
	assert_int_equal(c->len, 104);
	assert_memory_equal(c->data, orig, 12);
	assert_memory_equal(c->data + 12, ((const uint8_t[]){0x81, 0x00, 0x00, 0x0a}), 4);
	assert_memory_equal(c->data + 16, orig + 12, 100 - 12);

	/* Tagged 10 from the trunk: stripped towards the access ports. */
	n_cap = 0;
	m = frame(MAC_BCAST, MAC_X, 10, 104);
	memcpy(orig, rte_pktmbuf_mtod(m, void *), 12);
	memcpy(orig + 12, rte_pktmbuf_mtod_offset(m, uint8_t *, 16), 88);
	snap_tx(f, before);
	send1(f, 2, m);
	DELIVERED(f, before, 0, 1);
	for (unsigned int i = 0; i < n_cap; i++) {
		assert_int_equal(cap[i].len, 100);
		assert_memory_equal(cap[i].data, orig, 100);
	}
	assert_int_equal(mac_table_lookup(&f->macs, MAC_X, 10), 2);

	/* Unicast both ways now that A and X are known. */
	n_cap = 0;
	snap_tx(f, before);
	send1(f, 0, frame(MAC_X, MAC_A, UNTAGGED, 80));
	DELIVERED(f, before, 2);
	assert_int_equal(cap_of(2)->len, 84);
	assert_memory_equal(cap_of(2)->data + 12, ((const uint8_t[]){0x81, 0x00, 0x00, 0x0a}), 4);
	n_cap = 0;
	snap_tx(f, before);
	send1(f, 2, frame(MAC_A, MAC_X, 10, 84));
	DELIVERED(f, before, 0);
	assert_int_equal(cap_of(0)->len, 80);
	assert_int_equal(cap_of(0)->data[12], 0x08);
	assert_int_equal(cap_of(0)->data[13], 0x00);
}

static void
test_trunk_filtering(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	trunk_setup(f);
	/* VLAN 20 is not on the trunk: dropped at ingress... */
	snap_tx(f, before);
	send1(f, 2, frame(MAC_BCAST, MAC_X, 20, 64));
	NOWHERE(f, before);
	assert_int_equal(rx_drops(f, 2, DROP_VLAN), 1);
	/* ...and not flooded to it from an access port of VLAN 20. */
	snap_tx(f, before);
	send1(f, 3, frame(MAC_BCAST, MAC_C, UNTAGGED, 64));
	NOWHERE(f, before);
	assert_int_equal(rx_drops(f, 3, DROP_NO_DEST), 1);
	/* Untagged on the trunk is VLAN 0: no access port is in it. */
	snap_tx(f, before);
	send1(f, 2, frame(MAC_BCAST, MAC_X, UNTAGGED, 64));
	NOWHERE(f, before);
	assert_int_equal(rx_drops(f, 2, DROP_NO_DEST), 1);
}

/* A trunk port without trunk list carries every VLAN, tagged. */
static void
test_trunk_all(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	set_access(f, 0, 10);
	set_access(f, 1, 20);
	/* ports 2 and 3: VLAN_MODE_TRUNK_ALL */
	snap_tx(f, before);
	send1(f, 0, frame(MAC_BCAST, MAC_A, UNTAGGED, 64));
	DELIVERED(f, before, 2, 3);
	for (unsigned int i = 0; i < n_cap; i++) {
		assert_int_equal(cap[i].len, 68);
		assert_int_equal(cap[i].data[15], 10);
	}
	n_cap = 0;
	snap_tx(f, before);
	send1(f, 2, frame(MAC_BCAST, MAC_X, 20, 68));
	DELIVERED(f, before, 1, 3);
	assert_int_equal(cap_of(1)->len, 64);
	assert_int_equal(cap_of(3)->len, 68);
	assert_int_equal(cap_of(3)->data[15], 20);
}

/*
 * A frame with a partial L4 checksum keeps l2_len in step with the tag it
 * gains or loses, or the checksum would later be completed at the wrong place.
 */
static void
test_retag_keeps_l2_len(void **state)
{
	struct fx *f = *state;
	struct rte_mbuf *m;

	trunk_setup(f);
	send1(f, 2, frame(MAC_BCAST, MAC_X, 10, 64)); /* learn X on the trunk */
	send1(f, 0, frame(MAC_BCAST, MAC_A, UNTAGGED, 64));
	n_cap = 0;

	/* Unicast, access -> trunk: tag inserted. */
	m = frame(MAC_X, MAC_A, UNTAGGED, 80);
	m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4;
	m->l2_len = RTE_ETHER_HDR_LEN;
	m->l3_len = 20;
	send1(f, 0, m);
	assert_int_equal(cap_of(2)->len, 84);
	assert_int_equal(cap_of(2)->l2_len, RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN);

	/* Unicast, trunk -> access: tag stripped. */
	n_cap = 0;
	m = frame(MAC_A, MAC_X, 10, 84);
	m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IPV4;
	m->l2_len = RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN;
	m->l3_len = 20;
	send1(f, 2, m);
	assert_int_equal(cap_of(0)->len, 80);
	assert_int_equal(cap_of(0)->l2_len, RTE_ETHER_HDR_LEN);

	/* Flooded: both the shared original and the retagged copy. */
	n_cap = 0;
	m = frame(MAC_BCAST, MAC_A, UNTAGGED, 80);
	m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4;
	m->l2_len = RTE_ETHER_HDR_LEN;
	m->l3_len = 20;
	send1(f, 0, m);
	assert_int_equal(cap_of(1)->l2_len, RTE_ETHER_HDR_LEN);
	assert_int_equal(cap_of(2)->l2_len, RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN);

	/* Flooded with only a trunk to reach: the original itself is retagged. */
	set_access(f, 1, 99);
	n_cap = 0;
	m = frame(MAC_BCAST, MAC_A, UNTAGGED, 80);
	m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4;
	m->l2_len = RTE_ETHER_HDR_LEN;
	m->l3_len = 20;
	send1(f, 0, m);
	assert_int_equal(n_cap, 1);
	assert_int_equal(cap_of(2)->l2_len, RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN);
}

static void
test_mtu(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	snap_tx(f, before);
	send1(f, 0, frame(MAC_BCAST, MAC_A, UNTAGGED, MAX_FRAME));
	DELIVERED(f, before, 1, 2, 3);
	snap_tx(f, before);
	send1(f, 0, frame(MAC_BCAST, MAC_A, UNTAGGED, MAX_FRAME + 1));
	NOWHERE(f, before);
	assert_int_equal(rx_drops(f, 0, DROP_MTU), 1);
	/* The limit is the ingress port's. */
	f->snap->ports[1].max_frame = 2000;
	snap_tx(f, before);
	send1(f, 1, frame(MAC_BCAST, MAC_B, UNTAGGED, 1800));
	DELIVERED(f, before, 0, 2, 3);
	send1(f, 1, frame(MAC_BCAST, MAC_B, UNTAGGED, 2001));
	assert_int_equal(rx_drops(f, 1, DROP_MTU), 1);
}

static void
test_runt_filtered(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	snap_tx(f, before);
	send1(f, 0, frame(MAC_BCAST, MAC_A, UNTAGGED, 13));
	send1(f, 0, frame(MAC_BCAST, MAC_A, UNTAGGED, 0));
	/* Tagged, but too short to hold the tag. */
	send1(f, 0, frame(MAC_BCAST, MAC_A, 10, 16));
	NOWHERE(f, before);
	assert_int_equal(rx_drops(f, 0, DROP_FILTERED), 3);
	/* 14 bytes: a header without payload is forwarded. */
	send1(f, 0, frame(MAC_BCAST, MAC_A, UNTAGGED, 14));
	DELIVERED(f, before, 1, 2, 3);
}

static void
test_destination_is_ingress(void **state)
{
	struct fx *f = *state;
	uint64_t before[N_PORTS];

	four_ports(f);
	send1(f, 0, frame(MAC_BCAST, MAC_X, UNTAGGED, 60));
	snap_tx(f, before);
	send1(f, 0, frame(MAC_X, MAC_A, UNTAGGED, 60));
	NOWHERE(f, before);
	assert_int_equal(rx_drops(f, 0, DROP_FILTERED), 1);
}

/* A full burst with more than DP_BURST frames per destination. */
static void
test_big_bursts(void **state)
{
	struct fx *f = *state;
	struct rte_mbuf *pkts[DP_BURST];

	four_ports(f);
	send1(f, 1, frame(MAC_BCAST, MAC_B, UNTAGGED, 60));
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < DP_BURST; i++)
			pkts[i] = frame(i % 2 ? MAC_B : MAC_BCAST, MAC_A, UNTAGGED, 60);
		/* No flush between bursts: buffers fill up and spill. */
		fwd_process(f->ctx, 0, 0, pkts, DP_BURST);
	}
	fwd_flush(f->ctx);
	assert_int_equal(tx_pkts(f, 1), 3 * DP_BURST);
	assert_int_equal(tx_pkts(f, 2), 1 + 3 * DP_BURST / 2);
	assert_int_equal(tx_pkts(f, 3), 1 + 3 * DP_BURST / 2);
}

/* @m with byte 20 set to @seq, to check the order frames leave in. */
static struct rte_mbuf *
seq_frame(struct rte_mbuf *m, uint8_t seq)
{
	rte_pktmbuf_mtod(m, uint8_t *)[20] = seq;
	return m;
}

/*
 * Runs of frames with one header go out as one batch (bridge_process()'s
 * same-way run): every frame still gets the per-frame checks and the
 * order is kept, whether the run starts the burst, follows a flood into
 * the same buffer, or overflows it.
 */
static void
test_same_way_runs(void **state)
{
	struct fx *f = *state;
	struct rte_mbuf *pkts[DP_BURST];

	four_ports(f);
	send1(f, 1, frame(MAC_BCAST, MAC_B, UNTAGGED, 60));
	send1(f, 2, frame(MAC_BCAST, MAC_C, UNTAGGED, 60));
	send1(f, 1, frame(MAC_BCAST, MAC_B, 5, 60));

	/* A whole burst one way. */
	n_cap = 0;
	for (int i = 0; i < DP_BURST; i++)
		pkts[i] = seq_frame(frame(MAC_B, MAC_A, UNTAGGED, 60), (uint8_t)i);
	send_n(f, 0, pkts, DP_BURST);
	assert_int_equal(tx_pkts(f, 1), 1 + DP_BURST); /* 1: C's broadcast */
	assert_int_equal(n_cap, DP_BURST);
	for (int i = 0; i < DP_BURST; i++) {
		assert_int_equal(cap[i].port, 1);
		assert_int_equal(cap[i].data[20], i);
	}

	/*
	 * A flood first (port 1's buffer is not empty), a run of 20, a frame
	 * over the MTU with the same header, then the same flow again, one
	 * frame elsewhere, and the first flow to the end.
	 */
	n_cap = 0;
	pkts[0] = seq_frame(frame(MAC_BCAST, MAC_A, UNTAGGED, 60), 0);
	for (int i = 1; i < DP_BURST; i++)
		pkts[i] = seq_frame(frame(i == 26 ? MAC_C : MAC_B, MAC_A, UNTAGGED,
					    i == 21 ? MAX_FRAME + 1 : 60),
			(uint8_t)i);
	send_n(f, 0, pkts, DP_BURST);
	assert_int_equal(rx_drops(f, 0, DROP_MTU), 1);
	assert_int_equal(n_cap, (DP_BURST - 2) + 2 + 1);
	for (int i = 0, seq = 0; i < DP_BURST - 2; i++, seq++) {
		if (seq == 21 || seq == 26)
			seq++;
		assert_int_equal(cap[i].port, 1);
		assert_int_equal(cap[i].data[20], seq);
	}
	assert_int_equal(cap[DP_BURST - 2].port, 2);
	assert_int_equal(cap[DP_BURST - 2].data[20], 0);
	assert_int_equal(cap[DP_BURST - 1].data[20], 26);
	assert_int_equal(cap[DP_BURST].port, 3);

	/* Tagged: the TCI is part of the header; a frame too short for the tag is dropped. */
	n_cap = 0;
	for (int i = 0; i < 16; i++)
		pkts[i] = seq_frame(frame(MAC_B, MAC_A, 5, i == 10 ? 16 : 60), (uint8_t)i);
	rte_pktmbuf_mtod(pkts[10], uint8_t *)[20] = 0; /* beyond its 16 bytes */
	send_n(f, 0, pkts, 16);
	assert_int_equal(rx_drops(f, 0, DROP_FILTERED), 1);
	assert_int_equal(n_cap, 15);
	for (int i = 0; i < 15; i++) {
		assert_int_equal(cap[i].port, 1);
		assert_int_equal(cap[i].data[12], 0x81);
		assert_int_equal(cap[i].data[15], 5);
		assert_int_equal(cap[i].data[20], i < 10 ? i : i + 1);
	}

	/* Three runs without a flush: the buffer spills and nothing is lost. */
	uint64_t before = tx_pkts(f, 1);

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < DP_BURST; i++)
			pkts[i] = frame(MAC_B, MAC_A, UNTAGGED, 60);
		fwd_process(f->ctx, 0, 0, pkts, DP_BURST);
	}
	fwd_flush(f->ctx);
	assert_int_equal(tx_pkts(f, 1), before + 3 * DP_BURST);

	/*
	 * Trains of two flows in one burst: each run found lets the next be
	 * tried; a lone frame stops the tries and the rest go frame by frame.
	 * Every frame reaches its station, each port's frames in ingress order.
	 */
	static const char trains[DP_BURST + 1] = "BBBBBCCCCBBCBCCCBBBBBBCCCCCCCCBB";
	int next_seq[2] = {0, 0};

	n_cap = 0;
	for (int i = 0; i < DP_BURST; i++)
		pkts[i] = seq_frame(
			frame(trains[i] == 'B' ? MAC_B : MAC_C, MAC_A, UNTAGGED, 60), (uint8_t)i);
	send_n(f, 0, pkts, DP_BURST);
	assert_int_equal(n_cap, DP_BURST);
	for (int i = 0; i < DP_BURST; i++) {
		int which = cap[i].port == 1 ? 0 : 1;
		const char want = which == 0 ? 'B' : 'C';

		assert_true(cap[i].port == 1 || cap[i].port == 2);
		while (trains[next_seq[which]] != want)
			next_seq[which]++;
		assert_int_equal(cap[i].data[20], next_seq[which]);
		next_seq[which]++;
	}
}

/* ---- cross-connect and unattached ports ------------------------------------ */

static void
test_xconnect(void **state)
{
	struct fx *f = *state;
	struct rte_mbuf *pkts[5];
	uint64_t before[N_PORTS];

	add_port(f, 0, false);
	add_port(f, 1, false);
	add_port(f, 2, true);
	f->snap->ports[0].peer = 1;
	f->snap->ports[1].peer = 0;
	for (int i = 0; i < 5; i++)
		pkts[i] = frame(i == 0 ? MAC_BCAST : MAC_X, MAC_A, i == 3 ? 77 : UNTAGGED,
			(uint16_t)(60 + i));
	snap_tx(f, before);
	send_n(f, 0, pkts, 5);
	assert_int_equal(tx_pkts(f, 1), 5);
	assert_int_equal(tx_bytes(f, 1), 60 + 61 + 62 + 63 + 64);
	assert_int_equal(tx_pkts(f, 2), 0);
	assert_int_equal(all_rx_drops(f, 0), 0);
	/* No learning, no retagging, order kept. */
	assert_int_equal(mac_table_lookup(&f->macs, MAC_A, 0), MAC_PORT_NONE);
	assert_int_equal(n_cap, 5);
	for (unsigned int i = 0; i < 5; i++)
		assert_int_equal(cap[i].len, 60 + i);
	/* And the other way. */
	send1(f, 1, frame(MAC_A, MAC_X, UNTAGGED, 60));
	assert_int_equal(tx_pkts(f, 0), 1);
}

static void
test_no_destination(void **state)
{
	struct fx *f = *state;
	struct rte_mbuf *pkts[3];
	uint64_t before[N_PORTS];

	add_port(f, 0, false);
	add_port(f, 1, true);
	for (int i = 0; i < 3; i++)
		pkts[i] = frame(MAC_BCAST, MAC_A, UNTAGGED, 60);
	snap_tx(f, before);
	send_n(f, 0, pkts, 3);
	NOWHERE(f, before);
	assert_int_equal(rx_drops(f, 0, DROP_NO_DEST), 3);
	/* Alone on a bridge: nowhere to flood. */
	send1(f, 1, frame(MAC_BCAST, MAC_B, UNTAGGED, 60));
	assert_int_equal(rx_drops(f, 1, DROP_NO_DEST), 1);
}

/* ---- reflector -------------------------------------------------------------- */

static void
test_reflector(void **state)
{
	struct fx *f = *state;
	struct dp_port_view *r;
	struct rte_mbuf *m;

	add_port(f, 0, true);
	r = add_port(f, 1, true);
	r->type = PORT_REFLECTOR;
	f->ports[1]->conf.type = PORT_REFLECTOR;

	/* Unknown destination: flooded to the reflector, which sends it back. */
	send1(f, 0, frame(MAC_UNKNOWN, MAC_A, UNTAGGED, 60));
	assert_int_equal(tx_pkts(f, 1), 1);
	assert_int_equal(tx_pkts(f, 0), 1);
	assert_memory_equal(cap_of(0)->data, MAC_A, 6);
	assert_memory_equal(cap_of(0)->data + 6, MAC_UNKNOWN, 6);

	/*
	 * The next frame reuses the mbuf just freed (per-lcore cache, LIFO).
	 * rte_pktmbuf_reset() keeps hash.usr, so a recycled mbuf must not look
	 * like a frame the reflector already bounced.
	 */
	n_cap = 0;
	send1(f, 0, frame(MAC_UNKNOWN, MAC_A, UNTAGGED, 60));
	assert_int_equal(tx_pkts(f, 1), 2);
	assert_int_equal(tx_pkts(f, 0), 2);
	assert_int_equal(tx_drops(f, 1, DROP_FILTERED), 0);

	/* Whatever an mbuf's history, a received frame is reflected. */
	n_cap = 0;
	m = frame(MAC_UNKNOWN, MAC_A, UNTAGGED, 60);
	m->hash.usr = 0x7ef1ec7du;
	send1(f, 0, m);
	assert_int_equal(tx_pkts(f, 0), 3);
	assert_int_equal(tx_drops(f, 1, DROP_FILTERED), 0);
}

/*
 * Two reflectors never bounce a frame between themselves forever: a frame
 * from a multicast source is reflected to a multicast destination, flooded
 * to the other reflector, which must drop it.
 */
static void
test_two_reflectors(void **state)
{
	struct fx *f = *state;

	add_port(f, 0, true);
	for (uint16_t i = 1; i <= 2; i++)
		add_port(f, i, true)->type = PORT_REFLECTOR;
	send1(f, 0, frame(MAC_UNKNOWN, MAC_MCAST, UNTAGGED, 60));
	/* Each reflector: the original and the other's bounce, which it drops. */
	assert_int_equal(tx_pkts(f, 1), 2);
	assert_int_equal(tx_pkts(f, 2), 2);
	assert_int_equal(tx_drops(f, 1, DROP_FILTERED), 1);
	assert_int_equal(tx_drops(f, 2, DROP_FILTERED), 1);
	/* The sink got both bounces. */
	assert_int_equal(tx_pkts(f, 0), 2);
	for (unsigned int i = 0; i < n_cap; i++) {
		assert_memory_equal(cap[i].data, MAC_MCAST, 6);
		assert_memory_equal(cap[i].data + 6, MAC_UNKNOWN, 6);
	}
}

/*
 * Single copy's back-off: each try in a row that takes nothing waits twice
 * as long as the one before, up to 2^FWD_SC_BACKOFF_MAX_SHIFT times the
 * first; a try that takes frames starts over. Queues back off on their own.
 */
static void
test_sc_backoff(void **state)
{
	struct fx *f = *state;
	struct fwd_ctx *c = f->ctx;
	uint64_t wait = 1000;
	struct port *p;

	add_port(f, 0, true);
	p = f->ports[0];

	c->sc_backoff = 1000;
	c->now = 5000;
	for (int k = 0; k <= FWD_SC_BACKOFF_MAX_SHIFT + 3; k++) {
		fwd_sc_backoff(c, p, 2, true);
		assert_int_equal(p->sc_retry_at[2], c->now + wait);
		if (k < FWD_SC_BACKOFF_MAX_SHIFT)
			wait *= 2;
		c->now = p->sc_retry_at[2];
	}
	assert_int_equal(wait, 1000u << FWD_SC_BACKOFF_MAX_SHIFT);
	assert_int_equal(p->sc_retry_at[1], 0); /* another queue: untouched */
	assert_int_equal(p->sc_misses[1], 0);

	/* Frames taken: the next miss waits the first amount again. */
	fwd_sc_backoff(c, p, 2, false);
	assert_int_equal(p->sc_misses[2], 0);
	fwd_sc_backoff(c, p, 2, true);
	assert_int_equal(p->sc_retry_at[2], c->now + 1000);
	fwd_sc_backoff(c, p, 2, true);
	assert_int_equal(p->sc_retry_at[2], c->now + 2000);
}

/* One poll of rx queue @q under "auto": the path it took; @cost per frame [mbuf, sc]. */
static bool
auto_poll(struct fwd_ctx *c, struct port *p, uint16_t q, uint64_t frames, const uint64_t cost[2])
{
	bool sc = fwd_sc_auto_pick(c, p, q);

	p->stats->rx[q].packets += frames;
	p->stats->rx[q].cycles += frames * cost[sc];
	c->now += 100;
	return sc;
}

/* Polls @q from @c->now until one probe (@q between probes) is over. */
static void
auto_probe(struct fwd_ctx *c, struct port *p, uint16_t q, uint64_t frames, const uint64_t cost[2])
{
	uint64_t end = c->now + FWD_SC_AUTO_STEPS * c->sc_auto_window;

	while (c->now <= end)
		auto_poll(c, p, q, frames, cost);
}

/*
 * "single-copy": "auto": a probe runs single copy, the mbuf path, the mbuf
 * path and single copy for a window each, then keeps the path with fewer rx
 * cycles per frame for the hold time; too few frames keep single copy.
 */
static void
test_sc_auto(void **state)
{
	struct fx *f = *state;
	struct fwd_ctx *c = f->ctx;
	const uint64_t sc_cheaper[2] = {500, 300}, mbuf_cheaper[2] = {400, 600};
	const uint64_t window = 10000, hold = 100000;
	struct sc_auto *a;
	struct port *p;
	uint64_t t0;

	add_port(f, 0, false);
	p = f->ports[0];
	a = &p->sc_auto[2];
	c->sc_auto_window = window;
	c->sc_auto_hold = hold;
	c->now = t0 = 1000;

	/* The first poll starts a probe; 100 polls of 32 frames per window. */
	while (c->now < t0 + FWD_SC_AUTO_STEPS * window) {
		uint64_t w = (c->now - t0) / window;
		bool want = w == 0 || w == FWD_SC_AUTO_STEPS - 1;

		assert_int_equal(auto_poll(c, p, 2, 32, sc_cheaper), want);
		assert_int_equal(a->step, w + 1);
	}
	assert_int_equal(a->probes, 0);
	/* Decided on the first poll after the last window: single copy. */
	assert_true(auto_poll(c, p, 2, 32, sc_cheaper));
	assert_int_equal(a->probes, 1);
	assert_int_equal(a->chose_mbuf, 0);
	assert_int_equal(a->cpf[0], 500);
	assert_int_equal(a->cpf[1], 300);
	assert_int_equal(a->step, 0);
	assert_int_equal(a->until, t0 + FWD_SC_AUTO_STEPS * window + hold);
	/* Two windows of 100 polls of 32 frames per path. */
	assert_int_equal(a->judged_frames[0], 6400);
	assert_int_equal(a->judged_frames[1], 6400);
	assert_int_equal(a->judged_cycles[0], 6400 * 500);
	assert_int_equal(a->judged_cycles[1], 6400 * 300);

	/* Single copy gets dearer: the next probe turns to the mbuf path and keeps it. */
	while (c->now < a->until)
		assert_true(auto_poll(c, p, 2, 32, sc_cheaper));
	auto_probe(c, p, 2, 32, mbuf_cheaper);
	assert_int_equal(a->probes, 2);
	assert_int_equal(a->chose_mbuf, 1);
	assert_int_equal(a->cpf[0], 400);
	assert_int_equal(a->cpf[1], 600);
	while (c->now < a->until)
		assert_false(auto_poll(c, p, 2, 32, mbuf_cheaper));
	/* ... until single copy is the cheaper one again. */
	auto_probe(c, p, 2, 32, sc_cheaper);
	assert_int_equal(a->probes, 3);
	assert_true(a->sc);

	/* 200 frames a path in a probe: too few to judge, single copy stays. */
	auto_probe(c, p, 1, 1, mbuf_cheaper);
	assert_int_equal(p->sc_auto[1].probes, 1);
	assert_true(p->sc_auto[1].sc);
	assert_int_equal(p->sc_auto[1].cpf[0], 0);
	assert_int_equal(p->sc_auto[1].cpf[1], 0);
	assert_int_equal(p->sc_auto[1].judged_frames[0] + p->sc_auto[1].judged_frames[1], 0);
	assert_int_equal(p->sc_auto[3].probes, 0); /* another queue: untouched */

	/* A tie keeps single copy. */
	auto_probe(c, p, 4, 32, (const uint64_t[2]){350, 350});
	assert_int_equal(p->sc_auto[4].probes, 1);
	assert_true(p->sc_auto[4].sc);
}

/* ---- main ------------------------------------------------------------------ */

/* The EAL leaves an empty /var/run/dpdk/<prefix> behind even with --no-shconf. */
static void
remove_runtime_dir(void)
{
	char dir[128];

	snprintf(dir, sizeof(dir), "/var/run/dpdk/ut-fwd-%d", (int)getpid());
	rmdir(dir);
}

static int
eal_init(void)
{
	char prefix[64];
	char *argv[] = {
		"test_forward",
		"--no-huge",
		"-m",
		"256",
		"--no-pci",
		prefix,
		"--lcores",
		"0@0",
		"--log-level=lib.eal:error",
		"--no-shconf",
		"--no-telemetry",
		NULL,
	};
	int argc = sizeof(argv) / sizeof(argv[0]) - 1;

	snprintf(prefix, sizeof(prefix), "--file-prefix=ut-fwd-%d", (int)getpid());
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "SKIP: rte_eal_init failed (%s): forwarding tests not run\n",
			rte_strerror(rte_errno));
		return -1;
	}
	mp = rte_pktmbuf_pool_create(
		"ut_fwd", N_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (mp == NULL) {
		fprintf(stderr, "SKIP: cannot create the mbuf pool: %s\n", rte_strerror(rte_errno));
		rte_eal_cleanup();
		remove_runtime_dir();
		return -1;
	}
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_unknown_unicast_floods),
		T(test_learning),
		T(test_broadcast_multicast_flood),
		T(test_flood_skips_down_ports),
		T(test_unicast_to_down_port),
		T(test_access_vlan_isolation),
		T(test_tagged_on_access_dropped),
		T(test_trunk_tagging),
		T(test_trunk_filtering),
		T(test_trunk_all),
		T(test_retag_keeps_l2_len),
		T(test_mtu),
		T(test_runt_filtered),
		T(test_destination_is_ingress),
		T(test_big_bursts),
		T(test_same_way_runs),
		T(test_xconnect),
		T(test_no_destination),
		T(test_reflector),
		T(test_two_reflectors),
		T(test_sc_backoff),
		T(test_sc_auto),
	};
	int rc;

	if (eal_init() < 0)
		return 77; /* meson: skipped */
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rte_mempool_free(mp);
	rte_eal_cleanup();
	remove_runtime_dir();
	return rc;
}
