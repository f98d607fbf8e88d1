/* SPDX-License-Identifier: BSD-3-Clause */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "cpuset.h"
#include "ctl_server.h"
#include "jsonrpc.h"
#include "log.h"
#include "ovs_attach.h"
#include "queue_sched.h"

#define DEFAULT_MTU 1500
#define DEFAULT_MAC_AGING_S 300
#define DEFAULT_MAC_TABLE_SIZE 8192
#define DEFAULT_SCSI_MAX_SECTORS 0xffff
#define DEFAULT_SCSI_CMD_PER_LUN 128

/* ---- small strict accessors -------------------------------------------- */

static int
bad(struct ctl_error *err, const char *what, const char *member, const char *why)
{
	ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "%s: \"%s\" %s", what, member, why);
	return -EINVAL;
}

/* Reject members not in @allowed (NULL-terminated). */
static int
check_members(json_t *obj, const char *what, const char *const *allowed, struct ctl_error *err)
{
	const char *key;
	json_t *val;

	if (!json_is_object(obj)) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "%s: expected an object", what);
		return -EINVAL;
	}
	json_object_foreach(obj, key, val) {
		bool ok = false;

		for (int i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				ok = true;
		if (!ok)
			return bad(err, what, key, "is not a known member");
	}
	return 0;
}

static int
get_str(json_t *obj, const char *what, const char *key, char *out, size_t len, bool allow_null,
	struct ctl_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return 0;
	if (json_is_null(v) && allow_null) {
		out[0] = '\0';
		return 1;
	}
	if (!json_is_string(v))
		return bad(err, what, key, "must be a string");
	if (json_string_length(v) >= len || strlen(json_string_value(v)) != json_string_length(v))
		return bad(err, what, key, "is too long or contains NUL");
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 1;
}

static int
get_uint(json_t *obj, const char *what, const char *key, long long min, long long max,
	long long *out, struct ctl_error *err)
{
	json_t *v = json_object_get(obj, key);
	char why[96];

	if (v == NULL)
		return 0;
	if (!json_is_integer(v))
		return bad(err, what, key, "must be an integer");
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		snprintf(why, sizeof(why), "must be between %lld and %lld", min, max);
		return bad(err, what, key, why);
	}
	*out = json_integer_value(v);
	return 1;
}

static int
get_bool(json_t *obj, const char *what, const char *key, bool *out, struct ctl_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return bad(err, what, key, "must be true or false");
	*out = json_is_true(v);
	return 1;
}

/* "single-copy": true, false or "auto" (enum port_single_copy). */
static int
get_single_copy(json_t *obj, const char *what, uint8_t *out, struct ctl_error *err)
{
	json_t *v = json_object_get(obj, "single-copy");

	if (v == NULL)
		return 0;
	if (json_is_boolean(v))
		*out = json_is_true(v) ? PORT_SC_ON : PORT_SC_OFF;
	else if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0)
		*out = PORT_SC_AUTO;
	else
		return bad(err, what, "single-copy", "must be true, false or \"auto\"");
	return 1;
}

static int
check_name(const char *kind, const char *name, struct ctl_error *err)
{
	size_t n = strlen(name);

	if (n == 0 || n >= DP_NAME_MAX || name[0] == '-')
		goto bad_name;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && strchr("_.-", name[i]) == NULL)
			goto bad_name;
	return 0;
bad_name:
	ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
		"%s name \"%s\": use 1-%d letters, digits, '_', '.', '-'", kind, name,
		DP_NAME_MAX - 1);
	return -EINVAL;
}

static int
parse_mac(const char *s, uint8_t mac[6])
{
	/* Exactly "xx:xx:xx:xx:xx:xx": sscanf("%2x") would also take " 1", "+1" or "-1". */
	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)strtoul(s + 3 * i, NULL, 16);
	if (mac[0] & 1)
		return -EINVAL; /* a station address is never multicast */
	return 0;
}

/*
 * "socket": a path given relative is resolved under @run_dir. Leaves @out
 * as it is when the member is absent.
 */
static int
get_socket(json_t *obj, const char *what, const char *run_dir, char out[DP_SOCK_MAX],
	struct ctl_error *err)
{
	char buf[DP_SOCK_MAX];
	int rc = get_str(obj, what, "socket", buf, sizeof(buf), false, err);

	if (rc <= 0)
		return rc;
	if (buf[0] == '\0')
		return bad(err, what, "socket", "must not be empty");
	if (buf[0] == '/')
		memcpy(out, buf, strlen(buf) + 1);
	else if (snprintf(out, DP_SOCK_MAX, "%s/%s", run_dir, buf) >= DP_SOCK_MAX)
		return bad(err, what, "socket", "is too long once under run-dir");
	return 1;
}

/* "mode": server (vhostd listens) or client (vhostd connects). */
static int
parse_mode(const char *mode, const char *what, bool *client, struct ctl_error *err)
{
	if (strcmp(mode, "server") != 0 && strcmp(mode, "client") != 0)
		return bad(err, what, "mode", "must be server or client");
	*client = strcmp(mode, "client") == 0;
	return 0;
}

/* ---- text --------------------------------------------------------------- */

json_t *
config_parse_text(const char *text, const char *origin, struct ctl_error *err)
{
	size_t len = strlen(text);
	json_error_t jerr;
	char *copy = malloc(len + 1);
	json_t *doc;

	if (copy == NULL) {
		ctl_error_set(err, 0, ENOMEM, "%s: out of memory", origin);
		return NULL;
	}
	memcpy(copy, text, len + 1);
	/* Blank out full-line comments, keeping line numbers for errors. */
	for (char *line = copy; *line;) {
		char *p = line, *end = strchr(line, '\n');

		while (*p == ' ' || *p == '\t')
			p++;
		if (p[0] == '/' && p[1] == '/')
			for (char *q = p; *q && *q != '\n'; q++)
				*q = ' ';
		if (end == NULL)
			break;
		line = end + 1;
	}
	doc = json_loads(copy, JSON_REJECT_DUPLICATES, &jerr);
	free(copy);
	if (doc == NULL) {
		/* jansson cuts the "near '...'" token anywhere, even inside a UTF-8
		 * sequence; messages must stay valid UTF-8 (JSON strings). */
		for (char *p = jerr.text; *p != '\0'; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "%s:%d:%d: %s", origin,
			jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		ctl_error_set(
			err, JSONRPC_INVALID_PARAMS, EINVAL, "%s: expected a JSON object", origin);
		return NULL;
	}
	return doc;
}

/* ---- daemon sections ---------------------------------------------------- */

int
config_parse_daemon(json_t *doc, struct daemon_conf *d, struct ctl_error *err)
{
	static const char *const top[] = {
		"vhostd", "eal", "pmd", "bridges", "ports", "xconnects", "scsi", "luns", "ovs", NULL};
	static const char *const vk[] = {
		"run-dir", "control-socket", "control-socket-group", "log-level", "mlockall", NULL};
	static const char *const ek[] = {"file-prefix", "no-huge", "memory-mb", "extra-args", NULL};
	json_t *v = json_object_get(doc, "vhostd"), *e = json_object_get(doc, "eal");
	char level[16] = "info";
	long long n;
	int rc;

	rc = check_members(doc, "config", top, err);
	if (rc < 0)
		return rc;
	snprintf(d->run_dir, sizeof(d->run_dir), "/run/vhostd");
	d->ctl_socket[0] = '\0';
	snprintf(d->ctl_group, sizeof(d->ctl_group), "vhostd");
	d->mlockall = true;
	snprintf(d->file_prefix, sizeof(d->file_prefix), "vhostd");
	d->no_huge = false;
	d->memory_mb = 0;
	d->n_extra_args = 0;
	if (v != NULL) {
		if (check_members(v, "vhostd", vk, err) < 0 ||
			get_str(v, "vhostd", "run-dir", d->run_dir, sizeof(d->run_dir), false,
				err) < 0 ||
			get_str(v, "vhostd", "control-socket", d->ctl_socket, sizeof(d->ctl_socket),
				false, err) < 0 ||
			get_str(v, "vhostd", "control-socket-group", d->ctl_group,
				sizeof(d->ctl_group), false, err) < 0 ||
			get_str(v, "vhostd", "log-level", level, sizeof(level), false, err) < 0 ||
			get_bool(v, "vhostd", "mlockall", &d->mlockall, err) < 0)
			return -EINVAL;
	}
	d->log_level = vlog_level_parse(level);
	if (d->log_level < 0)
		return bad(err, "vhostd", "log-level", "must be err, warn, info or debug");
	if (d->run_dir[0] != '/')
		return bad(err, "vhostd", "run-dir", "must be an absolute path");
	if (d->ctl_socket[0] != '\0' && d->ctl_socket[0] != '/')
		return bad(err, "vhostd", "control-socket", "must be an absolute path");
	if (d->ctl_socket[0] == '\0' &&
		snprintf(d->ctl_socket, sizeof(d->ctl_socket), "%s/vhostd.sock", d->run_dir) >=
			(int)sizeof(d->ctl_socket))
		return bad(err, "vhostd", "run-dir", "is too long for a socket path");
	if (e != NULL) {
		json_t *x = json_object_get(e, "extra-args"), *a;
		size_t i;

		if (check_members(e, "eal", ek, err) < 0 ||
			get_str(e, "eal", "file-prefix", d->file_prefix, sizeof(d->file_prefix),
				false, err) < 0 ||
			get_bool(e, "eal", "no-huge", &d->no_huge, err) < 0)
			return -EINVAL;
		rc = get_uint(e, "eal", "memory-mb", 0, 1 << 20, &n, err);
		if (rc < 0)
			return rc;
		if (rc > 0)
			d->memory_mb = (unsigned int)n;
		if (x != NULL) {
			if (!json_is_array(x) || json_array_size(x) > CONFIG_MAX_EXTRA_ARGS)
				return bad(err, "eal", "extra-args", "must be an array of strings");
			json_array_foreach(x, i, a) {
				if (!json_is_string(a) ||
					json_string_length(a) >= CONFIG_MAX_EXTRA_ARG_LEN)
					return bad(err, "eal", "extra-args",
						"must be an array of strings of at most 255 bytes");
				snprintf(d->extra_args[d->n_extra_args++], CONFIG_MAX_EXTRA_ARG_LEN,
					"%s", json_string_value(a));
			}
		}
	}
	if (check_name("file-prefix", d->file_prefix, err) < 0)
		return -EINVAL;
	return 0;
}

/* "rxq-affinity": "Q:CPU,..." (null or "": no pins) into CPU + 1 per queue. */
static int
get_affinity(json_t *obj, const char *what, uint16_t *pins, struct ctl_error *err)
{
	json_t *v = json_object_get(obj, "rxq-affinity");
	int cpu[DP_MAX_QUEUES];
	char msg[160];

	if (v == NULL)
		return 0;
	if (json_is_null(v)) {
		memset(pins, 0, sizeof(*pins) * DP_MAX_QUEUES);
		return 0;
	}
	if (!json_is_string(v))
		return bad(err, what, "rxq-affinity", "must be a string like \"0:3,1:7\"");
	if (sched_parse_affinity(json_string_value(v), cpu, DP_MAX_QUEUES, msg, sizeof(msg)) < 0) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "%s: \"rxq-affinity\": %s", what,
			msg);
		return -EINVAL;
	}
	for (int q = 0; q < DP_MAX_QUEUES; q++)
		pins[q] = cpu[q] < 0 ? 0 : (uint16_t)(cpu[q] + 1);
	return 0;
}

static void
dump_affinity(json_t *o, const uint16_t *pins)
{
	int cpu[DP_MAX_QUEUES];
	char text[256];

	for (int q = 0; q < DP_MAX_QUEUES; q++)
		cpu[q] = (int)pins[q] - 1;
	sched_format_affinity(cpu, DP_MAX_QUEUES, text, sizeof(text));
	if (text[0] != '\0')
		json_object_set_new(o, "rxq-affinity", json_string(text));
}

/* ---- ports -------------------------------------------------------------- */

static const char *const port_type_names[PORT_TYPE_MAX] = {
	[PORT_VHOST_USER] = "vhost-user",
	[PORT_SINK] = "sink",
	[PORT_REFLECTOR] = "reflector",
	[PORT_ETHDEV] = "ethdev",
};

int
config_parse_port(json_t *obj, const struct port_conf *base, const char *run_dir,
	struct port_conf *out, struct ctl_error *err)
{
	static const char *const keys[] = {"name", "type", "socket", "mode", "queues", "bridge",
		"tag", "trunks", "mac", "mtu", "csum", "mrg-rxbuf", "single-copy", "admin-state",
		"devargs", "rxq-affinity", NULL};
	char what[64] = "port", mode[16] = "", type[16] = "", mac[32] = "", state[8] = "";
	json_t *trunks;
	long long n;
	int rc, has_type, has_mode, has_state;

	if (check_members(obj, what, keys, err) < 0)
		return -EINVAL;
	if (base != NULL) {
		*out = *base;
	} else {
		memset(out, 0, sizeof(*out));
		out->queues = 1;
		out->mtu = DEFAULT_MTU;
		out->csum = true;
		out->mrg_rxbuf = true;
		out->single_copy = PORT_SC_ON;
		out->admin_up = true;
		out->type = PORT_TYPE_MAX;
	}
	rc = get_str(obj, what, "name", out->name, sizeof(out->name), false, err);
	if (rc < 0)
		return rc;
	if (rc == 0 && base == NULL)
		return bad(err, what, "name", "is required");
	if (check_name("port", out->name, err) < 0)
		return -EINVAL;
	snprintf(what, sizeof(what), "port %s", out->name);
	/* A member given as "" is present (and invalid), not absent. */
	has_type = get_str(obj, what, "type", type, sizeof(type), false, err);
	if (has_type < 0)
		return -EINVAL;
	has_mode = get_str(obj, what, "mode", mode, sizeof(mode), false, err);
	if (has_mode < 0)
		return -EINVAL;
	has_state = get_str(obj, what, "admin-state", state, sizeof(state), false, err);
	if (has_state < 0)
		return -EINVAL;
	if (get_str(obj, what, "bridge", out->bridge, sizeof(out->bridge), true, err) < 0 ||
		get_str(obj, what, "mac", mac, sizeof(mac), true, err) < 0 ||
		get_bool(obj, what, "csum", &out->csum, err) < 0 ||
		get_bool(obj, what, "mrg-rxbuf", &out->mrg_rxbuf, err) < 0 ||
		get_single_copy(obj, what, &out->single_copy, err) < 0)
		return -EINVAL;
	if (has_type) {
		out->type = PORT_TYPE_MAX;
		for (int t = 0; t < PORT_TYPE_MAX; t++)
			if (strcmp(type, port_type_names[t]) == 0)
				out->type = t;
		if (out->type == PORT_TYPE_MAX)
			return bad(err, what, "type", "must be vhost-user, ethdev, sink or reflector");
	}
	if (out->type == PORT_TYPE_MAX)
		return bad(err, what, "type", "is required");
	if (has_mode && parse_mode(mode, what, &out->client, err) < 0)
		return -EINVAL;
	if (has_state) {
		if (strcmp(state, "up") != 0 && strcmp(state, "down") != 0)
			return bad(err, what, "admin-state", "must be up or down");
		out->admin_up = strcmp(state, "up") == 0;
	}
	if (get_socket(obj, what, run_dir, out->socket, err) < 0)
		return -EINVAL;
	if (out->type == PORT_VHOST_USER && out->socket[0] == '\0')
		return bad(err, what, "socket", "is required for vhost-user ports");
	if (out->type != PORT_VHOST_USER)
		out->socket[0] = '\0';
	if (get_str(obj, what, "devargs", out->devargs, sizeof(out->devargs), false, err) < 0)
		return -EINVAL;
	if (out->type == PORT_ETHDEV) {
		size_t name_len = strcspn(out->devargs, ",");

		if (out->devargs[0] == '\0')
			return bad(err, what, "devargs",
				"is required for ethdev ports (e.g. \"net_tap0,iface=vh0\")");
		if (name_len == 0 || name_len >= 64 || strpbrk(out->devargs, " \t\n") != NULL)
			return bad(err, what, "devargs",
				"must start with a device name and hold no spaces");
	} else if (json_object_get(obj, "devargs") != NULL) {
		return bad(err, what, "devargs", "is only for ethdev ports");
	}
	rc = get_uint(obj, what, "queues", 1, DP_MAX_QUEUES, &n, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->queues = (uint16_t)n;
	rc = get_uint(obj, what, "mtu", 68, 9600, &n, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->mtu = (uint16_t)n;
	rc = get_uint(obj, what, "tag", 0, 4094, &n, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->tag = (uint16_t)n;
	trunks = json_object_get(obj, "trunks");
	if (trunks != NULL) {
		size_t i;
		json_t *t;

		if (!json_is_array(trunks) && !json_is_null(trunks))
			return bad(err, what, "trunks", "must be an array of VLAN ids");
		memset(out->trunks, 0, sizeof(out->trunks));
		out->has_trunks = json_is_array(trunks) && json_array_size(trunks) > 0;
		json_array_foreach(trunks, i, t) {
			json_int_t vid = json_integer_value(t);

			if (!json_is_integer(t) || vid < 0 || vid > 4094)
				return bad(err, what, "trunks", "must hold VLAN ids 0-4094");
			out->trunks[vid >> 6] |= 1ULL << (vid & 63);
		}
	}
	if (out->tag != 0 && out->has_trunks)
		return bad(err, what, "tag", "and \"trunks\" cannot both be set");
	if (get_affinity(obj, what, out->rxq_pin, err) < 0)
		return -EINVAL;
	if (json_object_get(obj, "mac") != NULL) {
		out->has_mac = mac[0] != '\0';
		if (out->has_mac && parse_mac(mac, out->mac) < 0)
			return bad(
				err, what, "mac", "must be a unicast MAC like 52:54:00:12:34:56");
	}
	if (out->bridge[0] != '\0' && check_name("bridge", out->bridge, err) < 0)
		return -EINVAL;
	return 0;
}

json_t *
config_dump_port(const struct port_conf *c)
{
	json_t *o = json_pack("{s:s, s:s}", "name", c->name, "type", port_type_names[c->type]);

	if (c->type == PORT_ETHDEV) {
		json_object_set_new(o, "devargs", json_string(c->devargs));
		json_object_set_new(o, "queues", json_integer(c->queues));
	}
	if (c->type == PORT_VHOST_USER) {
		json_object_set_new(o, "socket", json_string(c->socket));
		json_object_set_new(o, "mode", json_string(c->client ? "client" : "server"));
		json_object_set_new(o, "queues", json_integer(c->queues));
		json_object_set_new(o, "csum", json_boolean(c->csum));
		json_object_set_new(o, "mrg-rxbuf", json_boolean(c->mrg_rxbuf));
		json_object_set_new(o, "single-copy",
			c->single_copy == PORT_SC_AUTO
				? json_string("auto")
				: json_boolean(c->single_copy == PORT_SC_ON));
	}
	if (c->bridge[0] != '\0')
		json_object_set_new(o, "bridge", json_string(c->bridge));
	if (c->tag != 0)
		json_object_set_new(o, "tag", json_integer(c->tag));
	if (c->has_trunks) {
		json_t *a = json_array();

		for (int v = 0; v < 4096; v++)
			if ((c->trunks[v >> 6] >> (v & 63)) & 1)
				json_array_append_new(a, json_integer(v));
		json_object_set_new(o, "trunks", a);
	}
	if (c->has_mac) {
		char mac[18];

		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", c->mac[0], c->mac[1],
			c->mac[2], c->mac[3], c->mac[4], c->mac[5]);
		json_object_set_new(o, "mac", json_string(mac));
	}
	json_object_set_new(o, "mtu", json_integer(c->mtu));
	json_object_set_new(o, "admin-state", json_string(c->admin_up ? "up" : "down"));
	dump_affinity(o, c->rxq_pin);
	return o;
}

/* ---- bridges, cross-connects, pmd ---------------------------------------- */

int
config_parse_bridge(
	json_t *obj, const struct bridge_conf *base, struct bridge_conf *out, struct ctl_error *err)
{
	static const char *const keys[] = {"name", "mac-aging-s", "mac-table-size", NULL};
	char what[64] = "bridge";
	long long n;
	int rc;

	if (check_members(obj, what, keys, err) < 0)
		return -EINVAL;
	if (base != NULL) {
		*out = *base;
	} else {
		memset(out, 0, sizeof(*out));
		out->mac_aging_s = DEFAULT_MAC_AGING_S;
		out->mac_table_size = DEFAULT_MAC_TABLE_SIZE;
	}
	rc = get_str(obj, what, "name", out->name, sizeof(out->name), false, err);
	if (rc < 0)
		return rc;
	if (rc == 0 && base == NULL)
		return bad(err, what, "name", "is required");
	if (check_name("bridge", out->name, err) < 0)
		return -EINVAL;
	snprintf(what, sizeof(what), "bridge %s", out->name);
	rc = get_uint(obj, what, "mac-aging-s", 1, 1000000, &n, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->mac_aging_s = (uint32_t)n;
	rc = get_uint(obj, what, "mac-table-size", 64, 1 << 20, &n, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->mac_table_size = (uint32_t)n;
	return 0;
}

json_t *
config_dump_bridge(const struct bridge_conf *c)
{
	return json_pack("{s:s, s:I, s:I}", "name", c->name, "mac-aging-s",
		(json_int_t)c->mac_aging_s, "mac-table-size", (json_int_t)c->mac_table_size);
}

int
config_parse_xconnect(json_t *obj, struct xconnect_conf *out, struct ctl_error *err)
{
	static const char *const keys[] = {"name", "ports", NULL};
	json_t *ports;
	int rc;

	if (check_members(obj, "xconnect", keys, err) < 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	rc = get_str(obj, "xconnect", "name", out->name, sizeof(out->name), false, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return bad(err, "xconnect", "name", "is required");
	if (check_name("xconnect", out->name, err) < 0)
		return -EINVAL;
	ports = json_object_get(obj, "ports");
	if (!json_is_array(ports) || json_array_size(ports) != 2 ||
		!json_is_string(json_array_get(ports, 0)) ||
		!json_is_string(json_array_get(ports, 1)))
		return bad(err, "xconnect", "ports", "must be an array of two port names");
	for (int i = 0; i < 2; i++) {
		json_t *p = json_array_get(ports, i);

		/* check_name() refuses names too long for out->ports[i]. */
		if (strlen(json_string_value(p)) != json_string_length(p))
			return bad(err, "xconnect", "ports", "must not contain NUL");
		if (check_name("port", json_string_value(p), err) < 0)
			return -EINVAL;
		memcpy(out->ports[i], json_string_value(p), json_string_length(p) + 1);
	}
	return 0;
}

json_t *
config_dump_xconnect(const struct xconnect_conf *c)
{
	return json_pack("{s:s, s:[s,s]}", "name", c->name, "ports", c->ports[0], c->ports[1]);
}

static int
get_mode(json_t *obj, const char *what, int *out, struct ctl_error *err)
{
	char mode[16];
	int rc = get_str(obj, what, "mode", mode, sizeof(mode), false, err);

	if (rc <= 0)
		return rc;
	*out = pmd_mode_from_name(mode);
	if (*out < 0)
		return bad(err, what, "mode", "must be \"poll\", \"halt-poll\" or \"interrupt\"");
	return 1;
}

/* "threads": [{"cpu": N, "mode": ..., "halt-poll-ns": ...}], replacing the list. */
static int
parse_pmd_threads(json_t *arr, struct pmd_conf *out, struct ctl_error *err)
{
	static const char *const keys[] = {"cpu", "mode", "halt-poll-ns", NULL};
	size_t i;
	json_t *t;

	if (!json_is_array(arr) || json_array_size(arr) > DP_MAX_PMDS)
		return bad(err, "pmd", "threads", "must be an array of at most 32 objects");
	out->n_threads = 0;
	json_array_foreach(arr, i, t) {
		struct pmd_thread_conf *tc = &out->threads[out->n_threads];
		long long n;
		int mode = -1, rc;

		if (check_members(t, "pmd: threads[]", keys, err) < 0)
			return -EINVAL;
		rc = get_uint(t, "pmd: threads[]", "cpu", 0, CPU_SETSIZE - 1, &n, err);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return bad(err, "pmd: threads[]", "cpu", "is required");
		tc->cpu = (int)n;
		for (uint16_t k = 0; k < out->n_threads; k++)
			if (out->threads[k].cpu == tc->cpu)
				return bad(err, "pmd: threads[]", "cpu", "appears twice");
		if (get_mode(t, "pmd: threads[]", &mode, err) < 0)
			return -EINVAL;
		tc->mode = (int8_t)mode;
		tc->halt_poll_ns = -1;
		rc = get_uint(
			t, "pmd: threads[]", "halt-poll-ns", 0, PMD_HALT_POLL_NS_MAX, &n, err);
		if (rc < 0)
			return rc;
		if (rc > 0)
			tc->halt_poll_ns = n;
		out->n_threads++;
	}
	return 0;
}

int
config_parse_pmd(
	json_t *obj, const struct pmd_conf *base, struct pmd_conf *out, struct ctl_error *err)
{
	static const char *const keys[] = {"cpus", "mode", "max-sleep-us", "halt-poll-ns",
		"halt-poll-grow", "halt-poll-grow-start-ns", "halt-poll-shrink", "threads", "isolate",
		"auto-rebalance", "rebalance-interval-s", "rebalance-improvement-pct",
		"rebalance-load-threshold-pct", NULL};
	static const struct {
		const char *key;
		long long min, max;
		size_t off;
	} nums[] = {
		{"max-sleep-us", 0, 10000, offsetof(struct pmd_gov, max_sleep_us)},
		{"halt-poll-ns", 0, PMD_HALT_POLL_NS_MAX, offsetof(struct pmd_gov, halt_poll_ns)},
		{"halt-poll-grow", 1, 16, offsetof(struct pmd_gov, grow)},
		{"halt-poll-grow-start-ns", 1, PMD_HALT_POLL_NS_MAX,
			offsetof(struct pmd_gov, grow_start_ns)},
		{"halt-poll-shrink", 0, 16, offsetof(struct pmd_gov, shrink)},
	};
	char msg[200];
	long long n;
	int rc, mode;

	if (check_members(obj, "pmd", keys, err) < 0)
		return -EINVAL;
	if (base != NULL) {
		*out = *base;
	} else {
		memset(out, 0, sizeof(*out));
		snprintf(out->cpus_text, sizeof(out->cpus_text), "auto");
		out->gov.mode = PMD_MODE_HALT_POLL;
		out->gov.halt_poll_ns = PMD_HALT_POLL_NS_DEFAULT;
		out->gov.grow = PMD_GROW_DEFAULT;
		out->gov.grow_start_ns = PMD_GROW_START_NS_DEFAULT;
		out->gov.shrink = PMD_SHRINK_DEFAULT;
		/* OVS: pmd-rxq-isolate=true, pmd-auto-lb-*: 1 min, 25 %, 95 %. */
		out->isolate = true;
		out->rebalance_interval_s = 60;
		out->rebalance_improvement = 25;
		out->rebalance_load_threshold = 95;
	}
	if (get_bool(obj, "pmd", "isolate", &out->isolate, err) < 0 ||
		get_bool(obj, "pmd", "auto-rebalance", &out->auto_rebalance, err) < 0)
		return -EINVAL;
	{
		static const struct {
			const char *key;
			long long min, max;
			size_t off;
		} sch[] = {
			{"rebalance-interval-s", 1, 86400,
				offsetof(struct pmd_conf, rebalance_interval_s)},
			{"rebalance-improvement-pct", 0, 100,
				offsetof(struct pmd_conf, rebalance_improvement)},
			{"rebalance-load-threshold-pct", 0, 100,
				offsetof(struct pmd_conf, rebalance_load_threshold)},
		};

		for (size_t i = 0; i < RTE_DIM(sch); i++) {
			rc = get_uint(obj, "pmd", sch[i].key, sch[i].min, sch[i].max, &n, err);
			if (rc < 0)
				return rc;
			if (rc > 0)
				*(uint32_t *)((char *)out + sch[i].off) = (uint32_t)n;
		}
	}
	if (get_str(obj, "pmd", "cpus", out->cpus_text, sizeof(out->cpus_text), false, err) < 0)
		return -EINVAL;
	rc = get_mode(obj, "pmd", &mode, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->gov.mode = (uint8_t)mode;
	for (size_t i = 0; i < RTE_DIM(nums); i++) {
		rc = get_uint(obj, "pmd", nums[i].key, nums[i].min, nums[i].max, &n, err);
		if (rc < 0)
			return rc;
		if (rc > 0)
			*(uint32_t *)((char *)&out->gov + nums[i].off) = (uint32_t)n;
	}
	if (json_object_get(obj, "threads") != NULL &&
		parse_pmd_threads(json_object_get(obj, "threads"), out, err) < 0)
		return -EINVAL;
	if (strcmp(out->cpus_text, "auto") == 0) {
		int cpu = cpuset_last_allowed();

		CPU_ZERO(&out->cpus);
		CPU_SET(cpu < 0 ? 0 : cpu, &out->cpus);
		return 0;
	}
	if (cpuset_parse(out->cpus_text, &out->cpus, msg, sizeof(msg)) < 0 ||
		cpuset_check_usable(&out->cpus, msg, sizeof(msg)) < 0) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "pmd: \"cpus\": %s", msg);
		return -EINVAL;
	}
	if (CPU_COUNT(&out->cpus) > DP_MAX_PMDS) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
			"pmd: \"cpus\": at most %d PMD threads", DP_MAX_PMDS);
		return -EINVAL;
	}
	return 0;
}

json_t *
config_dump_pmd(const struct pmd_conf *c)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "cpus", c->cpus_text, "mode",
		pmd_mode_names[c->gov.mode], "max-sleep-us", (json_int_t)c->gov.max_sleep_us,
		"halt-poll-ns", (json_int_t)c->gov.halt_poll_ns, "halt-poll-grow",
		(json_int_t)c->gov.grow, "halt-poll-grow-start-ns",
		(json_int_t)c->gov.grow_start_ns, "halt-poll-shrink", (json_int_t)c->gov.shrink);

	if (c->n_threads > 0) {
		json_t *a = json_array();

		for (uint16_t i = 0; i < c->n_threads; i++) {
			const struct pmd_thread_conf *t = &c->threads[i];
			json_t *e = json_pack("{s:i}", "cpu", t->cpu);

			if (t->mode >= 0)
				json_object_set_new(
					e, "mode", json_string(pmd_mode_names[t->mode]));
			if (t->halt_poll_ns >= 0)
				json_object_set_new(e, "halt-poll-ns",
					json_integer((json_int_t)t->halt_poll_ns));
			json_array_append_new(a, e);
		}
		json_object_set_new(o, "threads", a);
	}
	json_object_set_new(o, "isolate", json_boolean(c->isolate));
	json_object_set_new(o, "auto-rebalance", json_boolean(c->auto_rebalance));
	json_object_set_new(o, "rebalance-interval-s", json_integer(c->rebalance_interval_s));
	json_object_set_new(
		o, "rebalance-improvement-pct", json_integer(c->rebalance_improvement));
	json_object_set_new(
		o, "rebalance-load-threshold-pct", json_integer(c->rebalance_load_threshold));
	return o;
}

/* ---- scsi controllers and LUNs ------------------------------------------ */

int
config_parse_scsi(json_t *obj, const char *run_dir, struct scsi_conf *out, struct ctl_error *err)
{
	static const char *const keys[] = {
		"name", "socket", "mode", "queues", "max-sectors", "cmd-per-lun", "rxq-affinity",
		NULL};
	char what[64] = "scsi", mode[16];
	long long n;
	int rc;

	if (check_members(obj, what, keys, err) < 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->queues = 1;
	out->max_sectors = DEFAULT_SCSI_MAX_SECTORS;
	out->cmd_per_lun = DEFAULT_SCSI_CMD_PER_LUN;
	rc = get_str(obj, what, "name", out->name, sizeof(out->name), false, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return bad(err, what, "name", "is required");
	if (check_name("scsi controller", out->name, err) < 0)
		return -EINVAL;
	snprintf(what, sizeof(what), "scsi %s", out->name);
	rc = get_str(obj, what, "mode", mode, sizeof(mode), false, err);
	if (rc < 0 || (rc > 0 && parse_mode(mode, what, &out->client, err) < 0))
		return -EINVAL;
	rc = get_socket(obj, what, run_dir, out->socket, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return bad(err, what, "socket", "is required");
	rc = get_uint(obj, what, "queues", 1, DP_MAX_QUEUES, &n, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->queues = (uint16_t)n;
	rc = get_uint(obj, what, "max-sectors", 1, UINT32_MAX, &n, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->max_sectors = (uint32_t)n;
	rc = get_uint(obj, what, "cmd-per-lun", 1, 65535, &n, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->cmd_per_lun = (uint32_t)n;
	if (get_affinity(obj, what, out->rxq_pin, err) < 0)
		return -EINVAL;
	return 0;
}

json_t *
config_dump_scsi(const struct scsi_conf *c)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I}", "name", c->name, "socket",
		c->socket, "mode", c->client ? "client" : "server", "queues", c->queues,
		"max-sectors", (json_int_t)c->max_sectors, "cmd-per-lun",
		(json_int_t)c->cmd_per_lun);

	dump_affinity(o, c->rxq_pin);
	return o;
}

static const char *const lun_backend_names[] = {
	[LUN_BACKEND_NULL] = "null",
	[LUN_BACKEND_RAM] = "ram",
	[LUN_BACKEND_FILE] = "file",
};

static const char *const lun_cache_names[] = {
	[LUN_CACHE_NONE] = "none",
	[LUN_CACHE_WRITEBACK] = "writeback",
	[LUN_CACHE_WRITETHROUGH] = "writethrough",
	[LUN_CACHE_DIRECTSYNC] = "directsync",
};

#define N_BACKENDS (sizeof(lun_backend_names) / sizeof(lun_backend_names[0]))
#define N_CACHE_MODES (sizeof(lun_cache_names) / sizeof(lun_cache_names[0]))

const char *
config_lun_backend_name(enum lun_backend_type t)
{
	return (unsigned int)t < N_BACKENDS ? lun_backend_names[t] : "?";
}

const char *
config_lun_cache_name(enum lun_cache_mode m)
{
	return (unsigned int)m < N_CACHE_MODES ? lun_cache_names[m] : "?";
}

/* Index of @s in @names, or -1. */
static int
name_index(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/*
 * "size": a number of bytes, or a string of digits with an optional binary
 * suffix K, M, G or T ("64M" is 64 MiB). Returns 1 with @out set, 0 when
 * absent.
 */
static int
get_size(json_t *obj, const char *what, uint64_t *out, struct ctl_error *err)
{
	static const char units[] = "KMGT";
	json_t *v = json_object_get(obj, "size");
	const char *s, *u;
	uint64_t n = 0;

	if (v == NULL)
		return 0;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 1)
			return bad(err, what, "size", "must be at least 1 byte");
		*out = (uint64_t)json_integer_value(v);
		return 1;
	}
	if (!json_is_string(v) || json_string_value(v)[0] == '\0')
		goto syntax;
	for (s = json_string_value(v); *s >= '0' && *s <= '9'; s++) {
		if (n > (UINT64_MAX - 9) / 10)
			return bad(err, what, "size", "is too large");
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (s == json_string_value(v))
		goto syntax;
	if (*s != '\0') {
		u = strchr(units, toupper((unsigned char)*s));
		if (u == NULL || s[1] != '\0')
			goto syntax;
		for (int shift = 10 * (int)(u - units + 1); shift > 0; shift -= 10) {
			if (n > (UINT64_MAX >> 10))
				return bad(err, what, "size", "is too large");
			n <<= 10;
		}
	}
	if (n == 0)
		return bad(err, what, "size", "must be at least 1 byte");
	if (n > INT64_MAX)
		return bad(err, what, "size", "is too large");
	*out = n;
	return 1;
syntax:
	return bad(err, what, "size",
		"must be a number of bytes or a string like \"512K\", \"64M\", \"1G\", \"2T\"");
}

/* An INQUIRY string: at most @len - 1 printable ASCII characters. */
static int
get_inquiry_str(json_t *obj, const char *what, const char *key, char *out, size_t len,
	struct ctl_error *err)
{
	json_t *v = json_object_get(obj, key);
	char why[96];
	const char *s;

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return bad(err, what, key, "must be a string");
	s = json_string_value(v);
	snprintf(why, sizeof(why), "must be at most %zu printable ASCII characters", len - 1);
	if (json_string_length(v) >= len || strlen(s) != json_string_length(v))
		return bad(err, what, key, why);
	for (const char *p = s; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return bad(err, what, key, why);
	memcpy(out, s, json_string_length(v) + 1);
	return 1;
}

/* One member that must be one of @names; stores its index. */
static int
get_enum(json_t *obj, const char *what, const char *key, const char *const *names, size_t n,
	const char *why, int *out, struct ctl_error *err)
{
	char buf[32];
	int rc = get_str(obj, what, key, buf, sizeof(buf), false, err), i;

	if (rc < 0 && json_is_string(json_object_get(obj, key)))
		return bad(err, what, key, why); /* too long to be valid */
	if (rc <= 0)
		return rc;
	i = name_index(buf, names, n);
	if (i < 0)
		return bad(err, what, key, why);
	*out = i;
	return 1;
}

int
config_parse_lun(json_t *obj, struct scsi_lun_conf *out, struct ctl_error *err)
{
	static const char *const keys[] = {"name", "controller", "target", "lun", "backend", "path",
		"size", "block-size", "cache", "readonly", "vendor", "product", "revision",
		"serial", NULL};
	struct lun_conf *l = &out->lun;
	char what[64] = "lun";
	int rc, backend = -1, cache;
	long long n;

	if (check_members(obj, what, keys, err) < 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	lun_conf_init(l);
	rc = get_str(obj, what, "name", l->name, sizeof(l->name), false, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return bad(err, what, "name", "is required");
	if (check_name("lun", l->name, err) < 0)
		return -EINVAL;
	snprintf(what, sizeof(what), "lun %s", l->name);
	rc = get_str(obj, what, "controller", out->controller, sizeof(out->controller), false, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return bad(err, what, "controller", "is required (the scsi controller's name)");
	if (check_name("scsi controller", out->controller, err) < 0)
		return -EINVAL;
	rc = get_uint(obj, what, "target", 0, DP_SCSI_MAX_TARGET, &n, err);
	if (rc < 0)
		return rc;
	out->target = rc > 0 ? (uint16_t)n : 0;
	rc = get_uint(obj, what, "lun", 0, DP_SCSI_MAX_LUN, &n, err);
	if (rc < 0)
		return rc;
	out->lun_id = rc > 0 ? (uint16_t)n : 0;
	rc = get_enum(obj, what, "backend", lun_backend_names, N_BACKENDS,
		"must be file, ram or null", &backend, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return bad(err, what, "backend", "is required (file, ram or null)");
	l->backend = (enum lun_backend_type)backend;
	rc = get_str(obj, what, "path", l->path, sizeof(l->path), false, err);
	if (rc < 0)
		return rc;
	if (rc > 0 && l->backend != LUN_BACKEND_FILE)
		return bad(
			err, what, "path", "is only for file LUNs (remove it or use backend file)");
	if (rc == 0 && l->backend == LUN_BACKEND_FILE)
		return bad(err, what, "path", "is required for file LUNs");
	if (rc > 0 && l->path[0] != '/')
		return bad(err, what, "path", "must be an absolute path");
	rc = get_size(obj, what, &l->size, err);
	if (rc < 0)
		return rc;
	if (rc == 0 && l->backend != LUN_BACKEND_FILE)
		return bad(err, what, "size", "is required for ram and null LUNs (e.g. \"1G\")");
	rc = get_uint(obj, what, "block-size", 512, 4096, &n, err);
	if (rc < 0)
		return rc;
	if (rc > 0 && n != 512 && n != 4096)
		return bad(err, what, "block-size", "must be 512 or 4096");
	if (rc > 0)
		l->block_size = (uint32_t)n;
	if (l->block_size == 0)
		l->block_size = 512;
	if (l->size % l->block_size != 0) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
			"%s: \"size\" must be a multiple of \"block-size\" (%u)", what,
			l->block_size);
		return -EINVAL;
	}
	rc = get_enum(obj, what, "cache", lun_cache_names, N_CACHE_MODES,
		"must be none, writeback, writethrough or directsync", &cache, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		l->cache = (enum lun_cache_mode)cache;
	if (get_bool(obj, what, "readonly", &l->readonly, err) < 0 ||
		get_inquiry_str(obj, what, "vendor", l->vendor, sizeof(l->vendor), err) < 0 ||
		get_inquiry_str(obj, what, "product", l->product, sizeof(l->product), err) < 0 ||
		get_inquiry_str(obj, what, "revision", l->revision, sizeof(l->revision), err) < 0 ||
		get_inquiry_str(obj, what, "serial", l->serial, sizeof(l->serial), err) < 0)
		return -EINVAL;
	return 0;
}

json_t *
config_dump_lun(const struct scsi_lun_conf *c)
{
	const struct lun_conf *l = &c->lun;
	json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:s}", "name", l->name, "controller",
		c->controller, "target", c->target, "lun", c->lun_id, "backend",
		config_lun_backend_name(l->backend));

	if (l->backend == LUN_BACKEND_FILE)
		json_object_set_new(o, "path", json_string(l->path));
	if (l->size != 0)
		json_object_set_new(o, "size", json_integer((json_int_t)l->size));
	json_object_set_new(o, "block-size", json_integer(l->block_size));
	json_object_set_new(o, "cache", json_string(config_lun_cache_name(l->cache)));
	json_object_set_new(o, "readonly", json_boolean(l->readonly));
	/* Always: "" is not the default of these. */
	json_object_set_new(o, "vendor", json_string(l->vendor));
	json_object_set_new(o, "product", json_string(l->product));
	json_object_set_new(o, "revision", json_string(l->revision));
	/* "" (the default) is a serial derived from the name. */
	if (l->serial[0] != '\0')
		json_object_set_new(o, "serial", json_string(l->serial));
	return o;
}

/* ---- whole documents ---------------------------------------------------- */

static int
array_member(json_t *doc, const char *key, json_t **out, struct ctl_error *err)
{
	*out = json_object_get(doc, key);
	if (*out != NULL && !json_is_array(*out))
		return bad(err, "config", key, "must be an array");
	return 0;
}

/* Parse (and with @apply, add) every object of the array @list. */
static int
apply_scsi(json_t *list, const struct daemon_conf *d, bool apply, struct ctl_error *err)
{
	struct scsi_conf c;
	size_t i;
	json_t *o;

	json_array_foreach(list, i, o) {
		if (config_parse_scsi(o, d->run_dir, &c, err) < 0)
			return -EINVAL;
		if (apply) {
			int rc = dp_scsi_add(&c, err);

			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int
apply_luns(json_t *list, bool apply, struct ctl_error *err)
{
	struct scsi_lun_conf c;
	size_t i;
	json_t *o;

	json_array_foreach(list, i, o) {
		if (config_parse_lun(o, &c, err) < 0)
			return -EINVAL;
		if (apply) {
			int rc = dp_lun_add(&c, err);

			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int
config_apply(json_t *doc, const struct daemon_conf *d, bool dry_run, struct ctl_error *err)
{
	json_t *bridges, *ports, *xcs, *scsi, *luns, *pmd = json_object_get(doc, "pmd"),
						     *empty = NULL, *o;
	struct pmd_conf pc;
	size_t i;
	int rc;

	if (array_member(doc, "bridges", &bridges, err) < 0 ||
		array_member(doc, "ports", &ports, err) < 0 ||
		array_member(doc, "xconnects", &xcs, err) < 0 ||
		array_member(doc, "scsi", &scsi, err) < 0 ||
		array_member(doc, "luns", &luns, err) < 0)
		return -EINVAL;
	/* Validate everything first so that a bad file changes nothing. */
	if (pmd == NULL)
		pmd = empty = json_object();
	rc = config_parse_pmd(pmd, NULL, &pc, err);
	json_decref(empty);
	if (rc < 0)
		return rc;
	json_array_foreach(bridges, i, o) {
		struct bridge_conf bc;

		rc = config_parse_bridge(o, NULL, &bc, err);
		if (rc < 0)
			return rc;
	}
	json_array_foreach(ports, i, o) {
		struct port_conf c;

		rc = config_parse_port(o, NULL, d->run_dir, &c, err);
		if (rc < 0)
			return rc;
	}
	json_array_foreach(xcs, i, o) {
		struct xconnect_conf xc;

		rc = config_parse_xconnect(o, &xc, err);
		if (rc < 0)
			return rc;
	}
	if (apply_scsi(scsi, d, false, err) < 0 || apply_luns(luns, false, err) < 0)
		return -EINVAL;
	if (ovs_config(json_object_get(doc, "ovs"), false, err) < 0)
		return -EINVAL;
	if (dry_run)
		return 0;
	rc = dp_pmd_set(&pc, err);
	if (rc < 0)
		return rc;
	json_array_foreach(bridges, i, o) {
		struct bridge_conf bc;

		config_parse_bridge(o, NULL, &bc, err);
		rc = dp_bridge_add(&bc, err);
		if (rc < 0)
			return rc;
	}
	json_array_foreach(ports, i, o) {
		struct port_conf c;

		config_parse_port(o, NULL, d->run_dir, &c, err);
		rc = dp_port_add(&c, err);
		if (rc < 0)
			return rc;
	}
	json_array_foreach(xcs, i, o) {
		struct xconnect_conf xc;

		config_parse_xconnect(o, &xc, err);
		rc = dp_xconnect_add(&xc, err);
		if (rc < 0)
			return rc;
	}
	/* Controllers before the LUNs that sit on them. */
	rc = apply_scsi(scsi, d, true, err);
	if (rc < 0)
		return rc;
	rc = apply_luns(luns, true, err);
	if (rc < 0)
		return rc;
	/* OVS attachments last: they need their ports; OVSDB is reached in the background. */
	return ovs_config(json_object_get(doc, "ovs"), true, err);
}

json_t *
config_dump_live(const struct daemon_conf *d)
{
	json_t *doc = json_object(), *v, *e, *a;

	v = json_pack("{s:s, s:s, s:s, s:s, s:b}", "run-dir", d->run_dir, "control-socket",
		d->ctl_socket, "control-socket-group", d->ctl_group, "log-level",
		vlog_level_name(vlog_level), "mlockall", d->mlockall);
	e = json_pack("{s:s, s:b, s:I}", "file-prefix", d->file_prefix, "no-huge", d->no_huge,
		"memory-mb", (json_int_t)d->memory_mb);
	a = json_array();
	for (int i = 0; i < d->n_extra_args; i++)
		json_array_append_new(a, json_string(d->extra_args[i]));
	json_object_set_new(e, "extra-args", a);
	json_object_set_new(doc, "vhostd", v);
	json_object_set_new(doc, "eal", e);
	dp_lock();
	json_object_set_new(doc, "pmd", config_dump_pmd(&dp.pmd_conf));
	a = json_array();
	for (int i = 0; i < DP_MAX_BRIDGES; i++)
		if (dp.bridges[i] != NULL)
			json_array_append_new(a, config_dump_bridge(&dp.bridges[i]->conf));
	json_object_set_new(doc, "bridges", a);
	a = json_array();
	for (int i = 0; i < DP_MAX_PORTS; i++)
		if (dp.ports[i] != NULL && !dp.ports[i]->deleting)
			json_array_append_new(a, config_dump_port(&dp.ports[i]->conf));
	json_object_set_new(doc, "ports", a);
	a = json_array();
	for (int i = 0; i < DP_MAX_XCONNECTS; i++)
		if (dp.xconnects[i] != NULL)
			json_array_append_new(a, config_dump_xconnect(&dp.xconnects[i]->conf));
	json_object_set_new(doc, "xconnects", a);
	a = json_array();
	for (int i = 0; i < DP_MAX_SCSI; i++)
		if (dp.scsi[i] != NULL && !dp.scsi[i]->deleting)
			json_array_append_new(a, config_dump_scsi(&dp.scsi[i]->conf));
	json_object_set_new(doc, "scsi", a);
	a = json_array();
	for (int i = 0; i < DP_MAX_LUNS; i++)
		if (dp.luns[i] != NULL)
			json_array_append_new(a, config_dump_lun(&dp.luns[i]->conf));
	json_object_set_new(doc, "luns", a);
	a = ovs_config_dump();
	if (a != NULL)
		json_object_set_new(doc, "ovs", a);
	dp_unlock();
	return doc;
}

int
config_write_file(json_t *doc, const char *path, struct ctl_error *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	char *text;
	size_t len;
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp)) {
		ctl_error_set(err, 0, ENAMETOOLONG, "config: path %s is too long", path);
		return -ENAMETOOLONG;
	}
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text == NULL) {
		ctl_error_set(err, 0, ENOMEM, "config: out of memory");
		return -ENOMEM;
	}
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = -errno;
		ctl_error_set(err, 0, errno, "config: cannot create %s: %s", tmp, strerror(errno));
		free(text);
		return rc;
	}
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
		rc = -(errno ? errno : EIO);
		ctl_error_set(err, 0, -rc, "config: cannot write %s: %s", tmp, strerror(-rc));
	}
	close(fd);
	free(text);
	if (rc == 0 && rename(tmp, path) != 0) {
		rc = -errno;
		ctl_error_set(err, 0, errno, "config: cannot rename %s to %s: %s", tmp, path,
			strerror(errno));
	}
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	/* Make the rename itself durable. */
	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}
