/* SPDX-License-Identifier: MIT */
/* Diagnostics log (for fixing the daemon; the operator's record of object
 * decisions is the provisioning log, provlog.h). Lines go to stderr with a
 * "<N>" syslog priority prefix when stderr is journald's, so journald keeps
 * the level. Never pass a secret to these functions. */
#ifndef XTS_LOG_H
#define XTS_LOG_H

#include <stdarg.h>

enum xts_log_level {
	XTS_LOG_CRIT = 2,
	XTS_LOG_ERR = 3,
	XTS_LOG_WARNING = 4,
	XTS_LOG_NOTICE = 5,
	XTS_LOG_INFO = 6,
	XTS_LOG_DEBUG = 7,
};

/* prefix: 1 = "<N>" priority prefixes (journald), 0 = "LEVEL: " words,
 * -1 = decide from $JOURNAL_STREAM. */
void xts_log_init(int level, int prefix);
void xts_log_set_level(int level);
int xts_log_get_level(void);
/* Parse "crit", "err", "warning", "notice", "info", "debug"; -1 if unknown. */
int xts_log_level_parse(const char *s);
const char *xts_log_level_name(int level);

void xts_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void xts_vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define xts_crit(...) xts_log(XTS_LOG_CRIT, __VA_ARGS__)
#define xts_err(...) xts_log(XTS_LOG_ERR, __VA_ARGS__)
#define xts_warn(...) xts_log(XTS_LOG_WARNING, __VA_ARGS__)
#define xts_notice(...) xts_log(XTS_LOG_NOTICE, __VA_ARGS__)
#define xts_info(...) xts_log(XTS_LOG_INFO, __VA_ARGS__)
#define xts_debug(...) xts_log(XTS_LOG_DEBUG, __VA_ARGS__)

/* Rate limiter for messages that can repeat (one per call site). */
struct xts_ratelimit {
	long long window_start; /* monotonic ms */
	unsigned interval_ms;
	unsigned burst;
	unsigned printed;
	unsigned suppressed;
};
/* Returns 1 when the message may be printed; logs how many were suppressed
 * when a new window opens. */
int xts_ratelimit_ok(struct xts_ratelimit *rl);

#define xts_log_rl(level, interval_ms_, burst_, ...)                            \
	do {                                                                    \
		static struct xts_ratelimit xts__rl = { 0, (interval_ms_), (burst_), 0, 0 }; \
		if (xts_ratelimit_ok(&xts__rl))                                 \
			xts_log((level), __VA_ARGS__);                          \
	} while (0)

/* Monotonic clock in milliseconds (shared by timers, back-off and rate limits). */
long long xts_now_ms(void);
/* Wall clock in milliseconds since the epoch. */
long long xts_wall_ms(void);

#endif
