/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_net.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_vhost.h>

#include "forward.h"
#include "mac_table.h"
#include "vhost_net.h"

/* Extra enqueue attempts when a guest's rx ring is full. */
#define DP_TX_RETRIES 8

/* Marks a frame a reflector already bounced, so two reflectors never ping-pong. */
#define REFLECTED_MARK 0x7ef1ec7du

void (*fwd_tx_hook)(uint16_t port, struct rte_mbuf **pkts, uint16_t n);

static inline struct dp_counters *
tx_counters(struct fwd_ctx *c, const struct dp_port_view *v, uint16_t q)
{
	return &v->port->stats->tx[c->pmd_idx][q];
}

/*
 * rte_pktmbuf_free_bulk() with a fast path for what a PMD frees after a
 * transmit: mbufs that are direct, of one segment, not shared and of one
 * pool go straight back to the pool (its per-lcore cache), which is all
 * that DPDK's function does with them after checking each through a call
 * per mbuf. Anything else in the burst (a flood's shared frame, a chain,
 * an attached or external buffer) sends the whole burst the full way.
 * 30 -> 17 TSC cycles per mbuf for allocate + free of 64 B bursts here
 * (bench/RESULTS.md).
 */
void
fwd_free_bulk(struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_mempool *mp;

	if (n == 0)
		return;
	mp = pkts[0]->pool;
	for (uint16_t i = 0; i < n; i++) {
		const struct rte_mbuf *m = pkts[i];

		if (unlikely(m->pool != mp || rte_mbuf_refcnt_read(m) != 1 || m->nb_segs != 1 ||
			     m->next != NULL || !RTE_MBUF_DIRECT(m))) {
			rte_pktmbuf_free_bulk(pkts, n);
			return;
		}
	}
	rte_mempool_put_bulk(mp, (void **)pkts, n);
}

static void
drop_bulk(struct dp_counters *ctr, enum dp_drop why, struct rte_mbuf **pkts, uint16_t n)
{
	ctr->drops[why] += n;
	rte_pktmbuf_free_bulk(pkts, n);
}

/*
 * Finish a partial checksum in software for a frontend that did not
 * negotiate VIRTIO_NET_F_GUEST_CSUM: the virtio spec forbids handing it
 * a NEEDS_CSUM buffer. A frame shared with other destinations (a flood) is
 * copied first: they may accept the partial checksum and must keep it.
 * Returns the frame to send (NULL: dropped for lack of mbufs).
 */
static struct rte_mbuf *
complete_l4_csum(struct fwd_ctx *c, struct rte_mbuf *m)
{
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
	uint32_t off = m->l2_len + m->l3_len, sum;
	uint16_t csum_off, raw, *field;

	if (l4 == RTE_MBUF_F_TX_TCP_CKSUM)
		csum_off = offsetof(struct rte_tcp_hdr, cksum);
	else if (l4 == RTE_MBUF_F_TX_UDP_CKSUM)
		csum_off = offsetof(struct rte_udp_hdr, dgram_cksum);
	else
		return m;
	/* Headers outside the first segment: leave the frame as it is. */
	if (off + csum_off + 2 > m->data_len || off >= m->pkt_len)
		return m;
	if (rte_mbuf_refcnt_read(m) > 1) {
		struct rte_mbuf *cp = rte_pktmbuf_copy(m, c->mp, 0, UINT32_MAX);

		rte_pktmbuf_free(m);
		if (cp == NULL)
			return NULL;
		m = cp;
	}
	field = rte_pktmbuf_mtod_offset(m, uint16_t *, off + csum_off);
	/* The field holds the pseudo-header sum: recompute from scratch. */
	*field = 0;
	if (rte_raw_cksum_mbuf(m, off, m->pkt_len - off, &raw) != 0)
		return m;
	sum = raw;
	if (m->ol_flags & RTE_MBUF_F_TX_IPV4)
		sum += rte_ipv4_phdr_cksum(
			rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, m->l2_len), 0);
	else if (m->ol_flags & RTE_MBUF_F_TX_IPV6)
		sum += rte_ipv6_phdr_cksum(
			rte_pktmbuf_mtod_offset(m, const struct rte_ipv6_hdr *, m->l2_len), 0);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	*field = (uint16_t)~sum;
	if (*field == 0 && l4 == RTE_MBUF_F_TX_UDP_CKSUM)
		*field = 0xffff; /* 0 means "no checksum" in UDP */
	m->ol_flags &= ~(RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IP_CKSUM);
	return m;
}

static void reflect_burst(struct fwd_ctx *c, uint16_t idx, struct rte_mbuf **pkts, uint16_t n);
static void forward_burst(
	struct fwd_ctx *c, uint16_t in, uint16_t q, struct rte_mbuf **pkts, uint16_t n);

/* Transmit @n frames to port @idx; always consumes the frames. */
/*
 * To an ethdev: one tx queue per PMD where the device has enough of them
 * (no lock), else the PMDs sharing one take its spinlock. The driver owns
 * what it accepted; the rest is retried, then counted and freed.
 */
static void
ethdev_tx(struct fwd_ctx *c, const struct dp_port_view *v, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t q = c->pmd_idx % v->eth_ntxq, sent = 0, keep = 0;
	struct dp_counters *ctr = tx_counters(c, v, 0);
	uint64_t bytes = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (unlikely(m->pkt_len > v->max_frame)) {
			ctr->drops[DROP_MTU]++;
			rte_pktmbuf_free(m);
			continue;
		}
		if (unlikely(m->ol_flags & RTE_MBUF_F_TX_L4_MASK)) {
			m = complete_l4_csum(c, m);
			if (m == NULL) {
				ctr->drops[DROP_NO_MBUF]++;
				continue;
			}
		}
		pkts[keep++] = m;
	}
	n = keep;
	if (unlikely(v->eth_tx_shared))
		rte_spinlock_lock(&v->eth_txlock[q]);
	for (int retry = 0; sent < n && retry <= DP_TX_RETRIES; retry++)
		sent += rte_eth_tx_burst(v->eth_port, q, pkts + sent, n - sent);
	if (unlikely(v->eth_tx_shared))
		rte_spinlock_unlock(&v->eth_txlock[q]);
	for (uint16_t i = 0; i < sent; i++)
		bytes += pkts[i]->pkt_len;
	ctr->packets += sent;
	ctr->bytes += bytes;
	if (unlikely(sent < n)) {
		ctr->drops[DROP_QUEUE_FULL] += n - sent;
		rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	}
}

static void
port_tx(struct fwd_ctx *c, uint16_t idx, struct rte_mbuf **pkts, uint16_t n)
{
	const struct dp_port_view *v = &c->snap->ports[idx];
	struct dp_counters *ctr;
	uint64_t bytes = 0;
	uint16_t q, sent, i, keep;

	if (unlikely(v->port == NULL)) {
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	/* Floods skip down ports; unicast and cross-connect traffic ends here. */
	if (unlikely(!v->up)) {
		drop_bulk(tx_counters(c, v, 0), DROP_DOWN, pkts, n);
		return;
	}
	switch (v->type) {
	case PORT_VHOST_USER:
		if (unlikely(v->n_txq == 0)) {
			drop_bulk(tx_counters(c, v, 0), DROP_DOWN, pkts, n);
			return;
		}
		/*
		 * Keep the queue the frames came in on: the sender's flow-to-queue
		 * spreading carries over to the receiver, and PMDs serving
		 * different queues write different vrings.
		 */
		q = v->txq[c->in_queue % v->n_txq];
		ctr = tx_counters(c, v, q);
		/* Drop what the port cannot take, keeping the order of the rest. */
		for (i = 0, keep = 0; i < n; i++) {
			struct rte_mbuf *m = pkts[i];

			if (unlikely(m->pkt_len > v->max_frame)) {
				ctr->drops[DROP_MTU]++;
				rte_pktmbuf_free(m);
				continue;
			}
			if (unlikely(!v->guest_csum && (m->ol_flags & RTE_MBUF_F_TX_L4_MASK))) {
				m = complete_l4_csum(c, m);
				if (m == NULL) {
					ctr->drops[DROP_NO_MBUF]++;
					continue;
				}
			}
			bytes += m->pkt_len;
			pkts[keep++] = m;
		}
		n = keep;
		/*
		 * A guest that is a little slow to refill its ring loses nothing:
		 * retry a few times, as OVS does, before counting drops.
		 */
		sent = 0;
		for (int retry = 0; sent < n && retry <= DP_TX_RETRIES; retry++)
			sent += v->sc ? vhost_net_sc_enqueue(
						v->port, v->vid, q, pkts + sent, n - sent)
				      : rte_vhost_enqueue_burst(
						v->vid, q * 2, pkts + sent, n - sent);
		ctr->packets += sent;
		if (unlikely(sent < n)) {
			for (i = sent; i < n; i++)
				bytes -= pkts[i]->pkt_len;
			ctr->drops[DROP_QUEUE_FULL] += n - sent;
		}
		ctr->bytes += bytes;
		/* rte_vhost copied the data; the mbufs are ours to free. */
		fwd_free_bulk(pkts, n);
		return;
	case PORT_ETHDEV:
		ethdev_tx(c, v, pkts, n);
		return;
	case PORT_SINK:
		ctr = tx_counters(c, v, 0);
		for (i = 0; i < n; i++)
			bytes += pkts[i]->pkt_len;
		ctr->packets += n;
		ctr->bytes += bytes;
		if (unlikely(fwd_tx_hook != NULL))
			fwd_tx_hook(idx, pkts, n);
		fwd_free_bulk(pkts, n);
		return;
	case PORT_REFLECTOR:
		reflect_burst(c, idx, pkts, n);
		return;
	default:
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
}

static void
reflect_burst(struct fwd_ctx *c, uint16_t idx, struct rte_mbuf **pkts, uint16_t n)
{
	const struct dp_port_view *v = &c->snap->ports[idx];
	struct dp_counters *ctr = tx_counters(c, v, 0);
	struct rte_mbuf *out[DP_BURST];
	uint16_t n_out = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rte_ether_hdr *eth;
		struct rte_ether_addr tmp;

		ctr->packets++;
		ctr->bytes += m->pkt_len;
		/* A shared (flooded) frame must not be edited: bounce a copy. */
		if (rte_mbuf_refcnt_read(m) > 1 || RTE_MBUF_CLONED(m)) {
			struct rte_mbuf *cp = rte_pktmbuf_copy(m, c->mp, 0, UINT32_MAX);

			rte_pktmbuf_free(m);
			if (cp == NULL) {
				ctr->drops[DROP_NO_MBUF]++;
				continue;
			}
			m = cp;
		}
		if (m->hash.usr == REFLECTED_MARK) {
			ctr->drops[DROP_FILTERED]++;
			rte_pktmbuf_free(m);
			continue;
		}
		eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		rte_ether_addr_copy(&eth->src_addr, &tmp);
		rte_ether_addr_copy(&eth->dst_addr, &eth->src_addr);
		rte_ether_addr_copy(&tmp, &eth->dst_addr);
		m->hash.usr = REFLECTED_MARK;
		out[n_out++] = m;
	}
	/* The bounced frames enter the bridge as if received on the reflector. */
	if (n_out > 0)
		forward_burst(c, idx, 0, out, n_out);
}

static inline void
txb_add(struct fwd_ctx *c, uint16_t out, struct rte_mbuf *m)
{
	struct fwd_txbuf *b = &c->txb[out];

	if (b->n == 0) {
		/*
		 * Frames bounced by reflectors during fwd_flush() can put a port
		 * back on the list; should it ever fill up, send at once.
		 */
		if (unlikely(c->n_dirty == RTE_DIM(c->dirty))) {
			port_tx(c, out, &m, 1);
			return;
		}
		c->dirty[c->n_dirty++] = out;
	} else if (unlikely(b->n == DP_BURST)) {
		port_tx(c, out, b->pkts, b->n);
		b->n = 0;
	}
	b->pkts[b->n++] = m;
}

/* txb_add() of @n frames, in order. */
static void
txb_add_run(struct fwd_ctx *c, uint16_t out, struct rte_mbuf **pkts, uint16_t n)
{
	struct fwd_txbuf *b = &c->txb[out];

	/* The first frame puts the port on the dirty list (or flushes). */
	txb_add(c, out, pkts[0]);
	if (likely(b->n > 0 && b->n + n - 1 <= DP_BURST)) {
		memcpy(&b->pkts[b->n], pkts + 1, (n - 1) * sizeof(*pkts));
		b->n += n - 1;
		return;
	}
	for (uint16_t i = 1; i < n; i++)
		txb_add(c, out, pkts[i]);
}

void
fwd_flush(struct fwd_ctx *c)
{
	/* Reflectors may append new destinations while we walk the list. */
	for (uint16_t i = 0; i < c->n_dirty; i++) {
		uint16_t out = c->dirty[i];
		struct fwd_txbuf *b = &c->txb[out];
		uint16_t n = b->n;

		b->n = 0;
		if (n > 0)
			port_tx(c, out, b->pkts, n);
	}
	c->n_dirty = 0;
}

static inline bool
vlan_member(const struct dp_port_view *v, uint16_t vlan)
{
	switch (v->vlan_mode) {
	case VLAN_MODE_ACCESS:
		return v->tag == vlan;
	case VLAN_MODE_TRUNK:
		return vlan == 0 || (v->trunks[vlan >> 6] >> (vlan & 63)) & 1;
	default:
		return true;
	}
}

/* Whether a frame of @vlan leaves @v with an 802.1Q tag. */
static inline bool
egress_tagged(const struct dp_port_view *v, uint16_t vlan)
{
	return v->vlan_mode != VLAN_MODE_ACCESS && vlan != 0;
}

/* Make @m carry (or not carry) the tag of @vlan; false if impossible. */
static bool
retag(struct rte_mbuf *m, bool tagged_now, bool want_tag, uint16_t vlan)
{
	if (tagged_now == want_tag)
		return true;
	if (want_tag) {
		m->vlan_tci = vlan;
		/* rte_vlan_insert() also adds the tag to l2_len. */
		if (rte_vlan_insert(&m) != 0)
			return false;
		return true;
	}
	if (m->data_len < RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN)
		return false;
	memmove(rte_pktmbuf_mtod_offset(m, char *, RTE_VLAN_HLEN), rte_pktmbuf_mtod(m, char *),
		2 * RTE_ETHER_ADDR_LEN);
	rte_pktmbuf_adj(m, RTE_VLAN_HLEN);
	if ((m->ol_flags & RTE_MBUF_F_TX_L4_MASK) && m->l2_len >= RTE_VLAN_HLEN)
		m->l2_len -= RTE_VLAN_HLEN;
	return true;
}

static void
flood(struct fwd_ctx *c, const struct dp_bridge_view *bv, uint16_t in, struct rte_mbuf *m,
	uint16_t vlan, bool tagged, struct dp_counters *rxc)
{
	uint16_t same[DP_MAX_PORTS], other[DP_MAX_PORTS];
	uint16_t n_same = 0, n_other = 0;
	struct rte_mbuf *m2;

	for (uint16_t i = 0; i < bv->n_ports; i++) {
		uint16_t o = bv->ports[i];
		const struct dp_port_view *ov = &c->snap->ports[o];

		if (o == in || !ov->up || !vlan_member(ov, vlan))
			continue;
		if (egress_tagged(ov, vlan) == tagged)
			same[n_same++] = o;
		else
			other[n_other++] = o;
	}
	if (n_same + n_other == 0) {
		rxc->drops[DROP_NO_DEST]++;
		rte_pktmbuf_free(m);
		return;
	}
	m2 = NULL;
	if (n_other > 0) {
		if (n_same == 0) {
			m2 = m;
			m = NULL;
		} else {
			m2 = rte_pktmbuf_copy(m, c->mp, 0, UINT32_MAX);
			if (m2 == NULL)
				rxc->drops[DROP_NO_MBUF] += n_other;
		}
		if (m2 != NULL && !retag(m2, tagged, !tagged, vlan)) {
			rxc->drops[DROP_NO_MBUF] += n_other;
			rte_pktmbuf_free(m2);
			m2 = NULL;
		}
	}
	if (m != NULL) {
		rte_pktmbuf_refcnt_update(m, (int16_t)(n_same - 1));
		for (uint16_t i = 0; i < n_same; i++)
			txb_add(c, same[i], m);
	}
	if (m2 != NULL) {
		rte_pktmbuf_refcnt_update(m2, (int16_t)(n_other - 1));
		for (uint16_t i = 0; i < n_other; i++)
			txb_add(c, other[i], m2);
	}
}

/*
 * A non-zero 64-bit key of (MAC, VLAN) for the per-burst memo. Two loads
 * put together in registers: a 6-byte memcpy into a zeroed uint64_t went
 * through the stack as a 4- and a 2-byte store read back by one 8-byte
 * load, which store forwarding cannot serve: that stall was 7.5 % of the
 * 64 B bridge profile (bench/RESULTS.md).
 */
static inline uint64_t
burst_key(const uint8_t *mac, uint16_t vlan)
{
	uint32_t lo;
	uint16_t hi;

	memcpy(&lo, mac, sizeof(lo));
	memcpy(&hi, mac + sizeof(lo), sizeof(hi));
	return (uint64_t)lo | (uint64_t)hi << 32 | (uint64_t)vlan << 48 | 1ULL << 62;
}

/*
 * The VLAN a frame that arrived on @iv belongs to: @vlan/@tagged as parsed;
 * false when the port's VLAN mode refuses it.
 */
static inline bool
ingress_vlan(const struct dp_port_view *iv, bool tagged, uint16_t *vlan)
{
	switch (iv->vlan_mode) {
	case VLAN_MODE_ACCESS:
		if (unlikely(tagged))
			return false;
		*vlan = iv->tag;
		return true;
	case VLAN_MODE_TRUNK:
		return !(unlikely(tagged && !vlan_member(iv, *vlan)));
	default:
		return true;
	}
}

/* Whether a unicast frame of @vlan looked up to @out can go there (else flood). */
static inline bool
unicast_ok(const struct fwd_ctx *c, const struct dp_port_view *iv, uint16_t out, uint16_t vlan)
{
	return out != DP_NONE && out < DP_MAX_PORTS && c->snap->ports[out].bridge == iv->bridge &&
	       vlan_member(&c->snap->ports[out], vlan);
}

/*
 * How many frames from @pkts[0] on (at most @n) carry the same Ethernet
 * header as it, through the 802.1Q tag's TCI when @tagged, and pass the
 * checks bridge_process() makes of every frame (a whole header, at most
 * @max_frame). Those go where pkts[0] goes: same source to learn, same
 * destination and VLAN to look up, same tag to keep. @pkts[0] has passed.
 */
static uint16_t
same_way_run(struct rte_mbuf **pkts, uint16_t n, bool tagged, uint32_t max_frame)
{
	/* Compared: addresses, type and the TCI if tagged; the tag is 4 bytes. */
	const uint16_t cmp = tagged ? RTE_ETHER_HDR_LEN + 2 : RTE_ETHER_HDR_LEN;
	const uint16_t hdr = tagged ? RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN : RTE_ETHER_HDR_LEN;
	const uint8_t *h0 = rte_pktmbuf_mtod(pkts[0], const uint8_t *);
	uint64_t a0, b0, a, b;
	uint16_t i;

	/* Two 8-byte words that may overlap: bytes 0-7 and the last 8 compared. */
	memcpy(&a0, h0, sizeof(a0));
	memcpy(&b0, h0 + cmp - sizeof(b0), sizeof(b0));
	for (i = 1; i < n; i++) {
		const struct rte_mbuf *m = pkts[i];
		const uint8_t *h = rte_pktmbuf_mtod(m, const uint8_t *);

		if (m->data_len < hdr || m->pkt_len > max_frame)
			break;
		memcpy(&a, h, sizeof(a));
		memcpy(&b, h + cmp - sizeof(b), sizeof(b));
		if (((a ^ a0) | (b ^ b0)) != 0)
			break;
	}
	return i;
}

static void
bridge_process(struct fwd_ctx *c, const struct dp_port_view *iv, uint16_t in,
	struct rte_mbuf **pkts, uint16_t n, struct dp_counters *rxc)
{
	const struct dp_bridge_view *bv = &c->snap->bridges[iv->bridge];
	struct mac_table *macs = bv->br->macs;
	/*
	 * Frames of a burst mostly share their addresses: learn a source and
	 * look up a destination once per run of equal (MAC, VLAN) keys.
	 */
	uint64_t last_src = 0, last_dst = 0;
	uint16_t last_out = DP_NONE;
	/*
	 * And often all of them go one way (a guest talking to its gateway):
	 * the first unicast frame checks once whether those after it share its
	 * header, and the run goes out as one batch with no per-frame decision.
	 * The memo above still serves bursts that mix. bench/fwd_bench.c,
	 * 64 B: 24.5 -> 8.0 TSC cycles per frame (bench/RESULTS.md).
	 * A burst of trains (a few flows, each several frames in a row) tries
	 * again after each run it found; the first try that finds none stops
	 * it, so frames that alternate pay one failed compare per burst.
	 */
	bool try_runs = true;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rte_ether_hdr *eth;
		uint16_t vlan = 0, out;
		uint64_t key;
		bool tagged = false;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		if (unlikely(m->data_len < RTE_ETHER_HDR_LEN)) {
			rxc->drops[DROP_FILTERED]++;
			rte_pktmbuf_free(m);
			continue;
		}
		eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN)) {
			const struct rte_vlan_hdr *vh = (const struct rte_vlan_hdr *)(eth + 1);

			if (unlikely(m->data_len < RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN)) {
				rxc->drops[DROP_FILTERED]++;
				rte_pktmbuf_free(m);
				continue;
			}
			tagged = true;
			vlan = rte_be_to_cpu_16(vh->vlan_tci) & 0xfff;
		}
		if (unlikely(m->pkt_len > iv->max_frame)) {
			rxc->drops[DROP_MTU]++;
			rte_pktmbuf_free(m);
			continue;
		}
		if (unlikely(!ingress_vlan(iv, tagged, &vlan))) {
			rxc->drops[DROP_VLAN]++;
			rte_pktmbuf_free(m);
			continue;
		}
		key = burst_key(eth->src_addr.addr_bytes, vlan);
		if (key != last_src) {
			if (likely(!rte_is_multicast_ether_addr(&eth->src_addr)))
				mac_table_learn(macs, eth->src_addr.addr_bytes, vlan, in);
			last_src = key;
		}
		if (rte_is_multicast_ether_addr(&eth->dst_addr)) {
			flood(c, bv, in, m, vlan, tagged, rxc);
			continue;
		}
		key = burst_key(eth->dst_addr.addr_bytes, vlan);
		if (key != last_dst) {
			last_out = mac_table_lookup(macs, eth->dst_addr.addr_bytes, vlan);
			last_dst = key;
		}
		out = last_out;
		if (!unicast_ok(c, iv, out, vlan)) {
			flood(c, bv, in, m, vlan, tagged, rxc);
			continue;
		}
		if (unlikely(out == in)) {
			/* The destination sits behind the ingress port. */
			rxc->drops[DROP_FILTERED]++;
			rte_pktmbuf_free(m);
			continue;
		}
		if (tagged == egress_tagged(&c->snap->ports[out], vlan)) {
			if (try_runs && i + 1 < n) {
				uint16_t run = same_way_run(pkts + i, n - i, tagged, iv->max_frame);

				if (run > 1) {
					txb_add_run(c, out, pkts + i, run);
					i += run - 1;
					continue;
				}
				try_runs = false;
			}
		} else if (!retag(m, tagged, !tagged, vlan)) {
			rxc->drops[DROP_NO_MBUF]++;
			rte_pktmbuf_free(m);
			continue;
		}
		txb_add(c, out, m);
	}
}

static void
forward_burst(struct fwd_ctx *c, uint16_t in, uint16_t q, struct rte_mbuf **pkts, uint16_t n)
{
	const struct dp_port_view *iv = &c->snap->ports[in];
	struct dp_counters *rxc = &iv->port->stats->rx[q];

	if (iv->peer != DP_NONE) {
		/* Cross-connect: no lookup, no copy, the whole burst at once. */
		uint16_t peer = iv->peer;

		if (c->txb[peer].n > 0) {
			for (uint16_t i = 0; i < n; i++)
				txb_add(c, peer, pkts[i]);
		} else {
			port_tx(c, peer, pkts, n);
		}
		return;
	}
	if (iv->bridge != DP_NONE) {
		bridge_process(c, iv, in, pkts, n, rxc);
		return;
	}
	drop_bulk(rxc, DROP_NO_DEST, pkts, n);
}

void
fwd_process(struct fwd_ctx *c, uint16_t in, uint16_t q, struct rte_mbuf **pkts, uint16_t n)
{
	/*
	 * Received frames are never "already reflected": rte_pktmbuf_reset()
	 * keeps hash.usr, so a recycled mbuf may still carry the mark
	 * (fwd_poll() clears it while counting the burst).
	 */
	for (uint16_t i = 0; i < n; i++)
		pkts[i]->hash.usr = 0;
	forward_burst(c, in, q, pkts, n);
}

/*
 * The only port a flood of @vlan from @in reaches, or DP_NONE when it reaches
 * none or several: then a flood is a unicast (two ports on a bridge).
 */
static uint16_t
flood_single_target(
	const struct fwd_ctx *c, const struct dp_bridge_view *bv, uint16_t in, uint16_t vlan)
{
	uint16_t found = DP_NONE;

	for (uint16_t i = 0; i < bv->n_ports; i++) {
		uint16_t o = bv->ports[i];
		const struct dp_port_view *ov = &c->snap->ports[o];

		if (o == in || !ov->up || !vlan_member(ov, vlan))
			continue;
		if (found != DP_NONE)
			return DP_NONE;
		found = o;
	}
	return found;
}

void
fwd_sc_backoff(const struct fwd_ctx *c, struct port *p, uint16_t q, bool missed)
{
	uint8_t k = p->sc_misses[q];

	if (!missed) {
		p->sc_misses[q] = 0;
		return;
	}
	p->sc_retry_at[q] = c->now + (c->sc_backoff << k);
	if (k < FWD_SC_BACKOFF_MAX_SHIFT)
		p->sc_misses[q] = k + 1;
}

/* The end of a probe: keep the path that cost fewer cycles per frame. */
static void
sc_auto_decide(struct sc_auto *a)
{
	uint32_t cpf[2] = {0, 0};
	bool sc = true;

	if (a->frames[0] >= FWD_SC_AUTO_MIN_FRAMES && a->frames[1] >= FWD_SC_AUTO_MIN_FRAMES) {
		for (int k = 0; k < 2; k++) {
			cpf[k] = (uint32_t)RTE_MIN(a->cycles[k] / a->frames[k], UINT32_MAX);
			__atomic_store_n(&a->judged_cycles[k], a->judged_cycles[k] + a->cycles[k],
				__ATOMIC_RELAXED);
			__atomic_store_n(&a->judged_frames[k], a->judged_frames[k] + a->frames[k],
				__ATOMIC_RELAXED);
		}
		/* Cross-multiplied: no rounding. A tie keeps single copy. */
		sc = a->cycles[1] * a->frames[0] <= a->cycles[0] * a->frames[1];
	}
	__atomic_store_n(&a->cpf[0], cpf[0], __ATOMIC_RELAXED);
	__atomic_store_n(&a->cpf[1], cpf[1], __ATOMIC_RELAXED);
	__atomic_store_n(&a->sc, sc, __ATOMIC_RELAXED);
	__atomic_store_n(&a->probes, a->probes + 1, __ATOMIC_RELAXED);
	if (!sc)
		__atomic_store_n(&a->chose_mbuf, a->chose_mbuf + 1, __ATOMIC_RELAXED);
}

bool
fwd_sc_auto_pick(const struct fwd_ctx *c, struct port *p, uint16_t q)
{
	struct sc_auto *a = &p->sc_auto[q];
	const struct dp_counters *rx = &p->stats->rx[q];

	if (c->now < a->until)
		return a->sc;
	if (a->step != 0) {
		a->cycles[a->sc] += rx->cycles - a->cycles0;
		a->frames[a->sc] += rx->packets - a->frames0;
	}
	if (a->step == FWD_SC_AUTO_STEPS) {
		sc_auto_decide(a);
		a->step = 0;
		a->until = c->now + c->sc_auto_hold;
		return a->sc;
	}
	if (a->step++ == 0) {
		memset(a->cycles, 0, sizeof(a->cycles));
		memset(a->frames, 0, sizeof(a->frames));
	}
	/* Single copy, mbuf, mbuf, single copy. */
	__atomic_store_n(&a->sc, a->step == 1 || a->step == FWD_SC_AUTO_STEPS, __ATOMIC_RELAXED);
	a->cycles0 = rx->cycles;
	a->frames0 = rx->packets;
	a->until = c->now + c->sc_auto_window;
	return a->sc;
}

/* Destinations one bridge single-copy burst keeps open at once. */
#define BRIDGE_COPY_DESTS 4
/*
 * Frames up to this size take the mbuf path, on a bridge and a cross-connect:
 * rte_vhost batches their small copies better than single copy's per-frame
 * descriptor work. Measured: bridge 0.73x at 64 B; cross-connect 0.4-0.9x at
 * 64 and 128 B, even at 256 and 512 B, 1.4x at 1518 B (bench/RESULTS.md).
 */
#define SC_MIN_FRAME 256

struct bridge_copy_dest {
	uint16_t port;
	uint16_t queue;
	struct vhost_sc_ring ring;
	struct net_copy_result res;
};

/*
 * Single copy on a bridge. Take the frames of a single-copy vhost port's
 * queue one by one, learn and look up as bridge_process() does, and copy
 * each known-unicast frame straight into its destination's receive queue
 * when that is a single-copy vhost port too and no VLAN tag changes. Stop at
 * the first frame that needs more (flood, tag change, an ethdev, a full
 * ring, a fifth destination...): it and the rest take the mbuf path, in
 * order. The Ethernet header is delivered from the copy that was checked,
 * so a guest rewriting it meanwhile cannot get past learning or VLANs.
 * Returns the frames taken; *rest: whether frames are left for the mbuf
 * path (false when it took all it found, or found none).
 */
static uint16_t
bridge_copy(
	struct fwd_ctx *c, const struct dp_port_view *iv, const struct dp_rxq_ref *rxq, bool *rest)
{
	const struct dp_bridge_view *bv = &c->snap->bridges[iv->bridge];
	struct mac_table *macs = bv->br->macs;
	struct bridge_copy_dest dst[BRIDGE_COPY_DESTS];
	struct net_copy_result in = {0};
	/* The checked L2 header of the frame at hand (net_copy_frame() is done with it). */
	uint8_t l2[RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN];
	struct virtq_chain txc[2], rxc;
	const char *map_why[2] = {NULL, NULL};
	/* Not zero-filled: 3 KiB, and only job[0 .. n) is ever read. */
	struct net_copy_batch batch;
	uint16_t heads[DP_BURST];
	struct vhost_sc_ring src;
	uint64_t last_src = 0, last_dst = 0;
	uint16_t last_out = DP_NONE, n_dst = 0, taken = 0;
	int map_rc[2], n;

	*rest = true;
	batch.n = 0;
	if (vhost_sc_ring_open(&src, iv->port, iv->vid, 2 * rxq->queue + 1) != 0)
		return 0;
	n = virtq_pop(&src.vq, heads, DP_BURST);
	if (n <= 0) {
		if (n == 0) {
			vhost_sc_ring_abort(&src);
			*rest = false;
		} else
			vhost_sc_ring_close(&src); /* reports the broken ring */
		return 0;
	}
	map_rc[0] = virtq_map_chain(&src.vq, heads[0], &txc[0], &map_why[0]);
	for (; taken < n; taken++) {
		const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)l2;
		const struct virtq_chain *t = &txc[taken & 1];
		const struct dp_port_view *ov;
		struct bridge_copy_dest *d;
		size_t l2_len = RTE_ETHER_HDR_LEN, got;
		uint16_t vlan = 0, out, k;
		enum net_copy_rc r;
		bool tagged = false;
		uint64_t key;

		/* Map the next chain now: its descriptor and data load meanwhile. */
		if (taken + 1 < n) {
			int nx = (taken + 1) & 1;

			map_rc[nx] =
				virtq_map_chain(&src.vq, heads[taken + 1], &txc[nx], &map_why[nx]);
			if (map_rc[nx] == 0)
				net_copy_prefetch(&txc[nx]);
		}
		if (unlikely(map_rc[taken & 1] != 0)) {
			in.why = map_why[taken & 1];
			in.bad_tx++;
			goto done;
		}
		if (t->out_len <= (uint32_t)src.side.hdr_len + SC_MIN_FRAME ||
			t->out_len - src.side.hdr_len > iv->max_frame)
			break; /* small, or too big: the mbuf path (which counts drops) */
		/* Header and frame in one segment, as guests lay them out: no walk. */
		if (likely(t->iov[0].iov_len >= src.side.hdr_len + sizeof(l2))) {
			memcpy(l2, (const uint8_t *)t->iov[0].iov_base + src.side.hdr_len,
				sizeof(l2));
			got = sizeof(l2);
		} else {
			got = iov_copy_from(t->iov, t->n_out, src.side.hdr_len, l2, sizeof(l2));
			if (unlikely(got < RTE_ETHER_HDR_LEN))
				break;
		}
		if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN)) {
			if (unlikely(got < sizeof(l2)))
				break;
			tagged = true;
			l2_len += RTE_VLAN_HLEN;
			vlan = rte_be_to_cpu_16(
				       ((const struct rte_vlan_hdr *)(eth + 1))->vlan_tci) &
			       0xfff;
		}
		if (unlikely(!ingress_vlan(iv, tagged, &vlan)))
			break;
		key = burst_key(eth->src_addr.addr_bytes, vlan);
		if (key != last_src) {
			if (likely(!rte_is_multicast_ether_addr(&eth->src_addr)))
				mac_table_learn(
					macs, eth->src_addr.addr_bytes, vlan, iv->port->idx);
			last_src = key;
		}
		key = burst_key(eth->dst_addr.addr_bytes, vlan);
		if (key != last_dst) {
			last_out = DP_NONE;
			if (!rte_is_multicast_ether_addr(&eth->dst_addr))
				last_out = mac_table_lookup(macs, eth->dst_addr.addr_bytes, vlan);
			/* Flooded (multicast, unknown): fine if it reaches one port only. */
			if (!unicast_ok(c, iv, last_out, vlan))
				last_out = flood_single_target(c, bv, rxq->port, vlan);
			last_dst = key;
		}
		out = last_out;
		if (out == DP_NONE || out == rxq->port)
			break;
		ov = &c->snap->ports[out];
		if (!ov->sc_ok || !ov->up || ov->n_txq == 0 || c->txb[out].n != 0 ||
			egress_tagged(ov, vlan) != tagged || (iv->host_csum && !ov->guest_csum))
			break;
		for (k = 0; k < n_dst && dst[k].port != out; k++)
			;
		if (k == n_dst) {
			if (n_dst == BRIDGE_COPY_DESTS)
				break;
			d = &dst[k];
			d->port = out;
			d->queue = ov->txq[rxq->queue % ov->n_txq];
			memset(&d->res, 0, sizeof(d->res));
			if (vhost_sc_ring_open(&d->ring, ov->port, ov->vid, 2 * d->queue) != 0)
				break;
			n_dst++;
		}
		d = &dst[k];
		/* The frame as checked: its header from l2[], the rest from the guest. */
		r = net_copy_frame(&src.side, &d->ring.side, t, l2, (uint16_t)l2_len, ov->max_frame,
			&rxc, &batch, &d->res);
		if (unlikely(r == NET_COPY_RX_FULL || r == NET_COPY_RX_BROKEN))
			break; /* retried or dropped there, as any frame */
	done:
		virtq_push(&src.vq, heads[taken], 0);
	}
	/* From the first frame not taken on, the mbuf path goes on, in order. */
	src.vq.last_avail_idx = (uint16_t)(src.vq.last_avail_idx - (n - taken));
	*rest = taken < n;
	/* Traffic single copy does not take: stop trying on every poll. */
	fwd_sc_backoff(c, iv->port, rxq->queue, taken == 0);
	net_copy_batch_run(&batch);
	for (uint16_t k = 0; k < n_dst; k++) {
		const struct dp_port_view *ov = &c->snap->ports[dst[k].port];

		vhost_sc_ring_close(&dst[k].ring);
		vhost_sc_count_tx(&dst[k].res, 0, ov->port, tx_counters(c, ov, dst[k].queue));
		net_copy_result_add(&in, &dst[k].res); /* the rx side reads bad_tx, in_bytes */
	}
	vhost_sc_ring_close(&src);
	vhost_sc_count_rx(&in, taken, iv->port, &iv->port->stats->rx[rxq->queue]);
	return taken;
}

/*
 * Cross-connected vhost ports that both allow it: copy from one guest's
 * buffers into the other's, no mbuf (vhost_net.h). Returns the frames taken;
 * *rest: whether frames are left for the mbuf path (small ones, or single
 * copy could not run).
 */
static uint16_t
copy_to_peer(
	struct fwd_ctx *c, const struct dp_port_view *v, const struct dp_rxq_ref *rxq, bool *rest)
{
	const struct dp_port_view *pv = &c->snap->ports[v->peer];
	uint16_t qb;
	int moved;

	*rest = true;
	/* Frames batched for the peer go first; a down peer counts its drops. */
	if (c->txb[v->peer].n != 0 || !pv->up || pv->n_txq == 0 || !v->up)
		return 0;
	qb = pv->txq[rxq->queue % pv->n_txq];
	moved = vhost_net_copy_burst(v->port, v->vid, rxq->queue, pv->port, pv->vid, qb,
		pv->max_frame, SC_MIN_FRAME, &v->port->stats->rx[rxq->queue],
		tx_counters(c, pv, qb), rest);
	if (moved < 0)
		return 0; /* -EAGAIN, *rest is true */
	if (moved > 0 || *rest)
		fwd_sc_backoff(c, v->port, rxq->queue, moved == 0);
	return (uint16_t)moved;
}

uint16_t
fwd_poll(struct fwd_ctx *c, const struct dp_rxq_ref *rxq)
{
	const struct dp_port_view *v = &c->snap->ports[rxq->port];
	struct rte_mbuf *pkts[DP_BURST];
	struct dp_counters *rxc;
	uint64_t bytes = 0;
	uint16_t n, copied = 0;

	if (v->type == PORT_ETHDEV)
		n = v->up ? rte_eth_rx_burst(v->eth_port, rxq->queue, pkts, DP_BURST) : 0;
	else if (v->type == PORT_VHOST_USER && v->vid >= 0 && v->sc) {
		/*
		 * What single copy leaves (from the first frame it cannot take)
		 * goes on below. Frames that came in after its burst wait for
		 * the next poll: they are likely large too.
		 */
		bool rest = true;

		if (v->sc_auto && !fwd_sc_auto_pick(c, v->port, rxq->queue))
			; /* "auto" keeps the mbuf path for now */
		else if (c->now < v->port->sc_retry_at[rxq->queue])
			; /* backing off: the mbuf path */
		else if (v->sc_peer)
			copied = copy_to_peer(c, v, rxq, &rest);
		else if (v->bridge != DP_NONE && v->sc_ok && v->up)
			copied = bridge_copy(c, v, rxq, &rest);
		if (!rest || copied == DP_BURST)
			return copied;
		n = vhost_net_sc_dequeue(
			v->port, v->vid, rxq->queue, c->mp, pkts, DP_BURST - copied);
	} else if (v->type == PORT_VHOST_USER && v->vid >= 0)
		n = rte_vhost_dequeue_burst(v->vid, rxq->queue * 2 + 1, c->mp, pkts, DP_BURST);
	else
		return 0;
	if (n == 0)
		return copied;
	rxc = &v->port->stats->rx[rxq->queue];
	c->in_queue = rxq->queue;
	/* One pass over the burst: count it and clear stale reflector marks. */
	for (uint16_t i = 0; i < n; i++) {
		bytes += pkts[i]->pkt_len;
		pkts[i]->hash.usr = 0;
	}
	rxc->packets += n;
	rxc->bytes += bytes;
	if (unlikely(!v->up)) {
		drop_bulk(rxc, DROP_DOWN, pkts, n);
		return n;
	}
	forward_burst(c, rxq->port, rxq->queue, pkts, n);
	return copied + n;
}
