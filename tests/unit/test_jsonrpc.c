/* SPDX-License-Identifier: BSD-3-Clause */

/* JSON-RPC 2.0 validation, batching and response building (ctl/jsonrpc.c),
 * without sockets. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "jsonrpc.h"

static int calls;

/* echo: result = params; fail: application error; null: no response. */
static json_t *
dispatch(const struct jsonrpc_request *req, void *arg)
{
	calls++;
	if (strcmp(req->method, "echo") == 0)
		return jsonrpc_result(req->id, req->params ? json_incref(req->params) : NULL);
	if (strcmp(req->method, "fail") == 0)
		return jsonrpc_app_error(req->id, -EEXIST, "port vhu0: already exists");
	if (strcmp(req->method, "null") == 0)
		return NULL;
	return jsonrpc_error(req->id, JSONRPC_METHOD_NOT_FOUND, "Method not found", NULL);
}

static json_t *
handle(const char *text)
{
	return jsonrpc_handle_text(text, strlen(text), dispatch, NULL);
}

static json_t *
parse(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);

	assert_non_null(v);
	return v;
}

/* r is a well-formed response object with the given id (JSON text). */
static void
check_envelope(const json_t *r, const char *id)
{
	json_t *want = parse(id);

	assert_true(json_is_object(r));
	assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
	assert_true(json_equal(json_object_get(r, "id"), want));
	/* Exactly one of result and error. */
	assert_true(
		(json_object_get(r, "result") == NULL) != (json_object_get(r, "error") == NULL));
	json_decref(want);
}

static void
check_error(const json_t *r, int code, const char *id)
{
	const json_t *e;

	check_envelope(r, id);
	e = json_object_get(r, "error");
	assert_non_null(e);
	assert_int_equal(json_integer_value(json_object_get(e, "code")), code);
	assert_true(json_is_string(json_object_get(e, "message")));
}

static void
check_result(const json_t *r, const char *id, const char *result)
{
	json_t *want = parse(result);

	check_envelope(r, id);
	assert_true(json_equal(json_object_get(r, "result"), want));
	json_decref(want);
}

/* Handle text and expect a single error response. */
static void
expect_error(const char *text, int code, const char *id)
{
	json_t *r = handle(text);

	assert_non_null(r);
	check_error(r, code, id);
	json_decref(r);
}

static void
test_valid_requests(void **state)
{
	json_t *r;

	r = handle("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"a\":[1,2]}}");
	check_result(r, "1", "{\"a\":[1,2]}");
	json_decref(r);

	r = handle("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"echo\",\"params\":[1,\"x\"]}");
	check_result(r, "\"abc\"", "[1,\"x\"]");
	json_decref(r);

	/* Absent params reach the method as NULL; result null is still a result. */
	r = handle("{\"method\":\"echo\",\"id\":-7,\"jsonrpc\":\"2.0\"}");
	check_result(r, "-7", "null");
	json_decref(r);

	r = handle("{\"jsonrpc\":\"2.0\",\"id\":2.5,\"method\":\"echo\",\"params\":{}}");
	check_result(r, "2.5", "{}");
	json_decref(r);

	/* "id": null is a call (discouraged but valid), not a notification. */
	r = handle("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"echo\",\"params\":{}}");
	check_result(r, "null", "{}");
	json_decref(r);

	/* Surrounding whitespace is fine. */
	r = handle("  \t{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\"}\r ");
	check_result(r, "3", "null");
	json_decref(r);
}

static void
test_parse_request_fields(void **state)
{
	struct jsonrpc_request req;
	json_t *msg, *err = (json_t *)1;

	msg = parse("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"port.add\",\"params\":{\"n\":1}}");
	assert_int_equal(jsonrpc_parse_request(msg, &req, &err), 0);
	assert_null(err);
	assert_ptr_equal(req.root, msg);
	assert_string_equal(req.method, "port.add");
	assert_int_equal(json_integer_value(req.id), 9);
	assert_ptr_equal(req.params, json_object_get(msg, "params"));
	json_decref(msg);

	msg = parse("{\"jsonrpc\":\"2.0\",\"method\":\"x\"}");
	assert_int_equal(jsonrpc_parse_request(msg, &req, &err), 0);
	assert_null(req.id);
	assert_null(req.params);
	json_decref(msg);

	msg = parse("{\"jsonrpc\":\"2.0\",\"method\":3,\"id\":4}");
	assert_int_equal(jsonrpc_parse_request(msg, &req, &err), -EINVAL);
	assert_null(req.method);
	check_error(err, JSONRPC_INVALID_REQUEST, "4");
	json_decref(err);
	json_decref(msg);
}

static void
test_parse_errors(void **state)
{
	static const char *const bad[] = {
		"{",
		"{\"jsonrpc\":\"2.0\",",
		"nul",
		"",
		"   ",
		"[1,",
		"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}}",
		"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1} {}",
		"{'jsonrpc':'2.0'}",
		"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"method\":\"fail\",\"id\":1}",
		"{\"jsonrpc\":\"2.0\",\"method\":\"ec\\u0000ho\",\"id\":1}",
		"\xff\xfe{}",
		"{\"jsonrpc\":\"2.0\",\"method\":\"\xc3\",\"id\":1}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i], JSONRPC_PARSE_ERROR, "null");
	/* Embedded NUL in the buffer itself. */
	{
		static const char nul[] = "{\"jsonrpc\":\"2.0\",\0\"method\":\"echo\"}";
		json_t *r = jsonrpc_handle_text(nul, sizeof(nul) - 1, dispatch, NULL);

		check_error(r, JSONRPC_PARSE_ERROR, "null");
		json_decref(r);
	}
}

static void
test_not_an_object(void **state)
{
	expect_error("1", JSONRPC_INVALID_REQUEST, "null");
	expect_error("\"echo\"", JSONRPC_INVALID_REQUEST, "null");
	expect_error("true", JSONRPC_INVALID_REQUEST, "null");
	expect_error("null", JSONRPC_INVALID_REQUEST, "null");
	expect_error("{}", JSONRPC_INVALID_REQUEST, "null");
}

static void
test_bad_version(void **state)
{
	/* The id is valid, so it is echoed to let the client match the error. */
	expect_error("{\"id\":1,\"method\":\"echo\"}", JSONRPC_INVALID_REQUEST, "1");
	expect_error(
		"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"echo\"}", JSONRPC_INVALID_REQUEST, "1");
	expect_error("{\"jsonrpc\":2.0,\"id\":\"a\",\"method\":\"echo\"}", JSONRPC_INVALID_REQUEST,
		"\"a\"");
	expect_error(
		"{\"jsonrpc\":null,\"id\":1,\"method\":\"echo\"}", JSONRPC_INVALID_REQUEST, "1");
}

static void
test_bad_method(void **state)
{
	expect_error("{\"jsonrpc\":\"2.0\",\"id\":1}", JSONRPC_INVALID_REQUEST, "1");
	expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":1}", JSONRPC_INVALID_REQUEST, "1");
	expect_error(
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}", JSONRPC_INVALID_REQUEST, "1");
	expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":[\"echo\"]}",
		JSONRPC_INVALID_REQUEST, "1");
	/* A valid request for a method the dispatcher does not know. */
	expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope\"}", JSONRPC_METHOD_NOT_FOUND,
		"1");
}

static void
test_bad_params(void **state)
{
	static const char *const bad[] = {"\"x\"", "5", "true", "null", "1.5"};
	char text[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
			"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":%s}", bad[i]);
		calls = 0;
		expect_error(text, JSONRPC_INVALID_REQUEST, "1");
		assert_int_equal(calls, 0);
	}
}

static void
test_bad_id(void **state)
{
	static const char *const bad[] = {"{}", "[]", "[1]", "true", "false"};
	char text[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"echo\"}",
			bad[i]);
		expect_error(text, JSONRPC_INVALID_REQUEST, "null");
	}
}

static void
test_unknown_member(void **state)
{
	json_t *r = handle("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"param\":{}}");
	const char *msg;

	check_error(r, JSONRPC_INVALID_REQUEST, "1");
	msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
	assert_non_null(strstr(msg, "param"));
	json_decref(r);
}

static void
test_notification(void **state)
{
	calls = 0;
	assert_null(handle("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{}}"));
	/* Errors of notifications are not reported either... */
	assert_null(handle("{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}"));
	assert_null(handle("{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}"));
	assert_null(handle("{\"jsonrpc\":\"2.0\",\"method\":\"null\"}"));
	assert_int_equal(calls, 4);
	/* ...but an invalid request is not a notification. */
	expect_error("{\"jsonrpc\":\"2.0\",\"method\":1}", JSONRPC_INVALID_REQUEST, "null");
	expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":1}",
		JSONRPC_INVALID_REQUEST, "null");
	assert_int_equal(calls, 4);
}

static void
test_internal_error(void **state)
{
	expect_error("{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"method\":\"null\"}",
		JSONRPC_INTERNAL_ERROR, "\"q\"");
}

static void
test_app_error(void **state)
{
	json_t *r = handle("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"fail\"}");
	json_t *e, *data;

	check_error(r, JSONRPC_APP_ERROR, "5");
	e = json_object_get(r, "error");
	assert_string_equal(
		json_string_value(json_object_get(e, "message")), "port vhu0: already exists");
	data = json_object_get(e, "data");
	assert_int_equal(json_integer_value(json_object_get(data, "errno")), EEXIST);
	assert_string_equal(json_string_value(json_object_get(data, "error")), "EEXIST");
	json_decref(r);

	r = jsonrpc_app_error(NULL, EBUSY, "bridge br0: ports attached");
	check_error(r, JSONRPC_APP_ERROR, "null");
	data = json_object_get(json_object_get(r, "error"), "data");
	assert_int_equal(json_integer_value(json_object_get(data, "errno")), EBUSY);
	assert_string_equal(json_string_value(json_object_get(data, "error")), "EBUSY");
	json_decref(r);
}

static void
test_errno_name(void **state)
{
	char buf[16];

	assert_string_equal(jsonrpc_errno_name(ENOENT, buf, sizeof(buf)), "ENOENT");
	assert_string_equal(jsonrpc_errno_name(EINVAL, buf, sizeof(buf)), "EINVAL");
	assert_string_equal(jsonrpc_errno_name(4000, buf, sizeof(buf)), "E4000");
}

static void
test_builders(void **state)
{
	json_t *id = json_string("x"), *r;

	r = jsonrpc_result(id, json_pack("{s:i}", "n", 1));
	check_result(r, "\"x\"", "{\"n\":1}");
	json_decref(r);
	/* The id is borrowed: still ours. */
	assert_int_equal(id->refcount, 1);

	r = jsonrpc_error(id, JSONRPC_INVALID_PARAMS, "missing member \"name\"",
		json_pack("{s:s}", "member", "name"));
	check_error(r, JSONRPC_INVALID_PARAMS, "\"x\"");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(r, "error"), "data"), "member")),
		"name");
	json_decref(r);
	json_decref(id);

	/* A message that is not UTF-8 must not lose the error. */
	r = jsonrpc_error(NULL, JSONRPC_INTERNAL_ERROR, "bad \xff", NULL);
	check_error(r, JSONRPC_INTERNAL_ERROR, "null");
	json_decref(r);

	r = jsonrpc_error(NULL, JSONRPC_INTERNAL_ERROR, NULL, NULL);
	check_error(r, JSONRPC_INTERNAL_ERROR, "null");
	json_decref(r);
}

static void
test_ctl_error_set(void **state)
{
	struct ctl_error e;
	char big[400 * 2 + 1];
	json_t *s;
	size_t i;

	ctl_error_set(&e, 0, -ENOENT, "port %s: no such port", "vhu9");
	assert_int_equal(e.code, 0);
	assert_int_equal(e.err_no, ENOENT);
	assert_string_equal(e.message, "port vhu9: no such port");

	/* Truncating two-byte characters must keep the message valid UTF-8,
	 * whatever the parity of the cut. */
	for (i = 0; i < 400; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	big[800] = '\0';
	ctl_error_set(&e, JSONRPC_INVALID_PARAMS, 0, "%s", big);
	s = json_string(e.message);
	assert_non_null(s);
	json_decref(s);
	ctl_error_set(&e, JSONRPC_INVALID_PARAMS, 0, "x%s", big);
	s = json_string(e.message);
	assert_non_null(s);
	json_decref(s);
	assert_true(strlen(e.message) < sizeof(e.message));
	assert_true(strlen(e.message) >= sizeof(e.message) - 4);
}

static void
test_batch_empty(void **state)
{
	json_t *r = handle("[]");

	/* An empty batch gets one error object, not an array. */
	check_error(r, JSONRPC_INVALID_REQUEST, "null");
	json_decref(r);
}

static void
test_batch_invalid_elements(void **state)
{
	json_t *r = handle("[1,2,3]");
	size_t i;

	assert_true(json_is_array(r));
	assert_int_equal(json_array_size(r), 3);
	for (i = 0; i < 3; i++)
		check_error(json_array_get(r, i), JSONRPC_INVALID_REQUEST, "null");
	json_decref(r);

	/* Batches do not nest. */
	r = handle("[[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}]]");
	assert_int_equal(json_array_size(r), 1);
	check_error(json_array_get(r, 0), JSONRPC_INVALID_REQUEST, "null");
	json_decref(r);
}

static void
test_batch_mixed(void **state)
{
	json_t *r;

	calls = 0;
	r = handle("["
		   "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1]},"
		   "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[2]},"
		   "{\"foo\":\"boo\"},"
		   "{\"jsonrpc\":\"2.0\",\"id\":\"5\",\"method\":\"nope\"},"
		   "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"fail\"},"
		   "7"
		   "]");
	assert_int_equal(calls, 4);
	assert_true(json_is_array(r));
	/* The notification is the only request without an answer. */
	assert_int_equal(json_array_size(r), 5);
	check_result(json_array_get(r, 0), "1", "[1]");
	check_error(json_array_get(r, 1), JSONRPC_INVALID_REQUEST, "null");
	check_error(json_array_get(r, 2), JSONRPC_METHOD_NOT_FOUND, "\"5\"");
	check_error(json_array_get(r, 3), JSONRPC_APP_ERROR, "6");
	check_error(json_array_get(r, 4), JSONRPC_INVALID_REQUEST, "null");
	json_decref(r);
}

static void
test_batch_notifications_only(void **state)
{
	calls = 0;
	assert_null(handle("[{\"jsonrpc\":\"2.0\",\"method\":\"echo\"},"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}]"));
	assert_int_equal(calls, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_requests),
		cmocka_unit_test(test_parse_request_fields),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_not_an_object),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_bad_method),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_bad_id),
		cmocka_unit_test(test_unknown_member),
		cmocka_unit_test(test_notification),
		cmocka_unit_test(test_internal_error),
		cmocka_unit_test(test_app_error),
		cmocka_unit_test(test_errno_name),
		cmocka_unit_test(test_builders),
		cmocka_unit_test(test_ctl_error_set),
		cmocka_unit_test(test_batch_empty),
		cmocka_unit_test(test_batch_invalid_elements),
		cmocka_unit_test(test_batch_mixed),
		cmocka_unit_test(test_batch_notifications_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
