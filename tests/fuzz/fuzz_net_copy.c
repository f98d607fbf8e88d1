/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the single-copy frame transfer (vhost/net_copy.c on
 * vhost/virtq.c): guest A's transmit queue and guest B's receive queue, each
 * guest with two memory regions of its own, filled from the input: the
 * descriptor tables, avail rings (with used_event), indirect tables, headers
 * and frames are all fuzzer bytes, and so are both sides' features. Rounds of
 * net_copy_burst() and virtq_flush() run on them; between rounds the guests
 * move their avail index on (the entries are already in memory), so a ring
 * that was full or empty fills up. Region buffers are malloc'd to their
 * exact size so that ASan sees any access past them. The used rings are
 * malloc'd apart, outside guest memory, so that the harness can read back
 * what was pushed (a guest pointing a buffer at its own used ring would
 * overwrite it); the guests' buffers may alias their own descriptors and
 * avail ring. A and B do not share memory.
 *
 * Input layout:
 *   [0]       A: bits 0-2 log2 queue size (1..128); bit 3 INDIRECT_DESC;
 *             bit 4 MRG_RXBUF; bit 5 VERSION_1 (both: 12-byte header);
 *             bit 6 CSUM; bit 7 region 1 right after region 0 in GPA
 *   [1]       B: the same, bit 6 GUEST_CSUM
 *   [2..3]    A last_avail_idx (and last_used_idx)
 *   [4..5]    B last_avail_idx (and last_used_idx)
 *   [6..7]    max_frame
 *   [8]       bits 0-1: rounds - 1; bits 2-5: min_frame / 16 (0: every size);
 *             bit 6: EVENT_IDX on A; bit 7: on B
 *   [9]       max (frames per burst, 0..255)
 *   [10]      bits 0-2: A's avail index step between rounds; bits 3-6: B's;
 *             bit 7: frame by frame through net_copy_frame() with a checked
 *             header of 14 bytes (18 when [8] bit 2; min_frame then 0), as a
 *             bridge does, instead of net_copy_burst()
 *   [11..14]  A region 1 GPA (when not contiguous)
 *   [15..18]  B region 1 GPA (when not contiguous)
 *   [19..]    A region 0 (4 KiB: desc at 0, avail at 2048), A region 1
 *             (2 KiB), B region 0, B region 1; missing bytes are zero
 *
 * Invariants besides the sanitizers: the return code and the ring state
 * agree (-EINVAL only with a broken ring, rx_full only with rc 0, small
 * only with a min_frame and not with rx_full); every A
 * chain taken is completed once with length 0 and counted once (tx_done =
 * frames + too_big + bad_tx + bad_rx), the others go back to A's avail ring;
 * every B buffer taken is pushed unless B broke, and the lengths pushed add
 * up to the frames delivered and their headers; bytes <= frames * max_frame;
 * a bad chain says why; the used rings are published up to what was pushed.
 *
 * Run: cp -r tests/fuzz/corpus/net_copy /tmp/c &&
 *   build-fuzz/tests/unit/fuzz_net_copy -max_len=12307 -max_total_time=60 /tmp/c
 * (12307 bytes: the header and all four regions.)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <rte_common.h>

#include "fuzz_util.h"
#include "net_copy.h"
#include "virtq.h"

#define HDR_LEN 19
#define R0_SIZE 4096 /* desc at 0 (size <= 128: 2 KiB), avail at 2048 */
#define R1_SIZE 2048
#define OFF_AVAIL 2048

struct guest {
	struct rte_vhost_memory *mem;
	uint8_t *buf[2];
	struct vring_used *used;
	struct rte_vhost_vring vring;
	struct virtq vq;
};

/* Regions of @g from @data at *@pos; false when they overlap (skip the input). */
static bool
guest_init(struct guest *g, const uint8_t *data, size_t size, size_t *pos, uint8_t conf,
	const uint8_t *gpa1)
{
	static const size_t region_size[2] = {R0_SIZE, R1_SIZE};
	const struct rte_vhost_mem_region *r0, *r1;

	g->mem = calloc(1, sizeof(*g->mem) + 2 * sizeof(g->mem->regions[0]));
	if (g->mem == NULL)
		abort();
	g->mem->nregions = 2;
	for (unsigned int r = 0; r < 2; r++) {
		size_t take = *pos < size ? RTE_MIN(size - *pos, region_size[r]) : 0;

		g->buf[r] = calloc(1, region_size[r]);
		if (g->buf[r] == NULL)
			abort();
		if (take != 0)
			memcpy(g->buf[r], data + *pos, take);
		*pos += region_size[r];
		g->mem->regions[r].host_user_addr = (uintptr_t)g->buf[r];
		g->mem->regions[r].size = region_size[r];
	}
	g->mem->regions[0].guest_phys_addr = 0;
	g->mem->regions[1].guest_phys_addr = (conf & 0x80) ? R0_SIZE : fuzz_get_le(gpa1, 4);
	r0 = &g->mem->regions[0];
	r1 = &g->mem->regions[1];
	/* Overlapping regions are the frontend's bug, not the guest's. */
	if (r1->guest_phys_addr - r0->guest_phys_addr < r0->size ||
		r0->guest_phys_addr - r1->guest_phys_addr < r1->size)
		return false;
	return true;
}

/* The queue of @g: size and features from @conf, used ring outside guest memory. */
static void
guest_queue(struct guest *g, uint8_t conf, uint16_t idx, bool event_idx)
{
	uint64_t features = 0;

	memset(&g->vring, 0, sizeof(g->vring));
	g->vring.size = (uint16_t)(1u << (conf & 7));
	g->vring.desc = (struct vring_desc *)g->buf[0];
	g->vring.avail = (struct vring_avail *)(g->buf[0] + OFF_AVAIL);
	/* Exactly sized: flags, idx, ring[size], avail_event. */
	g->used = calloc(1, sizeof(struct vring_used) +
				    g->vring.size * sizeof(struct vring_used_elem) +
				    sizeof(uint16_t));
	if (g->used == NULL)
		abort();
	g->used->idx = idx; /* as the frontend left it */
	g->vring.used = g->used;
	if (conf & 0x08)
		features |= 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	if (event_idx)
		features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	virtq_init(&g->vq, &g->vring, g->mem, idx, idx, features);
}

static void
guest_free(struct guest *g)
{
	free(g->buf[0]);
	free(g->buf[1]);
	free(g->used);
	free(g->mem);
}

/* Features of a device from its configuration byte. */
static uint64_t
conf_features(uint8_t conf)
{
	uint64_t f = 0;

	if (conf & 0x10)
		f |= 1ULL << VIRTIO_NET_F_MRG_RXBUF;
	if (conf & 0x20)
		f |= 1ULL << VIRTIO_F_VERSION_1;
	return f;
}

/* A's side of one burst: @n chains completed with 0 bytes since @used0. */
static void
check_tx(const struct guest *a, uint16_t avail0, uint16_t used0, uint16_t n)
{
	check((uint16_t)(a->vq.last_avail_idx - avail0) == n);
	check((uint16_t)(a->vq.last_used_idx - used0) == n);
	for (uint16_t k = 0; k < n; k++) {
		const struct vring_used_elem *e =
			&a->used->ring[(uint16_t)(used0 + k) & (a->vq.size - 1)];

		check(e->id < a->vq.size);
		check(e->len == 0);
	}
}

/*
 * What bridge_copy() (dataplane/forward.c) does with a burst: each frame of
 * A through net_copy_frame() with its first @l2_len bytes from a checked
 * copy. Same contract as net_copy_burst() with min_frame 0.
 */
static int
frame_by_frame(const struct net_copy_side *tx, const struct net_copy_side *rx, uint32_t max_frame,
	unsigned int max, uint16_t l2_len, struct net_copy_result *res)
{
	static const uint8_t l2[18] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0, 0, 5, 8, 0};
	uint16_t heads[NET_COPY_MAX_BURST];
	struct virtq_chain txc, rxc;
	struct net_copy_batch batch;
	int n, i, rc = 0;

	batch.n = 0;
	memset(res, 0, sizeof(*res));
	n = virtq_pop(tx->vq, heads, RTE_MIN(max, (unsigned int)NET_COPY_MAX_BURST));
	if (n <= 0)
		return n;
	for (i = 0; i < n; i++) {
		const char *why = NULL;
		enum net_copy_rc r;

		if (virtq_map_chain(tx->vq, heads[i], &txc, &why) != 0) {
			res->why = why;
			res->bad_tx++;
		} else {
			r = net_copy_frame(tx, rx, &txc, l2, l2_len, max_frame, &rxc, &batch, res);
			check(batch.n == 0); /* a checked header is never put off */
			if (r == NET_COPY_RX_FULL) {
				res->rx_full = true;
				break;
			}
			if (r == NET_COPY_RX_BROKEN) {
				rc = -EINVAL;
				break;
			}
		}
		virtq_push(tx->vq, heads[i], 0);
		res->tx_done++;
	}
	tx->vq->last_avail_idx = (uint16_t)(tx->vq->last_avail_idx - (n - i));
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest ga, gb;
	struct net_copy_side tx, rx;
	struct net_copy_result res;
	unsigned int rounds, max;
	uint32_t max_frame, min_frame;
	size_t pos = HDR_LEN;
	bool ok;

	if (size < HDR_LEN)
		return 0;
	memset(&ga, 0, sizeof(ga));
	memset(&gb, 0, sizeof(gb));
	ok = guest_init(&ga, data, size, &pos, data[0], data + 11);
	ok = guest_init(&gb, data, size, &pos, data[1], data + 15) && ok;
	if (!ok)
		goto out;
	guest_queue(&ga, data[0], (uint16_t)fuzz_get_le(data + 2, 2), data[8] & 0x40);
	guest_queue(&gb, data[1], (uint16_t)fuzz_get_le(data + 4, 2), data[8] & 0x80);

	tx.vq = &ga.vq;
	tx.hdr_len = net_copy_hdr_len(conf_features(data[0]));
	tx.mrg_rxbuf = (data[0] & 0x10) != 0;
	tx.csum = (data[0] & 0x40) != 0;
	rx.vq = &gb.vq;
	rx.hdr_len = net_copy_hdr_len(conf_features(data[1]));
	rx.mrg_rxbuf = (data[1] & 0x10) != 0;
	rx.csum = (data[1] & 0x40) != 0;
	max_frame = (uint32_t)fuzz_get_le(data + 6, 2);
	max = data[9];
	rounds = 1 + (data[8] & 3);
	min_frame = (uint32_t)(data[8] & 0x3c) << 2; /* 0 (every size) .. 240 */
	if (data[10] & 0x80)
		min_frame = 0;

	for (unsigned int round = 0; round < rounds; round++) {
		uint16_t a_avail0 = ga.vq.last_avail_idx, a_used0 = ga.vq.last_used_idx;
		uint16_t b_avail0 = gb.vq.last_avail_idx, b_used0 = gb.vq.last_used_idx;
		bool b_broken0 = gb.vq.broken;
		uint16_t b_pushed;
		uint64_t b_bytes = 0;
		int rc;

		/* A garbage result must not survive the call. */
		memset(&res, 0x5a, sizeof(res));
		if (data[10] & 0x80)
			rc = frame_by_frame(
				&tx, &rx, max_frame, max + round, (data[8] & 4) ? 18 : 14, &res);
		else
			rc = net_copy_burst(&tx, &rx, max_frame, min_frame, max + round, &res);
		check(rc == 0 || rc == -EINVAL);
		if (rc == 0) {
			check(!ga.vq.broken);
			check(gb.vq.broken == b_broken0);
		} else {
			check(ga.vq.broken || gb.vq.broken);
			check(!res.rx_full);
		}
		check(res.tx_done == res.frames + res.too_big + res.bad_tx + res.bad_rx);
		check(!res.small || (min_frame != 0 && !res.rx_full));
		check(res.tx_done <= RTE_MIN(max + round, 64u));
		check(res.bytes <= (uint64_t)res.frames * max_frame);
		check(res.bad_tx + res.bad_rx == 0 || res.why != NULL);
		if (ga.vq.broken)
			check(ga.vq.broken_why != NULL && res.tx_done == 0);
		if (gb.vq.broken)
			check(gb.vq.broken_why != NULL);
		check_tx(&ga, a_avail0, a_used0, res.tx_done);

		/* B: every buffer taken is pushed (unless B broke mid-frame). */
		b_pushed = (uint16_t)(gb.vq.last_used_idx - b_used0);
		if (!gb.vq.broken)
			check((uint16_t)(gb.vq.last_avail_idx - b_avail0) == b_pushed);
		else
			check((uint16_t)(gb.vq.last_avail_idx - b_avail0) >= b_pushed);
		check(b_pushed >= res.frames + res.bad_rx);
		check(b_pushed <= (res.frames + res.bad_rx) * NET_COPY_MAX_RX_BUFS);
		if (!rx.mrg_rxbuf)
			check(b_pushed == res.frames + res.bad_rx);
		for (uint16_t k = 0; k < b_pushed; k++) {
			const struct vring_used_elem *e =
				&gb.used->ring[(uint16_t)(b_used0 + k) & (gb.vq.size - 1)];

			check(e->id < gb.vq.size);
			b_bytes += e->len;
		}
		check(b_bytes == res.bytes + (uint64_t)res.frames * rx.hdr_len);

		virtq_flush(&ga.vq);
		virtq_flush(&gb.vq);
		check(ga.vq.published_used == ga.vq.last_used_idx);
		check(gb.vq.published_used == gb.vq.last_used_idx);
		if (!ga.vq.broken)
			check(ga.used->idx == ga.vq.last_used_idx);
		if (!gb.vq.broken)
			check(gb.used->idx == gb.vq.last_used_idx);

		/* The guests queue more (entries already in their memory). */
		ga.vring.avail->idx = (uint16_t)(ga.vring.avail->idx + (data[10] & 7));
		gb.vring.avail->idx = (uint16_t)(gb.vring.avail->idx + ((data[10] >> 3) & 15));
	}
out:
	guest_free(&ga);
	guest_free(&gb);
	return 0;
}
