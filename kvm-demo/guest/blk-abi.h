/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk disk (served by a vhost-user backend) as the guest sees
 * it: virtio-blk requests on a split ring (the kd_vring_* layout of
 * abi.h), found through ports like the vdev. Included by the VMM, the
 * guest and the host tests; <stdint.h> only.
 *
 * The guest writes the page number of a struct kd_blk_setup to
 * KD_BLK_PORT_SETUP (page 0: stop the ring), then reads KD_BLK_PORT_STATUS
 * (0, or a KD_BLK_E_*). Kicks are an out16 of the queue index to
 * KD_BLK_PORT_KICK, an ioeventfd wired straight to the backend. The guest
 * polls used->idx: no interrupts (see abi.h).
 */
#ifndef KVM_DEMO_GUEST_BLK_ABI_H
#define KVM_DEMO_GUEST_BLK_ABI_H

#include <stdint.h>

#define KD_BLK_PORT_SETUP	0x560	/* out32: setup page number, 0 stops */
#define KD_BLK_PORT_STATUS	0x564	/* in32: outcome of the last setup */
#define KD_BLK_PORT_KICK	0x568	/* out16: queue index; an ioeventfd */
#define KD_BLK_PORT_PRESENT	0x56c	/* in32: 1 if a disk is attached */
#define KD_BLK_PORT_SUM		0x570	/* out32 x3: checksum low, high, chunks it covers */

#define KD_BLK_QUEUE_SIZE	64u	/* the ring's size: fixed */

#define KD_BLK_E_OK		0
#define KD_BLK_E_BADSETUP	1	/* sizes or addresses wrong, or not in RAM */
#define KD_BLK_E_BACKEND	2	/* the backend refused or is gone */
#define KD_BLK_E_NODISK		3

struct kd_blk_setup {
	uint32_t queue_size;	/* KD_BLK_QUEUE_SIZE */
	uint32_t reserved;
	uint64_t desc_gpa;	/* 16-byte aligned */
	uint64_t avail_gpa;	/* 2-byte aligned */
	uint64_t used_gpa;	/* 4-byte aligned */
	uint64_t capacity;	/* out: 512-byte sectors */
};

/* virtio-blk requests: header (device-readable), data, status byte (writable). */
#define KD_BLK_SECTOR		512u
#define KD_BLK_T_IN		0	/* read */
#define KD_BLK_T_OUT		1	/* write */
#define KD_BLK_S_OK		0
#define KD_BLK_S_IOERR		1
#define KD_BLK_S_UNSUPP		2

struct kd_blk_req {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/*
 * The guest's test: between self-test passes it writes one chunk (at most
 * KD_BLK_QD requests in flight), reads it back and verifies it, chunk
 * after chunk around the disk. At the end it reports the checksum of what
 * the disk must hold: kd_blk_combine() over each chunk's kd_vdev_fnv1a(),
 * first chunk first, over the chunks written so far (0 when the disk
 * failed: nothing to verify). Only the first KD_BLK_MAX_CHUNKS take part.
 */
#define KD_BLK_CHUNK		(1u << 20)
#define KD_BLK_QD		8u
#define KD_BLK_MAX_CHUNKS	1024u

static inline uint64_t kd_blk_combine(uint64_t h, uint64_t digest)
{
	for (unsigned int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)(digest >> (8 * i))) * 0x100000001b3ull;
	return h;
}

/* The pattern written to sector S on pass P: each 8-byte word says where it is. */
static inline uint64_t kd_blk_word(uint64_t pass, uint64_t sector, unsigned int word)
{
	return ((pass << 48) ^ (sector << 6) ^ word) * 0x9e3779b97f4a7c15ull;
}

#endif
