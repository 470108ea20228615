/* SPDX-License-Identifier: MIT */
/* Files root creates for the daemon's own user. systemd's StateDirectory= and
 * LogsDirectory= give those directories to the unit's User=; root running
 * `xtsyncd --once` by hand must not leave a store, a log or a lock in them
 * that this user cannot open, or the service fails to start. */
#ifndef XTS_FSOWN_H
#define XTS_FSOWN_H

/* When running as root, give the file (fd, or path when fd < 0) to the
 * owner of the directory that holds it, if another user owns that. Logs a
 * warning when it cannot; never fails the caller. */
void xts_give_to_dir_owner(int fd, const char *path);

#endif
