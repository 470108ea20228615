/* SPDX-License-Identifier: MIT */
/* E-mail notifications to operators: composing the messages for job events
 * (quarantine, reason change, deletions held), queuing them once per event
 * in the store's outbox, and sending them over SMTP with libcurl (smtp://
 * with STARTTLS when the server offers it — required to send a password to a
 * host that is not loopback — or smtps://). Takes
 * its settings as a plain struct, not from config.h; never logs a password. */
#ifndef XTS_NOTIFY_H
#define XTS_NOTIFY_H

#include <stddef.h>

#include <curl/curl.h>

struct xts_store;

struct xts_smtp_conf {
	const char *url;       /* smtp://host[:port] or smtps://host[:port] */
	const char *from;      /* envelope and From: address */
	const char *username;  /* NULL or "" = no AUTH */
	const char *password;  /* the secret's value (read from password_file by the caller) */
	const char *ca_file;   /* NULL = system trust store */
	long timeout_ms;       /* whole transfer; 0 = 15000 */
	/* polled during a transfer and between mails (may be NULL): nonzero
	 * aborts the transfer (the mail stays queued) and ends a flush */
	int (*should_stop)(void *arg);
	void *stop_arg;
};

/* ---- composing ------------------------------------------------------------ */

enum xts_notify_kind {
	XTS_NOTIFY_QUARANTINE = 0,   /* the job entered quarantine */
	XTS_NOTIFY_REASON_CHANGE,    /* still quarantined, for a different reason */
	XTS_NOTIFY_DELETIONS_HELD,   /* the deletion threshold held this cycle's deletions */
};

struct xts_notify_event {
	int kind;                    /* enum xts_notify_kind */
	const char *job;
	const char *reason_code;     /* e.g. Graph's error code; quarantine / reason change */
	const char *reason_text;     /* one sentence for a person, may be NULL */
	const char *previous_reason; /* reason change: the old code */
	long long since;             /* wall ms the quarantine began (part of the event key) */
	long long next_retry;        /* wall ms of the next automatic attempt, 0 = none */
	long long cycle_id;          /* the cycle that raised it (deletions held: part of the key) */
	long long failed;            /* counts shown in the mail (quarantine) */
	long long in_scope;
	long long held;              /* deletions held */
	long long threshold;         /* deletion_threshold */
};

/* Event key that makes "one mail per event" (e.g. "quarantine:<since>",
 * "reason:<since>:<code>", "deletions-held:<cycle>"). 0 or XTS_ERANGE/EINVAL. */
int xts_notify_event_key(const struct xts_notify_event *ev, char *buf, size_t len);
/* Subject and text body for the event, with the operator's next commands
 * (`xtsyncctl resume JOB`, `xtsyncctl restart JOB`, `xtsyncctl
 * allow-deletions JOB`, `xtsyncctl preview JOB`). *subject and *body are
 * new strings (xts_free). 0, XTS_EINVAL or XTS_ENOMEM. */
int xts_notify_event_compose(const struct xts_notify_event *ev, char **subject, char **body);

/* The RFC 5322 message (CRLF line ends): Date, From, To, Subject (RFC 2047
 * encoded when not ASCII), Message-ID, MIME-Version, Content-Type text/plain
 * UTF-8, then the body. now is wall ms (0 = now). CR or LF in a header value
 * is refused with XTS_EINVAL (no header injection). *out is new (xts_free). */
int xts_notify_compose(const char *from, const char *to_csv, const char *subject, const char *body,
    long long now, char **out);

/* The next address of a comma-separated list at *p ("a@x, b@y"): its start,
 * with its length (blanks trimmed) in *len, and *p moved past it; NULL at
 * the end of the list. */
const char *xts_notify_next_addr(const char **p, size_t *len);

/* ---- sending -------------------------------------------------------------- */

/* 1 when the URL's host is a loopback address (127.0.0.0/8, ::1, localhost). */
int xts_notify_url_is_loopback(const char *url);

/* One prepared SMTP transfer: an easy handle the daemon may add to its
 * libcurl multi (it must call xts_notify_req_result with the transfer's
 * CURLcode and then xts_notify_req_free). Owns the message and recipients. */
struct xts_notify_req;
/* Build it. *easy is borrowed from *out (freed by xts_notify_req_free).
 * STARTTLS when offered (USE_SSL=TRY); required (ALL) when a password would
 * go to a host that is not loopback. The mail goes to the recipients the
 * server accepts (one refused address does not stop the others). EHLO names
 * this host's FQDN or address (RFC 5321 4.1.4) unless the URL has a path.
 * May resolve names (blocks): call it where xts_notify_send may be called. 0,
 * XTS_EINVAL (bad URL, address or header), XTS_ENOMEM. */
int xts_notify_build_easy(const struct xts_smtp_conf *c, const char *to_csv, const char *subject,
    const char *body, struct xts_notify_req **out, CURL **easy);
/* Map the finished transfer to 0 or XTS_E* with a message in err (the
 * server's own reply when it refused). */
int xts_notify_req_result(struct xts_notify_req *r, CURLcode rc, char *err, size_t errlen);
/* After the transfer: the recipients the server refused ("a@x, b@y"; "" if
 * none; valid until xts_notify_req_free). */
const char *xts_notify_req_refused(const struct xts_notify_req *r);
void xts_notify_req_free(struct xts_notify_req *r);

/* Send one mail now and wait for the server (blocks up to timeout_ms: call
 * it from a worker thread or a tool, never on the event loop). Returns 0,
 * or XTS_ETIMEDOUT / XTS_EIO (server unreachable), XTS_EAUTH, XTS_ETLS,
 * XTS_ESERVER (refused), XTS_ECANCELED (should_stop), XTS_EINVAL with a
 * message in err (may be NULL). 0 also when the server refused some of the
 * recipients (not all): they are named in err. */
int xts_notify_send(const struct xts_smtp_conf *c, const char *to_csv, const char *subject,
    const char *body, char *err, size_t errlen);
/* What a send came to, besides its result. */
struct xts_notify_outcome {
	int refused_for_good;   /* the server refused the mail with a 5xx (not a
				 * dropped connection, not "try again later") */
	char try_again[1024];   /* sent, but these recipients were refused for now
				 * (4xx): "a@x, b@y"; "" none */
};
/* The same, filling *out (may be NULL). */
int xts_notify_send_ex(const struct xts_smtp_conf *c, const char *to_csv, const char *subject,
    const char *body, char *err, size_t errlen, struct xts_notify_outcome *out);

/* ---- the outbox ----------------------------------------------------------- */

/* Compose the event and queue it for to_csv in the store's outbox. An event
 * already queued (same key) is not queued again: returns 0 and sets *queued
 * (may be NULL) to 0; a new one sets it to 1. Does not send. */
int xts_notify_queue(struct xts_store *st, const struct xts_notify_event *ev, const char *to_csv,
    long long now, int *queued);
/* Back-off after the Nth failed attempt (1-based): 1, 2, 4 ... minutes, at most 1 hour. */
long long xts_notify_backoff_ms(int attempts);
/* A mail the server refused for good (a 5xx reply) this many times in a row
 * is not tried again: its next_attempt becomes XTS_NOTIFY_NEVER. A recipient
 * refused for now (4xx) while the others took the mail gets it again alone. */
#define XTS_NOTIFY_MAX_REFUSALS 5
#define XTS_NOTIFY_NEVER 253402300799999LL /* 9999-12-31T23:59:59.999Z */
/* Send every due mail of the outbox (synchronously, one after another),
 * marking each sent, or failed with its next attempt time. *sent / *failed
 * (may be NULL) get the counts. Returns 0 unless the store failed. Blocks:
 * a worker thread with its own store connection, or a tool. */
int xts_notify_flush(struct xts_store *st, const struct xts_smtp_conf *c, long long now, int *sent,
    int *failed);
/* The earliest next attempt of a mail still to send (wall ms; may be in the
 * past), or 0 when none waits. */
int xts_notify_next_attempt(struct xts_store *st, long long *when);

#endif
