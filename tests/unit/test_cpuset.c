/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of dataplane/cpuset.c: libvirt cpuset syntax, formatting and
 * the usability check.
 *
 * Whitespace: blanks are accepted around the items of the list (" 1-2 , 4 ")
 * but not inside an item (" 1 - 2" and "^ 1" are syntax errors), as libvirt
 * does.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpuset.h"

static char err[256];

/* Parse @text, expect success and the CPUs of @expect (a -1 terminated list). */
static void
expect_set(const char *text, const int *expect)
{
	cpu_set_t set, want;
	int rc;

	CPU_ZERO(&want);
	for (int i = 0; expect[i] >= 0; i++)
		CPU_SET(expect[i], &want);
	err[0] = '\0';
	rc = cpuset_parse(text, &set, err, sizeof(err));
	if (rc != 0)
		print_error("cpuset_parse(\"%s\") failed: %s\n", text, err);
	assert_int_equal(rc, 0);
	assert_true(CPU_EQUAL(&set, &want));
}

/* Parse @text, expect -EINVAL with a message containing @needle. */
static void
expect_error(const char *text, const char *needle)
{
	cpu_set_t set;
	int rc;

	err[0] = '\0';
	rc = cpuset_parse(text, &set, err, sizeof(err));
	if (rc != -EINVAL)
		print_error("cpuset_parse(\"%s\") returned %d, expected -EINVAL\n",
			text ? text : "(null)", rc);
	assert_int_equal(rc, -EINVAL);
	assert_true(err[0] != '\0');
	if (needle != NULL && strstr(err, needle) == NULL)
		print_error("message \"%s\" lacks \"%s\"\n", err, needle);
	if (needle != NULL)
		assert_non_null(strstr(err, needle));
}

static void
test_parse_valid(void **state)
{
	(void)state;
	expect_set("0", (const int[]){0, -1});
	expect_set("0-3", (const int[]){0, 1, 2, 3, -1});
	expect_set("0-3,^1", (const int[]){0, 2, 3, -1});
	/* Exclusions apply after every inclusion, whatever their position. */
	expect_set("^1,0-3", (const int[]){0, 2, 3, -1});
	expect_set("0,2", (const int[]){0, 2, -1});
	expect_set("2,0", (const int[]){0, 2, -1});
	expect_set("0-7,^2-5", (const int[]){0, 1, 6, 7, -1});
	expect_set("1-1", (const int[]){1, -1});
	expect_set("3,3,3", (const int[]){3, -1});
	expect_set("0-2,1-3", (const int[]){0, 1, 2, 3, -1});
	expect_set("0,^5", (const int[]){0, -1});
	expect_set(" 1-2 , 4 ", (const int[]){1, 2, 4, -1});
	expect_set("007", (const int[]){7, -1});
	expect_set("1023", (const int[]){CPU_SETSIZE - 1, -1});
}

static void
test_parse_full_range(void **state)
{
	cpu_set_t set;
	char text[32];

	(void)state;
	snprintf(text, sizeof(text), "0-%d", CPU_SETSIZE - 1);
	assert_int_equal(cpuset_parse(text, &set, err, sizeof(err)), 0);
	assert_int_equal(CPU_COUNT(&set), CPU_SETSIZE);
}

static void
test_parse_errors(void **state)
{
	char text[64];

	(void)state;
	expect_error(NULL, "empty");
	expect_error("", "empty");
	expect_error("^1", "selects no CPU");
	expect_error("0-3,^0-3", "selects no CPU");
	expect_error("3-1", "reversed range 3-1");
	expect_error("a", "bad syntax");
	expect_error("1,,2", "bad syntax");
	expect_error("1-", "bad syntax");
	expect_error("-1", "bad syntax");
	expect_error("1,", "bad syntax");
	expect_error(",1", "bad syntax");
	expect_error("1 - 2", "bad syntax");
	expect_error(" 1 - 2", "bad syntax");
	expect_error("^ 1", "bad syntax");
	expect_error("^^1", "bad syntax");
	expect_error("1;2", "bad syntax");
	expect_error("1 2", "bad syntax");
	expect_error("+1", "bad syntax");
	expect_error("0x1", "bad syntax");
	expect_error("1.5", "bad syntax");
	expect_error("0-3,^9x", "bad syntax");
	expect_error(" ", "bad syntax");
	snprintf(text, sizeof(text), "%d", CPU_SETSIZE);
	expect_error(text, "too large");
	snprintf(text, sizeof(text), "0-%d", CPU_SETSIZE);
	expect_error(text, "too large");
	snprintf(text, sizeof(text), "^%d,0", CPU_SETSIZE);
	expect_error(text, "too large");
	expect_error("99999999999999999999999999", "too large");
	expect_error("18446744073709551617", "too large");
	expect_error("0-99999999999999999999", "too large");
}

/* A failed parse leaves no CPU behind in the output set. */
static void
test_parse_error_clears_set(void **state)
{
	cpu_set_t set;

	(void)state;
	assert_int_equal(cpuset_parse("0-3,x", &set, err, sizeof(err)), -EINVAL);
	assert_int_equal(CPU_COUNT(&set), 0);
	assert_int_equal(cpuset_parse("0-3,^0-3", &set, err, sizeof(err)), -EINVAL);
	assert_int_equal(CPU_COUNT(&set), 0);
}

/* A message never overflows a small buffer. */
static void
test_parse_small_err_buffer(void **state)
{
	char small[8];
	cpu_set_t set;

	(void)state;
	memset(small, 'x', sizeof(small));
	assert_int_equal(cpuset_parse("a-very-long-bad-list", &set, small, sizeof(small)), -EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void
roundtrip(const char *text, const char *canonical)
{
	cpu_set_t a, b;
	char buf[4096];
	int n;

	assert_int_equal(cpuset_parse(text, &a, err, sizeof(err)), 0);
	n = cpuset_format(&a, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, canonical);
	assert_int_equal(cpuset_parse(buf, &b, err, sizeof(err)), 0);
	assert_true(CPU_EQUAL(&a, &b));
}

static void
test_format_roundtrip(void **state)
{
	cpu_set_t set;
	char buf[4096];

	(void)state;
	roundtrip("0", "0");
	roundtrip("0-3,^1", "0,2-3");
	roundtrip("2,0", "0,2");
	roundtrip("5,1-3,4", "1-5");
	roundtrip("0-7,^2-5", "0-1,6-7");
	roundtrip("1023", "1023");
	roundtrip("0-1023", "0-1023");
	roundtrip("1022-1023,0", "0,1022-1023");
	roundtrip("0-1023,^1-1022", "0,1023");

	/* Every even CPU: the longest output. */
	CPU_ZERO(&set);
	for (int c = 0; c < CPU_SETSIZE; c += 2)
		CPU_SET(c, &set);
	assert_true(cpuset_format(&set, buf, sizeof(buf)) > 0);
	{
		cpu_set_t back;

		assert_int_equal(cpuset_parse(buf, &back, err, sizeof(err)), 0);
		assert_true(CPU_EQUAL(&set, &back));
	}

	/* The empty set formats as "". */
	CPU_ZERO(&set);
	assert_int_equal(cpuset_format(&set, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

static void
test_format_nospace(void **state)
{
	cpu_set_t set;
	char buf[8];

	(void)state;
	assert_int_equal(cpuset_parse("1-3,5", &set, err, sizeof(err)), 0);
	/* "1-3,5" needs 6 bytes with the NUL. */
	assert_int_equal(cpuset_format(&set, buf, 6), 5);
	assert_string_equal(buf, "1-3,5");
	assert_int_equal(cpuset_format(&set, buf, 5), -ENOSPC);
	assert_int_equal(cpuset_format(&set, buf, 3), -ENOSPC);
	assert_int_equal(cpuset_format(&set, buf, 1), -ENOSPC);
}

static int
first_allowed_cpu(void)
{
	cpu_set_t allowed;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed))
			return c;
	return -1;
}

static void
test_check_usable(void **state)
{
	long n_cpus = sysconf(_SC_NPROCESSORS_CONF);
	int cpu = first_allowed_cpu();
	cpu_set_t set;
	char msg[64];

	(void)state;
	assert_true(cpu >= 0);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	assert_int_equal(cpuset_check_usable(&set, err, sizeof(err)), 0);
	assert_int_equal(cpuset_last_allowed() >= cpu, 1);

	/* A CPU that does not exist on this host. */
	if (n_cpus >= CPU_SETSIZE) {
		print_message("host has %ld CPUs: no absent CPU to test\n", n_cpus);
		return;
	}
	CPU_SET(CPU_SETSIZE - 1, &set);
	err[0] = '\0';
	assert_int_equal(cpuset_check_usable(&set, err, sizeof(err)), -EINVAL);
	snprintf(msg, sizeof(msg), "CPU %d does not exist", CPU_SETSIZE - 1);
	assert_non_null(strstr(err, msg));

	CPU_ZERO(&set);
	CPU_SET((int)n_cpus, &set);
	assert_int_equal(cpuset_check_usable(&set, err, sizeof(err)), -EINVAL);
	snprintf(msg, sizeof(msg), "CPU %ld does not exist", n_cpus);
	assert_non_null(strstr(err, msg));
}

/* A CPU that exists but is outside the affinity mask is refused by name. */
static void
test_check_outside_affinity(void **state)
{
	cpu_set_t saved, one, set;
	int cpu = first_allowed_cpu(), other = -1;
	char msg[64];

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
	if (CPU_COUNT(&saved) < 2) {
		print_message("only one CPU allowed: affinity case skipped\n");
		skip();
	}
	for (int c = cpu + 1; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &saved)) {
			other = c;
			break;
		}
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	CPU_ZERO(&set);
	CPU_SET(other, &set);
	err[0] = '\0';
	{
		int rc = cpuset_check_usable(&set, err, sizeof(err));
		int last = cpuset_last_allowed();

		assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
		assert_int_equal(rc, -EINVAL);
		assert_int_equal(last, cpu);
	}
	snprintf(msg, sizeof(msg), "CPU %d is not in vhostd's affinity mask", other);
	assert_non_null(strstr(err, msg));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_full_range),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_error_clears_set),
		cmocka_unit_test(test_parse_small_err_buffer),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_format_nospace),
		cmocka_unit_test(test_check_usable),
		cmocka_unit_test(test_check_outside_affinity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
