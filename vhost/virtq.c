/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device side of a split virtqueue (see virtq.h). Everything read from guest
 * memory is read once into a local and checked before use: the guest may
 * rewrite descriptors and ring entries while we walk them.
 */
#include <errno.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>

#include "virtq.h"

/* Walk state of one chain: where translated segments go, and region hint. */
struct walk {
	const struct rte_vhost_memory *mem;
	struct virtq_chain *c;
	unsigned int n; /* iovecs filled */
	uint32_t hint;  /* region of the previous segment: chains rarely leave it */
	const char *why;
};

static inline bool
ring_usable(const struct virtq *vq)
{
	/* Sizes are checked at init; a queue with bad rings must not be touched. */
	return vq->size != 0 && vq->desc != NULL && vq->avail != NULL && vq->used != NULL &&
	       (vq->size & (vq->size - 1)) == 0;
}

static void
mark_broken(struct virtq *vq, const char *why)
{
	vq->broken = true;
	if (vq->broken_why == NULL)
		vq->broken_why = why;
}

void
virtq_init(struct virtq *vq, const struct rte_vhost_vring *vring,
	const struct rte_vhost_memory *mem, uint16_t last_avail_idx, uint16_t last_used_idx,
	uint64_t features)
{
	memset(vq, 0, sizeof(*vq));
	vq->desc = vring->desc;
	vq->avail = vring->avail;
	vq->used = vring->used;
	vq->mem = mem;
	vq->size = vring->size;
	vq->last_avail_idx = last_avail_idx;
	vq->last_used_idx = last_used_idx;
	vq->published_used = last_used_idx;
	vq->signalled_used = last_used_idx;
	vq->event_idx = (features & (1ULL << VIRTIO_RING_F_EVENT_IDX)) != 0;
	vq->indirect = (features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC)) != 0;
	/* Split rings have power-of-two sizes (<= 32768): index with a mask. */
	if (vq->desc == NULL || vq->avail == NULL || vq->used == NULL)
		mark_broken(vq, "ring not mapped");
	else if (vq->size == 0 || vq->size > 32768 || (vq->size & (vq->size - 1)) != 0)
		mark_broken(vq, "queue size is not a power of two up to 32768");
}

int
virtq_pop(struct virtq *vq, uint16_t *heads, unsigned int max)
{
	uint16_t avail_idx, n, mask, i;

	if (unlikely(vq->broken))
		return -EINVAL;
	/* Acquire: the ring entries below are read after the index that covers them. */
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	n = (uint16_t)(avail_idx - vq->last_avail_idx);
	if (unlikely(n > vq->size)) {
		mark_broken(vq, "avail index more than the queue size ahead");
		return -EINVAL;
	}
	vq->seen_avail_idx = avail_idx;
	if (n > max)
		n = (uint16_t)max;
	mask = (uint16_t)(vq->size - 1);
	for (i = 0; i < n; i++) {
		uint16_t head =
			__atomic_load_n(&vq->avail->ring[(uint16_t)(vq->last_avail_idx + i) & mask],
				__ATOMIC_RELAXED);

		if (unlikely(head >= vq->size)) {
			mark_broken(vq, "available head out of range");
			return -EINVAL;
		}
		heads[i] = head;
	}
	vq->last_avail_idx = (uint16_t)(vq->last_avail_idx + n);
	return n;
}

/*
 * Copy a descriptor out of guest memory exactly once. memcpy because an
 * indirect table need not be aligned; the compiler barrier stops the
 * compiler from re-reading guest memory in place of the local copy.
 */
static inline void
read_desc(const struct vring_desc *p, struct vring_desc *d)
{
	memcpy(d, p, sizeof(*d));
	rte_compiler_barrier();
}

static inline const struct rte_vhost_mem_region *
find_region(struct walk *w, uint64_t gpa)
{
	const struct rte_vhost_memory *mem = w->mem;
	const struct rte_vhost_mem_region *r;
	uint32_t i;

	/* gpa - base < size: no overflow whatever the region or the gpa. */
	if (likely(w->hint < mem->nregions)) {
		r = &mem->regions[w->hint];
		if (likely(gpa - r->guest_phys_addr < r->size))
			return r;
	}
	for (i = 0; i < mem->nregions; i++) {
		r = &mem->regions[i];
		if (gpa - r->guest_phys_addr < r->size) {
			w->hint = i;
			return r;
		}
	}
	return NULL;
}

/*
 * Translate [gpa, gpa + len) into iovecs, one per region it crosses. The
 * next region is looked up at the end of the previous one, so only regions
 * contiguous in GPA continue a segment.
 */
static int
map_seg(struct walk *w, uint64_t gpa, uint32_t len)
{
	const struct rte_vhost_mem_region *r;
	uint64_t rest = len, off, chunk;

	if (unlikely(gpa > UINT64_MAX - rest)) {
		w->why = "segment address + length overflows";
		return -EFAULT;
	}
	do {
		r = find_region(w, gpa);
		if (unlikely(r == NULL)) {
			w->why = "segment not in guest memory";
			return -EFAULT;
		}
		if (unlikely(w->n >= VIRTQ_MAX_IOV)) {
			w->why = "too many segments";
			return -E2BIG;
		}
		off = gpa - r->guest_phys_addr;
		chunk = RTE_MIN(rest, r->size - off);
		w->c->iov[w->n].iov_base = (void *)(uintptr_t)(r->host_user_addr + off);
		w->c->iov[w->n].iov_len = chunk;
		w->c->gpa[w->n] = gpa;
		w->n++;
		gpa += chunk;
		rest -= chunk;
	} while (unlikely(rest != 0));
	return 0;
}

/* An indirect table must be contiguous in one region: it is read in place. */
static const struct vring_desc *
map_table(struct walk *w, uint64_t gpa, uint32_t len)
{
	const struct rte_vhost_mem_region *r;

	if (unlikely(gpa > UINT64_MAX - len))
		return NULL;
	r = find_region(w, gpa);
	if (unlikely(r == NULL || len > r->size - (gpa - r->guest_phys_addr)))
		return NULL;
	return (const struct vring_desc *)(uintptr_t)(r->host_user_addr +
						      (gpa - r->guest_phys_addr));
}

static int
chain_error(const char **why, const char *msg, int err)
{
	if (why != NULL)
		*why = msg;
	return err;
}

int
virtq_map_chain(const struct virtq *vq, uint16_t head, struct virtq_chain *c, const char **why)
{
	struct walk w = {.mem = vq->mem, .c = c};
	const struct vring_desc *table = vq->desc;
	uint32_t tsize = vq->size; /* entries of the table being walked */
	uint32_t budget = vq->size;
	uint64_t out_len = 0, in_len = 0;
	unsigned int n_out = 0;
	bool in_table = false, writing = false;
	uint32_t idx = head;
	struct vring_desc d;
	int rc;

	c->head = head;
	c->n_out = c->n_in = 0;
	c->out_len = c->in_len = 0;
	if (unlikely(vq->mem == NULL || !ring_usable(vq)))
		return chain_error(why, "queue not usable", -EFAULT);
	if (unlikely(head >= vq->size))
		return chain_error(why, "head index out of range", -EINVAL);

	/*
	 * Fast path: one direct descriptor (a net frame with its header, a
	 * receive buffer). Anything else is walked below from the start.
	 */
	read_desc(&table[idx], &d);
	if (likely(!(d.flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)))) {
		if (d.len != 0) {
			rc = map_seg(&w, d.addr, d.len);
			if (unlikely(rc != 0))
				return chain_error(why, w.why, rc);
		}
		if (d.flags & VRING_DESC_F_WRITE) {
			c->n_in = (uint16_t)w.n;
			c->in_len = d.len;
		} else {
			c->n_out = (uint16_t)w.n;
			c->out_len = d.len;
		}
		return 0;
	}

	for (;;) {
		if (unlikely(budget-- == 0))
			return chain_error(why,
				in_table ? "loop in an indirect table" : "descriptor chain loops",
				-ELOOP);
		read_desc(&table[idx], &d);

		if (unlikely(d.flags & VRING_DESC_F_INDIRECT)) {
			if (!vq->indirect)
				return chain_error(
					why, "indirect descriptor not negotiated", -EINVAL);
			if (in_table)
				return chain_error(
					why, "indirect descriptor in an indirect table", -EINVAL);
			if (d.flags & VRING_DESC_F_NEXT)
				return chain_error(why, "indirect descriptor with NEXT", -EINVAL);
			if (d.len == 0 || d.len % sizeof(struct vring_desc) != 0)
				return chain_error(why,
					"indirect table length not a non-zero multiple of 16",
					-EINVAL);
			if (d.len > VIRTQ_MAX_INDIRECT * sizeof(struct vring_desc))
				return chain_error(why, "indirect table too large", -E2BIG);
			table = map_table(&w, d.addr, d.len);
			if (table == NULL)
				return chain_error(
					why, "indirect table not in one memory region", -EFAULT);
			/* The spec lets direct descriptors precede the indirect one. */
			tsize = budget = d.len / sizeof(struct vring_desc);
			idx = 0;
			in_table = true;
			continue;
		}

		if (d.len != 0) {
			if (d.flags & VRING_DESC_F_WRITE) {
				if (!writing) {
					writing = true;
					n_out = w.n;
				}
				in_len += d.len;
			} else {
				if (unlikely(writing))
					return chain_error(why,
						"readable segment after a writable one", -EINVAL);
				out_len += d.len;
			}
			if (unlikely((out_len | in_len) > UINT32_MAX))
				return chain_error(why, "chain longer than 4 GiB", -E2BIG);
			rc = map_seg(&w, d.addr, d.len);
			if (unlikely(rc != 0))
				return chain_error(why, w.why, rc);
		}

		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (unlikely(d.next >= tsize))
			return chain_error(why, "next index out of range", -EINVAL);
		idx = d.next;
	}

	if (!writing)
		n_out = w.n;
	c->n_out = (uint16_t)n_out;
	c->n_in = (uint16_t)(w.n - n_out);
	c->out_len = (uint32_t)out_len;
	c->in_len = (uint32_t)in_len;
	return 0;
}

void
virtq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	struct vring_used_elem *e;

	if (unlikely(!ring_usable(vq)))
		return;
	/* Plain stores: the release store of used->idx in virtq_flush() orders them. */
	e = &vq->used->ring[vq->last_used_idx & (vq->size - 1)];
	e->id = head;
	e->len = written;
	vq->last_used_idx++;
}

/* True when @event is in (old, new]: the driver wants to hear about it. */
static inline bool
need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool
virtq_flush(struct virtq *vq)
{
	uint16_t new_idx = vq->last_used_idx, old;
	bool valid;

	if (unlikely(!ring_usable(vq)) || new_idx == vq->published_used)
		return false;
	__atomic_store_n(&vq->used->idx, new_idx, __ATOMIC_RELEASE);
	vq->published_used = new_idx;
	/*
	 * Store used->idx, then load used_event / flags: without a full fence the
	 * load may pass the store and we miss a driver that just re-enabled.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	if (!vq->event_idx)
		return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) &
			 VRING_AVAIL_F_NO_INTERRUPT);

	old = vq->signalled_used;
	valid = vq->signalled_valid;
	vq->signalled_used = new_idx;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	/* used_event lives just past the avail ring: avail->ring[size]. */
	return need_event(
		__atomic_load_n(&vq->avail->ring[vq->size], __ATOMIC_RELAXED), new_idx, old);
}

void
virtq_publish_early(struct virtq *vq)
{
	/* published_used stays: virtq_flush() must still run its event check. */
	if (likely(ring_usable(vq)))
		__atomic_store_n(&vq->used->idx, vq->last_used_idx, __ATOMIC_RELEASE);
}

void
virtq_set_notify(struct virtq *vq, bool enable)
{
	uint16_t flags;

	if (unlikely(!ring_usable(vq)))
		return;
	if (vq->event_idx) {
		/*
		 * avail_event lives just past the used ring. Disabling needs no
		 * write: once the driver has gone past avail_event it stops kicking.
		 */
		if (enable)
			__atomic_store_n((uint16_t *)&vq->used->ring[vq->size], vq->last_avail_idx,
				__ATOMIC_RELAXED);
	} else {
		flags = __atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED);
		if (enable)
			flags &= (uint16_t)~VRING_USED_F_NO_NOTIFY;
		else
			flags |= VRING_USED_F_NO_NOTIFY;
		__atomic_store_n(&vq->used->flags, flags, __ATOMIC_RELAXED);
	}
	/* The store above must be visible before the caller re-reads avail->idx. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

unsigned int
virtq_pending(const struct virtq *vq)
{
	if (unlikely(vq->broken))
		return 0;
	return (uint16_t)(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) - vq->last_avail_idx);
}

/* Find iovec *@i and the offset in it of byte @off; false if @off is past the end. */
static inline bool
iov_seek(const struct iovec *iov, unsigned int n, size_t off, unsigned int *i, size_t *in)
{
	unsigned int k = 0;

	/* >= also skips zero-length iovecs, so iov[k] has bytes left at *in. */
	while (k < n && off >= iov[k].iov_len) {
		off -= iov[k].iov_len;
		k++;
	}
	*i = k;
	*in = off;
	return k < n || off == 0;
}

/* Copy between @buf and the iovecs, from byte @off; @to: into the iovecs. */
static size_t
iov_copy(const struct iovec *iov, unsigned int n, size_t off, void *buf, size_t len, bool to)
{
	size_t done = 0, in, chunk;
	unsigned int i;

	if (!iov_seek(iov, n, off, &i, &in))
		return 0;
	for (; i < n && done < len; i++, in = 0) {
		chunk = RTE_MIN(iov[i].iov_len - in, len - done);
		if (chunk == 0)
			continue; /* an empty iovec may have a NULL base: no memcpy(NULL) */
		if (to)
			memcpy((char *)iov[i].iov_base + in, (char *)buf + done, chunk);
		else
			memcpy((char *)buf + done, (char *)iov[i].iov_base + in, chunk);
		done += chunk;
	}
	return done;
}

size_t
iov_copy_from(const struct iovec *iov, unsigned int n, size_t off, void *dst, size_t len)
{
	return iov_copy(iov, n, off, dst, len, false);
}

size_t
iov_copy_to(const struct iovec *iov, unsigned int n, size_t off, const void *src, size_t len)
{
	return iov_copy(iov, n, off, (void *)(uintptr_t)src, len, true);
}

int
iov_slice(const struct iovec *src, unsigned int n, size_t off, size_t len, struct iovec *dst,
	unsigned int max)
{
	unsigned int i, k = 0;
	size_t in, chunk;

	if (!iov_seek(src, n, off, &i, &in))
		return -ERANGE;
	for (; len != 0; i++, in = 0) {
		if (i >= n)
			return -ERANGE;
		chunk = src[i].iov_len - in;
		if (chunk == 0)
			continue;
		if (k >= max)
			return -E2BIG;
		chunk = RTE_MIN(chunk, len);
		dst[k].iov_base = (char *)src[i].iov_base + in;
		dst[k].iov_len = chunk;
		k++;
		len -= chunk;
	}
	return (int)k;
}
