/* SPDX-License-Identifier: MIT */
/* The client side of the control socket for xtsyncctl: connect, send one
 * JSON request line, read one JSON response line. Blocking, with a timeout;
 * meant for the command-line tool, never for the daemon's loop. */
#ifndef XTS_CTL_CLIENT_H
#define XTS_CTL_CLIENT_H

#include <stddef.h>

#include <jansson.h>

/* Send req (borrowed) to the daemon at socket_path and wait up to timeout_ms
 * for the reply. Returns 0 with *resp a new reference to the response
 * object; otherwise XTS_ENOENT/XTS_EPERM/XTS_EIO/XTS_ETIMEDOUT/XTS_EPARSE/
 * XTS_ETOOBIG/XTS_ENOMEM with a sentence in err (err always terminated). */
int xts_ctl_request(const char *socket_path, json_t *req, int timeout_ms, json_t **resp, char *err,
		    size_t errlen);

#endif
