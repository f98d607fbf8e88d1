/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * vhostctl end to end: the real binary (path in argv[1]) is run against a
 * ctl_server in this process whose methods record their params and return
 * canned results. Checks the KEY=VALUE to JSON mapping, exit codes, error
 * messages and the human tables.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctl_server.h"

static const char *vhostctl_path;

struct fixture {
	char dir[64];
	char path[128];
	struct ctl_server *s;
	json_t *last; /* params of the last call */
	char *last_method;
	int calls;
	char out[65536];
	char err[65536];
};

/* ---- fake daemon methods ------------------------------------------------ */

static struct fixture *g_f;

static void
record(const char *method, json_t *params)
{
	json_decref(g_f->last);
	free(g_f->last_method);
	g_f->last = json_incref(params);
	g_f->last_method = strdup(method);
	g_f->calls++;
}

static json_t *
m_echo(json_t *params, void *arg, struct ctl_error *err)
{
	record(arg, params);
	return json_incref(params);
}

static json_t *
m_empty(json_t *params, void *arg, struct ctl_error *err)
{
	const char *name = json_string_value(json_object_get(params, "name"));

	record(arg, params);
	if (name != NULL && strcmp(name, "nosuch") == 0) {
		ctl_error_set(err, 0, ENOENT, "port %s: no such port", name);
		return NULL;
	}
	return json_object();
}

static json_t *
m_canned(json_t *params, void *arg, struct ctl_error *err)
{
	static const struct {
		const char *method;
		const char *result;
	} canned[] = {
		{"port.list",
			"[{\"name\":\"vhu0\",\"type\":\"vhost-user\",\"state\":\"up\","
			"\"bridge\":\"br0\",\"xconnect\":null,\"socket\":\"/run/vhostd/vhu0.sock\","
			"\"mode\":\"server\",\"queues\":2},"
			"{\"name\":\"long-port-name\",\"type\":\"vhost-user\",\"state\":"
			"\"waiting\","
			"\"bridge\":null,\"xconnect\":\"x0\",\"socket\":\"/s\",\"mode\":\"client\","
			"\"queues\":16}]"},
		{"bridge.show",
			"{\"name\":\"br0\",\"mac-aging-s\":300,\"ports\":[\"vhu0\",\"vhu1\"],"
			"\"mac-table\":[{\"mac\":\"52:54:00:00:00:01\",\"vlan\":0,\"port\":"
			"\"vhu0\","
			"\"age-s\":3,\"static\":false},{\"mac\":\"52:54:00:00:00:02\",\"vlan\":100,"
			"\"port\":\"vhu1\",\"age-s\":0,\"static\":true}]}"},
		{"port.show",
			"{\"name\":\"a\",\"type\":\"vhost-user\",\"single-copy\":\"auto\","
			"\"stats\":{\"name\":\"a\",\"rx\":{\"packets\":30,\"bytes\":3000,"
			"\"drops\":{},\"errors\":0,\"single-copy\":0},\"tx\":{\"packets\":20,"
			"\"bytes\":2000,\"drops\":{},\"errors\":0,\"single-copy\":15},"
			"\"queues\":[{\"queue\":0,\"rx-packets\":20,\"rx-bytes\":2000,"
			"\"tx-packets\":20,\"tx-bytes\":2000,\"tx-drops\":0,\"rx-enabled\":true,"
			"\"tx-enabled\":true,\"pmd\":0,\"single-copy-auto\":{\"path\":\"mbuf\","
			"\"single-copy-cycles\":612,\"mbuf-cycles\":540,\"probes\":41,"
			"\"chose-mbuf\":3,\"judged\":{}}},{\"queue\":1,\"rx-packets\":10,"
			"\"rx-bytes\":1000,\"tx-packets\":0,\"tx-bytes\":0,\"tx-drops\":0,"
			"\"rx-enabled\":true,\"tx-enabled\":true,\"pmd\":1,"
			"\"single-copy-auto\":{\"path\":\"single-copy\","
			"\"single-copy-cycles\":null,\"mbuf-cycles\":null,\"probes\":2,"
			"\"chose-mbuf\":0,\"judged\":{}}}]}}"},
		{"bridge.flush", "{\"flushed\":2}"},
		{"config.save", "{\"path\":\"/etc/vhostd/vhostd.json\"}"},
		{"version", "{\"version\":\"0.1.0\",\"dpdk\":\"DPDK 22.11.1\"}"},
		{"scsi.list", "[{\"name\":\"scsi0\",\"socket\":\"/run/vhostd/scsi0.sock\","
			      "\"mode\":\"server\",\"queues\":2,\"max-sectors\":65535,"
			      "\"cmd-per-lun\":128,\"connected\":true,\"luns\":3},"
			      "{\"name\":\"db-disks\",\"socket\":\"/s\",\"mode\":\"client\","
			      "\"queues\":16,\"max-sectors\":1024,\"cmd-per-lun\":32,"
			      "\"connected\":false,\"luns\":0}]"},
		{"scsi.show",
			"{\"name\":\"scsi0\",\"socket\":\"/run/vhostd/scsi0.sock\","
			"\"mode\":\"server\",\"queues\":2,\"max-sectors\":65535,"
			"\"cmd-per-lun\":128,"
			"\"status\":{\"state\":\"connected\",\"connected\":true,\"vid\":0,"
			"\"features\":\"0x140000003\",\"vrings\":4,\"enabled-queues\":[0,1],"
			"\"control-queue\":true,\"event-queue\":true,\"connects\":1,"
			"\"disconnects\":0,\"broken\":false,\"broken-reason\":null},"
			"\"stats\":{\"requests\":1500,\"tmf\":1,\"bad-chains\":0,\"errors\":2,"
			"\"inflight\":3,\"queues\":["
			"{\"requests\":1000,\"tmf\":1,\"bad-chains\":0,\"errors\":2,"
			"\"inflight\":1,\"queue\":0,\"enabled\":true,\"pmd\":0},"
			"{\"requests\":500,\"tmf\":0,\"bad-chains\":0,\"errors\":0,"
			"\"inflight\":2,\"queue\":1,\"enabled\":false,\"pmd\":null}]},"
			"\"luns\":[{\"name\":\"lun0\",\"target\":0,\"lun\":0,\"backend\":"
			"\"file\"},{\"name\":\"scratch\",\"target\":1,\"lun\":12,"
			"\"backend\":\"ram\"}]}"},
		{"lun.list", "[{\"name\":\"lun0\",\"controller\":\"scsi0\",\"target\":0,"
			     "\"lun\":0,\"backend\":\"file\",\"size\":10737418240,"
			     "\"readonly\":false},"
			     "{\"name\":\"scratch\",\"controller\":\"scsi0\",\"target\":1,"
			     "\"lun\":12,\"backend\":\"ram\",\"size\":1000960,\"readonly\":true}]"},
		{"lun.show", "{\"name\":\"lun0\",\"controller\":\"scsi0\",\"target\":0,\"lun\":0,"
			     "\"backend\":\"file\",\"path\":\"/var/lib/vhostd/lun0.img\","
			     "\"block-size\":512,\"cache\":\"none\",\"readonly\":false,"
			     "\"vendor\":\"VHOSTD\",\"opened\":true,\"blocks\":20971520,"
			     "\"capacity-bytes\":10737418240,"
			     "\"stats\":{\"rd_req\":1200,\"rd_bytes\":4915200,\"wr_req\":300,"
			     "\"wr_bytes\":1228800,\"flush_operations\":7,"
			     "\"rd_total_times\":96000000,\"wr_total_times\":45000000,"
			     "\"flush_total_times\":1400000,\"unmap_req\":2,\"unmap_blocks\":2048,"
			     "\"errors\":1,\"latency-us\":{\"p50\":71.5,\"p99\":412.25,"
			     "\"p99.9\":1980.0}}}"},
	};
	size_t i;

	record(arg, params);
	for (i = 0; i < sizeof(canned) / sizeof(canned[0]); i++)
		if (strcmp(canned[i].method, arg) == 0)
			return json_loads(canned[i].result, 0, NULL);
	return NULL;
}

static int
setup(void **state)
{
	static const char *const echo[] = {"port.add", "port.set", "bridge.add", "bridge.set",
		"xconnect.add", "pmd.set", "stats.clear", "custom.method", "scsi.add", "lun.add",
		NULL};
	static const char *const empty[] = {
		"port.del", "bridge.del", "xconnect.del", "scsi.del", "lun.del", NULL};
	static const char *const canned[] = {"port.list", "port.show", "bridge.show",
		"bridge.flush", "config.save", "version", "scsi.list", "scsi.show", "lun.list",
		"lun.show", NULL};
	struct fixture *f = calloc(1, sizeof(*f));
	size_t i;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/vhostctltest.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
	assert_int_equal(ctl_server_create(&f->s, f->path, 0600, NULL), 0);
	for (i = 0; echo[i]; i++)
		assert_int_equal(ctl_server_register(f->s, echo[i], m_echo, (void *)echo[i]), 0);
	for (i = 0; empty[i]; i++)
		assert_int_equal(ctl_server_register(f->s, empty[i], m_empty, (void *)empty[i]), 0);
	for (i = 0; canned[i]; i++)
		assert_int_equal(
			ctl_server_register(f->s, canned[i], m_canned, (void *)canned[i]), 0);
	g_f = f;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	ctl_server_destroy(f->s);
	rmdir(f->dir);
	json_decref(f->last);
	free(f->last_method);
	free(f);
	return 0;
}

/* ---- running vhostctl ----------------------------------------------------- */

/* Run vhostctl -s <socket> ARGS... (NULL-terminated), serving requests
 * meanwhile; returns its exit status with stdout/stderr in f->out/f->err. */
static int
run(struct fixture *f, ...)
{
	char *argv[64];
	int outp[2], errp[2], status, n = 0, open_pipes = 2;
	size_t olen = 0, elen = 0;
	struct pollfd pfd[3];
	va_list ap;
	ssize_t r;
	pid_t pid;

	argv[n++] = (char *)vhostctl_path;
	argv[n++] = "-s";
	argv[n++] = f->path;
	va_start(ap, f);
	while ((argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);

	assert_int_equal(pipe(outp), 0);
	assert_int_equal(pipe(errp), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		execv(vhostctl_path, argv);
		_exit(127);
	}
	close(outp[1]);
	close(errp[1]);
	while (open_pipes > 0) {
		pfd[0] = (struct pollfd){.fd = outp[0], .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = errp[0], .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = ctl_server_fd(f->s), .events = POLLIN};
		if (poll(pfd, 3, 10000) <= 0)
			break;
		if (pfd[2].revents)
			ctl_server_process(f->s);
		if (pfd[0].fd >= 0 && pfd[0].revents) {
			r = read(outp[0], f->out + olen, sizeof(f->out) - 1 - olen);
			if (r <= 0) {
				close(outp[0]);
				outp[0] = -1;
				open_pipes--;
			} else {
				olen += (size_t)r;
			}
		}
		if (pfd[1].fd >= 0 && pfd[1].revents) {
			r = read(errp[0], f->err + elen, sizeof(f->err) - 1 - elen);
			if (r <= 0) {
				close(errp[0]);
				errp[0] = -1;
				open_pipes--;
			} else {
				elen += (size_t)r;
			}
		}
	}
	f->out[olen] = '\0';
	f->err[elen] = '\0';
	if (outp[0] >= 0)
		close(outp[0]);
	if (errp[0] >= 0)
		close(errp[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
assert_last(struct fixture *f, const char *method, const char *params)
{
	json_t *want = json_loads(params, 0, NULL);

	assert_non_null(want);
	assert_non_null(f->last_method);
	assert_string_equal(f->last_method, method);
	if (!json_equal(f->last, want)) {
		char *got = json_dumps(f->last, JSON_SORT_KEYS);

		print_error("params: got %s, want %s\n", got, params);
		free(got);
		fail();
	}
	json_decref(want);
}

/* ---- tests ------------------------------------------------------------------ */

static void
test_port_add_values(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(f, "port", "add", "vhu0", "type=vhost-user", "socket=/x.sock",
				 "queues=2", "tag=10", "trunks=1,2,3", "mac=52:54:00:00:00:01",
				 "bridge=100", "mtu=9000", "csum=true", "mrg-rxbuf=false",
				 "xconnect=", "weird=-5", "big=99999999999999999999", NULL),
		0);
	assert_string_equal(f->out, "");
	assert_string_equal(f->err, "");
	/* Integers become numbers except for members that are names or paths;
	 * an empty value is null; out-of-range numbers stay strings. */
	assert_last(f, "port.add",
		"{\"name\":\"vhu0\",\"type\":\"vhost-user\",\"socket\":\"/x.sock\",\"queues\":2,"
		"\"tag\":10,\"trunks\":[1,2,3],\"mac\":\"52:54:00:00:00:01\",\"bridge\":\"100\","
		"\"mtu\":9000,\"csum\":true,\"mrg-rxbuf\":false,\"xconnect\":null,\"weird\":-5,"
		"\"big\":\"99999999999999999999\"}");
}

static void
test_json_params_and_output(void **state)
{
	struct fixture *f = *state;
	json_t *out;

	assert_int_equal(run(f, "--json", "port", "set", "vhu0", "--json-params",
				 "{\"mtu\":1500,\"tag\":3,\"trunks\":[]}", "tag=4", NULL),
		0);
	assert_last(f, "port.set", "{\"name\":\"vhu0\",\"mtu\":1500,\"tag\":4,\"trunks\":[]}");
	/* --json prints the result as sent. */
	out = json_loads(f->out, 0, NULL);
	assert_true(json_equal(out, f->last));
	json_decref(out);

	/* --json also works after the command. */
	assert_int_equal(run(f, "bridge", "add", "br1", "mac-aging-s=60", "--json", NULL), 0);
	assert_last(f, "bridge.add", "{\"name\":\"br1\",\"mac-aging-s\":60}");
	assert_non_null(strstr(f->out, "\"mac-aging-s\": 60"));
}

static void
test_other_params(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(f, "xconnect", "add", "x0", "vhu0", "vhu1", NULL), 0);
	assert_last(f, "xconnect.add", "{\"name\":\"x0\",\"ports\":[\"vhu0\",\"vhu1\"]}");
	assert_int_equal(run(f, "pmd", "set", "cpus=3", "max-sleep-us=50", NULL), 0);
	assert_last(f, "pmd.set", "{\"cpus\":\"3\",\"max-sleep-us\":50}");
	assert_int_equal(run(f, "stats", "clear", "vhu0", NULL), 0);
	assert_last(f, "stats.clear", "{\"port\":\"vhu0\"}");
	assert_int_equal(run(f, "stats", "clear", NULL), 0);
	assert_last(f, "stats.clear", "{}");
	assert_int_equal(run(f, "bridge", "del", "br0", NULL), 0);
	assert_last(f, "bridge.del", "{\"name\":\"br0\"}");
	assert_int_equal(run(f, "call", "custom.method", "[1,\"a\"]", NULL), 0);
	assert_last(f, "custom.method", "[1,\"a\"]");
	assert_string_equal(f->out, "[\n  1,\n  \"a\"\n]\n");
}

static void
test_save_config(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(f, "save-config", "/tmp/x.json", NULL), 0);
	assert_last(f, "config.save", "{\"path\":\"/tmp/x.json\"}");
	assert_string_equal(f->out, "configuration saved to /etc/vhostd/vhostd.json\n");
	assert_int_equal(run(f, "save-config", NULL), 0);
	assert_last(f, "config.save", "{}");
}

static void
test_errors(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(f, "port", "del", "nosuch", NULL), 1);
	assert_string_equal(f->err, "vhostctl: port nosuch: no such port\n");
	assert_string_equal(f->out, "");
	assert_int_equal(run(f, "call", "no.such.method", NULL), 1);
	assert_string_equal(f->err, "vhostctl: Method not found: no.such.method\n");
}

static void
test_usage_errors(void **state)
{
	static const char *const bad[][8] = {
		{"bogus"},
		{"port"},
		{"port", "add"},
		{"port", "add", "x", "novalue"},
		{"port", "add", "x", "=1"},
		{"port", "set", "x"},
		{"port", "show"},
		{"port", "del", "a", "b"},
		{"port", "fly", "x"},
		{"xconnect", "add", "x", "a"},
		{"xconnect", "show", "x"},
		{"bridge", "flush"},
		{"pmd", "set"},
		{"pmd", "frob"},
		{"stats", "a", "b"},
		{"stats", "--watch", "0"},
		{"stats", "--bogus"},
		{"config"},
		{"call"},
		{"call", "m", "{bad json"},
		{"call", "m", "3"},
		{"port", "set", "x", "--json-params", "[1]"},
		{"port", "set", "x", "trunks=1,a"},
		{"--timeout", "x", "version"},
		{"--nope"},
		{"scsi"},
		{"scsi", "frob"},
		{"scsi", "add"},
		{"scsi", "add", "s0"},
		{"scsi", "add", "--socket", "x"},
		{"scsi", "add", "s0", "--socket"},
		{"scsi", "add", "s0", "--socket", "x", "--bogus", "1"},
		{"scsi", "add", "s0", "--socket", "x", "--queues", "two"},
		{"scsi", "add", "s0", "--socket", "x", "--client=yes"},
		{"scsi", "show"},
		{"scsi", "list", "x"},
		{"lun", "add", "l0", "--backend", "ram", "--size", "1G"},
		{"lun", "add", "l0", "--controller", "c", "--size", "1G"},
		{"lun", "add", "l0", "--controller=c", "--backend", "ram", "--target", "x"},
		{"lun", "add", "l0", "--controller", "c", "--backend", "ram", "--readonly=1"},
		{"lun", "add", "l0", "--controller", "c", "--backend", "ram", "--size"},
		{"lun", "del", "a", "b"},
		{"lun", "set", "a"},
		{"stats", "clear", "--lun"},
		{"stats", "clear", "a", "b"},
		{"stats", "clear", "--bogus"},
	};
	struct fixture *f = *state;
	size_t i;
	int calls = f->calls;

	assert_int_equal(run(f, NULL), 2);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = run(f, bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], bad[i][5],
			bad[i][6], bad[i][7], NULL);

		if (rc != 2)
			print_error("case %zu (%s %s): exit %d\n", i, bad[i][0], bad[i][1], rc);
		assert_int_equal(rc, 2);
		assert_true(strncmp(f->err, "vhostctl: ", 10) == 0);
		assert_non_null(strstr(f->err, "--help"));
	}
	/* Nothing was sent for any of them. */
	assert_int_equal(f->calls, calls);
}

static void
test_no_server(void **state)
{
	struct fixture *f = *state;
	char path[160];
	char *argv[] = {(char *)vhostctl_path, "-s", path, "version", NULL};
	int status;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/none.sock", f->dir);
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, 2);
		execv(vhostctl_path, argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 1);
}

static void
test_help_lists_every_verb(void **state)
{
	static const char *const verbs[] = {"version", "port add", "port set", "port del",
		"port list", "port show", "bridge add", "bridge set", "bridge del", "bridge list",
		"bridge show", "bridge flush", "xconnect add", "xconnect del", "xconnect list",
		"pmd show", "pmd set", "stats [PORT]", "--watch", "stats clear", "save-config",
		"config show", "call METHOD", "--json", "--socket", "VHOSTCTL_SOCKET", "scsi add",
		"scsi del", "scsi list", "scsi show", "--client", "--queues", "--max-sectors",
		"--cmd-per-lun", "lun add", "lun del", "lun list", "lun show", "--controller",
		"--target", "--lun", "--backend", "--path", "--size", "--block-size", "--cache",
		"--readonly", "--vendor", "--product", "--revision", "--serial"};
	struct fixture *f = *state;
	size_t i;

	assert_int_equal(run(f, "--help", NULL), 0);
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strstr(f->out, verbs[i]) == NULL)
			fail_msg("--help lacks '%s'", verbs[i]);
	assert_int_equal(run(f, "help", NULL), 0);
}

static void
test_tables(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(f, "port", "list", NULL), 0);
	assert_string_equal(f->out,
		"NAME            TYPE        STATE    BRIDGE  XCONNECT  MODE    QUEUES  SOCKET\n"
		"vhu0            vhost-user  up       br0     -         server       2  "
		"/run/vhostd/vhu0.sock\n"
		"long-port-name  vhost-user  waiting  -       x0        client      16  /s\n");

	assert_int_equal(run(f, "bridge", "show", "br0", NULL), 0);
	assert_last(f, "bridge.show", "{\"name\":\"br0\"}");
	assert_string_equal(f->out, "bridge br0\n"
				    "  mac-aging-s: 300\n"
				    "  ports:       vhu0, vhu1\n"
				    "  mac-table: 2 entries\n"
				    "    PORT  VLAN  MAC                   AGE\n"
				    "    vhu0     0  52:54:00:00:00:01       3\n"
				    "    vhu1   100  52:54:00:00:00:02  static\n");

	assert_int_equal(run(f, "bridge", "flush", "br0", NULL), 0);
	assert_string_equal(f->out, "bridge br0: flushed 2 MAC entries\n");

	assert_int_equal(run(f, "version", NULL), 0);
	assert_string_equal(f->out, "vhostd 0.1.0 (DPDK 22.11.1)\nvhostctl 0.1.0\n");
}

static void
test_scsi_lun_params(void **state)
{
	struct fixture *f = *state;
	char cwd[1024], want[2048];

	assert_int_equal(run(f, "scsi", "add", "scsi0", "--socket", "scsi0.sock", NULL), 0);
	assert_string_equal(f->out, "");
	assert_string_equal(f->err, "");
	assert_last(f, "scsi.add", "{\"name\":\"scsi0\",\"socket\":\"scsi0.sock\"}");
	assert_int_equal(
		run(f, "scsi", "add", "scsi1", "--socket=/run/s1.sock", "--client", "--queues", "4",
			"--max-sectors", "1024", "--cmd-per-lun=32", NULL),
		0);
	assert_last(f, "scsi.add",
		"{\"name\":\"scsi1\",\"socket\":\"/run/s1.sock\",\"mode\":\"client\","
		"\"queues\":4,\"max-sectors\":1024,\"cmd-per-lun\":32}");
	/* Ranges are the daemon's to check: a negative number is sent as is. */
	assert_int_equal(run(f, "scsi", "add", "s", "--socket", "s", "--queues", "-1", NULL), 0);
	assert_last(f, "scsi.add", "{\"name\":\"s\",\"socket\":\"s\",\"queues\":-1}");

	assert_int_equal(run(f, "lun", "add", "lun0", "--controller", "scsi0", "--target", "1",
				 "--lun", "2", "--backend", "file", "--path", "/var/lib/d.img",
				 "--size", "64M", "--block-size", "4096", "--cache", "writeback",
				 "--readonly", "--vendor", "ACME", "--product", "Fast Disk",
				 "--revision", "1.0", "--serial", "0042", NULL),
		0);
	assert_last(f, "lun.add",
		"{\"name\":\"lun0\",\"controller\":\"scsi0\",\"target\":1,\"lun\":2,"
		"\"backend\":\"file\",\"path\":\"/var/lib/d.img\",\"size\":\"64M\","
		"\"block-size\":4096,\"cache\":\"writeback\",\"readonly\":true,"
		"\"vendor\":\"ACME\",\"product\":\"Fast Disk\",\"revision\":\"1.0\","
		"\"serial\":\"0042\"}");
	/* A size in bytes is a number; serials that look like numbers stay strings. */
	assert_int_equal(run(f, "lun", "add", "r", "--backend=ram", "--controller=scsi0",
				 "--size=1048576", NULL),
		0);
	assert_last(f, "lun.add",
		"{\"name\":\"r\",\"controller\":\"scsi0\",\"backend\":\"ram\",\"size\":1048576}");
	/* A relative --path is the caller's, not the daemon's: made absolute. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(run(f, "lun", "add", "l", "--controller", "c", "--backend", "file",
				 "--path", "disk.img", NULL),
		0);
	snprintf(want, sizeof(want),
		"{\"name\":\"l\",\"controller\":\"c\",\"backend\":\"file\",\"path\":\"%s/"
		"disk.img\"}",
		strcmp(cwd, "/") == 0 ? "" : cwd);
	assert_last(f, "lun.add", want);
	/* --json prints the daemon's result. */
	assert_int_equal(run(f, "--json", "lun", "add", "n", "--controller", "c", "--backend",
				 "null", "--size", "1G", NULL),
		0);
	assert_non_null(strstr(f->out, "\"size\": \"1G\""));

	assert_int_equal(run(f, "scsi", "del", "scsi0", NULL), 0);
	assert_last(f, "scsi.del", "{\"name\":\"scsi0\"}");
	assert_int_equal(run(f, "lun", "del", "lun0", NULL), 0);
	assert_last(f, "lun.del", "{\"name\":\"lun0\"}");
	assert_int_equal(run(f, "lun", "del", "nosuch", NULL), 1);
	assert_non_null(strstr(f->err, "nosuch"));

	assert_int_equal(run(f, "stats", "clear", "--lun", "lun0", NULL), 0);
	assert_last(f, "stats.clear", "{\"lun\":\"lun0\"}");
	assert_int_equal(run(f, "stats", "clear", "vhu0", "--lun", "lun0", NULL), 0);
	assert_last(f, "stats.clear", "{\"port\":\"vhu0\",\"lun\":\"lun0\"}");
}

/* "single-copy": "auto": each rx queue's path and last probe, under the queue table. */
static void
test_port_show_single_copy_auto(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(f, "port", "show", "a", NULL), 0);
	assert_last(f, "port.show", "{\"name\":\"a\"}");
	assert_string_equal(f->out,
		"port a\n"
		"  type:        vhost-user\n"
		"  single-copy: auto\n"
		"  statistics:\n"
		"        PACKETS  BYTES  ERRORS  DROPS\n"
		"    rx       30   3000       0      0\n"
		"    tx       20   2000       0      0\n"
		"    queues:\n"
		"    QUEUE  RX-ON  TX-ON  RX-PACKETS  RX-BYTES  TX-PACKETS  TX-BYTES  TX-DROPS\n"
		"        0  true   true           20      2000          20      2000         0\n"
		"        1  true   true           10      1000           0         0         0\n"
		"    single copy \"auto\" (last probe):\n"
		"    QUEUE  PATH         SC-CYCLES/FRAME  MBUF-CYCLES/FRAME  PROBES  CHOSE-MBUF\n"
		"        0  mbuf                     612                540      41           3\n"
		"        1  single-copy                -                  -       2           0\n");
}

static void
test_scsi_lun_tables(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(f, "scsi", "list", NULL), 0);
	assert_string_equal(f->last_method, "scsi.list");
	assert_string_equal(f->out,
		"NAME      MODE    QUEUES  CONNECTED  LUNS  SOCKET\n"
		"scsi0     server       2  yes           3  /run/vhostd/scsi0.sock\n"
		"db-disks  client      16  no            0  /s\n");

	assert_int_equal(run(f, "scsi", "show", "scsi0", NULL), 0);
	assert_last(f, "scsi.show", "{\"name\":\"scsi0\"}");
	assert_string_equal(f->out,
		"scsi scsi0\n"
		"  socket:      /run/vhostd/scsi0.sock\n"
		"  mode:        server\n"
		"  queues:      2\n"
		"  max-sectors: 65535\n"
		"  cmd-per-lun: 128\n"
		"  status:\n"
		"    state:          connected\n"
		"    connected:      true\n"
		"    vid:            0\n"
		"    features:       0x140000003\n"
		"    vrings:         4\n"
		"    enabled-queues: 0, 1\n"
		"    control-queue:  true\n"
		"    event-queue:    true\n"
		"    connects:       1\n"
		"    disconnects:    0\n"
		"    broken:         false\n"
		"    broken-reason:  -\n"
		"  statistics:\n"
		"    requests: 1500 tmf: 1 bad-chains: 0 errors: 2 inflight: 3\n"
		"    QUEUE  ENABLED  PMD  REQUESTS  TMF  BAD-CHAINS  ERRORS  INFLIGHT\n"
		"        0  yes        0      1000    1           0       2         1\n"
		"        1  no         -       500    0           0       0         2\n"
		"  luns: 2\n"
		"    NAME     TARGET  LUN  BACKEND\n"
		"    lun0          0    0  file\n"
		"    scratch       1   12  ram\n");

	assert_int_equal(run(f, "lun", "list", NULL), 0);
	assert_string_equal(f->out, "NAME     CONTROLLER  TARGET  LUN  BACKEND     SIZE  READONLY\n"
				    "lun0     scsi0            0    0  file         10G  no\n"
				    "scratch  scsi0            1   12  ram      1000960  yes\n");

	assert_int_equal(run(f, "lun", "show", "lun0", NULL), 0);
	assert_last(f, "lun.show", "{\"name\":\"lun0\"}");
	assert_string_equal(f->out, "lun lun0\n"
				    "  controller:     scsi0\n"
				    "  target:         0\n"
				    "  lun:            0\n"
				    "  backend:        file\n"
				    "  path:           /var/lib/vhostd/lun0.img\n"
				    "  block-size:     512\n"
				    "  cache:          none\n"
				    "  readonly:       false\n"
				    "  vendor:         VHOSTD\n"
				    "  opened:         true\n"
				    "  blocks:         20971520\n"
				    "  capacity-bytes: 10737418240\n"
				    "  statistics:\n"
				    "    lun0 rd_req 1200\n"
				    "    lun0 rd_bytes 4915200\n"
				    "    lun0 wr_req 300\n"
				    "    lun0 wr_bytes 1228800\n"
				    "    lun0 flush_operations 7\n"
				    "    lun0 rd_total_times 96000000\n"
				    "    lun0 wr_total_times 45000000\n"
				    "    lun0 flush_total_times 1400000\n"
				    "    lun0 unmap_req 2\n"
				    "    lun0 unmap_blocks 2048\n"
				    "    lun0 errors 1\n"
				    "    latency: p50 71.5 us, p99 412.2 us, p99.9 1980.0 us\n");

	/* --json is the result as the daemon sent it. */
	assert_int_equal(run(f, "lun", "show", "lun0", "--json", NULL), 0);
	assert_non_null(strstr(f->out, "\"rd_total_times\": 96000000"));
}

int
main(int argc, char **argv)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_port_add_values),
		T(test_json_params_and_output),
		T(test_other_params),
		T(test_save_config),
		T(test_errors),
		T(test_usage_errors),
		T(test_no_server),
		T(test_help_lists_every_verb),
		T(test_tables),
		T(test_scsi_lun_params),
		T(test_port_show_single_copy_auto),
		T(test_scsi_lun_tables),
	};
#undef T

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-VHOSTCTL\n", argv[0]);
		return 2;
	}
	vhostctl_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
