/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a unix socket (mode 0600) in a private directory
 * (mode 0700), served by one thread, one connection at a time. Requests
 * are lines (control.h); a bad request gets an error reply and changes
 * nothing. The same thread runs the non-blocking balloon reclaim when a
 * discard was refused. Also the client (kvm-demo ctl) and --ctl-script.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "kvm-demo.h"

/* A growing reply buffer. */
struct out {
	char *buf;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3)))
static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (o->buf && o->len + (size_t)n < o->cap) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = (o->cap + (size_t)n + 1) * 2;
		char *b = realloc(o->buf, cap);

		if (!b)
			return;
		o->buf = b;
		o->cap = cap;
	}
}

static uint64_t proc_status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t v = 0;
	size_t klen = strlen(key);

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			v = strtoull(line + klen + 1, NULL, 10);
	fclose(f);
	return v;
}

uint64_t kd_rss_kib(void)
{
	return proc_status_kib("VmRSS");
}

static void stats_line(struct out *o, FILE *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void stats_line(struct out *o, FILE *f, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (o)
		outf(o, "%s\n", line);
	if (f)
		fprintf(f, "%s\n", line);
}

/* libmmn's counters and kvm-demo's, to a reply and/or a stream. */
static void print_stats(struct vm *vm, FILE *f, struct out *o)
{
	struct kd_counters *c = &vm->counters;
	struct mmn_stats hs = { .size = sizeof(hs) }, gs = { .size = sizeof(gs) };
	struct mmn_uffd_stats us = { .size = sizeof(us) }, sum = { .size = sizeof(sum) };
	uint64_t pauses = atomic_load(&c->pauses);

	mmn_state_stats(vm->host_mm, &hs);
	mmn_state_stats(vm->guest_mm, &gs);
	pthread_mutex_lock(&vm->ops_lock);
	for (unsigned int i = 0; i < vm->nr_regions; i++) {
		if (vm->regions[i].watch && mmn_uffd_watch_stats(vm->regions[i].watch, &us) == 0) {
			sum.events += us.events;
			sum.reported += us.reported;
			sum.bracketed += us.bracketed;
			sum.refused += us.refused;
		}
	}
	pthread_mutex_unlock(&vm->ops_lock);
	stats_line(o, f, "host_mm: invalidations %" PRIu64 " started, %" PRIu64 " ended, %" PRIu64
		   " refused; range subs %" PRIu64 ", subs %" PRIu64, hs.invalidations_started,
		   hs.invalidations_ended, hs.invalidations_refused, hs.range_subs, hs.subs);
	stats_line(o, f, "guest_mm: invalidations %" PRIu64 " started, %" PRIu64 " ended, %" PRIu64
		   " refused; range subs %" PRIu64, gs.invalidations_started,
		   gs.invalidations_ended, gs.invalidations_refused, gs.range_subs);
	stats_line(o, f, "backstop (current watches): events %" PRIu64 ", reported %" PRIu64
		   ", bracketed %" PRIu64 ", refused %" PRIu64, sum.events, sum.reported,
		   sum.bracketed, sum.refused);
	stats_line(o, f, "slots: range callbacks %" PRIu64 ", guest invalidations %" PRIu64
		   ", refusals %" PRIu64 ", reclaim retries %" PRIu64 ", slot updates %" PRIu64,
		   (uint64_t)atomic_load(&c->host_invalidations),
		   (uint64_t)atomic_load(&c->guest_invalidations), (uint64_t)atomic_load(&c->refusals),
		   (uint64_t)atomic_load(&c->reclaim_retries), (uint64_t)atomic_load(&c->slot_updates));
	stats_line(o, f, "vcpus: pauses %" PRIu64 " (mean %.1f us, max %.1f us pause-to-resume), "
		   "protection stalls %" PRIu64 ", stale-slot exits %" PRIu64
		   ", unbracketed changes %" PRIu64, pauses,
		   pauses ? atomic_load(&c->pause_ns_total) / 1e3 / (double)pauses : 0.0,
		   atomic_load(&c->pause_ns_max) / 1e3, (uint64_t)atomic_load(&c->protect_stalls),
		   (uint64_t)atomic_load(&c->stale_exits), (uint64_t)atomic_load(&c->unbracketed));
	stats_line(o, f, "operations: hotplug %" PRIu64 ", unplug %" PRIu64 " (timeouts %" PRIu64
		   "), balloon %" PRIu64 ", remap %" PRIu64 ", protect %" PRIu64 "; guest pages "
		   "verified %" PRIu64, (uint64_t)atomic_load(&c->hotplugs),
		   (uint64_t)atomic_load(&c->unplugs), (uint64_t)atomic_load(&c->unplug_timeouts),
		   (uint64_t)atomic_load(&c->balloon_changes), (uint64_t)atomic_load(&c->remaps),
		   (uint64_t)atomic_load(&c->protects), (uint64_t)atomic_load(&vm->pages_verified));
	if (vm->vdev) {
		char line[512];

		vdev_stats(vm, line, sizeof(line));
		stats_line(o, f, "%s", line);
		vdev_shadow_stats(vm, line, sizeof(line));
		stats_line(o, f, "%s", line);
	}
}

void kd_stats_print(struct vm *vm, FILE *f)
{
	print_stats(vm, f, NULL);
}

/* attach/detach: inline XML, or a file read here. */
static char *device_xml(const struct control_cmd *cmd, char *err, size_t errlen)
{
	char *arg = strndup(cmd->arg, cmd->arg_len);
	FILE *f;
	char *xml = NULL;
	size_t n = 0;

	if (!arg || arg[0] == '<')
		return arg;
	f = fopen(arg, "r");
	if (!f) {
		snprintf(err, errlen, "cannot read %s: %s", arg, strerror(errno));
		free(arg);
		return NULL;
	}
	xml = calloc(1, KD_CTL_MAX_LINE + 1);
	if (xml)
		n = fread(xml, 1, KD_CTL_MAX_LINE, f);
	fclose(f);
	if (xml && n == KD_CTL_MAX_LINE) {
		snprintf(err, errlen, "%s: larger than %d bytes", arg, KD_CTL_MAX_LINE);
		free(xml);
		xml = NULL;
	}
	free(arg);
	return xml;
}

/* Runs CMD; returns 0 with the reply body in O, or -1 with ERR set. */
static int execute(struct vm *vm, const struct control_cmd *cmd, struct out *o, char *err,
		   size_t errlen)
{
	char msg[512] = "";
	char *xml;
	int ret = 0;

	switch (cmd->op) {
	case CTL_SETMEM:
		ret = memops_setmem(vm, cmd->value, msg, sizeof(msg));
		break;
	case CTL_ATTACH_DEVICE:
	case CTL_DETACH_DEVICE:
		xml = device_xml(cmd, msg, sizeof(msg));
		if (!xml) {
			ret = -1;
			break;
		}
		ret = cmd->op == CTL_ATTACH_DEVICE ? memops_hotplug_xml(vm, xml, msg, sizeof(msg))
						   : memops_unplug_xml(vm, xml, msg, sizeof(msg));
		free(xml);
		break;
	case CTL_REMAP: {
		double t0 = kd_now();

		ret = memops_remap(vm, cmd->slot, 0, msg, sizeof(msg));
		if (ret == 0)
			outf(o, "remap took %.1f us\n", (kd_now() - t0) * 1e6);
		break;
	}
	case CTL_PROTECT:
		ret = memops_protect(vm, cmd->slot, cmd->on, msg, sizeof(msg));
		break;
	case CTL_DOMMEMSTAT: {
		uint64_t total, balloon;

		pthread_mutex_lock(&vm->ops_lock);
		total = vm->cfg->boot_ram + vm->dimm_bytes;
		balloon = vm->balloon_size;
		outf(o, "actual %" PRIu64 "\n", (total - vm->balloon_target) >> 10);
		pthread_mutex_unlock(&vm->ops_lock);
		outf(o, "maximum %" PRIu64 "\n", vm->cfg->has_max_memory ? vm->cfg->max_memory >> 10
									 : total >> 10);
		outf(o, "balloon_discarded %" PRIu64 "\n", balloon >> 10);
		outf(o, "rss %" PRIu64 "\n", kd_rss_kib());
		outf(o, "rss_shmem %" PRIu64 "\n", proc_status_kib("RssShmem"));
		outf(o, "rss_anon %" PRIu64 "\n", proc_status_kib("RssAnon"));
		break;
	}
	case CTL_DUMPXML:
		pthread_mutex_lock(&vm->ops_lock);
		xml = memops_dumpxml(vm);
		pthread_mutex_unlock(&vm->ops_lock);
		if (!xml) {
			snprintf(msg, sizeof(msg), "dumpxml: out of memory");
			ret = -1;
			break;
		}
		outf(o, "%s", xml);
		free(xml);
		break;
	case CTL_STATS:
		print_stats(vm, NULL, o);
		break;
	case CTL_SHUTDOWN:
		vm_request_stop(vm, VM_STOP_CONTROL, 0);
		snprintf(msg, sizeof(msg), "shutting down");
		break;
	}
	if (ret)
		snprintf(err, errlen, "%s", msg[0] ? msg : "failed");
	else if (msg[0])
		outf(o, "%s\n", msg);
	return ret;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void reply_error(int fd, const char *msg)
{
	char line[600];
	int n = snprintf(line, sizeof(line), "error: %s\n", msg);

	send_all(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void handle_line(struct vm *vm, int fd, const char *line, size_t len)
{
	struct control_cmd cmd;
	struct out o = { 0 };
	char err[512];
	char head[32];

	if (control_parse(line, len, &cmd, err, sizeof(err)) < 0 ||
	    execute(vm, &cmd, &o, err, sizeof(err)) < 0) {
		reply_error(fd, err);
	} else {
		int n = snprintf(head, sizeof(head), "ok %zu\n", o.len);

		send_all(fd, head, (size_t)n);
		send_all(fd, o.buf ? o.buf : "", o.len);
	}
	free(o.buf);
}

/* One connection: lines until EOF; errors never touch the VM. */
static void handle_conn(struct vm *vm, int fd)
{
	static char buf[KD_CTL_MAX_LINE];
	struct timeval tv = { .tv_sec = 5 };
	size_t have = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		char *nl = memchr(buf, '\n', have);

		if (nl) {
			size_t len = (size_t)(nl - buf);

			handle_line(vm, fd, buf, len);
			memmove(buf, nl + 1, have - len - 1);
			have -= len + 1;
			continue;
		}
		if (have == sizeof(buf)) {
			reply_error(fd, "command line longer than 8191 bytes; connection closed");
			return;
		}
		ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);

		if (n == 0) {
			if (have)
				reply_error(fd, "incomplete command: the connection was closed "
					    "before a newline");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			reply_error(fd, errno == EAGAIN || errno == EWOULDBLOCK
					? "no complete command within 5 s; connection closed"
					: strerror(errno));
			return;
		}
		have += (size_t)n;
	}
}

static void *server_thread(void *arg)
{
	struct ctl_server *s = arg;

	pthread_setname_np(pthread_self(), "control");
	for (;;) {
		struct pollfd fds[2] = {
			{ .fd = s->listen_fd, .events = POLLIN },
			{ .fd = s->wake_fd, .events = POLLIN },
		};
		/* While a discard is pending, retry the reclaim every 100 ms. */
		int n = poll(fds, 2, 100);

		if (n < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (n == 0) {
			memops_reclaim(s->vm);
			continue;
		}
		if (fds[0].revents & POLLIN) {
			int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				handle_conn(s->vm, fd);
				close(fd);
			}
		}
	}
	return NULL;
}

int ctl_start(struct ctl_server *s, struct vm *vm)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *tmp = getenv("TMPDIR");

	memset(s, 0, sizeof(*s));
	s->vm = vm;
	s->listen_fd = s->wake_fd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s/kvm-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(s->dir)) {		/* mode 0700: private */
		kd_error("control socket: mkdtemp %s: %s", s->dir, strerror(errno));
		s->dir[0] = 0;
		return -1;
	}
	snprintf(s->path, sizeof(s->path), "%s/control", s->dir);
	if (strlen(s->path) >= sizeof(sa.sun_path)) {
		kd_error("control socket: path %s too long", s->path);
		goto fail;
	}
	strcpy(sa.sun_path, s->path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(s->path, 0600) < 0 || listen(s->listen_fd, 4) < 0) {
		kd_error("control socket %s: %s", s->path, strerror(errno));
		goto fail;
	}
	s->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (s->wake_fd < 0 || pthread_create(&s->thread, NULL, server_thread, s) != 0) {
		kd_error("control socket: cannot start its thread");
		goto fail;
	}
	s->started = true;
	printf("kvm-demo: control socket: %s\n", s->path);
	return 0;
fail:
	ctl_stop(s);
	return -1;
}

void ctl_stop(struct ctl_server *s)
{
	uint64_t one = 1;

	if (s->started) {
		if (write(s->wake_fd, &one, sizeof(one)) != sizeof(one))
			kd_error("control socket: cannot wake its thread");
		pthread_join(s->thread, NULL);
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
}

/* ---- the client ---- */

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
	char head[600];
	size_t have = 0, want;
	char *b;

	*body = NULL;
	while (have < sizeof(head) - 1) {
		ssize_t n = recv(fd, head + have, 1, 0);

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

/* Sends RAW (LEN bytes) as is, optionally half-closes, reads one reply. */
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

/* The argument of attach/detach-device names a file: send its XML inline. */
static char *inline_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *xml;
	size_t n;

	if (!f)
		return NULL;
	xml = calloc(1, KD_CTL_MAX_LINE);
	n = xml ? fread(xml, 1, KD_CTL_MAX_LINE - 64, f) : 0;
	fclose(f);
	if (!xml)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (xml[i] == '\n' || xml[i] == '\r' || xml[i] == '\t')
			xml[i] = ' ';
	return xml;
}

/* Builds the request line for ARGV; NULL after an error message. */
static char *request_line(int argc, char **argv)
{
	struct out o = { 0 };

	if (argc >= 2 && (!strcmp(argv[0], "attach-device") || !strcmp(argv[0], "detach-device")) &&
	    argv[1][0] != '<') {
		char *xml = inline_file(argv[1]);

		if (!xml) {
			kd_error("ctl: cannot read %s: %s", argv[1], strerror(errno));
			return NULL;
		}
		outf(&o, "%s %s\n", argv[0], xml);
		free(xml);
		return o.buf;
	}
	for (int i = 0; i < argc; i++)
		outf(&o, "%s%s", i ? " " : "", argv[i]);
	outf(&o, "\n");
	return o.buf;
}

/* kvm-demo ctl SOCKET COMMAND [ARGS...] */
int ctl_main(int argc, char **argv)
{
	char *line, *body;
	int ret;

	if (argc < 2) {
		kd_error("usage: kvm-demo ctl SOCKET COMMAND [ARGS...]");
		return KD_EXIT_USAGE;
	}
	line = request_line(argc - 1, argv + 1);
	if (!line)
		return KD_EXIT_USAGE;
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

/*
 * --ctl-script FILE: a control session from inside the process, through the
 * socket, for tests that cannot run a second program next to the VM. Lines:
 *   COMMAND            must succeed
 *   !error COMMAND     must fail with an error reply
 *   !garbage           binary bytes; must get an error reply
 *   !oversize          a 10000-byte line; must get an error reply
 *   !halfclose TEXT    TEXT without a newline, then shutdown(SHUT_WR)
 *   !sleep MS          wait
 *   !client ARGS       run 'kvm-demo ctl SOCKET ARGS' (the real client, a
 *                      child process); it must exit 0
 *   !client-error ARGS the same; it must exit non-zero
 *   !expect TEXT       the previous reply must contain TEXT
 *   # ...              comment
 */
struct script_ctx {
	struct vm *vm;
	const char *path;
	const char *sock;
	pthread_t thread;
	unsigned int done, failed;
};

static void *script_thread(void *arg)
{
	struct script_ctx *s = arg;
	FILE *f = fopen(s->path, "r");
	char line[KD_CTL_MAX_LINE];
	char *last = NULL;

	if (!f) {
		kd_error("--ctl-script %s: %s", s->path, strerror(errno));
		s->failed++;
		vm_request_stop(s->vm, VM_STOP_ERROR, KD_EXIT_HOST);
		return NULL;
	}
	while (fgets(line, sizeof(line), f) && !atomic_load(&s->vm->stopping)) {
		size_t len = strcspn(line, "\n");
		char *body = NULL;
		int want_error = 0, ret;

		line[len] = 0;
		if (len == 0 || line[0] == '#')
			continue;
		if (!strncmp(line, "!sleep ", 7)) {
			usleep((useconds_t)strtoul(line + 7, NULL, 10) * 1000);
			continue;
		}
		if (!strncmp(line, "!expect ", 8)) {
			bool ok = last && strstr(last, line + 8);

			printf("ctl: expect '%s': %s\n", line + 8, ok ? "ok" : "MISSING");
			s->failed += !ok;
			continue;
		}
		printf("ctl> %s\n", line);
		if (!strncmp(line, "!client ", 8) || !strncmp(line, "!client-error ", 14)) {
			bool want_fail = line[7] == '-';
			char *cmd = NULL;
			char out[1024];
			FILE *p;
			int st;

			char self[512];
			ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

			/* Resolved here: in the shell popen() starts, /proc/self is the shell. */
			if (n <= 0)
				break;
			self[n] = 0;
			if (asprintf(&cmd, "'%s' ctl '%s' %s 2>&1", self, s->sock,
				     line + (want_fail ? 14 : 8)) < 0)
				break;
			p = popen(cmd, "r");
			free(cmd);
			if (!p) {
				s->failed++;
				continue;
			}
			while (fgets(out, sizeof(out), p))
				printf("ctl< %s", out);
			st = pclose(p);
			s->done++;
			if ((st != 0) != want_fail) {
				printf("ctl: UNEXPECTED client exit status %d\n", st);
				s->failed++;
			}
			continue;
		}
		if (!strcmp(line, "!garbage")) {
			static const char junk[] = "\x01\x02\xff\xfe\x80 junk\x7f\n";

			ret = ctl_request_raw(s->sock, junk, sizeof(junk) - 1, false, &body);
			want_error = 1;
		} else if (!strcmp(line, "!oversize")) {
			char *big = malloc(10001);

			memset(big, 'x', 10000);
			big[10000] = '\n';
			ret = ctl_request_raw(s->sock, big, 10001, false, &body);
			free(big);
			want_error = 1;
		} else if (!strncmp(line, "!halfclose ", 11)) {
			ret = ctl_request_raw(s->sock, line + 11, strlen(line + 11), true, &body);
			want_error = 1;
		} else {
			const char *cmd = line;

			if (!strncmp(line, "!error ", 7)) {
				cmd = line + 7;
				want_error = 1;
			}
			char *req = NULL;

			if (asprintf(&req, "%s\n", cmd) < 0)
				break;
			ret = ctl_request_raw(s->sock, req, strlen(req), false, &body);
			free(req);
		}
		s->done++;
		if (body) {
			char *p = body, *nl;

			while (*p) {
				nl = strchr(p, '\n');
				printf("ctl< %s%.*s\n", ret == 1 ? "error: " : "",
				       (int)(nl ? nl - p : (ptrdiff_t)strlen(p)), p);
				if (!nl)
					break;
				p = nl + 1;
			}
		}
		if (ret < 0 || ret != want_error) {
			printf("ctl: UNEXPECTED %s\n", ret < 0 ? "broken reply" :
			       ret ? "error reply" : "success");
			s->failed++;
		}
		free(last);
		last = body;
	}
	free(last);
	fclose(f);
	printf("kvm-demo: control script: %u requests, %u unexpected results\n", s->done, s->failed);
	return NULL;
}

static struct script_ctx script;

int ctl_script_start(struct vm *vm, struct ctl_server *s, const char *path)
{
	script.vm = vm;
	script.path = path;
	script.sock = s->path;
	if (pthread_create(&script.thread, NULL, script_thread, &script) != 0) {
		kd_error("--ctl-script: cannot start its thread");
		return -1;
	}
	return 0;
}

/* Joins the script thread; returns its failure count. */
unsigned int ctl_script_join(void)
{
	pthread_join(script.thread, NULL);
	return script.failed;
}
