/* SPDX-License-Identifier: MIT */
/*
 * The control socket's I/O, without the VM: the server loop and the
 * client (kvm-demo ctl). The server is a unix socket (mode 0600) in a
 * private directory (mode 0700), served by one thread that never blocks on
 * a client: every connection is non-blocking, polled, and has a deadline
 * for the command it is sending and for the reply it is taking. What a
 * command does is the handler's business (ctlsock.c).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "control/control.h"

#define TICK_MS		100

struct ctl_conn {
	int fd;			/* -1: a free slot */
	bool eof;		/* the client half-closed */
	bool closing;		/* close once the reply is out */
	double deadline;	/* for the command being read or the reply being sent */
	size_t have;		/* bytes in in[] */
	char *out;		/* the reply being sent */
	size_t out_len, out_off;
	char in[KD_CTL_MAX_LINE];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *ctl_reply_ok(const char *body, size_t body_len, size_t *len)
{
	char head[32];
	int h = snprintf(head, sizeof(head), "ok %zu\n", body_len);
	char *r = malloc((size_t)h + body_len);

	if (!r)
		return NULL;
	memcpy(r, head, (size_t)h);
	if (body_len)
		memcpy(r + h, body, body_len);
	*len = (size_t)h + body_len;
	return r;
}

/* One line, whatever MSG holds: anything but printable ASCII is escaped. */
char *ctl_reply_error(const char *msg, size_t *len)
{
	size_t n = strlen(msg), o = 0;
	char *r = malloc(8 + 4 * n + 2);

	if (!r)
		return NULL;
	memcpy(r, "error: ", 7);
	o = 7;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)msg[i];

		if (c >= 0x20 && c < 0x7f)
			r[o++] = (char)c;
		else
			o += (size_t)sprintf(r + o, "\\x%02x", c);
	}
	r[o++] = '\n';
	r[o] = 0;
	*len = o;
	return r;
}

static void conn_close(struct ctl_conn *c)
{
	close(c->fd);
	free(c->out);
	c->fd = -1;
	c->out = NULL;
}

/* Sends what the socket takes now; false when the connection is gone. */
static bool conn_flush(struct ctl_conn *c)
{
	while (c->out && c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (w <= 0)
			return false;
		c->out_off += (size_t)w;
	}
	free(c->out);
	c->out = NULL;
	return !c->closing;
}

/* Queues a reply; the client then has the I/O timeout to take it. */
static bool conn_reply(struct ctl_server *s, struct ctl_conn *c, char *reply, size_t len,
		       double now)
{
	if (!reply) {
		reply = ctl_reply_error("out of memory", &len);
		if (!reply)
			return false;
	}
	c->out = reply;
	c->out_len = len;
	c->out_off = 0;
	c->deadline = now + s->io_timeout_ms / 1e3;
	return conn_flush(c);
}

static bool conn_error(struct ctl_server *s, struct ctl_conn *c, const char *msg, double now)
{
	size_t len = 0;
	char *reply = ctl_reply_error(msg, &len);	/* before LEN is read */

	c->closing = true;
	return conn_reply(s, c, reply, len, now);
}

/*
 * Runs the complete lines in C's buffer, one reply at a time; false when
 * the connection is to be closed. Returns the time the handler took in *SPENT.
 */
static bool conn_run(struct ctl_server *s, struct ctl_conn *c, double *spent)
{
	char msg[96];

	/* A few commands at a time: the other clients take turns. */
	for (unsigned int k = 0; k < 16 && !c->out && !c->closing; k++) {
		char *nl = memchr(c->in, '\n', c->have);
		double now = now_s();

		if (nl) {
			size_t len = (size_t)(nl - c->in), rlen = 0;
			char *reply = s->handle(s->opaque, c->in, len, &rlen);
			double after = now_s();

			*spent += after - now;
			s->nr_served++;
			memmove(c->in, nl + 1, c->have - len - 1);
			c->have -= len + 1;
			if (!conn_reply(s, c, reply, rlen, after))
				return false;
			if (!c->out)	/* sent at once: the next command's time starts */
				c->deadline = after + s->io_timeout_ms / 1e3;
			continue;
		}
		if (c->have == sizeof(c->in)) {
			snprintf(msg, sizeof(msg), "command line longer than %d bytes; connection "
				 "closed", KD_CTL_MAX_LINE - 1);
			return conn_error(s, c, msg, now);
		}
		if (c->eof) {
			if (!c->have)
				return false;
			return conn_error(s, c, "incomplete command: the connection was closed "
					  "before a newline", now);
		}
		break;
	}
	return true;
}

/* Reads what there is; false when the connection is to be closed. */
static bool conn_read(struct ctl_conn *c)
{
	while (!c->eof && c->have < sizeof(c->in)) {
		ssize_t n = recv(c->fd, c->in + c->have, sizeof(c->in) - c->have, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0)
			return false;
		if (n == 0)
			c->eof = true;
		c->have += (size_t)n;
	}
	return true;
}

static void accept_all(struct ctl_server *s, double now)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct ctl_conn *c = NULL;

		if (fd < 0) {
			/*
			 * Out of descriptors or memory: the connection stays queued
			 * and poll() would report it again at once. Leave it for a
			 * tick instead of spinning.
			 */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				s->accept_resume = now + TICK_MS / 1e3;
			return;
		}
		for (unsigned int i = 0; i < KD_CTL_MAX_CLIENTS && !c; i++)
			if (s->conns[i].fd < 0)
				c = &s->conns[i];
		if (!c) {
			char msg[96];
			int n = snprintf(msg, sizeof(msg), "error: %d clients already connected; "
					 "try again later\n", KD_CTL_MAX_CLIENTS);

			/* Best effort: the socket is new, its buffer empty. */
			if (send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				(void)0;
			close(fd);
			s->nr_busy++;
			continue;
		}
		c->fd = fd;
		c->eof = c->closing = false;
		c->have = 0;
		c->deadline = now + s->io_timeout_ms / 1e3;
	}
}

static void *server_thread(void *arg)
{
	struct ctl_server *s = arg;
	struct pollfd fds[2 + KD_CTL_MAX_CLIENTS];
	double next_tick = now_s() + TICK_MS / 1e3;

	pthread_setname_np(pthread_self(), "control");
	for (;;) {
		double now = now_s(), wake = next_tick, spent = 0;
		unsigned int nfds = 2;
		int map[KD_CTL_MAX_CLIENTS];

		fds[0] = (struct pollfd){ .fd = s->wake_fd, .events = POLLIN };
		fds[1] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
		if (s->accept_resume > now) {
			fds[1].fd = -1;		/* poll() skips it */
			if (s->accept_resume < wake)
				wake = s->accept_resume;
		}
		for (unsigned int i = 0; i < KD_CTL_MAX_CLIENTS; i++) {
			struct ctl_conn *c = &s->conns[i];

			map[i] = -1;
			if (c->fd < 0)
				continue;
			if (c->deadline < wake)
				wake = c->deadline;
			if (!c->out && memchr(c->in, '\n', c->have))
				wake = now;	/* commands left from a turn */
			map[i] = (int)nfds;
			fds[nfds++] = (struct pollfd){ .fd = c->fd,
						       .events = c->out ? POLLOUT : POLLIN };
		}
		int ms = wake > now ? (int)((wake - now) * 1000) + 1 : 0;
		int n = poll(fds, nfds, ms);

		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && fds[0].revents)
			break;
		now = now_s();
		if (n > 0 && (fds[1].revents & POLLIN))
			accept_all(s, now);
		for (unsigned int i = 0; i < KD_CTL_MAX_CLIENTS; i++) {
			struct ctl_conn *c = &s->conns[i];
			short re = n > 0 && map[i] >= 0 ? fds[map[i]].revents : 0;
			bool keep = true;

			if (c->fd < 0 || map[i] < 0)
				continue;
			if (c->out && re) {
				keep = conn_flush(c);
				if (keep && !c->out)	/* taken: the next command's time starts */
					c->deadline = now + s->io_timeout_ms / 1e3;
			} else if (re)
				keep = conn_read(c);
			if (keep && !c->out)
				keep = conn_run(s, c, &spent);
			if (!keep)
				conn_close(c);
		}
		now = now_s();
		for (unsigned int i = 0; i < KD_CTL_MAX_CLIENTS; i++) {
			struct ctl_conn *c = &s->conns[i];

			if (c->fd < 0)
				continue;
			/* A command that took long is not the other clients' delay. */
			c->deadline += spent;
			if (now < c->deadline)
				continue;
			s->nr_timeouts++;
			if (c->out) {
				/* It does not take its reply: nothing more can reach it. */
				conn_close(c);
				continue;
			}
			char msg[96];

			snprintf(msg, sizeof(msg), "no complete command within %u ms; connection "
				 "closed", s->io_timeout_ms);
			conn_error(s, c, msg, now);
			conn_close(c);
		}
		if (now >= next_tick) {
			if (s->tick)
				s->tick(s->opaque);
			next_tick = now_s() + TICK_MS / 1e3;
		}
	}
	for (unsigned int i = 0; i < KD_CTL_MAX_CLIENTS; i++)
		if (s->conns[i].fd >= 0)
			conn_close(&s->conns[i]);
	return NULL;
}

int ctl_serve_start(struct ctl_server *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *tmp = getenv("TMPDIR");

	s->listen_fd = s->wake_fd = -1;
	s->started = false;
	s->dir[0] = s->path[0] = 0;
	s->nr_timeouts = s->nr_busy = s->nr_served = 0;
	if (!s->io_timeout_ms)
		s->io_timeout_ms = KD_CTL_IO_TIMEOUT_MS;
	s->conns = calloc(KD_CTL_MAX_CLIENTS, sizeof(*s->conns));
	if (!s->conns) {
		kd_error("control socket: out of memory");
		return -1;
	}
	for (unsigned int i = 0; i < KD_CTL_MAX_CLIENTS; i++)
		s->conns[i].fd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s/kvm-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(s->dir)) {		/* mode 0700: private */
		kd_error("control socket: mkdtemp %s: %s", s->dir, strerror(errno));
		s->dir[0] = 0;
		goto fail;
	}
	snprintf(s->path, sizeof(s->path), "%s/control", s->dir);
	if (strlen(s->path) >= sizeof(sa.sun_path)) {
		kd_error("control socket: path %s too long", s->path);
		goto fail;
	}
	strcpy(sa.sun_path, s->path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(s->path, 0600) < 0 || listen(s->listen_fd, 16) < 0) {
		kd_error("control socket %s: %s", s->path, strerror(errno));
		goto fail;
	}
	s->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (s->wake_fd < 0 || pthread_create(&s->thread, NULL, server_thread, s) != 0) {
		kd_error("control socket: cannot start its thread");
		goto fail;
	}
	s->started = true;
	return 0;
fail:
	ctl_serve_stop(s);
	return -1;
}

void ctl_serve_stop(struct ctl_server *s)
{
	uint64_t one = 1;

	if (s->started) {
		struct timespec ts;

		if (write(s->wake_fd, &one, sizeof(one)) != sizeof(one))
			kd_error("control socket: cannot wake its thread");
		/*
		 * The thread waits for no client; only a command still running
		 * (one that waits for the guest watches the VM's stop) delays it.
		 */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		if (pthread_timedjoin_np(s->thread, NULL, &ts) != 0) {
			kd_error("control socket: a command is still running after 2 s; waiting "
				 "for it");
			pthread_join(s->thread, NULL);
		}
		s->started = false;
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	s->listen_fd = s->wake_fd = -1;
	if (s->path[0])
		unlink(s->path);
	if (s->dir[0])
		rmdir(s->dir);
	s->path[0] = s->dir[0] = 0;
	free(s->conns);
	s->conns = NULL;
}

/* ---- the client ---- */

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		kd_error("ctl: socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		kd_error("ctl: cannot connect to %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/*
 * Reads one reply: 0 and the body in *BODY (ok), 1 and the message in
 * *BODY (error), -1 on a broken reply.
 */
static int read_reply(int fd, char **body)
{
	char head[KD_CTL_MAX_LINE];
	size_t have = 0, want;
	char *b;

	*body = NULL;
	while (have < sizeof(head) - 1) {
		ssize_t n = recv(fd, head + have, 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (head[have++] == '\n')
			break;
	}
	head[have] = 0;
	if (strncmp(head, "error: ", 7) == 0) {
		head[have - 1] = 0;
		*body = strdup(head + 7);
		return 1;
	}
	if (sscanf(head, "ok %zu", &want) != 1 || want > (64u << 20))
		return -1;
	b = malloc(want + 1);
	if (!b)
		return -1;
	for (have = 0; have < want;) {
		ssize_t n = recv(fd, b + have, want - have, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(b);
			return -1;
		}
		have += (size_t)n;
	}
	b[want] = 0;
	*body = b;
	return 0;
}

int ctl_request_raw(const char *path, const char *raw, size_t len, bool half_close, char **body)
{
	int fd = ctl_connect(path), ret;

	*body = NULL;
	if (fd < 0)
		return -1;
	send_all(fd, raw, len);
	if (half_close)
		shutdown(fd, SHUT_WR);
	ret = read_reply(fd, body);
	close(fd);
	return ret;
}

/*
 * The XML of FILE for attach/detach-device, on one line: line breaks and
 * tabs become spaces (XML treats them alike between and inside tags).
 * Never cut: a file over KD_CTL_MAX_FRAGMENT bytes is refused.
 */
static char *read_fragment(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	char *xml = NULL;
	size_t n = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "ctl: cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "ctl: %s is not a regular file", path);
		goto fail;
	}
	xml = malloc(KD_CTL_MAX_FRAGMENT + 2);
	if (!xml) {
		snprintf(err, errlen, "ctl: out of memory");
		goto fail;
	}
	/* Up to one byte more than allowed, to see that there is more. */
	while (n <= KD_CTL_MAX_FRAGMENT) {
		ssize_t r = read(fd, xml + n, KD_CTL_MAX_FRAGMENT + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "ctl: cannot read %s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > KD_CTL_MAX_FRAGMENT) {
		snprintf(err, errlen, "ctl: %s is larger than %d bytes, the limit of a device "
			 "definition", path, KD_CTL_MAX_FRAGMENT);
		goto fail;
	}
	xml[n] = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)xml[i];
		size_t l = ctl_utf8_len((const unsigned char *)xml + i, n - i);

		if (c == '\n' || c == '\r' || c == '\t') {
			xml[i++] = ' ';
			continue;
		}
		if (c < 0x20 || c == 0x7f || l == 0) {
			snprintf(err, errlen, "ctl: %s: byte 0x%02x at offset %zu: a device definition "
				 "is UTF-8 text", path, c, i);
			goto fail;
		}
		i += l;
	}
	close(fd);
	return xml;
fail:
	free(xml);
	if (fd >= 0)
		close(fd);
	return NULL;
}

char *ctl_request_line(int argc, char **argv, char *err, size_t errlen)
{
	char *line = NULL, *xml = NULL;
	size_t len = 0;
	FILE *f;

	if (argc < 1) {
		snprintf(err, errlen, "ctl: no command");
		return NULL;
	}
	/* One argument is one word: a line break would start a second command. */
	for (int i = 0; i < argc; i++)
		for (const char *p = argv[i]; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				snprintf(err, errlen, "ctl: argument %d holds the control character "
					 "0x%02x (a line break would end the command); refused", i + 1,
					 (unsigned char)*p);
				return NULL;
			}
	if (argc == 2 && (!strcmp(argv[0], "attach-device") || !strcmp(argv[0], "detach-device")) &&
	    argv[1][0] != '<') {
		xml = read_fragment(argv[1], err, errlen);
		if (!xml)
			return NULL;
	}
	f = open_memstream(&line, &len);
	if (!f) {
		snprintf(err, errlen, "ctl: out of memory");
		free(xml);
		return NULL;
	}
	if (xml)
		fprintf(f, "%s %s", argv[0], xml);
	else
		for (int i = 0; i < argc; i++)
			fprintf(f, "%s%s", i ? " " : "", argv[i]);
	fputc('\n', f);
	free(xml);
	if (fclose(f) != 0) {
		free(line);
		snprintf(err, errlen, "ctl: out of memory");
		return NULL;
	}
	if (len > KD_CTL_MAX_LINE) {
		snprintf(err, errlen, "ctl: the command is %zu bytes, more than the %d a line may have",
			 len, KD_CTL_MAX_LINE);
		free(line);
		return NULL;
	}
	return line;
}

/* kvm-demo ctl SOCKET COMMAND [ARGS...] */
int ctl_main(int argc, char **argv)
{
	char err[600];
	char *line, *body;
	int ret;

	if (argc < 2) {
		kd_error("usage: kvm-demo ctl SOCKET COMMAND [ARGS...]");
		return 2;
	}
	line = ctl_request_line(argc - 1, argv + 1, err, sizeof(err));
	if (!line) {
		kd_error("%s", err);
		return 2;
	}
	ret = ctl_request_raw(argv[0], line, strlen(line), false, &body);
	free(line);
	if (ret == 0)
		fputs(body, stdout);
	else if (ret == 1)
		kd_error("%s", body);
	else
		kd_error("ctl: no valid reply from %s", argv[0]);
	free(body);
	return ret == 0 ? 0 : 1;
}
