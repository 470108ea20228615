/* SPDX-License-Identifier: MIT */
/* One request/response exchange over the control socket with poll(2)
 * timeouts. Does not retry and does not interpret the response. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "ctl_client.h"
#include "err.h"
#include "json_load.h"
#include "log.h"
#include "mem.h"

#define MAX_RESPONSE (64 * 1024 * 1024)

static int
wait_fd(int fd, short ev, long long deadline)
{
	struct pollfd p = { fd, ev, 0 };
	long long left;
	int r;

	for (;;) {
		left = deadline - xts_now_ms();
		if (left <= 0)
			return XTS_ETIMEDOUT;
		r = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
		if (r > 0)
			return 0;
		if (r == 0)
			return XTS_ETIMEDOUT;
		if (errno != EINTR)
			return XTS_EIO;
	}
}

int
xts_ctl_request(const char *socket_path, json_t *req, int timeout_ms, json_t **resp, char *err,
		size_t errlen)
{
	struct sockaddr_un sa;
	struct xts_buf in = XTS_BUF_INIT;
	long long deadline = xts_now_ms() + timeout_ms;
	char *line = NULL, chunk[65536], *nl = NULL;
	json_error_t jerr;
	size_t off = 0, n;
	ssize_t r;
	int fd = -1, ret = 0;

	*resp = NULL;
	err[0] = '\0';
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", socket_path);
		return XTS_EINVAL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return XTS_EIO;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, socket_path, strlen(socket_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		snprintf(err, errlen, "cannot reach xtsyncd at %s: %s%s", socket_path, strerror(e),
			 e == ENOENT || e == ECONNREFUSED ? " (is xtsyncd running?)" : "");
		ret = e == EACCES ? XTS_EPERM : XTS_ENOENT;
		goto done;
	}
	line = json_dumps(req, JSON_COMPACT);
	if (line == NULL) {
		ret = XTS_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	n = strlen(line);
	line[n] = '\n'; /* replaces the NUL; length n + 1 is sent */
	while (off < n + 1) {
		ret = wait_fd(fd, POLLOUT, deadline);
		if (ret != 0)
			break;
		r = send(fd, line + off, n + 1 - off, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			/* The daemon may already have refused us and closed: read its reason. */
			break;
		}
		off += (size_t)r;
	}
	ret = 0;
	for (;;) {
		ret = wait_fd(fd, POLLIN, deadline);
		if (ret != 0) {
			snprintf(err, errlen, "no reply from xtsyncd within %d ms", timeout_ms);
			goto done;
		}
		r = recv(fd, chunk, sizeof(chunk), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (in.len + (size_t)r > MAX_RESPONSE) {
			ret = XTS_ETOOBIG;
			snprintf(err, errlen, "reply larger than %d bytes", MAX_RESPONSE);
			goto done;
		}
		if (xts_buf_append(&in, chunk, (size_t)r) != 0) {
			ret = XTS_ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto done;
		}
		nl = memchr(in.p, '\n', in.len);
		if (nl != NULL)
			break;
	}
	if (in.len == 0) {
		ret = XTS_EIO;
		snprintf(err, errlen, "xtsyncd closed the connection without a reply");
		goto done;
	}
	*resp = xts_json_loadb(in.p, nl != NULL ? (size_t)(nl - in.p) : in.len, 0, &jerr);
	if (*resp == NULL || !json_is_object(*resp)) {
		json_decref(*resp);
		*resp = NULL;
		ret = XTS_EPARSE;
		snprintf(err, errlen, "unreadable reply from xtsyncd: %s", jerr.text);
	}
done:
	xts_free(line);
	xts_buf_free(&in);
	if (fd >= 0)
		close(fd);
	return ret;
}
