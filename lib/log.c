/* SPDX-License-Identifier: MIT */
/* stderr diagnostics with journald priorities and per-site rate limiting.
 * Not the provisioning log, and not syslog(3): systemd captures stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "text.h"

static int cur_level = XTS_LOG_INFO;
static int use_prefix;

static const char *const level_names[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

void
xts_log_init(int level, int prefix)
{
	cur_level = level;
	if (prefix < 0)
		prefix = getenv("JOURNAL_STREAM") != NULL;
	use_prefix = prefix;
}

void
xts_log_set_level(int level)
{
	cur_level = level;
}

int
xts_log_get_level(void)
{
	return cur_level;
}

int
xts_log_level_parse(const char *s)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = XTS_LOG_CRIT; i <= XTS_LOG_DEBUG; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	if (strcmp(s, "error") == 0)
		return XTS_LOG_ERR;
	if (strcmp(s, "warn") == 0)
		return XTS_LOG_WARNING;
	return -1;
}

const char *
xts_log_level_name(int level)
{
	if (level < 0 || level > XTS_LOG_DEBUG)
		return "?";
	return level_names[level];
}

void
xts_vlog(int level, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	if (level > cur_level)
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	/* Tenant data (a user id, Graph's error text) must not start a line
	 * of its own: under systemd a "<0>" there would be journald's emerg. */
	xts_text_scrub(line);
	/* One write per line so concurrent writers do not interleave. */
	if (use_prefix)
		fprintf(stderr, "<%d>%s\n", level, line);
	else
		fprintf(stderr, "xtsync: %s: %s\n", xts_log_level_name(level), line);
	fflush(stderr);
}

void
xts_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	xts_vlog(level, fmt, ap);
	va_end(ap);
}

long long
xts_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
xts_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
xts_ratelimit_ok(struct xts_ratelimit *rl)
{
	long long now = xts_now_ms();

	if (rl->window_start == 0 || now - rl->window_start >= rl->interval_ms) {
		if (rl->suppressed)
			xts_log(XTS_LOG_WARNING, "%u similar messages suppressed", rl->suppressed);
		rl->window_start = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed < rl->burst) {
		rl->printed++;
		return 1;
	}
	rl->suppressed++;
	return 0;
}
