/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The attach state machine, its config section and RPCs (see ovs_attach.h
 * and ovs-plugin/README.md).
 *
 *   pending ---(OVSDB up, bridge found)---> [tap: link] --> inserting --> attached
 *      |                                    [dpdk: insert, then link]       |
 *      +-- no-bridge (waits for the bridge)                                 |
 *   error (retried every 10 s)              removed-by-operator <-- rows gone
 *
 * On every (re)connection the rows vhostd owns (external_ids vhostd-owner)
 * are reconciled with the attachments: adopted when wanted, deleted when
 * not, inserted when missing. A removal seen while connected is the
 * operator's: the attachment stays "removed-by-operator" and its link port
 * is deleted, until ovs.attach is asked again.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "ctl_server.h"
#include "datapath.h"
#include "jsonrpc.h"
#include "log.h"
#include "ovs_attach.h"
#include "ovsdb.h"

#define RETRY_MS 10000
#define MAX_ATTACH DP_MAX_PORTS
#define IFNAMSIZ_ 16

enum att_state {
	AS_PENDING,
	AS_NO_BRIDGE,
	AS_INSERTING,
	AS_ATTACHED,
	AS_REMOVED,
	AS_ERROR,
	AS_DETACHING,
};

static const char *const state_names[] = {
	[AS_PENDING] = "pending",
	[AS_NO_BRIDGE] = "no-bridge",
	[AS_INSERTING] = "inserting",
	[AS_ATTACHED] = "attached",
	[AS_REMOVED] = "removed-by-operator",
	[AS_ERROR] = "error",
	[AS_DETACHING] = "detaching",
};

enum link_kind { LK_NONE, LK_TAP, LK_DPDK };
static const char *const kind_names[] = {
	[LK_NONE] = "none", [LK_TAP] = "tap", [LK_DPDK] = "dpdkvhostuserclient"};

struct att_params {
	char port[DP_NAME_MAX];
	char bridge[64];
	char iface_id[128];
	char vm_uuid[64];
	int vlan; /* 0: none */
};

struct att {
	struct att_params p;
	uint64_t gen; /* changes when in-flight replies must be ignored */
	enum att_state state;
	char why[256];
	enum link_kind kind; /* of the link port we own */
	bool link_ready;     /* link port + cross-connect exist */
	bool link_job;       /* a worker is creating the link port */
	char link_name[DP_NAME_MAX];
	char ifname[64]; /* the OVS Interface (and Port) name */
	char link_sock[DP_SOCK_MAX];
	char iface_uuid[40], port_uuid[40], bridge_uuid[40];
	int64_t cfg_target;
	bool applied;
	bool cfg_late;
	uint64_t cfg_deadline;
	int status_written; /* iface-status in the row: -1 unknown, 0 inactive, 1 active */
	bool status_busy;
	bool stats_busy;
	uint64_t next_stats_ms;
	uint64_t retry_ms;
};

/* A link port being created by a worker (virtio_user in server mode waits for OVS). */
struct link_job {
	struct link_job *next;
	pthread_t th;
	struct port_conf conf;
	char vport[DP_NAME_MAX];
	uint64_t gen;
	int rc;
	char err[256];
	int done;
};

struct txn_ctx {
	char port[DP_NAME_MAX];
	uint64_t gen;
};

static struct {
	struct ovsdb *db;
	bool configured; /* an "ovs" section or an ovs.attach was seen */
	char remote[128];
	char owner[80];
	unsigned int stats_interval_s;
	char run_dir[PATH_MAX];
	char file_prefix[64];
	struct att *atts[MAX_ATTACH];
	struct link_job *jobs;
	uint64_t gen;
	uint64_t last_second;
} g = {.remote = OVS_DEFAULT_DB, .stats_interval_s = 5};

static void on_connected(struct ovsdb *db, void *arg);
static void on_disconnected(struct ovsdb *db, const char *why, void *arg);
static void on_updated(struct ovsdb *db, void *arg);
static void on_tick(struct ovsdb *db, uint64_t now, void *arg);

static const struct ovsdb_callbacks callbacks = {
	.connected = on_connected,
	.disconnected = on_disconnected,
	.updated = on_updated,
	.tick = on_tick,
};

static int
client(void)
{
	char err[256];
	int rc;

	if (g.db != NULL)
		return 0;
	rc = ovsdb_create(&g.db, g.remote, &callbacks, NULL, err, sizeof(err));
	if (rc < 0)
		VLOG_ERR("%s", err);
	return rc;
}

int
ovs_fd(void)
{
	return client() == 0 ? ovsdb_fd(g.db) : -1;
}

void
ovs_process(void)
{
	if (g.db != NULL)
		ovsdb_process(g.db);
}

static const char *
owner(void)
{
	if (g.owner[0] == '\0')
		snprintf(g.owner, sizeof(g.owner), "vhostd:%.63s",
			g.file_prefix[0] ? g.file_prefix : "vhostd");
	return g.owner;
}

/* ---- attachments ------------------------------------------------------------ */

static struct att *
att_find(const char *port)
{
	for (int i = 0; i < MAX_ATTACH; i++)
		if (g.atts[i] != NULL && strcmp(g.atts[i]->p.port, port) == 0)
			return g.atts[i];
	return NULL;
}

static void att_state(struct att *a, enum att_state st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
att_state(struct att *a, enum att_state st, const char *fmt, ...)
{
	char why[sizeof(a->why)] = "";
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	if (a->state != st || strcmp(a->why, why) != 0) {
		if (st == AS_ERROR || st == AS_REMOVED)
			VLOG_WARN("ovs: port %s: %s%s%s", a->p.port, state_names[st],
				why[0] ? ": " : "", why);
		else
			VLOG_INFO("ovs: port %s: %s%s%s", a->p.port, state_names[st],
				why[0] ? ": " : "", why);
	}
	a->state = st;
	memcpy(a->why, why, sizeof(why));
}

static struct txn_ctx *
ctx_new(const struct att *a)
{
	struct txn_ctx *c = calloc(1, sizeof(*c));

	if (c != NULL) {
		snprintf(c->port, sizeof(c->port), "%s", a ? a->p.port : "");
		c->gen = a ? a->gen : 0;
	}
	return c;
}

/* The attachment a reply belongs to, NULL when it is gone or was reset. */
static struct att *
ctx_att(struct txn_ctx *c)
{
	struct att *a = c ? att_find(c->port) : NULL;

	return a != NULL && a->gen == c->gen ? a : NULL;
}

/* ---- replica lookups ---------------------------------------------------------- */

static json_t *
ovs_root(void)
{
	const char *uuid;
	json_t *row;

	json_object_foreach(ovsdb_rows(g.db, "Open_vSwitch"), uuid, row)
		return row;
	return NULL;
}

static const char *
find_bridge(const char *name)
{
	const char *uuid;
	json_t *row;

	json_object_foreach(ovsdb_rows(g.db, "Bridge"), uuid, row)
		if (strcmp(ovsdb_row_string(row, "name"), name) == 0)
			return uuid;
	return NULL;
}

static const char *
port_of_iface(const char *iface)
{
	const char *uuid;
	json_t *row;

	json_object_foreach(ovsdb_rows(g.db, "Port"), uuid, row)
		if (ovsdb_row_set_has(row, "interfaces", iface))
			return uuid;
	return NULL;
}

static const char *
bridge_of_port(const char *port)
{
	const char *uuid;
	json_t *row;

	json_object_foreach(ovsdb_rows(g.db, "Bridge"), uuid, row)
		if (ovsdb_row_set_has(row, "ports", port))
			return uuid;
	return NULL;
}

static bool
owned(json_t *iface_row)
{
	const char *o = ovsdb_row_map_string(iface_row, "external_ids", "vhostd-owner");

	return o != NULL && strcmp(o, owner()) == 0;
}

/* The Interface row vhostd owns for @port, or NULL. */
static const char *
find_owned(const char *port)
{
	const char *uuid, *p;
	json_t *row;

	json_object_foreach(ovsdb_rows(g.db, "Interface"), uuid, row) {
		p = ovsdb_row_map_string(row, "external_ids", "vhostd-port");
		if (owned(row) && p != NULL && strcmp(p, port) == 0)
			return uuid;
	}
	return NULL;
}

static enum link_kind
bridge_kind(const char *bridge_uuid)
{
	json_t *br = ovsdb_row(g.db, "Bridge", bridge_uuid), *root = ovs_root();

	if (strcmp(ovsdb_row_string(br, "datapath_type"), "netdev") == 0 &&
		ovsdb_row_bool(root, "dpdk_initialized"))
		return LK_DPDK;
	return LK_TAP;
}

/* ---- link ports ------------------------------------------------------------------ */

static void
remove_link(struct att *a)
{
	struct ctl_error err = {0};
	bool had_x, had_p;

	dp_lock();
	had_x = dp_xconnect_find(a->link_name) != NULL;
	had_p = dp_port_find(a->link_name) != NULL;
	dp_unlock();
	if (had_x && dp_xconnect_del(a->link_name, &err) < 0)
		VLOG_WARN("ovs: port %s: %s", a->p.port, err.message);
	if (had_p && dp_port_del(a->link_name, &err) < 0)
		VLOG_WARN("ovs: port %s: %s", a->p.port, err.message);
	a->kind = LK_NONE;
	a->link_ready = false;
}

static int
add_xconnect(struct att *a, struct ctl_error *err)
{
	struct xconnect_conf xc;

	memset(&xc, 0, sizeof(xc));
	snprintf(xc.name, sizeof(xc.name), "%s", a->link_name);
	snprintf(xc.ports[0], sizeof(xc.ports[0]), "%s", a->p.port);
	snprintf(xc.ports[1], sizeof(xc.ports[1]), "%s", a->link_name);
	return dp_xconnect_add(&xc, err);
}

static void *
link_worker(void *arg)
{
	struct link_job *j = arg;
	struct ctl_error err = {0};

	j->rc = dp_port_add(&j->conf, &err);
	snprintf(j->err, sizeof(j->err), "%s", err.message);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The link port's conf: an ethdev with the vhost port's MTU. */
static int
link_conf(struct att *a, enum link_kind kind, struct port_conf *c, struct ctl_error *err)
{
	struct port *vp;
	int n;

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", a->link_name);
	c->type = PORT_ETHDEV;
	c->queues = 1;
	c->mtu = 1500;
	c->csum = true;
	c->mrg_rxbuf = true;
	c->admin_up = true;
	dp_lock();
	vp = dp_port_find(a->p.port);
	if (vp != NULL)
		c->mtu = vp->conf.mtu;
	dp_unlock();
	if (kind == LK_TAP)
		n = snprintf(c->devargs, sizeof(c->devargs), "net_tap_vhd_%s,iface=%s", a->p.port,
			a->ifname);
	else
		n = snprintf(c->devargs, sizeof(c->devargs),
			"net_virtio_user_vhd_%s,path=%s,server=1,queues=1", a->p.port,
			a->link_sock);
	if (n >= (int)sizeof(c->devargs)) {
		ctl_error_set(
			err, 0, ENAMETOOLONG, "ovs: port %s: link devargs too long", a->p.port);
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * Make the link port of @kind exist and be cross-connected to the vhost
 * port. Returns 0 when ready, -EINPROGRESS while a worker creates it.
 */
static int
ensure_link(struct att *a, enum link_kind kind, struct ctl_error *err)
{
	struct port_conf c;
	struct link_job *j;
	bool have;
	int rc;

	if (a->link_ready && a->kind == kind)
		return 0;
	if (a->link_job)
		return -EINPROGRESS;
	if (a->kind != LK_NONE && a->kind != kind)
		remove_link(a);
	dp_lock();
	have = dp_port_find(a->link_name) != NULL;
	dp_unlock();
	a->kind = kind;
	if (!have) {
		rc = link_conf(a, kind, &c, err);
		if (rc < 0)
			return rc;
		if (kind == LK_DPDK) {
			j = calloc(1, sizeof(*j));
			if (j == NULL)
				return -ENOMEM;
			j->conf = c;
			j->gen = a->gen;
			snprintf(j->vport, sizeof(j->vport), "%s", a->p.port);
			if (pthread_create(&j->th, NULL, link_worker, j) != 0) {
				free(j);
				ctl_error_set(err, 0, EAGAIN, "ovs: cannot start a worker thread");
				return -EAGAIN;
			}
			j->next = g.jobs;
			g.jobs = j;
			a->link_job = true;
			return -EINPROGRESS;
		}
		rc = dp_port_add(&c, err);
		if (rc < 0)
			return rc;
	}
	dp_lock();
	have = dp_xconnect_find(a->link_name) != NULL;
	dp_unlock();
	if (!have) {
		rc = add_xconnect(a, err);
		if (rc < 0)
			return rc;
	}
	a->link_ready = true;
	return 0;
}

static void
jobs_poll(void)
{
	struct link_job **jp = &g.jobs;

	while (*jp != NULL) {
		struct link_job *j = *jp;
		struct ctl_error err = {0};
		struct att *a;

		if (!__atomic_load_n(&j->done, __ATOMIC_ACQUIRE)) {
			jp = &j->next;
			continue;
		}
		*jp = j->next;
		pthread_join(j->th, NULL);
		a = att_find(j->vport);
		if (a != NULL && a->gen == j->gen) {
			a->link_job = false;
			if (j->rc < 0) {
				att_state(a, AS_ERROR, "link port: %s", j->err);
				a->retry_ms = ovsdb_now_ms() + RETRY_MS;
			} else if (add_xconnect(a, &err) < 0) {
				att_state(a, AS_ERROR, "link: %s", err.message);
				a->retry_ms = ovsdb_now_ms() + RETRY_MS;
			} else {
				a->link_ready = true;
			}
		} else {
			if (a != NULL && a->link_job && strcmp(a->link_name, j->conf.name) == 0)
				a->link_job = false;
			if (j->rc == 0)
				dp_port_del(j->conf.name, &err); /* nobody wants it any more */
		}
		free(j);
	}
}

/* ---- transactions --------------------------------------------------------------- */

static json_t *
uuid_ref(const char *uuid)
{
	return json_pack("[s, s]", "uuid", uuid);
}

/* Increment next_cfg and read it back: ovs-vswitchd applies up to cur_cfg. */
static void
append_cfg_ops(json_t *ops)
{
	json_array_append_new(
		ops, json_pack("{s:s, s:s, s:[], s:[[s, s, i]]}", "op", "mutate", "table",
			     "Open_vSwitch", "where", "mutations", "next_cfg", "+=", 1));
	json_array_append_new(ops, json_pack("{s:s, s:s, s:[], s:[s]}", "op", "select", "table",
					   "Open_vSwitch", "where", "columns", "next_cfg"));
}

static json_int_t
cfg_of_result(json_t *result)
{
	json_t *sel = json_array_get(result, json_array_size(result) - 1);
	json_t *v = json_object_get(json_array_get(json_object_get(sel, "rows"), 0), "next_cfg");

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static void
wait_cfg(struct att *a, json_t *result)
{
	a->cfg_target = cfg_of_result(result);
	a->applied = false;
	a->cfg_late = false;
	a->cfg_deadline = ovsdb_now_ms() + OVS_CFG_TIMEOUT_MS;
}

static void
delete_reply(struct ovsdb *db, json_t *result, const char *error, void *arg)
{
	struct txn_ctx *c = arg;

	if (result == NULL)
		VLOG_WARN(
			"ovs: deleting the OVS port of %s: %s", c->port[0] ? c->port : "?", error);
	free(c);
}

/* Remove a Port (and its Interfaces) from every bridge. */
static void
send_delete(const char *port_uuid, const char *who)
{
	json_t *ops = json_array();
	struct txn_ctx *c;

	json_array_append_new(ops, json_pack("{s:s, s:s, s:[], s:[[s, s, [s, [o]]]]}", "op",
					   "mutate", "table", "Bridge", "where", "mutations",
					   "ports", "delete", "set", uuid_ref(port_uuid)));
	append_cfg_ops(ops);
	c = calloc(1, sizeof(*c));
	if (c != NULL)
		snprintf(c->port, sizeof(c->port), "%s", who);
	if (ovsdb_transact(g.db, ops, delete_reply, c) < 0)
		free(c);
}

static bool
vport_active(const char *name, bool *exists)
{
	struct port *p;
	bool active;

	dp_lock();
	p = dp_port_find(name);
	*exists = p != NULL && !p->deleting;
	active = p != NULL && p->vid >= 0;
	dp_unlock();
	return active;
}

static void
insert_reply(struct ovsdb *db, json_t *result, const char *error, void *arg)
{
	struct att *a = ctx_att(arg);
	struct ctl_error err = {0};
	json_t *iu, *pu;

	free(arg);
	if (a == NULL) {
		/* Detached meanwhile: the rows are unwanted (reconciled if lost). */
		pu = json_object_get(json_array_get(result, 2), "uuid");
		if (result != NULL && json_is_string(json_array_get(pu, 1)))
			send_delete(json_string_value(json_array_get(pu, 1)), "");
		return;
	}
	if (result == NULL) {
		att_state(a, AS_ERROR, "OVSDB transaction: %s", error);
		a->retry_ms = ovsdb_now_ms() + RETRY_MS;
		return;
	}
	iu = json_array_get(json_object_get(json_array_get(result, 1), "uuid"), 1);
	pu = json_array_get(json_object_get(json_array_get(result, 2), "uuid"), 1);
	if (!json_is_string(iu) || !json_is_string(pu) ||
		!ovsdb_uuid_valid(json_string_value(iu)) ||
		!ovsdb_uuid_valid(json_string_value(pu))) {
		att_state(a, AS_ERROR, "OVSDB transaction: malformed insert result");
		a->retry_ms = ovsdb_now_ms() + RETRY_MS;
		return;
	}
	snprintf(a->iface_uuid, sizeof(a->iface_uuid), "%s", json_string_value(iu));
	snprintf(a->port_uuid, sizeof(a->port_uuid), "%s", json_string_value(pu));
	wait_cfg(a, result);
	att_state(a, AS_ATTACHED, NULL);
	a->next_stats_ms = 0;
	if (a->kind == LK_DPDK || !a->link_ready) {
		int rc = ensure_link(a, bridge_kind(a->bridge_uuid), &err);

		if (rc < 0 && rc != -EINPROGRESS) {
			att_state(a, AS_ERROR, "link: %s", err.message);
			a->retry_ms = ovsdb_now_ms() + RETRY_MS;
		}
	}
}

static json_t *
iface_external_ids(struct att *a, bool active)
{
	json_t *pairs = json_array();
	struct port *p;
	char mac[18] = "";

	dp_lock();
	p = dp_port_find(a->p.port);
	if (p != NULL && p->conf.has_mac)
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", p->conf.mac[0],
			p->conf.mac[1], p->conf.mac[2], p->conf.mac[3], p->conf.mac[4],
			p->conf.mac[5]);
	dp_unlock();
	if (a->p.iface_id[0])
		json_array_append_new(pairs, json_pack("[s, s]", "iface-id", a->p.iface_id));
	if (mac[0])
		json_array_append_new(pairs, json_pack("[s, s]", "attached-mac", mac));
	if (a->p.vm_uuid[0])
		json_array_append_new(pairs, json_pack("[s, s]", "vm-uuid", a->p.vm_uuid));
	json_array_append_new(
		pairs, json_pack("[s, s]", "iface-status", active ? "active" : "inactive"));
	json_array_append_new(pairs, json_pack("[s, s]", "vhostd-port", a->p.port));
	json_array_append_new(pairs, json_pack("[s, s]", "vhostd-owner", owner()));
	return json_pack("[s, o]", "map", pairs);
}

static void
send_insert(struct att *a, const char *bridge_uuid, enum link_kind kind)
{
	char vsock[DP_SOCK_MAX] = "";
	json_t *ops = json_array(), *iface, *port, *opts;
	bool exists, active = vport_active(a->p.port, &exists);
	struct port *p;
	int rc;

	dp_lock();
	p = dp_port_find(a->p.port);
	if (p != NULL)
		snprintf(vsock, sizeof(vsock), "%s", p->conf.socket);
	dp_unlock();
	/* libvirt finds the row of a QEMU mode='server' interface by this option. */
	opts = json_pack("[s, [[s, s]]]", "map", "vhost-server-path",
		kind == LK_DPDK ? a->link_sock : vsock);
	json_array_append_new(ops,
		json_pack("{s:s, s:s, s:[[s, s, o]], s:[s], s:s, s:[{s:s}], s:i}", "op", "wait",
			"table", "Bridge", "where", "_uuid", "==", uuid_ref(bridge_uuid), "columns",
			"name", "until", "==", "rows", "name", a->p.bridge, "timeout", 0));
	iface = json_pack("{s:s, s:s, s:o, s:o}", "name", a->ifname, "type",
		kind == LK_DPDK ? "dpdkvhostuserclient" : "", "options", opts, "external_ids",
		iface_external_ids(a, active));
	json_array_append_new(ops, json_pack("{s:s, s:s, s:s, s:o}", "op", "insert", "table",
					   "Interface", "uuid-name", "vhdiface", "row", iface));
	port = json_pack("{s:s, s:[s, s], s:[s, [[s, s], [s, s]]]}", "name", a->ifname,
		"interfaces", "named-uuid", "vhdiface", "external_ids", "map", "vhostd-port",
		a->p.port, "vhostd-owner", owner());
	if (a->p.vlan > 0)
		json_object_set_new(port, "tag", json_integer(a->p.vlan));
	json_array_append_new(ops, json_pack("{s:s, s:s, s:s, s:o}", "op", "insert", "table",
					   "Port", "uuid-name", "vhdport", "row", port));
	json_array_append_new(ops,
		json_pack("{s:s, s:s, s:[[s, s, o]], s:[[s, s, [s, [[s, s]]]]]}", "op", "mutate",
			"table", "Bridge", "where", "_uuid", "==", uuid_ref(bridge_uuid),
			"mutations", "ports", "insert", "set", "named-uuid", "vhdport"));
	append_cfg_ops(ops);
	snprintf(a->bridge_uuid, sizeof(a->bridge_uuid), "%s", bridge_uuid);
	a->status_written = active;
	rc = ovsdb_transact(g.db, ops, insert_reply, ctx_new(a));
	if (rc < 0) {
		att_state(a, AS_PENDING, "waiting for OVSDB");
		return;
	}
	att_state(a, AS_INSERTING, NULL);
}

/* ---- the state machine ------------------------------------------------------------ */

static bool
ifname_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			    (s[i] >= '0' && s[i] <= '9') || strchr("._-", s[i]) != NULL))
			return false;
	return true;
}

static bool
ifname_taken(const char *name, const struct att *self)
{
	for (int i = 0; i < MAX_ATTACH; i++)
		if (g.atts[i] != NULL && g.atts[i] != self && strcmp(g.atts[i]->ifname, name) == 0)
			return true;
	return false;
}

/*
 * The Interface name: the basename of the vhost port's socket, so that
 * libvirt's lookup of a QEMU mode='client' interface finds it (a tap name
 * has at most 15 characters; otherwise "vhd-<port>").
 */
static void
choose_ifname(struct att *a, enum link_kind kind)
{
	char sock[DP_SOCK_MAX] = "";
	const char *base;
	struct port *p;

	dp_lock();
	p = dp_port_find(a->p.port);
	if (p != NULL)
		snprintf(sock, sizeof(sock), "%s", p->conf.socket);
	dp_unlock();
	base = strrchr(sock, '/');
	base = base ? base + 1 : sock;
	if (ifname_ok(base, kind == LK_TAP ? IFNAMSIZ_ : sizeof(a->ifname)) &&
		!ifname_taken(base, a)) {
		snprintf(a->ifname, sizeof(a->ifname), "%s", base);
		return;
	}
	snprintf(a->ifname, kind == LK_TAP ? IFNAMSIZ_ : sizeof(a->ifname), "vhd-%s", a->p.port);
}

static void
adopt(struct att *a, const char *iface, const char *port, const char *bridge)
{
	json_t *row = ovsdb_row(g.db, "Interface", iface);
	const char *st = ovsdb_row_map_string(row, "external_ids", "iface-status");

	snprintf(a->iface_uuid, sizeof(a->iface_uuid), "%s", iface);
	snprintf(a->port_uuid, sizeof(a->port_uuid), "%s", port);
	snprintf(a->bridge_uuid, sizeof(a->bridge_uuid), "%s", bridge);
	snprintf(a->ifname, sizeof(a->ifname), "%s", ovsdb_row_string(row, "name"));
	a->status_written = st == NULL ? -1 : strcmp(st, "active") == 0;
	a->applied = true;
	a->cfg_late = false;
	a->next_stats_ms = 0;
	att_state(a, AS_ATTACHED, "adopted the existing OVS port");
}

/* Move @a forward as far as the replica allows. */
static void
advance(struct att *a)
{
	struct ctl_error err = {0};
	const char *br, *iface, *port, *pbr;
	enum link_kind kind;
	int rc;

	if (a->state == AS_REMOVED || a->state == AS_DETACHING || a->state == AS_INSERTING)
		return;
	if (g.db == NULL || !ovsdb_connected(g.db)) {
		att_state(a, AS_PENDING, "waiting for OVSDB (%s)",
			g.db ? ovsdb_state(g.db) : "not configured");
		return;
	}
	br = find_bridge(a->p.bridge);
	if (br == NULL) {
		att_state(a, AS_NO_BRIDGE, "bridge %s does not exist in OVSDB", a->p.bridge);
		return;
	}
	kind = bridge_kind(br);
	iface = find_owned(a->p.port);
	port = iface ? port_of_iface(iface) : NULL;
	pbr = port ? bridge_of_port(port) : NULL;
	if (iface != NULL && pbr != NULL && strcmp(pbr, br) == 0) {
		const char *type = ovsdb_row_string(ovsdb_row(g.db, "Interface", iface), "type");

		kind = strcmp(type, "dpdkvhostuserclient") == 0 ? LK_DPDK : LK_TAP;
		if (kind == LK_DPDK)
			snprintf(a->link_sock, sizeof(a->link_sock), "%s",
				ovsdb_row_map_string(ovsdb_row(g.db, "Interface", iface), "options",
					"vhost-server-path")
					?: a->link_sock);
		adopt(a, iface, port, br);
		rc = ensure_link(a, kind, &err);
		if (rc < 0 && rc != -EINPROGRESS) {
			att_state(a, AS_ERROR, "link: %s", err.message);
			a->retry_ms = ovsdb_now_ms() + RETRY_MS;
		}
		return;
	}
	if (port != NULL)
		send_delete(port, a->p.port); /* ours, but on another bridge */
	choose_ifname(a, kind);
	if (kind == LK_TAP) {
		rc = ensure_link(a, kind, &err);
		if (rc < 0) {
			att_state(a, AS_ERROR, "link: %s", err.message);
			a->retry_ms = ovsdb_now_ms() + RETRY_MS;
			return;
		}
	} else if (a->kind != LK_NONE && a->kind != kind) {
		remove_link(a);
	}
	send_insert(a, br, kind);
}

static void
on_connected(struct ovsdb *db, void *arg)
{
	const char *uuid;
	json_t *row;

	/* Rows vhostd owns but no longer wants. */
	json_object_foreach(ovsdb_rows(db, "Interface"), uuid, row) {
		const char *p = ovsdb_row_map_string(row, "external_ids", "vhostd-port"), *port;
		struct att *a = p ? att_find(p) : NULL;

		if (!owned(row))
			continue;
		if (a != NULL && a->state != AS_REMOVED && a->state != AS_DETACHING)
			continue;
		port = port_of_iface(uuid);
		if (port != NULL) {
			VLOG_INFO("ovs: removing OVS port %s that vhostd owns but no longer wants",
				ovsdb_row_string(row, "name"));
			send_delete(port, "");
		}
	}
	for (int i = 0; i < MAX_ATTACH; i++) {
		struct att *a = g.atts[i];

		if (a == NULL || a->state == AS_REMOVED || a->state == AS_DETACHING)
			continue;
		a->state = AS_PENDING;
		advance(a);
	}
}

static void
on_disconnected(struct ovsdb *db, const char *why, void *arg)
{
	for (int i = 0; i < MAX_ATTACH; i++) {
		struct att *a = g.atts[i];

		if (a == NULL || a->state == AS_REMOVED || a->state == AS_DETACHING)
			continue;
		a->status_busy = a->stats_busy = false;
		att_state(a, AS_PENDING, "OVSDB connection lost (%s); will re-assert", why);
	}
}

/* Rows of an attached port gone while connected: the operator's doing. */
static void
check_attached(struct att *a)
{
	json_t *br = ovsdb_row(g.db, "Bridge", a->bridge_uuid);
	json_t *root = ovs_root();

	if (br == NULL || strcmp(ovsdb_row_string(br, "name"), a->p.bridge) != 0) {
		att_state(a, AS_REMOVED, "bridge %s was deleted", a->p.bridge);
	} else if (ovsdb_row(g.db, "Port", a->port_uuid) == NULL ||
		   ovsdb_row(g.db, "Interface", a->iface_uuid) == NULL ||
		   !ovsdb_row_set_has(br, "ports", a->port_uuid)) {
		att_state(a, AS_REMOVED, "port %s was removed from bridge %s", a->ifname,
			a->p.bridge);
	} else {
		if (!a->applied && a->cfg_target >= 0 &&
			ovsdb_row_integer(root, "cur_cfg") >= a->cfg_target) {
			a->applied = true;
			if (a->cfg_late)
				VLOG_INFO("ovs: port %s: applied by ovs-vswitchd", a->p.port);
		}
		return;
	}
	a->gen = ++g.gen;
	a->iface_uuid[0] = a->port_uuid[0] = '\0';
	remove_link(a);
}

static void
on_updated(struct ovsdb *db, void *arg)
{
	for (int i = 0; i < MAX_ATTACH; i++) {
		struct att *a = g.atts[i];

		if (a == NULL)
			continue;
		if (a->state == AS_ATTACHED)
			check_attached(a);
		else if (a->state == AS_PENDING || a->state == AS_NO_BRIDGE)
			advance(a);
	}
}

static void
status_reply(struct ovsdb *db, json_t *result, const char *error, void *arg)
{
	struct att *a = ctx_att(arg);

	free(arg);
	if (a == NULL)
		return;
	a->status_busy = false;
	if (result == NULL) {
		VLOG_DEBUG("ovs: port %s: iface-status update: %s", a->p.port, error);
		a->status_written = -1;
	}
}

static void
write_status(struct att *a, bool active)
{
	json_t *ops = json_array();

	json_array_append_new(ops,
		json_pack("{s:s, s:s, s:[[s, s, o]], s:[[s, s, [s, [s]]], [s, s, [s, [[s, s]]]]]}",
			"op", "mutate", "table", "Interface", "where", "_uuid",
			"==", uuid_ref(a->iface_uuid), "mutations", "external_ids", "delete", "set",
			"iface-status", "external_ids", "insert", "map", "iface-status",
			active ? "active" : "inactive"));
	if (ovsdb_transact(g.db, ops, status_reply, ctx_new(a)) == 0) {
		a->status_busy = true;
		a->status_written = active;
		VLOG_INFO(
			"ovs: port %s: iface-status %s", a->p.port, active ? "active" : "inactive");
	}
}

static void
stats_reply(struct ovsdb *db, json_t *result, const char *error, void *arg)
{
	struct att *a = ctx_att(arg);

	free(arg);
	if (a != NULL)
		a->stats_busy = false;
	if (result == NULL)
		VLOG_DEBUG("ovs: statistics update: %s", error);
}

static void
write_stats(struct att *a)
{
	struct dp_counters rx, tx;
	uint64_t rxd = 0, txd = 0;
	json_t *ops, *m;
	struct port *p;

	dp_lock();
	p = dp_port_find(a->p.port);
	if (p == NULL) {
		dp_unlock();
		return;
	}
	dp_port_counters(p, -1, &rx, &tx);
	dp_unlock();
	for (int d = 0; d < DROP_MAX; d++) {
		rxd += rx.drops[d];
		txd += tx.drops[d];
	}
	/*
	 * OVS's perspective (libvirt swaps it for the guest's): rx is what the
	 * switch received from the guest, i.e. what vhostd received on the port.
	 */
	m = json_pack("[s, [[s, I], [s, I], [s, I], [s, I], [s, I], [s, I], [s, I], [s, I]]]",
		"map", "rx_packets", (json_int_t)rx.packets, "rx_bytes", (json_int_t)rx.bytes,
		"rx_dropped", (json_int_t)rxd, "rx_errors", (json_int_t)rx.errors, "tx_packets",
		(json_int_t)tx.packets, "tx_bytes", (json_int_t)tx.bytes, "tx_dropped",
		(json_int_t)txd, "tx_errors", (json_int_t)tx.errors);
	ops = json_array();
	json_array_append_new(ops, json_pack("{s:s, s:s, s:[[s, s, o]], s:{s:o}}", "op", "update",
					   "table", "Interface", "where", "_uuid",
					   "==", uuid_ref(a->iface_uuid), "row", "statistics", m));
	if (ovsdb_transact(g.db, ops, stats_reply, ctx_new(a)) == 0)
		a->stats_busy = true;
}

static void detach_att(struct att *a);

static void
on_tick(struct ovsdb *db, uint64_t now, void *arg)
{
	jobs_poll();
	for (int i = 0; i < MAX_ATTACH; i++) {
		struct att *a = g.atts[i];
		bool exists, active;

		if (a == NULL)
			continue;
		active = vport_active(a->p.port, &exists);
		if (!exists && a->state != AS_DETACHING) {
			VLOG_WARN("ovs: port %s: the vhost port is gone: detaching", a->p.port);
			detach_att(a);
			continue;
		}
		if (a->state == AS_ERROR && now >= a->retry_ms && ovsdb_connected(db)) {
			a->state = AS_PENDING;
			advance(a);
			continue;
		}
		if (a->state != AS_ATTACHED || !ovsdb_connected(db))
			continue;
		if (!a->applied && !a->cfg_late && now > a->cfg_deadline) {
			a->cfg_late = true;
			VLOG_WARN("ovs: port %s: ovs-vswitchd did not apply the change within %d s "
				  "(is it running?)",
				a->p.port, OVS_CFG_TIMEOUT_MS / 1000);
		}
		if (!a->status_busy && a->status_written != (int)active)
			write_status(a, active);
		if (!a->stats_busy && now >= a->next_stats_ms) {
			a->next_stats_ms = now + g.stats_interval_s * 1000ULL;
			write_stats(a);
		}
	}
}

/* ---- attach / detach ---------------------------------------------------------------- */

static void
att_free(struct att *a)
{
	for (int i = 0; i < MAX_ATTACH; i++)
		if (g.atts[i] == a)
			g.atts[i] = NULL;
	free(a);
}

static void
detach_reply(struct ovsdb *db, json_t *result, const char *error, void *arg)
{
	struct att *a = ctx_att(arg);

	free(arg);
	if (result == NULL)
		VLOG_WARN("ovs: detach: %s (the row is removed at the next reconciliation)", error);
	if (a != NULL && a->state == AS_DETACHING) {
		VLOG_INFO("ovs: port %s: detached", a->p.port);
		att_free(a);
	}
}

static void
detach_att(struct att *a)
{
	const char *port = NULL;

	a->gen = ++g.gen;
	remove_link(a);
	if (g.db != NULL && ovsdb_connected(g.db)) {
		const char *iface = find_owned(a->p.port);

		port = iface ? port_of_iface(iface) : NULL;
	}
	if (port != NULL && a->state != AS_REMOVED) {
		json_t *ops = json_array();

		json_array_append_new(
			ops, json_pack("{s:s, s:s, s:[], s:[[s, s, [s, [o]]]]}", "op", "mutate",
				     "table", "Bridge", "where", "mutations", "ports", "delete",
				     "set", uuid_ref(port)));
		append_cfg_ops(ops);
		if (ovsdb_transact(g.db, ops, detach_reply, ctx_new(a)) == 0) {
			a->state = AS_DETACHING;
			return;
		}
	}
	VLOG_INFO("ovs: port %s: detached", a->p.port);
	att_free(a);
}

/* Validate an attachment's parameters (the config and ovs.attach share it). */
static int
parse_att(json_t *o, struct att_params *p, struct ctl_error *err)
{
	static const char *const keys[] = {"port", "bridge", "iface-id", "vm-uuid", "vlan", NULL};
	struct {
		const char *key;
		char *out;
		size_t len;
		bool required;
	} strs[] = {
		{"port", p->port, sizeof(p->port), true},
		{"bridge", p->bridge, sizeof(p->bridge), true},
		{"iface-id", p->iface_id, sizeof(p->iface_id), false},
		{"vm-uuid", p->vm_uuid, sizeof(p->vm_uuid), false},
	};
	const char *key;
	json_t *v;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(o)) {
		ctl_error_set(
			err, JSONRPC_INVALID_PARAMS, EINVAL, "ovs attach: expected an object");
		return -EINVAL;
	}
	json_object_foreach(o, key, v) {
		bool ok = false;

		for (int i = 0; keys[i] != NULL; i++)
			ok |= strcmp(keys[i], key) == 0;
		if (!ok) {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
				"ovs attach: \"%s\" is not a known member", key);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		v = json_object_get(o, strs[i].key);
		if (v == NULL && !strs[i].required)
			continue;
		if (!json_is_string(v) || json_string_length(v) == 0 ||
			json_string_length(v) >= strs[i].len ||
			strlen(json_string_value(v)) != json_string_length(v)) {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
				"ovs attach: \"%s\" %s a string of 1-%zu characters", strs[i].key,
				strs[i].required ? "is required and must be" : "must be",
				strs[i].len - 1);
			return -EINVAL;
		}
		for (const char *c = json_string_value(v); *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f) {
				ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
					"ovs attach: \"%s\" contains control characters",
					strs[i].key);
				return -EINVAL;
			}
		memcpy(strs[i].out, json_string_value(v), json_string_length(v) + 1);
	}
	v = json_object_get(o, "vlan");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			json_integer_value(v) > 4094) {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
				"ovs attach: \"vlan\" must be an integer 0-4094 (0: untagged)");
			return -EINVAL;
		}
		p->vlan = (int)json_integer_value(v);
	}
	return 0;
}

static json_t *
att_params_json(const struct att_params *p)
{
	json_t *o = json_pack("{s:s, s:s}", "port", p->port, "bridge", p->bridge);

	if (p->iface_id[0])
		json_object_set_new(o, "iface-id", json_string(p->iface_id));
	if (p->vm_uuid[0])
		json_object_set_new(o, "vm-uuid", json_string(p->vm_uuid));
	if (p->vlan)
		json_object_set_new(o, "vlan", json_integer(p->vlan));
	return o;
}

static json_t *
att_json(const struct att *a)
{
	json_t *o = att_params_json(&a->p), *row = NULL, *link;

	json_object_set_new(o, "state", json_string(state_names[a->state]));
	json_object_set_new(o, "reason", a->why[0] ? json_string(a->why) : json_null());
	json_object_set_new(o, "interface", a->ifname[0] ? json_string(a->ifname) : json_null());
	link = json_pack("{s:s, s:s, s:b}", "kind", kind_names[a->kind], "port", a->link_name,
		"ready", a->link_ready);
	if (a->kind == LK_DPDK)
		json_object_set_new(link, "socket", json_string(a->link_sock));
	json_object_set_new(o, "link", link);
	if (a->state == AS_ATTACHED) {
		row = g.db ? ovsdb_row(g.db, "Interface", a->iface_uuid) : NULL;
		json_object_set_new(o, "interface-uuid", json_string(a->iface_uuid));
		json_object_set_new(o, "port-uuid", json_string(a->port_uuid));
		json_object_set_new(o, "applied", json_boolean(a->applied));
		json_object_set_new(o, "iface-status",
			a->status_written < 0
				? json_null()
				: json_string(a->status_written ? "active" : "inactive"));
		if (row != NULL) {
			json_t *ofp = json_object_get(row, "ofport"),
			       *e = json_object_get(row, "error");

			json_object_set_new(o, "ofport",
				json_array_size(ofp) ? json_incref(json_array_get(ofp, 0))
						     : json_null());
			json_object_set_new(o, "ovs-error",
				json_array_size(e) ? json_incref(json_array_get(e, 0))
						   : json_null());
		}
	}
	return o;
}

/* Checks of the vhost port; the attachment is created in state pending. */
static struct att *
att_create(const struct att_params *p, struct ctl_error *err)
{
	struct port *vp;
	struct xconnect *x;
	char link[DP_NAME_MAX + 8];
	struct att *a;
	int slot = -1;

	if (snprintf(link, sizeof(link), "ovs-%s", p->port) >= DP_NAME_MAX) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
			"ovs attach %s: port name too long for its link port (ovs-%s): use at most "
			"%d characters",
			p->port, p->port, DP_NAME_MAX - 5);
		return NULL;
	}
	dp_lock();
	vp = dp_port_find(p->port);
	x = vp ? dp_port_xconnect(vp) : NULL;
	if (vp == NULL || vp->deleting) {
		dp_unlock();
		ctl_error_set(err, 0, ENOENT, "ovs attach %s: no such port", p->port);
		return NULL;
	}
	if (vp->conf.type != PORT_VHOST_USER) {
		dp_unlock();
		ctl_error_set(err, 0, EINVAL, "ovs attach %s: not a vhost-user port", p->port);
		return NULL;
	}
	if (vp->conf.bridge[0] != '\0' || (x != NULL && strcmp(x->conf.name, link) != 0)) {
		ctl_error_set(err, 0, EBUSY,
			"ovs attach %s: the port is on vhostd %s %s; remove it from there first",
			p->port, vp->conf.bridge[0] ? "bridge" : "cross-connect",
			vp->conf.bridge[0] ? vp->conf.bridge : x->conf.name);
		dp_unlock();
		return NULL;
	}
	dp_unlock();
	for (int i = 0; i < MAX_ATTACH && slot < 0; i++)
		if (g.atts[i] == NULL)
			slot = i;
	a = slot < 0 ? NULL : calloc(1, sizeof(*a));
	if (a == NULL) {
		ctl_error_set(err, 0, ENOSPC, "ovs attach %s: too many attachments", p->port);
		return NULL;
	}
	a->p = *p;
	a->gen = ++g.gen;
	a->status_written = -1;
	a->cfg_target = -1;
	memcpy(a->link_name, link, strlen(link) + 1);
	if (snprintf(a->link_sock, sizeof(a->link_sock), "%s/ovs-%s.sock",
		    g.run_dir[0] ? g.run_dir : "/run/vhostd",
		    p->port) >= (int)sizeof(a->link_sock)) {
		free(a);
		ctl_error_set(
			err, 0, ENAMETOOLONG, "ovs attach %s: link socket path too long", p->port);
		return NULL;
	}
	a->state = AS_PENDING;
	g.atts[slot] = a;
	return a;
}

static int
enable(struct ctl_error *err)
{
	if (client() < 0) {
		ctl_error_set(err, 0, EINVAL, "ovs: bad db %s", g.remote);
		return -EINVAL;
	}
	g.configured = true;
	if (!ovsdb_enabled(g.db)) {
		ovsdb_enable(g.db);
		if (!ovsdb_connected(g.db) && ovsdb_last_error(g.db)[0])
			VLOG_ERR("ovs: OVSDB %s unreachable: %s; vhostd keeps serving and retries "
				 "in the background",
				g.remote, ovsdb_last_error(g.db));
	}
	return 0;
}

static struct att *
do_attach(const struct att_params *p, struct ctl_error *err)
{
	struct att *a = att_find(p->port);

	if (a != NULL) {
		if (memcmp(&a->p, p, sizeof(*p)) == 0 && a->state != AS_REMOVED &&
			a->state != AS_ERROR && a->state != AS_DETACHING)
			return a; /* idempotent */
		if (a->state != AS_REMOVED && a->state != AS_ERROR) {
			ctl_error_set(err, 0, EEXIST,
				"ovs attach %s: already attached to bridge %s (%s); detach it "
				"first",
				p->port, a->p.bridge, state_names[a->state]);
			return NULL;
		}
		/* Asked again after an operator's removal or an error: redo it. */
		remove_link(a);
		att_free(a);
	}
	if (enable(err) < 0)
		return NULL;
	a = att_create(p, err);
	if (a == NULL)
		return NULL;
	VLOG_INFO("ovs: port %s: attaching to bridge %s", p->port, p->bridge);
	advance(a);
	return a;
}

/* ---- config ---------------------------------------------------------------------- */

int
ovs_config(json_t *obj, bool apply, struct ctl_error *err)
{
	static const char *const keys[] = {"db", "owner", "stats-interval-s", "attach", NULL};
	char remote[128] = OVS_DEFAULT_DB, own[64] = "", msg[256];
	long long interval = 5;
	json_t *v, *list;
	const char *key;
	size_t i;

	if (obj == NULL)
		return 0;
	if (!json_is_object(obj)) {
		ctl_error_set(
			err, JSONRPC_INVALID_PARAMS, EINVAL, "config: \"ovs\" must be an object");
		return -EINVAL;
	}
	json_object_foreach(obj, key, v) {
		bool ok = false;

		for (int k = 0; keys[k] != NULL; k++)
			ok |= strcmp(keys[k], key) == 0;
		if (!ok) {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
				"ovs: \"%s\" is not a known member", key);
			return -EINVAL;
		}
	}
	v = json_object_get(obj, "db");
	if (v != NULL) {
		if (!json_is_string(v) || json_string_length(v) >= sizeof(remote)) {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
				"ovs: \"db\" must be a string like "
				"\"unix:/var/run/openvswitch/db.sock\"");
			return -EINVAL;
		}
		snprintf(remote, sizeof(remote), "%s", json_string_value(v));
		if (ovsdb_remote_check(remote, msg, sizeof(msg)) < 0) {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "%s", msg);
			return -EINVAL;
		}
	}
	v = json_object_get(obj, "owner");
	if (v != NULL) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
			json_string_length(v) >= sizeof(own)) {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
				"ovs: \"owner\" must be a string of 1-%zu characters",
				sizeof(own) - 1);
			return -EINVAL;
		}
		snprintf(own, sizeof(own), "%s", json_string_value(v));
	}
	v = json_object_get(obj, "stats-interval-s");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			json_integer_value(v) > 3600) {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
				"ovs: \"stats-interval-s\" must be an integer 1-3600");
			return -EINVAL;
		}
		interval = json_integer_value(v);
	}
	list = json_object_get(obj, "attach");
	if (list != NULL && !json_is_array(list)) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
			"ovs: \"attach\" must be an array of {port, bridge, ...}");
		return -EINVAL;
	}
	json_array_foreach(list, i, v) {
		struct att_params p, q;
		size_t j;
		json_t *w;

		if (parse_att(v, &p, err) < 0)
			return -EINVAL;
		json_array_foreach(list, j, w) {
			if (j >= i)
				break;
			parse_att(w, &q, err);
			if (strcmp(p.port, q.port) == 0) {
				ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
					"ovs: port %s is attached twice", p.port);
				return -EINVAL;
			}
		}
	}
	if (!apply)
		return 0;
	snprintf(g.remote, sizeof(g.remote), "%s", remote);
	if (own[0])
		snprintf(g.owner, sizeof(g.owner), "%s", own);
	g.stats_interval_s = (unsigned int)interval;
	if (client() < 0 || ovsdb_set_remote(g.db, g.remote, msg, sizeof(msg)) < 0) {
		ctl_error_set(err, 0, EINVAL, "ovs: bad db %s", g.remote);
		return -EINVAL;
	}
	if (enable(err) < 0)
		return -EINVAL;
	json_array_foreach(list, i, v) {
		struct att_params p;

		parse_att(v, &p, err);
		if (do_attach(&p, err) == NULL)
			return -EINVAL;
	}
	return 0;
}

json_t *
ovs_config_dump(void)
{
	json_t *o, *a;

	if (!g.configured)
		return NULL;
	a = json_array();
	for (int i = 0; i < MAX_ATTACH; i++)
		if (g.atts[i] != NULL && g.atts[i]->state != AS_DETACHING)
			json_array_append_new(a, att_params_json(&g.atts[i]->p));
	o = json_pack("{s:s, s:i, s:o}", "db", g.remote, "stats-interval-s", g.stats_interval_s,
		"attach", a);
	if (g.owner[0])
		json_object_set_new(o, "owner", json_string(g.owner));
	return o;
}

json_t *
ovs_port_json(const char *port)
{
	struct att *a = att_find(port);

	if (a != NULL)
		return att_json(a);
	for (int i = 0; i < MAX_ATTACH; i++)
		if (g.atts[i] != NULL && strcmp(g.atts[i]->link_name, port) == 0)
			return json_pack("{s:s}", "link-of", g.atts[i]->p.port);
	return NULL;
}

/* ---- doctor ------------------------------------------------------------------------- */

static bool
probe_socket(const char *path, char *why, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0) {
		snprintf(why, len, "socket: %s", strerror(errno));
		return false;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.107s", path);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (!ok)
		snprintf(why, len, "cannot connect to %.107s: %s", path, strerror(errno));
	close(fd);
	return ok;
}

void
ovs_doctor_check(json_t *out)
{
	json_t *bridges = json_array();
	bool connected = g.db != NULL && ovsdb_connected(g.db);
	char why[256] = "";
	bool reachable;

	if (connected)
		reachable = true;
	else if (g.db != NULL && ovsdb_enabled(g.db))
		reachable = false, snprintf(why, sizeof(why), "%s", ovsdb_last_error(g.db));
	else
		reachable = probe_socket(g.remote + 5, why, sizeof(why));
	for (int i = 0; i < MAX_ATTACH; i++) {
		struct att *a = g.atts[i];
		bool dup = false;
		size_t k;
		json_t *b;

		if (a == NULL)
			continue;
		json_array_foreach(bridges, k, b)
			dup |= strcmp(json_string_value(json_object_get(b, "name")), a->p.bridge) ==
			       0;
		if (dup)
			continue;
		json_array_append_new(
			bridges, json_pack("{s:s, s:o}", "name", a->p.bridge, "exists",
					 connected ? json_boolean(find_bridge(a->p.bridge) != NULL)
						   : json_null()));
	}
	json_object_set_new(out, "db", json_string(g.remote));
	json_object_set_new(out, "configured", json_boolean(g.configured));
	json_object_set_new(out, "reachable", json_boolean(reachable));
	json_object_set_new(out, "state",
		json_string(g.db && ovsdb_enabled(g.db) ? ovsdb_state(g.db) : "not-configured"));
	json_object_set_new(out, "error", why[0] ? json_string(why) : json_null());
	json_object_set_new(out, "bridges", bridges);
}

/* ---- RPCs ---------------------------------------------------------------------------- */

static json_t *
m_ovs_attach(json_t *params, void *arg, struct ctl_error *err)
{
	struct att_params p;
	struct att *a;

	if (parse_att(params, &p, err) < 0)
		return NULL;
	a = do_attach(&p, err);
	return a ? att_json(a) : NULL;
}

static const char *
port_param(json_t *params, const char *method, bool required, struct ctl_error *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(params)) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "%s: params must be an object",
			method);
		return NULL;
	}
	json_object_foreach(params, key, v)
		if (strcmp(key, "port") != 0) {
			ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
				"%s: \"%s\" is not a known member", method, key);
			return NULL;
		}
	v = json_object_get(params, "port");
	if (v == NULL && !required)
		return "";
	if (!json_is_string(v)) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "%s: \"port\" %s a string",
			method, required ? "is required and must be" : "must be");
		return NULL;
	}
	return json_string_value(v);
}

static json_t *
m_ovs_detach(json_t *params, void *arg, struct ctl_error *err)
{
	const char *port = port_param(params, "ovs.detach", true, err);
	struct att *a;

	if (port == NULL)
		return NULL;
	a = att_find(port);
	if (a == NULL || a->state == AS_DETACHING) {
		ctl_error_set(err, 0, ENOENT, "ovs detach %s: the port is not attached", port);
		return NULL;
	}
	VLOG_INFO("ovs: port %s: detaching from bridge %s", port, a->p.bridge);
	detach_att(a);
	return json_object();
}

static json_t *
m_ovs_show(json_t *params, void *arg, struct ctl_error *err)
{
	const char *port = port_param(params, "ovs.show", false, err);
	json_t *a, *o;

	if (port == NULL)
		return NULL;
	if (port[0] != '\0') {
		struct att *t = att_find(port);

		if (t == NULL) {
			ctl_error_set(
				err, 0, ENOENT, "ovs show %s: the port is not attached", port);
			return NULL;
		}
		return att_json(t);
	}
	a = json_array();
	for (int i = 0; i < MAX_ATTACH; i++)
		if (g.atts[i] != NULL)
			json_array_append_new(a, att_json(g.atts[i]));
	o = json_pack("{s:s, s:s, s:s, s:o}", "db", g.remote, "owner", owner(), "state",
		g.db && ovsdb_enabled(g.db) ? ovsdb_state(g.db) : "not-configured", "attachments",
		a);
	json_object_set_new(o, "error",
		g.db && ovsdb_last_error(g.db)[0] ? json_string(ovsdb_last_error(g.db))
						  : json_null());
	json_object_set_new(
		o, "backoff-ms", json_integer(g.db ? (json_int_t)ovsdb_backoff_left_ms(g.db) : 0));
	json_object_set_new(
		o, "connects", json_integer(g.db ? (json_int_t)ovsdb_reconnects(g.db) : 0));
	if (g.db != NULL && ovsdb_connected(g.db)) {
		json_t *root = ovs_root();

		json_object_set_new(
			o, "next-cfg", json_integer(ovsdb_row_integer(root, "next_cfg")));
		json_object_set_new(o, "cur-cfg", json_integer(ovsdb_row_integer(root, "cur_cfg")));
		json_object_set_new(o, "dpdk-initialized",
			json_boolean(ovsdb_row_bool(root, "dpdk_initialized")));
	}
	return o;
}

static json_t *
m_ovs_doctor(json_t *params, void *arg, struct ctl_error *err)
{
	json_t *o = json_object();

	ovs_doctor_check(o);
	return o;
}

int
ovs_methods_register(struct ctl_server *s, const struct daemon_conf *d)
{
	int rc;

	if (d != NULL) {
		snprintf(g.run_dir, sizeof(g.run_dir), "%s", d->run_dir);
		snprintf(g.file_prefix, sizeof(g.file_prefix), "%s", d->file_prefix);
	}
	if ((rc = ctl_server_register(s, "ovs.attach", m_ovs_attach, NULL)) < 0 ||
		(rc = ctl_server_register(s, "ovs.detach", m_ovs_detach, NULL)) < 0 ||
		(rc = ctl_server_register(s, "ovs.show", m_ovs_show, NULL)) < 0 ||
		(rc = ctl_server_register(s, "ovs.doctor", m_ovs_doctor, NULL)) < 0)
		return rc;
	return client();
}

void
ovs_shutdown(void)
{
	/*
	 * The OVS rows stay: a restarted vhostd adopts them (or deletes those it
	 * no longer wants). Link workers are waited for.
	 */
	while (g.jobs != NULL) {
		struct link_job *j = g.jobs;

		g.jobs = j->next;
		/* A virtio_user link still waiting for OVS is left to exit(). */
		if (__atomic_load_n(&j->done, __ATOMIC_ACQUIRE)) {
			pthread_join(j->th, NULL);
			free(j);
		} else {
			pthread_detach(j->th);
		}
	}
	for (int i = 0; i < MAX_ATTACH; i++) {
		free(g.atts[i]);
		g.atts[i] = NULL;
	}
	ovsdb_destroy(g.db);
	g.db = NULL;
}
