/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CPU lists in libvirt's cpuset syntax: "0-3,^1,8" (ranges, single CPUs and
 * exclusions applied after the inclusions, in any order).
 */
#ifndef VHOSTD_CPUSET_H
#define VHOSTD_CPUSET_H

#include <sched.h>
#include <stddef.h>

/*
 * Parse @text into @set. Returns 0, or -EINVAL with a message in @err for
 * syntax errors, CPUs >= CPU_SETSIZE, reversed ranges and empty results.
 */
int cpuset_parse(const char *text, cpu_set_t *set, char *err, size_t errlen);

/* Format @set compactly ("1-3,5"); returns the length or -ENOSPC. */
int cpuset_format(const cpu_set_t *set, char *buf, size_t len);

/*
 * Check that every CPU of @set is online and in this process's affinity
 * mask; returns 0 or -EINVAL naming the first CPU that is not.
 */
int cpuset_check_usable(const cpu_set_t *set, char *err, size_t errlen);

/* The highest-numbered CPU this process may run on, or -1. */
int cpuset_last_allowed(void);

#endif
