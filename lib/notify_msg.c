/* SPDX-License-Identifier: MIT */
/* Composing notification mail: the subject and body for each job event (with
 * the operator's next commands), its dedupe key, and the RFC 5322 message
 * around them. Pure string work: no network, no store. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "notify.h"
#include "provlog.h"
#include "text.h"

int
xts_notify_event_key(const struct xts_notify_event *ev, char *buf, size_t len)
{
	int n;

	if (ev == NULL || buf == NULL || len == 0)
		return XTS_EINVAL;
	switch (ev->kind) {
	case XTS_NOTIFY_QUARANTINE:
		n = snprintf(buf, len, "quarantine:%lld", ev->since);
		break;
	case XTS_NOTIFY_REASON_CHANGE:
		n = snprintf(buf, len, "reason:%lld:%s", ev->since,
		    ev->reason_code ? ev->reason_code : "");
		break;
	case XTS_NOTIFY_DELETIONS_HELD:
		n = snprintf(buf, len, "deletions-held:%lld", ev->cycle_id);
		break;
	default:
		return XTS_EINVAL;
	}
	return n < 0 || (size_t)n >= len ? XTS_ERANGE : 0;
}

static void
time_text(long long ms, char *buf, size_t len)
{
	if (ms <= 0)
		snprintf(buf, len, "not scheduled");
	else
		xts_provlog_time(ms, buf, len);
}

int
xts_notify_event_compose(const struct xts_notify_event *ev, char **subject, char **body)
{
	struct xts_buf s = XTS_BUF_INIT, b = XTS_BUF_INIT;
	char t1[40], t2[40];
	const char *job, *reason;
	int ret = 0;

	*subject = NULL;
	*body = NULL;
	if (ev == NULL || ev->job == NULL)
		return XTS_EINVAL;
	job = ev->job;
	reason = ev->reason_code ? ev->reason_code : "unknown";
	time_text(ev->since, t1, sizeof(t1));
	time_text(ev->next_retry, t2, sizeof(t2));
	switch (ev->kind) {
	case XTS_NOTIFY_QUARANTINE:
		ret |= xts_buf_printf(&s, "[xtsync] job %s quarantined: %s", job, reason);
		ret |= xts_buf_printf(&b,
		    "The synchronization job \"%s\" has been put in quarantine.\n\n"
		    "Reason code: %s\n%s%s%s"
		    "Quarantined since: %s\n"
		    "Next automatic retry: %s\n"
		    "Users in scope: %lld\n"
		    "Failed operations: %lld\n\n"
		    "While quarantined the job makes no changes in the target tenant.\n"
		    "What to do:\n"
		    "  - fix the cause named by the reason code, then resume the job:\n"
		    "        xtsyncctl resume %s\n"
		    "  - or, if the job's state must be rebuilt after the fix (for example\n"
		    "    after changing the schema or scope), restart it:\n"
		    "        xtsyncctl restart %s\n"
		    "  - see the job's state and the failures:\n"
		    "        xtsyncctl status\n"
		    "        xtsyncctl logs --job %s --status failure\n",
		    job, reason, ev->reason_text ? "Details: " : "",
		    ev->reason_text ? ev->reason_text : "", ev->reason_text ? "\n" : "", t1, t2,
		    ev->in_scope, ev->failed, job, job, job);
		break;
	case XTS_NOTIFY_REASON_CHANGE:
		ret |= xts_buf_printf(&s, "[xtsync] job %s quarantined: reason changed to %s", job,
		    reason);
		ret |= xts_buf_printf(&b,
		    "The synchronization job \"%s\" is still in quarantine, for a different reason.\n\n"
		    "Previous reason code: %s\n"
		    "New reason code: %s\n%s%s%s"
		    "Quarantined since: %s\n"
		    "Next automatic retry: %s\n\n"
		    "What to do:\n"
		    "  - fix the cause, then resume the job:\n"
		    "        xtsyncctl resume %s\n"
		    "  - or rebuild its state after the fix:\n"
		    "        xtsyncctl restart %s\n",
		    job, ev->previous_reason ? ev->previous_reason : "unknown", reason,
		    ev->reason_text ? "Details: " : "", ev->reason_text ? ev->reason_text : "",
		    ev->reason_text ? "\n" : "", t1, t2, job, job);
		break;
	case XTS_NOTIFY_DELETIONS_HELD:
		ret |= xts_buf_printf(&s, "[xtsync] job %s: %lld deletions held", job, ev->held);
		ret |= xts_buf_printf(&b,
		    "The synchronization job \"%s\" planned %lld deletions (or disables) in one\n"
		    "cycle (cycle %lld), more than its deletion threshold of %lld.\n"
		    "They have been held; nothing was deleted. Other changes continue.\n\n"
		    "What to do:\n"
		    "  - see the held deletions:\n"
		    "        xtsyncctl preview %s\n"
		    "  - if they are expected, release them (once):\n"
		    "        xtsyncctl allow-deletions %s\n"
		    "  - if not, fix the source (scope, group assignment) and the next\n"
		    "    cycle will plan again.\n",
		    job, ev->held, ev->cycle_id, ev->threshold, job, job);
		break;
	default:
		return XTS_EINVAL;
	}
	if (ret != 0) {
		xts_buf_free(&s);
		xts_buf_free(&b);
		return XTS_ENOMEM;
	}
	*subject = xts_buf_steal(&s);
	*body = xts_buf_steal(&b);
	if (*subject == NULL || *body == NULL) {
		xts_free(*subject);
		xts_free(*body);
		*subject = *body = NULL;
		return XTS_ENOMEM;
	}
	/* The reason is a tenant's text: a CR/LF in it made the subject one
	 * the sender refuses, for ever, and the operator was never told. */
	xts_text_scrub(*subject);
	return 0;
}

static int
has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

static int
is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* RFC 2047 "B" encoding of a UTF-8 header value, in chunks that keep each
 * encoded word under 76 characters. */
static int
put_encoded(struct xts_buf *b, const char *v)
{
	size_t len = strlen(v), off = 0, chunk;
	unsigned char out[80];
	int ret = 0;

	while (off < len && ret == 0) {
		chunk = len - off > 45 ? 45 : len - off;
		/* do not split a UTF-8 sequence */
		while (chunk < len - off && chunk > 1 && ((unsigned char)v[off + chunk] & 0xc0) == 0x80)
			chunk--;
		EVP_EncodeBlock(out, (const unsigned char *)v + off, (int)chunk);
		ret = xts_buf_printf(b, "%s=?UTF-8?B?%s?=", off ? "\r\n " : "", (const char *)out);
		off += chunk;
	}
	return ret;
}

const char *
xts_notify_next_addr(const char **p, size_t *len)
{
	const char *s = *p, *e;
	size_t n;

	while (*s == ' ' || *s == '\t' || *s == ',')
		s++;
	if (*s == '\0') {
		*p = s;
		return NULL;
	}
	e = strchr(s, ',');
	n = e != NULL ? (size_t)(e - s) : strlen(s);
	*p = s + n;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	*len = n;
	return s;
}

/* "To:" with the addresses of to_csv, folded after a comma so that no line
 * is longer than 78 characters where an address allows (RFC 5322 2.1.1: "MUST
 * be no more than 998", "SHOULD be no more than 78"). */
static int
put_to(struct xts_buf *b, const char *to_csv)
{
	const char *p = to_csv, *a;
	size_t col = 4, len;
	int ret = xts_buf_puts(b, "To:"), n = 0;

	while (ret == 0) {
		a = xts_notify_next_addr(&p, &len);
		if (a == NULL)
			break;
		if (n > 0)
			ret = xts_buf_putc(b, ',');
		if (ret == 0 && n > 0 && col + 2 + len > 78) {
			ret = xts_buf_puts(b, "\r\n");
			col = 0;
		}
		if (ret == 0)
			ret = xts_buf_printf(b, " %.*s", (int)len, a);
		col += 2 + len;
		n++;
	}
	return ret == 0 ? xts_buf_puts(b, "\r\n") : ret;
}

/* Whether the body can go as 7bit: ASCII, no line longer than 998. */
static int
body_is_7bit(const char *body)
{
	size_t col = 0;

	for (; *body; body++) {
		if ((unsigned char)*body >= 0x80)
			return 0;
		col = *body == '\n' ? 0 : col + 1;
		if (col > 998)
			return 0;
	}
	return 1;
}

/* Quoted-printable (RFC 2045 6.7): CRLF line ends, soft breaks before 76. */
static int
put_body_qp(struct xts_buf *b, const char *body)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t col = 0;
	int ret = 0;

	for (p = (const unsigned char *)body; *p && ret == 0; p++) {
		char enc[4];
		size_t w;

		if (*p == '\r')
			continue;
		if (*p == '\n') {
			ret = xts_buf_puts(b, "\r\n");
			col = 0;
			continue;
		}
		/* printable ASCII but '=', and a space or tab not before the
		 * line's end, go as they are */
		if ((*p >= 33 && *p <= 126 && *p != '=') ||
		    ((*p == ' ' || *p == '\t') && p[1] != '\n' && p[1] != '\r' && p[1] != '\0')) {
			enc[0] = (char)*p;
			enc[1] = '\0';
		} else {
			enc[0] = '=';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			enc[3] = '\0';
		}
		w = strlen(enc);
		if (col + w > 75) {
			ret = xts_buf_puts(b, "=\r\n");
			col = 0;
		}
		if (ret == 0)
			ret = xts_buf_puts(b, enc);
		col += w;
	}
	if (ret == 0 && (b->len < 2 || b->p[b->len - 1] != '\n'))
		ret = xts_buf_puts(b, "\r\n");
	return ret;
}

/* Body with every line ending made CRLF. */
static int
put_body(struct xts_buf *b, const char *body)
{
	const char *p;
	int ret = 0;

	for (p = body; *p && ret == 0; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n')
			ret = xts_buf_puts(b, "\r\n");
		else
			ret = xts_buf_putc(b, *p);
	}
	if (ret == 0 && (b->len < 2 || b->p[b->len - 1] != '\n'))
		ret = xts_buf_puts(b, "\r\n");
	return ret;
}

int
xts_notify_compose(const char *from, const char *to_csv, const char *subject, const char *body,
    long long now, char **out)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
		"Sep", "Oct", "Nov", "Dec" };
	struct xts_buf b = XTS_BUF_INIT;
	char guid[40];
	const char *domain;
	struct tm tm;
	time_t t;
	int ret = 0, seven;

	*out = NULL;
	if (from == NULL || to_csv == NULL || subject == NULL || body == NULL || !*from || !*to_csv ||
	    has_crlf(from) || has_crlf(to_csv) || has_crlf(subject))
		return XTS_EINVAL;
	t = (time_t)((now > 0 ? now : xts_wall_ms()) / 1000);
	if (gmtime_r(&t, &tm) == NULL)
		return XTS_EINVAL;
	ret = xts_provlog_guid(guid, sizeof(guid));
	if (ret < 0)
		return ret;
	domain = strchr(from, '@');
	domain = domain && domain[1] ? domain + 1 : "xtsync.invalid";
	ret |= xts_buf_printf(&b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", wd[tm.tm_wday],
	    tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	ret |= xts_buf_printf(&b, "From: %s\r\n", from);
	if (ret == 0)
		ret = put_to(&b, to_csv);
	ret |= xts_buf_puts(&b, "Subject: ");
	if (ret == 0)
		ret = is_ascii(subject) ? xts_buf_puts(&b, subject) : put_encoded(&b, subject);
	ret |= xts_buf_puts(&b, "\r\n");
	ret |= xts_buf_printf(&b, "Message-ID: <%s@%s>\r\n", guid, domain);
	/* 8bit would need BODY=8BITMIME on MAIL FROM (RFC 6152), which libcurl
	 * does not send: a body that is not plain ASCII goes quoted-printable */
	seven = body_is_7bit(body);
	ret |= xts_buf_printf(&b, "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: %s\r\n"
	    "Auto-Submitted: auto-generated\r\n"
	    "\r\n", seven ? "7bit" : "quoted-printable");
	if (ret == 0)
		ret = seven ? put_body(&b, body) : put_body_qp(&b, body);
	if (ret != 0) {
		xts_buf_free(&b);
		return XTS_ENOMEM;
	}
	*out = xts_buf_steal(&b);
	return *out ? 0 : XTS_ENOMEM;
}
