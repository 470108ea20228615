/* SPDX-License-Identifier: MIT */
/* Names and messages for the XTS_E* error space, and the errno mapping. */
#include <errno.h>

#include "err.h"

#define XTS__MSG(name, msg) msg,
#define XTS__NAME(name, msg) "XTS_" #name,
static const char *const messages[] = { XTS_ERRNO_MAP(XTS__MSG) };
static const char *const names[] = { XTS_ERRNO_MAP(XTS__NAME) };

static int
index_of(int err)
{
	if (err <= XTS__FIRST || err >= XTS__LAST)
		return -1;
	return err - XTS__FIRST - 1;
}

const char *
xts_strerror(int err)
{
	int i;

	if (err == 0)
		return "success";
	i = index_of(err);
	return i < 0 ? "unknown error" : messages[i];
}

const char *
xts_errname(int err)
{
	int i;

	if (err == 0)
		return "XTS_OK";
	i = index_of(err);
	return i < 0 ? "XTS_EUNKNOWN" : names[i];
}

int
xts_err_from_errno(int e)
{
	switch (e) {
	case 0: return 0;
	case ENOMEM: return XTS_ENOMEM;
	case ENOENT: return XTS_ENOENT;
	case EEXIST: return XTS_EEXIST;
	case EACCES:
	case EPERM: return XTS_EPERM;
	case ERANGE: return XTS_ERANGE;
	case ENOSPC:
	case EDQUOT: return XTS_ENOSPC;
	case ETIMEDOUT: return XTS_ETIMEDOUT;
	case EAGAIN: return XTS_EAGAIN;
	case ECANCELED: return XTS_ECANCELED;
	case EINVAL: return XTS_EINVAL;
	default: return XTS_EIO;
	}
}
