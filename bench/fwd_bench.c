/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostd-fwd-bench: cycles per frame of vhostd's own switching code
 * (forward.c), without rte_vhost and without a guest.
 *
 * The end-to-end benchmarks (net-loopback.sh) spend ~75 % of the PMD in
 * rte_vhost's copies, and this host's speed moves up to 3x between
 * seconds, so a 10-cycle change in forward.c is invisible there. Here a
 * hand-built snapshot of sink ports is driven in one process:
 *
 *   base     allocate a burst of 64 B frames, write their headers, free them
 *            (with fwd_free_bulk(), as the switch does after a transmit)
 *   base, rte_pktmbuf_free_bulk   the same freed by DPDK's function
 *   xconnect the same, forwarded through a cross-connected port pair
 *   bridge   the same, through a two-port MAC learning bridge
 *   bridge-N the same, each frame to one of N learned destinations in turn
 *            (-r R: R frames to each before the next, as trains of a flow)
 *
 * The modes take turns in slices of a few milliseconds, so a change in the
 * host's speed lands on all of them; each mode's median slice is printed and
 * the switching cost is that minus base. Compare two builds by running both
 * in turn (bench/README.md).
 *
 * Usage: vhostd-fwd-bench [-c CPU] [-s SLICES] [-b BURSTS_PER_SLICE] [-n FLOWS] [-r RUN]
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "datapath.h"
#include "forward.h"
#include "mac_table.h"

#define N_MBUFS 8191
#define FRAME_LEN 64

enum mode { MODE_BASE, MODE_BASE_DPDK, MODE_XCONNECT, MODE_BRIDGE, MODE_BRIDGE_FLOWS, MODE_MAX };

static const char *const mode_name[MODE_MAX] = {
	[MODE_BASE] = "base (alloc, write, free)",
	[MODE_BASE_DPDK] = "base, rte_pktmbuf_free_bulk",
	[MODE_XCONNECT] = "xconnect",
	[MODE_BRIDGE] = "bridge, 1 flow",
	[MODE_BRIDGE_FLOWS] = "bridge, N flows",
};

/* Ports: 0 and 1 on bridge 0, 2 cross-connected to 3. */
#define P_BR_IN 0
#define P_BR_OUT 1
#define P_XC_IN 2
#define P_XC_OUT 3
#define N_PORTS 4
#define MAX_FLOWS 256

struct bench {
	struct rte_mempool *mp;
	struct dp_snapshot *snap;
	struct fwd_ctx *ctx;
	struct bridge br;
	struct mac_table macs;
	unsigned int n_flows;
	unsigned int run_len; /* frames to one destination before the next */
	uint8_t dst[MAX_FLOWS][RTE_ETHER_ADDR_LEN];
};

static const uint8_t MAC_SRC[RTE_ETHER_ADDR_LEN] = {0x02, 0, 0, 0, 0, 0x0a};

static int
add_port(struct bench *b, uint16_t idx)
{
	struct dp_port_view *v = &b->snap->ports[idx];
	struct port *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return -ENOMEM;
	p->stats = aligned_alloc(RTE_CACHE_LINE_SIZE, sizeof(*p->stats));
	if (p->stats == NULL) {
		free(p);
		return -ENOMEM;
	}
	memset(p->stats, 0, sizeof(*p->stats));
	p->idx = idx;
	p->vid = -1;
	snprintf(p->conf.name, sizeof(p->conf.name), "p%u", idx);
	p->conf.type = PORT_SINK;
	p->conf.admin_up = true;
	v->port = p;
	v->vid = -1;
	v->type = PORT_SINK;
	v->up = 1;
	v->vlan_mode = VLAN_MODE_TRUNK_ALL;
	v->max_frame = 1514;
	v->peer = DP_NONE;
	v->bridge = DP_NONE;
	return 0;
}

static int
setup(struct bench *b)
{
	b->snap = calloc(1, sizeof(*b->snap));
	b->ctx = calloc(1, sizeof(*b->ctx));
	if (b->snap == NULL || b->ctx == NULL)
		return -ENOMEM;
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		b->snap->ports[i].bridge = DP_NONE;
		b->snap->ports[i].peer = DP_NONE;
		b->snap->ports[i].vid = -1;
	}
	if (mac_table_init(&b->macs, 4096, 300) != 0)
		return -ENOMEM;
	b->br.macs = &b->macs;
	snprintf(b->br.conf.name, sizeof(b->br.conf.name), "br0");
	b->snap->bridges[0].br = &b->br;
	b->snap->n_pmd = 1;
	b->ctx->snap = b->snap;
	b->ctx->mp = b->mp;
	mac_clock_s = 100;
	for (uint16_t i = 0; i < N_PORTS; i++)
		if (add_port(b, i) != 0)
			return -ENOMEM;
	for (uint16_t i = P_BR_IN; i <= P_BR_OUT; i++) {
		struct dp_bridge_view *bv = &b->snap->bridges[0];

		b->snap->ports[i].bridge = 0;
		bv->ports[bv->n_ports++] = i;
	}
	b->snap->ports[P_XC_IN].peer = P_XC_OUT;
	b->snap->ports[P_XC_OUT].peer = P_XC_IN;
	/* Every destination is learned behind the output port. */
	for (unsigned int f = 0; f < MAX_FLOWS; f++) {
		uint8_t *d = b->dst[f];

		d[0] = 0x02;
		d[1] = 0;
		d[2] = 0;
		d[3] = 0x10;
		d[4] = (uint8_t)(f >> 8);
		d[5] = (uint8_t)f;
		mac_table_learn(&b->macs, d, 0, P_BR_OUT);
	}
	return 0;
}

/* What rte_vhost's dequeue does to the frames, minus the copy from the guest. */
/* Where make_burst() is in the sequence of destinations. */
struct flow_cursor {
	unsigned int flow;
	unsigned int sent; /* frames to it so far */
};

static int
make_burst(struct bench *b, struct rte_mbuf **pkts, struct flow_cursor *fc, unsigned int n_flows)
{
	if (rte_pktmbuf_alloc_bulk(b->mp, pkts, DP_BURST) != 0)
		return -ENOMEM;
	for (unsigned int i = 0; i < DP_BURST; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);

		m->data_len = FRAME_LEN;
		m->pkt_len = FRAME_LEN;
		memcpy(eth->dst_addr.addr_bytes, b->dst[fc->flow], RTE_ETHER_ADDR_LEN);
		memcpy(eth->src_addr.addr_bytes, MAC_SRC, RTE_ETHER_ADDR_LEN);
		eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
		if (++fc->sent == b->run_len) {
			fc->sent = 0;
			if (++fc->flow == n_flows)
				fc->flow = 0;
		}
	}
	return 0;
}

/* TSC cycles per frame of @bursts bursts in mode @m. */
static double
run_slice(struct bench *b, enum mode m, unsigned int bursts)
{
	struct rte_mbuf *pkts[DP_BURST];
	struct flow_cursor fc = {0, 0};
	unsigned int n_flows = m == MODE_BRIDGE_FLOWS ? b->n_flows : 1;
	uint64_t t0;

	t0 = rte_rdtsc();
	for (unsigned int i = 0; i < bursts; i++) {
		if (make_burst(b, pkts, &fc, n_flows) != 0)
			return -1;
		switch (m) {
		case MODE_BASE:
			fwd_free_bulk(pkts, DP_BURST); /* as the switch frees */
			break;
		case MODE_BASE_DPDK:
			rte_pktmbuf_free_bulk(pkts, DP_BURST);
			break;
		case MODE_XCONNECT:
			fwd_process(b->ctx, P_XC_IN, 0, pkts, DP_BURST);
			fwd_flush(b->ctx);
			break;
		default:
			fwd_process(b->ctx, P_BR_IN, 0, pkts, DP_BURST);
			fwd_flush(b->ctx);
			break;
		}
	}
	return (double)(rte_rdtsc() - t0) / ((double)bursts * DP_BURST);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void
usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-c CPU] [-s SLICES] [-b BURSTS_PER_SLICE] [-n FLOWS] [-r RUN]\n", prog);
}

int
main(int argc, char **argv)
{
	unsigned int cpu = 1, slices = 400, bursts = 1000, flows = 8, run_len = 1;
	static struct bench b;
	char lcores[32];
	double *cpf[MODE_MAX], med[MODE_MAX];
	uint64_t expect_br, expect_xc;
	int opt;

	while ((opt = getopt(argc, argv, "c:s:b:n:r:h")) != -1) {
		switch (opt) {
		case 'c':
			cpu = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 's':
			slices = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			bursts = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			flows = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'r':
			run_len = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (slices == 0 || bursts == 0 || flows == 0 || flows > MAX_FLOWS || run_len == 0) {
		fprintf(stderr, "fwd-bench: slices, bursts and run > 0, 1 <= flows <= %d\n",
			MAX_FLOWS);
		return 2;
	}
	snprintf(lcores, sizeof(lcores), "%u", cpu);
	/* Hugepages as in the daemon; without any, 4 KiB pages (slower, says so). */
	char *eal_argv[] = {argv[0], "-l", lcores, "--in-memory", "--no-pci", "--no-telemetry",
		"--log-level=error", "-m", "64", NULL, NULL};
	int eal_argc = (int)RTE_DIM(eal_argv) - 2;
	bool huge = true;

	if (rte_eal_init(eal_argc, eal_argv) < 0) {
		eal_argv[eal_argc++] = "--no-huge";
		huge = false;
		if (rte_eal_init(eal_argc, eal_argv) < 0) {
			fprintf(stderr, "fwd-bench: rte_eal_init failed\n");
			return 1;
		}
	}
	b.mp = rte_pktmbuf_pool_create(
		"fwdbench", N_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (b.mp == NULL || setup(&b) != 0) {
		fprintf(stderr, "fwd-bench: setup failed\n");
		return 1;
	}
	b.n_flows = flows;
	b.run_len = run_len;
	for (int m = 0; m < MODE_MAX; m++) {
		cpf[m] = calloc(slices, sizeof(double));
		if (cpf[m] == NULL)
			return 1;
		run_slice(&b, (enum mode)m, bursts / 10 + 1); /* warm up */
	}
	for (unsigned int s = 0; s < slices; s++)
		for (int m = 0; m < MODE_MAX; m++) {
			cpf[m][s] = run_slice(&b, (enum mode)m, bursts);
			if (cpf[m][s] < 0) {
				fprintf(stderr, "fwd-bench: out of mbufs (a leak?)\n");
				return 1;
			}
		}
	/* Every frame must have reached its output: otherwise the numbers lie. */
	expect_br = (uint64_t)slices * bursts * DP_BURST * 2;
	expect_xc = (uint64_t)slices * bursts * DP_BURST;
	uint64_t got_br = b.snap->ports[P_BR_OUT].port->stats->tx[0][0].packets;
	uint64_t got_xc = b.snap->ports[P_XC_OUT].port->stats->tx[0][0].packets;
	uint64_t warm = 2ULL * (bursts / 10 + 1) * DP_BURST;
	if (got_br != expect_br + warm || got_xc != expect_xc + warm / 2) {
		fprintf(stderr, "fwd-bench: frames lost: bridge %lu of %lu, xconnect %lu of %lu\n",
			(unsigned long)got_br, (unsigned long)(expect_br + warm),
			(unsigned long)got_xc, (unsigned long)(expect_xc + warm / 2));
		return 1;
	}
	printf("fwd-bench: 64 B frames, bursts of %d, %u slices of %u bursts per mode, "
	       "%u flows in runs of %u, CPU %u, %s, TSC %.2f GHz\n",
		DP_BURST, slices, bursts, flows, run_len, cpu,
		huge ? "hugepages" : "4 KiB pages (no hugepages)", (double)rte_get_tsc_hz() / 1e9);
	printf("%-28s %10s %10s %10s %10s\n", "mode", "median", "p10", "p90", "minus base");
	for (int m = 0; m < MODE_MAX; m++) {
		qsort(cpf[m], slices, sizeof(double), cmp_double);
		med[m] = cpf[m][slices / 2];
	}
	for (int m = 0; m < MODE_MAX; m++)
		printf("%-28s %10.1f %10.1f %10.1f %10.1f\n", mode_name[m], med[m],
			cpf[m][slices / 10], cpf[m][slices * 9 / 10], med[m] - med[MODE_BASE]);
	printf("RESULT base=%.1f base_dpdk_free=%.1f xconnect=%.1f bridge=%.1f bridge_flows=%.1f\n",
		med[MODE_BASE], med[MODE_BASE_DPDK] - med[MODE_BASE],
		med[MODE_XCONNECT] - med[MODE_BASE], med[MODE_BRIDGE] - med[MODE_BASE],
		med[MODE_BRIDGE_FLOWS] - med[MODE_BASE]);
	return 0;
}
