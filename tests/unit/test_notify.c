/* SPDX-License-Identifier: MIT */
/* Unit tests for notifications: event keys and texts (with the operator's
 * commands), the RFC 5322 message, header-injection refusal, loopback
 * detection, and the outbox against a real store with an SMTP port that
 * refuses connections (delivery to a real server: tests/integration/test_smtp.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "notify.h"
#include "store.h"
#include "tmpdir.h"

static void
test_event_keys(void **state)
{
	struct xts_notify_event ev = { .kind = XTS_NOTIFY_QUARANTINE, .job = "j", .since = 1234 };
	char key[64];

	(void)state;
	assert_int_equal(xts_notify_event_key(&ev, key, sizeof(key)), 0);
	assert_string_equal(key, "quarantine:1234");
	ev.kind = XTS_NOTIFY_REASON_CHANGE;
	ev.reason_code = "AzureDirectoryB2BManagementPolicyCheckFailure";
	assert_int_equal(xts_notify_event_key(&ev, key, sizeof(key)), 0);
	assert_string_equal(key, "reason:1234:AzureDirectoryB2BManagementPolicyCheckFailure");
	ev.kind = XTS_NOTIFY_DELETIONS_HELD;
	ev.cycle_id = 17;
	assert_int_equal(xts_notify_event_key(&ev, key, sizeof(key)), 0);
	assert_string_equal(key, "deletions-held:17");
	assert_int_equal(xts_notify_event_key(&ev, key, 5), XTS_ERANGE);
	ev.kind = 9;
	assert_int_equal(xts_notify_event_key(&ev, key, sizeof(key)), XTS_EINVAL);
}

static void
test_event_texts(void **state)
{
	struct xts_notify_event ev = { .kind = XTS_NOTIFY_QUARANTINE, .job = "contoso-to-fabrikam",
		.reason_code = "AzureDirectoryB2BManagementPolicyCheckFailure",
		.reason_text = "The target tenant's inbound policy blocks user sync.",
		.since = 1714566896789LL, .next_retry = 1714570496789LL, .failed = 12, .in_scope = 340 };
	char *subject = NULL, *body = NULL;

	(void)state;
	assert_int_equal(xts_notify_event_compose(&ev, &subject, &body), 0);
	assert_non_null(strstr(subject, "contoso-to-fabrikam"));
	assert_non_null(strstr(subject, "quarantined"));
	assert_non_null(strstr(body, "AzureDirectoryB2BManagementPolicyCheckFailure"));
	assert_non_null(strstr(body, "xtsyncctl resume contoso-to-fabrikam"));
	assert_non_null(strstr(body, "xtsyncctl restart contoso-to-fabrikam"));
	assert_non_null(strstr(body, "Next automatic retry: 2024-05-01T13:34:56.789Z"));
	assert_non_null(strstr(body, "Users in scope: 340"));
	assert_non_null(strstr(body, "Failed operations: 12"));
	assert_non_null(strstr(body, "inbound policy blocks"));
	xts_free(subject);
	xts_free(body);

	ev.kind = XTS_NOTIFY_REASON_CHANGE;
	ev.previous_reason = "Request_ThrottledTemporarily";
	assert_int_equal(xts_notify_event_compose(&ev, &subject, &body), 0);
	assert_non_null(strstr(subject, "reason changed"));
	assert_non_null(strstr(body, "Previous reason code: Request_ThrottledTemporarily"));
	assert_non_null(strstr(body, "xtsyncctl resume contoso-to-fabrikam"));
	xts_free(subject);
	xts_free(body);

	ev.kind = XTS_NOTIFY_DELETIONS_HELD;
	ev.held = 612;
	ev.threshold = 500;
	ev.cycle_id = 9;
	assert_int_equal(xts_notify_event_compose(&ev, &subject, &body), 0);
	assert_string_equal(subject, "[xtsync] job contoso-to-fabrikam: 612 deletions held");
	assert_non_null(strstr(body, "planned 612 deletions (or disables) in one\ncycle (cycle 9), more than its deletion threshold of 500."));
	assert_non_null(strstr(body, "xtsyncctl allow-deletions contoso-to-fabrikam"));
	assert_non_null(strstr(body, "xtsyncctl preview contoso-to-fabrikam"));
	xts_free(subject);
	xts_free(body);

	/* a reason from a tenant with CR/LF: the subject stays one the sender
	 * takes (a header with a line break is refused for ever) */
	ev.kind = XTS_NOTIFY_QUARANTINE;
	ev.reason_code = "Denied\r\nBcc: x@evil.example";
	assert_int_equal(xts_notify_event_compose(&ev, &subject, &body), 0);
	assert_string_equal(subject, "[xtsync] job contoso-to-fabrikam quarantined: Denied??Bcc: x@evil.example");
	xts_free(subject);
	xts_free(body);

	ev.job = NULL;
	assert_int_equal(xts_notify_event_compose(&ev, &subject, &body), XTS_EINVAL);
	assert_null(subject);
}

static void
test_message(void **state)
{
	char *m = NULL, *p;

	(void)state;
	assert_int_equal(xts_notify_compose("xtsync@contoso.example", "ops@contoso.example, b@x",
	    "[xtsync] hello", "line one\nline two\n.dot line", 1714566896000LL, &m), 0);
	assert_non_null(strstr(m, "Date: Wed, 01 May 2024 12:34:56 +0000\r\n"));
	assert_non_null(strstr(m, "From: xtsync@contoso.example\r\n"));
	assert_non_null(strstr(m, "To: ops@contoso.example, b@x\r\n"));
	assert_non_null(strstr(m, "Subject: [xtsync] hello\r\n"));
	p = strstr(m, "Message-ID: <");
	assert_non_null(p);
	assert_non_null(strstr(p, "@contoso.example>\r\n"));
	assert_non_null(strstr(m, "Content-Type: text/plain; charset=UTF-8\r\n"));
	/* headers end with an empty line, body lines end with CRLF */
	assert_non_null(strstr(m, "\r\n\r\nline one\r\nline two\r\n.dot line\r\n"));
	assert_null(strstr(m, "two\n."));
	xts_free(m);

	/* non-ASCII subject is RFC 2047 encoded */
	assert_int_equal(xts_notify_compose("a@x", "b@y", "Jörg", "x", 1, &m), 0);
	assert_non_null(strstr(m, "Subject: =?UTF-8?B?SsO2cmc=?=\r\n"));
	xts_free(m);

	/* an ASCII body goes 7bit; one that is not goes quoted-printable (8bit
	 * would need BODY=8BITMIME, RFC 6152), soft-broken before 76 */
	assert_int_equal(xts_notify_compose("a@x", "b@y", "s", "plain\n", 1, &m), 0);
	assert_non_null(strstr(m, "Content-Transfer-Encoding: 7bit\r\n"));
	xts_free(m);
	assert_int_equal(xts_notify_compose("a@x", "b@y", "s",
	    "Zürich = 1 \nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
	    1, &m), 0);
	assert_non_null(strstr(m, "Content-Transfer-Encoding: quoted-printable\r\n"));
	assert_non_null(strstr(m, "\r\n\r\nZ=C3=BCrich =3D 1=20\r\n"));
	p = strstr(m, "=3D 1=20\r\n") + 10;
	assert_true(strstr(p, "=\r\n") != NULL && strstr(p, "=\r\n") - p == 75);
	xts_free(m);

	/* a long recipient list: To: folded after commas, no line over 78 */
	{
		char to[2000] = "";
		const char *q, *nl;
		int i;

		for (i = 0; i < 25; i++)
			snprintf(to + strlen(to), sizeof(to) - strlen(to), "%soperator-number-%02d@operations.contoso.example",
			    i ? ", " : "", i);
		assert_int_equal(xts_notify_compose("a@x", to, "s", "b", 1, &m), 0);
		p = strstr(m, "To: operator-number-00@operations.contoso.example,\r\n operator-number-01@");
		assert_non_null(p);
		for (q = m; (nl = strstr(q, "\r\n")) != NULL; q = nl + 2)
			assert_true(nl - q <= 78);
		assert_non_null(strstr(m, " operator-number-24@operations.contoso.example\r\nSubject: s\r\n"));
		xts_free(m);
	}

	/* header injection refused */
	assert_int_equal(xts_notify_compose("a@x", "b@y", "hi\r\nBcc: evil@z", "x", 1, &m), XTS_EINVAL);
	assert_int_equal(xts_notify_compose("a@x\nBcc: e@z", "b@y", "s", "x", 1, &m), XTS_EINVAL);
	assert_int_equal(xts_notify_compose("a@x", "b@y\r\n", "s", "x", 1, &m), XTS_EINVAL);
	assert_null(m);
}

static void
test_loopback(void **state)
{
	(void)state;
	assert_true(xts_notify_url_is_loopback("smtp://127.0.0.1:2525"));
	assert_true(xts_notify_url_is_loopback("smtp://127.1.2.3"));
	assert_true(xts_notify_url_is_loopback("smtp://localhost:25"));
	assert_true(xts_notify_url_is_loopback("smtp://[::1]:25"));
	assert_false(xts_notify_url_is_loopback("smtp://127.0.0.1.example.com"));
	assert_false(xts_notify_url_is_loopback("smtp://mail.contoso.example"));
	assert_false(xts_notify_url_is_loopback("smtp://10.0.0.1"));
	assert_false(xts_notify_url_is_loopback("not a url"));
}

static void
test_build_refusals(void **state)
{
	struct xts_smtp_conf c = { .url = "http://127.0.0.1", .from = "a@x" };
	struct xts_notify_req *r = NULL;
	CURL *easy = NULL;

	(void)state;
	assert_int_equal(xts_notify_build_easy(&c, "b@y", "s", "b", &r, &easy), XTS_EINVAL);
	c.url = "smtp://127.0.0.1:1";
	assert_int_equal(xts_notify_build_easy(&c, "no-at-sign", "s", "b", &r, &easy), XTS_EINVAL);
	assert_int_equal(xts_notify_build_easy(&c, " , ", "s", "b", &r, &easy), XTS_EINVAL);
	assert_int_equal(xts_notify_build_easy(&c, "<b@y>", "s", "b", &r, &easy), XTS_EINVAL);
	assert_null(r);
	assert_int_equal(xts_notify_build_easy(&c, "b@y, c@z", "s", "b", &r, &easy), 0);
	assert_non_null(r);
	assert_non_null(easy);
	xts_notify_req_free(r);
	assert_int_equal(xts_notify_backoff_ms(1), 60000);
	assert_int_equal(xts_notify_backoff_ms(2), 120000);
	assert_int_equal(xts_notify_backoff_ms(3), 240000);
	assert_int_equal(xts_notify_backoff_ms(50), 3600000);
}

/* A loopback port nobody listens on: bind, read the port, close. */
static int
closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void
test_outbox_server_down(void **state)
{
	char dir[] = "/tmp/xts-notify-XXXXXX", url[64], err[256];
	struct xts_store *st = NULL;
	struct xts_store_mail_row row;
	struct xts_notify_event ev = { .kind = XTS_NOTIFY_DELETIONS_HELD, .job = "j", .cycle_id = 3,
		.held = 10, .threshold = 5 };
	struct xts_smtp_conf c = { .from = "xtsync@contoso.example", .timeout_ms = 3000 };
	int queued = -1, sent = -1, failed = -1, port;

	(void)state;
	port = closed_port();
	assert_true(port > 0);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
	c.url = url;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(xts_store_open(dir, &st), 0);

	assert_int_equal(xts_notify_send(&c, "ops@x", "s", "b", err, sizeof(err)), XTS_EIO);
	assert_true(strlen(err) > 0);

	assert_int_equal(xts_notify_queue(st, &ev, "ops@x", 1000, &queued), 0);
	assert_int_equal(queued, 1);
	assert_int_equal(xts_notify_queue(st, &ev, "ops@x", 1001, &queued), 0);
	assert_int_equal(queued, 0); /* same event: not queued twice */

	assert_int_equal(xts_notify_flush(st, &c, 2000, &sent, &failed), 0);
	assert_int_equal(sent, 0);
	assert_int_equal(failed, 1);
	assert_int_equal(xts_store_outbox_get(st, 1, &row), 0);
	assert_int_equal(row.m.sent_at, 0);
	assert_int_equal(row.m.attempts, 1);
	assert_int_equal(row.m.next_attempt, 2000 + 60000);
	assert_non_null(row.m.last_error);
	xts_store_mail_row_clear(&row);
	/* not due yet: nothing attempted */
	assert_int_equal(xts_notify_flush(st, &c, 2000 + 59999, &sent, &failed), 0);
	assert_int_equal(failed, 0);
	assert_int_equal(xts_notify_flush(st, &c, 2000 + 60000, &sent, &failed), 0);
	assert_int_equal(failed, 1);
	assert_int_equal(xts_store_outbox_get(st, 1, &row), 0);
	assert_int_equal(row.m.attempts, 2);
	assert_int_equal(row.m.next_attempt, 62000 + 120000);
	xts_store_mail_row_clear(&row);

	xts_store_close(st);
	assert_int_equal(xts_test_rmtree(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_keys),
		cmocka_unit_test(test_event_texts),
		cmocka_unit_test(test_message),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_build_refusals),
		cmocka_unit_test(test_outbox_server_down),
	};

	if (xts_mem_install() != 0)
		return 1;
	xts_log_init(XTS_LOG_CRIT, 0);
	return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
