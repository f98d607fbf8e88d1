/* SPDX-License-Identifier: BSD-3-Clause */

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#include "ctl_server.h"
#include "fsutil.h"
#include "jsonrpc.h"

/* Bytes read from one client per ctl_server_process() call, so that a
 * client streaming requests cannot monopolise the main loop. */
#define READ_CHUNK (64 * 1024)
#define READ_BUDGET (4 * READ_CHUNK)
/* Unsent output above which a client's input is no longer processed: a
 * client that sends but never reads must not make the daemon buffer
 * answers without bound. */
#define WRITE_HIGH (1024 * 1024)
/* An idle output buffer bigger than this is freed rather than kept. */
#define WBUF_KEEP (64 * 1024)
#define MAX_EVENTS 64
#define ACCEPT_BUDGET 16
#define LISTEN_BACKLOG 16

/* epoll tags; clients use (serial << 32 | slot). */
#define TAG_LISTEN UINT64_MAX
#define TAG_TIMER (UINT64_MAX - 1)

struct ctl_method {
	char *name;
	ctl_method_fn fn;
	void *arg;
};

struct ctl_client {
	int fd;
	unsigned int slot;
	uint32_t serial; /* tells a stale epoll event from a reused slot */
	uint32_t events; /* epoll events currently registered */
	char *rbuf;
	size_t rpos; /* start of the unprocessed input */
	size_t rlen;
	size_t rcap;
	char *wbuf;
	size_t woff; /* start of the unsent output */
	size_t wlen;
	size_t wcap;
	bool rd_eof;  /* peer shut down its sending side */
	bool wr_dead; /* peer cannot receive any more: output dropped */
	bool closing; /* protocol violation: flush the error, then close */
	bool dead;    /* socket error: close now */
	uint64_t last_active_ms;
};

struct ctl_server {
	int lfd;
	int epfd;
	int tfd;
	char *path;
	dev_t dev; /* identity of the socket file we bound, see destroy */
	ino_t ino;
	bool listen_paused;
	bool timer_armed;
	unsigned int idle_ms;
	uint32_t next_serial;
	unsigned int nclients;
	struct ctl_client *clients[CTL_MAX_CLIENTS];
	struct ctl_method *methods;
	size_t nmethods;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- methods ---------------------------------------------------------- */

static const struct ctl_method *
find_method(const struct ctl_server *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nmethods; i++)
		if (strcmp(s->methods[i].name, name) == 0)
			return &s->methods[i];
	return NULL;
}

int
ctl_server_register(struct ctl_server *s, const char *method, ctl_method_fn fn, void *arg)
{
	struct ctl_method *m;
	char *name;

	if (method == NULL || method[0] == '\0' || fn == NULL || strncmp(method, "rpc.", 4) == 0)
		return -EINVAL;
	if (find_method(s, method) != NULL)
		return -EEXIST;
	name = strdup(method);
	if (name == NULL)
		return -ENOMEM;
	m = realloc(s->methods, (s->nmethods + 1) * sizeof(*m));
	if (m == NULL) {
		free(name);
		return -ENOMEM;
	}
	s->methods = m;
	s->methods[s->nmethods++] = (struct ctl_method){.name = name, .fn = fn, .arg = arg};
	return 0;
}

static json_t *
dispatch(const struct jsonrpc_request *req, void *arg)
{
	struct ctl_server *s = arg;
	const struct ctl_method *m = find_method(s, req->method);
	struct ctl_error err;
	json_t *params, *result;
	ctl_method_fn fn;
	void *fn_arg;
	char msg[192];

	if (m == NULL) {
		/* Quote the name only when short: the message must stay valid
		 * UTF-8 and readable. */
		if (strlen(req->method) <= 128)
			snprintf(msg, sizeof(msg), "Method not found: %s", req->method);
		else
			snprintf(msg, sizeof(msg), "Method not found");
		return jsonrpc_error(req->id, JSONRPC_METHOD_NOT_FOUND, msg, NULL);
	}
	/* The method may register others, moving the table: copy first. */
	fn = m->fn;
	fn_arg = m->arg;
	params = req->params ? json_incref(req->params) : json_object();
	if (params == NULL)
		return NULL;
	memset(&err, 0, sizeof(err));
	result = fn(params, fn_arg, &err);
	json_decref(params);
	if (result != NULL)
		return jsonrpc_result(req->id, result);

	err.message[sizeof(err.message) - 1] = '\0';
	if (err.code == 0 && err.err_no == 0)
		return jsonrpc_error(req->id, JSONRPC_INTERNAL_ERROR,
			"Internal error: method failed without a reason", NULL);
	if (err.code == 0 || err.code == JSONRPC_APP_ERROR)
		return jsonrpc_app_error(
			req->id, err.err_no, err.message[0] ? err.message : strerror(err.err_no));
	return jsonrpc_error(req->id, err.code, err.message[0] ? err.message : "Error", NULL);
}

/* ---- epoll bookkeeping ------------------------------------------------ */

static int
epoll_set(struct ctl_server *s, int op, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = {.events = events, .data.u64 = tag};

	return epoll_ctl(s->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

static uint64_t
client_tag(const struct ctl_client *c)
{
	return (uint64_t)c->serial << 32 | c->slot;
}

/* The timer ticks only while something may expire, so that an idle daemon
 * is not woken up for nothing. */
static void
timer_update(struct ctl_server *s)
{
	bool want = s->nclients > 0 || s->listen_paused;
	struct itimerspec its;
	unsigned int tick;

	if (want == s->timer_armed)
		return;
	memset(&its, 0, sizeof(its));
	if (want) {
		tick = s->idle_ms / 4;
		if (tick > 1000)
			tick = 1000;
		if (tick < 10)
			tick = 10;
		its.it_interval.tv_sec = tick / 1000;
		its.it_interval.tv_nsec = (long)(tick % 1000) * 1000000;
		its.it_value = its.it_interval;
	}
	if (timerfd_settime(s->tfd, 0, &its, NULL) == 0)
		s->timer_armed = want;
}

/* ---- clients ---------------------------------------------------------- */

static void
client_close(struct ctl_server *s, struct ctl_client *c)
{
	/* close() removes the fd from the epoll set. */
	close(c->fd);
	s->clients[c->slot] = NULL;
	s->nclients--;
	free(c->rbuf);
	free(c->wbuf);
	free(c);
	timer_update(s);
}

static size_t
pending_out(const struct ctl_client *c)
{
	return c->wr_dead ? 0 : c->wlen - c->woff;
}

static bool
has_complete_line(const struct ctl_client *c)
{
	return memchr(c->rbuf + c->rpos, '\n', c->rlen - c->rpos) != NULL;
}

/* Input that could be handled right now without reading more. */
static bool
has_unprocessed(const struct ctl_client *c)
{
	if (c->closing || c->dead || c->rlen == c->rpos)
		return false;
	return c->rd_eof || has_complete_line(c);
}

static bool
can_read(const struct ctl_client *c)
{
	return !c->rd_eof && !c->closing && !c->dead && pending_out(c) < WRITE_HIGH;
}

static int
wbuf_reserve(struct ctl_client *c, size_t need)
{
	size_t cap;
	char *p;

	if (c->wcap - c->wlen >= need)
		return 0;
	if (c->woff > 0) {
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
		if (c->wcap - c->wlen >= need)
			return 0;
	}
	cap = c->wcap ? c->wcap : 4096;
	while (cap - c->wlen < need)
		cap *= 2;
	p = realloc(c->wbuf, cap);
	if (p == NULL)
		return -ENOMEM;
	c->wbuf = p;
	c->wcap = cap;
	return 0;
}

static int
wbuf_append_cb(const char *buf, size_t len, void *arg)
{
	struct ctl_client *c = arg;

	if (wbuf_reserve(c, len) < 0)
		return -1;
	memcpy(c->wbuf + c->wlen, buf, len);
	c->wlen += len;
	return 0;
}

static void
queue_response(struct ctl_client *c, json_t *resp)
{
	size_t mark = c->wlen;
	json_t *err;

	if (c->wr_dead)
		return;
	if (json_dump_callback(resp, wbuf_append_cb, c, JSON_COMPACT) == 0 &&
		wbuf_append_cb("\n", 1, c) == 0)
		return;
	/* Never send half an answer: replace it with a short error. The id is
	 * not known here for batches, and the failure is memory anyway. */
	c->wlen = mark;
	err = jsonrpc_error(json_object_get(resp, "id"), JSONRPC_INTERNAL_ERROR,
		"Internal error: cannot encode the response", NULL);
	if (err == NULL || json_dump_callback(err, wbuf_append_cb, c, JSON_COMPACT) != 0 ||
		wbuf_append_cb("\n", 1, c) != 0) {
		c->wlen = mark;
		c->dead = true;
	}
	json_decref(err);
}

static void
client_flush(struct ctl_client *c)
{
	ssize_t n;

	if (c->wr_dead) {
		c->woff = c->wlen = 0;
		return;
	}
	while (c->woff < c->wlen) {
		n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->woff += (size_t)n;
			c->last_active_ms = now_ms();
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		} else {
			/* EPIPE/ECONNRESET: the client went away; whatever it sent
			 * is still handled, its answers are dropped. */
			c->wr_dead = true;
			break;
		}
	}
	c->woff = c->wlen = 0;
	if (c->wcap > WBUF_KEEP) {
		free(c->wbuf);
		c->wbuf = NULL;
		c->wcap = 0;
	}
}

static void
handle_line(struct ctl_server *s, struct ctl_client *c, const char *line, size_t len)
{
	json_t *resp;
	size_t i;

	/* Blank lines (e.g. a trailing "\r\n" or keep-alives) are not requests. */
	for (i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			break;
	if (i == len)
		return;
	resp = jsonrpc_handle_text(line, len, dispatch, s);
	if (resp != NULL) {
		queue_response(c, resp);
		json_decref(resp);
	}
}

static void
reject_oversized(struct ctl_client *c)
{
	json_t *resp;
	char msg[96];

	snprintf(msg, sizeof(msg), "Invalid Request: request exceeds %d bytes", CTL_MAX_REQUEST);
	resp = jsonrpc_error(NULL, JSONRPC_INVALID_REQUEST, msg, NULL);
	if (resp != NULL) {
		queue_response(c, resp);
		json_decref(resp);
	}
	/* The rest of the stream cannot be framed reliably: give up on it. */
	c->closing = true;
	c->rpos = c->rlen = 0;
}

static void
process_input(struct ctl_server *s, struct ctl_client *c)
{
	char *line, *nl;
	size_t len;

	while (!c->closing && !c->dead && pending_out(c) < WRITE_HIGH && c->rpos < c->rlen) {
		line = c->rbuf + c->rpos;
		nl = memchr(line, '\n', c->rlen - c->rpos);
		if (nl == NULL) {
			len = c->rlen - c->rpos;
			if (len > CTL_MAX_REQUEST) {
				reject_oversized(c);
				return;
			}
			if (!c->rd_eof)
				break;
			/* The client half-closed after a request without '\n'. */
			c->rpos = c->rlen;
			handle_line(s, c, line, len);
			break;
		}
		len = (size_t)(nl - line);
		if (len > CTL_MAX_REQUEST) {
			reject_oversized(c);
			return;
		}
		c->rpos += len + 1;
		handle_line(s, c, line, len);
	}
	/* Compact once per pass rather than per line: moving the tail after
	 * every short line of a large read would be quadratic. */
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
		/* Do not keep a big request's buffer for an idle client. */
		if (c->rcap > 2 * READ_CHUNK) {
			free(c->rbuf);
			c->rbuf = NULL;
			c->rcap = 0;
		}
	} else if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
}

static void
client_read(struct ctl_server *s, struct ctl_client *c)
{
	size_t budget = READ_BUDGET, cap;
	ssize_t n;
	char *p;

	while (can_read(c) && budget > 0) {
		if (c->rcap - c->rlen < READ_CHUNK) {
			/* Grow geometrically, but rlen never exceeds
			 * CTL_MAX_REQUEST when reading (longer partial lines are
			 * rejected by process_input()), which bounds the size. */
			cap = c->rcap ? c->rcap * 2 : 2 * READ_CHUNK;
			if (cap > CTL_MAX_REQUEST + 2 * READ_CHUNK)
				cap = CTL_MAX_REQUEST + 2 * READ_CHUNK;
			if (cap < c->rlen + READ_CHUNK)
				cap = c->rlen + READ_CHUNK;
			p = realloc(c->rbuf, cap);
			if (p == NULL) {
				c->dead = true;
				return;
			}
			c->rbuf = p;
			c->rcap = cap;
		}
		n = recv(c->fd, c->rbuf + c->rlen, READ_CHUNK, MSG_DONTWAIT);
		if (n > 0) {
			c->rlen += (size_t)n;
			budget -= (size_t)n < budget ? (size_t)n : budget;
			c->last_active_ms = now_ms();
			process_input(s, c);
		} else if (n == 0) {
			c->rd_eof = true;
			process_input(s, c);
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return;
		} else {
			c->dead = true;
			return;
		}
	}
}

/* Settle a client after any event: handle what can be handled, send what
 * can be sent, then either close it or register the events it waits for. */
static void
client_update(struct ctl_server *s, struct ctl_client *c)
{
	uint32_t want = 0;

	process_input(s, c);
	client_flush(c);
	if (c->dead) {
		client_close(s, c);
		return;
	}
	if ((c->rd_eof || c->closing || c->wr_dead) && !has_unprocessed(c) && pending_out(c) == 0) {
		client_close(s, c);
		return;
	}
	if (can_read(c))
		want |= EPOLLIN;
	/* Unprocessed input held back by WRITE_HIGH is resumed from the
	 * EPOLLOUT event; nothing else would wake us up for it. */
	if (pending_out(c) > 0 || has_unprocessed(c))
		want |= EPOLLOUT;
	if (want != c->events) {
		if (epoll_set(s, EPOLL_CTL_MOD, c->fd, want, client_tag(c)) < 0) {
			client_close(s, c);
			return;
		}
		c->events = want;
	}
}

static void
client_event(struct ctl_server *s, struct ctl_client *c, uint32_t events)
{
	if (events & EPOLLERR) {
		client_close(s, c);
		return;
	}
	if (events & (EPOLLOUT | EPOLLHUP))
		client_flush(c);
	/* After a hang-up, read what is left even if output was pending:
	 * the flush above found the peer gone and dropped it. */
	if (events & (EPOLLIN | EPOLLHUP))
		client_read(s, c);
	client_update(s, c);
}

static void
reject_client(int fd)
{
	json_t *resp;
	char *text;
	char msg[64];

	snprintf(msg, sizeof(msg), "too many control connections (%d)", CTL_MAX_CLIENTS);
	resp = jsonrpc_app_error(NULL, EBUSY, msg);
	text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
	if (text != NULL) {
		/* Best effort: a fresh socket buffer always has room for it. */
		if (send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			(void)send(fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	free(text);
	json_decref(resp);
	close(fd);
}

static void
accept_clients(struct ctl_server *s)
{
	struct ctl_client *c;
	unsigned int i, slot;
	int fd;

	for (i = 0; i < ACCEPT_BUDGET; i++) {
		fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
				errno == ENOMEM) {
				/* The listener would stay readable and spin the main
				 * loop: stop watching it until the next tick. */
				if (epoll_set(s, EPOLL_CTL_MOD, s->lfd, 0, TAG_LISTEN) == 0) {
					s->listen_paused = true;
					timer_update(s);
				}
			}
			return;
		}
		if (s->nclients >= CTL_MAX_CLIENTS) {
			reject_client(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		for (slot = 0; s->clients[slot] != NULL; slot++)
			;
		c->fd = fd;
		c->slot = slot;
		c->serial = s->next_serial++;
		c->events = EPOLLIN;
		c->last_active_ms = now_ms();
		if (epoll_set(s, EPOLL_CTL_ADD, fd, c->events, client_tag(c)) < 0) {
			close(fd);
			free(c);
			continue;
		}
		s->clients[slot] = c;
		s->nclients++;
		timer_update(s);
	}
}

static void
on_tick(struct ctl_server *s)
{
	uint64_t expirations, now = now_ms();
	unsigned int i;

	/* Reading clears the readiness; the count does not matter. */
	(void)read(s->tfd, &expirations, sizeof(expirations));
	if (s->listen_paused && epoll_set(s, EPOLL_CTL_MOD, s->lfd, EPOLLIN, TAG_LISTEN) == 0)
		s->listen_paused = false;
	for (i = 0; i < CTL_MAX_CLIENTS; i++) {
		if (s->clients[i] != NULL && now - s->clients[i]->last_active_ms >= s->idle_ms)
			client_close(s, s->clients[i]);
	}
	timer_update(s);
}

void
ctl_server_process(struct ctl_server *s)
{
	struct epoll_event ev[MAX_EVENTS];
	struct ctl_client *c;
	uint64_t tag;
	int i, n;

	n = epoll_wait(s->epfd, ev, MAX_EVENTS, 0);
	for (i = 0; i < n; i++) {
		tag = ev[i].data.u64;
		if (tag == TAG_LISTEN) {
			accept_clients(s);
		} else if (tag == TAG_TIMER) {
			on_tick(s);
		} else {
			c = s->clients[(uint32_t)tag % CTL_MAX_CLIENTS];
			/* Skip events of a client closed earlier in this batch. */
			if (c != NULL && client_tag(c) == tag)
				client_event(s, c, ev[i].events);
		}
	}
}

/* ---- setup and teardown ----------------------------------------------- */

static int
set_group(const char *path, const char *group)
{
	struct group gr, *res = NULL;
	size_t len = 16384;
	char *buf = NULL, *p;
	int rc;

	for (;;) {
		p = realloc(buf, len);
		if (p == NULL) {
			free(buf);
			return -ENOMEM;
		}
		buf = p;
		rc = getgrnam_r(group, &gr, buf, len, &res);
		if (rc != ERANGE || len >= 1024 * 1024)
			break;
		len *= 2;
	}
	/* A missing group is not an error: the socket stays root-only. */
	if (rc == 0 && res != NULL && chown(path, (uid_t)-1, gr.gr_gid) < 0)
		rc = -errno;
	else
		rc = 0;
	free(buf);
	return rc;
}

int
ctl_server_create(struct ctl_server **out, const char *path, mode_t mode, const char *group)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ctl_server *s;
	bool bound = false;
	struct stat st;
	int rc;

	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->lfd = s->epfd = s->tfd = -1;
	s->idle_ms = CTL_IDLE_TIMEOUT_MS;
	s->path = strdup(path);
	if (s->path == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = fs_mkdir_parents(path);
	if (rc < 0)
		goto fail;
	rc = fs_remove_stale_socket(path);
	if (rc < 0)
		goto fail;

	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto fail;
	}
	bound = true;
	/* Permissions are fixed before listen(): until then nobody can
	 * connect, so the umask-derived mode of bind() is never exposed. */
	if (chmod(path, mode) < 0) {
		rc = -errno;
		goto fail;
	}
	if (group != NULL && group[0] != '\0') {
		rc = set_group(path, group);
		if (rc < 0)
			goto fail;
	}
	if (stat(path, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	if (listen(s->lfd, LISTEN_BACKLOG) < 0) {
		rc = -errno;
		goto fail;
	}

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->epfd < 0 || s->tfd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = epoll_set(s, EPOLL_CTL_ADD, s->lfd, EPOLLIN, TAG_LISTEN);
	if (rc == 0)
		rc = epoll_set(s, EPOLL_CTL_ADD, s->tfd, EPOLLIN, TAG_TIMER);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;

fail:
	if (bound)
		unlink(path);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->tfd >= 0)
		close(s->tfd);
	free(s->path);
	free(s);
	return rc;
}

void
ctl_server_set_idle_timeout(struct ctl_server *s, unsigned int ms)
{
	struct itimerspec zero;

	if (ms == 0)
		return;
	s->idle_ms = ms;
	/* Re-arm so that the tick follows the new timeout. */
	if (s->timer_armed) {
		memset(&zero, 0, sizeof(zero));
		timerfd_settime(s->tfd, 0, &zero, NULL);
		s->timer_armed = false;
		timer_update(s);
	}
}

int
ctl_server_fd(const struct ctl_server *s)
{
	return s->epfd;
}

void
ctl_server_destroy(struct ctl_server *s)
{
	struct stat st;
	unsigned int i;
	size_t m;

	if (s == NULL)
		return;
	for (i = 0; i < CTL_MAX_CLIENTS; i++)
		if (s->clients[i] != NULL)
			client_close(s, s->clients[i]);
	close(s->lfd);
	close(s->epfd);
	close(s->tfd);
	/* A newer daemon may already have replaced the file: keep its. */
	if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	for (m = 0; m < s->nmethods; m++)
		free(s->methods[m].name);
	free(s->methods);
	free(s->path);
	free(s);
}
