/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <mntent.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "config.h"
#include "cpuset.h"
#include "eal.h"
#include "log.h"

#define HUGEPAGES_SYSFS "/sys/kernel/mm/hugepages"

static long
read_long(const char *sysfs, const char *dir, const char *file)
{
	char path[1024];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", sysfs, dir, file);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Page size in kB of a hugetlbfs mount ("pagesize=2M" in its options). */
static long
mount_page_kb(const struct mntent *m)
{
	const char *p = strstr(m->mnt_opts, "pagesize=");
	char *end;
	long v;

	if (p == NULL)
		return 0;
	v = strtol(p + 9, &end, 10);
	switch (*end) {
	case 'G':
		return v * 1024 * 1024;
	case 'M':
		return v * 1024;
	case 'K':
	case 'k':
		return v;
	default:
		return v / 1024;
	}
}

/* Fill @kb with the page sizes of the hugetlbfs mounts; returns how many. */
static int
hugetlbfs_mounts(const char *mounts, long *kb, int max)
{
	struct mntent *m;
	FILE *f = setmntent(mounts, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while ((m = getmntent(f)) != NULL && n < max)
		if (strcmp(m->mnt_type, "hugetlbfs") == 0)
			kb[n++] = mount_page_kb(m);
	endmntent(f);
	return n;
}

int
eal_check_hugepages(char *err, size_t errlen)
{
	return eal_check_hugepages_at(HUGEPAGES_SYSFS, "/proc/mounts", err, errlen);
}

int
eal_check_hugepages_at(const char *sysfs, const char *mounts, char *err, size_t errlen)
{
	char sizes[256] = "", unmounted[64] = "";
	long free_usable = 0, mounted_kb[16];
	int n_mounts = hugetlbfs_mounts(mounts, mounted_kb, 16);
	struct dirent *de;
	size_t used = 0;
	DIR *d;

	if (n_mounts == 0) {
		snprintf(err, errlen,
			"no hugetlbfs is mounted: run `mkdir -p /dev/hugepages && mount -t "
			"hugetlbfs nodev /dev/hugepages` (or set eal.no-huge for development)");
		return -ENOENT;
	}
	d = opendir(sysfs);
	if (d == NULL) {
		snprintf(err, errlen, "this kernel has no hugepage support (%s)", sysfs);
		return -ENOENT;
	}
	while ((de = readdir(d)) != NULL) {
		long nr, fr, kb;
		bool mounted = false;

		if (strncmp(de->d_name, "hugepages-", 10) != 0)
			continue;
		kb = strtol(de->d_name + 10, NULL, 10);
		nr = read_long(sysfs, de->d_name, "nr_hugepages");
		fr = read_long(sysfs, de->d_name, "free_hugepages");
		for (int i = 0; i < n_mounts; i++)
			if (mounted_kb[i] == kb)
				mounted = true;
		/* DPDK only uses page sizes that have a hugetlbfs mount. */
		if (fr > 0 && mounted)
			free_usable += fr;
		else if (fr > 0)
			snprintf(unmounted, sizeof(unmounted), "%ldM", kb / 1024);
		used += snprintf(sizes + used, used < sizeof(sizes) ? sizeof(sizes) - used : 0,
			"%s%s: %ld of %ld free%s", used ? ", " : "", de->d_name + 10, fr, nr,
			mounted ? "" : " (not mounted)");
	}
	closedir(d);
	if (free_usable > 0)
		return 0;
	if (unmounted[0] != '\0') {
		snprintf(err, errlen,
			"free hugepages are of a size no hugetlbfs is mounted for (%s): run `mkdir "
			"-p "
			"/dev/hugepages-%s && mount -t hugetlbfs -o pagesize=%s nodev "
			"/dev/hugepages-%s`",
			sizes, unmounted, unmounted, unmounted);
		return -ENOENT;
	}
	snprintf(err, errlen,
		"no free hugepages (%s): reserve some with `echo 1024 > "
		"%s/hugepages-2048kB/nr_hugepages` (or `dpdk-hugepages.py --setup 2G`), or "
		"set eal.no-huge for development",
		sizes, HUGEPAGES_SYSFS);
	return -ENOMEM;
}

int
eal_start(const struct daemon_conf *d, const char *prog, char *err, size_t errlen)
{
	char prefix[96], lcores[300], mem[32], cpus[256];
	char *argv[16 + CONFIG_MAX_EXTRA_ARGS];
	cpu_set_t allowed;
	int argc = 0, rc;

	if (!d->no_huge) {
		rc = eal_check_hugepages(err, errlen);
		if (rc < 0)
			return rc;
	}
	/*
	 * The main lcore is the control thread; let it float over every CPU we
	 * may use. PMD threads are our own pthreads, pinned by pmd.c.
	 */
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 ||
		cpuset_format(&allowed, cpus, sizeof(cpus)) < 0)
		snprintf(cpus, sizeof(cpus), "0");
	snprintf(lcores, sizeof(lcores), "--lcores=0@(%s)", cpus);
	snprintf(prefix, sizeof(prefix), "--file-prefix=%s", d->file_prefix);
	argv[argc++] = (char *)prog;
	argv[argc++] = lcores;
	argv[argc++] = prefix;
	argv[argc++] = "--no-pci";
	argv[argc++] = "--log-level=lib.eal:warning";
	argv[argc++] = "--log-level=lib.vhost.config:notice";
	if (d->no_huge) {
		argv[argc++] = "--no-huge";
		snprintf(mem, sizeof(mem), "-m%u", d->memory_mb ? d->memory_mb : 512);
		argv[argc++] = mem;
	} else {
		/*
		 * Memory in memfds, no hugepage files: those of a killed vhostd
		 * cannot pin memory, and a net_virtio_user link port (OVS-DPDK)
		 * can share our memory with its vhost-user backend in a few
		 * regions (one fd per memseg list; vhost-user allows 8).
		 */
		argv[argc++] = "--in-memory";
		argv[argc++] = "--single-file-segments";
		if (d->memory_mb) {
			snprintf(mem, sizeof(mem), "-m%u", d->memory_mb);
			argv[argc++] = mem;
		}
	}
	for (int i = 0; i < d->n_extra_args; i++)
		argv[argc++] = (char *)d->extra_args[i];
	argv[argc] = NULL;
	rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		/* The EAL logged the cause just above; add what it usually means. */
		rc = rte_errno ? -rte_errno : -EINVAL;
		snprintf(err, errlen,
			"DPDK EAL initialisation failed (%s); if it says it cannot lock its "
			"config, another vhostd runs with eal.file-prefix \"%s\"",
			rte_errno ? rte_strerror(rte_errno) : "see the EAL messages above",
			d->file_prefix);
		return rc;
	}
	if (d->mlockall && mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0)
		VLOG_WARN("mlockall failed: %s; memory may be swapped", strerror(errno));
	return 0;
}
