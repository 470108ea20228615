/* SPDX-License-Identifier: MIT */
/* Temporary directories for the unit tests: made under /tmp with a name that
 * says which test made it, removed with everything in them (depth first,
 * symlinks not followed, no shell). */
#ifndef XTS_TEST_TMPDIR_H
#define XTS_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* dir (n bytes) = /tmp/xts-NAME-XXXXXX, made 0700. 0, or -1 (errno). */
static inline int
xts_test_tmpdir(char *dir, size_t n, const char *name)
{
	if ((size_t)snprintf(dir, n, "/tmp/xts-%s-XXXXXX", name) >= n)
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static inline int
xts_test_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove dir and what it holds. 0, or -1 (the first failure stops it). */
static inline int
xts_test_rmtree(const char *dir)
{
	return nftw(dir, xts_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
