/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_version.h>

#include "config.h"
#include "ctl_methods.h"
#include "ctl_server.h"
#include "datapath.h"
#include "jsonrpc.h"
#include "log.h"
#include "mac_table.h"
#include "ovs_attach.h"
#include "pmd.h"
#include "vhost_scsi.h"
#include "vhostd_version.h"

static struct daemon_conf *g_daemon;

static int
need_object(json_t *params, struct ctl_error *err)
{
	if (!json_is_object(params)) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "params must be an object");
		return -EINVAL;
	}
	return 0;
}

/* The "name" member of @params, validated. */
static const char *
need_name(json_t *params, const char *kind, struct ctl_error *err)
{
	json_t *n;

	if (need_object(params, err) < 0)
		return NULL;
	n = json_object_get(params, "name");
	if (!json_is_string(n) || json_string_length(n) == 0 ||
		json_string_length(n) >= DP_NAME_MAX) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
			"%s: \"name\" is required and must be a string of 1-%d characters", kind,
			DP_NAME_MAX - 1);
		return NULL;
	}
	return json_string_value(n);
}

/* Accept only the listed members besides "name". */
static int
only_members(json_t *params, const char *kind, const char *const *allowed, struct ctl_error *err)
{
	const char *key;
	json_t *v;

	json_object_foreach(params, key, v) {
		bool ok = false;

		for (int i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], key) == 0)
				ok = true;
		if (!ok) {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
				"%s: \"%s\" is not a known member", kind, key);
			return -EINVAL;
		}
	}
	return 0;
}

static json_t *
m_version(json_t *params, void *arg, struct ctl_error *err)
{
	return json_pack("{s:s, s:s}", "version", VHOSTD_VERSION, "dpdk", rte_version());
}

/* ---- counters ----------------------------------------------------------- */

static json_t *
counters_json(const struct dp_counters *c)
{
	json_t *d = json_object();

	for (int i = 0; i < DROP_MAX; i++)
		json_object_set_new(d, dp_drop_names[i], json_integer((json_int_t)c->drops[i]));
	return json_pack("{s:I, s:I, s:o, s:I, s:I}", "packets", (json_int_t)c->packets, "bytes",
		(json_int_t)c->bytes, "drops", d, "errors", (json_int_t)c->errors, "single-copy",
		(json_int_t)c->single_copy);
}

static uint16_t
port_nq(const struct port *p)
{
	uint16_t nq = p->vid >= 0 ? p->nr_vring / 2 : p->conf.queues;

	if (p->conf.type != PORT_VHOST_USER)
		nq = 1;
	return nq > DP_MAX_QUEUES ? DP_MAX_QUEUES : nq;
}

/* The PMD of a queue, its pin, and why a pinned queue is not polled. */
static void
queue_place_json(json_t *o, uint16_t pmd, uint16_t pin)
{
	json_object_set_new(o, "pmd", pmd < DP_MAX_PMDS ? json_integer(pmd) : json_null());
	if (pin == 0)
		return;
	json_object_set_new(o, "pinned-cpu", json_integer(pin - 1));
	if (pmd >= DP_MAX_PMDS) {
		char why[64];

		snprintf(why, sizeof(why), "no PMD on CPU %d", pin - 1);
		json_object_set_new(o, "not-polled", json_string(why));
	}
}

/*
 * "single-copy": "auto" on an rx queue: the path in use, the last probe's
 * cycles per frame and the sums over the probes that had frames enough for
 * a verdict (written by the queue's PMD as it goes; each field read once).
 */
static json_t *
sc_auto_json(const struct sc_auto *a)
{
	uint32_t mbuf = __atomic_load_n(&a->cpf[0], __ATOMIC_RELAXED);
	uint32_t sc = __atomic_load_n(&a->cpf[1], __ATOMIC_RELAXED);
	json_t *judged = json_object();
	static const char *const path[2] = {"mbuf", "single-copy"};

	for (int k = 0; k < 2; k++)
		json_object_set_new(judged, path[k],
			json_pack("{s:I, s:I}", "frames",
				(json_int_t)__atomic_load_n(&a->judged_frames[k], __ATOMIC_RELAXED),
				"cycles",
				(json_int_t)__atomic_load_n(
					&a->judged_cycles[k], __ATOMIC_RELAXED)));
	return json_pack("{s:s, s:o, s:o, s:I, s:I, s:o}", "path",
		path[__atomic_load_n(&a->sc, __ATOMIC_RELAXED) ? 1 : 0], "single-copy-cycles",
		sc != 0 ? json_integer(sc) : json_null(), "mbuf-cycles",
		mbuf != 0 ? json_integer(mbuf) : json_null(), "probes",
		(json_int_t)__atomic_load_n(&a->probes, __ATOMIC_RELAXED), "chose-mbuf",
		(json_int_t)__atomic_load_n(&a->chose_mbuf, __ATOMIC_RELAXED), "judged", judged);
}

/* Caller holds dp_lock. */
static json_t *
port_stats_json(const struct port *p)
{
	struct dp_counters rx, tx;
	json_t *qs = json_array();

	for (uint16_t q = 0; q < port_nq(p); q++) {
		uint64_t drops = 0;

		dp_port_counters(p, q, &rx, &tx);
		for (int d = 0; d < DROP_MAX; d++)
			drops += tx.drops[d];
		json_array_append_new(
			qs, json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:b, s:b}", "queue", q,
				    "rx-packets", (json_int_t)rx.packets, "rx-bytes",
				    (json_int_t)rx.bytes, "tx-packets", (json_int_t)tx.packets,
				    "tx-bytes", (json_int_t)tx.bytes, "tx-drops", (json_int_t)drops,
				    "rx-enabled", (p->vring_enabled >> (2 * q + 1)) & 1,
				    "tx-enabled", (p->vring_enabled >> (2 * q)) & 1));
		queue_place_json(json_array_get(qs, json_array_size(qs) - 1), p->rxq_pmd[q],
			p->conf.rxq_pin[q]);
		if (p->conf.type == PORT_VHOST_USER && p->conf.single_copy == PORT_SC_AUTO)
			json_object_set_new(json_array_get(qs, json_array_size(qs) - 1),
				"single-copy-auto", sc_auto_json(&p->sc_auto[q]));
	}
	dp_port_counters(p, -1, &rx, &tx);
	return json_pack("{s:s, s:o, s:o, s:o}", "name", p->conf.name, "rx", counters_json(&rx),
		"tx", counters_json(&tx), "queues", qs);
}

static const char *
port_state(const struct port *p)
{
	if (!p->conf.admin_up)
		return "admin-down";
	if (p->conf.type != PORT_VHOST_USER)
		return "up";
	return p->vid >= 0 ? "up" : (p->conf.client ? "connecting" : "waiting");
}

/* ---- ports -------------------------------------------------------------- */

static json_t *
m_port_add(json_t *params, void *arg, struct ctl_error *err)
{
	struct port_conf c;

	if (need_object(params, err) < 0 ||
		config_parse_port(params, NULL, g_daemon->run_dir, &c, err) < 0 ||
		dp_port_add(&c, err) < 0)
		return NULL;
	return config_dump_port(&c);
}

static json_t *
m_port_set(json_t *params, void *arg, struct ctl_error *err)
{
	const char *name = need_name(params, "port", err);
	struct port_conf base, c;
	struct port *p;

	if (name == NULL)
		return NULL;
	dp_lock();
	p = dp_port_find(name);
	if (p != NULL)
		base = p->conf;
	dp_unlock();
	if (p == NULL) {
		ctl_error_set(err, 0, ENOENT, "port %s: no such port", name);
		return NULL;
	}
	if (config_parse_port(params, &base, g_daemon->run_dir, &c, err) < 0 ||
		dp_port_update(name, &c, err) < 0)
		return NULL;
	return config_dump_port(&c);
}

static json_t *
m_port_del(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"name", NULL};
	const char *name = need_name(params, "port", err);

	if (name == NULL || only_members(params, "port.del", keys, err) < 0 ||
		dp_port_del(name, err) < 0)
		return NULL;
	return json_object();
}

static json_t *
m_port_list(json_t *params, void *arg, struct ctl_error *err)
{
	json_t *a = json_array();

	dp_lock();
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		struct port *p = dp.ports[i];
		struct xconnect *x;
		json_t *o;

		if (p == NULL || p->deleting)
			continue;
		x = dp_port_xconnect(p);
		o = config_dump_port(&p->conf);
		json_object_set_new(o, "state", json_string(port_state(p)));
		json_object_set_new(o, "xconnect", x ? json_string(x->conf.name) : json_null());
		if (p->conf.bridge[0] == '\0')
			json_object_set_new(o, "bridge", json_null());
		json_array_append_new(a, o);
	}
	dp_unlock();
	return a;
}

/* The port's OVS attachment (ovs-plugin), if any. */
static void
port_show_ovs(json_t *o, const char *name)
{
	json_t *ovs = ovs_port_json(name);

	if (ovs != NULL)
		json_object_set_new(o, "ovs", ovs);
}

static json_t *
m_port_show(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"name", NULL};
	const char *name = need_name(params, "port", err);
	struct xconnect *x;
	struct port *p;
	json_t *o, *st;
	char feat[24];

	if (name == NULL || only_members(params, "port.show", keys, err) < 0)
		return NULL;
	dp_lock();
	p = dp_port_find(name);
	if (p == NULL) {
		dp_unlock();
		ctl_error_set(err, 0, ENOENT, "port %s: no such port", name);
		return NULL;
	}
	x = dp_port_xconnect(p);
	o = config_dump_port(&p->conf);
	snprintf(feat, sizeof(feat), "0x%" PRIx64, p->features);
	st = json_pack("{s:s, s:b, s:i, s:i, s:s, s:I, s:I, s:o}", "state", port_state(p),
		"connected", p->vid >= 0, "vid", p->vid, "queue-pairs", p->nr_vring / 2, "features",
		feat, "connects", (json_int_t)p->connects, "disconnects",
		(json_int_t)p->disconnects, "xconnect",
		x ? json_string(x->conf.name) : json_null());
	json_object_set_new(o, "status", st);
	json_object_set_new(o, "stats", port_stats_json(p));
	dp_unlock();
	port_show_ovs(o, name);
	return o;
}

/* ---- bridges ------------------------------------------------------------ */

static json_t *
bridge_ports(const struct bridge *br)
{
	json_t *a = json_array();

	for (int i = 0; i < DP_MAX_PORTS; i++)
		if (dp.ports[i] != NULL && !dp.ports[i]->deleting &&
			strcmp(dp.ports[i]->conf.bridge, br->conf.name) == 0)
			json_array_append_new(a, json_string(dp.ports[i]->conf.name));
	return a;
}

static void
count_row(const struct mac_table_row *row, void *arg)
{
	(void)row;
	(*(unsigned int *)arg)++;
}

static void
mac_row_json(const struct mac_table_row *row, void *arg)
{
	json_t *a = arg;
	char mac[18];
	const char *pname = row->port < DP_MAX_PORTS && dp.ports[row->port]
				    ? dp.ports[row->port]->conf.name
				    : "?";

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", row->mac[0], row->mac[1],
		row->mac[2], row->mac[3], row->mac[4], row->mac[5]);
	json_array_append_new(
		a, json_pack("{s:s, s:i, s:s, s:I, s:b}", "mac", mac, "vlan", row->vlan, "port",
			   pname, "age-s", (json_int_t)row->age_s, "static", row->is_static));
}

static json_t *
m_bridge_add(json_t *params, void *arg, struct ctl_error *err)
{
	struct bridge_conf c;

	if (need_object(params, err) < 0 || config_parse_bridge(params, NULL, &c, err) < 0 ||
		dp_bridge_add(&c, err) < 0)
		return NULL;
	return config_dump_bridge(&c);
}

static json_t *
m_bridge_set(json_t *params, void *arg, struct ctl_error *err)
{
	const char *name = need_name(params, "bridge", err);
	struct bridge_conf base, c;
	struct bridge *br;

	if (name == NULL)
		return NULL;
	dp_lock();
	br = dp_bridge_find(name);
	if (br != NULL)
		base = br->conf;
	dp_unlock();
	if (br == NULL) {
		ctl_error_set(err, 0, ENOENT, "bridge %s: no such bridge", name);
		return NULL;
	}
	if (config_parse_bridge(params, &base, &c, err) < 0 || dp_bridge_update(name, &c, err) < 0)
		return NULL;
	return config_dump_bridge(&c);
}

static json_t *
m_bridge_del(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"name", NULL};
	const char *name = need_name(params, "bridge", err);

	if (name == NULL || only_members(params, "bridge.del", keys, err) < 0 ||
		dp_bridge_del(name, err) < 0)
		return NULL;
	return json_object();
}

static json_t *
m_bridge_list(json_t *params, void *arg, struct ctl_error *err)
{
	json_t *a = json_array();

	dp_lock();
	for (int i = 0; i < DP_MAX_BRIDGES; i++) {
		struct bridge *br = dp.bridges[i];
		unsigned int n = 0;
		json_t *o;

		if (br == NULL)
			continue;
		mac_table_walk(br->macs, count_row, &n);
		o = config_dump_bridge(&br->conf);
		json_object_set_new(o, "ports", bridge_ports(br));
		json_object_set_new(o, "mac-count", json_integer(n));
		json_array_append_new(a, o);
	}
	dp_unlock();
	return a;
}

static struct bridge *
find_bridge_locked(json_t *params, struct ctl_error *err)
{
	static const char *const keys[] = {"name", NULL};
	const char *name = need_name(params, "bridge", err);
	struct bridge *br;

	if (name == NULL || only_members(params, "bridge", keys, err) < 0)
		return NULL;
	br = dp_bridge_find(name);
	if (br == NULL)
		ctl_error_set(err, 0, ENOENT, "bridge %s: no such bridge", name);
	return br;
}

static json_t *
m_bridge_show(json_t *params, void *arg, struct ctl_error *err)
{
	struct bridge *br;
	json_t *o, *macs;

	dp_lock();
	br = find_bridge_locked(params, err);
	if (br == NULL) {
		dp_unlock();
		return NULL;
	}
	o = config_dump_bridge(&br->conf);
	macs = json_array();
	mac_table_walk(br->macs, mac_row_json, macs);
	json_object_set_new(o, "ports", bridge_ports(br));
	json_object_set_new(o, "mac-table", macs);
	json_object_set_new(o, "learn-failed", json_integer((json_int_t)br->macs->learn_failed));
	dp_unlock();
	return o;
}

static json_t *
m_bridge_flush(json_t *params, void *arg, struct ctl_error *err)
{
	struct bridge *br;
	unsigned int n;

	dp_lock();
	br = find_bridge_locked(params, err);
	if (br == NULL) {
		dp_unlock();
		return NULL;
	}
	n = mac_table_flush(br->macs, MAC_PORT_NONE, false);
	dp_unlock();
	return json_pack("{s:i}", "flushed", n);
}

/* ---- cross-connects ----------------------------------------------------- */

static json_t *
m_xconnect_add(json_t *params, void *arg, struct ctl_error *err)
{
	struct xconnect_conf c;

	if (need_object(params, err) < 0 || config_parse_xconnect(params, &c, err) < 0 ||
		dp_xconnect_add(&c, err) < 0)
		return NULL;
	return config_dump_xconnect(&c);
}

static json_t *
m_xconnect_del(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"name", NULL};
	const char *name = need_name(params, "xconnect", err);

	if (name == NULL || only_members(params, "xconnect.del", keys, err) < 0 ||
		dp_xconnect_del(name, err) < 0)
		return NULL;
	return json_object();
}

static json_t *
m_xconnect_list(json_t *params, void *arg, struct ctl_error *err)
{
	json_t *a = json_array();

	dp_lock();
	for (int i = 0; i < DP_MAX_XCONNECTS; i++)
		if (dp.xconnects[i] != NULL)
			json_array_append_new(a, config_dump_xconnect(&dp.xconnects[i]->conf));
	dp_unlock();
	return a;
}

/* ---- pmd ---------------------------------------------------------------- */

/* Scheduler facts of a queue: load over the window, pin, guest memory node. */
static void
queue_sched_json(json_t *o, const uint64_t (*hist)[DP_MAX_QUEUES], uint64_t cycles,
	uint16_t pin, int vid, uint16_t q)
{
	int numa = dp_sched_numa(vid);

	json_object_set_new(o, "load-pct", json_real(dp_sched_queue_load(hist, q)));
	json_object_set_new(o, "cycles", json_integer((json_int_t)cycles));
	json_object_set_new(o, "pinned", json_boolean(pin != 0));
	if (pin != 0)
		json_object_set_new(o, "pinned-cpu", json_integer(pin - 1));
	json_object_set_new(o, "numa", numa < 0 ? json_null() : json_integer(numa));
}

static json_t *
pmd_queues_json(const struct dp_snapshot *s, uint16_t i)
{
	json_t *qs = json_array(), *o;

	for (uint16_t r = 0; r < s->pmds[i].n_rxq; r++) {
		const struct dp_rxq_ref *ref = &s->pmds[i].rxq[r];
		const struct port *pt = dp.ports[ref->port];

		if (pt == NULL)
			continue;
		o = json_pack("{s:s, s:s, s:i}", "type", "net", "port", pt->conf.name, "queue",
			ref->queue);
		queue_sched_json(o, pt->cyc_hist, pt->stats->rx[ref->queue].cycles,
			pt->conf.rxq_pin[ref->queue],
			pt->conf.type == PORT_VHOST_USER ? pt->vid : -1, ref->queue);
		json_array_append_new(qs, o);
	}
	for (uint16_t r = 0; r < s->pmds[i].n_sq; r++) {
		const struct dp_sq_ref *ref = &s->pmds[i].sq[r];
		const struct scsi_ctrl *c = dp.scsi[ref->ctrl];

		if (c == NULL)
			continue;
		if (ref->vring < 2) {
			json_array_append_new(
				qs, json_pack("{s:s, s:s, s:s}", "type", "scsi", "controller",
					    c->conf.name, "queue", "control"));
			continue;
		}
		o = json_pack("{s:s, s:s, s:i}", "type", "scsi", "controller", c->conf.name,
			"queue", ref->vring - 2);
		queue_sched_json(o, c->cyc_hist, c->qstats[ref->vring - 2].cycles,
			c->conf.rxq_pin[ref->vring - 2], c->vid, ref->vring - 2);
		json_array_append_new(qs, o);
	}
	return qs;
}

/* With isolation on, a PMD with pinned queues polls no other; dp_lock held. */
static bool
pmd_isolated(int cpu)
{
	if (!dp.pmd_conf.isolate)
		return false;
	for (int i = 0; i < DP_MAX_PORTS; i++)
		for (int q = 0; dp.ports[i] != NULL && q < DP_MAX_QUEUES; q++)
			if (dp.ports[i]->conf.rxq_pin[q] == cpu + 1)
				return true;
	for (int i = 0; i < DP_MAX_SCSI; i++)
		for (int q = 0; dp.scsi[i] != NULL && q < DP_MAX_QUEUES; q++)
			if (dp.scsi[i]->conf.rxq_pin[q] == cpu + 1)
				return true;
	return false;
}

/* Pinned queues that no PMD polls (no PMD on their CPU); dp_lock held. */
static json_t *
unpolled_json(void)
{
	json_t *a = json_array();

	for (int i = 0; i < DP_MAX_PORTS; i++) {
		const struct port *p = dp.ports[i];

		for (uint16_t q = 0; p != NULL && p->vid >= 0 && q < DP_MAX_QUEUES; q++)
			if (p->conf.rxq_pin[q] && p->rxq_pmd[q] == DP_NONE &&
				((p->vring_enabled >> (2 * q + 1)) & 1))
				json_array_append_new(a,
					json_pack("{s:s, s:s, s:i, s:i}", "type", "net", "port",
						p->conf.name, "queue", q, "pinned-cpu",
						p->conf.rxq_pin[q] - 1));
	}
	for (int i = 0; i < DP_MAX_SCSI; i++) {
		const struct scsi_ctrl *c = dp.scsi[i];
		uint64_t started = c != NULL ? vhost_scsi_started_vrings(c) : 0;

		for (uint16_t q = 0; c != NULL && q < DP_MAX_QUEUES; q++)
			if (c->conf.rxq_pin[q] && c->rxq_pmd[q] == DP_NONE &&
				((started >> (q + 2)) & 1))
				json_array_append_new(a,
					json_pack("{s:s, s:s, s:i, s:i}", "type", "scsi",
						"controller", c->conf.name, "queue", q,
						"pinned-cpu", c->conf.rxq_pin[q] - 1));
	}
	return a;
}

static json_t *
m_pmd_show(json_t *params, void *arg, struct ctl_error *err)
{
	json_t *a = json_array();
	const struct dp_snapshot *s;

	dp_lock();
	s = dp_current;
	for (uint16_t i = 0; i < dp.n_pmd; i++) {
		const struct pmd *p = dp.pmds[i];
		const struct pmd_counters *c;

		if (p == NULL)
			continue; /* a hole left by a removed thread */
		c = &p->ctr;
		uint64_t hz = rte_get_tsc_hz();
		uint64_t busy_ns = c->busy_cycles * 1000000000.0 / hz;
		uint64_t idle_ns = c->idle_cycles * 1000000000.0 / hz;
		uint64_t all_ns = busy_ns + idle_ns + c->sleep_ns;
		json_t *o;

		o = json_pack("{s:i, s:i, s:i, s:s, s:s, s:I, s:I, s:o}", "id", i, "cpu", p->cpu,
			"numa", p->numa, "mode", pmd_mode_names[p->gov.mode], "state",
			__atomic_load_n(&p->sleeping, __ATOMIC_RELAXED) ? "halted" : "polling",
			"halt-poll-ns", (json_int_t)p->gov.halt_poll_ns, "poll-window-ns",
			(json_int_t)p->window_ns, "queues", pmd_queues_json(s, i));
		json_object_set_new(o, "max-sleep-us", json_integer(p->gov.max_sleep_us));
		json_object_set_new(o, "busy-ns", json_integer((json_int_t)busy_ns));
		json_object_set_new(o, "idle-ns", json_integer((json_int_t)idle_ns));
		json_object_set_new(o, "sleep-ns", json_integer((json_int_t)c->sleep_ns));
		json_object_set_new(
			o, "busy-pct", json_real(all_ns ? 100.0 * busy_ns / all_ns : 0));
		json_object_set_new(
			o, "idle-pct", json_real(all_ns ? 100.0 * idle_ns / all_ns : 0));
		json_object_set_new(
			o, "sleep-pct", json_real(all_ns ? 100.0 * c->sleep_ns / all_ns : 0));
		json_object_set_new(o, "busy-cycles", json_integer((json_int_t)c->busy_cycles));
		json_object_set_new(o, "idle-cycles", json_integer((json_int_t)c->idle_cycles));
		json_object_set_new(o, "packets", json_integer((json_int_t)c->packets));
		json_object_set_new(o, "cycles-per-packet",
			json_real(c->packets ? (double)c->busy_cycles / c->packets : 0.0));
		json_object_set_new(o, "loops", json_integer((json_int_t)c->loops));
		json_object_set_new(o, "sleeps", json_integer((json_int_t)c->sleeps));
		json_object_set_new(o, "halts", json_integer((json_int_t)c->halts));
		json_object_set_new(o, "wakeups", json_integer((json_int_t)c->wakeups));
		json_object_set_new(o, "poll-hits", json_integer((json_int_t)c->poll_hits));
		json_object_set_new(o, "poll-misses", json_integer((json_int_t)c->poll_misses));
		json_object_set_new(o, "halt-races", json_integer((json_int_t)c->halt_races));
		json_object_set_new(o, "window-s", json_integer(dp_sched_window()));
		json_object_set_new(o, "window-busy-pct",
			dp_sched_pmd_busy(i) < 0 ? json_null() : json_real(dp_sched_pmd_busy(i)));
		json_object_set_new(o, "isolated", json_boolean(pmd_isolated(p->cpu)));
		json_array_append_new(a, o);
	}
	dp_unlock();
	return a;
}

/*
 * pmd.set: the pmd config object; with "cpu" the "mode" and "halt-poll-ns"
 * given apply to that thread only (kept in "threads").
 */
static json_t *
m_pmd_set(json_t *params, void *arg, struct ctl_error *err)
{
	struct pmd_conf base, c;
	json_t *cpu, *p = NULL, *res = NULL;

	if (need_object(params, err) < 0)
		return NULL;
	dp_lock();
	base = dp.pmd_conf;
	dp_unlock();
	cpu = json_object_get(params, "cpu");
	if (cpu != NULL) {
		static const char *const keys[] = {"cpu", "mode", "halt-poll-ns", NULL};
		json_t *threads = json_array(), *t;

		if (only_members(params, "pmd.set with cpu", keys, err) < 0)
			goto out;
		/* The other threads' overrides stay; this one's is replaced or added. */
		for (uint16_t i = 0; i < base.n_threads; i++) {
			const struct pmd_thread_conf *tc = &base.threads[i];

			if (json_is_integer(cpu) && tc->cpu == json_integer_value(cpu))
				continue;
			t = json_pack("{s:i}", "cpu", tc->cpu);
			if (tc->mode >= 0)
				json_object_set_new(
					t, "mode", json_string(pmd_mode_names[tc->mode]));
			if (tc->halt_poll_ns >= 0)
				json_object_set_new(
					t, "halt-poll-ns", json_integer(tc->halt_poll_ns));
			json_array_append_new(threads, t);
		}
		json_array_append(threads, params);
		p = json_pack("{s:o}", "threads", threads);
	} else {
		p = json_incref(params);
	}
	if (config_parse_pmd(p, &base, &c, err) < 0 || dp_pmd_set(&c, err) < 0)
		goto out;
	res = config_dump_pmd(&c);
out:
	json_decref(p);
	return res;
}

static json_t *
pmd_name_of(uint16_t i)
{
	/* PMDs are named by id; "to" may name no PMD (a pin to a CPU without one). */
	return i == DP_NONE ? json_null() : json_integer(i);
}

/*
 * pmd.rebalance {"dry-run": bool}: assign queues by measured load. Applied
 * unless dry-run (an explicit request forces it past the improvement
 * threshold, which the automatic rebalance must meet).
 */
static json_t *
m_pmd_rebalance(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"dry-run", NULL};
	struct dp_sched_result r;
	json_t *dry, *res, *moves;

	if (params != NULL && (need_object(params, err) < 0 ||
				      only_members(params, "pmd.rebalance", keys, err) < 0))
		return NULL;
	dry = params != NULL ? json_object_get(params, "dry-run") : NULL;
	if (dry != NULL && !json_is_boolean(dry)) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
			"pmd.rebalance: \"dry-run\" must be true or false");
		return NULL;
	}
	if (dp_sched_rebalance(dry != NULL && json_is_true(dry), true, &r, err) < 0)
		return NULL;
	moves = json_array();
	dp_lock();
	for (uint16_t i = 0; i < r.n_moves; i++) {
		const struct dp_sched_move *m = &r.moves[i];
		const char *name = m->scsi ? (dp.scsi[m->obj] ? dp.scsi[m->obj]->conf.name : "?")
					   : (dp.ports[m->obj] ? dp.ports[m->obj]->conf.name : "?");

		json_array_append_new(moves,
			json_pack("{s:s, s:s, s:i, s:o, s:o}", "type", m->scsi ? "scsi" : "net",
				m->scsi ? "controller" : "port", name, "queue", m->queue,
				"from-pmd", pmd_name_of(m->from), "to-pmd", pmd_name_of(m->to)));
	}
	res = json_pack("{s:o, s:f, s:f, s:b, s:b, s:i, s:o}", "moves", moves, "variance-before",
		r.var_before, "variance-after", r.var_after, "applied", r.applied, "dry-run",
		dry != NULL && json_is_true(dry), "window-s", (int)r.window_s, "not-polled",
		unpolled_json());
	dp_unlock();
	free(r.moves);
	return res;
}

/* ---- scsi controllers ---------------------------------------------------- */

/* Request queues of a controller: the guest's when connected (vrings 0 and 1
 * are the control and event queues), else the configured number. */
static uint16_t
scsi_nq(const struct scsi_ctrl *c)
{
	uint16_t nq = c->vid >= 0 && c->nr_vring > 2 ? c->nr_vring - 2 : c->conf.queues;

	return nq > DP_MAX_QUEUES ? DP_MAX_QUEUES : nq;
}

static bool
scsi_rq_ready(const struct scsi_ctrl *c, uint16_t q)
{
	return (c->vring_ready >> (q + 2)) & 1;
}

/* The LUNs on controller @c, as {name, target, lun, backend}. Caller holds dp_lock. */
static json_t *
scsi_luns(const struct scsi_ctrl *c, unsigned int *count)
{
	json_t *a = json_array();

	*count = 0;
	for (int i = 0; i < DP_MAX_LUNS; i++) {
		const struct scsi_lun *l = dp.luns[i];

		if (l == NULL || strcmp(l->conf.controller, c->conf.name) != 0)
			continue;
		(*count)++;
		json_array_append_new(
			a, json_pack("{s:s, s:i, s:i, s:s}", "name", l->conf.lun.name, "target",
				   l->conf.target, "lun", l->conf.lun_id, "backend",
				   config_lun_backend_name(l->conf.lun.backend)));
	}
	return a;
}

static json_t *
scsi_counters_json(const struct scsi_queue_counters *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)c->requests, "tmf",
		(json_int_t)c->tmf, "bad-chains", (json_int_t)c->bad_chains, "errors",
		(json_int_t)c->errors, "inflight", (json_int_t)c->inflight);
}

/* Status and counters of a controller. Caller holds dp_lock. */
static json_t *
scsi_show_json(const struct scsi_ctrl *c)
{
	struct scsi_queue_counters qc;
	json_t *o, *st, *qs = json_array(), *ready = json_array(), *v;
	unsigned int n_luns;
	char feat[24];

	o = config_dump_scsi(&c->conf);
	for (uint16_t q = 0; q < scsi_nq(c); q++) {
		if (scsi_rq_ready(c, q))
			json_array_append_new(ready, json_integer(q));
		dp_scsi_counters(c, q, &qc);
		v = scsi_counters_json(&qc);
		json_object_set_new(v, "queue", json_integer(q));
		json_object_set_new(v, "enabled", json_boolean(scsi_rq_ready(c, q)));
		queue_place_json(v, c->rxq_pmd[q], c->conf.rxq_pin[q]);
		json_array_append_new(qs, v);
	}
	snprintf(feat, sizeof(feat), "0x%" PRIx64, c->features);
	st = json_pack("{s:s, s:b, s:i, s:s, s:i, s:o, s:b, s:b, s:I, s:I, s:b, s:o}", "state",
		c->vid >= 0 ? "connected" : (c->conf.client ? "connecting" : "waiting"),
		"connected", c->vid >= 0, "vid", c->vid, "features", feat, "vrings", c->nr_vring,
		"enabled-queues", ready, "control-queue", (int)(c->vring_ready & 1), "event-queue",
		(int)((c->vring_ready >> 1) & 1), "connects", (json_int_t)c->connects,
		"disconnects", (json_int_t)c->disconnects, "broken", c->broken, "broken-reason",
		c->broken ? json_string(c->broken_why) : json_null());
	json_object_set_new(o, "status", st);
	dp_scsi_counters(c, -1, &qc);
	v = scsi_counters_json(&qc);
	json_object_set_new(v, "queues", qs);
	json_object_set_new(o, "stats", v);
	json_object_set_new(o, "luns", scsi_luns(c, &n_luns));
	return o;
}

static json_t *
m_scsi_add(json_t *params, void *arg, struct ctl_error *err)
{
	struct scsi_conf c;

	if (need_object(params, err) < 0 ||
		config_parse_scsi(params, g_daemon->run_dir, &c, err) < 0 ||
		dp_scsi_add(&c, err) < 0)
		return NULL;
	return config_dump_scsi(&c);
}

static json_t *
m_scsi_del(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"name", NULL};
	const char *name = need_name(params, "scsi", err);

	if (name == NULL || only_members(params, "scsi.del", keys, err) < 0 ||
		dp_scsi_del(name, err) < 0)
		return NULL;
	return json_object();
}

static json_t *
m_scsi_list(json_t *params, void *arg, struct ctl_error *err)
{
	json_t *a = json_array();

	dp_lock();
	for (int i = 0; i < DP_MAX_SCSI; i++) {
		const struct scsi_ctrl *c = dp.scsi[i];
		unsigned int n_luns;
		json_t *o;

		if (c == NULL || c->deleting)
			continue;
		o = config_dump_scsi(&c->conf);
		json_decref(scsi_luns(c, &n_luns));
		json_object_set_new(o, "connected", json_boolean(c->vid >= 0));
		json_object_set_new(o, "luns", json_integer(n_luns));
		json_array_append_new(a, o);
	}
	dp_unlock();
	return a;
}

static json_t *
m_scsi_show(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"name", NULL};
	const char *name = need_name(params, "scsi", err);
	struct scsi_ctrl *c;
	json_t *o;

	if (name == NULL || only_members(params, "scsi.show", keys, err) < 0)
		return NULL;
	dp_lock();
	c = dp_scsi_find(name);
	if (c == NULL || c->deleting) {
		dp_unlock();
		ctl_error_set(err, 0, ENOENT, "scsi %s: no such controller", name);
		return NULL;
	}
	o = scsi_show_json(c);
	dp_unlock();
	return o;
}

/* ---- LUNs ------------------------------------------------------------------ */

/* Bytes the LUN really has (a file LUN's size is the file's). Caller holds dp_lock. */
static uint64_t
lun_bytes(const struct scsi_lun *l)
{
	if (l->lun == NULL)
		return l->conf.lun.size;
	return lun_num_blocks(l->lun) * lun_get_conf(l->lun)->block_size;
}

/* The stats of a LUN in the shape of virsh domblkstat. Caller holds dp_lock. */
static json_t *
lun_stats_json(const struct scsi_lun *l)
{
	struct lun_stats s;

	memset(&s, 0, sizeof(s));
	if (l->lun != NULL)
		lun_stats_read(l->lun, &s);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:{s:f, s:f, s:f}}",
		"rd_req", (json_int_t)s.rd_req, "rd_bytes", (json_int_t)s.rd_bytes, "wr_req",
		(json_int_t)s.wr_req, "wr_bytes", (json_int_t)s.wr_bytes, "flush_operations",
		(json_int_t)s.flush_req, "rd_total_times", (json_int_t)s.rd_total_ns,
		"wr_total_times", (json_int_t)s.wr_total_ns, "flush_total_times",
		(json_int_t)s.flush_total_ns, "unmap_req", (json_int_t)s.unmap_req, "unmap_blocks",
		(json_int_t)s.unmap_blocks, "errors", (json_int_t)s.errors, "latency-us", "p50",
		lun_stats_percentile_ns(&s, 50.0) / 1000.0, "p99",
		lun_stats_percentile_ns(&s, 99.0) / 1000.0, "p99.9",
		lun_stats_percentile_ns(&s, 99.9) / 1000.0);
}

static json_t *
m_lun_add(json_t *params, void *arg, struct ctl_error *err)
{
	struct scsi_lun_conf c;

	if (need_object(params, err) < 0 || config_parse_lun(params, &c, err) < 0 ||
		dp_lun_add(&c, err) < 0)
		return NULL;
	return config_dump_lun(&c);
}

static json_t *
m_lun_del(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"name", NULL};
	const char *name = need_name(params, "lun", err);

	if (name == NULL || only_members(params, "lun.del", keys, err) < 0 ||
		dp_lun_del(name, err) < 0)
		return NULL;
	return json_object();
}

static json_t *
m_lun_list(json_t *params, void *arg, struct ctl_error *err)
{
	json_t *a = json_array();

	dp_lock();
	for (int i = 0; i < DP_MAX_LUNS; i++) {
		const struct scsi_lun *l = dp.luns[i];

		if (l == NULL)
			continue;
		json_array_append_new(
			a, json_pack("{s:s, s:s, s:i, s:i, s:s, s:I, s:b}", "name",
				   l->conf.lun.name, "controller", l->conf.controller, "target",
				   l->conf.target, "lun", l->conf.lun_id, "backend",
				   config_lun_backend_name(l->conf.lun.backend), "size",
				   (json_int_t)lun_bytes(l), "readonly", l->conf.lun.readonly));
	}
	dp_unlock();
	return a;
}

static json_t *
m_lun_show(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"name", NULL};
	const char *name = need_name(params, "lun", err);
	struct scsi_lun *l;
	json_t *o;

	if (name == NULL || only_members(params, "lun.show", keys, err) < 0)
		return NULL;
	dp_lock();
	l = dp_lun_find(name);
	if (l == NULL) {
		dp_unlock();
		ctl_error_set(err, 0, ENOENT, "lun %s: no such LUN", name);
		return NULL;
	}
	o = config_dump_lun(&l->conf);
	json_object_set_new(o, "opened", json_boolean(l->lun != NULL));
	json_object_set_new(
		o, "blocks", json_integer(l->lun ? (json_int_t)lun_num_blocks(l->lun) : 0));
	json_object_set_new(o, "capacity-bytes", json_integer((json_int_t)lun_bytes(l)));
	json_object_set_new(o, "stats", lun_stats_json(l));
	dp_unlock();
	return o;
}

/* ---- stats -------------------------------------------------------------- */

static const char *
optional_port(json_t *params, struct ctl_error *err, bool *bad)
{
	static const char *const keys[] = {"port", NULL};
	json_t *n;

	*bad = true;
	if (need_object(params, err) < 0 || only_members(params, "stats", keys, err) < 0)
		return NULL;
	n = json_object_get(params, "port");
	if (n != NULL && !json_is_string(n)) {
		ctl_error_set(
			err, JSONRPC_INVALID_PARAMS, EINVAL, "stats: \"port\" must be a string");
		return NULL;
	}
	*bad = false;
	return n ? json_string_value(n) : NULL;
}

static json_t *
m_stats_get(json_t *params, void *arg, struct ctl_error *err)
{
	struct timespec ts;
	const char *only;
	json_t *a;
	bool bad;

	only = optional_port(params, err, &bad);
	if (bad)
		return NULL;
	a = json_array();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	dp_lock();
	if (only != NULL && dp_port_find(only) == NULL) {
		dp_unlock();
		json_decref(a);
		ctl_error_set(err, 0, ENOENT, "port %s: no such port", only);
		return NULL;
	}
	for (int i = 0; i < DP_MAX_PORTS; i++) {
		struct port *p = dp.ports[i];

		if (p == NULL || p->deleting || (only && strcmp(only, p->conf.name) != 0))
			continue;
		json_array_append_new(a, port_stats_json(p));
	}
	dp_unlock();
	return json_pack("{s:I, s:I, s:o}", "time-ns",
		(json_int_t)(ts.tv_sec * 1000000000LL + ts.tv_nsec), "tsc-hz",
		(json_int_t)rte_get_tsc_hz(), "ports", a);
}

/* An optional string member of @params: 0 with *out NULL when absent. */
static int
opt_string(json_t *params, const char *method, const char *key, const char **out,
	struct ctl_error *err)
{
	json_t *v = json_object_get(params, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v)) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "%s: \"%s\" must be a string",
			method, key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

/*
 * {"port"?, "lun"?}: the counters of that port and/or LUN; with neither,
 * those of every port and every LUN.
 */
static json_t *
m_stats_clear(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"port", "lun", NULL};
	const char *port, *lun;
	bool port_found = false, lun_found = false;

	if (need_object(params, err) < 0 || only_members(params, "stats.clear", keys, err) < 0 ||
		opt_string(params, "stats.clear", "port", &port, err) < 0 ||
		opt_string(params, "stats.clear", "lun", &lun, err) < 0)
		return NULL;
	dp_lock();
	for (int i = 0; i < DP_MAX_PORTS && (port != NULL || lun == NULL); i++) {
		struct port *p = dp.ports[i];

		if (p == NULL || (port && strcmp(port, p->conf.name) != 0))
			continue;
		dp_stats_clear(p);
		port_found = true;
	}
	for (int i = 0; i < DP_MAX_LUNS && (lun != NULL || port == NULL); i++) {
		struct scsi_lun *l = dp.luns[i];

		if (l == NULL || (lun && strcmp(lun, l->conf.lun.name) != 0))
			continue;
		if (l->lun != NULL)
			lun_stats_clear(l->lun);
		lun_found = true;
	}
	dp_unlock();
	if (port != NULL && !port_found) {
		ctl_error_set(err, 0, ENOENT, "port %s: no such port", port);
		return NULL;
	}
	if (lun != NULL && !lun_found) {
		ctl_error_set(err, 0, ENOENT, "lun %s: no such LUN", lun);
		return NULL;
	}
	return json_object();
}

/* ---- config ------------------------------------------------------------- */

static json_t *
m_config_get(json_t *params, void *arg, struct ctl_error *err)
{
	return config_dump_live(g_daemon);
}

static json_t *
m_config_save(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"path", NULL};
	const char *path = g_daemon->config_path;
	json_t *p, *doc;
	int rc;

	if (need_object(params, err) < 0 || only_members(params, "config.save", keys, err) < 0)
		return NULL;
	p = json_object_get(params, "path");
	if (p != NULL) {
		if (!json_is_string(p) || json_string_value(p)[0] != '/') {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
				"config.save: \"path\" must be an absolute path");
			return NULL;
		}
		path = json_string_value(p);
	}
	if (path[0] == '\0') {
		ctl_error_set(err, 0, EINVAL,
			"config.save: vhostd runs on its embedded default config; give a path");
		return NULL;
	}
	doc = config_dump_live(g_daemon);
	rc = config_write_file(doc, path, err);
	json_decref(doc);
	if (rc < 0)
		return NULL;
	return json_pack("{s:s}", "path", path);
}

static json_t *
m_log_set(json_t *params, void *arg, struct ctl_error *err)
{
	static const char *const keys[] = {"level", NULL};
	json_t *l;
	int level;

	if (need_object(params, err) < 0 || only_members(params, "log.set", keys, err) < 0)
		return NULL;
	l = json_object_get(params, "level");
	level = json_is_string(l) ? vlog_level_parse(json_string_value(l)) : -EINVAL;
	if (level < 0) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
			"log.set: \"level\" must be err, warn, info or debug");
		return NULL;
	}
	vlog_level = level;
	g_daemon->log_level = level;
	return json_pack("{s:s}", "level", vlog_level_name(level));
}

static const struct {
	const char *name;
	ctl_method_fn fn;
} methods[] = {
	{"log.set", m_log_set},
	{"version", m_version},
	{"port.add", m_port_add},
	{"port.set", m_port_set},
	{"port.del", m_port_del},
	{"port.list", m_port_list},
	{"port.show", m_port_show},
	{"bridge.add", m_bridge_add},
	{"bridge.set", m_bridge_set},
	{"bridge.del", m_bridge_del},
	{"bridge.list", m_bridge_list},
	{"bridge.show", m_bridge_show},
	{"bridge.flush", m_bridge_flush},
	{"xconnect.add", m_xconnect_add},
	{"xconnect.del", m_xconnect_del},
	{"xconnect.list", m_xconnect_list},
	{"pmd.show", m_pmd_show},
	{"pmd.set", m_pmd_set},
	{"pmd.rebalance", m_pmd_rebalance},
	{"scsi.add", m_scsi_add},
	{"scsi.del", m_scsi_del},
	{"scsi.list", m_scsi_list},
	{"scsi.show", m_scsi_show},
	{"lun.add", m_lun_add},
	{"lun.del", m_lun_del},
	{"lun.list", m_lun_list},
	{"lun.show", m_lun_show},
	{"stats.get", m_stats_get},
	{"stats.clear", m_stats_clear},
	{"config.get", m_config_get},
	{"config.save", m_config_save},
};

int
ctl_methods_register(struct ctl_server *s, struct daemon_conf *d)
{
	g_daemon = d;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		int rc = ctl_server_register(s, methods[i].name, methods[i].fn, NULL);

		if (rc < 0)
			return rc;
	}
	return 0;
}
