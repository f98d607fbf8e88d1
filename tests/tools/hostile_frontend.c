/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hostile-frontend: a vhost-user frontend (on tests/tools/vhost_user_frontend) that plays a
 * malicious or broken guest driver: it sets a device up like a normal driver, then writes
 * malformed descriptors and ring indexes through the public ring pointers and reports what the
 * backend did with them. Used by tests/integration/test_reliability.py.
 *
 *   hostile-frontend --socket PATH --type scsi|net --scenario NAME[,NAME...]
 *                    [--wait-ms N] [--hold-ms N] [--good] [--list]
 *
 * One JSON line per scenario on stdout:
 *   {"scenario":"loop","heads":1,"completed":1,"used_len":0,"response":-1}
 * completed: used entries the backend returned for the scenario's heads within --wait-ms
 * (default 300); used_len: len of the first of them; response: virtio-scsi response byte of
 * the first one (-1 when not applicable or not completed).
 * --good: after the scenarios, a well-formed TEST UNIT READY (scsi) on the same queue:
 *   {"scenario":"good","heads":1,"completed":1,"used_len":108,"response":0}
 * --hold-ms: stay connected that long before closing (the test inspects the daemon meanwhile).
 *
 * scsi scenarios (request queue 0; LUN 0:0 must exist, a file LUN for "double-head"):
 *   loop, oob-addr, indirect-in-indirect, huge-len, read-after-write, short-header,
 *   next-out-of-range, indirect-bad-len, no-response  -> bad chain: completed, used len 0
 *   bad-lun, bad-target                               -> completed, response BAD_TARGET (3)
 *   avail-jump, double-head, head-out-of-range        -> the queue is broken (nothing back)
 * net scenarios (tx queue 1 unless noted): oob-addr, loop, zero-len, big-frame (68 KiB in 17
 *   segments), huge-len, indirect-in-indirect, avail-jump, rx-bad (rx queue 0: descriptors
 *   outside guest memory, zero length, a loop)
 *
 * noop (both types): set the device up, offer nothing, close (connect/disconnect loops).
 *
 * Exit status: 0 when every scenario ran (whatever the backend did), 2 on setup failure.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/virtio_scsi.h>

#include "vhost_user_frontend.h"

#define EXIT_SETUP 2
#define SLOT 32 /* descriptors reserved per scenario */
#define REQ_SIZE sizeof(struct virtio_scsi_cmd_req)
#define RESP_SIZE sizeof(struct virtio_scsi_cmd_resp)

enum dev_type { T_SCSI, T_NET };

struct hf {
	struct vuf_dev *dev;
	enum dev_type type;
	struct vuf_vq *vq; /* the queue under attack */
	uint16_t last_used;
	unsigned int slot; /* next free slot of SLOT descriptors */
	uint8_t *buf;      /* scratch data area in guest memory */
	uint64_t buf_gpa;
	size_t buf_off;
	int wait_ms;
};

struct result {
	unsigned int heads;
	int completed;
	int64_t used_len;
	int response;
};

static uint64_t
now_ms(void)
{
	return vuf_now_ns() / 1000000;
}

/* Scratch memory in the guest region (never reused: results stay inspectable). */
static uint64_t
galloc(struct hf *h, size_t len, void **va)
{
	size_t off = (h->buf_off + 63) & ~(size_t)63;

	if (off + len > (8u << 20)) {
		fprintf(stderr, "scratch area exhausted\n");
		exit(EXIT_SETUP);
	}
	h->buf_off = off + len;
	if (va != NULL)
		*va = h->buf + off;
	memset(h->buf + off, 0, len);
	return h->buf_gpa + off;
}

static uint16_t
slot_base(struct hf *h)
{
	uint16_t base = (uint16_t)(h->slot * SLOT);

	h->slot++;
	if (base + SLOT > h->vq->num) {
		fprintf(stderr, "ring too small for that many scenarios\n");
		exit(EXIT_SETUP);
	}
	return base;
}

static void
set_desc(struct vuf_vq *vq, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
	uint16_t next)
{
	vq->desc[i].addr = addr;
	vq->desc[i].len = len;
	vq->desc[i].flags = flags;
	vq->desc[i].next = next;
}

/* Offer heads (raw avail ring writes), publish avail->idx, kick. */
static void
offer(struct vuf_vq *vq, const uint16_t *heads, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		vq->avail->ring[vq->avail_idx & (vq->num - 1)] = heads[i];
		vq->avail_idx++;
	}
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	vq->kicked_idx = vq->avail_idx;
	vuf_vq_notify(vq);
}

/* Collect used entries for up to wait_ms (or until @want arrived). */
static void
collect(struct hf *h, struct result *r, unsigned int want, const void *resp)
{
	uint64_t deadline = now_ms() + (uint64_t)h->wait_ms;

	r->completed = 0;
	r->used_len = -1;
	r->response = -1;
	for (;;) {
		uint16_t idx = __atomic_load_n(&h->vq->used->idx, __ATOMIC_ACQUIRE);

		while (h->last_used != idx) {
			struct vring_used_elem *e =
				&h->vq->used->ring[h->last_used & (h->vq->num - 1)];

			if (r->completed == 0) {
				r->used_len = e->len;
				if (resp != NULL && e->len >= 1)
					r->response =
						((const struct virtio_scsi_cmd_resp *)resp)->response;
			}
			r->completed++;
			h->last_used++;
		}
		if ((unsigned int)r->completed >= want || now_ms() >= deadline)
			break;
		usleep(1000);
	}
}

/* avail->idx more than the ring size ahead of what the device took (ring entries: 0) */
static void
avail_jump(struct hf *h, struct result *r, const void *resp)
{
	struct vuf_vq *vq = h->vq;

	vq->avail_idx = (uint16_t)(vq->avail_idx + vq->num + 5);
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	vuf_vq_notify(vq);
	r->heads = 0;
	collect(h, r, 1, resp);
}

/* A well-formed SCSI command header (LUN target:lun, CDB) in guest memory. */
static uint64_t
scsi_req(struct hf *h, uint8_t lun0, uint8_t target, const uint8_t *cdb, size_t cdb_len)
{
	struct virtio_scsi_cmd_req *q;
	uint64_t gpa = galloc(h, REQ_SIZE, (void **)&q);

	q->lun[0] = lun0;
	q->lun[1] = target;
	q->lun[2] = 0x40;
	q->lun[3] = 0;
	q->tag = 0x1234;
	memcpy(q->cdb, cdb, cdb_len);
	return gpa;
}

static const uint8_t TUR[6] = {0};
static const uint8_t READ10_8[10] = {0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0};

/* ---- scsi scenarios: each builds one or more chains and offers them ---- */

static void
scsi_scenario(struct hf *h, const char *name, struct result *r)
{
	struct vuf_vq *vq = h->vq;
	uint16_t b = slot_base(h), heads[4] = {b};
	uint64_t mem_end = h->dev->gpa_base + h->dev->mem_size;
	unsigned int n = 1, want = 1;
	void *resp = NULL;
	uint64_t rq = scsi_req(h, 1, 0, TUR, sizeof(TUR));
	uint64_t rs = galloc(h, RESP_SIZE, &resp);

	if (strcmp(name, "loop") == 0) {
		set_desc(vq, b, rq, REQ_SIZE, VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, rs, RESP_SIZE, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, b);
	} else if (strcmp(name, "oob-addr") == 0) {
		set_desc(vq, b, mem_end + (1 << 20), REQ_SIZE, VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, rs, RESP_SIZE, VRING_DESC_F_WRITE, 0);
	} else if (strcmp(name, "indirect-in-indirect") == 0) {
		struct vring_desc *t1, *t2;
		uint64_t g1 = galloc(h, 2 * 16, (void **)&t1), g2 = galloc(h, 2 * 16, (void **)&t2);

		t2[0] = (struct vring_desc){rq, REQ_SIZE, VRING_DESC_F_NEXT, 1};
		t2[1] = (struct vring_desc){rs, RESP_SIZE, VRING_DESC_F_WRITE, 0};
		t1[0] = (struct vring_desc){g2, 32, VRING_DESC_F_INDIRECT, 0};
		set_desc(vq, b, g1, 16, VRING_DESC_F_INDIRECT, 0);
	} else if (strcmp(name, "indirect-bad-len") == 0) {
		void *t;
		uint64_t g = galloc(h, 64, &t);

		set_desc(vq, b, g, 17, VRING_DESC_F_INDIRECT, 0);
	} else if (strcmp(name, "huge-len") == 0) {
		set_desc(vq, b, rq, 0xffffffffu, VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, rs, RESP_SIZE, VRING_DESC_F_WRITE, 0);
	} else if (strcmp(name, "read-after-write") == 0) {
		set_desc(vq, b, rs, RESP_SIZE, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, rq, REQ_SIZE, 0, 0);
	} else if (strcmp(name, "short-header") == 0) {
		set_desc(vq, b, rq, 10, VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, rs, RESP_SIZE, VRING_DESC_F_WRITE, 0);
	} else if (strcmp(name, "no-response") == 0) {
		set_desc(vq, b, rq, REQ_SIZE, 0, 0);
	} else if (strcmp(name, "next-out-of-range") == 0) {
		set_desc(vq, b, rq, REQ_SIZE, VRING_DESC_F_NEXT, (uint16_t)(vq->num + 7));
	} else if (strcmp(name, "bad-lun") == 0 || strcmp(name, "bad-target") == 0) {
		rq = strcmp(name, "bad-lun") == 0 ? scsi_req(h, 0x02, 0, TUR, sizeof(TUR))
						  : scsi_req(h, 1, 200, TUR, sizeof(TUR));
		set_desc(vq, b, rq, REQ_SIZE, VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, rs, RESP_SIZE, VRING_DESC_F_WRITE, 0);
	} else if (strcmp(name, "good") == 0) {
		set_desc(vq, b, rq, REQ_SIZE, VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, rs, RESP_SIZE, VRING_DESC_F_WRITE, 0);
	} else if (strcmp(name, "double-head") == 0) {
		/* A READ on a file LUN (asynchronous: still in flight) offered twice. */
		uint64_t data = galloc(h, 4096 * 8, NULL);

		rq = scsi_req(h, 1, 0, READ10_8, sizeof(READ10_8));
		set_desc(vq, b, rq, REQ_SIZE, VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, rs, RESP_SIZE, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, b + 2);
		set_desc(vq, b + 2, data, 4096 * 8, VRING_DESC_F_WRITE, 0);
		heads[1] = b;
		n = 2;
		want = 2;
	} else if (strcmp(name, "head-out-of-range") == 0) {
		heads[0] = (uint16_t)(vq->num + 3);
	} else if (strcmp(name, "avail-jump") == 0) {
		set_desc(vq, b, rq, REQ_SIZE, VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, rs, RESP_SIZE, VRING_DESC_F_WRITE, 0);
		return avail_jump(h, r, resp);
	} else {
		fprintf(stderr, "unknown scsi scenario %s\n", name);
		exit(EXIT_SETUP);
	}
	offer(vq, heads, n);
	r->heads = n;
	collect(h, r, want, resp);
}

/* ---- net scenarios ---- */

static void
net_scenario(struct hf *h, const char *name, struct result *r)
{
	struct vuf_vq *vq = h->vq;
	uint16_t b = slot_base(h), heads[1] = {b};
	uint64_t mem_end = h->dev->gpa_base + h->dev->mem_size;
	uint8_t *frame;
	uint64_t fg = galloc(h, 2048, (void **)&frame);

	/* virtio-net header (12 bytes, zero) then a broadcast IPv4-typed frame: receivers
	 * count it as "other", apart from their test frames */
	memset(frame + 12, 0xff, 6);
	frame[18] = 0x02;
	frame[12 + 12] = 0x08;
	frame[12 + 13] = 0x00;
	if (strcmp(name, "oob-addr") == 0) {
		set_desc(vq, b, mem_end + (4 << 20), 12 + 64, 0, 0);
	} else if (strcmp(name, "loop") == 0) {
		set_desc(vq, b, fg, 12, VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, fg + 12, 64, VRING_DESC_F_NEXT, b);
	} else if (strcmp(name, "zero-len") == 0) {
		set_desc(vq, b, fg, 0, VRING_DESC_F_NEXT, b + 1);
		set_desc(vq, b + 1, fg, 0, 0, 0);
	} else if (strcmp(name, "big-frame") == 0) {
		/* 68 KiB + header in 17 segments of 4 KiB: more than any MTU */
		uint8_t *big;
		uint64_t bg = galloc(h, 17 * 4096, (void **)&big);

		memcpy(big, frame, 12 + 14);
		set_desc(vq, b, bg, 12, VRING_DESC_F_NEXT, b + 1);
		for (uint16_t i = 0; i < 17; i++)
			set_desc(vq, b + 1 + i, bg + 12 + (uint64_t)i * 4000, 4000,
				i < 16 ? VRING_DESC_F_NEXT : 0, b + 2 + i);
	} else if (strcmp(name, "huge-len") == 0) {
		set_desc(vq, b, fg, 0xffffffffu, 0, 0);
	} else if (strcmp(name, "indirect-in-indirect") == 0) {
		struct vring_desc *t1, *t2;
		uint64_t g1 = galloc(h, 16, (void **)&t1), g2 = galloc(h, 16, (void **)&t2);

		t2[0] = (struct vring_desc){fg, 12 + 64, 0, 0};
		t1[0] = (struct vring_desc){g2, 16, VRING_DESC_F_INDIRECT, 0};
		set_desc(vq, b, g1, 16, VRING_DESC_F_INDIRECT, 0);
	} else if (strcmp(name, "avail-jump") == 0) {
		set_desc(vq, b, fg, 12 + 64, 0, 0);
		return avail_jump(h, r, NULL);
	} else if (strcmp(name, "rx-bad") == 0) {
		/* receive buffers the device must not write: outside memory, empty, a loop */
		struct vuf_vq *rx = &h->dev->vq[0];
		uint16_t rh[3] = {b, b + 1, b + 2};

		set_desc(rx, b, mem_end + (8 << 20), 2048, VRING_DESC_F_WRITE, 0);
		set_desc(rx, b + 1, fg, 0, VRING_DESC_F_WRITE, 0);
		set_desc(rx, b + 2, fg, 1024, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, b + 3);
		set_desc(rx, b + 3, fg + 1024, 1024, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
			b + 2);
		offer(rx, rh, 3);
		r->heads = 3;
		h->vq = rx;
		h->last_used = __atomic_load_n(&rx->used->idx, __ATOMIC_ACQUIRE);
		collect(h, r, 3, NULL);
		h->vq = vq;
		return;
	} else {
		fprintf(stderr, "unknown net scenario %s\n", name);
		exit(EXIT_SETUP);
	}
	offer(vq, heads, 1);
	r->heads = 1;
	collect(h, r, 1, NULL);
}

static void
usage(void)
{
	fprintf(stderr, "usage: hostile-frontend --socket PATH --type scsi|net --scenario "
			"NAME[,NAME...] [--wait-ms N] [--hold-ms N] [--good]\n");
	exit(EXIT_SETUP);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {{"socket", required_argument, NULL, 's'},
		{"type", required_argument, NULL, 't'}, {"scenario", required_argument, NULL, 'c'},
		{"wait-ms", required_argument, NULL, 'w'}, {"hold-ms", required_argument, NULL, 'H'},
		{"good", no_argument, NULL, 'g'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct vuf_opts o = VUF_OPTS_DEFAULT;
	struct hf h = {.type = T_SCSI, .wait_ms = 300};
	const char *sock = NULL, *scen = NULL;
	bool good = false;
	int hold_ms = 0, ch, rc;
	unsigned int nvq;
	char *list, *tok, *save;

	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		case 't':
			if (strcmp(optarg, "scsi") == 0)
				h.type = T_SCSI;
			else if (strcmp(optarg, "net") == 0)
				h.type = T_NET;
			else
				usage();
			break;
		case 'c':
			scen = optarg;
			break;
		case 'w':
			h.wait_ms = atoi(optarg);
			break;
		case 'H':
			hold_ms = atoi(optarg);
			break;
		case 'g':
			good = true;
			break;
		default:
			usage();
		}
	}
	if (sock == NULL || scen == NULL)
		usage();
	o.path = sock;
	o.features |= 1ULL << VUF_F_INDIRECT_DESC;
	o.vq_size = 512;
	o.mem_size = 32UL << 20;
	rc = vuf_connect(&h.dev, &o);
	if (rc < 0) {
		fprintf(stderr, "connect %s: %s\n", sock, vuf_strerror(h.dev));
		return EXIT_SETUP;
	}
	if (h.type == T_SCSI) {
		struct virtio_scsi_config cfg;

		memset(&cfg, 0, sizeof(cfg));
		if (vuf_get_config(h.dev, 0, &cfg, sizeof(cfg)) < 0 || cfg.num_queues == 0)
			cfg.num_queues = 1;
		nvq = 2 + cfg.num_queues;
	} else {
		nvq = 2;
	}
	rc = vuf_start(h.dev, nvq);
	if (rc < 0) {
		fprintf(stderr, "start: %s\n", vuf_strerror(h.dev));
		return EXIT_SETUP;
	}
	h.buf = vuf_alloc(h.dev, 8u << 20, 4096, &h.buf_gpa);
	if (h.buf == NULL) {
		fprintf(stderr, "%s\n", vuf_strerror(h.dev));
		return EXIT_SETUP;
	}
	/* scsi: request queue 0; net: the tx queue of pair 0 */
	h.vq = &h.dev->vq[h.type == T_SCSI ? 2 : 1];
	/* let the backend start polling the rings */
	usleep(200000);
	list = strdup(scen);
	for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		struct result r = {0};

		if (strcmp(tok, "noop") == 0)
			r.response = -1; /* connect, set up, close: for leak loops */
		else if (h.type == T_SCSI)
			scsi_scenario(&h, tok, &r);
		else
			net_scenario(&h, tok, &r);
		printf("{\"scenario\":\"%s\",\"heads\":%u,\"completed\":%d,\"used_len\":%lld,"
		       "\"response\":%d}\n",
			tok, r.heads, r.completed, (long long)r.used_len, r.response);
		fflush(stdout);
	}
	free(list);
	if (good && h.type == T_SCSI) {
		struct result r = {0};

		scsi_scenario(&h, "good", &r);
		printf("{\"scenario\":\"good\",\"heads\":%u,\"completed\":%d,\"used_len\":%lld,"
		       "\"response\":%d}\n",
			r.heads, r.completed, (long long)r.used_len, r.response);
		fflush(stdout);
	}
	if (hold_ms > 0) {
		printf("{\"holding\":%d}\n", hold_ms);
		fflush(stdout);
		usleep((useconds_t)hold_ms * 1000);
	}
	vuf_close(h.dev);
	return 0;
}
