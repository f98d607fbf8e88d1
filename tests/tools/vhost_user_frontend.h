/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost_user_frontend: a minimal vhost-user frontend (the "driver" / QEMU side) for tests and
 * benchmarks. Plain C + libc, no DPDK.
 *
 * It owns one shared memory region (memfd, hugetlb when possible) that plays the role of guest
 * RAM: the split virtqueues and every data buffer live inside it, and the backend sees it through
 * SET_MEM_TABLE. Buffers are named by guest physical address (gpa).
 *
 * Every function that can fail returns 0 / a non-negative value on success and a negative errno
 * on failure; the failure is also described in vuf_dev::err (read it with vuf_strerror()).
 *
 * Typical use:
 *	struct vuf_opts o = VUF_OPTS_DEFAULT;
 *	o.path = "/tmp/sock"; o.features = ...;
 *	vuf_connect(&dev, &o);            // socket + GET/SET_FEATURES + protocol features + queue
 *num vuf_get_config(dev, 0, buf, n);   // optional, VHOST_USER_PROTOCOL_F_CONFIG vuf_start(dev,
 *nq);               // mem table + rings, all enabled
 *	... vuf_vq_add() / vuf_vq_kick() / vuf_vq_poll() ...
 *	vuf_close(dev);                   // GET_VRING_BASE on each ring, unmap, close
 */
#ifndef VHOST_USER_FRONTEND_H
#define VHOST_USER_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_ring.h>

#ifdef __cplusplus
extern "C" {
#endif

/* vhost-user requests (QEMU docs/interop/vhost-user.rst) */
enum vuf_request {
	VUF_GET_FEATURES = 1,
	VUF_SET_FEATURES = 2,
	VUF_SET_OWNER = 3,
	VUF_RESET_OWNER = 4,
	VUF_SET_MEM_TABLE = 5,
	VUF_SET_LOG_BASE = 6,
	VUF_SET_LOG_FD = 7,
	VUF_SET_VRING_NUM = 8,
	VUF_SET_VRING_ADDR = 9,
	VUF_SET_VRING_BASE = 10,
	VUF_GET_VRING_BASE = 11,
	VUF_SET_VRING_KICK = 12,
	VUF_SET_VRING_CALL = 13,
	VUF_SET_VRING_ERR = 14,
	VUF_GET_PROTOCOL_FEATURES = 15,
	VUF_SET_PROTOCOL_FEATURES = 16,
	VUF_GET_QUEUE_NUM = 17,
	VUF_SET_VRING_ENABLE = 18,
	VUF_GET_CONFIG = 24,
	VUF_SET_CONFIG = 25,
	VUF_GET_INFLIGHT_FD = 31,
	VUF_SET_INFLIGHT_FD = 32,
};

/* protocol feature bits */
#define VUF_PROTO_F_MQ 0
#define VUF_PROTO_F_REPLY_ACK 3
#define VUF_PROTO_F_CONFIG 9
#define VUF_PROTO_F_INFLIGHT_SHMFD 12

/* virtio feature bits used by this library */
#define VUF_F_INDIRECT_DESC 28
#define VUF_F_EVENT_IDX 29
#define VUF_F_PROTOCOL_FEATURES 30 /* VHOST_USER_F_PROTOCOL_FEATURES */
#define VUF_F_VERSION_1 32

#define VUF_MAX_QUEUES 64
#define VUF_ERRLEN 256

struct vuf_opts {
	const char *path;       /* unix socket path */
	bool server;            /* listen on path and accept one backend (backend in client mode) */
	int connect_timeout_ms; /* client: retry ENOENT/ECONNREFUSED this long; server: accept wait
				 */
	uint64_t features;      /* virtio features we offer; intersected with the backend's */
	uint64_t proto_features; /* protocol features we want; intersected with the backend's */
	size_t mem_size;         /* shared region size (rounded up to 2 MiB) */
	uint64_t gpa_base;       /* guest physical address of the region's first byte */
	bool no_hugetlb;         /* force a plain memfd */
	uint16_t vq_size;        /* ring size of every queue (power of two) */
	uint16_t indirect_max;   /* >0: per-head indirect tables of that many entries */
	bool inflight;           /* GET/SET_INFLIGHT_FD if INFLIGHT_SHMFD was negotiated */
};

#define VUF_OPTS_DEFAULT                                                                           \
	{                                                                                          \
		.path = NULL, .server = false, .connect_timeout_ms = 5000,                         \
		.features = (1ULL << VUF_F_VERSION_1) | (1ULL << VUF_F_PROTOCOL_FEATURES),         \
		.proto_features = (1ULL << VUF_PROTO_F_MQ) | (1ULL << VUF_PROTO_F_REPLY_ACK) |     \
				  (1ULL << VUF_PROTO_F_CONFIG),                                    \
		.mem_size = 64UL << 20, .gpa_base = 1ULL << 30, .no_hugetlb = false,               \
		.vq_size = 256, .indirect_max = 0, .inflight = false,                              \
	}

/* One element of a descriptor chain. */
struct vuf_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable; /* device-writable (VRING_DESC_F_WRITE) */
};

/* A split virtqueue, driver side. The ring pointers are public on purpose: hostile-guest tests
 * write raw descriptors and indexes through them. */
struct vuf_vq {
	uint16_t index;
	uint16_t num;
	struct vring_desc *desc;
	struct vring_avail *avail; /* ring[num] is used_event when EVENT_IDX is negotiated */
	struct vring_used *used;   /* ring[num] (as u16) is avail_event */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	int kick_fd, call_fd;
	bool event_idx;
	bool started;

	/* driver-private state: kept outside the shared region so that a device scribbling over
	 * the ring cannot corrupt our bookkeeping */
	uint16_t avail_idx;     /* next avail index we will publish */
	uint16_t kicked_idx;    /* avail idx at the last notification check */
	uint16_t last_used;     /* next used entry to consume */
	uint16_t num_free;      /* free descriptors */
	uint16_t free_head;     /* head of the free list */
	uint16_t *next_free;    /* free list links, one per descriptor */
	uint16_t *chain_len;    /* per head: descriptors it occupies in the ring (1 if indirect) */
	void **cookie;          /* per head: caller's cookie */
	struct vring_desc *ind; /* indirect tables: num * indirect_max entries */
	uint64_t ind_gpa;
	uint16_t indirect_max;
	uint64_t kicks; /* eventfd writes done */
	uint64_t kicks_suppressed;
};

struct vuf_dev {
	int sock;
	int listen_fd;
	char *path;
	bool server;

	uint64_t backend_features;
	uint64_t features; /* negotiated */
	uint64_t backend_proto_features;
	uint64_t proto_features; /* negotiated */
	uint32_t backend_queues; /* GET_QUEUE_NUM, 0 if unknown */

	int mem_fd;
	void *mem;
	size_t mem_size;
	uint64_t gpa_base;
	bool hugetlb;
	size_t alloc_off; /* bump allocator cursor */

	int inflight_fd;
	void *inflight;
	uint64_t inflight_size;
	uint64_t inflight_offset; /* as GET_INFLIGHT_FD gave it: SET_INFLIGHT_FD on reconnect */
	uint64_t reconnects;      /* successful vuf_reconnect() calls */

	uint16_t vq_size;
	uint16_t indirect_max;
	bool want_inflight;
	unsigned int nvq;
	struct vuf_vq vq[VUF_MAX_QUEUES];

	char err[VUF_ERRLEN];
};

/* connection and control path */
int vuf_connect(struct vuf_dev **devp, const struct vuf_opts *opts);
const char *vuf_strerror(const struct vuf_dev *dev);
int vuf_get_config(struct vuf_dev *dev, uint32_t offset, void *buf, uint32_t size);
int vuf_start(struct vuf_dev *dev, unsigned int nvq);
int vuf_vring_enable(struct vuf_dev *dev, unsigned int idx, bool enable);
void vuf_close(struct vuf_dev *dev);

/* False once the backend has closed (or reset) the connection. Never blocks; one syscall. */
bool vuf_backend_alive(struct vuf_dev *dev);
/*
 * After the backend went away (vuf_backend_alive() false): accept (server) or connect to
 * (client) the new backend, within timeout_ms, and replay the setup the vhost-user spec gives
 * for a reconnecting backend, keeping the shared memory, the rings, their eventfds and the
 * inflight area: features (the backend must offer all negotiated ones again), SET_OWNER,
 * SET_MEM_TABLE, SET_INFLIGHT_FD (the same fd, size and offset, no GET_INFLIGHT_FD), and per
 * started ring SET_VRING_NUM, SET_VRING_BASE = used->idx as the device last published it (the
 * backend adds its inflight requests and resubmits them), SET_VRING_ADDR, CALL, KICK, ENABLE.
 * Then kicks every started ring. Requests in flight stay owned by the caller: they complete
 * through the used rings as usual.
 */
int vuf_reconnect(struct vuf_dev *dev, int timeout_ms);
/*
 * What the inflight area (split layout, QEMU docs "Inflight I/O tracking") says about queue
 * idx: descriptors marked in flight (return value), and its version, used_idx and
 * last_inflight_io (any may be NULL). -ENOENT without an area.
 */
int vuf_inflight_state(const struct vuf_dev *dev, unsigned int idx, uint16_t *version,
	uint16_t *used_idx, uint16_t *last_io);
static inline bool
vuf_has_feature(const struct vuf_dev *dev, unsigned int bit)
{
	return (dev->features >> bit) & 1;
}

/* Send one raw request and, if want_reply, receive the reply payload (up to *reply_len bytes;
 * *reply_len is updated to the received size). For protocol-level tests. */
int vuf_raw_request(struct vuf_dev *dev, uint32_t req, const void *payload, uint32_t size,
	const int *fds, int nfds, bool want_reply, void *reply, uint32_t *reply_len);

/* CLOCK_MONOTONIC in nanoseconds */
uint64_t vuf_now_ns(void);

/* shared region */
void *vuf_alloc(struct vuf_dev *dev, size_t size, size_t align, uint64_t *gpa);
void *vuf_gpa_to_va(const struct vuf_dev *dev, uint64_t gpa, size_t len);
static inline uint64_t
vuf_va_to_gpa(const struct vuf_dev *dev, const void *va)
{
	return dev->gpa_base + (uint64_t)((const char *)va - (const char *)dev->mem);
}

/* data path: not thread safe; one thread per queue */
int vuf_vq_add(
	struct vuf_vq *vq, const struct vuf_buf *bufs, unsigned int n, bool indirect, void *cookie);
/* Publishes everything added since the last call (one avail->idx store) and writes the kick
 * eventfd unless the device suppressed notifications. Returns 1 if it kicked, 0 if not. */
int vuf_vq_kick(struct vuf_vq *vq);
/* Writes the kick eventfd unconditionally: for tests that wrote raw descriptors / avail->idx
 * through the public ring pointers (and for backends that ignore suppression). */
int vuf_vq_notify(struct vuf_vq *vq);
/* Consumes up to max used entries: cookies[i] and lens[i] (lens may be NULL). Returns the count
 * (0 if nothing new), or -EIO if the device returned a bogus id. */
int vuf_vq_poll(struct vuf_vq *vq, void **cookies, uint32_t *lens, unsigned int max);
/* Waits (busy polling) for at least one used entry, for at most timeout_ms. */
int vuf_vq_wait(
	struct vuf_vq *vq, void **cookies, uint32_t *lens, unsigned int max, int timeout_ms);
static inline unsigned int
vuf_vq_free(const struct vuf_vq *vq)
{
	return vq->num_free;
}

#ifdef __cplusplus
}
#endif

#endif /* VHOST_USER_FRONTEND_H */
