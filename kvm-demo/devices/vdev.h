/* SPDX-License-Identifier: MIT */
/*
 * The vhost-like device (vdev.c), for the layers above it; what core/
 * calls (creation, teardown, port I/O) is in core/hooks.h. vring.h and
 * shadow.h are its descriptor-chain walker and shadow map.
 */
#ifndef KVM_DEMO_DEVICES_VDEV_H
#define KVM_DEMO_DEVICES_VDEV_H

#include <stddef.h>
#include <stdint.h>

struct vm;

/* One line of figures of the device, of its shadow map, into BUF; snprintf's return. */
int vdev_stats(struct vm *vm, char *buf, size_t len);
int vdev_shadow_stats(struct vm *vm, char *buf, size_t len);
/* Requests completed fine so far, and those that failed, were rejected, met a
 * ring fault or a stale translation. */
void vdev_counts(struct vm *vm, uint64_t *ok, uint64_t *errors);
/* --chaos drives device traffic too: the guest's mode, the checker, the report. */
int vdev_chaos_enable(struct vm *vm);
/* Batches of REQUESTS (1 to KD_VDEV_CHAOS_BATCH) between passes, checker on, without --chaos. */
int vdev_batches_enable(struct vm *vm, unsigned int requests);
/* The device's figures so far, for the demo's lines. */
struct vdev_figures {
	uint64_t ok, bytes, errors;		/* requests done, data moved, failures */
	uint64_t invalidations, dropped;	/* of its shadow map */
	uint64_t checked, stale;		/* accesses checked, stale translations used */
};
void vdev_figures(struct vm *vm, struct vdev_figures *f);


#endif
