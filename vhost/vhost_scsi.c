/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_scsi.h>
#include <urcu-qsbr.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <rte_malloc.h>
#include <rte_vhost.h>

#include "datapath.h"
#include "fsutil.h"
#include "log.h"
#include "lun.h"
#include "scsi_cmd.h"
#include "vhost_scsi.h"
#include "virtq.h"

#define VSCSI_CTRLQ 0
#define VSCSI_EVENTQ 1
#define VSCSI_REQQ0 2
#define VSCSI_MAX_VRINGS (VSCSI_REQQ0 + DP_MAX_QUEUES)
#define VSCSI_BURST 32
#ifndef VSCSI_PUBLISH_STEP
#define VSCSI_PUBLISH_STEP 8
#endif
#define VSCSI_MAX_TMF 16
#define VSCSI_MAX_EVENTS 32
#define VSCSI_SEG_MAX (VIRTQ_MAX_IOV - 2) /* header and response take one each */
#define VSCSI_DRAIN_TIMEOUT_MS 10000
#define VSCSI_IO_DEPTH 1024
/*
 * Heads completed between two publications of a queue's used ring (one poll
 * and one vhost_scsi_pmd_finish()): the commands in flight (one per head at
 * most), the heads of one poll (a hostile guest may offer a head several
 * times) and the task management functions that were waiting.
 */
#define VSCSI_BATCH_MAX(size) ((size) + VSCSI_BURST + VSCSI_MAX_TMF)

#ifndef VHOST_USER_F_PROTOCOL_FEATURES
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#endif
#ifndef VHOST_F_LOG_ALL
#define VHOST_F_LOG_ALL 26
#endif

#define VSCSI_FEATURES                                                                             \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |                    \
		(1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << VIRTIO_SCSI_F_HOTPLUG) |              \
		(1ULL << VIRTIO_SCSI_F_CHANGE) | (1ULL << VHOST_USER_F_PROTOCOL_FEATURES) |        \
		(1ULL << VHOST_F_LOG_ALL))

/* vhost-user requests we hook (numbers from the vhost-user specification). */
enum {
	VU_SET_FEATURES = 2,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
};

/* The message as rte_vhost hands it to the hooks: header, then payload. */
struct vu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct {
			uint32_t index;
			uint32_t num;
		} state;
		struct {
			uint32_t offset;
			uint32_t size;
			uint32_t flags;
			uint8_t region[256];
		} cfg;
	} payload;
} __attribute__((packed));

#define VU_CONFIG_HDR 12

enum vscsi_qstate {
	VQ_STOPPED,
	VQ_RUNNING,
	VQ_DRAINING, /* no new requests; in-flight ones complete */
	VQ_BROKEN,   /* the frontend broke the ring indexes */
};

struct vscsi_queue;

struct vscsi_task {
	struct scsi_task t;
	struct vscsi_queue *q;
	uint8_t busy; /* in flight (read by the control thread: atomics) */
	uint8_t resp_n;
	uint32_t resp_len; /* writable bytes of the response area */
	struct iovec resp[4];
	uint64_t resp_gpa[4];
	struct virtq_chain chain;
};

struct vscsi_tmf {
	uint16_t head;
	uint8_t subtype;
	uint16_t target;
	uint16_t lun_id;
	uint64_t tag;
	struct iovec resp;
	uint64_t resp_gpa;
};

struct vscsi_queue {
	struct virtq vq;
	struct vhost_scsi_dev *dev;
	uint16_t vring;
	uint8_t state; /* enum vscsi_qstate, written by the control thread */
	bool started;  /* control thread only */
	bool inflight_on;
	bool dirty; /* in the PMD's batch */
	bool call_pending;
	bool warned;
	bool fresh_kick; /* SET_VRING_KICK since the last start: resubmit inflight */
	int kick_fd;     /* the frontend's kick eventfd (stable while started) */
	uint32_t inflight;
	struct scsi_queue_counters *ctr;
	struct vscsi_task *tasks; /* indexed by head */
	uint16_t n_batch;
	uint16_t *batch; /* heads published in this batch (inflight clearing) */
	uint16_t n_resubmit;
	uint16_t *resubmit;
	uint16_t n_tmf;
	struct vscsi_tmf tmf[VSCSI_MAX_TMF];
};

struct vscsi_event {
	uint32_t event;
	uint32_t reason;
	uint16_t target;
	uint16_t lun_id;
};

struct vhost_scsi_dev {
	struct scsi_ctrl *ctrl;
	int vid;
	int numa;
	uint64_t features;
	bool log_on;
	uint16_t nr_vring;
	struct rte_vhost_memory *mem;
	uint64_t restart_bits; /* vrings to restart after SET_MEM_TABLE */
	uint64_t paused_bits;  /* vrings to restart after a PMD change */
	struct vscsi_queue q[VSCSI_MAX_VRINGS];
	/* Hot-plug events not delivered yet (control thread only). */
	uint16_t n_events;
	bool events_missed;
	struct vscsi_event events[VSCSI_MAX_EVENTS];
};

struct vscsi_pmd {
	unsigned int idx;
	struct lun_io_ctx *io;
	uint16_t n_dirty;
	struct vscsi_queue *dirty[DP_MAX_RXQ_PER_PMD];
};

/* Vrings made ready by the frontend, per vid (see vhost_net.c for why). */
#define VSCSI_MAX_VID 1024
static uint64_t ready_bits[VSCSI_MAX_VID];
static int scsi_event_fd = -1;

static void queue_stop(struct vhost_scsi_dev *dev, uint16_t vring);
static void flush_dirty(struct vscsi_pmd *vp);
static void queue_call(struct vscsi_queue *q);

/* ---- helpers -------------------------------------------------------------- */

static struct scsi_ctrl *
ctrl_of_vid(int vid)
{
	char path[PATH_MAX];

	if (rte_vhost_get_ifname(vid, path, sizeof(path)) != 0)
		return NULL;
	return dp_scsi_find_by_socket(path);
}

static struct vhost_scsi_dev *
dev_of_vid(int vid)
{
	struct scsi_ctrl *c = ctrl_of_vid(vid);

	if (c == NULL || c->dev == NULL || c->dev->vid != vid)
		return NULL;
	return c->dev;
}

static void
log_guest_write(const struct vhost_scsi_dev *dev, const struct iovec *iov, const uint64_t *gpa,
	unsigned int n, size_t len)
{
	for (unsigned int i = 0; i < n && len > 0; i++) {
		size_t l = iov[i].iov_len < len ? iov[i].iov_len : len;

		rte_vhost_log_write(dev->vid, gpa[i], l);
		len -= l;
	}
}

/* ---- PMD side: requests ------------------------------------------------- */

static void
queue_mark_dirty(struct vscsi_pmd *vp, struct vscsi_queue *q)
{
	if (q->dirty)
		return;
	if (vp->n_dirty == RTE_DIM(vp->dirty))
		flush_dirty(vp);
	q->dirty = true;
	vp->dirty[vp->n_dirty++] = q;
}

/* The PMD whose io_uring runs the current task (set around executions). */
static __thread struct vscsi_pmd *cur_pmd;

static void
complete_head(struct vscsi_queue *q, uint16_t head, uint32_t written)
{
	struct vhost_scsi_dev *dev = q->dev;

	if (q->inflight_on)
		rte_vhost_set_last_inflight_io_split(dev->vid, q->vring, head);
	virtq_push(&q->vq, head, written);
	q->batch[q->n_batch++] = head;
	if (cur_pmd != NULL)
		queue_mark_dirty(cur_pmd, q);
}

static void
write_response(struct vscsi_task *vt, uint8_t response)
{
	struct vscsi_queue *q = vt->q;
	struct scsi_task *t = &vt->t;
	struct virtio_scsi_cmd_resp r;
	size_t len = offsetof(struct virtio_scsi_cmd_resp, sense);
	uint32_t written;

	memset(&r, 0, len);
	r.response = response;
	if (response == VIRTIO_SCSI_S_OK) {
		r.status = t->status;
		r.resid = t->xfer_len - t->data_len;
		r.sense_len = t->sense_len;
		memcpy(r.sense, t->sense, t->sense_len);
		len += t->sense_len;
	}
	len = iov_copy_to(vt->resp, vt->resp_n, 0, &r, len);
	written = sizeof(struct virtio_scsi_cmd_resp);
	if (response == VIRTIO_SCSI_S_OK && t->dir == SCSI_DIR_FROM_DEV)
		written += t->data_len;
	if (q->dev->log_on) {
		log_guest_write(q->dev, vt->resp, vt->resp_gpa, vt->resp_n, len);
		if (t->dir == SCSI_DIR_FROM_DEV && t->data_len > 0)
			log_guest_write(q->dev, t->iov, vt->chain.gpa + vt->chain.n_out, t->iovcnt,
				t->data_len);
	}
	if (response == VIRTIO_SCSI_S_OK && t->status != SCSI_STATUS_GOOD)
		q->ctr->errors++;
	q->ctr->requests++;
	__atomic_store_n(&vt->busy, 0, __ATOMIC_RELEASE);
	q->inflight--;
	complete_head(q, vt->chain.head, written);
}

static void
task_done(struct scsi_task *t)
{
	write_response((struct vscsi_task *)t, VIRTIO_SCSI_S_OK);
}

static int
lun_lookup(const struct dp_scsi_view *v, uint16_t target, uint16_t lun_id, struct lun **lun,
	const uint16_t **ids, uint16_t *n_ids)
{
	uint16_t first = UINT16_MAX, n = 0;

	*lun = NULL;
	for (uint16_t i = 0; i < v->n_luns; i++) {
		if (v->luns[i].target < target)
			continue;
		if (v->luns[i].target > target)
			break;
		if (first == UINT16_MAX)
			first = i;
		n++;
		if (v->luns[i].lun_id == lun_id)
			*lun = v->luns[i].lun;
	}
	if (n == 0)
		return -ENOENT;
	*ids = &v->lun_ids[first];
	*n_ids = n;
	return 0;
}

/* Decode the virtio-scsi LUN field: 1, target, flat/peripheral LUN. */
static bool
decode_lun(const uint8_t l[8], uint16_t *target, uint16_t *lun_id)
{
	if (l[0] != 1)
		return false;
	*target = l[1];
	*lun_id = (uint16_t)((l[2] & 0x3f) << 8 | l[3]);
	return true;
}

/* Response area: the first sizeof(resp) writable bytes (may span segments). */
static int
take_response_area(struct vscsi_task *vt, size_t need)
{
	struct virtq_chain *c = &vt->chain;
	size_t got = 0;

	vt->resp_n = 0;
	for (unsigned int i = c->n_out; i < c->n_out + c->n_in && got < need; i++) {
		size_t l = c->iov[i].iov_len;

		if (vt->resp_n == RTE_DIM(vt->resp))
			return -E2BIG;
		if (l > need - got)
			l = need - got;
		vt->resp[vt->resp_n].iov_base = c->iov[i].iov_base;
		vt->resp[vt->resp_n].iov_len = l;
		vt->resp_gpa[vt->resp_n] = c->gpa[i];
		vt->resp_n++;
		got += l;
	}
	vt->resp_len = (uint32_t)got;
	return got < need ? -EINVAL : 0;
}

/*
 * Turn the segments of [@first, @first + @n) into the data buffer that starts
 * @skip bytes in: advanced in place (the header bytes were copied already).
 */
static uint16_t
trim_front(struct iovec *iov, uint64_t *gpa, uint16_t n, size_t skip, uint16_t *start)
{
	uint16_t i = 0;

	while (i < n && skip >= iov[i].iov_len) {
		skip -= iov[i].iov_len;
		i++;
	}
	if (i < n && skip > 0) {
		iov[i].iov_base = (uint8_t *)iov[i].iov_base + skip;
		iov[i].iov_len -= skip;
		gpa[i] += skip;
	}
	*start = i;
	return (uint16_t)(n - i);
}

static void
bad_chain(struct vscsi_queue *q, uint16_t head, const char *why)
{
	struct scsi_ctrl *c = q->dev->ctrl;

	if (!q->warned) {
		VLOG_WARN("scsi %s: queue %u: bad request (%s); failed, further ones counted",
			c->conf.name, q->vring, why);
		q->warned = true;
	}
	q->ctr->bad_chains++;
	complete_head(q, head, 0);
}

/* The frontend broke the ring indexes: stop the queue and say why in scsi.show. */
static void
queue_broken(struct vscsi_queue *q, const char *why)
{
	struct scsi_ctrl *c = q->dev->ctrl;

	__atomic_store_n(&q->state, VQ_BROKEN, __ATOMIC_RELEASE);
	if (!__atomic_load_n(&c->broken, __ATOMIC_ACQUIRE)) {
		snprintf(c->broken_why, sizeof(c->broken_why), "vring %u: %s", q->vring,
			why != NULL ? why : "ring broken");
		__atomic_store_n(&c->broken, true, __ATOMIC_RELEASE);
	}
}

/*
 * Zero the part of @t the transport and the results use (everything before
 * start_ns). Not memset(): with the build's -march (corei7) GCC makes it a
 * rep stos, whose start-up cost was 6 % of the PMD's samples at 4 KiB null
 * I/O; 16-byte stores are a handful of cycles.
 */
static inline void
task_clear(struct scsi_task *t)
{
	const size_t n = offsetof(struct scsi_task, start_ns);
#if defined(__SSE2__)
	__m128i z = _mm_setzero_si128();
	uint8_t *p = (uint8_t *)t;
	size_t i;

	/* Hide that z is zero, or GCC turns the loop back into memset(). */
	__asm__("" : "+x"(z));
	for (i = 0; i + 16 <= n; i += 16)
		_mm_storeu_si128((__m128i *)(p + i), z);
	if (i < n)
		memset(p + i, 0, n - i);
#else
	memset(t, 0, n);
#endif
}

/*
 * Take the request of @head up to its execution: map and check the chain,
 * read the header, find the LUN, describe the data buffer. Returns true when
 * the task is ready for scsi_task_execute(); false when the request was
 * answered (or the queue stopped) here.
 */
static bool
prepare_request(const struct dp_scsi_view *v, struct vscsi_queue *q, uint16_t head)
{
	struct vscsi_task *vt = &q->tasks[head];
	struct virtq_chain *c = &vt->chain;
	struct scsi_task *t = &vt->t;
	struct virtio_scsi_cmd_req req;
	const char *why = NULL;
	uint16_t target, lun_id, start, n;
	int rc;

	if (vt->busy) {
		/* The driver offered a head we have not returned: a broken ring. */
		VLOG_ERR("scsi %s: queue %u: head %u offered twice; queue stopped (device "
			 "needs reset)",
			v->ctrl->conf.name, q->vring, head);
		queue_broken(q, "head offered twice while in flight");
		return false;
	}
	rc = virtq_map_chain(&q->vq, head, c, &why);
	if (rc < 0) {
		bad_chain(q, head, why);
		return false;
	}
	if (c->out_len < sizeof(req)) {
		bad_chain(q, head, "request header too short");
		return false;
	}
	if (take_response_area(vt, sizeof(struct virtio_scsi_cmd_resp)) < 0) {
		bad_chain(q, head, "response buffer too short");
		return false;
	}
	iov_copy_from(c->iov, c->n_out, 0, &req, sizeof(req));
	task_clear(t);
	vt->busy = 1;
	q->inflight++;
	if (q->inflight_on)
		rte_vhost_set_inflight_desc_split(q->dev->vid, q->vring, head);
	if (!decode_lun(req.lun, &target, &lun_id) ||
		lun_lookup(v, target, lun_id, &t->lun, &t->target_luns, &t->n_target_luns) < 0) {
		write_response(vt, VIRTIO_SCSI_S_BAD_TARGET);
		return false;
	}
	memcpy(t->cdb, req.cdb, sizeof(req.cdb));
	t->cdb_len = sizeof(req.cdb);
	t->lun_id = lun_id;
	t->initiator = v->ctrl->idx + 1;
	t->tag = req.tag;
	t->done = task_done;
	if (c->out_len > sizeof(req) && c->in_len > sizeof(struct virtio_scsi_cmd_resp)) {
		/* Bidirectional commands are not offered (no VIRTIO_SCSI_F_INOUT). */
		scsi_task_set_sense(t, SCSI_SK_ILLEGAL_REQUEST, 0x24, 0);
		write_response(vt, VIRTIO_SCSI_S_OK);
		return false;
	}
	if (c->out_len > sizeof(req)) {
		n = trim_front(c->iov, c->gpa, c->n_out, sizeof(req), &start);
		t->dir = SCSI_DIR_TO_DEV;
		t->iov = &c->iov[start];
		t->iovcnt = n;
		t->xfer_len = c->out_len - (uint32_t)sizeof(req);
	} else if (c->in_len > sizeof(struct virtio_scsi_cmd_resp)) {
		/* The response area keeps its own copy of the segments it uses. */
		n = trim_front(&c->iov[c->n_out], &c->gpa[c->n_out], c->n_in,
			sizeof(struct virtio_scsi_cmd_resp), &start);
		t->dir = SCSI_DIR_FROM_DEV;
		t->iov = &c->iov[c->n_out + start];
		t->iovcnt = n;
		/* gpa of the data for dirty logging starts at the same offset. */
		memmove(&c->gpa[c->n_out], &c->gpa[c->n_out + start], n * sizeof(c->gpa[0]));
		t->xfer_len = c->in_len - (uint32_t)sizeof(struct virtio_scsi_cmd_resp);
	} else {
		t->dir = SCSI_DIR_NONE;
	}
	return true;
}

static void
start_request(
	struct vscsi_pmd *vp, const struct dp_scsi_view *v, struct vscsi_queue *q, uint16_t head)
{
	if (prepare_request(v, q, head))
		scsi_task_execute(&q->tasks[head].t, vp->io);
}

/* True when a request matching the TMF is still in flight on @dev. */
static bool
tmf_blocked(
	const struct vhost_scsi_dev *dev, const struct dp_scsi_view *v, const struct vscsi_tmf *m)
{
	struct lun *lun = NULL;
	const uint16_t *ids;
	uint16_t n_ids;

	lun_lookup(v, m->target, m->lun_id, &lun, &ids, &n_ids);
	for (unsigned int r = VSCSI_REQQ0; r < VSCSI_MAX_VRINGS; r++) {
		const struct vscsi_queue *q = &dev->q[r];

		if (!q->started || q->tasks == NULL)
			continue;
		for (unsigned int i = 0; i < q->vq.size; i++) {
			const struct vscsi_task *vt = &q->tasks[i];

			if (!__atomic_load_n(&vt->busy, __ATOMIC_ACQUIRE))
				continue;
			switch (m->subtype) {
			case VIRTIO_SCSI_T_TMF_ABORT_TASK:
			case VIRTIO_SCSI_T_TMF_QUERY_TASK:
				if (vt->t.tag == m->tag && vt->t.lun == lun)
					return true;
				break;
			case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
				return true;
			default:
				if (vt->t.lun == lun)
					return true;
			}
		}
	}
	return false;
}

static void
tmf_complete(struct vscsi_queue *q, const struct dp_scsi_view *v, struct vscsi_tmf *m)
{
	struct virtio_scsi_ctrl_tmf_resp r = {.response = VIRTIO_SCSI_S_FUNCTION_SUCCEEDED};
	struct lun *lun = NULL;
	const uint16_t *ids;
	uint16_t n_ids;

	if (lun_lookup(v, m->target, m->lun_id, &lun, &ids, &n_ids) < 0)
		r.response = VIRTIO_SCSI_S_BAD_TARGET;
	else if (lun == NULL && m->subtype != VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET)
		r.response = VIRTIO_SCSI_S_INCORRECT_LUN;
	else if (m->subtype == VIRTIO_SCSI_T_TMF_ABORT_TASK ||
		 m->subtype == VIRTIO_SCSI_T_TMF_ABORT_TASK_SET ||
		 m->subtype == VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET ||
		 m->subtype == VIRTIO_SCSI_T_TMF_QUERY_TASK ||
		 m->subtype == VIRTIO_SCSI_T_TMF_QUERY_TASK_SET)
		/* Waited until the task(s) left the task set: nothing left to abort. */
		r.response = VIRTIO_SCSI_S_OK; /* FUNCTION COMPLETE */
	else if (m->subtype == VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET)
		lun_set_unit_attention(lun, 0x29, 0x00);
	else if (m->subtype == VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET)
		for (uint16_t i = 0; i < n_ids; i++)
			lun_set_unit_attention(v->luns[ids - v->lun_ids + i].lun, 0x29, 0x07);
	else
		r.response = VIRTIO_SCSI_S_FUNCTION_REJECTED;
	iov_copy_to(&m->resp, 1, 0, &r, sizeof(r));
	if (q->dev->log_on)
		rte_vhost_log_write(q->dev->vid, m->resp_gpa, sizeof(r));
	q->ctr->tmf++;
	complete_head(q, m->head, sizeof(r));
}

static void
control_request(struct vscsi_queue *q, const struct dp_scsi_view *v, uint16_t head)
{
	struct vscsi_task *vt = &q->tasks[head];
	struct virtq_chain *c = &vt->chain;
	const char *why = NULL;
	uint32_t type = 0;
	int rc;

	rc = virtq_map_chain(&q->vq, head, c, &why);
	if (rc < 0)
		return bad_chain(q, head, why);
	if (iov_copy_from(c->iov, c->n_out, 0, &type, sizeof(type)) != sizeof(type))
		return bad_chain(q, head, "control request too short");
	if (type == VIRTIO_SCSI_T_TMF) {
		struct virtio_scsi_ctrl_tmf_req req;
		struct vscsi_tmf *m;

		if (iov_copy_from(c->iov, c->n_out, 0, &req, sizeof(req)) != sizeof(req) ||
			c->n_in == 0 || c->iov[c->n_out].iov_len < 1)
			return bad_chain(q, head, "task management request too short");
		if (q->n_tmf == VSCSI_MAX_TMF)
			return bad_chain(q, head, "too many task management requests pending");
		m = &q->tmf[q->n_tmf++];
		m->head = head;
		m->subtype = (uint8_t)req.subtype;
		m->tag = req.tag;
		m->resp = c->iov[c->n_out];
		m->resp_gpa = c->gpa[c->n_out];
		if (!decode_lun(req.lun, &m->target, &m->lun_id))
			m->target = UINT16_MAX;
		return;
	}
	if (type == VIRTIO_SCSI_T_AN_QUERY || type == VIRTIO_SCSI_T_AN_SUBSCRIBE) {
		/* No asynchronous notifications: none supported, none subscribed. */
		struct virtio_scsi_ctrl_an_resp r = {
			.event_actual = 0, .response = VIRTIO_SCSI_S_OK};

		if (iov_copy_to(&c->iov[c->n_out], c->n_in, 0, &r, sizeof(r)) != sizeof(r))
			return bad_chain(q, head, "notification response too short");
		if (q->dev->log_on)
			log_guest_write(
				q->dev, &c->iov[c->n_out], &c->gpa[c->n_out], c->n_in, sizeof(r));
		return complete_head(q, head, sizeof(r));
	}
	bad_chain(q, head, "unknown control request type");
}

static void
queue_call(struct vscsi_queue *q)
{
	struct vhost_scsi_dev *dev = q->dev;

	/*
	 * rte_vhost decides with its own copy of the used index (event idx):
	 * keep it current. The non-blocking call never waits for a vring lock
	 * that the rte_vhost thread may hold while it waits for us.
	 */
	rte_vhost_set_vring_base(dev->vid, q->vring, q->vq.last_avail_idx, q->vq.last_used_idx);
	q->call_pending = rte_vhost_vring_call_nonblock(dev->vid, q->vring) == -EAGAIN;
}

unsigned int
vhost_scsi_poll(struct vscsi_pmd *vp, const struct dp_snapshot *s, const struct dp_sq_ref *ref)
{
	const struct dp_scsi_view *v = &s->scsi[ref->ctrl];
	struct vhost_scsi_dev *dev = v->dev;
	struct vscsi_queue *q;
	uint16_t heads[VSCSI_BURST];
	uint16_t mark;
	bool early, ready;
	int n;

	if (dev == NULL)
		return 0;
	q = &dev->q[ref->vring];
	cur_pmd = vp;
	if (q->call_pending)
		queue_call(q);
	if (__atomic_load_n(&q->state, __ATOMIC_ACQUIRE) != VQ_RUNNING)
		return 0;
	if (ref->vring == VSCSI_CTRLQ) {
		for (uint16_t i = 0; i < q->n_tmf;) {
			if (tmf_blocked(dev, v, &q->tmf[i])) {
				i++;
				continue;
			}
			tmf_complete(q, v, &q->tmf[i]);
			q->tmf[i] = q->tmf[--q->n_tmf];
		}
	}
	if (q->n_resubmit > 0) {
		/* Requests in flight when the previous backend died, oldest first. */
		uint16_t head = q->resubmit[--q->n_resubmit];

		if (head < q->vq.size)
			start_request(vp, v, q, head);
		return 1;
	}
	n = virtq_pop(&q->vq, heads, VSCSI_BURST);
	if (n < 0) {
		VLOG_ERR("scsi %s: queue %u: %s; queue stopped (device needs reset)",
			v->ctrl->conf.name, q->vring, q->vq.broken_why);
		queue_broken(q, q->vq.broken_why);
		return 0;
	}
	if (n == 0)
		return 0;
	if (ref->vring == VSCSI_CTRLQ) {
		for (int i = 0; i < n; i++)
			control_request(q, v, heads[i]);
		return (unsigned int)n;
	}
	/*
	 * This burst took all the driver had queued: until it sees completions
	 * it has nothing to do, and at the end of the burst both sides would
	 * swap roles, each idle half the time (null LUN, qd 32: target 50-65 %
	 * busy). Publish completions every VSCSI_PUBLISH_STEP requests instead,
	 * so that it resubmits while the rest of the burst runs. With more
	 * queued than a burst takes (qd 128) the driver is never starved, and
	 * publishing early would only move the used index's line more often.
	 */
	early = !q->inflight_on && q->vq.last_avail_idx == q->vq.seen_avail_idx;
	mark = q->vq.last_used_idx;
	/*
	 * One request ahead: the next one is prepared (its descriptors and
	 * header loaded) before this one runs, so that its misses overlap this
	 * one's work, and a ram LUN read of it is prefetched during this one's
	 * copy. The order of execution stays the ring's.
	 */
	if (vp->io != NULL)
		lun_io_ctx_burst(vp->io, true);
	ready = prepare_request(v, q, heads[0]);
	for (int i = 0; i < n; i++) {
		bool next = false;

		if (i + 1 < n) {
			next = prepare_request(v, q, heads[i + 1]);
			if (next)
				scsi_task_prefetch(&q->tasks[heads[i + 1]].t, vp->io);
		}
		if (ready)
			scsi_task_execute(&q->tasks[heads[i]].t, vp->io);
		ready = next;
		if (early && (uint16_t)(q->vq.last_used_idx - mark) >= VSCSI_PUBLISH_STEP &&
			i + 1 < n) {
			virtq_publish_early(&q->vq);
			mark = q->vq.last_used_idx;
		}
	}
	if (vp->io != NULL)
		lun_io_ctx_burst(vp->io, false);
	return (unsigned int)n;
}

unsigned int
vhost_scsi_pmd_finish(struct vscsi_pmd *vp)
{
	unsigned int done = 0;

	cur_pmd = vp;
	if (vp->io != NULL)
		done = lun_io_ctx_poll(vp->io);
	flush_dirty(vp);
	return done;
}

/* Publish the used rings the batch touched; clear their inflight entries. */
static void
flush_dirty(struct vscsi_pmd *vp)
{
	for (uint16_t i = 0; i < vp->n_dirty; i++) {
		struct vscsi_queue *q = vp->dirty[i];

		/*
		 * The inflight area tells a restarted backend about one completion only
		 * (last_inflight_io: in the used ring, not yet cleared). Publishing a whole
		 * batch before clearing it would have the next backend resubmit, and
		 * complete again, all but one of a batch cut short by a crash: publish
		 * and clear head by head (vhost-user.rst, "Inflight I/O tracking").
		 */
		bool cleared = false;

		if (q->inflight_on &&
			(uint16_t)(q->vq.last_used_idx - q->vq.published_used) == q->n_batch) {
			uint16_t idx = q->vq.published_used;

			for (uint16_t b = 0; b < q->n_batch; b++) {
				rte_vhost_set_last_inflight_io_split(
					q->dev->vid, q->vring, q->batch[b]);
				__atomic_store_n(&q->vq.used->idx, ++idx, __ATOMIC_RELEASE);
				rte_vhost_clr_inflight_desc_split(
					q->dev->vid, q->vring, idx, q->batch[b]);
			}
			cleared = true;
		}
		if (virtq_flush(&q->vq))
			queue_call(q);
		if (q->inflight_on && !cleared)
			for (uint16_t b = 0; b < q->n_batch; b++)
				rte_vhost_clr_inflight_desc_split(
					q->dev->vid, q->vring, q->vq.last_used_idx, q->batch[b]);
		q->n_batch = 0;
		q->dirty = false;
	}
	vp->n_dirty = 0;
}

static struct vscsi_queue *
queue_of_ref(const struct dp_snapshot *s, const struct dp_sq_ref *ref)
{
	struct vhost_scsi_dev *dev = s->scsi[ref->ctrl].dev;

	return dev != NULL ? &dev->q[ref->vring] : NULL;
}

int
vhost_scsi_kick_fd(const struct dp_snapshot *s, const struct dp_sq_ref *ref)
{
	struct vscsi_queue *q = queue_of_ref(s, ref);

	if (q == NULL || __atomic_load_n(&q->state, __ATOMIC_ACQUIRE) != VQ_RUNNING)
		return -1;
	return q->kick_fd;
}

bool
vhost_scsi_arm(const struct dp_snapshot *s, const struct dp_sq_ref *ref, bool enable)
{
	struct vscsi_queue *q = queue_of_ref(s, ref);

	if (q == NULL || __atomic_load_n(&q->state, __ATOMIC_ACQUIRE) != VQ_RUNNING)
		return false;
	virtq_set_notify(&q->vq, enable);
	if (!enable)
		return false;
	/* Work that no kick will announce: retries, waiting TMFs, resubmissions. */
	return q->call_pending || q->n_tmf > 0 || q->n_resubmit > 0 || virtq_pending(&q->vq) > 0;
}

int
vhost_scsi_pmd_event_fd(const struct vscsi_pmd *vp)
{
	return vp->io != NULL ? lun_io_ctx_event_fd(vp->io) : -1;
}

struct vscsi_pmd *
vhost_scsi_pmd_create(unsigned int pmd_idx, int numa, char *err, size_t errlen)
{
	struct vscsi_pmd *vp = rte_zmalloc_socket("vscsi-pmd", sizeof(*vp), 64, numa);
	char why[200] = "";

	if (vp == NULL) {
		snprintf(err, errlen, "pmd %u: out of hugepage memory", pmd_idx);
		return NULL;
	}
	vp->idx = pmd_idx;
	vp->io = lun_io_ctx_create(pmd_idx, VSCSI_IO_DEPTH, why, sizeof(why));
	if (vp->io == NULL)
		/* ram and null LUNs still work; file LUNs fail their I/O. */
		VLOG_WARN("pmd %u: no io_uring for file LUNs: %s", pmd_idx, why);
	return vp;
}

void
vhost_scsi_pmd_destroy(struct vscsi_pmd *vp)
{
	if (vp == NULL)
		return;
	if (vp->io != NULL)
		lun_io_ctx_destroy(vp->io);
	rte_free(vp);
}

/* ---- control side: queues --------------------------------------------------- */

static void
queue_free(struct vscsi_queue *q)
{
	rte_free(q->tasks);
	free(q->batch);
	free(q->resubmit);
	q->tasks = NULL;
	q->batch = NULL;
	q->resubmit = NULL;
}

static int
cmp_resubmit(const void *a, const void *b)
{
	const struct rte_vhost_resubmit_desc *x = a, *y = b;

	/* Descending: the PMD takes them from the end, oldest first. */
	return x->counter < y->counter ? 1 : x->counter > y->counter ? -1 : 0;
}

static int
queue_start(struct vhost_scsi_dev *dev, uint16_t vring)
{
	struct vscsi_queue *q = &dev->q[vring];
	struct scsi_ctrl *c = dev->ctrl;
	struct rte_vhost_ring_inflight ri;
	struct rte_vhost_vring vr;
	uint16_t avail = 0, used = 0;

	if (dev->mem == NULL && rte_vhost_get_mem_table(dev->vid, &dev->mem) != 0) {
		VLOG_ERR("scsi %s: no guest memory table yet", c->conf.name);
		return -EINVAL;
	}
	if (rte_vhost_get_vhost_vring(dev->vid, vring, &vr) != 0 ||
		rte_vhost_get_vring_base(dev->vid, vring, &avail, &used) != 0) {
		VLOG_ERR("scsi %s: vring %u: not available", c->conf.name, vring);
		return -EINVAL;
	}
	if (vr.size == 0 || (vr.size & (vr.size - 1)) != 0 || vr.desc == NULL || vr.avail == NULL ||
		vr.used == NULL) {
		VLOG_ERR("scsi %s: vring %u: bad size %u or addresses", c->conf.name, vring,
			vr.size);
		return -EINVAL;
	}
	rte_vhost_get_negotiated_features(dev->vid, &dev->features);
	dev->log_on = (dev->features >> VHOST_F_LOG_ALL) & 1;
	if (q->tasks == NULL || q->vq.size != vr.size) {
		queue_free(q);
		q->tasks = rte_zmalloc_socket(
			"vscsi-tasks", sizeof(*q->tasks) * vr.size, 64, dev->numa);
		q->batch = calloc(VSCSI_BATCH_MAX(vr.size), sizeof(*q->batch));
		q->resubmit = calloc(vr.size, sizeof(*q->resubmit));
		if (q->tasks == NULL || q->batch == NULL || q->resubmit == NULL) {
			queue_free(q);
			VLOG_ERR("scsi %s: vring %u: out of memory", c->conf.name, vring);
			return -ENOMEM;
		}
	}
	for (uint16_t i = 0; i < vr.size; i++)
		q->tasks[i].q = q;
	virtq_init(&q->vq, &vr, dev->mem, avail, used, dev->features);
	q->kick_fd = vr.kickfd;
	/* We poll: spare the guest its kicks (re-armed by the interrupt mode). */
	virtq_set_notify(&q->vq, false);
	q->dev = dev;
	q->vring = vring;
	q->n_batch = 0;
	q->n_tmf = 0;
	q->n_resubmit = 0;
	q->inflight = 0;
	q->warned = false;
	q->call_pending = false;
	q->ctr = &c->qstats[vring >= VSCSI_REQQ0 ? vring - VSCSI_REQQ0 : 0];
	q->inflight_on = false;
	if (rte_vhost_get_vhost_ring_inflight(dev->vid, vring, &ri) == 0 &&
		ri.inflight_split != NULL) {
		struct rte_vhost_resubmit_info *rs = ri.resubmit_inflight;

		q->inflight_on = true;
		/*
		 * rte_vhost computes the resubmit list at SET_VRING_KICK and keeps
		 * it: use it only on the first start after a kick, or requests that
		 * completed since would run twice.
		 */
		if (q->fresh_kick && rs != NULL && rs->resubmit_num > 0 && vring >= VSCSI_REQQ0) {
			uint16_t n = rs->resubmit_num < vr.size ? rs->resubmit_num : vr.size;

			qsort(rs->resubmit_list, n, sizeof(rs->resubmit_list[0]), cmp_resubmit);
			for (uint16_t i = 0; i < n; i++)
				q->resubmit[i] = rs->resubmit_list[i].index;
			q->n_resubmit = n;
			VLOG_INFO("scsi %s: queue %u: resubmitting %u requests in flight before "
				  "the reconnect",
				c->conf.name, vring - VSCSI_REQQ0, n);
		}
	}
	q->fresh_kick = false;
	q->started = true;
	__atomic_store_n(&q->state, VQ_RUNNING, __ATOMIC_RELEASE);
	c->vring_ready |= 1ULL << vring;
	return 0;
}

/* Stop one vring: no new requests, wait for in-flight ones, forget it. */
static void
queue_stop(struct vhost_scsi_dev *dev, uint16_t vring)
{
	struct vscsi_queue *q = &dev->q[vring];
	struct scsi_ctrl *c = dev->ctrl;
	unsigned int waited = 0;

	if (!q->started)
		return;
	__atomic_store_n(&q->state, VQ_DRAINING, __ATOMIC_RELEASE);
	/* The PMD keeps reaping completions (its io_uring) while we wait. */
	while (__atomic_load_n(&q->inflight, __ATOMIC_ACQUIRE) > 0 &&
		waited < VSCSI_DRAIN_TIMEOUT_MS) {
		dp_sleep_ms(1);
		waited++;
	}
	if (q->inflight > 0)
		VLOG_ERR("scsi %s: vring %u: %u requests still in flight after %u ms", c->conf.name,
			vring, q->inflight, waited);
	q->started = false;
	c->vring_ready &= ~(1ULL << vring);
	dp_publish();
	dp_wait_grace();
	__atomic_store_n(&q->state, VQ_STOPPED, __ATOMIC_RELEASE);
	/* GET_VRING_BASE answers with rte_vhost's copy: make it ours. */
	rte_vhost_set_vring_base(dev->vid, vring, q->vq.last_avail_idx, q->vq.last_used_idx);
}

static void
dev_stop_all(struct vhost_scsi_dev *dev)
{
	for (uint16_t r = 0; r < VSCSI_MAX_VRINGS; r++)
		queue_stop(dev, r);
}

static void deliver_events(struct vhost_scsi_dev *dev);

/* Start what the frontend made ready, stop what it took away; dp_lock held. */
static void
dev_sync_queues(struct vhost_scsi_dev *dev)
{
	uint64_t bits = __atomic_load_n(&ready_bits[dev->vid], __ATOMIC_ACQUIRE);
	bool changed = false;

	for (uint16_t r = 0; r < VSCSI_MAX_VRINGS; r++) {
		bool want = (bits >> r) & 1;
		struct vscsi_queue *q = &dev->q[r];

		if (want && !q->started && q->state != VQ_BROKEN) {
			if (queue_start(dev, r) == 0)
				changed = true;
		} else if (!want && q->started) {
			queue_stop(dev, r);
		}
	}
	if (changed) {
		dp_publish();
		deliver_events(dev);
	}
}

void
vhost_scsi_quiesce(bool stop)
{
	for (unsigned int i = 0; i < DP_MAX_SCSI; i++) {
		struct scsi_ctrl *c = dp.scsi[i];
		struct vhost_scsi_dev *dev = c != NULL ? c->dev : NULL;

		if (dev == NULL)
			continue;
		if (stop) {
			/* Keep what the frontend made ready; only we stop polling. */
			dev->paused_bits =
				__atomic_exchange_n(&ready_bits[dev->vid], 0, __ATOMIC_ACQ_REL);
			dev_stop_all(dev);
			for (int q = 0; q < DP_MAX_QUEUES; q++)
				c->rxq_pmd[q] = DP_NONE;
		} else {
			__atomic_fetch_or(
				&ready_bits[dev->vid], dev->paused_bits, __ATOMIC_RELEASE);
			dev->paused_bits = 0;
			dev_sync_queues(dev);
		}
	}
}

void
vhost_scsi_pause(struct scsi_ctrl *c, uint64_t vrings)
{
	struct vhost_scsi_dev *dev = c->dev;
	uint64_t had;

	if (dev == NULL)
		return;
	/* Like vhost_scsi_quiesce(), for some vrings of one controller. */
	had = __atomic_fetch_and(&ready_bits[dev->vid], ~vrings, __ATOMIC_ACQ_REL);
	dev->paused_bits |= had & vrings;
	for (uint16_t r = 0; r < VSCSI_MAX_VRINGS; r++)
		if ((vrings >> r) & 1)
			queue_stop(dev, r);
}

void
vhost_scsi_resume(struct scsi_ctrl *c)
{
	struct vhost_scsi_dev *dev = c->dev;

	if (dev == NULL || dev->paused_bits == 0)
		return;
	__atomic_fetch_or(&ready_bits[dev->vid], dev->paused_bits, __ATOMIC_RELEASE);
	dev->paused_bits = 0;
	dev_sync_queues(dev);
}

uint64_t
vhost_scsi_started_vrings(const struct scsi_ctrl *c)
{
	return c->dev != NULL ? c->vring_ready : 0;
}

uint32_t
vhost_scsi_queue_inflight(const struct scsi_ctrl *c, uint16_t q)
{
	if (c->dev == NULL || q >= DP_MAX_QUEUES)
		return 0;
	return __atomic_load_n(&c->dev->q[VSCSI_REQQ0 + q].inflight, __ATOMIC_RELAXED);
}

bool
vhost_scsi_lun_busy(const struct scsi_ctrl *c, const struct lun *l)
{
	const struct vhost_scsi_dev *dev = c->dev;

	if (dev == NULL)
		return false;
	for (unsigned int r = VSCSI_REQQ0; r < VSCSI_MAX_VRINGS; r++) {
		const struct vscsi_queue *q = &dev->q[r];

		if (q->tasks == NULL)
			continue;
		for (unsigned int i = 0; i < q->vq.size; i++)
			if (__atomic_load_n(&q->tasks[i].busy, __ATOMIC_ACQUIRE) &&
				q->tasks[i].t.lun == l)
				return true;
	}
	return false;
}

/* ---- control side: hot-plug events ----------------------------------------- */

static bool
send_event(struct vhost_scsi_dev *dev, const struct vscsi_event *e)
{
	struct vscsi_queue *q = &dev->q[VSCSI_EVENTQ];
	struct virtio_scsi_event ev;
	struct virtq_chain *c;
	const char *why;
	uint16_t head;

	if (!q->started || q->state != VQ_RUNNING || !(dev->features >> VIRTIO_SCSI_F_HOTPLUG & 1))
		return false;
	if (virtq_pop(&q->vq, &head, 1) != 1)
		return false;
	c = &q->tasks[head].chain;
	if (virtq_map_chain(&q->vq, head, c, &why) < 0 || c->in_len < sizeof(ev)) {
		virtq_push(&q->vq, head, 0);
		virtq_flush(&q->vq);
		return false;
	}
	memset(&ev, 0, sizeof(ev));
	ev.event = e->event | (dev->events_missed ? VIRTIO_SCSI_T_EVENTS_MISSED : 0);
	ev.lun[0] = 1;
	ev.lun[1] = (uint8_t)e->target;
	/*
	 * Linux takes the event's LUN as lun[2] << 8 | lun[3] without masking
	 * the flat-space bit: set it only where a LUN needs it (>= 256), as QEMU.
	 */
	ev.lun[2] = e->lun_id >= 256 ? (uint8_t)(0x40 | (e->lun_id >> 8)) : 0;
	ev.lun[3] = (uint8_t)e->lun_id;
	ev.reason = e->reason;
	iov_copy_to(&c->iov[c->n_out], c->n_in, 0, &ev, sizeof(ev));
	if (dev->log_on)
		log_guest_write(dev, &c->iov[c->n_out], &c->gpa[c->n_out], c->n_in, sizeof(ev));
	dev->events_missed = false;
	virtq_push(&q->vq, head, sizeof(ev));
	if (virtq_flush(&q->vq))
		queue_call(q);
	return true;
}

static void
deliver_events(struct vhost_scsi_dev *dev)
{
	uint16_t done = 0;
	struct vscsi_queue *q = &dev->q[VSCSI_EVENTQ];

	if (q->call_pending && q->started)
		queue_call(q);
	while (done < dev->n_events && send_event(dev, &dev->events[done]))
		done++;
	memmove(dev->events, dev->events + done, (dev->n_events - done) * sizeof(dev->events[0]));
	dev->n_events -= done;
}

void
vhost_scsi_lun_event(struct scsi_ctrl *c, uint16_t target, uint16_t lun_id, bool added)
{
	struct vhost_scsi_dev *dev = c->dev;
	struct vscsi_event *e;

	if (dev == NULL)
		return;
	if (dev->n_events == VSCSI_MAX_EVENTS) {
		/* The guest rescans everything when it learns it missed events. */
		dev->events_missed = true;
		dev->n_events--;
	}
	e = &dev->events[dev->n_events++];
	e->event = VIRTIO_SCSI_T_TRANSPORT_RESET;
	e->reason = added ? VIRTIO_SCSI_EVT_RESET_RESCAN : VIRTIO_SCSI_EVT_RESET_REMOVED;
	e->target = target;
	e->lun_id = lun_id;
	deliver_events(dev);
}

void
vhost_scsi_tick(void)
{
	dp_lock();
	for (unsigned int i = 0; i < DP_MAX_SCSI; i++)
		if (dp.scsi[i] != NULL && dp.scsi[i]->dev != NULL)
			deliver_events(dp.scsi[i]->dev);
	dp_unlock();
}

/* ---- rte_vhost callbacks (event thread) ---------------------------------- */

int
vhost_scsi_event_fd(void)
{
	if (scsi_event_fd < 0)
		scsi_event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return scsi_event_fd;
}

void
vhost_scsi_handle_events(void)
{
	uint64_t n;

	if (read(scsi_event_fd, &n, sizeof(n)) != sizeof(n))
		return;
	dp_lock();
	for (unsigned int i = 0; i < DP_MAX_SCSI; i++)
		if (dp.scsi[i] != NULL && dp.scsi[i]->dev != NULL && !dp.scsi[i]->deleting)
			dev_sync_queues(dp.scsi[i]->dev);
	dp_unlock();
}

static void
wake_control_thread(void)
{
	uint64_t one = 1;

	if (write(vhost_scsi_event_fd(), &one, sizeof(one)) != sizeof(one))
		VLOG_WARN("scsi: cannot signal a vring state change");
}

static int
vring_state_changed(int vid, uint16_t vring, int enable)
{
	if (vid < 0 || vid >= VSCSI_MAX_VID || vring >= 64)
		return 0;
	if (enable)
		__atomic_fetch_or(&ready_bits[vid], 1ULL << vring, __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&ready_bits[vid], ~(1ULL << vring), __ATOMIC_RELEASE);
	wake_control_thread();
	return 0;
}

static void
fill_config(const struct scsi_ctrl *c, struct virtio_scsi_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->num_queues = c->conf.queues;
	cfg->seg_max = VSCSI_SEG_MAX;
	cfg->max_sectors = c->conf.max_sectors;
	cfg->cmd_per_lun = c->conf.cmd_per_lun;
	cfg->event_info_size = sizeof(struct virtio_scsi_event);
	cfg->sense_size = VIRTIO_SCSI_SENSE_DEFAULT_SIZE;
	cfg->cdb_size = VIRTIO_SCSI_CDB_DEFAULT_SIZE;
	cfg->max_channel = 0;
	cfg->max_target = DP_SCSI_MAX_TARGET;
	cfg->max_lun = DP_SCSI_MAX_LUN;
}

static uint32_t
vring_of_msg(const struct vu_msg *msg)
{
	/* SET_VRING_KICK carries the index in the low byte of its u64. */
	if (msg->request == VU_SET_VRING_KICK)
		return (uint32_t)(msg->payload.u64 & 0xff);
	return msg->payload.state.index;
}

static enum rte_vhost_msg_result
pre_msg(int vid, void *m)
{
	struct vu_msg *msg = m;
	struct vhost_scsi_dev *dev;
	enum rte_vhost_msg_result res = RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	uint32_t vring;

	dp_lock();
	dev = dev_of_vid(vid);
	if (dev == NULL)
		goto out;
	switch (msg->request) {
	case VU_GET_CONFIG: {
		struct virtio_scsi_config cfg;
		uint32_t off = msg->payload.cfg.offset, len = msg->payload.cfg.size;

		if (msg->size < VU_CONFIG_HDR || len > sizeof(msg->payload.cfg.region) ||
			off > sizeof(cfg) || len > sizeof(cfg) - off) {
			VLOG_WARN("scsi %s: bad GET_CONFIG (offset %u, size %u)",
				dev->ctrl->conf.name, off, len);
			res = RTE_VHOST_MSG_RESULT_ERR;
			break;
		}
		fill_config(dev->ctrl, &cfg);
		memcpy(msg->payload.cfg.region, (uint8_t *)&cfg + off, len);
		msg->size = VU_CONFIG_HDR + len;
		res = RTE_VHOST_MSG_RESULT_REPLY;
		break;
	}
	case VU_SET_CONFIG:
		/* sense_size/cdb_size changes: we keep the defaults (as QEMU does). */
		res = RTE_VHOST_MSG_RESULT_OK;
		break;
	case VU_SET_MEM_TABLE:
	case VU_RESET_OWNER:
		/* The mappings go away: stop everything, restart after. */
		dev->restart_bits = __atomic_load_n(&ready_bits[vid], __ATOMIC_ACQUIRE);
		__atomic_store_n(&ready_bits[vid], 0, __ATOMIC_RELEASE);
		dev_stop_all(dev);
		free(dev->mem);
		dev->mem = NULL;
		if (msg->request == VU_RESET_OWNER)
			dev->restart_bits = 0;
		break;
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_SET_VRING_ADDR:
	case VU_SET_VRING_KICK:
		/*
		 * A vring reconfigured or stopped must not be polled meanwhile.
		 * rte_vhost reports a change of readiness only after post_msg(),
		 * so a vring that stays ready gets its bit back there.
		 */
		vring = vring_of_msg(msg);
		if (vring < VSCSI_MAX_VRINGS) {
			uint64_t bit = 1ULL << vring;
			uint64_t old = __atomic_fetch_and(&ready_bits[vid], ~bit, __ATOMIC_ACQ_REL);

			if (msg->request != VU_GET_VRING_BASE)
				dev->restart_bits |= old & bit;
			queue_stop(dev, (uint16_t)vring);
			if (msg->request == VU_SET_VRING_KICK)
				dev->q[vring].fresh_kick = true;
		}
		break;
	default:
		break;
	}
out:
	dp_unlock();
	return res;
}

static enum rte_vhost_msg_result
post_msg(int vid, void *m)
{
	struct vu_msg *msg = m;
	struct vhost_scsi_dev *dev;

	dp_lock();
	dev = dev_of_vid(vid);
	if (dev == NULL)
		goto out;
	switch (msg->request) {
	case VU_SET_MEM_TABLE:
		if (dev->restart_bits != 0) {
			__atomic_fetch_or(&ready_bits[vid], dev->restart_bits, __ATOMIC_RELEASE);
			dev->restart_bits = 0;
			wake_control_thread();
		}
		break;
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_SET_VRING_ADDR:
	case VU_SET_VRING_KICK: {
		uint32_t vring = vring_of_msg(msg);

		if (vring < VSCSI_MAX_VRINGS && (dev->restart_bits >> vring & 1)) {
			dev->restart_bits &= ~(1ULL << vring);
			__atomic_fetch_or(&ready_bits[vid], 1ULL << vring, __ATOMIC_RELEASE);
			wake_control_thread();
		}
		break;
	}
	case VU_SET_FEATURES:
		/* VHOST_F_LOG_ALL comes and goes with live migration. */
		rte_vhost_get_negotiated_features(vid, &dev->features);
		__atomic_store_n(
			&dev->log_on, (dev->features >> VHOST_F_LOG_ALL) & 1, __ATOMIC_RELEASE);
		break;
	default:
		break;
	}
out:
	dp_unlock();
	return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

/* Free @dev once no PMD can see it (c->dev already cleared); dp_lock held. */
static void
dev_forget(struct vhost_scsi_dev *dev)
{
	dp_publish();
	dp_wait_grace();
	for (uint16_t r = 0; r < VSCSI_MAX_VRINGS; r++)
		queue_free(&dev->q[r]);
	free(dev->mem);
	free(dev);
}

static const struct rte_vhost_user_extern_ops extern_ops = {
	.pre_msg_handle = pre_msg,
	.post_msg_handle = post_msg,
};

static int
new_connection(int vid)
{
	struct scsi_ctrl *c;
	struct vhost_scsi_dev *dev;
	int rc = -1;

	if (vid < 0 || vid >= VSCSI_MAX_VID)
		return -1;
	__atomic_store_n(&ready_bits[vid], 0, __ATOMIC_RELEASE);
	dp_lock();
	c = ctrl_of_vid(vid);
	if (c == NULL || c->deleting || c->dev != NULL)
		goto out;
	dev = calloc(1, sizeof(*dev));
	if (dev == NULL)
		goto out;
	dev->ctrl = c;
	dev->vid = vid;
	dev->numa = rte_vhost_get_numa_node(vid);
	if (dev->numa < 0)
		dev->numa = SOCKET_ID_ANY;
	if (rte_vhost_extern_callback_register(vid, &extern_ops, NULL) != 0) {
		VLOG_ERR("scsi %s: cannot hook the vhost-user messages", c->conf.name);
		free(dev);
		goto out;
	}
	c->dev = dev;
	c->vid = vid;
	c->broken = false;
	c->connects++;
	VLOG_INFO("scsi %s: frontend connected (vid %d)", c->conf.name, vid);
	dp_publish();
	rc = 0;
out:
	dp_unlock();
	return rc;
}

static void
destroy_connection(int vid)
{
	struct vhost_scsi_dev *dev;
	struct scsi_ctrl *c;

	dp_lock();
	dev = dev_of_vid(vid);
	if (dev != NULL) {
		c = dev->ctrl;
		dev_stop_all(dev);
		c->dev = NULL;
		c->vid = -1;
		c->nr_vring = 0;
		c->vring_ready = 0;
		c->disconnects++;
		dev_forget(dev);
		VLOG_INFO("scsi %s: frontend disconnected", c->conf.name);
	}
	if (vid >= 0 && vid < VSCSI_MAX_VID)
		__atomic_store_n(&ready_bits[vid], 0, __ATOMIC_RELEASE);
	dp_unlock();
}

static int
new_device(int vid)
{
	struct vhost_scsi_dev *dev;

	dp_lock();
	dev = dev_of_vid(vid);
	if (dev != NULL) {
		rte_vhost_get_negotiated_features(vid, &dev->features);
		dev->nr_vring = rte_vhost_get_vring_num(vid);
		dev->ctrl->nr_vring = dev->nr_vring;
		dev->ctrl->features = dev->features;
		VLOG_INFO("scsi %s: device ready (%u vrings, features 0x%" PRIx64 ")",
			dev->ctrl->conf.name, dev->nr_vring, dev->features);
		dev_sync_queues(dev);
	}
	dp_unlock();
	return dev != NULL ? 0 : -1;
}

static void
destroy_device(int vid)
{
	struct vhost_scsi_dev *dev;

	dp_lock();
	dev = dev_of_vid(vid);
	if (dev != NULL)
		dev_stop_all(dev);
	dp_unlock();
}

static const struct rte_vhost_device_ops scsi_ops = {
	.new_device = new_device,
	.destroy_device = destroy_device,
	.vring_state_changed = vring_state_changed,
	.new_connection = new_connection,
	.destroy_connection = destroy_connection,
};

int
vhost_scsi_start(struct scsi_ctrl *c, char *err, size_t errlen)
{
	const char *path = c->conf.socket;
	uint64_t flags = c->conf.client ? RTE_VHOST_USER_CLIENT : 0;
	uint64_t pf = 0;
	int rc;

	rc = fs_prepare_socket(path, c->conf.client, err, errlen);
	if (rc < 0)
		return rc;
	if (rte_vhost_driver_register(path, flags) != 0) {
		snprintf(err, errlen, "rte_vhost cannot register %s (see the log above)", path);
		return -EINVAL;
	}
	if (rte_vhost_driver_set_features(path, VSCSI_FEATURES) != 0 ||
		rte_vhost_driver_get_protocol_features(path, &pf) != 0 ||
		rte_vhost_driver_set_protocol_features(
			path, pf | (1ULL << VHOST_USER_PROTOCOL_F_CONFIG) |
				      (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)) != 0 ||
		rte_vhost_driver_callback_register(path, &scsi_ops) != 0) {
		snprintf(err, errlen, "rte_vhost rejected the settings of %s", path);
		rte_vhost_driver_unregister(path);
		return -EINVAL;
	}
	if (rte_vhost_driver_start(path) != 0) {
		snprintf(err, errlen, "cannot %s %s (see the log above)",
			c->conf.client ? "connect to" : "listen on", path);
		rte_vhost_driver_unregister(path);
		return -EADDRINUSE;
	}
	if (!c->conf.client)
		chmod(path, 0660);
	return 0;
}

void
vhost_scsi_stop(struct scsi_ctrl *c)
{
	const char *path = c->conf.socket;

	/* Quiesce first: unregistering unmaps the guest memory. */
	dp_lock();
	if (c->dev != NULL)
		dev_stop_all(c->dev);
	dp_unlock();
	if (rte_vhost_driver_unregister(path) != 0)
		VLOG_WARN("scsi %s: rte_vhost could not unregister %s", c->conf.name, path);
	/* A connection rte_vhost closed without telling us: forget it now. */
	dp_lock();
	if (c->dev != NULL) {
		struct vhost_scsi_dev *dev = c->dev;

		c->dev = NULL;
		c->vid = -1;
		c->disconnects++;
		dev_forget(dev);
		VLOG_INFO("scsi %s: frontend disconnected (controller removed)", c->conf.name);
	}
	dp_unlock();
	if (!c->conf.client)
		unlink(path);
}
