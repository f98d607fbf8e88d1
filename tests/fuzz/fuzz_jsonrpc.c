/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * libFuzzer harness for the control API's request handling: arbitrary
 * bytes go through jsonrpc_handle_text() exactly as one line read from the
 * control socket would, with a dispatcher that exercises every kind of
 * answer. Besides the sanitizers, it checks the protocol invariants that a
 * client relies on.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonrpc.h"

static json_t *
dispatch(const struct jsonrpc_request *req, void *arg)
{
	struct ctl_error err;
	json_t *v;
	size_t len;

	if (req->method == NULL || req->root == NULL)
		abort();
	len = strlen(req->method);
	if (req->params != NULL && !json_is_object(req->params) && !json_is_array(req->params))
		abort();
	if (req->id != NULL && !json_is_string(req->id) && !json_is_number(req->id) &&
		!json_is_null(req->id))
		abort();
	switch (len % 5) {
	case 0:
		return jsonrpc_result(req->id, req->params ? json_incref(req->params) : NULL);
	case 1:
		/* Method names end up in error messages: the truncation of a
		 * long name must keep the message valid UTF-8. */
		ctl_error_set(&err, 0, -(int)(len % 140), "method %s failed: %s", req->method,
			req->method);
		v = json_string(err.message);
		if (v == NULL)
			abort();
		json_decref(v);
		return jsonrpc_app_error(req->id, err.err_no, err.message);
	case 2:
		return jsonrpc_error(req->id, JSONRPC_INVALID_PARAMS, req->method,
			req->params ? json_deep_copy(req->params) : NULL);
	case 3:
		return NULL;
	default:
		return jsonrpc_result(req->id, json_object());
	}
}

static void
check_response(const json_t *r)
{
	const json_t *id = json_object_get(r, "id");
	const json_t *e = json_object_get(r, "error");

	if (!json_is_object(r) || !json_is_string(json_object_get(r, "jsonrpc")) ||
		strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0)
		abort();
	if (!json_is_string(id) && !json_is_number(id) && !json_is_null(id))
		abort();
	if ((json_object_get(r, "result") == NULL) == (e == NULL))
		abort();
	if (e != NULL && (!json_is_integer(json_object_get(e, "code")) ||
				 !json_is_string(json_object_get(e, "message"))))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *resp, *back, *el;
	char *text;
	size_t i;

	resp = jsonrpc_handle_text((const char *)data, size, dispatch, NULL);
	if (resp == NULL)
		return 0;
	if (json_is_array(resp)) {
		/* A batch answer is never empty: nothing is sent instead. */
		if (json_array_size(resp) == 0)
			abort();
		json_array_foreach(resp, i, el)
			check_response(el);
	} else {
		check_response(resp);
	}
	/* The server sends it as one compact line: it must encode, contain
	 * no raw newline and decode to the same value. */
	text = json_dumps(resp, JSON_COMPACT);
	if (text == NULL || strchr(text, '\n') != NULL)
		abort();
	back = json_loads(text, 0, NULL);
	if (back == NULL || !json_equal(back, resp))
		abort();
	json_decref(back);
	free(text);
	json_decref(resp);
	return 0;
}
