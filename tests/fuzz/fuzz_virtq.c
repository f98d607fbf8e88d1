/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * libFuzzer harness for the split-virtqueue walker (vhost/virtq.c): the
 * input becomes three guest memory regions and a ring laid out in the first,
 * so descriptors, avail ring, indirect tables and the used/avail event words
 * are all fuzzer bytes. Region buffers are malloc'd to their exact size so
 * that ASan sees any access past them. Input layout:
 *
 *   [0]      bits 0-2: log2 queue size (1..128); bit 3 INDIRECT_DESC;
 *            bit 4 EVENT_IDX; bit 5: region 1 right after region 0 in GPA
 *   [1..2]   last_avail_idx      [3..4]  last_used_idx
 *   [5..8]   region 1 GPA (when not contiguous)
 *   [9..16]  region 2 GPA (anywhere, up to the top of the address space)
 *   [17]     rounds of pop/map/push/flush
 *   [18..]   contents of region 0, then region 1, then region 2
 *
 * Besides the sanitizers it checks that a mapped chain's iovecs lie inside
 * the region buffers and match their GPAs, that the counts and byte totals
 * add up, that popped heads are in range and that a broken queue says why.
 *
 * Run: cp -r tests/fuzz/corpus/virtq /tmp/corpus-vq &&
 *   build-fuzz/tests/unit/fuzz_virtq -max_len=16402 -max_total_time=60 /tmp/corpus-vq
 * (16402 bytes: the header and all three regions.)
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>

#include "virtq.h"

#define HDR_LEN 18
#define R0_SIZE 8192 /* desc at 0, avail at 2048, used at 2560 (size <= 128) */
#define R1_SIZE 4096
#define R2_SIZE 4096
#define OFF_AVAIL 2048
#define OFF_USED 2560

static const size_t region_size[3] = {R0_SIZE, R1_SIZE, R2_SIZE};

static uint64_t
get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

static void
check(bool ok)
{
	if (!ok)
		abort();
}

/* Every iovec inside one region buffer, at the host address of its GPA. */
static void
check_chain(const struct rte_vhost_memory *mem, const struct virtq_chain *c, uint16_t head)
{
	uint64_t out = 0, in = 0;
	unsigned int i, r;

	check(c->head == head);
	check((unsigned int)c->n_out + c->n_in <= VIRTQ_MAX_IOV);
	for (i = 0; i < (unsigned int)c->n_out + c->n_in; i++) {
		uintptr_t base = (uintptr_t)c->iov[i].iov_base;
		size_t len = c->iov[i].iov_len;

		check(len != 0);
		for (r = 0; r < mem->nregions; r++) {
			const struct rte_vhost_mem_region *m = &mem->regions[r];

			if (base >= m->host_user_addr && base - m->host_user_addr < m->size)
				break;
		}
		check(r < mem->nregions);
		check(len <= mem->regions[r].host_user_addr + mem->regions[r].size - base);
		check(c->gpa[i] - mem->regions[r].guest_phys_addr ==
			base - mem->regions[r].host_user_addr);
		if (i < c->n_out)
			out += len;
		else
			in += len;
	}
	check(out == c->out_len && in == c->in_len);
}

/* Read the readable part, write the writable part, slice both. */
static uint32_t
exercise_iov(const struct virtq_chain *c, uint8_t seed)
{
	static uint8_t scratch[R0_SIZE + R1_SIZE + R2_SIZE];
	struct iovec part[8];
	size_t n, off = seed * 7u, len = seed * 13u;
	int k, j;

	n = iov_copy_from(c->iov, c->n_out, 0, scratch, sizeof(scratch));
	check(n == RTE_MIN((size_t)c->out_len, sizeof(scratch)));
	n = iov_copy_to(c->iov + c->n_out, c->n_in, off, scratch, len);
	check(n <= len);
	k = iov_slice(c->iov, (unsigned int)c->n_out + c->n_in, off, len, part, 8);
	check(k >= 0 || k == -E2BIG || k == -ERANGE);
	if (k >= 0) {
		for (j = 0, n = 0; j < k; j++) {
			check(part[j].iov_len != 0);
			n += part[j].iov_len;
		}
		check(n == len);
		check(off + len <= (uint64_t)c->out_len + c->in_len);
	} else if (k == -ERANGE) {
		check(off + len > (uint64_t)c->out_len + c->in_len);
	}
	return c->in_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rte_vhost_memory *mem;
	struct rte_vhost_vring vring;
	struct virtq_chain *c;
	struct virtq vq;
	uint8_t *buf[3];
	uint16_t heads[4];
	uint64_t features = 0;
	unsigned int r, rounds;
	size_t pos;
	int n, i, rc;

	if (size < HDR_LEN)
		return 0;
	mem = calloc(1, sizeof(*mem) + 3 * sizeof(mem->regions[0]));
	c = malloc(sizeof(*c));
	if (mem == NULL || c == NULL)
		abort();
	mem->nregions = 3;
	pos = HDR_LEN;
	for (r = 0; r < 3; r++) {
		size_t take = RTE_MIN(size - pos, region_size[r]);

		buf[r] = calloc(1, region_size[r]);
		if (buf[r] == NULL)
			abort();
		memcpy(buf[r], data + pos, take);
		pos += take;
		mem->regions[r].host_user_addr = (uintptr_t)buf[r];
		mem->regions[r].size = region_size[r];
	}
	mem->regions[0].guest_phys_addr = 0;
	mem->regions[1].guest_phys_addr = (data[0] & 0x20) ? R0_SIZE : get_le(data + 5, 4);
	mem->regions[2].guest_phys_addr = get_le(data + 9, 8);
	/* Overlapping regions are the frontend's bug, not the guest's: skip them. */
	for (r = 1; r < 3; r++)
		for (unsigned int q = 0; q < r; q++) {
			const struct rte_vhost_mem_region *a = &mem->regions[q],
							  *b = &mem->regions[r];

			if (b->guest_phys_addr > UINT64_MAX - b->size ||
				(b->guest_phys_addr - a->guest_phys_addr < a->size ||
					a->guest_phys_addr - b->guest_phys_addr < b->size))
				goto out;
		}

	memset(&vring, 0, sizeof(vring));
	vring.size = (uint16_t)(1u << (data[0] & 7));
	vring.desc = (struct vring_desc *)buf[0];
	vring.avail = (struct vring_avail *)(buf[0] + OFF_AVAIL);
	vring.used = (struct vring_used *)(buf[0] + OFF_USED);
	if (data[0] & 0x08)
		features |= 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	if (data[0] & 0x10)
		features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	virtq_init(&vq, &vring, mem, (uint16_t)get_le(data + 1, 2), (uint16_t)get_le(data + 3, 2),
		features);

	rounds = 1 + data[17] % 8;
	while (rounds-- > 0) {
		unsigned int pending = virtq_pending(&vq);
		const char *why = NULL;

		n = virtq_pop(&vq, heads, 1 + rounds % 4);
		if (n < 0) {
			check(n == -EINVAL && vq.broken && vq.broken_why != NULL);
			check(virtq_pending(&vq) == 0);
			break;
		}
		check(n <= 4 && (unsigned int)n <= pending);
		for (i = 0; i < n; i++) {
			uint32_t written = 0;

			check(heads[i] < vq.size);
			rc = virtq_map_chain(&vq, heads[i], c, &why);
			if (rc == 0) {
				check_chain(mem, c, heads[i]);
				written = exercise_iov(c, (uint8_t)(heads[i] + rounds));
			} else {
				check(rc == -EFAULT || rc == -ELOOP || rc == -E2BIG ||
					rc == -EINVAL);
				check(why != NULL);
			}
			virtq_push(&vq, heads[i], written);
		}
		virtq_flush(&vq);
		check(vq.published_used == vq.last_used_idx);
		virtq_set_notify(&vq, rounds & 1);
	}
out:
	for (r = 0; r < 3; r++)
		free(buf[r]);
	free(c);
	free(mem);
	return 0;
}
