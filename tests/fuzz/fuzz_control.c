/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes sent by a client over the real control
 * socket (daemon/control.c on a libuv loop): line framing, the request size
 * cap, JSON parsing, replies given at once or later, EOF mid-request. The
 * command callback stands in for daemon/loop.c and echoes fields back. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "control.h"
#include "log.h"
#include "mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DEFERRED 8

static uv_loop_t loop;
static uv_timer_t later;
static struct xts_control *ctl;
static struct sockaddr_un addr;
static struct xts_control_req *deferred[MAX_DEFERRED];
static size_t n_deferred;

static void
reply_deferred(uv_timer_t *t)
{
	size_t i;

	(void)t;
	for (i = 0; i < n_deferred; i++)
		xts_control_reply(deferred[i], json_pack("{s:b,s:s}", "ok", 1, "result", "later"));
	n_deferred = 0;
}

/* What loop.c does with a request, minus the daemon: read the fields every
 * command reads, reply now, later, or with an error. */
static void
on_request(void *arg, struct xts_control_req *req, const char *cmd, json_t *msg)
{
	json_t *job = json_object_get(msg, "job"), *user = json_object_get(msg, "user");

	(void)arg;
	if (strcmp(cmd, "later") == 0 && n_deferred < MAX_DEFERRED) {
		deferred[n_deferred++] = req;
		uv_timer_start(&later, reply_deferred, 0, 0);
		return;
	}
	if (!json_is_string(job)) {
		xts_control_reply_error(req, "'%s' needs a \"job\" name", cmd);
		return;
	}
	xts_control_reply(req, json_pack("{s:b,s:s,s:s,s:s?}", "ok", 1, "cmd", cmd, "job",
					 json_string_value(job), "user", json_string_value(user)));
}

static char dir[] = "/tmp/xts-fuzz-control-XXXXXX";

/* libFuzzer ends with exit(): the socket and its directory go with it. */
static void
remove_dir(void)
{
	unlink(addr.sun_path);
	rmdir(dir);
}

static void
init_once(void)
{
	xts_log_init(XTS_LOG_CRIT, 0);
	if (mkdtemp(dir) == NULL || atexit(remove_dir) != 0 || uv_loop_init(&loop) != 0)
		abort();
	uv_timer_init(&loop, &later);
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/control.sock", dir);
	if (xts_control_start(&loop, addr.sun_path, (gid_t)-1, on_request, NULL, &ctl) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	char sink[4096];
	size_t sent = 0;
	ssize_t n;
	int fd, spins, eof = 0, shut = 0;

	if (!init) {
		init_once();
		init = 1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		abort();
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		abort();
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	/* Interleave the client's writes and reads with loop turns until the
	 * server has answered everything and closed, or gave up on us. */
	for (spins = 0; spins < 1000000 && !eof; spins++) {
		if (sent < size) {
			n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				sent = size; /* server closed on us: stop sending */
		} else if (!shut) {
			shutdown(fd, SHUT_WR);
			shut = 1;
		}
		uv_run(&loop, UV_RUN_NOWAIT);
		for (;;) {
			n = recv(fd, sink, sizeof(sink), 0);
			if (n > 0)
				continue;
			if (n == 0 || errno != EAGAIN)
				eof = 1;
			break;
		}
	}
	close(fd);
	uv_run(&loop, UV_RUN_NOWAIT); /* let the server notice and free the client */
	if (!eof)
		abort(); /* the server never finished with a client that said EOF */
	return 0;
}
