/* SPDX-License-Identifier: BSD-3-Clause */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpuset.h"

static int
parse_cpu(const char **p, long *out)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)**p))
		return -EINVAL;
	errno = 0;
	v = strtol(*p, &end, 10);
	if (errno != 0 || v < 0 || v >= CPU_SETSIZE)
		return -ERANGE;
	*p = end;
	*out = v;
	return 0;
}

int
cpuset_parse(const char *text, cpu_set_t *set, char *err, size_t errlen)
{
	cpu_set_t excl;
	const char *p = text;
	long lo, hi;
	int rc;

	CPU_ZERO(set);
	CPU_ZERO(&excl);
	if (text == NULL || *text == '\0') {
		snprintf(err, errlen, "empty CPU list");
		return -EINVAL;
	}
	for (;;) {
		int negate = 0;

		while (*p == ' ')
			p++;
		if (*p == '^') {
			negate = 1;
			p++;
		}
		rc = parse_cpu(&p, &lo);
		if (rc < 0)
			goto bad;
		hi = lo;
		if (*p == '-') {
			p++;
			rc = parse_cpu(&p, &hi);
			if (rc < 0)
				goto bad;
			if (hi < lo) {
				snprintf(err, errlen, "CPU list \"%s\": reversed range %ld-%ld",
					text, lo, hi);
				return -EINVAL;
			}
		}
		for (long c = lo; c <= hi; c++)
			CPU_SET(c, negate ? &excl : set);
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (*p != ',')
			goto bad;
		p++;
	}
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &excl))
			CPU_CLR(c, set);
	if (CPU_COUNT(set) == 0) {
		snprintf(err, errlen, "CPU list \"%s\" selects no CPU", text);
		return -EINVAL;
	}
	return 0;
bad:
	snprintf(err, errlen, "CPU list \"%s\": bad syntax at \"%s\" (expected e.g. \"0-3,^1\"%s)",
		text, p, rc == -ERANGE ? ", CPU number too large" : "");
	CPU_ZERO(set);
	return -EINVAL;
}

int
cpuset_format(const cpu_set_t *set, char *buf, size_t len)
{
	size_t used = 0;
	int c = 0;

	if (len == 0)
		return -ENOSPC;
	buf[0] = '\0';
	while (c < CPU_SETSIZE) {
		int start, n;

		if (!CPU_ISSET(c, set)) {
			c++;
			continue;
		}
		start = c;
		while (c + 1 < CPU_SETSIZE && CPU_ISSET(c + 1, set))
			c++;
		if (start == c)
			n = snprintf(buf + used, len - used, "%s%d", used ? "," : "", start);
		else
			n = snprintf(buf + used, len - used, "%s%d-%d", used ? "," : "", start, c);
		if (n < 0 || (size_t)n >= len - used)
			return -ENOSPC;
		used += n;
		c++;
	}
	return (int)used;
}

int
cpuset_check_usable(const cpu_set_t *set, char *err, size_t errlen)
{
	cpu_set_t allowed;
	long online = sysconf(_SC_NPROCESSORS_CONF);

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		CPU_ZERO(&allowed);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, set))
			continue;
		if (c >= online) {
			snprintf(err, errlen, "CPU %d does not exist (this host has %ld CPUs)", c,
				online);
			return -EINVAL;
		}
		if (!CPU_ISSET(c, &allowed)) {
			snprintf(err, errlen, "CPU %d is not in vhostd's affinity mask", c);
			return -EINVAL;
		}
	}
	return 0;
}

int
cpuset_last_allowed(void)
{
	cpu_set_t allowed;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return -1;
	for (int c = CPU_SETSIZE - 1; c >= 0; c--)
		if (CPU_ISSET(c, &allowed))
			return c;
	return -1;
}
