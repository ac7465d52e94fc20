/* SPDX-License-Identifier: MIT */
/*
 * The descriptor-chain walker of the vhost-like device: a pure function
 * over a copy of the descriptor table, with no access to guest memory, so
 * that it can be tested and fuzzed alone.
 */
#ifndef KVM_DEMO_VRING_H
#define KVM_DEMO_VRING_H

#include <stdbool.h>
#include <stdint.h>

#include "guest/abi.h"

struct vring_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;		/* device-writable */
};

/*
 * Walk the chain starting at HEAD in TABLE (QUEUE_SIZE descriptors) into
 * SEGS (room for MAX_SEGS). Each descriptor is read once, so a guest
 * changing the table meanwhile cannot make a checked value change.
 * Returns the number of segments, or:
 *   -EINVAL     HEAD or a next index outside the table, a zero length,
 *               or QUEUE_SIZE 0 or above KD_VDEV_QUEUE_MAX
 *   -ELOOP      the chain comes back to a descriptor it went through
 *   -E2BIG      more than MAX_SEGS descriptors
 *   -EOVERFLOW  gpa + len passes 2^64
 *   -ENOTSUP    an indirect descriptor
 *   -EPROTO     a device-readable descriptor after a writable one
 * Context: pure; any thread.
 */
int vring_walk(const struct kd_vring_desc *table, unsigned int queue_size, unsigned int head,
	       struct vring_seg *segs, unsigned int max_segs);

#endif
