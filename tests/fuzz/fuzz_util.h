/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the libFuzzer harnesses (header only). */
#ifndef VHOSTD_FUZZ_UTIL_H
#define VHOSTD_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An invariant: on failure, say which one before libFuzzer saves the input. */
#define check(ok)                                                                                  \
	do {                                                                                       \
		if (!(ok)) {                                                                       \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #ok); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* @n bytes of @p, little-endian. */
static inline uint64_t
fuzz_get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

#ifdef VHOSTD_LUN_H
/* A 1 MiB LUN of backend @b, or abort. */
static inline struct lun *
fuzz_open_lun(enum lun_backend_type b, bool ro, const char *name)
{
	struct lun_conf c;
	struct lun *l;
	char err[256];

	lun_conf_init(&c);
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.backend = b;
	c.size = 1 << 20;
	c.readonly = ro;
	if (lun_open(&c, &l, err, sizeof(err)) < 0)
		abort();
	return l;
}
#endif

#endif
