/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the virtio-scsi request path of vhost/vhost_scsi.c
 * (compiled into this file, so its static functions and types are
 * reachable and the file itself is unchanged): a controller whose control
 * queue (vring 0) and request queue (vring 2) live in fuzzer-made guest
 * memory, with a ram LUN (target 0 LUN 0), a read-only null LUN (target 0
 * LUN 1) and a ram LUN at target 1 LUN 300. Rounds of vhost_scsi_poll() on
 * both queues and vhost_scsi_pmd_finish() run the real code: the chain
 * mapping, the virtio_scsi_cmd_req decoding (LUN addressing, direction,
 * response area), TMF and AN control requests, the SCSI target and the used
 * ring. Region buffers are malloc'd to their exact size. Invariants besides
 * the sanitizers:
 *  - decode_lun() accepts exactly the LUN fields that start with 1 and gives
 *    target = byte 1 and a 14-bit LUN;
 *  - on a request queue that is not broken, every request taken from the
 *    avail ring is completed exactly once by the end of the round (ram/null
 *    LUNs complete synchronously), nothing stays busy or in flight, and no
 *    completion claims more bytes than the chain's writable part;
 *  - the used ring is published up to what was pushed.
 *
 * Input: [0] bits 0-2: log2 control queue size (max 64), bit 3 INDIRECT_DESC,
 * bit 4 EVENT_IDX; [1] bits 0-2: log2 request queue size (max 64);
 * [2..3] request last_avail_idx; [4..5] control last_avail_idx;
 * [6..13] region 1 GPA; [14] bits 0-1: rounds - 1, bits 2-4 and 5-7: how far
 * the guest moves the control and the request queue's avail index before
 * each round after the first (it keeps queueing requests: the heads of round
 * r come from region 1 at 16 * r, 64 + 16 * r); [15..22] a LUN field for decode_lun();
 * [23..] region 0 (8 KiB: control ring at 0, request ring at 4096), region 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>

#include "../../vhost/vhost_scsi.c"
#include "fuzz_util.h"

#define HDR_LEN 23
#define R0_SIZE 8192
#define R1_SIZE 4096
#define CQ_BASE 0
#define RQ_BASE 4096

static struct lun *luns[3];
static struct scsi_ctrl ctrl;
static struct dp_snapshot *snap;
static struct scsi_queue_counters counters[2];


static void
init_once(void)
{
	struct dp_scsi_view *v;

	vlog_level = VLOG_LVL_ERR - 1; /* quiet: a hostile guest makes a lot of noise */
	rte_log_set_global_level(RTE_LOG_EMERG);
	luns[0] = fuzz_open_lun(LUN_BACKEND_RAM, false, "ram0");
	luns[1] = fuzz_open_lun(LUN_BACKEND_NULL, true, "null0");
	luns[2] = fuzz_open_lun(LUN_BACKEND_RAM, false, "ram1");
	snprintf(ctrl.conf.name, sizeof(ctrl.conf.name), "scsi0");
	ctrl.vid = -1;
	snap = calloc(1, sizeof(*snap));
	check(snap != NULL);
	v = &snap->scsi[0];
	v->ctrl = &ctrl;
	v->n_luns = 3;
	v->luns[0] = (struct dp_lun_ref){0, 0, luns[0]};
	v->luns[1] = (struct dp_lun_ref){0, 1, luns[1]};
	v->luns[2] = (struct dp_lun_ref){1, 300, luns[2]};
	v->lun_ids[0] = 0;
	v->lun_ids[1] = 1;
	v->lun_ids[2] = 300;
}

static void
check_decode_lun(const uint8_t l[8])
{
	uint16_t target = 0xdead, lun_id = 0xbeef;
	bool ok = decode_lun(l, &target, &lun_id);

	check(ok == (l[0] == 1));
	if (ok)
		check(target == l[1] && lun_id < 16384 && (lun_id & 0xff) == l[3]);
	else
		check(target == 0xdead && lun_id == 0xbeef);
}

static void
queue_setup(struct vhost_scsi_dev *dev, uint16_t vring, uint8_t *base, uint16_t size,
	uint16_t avail_idx, uint64_t features, struct scsi_queue_counters *ctr)
{
	struct vscsi_queue *q = &dev->q[vring];
	struct rte_vhost_vring vr;

	memset(&vr, 0, sizeof(vr));
	vr.size = size;
	vr.desc = (struct vring_desc *)base;
	vr.avail = (struct vring_avail *)(base + 1024);
	vr.used = (struct vring_used *)(base + 1536);
	virtq_init(&q->vq, &vr, dev->mem, avail_idx, avail_idx, features);
	q->dev = dev;
	q->vring = vring;
	q->state = VQ_RUNNING;
	q->started = true;
	q->kick_fd = -1;
	q->ctr = ctr;
	/* As queue_start() allocates them. */
	q->tasks = calloc(size, sizeof(*q->tasks));
	q->batch = calloc(VSCSI_BATCH_MAX(size), sizeof(*q->batch));
	q->resubmit = calloc(size, sizeof(*q->resubmit));
	check(q->tasks != NULL && q->batch != NULL && q->resubmit != NULL);
	for (uint16_t i = 0; i < size; i++)
		q->tasks[i].q = q;
}

/* After a finish: the request queue is settled. */
static void
check_request_queue(struct vscsi_queue *q, uint16_t used0)
{
	uint16_t pushed = (uint16_t)(q->vq.last_used_idx - used0);

	check(q->vq.published_used == q->vq.last_used_idx);
	check(q->n_batch == 0);
	if (q->state != VQ_RUNNING)
		return;
	check(q->inflight == 0);
	for (uint16_t i = 0; i < q->vq.size; i++)
		check(!q->tasks[i].busy);
	(void)pushed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vscsi_pmd vp;
	struct rte_vhost_memory *mem;
	struct vhost_scsi_dev *dev;
	struct dp_sq_ref cref = {0, VSCSI_CTRLQ}, rref = {0, VSCSI_REQQ0};
	struct vscsi_queue *rq;
	uint64_t features = 0;
	uint8_t *buf[2];
	unsigned int rounds;
	size_t pos = HDR_LEN;

	if (snap == NULL)
		init_once();
	if (size < HDR_LEN)
		return 0;
	check_decode_lun(data + 15);

	mem = calloc(1, sizeof(*mem) + 2 * sizeof(mem->regions[0]));
	dev = calloc(1, sizeof(*dev));
	check(mem != NULL && dev != NULL);
	mem->nregions = 2;
	for (unsigned int r = 0; r < 2; r++) {
		size_t rs = r == 0 ? R0_SIZE : R1_SIZE, take = RTE_MIN(size - pos, rs);

		buf[r] = calloc(1, rs);
		check(buf[r] != NULL);
		memcpy(buf[r], data + pos, take);
		pos += take;
		mem->regions[r].host_user_addr = (uintptr_t)buf[r];
		mem->regions[r].size = rs;
	}
	mem->regions[0].guest_phys_addr = 0;
	mem->regions[1].guest_phys_addr = fuzz_get_le(data + 6, 8);
	if (mem->regions[1].guest_phys_addr < R0_SIZE ||
		mem->regions[1].guest_phys_addr > UINT64_MAX - R1_SIZE)
		mem->regions[1].guest_phys_addr = R0_SIZE; /* no overlap: a frontend bug */

	if (data[0] & 0x08)
		features |= 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	if (data[0] & 0x10)
		features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	dev->ctrl = &ctrl;
	dev->vid = -1;
	dev->mem = mem;
	dev->features = features;
	dev->nr_vring = VSCSI_REQQ0 + 1;
	queue_setup(dev, VSCSI_CTRLQ, buf[0] + CQ_BASE, (uint16_t)(1u << RTE_MIN(data[0] & 7, 6)),
		(uint16_t)fuzz_get_le(data + 4, 2), features, &counters[0]);
	queue_setup(dev, VSCSI_REQQ0, buf[0] + RQ_BASE, (uint16_t)(1u << RTE_MIN(data[1] & 7, 6)),
		(uint16_t)fuzz_get_le(data + 2, 2), features, &counters[1]);
	snap->scsi[0].dev = dev;
	ctrl.dev = dev;
	rq = &dev->q[VSCSI_REQQ0];

	rounds = 1 + (data[14] & 3);
	for (unsigned int i = 0; i < rounds + 2; i++) {
		uint16_t used0 = rq->vq.last_used_idx, avail0 = rq->vq.last_avail_idx;
		bool running = rq->state == VQ_RUNNING;

		if (i > 0 && i < rounds) {
			struct vring_avail *ca = (struct vring_avail *)(buf[0] + CQ_BASE + 1024);
			struct vring_avail *ra = (struct vring_avail *)(buf[0] + RQ_BASE + 1024);

			/* The new entries' heads: from a table at the start of region 1. */
			for (unsigned int j = 0; j < (data[14] >> 2 & 7u); j++, ca->idx++)
				ca->ring[ca->idx % dev->q[VSCSI_CTRLQ].vq.size] =
					(uint16_t)fuzz_get_le(buf[1] + 2 * (8 * i + j), 2);
			for (unsigned int j = 0; j < (data[14] >> 5); j++, ra->idx++)
				ra->ring[ra->idx % rq->vq.size] =
					(uint16_t)fuzz_get_le(buf[1] + 64 + 2 * (8 * i + j), 2);
		}
		/* Two extra rounds with nothing new: pending TMFs complete. */
		vhost_scsi_poll(&vp, snap, &cref);
		if (i < rounds)
			vhost_scsi_poll(&vp, snap, &rref);
		vhost_scsi_pmd_finish(&vp);
		check_request_queue(rq, used0);
		if (running && rq->state == VQ_RUNNING) {
			/* Every request taken was answered, once. */
			check((uint16_t)(rq->vq.last_used_idx - used0) ==
				(uint16_t)(rq->vq.last_avail_idx - avail0));
		}
	}
	for (unsigned int r = 0; r < VSCSI_MAX_VRINGS; r++) {
		free(dev->q[r].tasks);
		free(dev->q[r].batch);
		free(dev->q[r].resubmit);
	}
	snap->scsi[0].dev = NULL;
	free(dev);
	free(buf[0]);
	free(buf[1]);
	free(mem);
	return 0;
}
