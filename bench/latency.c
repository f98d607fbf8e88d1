/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostd-latency: latency of single frames through a vhost-user backend.
 *
 *   vhostd-latency [EAL args...] -- --socket PATH [--socket PATH2] [options]
 *
 * Each --socket becomes a net_virtio_user<i> port (a client of the backend's
 * socket, or its server with --server). One frame at a time is sent on port
 * 0, carrying a sequence number and the TSC at the moment it was handed to
 * the PMD, and the program busy-polls the receive port (port 0 with one
 * port: the backend sends the frame back, e.g. a reflector; port 1 with two
 * ports: the backend forwards it from port 0 to port 1, one way) until that
 * frame arrives or --timeout-ms passes. Then it waits for the rest of the
 * gap (measured from the previous send) and sends the next one: the
 * backend sees one frame every --gap-ms and is otherwise idle.
 *
 * Frame (after the 14-byte Ethernet header, EtherType 0x88B5, integers in
 * host order except the magic): magic "vlat" | nonce u32 | seq u32 |
 * kind u32 | tsc u64, zero padded to --size bytes (no FCS).
 *
 * Before measuring, the program waits until every port's link is up, then
 * sends probe frames every 100 ms until one comes back (switches enable
 * queues a little after the vhost-user handshake), then --warmup frames
 * with the normal gap that are not counted, then --count measured frames.
 * With two ports, port 1 first sends a broadcast frame so that a learning
 * bridge knows where port 1's MAC is (and the measured frames are unicast
 * to it). With --cpu-pid, the CPU time of those processes (the run time of
 * all their threads, /proc/PID/task/TID/schedstat) over the measured part is
 * reported as a share of one CPU.
 *
 * Exit: 0 when at least one frame was measured, 1 when no frame came back
 * or the ports did not come up, 2 on usage errors.
 */

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#define LAT_MAX_PORTS 2
#define LAT_MAX_PIDS 8
#define LAT_ETHERTYPE 0x88B5
#define LAT_MAGIC 0x766c6174u /* "vlat" */
#define LAT_MIN_FRAME 60
#define LAT_MAX_FRAME 2048
#define LAT_BURST 32
#define LAT_NB_DESC 256
#define LAT_NB_MBUFS 2047
#define LAT_PROBE_MS 100

enum lat_kind {
	KIND_PROBE = 1,
	KIND_WARMUP = 2,
	KIND_MEASURE = 3,
	KIND_LEARN = 4,
};

struct lat_hdr {
	rte_be32_t magic;
	uint32_t nonce;
	uint32_t seq;
	uint32_t kind;
	uint64_t tsc;
} __rte_packed;

struct lat_port {
	char path[PATH_MAX];
	char devname[32];
	struct rte_ether_addr mac;
	uint16_t port_id;
	bool probed;
	bool started;
};

/* Options. */
static struct lat_port ports[LAT_MAX_PORTS];
static unsigned int nb_sockets;
static unsigned int nb_ports;
static bool server_mode;
static uint32_t frame_size = 64;
static uint32_t count = 200;
static uint32_t warmup = 10;
static double gap_ms = 100.0;
static double timeout_ms = 1000.0;
static double link_timeout_s = 30.0;
static double settle_ms = 500.0;
static bool json_out;
static const char *samples_path;
static struct rte_ether_addr dst_mac;
static bool has_dst;
static int cpu_pids[LAT_MAX_PIDS];
static unsigned int nb_cpu_pids;

/* State. */
static struct rte_mempool *pool;
static volatile sig_atomic_t force_quit;
static FILE *out;
static uint32_t nonce;
static uint32_t next_seq;
static uint64_t tsc_hz;
static uint8_t tmpl[LAT_MAX_FRAME];

/* Counters of the measured part. */
static uint64_t n_sent, n_received, n_lost, n_late, n_other, n_tx_fail;
static uint64_t n_probes;
static uint64_t *samples; /* round trips in TSC cycles, one per received frame */

static void
on_signal(int sig)
{
	(void)sig;
	force_quit = 1;
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t
ms_to_tsc(double ms)
{
	return (uint64_t)(ms * 1e-3 * (double)tsc_hz);
}

static void
usage(const char *prog)
{
	fprintf(stderr,
		"Usage: %s [EAL args] -- --socket PATH [--socket PATH2] [options]\n"
		"  --socket PATH      vhost-user socket of a port (once or twice)\n"
		"  --ports N          1: send and receive on port 0 (a reflector);\n"
		"                     2: send on port 0, receive on port 1 (default: sockets)\n"
		"  --server           virtio-user server mode: listen on the sockets\n"
		"  --size N           frame size in bytes without FCS, %u-%u (default %u)\n"
		"  --count N          measured frames (default %u)\n"
		"  --warmup N         frames sent first and not counted (default %u)\n"
		"  --gap-ms X         time from one send to the next; 0 = back to back (default "
		"%.0f)\n"
		"  --timeout-ms X     a frame not back after X ms is lost (default %.0f)\n"
		"  --dst MAC          destination MAC (default: port 1's MAC with 2 ports,\n"
		"                     broadcast with 1)\n"
		"  --link-timeout-s X wait this long for link up and the first echo (default "
		"%.0f)\n"
		"  --settle-ms X      wait after link up before the first probe (default %.0f)\n"
		"  --cpu-pid PID      report the CPU use of PID over the measured part\n"
		"                     (repeatable, summed)\n"
		"  --samples FILE     write every latency in ns, one per line, in send order\n"
		"  --json             one JSON object on stdout\n"
		"EAL args added first (given ones win): --single-file-segments --no-pci\n"
		"  --file-prefix=vlat<pid>\n",
		prog, LAT_MIN_FRAME, LAT_MAX_FRAME, frame_size, count, warmup, gap_ms, timeout_ms,
		link_timeout_s, settle_ms);
}

static int
parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *v)
{
	unsigned long long x;
	char *end;

	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || x < min || x > max)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int
parse_double(const char *s, double min, double max, double *v)
{
	double x;
	char *end;

	errno = 0;
	x = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(x >= min && x <= max))
		return -1;
	*v = x;
	return 0;
}

static int
parse_app_args(int argc, char **argv)
{
	enum {
		OPT_SOCKET = 256,
		OPT_PORTS,
		OPT_SERVER,
		OPT_SIZE,
		OPT_COUNT,
		OPT_WARMUP,
		OPT_GAP,
		OPT_TIMEOUT,
		OPT_DST,
		OPT_LINK_TIMEOUT,
		OPT_SETTLE,
		OPT_CPU_PID,
		OPT_SAMPLES,
		OPT_JSON,
		OPT_HELP,
	};
	static const struct option opts[] = {
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"ports", required_argument, NULL, OPT_PORTS},
		{"server", no_argument, NULL, OPT_SERVER},
		{"size", required_argument, NULL, OPT_SIZE},
		{"count", required_argument, NULL, OPT_COUNT},
		{"warmup", required_argument, NULL, OPT_WARMUP},
		{"gap-ms", required_argument, NULL, OPT_GAP},
		{"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
		{"dst", required_argument, NULL, OPT_DST},
		{"link-timeout-s", required_argument, NULL, OPT_LINK_TIMEOUT},
		{"settle-ms", required_argument, NULL, OPT_SETTLE},
		{"cpu-pid", required_argument, NULL, OPT_CPU_PID},
		{"samples", required_argument, NULL, OPT_SAMPLES},
		{"json", no_argument, NULL, OPT_JSON},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	uint32_t v;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			if (nb_sockets == LAT_MAX_PORTS) {
				fprintf(stderr, "vhostd-latency: at most %d --socket\n",
					LAT_MAX_PORTS);
				return -1;
			}
			if (strlen(optarg) >= sizeof(ports[0].path)) {
				fprintf(stderr, "vhostd-latency: socket path too long\n");
				return -1;
			}
			strcpy(ports[nb_sockets++].path, optarg);
			break;
		case OPT_PORTS:
			if (parse_u32(optarg, 1, LAT_MAX_PORTS, &v) < 0)
				goto bad;
			nb_ports = v;
			break;
		case OPT_SERVER:
			server_mode = true;
			break;
		case OPT_SIZE:
			if (parse_u32(optarg, LAT_MIN_FRAME, LAT_MAX_FRAME, &frame_size) < 0)
				goto bad;
			break;
		case OPT_COUNT:
			if (parse_u32(optarg, 1, 100000000, &count) < 0)
				goto bad;
			break;
		case OPT_WARMUP:
			if (parse_u32(optarg, 0, 100000000, &warmup) < 0)
				goto bad;
			break;
		case OPT_GAP:
			if (parse_double(optarg, 0, 3600e3, &gap_ms) < 0)
				goto bad;
			break;
		case OPT_TIMEOUT:
			if (parse_double(optarg, 0.001, 3600e3, &timeout_ms) < 0)
				goto bad;
			break;
		case OPT_DST:
			if (rte_ether_unformat_addr(optarg, &dst_mac) < 0)
				goto bad;
			has_dst = true;
			break;
		case OPT_LINK_TIMEOUT:
			if (parse_double(optarg, 0.1, 3600, &link_timeout_s) < 0)
				goto bad;
			break;
		case OPT_SETTLE:
			if (parse_double(optarg, 0, 600e3, &settle_ms) < 0)
				goto bad;
			break;
		case OPT_CPU_PID:
			if (nb_cpu_pids == LAT_MAX_PIDS || parse_u32(optarg, 1, INT_MAX, &v) < 0)
				goto bad;
			cpu_pids[nb_cpu_pids++] = (int)v;
			break;
		case OPT_SAMPLES:
			samples_path = optarg;
			break;
		case OPT_JSON:
			json_out = true;
			break;
		case OPT_HELP:
			usage(argv[0]);
			exit(0);
		default:
			usage(argv[0]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vhostd-latency: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (nb_sockets == 0) {
		usage(argv[0]);
		fprintf(stderr, "vhostd-latency: --socket is required\n");
		return -1;
	}
	if (nb_ports == 0)
		nb_ports = nb_sockets;
	if (nb_ports != nb_sockets) {
		fprintf(stderr, "vhostd-latency: --ports %u needs %u --socket\n", nb_ports,
			nb_ports);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "vhostd-latency: bad value for %s: '%s'\n", argv[optind - 1], optarg);
	return -1;
}

/* ---------------------------------------------------------------- ports */

static int
setup_port(unsigned int i)
{
	struct lat_port *p = &ports[i];
	struct rte_eth_conf conf;
	char devargs[PATH_MAX + 128], macs[RTE_ETHER_ADDR_FMT_SIZE];
	struct stat st;
	int ret, socket;

	/* Locally administered, unicast: 02:76:6c:<pid>:<port>. */
	p->mac.addr_bytes[0] = 0x02;
	p->mac.addr_bytes[1] = 0x76;
	p->mac.addr_bytes[2] = 0x6c;
	p->mac.addr_bytes[3] = (uint8_t)(getpid() >> 8);
	p->mac.addr_bytes[4] = (uint8_t)getpid();
	p->mac.addr_bytes[5] = (uint8_t)(i + 1);
	rte_ether_format_addr(macs, sizeof(macs), &p->mac);
	snprintf(p->devname, sizeof(p->devname), "net_virtio_user%u", i);
	snprintf(devargs, sizeof(devargs), "%s,path=%s,queues=1,queue_size=%u,mac=%s%s", p->devname,
		p->path, LAT_NB_DESC, macs, server_mode ? ",server=1" : "");
	/* A stale socket of an earlier run would make bind() fail. */
	if (server_mode && lstat(p->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(p->path);
	fprintf(stderr, "vhostd-latency: port %u: %s%s\n", i, devargs,
		server_mode ? " (waits for the backend to connect)" : "");
	ret = rte_dev_probe(devargs);
	if (ret != 0) {
		fprintf(stderr, "vhostd-latency: port %u: cannot create %s: %s\n", i, p->devname,
			rte_strerror(-ret));
		return -1;
	}
	p->probed = true;
	ret = rte_eth_dev_get_port_by_name(p->devname, &p->port_id);
	if (ret != 0) {
		fprintf(stderr, "vhostd-latency: port %u: no ethdev %s\n", i, p->devname);
		return -1;
	}
	socket = rte_eth_dev_socket_id(p->port_id);
	if (socket < 0)
		socket = (int)rte_socket_id();
	memset(&conf, 0, sizeof(conf));
	ret = rte_eth_dev_configure(p->port_id, 1, 1, &conf);
	if (ret == 0)
		ret = rte_eth_rx_queue_setup(
			p->port_id, 0, LAT_NB_DESC, (unsigned int)socket, NULL, pool);
	if (ret == 0)
		ret = rte_eth_tx_queue_setup(
			p->port_id, 0, LAT_NB_DESC, (unsigned int)socket, NULL);
	if (ret == 0)
		ret = rte_eth_dev_start(p->port_id);
	if (ret != 0) {
		fprintf(stderr, "vhostd-latency: port %u: setup: %s\n", i, rte_strerror(-ret));
		return -1;
	}
	p->started = true;
	rte_eth_promiscuous_enable(p->port_id);
	return 0;
}

static void
close_ports(void)
{
	for (unsigned int i = 0; i < nb_ports; i++) {
		struct lat_port *p = &ports[i];

		if (p->started)
			rte_eth_dev_stop(p->port_id);
		if (p->probed)
			rte_eth_dev_close(p->port_id);
		p->started = p->probed = false;
	}
}

static bool
links_up(void)
{
	for (unsigned int i = 0; i < nb_ports; i++) {
		struct rte_eth_link link;

		if (rte_eth_link_get_nowait(ports[i].port_id, &link) != 0 ||
			link.link_status != RTE_ETH_LINK_UP)
			return false;
	}
	return true;
}

/* --------------------------------------------------------------- frames */

static void
build_template(void)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)tmpl;
	struct lat_hdr *h = (struct lat_hdr *)(eth + 1);

	memset(tmpl, 0, sizeof(tmpl));
	if (has_dst)
		rte_ether_addr_copy(&dst_mac, &eth->dst_addr);
	else if (nb_ports == 2)
		rte_ether_addr_copy(&ports[1].mac, &eth->dst_addr);
	else
		memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
	rte_ether_addr_copy(&ports[0].mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(LAT_ETHERTYPE);
	h->magic = rte_cpu_to_be_32(LAT_MAGIC);
	h->nonce = nonce;
}

/*
 * Send one frame of @kind on port @pi; returns its TSC stamp (0: the PMD
 * did not take it).
 */
static uint64_t
send_frame(unsigned int pi, uint32_t seq, uint32_t kind)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	struct rte_ether_hdr *eth;
	struct lat_hdr *h;
	uint64_t tsc;
	char *d;

	if (m == NULL)
		return 0;
	d = rte_pktmbuf_append(m, (uint16_t)frame_size);
	if (d == NULL) {
		rte_pktmbuf_free(m);
		return 0;
	}
	memcpy(d, tmpl, frame_size);
	eth = (struct rte_ether_hdr *)d;
	h = (struct lat_hdr *)(eth + 1);
	if (pi != 0) {
		/* The learn frame: from port 1 to everyone. */
		memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
		rte_ether_addr_copy(&ports[pi].mac, &eth->src_addr);
	}
	h->seq = seq;
	h->kind = kind;
	tsc = rte_rdtsc_precise();
	h->tsc = tsc;
	if (rte_eth_tx_burst(ports[pi].port_id, 0, &m, 1) != 1) {
		rte_pktmbuf_free(m);
		return 0;
	}
	return tsc;
}

/* Our frame (of this process) or not; fills seq, kind and the stamp. */
static bool
parse_frame(struct rte_mbuf *m, uint32_t *seq, uint32_t *kind, uint64_t *tsc)
{
	const struct rte_ether_hdr *eth;
	const struct lat_hdr *h;

	if (m->data_len < sizeof(*eth) + sizeof(*h))
		return false;
	eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	if (eth->ether_type != rte_cpu_to_be_16(LAT_ETHERTYPE))
		return false;
	h = (const struct lat_hdr *)(eth + 1);
	if (h->magic != rte_cpu_to_be_32(LAT_MAGIC) || h->nonce != nonce)
		return false;
	*seq = h->seq;
	*kind = h->kind;
	*tsc = h->tsc;
	return true;
}

/*
 * Poll port @pi once. Frames other than @want_seq are counted as late
 * (ours, an earlier seq) or other. Returns true and the frame's latency in
 * TSC cycles when @want_seq arrived.
 */
static bool
poll_port(unsigned int pi, uint32_t want_seq, bool want, uint64_t *lat)
{
	struct rte_mbuf *pkts[LAT_BURST];
	bool found = false;
	uint64_t now;
	uint16_t n;

	n = rte_eth_rx_burst(ports[pi].port_id, 0, pkts, LAT_BURST);
	if (n == 0)
		return false;
	now = rte_rdtsc_precise();
	for (uint16_t i = 0; i < n; i++) {
		uint32_t seq, kind;
		uint64_t tsc;

		if (!parse_frame(pkts[i], &seq, &kind, &tsc)) {
			n_other++;
		} else if (want && seq == want_seq && !found) {
			found = true;
			*lat = now - tsc;
		} else if (kind != KIND_LEARN) {
			n_late++;
		}
	}
	rte_pktmbuf_free_bulk(pkts, n);
	return found;
}

/* Poll every port until @until_tsc (frames arriving now are late ones). */
static void
drain_until(uint64_t until_tsc)
{
	uint64_t lat;

	do {
		for (unsigned int i = 0; i < nb_ports; i++)
			poll_port(i, 0, false, &lat);
	} while (rte_rdtsc() < until_tsc && !force_quit);
}

/*
 * Send frame @seq and busy-poll the receive port for it. Returns 1 and the
 * latency when it came back within the timeout, 0 when it did not, -1 when
 * it could not be sent.
 */
static int
round_trip(uint32_t seq, uint32_t kind, uint64_t timeout_tsc, uint64_t *sent_tsc, uint64_t *lat)
{
	unsigned int rx = nb_ports - 1;
	uint64_t t0 = send_frame(0, seq, kind), deadline;

	*sent_tsc = t0 != 0 ? t0 : rte_rdtsc();
	if (t0 == 0)
		return -1;
	deadline = t0 + timeout_tsc;
	while (!force_quit) {
		if (poll_port(rx, seq, true, lat))
			return 1;
		if (rte_rdtsc() > deadline)
			break;
	}
	return 0;
}

/* ----------------------------------------------------------- CPU usage */

/* utime + stime of @pid in ns (clock tick resolution), -1 if it is gone. */
static long long
proc_stat_ns(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip to the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	/* Fields 3.. follow; utime and stime are fields 14 and 15. */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)((double)(ut + st) * 1e9 / (double)sysconf(_SC_CLK_TCK));
}

/*
 * CPU time of every thread of @pid in ns: the sum of the first field of
 * /proc/PID/task/TID/schedstat (exact, unlike the clock ticks of
 * /proc/PID/stat); falls back to proc_stat_ns(). -1 if @pid is gone.
 */
static long long
proc_cpu_ns(int pid)
{
	char path[PATH_MAX];
	unsigned long long run;
	long long sum = 0;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		FILE *f;
		int ok;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", pid, e->d_name);
		f = fopen(path, "r");
		if (f == NULL) {
			if (errno == ENOENT && access("/proc/self/schedstat", R_OK) != 0) {
				closedir(d);
				return proc_stat_ns(pid);
			}
			continue; /* the thread just exited */
		}
		ok = fscanf(f, "%llu", &run) == 1;
		fclose(f);
		if (ok)
			sum += (long long)run;
	}
	closedir(d);
	return sum;
}

static long long
cpu_ns_all(void)
{
	long long sum = 0;

	for (unsigned int i = 0; i < nb_cpu_pids; i++) {
		long long t = proc_cpu_ns(cpu_pids[i]);

		if (t < 0)
			return -1;
		sum += t;
	}
	return sum;
}

/* ---------------------------------------------------------------- stats */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
tsc_to_us(uint64_t c)
{
	return (double)c * 1e6 / (double)tsc_hz;
}

/* Nearest-rank percentile of sorted @v. */
static uint64_t
pct(const uint64_t *v, uint64_t n, double p)
{
	uint64_t r = (uint64_t)ceil(p / 100.0 * (double)n);

	if (r < 1)
		r = 1;
	return v[r - 1];
}

/* ----------------------------------------------------------------- run */

static int
wait_ready(void)
{
	uint64_t t_end = mono_ns() + (uint64_t)(link_timeout_s * 1e9), sent, lat;

	while (!links_up()) {
		if (force_quit || mono_ns() > t_end) {
			fprintf(stderr, "vhostd-latency: link did not come up within %.0f s\n",
				link_timeout_s);
			return -1;
		}
		usleep(10000);
	}
	fprintf(stderr, "vhostd-latency: link up, settling %.0f ms\n", settle_ms);
	usleep((useconds_t)(settle_ms * 1000));
	while (!force_quit) {
		/* Tell a learning bridge where port 1 is. */
		if (nb_ports == 2)
			send_frame(1, 0, KIND_LEARN);
		drain_until(rte_rdtsc() + ms_to_tsc(1));
		n_probes++;
		if (round_trip(next_seq++, KIND_PROBE, ms_to_tsc(LAT_PROBE_MS), &sent, &lat) == 1) {
			fprintf(stderr, "vhostd-latency: first echo after %" PRIu64 " probe(s)\n",
				n_probes);
			return 0;
		}
		if (mono_ns() > t_end) {
			fprintf(stderr,
				"vhostd-latency: no frame came back within %.0f s (%" PRIu64
				" probes)\n",
				link_timeout_s, n_probes);
			return -1;
		}
	}
	return -1;
}

static void
run(uint64_t *wall_ns, double *cpu_pct)
{
	uint64_t gap = ms_to_tsc(gap_ms), to = ms_to_tsc(timeout_ms);
	uint64_t sent = rte_rdtsc(), lat, t0 = 0;
	long long cpu0 = -1, cpu1;
	uint32_t i;

	for (i = 0; i < warmup + count && !force_quit; i++) {
		bool measured = i >= warmup;
		int r;

		if (i == warmup) {
			/* Late or foreign frames of the warm-up do not count. */
			n_late = n_other = 0;
			t0 = mono_ns();
			cpu0 = nb_cpu_pids ? cpu_ns_all() : -1;
		}
		if (i > 0)
			drain_until(sent + gap);
		r = round_trip(next_seq++, measured ? KIND_MEASURE : KIND_WARMUP, to, &sent, &lat);
		if (!measured)
			continue;
		if (r < 0) {
			n_tx_fail++;
			continue;
		}
		n_sent++;
		if (r == 1)
			samples[n_received++] = lat;
		else
			n_lost++;
	}
	/* The last gap belongs to the measurement too. */
	if (!force_quit && gap > 0)
		drain_until(sent + gap);
	*wall_ns = t0 ? mono_ns() - t0 : 0;
	*cpu_pct = -1;
	cpu1 = nb_cpu_pids ? cpu_ns_all() : -1;
	if (cpu0 >= 0 && cpu1 >= 0 && *wall_ns > 0)
		*cpu_pct = (double)(cpu1 - cpu0) * 100.0 / (double)*wall_ns;
}

static void
report(uint64_t wall_ns, double cpu_pct, double tsc_err)
{
	uint64_t *v = NULL, sum = 0, n = n_received;
	double avg = 0;

	if (n > 0) {
		v = malloc(n * sizeof(*v));
		if (v == NULL)
			n = 0;
		else
			memcpy(v, samples, n * sizeof(*v));
	}
	if (n > 0) {
		qsort(v, n, sizeof(*v), cmp_u64);
		for (uint64_t i = 0; i < n; i++)
			sum += v[i];
		avg = tsc_to_us(sum) / (double)n;
	}
	if (json_out) {
		fprintf(out,
			"{\"ports\":%u,\"size\":%u,\"gap_ms\":%g,\"timeout_ms\":%g,\"count\":%u,"
			"\"warmup\":%u,\"sent\":%" PRIu64 ",\"received\":%" PRIu64
			",\"lost\":%" PRIu64 ",\"late\":%" PRIu64 ",\"other\":%" PRIu64
			",\"tx_fail\":%" PRIu64 ",\"probes\":%" PRIu64,
			nb_ports, frame_size, gap_ms, timeout_ms, count, warmup, n_sent, n_received,
			n_lost, n_late, n_other, n_tx_fail, n_probes);
		if (n > 0)
			fprintf(out,
				",\"min_us\":%.3f,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,"
				"\"max_us\":%.3f,\"avg_us\":%.3f",
				tsc_to_us(v[0]), tsc_to_us(pct(v, n, 50)), tsc_to_us(pct(v, n, 90)),
				tsc_to_us(pct(v, n, 99)), tsc_to_us(v[n - 1]), avg);
		else
			fprintf(out, ",\"min_us\":null,\"p50_us\":null,\"p90_us\":null,"
				     "\"p99_us\":null,\"max_us\":null,\"avg_us\":null");
		if (cpu_pct >= 0)
			fprintf(out, ",\"cpu_pct\":%.2f", cpu_pct);
		else
			fprintf(out, ",\"cpu_pct\":null");
		fprintf(out,
			",\"wall_s\":%.3f,\"tsc_hz\":%" PRIu64 ",\"eal_tsc_hz_err_ppm\":%.0f}\n",
			(double)wall_ns / 1e9, tsc_hz, tsc_err * 1e6);
	} else {
		fprintf(out,
			"vhostd-latency: %s, %u B frames, gap %g ms, %u measured after %u "
			"warm-up\n",
			nb_ports == 2 ? "2 ports (send on port 0, receive on port 1: one way)"
				      : "1 port (sent back to port 0: round trip)",
			frame_size, gap_ms, count, warmup);
		fprintf(out,
			"sent %" PRIu64 "  received %" PRIu64 "  lost %" PRIu64 "  late %" PRIu64
			"  other %" PRIu64 "  tx_fail %" PRIu64 "\n",
			n_sent, n_received, n_lost, n_late, n_other, n_tx_fail);
		if (n > 0)
			fprintf(out,
				"latency us: min %.2f  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  "
				"avg %.2f\n",
				tsc_to_us(v[0]), tsc_to_us(pct(v, n, 50)), tsc_to_us(pct(v, n, 90)),
				tsc_to_us(pct(v, n, 99)), tsc_to_us(v[n - 1]), avg);
		if (cpu_pct >= 0)
			fprintf(out, "cpu of pid(s) over %.1f s: %.1f %%\n", (double)wall_ns / 1e9,
				cpu_pct);
	}
	fflush(out);
	free(v);
}

static int
write_samples(void)
{
	FILE *f = fopen(samples_path, "w");

	if (f == NULL) {
		fprintf(stderr, "vhostd-latency: %s: %s\n", samples_path, strerror(errno));
		return -1;
	}
	for (uint64_t i = 0; i < n_received; i++)
		fprintf(f, "%.0f\n", tsc_to_us(samples[i]) * 1e3);
	return fclose(f) == 0 ? 0 : -1;
}

/*
 * argv with our EAL defaults inserted after argv[0]; an option the user
 * gives again later on the command line wins.
 */
static char **
eal_args(int argc, char **argv, int *n)
{
	static char prefix_opt[64];
	static char *defaults[] = {
		(char *)"--single-file-segments", (char *)"--no-pci", prefix_opt};
	char **v = calloc((size_t)argc + RTE_DIM(defaults) + 1, sizeof(*v));

	if (v == NULL)
		return NULL;
	snprintf(prefix_opt, sizeof(prefix_opt), "--file-prefix=vlat%d", (int)getpid());
	*n = 0;
	v[(*n)++] = argv[0];
	for (unsigned int i = 0; i < RTE_DIM(defaults); i++)
		v[(*n)++] = defaults[i];
	for (int i = 1; i < argc; i++)
		v[(*n)++] = argv[i];
	return v;
}

int
main(int argc, char **argv)
{
	uint64_t wall_ns = 0, tsc0, mono0;
	double cpu_pct = -1, tsc_err = 0;
	int eal_argc, ret, rc = 1;
	char **eal_argv;

	/* Results on stdout, everything DPDK says on stderr. */
	out = stdout;
	rte_openlog_stream(stderr);
	eal_argv = eal_args(argc, argv, &eal_argc);
	if (eal_argv == NULL)
		return 1;
	ret = rte_eal_init(eal_argc, eal_argv);
	if (ret < 0) {
		fprintf(stderr, "vhostd-latency: rte_eal_init failed: %s\n",
			rte_strerror(rte_errno));
		return 1;
	}
	eal_argc -= ret;
	eal_argv[ret] = argv[0];
	if (parse_app_args(eal_argc, eal_argv + ret) < 0) {
		rte_eal_cleanup();
		return 2;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	tsc_hz = rte_get_tsc_hz();
	nonce = (uint32_t)rte_rdtsc() ^ ((uint32_t)getpid() << 16);
	samples = calloc(count, sizeof(*samples));
	pool = rte_pktmbuf_pool_create(
		"lat_pool", LAT_NB_MBUFS, 32, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (samples == NULL || pool == NULL) {
		fprintf(stderr, "vhostd-latency: out of memory: %s\n", rte_strerror(rte_errno));
		goto out;
	}
	for (unsigned int i = 0; i < nb_ports; i++)
		if (force_quit || setup_port(i) < 0)
			goto out;
	build_template();
	if (wait_ready() < 0)
		goto out;

	tsc0 = rte_rdtsc();
	mono0 = mono_ns();
	run(&wall_ns, &cpu_pct);
	/*
	 * Convert with the TSC rate seen against CLOCK_MONOTONIC over the run;
	 * EAL's estimate can be off by a few 0.1 % in a VM.
	 */
	if (mono_ns() - mono0 > 200000000ULL) {
		uint64_t hz = (uint64_t)((double)(rte_rdtsc() - tsc0) * 1e9 /
					 (double)(mono_ns() - mono0));

		tsc_err = (double)hz / (double)tsc_hz - 1.0;
		if (fabs(tsc_err) > 0.01)
			fprintf(stderr,
				"vhostd-latency: warning: TSC runs at %" PRIu64
				" Hz, EAL said %" PRIu64 " Hz: is it invariant?\n",
				hz, tsc_hz);
		tsc_hz = hz;
	}
	report(wall_ns, cpu_pct, tsc_err);
	if (samples_path != NULL && write_samples() < 0)
		goto out;
	rc = n_received > 0 && !force_quit ? 0 : 1;
out:
	close_ports();
	if (pool != NULL)
		rte_mempool_free(pool);
	rte_eal_cleanup();
	free(samples);
	free(eal_argv);
	return rc;
}
