/* SPDX-License-Identifier: MIT */
/*
 * What core/ calls in the layers above it, declared here so that core
 * includes none of their headers: the memory regions, slot sync and the
 * vCPU pause (mem/), the device (devices/), and the registration of
 * --chaos participants (control/chaos.c), which devices call. The
 * definitions' files include core/vm.h, which includes this header, so
 * each declaration is checked against its definition.
 */
#ifndef KVM_DEMO_CORE_HOOKS_H
#define KVM_DEMO_CORE_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct vm;
struct mem_region;

/* ---- mem/memory.c: RAM regions, one KVM memory slot each ---- */

int memory_region_alloc(struct vm *vm, struct mem_region *r, const char *name,
			uint64_t gpa, uint64_t size);
int memory_region_map_slot(struct vm *vm, struct mem_region *r);
void memory_region_unmap_slot(struct vm *vm, struct mem_region *r);
void memory_region_free(struct vm *vm, struct mem_region *r);
/* Host address of [GPA, GPA + LEN) inside one plugged region, or NULL; mem_lock held. */
void *memory_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len);

/* ---- mem/slots.c: slot sync ---- */

int slots_init(struct vm *vm);		/* the whole-space sub on host_mm */
void slots_fini(struct vm *vm);
/* Subscribes R's host range and starts its backstop; R is mapped. */
int slots_track(struct vm *vm, struct mem_region *r);
/*
 * Stop every vCPU out of KVM_RUN and wait until each has acknowledged
 * (parked). Nests. vm_resume() lets them go when the last pause ends.
 */
void vm_pause(struct vm *vm);
/* vm_pause() for at most MS: false (and no pause held) if a vCPU did not park. */
bool vm_pause_timed(struct vm *vm, unsigned int ms);
void vm_resume(struct vm *vm);
/* vCPU threads: park while paused (or, WAIT_PROTECT, while memory is protected). */
void vcpu_park(struct vm *vm, bool wait_protect);
/* Whether GPA lies in a RAM region (plugged or not): for the stale-slot check. */
bool memory_is_ram_gpa(struct vm *vm, uint64_t gpa);

/* ---- mem/memops.c ---- */

/* Called by ports.c when the guest answers a mailbox request. */
void memops_mailbox_answered(struct vm *vm, uint32_t seq);
/* Teardown of the operations' state. */
void memops_fini(struct vm *vm);

/* ---- devices/vdev.c: the vhost-like device ---- */

/* The device and its worker; after the RAM regions exist. */
int vdev_create(struct vm *vm);
/* Stops the worker; before the RAM regions go. */
void vdev_destroy(struct vm *vm);
/* Port I/O of the device from a vCPU thread; false: not the device's port. */
bool vdev_handle_io(struct vm *vm, uint16_t port, bool out, uint8_t *data, uint8_t size);

/* ---- devices/vhost-user/blk.c: the disk a vhost-user backend serves ---- */

/* Starts or connects to the backend; after the RAM regions exist. 0 without a disk. */
int vu_blk_create(struct vm *vm);
/*
 * Stops the backend (before the RAM regions go), then checks the image
 * against the guest's checksum: false if it does not match.
 */
bool vu_blk_destroy(struct vm *vm);
/* Port I/O of the disk from a vCPU thread; false: not the disk's port. */
bool vu_blk_handle_io(struct vm *vm, uint16_t port, bool out, uint8_t *data, uint8_t size);
/* One line on the disk's ring and backend, for a guest that stopped progressing. */
void vu_blk_print_state(struct vm *vm, FILE *f);

/* ---- control/chaos.c: --chaos participants ---- */

/*
 * Something else that takes part in --chaos (a device, say): op() runs one
 * random operation (RND is random bits) and returns 0 or -1 with ERR set;
 * report() adds lines to the report; broken() says whether an invariant of
 * the participant's broke. Register before chaos_start().
 */
struct chaos_participant {
	const char *name;
	int (*op)(struct vm *vm, uint64_t rnd, char *err, size_t errlen);
	/* Stop the participant's threads before the report: final figures. */
	void (*quiesce)(struct vm *vm);
	void (*report)(struct vm *vm, FILE *f);
	bool (*broken)(struct vm *vm);
};
int chaos_register(const struct chaos_participant *p);

#endif
