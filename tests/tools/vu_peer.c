/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vu-peer: a real virtio driver peer (DPDK net_virtio_user PMD) for the
 * vhostd integration tests.
 *
 *   vu-peer [EAL args...] -- --port NAME=SOCK[,queues=N][,mac=MAC][,server=1]
 *                            [,queue_size=N][,other virtio_user devargs]
 *                            [--port ...] [--idle-us N]
 *
 * Every --port becomes a net_virtio_user<i> vdev. After the ports are up the
 * program reads one command per line on stdin and answers exactly one JSON
 * line per command on stdout. Everything DPDK prints goes to stderr.
 *
 * Test frame layout (all integers big endian):
 *   dst(6) src(6) [0x8100 TCI(2)] 0x88B5
 *   magic u32 0x76687464 | flow u32 | seq u32 | frame len u32 | csum u64
 *   pattern bytes up to the frame length
 * The frame length counts the Ethernet header (and the VLAN tag if one was
 * sent), not the FCS. The pattern is derived from (flow, seq) only (see
 * fill_pattern()) and csum is payload_csum() of the pattern bytes.
 *
 * A received frame is "valid" when its ethertype (after an optional tag,
 * either in the data or stripped into mbuf->vlan_tci) is 0x88B5, the magic
 * matches, every byte after the header equals the pattern for its
 * (flow, seq), the checksum matches and the header length equals the
 * received length, give or take one VLAN tag pushed/popped on the way.
 * Other ethertypes are counted as "other".
 *
 * Receive side accounting runs whenever the program waits (between commands
 * and during send), so frames do not pile up in the rings: a "recv" reports
 * every frame that arrived on the port since the previous recv/drain.
 *
 * Commands (key=value arguments, one answer line each; errors answer
 * {"ok":false,"error":"..."} and the program keeps running):
 *
 *   send port=P dst=MAC [queue=0] [count=1] [size=64] [src=port MAC]
 *        [vlan=VID] [pcp=0] [flow=0] [seq_start=0] [burst=32]
 *        [timeout_ms=2000] [window=auto] [window_ms=20] [ethertype=0x88B5]
 *        [corrupt=0] [gap_us=0]
 *     -> {"ok":true,"sent":n,"requested":N,"timed_out":b,"window":w,
 *         "released":r}
 *     timeout_ms: give up once the tx queue accepted nothing for that long.
 *     window: see cmd_send(); 0 disables it. corrupt=1 flips one payload
 *     byte per frame (to test the checker). gap_us: pacing, at most one
 *     burst (burst=1: one frame) every gap_us microseconds.
 *   recv port=P [expect=N] [timeout_ms=1000] [max_ms=30000] [frames=16]
 *     -> {"ok":true,"port":P,"received":n,"bytes":b,"per_queue":[..],
 *         "valid":v,"invalid":i,"other":o,"flows_dropped":d,
 *         "flows":{"F":{"count","valid","invalid","seqs_missing","dups",
 *                       "reordered","min_seq","max_seq"}},
 *         "frames":[{"queue","src","dst","vlan","pcp","vlan_stripped",
 *                    "len","ethertype","flow","seq","hdr_len","ok"}]}
 *     With expect: until the port got N frames or timeout_ms passed;
 *     without: until nothing arrived on it for timeout_ms (at most max_ms).
 *     Resets the port's accounting.
 *   drain port=P [timeout_ms=20]  -> {"ok":true,"port":P,"drained":n}
 *   stats port=P [reset=1]        -> rte_eth_stats incl. q_* arrays
 *   link port=P [wait_ms=0]       -> {"ok":true,"port":P,"up":b,"speed":..,
 *                                     "duplex":..,"autoneg":b,"mac":..}
 *   ping                          -> {"ok":true,"pid":..,"ports":{..}}
 *   quit                          -> {"ok":true,"quit":true}, then exit 0
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#define VUP_MAX_PORTS 16
#define VUP_MAX_QUEUES 16
#define VUP_MAX_BURST 512
#define VUP_DEF_BURST 32
#define VUP_RX_BURST 32
#define VUP_RX_MAX_POLL 4096 /* per queue and poll */
#define VUP_MIN_FRAME 60
#define VUP_MAX_FRAME 9000
#define VUP_BUF_SIZE 16384
#define VUP_ETHERTYPE 0x88B5
#define VUP_MAGIC 0x76687464u
#define VUP_HDR_LEN 24
#define VUP_DEF_LIST 16
#define VUP_MAX_LIST 1024
#define VUP_MAX_FLOWS 4096
#define VUP_FLOW_SLOTS 8192 /* power of two, > 2 * VUP_MAX_FLOWS */
#define VUP_MAX_SEQ_TRACK (1u << 26)
#define VUP_DEF_QSIZE 256
#define VUP_DEF_WINDOW_MS 20
#define VUP_VNET_HDR_LEN 12
#define VUP_ACTIVE_NS (50ULL * 1000 * 1000)
#define VUP_MAX_ARGS 32
#define VUP_LINE_MAX 4096

struct vup_flow {
	uint32_t flow;
	uint64_t count;     /* frames carrying this flow id */
	uint64_t valid;     /* ... whose bytes are exactly right */
	uint64_t distinct;  /* distinct seqs among the valid ones */
	uint64_t dups;      /* valid frames whose seq was already seen */
	uint64_t reordered; /* valid frames with a seq below the max seen */
	uint64_t untracked; /* valid frames with a seq beyond the bitmap */
	uint32_t min_seq;
	uint32_t max_seq;
	uint8_t *seen;
	uint32_t seen_bytes;
};

struct vup_frame {
	struct rte_ether_addr src;
	struct rte_ether_addr dst;
	int vlan; /* VID, -1 when untagged */
	int pcp;
	bool vlan_stripped;
	uint32_t len;
	uint16_t ethertype;
	uint16_t queue;
	bool has_hdr;
	uint32_t flow;
	uint32_t seq;
	uint32_t hdr_len;
	bool ok;
};

struct vup_acc {
	uint64_t received;
	uint64_t bytes;
	uint64_t valid;
	uint64_t invalid;
	uint64_t other;
	uint64_t flows_dropped; /* test frames of flows beyond VUP_MAX_FLOWS */
	uint64_t per_queue[VUP_MAX_QUEUES];
	struct vup_flow *flows;
	uint32_t nflows;
	int32_t *slots;
	struct vup_frame frames[VUP_MAX_LIST];
	uint32_t nframes;
};

struct vup_port {
	char name[32];
	char path[PATH_MAX];
	char extra[512];
	uint16_t queues;
	uint32_t queue_size;
	bool server;
	bool has_mac;
	struct rte_ether_addr mac;
	char devname[32];
	uint16_t port_id;
	bool probed;
	bool started;
	bool multiseg;
	uint64_t last_rx_ns;
	struct vup_acc acc;
};

struct vup_hdr {
	rte_be32_t magic;
	rte_be32_t flow;
	rte_be32_t seq;
	rte_be32_t len;
	rte_be64_t csum;
} __rte_packed;

struct vup_kv {
	char *key;
	char *val;
	bool used;
};

struct vup_args {
	struct vup_kv kv[VUP_MAX_ARGS];
	int n;
};

struct jbuf {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};

static struct vup_port ports[VUP_MAX_PORTS];
static unsigned int nb_ports;
static struct rte_mempool *pool;
static uint32_t seg_room;
static unsigned int idle_us = 200;
static uint64_t last_rx_any_ns;
static uint64_t rx_total; /* frames received on all ports, never reset */
/*
 * Send window bookkeeping, in rx buffers (descriptors) of the receiving
 * virtio ring: what send commands put on the wire and has not been seen
 * back on any port yet.
 */
static int64_t outstanding;
static uint64_t outstanding_ns; /* last change of outstanding */
static uint32_t min_queue_size = UINT32_MAX;
static volatile sig_atomic_t force_quit;
static FILE *out;
static struct jbuf jb;
static char errmsg[512];

static uint8_t txbuf[VUP_BUF_SIZE];
static uint8_t rxbuf[VUP_BUF_SIZE];
static uint8_t expbuf[VUP_BUF_SIZE];

/* ---------------------------------------------------------------- utils */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
set_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
}

static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/*
 * Deterministic payload pattern: byte i is byte (i % 8) (little endian) of
 * mix64(mix64(flow << 32 | seq) + i / 8).
 */
static void
fill_pattern(uint8_t *dst, uint32_t len, uint32_t flow, uint32_t seq)
{
	uint64_t seed = mix64(((uint64_t)flow << 32) | seq);
	uint32_t i, j;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t v = rte_cpu_to_le_64(mix64(seed + i / 8));

		memcpy(dst + i, &v, 8);
	}
	if (i < len) {
		uint64_t v = mix64(seed + i / 8);

		for (j = 0; i + j < len; j++)
			dst[i + j] = (uint8_t)(v >> (8 * j));
	}
}

/*
 * Payload checksum: FNV-1a style over 64-bit little-endian words (the last
 * partial word zero padded), then the length is mixed in.
 */
static uint64_t
payload_csum(const uint8_t *p, uint32_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	uint64_t w;
	uint32_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h ^= rte_le_to_cpu_64(w);
		h *= 0x100000001b3ULL;
	}
	if (i < len) {
		w = 0;
		memcpy(&w, p + i, len - i);
		h ^= rte_le_to_cpu_64(w);
		h *= 0x100000001b3ULL;
	}
	return mix64(h ^ len);
}

/* ----------------------------------------------------------------- json */

static void
jb_reset(void)
{
	jb.len = 0;
	jb.oom = false;
	if (jb.p != NULL)
		jb.p[0] = '\0';
}

static void jb_printf(const char *fmt, ...) __rte_format_printf(1, 2);

static void
jb_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t avail = jb.cap - jb.len;

		va_start(ap, fmt);
		n = vsnprintf(jb.p == NULL ? NULL : jb.p + jb.len, avail, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < avail) {
			jb.len += n;
			return;
		}
		size_t ncap = jb.cap ? jb.cap * 2 : 4096;
		while (ncap - jb.len <= (size_t)n)
			ncap *= 2;
		char *np = realloc(jb.p, ncap);
		if (np == NULL) {
			jb.oom = true;
			return;
		}
		jb.p = np;
		jb.cap = ncap;
	}
}

static void
jb_str(const char *s)
{
	jb_printf("\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			jb_printf("\\%c", c);
		else if (c == '\n')
			jb_printf("\\n");
		else if (c < 0x20 || c >= 0x7f)
			jb_printf("\\u%04x", c);
		else
			jb_printf("%c", c);
	}
	jb_printf("\"");
}

static void
jb_mac(const struct rte_ether_addr *a)
{
	char s[RTE_ETHER_ADDR_FMT_SIZE];

	snprintf(s, sizeof(s), "%02x:%02x:%02x:%02x:%02x:%02x", a->addr_bytes[0], a->addr_bytes[1],
		a->addr_bytes[2], a->addr_bytes[3], a->addr_bytes[4], a->addr_bytes[5]);
	jb_str(s);
}

static void
reply_flush(void)
{
	if (jb.oom) {
		fputs("{\"ok\":false,\"error\":\"out of memory building the answer\"}\n", out);
	} else {
		fwrite(jb.p, 1, jb.len, out);
		fputc('\n', out);
	}
	if (fflush(out) != 0)
		force_quit = 1; /* reader went away */
}

static void
reply_error(const char *msg)
{
	jb_reset();
	jb_printf("{\"ok\":false,\"error\":");
	jb_str(msg);
	jb_printf("}");
	reply_flush();
}

/* ------------------------------------------------------------- rx stats */

static void
acc_reset(struct vup_acc *a)
{
	uint32_t i;

	for (i = 0; i < a->nflows; i++)
		free(a->flows[i].seen);
	free(a->flows);
	free(a->slots);
	memset(a, 0, sizeof(*a));
}

static struct vup_flow *
acc_flow(struct vup_acc *a, uint32_t flow)
{
	uint32_t h, i;

	if (a->slots == NULL) {
		a->slots = malloc(sizeof(*a->slots) * VUP_FLOW_SLOTS);
		a->flows = calloc(VUP_MAX_FLOWS, sizeof(*a->flows));
		if (a->slots == NULL || a->flows == NULL) {
			free(a->slots);
			free(a->flows);
			a->slots = NULL;
			a->flows = NULL;
			return NULL;
		}
		for (i = 0; i < VUP_FLOW_SLOTS; i++)
			a->slots[i] = -1;
	}
	h = (uint32_t)mix64(flow) & (VUP_FLOW_SLOTS - 1);
	for (;;) {
		int32_t idx = a->slots[h];

		if (idx < 0)
			break;
		if (a->flows[idx].flow == flow)
			return &a->flows[idx];
		h = (h + 1) & (VUP_FLOW_SLOTS - 1);
	}
	if (a->nflows >= VUP_MAX_FLOWS)
		return NULL;
	struct vup_flow *f = &a->flows[a->nflows];

	memset(f, 0, sizeof(*f));
	f->flow = flow;
	f->min_seq = UINT32_MAX;
	a->slots[h] = (int32_t)a->nflows;
	a->nflows++;
	return f;
}

static void
flow_seq(struct vup_flow *f, uint32_t seq)
{
	bool seen_before = false;

	if (seq < VUP_MAX_SEQ_TRACK) {
		uint32_t byte = seq / 8;

		if (byte >= f->seen_bytes) {
			uint32_t n = f->seen_bytes ? f->seen_bytes : 128;
			uint8_t *p;

			while (n <= byte)
				n *= 2;
			p = realloc(f->seen, n);
			if (p == NULL) {
				f->untracked++;
				goto minmax;
			}
			memset(p + f->seen_bytes, 0, n - f->seen_bytes);
			f->seen = p;
			f->seen_bytes = n;
		}
		seen_before = (f->seen[byte] >> (seq % 8)) & 1;
		f->seen[byte] |= (uint8_t)(1u << (seq % 8));
		if (seen_before)
			f->dups++;
		else
			f->distinct++;
	} else {
		f->untracked++;
	}
minmax:
	if (f->valid > 1 && seq < f->max_seq && !seen_before)
		f->reordered++;
	if (seq < f->min_seq)
		f->min_seq = seq;
	if (f->valid == 1 || seq > f->max_seq)
		f->max_seq = seq;
}

/* Classify and account one received frame. */
static void
rx_account(struct vup_port *p, uint16_t q, struct rte_mbuf *m)
{
	struct vup_acc *a = &p->acc;
	struct vup_frame fr;
	const uint8_t *d;
	struct vup_hdr h;
	struct vup_flow *f;
	uint32_t len = rte_pktmbuf_pkt_len(m);
	uint32_t l2 = RTE_ETHER_HDR_LEN;
	uint32_t rest, untagged_len;
	bool ok;

	memset(&fr, 0, sizeof(fr));
	fr.vlan = -1;
	fr.pcp = -1;
	fr.queue = q;
	fr.len = len;

	a->received++;
	a->bytes += len;
	if (q < VUP_MAX_QUEUES)
		a->per_queue[q]++;

	if (len > VUP_BUF_SIZE || len < RTE_ETHER_HDR_LEN) {
		a->invalid++;
		goto record;
	}
	d = rte_pktmbuf_read(m, 0, len, rxbuf);
	if (d == NULL) {
		a->invalid++;
		goto record;
	}
	memcpy(&fr.dst, d, RTE_ETHER_ADDR_LEN);
	memcpy(&fr.src, d + RTE_ETHER_ADDR_LEN, RTE_ETHER_ADDR_LEN);
	fr.ethertype = (uint16_t)((d[12] << 8) | d[13]);

	if (m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED) {
		fr.vlan = m->vlan_tci & 0xfff;
		fr.pcp = m->vlan_tci >> 13;
		fr.vlan_stripped = true;
	} else if ((fr.ethertype == RTE_ETHER_TYPE_VLAN || fr.ethertype == RTE_ETHER_TYPE_QINQ) &&
		   len >= RTE_ETHER_HDR_LEN + 4) {
		uint16_t tci = (uint16_t)((d[14] << 8) | d[15]);

		fr.vlan = tci & 0xfff;
		fr.pcp = tci >> 13;
		fr.ethertype = (uint16_t)((d[16] << 8) | d[17]);
		l2 += 4;
	}

	if (fr.ethertype != VUP_ETHERTYPE) {
		a->other++;
		goto record;
	}
	if (len < l2 + VUP_HDR_LEN) {
		a->invalid++;
		goto record;
	}

	memcpy(&h, d + l2, sizeof(h));
	if (rte_be_to_cpu_32(h.magic) != VUP_MAGIC) {
		a->invalid++;
		goto record;
	}
	fr.has_hdr = true;
	fr.flow = rte_be_to_cpu_32(h.flow);
	fr.seq = rte_be_to_cpu_32(h.seq);
	fr.hdr_len = rte_be_to_cpu_32(h.len);

	/*
	 * The sender wrote the frame length including its own VLAN tag (if
	 * any); the switch may have pushed or popped one tag on the way, so
	 * accept the length with or without one tag. The payload itself must
	 * match byte for byte and the checksum pins its exact length.
	 */
	rest = len - l2 - VUP_HDR_LEN;
	untagged_len = len - (l2 - RTE_ETHER_HDR_LEN);
	fill_pattern(expbuf, rest, fr.flow, fr.seq);
	ok = (fr.hdr_len == untagged_len || fr.hdr_len == untagged_len + 4) &&
	     memcmp(expbuf, d + l2 + VUP_HDR_LEN, rest) == 0 &&
	     payload_csum(expbuf, rest) == rte_be_to_cpu_64(h.csum);
	fr.ok = ok;
	if (ok)
		a->valid++;
	else
		a->invalid++;

	f = acc_flow(a, fr.flow);
	if (f == NULL) {
		a->flows_dropped++;
		goto record;
	}
	f->count++;
	if (ok) {
		f->valid++;
		flow_seq(f, fr.seq);
	}

record:
	if (a->nframes < VUP_MAX_LIST)
		a->frames[a->nframes++] = fr;
}

/* rx buffers (mergeable, one mbuf each) a frame of len bytes occupies */
static uint32_t
frame_bufs(uint32_t len)
{
	return (len + VUP_VNET_HDR_LEN + seg_room - 1) / seg_room;
}

static void
outstanding_sub(uint32_t bufs)
{
	if (outstanding > 0) {
		outstanding -= bufs;
		if (outstanding < 0)
			outstanding = 0;
		outstanding_ns = now_ns();
	}
}

/* Empty every rx queue of the port (bounded, so tx still makes progress). */
static unsigned int
poll_port(struct vup_port *p)
{
	struct rte_mbuf *pkts[VUP_RX_BURST];
	unsigned int total = 0, got;
	uint16_t q, i, n;

	if (!p->started)
		return 0;
	for (q = 0; q < p->queues; q++) {
		got = 0;
		do {
			n = rte_eth_rx_burst(p->port_id, q, pkts, VUP_RX_BURST);
			for (i = 0; i < n; i++) {
				outstanding_sub(frame_bufs(rte_pktmbuf_pkt_len(pkts[i])));
				rx_account(p, q, pkts[i]);
				rte_pktmbuf_free(pkts[i]);
			}
			got += n;
		} while (n == VUP_RX_BURST && got < VUP_RX_MAX_POLL);
		total += got;
	}
	rx_total += total;
	if (total != 0) {
		p->last_rx_ns = now_ns();
		last_rx_any_ns = p->last_rx_ns;
	}
	return total;
}

static unsigned int
poll_all(void)
{
	unsigned int i, total = 0;

	for (i = 0; i < nb_ports; i++)
		total += poll_port(&ports[i]);
	return total;
}

/* ------------------------------------------------------------ arguments */

static int
args_split(char *line, char **cmd, struct vup_args *args)
{
	char *save = NULL;
	char *tok;

	args->n = 0;
	*cmd = strtok_r(line, " \t\r", &save);
	while ((tok = strtok_r(NULL, " \t\r", &save)) != NULL) {
		char *eq = strchr(tok, '=');

		if (eq == NULL || eq == tok) {
			set_err("argument '%s' is not key=value", tok);
			return -1;
		}
		if (args->n >= VUP_MAX_ARGS) {
			set_err("too many arguments");
			return -1;
		}
		*eq = '\0';
		args->kv[args->n].key = tok;
		args->kv[args->n].val = eq + 1;
		args->kv[args->n].used = false;
		args->n++;
	}
	return 0;
}

static const char *
arg_get(struct vup_args *args, const char *key)
{
	int i;

	for (i = args->n - 1; i >= 0; i--) {
		if (strcmp(args->kv[i].key, key) == 0) {
			args->kv[i].used = true;
			return args->kv[i].val;
		}
	}
	return NULL;
}

/* 1: found, 0: absent (*v untouched), -1: invalid */
static int
arg_u64(struct vup_args *args, const char *key, uint64_t min, uint64_t max, uint64_t *v)
{
	const char *s = arg_get(args, key);
	char *end;
	unsigned long long x;

	if (s == NULL)
		return 0;
	errno = 0;
	x = strtoull(s, &end, 0);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || x < min || x > max) {
		set_err("bad value for %s: '%s' (expected %" PRIu64 "..%" PRIu64 ")", key, s, min,
			max);
		return -1;
	}
	*v = x;
	return 1;
}

static int
arg_mac(struct vup_args *args, const char *key, struct rte_ether_addr *mac)
{
	const char *s = arg_get(args, key);

	if (s == NULL)
		return 0;
	if (rte_ether_unformat_addr(s, mac) != 0) {
		set_err("bad MAC address for %s: '%s'", key, s);
		return -1;
	}
	return 1;
}

static int
args_check_unused(struct vup_args *args)
{
	int i;

	for (i = 0; i < args->n; i++) {
		if (!args->kv[i].used) {
			set_err("unknown argument '%s'", args->kv[i].key);
			return -1;
		}
	}
	return 0;
}

static struct vup_port *
arg_port(struct vup_args *args)
{
	const char *s = arg_get(args, "port");
	unsigned int i;

	if (s == NULL) {
		set_err("missing port=NAME");
		return NULL;
	}
	for (i = 0; i < nb_ports; i++)
		if (strcmp(ports[i].name, s) == 0)
			return &ports[i];
	set_err("unknown port '%s'", s);
	return NULL;
}

/* ------------------------------------------------------------- commands */

struct send_args {
	struct rte_ether_addr src;
	struct rte_ether_addr dst;
	int vlan;
	unsigned int pcp;
	uint32_t flow;
	uint32_t size;
	uint16_t ethertype;
	bool corrupt;
};

static struct rte_mbuf *
build_frame(const struct send_args *sa, uint32_t seq)
{
	uint8_t *f = txbuf;
	uint32_t l2 = RTE_ETHER_HDR_LEN;
	uint32_t rest, off, left;
	struct vup_hdr h;
	struct rte_mbuf *head, *cur;

	memcpy(f, &sa->dst, RTE_ETHER_ADDR_LEN);
	memcpy(f + 6, &sa->src, RTE_ETHER_ADDR_LEN);
	if (sa->vlan >= 0) {
		uint16_t tci = (uint16_t)((sa->pcp << 13) | (unsigned int)sa->vlan);

		f[12] = RTE_ETHER_TYPE_VLAN >> 8;
		f[13] = RTE_ETHER_TYPE_VLAN & 0xff;
		f[14] = tci >> 8;
		f[15] = tci & 0xff;
		l2 += 4;
	}
	f[l2 - 2] = sa->ethertype >> 8;
	f[l2 - 1] = sa->ethertype & 0xff;

	rest = sa->size - l2 - VUP_HDR_LEN;
	fill_pattern(f + l2 + VUP_HDR_LEN, rest, sa->flow, seq);
	h.magic = rte_cpu_to_be_32(VUP_MAGIC);
	h.flow = rte_cpu_to_be_32(sa->flow);
	h.seq = rte_cpu_to_be_32(seq);
	h.len = rte_cpu_to_be_32(sa->size);
	h.csum = rte_cpu_to_be_64(payload_csum(f + l2 + VUP_HDR_LEN, rest));
	memcpy(f + l2, &h, sizeof(h));
	/* test hook for the receive-side checker: flip one payload byte */
	if (sa->corrupt)
		f[l2 + VUP_HDR_LEN + seq % rest] ^= 0x5a;

	head = rte_pktmbuf_alloc(pool);
	if (head == NULL)
		return NULL;
	cur = head;
	off = 0;
	left = sa->size;
	while (left > 0) {
		uint32_t chunk = RTE_MIN(left, (uint32_t)rte_pktmbuf_tailroom(cur));
		char *dst = rte_pktmbuf_append(cur, (uint16_t)chunk);

		if (dst == NULL) {
			if (cur != head)
				rte_pktmbuf_free(cur);
			goto fail;
		}
		memcpy(dst, f + off, chunk);
		off += chunk;
		left -= chunk;
		if (cur != head) {
			if (rte_pktmbuf_chain(head, cur) != 0) {
				rte_pktmbuf_free(cur);
				goto fail;
			}
		}
		if (left > 0) {
			cur = rte_pktmbuf_alloc(pool);
			if (cur == NULL)
				goto fail;
		}
	}
	return head;
fail:
	rte_pktmbuf_free(head);
	return NULL;
}

static void
cmd_send(struct vup_args *args)
{
	struct vup_port *p = arg_port(args);
	struct send_args sa;
	uint64_t queue = 0, count = 1, size = 64, vlan = UINT64_MAX, pcp = 0, flow = 0;
	uint64_t burst = VUP_DEF_BURST, timeout_ms = 2000, seq_start = 0;
	uint64_t window = UINT64_MAX, window_ms = VUP_DEF_WINDOW_MS;
	uint64_t ethertype = VUP_ETHERTYPE, corrupt = 0;
	uint64_t gap_us = 0, next_tx = 0;
	struct rte_mbuf *pend[VUP_MAX_BURST];
	uint32_t npend = 0, head = 0, built = 0, sent = 0, l2, fb;
	uint64_t last_progress, last_rx, rx_seen, released = 0, t, window_bufs;
	bool timed_out = false;
	int r;

	if (p == NULL)
		goto err;
	memset(&sa, 0, sizeof(sa));
	sa.src = p->mac;
	if (arg_u64(args, "queue", 0, p->queues - 1, &queue) < 0 ||
		arg_u64(args, "count", 0, UINT32_MAX, &count) < 0 ||
		arg_u64(args, "size", VUP_MIN_FRAME, VUP_MAX_FRAME, &size) < 0 ||
		arg_u64(args, "vlan", 0, 4095, &vlan) < 0 || arg_u64(args, "pcp", 0, 7, &pcp) < 0 ||
		arg_u64(args, "flow", 0, UINT32_MAX, &flow) < 0 ||
		arg_u64(args, "burst", 1, VUP_MAX_BURST, &burst) < 0 ||
		arg_u64(args, "timeout_ms", 0, 3600 * 1000, &timeout_ms) < 0 ||
		arg_u64(args, "seq_start", 0, UINT32_MAX, &seq_start) < 0 ||
		arg_u64(args, "window", 0, UINT32_MAX, &window) < 0 ||
		arg_u64(args, "window_ms", 1, 60000, &window_ms) < 0 ||
		arg_u64(args, "ethertype", 0x600, 0xffff, &ethertype) < 0 ||
		arg_u64(args, "corrupt", 0, 1, &corrupt) < 0 ||
		arg_u64(args, "gap_us", 0, 60ULL * 1000 * 1000, &gap_us) < 0 ||
		arg_mac(args, "src", &sa.src) < 0)
		goto err;
	r = arg_mac(args, "dst", &sa.dst);
	if (r < 0)
		goto err;
	if (r == 0) {
		set_err("missing dst=MAC");
		goto err;
	}
	if (args_check_unused(args) < 0)
		goto err;
	if (seq_start + count > (uint64_t)UINT32_MAX + 1) {
		set_err("seq_start + count exceeds the 32-bit sequence space");
		goto err;
	}
	sa.vlan = vlan == UINT64_MAX ? -1 : (int)vlan;
	sa.pcp = (unsigned int)pcp;
	sa.flow = (uint32_t)flow;
	sa.size = (uint32_t)size;
	sa.ethertype = (uint16_t)ethertype;
	sa.corrupt = corrupt != 0;
	if (sa.ethertype == RTE_ETHER_TYPE_VLAN || sa.ethertype == RTE_ETHER_TYPE_QINQ) {
		set_err("use vlan=VID to send tagged frames");
		goto err;
	}
	l2 = RTE_ETHER_HDR_LEN + (sa.vlan >= 0 ? 4 : 0);
	if (sa.size < l2 + VUP_HDR_LEN) {
		set_err("size %u too small", sa.size);
		goto err;
	}
	if (!p->multiseg && sa.size > seg_room) {
		set_err("size %u needs multi-segment tx, which port %s does not support", sa.size,
			p->name);
		goto err;
	}

	/*
	 * Self-clocking: frames sent (by any send) and not yet seen back on a
	 * port of this process are "outstanding"; with a window, sending
	 * pauses while they would fill more than window_bufs rx buffers, so
	 * a receiver in this process cannot overflow its rings even when the
	 * process gets descheduled. If nothing is received for window_ms the
	 * outstanding frames are written off ("released") and sending goes on.
	 */
	fb = frame_bufs(sa.size);
	if (window == UINT64_MAX) {
		uint32_t qs = min_queue_size == UINT32_MAX ? VUP_DEF_QSIZE : min_queue_size;

		window_bufs = RTE_MAX(qs / 2, fb);
	} else {
		window_bufs = window * fb;
	}
	window = window_bufs / fb;
	last_progress = now_ns();
	last_rx = last_progress;
	rx_seen = rx_total;
	if (last_progress - outstanding_ns > window_ms * 1000000ULL)
		outstanding = 0; /* stale: went elsewhere or got dropped */
	while (sent < count) {
		if (npend == 0 && gap_us > 0 && now_ns() < next_tx) {
			/* Paced: one burst per gap_us; receive meanwhile. */
			last_progress = now_ns();
			poll_all();
			if (force_quit)
				break;
			continue;
		}
		if (npend == 0) {
			uint32_t want = (uint32_t)RTE_MIN(burst, count - built);

			if (window_bufs != 0) {
				uint64_t room = 0;

				if ((uint64_t)outstanding < window_bufs)
					room = (window_bufs - (uint64_t)outstanding) / fb;
				want = (uint32_t)RTE_MIN((uint64_t)want, room);
				if (want == 0) {
					t = now_ns();
					if (rx_total != rx_seen) {
						rx_seen = rx_total;
						last_rx = t;
					} else if (t - last_rx > window_ms * 1000000ULL) {
						released += (uint64_t)outstanding / fb;
						outstanding = 0;
						last_rx = t;
					}
					/* not a tx stall: keep the tx timeout away */
					last_progress = t;
				}
			}
			head = 0;
			while (npend < want) {
				struct rte_mbuf *m =
					build_frame(&sa, (uint32_t)(seq_start + built));

				if (m == NULL)
					break;
				pend[npend++] = m;
				built++;
			}
			if (npend > 0 && gap_us > 0) {
				/* Next burst one gap later (after a stall: one gap from now). */
				t = now_ns();
				next_tx = (next_tx == 0 || t > next_tx + gap_us * 1000ULL ? t : next_tx) +
					  gap_us * 1000ULL;
			}
		}
		if (npend > 0) {
			uint16_t k = rte_eth_tx_burst(
				p->port_id, (uint16_t)queue, pend + head, (uint16_t)npend);

			if (k > 0) {
				sent += k;
				head += k;
				npend -= k;
				last_progress = now_ns();
				outstanding += (int64_t)k * fb;
				outstanding_ns = last_progress;
			}
		}
		/* Keep the receive rings (of every port) drained meanwhile. */
		poll_all();
		if (sent < count && now_ns() - last_progress > timeout_ms * 1000000ULL) {
			timed_out = true;
			break;
		}
		if (force_quit)
			break;
	}
	if (npend > 0)
		rte_pktmbuf_free_bulk(pend + head, npend);

	jb_reset();
	jb_printf("{\"ok\":true,\"sent\":%u,\"requested\":%" PRIu64
		  ",\"timed_out\":%s,\"window\":%" PRIu64 ",\"released\":%" PRIu64 "}",
		sent, count, timed_out ? "true" : "false", window, released);
	reply_flush();
	return;
err:
	reply_error(errmsg);
}

static void
jb_frame(const struct vup_frame *fr)
{
	jb_printf("{\"queue\":%u,\"src\":", fr->queue);
	jb_mac(&fr->src);
	jb_printf(",\"dst\":");
	jb_mac(&fr->dst);
	if (fr->vlan >= 0)
		jb_printf(",\"vlan\":%d,\"pcp\":%d,\"vlan_stripped\":%s", fr->vlan, fr->pcp,
			fr->vlan_stripped ? "true" : "false");
	else
		jb_printf(",\"vlan\":null,\"pcp\":null,\"vlan_stripped\":false");
	jb_printf(",\"len\":%u,\"ethertype\":%u", fr->len, fr->ethertype);
	if (fr->has_hdr)
		jb_printf(",\"flow\":%u,\"seq\":%u,\"hdr_len\":%u", fr->flow, fr->seq, fr->hdr_len);
	else
		jb_printf(",\"flow\":null,\"seq\":null,\"hdr_len\":null");
	jb_printf(",\"ok\":%s}", fr->ok ? "true" : "false");
}

static void
jb_acc(const struct vup_port *p, uint32_t list)
{
	const struct vup_acc *a = &p->acc;
	uint32_t i;

	jb_printf("{\"ok\":true,\"port\":");
	jb_str(p->name);
	jb_printf(",\"received\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"per_queue\":[", a->received,
		a->bytes);
	for (i = 0; i < p->queues; i++)
		jb_printf("%s%" PRIu64, i ? "," : "", i < VUP_MAX_QUEUES ? a->per_queue[i] : 0);
	jb_printf("],\"valid\":%" PRIu64 ",\"invalid\":%" PRIu64 ",\"other\":%" PRIu64
		  ",\"flows_dropped\":%" PRIu64 ",\"flows\":{",
		a->valid, a->invalid, a->other, a->flows_dropped);
	for (i = 0; i < a->nflows; i++) {
		const struct vup_flow *f = &a->flows[i];
		int64_t missing = 0;

		/* send numbers every flow from seq_start (default 0) */
		if (f->valid > 0)
			missing = (int64_t)f->max_seq + 1 - (int64_t)f->distinct -
				  (int64_t)f->untracked;
		if (missing < 0)
			missing = 0;
		jb_printf("%s\"%u\":{\"count\":%" PRIu64 ",\"valid\":%" PRIu64
			  ",\"invalid\":%" PRIu64 ",\"seqs_missing\":%" PRId64 ",\"dups\":%" PRIu64
			  ",\"reordered\":%" PRIu64,
			i ? "," : "", f->flow, f->count, f->valid, f->count - f->valid, missing,
			f->dups, f->reordered);
		if (f->valid > 0)
			jb_printf(",\"min_seq\":%u,\"max_seq\":%u}", f->min_seq, f->max_seq);
		else
			jb_printf(",\"min_seq\":null,\"max_seq\":null}");
	}
	jb_printf("},\"frames\":[");
	for (i = 0; i < a->nframes && i < list; i++) {
		if (i)
			jb_printf(",");
		jb_frame(&a->frames[i]);
	}
	jb_printf("]}");
}

static void
cmd_recv(struct vup_args *args)
{
	struct vup_port *p = arg_port(args);
	uint64_t timeout_ms = 1000, expect = 0, max_ms = 30000, list = VUP_DEF_LIST;
	uint64_t start, last;
	int has_expect;

	if (p == NULL)
		goto err;
	has_expect = arg_u64(args, "expect", 0, UINT64_MAX, &expect);
	if (has_expect < 0 || arg_u64(args, "timeout_ms", 0, 3600 * 1000, &timeout_ms) < 0 ||
		arg_u64(args, "max_ms", 0, 3600 * 1000, &max_ms) < 0 ||
		arg_u64(args, "frames", 0, VUP_MAX_LIST, &list) < 0 || args_check_unused(args) < 0)
		goto err;

	start = now_ns();
	last = start;
	for (;;) {
		uint64_t t;

		poll_all();
		if (p->last_rx_ns > last)
			last = p->last_rx_ns;
		t = now_ns();
		if (has_expect) {
			if (p->acc.received >= expect)
				break;
			if (t - start >= timeout_ms * 1000000ULL)
				break;
		} else {
			if (t - last >= timeout_ms * 1000000ULL)
				break;
			if (t - start >= max_ms * 1000000ULL)
				break;
		}
		if (force_quit)
			break;
	}
	jb_reset();
	jb_acc(p, (uint32_t)list);
	reply_flush();
	acc_reset(&p->acc);
	return;
err:
	reply_error(errmsg);
}

static void
cmd_drain(struct vup_args *args)
{
	struct vup_port *p = arg_port(args);
	uint64_t timeout_ms = 20, start, last;

	if (p == NULL || arg_u64(args, "timeout_ms", 0, 60000, &timeout_ms) < 0 ||
		args_check_unused(args) < 0)
		goto err;
	start = now_ns();
	last = start;
	for (;;) {
		uint64_t t;

		poll_all();
		if (p->last_rx_ns > last)
			last = p->last_rx_ns;
		t = now_ns();
		if (t - last >= timeout_ms * 1000000ULL || t - start >= 10000000000ULL ||
			force_quit)
			break;
	}
	jb_reset();
	jb_printf("{\"ok\":true,\"port\":");
	jb_str(p->name);
	jb_printf(",\"drained\":%" PRIu64 "}", p->acc.received);
	reply_flush();
	acc_reset(&p->acc);
	return;
err:
	reply_error(errmsg);
}

static void
jb_u64_array(const uint64_t *v, unsigned int n)
{
	unsigned int i;

	jb_printf("[");
	for (i = 0; i < n; i++)
		jb_printf("%s%" PRIu64, i ? "," : "", v[i]);
	jb_printf("]");
}

static void
cmd_stats(struct vup_args *args)
{
	struct vup_port *p = arg_port(args);
	struct rte_eth_stats st;
	uint64_t reset = 0;
	unsigned int nq;
	int ret;

	if (p == NULL || arg_u64(args, "reset", 0, 1, &reset) < 0 || args_check_unused(args) < 0)
		goto err;
	ret = rte_eth_stats_get(p->port_id, &st);
	if (ret != 0) {
		set_err("rte_eth_stats_get: %s", rte_strerror(-ret));
		goto err;
	}
	nq = RTE_MIN(p->queues, RTE_ETHDEV_QUEUE_STAT_CNTRS);
	jb_reset();
	jb_printf("{\"ok\":true,\"port\":");
	jb_str(p->name);
	jb_printf(",\"ipackets\":%" PRIu64 ",\"opackets\":%" PRIu64 ",\"ibytes\":%" PRIu64
		  ",\"obytes\":%" PRIu64 ",\"imissed\":%" PRIu64 ",\"ierrors\":%" PRIu64
		  ",\"oerrors\":%" PRIu64 ",\"rx_nombuf\":%" PRIu64,
		st.ipackets, st.opackets, st.ibytes, st.obytes, st.imissed, st.ierrors, st.oerrors,
		st.rx_nombuf);
	jb_printf(",\"q_ipackets\":");
	jb_u64_array(st.q_ipackets, nq);
	jb_printf(",\"q_opackets\":");
	jb_u64_array(st.q_opackets, nq);
	jb_printf(",\"q_ibytes\":");
	jb_u64_array(st.q_ibytes, nq);
	jb_printf(",\"q_obytes\":");
	jb_u64_array(st.q_obytes, nq);
	jb_printf(",\"q_errors\":");
	jb_u64_array(st.q_errors, nq);
	jb_printf("}");
	if (reset)
		rte_eth_stats_reset(p->port_id);
	reply_flush();
	return;
err:
	reply_error(errmsg);
}

static void
cmd_link(struct vup_args *args)
{
	struct vup_port *p = arg_port(args);
	struct rte_eth_link link;
	uint64_t wait_ms = 0, start;
	int ret;

	if (p == NULL || arg_u64(args, "wait_ms", 0, 3600 * 1000, &wait_ms) < 0 ||
		args_check_unused(args) < 0)
		goto err;
	start = now_ns();
	for (;;) {
		memset(&link, 0, sizeof(link));
		ret = rte_eth_link_get_nowait(p->port_id, &link);
		if (ret != 0) {
			set_err("rte_eth_link_get_nowait: %s", rte_strerror(-ret));
			goto err;
		}
		if (link.link_status == RTE_ETH_LINK_UP ||
			now_ns() - start >= wait_ms * 1000000ULL || force_quit)
			break;
		poll_all();
		usleep(1000);
	}
	jb_reset();
	jb_printf("{\"ok\":true,\"port\":");
	jb_str(p->name);
	jb_printf(",\"up\":%s,\"speed\":%u,\"duplex\":\"%s\",\"autoneg\":%s,\"mac\":",
		link.link_status == RTE_ETH_LINK_UP ? "true" : "false", link.link_speed,
		link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX ? "full" : "half",
		link.link_autoneg ? "true" : "false");
	jb_mac(&p->mac);
	jb_printf("}");
	reply_flush();
	return;
err:
	reply_error(errmsg);
}

static void
cmd_ping(struct vup_args *args)
{
	unsigned int i;

	if (args_check_unused(args) < 0) {
		reply_error(errmsg);
		return;
	}
	jb_reset();
	jb_printf("{\"ok\":true,\"pid\":%d,\"ports\":{", (int)getpid());
	for (i = 0; i < nb_ports; i++) {
		if (i)
			jb_printf(",");
		jb_str(ports[i].name);
		jb_printf(":{\"port_id\":%u,\"queues\":%u,\"server\":%s,\"multiseg\":%s,\"mac\":",
			ports[i].port_id, ports[i].queues, ports[i].server ? "true" : "false",
			ports[i].multiseg ? "true" : "false");
		jb_mac(&ports[i].mac);
		jb_printf(",\"path\":");
		jb_str(ports[i].path);
		jb_printf("}");
	}
	jb_printf("}}");
	reply_flush();
}

/* Returns false when the program must exit. */
static bool
handle_line(char *line)
{
	struct vup_args args;
	char *cmd;

	if (strlen(line) > VUP_LINE_MAX) {
		reply_error("command line too long");
		return true;
	}
	if (args_split(line, &cmd, &args) < 0) {
		reply_error(errmsg);
		return true;
	}
	if (cmd == NULL || cmd[0] == '#') {
		reply_error("empty command");
		return true;
	}
	if (strcmp(cmd, "send") == 0) {
		cmd_send(&args);
	} else if (strcmp(cmd, "recv") == 0) {
		cmd_recv(&args);
	} else if (strcmp(cmd, "drain") == 0) {
		cmd_drain(&args);
	} else if (strcmp(cmd, "stats") == 0) {
		cmd_stats(&args);
	} else if (strcmp(cmd, "link") == 0) {
		cmd_link(&args);
	} else if (strcmp(cmd, "ping") == 0) {
		cmd_ping(&args);
	} else if (strcmp(cmd, "quit") == 0) {
		jb_reset();
		jb_printf("{\"ok\":true,\"quit\":true}");
		reply_flush();
		return false;
	} else {
		set_err("unknown command '%s'", cmd);
		reply_error(errmsg);
	}
	return true;
}

/* ---------------------------------------------------------------- setup */

static int
parse_port_opt(const char *spec)
{
	struct vup_port *p;
	char buf[1024];
	char *eq, *tok, *save = NULL;
	unsigned int i;

	if (nb_ports >= VUP_MAX_PORTS) {
		fprintf(stderr, "vu-peer: too many ports (max %d)\n", VUP_MAX_PORTS);
		return -1;
	}
	if (strlen(spec) >= sizeof(buf)) {
		fprintf(stderr, "vu-peer: --port argument too long\n");
		return -1;
	}
	strcpy(buf, spec);
	eq = strchr(buf, '=');
	if (eq == NULL || eq == buf || eq[1] == '\0') {
		fprintf(stderr, "vu-peer: --port expects NAME=SOCKPATH[,opts], got '%s'\n", spec);
		return -1;
	}
	*eq = '\0';
	p = &ports[nb_ports];
	memset(p, 0, sizeof(*p));
	if (strlen(buf) >= sizeof(p->name) || strpbrk(buf, " \t\"\\,") != NULL) {
		fprintf(stderr, "vu-peer: bad port name '%s'\n", buf);
		return -1;
	}
	for (i = 0; i < nb_ports; i++) {
		if (strcmp(ports[i].name, buf) == 0) {
			fprintf(stderr, "vu-peer: duplicate port name '%s'\n", buf);
			return -1;
		}
	}
	strcpy(p->name, buf);
	p->queues = 1;

	tok = strtok_r(eq + 1, ",", &save);
	if (tok == NULL || strlen(tok) >= sizeof(p->path)) {
		fprintf(stderr, "vu-peer: bad socket path in '%s'\n", spec);
		return -1;
	}
	strcpy(p->path, tok);
	while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
		char *v = strchr(tok, '=');
		char *end;
		unsigned long x;

		if (v == NULL) {
			fprintf(stderr, "vu-peer: port option '%s' is not key=value\n", tok);
			return -1;
		}
		*v++ = '\0';
		if (strcmp(tok, "queues") == 0) {
			x = strtoul(v, &end, 0);
			if (*end != '\0' || x < 1 || x > VUP_MAX_QUEUES) {
				fprintf(stderr, "vu-peer: queues must be 1..%d\n", VUP_MAX_QUEUES);
				return -1;
			}
			p->queues = (uint16_t)x;
		} else if (strcmp(tok, "queue_size") == 0) {
			x = strtoul(v, &end, 0);
			if (*end != '\0' || x < 16 || x > 32768) {
				fprintf(stderr, "vu-peer: bad queue_size '%s'\n", v);
				return -1;
			}
			p->queue_size = (uint32_t)x;
		} else if (strcmp(tok, "mac") == 0) {
			if (rte_ether_unformat_addr(v, &p->mac) != 0) {
				fprintf(stderr, "vu-peer: bad mac '%s'\n", v);
				return -1;
			}
			p->has_mac = true;
		} else if (strcmp(tok, "server") == 0) {
			p->server = strcmp(v, "0") != 0;
		} else if (strcmp(tok, "path") == 0) {
			fprintf(stderr, "vu-peer: give the socket path as NAME=PATH\n");
			return -1;
		} else {
			/* Other net_virtio_user devargs are passed through. */
			size_t l = strlen(p->extra);
			int n = snprintf(p->extra + l, sizeof(p->extra) - l, ",%s=%s", tok, v);

			if (n < 0 || (size_t)n >= sizeof(p->extra) - l) {
				fprintf(stderr, "vu-peer: too many port options\n");
				return -1;
			}
		}
	}
	snprintf(p->devname, sizeof(p->devname), "net_virtio_user%u", nb_ports);
	nb_ports++;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: vu-peer [EAL args] -- --port NAME=SOCK[,queues=N][,mac=MAC]"
			"[,server=1][,queue_size=N][,devarg=value...] [--port ...] "
			"[--idle-us N]\n");
}

static int
parse_app_args(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		bool is_port = false;

		if (strcmp(a, "--port") == 0 || strcmp(a, "--idle-us") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "vu-peer: %s needs a value\n", a);
				return -1;
			}
			is_port = a[2] == 'p';
			val = argv[++i];
		} else if (strncmp(a, "--port=", 7) == 0) {
			is_port = true;
			val = a + 7;
		} else if (strncmp(a, "--idle-us=", 10) == 0) {
			val = a + 10;
		} else {
			if (strcmp(a, "--help") != 0)
				fprintf(stderr, "vu-peer: unexpected argument '%s'\n", a);
			usage();
			return -1;
		}
		if (is_port) {
			if (parse_port_opt(val) < 0)
				return -1;
		} else {
			char *end;
			unsigned long x = strtoul(val, &end, 0);

			if (*val == '\0' || *end != '\0' || x > 1000000) {
				fprintf(stderr, "vu-peer: bad --idle-us '%s'\n", val);
				return -1;
			}
			idle_us = (unsigned int)x;
		}
	}
	if (nb_ports == 0) {
		fprintf(stderr, "vu-peer: at least one --port is required\n");
		usage();
		return -1;
	}
	return 0;
}

static int
probe_port(struct vup_port *p)
{
	char devargs[PATH_MAX + 1100];
	char macs[RTE_ETHER_ADDR_FMT_SIZE];
	struct stat st;
	int ret;

	snprintf(devargs, sizeof(devargs), "%s,path=%s,queues=%u", p->devname, p->path, p->queues);
	if (p->queue_size)
		snprintf(devargs + strlen(devargs), sizeof(devargs) - strlen(devargs),
			",queue_size=%u", p->queue_size);
	if (p->has_mac) {
		rte_ether_format_addr(macs, sizeof(macs), &p->mac);
		snprintf(devargs + strlen(devargs), sizeof(devargs) - strlen(devargs), ",mac=%s",
			macs);
	}
	if (p->server) {
		snprintf(devargs + strlen(devargs), sizeof(devargs) - strlen(devargs), ",server=1");
		/* A stale socket left by an earlier run would make bind() fail. */
		if (lstat(p->path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(p->path);
	}
	snprintf(devargs + strlen(devargs), sizeof(devargs) - strlen(devargs), "%s", p->extra);

	fprintf(stderr, "vu-peer: port %s: probing %s%s\n", p->name, devargs,
		p->server ? " (waits for the backend to connect)" : "");
	ret = rte_dev_probe(devargs);
	if (ret != 0) {
		fprintf(stderr, "vu-peer: port %s: cannot create %s: %s\n", p->name, p->devname,
			rte_strerror(-ret));
		return -1;
	}
	ret = rte_eth_dev_get_port_by_name(p->devname, &p->port_id);
	if (ret != 0) {
		fprintf(stderr, "vu-peer: port %s: no ethdev named %s\n", p->name, p->devname);
		return -1;
	}
	p->probed = true;
	return 0;
}

static int
start_port(struct vup_port *p)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	uint16_t q;
	int ret, socket = rte_eth_dev_socket_id(p->port_id);

	if (socket < 0)
		socket = (int)rte_socket_id();
	ret = rte_eth_dev_info_get(p->port_id, &info);
	if (ret != 0) {
		fprintf(stderr, "vu-peer: port %s: dev_info: %s\n", p->name, rte_strerror(-ret));
		return -1;
	}
	if (p->queues > info.max_rx_queues || p->queues > info.max_tx_queues) {
		fprintf(stderr, "vu-peer: port %s: %u queues requested, device has %u/%u\n",
			p->name, p->queues, info.max_rx_queues, info.max_tx_queues);
		return -1;
	}
	memset(&conf, 0, sizeof(conf));
	/* No VLAN strip: tags stay in the data unless the device strips. */
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) {
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
		p->multiseg = true;
	}
	if (conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_SCATTER)
		conf.rxmode.mtu = RTE_MIN((uint32_t)info.max_mtu, (uint32_t)VUP_MAX_FRAME);
	if (*info.dev_flags & RTE_ETH_DEV_INTR_LSC)
		conf.intr_conf.lsc = 1;

	ret = rte_eth_dev_configure(p->port_id, p->queues, p->queues, &conf);
	if (ret != 0 && conf.rxmode.mtu != 0) {
		fprintf(stderr,
			"vu-peer: port %s: configure with mtu %u failed (%s), retrying "
			"with the default mtu\n",
			p->name, conf.rxmode.mtu, rte_strerror(-ret));
		conf.rxmode.mtu = 0;
		ret = rte_eth_dev_configure(p->port_id, p->queues, p->queues, &conf);
	}
	if (ret != 0) {
		fprintf(stderr, "vu-peer: port %s: configure: %s\n", p->name, rte_strerror(-ret));
		return -1;
	}
	for (q = 0; q < p->queues; q++) {
		ret = rte_eth_rx_queue_setup(p->port_id, q, 0, (unsigned int)socket, NULL, pool);
		if (ret != 0) {
			fprintf(stderr, "vu-peer: port %s: rxq %u setup: %s\n", p->name, q,
				rte_strerror(-ret));
			return -1;
		}
		ret = rte_eth_tx_queue_setup(p->port_id, q, 0, (unsigned int)socket, NULL);
		if (ret != 0) {
			fprintf(stderr, "vu-peer: port %s: txq %u setup: %s\n", p->name, q,
				rte_strerror(-ret));
			return -1;
		}
	}
	ret = rte_eth_dev_start(p->port_id);
	if (ret != 0) {
		fprintf(stderr, "vu-peer: port %s: start: %s\n", p->name, rte_strerror(-ret));
		return -1;
	}
	p->started = true;
	rte_eth_promiscuous_enable(p->port_id);
	rte_eth_macaddr_get(p->port_id, &p->mac);
	return 0;
}

static void
close_ports(void)
{
	unsigned int i;

	for (i = 0; i < nb_ports; i++) {
		struct vup_port *p = &ports[i];

		if (p->started)
			rte_eth_dev_stop(p->port_id);
		p->started = false;
		if (p->probed)
			rte_eth_dev_close(p->port_id);
		p->probed = false;
		acc_reset(&p->acc);
	}
}

static void
on_signal(int sig)
{
	RTE_SET_USED(sig);
	force_quit = 1;
}

static bool
has_eal_opt(int argc, char **argv, const char *opt)
{
	size_t l = strlen(opt);
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strncmp(argv[i], opt, l) == 0 && (argv[i][l] == '\0' || argv[i][l] == '='))
			return true;
	return false;
}

static void
main_loop(void)
{
	static char inbuf[65536];
	size_t inlen = 0;
	bool eof = false;

	for (;;) {
		char *nl = memchr(inbuf, '\n', inlen);

		if (nl != NULL) {
			size_t used = (size_t)(nl - inbuf) + 1;
			bool go_on;

			*nl = '\0';
			go_on = handle_line(inbuf);
			memmove(inbuf, inbuf + used, inlen - used);
			inlen -= used;
			if (!go_on)
				return;
			continue;
		}
		if (inlen >= sizeof(inbuf) - 1) {
			reply_error("command line too long");
			inlen = 0;
		}
		if (eof) {
			if (inlen > 0) {
				inbuf[inlen] = '\0';
				inlen = 0;
				handle_line(inbuf);
			}
			return;
		}
		if (force_quit)
			return;

		/* Sleep a little between polls unless traffic is flowing. */
		struct timespec ts = {0, 0};
		struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
		int r;

		if (now_ns() - last_rx_any_ns >= VUP_ACTIVE_NS) {
			ts.tv_sec = idle_us / 1000000;
			ts.tv_nsec = (long)(idle_us % 1000000) * 1000;
		}
		r = ppoll(&pfd, 1, &ts, NULL);
		if (r > 0) {
			ssize_t n = read(STDIN_FILENO, inbuf + inlen, sizeof(inbuf) - 1 - inlen);

			if (n > 0)
				inlen += (size_t)n;
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				eof = true;
		}
		poll_all();
	}
}

int
main(int argc, char **argv)
{
	static char opt_sfs[] = "--single-file-segments";
	static char opt_no_pci[] = "--no-pci";
	char **eal_argv;
	char prefix_opt[64];
	int eal_argc = 0, ret, i, out_fd;
	unsigned int n_mbufs = 0, socket;
	struct sigaction sa;

	/*
	 * stdout carries the protocol only: keep a private copy of it and send
	 * everything else printed to fd 1 (by DPDK or drivers) to stderr.
	 */
	out_fd = dup(STDOUT_FILENO);
	if (out_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		perror("vu-peer: dup");
		return 1;
	}
	out = fdopen(out_fd, "w");
	if (out == NULL) {
		perror("vu-peer: fdopen");
		return 1;
	}
	rte_openlog_stream(stderr);
	signal(SIGPIPE, SIG_IGN);

	eal_argv = calloc((size_t)argc + 8, sizeof(*eal_argv));
	if (eal_argv == NULL)
		return 1;
	eal_argv[eal_argc++] = argv[0];
	if (!has_eal_opt(argc, argv, "--single-file-segments"))
		eal_argv[eal_argc++] = opt_sfs;
	if (!has_eal_opt(argc, argv, "--file-prefix")) {
		snprintf(prefix_opt, sizeof(prefix_opt), "--file-prefix=vupeer%d", (int)getpid());
		eal_argv[eal_argc++] = prefix_opt;
	}
	if (!has_eal_opt(argc, argv, "--no-pci") && !has_eal_opt(argc, argv, "-a") &&
		!has_eal_opt(argc, argv, "--allow"))
		eal_argv[eal_argc++] = opt_no_pci;
	for (i = 1; i < argc; i++)
		eal_argv[eal_argc++] = argv[i];

	ret = rte_eal_init(eal_argc, eal_argv);
	if (ret < 0) {
		fprintf(stderr, "vu-peer: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	/* rte_eal_init consumed ret arguments (after argv[0]). */
	eal_argc -= ret;
	eal_argv[ret] = argv[0];
	if (parse_app_args(eal_argc, eal_argv + ret) < 0) {
		rte_eal_cleanup();
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* rx rings + tx rings (jumbo frames chain several mbufs) + slack */
	for (i = 0; i < (int)nb_ports; i++) {
		uint32_t qs = ports[i].queue_size ? ports[i].queue_size : VUP_DEF_QSIZE;

		n_mbufs += ports[i].queues * qs * 3;
		min_queue_size = RTE_MIN(min_queue_size, qs);
	}
	n_mbufs += 4096;
	n_mbufs = RTE_MIN(n_mbufs, 32767u);
	socket = rte_socket_id();
	for (;;) {
		pool = rte_pktmbuf_pool_create(
			"vup_pool", n_mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)socket);
		if (pool != NULL || n_mbufs < 4096)
			break;
		n_mbufs /= 2;
	}
	if (pool == NULL) {
		fprintf(stderr, "vu-peer: cannot create mbuf pool: %s\n", rte_strerror(rte_errno));
		ret = 1;
		goto out;
	}
	seg_room = RTE_MBUF_DEFAULT_BUF_SIZE - RTE_PKTMBUF_HEADROOM;
	fprintf(stderr, "vu-peer: mbuf pool of %u mbufs\n", n_mbufs);

	for (i = 0; i < (int)nb_ports; i++) {
		if (force_quit || probe_port(&ports[i]) < 0 || start_port(&ports[i]) < 0) {
			ret = 1;
			goto out;
		}
	}
	fprintf(stderr, "vu-peer: %u port(s) up, reading commands\n", nb_ports);

	main_loop();
	ret = 0;
out:
	close_ports();
	if (pool != NULL)
		rte_mempool_free(pool);
	rte_eal_cleanup();
	fclose(out);
	return ret;
}
