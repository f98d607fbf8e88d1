/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the SCSI command set: arbitrary CDBs, data
 * directions and buffers through scsi_task_execute() on a ram LUN, a
 * read-only null LUN and no LUN. Input: byte 0 = CDB length, byte 1 =
 * direction (low 2 bits) and target (next 2 bits), bytes 2-3 = buffer
 * length (at most 64 KiB), then the CDB (32 bytes), then the data-out.
 * Besides the sanitizers (the buffer is exactly its length: ASan catches any
 * byte past it) it checks that:
 *  - done() is called exactly once, before scsi_task_execute() returns;
 *  - data_len never exceeds xfer_len, and is 0 on CHECK CONDITION;
 *  - CHECK CONDITION comes with 18 bytes of fixed-format sense data.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lun.h"
#include "scsi_cmd.h"
#include "fuzz_util.h"

static struct lun *luns[2];
static struct lun_io_ctx *io;
static const uint16_t lun_ids[] = {0, 1, 300};

static void
on_done(struct scsi_task *t)
{
	(*(int *)t->priv)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scsi_task t;
	struct iovec iov;
	uint8_t *buf;
	size_t len;
	int done = 0;

	if (!luns[0]) {
		vlog_level = VLOG_LVL_ERR;
		luns[0] = fuzz_open_lun(LUN_BACKEND_RAM, false, "ram0");
		luns[1] = fuzz_open_lun(LUN_BACKEND_NULL, true, "null0");
		io = lun_io_ctx_create(1, 8, NULL, 0);
		if (!io)
			abort();
	}
	if (size < 4 + SCSI_CDB_MAX)
		return 0;
	len = (size_t)data[2] << 8 | data[3];
	buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memset(buf, 0, len);
	if (size > 4 + SCSI_CDB_MAX)
		memcpy(buf, data + 4 + SCSI_CDB_MAX,
			size - 4 - SCSI_CDB_MAX < len ? size - 4 - SCSI_CDB_MAX : len);
	memset(&t, 0, sizeof(t));
	t.cdb_len = data[0];
	memcpy(t.cdb, data + 4, SCSI_CDB_MAX);
	t.dir = (enum scsi_dir)((data[1] & 3) % 3);
	t.lun = (data[1] >> 2 & 3) < 2 ? luns[data[1] >> 2 & 1] : NULL;
	t.target_luns = lun_ids;
	t.n_target_luns = 3;
	t.initiator = data[1] >> 4;
	iov.iov_base = buf;
	iov.iov_len = len;
	t.iov = &iov;
	t.iovcnt = 1;
	t.xfer_len = len;
	t.done = on_done;
	t.priv = &done;
	/* The poll loop prefetches for a task before it checks its CDB. */
	scsi_task_prefetch(&t, io);
	scsi_task_execute(&t, io);
	if (done != 1 || t.data_len > t.xfer_len)
		abort();
	if (t.status == SCSI_STATUS_CHECK_CONDITION &&
		(t.data_len != 0 || t.sense_len != 18 || (t.sense[0] & 0x7f) != 0x70))
		abort();
	free(buf);
	return 0;
}
