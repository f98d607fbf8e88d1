/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SCSI command set and the LUN backends, without DPDK's EAL: null and
 * ram LUNs for the command set, file LUNs in every cache mode through a real
 * io_uring context (polled until the task is done, bytes checked with pread).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "lun.h"
#include "log.h"
#include "scsi_cmd.h"

#define GUARD 64
#define BUF_MAX (1u << 20)

/* One task plus its buffer and guard bytes after the buffer. */
struct req {
	struct scsi_task t;
	struct iovec iov[4];
	uint8_t *buf; /* BUF_MAX + GUARD, 4096-aligned */
	uint32_t len;
	int done;
};

static struct req R;
static struct lun_io_ctx *io_ctx; /* for file LUNs */

static void
on_done(struct scsi_task *t)
{
	((struct req *)t->priv)->done++;
}

static void
req_setup(struct req *r, struct lun *l, const uint8_t *cdb, size_t cdb_len, enum scsi_dir dir,
	uint32_t len)
{
	struct scsi_task *t = &r->t;

	if (!r->buf)
		assert_int_equal(posix_memalign((void **)&r->buf, 4096, BUF_MAX + GUARD + 4096), 0);
	memset(t, 0, sizeof(*t));
	memcpy(t->cdb, cdb, cdb_len);
	t->cdb_len = cdb_len;
	t->lun = l;
	t->dir = dir;
	r->iov[0].iov_base = r->buf;
	r->iov[0].iov_len = len;
	t->iov = r->iov;
	t->iovcnt = 1;
	t->xfer_len = len;
	t->done = on_done;
	t->priv = r;
	t->initiator = 1;
	r->len = len;
	r->done = 0;
	memset(r->buf + len, 0xa5, GUARD);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void
req_wait(struct req *r)
{
	int i;

	uint64_t end = now_ns() + 10000000000ull;

	/* io_uring may punt to its workers: wait by time, not by poll count */
	while (!r->done && io_ctx && now_ns() < end)
		lun_io_ctx_poll(io_ctx);
	assert_int_equal(r->done, 1);
	for (i = 0; i < GUARD; i++)
		assert_int_equal(r->buf[r->len + i], 0xa5);
	assert_true(r->t.data_len <= r->t.xfer_len);
}

/* Execute a CDB on @l with a @len-byte buffer; returns the task. */
static struct scsi_task *
run(struct lun *l, const uint8_t *cdb, size_t cdb_len, enum scsi_dir dir, uint32_t len)
{
	req_setup(&R, l, cdb, cdb_len, dir, len);
	scsi_task_execute(&R.t, io_ctx);
	req_wait(&R);
	return &R.t;
}

#define RUN(l, dir, len, ...)                                                                      \
	({                                                                                         \
		const uint8_t cdb_[] = {__VA_ARGS__};                                              \
		run(l, cdb_, sizeof(cdb_), dir, len);                                              \
	})

static void
assert_good(const struct scsi_task *t)
{
	if (t->status != SCSI_STATUS_GOOD)
		print_error("status %#x key %#x asc %#x/%#x\n", t->status, t->sense[2],
			t->sense[12], t->sense[13]);
	assert_int_equal(t->status, SCSI_STATUS_GOOD);
	assert_int_equal(t->sense_len, 0);
}

static void
assert_sense(const struct scsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq)
{
	assert_int_equal(t->status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(t->sense_len, 18);
	assert_int_equal(t->sense[0] & 0x7f, 0x70);
	assert_int_equal(t->sense[2] & 0x0f, key);
	assert_int_equal(t->sense[7], 10);
	assert_int_equal(t->sense[12], asc);
	assert_int_equal(t->sense[13], ascq);
	assert_int_equal(t->data_len, 0);
}

static void
assert_illegal(const struct scsi_task *t, uint8_t asc)
{
	assert_sense(t, SCSI_SK_ILLEGAL_REQUEST, asc, 0);
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static uint64_t
be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static struct lun *
open_lun(enum lun_backend_type b, uint64_t size, uint32_t bs, bool ro, const char *name)
{
	struct lun_conf c;
	struct lun *l;
	char err[512];

	lun_conf_init(&c);
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.backend = b;
	c.size = size;
	c.block_size = bs;
	c.readonly = ro;
	if (lun_open(&c, &l, err, sizeof(err)) < 0)
		fail_msg("lun_open: %s", err);
	return l;
}

static struct lun *
ram(void)
{
	return open_lun(LUN_BACKEND_RAM, 4 << 20, 512, false, "ram0");
}

static void
fill(uint8_t *p, size_t n, uint8_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

/* REPORT LUNS on a target with @n LUNs @ids. */
static struct scsi_task *
report_luns(struct lun *l, const uint8_t *cdb, uint32_t len, const uint16_t *ids, uint16_t n)
{
	req_setup(&R, l, cdb, 12, SCSI_DIR_FROM_DEV, len);
	R.t.target_luns = ids;
	R.t.n_target_luns = n;
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	return &R.t;
}

/* ---- Non-I/O commands ---- */

static void
test_tur_start_stop(void **state)
{
	struct lun *l = ram();

	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x00, 0, 0, 0, 0, 0));
	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x1b, 0, 0, 0, 0x01, 0));
	lun_close(l);
}

static void
test_inquiry_standard(void **state)
{
	struct lun *l = ram();
	struct scsi_task *t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 0, 0, 0, 255, 0);

	assert_good(t);
	assert_int_equal(t->data_len, 36);
	assert_int_equal(R.buf[0], 0x00);
	assert_int_equal(R.buf[2], 0x06);
	assert_int_equal(R.buf[3] & 0x0f, 0x02);
	assert_int_equal(R.buf[4], 31);
	assert_int_equal(R.buf[7] & 0x02, 0x02);
	assert_memory_equal(R.buf + 8, "VHOSTD  ", 8);
	assert_memory_equal(R.buf + 16, "VIRTUAL-DISK    ", 16);
	assert_memory_equal(R.buf + 32, "0001", 4);

	/* allocation length and buffer shorter than the response */
	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 0, 0, 0, 5, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 5);
	t = RUN(l, SCSI_DIR_FROM_DEV, 10, 0x12, 0, 0, 0, 255, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 10);
	/* EVPD=0 with a page code; CMDDT; wrong direction */
	assert_illegal(RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 0, 0x80, 0, 255, 0), 0x24);
	assert_illegal(RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 0x02, 0, 0, 255, 0), 0x24);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 255, 0x12, 0, 0, 0, 255, 0), 0x24);
	/* truncated CDB */
	assert_illegal(RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 0, 0, 0, 255), 0x24);
	lun_close(l);
}

static void
test_inquiry_vpd(void **state)
{
	struct lun *l = ram(), *l2;
	struct scsi_task *t;
	uint8_t naa[8];

	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 1, 0x00, 0, 255, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 10);
	assert_memory_equal(R.buf, ((uint8_t[]){0, 0, 0, 6, 0, 0x80, 0x83, 0xb0, 0xb1, 0xb2}), 10);

	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 1, 0x80, 0, 255, 0);
	assert_good(t);
	assert_int_equal(R.buf[1], 0x80);
	assert_int_equal(R.buf[3], 4);
	assert_memory_equal(R.buf + 4, "ram0", 4);

	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 1, 0x83, 0, 255, 0);
	assert_good(t);
	assert_int_equal(R.buf[1], 0x83);
	assert_int_equal(R.buf[4], 0x01); /* binary */
	assert_int_equal(R.buf[5], 0x03); /* LU, NAA */
	assert_int_equal(R.buf[7], 8);
	assert_int_equal(R.buf[8] >> 4, 5); /* IEEE Registered */
	memcpy(naa, R.buf + 8, 8);
	assert_int_equal(R.buf[16], 0x02); /* ASCII */
	assert_int_equal(R.buf[17], 0x01); /* T10 vendor id */
	assert_memory_equal(R.buf + 20, "VHOSTD  ram0", 12);
	assert_int_equal((R.buf[2] << 8 | R.buf[3]) + 4, t->data_len);
	/* stable for a name, different for another */
	l2 = ram();
	t = RUN(l2, SCSI_DIR_FROM_DEV, 255, 0x12, 1, 0x83, 0, 255, 0);
	assert_memory_equal(R.buf + 8, naa, 8);
	lun_close(l2);
	l2 = open_lun(LUN_BACKEND_NULL, 1 << 20, 512, false, "other");
	t = RUN(l2, SCSI_DIR_FROM_DEV, 255, 0x12, 1, 0x83, 0, 255, 0);
	assert_memory_not_equal(R.buf + 8, naa, 8);
	lun_close(l2);

	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 1, 0xb0, 0, 255, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 64);
	assert_int_equal(R.buf[3], 0x3c);
	assert_int_equal(be32(R.buf + 8), (8 << 20) / 512);    /* max transfer */
	assert_int_equal(be32(R.buf + 12), (128 << 10) / 512); /* optimal */
	assert_int_equal(be32(R.buf + 20), (1 << 30) / 512);   /* max unmap LBA count */
	assert_int_equal(be32(R.buf + 24), 256);               /* max descriptors */
	assert_int_equal(be32(R.buf + 28), 1);                 /* granularity */

	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 1, 0xb1, 0, 255, 0);
	assert_good(t);
	assert_int_equal(R.buf[4] << 8 | R.buf[5], 1);

	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 1, 0xb2, 0, 255, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 8);
	assert_int_equal(R.buf[5] & 0xe0, 0xe0); /* LBPU LBPWS LBPWS10 */
	assert_int_equal(R.buf[6] & 0x07, 2);    /* thin */

	/* unsupported page, short allocation length */
	assert_illegal(RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 1, 0x99, 0, 255, 0), 0x24);
	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x12, 1, 0xb0, 0, 4, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 4);
	lun_close(l);
}

static void
test_lun_absent(void **state)
{
	struct scsi_task *t;
	uint16_t ids[] = {0, 1};

	t = RUN(NULL, SCSI_DIR_FROM_DEV, 96, 0x12, 0, 0, 0, 96, 0);
	assert_good(t);
	assert_int_equal(R.buf[0], 0x7f);
	t = RUN(NULL, SCSI_DIR_FROM_DEV, 96, 0x03, 0, 0, 0, 96, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 18);
	assert_int_equal(R.buf[2], SCSI_SK_ILLEGAL_REQUEST);
	assert_int_equal(R.buf[12], 0x25);
	assert_illegal(RUN(NULL, SCSI_DIR_NONE, 0, 0x00, 0, 0, 0, 0, 0), 0x25);
	assert_illegal(RUN(NULL, SCSI_DIR_FROM_DEV, 512, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0), 0x25);
	assert_illegal(RUN(NULL, SCSI_DIR_NONE, 0, 0xee, 0, 0, 0, 0, 0), 0x25);

	report_luns(NULL, (const uint8_t[]){0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 256, ids, 2);
	assert_good(&R.t);
	assert_int_equal(R.t.data_len, 24);
	assert_int_equal(be32(R.buf), 16);
	assert_int_equal(R.buf[17], 1);
}

static void
test_report_luns(void **state)
{
	struct lun *l = ram();
	static uint16_t ids[400];
	unsigned int i;
	uint8_t cdb[12] = {0xa0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0};

	for (i = 0; i < 400; i++)
		ids[i] = i * 3;
	report_luns(l, cdb, 0x4000, ids, 400);
	assert_good(&R.t);
	assert_int_equal(R.t.data_len, 8 + 400 * 8);
	assert_int_equal(be32(R.buf), 400 * 8);
	assert_int_equal(R.buf[8 + 5 * 8], 0x00); /* id 15 */
	assert_int_equal(R.buf[8 + 5 * 8 + 1], 15);
	assert_int_equal(R.buf[8 + 100 * 8], 0x40 | (300 >> 8)); /* id 300: flat */
	assert_int_equal(R.buf[8 + 100 * 8 + 1], 300 & 0xff);
	assert_int_equal(R.buf[8 + 399 * 8], 0x40 | (1197 >> 8));
	assert_int_equal(R.buf[8 + 399 * 8 + 1], 1197 & 0xff);

	/* allocation length shorter than the list: truncated, list length intact */
	cdb[8] = 0;
	cdb[9] = 20;
	report_luns(l, cdb, 0x4000, ids, 400);
	assert_good(&R.t);
	assert_int_equal(R.t.data_len, 20);
	assert_int_equal(be32(R.buf), 400 * 8);

	/* buffer shorter than the allocation length */
	cdb[9] = 0xff;
	report_luns(l, cdb, 13, ids, 400);
	assert_good(&R.t);
	assert_int_equal(R.t.data_len, 13);

	/* SELECT REPORT 1: no well-known LUNs; 2: all; 3: invalid */
	cdb[2] = 1;
	report_luns(l, cdb, 256, ids, 400);
	assert_good(&R.t);
	assert_int_equal(R.t.data_len, 8);
	assert_int_equal(be32(R.buf), 0);
	cdb[2] = 2;
	report_luns(l, cdb, 256, ids, 1);
	assert_int_equal(R.t.data_len, 16);
	cdb[2] = 3;
	assert_illegal(run(l, cdb, 12, SCSI_DIR_FROM_DEV, 256), 0x24);
	/* allocation length below 16 */
	cdb[2] = 0;
	cdb[9] = 15;
	assert_illegal(run(l, cdb, 12, SCSI_DIR_FROM_DEV, 256), 0x24);
	lun_close(l);
}

static void
test_read_capacity(void **state)
{
	struct lun *l = ram(), *big;
	struct scsi_task *t;

	t = RUN(l, SCSI_DIR_FROM_DEV, 8, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 8);
	assert_int_equal(be32(R.buf), (4 << 20) / 512 - 1);
	assert_int_equal(be32(R.buf + 4), 512);
	t = RUN(l, SCSI_DIR_FROM_DEV, 32, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 32);
	assert_int_equal(be64(R.buf), (4 << 20) / 512 - 1);
	assert_int_equal(be32(R.buf + 8), 512);
	assert_int_equal(R.buf[13] & 0x0f, 0);
	assert_int_equal(R.buf[14] & 0x80, 0x80); /* LBPME */
	/* allocation length 12 */
	t = RUN(l, SCSI_DIR_FROM_DEV, 32, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0);
	assert_int_equal(t->data_len, 12);
	/* other service action, truncated */
	assert_illegal(RUN(l, SCSI_DIR_FROM_DEV, 32, 0x9e, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			       32, 0, 0),
		0x24);
	assert_illegal(RUN(l, SCSI_DIR_FROM_DEV, 32, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0), 0x24);
	lun_close(l);

	big = open_lun(LUN_BACKEND_NULL, 4ull << 40, 512, false, "big");
	t = RUN(big, SCSI_DIR_FROM_DEV, 8, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	assert_good(t);
	assert_int_equal(be32(R.buf), 0xffffffffu);
	t = RUN(big, SCSI_DIR_FROM_DEV, 32, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0);
	assert_int_equal(be64(R.buf), (4ull << 40) / 512 - 1);
	lun_close(big);
}

/* ---- Media commands on ram and null ---- */

static void
put_be(uint8_t *p, uint64_t v, unsigned int bytes)
{
	unsigned int i;

	for (i = 0; i < bytes; i++)
		p[i] = v >> (8 * (bytes - 1 - i));
}

static void
cdb_rw(uint8_t *c, uint8_t op, uint64_t lba, uint32_t n)
{
	memset(c, 0, 16);
	c[0] = op;
	switch (op >> 5) {
	case 0:
		c[1] = (lba >> 16) & 0x1f;
		c[2] = lba >> 8;
		c[3] = lba;
		c[4] = n;
		break;
	case 1:
	case 2:
		put_be(c + 2, lba, 4);
		put_be(c + 7, n, 2);
		break;
	case 5:
		put_be(c + 2, lba, 4);
		put_be(c + 6, n, 4);
		break;
	default:
		put_be(c + 2, lba, 8);
		put_be(c + 10, n, 4);
		break;
	}
}

static uint8_t
cdb_len_of(uint8_t op)
{
	static const uint8_t len[8] = {6, 10, 10, 0, 16, 12, 0, 0};

	return len[op >> 5];
}

/* Write @n blocks of @seed pattern at @lba with @op, through the harness. */
static struct scsi_task *
xfer(struct lun *l, uint8_t op, uint64_t lba, uint32_t n, uint32_t buflen, enum scsi_dir dir)
{
	uint8_t c[16];

	cdb_rw(c, op, lba, n);
	return run(l, c, cdb_len_of(op), dir, buflen);
}

static void
test_rw_ram(void **state)
{
	static const uint8_t wops[] = {0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0x8e};
	static const uint8_t rops[] = {0x08, 0x28, 0xa8, 0x88, 0x28, 0x88};
	struct lun *l = ram();
	uint8_t *ref = malloc(8192);
	struct scsi_task *t;
	unsigned int i;

	for (i = 0; i < sizeof(wops); i++) {
		uint64_t lba = 100 + i * 37;

		req_setup(&R, l, (uint8_t[16]){0}, 16, SCSI_DIR_TO_DEV, 4096);
		fill(ref, 4096, i);
		memcpy(R.buf, ref, 4096);
		cdb_rw(R.t.cdb, wops[i], lba, 8);
		R.t.cdb_len = cdb_len_of(wops[i]);
		scsi_task_execute(&R.t, NULL);
		req_wait(&R);
		assert_good(&R.t);
		assert_int_equal(R.t.data_len, 4096);

		t = xfer(l, rops[i], lba, 8, 4096, SCSI_DIR_FROM_DEV);
		assert_good(t);
		assert_int_equal(t->data_len, 4096);
		assert_memory_equal(R.buf, ref, 4096);
	}
	/* a larger buffer than needed: only the transfer length moves */
	t = xfer(l, 0x28, 100, 1, 4096, SCSI_DIR_FROM_DEV);
	assert_good(t);
	assert_int_equal(t->data_len, 512);
	/* scattered iovecs */
	req_setup(&R, l, (uint8_t[16]){0}, 10, SCSI_DIR_FROM_DEV, 0);
	cdb_rw(R.t.cdb, 0x28, 100 + 5 * 37, 8);
	R.iov[0].iov_base = R.buf;
	R.iov[0].iov_len = 1000;
	R.iov[1].iov_base = R.buf + 2000;
	R.iov[1].iov_len = 3096;
	R.t.iovcnt = 2;
	R.t.xfer_len = 4096;
	R.len = 5096;
	memset(R.buf + 5096, 0xa5, GUARD);
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_good(&R.t);
	fill(ref, 4096, 5);
	assert_memory_equal(R.buf, ref, 1000);
	assert_memory_equal(R.buf + 2000, ref + 1000, 3096);
	free(ref);
	lun_close(l);
}

/*
 * A read with the next read's prefetch pending (the poll loop's order:
 * scsi_task_prefetch() of the next task, then the current one executes):
 * the bytes are the same for every split of the buffer, and hints for
 * ranges outside the LUN or for other commands change nothing.
 */
static void
test_ram_read_prefetch(void **state)
{
	static const size_t splits[][4] = {
		{4096, 0, 0, 0}, {100, 1000, 37, 2959}, {63, 1, 64, 3968}, {3, 4093, 0, 0}};
	struct lun *l = ram();
	uint64_t blocks = (4 << 20) / 512;
	uint8_t *ref = malloc(4096), *nbuf = malloc(4096);
	struct lun_io_ctx *io;
	struct scsi_task next;
	struct iovec niov = {nbuf, 4096};
	char err[256];

	io = lun_io_ctx_create(2, 8, err, sizeof(err));
	assert_non_null(io);
	req_setup(&R, l, (uint8_t[16]){0}, 16, SCSI_DIR_TO_DEV, 4096);
	fill(R.buf, 4096, 9);
	cdb_rw(R.t.cdb, 0x2a, 64, 8);
	R.t.cdb_len = 10;
	scsi_task_execute(&R.t, io);
	req_wait(&R);
	assert_good(&R.t);
	fill(ref, 4096, 9);

	for (unsigned int s = 0; s < sizeof(splits) / sizeof(splits[0]); s++) {
		/* next: a read at the end, across the end, past the end; a write */
		uint64_t nl = s == 0 ? blocks - 8 : s == 1 ? blocks - 4 : s == 2 ? blocks : 8;
		uint8_t op = s == 3 ? 0x2a : 0x28;
		size_t off = 0;

		memset(&next, 0, sizeof(next));
		next.lun = l;
		next.dir = op == 0x28 ? SCSI_DIR_FROM_DEV : SCSI_DIR_TO_DEV;
		cdb_rw(next.cdb, op, nl, 8);
		next.cdb_len = 10;
		next.iov = &niov;
		next.iovcnt = 1;
		next.xfer_len = 4096;
		next.done = on_done;
		next.priv = &R;
		scsi_task_prefetch(&next, io);

		req_setup(&R, l, (uint8_t[16]){0}, 10, SCSI_DIR_FROM_DEV, 0);
		cdb_rw(R.t.cdb, 0x28, 64, 8);
		memset(R.buf, 0, 4096 + 4 * 64);
		R.t.iovcnt = 0;
		for (unsigned int k = 0; k < 4 && splits[s][k]; k++) {
			/* 64 bytes apart, odd offsets: no segment is aligned */
			R.iov[k].iov_base = R.buf + off + k * 64 + 1;
			R.iov[k].iov_len = splits[s][k];
			off += splits[s][k];
			R.t.iovcnt++;
		}
		R.t.xfer_len = 4096;
		R.len = 4096 + 4 * 64 + 1;
		memset(R.buf + R.len, 0xa5, GUARD);
		scsi_task_execute(&R.t, io);
		req_wait(&R);
		assert_good(&R.t);
		assert_int_equal(R.t.data_len, 4096);
		off = 0;
		for (unsigned int k = 0; k < R.t.iovcnt; k++) {
			assert_memory_equal(R.iov[k].iov_base, ref + off, R.iov[k].iov_len);
			off += R.iov[k].iov_len;
		}
	}
	lun_io_ctx_destroy(io);
	free(ref);
	free(nbuf);
	lun_close(l);
}

static void
test_rw_zero_length(void **state)
{
	struct lun *l = ram();
	struct scsi_task *t;

	t = xfer(l, 0x28, 0, 0, 0, SCSI_DIR_NONE);
	assert_good(t);
	assert_int_equal(t->data_len, 0);
	assert_good(xfer(l, 0xa8, 0, 0, 0, SCSI_DIR_NONE));
	assert_good(xfer(l, 0x8a, 0, 0, 0, SCSI_DIR_NONE));
	/* READ(6) with 0 blocks means 256 */
	t = xfer(l, 0x08, 0, 0, 256 * 512, SCSI_DIR_FROM_DEV);
	assert_good(t);
	assert_int_equal(t->data_len, 256 * 512);
	assert_illegal(xfer(l, 0x0a, 0, 0, 512, SCSI_DIR_TO_DEV), 0x24);
	lun_close(l);
}

static void
test_rw_errors(void **state)
{
	struct lun *l = ram(), *ro;
	uint64_t nb = lun_num_blocks(l);
	struct scsi_task *t;
	uint8_t c[16];
	int i;

	assert_int_equal(nb, 8192);
	/* past the end, straddling the end, 64-bit overflow of LBA + length */
	assert_illegal(xfer(l, 0x28, nb, 1, 512, SCSI_DIR_FROM_DEV), 0x21);
	assert_illegal(xfer(l, 0x28, nb - 1, 2, 1024, SCSI_DIR_FROM_DEV), 0x21);
	assert_illegal(xfer(l, 0x88, UINT64_MAX, 2, 1024, SCSI_DIR_FROM_DEV), 0x21);
	assert_illegal(xfer(l, 0x8a, UINT64_MAX - 1, 4, 2048, SCSI_DIR_TO_DEV), 0x21);
	assert_illegal(xfer(l, 0x0a, 0x1fffff, 1, 512, SCSI_DIR_TO_DEV), 0x21);
	assert_good(xfer(l, 0x28, nb - 1, 1, 512, SCSI_DIR_FROM_DEV));
	/* transfer larger than the buffer: nothing moves, guard bytes intact */
	memset(R.buf, 0x5a, 1024);
	req_setup(&R, l, (uint8_t[16]){0}, 10, SCSI_DIR_FROM_DEV, 1000);
	cdb_rw(R.t.cdb, 0x28, 0, 2);
	memset(R.buf, 0x5a, 1000);
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_illegal(&R.t, 0x24);
	for (i = 0; i < 1000; i++)
		assert_int_equal(R.buf[i], 0x5a);
	assert_illegal(xfer(l, 0x8a, 0, 0xffffffff, 4096, SCSI_DIR_TO_DEV), 0x21);
	assert_illegal(xfer(l, 0x8a, 0, 100, 4096, SCSI_DIR_TO_DEV), 0x24);
	/* direction mismatches */
	assert_illegal(xfer(l, 0x28, 0, 1, 512, SCSI_DIR_TO_DEV), 0x24);
	assert_illegal(xfer(l, 0x2a, 0, 1, 512, SCSI_DIR_FROM_DEV), 0x24);
	assert_illegal(xfer(l, 0x2a, 0, 1, 512, SCSI_DIR_NONE), 0x24);
	/* truncated CDBs of every group */
	cdb_rw(c, 0x28, 0, 1);
	assert_illegal(run(l, c, 9, SCSI_DIR_FROM_DEV, 512), 0x24);
	cdb_rw(c, 0x88, 0, 1);
	assert_illegal(run(l, c, 10, SCSI_DIR_FROM_DEV, 512), 0x24);
	cdb_rw(c, 0xa8, 0, 1);
	assert_illegal(run(l, c, 11, SCSI_DIR_FROM_DEV, 512), 0x24);
	cdb_rw(c, 0x08, 0, 1);
	assert_illegal(run(l, c, 5, SCSI_DIR_FROM_DEV, 512), 0x24);
	assert_illegal(run(l, c, 0, SCSI_DIR_FROM_DEV, 512), 0x20);
	/* unsupported operation codes */
	assert_illegal(RUN(l, SCSI_DIR_NONE, 0, 0x04, 0, 0, 0, 0, 0), 0x20); /* FORMAT UNIT */
	assert_illegal(
		RUN(l, SCSI_DIR_NONE, 0, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		0x20); /* COMPARE AND WRITE */
	assert_illegal(RUN(l, SCSI_DIR_NONE, 0, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0x20);
	assert_illegal(RUN(l, SCSI_DIR_NONE, 0, 0xc0, 0, 0, 0, 0, 0), 0x20);
	lun_close(l);

	/* read-only LUN */
	ro = open_lun(LUN_BACKEND_RAM, 1 << 20, 4096, true, "ro");
	assert_sense(xfer(ro, 0x2a, 0, 1, 4096, SCSI_DIR_TO_DEV), SCSI_SK_DATA_PROTECT, 0x27, 0);
	assert_sense(xfer(ro, 0x8e, 0, 1, 4096, SCSI_DIR_TO_DEV), SCSI_SK_DATA_PROTECT, 0x27, 0);
	assert_sense(RUN(ro, SCSI_DIR_TO_DEV, 4096, 0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0),
		SCSI_SK_DATA_PROTECT, 0x27, 0);
	assert_sense(RUN(ro, SCSI_DIR_TO_DEV, 24, 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0),
		SCSI_SK_DATA_PROTECT, 0x27, 0);
	t = xfer(ro, 0x28, 255, 1, 4096, SCSI_DIR_FROM_DEV);
	assert_good(t);
	assert_int_equal(t->data_len, 4096);
	assert_illegal(xfer(ro, 0x28, 256, 1, 4096, SCSI_DIR_FROM_DEV), 0x21);
	lun_close(ro);
}

static void
test_null_lun(void **state)
{
	struct lun *l = open_lun(LUN_BACKEND_NULL, 1 << 30, 4096, false, "null0");
	struct scsi_task *t;
	int i;

	memset(R.buf, 0x33, 65536);
	req_setup(&R, l, (uint8_t[16]){0}, 10, SCSI_DIR_FROM_DEV, 65536);
	memset(R.buf, 0x33, 65536);
	cdb_rw(R.t.cdb, 0x28, 10, 16);
	scsi_task_execute(&R.t, NULL);
	assert_int_equal(R.done, 1); /* synchronous */
	req_wait(&R);
	assert_good(&R.t);
	assert_int_equal(R.t.data_len, 65536);
	for (i = 0; i < 65536; i++)
		assert_int_equal(R.buf[i], 0x33);
	t = xfer(l, 0x2a, 10, 16, 65536, SCSI_DIR_TO_DEV);
	assert_good(t);
	assert_int_equal(t->data_len, 65536);
	assert_illegal(xfer(l, 0x2a, 262144, 1, 4096, SCSI_DIR_TO_DEV), 0x21);
	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	lun_close(l);
}

static void
test_verify(void **state)
{
	struct lun *l = ram();
	struct scsi_task *t;

	fill(R.buf, 2048, 9);
	assert_good(xfer(l, 0x2a, 40, 4, 2048, SCSI_DIR_TO_DEV));
	/* BYTCHK=0: range check only */
	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x2f, 0, 0, 0, 0, 40, 0, 0, 4, 0));
	assert_illegal(RUN(l, SCSI_DIR_NONE, 0, 0x2f, 0, 0, 0, 0x20, 0, 0, 0, 1, 0), 0x21);
	/* BYTCHK=1, same data */
	req_setup(&R, l, (const uint8_t[]){0x2f, 0x02, 0, 0, 0, 40, 0, 0, 4, 0}, 10,
		SCSI_DIR_TO_DEV, 2048);
	fill(R.buf, 2048, 9);
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_good(&R.t);
	/* BYTCHK=1, one byte differs: MISCOMPARE with the offset in INFORMATION */
	req_setup(&R, l, (const uint8_t[]){0x8f, 0x02, 0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0, 4, 0, 0},
		16, SCSI_DIR_TO_DEV, 2048);
	fill(R.buf, 2048, 9);
	R.buf[1500] ^= 1;
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	t = &R.t;
	assert_sense(t, SCSI_SK_MISCOMPARE, 0x1d, 0);
	assert_int_equal(t->sense[0], 0xf0);
	assert_int_equal(be32(t->sense + 3), 1500);
	/* BYTCHK=1 with a short buffer, BYTCHK=3 */
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 1024, 0x2f, 0x02, 0, 0, 0, 40, 0, 0, 4, 0), 0x24);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 2048, 0x2f, 0x06, 0, 0, 0, 40, 0, 0, 4, 0), 0x24);
	lun_close(l);
}

static void
test_sync_cache(void **state)
{
	struct lun *l = ram();
	struct lun_stats s;

	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x35, 0, 0, 0, 0, 8, 0, 0, 16, 0));
	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	assert_illegal(RUN(l, SCSI_DIR_NONE, 0, 0x35, 0, 0, 0, 0x20, 0, 0, 0, 0, 0), 0x21);
	assert_illegal(RUN(l, SCSI_DIR_NONE, 0, 0x91, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			       0xff, 0, 0, 0, 2, 0, 0),
		0x21);
	lun_stats_read(l, &s);
	assert_int_equal(s.flush_req, 3);
	assert_int_equal(s.errors, 2);
	lun_close(l);
}

/* ---- MODE SENSE / MODE SELECT, REQUEST SENSE, unit attention ---- */

static void
test_mode_sense(void **state)
{
	struct lun *l = ram(), *wb, *ro;
	struct lun_conf c;
	struct scsi_task *t;
	char err[256];

	/* MODE SENSE(6), all pages, block descriptor */
	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x1a, 0, 0x3f, 0, 255, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 4 + 8 + 12 + 20 + 12);
	assert_int_equal(R.buf[0], t->data_len - 1);
	assert_int_equal(R.buf[2] & 0x80, 0); /* not WP */
	assert_int_equal(R.buf[3], 8);
	assert_int_equal(be32(R.buf + 4), 8192);
	assert_int_equal(be32(R.buf + 8) & 0xffffff, 512);
	assert_int_equal(R.buf[12], 0x01);
	assert_int_equal(R.buf[13], 0x0a);
	assert_int_equal(R.buf[24], 0x08);
	assert_int_equal(R.buf[25], 0x12);
	assert_int_equal(R.buf[26] & 0x04, 0); /* WCE: cache none */
	assert_int_equal(R.buf[44], 0x0a);
	/* DBD, one page */
	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x1a, 0x08, 0x08, 0, 255, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 4 + 20);
	assert_int_equal(R.buf[3], 0);
	assert_int_equal(R.buf[4], 0x08);
	/* MODE SENSE(10), long LBA descriptor */
	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x5a, 0x10, 0x0a, 0, 0, 0, 0, 0, 255, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 8 + 16 + 12);
	assert_int_equal(R.buf[0] << 8 | R.buf[1], t->data_len - 2);
	assert_int_equal(R.buf[4] & 1, 1);
	assert_int_equal(R.buf[7], 16);
	assert_int_equal(be64(R.buf + 8), 8192);
	assert_int_equal(be32(R.buf + 20), 512);
	assert_int_equal(R.buf[24], 0x0a);
	/* changeable values: nothing */
	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x1a, 0x08, 0x48, 0, 255, 0);
	assert_good(t);
	assert_int_equal(R.buf[4], 0x08);
	assert_int_equal(R.buf[6], 0);
	/* allocation length, saved values, unknown page, subpage */
	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x1a, 0, 0x3f, 0, 7, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 7);
	assert_int_equal(R.buf[0], 4 + 8 + 44 - 1);
	assert_illegal(RUN(l, SCSI_DIR_FROM_DEV, 255, 0x1a, 0, 0xc8, 0, 255, 0), 0x39);
	assert_illegal(RUN(l, SCSI_DIR_FROM_DEV, 255, 0x1a, 0, 0x1c, 0, 255, 0), 0x24);
	assert_illegal(RUN(l, SCSI_DIR_FROM_DEV, 255, 0x1a, 0, 0x08, 1, 255, 0), 0x24);
	assert_good(RUN(l, SCSI_DIR_FROM_DEV, 255, 0x1a, 0, 0x3f, 0xff, 255, 0));
	lun_close(l);

	/* writeback: WCE=1; read-only: WP */
	lun_conf_init(&c);
	snprintf(c.name, sizeof(c.name), "wb");
	c.backend = LUN_BACKEND_NULL;
	c.size = 1 << 20;
	c.cache = LUN_CACHE_WRITEBACK;
	assert_int_equal(lun_open(&c, &wb, err, sizeof(err)), 0);
	t = RUN(wb, SCSI_DIR_FROM_DEV, 255, 0x1a, 0x08, 0x08, 0, 255, 0);
	assert_int_equal(R.buf[6] & 0x04, 0x04);
	lun_close(wb);
	ro = open_lun(LUN_BACKEND_NULL, 1 << 20, 512, true, "ro");
	t = RUN(ro, SCSI_DIR_FROM_DEV, 255, 0x5a, 0, 0x08, 0, 0, 0, 0, 0, 255, 0);
	assert_good(t);
	assert_int_equal(R.buf[3] & 0x80, 0x80);
	lun_close(ro);
}

static void
test_mode_select(void **state)
{
	struct lun *l = ram();
	uint8_t page[64];
	struct scsi_task *t;

	/* read the caching page (with header and block descriptor) and send it back */
	t = RUN(l, SCSI_DIR_FROM_DEV, 255, 0x1a, 0, 0x08, 0, 255, 0);
	assert_good(t);
	memcpy(page, R.buf, 32);
	page[0] = 0; /* mode data length is reserved in MODE SELECT */
	req_setup(&R, l, (const uint8_t[]){0x15, 0x10, 0, 0, 32, 0}, 6, SCSI_DIR_TO_DEV, 32);
	memcpy(R.buf, page, 32);
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_good(&R.t);
	/* turning WCE on changes something that cannot change */
	req_setup(&R, l, (const uint8_t[]){0x15, 0x10, 0, 0, 32, 0}, 6, SCSI_DIR_TO_DEV, 32);
	memcpy(R.buf, page, 32);
	R.buf[14] |= 0x04;
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_illegal(&R.t, 0x26);
	/* unknown page */
	req_setup(&R, l, (const uint8_t[]){0x15, 0x10, 0, 0, 8, 0}, 6, SCSI_DIR_TO_DEV, 8);
	memcpy(R.buf, (const uint8_t[]){0, 0, 0, 0, 0x1c, 2, 0, 0}, 8);
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_illegal(&R.t, 0x26);
	/* truncated page */
	req_setup(&R, l, (const uint8_t[]){0x15, 0x10, 0, 0, 10, 0}, 6, SCSI_DIR_TO_DEV, 10);
	memcpy(R.buf, page, 4);
	memcpy(R.buf + 4, page + 12, 6);
	R.buf[3] = 0;
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_illegal(&R.t, 0x26);
	/* MODE SELECT(10): header only; SP; list longer than the buffer; empty list */
	req_setup(&R, l, (const uint8_t[]){0x55, 0x10, 0, 0, 0, 0, 0, 0, 8, 0}, 10, SCSI_DIR_TO_DEV,
		8);
	memset(R.buf, 0, 8);
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_good(&R.t);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 8, 0x55, 0x11, 0, 0, 0, 0, 0, 0, 8, 0), 0x24);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 4, 0x55, 0x10, 0, 0, 0, 0, 0, 0, 8, 0), 0x24);
	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x15, 0x10, 0, 0, 0, 0));
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 2, 0x15, 0x10, 0, 0, 2, 0), 0x1a);
	lun_close(l);
}

static void
test_unit_attention(void **state)
{
	struct lun *l = ram();
	uint16_t id = 0;
	struct scsi_task *t;

	t = RUN(l, SCSI_DIR_FROM_DEV, 18, 0x03, 0, 0, 0, 18, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 18);
	assert_int_equal(R.buf[0], 0x70);
	assert_int_equal(R.buf[2], SCSI_SK_NO_SENSE);

	lun_set_unit_attention(l, 0x29, 0x00);
	/* INQUIRY and REPORT LUNS do not consume it */
	assert_good(RUN(l, SCSI_DIR_FROM_DEV, 96, 0x12, 0, 0, 0, 96, 0));
	report_luns(l, (const uint8_t[]){0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 256, &id, 1);
	assert_good(&R.t);
	/* the next command reports it, exactly once */
	assert_sense(
		RUN(l, SCSI_DIR_NONE, 0, 0x00, 0, 0, 0, 0, 0), SCSI_SK_UNIT_ATTENTION, 0x29, 0);
	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x00, 0, 0, 0, 0, 0));

	/* REQUEST SENSE returns (and clears) it */
	lun_set_unit_attention(l, 0x3f, 0x0e);
	t = RUN(l, SCSI_DIR_FROM_DEV, 252, 0x03, 0, 0, 0, 252, 0);
	assert_good(t);
	assert_int_equal(t->data_len, 18);
	assert_int_equal(R.buf[2], SCSI_SK_UNIT_ATTENTION);
	assert_int_equal(R.buf[12], 0x3f);
	assert_int_equal(R.buf[13], 0x0e);
	assert_good(xfer(l, 0x28, 0, 1, 512, SCSI_DIR_FROM_DEV));
	/* a READ reports it too (and moves no data) */
	lun_set_unit_attention(l, 0x29, 0x00);
	assert_sense(xfer(l, 0x28, 0, 1, 512, SCSI_DIR_FROM_DEV), SCSI_SK_UNIT_ATTENTION, 0x29, 0);
	/* REQUEST SENSE allocation length */
	t = RUN(l, SCSI_DIR_FROM_DEV, 252, 0x03, 0, 0, 0, 8, 0);
	assert_int_equal(t->data_len, 8);
	lun_close(l);
}

/* ---- UNMAP, WRITE SAME ---- */

static void
unmap_list(uint8_t *p, const uint64_t *lba, const uint32_t *n, unsigned int cnt)
{
	unsigned int i, k;

	memset(p, 0, 8 + 16 * cnt);
	p[0] = (6 + 16 * cnt) >> 8;
	p[1] = 6 + 16 * cnt;
	p[2] = (16 * cnt) >> 8;
	p[3] = 16 * cnt;
	for (i = 0; i < cnt; i++) {
		for (k = 0; k < 8; k++)
			p[8 + 16 * i + k] = lba[i] >> (56 - 8 * k);
		for (k = 0; k < 4; k++)
			p[16 + 16 * i + k] = n[i] >> (24 - 8 * k);
	}
}

static struct scsi_task *
do_unmap(struct lun *l, const uint64_t *lba, const uint32_t *n, unsigned int cnt)
{
	uint32_t len = 8 + 16 * cnt;

	req_setup(&R, l, (const uint8_t[]){0x42, 0, 0, 0, 0, 0, 0, len >> 8, len, 0}, 10,
		SCSI_DIR_TO_DEV, len);
	unmap_list(R.buf, lba, n, cnt);
	scsi_task_execute(&R.t, io_ctx);
	req_wait(&R);
	return &R.t;
}

static bool
blocks_are(struct lun *l, uint64_t lba, uint32_t n, int byte)
{
	struct scsi_task *t = xfer(l, 0x88, lba, n, n * 512, SCSI_DIR_FROM_DEV);
	uint32_t i;

	assert_good(t);
	for (i = 0; i < n * 512; i++)
		if (byte >= 0 ? R.buf[i] != byte : R.buf[i] == 0)
			return false;
	return true;
}

static void
write_blocks(struct lun *l, uint64_t lba, uint32_t n, uint8_t byte)
{
	req_setup(&R, l, (uint8_t[16]){0}, 16, SCSI_DIR_TO_DEV, n * 512);
	cdb_rw(R.t.cdb, 0x8a, lba, n);
	memset(R.buf, byte, n * 512);
	scsi_task_execute(&R.t, io_ctx);
	req_wait(&R);
	assert_good(&R.t);
}

/* Shared by ram and file LUNs (512-byte blocks, at least 2048 blocks). */
static void
check_unmap(struct lun *l)
{
	uint64_t lba[3] = {16, 64, 100000000};
	uint32_t n[3] = {8, 16, 1};
	struct lun_stats s0, s1;

	lun_stats_read(l, &s0);
	write_blocks(l, 0, 128, 0x77);
	assert_good(do_unmap(l, lba, n, 2));
	assert_true(blocks_are(l, 16, 8, 0));
	assert_true(blocks_are(l, 64, 16, 0));
	assert_true(blocks_are(l, 24, 40, 0x77));
	assert_true(blocks_are(l, 80, 48, 0x77));
	lun_stats_read(l, &s1);
	assert_int_equal(s1.unmap_req - s0.unmap_req, 1);
	assert_int_equal(s1.unmap_blocks - s0.unmap_blocks, 24);
	/* one bad descriptor: nothing is unmapped */
	write_blocks(l, 0, 128, 0x66);
	lba[0] = 0;
	assert_illegal(do_unmap(l, lba, n, 3), 0x21);
	assert_true(blocks_are(l, 0, 128, 0x66));
	lba[2] = lun_num_blocks(l) - 1;
	n[2] = 2;
	assert_illegal(do_unmap(l, lba, n, 3), 0x21);
	lba[2] = UINT64_MAX;
	assert_illegal(do_unmap(l, lba, n, 3), 0x21);
	assert_true(blocks_are(l, 0, 128, 0x66));
	/* zero-length descriptors only: nothing to do */
	n[0] = n[1] = 0;
	assert_good(do_unmap(l, lba, n, 2));
}

static void
test_unmap(void **state)
{
	struct lun *l = ram();
	uint64_t lba[1] = {0};
	uint32_t n[1] = {(1 << 30) / 512 + 1};
	struct lun *big;

	check_unmap(l);
	/* empty list, short list, ANCHOR, buffer shorter than the list, wrong direction */
	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 6, 0x42, 0, 0, 0, 0, 0, 0, 0, 6, 0), 0x1a);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 24, 0x42, 1, 0, 0, 0, 0, 0, 0, 24, 0), 0x24);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 16, 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0), 0x24);
	assert_illegal(RUN(l, SCSI_DIR_FROM_DEV, 24, 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0), 0x24);
	/* more than 256 descriptors */
	req_setup(&R, l, (const uint8_t[]){0x42, 0, 0, 0, 0, 0, 0, 0x10, 0x18, 0}, 10,
		SCSI_DIR_TO_DEV, 8 + 16 * 257);
	memset(R.buf, 0, 8 + 16 * 257);
	R.buf[2] = (16 * 257) >> 8;
	R.buf[3] = (16 * 257) & 0xff;
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_illegal(&R.t, 0x26);
	lun_close(l);
	/* a descriptor beyond the maximum unmap LBA count */
	big = open_lun(LUN_BACKEND_NULL, 4ull << 30, 512, false, "big");
	assert_illegal(do_unmap(big, lba, n, 1), 0x26);
	lun_close(big);
}

/* WRITE SAME(16) with the UNMAP bit and a block of @byte. */
static struct scsi_task *
write_same16_unmap(struct lun *l, uint8_t lba, uint8_t n, uint8_t byte)
{
	req_setup(&R, l, (const uint8_t[]){0x93, 0x08, 0, 0, 0, 0, 0, 0, 0, lba, 0, 0, 0, n, 0, 0},
		16, SCSI_DIR_TO_DEV, 512);
	memset(R.buf, byte, 512);
	scsi_task_execute(&R.t, io_ctx);
	req_wait(&R);
	return &R.t;
}

/* Shared by ram and file LUNs. */
static void
check_write_same(struct lun *l)
{
	struct scsi_task *t;
	uint32_t i;

	/* WRITE SAME(10): replicate one block */
	req_setup(&R, l, (const uint8_t[]){0x41, 0, 0, 0, 0, 10, 0, 0, 20, 0}, 10, SCSI_DIR_TO_DEV,
		512);
	fill(R.buf, 512, 3);
	scsi_task_execute(&R.t, io_ctx);
	req_wait(&R);
	assert_good(&R.t);
	t = xfer(l, 0x28, 9, 22, 22 * 512, SCSI_DIR_FROM_DEV);
	assert_good(t);
	for (i = 1; i <= 20; i++) {
		uint8_t ref[512];

		fill(ref, 512, 3);
		assert_memory_equal(R.buf + i * 512, ref, 512);
	}
	/* WRITE SAME(16) with UNMAP and a zero block: unmapped */
	write_blocks(l, 200, 50, 0x44);
	assert_good(write_same16_unmap(l, 210, 30, 0));
	assert_true(blocks_are(l, 210, 30, 0));
	assert_true(blocks_are(l, 200, 10, 0x44));
	assert_true(blocks_are(l, 240, 10, 0x44));
	/* UNMAP bit with a non-zero block: the data is written */
	assert_good(write_same16_unmap(l, 210, 5, 0x12));
	assert_true(blocks_are(l, 210, 5, 0x12));
	/* NDOB: zeros, no data-out buffer */
	assert_good(
		RUN(l, SCSI_DIR_NONE, 0, 0x93, 0x09, 0, 0, 0, 0, 0, 0, 0, 210, 0, 0, 0, 5, 0, 0));
	assert_true(blocks_are(l, 210, 5, 0));
	/* 0 blocks (WSNZ), beyond the end, no buffer, ANCHOR */
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 512, 0x41, 0, 0, 0, 0, 10, 0, 0, 0, 0), 0x24);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 512, 0x93, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			       0xff, 0xff, 0, 0, 0, 2, 0, 0),
		0x21);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 100, 0x41, 0, 0, 0, 0, 10, 0, 0, 1, 0), 0x24);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 512, 0x41, 0x10, 0, 0, 0, 10, 0, 0, 1, 0), 0x24);
}

static void
test_write_same(void **state)
{
	struct lun *l = ram();

	check_write_same(l);
	lun_close(l);
}

/* ---- Persistent reservations ---- */

static struct scsi_task *
pr_out(struct lun *l, uint64_t ini, uint8_t sa, uint8_t type, uint64_t key, uint64_t sa_key)
{
	int i;

	req_setup(&R, l, (const uint8_t[]){0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0}, 10,
		SCSI_DIR_TO_DEV, 24);
	memset(R.buf, 0, 24);
	for (i = 0; i < 8; i++) {
		R.buf[i] = key >> (56 - 8 * i);
		R.buf[8 + i] = sa_key >> (56 - 8 * i);
	}
	R.t.initiator = ini;
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	return &R.t;
}

static struct scsi_task *
pr_in(struct lun *l, uint8_t sa)
{
	return RUN(l, SCSI_DIR_FROM_DEV, 512, 0x5e, sa, 0, 0, 0, 0, 0, 2, 0, 0);
}

static struct scsi_task *
io_as(struct lun *l, uint64_t ini, bool write)
{
	req_setup(&R, l, (uint8_t[16]){0}, 10, write ? SCSI_DIR_TO_DEV : SCSI_DIR_FROM_DEV, 512);
	cdb_rw(R.t.cdb, write ? 0x2a : 0x28, 0, 1);
	R.t.initiator = ini;
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	return &R.t;
}

static void
assert_conflict(const struct scsi_task *t)
{
	assert_int_equal(t->status, SCSI_STATUS_RESERVATION_CONFLICT);
	assert_int_equal(t->data_len, 0);
}

enum { A = 0xa, B = 0xb, C = 0xc };

static void
test_pr(void **state)
{
	struct lun *l = ram();
	struct scsi_task *t;

	/* REPORT CAPABILITIES */
	t = pr_in(l, 2);
	assert_good(t);
	assert_int_equal(t->data_len, 8);
	assert_int_equal(R.buf[1], 8);
	assert_int_equal(R.buf[3] & 0x80, 0x80);
	assert_int_equal(R.buf[4], 0xea);
	assert_int_equal(R.buf[5], 0x01);

	/* register A and B; a wrong key or an unregistered RESERVE conflicts */
	assert_good(pr_out(l, A, 0, 0, 0, 0xaaaa));
	assert_good(pr_out(l, B, 0, 0, 0, 0xbbbb));
	assert_conflict(pr_out(l, B, 0, 0, 0x1234, 0xbbbc));
	assert_conflict(pr_out(l, C, 1, 1, 0, 0));
	assert_conflict(pr_out(l, A, 1, 1, 0xbbbb, 0));
	t = pr_in(l, 0);
	assert_good(t);
	assert_int_equal(be32(R.buf), 2); /* generation */
	assert_int_equal(be32(R.buf + 4), 16);
	assert_int_equal(be64(R.buf + 8), 0xaaaa);
	assert_int_equal(be64(R.buf + 16), 0xbbbb);
	assert_int_equal(t->data_len, 24);

	/* A: Write Exclusive. B may read, not write; A may do both. */
	assert_good(pr_out(l, A, 1, 1, 0xaaaa, 0));
	assert_good(pr_out(l, A, 1, 1, 0xaaaa, 0)); /* again: same holder and type */
	assert_conflict(pr_out(l, B, 1, 1, 0xbbbb, 0));
	assert_conflict(pr_out(l, A, 1, 3, 0xaaaa, 0)); /* another type */
	t = pr_in(l, 1);
	assert_good(t);
	assert_int_equal(be32(R.buf + 4), 16);
	assert_int_equal(be64(R.buf + 8), 0xaaaa);
	assert_int_equal(R.buf[21], 1);
	assert_good(io_as(l, B, false));
	assert_conflict(io_as(l, B, true));
	assert_conflict(io_as(l, C, true));
	assert_good(io_as(l, A, true));
	assert_conflict(RUN(l, SCSI_DIR_NONE, 0, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	/* B's RELEASE is a no-op; A's with the wrong type is an error */
	assert_good(pr_out(l, B, 2, 1, 0xbbbb, 0));
	assert_conflict(io_as(l, B, true));
	assert_sense(pr_out(l, A, 2, 3, 0xaaaa, 0), SCSI_SK_ILLEGAL_REQUEST, 0x26, 0x04);
	assert_good(pr_out(l, A, 2, 1, 0xaaaa, 0));
	assert_good(io_as(l, B, true));
	t = pr_in(l, 1);
	assert_int_equal(be32(R.buf + 4), 0);
	assert_int_equal(t->data_len, 8);

	/* Exclusive Access: B cannot even read */
	assert_good(pr_out(l, A, 1, 3, 0xaaaa, 0));
	assert_conflict(io_as(l, B, false));
	assert_good(io_as(l, A, false));
	/* non-media commands still work for B */
	req_setup(&R, l, (const uint8_t[]){0x00, 0, 0, 0, 0, 0}, 6, SCSI_DIR_NONE, 0);
	R.t.initiator = B;
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_good(&R.t);
	/* B preempts A: B holds Write Exclusive, A is unregistered */
	assert_good(pr_out(l, B, 4, 1, 0xbbbb, 0xaaaa));
	assert_conflict(io_as(l, A, true));
	assert_good(io_as(l, A, false));
	assert_good(io_as(l, B, true));
	t = pr_in(l, 0);
	assert_int_equal(be32(R.buf + 4), 8);
	assert_int_equal(be64(R.buf + 8), 0xbbbb);
	/* preempting a key nobody has conflicts */
	assert_conflict(pr_out(l, B, 4, 1, 0xbbbb, 0x9999));

	/* Write Exclusive - Registrants Only: a registrant may write */
	assert_good(pr_out(l, A, 6, 0, 0x5555, 0xaaaa)); /* REGISTER AND IGNORE EXISTING KEY */
	assert_good(pr_out(l, B, 2, 1, 0xbbbb, 0));
	assert_good(pr_out(l, B, 1, 5, 0xbbbb, 0));
	assert_good(io_as(l, A, true));
	assert_conflict(io_as(l, C, true));
	assert_good(io_as(l, C, false));
	/* unregistering the holder releases the reservation */
	assert_good(pr_out(l, B, 0, 0, 0xbbbb, 0));
	assert_good(io_as(l, C, true));

	/* Exclusive Access - All Registrants, then CLEAR */
	assert_good(pr_out(l, A, 1, 8, 0xaaaa, 0));
	assert_conflict(io_as(l, C, false));
	assert_good(io_as(l, A, false));
	assert_good(pr_out(l, A, 3, 0, 0xaaaa, 0));
	assert_good(io_as(l, C, true));
	t = pr_in(l, 0);
	assert_int_equal(be32(R.buf + 4), 0);

	/* malformed: bad type, scope, list length, APTPL, unsupported service actions */
	assert_good(pr_out(l, A, 0, 0, 0, 0xaaaa));
	assert_illegal(pr_out(l, A, 1, 2, 0xaaaa, 0), 0x24);
	assert_illegal(pr_out(l, A, 1, 0x11, 0xaaaa, 0), 0x24);
	assert_illegal(pr_out(l, A, 5, 1, 0xaaaa, 0), 0x24);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 24, 0x5f, 0, 0, 0, 0, 0, 0, 0, 20, 0), 0x1a);
	assert_illegal(RUN(l, SCSI_DIR_TO_DEV, 16, 0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0), 0x24);
	req_setup(&R, l, (const uint8_t[]){0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0}, 10, SCSI_DIR_TO_DEV,
		24);
	memset(R.buf, 0, 24);
	R.buf[15] = 1;
	R.buf[20] = 0x01; /* APTPL */
	scsi_task_execute(&R.t, NULL);
	req_wait(&R);
	assert_illegal(&R.t, 0x26);
	assert_illegal(pr_in(l, 3), 0x24);
	lun_close(l);
}

/* ---- Counters ---- */

static void
test_stats(void **state)
{
	struct lun *l = ram();
	struct lun_stats s;
	int i;

	for (i = 0; i < 10; i++)
		assert_good(xfer(l, 0x28, i, 2, 1024, SCSI_DIR_FROM_DEV));
	for (i = 0; i < 5; i++)
		assert_good(xfer(l, 0x2a, i, 1, 512, SCSI_DIR_TO_DEV));
	assert_illegal(xfer(l, 0x28, 1 << 20, 1, 512, SCSI_DIR_FROM_DEV), 0x21);
	assert_illegal(RUN(l, SCSI_DIR_NONE, 0, 0xee, 0, 0, 0, 0, 0), 0x20);
	lun_stats_read(l, &s);
	assert_int_equal(s.rd_req, 10);
	assert_int_equal(s.rd_bytes, 10240);
	assert_int_equal(s.wr_req, 5);
	assert_int_equal(s.wr_bytes, 2560);
	assert_int_equal(s.errors, 2);
	{
		uint64_t n = 0;

		for (i = 0; i < LUN_HIST_BUCKETS; i++)
			n += s.hist[i];
		assert_int_equal(n, 15);
	}
	assert_true(lun_stats_percentile_ns(&s, 50) > 0);
	assert_true(lun_stats_percentile_ns(&s, 100) >= lun_stats_percentile_ns(&s, 50));
	lun_stats_clear(l);
	lun_stats_read(l, &s);
	assert_int_equal(s.rd_req, 0);
	assert_int_equal(s.errors, 0);
	assert_int_equal(lun_stats_percentile_ns(&s, 99), 0);
	assert_good(xfer(l, 0x28, 0, 1, 512, SCSI_DIR_FROM_DEV));
	lun_stats_read(l, &s);
	assert_int_equal(s.rd_req, 1);
	lun_close(l);

	/*
	 * In a burst (lun_io_ctx_burst()) a command's latency counts from the
	 * burst's start: 3 ms in, a read has waited at least that long.
	 * Outside a burst it counts from its own start again.
	 */
	{
		char err[256];
		struct lun_io_ctx *io = lun_io_ctx_create(3, 8, err, sizeof(err));
		const struct timespec ms3 = {0, 3000000};
		uint64_t first;

		assert_non_null(io);
		l = ram();
		lun_io_ctx_burst(io, true);
		nanosleep(&ms3, NULL);
		req_setup(&R, l, (uint8_t[16]){0}, 10, SCSI_DIR_FROM_DEV, 512);
		cdb_rw(R.t.cdb, 0x28, 0, 1);
		scsi_task_execute(&R.t, io);
		req_wait(&R);
		assert_good(&R.t);
		lun_io_ctx_burst(io, false);
		lun_stats_read(l, &s);
		assert_int_equal(s.rd_req, 1);
		assert_true(s.rd_total_ns >= 3000000);
		first = s.rd_total_ns;
		nanosleep(&ms3, NULL);
		req_setup(&R, l, (uint8_t[16]){0}, 10, SCSI_DIR_FROM_DEV, 512);
		cdb_rw(R.t.cdb, 0x28, 0, 1);
		scsi_task_execute(&R.t, io);
		req_wait(&R);
		lun_stats_read(l, &s);
		assert_int_equal(s.rd_req, 2);
		assert_true(s.rd_total_ns - first < 3000000);
		lun_io_ctx_destroy(io);
		lun_close(l);
	}

	/* the histogram's precision: an upper bound within 12.5 % */
	memset(&s, 0, sizeof(s));
	{
		/* 8 sub-buckets per power of two: 1000 ns is in [960, 1023] */
		unsigned int b = 8 + (9 - 3) * 8 + ((1000 >> 6) & 7);

		s.hist[b] = 99;
		s.hist[b + 20] = 1;
		assert_int_equal(lun_stats_percentile_ns(&s, 50), 1023);
		assert_int_equal(lun_stats_percentile_ns(&s, 99), 1023);
		assert_true(lun_stats_percentile_ns(&s, 100) > 1023);
	}
	s.hist[3] = 1000;
	assert_int_equal(lun_stats_percentile_ns(&s, 10), 3);
}

/* ---- File LUNs through io_uring ---- */

static char file_path[64];

static struct lun *
open_file(enum lun_cache_mode cache, bool ro, uint64_t size, char *err, size_t errlen)
{
	struct lun_conf c;
	struct lun *l;

	lun_conf_init(&c);
	snprintf(c.name, sizeof(c.name), "file0");
	c.backend = LUN_BACKEND_FILE;
	snprintf(c.path, sizeof(c.path), "%s", file_path);
	c.cache = cache;
	c.readonly = ro;
	c.size = size;
	if (lun_open(&c, &l, err, errlen) < 0)
		return NULL;
	return l;
}

static int
file_setup(void **state)
{
	char err[256];
	int fd;

	snprintf(file_path, sizeof(file_path), "/tmp/test_scsi.XXXXXX");
	fd = mkstemp(file_path);
	if (fd < 0 || ftruncate(fd, 4 << 20) < 0)
		return -1;
	close(fd);
	io_ctx = lun_io_ctx_create(1, 8, err, sizeof(err));
	if (!io_ctx) {
		print_error("%s\n", err);
		return -1;
	}
	return 0;
}

static int
file_teardown(void **state)
{
	lun_io_ctx_destroy(io_ctx);
	io_ctx = NULL;
	unlink(file_path);
	return 0;
}

static void
check_file_bytes(uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);
	int fd = open(file_path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, got, len, off), (ssize_t)len);
	assert_memory_equal(got, want, len);
	close(fd);
	free(got);
}

static void
file_mode(enum lun_cache_mode mode)
{
	uint8_t *ref = malloc(65536);
	struct lun_stats s;
	struct scsi_task *t;
	struct lun *l;
	char err[512];

	l = open_file(mode, false, 0, err, sizeof(err));
	if (!l)
		fail_msg("%s", err);
	assert_int_equal(lun_num_blocks(l), (4 << 20) / 512);

	/* aligned WRITE(10): iovecs straight to io_uring */
	fill(ref, 65536, mode + 1);
	req_setup(&R, l, (uint8_t[16]){0}, 10, SCSI_DIR_TO_DEV, 32768);
	memcpy(R.buf, ref, 32768);
	cdb_rw(R.t.cdb, 0x2a, 64, 64);
	scsi_task_execute(&R.t, io_ctx);
	assert_int_equal(lun_io_ctx_inflight(io_ctx), 1);
	req_wait(&R);
	assert_good(&R.t);
	assert_int_equal(R.t.data_len, 32768);
	assert_int_equal(lun_io_ctx_inflight(io_ctx), 0);
	check_file_bytes(64 * 512, ref, 32768);

	/* unaligned buffer (bounce path with O_DIRECT), two iovecs, FUA */
	req_setup(&R, l, (uint8_t[16]){0}, 16, SCSI_DIR_TO_DEV, 0);
	cdb_rw(R.t.cdb, 0x8a, 1000, 16);
	R.t.cdb[1] = 0x08;
	R.iov[0].iov_base = R.buf + 3;
	R.iov[0].iov_len = 1000;
	R.iov[1].iov_base = R.buf + 2003;
	R.iov[1].iov_len = 8192 - 1000;
	R.t.iovcnt = 2;
	R.t.xfer_len = 8192;
	R.len = 2003 + 8192 - 1000;
	memcpy(R.buf + 3, ref + 100, 1000);
	memcpy(R.buf + 2003, ref + 1100, 8192 - 1000);
	memset(R.buf + R.len, 0xa5, GUARD);
	scsi_task_execute(&R.t, io_ctx);
	req_wait(&R);
	assert_good(&R.t);
	check_file_bytes(1000 * 512, ref + 100, 8192);

	/* READ back, aligned and unaligned */
	t = xfer(l, 0x28, 64, 64, 32768, SCSI_DIR_FROM_DEV);
	assert_good(t);
	assert_int_equal(t->data_len, 32768);
	assert_memory_equal(R.buf, ref, 32768);
	req_setup(&R, l, (uint8_t[16]){0}, 10, SCSI_DIR_FROM_DEV, 0);
	cdb_rw(R.t.cdb, 0x28, 1000, 16);
	R.iov[0].iov_base = R.buf + 7;
	R.iov[0].iov_len = 8192;
	R.t.xfer_len = 8192;
	R.len = 8199;
	memset(R.buf + R.len, 0xa5, GUARD);
	scsi_task_execute(&R.t, io_ctx);
	req_wait(&R);
	assert_good(&R.t);
	assert_memory_equal(R.buf + 7, ref + 100, 8192);
	/* a buffer larger than the transfer: only the transfer length is read */
	t = xfer(l, 0x28, 64, 2, 4096, SCSI_DIR_FROM_DEV);
	assert_good(t);
	assert_int_equal(t->data_len, 1024);
	assert_memory_equal(R.buf, ref, 1024);

	/* VERIFY with compare, against the file */
	req_setup(&R, l, (const uint8_t[]){0x2f, 0x02, 0, 0, 0, 64, 0, 0, 64, 0}, 10,
		SCSI_DIR_TO_DEV, 32768);
	memcpy(R.buf, ref, 32768);
	scsi_task_execute(&R.t, io_ctx);
	req_wait(&R);
	assert_good(&R.t);
	req_setup(&R, l, (const uint8_t[]){0x2f, 0x02, 0, 0, 0, 64, 0, 0, 64, 0}, 10,
		SCSI_DIR_TO_DEV, 32768);
	memcpy(R.buf, ref, 32768);
	R.buf[30000] ^= 0x80;
	scsi_task_execute(&R.t, io_ctx);
	req_wait(&R);
	assert_sense(&R.t, SCSI_SK_MISCOMPARE, 0x1d, 0);
	assert_int_equal(be32(R.t.sense + 3), 30000);

	/* SYNCHRONIZE CACHE */
	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	assert_good(RUN(l, SCSI_DIR_NONE, 0, 0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));

	/* UNMAP punches holes; WRITE SAME */
	check_unmap(l);
	{
		uint64_t lba = 16;
		uint32_t n = 8;

		assert_good(do_unmap(l, &lba, &n, 1));
		memset(ref, 0, 4096);
		check_file_bytes(16 * 512, ref, 4096);
	}
	check_write_same(l);
	memset(ref, 0, 2560); /* NDOB zeroed them last */
	check_file_bytes(210 * 512, ref, 2560);

	/* errors stop before the ring */
	assert_illegal(xfer(l, 0x28, 8192, 1, 512, SCSI_DIR_FROM_DEV), 0x21);
	assert_illegal(xfer(l, 0x2a, 0, 4, 512, SCSI_DIR_TO_DEV), 0x24);

	lun_stats_read(l, &s);
	assert_true(s.rd_req >= 3);
	assert_true(s.wr_req >= 2);
	assert_int_equal(s.flush_req, 2);
	assert_int_equal(lun_io_ctx_inflight(io_ctx), 0);
	lun_close(l);
	free(ref);
}

static void
test_file_cache_none(void **state)
{
	file_mode(LUN_CACHE_NONE);
}

static void
test_file_cache_writeback(void **state)
{
	file_mode(LUN_CACHE_WRITEBACK);
}

static void
test_file_cache_writethrough(void **state)
{
	file_mode(LUN_CACHE_WRITETHROUGH);
}

static void
test_file_cache_directsync(void **state)
{
	file_mode(LUN_CACHE_DIRECTSYNC);
}

/* More tasks than the ring has SQEs: they wait on the overflow list, none fails. */
static void
test_file_ring_overflow(void **state)
{
	static struct req rs[40];
	struct lun *l;
	char err[512];
	unsigned int i, done = 0;
	uint64_t end;

	l = open_file(LUN_CACHE_WRITEBACK, false, 0, err, sizeof(err));
	assert_non_null(l);
	for (i = 0; i < 40; i++) {
		req_setup(&rs[i], l, (uint8_t[16]){0}, 10, SCSI_DIR_TO_DEV, 4096);
		cdb_rw(rs[i].t.cdb, 0x2a, i * 8, 8);
		memset(rs[i].buf, i + 1, 4096);
		scsi_task_execute(&rs[i].t, io_ctx);
	}
	assert_int_equal(lun_io_ctx_inflight(io_ctx), 40);
	for (end = now_ns() + 10000000000ull; done < 40 && now_ns() < end;)
		done += lun_io_ctx_poll(io_ctx);
	assert_int_equal(done, 40);
	for (i = 0; i < 40; i++) {
		assert_int_equal(rs[i].done, 1);
		assert_good(&rs[i].t);
	}
	for (i = 0; i < 40; i++) {
		assert_true(blocks_are(l, i * 8, 8, i + 1));
		free(rs[i].buf);
	}
	assert_int_equal(lun_io_ctx_inflight(io_ctx), 0);
	lun_close(l);
}

static void
test_file_readonly_and_errors(void **state)
{
	char err[512], keep[64];
	struct lun *l;

	l = open_file(LUN_CACHE_NONE, true, 1 << 20, err, sizeof(err));
	assert_non_null(l);
	assert_int_equal(lun_num_blocks(l), 2048);
	assert_sense(xfer(l, 0x2a, 0, 1, 512, SCSI_DIR_TO_DEV), SCSI_SK_DATA_PROTECT, 0x27, 0);
	assert_good(xfer(l, 0x28, 0, 1, 512, SCSI_DIR_FROM_DEV));
	assert_illegal(xfer(l, 0x28, 2048, 1, 512, SCSI_DIR_FROM_DEV), 0x21);
	lun_close(l);

	/* the file shrinks under the LUN: reads fail with MEDIUM ERROR, counted as errors */
	l = open_file(LUN_CACHE_WRITEBACK, false, 0, err, sizeof(err));
	assert_non_null(l);
	assert_int_equal(truncate(file_path, 0), 0);
	assert_sense(xfer(l, 0x28, 8, 1, 512, SCSI_DIR_FROM_DEV), SCSI_SK_MEDIUM_ERROR, 0x11, 0);
	{
		struct lun_stats s;

		lun_stats_read(l, &s);
		assert_int_equal(s.errors, 1);
		assert_int_equal(s.rd_req, 1);
		assert_int_equal(s.rd_bytes, 0);
	}
	lun_close(l);
	assert_int_equal(truncate(file_path, 4 << 20), 0);

	/* larger than the file */
	assert_null(open_file(LUN_CACHE_NONE, false, 8 << 20, err, sizeof(err)));
	assert_non_null(strstr(err, "lun file0: size 8388608 is larger than"));
	/* missing file, a directory */
	memcpy(keep, file_path, sizeof(keep));
	snprintf(file_path, sizeof(file_path), "/tmp/test_scsi_missing.img");
	assert_null(open_file(LUN_CACHE_NONE, false, 0, err, sizeof(err)));
	assert_string_equal(err, "lun file0: /tmp/test_scsi_missing.img: No such file or directory "
				 "(create it, e.g. truncate -s 1G /tmp/test_scsi_missing.img)");
	snprintf(file_path, sizeof(file_path), "/tmp");
	assert_null(open_file(LUN_CACHE_NONE, false, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file or a block device"));
	memcpy(file_path, keep, sizeof(keep));
}

static void
test_conf_errors(void **state)
{
	struct lun_conf c;
	struct lun *l;
	char err[256];

	lun_conf_init(&c);
	assert_int_equal(lun_open(&c, &l, err, sizeof(err)), -EINVAL); /* no name */
	snprintf(c.name, sizeof(c.name), "x");
	c.backend = LUN_BACKEND_RAM;
	c.size = 1000;
	assert_int_equal(lun_open(&c, &l, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "lun x: size 1000"));
	c.size = 1 << 20;
	c.block_size = 1024;
	assert_int_equal(lun_open(&c, &l, err, sizeof(err)), -EINVAL);
	assert_null(lun_io_ctx_create(LUN_MAX_SLOTS, 8, err, sizeof(err)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tur_start_stop),
		cmocka_unit_test(test_inquiry_standard),
		cmocka_unit_test(test_inquiry_vpd),
		cmocka_unit_test(test_lun_absent),
		cmocka_unit_test(test_report_luns),
		cmocka_unit_test(test_read_capacity),
		cmocka_unit_test(test_rw_ram),
		cmocka_unit_test(test_ram_read_prefetch),
		cmocka_unit_test(test_rw_zero_length),
		cmocka_unit_test(test_rw_errors),
		cmocka_unit_test(test_null_lun),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_sync_cache),
		cmocka_unit_test(test_mode_sense),
		cmocka_unit_test(test_mode_select),
		cmocka_unit_test(test_unit_attention),
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_write_same),
		cmocka_unit_test(test_pr),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_conf_errors),
		cmocka_unit_test_setup_teardown(test_file_cache_none, file_setup, file_teardown),
		cmocka_unit_test_setup_teardown(
			test_file_cache_writeback, file_setup, file_teardown),
		cmocka_unit_test_setup_teardown(
			test_file_cache_writethrough, file_setup, file_teardown),
		cmocka_unit_test_setup_teardown(
			test_file_cache_directsync, file_setup, file_teardown),
		cmocka_unit_test_setup_teardown(test_file_ring_overflow, file_setup, file_teardown),
		cmocka_unit_test_setup_teardown(
			test_file_readonly_and_errors, file_setup, file_teardown),
	};

	vlog_level = VLOG_LVL_ERR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
