/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * libFuzzer harness for the configuration schema: arbitrary bytes go
 * through config_parse_text(), config_parse_daemon() and a dry-run
 * config_apply(), as a config file given with -c would. Every object that
 * parses is also dumped and parsed again, alone and as a "set" on top of
 * the previous one, as the control socket does. Besides the sanitizers it
 * checks that:
 *  - every error message is valid UTF-8 (it is sent as a JSON string) and
 *    not empty;
 *  - a dumped object parses again and dumps identically;
 *  - a dry run never touches the datapath registry.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "ctl_server.h"
#include "datapath.h"
#include "log.h"

static void
check_error(const struct ctl_error *err)
{
	json_t *s;

	if (err->message[0] == '\0' || (err->code == 0 && err->err_no == 0))
		abort();
	s = json_string(err->message);
	if (s == NULL)
		abort(); /* not valid UTF-8 */
	json_decref(s);
}

static void
check_same_dump(json_t *a, json_t *b)
{
	if (a == NULL || b == NULL || !json_equal(a, b))
		abort();
}

static void
roundtrip_ports(json_t *ports, const char *run_dir)
{
	struct port_conf prev, c, c2;
	bool have_prev = false;
	struct ctl_error err;
	size_t i;
	json_t *o;

	json_array_foreach(ports, i, o) {
		json_t *d, *d2;

		/* As a "set" on top of the previous port. */
		if (have_prev) {
			memset(&err, 0, sizeof(err));
			if (config_parse_port(o, &prev, run_dir, &c, &err) < 0)
				check_error(&err);
		}
		memset(&err, 0, sizeof(err));
		if (config_parse_port(o, NULL, run_dir, &c, &err) < 0) {
			check_error(&err);
			continue;
		}
		d = config_dump_port(&c);
		memset(&err, 0, sizeof(err));
		if (config_parse_port(d, NULL, "/elsewhere", &c2, &err) < 0)
			abort();
		d2 = config_dump_port(&c2);
		check_same_dump(d, d2);
		json_decref(d);
		json_decref(d2);
		prev = c;
		have_prev = true;
	}
}

static void
roundtrip_others(json_t *doc)
{
	struct ctl_error err;
	size_t i;
	json_t *o;

	json_array_foreach(json_object_get(doc, "bridges"), i, o) {
		struct bridge_conf b, b2;
		json_t *d, *d2;

		memset(&err, 0, sizeof(err));
		if (config_parse_bridge(o, NULL, &b, &err) < 0) {
			check_error(&err);
			continue;
		}
		d = config_dump_bridge(&b);
		if (config_parse_bridge(d, NULL, &b2, &err) < 0)
			abort();
		d2 = config_dump_bridge(&b2);
		check_same_dump(d, d2);
		json_decref(d);
		json_decref(d2);
		/* A set with the same members gives the same object. */
		if (config_parse_bridge(o, &b, &b2, &err) < 0 || memcmp(&b, &b2, sizeof(b)) != 0)
			abort();
	}
	json_array_foreach(json_object_get(doc, "xconnects"), i, o) {
		struct xconnect_conf x, x2;
		json_t *d, *d2;

		memset(&err, 0, sizeof(err));
		if (config_parse_xconnect(o, &x, &err) < 0) {
			check_error(&err);
			continue;
		}
		d = config_dump_xconnect(&x);
		if (config_parse_xconnect(d, &x2, &err) < 0)
			abort();
		d2 = config_dump_xconnect(&x2);
		check_same_dump(d, d2);
		json_decref(d);
		json_decref(d2);
	}
	o = json_object_get(doc, "pmd");
	if (o != NULL) {
		struct pmd_conf p, p2;
		json_t *d, *d2;

		memset(&err, 0, sizeof(err));
		if (config_parse_pmd(o, NULL, &p, &err) < 0) {
			check_error(&err);
			return;
		}
		d = config_dump_pmd(&p);
		if (config_parse_pmd(d, NULL, &p2, &err) < 0)
			abort();
		d2 = config_dump_pmd(&p2);
		check_same_dump(d, d2);
		json_decref(d);
		json_decref(d2);
	}
}

static bool
registry_empty(void)
{
	for (int i = 0; i < DP_MAX_PORTS; i++)
		if (dp.ports[i] != NULL)
			return false;
	for (int i = 0; i < DP_MAX_BRIDGES; i++)
		if (dp.bridges[i] != NULL)
			return false;
	return !dp.pmd_configured;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daemon_conf d;
	struct ctl_error err;
	char *text;
	json_t *doc;
	int rc;

	vlog_level = VLOG_LVL_ERR;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&err, 0, sizeof(err));
	doc = config_parse_text(text, "fuzz.json", &err);
	free(text);
	if (doc == NULL) {
		check_error(&err);
		return 0;
	}
	if (!json_is_object(doc))
		abort();

	memset(&d, 0, sizeof(d));
	memset(&err, 0, sizeof(err));
	rc = config_parse_daemon(doc, &d, &err);
	if (rc < 0) {
		check_error(&err);
		/* Still validate the datapath sections, with the default run-dir. */
		snprintf(d.run_dir, sizeof(d.run_dir), "/run/vhostd");
	} else if (d.run_dir[0] != '/' || d.ctl_socket[0] == '\0') {
		abort();
	}
	d.n_extra_args = 0;

	memset(&err, 0, sizeof(err));
	if (config_apply(doc, &d, true, &err) < 0)
		check_error(&err);
	if (!registry_empty())
		abort();

	roundtrip_ports(json_object_get(doc, "ports"), d.run_dir);
	roundtrip_others(doc);
	json_decref(doc);
	return 0;
}
