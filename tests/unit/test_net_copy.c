/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of vhost/net_copy.c on fake guest memory: two guests, A (the
 * sender, its transmit queue) and B (the receiver, its receive queue), each
 * with one malloc'd region and its own memory table, desc/avail/used rings.
 * Both guests' RAM starts at the same GPA, so a buffer mapped through the
 * wrong guest's table shows up as wrong data. No EAL.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "net_copy.h"
#include "virtq.h"

#define QSIZE 64
#define REG_SIZE 0x40000ULL
#define GPA_BASE 0x100000ULL
#define GPA_DESC GPA_BASE
#define GPA_AVAIL (GPA_BASE + 0x1000)
#define GPA_USED (GPA_BASE + 0x2000)
#define GPA_DATA (GPA_BASE + 0x4000) /* buffers are allocated from here */
#define GPA_BAD 0x50000000ULL        /* in neither guest's memory */
#define MAX_FRAME 9000

#define FEAT_MRG (1ULL << VIRTIO_NET_F_MRG_RXBUF)
#define FEAT_V1 (1ULL << VIRTIO_F_VERSION_1)

struct guest {
	void *buf;
	struct rte_vhost_memory *mem;
	struct rte_vhost_vring vring;
	struct virtq vq;
	uint16_t next_desc; /* next free descriptor (the tests never run out) */
	uint64_t next_gpa;  /* bump allocator for buffers */
};

static struct guest ga, gb;
static struct net_copy_side tx, rx;
static struct net_copy_result res;

static void *
hva(struct guest *g, uint64_t gpa)
{
	if (gpa < GPA_BASE || gpa >= GPA_BASE + REG_SIZE)
		fail_msg("test bug: gpa 0x%llx not in memory", (unsigned long long)gpa);
	return (char *)g->buf + (gpa - GPA_BASE);
}

static void
guest_init(struct guest *g)
{
	g->mem = calloc(1, sizeof(*g->mem) + sizeof(g->mem->regions[0]));
	assert_non_null(g->mem);
	g->buf = aligned_alloc(4096, REG_SIZE);
	assert_non_null(g->buf);
	memset(g->buf, 0, REG_SIZE);
	g->mem->nregions = 1;
	g->mem->regions[0].guest_phys_addr = GPA_BASE;
	g->mem->regions[0].size = REG_SIZE;
	g->mem->regions[0].host_user_addr = (uintptr_t)g->buf;
	memset(&g->vring, 0, sizeof(g->vring));
	g->vring.desc = hva(g, GPA_DESC);
	g->vring.avail = hva(g, GPA_AVAIL);
	g->vring.used = hva(g, GPA_USED);
	g->vring.size = QSIZE;
	virtq_init(&g->vq, &g->vring, g->mem, 0, 0, 0);
	g->next_desc = 0;
	g->next_gpa = GPA_DATA;
}

/* Side settings as a device with @features negotiated would have them. */
static void
set_side(struct net_copy_side *s, struct guest *g, uint64_t features, bool csum)
{
	s->vq = &g->vq;
	s->hdr_len = net_copy_hdr_len(features);
	s->mrg_rxbuf = (features & FEAT_MRG) != 0;
	s->csum = csum;
}

static int
setup(void **state)
{
	(void)state;
	guest_init(&ga);
	guest_init(&gb);
	set_side(&tx, &ga, FEAT_V1, false);
	set_side(&rx, &gb, FEAT_V1, false);
	memset(&res, 0xa5, sizeof(res)); /* net_copy_burst must clear it */
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(ga.buf);
	free(ga.mem);
	free(gb.buf);
	free(gb.mem);
	return 0;
}

static uint64_t
alloc_data(struct guest *g, uint32_t len)
{
	uint64_t gpa = g->next_gpa;

	g->next_gpa += (len + 63) & ~63U;
	assert_true(g->next_gpa <= GPA_BASE + REG_SIZE);
	return gpa;
}

/* Descriptors for @n segments, chained in order; @flags on each. Returns the head. */
static uint16_t
add_chain(struct guest *g, const uint64_t *gpa, const uint32_t *len, unsigned int n, uint16_t flags)
{
	uint16_t head = g->next_desc, i = head;

	for (unsigned int k = 0; k < n; k++) {
		uint16_t next = (uint16_t)((i + 1) % QSIZE);
		struct vring_desc *d = &g->vring.desc[i];

		d->addr = gpa[k];
		d->len = len[k];
		d->flags = flags | (k + 1 < n ? VRING_DESC_F_NEXT : 0);
		d->next = k + 1 < n ? next : 0;
		i = next;
	}
	g->next_desc = i;
	return head;
}

static void
publish(struct guest *g, uint16_t head)
{
	g->vring.avail->ring[g->vring.avail->idx % QSIZE] = head;
	g->vring.avail->idx++;
}

static void
make_frame(uint8_t *f, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		f[i] = (uint8_t)(i * 7 + seed + (i >> 8));
}

/* How A lays out one frame in its descriptors. */
enum layout {
	L_ONE,       /* header and frame in one descriptor */
	L_HDR,       /* header alone, then the frame */
	L_HDR_DATA2, /* header alone, then the frame in two descriptors */
	L_HDR_SPLIT, /* 5 header bytes, then the rest of the header and the frame */
};

/* Queue a frame on A's transmit ring with header @th; returns the head. */
static uint16_t
tx_frame_hdr(const struct virtio_net_hdr_mrg_rxbuf *th, const uint8_t *frame, uint32_t flen,
	enum layout l)
{
	uint32_t hl = tx.hdr_len, total = hl + flen;
	uint64_t gpa = alloc_data(&ga, total), g[3];
	uint32_t len[3];
	unsigned int n;
	uint16_t head;

	memcpy(hva(&ga, gpa), th, hl);
	memcpy(hva(&ga, gpa + hl), frame, flen);
	switch (l) {
	case L_ONE:
		g[0] = gpa;
		len[0] = total;
		n = 1;
		break;
	case L_HDR:
		g[0] = gpa;
		len[0] = hl;
		g[1] = gpa + hl;
		len[1] = flen;
		n = 2;
		break;
	case L_HDR_DATA2:
		g[0] = gpa;
		len[0] = hl;
		g[1] = gpa + hl;
		len[1] = flen / 3;
		g[2] = gpa + hl + flen / 3;
		len[2] = flen - flen / 3;
		n = 3;
		break;
	case L_HDR_SPLIT:
	default:
		g[0] = gpa;
		len[0] = 5;
		g[1] = gpa + 5;
		len[1] = total - 5;
		n = 2;
		break;
	}
	head = add_chain(&ga, g, len, n, 0);
	publish(&ga, head);
	return head;
}

static uint16_t
tx_frame(const uint8_t *frame, uint32_t flen, enum layout l)
{
	struct virtio_net_hdr_mrg_rxbuf th;

	memset(&th, 0, sizeof(th));
	return tx_frame_hdr(&th, frame, flen, l);
}

/* A transmit chain of one descriptor, not necessarily sensible. */
static uint16_t
tx_raw(uint64_t gpa, uint32_t len)
{
	uint16_t head = add_chain(&ga, &gpa, &len, 1, 0);

	publish(&ga, head);
	return head;
}

/* Post a receive buffer of @n writable segments (filled with 0xee). */
static uint16_t
rx_buf_segs(const uint32_t *len, unsigned int n)
{
	uint64_t gpa[8];
	uint16_t head;

	assert_true(n <= 8);
	for (unsigned int k = 0; k < n; k++) {
		gpa[k] = alloc_data(&gb, len[k]);
		memset(hva(&gb, gpa[k]), 0xee, len[k]);
	}
	head = add_chain(&gb, gpa, len, n, VRING_DESC_F_WRITE);
	publish(&gb, head);
	return head;
}

static uint16_t
rx_buf(uint32_t len)
{
	return rx_buf_segs(&len, 1);
}

/* Copy up to @max bytes of B's buffer @head (its writable segments) into @out. */
static uint32_t
rx_read(uint16_t head, uint8_t *out, uint32_t max)
{
	uint32_t got = 0;
	uint16_t i = head;

	for (unsigned int guard = 0; guard < QSIZE; guard++) {
		const struct vring_desc *d = &gb.vring.desc[i];
		uint32_t n = d->len < max - got ? d->len : max - got;

		memcpy(out + got, hva(&gb, d->addr), n);
		got += n;
		if (!(d->flags & VRING_DESC_F_NEXT) || got == max)
			break;
		i = d->next;
	}
	return got;
}

/* Used element @k of guest @g (pushed, whether published or not). */
static void
expect_used(struct guest *g, uint16_t k, uint16_t id, uint32_t len)
{
	const struct vring_used_elem *e = &g->vring.used->ring[k % QSIZE];

	assert_int_equal(e->id, id);
	assert_int_equal(e->len, len);
}

static int
burst(unsigned int max)
{
	return net_copy_burst(&tx, &rx, MAX_FRAME, 0, max, &res);
}

/* Everything of @res zero but what the test then checks. */
static void
expect_res(uint16_t frames, uint64_t bytes, uint16_t tx_done, uint16_t too_big, uint16_t bad_tx,
	uint16_t bad_rx, bool rx_full)
{
	assert_int_equal(res.frames, frames);
	assert_int_equal(res.bytes, bytes);
	assert_int_equal(res.tx_done, tx_done);
	assert_int_equal(res.too_big, too_big);
	assert_int_equal(res.bad_tx, bad_tx);
	assert_int_equal(res.bad_rx, bad_rx);
	assert_int_equal(res.rx_full, rx_full);
}

/* B's buffer @head holds header (@num_buffers) and @frame after @hdr_len bytes. */
static void
expect_delivered(uint16_t head, const uint8_t *frame, uint32_t flen)
{
	static uint8_t got[MAX_FRAME + 64];
	struct virtio_net_hdr_mrg_rxbuf rh;

	assert_int_equal(rx_read(head, got, rx.hdr_len + flen), rx.hdr_len + flen);
	memcpy(&rh, got, sizeof(rh));
	assert_int_equal(rh.hdr.flags, 0);
	assert_int_equal(rh.hdr.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(rh.hdr.hdr_len, 0);
	assert_int_equal(rh.hdr.gso_size, 0);
	assert_int_equal(rh.hdr.csum_start, 0);
	assert_int_equal(rh.hdr.csum_offset, 0);
	if (rx.hdr_len == sizeof(rh))
		assert_int_equal(rh.num_buffers, 1);
	assert_memory_equal(got + rx.hdr_len, frame, flen);
}

static void
hdr_len_features(void **state)
{
	(void)state;
	assert_int_equal(net_copy_hdr_len(0), 10);
	assert_int_equal(net_copy_hdr_len(FEAT_MRG), 12);
	assert_int_equal(net_copy_hdr_len(FEAT_V1), 12);
	assert_int_equal(net_copy_hdr_len(FEAT_MRG | FEAT_V1), 12);
	assert_int_equal(
		net_copy_hdr_len(1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
				 1ULL << VIRTIO_RING_F_EVENT_IDX),
		10);
	assert_int_equal(net_copy_hdr_len(~(FEAT_MRG | FEAT_V1)), 10);
	assert_int_equal(net_copy_hdr_len(UINT64_MAX), 12);
}

/* One frame between A and B with features @feat_a / @feat_b (no MRG_RXBUF). */
static void
one_frame(uint64_t feat_a, uint64_t feat_b, uint32_t flen, enum layout l)
{
	static uint8_t frame[2000];
	uint16_t a, b;

	set_side(&tx, &ga, feat_a, false);
	set_side(&rx, &gb, feat_b, false);
	make_frame(frame, flen, (uint8_t)flen);
	b = rx_buf(2048);
	a = tx_frame(frame, flen, l);
	assert_int_equal(burst(32), 0);
	expect_res(1, flen, 1, 0, 0, 0, false);
	assert_null(res.why);
	expect_delivered(b, frame, flen);
	/* Pushed, not published: the module leaves that to the caller. */
	assert_int_equal(ga.vq.last_used_idx, 1);
	assert_int_equal(gb.vq.last_used_idx, 1);
	assert_int_equal(ga.vring.used->idx, 0);
	assert_int_equal(gb.vring.used->idx, 0);
	expect_used(&ga, 0, a, 0);
	expect_used(&gb, 0, b, rx.hdr_len + flen);
	virtq_flush(&ga.vq);
	virtq_flush(&gb.vq);
	assert_int_equal(ga.vring.used->idx, 1);
	assert_int_equal(gb.vring.used->idx, 1);
	assert_int_equal(virtq_pending(&ga.vq), 0);
	assert_int_equal(virtq_pending(&gb.vq), 0);
}

static void
round_trip_hdr12(void **state)
{
	(void)state;
	one_frame(FEAT_V1, FEAT_V1, 60, L_ONE);
}

static void
round_trip_hdr10(void **state)
{
	(void)state;
	one_frame(0, 0, 1514, L_ONE);
}

static void
round_trip_mixed_hdr(void **state)
{
	(void)state;
	one_frame(0, FEAT_V1, 100, L_HDR);
}

static void
round_trip_mixed_hdr2(void **state)
{
	(void)state;
	one_frame(FEAT_V1 | FEAT_MRG, 0, 1, L_HDR_SPLIT);
}

static void
round_trip_layouts(void **state)
{
	(void)state;
	one_frame(FEAT_V1, FEAT_V1, 1000, L_HDR_DATA2);
}

/*
 * B posts 256-byte buffers: a 1000-byte frame with a 12-byte header takes
 * 256 + 256 + 256 + 244 bytes of four of them.
 */
static void
mergeable_spans(void **state)
{
	static uint8_t frame[1000], got[1100];
	uint16_t b[6], a;
	struct virtio_net_hdr_mrg_rxbuf rh;
	uint32_t off = 0;

	(void)state;
	set_side(&rx, &gb, FEAT_MRG | FEAT_V1, false);
	for (int k = 0; k < 6; k++)
		b[k] = rx_buf(256);
	make_frame(frame, sizeof(frame), 3);
	a = tx_frame(frame, sizeof(frame), L_HDR_DATA2);
	assert_int_equal(burst(32), 0);
	expect_res(1, 1000, 1, 0, 0, 0, false);
	expect_used(&ga, 0, a, 0);
	assert_int_equal(gb.vq.last_used_idx, 4);
	for (int k = 0; k < 4; k++) {
		uint32_t len = k < 3 ? 256 : 1012 - 3 * 256;

		expect_used(&gb, (uint16_t)k, b[k], len);
		assert_int_equal(rx_read(b[k], got + off, len), len);
		off += len;
	}
	memcpy(&rh, got, sizeof(rh));
	assert_int_equal(rh.num_buffers, 4);
	assert_int_equal(rh.hdr.flags, 0);
	assert_int_equal(rh.hdr.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_memory_equal(got + 12, frame, sizeof(frame));
	/* The rest of the fourth buffer and the others are untouched. */
	assert_int_equal(((uint8_t *)hva(&gb, gb.vring.desc[b[3]].addr))[244], 0xee);
	assert_int_equal(virtq_pending(&gb.vq), 2);
	assert_int_equal(gb.vring.used->idx, 0);
	virtq_flush(&gb.vq);
	assert_int_equal(gb.vring.used->idx, 4);

	/* A frame that fits one buffer: num_buffers 1. */
	make_frame(frame, 200, 9);
	tx_frame(frame, 200, L_ONE);
	assert_int_equal(burst(32), 0);
	expect_res(1, 200, 1, 0, 0, 0, false);
	expect_used(&gb, 4, b[4], 212);
	expect_delivered(b[4], frame, 200);
}

/* Several segments on both sides, the header of B split over two. */
static void
segments_both_sides(void **state)
{
	static uint8_t frame[1500], got[3000];
	const uint32_t segs[3] = {5, 600, 1000};
	const uint32_t msegs[2] = {100, 156};
	uint16_t b, bm[8];
	uint32_t off = 0;
	struct virtio_net_hdr_mrg_rxbuf rh;

	(void)state;
	make_frame(frame, sizeof(frame), 77);
	b = rx_buf_segs(segs, 3);
	tx_frame(frame, sizeof(frame), L_HDR_DATA2);
	assert_int_equal(burst(32), 0);
	expect_res(1, 1500, 1, 0, 0, 0, false);
	expect_used(&gb, 0, b, 1512);
	expect_delivered(b, frame, sizeof(frame));

	/* Mergeable, every buffer in two segments (100 + 156 bytes). */
	set_side(&rx, &gb, FEAT_MRG | FEAT_V1, false);
	for (int k = 0; k < 8; k++)
		bm[k] = rx_buf_segs(msegs, 2);
	tx_frame(frame, sizeof(frame), L_HDR_SPLIT);
	assert_int_equal(burst(32), 0);
	expect_res(1, 1500, 1, 0, 0, 0, false);
	/* 1512 bytes: five full buffers and 232 of a sixth. */
	for (int k = 0; k < 6; k++) {
		uint32_t len = k < 5 ? 256 : 1512 - 5 * 256;

		expect_used(&gb, (uint16_t)(1 + k), bm[k], len);
		assert_int_equal(rx_read(bm[k], got + off, len), len);
		off += len;
	}
	memcpy(&rh, got, sizeof(rh));
	assert_int_equal(rh.num_buffers, 6);
	assert_memory_equal(got + 12, frame, sizeof(frame));
	assert_int_equal(virtq_pending(&gb.vq), 2);
}

/* Without MRG_RXBUF a frame B's buffer cannot hold is dropped; the buffer stays. */
static void
rx_buffer_too_small(void **state)
{
	static uint8_t frame[500];
	uint16_t a, a2, b;

	(void)state;
	b = rx_buf(100);
	make_frame(frame, sizeof(frame), 1);
	a = tx_frame(frame, sizeof(frame), L_ONE);
	assert_int_equal(burst(32), 0);
	expect_res(0, 0, 1, 1, 0, 0, false);
	expect_used(&ga, 0, a, 0);
	assert_int_equal(ga.vq.last_used_idx, 1);
	assert_int_equal(gb.vq.last_used_idx, 0);
	assert_int_equal(virtq_pending(&gb.vq), 1);
	assert_int_equal(virtq_pending(&ga.vq), 0);

	/* Exactly header + frame fits. */
	a2 = tx_frame(frame, 100 - 12, L_HDR);
	assert_int_equal(burst(32), 0);
	expect_res(1, 88, 1, 0, 0, 0, false);
	expect_used(&ga, 1, a2, 0);
	expect_used(&gb, 0, b, 100);
	expect_delivered(b, frame, 88);
}

/* No receive buffer: A's frames wait in A's ring, then go through in order. */
static void
rx_ring_empty(void **state)
{
	static uint8_t frame[3][300];
	uint16_t a[3], b[3];

	(void)state;
	for (int k = 0; k < 3; k++) {
		make_frame(frame[k], 300, (uint8_t)(k * 50));
		a[k] = tx_frame(frame[k], (uint32_t)(100 + 100 * k), L_ONE);
	}
	assert_int_equal(virtq_pending(&ga.vq), 3);
	assert_int_equal(burst(32), 0);
	expect_res(0, 0, 0, 0, 0, 0, true);
	assert_int_equal(virtq_pending(&ga.vq), 3);
	assert_int_equal(ga.vq.last_used_idx, 0);
	assert_int_equal(gb.vq.last_used_idx, 0);
	assert_false(virtq_flush(&ga.vq));
	assert_int_equal(ga.vring.used->idx, 0);
	/* Again: still nothing lost, nothing moved. */
	assert_int_equal(burst(32), 0);
	expect_res(0, 0, 0, 0, 0, 0, true);
	assert_int_equal(virtq_pending(&ga.vq), 3);

	/* One buffer: one frame, then full again. */
	b[0] = rx_buf(2048);
	assert_int_equal(burst(32), 0);
	expect_res(1, 100, 1, 0, 0, 0, true);
	assert_int_equal(virtq_pending(&ga.vq), 2);
	expect_used(&ga, 0, a[0], 0);
	expect_delivered(b[0], frame[0], 100);

	b[1] = rx_buf(2048);
	b[2] = rx_buf(2048);
	assert_int_equal(burst(32), 0);
	expect_res(2, 500, 2, 0, 0, 0, false);
	assert_int_equal(virtq_pending(&ga.vq), 0);
	expect_used(&ga, 1, a[1], 0);
	expect_used(&ga, 2, a[2], 0);
	for (int k = 0; k < 3; k++) {
		expect_used(&gb, (uint16_t)k, b[k], (uint32_t)(12 + 100 + 100 * k));
		expect_delivered(b[k], frame[k], (uint32_t)(100 + 100 * k));
	}
	assert_int_equal(burst(32), 0);
	expect_res(0, 0, 0, 0, 0, 0, false);
}

/* B runs out in the middle of a mergeable frame: its buffers are given back. */
static void
rx_runs_out_mid_frame(void **state)
{
	static uint8_t frame[1000], got[1100];
	uint16_t a, b[4];
	uint32_t off = 0;

	(void)state;
	set_side(&rx, &gb, FEAT_MRG | FEAT_V1, false);
	b[0] = rx_buf(256);
	b[1] = rx_buf(256);
	make_frame(frame, sizeof(frame), 5);
	a = tx_frame(frame, sizeof(frame), L_ONE);
	assert_int_equal(burst(32), 0);
	expect_res(0, 0, 0, 0, 0, 0, true);
	assert_int_equal(virtq_pending(&gb.vq), 2);
	assert_int_equal(virtq_pending(&ga.vq), 1);
	assert_int_equal(gb.vq.last_used_idx, 0);
	assert_int_equal(ga.vq.last_used_idx, 0);

	b[2] = rx_buf(256);
	b[3] = rx_buf(256);
	assert_int_equal(burst(32), 0);
	expect_res(1, 1000, 1, 0, 0, 0, false);
	expect_used(&ga, 0, a, 0);
	for (int k = 0; k < 4; k++) {
		uint32_t len = k < 3 ? 256 : 1012 - 3 * 256;

		expect_used(&gb, (uint16_t)k, b[k], len);
		assert_int_equal(rx_read(b[k], got + off, len), len);
		off += len;
	}
	assert_int_equal(got[10], 4); /* num_buffers, little-endian */
	assert_int_equal(got[11], 0);
	assert_memory_equal(got + 12, frame, sizeof(frame));
	assert_int_equal(virtq_pending(&gb.vq), 0);
}

/* More than NET_COPY_MAX_RX_BUFS buffers needed: dropped, buffers kept. */
static void
mergeable_too_many_buffers(void **state)
{
	static uint8_t frame[2100];
	uint16_t a, a2;

	(void)state;
	set_side(&rx, &gb, FEAT_MRG | FEAT_V1, false);
	/* 32-byte buffers: 20 data bytes in the first, 32 in the others. */
	for (int k = 0; k < QSIZE; k++)
		rx_buf(32);
	make_frame(frame, sizeof(frame), 8);
	a = tx_frame(frame, 20 + 32 * (NET_COPY_MAX_RX_BUFS - 1) + 1, L_ONE);
	assert_int_equal(burst(32), 0);
	expect_res(0, 0, 1, 1, 0, 0, false);
	expect_used(&ga, 0, a, 0);
	assert_int_equal(gb.vq.last_used_idx, 0);
	assert_int_equal(virtq_pending(&gb.vq), QSIZE);

	/* One byte less takes all 64. */
	a2 = tx_frame(frame, 20 + 32 * (NET_COPY_MAX_RX_BUFS - 1), L_ONE);
	assert_int_equal(burst(32), 0);
	expect_res(1, 20 + 32 * (NET_COPY_MAX_RX_BUFS - 1), 1, 0, 0, 0, false);
	expect_used(&ga, 1, a2, 0);
	assert_int_equal(gb.vq.last_used_idx, NET_COPY_MAX_RX_BUFS);
	assert_int_equal(virtq_pending(&gb.vq), QSIZE - NET_COPY_MAX_RX_BUFS);
}

/* Longer than max_frame: dropped, A completed, B untouched. */
static void
frame_over_max(void **state)
{
	static uint8_t frame[1600];
	uint16_t a, a2, b;

	(void)state;
	b = rx_buf(4096);
	make_frame(frame, sizeof(frame), 2);
	a = tx_frame(frame, 1519, L_HDR);
	a2 = tx_frame(frame, 1518, L_HDR);
	assert_int_equal(net_copy_burst(&tx, &rx, 1518, 0, 1, &res), 0);
	expect_res(0, 0, 1, 1, 0, 0, false);
	expect_used(&ga, 0, a, 0);
	assert_int_equal(gb.vq.last_used_idx, 0);
	assert_int_equal(virtq_pending(&gb.vq), 1);
	for (uint32_t i = 0; i < 4096; i++)
		assert_int_equal(((uint8_t *)hva(&gb, gb.vring.desc[b].addr))[i], 0xee);
	assert_int_equal(virtq_pending(&ga.vq), 1);

	/* max_frame itself is allowed. */
	assert_int_equal(net_copy_burst(&tx, &rx, 1518, 0, 32, &res), 0);
	expect_res(1, 1518, 1, 0, 0, 0, false);
	expect_used(&ga, 1, a2, 0);
	expect_delivered(b, frame, 1518);
}

/*
 * min_frame: the first frame that size or smaller stops the burst, and it and
 * every frame after it stay in A's ring, in order, for the mbuf path.
 */
static void
small_frames_left(void **state)
{
	static uint8_t big[1518], small[256];
	uint16_t a[3], b[3];

	(void)state;
	make_frame(big, sizeof(big), 5);
	make_frame(small, sizeof(small), 6);
	for (int k = 0; k < 3; k++)
		b[k] = rx_buf(2048);
	a[0] = tx_frame(big, 257, L_ONE);
	a[1] = tx_frame(small, 256, L_ONE);
	a[2] = tx_frame(big, sizeof(big), L_ONE);
	assert_int_equal(net_copy_burst(&tx, &rx, 1518, 256, 32, &res), 0);
	expect_res(1, 257, 1, 0, 0, 0, false);
	assert_true(res.small);
	expect_used(&ga, 0, a[0], 0);
	expect_delivered(b[0], big, 257);
	assert_int_equal(virtq_pending(&ga.vq), 2);
	assert_int_equal(virtq_pending(&gb.vq), 2);
	/* Nothing left but a small frame: nothing taken. */
	assert_int_equal(net_copy_burst(&tx, &rx, 1518, 256, 32, &res), 0);
	expect_res(0, 0, 0, 0, 0, 0, false);
	assert_true(res.small);
	assert_int_equal(virtq_pending(&ga.vq), 2);
	/* Without a floor both go, in order. */
	assert_int_equal(burst(32), 0);
	expect_res(2, 256 + sizeof(big), 2, 0, 0, 0, false);
	assert_false(res.small);
	expect_used(&ga, 1, a[1], 0);
	expect_used(&ga, 2, a[2], 0);
	expect_delivered(b[1], small, 256);
	expect_delivered(b[2], big, sizeof(big));
}

/* A's chains that lie are completed empty; the next frame still goes. */
static void
bad_tx_chains(void **state)
{
	static uint8_t frame[64];
	uint64_t gpa = alloc_data(&ga, 64);
	uint16_t a[5], b;

	(void)state;
	make_frame(frame, sizeof(frame), 4);
	b = rx_buf(2048);
	a[0] = tx_raw(gpa, 12);                       /* the header alone */
	a[1] = tx_raw(gpa, 5);                        /* less than the header */
	a[2] = tx_raw(GPA_BAD, 100);                  /* not in A's memory */
	a[3] = tx_raw(GPA_BASE + REG_SIZE - 50, 100); /* runs past its end */
	a[4] = tx_frame(frame, sizeof(frame), L_ONE);
	assert_int_equal(burst(32), 0);
	expect_res(1, 64, 5, 0, 4, 0, false);
	assert_non_null(res.why);
	for (int k = 0; k < 5; k++)
		expect_used(&ga, (uint16_t)k, a[k], 0);
	expect_used(&gb, 0, b, 76);
	expect_delivered(b, frame, sizeof(frame));
	assert_int_equal(gb.vq.last_used_idx, 1);

	/* A zero-length chain, and one of a zero-length descriptor, one at a time. */
	a[0] = tx_raw(gpa, 0);
	assert_int_equal(burst(1), 0);
	expect_res(0, 0, 1, 0, 1, 0, false);
	assert_non_null(res.why);
	expect_used(&ga, 5, a[0], 0);
	/* A loop. */
	a[1] = ga.next_desc;
	ga.vring.desc[a[1]] = (struct vring_desc){
		.addr = gpa, .len = 100, .flags = VRING_DESC_F_NEXT, .next = a[1]};
	ga.next_desc++;
	publish(&ga, a[1]);
	assert_int_equal(burst(32), 0);
	expect_res(0, 0, 1, 0, 1, 0, false);
	assert_non_null(res.why);
	expect_used(&ga, 6, a[1], 0);
	assert_int_equal(gb.vq.last_used_idx, 1);
	assert_false(ga.vq.broken);
}

/* B's buffers that lie are returned empty and the frame dropped. */
static void
bad_rx_buffers(void **state)
{
	static uint8_t frame[2][400];
	const uint64_t bad = GPA_BAD;
	const uint32_t blen = 2048;
	uint16_t a[2], b[2];

	(void)state;
	b[0] = add_chain(&gb, &bad, &blen, 1, VRING_DESC_F_WRITE);
	publish(&gb, b[0]);
	b[1] = rx_buf(2048);
	for (int k = 0; k < 2; k++) {
		make_frame(frame[k], 400, (uint8_t)(k + 40));
		a[k] = tx_frame(frame[k], 400, L_ONE);
	}
	assert_int_equal(burst(32), 0);
	expect_res(1, 400, 2, 0, 0, 1, false);
	assert_non_null(res.why);
	expect_used(&ga, 0, a[0], 0);
	expect_used(&ga, 1, a[1], 0);
	expect_used(&gb, 0, b[0], 0);
	expect_used(&gb, 1, b[1], 412);
	expect_delivered(b[1], frame[1], 400);
	assert_false(gb.vq.broken);
}

/* A buffer shorter than the header, and a readable-only buffer. */
static void
rx_buffer_without_room_for_header(void **state)
{
	static uint8_t frame[100];
	const uint32_t ro_len = 2048;
	uint64_t ro;
	uint16_t b[3];

	(void)state;
	set_side(&rx, &gb, FEAT_MRG | FEAT_V1, false);
	b[0] = rx_buf(11);
	ro = alloc_data(&gb, ro_len);
	b[1] = add_chain(&gb, &ro, &ro_len, 1, 0);
	publish(&gb, b[1]);
	b[2] = rx_buf(2048);
	make_frame(frame, sizeof(frame), 6);
	for (int k = 0; k < 3; k++)
		tx_frame(frame, sizeof(frame), L_ONE);
	assert_int_equal(burst(32), 0);
	expect_res(1, 100, 3, 0, 0, 2, false);
	expect_used(&gb, 0, b[0], 0);
	expect_used(&gb, 1, b[1], 0);
	expect_used(&gb, 2, b[2], 112);
	expect_delivered(b[2], frame, sizeof(frame));
}

/* A mergeable frame whose second buffer lies: both buffers returned empty. */
static void
bad_rx_mid_frame(void **state)
{
	static uint8_t frame[600];
	const uint64_t bad = GPA_BAD;
	const uint32_t blen = 256;
	uint16_t a[2], b[4];

	(void)state;
	set_side(&rx, &gb, FEAT_MRG | FEAT_V1, false);
	b[0] = rx_buf(256);
	b[1] = add_chain(&gb, &bad, &blen, 1, VRING_DESC_F_WRITE);
	publish(&gb, b[1]);
	b[2] = rx_buf(1024);
	b[3] = rx_buf(1024);
	make_frame(frame, sizeof(frame), 11);
	a[0] = tx_frame(frame, sizeof(frame), L_ONE);
	a[1] = tx_frame(frame, sizeof(frame), L_ONE);
	assert_int_equal(burst(32), 0);
	expect_res(1, 600, 2, 0, 0, 1, false);
	expect_used(&ga, 0, a[0], 0);
	expect_used(&ga, 1, a[1], 0);
	expect_used(&gb, 0, b[0], 0);
	expect_used(&gb, 1, b[1], 0);
	expect_used(&gb, 2, b[2], 612);
	expect_delivered(b[2], frame, sizeof(frame));
	assert_int_equal(virtq_pending(&gb.vq), 1);
}

/* NEEDS_CSUM with (flags, csum_start, csum_offset); gso_type always NONE. */
static void
csum_case(bool tx_csum, bool rx_csum)
{
	static uint8_t frame[200], got[300];
	struct virtio_net_hdr_mrg_rxbuf th, rh;
	bool pass = tx_csum && rx_csum;
	uint16_t b;

	teardown(NULL);
	setup(NULL);
	tx.csum = tx_csum;
	rx.csum = rx_csum;
	memset(&th, 0, sizeof(th));
	th.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	th.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	th.hdr.hdr_len = 54;
	th.hdr.gso_size = 1448;
	th.hdr.csum_start = 34;
	th.hdr.csum_offset = 16;
	th.num_buffers = 0x3333;
	make_frame(frame, sizeof(frame), 12);
	b = rx_buf(1024);
	tx_frame_hdr(&th, frame, sizeof(frame), L_HDR);
	assert_int_equal(burst(32), 0);
	expect_res(1, 200, 1, 0, 0, 0, false);
	assert_int_equal(rx_read(b, got, 212), 212);
	memcpy(&rh, got, sizeof(rh));
	assert_int_equal(rh.hdr.flags, pass ? VIRTIO_NET_HDR_F_NEEDS_CSUM : 0);
	assert_int_equal(rh.hdr.csum_start, pass ? 34 : 0);
	assert_int_equal(rh.hdr.csum_offset, pass ? 16 : 0);
	assert_int_equal(rh.hdr.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(rh.hdr.hdr_len, 0);
	assert_int_equal(rh.hdr.gso_size, 0);
	assert_int_equal(rh.num_buffers, 1);
	assert_memory_equal(got + 12, frame, sizeof(frame));
}

static void
csum_offload(void **state)
{
	(void)state;
	csum_case(true, true);
	csum_case(true, false);
	csum_case(false, true);
	csum_case(false, false);

	/* Other flags (DATA_VALID) are not passed on. */
	{
		static uint8_t frame[80], got[100];
		struct virtio_net_hdr_mrg_rxbuf th;
		uint16_t b;

		memset(&th, 0, sizeof(th));
		th.hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID;
		make_frame(frame, sizeof(frame), 0);
		b = rx_buf(1024);
		tx_frame_hdr(&th, frame, sizeof(frame), L_ONE);
		assert_int_equal(burst(32), 0);
		expect_res(1, 80, 1, 0, 0, 0, false);
		assert_int_equal(rx_read(b, got, 92), 92);
		assert_int_equal(got[0], 0);
	}
}

/* Broken rings: -EINVAL, nothing crashes, nothing published. */
static void
broken_tx_ring(void **state)
{
	static uint8_t frame[64];

	(void)state;
	rx_buf(2048);
	make_frame(frame, sizeof(frame), 0);
	tx_frame(frame, sizeof(frame), L_ONE);
	ga.vring.avail->idx = QSIZE + 1;
	assert_int_equal(burst(32), -EINVAL);
	assert_true(ga.vq.broken);
	assert_int_equal(res.frames, 0);
	assert_int_equal(res.tx_done, 0);
	assert_int_equal(gb.vq.last_used_idx, 0);
	assert_int_equal(virtq_pending(&gb.vq), 1);
	assert_int_equal(burst(32), -EINVAL); /* stays broken */

	/* A head out of range. */
	teardown(NULL);
	setup(NULL);
	rx_buf(2048);
	tx_frame(frame, sizeof(frame), L_ONE);
	publish(&ga, QSIZE);
	assert_int_equal(burst(32), -EINVAL);
	assert_int_equal(gb.vq.last_used_idx, 0);
}

static void
broken_rx_ring(void **state)
{
	static uint8_t frame[64];
	uint16_t a;

	(void)state;
	make_frame(frame, sizeof(frame), 0);
	rx_buf(2048);
	a = tx_frame(frame, sizeof(frame), L_ONE);
	tx_frame(frame, sizeof(frame), L_ONE);
	/* The first frame goes, then B's avail index jumps. */
	assert_int_equal(burst(1), 0);
	expect_res(1, 64, 1, 0, 0, 0, false);
	expect_used(&ga, 0, a, 0);
	gb.vring.avail->idx = (uint16_t)(gb.vq.last_avail_idx + QSIZE + 1);
	assert_int_equal(burst(32), -EINVAL);
	assert_true(gb.vq.broken);
	assert_false(ga.vq.broken);
	assert_int_equal(res.frames, 0);
	assert_int_equal(res.tx_done, 0);
	/* A's frame is still in A's ring. */
	assert_int_equal(virtq_pending(&ga.vq), 1);
	assert_int_equal(ga.vq.last_used_idx, 1);
	assert_int_equal(burst(32), -EINVAL);
	assert_int_equal(virtq_pending(&ga.vq), 1);

	/* B's head out of range, mergeable, in the middle of a frame. */
	teardown(NULL);
	setup(NULL);
	set_side(&rx, &gb, FEAT_MRG | FEAT_V1, false);
	rx_buf(64);
	publish(&gb, QSIZE + 3);
	tx_frame(frame, sizeof(frame), L_ONE);
	assert_int_equal(burst(32), -EINVAL);
	assert_true(gb.vq.broken);
	assert_int_equal(virtq_pending(&ga.vq), 1);
	assert_int_equal(ga.vq.last_used_idx, 0);
	assert_int_equal(gb.vq.last_used_idx, 0);
}

/* 32 frames in one burst of 32. */
static void
burst_32(void **state)
{
	static uint8_t frame[32][128];
	uint16_t a[32], b[32];

	(void)state;
	for (int k = 0; k < 32; k++) {
		b[k] = rx_buf(256);
		make_frame(frame[k], 128, (uint8_t)(k * 3));
		a[k] = tx_frame(frame[k], (uint32_t)(64 + 2 * k), (enum layout)(k % 4));
	}
	assert_int_equal(burst(32), 0);
	expect_res(32, 32 * 64 + 2 * (31 * 32 / 2), 32, 0, 0, 0, false);
	for (int k = 0; k < 32; k++) {
		expect_used(&ga, (uint16_t)k, a[k], 0);
		expect_used(&gb, (uint16_t)k, b[k], (uint32_t)(12 + 64 + 2 * k));
		expect_delivered(b[k], frame[k], (uint32_t)(64 + 2 * k));
	}
	assert_int_equal(virtq_pending(&ga.vq), 0);
	assert_int_equal(virtq_pending(&gb.vq), 0);
	virtq_flush(&ga.vq);
	virtq_flush(&gb.vq);
	assert_int_equal(ga.vring.used->idx, 32);
	assert_int_equal(gb.vring.used->idx, 32);
}

/* @max smaller than the frames available: the rest waits, in order. */
static void
burst_max_smaller(void **state)
{
	static uint8_t frame[10][100];
	uint16_t a[10], b[10];

	(void)state;
	for (int k = 0; k < 10; k++) {
		b[k] = rx_buf(256);
		make_frame(frame[k], 100, (uint8_t)(k + 100));
		a[k] = tx_frame(frame[k], 100, L_ONE);
	}
	assert_int_equal(burst(4), 0);
	expect_res(4, 400, 4, 0, 0, 0, false);
	assert_int_equal(virtq_pending(&ga.vq), 6);
	assert_int_equal(virtq_pending(&gb.vq), 6);
	assert_int_equal(burst(4), 0);
	expect_res(4, 400, 4, 0, 0, 0, false);
	assert_int_equal(burst(4), 0);
	expect_res(2, 200, 2, 0, 0, 0, false);
	assert_int_equal(burst(0), 0);
	expect_res(0, 0, 0, 0, 0, 0, false);
	for (int k = 0; k < 10; k++) {
		expect_used(&ga, (uint16_t)k, a[k], 0);
		expect_used(&gb, (uint16_t)k, b[k], 112);
		expect_delivered(b[k], frame[k], 100);
	}

	/* @max above what is available (a full ring): all of it. */
	teardown(NULL);
	setup(NULL);
	for (int k = 0; k < QSIZE; k++) {
		rx_buf(128);
		tx_frame(frame[0], 60, L_ONE);
	}
	assert_int_equal(burst(1000), 0);
	expect_res(QSIZE, QSIZE * 60, QSIZE, 0, 0, 0, false);
	assert_int_equal(virtq_pending(&ga.vq), 0);
	assert_int_equal(virtq_pending(&gb.vq), 0);
}

/* The used rings and indexes wrap at 65536 like everything else. */
static void
index_wrap(void **state)
{
	static uint8_t frame[100];
	uint16_t b[4];

	(void)state;
	virtq_init(&ga.vq, &ga.vring, ga.mem, 0xfffe, 0xfffe, 0);
	virtq_init(&gb.vq, &gb.vring, gb.mem, 0xffff, 0xffff, 0);
	ga.vring.avail->idx = 0xfffe;
	gb.vring.avail->idx = 0xffff;
	set_side(&rx, &gb, FEAT_MRG | FEAT_V1, false);
	for (int k = 0; k < 4; k++)
		b[k] = rx_buf(64);
	make_frame(frame, sizeof(frame), 0);
	tx_frame(frame, 60, L_ONE);
	tx_frame(frame, 100, L_ONE);
	tx_frame(frame, 40, L_ONE);
	assert_int_equal(burst(32), 0);
	/* 72 bytes: two buffers; 112: two; then B is empty. */
	expect_res(2, 160, 2, 0, 0, 0, true);
	assert_int_equal(virtq_pending(&ga.vq), 1);
	assert_int_equal(gb.vq.last_used_idx, 3);
	expect_used(&gb, 0xffff, b[0], 64);
	expect_used(&gb, 0, b[1], 8);
	expect_used(&gb, 1, b[2], 64);
	expect_used(&gb, 2, b[3], 48);
	virtq_flush(&ga.vq);
	virtq_flush(&gb.vq);
	assert_int_equal(ga.vring.used->idx, 0);
	assert_int_equal(gb.vring.used->idx, 3);
}

/* Take A's next frame and deliver it with net_copy_frame() and @l2 over its first bytes. */
static enum net_copy_rc
frame_with_l2(const uint8_t *l2, uint16_t l2_len, struct net_copy_batch *batch)
{
	struct virtq_chain txc, rxc;
	const char *why = NULL;
	enum net_copy_rc r;
	uint16_t head;

	assert_int_equal(virtq_pop(&ga.vq, &head, 1), 1);
	assert_int_equal(virtq_map_chain(&ga.vq, head, &txc, &why), 0);
	memset(&res, 0, sizeof(res));
	r = net_copy_frame(&tx, &rx, &txc, l2, l2_len, MAX_FRAME, &rxc, batch, &res);
	virtq_push(&ga.vq, head, 0);
	return r;
}

/*
 * The bridge's checked header: B gets the caller's copy of the frame's
 * first bytes, not A's (A may have rewritten them after the check), and the
 * rest from A. A small frame is then copied at once, not left in the batch
 * (its header write must land after A's bytes); over mergeable buffers
 * smaller than the header, each gets its part.
 */
static void
checked_header(void **state)
{
	static uint8_t frame[600], want[600], got[1000];
	struct net_copy_batch batch;
	uint8_t l2[18];
	uint16_t b, bm[20];
	uint32_t off = 0, total;

	(void)state;
	batch.n = 0;
	for (unsigned int i = 0; i < sizeof(l2); i++)
		l2[i] = (uint8_t)(0xa0 + i);
	make_frame(frame, sizeof(frame), 5);
	memcpy(want, frame, sizeof(frame));
	memcpy(want, l2, 14);
	b = rx_buf(1000);
	tx_frame(frame, sizeof(frame), L_HDR_DATA2);
	assert_int_equal(frame_with_l2(l2, 14, &batch), NET_COPY_DONE);
	assert_int_equal(res.frames, 1);
	assert_int_equal(res.bytes, sizeof(frame));
	expect_delivered(b, want, sizeof(frame));

	/* Small: nothing waits in the batch. */
	b = rx_buf(1000);
	tx_frame(frame, 100, L_ONE);
	assert_int_equal(frame_with_l2(l2, 18, &batch), NET_COPY_DONE);
	assert_int_equal(batch.n, 0);
	memcpy(want, l2, 18);
	expect_delivered(b, want, 100);

	/* A buffer of two segments, the header across them (8 bytes, then 10). */
	const uint32_t segs[2] = {20, 1000};

	b = rx_buf_segs(segs, 2);
	tx_frame(frame, 400, L_HDR);
	assert_int_equal(frame_with_l2(l2, 18, &batch), NET_COPY_DONE);
	expect_delivered(b, want, 400);

	/* Mergeable buffers of 16 bytes (312 take 20): the header spans the first three. */
	set_side(&rx, &gb, FEAT_MRG | FEAT_V1, false);
	for (int k = 0; k < 20; k++)
		bm[k] = rx_buf(16);
	tx_frame(frame, 300, L_HDR_SPLIT);
	assert_int_equal(frame_with_l2(l2, 18, &batch), NET_COPY_DONE);
	total = 12 + 300;
	for (int k = 0; off < total; k++) {
		uint32_t len = total - off < 16 ? total - off : 16;

		expect_used(&gb, (uint16_t)(3 + k), bm[k], len);
		assert_int_equal(rx_read(bm[k], got + off, len), len);
		off += len;
	}
	assert_memory_equal(got + 12, want, 300);
	/* Without @l2, A's bytes as before. */
	b = rx_buf(1000);
	tx_frame(frame, 300, L_ONE);
	assert_int_equal(frame_with_l2(NULL, 0, &batch), NET_COPY_DONE);
	assert_int_equal(rx_read(b, got, 312), 312);
	assert_memory_equal(got + 12, frame, 300);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(hdr_len_features),
		T(round_trip_hdr12),
		T(round_trip_hdr10),
		T(round_trip_mixed_hdr),
		T(round_trip_mixed_hdr2),
		T(round_trip_layouts),
		T(mergeable_spans),
		T(segments_both_sides),
		T(rx_buffer_too_small),
		T(rx_ring_empty),
		T(rx_runs_out_mid_frame),
		T(mergeable_too_many_buffers),
		T(frame_over_max),
		T(small_frames_left),
		T(bad_tx_chains),
		T(bad_rx_buffers),
		T(rx_buffer_without_room_for_header),
		T(bad_rx_mid_frame),
		T(csum_offload),
		T(broken_tx_ring),
		T(broken_rx_ring),
		T(burst_32),
		T(burst_max_smaller),
		T(index_wrap),
		T(checked_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
