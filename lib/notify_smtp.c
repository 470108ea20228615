/* SPDX-License-Identifier: MIT */
/* Sending notification mail with libcurl's SMTP: the easy-handle builder
 * (for the daemon's multi loop), a blocking send for workers and tools, and
 * the outbox (queue once per event, flush due mails, back off on failure).
 * No event loop here, and the password never reaches a log or an error text. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "notify.h"
#include "store.h"

struct xts_notify_req {
	CURL *easy;
	struct curl_slist *rcpt;
	char *msg;
	size_t len, off;
	char errbuf[CURL_ERROR_SIZE];
};

int
xts_notify_url_is_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	int yes = 0;

	if (u == NULL || url == NULL)
		goto done;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto done;
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host == NULL)
		goto done;
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
	    strcmp(host, "::1") == 0)
		yes = 1;
	else if (strncmp(host, "127.", 4) == 0) {
		const char *p = host + 4;
		int dots = 0;

		/* 127.a.b.c, digits and dots only */
		for (; *p; p++) {
			if (*p == '.')
				dots++;
			else if (!isdigit((unsigned char)*p))
				break;
		}
		yes = *p == '\0' && dots == 2;
	}
done:
	curl_free(host);
	curl_url_cleanup(u);
	return yes;
}

static size_t
read_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct xts_notify_req *r = arg;
	size_t room = size * nmemb, n = r->len - r->off;

	if (n > room)
		n = room;
	memcpy(ptr, r->msg + r->off, n);
	r->off += n;
	return n;
}

void
xts_notify_req_free(struct xts_notify_req *r)
{
	if (r == NULL)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->rcpt);
	xts_free(r->msg);
	xts_free(r);
}

/* Split "a@x, b@y" into "<a@x>", "<b@y>" recipients. */
static int
add_recipients(struct xts_notify_req *r, const char *to_csv)
{
	const char *p = to_csv, *e;
	char addr[320];
	int n = 0;

	while (*p) {
		size_t len;
		struct curl_slist *l;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		e = strchr(p, ',');
		len = e ? (size_t)(e - p) : strlen(p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0 || len + 3 > sizeof(addr) || memchr(p, '@', len) == NULL ||
		    memchr(p, '<', len) || memchr(p, '>', len))
			return XTS_EINVAL;
		snprintf(addr, sizeof(addr), "<%.*s>", (int)len, p);
		l = curl_slist_append(r->rcpt, addr);
		if (l == NULL)
			return XTS_ENOMEM;
		r->rcpt = l;
		n++;
		p += len;
	}
	return n > 0 ? 0 : XTS_EINVAL;
}

int
xts_notify_build_easy(const struct xts_smtp_conf *c, const char *to_csv, const char *subject,
    const char *body, struct xts_notify_req **out, CURL **easy)
{
	struct xts_notify_req *r = NULL;
	char from[330];
	int ret, loop;
	CURLcode cc = CURLE_OK;

	*out = NULL;
	*easy = NULL;
	if (c == NULL || c->url == NULL || c->from == NULL || to_csv == NULL)
		return XTS_EINVAL;
	if (strncmp(c->url, "smtp://", 7) != 0 && strncmp(c->url, "smtps://", 8) != 0) {
		xts_err("notify: smtp url must start with smtp:// or smtps://");
		return XTS_EINVAL;
	}
	if (strlen(c->from) + 3 > sizeof(from) || strchr(c->from, '<') || strchr(c->from, '>'))
		return XTS_EINVAL;
	r = xts_calloc(1, sizeof(*r));
	if (r == NULL)
		return XTS_ENOMEM;
	ret = xts_notify_compose(c->from, to_csv, subject, body, 0, &r->msg);
	if (ret < 0)
		goto done;
	r->len = strlen(r->msg);
	ret = add_recipients(r, to_csv);
	if (ret < 0)
		goto done;
	r->easy = curl_easy_init();
	if (r->easy == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	snprintf(from, sizeof(from), "<%s>", c->from);
	loop = xts_notify_url_is_loopback(c->url);
	cc |= curl_easy_setopt(r->easy, CURLOPT_URL, c->url);
	cc |= curl_easy_setopt(r->easy, CURLOPT_MAIL_FROM, from);
	cc |= curl_easy_setopt(r->easy, CURLOPT_MAIL_RCPT, r->rcpt);
	cc |= curl_easy_setopt(r->easy, CURLOPT_UPLOAD, 1L);
	cc |= curl_easy_setopt(r->easy, CURLOPT_READFUNCTION, read_cb);
	cc |= curl_easy_setopt(r->easy, CURLOPT_READDATA, r);
	cc |= curl_easy_setopt(r->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->len);
	cc |= curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	cc |= curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	cc |= curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : 15000L);
	cc |= curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS,
	    c->timeout_ms > 0 && c->timeout_ms < 5000 ? c->timeout_ms : 5000L);
	cc |= curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	/* STARTTLS is required except on loopback (tests, a local relay). */
	cc |= curl_easy_setopt(r->easy, CURLOPT_USE_SSL, loop ? (long)CURLUSESSL_TRY : (long)CURLUSESSL_ALL);
	cc |= curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	cc |= curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file && *c->ca_file)
		cc |= curl_easy_setopt(r->easy, CURLOPT_CAINFO, c->ca_file);
	if (c->username && *c->username) {
		cc |= curl_easy_setopt(r->easy, CURLOPT_USERNAME, c->username);
		cc |= curl_easy_setopt(r->easy, CURLOPT_PASSWORD, c->password ? c->password : "");
	}
	if (cc != CURLE_OK) {
		xts_err("notify: libcurl lacks an SMTP option it needs");
		ret = XTS_EINTERNAL;
		goto done;
	}
	r->errbuf[0] = '\0';
done:
	if (ret < 0) {
		xts_notify_req_free(r);
		return ret;
	}
	*out = r;
	*easy = r->easy;
	return 0;
}

int
xts_notify_req_result(struct xts_notify_req *r, CURLcode rc, char *err, size_t errlen)
{
	int ret;

	switch (rc) {
	case CURLE_OK:
		ret = 0;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		ret = XTS_ETIMEDOUT;
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		ret = XTS_EIO;
		break;
	case CURLE_LOGIN_DENIED:
		ret = XTS_EAUTH;
		break;
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		ret = XTS_ETLS;
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		ret = XTS_EINVAL;
		break;
	default:
		ret = XTS_ESERVER;
		break;
	}
	if (err && errlen) {
		if (ret == 0)
			err[0] = '\0';
		else
			snprintf(err, errlen, "%s", r && r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
	}
	return ret;
}

int
xts_notify_send(const struct xts_smtp_conf *c, const char *to_csv, const char *subject,
    const char *body, char *err, size_t errlen)
{
	struct xts_notify_req *r = NULL;
	CURL *easy = NULL;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	ret = xts_notify_build_easy(c, to_csv, subject, body, &r, &easy);
	if (ret < 0) {
		if (err && errlen)
			snprintf(err, errlen, "cannot build the message: %s", xts_strerror(ret));
		return ret;
	}
	ret = xts_notify_req_result(r, curl_easy_perform(easy), err, errlen);
	xts_notify_req_free(r);
	return ret;
}

/* ---- the outbox ------------------------------------------------------------ */

int
xts_notify_queue(struct xts_store *st, const struct xts_notify_event *ev, const char *to_csv,
    long long now, int *queued)
{
	char key[256];
	char *subject = NULL, *body = NULL;
	int ret;

	if (queued)
		*queued = 0;
	if (st == NULL || ev == NULL || ev->job == NULL || to_csv == NULL || *to_csv == '\0')
		return XTS_EINVAL;
	ret = xts_notify_event_key(ev, key, sizeof(key));
	if (ret < 0)
		return ret;
	ret = xts_notify_event_compose(ev, &subject, &body);
	if (ret < 0)
		return ret;
	ret = xts_store_outbox_add(st, ev->job, key, to_csv, subject, body, now, NULL);
	if (ret == 0 && queued)
		*queued = 1;
	if (ret == XTS_EEXIST)
		ret = 0;
	xts_free(subject);
	xts_free(body);
	return ret;
}

long long
xts_notify_backoff_ms(int attempts)
{
	long long ms = 60000;

	while (--attempts > 0 && ms < 3600000)
		ms *= 2;
	return ms > 3600000 ? 3600000 : ms;
}

struct flush_ctx {
	struct xts_store *st;
	const struct xts_smtp_conf *c;
	long long now;
	int sent, failed;
};

static int
flush_one(void *arg, const struct xts_store_mail *m)
{
	struct flush_ctx *fc = arg;
	char err[CURL_ERROR_SIZE + 64];
	int ret;

	ret = xts_notify_send(fc->c, m->recipients, m->subject, m->body, err, sizeof(err));
	if (ret == 0) {
		fc->sent++;
		xts_info("notify: sent \"%s\" to %s", m->subject, m->recipients);
		ret = xts_store_outbox_mark_sent(fc->st, m->id, fc->now);
		return ret == XTS_ENOENT ? 0 : ret;
	}
	fc->failed++;
	xts_log_rl(XTS_LOG_WARNING, 60000, 5, "notify: sending \"%s\" to %s failed (%s: %s); "
	    "retrying in %llds", m->subject, m->recipients, xts_errname(ret), err,
	    xts_notify_backoff_ms(m->attempts + 1) / 1000);
	ret = xts_store_outbox_mark_failed(fc->st, m->id, fc->now + xts_notify_backoff_ms(m->attempts + 1),
	    err);
	return ret == XTS_ENOENT ? 0 : ret;
}

int
xts_notify_flush(struct xts_store *st, const struct xts_smtp_conf *c, long long now, int *sent,
    int *failed)
{
	struct flush_ctx fc = { st, c, now, 0, 0 };
	int ret;

	if (st == NULL || c == NULL)
		return XTS_EINVAL;
	ret = xts_store_outbox_foreach_due(st, now, flush_one, &fc);
	if (sent)
		*sent = fc.sent;
	if (failed)
		*failed = fc.failed;
	return ret;
}
