/* SPDX-License-Identifier: MIT */
/*
 * The control protocol, shared by the server, the client and the tests.
 * Requests are single lines of printable ASCII; replies begin with
 * "ok LEN\n" followed by LEN bytes of text, or are one line "error: ...\n".
 */
#ifndef KVM_DEMO_CONTROL_H
#define KVM_DEMO_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KD_CTL_MAX_LINE		8192	/* bytes, newline included */

enum control_op {
	CTL_SETMEM = 1,		/* value: bytes */
	CTL_ATTACH_DEVICE,	/* arg: XML, or a path when it does not start with '<' */
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

/* Format one error line into ERR (ERRLEN bytes); returns -1: "return ctl_err(...)". */
__attribute__((format(printf, 3, 4)))
int ctl_err(char *err, size_t errlen, const char *fmt, ...);

#endif
