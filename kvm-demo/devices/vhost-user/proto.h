/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user wire format, frontend side: encoding requests and
 * checking the backend's replies. Pure: no I/O, no VM, so that the reply
 * parser can be tested and fuzzed alone. Written from the vhost-user
 * specification (QEMU's docs/interop/vhost-user.rst).
 *
 * A message is a 12-byte little-endian header (request, flags, size)
 * followed by SIZE payload bytes; file descriptors travel beside it as
 * SCM_RIGHTS ancillary data.
 */
#ifndef KVM_DEMO_VHOST_USER_PROTO_H
#define KVM_DEMO_VHOST_USER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Requests, frontend to backend (the ones kvm-demo sends). */
enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
	VU_GET_MAX_MEM_SLOTS = 36,
	VU_ADD_MEM_REG = 37,
	VU_REM_MEM_REG = 38,
};

#define VU_FLAG_VERSION		0x1u	/* bits 0-1: protocol version 1 */
#define VU_FLAG_VERSION_MASK	0x3u
#define VU_FLAG_REPLY		0x4u	/* set on the backend's replies */
#define VU_FLAG_NEED_REPLY	0x8u	/* with REPLY_ACK: ack this request */

/* Virtio feature bits of the transport. */
#define VU_F_PROTOCOL_FEATURES	30	/* GET/SET_PROTOCOL_FEATURES exist */
#define VU_F_VERSION_1		32	/* VIRTIO_F_VERSION_1 */

/* Protocol feature bits. */
#define VU_PF_REPLY_ACK		3
#define VU_PF_CONFIG		9
#define VU_PF_CONFIGURE_MEM_SLOTS 15

#define VU_HDR_SIZE		12u
/* The largest reply kvm-demo accepts: GET_CONFIG's header + 256 bytes. */
#define VU_CONFIG_MAX		256u
#define VU_PAYLOAD_MAX		(12u + VU_CONFIG_MAX)
#define VU_MSG_MAX		(VU_HDR_SIZE + VU_PAYLOAD_MAX)
/* Kick and call messages: the ring index, and this bit when no fd goes along. */
#define VU_VRING_NOFD		(1ull << 8)

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;		/* the frontend's own virtual addresses */
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vu_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;		/* the frontend's mapping of it */
	uint64_t mmap_offset;	/* into the fd that goes along */
};

/* A reply, checked: what it carries, by request. */
struct vu_reply {
	uint32_t request;
	uint32_t size;			/* payload bytes */
	uint64_t u64;			/* GET_*FEATURES, GET_MAX_MEM_SLOTS, acks */
	struct vu_vring_state state;	/* GET_VRING_BASE */
	uint32_t config_size;		/* GET_CONFIG: bytes in config[] */
	uint8_t config[VU_CONFIG_MAX];
};

/* What the frontend asked for, so that the reply can be held against it. */
struct vu_expect {
	uint32_t request;
	bool ack;			/* an ack (u64 status) of REQUEST */
	uint32_t index;			/* GET_VRING_BASE: the ring asked about */
	uint32_t config_offset;		/* GET_CONFIG: what was asked */
	uint32_t config_size;
};

/* The request's name ("ADD_MEM_REG"), or "request N" for others. */
const char *vu_request_name(uint32_t request, char *buf, size_t len);

/*
 * Encode a request with PAYLOAD (LEN bytes, LEN <= VU_PAYLOAD_MAX) into
 * BUF (room for VU_MSG_MAX). Returns the message's length.
 */
size_t vu_encode(uint8_t *buf, uint32_t request, uint32_t flags, const void *payload,
		 uint32_t len);
/* Payload encoders: each fills OUT and returns its length. */
uint32_t vu_encode_u64(uint8_t *out, uint64_t v);
uint32_t vu_encode_state(uint8_t *out, uint32_t index, uint32_t num);
uint32_t vu_encode_addr(uint8_t *out, const struct vu_vring_addr *a);
uint32_t vu_encode_mem_reg(uint8_t *out, const struct vu_mem_region *r);
uint32_t vu_encode_config(uint8_t *out, uint32_t offset, uint32_t size);

/*
 * Check a reply header (VU_HDR_SIZE bytes at HDR) against EXP before its
 * payload is read: version, the reply flag, the request code, and a size
 * that fits the reply. Returns the payload size, or -EPROTO with one
 * phrase naming the problem in ERR.
 */
int vu_parse_header(const uint8_t *hdr, const struct vu_expect *exp, char *err, size_t errlen);
/*
 * Check a whole reply (LEN bytes at BUF, header included, NFDS file
 * descriptors received with it) against EXP and fill OUT. Every field is
 * untrusted: sizes, counts, indices and fds are checked. Returns 0, or
 * -EPROTO (malformed: wrong code, size, flags, fds, index) or -EREMOTEIO
 * (well formed, but the backend says it failed) with ERR set.
 * Context: pure; any thread.
 */
int vu_parse_reply(const uint8_t *buf, size_t len, unsigned int nfds,
		   const struct vu_expect *exp, struct vu_reply *out, char *err, size_t errlen);

#endif
