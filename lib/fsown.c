/* SPDX-License-Identifier: MIT */
/* Files root creates in a directory that belongs to the daemon's user. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsown.h"
#include "log.h"

/* The directory of path into dir; 0, or -1 when it does not fit. */
static int
dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, len, ".");
	else if (slash == path)
		snprintf(dir, len, "/");
	else if ((size_t)(slash - path) < len)
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
	else
		return -1;
	return 0;
}

int
xts_dir_owned_by_other(const char *path)
{
	char dir[4096];
	struct stat d;

	return geteuid() == 0 && path != NULL && dir_of(path, dir, sizeof(dir)) == 0 && stat(dir, &d) == 0 &&
	       d.st_uid != 0;
}

void
xts_give_to_dir_owner(int fd, const char *path)
{
	char dir[4096];
	struct stat f, d, l;
	int own = -1;

	if (geteuid() != 0 || path == NULL || dir_of(path, dir, sizeof(dir)) != 0)
		return;
	if (stat(dir, &d) != 0 || d.st_uid == 0)
		return;
	/* Never through a name that may have been swapped: the directory's
	 * owner could plant a symlink or a hard link to a file of root's (the
	 * chown would give it that file). Only the file opened here, or the
	 * caller's, and only when the name is that very regular file with one
	 * link. */
	if (fd < 0) {
		own = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (own < 0)
			return;
		fd = own;
	}
	if (fstat(fd, &f) != 0 || !S_ISREG(f.st_mode) || f.st_nlink != 1 || lstat(path, &l) != 0 ||
	    !S_ISREG(l.st_mode) || l.st_dev != f.st_dev || l.st_ino != f.st_ino)
		goto done;
	if ((f.st_uid != d.st_uid || f.st_gid != d.st_gid) && fchown(fd, d.st_uid, d.st_gid) != 0)
		xts_warn("cannot give %s to the owner of %s: %s", path, dir, strerror(errno));
done:
	if (own >= 0)
		close(own);
}
