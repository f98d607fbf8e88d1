/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The configuration schema, shared by the config file and the control
 * socket: JSON objects <-> the validated structs of datapath.h. Parsing is
 * strict (unknown members, wrong types and out-of-range values are errors
 * that name the member) because both sources are untrusted.
 */
#ifndef VHOSTD_CONFIG_H
#define VHOSTD_CONFIG_H

#include <limits.h>
#include <stdbool.h>

#include <jansson.h>

#include "datapath.h"

struct ctl_error;

#define CONFIG_MAX_EXTRA_ARGS 32
#define CONFIG_MAX_EXTRA_ARG_LEN 256

/* The "vhostd" and "eal" sections: fixed for the life of the process. */
struct daemon_conf {
	char run_dir[PATH_MAX];
	char ctl_socket[DP_SOCK_MAX];
	char ctl_group[64];
	int log_level;
	bool mlockall;
	char file_prefix[64];
	bool no_huge;
	unsigned int memory_mb;
	int n_extra_args;
	char extra_args[CONFIG_MAX_EXTRA_ARGS][CONFIG_MAX_EXTRA_ARG_LEN];
	char config_path[PATH_MAX]; /* "" when running on the embedded default */
};

/*
 * Parse a config text: JSON where lines whose first non-blank characters are
 * "//" are comments. Returns a new reference or NULL with a message that
 * names @origin, the line and the column.
 */
json_t *config_parse_text(const char *text, const char *origin, struct ctl_error *err);

int config_parse_daemon(json_t *doc, struct daemon_conf *d, struct ctl_error *err);

/*
 * Parse one object. With @base (a "set"), members absent from @obj keep the
 * values of @base; without it they take their defaults and required members
 * must be present. Relative socket paths are resolved under @run_dir.
 */
int config_parse_port(json_t *obj, const struct port_conf *base, const char *run_dir,
	struct port_conf *out, struct ctl_error *err);
int config_parse_bridge(json_t *obj, const struct bridge_conf *base, struct bridge_conf *out,
	struct ctl_error *err);
int config_parse_xconnect(json_t *obj, struct xconnect_conf *out, struct ctl_error *err);
int config_parse_pmd(
	json_t *obj, const struct pmd_conf *base, struct pmd_conf *out, struct ctl_error *err);
/*
 * A vhost-user-scsi controller and a LUN. There is no "set" for them: a
 * controller or LUN is changed by deleting and adding it again.
 */
int config_parse_scsi(
	json_t *obj, const char *run_dir, struct scsi_conf *out, struct ctl_error *err);
int config_parse_lun(json_t *obj, struct scsi_lun_conf *out, struct ctl_error *err);

json_t *config_dump_port(const struct port_conf *c);
json_t *config_dump_bridge(const struct bridge_conf *c);
json_t *config_dump_xconnect(const struct xconnect_conf *c);
json_t *config_dump_pmd(const struct pmd_conf *c);
json_t *config_dump_scsi(const struct scsi_conf *c);
json_t *config_dump_lun(const struct scsi_lun_conf *c);

/* Names of the LUN enums as the schema spells them ("file", "writeback"...). */
const char *config_lun_backend_name(enum lun_backend_type t);
const char *config_lun_cache_name(enum lun_cache_mode m);

/*
 * Check the datapath sections of @doc completely, then (unless @dry_run)
 * apply them: pmd, bridges, ports, cross-connects, scsi controllers, LUNs.
 * Nothing is applied if any object is malformed; references (bridge names,
 * a LUN's controller...) are checked on apply.
 */
int config_apply(json_t *doc, const struct daemon_conf *d, bool dry_run, struct ctl_error *err);

/* The live configuration as a document of the config file's shape. */
json_t *config_dump_live(const struct daemon_conf *d);

/* Write @doc to @path atomically (temporary file, fsync, rename, fsync dir). */
int config_write_file(json_t *doc, const char *path, struct ctl_error *err);

#endif
