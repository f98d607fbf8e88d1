/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The OVSDB client (ovs-plugin/ovsdb.c): message framing, update2
 * application with strict type checks, transaction results, and the client
 * against a fake server on a unix socket (monitor_cond, echo, update2,
 * transact, disconnect and reconnect with backoff, unreachable server).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "ovsdb.h"

#define U1 "11111111-1111-1111-1111-111111111111"
#define U2 "22222222-2222-2222-2222-222222222222"
#define U3 "33333333-3333-3333-3333-333333333333"
#define U4 "44444444-4444-4444-4444-444444444444"
#define U5 "55555555-5555-5555-5555-555555555555"

/* ---- framing ----------------------------------------------------------------- */

static void
test_scan(void **state)
{
	const char *one = "{\"a\":[1,{\"b\":\"}\"}]}{\"x\":1}";

	assert_int_equal(ovsdb_scan_message(one, strlen(one), 1024), 19);
	assert_int_equal(ovsdb_scan_message("  {\"a\":", 7, 1024), 0);
	assert_int_equal(ovsdb_scan_message("", 0, 1024), 0);
	assert_int_equal(ovsdb_scan_message("  \n", 3, 1024), 0);
	assert_int_equal(ovsdb_scan_message("[1]", 3, 1024), -1);
	assert_int_equal(ovsdb_scan_message("x{}", 3, 1024), -1);
	assert_int_equal(ovsdb_scan_message("}", 1, 1024), -1);
	/* escaped quotes and backslashes inside strings */
	assert_int_equal(ovsdb_scan_message("{\"a\":\"\\\"}\\\\\"}", 13, 1024), 13);
	/* too large: complete or not */
	assert_int_equal(ovsdb_scan_message("{\"aaaaaaaaaaaaaa\":1}", 20, 8), -1);
	assert_int_equal(ovsdb_scan_message("{\"aaaaaaaaaaaaaa\"", 17, 8), -1);
}

/* ---- update2 ------------------------------------------------------------------- */

static json_t *
replica(void)
{
	json_t *r = json_object();

	for (size_t t = 0; t < ovsdb_vswitch_n_tables; t++)
		json_object_set_new(r, ovsdb_vswitch_tables[t].name, json_object());
	return r;
}

static int
apply(json_t *r, const char *text, char *err)
{
	json_error_t jerr;
	json_t *u = json_loads(text, 0, &jerr);
	int rc;

	assert_non_null(u);
	rc = ovsdb_apply_update2(r, ovsdb_vswitch_tables, ovsdb_vswitch_n_tables, u, err, 256);
	json_decref(u);
	return rc;
}

static const char initial[] =
	"{\"Open_vSwitch\": {\"" U1 "\": {\"initial\": {\"next_cfg\": 3, \"cur_cfg\": 3,"
	" \"bridges\": [\"uuid\", \"" U2 "\"]}}},"
	" \"Bridge\": {\"" U2 "\": {\"initial\": {\"name\": \"br0\", \"datapath_type\": \"netdev\","
	" \"ports\": [\"set\", [[\"uuid\", \"" U3 "\"]]]}}},"
	" \"Port\": {\"" U3 "\": {\"initial\": {\"name\": \"p0\", \"interfaces\": [\"uuid\", \"" U4
	"\"], \"tag\": 10, \"external_ids\": [\"map\", [[\"a\", \"1\"]]]}}},"
	" \"Interface\": {\"" U4 "\": {\"initial\": {\"name\": \"p0\", \"type\": \"\","
	" \"options\": [\"map\", [[\"vhost-server-path\", \"/run/x.sock\"]]],"
	" \"external_ids\": [\"map\", [[\"vhostd-owner\", \"me\"], [\"vhostd-port\", \"vhu0\"]]],"
	" \"ofport\": 1}}}}";

static void
test_update2_initial_and_modify(void **state)
{
	json_t *r = replica(), *row;
	char err[256];

	assert_int_equal(apply(r, initial, err), 0);
	row = json_object_get(json_object_get(r, "Open_vSwitch"), U1);
	assert_int_equal(ovsdb_row_integer(row, "next_cfg"), 3);
	assert_false(ovsdb_row_bool(row, "dpdk_initialized")); /* default */
	assert_true(ovsdb_row_set_has(row, "bridges", U2));
	row = json_object_get(json_object_get(r, "Bridge"), U2);
	assert_string_equal(ovsdb_row_string(row, "name"), "br0");
	assert_true(ovsdb_row_set_has(row, "ports", U3));
	row = json_object_get(json_object_get(r, "Port"), U3);
	assert_int_equal(ovsdb_row_integer(row, "tag"), 10);
	assert_string_equal(ovsdb_row_map_string(row, "external_ids", "a"), "1");
	row = json_object_get(json_object_get(r, "Interface"), U4);
	assert_string_equal(
		ovsdb_row_map_string(row, "options", "vhost-server-path"), "/run/x.sock");
	assert_int_equal(json_array_size(json_object_get(row, "error")), 0);

	/* set diff: add U5, remove U3; optional: 10 -> 20 is the diff {10, 20} */
	assert_int_equal(
		apply(r,
			"{\"Bridge\": {\"" U2 "\": {\"modify\": {\"ports\": [\"set\", "
			"[[\"uuid\", \"" U5 "\"], [\"uuid\", \"" U3 "\"]]]}}},"
			" \"Port\": {\"" U3 "\": {\"modify\": {\"tag\": [\"set\", [10, 20]],"
			" \"external_ids\": [\"map\", [[\"a\", \"1\"], [\"b\", \"2\"]]]}}},"
			" \"Open_vSwitch\": {\"" U1 "\": {\"modify\": {\"cur_cfg\": 4}}}}",
			err),
		0);
	row = json_object_get(json_object_get(r, "Bridge"), U2);
	assert_true(ovsdb_row_set_has(row, "ports", U5));
	assert_false(ovsdb_row_set_has(row, "ports", U3));
	row = json_object_get(json_object_get(r, "Port"), U3);
	assert_int_equal(ovsdb_row_integer(row, "tag"), 20);
	assert_null(ovsdb_row_map_string(row, "external_ids", "a")); /* same value: removed */
	assert_string_equal(ovsdb_row_map_string(row, "external_ids", "b"), "2");
	/* map diff with another value replaces */
	assert_int_equal(apply(r,
				 "{\"Port\": {\"" U3 "\": {\"modify\": {\"external_ids\": [\"map\","
				 " [[\"b\", \"3\"]]], \"tag\": 20}}}}",
				 err),
		0);
	row = json_object_get(json_object_get(r, "Port"), U3);
	assert_string_equal(ovsdb_row_map_string(row, "external_ids", "b"), "3");
	assert_int_equal(json_array_size(json_object_get(row, "tag")), 0);
	assert_int_equal(
		apply(r, "{\"Open_vSwitch\": {\"" U1 "\": {\"modify\": {\"cur_cfg\": 4}}}}", err),
		0);
	assert_int_equal(ovsdb_row_integer(json_object_get(json_object_get(r, "Open_vSwitch"), U1),
				 "cur_cfg"),
		4);
	/* delete */
	assert_int_equal(apply(r, "{\"Interface\": {\"" U4 "\": {\"delete\": null}}}", err), 0);
	assert_null(json_object_get(json_object_get(r, "Interface"), U4));
	json_decref(r);
}

static void
test_update2_rejects(void **state)
{
	static const char *const bad[] = {
		"[]",
		"{\"Nope\": {}}",
		"{\"Bridge\": []}",
		"{\"Bridge\": {\"not-a-uuid\": {\"insert\": {}}}}",
		"{\"Bridge\": {\"" U5 "\": {}}}",
		"{\"Bridge\": {\"" U5 "\": {\"insert\": {}, \"delete\": null}}}",
		"{\"Bridge\": {\"" U5 "\": {\"frobnicate\": {}}}}",
		"{\"Bridge\": {\"" U5 "\": {\"insert\": {\"name\": 5}}}}",
		"{\"Bridge\": {\"" U5 "\": {\"insert\": {\"color\": \"red\"}}}}",
		"{\"Bridge\": {\"" U5 "\": {\"insert\": {\"ports\": [\"uuid\", \"zz\"]}}}}",
		"{\"Bridge\": {\"" U5 "\": {\"insert\": {\"ports\": [\"set\", [1]]}}}}",
		"{\"Bridge\": {\"" U5 "\": {\"insert\": {\"ports\": [\"named-uuid\", \"x\"]}}}}",
		"{\"Bridge\": {\"" U5 "\": {\"insert\": []}}}",
		"{\"Bridge\": {\"" U2 "\": {\"insert\": {}}}}",   /* exists */
		"{\"Bridge\": {\"" U5 "\": {\"modify\": {}}}}",   /* unknown row */
		"{\"Bridge\": {\"" U5 "\": {\"delete\": null}}}", /* unknown row */
		"{\"Bridge\": {\"" U2 "\": {\"delete\": {}}}}",
		"{\"Port\": {\"" U5 "\": {\"insert\": {\"tag\": [\"set\", [1, 2]]}}}}",
		"{\"Port\": {\"" U3 "\": {\"modify\": {\"tag\": [\"set\", [11, 12]]}}}}",
		"{\"Port\": {\"" U5 "\": {\"insert\": {\"tag\": 1.5}}}}",
		"{\"Port\": {\"" U5
		"\": {\"insert\": {\"external_ids\": [\"map\", [[1, \"a\"]]]}}}}",
		"{\"Port\": {\"" U5 "\": {\"insert\": {\"external_ids\": [\"map\", [[\"a\"]]]}}}}",
		"{\"Port\": {\"" U5 "\": {\"insert\": {\"external_ids\": {\"a\": \"b\"}}}}}",
		"{\"Open_vSwitch\": {\"" U1 "\": {\"modify\": {\"dpdk_initialized\": \"true\"}}}}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *r = replica();
		char err[256] = "";

		assert_int_equal(apply(r, initial, err), 0);
		if (apply(r, bad[i], err) != -EPROTO)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
		json_decref(r);
	}
}

static void
test_txn_result(void **state)
{
	char err[256];
	json_t *r;

	r = json_loads("[{\"uuid\": [\"uuid\", \"" U1 "\"]}, {\"count\": 1}]", 0, NULL);
	assert_int_equal(ovsdb_check_txn_result(r, 2, err, sizeof(err)), 0);
	assert_int_equal(ovsdb_check_txn_result(r, 3, err, sizeof(err)), -EPROTO);
	json_decref(r);
	r = json_loads("[{}, {\"error\": \"timed out\", \"details\": \"wait\"}, null]", 0, NULL);
	assert_int_equal(ovsdb_check_txn_result(r, 3, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "operation 1 failed: timed out: wait"));
	json_decref(r);
	r = json_loads("[{}, {\"error\": \"constraint violation\"}]", 0, NULL);
	assert_int_equal(ovsdb_check_txn_result(r, 1, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "transaction failed: constraint violation"));
	json_decref(r);
	r = json_loads("[5]", 0, NULL);
	assert_int_equal(ovsdb_check_txn_result(r, 1, err, sizeof(err)), -EPROTO);
	json_decref(r);
	r = json_loads("{}", 0, NULL);
	assert_int_equal(ovsdb_check_txn_result(r, 0, err, sizeof(err)), -EPROTO);
	json_decref(r);
	assert_true(ovsdb_uuid_valid(U1));
	assert_false(ovsdb_uuid_valid("11111111-1111-1111-1111-11111111111g"));
	assert_false(ovsdb_uuid_valid("11111111-1111-1111-1111111111111111"));
}

/* ---- the client against a fake server ------------------------------------------------ */

struct fake {
	char dir[64];
	char path[128];
	int lfd;
	int cfd;
	char buf[1 << 16];
	size_t len;
	int connected, disconnected, updated;
	json_t *reply;
	char reply_err[256];
	int replies;
};

static void
on_connected(struct ovsdb *db, void *arg)
{
	((struct fake *)arg)->connected++;
}

static void
on_disconnected(struct ovsdb *db, const char *why, void *arg)
{
	((struct fake *)arg)->disconnected++;
}

static void
on_updated(struct ovsdb *db, void *arg)
{
	((struct fake *)arg)->updated++;
}

static const struct ovsdb_callbacks cbs = {
	.connected = on_connected, .disconnected = on_disconnected, .updated = on_updated};

static void
fake_listen(struct fake *f)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", f->path);
	unlink(f->path);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
}

/* Run the client until @cond or ~3 s. */
#define RUN_UNTIL(db, cond)                                                                        \
	do {                                                                                       \
		for (int _i = 0; _i < 300 && !(cond); _i++) {                                      \
			struct pollfd _p = {.fd = ovsdb_fd(db), .events = POLLIN};                 \
			poll(&_p, 1, 10);                                                          \
			ovsdb_process(db);                                                         \
		}                                                                                  \
		assert_true(cond);                                                                 \
	} while (0)

/* Next message the client sent, or NULL after ~2 s. */
static json_t *
fake_recv(struct fake *f, struct ovsdb *db)
{
	for (int i = 0; i < 200; i++) {
		long n = ovsdb_scan_message(f->buf, f->len, sizeof(f->buf));
		struct pollfd p = {.fd = f->cfd, .events = POLLIN};
		ssize_t r;

		if (n > 0) {
			json_t *m = json_loadb(f->buf, (size_t)n, 0, NULL);

			memmove(f->buf, f->buf + n, f->len - (size_t)n);
			f->len -= (size_t)n;
			return m;
		}
		ovsdb_process(db);
		if (poll(&p, 1, 10) == 1) {
			r = read(f->cfd, f->buf + f->len, sizeof(f->buf) - f->len);
			if (r <= 0)
				return NULL;
			f->len += (size_t)r;
		}
	}
	return NULL;
}

static void
fake_send(struct fake *f, const char *text)
{
	assert_int_equal(write(f->cfd, text, strlen(text)), (ssize_t)strlen(text));
}

static void
reply_cb(struct ovsdb *db, json_t *result, const char *error, void *arg)
{
	struct fake *f = arg;

	f->replies++;
	json_decref(f->reply);
	f->reply = result ? json_incref(result) : NULL;
	snprintf(f->reply_err, sizeof(f->reply_err), "%s", error ? error : "");
}

static void
accept_and_snapshot(struct fake *f, struct ovsdb *db)
{
	char text[4096];
	json_t *m;
	int id;

	for (int i = 0; i < 300; i++) {
		struct pollfd p = {.fd = f->lfd, .events = POLLIN};

		ovsdb_process(db);
		if (poll(&p, 1, 10) == 1)
			break;
	}
	f->cfd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(f->cfd >= 0);
	f->len = 0;
	m = fake_recv(f, db);
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "method")), "monitor_cond");
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(m, "params"), 0)), "Open_vSwitch");
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(m, "params"), 1)), "vhostd");
	assert_non_null(
		json_object_get(json_array_get(json_object_get(m, "params"), 2), "Interface"));
	id = (int)json_integer_value(json_object_get(m, "id"));
	json_decref(m);
	/* The reply in two pieces: framing must wait for the rest. */
	snprintf(text, sizeof(text), "{\"id\": %d, \"error\": null, \"result\": %s}", id, initial);
	assert_int_equal(write(f->cfd, text, 40), 40);
	ovsdb_process(db);
	assert_false(ovsdb_connected(db));
	fake_send(f, text + 40);
}

static void
test_client(void **state)
{
	struct fake f = {.cfd = -1};
	struct ovsdb *db;
	char err[256], remote[160];
	json_t *m;
	int id;

	snprintf(f.dir, sizeof(f.dir), "/tmp/test-ovsdb-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	snprintf(f.path, sizeof(f.path), "%s/db.sock", f.dir);
	snprintf(remote, sizeof(remote), "unix:%s", f.path);
	fake_listen(&f);
	assert_int_equal(ovsdb_create(&db, remote, &cbs, &f, err, sizeof(err)), 0);
	assert_string_equal(ovsdb_state(db), "disabled");
	assert_int_equal(ovsdb_transact(db, json_array(), reply_cb, &f), -ENOTCONN);
	ovsdb_enable(db);
	accept_and_snapshot(&f, db);
	RUN_UNTIL(db, f.connected == 1);
	assert_string_equal(ovsdb_state(db), "connected");
	assert_non_null(ovsdb_row(db, "Bridge", U2));

	/* echo is answered with the same params and id */
	fake_send(&f, "{\"method\": \"echo\", \"params\": [\"x\", 1], \"id\": \"e1\"}");
	m = fake_recv(&f, db);
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "id")), "e1");
	assert_true(json_is_null(json_object_get(m, "error")));
	assert_int_equal(json_integer_value(json_array_get(json_object_get(m, "result"), 1)), 1);
	json_decref(m);

	/* update2 notifications reach the replica */
	fake_send(
		&f, "{\"method\": \"update2\", \"id\": null, \"params\": [\"vhostd\", {\"Bridge\": "
		    "{\"" U2 "\": {\"modify\": {\"datapath_type\": \"system\"}}}}]}");
	RUN_UNTIL(db, f.updated == 1);
	assert_string_equal(
		ovsdb_row_string(ovsdb_row(db, "Bridge", U2), "datapath_type"), "system");

	/* a transaction and its reply; then a failed operation */
	assert_int_equal(
		ovsdb_transact(db,
			json_pack("[{s:s, s:s, s:[]}]", "op", "select", "table", "Bridge", "where"),
			reply_cb, &f),
		0);
	m = fake_recv(&f, db);
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "method")), "transact");
	assert_int_equal(json_array_size(json_object_get(m, "params")), 2);
	id = (int)json_integer_value(json_object_get(m, "id"));
	json_decref(m);
	snprintf(err, sizeof(err), "{\"id\": %d, \"error\": null, \"result\": [{\"rows\": []}]}",
		id);
	fake_send(&f, err);
	RUN_UNTIL(db, f.replies == 1);
	assert_non_null(f.reply);
	assert_int_equal(
		ovsdb_transact(db, json_pack("[{s:s}]", "op", "comment"), reply_cb, &f), 0);
	m = fake_recv(&f, db);
	id = (int)json_integer_value(json_object_get(m, "id"));
	json_decref(m);
	snprintf(err, sizeof(err),
		"{\"id\": %d, \"error\": null, \"result\": [{\"error\": \"referential integrity "
		"violation\"}]}",
		id);
	fake_send(&f, err);
	RUN_UNTIL(db, f.replies == 2);
	assert_null(f.reply);
	assert_non_null(strstr(f.reply_err, "referential integrity violation"));
	/* a reply to an unknown id is ignored */
	fake_send(&f, "{\"id\": 9999, \"error\": null, \"result\": {}}");
	ovsdb_process(db);
	assert_true(ovsdb_connected(db));

	/* a pending request fails when the server goes away; then backoff and reconnect */
	assert_int_equal(
		ovsdb_transact(db, json_pack("[{s:s}]", "op", "comment"), reply_cb, &f), 0);
	m = fake_recv(&f, db);
	json_decref(m);
	close(f.cfd);
	RUN_UNTIL(db, f.disconnected == 1);
	assert_int_equal(f.replies, 3);
	assert_non_null(strstr(f.reply_err, "connection lost"));
	assert_string_equal(ovsdb_state(db), "backoff");
	assert_true(ovsdb_backoff_left_ms(db) > 0);
	assert_null(ovsdb_row(db, "Bridge", U2));
	accept_and_snapshot(&f, db);
	RUN_UNTIL(db, f.connected == 2);

	/* garbage from the server drops the connection */
	fake_send(&f, "[1, 2]");
	RUN_UNTIL(db, f.disconnected == 2);
	assert_non_null(strstr(ovsdb_last_error(db), "protocol error"));
	accept_and_snapshot(&f, db);
	RUN_UNTIL(db, f.connected == 3);
	fake_send(&f, "{\"method\": \"update2\", \"id\": null, \"params\": [\"vhostd\", "
		      "{\"Bridge\": {\"" U2 "\": {\"modify\": {\"ports\": 7}}}}]}");
	RUN_UNTIL(db, f.disconnected == 3);
	assert_non_null(strstr(ovsdb_last_error(db), "update2"));

	close(f.cfd);
	ovsdb_destroy(db);
	json_decref(f.reply);
	close(f.lfd);
	unlink(f.path);
	rmdir(f.dir);
}

static void
test_unreachable(void **state)
{
	struct ovsdb *db;
	char err[256];

	assert_int_equal(
		ovsdb_create(&db, "tcp:127.0.0.1:6640", NULL, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unix:"));
	assert_int_equal(
		ovsdb_create(&db, "unix:relative.sock", NULL, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(ovsdb_create(&db, "unix:/nonexistent/vhostd-test/db.sock", NULL, NULL, err,
				 sizeof(err)),
		0);
	ovsdb_enable(db);
	assert_false(ovsdb_connected(db));
	assert_string_equal(ovsdb_state(db), "backoff");
	assert_non_null(strstr(ovsdb_last_error(db), "No such file or directory"));
	assert_true(ovsdb_backoff_left_ms(db) <= OVSDB_BACKOFF_MIN_MS);
	ovsdb_destroy(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_update2_initial_and_modify),
		cmocka_unit_test(test_update2_rejects),
		cmocka_unit_test(test_txn_result),
		cmocka_unit_test(test_client),
		cmocka_unit_test(test_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
