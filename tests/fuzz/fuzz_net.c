/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for what vhostd does with a guest's frames
 * (dataplane/forward.c, compiled into this file so that its static
 * functions are reachable): the virtio-net header's partial checksum is
 * turned into mbuf offload metadata the way rte_vhost 22.11 does it
 * (legacy offload mode: l2/l3 lengths parsed from the frame, TX_TCP/UDP_CKSUM
 * when csum_start/csum_offset match), then
 *  A. complete_l4_csum() finishes the checksum of the frame held in an
 *     external buffer of exactly its size (ASan sees any byte past it),
 *     optionally in two segments and optionally shared (refcnt 2: the
 *     copy path), and
 *  B. a burst of such frames is switched by fwd_process() on a bridge of
 *     four sink ports whose VLAN modes (access/trunk/trunk-all/down) come
 *     from the input; fwd_tx_hook checks every frame that leaves.
 * Invariants besides the sanitizers:
 *  - A: the checksum flags are gone; every byte but the checksum field is
 *    unchanged; when the IP header is consistent with the frame, the L4
 *    checksum verifies; a shared frame is left untouched (a copy is edited);
 *  - B: a frame leaves only through an up bridge port other than the
 *    ingress one, that is a member of its VLAN; its bytes are the ingress
 *    bytes with the outer tag removed and/or the VLAN's tag inserted, as the
 *    egress port wants; offload flags are kept and l2_len moves with the
 *    tag (so that the checksum is completed at the right place); every
 *    frame is delivered or counted as a drop; every mbuf returns to the pool.
 *
 * Input: [0] ingress port (bits 0-1), shared (bit 2), split (bit 3), small
 * max frame (bit 4); [1..8] per port: mode (bits 0-1: access, trunk,
 * trunk-all, down) | tag (bits 2-7), trunk mask (VLANs tag..tag+7);
 * then frames: flags(1) csum_start(2 LE) csum_offset(2 LE) len(2 LE) bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "../../dataplane/forward.c"
#include "fuzz_util.h"

#define N_MBUFS 1023
#define N_PORTS 4
#define MAX_FRAMES 8
#define MAX_LEN 1600
#define HDR 9

static struct rte_mempool *pool;

/* ---- the rte_vhost side: virtio-net header -> mbuf metadata ---------------- */

#define VNET_F_NEEDS_CSUM 1

struct vnet_in {
	uint8_t flags;
	uint16_t csum_start, csum_offset;
	const uint8_t *data;
	uint16_t len;
};

/*
 * As rte_vhost 22.11 parse_headers() + vhost_dequeue_offload_legacy(): only
 * headers inside the frame give lengths, and a partial checksum is trusted
 * only when it starts at the L4 header and its offset fits the protocol.
 */
static void
vhost_offload(const struct vnet_in *in, struct rte_mbuf *m)
{
	const uint8_t *p = in->data;
	uint16_t len = in->len, ethertype, l2 = 14, l3;
	uint64_t fl = 0;
	uint8_t proto;

	/* Keep RTE_MBUF_F_EXTERNAL: the buffer goes back to its owner. */
	m->ol_flags &= RTE_MBUF_F_EXTERNAL;
	m->l2_len = m->l3_len = 0;
	if (len < 14)
		return;
	ethertype = (uint16_t)(p[12] << 8 | p[13]);
	if (ethertype == RTE_ETHER_TYPE_VLAN) {
		if (len < 18)
			return;
		ethertype = (uint16_t)(p[16] << 8 | p[17]);
		l2 = 18;
	}
	if (ethertype == RTE_ETHER_TYPE_IPV4) {
		if (len < l2 + 20)
			return;
		l3 = (uint16_t)((p[l2] & 0xf) * 4);
		if (len < l2 + l3)
			return;
		proto = p[l2 + 9];
		fl |= RTE_MBUF_F_TX_IPV4;
	} else if (ethertype == RTE_ETHER_TYPE_IPV6) {
		if (len < l2 + 40)
			return;
		l3 = 40;
		proto = p[l2 + 6];
		fl |= RTE_MBUF_F_TX_IPV6;
	} else {
		return;
	}
	m->l2_len = l2;
	m->l3_len = l3;
	if (!(in->flags & VNET_F_NEEDS_CSUM) || in->csum_start != l2 + l3)
		return;
	if (in->csum_offset == offsetof(struct rte_tcp_hdr, cksum) && proto == IPPROTO_TCP)
		m->ol_flags |= fl | RTE_MBUF_F_TX_TCP_CKSUM;
	else if (in->csum_offset == offsetof(struct rte_udp_hdr, dgram_cksum) &&
		 proto == IPPROTO_UDP)
		m->ol_flags |= fl | RTE_MBUF_F_TX_UDP_CKSUM;
}

/* ---- reference checksum ---------------------------------------------------- */

static uint32_t
sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] | p[i + 1] << 8); /* little-endian words, as rte_raw_cksum */
	if (n & 1)
		s += p[n - 1];
	return s;
}

static uint16_t
fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/*
 * Whether the completed checksum of @p (@len bytes) verifies, when the IP
 * header describes the frame exactly; true when it does not (nothing to say).
 */
static bool
l4_verifies(const uint8_t *p, uint16_t len, uint16_t l2, uint16_t l3, bool v4, uint8_t proto)
{
	uint32_t s = 0, l4len = (uint32_t)len - l2 - l3;
	uint8_t ph[4];

	if (v4) {
		if (l3 != 20 || (uint32_t)(p[l2 + 2] << 8 | p[l2 + 3]) != (uint32_t)len - l2)
			return true;
		s = sum16(p + l2 + 12, 8, 0);
	} else {
		if ((uint32_t)(p[l2 + 4] << 8 | p[l2 + 5]) != l4len)
			return true;
		s = sum16(p + l2 + 8, 32, 0);
	}
	ph[0] = 0;
	ph[1] = proto;
	ph[2] = (uint8_t)(l4len >> 8);
	ph[3] = (uint8_t)l4len;
	s = sum16(ph, 4, s);
	/* The L4 segment starts at an even offset only when l2 + l3 is even. */
	if ((l2 + l3) & 1)
		return true;
	s = sum16(p + l2 + l3, l4len, s);
	return fold(s) == 0xffff || (proto == IPPROTO_UDP && fold(s) == 0);
}

/* ---- A: complete_l4_csum() on an exactly sized external buffer ---------------- */

static void
ext_free(void *addr, void *opaque)
{
}

static struct rte_mbuf *
ext_mbuf(uint8_t *buf, uint16_t len, struct rte_mbuf_ext_shared_info *shinfo)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);

	check(m != NULL);
	shinfo->free_cb = ext_free;
	shinfo->fcb_opaque = NULL;
	rte_mbuf_ext_refcnt_set(shinfo, 1);
	rte_pktmbuf_attach_extbuf(m, buf, (rte_iova_t)(uintptr_t)buf, len, shinfo);
	m->data_off = 0;
	m->data_len = len;
	m->pkt_len = len;
	return m;
}

static void
part_a(struct fwd_ctx *c, const struct vnet_in *in, bool shared, uint16_t split)
{
	struct rte_mbuf_ext_shared_info sh[2];
	uint8_t *b0, *b1 = NULL, *out;
	struct rte_mbuf *m, *r;
	uint16_t n0 = in->len, csum_at;
	uint64_t l4;
	bool completes;

	if (in->len == 0)
		return;
	if (split > 0 && split < in->len)
		n0 = split;
	b0 = malloc(n0);
	check(b0 != NULL);
	memcpy(b0, in->data, n0);
	m = ext_mbuf(b0, n0, &sh[0]);
	if (n0 < in->len) {
		b1 = malloc(in->len - n0);
		check(b1 != NULL);
		memcpy(b1, in->data + n0, in->len - n0);
		check(rte_pktmbuf_chain(m, ext_mbuf(b1, in->len - n0, &sh[1])) == 0);
	}
	vhost_offload(in, m);
	l4 = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
	csum_at = m->l2_len + m->l3_len +
		  (l4 == RTE_MBUF_F_TX_TCP_CKSUM ? offsetof(struct rte_tcp_hdr, cksum)
						 : offsetof(struct rte_udp_hdr, dgram_cksum));
	completes = l4 != 0 && (uint32_t)csum_at + 2 <= n0;
	if (shared)
		rte_pktmbuf_refcnt_update(m, 1); /* every segment, as flood() does */
	r = complete_l4_csum(c, m);
	check(r != NULL);
	if (shared) {
		/* Ours is untouched, flags included; a copy was edited. */
		check(completes == (r != m));
		check(memcmp(b0, in->data, n0) == 0 &&
			(b1 == NULL || memcmp(b1, in->data + n0, in->len - n0) == 0));
		check((m->ol_flags & RTE_MBUF_F_TX_L4_MASK) == l4);
		rte_pktmbuf_free(m);
	}
	check(r->pkt_len == in->len);
	out = malloc(in->len);
	check(out != NULL);
	{
		const void *d = rte_pktmbuf_read(r, 0, in->len, out);

		check(d != NULL);
		if (d != out)
			memcpy(out, d, in->len);
	}
	if (completes) {
		check(!(r->ol_flags & (RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IP_CKSUM)));
		check(memcmp(out, in->data, csum_at) == 0 &&
			memcmp(out + csum_at + 2, in->data + csum_at + 2, in->len - csum_at - 2) ==
				0);
		check(l4_verifies(out, in->len, r->l2_len, r->l3_len,
			(r->ol_flags & RTE_MBUF_F_TX_IPV4) != 0,
			l4 == RTE_MBUF_F_TX_TCP_CKSUM ? IPPROTO_TCP : IPPROTO_UDP));
	} else {
		check(memcmp(out, in->data, in->len) == 0);
	}
	free(out);
	rte_pktmbuf_free(r);
	free(b0);
	free(b1);
}

/* ---- B: switching on a bridge of sink ports ------------------------------- */

struct fx {
	struct dp_snapshot *snap;
	struct fwd_ctx ctx;
	struct port ports[N_PORTS];
	struct port_stats *stats[N_PORTS];
	struct bridge br;
	struct mac_table macs;
	uint64_t trunks[N_PORTS][64];
};

static struct fx *fx;
static uint16_t in_port;
static unsigned int n_frames;
static struct vnet_in frames[MAX_FRAMES];
static uint16_t in_l2[MAX_FRAMES];
static uint64_t in_l4[MAX_FRAMES];
static uint8_t delivered[MAX_FRAMES][N_PORTS];
/* The last frame each port sent: frames leave a port in ingress order. */
static int last_sent[N_PORTS];
/*
 * Station q (02:00:00:00:00:0q) is learnt on port q before the burst, in
 * VLAN 0 and in each port's tag .. tag+7, so that bursts have known
 * destinations (and runs of frames to them).
 */
static int
station_of(const uint8_t *mac)
{
	static const uint8_t st[5] = {0x02, 0, 0, 0, 0};

	return memcmp(mac, st, sizeof(st)) == 0 && mac[5] < N_PORTS ? mac[5] : -1;
}

static void
hook(uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	static uint8_t out[MAX_LEN + 8], want[MAX_LEN + 8];

	check(port < N_PORTS && port != in_port);
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		const struct dp_port_view *v = &fx->snap->ports[port];
		uint32_t k = m->hash.fdir.hi - 1;
		const struct vnet_in *f;
		const struct dp_port_view *iv = &fx->snap->ports[in_port];
		bool tagged, want_tag;
		uint16_t vlan, wlen;
		const void *d;

		check(k < n_frames);
		f = &frames[k];
		check(!delivered[k][port]);
		delivered[k][port] = 1;
		check(v->up && v->bridge == 0);
		tagged = f->len >= 18 && f->data[12] == 0x81 && f->data[13] == 0x00;
		vlan = tagged ? (uint16_t)((f->data[14] << 8 | f->data[15]) & 0xfff) : 0;
		if (iv->vlan_mode == VLAN_MODE_ACCESS)
			vlan = iv->tag;
		check(vlan_member(v, vlan));
		check((int)k > last_sent[port]);
		last_sent[port] = (int)k;
		/* A frame to a known station goes there and nowhere else. */
		if (f->len >= 6) {
			int q = station_of(f->data);

			/* Still there now: it was there when the frame was switched. */
			if (q >= 0 && q != in_port &&
				mac_table_lookup(&fx->macs, f->data, vlan) == q &&
				vlan_member(&fx->snap->ports[q], vlan))
				check(port == q);
		}
		want_tag = egress_tagged(v, vlan);
		/* The expected bytes: outer tag as the egress port wants it. */
		memcpy(want, f->data, 12);
		wlen = 12;
		if (want_tag && tagged) {
			memcpy(want + 12, f->data + 12, 4);
			wlen = 16;
		} else if (want_tag) {
			want[12] = 0x81;
			want[13] = 0x00;
			want[14] = (uint8_t)(vlan >> 8);
			want[15] = (uint8_t)vlan;
			wlen = 16;
		}
		memcpy(want + wlen, f->data + (tagged ? 16 : 12), f->len - (tagged ? 16 : 12));
		wlen += f->len - (tagged ? 16 : 12);
		check(m->pkt_len == wlen);
		d = rte_pktmbuf_read(m, 0, wlen, out);
		check(d != NULL && memcmp(d, want, wlen) == 0);
		check((m->ol_flags & RTE_MBUF_F_TX_L4_MASK) == in_l4[k]);
		if (in_l4[k] != 0)
			check(m->l2_len == in_l2[k] - (tagged ? 4 : 0) + (want_tag ? 4 : 0));
	}
}

static int
eal_init(void)
{
	char prefix[64];
	char *argv[] = {"fuzz_net", "--no-huge", "-m", "64", "--no-pci", prefix, "--lcores", "0@0",
		"--log-level=crit", "--no-shconf", "--no-telemetry", NULL};

	snprintf(prefix, sizeof(prefix), "--file-prefix=fuzz-net-%d", (int)getpid());
	if (rte_eal_init((int)RTE_DIM(argv) - 1, argv) < 0)
		return -1;
	pool = rte_pktmbuf_pool_create(
		"fuzz_net", N_MBUFS, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	return pool != NULL ? 0 : -1;
}

static void
fx_init(void)
{
	fx = calloc(1, sizeof(*fx));
	check(fx != NULL);
	fx->snap = calloc(1, sizeof(*fx->snap));
	check(fx->snap != NULL);
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		fx->snap->ports[i].bridge = DP_NONE;
		fx->snap->ports[i].peer = DP_NONE;
		fx->snap->ports[i].vid = -1;
	}
	fx->br.macs = &fx->macs;
	fx->snap->bridges[0].br = &fx->br;
	fx->snap->n_pmd = 1;
	fx->ctx.snap = fx->snap;
	fx->ctx.mp = pool;
	for (uint16_t i = 0; i < N_PORTS; i++) {
		fx->stats[i] = aligned_alloc(RTE_CACHE_LINE_SIZE, sizeof(struct port_stats));
		check(fx->stats[i] != NULL);
		fx->ports[i].stats = fx->stats[i];
		fx->ports[i].idx = i;
		fx->ports[i].vid = -1;
		fx->snap->bridges[0].ports[i] = i;
	}
	fx->snap->bridges[0].n_ports = N_PORTS;
	mac_clock_s = 100;
	fwd_tx_hook = hook;
}

/* Drops counted on the ingress port, and on egress (a unicast to a down port). */
static uint64_t
all_drops(void)
{
	uint64_t n = 0;

	for (int d = 0; d < DROP_MAX; d++) {
		n += fx->stats[in_port]->rx[0].drops[d];
		for (int p = 0; p < N_PORTS; p++)
			n += fx->stats[p]->tx[0][0].drops[d];
	}
	return n;
}

static void
part_b(const uint8_t *cfg, bool small)
{
	struct rte_mbuf *pkts[MAX_FRAMES];
	uint64_t drops;
	unsigned int reached = 0;

	check(mac_table_init(&fx->macs, 256, 300) == 0);
	for (uint16_t i = 0; i < N_PORTS; i++) {
		struct dp_port_view *v = &fx->snap->ports[i];
		uint8_t mode = cfg[2 * i] & 3, tag = cfg[2 * i] >> 2;

		memset(fx->stats[i], 0, sizeof(struct port_stats));
		memset(fx->trunks[i], 0, sizeof(fx->trunks[i]));
		v->port = &fx->ports[i];
		v->type = PORT_SINK;
		v->bridge = 0;
		v->up = mode != 3;
		v->max_frame = small ? 64 : 1518;
		v->tag = tag;
		v->vlan_mode = mode == 0   ? VLAN_MODE_ACCESS
			       : mode == 1 ? VLAN_MODE_TRUNK
					   : VLAN_MODE_TRUNK_ALL;
		for (int b = 0; b < 8; b++)
			if (cfg[2 * i + 1] >> b & 1)
				fx->trunks[i][(tag + b) >> 6] |= 1ULL << ((tag + b) & 63);
		v->trunks = fx->trunks[i];
	}
	memset(delivered, 0, sizeof(delivered));
	for (uint16_t q = 0; q < N_PORTS; q++) {
		const uint8_t st[6] = {0x02, 0, 0, 0, 0, (uint8_t)q};

		last_sent[q] = -1;
		for (int b = -1; b < 8; b++)
			mac_table_learn(&fx->macs, st,
				b < 0 ? 0 : (uint16_t)(fx->snap->ports[q].tag + b) & 0xfff, q);
	}
	for (unsigned int k = 0; k < n_frames; k++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
		uint8_t *p;

		check(m != NULL);
		p = (uint8_t *)rte_pktmbuf_append(m, frames[k].len);
		check(p != NULL || frames[k].len == 0);
		if (frames[k].len > 0)
			memcpy(p, frames[k].data, frames[k].len);
		vhost_offload(&frames[k], m);
		in_l2[k] = m->l2_len;
		in_l4[k] = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
		m->hash.fdir.hi = k + 1;
		pkts[k] = m;
	}
	drops = all_drops();
	fwd_process(&fx->ctx, in_port, 0, pkts, (uint16_t)n_frames);
	fwd_flush(&fx->ctx);
	for (unsigned int k = 0; k < n_frames; k++)
		for (int p = 0; p < N_PORTS; p++)
			if (delivered[k][p]) {
				reached++;
				break;
			}
	/* Every frame went somewhere or was counted. */
	check(reached + (all_drops() - drops) >= n_frames);
	check(fx->ctx.n_dirty == 0);
	mac_table_fini(&fx->macs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (eal_init() < 0) {
		fprintf(stderr, "fuzz_net: rte_eal_init failed\n");
		exit(1);
	}
	fx_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = HDR;

	if (size < HDR)
		return 0;
	in_port = data[0] & 3;
	n_frames = 0;
	while (n_frames < MAX_FRAMES && pos + 7 <= size) {
		struct vnet_in *f = &frames[n_frames];
		uint16_t len = (uint16_t)(data[pos + 5] | data[pos + 6] << 8) % (MAX_LEN + 1);

		f->flags = data[pos];
		f->csum_start = (uint16_t)(data[pos + 1] | data[pos + 2] << 8);
		f->csum_offset = (uint16_t)(data[pos + 3] | data[pos + 4] << 8);
		pos += 7;
		if (len > size - pos)
			len = (uint16_t)(size - pos);
		f->data = data + pos;
		f->len = len;
		pos += len;
		n_frames++;
	}
	for (unsigned int k = 0; k < n_frames; k++)
		part_a(&fx->ctx, &frames[k], data[0] & 4,
			(data[0] & 8) ? frames[k].csum_start + 3 : 0);
	part_b(data + 1, data[0] & 0x10);
	/* Nothing leaked, nothing freed twice. */
	check(rte_mempool_avail_count(pool) == N_MBUFS);
	return 0;
}
