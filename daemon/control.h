/* SPDX-License-Identifier: MIT */
/* The control socket, server side: a Unix stream socket (mode 0660, group
 * control_group) speaking newline-delimited JSON; peers are checked with
 * SO_PEERCRED. This file is the transport only: which commands exist and
 * what they do is the caller's (daemon/loop.c) business. */
#ifndef XTS_CONTROL_H
#define XTS_CONTROL_H

#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

/* Largest request line accepted (bytes, newline included). */
#define XTS_CONTROL_MAX_REQUEST (64 * 1024)
/* Connections served at once; more are refused with an error reply. */
#define XTS_CONTROL_MAX_CLIENTS 64

struct xts_control;
struct xts_control_req; /* one request awaiting its reply */

/* Called for each well-formed request (a JSON object with a string "cmd").
 * msg is borrowed for the duration of the call; call xts_control_reply
 * exactly once, now or later from the loop. */
typedef void (*xts_control_cb)(void *arg, struct xts_control_req *req, const char *cmd, json_t *msg);

/* Listen on path (an existing stale socket is replaced; a live one is an
 * error: another daemon owns it). group: the gid allowed besides root, or
 * (gid_t)-1 for root only. Returns 0 and *out, or XTS_E* (logged). */
int xts_control_start(uv_loop_t *loop, const char *path, gid_t group, xts_control_cb cb, void *arg,
		      struct xts_control **out);

/* Send the response (steals resp, a JSON object; NULL means out of memory and
 * sends a generic error) and release req. If the client went away meanwhile
 * the response is dropped. Never blocks: writes are queued. */
void xts_control_reply(struct xts_control_req *req, json_t *resp);
/* Convenience: {"ok": false, "error": message}. */
void xts_control_reply_error(struct xts_control_req *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Stop accepting, close every client, unlink the socket. The structure is
 * freed once libuv has closed the handles (run the loop once more). */
void xts_control_stop(struct xts_control *c);

#endif
