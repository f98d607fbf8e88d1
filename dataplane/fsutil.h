/* SPDX-License-Identifier: BSD-3-Clause */
/* Filesystem helpers shared by the daemon's socket owners. */
#ifndef VHOSTD_FSUTIL_H
#define VHOSTD_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* mkdir -p @dir (mode 0755). Returns 0 or a negative errno. */
int fs_mkdir_p(const char *dir);

/* Create the directories above the file @path. */
int fs_mkdir_parents(const char *path);

/*
 * Make @path free for a new listening unix socket: a socket file nobody
 * listens on (left by a crashed process) is removed. Returns 0,
 * -EADDRINUSE if a live server owns it, -EEXIST if it is not a socket.
 */
int fs_remove_stale_socket(const char *path);

/*
 * Ready @path for a vhost-user socket: for a server (@client false) remove a
 * stale socket file; create the parent directories. Returns 0 or a negative
 * errno with the reason in @err.
 */
int fs_prepare_socket(const char *path, bool client, char *err, size_t errlen);

#endif
