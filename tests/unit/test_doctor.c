/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of ctl/doctor.c: each host check on a fake sysfs/procfs tree
 * (a temporary directory), with the verdict and the fix it must give.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "doctor.h"

static char root[64];

static void
mkdirs(const char *path)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
}

/* Write @content to ROOT/@rel, creating the directories. */
static void
put(const char *rel, const char *content)
{
	char path[512], dir[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static int
setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/vhostd-doctor-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* The item of @rep whose detail contains @needle. */
static const struct doctor_item *
find(const struct doctor_report *rep, const char *check, const char *needle)
{
	for (size_t i = 0; i < rep->n; i++)
		if (strcmp(rep->items[i].check, check) == 0 && strstr(rep->items[i].detail, needle))
			return &rep->items[i];
	for (size_t i = 0; i < rep->n; i++)
		print_error("  %s %s: %s | %s\n", doctor_verdict_name(rep->items[i].verdict),
			rep->items[i].check, rep->items[i].detail, rep->items[i].fix);
	fail_msg("no %s line with \"%s\"", check, needle);
	return NULL;
}

static void
expect(const struct doctor_report *rep, const char *check, const char *needle,
	enum doctor_verdict v, const char *fix_part)
{
	const struct doctor_item *it = find(rep, check, needle);

	if (it->verdict != v)
		fail_msg("%s \"%s\": verdict %s, want %s", check, it->detail,
			doctor_verdict_name(it->verdict), doctor_verdict_name(v));
	if (fix_part != NULL && strstr(it->fix, fix_part) == NULL)
		fail_msg(
			"%s \"%s\": fix \"%s\" lacks \"%s\"", check, it->detail, it->fix, fix_part);
}

#define NODE_HP "sys/devices/system/node/node%d/hugepages/hugepages-%s/%s"

static void
put_node_hp(int node, const char *size, long total, long freep)
{
	char rel[256], v[32];

	snprintf(rel, sizeof(rel), NODE_HP, node, size, "nr_hugepages");
	snprintf(v, sizeof(v), "%ld\n", total);
	put(rel, v);
	snprintf(rel, sizeof(rel), NODE_HP, node, size, "free_hugepages");
	snprintf(v, sizeof(v), "%ld\n", freep);
	put(rel, v);
}

static void
hugepages_per_size_and_node(void **state)
{
	struct doctor_env env = {.root = root};
	struct doctor_report rep = {0};

	put("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "1536\n");
	put("sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0\n");
	put_node_hp(0, "2048kB", 1024, 1000);
	put_node_hp(1, "2048kB", 512, 0);
	put_node_hp(0, "1048576kB", 0, 0);
	put_node_hp(1, "1048576kB", 0, 0);
	doctor_check_hugepages(&env, &rep);
	expect(&rep, "hugepages", "2048kB on node0: 1000 free / 1024 total", DOCTOR_OK, NULL);
	expect(&rep, "hugepages", "2048kB on node1: all in use (0 free / 512 total)", DOCTOR_WARN,
		"echo 1024 > /sys/devices/system/node/node1/hugepages/hugepages-2048kB/"
		"nr_hugepages");
	expect(&rep, "hugepages", "1048576kB on node1: none reserved", DOCTOR_INFO, NULL);
	assert_int_equal(doctor_worst(&rep), DOCTOR_WARN);
	doctor_report_free(&rep);
}

static void
hugepages_none(void **state)
{
	struct doctor_env env = {.root = root};
	struct doctor_report rep = {0};

	/* No NUMA directories: the global counters. */
	put("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "0\n");
	put("sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "0\n");
	doctor_check_hugepages(&env, &rep);
	expect(&rep, "hugepages", "2048kB: 0 free / 0 total", DOCTOR_INFO, NULL);
	expect(&rep, "hugepages", "no hugepages reserved", DOCTOR_FAIL,
		"echo 1024 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
	doctor_report_free(&rep);
}

static void
hugetlbfs_mounts(void **state)
{
	struct doctor_env env = {.root = root};
	struct doctor_report rep = {0};

	put("proc/mounts", "proc /proc proc rw 0 0\n"
			   "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n"
			   "none /mnt/huge1G hugetlbfs rw,pagesize=1024M 0 0\n");
	doctor_check_hugetlbfs(&env, &rep);
	expect(&rep, "hugetlbfs", "/dev/hugepages mounted (page size 2M)", DOCTOR_OK, NULL);
	expect(&rep, "hugetlbfs", "/mnt/huge1G mounted (page size 1024M)", DOCTOR_OK, NULL);
	doctor_report_free(&rep);

	put("proc/mounts", "proc /proc proc rw 0 0\n");
	doctor_check_hugetlbfs(&env, &rep);
	expect(&rep, "hugetlbfs", "no hugetlbfs mounted", DOCTOR_FAIL,
		"mount -t hugetlbfs nodev /dev/hugepages");
	doctor_report_free(&rep);
}

static void
thp(void **state)
{
	struct doctor_env env = {.root = root};
	struct doctor_report rep = {0};

	put("sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n");
	put("sys/kernel/mm/transparent_hugepage/defrag",
		"[always] defer defer+madvise madvise never\n");
	doctor_check_thp(&env, &rep);
	expect(&rep, "thp", "enabled=always", DOCTOR_WARN,
		"echo madvise > /sys/kernel/mm/transparent_hugepage/enabled");
	expect(&rep, "thp", "defrag=always", DOCTOR_WARN,
		"echo defer+madvise > /sys/kernel/mm/transparent_hugepage/defrag");
	doctor_report_free(&rep);

	put("sys/kernel/mm/transparent_hugepage/enabled", "always madvise [never]\n");
	put("sys/kernel/mm/transparent_hugepage/defrag",
		"always [defer] defer+madvise madvise never\n");
	doctor_check_thp(&env, &rep);
	expect(&rep, "thp", "THP enabled=never", DOCTOR_OK, NULL);
	expect(&rep, "thp", "THP defrag=defer", DOCTOR_OK, NULL);
	doctor_report_free(&rep);
}

static void
ksm_and_numa_balancing(void **state)
{
	struct doctor_env env = {.root = root};
	struct doctor_report rep = {0};

	mkdirs(strcat(strcpy((char[256]){0}, root), "/sys/devices/system/node/node0"));
	mkdirs(strcat(strcpy((char[256]){0}, root), "/sys/devices/system/node/node1"));
	put("sys/kernel/mm/ksm/run", "1\n");
	put("sys/kernel/mm/ksm/merge_across_nodes", "1\n");
	put("proc/sys/kernel/numa_balancing", "1\n");
	doctor_check_ksm(&env, &rep);
	doctor_check_numa_balancing(&env, &rep);
	expect(&rep, "ksm", "KSM run=1", DOCTOR_WARN, "echo 0 > /sys/kernel/mm/ksm/run");
	expect(&rep, "ksm", "merge_across_nodes=1 on 2 NUMA nodes", DOCTOR_WARN,
		"echo 0 > /sys/kernel/mm/ksm/merge_across_nodes");
	expect(&rep, "numa_balancing", "numa_balancing=1 on 2 NUMA nodes", DOCTOR_WARN,
		"sysctl -w kernel.numa_balancing=0");
	doctor_report_free(&rep);

	put("sys/kernel/mm/ksm/run", "0\n");
	put("proc/sys/kernel/numa_balancing", "0\n");
	doctor_check_ksm(&env, &rep);
	doctor_check_numa_balancing(&env, &rep);
	expect(&rep, "ksm", "KSM run=0", DOCTOR_OK, NULL);
	expect(&rep, "ksm", "merge_across_nodes=1", DOCTOR_OK, NULL);
	expect(&rep, "numa_balancing", "numa_balancing=0", DOCTOR_OK, NULL);
	doctor_report_free(&rep);
}

static void
isolation_vs_pmd_cpus(void **state)
{
	struct doctor_env env = {.root = root, .pmd_cpus = "2,3"};
	struct doctor_report rep = {0};

	put("sys/devices/system/cpu/isolated", "2-3\n");
	put("sys/devices/system/cpu/nohz_full", "(null)\n");
	doctor_check_isolation(&env, &rep);
	expect(&rep, "isolcpus", "isolcpus=2-3 covers the PMD CPUs 2,3", DOCTOR_OK, NULL);
	expect(&rep, "nohz_full", "nohz_full=none: PMD CPUs 2-3 not tickless", DOCTOR_WARN,
		"nohz_full=2,3");
	doctor_report_free(&rep);

	env.pmd_cpus = "1";
	doctor_check_isolation(&env, &rep);
	expect(&rep, "isolcpus", "isolcpus=2-3: PMD CPU 1 not isolated", DOCTOR_WARN,
		"add isolcpus=1 nohz_full=1 rcu_nocbs=1 to GRUB_CMDLINE_LINUX");
	doctor_report_free(&rep);

	env.pmd_cpus = NULL;
	doctor_check_isolation(&env, &rep);
	expect(&rep, "isolcpus", "PMD CPUs are unknown", DOCTOR_INFO, NULL);
	doctor_report_free(&rep);
}

static void
halt_poll_and_iommu(void **state)
{
	struct doctor_env env = {.root = root};
	struct doctor_report rep = {0};

	put("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1\n");
	doctor_check_halt_poll(&env, &rep);
	doctor_check_iommu(&env, &rep);
	expect(&rep, "halt_poll_ns", "kvm is not loaded", DOCTOR_INFO, "modprobe");
	expect(&rep, "iommu", "no IOMMU", DOCTOR_WARN, "intel_iommu=on iommu=pt");
	doctor_report_free(&rep);

	put("sys/module/kvm/parameters/halt_poll_ns", "500000\n");
	mkdirs(strcat(strcpy((char[256]){0}, root), "/sys/class/iommu/dmar0"));
	doctor_check_halt_poll(&env, &rep);
	doctor_check_iommu(&env, &rep);
	expect(&rep, "halt_poll_ns", "halt_poll_ns=500000: KVM polls up to 500 us", DOCTOR_OK,
		NULL);
	expect(&rep, "iommu", "IOMMU dmar0 present", DOCTOR_OK, NULL);
	doctor_report_free(&rep);
}

static int
listen_at(const char *rel)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", root, rel);
	*strrchr(sa.sun_path, '/') = '\0';
	mkdirs(sa.sun_path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", root, rel);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static void
libvirt_and_ovs(void **state)
{
	struct doctor_env env = {.root = root};
	struct doctor_report rep = {0};
	int l, o;

	mkdirs(strcat(strcpy((char[256]){0}, root), "/etc/libvirt"));
	doctor_check_libvirt(&env, &rep);
	doctor_check_ovs(&env, &rep);
	expect(&rep, "libvirtd", "libvirt not reachable", DOCTOR_WARN, "systemctl start libvirtd");
	expect(&rep, "libvirt-hook", "not installed", DOCTOR_WARN,
		"configs/libvirt/hooks/qemu /etc/libvirt/hooks/qemu.d/vhostd");
	expect(&rep, "ovs", "OVSDB not reachable", DOCTOR_WARN, "openvswitch-switch");
	doctor_report_free(&rep);

	l = listen_at("run/libvirt/libvirt-sock");
	o = listen_at("run/openvswitch/db.sock");
	put("etc/libvirt/hooks/qemu.d/vhostd", "#!/bin/sh\n");
	chmod(strcat(strcpy((char[256]){0}, root), "/etc/libvirt/hooks/qemu.d/vhostd"), 0755);
	doctor_check_libvirt(&env, &rep);
	doctor_check_ovs(&env, &rep);
	expect(&rep, "libvirtd", "libvirt reachable at /run/libvirt/libvirt-sock", DOCTOR_OK, NULL);
	expect(&rep, "libvirt-hook", "hook is installed", DOCTOR_OK, NULL);
	expect(&rep, "ovs", "OVSDB reachable", DOCTOR_OK, NULL);
	close(l);
	close(o);
	doctor_report_free(&rep);
}

static void
report_json(void **state)
{
	struct doctor_env env = {.root = root};
	struct doctor_report rep = {0};
	json_t *j, *first;

	doctor_run(&env, &rep); /* an empty tree: every check still answers */
	assert_true(rep.n >= 10);
	assert_int_equal(doctor_worst(&rep), DOCTOR_FAIL);
	j = doctor_report_json(&rep);
	assert_int_equal(json_array_size(j), rep.n);
	first = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(first, "check")), "hugepages");
	assert_string_equal(json_string_value(json_object_get(first, "verdict")), "fail");
	assert_non_null(json_object_get(first, "fix"));
	json_decref(j);
	doctor_report_free(&rep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(hugepages_per_size_and_node, setup, teardown),
		cmocka_unit_test_setup_teardown(hugepages_none, setup, teardown),
		cmocka_unit_test_setup_teardown(hugetlbfs_mounts, setup, teardown),
		cmocka_unit_test_setup_teardown(thp, setup, teardown),
		cmocka_unit_test_setup_teardown(ksm_and_numa_balancing, setup, teardown),
		cmocka_unit_test_setup_teardown(isolation_vs_pmd_cpus, setup, teardown),
		cmocka_unit_test_setup_teardown(halt_poll_and_iommu, setup, teardown),
		cmocka_unit_test_setup_teardown(libvirt_and_ovs, setup, teardown),
		cmocka_unit_test_setup_teardown(report_json, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
