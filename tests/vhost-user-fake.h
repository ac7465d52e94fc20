/* SPDX-License-Identifier: MIT */
/*
 * A fake vhost-user backend for tests: it answers like a blk backend
 * with REPLY_ACK, CONFIG and CONFIGURE_MEM_SLOTS, and, at one chosen
 * request, misbehaves in one chosen way.
 */
#ifndef TESTS_VHOST_USER_FAKE_H
#define TESTS_VHOST_USER_FAKE_H

#include <stdint.h>

enum fake_fault {
	FAKE_OK,		/* answer properly */
	FAKE_SILENT,		/* never answer (the frontend's timeout) */
	FAKE_CLOSE,		/* close the connection instead of answering */
	FAKE_SHORT,		/* half a payload, then close */
	FAKE_WRONG_CODE,	/* the reply names another request */
	FAKE_HUGE_SIZE,		/* size field 0xffffffff */
	FAKE_SMALL_SIZE,	/* size field 4, 4 bytes */
	FAKE_WITH_FD,		/* a descriptor comes along */
	FAKE_NO_REPLY_FLAG,	/* flags without REPLY */
	FAKE_BAD_VERSION,	/* protocol version 2 */
	FAKE_FAIL_STATUS,	/* a well-formed ack saying "failed" */
	FAKE_OTHER_RING,	/* GET_VRING_BASE answered for ring 1 */
	FAKE_TRICKLE,		/* a good reply, one byte per write */
	FAKE_NO_MEM_SLOTS,	/* protocol features without CONFIGURE_MEM_SLOTS */
	FAKE_NR_FAULTS
};

extern const char *const fake_fault_names[FAKE_NR_FAULTS];

struct fake_stats {
	unsigned int requests;		/* messages read */
	unsigned int fds;		/* descriptors received */
	unsigned int mem_regions;	/* regions added minus removed */
	unsigned int bad;		/* malformed requests from the frontend */
	uint32_t last_request;
};

/*
 * Serve one connection on FD until the peer closes it or the fault ended
 * it; FAULT happens at the first request with code AT (0: every request
 * that gets a reply). Closes FD.
 */
void fake_serve(int fd, enum fake_fault fault, uint32_t at, struct fake_stats *st);

#endif
