/* SPDX-License-Identifier: MIT */
/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET (a path or
 * an abstract "@name" socket). READY, RELOADING, STOPPING, STATUS, WATCHDOG.
 * Does not schedule the watchdog itself (the loop does, with a uv timer). */
#ifndef XTS_SDNOTIFY_H
#define XTS_SDNOTIFY_H

#include <stdint.h>

/* Send `state` (e.g. "READY=1\nSTATUS=running") to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when $NOTIFY_SOCKET is not set, or a negative
 * XTS_E* code. Non-blocking (MSG_DONTWAIT); never logs the payload twice. */
int xts_sd_notify(const char *state);
/* printf-style wrapper. */
int xts_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "RELOADING=1" with "MONOTONIC_USEC=<now>" as systemd >= 253 expects for
 * Type=notify-reload (older systemd ignores the extra field). */
int xts_sd_notify_reloading(void);

/* Watchdog interval from $WATCHDOG_USEC (honouring $WATCHDOG_PID): 0 when no
 * watchdog is requested for this process, else the interval in microseconds. */
uint64_t xts_sd_watchdog_usec(void);

#endif
