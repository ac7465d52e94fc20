/* SPDX-License-Identifier: MIT */
/*
 * check-kvm-demo-control: kvm-demo's control command parser, its client's
 * request lines and its socket server with hostile clients; no KVM needed.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control/control.h"

/* The client and server report errors through kvm-demo's kd_error(). */
void kd_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int parse(const char *line, struct control_cmd *cmd, char *err)
{
	return control_parse(line, strlen(line), cmd, err, 256);
}

START_TEST(test_good)
{
	struct control_cmd c;
	char err[256];

	ck_assert_int_eq(parse("setmem 1024", &c, err), 0);
	ck_assert_int_eq(c.op, CTL_SETMEM);
	ck_assert_uint_eq(c.value, 1024u * 1024);
	ck_assert_int_eq(parse("  setmem\t96M  ", &c, err), 0);
	ck_assert_uint_eq(c.value, 96ull << 20);
	ck_assert_int_eq(parse("setmem 1G", &c, err), 0);
	ck_assert_uint_eq(c.value, 1ull << 30);
	ck_assert_int_eq(parse("setmem 4096b", &c, err), 0);
	ck_assert_uint_eq(c.value, 4096);
	ck_assert_int_eq(parse("protect 3 on", &c, err), 0);
	ck_assert_int_eq(c.op, CTL_PROTECT);
	ck_assert_uint_eq(c.slot, 3);
	ck_assert(c.on);
	ck_assert_int_eq(parse("protect 0 off", &c, err), 0);
	ck_assert(!c.on);
	ck_assert_int_eq(parse("remap 12", &c, err), 0);
	ck_assert_int_eq(c.op, CTL_REMAP);
	ck_assert_uint_eq(c.slot, 12);
	ck_assert_int_eq(parse("attach-device <memory model='dimm'> x </memory>  ", &c, err), 0);
	ck_assert_int_eq(c.op, CTL_ATTACH_DEVICE);
	ck_assert_uint_eq(c.arg_len, strlen("<memory model='dimm'> x </memory>"));
	ck_assert(memcmp(c.arg, "<memory", 7) == 0);
	ck_assert_int_eq(parse("detach-device <memory/>", &c, err), 0);
	ck_assert_int_eq(c.op, CTL_DETACH_DEVICE);
	for (const char *const *s = (const char *const[]){ "dommemstat", "dumpxml", "stats",
							   "shutdown", NULL }; *s; s++)
		ck_assert_msg(parse(*s, &c, err) == 0, "%s: %s", *s, err);
}
END_TEST

/* Each bad line fails with a message that names the problem. */
static const struct {
	const char *line;
	const char *msg;
} bad[] = {
	{ "", "empty command" },
	{ "   \t ", "empty command" },
	{ "frobnicate", "unknown command 'frobnicate'" },
	{ "SETMEM 1", "unknown command" },
	{ "setmem", "usage: setmem" },
	{ "setmem 1 2", "usage: setmem" },
	{ "setmem lots", "'lots' is not a size" },
	{ "setmem 0", "is not a size" },
	{ "setmem -5", "is not a size" },
	{ "setmem 5X", "is not a size" },
	{ "setmem 99999999999999999999", "is not a size" },
	{ "setmem 18014398509481984G", "is not a size" },
	{ "protect 1", "usage: protect" },
	{ "protect 1 maybe", "expected on or off" },
	{ "protect x on", "not a slot number" },
	{ "protect 1 on extra", "usage: protect" },
	{ "remap", "usage: remap" },
	{ "remap 1234", "not a slot number" },
	{ "remap -1", "not a slot number" },
	{ "attach-device", "usage: attach-device" },
	{ "detach-device   ", "usage: detach-device" },
	{ "dumpxml now", "usage: dumpxml" },
	{ "stats a b c d e", "usage: stats" },
	{ "shutdown -h", "usage: shutdown" },
	{ "stats\r", "byte 0x0d" },
	{ "st\x01ts", "byte 0x01 at offset 2" },
	{ "setmem \xff", "byte 0xff" },
	/* The server opens no file a client names: the client sends the XML. */
	{ "detach-device /tmp/d.xml", "the argument is the XML itself" },
	{ "attach-device /dev/zero", "the argument is the XML itself" },
	{ "setmem 18446744073709551616b", "is not a size" },
	{ "setmem 17179869184G", "is not a size" },
	/* UTF-8 in a device's XML only, and well-formed. */
	{ "stats \xc3\xa9", "byte 0xc3 at offset 6: commands are printable ASCII" },
	{ "attach-d\xc3\xa9vice <m/>", "byte 0xc3 at offset 8" },
	{ "attach-device <m>\xff</m>", "byte 0xff at offset 17: the XML is not UTF-8" },
	{ "attach-device <m>\xc0\x80</m>", "byte 0xc0 at offset 17: the XML is not UTF-8" },
	{ "attach-device <m>\xed\xa0\x80</m>", "byte 0xed at offset 17: the XML is not UTF-8" },
	{ "attach-device <m>\xf4\x90\x80\x80</m>", "the XML is not UTF-8" },
	{ "attach-device <m>\xe2\x82</m>", "the XML is not UTF-8" },
	{ "attach-device <m>\xe2\x82", "the XML is not UTF-8" },
	{ "attach-device <m>\x01</m>", "byte 0x01 at offset 17" },
};

START_TEST(test_bad)
{
	struct control_cmd c;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		ck_assert_msg(parse(bad[i].line, &c, err) == -1, "'%s' was accepted", bad[i].line);
		ck_assert_msg(strstr(err, bad[i].msg), "'%s': got '%s', expected '%s'",
			      bad[i].line, err, bad[i].msg);
	}
}
END_TEST

START_TEST(test_embedded_nul_and_oversize)
{
	struct control_cmd c;
	char err[256];
	char *big = malloc(KD_CTL_MAX_LINE + 1);

	ck_assert_int_eq(control_parse("stats\0x", 7, &c, err, sizeof(err)), -1);
	ck_assert(strstr(err, "byte 0x00 at offset 5"));
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', KD_CTL_MAX_LINE);
	ck_assert_int_eq(control_parse(big, KD_CTL_MAX_LINE, &c, err, sizeof(err)), -1);
	ck_assert(strstr(err, "longer than"));
	ck_assert_int_eq(control_parse(NULL, 0, &c, err, sizeof(err)), -1);
	/* A tiny error buffer still gets a terminated (truncated) message. */
	ck_assert_int_eq(control_parse("nope", 4, &c, err, 5), -1);
	ck_assert_uint_eq(strlen(err), 4);
	free(big);
}
END_TEST

/* Every size up to 2^64 - 1 bytes is one; one more is not. */
START_TEST(test_size_boundaries)
{
	static const struct {
		const char *line;
		uint64_t bytes;
	} good[] = {
		{ "setmem 18446744073709551615b", UINT64_MAX },
		{ "setmem 18446744073709551610b", UINT64_MAX - 5 },
		{ "setmem 18446744073709551609bytes", UINT64_MAX - 6 },
		{ "setmem 18014398509481983K", UINT64_MAX - 1023 },
		{ "setmem 17592186044415M", UINT64_MAX - (1ull << 20) + 1 },
		{ "setmem 17179869183G", UINT64_MAX - (1ull << 30) + 1 },
		{ "setmem 1844674407370955161b", 1844674407370955161ull },
	};
	struct control_cmd c;
	char err[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(parse(good[i].line, &c, err) == 0, "'%s': %s", good[i].line, err);
		ck_assert_msg(c.value == good[i].bytes, "'%s': %llu bytes", good[i].line,
			      (unsigned long long)c.value);
	}
}
END_TEST

START_TEST(test_xml_utf8)
{
	const char *line = "attach-device <memory model='dimm'><!-- \xc3\xa9t\xc3\xa9 \xe2\x82\xac "
			   "\xf0\x9f\x90\xa7 --><target/></memory>";
	struct control_cmd c;
	char err[256];

	ck_assert_msg(parse(line, &c, err) == 0, "%s", err);
	ck_assert_int_eq(c.op, CTL_ATTACH_DEVICE);
	ck_assert_uint_eq(c.arg_len, strlen(line) - strlen("attach-device "));
}
END_TEST

/* One argument is one word: a line break would smuggle in a second command. */
START_TEST(test_client_refuses_control_characters)
{
	char err[256];
	char *line;

	line = ctl_request_line(1, (char *[]){ "stats\nshutdown" }, err, sizeof(err));
	ck_assert_ptr_null(line);
	ck_assert_msg(strstr(err, "argument 1 holds the control character 0x0a"), "%s", err);
	line = ctl_request_line(2, (char *[]){ "setmem", "96M\rshutdown" }, err, sizeof(err));
	ck_assert_ptr_null(line);
	ck_assert_msg(strstr(err, "argument 2 holds the control character 0x0d"), "%s", err);
	line = ctl_request_line(2, (char *[]){ "setmem", "96M" }, err, sizeof(err));
	ck_assert_ptr_nonnull(line);
	ck_assert_str_eq(line, "setmem 96M\n");
	free(line);
}
END_TEST

static char scratch[64];

static void scratch_file(const char *name, const char *text, size_t len, char *path)
{
	FILE *f;

	sprintf(path, "%s/%s", scratch, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* FILE: any UTF-8 fragment up to the limit, whole; larger or odd files refused by name. */
START_TEST(test_client_fragment)
{
	static const char head[] = "<memory model='dimm'>\n<!-- r\xc3\xa9serve \xe2\x82\xac -->\n",
			  tail[] = "<target><size unit='MiB'>8</size><node>0</node></target>\n</memory>\n";
	char *text = malloc(KD_CTL_MAX_FRAGMENT + 2), path[128], err[512];
	char *line;
	size_t len;

	ck_assert_ptr_nonnull(mkdtemp(strcpy(scratch, "/tmp/check-kvm-demo-control.XXXXXX")));
	ck_assert_ptr_nonnull(text);
	/* Exactly the limit: head, padding inside the comment's reach, tail. */
	len = KD_CTL_MAX_FRAGMENT;
	memset(text, ' ', len);
	memcpy(text, head, strlen(head));
	memcpy(text + len - strlen(tail), tail, strlen(tail));
	scratch_file("limit.xml", text, len, path);
	line = ctl_request_line(2, (char *[]){ "attach-device", path }, err, sizeof(err));
	ck_assert_msg(line, "%s", err);
	ck_assert_uint_eq(strlen(line), strlen("attach-device ") + len + 1);
	ck_assert(strstr(line, "r\xc3\xa9serve \xe2\x82\xac"));
	ck_assert(strstr(line, "</memory> \n"));
	/* What the client sends, the parser takes. */
	struct control_cmd c;

	ck_assert_msg(control_parse(line, strlen(line) - 1, &c, err, sizeof(err)) == 0, "%s", err);
	free(line);
	/* One byte more: refused, naming the file and the limit. */
	text[len] = '\n';
	scratch_file("over.xml", text, len + 1, path);
	ck_assert_ptr_null(ctl_request_line(2, (char *[]){ "attach-device", path }, err, sizeof(err)));
	ck_assert_msg(strstr(err, path) && strstr(err, "larger than 8176 bytes"), "%s", err);
	/* Not UTF-8. */
	scratch_file("latin1.xml", "<memory><!-- r\xe9serve --></memory>", 32, path);
	ck_assert_ptr_null(ctl_request_line(2, (char *[]){ "detach-device", path }, err, sizeof(err)));
	ck_assert_msg(strstr(err, "byte 0xe9 at offset 14"), "%s", err);
	/* A FIFO would block an open() without O_NONBLOCK; a device never ends. */
	sprintf(path, "%s/fifo", scratch);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_ptr_null(ctl_request_line(2, (char *[]){ "attach-device", path }, err, sizeof(err)));
	ck_assert_msg(strstr(err, "not a regular file"), "%s", err);
	ck_assert_ptr_null(ctl_request_line(2, (char *[]){ "attach-device", "/dev/zero" }, err,
					    sizeof(err)));
	ck_assert_msg(strstr(err, "/dev/zero is not a regular file"), "%s", err);
	free(text);
	for (const char *n = "limit.xml\0over.xml\0latin1.xml\0fifo\0"; *n; n += strlen(n) + 1) {
		sprintf(path, "%s/%s", scratch, n);
		unlink(path);
	}
	rmdir(scratch);
}
END_TEST

/* ---- the server against hostile clients ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A fake VM: dumpxml answers 64 KiB, so that a client that never reads fills its socket. */
static char *fake_handle(void *opaque, const char *line, size_t len, size_t *reply_len)
{
	static char big[64 << 10];
	struct control_cmd c;
	char err[256];

	(void)opaque;
	if (control_parse(line, len, &c, err, sizeof(err)) < 0)
		return ctl_reply_error(err, reply_len);
	if (c.op == CTL_DUMPXML) {
		memset(big, 'x', sizeof(big));
		return ctl_reply_ok(big, sizeof(big), reply_len);
	}
	return ctl_reply_ok("fine\n", 5, reply_len);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

struct hostile {
	const char *path;
	bool trickle;
	pthread_t thread;
	volatile bool *quit;
	double started, closed;	/* closed 0: still connected when told to quit */
	char failure[128];
};

static bool peer_closed(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return poll(&p, 1, ms) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Sends dumpxml over and over and never reads, or a byte every 300 ms and never a newline. */
static void *hostile_thread(void *arg)
{
	struct hostile *h = arg;
	struct timeval tv = { .tv_usec = 50000 };
	int fd = connect_to(h->path);

	h->started = now_s();
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		snprintf(h->failure, sizeof(h->failure), "connect: %s", strerror(errno));
		return NULL;
	}
	while (!*h->quit) {
		if (peer_closed(fd, 0))
			break;
		if (h->trickle) {
			if (send(fd, "s", 1, MSG_NOSIGNAL) < 0 || peer_closed(fd, 300))
				break;
		} else if (send(fd, "dumpxml\n", 8, MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
			   errno != EWOULDBLOCK) {
			break;
		}
	}
	if (!*h->quit)
		h->closed = now_s();
	close(fd);
	return NULL;
}

/* A well-behaved request; returns how long it took, or -1. */
static double timed_request(const char *path, const char *req, char *failure, size_t flen)
{
	double t0 = now_s();
	char *body = NULL;
	int ret = ctl_request_raw(path, req, strlen(req), false, &body);

	if (ret != 0)
		snprintf(failure, flen, "'%s' got %d: %s", req, ret, body ? body : "");
	free(body);
	return ret == 0 ? now_s() - t0 : -1;
}

START_TEST(test_server_hostile_clients)
{
	struct ctl_server s = { .handle = fake_handle, .io_timeout_ms = 1000 };
	struct hostile h[4];
	volatile bool quit = false;
	char failure[256] = "";
	double t, worst = 0;

	ck_assert_int_eq(ctl_serve_start(&s), 0);
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hostile){ .path = s.path, .trickle = i & 1, .quit = &quit };
		ck_assert_int_eq(pthread_create(&h[i].thread, NULL, hostile_thread, &h[i]), 0);
	}
	/* Others are served at once all along. */
	for (int i = 0; i < 20; i++) {
		t = timed_request(s.path, i & 1 ? "stats\n" : "dumpxml\n", failure, sizeof(failure));
		ck_assert_msg(t >= 0, "%s", failure);
		if (t > worst)
			worst = t;
		usleep(100000);
	}
	printf("check-kvm-demo-control: slowest request among hostile clients: %.3f s\n", worst);
	ck_assert_msg(worst < 0.5, "a request took %.3f s", worst);
	for (int i = 0; i < 4; i++)
		pthread_join(h[i].thread, NULL);
	/* Each hostile client was dropped after the I/O timeout (1 s), not much later. */
	for (int i = 0; i < 4; i++) {
		ck_assert_msg(!h[i].failure[0], "client %d: %s", i, h[i].failure);
		ck_assert_msg(h[i].closed > 0, "client %d never disconnected", i);
		printf("check-kvm-demo-control: %s client dropped after %.2f s\n",
		       h[i].trickle ? "trickling" : "non-reading", h[i].closed - h[i].started);
		ck_assert_msg(h[i].closed - h[i].started < 2.5, "client %d dropped after %.2f s", i,
			      h[i].closed - h[i].started);
	}
	ctl_serve_stop(&s);
	ck_assert_uint_ge(s.nr_timeouts, 4);
}
END_TEST

/* The stop does not wait for any client, whatever they do. */
START_TEST(test_server_stop_latency)
{
	struct ctl_server s = { .handle = fake_handle };
	struct hostile h[6];
	volatile bool quit = false;
	char failure[256] = "";
	double t0, t;

	ck_assert_int_eq(ctl_serve_start(&s), 0);
	for (int i = 0; i < 6; i++) {
		h[i] = (struct hostile){ .path = s.path, .trickle = i & 1, .quit = &quit };
		ck_assert_int_eq(pthread_create(&h[i].thread, NULL, hostile_thread, &h[i]), 0);
	}
	/* Served while the hostile clients are connected: they hold no one up. */
	ck_assert_msg(timed_request(s.path, "stats\n", failure, sizeof(failure)) >= 0, "%s",
		      failure);
	usleep(300000);
	t0 = now_s();
	ctl_serve_stop(&s);
	t = now_s() - t0;
	printf("check-kvm-demo-control: stop with 6 hostile clients took %.3f s\n", t);
	ck_assert_msg(t < 0.5, "the stop took %.3f s", t);
	/* No quit: the stop closed every connection, each client sees it. */
	for (int i = 0; i < 6; i++) {
		pthread_join(h[i].thread, NULL);
		ck_assert_msg(!h[i].failure[0], "client %d: %s", i, h[i].failure);
		/* The stop closed them, before the 5 s timeout. */
		ck_assert_msg(h[i].closed > 0 && h[i].closed - t0 < 1, "client %d not closed", i);
	}
}
END_TEST

/* Bad input gets an error reply, then the connection is closed. */
START_TEST(test_server_bad_input)
{
	struct ctl_server s = { .handle = fake_handle };
	char *big = malloc(10001), *body = NULL;

	ck_assert_int_eq(ctl_serve_start(&s), 0);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 10000);
	big[10000] = '\n';
	ck_assert_int_eq(ctl_request_raw(s.path, big, 10001, false, &body), 1);
	ck_assert_msg(strstr(body, "command line longer than 8191 bytes"), "%s", body);
	free(body);
	ck_assert_int_eq(ctl_request_raw(s.path, "stats", 5, true, &body), 1);
	ck_assert_msg(strstr(body, "incomplete command"), "%s", body);
	free(body);
	ck_assert_int_eq(ctl_request_raw(s.path, "st\x01ts\n", 6, false, &body), 1);
	ck_assert_msg(strstr(body, "byte 0x01 at offset 2"), "%s", body);
	free(body);
	/* Two commands in one write: two replies, in order. */
	ck_assert_int_eq(ctl_request_raw(s.path, "stats\nstats\n", 12, false, &body), 0);
	ck_assert_str_eq(body, "fine\n");
	free(body);
	ctl_serve_stop(&s);
	free(big);
}
END_TEST

/* More clients than the server serves: the extra one is told so at once. */
START_TEST(test_server_too_many_clients)
{
	struct ctl_server s = { .handle = fake_handle };
	int fds[KD_CTL_MAX_CLIENTS];
	char *body = NULL, failure[256] = "";

	ck_assert_int_eq(ctl_serve_start(&s), 0);
	for (int i = 0; i < KD_CTL_MAX_CLIENTS; i++) {
		fds[i] = connect_to(s.path);
		ck_assert_int_ge(fds[i], 0);
	}
	/* Every idle connection has been accepted once a request of theirs is answered. */
	ck_assert_int_eq(send(fds[0], "stats\n", 6, MSG_NOSIGNAL), 6);
	ck_assert(!peer_closed(fds[0], 200));
	ck_assert_int_eq(ctl_request_raw(s.path, "stats\n", 6, false, &body), 1);
	ck_assert_msg(strstr(body, "8 clients already connected"), "%s", body);
	free(body);
	for (int i = 0; i < KD_CTL_MAX_CLIENTS; i++)
		close(fds[i]);
	/* Served again once they are gone. */
	for (int i = 0; i < 50 && timed_request(s.path, "stats\n", failure, sizeof(failure)) < 0; i++)
		usleep(20000);
	ck_assert_msg(timed_request(s.path, "stats\n", failure, sizeof(failure)) >= 0, "%s",
		      failure);
	ctl_serve_stop(&s);
	ck_assert_uint_ge(s.nr_busy, 1);
}
END_TEST

/*
 * Out of descriptors, accept() fails while the connection stays queued: the
 * server must not spin on it, and serves the client once descriptors free up.
 */
START_TEST(test_server_out_of_descriptors)
{
	struct ctl_server s = { .handle = fake_handle };
	struct rlimit old, low;
	struct timespec c0, c1;
	clockid_t cpu;
	char failure[256] = "";
	int fds[64], nfds = 0, client;
	double used_ms;

	ck_assert_int_eq(ctl_serve_start(&s), 0);
	ck_assert_int_eq(pthread_getcpuclockid(s.thread, &cpu), 0);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	client = connect_to(s.path);
	ck_assert_int_ge(client, 0);
	/* Take every descriptor left under a low limit, so accept() gets EMFILE. */
	low = old;
	low.rlim_cur = (rlim_t)client + 16;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nfds < 64 && (fds[nfds] = dup(client)) >= 0)
		nfds++;
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_eq(send(client, "stats\n", 6, MSG_NOSIGNAL), 6);

	ck_assert_int_eq(clock_gettime(cpu, &c0), 0);
	usleep(500000);		/* a window to measure the server's CPU time in */
	ck_assert_int_eq(clock_gettime(cpu, &c1), 0);
	used_ms = (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;

	while (nfds > 0)
		close(fds[--nfds]);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* The queued client is accepted now and its request answered. */
	{
		struct pollfd p = { .fd = client, .events = POLLIN };
		char reply[64];

		ck_assert_int_eq(poll(&p, 1, 5000), 1);
		ck_assert_int_gt(recv(client, reply, sizeof(reply), 0), 0);
	}
	close(client);
	ck_assert_msg(timed_request(s.path, "stats\n", failure, sizeof(failure)) >= 0, "%s",
		      failure);
	ctl_serve_stop(&s);
	ck_assert_msg(used_ms < 50, "the server used %.1f ms of CPU in 500 ms while it could "
		      "not accept", used_ms);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kvm-demo control");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_good);
	tcase_add_test(tc, test_bad);
	tcase_add_test(tc, test_embedded_nul_and_oversize);
	tcase_add_test(tc, test_size_boundaries);
	tcase_add_test(tc, test_xml_utf8);
	suite_add_tcase(s, tc);
	tc = tcase_create("client");
	tcase_add_test(tc, test_client_refuses_control_characters);
	tcase_add_test(tc, test_client_fragment);
	suite_add_tcase(s, tc);
	tc = tcase_create("server");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_server_hostile_clients);
	tcase_add_test(tc, test_server_stop_latency);
	tcase_add_test(tc, test_server_too_many_clients);
	tcase_add_test(tc, test_server_bad_input);
	tcase_add_test(tc, test_server_out_of_descriptors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
