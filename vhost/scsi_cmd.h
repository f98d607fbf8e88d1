/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SCSI target's command set (SPC-4/SBC-3 subset): parses a CDB, checks
 * it against the LUN and the data buffer, answers the non-I/O commands from
 * memory and hands reads, writes, flushes and unmaps to the LUN backend.
 * Every malformed or unsupported CDB ends in CHECK CONDITION with fixed-format
 * sense data (ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE, INVALID FIELD
 * IN CDB, LBA OUT OF RANGE, ...). The transport (virtio-scsi) is not known
 * here: the task carries the CDB, the addressed LUN and the data iovecs.
 */
#ifndef VHOSTD_SCSI_CMD_H
#define VHOSTD_SCSI_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct lun;
struct lun_io_ctx;

#define SCSI_CDB_MAX 32   /* virtio-scsi cdb_size */
#define SCSI_SENSE_MAX 96 /* virtio-scsi sense_size */

/* SAM status codes */
#define SCSI_STATUS_GOOD 0x00
#define SCSI_STATUS_CHECK_CONDITION 0x02
#define SCSI_STATUS_BUSY 0x08
#define SCSI_STATUS_RESERVATION_CONFLICT 0x18
#define SCSI_STATUS_TASK_SET_FULL 0x28

/* Sense keys */
#define SCSI_SK_NO_SENSE 0x0
#define SCSI_SK_NOT_READY 0x2
#define SCSI_SK_MEDIUM_ERROR 0x3
#define SCSI_SK_HARDWARE_ERROR 0x4
#define SCSI_SK_ILLEGAL_REQUEST 0x5
#define SCSI_SK_UNIT_ATTENTION 0x6
#define SCSI_SK_DATA_PROTECT 0x7
#define SCSI_SK_ABORTED_COMMAND 0xb
#define SCSI_SK_MISCOMPARE 0xe

enum scsi_dir {
	SCSI_DIR_NONE,
	SCSI_DIR_TO_DEV,   /* data-out: the initiator's buffer is read (WRITE) */
	SCSI_DIR_FROM_DEV, /* data-in: the initiator's buffer is written (READ) */
};

struct scsi_task {
	/* Set by the transport before scsi_task_execute(). */
	uint8_t cdb[SCSI_CDB_MAX];
	uint8_t cdb_len;             /* bytes of cdb[] the initiator sent */
	struct lun *lun;             /* NULL: no LUN at this address */
	uint16_t lun_id;
	const uint16_t *target_luns; /* LUN ids of the addressed target, ascending */
	uint16_t n_target_luns;
	uint64_t initiator;          /* I_T nexus (reservations, unit attentions) */
	uint64_t tag;
	enum scsi_dir dir;
	const struct iovec *iov;     /* the data buffer (guest memory, bounded) */
	uint16_t iovcnt;
	uint32_t xfer_len;           /* sum of the iov lengths */
	void (*done)(struct scsi_task *t); /* called exactly once */
	void *priv;

	/* Results, valid in done(). */
	uint8_t status;
	uint8_t sense_len;
	uint8_t sense[SCSI_SENSE_MAX];
	uint32_t data_len; /* bytes moved; residual = xfer_len - data_len */

	/* Private to scsi_cmd/lun (backend state of an in-flight I/O). */
	uint64_t start_ns;
	uint8_t op_kind;
	int32_t io_result;
	uint32_t io_pending;
	void *bounce;
	struct scsi_task *next;
	/* Multi-step backend I/O (file LUNs: short transfers, bounce buffers, UNMAP lists). */
	uint64_t io_off;    /* byte offset of the request on the medium */
	uint64_t io_blocks; /* blocks the command covers (counters) */
	uint32_t io_len;    /* bytes to move */
	uint32_t io_done;   /* bytes moved so far */
	uint32_t bounce_len;
	uint16_t io_idx;    /* UNMAP: next range */
	uint16_t io_cnt;    /* UNMAP: ranges in bounce */
	uint8_t io_flags;
};

/*
 * Execute @t: completes it (calls t->done) either before returning or later
 * from lun_io_ctx_poll(@io) of the same thread. Never touches memory outside
 * t->iov. @io may be NULL only for tasks that do no backend I/O.
 */
void scsi_task_execute(struct scsi_task *t, struct lun_io_ctx *io);

/*
 * @t will be executed on @io next, after the task before it: let its LUN
 * load what a READ of @t will copy (ram LUNs) while that task runs. A hint:
 * the CDB is checked when @t executes.
 */
void scsi_task_prefetch(const struct scsi_task *t, struct lun_io_ctx *io);

/* Fill fixed-format sense data and status CHECK CONDITION. */
void scsi_task_set_sense(struct scsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq);

#endif
