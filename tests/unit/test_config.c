/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of dataplane/config.c: the config text format, the daemon
 * sections, every member of the port, bridge, cross-connect and pmd objects
 * ("add" and "set" semantics), dump/parse round trips and config_apply()
 * validation. Nothing here touches the datapath: config_apply() is only
 * run in dry-run mode or on documents that must fail validation.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "cpuset.h"
#include "ctl_server.h"
#include "datapath.h"
#include "log.h"

extern const char vhostd_default_config[];

#define RUN_DIR "/run/vhostd-test"

static struct ctl_error err;

/* ---- helpers --------------------------------------------------------------- */

static json_t *
js(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

	if (v == NULL)
		fail_msg("bad JSON in test: %s: %s", text, jerr.text);
	return v;
}

static void
assert_msg_has(const char *needle)
{
	if (strstr(err.message, needle) == NULL)
		fail_msg("error message \"%s\" lacks \"%s\"", err.message, needle);
}

/* @rc (of parsing @text) must be -EINVAL, INVALID_PARAMS, with both needles. */
static void
expect_invalid(int rc, const char *text, const char *needle1, const char *needle2)
{
	if (rc != -EINVAL)
		fail_msg("%s: expected -EINVAL, got %d", text, rc);
	assert_int_equal(err.code, JSONRPC_INVALID_PARAMS);
	if (needle1 != NULL)
		assert_msg_has(needle1);
	if (needle2 != NULL)
		assert_msg_has(needle2);
}

static int
port_from(const char *text, const struct port_conf *base, struct port_conf *out)
{
	json_t *o = js(text);
	int rc;

	memset(&err, 0, sizeof(err));
	rc = config_parse_port(o, base, RUN_DIR, out, &err);
	json_decref(o);
	return rc;
}

static void
port_ok(const char *text, const struct port_conf *base, struct port_conf *out)
{
	if (port_from(text, base, out) != 0)
		fail_msg("%s: unexpected error: %s", text, err.message);
}

/* Parsing @text must fail with INVALID_PARAMS and both needles in the message. */
static void
port_bad(const char *text, const struct port_conf *base, const char *needle1, const char *needle2)
{
	struct port_conf out;

	expect_invalid(port_from(text, base, &out), text, needle1, needle2);
	assert_int_equal(err.err_no, EINVAL);
}

static const char *const vhu = "\"name\": \"vhu0\", \"type\": \"vhost-user\", "
			       "\"socket\": \"vhu0.sock\"";

static void
port_bad_member(const char *member_json, const char *needle1, const char *needle2)
{
	char text[512];

	snprintf(text, sizeof(text), "{%s, %s}", vhu, member_json);
	port_bad(text, NULL, needle1, needle2);
}

static bool
trunk_has(const struct port_conf *c, unsigned int vid)
{
	return (c->trunks[vid >> 6] >> (vid & 63)) & 1;
}

/* ---- config text --------------------------------------------------------- */

static void
test_text_comments(void **state)
{
	const char *text = "// leading comment\n"
			   "{\n"
			   "\t// indented comment with \"quotes\" and { braces\n"
			   "  \"pmd\": {\"cpus\": \"auto\"},\n"
			   "    //\n"
			   "  \"ports\": [ \"// not a comment inside a string\" ]\n"
			   "}\n"
			   "// trailing comment without newline";
	json_t *doc;

	(void)state;
	doc = config_parse_text(text, "t.json", &err);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "ports"), 0)),
		"// not a comment inside a string");
	json_decref(doc);
}

static void
text_bad(const char *text, const char *needle)
{
	json_t *doc;

	memset(&err, 0, sizeof(err));
	doc = config_parse_text(text, "my.conf", &err);
	if (doc != NULL)
		fail_msg("accepted: %s", text);
	assert_int_equal(err.code, JSONRPC_INVALID_PARAMS);
	assert_msg_has(needle);
}

static void
test_text_errors(void **state)
{
	(void)state;
	/* Errors carry origin:line:column; comment lines still count. */
	text_bad("{\n\"a\": 1,\n\"b\": ,\n}", "my.conf:3:");
	text_bad("// c\n// c\n{\n  \"a\": 1\n  \"b\": 2\n}", "my.conf:5:");
	text_bad("{\"a\": 1 x}", "my.conf:1:9");
	text_bad("", "my.conf:");
	/* Only full-line comments: a trailing one is a syntax error. */
	text_bad("{\"a\": 1} // no", "my.conf:1:");
	text_bad("{\"a\": 1, /* no */ \"b\": 2}", "my.conf:1:");
	text_bad("{\"a\": 1, \"a\": 2}", "duplicate");
	text_bad("[1, 2]", "my.conf: expected a JSON object");
	text_bad("\"str\"", "my.conf:");
	text_bad("{} {}", "my.conf:1:");

	/* The message stays valid UTF-8 when jansson cuts a character in two. */
	text_bad("{\"a\": \"\\\xd1\x90\"}", "my.conf:1:");
	{
		json_t *s = json_string(err.message);

		if (s == NULL)
			fail_msg("message is not valid UTF-8: %s", err.message);
		json_decref(s);
	}
}

/* ---- daemon sections ----------------------------------------------------- */

static void
free_daemon(struct daemon_conf *d)
{
	/* The extra EAL arguments are stored inline: nothing to free. */
	d->n_extra_args = 0;
}

static int
daemon_from(const char *text, struct daemon_conf *d)
{
	json_t *doc = js(text);
	int rc;

	memset(d, 0, sizeof(*d));
	memset(&err, 0, sizeof(err));
	rc = config_parse_daemon(doc, d, &err);
	json_decref(doc);
	return rc;
}

static void
daemon_bad(const char *text, const char *needle1, const char *needle2)
{
	struct daemon_conf d;
	int rc = daemon_from(text, &d);

	free_daemon(&d);
	expect_invalid(rc, text, needle1, needle2);
}

static void
test_daemon_defaults(void **state)
{
	struct daemon_conf d;

	(void)state;
	assert_int_equal(daemon_from("{}", &d), 0);
	assert_string_equal(d.run_dir, "/run/vhostd");
	assert_string_equal(d.ctl_socket, "/run/vhostd/vhostd.sock");
	assert_string_equal(d.ctl_group, "vhostd");
	assert_int_equal(d.log_level, VLOG_LVL_INFO);
	assert_true(d.mlockall);
	assert_string_equal(d.file_prefix, "vhostd");
	assert_false(d.no_huge);
	assert_int_equal(d.memory_mb, 0);
	assert_int_equal(d.n_extra_args, 0);

	/* The control socket follows run-dir unless given. */
	assert_int_equal(
		daemon_from("{\"vhostd\": {\"run-dir\": \"/tmp/v\"}, \"eal\": {}}", &d), 0);
	assert_string_equal(d.ctl_socket, "/tmp/v/vhostd.sock");
}

static void
test_daemon_all_members(void **state)
{
	struct daemon_conf d;

	(void)state;
	assert_int_equal(
		daemon_from("{\"vhostd\": {\"run-dir\": \"/var/run/x\", "
			    "\"control-socket\": \"/tmp/ctl.sock\", "
			    "\"control-socket-group\": \"wheel\", \"log-level\": \"debug\", "
			    "\"mlockall\": false}, "
			    "\"eal\": {\"file-prefix\": \"vh-2\", \"no-huge\": true, "
			    "\"memory-mb\": 512, \"extra-args\": [\"--log-level=8\", \"-v\"]}, "
			    "\"pmd\": {}, \"bridges\": [], \"ports\": [], \"xconnects\": []}",
			&d),
		0);
	assert_string_equal(d.run_dir, "/var/run/x");
	assert_string_equal(d.ctl_socket, "/tmp/ctl.sock");
	assert_string_equal(d.ctl_group, "wheel");
	assert_int_equal(d.log_level, VLOG_LVL_DEBUG);
	assert_false(d.mlockall);
	assert_string_equal(d.file_prefix, "vh-2");
	assert_true(d.no_huge);
	assert_int_equal(d.memory_mb, 512);
	assert_int_equal(d.n_extra_args, 2);
	assert_string_equal(d.extra_args[0], "--log-level=8");
	assert_string_equal(d.extra_args[1], "-v");
	free_daemon(&d);
}

static void
test_daemon_errors(void **state)
{
	char text[600], longdir[200];

	(void)state;
	daemon_bad("{\"colour\": 1}", "config", "\"colour\" is not a known member");
	daemon_bad("{\"vhostd\": 1}", "vhostd: expected an object", NULL);
	daemon_bad("{\"eal\": []}", "eal: expected an object", NULL);
	daemon_bad("{\"vhostd\": {\"runDir\": \"/x\"}}", "vhostd", "\"runDir\"");
	daemon_bad("{\"eal\": {\"huge\": true}}", "eal", "\"huge\"");
	daemon_bad("{\"vhostd\": {\"run-dir\": 1}}", "\"run-dir\" must be a string", NULL);
	daemon_bad("{\"vhostd\": {\"run-dir\": \"run\"}}", "\"run-dir\" must be an absolute path",
		NULL);
	daemon_bad("{\"vhostd\": {\"log-level\": \"loud\"}}", "\"log-level\"", NULL);
	daemon_bad("{\"vhostd\": {\"log-level\": 3}}", "\"log-level\" must be a string", NULL);
	daemon_bad("{\"vhostd\": {\"mlockall\": \"yes\"}}", "\"mlockall\" must be true or false",
		NULL);
	daemon_bad("{\"vhostd\": {\"control-socket-group\": null}}", "control-socket-group", NULL);
	daemon_bad("{\"eal\": {\"no-huge\": 1}}", "\"no-huge\"", NULL);
	daemon_bad("{\"eal\": {\"memory-mb\": -1}}", "\"memory-mb\" must be between", NULL);
	daemon_bad("{\"eal\": {\"memory-mb\": 1048577}}", "\"memory-mb\" must be between", NULL);
	daemon_bad("{\"eal\": {\"memory-mb\": \"512\"}}", "\"memory-mb\" must be an integer", NULL);
	daemon_bad("{\"eal\": {\"memory-mb\": 1.5}}", "\"memory-mb\" must be an integer", NULL);
	daemon_bad("{\"eal\": {\"extra-args\": \"-v\"}}", "\"extra-args\"", NULL);
	daemon_bad("{\"eal\": {\"extra-args\": [\"-v\", 1]}}", "\"extra-args\"", NULL);
	daemon_bad("{\"eal\": {\"file-prefix\": \"a/b\"}}", "file-prefix", NULL);
	daemon_bad("{\"eal\": {\"file-prefix\": \"\"}}", "file-prefix", NULL);
	daemon_bad("{\"eal\": {\"file-prefix\": \"-x\"}}", "file-prefix", NULL);

	/* More extra args than fit. */
	{
		size_t n = snprintf(text, sizeof(text), "{\"eal\": {\"extra-args\": [");

		for (int i = 0; i <= CONFIG_MAX_EXTRA_ARGS; i++)
			n += snprintf(text + n, sizeof(text) - n, "%s\"-v\"", i ? "," : "");
		snprintf(text + n, sizeof(text) - n, "]}}");
		daemon_bad(text, "\"extra-args\"", NULL);
	}

	/* A run-dir too long to hold the default control socket. */
	memset(longdir, 'd', 100);
	longdir[0] = '/';
	longdir[100] = '\0';
	snprintf(text, sizeof(text), "{\"vhostd\": {\"run-dir\": \"%s\"}}", longdir);
	daemon_bad(text, "\"run-dir\" is too long", NULL);
}

/* ---- ports ---------------------------------------------------------------- */

static void
test_port_defaults(void **state)
{
	struct port_conf c;

	(void)state;
	port_ok("{\"name\": \"vhu0\", \"type\": \"vhost-user\", \"socket\": \"vhu0.sock\"}", NULL,
		&c);
	assert_string_equal(c.name, "vhu0");
	assert_int_equal(c.type, PORT_VHOST_USER);
	assert_string_equal(c.socket, RUN_DIR "/vhu0.sock");
	assert_false(c.client);
	assert_int_equal(c.queues, 1);
	assert_string_equal(c.bridge, "");
	assert_int_equal(c.tag, 0);
	assert_false(c.has_trunks);
	assert_false(c.has_mac);
	assert_int_equal(c.mtu, 1500);
	assert_true(c.csum);
	assert_true(c.mrg_rxbuf);
	assert_int_equal(c.single_copy, PORT_SC_ON);
	assert_true(c.admin_up);

	port_ok("{\"name\": \"s\", \"type\": \"sink\"}", NULL, &c);
	assert_int_equal(c.type, PORT_SINK);
	assert_string_equal(c.socket, "");
	port_ok("{\"name\": \"r\", \"type\": \"reflector\", \"socket\": \"ignored.sock\"}", NULL,
		&c);
	assert_int_equal(c.type, PORT_REFLECTOR);
	/* Only vhost-user ports have a socket. */
	assert_string_equal(c.socket, "");
}

static void
test_port_all_members(void **state)
{
	struct port_conf c;

	(void)state;
	port_ok("{\"name\": \"Vm_1.eth-0\", \"type\": \"vhost-user\", \"socket\": \"/tmp/a.sock\", "
		"\"mode\": \"client\", \"queues\": 16, \"bridge\": \"br-0\", \"tag\": 4094, "
		"\"mac\": \"52:54:00:AB:cd:0F\", \"mtu\": 9600, \"csum\": false, "
		"\"mrg-rxbuf\": false, \"admin-state\": \"down\"}",
		NULL, &c);
	assert_string_equal(c.name, "Vm_1.eth-0");
	assert_string_equal(c.socket, "/tmp/a.sock");
	assert_true(c.client);
	assert_int_equal(c.queues, 16);
	assert_string_equal(c.bridge, "br-0");
	assert_int_equal(c.tag, 4094);
	assert_true(c.has_mac);
	assert_memory_equal(c.mac, ((const uint8_t[]){0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f}), 6);
	assert_int_equal(c.mtu, 9600);
	assert_false(c.csum);
	assert_false(c.mrg_rxbuf);
	assert_false(c.admin_up);

	port_ok("{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"a.sock\", "
		"\"single-copy\": \"auto\"}",
		NULL, &c);
	assert_int_equal(c.single_copy, PORT_SC_AUTO);
	for (int k = 0; k < 2; k++) {
		struct port_conf set;

		port_ok(k ? "{\"single-copy\": true}" : "{\"single-copy\": false}", &c, &set);
		assert_int_equal(set.single_copy, k ? PORT_SC_ON : PORT_SC_OFF);
	}

	port_ok("{\"name\": \"t\", \"type\": \"sink\", \"mode\": \"server\", \"queues\": 1, "
		"\"trunks\": [0, 10, 4094, 10], \"mtu\": 68, \"admin-state\": \"up\"}",
		NULL, &c);
	assert_true(c.has_trunks);
	assert_true(trunk_has(&c, 0));
	assert_true(trunk_has(&c, 10));
	assert_true(trunk_has(&c, 4094));
	assert_false(trunk_has(&c, 11));
	assert_false(trunk_has(&c, 4095));
	assert_int_equal(c.mtu, 68);
	assert_true(c.admin_up);
	assert_false(c.client);

	/* An empty trunk list means "no trunks". */
	port_ok("{\"name\": \"t\", \"type\": \"sink\", \"trunks\": [], \"tag\": 5}", NULL, &c);
	assert_false(c.has_trunks);
	assert_int_equal(c.tag, 5);
	/* tag 0 is "no tag" and may go with trunks. */
	port_ok("{\"name\": \"t\", \"type\": \"sink\", \"trunks\": [7], \"tag\": 0}", NULL, &c);
	assert_true(c.has_trunks);
	assert_int_equal(c.tag, 0);
}

static void
test_port_required(void **state)
{
	(void)state;
	port_bad("{\"type\": \"sink\"}", NULL, "port", "\"name\" is required");
	port_bad("{\"name\": \"p\"}", NULL, "port p", "\"type\" is required");
	port_bad("{\"name\": \"p\", \"type\": \"vhost-user\"}", NULL, "port p",
		"\"socket\" is required");
	port_bad("{}", NULL, "\"name\" is required", NULL);
	port_bad("[]", NULL, "port: expected an object", NULL);
	port_bad("\"vhu0\"", NULL, "port: expected an object", NULL);
}

static void
test_port_unknown_member(void **state)
{
	(void)state;
	port_bad_member("\"colour\": \"blue\"", "\"colour\" is not a known member", NULL);
	port_bad_member("\"Name\": \"x\"", "\"Name\"", NULL);
	port_bad_member("\"mac_address\": null", "\"mac_address\"", NULL);
}

static void
test_port_wrong_types(void **state)
{
	(void)state;
	port_bad("{\"name\": 5, \"type\": \"sink\"}", NULL, "\"name\" must be a string", NULL);
	port_bad("{\"name\": null, \"type\": \"sink\"}", NULL, "\"name\" must be a string", NULL);
	port_bad("{\"name\": \"p\", \"type\": 1}", NULL, "port p", "\"type\" must be a string");
	port_bad("{\"name\": \"p\", \"type\": \"tap\"}", NULL, "port p",
		"\"type\" must be vhost-user, ethdev, sink or reflector");
	port_bad("{\"name\": \"p\", \"type\": \"Sink\"}", NULL, "\"type\"", NULL);
	/* "" is a (bad) value, not an absent member. */
	port_bad("{\"name\": \"p\", \"type\": \"\"}", NULL, "\"type\" must be vhost-user", NULL);
	port_bad_member("\"socket\": 1", "port vhu0", "\"socket\" must be a string");
	port_bad_member("\"socket\": null", "\"socket\" must be a string", NULL);
	port_bad_member("\"mode\": true", "\"mode\" must be a string", NULL);
	port_bad_member("\"mode\": \"listen\"", "\"mode\" must be server or client", NULL);
	port_bad_member("\"queues\": \"2\"", "\"queues\" must be an integer", NULL);
	port_bad_member("\"queues\": 2.0", "\"queues\" must be an integer", NULL);
	port_bad_member("\"bridge\": 0", "\"bridge\" must be a string", NULL);
	port_bad_member("\"bridge\": [\"br0\"]", "\"bridge\" must be a string", NULL);
	port_bad_member("\"tag\": \"10\"", "\"tag\" must be an integer", NULL);
	port_bad_member("\"tag\": null", "\"tag\" must be an integer", NULL);
	port_bad_member("\"trunks\": 10", "\"trunks\" must be an array", NULL);
	port_bad_member("\"trunks\": \"10,20\"", "\"trunks\" must be an array", NULL);
	port_bad_member("\"trunks\": [\"10\"]", "\"trunks\" must hold VLAN ids", NULL);
	port_bad_member("\"trunks\": [10, null]", "\"trunks\" must hold VLAN ids", NULL);
	port_bad_member("\"trunks\": [1.5]", "\"trunks\" must hold VLAN ids", NULL);
	port_bad_member("\"mac\": 525400123456", "\"mac\" must be a string", NULL);
	port_bad_member("\"mtu\": 1500.5", "\"mtu\" must be an integer", NULL);
	port_bad_member("\"mtu\": \"1500\"", "\"mtu\" must be an integer", NULL);
	port_bad_member("\"csum\": \"yes\"", "\"csum\" must be true or false", NULL);
	port_bad_member("\"csum\": 1", "\"csum\" must be true or false", NULL);
	port_bad_member("\"mrg-rxbuf\": null", "\"mrg-rxbuf\" must be true or false", NULL);
	port_bad_member(
		"\"single-copy\": \"on\"", "\"single-copy\" must be true, false or \"auto\"", NULL);
	port_bad_member("\"single-copy\": \"Auto\"", "\"single-copy\"", NULL);
	port_bad_member("\"single-copy\": 2", "\"single-copy\"", NULL);
	port_bad_member("\"single-copy\": null", "\"single-copy\"", NULL);
	port_bad_member("\"admin-state\": true", "\"admin-state\" must be a string", NULL);
	port_bad_member("\"admin-state\": \"UP\"", "\"admin-state\" must be up or down", NULL);
	port_bad_member("\"admin-state\": \"\"", "\"admin-state\"", NULL);
	port_bad_member("\"mode\": \"\"", "\"mode\"", NULL);
}

static void
test_port_ranges(void **state)
{
	struct port_conf c;

	(void)state;
	port_bad_member("\"queues\": 0", "\"queues\" must be between 1 and 16", NULL);
	port_bad_member("\"queues\": 17", "\"queues\" must be between 1 and 16", NULL);
	port_bad_member("\"queues\": -1", "\"queues\"", NULL);
	port_bad_member("\"queues\": 4294967297", "\"queues\"", NULL);
	port_bad_member("\"mtu\": 67", "\"mtu\" must be between 68 and 9600", NULL);
	port_bad_member("\"mtu\": 9601", "\"mtu\" must be between 68 and 9600", NULL);
	port_bad_member("\"mtu\": 65536", "\"mtu\"", NULL);
	port_bad_member("\"tag\": -1", "\"tag\" must be between 0 and 4094", NULL);
	port_bad_member("\"tag\": 4095", "\"tag\" must be between 0 and 4094", NULL);
	port_bad_member("\"tag\": 65546", "\"tag\"", NULL);
	port_bad_member("\"trunks\": [4095]", "\"trunks\" must hold VLAN ids 0-4094", NULL);
	port_bad_member("\"trunks\": [-1]", "\"trunks\"", NULL);
	port_bad_member("\"trunks\": [10, 9223372036854775807]", "\"trunks\"", NULL);
	port_bad_member(
		"\"tag\": 10, \"trunks\": [20]", "\"tag\" and \"trunks\" cannot both be set", NULL);

	port_ok("{\"name\": \"p\", \"type\": \"sink\", \"queues\": 1, \"mtu\": 68, \"tag\": 0}",
		NULL, &c);
	port_ok("{\"name\": \"p\", \"type\": \"sink\", \"queues\": 16, \"mtu\": 9600, \"tag\": 1}",
		NULL, &c);
}

static void
test_port_mac(void **state)
{
	static const char *const bad[] = {
		"52:54:00:12:34",
		"52:54:00:12:34:5",
		"52:54:00:12:34:567",
		"52:54:00:12:34:5g",
		"52-54-00-12-34-56",
		"525400123456",
		"52:54:00:12:34:56:",
		"52:54:00:12:34:56 ",
		" 52:54:00:12:34:56",
		"52:54:0:012:34:56",
		" 2:54:00:12:34:56",
		"52: 4:00:12:34:56",
		"+2:54:00:12:34:56",
		"52:-4:00:12:34:56",
		"0x:54:00:12:34:56",
		"52:54::0:12:34:56",
		"01:00:5e:00:00:01", /* multicast */
		"33:33:00:00:00:01",
		"ff:ff:ff:ff:ff:ff", /* broadcast */
		"03:00:00:00:00:00",
	};
	struct port_conf c;
	char text[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{%s, \"mac\": \"%s\"}", vhu, bad[i]);
		if (port_from(text, NULL, &c) != -EINVAL)
			fail_msg("MAC \"%s\" accepted", bad[i]);
		assert_msg_has("port vhu0");
		assert_msg_has("\"mac\" must be a unicast MAC");
	}
	snprintf(text, sizeof(text), "{%s, \"mac\": \"02:00:00:00:00:00\"}", vhu);
	port_ok(text, NULL, &c);
	assert_true(c.has_mac);
	assert_memory_equal(c.mac, ((const uint8_t[]){2, 0, 0, 0, 0, 0}), 6);
	snprintf(text, sizeof(text), "{%s, \"mac\": \"fe:FF:ff:ff:ff:ff\"}", vhu);
	port_ok(text, NULL, &c);
	assert_memory_equal(c.mac, ((const uint8_t[]){0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}), 6);
	/* null: no MAC; "" too, as for "bridge". */
	snprintf(text, sizeof(text), "{%s, \"mac\": null}", vhu);
	port_ok(text, NULL, &c);
	assert_false(c.has_mac);
	snprintf(text, sizeof(text), "{%s, \"mac\": \"\"}", vhu);
	port_ok(text, NULL, &c);
	assert_false(c.has_mac);
}

static void
test_port_socket(void **state)
{
	char text[512], path[200];
	struct port_conf c;

	(void)state;
	port_ok("{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"sub/dir/a.sock\"}", NULL,
		&c);
	assert_string_equal(c.socket, RUN_DIR "/sub/dir/a.sock");
	port_ok("{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"/abs/a.sock\"}", NULL,
		&c);
	assert_string_equal(c.socket, "/abs/a.sock");
	port_bad("{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"\"}", NULL, "port a",
		"\"socket\" must not be empty");

	/* 107 characters fit in sun_path, 108 do not. */
	memset(path, 's', sizeof(path));
	path[0] = '/';
	path[DP_SOCK_MAX - 1] = '\0';
	snprintf(text, sizeof(text),
		"{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"%s\"}", path);
	port_ok(text, NULL, &c);
	assert_int_equal(strlen(c.socket), DP_SOCK_MAX - 1);
	path[DP_SOCK_MAX - 1] = 's';
	path[DP_SOCK_MAX] = '\0';
	snprintf(text, sizeof(text),
		"{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"%s\"}", path);
	port_bad(text, NULL, "port a", "\"socket\" is too long");

	/* Short enough alone, too long once under run-dir. */
	memset(path, 'r', sizeof(path));
	path[DP_SOCK_MAX - sizeof(RUN_DIR) - 1] = '\0'; /* run_dir + '/' + this = 107 */
	snprintf(text, sizeof(text),
		"{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"%s\"}", path);
	port_ok(text, NULL, &c);
	assert_int_equal(strlen(c.socket), DP_SOCK_MAX - 1);
	path[DP_SOCK_MAX - sizeof(RUN_DIR) - 1] = 'r';
	path[DP_SOCK_MAX - sizeof(RUN_DIR)] = '\0';
	snprintf(text, sizeof(text),
		"{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"%s\"}", path);
	port_bad(text, NULL, "port a", "\"socket\" is too long once under run-dir");

	/* An embedded NUL would silently shorten the path. */
	port_bad("{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"/x\\u0000y\"}", NULL,
		"\"socket\" is too long or contains NUL", NULL);
}

static void
test_port_names(void **state)
{
	static const char *const bad[] = {
		"",
		"-p",
		"a b",
		"a/b",
		"a:b",
		"a,b",
		"p\\u00e9",
		"tab\\t",
		"a\\\"b",
		"a%sb",
	};
	char text[256], name[64];
	struct port_conf c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"name\": \"%s\", \"type\": \"sink\"}", bad[i]);
		if (port_from(text, NULL, &c) != -EINVAL)
			fail_msg("port name \"%s\" accepted", bad[i]);
		assert_msg_has("port name");
		assert_msg_has("use 1-31 letters, digits");
	}
	port_bad("{\"name\": \"a\\u0000b\", \"type\": \"sink\"}", NULL, "\"name\"", NULL);

	memset(name, 'n', sizeof(name));
	name[DP_NAME_MAX - 1] = '\0';
	snprintf(text, sizeof(text), "{\"name\": \"%s\", \"type\": \"sink\"}", name);
	port_ok(text, NULL, &c);
	assert_string_equal(c.name, name);
	name[DP_NAME_MAX - 1] = 'n';
	name[DP_NAME_MAX] = '\0';
	snprintf(text, sizeof(text), "{\"name\": \"%s\", \"type\": \"sink\"}", name);
	port_bad(text, NULL, "\"name\" is too long", NULL);
	port_ok("{\"name\": \"0.a_b-C\", \"type\": \"sink\"}", NULL, &c);

	/* Bridge names follow the same rules. */
	port_bad("{\"name\": \"p\", \"type\": \"sink\", \"bridge\": \"br 0\"}", NULL, "bridge name",
		NULL);
	port_bad("{\"name\": \"p\", \"type\": \"sink\", \"bridge\": \"-br\"}", NULL, "bridge name",
		NULL);
	snprintf(text, sizeof(text), "{\"name\": \"p\", \"type\": \"sink\", \"bridge\": \"%s\"}",
		name);
	port_bad(text, NULL, "port p", "\"bridge\" is too long");
	/* "" is "no bridge", like null. */
	port_ok("{\"name\": \"p\", \"type\": \"sink\", \"bridge\": \"\"}", NULL, &c);
	assert_string_equal(c.bridge, "");
}

static void
test_port_set(void **state)
{
	struct port_conf base, c;

	(void)state;
	port_ok("{\"name\": \"vhu0\", \"type\": \"vhost-user\", \"socket\": \"vhu0.sock\", "
		"\"mode\": \"client\", \"queues\": 4, \"bridge\": \"br0\", \"tag\": 10, "
		"\"mac\": \"52:54:00:00:00:01\", \"mtu\": 9000, \"csum\": false}",
		NULL, &base);

	/* Nothing but the name: an identical copy; name and type are not required. */
	port_ok("{\"name\": \"vhu0\"}", &base, &c);
	assert_memory_equal(&c, &base, sizeof(c));
	port_ok("{}", &base, &c);
	assert_memory_equal(&c, &base, sizeof(c));

	/* Absent members keep their values. */
	port_ok("{\"name\": \"vhu0\", \"mtu\": 1500, \"admin-state\": \"down\"}", &base, &c);
	assert_int_equal(c.mtu, 1500);
	assert_false(c.admin_up);
	assert_int_equal(c.type, PORT_VHOST_USER);
	assert_string_equal(c.socket, RUN_DIR "/vhu0.sock");
	assert_true(c.client);
	assert_int_equal(c.queues, 4);
	assert_string_equal(c.bridge, "br0");
	assert_int_equal(c.tag, 10);
	assert_true(c.has_mac);
	assert_false(c.csum);
	assert_true(c.mrg_rxbuf);

	/* null removes the bridge and the MAC. */
	port_ok("{\"name\": \"vhu0\", \"bridge\": null, \"mac\": null}", &base, &c);
	assert_string_equal(c.bridge, "");
	assert_false(c.has_mac);
	assert_int_equal(c.tag, 10);
	assert_int_equal(c.mtu, 9000);

	/* A relative socket is resolved again. */
	port_ok("{\"socket\": \"new.sock\", \"mode\": \"server\"}", &base, &c);
	assert_string_equal(c.socket, RUN_DIR "/new.sock");
	assert_false(c.client);

	/* Switching from access to trunk needs the tag cleared in the same set. */
	port_bad("{\"name\": \"vhu0\", \"trunks\": [20, 30]}", &base, "port vhu0",
		"\"tag\" and \"trunks\" cannot both be set");
	port_ok("{\"name\": \"vhu0\", \"trunks\": [20, 30], \"tag\": 0}", &base, &c);
	assert_true(c.has_trunks);
	assert_true(trunk_has(&c, 20));
	assert_true(trunk_has(&c, 30));
	assert_false(trunk_has(&c, 10));
	/* ...and back: "trunks": null removes them. */
	base = c;
	port_bad("{\"tag\": 5}", &base, "cannot both be set", NULL);
	port_ok("{\"tag\": 5, \"trunks\": null}", &base, &c);
	assert_false(c.has_trunks);
	assert_false(trunk_has(&c, 20));
	assert_int_equal(c.tag, 5);
	/* A new trunk list replaces the old one. */
	port_ok("{\"trunks\": [40]}", &base, &c);
	assert_true(trunk_has(&c, 40));
	assert_false(trunk_has(&c, 20));

	/* A set is validated like an add. */
	port_bad("{\"name\": \"vhu0\", \"queues\": 0}", &base, "port vhu0", "\"queues\"");
	port_bad("{\"name\": \"vhu0\", \"speed\": 10}", &base, "\"speed\"", NULL);
	port_bad("{\"name\": \"vhu0\", \"mac\": \"01:00:00:00:00:00\"}", &base, "\"mac\"", NULL);

	/* A sink's set keeps it a sink without a socket. */
	port_ok("{\"name\": \"s\", \"type\": \"sink\", \"bridge\": \"br0\"}", NULL, &base);
	port_ok("{\"mtu\": 2000}", &base, &c);
	assert_int_equal(c.type, PORT_SINK);
	assert_string_equal(c.socket, "");
	assert_string_equal(c.bridge, "br0");
	port_bad("{\"type\": \"\"}", &base, "port s", "\"type\" must be");
	port_bad("{\"mode\": \"\"}", &base, "port s", "\"mode\" must be");
	port_bad("{\"admin-state\": \"\"}", &base, "port s", "\"admin-state\" must be");
	/* Turning it into a vhost-user port needs a socket. */
	port_bad("{\"type\": \"vhost-user\"}", &base, "\"socket\" is required", NULL);
}

/* ---- bridges, cross-connects, pmd ---------------------------------------- */

static int
bridge_from(const char *text, const struct bridge_conf *base, struct bridge_conf *out)
{
	json_t *o = js(text);
	int rc;

	memset(&err, 0, sizeof(err));
	rc = config_parse_bridge(o, base, out, &err);
	json_decref(o);
	return rc;
}

static void
test_bridge(void **state)
{
	struct bridge_conf b, c;

	(void)state;
	assert_int_equal(bridge_from("{\"name\": \"br0\"}", NULL, &b), 0);
	assert_string_equal(b.name, "br0");
	assert_int_equal(b.mac_aging_s, 300);
	assert_int_equal(b.mac_table_size, 8192);
	assert_int_equal(
		bridge_from("{\"name\": \"br1\", \"mac-aging-s\": 1, \"mac-table-size\": 64}", NULL,
			&b),
		0);
	assert_int_equal(b.mac_aging_s, 1);
	assert_int_equal(b.mac_table_size, 64);
	assert_int_equal(
		bridge_from("{\"mac-aging-s\": 1000000, \"mac-table-size\": 1048576}", &b, &c), 0);
	assert_string_equal(c.name, "br1");
	assert_int_equal(c.mac_aging_s, 1000000);
	assert_int_equal(c.mac_table_size, 1 << 20);
	assert_int_equal(bridge_from("{\"mac-aging-s\": 60}", &b, &c), 0);
	assert_int_equal(c.mac_aging_s, 60);
	assert_int_equal(c.mac_table_size, 64);

	assert_int_equal(bridge_from("{\"mac-aging-s\": 60}", NULL, &c), -EINVAL);
	assert_msg_has("\"name\" is required");
	assert_int_equal(bridge_from("{\"name\": \"br0\", \"stp\": true}", NULL, &c), -EINVAL);
	assert_msg_has("\"stp\" is not a known member");
	assert_int_equal(bridge_from("{\"name\": \"br 0\"}", NULL, &c), -EINVAL);
	assert_msg_has("bridge name");
	assert_int_equal(bridge_from("{\"name\": \"br0\", \"mac-aging-s\": 0}", NULL, &c), -EINVAL);
	assert_msg_has("bridge br0: \"mac-aging-s\" must be between 1 and 1000000");
	assert_int_equal(
		bridge_from("{\"name\": \"br0\", \"mac-aging-s\": 1000001}", NULL, &c), -EINVAL);
	assert_int_equal(
		bridge_from("{\"name\": \"br0\", \"mac-aging-s\": \"5\"}", NULL, &c), -EINVAL);
	assert_msg_has("must be an integer");
	assert_int_equal(
		bridge_from("{\"name\": \"br0\", \"mac-table-size\": 63}", NULL, &c), -EINVAL);
	assert_msg_has("\"mac-table-size\" must be between 64 and 1048576");
	assert_int_equal(
		bridge_from("{\"name\": \"br0\", \"mac-table-size\": 1048577}", NULL, &c), -EINVAL);
	assert_int_equal(bridge_from("[]", NULL, &c), -EINVAL);
	assert_msg_has("bridge: expected an object");
}

static int
xc_from(const char *text, struct xconnect_conf *out)
{
	json_t *o = js(text);
	int rc;

	memset(&err, 0, sizeof(err));
	rc = config_parse_xconnect(o, out, &err);
	json_decref(o);
	return rc;
}

static void
test_xconnect(void **state)
{
	static const char *const bad[] = {
		"{\"ports\": [\"a\", \"b\"]}",
		"{\"name\": \"x\"}",
		"{\"name\": \"x\", \"ports\": []}",
		"{\"name\": \"x\", \"ports\": [\"a\"]}",
		"{\"name\": \"x\", \"ports\": [\"a\", \"b\", \"c\"]}",
		"{\"name\": \"x\", \"ports\": [\"a\", 1]}",
		"{\"name\": \"x\", \"ports\": \"a,b\"}",
		"{\"name\": \"x\", \"ports\": {\"a\": \"b\"}}",
		"{\"name\": \"x\", \"ports\": [\"a\", \"b c\"]}",
		"{\"name\": \"x\", \"ports\": [\"\", \"b\"]}",
		"{\"name\": \"x y\", \"ports\": [\"a\", \"b\"]}",
		"{\"name\": \"x\", \"ports\": [\"a\", \"b\"], \"mtu\": 1}",
		/* Too long: must be refused, not truncated into a valid name. */
		"{\"name\": \"x\", \"ports\": [\"p123456789012345678901234567890123\", \"b\"]}",
		"{\"name\": \"x\", \"ports\": [\"a\", \"b\\u0000c\"]}",
	};
	struct xconnect_conf x;

	(void)state;
	assert_int_equal(xc_from("{\"name\": \"xc0\", \"ports\": [\"vhu0\", \"vhu1\"]}", &x), 0);
	assert_string_equal(x.name, "xc0");
	assert_string_equal(x.ports[0], "vhu0");
	assert_string_equal(x.ports[1], "vhu1");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (xc_from(bad[i], &x) != -EINVAL)
			fail_msg("xconnect %s accepted", bad[i]);
		assert_int_equal(err.code, JSONRPC_INVALID_PARAMS);
	}
	xc_from("{\"name\": \"x\", \"ports\": [\"a\"]}", &x);
	assert_msg_has("xconnect: \"ports\" must be an array of two port names");
	xc_from("{\"name\": \"x\", \"ports\": [\"a\", \"b\"], \"mtu\": 1}", &x);
	assert_msg_has("\"mtu\"");
}

static int
pmd_from(const char *text, const struct pmd_conf *base, struct pmd_conf *out)
{
	json_t *o = js(text);
	int rc;

	memset(&err, 0, sizeof(err));
	rc = config_parse_pmd(o, base, out, &err);
	json_decref(o);
	return rc;
}

static void
test_pmd(void **state)
{
	int last = cpuset_last_allowed();
	struct pmd_conf p, q;
	char text[128], cpus[64];

	(void)state;
	assert_true(last >= 0);
	assert_int_equal(pmd_from("{}", NULL, &p), 0);
	assert_string_equal(p.cpus_text, "auto");
	assert_int_equal(p.gov.max_sleep_us, 0);
	assert_int_equal(CPU_COUNT(&p.cpus), 1);
	assert_true(CPU_ISSET(last, &p.cpus));
	assert_int_equal(pmd_from("{\"cpus\": \"auto\", \"max-sleep-us\": 10000}", NULL, &p), 0);
	assert_int_equal(p.gov.max_sleep_us, 10000);
	assert_true(CPU_ISSET(last, &p.cpus));

	snprintf(cpus, sizeof(cpus), "%d,^%d,%d", last, last + 1, last);
	snprintf(text, sizeof(text), "{\"cpus\": \"%s\"}", cpus);
	assert_int_equal(pmd_from(text, NULL, &p), 0);
	assert_int_equal(CPU_COUNT(&p.cpus), 1);
	assert_true(CPU_ISSET(last, &p.cpus));
	assert_string_equal(p.cpus_text, cpus); /* kept as given */

	/* set: absent members keep their values. */
	assert_int_equal(pmd_from("{\"max-sleep-us\": 50}", &p, &q), 0);
	assert_string_equal(q.cpus_text, p.cpus_text);
	assert_true(CPU_EQUAL(&q.cpus, &p.cpus));
	assert_int_equal(q.gov.max_sleep_us, 50);
	assert_int_equal(pmd_from("{\"cpus\": \"auto\"}", &q, &p), 0);
	assert_int_equal(p.gov.max_sleep_us, 50);

	assert_int_equal(pmd_from("{\"cpus\": \"0-3,^9x\"}", NULL, &p), -EINVAL);
	assert_msg_has("pmd: \"cpus\": CPU list \"0-3,^9x\": bad syntax");
	assert_int_equal(pmd_from("{\"cpus\": \"\"}", NULL, &p), -EINVAL);
	assert_msg_has("pmd: \"cpus\": empty CPU list");
	assert_int_equal(pmd_from("{\"cpus\": \"AUTO\"}", NULL, &p), -EINVAL);
	assert_int_equal(pmd_from("{\"cpus\": 3}", NULL, &p), -EINVAL);
	assert_msg_has("\"cpus\" must be a string");
	assert_int_equal(pmd_from("{\"cpus\": \"1023\"}", NULL, &p), -EINVAL);
	assert_msg_has("pmd: \"cpus\": CPU 1023 does not exist");
	assert_int_equal(pmd_from("{\"cpus\": \"4096\"}", NULL, &p), -EINVAL);
	assert_msg_has("too large");
	assert_int_equal(pmd_from("{\"max-sleep-us\": 10001}", NULL, &p), -EINVAL);
	assert_msg_has("pmd: \"max-sleep-us\" must be between 0 and 10000");
	assert_int_equal(pmd_from("{\"max-sleep-us\": -1}", NULL, &p), -EINVAL);
	assert_int_equal(pmd_from("{\"threads\": 2}", NULL, &p), -EINVAL);
	assert_msg_has("pmd: \"threads\" must be an array");
	assert_int_equal(pmd_from("{\"workers\": 2}", NULL, &p), -EINVAL);
	assert_msg_has("pmd: \"workers\" is not a known member");
	assert_int_equal(pmd_from("[]", NULL, &p), -EINVAL);

	/* The governor: defaults like KVM's halt polling, modes, per-thread overrides. */
	assert_int_equal(pmd_from("{}", NULL, &p), 0);
	assert_int_equal(p.gov.mode, PMD_MODE_HALT_POLL);
	assert_int_equal(p.gov.halt_poll_ns, 500000);
	assert_int_equal(p.gov.grow, 2);
	assert_int_equal(p.gov.grow_start_ns, 10000);
	assert_int_equal(p.gov.shrink, 0);
	assert_int_equal(p.n_threads, 0);
	assert_int_equal(pmd_from("{\"mode\": \"interrupt\", \"halt-poll-ns\": 200000, "
				  "\"halt-poll-grow\": 4, \"halt-poll-shrink\": 2}",
				 NULL, &p),
		0);
	assert_int_equal(p.gov.mode, PMD_MODE_INTERRUPT);
	assert_int_equal(p.gov.halt_poll_ns, 200000);
	assert_int_equal(p.gov.grow, 4);
	assert_int_equal(p.gov.shrink, 2);
	assert_int_equal(pmd_from("{\"mode\": \"busy\"}", NULL, &p), -EINVAL);
	assert_msg_has("pmd: \"mode\" must be \"poll\", \"halt-poll\" or \"interrupt\"");
	assert_int_equal(pmd_from("{\"halt-poll-ns\": 100000001}", NULL, &p), -EINVAL);
	assert_msg_has("\"halt-poll-ns\" must be between 0 and 100000000");
	assert_int_equal(pmd_from("{\"threads\": [{\"cpu\": 1, \"mode\": \"poll\"}, "
				  "{\"cpu\": 0, \"halt-poll-ns\": 0}]}",
				 NULL, &p),
		0);
	assert_int_equal(p.n_threads, 2);
	assert_int_equal(p.threads[0].cpu, 1);
	assert_int_equal(p.threads[0].mode, PMD_MODE_POLL);
	assert_int_equal(p.threads[0].halt_poll_ns, -1);
	assert_int_equal(p.threads[1].mode, -1);
	assert_int_equal(p.threads[1].halt_poll_ns, 0);
	{
		struct pmd_gov g;

		dp_pmd_gov_of(&p, 1, &g);
		assert_int_equal(g.mode, PMD_MODE_POLL);
		assert_int_equal(g.halt_poll_ns, 500000);
		dp_pmd_gov_of(&p, 0, &g);
		assert_int_equal(g.mode, PMD_MODE_HALT_POLL);
		assert_int_equal(g.halt_poll_ns, 0);
	}
	assert_int_equal(pmd_from("{\"threads\": [{\"mode\": \"poll\"}]}", NULL, &p), -EINVAL);
	assert_msg_has("pmd: threads[]: \"cpu\" is required");
	assert_int_equal(
		pmd_from("{\"threads\": [{\"cpu\": 1}, {\"cpu\": 1}]}", NULL, &p), -EINVAL);
	assert_msg_has("appears twice");
	assert_int_equal(
		pmd_from("{\"threads\": [{\"cpu\": 1, \"max-sleep-us\": 3}]}", NULL, &p), -EINVAL);
	assert_msg_has("pmd: threads[]: \"max-sleep-us\" is not a known member");
}

/* ---- dump / parse round trips --------------------------------------------- */

static void
port_roundtrip(const char *text)
{
	struct port_conf a, b;
	json_t *dump;
	int rc;

	port_ok(text, NULL, &a);
	dump = config_dump_port(&a);
	assert_non_null(dump);
	memset(&err, 0, sizeof(err));
	/* Absolute sockets come back as they are, whatever run-dir is. */
	rc = config_parse_port(dump, NULL, "/elsewhere", &b, &err);
	if (rc != 0) {
		char *s = json_dumps(dump, 0);

		fail_msg("re-parsing %s: %s", s, err.message);
	}
	json_decref(dump);
	if (memcmp(&a, &b, sizeof(a)) != 0)
		fail_msg("round trip of %s changed the port", text);
}

static void
test_dump_roundtrip(void **state)
{
	struct bridge_conf br, br2;
	struct xconnect_conf xc, xc2;
	struct pmd_conf pm, pm2;
	json_t *dump;

	(void)state;
	port_roundtrip("{\"name\": \"vhu0\", \"type\": \"vhost-user\", \"socket\": \"vhu0.sock\"}");
	port_roundtrip("{\"name\": \"Vm_1.eth-0\", \"type\": \"vhost-user\", \"socket\": "
		       "\"/tmp/a.sock\", \"mode\": \"client\", \"queues\": 16, \"bridge\": "
		       "\"br-0\", \"tag\": 4094, \"mac\": \"52:54:00:AB:cd:0F\", \"mtu\": 9600, "
		       "\"csum\": false, \"mrg-rxbuf\": false, \"admin-state\": \"down\"}");
	port_roundtrip("{\"name\": \"t\", \"type\": \"vhost-user\", \"socket\": \"t.sock\", "
		       "\"bridge\": \"br0\", \"trunks\": [0, 1, 63, 64, 100, 4094]}");
	port_roundtrip("{\"name\": \"s\", \"type\": \"sink\", \"bridge\": \"br0\", \"tag\": 7, "
		       "\"mac\": \"02:00:00:00:00:07\", \"mtu\": 68}");
	port_roundtrip("{\"name\": \"r\", \"type\": \"reflector\", \"admin-state\": \"down\"}");
	port_roundtrip("{\"name\": \"a\", \"type\": \"vhost-user\", \"socket\": \"a.sock\", "
		       "\"single-copy\": \"auto\"}");
	port_roundtrip("{\"name\": \"o\", \"type\": \"vhost-user\", \"socket\": \"o.sock\", "
		       "\"single-copy\": false}");

	assert_int_equal(
		bridge_from("{\"name\": \"br0\", \"mac-aging-s\": 17, \"mac-table-size\": 100}",
			NULL, &br),
		0);
	dump = config_dump_bridge(&br);
	assert_int_equal(config_parse_bridge(dump, NULL, &br2, &err), 0);
	json_decref(dump);
	assert_memory_equal(&br, &br2, sizeof(br));

	assert_int_equal(xc_from("{\"name\": \"xc\", \"ports\": [\"a\", \"b\"]}", &xc), 0);
	dump = config_dump_xconnect(&xc);
	assert_int_equal(config_parse_xconnect(dump, &xc2, &err), 0);
	json_decref(dump);
	assert_memory_equal(&xc, &xc2, sizeof(xc));

	assert_int_equal(pmd_from("{\"max-sleep-us\": 250}", NULL, &pm), 0);
	dump = config_dump_pmd(&pm);
	assert_int_equal(config_parse_pmd(dump, NULL, &pm2, &err), 0);
	json_decref(dump);
	assert_memory_equal(&pm, &pm2, sizeof(pm));
}

/* ---- scsi controllers and LUNs -------------------------------------------- */

static int
scsi_from(const char *text, struct scsi_conf *out)
{
	json_t *o = js(text);
	int rc;

	memset(&err, 0, sizeof(err));
	rc = config_parse_scsi(o, RUN_DIR, out, &err);
	json_decref(o);
	return rc;
}

static void
scsi_bad(const char *text, const char *needle1, const char *needle2)
{
	struct scsi_conf c;

	expect_invalid(scsi_from(text, &c), text, needle1, needle2);
}

static void
test_scsi(void **state)
{
	struct scsi_conf c;

	(void)state;
	assert_int_equal(scsi_from("{\"name\": \"scsi0\", \"socket\": \"scsi0.sock\"}", &c), 0);
	assert_string_equal(c.name, "scsi0");
	assert_string_equal(c.socket, RUN_DIR "/scsi0.sock");
	assert_false(c.client);
	assert_int_equal(c.queues, 1);
	assert_int_equal(c.max_sectors, 0xffff);
	assert_int_equal(c.cmd_per_lun, 128);
	assert_int_equal(scsi_from("{\"name\": \"s.1\", \"socket\": \"/tmp/s.sock\", \"mode\": "
				   "\"client\", \"queues\": 16, \"max-sectors\": 4294967295, "
				   "\"cmd-per-lun\": 65535}",
				 &c),
		0);
	assert_string_equal(c.socket, "/tmp/s.sock");
	assert_true(c.client);
	assert_int_equal(c.queues, 16);
	assert_int_equal(c.max_sectors, 0xffffffffu);
	assert_int_equal(c.cmd_per_lun, 65535);
	assert_int_equal(scsi_from("{\"name\": \"s\", \"socket\": \"s\", \"mode\": \"server\", "
				   "\"queues\": 1, \"max-sectors\": 1, \"cmd-per-lun\": 1}",
				 &c),
		0);
	assert_false(c.client);

	scsi_bad("{\"socket\": \"s\"}", "scsi", "\"name\" is required");
	scsi_bad("{\"name\": \"s\"}", "scsi s", "\"socket\" is required");
	scsi_bad("{\"name\": \"s\", \"socket\": \"\"}", "scsi s", "\"socket\" must not be empty");
	scsi_bad("{\"name\": \"s\", \"socket\": 3}", "scsi s", "\"socket\" must be a string");
	scsi_bad("{\"name\": \"s\", \"socket\": \"s\", \"luns\": []}", "scsi",
		"\"luns\" is not a known member");
	scsi_bad("{\"name\": \"s c\", \"socket\": \"s\"}", "scsi controller name", NULL);
	scsi_bad("{\"name\": \"-s\", \"socket\": \"s\"}", "scsi controller name", NULL);
	scsi_bad("{\"name\": \"p123456789012345678901234567890123\", \"socket\": \"s\"}", "scsi",
		"\"name\"");
	scsi_bad("{\"name\": 1, \"socket\": \"s\"}", "scsi", "\"name\" must be a string");
	scsi_bad("{\"name\": \"s\", \"socket\": \"s\", \"mode\": \"listen\"}", "scsi s",
		"\"mode\" must be server or client");
	scsi_bad("{\"name\": \"s\", \"socket\": \"s\", \"mode\": true}", "scsi s",
		"\"mode\" must be a string");
	scsi_bad("{\"name\": \"s\", \"socket\": \"s\", \"queues\": 0}", "scsi s",
		"\"queues\" must be between 1 and 16");
	scsi_bad("{\"name\": \"s\", \"socket\": \"s\", \"queues\": 17}", "scsi s", "\"queues\"");
	scsi_bad("{\"name\": \"s\", \"socket\": \"s\", \"queues\": \"2\"}", "scsi s",
		"\"queues\" must be an integer");
	scsi_bad("{\"name\": \"s\", \"socket\": \"s\", \"max-sectors\": 0}", "scsi s",
		"\"max-sectors\" must be between 1 and 4294967295");
	scsi_bad("{\"name\": \"s\", \"socket\": \"s\", \"max-sectors\": 4294967296}", "scsi s",
		"\"max-sectors\"");
	scsi_bad("{\"name\": \"s\", \"socket\": \"s\", \"cmd-per-lun\": 0}", "scsi s",
		"\"cmd-per-lun\" must be between 1 and 65535");
	scsi_bad("{\"name\": \"s\", \"socket\": \"s\", \"cmd-per-lun\": 1.5}", "scsi s",
		"\"cmd-per-lun\" must be an integer");
	scsi_bad("[]", "scsi: expected an object", NULL);
}

static int
lun_from(const char *text, struct scsi_lun_conf *out)
{
	json_t *o = js(text);
	int rc;

	memset(&err, 0, sizeof(err));
	rc = config_parse_lun(o, out, &err);
	json_decref(o);
	return rc;
}

static void
lun_ok(const char *text, struct scsi_lun_conf *out)
{
	if (lun_from(text, out) != 0)
		fail_msg("%s: unexpected error: %s", text, err.message);
}

static void
lun_bad(const char *text, const char *needle1, const char *needle2)
{
	struct scsi_lun_conf c;

	expect_invalid(lun_from(text, &c), text, needle1, needle2);
	assert_int_equal(err.err_no, EINVAL);
}

#define RAM_LUN "\"name\": \"l0\", \"controller\": \"scsi0\", \"backend\": \"ram\""

/* A ram LUN with @members_json added (and "size" unless it is given). */
static void
lun_bad_member(const char *members_json, const char *needle1, const char *needle2)
{
	char text[512];

	snprintf(text, sizeof(text), "{%s%s, %s}", RAM_LUN,
		strstr(members_json, "\"size\"") ? "" : ", \"size\": \"1M\"", members_json);
	lun_bad(text, needle1, needle2);
}

static uint64_t
lun_size_of(const char *size_json)
{
	struct scsi_lun_conf c;
	char text[256];

	snprintf(text, sizeof(text), "{%s, \"size\": %s}", RAM_LUN, size_json);
	lun_ok(text, &c);
	return c.lun.size;
}

static void
test_lun(void **state)
{
	struct scsi_lun_conf c;

	(void)state;
	/* Defaults: lun_conf_init()'s, at 0:0. */
	lun_ok("{" RAM_LUN ", \"size\": \"64M\"}", &c);
	assert_string_equal(c.lun.name, "l0");
	assert_string_equal(c.controller, "scsi0");
	assert_int_equal(c.target, 0);
	assert_int_equal(c.lun_id, 0);
	assert_int_equal(c.lun.backend, LUN_BACKEND_RAM);
	assert_int_equal(c.lun.size, 64ULL << 20);
	assert_int_equal(c.lun.block_size, 512);
	assert_int_equal(c.lun.cache, LUN_CACHE_NONE);
	assert_false(c.lun.readonly);
	assert_string_equal(c.lun.path, "");

	/* Every member of a file LUN. */
	lun_ok("{\"name\": \"Disk_0.a\", \"controller\": \"c-1\", \"target\": 255, \"lun\": 255, "
	       "\"backend\": \"file\", \"path\": \"/var/lib/d.img\", \"size\": 8192, "
	       "\"block-size\": 4096, \"cache\": \"directsync\", \"readonly\": true, "
	       "\"vendor\": \"ACME CO\", \"product\": \"0123456789abcdef\", \"revision\": "
	       "\"1.0a\", \"serial\": \"01234567890123456789012345678901\"}",
		&c);
	assert_string_equal(c.lun.name, "Disk_0.a");
	assert_string_equal(c.controller, "c-1");
	assert_int_equal(c.target, 255);
	assert_int_equal(c.lun_id, 255);
	assert_int_equal(c.lun.backend, LUN_BACKEND_FILE);
	assert_string_equal(c.lun.path, "/var/lib/d.img");
	assert_int_equal(c.lun.size, 8192);
	assert_int_equal(c.lun.block_size, 4096);
	assert_int_equal(c.lun.cache, LUN_CACHE_DIRECTSYNC);
	assert_true(c.lun.readonly);
	assert_string_equal(c.lun.vendor, "ACME CO");
	assert_string_equal(c.lun.product, "0123456789abcdef");
	assert_string_equal(c.lun.revision, "1.0a");
	assert_string_equal(c.lun.serial, "01234567890123456789012345678901");
	/* A file LUN's size is optional: 0 means the file's own. */
	lun_ok("{\"name\": \"f\", \"controller\": \"c\", \"backend\": \"file\", \"path\": \"/f\"}",
		&c);
	assert_int_equal(c.lun.size, 0);
	lun_ok("{\"name\": \"n\", \"controller\": \"c\", \"backend\": \"null\", \"size\": \"2T\", "
	       "\"cache\": \"writeback\"}",
		&c);
	assert_int_equal(c.lun.backend, LUN_BACKEND_NULL);
	assert_int_equal(c.lun.size, 2ULL << 40);
	assert_int_equal(c.lun.cache, LUN_CACHE_WRITEBACK);
	lun_ok("{" RAM_LUN ", \"size\": \"1G\", \"cache\": \"writethrough\"}", &c);
	assert_int_equal(c.lun.cache, LUN_CACHE_WRITETHROUGH);
	lun_ok("{" RAM_LUN ", \"size\": \"1G\", \"vendor\": \"\", \"readonly\": false}", &c);
	assert_string_equal(c.lun.vendor, "");

	/* Sizes: bytes, or digits with a binary suffix. */
	assert_int_equal(lun_size_of("512"), 512);
	assert_int_equal(lun_size_of("\"512\""), 512);
	assert_int_equal(lun_size_of("\"512K\""), 512 << 10);
	assert_int_equal(lun_size_of("\"1k\""), 1024);
	assert_int_equal(lun_size_of("\"64M\""), 64 << 20);
	assert_int_equal(lun_size_of("\"1G\""), 1 << 30);
	assert_int_equal(lun_size_of("\"3g\""), 3ULL << 30);
	assert_int_equal(lun_size_of("\"2T\""), 2ULL << 40);
	assert_int_equal(lun_size_of("\"8388607T\""), 8388607ULL << 40);
	lun_bad_member("\"size\": 0", "lun l0", "\"size\" must be at least 1 byte");
	lun_bad_member("\"size\": \"0M\"", "lun l0", "\"size\" must be at least 1 byte");
	lun_bad_member("\"size\": -512", "lun l0", "\"size\"");
	lun_bad_member("\"size\": \"\"", "lun l0", "\"size\" must be a number of bytes or");
	lun_bad_member("\"size\": \"M\"", "lun l0", "\"64M\"");
	lun_bad_member("\"size\": \"1X\"", "lun l0", "\"size\"");
	lun_bad_member("\"size\": \"1MB\"", "lun l0", "\"size\"");
	lun_bad_member("\"size\": \"1.5G\"", "lun l0", "\"size\"");
	lun_bad_member("\"size\": \" 1G\"", "lun l0", "\"size\"");
	lun_bad_member("\"size\": \"-1G\"", "lun l0", "\"size\"");
	lun_bad_member("\"size\": 1.5", "lun l0", "\"size\"");
	lun_bad_member("\"size\": true", "lun l0", "\"size\"");
	lun_bad_member("\"size\": \"8388608T\"", "lun l0", "\"size\" is too large");
	lun_bad_member("\"size\": \"99999999999999999999\"", "lun l0", "\"size\" is too large");
	lun_bad_member("\"size\": 1000", "lun l0", "\"size\" must be a multiple of \"block-size\"");
	lun_bad_member("\"size\": \"1K\", \"block-size\": 4096", "lun l0",
		"\"size\" must be a multiple of \"block-size\" (4096)");

	/* Required members, and which backend takes which. */
	lun_bad("{\"controller\": \"c\", \"backend\": \"ram\", \"size\": 512}", "lun",
		"\"name\" is required");
	lun_bad("{\"name\": \"l\", \"backend\": \"ram\", \"size\": 512}", "lun l",
		"\"controller\" is required");
	lun_bad("{\"name\": \"l\", \"controller\": \"c\", \"size\": 512}", "lun l",
		"\"backend\" is required");
	lun_bad("{\"name\": \"l\", \"controller\": \"c\", \"backend\": \"ram\"}", "lun l",
		"\"size\" is required for ram and null LUNs");
	lun_bad("{\"name\": \"l\", \"controller\": \"c\", \"backend\": \"null\"}", "lun l",
		"\"size\" is required");
	lun_bad("{\"name\": \"l\", \"controller\": \"c\", \"backend\": \"file\"}", "lun l",
		"\"path\" is required for file LUNs");
	lun_bad_member("\"path\": \"/x\"", "lun l0", "\"path\" is only for file LUNs");
	lun_bad("{\"name\": \"l\", \"controller\": \"c\", \"backend\": \"null\", \"size\": 512, "
		"\"path\": \"/x\"}",
		"lun l", "\"path\" is only for file LUNs");
	lun_bad("{\"name\": \"l\", \"controller\": \"c\", \"backend\": \"file\", \"path\": "
		"\"d.img\"}",
		"lun l", "\"path\" must be an absolute path");
	lun_bad("{\"name\": \"l\", \"controller\": \"c\", \"backend\": \"file\", \"path\": 1}",
		"lun l", "\"path\" must be a string");

	/* Names, enums, ranges, types. */
	lun_bad("{\"name\": \"l 0\", \"controller\": \"c\", \"backend\": \"ram\", \"size\": 512}",
		"lun name", NULL);
	lun_bad("{\"name\": \"l\", \"controller\": \"c/0\", \"backend\": \"ram\", \"size\": 512}",
		"scsi controller name", NULL);
	lun_bad("{\"name\": \"l\", \"controller\": 0, \"backend\": \"ram\", \"size\": 512}",
		"lun l", "\"controller\" must be a string");
	lun_bad_member("\"disk\": true", "lun", "\"disk\" is not a known member");
	lun_bad("{\"name\": \"l\", \"controller\": \"c\", \"backend\": \"disk\"}", "lun l",
		"\"backend\" must be file, ram or null");
	lun_bad("{\"name\": \"l\", \"controller\": \"c\", \"backend\": "
		"\"a-much-too-long-backend-name-for-anything\"}",
		"lun l", "\"backend\" must be file, ram or null");
	lun_bad("{\"name\": \"l\", \"controller\": \"c\", \"backend\": 1}", "lun l",
		"\"backend\" must be a string");
	lun_bad_member("\"target\": 256", "lun l0", "\"target\" must be between 0 and 255");
	lun_bad_member("\"target\": -1", "lun l0", "\"target\"");
	lun_bad_member("\"target\": \"0\"", "lun l0", "\"target\" must be an integer");
	lun_bad_member("\"lun\": 256", "lun l0", "\"lun\" must be between 0 and 255");
	lun_bad_member("\"lun\": null", "lun l0", "\"lun\" must be an integer");
	lun_bad_member("\"block-size\": 1024", "lun l0", "\"block-size\" must be 512 or 4096");
	lun_bad_member("\"block-size\": 8192", "lun l0", "\"block-size\"");
	lun_bad_member("\"block-size\": 256", "lun l0", "\"block-size\"");
	lun_bad_member("\"block-size\": \"4K\"", "lun l0", "\"block-size\" must be an integer");
	lun_bad_member("\"cache\": \"unsafe\"", "lun l0",
		"\"cache\" must be none, writeback, writethrough or directsync");
	lun_bad_member("\"cache\": null", "lun l0", "\"cache\" must be a string");
	lun_bad_member("\"readonly\": \"yes\"", "lun l0", "\"readonly\" must be true or false");
	lun_bad_member("\"readonly\": 1", "lun l0", "\"readonly\"");

	/* INQUIRY strings: length and printable ASCII. */
	lun_bad_member("\"vendor\": \"123456789\"", "lun l0",
		"\"vendor\" must be at most 8 printable ASCII characters");
	lun_bad_member("\"vendor\": \"caf\\u00e9\"", "lun l0", "\"vendor\" must be at most 8");
	lun_bad_member("\"vendor\": \"a\\tb\"", "lun l0", "\"vendor\"");
	lun_bad_member("\"vendor\": \"a\\u0000b\"", "lun l0", "\"vendor\"");
	lun_bad_member("\"vendor\": 7", "lun l0", "\"vendor\" must be a string");
	lun_bad_member("\"product\": \"0123456789abcdefg\"", "lun l0",
		"\"product\" must be at most 16 printable ASCII characters");
	lun_bad_member("\"product\": \"\\u007f\"", "lun l0", "\"product\"");
	lun_bad_member("\"revision\": \"12345\"", "lun l0",
		"\"revision\" must be at most 4 printable ASCII characters");
	lun_bad_member("\"serial\": \"012345678901234567890123456789012\"", "lun l0",
		"\"serial\" must be at most 32 printable ASCII characters");
	lun_bad_member("\"serial\": \"\\n\"", "lun l0", "\"serial\"");
	lun_bad("[]", "lun: expected an object", NULL);
}

static void
scsi_roundtrip(const char *text)
{
	struct scsi_conf a, b;
	json_t *dump;

	assert_int_equal(scsi_from(text, &a), 0);
	dump = config_dump_scsi(&a);
	memset(&err, 0, sizeof(err));
	if (config_parse_scsi(dump, "/elsewhere", &b, &err) != 0)
		fail_msg("re-parsing scsi %s: %s", text, err.message);
	json_decref(dump);
	assert_memory_equal(&a, &b, sizeof(a));
}

static void
lun_roundtrip(const char *text)
{
	struct scsi_lun_conf a, b;
	json_t *dump;
	char *s;

	lun_ok(text, &a);
	dump = config_dump_lun(&a);
	memset(&err, 0, sizeof(err));
	if (config_parse_lun(dump, &b, &err) != 0) {
		s = json_dumps(dump, 0);
		fail_msg("re-parsing %s: %s", s, err.message);
	}
	json_decref(dump);
	if (memcmp(&a, &b, sizeof(a)) != 0)
		fail_msg("round trip of %s changed the LUN", text);
}

static void
test_scsi_lun_roundtrip(void **state)
{
	struct scsi_lun_conf c;
	json_t *dump;

	(void)state;
	scsi_roundtrip("{\"name\": \"scsi0\", \"socket\": \"scsi0.sock\"}");
	scsi_roundtrip("{\"name\": \"s\", \"socket\": \"/x/s.sock\", \"mode\": \"client\", "
		       "\"queues\": 16, \"max-sectors\": 1024, \"cmd-per-lun\": 32}");
	lun_roundtrip("{" RAM_LUN ", \"size\": \"64M\"}");
	lun_roundtrip("{\"name\": \"f\", \"controller\": \"c\", \"backend\": \"file\", \"path\": "
		      "\"/var/lib/f.img\"}");
	lun_roundtrip("{\"name\": \"d\", \"controller\": \"c\", \"target\": 3, \"lun\": 200, "
		      "\"backend\": \"file\", \"path\": \"/d\", \"size\": \"1G\", \"block-size\": "
		      "4096, \"cache\": \"writethrough\", \"readonly\": true, \"vendor\": \"V\", "
		      "\"product\": \"P\", \"revision\": \"R\", \"serial\": \"S 1\"}");
	lun_roundtrip("{\"name\": \"n\", \"controller\": \"c\", \"backend\": \"null\", \"size\": "
		      "\"2T\", \"cache\": \"directsync\", \"vendor\": \"\"}");

	/* The dump spells sizes in bytes and leaves out what does not apply. */
	lun_ok("{" RAM_LUN ", \"size\": \"1K\"}", &c);
	dump = config_dump_lun(&c);
	assert_int_equal(json_integer_value(json_object_get(dump, "size")), 1024);
	assert_string_equal(json_string_value(json_object_get(dump, "backend")), "ram");
	assert_string_equal(json_string_value(json_object_get(dump, "cache")), "none");
	assert_null(json_object_get(dump, "path"));
	json_decref(dump);
	lun_ok("{\"name\": \"f\", \"controller\": \"c\", \"backend\": \"file\", \"path\": \"/f\"}",
		&c);
	dump = config_dump_lun(&c);
	assert_null(json_object_get(dump, "size"));
	assert_string_equal(json_string_value(json_object_get(dump, "path")), "/f");
	json_decref(dump);
}

/* ---- whole documents --------------------------------------------------------- */

static bool
registry_empty(void)
{
	for (int i = 0; i < DP_MAX_PORTS; i++)
		if (dp.ports[i] != NULL)
			return false;
	for (int i = 0; i < DP_MAX_BRIDGES; i++)
		if (dp.bridges[i] != NULL)
			return false;
	for (int i = 0; i < DP_MAX_XCONNECTS; i++)
		if (dp.xconnects[i] != NULL)
			return false;
	for (int i = 0; i < DP_MAX_SCSI; i++)
		if (dp.scsi[i] != NULL)
			return false;
	for (int i = 0; i < DP_MAX_LUNS; i++)
		if (dp.luns[i] != NULL)
			return false;
	return !dp.pmd_configured && dp.n_pmd == 0;
}

static void
test_apply_default(void **state)
{
	struct daemon_conf d;
	json_t *doc;

	(void)state;
	doc = config_parse_text(vhostd_default_config, "default", &err);
	if (doc == NULL)
		fail_msg("embedded default: %s", err.message);
	memset(&d, 0, sizeof(d));
	assert_int_equal(config_parse_daemon(doc, &d, &err), 0);
	assert_string_equal(d.run_dir, "/run/vhostd");
	assert_string_equal(d.ctl_socket, "/run/vhostd/vhostd.sock");
	assert_string_equal(d.file_prefix, "vhostd");
	assert_int_equal(d.log_level, VLOG_LVL_INFO);
	assert_int_equal(d.n_extra_args, 0);
	memset(&err, 0, sizeof(err));
	if (config_apply(doc, &d, true, &err) != 0)
		fail_msg("embedded default: %s", err.message);
	assert_true(registry_empty());

	/* The same with another run-dir. */
	snprintf(d.run_dir, sizeof(d.run_dir), "/tmp");
	assert_int_equal(config_apply(doc, &d, true, &err), 0);
	json_decref(doc);
	free_daemon(&d);
}

/*
 * A bad document fails with a message naming the object. It is run for
 * real (dry_run false): validation must reject it before anything reaches
 * the (uninitialised) datapath.
 */
static void
apply_bad(const char *text, const char *needle1, const char *needle2)
{
	struct daemon_conf d;
	json_t *doc;
	int rc;

	memset(&err, 0, sizeof(err));
	doc = config_parse_text(text, "bad.json", &err);
	if (doc == NULL)
		fail_msg("bad test document %s: %s", text, err.message);
	memset(&d, 0, sizeof(d));
	snprintf(d.run_dir, sizeof(d.run_dir), RUN_DIR);
	rc = config_apply(doc, &d, true, &err);
	if (rc != -EINVAL)
		fail_msg("dry run of %s: expected -EINVAL, got %d", text, rc);
	if (needle1 != NULL)
		assert_msg_has(needle1);
	if (needle2 != NULL)
		assert_msg_has(needle2);
	memset(&err, 0, sizeof(err));
	rc = config_apply(doc, &d, false, &err);
	json_decref(doc);
	assert_int_equal(rc, -EINVAL);
	if (needle1 != NULL)
		assert_msg_has(needle1);
	assert_true(registry_empty());
}

static void
test_apply_bad(void **state)
{
	(void)state;
	apply_bad("{\"ports\": {}}", "config", "\"ports\" must be an array");
	apply_bad("{\"bridges\": \"br0\"}", "config", "\"bridges\" must be an array");
	apply_bad("{\"xconnects\": null}", "config", "\"xconnects\" must be an array");
	apply_bad("{\"pmd\": {\"cpus\": \"0-3,^9x\"}, \"bridges\": [{\"name\": \"br0\"}]}", "pmd",
		"\"cpus\"");
	apply_bad("{\"pmd\": 1}", "pmd: expected an object", NULL);
	/* The last object is the bad one: the good ones before it are not applied. */
	apply_bad("{\"bridges\": [{\"name\": \"br0\"}, {\"name\": \"br1\", \"mac-aging-s\": 0}]}",
		"bridge br1", "\"mac-aging-s\"");
	apply_bad(
		"{\"bridges\": [{\"name\": \"br0\"}],\n"
		" \"ports\": [{\"name\": \"vhu0\", \"type\": \"vhost-user\", \"socket\": \"a\"},\n"
		"            {\"name\": \"vhu1\", \"type\": \"vhost-user\", \"socket\": \"b\", "
		"\"queues\": 99}]}",
		"port vhu1", "\"queues\"");
	apply_bad("{\"ports\": [{\"name\": \"s\", \"type\": \"sink\", \"vlan\": 3}]}", "port",
		"\"vlan\" is not a known member");
	apply_bad("{\"ports\": [1]}", "port: expected an object", NULL);
	apply_bad("{\"bridges\": [{\"name\": \"br0\"}],\n"
		  " \"ports\": [{\"name\": \"a\", \"type\": \"sink\"}, {\"name\": \"b\", \"type\": "
		  "\"sink\"}],\n"
		  " \"xconnects\": [{\"name\": \"xc\", \"ports\": [\"a\"]}]}",
		"xconnect", "\"ports\"");
	apply_bad("{\"scsi\": {}}", "config", "\"scsi\" must be an array");
	apply_bad("{\"luns\": \"lun0\"}", "config", "\"luns\" must be an array");
	apply_bad("{\"scsi\": [{\"name\": \"s0\", \"socket\": \"a\"}, {\"name\": \"s1\", "
		  "\"socket\": \"b\", \"queues\": 0}]}",
		"scsi s1", "\"queues\"");
	/* A bad LUN stops the (good) controller and ports before it too. */
	apply_bad("{\"ports\": [{\"name\": \"a\", \"type\": \"sink\"}],\n"
		  " \"scsi\": [{\"name\": \"s0\", \"socket\": \"a\"}],\n"
		  " \"luns\": [{\"name\": \"l0\", \"controller\": \"s0\", \"backend\": "
		  "\"ram\", \"size\": \"1G\"},\n"
		  "           {\"name\": \"l1\", \"controller\": \"s0\", \"backend\": "
		  "\"ram\", \"path\": \"/x\", \"size\": \"1G\"}]}",
		"lun l1", "\"path\" is only for file LUNs");
	apply_bad("{\"luns\": [{\"name\": \"l0\", \"controller\": \"s0\", \"backend\": "
		  "\"null\"}]}",
		"lun l0", "\"size\" is required");
}

/* References between objects are only checked when applying for real. */
static void
test_apply_dry_run_references(void **state)
{
	struct daemon_conf d;
	json_t *doc;

	(void)state;
	memset(&d, 0, sizeof(d));
	snprintf(d.run_dir, sizeof(d.run_dir), RUN_DIR);
	doc = config_parse_text("{\"ports\": [{\"name\": \"a\", \"type\": \"sink\", \"bridge\": "
				"\"nosuch\"}], \"xconnects\": [{\"name\": \"x\", \"ports\": "
				"[\"p\", \"q\"]}], \"scsi\": [{\"name\": \"s0\", \"socket\": "
				"\"s0.sock\"}], \"luns\": [{\"name\": \"l\", \"controller\": "
				"\"nosuch\", \"backend\": \"file\", \"path\": \"/no/such\"}]}",
		"refs", &err);
	assert_non_null(doc);
	/* "scsi" and "luns" are sections of the file like "ports". */
	assert_int_equal(config_parse_daemon(doc, &d, &err), 0);
	snprintf(d.run_dir, sizeof(d.run_dir), RUN_DIR);
	assert_int_equal(config_apply(doc, &d, true, &err), 0);
	json_decref(doc);
	assert_true(registry_empty());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_comments),
		cmocka_unit_test(test_text_errors),
		cmocka_unit_test(test_daemon_defaults),
		cmocka_unit_test(test_daemon_all_members),
		cmocka_unit_test(test_daemon_errors),
		cmocka_unit_test(test_port_defaults),
		cmocka_unit_test(test_port_all_members),
		cmocka_unit_test(test_port_required),
		cmocka_unit_test(test_port_unknown_member),
		cmocka_unit_test(test_port_wrong_types),
		cmocka_unit_test(test_port_ranges),
		cmocka_unit_test(test_port_mac),
		cmocka_unit_test(test_port_socket),
		cmocka_unit_test(test_port_names),
		cmocka_unit_test(test_port_set),
		cmocka_unit_test(test_bridge),
		cmocka_unit_test(test_xconnect),
		cmocka_unit_test(test_pmd),
		cmocka_unit_test(test_scsi),
		cmocka_unit_test(test_lun),
		cmocka_unit_test(test_scsi_lun_roundtrip),
		cmocka_unit_test(test_dump_roundtrip),
		cmocka_unit_test(test_apply_default),
		cmocka_unit_test(test_apply_bad),
		cmocka_unit_test(test_apply_dry_run_references),
	};

	/* Keep the daemon's logging quiet. */
	vlog_level = VLOG_LVL_ERR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
