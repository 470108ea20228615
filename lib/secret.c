/* SPDX-License-Identifier: MIT */
/* Secrets from files or systemd credentials, refusing group/other-readable
 * files. The permission check is done with fstat on the opened descriptor so
 * the checked file is the file read. Does not cache or log secret contents. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "secret.h"

int
xts_secret_is_credential(const char *spec)
{
	return spec != NULL && strchr(spec, '/') == NULL;
}

static int
credential_name_ok(const char *s)
{
	size_t i;

	if (s[0] == '\0' || s[0] == '.' || strlen(s) > 255)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7f || c == '/')
			return 0;
	}
	return 1;
}

int
xts_secret_resolve(const char *spec, char **out)
{
	const char *dir;
	size_t n;
	char *p;

	*out = NULL;
	if (spec == NULL || spec[0] == '\0')
		return XTS_EINVAL;
	if (!xts_secret_is_credential(spec)) {
		*out = xts_strdup(spec);
		return *out != NULL ? 0 : XTS_ENOMEM;
	}
	if (!credential_name_ok(spec))
		return XTS_EINVAL;
	dir = getenv("CREDENTIALS_DIRECTORY");
	if (dir == NULL || dir[0] == '\0')
		return XTS_ENOENT;
	n = strlen(dir) + strlen(spec) + 2;
	p = xts_malloc(n);
	if (p == NULL)
		return XTS_ENOMEM;
	snprintf(p, n, "%s/%s", dir, spec);
	*out = p;
	return 0;
}

static int
check_stat(const char *spec, const char *path, const struct stat *st, char *why, size_t whylen)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", path);
		return XTS_EPERM;
	}
	/* "must not be world-readable" (the contract): 0640 root:xtsync, the
	 * usual layout for a service's secrets, is fine */
	if ((st->st_mode & S_IROTH) != 0) {
		snprintf(why, whylen, "%s is readable by others (mode %03o); chmod 600 it (or 640)",
			 path, (unsigned)(st->st_mode & 0777));
		return XTS_EPERM;
	}
	(void)spec;
	return 0;
}

static int
resolve_why(const char *spec, char **path, char *why, size_t whylen)
{
	int ret = xts_secret_resolve(spec, path);

	if (ret == XTS_EINVAL)
		snprintf(why, whylen, "'%s' is not a valid file name or credential name", spec != NULL ? spec : "");
	else if (ret == XTS_ENOENT)
		snprintf(why, whylen, "'%s' is a systemd credential name but $CREDENTIALS_DIRECTORY is not set", spec);
	else if (ret != 0)
		snprintf(why, whylen, "%s", xts_strerror(ret));
	return ret;
}

int
xts_secret_check(const char *spec, char *why, size_t whylen)
{
	struct stat st;
	char *path = NULL;
	int ret;

	why[0] = '\0';
	ret = resolve_why(spec, &path, why, whylen);
	if (ret != 0)
		goto done;
	if (stat(path, &st) != 0) {
		ret = xts_err_from_errno(errno);
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto done;
	}
	ret = check_stat(spec, path, &st, why, whylen);
done:
	xts_free(path);
	return ret;
}

int
xts_secret_read(const char *spec, char **out)
{
	char why[512];
	struct stat st;
	char *path = NULL, *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd = -1, ret;

	*out = NULL;
	ret = resolve_why(spec, &path, why, sizeof(why));
	if (ret != 0) {
		xts_err("secret: %s", why);
		goto done;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = xts_err_from_errno(errno);
		xts_err("secret: cannot open %s: %s", path, strerror(errno));
		goto done;
	}
	/* Check the descriptor we read, not the name (no check/use race). */
	if (fstat(fd, &st) != 0) {
		ret = xts_err_from_errno(errno);
		xts_err("secret: cannot stat %s: %s", path, strerror(errno));
		goto done;
	}
	ret = check_stat(spec, path, &st, why, sizeof(why));
	if (ret != 0) {
		xts_err("secret: refusing %s", why);
		goto done;
	}
	if (st.st_size > XTS_SECRET_MAX) {
		ret = XTS_ETOOBIG;
		xts_err("secret: %s is larger than %d bytes", path, XTS_SECRET_MAX);
		goto done;
	}
	buf = xts_malloc(XTS_SECRET_MAX + 2);
	if (buf == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	for (;;) {
		r = read(fd, buf + len, XTS_SECRET_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = xts_err_from_errno(errno);
			xts_err("secret: cannot read %s: %s", path, strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > XTS_SECRET_MAX) {
			ret = XTS_ETOOBIG;
			xts_err("secret: %s is larger than %d bytes", path, XTS_SECRET_MAX);
			goto done;
		}
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		ret = XTS_EINVAL;
		xts_err("secret: %s contains a NUL byte", path);
		goto done;
	}
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	/* Exact-size copy so xts_secret_free wipes every byte it held. */
	*out = xts_strndup(buf, len);
	ret = *out != NULL ? 0 : XTS_ENOMEM;
done:
	if (buf != NULL) {
		explicit_bzero(buf, XTS_SECRET_MAX + 2);
		xts_free(buf);
	}
	if (fd >= 0)
		close(fd);
	xts_free(path);
	return ret;
}

void
xts_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	xts_free(secret);
}
