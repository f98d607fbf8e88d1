/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/virtio_net.h>
#include <urcu-qsbr.h>

#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "ctl_server.h"
#include "jsonrpc.h"
#include "datapath.h"
#include "ethdev.h"
#include "log.h"
#include "mac_table.h"
#include "pmd.h"
#include "vhost_net.h"
#include "vhost_scsi.h"

#define DP_MBUFS_PER_POOL 32767
#define DP_MBUF_CACHE 256

const char *const dp_drop_names[DROP_MAX] = {
	[DROP_NO_MBUF] = "no-mbuf",
	[DROP_FILTERED] = "filtered",
	[DROP_VLAN] = "vlan",
	[DROP_MTU] = "mtu",
	[DROP_NO_DEST] = "no-dest",
	[DROP_DOWN] = "down",
	[DROP_QUEUE_FULL] = "queue-full",
};

struct dp_registry dp;
struct dp_snapshot *dp_current;

/* Recursive: rte_vhost may call destroy_device from our own unregister call. */
static pthread_mutex_t dp_mutex;
static uint64_t dp_generation;
static struct rte_mempool *dp_pools[RTE_MAX_NUMA_NODES];

void
dp_lock(void)
{
	pthread_mutex_lock(&dp_mutex);
}

void
dp_unlock(void)
{
	pthread_mutex_unlock(&dp_mutex);
}

void
dp_wait_grace(void)
{
	synchronize_rcu();
}

void
dp_sleep_ms(unsigned int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

struct rte_mempool *
dp_mempool(int socket_id)
{
	char name[RTE_MEMPOOL_NAMESIZE];

	if (socket_id < 0 || socket_id >= RTE_MAX_NUMA_NODES)
		socket_id = 0;
	if (dp_pools[socket_id] != NULL)
		return dp_pools[socket_id];
	snprintf(name, sizeof(name), "mbuf-n%d", socket_id);
	dp_pools[socket_id] = rte_pktmbuf_pool_create(
		name, DP_MBUFS_PER_POOL, DP_MBUF_CACHE, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket_id);
	if (dp_pools[socket_id] == NULL) {
		/* A node without hugepages: better remote memory than no port. */
		VLOG_WARN("no mbuf pool on NUMA node %d (%s); using any node", socket_id,
			rte_strerror(rte_errno));
		dp_pools[socket_id] = rte_pktmbuf_pool_create(name, DP_MBUFS_PER_POOL,
			DP_MBUF_CACHE, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	}
	return dp_pools[socket_id];
}

int
dp_init(void)
{
	pthread_mutexattr_t attr;

	memset(&dp, 0, sizeof(dp));
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&dp_mutex, &attr);
	pthread_mutexattr_destroy(&attr);
	dp_current = calloc(1, sizeof(*dp_current));
	return dp_current == NULL ? -ENOMEM : 0;
}

/* ---- lookups ---------------------------------------------------------- */

struct port *
dp_port_find(const char *name)
{
	for (int i = 0; i < DP_MAX_PORTS; i++)
		if (dp.ports[i] != NULL && strcmp(dp.ports[i]->conf.name, name) == 0)
			return dp.ports[i];
	return NULL;
}

struct port *
dp_port_find_by_socket(const char *path)
{
	for (int i = 0; i < DP_MAX_PORTS; i++)
		if (dp.ports[i] != NULL && dp.ports[i]->conf.type == PORT_VHOST_USER &&
			strcmp(dp.ports[i]->conf.socket, path) == 0)
			return dp.ports[i];
	return NULL;
}

struct bridge *
dp_bridge_find(const char *name)
{
	for (int i = 0; i < DP_MAX_BRIDGES; i++)
		if (dp.bridges[i] != NULL && strcmp(dp.bridges[i]->conf.name, name) == 0)
			return dp.bridges[i];
	return NULL;
}

struct xconnect *
dp_xconnect_find(const char *name)
{
	for (int i = 0; i < DP_MAX_XCONNECTS; i++)
		if (dp.xconnects[i] != NULL && strcmp(dp.xconnects[i]->conf.name, name) == 0)
			return dp.xconnects[i];
	return NULL;
}

struct xconnect *
dp_port_xconnect(const struct port *p)
{
	for (int i = 0; i < DP_MAX_XCONNECTS; i++) {
		struct xconnect *x = dp.xconnects[i];

		if (x != NULL && (x->ports[0] == p->idx || x->ports[1] == p->idx))
			return x;
	}
	return NULL;
}

/* ---- snapshot ----------------------------------------------------------- */

static void
plan_rxqs(struct dp_snapshot *s, struct port *p)
{
	uint16_t nq = p->conf.type == PORT_ETHDEV ? p->eth_nrxq : p->nr_vring / 2;

	if (nq > DP_MAX_QUEUES)
		nq = DP_MAX_QUEUES;
	int numa = p->conf.type == PORT_VHOST_USER ? dp_sched_numa(p->vid) : -1;

	/*
	 * First keep every queue where it was (pinned ones go to their CPU),
	 * then place the new ones (datapath_sched.c).
	 */
	for (int pass = 0; pass < 2; pass++) {
		for (uint16_t q = 0; q < nq; q++) {
			uint16_t pmd = p->rxq_pmd[q];
			struct dp_pmd_plan *plan;

			if (p->conf.type == PORT_VHOST_USER &&
				!(p->vring_enabled & (1ULL << (2 * q + 1))))
				continue;
			if (pmd == DP_PARKED)
				continue; /* moving: nobody polls it for a grace period */
			if ((pass == 0) != (p->conf.rxq_pin[q] != 0 || pmd < s->n_pmd))
				continue;
			pmd = dp_sched_place(pmd, numa, p->conf.rxq_pin[q],
				pass == 0 ? DP_PLACE_STICKY : DP_PLACE_NEW);
			p->rxq_pmd[q] = pmd;
			if (pmd == DP_NONE)
				continue; /* pinned to a CPU without a PMD: reported by show */
			plan = &s->pmds[pmd];
			if (plan->n_rxq >= DP_MAX_RXQ_PER_PMD) {
				VLOG_WARN("port %s: pmd %u polls too many queues; queue %u not "
					  "polled",
					p->conf.name, pmd, q);
				continue;
			}
			plan->rxq[plan->n_rxq].port = p->idx;
			plan->rxq[plan->n_rxq].queue = q;
			plan->n_rxq++;
		}
	}
}

static void
snapshot_free(struct rcu_head *head)
{
	free(caa_container_of(head, struct dp_snapshot, rcu));
}

static int
bridge_index(const char *name)
{
	struct bridge *br = name[0] != '\0' ? dp_bridge_find(name) : NULL;

	return br != NULL ? br->idx : DP_NONE;
}

void
dp_publish(void)
{
	struct dp_snapshot *s, *old;
	size_t n_trunk = 0, t = 0;

	for (int i = 0; i < DP_MAX_PORTS; i++)
		if (dp.ports[i] != NULL && dp.ports[i]->conf.has_trunks)
			n_trunk++;
	s = calloc(1, sizeof(*s) + n_trunk * sizeof(s->trunk_store[0]));
	if (s == NULL) {
		/* Keep the old snapshot: traffic goes on as before the change. */
		VLOG_ERR("datapath: out of memory publishing a new configuration");
		return;
	}
	s->generation = ++dp_generation;
	s->n_pmd = dp.n_pmd;
	dp_sched_begin(s);
	for (int i = 0; i < DP_MAX_BRIDGES; i++)
		s->bridges[i].br = dp.bridges[i];
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		struct port *p = dp.ports[i];
		struct dp_port_view *v = &s->ports[i];

		v->bridge = DP_NONE;
		v->peer = DP_NONE;
		v->vid = -1;
		if (p == NULL || p->deleting)
			continue;
		v->port = p;
		v->type = p->conf.type;
		v->vid = p->vid;
		v->up = p->conf.admin_up && (p->conf.type != PORT_VHOST_USER || p->vid >= 0) &&
			(p->conf.type != PORT_ETHDEV || p->eth_open);
		/* Room for a VLAN tag, as OVS allows: 1518-byte frames at MTU 1500. */
		v->max_frame = p->conf.mtu + RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN;
		/* ethdev ports get complete checksums (no offload negotiated). */
		v->guest_csum = p->conf.type == PORT_VHOST_USER &&
				((p->features >> VIRTIO_NET_F_GUEST_CSUM) & 1);
		v->sc = p->conf.type == PORT_VHOST_USER && p->conf.single_copy != PORT_SC_OFF;
		v->sc_auto = v->sc && p->conf.single_copy == PORT_SC_AUTO;
		v->sc_ok = vhost_net_single_copy_ok(p);
		v->host_csum =
			p->conf.type == PORT_VHOST_USER && ((p->features >> VIRTIO_NET_F_CSUM) & 1);
		if (p->conf.type == PORT_ETHDEV && p->eth_open) {
			v->eth_port = p->eth_port;
			v->eth_ntxq = p->eth_ntxq;
			v->eth_tx_shared = p->eth_ntxq < dp.n_pmd;
			v->eth_rx_intr = p->eth_rx_intr;
			v->eth_txlock = p->eth_txlock;
		}
		p->vring_enabled = p->vid >= 0 ? vhost_net_vring_bits(p->vid) : 0;
		if (p->conf.tag != 0) {
			v->vlan_mode = VLAN_MODE_ACCESS;
			v->tag = p->conf.tag;
		} else if (p->conf.has_trunks) {
			v->vlan_mode = VLAN_MODE_TRUNK;
			memcpy(s->trunk_store[t], p->conf.trunks, sizeof(s->trunk_store[t]));
			v->trunks = s->trunk_store[t++];
		}
		if (p->vid >= 0) {
			for (uint16_t q = 0; q < p->nr_vring / 2 && q < DP_MAX_QUEUES; q++)
				if (p->vring_enabled & (1ULL << (2 * q)))
					v->txq[v->n_txq++] = q;
		}
		if (p->conf.bridge[0] != '\0') {
			int b = bridge_index(p->conf.bridge);

			if (b != DP_NONE) {
				struct dp_bridge_view *bv = &s->bridges[b];

				v->bridge = b;
				bv->ports[bv->n_ports++] = i;
			}
		}
		if (((p->conf.type == PORT_VHOST_USER && p->vid >= 0) ||
			    (p->conf.type == PORT_ETHDEV && p->eth_open)) &&
			s->n_pmd > 0)
			plan_rxqs(s, p);
	}
	for (int i = 0; i < DP_MAX_XCONNECTS; i++) {
		struct xconnect *x = dp.xconnects[i];

		if (x == NULL)
			continue;
		s->ports[x->ports[0]].peer = x->ports[1];
		s->ports[x->ports[1]].peer = x->ports[0];
		for (int k = 0; k < 2; k++) {
			struct dp_port_view *v = &s->ports[x->ports[k]];
			const struct dp_port_view *pv = &s->ports[x->ports[1 - k]];

			/* A checksum v leaves to the device must reach a pv that accepts that. */
			v->sc_peer = v->sc_ok && pv->sc_ok && !(v->host_csum && !pv->guest_csum);
		}
	}
	dp_publish_scsi(s);
	old = dp_current;
	rcu_assign_pointer(dp_current, s);
	/* Halted threads look at the new plan now (new queues to watch). */
	for (uint16_t i = 0; i < dp.n_pmd; i++)
		if (dp.pmds[i] != NULL)
			pmd_kick(dp.pmds[i]);
	/*
	 * Never wait here: rte_vhost callbacks publish while a PMD may spin on a
	 * vring lock they hold. Callers that free objects use dp_wait_grace().
	 */
	if (old != NULL)
		call_rcu(&old->rcu, snapshot_free);
}

/* ---- ports -------------------------------------------------------------- */

static int
free_index(void **slots, int n)
{
	for (int i = 0; i < n; i++)
		if (slots[i] == NULL)
			return i;
	return -1;
}

static void
port_free(struct port *p)
{
	if (p == NULL)
		return;
	rte_free(p->stats);
	rte_free(p->sc_vring);
	free(p->sc_mem);
	free(p->cleared);
	free(p);
}

static void
port_install_static_mac(struct port *p)
{
	struct bridge *br;

	if (!p->conf.has_mac || p->conf.bridge[0] == '\0')
		return;
	br = dp_bridge_find(p->conf.bridge);
	if (br == NULL)
		return;
	if (mac_table_add_static(br->macs, p->conf.mac, p->conf.tag, p->idx) != 0)
		VLOG_WARN("port %s: MAC table of %s full; its MAC is learned dynamically",
			p->conf.name, br->conf.name);
}

static void
port_forget_macs(struct port *p)
{
	struct bridge *br = p->conf.bridge[0] ? dp_bridge_find(p->conf.bridge) : NULL;

	if (br != NULL)
		mac_table_flush(br->macs, p->idx, true);
}

/* Checks shared by add and update; caller holds dp_lock. */
static int
port_check_refs(const struct port_conf *c, const struct port *self, struct ctl_error *err)
{
	if (c->bridge[0] != '\0' && dp_bridge_find(c->bridge) == NULL) {
		ctl_error_set(err, 0, ENOENT, "port %s: no bridge named %s", c->name, c->bridge);
		return -ENOENT;
	}
	if (c->bridge[0] != '\0' && self != NULL && dp_port_xconnect(self) != NULL) {
		ctl_error_set(err, 0, EBUSY, "port %s: in cross-connect %s; delete it first",
			c->name, dp_port_xconnect(self)->conf.name);
		return -EBUSY;
	}
	if (c->type == PORT_VHOST_USER) {
		struct port *o = dp_port_find_by_socket(c->socket);

		if (o != NULL && o != self) {
			ctl_error_set(err, 0, EADDRINUSE, "port %s: socket %s is used by port %s",
				c->name, c->socket, o->conf.name);
			return -EADDRINUSE;
		}
	}
	return 0;
}

int
dp_port_add(const struct port_conf *c, struct ctl_error *err)
{
	char msg[200] = "";
	struct port *p;
	int idx, rc;

	dp_lock();
	if (dp_port_find(c->name) != NULL) {
		ctl_error_set(err, 0, EEXIST, "port %s: already exists", c->name);
		rc = -EEXIST;
		goto out;
	}
	rc = port_check_refs(c, NULL, err);
	if (rc < 0)
		goto out;
	idx = free_index((void **)dp.ports, DP_MAX_PORTS);
	if (idx < 0) {
		ctl_error_set(err, 0, ENOSPC, "port %s: limit of %d ports reached", c->name,
			DP_MAX_PORTS);
		rc = -ENOSPC;
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (p != NULL) {
		p->stats = rte_zmalloc("port-stats", sizeof(*p->stats), RTE_CACHE_LINE_SIZE);
		p->cleared = calloc(1, sizeof(*p->cleared));
		if (c->type == PORT_VHOST_USER)
			p->sc_vring = rte_zmalloc("port-vrings",
				2 * DP_MAX_QUEUES * sizeof(*p->sc_vring), RTE_CACHE_LINE_SIZE);
	}
	if (p == NULL || p->stats == NULL || p->cleared == NULL ||
		(c->type == PORT_VHOST_USER && p->sc_vring == NULL)) {
		port_free(p);
		ctl_error_set(err, 0, ENOMEM, "port %s: out of memory", c->name);
		rc = -ENOMEM;
		goto out;
	}
	p->conf = *c;
	p->idx = idx;
	p->vid = -1;
	p->sc_mem_vid = -1;
	for (int q = 0; q < DP_MAX_QUEUES; q++)
		p->rxq_pmd[q] = DP_NONE;
	dp.ports[idx] = p;
	if (c->type == PORT_VHOST_USER) {
		rc = vhost_net_start(p, msg, sizeof(msg));
		if (rc < 0) {
			dp.ports[idx] = NULL;
			port_free(p);
			ctl_error_set(err, 0, -rc, "port %s: %s", c->name, msg);
			goto out;
		}
	}
	if (c->type == PORT_ETHDEV) {
		/*
		 * Probing may wait (a net_virtio_user server waits for its backend
		 * to connect): not under dp_lock, which the rte_vhost thread needs.
		 * The slot is taken and the port hidden until it is open.
		 */
		p->deleting = true;
		dp_unlock();
		rc = ethdev_port_open(p, msg, sizeof(msg));
		dp_lock();
		p->deleting = false;
		if (rc < 0) {
			dp.ports[idx] = NULL;
			port_free(p);
			ctl_error_set(err, 0, -rc, "port %s: %s", c->name, msg);
			goto out;
		}
	}
	port_install_static_mac(p);
	dp_publish();
	VLOG_INFO("port %s: added", c->name);
	rc = 0;
out:
	dp_unlock();
	return rc;
}

int
dp_port_del(const char *name, struct ctl_error *err)
{
	struct xconnect *x;
	struct port *p;

	dp_lock();
	p = dp_port_find(name);
	if (p == NULL || p->deleting) {
		dp_unlock();
		ctl_error_set(err, 0, ENOENT, "port %s: no such port", name);
		return -ENOENT;
	}
	x = dp_port_xconnect(p);
	if (x != NULL) {
		dp_unlock();
		ctl_error_set(err, 0, EBUSY, "port %s: in cross-connect %s; delete it first", name,
			x->conf.name);
		return -EBUSY;
	}
	p->deleting = true;
	port_forget_macs(p);
	dp_publish();
	dp_unlock();

	if (p->conf.type == PORT_VHOST_USER)
		vhost_net_stop(p);
	if (p->conf.type == PORT_ETHDEV) {
		/* No PMD may poll or transmit on it any more. */
		dp_wait_grace();
		ethdev_port_close(p);
	}

	dp_lock();
	dp.ports[p->idx] = NULL;
	/* A PMD may have learned the port again before it saw it go. */
	port_forget_macs(p);
	dp_publish();
	dp_unlock();
	dp_wait_grace();
	VLOG_INFO("port %s: deleted", name);
	port_free(p);
	return 0;
}

/* Fields that need the socket (and so the frontend connection) recreated. */
static bool
port_needs_restart(const struct port_conf *a, const struct port_conf *b)
{
	return a->type != b->type || strcmp(a->socket, b->socket) != 0 || a->client != b->client ||
	       strcmp(a->devargs, b->devargs) != 0 || a->queues != b->queues ||
	       a->csum != b->csum || a->mrg_rxbuf != b->mrg_rxbuf ||
	       (a->single_copy == PORT_SC_OFF) != (b->single_copy == PORT_SC_OFF);
}

int
dp_port_update(const char *name, const struct port_conf *c, struct ctl_error *err)
{
	struct port_conf old;
	struct port *p;
	int rc;

	dp_lock();
	p = dp_port_find(name);
	if (p == NULL || p->deleting) {
		dp_unlock();
		ctl_error_set(err, 0, ENOENT, "port %s: no such port", name);
		return -ENOENT;
	}
	rc = port_check_refs(c, p, err);
	if (rc < 0) {
		dp_unlock();
		return rc;
	}
	old = p->conf;
	if (strcmp(old.name, c->name) != 0) {
		dp_unlock();
		ctl_error_set(
			err, JSONRPC_INVALID_PARAMS, EINVAL, "port %s: cannot be renamed", name);
		return -EINVAL;
	}
	if (port_needs_restart(&old, c)) {
		dp_unlock();
		/* Recreate the socket; on failure put the old port back. */
		rc = dp_port_del(name, err);
		if (rc < 0)
			return rc;
		rc = dp_port_add(c, err);
		if (rc < 0) {
			struct ctl_error ignore;

			if (dp_port_add(&old, &ignore) < 0)
				VLOG_ERR(
					"port %s: lost: could not restore it after a failed change",
					name);
		}
		return rc;
	}
	port_forget_macs(p);
	p->conf = *c;
	port_install_static_mac(p);
	dp_publish();
	dp_unlock();
	VLOG_INFO("port %s: updated", name);
	return 0;
}

void
dp_port_counters(const struct port *p, int q, struct dp_counters *rx, struct dp_counters *tx)
{
	const struct port_stats *s = p->stats, *z = p->cleared;

	memset(rx, 0, sizeof(*rx));
	memset(tx, 0, sizeof(*tx));
	for (int i = 0; i < DP_MAX_QUEUES; i++) {
		if (q >= 0 && i != q)
			continue;
#define ADD(dst, a, b)                                                                             \
	do {                                                                                       \
		(dst)->packets += (a).packets - (b).packets;                                       \
		(dst)->bytes += (a).bytes - (b).bytes;                                             \
		(dst)->errors += (a).errors - (b).errors;                                          \
		(dst)->single_copy += (a).single_copy - (b).single_copy;                           \
		for (int d = 0; d < DROP_MAX; d++)                                                 \
			(dst)->drops[d] += (a).drops[d] - (b).drops[d];                            \
	} while (0)
		ADD(rx, s->rx[i], z->rx[i]);
		for (int m = 0; m < DP_MAX_PMDS; m++)
			ADD(tx, s->tx[m][i], z->tx[m][i]);
#undef ADD
	}
}

void
dp_stats_clear(struct port *p)
{
	/* PMDs own the counters; clearing moves the baseline instead. */
	memcpy(p->cleared, p->stats, sizeof(*p->cleared));
}

/* ---- bridges ------------------------------------------------------------ */

int
dp_bridge_add(const struct bridge_conf *c, struct ctl_error *err)
{
	struct bridge *br;
	int idx, rc;

	dp_lock();
	if (dp_bridge_find(c->name) != NULL) {
		ctl_error_set(err, 0, EEXIST, "bridge %s: already exists", c->name);
		rc = -EEXIST;
		goto out;
	}
	idx = free_index((void **)dp.bridges, DP_MAX_BRIDGES);
	if (idx < 0) {
		ctl_error_set(err, 0, ENOSPC, "bridge %s: limit of %d bridges reached", c->name,
			DP_MAX_BRIDGES);
		rc = -ENOSPC;
		goto out;
	}
	br = calloc(1, sizeof(*br));
	if (br != NULL)
		br->macs = calloc(1, sizeof(*br->macs));
	if (br == NULL || br->macs == NULL ||
		mac_table_init(br->macs, c->mac_table_size, c->mac_aging_s) != 0) {
		if (br != NULL)
			free(br->macs);
		free(br);
		ctl_error_set(err, 0, ENOMEM, "bridge %s: out of memory", c->name);
		rc = -ENOMEM;
		goto out;
	}
	br->conf = *c;
	br->idx = idx;
	dp.bridges[idx] = br;
	/* Ports of the config may name the bridge before it exists. */
	for (int i = 0; i < DP_MAX_PORTS; i++)
		if (dp.ports[i] != NULL && strcmp(dp.ports[i]->conf.bridge, c->name) == 0)
			port_install_static_mac(dp.ports[i]);
	dp_publish();
	VLOG_INFO("bridge %s: added", c->name);
	rc = 0;
out:
	dp_unlock();
	return rc;
}

int
dp_bridge_update(const char *name, const struct bridge_conf *c, struct ctl_error *err)
{
	struct mac_table *fresh = NULL, *old = NULL;
	struct bridge *br;

	dp_lock();
	br = dp_bridge_find(name);
	if (br == NULL) {
		dp_unlock();
		ctl_error_set(err, 0, ENOENT, "bridge %s: no such bridge", name);
		return -ENOENT;
	}
	if (strcmp(c->name, name) != 0) {
		dp_unlock();
		ctl_error_set(
			err, JSONRPC_INVALID_PARAMS, EINVAL, "bridge %s: cannot be renamed", name);
		return -EINVAL;
	}
	if (c->mac_table_size != br->conf.mac_table_size) {
		fresh = calloc(1, sizeof(*fresh));
		if (fresh == NULL ||
			mac_table_init(fresh, c->mac_table_size, c->mac_aging_s) != 0) {
			free(fresh);
			dp_unlock();
			ctl_error_set(err, 0, ENOMEM, "bridge %s: out of memory", name);
			return -ENOMEM;
		}
		old = br->macs;
		br->macs = fresh;
	}
	__atomic_store_n(&br->macs->aging_s, c->mac_aging_s, __ATOMIC_RELAXED);
	br->conf = *c;
	if (old != NULL) {
		/* PMDs read br->macs directly: wait before freeing the old table. */
		for (int i = 0; i < DP_MAX_PORTS; i++)
			if (dp.ports[i] != NULL && strcmp(dp.ports[i]->conf.bridge, name) == 0)
				port_install_static_mac(dp.ports[i]);
		dp_wait_grace();
		mac_table_fini(old);
		free(old);
	}
	dp_publish();
	dp_unlock();
	return 0;
}

int
dp_bridge_del(const char *name, struct ctl_error *err)
{
	struct bridge *br;

	dp_lock();
	br = dp_bridge_find(name);
	if (br == NULL) {
		dp_unlock();
		ctl_error_set(err, 0, ENOENT, "bridge %s: no such bridge", name);
		return -ENOENT;
	}
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		if (dp.ports[i] != NULL && strcmp(dp.ports[i]->conf.bridge, name) == 0) {
			ctl_error_set(err, 0, EBUSY, "bridge %s: port %s is attached to it", name,
				dp.ports[i]->conf.name);
			dp_unlock();
			return -EBUSY;
		}
	}
	dp.bridges[br->idx] = NULL;
	dp_publish();
	dp_unlock();
	dp_wait_grace();
	mac_table_fini(br->macs);
	free(br->macs);
	free(br);
	VLOG_INFO("bridge %s: deleted", name);
	return 0;
}

/* ---- cross-connects ----------------------------------------------------- */

int
dp_xconnect_add(const struct xconnect_conf *c, struct ctl_error *err)
{
	struct port *p[2];
	struct xconnect *x;
	int idx, rc = 0;

	dp_lock();
	if (dp_xconnect_find(c->name) != NULL) {
		ctl_error_set(err, 0, EEXIST, "xconnect %s: already exists", c->name);
		rc = -EEXIST;
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		p[i] = dp_port_find(c->ports[i]);
		if (p[i] == NULL || p[i]->deleting) {
			ctl_error_set(err, 0, ENOENT, "xconnect %s: no port named %s", c->name,
				c->ports[i]);
			rc = -ENOENT;
			goto out;
		}
		if (p[i]->conf.bridge[0] != '\0' || dp_port_xconnect(p[i]) != NULL) {
			ctl_error_set(err, 0, EBUSY,
				"xconnect %s: port %s is already on a bridge or cross-connect",
				c->name, c->ports[i]);
			rc = -EBUSY;
			goto out;
		}
	}
	if (p[0] == p[1]) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
			"xconnect %s: needs two different ports", c->name);
		rc = -EINVAL;
		goto out;
	}
	idx = free_index((void **)dp.xconnects, DP_MAX_XCONNECTS);
	x = idx < 0 ? NULL : calloc(1, sizeof(*x));
	if (x == NULL) {
		ctl_error_set(err, 0, ENOSPC, "xconnect %s: cannot add more", c->name);
		rc = -ENOSPC;
		goto out;
	}
	x->conf = *c;
	x->ports[0] = p[0]->idx;
	x->ports[1] = p[1]->idx;
	dp.xconnects[idx] = x;
	dp_publish();
	VLOG_INFO("xconnect %s: %s <-> %s", c->name, c->ports[0], c->ports[1]);
out:
	dp_unlock();
	return rc;
}

int
dp_xconnect_del(const char *name, struct ctl_error *err)
{
	struct xconnect *x;

	dp_lock();
	x = dp_xconnect_find(name);
	if (x == NULL) {
		dp_unlock();
		ctl_error_set(err, 0, ENOENT, "xconnect %s: no such cross-connect", name);
		return -ENOENT;
	}
	for (int i = 0; i < DP_MAX_XCONNECTS; i++)
		if (dp.xconnects[i] == x)
			dp.xconnects[i] = NULL;
	dp_publish();
	dp_unlock();
	free(x);
	return 0;
}

/* ---- PMD threads -------------------------------------------------------- */

static void
pmds_stop_all(void)
{
	dp.n_pmd = 0;
	dp_publish();
	for (int i = 0; i < DP_MAX_PMDS; i++) {
		pmd_destroy(dp.pmds[i]);
		dp.pmds[i] = NULL;
		dp_sched_pmd_reset((uint16_t)i);
	}
	for (int i = 0; i < DP_MAX_PORTS; i++)
		if (dp.ports[i] != NULL)
			for (int q = 0; q < DP_MAX_QUEUES; q++)
				dp.ports[i]->rxq_pmd[q] = DP_NONE;
}

/* Start a thread on @cpu in the first free slot; returns the slot. */
static int
pmd_add(const struct pmd_conf *c, int cpu, char *msg, size_t len)
{
	struct pmd_gov gov;
	struct pmd *p;
	int slot, rc;

	for (slot = 0; slot < DP_MAX_PMDS && dp.pmds[slot] != NULL; slot++)
		;
	if (slot == DP_MAX_PMDS) {
		snprintf(msg, len, "at most %d PMD threads", DP_MAX_PMDS);
		return -EINVAL;
	}
	dp_pmd_gov_of(c, cpu, &gov);
	p = pmd_create((uint16_t)slot, cpu, &gov, msg, len);
	if (p == NULL)
		return -ENOMEM;
	rc = pmd_start(p, msg, len);
	if (rc < 0) {
		pmd_destroy(p);
		return rc;
	}
	dp_sched_pmd_reset((uint16_t)slot);
	dp.pmds[slot] = p;
	if (slot >= dp.n_pmd)
		dp.n_pmd = (uint16_t)(slot + 1);
	return slot;
}

/* Join and free the threads marked leaving; they poll nothing any more. */
static void
pmds_reap_leaving(void)
{
	for (uint16_t i = 0; i < dp.n_pmd; i++) {
		if (dp.pmds[i] == NULL || !dp_sched_pmd_is_leaving(i))
			continue;
		pmd_destroy(dp.pmds[i]);
		dp.pmds[i] = NULL;
		dp_sched_pmd_reset(i);
	}
	while (dp.n_pmd > 0 && dp.pmds[dp.n_pmd - 1] == NULL)
		dp.n_pmd--;
	dp_publish();
}

/*
 * Take every queue off the threads marked leaving: scsi queues are drained
 * and restarted elsewhere, net rx queues move with the next snapshot
 * (ethdev queues after a grace period with no poller).
 */
static void
pmds_evacuate(void)
{
	uint64_t paused[DP_MAX_SCSI] = {0};
	bool parked = false;

	for (int i = 0; i < DP_MAX_SCSI; i++) {
		struct scsi_ctrl *c = dp.scsi[i];

		for (int q = 0; c != NULL && q < DP_MAX_QUEUES; q++)
			if (c->rxq_pmd[q] < dp.n_pmd && dp_sched_pmd_is_leaving(c->rxq_pmd[q]))
				paused[i] |= 1ULL << (q + 2) | (q == 0);
		if (paused[i])
			vhost_scsi_pause(c, paused[i]);
	}
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		struct port *p = dp.ports[i];

		for (int q = 0; p != NULL && p->conf.type != PORT_VHOST_USER && q < DP_MAX_QUEUES;
			q++)
			if (p->rxq_pmd[q] < dp.n_pmd && dp_sched_pmd_is_leaving(p->rxq_pmd[q])) {
				p->rxq_pmd[q] = DP_PARKED;
				parked = true;
			}
	}
	dp_publish();
	if (parked) {
		dp_wait_grace();
		for (int i = 0; i < DP_MAX_PORTS; i++)
			for (int q = 0; dp.ports[i] != NULL && q < DP_MAX_QUEUES; q++)
				if (dp.ports[i]->rxq_pmd[q] == DP_PARKED)
					dp.ports[i]->rxq_pmd[q] = DP_NONE;
		dp_publish();
	}
	/* No PMD uses a plan with the leaving threads' queues any more. */
	dp_wait_grace();
	for (int i = 0; i < DP_MAX_SCSI; i++)
		if (paused[i] && dp.scsi[i] != NULL)
			vhost_scsi_resume(dp.scsi[i]);
}

void
dp_pmd_gov_of(const struct pmd_conf *c, int cpu, struct pmd_gov *out)
{
	*out = c->gov;
	for (uint16_t i = 0; i < c->n_threads; i++) {
		if (c->threads[i].cpu != cpu)
			continue;
		if (c->threads[i].mode >= 0)
			out->mode = (uint8_t)c->threads[i].mode;
		if (c->threads[i].halt_poll_ns >= 0)
			out->halt_poll_ns = (uint32_t)c->threads[i].halt_poll_ns;
	}
}

int
dp_pmd_set(const struct pmd_conf *c, struct ctl_error *err)
{
	char msg[200] = "";
	bool keep[CPU_SETSIZE] = {false}, leaving = false;
	int added[DP_MAX_PMDS], n_added = 0, rc;

	dp_lock();
	/*
	 * Incremental: threads whose CPU stays keep running (with the new
	 * governor settings), new CPUs get new threads, and the queues of
	 * removed CPUs move before their threads stop. Only the queues that
	 * move see a pause (scsi: the drain of their commands in flight).
	 */
	for (uint16_t i = 0; i < dp.n_pmd; i++) {
		struct pmd *p = dp.pmds[i];
		struct pmd_gov gov;

		if (p == NULL)
			continue;
		if (dp.pmd_configured && CPU_ISSET(p->cpu, &c->cpus)) {
			keep[p->cpu] = true;
			dp_pmd_gov_of(c, p->cpu, &gov);
			pmd_set_gov(p, &gov);
		} else {
			leaving = true;
		}
	}
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &c->cpus) || keep[cpu])
			continue;
		rc = pmd_add(c, cpu, msg, sizeof(msg));
		if (rc < 0) {
			/* Undo: the new threads have no queue yet. */
			for (int k = 0; k < n_added; k++)
				dp_sched_pmd_leaving((uint16_t)added[k], true);
			pmds_reap_leaving();
			if (dp.pmd_configured)
				for (uint16_t i = 0; i < dp.n_pmd; i++) {
					struct pmd_gov gov;

					if (dp.pmds[i] == NULL)
						continue;
					dp_pmd_gov_of(&dp.pmd_conf, dp.pmds[i]->cpu, &gov);
					pmd_set_gov(dp.pmds[i], &gov);
				}
			dp_unlock();
			ctl_error_set(err, 0, -rc, "pmd: %s", msg);
			return rc;
		}
		added[n_added++] = rc;
	}
	/* Isolation and pins are judged with the new settings. */
	dp.pmd_conf = *c;
	dp.pmd_configured = true;
	if (leaving) {
		for (uint16_t i = 0; i < dp.n_pmd; i++)
			if (dp.pmds[i] != NULL && !keep[dp.pmds[i]->cpu] &&
				!CPU_ISSET(dp.pmds[i]->cpu, &c->cpus))
				dp_sched_pmd_leaving(i, true);
		pmds_evacuate();
		pmds_reap_leaving();
	} else {
		dp_publish();
	}
	dp_unlock();
	if (n_added > 0 || leaving)
		VLOG_INFO("pmd: %d thread(s) added, on CPUs %s now", n_added, c->cpus_text);
	return 0;
}

void
dp_shutdown(void)
{
	struct ctl_error err;

	for (int i = 0; i < DP_MAX_XCONNECTS; i++)
		if (dp.xconnects[i] != NULL)
			dp_xconnect_del(dp.xconnects[i]->conf.name, &err);
	for (int i = 0; i < DP_MAX_PORTS; i++)
		if (dp.ports[i] != NULL) {
			char name[DP_NAME_MAX];

			snprintf(name, sizeof(name), "%s", dp.ports[i]->conf.name);
			dp_port_del(name, &err);
		}
	dp_scsi_shutdown();
	dp_lock();
	pmds_stop_all();
	dp_unlock();
}
