/* SPDX-License-Identifier: MIT */
/* Sending notification mail with libcurl's SMTP: the easy-handle builder
 * (for the daemon's multi loop), a blocking send for workers and tools, and
 * the outbox (queue once per event, flush due mails, back off on failure).
 * No event loop here, and the password never reaches a log or an error text. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "buf.h"
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
	char *url;              /* the URL with the EHLO domain as its path */
	int (*should_stop)(void *arg);
	void *stop_arg;
	/* the SMTP dialogue, from libcurl's debug callback */
	char rcpt_now[320];     /* the address of the RCPT TO in flight, "" if none */
	struct xts_buf refused; /* "a@x, b@y": recipients the server refused */
	struct xts_buf refused_4xx; /* those of them refused for now (4xx: try again) */
	char reply[200];        /* the server's last refusal (4xx/5xx) */
	long code;              /* its code (a later "221 Bye" does not replace it) */
	long last;              /* the code answering the last command we sent (0: none
				 * yet); QUIT's answer is not counted */
	int quitting;
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

/* libcurl's view of the dialogue (CURLOPT_VERBOSE with this callback prints
 * nothing): the commands we send only to learn which RCPT is answered (AUTH
 * lines are never looked at, let alone kept), and the server's replies. */
static int
debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	struct xts_notify_req *r = arg;
	size_t n;

	(void)h;
	if (type == CURLINFO_HEADER_OUT) {
		r->rcpt_now[0] = '\0';
		if (size >= 4 && strncasecmp(data, "QUIT", 4) == 0)
			r->quitting = 1;
		else if (!r->quitting)
			r->last = 0; /* a new command: its answer is still to come */
		if (size > 8 && strncasecmp(data, "RCPT TO:", 8) == 0) {
			/* data is not NUL-terminated: bounded by size */
			for (n = 0; 8 + n < size && data[8 + n] != '\r' && data[8 + n] != '\n'; n++)
				;
			if (n < sizeof(r->rcpt_now))
				snprintf(r->rcpt_now, sizeof(r->rcpt_now), "%.*s", (int)n, data + 8);
		}
	} else if (type == CURLINFO_HEADER_IN && size >= 3 && isdigit((unsigned char)data[0]) &&
		   isdigit((unsigned char)data[1]) && isdigit((unsigned char)data[2])) {
		long code = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');

		if (code >= 400) {
			n = size;
			while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
				n--;
			if (n >= sizeof(r->reply))
				n = sizeof(r->reply) - 1;
			memcpy(r->reply, data, n);
			r->reply[n] = '\0';
			r->code = code;
		}
		/* the last line of a reply: "NNN text" (a "NNN-" line goes on) */
		if (size == 3 || data[3] != '-') {
			if (!r->quitting)
				r->last = code;
			if (r->rcpt_now[0] != '\0' && code >= 400) {
				if (xts_buf_printf(&r->refused, "%s%s", r->refused.len ? ", " : "",
						   r->rcpt_now) != 0)
					return 0;
				if (code < 500 && xts_buf_printf(&r->refused_4xx, "%s%.*s",
						   r->refused_4xx.len ? ", " : "",
						   (int)strcspn(r->rcpt_now + 1, ">"), r->rcpt_now + 1) != 0)
					return 0;
			}
			r->rcpt_now[0] = '\0';
		}
	}
	return 0;
}

static int
xferinfo_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct xts_notify_req *r = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return r->should_stop != NULL && r->should_stop(r->stop_arg) ? 1 : 0;
}

/* The EHLO domain (RFC 5321 4.1.4: "the primary host name", else "an
 * address literal"): this host's name if it is a full one, its canonical
 * name if that is, else the address this host reaches the server from. */
static void
ehlo_domain(const char *host, const char *port, char *out, size_t len)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char name[256] = "", addr[INET6_ADDRSTRLEN];
	int fd;

	out[0] = '\0';
	if (gethostname(name, sizeof(name)) == 0) {
		name[sizeof(name) - 1] = '\0';
		if (strchr(name, '.') != NULL) {
			snprintf(out, len, "%s", name);
			return;
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		if (getaddrinfo(name, NULL, &hints, &ai) == 0 && ai != NULL && ai->ai_canonname != NULL &&
		    strchr(ai->ai_canonname, '.') != NULL) {
			snprintf(out, len, "%s", ai->ai_canonname);
			freeaddrinfo(ai);
			return;
		}
		if (ai != NULL)
			freeaddrinfo(ai);
		ai = NULL;
	}
	/* the local address of a UDP "connection" to the server (no packet) */
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	if (host == NULL || getaddrinfo(host, port != NULL ? port : "25", &hints, &ai) != 0 || ai == NULL)
		goto fallback;
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET &&
		    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr)))
			snprintf(out, len, "[%s]", addr);
		else if (ss.ss_family == AF_INET6 &&
			 inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr)))
			snprintf(out, len, "[IPv6:%s]", addr);
	}
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
fallback:
	if (out[0] == '\0')
		snprintf(out, len, "%s", name[0] ? name : "localhost");
}

/* c->url with the EHLO domain as its path (libcurl: "the path part is used
 * as the domain in HELO/EHLO"), unless the operator gave one. */
static char *
url_with_ehlo(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *path = NULL, *out = NULL, *enc = NULL, dom[300];

	if (u == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto done;
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK && path != NULL &&
	    strcmp(path, "/") != 0 && path[0] != '\0') {
		out = xts_strdup(url);
		goto done;
	}
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		port = NULL;
	if (host != NULL && host[0] == '[') { /* "[::1]" */
		size_t n = strlen(host);

		memmove(host, host + 1, n - 1);
		host[n - 2] = '\0';
	}
	ehlo_domain(host, port, dom, sizeof(dom));
	enc = curl_easy_escape(NULL, dom, 0);
	if (enc == NULL || curl_url_set(u, CURLUPART_PATH, enc, 0) != CURLUE_OK)
		goto done;
	{
		char *full = NULL;

		if (curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK && full != NULL)
			out = xts_strdup(full);
		curl_free(full);
	}
done:
	curl_free(enc);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return out;
}

const char *
xts_notify_req_refused(const struct xts_notify_req *r)
{
	return r != NULL && r->refused.p != NULL ? r->refused.p : "";
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
	xts_free(r->url);
	xts_buf_free(&r->refused);
	xts_buf_free(&r->refused_4xx);
	xts_free(r);
}

/* Split "a@x, b@y" into "<a@x>", "<b@y>" recipients. */
static int
add_recipients(struct xts_notify_req *r, const char *to_csv)
{
	const char *p = to_csv, *a;
	char addr[320];
	size_t len;
	int n = 0;

	for (;;) {
		struct curl_slist *l;

		a = xts_notify_next_addr(&p, &len);
		if (a == NULL)
			break;
		if (len == 0 || len + 3 > sizeof(addr) || memchr(a, '@', len) == NULL ||
		    memchr(a, '<', len) || memchr(a, '>', len))
			return XTS_EINVAL;
		snprintf(addr, sizeof(addr), "<%.*s>", (int)len, a);
		l = curl_slist_append(r->rcpt, addr);
		if (l == NULL)
			return XTS_ENOMEM;
		r->rcpt = l;
		n++;
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
	r->url = url_with_ehlo(c->url);
	if (r->url == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	r->should_stop = c->should_stop;
	r->stop_arg = c->stop_arg;
	cc |= curl_easy_setopt(r->easy, CURLOPT_URL, r->url);
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
	/* smtp://: STARTTLS when the server offers it (the contract); but a
	 * password never goes in clear to a host that is not loopback. */
	cc |= curl_easy_setopt(r->easy, CURLOPT_USE_SSL,
	    !loop && c->username && *c->username ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
	/* RFC 5321: each RCPT is answered on its own; the mail goes to those
	 * accepted (libcurl fails only when every one is refused). */
#if LIBCURL_VERSION_NUM >= 0x080200
	cc |= curl_easy_setopt(r->easy, CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
#else
	cc |= curl_easy_setopt(r->easy, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
#endif
	cc |= curl_easy_setopt(r->easy, CURLOPT_DEBUGFUNCTION, debug_cb);
	cc |= curl_easy_setopt(r->easy, CURLOPT_DEBUGDATA, r);
	cc |= curl_easy_setopt(r->easy, CURLOPT_VERBOSE, 1L);
	cc |= curl_easy_setopt(r->easy, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	cc |= curl_easy_setopt(r->easy, CURLOPT_XFERINFODATA, r);
	cc |= curl_easy_setopt(r->easy, CURLOPT_NOPROGRESS, 0L);
	cc |= curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	cc |= curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file && *c->ca_file) {
		/* ADD the anchor ([smtp] ca_file): CURLOPT_CAINFO would replace
		 * the system bundle, so the trust store is the bundle + the file */
		const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
		struct xts_buf pem = XTS_BUF_INIT;
		struct curl_blob blob;

		if (xts_buf_append_file(&pem, vi->cainfo ? vi->cainfo : "/etc/ssl/certs/ca-certificates.crt") != 0)
			xts_warn("notify: cannot read the system CA bundle; trusting only %s", c->ca_file);
		ret = xts_buf_append_file(&pem, c->ca_file);
		if (ret == 0 && strstr(xts_buf_str(&pem), "-----BEGIN CERTIFICATE-----") == NULL)
			ret = XTS_EINVAL;
		if (ret != 0) {
			xts_err("notify: [smtp] ca_file %s: %s", c->ca_file,
			    ret == XTS_EINVAL ? "no PEM certificate in it" : xts_strerror(ret));
			xts_buf_free(&pem);
			goto done;
		}
		blob.data = pem.p;
		blob.len = pem.len;
		blob.flags = CURL_BLOB_COPY;
		cc |= curl_easy_setopt(r->easy, CURLOPT_CAINFO_BLOB, &blob);
		xts_buf_free(&pem);
	}
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
	case CURLE_ABORTED_BY_CALLBACK:
		ret = XTS_ECANCELED;
		break;
	default:
		ret = XTS_ESERVER;
		break;
	}
	/* the server refused our last command (not: a refusal earlier in the
	 * dialogue, then a dropped connection): a refusal, in its own words
	 * (libcurl says "Weird server reply" or "RCPT failed: 550") */
	if (ret != 0 && ret != XTS_ECANCELED && r != NULL && r->last >= 400 &&
	    (ret == XTS_ESERVER || ret == XTS_EIO))
		ret = XTS_ESERVER;
	if (err && errlen) {
		const char *refused = xts_notify_req_refused(r);

		if (ret == 0 && refused[0] != '\0')
			snprintf(err, errlen, "the server refused %s", refused);
		else if (ret == 0)
			err[0] = '\0';
		else if (r != NULL && r->code >= 400)
			snprintf(err, errlen, "%s: the server said \"%s\"",
			    r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc), r->reply);
		else
			snprintf(err, errlen, "%s", r && r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
	}
	return ret;
}

int
xts_notify_send_ex(const struct xts_smtp_conf *c, const char *to_csv, const char *subject,
    const char *body, char *err, size_t errlen, struct xts_notify_outcome *out)
{
	struct xts_notify_req *r = NULL;
	CURL *easy = NULL;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	ret = xts_notify_build_easy(c, to_csv, subject, body, &r, &easy);
	if (ret < 0) {
		if (err && errlen)
			snprintf(err, errlen, "cannot build the message: %s", xts_strerror(ret));
		return ret;
	}
	ret = xts_notify_req_result(r, curl_easy_perform(easy), err, errlen);
	if (out != NULL) {
		out->refused_for_good = ret == XTS_ESERVER && r->last >= 500;
		if (ret == 0 && r->refused_4xx.len > 0)
			snprintf(out->try_again, sizeof(out->try_again), "%s", xts_buf_str(&r->refused_4xx));
	}
	xts_notify_req_free(r);
	return ret;
}

int
xts_notify_send(const struct xts_smtp_conf *c, const char *to_csv, const char *subject,
    const char *body, char *err, size_t errlen)
{
	return xts_notify_send_ex(c, to_csv, subject, body, err, errlen, NULL);
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

/* Refusals for good in a row, as the last error says ("refused N time(s):
 * ..."); any other failure in between starts the count again. */
static int
refusals_so_far(const char *last_error)
{
	int n = 0;

	if (last_error != NULL && sscanf(last_error, "refused %d time", &n) == 1 && n > 0)
		return n;
	return 0;
}

/* Recipients the server refused for now (4xx: greylisting, a full mailbox)
 * when it took the mail for the others: the same mail again for them only,
 * as an outbox entry of its own (one per event and recipient set). */
static int
queue_for_later(struct flush_ctx *fc, const struct xts_store_mail *m, const char *to)
{
	struct xts_buf key = XTS_BUF_INIT;
	int ret;

	if (xts_buf_printf(&key, "%s/again:%s", m->event_key, to) != 0)
		return XTS_ENOMEM;
	ret = xts_store_outbox_add(fc->st, m->job, xts_buf_str(&key), to, m->subject, m->body,
	    fc->now, NULL);
	xts_buf_free(&key);
	if (ret == 0)
		xts_warn("notify: \"%s\": the server refused %s for now; tried again for them alone",
		    m->subject, to);
	return ret == XTS_EEXIST ? 0 : ret;
}

static int
flush_one(void *arg, const struct xts_store_mail *m)
{
	struct flush_ctx *fc = arg;
	struct xts_notify_outcome out;
	char err[CURL_ERROR_SIZE + 64], rec[CURL_ERROR_SIZE + 96];
	long long next;
	int ret, n;

	if (fc->c->should_stop != NULL && fc->c->should_stop(fc->c->stop_arg))
		return XTS_ECANCELED;
	ret = xts_notify_send_ex(fc->c, m->recipients, m->subject, m->body, err, sizeof(err), &out);
	if (ret == 0) {
		fc->sent++;
		if (err[0] != '\0')
			xts_warn("notify: sent \"%s\" to %s, but %s", m->subject, m->recipients, err);
		else
			xts_info("notify: sent \"%s\" to %s", m->subject, m->recipients);
		ret = out.try_again[0] != '\0' ? queue_for_later(fc, m, out.try_again) : 0;
		if (ret == 0)
			ret = xts_store_outbox_mark_sent(fc->st, m->id, fc->now);
		return ret == XTS_ENOENT ? 0 : ret;
	}
	if (ret == XTS_ECANCELED)
		return ret; /* stopping: the mail stays due, as it was */
	fc->failed++;
	n = out.refused_for_good ? refusals_so_far(m->last_error) + 1 : 0;
	if (n > 0)
		snprintf(rec, sizeof(rec), "refused %d time(s): %s", n, err);
	else
		snprintf(rec, sizeof(rec), "%s", err);
	if (n >= XTS_NOTIFY_MAX_REFUSALS) {
		/* refused for good, again and again: a mail no server takes
		 * is not retried forever */
		xts_err("notify: giving up on \"%s\" to %s: refused %d times in a row (%s)", m->subject,
		    m->recipients, n, err);
		next = XTS_NOTIFY_NEVER;
	} else {
		next = fc->now + xts_notify_backoff_ms(m->attempts + 1);
		xts_log_rl(XTS_LOG_WARNING, 60000, 5, "notify: sending \"%s\" to %s failed (%s: %s); "
		    "retrying in %llds", m->subject, m->recipients, xts_errname(ret), err,
		    xts_notify_backoff_ms(m->attempts + 1) / 1000);
	}
	ret = xts_store_outbox_mark_failed(fc->st, m->id, next, rec);
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
	if (ret == XTS_ECANCELED)
		ret = 0;
	if (sent)
		*sent = fc.sent;
	if (failed)
		*failed = fc.failed;
	return ret;
}

int
xts_notify_next_attempt(struct xts_store *st, long long *when)
{
	return xts_store_outbox_next(st, XTS_NOTIFY_NEVER, when);
}
