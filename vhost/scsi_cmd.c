/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SCSI command set (SPC-4 / SBC-3 subset) on top of the LUN backends.
 *
 * Every command is validated completely (CDB length, LUN, unit attention,
 * reservation, direction, range, buffer size) before anything touches the
 * medium or the initiator's buffer; a failed media command moves no data.
 * Non-I/O responses are built in a local buffer and copied into the iovecs
 * bounded by min(response, allocation length, xfer_len).
 */
#include <errno.h>
#include <string.h>

#include "lun_priv.h"
#include "scsi_cmd.h"

/* Operation codes */
#define OP_TEST_UNIT_READY 0x00
#define OP_REQUEST_SENSE 0x03
#define OP_READ6 0x08
#define OP_WRITE6 0x0a
#define OP_INQUIRY 0x12
#define OP_MODE_SELECT6 0x15
#define OP_MODE_SENSE6 0x1a
#define OP_START_STOP_UNIT 0x1b
#define OP_READ_CAPACITY10 0x25
#define OP_READ10 0x28
#define OP_WRITE10 0x2a
#define OP_WRITE_VERIFY10 0x2e
#define OP_VERIFY10 0x2f
#define OP_SYNC_CACHE10 0x35
#define OP_WRITE_SAME10 0x41
#define OP_UNMAP 0x42
#define OP_MODE_SELECT10 0x55
#define OP_MODE_SENSE10 0x5a
#define OP_PR_IN 0x5e
#define OP_PR_OUT 0x5f
#define OP_READ16 0x88
#define OP_WRITE16 0x8a
#define OP_WRITE_VERIFY16 0x8e
#define OP_VERIFY16 0x8f
#define OP_SYNC_CACHE16 0x91
#define OP_WRITE_SAME16 0x93
#define OP_SERVICE_ACTION_IN16 0x9e
#define OP_REPORT_LUNS 0xa0
#define OP_READ12 0xa8
#define OP_WRITE12 0xaa

#define SAI_READ_CAPACITY16 0x10

/* Additional sense codes (asc << 8 | ascq) */
#define ASC_PARAM_LIST_LENGTH 0x1a00
#define ASC_INVALID_OPCODE 0x2000
#define ASC_LBA_OUT_OF_RANGE 0x2100
#define ASC_INVALID_FIELD_CDB 0x2400
#define ASC_LU_NOT_SUPPORTED 0x2500
#define ASC_INVALID_FIELD_PARAM 0x2600
#define ASC_INVALID_RELEASE 0x2604
#define ASC_WRITE_PROTECTED 0x2700
#define ASC_SAVING_NOT_SUPPORTED 0x3900
#define ASC_INSUFFICIENT_REG 0x5504

#define MODE_PAGE_RW_ERROR 0x01
#define MODE_PAGE_CACHING 0x08
#define MODE_PAGE_CONTROL 0x0a
#define MODE_PAGE_ALL 0x3f

/*
 * IEEE company id of the NAA designator. vhostd owns no OUI: this is the
 * locally administered prefix QEMU uses for MACs, so it cannot collide with
 * a registered vendor's identifiers.
 */
#define VHOSTD_NAA_COMPANY_ID 0x525400u

static inline uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static inline void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void
put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static inline void
put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, v);
}

/* Space-padded ASCII field (INQUIRY, VPD). */
static void
put_ascii(uint8_t *p, const char *s, size_t width)
{
	size_t n = strnlen(s, width);

	memcpy(p, s, n);
	memset(p + n, ' ', width - n);
}

void
scsi_task_set_sense(struct scsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq)
{
	memset(t->sense, 0, 18);
	t->sense[0] = 0x70; /* current error, fixed format */
	t->sense[2] = key & 0x0f;
	t->sense[7] = 10; /* additional sense length */
	t->sense[12] = asc;
	t->sense[13] = ascq;
	t->sense_len = 18;
	t->status = SCSI_STATUS_CHECK_CONDITION;
	t->data_len = 0;
}

static void
finish(struct scsi_task *t, struct lun_io_ctx *io)
{
	lun_task_complete(t->lun, io, t);
}

static void
fail(struct scsi_task *t, struct lun_io_ctx *io, uint8_t key, uint16_t asc)
{
	scsi_task_set_sense(t, key, asc >> 8, asc & 0xff);
	finish(t, io);
}

static void
fail_cdb(struct scsi_task *t, struct lun_io_ctx *io)
{
	fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB);
}

static void
conflict(struct scsi_task *t, struct lun_io_ctx *io)
{
	t->status = SCSI_STATUS_RESERVATION_CONFLICT;
	t->data_len = 0;
	finish(t, io);
}

/*
 * Data-in response of @len bytes limited by the allocation length; a buffer
 * that is not data-in can only be empty.
 */
static void
respond(struct scsi_task *t, struct lun_io_ctx *io, const void *buf, size_t len, size_t alloc)
{
	if (t->xfer_len && t->dir != SCSI_DIR_FROM_DEV) {
		fail_cdb(t, io);
		return;
	}
	if (len > alloc)
		len = alloc;
	t->data_len = lun_iov_to(t->iov, t->iovcnt, 0, buf, len);
	finish(t, io);
}

/* Data-out parameter list of @len bytes into @buf; false (and failed) if it is not there. */
static bool
param_list(struct scsi_task *t, struct lun_io_ctx *io, void *buf, size_t len)
{
	if (len > t->xfer_len || (len && t->dir != SCSI_DIR_TO_DEV)) {
		fail_cdb(t, io);
		return false;
	}
	lun_iov_from(t->iov, t->iovcnt, 0, buf, len);
	return true;
}

/* FNV-1a: a stable identifier from the LUN name (NAA designator). */
static uint64_t
name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static uint8_t
peripheral(const struct lun *l)
{
	return l ? 0x00 : 0x7f; /* direct access block device, or qualifier 3 / type 0x1f */
}

static size_t
inquiry_std(const struct lun *l, uint8_t *b)
{
	struct lun_conf def;
	const struct lun_conf *c = l ? &l->conf : &def;

	if (!l)
		lun_conf_init(&def);
	memset(b, 0, 36);
	b[0] = peripheral(l);
	b[2] = 0x06; /* SPC-4 */
	b[3] = 0x02; /* response data format 2 */
	b[4] = 36 - 5;
	b[7] = 0x02; /* CMDQUE */
	put_ascii(b + 8, c->vendor, 8);
	put_ascii(b + 16, c->product, 16);
	put_ascii(b + 32, c->revision, 4);
	return 36;
}

static const uint8_t vpd_pages[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};

/* Returns the page length, or 0 for an unsupported page. */
static size_t
inquiry_vpd(const struct lun *l, uint8_t page, uint8_t *b)
{
	const struct lun_conf *c = &l->conf;
	uint32_t bs = l->block_size;
	size_t n;

	b[0] = peripheral(l);
	b[1] = page;
	switch (page) {
	case 0x00:
		memcpy(b + 4, vpd_pages, sizeof(vpd_pages));
		n = 4 + sizeof(vpd_pages);
		break;
	case 0x80:
		n = strnlen(c->serial, sizeof(c->serial) - 1);
		memcpy(b + 4, c->serial, n);
		n += 4;
		break;
	case 0x83: {
		uint64_t naa = (uint64_t)5 << 60 | (uint64_t)VHOSTD_NAA_COMPANY_ID << 36 |
			       (name_hash(c->name) & ((1ull << 36) - 1));
		size_t sl = strnlen(c->serial, sizeof(c->serial) - 1);

		/* NAA IEEE Registered, binary, associated with the LU */
		b[4] = 0x01;
		b[5] = 0x03;
		b[7] = 8;
		put64(b + 8, naa);
		/* T10 vendor id + the serial, ASCII */
		b[16] = 0x02;
		b[17] = 0x01;
		b[19] = 8 + sl;
		put_ascii(b + 20, c->vendor, 8);
		memcpy(b + 28, c->serial, sl);
		n = 28 + sl;
		break;
	}
	case 0xb0:
		n = 64;
		memset(b + 4, 0, n - 4);
		b[4] = 0x01; /* WSNZ: WRITE SAME of 0 blocks is rejected */
		put16(b + 6, l->unmap_gran);
		put32(b + 8, LUN_MAX_XFER_BYTES / bs);
		put32(b + 12, LUN_OPT_XFER_BYTES / bs);
		if (l->unmap) {
			put32(b + 20, LUN_MAX_UNMAP_BYTES / bs);
			put32(b + 24, LUN_MAX_UNMAP_DESC);
			put32(b + 28, l->unmap_gran);
		}
		put64(b + 36, LUN_MAX_UNMAP_BYTES / bs);
		break;
	case 0xb1:
		n = 64;
		memset(b + 4, 0, n - 4);
		put16(b + 4, 1); /* non-rotating medium */
		break;
	case 0xb2:
		n = 8;
		memset(b + 4, 0, n - 4);
		if (l->unmap) {
			b[5] = 0x80 | 0x40 | 0x20 | 0x04; /* LBPU LBPWS LBPWS10 LBPRZ */
			b[6] = 0x02;                      /* thin provisioned */
		}
		break;
	default:
		return 0;
	}
	put16(b + 2, n - 4);
	return n;
}

static void
cmd_inquiry(struct scsi_task *t, struct lun_io_ctx *io)
{
	const uint8_t *cdb = t->cdb;
	uint8_t b[128];
	size_t n;

	if (cdb[1] & 0x02) { /* CMDDT (obsolete) */
		fail_cdb(t, io);
		return;
	}
	if (!(cdb[1] & 0x01)) {
		if (cdb[2]) {
			fail_cdb(t, io);
			return;
		}
		n = inquiry_std(t->lun, b);
	} else if (!t->lun) {
		memset(b, 0, 4);
		b[0] = peripheral(NULL);
		b[1] = cdb[2];
		n = 4;
	} else {
		n = inquiry_vpd(t->lun, cdb[2], b);
		if (!n) {
			fail_cdb(t, io);
			return;
		}
	}
	respond(t, io, b, n, get16(cdb + 3));
}

/* Streamed into the iovecs: the list can be 64K entries long. */
static void
cmd_report_luns(struct scsi_task *t, struct lun_io_ctx *io)
{
	uint32_t alloc = get32(t->cdb + 6);
	uint8_t sel = t->cdb[2];
	uint32_t n = sel == 1 ? 0 : t->n_target_luns; /* no well-known LUNs */
	uint8_t hdr[8] = {0};
	size_t lim, off;
	uint32_t i;

	if (sel > 2 || alloc < 16) {
		fail_cdb(t, io);
		return;
	}
	if (t->xfer_len && t->dir != SCSI_DIR_FROM_DEV) {
		fail_cdb(t, io);
		return;
	}
	lim = alloc < t->xfer_len ? alloc : t->xfer_len;
	put32(hdr, n * 8);
	off = lun_iov_to(t->iov, t->iovcnt, 0, hdr, lim < 8 ? lim : 8);
	for (i = 0; i < n && off < lim; i++) {
		uint16_t id = t->target_luns[i];
		uint8_t e[8] = {0};
		size_t k = lim - off < 8 ? lim - off : 8;

		if (id >= 256) {
			e[0] = 0x40 | ((id >> 8) & 0x3f); /* flat space addressing */
			e[1] = id & 0xff;
		} else {
			e[1] = id;
		}
		off += lun_iov_to(t->iov, t->iovcnt, off, e, k);
	}
	t->data_len = off;
	finish(t, io);
}

static void
fixed_sense(uint8_t *b, uint8_t key, uint16_t asc)
{
	memset(b, 0, 18);
	b[0] = 0x70;
	b[2] = key;
	b[7] = 10;
	b[12] = asc >> 8;
	b[13] = asc & 0xff;
}

static void
cmd_request_sense(struct scsi_task *t, struct lun_io_ctx *io)
{
	uint8_t b[18];
	uint32_t ua;

	if (!t->lun) {
		fixed_sense(b, SCSI_SK_ILLEGAL_REQUEST, ASC_LU_NOT_SUPPORTED);
	} else if ((ua = lun_take_unit_attention(t->lun))) {
		fixed_sense(b, SCSI_SK_UNIT_ATTENTION, ua & 0xffff);
	} else {
		fixed_sense(b, SCSI_SK_NO_SENSE, 0);
	}
	/* Descriptor format (DESC=1) is not supported: fixed format is allowed then. */
	respond(t, io, b, sizeof(b), t->cdb[4]);
}

static void
cmd_read_capacity10(struct scsi_task *t, struct lun_io_ctx *io)
{
	const struct lun *l = t->lun;
	uint64_t last = l->num_blocks - 1;
	uint8_t b[8];

	if (!(t->cdb[8] & 0x01) && get32(t->cdb + 2)) { /* LBA without PMI */
		fail_cdb(t, io);
		return;
	}
	put32(b, last > 0xfffffffeull ? 0xffffffffu : (uint32_t)last);
	put32(b + 4, l->block_size);
	respond(t, io, b, sizeof(b), sizeof(b));
}

static void
cmd_read_capacity16(struct scsi_task *t, struct lun_io_ctx *io)
{
	const struct lun *l = t->lun;
	uint8_t b[32] = {0};

	if ((t->cdb[1] & 0x1f) != SAI_READ_CAPACITY16) {
		fail_cdb(t, io);
		return;
	}
	put64(b, l->num_blocks - 1);
	put32(b + 8, l->block_size);
	if (l->unmap)
		b[14] = 0x80 | 0x40; /* LBPME, LBPRZ */
	respond(t, io, b, sizeof(b), get32(t->cdb + 10));
}

/* ---- Persistent reservations ---- */

static bool
pr_registered(const struct lun_pr *pr, uint64_t ini)
{
	unsigned int i;

	for (i = 0; i < LUN_PR_MAX_REG; i++)
		if (__atomic_load_n(&pr->regs[i].valid, __ATOMIC_ACQUIRE) &&
			__atomic_load_n(&pr->regs[i].initiator, __ATOMIC_RELAXED) == ini)
			return true;
	return false;
}

static bool
pr_all_registrants(uint8_t type)
{
	return type == PR_TYPE_WR_EX_AR || type == PR_TYPE_EX_AC_AR;
}

/* Lock-free: media commands check this on every I/O, PR commands are rare. */
static bool
pr_conflict(struct lun *l, uint64_t ini, bool write)
{
	const struct lun_pr *pr = &l->pr;
	uint8_t type;

	if (!__atomic_load_n(&pr->active, __ATOMIC_ACQUIRE))
		return false;
	type = __atomic_load_n(&pr->type, __ATOMIC_RELAXED);
	if (!pr_all_registrants(type) && __atomic_load_n(&pr->holder, __ATOMIC_RELAXED) == ini)
		return false;
	switch (type) {
	case PR_TYPE_WR_EX:
		return write;
	case PR_TYPE_EX_AC:
		return true;
	case PR_TYPE_WR_EX_RO:
	case PR_TYPE_WR_EX_AR:
		return write && !pr_registered(pr, ini);
	default:
		return !pr_registered(pr, ini);
	}
}

static struct lun_pr_reg *
pr_find(struct lun_pr *pr, uint64_t ini)
{
	unsigned int i;

	for (i = 0; i < LUN_PR_MAX_REG; i++)
		if (pr->regs[i].valid && pr->regs[i].initiator == ini)
			return &pr->regs[i];
	return NULL;
}

static bool
pr_holds(const struct lun_pr *pr, uint64_t ini)
{
	return pr->active && (pr_all_registrants(pr->type) || pr->holder == ini);
}

static void
pr_set_reservation(struct lun_pr *pr, uint64_t holder, uint8_t type)
{
	__atomic_store_n(&pr->active, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&pr->holder, holder, __ATOMIC_RELAXED);
	__atomic_store_n(&pr->type, type, __ATOMIC_RELAXED);
	__atomic_store_n(&pr->active, 1, __ATOMIC_RELEASE);
}

static void
pr_release(struct lun_pr *pr)
{
	__atomic_store_n(&pr->active, 0, __ATOMIC_RELEASE);
}

/* Remove a registration; the reservation goes with its holder (or its last registrant). */
static void
pr_unregister(struct lun_pr *pr, struct lun_pr_reg *r)
{
	unsigned int i;

	__atomic_store_n(&r->valid, false, __ATOMIC_RELEASE);
	if (!pr->active)
		return;
	if (!pr_all_registrants(pr->type)) {
		if (pr->holder == r->initiator)
			pr_release(pr);
		return;
	}
	for (i = 0; i < LUN_PR_MAX_REG; i++)
		if (pr->regs[i].valid)
			return;
	pr_release(pr);
}

static bool
pr_type_valid(uint8_t type)
{
	return type == PR_TYPE_WR_EX || type == PR_TYPE_EX_AC || type == PR_TYPE_WR_EX_RO ||
	       type == PR_TYPE_EX_AC_RO || pr_all_registrants(type);
}

static uint8_t
pr_preempt(struct lun_pr *pr, uint64_t ini, uint64_t sa_key, uint8_t type, uint16_t *asc)
{
	struct lun_pr_reg *h = pr->active ? pr_find(pr, pr->holder) : NULL;
	bool take = false, removed = false;
	unsigned int i;

	if (pr->active && pr_all_registrants(pr->type) && sa_key == 0) {
		take = true; /* preempt every other registrant */
	} else if (pr->active && !pr_all_registrants(pr->type) && h && h->key == sa_key) {
		take = true;
	} else if (sa_key == 0) {
		*asc = ASC_INVALID_FIELD_PARAM;
		return SCSI_STATUS_CHECK_CONDITION;
	}
	for (i = 0; i < LUN_PR_MAX_REG; i++) {
		struct lun_pr_reg *r = &pr->regs[i];

		if (!r->valid || r->initiator == ini || (sa_key && r->key != sa_key))
			continue;
		__atomic_store_n(&r->valid, false, __ATOMIC_RELEASE);
		removed = true;
	}
	if (take) {
		pr_set_reservation(pr, ini, type);
	} else if (!removed) {
		return SCSI_STATUS_RESERVATION_CONFLICT;
	} else if (pr->active && !pr_all_registrants(pr->type) && !pr_find(pr, pr->holder)) {
		pr_release(pr);
	}
	return SCSI_STATUS_GOOD;
}

/* Runs under the PR lock. Returns a status; *asc for CHECK CONDITION. */
static uint8_t
pr_out(struct lun_pr *pr, uint64_t ini, uint8_t sa, uint8_t type, const uint8_t *p, uint16_t *asc)
{
	uint64_t key = get64(p), sa_key = get64(p + 8);
	struct lun_pr_reg *r = pr_find(pr, ini);
	unsigned int i;

	if (sa == 0x00 || sa == 0x06) { /* REGISTER, REGISTER AND IGNORE EXISTING KEY */
		if (sa == 0x00 && (r ? r->key != key : key != 0))
			return SCSI_STATUS_RESERVATION_CONFLICT;
		if (!r) {
			if (!sa_key)
				return SCSI_STATUS_GOOD;
			for (i = 0; i < LUN_PR_MAX_REG && pr->regs[i].valid; i++)
				;
			if (i == LUN_PR_MAX_REG) {
				*asc = ASC_INSUFFICIENT_REG;
				return SCSI_STATUS_CHECK_CONDITION;
			}
			r = &pr->regs[i];
			r->initiator = ini;
			r->key = sa_key;
			__atomic_store_n(&r->valid, true, __ATOMIC_RELEASE);
		} else if (!sa_key) {
			pr_unregister(pr, r);
		} else {
			r->key = sa_key;
		}
		pr->generation++;
		return SCSI_STATUS_GOOD;
	}
	if (!r || r->key != key)
		return SCSI_STATUS_RESERVATION_CONFLICT;
	switch (sa) {
	case 0x01: /* RESERVE */
		if (!pr->active) {
			pr_set_reservation(pr, ini, type);
			return SCSI_STATUS_GOOD;
		}
		return pr_holds(pr, ini) && pr->type == type ? SCSI_STATUS_GOOD
							     : SCSI_STATUS_RESERVATION_CONFLICT;
	case 0x02: /* RELEASE */
		if (!pr_holds(pr, ini))
			return SCSI_STATUS_GOOD;
		if (pr->type != type) {
			*asc = ASC_INVALID_RELEASE;
			return SCSI_STATUS_CHECK_CONDITION;
		}
		pr_release(pr);
		return SCSI_STATUS_GOOD;
	case 0x03: /* CLEAR */
		pr_release(pr);
		for (i = 0; i < LUN_PR_MAX_REG; i++)
			__atomic_store_n(&pr->regs[i].valid, false, __ATOMIC_RELEASE);
		pr->generation++;
		return SCSI_STATUS_GOOD;
	default: { /* PREEMPT */
		uint8_t st = pr_preempt(pr, ini, sa_key, type, asc);

		if (st == SCSI_STATUS_GOOD)
			pr->generation++;
		return st;
	}
	}
}

static void
cmd_pr_out(struct scsi_task *t, struct lun_io_ctx *io)
{
	struct lun_pr *pr = &t->lun->pr;
	uint8_t sa = t->cdb[1] & 0x1f, scope = t->cdb[2] >> 4, type = t->cdb[2] & 0x0f;
	uint32_t plen = get32(t->cdb + 5);
	uint16_t asc = 0;
	uint8_t p[24], st;

	if (sa > 0x06 || sa == 0x05) { /* REGISTER AND MOVE, PREEMPT AND ABORT */
		fail_cdb(t, io);
		return;
	}
	if (sa >= 0x01 && sa <= 0x04 && sa != 0x03 && (scope || !pr_type_valid(type))) {
		fail_cdb(t, io);
		return;
	}
	if (plen != sizeof(p)) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	if (!param_list(t, io, p, sizeof(p)))
		return;
	if (p[20] & 0x09) { /* SPEC_I_PT, APTPL: not supported */
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM);
		return;
	}
	rte_spinlock_lock(&pr->lock);
	st = pr_out(pr, t->initiator, sa, type, p, &asc);
	rte_spinlock_unlock(&pr->lock);
	if (st == SCSI_STATUS_CHECK_CONDITION) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, asc);
	} else if (st == SCSI_STATUS_RESERVATION_CONFLICT) {
		conflict(t, io);
	} else {
		t->data_len = plen;
		finish(t, io);
	}
}

static void
cmd_pr_in(struct scsi_task *t, struct lun_io_ctx *io)
{
	struct lun_pr *pr = &t->lun->pr;
	uint8_t sa = t->cdb[1] & 0x1f;
	uint8_t b[8 + 8 * LUN_PR_MAX_REG] = {0};
	size_t n = 8;
	unsigned int i;

	if (sa > 0x02) { /* READ FULL STATUS: not supported */
		fail_cdb(t, io);
		return;
	}
	rte_spinlock_lock(&pr->lock);
	put32(b, pr->generation);
	if (sa == 0x00) { /* READ KEYS */
		for (i = 0; i < LUN_PR_MAX_REG; i++) {
			if (!pr->regs[i].valid)
				continue;
			put64(b + n, pr->regs[i].key);
			n += 8;
		}
		put32(b + 4, n - 8);
	} else if (sa == 0x01) { /* READ RESERVATION */
		if (pr->active) {
			struct lun_pr_reg *h = pr_find(pr, pr->holder);

			if (!pr_all_registrants(pr->type) && h)
				put64(b + 8, h->key);
			b[21] = pr->type; /* scope 0: LU */
			n = 24;
		}
		put32(b + 4, n - 8);
	} else { /* REPORT CAPABILITIES */
		put16(b, 8);
		b[3] = 0x80; /* TMV: the type mask is valid */
		b[4] = 0x80 | 0x40 | 0x20 | 0x08 |
		       0x02; /* WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX */
		b[5] = 0x01; /* EX_AC_AR */
	}
	rte_spinlock_unlock(&pr->lock);
	respond(t, io, b, n, get16(t->cdb + 7));
}

/* ---- MODE SENSE / MODE SELECT ---- */

/* One mode page, current values or (changeable) the mask: nothing is changeable. */
static size_t
mode_page(const struct lun *l, uint8_t page, bool changeable, uint8_t *p)
{
	size_t n;

	switch (page) {
	case MODE_PAGE_RW_ERROR:
		n = 12;
		break;
	case MODE_PAGE_CACHING:
		n = 20;
		break;
	case MODE_PAGE_CONTROL:
		n = 12;
		break;
	default:
		return 0;
	}
	memset(p, 0, n);
	p[0] = page;
	p[1] = n - 2;
	if (changeable)
		return n;
	if (page == MODE_PAGE_CACHING && l->conf.cache == LUN_CACHE_WRITEBACK)
		p[2] = 0x04; /* WCE */
	if (page == MODE_PAGE_CONTROL)
		p[3] = 0x10; /* queue algorithm modifier 1: unrestricted reordering */
	return n;
}

static const uint8_t mode_pages_all[] = {MODE_PAGE_RW_ERROR, MODE_PAGE_CACHING, MODE_PAGE_CONTROL};

static void
cmd_mode_sense(struct scsi_task *t, struct lun_io_ctx *io, bool ten)
{
	const struct lun *l = t->lun;
	const uint8_t *cdb = t->cdb;
	uint8_t pc = cdb[2] >> 6, page = cdb[2] & 0x3f, sub = cdb[3];
	bool dbd = cdb[1] & 0x08, llba = ten && (cdb[1] & 0x10);
	size_t hl = ten ? 8 : 4, n, bdl = dbd ? 0 : (llba ? 16 : 8);
	uint8_t b[8 + 16 + 64];
	unsigned int i;

	if (pc == 3) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED);
		return;
	}
	if (sub && !(page == MODE_PAGE_ALL && sub == 0xff)) {
		fail_cdb(t, io);
		return;
	}
	memset(b, 0, hl + bdl);
	n = hl;
	if (bdl == 8) {
		put32(b + n, l->num_blocks > 0xffffffffull ? 0xffffffffu : (uint32_t)l->num_blocks);
		put32(b + n + 4, l->block_size); /* byte 4 (density) stays 0 */
	} else if (bdl == 16) {
		put64(b + n, l->num_blocks);
		put32(b + n + 12, l->block_size);
	}
	n += bdl;
	if (page == MODE_PAGE_ALL) {
		for (i = 0; i < sizeof(mode_pages_all); i++)
			n += mode_page(l, mode_pages_all[i], pc == 1, b + n);
	} else {
		size_t k = mode_page(l, page, pc == 1, b + n);

		if (!k) {
			fail_cdb(t, io);
			return;
		}
		n += k;
	}
	/* WP for read-only LUNs; DPOFUA: FUA is honored */
	if (ten) {
		put16(b, n - 2);
		b[3] = (l->conf.readonly ? 0x80 : 0) | 0x10;
		b[4] = llba ? 0x01 : 0;
		put16(b + 6, bdl);
		respond(t, io, b, n, get16(cdb + 7));
	} else {
		b[0] = n - 1;
		b[2] = (l->conf.readonly ? 0x80 : 0) | 0x10;
		b[3] = bdl;
		respond(t, io, b, n, cdb[4]);
	}
}

/* Accepts a parameter list that sets every field to its current value (nothing is changeable). */
static void
cmd_mode_select(struct scsi_task *t, struct lun_io_ctx *io, bool ten)
{
	const struct lun *l = t->lun;
	size_t plen = ten ? get16(t->cdb + 7) : t->cdb[4];
	size_t hl = ten ? 8 : 4, bdl, off;
	uint8_t p[256 + 8], cur[64];

	if (t->cdb[1] & 0x01) { /* SP: saving pages is not supported */
		fail_cdb(t, io);
		return;
	}
	if (plen == 0) {
		finish(t, io);
		return;
	}
	if (plen > sizeof(p)) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	if (!param_list(t, io, p, plen))
		return;
	if (plen < hl) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	bdl = ten ? get16(p + 6) : p[3];
	if (hl + bdl > plen || (bdl != 0 && bdl != 8 && bdl != 16)) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	/* A block descriptor may only restate the block length (number of blocks 0 or current). */
	if (bdl && get32(p + hl + bdl - 4) != l->block_size) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM);
		return;
	}
	for (off = hl + bdl; off < plen;) {
		size_t k;

		if (plen - off < 2 || (p[off] & 0x40)) { /* truncated, or a subpage */
			fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			return;
		}
		k = mode_page(l, p[off] & 0x3f, false, cur);
		if (!k || p[off + 1] != cur[1] || off + k > plen ||
			memcmp(p + off + 2, cur + 2, k - 2)) {
			fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM);
			return;
		}
		off += k;
	}
	t->data_len = plen;
	finish(t, io);
}

/* ---- Media commands ---- */

static bool
range_ok(const struct lun *l, uint64_t lba, uint64_t nblocks)
{
	return lba <= l->num_blocks && nblocks <= l->num_blocks - lba;
}

/*
 * Checks common to the media commands, in this order: write protection,
 * reservation, range, buffer size and direction. Returns false if @t failed.
 */
static bool
media_check(struct scsi_task *t, struct lun_io_ctx *io, uint64_t lba, uint64_t nblocks, bool write,
	uint64_t bytes, enum scsi_dir dir)
{
	struct lun *l = t->lun;

	if (write && l->conf.readonly) {
		fail(t, io, SCSI_SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return false;
	}
	if (pr_conflict(l, t->initiator, write)) {
		conflict(t, io);
		return false;
	}
	if (!range_ok(l, lba, nblocks)) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return false;
	}
	if (bytes > t->xfer_len || (bytes && t->dir != dir)) {
		fail_cdb(t, io);
		return false;
	}
	return true;
}

static void
do_rw(struct scsi_task *t, struct lun_io_ctx *io, uint64_t lba, uint32_t nblocks, bool write,
	bool fua)
{
	struct lun *l = t->lun;
	uint64_t bytes = (uint64_t)nblocks << l->block_shift;

	if (!media_check(
		    t, io, lba, nblocks, write, bytes, write ? SCSI_DIR_TO_DEV : SCSI_DIR_FROM_DEV))
		return;
	if (!nblocks) {
		finish(t, io);
		return;
	}
	t->op_kind = write ? LUN_OP_WRITE : LUN_OP_READ;
	t->start_ns = lun_task_start_ns(io);
	if (write)
		lun_io_write(l, io, t, lba, nblocks, fua);
	else
		lun_io_read(l, io, t, lba, nblocks);
}

static void
cmd_verify(struct scsi_task *t, struct lun_io_ctx *io, uint64_t lba, uint32_t nblocks)
{
	struct lun *l = t->lun;
	uint8_t bytchk = (t->cdb[1] >> 1) & 0x03;
	uint64_t bytes = bytchk ? (uint64_t)nblocks << l->block_shift : 0;

	if (bytchk > 1) { /* 2 reserved, 3 (one block against each) not supported */
		fail_cdb(t, io);
		return;
	}
	if (!media_check(t, io, lba, nblocks, false, bytes, SCSI_DIR_TO_DEV))
		return;
	if (!bytes) {
		finish(t, io);
		return;
	}
	t->op_kind = LUN_OP_VERIFY;
	lun_io_verify(l, io, t, lba, nblocks);
}

static void
cmd_sync_cache(struct scsi_task *t, struct lun_io_ctx *io, uint64_t lba, uint32_t nblocks)
{
	struct lun *l = t->lun;

	/* 0 blocks: to the end of the medium, which must start inside it */
	if (!media_check(t, io, lba,
		    nblocks               ? nblocks
		    : lba < l->num_blocks ? 0
					  : 1,
		    true, 0, SCSI_DIR_NONE))
		return;
	t->op_kind = LUN_OP_FLUSH;
	t->start_ns = lun_task_start_ns(io);
	lun_io_flush(l, io, t);
}

static void
cmd_unmap(struct scsi_task *t, struct lun_io_ctx *io)
{
	struct lun *l = t->lun;
	size_t plen = get16(t->cdb + 7), nd, i, k = 0;
	uint8_t p[8 + 16 * LUN_MAX_UNMAP_DESC];
	struct lun_range r[LUN_MAX_UNMAP_DESC];
	size_t max = LUN_MAX_UNMAP_BYTES >> l->block_shift;

	if (t->cdb[1] & 0x01) { /* ANCHOR */
		fail_cdb(t, io);
		return;
	}
	if (!media_check(t, io, 0, 0, true, plen, SCSI_DIR_TO_DEV))
		return;
	if (!plen) {
		finish(t, io);
		return;
	}
	if (plen < 8) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return;
	}
	lun_iov_from(t->iov, t->iovcnt, 0, p, plen < sizeof(p) ? plen : sizeof(p));
	nd = get16(p + 2);
	if (nd > plen - 8)
		nd = plen - 8;
	nd /= 16;
	if (nd > LUN_MAX_UNMAP_DESC) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM);
		return;
	}
	/* Every descriptor is checked before any is executed. */
	for (i = 0; i < nd; i++) {
		uint64_t lba = get64(p + 8 + 16 * i);
		uint32_t n = get32(p + 16 + 16 * i);

		if (!range_ok(l, lba, n)) {
			fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
			return;
		}
		if (n > max) {
			fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM);
			return;
		}
		if (n) {
			r[k].lba = lba;
			r[k++].nblocks = n;
		}
	}
	t->data_len = plen;
	if (!k) {
		finish(t, io);
		return;
	}
	t->op_kind = LUN_OP_UNMAP;
	t->start_ns = lun_task_start_ns(io);
	lun_io_unmap(l, io, t, r, k);
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void
cmd_write_same(struct scsi_task *t, struct lun_io_ctx *io, uint64_t lba, uint32_t nblocks)
{
	struct lun *l = t->lun;
	bool unmap = t->cdb[1] & 0x08;
	bool ndob = t->cdb[0] == OP_WRITE_SAME16 && (t->cdb[1] & 0x01);
	uint32_t bs = l->block_size;
	uint8_t block[4096];

	if ((t->cdb[1] & 0x10) || !nblocks ||
		((uint64_t)nblocks << l->block_shift) >
			LUN_MAX_UNMAP_BYTES) { /* ANCHOR, WSNZ, maximum write same length */
		fail_cdb(t, io);
		return;
	}
	if (!media_check(t, io, lba, nblocks, true, ndob ? 0 : bs, SCSI_DIR_TO_DEV))
		return;
	if (ndob)
		memset(block, 0, bs);
	else
		lun_iov_from(t->iov, t->iovcnt, 0, block, bs);
	t->data_len = ndob ? 0 : bs;
	t->start_ns = lun_task_start_ns(io);
	/* Unmapped blocks read as zeros (LBPRZ): only a zero block may be unmapped. */
	if (unmap && l->unmap && all_zero(block, bs)) {
		struct lun_range r = {lba, nblocks};

		t->op_kind = LUN_OP_UNMAP;
		lun_io_unmap(l, io, t, &r, 1);
		return;
	}
	t->op_kind = LUN_OP_WSAME;
	lun_io_write_same(l, io, t, lba, nblocks, block);
}

/* CDB length of the operation code's group; 0 for the reserved/vendor groups. */
static uint8_t
cdb_group_len(uint8_t op)
{
	static const uint8_t len[8] = {6, 10, 10, 0, 16, 12, 0, 0};

	return len[op >> 5];
}

static void
dispatch(struct scsi_task *t, struct lun_io_ctx *io)
{
	const uint8_t *c = t->cdb;
	bool fua = c[1] & 0x08;

	switch (c[0]) {
	case OP_TEST_UNIT_READY:
	case OP_START_STOP_UNIT:
		finish(t, io);
		break;
	case OP_INQUIRY:
		cmd_inquiry(t, io);
		break;
	case OP_REPORT_LUNS:
		cmd_report_luns(t, io);
		break;
	case OP_REQUEST_SENSE:
		cmd_request_sense(t, io);
		break;
	case OP_READ_CAPACITY10:
		cmd_read_capacity10(t, io);
		break;
	case OP_SERVICE_ACTION_IN16:
		cmd_read_capacity16(t, io);
		break;
	case OP_READ6:
	case OP_WRITE6:
		do_rw(t, io, (uint32_t)(c[1] & 0x1f) << 16 | get16(c + 2), c[4] ? c[4] : 256,
			c[0] == OP_WRITE6, false);
		break;
	case OP_READ10:
	case OP_WRITE10:
		do_rw(t, io, get32(c + 2), get16(c + 7), c[0] == OP_WRITE10, fua);
		break;
	case OP_READ12:
	case OP_WRITE12:
		do_rw(t, io, get32(c + 2), get32(c + 6), c[0] == OP_WRITE12, fua);
		break;
	case OP_READ16:
	case OP_WRITE16:
		do_rw(t, io, get64(c + 2), get32(c + 10), c[0] == OP_WRITE16, fua);
		break;
	case OP_WRITE_VERIFY10:
		do_rw(t, io, get32(c + 2), get16(c + 7), true, true);
		break;
	case OP_WRITE_VERIFY16:
		do_rw(t, io, get64(c + 2), get32(c + 10), true, true);
		break;
	case OP_VERIFY10:
		cmd_verify(t, io, get32(c + 2), get16(c + 7));
		break;
	case OP_VERIFY16:
		cmd_verify(t, io, get64(c + 2), get32(c + 10));
		break;
	case OP_SYNC_CACHE10:
		cmd_sync_cache(t, io, get32(c + 2), get16(c + 7));
		break;
	case OP_SYNC_CACHE16:
		cmd_sync_cache(t, io, get64(c + 2), get32(c + 10));
		break;
	case OP_MODE_SENSE6:
	case OP_MODE_SENSE10:
		cmd_mode_sense(t, io, c[0] == OP_MODE_SENSE10);
		break;
	case OP_MODE_SELECT6:
	case OP_MODE_SELECT10:
		cmd_mode_select(t, io, c[0] == OP_MODE_SELECT10);
		break;
	case OP_UNMAP:
		cmd_unmap(t, io);
		break;
	case OP_WRITE_SAME10:
		cmd_write_same(t, io, get32(c + 2), get16(c + 7));
		break;
	case OP_WRITE_SAME16:
		cmd_write_same(t, io, get64(c + 2), get32(c + 10));
		break;
	case OP_PR_IN:
		cmd_pr_in(t, io);
		break;
	case OP_PR_OUT:
		cmd_pr_out(t, io);
		break;
	default:
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		break;
	}
}

void
scsi_task_prefetch(const struct scsi_task *t, struct lun_io_ctx *io)
{
	const uint8_t *c = t->cdb;
	struct lun *l = t->dir == SCSI_DIR_FROM_DEV ? t->lun : NULL;

	/* Anything but a READ clears the hint: it would be for another task. */
	switch (c[0]) {
	case OP_READ10:
		lun_prefetch_read(l, io, get32(c + 2), get16(c + 7));
		break;
	case OP_READ12:
		lun_prefetch_read(l, io, get32(c + 2), get32(c + 6));
		break;
	case OP_READ16:
		lun_prefetch_read(l, io, get64(c + 2), get32(c + 10));
		break;
	default:
		lun_prefetch_read(NULL, io, 0, 0);
		break;
	}
}

void
scsi_task_execute(struct scsi_task *t, struct lun_io_ctx *io)
{
	uint8_t op = t->cdb[0], glen = cdb_group_len(op);
	uint32_t ua;

	t->status = SCSI_STATUS_GOOD;
	t->sense_len = 0;
	t->data_len = 0;
	t->op_kind = LUN_OP_OTHER;
	t->io_result = 0;
	t->io_pending = 0;
	t->bounce = NULL;
	t->next = NULL;

	if (t->cdb_len == 0) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return;
	}
	if (t->cdb_len < glen) {
		fail_cdb(t, io);
		return;
	}
	if (!t->lun && op != OP_INQUIRY && op != OP_REPORT_LUNS && op != OP_REQUEST_SENSE) {
		fail(t, io, SCSI_SK_ILLEGAL_REQUEST, ASC_LU_NOT_SUPPORTED);
		return;
	}
	if (t->lun && op != OP_INQUIRY && op != OP_REPORT_LUNS && op != OP_REQUEST_SENSE &&
		(ua = lun_take_unit_attention(t->lun))) {
		fail(t, io, SCSI_SK_UNIT_ATTENTION, ua & 0xffff);
		return;
	}
	dispatch(t, io);
}
