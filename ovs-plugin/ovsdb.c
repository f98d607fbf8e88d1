/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * OVSDB client: RFC 7047 JSON-RPC over a unix socket, see ovsdb.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ovsdb.h"

#define MONITOR_ID "vhostd"
#define READ_CHUNK 65536
#define READ_BUDGET (4u << 20) /* bytes read per ovsdb_process() */

/* ---- the columns vhostd monitors --------------------------------------------- */

static const struct ovsdb_column ovs_cols[] = {
	{"next_cfg", OVSDB_INTEGER},
	{"cur_cfg", OVSDB_INTEGER},
	{"dpdk_initialized", OVSDB_BOOLEAN},
	{"bridges", OVSDB_UUID_SET},
};
static const struct ovsdb_column bridge_cols[] = {
	{"name", OVSDB_STRING},
	{"datapath_type", OVSDB_STRING},
	{"ports", OVSDB_UUID_SET},
};
static const struct ovsdb_column port_cols[] = {
	{"name", OVSDB_STRING},
	{"interfaces", OVSDB_UUID_SET},
	{"tag", OVSDB_OPT_INTEGER},
	{"external_ids", OVSDB_MAP_SS},
};
static const struct ovsdb_column iface_cols[] = {
	{"name", OVSDB_STRING},
	{"type", OVSDB_STRING},
	{"options", OVSDB_MAP_SS},
	{"external_ids", OVSDB_MAP_SS},
	{"ofport", OVSDB_OPT_INTEGER},
	{"error", OVSDB_OPT_STRING},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const struct ovsdb_table ovsdb_vswitch_tables[] = {
	{"Open_vSwitch", ovs_cols, N(ovs_cols)},
	{"Bridge", bridge_cols, N(bridge_cols)},
	{"Port", port_cols, N(port_cols)},
	{"Interface", iface_cols, N(iface_cols)},
};
const size_t ovsdb_vswitch_n_tables = N(ovsdb_vswitch_tables);

/* ---- client state ------------------------------------------------------------- */

enum conn_state {
	ST_DISABLED,
	ST_BACKOFF,
	ST_CONNECTING, /* connected, monitor_cond sent, waiting for the snapshot */
	ST_CONNECTED,
};

static const char *const state_names[] = {
	[ST_DISABLED] = "disabled",
	[ST_BACKOFF] = "backoff",
	[ST_CONNECTING] = "connecting",
	[ST_CONNECTED] = "connected",
};

struct pending {
	struct pending *next;
	json_int_t id;
	size_t n_ops; /* transactions: operations sent; 0 for other requests */
	bool monitor;
	ovsdb_reply_fn fn;
	void *arg;
};

struct ovsdb {
	char remote[128];
	char path[108];
	struct ovsdb_callbacks cb;
	void *cb_arg;
	int ep; /* the stable descriptor */
	int tfd;
	int sock;
	bool out_armed;
	enum conn_state state;
	char last_error[256];
	uint64_t backoff_ms;
	uint64_t next_attempt_ms;
	uint64_t last_rx_ms;
	bool probe_sent;
	uint64_t reconnects;
	json_int_t next_id;
	struct pending *pending;
	char *rx;
	size_t rx_len, rx_cap;
	char *tx;
	size_t tx_len, tx_off;
	json_t *replica;
};

uint64_t
ovsdb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
ovsdb_remote_check(const char *remote, char *err, size_t errlen)
{
	const char *p;

	if (strncmp(remote, "unix:", 5) != 0) {
		snprintf(err, errlen, "ovs: db \"%s\": only unix:PATH remotes are supported",
			remote);
		return -EINVAL;
	}
	p = remote + 5;
	if (p[0] != '/' || strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen,
			"ovs: db \"%s\": the socket path must be absolute and shorter than 108 "
			"bytes",
			remote);
		return -EINVAL;
	}
	return 0;
}

static void set_error(struct ovsdb *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_error(struct ovsdb *db, const char *fmt, ...)
{
	char buf[sizeof(db->last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* Log once per distinct error, not on every retry. */
	if (strcmp(buf, db->last_error) != 0)
		VLOG_WARN("ovs: %s: %s (retrying with backoff up to %d s)", db->remote, buf,
			OVSDB_BACKOFF_MAX_MS / 1000);
	memcpy(db->last_error, buf, sizeof(buf));
}

static json_t *
new_replica(void)
{
	json_t *r = json_object();

	for (size_t t = 0; t < ovsdb_vswitch_n_tables; t++)
		json_object_set_new(r, ovsdb_vswitch_tables[t].name, json_object());
	return r;
}

int
ovsdb_create(struct ovsdb **out, const char *remote, const struct ovsdb_callbacks *cb, void *arg,
	char *err, size_t errlen)
{
	struct itimerspec tick = {{0, OVSDB_TICK_MS * 1000000L}, {0, OVSDB_TICK_MS * 1000000L}};
	struct ovsdb *db;
	int rc = ovsdb_remote_check(remote, err, errlen);

	if (rc < 0)
		return rc;
	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return -ENOMEM;
	snprintf(db->remote, sizeof(db->remote), "%s", remote);
	snprintf(db->path, sizeof(db->path), "%s", remote + 5);
	if (cb != NULL)
		db->cb = *cb;
	db->cb_arg = arg;
	db->sock = -1;
	db->backoff_ms = OVSDB_BACKOFF_MIN_MS;
	db->next_id = 1;
	db->replica = new_replica();
	db->ep = epoll_create1(EPOLL_CLOEXEC);
	db->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (db->ep < 0 || db->tfd < 0 || timerfd_settime(db->tfd, 0, &tick, NULL) < 0 ||
		epoll_ctl(db->ep, EPOLL_CTL_ADD, db->tfd,
			&(struct epoll_event){.events = EPOLLIN, .data.fd = db->tfd}) < 0) {
		rc = -errno;
		snprintf(err, errlen, "ovs: cannot create the client's descriptors: %s",
			strerror(errno));
		ovsdb_destroy(db);
		return rc;
	}
	*out = db;
	return 0;
}

const char *
ovsdb_remote(const struct ovsdb *db)
{
	return db->remote;
}

static void fail_pending(struct ovsdb *db, const char *why);

static void
close_sock(struct ovsdb *db)
{
	if (db->sock >= 0) {
		epoll_ctl(db->ep, EPOLL_CTL_DEL, db->sock, NULL);
		close(db->sock);
	}
	db->sock = -1;
	db->out_armed = false;
	db->rx_len = 0;
	db->tx_len = db->tx_off = 0;
	db->probe_sent = false;
}

/* Drop the connection, tell the user, schedule a reconnect. */
static void
disconnect(struct ovsdb *db, const char *why)
{
	bool was_up = db->state == ST_CONNECTED;

	close_sock(db);
	if (db->state == ST_DISABLED)
		return;
	db->state = ST_BACKOFF;
	db->next_attempt_ms = ovsdb_now_ms() + db->backoff_ms;
	db->backoff_ms = db->backoff_ms * 2 > OVSDB_BACKOFF_MAX_MS ? OVSDB_BACKOFF_MAX_MS
								   : db->backoff_ms * 2;
	json_decref(db->replica);
	db->replica = new_replica();
	fail_pending(db, "OVSDB connection lost");
	if (was_up) {
		VLOG_WARN("ovs: %s: disconnected: %s", db->remote, why);
		snprintf(db->last_error, sizeof(db->last_error), "%s", why);
	} else {
		set_error(db, "%s", why);
	}
	if (was_up && db->cb.disconnected != NULL)
		db->cb.disconnected(db, why, db->cb_arg);
}

void
ovsdb_destroy(struct ovsdb *db)
{
	if (db == NULL)
		return;
	db->state = ST_DISABLED;
	close_sock(db);
	fail_pending(db, "OVSDB client destroyed");
	if (db->tfd >= 0)
		close(db->tfd);
	if (db->ep >= 0)
		close(db->ep);
	json_decref(db->replica);
	free(db->rx);
	free(db->tx);
	free(db);
}

int
ovsdb_set_remote(struct ovsdb *db, const char *remote, char *err, size_t errlen)
{
	int rc = ovsdb_remote_check(remote, err, errlen);

	if (rc < 0)
		return rc;
	if (strcmp(remote, db->remote) == 0)
		return 0;
	snprintf(db->remote, sizeof(db->remote), "%s", remote);
	snprintf(db->path, sizeof(db->path), "%s", remote + 5);
	if (db->state != ST_DISABLED) {
		disconnect(db, "remote changed");
		db->backoff_ms = OVSDB_BACKOFF_MIN_MS;
		db->next_attempt_ms = 0;
	}
	return 0;
}

int
ovsdb_fd(const struct ovsdb *db)
{
	return db->ep;
}

bool
ovsdb_connected(const struct ovsdb *db)
{
	return db->state == ST_CONNECTED;
}

bool
ovsdb_enabled(const struct ovsdb *db)
{
	return db->state != ST_DISABLED;
}

const char *
ovsdb_state(const struct ovsdb *db)
{
	return state_names[db->state];
}

const char *
ovsdb_last_error(const struct ovsdb *db)
{
	return db->last_error;
}

uint64_t
ovsdb_backoff_left_ms(const struct ovsdb *db)
{
	uint64_t now = ovsdb_now_ms();

	return db->state == ST_BACKOFF && db->next_attempt_ms > now ? db->next_attempt_ms - now : 0;
}

uint64_t
ovsdb_reconnects(const struct ovsdb *db)
{
	return db->reconnects;
}

json_t *
ovsdb_rows(const struct ovsdb *db, const char *table)
{
	return json_object_get(db->replica, table);
}

json_t *
ovsdb_row(const struct ovsdb *db, const char *table, const char *uuid)
{
	return json_object_get(json_object_get(db->replica, table), uuid);
}

/* ---- output ---------------------------------------------------------------- */

static void
arm_out(struct ovsdb *db, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.fd = db->sock};

	if (db->sock < 0 || db->out_armed == on)
		return;
	epoll_ctl(db->ep, EPOLL_CTL_MOD, db->sock, &ev);
	db->out_armed = on;
}

/* Write what is buffered; 0, or -1 after disconnect(). */
static int
flush_out(struct ovsdb *db)
{
	while (db->tx_off < db->tx_len) {
		ssize_t n = send(db->sock, db->tx + db->tx_off, db->tx_len - db->tx_off,
			MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			arm_out(db, true);
			return 0;
		}
		if (n <= 0) {
			char why[128];

			snprintf(why, sizeof(why), "send: %s", strerror(n < 0 ? errno : EPIPE));
			disconnect(db, why);
			return -1;
		}
		db->tx_off += (size_t)n;
	}
	db->tx_len = db->tx_off = 0;
	arm_out(db, false);
	return 0;
}

static int
send_json(struct ovsdb *db, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t len;

	json_decref(msg);
	if (text == NULL)
		return -ENOMEM;
	len = strlen(text);
	if (db->tx_off > 0 && db->tx_off == db->tx_len)
		db->tx_len = db->tx_off = 0;
	if (db->tx_len + len > (size_t)-1 / 2) {
		free(text);
		return -ENOMEM;
	}
	{
		char *n = realloc(db->tx, db->tx_len + len);

		if (n == NULL) {
			free(text);
			return -ENOMEM;
		}
		db->tx = n;
	}
	memcpy(db->tx + db->tx_len, text, len);
	db->tx_len += len;
	free(text);
	return flush_out(db) < 0 ? -ENOTCONN : 0;
}

static int
request(struct ovsdb *db, const char *method, json_t *params, size_t n_ops, bool monitor,
	ovsdb_reply_fn fn, void *arg)
{
	struct pending *p;
	json_int_t id = db->next_id++;

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		json_decref(params);
		return -ENOMEM;
	}
	p->id = id;
	p->n_ops = n_ops;
	p->monitor = monitor;
	p->fn = fn;
	p->arg = arg;
	p->next = db->pending;
	db->pending = p;
	/* On a send failure disconnect() has failed the pending request already. */
	send_json(db, json_pack("{s:s, s:o, s:I}", "method", method, "params", params, "id", id));
	return 0;
}

static void
fail_pending(struct ovsdb *db, const char *why)
{
	struct pending *p = db->pending;

	db->pending = NULL;
	while (p != NULL) {
		struct pending *next = p->next;

		if (p->fn != NULL)
			p->fn(db, NULL, why, p->arg);
		free(p);
		p = next;
	}
}

int
ovsdb_transact(struct ovsdb *db, json_t *ops, ovsdb_reply_fn fn, void *arg)
{
	json_t *params;
	size_t n;

	if (!json_is_array(ops)) {
		json_decref(ops);
		return -EINVAL;
	}
	if (db->state != ST_CONNECTED) {
		json_decref(ops);
		return -ENOTCONN;
	}
	n = json_array_size(ops);
	params = json_pack("[s]", "Open_vSwitch");
	json_array_extend(params, ops);
	json_decref(ops);
	return request(db, "transact", params, n, false, fn, arg);
}

/* ---- connecting ------------------------------------------------------------- */

static json_t *
monitor_requests(void)
{
	json_t *req = json_object();

	for (size_t t = 0; t < ovsdb_vswitch_n_tables; t++) {
		const struct ovsdb_table *tb = &ovsdb_vswitch_tables[t];
		json_t *cols = json_array();

		for (size_t c = 0; c < tb->n_columns; c++)
			json_array_append_new(cols, json_string(tb->columns[c].name));
		json_object_set_new(req, tb->name, json_pack("[{s:o}]", "columns", cols));
	}
	return req;
}

static void
monitor_reply(struct ovsdb *db, json_t *result, const char *error, void *arg)
{
	char err[256];

	if (result == NULL) {
		if (db->sock >= 0) {
			snprintf(err, sizeof(err), "monitor_cond failed: %s", error);
			disconnect(db, err);
		}
		return;
	}
	if (ovsdb_apply_update2(db->replica, ovsdb_vswitch_tables, ovsdb_vswitch_n_tables, result,
		    err, sizeof(err)) < 0) {
		disconnect(db, err);
		return;
	}
	db->state = ST_CONNECTED;
	db->backoff_ms = OVSDB_BACKOFF_MIN_MS;
	if (db->last_error[0] != '\0' || db->reconnects > 0)
		VLOG_INFO("ovs: %s: connected", db->remote);
	else
		VLOG_INFO("ovs: %s: connected", db->remote);
	db->last_error[0] = '\0';
	db->reconnects++;
	if (db->cb.connected != NULL)
		db->cb.connected(db, db->cb_arg);
}

static void
try_connect(struct ovsdb *db)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		db->state = ST_BACKOFF;
		disconnect(db, strerror(errno));
		return;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", db->path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		char why[200];

		snprintf(why, sizeof(why), "cannot connect to %s: %s", db->path,
			errno == EAGAIN ? "server busy" : strerror(errno));
		close(fd);
		db->state = ST_BACKOFF;
		disconnect(db, why);
		return;
	}
	db->sock = fd;
	db->state = ST_CONNECTING;
	db->last_rx_ms = ovsdb_now_ms();
	epoll_ctl(
		db->ep, EPOLL_CTL_ADD, fd, &(struct epoll_event){.events = EPOLLIN, .data.fd = fd});
	request(db, "monitor_cond",
		json_pack("[s, s, o]", "Open_vSwitch", MONITOR_ID, monitor_requests()), 0, true,
		monitor_reply, NULL);
}

void
ovsdb_enable(struct ovsdb *db)
{
	if (db->state != ST_DISABLED)
		return;
	db->state = ST_BACKOFF;
	db->next_attempt_ms = 0;
	try_connect(db);
}

/* ---- input ------------------------------------------------------------------ */

long
ovsdb_scan_message(const char *buf, size_t len, size_t max)
{
	size_t i = 0;
	int depth = 0;
	bool in_str = false, esc = false;

	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	if (i == len)
		return 0;
	if (buf[i] != '{')
		return -1;
	for (; i < len; i++) {
		char c = buf[i];

		if (i >= max)
			return -1;
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > 256)
				return -1; /* deeper than any OVSDB message */
		} else if (c == '}' || c == ']') {
			if (--depth < 0)
				return -1;
			if (depth == 0)
				return (long)(i + 1);
		}
	}
	return len >= max ? -1 : 0;
}

/* The text of an RPC "error" member (string or {"error", "details"}). */
static void
error_text(json_t *e, char *out, size_t len)
{
	json_t *msg = json_object_get(e, "error"), *det = json_object_get(e, "details");

	if (json_is_string(e))
		snprintf(out, len, "%s", json_string_value(e));
	else if (json_is_string(msg) && json_is_string(det))
		snprintf(out, len, "%s: %s", json_string_value(msg), json_string_value(det));
	else if (json_is_string(msg))
		snprintf(out, len, "%s", json_string_value(msg));
	else
		snprintf(out, len, "malformed error");
}

int
ovsdb_check_txn_result(json_t *result, size_t n_ops, char *err, size_t errlen)
{
	size_t i;
	json_t *r;

	if (!json_is_array(result) || json_array_size(result) < n_ops) {
		snprintf(err, errlen, "malformed transaction result");
		return -EPROTO;
	}
	json_array_foreach(result, i, r) {
		json_t *e;

		if (json_is_null(r))
			continue; /* an operation not executed after an earlier failure */
		if (!json_is_object(r)) {
			snprintf(err, errlen, "malformed result of operation %zu", i);
			return -EPROTO;
		}
		e = json_object_get(r, "error");
		if (e != NULL && !json_is_null(e)) {
			char text[200];

			error_text(r, text, sizeof(text));
			if (i < n_ops)
				snprintf(err, errlen, "operation %zu failed: %s", i, text);
			else
				snprintf(err, errlen, "transaction failed: %s", text);
			return -EIO;
		}
	}
	return 0;
}

static void
handle_reply(struct ovsdb *db, json_t *msg)
{
	json_t *id = json_object_get(msg, "id"), *result = json_object_get(msg, "result"),
	       *error = json_object_get(msg, "error");
	struct pending **pp, *p;
	char text[300];

	if (!json_is_integer(id))
		return; /* not ours */
	for (pp = &db->pending; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->id == json_integer_value(id))
			break;
	p = *pp;
	if (p == NULL) {
		VLOG_DEBUG("ovs: reply to unknown request %lld ignored",
			(long long)json_integer_value(id));
		return;
	}
	*pp = p->next;
	if (error != NULL && !json_is_null(error)) {
		error_text(error, text, sizeof(text));
		if (p->fn != NULL)
			p->fn(db, NULL, text, p->arg);
	} else if (result == NULL) {
		if (p->fn != NULL)
			p->fn(db, NULL, "reply without result", p->arg);
	} else if (!p->monitor && p->n_ops > 0 &&
		   ovsdb_check_txn_result(result, p->n_ops, text, sizeof(text)) < 0) {
		if (p->fn != NULL)
			p->fn(db, NULL, text, p->arg);
	} else if (p->fn != NULL) {
		p->fn(db, result, NULL, p->arg);
	}
	free(p);
}

/* Returns -1 when the connection was dropped. */
static int
handle_message(struct ovsdb *db, json_t *msg)
{
	json_t *method = json_object_get(msg, "method"), *params = json_object_get(msg, "params"),
	       *id = json_object_get(msg, "id");
	const char *m;
	char err[256];

	if (!json_is_object(msg)) {
		disconnect(db, "protocol error: a message is not an object");
		return -1;
	}
	if (method == NULL) {
		handle_reply(db, msg);
		return db->sock >= 0 ? 0 : -1;
	}
	if (!json_is_string(method) || !json_is_array(params)) {
		disconnect(db, "protocol error: malformed request");
		return -1;
	}
	m = json_string_value(method);
	if (strcmp(m, "echo") == 0) {
		if (id != NULL && !json_is_null(id))
			send_json(db,
				json_pack("{s:O, s:n, s:O}", "result", params, "error", "id", id));
		return db->sock >= 0 ? 0 : -1;
	}
	if (strcmp(m, "update2") == 0) {
		json_t *mid = json_array_get(params, 0), *upd = json_array_get(params, 1);

		if (json_array_size(params) != 2 || !json_is_string(mid) ||
			strcmp(json_string_value(mid), MONITOR_ID) != 0) {
			disconnect(db, "protocol error: malformed update2");
			return -1;
		}
		if (db->state != ST_CONNECTED)
			return 0; /* before the snapshot: it includes this change */
		if (ovsdb_apply_update2(db->replica, ovsdb_vswitch_tables, ovsdb_vswitch_n_tables,
			    upd, err, sizeof(err)) < 0) {
			char why[300];

			snprintf(why, sizeof(why), "protocol error in update2: %s", err);
			disconnect(db, why);
			return -1;
		}
		if (db->cb.updated != NULL)
			db->cb.updated(db, db->cb_arg);
		return 0;
	}
	if (strcmp(m, "monitor_canceled") == 0) {
		disconnect(db, "the server canceled the monitor");
		return -1;
	}
	/* Anything else: answer requests with an error, ignore notifications. */
	if (id != NULL && !json_is_null(id))
		send_json(db, json_pack("{s:n, s:s, s:O}", "result", "error", "unknown method",
				      "id", id));
	return db->sock >= 0 ? 0 : -1;
}

static void
read_input(struct ovsdb *db)
{
	size_t budget = READ_BUDGET;

	while (db->sock >= 0 && budget > 0) {
		ssize_t n;
		long used;
		size_t off = 0;

		if (db->rx_cap - db->rx_len < READ_CHUNK) {
			size_t cap = db->rx_cap ? db->rx_cap * 2 : 2 * READ_CHUNK;
			char *b;

			if (cap > OVSDB_MAX_MESSAGE + 2 * READ_CHUNK) {
				disconnect(db, "protocol error: message too large");
				return;
			}
			b = realloc(db->rx, cap);
			if (b == NULL) {
				disconnect(db, "out of memory");
				return;
			}
			db->rx = b;
			db->rx_cap = cap;
		}
		n = recv(db->sock, db->rx + db->rx_len, db->rx_cap - db->rx_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			char why[128];

			snprintf(why, sizeof(why), "%s",
				n == 0 ? "connection closed by the server" : strerror(errno));
			disconnect(db, why);
			return;
		}
		db->rx_len += (size_t)n;
		budget -= (size_t)n < budget ? (size_t)n : budget;
		db->last_rx_ms = ovsdb_now_ms();
		db->probe_sent = false;
		while ((used = ovsdb_scan_message(
				db->rx + off, db->rx_len - off, OVSDB_MAX_MESSAGE)) > 0) {
			json_error_t jerr;
			json_t *msg = json_loadb(db->rx + off, (size_t)used,
				JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
			int rc;

			off += (size_t)used;
			if (msg == NULL) {
				disconnect(db, "protocol error: invalid JSON");
				return;
			}
			rc = handle_message(db, msg);
			json_decref(msg);
			if (rc < 0 || db->sock < 0)
				return;
		}
		if (used < 0) {
			disconnect(db, "protocol error: not a JSON object or too large");
			return;
		}
		memmove(db->rx, db->rx + off, db->rx_len - off);
		db->rx_len -= off;
	}
}

static void
timers(struct ovsdb *db)
{
	uint64_t now = ovsdb_now_ms();

	if (db->state == ST_BACKOFF && now >= db->next_attempt_ms)
		try_connect(db);
	if (db->sock >= 0 && now - db->last_rx_ms >= OVSDB_PROBE_MS) {
		if (db->probe_sent && now - db->last_rx_ms >= 2 * OVSDB_PROBE_MS) {
			disconnect(db, "no answer to the inactivity probe");
		} else if (!db->probe_sent) {
			db->probe_sent = true;
			request(db, "echo", json_pack("[s]", "vhostd-probe"), 0, false, NULL, NULL);
		}
	}
	if (db->cb.tick != NULL)
		db->cb.tick(db, now, db->cb_arg);
}

void
ovsdb_process(struct ovsdb *db)
{
	struct epoll_event ev[4];
	int n = epoll_wait(db->ep, ev, 4, 0);

	for (int i = 0; i < n; i++) {
		if (ev[i].data.fd == db->tfd) {
			uint64_t ticks;

			if (read(db->tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
				timers(db);
		} else if (ev[i].data.fd == db->sock && db->sock >= 0) {
			if (ev[i].events & EPOLLOUT)
				flush_out(db);
			if (db->sock >= 0 && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				read_input(db);
		}
	}
}

/* ---- update2 parsing ------------------------------------------------------------ */

bool
ovsdb_uuid_valid(const char *s)
{
	static const char hexd[] = "0123456789abcdefABCDEF";

	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (strchr(hexd, s[i]) == NULL || s[i] == '\0') {
			return false;
		}
	}
	return true;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

enum atom_type { A_STRING, A_INTEGER, A_BOOLEAN, A_UUID };

/* One atom of @type in wire form -> normalized (new reference) or NULL. */
static json_t *
parse_atom(json_t *v, enum atom_type type)
{
	switch (type) {
	case A_STRING:
		return json_is_string(v) ? json_incref(v) : NULL;
	case A_INTEGER:
		return json_is_integer(v) ? json_incref(v) : NULL;
	case A_BOOLEAN:
		return json_is_boolean(v) ? json_incref(v) : NULL;
	case A_UUID:
		if (json_is_array(v) && json_array_size(v) == 2 &&
			json_is_string(json_array_get(v, 0)) &&
			strcmp(json_string_value(json_array_get(v, 0)), "uuid") == 0 &&
			json_is_string(json_array_get(v, 1)) &&
			ovsdb_uuid_valid(json_string_value(json_array_get(v, 1))))
			return json_incref(json_array_get(v, 1));
		return NULL;
	}
	return NULL;
}

static bool
is_tagged(json_t *v, const char *tag)
{
	return json_is_array(v) && json_array_size(v) == 2 &&
	       json_is_string(json_array_get(v, 0)) &&
	       strcmp(json_string_value(json_array_get(v, 0)), tag) == 0 &&
	       json_is_array(json_array_get(v, 1));
}

/* A set of atoms (a bare atom or ["set", [...]]) -> array, or NULL. */
static json_t *
parse_set(json_t *v, enum atom_type type)
{
	json_t *out = json_array(), *a, *e;
	size_t i;

	if (is_tagged(v, "set")) {
		json_array_foreach(json_array_get(v, 1), i, e) {
			a = parse_atom(e, type);
			if (a == NULL) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, a);
		}
		return out;
	}
	a = parse_atom(v, type);
	if (a == NULL) {
		json_decref(out);
		return NULL;
	}
	json_array_append_new(out, a);
	return out;
}

/* ["map", [[k, v], ...]] with string keys -> object, or NULL. */
static json_t *
parse_map(json_t *v, enum atom_type vtype)
{
	json_t *out, *pair;
	size_t i;

	if (!is_tagged(v, "map"))
		return NULL;
	out = json_object();
	json_array_foreach(json_array_get(v, 1), i, pair) {
		json_t *k = json_array_get(pair, 0), *val;

		if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(k) ||
			strlen(json_string_value(k)) != json_string_length(k)) {
			json_decref(out);
			return NULL;
		}
		val = parse_atom(json_array_get(pair, 1), vtype);
		if (val == NULL) {
			json_decref(out);
			return NULL;
		}
		json_object_set_new(out, json_string_value(k), val);
	}
	return out;
}

static json_t *
parse_datum(json_t *v, enum ovsdb_kind kind)
{
	switch (kind) {
	case OVSDB_STRING:
		return parse_atom(v, A_STRING);
	case OVSDB_INTEGER:
		return parse_atom(v, A_INTEGER);
	case OVSDB_BOOLEAN:
		return parse_atom(v, A_BOOLEAN);
	case OVSDB_UUID_SET:
		return parse_set(v, A_UUID);
	case OVSDB_OPT_INTEGER:
		return parse_set(v, A_INTEGER);
	case OVSDB_OPT_STRING:
		return parse_set(v, A_STRING);
	case OVSDB_MAP_SS:
		return parse_map(v, A_STRING);
	case OVSDB_MAP_SI:
		return parse_map(v, A_INTEGER);
	}
	return NULL;
}

static json_t *
default_datum(enum ovsdb_kind kind)
{
	switch (kind) {
	case OVSDB_STRING:
		return json_string("");
	case OVSDB_INTEGER:
		return json_integer(0);
	case OVSDB_BOOLEAN:
		return json_false();
	case OVSDB_MAP_SS:
	case OVSDB_MAP_SI:
		return json_object();
	default:
		return json_array();
	}
}

static bool
is_set_kind(enum ovsdb_kind k)
{
	return k == OVSDB_UUID_SET || k == OVSDB_OPT_INTEGER || k == OVSDB_OPT_STRING;
}

static bool
is_map_kind(enum ovsdb_kind k)
{
	return k == OVSDB_MAP_SS || k == OVSDB_MAP_SI;
}

/* Symmetric difference of two normalized sets, in place in @cur. */
static void
apply_set_diff(json_t *cur, json_t *diff)
{
	size_t i, j;
	json_t *d;

	json_array_foreach(diff, i, d) {
		bool found = false;

		for (j = 0; j < json_array_size(cur); j++) {
			if (json_equal(json_array_get(cur, j), d)) {
				json_array_remove(cur, j);
				found = true;
				break;
			}
		}
		if (!found)
			json_array_append(cur, d);
	}
}

/* Map diff: same key and value removes, another value replaces, new key inserts. */
static void
apply_map_diff(json_t *cur, json_t *diff)
{
	const char *k;
	json_t *v;

	json_object_foreach(diff, k, v) {
		json_t *old = json_object_get(cur, k);

		if (old != NULL && json_equal(old, v))
			json_object_del(cur, k);
		else
			json_object_set(cur, k, v);
	}
}

static const struct ovsdb_column *
find_column(const struct ovsdb_table *t, const char *name)
{
	for (size_t c = 0; c < t->n_columns; c++)
		if (strcmp(t->columns[c].name, name) == 0)
			return &t->columns[c];
	return NULL;
}

static bool
valid_final(json_t *datum, enum ovsdb_kind kind)
{
	if (kind == OVSDB_OPT_INTEGER || kind == OVSDB_OPT_STRING)
		return json_array_size(datum) <= 1;
	return true;
}

/* A full row (initial/insert): every column present or default. */
static json_t *
parse_row(const struct ovsdb_table *t, json_t *row, char *err, size_t errlen)
{
	json_t *out = json_object(), *v;
	const char *col;

	json_object_foreach(row, col, v) {
		const struct ovsdb_column *c = find_column(t, col);
		json_t *d;

		if (c == NULL) {
			fail(err, errlen, "%s: unexpected column", t->name);
			json_decref(out);
			return NULL;
		}
		d = parse_datum(v, c->kind);
		if (d == NULL || !valid_final(d, c->kind)) {
			json_decref(d);
			fail(err, errlen, "%s.%s: value of the wrong type", t->name, c->name);
			json_decref(out);
			return NULL;
		}
		json_object_set_new(out, c->name, d);
	}
	for (size_t c = 0; c < t->n_columns; c++)
		if (json_object_get(out, t->columns[c].name) == NULL)
			json_object_set_new(
				out, t->columns[c].name, default_datum(t->columns[c].kind));
	return out;
}

static int
modify_row(const struct ovsdb_table *t, json_t *cur, json_t *diff, char *err, size_t errlen)
{
	const char *col;
	json_t *v;

	json_object_foreach(diff, col, v) {
		const struct ovsdb_column *c = find_column(t, col);
		json_t *d, *old;

		if (c == NULL)
			return fail(err, errlen, "%s: unexpected column", t->name);
		d = parse_datum(v, c->kind);
		if (d == NULL)
			return fail(
				err, errlen, "%s.%s: value of the wrong type", t->name, c->name);
		old = json_object_get(cur, c->name);
		if (is_set_kind(c->kind) && json_is_array(old)) {
			apply_set_diff(old, d);
			json_decref(d);
		} else if (is_map_kind(c->kind) && json_is_object(old)) {
			apply_map_diff(old, d);
			json_decref(d);
		} else {
			json_object_set_new(cur, c->name, d);
		}
		if (!valid_final(json_object_get(cur, c->name), c->kind))
			return fail(err, errlen, "%s.%s: too many values", t->name, c->name);
	}
	return 0;
}

int
ovsdb_apply_update2(json_t *replica, const struct ovsdb_table *tables, size_t n_tables,
	json_t *updates, char *err, size_t errlen)
{
	const char *tname;
	json_t *tupd;

	if (!json_is_object(updates) || !json_is_object(replica))
		return fail(err, errlen, "table-updates2 is not an object");
	json_object_foreach(updates, tname, tupd) {
		const struct ovsdb_table *t = NULL;
		json_t *rows = json_object_get(replica, tname), *rupd;
		const char *uuid;

		for (size_t i = 0; i < n_tables; i++)
			if (strcmp(tables[i].name, tname) == 0)
				t = &tables[i];
		if (t == NULL || !json_is_object(rows))
			return fail(err, errlen, "update of a table not monitored");
		if (!json_is_object(tupd))
			return fail(err, errlen, "%s: table-update2 is not an object", t->name);
		json_object_foreach(tupd, uuid, rupd) {
			json_t *op, *row;
			const char *kind;

			if (!ovsdb_uuid_valid(uuid))
				return fail(err, errlen, "%s: invalid row uuid", t->name);
			if (!json_is_object(rupd) || json_object_size(rupd) != 1)
				return fail(
					err, errlen, "%s %s: malformed row-update2", t->name, uuid);
			kind = json_object_iter_key(json_object_iter(rupd));
			op = json_object_iter_value(json_object_iter(rupd));
			if (strcmp(kind, "delete") == 0) {
				if (!json_is_null(op))
					return fail(err, errlen, "%s %s: malformed delete", t->name,
						uuid);
				if (json_object_get(rows, uuid) == NULL)
					return fail(err, errlen, "%s %s: delete of an unknown row",
						t->name, uuid);
				json_object_del(rows, uuid);
			} else if (strcmp(kind, "initial") == 0 || strcmp(kind, "insert") == 0) {
				if (!json_is_object(op))
					return fail(err, errlen, "%s %s: malformed %s", t->name,
						uuid, kind);
				if (json_object_get(rows, uuid) != NULL)
					return fail(err, errlen, "%s %s: insert of an existing row",
						t->name, uuid);
				row = parse_row(t, op, err, errlen);
				if (row == NULL)
					return -EPROTO;
				json_object_set_new(rows, uuid, row);
			} else if (strcmp(kind, "modify") == 0) {
				if (!json_is_object(op))
					return fail(err, errlen, "%s %s: malformed modify", t->name,
						uuid);
				row = json_object_get(rows, uuid);
				if (row == NULL)
					return fail(err, errlen, "%s %s: modify of an unknown row",
						t->name, uuid);
				if (modify_row(t, row, op, err, errlen) < 0)
					return -EPROTO;
			} else {
				return fail(err, errlen, "%s %s: unknown row-update2 \"%s\"",
					t->name, uuid, kind);
			}
		}
	}
	return 0;
}

/* ---- row accessors --------------------------------------------------------------- */

const char *
ovsdb_row_string(json_t *row, const char *column)
{
	json_t *v = json_object_get(row, column);

	if (json_is_array(v))
		v = json_array_get(v, 0);
	return json_is_string(v) ? json_string_value(v) : "";
}

json_int_t
ovsdb_row_integer(json_t *row, const char *column)
{
	json_t *v = json_object_get(row, column);

	if (json_is_array(v))
		v = json_array_get(v, 0);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

bool
ovsdb_row_bool(json_t *row, const char *column)
{
	return json_is_true(json_object_get(row, column));
}

const char *
ovsdb_row_map_string(json_t *row, const char *column, const char *key)
{
	json_t *v = json_object_get(json_object_get(row, column), key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool
ovsdb_row_set_has(json_t *row, const char *column, const char *value)
{
	json_t *set = json_object_get(row, column), *e;
	size_t i;

	json_array_foreach(set, i, e)
		if (json_is_string(e) && strcmp(json_string_value(e), value) == 0)
			return true;
	return false;
}
