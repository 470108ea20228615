/* SPDX-License-Identifier: MIT */
/* libuv implementation of lib/evloop.h (uv_poll_t per socket, uv_timer_t per
 * timer), so lib/ runs libcurl and its timers on the daemon's loop. It does
 * not run the loop: the caller does. */
#ifndef XTS_UVGLUE_H
#define XTS_UVGLUE_H

#include <uv.h>

#include "evloop.h"

/* An evloop on loop (borrowed). *out owned by the caller. 0 or XTS_ENOMEM. */
int xts_uvglue_new(uv_loop_t *loop, struct xts_evloop **out);

/* Close every handle it still has (timers must already be freed by their
 * owners) and free. Run the loop once more afterwards (uv_run NOWAIT) so the
 * closes complete. NULL is fine. */
void xts_uvglue_free(struct xts_evloop *ev);

#endif
