/* SPDX-License-Identifier: BSD-3-Clause */

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ctl_client.h"

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before deadline for poll(): -1 means no deadline. */
static int
remaining(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Wait for events on fd; returns 0, -ETIMEDOUT or a negative errno. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n, left;

	for (;;) {
		left = remaining(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, left);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int
transport_error(struct ctl_error *err, int rc, const char *what, const char *path)
{
	ctl_error_set(err, 0, rc, "%s %s: %s", what, path, strerror(-rc));
	return rc;
}

static int
connect_socket(const char *path, int64_t deadline, int *out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		rc = -errno;
		if (rc == -EINTR)
			continue;
		/* A unix socket reports a full backlog as EAGAIN rather than
		 * waiting: the server is busy, retry until the deadline. */
		if (rc == -EAGAIN && remaining(deadline) != 0) {
			poll(NULL, 0, 10);
			continue;
		}
		close(fd);
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	}
	*out = fd;
	return 0;
}

static int
send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	ssize_t n;
	int rc;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Read one '\n'-terminated line into a malloc'ed buffer (newline dropped). */
static int
recv_line(int fd, int64_t deadline, char **out, size_t *out_len)
{
	size_t len = 0, cap = 0, scanned = 0;
	char *buf = NULL, *p, *nl;
	ssize_t n;
	int rc;

	for (;;) {
		if (cap - len < 4096) {
			if (cap >= CTL_CLIENT_MAX_RESPONSE) {
				rc = -EMSGSIZE;
				goto fail;
			}
			cap = cap ? cap * 2 : 65536;
			p = realloc(buf, cap);
			if (p == NULL) {
				rc = -ENOMEM;
				goto fail;
			}
			buf = p;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n > 0) {
			len += (size_t)n;
			nl = memchr(buf + scanned, '\n', len - scanned);
			scanned = len;
			if (nl != NULL) {
				*out = buf;
				*out_len = (size_t)(nl - buf);
				return 0;
			}
			continue;
		}
		if (n == 0) {
			/* Closed without an answer (or with a truncated one). */
			rc = -ECONNRESET;
			goto fail;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			rc = -errno;
			goto fail;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc < 0)
			goto fail;
	}
fail:
	free(buf);
	return rc;
}

static int
bad_response(struct ctl_error *err, const char *why)
{
	ctl_error_set(err, 0, EBADMSG, "invalid response from server: %s", why);
	return -EBADMSG;
}

static int
decode_response(const char *buf, size_t len, json_int_t id, json_t **result, struct ctl_error *err)
{
	json_t *resp, *rid, *v, *e, *data;
	json_error_t jerr;
	int rc;

	resp = json_loadb(buf, len, 0, &jerr);
	if (resp == NULL)
		return bad_response(err, jerr.text);
	rc = bad_response(err, "not a JSON-RPC 2.0 response");
	if (!json_is_object(resp))
		goto out;
	v = json_object_get(resp, "jsonrpc");
	if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0)
		goto out;
	/* A null id is legitimate for errors the server could not attribute
	 * (parse error, oversized request, too many connections). */
	rid = json_object_get(resp, "id");
	e = json_object_get(resp, "error");
	if (!(json_is_integer(rid) && json_integer_value(rid) == id) &&
		!(json_is_null(rid) && e != NULL)) {
		rc = bad_response(err, "id mismatch");
		goto out;
	}
	v = json_object_get(resp, "result");
	if ((v == NULL) == (e == NULL))
		goto out;
	if (v != NULL) {
		*result = json_incref(v);
		rc = 0;
		goto out;
	}
	if (!json_is_integer(json_object_get(e, "code")) ||
		!json_is_string(json_object_get(e, "message")))
		goto out;
	data = json_object_get(e, "data");
	ctl_error_set(err, (int)json_integer_value(json_object_get(e, "code")),
		(int)json_integer_value(json_object_get(data, "errno")), "%s",
		json_string_value(json_object_get(e, "message")));
	rc = -EPROTO;
out:
	json_decref(resp);
	return rc;
}

int
ctl_client_call(const char *sock_path, const char *method, json_t *params, int timeout_ms,
	json_t **result, struct ctl_error *err)
{
	static json_int_t next_id = 1;
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : -1;
	json_int_t id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
	char *text = NULL, *line = NULL;
	json_t *req;
	size_t len = 0;
	int fd = -1, rc, wrc;

	*result = NULL;
	memset(err, 0, sizeof(*err));

	req = json_pack("{s:s,s:I,s:s}", "jsonrpc", "2.0", "id", id, "method", method);
	if (req == NULL || (params != NULL && json_object_set(req, "params", params) < 0)) {
		json_decref(req);
		ctl_error_set(err, 0, EINVAL, "cannot build request for %s", method);
		return -EINVAL;
	}
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL) {
		ctl_error_set(err, 0, ENOMEM, "cannot encode request for %s", method);
		return -ENOMEM;
	}

	rc = connect_socket(sock_path, deadline, &fd);
	if (rc < 0) {
		transport_error(err, rc, "connect to", sock_path);
		goto out;
	}
	wrc = send_all(fd, text, strlen(text), deadline);
	if (wrc == 0)
		wrc = send_all(fd, "\n", 1, deadline);
	/* Even if sending failed, the server may have explained why (e.g. a
	 * request over the size limit) before closing: read that first. */
	rc = recv_line(fd, deadline, &line, &len);
	if (rc < 0) {
		if (wrc < 0 && wrc != -EPIPE && wrc != -ECONNRESET)
			rc = wrc;
		transport_error(
			err, rc, rc == -ETIMEDOUT ? "no answer from" : "read from", sock_path);
		goto out;
	}
	rc = decode_response(line, len, id, result, err);
out:
	if (fd >= 0)
		close(fd);
	free(line);
	free(text);
	return rc;
}
