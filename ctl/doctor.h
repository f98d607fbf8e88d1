/* SPDX-License-Identifier: BSD-3-Clause */

/*
 * "vhostctl doctor": host checks for a vhost-user dataplane, each a line
 * with a verdict and, for a problem, the command that fixes it. Every check
 * reads its files under env->root (sysfs at ROOT/sys, procfs at ROOT/proc,
 * sockets under ROOT/run, hooks under ROOT/etc), so that the unit tests
 * run them on a fake tree; "" is the real host.
 */

#ifndef VHOSTD_DOCTOR_H
#define VHOSTD_DOCTOR_H

#include <stddef.h>

#include <jansson.h>

enum doctor_verdict {
	DOCTOR_OK,
	DOCTOR_INFO, /* worth knowing, nothing to fix */
	DOCTOR_WARN, /* works, but costs latency, throughput or a feature */
	DOCTOR_FAIL, /* vhostd or its guests will not work */
};

struct doctor_item {
	char check[48];
	enum doctor_verdict verdict;
	char detail[384];
	char fix[384]; /* "" when there is nothing to do */
};

struct doctor_report {
	struct doctor_item *items;
	size_t n, cap;
};

struct doctor_env {
	const char *root;     /* "" for the host */
	const char *pmd_cpus; /* the PMD threads' CPUs ("1,3"), NULL when unknown */
};

void doctor_check_hugepages(const struct doctor_env *env, struct doctor_report *rep);
void doctor_check_hugetlbfs(const struct doctor_env *env, struct doctor_report *rep);
void doctor_check_thp(const struct doctor_env *env, struct doctor_report *rep);
void doctor_check_ksm(const struct doctor_env *env, struct doctor_report *rep);
void doctor_check_numa_balancing(const struct doctor_env *env, struct doctor_report *rep);
void doctor_check_isolation(const struct doctor_env *env, struct doctor_report *rep);
void doctor_check_halt_poll(const struct doctor_env *env, struct doctor_report *rep);
void doctor_check_iommu(const struct doctor_env *env, struct doctor_report *rep);
void doctor_check_libvirt(const struct doctor_env *env, struct doctor_report *rep);
void doctor_check_ovs(const struct doctor_env *env, struct doctor_report *rep);

/* All of the above, in this order. */
void doctor_run(const struct doctor_env *env, struct doctor_report *rep);

/* Append one line (used by vhostctl for the vhostd check too). */
void doctor_add(struct doctor_report *rep, const char *check, enum doctor_verdict v,
	const char *fix, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

const char *doctor_verdict_name(enum doctor_verdict v);
/* The worst verdict of the report. */
enum doctor_verdict doctor_worst(const struct doctor_report *rep);
/* [{"check", "verdict", "detail", "fix"?}] */
json_t *doctor_report_json(const struct doctor_report *rep);
void doctor_report_free(struct doctor_report *rep);

#endif /* VHOSTD_DOCTOR_H */
