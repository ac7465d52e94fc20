/* SPDX-License-Identifier: MIT */
/*
 * The control protocol, shared by the server, the client and the tests.
 * Requests are single lines of printable ASCII (the XML of attach-device
 * and detach-device may also hold UTF-8); replies begin with "ok LEN\n"
 * followed by LEN bytes of text, or are one line "error: ...\n".
 */
#ifndef KVM_DEMO_CONTROL_H
#define KVM_DEMO_CONTROL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KD_CTL_MAX_LINE		8192	/* bytes, newline included */
#define KD_CTL_MAX_FRAGMENT	8176	/* bytes of an attach/detach-device FILE: fits a line */
#define KD_CTL_MAX_CLIENTS	8	/* served at once; more get an error reply */
#define KD_CTL_IO_TIMEOUT_MS	5000	/* to send a whole command, to take a whole reply */

enum control_op {
	CTL_SETMEM = 1,		/* value: bytes */
	CTL_ATTACH_DEVICE,	/* arg: XML (starts with '<'; the client reads files) */
	CTL_DETACH_DEVICE,	/* arg: as attach */
	CTL_REMAP,		/* slot */
	CTL_PROTECT,		/* slot, on */
	CTL_DOMMEMSTAT,
	CTL_DUMPXML,
	CTL_STATS,
	CTL_SHUTDOWN,
};

struct control_cmd {
	enum control_op op;
	uint64_t value;
	unsigned int slot;
	bool on;
	const char *arg;	/* points into the line; not NUL-terminated */
	size_t arg_len;
};

/*
 * Parse one request LINE of LEN bytes (without its newline). Pure: no I/O,
 * no allocation, no global state. Returns 0, or -1 with one line naming
 * what is wrong in ERR.
 */
int control_parse(const char *line, size_t len, struct control_cmd *cmd, char *err,
		  size_t errlen);

/* Length of the well-formed UTF-8 sequence at P (N > 0 bytes left), else 0. */
size_t ctl_utf8_len(const unsigned char *p, size_t n);

/*
 * The server: one thread, non-blocking I/O on every connection through
 * poll(), so that no client can hold up another or the stop. Each client
 * must send a whole command, and take a whole reply, within IO_TIMEOUT_MS
 * or it is disconnected. Commands run one at a time on that thread.
 */
struct ctl_conn;

struct ctl_server {
	/* Set before ctl_serve_start(): */
	/* The whole reply to one request line (ctl_reply_ok/_error); NULL: out of memory. */
	char *(*handle)(void *opaque, const char *line, size_t len, size_t *reply_len);
	void (*tick)(void *opaque);		/* every 100 ms; may be NULL */
	void *opaque;
	unsigned int io_timeout_ms;		/* 0: KD_CTL_IO_TIMEOUT_MS */
	/* The server's: */
	int listen_fd;
	int wake_fd;
	pthread_t thread;
	bool started;
	char dir[128];		/* private, mode 0700 */
	char path[160];		/* the socket, mode 0600 */
	struct ctl_conn *conns;
	double accept_resume;	/* out of descriptors: accept again from then */
	/* Read after ctl_serve_stop(): clients dropped for being slow or too many. */
	unsigned long nr_timeouts, nr_busy, nr_served;
};

/* Creates the socket under $TMPDIR and starts the thread; 0 or -1 (kd_error). */
int ctl_serve_start(struct ctl_server *s);
/* Stops the thread (promptly: it never waits for a client), removes the socket. */
void ctl_serve_stop(struct ctl_server *s);
/* Replies, allocated with malloc(); *LEN gets the length. NULL: out of memory. */
char *ctl_reply_ok(const char *body, size_t body_len, size_t *len);
char *ctl_reply_error(const char *msg, size_t *len);

/* The client. */
int ctl_main(int argc, char **argv);	/* kvm-demo ctl SOCKET COMMAND... */
/* Sends RAW as is, optionally half-closes, reads one reply: 0 ok, 1 error, -1 broken. */
int ctl_request_raw(const char *path, const char *raw, size_t len, bool half_close, char **body);
/* The request line for ARGV (argc words), or NULL with ERR set. Reads FILE arguments. */
char *ctl_request_line(int argc, char **argv, char *err, size_t errlen);

void kd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
