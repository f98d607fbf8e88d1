/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Daemon logging: one line per event on stderr (journald adds the rest).
 * Callers put the object first, e.g. "port vhu0: socket in use".
 */
#ifndef VHOSTD_LOG_H
#define VHOSTD_LOG_H

enum vlog_level {
	VLOG_LVL_ERR,
	VLOG_LVL_WARN,
	VLOG_LVL_INFO,
	VLOG_LVL_DEBUG,
};

extern int vlog_level;

/* Parse "err", "warn", "info", "debug"; returns -EINVAL for anything else. */
int vlog_level_parse(const char *name);
const char *vlog_level_name(int level);
void vlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define VLOG_ERR(...) vlog(VLOG_LVL_ERR, __VA_ARGS__)
#define VLOG_WARN(...) vlog(VLOG_LVL_WARN, __VA_ARGS__)
#define VLOG_INFO(...) vlog(VLOG_LVL_INFO, __VA_ARGS__)
#define VLOG_DEBUG(...)                                                                            \
	do {                                                                                       \
		if (vlog_level >= VLOG_LVL_DEBUG)                                                  \
			vlog(VLOG_LVL_DEBUG, __VA_ARGS__);                                         \
	} while (0)

#endif
