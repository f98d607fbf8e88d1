/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of vhost/virtq.c on fake guest memory: three malloc'd regions,
 * A and B contiguous in GPA, C apart, with a 16-entry split ring in A.
 * No EAL: the walker only reads the rte_vhost structures.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "virtq.h"

#define QSIZE 16
#define REG_SIZE 0x10000ULL
#define GPA_A 0x10000ULL
#define GPA_B (GPA_A + REG_SIZE) /* contiguous with A */
#define GPA_C 0x100000ULL        /* apart */
#define GPA_DESC GPA_A
#define GPA_AVAIL (GPA_A + 0x1000)
#define GPA_USED (GPA_A + 0x2000)
#define GPA_DATA (GPA_A + 0x4000) /* free space in A for buffers */

#define FEAT_INDIRECT (1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define FEAT_EVENT_IDX (1ULL << VIRTIO_RING_F_EVENT_IDX)

static const uint64_t region_gpa[3] = {GPA_A, GPA_B, GPA_C};
static void *region_buf[3];
static struct rte_vhost_memory *mem;
static struct rte_vhost_vring vring;
static struct virtq vq;
static struct virtq_chain chain;
static const char *why;

/* Host address of guest physical @gpa (the test's own view of memory). */
static void *
hva(uint64_t gpa)
{
	for (int i = 0; i < 3; i++)
		if (gpa >= region_gpa[i] && gpa < region_gpa[i] + REG_SIZE)
			return (char *)region_buf[i] + (gpa - region_gpa[i]);
	fail_msg("test bug: gpa 0x%llx not in memory", (unsigned long long)gpa);
	return NULL;
}

static int
setup(void **state)
{
	(void)state;
	/* Room for a fourth, fake region (the 4 GiB test). */
	mem = calloc(1, sizeof(*mem) + 4 * sizeof(mem->regions[0]));
	assert_non_null(mem);
	mem->nregions = 3;
	for (int i = 0; i < 3; i++) {
		region_buf[i] = aligned_alloc(4096, REG_SIZE);
		assert_non_null(region_buf[i]);
		memset(region_buf[i], 0, REG_SIZE);
		mem->regions[i].guest_phys_addr = region_gpa[i];
		mem->regions[i].size = REG_SIZE;
		mem->regions[i].host_user_addr = (uintptr_t)region_buf[i];
	}
	memset(&vring, 0, sizeof(vring));
	vring.desc = hva(GPA_DESC);
	vring.avail = hva(GPA_AVAIL);
	vring.used = hva(GPA_USED);
	vring.size = QSIZE;
	virtq_init(&vq, &vring, mem, 0, 0, FEAT_INDIRECT);
	memset(&chain, 0, sizeof(chain));
	why = NULL;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		free(region_buf[i]);
	free(mem);
	return 0;
}

static void
set_desc(struct vring_desc *t, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
	uint16_t next)
{
	t[i].addr = addr;
	t[i].len = len;
	t[i].flags = flags;
	t[i].next = next;
}

static void
add_avail(uint16_t head)
{
	vring.avail->ring[vring.avail->idx % QSIZE] = head;
	vring.avail->idx++;
}

/* Map the chain of @head and expect @rc; print the reason on a mismatch. */
static void
expect_map(uint16_t head, int rc)
{
	int got;

	why = NULL;
	got = virtq_map_chain(&vq, head, &chain, &why);
	if (got != rc)
		print_error("map_chain: %d (%s), expected %d\n", got, why ? why : "-", rc);
	assert_int_equal(got, rc);
	if (rc != 0)
		assert_non_null(why);
}

static void
expect_iov(unsigned int i, uint64_t gpa, size_t len)
{
	assert_ptr_equal(chain.iov[i].iov_base, hva(gpa));
	assert_int_equal(chain.iov[i].iov_len, len);
	assert_int_equal(chain.gpa[i], gpa);
}

static void
simple_chain(void **state)
{
	struct vring_desc *d = vring.desc;
	uint16_t heads[4];

	(void)state;
	set_desc(d, 3, GPA_DATA, 100, VRING_DESC_F_NEXT, 7);
	set_desc(d, 7, GPA_DATA + 0x1000, 50, VRING_DESC_F_NEXT, 1);
	set_desc(d, 1, GPA_C + 8, 200, VRING_DESC_F_WRITE, 0);
	add_avail(3);
	assert_int_equal(virtq_pending(&vq), 1);
	assert_int_equal(virtq_pop(&vq, heads, 4), 1);
	assert_int_equal(heads[0], 3);
	assert_int_equal(virtq_pending(&vq), 0);
	assert_int_equal(virtq_pop(&vq, heads, 4), 0);
	expect_map(3, 0);
	assert_int_equal(chain.head, 3);
	assert_int_equal(chain.n_out, 2);
	assert_int_equal(chain.n_in, 1);
	assert_int_equal(chain.out_len, 150);
	assert_int_equal(chain.in_len, 200);
	expect_iov(0, GPA_DATA, 100);
	expect_iov(1, GPA_DATA + 0x1000, 50);
	expect_iov(2, GPA_C + 8, 200);
}

static void
only_writable_and_only_readable(void **state)
{
	struct vring_desc *d = vring.desc;

	(void)state;
	set_desc(d, 0, GPA_DATA, 10, VRING_DESC_F_WRITE, 0);
	expect_map(0, 0);
	assert_int_equal(chain.n_out, 0);
	assert_int_equal(chain.n_in, 1);
	assert_int_equal(chain.in_len, 10);
	set_desc(d, 0, GPA_DATA, 10, 0, 0);
	expect_map(0, 0);
	assert_int_equal(chain.n_out, 1);
	assert_int_equal(chain.n_in, 0);
	assert_int_equal(chain.out_len, 10);
}

static void
indirect_table(void **state)
{
	struct vring_desc *d = vring.desc;
	struct vring_desc *t = hva(GPA_C + 0x100);

	(void)state;
	set_desc(t, 0, GPA_DATA, 16, VRING_DESC_F_NEXT, 2);
	set_desc(t, 2, GPA_DATA + 16, 32, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, GPA_B, 64, VRING_DESC_F_WRITE, 0);
	/* The WRITE flag of the descriptor naming a table is ignored. */
	set_desc(d, 5, GPA_C + 0x100, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	expect_map(5, 0);
	assert_int_equal(chain.n_out, 2);
	assert_int_equal(chain.n_in, 1);
	assert_int_equal(chain.out_len, 48);
	assert_int_equal(chain.in_len, 64);
	expect_iov(0, GPA_DATA, 16);
	expect_iov(1, GPA_DATA + 16, 32);
	expect_iov(2, GPA_B, 64);

	/* Direct descriptors may precede the indirect one. */
	set_desc(d, 4, GPA_DATA + 0x100, 8, VRING_DESC_F_NEXT, 5);
	expect_map(4, 0);
	assert_int_equal(chain.n_out, 3);
	assert_int_equal(chain.out_len, 56);
	expect_iov(0, GPA_DATA + 0x100, 8);

	/* A table may be unaligned. */
	memmove((char *)t + 4, t, 3 * 16);
	set_desc(d, 5, GPA_C + 0x104, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	expect_map(5, 0);
	assert_int_equal(chain.n_out, 2);
}

static void
region_split(void **state)
{
	struct vring_desc *d = vring.desc;

	(void)state;
	/* A and B are contiguous in GPA: one segment, two iovecs. */
	set_desc(d, 0, GPA_B - 0x100, 0x300, VRING_DESC_F_NEXT, 1);
	/* Ends exactly at the end of A: one iovec. */
	set_desc(d, 1, GPA_B - 0x10, 0x10, VRING_DESC_F_WRITE, 0);
	expect_map(0, 0);
	assert_int_equal(chain.n_out, 2);
	assert_int_equal(chain.n_in, 1);
	assert_int_equal(chain.out_len, 0x300);
	expect_iov(0, GPA_B - 0x100, 0x100);
	expect_iov(1, GPA_B, 0x200);
	expect_iov(2, GPA_B - 0x10, 0x10);

	/* B's end is not contiguous with C: fault. */
	set_desc(d, 0, GPA_B + REG_SIZE - 0x10, 0x20, 0, 0);
	expect_map(0, -EFAULT);
}

static void
zero_length_skipped(void **state)
{
	struct vring_desc *d = vring.desc;

	(void)state;
	/* Zero-length descriptors are skipped, even at a bogus address. */
	set_desc(d, 0, 0xdead0000, 0, VRING_DESC_F_NEXT, 1);
	set_desc(d, 1, GPA_DATA, 10, VRING_DESC_F_NEXT, 2);
	set_desc(d, 2, 0, 0, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3);
	set_desc(d, 3, GPA_DATA + 10, 20, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 4);
	/* A zero-length readable one after a writable one carries no data. */
	set_desc(d, 4, 0, 0, 0, 0);
	expect_map(0, 0);
	assert_int_equal(chain.n_out, 1);
	assert_int_equal(chain.n_in, 1);
	expect_iov(0, GPA_DATA, 10);
	expect_iov(1, GPA_DATA + 10, 20);

	/* All empty: a valid chain with nothing in it. */
	set_desc(d, 0, 0, 0, 0, 0);
	expect_map(0, 0);
	assert_int_equal(chain.n_out + chain.n_in, 0);
}

static void
direct_loop(void **state)
{
	struct vring_desc *d = vring.desc;

	(void)state;
	set_desc(d, 0, GPA_DATA, 1, VRING_DESC_F_NEXT, 1);
	set_desc(d, 1, GPA_DATA, 1, VRING_DESC_F_NEXT, 0);
	expect_map(0, -ELOOP);
	/* Self loop with empty descriptors (no iovec bound to stop it). */
	set_desc(d, 2, 0, 0, VRING_DESC_F_NEXT, 2);
	expect_map(2, -ELOOP);
	/* The longest legal chain: every descriptor once. */
	for (uint16_t i = 0; i < QSIZE; i++)
		set_desc(d, i, GPA_DATA + i, 1, i + 1 < QSIZE ? VRING_DESC_F_NEXT : 0, i + 1);
	expect_map(0, 0);
	assert_int_equal(chain.n_out, QSIZE);
}

static void
indirect_loop(void **state)
{
	struct vring_desc *t = hva(GPA_C);

	(void)state;
	set_desc(t, 0, GPA_DATA, 1, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, 0, 0, VRING_DESC_F_NEXT, 2);
	set_desc(t, 2, GPA_DATA, 1, VRING_DESC_F_NEXT, 1);
	set_desc(vring.desc, 0, GPA_C, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	expect_map(0, -ELOOP);
	/* next must stay inside the table. */
	set_desc(t, 2, GPA_DATA, 1, VRING_DESC_F_NEXT, 3);
	expect_map(0, -EINVAL);
}

static void
bad_indirect(void **state)
{
	struct vring_desc *d = vring.desc;
	struct vring_desc *t = hva(GPA_C);

	(void)state;
	set_desc(t, 0, GPA_DATA, 1, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, GPA_C + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(hva(GPA_C + 0x100), 0, GPA_DATA, 1, 0, 0);
	set_desc(d, 0, GPA_C, 32, VRING_DESC_F_INDIRECT, 0);
	expect_map(0, -EINVAL); /* indirect inside indirect */

	set_desc(t, 1, GPA_DATA, 1, 0, 0);
	expect_map(0, 0);
	set_desc(d, 0, GPA_C, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	expect_map(0, -EINVAL); /* INDIRECT with NEXT */

	set_desc(d, 0, GPA_C, 24, VRING_DESC_F_INDIRECT, 0);
	expect_map(0, -EINVAL); /* not a multiple of 16 */
	set_desc(d, 0, GPA_C, 0, VRING_DESC_F_INDIRECT, 0);
	expect_map(0, -EINVAL); /* empty */
	set_desc(d, 0, GPA_C, (VIRTQ_MAX_INDIRECT + 1) * 16, VRING_DESC_F_INDIRECT, 0);
	expect_map(0, -E2BIG);
	/* Contiguous in GPA but across two regions: not one table. */
	set_desc(d, 0, GPA_B - 16, 32, VRING_DESC_F_INDIRECT, 0);
	expect_map(0, -EFAULT);
	set_desc(d, 0, GPA_C + REG_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	expect_map(0, -EFAULT);
	set_desc(d, 0, UINT64_MAX - 15, 32, VRING_DESC_F_INDIRECT, 0);
	expect_map(0, -EFAULT);

	/* Not negotiated. */
	set_desc(d, 0, GPA_C, 32, VRING_DESC_F_INDIRECT, 0);
	expect_map(0, 0);
	virtq_init(&vq, &vring, mem, 0, 0, 0);
	expect_map(0, -EINVAL);
}

static void
bad_addresses(void **state)
{
	struct vring_desc *d = vring.desc;

	(void)state;
	set_desc(d, 0, 0x50000, 16, 0, 0); /* hole between B and C */
	expect_map(0, -EFAULT);
	set_desc(d, 0, 0, 16, 0, 0);
	expect_map(0, -EFAULT);
	set_desc(d, 0, GPA_C + REG_SIZE - 0x100, 0x200, 0, 0); /* past the last region */
	expect_map(0, -EFAULT);
	set_desc(d, 0, GPA_C + REG_SIZE, 1, 0, 0);
	expect_map(0, -EFAULT);
	set_desc(d, 0, GPA_C + REG_SIZE - 1, 1, 0, 0);
	expect_map(0, 0);
	/* Wraps to A if gpa + len overflowed unchecked. */
	set_desc(d, 0, UINT64_MAX - 0xff, (uint32_t)(GPA_A + 0x200), 0, 0);
	expect_map(0, -EFAULT);
	set_desc(d, 0, UINT64_MAX, 1, 0, 0);
	expect_map(0, -EFAULT);
	/* A fault in the writable part, after good readable segments. */
	set_desc(d, 0, GPA_DATA, 1, VRING_DESC_F_NEXT, 1);
	set_desc(d, 1, 0x50000, 1, VRING_DESC_F_WRITE, 0);
	expect_map(0, -EFAULT);
}

static void
bad_next_and_order(void **state)
{
	struct vring_desc *d = vring.desc;

	(void)state;
	set_desc(d, 0, GPA_DATA, 1, VRING_DESC_F_NEXT, QSIZE);
	expect_map(0, -EINVAL);
	set_desc(d, 0, GPA_DATA, 1, VRING_DESC_F_NEXT, UINT16_MAX);
	expect_map(0, -EINVAL);
	/* Readable after writable. */
	set_desc(d, 0, GPA_DATA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(d, 1, GPA_DATA, 1, 0, 0);
	expect_map(0, -EINVAL);
	/* Head out of range. */
	expect_map(QSIZE, -EINVAL);
}

/* An indirect table of @n one-byte readable segments. */
static void
make_table(unsigned int n)
{
	struct vring_desc *t = hva(GPA_C);

	for (unsigned int i = 0; i < n; i++)
		set_desc(t, i, GPA_DATA + i, 1, i + 1 < n ? VRING_DESC_F_NEXT : 0, i + 1);
	set_desc(vring.desc, 0, GPA_C, n * 16, VRING_DESC_F_INDIRECT, 0);
}

static void
too_many_segments(void **state)
{
	(void)state;
	make_table(VIRTQ_MAX_IOV);
	expect_map(0, 0);
	assert_int_equal(chain.n_out, VIRTQ_MAX_IOV);
	make_table(VIRTQ_MAX_IOV + 1);
	expect_map(0, -E2BIG);
	/* Splitting at a region border counts too. */
	make_table(VIRTQ_MAX_IOV);
	set_desc(hva(GPA_C), VIRTQ_MAX_IOV - 1, GPA_B - 1, 2, 0, 0);
	expect_map(0, -E2BIG);
	/* The largest table walks fine when its chain is short. */
	make_table(2);
	set_desc(vring.desc, 0, GPA_C, VIRTQ_MAX_INDIRECT * 16, VRING_DESC_F_INDIRECT, 0);
	expect_map(0, 0);
	assert_int_equal(chain.n_out, 2);
}

static void
four_gib(void **state)
{
	struct vring_desc *d = vring.desc;

	(void)state;
	/* A large region that is never dereferenced: only translated. */
	mem->regions[3].guest_phys_addr = 0x100000000ULL;
	mem->regions[3].size = 0x400000000ULL;
	mem->regions[3].host_user_addr = 0x7f0000000000ULL;
	mem->nregions = 4;
	set_desc(d, 0, 0x100000000ULL, UINT32_MAX, VRING_DESC_F_NEXT, 1);
	set_desc(d, 1, 0x200000000ULL, UINT32_MAX, VRING_DESC_F_WRITE, 0);
	expect_map(0, 0);
	assert_int_equal(chain.out_len, UINT32_MAX);
	assert_int_equal(chain.in_len, UINT32_MAX);
	assert_int_equal(chain.n_out, 1);
	assert_int_equal(chain.n_in, 1);
	assert_ptr_equal(chain.iov[0].iov_base, (void *)0x7f0000000000ULL);

	set_desc(d, 1, 0x200000000ULL, 1, VRING_DESC_F_NEXT, 2);
	set_desc(d, 2, 0x200000000ULL, 1, VRING_DESC_F_WRITE, 0);
	expect_map(0, -E2BIG);
	set_desc(d, 0, 0x100000000ULL, 0x80000000U, VRING_DESC_F_NEXT, 1);
	set_desc(d, 1, 0x180000000ULL, 0x80000000U, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	set_desc(d, 2, 0x200000000ULL, 0x80000000U, VRING_DESC_F_WRITE, 0);
	expect_map(0, -E2BIG);
	mem->nregions = 3;
}

static void
avail_broken(void **state)
{
	uint16_t heads[QSIZE + 1];

	(void)state;
	/* Exactly size ahead is fine. */
	vring.avail->idx = QSIZE;
	assert_int_equal(virtq_pending(&vq), QSIZE);
	assert_int_equal(virtq_pop(&vq, heads, 3), 3);
	assert_int_equal(virtq_pop(&vq, heads, QSIZE), QSIZE - 3);
	assert_false(vq.broken);

	vring.avail->idx = 2 * QSIZE + 1;
	assert_int_equal(virtq_pop(&vq, heads, QSIZE), -EINVAL);
	assert_true(vq.broken);
	assert_non_null(vq.broken_why);
	assert_int_equal(virtq_pending(&vq), 0);
	vring.avail->idx = QSIZE + 1;
	assert_int_equal(virtq_pop(&vq, heads, QSIZE), -EINVAL); /* stays broken */

	/* Behind (idx went backwards): more than size ahead in uint16. */
	virtq_init(&vq, &vring, mem, 100, 0, 0);
	vring.avail->idx = 99;
	assert_int_equal(virtq_pop(&vq, heads, QSIZE), -EINVAL);
}

static void
head_out_of_range(void **state)
{
	uint16_t heads[4];

	(void)state;
	add_avail(1);
	add_avail(QSIZE);
	assert_int_equal(virtq_pop(&vq, heads, 4), -EINVAL);
	assert_true(vq.broken);
	assert_non_null(vq.broken_why);
}

static void
pop_wraps(void **state)
{
	uint16_t heads[QSIZE];

	(void)state;
	virtq_init(&vq, &vring, mem, 0xfffe, 0, 0);
	vring.avail->idx = 0xfffe;
	for (uint16_t i = 0; i < 4; i++)
		add_avail(i + 10);
	assert_int_equal(vring.avail->idx, 2);
	assert_int_equal(virtq_pending(&vq), 4);
	assert_int_equal(virtq_pop(&vq, heads, QSIZE), 4);
	for (uint16_t i = 0; i < 4; i++)
		assert_int_equal(heads[i], i + 10);
	assert_int_equal(vq.last_avail_idx, 2);
	assert_int_equal(virtq_pop(&vq, heads, 0), 0);
}

static void
bad_size(void **state)
{
	uint16_t heads[4];

	(void)state;
	vring.size = 12;
	virtq_init(&vq, &vring, mem, 0, 0, 0);
	assert_true(vq.broken);
	assert_int_equal(virtq_pop(&vq, heads, 4), -EINVAL);
	virtq_push(&vq, 0, 0);
	assert_false(virtq_flush(&vq));
	expect_map(0, -EFAULT);
	vring.size = 0;
	virtq_init(&vq, &vring, mem, 0, 0, 0);
	assert_true(vq.broken);
	expect_map(0, -EFAULT);
}

/* used_event: the slot just past the avail ring. */
static void
set_used_event(uint16_t v)
{
	vring.avail->ring[QSIZE] = v;
}

static uint16_t
avail_event(void)
{
	uint16_t v;

	memcpy(&v, &vring.used->ring[QSIZE], sizeof(v));
	return v;
}

static void
push_flush_flags(void **state)
{
	(void)state;
	assert_false(virtq_flush(&vq)); /* nothing pushed */
	virtq_push(&vq, 3, 100);
	virtq_push(&vq, 5, 0);
	assert_int_equal(vring.used->idx, 0); /* not yet published */
	assert_true(virtq_flush(&vq));
	assert_int_equal(vring.used->idx, 2);
	assert_int_equal(vring.used->ring[0].id, 3);
	assert_int_equal(vring.used->ring[0].len, 100);
	assert_int_equal(vring.used->ring[1].id, 5);
	assert_int_equal(vring.used->ring[1].len, 0);
	assert_false(virtq_flush(&vq));

	vring.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	virtq_push(&vq, 1, 1);
	assert_false(virtq_flush(&vq));
	assert_int_equal(vring.used->idx, 3); /* published all the same */
	vring.avail->flags = 0;
	assert_false(virtq_flush(&vq)); /* nothing new */

	/* The used ring wraps at size, the index at 65536. */
	virtq_init(&vq, &vring, mem, 0, 0xffff, 0);
	virtq_push(&vq, 7, 70);
	virtq_push(&vq, 8, 80);
	assert_true(virtq_flush(&vq));
	assert_int_equal(vring.used->idx, 1);
	assert_int_equal(vring.used->ring[QSIZE - 1].id, 7);
	assert_int_equal(vring.used->ring[0].id, 8);
}

static void
push_flush_event_idx(void **state)
{
	(void)state;
	virtq_init(&vq, &vring, mem, 0, 0xfffd, FEAT_EVENT_IDX);
	vring.avail->flags = VRING_AVAIL_F_NO_INTERRUPT; /* ignored with event idx */
	set_used_event(0x1234);
	virtq_push(&vq, 0, 0);
	assert_true(virtq_flush(&vq)); /* first time: always */
	assert_int_equal(vring.used->idx, 0xfffe);

	/* Driver wants an interrupt once used idx passes 0xffff: crosses 0. */
	set_used_event(0xffff);
	virtq_push(&vq, 1, 0);
	virtq_push(&vq, 2, 0);
	assert_true(virtq_flush(&vq)); /* 0xfffe -> 0: event 0xffff in between */
	assert_int_equal(vring.used->idx, 0);

	set_used_event(5);
	virtq_push(&vq, 3, 0);
	assert_false(virtq_flush(&vq)); /* 0 -> 1 */
	virtq_push(&vq, 3, 0);
	virtq_push(&vq, 3, 0);
	virtq_push(&vq, 3, 0);
	assert_false(virtq_flush(&vq)); /* 1 -> 4 */
	virtq_push(&vq, 3, 0);
	assert_false(virtq_flush(&vq)); /* 4 -> 5: event 5 fires when idx passes 5 */
	virtq_push(&vq, 3, 0);
	assert_true(virtq_flush(&vq)); /* 5 -> 6 */

	/* An event already passed (driver behind): no interrupt. */
	set_used_event(2);
	virtq_push(&vq, 3, 0);
	assert_false(virtq_flush(&vq));
	/* The exact next one. */
	set_used_event(7);
	virtq_push(&vq, 3, 0);
	assert_true(virtq_flush(&vq));
	assert_false(virtq_flush(&vq));
}

/*
 * An early publish shows the elements at once but leaves the interrupt
 * decision to virtq_flush(), for everything since the last flush.
 */
static void
publish_early_then_flush(void **state)
{
	uint16_t heads[4];

	(void)state;
	virtq_init(&vq, &vring, mem, 0, 0, FEAT_EVENT_IDX);
	virtq_push(&vq, 0, 0);
	assert_true(virtq_flush(&vq)); /* first time: always */
	set_used_event(2);             /* wake me when idx passes 2 */
	virtq_push(&vq, 1, 10);
	virtq_push(&vq, 2, 20);
	virtq_publish_early(&vq);
	assert_int_equal(vring.used->idx, 3);
	assert_int_equal(vring.used->ring[2].len, 20);
	virtq_push(&vq, 3, 30);
	/* 1 -> 4 crosses the event, though 3 was already visible. */
	assert_true(virtq_flush(&vq));
	assert_int_equal(vring.used->idx, 4);
	assert_false(virtq_flush(&vq));
	/* Early publish alone never counts as signalled: nothing to flush is false. */
	virtq_publish_early(&vq);
	assert_false(virtq_flush(&vq));

	/* seen_avail_idx: what the last pop read, even past the burst's max. */
	add_avail(5);
	add_avail(6);
	assert_int_equal(virtq_pop(&vq, heads, 1), 1);
	assert_int_equal(vq.seen_avail_idx, 2);
	assert_int_equal(vq.last_avail_idx, 1);
	assert_int_equal(virtq_pop(&vq, heads, 4), 1);
	assert_int_equal(vq.last_avail_idx, vq.seen_avail_idx);

	/* A broken ring is left alone. */
	vq.used = NULL;
	virtq_publish_early(&vq);
}

static void
set_notify(void **state)
{
	(void)state;
	vring.used->flags = 0x8000; /* other bits are preserved */
	virtq_set_notify(&vq, false);
	assert_int_equal(vring.used->flags, 0x8000 | VRING_USED_F_NO_NOTIFY);
	virtq_set_notify(&vq, false);
	assert_int_equal(vring.used->flags, 0x8000 | VRING_USED_F_NO_NOTIFY);
	virtq_set_notify(&vq, true);
	assert_int_equal(vring.used->flags, 0x8000);
	assert_int_equal(avail_event(), 0);

	virtq_init(&vq, &vring, mem, 0x4321, 0, FEAT_EVENT_IDX);
	vring.used->flags = 0;
	virtq_set_notify(&vq, true);
	assert_int_equal(avail_event(), 0x4321);
	assert_int_equal(vring.used->flags, 0);
	vring.avail->idx = 0x4322;
	assert_int_equal(virtq_pending(&vq), 1);
	virtq_set_notify(&vq, false);
	assert_int_equal(vring.used->flags, 0);
}

static void
iov_copy_edges(void **state)
{
	char a[4] = "abcd", b[1] = "e", c[3] = "fgh", out[16];
	struct iovec iov[4] = {{a, 4}, {NULL, 0}, {b, 1}, {c, 3}};

	(void)state;
	memset(out, 0, sizeof(out));
	assert_int_equal(iov_copy_from(iov, 4, 0, out, sizeof(out)), 8);
	assert_memory_equal(out, "abcdefgh", 8);
	assert_int_equal(iov_copy_from(iov, 4, 3, out, 3), 3);
	assert_memory_equal(out, "def", 3);
	assert_int_equal(iov_copy_from(iov, 4, 4, out, 1), 1);
	assert_memory_equal(out, "e", 1);
	assert_int_equal(iov_copy_from(iov, 4, 7, out, 5), 1); /* len past end */
	assert_int_equal(iov_copy_from(iov, 4, 8, out, 5), 0); /* at end */
	assert_int_equal(iov_copy_from(iov, 4, 9, out, 5), 0); /* past end */
	assert_int_equal(iov_copy_from(iov, 4, SIZE_MAX, out, SIZE_MAX), 0);
	assert_int_equal(iov_copy_from(iov, 4, 2, out, 0), 0);
	assert_int_equal(iov_copy_from(iov, 0, 0, out, 4), 0);

	assert_int_equal(iov_copy_to(iov, 4, 2, "XYZW", 4), 4);
	assert_memory_equal(a, "abXY", 4);
	assert_memory_equal(b, "Z", 1);
	assert_memory_equal(c, "Wgh", 3);
	assert_int_equal(iov_copy_to(iov, 4, 6, "123456", 6), 2);
	assert_memory_equal(c, "W12", 3);
	assert_int_equal(iov_copy_to(iov, 4, 8, "1", 1), 0);
}

static void
iov_slice_edges(void **state)
{
	char a[4], b[1], c[3];
	struct iovec iov[4] = {{a, 4}, {NULL, 0}, {b, 1}, {c, 3}}, dst[4];

	(void)state;
	assert_int_equal(iov_slice(iov, 4, 2, 4, dst, 4), 3);
	assert_ptr_equal(dst[0].iov_base, a + 2);
	assert_int_equal(dst[0].iov_len, 2);
	assert_ptr_equal(dst[1].iov_base, b);
	assert_int_equal(dst[1].iov_len, 1);
	assert_ptr_equal(dst[2].iov_base, c);
	assert_int_equal(dst[2].iov_len, 1);

	assert_int_equal(iov_slice(iov, 4, 4, 4, dst, 4), 2); /* up to the end */
	assert_ptr_equal(dst[0].iov_base, b);
	assert_int_equal(iov_slice(iov, 4, 0, 8, dst, 2), -E2BIG);
	assert_int_equal(iov_slice(iov, 4, 0, 9, dst, 4), -ERANGE); /* len past end */
	assert_int_equal(iov_slice(iov, 4, 9, 0, dst, 4), -ERANGE); /* off past end */
	assert_int_equal(iov_slice(iov, 4, 8, 0, dst, 4), 0);       /* empty at end */
	assert_int_equal(iov_slice(iov, 4, 3, 0, dst, 0), 0);
	assert_int_equal(iov_slice(iov, 4, 1, SIZE_MAX, dst, 4), -ERANGE);
	assert_int_equal(iov_slice(iov, 4, SIZE_MAX, 2, dst, 4), -ERANGE);
	assert_int_equal(iov_slice(iov, 0, 0, 0, dst, 4), 0);
	assert_int_equal(iov_slice(iov, 0, 0, 1, dst, 4), -ERANGE);
	assert_int_equal(iov_slice(iov, 4, 0, 8, dst, 3), 3);
}

/* A whole request: pop, map, write the reply into the chain, push, flush. */
static void
round_trip(void **state)
{
	struct vring_desc *d = vring.desc;
	uint16_t heads[4];
	char buf[8];

	(void)state;
	memcpy(hva(GPA_DATA), "request", 8);
	set_desc(d, 9, GPA_DATA, 8, VRING_DESC_F_NEXT, 10);
	set_desc(d, 10, GPA_B - 2, 4, VRING_DESC_F_WRITE, 0);
	add_avail(9);
	assert_int_equal(virtq_pop(&vq, heads, 4), 1);
	expect_map(heads[0], 0);
	assert_int_equal(iov_copy_from(chain.iov, chain.n_out, 0, buf, sizeof(buf)), 8);
	assert_string_equal(buf, "request");
	assert_int_equal(iov_copy_to(chain.iov + chain.n_out, chain.n_in, 0, "ok!", 4), 4);
	assert_memory_equal(hva(GPA_B - 2), "ok", 2);
	assert_memory_equal(hva(GPA_B), "!", 2);
	virtq_push(&vq, chain.head, 4);
	assert_true(virtq_flush(&vq));
	assert_int_equal(vring.used->ring[0].id, 9);
	assert_int_equal(vring.used->ring[0].len, 4);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(simple_chain),
		T(only_writable_and_only_readable),
		T(indirect_table),
		T(region_split),
		T(zero_length_skipped),
		T(direct_loop),
		T(indirect_loop),
		T(bad_indirect),
		T(bad_addresses),
		T(bad_next_and_order),
		T(too_many_segments),
		T(four_gib),
		T(avail_broken),
		T(head_out_of_range),
		T(pop_wraps),
		T(bad_size),
		T(push_flush_flags),
		T(push_flush_event_idx),
		T(publish_early_then_flush),
		T(set_notify),
		T(iov_copy_edges),
		T(iov_slice_edges),
		T(round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
