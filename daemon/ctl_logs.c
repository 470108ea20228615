/* SPDX-License-Identifier: MIT */
/* `xtsyncctl logs`: filter and print the provisioning log, and follow it
 * across rotation (copytruncate: the file shrinks under us -> read from 0;
 * rename: the path names a new inode -> drain the old file, open the new).
 * A log not written yet reads as empty (--follow waits for it to appear).
 * Reads only; bad lines are skipped with a note, never fatal. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <unicase.h>

#include "config.h"
#include "ctl_logs.h"
#include "json_load.h"
#include "log.h"
#include "mem.h"
#include "text.h"

#define MAX_LINE (4u << 20) /* longer lines are skipped */
#define POLL_MS 200

struct filter {
	const char *job, *user, *action, *status;
	long long since;  /* wall ms, 0 = none */
	int json;
};

struct reader {
	int fd;
	dev_t dev;
	ino_t ino;
	off_t off;
	char *buf;      /* bytes of an incomplete line */
	size_t len, cap;
	int skipping;   /* inside an over-long line */
	/* The head of the last complete line read and where it starts: a log
	 * line begins with its activityDateTime and id, so these bytes read
	 * back differently once a copytruncate rewrote the file, even when it
	 * grew back past off between two polls. */
	off_t sig_off;
	size_t sig_len;
	char sig[96];
};

static volatile sig_atomic_t stop_flag;

static void
on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* ---- time ----------------------------------------------------------------- */

static int
digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int
days_in_month(int y, int mo)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : dim[mo - 1];
}

/* ISO 8601: YYYY-MM-DD[THH:MM[:SS[.fff...]]][Z|+hh:mm|-hh:mm]. Without a
 * zone: local time when local (what an operator types, as ISO 8601,
 * journalctl and date -d read it), else UTC (the log's own lines carry Z). */
static int
parse_iso(const char *s, bool local, long long *out)
{
	struct tm tm;
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, zh, zm, sign;
	long long t;

	memset(&tm, 0, sizeof(tm));
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		return -1;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &sec))
				return -1;
			if (*p == '.' || *p == ',') {
				int scale = 100;

				p++;
				if (*p < '0' || *p > '9')
					return -1;
				for (; *p >= '0' && *p <= '9'; p++) {
					ms += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
	}
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (long long)timegm(&tm);
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '\0' && local) {
		tm.tm_isdst = -1;
		t = (long long)mktime(&tm);
		if (t == -1)
			return -1;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (digits(&p, 2, &zh))
			return -1;
		if (*p == ':')
			p++;
		if (digits(&p, 2, &zm) || zh > 23 || zm > 59)
			return -1;
		t -= sign * (zh * 3600LL + zm * 60LL);
	}
	if (*p != '\0')
		return -1;
	*out = t * 1000 + ms;
	return 0;
}

int
xts_ctl_logs_parse_time(const char *s, long long now_ms, long long *out_ms)
{
	const long long cap = 100LL * 365 * 86400000; /* a century */
	long long n, unit, total = 0;
	char *end = NULL;

	if (s == NULL || *s == '\0')
		return -1;
	if (parse_iso(s, true, out_ms) == 0)
		return 0;
	/* Relative: <n><unit> repeated, units d, h, m, s ("30s", "1h30m",
	 * "1d12h", as the config's durations plus days), or bare seconds. */
	while (*s != '\0') {
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		n = strtoll(s, &end, 10);
		if (errno != 0 || n > cap)
			return -1;
		switch (*end) {
		case '\0': unit = end == s ? 0 : (total == 0 ? 1000 : 0); break; /* bare seconds, alone */
		case 's': unit = 1000; break;
		case 'm': unit = 60000; break;
		case 'h': unit = 3600000; break;
		case 'd': unit = 86400000; break;
		default: return -1;
		}
		if (unit == 0 || n > (cap - total) / unit)
			return -1;
		total += n * unit;
		s = *end != '\0' ? end + 1 : end;
	}
	*out_ms = now_ms - total;
	return 0;
}

/* ---- filtering and printing ------------------------------------------------ */

static const char *
str_at(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);

	if (b)
		v = json_object_get(v, b);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Equal ignoring case, for every script's letters (Unicode full case
 * folding, libunistring), not only ASCII: "åsa novák" finds "Åsa Novák". */
static int
eq(const char *v, const char *want)
{
	int r;

	if (v == NULL)
		return 0;
	if (strcasecmp(v, want) == 0)
		return 1;
	return u8_casecmp((const uint8_t *)v, strlen(v), (const uint8_t *)want, strlen(want), NULL, NULL, &r) == 0 &&
	       r == 0;
}

static int
matches(json_t *o, const struct filter *f)
{
	if (f->job && !eq(str_at(o, "jobId", NULL), f->job))
		return 0;
	if (f->action && !eq(str_at(o, "action", NULL), f->action))
		return 0;
	if (f->status && !eq(str_at(o, "provisioningStatusInfo", "status"), f->status))
		return 0;
	if (f->user && !eq(str_at(o, "sourceIdentity", "id"), f->user) &&
	    !eq(str_at(o, "sourceIdentity", "userPrincipalName"), f->user) &&
	    !eq(str_at(o, "sourceIdentity", "displayName"), f->user) &&
	    !eq(str_at(o, "targetIdentity", "id"), f->user))
		return 0;
	if (f->since) {
		const char *t = str_at(o, "activityDateTime", NULL);
		long long ms;

		if (t == NULL || parse_iso(t, false, &ms) < 0 || ms < f->since)
			return 0;
	}
	return 1;
}

/* Print s with control characters (terminal escapes in a display name)
 * replaced, so a source tenant's data cannot drive the operator's terminal. */
static void
put_safe(const char *s)
{
	size_t n;

	while (s != NULL && *s != '\0') {
		n = xts_text_unsafe_at(s);
		if (n == 0)
			putchar(*s++);
		for (; n > 0; n--, s++)
			putchar('?');
	}
}

/* A property written with the value it had (an update re-asserts the
 * user's values): not a change to show. A redacted one cannot be told. */
static bool
reasserted(json_t *p)
{
	const char *ov = str_at(p, "oldValue", NULL), *nv = str_at(p, "newValue", NULL);

	if (ov == NULL || nv == NULL)
		return ov == nv;
	return strcmp(ov, nv) == 0 && strcmp(nv, "[Redact]") != 0;
}

static void
print_readable(json_t *o)
{
	const char *user = str_at(o, "sourceIdentity", "userPrincipalName");
	json_t *ei = json_object_get(json_object_get(o, "provisioningStatusInfo"), "errorInformation");
	json_t *props = json_object_get(o, "modifiedProperties");
	size_t i;

	if (user == NULL)
		user = str_at(o, "sourceIdentity", "id");
	put_safe(str_at(o, "activityDateTime", NULL) ? str_at(o, "activityDateTime", NULL) : "-");
	putchar(' ');
	put_safe(str_at(o, "jobId", NULL) ? str_at(o, "jobId", NULL) : "-");
	putchar(' ');
	put_safe(str_at(o, "action", NULL) ? str_at(o, "action", NULL) : "-");
	putchar(' ');
	put_safe(str_at(o, "provisioningStatusInfo", "status") ?
	    str_at(o, "provisioningStatusInfo", "status") : "-");
	fputs(" user=", stdout);
	put_safe(user ? user : "-");
	fputs(" target=", stdout);
	put_safe(str_at(o, "targetIdentity", "id") ? str_at(o, "targetIdentity", "id") : "-");
	if (json_array_size(props) > 0) {
		size_t shown = 0, same = 0;

		for (i = 0; i < json_array_size(props); i++) {
			json_t *p = json_array_get(props, i);
			const char *n = str_at(p, "displayName", NULL);

			if (reasserted(p)) {
				same++;
				continue;
			}
			fputs(shown++ ? "," : " changed=", stdout);
			put_safe(n ? n : "?");
		}
		if (same > 0)
			printf(" reasserted=%zu", same);
	}
	if (json_is_object(ei)) {
		const char *code = str_at(ei, "errorCode", NULL), *reason = str_at(ei, "reason", NULL);

		fputs(" error=", stdout);
		put_safe(code ? code : "-");
		if (reason) {
			fputs(": ", stdout);
			put_safe(reason);
		}
	}
	putchar('\n');
}

static void
handle_line(const char *line, size_t len, const struct filter *f)
{
	json_error_t e;
	json_t *o;

	if (len == 0)
		return;
	o = xts_json_loadb(line, len, 0, &e);
	if (!json_is_object(o)) {
		xts_log_rl(XTS_LOG_WARNING, 10000, 3, "logs: skipping a line that is not a JSON object");
		json_decref(o);
		return;
	}
	if (matches(o, f)) {
		if (f->json) {
			fwrite(line, 1, len, stdout);
			putchar('\n');
		} else {
			print_readable(o);
		}
	}
	json_decref(o);
}

/* ---- reading and following ------------------------------------------------- */

/* Permission denied: say who may read the log. The daemon writes it 0640,
 * group xtsync (the unit's UMask and LogsDirectory); a control_group operator
 * is not in that group by being in control_group. */
static void
access_hint(const char *path)
{
	struct stat st;
	struct group *g;

	if (stat(path, &st) != 0) {
		fputs("xtsyncctl logs: its directory is not open to you: run as root or as a member of "
		      "group xtsync\n", stderr);
		return;
	}
	g = getgrgid(st.st_gid);
	if (g != NULL && (st.st_mode & S_IRGRP) != 0)
		fprintf(stderr, "xtsyncctl logs: it is readable by group %s: run as root or add your user to "
			"that group\n", g->gr_name);
	else
		fputs("xtsyncctl logs: run as root or as the file's owner\n", stderr);
}

/* A log that does not exist in a directory that does has not been written
 * yet (a fresh install, no change decided so far): it reads as empty. A
 * missing directory is not that: the daemon could not write there either. */
static int
not_written_yet(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	struct stat sb;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return 0;
	return stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int
reader_open(struct reader *r, const char *path)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return -EIO;
	}
	r->fd = fd;
	r->dev = sb.st_dev;
	r->ino = sb.st_ino;
	r->off = 0;
	r->len = 0;
	r->skipping = 0;
	r->sig_len = 0;
	return 0;
}

static void
remember_line(struct reader *r, off_t at, const char *line, size_t len)
{
	r->sig_off = at;
	r->sig_len = len < sizeof(r->sig) ? len : sizeof(r->sig);
	memcpy(r->sig, line, r->sig_len);
}

/* Whether the file was truncated under us (copytruncate): shorter than what
 * was read, or the last line read is no longer where it was. */
static bool
reader_truncated(struct reader *r)
{
	char now[sizeof(r->sig)];
	struct stat sb;
	ssize_t n;

	if (fstat(r->fd, &sb) != 0)
		return false;
	if (sb.st_size < r->off)
		return true;
	if (r->sig_len == 0)
		return false;
	n = pread(r->fd, now, r->sig_len, r->sig_off);
	return n != (ssize_t)r->sig_len || memcmp(now, r->sig, r->sig_len) != 0;
}

/* Read what is there now and handle every complete line. */
static int
reader_drain(struct reader *r, const struct filter *f)
{
	char chunk[65536];
	off_t base;
	ssize_t n;
	size_t i, start;

	for (;;) {
		n = read(r->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		base = r->off;
		r->off += n;
		start = 0;
		for (i = 0; i < (size_t)n; i++) {
			if (chunk[i] != '\n')
				continue;
			if (r->skipping) {
				r->skipping = 0;
			} else if (r->len > 0) {
				if (r->len + (i - start) <= MAX_LINE && r->len + (i - start) + 1 <= r->cap) {
					memcpy(r->buf + r->len, chunk + start, i - start);
					handle_line(r->buf, r->len + (i - start), f);
					remember_line(r, base - (off_t)r->len, r->buf, r->len + (i - start));
				} else if (r->len + (i - start) <= MAX_LINE) {
					char *nb = xts_realloc(r->buf, r->len + (i - start) + 1);

					if (nb == NULL)
						return -ENOMEM;
					r->buf = nb;
					r->cap = r->len + (i - start) + 1;
					memcpy(r->buf + r->len, chunk + start, i - start);
					handle_line(r->buf, r->len + (i - start), f);
					remember_line(r, base - (off_t)r->len, r->buf, r->len + (i - start));
				}
				r->len = 0;
			} else {
				handle_line(chunk + start, i - start, f);
				remember_line(r, base + (off_t)start, chunk + start, i - start);
			}
			start = i + 1;
		}
		/* keep the incomplete tail */
		if (start < (size_t)n && !r->skipping) {
			size_t tail = (size_t)n - start;

			if (r->len + tail > MAX_LINE) {
				r->skipping = 1;
				r->len = 0;
			} else {
				if (r->len + tail + 1 > r->cap) {
					size_t ncap = (r->len + tail + 1) * 2;
					char *nb = xts_realloc(r->buf, ncap);

					if (nb == NULL)
						return -ENOMEM;
					r->buf = nb;
					r->cap = ncap;
				}
				memcpy(r->buf + r->len, chunk + start, tail);
				r->len += tail;
			}
		}
		fflush(stdout);
	}
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
follow(struct reader *r, const char *path, const struct filter *f)
{
	struct sigaction sa, old_int, old_term;
	struct stat pb;
	int ret = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	stop_flag = 0;
	while (!stop_flag) {
		if (r->fd < 0) {
			if (reader_open(r, path) < 0) {
				sleep_ms(POLL_MS);
				continue;
			}
		}
		ret = reader_drain(r, f);
		if (ret < 0)
			break;
		fflush(stdout);
		sleep_ms(POLL_MS);
		if (reader_truncated(r)) {
			/* copytruncate: start over at the top of the same file */
			lseek(r->fd, 0, SEEK_SET);
			r->off = 0;
			r->len = 0;
			r->skipping = 0;
			r->sig_len = 0;
			continue;
		}
		if (stat(path, &pb) < 0 || pb.st_dev != r->dev || pb.st_ino != r->ino) {
			/* renamed or removed: finish the old file, then reopen the path */
			ret = reader_drain(r, f);
			if (ret < 0)
				break;
			close(r->fd);
			r->fd = -1;
			r->len = 0;
		}
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return ret;
}

static void
usage(void)
{
	fputs("usage: xtsyncctl logs [--follow] [--job J] [--user U] [--action A] [--status S]\n"
	      "                      [--since TIME] [--json]\n"
	      "  TIME: ISO 8601 (2024-05-01T12:00:00Z; without a zone, local time)\n"
	      "        or relative (30s, 10m, 1h30m, 2h, 1d)\n"
	      "  ACTION: Create Update Delete Disable Skip StagedDelete Other\n"
	      "  STATUS: success failure skipped warning\n", stderr);
}

int
(xts_ctl_logs_main)(const char *provisioning_log_path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "job", required_argument, NULL, 'j' },
		{ "user", required_argument, NULL, 'u' },
		{ "action", required_argument, NULL, 'a' },
		{ "status", required_argument, NULL, 's' },
		{ "since", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const actions[] = { "Create", "Update", "Delete", "Disable", "Skip",
		"StagedDelete", "Other" };
	static const char *const statuses[] = { "success", "failure", "skipped", "warning" };
	struct filter f;
	struct reader r;
	int c, do_follow = 0, ret = 0, i, ok;

	memset(&f, 0, sizeof(f));
	memset(&r, 0, sizeof(r));
	r.fd = -1;
	optind = 0; /* glibc: full re-initialisation, argv[0] is "logs" */
	opterr = 1;
	for (;;) {
		c = getopt_long(argc, argv, "fj:u:a:s:t:Jh", opts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'f': do_follow = 1; break;
		case 'j': f.job = optarg; break;
		case 'u': f.user = optarg; break;
		case 'a':
			for (i = 0, ok = 0; i < 7; i++)
				ok |= strcasecmp(optarg, actions[i]) == 0;
			if (!ok) {
				fprintf(stderr, "xtsyncctl logs: unknown action '%s'\n", optarg);
				usage();
				return 2;
			}
			f.action = optarg;
			break;
		case 's':
			for (i = 0, ok = 0; i < 4; i++)
				ok |= strcasecmp(optarg, statuses[i]) == 0;
			if (!ok) {
				fprintf(stderr, "xtsyncctl logs: unknown status '%s'\n", optarg);
				usage();
				return 2;
			}
			f.status = optarg;
			break;
		case 't':
			if (xts_ctl_logs_parse_time(optarg, xts_wall_ms(), &f.since) < 0) {
				fprintf(stderr, "xtsyncctl logs: --since: not a time: '%s'\n", optarg);
				usage();
				return 2;
			}
			if (f.since <= 0)
				f.since = 1;
			break;
		case 'J': f.json = 1; break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xtsyncctl logs: unexpected argument '%s'\n", argv[optind]);
		usage();
		return 2;
	}
	if (provisioning_log_path == NULL || *provisioning_log_path == '\0') {
		fputs("xtsyncctl logs: no provisioning_log is configured\n", stderr);
		return 2;
	}
	ret = reader_open(&r, provisioning_log_path);
	/* Not there yet: nothing to print; --follow waits for it to appear. */
	if (ret < 0 && !(ret == -ENOENT && (do_follow || not_written_yet(provisioning_log_path)))) {
		fprintf(stderr, "xtsyncctl logs: cannot read %s: %s\n", provisioning_log_path,
		    strerror(-ret));
		if (ret == -EACCES)
			access_hint(provisioning_log_path);
		return 1;
	}
	ret = 0;
	if (r.fd >= 0)
		ret = reader_drain(&r, &f);
	if (ret == 0 && do_follow)
		ret = follow(&r, provisioning_log_path, &f);
	if (r.fd >= 0)
		close(r.fd);
	xts_free(r.buf);
	fflush(stdout);
	if (ret < 0) {
		fprintf(stderr, "xtsyncctl logs: reading %s: %s\n", provisioning_log_path, strerror(-ret));
		return 1;
	}
	return 0;
}

int
xts_ctl_logs_main_config(const struct xts_config *cfg, int argc, char **argv)
{
	return (xts_ctl_logs_main)(cfg ? cfg->daemon.provisioning_log : NULL, argc, argv);
}
