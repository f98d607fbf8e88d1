/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * Host checks of "vhostctl doctor" (see doctor.h). Each check only reads
 * files (and connects to unix sockets) under env->root.
 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cpuset.h"
#include "doctor.h"

/* Lines are bounded on purpose: a truncated detail is still a verdict. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define GRUB_FIX "GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot"

/* ---- report ---------------------------------------------------------------- */

void
doctor_add(struct doctor_report *rep, const char *check, enum doctor_verdict v, const char *fix,
	const char *fmt, ...)
{
	struct doctor_item *it;
	va_list ap;

	if (rep->n == rep->cap) {
		size_t cap = rep->cap ? rep->cap * 2 : 32;
		struct doctor_item *items = realloc(rep->items, cap * sizeof(*items));

		if (items == NULL)
			return;
		rep->items = items;
		rep->cap = cap;
	}
	it = &rep->items[rep->n++];
	snprintf(it->check, sizeof(it->check), "%s", check);
	it->verdict = v;
	snprintf(it->fix, sizeof(it->fix), "%s", fix ? fix : "");
	va_start(ap, fmt);
	vsnprintf(it->detail, sizeof(it->detail), fmt, ap);
	va_end(ap);
}

const char *
doctor_verdict_name(enum doctor_verdict v)
{
	static const char *const names[] = {"ok", "info", "warn", "fail"};

	return v <= DOCTOR_FAIL ? names[v] : "?";
}

enum doctor_verdict
doctor_worst(const struct doctor_report *rep)
{
	enum doctor_verdict w = DOCTOR_OK;

	for (size_t i = 0; i < rep->n; i++)
		if (rep->items[i].verdict > w)
			w = rep->items[i].verdict;
	return w;
}

json_t *
doctor_report_json(const struct doctor_report *rep)
{
	json_t *a = json_array();

	for (size_t i = 0; i < rep->n; i++) {
		const struct doctor_item *it = &rep->items[i];
		json_t *o = json_pack("{s:s, s:s, s:s}", "check", it->check, "verdict",
			doctor_verdict_name(it->verdict), "detail", it->detail);

		if (it->fix[0] != '\0')
			json_object_set_new(o, "fix", json_string(it->fix));
		json_array_append_new(a, o);
	}
	return a;
}

void
doctor_report_free(struct doctor_report *rep)
{
	free(rep->items);
	memset(rep, 0, sizeof(*rep));
}

/* ---- files ------------------------------------------------------------------- */

static void path_of(const struct doctor_env *env, char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
path_of(const struct doctor_env *env, char *buf, size_t len, const char *fmt, ...)
{
	size_t n = (size_t)snprintf(buf, len, "%s", env->root ? env->root : "");
	va_list ap;

	if (n >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* First line of a file, trailing space stripped; false if unreadable. */
static bool
read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return false;
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	n = strlen(buf);
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	return true;
}

static bool
read_long(const char *path, long *v)
{
	char buf[64], *end;

	if (!read_line(path, buf, sizeof(buf)))
		return false;
	errno = 0;
	*v = strtol(buf, &end, 10);
	return errno == 0 && end != buf;
}

/* "always [madvise] never" -> "madvise". */
static bool
read_selected(const char *path, char *out, size_t len)
{
	char buf[256], *a, *b;

	if (!read_line(path, buf, sizeof(buf)))
		return false;
	a = strchr(buf, '[');
	b = a ? strchr(a, ']') : NULL;
	if (a == NULL || b == NULL)
		snprintf(out, len, "%s", buf);
	else
		snprintf(out, len, "%.*s", (int)(b - a - 1), a + 1);
	return true;
}

static int
numa_nodes(const struct doctor_env *env)
{
	char path[512];
	struct dirent *de;
	int n = 0;
	DIR *d;

	path_of(env, path, sizeof(path), "/sys/devices/system/node");
	d = opendir(path);
	if (d == NULL)
		return 1;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "node", 4) == 0 && isdigit((unsigned char)de->d_name[4]))
			n++;
	closedir(d);
	return n > 0 ? n : 1;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in @dir starting with @prefix (at most @max); returns count. */
static int
list_dir(const char *dir, const char *prefix, char names[][64], int max)
{
	char *ptrs[64], tmp[64][64];
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max && n < 64)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			snprintf(tmp[n++], sizeof(tmp[0]), "%s", de->d_name);
	closedir(d);
	for (int i = 0; i < n; i++)
		ptrs[i] = tmp[i];
	qsort(ptrs, n, sizeof(ptrs[0]), cmp_str);
	for (int i = 0; i < n; i++)
		snprintf(names[i], 64, "%s", ptrs[i]);
	return n;
}

static bool
sock_reachable(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc == 0;
}

/* ---- hugepages ----------------------------------------------------------------- */

void
doctor_check_hugepages(const struct doctor_env *env, struct doctor_report *rep)
{
	char dir[512], path[640], sizes[16][64], nodes[64][64], fix[384];
	int nsizes, nnodes, with_pages = 0;
	long total, freep;

	path_of(env, dir, sizeof(dir), "/sys/kernel/mm/hugepages");
	nsizes = list_dir(dir, "hugepages-", sizes, 16);
	path_of(env, dir, sizeof(dir), "/sys/devices/system/node");
	nnodes = list_dir(dir, "node", nodes, 64);
	if (nsizes == 0) {
		doctor_add(rep, "hugepages", DOCTOR_FAIL,
			"a kernel with CONFIG_HUGETLBFS (Debian's has it)",
			"no hugepage sizes in /sys/kernel/mm/hugepages: the kernel has no "
			"hugetlbfs");
		return;
	}
	for (int s = 0; s < nsizes; s++) {
		const char *size = sizes[s] + strlen("hugepages-");
		int lines = 0;

		for (int nd = 0; nd < nnodes; nd++) {
			if (!isdigit((unsigned char)nodes[nd][4]))
				continue;
			path_of(env, path, sizeof(path),
				"/sys/devices/system/node/%s/hugepages/%s/nr_hugepages", nodes[nd],
				sizes[s]);
			if (!read_long(path, &total))
				continue;
			path_of(env, path, sizeof(path),
				"/sys/devices/system/node/%s/hugepages/%s/free_hugepages",
				nodes[nd], sizes[s]);
			if (!read_long(path, &freep))
				freep = 0;
			lines++;
			with_pages += total > 0;
			snprintf(fix, sizeof(fix),
				"echo %ld > /sys/devices/system/node/%s/hugepages/%s/nr_hugepages",
				total > 0 ? total * 2 : 1024, nodes[nd], sizes[s]);
			if (total == 0)
				doctor_add(rep, "hugepages", DOCTOR_INFO, NULL,
					"%s on %s: none reserved (0 free / 0 total)", size,
					nodes[nd]);
			else if (freep == 0)
				doctor_add(rep, "hugepages", DOCTOR_WARN, fix,
					"%s on %s: all in use (0 free / %ld total): a new vhostd "
					"or "
					"guest gets none",
					size, nodes[nd], total);
			else
				doctor_add(rep, "hugepages", DOCTOR_OK, NULL,
					"%s on %s: %ld free / %ld total", size, nodes[nd], freep,
					total);
		}
		if (lines > 0)
			continue;
		/* No per-node counters (a kernel without NUMA): the global ones. */
		path_of(env, path, sizeof(path), "/sys/kernel/mm/hugepages/%s/nr_hugepages",
			sizes[s]);
		if (!read_long(path, &total))
			continue;
		path_of(env, path, sizeof(path), "/sys/kernel/mm/hugepages/%s/free_hugepages",
			sizes[s]);
		if (!read_long(path, &freep))
			freep = 0;
		with_pages += total > 0;
		snprintf(fix, sizeof(fix), "echo %ld > /sys/kernel/mm/hugepages/%s/nr_hugepages",
			total > 0 ? total * 2 : 1024, sizes[s]);
		doctor_add(rep, "hugepages",
			total == 0   ? DOCTOR_INFO
			: freep == 0 ? DOCTOR_WARN
				     : DOCTOR_OK,
			total > 0 && freep == 0 ? fix : NULL, "%s: %ld free / %ld total", size,
			freep, total);
	}
	if (with_pages == 0)
		doctor_add(rep, "hugepages", DOCTOR_FAIL,
			"echo 1024 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages "
			"(or HUGEPAGES=1024 scripts/setup-host.sh)",
			"no hugepages reserved: vhostd's DPDK memory comes from hugepages");
}

void
doctor_check_hugetlbfs(const struct doctor_env *env, struct doctor_report *rep)
{
	char path[512], line[1024];
	int mounts = 0;
	FILE *f;

	path_of(env, path, sizeof(path), "/proc/mounts");
	f = fopen(path, "r");
	if (f == NULL) {
		doctor_add(rep, "hugetlbfs", DOCTOR_WARN, "mount -t proc proc /proc",
			"cannot read /proc/mounts");
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char dev[256], dir[256], type[64], opts[512];

		if (sscanf(line, "%255s %255s %63s %511s", dev, dir, type, opts) != 4 ||
			strcmp(type, "hugetlbfs") != 0)
			continue;
		char *ps = strstr(opts, "pagesize=");
		size_t pl = ps ? strcspn(ps + 9, ",") : 0;

		mounts++;
		doctor_add(rep, "hugetlbfs", DOCTOR_OK, NULL, "%s mounted (page size %.*s)", dir,
			ps ? (int)pl : 7, ps ? ps + 9 : "default");
	}
	fclose(f);
	if (mounts == 0)
		doctor_add(rep, "hugetlbfs", DOCTOR_FAIL,
			"mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages",
			"no hugetlbfs mounted: DPDK cannot map hugepages");
}

/* ---- THP, KSM, NUMA balancing ------------------------------------------------------ */

void
doctor_check_thp(const struct doctor_env *env, struct doctor_report *rep)
{
	char path[512], v[64];

	path_of(env, path, sizeof(path), "/sys/kernel/mm/transparent_hugepage/enabled");
	if (!read_selected(path, v, sizeof(v)))
		doctor_add(
			rep, "thp", DOCTOR_OK, NULL, "transparent hugepages: not in this kernel");
	else if (strcmp(v, "always") == 0)
		doctor_add(rep, "thp", DOCTOR_WARN,
			"echo madvise > /sys/kernel/mm/transparent_hugepage/enabled",
			"THP enabled=always: khugepaged collapses and compacts every process's "
			"memory in the background (latency spikes); madvise leaves it to those "
			"who ask (QEMU does)");
	else
		doctor_add(rep, "thp", DOCTOR_OK, NULL, "THP enabled=%s", v);

	path_of(env, path, sizeof(path), "/sys/kernel/mm/transparent_hugepage/defrag");
	if (!read_selected(path, v, sizeof(v)))
		return;
	if (strcmp(v, "always") == 0)
		doctor_add(rep, "thp", DOCTOR_WARN,
			"echo defer+madvise > /sys/kernel/mm/transparent_hugepage/defrag",
			"THP defrag=always: page faults stall in direct compaction");
	else if (strcmp(v, "madvise") == 0)
		doctor_add(rep, "thp", DOCTOR_INFO,
			"echo defer+madvise > /sys/kernel/mm/transparent_hugepage/defrag",
			"THP defrag=madvise: faults in QEMU's guest RAM (madvised) may stall in "
			"direct compaction; defer+madvise compacts in the background instead");
	else
		doctor_add(rep, "thp", DOCTOR_OK, NULL, "THP defrag=%s", v);
}

void
doctor_check_ksm(const struct doctor_env *env, struct doctor_report *rep)
{
	char path[512];
	long run, merge;
	int nodes = numa_nodes(env);

	path_of(env, path, sizeof(path), "/sys/kernel/mm/ksm/run");
	if (!read_long(path, &run)) {
		doctor_add(rep, "ksm", DOCTOR_OK, NULL, "KSM: not in this kernel");
		return;
	}
	if (run == 1)
		doctor_add(rep, "ksm", DOCTOR_WARN, "echo 0 > /sys/kernel/mm/ksm/run",
			"KSM run=1: ksmd scans and merges guest memory (CPU time, copy-on-write "
			"faults in the guests' hot path)");
	else
		doctor_add(rep, "ksm", DOCTOR_OK, NULL, "KSM run=%ld (%s)", run,
			run == 0 ? "stopped" : "stopped, merged pages unmerged");

	path_of(env, path, sizeof(path), "/sys/kernel/mm/ksm/merge_across_nodes");
	if (!read_long(path, &merge))
		return;
	if (merge == 1 && run == 1 && nodes > 1)
		doctor_add(rep, "ksm", DOCTOR_WARN,
			"echo 2 > /sys/kernel/mm/ksm/run && echo 0 > "
			"/sys/kernel/mm/ksm/merge_across_nodes && echo 1 > /sys/kernel/mm/ksm/run",
			"KSM merge_across_nodes=1 on %d NUMA nodes: merged pages end up remote to "
			"their guests",
			nodes);
	else
		doctor_add(rep, "ksm", DOCTOR_OK, NULL,
			"KSM merge_across_nodes=%ld (%d NUMA node%s)", merge, nodes,
			nodes == 1 ? "" : "s");
}

void
doctor_check_numa_balancing(const struct doctor_env *env, struct doctor_report *rep)
{
	char path[512];
	int nodes = numa_nodes(env);
	long v;

	path_of(env, path, sizeof(path), "/proc/sys/kernel/numa_balancing");
	if (!read_long(path, &v))
		doctor_add(rep, "numa_balancing", DOCTOR_OK, NULL,
			"automatic NUMA balancing: not in this kernel");
	else if (v == 0)
		doctor_add(rep, "numa_balancing", DOCTOR_OK, NULL, "kernel.numa_balancing=0");
	else if (nodes > 1)
		doctor_add(rep, "numa_balancing", DOCTOR_WARN, "sysctl -w kernel.numa_balancing=0",
			"kernel.numa_balancing=%ld on %d NUMA nodes: the kernel unmaps pages to "
			"sample accesses and migrates guest memory under pinned vCPUs and PMDs",
			v, nodes);
	else
		doctor_add(rep, "numa_balancing", DOCTOR_INFO, "sysctl -w kernel.numa_balancing=0",
			"kernel.numa_balancing=%ld (one NUMA node: little to balance)", v);
}

/* ---- CPU isolation ------------------------------------------------------------------ */

/* A sysfs CPU list ("", "(null)" or "1-3"); false when unreadable. */
static bool
read_cpulist(const char *path, cpu_set_t *set, char *text, size_t len)
{
	char err[128];

	CPU_ZERO(set);
	if (!read_line(path, text, len))
		return false;
	if (text[0] == '\0' || strcmp(text, "(null)") == 0) {
		snprintf(text, len, "none");
		return true;
	}
	if (cpuset_parse(text, set, err, sizeof(err)) < 0)
		CPU_ZERO(set);
	return true;
}

static void
isolation_line(struct doctor_report *rep, const char *what, const char *file, const cpu_set_t *pmd,
	const char *pmd_text, const struct doctor_env *env)
{
	char path[512], text[256], missing[256], fix[384];
	cpu_set_t set, out;

	path_of(env, path, sizeof(path), "/sys/devices/system/cpu/%s", file);
	if (!read_cpulist(path, &set, text, sizeof(text))) {
		doctor_add(rep, what, DOCTOR_INFO, NULL, "%s: not known to this kernel", what);
		return;
	}
	if (pmd == NULL) {
		doctor_add(rep, what, DOCTOR_INFO, NULL,
			"%s=%s; the PMD CPUs are unknown (vhostd not reachable)", what, text);
		return;
	}
	CPU_ZERO(&out);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, pmd) && !CPU_ISSET(c, &set))
			CPU_SET(c, &out);
	if (CPU_COUNT(&out) == 0) {
		doctor_add(rep, what, DOCTOR_OK, NULL, "%s=%s covers the PMD CPUs %s", what, text,
			pmd_text);
		return;
	}
	cpuset_format(&out, missing, sizeof(missing));
	snprintf(fix, sizeof(fix), "add isolcpus=%s nohz_full=%s rcu_nocbs=%s to " GRUB_FIX,
		pmd_text, pmd_text, pmd_text);
	doctor_add(rep, what, DOCTOR_WARN, fix,
		"%s=%s: PMD CPU%s %s %s: the scheduler%s puts other work there", what, text,
		CPU_COUNT(&out) > 1 ? "s" : "", missing,
		strcmp(what, "isolcpus") == 0 ? "not isolated" : "not tickless",
		strcmp(what, "isolcpus") == 0 ? "" : "'s tick");
}

void
doctor_check_isolation(const struct doctor_env *env, struct doctor_report *rep)
{
	char err[128];
	cpu_set_t pmd;
	bool known = false;

	if (env->pmd_cpus != NULL && env->pmd_cpus[0] != '\0')
		known = cpuset_parse(env->pmd_cpus, &pmd, err, sizeof(err)) == 0;
	isolation_line(rep, "isolcpus", "isolated", known ? &pmd : NULL, env->pmd_cpus, env);
	isolation_line(rep, "nohz_full", "nohz_full", known ? &pmd : NULL, env->pmd_cpus, env);
}

/* ---- KVM, IOMMU ----------------------------------------------------------------------- */

void
doctor_check_halt_poll(const struct doctor_env *env, struct doctor_report *rep)
{
	char path[512];
	long v;

	path_of(env, path, sizeof(path), "/sys/module/kvm/parameters/halt_poll_ns");
	if (!read_long(path, &v))
		doctor_add(rep, "halt_poll_ns", DOCTOR_INFO, "modprobe kvm_intel (or kvm_amd)",
			"kvm is not loaded: guests run under TCG, slowly");
	else if (v == 0)
		doctor_add(rep, "halt_poll_ns", DOCTOR_INFO,
			"echo 500000 > /sys/module/kvm/parameters/halt_poll_ns",
			"halt_poll_ns=0: idle vCPUs halt at once; the first packet after idle "
			"wakes "
			"them through the scheduler (tens of us)");
	else
		doctor_add(rep, "halt_poll_ns", DOCTOR_OK, NULL,
			"halt_poll_ns=%ld: KVM polls up to %ld us before halting an idle vCPU", v,
			v / 1000);
}

void
doctor_check_iommu(const struct doctor_env *env, struct doctor_report *rep)
{
	char dir[512], names[4][64], cmdline[4096] = "";
	int n;

	path_of(env, dir, sizeof(dir), "/sys/class/iommu");
	n = list_dir(dir, "", names, 4);
	for (int i = 0; i < n; i++)
		if (names[i][0] != '.') {
			doctor_add(rep, "iommu", DOCTOR_OK, NULL, "IOMMU %s present", names[i]);
			return;
		}
	path_of(env, dir, sizeof(dir), "/proc/cmdline");
	read_line(dir, cmdline, sizeof(cmdline));
	doctor_add(rep, "iommu", DOCTOR_WARN,
		"add intel_iommu=on iommu=pt (AMD: amd_iommu=on iommu=pt) to " GRUB_FIX,
		"no IOMMU%s: vfio-pci NIC ports need one (vhost-user ports do not)",
		strstr(cmdline, "iommu=") ? " although the command line asks for one" : "");
}

/* ---- libvirt, OVS ---------------------------------------------------------------------- */

void
doctor_check_libvirt(const struct doctor_env *env, struct doctor_report *rep)
{
	static const char *const socks[] = {
		"/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock", NULL};
	char path[512];
	bool up = false, hook = false;
	struct stat st;

	for (int i = 0; socks[i] != NULL && !up; i++) {
		path_of(env, path, sizeof(path), "%s", socks[i]);
		if (sock_reachable(path)) {
			up = true;
			doctor_add(rep, "libvirtd", DOCTOR_OK, NULL, "libvirt reachable at %s",
				socks[i]);
		}
	}
	if (!up)
		doctor_add(rep, "libvirtd", DOCTOR_WARN,
			"systemctl start libvirtd (or: libvirtd -d)",
			"libvirt not reachable (/run/libvirt/libvirt-sock, virtqemud-sock): virsh "
			"and the vhostd hook do nothing");
	path_of(env, path, sizeof(path), "/etc/libvirt/hooks/qemu.d/vhostd");
	hook = stat(path, &st) == 0 && (st.st_mode & 0111);
	if (!hook) {
		path_of(env, path, sizeof(path), "/etc/libvirt/hooks/qemu");
		FILE *f = fopen(path, "r");
		char line[256];

		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			if (strstr(line, "vhostctl libvirt") != NULL)
				hook = true;
		if (f != NULL)
			fclose(f);
	}
	path_of(env, path, sizeof(path), "/etc/libvirt");
	if (hook)
		doctor_add(rep, "libvirt-hook", DOCTOR_OK, NULL,
			"vhostd's qemu hook is installed: domains get their vhostd ports on start");
	else if (stat(path, &st) == 0)
		doctor_add(rep, "libvirt-hook", DOCTOR_WARN,
			"install -D -m 755 configs/libvirt/hooks/qemu "
			"/etc/libvirt/hooks/qemu.d/vhostd "
			"&& systemctl restart libvirtd",
			"vhostd's qemu hook is not installed: create the vhostd objects of a "
			"domain "
			"by hand (vhostctl libvirt import)");
}

void
doctor_check_ovs(const struct doctor_env *env, struct doctor_report *rep)
{
	char path[512];

	path_of(env, path, sizeof(path), "/run/openvswitch/db.sock");
	if (sock_reachable(path))
		doctor_add(
			rep, "ovs", DOCTOR_OK, NULL, "OVSDB reachable at /run/openvswitch/db.sock");
	else
		doctor_add(rep, "ovs", DOCTOR_WARN,
			"systemctl start openvswitch-switch (or: /usr/share/openvswitch/scripts/"
			"ovs-ctl start)",
			"OVSDB not reachable at /run/openvswitch/db.sock: no OVS bridges");
}

void
doctor_run(const struct doctor_env *env, struct doctor_report *rep)
{
	doctor_check_hugepages(env, rep);
	doctor_check_hugetlbfs(env, rep);
	doctor_check_thp(env, rep);
	doctor_check_ksm(env, rep);
	doctor_check_numa_balancing(env, rep);
	doctor_check_isolation(env, rep);
	doctor_check_halt_poll(env, rep);
	doctor_check_iommu(env, rep);
	doctor_check_libvirt(env, rep);
	doctor_check_ovs(env, rep);
}
