/* SPDX-License-Identifier: MIT */
/*
 * The control socket's commands: what each request does to the VM, run by
 * the server of ctlio.c on its thread, which also runs the non-blocking
 * balloon reclaim when a discard was refused. Also --ctl-script.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
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

#include "core/util.h"
#include "core/vm.h"
#include "mem/mem.h"
#include "devices/vdev.h"
#include "control/vmctl.h"

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
		/* The XML itself (control_parse()): the server opens no file a client names. */
		xml = strndup(cmd->arg, cmd->arg_len);
		if (!xml) {
			snprintf(msg, sizeof(msg), "out of memory");
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

/* The server's handler: one request line in, one whole reply out. */
static char *handle_line(void *opaque, const char *line, size_t len, size_t *reply_len)
{
	struct vm *vm = opaque;
	struct control_cmd cmd;
	struct out o = { 0 };
	char err[512];
	char *reply;

	if (control_parse(line, len, &cmd, err, sizeof(err)) < 0 ||
	    execute(vm, &cmd, &o, err, sizeof(err)) < 0)
		reply = ctl_reply_error(err, reply_len);
	else
		reply = ctl_reply_ok(o.buf ? o.buf : "", o.len, reply_len);
	free(o.buf);
	return reply;
}

static void reclaim_tick(void *opaque)
{
	memops_reclaim(opaque);
}

int ctl_start(struct ctl_server *s, struct vm *vm)
{
	memset(s, 0, sizeof(*s));
	s->handle = handle_line;
	s->tick = reclaim_tick;
	s->opaque = vm;
	if (ctl_serve_start(s) < 0)
		return -1;
	printf("kvm-demo: control socket: %s\n", s->path);
	return 0;
}

void ctl_stop(struct ctl_server *s)
{
	ctl_serve_stop(s);
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
 *   !hog               a client that sends dumpxml over and over and never
 *                      reads, in the background
 *   !trickle           a client that sends a byte every 2 s and never a
 *                      newline, in the background
 *   !hostile-wait      each background client must be disconnected by the
 *                      server, within KD_CTL_IO_TIMEOUT_MS and 3 s
 *   !sigterm           send SIGTERM to kvm-demo, as a user would
 *   # ...              comment
 * Background clients still connected at the end stop with the VM.
 */
#define MAX_HOSTILE	8

struct script_ctx;

struct hostile {
	struct script_ctx *s;
	pthread_t thread;
	bool trickle;
	double started, closed;	/* kd_now(); closed 0: not by the server */
};

struct script_ctx {
	struct vm *vm;
	const char *path;
	const char *sock;
	pthread_t thread;
	unsigned int done, failed;
	struct hostile hostile[MAX_HOSTILE];
	unsigned int nr_hostile, nr_joined;
};

/* Sleeps MS, or less when the VM stops. */
static void script_sleep(struct script_ctx *s, unsigned long ms)
{
	while (ms && !atomic_load(&s->vm->stopping)) {
		unsigned int step = ms < 100 ? (unsigned int)ms : 100;

		kd_sleep_ms(step);
		ms -= step;
	}
}

static void *hostile_thread(void *arg)
{
	struct hostile *h = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_usec = 100000 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h->s->sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		kd_error("ctl: hostile client: cannot connect: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while (!atomic_load(&h->s->vm->stopping)) {
		struct pollfd p = { .fd = fd, .events = POLLRDHUP };

		if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			break;
		if (h->trickle) {
			if (send(fd, "s", 1, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
				break;
			/* 2 s, watching for the server's close and the VM's stop. */
			for (int i = 0; i < 20 && !atomic_load(&h->s->vm->stopping); i++)
				if (poll(&p, 1, 100) > 0 &&
				    (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
					goto closed;
			continue;
		}
		if (send(fd, "dumpxml\n", 8, MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
		    errno != EWOULDBLOCK && errno != EINTR)
			break;
	}
closed:
	if (!atomic_load(&h->s->vm->stopping))
		h->closed = kd_now();
	close(fd);
	return NULL;
}

static int hostile_start(struct script_ctx *s, bool trickle)
{
	struct hostile *h = &s->hostile[s->nr_hostile];

	if (s->nr_hostile == MAX_HOSTILE)
		return -1;
	h->s = s;
	h->trickle = trickle;
	h->started = kd_now();
	h->closed = 0;
	if (pthread_create(&h->thread, NULL, hostile_thread, h) != 0)
		return -1;
	s->nr_hostile++;
	return 0;
}

/* Joins the background clients; with MUST_CLOSE, the server must have dropped each in time. */
static void hostile_join(struct script_ctx *s, bool must_close)
{
	for (; s->nr_joined < s->nr_hostile; s->nr_joined++) {
		struct hostile *h = &s->hostile[s->nr_joined];
		const char *what = h->trickle ? "trickle" : "hog";

		pthread_join(h->thread, NULL);
		if (h->closed) {
			double t = h->closed - h->started;
			bool late = t > KD_CTL_IO_TIMEOUT_MS / 1e3 + 3;

			printf("ctl: %s client %u: disconnected by the server after %.1f s%s\n", what,
			       s->nr_joined, t, late ? ": LATE" : "");
			s->failed += late;
		} else {
			printf("ctl: %s client %u: still connected when the VM stopped%s\n", what,
			       s->nr_joined, must_close ? ": UNEXPECTED" : "");
			s->failed += must_close;
		}
	}
}

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
			script_sleep(s, strtoul(line + 7, NULL, 10));
			continue;
		}
		if (!strcmp(line, "!hog") || !strcmp(line, "!trickle")) {
			printf("ctl> %s\n", line);
			if (hostile_start(s, line[1] == 't') < 0) {
				printf("ctl: cannot start a background client\n");
				s->failed++;
			}
			continue;
		}
		if (!strcmp(line, "!hostile-wait")) {
			hostile_join(s, true);
			continue;
		}
		if (!strcmp(line, "!sigterm")) {
			printf("ctl> %s\n", line);
			kill(getpid(), SIGTERM);
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
	hostile_join(s, false);
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
