/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fsutil.h"

int
fs_mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1;; p++) {
		char saved = *p;

		if (saved != '/' && saved != '\0')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = saved;
		if (saved == '\0')
			return 0;
	}
}

int
fs_mkdir_parents(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	return fs_mkdir_p(dir);
}

int
fs_remove_stale_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rc = 0;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0)
		rc = -EADDRINUSE;
	else if (errno == EAGAIN)
		rc = -EADDRINUSE; /* alive, with a full backlog */
	else if (errno == ECONNREFUSED)
		rc = unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	else
		rc = -errno;
	close(fd);
	return rc;
}

int
fs_prepare_socket(const char *path, bool client, char *err, size_t errlen)
{
	int rc;

	if (!client) {
		rc = fs_remove_stale_socket(path);
		if (rc == -EADDRINUSE)
			snprintf(err, errlen, "socket %s is in use by another process", path);
		else if (rc == -EEXIST)
			snprintf(err, errlen, "%s exists and is not a socket", path);
		else if (rc < 0)
			snprintf(err, errlen, "cannot use socket path %s: %s", path, strerror(-rc));
		if (rc < 0)
			return rc;
	}
	rc = fs_mkdir_parents(path);
	if (rc < 0)
		snprintf(err, errlen, "cannot create the directory of %s: %s", path, strerror(-rc));
	return rc;
}
