/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * Blocking control-socket client: one connection per call, which keeps the
 * client stateless and never holds one of the server's connection slots
 * between calls.
 */

#ifndef VHOSTD_CTL_CLIENT_H
#define VHOSTD_CTL_CLIENT_H

#include <jansson.h>

#include "jsonrpc.h" /* struct ctl_error */

#define CTL_DEFAULT_SOCKET "/run/vhostd/vhostd.sock"

/* Responses larger than this are treated as a broken server. */
#define CTL_CLIENT_MAX_RESPONSE (256 * 1024 * 1024)

/*
 * Call method with params (borrowed; NULL sends no params) and wait at
 * most timeout_ms (<= 0: no limit) for the answer. On success return 0
 * and store a new reference to the result in *result. Otherwise *result
 * is NULL, *err is filled and the return value tells the failure:
 *   -EPROTO     the server answered with an error: err->code is its
 *               JSON-RPC code (JSONRPC_APP_ERROR for application errors,
 *               with err->err_no taken from data.errno), err->message its
 *               message;
 *   -EBADMSG    the answer was not a valid JSON-RPC response;
 *   -ETIMEDOUT  no answer in time;
 *   other       a transport failure (-ENOENT, -ECONNREFUSED, -EACCES...):
 *               err->code is 0, err->err_no the errno and err->message
 *               says what failed ("connect to /x: ...").
 */
int ctl_client_call(const char *sock_path, const char *method, json_t *params, int timeout_ms,
	json_t **result, struct ctl_error *err);

#endif /* VHOSTD_CTL_CLIENT_H */
