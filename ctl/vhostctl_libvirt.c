/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * vhostctl libvirt import|remove|xml, vhostctl doctor.
 *
 * The XML is parsed here, in the client, not in the daemon: the libvirt
 * hook runs vhostctl anyway, the daemon stays free of libxml2, and import
 * is a sequence of the ordinary port.add / scsi.add RPCs (rolled back by
 * port.del / scsi.del when one fails), so it needs no new method.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl_client.h"
#include "doctor.h"
#include "libvirt_xml.h"
#include "vhostctl_libvirt.h"

#define EXIT_USAGE 2
#define OVS_WAIT_MS 10000 /* for ovs-vswitchd to apply an attachment */

struct lv_opts {
	const char *sock;
	int timeout_ms;
	bool json;
};

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
msg(const char *fmt, ...)
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
usage(const char *text)
{
	fprintf(stderr, "vhostctl: usage: %s\nTry 'vhostctl --help' for more information.\n", text);
	return EXIT_USAGE;
}

/* The whole of FILE, or of stdin for "-"; NUL-terminated. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	size_t cap = 65536, n = 0, r;
	char *buf, *nb;

	if (f == NULL)
		return NULL;
	buf = malloc(cap);
	while (buf != NULL && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 == cap) {
			if (cap >= 16 * 1024 * 1024) {
				errno = EFBIG;
				free(buf);
				buf = NULL;
				break;
			}
			nb = realloc(buf, cap * 2);
			if (nb == NULL)
				free(buf);
			buf = nb;
			cap *= 2;
		}
	}
	if (f != stdin)
		fclose(f);
	if (buf != NULL) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

static int
call(const struct lv_opts *o, const char *method, json_t *params, json_t **result,
	struct ctl_error *err)
{
	int rc = ctl_client_call(o->sock, method, params, o->timeout_ms, result, err);

	json_decref(params);
	return rc;
}

static void
print_notes(const json_t *notes)
{
	size_t i;
	json_t *n;

	json_array_foreach((json_t *)notes, i, n)
		msg("note: %s", json_string_value(n));
}

static int
parse_file(const char *path, struct lvx_result *res, bool hook)
{
	char err[8192];
	size_t len;
	char *xml = slurp(path, &len);
	int rc;

	if (xml == NULL) {
		msg("%s: %s", strcmp(path, "-") == 0 ? "stdin" : path, strerror(errno));
		return 1;
	}
	rc = lvx_parse(xml, len, res, err, sizeof(err));
	free(xml);
	if (rc == -ENOENT && hook)
		return -1; /* a domain without vhostd devices: nothing to do */
	if (rc < 0) {
		msg("%s: %s", strcmp(path, "-") == 0 ? "stdin" : path, err);
		return 1;
	}
	return 0;
}

/* Undo the objects added so far (newest first). */
static void
rollback(const struct lv_opts *o, json_t *added)
{
	struct ctl_error err;
	json_t *result;

	for (size_t i = json_array_size(added); i-- > 0;) {
		json_t *a = json_array_get(added, i);
		const char *method = json_string_value(json_array_get(a, 0));
		const char *name = json_string_value(json_array_get(a, 1));

		if (call(o, method, json_pack("{s:s}", "name", name), &result, &err) == 0)
			json_decref(result);
		else
			msg("rollback: %s %s: %s", method, name, err.message);
	}
}

/* The "ovs" entry of port @name, or NULL. */
static json_t *
ovs_of(const struct lvx_result *res, const char *name)
{
	size_t i;
	json_t *e;

	json_array_foreach(res->ovs, i, e)
		if (strcmp(json_string_value(json_object_get(e, "port")), name) == 0)
			return e;
	return NULL;
}

static const char *
jstr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

/*
 * ovs.attach @e (its bridge set) and wait until ovs-vswitchd applied it:
 * libvirt looks the Interface row up when QEMU starts (virsh domifstat).
 * 0 attached (or attached but not applied yet: a warning), -1 failed.
 */
static int
ovs_attach(const struct lv_opts *o, json_t *e, bool exist_ok)
{
	const char *port = jstr(e, "port");
	struct ctl_error err;
	json_t *r = NULL;
	int rc = call(o, "ovs.attach", json_deep_copy(e), &r, &err);
	struct timespec ts = {0, 100 * 1000 * 1000};
	const char *st = "";

	if (rc == -EPROTO && err.err_no == EEXIST && exist_ok) {
		if (!o->json)
			printf("port %s: already attached to OVS, kept (%s)\n", port, err.message);
		return 0;
	}
	if (rc != 0) {
		msg("port %s: OVS bridge %s: %s", port, jstr(e, "bridge"), err.message);
		return -1;
	}
	for (int waited = 0;; waited += 100) {
		st = jstr(r, "state");
		if ((strcmp(st, "attached") == 0 && json_is_true(json_object_get(r, "applied"))) ||
			strcmp(st, "error") == 0 || strcmp(st, "no-bridge") == 0 ||
			strcmp(st, "removed-by-operator") == 0 || waited >= OVS_WAIT_MS)
			break;
		nanosleep(&ts, NULL);
		json_decref(r);
		r = NULL;
		if (call(o, "ovs.show", json_pack("{s:s}", "port", port), &r, &err) != 0) {
			msg("port %s: ovs show: %s", port, err.message);
			return -1;
		}
	}
	if (strcmp(st, "attached") != 0) {
		const char *why = jstr(r, "error");

		msg("port %s: OVS bridge %s: %s%s%s%s", port, jstr(e, "bridge"), st,
			why[0] ? ": " : "", why,
			strcmp(st, "no-bridge") == 0 ? " (create it: ovs-vsctl add-br BRIDGE, or "
						       "fix --ovs-bridge / the hook's "
						       "VHOSTD_OVS_BRIDGE)"
			: strcmp(st, "pending") == 0 || strcmp(st, "backoff") == 0
				? " (is OVSDB reachable? vhostctl ovs show)"
				: "");
		json_decref(r);
		return -1;
	}
	if (!json_is_true(json_object_get(r, "applied")))
		msg("warning: port %s: ovs-vswitchd has not applied the OVS port within %d s "
		    "(is it running?)",
			port, OVS_WAIT_MS / 1000);
	if (!o->json)
		printf("port %s: attached to OVS bridge %s as interface %s%s%s\n", port,
			jstr(e, "bridge"), jstr(r, "interface"),
			json_object_get(e, "iface-id") ? ", iface-id " : "", jstr(e, "iface-id"));
	json_decref(r);
	return 0;
}

/* Detach @port from OVS when it is attached; quiet when it is not. */
static int
ovs_detach(const struct lv_opts *o, const char *port)
{
	struct ctl_error err;
	json_t *r;
	int rc = call(o, "ovs.detach", json_pack("{s:s}", "port", port), &r, &err);

	if (rc == 0) {
		json_decref(r);
		if (!o->json)
			printf("port %s: detached from OVS\n", port);
		return 0;
	}
	if (rc == -EPROTO && (err.err_no == ENOENT || err.code == JSONRPC_METHOD_NOT_FOUND))
		return 0;
	msg("port %s: ovs detach: %s", port, err.message);
	return -1;
}

static int
cmd_import(const struct lv_opts *o, int argc, char **argv)
{
	static const char use[] = "libvirt import [--bridge BR] [--ovs-bridge BR] [--dry-run] "
				  "[--exist-ok] [--hook] FILE|-";
	const char *file = NULL, *bridge = NULL, *ovs_bridge = NULL;
	bool dry = false, exist_ok = false, hook = false;
	struct lvx_result res;
	json_t *added, *out, *obj;
	int rc = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--bridge") == 0 && i + 1 < argc)
			bridge = argv[++i];
		else if (strcmp(argv[i], "--ovs-bridge") == 0 && i + 1 < argc)
			ovs_bridge = argv[++i];
		else if (strcmp(argv[i], "--dry-run") == 0)
			dry = true;
		else if (strcmp(argv[i], "--exist-ok") == 0)
			exist_ok = true;
		else if (strcmp(argv[i], "--hook") == 0)
			hook = exist_ok = true;
		else if (file == NULL && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0))
			file = argv[i];
		else
			return usage(use);
	}
	if (file == NULL)
		return usage(use);
	rc = parse_file(file, &res, hook);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	{
		size_t i;
		json_t *e;

		/* OVS attachments: the bridge from the XML, else --ovs-bridge; an
		 * entry without one stays a note and its port is created as before. */
		for (i = 0; i < json_array_size(res.ovs);) {
			e = json_array_get(res.ovs, i);
			if (json_object_get(e, "bridge") == NULL && ovs_bridge != NULL)
				json_object_set_new(e, "bridge", json_string(ovs_bridge));
			if (json_object_get(e, "bridge") != NULL) {
				i++;
				continue;
			}
			json_array_append_new(res.notes,
				json_sprintf("port %s asks for OVS (interfaceid '%s'): no OVS bridge "
					     "given, the port is created unattached: import with "
					     "--ovs-bridge BR (the hook: VHOSTD_OVS_BRIDGE=BR in "
					     "vhostd.conf), or vhostctl ovs attach %s BR",
					jstr(e, "port"), jstr(e, "iface-id"), jstr(e, "port")));
			json_array_remove(res.ovs, i);
		}
		/* A port on OVS cannot also be on a vhostd bridge. */
		json_array_foreach(res.ports, i, obj)
			if (bridge != NULL && json_object_get(obj, "bridge") == NULL &&
				ovs_of(&res, jstr(obj, "name")) == NULL)
				json_object_set_new(obj, "bridge", json_string(bridge));
	}
	if (dry) {
		out = json_pack("{s:s, s:O, s:O, s:O, s:O}", "domain", res.domain, "ports",
			res.ports, "scsi", res.scsi, "ovs", res.ovs, "notes", res.notes);
		json_dumpf(out, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(out);
		lvx_result_free(&res);
		return 0;
	}
	print_notes(res.notes);
	added = json_array();
	out = json_array();
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		const char *kind = pass == 0 ? "port" : "scsi";
		json_t *arr = pass == 0 ? res.ports : res.scsi;
		char add[16], del[16];
		size_t i;

		snprintf(add, sizeof(add), "%s.add", kind);
		snprintf(del, sizeof(del), "%s.del", kind);
		json_array_foreach(arr, i, obj) {
			const char *name = json_string_value(json_object_get(obj, "name"));
			struct ctl_error err;
			json_t *result;
			int r = call(o, add, json_incref(obj), &result, &err);

			if (r == -EPROTO && err.err_no == EEXIST && exist_ok) {
				if (!o->json)
					printf("%s %s: exists, kept\n", kind, name);
				continue;
			}
			if (r != 0) {
				msg("%s %s: %s%s", kind, name, err.message,
					r == -ENOENT || r == -ECONNREFUSED ? " (is vhostd running?)"
									   : "");
				rollback(o, added);
				rc = 1;
				break;
			}
			json_array_append_new(added, json_pack("[s,s]", del, name));
			json_array_append_new(
				out, json_pack("{s:s, s:o}", "kind", kind, "object", result));
			if (!o->json)
				printf("%s %s: added (%s, vhostd %s, %lld queue%s%s%s)\n", kind,
					name, json_string_value(json_object_get(result, "socket")),
					json_string_value(json_object_get(result, "mode")),
					(long long)json_integer_value(
						json_object_get(result, "queues")),
					json_integer_value(json_object_get(result, "queues")) == 1
						? ""
						: "s",
					json_is_string(json_object_get(result, "bridge"))
						? ", bridge "
						: "",
					json_is_string(json_object_get(result, "bridge"))
						? json_string_value(
							  json_object_get(result, "bridge"))
						: "");
		}
	}
	if (rc == 0) {
		size_t i;
		json_t *e;

		json_array_foreach(res.ovs, i, e) {
			if (ovs_attach(o, e, exist_ok) < 0) {
				/* The attachments made so far go with their ports. */
				for (size_t k = 0; k < i; k++)
					ovs_detach(o, jstr(json_array_get(res.ovs, k), "port"));
				rollback(o, added);
				rc = 1;
				break;
			}
		}
	}
	if (rc == 0 && o->json) {
		json_t *doc = json_pack("{s:s, s:O, s:O, s:O}", "domain", res.domain, "added", out,
			"ovs", res.ovs, "notes", res.notes);

		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
	}
	json_decref(out);
	json_decref(added);
	lvx_result_free(&res);
	return rc;
}

static int
cmd_remove(const struct lv_opts *o, int argc, char **argv)
{
	const char *file = NULL;
	bool hook = false;
	struct lvx_result res;
	int rc = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--hook") == 0)
			hook = true;
		else if (file == NULL && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0))
			file = argv[i];
		else
			return usage("libvirt remove [--hook] FILE|-");
	}
	if (file == NULL)
		return usage("libvirt remove [--hook] FILE|-");
	rc = parse_file(file, &res, hook);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	/* Controllers first: a scsi.del takes its LUNs along. */
	for (int pass = 0; pass < 2; pass++) {
		const char *kind = pass == 0 ? "scsi" : "port";
		json_t *arr = pass == 0 ? res.scsi : res.ports, *obj;
		char del[16];
		size_t i;

		snprintf(del, sizeof(del), "%s.del", kind);
		json_array_foreach(arr, i, obj) {
			const char *name = json_string_value(json_object_get(obj, "name"));
			struct ctl_error err;
			json_t *result;
			int r;

			/* Any port of the domain on OVS (by the hook or by hand): its
			 * link port and rows go first. */
			if (pass == 1 && ovs_detach(o, name) < 0)
				rc = hook ? rc : 1;
			r = call(o, del, json_pack("{s:s}", "name", name), &result, &err);
			if (r == 0) {
				json_decref(result);
				if (!o->json)
					printf("%s %s: deleted\n", kind, name);
			} else if (r == -EPROTO && err.err_no == ENOENT) {
				if (!o->json)
					printf("%s %s: not there\n", kind, name);
			} else {
				msg("%s %s: %s", kind, name, err.message);
				/* A release hook must not fail a domain's shutdown. */
				rc = hook ? rc : 1;
			}
		}
	}
	lvx_result_free(&res);
	return rc;
}

static int
cmd_xml(const struct lv_opts *o, int argc, char **argv)
{
	const char **names;
	struct ctl_error err;
	json_t *config;
	char e[512], *xml;

	if (argc < 1)
		return usage("libvirt xml NAME...");
	if (call(o, "config.get", NULL, &config, &err) != 0) {
		msg("%s", err.message);
		return 1;
	}
	names = calloc((size_t)argc + 1, sizeof(*names));
	for (int i = 0; names != NULL && i < argc; i++)
		names[i] = argv[i];
	xml = names ? lvx_snippet(config, names, e, sizeof(e)) : NULL;
	free(names);
	json_decref(config);
	if (xml == NULL) {
		msg("%s", e);
		return 1;
	}
	fputs(xml, stdout);
	free(xml);
	return 0;
}

int
vhostctl_libvirt(const char *sock, int timeout_ms, bool json, int argc, char **argv)
{
	struct lv_opts o = {.sock = sock, .timeout_ms = timeout_ms, .json = json};

	if (argc >= 1 && strcmp(argv[0], "import") == 0)
		return cmd_import(&o, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "remove") == 0)
		return cmd_remove(&o, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "xml") == 0)
		return cmd_xml(&o, argc - 1, argv + 1);
	return usage("libvirt import|remove|xml ...");
}

/* ---- doctor ------------------------------------------------------------------------ */

/* The PMD threads' CPUs from pmd.show ("1,3"), or NULL. */
static char *
pmd_cpus(const struct lv_opts *o, char *buf, size_t len)
{
	struct ctl_error err;
	json_t *result, *t;
	size_t i, w = 0;

	if (call(o, "pmd.show", NULL, &result, &err) != 0)
		return NULL;
	buf[0] = '\0';
	json_array_foreach(result, i, t)
		if (json_is_integer(json_object_get(t, "cpu")) && w < len)
			w += (size_t)snprintf(buf + w, len - w, "%s%lld", w ? "," : "",
				(long long)json_integer_value(json_object_get(t, "cpu")));
	json_decref(result);
	return buf[0] ? buf : NULL;
}

int
vhostctl_doctor(const char *sock, int timeout_ms, bool json, int argc, char **argv)
{
	struct lv_opts o = {.sock = sock,
		.timeout_ms = timeout_ms < 0 || timeout_ms > 3000 ? 3000 : timeout_ms,
		.json = json};
	struct doctor_env env = {.root = ""};
	struct doctor_report rep = {0};
	char cpus[256];
	enum doctor_verdict worst;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			env.root = argv[++i];
		else
			return usage("doctor [--root DIR] [--json]");
	}
	env.pmd_cpus = pmd_cpus(&o, cpus, sizeof(cpus));
	if (env.pmd_cpus != NULL)
		doctor_add(&rep, "vhostd", DOCTOR_OK, NULL, "vhostd reachable at %s, PMD CPUs %s",
			sock, env.pmd_cpus);
	else
		doctor_add(&rep, "vhostd", DOCTOR_INFO, "make run (or: systemctl start vhostd)",
			"vhostd not reachable at %s: the CPU isolation checks cannot know the PMD "
			"CPUs",
			sock);
	doctor_run(&env, &rep);
	worst = doctor_worst(&rep);
	if (json) {
		json_t *doc = json_pack("{s:s, s:o}", "verdict", doctor_verdict_name(worst),
			"checks", doctor_report_json(&rep));

		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		for (size_t i = 0; i < rep.n; i++) {
			const struct doctor_item *it = &rep.items[i];
			char v[8];

			snprintf(v, sizeof(v), "%s", doctor_verdict_name(it->verdict));
			for (char *p = v; *p; p++)
				*p = (char)(*p - 'a' + 'A');
			printf("%-5s %-15s %s\n", v, it->check, it->detail);
			if (it->fix[0] != '\0' && it->verdict != DOCTOR_OK)
				printf("      %-15s fix: %s\n", "", it->fix);
		}
		printf("verdict: %s\n", doctor_verdict_name(worst));
	}
	doctor_report_free(&rep);
	return worst == DOCTOR_FAIL ? 1 : 0;
}
