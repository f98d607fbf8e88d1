/* SPDX-License-Identifier: BSD-3-Clause */
/* The hugepage pre-flight check: its errors must name the fix. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "eal.h"

struct fake {
	char dir[256];
	char sysfs[300];
	char mounts[300];
};

static void
put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
fake_size(struct fake *fk, const char *size, long nr, long fr)
{
	char path[512], num[32];

	snprintf(path, sizeof(path), "%s/hugepages-%s", fk->sysfs, size);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/hugepages-%s/nr_hugepages", fk->sysfs, size);
	snprintf(num, sizeof(num), "%ld\n", nr);
	put(path, num);
	snprintf(path, sizeof(path), "%s/hugepages-%s/free_hugepages", fk->sysfs, size);
	snprintf(num, sizeof(num), "%ld\n", fr);
	put(path, num);
}

static void
fake_init(struct fake *fk, bool mounted)
{
	snprintf(fk->dir, sizeof(fk->dir), "/tmp/vhostd-ut-eal-XXXXXX");
	assert_non_null(mkdtemp(fk->dir));
	snprintf(fk->sysfs, sizeof(fk->sysfs), "%s/hugepages", fk->dir);
	snprintf(fk->mounts, sizeof(fk->mounts), "%s/mounts", fk->dir);
	mkdir(fk->sysfs, 0755);
	put(fk->mounts, mounted ? "proc /proc proc rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs "
				  "rw,relatime,pagesize=2M 0 0\n"
				: "proc /proc proc rw 0 0\n");
}

static void
fake_fini(struct fake *fk)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", fk->dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_no_mount_names_mount_command(void **state)
{
	struct fake fk;
	char err[512];

	fake_init(&fk, false);
	fake_size(&fk, "2048kB", 512, 512);
	assert_int_equal(eal_check_hugepages_at(fk.sysfs, fk.mounts, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "mount -t hugetlbfs"));
	fake_fini(&fk);
}

static void
test_no_free_pages_names_reservation(void **state)
{
	struct fake fk;
	char err[512];

	fake_init(&fk, true);
	fake_size(&fk, "2048kB", 0, 0);
	fake_size(&fk, "1048576kB", 2, 0);
	assert_int_equal(eal_check_hugepages_at(fk.sysfs, fk.mounts, err, sizeof(err)), -ENOMEM);
	assert_non_null(strstr(err, "nr_hugepages"));
	assert_non_null(strstr(err, "2048kB: 0 of 0 free"));
	assert_non_null(strstr(err, "1048576kB: 0 of 2 free"));
	assert_non_null(strstr(err, "no-huge"));
	fake_fini(&fk);
}

static void
test_free_pages_pass(void **state)
{
	struct fake fk;
	char err[512] = "";

	/* The mount is of the 2M size, which has free pages. */
	fake_init(&fk, true);
	fake_size(&fk, "2048kB", 512, 300);
	fake_size(&fk, "1048576kB", 0, 0);
	assert_int_equal(eal_check_hugepages_at(fk.sysfs, fk.mounts, err, sizeof(err)), 0);
	fake_fini(&fk);
}

static void
test_free_pages_of_an_unmounted_size(void **state)
{
	struct fake fk;
	char err[512];

	/* Only a 2M mount, but only 1G pages are free. */
	fake_init(&fk, true);
	fake_size(&fk, "2048kB", 64, 0);
	fake_size(&fk, "1048576kB", 4, 4);
	assert_int_equal(eal_check_hugepages_at(fk.sysfs, fk.mounts, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "-o pagesize=1024M"));
	assert_non_null(strstr(err, "1048576kB: 4 of 4 free (not mounted)"));
	/* With a 1G mount as well it passes. */
	put(fk.mounts, "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n"
		       "hugetlbfs /dev/hugepages-1G hugetlbfs rw,relatime,pagesize=1024M 0 0\n");
	assert_int_equal(eal_check_hugepages_at(fk.sysfs, fk.mounts, err, sizeof(err)), 0);
	fake_fini(&fk);
}

static void
test_no_sysfs(void **state)
{
	struct fake fk;
	char err[512];

	fake_init(&fk, true);
	assert_int_equal(
		eal_check_hugepages_at("/nonexistent/hugepages", fk.mounts, err, sizeof(err)),
		-ENOENT);
	assert_non_null(strstr(err, "no hugepage support"));
	fake_fini(&fk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_mount_names_mount_command),
		cmocka_unit_test(test_no_free_pages_names_reservation),
		cmocka_unit_test(test_free_pages_pass),
		cmocka_unit_test(test_free_pages_of_an_unmounted_size),
		cmocka_unit_test(test_no_sysfs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
