/* SPDX-License-Identifier: BSD-3-Clause */
/* vhostctl ovs attach|detach|show: see vhostctl_ovs.h and ctl/API.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl_client.h"
#include "vhostctl_ovs.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define ATTACH_WAIT_MS 15000

struct ovs_opts {
	const char *sock;
	int timeout_ms;
	bool json;
};

static int
usage(const char *msg)
{
	fprintf(stderr, "vhostctl: %s\n", msg);
	return EXIT_USAGE;
}

static int
call(const struct ovs_opts *o, const char *method, json_t *params, json_t **result)
{
	struct ctl_error err = {0};
	int rc = ctl_client_call(o->sock, method, params, o->timeout_ms, result, &err);

	json_decref(params);
	if (rc < 0) {
		fprintf(stderr, "vhostctl: %s\n", err.message);
		return EXIT_FAIL;
	}
	return 0;
}

static const char *
str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "-";
}

static void
print_att(json_t *a)
{
	json_t *link = json_object_get(a, "link");
	json_t *applied = json_object_get(a, "applied");

	printf("%-16s %-12s %-20s %-16s %-20s %-9s %s%s%s\n", str(a, "port"), str(a, "bridge"),
		str(a, "state"), str(a, "interface"), str(link, "kind"), str(a, "iface-status"),
		json_is_false(applied) ? "(not applied yet) " : "",
		json_is_string(json_object_get(a, "reason")) ? str(a, "reason") : "",
		json_is_string(json_object_get(a, "ovs-error")) ? str(a, "ovs-error") : "");
}

static int
show(const struct ovs_opts *o, const char *port)
{
	json_t *r, *a;
	size_t i;

	if (call(o, "ovs.show", port ? json_pack("{s:s}", "port", port) : json_object(), &r))
		return EXIT_FAIL;
	if (o->json) {
		char *t = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		puts(t ? t : "null");
		free(t);
		json_decref(r);
		return 0;
	}
	if (port == NULL) {
		printf("OVSDB %s: %s", str(r, "db"), str(r, "state"));
		if (json_is_string(json_object_get(r, "error")))
			printf(" (%s)", str(r, "error"));
		printf("\nowner: %s\n", str(r, "owner"));
	}
	printf("%-16s %-12s %-20s %-16s %-20s %-9s %s\n", "PORT", "BRIDGE", "STATE", "INTERFACE",
		"LINK", "STATUS", "REASON");
	if (port != NULL)
		print_att(r);
	json_array_foreach(json_object_get(r, "attachments"), i, a)
		print_att(a);
	json_decref(r);
	return 0;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int
attach(const struct ovs_opts *o, int argc, char **argv)
{
	static const char use[] = "usage: ovs attach PORT BRIDGE [--iface-id ID] [--vm-uuid UUID] "
				  "[--vlan N] [--no-wait]";
	json_t *p, *r = NULL;
	bool wait = true;
	const char *state;
	char *end;
	int rc;

	if (argc < 2 || argv[0][0] == '-' || argv[1][0] == '-')
		return usage(use);
	p = json_pack("{s:s, s:s}", "port", argv[0], "bridge", argv[1]);
	if (p == NULL)
		return usage("PORT and BRIDGE must be valid UTF-8");
	for (int i = 2; i < argc; i++) {
		const char *key = NULL;

		if (strcmp(argv[i], "--no-wait") == 0) {
			wait = false;
			continue;
		}
		if (strcmp(argv[i], "--iface-id") == 0)
			key = "iface-id";
		else if (strcmp(argv[i], "--vm-uuid") == 0)
			key = "vm-uuid";
		else if (strcmp(argv[i], "--vlan") != 0) {
			json_decref(p);
			return usage(use);
		}
		if (i + 1 >= argc) {
			json_decref(p);
			return usage(use);
		}
		i++;
		if (key != NULL) {
			json_t *s = json_string(argv[i]);

			if (s == NULL) {
				json_decref(p);
				return usage("values must be valid UTF-8");
			}
			json_object_set_new(p, key, s);
		} else {
			long v = strtol(argv[i], &end, 10);

			if (*argv[i] == '\0' || *end != '\0') {
				json_decref(p);
				return usage("--vlan: not an integer");
			}
			json_object_set_new(p, "vlan", json_integer(v));
		}
	}
	if (call(o, "ovs.attach", p, &r))
		return EXIT_FAIL;
	for (int waited = 0; wait && waited < ATTACH_WAIT_MS; waited += 100) {
		state = str(r, "state");
		if ((strcmp(state, "attached") == 0 &&
			    json_is_true(json_object_get(r, "applied"))) ||
			strcmp(state, "error") == 0 || strcmp(state, "no-bridge") == 0 ||
			strcmp(state, "removed-by-operator") == 0)
			break;
		sleep_ms(100);
		json_decref(r);
		if (call(o, "ovs.show", json_pack("{s:s}", "port", argv[0]), &r))
			return EXIT_FAIL;
	}
	state = str(r, "state");
	if (o->json) {
		char *t = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		puts(t ? t : "null");
		free(t);
	} else if (strcmp(state, "attached") == 0) {
		printf("port %s attached to OVS bridge %s as interface %s (%s link)%s\n", argv[0],
			argv[1], str(r, "interface"), str(json_object_get(r, "link"), "kind"),
			json_is_true(json_object_get(r, "applied"))
				? ""
				: "; ovs-vswitchd has not applied it yet");
	} else {
		printf("port %s: %s%s%s\n", argv[0], state,
			json_is_string(json_object_get(r, "reason")) ? ": " : "",
			json_is_string(json_object_get(r, "reason")) ? str(r, "reason") : "");
	}
	rc = strcmp(state, "error") == 0 || strcmp(state, "no-bridge") == 0 ? EXIT_FAIL : 0;
	json_decref(r);
	return rc;
}

int
vhostctl_ovs(const char *sock, int timeout_ms, bool json, int argc, char **argv)
{
	struct ovs_opts o = {sock, timeout_ms, json};
	json_t *r;

	if (argc < 1)
		return usage("ovs: missing verb (attach, detach, show)");
	if (strcmp(argv[0], "attach") == 0)
		return attach(&o, argc - 1, argv + 1);
	if (strcmp(argv[0], "detach") == 0) {
		if (argc != 2)
			return usage("usage: ovs detach PORT");
		if (call(&o, "ovs.detach", json_pack("{s:s}", "port", argv[1]), &r))
			return EXIT_FAIL;
		json_decref(r);
		if (!json)
			printf("port %s detached from OVS\n", argv[1]);
		else
			puts("{}");
		return 0;
	}
	if (strcmp(argv[0], "show") == 0) {
		if (argc > 2)
			return usage("usage: ovs show [PORT]");
		return show(&o, argc == 2 ? argv[1] : NULL);
	}
	return usage("ovs: unknown verb (attach, detach, show)");
}
