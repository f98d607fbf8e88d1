/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_sched.h"

/* Better candidate for the next queue: less load, then fewer queues. */
static bool
pmd_better(const struct sched_pmd *a, const struct sched_pmd *b)
{
	if (a->load != b->load)
		return a->load < b->load;
	return a->n_queues < b->n_queues;
}

/* Equal candidates: the preferred one wins. */
static bool
pmd_tie(const struct sched_pmd *a, const struct sched_pmd *b)
{
	return a->load == b->load && a->n_queues == b->n_queues;
}

uint16_t
sched_pick(const struct sched_pmd *p, uint16_t np, int numa, int pin_cpu, uint16_t prefer,
	bool *fallback)
{
	uint16_t best = SCHED_NONE, any = SCHED_NONE;

	*fallback = false;
	if (pin_cpu >= 0) {
		for (uint16_t i = 0; i < np; i++)
			if (!p[i].off && p[i].cpu == pin_cpu)
				return i;
		return SCHED_NONE;
	}
	for (uint16_t i = 0; i < np; i++) {
		if (p[i].isolated || p[i].off)
			continue;
		if (any == SCHED_NONE || pmd_better(&p[i], &p[any]))
			any = i;
		if ((numa < 0 || p[i].numa == numa) &&
			(best == SCHED_NONE || pmd_better(&p[i], &p[best])))
			best = i;
	}
	if (best != SCHED_NONE) {
		if (prefer < np && prefer != best && !p[prefer].isolated && !p[prefer].off &&
			(numa < 0 || p[prefer].numa == numa) && pmd_tie(&p[prefer], &p[best]))
			return prefer;
		return best;
	}
	if (any != SCHED_NONE) {
		*fallback = numa >= 0;
		return any;
	}
	/* Every PMD is isolated: rather a shared PMD than an unpolled queue. */
	for (uint16_t i = 0; i < np; i++)
		if (!p[i].off && (any == SCHED_NONE || pmd_better(&p[i], &p[any])))
			any = i;
	*fallback = any != SCHED_NONE && numa >= 0 && p[any].numa != numa;
	return any;
}

static const struct sched_queue *sort_base;

/* Heaviest first; equal loads keep their input order (qsort is not stable). */
static int
cmp_load_desc(const void *a, const void *b)
{
	const struct sched_queue *x = &sort_base[*(const uint16_t *)a];
	const struct sched_queue *y = &sort_base[*(const uint16_t *)b];

	if (x->load != y->load)
		return x->load < y->load ? 1 : -1;
	return *(const uint16_t *)a < *(const uint16_t *)b ? -1 : 1;
}

unsigned int
sched_assign(struct sched_queue *q, uint16_t nq, struct sched_pmd *p, uint16_t np, bool isolate)
{
	unsigned int unpolled = 0;
	uint16_t *order;
	uint16_t n = 0;

	for (uint16_t i = 0; i < np; i++) {
		p[i].load = 0;
		p[i].n_queues = 0;
		p[i].isolated = false;
	}
	/* Isolation first: a PMD with a pinned queue takes no other one. */
	order = malloc(sizeof(*order) * (nq ? nq : 1));
	for (uint16_t i = 0; i < nq; i++) {
		bool fb;

		q[i].out = SCHED_NONE;
		q[i].numa_fallback = false;
		if (q[i].pin_cpu < 0) {
			if (order != NULL)
				order[n++] = i;
			continue;
		}
		q[i].out = sched_pick(p, np, q[i].numa, q[i].pin_cpu, SCHED_NONE, &fb);
		if (q[i].out == SCHED_NONE) {
			unpolled++;
			continue;
		}
		p[q[i].out].load += q[i].load;
		p[q[i].out].n_queues++;
		p[q[i].out].isolated = isolate;
	}
	if (order == NULL)
		return unpolled;
	/* A single-threaded caller (the control thread) and the unit tests. */
	sort_base = q;
	qsort(order, n, sizeof(*order), cmp_load_desc);
	for (uint16_t k = 0; k < n; k++) {
		struct sched_queue *x = &q[order[k]];

		x->out = sched_pick(p, np, x->numa, -1, x->cur, &x->numa_fallback);
		if (x->out == SCHED_NONE)
			continue;
		p[x->out].load += x->load;
		p[x->out].n_queues++;
	}
	free(order);
	return unpolled;
}

double
sched_variance(const struct sched_queue *q, uint16_t nq, uint16_t np, uint64_t total, bool use_out)
{
	double sum = 0, sq = 0, *pct;

	if (np == 0 || total == 0)
		return 0;
	pct = calloc(np, sizeof(*pct));
	if (pct == NULL)
		return 0;
	for (uint16_t i = 0; i < nq; i++) {
		uint16_t m = use_out ? q[i].out : q[i].cur;

		if (m < np)
			pct[m] += 100.0 * (double)q[i].load / (double)total;
	}
	for (uint16_t i = 0; i < np; i++)
		sum += pct[i];
	for (uint16_t i = 0; i < np; i++)
		sq += (pct[i] - sum / np) * (pct[i] - sum / np);
	free(pct);
	return sq / np;
}

bool
sched_improves(double cur_var, double new_var, unsigned int threshold_pct)
{
	if (new_var >= cur_var)
		return false;
	return (cur_var - new_var) * 100.0 >= cur_var * threshold_pct;
}

int
sched_parse_affinity(const char *text, int *pins, unsigned int n, char *err, size_t errlen)
{
	const char *s = text;

	for (unsigned int i = 0; i < n; i++)
		pins[i] = -1;
	while (*s != '\0') {
		char *end;
		long q, cpu;

		while (*s == ' ' || *s == ',')
			s++;
		if (*s == '\0')
			break;
		if (*s < '0' || *s > '9')
			goto bad;
		q = strtol(s, &end, 10);
		if (*end != ':' || end[1] < '0' || end[1] > '9')
			goto bad;
		cpu = strtol(end + 1, &end, 10);
		if (q < 0 || q >= (long)n) {
			snprintf(err, errlen, "queue %ld out of range (0-%u)", q, n - 1);
			return -EINVAL;
		}
		if (cpu < 0 || cpu > 1023) {
			snprintf(err, errlen, "CPU %ld out of range", cpu);
			return -EINVAL;
		}
		if (pins[q] >= 0) {
			snprintf(err, errlen, "queue %ld appears twice", q);
			return -EINVAL;
		}
		pins[q] = (int)cpu;
		s = end;
		while (*s == ' ')
			s++;
		if (*s != ',' && *s != '\0')
			goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "expected QUEUE:CPU pairs like \"0:3,1:7\" at \"%s\"", s);
	return -EINVAL;
}

void
sched_format_affinity(const int *pins, unsigned int n, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (unsigned int i = 0; i < n && used < len; i++) {
		int w;

		if (pins[i] < 0)
			continue;
		w = snprintf(out + used, len - used, "%s%u:%d", used ? "," : "", i, pins[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}
