/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * JSON-RPC 2.0 message handling, independent of any transport.
 *
 * The control server frames the socket stream into JSON texts and hands
 * each one to jsonrpc_handle_text(); this module validates requests
 * (single or batch), calls a dispatcher for every valid one and assembles
 * the response, following https://www.jsonrpc.org/specification.
 * Keeping it free of sockets lets the unit tests and the fuzzer drive
 * every protocol rule directly.
 */

#ifndef VHOSTD_JSONRPC_H
#define VHOSTD_JSONRPC_H

#include <stddef.h>

#include <jansson.h>

/* Error codes defined by JSON-RPC 2.0. */
#define JSONRPC_PARSE_ERROR -32700
#define JSONRPC_INVALID_REQUEST -32600
#define JSONRPC_METHOD_NOT_FOUND -32601
#define JSONRPC_INVALID_PARAMS -32602
#define JSONRPC_INTERNAL_ERROR -32603
/* vhostd application errors; data is {"errno": n, "error": "EEXIST"}. */
#define JSONRPC_APP_ERROR -32000

/*
 * A failure as the control API reports it, used by both sides: methods fill
 * it for the server, ctl_client_call() fills it from the server's answer.
 * code 0 means an application error, sent as -32000 with data
 * {"errno": err_no, "error": "EEXIST"}; otherwise code is a JSON-RPC code
 * such as JSONRPC_INVALID_PARAMS and err_no is informational.
 */
struct ctl_error {
	int code;
	int err_no; /* positive errno, 0 if none */
	char message[256];
};

/*
 * Fill *e. err_no may be given negative (as returned by most functions);
 * it is stored positive. The message should carry context, e.g.
 * "port vhu0: socket /x in use". Truncation keeps it valid UTF-8.
 */
void ctl_error_set(struct ctl_error *e, int code, int err_no, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A validated request. Every pointer borrows from the parsed message. */
struct jsonrpc_request {
	json_t *root;       /* the request object */
	json_t *id;         /* string, number or null; NULL = notification */
	const char *method; /* never NULL */
	json_t *params;     /* object or array; NULL when absent */
};

/*
 * Validate one request object: "jsonrpc" must be "2.0", "method" a string,
 * "params" an object or array if present, "id" a string, number or null if
 * present, and no other member. On success fill *req and return 0. On
 * failure return -EINVAL and store in *error_response a new -32600 error
 * response (id copied when it was valid, null otherwise), which is owed to
 * the client even when the request had no id.
 */
int jsonrpc_parse_request(json_t *msg, struct jsonrpc_request *req, json_t **error_response);

/*
 * Build a success response. id is borrowed (NULL means null); result is
 * stolen (NULL means null). Returns a new reference, NULL if out of memory.
 */
json_t *jsonrpc_result(json_t *id, json_t *result);

/*
 * Build an error response. id is borrowed (NULL means null); data is stolen
 * and omitted when NULL. Returns a new reference, NULL if out of memory.
 */
json_t *jsonrpc_error(json_t *id, int code, const char *message, json_t *data);

/*
 * Build a -32000 application error with data {"errno": err_no,
 * "error": "<symbolic name>"}. err_no may be given positive or negative.
 */
json_t *jsonrpc_app_error(json_t *id, int err_no, const char *message);

/* Symbolic name of a positive errno ("EEXIST"), "E<n>" if unknown. */
const char *jsonrpc_errno_name(int err_no, char *buf, size_t len);

/*
 * Called once per valid request. Returns a new response built with
 * jsonrpc_result()/jsonrpc_error() (for notifications it is discarded,
 * and NULL is allowed). Returning NULL for a call yields -32603.
 */
typedef json_t *(*jsonrpc_dispatch_fn)(const struct jsonrpc_request *req, void *arg);

/*
 * Handle a decoded message: a request object, a batch array or anything
 * else (answered with -32600). Returns the response to send, a new
 * reference: an object, an array for batches, or NULL when nothing must be
 * sent (only notifications) or memory ran out.
 */
json_t *jsonrpc_handle(json_t *msg, jsonrpc_dispatch_fn fn, void *arg);

/*
 * Decode one JSON text (no NUL needed) and handle it; text that is not
 * valid JSON is answered with -32700. Same return as jsonrpc_handle().
 */
json_t *jsonrpc_handle_text(const char *buf, size_t len, jsonrpc_dispatch_fn fn, void *arg);

#endif /* VHOSTD_JSONRPC_H */
