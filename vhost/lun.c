/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * LUN backends (null, ram, file) and their per-thread I/O context.
 *
 * null and ram complete inside scsi_task_execute(). The file backend runs a
 * small per-task state machine on the thread's io_uring: one SQE in flight per
 * task, a short transfer or an O_DIRECT-unaligned buffer continues through a
 * bounce buffer, UNMAP ranges and WRITE SAME chunks are issued one after the
 * other. SQEs are only prepared by the command path and submitted in one
 * io_uring_submit() per lun_io_ctx_poll(); a full SQ parks tasks on an
 * overflow list instead of failing them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <liburing.h>
#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_prefetch.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "log.h"
#include "lun_priv.h"

#define HUGE_2M (2u << 20)
#define LUN_BOUNCE_SIZE (256u << 10)
#define LUN_BOUNCE_POOL 8
/*
 * Bytes of the next request's ram LUN block loaded while the current one is
 * copied: a random block of a large LUN misses line by line, and one copy
 * alone keeps too few misses in flight. The prefetches are spread over the
 * current copy, one line per line copied: issued all at once ahead of it,
 * they stalled on the copy's own misses (bench/RESULTS.md).
 */
#ifndef LUN_PREFETCH_READ_BYTES
#define LUN_PREFETCH_READ_BYTES 4096
#endif

#define ASC_WRITE_ERROR 0x0c
#define ASC_UNRECOVERED_READ 0x11
#define ASC_MISCOMPARE 0x1d
#define ASC_INTERNAL_FAILURE 0x44

/* io_flags */
#define IOF_BOUNCE 0x01 /* the data moves through t->bounce in chunks */
#define IOF_FUA 0x02    /* write with RWF_DSYNC */

struct lun_io_ctx {
	struct io_uring ring;
	int efd;
	unsigned int slot;
	unsigned int inflight;
	unsigned int queued; /* SQEs prepared since the last submit */
	struct scsi_task *ovf_head, *ovf_tail;
	uint8_t *pool; /* LUN_BOUNCE_POOL buffers of LUN_BOUNCE_SIZE */
	void *pool_free[LUN_BOUNCE_POOL];
	unsigned int n_free;
	/* ram LUN bytes the next read will copy (lun_prefetch_read()) */
	const uint8_t *pf_next;
	size_t pf_len;
	uint64_t burst_ns; /* start of the current burst, 0 outside one */
};

void
lun_conf_init(struct lun_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->backend = LUN_BACKEND_NULL;
	c->block_size = 512;
	c->cache = LUN_CACHE_NONE;
	snprintf(c->vendor, sizeof(c->vendor), "VHOSTD");
	snprintf(c->product, sizeof(c->product), "VIRTUAL-DISK");
	snprintf(c->revision, sizeof(c->revision), "0001");
}

/* ns per TSC cycle as a 32.32 fixed-point factor; 0 until known. */
static uint64_t lun_tsc_mult;

/*
 * Two timestamps per command feed the latency statistics. clock_gettime()
 * through the vDSO was 12 % of the PMD's samples for null LUN reads (31 ns
 * a call in this VM against 12 ns for rdtsc): use the TSC, scaled to ns,
 * once DPDK knows its rate (the daemon: always; unit tests without EAL
 * fall back to the clock).
 */
uint64_t
lun_now_ns(void)
{
	uint64_t mult = __atomic_load_n(&lun_tsc_mult, __ATOMIC_RELAXED);
	struct timespec ts;

	if (unlikely(mult == 0)) {
		if (rte_get_tsc_hz() == 0) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
		}
		mult = (uint64_t)(((unsigned __int128)1000000000u << 32) / rte_get_tsc_hz());
		__atomic_store_n(&lun_tsc_mult, mult, __ATOMIC_RELAXED);
	}
	return (uint64_t)(((unsigned __int128)rte_rdtsc() * mult) >> 32);
}

void
lun_io_ctx_burst(struct lun_io_ctx *io, bool begin)
{
	io->burst_ns = begin ? lun_now_ns() : 0;
}

uint64_t
lun_task_start_ns(const struct lun_io_ctx *io)
{
	return io != NULL && io->burst_ns != 0 ? io->burst_ns : lun_now_ns();
}

enum iov_op { IOV_FROM, IOV_TO, IOV_CMP };

/*
 * Copy or compare bytes [@off, @off + @len) of the iovecs with @buf, never
 * past the iovecs. Returns the bytes copied, or for IOV_CMP the offset of
 * the first difference (@len if none). Inlined with a constant @op.
 */
static inline size_t
iov_apply(const struct iovec *iov, unsigned int n, size_t off, uint8_t *buf, size_t len,
	enum iov_op op)
{
	size_t done = 0, j;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		uint8_t *p;
		size_t k;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		p = (uint8_t *)iov[i].iov_base + off;
		k = iov[i].iov_len - off;
		if (k > len - done)
			k = len - done;
		if (op == IOV_FROM) {
			memcpy(buf + done, p, k);
		} else if (op == IOV_TO) {
			memcpy(p, buf + done, k);
		} else if (memcmp(p, buf + done, k)) {
			for (j = 0; p[j] == buf[done + j]; j++)
				;
			return done + j;
		}
		done += k;
		off = 0;
	}
	return op == IOV_CMP ? len : done;
}

size_t
lun_iov_from(const struct iovec *iov, unsigned int n, size_t off, void *dst, size_t len)
{
	return iov_apply(iov, n, off, dst, len, IOV_FROM);
}

size_t
lun_iov_to(const struct iovec *iov, unsigned int n, size_t off, const void *src, size_t len)
{
	/* IOV_TO only reads @src */
	return iov_apply(iov, n, off, (uint8_t *)(uintptr_t)src, len, IOV_TO);
}

/*
 * A ram LUN larger than any cache: write-through (non-temporal) stores. A
 * guest write lands on a random, cold line of the LUN; a normal store first
 * reads that line from memory (read for ownership) only to overwrite it, and
 * evicts hot data on the way. Streaming stores skip the read (measured in
 * bench/RESULTS.md). Smaller LUNs keep memcpy (their data may be read back
 * from the cache).
 */
#define LUN_RAM_STREAM_MIN (64ULL << 20)

/*
 * SSE2 streaming stores: part of every x86-64 CPU, so no dispatch. The
 * build's -march comes from DPDK's pkg-config (corei7: no AVX2), and for a
 * store that goes to memory anyway a 16-byte one fills the write-combining
 * buffer as well as a 32-byte one.
 */
static void
copy_stream(uint8_t *dst, const uint8_t *src, size_t n)
{
#if defined(__SSE2__)
	size_t head = (size_t)(-(uintptr_t)dst & 15);

	if (n < 256) {
		memcpy(dst, src, n);
		return;
	}
	if (head) {
		memcpy(dst, src, head);
		dst += head, src += head, n -= head;
	}
	for (; n >= 64; dst += 64, src += 64, n -= 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)src);
		__m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
		__m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
		__m128i d = _mm_loadu_si128((const __m128i *)(src + 48));

		_mm_stream_si128((__m128i *)dst, a);
		_mm_stream_si128((__m128i *)(dst + 16), b);
		_mm_stream_si128((__m128i *)(dst + 32), c);
		_mm_stream_si128((__m128i *)(dst + 48), d);
	}
	if (n)
		memcpy(dst, src, n);
	/* Order the streaming stores before the completion is published. */
	_mm_sfence();
#else
	memcpy(dst, src, n);
#endif
}

/*
 * memcpy() that also prefetches @pf_len bytes at @pf, one line per line
 * copied. Returns the prefetch bytes still to issue.
 */
static size_t
copy_prefetching(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *pf, size_t pf_len)
{
#if defined(__SSE2__)
	for (; n >= 64 && pf_len >= 64; dst += 64, src += 64, n -= 64, pf += 64, pf_len -= 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)src);
		__m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
		__m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
		__m128i d = _mm_loadu_si128((const __m128i *)(src + 48));

		rte_prefetch0(pf);
		_mm_storeu_si128((__m128i *)dst, a);
		_mm_storeu_si128((__m128i *)(dst + 16), b);
		_mm_storeu_si128((__m128i *)(dst + 32), c);
		_mm_storeu_si128((__m128i *)(dst + 48), d);
	}
#endif
	memcpy(dst, src, n);
	return pf_len;
}

/* ram LUN at @src -> guest buffers, prefetching the next read's bytes. */
static void
ram_read(struct lun_io_ctx *io, const struct iovec *iov, unsigned int n, const uint8_t *src,
	size_t len)
{
	const uint8_t *pf = io ? io->pf_next : NULL;
	size_t pf_len = io ? io->pf_len : 0;

	if (pf == NULL) {
		lun_iov_to(iov, n, 0, src, len);
		return;
	}
	io->pf_next = NULL;
	for (unsigned int i = 0; i < n && len > 0; i++) {
		size_t k = iov[i].iov_len < len ? iov[i].iov_len : len, left;

		left = copy_prefetching(iov[i].iov_base, src, k, pf, pf_len);
		pf += pf_len - left;
		pf_len = left;
		src += k;
		len -= k;
	}
}

/* Guest buffers -> ram LUN at @dst (@len bytes, the iovecs hold at least that). */
static void
ram_write(const struct lun *l, const struct iovec *iov, unsigned int n, uint8_t *dst, size_t len)
{
	if (l->conf.size < LUN_RAM_STREAM_MIN) {
		lun_iov_from(iov, n, 0, dst, len);
		return;
	}
	for (unsigned int i = 0; i < n && len > 0; i++) {
		size_t k = iov[i].iov_len < len ? iov[i].iov_len : len;

		copy_stream(dst, iov[i].iov_base, k);
		dst += k;
		len -= k;
	}
}

/* First difference between the iovecs at @off and @buf, or @len if none. */
static size_t
iov_cmp(const struct iovec *iov, unsigned int n, size_t off, const uint8_t *buf, size_t len)
{
	return iov_apply(iov, n, off, (uint8_t *)(uintptr_t)buf, len, IOV_CMP);
}

/* ---- Counters ---- */

/*
 * Log-linear buckets: values below 8 ns have their own bucket; above, 8
 * sub-buckets per power of two, so a bucket's width is at most 1/8 of its
 * lower bound (percentiles are exact to 12.5 %).
 */
static unsigned int
hist_bucket(uint64_t ns)
{
	unsigned int e, b;

	if (ns < 8)
		return ns;
	e = 63 - __builtin_clzll(ns); /* >= 3 */
	b = 8 + (e - 3) * 8 + ((ns >> (e - 3)) & 7);
	return b < LUN_HIST_BUCKETS ? b : LUN_HIST_BUCKETS - 1;
}

static uint64_t
hist_upper(unsigned int b)
{
	unsigned int e, sub;

	if (b < 8)
		return b;
	e = (b - 8) / 8 + 3;
	sub = (b - 8) % 8;
	if (e >= 63)
		return UINT64_MAX;
	return ((uint64_t)(9 + sub) << (e - 3)) - 1;
}

uint64_t
lun_stats_percentile_ns(const struct lun_stats *s, double pct)
{
	uint64_t total = 0, want, acc = 0;
	unsigned int i;

	for (i = 0; i < LUN_HIST_BUCKETS; i++)
		total += s->hist[i];
	if (!total)
		return 0;
	if (pct < 0)
		pct = 0;
	if (pct > 100)
		pct = 100;
	want = (uint64_t)(pct / 100.0 * (double)total + 0.999999);
	if (want < 1)
		want = 1;
	for (i = 0; i < LUN_HIST_BUCKETS; i++) {
		acc += s->hist[i];
		if (acc >= want)
			return hist_upper(i);
	}
	return hist_upper(LUN_HIST_BUCKETS - 1);
}

static void
stats_sum(const struct lun *l, struct lun_stats *out)
{
	const uint64_t *src;
	uint64_t *dst = (uint64_t *)out;
	size_t n = sizeof(*out) / sizeof(uint64_t), i;
	unsigned int s;

	memset(out, 0, sizeof(*out));
	for (s = 0; s < LUN_MAX_SLOTS; s++) {
		src = (const uint64_t *)&l->slots[s].s;
		for (i = 0; i < n; i++)
			dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	}
}

void
lun_stats_read(const struct lun *l, struct lun_stats *out)
{
	const uint64_t *b = (const uint64_t *)&l->baseline;
	uint64_t *dst = (uint64_t *)out;
	size_t i;

	stats_sum(l, out);
	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] -= b[i];
}

/* The slots have one writer each: clearing snapshots them instead of writing them. */
void
lun_stats_clear(struct lun *l)
{
	stats_sum(l, &l->baseline);
}

void
lun_task_complete(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t)
{
	struct lun_stats *s;
	uint64_t ns;

	if (t->bounce) {
		void *b = t->bounce;

		t->bounce = NULL;
		if (io && io->pool && (uint8_t *)b >= io->pool &&
			(uint8_t *)b < io->pool + LUN_BOUNCE_POOL * LUN_BOUNCE_SIZE)
			io->pool_free[io->n_free++] = b;
		else
			free(b);
	}
	if (l) {
		s = &l->slots[io ? io->slot : LUN_MAX_SLOTS - 1].s;
		switch (t->op_kind) {
		case LUN_OP_READ:
		case LUN_OP_WRITE:
			ns = lun_now_ns() - t->start_ns;
			if (t->op_kind == LUN_OP_READ) {
				s->rd_req++;
				s->rd_bytes += t->data_len;
				s->rd_total_ns += ns;
			} else {
				s->wr_req++;
				s->wr_bytes += t->data_len;
				s->wr_total_ns += ns;
			}
			s->hist[hist_bucket(ns)]++;
			break;
		case LUN_OP_FLUSH:
			s->flush_req++;
			s->flush_total_ns += lun_now_ns() - t->start_ns;
			break;
		case LUN_OP_UNMAP:
			s->unmap_req++;
			if (t->status == SCSI_STATUS_GOOD)
				s->unmap_blocks += t->io_blocks;
			break;
		default:
			break;
		}
		if (t->status == SCSI_STATUS_CHECK_CONDITION)
			s->errors++;
	}
	t->done(t);
}

/* ---- Unit attention ---- */

void
lun_set_unit_attention(struct lun *l, uint8_t asc, uint8_t ascq)
{
	__atomic_store_n(&l->unit_attention, LUN_UA_VALID | asc << 8 | ascq, __ATOMIC_RELEASE);
}

uint32_t
lun_take_unit_attention(struct lun *l)
{
	/* A plain load first: the common case (none pending) writes no shared line. */
	if (!__atomic_load_n(&l->unit_attention, __ATOMIC_RELAXED))
		return 0;
	return __atomic_exchange_n(&l->unit_attention, 0, __ATOMIC_ACQ_REL);
}

/* ---- I/O context ---- */

struct lun_io_ctx *
lun_io_ctx_create(unsigned int slot, unsigned int depth, char *err, size_t errlen)
{
	struct lun_io_ctx *io;
	unsigned int i;
	int rc;

	if (slot >= LUN_MAX_SLOTS || depth == 0 || depth > 4096) {
		snprintf(err, errlen,
			"lun io context: slot %u (max %u) or depth %u (1..4096) invalid", slot,
			LUN_MAX_SLOTS - 1, depth);
		return NULL;
	}
	io = calloc(1, sizeof(*io));
	if (!io) {
		snprintf(err, errlen, "lun io context: out of memory");
		return NULL;
	}
	io->slot = slot;
	io->efd = -1;
	/*
	 * Completions run as task work of this (PMD) thread: with COOP_TASKRUN
	 * the kernel does not interrupt a halted PMD's epoll_wait (EINTR) to
	 * run them; it signals the eventfd instead. Older kernels: no flag.
	 */
	rc = io_uring_queue_init(depth, &io->ring, IORING_SETUP_COOP_TASKRUN);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(depth, &io->ring, 0);
	if (rc < 0) {
		snprintf(err, errlen,
			"lun io context: io_uring_queue_init(%u): %s (is io_uring disabled? "
			"sysctl kernel.io_uring_disabled=0; raise RLIMIT_MEMLOCK)",
			depth, strerror(-rc));
		free(io);
		return NULL;
	}
	io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (io->efd < 0 || io_uring_register_eventfd(&io->ring, io->efd) < 0) {
		/* Polling works without it; only the interrupt mode needs it. */
		VLOG_WARN("lun io context %u: no completion eventfd: %s", slot, strerror(errno));
		if (io->efd >= 0)
			close(io->efd);
		io->efd = -1;
	}
	/* The bounce pool is for the slow path only: allocate it once, here. */
	if (posix_memalign((void **)&io->pool, 4096, LUN_BOUNCE_POOL * LUN_BOUNCE_SIZE) == 0) {
		for (i = 0; i < LUN_BOUNCE_POOL; i++)
			io->pool_free[i] = io->pool + i * LUN_BOUNCE_SIZE;
		io->n_free = LUN_BOUNCE_POOL;
	} else {
		io->pool = NULL;
	}
	return io;
}

void
lun_io_ctx_destroy(struct lun_io_ctx *io)
{
	if (!io)
		return;
	io_uring_queue_exit(&io->ring);
	if (io->efd >= 0)
		close(io->efd);
	free(io->pool);
	free(io);
}

unsigned int
lun_io_ctx_inflight(const struct lun_io_ctx *io)
{
	return io->inflight;
}

int
lun_io_ctx_event_fd(const struct lun_io_ctx *io)
{
	return io->efd;
}

static int
bounce_get(struct lun_io_ctx *io, struct scsi_task *t, size_t want)
{
	if (want > LUN_BOUNCE_SIZE)
		want = LUN_BOUNCE_SIZE;
	if (io->n_free) {
		t->bounce = io->pool_free[--io->n_free];
	} else if (posix_memalign(&t->bounce, 4096, want)) {
		t->bounce = NULL;
		return -ENOMEM;
	}
	t->bounce_len = want;
	return 0;
}

static void
media_error(struct lun *l, struct scsi_task *t, int err)
{
	bool rd = t->op_kind == LUN_OP_READ || t->op_kind == LUN_OP_VERIFY;

	/* Once per LUN: a failing disk must not flood the log. */
	if (!__atomic_exchange_n(&l->io_err_logged, true, __ATOMIC_RELAXED))
		VLOG_ERR("lun %s: %s: %s error at byte %llu: %s (further errors not logged)",
			l->conf.name, l->conf.path, rd ? "read" : "write",
			(unsigned long long)(t->io_off + t->io_done), strerror(err));
	scsi_task_set_sense(
		t, SCSI_SK_MEDIUM_ERROR, rd ? ASC_UNRECOVERED_READ : ASC_WRITE_ERROR, 0);
}

static void
miscompare(struct scsi_task *t, uint32_t off)
{
	scsi_task_set_sense(t, SCSI_SK_MISCOMPARE, ASC_MISCOMPARE, 0);
	t->sense[0] |= 0x80; /* VALID: INFORMATION = offset of the first difference */
	t->sense[3] = off >> 24;
	t->sense[4] = off >> 16;
	t->sense[5] = off >> 8;
	t->sense[6] = off;
}

static bool
needs_dsync(const struct lun *l, const struct scsi_task *t)
{
	return (t->io_flags & IOF_FUA) || l->conf.cache == LUN_CACHE_WRITETHROUGH ||
	       l->conf.cache == LUN_CACHE_DIRECTSYNC;
}

static void
ovf_push(struct lun_io_ctx *io, struct scsi_task *t)
{
	t->next = NULL;
	if (io->ovf_tail)
		io->ovf_tail->next = t;
	else
		io->ovf_head = t;
	io->ovf_tail = t;
}

/* Prepare the task's next SQE, or park it until the SQ has room. */
static void
file_step(struct lun_io_ctx *io, struct scsi_task *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
	struct lun *l = t->lun;
	uint64_t off = t->io_off + t->io_done;
	uint32_t rem = t->io_len - t->io_done;
	uint32_t chunk = rem < t->bounce_len ? rem : t->bounce_len;
	int rwf = needs_dsync(l, t) ? RWF_DSYNC : 0;
	bool bounce = t->io_flags & IOF_BOUNCE;

	if (!sqe) {
		ovf_push(io, t);
		return;
	}
	switch (t->op_kind) {
	case LUN_OP_READ:
	case LUN_OP_VERIFY:
		if (bounce)
			io_uring_prep_read(sqe, l->fd, t->bounce, chunk, off);
		else
			io_uring_prep_readv(sqe, l->fd, t->iov, t->iovcnt, off);
		break;
	case LUN_OP_WRITE:
		if (bounce) {
			lun_iov_from(t->iov, t->iovcnt, t->io_done, t->bounce, chunk);
			io_uring_prep_write(sqe, l->fd, t->bounce, chunk, off);
			sqe->rw_flags = rwf;
		} else {
			io_uring_prep_writev2(sqe, l->fd, t->iov, t->iovcnt, off, rwf);
		}
		break;
	case LUN_OP_WSAME:
		io_uring_prep_write(sqe, l->fd, t->bounce, chunk, off);
		sqe->rw_flags = rwf;
		break;
	case LUN_OP_FLUSH:
		/* also with O_DIRECT: it flushes the disk's volatile cache */
		io_uring_prep_fsync(sqe, l->fd, IORING_FSYNC_DATASYNC);
		break;
	default: { /* UNMAP */
		const struct lun_range *r = (const struct lun_range *)t->bounce + t->io_idx;

		io_uring_prep_fallocate(sqe, l->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			r->lba << l->block_shift, r->nblocks << l->block_shift);
		break;
	}
	}
	io_uring_sqe_set_data(sqe, t);
	t->io_pending = 1;
	io->queued++;
}

static void
file_finish(struct lun_io_ctx *io, struct scsi_task *t)
{
	io->inflight--;
	lun_task_complete(t->lun, io, t);
}

/* Returns true if @t completed (it may be gone then). */
static bool
file_cqe(struct lun_io_ctx *io, struct scsi_task *t, int res)
{
	struct lun *l = t->lun;
	bool bounce = t->io_flags & IOF_BOUNCE;

	t->io_pending = 0;
	if (res < 0 || (res == 0 && t->op_kind != LUN_OP_FLUSH && t->op_kind != LUN_OP_UNMAP)) {
		media_error(l, t, res < 0 ? -res : EIO); /* 0 bytes: the file shrank */
		file_finish(io, t);
		return true;
	}
	switch (t->op_kind) {
	case LUN_OP_FLUSH:
		break;
	case LUN_OP_UNMAP:
		if (++t->io_idx < t->io_cnt) {
			file_step(io, t);
			return false;
		}
		break;
	default:
		if (bounce && t->op_kind == LUN_OP_READ) {
			lun_iov_to(t->iov, t->iovcnt, t->io_done, t->bounce, res);
		} else if (t->op_kind == LUN_OP_VERIFY) {
			size_t k = iov_cmp(t->iov, t->iovcnt, t->io_done, t->bounce, res);

			if (k < (size_t)res) {
				miscompare(t, t->io_done + k);
				break;
			}
		}
		t->io_done += res;
		if (t->io_done < t->io_len) {
			/* A short transfer continues through a bounce buffer: the iovecs are const.
			 */
			if (!bounce) {
				if (bounce_get(io, t, t->io_len - t->io_done) < 0) {
					media_error(l, t, ENOMEM);
					break;
				}
				t->io_flags |= IOF_BOUNCE;
			}
			file_step(io, t);
			return false;
		}
		if (t->op_kind == LUN_OP_READ || t->op_kind == LUN_OP_WRITE)
			t->data_len = t->io_len;
		break;
	}
	file_finish(io, t);
	return true;
}

unsigned int
lun_io_ctx_poll(struct lun_io_ctx *io)
{
	struct io_uring_cqe *cqes[64];
	unsigned int n, i, done = 0;

	/*
	 * Every file task counts in @inflight from file_start() to file_finish(),
	 * parked or queued ones too: none means no SQE to submit and no CQE to
	 * reap. The PMD loop calls this on every pass, also for net-only PMDs.
	 */
	if (io->inflight == 0)
		return 0;
	while (io->ovf_head && io_uring_sq_space_left(&io->ring)) {
		struct scsi_task *t = io->ovf_head;

		io->ovf_head = t->next;
		if (!io->ovf_head)
			io->ovf_tail = NULL;
		file_step(io, t);
	}
	if (io->queued) {
		/* On -EBUSY/-EAGAIN the SQEs stay in the ring and go with the next poll. */
		if (io_uring_submit(&io->ring) >= 0)
			io->queued = 0;
	}
	do {
		n = io_uring_peek_batch_cqe(&io->ring, cqes, 64);
		for (i = 0; i < n; i++) {
			struct scsi_task *t = io_uring_cqe_get_data(cqes[i]);
			int res = cqes[i]->res;

			io_uring_cq_advance(&io->ring, 1);
			done += file_cqe(io, t, res);
		}
	} while (n == 64);
	return done;
}

/* ---- Backend entry points ---- */

static bool
iov_direct_ok(const struct lun *l, const struct scsi_task *t, uint64_t len)
{
	unsigned int i;

	if (t->xfer_len != len || t->iovcnt > IOV_MAX)
		return false;
	if (!l->odirect)
		return true;
	for (i = 0; i < t->iovcnt; i++)
		if (((uintptr_t)t->iov[i].iov_base | t->iov[i].iov_len) & (l->dio_align - 1))
			return false;
	return true;
}

/*
 * Start a file-backed operation on @io; the data moves through a bounce
 * buffer if @bounce, which @pattern (one block, WRITE SAME) fills.
 */
static void
file_start(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t, uint64_t off, uint64_t len,
	bool bounce, bool fua, const void *pattern)
{
	uint32_t i;

	t->io_off = off;
	t->io_len = len;
	t->io_done = 0;
	t->io_flags = fua ? IOF_FUA : 0;
	t->bounce_len = 0;
	if (!io) {
		VLOG_ERR("lun %s: I/O without an io context (internal error)", l->conf.name);
		scsi_task_set_sense(t, SCSI_SK_HARDWARE_ERROR, ASC_INTERNAL_FAILURE, 0);
		lun_task_complete(l, NULL, t);
		return;
	}
	io->inflight++;
	if (bounce) {
		if (bounce_get(io, t, len) < 0) {
			media_error(l, t, ENOMEM);
			file_finish(io, t);
			return;
		}
		t->io_flags |= IOF_BOUNCE;
		for (i = 0; pattern && i < t->bounce_len; i += l->block_size)
			memcpy((uint8_t *)t->bounce + i, pattern, l->block_size);
	}
	file_step(io, t);
}

void
lun_io_read(
	struct lun *l, struct lun_io_ctx *io, struct scsi_task *t, uint64_t lba, uint32_t nblocks)
{
	uint64_t off = lba << l->block_shift, len = (uint64_t)nblocks << l->block_shift;

	switch (l->conf.backend) {
	case LUN_BACKEND_FILE:
		file_start(l, io, t, off, len, !iov_direct_ok(l, t, len), false, NULL);
		return;
	case LUN_BACKEND_RAM:
		ram_read(io, t->iov, t->iovcnt, l->mem + off, len);
		/* fall through */
	default:
		t->data_len = len; /* null: nothing moves, the whole length is reported */
		break;
	}
	lun_task_complete(l, io, t);
}

void
lun_prefetch_read(const struct lun *l, struct lun_io_ctx *io, uint64_t lba, uint64_t nblocks)
{
	if (io == NULL)
		return;
	io->pf_next = NULL;
	if (l == NULL || l->conf.backend != LUN_BACKEND_RAM || lba >= l->num_blocks ||
		nblocks > l->num_blocks - lba)
		return;
	io->pf_next = l->mem + (lba << l->block_shift);
	io->pf_len = RTE_MIN(nblocks << l->block_shift, (uint64_t)LUN_PREFETCH_READ_BYTES);
}

void
lun_io_write(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t, uint64_t lba,
	uint32_t nblocks, bool fua)
{
	uint64_t off = lba << l->block_shift, len = (uint64_t)nblocks << l->block_shift;

	switch (l->conf.backend) {
	case LUN_BACKEND_FILE:
		file_start(l, io, t, off, len, !iov_direct_ok(l, t, len), fua, NULL);
		return;
	case LUN_BACKEND_RAM:
		ram_write(l, t->iov, t->iovcnt, l->mem + off, len);
		/* fall through */
	default:
		t->data_len = len;
		break;
	}
	lun_task_complete(l, io, t);
}

void
lun_io_verify(
	struct lun *l, struct lun_io_ctx *io, struct scsi_task *t, uint64_t lba, uint32_t nblocks)
{
	uint64_t off = lba << l->block_shift, len = (uint64_t)nblocks << l->block_shift;
	size_t k;

	t->data_len = len; /* the data-out buffer is consumed */
	switch (l->conf.backend) {
	case LUN_BACKEND_FILE:
		file_start(l, io, t, off, len, true, false, NULL);
		return;
	case LUN_BACKEND_RAM:
		k = iov_cmp(t->iov, t->iovcnt, 0, l->mem + off, len);
		if (k < len)
			miscompare(t, k);
		break;
	default:
		break; /* null has no data to differ from */
	}
	lun_task_complete(l, io, t);
}

void
lun_io_flush(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t)
{
	if (l->conf.backend == LUN_BACKEND_FILE) {
		file_start(l, io, t, 0, 0, false, false, NULL);
		return;
	}
	lun_task_complete(l, io, t);
}

void
lun_io_unmap(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t, const struct lun_range *r,
	unsigned int n)
{
	unsigned int i;

	t->io_blocks = 0;
	for (i = 0; i < n; i++)
		t->io_blocks += r[i].nblocks;
	switch (l->conf.backend) {
	case LUN_BACKEND_RAM:
		for (i = 0; i < n; i++)
			memset(l->mem + (r[i].lba << l->block_shift), 0,
				r[i].nblocks << l->block_shift);
		break;
	case LUN_BACKEND_FILE:
		if (l->blkdev) {
			/* Synchronous: UNMAP is rare and BLKDISCARD has no io_uring opcode. */
			for (i = 0; i < n; i++) {
				uint64_t range[2] = {
					r[i].lba << l->block_shift, r[i].nblocks << l->block_shift};

				if (ioctl(l->fd, BLKDISCARD, range) < 0) {
					t->io_off = range[0];
					t->io_done = 0;
					media_error(l, t, errno);
					break;
				}
			}
			break;
		}
		t->bounce = malloc(n * sizeof(*r));
		if (!t->bounce) {
			media_error(l, t, ENOMEM);
			break;
		}
		memcpy(t->bounce, r, n * sizeof(*r));
		t->io_idx = 0;
		t->io_cnt = n;
		file_start(l, io, t, r[0].lba << l->block_shift, 0, false, false, NULL);
		return;
	default:
		break;
	}
	lun_task_complete(l, io, t);
}

void
lun_io_write_same(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t, uint64_t lba,
	uint64_t nblocks, const void *block)
{
	uint32_t bs = l->block_size;
	uint64_t len = nblocks << l->block_shift, b;
	uint8_t *p;

	switch (l->conf.backend) {
	case LUN_BACKEND_RAM:
		p = l->mem + (lba << l->block_shift);
		for (b = 0; b < nblocks; b++)
			memcpy(p + (b << l->block_shift), block, bs);
		break;
	case LUN_BACKEND_FILE:
		file_start(l, io, t, lba << l->block_shift, len, true, false, block);
		return;
	default:
		break;
	}
	lun_task_complete(l, io, t);
}

/* ---- Open / close ---- */

static int
ram_open(struct lun *l, char *err, size_t errlen)
{
	size_t len = (l->conf.size + HUGE_2M - 1) & ~(size_t)(HUGE_2M - 1);
	void *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		MAP_HUGETLB | MAP_ANONYMOUS | MAP_SHARED | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED) {
		VLOG_WARN("lun %s: no 2 MiB hugepages for %zu MiB (%s): using normal pages; "
			  "reserve more with: echo N >> "
			  "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
			l->conf.name, len >> 20, strerror(errno));
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			MAP_ANONYMOUS | MAP_SHARED | MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED) {
			int e = errno;

			snprintf(err, errlen, "lun %s: cannot map %zu MiB of memory: %s",
				l->conf.name, len >> 20, strerror(e));
			return -e;
		}
	}
	l->mem = p;
	l->map_len = len;
	return 0;
}

/* O_DIRECT: the block size must be readable, and find the memory alignment needed. */
static int
dio_probe(struct lun *l, char *err, size_t errlen)
{
	uint8_t *buf;
	ssize_t n;
	int rc = 0;

	if (posix_memalign((void **)&buf, 4096, 8192))
		return -ENOMEM;
	n = pread(l->fd, buf, l->block_size, 0);
	if (n < 0) {
		rc = -errno;
		snprintf(err, errlen, "lun %s: %s: O_DIRECT read of %u bytes failed: %s (%s)",
			l->conf.name, l->conf.path, l->block_size, strerror(errno),
			errno == EINVAL ? "the device needs a larger block-size, or use cache "
					  "writeback on file systems without O_DIRECT"
					: "check the device");
	} else {
		l->dio_align = pread(l->fd, buf + 512, l->block_size, 0) < 0 ? 4096 : 512;
	}
	free(buf);
	return rc;
}

static int
file_open(struct lun *l, char *err, size_t errlen)
{
	struct lun_conf *c = &l->conf;
	bool direct = c->cache == LUN_CACHE_NONE || c->cache == LUN_CACHE_DIRECTSYNC;
	uint64_t fsize;
	struct stat st;
	int flags, e;

	if (!c->path[0]) {
		snprintf(err, errlen, "lun %s: the file backend needs a path", c->name);
		return -EINVAL;
	}
	if (stat(c->path, &st) < 0) {
		e = errno;
		if (e == ENOENT)
			snprintf(err, errlen, "lun %s: %s: %s (create it, e.g. truncate -s 1G %s)",
				c->name, c->path, strerror(e), c->path);
		else
			snprintf(err, errlen, "lun %s: %s: %s", c->name, c->path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "lun %s: %s: not a regular file or a block device", c->name,
			c->path);
		return -EINVAL;
	}
	l->blkdev = S_ISBLK(st.st_mode);
	flags = (c->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
	l->fd = open(c->path, flags);
	if (l->fd < 0) {
		e = errno;
		if (e == EINVAL && direct)
			snprintf(err, errlen,
				"lun %s: %s: the file system does not support O_DIRECT (use "
				"cache writeback or writethrough)",
				c->name, c->path);
		else
			snprintf(err, errlen, "lun %s: %s: %s (needs %s access)", c->name, c->path,
				strerror(e), c->readonly ? "read" : "read and write");
		return -e;
	}
	l->odirect = direct;
	if (l->blkdev) {
		if (ioctl(l->fd, BLKGETSIZE64, &fsize) < 0) {
			e = errno;
			snprintf(err, errlen, "lun %s: %s: BLKGETSIZE64: %s", c->name, c->path,
				strerror(e));
			return -e;
		}
	} else {
		fsize = st.st_size;
	}
	if (c->size == 0) {
		c->size = fsize & ~(uint64_t)(c->block_size - 1);
		if (!c->size) {
			snprintf(err, errlen,
				"lun %s: %s is smaller than one %u-byte block (grow it, e.g. "
				"truncate -s 1G %s)",
				c->name, c->path, c->block_size, c->path);
			return -EINVAL;
		}
	} else if (c->size > fsize) {
		snprintf(err, errlen,
			"lun %s: size %llu is larger than %s (%llu bytes): lower size, or grow "
			"the file (truncate -s %llu %s)",
			c->name, (unsigned long long)c->size, c->path, (unsigned long long)fsize,
			(unsigned long long)c->size, c->path);
		return -EINVAL;
	}
	l->dio_align = 1;
	if (direct) {
		int rc = dio_probe(l, err, errlen);

		if (rc < 0)
			return rc;
	}
	/* Hole punching works in file system blocks. */
	l->unmap_gran = st.st_blksize > c->block_size ? st.st_blksize / c->block_size : 1;
	return 0;
}

int
lun_open(const struct lun_conf *c, struct lun **out, char *err, size_t errlen)
{
	struct lun *l;
	int rc;

	*out = NULL;
	if (!c->name[0] || strnlen(c->name, LUN_NAME_MAX) == LUN_NAME_MAX) {
		snprintf(err, errlen, "lun: a name of 1 to %d characters is required",
			LUN_NAME_MAX - 1);
		return -EINVAL;
	}
	if (c->block_size != 512 && c->block_size != 4096) {
		snprintf(err, errlen, "lun %s: block-size %u: must be 512 or 4096", c->name,
			c->block_size);
		return -EINVAL;
	}
	if (c->backend != LUN_BACKEND_FILE &&
		(c->size < c->block_size || c->size % c->block_size)) {
		snprintf(err, errlen, "lun %s: size %llu: must be a non-zero multiple of %u",
			c->name, (unsigned long long)c->size, c->block_size);
		return -EINVAL;
	}
	if (c->backend == LUN_BACKEND_FILE && c->size % c->block_size) {
		snprintf(err, errlen, "lun %s: size %llu: not a multiple of the block size %u",
			c->name, (unsigned long long)c->size, c->block_size);
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "lun %s: out of memory", c->name);
		return -ENOMEM;
	}
	l->slots = aligned_alloc(64, LUN_MAX_SLOTS * sizeof(*l->slots));
	if (!l->slots) {
		free(l);
		snprintf(err, errlen, "lun %s: out of memory", c->name);
		return -ENOMEM;
	}
	memset(l->slots, 0, LUN_MAX_SLOTS * sizeof(*l->slots));
	l->conf = *c;
	l->conf.name[LUN_NAME_MAX - 1] = '\0';
	l->conf.serial[sizeof(l->conf.serial) - 1] = '\0';
	if (!l->conf.serial[0]) /* stable across restarts: the name */
		snprintf(l->conf.serial, sizeof(l->conf.serial), "%s", l->conf.name);
	l->fd = -1;
	l->block_size = c->block_size;
	l->block_shift = __builtin_ctz(c->block_size);
	l->unmap = true;
	l->unmap_gran = 1;
	rte_spinlock_init(&l->pr.lock);
	switch (c->backend) {
	case LUN_BACKEND_NULL:
		rc = 0;
		break;
	case LUN_BACKEND_RAM:
		rc = ram_open(l, err, errlen);
		break;
	case LUN_BACKEND_FILE:
		rc = file_open(l, err, errlen);
		break;
	default:
		snprintf(err, errlen, "lun %s: unknown backend %d", c->name, c->backend);
		rc = -EINVAL;
		break;
	}
	if (rc < 0) {
		lun_close(l);
		return rc;
	}
	l->num_blocks = l->conf.size >> l->block_shift;
	*out = l;
	return 0;
}

void
lun_close(struct lun *l)
{
	if (!l)
		return;
	if (l->mem)
		munmap(l->mem, l->map_len);
	if (l->fd >= 0)
		close(l->fd);
	free(l->slots);
	free(l);
}

const struct lun_conf *
lun_get_conf(const struct lun *l)
{
	return &l->conf;
}

uint64_t
lun_num_blocks(const struct lun *l)
{
	return l->num_blocks;
}
