/* SPDX-License-Identifier: BSD-3-Clause */
/* The scsi part of the datapath registry: controllers and LUNs. */
#include <errno.h>
#include <string.h>

#include "datapath.h"
#include "jsonrpc.h"

int
dp_scsi_add(const struct scsi_conf *c, struct ctl_error *err)
{
	ctl_error_set(err, JSONRPC_APP_ERROR, ENOTSUP, "scsi %s: not implemented yet", c->name);
	return -ENOTSUP;
}

int
dp_scsi_del(const char *name, struct ctl_error *err)
{
	ctl_error_set(err, JSONRPC_APP_ERROR, ENOTSUP, "scsi %s: not implemented yet", name);
	return -ENOTSUP;
}

int
dp_lun_add(const struct scsi_lun_conf *c, struct ctl_error *err)
{
	ctl_error_set(err, JSONRPC_APP_ERROR, ENOTSUP, "lun %s: not implemented yet", c->lun.name);
	return -ENOTSUP;
}

int
dp_lun_del(const char *name, struct ctl_error *err)
{
	ctl_error_set(err, JSONRPC_APP_ERROR, ENOTSUP, "lun %s: not implemented yet", name);
	return -ENOTSUP;
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

void
dp_scsi_counters(const struct scsi_ctrl *c, int q, struct scsi_queue_counters *out)
{
	memset(out, 0, sizeof(*out));
}
