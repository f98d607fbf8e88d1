/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scsi part of the datapath registry: vhost-user-scsi controllers and
 * their LUNs, and how they appear in the snapshot (a sorted LUN map per
 * controller, request queues placed on PMD threads).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_malloc.h>

#include "datapath.h"
#include "jsonrpc.h"
#include "log.h"
#include "lun.h"
#include "vhost_scsi.h"

#define LUN_DRAIN_TIMEOUT_MS 10000

static int
free_slot(void **slots, int n)
{
	for (int i = 0; i < n; i++)
		if (slots[i] == NULL)
			return i;
	return -1;
}

struct scsi_ctrl *
dp_scsi_find(const char *name)
{
	for (unsigned int i = 0; i < DP_MAX_SCSI; i++)
		if (dp.scsi[i] != NULL && strcmp(dp.scsi[i]->conf.name, name) == 0)
			return dp.scsi[i];
	return NULL;
}

struct scsi_lun *
dp_lun_find(const char *name)
{
	for (unsigned int i = 0; i < DP_MAX_LUNS; i++)
		if (dp.luns[i] != NULL && strcmp(dp.luns[i]->conf.lun.name, name) == 0)
			return dp.luns[i];
	return NULL;
}

struct scsi_ctrl *
dp_scsi_find_by_socket(const char *path)
{
	for (unsigned int i = 0; i < DP_MAX_SCSI; i++)
		if (dp.scsi[i] != NULL && strcmp(dp.scsi[i]->conf.socket, path) == 0)
			return dp.scsi[i];
	return NULL;
}

static unsigned int
ctrl_lun_count(const struct scsi_ctrl *c)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < DP_MAX_LUNS; i++)
		if (dp.luns[i] != NULL && strcmp(dp.luns[i]->conf.controller, c->conf.name) == 0)
			n++;
	return n;
}

static void
ctrl_free(struct scsi_ctrl *c)
{
	if (c == NULL)
		return;
	rte_free(c->qstats);
	free(c);
}

int
dp_scsi_add(const struct scsi_conf *conf, struct ctl_error *err)
{
	char msg[200] = "";
	struct scsi_ctrl *c;
	int idx, rc;

	if (conf->queues < 1 || conf->queues > DP_MAX_QUEUES) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL, "scsi %s: queues must be 1..%d",
			conf->name, DP_MAX_QUEUES);
		return -EINVAL;
	}
	dp_lock();
	if (dp_scsi_find(conf->name) != NULL) {
		ctl_error_set(err, 0, EEXIST, "scsi %s: already exists", conf->name);
		rc = -EEXIST;
		goto out;
	}
	if (dp_scsi_find_by_socket(conf->socket) != NULL || dp_port_find_by_socket(conf->socket)) {
		ctl_error_set(err, 0, EADDRINUSE, "scsi %s: socket %s is already used", conf->name,
			conf->socket);
		rc = -EADDRINUSE;
		goto out;
	}
	idx = free_slot((void **)dp.scsi, DP_MAX_SCSI);
	if (idx < 0) {
		ctl_error_set(err, 0, ENOSPC, "scsi %s: limit of %d controllers reached",
			conf->name, DP_MAX_SCSI);
		rc = -ENOSPC;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c != NULL)
		c->qstats = rte_zmalloc(
			"scsi-stats", sizeof(*c->qstats) * DP_MAX_QUEUES, RTE_CACHE_LINE_SIZE);
	if (c == NULL || c->qstats == NULL) {
		ctrl_free(c);
		ctl_error_set(err, 0, ENOMEM, "scsi %s: out of memory", conf->name);
		rc = -ENOMEM;
		goto out;
	}
	c->conf = *conf;
	c->idx = (uint16_t)idx;
	c->vid = -1;
	for (int q = 0; q < DP_MAX_QUEUES; q++)
		c->rxq_pmd[q] = DP_NONE;
	dp.scsi[idx] = c;
	rc = vhost_scsi_start(c, msg, sizeof(msg));
	if (rc < 0) {
		dp.scsi[idx] = NULL;
		ctrl_free(c);
		ctl_error_set(err, 0, -rc, "scsi %s: %s", conf->name, msg);
		goto out;
	}
	dp_publish();
	VLOG_INFO("scsi %s: added (%s %s, %u queues)", conf->name,
		conf->client ? "connecting to" : "listening on", conf->socket, conf->queues);
	rc = 0;
out:
	dp_unlock();
	return rc;
}

/* Remove @l from the registry and close it once no command uses it. */
static void
lun_remove(struct scsi_lun *l, bool notify)
{
	struct scsi_ctrl *c;
	unsigned int waited = 0;

	dp_lock();
	c = dp_scsi_find(l->conf.controller);
	dp.luns[l->idx] = NULL;
	dp_publish();
	if (c != NULL && notify)
		vhost_scsi_lun_event(c, l->conf.target, l->conf.lun_id, false);
	dp_unlock();
	/* After the grace period no new command can find it; wait for the old. */
	dp_wait_grace();
	for (;;) {
		bool busy;

		dp_lock();
		busy = c != NULL && vhost_scsi_lun_busy(c, l->lun);
		dp_unlock();
		if (!busy || waited >= LUN_DRAIN_TIMEOUT_MS)
			break;
		dp_sleep_ms(1);
		waited++;
	}
	if (waited >= LUN_DRAIN_TIMEOUT_MS) {
		/* Leak it rather than free memory an I/O may still complete into. */
		VLOG_ERR("lun %s: commands still in flight after %u ms; not closed",
			l->conf.lun.name, waited);
		return;
	}
	lun_close(l->lun);
	VLOG_INFO("lun %s: deleted", l->conf.lun.name);
	free(l);
}

int
dp_scsi_del(const char *name, struct ctl_error *err)
{
	struct scsi_ctrl *c;

	dp_lock();
	c = dp_scsi_find(name);
	if (c == NULL || c->deleting) {
		dp_unlock();
		ctl_error_set(err, 0, ENOENT, "scsi %s: no such controller", name);
		return -ENOENT;
	}
	c->deleting = true;
	dp_publish();
	dp_unlock();

	/* The frontend goes first: then no command is in flight on the LUNs. */
	vhost_scsi_stop(c);
	for (unsigned int i = 0; i < DP_MAX_LUNS; i++) {
		struct scsi_lun *l;

		dp_lock();
		l = dp.luns[i];
		dp_unlock();
		if (l != NULL && strcmp(l->conf.controller, name) == 0)
			lun_remove(l, false);
	}
	dp_lock();
	dp.scsi[c->idx] = NULL;
	dp_publish();
	dp_unlock();
	dp_wait_grace();
	VLOG_INFO("scsi %s: deleted", name);
	ctrl_free(c);
	return 0;
}

int
dp_lun_add(const struct scsi_lun_conf *conf, struct ctl_error *err)
{
	const char *name = conf->lun.name;
	char msg[300] = "";
	struct scsi_ctrl *c;
	struct scsi_lun *l;
	int idx, rc;

	if (conf->target > DP_SCSI_MAX_TARGET || conf->lun_id > DP_SCSI_MAX_LUN) {
		ctl_error_set(err, JSONRPC_INVALID_PARAMS, EINVAL,
			"lun %s: target must be 0..%d and lun 0..%d", name, DP_SCSI_MAX_TARGET,
			DP_SCSI_MAX_LUN);
		return -EINVAL;
	}
	dp_lock();
	if (dp_lun_find(name) != NULL) {
		ctl_error_set(err, 0, EEXIST, "lun %s: already exists", name);
		rc = -EEXIST;
		goto out;
	}
	c = dp_scsi_find(conf->controller);
	if (c == NULL || c->deleting) {
		ctl_error_set(err, 0, ENOENT, "lun %s: no scsi controller named %s", name,
			conf->controller);
		rc = -ENOENT;
		goto out;
	}
	for (unsigned int i = 0; i < DP_MAX_LUNS; i++) {
		const struct scsi_lun *o = dp.luns[i];

		if (o != NULL && strcmp(o->conf.controller, conf->controller) == 0 &&
			o->conf.target == conf->target && o->conf.lun_id == conf->lun_id) {
			ctl_error_set(err, 0, EADDRINUSE, "lun %s: %s target %u lun %u is lun %s",
				name, conf->controller, conf->target, conf->lun_id,
				o->conf.lun.name);
			rc = -EADDRINUSE;
			goto out;
		}
	}
	if (ctrl_lun_count(c) >= DP_SCSI_MAX_LUNS) {
		ctl_error_set(err, 0, ENOSPC, "lun %s: controller %s has %d LUNs already", name,
			conf->controller, DP_SCSI_MAX_LUNS);
		rc = -ENOSPC;
		goto out;
	}
	idx = free_slot((void **)dp.luns, DP_MAX_LUNS);
	if (idx < 0) {
		ctl_error_set(
			err, 0, ENOSPC, "lun %s: limit of %d LUNs reached", name, DP_MAX_LUNS);
		rc = -ENOSPC;
		goto out;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		ctl_error_set(err, 0, ENOMEM, "lun %s: out of memory", name);
		rc = -ENOMEM;
		goto out;
	}
	rc = lun_open(&conf->lun, &l->lun, msg, sizeof(msg));
	if (rc < 0) {
		free(l);
		ctl_error_set(err, 0, -rc, "%s", msg);
		goto out;
	}
	l->conf = *conf;
	l->idx = (uint16_t)idx;
	dp.luns[idx] = l;
	dp_publish();
	/* A connected guest learns about it without a rescan. */
	vhost_scsi_lun_event(c, conf->target, conf->lun_id, true);
	VLOG_INFO("lun %s: added at %s target %u lun %u", name, conf->controller, conf->target,
		conf->lun_id);
	rc = 0;
out:
	dp_unlock();
	return rc;
}

int
dp_lun_del(const char *name, struct ctl_error *err)
{
	struct scsi_lun *l;

	dp_lock();
	l = dp_lun_find(name);
	dp_unlock();
	if (l == NULL) {
		ctl_error_set(err, 0, ENOENT, "lun %s: no such LUN", name);
		return -ENOENT;
	}
	lun_remove(l, true);
	return 0;
}

void
dp_scsi_counters(const struct scsi_ctrl *c, int q, struct scsi_queue_counters *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < DP_MAX_QUEUES; i++) {
		const struct scsi_queue_counters *s = &c->qstats[i];

		if (q >= 0 && i != q)
			continue;
		out->requests += s->requests;
		out->tmf += s->tmf;
		out->bad_chains += s->bad_chains;
		out->errors += s->errors;
		out->inflight += vhost_scsi_queue_inflight(c, (uint16_t)i);
	}
}

/* ---- snapshot ------------------------------------------------------------- */

static int
cmp_lun_ref(const void *a, const void *b)
{
	const struct dp_lun_ref *x = a, *y = b;

	if (x->target != y->target)
		return x->target < y->target ? -1 : 1;
	return x->lun_id < y->lun_id ? -1 : x->lun_id > y->lun_id;
}

static void
plan_sq(struct dp_snapshot *s, struct scsi_ctrl *c, uint16_t pmd, uint16_t vring)
{
	struct dp_pmd_plan *plan = &s->pmds[pmd];

	if (plan->n_sq >= DP_MAX_RXQ_PER_PMD) {
		VLOG_WARN("scsi %s: pmd %u polls too many queues; vring %u not polled",
			c->conf.name, pmd, vring);
		return;
	}
	plan->sq[plan->n_sq].ctrl = c->idx;
	plan->sq[plan->n_sq].vring = vring;
	plan->n_sq++;
}

static void
plan_scsi_queues(struct dp_snapshot *s, struct scsi_ctrl *c)
{
	uint64_t started = vhost_scsi_started_vrings(c);
	int numa = dp_sched_numa(c->vid);

	/*
	 * Keep every queue where it was (a running queue moves only drained,
	 * by a rebalance or a PMD change); then place the new ones.
	 */
	for (int pass = 0; pass < 2; pass++) {
		for (uint16_t q = 0; q < DP_MAX_QUEUES; q++) {
			uint16_t pmd = c->rxq_pmd[q];

			if (!(started >> (q + 2) & 1))
				continue;
			if ((pass == 0) != (pmd < s->n_pmd))
				continue;
			pmd = dp_sched_place(pmd, numa, c->conf.rxq_pin[q],
				pass == 0 ? DP_PLACE_KEEP : DP_PLACE_NEW);
			c->rxq_pmd[q] = pmd;
			if (pmd == DP_NONE)
				continue; /* pinned to a CPU without a PMD */
			plan_sq(s, c, pmd, (uint16_t)(q + 2));
		}
	}
	/* The control queue (task management) rides with request queue 0. */
	if (started & 1) {
		uint16_t pmd = c->rxq_pmd[0] < s->n_pmd
				       ? c->rxq_pmd[0]
				       : dp_sched_place(DP_NONE, numa, 0, DP_PLACE_NEW);

		if (pmd != DP_NONE)
			plan_sq(s, c, pmd, 0);
	}
}

void
dp_publish_scsi(struct dp_snapshot *s)
{
	for (unsigned int i = 0; i < DP_MAX_SCSI; i++) {
		struct scsi_ctrl *c = dp.scsi[i];
		struct dp_scsi_view *v = &s->scsi[i];

		if (c == NULL || c->deleting)
			continue;
		v->ctrl = c;
		v->dev = c->dev;
		for (unsigned int k = 0; k < DP_MAX_LUNS && v->n_luns < DP_SCSI_MAX_LUNS; k++) {
			struct scsi_lun *l = dp.luns[k];

			if (l == NULL || strcmp(l->conf.controller, c->conf.name) != 0)
				continue;
			v->luns[v->n_luns].target = l->conf.target;
			v->luns[v->n_luns].lun_id = l->conf.lun_id;
			v->luns[v->n_luns].lun = l->lun;
			v->n_luns++;
		}
		qsort(v->luns, v->n_luns, sizeof(v->luns[0]), cmp_lun_ref);
		for (uint16_t k = 0; k < v->n_luns; k++)
			v->lun_ids[k] = v->luns[k].lun_id;
		if (c->dev != NULL && s->n_pmd > 0)
			plan_scsi_queues(s, c);
	}
}

void
dp_scsi_shutdown(void)
{
	struct ctl_error err;

	for (unsigned int i = 0; i < DP_MAX_SCSI; i++) {
		char name[DP_NAME_MAX];

		dp_lock();
		if (dp.scsi[i] == NULL) {
			dp_unlock();
			continue;
		}
		snprintf(name, sizeof(name), "%s", dp.scsi[i]->conf.name);
		dp_unlock();
		dp_scsi_del(name, &err);
	}
}
