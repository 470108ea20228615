/* SPDX-License-Identifier: MIT */
/* Files root creates for the daemon's own user. systemd's StateDirectory= and
 * LogsDirectory= give those directories to the unit's User=; root running
 * `xtsyncd --once` by hand must not leave a store, a log or a lock in them
 * that this user cannot open, or the service fails to start. */
#ifndef XTS_FSOWN_H
#define XTS_FSOWN_H

/* When running as root, give the file (fd, or path when fd < 0: opened
 * without following a symlink) to the owner of the directory that holds it,
 * if another user owns that. Only a regular file with one link that path
 * names itself (not through a symlink) is given. Logs a warning when it
 * cannot; never fails the caller. */
void xts_give_to_dir_owner(int fd, const char *path);
/* 1 when running as root and the directory holding path belongs to another
 * user: then a name in it may be a symlink that user planted, and root must
 * not follow it (O_NOFOLLOW). 0 otherwise. */
int xts_dir_owned_by_other(const char *path);

#endif
