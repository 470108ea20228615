/* SPDX-License-Identifier: MIT */
/* Files root creates in a directory that belongs to the daemon's user. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsown.h"
#include "log.h"

void
xts_give_to_dir_owner(int fd, const char *path)
{
	char dir[4096];
	const char *slash;
	struct stat f, d;
	int r;

	if (geteuid() != 0 || path == NULL)
		return;
	slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return;
	if (stat(dir, &d) != 0 || d.st_uid == 0)
		return;
	r = fd >= 0 ? fstat(fd, &f) : lstat(path, &f);
	if (r != 0 || !S_ISREG(f.st_mode) || (f.st_uid == d.st_uid && f.st_gid == d.st_gid))
		return;
	r = fd >= 0 ? fchown(fd, d.st_uid, d.st_gid) : lchown(path, d.st_uid, d.st_gid);
	if (r != 0)
		xts_warn("cannot give %s to the owner of %s: %s", path, dir, strerror(errno));
}
