/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostd-scsi-bench: a userspace virtio-scsi / virtio-blk initiator over vhost-user.
 *
 * It is both the load generator for the vhost-user-scsi backend (one thread, busy polling the
 * used rings, kicks batched per poll round and only when the backend asks for them) and the
 * driver of the functional integration tests (--verify, --cmd, --write-pattern, --tmf, --events).
 * See bench/README.md for the CLI and the exact pattern definition.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_scsi.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "vhost_user_frontend.h"

#define EXIT_FAIL 1  /* data mismatch, I/O errors, SCSI/TMF failure, timeout waiting for events */
#define EXIT_SETUP 2 /* usage, connection, protocol or transport failure */

#define POLL_BURST 64
#define IO_TIMEOUT_MS 30000
#define HIST_BUCKETS (64 + 58 * 32)

enum dev_type { DEV_SCSI, DEV_BLK };
enum rw_mode { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW };
enum job_kind { JOB_BENCH, JOB_WRITE_PATTERN, JOB_READ_CHECK };

struct opts {
	const char *socket;
	bool server;
	enum dev_type type;
	unsigned int target, lun;
	enum rw_mode rw;
	unsigned int rwmixread;
	uint32_t bs;
	unsigned int qd;
	unsigned int queues;
	double seconds;
	uint64_t size;
	int cpu;
	bool json;
	bool indirect;
	bool no_event_idx;
	bool no_hugetlb;
	bool inflight;
	bool reconnect; /* wait for the backend to come back when it goes away (--reconnect) */
	bool verbose;
	uint64_t mem_mb;
	uint16_t vq_size;
	/* functional modes */
	bool verify;
	const char *cmd;
	uint32_t data_in;
	const char *data_out_file;
	const char *out_file;
	bool write_pattern, read_check, sync;
	uint64_t seed;
	bool seed_set;
	uint64_t lba;
	uint64_t blocks;
	const char *tmf;
	uint64_t tag;
	int events;
	double timeout;
	unsigned int gap_ms; /* bench: pause before each resubmission (pacing) */
};

/* One in-flight request and its fixed buffers in the shared region. */
struct req {
	void *hdr, *resp, *data;
	uint64_t hdr_gpa, resp_gpa, data_gpa;
	uint32_t data_cap;
	uint16_t q; /* virtqueue index */
	bool write;
	bool busy;
	uint64_t lba; /* in device logical blocks */
	uint32_t nblocks;
	uint64_t t_submit;
	uint64_t tag;
};

struct hist {
	uint64_t b[HIST_BUCKETS];
	uint64_t count, sum_ns, max_ns;
};

struct ctx {
	struct opts o;
	struct vuf_dev *dev;
	/* device geometry */
	uint32_t block_size;
	uint64_t capacity_blocks;
	uint32_t cdb_size, sense_size, event_info_size;
	uint32_t req_size, resp_size;
	unsigned int dev_queues; /* request queues the device has */
	unsigned int first_rq;   /* virtqueue index of request queue 0 */
	unsigned int nvq;        /* virtqueues set up */
	struct req *reqs;
	unsigned int nreqs;
	struct req cmd; /* for single commands (probe, --cmd, sync) */
	uint64_t rng;
	uint64_t next_tag;
	/* timing */
	uint64_t q32_ns_per_tick;
	/* job state */
	enum job_kind job;
	uint64_t region_blocks; /* bench region, device blocks */
	uint32_t io_blocks;     /* blocks per I/O */
	uint64_t seq_next;      /* next lba for sequential jobs */
	uint64_t job_end;       /* end lba (exclusive) for pattern jobs */
	uint64_t mismatches;
	uint64_t first_bad_lba;
	uint64_t errors;
	uint64_t ios, bytes;
	struct hist h;
};

/* ---- small helpers ---- */

#define now_ns vuf_now_ns

/* rdtsc where available: the per-request timestamps must not cost a vDSO call each */
static inline uint64_t
ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#else
	return now_ns();
#endif
}

static void
calibrate(struct ctx *c)
{
#if defined(__x86_64__) || defined(__i386__)
	uint64_t n0 = now_ns(), t0 = ticks(), n1, t1;
	struct timespec ts = {.tv_nsec = 50000000};

	nanosleep(&ts, NULL);
	n1 = now_ns();
	t1 = ticks();
	c->q32_ns_per_tick = ((n1 - n0) << 32) / (t1 - t0 ? t1 - t0 : 1);
#else
	c->q32_ns_per_tick = 1ULL << 32;
#endif
}

static inline uint64_t
ticks_to_ns(const struct ctx *c, uint64_t t)
{
	return (uint64_t)(((unsigned __int128)t * c->q32_ns_per_tick) >> 32);
}

static inline uint64_t
xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t
splitmix64(uint64_t x)
{
	uint64_t z = x + 0x9E3779B97F4A7C15ULL;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* log-linear histogram: exact below 64 ns, then 32 sub-buckets per power of two (<3% error) */
static inline unsigned int
hist_index(uint64_t v)
{
	unsigned int e;

	if (v < 64)
		return (unsigned int)v;
	e = 63 - __builtin_clzll(v);
	return 64 + (e - 6) * 32 + (unsigned int)((v >> (e - 5)) & 31);
}

static uint64_t
hist_value(unsigned int i)
{
	unsigned int e;

	if (i < 64)
		return i;
	e = (i - 64) / 32 + 6;
	/* the middle of the bucket */
	return ((32ULL + (i - 64) % 32) << (e - 5)) + (1ULL << (e - 6));
}

static inline void
hist_add(struct hist *h, uint64_t ns)
{
	h->b[hist_index(ns)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

static double
hist_pct(const struct hist *h, double p)
{
	uint64_t want, acc = 0;
	unsigned int i;

	if (h->count == 0)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)h->count);
	if (want >= h->count)
		want = h->count - 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		acc += h->b[i];
		if (acc > want) {
			uint64_t v = hist_value(i);

			return (double)(v > h->max_ns ? h->max_ns : v) / 1000.0;
		}
	}
	return (double)h->max_ns / 1000.0;
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t
get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static void
print_hex(FILE *f, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

static const char *
scsi_response_name(unsigned int r)
{
	static const char *const names[] = {"OK", "OVERRUN", "ABORTED", "BAD_TARGET", "RESET",
		"BUSY", "TRANSPORT_FAILURE", "TARGET_FAILURE", "NEXUS_FAILURE", "FAILURE",
		"FUNCTION_SUCCEEDED", "FUNCTION_REJECTED", "INCORRECT_LUN"};

	return r < sizeof(names) / sizeof(names[0]) ? names[r] : "UNKNOWN";
}

static unsigned int
sense_key(const uint8_t *sense, uint32_t len)
{
	if (len < 3)
		return 0;
	if ((sense[0] & 0x7f) >= 0x72)
		return sense[1] & 0xf; /* descriptor format */
	return sense[2] & 0xf;
}

/* ---- the pattern (documented in bench/README.md; the selftest re-implements it) ---- */

static void
pattern_fill(uint64_t *w, uint64_t lba, uint32_t nblocks, uint32_t bsz, uint64_t seed)
{
	uint32_t wpb = bsz / 8, b, k;

	for (b = 0; b < nblocks; b++, lba++) {
		uint64_t base = seed + lba * wpb;

		w[0] = lba;
		w[1] = seed;
		for (k = 2; k < wpb; k++)
			w[k] = splitmix64(base + k);
		w += wpb;
	}
}

/* Returns the index of the first bad block, or nblocks if all match. */
static uint32_t
pattern_check(const uint64_t *w, uint64_t lba, uint32_t nblocks, uint32_t bsz, uint64_t seed)
{
	uint32_t wpb = bsz / 8, b, k;

	for (b = 0; b < nblocks; b++, lba++) {
		uint64_t base = seed + lba * wpb;

		if (w[0] != lba || w[1] != seed)
			return b;
		for (k = 2; k < wpb; k++)
			if (w[k] != splitmix64(base + k))
				return b;
		w += wpb;
	}
	return nblocks;
}

/* ---- request construction ---- */

static void
scsi_lun(const struct ctx *c, uint8_t *lun)
{
	memset(lun, 0, 8);
	lun[0] = 1;
	lun[1] = (uint8_t)c->o.target;
	lun[2] = 0x40 | ((c->o.lun >> 8) & 0x3f);
	lun[3] = c->o.lun & 0xff;
}

/* Writes the command header for a SCSI request; cdb is cdb_len bytes. */
static void
scsi_hdr(struct ctx *c, struct req *r, const uint8_t *cdb, unsigned int cdb_len)
{
	struct virtio_scsi_cmd_req *h = r->hdr;

	scsi_lun(c, h->lun);
	r->tag = ++c->next_tag;
	h->tag = r->tag;
	h->task_attr = 0; /* SIMPLE */
	h->prio = 0;
	h->crn = 0;
	memset(h->cdb, 0, c->cdb_size);
	memcpy(h->cdb, cdb, cdb_len < c->cdb_size ? cdb_len : c->cdb_size);
}

/* Queues r (data direction in r->write, data length len, 0 for none) on its virtqueue. */
static int
queue_req(struct ctx *c, struct req *r, uint32_t len)
{
	struct vuf_buf b[4];
	unsigned int n = 0;
	bool blk = c->o.type == DEV_BLK;

	b[n++] = (struct vuf_buf){
		r->hdr_gpa, blk ? sizeof(struct virtio_blk_outhdr) : c->req_size, false};
	if (len && r->write)
		b[n++] = (struct vuf_buf){r->data_gpa, len, false};
	if (!blk)
		b[n++] = (struct vuf_buf){r->resp_gpa, c->resp_size, true};
	if (len && !r->write)
		b[n++] = (struct vuf_buf){r->data_gpa, len, true};
	if (blk)
		b[n++] = (struct vuf_buf){r->resp_gpa, 1, true};
	r->busy = true;
	return vuf_vq_add(&c->dev->vq[r->q], b, n, c->o.indirect, r);
}

/* Fills the header of a READ/WRITE of r->nblocks at r->lba. */
static void
rw_hdr(struct ctx *c, struct req *r)
{
	if (c->o.type == DEV_BLK) {
		struct virtio_blk_outhdr *h = r->hdr;

		h->type = r->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
		h->ioprio = 0;
		h->sector = r->lba * (c->block_size / 512);
	} else {
		uint8_t cdb[16] = {r->write ? 0x8a : 0x88};

		put_be(cdb + 2, r->lba, 8);
		put_be(cdb + 10, r->nblocks, 4);
		scsi_hdr(c, r, cdb, sizeof(cdb));
	}
}

/* 0 if the request completed fine */
static int
req_status(const struct ctx *c, const struct req *r)
{
	if (c->o.type == DEV_BLK)
		return *(volatile uint8_t *)r->resp;
	const struct virtio_scsi_cmd_resp *rs = r->resp;

	return rs->response != VIRTIO_SCSI_S_OK ? 0x100 | rs->response : rs->status;
}

static void
report_error(struct ctx *c, const struct req *r)
{
	if (c->errors > 5)
		return;
	if (c->o.type == DEV_BLK) {
		fprintf(stderr, "I/O error: %s lba %" PRIu64 " blocks %u: status %u\n",
			r->write ? "write" : "read", r->lba, r->nblocks, *(uint8_t *)r->resp);
	} else {
		const struct virtio_scsi_cmd_resp *rs = r->resp;
		uint32_t sl = rs->sense_len < c->sense_size ? rs->sense_len : c->sense_size;

		fprintf(stderr,
			"I/O error: %s lba %" PRIu64 " blocks %u: response %u (%s) status 0x%02x "
			"sense ",
			r->write ? "write" : "read", r->lba, r->nblocks, rs->response,
			scsi_response_name(rs->response), rs->status);
		print_hex(stderr, rs->sense, sl);
		fputc('\n', stderr);
	}
}

/* Runs one request synchronously (used outside the hot path). */
static int
exec_req(struct ctx *c, struct req *r, uint32_t len, int timeout_ms)
{
	struct vuf_vq *vq = &c->dev->vq[r->q];
	void *ck[1];
	int rc;

	if (c->o.type == DEV_BLK)
		*(uint8_t *)r->resp = 0xff;
	else
		memset(r->resp, 0, c->resp_size);
	rc = queue_req(c, r, len);
	if (rc < 0) {
		fprintf(stderr, "queueing request on vq %u: %s\n", r->q, strerror(-rc));
		return rc;
	}
	rc = vuf_vq_kick(vq);
	if (rc < 0)
		return rc;
	rc = vuf_vq_wait(vq, ck, NULL, 1, timeout_ms);
	if (rc == -ETIMEDOUT)
		fprintf(stderr, "no completion on vq %u within %d ms\n", r->q, timeout_ms);
	else if (rc < 0)
		fprintf(stderr, "vq %u: device returned a bad used entry\n", r->q);
	if (rc < 0)
		return rc;
	r->busy = false;
	return 0;
}

/* SCSI command on the command slot. Returns <0 on transport failure, else req_status(). */
static int
scsi_cmd(struct ctx *c, const uint8_t *cdb, unsigned int cdb_len, bool write, uint32_t len)
{
	struct req *r = &c->cmd;
	int rc;

	r->write = write;
	scsi_hdr(c, r, cdb, cdb_len);
	rc = exec_req(c, r, len, IO_TIMEOUT_MS);
	return rc < 0 ? rc : req_status(c, r);
}

/* ---- setup ---- */

static int
connect_dev(struct ctx *c)
{
	struct vuf_opts vo = VUF_OPTS_DEFAULT;
	uint8_t cfg[36];
	unsigned int i;
	size_t need;
	int rc;

	vo.path = c->o.socket;
	vo.server = c->o.server;
	if (c->o.server)
		vo.connect_timeout_ms = c->o.timeout > 0 ? (int)(c->o.timeout * 1000) : 60000;
	vo.features |= (1ULL << VUF_F_INDIRECT_DESC) | (1ULL << VUF_F_EVENT_IDX);
	if (c->o.no_event_idx)
		vo.features &= ~(1ULL << VUF_F_EVENT_IDX);
	if (c->o.type == DEV_SCSI)
		vo.features |= 1ULL << VIRTIO_SCSI_F_HOTPLUG;
	else
		vo.features |= (1ULL << VIRTIO_BLK_F_MQ) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
			       (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_SEG_MAX);
	vo.inflight = c->o.inflight;
	vo.no_hugetlb = c->o.no_hugetlb;
	vo.vq_size = c->o.vq_size;
	if (c->o.indirect)
		vo.indirect_max = 8;
	/* rings + per-request buffers + the command slot, generously rounded */
	need = (size_t)c->o.qd * (c->o.bs + 4096) + c->o.data_in + (8UL << 20);
	vo.mem_size = c->o.mem_mb ? c->o.mem_mb << 20 : need > (64UL << 20) ? need : 64UL << 20;

	rc = vuf_connect(&c->dev, &vo);
	if (rc < 0) {
		fprintf(stderr, "vhost-user setup with %s failed: %s\n", c->o.socket,
			vuf_strerror(c->dev));
		return rc;
	}
	if (c->o.indirect && !vuf_has_feature(c->dev, VUF_F_INDIRECT_DESC)) {
		fprintf(stderr, "warning: backend lacks VIRTIO_RING_F_INDIRECT_DESC, using direct "
				"descriptors\n");
		c->o.indirect = false;
	}

	memset(cfg, 0, sizeof(cfg));
	rc = vuf_get_config(c->dev, 0, cfg, sizeof(cfg));
	if (c->o.type == DEV_SCSI) {
		struct virtio_scsi_config sc;

		memcpy(&sc, cfg, sizeof(sc));
		if (rc == 0) {
			c->dev_queues = sc.num_queues;
			c->cdb_size = sc.cdb_size;
			c->sense_size = sc.sense_size;
			c->event_info_size = sc.event_info_size;
		} else {
			/* no config space: the spec defaults, queues from GET_QUEUE_NUM */
			c->dev_queues = c->dev->backend_queues > 2 ? c->dev->backend_queues - 2 : 1;
		}
		if (c->cdb_size == 0 || c->cdb_size > VIRTIO_SCSI_CDB_SIZE)
			c->cdb_size = VIRTIO_SCSI_CDB_SIZE;
		if (c->sense_size == 0 || c->sense_size > VIRTIO_SCSI_SENSE_SIZE)
			c->sense_size = VIRTIO_SCSI_SENSE_SIZE;
		if (c->event_info_size < sizeof(struct virtio_scsi_event))
			c->event_info_size = sizeof(struct virtio_scsi_event);
		c->req_size = offsetof(struct virtio_scsi_cmd_req, cdb) + c->cdb_size;
		c->resp_size = offsetof(struct virtio_scsi_cmd_resp, sense) + c->sense_size;
		c->first_rq = 2;
	} else {
		uint64_t cap;
		uint32_t bsz;
		uint16_t nq;

		if (rc == 0) {
			memcpy(&cap, cfg, 8);
			memcpy(&bsz, cfg + 20, 4);
			memcpy(&nq, cfg + 34, 2);
			c->capacity_blocks = cap;
			c->block_size = 512;
			if (vuf_has_feature(c->dev, VIRTIO_BLK_F_BLK_SIZE) && bsz >= 512 &&
				(bsz & (bsz - 1)) == 0) {
				c->block_size = bsz;
				c->capacity_blocks = cap / (bsz / 512);
			}
			c->dev_queues = vuf_has_feature(c->dev, VIRTIO_BLK_F_MQ) && nq ? nq : 1;
		} else {
			c->block_size = 512;
			c->dev_queues = c->dev->backend_queues ? c->dev->backend_queues : 1;
		}
		c->first_rq = 0;
	}
	if (c->dev->backend_queues && c->dev_queues + c->first_rq > c->dev->backend_queues)
		c->dev_queues = c->dev->backend_queues - c->first_rq;
	if (c->o.queues > c->dev_queues) {
		fprintf(stderr, "--queues %u: the device has %u request queue(s)\n", c->o.queues,
			c->dev_queues);
		return -EINVAL;
	}
	/* every queue the device has is set up (as a guest driver would), --queues are used */
	c->nvq = c->first_rq + c->dev_queues;
	if (c->nvq > VUF_MAX_QUEUES)
		c->nvq = VUF_MAX_QUEUES;
	if (c->o.verbose)
		fprintf(stderr,
			"features: backend 0x%" PRIx64 " negotiated 0x%" PRIx64
			"; protocol: backend 0x%" PRIx64 " negotiated 0x%" PRIx64
			"; GET_QUEUE_NUM %u; %u virtqueues; %s memory, %zu MiB\n",
			c->dev->backend_features, c->dev->features, c->dev->backend_proto_features,
			c->dev->proto_features, c->dev->backend_queues, c->nvq,
			c->dev->hugetlb ? "hugetlb" : "plain", c->dev->mem_size >> 20);
	rc = vuf_start(c->dev, c->nvq);
	if (rc < 0) {
		fprintf(stderr, "vhost-user start failed: %s\n", vuf_strerror(c->dev));
		return rc;
	}

	/* the command slot: header, response, and a data buffer for --cmd / probing */
	c->cmd.data_cap = c->o.data_in > 65536 ? c->o.data_in : 65536;
	c->cmd.hdr = vuf_alloc(c->dev, 256, 64, &c->cmd.hdr_gpa);
	c->cmd.resp = vuf_alloc(c->dev, 256, 64, &c->cmd.resp_gpa);
	c->cmd.data = vuf_alloc(c->dev, c->cmd.data_cap, 4096, &c->cmd.data_gpa);
	c->cmd.q = c->first_rq;
	if (c->cmd.data == NULL) {
		fprintf(stderr, "%s\n", vuf_strerror(c->dev));
		return -ENOMEM;
	}
	(void)i;
	return 0;
}

/* TEST UNIT READY until no unit attention, then READ CAPACITY(16) (or (10)). */
static int
probe_capacity(struct ctx *c)
{
	const struct virtio_scsi_cmd_resp *rs = c->cmd.resp;
	uint8_t tur[6] = {0};
	uint8_t rc16[16] = {0x9e, 0x10};
	uint8_t rc10[10] = {0x25};
	const uint8_t *d = c->cmd.data;
	int i, st;

	if (c->o.type == DEV_BLK)
		return 0;
	for (i = 0; i < 8; i++) {
		st = scsi_cmd(c, tur, sizeof(tur), false, 0);
		if (st <= 0)
			break;
		/* UNIT ATTENTION (power on, LUN inventory changed) or a LUN becoming ready */
		if (st == 2 && (sense_key(rs->sense, rs->sense_len) == 6 ||
				       sense_key(rs->sense, rs->sense_len) == 2))
			continue;
		break;
	}
	if (st < 0)
		return st;
	if (st != 0)
		fprintf(stderr, "warning: TEST UNIT READY: status 0x%x\n", st);
	put_be(rc16 + 10, 32, 4);
	st = scsi_cmd(c, rc16, sizeof(rc16), false, 32);
	if (st < 0)
		return st;
	if (st == 0) {
		c->capacity_blocks = get_be(d, 8) + 1;
		c->block_size = (uint32_t)get_be(d + 8, 4);
	} else {
		st = scsi_cmd(c, rc10, sizeof(rc10), false, 8);
		if (st < 0)
			return st;
		if (st != 0) {
			fprintf(stderr, "READ CAPACITY failed: status 0x%x sense key 0x%x\n", st,
				sense_key(rs->sense, rs->sense_len));
			return -EIO;
		}
		c->capacity_blocks = get_be(d, 4) + 1ULL;
		c->block_size = (uint32_t)get_be(d + 4, 4);
	}
	if (c->block_size < 512 || (c->block_size & (c->block_size - 1)) != 0 ||
		c->block_size > 65536) {
		fprintf(stderr, "READ CAPACITY: unusable block size %u\n", c->block_size);
		return -EIO;
	}
	return 0;
}

static int
alloc_reqs(struct ctx *c, uint32_t io_bytes)
{
	unsigned int i;

	c->nreqs = c->o.qd;
	c->reqs = calloc(c->nreqs, sizeof(*c->reqs));
	if (c->reqs == NULL)
		return -ENOMEM;
	for (i = 0; i < c->nreqs; i++) {
		struct req *r = &c->reqs[i];

		/* header and response share a cache line pair; data page aligned */
		r->hdr = vuf_alloc(c->dev, 256, 64, &r->hdr_gpa);
		r->resp = vuf_alloc(c->dev, 128, 64, &r->resp_gpa);
		r->data = vuf_alloc(c->dev, io_bytes, 4096, &r->data_gpa);
		if (r->data == NULL) {
			fprintf(stderr, "%s (raise --mem)\n", vuf_strerror(c->dev));
			return -ENOMEM;
		}
		r->data_cap = io_bytes;
		/* requests round-robin over the request queues, and stay on theirs */
		r->q = c->first_rq + i % c->o.queues;
	}
	return 0;
}

/* ---- the I/O engine ---- */

/* Picks the next operation for r. Returns false when the job has nothing more to issue. */
static inline bool
next_op(struct ctx *c, struct req *r)
{
	uint64_t slots;

	switch (c->job) {
	case JOB_WRITE_PATTERN:
	case JOB_READ_CHECK:
		if (c->seq_next >= c->job_end)
			return false;
		r->lba = c->seq_next;
		r->nblocks = c->io_blocks;
		if (r->lba + r->nblocks > c->job_end)
			r->nblocks = (uint32_t)(c->job_end - r->lba);
		c->seq_next += r->nblocks;
		r->write = c->job == JOB_WRITE_PATTERN;
		if (r->write)
			pattern_fill(r->data, r->lba, r->nblocks, c->block_size, c->o.seed);
		return true;
	case JOB_BENCH:
		break;
	}
	slots = c->region_blocks / c->io_blocks;
	switch (c->o.rw) {
	case RW_READ:
	case RW_WRITE:
		if (c->seq_next + c->io_blocks > c->region_blocks)
			c->seq_next = 0;
		r->lba = c->seq_next;
		c->seq_next += c->io_blocks;
		r->write = c->o.rw == RW_WRITE;
		break;
	case RW_RANDREAD:
	case RW_RANDWRITE:
	case RW_RANDRW:
		r->lba = (xorshift(&c->rng) % slots) * c->io_blocks;
		if (c->o.rw == RW_RANDRW)
			r->write = (xorshift(&c->rng) % 100) >= c->o.rwmixread;
		else
			r->write = c->o.rw == RW_RANDWRITE;
		break;
	}
	r->nblocks = c->io_blocks;
	return true;
}

static void
complete(struct ctx *c, struct req *r, uint64_t t)
{
	r->busy = false;
	hist_add(&c->h, ticks_to_ns(c, t - r->t_submit));
	if (__builtin_expect(req_status(c, r) != 0, 0)) {
		report_error(c, r);
		c->errors++;
		return;
	}
	c->ios++;
	c->bytes += (uint64_t)r->nblocks * c->block_size;
	if (c->job == JOB_READ_CHECK) {
		uint32_t bad = pattern_check(r->data, r->lba, r->nblocks, c->block_size, c->o.seed);

		if (bad < r->nblocks) {
			if (c->mismatches == 0 || r->lba + bad < c->first_bad_lba)
				c->first_bad_lba = r->lba + bad;
			c->mismatches++;
		}
	}
}

/* --reconnect: the backend went away with `outstanding` requests in flight. Waits for the
 * next one (it accepts on --server's socket, or connects to --socket) and sets it up again;
 * what the old backend had taken and not completed, it resubmits from the inflight area. */
static int
backend_reconnect(struct ctx *c, unsigned int outstanding)
{
	int timeout_ms = c->o.timeout > 0 ? (int)(c->o.timeout * 1000) : 60000;
	uint64_t t0 = now_ns();
	unsigned int q;
	int rc;

	fprintf(stderr, "backend went away with %u request(s) outstanding; waiting up to %d ms "
			"for it to come back\n",
		outstanding, timeout_ms);
	for (q = c->first_rq; q < c->first_rq + c->o.queues; q++) {
		uint16_t ver = 0, uidx = 0, last = 0;
		int n = vuf_inflight_state(c->dev, q, &ver, &uidx, &last);

		if (n >= 0)
			fprintf(stderr, "  vq %u: used %u, inflight area: %d in flight, version %u, "
					"used_idx %u, last_inflight_io %u\n",
				q, c->dev->vq[q].used->idx, n, ver, uidx, last);
	}
	rc = vuf_reconnect(c->dev, timeout_ms);
	if (rc < 0) {
		fprintf(stderr, "reconnect failed: %s\n", vuf_strerror(c->dev));
		return rc;
	}
	fprintf(stderr, "reconnected after %.3f s (%s inflight area):", (now_ns() - t0) / 1e9,
		c->dev->inflight != NULL ? "with the" : "no");
	for (q = c->first_rq; q < c->first_rq + c->o.queues; q++) {
		const struct vuf_vq *vq = &c->dev->vq[q];

		fprintf(stderr, " vq %u used %u avail %u", q, vq->used->idx, vq->avail_idx);
	}
	fprintf(stderr, "\n");
	return 0;
}

/* Runs the current job until it has issued everything (pattern jobs) or for o.seconds
 * (bench), then drains. Returns 0, or <0 on a transport failure. */
static int
run_job(struct ctx *c, double seconds, double *elapsed)
{
	struct vuf_vq *vqs = c->dev->vq;
	uint64_t t0, tend, t, rounds = 0;
	unsigned int outstanding = 0, i, q;
	void *ck[POLL_BURST];
	bool issuing = true;
	int n, rc;

	t0 = ticks();
	tend = t0 + (uint64_t)(seconds * 1e9 * (double)(1ULL << 32) / (double)c->q32_ns_per_tick);
	for (i = 0; i < c->nreqs; i++) {
		struct req *r = &c->reqs[i];

		if (!next_op(c, r))
			break;
		rw_hdr(c, r);
		r->t_submit = ticks();
		rc = queue_req(c, r, r->nblocks * c->block_size);
		if (rc < 0) {
			fprintf(stderr, "queueing request: %s (queue too small for --qd?)\n",
				strerror(-rc));
			return rc;
		}
		outstanding++;
	}
	for (q = c->first_rq; q < c->first_rq + c->o.queues; q++)
		vuf_vq_kick(&vqs[q]);

	uint64_t last_progress = t0;
	uint64_t timeout_ticks =
		(uint64_t)(IO_TIMEOUT_MS * 1e6 * (double)(1ULL << 32) / (double)c->q32_ns_per_tick);
	/* --reconnect: look at the socket after 1 ms without a completion */
	uint64_t idle_ticks = (uint64_t)(1e6 * (double)(1ULL << 32) / (double)c->q32_ns_per_tick);

	while (outstanding > 0) {
		for (q = c->first_rq; q < c->first_rq + c->o.queues; q++) {
			struct vuf_vq *vq = &vqs[q];

			n = vuf_vq_poll(vq, ck, NULL, POLL_BURST);
			if (n == 0)
				continue;
			if (n < 0) {
				fprintf(stderr, "vq %u: device returned a bad used entry\n", q);
				return n;
			}
			/* one timestamp per poll round: completions of a round are
			 * indistinguishable anyway, and resubmissions start now */
			t = ticks();
			last_progress = t;
			for (i = 0; i < (unsigned int)n; i++) {
				struct req *r = ck[i];

				complete(c, r, t);
				if (issuing && c->o.gap_ms > 0) {
					/* paced: one request per gap (with --qd 1) */
					struct timespec gap = {(time_t)(c->o.gap_ms / 1000),
						(long)(c->o.gap_ms % 1000) * 1000000L};

					nanosleep(&gap, NULL);
					t = ticks();
					last_progress = t;
					if (c->job == JOB_BENCH && t >= tend)
						issuing = false;
				}
				if (issuing && next_op(c, r)) {
					rw_hdr(c, r);
					r->t_submit = t;
					queue_req(c, r, r->nblocks * c->block_size);
				} else {
					outstanding--;
				}
			}
			vuf_vq_kick(vq);
		}
		if ((++rounds & 63) == 0) {
			t = ticks();
			if (issuing && c->job == JOB_BENCH && t >= tend)
				issuing = false;
			if (c->o.reconnect && t - last_progress > idle_ticks &&
				!vuf_backend_alive(c->dev)) {
				rc = backend_reconnect(c, outstanding);
				if (rc < 0)
					return rc;
				last_progress = ticks();
				continue;
			}
			if (t - last_progress > timeout_ticks) {
				fprintf(stderr, "%u request(s) not completed after %d ms\n",
					outstanding, IO_TIMEOUT_MS);
				return -ETIMEDOUT;
			}
		}
	}
	*elapsed = (double)ticks_to_ns(c, ticks() - t0) / 1e9;
	return 0;
}

/* ---- modes ---- */

static const char *
rw_name(enum rw_mode m)
{
	static const char *const n[] = {"read", "write", "randread", "randwrite", "randrw"};

	return n[m];
}

static int
check_region(struct ctx *c, uint64_t lba, uint64_t blocks)
{
	if (c->capacity_blocks && (lba > c->capacity_blocks || blocks > c->capacity_blocks - lba)) {
		fprintf(stderr,
			"lba %" PRIu64 " + %" PRIu64 " blocks is beyond the device (%" PRIu64
			" blocks)\n",
			lba, blocks, c->capacity_blocks);
		return -EINVAL;
	}
	return 0;
}

static int
setup_io(struct ctx *c)
{
	if (c->o.bs % c->block_size != 0) {
		fprintf(stderr, "--bs %u is not a multiple of the block size %u\n", c->o.bs,
			c->block_size);
		return -EINVAL;
	}
	c->io_blocks = c->o.bs / c->block_size;
	return alloc_reqs(c, c->o.bs);
}

static int
mode_bench(struct ctx *c)
{
	double el = 0, iops, mbs;
	int rc;

	if (c->o.size)
		c->region_blocks = c->o.size / c->block_size;
	else
		c->region_blocks = c->capacity_blocks;
	if (c->region_blocks == 0) {
		fprintf(stderr, "device size unknown or zero: give --size\n");
		return EXIT_SETUP;
	}
	if (check_region(c, 0, c->region_blocks) < 0 || setup_io(c) < 0)
		return EXIT_SETUP;
	if (c->region_blocks < c->io_blocks) {
		fprintf(stderr, "region of %" PRIu64 " blocks is smaller than one I/O\n",
			c->region_blocks);
		return EXIT_SETUP;
	}
	c->job = JOB_BENCH;
	rc = run_job(c, c->o.seconds, &el);
	if (rc < 0)
		return EXIT_SETUP;
	iops = el > 0 ? (double)c->ios / el : 0;
	mbs = el > 0 ? (double)c->bytes / el / 1e6 : 0;
	uint64_t kicks = 0, supp = 0;

	for (unsigned int q = c->first_rq; q < c->first_rq + c->o.queues; q++) {
		kicks += c->dev->vq[q].kicks;
		supp += c->dev->vq[q].kicks_suppressed;
	}
	if (c->o.json) {
		printf("{\"type\":\"%s\",\"rw\":\"%s\",\"bs\":%u,\"qd\":%u,\"queues\":%u,"
		       "\"seconds\":%.3f,\"ios\":%" PRIu64 ",\"iops\":%.0f,\"mb_s\":%.2f,"
		       "\"lat_us\":{\"avg\":%.2f,\"p50\":%.2f,\"p99\":%.2f,\"p99.9\":%.2f,"
		       "\"max\":%.2f},\"errors\":%" PRIu64 ",\"kicks\":%" PRIu64
		       ",\"kicks_suppressed\":%" PRIu64
		       ",\"block_size\":%u,\"region_blocks\":%" PRIu64
		       ",\"hugetlb\":%s,\"indirect\":%s,\"event_idx\":%s}\n",
			c->o.type == DEV_BLK ? "blk" : "scsi", rw_name(c->o.rw), c->o.bs, c->o.qd,
			c->o.queues, el, c->ios, iops, mbs,
			c->h.count ? (double)c->h.sum_ns / c->h.count / 1000.0 : 0.0,
			hist_pct(&c->h, 50), hist_pct(&c->h, 99), hist_pct(&c->h, 99.9),
			(double)c->h.max_ns / 1000.0, c->errors, kicks, supp, c->block_size,
			c->region_blocks, c->dev->hugetlb ? "true" : "false",
			c->o.indirect ? "true" : "false",
			vuf_has_feature(c->dev, VUF_F_EVENT_IDX) ? "true" : "false");
	} else {
		printf("%s %s bs=%u qd=%u queues=%u: %.3f s, %" PRIu64 " ios\n",
			c->o.type == DEV_BLK ? "blk" : "scsi", rw_name(c->o.rw), c->o.bs, c->o.qd,
			c->o.queues, el, c->ios);
		printf("  IOPS %.0f  %.2f MB/s  errors %" PRIu64 "\n", iops, mbs, c->errors);
		printf("  latency us: avg %.2f p50 %.2f p99 %.2f p99.9 %.2f max %.2f\n",
			c->h.count ? (double)c->h.sum_ns / c->h.count / 1000.0 : 0.0,
			hist_pct(&c->h, 50), hist_pct(&c->h, 99), hist_pct(&c->h, 99.9),
			(double)c->h.max_ns / 1000.0);
		printf("  kicks %" PRIu64 " (suppressed %" PRIu64 ")\n", kicks, supp);
	}
	return c->errors ? EXIT_FAIL : 0;
}

static int
do_sync(struct ctx *c)
{
	int st;

	if (c->o.type == DEV_BLK) {
		struct virtio_blk_outhdr *h = c->cmd.hdr;

		h->type = VIRTIO_BLK_T_FLUSH;
		h->ioprio = 0;
		h->sector = 0;
		c->cmd.write = false;
		st = exec_req(c, &c->cmd, 0, IO_TIMEOUT_MS);
		if (st == 0)
			st = req_status(c, &c->cmd);
	} else {
		uint8_t cdb[10] = {0x35}; /* SYNCHRONIZE CACHE(10), whole medium */

		st = scsi_cmd(c, cdb, sizeof(cdb), false, 0);
	}
	if (st < 0)
		return EXIT_SETUP;
	if (st != 0) {
		fprintf(stderr, "sync failed: status 0x%x\n", st);
		return EXIT_FAIL;
	}
	printf("sync ok\n");
	return 0;
}

/* Runs a pattern job over [lba, lba + blocks). */
static int
pattern_job(struct ctx *c, enum job_kind kind, uint64_t lba, uint64_t blocks)
{
	double el;

	c->job = kind;
	c->seq_next = lba;
	c->job_end = lba + blocks;
	c->errors = c->mismatches = 0;
	if (run_job(c, 0, &el) < 0)
		return EXIT_SETUP;
	if (c->errors) {
		fprintf(stderr, "%" PRIu64 " I/O error(s)\n", c->errors);
		return EXIT_FAIL;
	}
	return 0;
}

static int
mode_pattern(struct ctx *c)
{
	uint64_t blocks = c->o.blocks;
	int rc;

	if (blocks == 0) {
		/* default: 8 MiB or the device, whichever is smaller */
		blocks = (8ULL << 20) / c->block_size;
		if (c->capacity_blocks && blocks > c->capacity_blocks - c->o.lba)
			blocks = c->capacity_blocks - c->o.lba;
	}
	if (check_region(c, c->o.lba, blocks) < 0 || setup_io(c) < 0)
		return EXIT_SETUP;
	if (c->o.verify) {
		rc = pattern_job(c, JOB_WRITE_PATTERN, c->o.lba, blocks);
		if (rc)
			return rc;
		rc = pattern_job(c, JOB_READ_CHECK, c->o.lba, blocks);
		if (rc)
			return rc;
		if (c->mismatches) {
			printf("verify FAILED: first bad block lba %" PRIu64 " (%" PRIu64
			       " bad I/Os, seed %" PRIu64 ")\n",
				c->first_bad_lba, c->mismatches, c->o.seed);
			return EXIT_FAIL;
		}
		printf("verify ok %" PRIu64 " blocks\n", blocks);
		return 0;
	}
	if (c->o.write_pattern) {
		rc = pattern_job(c, JOB_WRITE_PATTERN, c->o.lba, blocks);
		if (rc)
			return rc;
		printf("wrote %" PRIu64 " blocks at lba %" PRIu64 " seed %" PRIu64
		       " block_size %u\n",
			blocks, c->o.lba, c->o.seed, c->block_size);
		fflush(stdout);
		if (c->o.sync)
			return do_sync(c);
		return 0;
	}
	rc = pattern_job(c, JOB_READ_CHECK, c->o.lba, blocks);
	if (rc)
		return rc;
	if (c->mismatches) {
		printf("pattern mismatch: first bad block lba %" PRIu64 "\n", c->first_bad_lba);
		return EXIT_FAIL;
	}
	printf("pattern ok %" PRIu64 " blocks\n", blocks);
	return 0;
}

static int
parse_hex(const char *s, uint8_t *out, unsigned int max)
{
	unsigned int n = 0;

	while (*s) {
		if (isspace((unsigned char)*s) || *s == ':' || *s == ',') {
			s++;
			continue;
		}
		if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
			s += 2;
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]) || n >= max)
			return -1;
		char b[3] = {s[0], s[1], 0};

		out[n++] = (uint8_t)strtoul(b, NULL, 16);
		s += 2;
	}
	return (int)n;
}

static int
mode_cmd(struct ctx *c)
{
	const struct virtio_scsi_cmd_resp *rs = c->cmd.resp;
	uint8_t cdb[VIRTIO_SCSI_CDB_SIZE];
	uint32_t out_len = 0, sl, xfer;
	bool write = false;
	int n, rc;

	n = parse_hex(c->o.cmd, cdb, c->cdb_size);
	if (n <= 0) {
		fprintf(stderr, "--cmd: expected 1..%u hex bytes, e.g. \"12 00 00 00 60 00\"\n",
			c->cdb_size);
		return EXIT_SETUP;
	}
	if (c->o.data_out_file != NULL) {
		FILE *f = fopen(c->o.data_out_file, "rb");

		if (f == NULL) {
			fprintf(stderr, "%s: %s\n", c->o.data_out_file, strerror(errno));
			return EXIT_SETUP;
		}
		out_len = (uint32_t)fread(c->cmd.data, 1, c->cmd.data_cap, f);
		if (!feof(f)) {
			fprintf(stderr, "%s: larger than %u bytes\n", c->o.data_out_file,
				c->cmd.data_cap);
			fclose(f);
			return EXIT_SETUP;
		}
		fclose(f);
		write = true;
		if (c->o.data_in) {
			fprintf(stderr, "--data-in and --data-out-file together (bidirectional) "
					"are not supported\n");
			return EXIT_SETUP;
		}
	}
	if (!write)
		memset(c->cmd.data, 0, c->o.data_in);
	rc = scsi_cmd(c, cdb, (unsigned int)n, write, write ? out_len : c->o.data_in);
	if (rc < 0)
		return EXIT_SETUP;
	sl = rs->sense_len < c->sense_size ? rs->sense_len : c->sense_size;
	xfer = write ? 0 : (rs->resid < c->o.data_in ? c->o.data_in - rs->resid : 0);
	if (c->o.out_file != NULL) {
		FILE *f = fopen(c->o.out_file, "wb");

		if (f == NULL || fwrite(c->cmd.data, 1, xfer, f) != xfer) {
			fprintf(stderr, "%s: %s\n", c->o.out_file, strerror(errno));
			if (f)
				fclose(f);
			return EXIT_SETUP;
		}
		fclose(f);
	}
	if (c->o.json) {
		printf("{\"response\":%u,\"response_name\":\"%s\",\"status\":%u,"
		       "\"status_qualifier\":%u,\"sense_len\":%u,\"sense\":\"",
			rs->response, scsi_response_name(rs->response), rs->status,
			rs->status_qualifier, rs->sense_len);
		print_hex(stdout, rs->sense, sl);
		printf("\",\"sense_key\":%u,\"residual\":%u,\"data_in_len\":%u,\"data_in\":\"",
			sense_key(rs->sense, sl), rs->resid, xfer);
		print_hex(stdout, c->cmd.data, c->o.out_file ? 0 : xfer);
		printf("\"}\n");
	} else {
		printf("response %u %s\n", rs->response, scsi_response_name(rs->response));
		printf("status 0x%02x\n", rs->status);
		printf("status_qualifier %u\n", rs->status_qualifier);
		printf("sense_len %u\nsense ", rs->sense_len);
		print_hex(stdout, rs->sense, sl);
		printf("\nsense_key 0x%x\nresidual %u\ndata_in_len %u\ndata_in ",
			sense_key(rs->sense, sl), rs->resid, xfer);
		print_hex(stdout, c->cmd.data, c->o.out_file ? 0 : xfer);
		printf("\n");
	}
	return 0;
}

static int
mode_tmf(struct ctx *c)
{
	struct virtio_scsi_ctrl_tmf_req *t = c->cmd.hdr;
	struct virtio_scsi_ctrl_tmf_resp *tr = c->cmd.resp;
	struct vuf_vq *vq = &c->dev->vq[0];
	struct vuf_buf b[2];
	void *ck[1];
	int rc;

	memset(t, 0, sizeof(*t));
	t->type = VIRTIO_SCSI_T_TMF;
	if (strcmp(c->o.tmf, "abort") == 0)
		t->subtype = VIRTIO_SCSI_T_TMF_ABORT_TASK;
	else if (strcmp(c->o.tmf, "lun-reset") == 0)
		t->subtype = VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET;
	else {
		fprintf(stderr, "--tmf %s: abort or lun-reset\n", c->o.tmf);
		return EXIT_SETUP;
	}
	scsi_lun(c, t->lun);
	t->tag = c->o.tag;
	tr->response = 0xff;
	b[0] = (struct vuf_buf){c->cmd.hdr_gpa, sizeof(*t), false};
	b[1] = (struct vuf_buf){c->cmd.resp_gpa, sizeof(*tr), true};
	rc = vuf_vq_add(vq, b, 2, false, &c->cmd);
	if (rc == 0)
		rc = vuf_vq_kick(vq);
	if (rc >= 0)
		rc = vuf_vq_wait(vq, ck, NULL, 1, IO_TIMEOUT_MS);
	if (rc < 0) {
		fprintf(stderr, "control queue: %s\n", strerror(-rc));
		return EXIT_SETUP;
	}
	if (c->o.json)
		printf("{\"tmf\":\"%s\",\"tag\":%" PRIu64
		       ",\"response\":%u,\"response_name\":\"%s\"}\n",
			c->o.tmf, c->o.tag, tr->response, scsi_response_name(tr->response));
	else
		printf("tmf %s response %u %s\n", c->o.tmf, tr->response,
			scsi_response_name(tr->response));
	return tr->response == VIRTIO_SCSI_S_OK || tr->response == VIRTIO_SCSI_S_FUNCTION_SUCCEEDED
		       ? 0
		       : EXIT_FAIL;
}

static const char *
event_name(uint32_t e)
{
	switch (e & ~VIRTIO_SCSI_T_EVENTS_MISSED) {
	case VIRTIO_SCSI_T_NO_EVENT:
		return "NO_EVENT";
	case VIRTIO_SCSI_T_TRANSPORT_RESET:
		return "TRANSPORT_RESET";
	case VIRTIO_SCSI_T_ASYNC_NOTIFY:
		return "ASYNC_NOTIFY";
	case VIRTIO_SCSI_T_PARAM_CHANGE:
		return "PARAM_CHANGE";
	default:
		return "UNKNOWN";
	}
}

static const char *
reason_name(uint32_t e, uint32_t r)
{
	static const char *const reset[] = {"HARD", "RESCAN", "REMOVED"};

	if ((e & ~VIRTIO_SCSI_T_EVENTS_MISSED) == VIRTIO_SCSI_T_TRANSPORT_RESET && r < 3)
		return reset[r];
	return "-";
}

static int
mode_events(struct ctx *c)
{
	struct vuf_vq *vq = &c->dev->vq[1];
	unsigned int nbuf = (unsigned int)c->o.events, i;
	uint64_t deadline;
	int got = 0, rc;

	if (nbuf < 8)
		nbuf = 8;
	if (nbuf > vq->num)
		nbuf = vq->num;
	for (i = 0; i < nbuf; i++) {
		uint64_t gpa;
		void *p = vuf_alloc(c->dev, c->event_info_size, 64, &gpa);
		struct vuf_buf b = {gpa, c->event_info_size, true};

		if (p == NULL || vuf_vq_add(vq, &b, 1, false, p) < 0) {
			fprintf(stderr, "posting event buffers failed\n");
			return EXIT_SETUP;
		}
	}
	vuf_vq_kick(vq);
	/* tests wait for this line before triggering the hot-plug */
	fprintf(stderr, "events armed (%u buffers)\n", nbuf);
	if (!c->o.json)
		printf("events armed\n");
	fflush(stdout);
	deadline = now_ns() + (uint64_t)(c->o.timeout * 1e9);
	if (c->o.json)
		printf("{\"events\":[");
	while (got < c->o.events) {
		void *ck[POLL_BURST];
		uint32_t lens[POLL_BURST];
		int64_t left = (int64_t)(deadline - now_ns());

		if (left <= 0)
			break;
		rc = vuf_vq_wait(vq, ck, lens, POLL_BURST, (int)(left / 1000000) + 1);
		if (rc == -ETIMEDOUT)
			break;
		if (rc < 0) {
			fprintf(stderr, "event queue: bad used entry\n");
			return EXIT_SETUP;
		}
		for (i = 0; i < (unsigned int)rc; i++) {
			struct virtio_scsi_event *ev = ck[i];
			unsigned int tgt = ev->lun[1];
			unsigned int lun = ((ev->lun[2] & 0x3f) << 8) | ev->lun[3];
			struct vuf_buf b = {vuf_va_to_gpa(c->dev, ev), c->event_info_size, true};

			if (c->o.json)
				printf("%s{\"event\":%u,\"name\":\"%s\",\"missed\":%s,"
				       "\"target\":%u,\"lun\":%u,\"reason\":%u,\"reason_name\":\"%"
				       "s\","
				       "\"raw_lun\":\"",
					got ? "," : "", ev->event & ~VIRTIO_SCSI_T_EVENTS_MISSED,
					event_name(ev->event),
					ev->event & VIRTIO_SCSI_T_EVENTS_MISSED ? "true" : "false",
					tgt, lun, ev->reason, reason_name(ev->event, ev->reason));
			else
				printf("event %u %s missed=%d target %u lun %u reason %u %s "
				       "lun_raw ",
					ev->event & ~VIRTIO_SCSI_T_EVENTS_MISSED,
					event_name(ev->event),
					!!(ev->event & VIRTIO_SCSI_T_EVENTS_MISSED), tgt, lun,
					ev->reason, reason_name(ev->event, ev->reason));
			print_hex(stdout, ev->lun, 8);
			printf(c->o.json ? "\"}" : "\n");
			fflush(stdout);
			got++;
			/* re-post it, as a driver does, so further events are not lost */
			memset(ev, 0, c->event_info_size);
			vuf_vq_add(vq, &b, 1, false, ev);
		}
		vuf_vq_kick(vq);
	}
	if (c->o.json)
		printf("],\"received\":%d,\"wanted\":%d}\n", got, c->o.events);
	if (got < c->o.events) {
		fprintf(stderr, "timeout: %d of %d event(s) received\n", got, c->o.events);
		return EXIT_FAIL;
	}
	return 0;
}

/* ---- main ---- */

static void
usage(FILE *f)
{
	fprintf(f, "usage: vhostd-scsi-bench (--socket PATH | --server PATH) [options] [mode]\n"
		   "device:  --type scsi|blk  --target T --lun L  --queues N  --vq-size N\n"
		   "         --indirect --no-event-idx --no-hugetlb --inflight --mem MB --cpu N "
		   "--verbose\n"
		   "         --reconnect (backend gone: wait for it, set it up again and let it\n"
		   "           resubmit what was in flight; with --inflight, best with --server)\n"
		   "bench:   --rw randread|randwrite|read|write|randrw [--rwmixread PCT]\n"
		   "         --bs BYTES --qd N --time SECONDS --size BYTES --json\n"
		   "         --gap-ms N (pause N ms before each resubmission: a paced trickle)\n"
		   "modes:   --verify [--lba L --blocks N --seed S]\n"
		   "         --write-pattern SEED --lba L --blocks N [--sync]\n"
		   "         --read-pattern-check SEED --lba L --blocks N\n"
		   "         --sync\n"
		   "         --cmd HEX [--data-in N | --data-out-file F] [--out FILE] [--json]\n"
		   "         --tmf abort|lun-reset [--tag TAG]\n"
		   "         --events N [--timeout SECONDS]\n");
}

static uint64_t
parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		break;
	case 't':
	case 'T':
		v <<= 40;
		break;
	default:
		break;
	}
	return v;
}

enum {
	O_SOCKET = 256,
	O_SERVER,
	O_TYPE,
	O_TARGET,
	O_LUN,
	O_RW,
	O_MIX,
	O_BS,
	O_QD,
	O_QUEUES,
	O_TIME,
	O_SIZE,
	O_CPU,
	O_JSON,
	O_INDIRECT,
	O_NOEVIDX,
	O_NOHUGE,
	O_INFLIGHT,
	O_RECONNECT,
	O_MEM,
	O_VQSIZE,
	O_VERBOSE,
	O_VERIFY,
	O_CMD,
	O_DATAIN,
	O_DATAOUT,
	O_OUT,
	O_WPAT,
	O_RPAT,
	O_SYNC,
	O_SEED,
	O_LBA,
	O_BLOCKS,
	O_TMF,
	O_TAG,
	O_EVENTS,
	O_TIMEOUT,
	O_GAP,
	O_HELP,
};

static const struct option longopts[] = {
	{"socket", required_argument, NULL, O_SOCKET},
	{"server", required_argument, NULL, O_SERVER},
	{"type", required_argument, NULL, O_TYPE},
	{"target", required_argument, NULL, O_TARGET},
	{"lun", required_argument, NULL, O_LUN},
	{"rw", required_argument, NULL, O_RW},
	{"rwmixread", required_argument, NULL, O_MIX},
	{"bs", required_argument, NULL, O_BS},
	{"qd", required_argument, NULL, O_QD},
	{"queues", required_argument, NULL, O_QUEUES},
	{"time", required_argument, NULL, O_TIME},
	{"size", required_argument, NULL, O_SIZE},
	{"cpu", required_argument, NULL, O_CPU},
	{"json", no_argument, NULL, O_JSON},
	{"indirect", no_argument, NULL, O_INDIRECT},
	{"no-event-idx", no_argument, NULL, O_NOEVIDX},
	{"no-hugetlb", no_argument, NULL, O_NOHUGE},
	{"inflight", no_argument, NULL, O_INFLIGHT},
	{"reconnect", no_argument, NULL, O_RECONNECT},
	{"mem", required_argument, NULL, O_MEM},
	{"vq-size", required_argument, NULL, O_VQSIZE},
	{"verbose", no_argument, NULL, O_VERBOSE},
	{"verify", no_argument, NULL, O_VERIFY},
	{"cmd", required_argument, NULL, O_CMD},
	{"data-in", required_argument, NULL, O_DATAIN},
	{"data-out-file", required_argument, NULL, O_DATAOUT},
	{"out", required_argument, NULL, O_OUT},
	{"write-pattern", required_argument, NULL, O_WPAT},
	{"read-pattern-check", required_argument, NULL, O_RPAT},
	{"sync", no_argument, NULL, O_SYNC},
	{"seed", required_argument, NULL, O_SEED},
	{"lba", required_argument, NULL, O_LBA},
	{"blocks", required_argument, NULL, O_BLOCKS},
	{"tmf", required_argument, NULL, O_TMF},
	{"tag", required_argument, NULL, O_TAG},
	{"events", required_argument, NULL, O_EVENTS},
	{"timeout", required_argument, NULL, O_TIMEOUT},
	{"gap-ms", required_argument, NULL, O_GAP},
	{"help", no_argument, NULL, O_HELP},
	{NULL, 0, NULL, 0},
};

static int
parse_args(struct opts *o, int argc, char **argv)
{
	int ch;

	*o = (struct opts){.type = DEV_SCSI,
		.rw = RW_RANDREAD,
		.rwmixread = 50,
		.bs = 4096,
		.qd = 32,
		.queues = 1,
		.seconds = 10,
		.cpu = -1,
		.vq_size = 256,
		.timeout = 10};
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case O_SOCKET:
			o->socket = optarg;
			o->server = false;
			break;
		case O_SERVER:
			o->socket = optarg;
			o->server = true;
			break;
		case O_TYPE:
			if (strcmp(optarg, "scsi") == 0)
				o->type = DEV_SCSI;
			else if (strcmp(optarg, "blk") == 0)
				o->type = DEV_BLK;
			else
				return -1;
			break;
		case O_TARGET:
			o->target = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case O_LUN:
			o->lun = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case O_RW:
			for (ch = 0; ch <= RW_RANDRW; ch++)
				if (strcmp(optarg, rw_name(ch)) == 0)
					break;
			if (ch > RW_RANDRW)
				return -1;
			o->rw = ch;
			break;
		case O_MIX:
			o->rwmixread = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case O_BS:
			o->bs = (uint32_t)parse_size(optarg);
			break;
		case O_QD:
			o->qd = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case O_QUEUES:
			o->queues = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case O_TIME:
			o->seconds = strtod(optarg, NULL);
			break;
		case O_SIZE:
			o->size = parse_size(optarg);
			break;
		case O_CPU:
			o->cpu = atoi(optarg);
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_INDIRECT:
			o->indirect = true;
			break;
		case O_NOEVIDX:
			o->no_event_idx = true;
			break;
		case O_NOHUGE:
			o->no_hugetlb = true;
			break;
		case O_INFLIGHT:
			o->inflight = true;
			break;
		case O_RECONNECT:
			o->reconnect = true;
			break;
		case O_MEM:
			o->mem_mb = strtoull(optarg, NULL, 0);
			break;
		case O_VQSIZE:
			o->vq_size = (uint16_t)strtoul(optarg, NULL, 0);
			break;
		case O_VERBOSE:
			o->verbose = true;
			break;
		case O_VERIFY:
			o->verify = true;
			break;
		case O_CMD:
			o->cmd = optarg;
			break;
		case O_DATAIN:
			o->data_in = (uint32_t)parse_size(optarg);
			break;
		case O_DATAOUT:
			o->data_out_file = optarg;
			break;
		case O_OUT:
			o->out_file = optarg;
			break;
		case O_WPAT:
		case O_RPAT:
			if (ch == O_WPAT)
				o->write_pattern = true;
			else
				o->read_check = true;
			/* the argument is the seed */
			__attribute__((fallthrough));
		case O_SEED:
			o->seed = strtoull(optarg, NULL, 0);
			o->seed_set = true;
			break;
		case O_SYNC:
			o->sync = true;
			break;
		case O_LBA:
			o->lba = strtoull(optarg, NULL, 0);
			break;
		case O_BLOCKS:
			o->blocks = strtoull(optarg, NULL, 0);
			break;
		case O_TMF:
			o->tmf = optarg;
			break;
		case O_TAG:
			o->tag = strtoull(optarg, NULL, 0);
			break;
		case O_EVENTS:
			o->events = atoi(optarg);
			break;
		case O_TIMEOUT:
			o->timeout = strtod(optarg, NULL);
			break;
		case O_GAP:
			o->gap_ms = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case O_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc || o->socket == NULL)
		return -1;
	if ((int)o->verify + o->write_pattern + o->read_check + (o->cmd != NULL) +
			(o->tmf != NULL) + (o->events > 0) >
		1) {
		fprintf(stderr, "choose one of --verify, --write-pattern, --read-pattern-check, "
				"--cmd, --tmf, --events\n");
		return -1;
	}
	if ((o->cmd || o->tmf || o->events) && o->type != DEV_SCSI) {
		fprintf(stderr, "--cmd, --tmf and --events need --type scsi\n");
		return -1;
	}
	if (o->qd == 0 || o->queues == 0 || o->bs == 0 || o->rwmixread > 100) {
		fprintf(stderr, "--qd, --queues and --bs must be > 0, --rwmixread <= 100\n");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct ctx *c;
	int rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return EXIT_SETUP;
	if (parse_args(&c->o, argc, argv) < 0) {
		usage(stderr);
		return EXIT_SETUP;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (c->o.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(c->o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			fprintf(stderr, "--cpu %d: %s\n", c->o.cpu, strerror(errno));
			return EXIT_SETUP;
		}
	}
	if (!c->o.seed_set)
		c->o.seed = (now_ns() ^ ((uint64_t)getpid() << 32)) & 0xffffffffffffULL;
	c->rng = splitmix64(c->o.seed ^ now_ns()) | 1;
	calibrate(c);

	rc = connect_dev(c);
	if (rc < 0) {
		vuf_close(c->dev);
		return EXIT_SETUP;
	}
	if (c->o.cmd != NULL) {
		rc = mode_cmd(c);
	} else if (c->o.tmf != NULL) {
		rc = mode_tmf(c);
	} else if (c->o.events > 0) {
		rc = mode_events(c);
	} else {
		rc = probe_capacity(c);
		if (rc < 0) {
			rc = EXIT_SETUP;
		} else if (c->o.verify || c->o.write_pattern || c->o.read_check) {
			rc = mode_pattern(c);
		} else if (c->o.sync) {
			rc = do_sync(c);
		} else {
			if (!c->o.json)
				printf("%s: block size %u, %" PRIu64 " blocks, %s memory\n",
					c->o.socket, c->block_size, c->capacity_blocks,
					c->dev->hugetlb ? "hugetlb" : "shared (no hugetlb)");
			rc = mode_bench(c);
		}
	}
	vuf_close(c->dev);
	free(c->reqs);
	free(c);
	return rc;
}
