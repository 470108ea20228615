/* SPDX-License-Identifier: MIT */
/* Control socket transport on libuv: accept, SO_PEERCRED check, read capped
 * newline-delimited JSON requests one at a time per client, queue replies,
 * and drop clients that are idle, too slow to read or send oversized lines.
 * It knows no command; the callback given to xts_control_start does. */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "err.h"
#include "json_load.h"
#include "log.h"
#include "mem.h"

#define IDLE_TIMEOUT_MS 60000
#define MAX_PENDING_WRITE (1024 * 1024)

struct client {
	struct xts_control *c;
	struct client *prev, *next;
	uv_pipe_t pipe;
	uv_timer_t idle;
	char *in;
	size_t inlen;
	int refs;       /* closed handles + outstanding request */
	bool busy;      /* a request awaits its reply */
	bool closing;
	bool reading;
	bool close_after_write;
	bool processing; /* inside client_process: a synchronous reply must not re-enter */
	unsigned uid, pid;
};

struct xts_control_req {
	struct client *cl;
};

struct xts_control {
	uv_loop_t *loop;
	uv_pipe_t server;
	char *path;
	gid_t group;
	xts_control_cb cb;
	void *arg;
	struct client *clients;
	int n_clients;
	bool stopping;
	int refs;
};

struct wreq {
	uv_write_t w;
	struct client *cl;
	char *data;
};

static void client_close(struct client *cl);
static void client_process(struct client *cl);

static void
control_unref(struct xts_control *c)
{
	if (--c->refs == 0) {
		xts_free(c->path);
		xts_free(c);
	}
}

static void
client_unref(struct client *cl)
{
	struct xts_control *c;

	if (--cl->refs > 0)
		return;
	c = cl->c;
	xts_free(cl->in);
	xts_free(cl);
	control_unref(c);
}

static void
client_handle_closed(uv_handle_t *h)
{
	client_unref(h->data);
}

static void
client_close(struct client *cl)
{
	struct xts_control *c = cl->c;

	if (cl->closing)
		return;
	cl->closing = true;
	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	c->n_clients--;
	uv_timer_stop(&cl->idle);
	uv_close((uv_handle_t *)&cl->pipe, client_handle_closed);
	uv_close((uv_handle_t *)&cl->idle, client_handle_closed);
}

static void
write_done(uv_write_t *w, int status)
{
	struct wreq *wr = (struct wreq *)w;
	struct client *cl = wr->cl;

	xts_free(wr->data);
	xts_free(wr);
	if (status < 0 && !cl->closing)
		client_close(cl);
	else if (cl->close_after_write && !cl->closing &&
		 uv_stream_get_write_queue_size((uv_stream_t *)&cl->pipe) == 0)
		client_close(cl);
	client_unref(cl);
}

/* Queue text (ownership taken) followed by nothing: text must end in '\n'. */
static void
client_send(struct client *cl, char *text)
{
	struct wreq *wr;
	uv_buf_t b;
	int r;

	if (cl->closing) {
		xts_free(text);
		return;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)&cl->pipe) > MAX_PENDING_WRITE) {
		xts_log_rl(XTS_LOG_WARNING, 60000, 5, "control: client pid %u does not read its replies; closing",
			   cl->pid);
		xts_free(text);
		client_close(cl);
		return;
	}
	wr = xts_calloc(1, sizeof(*wr));
	if (wr == NULL) {
		xts_free(text);
		client_close(cl);
		return;
	}
	wr->cl = cl;
	wr->data = text;
	b = uv_buf_init(text, (unsigned)strlen(text));
	cl->refs++;
	r = uv_write(&wr->w, (uv_stream_t *)&cl->pipe, &b, 1, write_done);
	if (r < 0) {
		cl->refs--;
		xts_free(text);
		xts_free(wr);
		client_close(cl);
	}
}

static void
client_send_json(struct client *cl, json_t *resp)
{
	char *s, *line;
	size_t n;

	if (resp == NULL) {
		line = xts_strdup("{\"ok\":false,\"error\":\"out of memory\"}\n");
		if (line != NULL)
			client_send(cl, line);
		else
			client_close(cl);
		return;
	}
	s = json_dumps(resp, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(resp);
	if (s == NULL) {
		client_send_json(cl, NULL);
		return;
	}
	n = strlen(s);
	line = xts_malloc(n + 2);
	if (line != NULL) {
		memcpy(line, s, n);
		line[n] = '\n';
		line[n + 1] = '\0';
	}
	xts_free(s); /* jansson allocates with xts_malloc (xts_mem_install) */
	if (line == NULL) {
		client_close(cl);
		return;
	}
	client_send(cl, line);
}

static void
send_error(struct client *cl, const char *msg)
{
	client_send_json(cl, json_pack("{s:b,s:s}", "ok", 0, "error", msg));
}

void
xts_control_reply(struct xts_control_req *req, json_t *resp)
{
	struct client *cl = req->cl;

	xts_free(req);
	cl->busy = false;
	if (cl->closing) {
		json_decref(resp);
	} else {
		client_send_json(cl, resp);
		uv_timer_again(&cl->idle);
	}
	if (!cl->closing)
		client_process(cl);
	client_unref(cl);
}

void
xts_control_reply_error(struct xts_control_req *req, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	xts_control_reply(req, json_pack("{s:b,s:s}", "ok", 0, "error", msg));
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *cl = h->data;
	size_t room = XTS_CONTROL_MAX_REQUEST - cl->inlen;

	(void)suggested;
	/* Read straight into the request buffer, never past the cap. */
	if (cl->in == NULL)
		cl->in = xts_malloc(XTS_CONTROL_MAX_REQUEST + 1);
	if (cl->in == NULL || room == 0) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	*buf = uv_buf_init(cl->in + cl->inlen, (unsigned)room);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Handle one complete line. Returns after dispatching (busy may be set). */
static void
handle_line(struct client *cl, char *line, size_t len)
{
	struct xts_control_req *req;
	json_error_t jerr;
	json_t *msg, *cmd;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return;
	msg = xts_json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (msg == NULL) {
		char why[300];
		snprintf(why, sizeof(why), "malformed request: not JSON (%s at column %d)", jerr.text, jerr.column);
		send_error(cl, why);
		return;
	}
	cmd = json_object_get(msg, "cmd");
	if (!json_is_object(msg) || !json_is_string(cmd) || json_string_length(cmd) == 0 ||
	    json_string_length(cmd) > 64) {
		json_decref(msg);
		send_error(cl, "malformed request: expected a JSON object with a string \"cmd\"");
		return;
	}
	req = xts_calloc(1, sizeof(*req));
	if (req == NULL) {
		json_decref(msg);
		send_error(cl, "out of memory");
		return;
	}
	req->cl = cl;
	cl->refs++;
	cl->busy = true;
	cl->c->cb(cl->c->arg, req, json_string_value(cmd), msg);
	json_decref(msg);
}

static void
client_process(struct client *cl)
{
	char *nl;
	size_t n;

	if (cl->processing)
		return; /* the outer call continues with the next line */
	cl->processing = true;
	while (!cl->busy && !cl->closing && cl->inlen > 0) {
		nl = memchr(cl->in, '\n', cl->inlen);
		if (nl == NULL)
			break;
		n = (size_t)(nl - cl->in);
		*nl = '\0';
		handle_line(cl, cl->in, n);
		/* Replied synchronously or not, the line is consumed. */
		memmove(cl->in, nl + 1, cl->inlen - n - 1);
		cl->inlen -= n + 1;
	}
	cl->processing = false;
	if (cl->closing)
		return;
	if (cl->inlen >= XTS_CONTROL_MAX_REQUEST && !cl->busy) {
		xts_log_rl(XTS_LOG_WARNING, 60000, 5, "control: request from pid %u exceeds %d bytes; closing",
			   cl->pid, XTS_CONTROL_MAX_REQUEST);
		cl->inlen = 0;
		send_error(cl, "request too large");
		cl->close_after_write = true;
		if (cl->reading) {
			uv_read_stop((uv_stream_t *)&cl->pipe);
			cl->reading = false;
		}
		return;
	}
	/* Read more only while no request is outstanding and there is room. */
	if (!cl->busy && !cl->reading && !cl->close_after_write) {
		if (uv_read_start((uv_stream_t *)&cl->pipe, alloc_cb, read_cb) == 0)
			cl->reading = true;
	} else if (cl->busy && cl->reading && cl->inlen >= XTS_CONTROL_MAX_REQUEST) {
		uv_read_stop((uv_stream_t *)&cl->pipe);
		cl->reading = false;
	}
}

static void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *cl = s->data;

	(void)buf;
	if (nread == UV_ENOBUFS || (nread == 0 && cl->inlen >= XTS_CONTROL_MAX_REQUEST)) {
		client_process(cl);
		return;
	}
	if (nread < 0) {
		/* EOF: finish what was asked, then close. */
		uv_read_stop(s);
		cl->reading = false;
		if (cl->busy || uv_stream_get_write_queue_size(s) > 0)
			cl->close_after_write = true;
		else
			client_close(cl);
		return;
	}
	cl->inlen += (size_t)nread;
	uv_timer_again(&cl->idle);
	client_process(cl);
}

static void
idle_cb(uv_timer_t *t)
{
	struct client *cl = t->data;

	if (cl->busy)
		return; /* a long command (provision, preview) is still running */
	client_close(cl);
}

/* Peer allowed: root, the daemon's own user, or a process whose primary or
 * supplementary groups include the control group. Supplementary groups come
 * from SO_PEERGROUPS (Linux >= 4.13): no NSS lookup blocks the loop and it
 * works under ProtectProc=invisible, where /proc/PID/status is hidden. */
static bool
peer_allowed(const struct xts_control *c, int fd, const struct ucred *cr)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);
	size_t i;

	if (cr->uid == 0 || cr->uid == geteuid())
		return true;
	if (c->group == (gid_t)-1)
		return false;
	if (cr->gid == c->group)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) {
		xts_log_rl(XTS_LOG_WARNING, 60000, 1, "control: SO_PEERGROUPS: %s", strerror(errno));
		return false;
	}
	for (i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == c->group)
			return true;
	return false;
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct xts_control *c = server->data;
	struct client *cl;
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	uv_os_fd_t fd;

	if (status < 0 || c->stopping)
		return;
	cl = xts_calloc(1, sizeof(*cl));
	if (cl == NULL)
		return;
	cl->c = c;
	uv_pipe_init(c->loop, &cl->pipe, 0);
	uv_timer_init(c->loop, &cl->idle);
	cl->pipe.data = cl;
	cl->idle.data = cl;
	cl->refs = 2;
	c->refs++;
	cl->next = c->clients;
	if (c->clients != NULL)
		c->clients->prev = cl;
	c->clients = cl;
	c->n_clients++;
	if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0) {
		client_close(cl);
		return;
	}
	memset(&cr, 0, sizeof(cr));
	if (uv_fileno((uv_handle_t *)&cl->pipe, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0) {
		xts_warn("control: cannot get peer credentials: %s", strerror(errno));
		client_close(cl);
		return;
	}
	cl->uid = cr.uid;
	cl->pid = (unsigned)cr.pid;
	if (!peer_allowed(c, fd, &cr)) {
		xts_log_rl(XTS_LOG_WARNING, 10000, 10,
			   "control: refused connection from uid %u pid %u (not root or in control_group)",
			   (unsigned)cr.uid, (unsigned)cr.pid);
		cl->close_after_write = true;
		send_error(cl, "permission denied: root or a member of control_group required");
		return;
	}
	if (c->n_clients > XTS_CONTROL_MAX_CLIENTS) {
		xts_log_rl(XTS_LOG_WARNING, 10000, 5, "control: too many clients; refusing pid %u", cl->pid);
		cl->close_after_write = true;
		send_error(cl, "too many control connections; try again");
		return;
	}
	uv_timer_start(&cl->idle, idle_cb, IDLE_TIMEOUT_MS, IDLE_TIMEOUT_MS);
	client_process(cl);
}

/* Is something listening on path? (A stale socket from a crash is not.) */
static bool
socket_alive(const char *path)
{
	struct sockaddr_un sa;
	bool alive;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return alive;
}

static void
server_closed(uv_handle_t *h)
{
	control_unref(h->data);
}

/* Why the socket could not be made, as the operator can act on it. libuv
 * reports a missing directory as "permission denied" (it maps ENOENT to
 * EACCES), so look at the directory: a missing one is a mistake in
 * control_socket (XTS_ECONFIG, exit 2), as is a control_group the daemon's
 * user is not in (chown EPERM). Anything else is a runtime failure. */
static int
bind_failed(const char *path, int r)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (stat(dir, &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
		xts_err("control: cannot bind %s: directory %s does not exist (create it, or change "
			"control_socket; the unit's RuntimeDirectory= makes /run/xtsync)", path, dir);
		return XTS_ECONFIG;
	}
	if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
		xts_err("control: cannot bind %s: %s is not a directory (change control_socket)", path, dir);
		return XTS_ECONFIG;
	}
	xts_err("control: cannot bind %s: %s", path, uv_strerror(r));
	return XTS_EIO;
}

static int
group_failed(const char *path, gid_t group, int e)
{
	struct group *g = getgrgid(group);
	const char *name = g != NULL ? g->gr_name : "?";

	if (e == EPERM) {
		xts_err("control: cannot give %s to control_group %s (gid %u): the daemon's user is not a member "
			"of it (add the user to the group, or change control_group)", path, name, (unsigned)group);
		return XTS_ECONFIG;
	}
	xts_err("control: cannot give %s to control_group %s (gid %u): %s", path, name, (unsigned)group,
		strerror(e));
	return XTS_EPERM;
}

int
xts_control_start(uv_loop_t *loop, const char *path, gid_t group, xts_control_cb cb, void *arg,
		  struct xts_control **out)
{
	struct xts_control *c;
	struct stat st;
	mode_t old;
	int r, ret = 0;

	*out = NULL;
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		xts_err("control: socket path too long: %s", path);
		return XTS_EINVAL;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			xts_err("control: %s exists and is not a socket", path);
			return XTS_EEXIST;
		}
		if (socket_alive(path)) {
			xts_err("control: %s is in use (is another xtsyncd running?)", path);
			return XTS_EEXIST;
		}
		unlink(path);
	}
	c = xts_calloc(1, sizeof(*c));
	if (c == NULL)
		return XTS_ENOMEM;
	c->path = xts_strdup(path);
	if (c->path == NULL) {
		xts_free(c);
		return XTS_ENOMEM;
	}
	c->loop = loop;
	c->group = group;
	c->cb = cb;
	c->arg = arg;
	c->refs = 1;
	uv_pipe_init(loop, &c->server, 0);
	c->server.data = c;
	/* Create the socket with no access for others from the first instant. */
	old = umask(0177);
	r = uv_pipe_bind(&c->server, path);
	umask(old);
	if (r != 0) {
		ret = bind_failed(path, r);
		goto fail;
	}
	if (group != (gid_t)-1 && chown(path, (uid_t)-1, group) != 0) {
		ret = group_failed(path, group, errno);
		goto fail;
	}
	if (chmod(path, 0660) != 0) {
		xts_err("control: cannot chmod %s: %s", path, strerror(errno));
		ret = XTS_EPERM;
		goto fail;
	}
	r = uv_listen((uv_stream_t *)&c->server, 64, on_connection);
	if (r != 0) {
		xts_err("control: cannot listen on %s: %s", path, uv_strerror(r));
		ret = XTS_EIO;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	unlink(path);
	uv_close((uv_handle_t *)&c->server, server_closed);
	return ret;
}

void
xts_control_stop(struct xts_control *c)
{
	if (c == NULL || c->stopping)
		return;
	c->stopping = true;
	while (c->clients != NULL)
		client_close(c->clients);
	unlink(c->path);
	uv_close((uv_handle_t *)&c->server, server_closed);
}
