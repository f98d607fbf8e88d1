/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DPDK EAL start-up: hugepage checks with errors that name the fix, the EAL
 * argument vector built from the config, and memory locking.
 */
#ifndef VHOSTD_EAL_H
#define VHOSTD_EAL_H

#include <stddef.h>

struct daemon_conf;

/*
 * 0 if hugetlbfs is mounted and some hugepages are free, else -ENOMEM or
 * -ENOENT with a message that says how to fix it.
 */
int eal_check_hugepages(char *err, size_t errlen);
/* The same with another sysfs hugepages dir and mount table (for tests). */
int eal_check_hugepages_at(const char *sysfs, const char *mounts, char *err, size_t errlen);

/* Initialise the EAL for the daemon; returns 0 or a negative errno. */
int eal_start(const struct daemon_conf *d, const char *prog, char *err, size_t errlen);

#endif
