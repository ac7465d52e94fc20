/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user disk (blk.c), for the layers above it; what core/ calls
 * (creation, teardown, port I/O) is in core/hooks.h.
 */
#ifndef KVM_DEMO_DEVICES_VHOST_USER_BLK_H
#define KVM_DEMO_DEVICES_VHOST_USER_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vm;

struct vu_blk_figures {
	uint64_t invalidations;		/* blockable changes the backend let go for */
	uint64_t refusals;		/* non-blockable ones refused */
	uint64_t ring_stops, removed, added;
	uint64_t failed_requests;	/* completed with an I/O error after the backend died */
	uint64_t waits, wait_ns_total, wait_ns_max;	/* invalidate_start to quiescence */
	bool dead;
};
void vu_blk_figures(struct vm *vm, struct vu_blk_figures *f);
/* One line of those figures, for the chaos report and the demo's summary. */
void vu_blk_report(struct vm *vm, FILE *out);
/* Testing: change one byte of the image before it is checked, to prove the check. */
void vu_blk_inject_corruption(struct vm *vm);

#endif
