/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * Control socket server and client over a real unix socket in a temporary
 * directory. The server runs in the test's main thread, driven by
 * ctl_server_process() as the daemon's main loop would; clients run in a
 * second thread and only record what they see (cmocka assertions are made
 * from the main thread).
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctl_client.h"
#include "ctl_server.h"

#define IO_TIMEOUT_MS 10000

struct fixture {
	char dir[64];
	char path[128];
	struct ctl_server *s;
	int count; /* calls of method "count" */
};

/* ---- methods ---------------------------------------------------------- */

static json_t *
m_echo(json_t *params, void *arg, struct ctl_error *err)
{
	return json_incref(params);
}

static json_t *
m_fail(json_t *params, void *arg, struct ctl_error *err)
{
	ctl_error_set(err, 0, -EEXIST, "port %s: already exists", "vhu0");
	return NULL;
}

static json_t *
m_badparams(json_t *params, void *arg, struct ctl_error *err)
{
	ctl_error_set(err, JSONRPC_INVALID_PARAMS, 0, "unknown member \"foo\"");
	return NULL;
}

static json_t *
m_nullfail(json_t *params, void *arg, struct ctl_error *err)
{
	return NULL;
}

static json_t *
m_count(json_t *params, void *arg, struct ctl_error *err)
{
	struct fixture *f = arg;

	f->count++;
	return json_pack("{s:i}", "count", f->count);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/ctltest.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* A missing parent directory is created by the server. */
	snprintf(f->path, sizeof(f->path), "%s/run/vhostd.sock", f->dir);
	assert_int_equal(ctl_server_create(&f->s, f->path, 0660, "no-such-group-vhostd-test"), 0);
	assert_int_equal(ctl_server_register(f->s, "echo", m_echo, f), 0);
	assert_int_equal(ctl_server_register(f->s, "fail", m_fail, f), 0);
	assert_int_equal(ctl_server_register(f->s, "badparams", m_badparams, f), 0);
	assert_int_equal(ctl_server_register(f->s, "nullfail", m_nullfail, f), 0);
	assert_int_equal(ctl_server_register(f->s, "count", m_count, f), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	ctl_server_destroy(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* ---- running a client thread against the server ----------------------- */

struct runner {
	void *(*fn)(void *);
	void *arg;
	int done;
};

static void *
runner_main(void *p)
{
	struct runner *r = p;

	r->fn(r->arg);
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One turn of the daemon's main loop. */
static void
serve_once(struct fixture *f, int timeout_ms)
{
	struct pollfd pfd = {.fd = ctl_server_fd(f->s), .events = POLLIN};

	if (poll(&pfd, 1, timeout_ms) > 0)
		ctl_server_process(f->s);
}

/* Serve until the client thread is done; the client's own socket
 * timeouts guarantee that it ends. */
static void
run_client(struct fixture *f, void *(*fn)(void *), void *arg)
{
	struct runner r = {.fn = fn, .arg = arg};
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, runner_main, &r), 0);
	while (!__atomic_load_n(&r.done, __ATOMIC_SEQ_CST))
		serve_once(f, 10);
	pthread_join(th, NULL);
}

/* ---- raw client helpers (client thread: no assertions) ---------------- */

struct conn {
	int fd;
	char *buf;
	size_t len;
	size_t cap;
};

static int
conn_open(const char *path, struct conn *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000};

	memset(c, 0, sizeof(*c));
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(c->fd);
		c->fd = -1;
		return -errno;
	}
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

/* Send everything, pausing between pieces of chunk bytes if chunk > 0. */
static int
conn_send(struct conn *c, const char *data, size_t len, size_t chunk)
{
	size_t n;
	ssize_t w;

	while (len > 0) {
		n = chunk && chunk < len ? chunk : len;
		w = send(c->fd, data, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		data += w;
		len -= (size_t)w;
		if (chunk)
			usleep(200);
	}
	return 0;
}

/*
 * Wait up to timeout_ms for input. Returns 1 if data is buffered, 0 on
 * timeout, -1 on EOF (or reset) with nothing buffered.
 */
static int
conn_fill(struct conn *c, int timeout_ms)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	ssize_t n;
	char *p;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	if (c->cap - c->len < 65536) {
		p = realloc(c->buf, c->cap + 65536 * 4);
		if (p == NULL)
			return -1;
		c->buf = p;
		c->cap += 65536 * 4;
	}
	n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 1;
}

/* Next line without its '\n', malloc'ed; NULL on timeout or EOF. */
static char *
conn_line(struct conn *c, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	char *nl, *line;
	size_t len;

	for (;;) {
		nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl != NULL) {
			len = (size_t)(nl - c->buf);
			line = strndup(c->buf, len);
			memmove(c->buf, nl + 1, c->len - len - 1);
			c->len -= len + 1;
			return line;
		}
		if (now_ms() >= deadline || conn_fill(c, (int)(deadline - now_ms())) <= 0)
			return NULL;
	}
}

static json_t *
conn_json(struct conn *c, int timeout_ms)
{
	char *line = conn_line(c, timeout_ms);
	json_t *v;

	if (line == NULL)
		return NULL;
	v = json_loads(line, JSON_DECODE_ANY, NULL);
	free(line);
	return v;
}

/* 1 if the server closed the connection within timeout_ms, 0 if not,
 * -1 if it sent more data instead. */
static int
conn_eof(struct conn *c, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	int rc;

	if (c->len > 0)
		return -1;
	for (;;) {
		rc = conn_fill(c, (int)(deadline - now_ms()));
		if (rc < 0)
			return 1;
		if (rc > 0)
			return -1;
		if (now_ms() >= deadline)
			return 0;
	}
}

/* Bytes of make_echo() text around the padding, for a one-digit id. */
#define ECHO_OVERHEAD                                                                              \
	(sizeof("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"echo\",\"params\":{\"s\":\"\"}}") - 1)

/* A request for "echo" of exactly total bytes (for the size limit). */
static char *
make_echo(int id, size_t total)
{
	char prefix[96];
	const char *suffix = "\"}}";
	size_t plen, slen = strlen(suffix), pad;
	char *s;

	plen = (size_t)snprintf(prefix, sizeof(prefix),
		"{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"echo\",\"params\":{\"s\":\"", id);
	if (total < plen + slen)
		return NULL;
	pad = total - plen - slen;
	s = malloc(total + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, prefix, plen);
	memset(s + plen, 'x', pad);
	memcpy(s + plen + pad, suffix, slen + 1);
	return s;
}

/* ---- a scripted exchange ---------------------------------------------- */

#define MAX_LINES 16

struct xchg {
	const char *path;
	const char *req; /* text sent in one go (or in chunks) */
	size_t req_len;  /* 0: strlen(req) */
	size_t chunk;    /* > 0: send in pieces of this size */
	bool shut_wr;    /* half-close after sending */
	int want;        /* answer lines to read */
	int quiet_ms;    /* then check that nothing else comes for this long */
	bool want_eof;   /* then check that the server closes */
	/* results */
	int conn_err;
	int send_err;
	json_t *resp[MAX_LINES];
	int got;
	int eof;   /* conn_eof() result */
	int extra; /* conn_eof() result of the quiet check */
};

static void *
xchg_thread(void *p)
{
	struct xchg *x = p;
	struct conn c;

	x->conn_err = conn_open(x->path, &c);
	if (x->conn_err < 0)
		return NULL;
	x->send_err = conn_send(&c, x->req, x->req_len ? x->req_len : strlen(x->req), x->chunk);
	if (x->shut_wr)
		shutdown(c.fd, SHUT_WR);
	for (x->got = 0; x->got < x->want; x->got++) {
		x->resp[x->got] = conn_json(&c, IO_TIMEOUT_MS);
		if (x->resp[x->got] == NULL)
			break;
	}
	if (x->quiet_ms > 0)
		x->extra = conn_eof(&c, x->quiet_ms);
	if (x->want_eof)
		x->eof = conn_eof(&c, IO_TIMEOUT_MS);
	conn_close(&c);
	return NULL;
}

static void
xchg_run(struct fixture *f, struct xchg *x)
{
	x->path = f->path;
	run_client(f, xchg_thread, x);
	assert_int_equal(x->conn_err, 0);
	assert_int_equal(x->got, x->want);
}

static void
xchg_free(struct xchg *x)
{
	int i;

	for (i = 0; i < x->got; i++)
		json_decref(x->resp[i]);
}

static void
check_error(const json_t *r, int code, const char *id)
{
	json_t *want = json_loads(id, JSON_DECODE_ANY, NULL);
	const json_t *e = json_object_get(r, "error");

	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
	assert_true(json_equal(json_object_get(r, "id"), want));
	assert_non_null(e);
	assert_null(json_object_get(r, "result"));
	assert_int_equal(json_integer_value(json_object_get(e, "code")), code);
	json_decref(want);
}

static void
check_result(const json_t *r, const char *id, const char *result)
{
	json_t *want_id = json_loads(id, JSON_DECODE_ANY, NULL);
	json_t *want = json_loads(result, JSON_DECODE_ANY, NULL);

	assert_non_null(r);
	assert_true(json_equal(json_object_get(r, "id"), want_id));
	assert_null(json_object_get(r, "error"));
	assert_true(json_equal(json_object_get(r, "result"), want));
	json_decref(want);
	json_decref(want_id);
}

/* Send text, expect one error line with code and id. */
static void
expect_error(struct fixture *f, const char *text, int code, const char *id)
{
	struct xchg x = {.req = text, .want = 1};

	xchg_run(f, &x);
	check_error(x.resp[0], code, id);
	xchg_free(&x);
}

/* ---- socket setup ----------------------------------------------------- */

static void
test_socket_created(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
}

static void
test_socket_group(void **state)
{
	struct fixture *f = *state;
	struct ctl_server *s;
	struct group *gr = getgrgid(getegid());
	char path[160];
	struct stat st;

	assert_non_null(gr);
	snprintf(path, sizeof(path), "%s/grp.sock", f->dir);
	assert_int_equal(ctl_server_create(&s, path, 0600, gr->gr_name), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_gid, gr->gr_gid);
	assert_int_equal(st.st_mode & 07777, 0600);
	ctl_server_destroy(s);
}

static void
test_live_socket_kept(void **state)
{
	struct fixture *f = *state;
	struct ctl_server *s = NULL;
	struct xchg x = {.req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\n", .want = 1};

	assert_int_equal(ctl_server_create(&s, f->path, 0660, NULL), -EADDRINUSE);
	assert_null(s);
	/* The running server still owns a working socket. */
	xchg_run(f, &x);
	check_result(x.resp[0], "1", "{}");
	xchg_free(&x);
}

static void
test_stale_socket_replaced(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ctl_server *s;
	int fd;

	/* What a crashed daemon leaves: a socket file nobody listens on. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/stale.sock", f->dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(ctl_server_create(&s, sa.sun_path, 0660, NULL), 0);
	ctl_server_destroy(s);
	assert_int_equal(access(sa.sun_path, F_OK), -1);
}

static void
test_not_a_socket(void **state)
{
	struct fixture *f = *state;
	struct ctl_server *s;
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/file", f->dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ctl_server_create(&s, path, 0660, NULL), -EEXIST);
	assert_int_equal(access(path, F_OK), 0);
}

static void
test_bad_paths(void **state)
{
	struct ctl_server *s;
	char path[200];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(ctl_server_create(&s, path, 0660, NULL), -ENAMETOOLONG);
	assert_int_equal(ctl_server_create(&s, "", 0660, NULL), -EINVAL);
}

static void
test_destroy_unlinks_own_socket_only(void **state)
{
	struct fixture *f = *state;
	struct ctl_server *s;
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/own.sock", f->dir);
	assert_int_equal(ctl_server_create(&s, path, 0660, NULL), 0);
	ctl_server_destroy(s);
	assert_int_equal(access(path, F_OK), -1);

	/* If the file was replaced (a new daemon took over), keep it. */
	assert_int_equal(ctl_server_create(&s, path, 0660, NULL), 0);
	assert_int_equal(unlink(path), 0);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	ctl_server_destroy(s);
	assert_int_equal(access(path, F_OK), 0);
	ctl_server_destroy(NULL);
}

static void
test_register(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(ctl_server_register(f->s, "echo", m_echo, f), -EEXIST);
	assert_int_equal(ctl_server_register(f->s, "rpc.discover", m_echo, f), -EINVAL);
	assert_int_equal(ctl_server_register(f->s, "", m_echo, f), -EINVAL);
	assert_int_equal(ctl_server_register(f->s, "x", NULL, f), -EINVAL);
}

static void
test_fd_readable_on_connect(void **state)
{
	struct fixture *f = *state;
	struct pollfd pfd = {.fd = ctl_server_fd(f->s), .events = POLLIN};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	assert_int_equal(poll(&pfd, 1, 0), 0);
	strcpy(sa.sun_path, f->path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	/* Pending connections complete without accept() on unix sockets. */
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	ctl_server_process(f->s);
	close(fd);
	/* The close is noticed and the client freed. */
	serve_once(f, 1000);
	serve_once(f, 0);
}

/* ---- ctl_client_call ---------------------------------------------------- */

struct call {
	const char *path;
	const char *method;
	json_t *params;
	int timeout_ms;
	int rc;
	json_t *result;
	struct ctl_error err;
};

static void *
call_thread(void *p)
{
	struct call *c = p;

	c->rc = ctl_client_call(c->path, c->method, c->params,
		c->timeout_ms ? c->timeout_ms : IO_TIMEOUT_MS, &c->result, &c->err);
	return NULL;
}

static void
do_call(struct fixture *f, struct call *c)
{
	if (c->path == NULL)
		c->path = f->path;
	run_client(f, call_thread, c);
}

static void
test_client_echo(void **state)
{
	struct fixture *f = *state;
	struct call c = {.method = "echo"};

	c.params = json_pack("{s:i,s:[i,i],s:s}", "a", 1, "b", 1, 2, "s", "h\xc3\xa9");
	do_call(f, &c);
	assert_int_equal(c.rc, 0);
	assert_true(json_equal(c.result, c.params));
	json_decref(c.result);
	json_decref(c.params);

	/* Positional params are passed through. */
	c = (struct call){.method = "echo", .params = json_pack("[i,s]", 7, "x")};
	do_call(f, &c);
	assert_int_equal(c.rc, 0);
	assert_true(json_equal(c.result, c.params));
	json_decref(c.result);
	json_decref(c.params);

	/* No params: the method sees an empty object. */
	c = (struct call){.method = "echo"};
	do_call(f, &c);
	assert_int_equal(c.rc, 0);
	assert_true(json_is_object(c.result));
	assert_int_equal(json_object_size(c.result), 0);
	json_decref(c.result);
}

static void
test_client_app_error(void **state)
{
	struct fixture *f = *state;
	struct call c = {.method = "fail"};

	do_call(f, &c);
	assert_int_equal(c.rc, -EPROTO);
	assert_null(c.result);
	assert_int_equal(c.err.code, JSONRPC_APP_ERROR);
	assert_int_equal(c.err.err_no, EEXIST);
	assert_string_equal(c.err.message, "port vhu0: already exists");
}

static void
test_client_rpc_errors(void **state)
{
	struct fixture *f = *state;
	struct call c = {.method = "port.nope"};

	do_call(f, &c);
	assert_int_equal(c.rc, -EPROTO);
	assert_int_equal(c.err.code, JSONRPC_METHOD_NOT_FOUND);
	assert_non_null(strstr(c.err.message, "port.nope"));

	c = (struct call){.method = "badparams"};
	do_call(f, &c);
	assert_int_equal(c.rc, -EPROTO);
	assert_int_equal(c.err.code, JSONRPC_INVALID_PARAMS);
	assert_int_equal(c.err.err_no, 0);
	assert_string_equal(c.err.message, "unknown member \"foo\"");

	c = (struct call){.method = "nullfail"};
	do_call(f, &c);
	assert_int_equal(c.rc, -EPROTO);
	assert_int_equal(c.err.code, JSONRPC_INTERNAL_ERROR);
}

static void
test_client_transport_errors(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ctl_error err;
	json_t *result;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/none.sock", f->dir);
	assert_int_equal(ctl_client_call(sa.sun_path, "echo", NULL, 1000, &result, &err), -ENOENT);
	assert_null(result);
	assert_int_equal(err.code, 0);
	assert_int_equal(err.err_no, ENOENT);
	assert_non_null(strstr(err.message, "none.sock"));

	/* Bound but not listening. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(
		ctl_client_call(sa.sun_path, "echo", NULL, 1000, &result, &err), -ECONNREFUSED);
	/* Listening but never answering. */
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(
		ctl_client_call(sa.sun_path, "echo", NULL, 200, &result, &err), -ETIMEDOUT);
	assert_int_equal(err.err_no, ETIMEDOUT);
	close(fd);
}

/* A server that answers garbage. */
struct fake {
	int lfd;
	const char *answer;
};

static void *
fake_thread(void *p)
{
	struct fake *fk = p;
	char buf[4096];
	int fd = accept(fk->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	(void)!recv(fd, buf, sizeof(buf), 0);
	(void)!send(fd, fk->answer, strlen(fk->answer), MSG_NOSIGNAL);
	close(fd);
	return NULL;
}

static void
test_client_bad_responses(void **state)
{
	static const char *const bad[] = {
		"not json\n",
		"[]\n",
		"{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}\n",
		"{\"jsonrpc\":\"2.0\",\"id\":999999,\"result\":{}}\n",
		"{\"jsonrpc\":\"2.0\",\"id\":1}\n",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}\n",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"x\"}}\n",
		"{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":1}\n",
	};
	struct fixture *f = *state;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ctl_error err;
	struct fake fk;
	json_t *result;
	pthread_t th;
	size_t i;
	int rc;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/fake.sock", f->dir);
	fk.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fk.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fk.lfd, 4), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fk.answer = bad[i];
		assert_int_equal(pthread_create(&th, NULL, fake_thread, &fk), 0);
		rc = ctl_client_call(sa.sun_path, "echo", NULL, 2000, &result, &err);
		pthread_join(th, NULL);
		/* The ids of other calls are unknown here: 999999 cannot match,
		 * and an id-less answer is only acceptable for errors. */
		assert_int_equal(rc, -EBADMSG);
		assert_null(result);
	}
	/* Closed without answering. */
	fk.answer = "";
	assert_int_equal(pthread_create(&th, NULL, fake_thread, &fk), 0);
	rc = ctl_client_call(sa.sun_path, "echo", NULL, 2000, &result, &err);
	pthread_join(th, NULL);
	assert_int_equal(rc, -ECONNRESET);
	close(fk.lfd);
}

/* ---- protocol over the socket ------------------------------------------- */

static void
test_parse_error(void **state)
{
	expect_error(*state, "{\"jsonrpc\":\"2.0\",\n", JSONRPC_PARSE_ERROR, "null");
	expect_error(*state, "\xff\xfe garbage\n", JSONRPC_PARSE_ERROR, "null");
}

static void
test_embedded_nul(void **state)
{
	static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\0\"method\":\"echo\"}\n";
	struct xchg x = {.req = req, .req_len = sizeof(req) - 1, .want = 1};

	xchg_run(*state, &x);
	check_error(x.resp[0], JSONRPC_PARSE_ERROR, "null");
	xchg_free(&x);
}

static void
test_invalid_requests(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "1\n", JSONRPC_INVALID_REQUEST, "null");
	expect_error(f, "\"echo\"\n", JSONRPC_INVALID_REQUEST, "null");
	expect_error(f, "{\"id\":1,\"method\":\"echo\"}\n", JSONRPC_INVALID_REQUEST, "1");
	expect_error(f, "{\"jsonrpc\":\"1.0\",\"id\":\"a\",\"method\":\"echo\"}\n",
		JSONRPC_INVALID_REQUEST, "\"a\"");
	expect_error(
		f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":7}\n", JSONRPC_INVALID_REQUEST, "2");
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"params\":\"x\"}\n",
		JSONRPC_INVALID_REQUEST, "3");
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"echo\"}\n",
		JSONRPC_INVALID_REQUEST, "null");
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"echo\"}\n",
		JSONRPC_INVALID_REQUEST, "null");
	expect_error(f, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"rpc.discover\"}\n",
		JSONRPC_METHOD_NOT_FOUND, "4");
	assert_int_equal(f->count, 0);
}

static void
test_id_types(void **state)
{
	struct xchg x = {
		.req = "{\"jsonrpc\":\"2.0\",\"id\":\"s-1\",\"method\":\"echo\",\"params\":[1]}\n"
		       "{\"jsonrpc\":\"2.0\",\"id\":-42,\"method\":\"echo\",\"params\":[2]}\n"
		       "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"echo\",\"params\":[3]}\n"
		       "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"echo\",\"params\":[4]}\n",
		.want = 4,
	};

	xchg_run(*state, &x);
	check_result(x.resp[0], "\"s-1\"", "[1]");
	check_result(x.resp[1], "-42", "[2]");
	check_result(x.resp[2], "1.5", "[3]");
	check_result(x.resp[3], "null", "[4]");
	xchg_free(&x);
}

static void
test_notification_no_reply(void **state)
{
	struct fixture *f = *state;
	struct xchg x = {
		.req = "{\"jsonrpc\":\"2.0\",\"method\":\"count\"}\n"
		       "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}\n"
		       "{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}\n",
		.quiet_ms = 300,
	};

	xchg_run(f, &x);
	assert_int_equal(x.extra, 0);
	assert_int_equal(f->count, 1);

	/* Followed by a call, only the call is answered. */
	x = (struct xchg){
		.req = "{\"jsonrpc\":\"2.0\",\"method\":\"count\"}\n"
		       "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"count\"}\n",
		.want = 1,
		.quiet_ms = 200,
	};
	xchg_run(f, &x);
	check_result(x.resp[0], "9", "{\"count\":3}");
	assert_int_equal(x.extra, 0);
	xchg_free(&x);
}

static void
test_batches(void **state)
{
	struct fixture *f = *state;
	json_t *b;
	struct xchg x = {
		.req = "[]\n"
		       "[1,2]\n"
		       "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"a\":1}},"
		       "{\"jsonrpc\":\"2.0\",\"method\":\"count\"},"
		       "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"fail\"},"
		       "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"nope\"},"
		       "{\"bad\":1}]\n"
		       "[{\"jsonrpc\":\"2.0\",\"method\":\"count\"},"
		       "{\"jsonrpc\":\"2.0\",\"method\":\"count\"}]\n"
		       "{\"jsonrpc\":\"2.0\",\"id\":\"last\",\"method\":\"count\"}\n",
		.want = 4,
		.quiet_ms = 200,
	};

	xchg_run(f, &x);
	/* Empty batch: one error object. */
	check_error(x.resp[0], JSONRPC_INVALID_REQUEST, "null");
	b = x.resp[1];
	assert_true(json_is_array(b));
	assert_int_equal(json_array_size(b), 2);
	check_error(json_array_get(b, 0), JSONRPC_INVALID_REQUEST, "null");
	check_error(json_array_get(b, 1), JSONRPC_INVALID_REQUEST, "null");
	b = x.resp[2];
	assert_int_equal(json_array_size(b), 4);
	check_result(json_array_get(b, 0), "1", "{\"a\":1}");
	check_error(json_array_get(b, 1), JSONRPC_APP_ERROR, "2");
	check_error(json_array_get(b, 2), JSONRPC_METHOD_NOT_FOUND, "3");
	check_error(json_array_get(b, 3), JSONRPC_INVALID_REQUEST, "null");
	/* The batch of notifications produced no line at all. */
	check_result(x.resp[3], "\"last\"", "{\"count\":4}");
	assert_int_equal(x.extra, 0);
	xchg_free(&x);
}

static void
test_pipelined_and_blank_lines(void **state)
{
	struct xchg x = {
		.req = "\n\r\n  \t\n"
		       "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1]}\r\n"
		       "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\",\"params\":[2]}\n"
		       "\n"
		       "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"params\":[3]}\n",
		.want = 3,
		.quiet_ms = 200,
	};

	xchg_run(*state, &x);
	check_result(x.resp[0], "1", "[1]");
	check_result(x.resp[1], "2", "[2]");
	check_result(x.resp[2], "3", "[3]");
	assert_int_equal(x.extra, 0);
	xchg_free(&x);
}

static void
test_eof_terminated_request(void **state)
{
	struct xchg x = {
		.req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1]}\n"
		       "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\",\"params\":[2]}",
		.shut_wr = true,
		.want = 2,
		.want_eof = true,
	};

	xchg_run(*state, &x);
	check_result(x.resp[0], "1", "[1]");
	check_result(x.resp[1], "2", "[2]");
	assert_int_equal(x.eof, 1);
	xchg_free(&x);
}

static void
test_partial_reads(void **state)
{
	struct xchg x = {
		.req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[\"split\"]}\n"
		       "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\",\"params\":[\"bytes\"]}"
		       "\n",
		.chunk = 1,
		.want = 2,
	};

	xchg_run(*state, &x);
	check_result(x.resp[0], "1", "[\"split\"]");
	check_result(x.resp[1], "2", "[\"bytes\"]");
	xchg_free(&x);
}

static void
test_max_size_request(void **state)
{
	char *req = make_echo(1, CTL_MAX_REQUEST);
	struct xchg x = {.want = 1};
	char *full;
	const char *s;

	/* Exactly the limit (newline excluded) is accepted, and the ~1 MiB
	 * answer needs many partial writes. */
	assert_non_null(req);
	assert_int_equal(strlen(req), CTL_MAX_REQUEST);
	assert_int_not_equal(asprintf(&full, "%s\n", req), -1);
	x.req = full;
	xchg_run(*state, &x);
	s = json_string_value(json_object_get(json_object_get(x.resp[0], "result"), "s"));
	assert_non_null(s);
	assert_int_equal(strlen(s), CTL_MAX_REQUEST - ECHO_OVERHEAD);
	xchg_free(&x);
	free(full);
	free(req);
}

static void
test_oversized_request(void **state)
{
	struct fixture *f = *state;
	char *req = make_echo(1, CTL_MAX_REQUEST + 1);
	struct xchg x = {.want = 1, .want_eof = true};
	struct call c = {.method = "echo"};
	const char *msg;

	assert_non_null(req);
	x.req = req;
	xchg_run(f, &x);
	check_error(x.resp[0], JSONRPC_INVALID_REQUEST, "null");
	msg = json_string_value(json_object_get(json_object_get(x.resp[0], "error"), "message"));
	assert_non_null(strstr(msg, "1048576"));
	assert_int_equal(x.eof, 1);
	xchg_free(&x);

	/* Without any newline at all, the same. */
	x = (struct xchg){.req = req, .want = 1, .want_eof = true};
	req[CTL_MAX_REQUEST] = 'x';
	xchg_run(f, &x);
	check_error(x.resp[0], JSONRPC_INVALID_REQUEST, "null");
	assert_int_equal(x.eof, 1);
	xchg_free(&x);
	free(req);

	/* ctl_client_call reports the server's reason, not a broken pipe. */
	req = malloc(CTL_MAX_REQUEST + 2);
	assert_non_null(req);
	memset(req, 'y', CTL_MAX_REQUEST + 1);
	req[CTL_MAX_REQUEST + 1] = '\0';
	c.params = json_pack("{s:s}", "s", req);
	do_call(f, &c);
	assert_int_equal(c.rc, -EPROTO);
	assert_int_equal(c.err.code, JSONRPC_INVALID_REQUEST);
	json_decref(c.params);
	free(req);

	/* The server is fine afterwards. */
	c = (struct call){.method = "echo"};
	do_call(f, &c);
	assert_int_equal(c.rc, 0);
	json_decref(c.result);
}

/* A client that pipelines big requests without reading the answers must
 * neither block the server nor stop it from serving others. */
#define SLOW_REQS 8
#define SLOW_SIZE (300 * 1024)

struct slow {
	const char *path;
	int call_rc;
	int got;
	int in_order;
	uint64_t call_ms;
};

static void *
slow_thread(void *p)
{
	struct slow *sl = p;
	struct pollfd pfd;
	size_t len = 0, off = 0;
	struct ctl_error err;
	json_t *result, *r;
	char *all = NULL, *one;
	struct conn c;
	uint64_t t0;
	ssize_t n;
	int i;

	for (i = 0; i < SLOW_REQS; i++) {
		one = make_echo(i, SLOW_SIZE);
		all = realloc(all, len + SLOW_SIZE + 1);
		memcpy(all + len, one, SLOW_SIZE);
		all[len + SLOW_SIZE] = '\n';
		len += SLOW_SIZE + 1;
		free(one);
	}
	if (conn_open(sl->path, &c) < 0)
		goto out;
	fcntl(c.fd, F_SETFL, O_NONBLOCK);
	/* Push until the socket is full: the server, unable to send the
	 * answers, must stop reading rather than block or buffer forever. */
	for (i = 0; i < 100 && off < len; i++) {
		n = send(c.fd, all + off, len - off, MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		else
			usleep(10000);
	}
	t0 = now_ms();
	sl->call_rc = ctl_client_call(sl->path, "echo", NULL, 5000, &result, &err);
	sl->call_ms = now_ms() - t0;
	if (sl->call_rc == 0)
		json_decref(result);
	/* Now read everything, sending the rest as the server makes room. */
	sl->in_order = 1;
	while (sl->got < SLOW_REQS) {
		pfd = (struct pollfd){.fd = c.fd, .events = POLLIN | (off < len ? POLLOUT : 0)};
		if (poll(&pfd, 1, IO_TIMEOUT_MS) <= 0)
			break;
		if ((pfd.revents & POLLOUT) && off < len) {
			n = send(c.fd, all + off, len - off, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
		}
		if (pfd.revents & (POLLIN | POLLHUP)) {
			if (conn_fill(&c, 0) < 0)
				break;
			while ((r = NULL, one = memchr(c.buf, '\n', c.len)) != NULL) {
				size_t l = (size_t)(one - c.buf);

				r = json_loadb(c.buf, l, 0, NULL);
				if (json_integer_value(json_object_get(r, "id")) != sl->got ||
					strlen(json_string_value(json_object_get(
						       json_object_get(r, "result"), "s"))
							?: "") != SLOW_SIZE - ECHO_OVERHEAD)
					sl->in_order = 0;
				json_decref(r);
				memmove(c.buf, one + 1, c.len - l - 1);
				c.len -= l + 1;
				sl->got++;
			}
		}
	}
	conn_close(&c);
out:
	free(all);
	return NULL;
}

static void
test_slow_reader_does_not_block(void **state)
{
	struct fixture *f = *state;
	struct slow sl = {.path = f->path};

	run_client(f, slow_thread, &sl);
	assert_int_equal(sl.call_rc, 0);
	assert_true(sl.call_ms < 2000);
	assert_int_equal(sl.got, SLOW_REQS);
	assert_int_equal(sl.in_order, 1);
}

/* A client that sends and goes away at once: the notification still runs,
 * and answers to a vanished client do not hurt. */
static void *
hit_and_run_thread(void *p)
{
	struct fixture *f = p;
	char *big = make_echo(5, 512 * 1024);
	struct conn c;

	if (conn_open(f->path, &c) == 0) {
		conn_send(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"count\"}\n", 35, 0);
		conn_close(&c);
	}
	if (big != NULL && conn_open(f->path, &c) == 0) {
		conn_send(&c, big, strlen(big), 0);
		conn_send(&c, "\n", 1, 0);
		conn_close(&c);
	}
	free(big);
	return NULL;
}

static void
test_client_vanishes(void **state)
{
	struct fixture *f = *state;
	struct call c = {.method = "count"};
	uint64_t deadline;

	run_client(f, hit_and_run_thread, f);
	deadline = now_ms() + 5000;
	while (f->count < 1 && now_ms() < deadline)
		serve_once(f, 10);
	assert_int_equal(f->count, 1);
	do_call(f, &c);
	assert_int_equal(c.rc, 0);
	assert_int_equal(json_integer_value(json_object_get(c.result, "count")), 2);
	json_decref(c.result);
}

struct many {
	const char *path;
	int opened;
	int answered;
	int rejected_code;
	int rejected_errno;
	int rejected_eof;
	int reconnected;
};

static void *
many_thread(void *p)
{
	static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\n";
	struct many *m = p;
	struct conn c[CTL_MAX_CLIENTS + 1];
	json_t *r, *e;
	int i, tries;

	for (i = 0; i < CTL_MAX_CLIENTS; i++) {
		if (conn_open(m->path, &c[i]) < 0)
			break;
		m->opened++;
		/* A round trip proves the server took this connection. */
		conn_send(&c[i], req, sizeof(req) - 1, 0);
		r = conn_json(&c[i], IO_TIMEOUT_MS);
		if (r != NULL && json_object_get(r, "result") != NULL)
			m->answered++;
		json_decref(r);
	}
	if (conn_open(m->path, &c[i]) == 0) {
		r = conn_json(&c[i], IO_TIMEOUT_MS);
		e = json_object_get(r, "error");
		m->rejected_code = (int)json_integer_value(json_object_get(e, "code"));
		m->rejected_errno = (int)json_integer_value(
			json_object_get(json_object_get(e, "data"), "errno"));
		json_decref(r);
		m->rejected_eof = conn_eof(&c[i], IO_TIMEOUT_MS);
		conn_close(&c[i]);
	}
	/* Once a slot is free, connections are served again. */
	conn_close(&c[0]);
	for (tries = 0; tries < 100 && !m->reconnected; tries++) {
		if (conn_open(m->path, &c[0]) < 0)
			break;
		conn_send(&c[0], req, sizeof(req) - 1, 0);
		r = conn_json(&c[0], IO_TIMEOUT_MS);
		m->reconnected = r != NULL && json_object_get(r, "result") != NULL;
		json_decref(r);
		conn_close(&c[0]);
		if (!m->reconnected)
			usleep(10000);
	}
	for (i = 1; i < m->opened; i++)
		conn_close(&c[i]);
	return NULL;
}

static void
test_client_limit(void **state)
{
	struct fixture *f = *state;
	struct many m = {.path = f->path};

	run_client(f, many_thread, &m);
	assert_int_equal(m.opened, CTL_MAX_CLIENTS);
	assert_int_equal(m.answered, CTL_MAX_CLIENTS);
	assert_int_equal(m.rejected_code, JSONRPC_APP_ERROR);
	assert_int_equal(m.rejected_errno, EBUSY);
	assert_int_equal(m.rejected_eof, 1);
	assert_true(m.reconnected);
}

struct idle {
	const char *path;
	int eof_idle;
	int eof_partial;
	uint64_t idle_ms;
};

static void *
idle_thread(void *p)
{
	struct idle *id = p;
	struct conn c;
	uint64_t t0 = now_ms();

	if (conn_open(id->path, &c) == 0) {
		id->eof_idle = conn_eof(&c, 5000);
		id->idle_ms = now_ms() - t0;
		conn_close(&c);
	}
	/* Half a request then silence (slowloris) is idle too. */
	if (conn_open(id->path, &c) == 0) {
		conn_send(&c, "{\"jsonrpc\":", 11, 0);
		id->eof_partial = conn_eof(&c, 5000);
		conn_close(&c);
	}
	return NULL;
}

static void
test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	struct idle id = {.path = f->path};

	ctl_server_set_idle_timeout(f->s, 200);
	run_client(f, idle_thread, &id);
	assert_int_equal(id.eof_idle, 1);
	assert_true(id.idle_ms >= 150);
	assert_int_equal(id.eof_partial, 1);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_socket_created),
		T(test_socket_group),
		T(test_live_socket_kept),
		T(test_stale_socket_replaced),
		T(test_not_a_socket),
		T(test_bad_paths),
		T(test_destroy_unlinks_own_socket_only),
		T(test_register),
		T(test_fd_readable_on_connect),
		T(test_client_echo),
		T(test_client_app_error),
		T(test_client_rpc_errors),
		T(test_client_transport_errors),
		T(test_client_bad_responses),
		T(test_parse_error),
		T(test_embedded_nul),
		T(test_invalid_requests),
		T(test_id_types),
		T(test_notification_no_reply),
		T(test_batches),
		T(test_pipelined_and_blank_lines),
		T(test_eof_terminated_request),
		T(test_partial_reads),
		T(test_max_size_request),
		T(test_oversized_request),
		T(test_slow_reader_does_not_block),
		T(test_client_vanishes),
		T(test_client_limit),
		T(test_idle_timeout),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
