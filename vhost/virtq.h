/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device side of a split virtqueue, for the backends whose rings we walk
 * ourselves (vhost-user-scsi): take available heads, map a descriptor chain
 * (direct or indirect) into host iovecs with every address and length checked
 * against the guest memory table, return used elements, and decide whether
 * the driver wants an interrupt (VIRTIO_RING_F_EVENT_IDX or NO_INTERRUPT).
 *
 * Guest memory is untrusted: nothing here trusts an index, an address or a
 * length read from the rings. A chain that lies gets a negative errno and a
 * reason; the ring indexes themselves going wrong mark the queue broken.
 * No rte_vhost calls: the caller does dirty logging, inflight tracking and
 * the call eventfd, so that this module is testable on fake guest memory.
 */
#ifndef VHOSTD_VIRTQ_H
#define VHOSTD_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_ring.h>
#include <rte_vhost.h>

/* Segments of one mapped chain (after splitting at memory region borders). */
#define VIRTQ_MAX_IOV 130

/* Entries of an indirect table (larger tables: -E2BIG). Bounds the walk. */
#define VIRTQ_MAX_INDIRECT 4096

struct virtq {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	const struct rte_vhost_memory *mem;
	uint16_t size;           /* number of descriptors */
	uint16_t last_avail_idx; /* next avail ring slot to take */
	uint16_t seen_avail_idx; /* avail->idx as virtq_pop() last read it */
	uint16_t last_used_idx;  /* our copy of used->idx, incl. unpublished */
	uint16_t published_used; /* used->idx as last stored */
	uint16_t signalled_used; /* used idx at the last interrupt */
	bool signalled_valid;
	bool event_idx;          /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;           /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool broken;             /* ring indexes went wrong: stop using it */
	const char *broken_why;
};

struct virtq_chain {
	uint16_t head;
	uint16_t n_out;   /* device-readable segments: iov[0 .. n_out) */
	uint16_t n_in;    /* device-writable segments: iov[n_out .. n_out + n_in) */
	uint32_t out_len; /* bytes in the readable segments */
	uint32_t in_len;  /* bytes in the writable segments */
	struct iovec iov[VIRTQ_MAX_IOV];
	uint64_t gpa[VIRTQ_MAX_IOV]; /* guest physical address of each segment */
};

/*
 * Bind @vq to the rings of @vring (from rte_vhost_get_vhost_vring()) with the
 * ring indexes to start from (rte_vhost_get_vring_base()); @features are the
 * negotiated virtio features.
 */
void virtq_init(struct virtq *vq, const struct rte_vhost_vring *vring,
	const struct rte_vhost_memory *mem, uint16_t last_avail_idx, uint16_t last_used_idx,
	uint64_t features);

/*
 * Take up to @max available heads into @heads (acquire-load of avail->idx).
 * Returns how many, 0 when none, or -EINVAL after marking the queue broken
 * (avail->idx more than size ahead, head index out of range).
 */
int virtq_pop(struct virtq *vq, uint16_t *heads, unsigned int max);

/*
 * Walk the chain of @head and translate it. Returns 0, or a negative errno
 * with *@why set to a static explanation: -EFAULT (address not in guest
 * memory), -ELOOP (chain longer than the ring: a loop), -E2BIG (more than
 * VIRTQ_MAX_IOV segments or more than 4 GiB), -EINVAL (bad flags: indirect
 * inside indirect, indirect with NEXT, a table length not a multiple of 16,
 * a readable segment after a writable one, next index out of range).
 * The queue itself stays usable: the caller completes the head with 0 bytes.
 */
int virtq_map_chain(const struct virtq *vq, uint16_t head, struct virtq_chain *c,
	const char **why);

/* Add a used element (not visible to the driver until virtq_flush()). */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t written);

/*
 * Publish the pushed elements (release-store of used->idx). Returns true when
 * the driver asked to be interrupted for them (event idx / NO_INTERRUPT);
 * the caller then signals the call eventfd.
 */
bool virtq_flush(struct virtq *vq);

/*
 * Make the pushed elements visible now (release-store of used->idx), in the
 * middle of a batch, without the notification check: the driver, if it
 * polls, starts on them while the rest of the batch runs. virtq_flush() at
 * the end of the batch still decides about the interrupt for all of it.
 */
void virtq_publish_early(struct virtq *vq);

/*
 * Ask the driver to kick (true) or not (false) for new buffers: used->flags
 * NO_NOTIFY, or avail_event with event idx. After enabling, re-check the ring
 * (virtq_pending()) to close the race with a buffer added meanwhile.
 */
void virtq_set_notify(struct virtq *vq, bool enable);

/* Available heads not yet taken (0 if broken). */
unsigned int virtq_pending(const struct virtq *vq);

/* iovec helpers: all bounded by the iovecs, return bytes copied. */
size_t iov_copy_from(const struct iovec *iov, unsigned int n, size_t off, void *dst, size_t len);
size_t iov_copy_to(const struct iovec *iov, unsigned int n, size_t off, const void *src,
	size_t len);
/*
 * Describe bytes [@off, @off + @len) of @src in @dst (at most @max entries).
 * Returns the number of entries, or -E2BIG / -ERANGE.
 */
int iov_slice(const struct iovec *src, unsigned int n, size_t off, size_t len, struct iovec *dst,
	unsigned int max);

#endif
