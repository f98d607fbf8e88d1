/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * vhostctl: command-line front end of the vhostd control API (ctl/API.md).
 * Each verb maps to one JSON-RPC method; the human output is aligned
 * columns in the spirit of ovs-appctl and virsh, --json prints the result
 * as the daemon sent it, for scripts.
 */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_client.h"
#include "jsonrpc.h"
#include "vhostctl_libvirt.h"
#include "vhostctl_ovs.h"
#include "vhostd_version.h"

#define EXIT_USAGE 2
#define DEFAULT_TIMEOUT_S 30

struct opts {
	const char *socket;
	bool json;
	int timeout_ms;
};

static const char usage_text[] =
	"Usage: vhostctl [OPTIONS] COMMAND [ARG...]\n"
	"Control a running vhostd through its JSON-RPC socket.\n"
	"\n"
	"Options:\n"
	"  -s, --socket PATH    control socket (default: $VHOSTCTL_SOCKET, else\n"
	"                       " CTL_DEFAULT_SOCKET ")\n"
	"  -j, --json           print the raw JSON result instead of a table\n"
	"  -t, --timeout SECS   give up waiting for vhostd after SECS (default 30,\n"
	"                       0 waits forever)\n"
	"  -h, --help           print this help\n"
	"  -V, --version        print the version of vhostctl\n"
	"\n"
	"Commands:\n"
	"  version                          versions of vhostd and DPDK\n"
	"  port add NAME type=vhost-user socket=PATH [mode=server|client] [queues=N]\n"
	"           [bridge=BR] [tag=N] [trunks=N,N...] [mac=MAC] [mtu=N] [xconnect=X]\n"
	"                                   create a port\n"
	"  port set NAME KEY=VALUE...       change members of a port\n"
	"  port del NAME                    delete a port\n"
	"  port list                        list the ports\n"
	"  port show NAME                   a port with its status and counters\n"
	"  bridge add NAME [mac-aging-s=N]  create a bridge\n"
	"  bridge set NAME KEY=VALUE...     change members of a bridge\n"
	"  bridge del NAME                  delete a bridge (it must have no ports)\n"
	"  bridge list                      list the bridges\n"
	"  bridge show NAME                 a bridge and its MAC table\n"
	"  bridge flush NAME                forget the learned MAC addresses\n"
	"  xconnect add NAME PORT_A PORT_B  cross-connect two ports\n"
	"  xconnect del NAME                delete a cross-connect\n"
	"  xconnect list                    list the cross-connects\n"
	"  scsi add NAME --socket PATH [--client] [--queues N] [--max-sectors N]\n"
	"           [--cmd-per-lun N]       create a vhost-user-scsi controller\n"
	"  scsi del NAME                    delete a controller and its LUNs\n"
	"  scsi list                        list the scsi controllers\n"
	"  scsi show NAME                   a controller, its queues, counters and LUNs\n"
	"  lun add NAME --controller C --backend file|ram|null [--target T] [--lun L]\n"
	"           [--path P] [--size S] [--block-size 512|4096] [--cache MODE]\n"
	"           [--readonly] [--vendor V] [--product P] [--revision R] [--serial S]\n"
	"                                   create a LUN (S: bytes or 512K, 64M, 1G, 2T;\n"
	"                                   MODE: none, writeback, writethrough,\n"
	"                                   directsync)\n"
	"  lun del NAME                     delete a LUN (hot-unplugged from the guest)\n"
	"  lun list                         list the LUNs\n"
	"  lun show NAME                    a LUN, its I/O counters and latencies\n"
	"  pmd show                         PMD threads, their rx queues and load\n"
	"  pmd set [cpus=LIST] [mode=poll|halt-poll|interrupt] [halt-poll-ns=N] [max-sleep-us=N]\n"
	"  pmd set cpu=N mode=MODE [halt-poll-ns=N]   (one thread only)\n"
	"  pmd set ... [--live] [--config]  --config: also save the config file\n"
	"  pmd rebalance [--dry-run]        assign rx queues to PMDs by measured load\n"
	"                                   change the PMD CPUs (e.g. cpus=1-3,^2)\n"
	"  stats [PORT] [--watch [SECS]]    port counters; --watch redraws the\n"
	"                                   rates every SECS (default 1)\n"
	"  stats clear [PORT] [--lun LUN]   reset the counters (all ports and LUNs\n"
	"                                   when none is named)\n"
	"  config show                      print the running configuration\n"
	"  save-config [PATH]               write the running configuration to\n"
	"                                   PATH (default: the file vhostd loaded)\n"
	"  call METHOD [JSON-PARAMS]        call any method, print its JSON result\n"
	VHOSTCTL_LIBVIRT_USAGE
	VHOSTCTL_OVS_USAGE
	"  help                             print this help\n"
	"\n"
	"KEY=VALUE arguments become members of the request: integers are sent as\n"
	"numbers, true/false as booleans, an empty value as null; trunks=1,2 and\n"
	"ports=a,b are lists. add and set also take --json-params '{...}'.\n"
	"Exit status: 0 on success, 1 if the command failed, 2 on usage errors.\n";

static void errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int need_args(const char *usage, int argc, int min, int max);

static void
errmsg(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("vhostctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vhostctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'vhostctl --help' for more information.\n", stderr);
	return EXIT_USAGE;
}

/* Call method; params is stolen. Prints the error and returns 1 on
 * failure, so that verbs can just "return rc". */
static int
rpc(const struct opts *o, const char *method, json_t *params, json_t **result)
{
	struct ctl_error err;
	const char *hint = "";
	int rc;

	rc = ctl_client_call(o->socket, method, params, o->timeout_ms, result, &err);
	json_decref(params);
	if (rc == 0)
		return 0;
	if (rc == -ENOENT || rc == -ECONNREFUSED)
		hint = " (is vhostd running?)";
	else if (rc == -EACCES)
		hint = " (the socket is for root and the vhostd group)";
	errmsg("%s%s", err.message, hint);
	return 1;
}

static void
print_json(const json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}

/* ---- values and tables ------------------------------------------------ */

static json_int_t
jint(const json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (json_int_t)json_real_value(v);
	return 0;
}

static json_int_t
jsum(const json_t *obj)
{
	json_int_t sum = 0;
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
		sum += jint(v);
	return sum;
}

/* Human rendering of a value, malloc'ed. */
static char *
vstr(const json_t *v)
{
	char *s = NULL, *item, *p;
	size_t i, len = 0;
	json_t *el;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return strdup(json_string_value(v));
	case JSON_INTEGER:
		if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
			s = NULL;
		return s;
	case JSON_REAL:
		if (asprintf(&s, "%.1f", json_real_value(v)) < 0)
			s = NULL;
		return s;
	case JSON_TRUE:
		return strdup("true");
	case JSON_FALSE:
		return strdup("false");
	case JSON_ARRAY:
		if (json_array_size(v) == 0)
			return strdup("-");
		/* Lists of names or numbers read best comma-separated. */
		json_array_foreach((json_t *)v, i, el) {
			if (json_is_object(el) || json_is_array(el))
				return json_dumps(v, JSON_COMPACT);
			item = vstr(el);
			if (item == NULL)
				continue;
			p = realloc(s, len + strlen(item) + 3);
			if (p != NULL) {
				s = p;
				len += (size_t)sprintf(s + len, "%s%s", len ? ", " : "", item);
			}
			free(item);
		}
		return s ? s : strdup("-");
	case JSON_OBJECT:
		return json_dumps(v, JSON_COMPACT);
	default:
		return strdup("-");
	}
}

struct table {
	size_t ncols;
	const char *const *hdr;
	const char *align; /* one 'l' or 'r' per column */
	char **cells;
	size_t ncells;
	size_t cap;
};

static void
table_add(struct table *t, char *cell)
{
	char **p;

	if (t->ncells == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		p = realloc(t->cells, t->cap * sizeof(*p));
		if (p == NULL) {
			errmsg("out of memory");
			exit(1);
		}
		t->cells = p;
	}
	t->cells[t->ncells++] = cell ? cell : strdup("?");
}

static void
table_addv(struct table *t, const json_t *v)
{
	table_add(t, v ? vstr(v) : strdup("-"));
}

static void table_addf(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
table_addf(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	table_add(t, s);
}

/* Terminal columns taken by a UTF-8 string (one per code point). */
static size_t
width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void
print_cell(const char *s, size_t w, char align, bool last)
{
	size_t pad = w - width(s);

	if (align == 'r')
		printf("%*s%s", (int)pad, "", s);
	else if (last)
		fputs(s, stdout); /* no trailing blanks */
	else
		printf("%s%*s", s, (int)pad, "");
}

static void
table_print(struct table *t, const char *indent)
{
	size_t *w = calloc(t->ncols, sizeof(*w));
	size_t c, i;

	if (w == NULL)
		return;
	for (c = 0; c < t->ncols; c++)
		w[c] = width(t->hdr[c]);
	for (i = 0; i < t->ncells; i++)
		if (width(t->cells[i]) > w[i % t->ncols])
			w[i % t->ncols] = width(t->cells[i]);
	fputs(indent, stdout);
	for (c = 0; c < t->ncols; c++) {
		print_cell(t->hdr[c], w[c], t->align[c], c + 1 == t->ncols);
		fputs(c + 1 == t->ncols ? "\n" : "  ", stdout);
	}
	for (i = 0; i < t->ncells; i++) {
		c = i % t->ncols;
		if (c == 0)
			fputs(indent, stdout);
		print_cell(t->cells[i], w[c], t->align[c], c + 1 == t->ncols);
		fputs(c + 1 == t->ncols ? "\n" : "  ", stdout);
	}
	free(w);
}

static void
table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
}

static bool
in_list(const char *s, const char *const *list)
{
	for (; list && *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* "key: value" lines with aligned values; nested objects are indented. */
static void
print_members(const json_t *obj, int indent, const char *const *skip)
{
	size_t kw = 0;
	const char *key;
	json_t *v, *el;
	size_t i;
	char *s;

	json_object_foreach((json_t *)obj, key, v) {
		if (!in_list(key, skip) && width(key) > kw)
			kw = width(key);
	}
	json_object_foreach((json_t *)obj, key, v) {
		if (in_list(key, skip))
			continue;
		if (json_is_object(v) && json_object_size(v) > 0) {
			printf("%*s%s:\n", indent, "", key);
			print_members(v, indent + 2, NULL);
			continue;
		}
		if (json_is_array(v) && json_is_object(json_array_get(v, 0))) {
			printf("%*s%s:\n", indent, "", key);
			json_array_foreach(v, i, el) {
				s = json_dumps(el, JSON_COMPACT);
				printf("%*s%s\n", indent + 2, "", s ? s : "?");
				free(s);
			}
			continue;
		}
		s = vstr(v);
		printf("%*s%s:%*s %s\n", indent, "", key, (int)(kw - width(key)), "", s ? s : "?");
		free(s);
	}
}

/* ---- KEY=VALUE arguments ---------------------------------------------- */

/* Members that are strings even when they look like numbers ("cpus=3",
 * a bridge called "100"). */
static const char *const string_keys[] = {"name", "type", "socket", "mode", "bridge", "mac",
	"xconnect", "cpus", "path", "port", NULL};
static const char *const int_list_keys[] = {"trunks", NULL};
static const char *const string_list_keys[] = {"ports", NULL};

static json_t *
parse_int(const char *s)
{
	const char *p = s;
	long long v;
	char *end;

	if (*p == '-')
		p++;
	if (*p == '\0')
		return NULL;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return NULL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return NULL;
	return json_integer(v);
}

static json_t *
parse_list(const char *key, const char *value, bool ints)
{
	json_t *list = json_array(), *item;
	char *copy = strdup(value), *tok, *save = NULL;

	if (list == NULL || copy == NULL)
		goto fail;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		item = ints ? parse_int(tok) : json_string(tok);
		if (item == NULL) {
			usage_error("%s: '%s' is not %s", key, tok, ints ? "an integer" : "valid");
			goto fail;
		}
		json_array_append_new(list, item);
	}
	free(copy);
	return list;
fail:
	free(copy);
	json_decref(list);
	return NULL;
}

static json_t *
parse_value(const char *key, const char *value)
{
	json_t *v;

	if (in_list(key, int_list_keys))
		return parse_list(key, value, true);
	if (in_list(key, string_list_keys))
		return parse_list(key, value, false);
	if (value[0] == '\0')
		return json_null();
	if (in_list(key, string_keys))
		v = json_string(value);
	else if (strcmp(value, "true") == 0)
		v = json_true();
	else if (strcmp(value, "false") == 0)
		v = json_false();
	else if ((v = parse_int(value)) == NULL)
		v = json_string(value);
	if (v == NULL)
		usage_error("%s: value is not valid UTF-8", key);
	return v;
}

/*
 * Build the params of add/set/pmd.set from KEY=VALUE words and an optional
 * --json-params object; KEY=VALUE wins over --json-params. Returns 0 or
 * EXIT_USAGE (message printed).
 */
static int
parse_kv(int argc, char **argv, json_t **out)
{
	json_t *params = json_object(), *base = NULL, *v;
	json_error_t jerr;
	char *eq, *key;
	int i;

	*out = NULL;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json-params") == 0) {
			if (i + 1 == argc)
				goto usage_missing;
			json_decref(base);
			base = json_loads(argv[++i], 0, &jerr);
			if (!json_is_object(base)) {
				usage_error("--json-params: %s",
					base ? "not a JSON object" : jerr.text);
				goto fail;
			}
			continue;
		}
		eq = strchr(argv[i], '=');
		if (eq == NULL || eq == argv[i]) {
			usage_error("expected KEY=VALUE, got '%s'", argv[i]);
			goto fail;
		}
		key = strndup(argv[i], (size_t)(eq - argv[i]));
		v = key ? parse_value(key, eq + 1) : NULL;
		if (v == NULL || json_object_set_new(params, key, v) < 0) {
			free(key);
			goto fail;
		}
		free(key);
	}
	if (base != NULL) {
		json_object_update(base, params);
		json_decref(params);
		params = base;
	}
	*out = params;
	return 0;
usage_missing:
	usage_error("--json-params needs a JSON object");
fail:
	json_decref(base);
	json_decref(params);
	return EXIT_USAGE;
}

static json_t *
name_params(const char *name)
{
	return json_pack("{s:s}", "name", name);
}

/* ---- generic object verbs (port, bridge, xconnect) -------------------- */

static int
finish(const struct opts *o, json_t *result)
{
	if (o->json)
		print_json(result);
	json_decref(result);
	return 0;
}

static int
obj_add_set(const struct opts *o, const char *method, int argc, char **argv)
{
	json_t *params, *result;
	int rc;

	rc = parse_kv(argc - 1, argv + 1, &params);
	if (rc != 0)
		return rc;
	json_object_set_new(params, "name", json_string(argv[0]));
	rc = rpc(o, method, params, &result);
	return rc ? rc : finish(o, result);
}

static int
obj_del(const struct opts *o, const char *method, const char *name)
{
	json_t *result;
	int rc = rpc(o, method, name_params(name), &result);

	return rc ? rc : finish(o, result);
}

/* ---- port ------------------------------------------------------------- */

/* A column of a list table: the member @key of each row. */
enum col_fmt {
	COL_VALUE,
	COL_YESNO, /* a boolean as yes/no */
	COL_SIZE,  /* bytes, as 64M when a whole number of a unit */
};

struct col {
	const char *hdr;
	const char *key;
	char align;
	enum col_fmt fmt;
};

static char *size_str(json_int_t bytes);

/* Call @method (no params) and print its array result as a table. */
static int
list_table(const struct opts *o, const char *method, const struct col *cols, size_t ncols)
{
	const char *hdr[16];
	char align[17];
	struct table t = {.ncols = ncols, .hdr = hdr, .align = align};
	json_t *result, *row, *v;
	size_t i, c;

	for (c = 0; c < ncols && c < 16; c++) {
		hdr[c] = cols[c].hdr;
		align[c] = cols[c].align;
	}
	align[c] = '\0';
	if (rpc(o, method, NULL, &result))
		return 1;
	if (o->json)
		return finish(o, result);
	json_array_foreach(result, i, row) {
		for (c = 0; c < t.ncols; c++) {
			v = json_object_get(row, cols[c].key);
			if (cols[c].fmt == COL_YESNO)
				table_add(&t, strdup(json_is_true(v) ? "yes" : "no"));
			else if (cols[c].fmt == COL_SIZE)
				table_add(&t, size_str(jint(v)));
			else
				table_addv(&t, v);
		}
	}
	table_print(&t, "");
	table_free(&t);
	json_decref(result);
	return 0;
}

static int
port_list(const struct opts *o)
{
	static const struct col cols[] = {{"NAME", "name", 'l', COL_VALUE},
		{"TYPE", "type", 'l', COL_VALUE}, {"STATE", "state", 'l', COL_VALUE},
		{"BRIDGE", "bridge", 'l', COL_VALUE}, {"XCONNECT", "xconnect", 'l', COL_VALUE},
		{"MODE", "mode", 'l', COL_VALUE}, {"QUEUES", "queues", 'r', COL_VALUE},
		{"SOCKET", "socket", 'l', COL_VALUE}};

	return list_table(o, "port.list", cols, sizeof(cols) / sizeof(cols[0]));
}

/* Drop reasons in the order the daemon reports them, rx first. */
static void
drop_reasons(const json_t *st, const char **keys, size_t max, size_t *n)
{
	const char *dirs[] = {"rx", "tx"};
	const char *key;
	size_t d, i;
	json_t *v;

	*n = 0;
	for (d = 0; d < 2; d++) {
		json_object_foreach(
			json_object_get(json_object_get(st, dirs[d]), "drops"), key, v) {
			for (i = 0; i < *n; i++)
				if (strcmp(keys[i], key) == 0)
					break;
			if (i == *n && *n < max)
				keys[(*n)++] = key;
		}
	}
}

/* The rx queues' "single-copy": "auto" state, when the port has it. */
static void
print_sc_auto(const json_t *st, const char *indent)
{
	static const char *const hdr[] = {
		"QUEUE", "PATH", "SC-CYCLES/FRAME", "MBUF-CYCLES/FRAME", "PROBES", "CHOSE-MBUF"};
	struct table t = {.ncols = 6, .hdr = hdr, .align = "rlrrrr"};
	size_t i;
	json_t *q, *a;

	json_array_foreach(json_object_get(st, "queues"), i, q) {
		a = json_object_get(q, "single-copy-auto");
		if (a == NULL)
			continue;
		table_addv(&t, json_object_get(q, "queue"));
		table_addv(&t, json_object_get(a, "path"));
		table_addv(&t, json_object_get(a, "single-copy-cycles"));
		table_addv(&t, json_object_get(a, "mbuf-cycles"));
		table_addv(&t, json_object_get(a, "probes"));
		table_addv(&t, json_object_get(a, "chose-mbuf"));
	}
	if (t.ncells == 0)
		return;
	printf("%ssingle copy \"auto\" (last probe):\n", indent);
	table_print(&t, indent);
	table_free(&t);
}

/* Counters, drop reasons and queues of one port stats object. */
static void
print_port_stats(const json_t *st, const char *indent)
{
	static const char *const hdr[] = {"", "PACKETS", "BYTES", "ERRORS", "DROPS"};
	static const char *const qhdr[] = {"QUEUE", "RX-ON", "TX-ON", "RX-PACKETS", "RX-BYTES",
		"TX-PACKETS", "TX-BYTES", "TX-DROPS"};
	struct table t = {.ncols = 5, .hdr = hdr, .align = "lrrrr"};
	struct table dt = {0};
	struct table qt = {.ncols = 8, .hdr = qhdr, .align = "rllrrrrr"};
	const char *dirs[] = {"rx", "tx"};
	const char *keys[32], *dhdr[33];
	char dalign[34];
	size_t d, i, n;
	json_t *dir, *q;

	for (d = 0; d < 2; d++) {
		dir = json_object_get(st, dirs[d]);
		table_add(&t, strdup(dirs[d]));
		table_addv(&t, json_object_get(dir, "packets"));
		table_addv(&t, json_object_get(dir, "bytes"));
		table_addv(&t, json_object_get(dir, "errors"));
		table_addf(&t, "%" JSON_INTEGER_FORMAT, jsum(json_object_get(dir, "drops")));
	}
	table_print(&t, indent);
	table_free(&t);

	drop_reasons(st, keys, 32, &n);
	if (n > 0) {
		printf("%sdrops by reason:\n", indent);
		dhdr[0] = "";
		dalign[0] = 'l';
		for (i = 0; i < n; i++) {
			dhdr[i + 1] = keys[i];
			dalign[i + 1] = 'r';
		}
		dalign[n + 1] = '\0';
		dt.ncols = n + 1;
		dt.hdr = dhdr;
		dt.align = dalign;
		for (d = 0; d < 2; d++) {
			dir = json_object_get(json_object_get(st, dirs[d]), "drops");
			table_add(&dt, strdup(dirs[d]));
			for (i = 0; i < n; i++)
				table_addv(&dt, json_object_get(dir, keys[i]));
		}
		table_print(&dt, indent);
		table_free(&dt);
	}

	if (json_array_size(json_object_get(st, "queues")) > 0) {
		printf("%squeues:\n", indent);
		json_array_foreach(json_object_get(st, "queues"), i, q) {
			table_addv(&qt, json_object_get(q, "queue"));
			table_addv(&qt, json_object_get(q, "rx-enabled"));
			table_addv(&qt, json_object_get(q, "tx-enabled"));
			table_addv(&qt, json_object_get(q, "rx-packets"));
			table_addv(&qt, json_object_get(q, "rx-bytes"));
			table_addv(&qt, json_object_get(q, "tx-packets"));
			table_addv(&qt, json_object_get(q, "tx-bytes"));
			table_addv(&qt, json_object_get(q, "tx-drops"));
		}
		table_print(&qt, indent);
		table_free(&qt);
		print_sc_auto(st, indent);
	}
}

static int
port_show(const struct opts *o, const char *name)
{
	static const char *const skip[] = {"name", "stats", NULL};
	json_t *result, *st;

	if (rpc(o, "port.show", name_params(name), &result))
		return 1;
	if (o->json)
		return finish(o, result);
	printf("port %s\n", name);
	print_members(result, 2, skip);
	st = json_object_get(result, "stats");
	if (json_is_object(st)) {
		printf("  statistics:\n");
		print_port_stats(st, "    ");
	}
	json_decref(result);
	return 0;
}

/* ---- bridge ----------------------------------------------------------- */

static int
bridge_list(const struct opts *o)
{
	static const struct col cols[] = {{"NAME", "name", 'l', COL_VALUE},
		{"MAC-AGING-S", "mac-aging-s", 'r', COL_VALUE},
		{"MAC-COUNT", "mac-count", 'r', COL_VALUE}, {"PORTS", "ports", 'l', COL_VALUE}};

	return list_table(o, "bridge.list", cols, sizeof(cols) / sizeof(cols[0]));
}

static int
bridge_show(const struct opts *o, const char *name)
{
	static const char *const skip[] = {"name", "mac-table", NULL};
	static const char *const hdr[] = {"PORT", "VLAN", "MAC", "AGE"};
	struct table t = {.ncols = 4, .hdr = hdr, .align = "lrlr"};
	json_t *result, *macs, *m;
	size_t i;

	if (rpc(o, "bridge.show", name_params(name), &result))
		return 1;
	if (o->json)
		return finish(o, result);
	printf("bridge %s\n", name);
	print_members(result, 2, skip);
	macs = json_object_get(result, "mac-table");
	printf("  mac-table: %zu entr%s\n", json_array_size(macs),
		json_array_size(macs) == 1 ? "y" : "ies");
	json_array_foreach(macs, i, m) {
		table_addv(&t, json_object_get(m, "port"));
		table_addv(&t, json_object_get(m, "vlan"));
		table_addv(&t, json_object_get(m, "mac"));
		/* Like ovs-appctl fdb/show: static entries do not age. */
		if (json_is_true(json_object_get(m, "static")))
			table_add(&t, strdup("static"));
		else
			table_addv(&t, json_object_get(m, "age-s"));
	}
	if (json_array_size(macs) > 0)
		table_print(&t, "    ");
	table_free(&t);
	json_decref(result);
	return 0;
}

static int
bridge_flush(const struct opts *o, const char *name)
{
	json_t *result;

	if (rpc(o, "bridge.flush", name_params(name), &result))
		return 1;
	if (o->json)
		return finish(o, result);
	printf("bridge %s: flushed %" JSON_INTEGER_FORMAT " MAC entries\n", name,
		jint(json_object_get(result, "flushed")));
	json_decref(result);
	return 0;
}

/* ---- xconnect --------------------------------------------------------- */

static int
xconnect_add(const struct opts *o, char **argv)
{
	json_t *result;

	if (rpc(o, "xconnect.add",
		    json_pack("{s:s,s:[s,s]}", "name", argv[0], "ports", argv[1], argv[2]),
		    &result))
		return 1;
	return finish(o, result);
}

static int
xconnect_list(const struct opts *o)
{
	static const char *const hdr[] = {"NAME", "PORT-A", "PORT-B"};
	struct table t = {.ncols = 3, .hdr = hdr, .align = "lll"};
	json_t *result, *x, *ports;
	size_t i;

	if (rpc(o, "xconnect.list", NULL, &result))
		return 1;
	if (o->json)
		return finish(o, result);
	json_array_foreach(result, i, x) {
		ports = json_object_get(x, "ports");
		table_addv(&t, json_object_get(x, "name"));
		table_addv(&t, json_array_get(ports, 0));
		table_addv(&t, json_array_get(ports, 1));
	}
	table_print(&t, "");
	table_free(&t);
	json_decref(result);
	return 0;
}

/* ---- scsi and lun: --option verbs ------------------------------------ */

enum opt_kind {
	OPT_STR,   /* --opt VALUE: a string */
	OPT_PATH,  /* a string; a relative path is made absolute against the cwd */
	OPT_INT,   /* an integer */
	OPT_SIZE,  /* an integer, or a string with a unit suffix ("64M") */
	OPT_TRUE,  /* a flag: true */
	OPT_CONST, /* a flag: the string .value */
};

struct verb_opt {
	const char *opt;
	const char *member;
	enum opt_kind kind;
	const char *value;
	bool required;
};

static const struct verb_opt scsi_add_opts[] = {
	{"--socket", "socket", OPT_STR, NULL, true},
	{"--client", "mode", OPT_CONST, "client", false},
	{"--queues", "queues", OPT_INT, NULL, false},
	{"--max-sectors", "max-sectors", OPT_INT, NULL, false},
	{"--cmd-per-lun", "cmd-per-lun", OPT_INT, NULL, false},
	{NULL, NULL, OPT_STR, NULL, false},
};

static const struct verb_opt lun_add_opts[] = {
	{"--controller", "controller", OPT_STR, NULL, true},
	{"--target", "target", OPT_INT, NULL, false},
	{"--lun", "lun", OPT_INT, NULL, false},
	{"--backend", "backend", OPT_STR, NULL, true},
	{"--path", "path", OPT_PATH, NULL, false},
	{"--size", "size", OPT_SIZE, NULL, false},
	{"--block-size", "block-size", OPT_INT, NULL, false},
	{"--cache", "cache", OPT_STR, NULL, false},
	{"--readonly", "readonly", OPT_TRUE, NULL, false},
	{"--vendor", "vendor", OPT_STR, NULL, false},
	{"--product", "product", OPT_STR, NULL, false},
	{"--revision", "revision", OPT_STR, NULL, false},
	{"--serial", "serial", OPT_STR, NULL, false},
	{NULL, NULL, OPT_STR, NULL, false},
};

static json_t *
opt_value(const struct verb_opt *d, const char *arg)
{
	char cwd[4096];
	json_t *v;

	switch (d->kind) {
	case OPT_INT:
		v = parse_int(arg);
		if (v == NULL)
			usage_error("%s: '%s' is not an integer", d->opt, arg);
		return v;
	case OPT_SIZE:
		v = parse_int(arg);
		return v ? v : json_string(arg);
	case OPT_PATH:
		if (arg[0] != '/' && arg[0] != '\0' && getcwd(cwd, sizeof(cwd)) != NULL) {
			char *abs = NULL;

			if (asprintf(&abs, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, arg) < 0)
				return NULL;
			v = json_string(abs);
			free(abs);
			return v;
		}
		return json_string(arg);
	default:
		v = json_string(arg);
		if (v == NULL)
			usage_error("%s: value is not valid UTF-8", d->opt);
		return v;
	}
}

/*
 * "add NAME --opt VALUE --flag ..." (also --opt=VALUE) into the params of
 * @usage's method. Returns 0 or EXIT_USAGE (message printed).
 */
static int
parse_verb_opts(const char *usage, const struct verb_opt *tab, int argc, char **argv, json_t **out)
{
	json_t *params, *v;
	const struct verb_opt *d;
	const char *arg, *eq;
	size_t len;
	int i;

	*out = NULL;
	if (argc < 1 || argv[0][0] == '-')
		return usage_error("usage: %s", usage);
	params = json_pack("{s:s}", "name", argv[0]);
	if (params == NULL)
		return usage_error("NAME is not valid UTF-8");
	for (i = 1; i < argc; i++) {
		eq = strchr(argv[i], '=');
		len = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
		for (d = tab; d->opt != NULL; d++)
			if (strlen(d->opt) == len && strncmp(d->opt, argv[i], len) == 0)
				break;
		if (d->opt == NULL) {
			usage_error("unknown option '%.*s' (usage: %s)", (int)len, argv[i], usage);
			goto fail;
		}
		if (d->kind == OPT_TRUE || d->kind == OPT_CONST) {
			if (eq != NULL) {
				usage_error("%s takes no value", d->opt);
				goto fail;
			}
			v = d->kind == OPT_TRUE ? json_true() : json_string(d->value);
		} else {
			if (eq != NULL) {
				arg = eq + 1;
			} else if (i + 1 < argc) {
				arg = argv[++i];
			} else {
				usage_error("option '%s' needs an argument", d->opt);
				goto fail;
			}
			v = opt_value(d, arg);
			if (v == NULL)
				goto fail;
		}
		json_object_set_new(params, d->member, v);
	}
	for (d = tab; d->opt != NULL; d++) {
		if (d->required && json_object_get(params, d->member) == NULL) {
			usage_error("%s is required (usage: %s)", d->opt, usage);
			goto fail;
		}
	}
	*out = params;
	return 0;
fail:
	json_decref(params);
	return EXIT_USAGE;
}

/* "64M" for sizes that are a whole number of a binary unit, else bytes. */
static char *
size_str(json_int_t bytes)
{
	static const char units[] = "KMGTP";
	char *s = NULL;
	int u = -1;

	while (bytes > 0 && bytes % 1024 == 0 && u < 4) {
		bytes /= 1024;
		u++;
	}
	if (u < 0) {
		if (asprintf(&s, "%" JSON_INTEGER_FORMAT, bytes) < 0)
			s = NULL;
	} else if (asprintf(&s, "%" JSON_INTEGER_FORMAT "%c", bytes, units[u]) < 0) {
		s = NULL;
	}
	return s;
}

static int
scsi_list(const struct opts *o)
{
	static const struct col cols[] = {{"NAME", "name", 'l', COL_VALUE},
		{"MODE", "mode", 'l', COL_VALUE}, {"QUEUES", "queues", 'r', COL_VALUE},
		{"CONNECTED", "connected", 'l', COL_YESNO}, {"LUNS", "luns", 'r', COL_VALUE},
		{"SOCKET", "socket", 'l', COL_VALUE}};

	return list_table(o, "scsi.list", cols, sizeof(cols) / sizeof(cols[0]));
}

static int
scsi_show(const struct opts *o, const char *name)
{
	static const char *const skip[] = {"name", "stats", "luns", NULL};
	static const char *const ckeys[] = {"requests", "tmf", "bad-chains", "errors", "inflight"};
	static const char *const qhdr[] = {
		"QUEUE", "ENABLED", "PMD", "REQUESTS", "TMF", "BAD-CHAINS", "ERRORS", "INFLIGHT"};
	static const char *const lhdr[] = {"NAME", "TARGET", "LUN", "BACKEND"};
	struct table qt = {.ncols = 8, .hdr = qhdr, .align = "rlrrrrrr"};
	struct table lt = {.ncols = 4, .hdr = lhdr, .align = "lrrl"};
	json_t *result, *st, *q, *l, *luns;
	size_t i, k;

	if (rpc(o, "scsi.show", name_params(name), &result))
		return 1;
	if (o->json)
		return finish(o, result);
	printf("scsi %s\n", name);
	print_members(result, 2, skip);
	st = json_object_get(result, "stats");
	if (json_is_object(st)) {
		printf("  statistics:\n   ");
		for (k = 0; k < sizeof(ckeys) / sizeof(ckeys[0]); k++)
			printf(" %s: %" JSON_INTEGER_FORMAT, ckeys[k],
				jint(json_object_get(st, ckeys[k])));
		printf("\n");
		json_array_foreach(json_object_get(st, "queues"), i, q) {
			table_addv(&qt, json_object_get(q, "queue"));
			table_add(&qt,
				strdup(json_is_true(json_object_get(q, "enabled")) ? "yes" : "no"));
			table_addv(&qt, json_object_get(q, "pmd"));
			for (k = 0; k < sizeof(ckeys) / sizeof(ckeys[0]); k++)
				table_addv(&qt, json_object_get(q, ckeys[k]));
		}
		if (qt.ncells > 0)
			table_print(&qt, "    ");
	}
	table_free(&qt);
	luns = json_object_get(result, "luns");
	printf("  luns: %zu\n", json_array_size(luns));
	json_array_foreach(luns, i, l) {
		table_addv(&lt, json_object_get(l, "name"));
		table_addv(&lt, json_object_get(l, "target"));
		table_addv(&lt, json_object_get(l, "lun"));
		table_addv(&lt, json_object_get(l, "backend"));
	}
	if (lt.ncells > 0)
		table_print(&lt, "    ");
	table_free(&lt);
	json_decref(result);
	return 0;
}

static int
lun_list(const struct opts *o)
{
	static const struct col cols[] = {{"NAME", "name", 'l', COL_VALUE},
		{"CONTROLLER", "controller", 'l', COL_VALUE}, {"TARGET", "target", 'r', COL_VALUE},
		{"LUN", "lun", 'r', COL_VALUE}, {"BACKEND", "backend", 'l', COL_VALUE},
		{"SIZE", "size", 'r', COL_SIZE}, {"READONLY", "readonly", 'l', COL_YESNO}};

	return list_table(o, "lun.list", cols, sizeof(cols) / sizeof(cols[0]));
}

static int
lun_show(const struct opts *o, const char *name)
{
	static const char *const skip[] = {"name", "stats", NULL};
	/* The order of virsh domblkstat, then what it does not have. */
	static const char *const keys[] = {"rd_req", "rd_bytes", "wr_req", "wr_bytes",
		"flush_operations", "rd_total_times", "wr_total_times", "flush_total_times",
		"unmap_req", "unmap_blocks", "errors"};
	json_t *result, *st, *lat, *v;
	size_t k;

	if (rpc(o, "lun.show", name_params(name), &result))
		return 1;
	if (o->json)
		return finish(o, result);
	printf("lun %s\n", name);
	print_members(result, 2, skip);
	st = json_object_get(result, "stats");
	if (json_is_object(st)) {
		printf("  statistics:\n");
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			v = json_object_get(st, keys[k]);
			if (v != NULL)
				printf("    %s %s %" JSON_INTEGER_FORMAT "\n", name, keys[k],
					jint(v));
		}
		lat = json_object_get(st, "latency-us");
		if (json_is_object(lat))
			printf("    latency: p50 %.1f us, p99 %.1f us, p99.9 %.1f us\n",
				json_number_value(json_object_get(lat, "p50")),
				json_number_value(json_object_get(lat, "p99")),
				json_number_value(json_object_get(lat, "p99.9")));
	}
	json_decref(result);
	return 0;
}

/* scsi and lun verbs: add takes --options, the others a NAME or nothing. */
static int
cmd_scsi_lun(const struct opts *o, const char *obj, int argc, char **argv)
{
	static const char scsi_usage[] = "scsi add NAME --socket PATH [--client] [--queues N] "
					 "[--max-sectors N] [--cmd-per-lun N]";
	static const char lun_usage[] =
		"lun add NAME --controller C --backend file|ram|null [--target T] [--lun L] "
		"[--path P] [--size S] [--block-size B] [--cache MODE] [--readonly] [--vendor V] "
		"[--product P] [--revision R] [--serial S]";
	bool scsi = strcmp(obj, "scsi") == 0;
	char method[64], usage[64];
	json_t *params, *result;
	const char *verb;
	int rc;

	if (argc == 0)
		return usage_error("%s: missing verb", obj);
	verb = argv[0];
	argc--;
	argv++;
	snprintf(method, sizeof(method), "%s.%s", obj, verb);
	if (strcmp(verb, "add") == 0) {
		rc = parse_verb_opts(scsi ? scsi_usage : lun_usage,
			scsi ? scsi_add_opts : lun_add_opts, argc, argv, &params);
		if (rc != 0)
			return rc;
		rc = rpc(o, method, params, &result);
		return rc ? rc : finish(o, result);
	}
	if (strcmp(verb, "del") == 0 || strcmp(verb, "show") == 0) {
		snprintf(usage, sizeof(usage), "%s %s NAME", obj, verb);
		rc = need_args(usage, argc, 1, 1);
		if (rc)
			return rc;
		if (strcmp(verb, "del") == 0)
			return obj_del(o, method, argv[0]);
		return scsi ? scsi_show(o, argv[0]) : lun_show(o, argv[0]);
	}
	if (strcmp(verb, "list") == 0) {
		snprintf(usage, sizeof(usage), "%s list", obj);
		rc = need_args(usage, argc, 0, 0);
		if (rc)
			return rc;
		return scsi ? scsi_list(o) : lun_list(o);
	}
	return usage_error("unknown command '%s %s'", obj, verb);
}

/* ---- pmd -------------------------------------------------------------- */

static int
pmd_show(const struct opts *o)
{
	json_t *result, *pmd, *qs, *q;
	size_t i, j, pw;
	char *s[5];

	if (rpc(o, "pmd.show", NULL, &result))
		return 1;
	if (o->json)
		return finish(o, result);
	json_array_foreach(result, i, pmd) {
		s[0] = vstr(json_object_get(pmd, "id"));
		s[1] = vstr(json_object_get(pmd, "cpu"));
		s[2] = vstr(json_object_get(pmd, "numa"));
		s[3] = vstr(json_object_get(pmd, "mode"));
		s[4] = vstr(json_object_get(pmd, "state"));
		printf("pmd thread %s (cpu %s, numa %s): mode %s, %s\n", s[0], s[1], s[2], s[3],
			s[4]);
		for (j = 0; j < 5; j++)
			free(s[j]);
		printf("  busy: %.1f %%  idle (polling): %.1f %%  halted/sleeping: %.1f %%\n",
			json_number_value(json_object_get(pmd, "busy-pct")),
			json_number_value(json_object_get(pmd, "idle-pct")),
			json_number_value(json_object_get(pmd, "sleep-pct")));
		printf("  packets: %" JSON_INTEGER_FORMAT
		       "  cycles/packet: %.1f  halts: %" JSON_INTEGER_FORMAT
		       "  wake-ups: %" JSON_INTEGER_FORMAT "\n",
			jint(json_object_get(pmd, "packets")),
			json_number_value(json_object_get(pmd, "cycles-per-packet")),
			jint(json_object_get(pmd, "halts")), jint(json_object_get(pmd, "wakeups")));
		printf("  poll window: %" JSON_INTEGER_FORMAT " ns (max %" JSON_INTEGER_FORMAT
		       ")  poll hits: %" JSON_INTEGER_FORMAT "  misses: %" JSON_INTEGER_FORMAT "\n",
			jint(json_object_get(pmd, "poll-window-ns")),
			jint(json_object_get(pmd, "halt-poll-ns")),
			jint(json_object_get(pmd, "poll-hits")),
			jint(json_object_get(pmd, "poll-misses")));
		qs = json_object_get(pmd, "queues");
		if (json_array_size(qs) == 0)
			printf("  no queues\n");
		pw = 0;
		json_array_foreach(qs, j, q) {
			const char *n = json_string_value(json_object_get(q, "port"));

			if (n == NULL)
				n = json_string_value(json_object_get(q, "controller"));
			if (n != NULL && width(n) > pw)
				pw = width(n);
		}
		/* The layout of ovs-appctl dpif-netdev/pmd-rxq-show. */
		json_array_foreach(qs, j, q) {
			const char *port = json_string_value(json_object_get(q, "port"));
			const char *kind = port != NULL ? "port" : "scsi";
			char *qid = vstr(json_object_get(q, "queue"));

			if (port == NULL)
				port = json_string_value(json_object_get(q, "controller"));
			port = port ? port : "?";
			printf("  %s: %s%*s  queue-id: %2s%s", kind, port, (int)(pw - width(port)),
				"", qid,
				json_is_true(json_object_get(q, "pinned")) ? " (pinned)" : "");
			if (json_object_get(q, "load-pct") != NULL)
				printf("  pmd usage: %3.0f %%",
					json_number_value(json_object_get(q, "load-pct")));
			printf("\n");
			free(qid);
		}
	}
	json_decref(result);
	/* Pinned queues without a PMD on their CPU (OVS: "not polled"). */
	if (rpc(o, "pmd.rebalance", json_pack("{s:b}", "dry-run", 1), &result) == 0) {
		json_array_foreach(json_object_get(result, "not-polled"), i, q) {
			const char *n = json_string_value(json_object_get(q, "port"));

			printf("%s: %s  queue-id: %" JSON_INTEGER_FORMAT
			       "  not polled: no PMD on CPU %" JSON_INTEGER_FORMAT "\n",
				n ? "port" : "scsi",
				n ? n : json_string_value(json_object_get(q, "controller")),
				jint(json_object_get(q, "queue")),
				jint(json_object_get(q, "pinned-cpu")));
		}
		json_decref(result);
	}
	return 0;
}

static int
pmd_rebalance(const struct opts *o, int argc, char **argv)
{
	json_t *result, *m;
	bool dry = false;
	size_t i;

	for (int k = 0; k < argc; k++) {
		if (strcmp(argv[k], "--dry-run") != 0)
			return usage_error("pmd rebalance [--dry-run]");
		dry = true;
	}
	if (rpc(o, "pmd.rebalance", json_pack("{s:b}", "dry-run", dry), &result))
		return 1;
	if (o->json)
		return finish(o, result);
	json_array_foreach(json_object_get(result, "moves"), i, m) {
		const char *n = json_string_value(json_object_get(m, "port"));
		char *from = vstr(json_object_get(m, "from-pmd"));
		char *to = vstr(json_object_get(m, "to-pmd"));

		printf("%s %s %s queue %" JSON_INTEGER_FORMAT ": pmd %s -> pmd %s\n",
			dry ? "would move" : "moved", n ? "port" : "scsi",
			n ? n : json_string_value(json_object_get(m, "controller")),
			jint(json_object_get(m, "queue")), from ? from : "-", to ? to : "-");
		free(from);
		free(to);
	}
	printf("load variance (over %" JSON_INTEGER_FORMAT " s): %.1f -> %.1f; %s\n",
		jint(json_object_get(result, "window-s")),
		json_number_value(json_object_get(result, "variance-before")),
		json_number_value(json_object_get(result, "variance-after")),
		json_is_true(json_object_get(result, "applied"))
			? "applied"
			: (json_array_size(json_object_get(result, "moves")) ? "not applied"
									     : "nothing to move"));
	json_decref(result);
	return 0;
}

/*
 * pmd set [--live] [--config] KEY=VALUE...: --live (the default) changes the
 * running daemon; --config also saves the resulting configuration to the
 * daemon's config file (config.save), like virsh's --live --config.
 */
static int
pmd_set(const struct opts *o, int argc, char **argv)
{
	json_t *params, *result, *saved;
	bool persist = false;
	int rc, n = 0;

	for (int k = 0; k < argc; k++) {
		if (strcmp(argv[k], "--config") == 0)
			persist = true;
		else if (strcmp(argv[k], "--live") != 0)
			argv[n++] = argv[k];
	}
	argc = n;
	rc = parse_kv(argc, argv, &params);
	if (rc != 0)
		return rc;
	if (json_object_size(params) == 0) {
		json_decref(params);
		return usage_error(
			"pmd set: nothing to set (cpus=LIST, mode=MODE, halt-poll-ns=N, ...)");
	}
	rc = rpc(o, "pmd.set", params, &result);
	if (rc || !persist)
		return rc ? rc : finish(o, result);
	if (rpc(o, "config.save", json_object(), &saved)) {
		json_decref(result);
		return 1;
	}
	if (!o->json)
		printf("configuration saved to %s\n",
			json_string_value(json_object_get(saved, "path")));
	json_decref(saved);
	return finish(o, result);
}

/* ---- stats ------------------------------------------------------------ */

static json_t *
port_params(const char *port)
{
	return port ? json_pack("{s:s}", "port", port) : json_object();
}

static int
stats_show(const struct opts *o, const char *port)
{
	static const char *const hdr[] = {"PORT", "RX-PACKETS", "RX-BYTES", "RX-DROPS", "RX-ERRS",
		"TX-PACKETS", "TX-BYTES", "TX-DROPS", "TX-ERRS"};
	struct table t = {.ncols = 9, .hdr = hdr, .align = "lrrrrrrrr"};
	json_t *result, *ports, *p, *rx, *tx;
	size_t i;

	if (rpc(o, "stats.get", port_params(port), &result))
		return 1;
	if (o->json)
		return finish(o, result);
	ports = json_object_get(result, "ports");
	json_array_foreach(ports, i, p) {
		rx = json_object_get(p, "rx");
		tx = json_object_get(p, "tx");
		table_addv(&t, json_object_get(p, "name"));
		table_addv(&t, json_object_get(rx, "packets"));
		table_addv(&t, json_object_get(rx, "bytes"));
		table_addf(&t, "%" JSON_INTEGER_FORMAT, jsum(json_object_get(rx, "drops")));
		table_addv(&t, json_object_get(rx, "errors"));
		table_addv(&t, json_object_get(tx, "packets"));
		table_addv(&t, json_object_get(tx, "bytes"));
		table_addf(&t, "%" JSON_INTEGER_FORMAT, jsum(json_object_get(tx, "drops")));
		table_addv(&t, json_object_get(tx, "errors"));
	}
	table_print(&t, "");
	table_free(&t);
	/* For one port, the details that do not fit in a row. */
	if (port != NULL && json_array_size(ports) == 1) {
		printf("\n");
		print_port_stats(json_array_get(ports, 0), "  ");
	}
	json_decref(result);
	return 0;
}

static volatile sig_atomic_t stop_watch;

static void
on_sigint(int sig)
{
	stop_watch = 1;
}

/* Counter increase between two samples; a decrease means the counters
 * were cleared in between, so everything counted since is the delta. */
static double
delta(json_int_t prev, json_int_t cur)
{
	return (double)(cur >= prev ? cur - prev : cur);
}

static const json_t *
find_port(const json_t *ports, const char *name)
{
	json_t *p;
	size_t i;

	json_array_foreach((json_t *)ports, i, p) {
		const char *n = json_string_value(json_object_get(p, "name"));

		if (n != NULL && strcmp(n, name) == 0)
			return p;
	}
	return NULL;
}

#define RATE_COLS 6
static const char *const rate_keys[RATE_COLS] = {
	"rx-pps", "rx-mbps", "rx-drops-ps", "tx-pps", "tx-mbps", "tx-drops-ps"};

/* Per-port rates between two stats.get results. */
static json_t *
compute_rates(const json_t *prev, const json_t *cur)
{
	json_int_t t0 = jint(json_object_get(prev, "time-ns"));
	json_int_t t1 = jint(json_object_get(cur, "time-ns"));
	const char *dirs[] = {"rx", "tx"};
	json_t *out, *ports, *p, *r;
	const json_t *old, *a, *b;
	double dt, v[RATE_COLS];
	size_t i, d, k;

	if (t1 <= t0)
		return NULL;
	dt = (double)(t1 - t0) / 1e9;
	ports = json_array();
	out = json_pack("{s:I,s:f,s:o}", "time-ns", t1, "interval-s", dt, "ports", ports);
	if (out == NULL)
		return NULL;
	json_array_foreach(json_object_get(cur, "ports"), i, p) {
		const char *name = json_string_value(json_object_get(p, "name"));

		if (name == NULL)
			continue;
		/* A port added since the last sample gets rates next time. */
		old = find_port(json_object_get(prev, "ports"), name);
		if (old == NULL)
			continue;
		for (d = 0; d < 2; d++) {
			a = json_object_get(old, dirs[d]);
			b = json_object_get(p, dirs[d]);
			v[d * 3] = delta(jint(json_object_get(a, "packets")),
					   jint(json_object_get(b, "packets"))) /
				   dt;
			v[d * 3 + 1] = delta(jint(json_object_get(a, "bytes")),
					       jint(json_object_get(b, "bytes"))) *
				       8 / dt / 1e6;
			v[d * 3 + 2] = delta(jsum(json_object_get(a, "drops")),
					       jsum(json_object_get(b, "drops"))) /
				       dt;
		}
		r = json_pack("{s:s}", "name", name);
		for (k = 0; k < RATE_COLS; k++)
			json_object_set_new(r, rate_keys[k], json_real(v[k]));
		json_array_append_new(ports, r);
	}
	return out;
}

static void
print_rates(const json_t *rates, double interval)
{
	static const char *const hdr[] = {
		"PORT", "RX-PPS", "RX-MBIT/S", "RX-DROP/S", "TX-PPS", "TX-MBIT/S", "TX-DROP/S"};
	struct table t = {.ncols = 7, .hdr = hdr, .align = "lrrrrrr"};
	json_t *p;
	char when[32];
	time_t now = time(NULL);
	size_t i, k;

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	/* Clear and redraw only on a terminal; piped output accumulates. */
	if (isatty(STDOUT_FILENO))
		fputs("\033[H\033[2J", stdout);
	printf("port rates every %gs at %s (Ctrl-C to quit)\n\n", interval, when);
	json_array_foreach(json_object_get(rates, "ports"), i, p) {
		table_addv(&t, json_object_get(p, "name"));
		for (k = 0; k < RATE_COLS; k++)
			table_addf(&t, k % 3 == 1 ? "%.2f" : "%.0f",
				json_real_value(json_object_get(p, rate_keys[k])));
	}
	table_print(&t, "");
	table_free(&t);
	if (!isatty(STDOUT_FILENO))
		printf("\n");
	fflush(stdout);
}

static int
stats_watch(const struct opts *o, const char *port, double interval)
{
	struct sigaction sa = {.sa_handler = on_sigint};
	json_t *prev = NULL, *cur, *rates;
	struct timespec ts;
	char *line;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (rpc(o, "stats.get", port_params(port), &prev))
		return 1;
	while (!stop_watch) {
		ts.tv_sec = (time_t)interval;
		ts.tv_nsec = (long)((interval - (double)ts.tv_sec) * 1e9);
		/* A signal cuts the sleep short; stop_watch then ends the loop. */
		if (nanosleep(&ts, NULL) < 0 && stop_watch)
			break;
		if (rpc(o, "stats.get", port_params(port), &cur)) {
			json_decref(prev);
			return 1;
		}
		rates = compute_rates(prev, cur);
		json_decref(prev);
		prev = cur;
		if (rates == NULL)
			continue;
		if (o->json) {
			/* One line per sample, for tools that read a stream. */
			line = json_dumps(rates, JSON_COMPACT | JSON_REAL_PRECISION(9));
			if (line != NULL)
				printf("%s\n", line);
			free(line);
			fflush(stdout);
		} else {
			print_rates(rates, interval);
		}
		json_decref(rates);
	}
	json_decref(prev);
	return 0;
}

/* stats clear [PORT] [--lun LUN] */
static int
stats_clear(const struct opts *o, int argc, char **argv)
{
	const char *port = NULL, *lun = NULL;
	json_t *params, *result;
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--lun") == 0 && i + 1 < argc && lun == NULL)
			lun = argv[++i];
		else if (argv[i][0] != '-' && port == NULL)
			port = argv[i];
		else
			return usage_error("usage: stats clear [PORT] [--lun LUN]");
	}
	params = port_params(port);
	if (lun != NULL)
		json_object_set_new(params, "lun", json_string(lun));
	if (rpc(o, "stats.clear", params, &result))
		return 1;
	return finish(o, result);
}

static int
cmd_stats(const struct opts *o, int argc, char **argv)
{
	const char *port = NULL;
	double interval = 1.0;
	bool watch = false;
	char *end;
	int i;

	if (argc > 0 && strcmp(argv[0], "clear") == 0)
		return stats_clear(o, argc - 1, argv + 1);
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--watch") == 0 || strcmp(argv[i], "-w") == 0) {
			watch = true;
			if (i + 1 < argc) {
				double v = strtod(argv[i + 1], &end);

				if (end != argv[i + 1] && *end == '\0') {
					if (!(v >= 0.1 && v <= 86400))
						return usage_error("--watch: interval must be "
								   "between 0.1 and 86400 seconds");
					interval = v;
					i++;
				}
			}
		} else if (argv[i][0] == '-') {
			return usage_error("stats: unknown option '%s'", argv[i]);
		} else if (port == NULL) {
			port = argv[i];
		} else {
			return usage_error("usage: stats [PORT] [--watch [SECS]]");
		}
	}
	return watch ? stats_watch(o, port, interval) : stats_show(o, port);
}

/* ---- misc ------------------------------------------------------------- */

static int
cmd_version(const struct opts *o)
{
	json_t *result;
	char *v, *d;

	if (rpc(o, "version", NULL, &result))
		return 1;
	if (o->json)
		return finish(o, result);
	v = vstr(json_object_get(result, "version"));
	d = vstr(json_object_get(result, "dpdk"));
	printf("vhostd %s (%s)\nvhostctl %s\n", v ? v : "?", d ? d : "?", VHOSTD_VERSION);
	free(v);
	free(d);
	json_decref(result);
	return 0;
}

static int
cmd_save_config(const struct opts *o, const char *path)
{
	json_t *params = path ? json_pack("{s:s}", "path", path) : json_object();
	json_t *result;
	char *written;

	if (rpc(o, "config.save", params, &result))
		return 1;
	if (o->json)
		return finish(o, result);
	written = vstr(json_object_get(result, "path"));
	printf("configuration saved to %s\n", written ? written : "?");
	free(written);
	json_decref(result);
	return 0;
}

static int
cmd_call(const struct opts *o, int argc, char **argv)
{
	json_t *params = NULL, *result;
	json_error_t jerr;

	if (argc < 1 || argc > 2)
		return usage_error("usage: call METHOD [JSON-PARAMS]");
	if (argc == 2) {
		params = json_loads(argv[1], JSON_DECODE_ANY, &jerr);
		if (params == NULL)
			return usage_error("JSON-PARAMS: %s", jerr.text);
		if (!json_is_object(params) && !json_is_array(params)) {
			json_decref(params);
			return usage_error("JSON-PARAMS must be an object or an array");
		}
	}
	if (rpc(o, argv[0], params, &result))
		return 1;
	print_json(result);
	json_decref(result);
	return 0;
}

/* ---- command dispatch ------------------------------------------------- */

static int
need_args(const char *usage, int argc, int min, int max)
{
	if (argc < min || argc > max)
		return usage_error("usage: %s", usage);
	return 0;
}

static int
cmd_object(const struct opts *o, const char *obj, int argc, char **argv)
{
	const char *verb;
	char method[64], usage[128];
	int rc;

	if (argc == 0)
		return usage_error("%s: missing verb", obj);
	verb = argv[0];
	argc--;
	argv++;
	snprintf(method, sizeof(method), "%s.%s", obj, verb);
	if (strcmp(verb, "add") == 0 && strcmp(obj, "xconnect") == 0) {
		rc = need_args("xconnect add NAME PORT_A PORT_B", argc, 3, 3);
		return rc ? rc : xconnect_add(o, argv);
	}
	if (strcmp(verb, "add") == 0 || strcmp(verb, "set") == 0) {
		snprintf(usage, sizeof(usage), "%s %s NAME KEY=VALUE...", obj, verb);
		rc = need_args(usage, argc, strcmp(verb, "set") == 0 ? 2 : 1, INT32_MAX);
		return rc ? rc : obj_add_set(o, method, argc, argv);
	}
	if (strcmp(verb, "del") == 0) {
		snprintf(usage, sizeof(usage), "%s del NAME", obj);
		rc = need_args(usage, argc, 1, 1);
		return rc ? rc : obj_del(o, method, argv[0]);
	}
	if (strcmp(verb, "list") == 0) {
		snprintf(usage, sizeof(usage), "%s list", obj);
		rc = need_args(usage, argc, 0, 0);
		if (rc)
			return rc;
		if (strcmp(obj, "port") == 0)
			return port_list(o);
		if (strcmp(obj, "bridge") == 0)
			return bridge_list(o);
		return xconnect_list(o);
	}
	if (strcmp(verb, "show") == 0 && strcmp(obj, "xconnect") != 0) {
		snprintf(usage, sizeof(usage), "%s show NAME", obj);
		rc = need_args(usage, argc, 1, 1);
		if (rc)
			return rc;
		return strcmp(obj, "port") == 0 ? port_show(o, argv[0]) : bridge_show(o, argv[0]);
	}
	if (strcmp(verb, "flush") == 0 && strcmp(obj, "bridge") == 0) {
		rc = need_args("bridge flush NAME", argc, 1, 1);
		return rc ? rc : bridge_flush(o, argv[0]);
	}
	return usage_error("unknown command '%s %s'", obj, verb);
}

static int
run(const struct opts *o, int argc, char **argv)
{
	const char *cmd = argv[0];
	int rc;

	if (strcmp(cmd, "port") == 0 || strcmp(cmd, "bridge") == 0 || strcmp(cmd, "xconnect") == 0)
		return cmd_object(o, cmd, argc - 1, argv + 1);
	if (strcmp(cmd, "scsi") == 0 || strcmp(cmd, "lun") == 0)
		return cmd_scsi_lun(o, cmd, argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0) {
		rc = need_args("version", argc - 1, 0, 0);
		return rc ? rc : cmd_version(o);
	}
	if (strcmp(cmd, "pmd") == 0 && argc >= 2 && strcmp(argv[1], "show") == 0) {
		rc = need_args("pmd show", argc - 2, 0, 0);
		return rc ? rc : pmd_show(o);
	}
	if (strcmp(cmd, "pmd") == 0 && argc >= 2 && strcmp(argv[1], "set") == 0)
		return pmd_set(o, argc - 2, argv + 2);
	if (strcmp(cmd, "pmd") == 0 && argc >= 2 && strcmp(argv[1], "rebalance") == 0)
		return pmd_rebalance(o, argc - 2, argv + 2);
	if (strcmp(cmd, "stats") == 0)
		return cmd_stats(o, argc - 1, argv + 1);
	if (strcmp(cmd, "config") == 0 && argc == 2 && strcmp(argv[1], "show") == 0) {
		json_t *result;

		if (rpc(o, "config.get", NULL, &result))
			return 1;
		print_json(result); /* the configuration is JSON either way */
		json_decref(result);
		return 0;
	}
	if (strcmp(cmd, "save-config") == 0) {
		rc = need_args("save-config [PATH]", argc - 1, 0, 1);
		return rc ? rc : cmd_save_config(o, argc == 2 ? argv[1] : NULL);
	}
	if (strcmp(cmd, "call") == 0)
		return cmd_call(o, argc - 1, argv + 1);
	if (strcmp(cmd, "ovs") == 0)
		return vhostctl_ovs(o->socket, o->timeout_ms, o->json, argc - 1, argv + 1);
	if (strcmp(cmd, "libvirt") == 0)
		return vhostctl_libvirt(o->socket, o->timeout_ms, o->json, argc - 1, argv + 1);
	if (strcmp(cmd, "doctor") == 0)
		return vhostctl_doctor(o->socket, o->timeout_ms, o->json, argc - 1, argv + 1);
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "pmd") == 0 || strcmp(cmd, "config") == 0)
		return usage_error("unknown command '%s%s%s'", cmd, argc > 1 ? " " : "",
			argc > 1 ? argv[1] : "");
	return usage_error("unknown command '%s'", cmd);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct opts o = {.socket = CTL_DEFAULT_SOCKET, .timeout_ms = DEFAULT_TIMEOUT_S * 1000};
	const char *env = getenv("VHOSTCTL_SOCKET");
	double secs;
	char *end;
	int c, i, n;

	if (env != NULL && env[0] != '\0')
		o.socket = env;
	opterr = 0;
	/* '+': options end at COMMAND, whose own words may start with '-'. */
	while ((c = getopt_long(argc, argv, "+:s:jt:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.socket = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 't':
			secs = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(secs >= 0 && secs <= 86400))
				return usage_error(
					"--timeout: '%s' is not a number of seconds", optarg);
			o.timeout_ms = secs > 0 && secs < 0.001 ? 1 : (int)(secs * 1000);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("vhostctl %s\n", VHOSTD_VERSION);
			return 0;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return usage_error("no command given");
	/* Accept --json after the command too ("vhostctl port list --json"). */
	for (i = 1, n = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
			o.json = true;
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return run(&o, n, argv);
}
