/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost_user_frontend: see vhost_user_frontend.h. Written from the vhost-user specification
 * (QEMU docs/interop/vhost-user.rst) and the virtio 1.1 split ring layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "vhost_user_frontend.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif

#define VUF_VERSION 0x1
#define VUF_FLAG_REPLY (1U << 2)
#define VUF_FLAG_NEED_REPLY (1U << 3)
#define VUF_MAX_FDS 8
#define VUF_MAX_REGIONS 8
#define VUF_CONFIG_MAX 256
#define HUGE_2M (2UL << 20)
/* a backend that does not answer a control message within this is considered hung */
#define VUF_REPLY_TIMEOUT_S 10

struct vuf_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vuf_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vuf_vring_addr {
	uint32_t index;
	uint32_t flags;
	/* the spec's order: descriptor, used, available, log */
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vuf_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint64_t mmap_offset;
};

struct vuf_memory {
	uint32_t nregions;
	uint32_t padding;
	struct vuf_mem_region regions[VUF_MAX_REGIONS];
};

struct vuf_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t payload[VUF_CONFIG_MAX];
};

struct vuf_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};

union vuf_payload {
	uint64_t u64;
	struct vuf_vring_state state;
	struct vuf_vring_addr addr;
	struct vuf_memory mem;
	struct vuf_config config;
	struct vuf_inflight inflight;
	uint8_t raw[4096];
};

static const char *
req_name(uint32_t req)
{
	switch (req) {
	case VUF_GET_FEATURES:
		return "GET_FEATURES";
	case VUF_SET_FEATURES:
		return "SET_FEATURES";
	case VUF_SET_OWNER:
		return "SET_OWNER";
	case VUF_SET_MEM_TABLE:
		return "SET_MEM_TABLE";
	case VUF_SET_VRING_NUM:
		return "SET_VRING_NUM";
	case VUF_SET_VRING_ADDR:
		return "SET_VRING_ADDR";
	case VUF_SET_VRING_BASE:
		return "SET_VRING_BASE";
	case VUF_GET_VRING_BASE:
		return "GET_VRING_BASE";
	case VUF_SET_VRING_KICK:
		return "SET_VRING_KICK";
	case VUF_SET_VRING_CALL:
		return "SET_VRING_CALL";
	case VUF_GET_PROTOCOL_FEATURES:
		return "GET_PROTOCOL_FEATURES";
	case VUF_SET_PROTOCOL_FEATURES:
		return "SET_PROTOCOL_FEATURES";
	case VUF_GET_QUEUE_NUM:
		return "GET_QUEUE_NUM";
	case VUF_SET_VRING_ENABLE:
		return "SET_VRING_ENABLE";
	case VUF_GET_CONFIG:
		return "GET_CONFIG";
	case VUF_SET_CONFIG:
		return "SET_CONFIG";
	case VUF_GET_INFLIGHT_FD:
		return "GET_INFLIGHT_FD";
	case VUF_SET_INFLIGHT_FD:
		return "SET_INFLIGHT_FD";
	default:
		return "request";
	}
}

/* Records "<msg>: <strerror>" and returns -err, so error paths are one line. */
static int __attribute__((format(printf, 3, 4)))
fail(struct vuf_dev *dev, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dev->err, sizeof(dev->err), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(dev->err))
		snprintf(dev->err + n, sizeof(dev->err) - n, ": %s (%d)", strerror(err), -err);
	return -err;
}

const char *
vuf_strerror(const struct vuf_dev *dev)
{
	if (dev == NULL)
		return "out of memory";
	return dev->err[0] ? dev->err : "no error";
}

static int
send_msg(struct vuf_dev *dev, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
	const int *fds, int nfds)
{
	struct vuf_hdr hdr = {.request = req, .flags = VUF_VERSION | flags, .size = size};
	char cbuf[CMSG_SPACE(sizeof(int) * VUF_MAX_FDS)];
	struct iovec iov[2] = {
		{.iov_base = &hdr, .iov_len = sizeof(hdr)},
		{.iov_base = (void *)payload, .iov_len = size},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = size ? 2 : 1};
	ssize_t n;

	if (nfds > VUF_MAX_FDS)
		return fail(dev, EINVAL, "%s: too many fds", req_name(req));
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(dev->sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(dev, errno, "send %s", req_name(req));
	if ((size_t)n != sizeof(hdr) + size)
		return fail(dev, EIO, "send %s: short write", req_name(req));
	return 0;
}

static int
read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		got += n;
	}
	return 0;
}

/* Receives the reply to req. *size: in = buffer size, out = payload size. At most one fd is
 * kept (*fd), extra ones are closed. */
static int
recv_reply(struct vuf_dev *dev, uint32_t req, void *payload, uint32_t *size, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VUF_MAX_FDS)];
	struct vuf_hdr hdr;
	struct iovec iov = {.iov_base = &hdr, .iov_len = sizeof(hdr)};
	struct msghdr mh = {.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c;
	ssize_t n;
	int rc;

	if (fd != NULL)
		*fd = -1;
	do {
		n = recvmsg(dev->sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(
			dev, errno == EAGAIN ? ETIMEDOUT : errno, "%s: no reply", req_name(req));
	if (n == 0)
		return fail(dev, ECONNRESET, "%s: backend closed the connection", req_name(req));
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		int i, nf;
		int fds[VUF_MAX_FDS];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(fds, CMSG_DATA(c), nf * sizeof(int));
		for (i = 0; i < nf; i++) {
			if (fd != NULL && *fd < 0)
				*fd = fds[i];
			else
				close(fds[i]);
		}
	}
	if ((size_t)n < sizeof(hdr)) {
		rc = read_full(dev->sock, (char *)&hdr + n, sizeof(hdr) - n);
		if (rc < 0)
			return fail(dev, -rc, "%s: reading reply header", req_name(req));
	}
	if (hdr.request != req || !(hdr.flags & VUF_FLAG_REPLY) || (hdr.flags & 3) != VUF_VERSION)
		return fail(dev, EPROTO, "%s: unexpected reply (request %u flags 0x%x size %u)",
			req_name(req), hdr.request, hdr.flags, hdr.size);
	if (hdr.size > *size)
		return fail(dev, EPROTO, "%s: reply payload of %u bytes, expected at most %u",
			req_name(req), hdr.size, *size);
	rc = read_full(dev->sock, payload, hdr.size);
	if (rc < 0)
		return fail(dev, -rc, "%s: reading reply payload", req_name(req));
	*size = hdr.size;
	return 0;
}

/* A request without a reply of its own; with REPLY_ACK it is acknowledged, which both reports
 * backend-side failures and serializes us against the backend. */
static int
set_req(struct vuf_dev *dev, uint32_t req, const void *payload, uint32_t size, const int *fds,
	int nfds)
{
	bool ack = (dev->proto_features >> VUF_PROTO_F_REPLY_ACK) & 1;
	uint64_t status = 0;
	uint32_t rsize = sizeof(status);
	int rc;

	rc = send_msg(dev, req, ack ? VUF_FLAG_NEED_REPLY : 0, payload, size, fds, nfds);
	if (rc < 0 || !ack)
		return rc;
	rc = recv_reply(dev, req, &status, &rsize, NULL);
	if (rc < 0)
		return rc;
	if (rsize != sizeof(status))
		return fail(dev, EPROTO, "%s: ack of %u bytes", req_name(req), rsize);
	if (status != 0)
		return fail(dev, EIO, "%s: backend nacked it (status %llu)", req_name(req),
			(unsigned long long)status);
	return 0;
}

static int
get_u64(struct vuf_dev *dev, uint32_t req, uint64_t *val)
{
	uint32_t size = sizeof(*val);
	int rc;

	rc = send_msg(dev, req, 0, NULL, 0, NULL, 0);
	if (rc < 0)
		return rc;
	rc = recv_reply(dev, req, val, &size, NULL);
	if (rc < 0)
		return rc;
	if (size != sizeof(*val))
		return fail(dev, EPROTO, "%s: reply of %u bytes", req_name(req), size);
	return 0;
}

static int
set_u64(struct vuf_dev *dev, uint32_t req, uint64_t val)
{
	return set_req(dev, req, &val, sizeof(val), NULL, 0);
}

int
vuf_raw_request(struct vuf_dev *dev, uint32_t req, const void *payload, uint32_t size,
	const int *fds, int nfds, bool want_reply, void *reply, uint32_t *reply_len)
{
	int rc;

	rc = send_msg(dev, req, 0, payload, size, fds, nfds);
	if (rc < 0 || !want_reply)
		return rc;
	return recv_reply(dev, req, reply, reply_len, NULL);
}

uint64_t
vuf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int64_t
now_ms(void)
{
	return (int64_t)(vuf_now_ns() / 1000000);
}

/* Waits up to timeout_ms for a backend on the listening socket and accepts it. */
static int
accept_backend(struct vuf_dev *dev, int timeout_ms)
{
	struct pollfd pfd = {.fd = dev->listen_fd, .events = POLLIN};
	int rc, fd;

	do {
		rc = poll(&pfd, 1, timeout_ms);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return fail(dev, errno, "poll %s", dev->path);
	if (rc == 0)
		return fail(dev, ETIMEDOUT, "no backend connected to %s", dev->path);
	fd = accept4(dev->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return fail(dev, errno, "accept on %s", dev->path);
	return fd;
}

/* Connects to the backend's socket, retrying ENOENT/ECONNREFUSED for timeout_ms. */
static int
connect_backend(struct vuf_dev *dev, int timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int64_t deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	int fd;

	strcpy(sa.sun_path, dev->path);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fail(dev, errno, "socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		int err = errno;

		close(fd);
		/* the backend may not have created its socket yet */
		if ((err != ENOENT && err != ECONNREFUSED) || now_ms() >= deadline)
			return fail(dev, err, "connect %s", dev->path);
		usleep(20000);
	}
}

static int
open_socket(struct vuf_dev *dev, const struct vuf_opts *o)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = VUF_REPLY_TIMEOUT_S};
	int fd;

	if (strlen(o->path) >= sizeof(sa.sun_path))
		return fail(dev, ENAMETOOLONG, "socket path %s", o->path);
	strcpy(sa.sun_path, o->path);

	if (o->server) {
		dev->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (dev->listen_fd < 0)
			return fail(dev, errno, "socket");
		unlink(o->path);
		if (bind(dev->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return fail(dev, errno, "bind %s", o->path);
		if (listen(dev->listen_fd, 1) < 0)
			return fail(dev, errno, "listen %s", o->path);
		fd = accept_backend(dev, o->connect_timeout_ms);
	} else {
		fd = connect_backend(dev, o->connect_timeout_ms);
	}
	if (fd < 0)
		return fd;
	dev->sock = fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

static int
alloc_memory(struct vuf_dev *dev, size_t size, bool no_hugetlb)
{
	size = (size + HUGE_2M - 1) & ~(HUGE_2M - 1);
	if (size == 0)
		size = HUGE_2M;
	dev->mem_size = size;
	if (!no_hugetlb) {
		/* hugetlb mirrors what a real VM gives a DPDK backend and keeps the backend's
		 * IOTLB-free translation cheap; MAP_POPULATE fails cleanly when the pool is short
		 */
		dev->mem_fd =
			memfd_create("vuf-guest-mem", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);
		if (dev->mem_fd >= 0) {
			if (ftruncate(dev->mem_fd, size) == 0) {
				dev->mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_POPULATE, dev->mem_fd, 0);
				if (dev->mem != MAP_FAILED) {
					dev->hugetlb = true;
					return 0;
				}
			}
			close(dev->mem_fd);
		}
	}
	dev->mem_fd = memfd_create("vuf-guest-mem", MFD_CLOEXEC);
	if (dev->mem_fd < 0)
		return fail(dev, errno, "memfd_create");
	if (ftruncate(dev->mem_fd, size) < 0)
		return fail(dev, errno, "ftruncate memfd to %zu", size);
	dev->mem =
		mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, dev->mem_fd, 0);
	if (dev->mem == MAP_FAILED) {
		dev->mem = NULL;
		return fail(dev, errno, "mmap %zu bytes of shared memory", size);
	}
	return 0;
}

/* SET_OWNER, then SET_FEATURES with the negotiated features. */
static int
own_and_set_features(struct vuf_dev *dev)
{
	int rc = set_req(dev, VUF_SET_OWNER, NULL, 0, NULL, 0);

	return rc < 0 ? rc : set_u64(dev, VUF_SET_FEATURES, dev->features);
}

int
vuf_connect(struct vuf_dev **devp, const struct vuf_opts *o)
{
	struct vuf_dev *dev;
	uint64_t want;
	unsigned int i;
	int rc;

	*devp = dev = calloc(1, sizeof(*dev));
	if (dev == NULL)
		return -ENOMEM;
	dev->sock = dev->listen_fd = dev->mem_fd = dev->inflight_fd = -1;
	for (i = 0; i < VUF_MAX_QUEUES; i++)
		dev->vq[i].kick_fd = dev->vq[i].call_fd = -1;
	dev->server = o->server;
	dev->gpa_base = o->gpa_base;
	dev->vq_size = o->vq_size;
	dev->indirect_max = o->indirect_max;
	dev->want_inflight = o->inflight;
	if (o->path == NULL)
		return fail(dev, EINVAL, "no socket path");
	dev->path = strdup(o->path);
	if (o->vq_size == 0 || (o->vq_size & (o->vq_size - 1)) != 0)
		return fail(dev, EINVAL, "queue size %u is not a power of two", o->vq_size);

	rc = open_socket(dev, o);
	if (rc < 0)
		return rc;

	rc = get_u64(dev, VUF_GET_FEATURES, &dev->backend_features);
	if (rc < 0)
		return rc;
	dev->features = dev->backend_features & o->features;
	if (vuf_has_feature(dev, VUF_F_PROTOCOL_FEATURES)) {
		rc = get_u64(dev, VUF_GET_PROTOCOL_FEATURES, &dev->backend_proto_features);
		if (rc < 0)
			return rc;
		want = o->proto_features & ~(1ULL << VUF_PROTO_F_INFLIGHT_SHMFD);
		if (o->inflight)
			want |= 1ULL << VUF_PROTO_F_INFLIGHT_SHMFD;
		/* proto_features stays 0 until the backend has seen SET_PROTOCOL_FEATURES:
		 * REPLY_ACK must not be used on that message itself */
		rc = set_u64(dev, VUF_SET_PROTOCOL_FEATURES, dev->backend_proto_features & want);
		if (rc < 0)
			return rc;
		dev->proto_features = dev->backend_proto_features & want;
		if ((dev->proto_features >> VUF_PROTO_F_MQ) & 1) {
			uint64_t q;

			rc = get_u64(dev, VUF_GET_QUEUE_NUM, &q);
			if (rc < 0)
				return rc;
			dev->backend_queues = (uint32_t)q;
		}
	}
	rc = own_and_set_features(dev);
	if (rc < 0)
		return rc;
	return alloc_memory(dev, o->mem_size, o->no_hugetlb);
}

int
vuf_get_config(struct vuf_dev *dev, uint32_t offset, void *buf, uint32_t size)
{
	struct vuf_config cfg = {.offset = offset, .size = size};
	uint32_t rsize = sizeof(cfg);
	int rc;

	if (!((dev->proto_features >> VUF_PROTO_F_CONFIG) & 1))
		return fail(dev, ENOTSUP, "GET_CONFIG: backend lacks VHOST_USER_PROTOCOL_F_CONFIG");
	if (size > VUF_CONFIG_MAX)
		return fail(dev, EINVAL, "GET_CONFIG: %u bytes", size);
	rc = send_msg(dev, VUF_GET_CONFIG, 0, &cfg, 12 + size, NULL, 0);
	if (rc < 0)
		return rc;
	rc = recv_reply(dev, VUF_GET_CONFIG, &cfg, &rsize, NULL);
	if (rc < 0)
		return rc;
	if (rsize != 12 + size || cfg.size != size)
		return fail(dev, EIO, "GET_CONFIG: backend returned %u bytes (asked for %u)",
			rsize >= 12 ? rsize - 12 : 0, size);
	memcpy(buf, cfg.payload, size);
	return 0;
}

void *
vuf_alloc(struct vuf_dev *dev, size_t size, size_t align, uint64_t *gpa)
{
	size_t off;

	if (align == 0)
		align = 64;
	off = (dev->alloc_off + align - 1) & ~(align - 1);
	if (dev->mem == NULL || off + size > dev->mem_size || off + size < off) {
		fail(dev, ENOMEM, "shared region exhausted (%zu of %zu bytes used, %zu requested)",
			dev->alloc_off, dev->mem_size, size);
		return NULL;
	}
	dev->alloc_off = off + size;
	if (gpa != NULL)
		*gpa = dev->gpa_base + off;
	return (char *)dev->mem + off;
}

void *
vuf_gpa_to_va(const struct vuf_dev *dev, uint64_t gpa, size_t len)
{
	if (gpa < dev->gpa_base || gpa - dev->gpa_base > dev->mem_size ||
		len > dev->mem_size - (gpa - dev->gpa_base))
		return NULL;
	return (char *)dev->mem + (gpa - dev->gpa_base);
}

static int program_vq(struct vuf_dev *dev, unsigned int idx, uint16_t base);

/*
 * used_event for a driver that never wants a used-buffer notification. The
 * device notifies when used_event lies in [old, new), old being the used
 * index at its previous check. "One behind what we consumed" is not enough:
 * a device that publishes part of a batch early (vhostd's scsi queues) has
 * its old still behind that, and would signal every batch. Half the 16-bit
 * index space ahead of what we consumed is never in that window.
 */
static inline uint16_t
used_event_never(uint16_t last_used)
{
	return (uint16_t)(last_used + 0x7fff);
}

static int
setup_vq(struct vuf_dev *dev, unsigned int idx)
{
	struct vuf_vq *vq = &dev->vq[idx];
	uint16_t n = dev->vq_size;
	unsigned int i;
	int rc;

	vq->index = idx;
	vq->num = n;
	vq->event_idx = vuf_has_feature(dev, VUF_F_EVENT_IDX);
	vq->desc = vuf_alloc(dev, 16UL * n, 4096, &vq->desc_gpa);
	vq->avail = vuf_alloc(dev, 6 + 2UL * n, 64, &vq->avail_gpa);
	/* the used ring on its own page: the device writes it, keep it off our cache lines */
	vq->used = vuf_alloc(dev, 6 + 8UL * n, 4096, &vq->used_gpa);
	if (vq->desc == NULL || vq->avail == NULL || vq->used == NULL)
		return -ENOMEM;
	vq->next_free = calloc(n, sizeof(*vq->next_free));
	vq->chain_len = calloc(n, sizeof(*vq->chain_len));
	vq->cookie = calloc(n, sizeof(*vq->cookie));
	if (vq->next_free == NULL || vq->chain_len == NULL || vq->cookie == NULL)
		return fail(dev, ENOMEM, "queue %u bookkeeping", idx);
	if (dev->indirect_max > 0 && vuf_has_feature(dev, VUF_F_INDIRECT_DESC)) {
		vq->indirect_max = dev->indirect_max;
		vq->ind = vuf_alloc(dev, 16UL * n * vq->indirect_max, 4096, &vq->ind_gpa);
		if (vq->ind == NULL)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		vq->next_free[i] = (uint16_t)(i + 1);
	vq->free_head = 0;
	vq->num_free = n;
	/* we busy poll the used ring: ask the device not to interrupt us at all */
	vq->avail->flags = vq->event_idx ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
	vq->avail->ring[n] = used_event_never(vq->last_used);

	vq->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	vq->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vq->kick_fd < 0 || vq->call_fd < 0)
		return fail(dev, errno, "eventfd for queue %u", idx);
	rc = program_vq(dev, idx, 0);
	if (rc < 0)
		return rc;
	vq->started = true;
	return 0;
}

/* The ring's messages: SET_VRING_NUM, _BASE (base), _ADDR, _CALL, _KICK. */
static int
program_vq(struct vuf_dev *dev, unsigned int idx, uint16_t base)
{
	struct vuf_vq *vq = &dev->vq[idx];
	struct vuf_vring_state st = {.index = idx};
	struct vuf_vring_addr addr = {.index = idx};
	uint64_t fdmsg = idx;
	int rc;

	st.num = vq->num;
	rc = set_req(dev, VUF_SET_VRING_NUM, &st, sizeof(st), NULL, 0);
	if (rc < 0)
		return rc;
	st.num = base;
	rc = set_req(dev, VUF_SET_VRING_BASE, &st, sizeof(st), NULL, 0);
	if (rc < 0)
		return rc;
	/* ring addresses are in the frontend's virtual address space (userspace_addr of the
	 * region), not guest physical */
	addr.desc = (uint64_t)(uintptr_t)vq->desc;
	addr.used = (uint64_t)(uintptr_t)vq->used;
	addr.avail = (uint64_t)(uintptr_t)vq->avail;
	rc = set_req(dev, VUF_SET_VRING_ADDR, &addr, sizeof(addr), NULL, 0);
	if (rc < 0)
		return rc;
	rc = set_req(dev, VUF_SET_VRING_CALL, &fdmsg, sizeof(fdmsg), &vq->call_fd, 1);
	if (rc < 0)
		return rc;
	return set_req(dev, VUF_SET_VRING_KICK, &fdmsg, sizeof(fdmsg), &vq->kick_fd, 1);
}

static int
setup_inflight(struct vuf_dev *dev, unsigned int nvq)
{
	struct vuf_inflight inf = {.num_queues = nvq, .queue_size = dev->vq_size};
	uint32_t rsize = sizeof(inf);
	int fd, rc;

	rc = send_msg(dev, VUF_GET_INFLIGHT_FD, 0, &inf, sizeof(inf), NULL, 0);
	if (rc < 0)
		return rc;
	rc = recv_reply(dev, VUF_GET_INFLIGHT_FD, &inf, &rsize, &fd);
	if (rc < 0)
		return rc;
	if (fd < 0 || inf.mmap_size == 0)
		return fail(dev, EPROTO, "GET_INFLIGHT_FD: no fd / empty area");
	dev->inflight_fd = fd;
	dev->inflight_size = inf.mmap_size;
	dev->inflight_offset = inf.mmap_offset;
	dev->inflight =
		mmap(NULL, inf.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, inf.mmap_offset);
	if (dev->inflight == MAP_FAILED) {
		dev->inflight = NULL;
		return fail(dev, errno, "mmap inflight area");
	}
	inf.num_queues = nvq;
	inf.queue_size = dev->vq_size;
	return set_req(dev, VUF_SET_INFLIGHT_FD, &inf, sizeof(inf), &fd, 1);
}

int
vuf_vring_enable(struct vuf_dev *dev, unsigned int idx, bool enable)
{
	struct vuf_vring_state st = {.index = idx, .num = enable};

	return set_req(dev, VUF_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0);
}

static int
set_mem_table(struct vuf_dev *dev)
{
	struct vuf_memory mem = {.nregions = 1};

	mem.regions[0].gpa = dev->gpa_base;
	mem.regions[0].size = dev->mem_size;
	mem.regions[0].uaddr = (uint64_t)(uintptr_t)dev->mem;
	mem.regions[0].mmap_offset = 0;
	/* only the regions actually used are sent: some backends check the size */
	return set_req(dev, VUF_SET_MEM_TABLE, &mem, 8 + sizeof(mem.regions[0]), &dev->mem_fd, 1);
}

int
vuf_start(struct vuf_dev *dev, unsigned int nvq)
{
	unsigned int i;
	int rc;

	if (nvq == 0 || nvq > VUF_MAX_QUEUES)
		return fail(dev, EINVAL, "%u queues (1..%d)", nvq, VUF_MAX_QUEUES);
	if (dev->backend_queues != 0 && nvq > dev->backend_queues)
		return fail(dev, EINVAL, "%u queues requested, backend has %u", nvq,
			dev->backend_queues);
	rc = set_mem_table(dev);
	if (rc < 0)
		return rc;
	if ((dev->proto_features >> VUF_PROTO_F_INFLIGHT_SHMFD) & 1) {
		rc = setup_inflight(dev, nvq);
		if (rc < 0)
			return rc;
	}
	dev->nvq = nvq;
	for (i = 0; i < nvq; i++) {
		rc = setup_vq(dev, i);
		if (rc < 0)
			return rc;
	}
	/* with VHOST_USER_F_PROTOCOL_FEATURES the rings start disabled */
	if (vuf_has_feature(dev, VUF_F_PROTOCOL_FEATURES)) {
		for (i = 0; i < nvq; i++) {
			rc = vuf_vring_enable(dev, i, true);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

bool
vuf_backend_alive(struct vuf_dev *dev)
{
	char b;
	ssize_t n;

	if (dev->sock < 0)
		return false;
	n = recv(dev->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	/* a message the backend sent on its own (none is expected) still means it is alive */
	return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

int
vuf_reconnect(struct vuf_dev *dev, int timeout_ms)
{
	struct timeval tv = {.tv_sec = VUF_REPLY_TIMEOUT_S};
	uint64_t backend_features, backend_proto, proto = dev->proto_features;
	unsigned int i;
	int fd, rc;

	if (dev->mem == NULL || dev->nvq == 0)
		return fail(dev, EINVAL, "reconnect: the device was never started");
	if (dev->sock >= 0)
		close(dev->sock);
	dev->sock = -1;
	fd = dev->server ? accept_backend(dev, timeout_ms) : connect_backend(dev, timeout_ms);
	if (fd < 0)
		return fd;
	dev->sock = fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	/* the same negotiation as vuf_connect(): the new backend must offer what we use */
	rc = get_u64(dev, VUF_GET_FEATURES, &backend_features);
	if (rc < 0)
		return rc;
	if ((backend_features & dev->features) != dev->features)
		return fail(dev, ENOTSUP,
			"reconnect: backend features 0x%llx lack negotiated 0x%llx",
			(unsigned long long)backend_features, (unsigned long long)dev->features);
	if (vuf_has_feature(dev, VUF_F_PROTOCOL_FEATURES)) {
		rc = get_u64(dev, VUF_GET_PROTOCOL_FEATURES, &backend_proto);
		if (rc < 0)
			return rc;
		if ((backend_proto & proto) != proto)
			return fail(dev, ENOTSUP,
				"reconnect: backend protocol features 0x%llx lack 0x%llx",
				(unsigned long long)backend_proto, (unsigned long long)proto);
		/* no REPLY_ACK on SET_PROTOCOL_FEATURES itself (see vuf_connect) */
		dev->proto_features = 0;
		rc = set_u64(dev, VUF_SET_PROTOCOL_FEATURES, proto);
		dev->proto_features = proto;
		if (rc < 0)
			return rc;
		if ((proto >> VUF_PROTO_F_MQ) & 1) {
			uint64_t q;

			rc = get_u64(dev, VUF_GET_QUEUE_NUM, &q);
			if (rc < 0)
				return rc;
			if (q != 0 && q < dev->nvq)
				return fail(dev, ENOTSUP, "reconnect: backend has %llu queues, we use %u",
					(unsigned long long)q, dev->nvq);
		}
	}
	rc = own_and_set_features(dev);
	if (rc < 0)
		return rc;
	rc = set_mem_table(dev);
	if (rc < 0)
		return rc;
	if (dev->inflight != NULL) {
		/* the area the old backend filled: the new one resubmits what it marks in flight */
		struct vuf_inflight inf = {.mmap_size = dev->inflight_size,
			.mmap_offset = dev->inflight_offset,
			.num_queues = dev->nvq,
			.queue_size = dev->vq_size};

		rc = set_req(dev, VUF_SET_INFLIGHT_FD, &inf, sizeof(inf), &dev->inflight_fd, 1);
		if (rc < 0)
			return rc;
	}
	for (i = 0; i < dev->nvq; i++) {
		struct vuf_vq *vq = &dev->vq[i];

		if (!vq->started)
			continue;
		/*
		 * The base is the used index the device published, not our avail index nor
		 * what we consumed: what the old backend took but did not complete is in the
		 * inflight area, and the new backend starts at used->idx + that many
		 * (QEMU: virtio_queue_restore_last_avail_idx() when GET_VRING_BASE fails).
		 */
		rc = program_vq(dev, i, __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
		if (rc < 0)
			return rc;
	}
	if (vuf_has_feature(dev, VUF_F_PROTOCOL_FEATURES)) {
		for (i = 0; i < dev->nvq; i++) {
			if (!dev->vq[i].started)
				continue;
			rc = vuf_vring_enable(dev, i, true);
			if (rc < 0)
				return rc;
		}
	}
	/* requests may have been added while no backend listened */
	for (i = 0; i < dev->nvq; i++)
		if (dev->vq[i].started)
			vuf_vq_notify(&dev->vq[i]);
	dev->reconnects++;
	dev->err[0] = 0;
	return 0;
}

int
vuf_inflight_state(const struct vuf_dev *dev, unsigned int idx, uint16_t *version,
	uint16_t *used_idx, uint16_t *last_io)
{
	/* per queue: u64 features, u16 version, desc_num, last_inflight_io, used_idx, then
	 * desc_num descriptors of {u8 inflight, u8 pad[5], u16 next, u64 counter}; 64-aligned */
	size_t per_vq = (16 + 16UL * dev->vq_size + 63) & ~63UL;
	const uint8_t *q;
	uint16_t hdr[4];
	int n = 0;

	if (dev->inflight == NULL || (idx + 1) * per_vq > dev->inflight_size)
		return -ENOENT;
	q = (const uint8_t *)dev->inflight + idx * per_vq;
	memcpy(hdr, q + 8, sizeof(hdr));
	if (version != NULL)
		*version = hdr[0];
	if (last_io != NULL)
		*last_io = hdr[2];
	if (used_idx != NULL)
		*used_idx = hdr[3];
	for (unsigned int i = 0; i < hdr[1] && i < dev->vq_size; i++)
		n += q[16 + 16 * i] == 1;
	return n;
}

void
vuf_close(struct vuf_dev *dev)
{
	unsigned int i;

	if (dev == NULL)
		return;
	for (i = 0; i < dev->nvq; i++) {
		struct vuf_vq *vq = &dev->vq[i];

		if (vq->started && dev->sock >= 0) {
			struct vuf_vring_state st = {.index = i};
			uint32_t rsize = sizeof(st);

			/* stops the ring in the backend; errors are irrelevant at teardown */
			if (send_msg(dev, VUF_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0) == 0)
				recv_reply(dev, VUF_GET_VRING_BASE, &st, &rsize, NULL);
		}
		if (vq->kick_fd >= 0)
			close(vq->kick_fd);
		if (vq->call_fd >= 0)
			close(vq->call_fd);
		free(vq->next_free);
		free(vq->chain_len);
		free(vq->cookie);
	}
	if (dev->sock >= 0)
		close(dev->sock);
	if (dev->listen_fd >= 0) {
		close(dev->listen_fd);
		if (dev->path != NULL)
			unlink(dev->path);
	}
	if (dev->mem != NULL)
		munmap(dev->mem, dev->mem_size);
	if (dev->mem_fd >= 0)
		close(dev->mem_fd);
	if (dev->inflight != NULL)
		munmap(dev->inflight, dev->inflight_size);
	if (dev->inflight_fd >= 0)
		close(dev->inflight_fd);
	free(dev->path);
	free(dev);
}

/* ---- data path ---- */

int
vuf_vq_add(
	struct vuf_vq *vq, const struct vuf_buf *bufs, unsigned int n, bool indirect, void *cookie)
{
	uint16_t head, id, last = 0, used;
	unsigned int i;

	if (n == 0)
		return -EINVAL;
	if (indirect && (vq->ind == NULL || n > vq->indirect_max))
		return -EINVAL;
	used = indirect ? 1 : n;
	if (vq->num_free < used)
		return -ENOSPC;
	head = vq->free_head;
	if (indirect) {
		struct vring_desc *t = vq->ind + (size_t)head * vq->indirect_max;

		for (i = 0; i < n; i++) {
			t[i].addr = bufs[i].gpa;
			t[i].len = bufs[i].len;
			t[i].flags = (bufs[i].writable ? VRING_DESC_F_WRITE : 0) |
				     (i + 1 < n ? VRING_DESC_F_NEXT : 0);
			t[i].next = (uint16_t)(i + 1);
		}
		vq->desc[head].addr = vq->ind_gpa + (uint64_t)head * vq->indirect_max * 16;
		vq->desc[head].len = n * 16;
		vq->desc[head].flags = VRING_DESC_F_INDIRECT;
		last = head;
	} else {
		/* the chain follows our private free list links, which stay intact while the
		 * chain is in flight and are spliced back as a whole on completion */
		id = head;
		for (i = 0; i < n; i++) {
			struct vring_desc *d = &vq->desc[id];

			d->addr = bufs[i].gpa;
			d->len = bufs[i].len;
			d->flags = bufs[i].writable ? VRING_DESC_F_WRITE : 0;
			last = id;
			if (i + 1 < n) {
				d->flags |= VRING_DESC_F_NEXT;
				d->next = vq->next_free[id];
			}
			id = vq->next_free[id];
		}
	}
	vq->free_head = vq->next_free[last];
	vq->num_free -= used;
	vq->chain_len[head] = used;
	vq->cookie[head] = cookie;
	vq->avail->ring[vq->avail_idx & (vq->num - 1)] = head;
	vq->avail_idx++;
	return 0;
}

int
vuf_vq_kick(struct vuf_vq *vq)
{
	uint16_t old = vq->kicked_idx, new = vq->avail_idx;
	bool need;
	int rc;

	if (old == new)
		return 0;
	/* descriptors and ring entries before the index */
	__atomic_store_n(&vq->avail->idx, new, __ATOMIC_RELEASE);
	/* the index store must be visible before we read the device's suppression state,
	 * or we may miss the device re-enabling notifications (store->load ordering) */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->kicked_idx = new;
	if (vq->event_idx) {
		uint16_t ev =
			__atomic_load_n((uint16_t *)&vq->used->ring[vq->num], __ATOMIC_RELAXED);

		need = vring_need_event(ev, new, old);
	} else {
		need = !(__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) &
			 VRING_USED_F_NO_NOTIFY);
	}
	if (!need) {
		vq->kicks_suppressed++;
		return 0;
	}
	rc = vuf_vq_notify(vq);
	return rc < 0 ? rc : 1;
}

int
vuf_vq_notify(struct vuf_vq *vq)
{
	uint64_t one = 1;

	vq->kicks++;
	if (write(vq->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

int
vuf_vq_poll(struct vuf_vq *vq, void **cookies, uint32_t *lens, unsigned int max)
{
	uint16_t used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	unsigned int cnt = 0;

	while (vq->last_used != used_idx && cnt < max) {
		struct vring_used_elem *e = &vq->used->ring[vq->last_used & (vq->num - 1)];
		uint32_t id = e->id;
		uint16_t len, last;
		unsigned int i;

		if (id >= vq->num || vq->chain_len[id] == 0)
			return -EIO;
		len = vq->chain_len[id];
		last = (uint16_t)id;
		for (i = 1; i < len; i++)
			last = vq->next_free[last];
		vq->next_free[last] = vq->free_head;
		vq->free_head = (uint16_t)id;
		vq->num_free += len;
		vq->chain_len[id] = 0;
		cookies[cnt] = vq->cookie[id];
		if (lens != NULL)
			lens[cnt] = e->len;
		cnt++;
		vq->last_used++;
	}
	/* keep used_event half the index space ahead: the device never crosses it, so it
	 * never signals the call eventfd (we poll) */
	if (vq->event_idx && cnt > 0)
		vq->avail->ring[vq->num] = used_event_never(vq->last_used);
	return (int)cnt;
}

int
vuf_vq_wait(struct vuf_vq *vq, void **cookies, uint32_t *lens, unsigned int max, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	unsigned int spin = 0;
	int n;

	for (;;) {
		n = vuf_vq_poll(vq, cookies, lens, max);
		if (n != 0)
			return n;
		if ((++spin & 1023) == 0 && now_ms() >= deadline)
			return -ETIMEDOUT;
	}
}
