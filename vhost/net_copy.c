/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Single-copy frame transfer between two split virtqueues (see net_copy.h).
 * Receive buffers are taken one at a time and given back (the avail index
 * rewound) when a frame cannot be finished, so that a full ring holds frames
 * back in the sender's ring instead of dropping them.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_prefetch.h>

#include "net_copy.h"

/* A 12-byte header split over single bytes is legal, if odd. */
#define HDR_IOV_MAX 12
/*
 * Frames up to this size are copied after the whole burst is decoded, one
 * copy after the other: their misses then overlap instead of each stalling
 * the descriptor work around it.
 */
#define BATCH_COPY_MAX 256

/* Lines of the next frame loaded ahead: a 1518-byte frame and its header. */
#define PREFETCH_LINES 25

uint16_t
net_copy_hdr_len(uint64_t features)
{
	return (features & ((1ULL << VIRTIO_NET_F_MRG_RXBUF) | (1ULL << VIRTIO_F_VERSION_1)))
		       ? sizeof(struct virtio_net_hdr_mrg_rxbuf)
		       : sizeof(struct virtio_net_hdr);
}

/* A read or write position in a list of iovecs. */
struct cursor {
	const struct iovec *iov;
	unsigned int n;
	unsigned int i;
	size_t off; /* into iov[i] */
};

static inline void
cursor_init(struct cursor *c, const struct iovec *iov, unsigned int n, size_t skip)
{
	c->iov = iov;
	c->n = n;
	c->i = 0;
	c->off = 0;
	while (c->i < n && skip >= iov[c->i].iov_len) {
		skip -= iov[c->i].iov_len;
		c->i++;
	}
	c->off = skip;
}

/*
 * Copy up to @len bytes from @src to @dst, advancing both; returns bytes
 * copied. Inlined: deliver()'s loop is the hot one, and a call showed up as
 * 7 % of a bridge's PMD once write_at() became a second caller.
 */
static __rte_always_inline size_t
cursor_copy(struct cursor *dst, struct cursor *src, size_t len, struct net_copy_batch *batch)
{
	size_t done = 0;

	while (done < len && dst->i < dst->n && src->i < src->n) {
		size_t d_left = dst->iov[dst->i].iov_len - dst->off;
		size_t s_left = src->iov[src->i].iov_len - src->off;
		size_t chunk = RTE_MIN(RTE_MIN(d_left, s_left), len - done);

		if (chunk != 0) {
			void *to = (char *)dst->iov[dst->i].iov_base + dst->off;
			const void *from = (const char *)src->iov[src->i].iov_base + src->off;

			if (batch != NULL && batch->n < NET_COPY_BATCH) {
				/*
				 * Own the line before the copy runs: stores that miss
				 * would otherwise fill the store queue and stall the
				 * descriptor work of the rest of the burst.
				 */
				__builtin_prefetch(to, 1, 3);
				batch->job[batch->n].dst = to;
				batch->job[batch->n].src = from;
				batch->job[batch->n].len = (uint32_t)chunk;
				batch->n++;
			} else {
				/* memmove: two ports of one guest may hand us overlapping buffers.
				 */
				memmove(to, from, chunk);
			}
			done += chunk;
		}
		dst->off += chunk;
		src->off += chunk;
		if (dst->off == dst->iov[dst->i].iov_len) {
			dst->i++;
			dst->off = 0;
		}
		if (src->off == src->iov[src->i].iov_len) {
			src->i++;
			src->off = 0;
		}
	}
	return done;
}

/* Give back the last @n receive buffers taken (not pushed yet). */
static inline void
rx_unpop(const struct net_copy_side *rx, uint16_t n)
{
	rx->vq->last_avail_idx = (uint16_t)(rx->vq->last_avail_idx - n);
}

enum deliver_rc {
	DELIVERED,
	DROPPED_TOO_BIG, /* B's buffers cannot hold it */
	DROPPED_BAD_RX,  /* B's buffer lied: returned empty */
	RX_FULL,         /* no buffer now: try again later */
	RX_BROKEN,
};

/* Write @len bytes of @buf at @at (a cursor into B's buffer), now. */
static size_t
write_at(struct cursor *at, const void *buf, size_t len)
{
	struct iovec v = {(void *)(uintptr_t)buf, len};
	struct cursor from;

	/* The header in one segment, as nearly always: no walk. */
	if (likely(at->i < at->n && at->iov[at->i].iov_len - at->off >= len)) {
		memcpy((char *)at->iov[at->i].iov_base + at->off, buf, len);
		return len;
	}
	cursor_init(&from, &v, 1, 0);
	return cursor_copy(at, &from, len, NULL);
}

/*
 * Copy one frame (bytes [@skip, @skip + @len) of @txc's readable segments)
 * into as many of B's receive buffers as it needs, header first. The first
 * @l2_len bytes of the frame then come from @l2 instead (see net_copy_frame()).
 */
static enum deliver_rc
deliver(const struct net_copy_side *rx, const struct virtq_chain *txc, size_t skip, uint32_t len,
	const uint8_t *l2, uint16_t l2_len, struct virtio_net_hdr_mrg_rxbuf *rh,
	struct virtq_chain *rxc, struct net_copy_batch *jobs, struct net_copy_result *res)
{
	uint16_t bufs[NET_COPY_MAX_RX_BUFS];
	uint32_t wrote[NET_COPY_MAX_RX_BUFS];
	struct iovec hdr_iov[HDR_IOV_MAX];
	unsigned int max_bufs = rx->mrg_rxbuf ? NET_COPY_MAX_RX_BUFS : 1;
	uint16_t nbufs = 0;
	uint32_t left = len, l2_done = 0;
	struct cursor src, dst, at;
	/*
	 * Small frames wait in the batch (see net_copy_batch), big ones go now;
	 * so does a frame whose first bytes are then written from @l2, which
	 * must land after A's.
	 */
	struct net_copy_batch *defer = len <= BATCH_COPY_MAX && l2_len == 0 ? jobs : NULL;
	unsigned int jobs0;
	int n_hdr = 0;

	cursor_init(&src, txc->iov, txc->n_out, skip);
	/* Copies put off for a frame that then fails are forgotten with it. */
	jobs0 = jobs->n;
	do {
		const struct iovec *in;
		uint32_t put = 0, copied;
		uint16_t head;
		int rc;

		if (unlikely(nbufs == max_bufs)) {
			rx_unpop(rx, nbufs);
			jobs->n = jobs0;
			return DROPPED_TOO_BIG;
		}
		rc = virtq_pop(rx->vq, &head, 1);
		if (unlikely(rc <= 0)) {
			if (rc < 0) {
				/* Give back what the frame took: the guest keeps its buffers. */
				rx_unpop(rx, nbufs);
				jobs->n = jobs0;
				return RX_BROKEN;
			}
			rx_unpop(rx, nbufs);
			jobs->n = jobs0;
			return RX_FULL;
		}
		rc = virtq_map_chain(rx->vq, head, rxc, &res->why);
		in = &rxc->iov[rxc->n_out];
		if (unlikely(rc != 0 || (nbufs == 0 && rxc->in_len < rx->hdr_len))) {
			/*
			 * Return this buffer and those taken for the frame so far
			 * empty: the guest drops a zero-length buffer.
			 */
			if (rc == 0)
				res->why = "receive buffer shorter than the virtio-net header";
			for (uint16_t k = 0; k < nbufs; k++)
				virtq_push(rx->vq, bufs[k], 0);
			virtq_push(rx->vq, head, 0);
			jobs->n = jobs0;
			res->bad_rx++;
			return DROPPED_BAD_RX;
		}
		if (nbufs == 0) {
			n_hdr = iov_slice(in, rxc->n_in, 0, rx->hdr_len, hdr_iov, HDR_IOV_MAX);
			if (unlikely(n_hdr < 0)) {
				virtq_push(rx->vq, head, 0);
				res->why = "virtio-net header split over too many segments";
				res->bad_rx++;
				return DROPPED_BAD_RX;
			}
			put = rx->hdr_len;
		}
		cursor_init(&dst, in, rxc->n_in, put);
		at = dst;
		copied = (uint32_t)cursor_copy(&dst, &src, left, defer);
		/* This buffer holds the frame from byte len - left on: l2_done, if < l2_len. */
		if (l2_done < l2_len && copied != 0)
			l2_done += (uint32_t)write_at(
				&at, l2 + l2_done, RTE_MIN((uint32_t)(l2_len - l2_done), copied));
		put += copied;
		left -= copied;
		bufs[nbufs] = head;
		wrote[nbufs] = put;
		nbufs++;
	} while (left != 0);

	rh->num_buffers = nbufs;
	if (likely(n_hdr == 1)) {
		/*
		 * Fixed-size copies the compiler turns into plain stores (the guest's
		 * buffer need not be aligned): no library call for 12 bytes.
		 */
		char *h = hdr_iov[0].iov_base;

		memcpy(h, &rh->hdr, sizeof(rh->hdr));
		if (rx->hdr_len == sizeof(*rh))
			memcpy(h + offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers), &nbufs,
				sizeof(nbufs));
	} else {
		iov_copy_to(hdr_iov, (unsigned int)n_hdr, 0, rh, rx->hdr_len);
	}
	for (uint16_t k = 0; k < nbufs; k++)
		virtq_push(rx->vq, bufs[k], wrote[k]);
	res->frames++;
	res->bytes += len;
	return DELIVERED;
}

/*
 * Start loading the next frame while the current one is copied: the data
 * was last written by the other guest's CPU, so each line is a miss.
 */
void
net_copy_prefetch(const struct virtq_chain *c)
{
	unsigned int lines = 0;

	for (unsigned int k = 0; k < c->n_out; k++)
		for (size_t off = 0; off < c->iov[k].iov_len && lines < PREFETCH_LINES;
			off += RTE_CACHE_LINE_SIZE, lines++)
			rte_prefetch0((const char *)c->iov[k].iov_base + off);
}

/* The descriptor of B's next receive buffer (a hint: the slot may be stale). */
static inline void
prefetch_rx_desc(const struct virtq *vq)
{
	uint16_t head = vq->avail->ring[vq->last_avail_idx & (vq->size - 1)];

	if (head < vq->size)
		rte_prefetch0(&vq->desc[head]);
}

void
net_copy_result_add(struct net_copy_result *sum, const struct net_copy_result *r)
{
	sum->frames += r->frames;
	sum->bytes += r->bytes;
	sum->in_bytes += r->in_bytes;
	sum->tx_done += r->tx_done;
	sum->too_big += r->too_big;
	sum->bad_tx += r->bad_tx;
	sum->bad_rx += r->bad_rx;
	sum->rx_full = r->rx_full;
	sum->small = r->small;
	if (r->why != NULL)
		sum->why = r->why;
}

void
net_copy_batch_run(struct net_copy_batch *b)
{
	for (unsigned int k = 0; k < b->n; k++)
		memmove(b->job[k].dst, b->job[k].src, b->job[k].len);
	b->n = 0;
}

enum net_copy_rc
net_copy_frame(const struct net_copy_side *tx, const struct net_copy_side *rx,
	const struct virtq_chain *txc, const void *l2, uint16_t l2_len, uint32_t max_frame,
	struct virtq_chain *rxc, struct net_copy_batch *batch, struct net_copy_result *res)
{
	struct virtio_net_hdr_mrg_rxbuf th, rh;
	enum deliver_rc d;
	uint32_t len;

	if (unlikely(txc->out_len <= tx->hdr_len)) {
		res->why = "transmit chain without a frame after the header";
		res->bad_tx++;
		return NET_COPY_DROPPED;
	}
	len = txc->out_len - tx->hdr_len;
	if (unlikely(len > max_frame)) {
		res->in_bytes += len;
		res->too_big++;
		return NET_COPY_DROPPED;
	}
	memset(&rh, 0, sizeof(rh));
	/*
	 * A's header matters only for a checksum to pass on. Not reading it
	 * otherwise saves a miss: it usually sits in the line before the frame.
	 */
	if (tx->csum && rx->csum) {
		iov_copy_from(txc->iov, txc->n_out, 0, &th, tx->hdr_len);
		if (th.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
			rh.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
			rh.hdr.csum_start = th.hdr.csum_start;
			rh.hdr.csum_offset = th.hdr.csum_offset;
		}
	}
	rh.hdr.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	d = deliver(rx, txc, tx->hdr_len, len, l2, (uint16_t)RTE_MIN((uint32_t)l2_len, len), &rh,
		rxc, batch, res);
	if (unlikely(d == RX_FULL))
		return NET_COPY_RX_FULL;
	if (unlikely(d == RX_BROKEN))
		return NET_COPY_RX_BROKEN;
	res->in_bytes += len;
	if (unlikely(d == DROPPED_TOO_BIG))
		res->too_big++;
	if (!rx->vq->broken)
		prefetch_rx_desc(rx->vq);
	return d == DELIVERED ? NET_COPY_DONE : NET_COPY_DROPPED;
}

int
net_copy_burst(const struct net_copy_side *tx, const struct net_copy_side *rx, uint32_t max_frame,
	uint32_t min_frame, unsigned int max, struct net_copy_result *res)
{
	uint16_t heads[NET_COPY_MAX_BURST];
	struct virtq_chain txc[2], rxc;
	/* Not zero-filled: 3 KiB, and only job[0 .. n) is ever read. */
	struct net_copy_batch batch;
	const char *map_why[2] = {NULL, NULL};
	int map_rc[2];
	int n, i, rc = 0;

	batch.n = 0;
	memset(res, 0, sizeof(*res));
	n = virtq_pop(tx->vq, heads, RTE_MIN(max, (unsigned int)NET_COPY_MAX_BURST));
	if (n <= 0)
		return n;
	if (!rx->vq->broken && rx->vq->size != 0)
		prefetch_rx_desc(rx->vq);
	map_rc[0] = virtq_map_chain(tx->vq, heads[0], &txc[0], &map_why[0]);
	for (i = 0; i < n; i++) {
		enum net_copy_rc r;

		/* Map the next chain now: its descriptor and data load meanwhile. */
		if (i + 1 < n) {
			struct virtq_chain *next = &txc[(i + 1) & 1];

			map_why[(i + 1) & 1] = NULL;
			map_rc[(i + 1) & 1] =
				virtq_map_chain(tx->vq, heads[i + 1], next, &map_why[(i + 1) & 1]);
			if (map_rc[(i + 1) & 1] == 0)
				net_copy_prefetch(next);
		}
		if (unlikely(map_rc[i & 1] != 0)) {
			res->why = map_why[i & 1];
			res->bad_tx++;
		} else if (min_frame != 0 &&
			   txc[i & 1].out_len <= (uint32_t)tx->hdr_len + min_frame) {
			res->small = true;
			break;
		} else {
			r = net_copy_frame(
				tx, rx, &txc[i & 1], NULL, 0, max_frame, &rxc, &batch, res);
			if (unlikely(r == NET_COPY_RX_FULL)) {
				res->rx_full = true;
				break;
			}
			if (unlikely(r == NET_COPY_RX_BROKEN)) {
				rc = -EINVAL;
				break;
			}
		}
		virtq_push(tx->vq, heads[i], 0);
		res->tx_done++;
	}
	/* Before the caller publishes the used elements. */
	net_copy_batch_run(&batch);
	/* Frames not taken stay in A's ring, in order. */
	tx->vq->last_avail_idx = (uint16_t)(tx->vq->last_avail_idx - (n - i));
	return rc;
}
