/* SPDX-License-Identifier: MIT */
/* The sd_notify protocol over an AF_UNIX datagram socket, as documented in
 * sd_notify(3): a path socket or an abstract one ('@' -> leading NUL byte).
 * Not libsystemd: no fd store, no barrier, no credentials passing. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "sdnotify.h"

int
xts_sd_notify(const char *state)
{
	struct sockaddr_un sa;
	const char *path = getenv("NOTIFY_SOCKET");
	socklen_t salen;
	size_t n;
	ssize_t r;
	int fd, ret;

	if (path == NULL || path[0] == '\0')
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path)) {
		xts_log_rl(XTS_LOG_WARNING, 60000, 1, "sd_notify: unusable NOTIFY_SOCKET");
		return XTS_EINVAL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	/* Abstract addresses are length-delimited, not NUL-terminated. */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return xts_err_from_errno(errno);
	r = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, salen);
	if (r < 0) {
		ret = xts_err_from_errno(errno);
		xts_log_rl(XTS_LOG_WARNING, 60000, 3, "sd_notify: %s", strerror(errno));
	} else {
		ret = 1;
	}
	close(fd);
	return ret;
}

int
xts_sd_notifyf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return xts_sd_notify(buf);
}

int
xts_sd_notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return xts_sd_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu",
			      (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
}

uint64_t
xts_sd_watchdog_usec(void)
{
	const char *s = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (s == NULL || s[0] == '\0')
		return 0;
	if (pid != NULL && pid[0] != '\0') {
		long long p;
		errno = 0;
		p = strtoll(pid, &end, 10);
		if (errno != 0 || *end != '\0' || p != (long long)getpid())
			return 0;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return 0;
	return (uint64_t)v;
}
