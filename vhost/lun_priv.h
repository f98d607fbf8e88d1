/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the SCSI command set (scsi_cmd.c) and the LUN backends (lun.c) share
 * and nobody else may use: the LUN object, the backend entry points and the
 * completion path that keeps the counters. Not part of the public contract.
 */
#ifndef VHOSTD_LUN_PRIV_H
#define VHOSTD_LUN_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <rte_spinlock.h>

#include "lun.h"
#include "scsi_cmd.h"

/* What a task does, for the counters and the file backend's state machine. */
enum lun_op {
	LUN_OP_OTHER,
	LUN_OP_READ,
	LUN_OP_WRITE,
	LUN_OP_FLUSH,
	LUN_OP_UNMAP,
	LUN_OP_WSAME,
	LUN_OP_VERIFY,
};

struct lun_range {
	uint64_t lba;
	uint64_t nblocks;
};

/* Limits reported in VPD page 0xB0 and enforced by the command set. */
#define LUN_MAX_XFER_BYTES (8u << 20)
#define LUN_OPT_XFER_BYTES (128u << 10)
#define LUN_MAX_UNMAP_DESC 256u
#define LUN_MAX_UNMAP_BYTES (1ull << 30) /* per descriptor / WRITE SAME */

/* Persistent reservations (SPC-4 5.13), LU scope only, not persisted. */
#define LUN_PR_MAX_REG 32
#define PR_TYPE_WR_EX 1
#define PR_TYPE_EX_AC 3
#define PR_TYPE_WR_EX_RO 5
#define PR_TYPE_EX_AC_RO 6
#define PR_TYPE_WR_EX_AR 7
#define PR_TYPE_EX_AC_AR 8

struct lun_pr_reg {
	uint64_t initiator; /* read lock-free by the conflict check */
	uint64_t key;
	bool valid; /* read lock-free by the conflict check */
};

struct lun_pr {
	rte_spinlock_t lock; /* PR OUT/IN only; the conflict check takes none */
	uint32_t generation;
	uint8_t active; /* atomic: a reservation exists (release after the fields) */
	uint8_t type;
	uint64_t holder; /* initiator holding it (not meaningful for the AR types) */
	struct lun_pr_reg regs[LUN_PR_MAX_REG];
};

struct lun_stats_slot {
	struct lun_stats s;
} __attribute__((aligned(64)));

struct lun {
	struct lun_conf conf;
	uint64_t num_blocks;
	uint32_t block_size;
	uint8_t block_shift;
	bool unmap;          /* thin provisioned: UNMAP and WRITE SAME UNMAP supported */
	uint32_t unmap_gran; /* blocks */

	/* ram */
	uint8_t *mem;
	size_t map_len;

	/* file */
	int fd;
	bool blkdev;
	bool odirect;
	uint32_t dio_align; /* memory alignment O_DIRECT needs */
	bool io_err_logged;

	/* atomic: UA_VALID | asc << 8 | ascq, taken by the next command */
	uint32_t unit_attention;

	struct lun_pr pr;

	struct lun_stats_slot *slots; /* LUN_MAX_SLOTS, one writer each */
	struct lun_stats baseline;    /* what lun_stats_clear() subtracts */
};

#define LUN_UA_VALID (1u << 16)

/*
 * Backend entry points: scsi_cmd.c has validated the CDB, the range and the
 * buffer. Each completes @t through lun_task_complete(), before returning
 * (null, ram) or later from lun_io_ctx_poll() (file).
 */
void lun_io_read(
	struct lun *l, struct lun_io_ctx *io, struct scsi_task *t, uint64_t lba, uint32_t nblocks);
void lun_io_write(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t, uint64_t lba,
	uint32_t nblocks, bool fua);
/*
 * A read of this range comes next on @io (the CDB is not validated yet): the
 * next ram LUN read on @io prefetches the first bytes of the range while it
 * copies. Nothing for other backends, a range outside the LUN or @l NULL,
 * which only clear the hint.
 */
void lun_prefetch_read(const struct lun *l, struct lun_io_ctx *io, uint64_t lba, uint64_t nblocks);
/* Compare the data-out buffer with the medium (VERIFY BYTCHK=1). */
void lun_io_verify(
	struct lun *l, struct lun_io_ctx *io, struct scsi_task *t, uint64_t lba, uint32_t nblocks);
void lun_io_flush(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t);
/* @r is copied: the caller's array may go away. */
void lun_io_unmap(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t,
	const struct lun_range *r, unsigned int n);
/* Replicate @block (one logical block) over the range. */
void lun_io_write_same(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t, uint64_t lba,
	uint64_t nblocks, const void *block);

/* Update the counters of @io's slot (latency for reads/writes) and call done(). */
void lun_task_complete(struct lun *l, struct lun_io_ctx *io, struct scsi_task *t);

/* Take the pending unit attention (0 if none). */
uint32_t lun_take_unit_attention(struct lun *l);

/* Bounded iovec copies: never past the iovecs; return the bytes copied. */
size_t lun_iov_from(const struct iovec *iov, unsigned int n, size_t off, void *dst, size_t len);
size_t lun_iov_to(const struct iovec *iov, unsigned int n, size_t off, const void *src, size_t len);

/* Monotonic ns for latency statistics (TSC-based; any epoch: only differences count). */
uint64_t lun_now_ns(void);
/* A command's start: its burst's (lun_io_ctx_burst()), else now. */
uint64_t lun_task_start_ns(const struct lun_io_ctx *io);

#endif
