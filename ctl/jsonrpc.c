/* SPDX-License-Identifier: BSD-3-Clause */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc.h"

/* vsnprintf() may cut a multi-byte character in two, and jansson refuses
 * strings that are not valid UTF-8: drop a trailing partial sequence. */
static void
utf8_fix_truncation(char *s)
{
	size_t len = strlen(s), i = len, cont = 0, need;
	unsigned char lead;

	while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
		cont++;
	}
	if (i == 0)
		return;
	lead = (unsigned char)s[i - 1];
	if (lead < 0xc0)
		return;
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	if (cont + 1 < need)
		s[i - 1] = '\0';
}

void
ctl_error_set(struct ctl_error *e, int code, int err_no, const char *fmt, ...)
{
	va_list ap;
	int n;

	e->code = code;
	e->err_no = err_no < 0 ? -err_no : err_no;
	va_start(ap, fmt);
	n = vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	if (n < 0)
		e->message[0] = '\0';
	else if ((size_t)n >= sizeof(e->message))
		utf8_fix_truncation(e->message);
}

json_t *
jsonrpc_result(json_t *id, json_t *result)
{
	json_t *resp = json_object();

	if (resp == NULL) {
		json_decref(result);
		return NULL;
	}
	if (json_object_set_new(resp, "jsonrpc", json_string("2.0")) < 0 ||
		json_object_set_new(resp, "id", id ? json_incref(id) : json_null()) < 0 ||
		json_object_set_new(resp, "result", result ? result : json_null()) < 0) {
		json_decref(resp);
		return NULL;
	}
	return resp;
}

json_t *
jsonrpc_error(json_t *id, int code, const char *message, json_t *data)
{
	json_t *resp = json_object();
	json_t *err = json_object();

	if (resp == NULL || err == NULL)
		goto fail;
	if (json_object_set_new(err, "code", json_integer(code)) < 0)
		goto fail;
	/* json_string() rejects invalid UTF-8; never lose the error for it. */
	if (json_object_set_new(err, "message", json_string(message ? message : "")) < 0 &&
		json_object_set_new(err, "message", json_string("(invalid message)")) < 0)
		goto fail;
	if (data != NULL && json_object_set_new(err, "data", data) < 0) {
		data = NULL; /* consumed by the failed set */
		goto fail;
	}
	data = NULL;
	if (json_object_set_new(resp, "jsonrpc", json_string("2.0")) < 0 ||
		json_object_set_new(resp, "id", id ? json_incref(id) : json_null()) < 0 ||
		json_object_set_new(resp, "error", err) < 0) {
		err = NULL;
		goto fail;
	}
	return resp;
fail:
	json_decref(data);
	json_decref(err);
	json_decref(resp);
	return NULL;
}

const char *
jsonrpc_errno_name(int err_no, char *buf, size_t len)
{
	const char *name = strerrorname_np(err_no);

	if (name != NULL)
		return name;
	snprintf(buf, len, "E%d", err_no);
	return buf;
}

json_t *
jsonrpc_app_error(json_t *id, int err_no, const char *message)
{
	char buf[16];

	if (err_no < 0)
		err_no = -err_no;
	return jsonrpc_error(id, JSONRPC_APP_ERROR, message,
		json_pack("{s:i,s:s}", "errno", err_no, "error",
			jsonrpc_errno_name(err_no, buf, sizeof(buf))));
}

static bool
valid_id(const json_t *id)
{
	return json_is_string(id) || json_is_number(id) || json_is_null(id);
}

int
jsonrpc_parse_request(json_t *msg, struct jsonrpc_request *req, json_t **error_response)
{
	const char *why = NULL;
	char buf[128];
	json_t *id = NULL;
	json_t *v;
	const char *key;

	memset(req, 0, sizeof(*req));
	*error_response = NULL;

	if (!json_is_object(msg)) {
		why = "Invalid Request: not an object";
		goto invalid;
	}
	/* Echo the id in the error whenever it is usable, so that a client
	 * that pipelines requests can tell which one was rejected. */
	id = json_object_get(msg, "id");
	if (id != NULL && !valid_id(id)) {
		id = NULL;
		why = "Invalid Request: \"id\" must be a string, a number or null";
		goto invalid;
	}
	v = json_object_get(msg, "jsonrpc");
	if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
		why = "Invalid Request: \"jsonrpc\" must be \"2.0\"";
		goto invalid;
	}
	v = json_object_get(msg, "method");
	if (!json_is_string(v)) {
		why = "Invalid Request: \"method\" must be a string";
		goto invalid;
	}
	req->method = json_string_value(v);
	v = json_object_get(msg, "params");
	if (v != NULL && !json_is_object(v) && !json_is_array(v)) {
		why = "Invalid Request: \"params\" must be an object or an array";
		goto invalid;
	}
	req->params = v;
	/* A misspelt member ("param", "Id") would otherwise be silently
	 * ignored and turn a call into a notification or drop its params. */
	json_object_foreach(msg, key, v) {
		if (strcmp(key, "jsonrpc") != 0 && strcmp(key, "method") != 0 &&
			strcmp(key, "params") != 0 && strcmp(key, "id") != 0) {
			snprintf(
				buf, sizeof(buf), "Invalid Request: unknown member \"%.64s\"", key);
			why = buf;
			goto invalid;
		}
	}
	req->root = msg;
	req->id = id;
	return 0;

invalid:
	memset(req, 0, sizeof(*req));
	*error_response = jsonrpc_error(id, JSONRPC_INVALID_REQUEST, why, NULL);
	return -EINVAL;
}

/* Handle one element: a single request or one member of a batch. */
static json_t *
handle_one(json_t *msg, jsonrpc_dispatch_fn fn, void *arg)
{
	struct jsonrpc_request req;
	json_t *resp;

	if (jsonrpc_parse_request(msg, &req, &resp) < 0)
		return resp;
	resp = fn(&req, arg);
	if (req.id == NULL) {
		/* Notifications never get an answer, not even an error. */
		json_decref(resp);
		return NULL;
	}
	if (resp == NULL)
		resp = jsonrpc_error(req.id, JSONRPC_INTERNAL_ERROR, "Internal error", NULL);
	return resp;
}

json_t *
jsonrpc_handle(json_t *msg, jsonrpc_dispatch_fn fn, void *arg)
{
	json_t *out, *el, *resp;
	size_t i;

	if (!json_is_array(msg))
		return handle_one(msg, fn, arg);

	if (json_array_size(msg) == 0)
		return jsonrpc_error(
			NULL, JSONRPC_INVALID_REQUEST, "Invalid Request: empty batch", NULL);
	out = json_array();
	if (out == NULL)
		return NULL;
	json_array_foreach(msg, i, el) {
		/* Run every request even if memory for the answers runs out:
		 * the client cannot retry a batch that half happened. */
		resp = handle_one(el, fn, arg);
		if (resp != NULL)
			json_array_append_new(out, resp);
	}
	/* A batch of notifications is answered with nothing at all. */
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *
jsonrpc_handle_text(const char *buf, size_t len, jsonrpc_dispatch_fn fn, void *arg)
{
	char msg[JSON_ERROR_TEXT_LENGTH + 64];
	json_error_t jerr;
	json_t *root, *resp;

	/* Duplicate keys are rejected: which of two "method" members wins is
	 * parser-dependent, and a proxy may see the other one. NULs inside
	 * strings are rejected too (the default) since methods use C strings. */
	root = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(msg, sizeof(msg), "Parse error: %s (byte %d)", jerr.text, jerr.position);
		return jsonrpc_error(NULL, JSONRPC_PARSE_ERROR, msg, NULL);
	}
	resp = jsonrpc_handle(root, fn, arg);
	json_decref(root);
	return resp;
}
