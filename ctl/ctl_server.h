/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * Control socket server: JSON-RPC 2.0 over a unix stream socket, one JSON
 * text per '\n'-terminated line (see ctl/API.md).
 *
 * The server is single-threaded and never blocks: the daemon's main loop
 * polls the one descriptor returned by ctl_server_fd() (level-triggered,
 * readable when anything needs doing, including idle-client expiry) and
 * calls ctl_server_process(). Methods run synchronously from that call, in
 * the main loop's thread.
 */

#ifndef VHOSTD_CTL_SERVER_H
#define VHOSTD_CTL_SERVER_H

#include <sys/types.h>

#include <jansson.h>

#include "jsonrpc.h" /* struct ctl_error, ctl_error_set(), JSONRPC_* codes */

/* Largest request line accepted, newline excluded (API.md). */
#define CTL_MAX_REQUEST (1024 * 1024)
/* Connections beyond this are answered with an error and closed. */
#define CTL_MAX_CLIENTS 64
/* A client that neither sends nor receives for this long is closed. */
#define CTL_IDLE_TIMEOUT_MS 60000

struct ctl_server;

/*
 * A method. params is borrowed and never NULL: absent params are passed as
 * an empty object; it is an array if the client used positional params.
 * Returns a new reference to the result (use json_object() for "{}"), or
 * NULL after filling *err. A failed method must leave no change behind.
 */
typedef json_t *(*ctl_method_fn)(json_t *params, void *arg, struct ctl_error *err);

/*
 * Create the server listening on path. The parent directory is created
 * (0755) if missing. An existing socket file nobody listens on is replaced;
 * returns -EADDRINUSE if a live server owns it and -EEXIST if path is not a
 * socket. The socket gets mode and, when group is non-NULL and names an
 * existing group, that group (otherwise the group is left as is).
 * Returns 0 or a negative errno.
 */
int ctl_server_create(struct ctl_server **out, const char *path, mode_t mode, const char *group);

/*
 * Register a method. Returns -EEXIST if the name is taken and -EINVAL for
 * the names reserved by JSON-RPC ("rpc.*"). The name is copied.
 */
int ctl_server_register(struct ctl_server *s, const char *method, ctl_method_fn fn, void *arg);

/* Change the idle timeout (milliseconds, > 0); mainly for tests. */
void ctl_server_set_idle_timeout(struct ctl_server *s, unsigned int ms);

/* The descriptor to poll for readability (an internal epoll instance). */
int ctl_server_fd(const struct ctl_server *s);

/*
 * Do the pending work without blocking: accept, read, answer, write,
 * expire. Each call does a bounded amount of work so that one busy client
 * cannot starve the dataplane control loop; the fd stays readable while
 * work is left.
 */
void ctl_server_process(struct ctl_server *s);

/* Close every connection and the listener; unlink the socket if it is
 * still the one this server created. Accepts NULL. */
void ctl_server_destroy(struct ctl_server *s);

#endif /* VHOSTD_CTL_SERVER_H */
