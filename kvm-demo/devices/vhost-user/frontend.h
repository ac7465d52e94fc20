/* SPDX-License-Identifier: MIT */
/*
 * A vhost-user frontend connection: one request at a time over a unix
 * socket, file descriptors passed with SCM_RIGHTS, every reply awaited
 * with a deadline and checked by vu_parse_reply(). No VM: the device glue
 * decides what to send.
 *
 * Once the protocol is out of step (no reply in time, a malformed reply,
 * the peer gone) the connection is shut down for good: every later call
 * fails with -EPIPE, and whoever polls the socket sees it hang up. A
 * backend that answers "failed" (-EREMOTEIO) stays connected.
 *
 * Every function returns 0 or -errno and, on failure, leaves one line
 * naming the request and the problem for vu_last_error(), e.g.
 * "vhost-user: REM_MEM_REG: no reply within 2000 ms".
 * Context: any thread; calls are serialised by the connection's lock, and
 * each may block up to the timeout.
 */
#ifndef KVM_DEMO_VHOST_USER_FRONTEND_H
#define KVM_DEMO_VHOST_USER_FRONTEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define VU_TIMEOUT_MS_DEFAULT	2000u
#define VU_MAX_FDS		8u	/* SCM_RIGHTS descriptors accepted per message */

struct vu_frontend {
	pthread_mutex_t lock;		/* one request and its reply at a time */
	int sock;			/* lock (written); -1 after vu_close() */
	atomic_bool broken;		/* shut down: every call fails */
	unsigned int timeout_ms;	/* per reply */
	uint64_t features;		/* negotiated, after vu_handshake() */
	uint64_t protocol_features;
	uint64_t max_mem_slots;
	atomic_uint_least64_t requests;	/* messages sent */
	char err[256];			/* lock: the first failure that broke it, or the last one */
};

/* Take SOCK (connected); TIMEOUT_MS 0 means VU_TIMEOUT_MS_DEFAULT. */
void vu_init(struct vu_frontend *f, int sock, unsigned int timeout_ms);
/*
 * Connect to the unix socket PATH, retrying a refused or missing socket
 * for up to WAIT_MS (a backend just started creates it a little later).
 */
int vu_connect(struct vu_frontend *f, const char *path, unsigned int timeout_ms,
	       unsigned int wait_ms);
void vu_close(struct vu_frontend *f);
/* Shut the connection down (the backend sees EOF); later calls fail. */
void vu_shutdown(struct vu_frontend *f, const char *why);
bool vu_broken(struct vu_frontend *f);
/* The socket, for polling for a hang-up; -1 once closed. */
int vu_socket(struct vu_frontend *f);
void vu_last_error(struct vu_frontend *f, char *buf, size_t len);

/*
 * SET_OWNER and the negotiation: the backend must offer VERSION_1,
 * PROTOCOL_FEATURES and the protocol features REPLY_ACK, CONFIG and
 * CONFIGURE_MEM_SLOTS; the device features in WANT it offers are taken.
 * Every later setting is acked.
 */
int vu_handshake(struct vu_frontend *f, uint64_t want);
int vu_get_config(struct vu_frontend *f, uint32_t offset, void *buf, uint32_t size);
/* FD maps the region at R->mmap_offset; the backend gets a copy. */
int vu_add_mem_reg(struct vu_frontend *f, const struct vu_mem_region *r, int fd);
int vu_rem_mem_reg(struct vu_frontend *f, const struct vu_mem_region *r, int fd);
int vu_set_vring_num(struct vu_frontend *f, uint32_t index, uint32_t num);
int vu_set_vring_base(struct vu_frontend *f, uint32_t index, uint32_t base);
int vu_set_vring_addr(struct vu_frontend *f, const struct vu_vring_addr *a);
/* FD -1: no descriptor (VU_VRING_NOFD). */
int vu_set_vring_kick(struct vu_frontend *f, uint32_t index, int fd);
int vu_set_vring_call(struct vu_frontend *f, uint32_t index, int fd);
int vu_set_vring_enable(struct vu_frontend *f, uint32_t index, bool on);
/* Stops the ring; BASE: the next available index the backend would take. */
int vu_get_vring_base(struct vu_frontend *f, uint32_t index, uint16_t *base);

/*
 * One ring as the backend sees it. Addresses are the frontend's own
 * (a vhost-user backend translates them through the regions' uaddr).
 */
struct vu_ring {
	uint32_t index;
	uint32_t num;			/* queue size */
	uint64_t desc, avail, used;	/* where the ring lives now */
	int kick_fd, call_fd;		/* eventfds; the backend gets copies */
	uint16_t base;			/* the available index to start from */
	bool started;
};

/* SET_VRING_NUM, _BASE (R->base), _ADDR, _CALL, _ENABLE, then _KICK. */
int vu_ring_start(struct vu_frontend *f, struct vu_ring *r);
/*
 * Stop R where it is: GET_VRING_BASE (the backend takes no more
 * requests), then wait, within the timeout, until the used index in
 * shared memory reaches that base (every request taken is complete), then
 * point the stopped ring at PARK, 4 KiB inside a region the backend keeps,
 * so that no region the ring was in stays referenced. R->base is where
 * vu_ring_start() resumes.
 */
int vu_ring_stop(struct vu_frontend *f, struct vu_ring *r, uint64_t park);

#endif
