/* SPDX-License-Identifier: MIT */
/*
 * The VM's memory, for the layers above it (what core/ calls is in
 * core/hooks.h):
 *   memory.c  RAM regions (host backing) and their KVM memory slots
 *   slots.c   slot sync: host-side invalidations pause the vCPUs, update
 *             the KVM slots and propagate to the guest-physical state
 *   memops.c  operations while the guest runs: hotplug, unplug, balloon,
 *             remap, protect (through libmmn's brackets only)
 */
#ifndef KVM_DEMO_MEM_MEM_H
#define KVM_DEMO_MEM_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct mem_region;

/* ---- memory.c ---- */

/*
 * The translation a device uses: the host address of [GPA, GPA + LEN),
 * which must lie in one RAM region, for reading or (WRITE) writing.
 * Returns 0, -EFAULT (not guest RAM: outside every region, unplugged,
 * ballooned out, or the length overflows), -EACCES (WRITE to memory that
 * is read-only now) or -EAGAIN (the region is moving: a REMAP is inside
 * its invalidation of vm->guest_mm; mmn_range_read_begin() waits it out).
 * Safe from any thread, concurrently with changes to the regions; the
 * answer is current when given, so callers that cache it must hold a
 * subscription on vm->guest_mm and use the read_begin/read_retry pattern.
 */
int memory_translate(struct vm *vm, uint64_t gpa, uint64_t len, bool write, void **hva);

/* ---- slots.c ---- */

/* Undoes slots_track(); not from a callback. */
void slots_untrack(struct vm *vm, struct mem_region *r);

/*
 * Timestamps (kd_now()) of one move of a slot, taken where control/bench.c
 * says. t_running is written under pause_lock; the others by the moving thread.
 */
struct kd_bench_marks {
	double t_start, t_device, t_quiesced, t_running;
};

/* ---- memops.c: operations while the guest runs (serialised by ops_lock) ---- */

/* Each returns 0 or -1 after writing one line naming the problem to ERR. */
int memops_hotplug(struct vm *vm, uint64_t size, unsigned int node, char *err, size_t errlen);
int memops_hotplug_xml(struct vm *vm, const char *xml, char *err, size_t errlen);
int memops_unplug(struct vm *vm, unsigned int slot, char *err, size_t errlen);
int memops_unplug_xml(struct vm *vm, const char *xml, char *err, size_t errlen);
int memops_setmem(struct vm *vm, uint64_t bytes, char *err, size_t errlen);
/* FLAGS: 0 or MMN_NONBLOCK (then -EAGAIN when a callback refused). */
int memops_remap(struct vm *vm, unsigned int slot, unsigned int flags, char *err, size_t errlen);
int memops_protect(struct vm *vm, unsigned int slot, bool on, char *err, size_t errlen);
/* Non-blocking reclaim: discard the balloon with MMN_NONBLOCK; 1 if refused. */
int memops_reclaim(struct vm *vm);
/* The current definition (hotplugged DIMMs included); caller frees. */
char *memops_dumpxml(struct vm *vm);

#endif
