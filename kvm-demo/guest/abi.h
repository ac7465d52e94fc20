/* SPDX-License-Identifier: MIT */
/*
 * The contract between kvm-demo and its guest: where things live in
 * guest-physical memory and which I/O ports mean what. Included by the VMM
 * and by the freestanding guest, so it uses <stdint.h> only.
 */
#ifndef KVM_DEMO_GUEST_ABI_H
#define KVM_DEMO_GUEST_ABI_H

/* The guest's verdict on KD_PORT_RESULT, which is kvm-demo's exit status. */
#define KD_RESULT_PASS		0
#define KD_RESULT_MISMATCH	1	/* memory did not hold what was written */
#define KD_RESULT_BAD_BOOT	2	/* the boot info makes no sense */
#define KD_RESULT_EXCEPTION	3	/* the guest crashed: a CPU exception */

/* Exceptions: vectors 0-31, each a stub of fixed size in the image. */
#define KD_NR_VECTORS		32
#define KD_VECTOR_STUB_SIZE	16

#define KD_IMAGE_MAGIC		0x4d4d4e4b	/* "KNMM": struct kd_image_header */

#ifndef __ASSEMBLER__	/* entry.S needs the constants above only */
#include <stdint.h>

/* Boot RAM layout (guest-physical, identity-mapped). */
#define KD_BOOT_INFO_GPA	0x1000ull	/* struct kd_boot_info */
#define KD_GDT_GPA		0x2000ull
#define KD_PML4_GPA		0x3000ull
#define KD_PDPT_GPA		0x4000ull
#define KD_PD_GPA		0x5000ull	/* KD_MAX_PDS pages, 1 GiB each */
#define KD_MAX_PDS		64u
#define KD_IDT_GPA		0x46000ull	/* KD_NR_VECTORS gates */
#define KD_IDT_GATE_SIZE	16u		/* a 64-bit interrupt gate */
#define KD_STACKS_GPA		0x80000ull	/* KD_STACK_SIZE per vCPU */
#define KD_STACK_SIZE		0x8000ull
#define KD_MAX_VCPUS		16u
#define KD_IMAGE_GPA		0x100000ull	/* the flat guest image */

/* Hot-pluggable memory (DIMMs) starts here, above the 32-bit hole. */
#define KD_HOTPLUG_GPA		0x100000000ull

/* I/O ports. */
#define KD_PORT_SERIAL		0x3f8	/* 16550 THR; LSR at +5 */
#define KD_PORT_RESULT		0x510	/* out32: a KD_RESULT_*; ends the VM */
#define KD_PORT_VERIFIED	0x514	/* out32: pages verified against their pattern */
#define KD_PORT_FILLED		0x518	/* out32: page number (GPA / 4 KiB) of a range just filled */

/* The first bytes of the flat image. */
struct kd_image_header {
	uint32_t magic;
	uint32_t entry_gpa;	/* the 64-bit entry point */
	uint64_t end_gpa;	/* end of the loaded image, .bss included */
	uint32_t vectors_gpa;	/* KD_NR_VECTORS exception stubs */
	uint32_t reserved;
};

#define KD_BOOT_MAGIC		0x544f4f42	/* "BOOT" */
#define KD_MAX_RANGES		32u

/* What the guest may test: RAM not holding its code, stacks or tables. */
struct kd_ram_range {
	uint64_t gpa;
	uint64_t size;
};

struct kd_boot_info {
	uint32_t magic;
	uint32_t nr_vcpus;
	uint32_t passes;	/* self-test passes; each vCPU tests a chunk per pass */
	uint32_t nr_ranges;
	struct kd_ram_range ranges[KD_MAX_RANGES];
	uint64_t balloon;	/* bytes at the tail of ranges[0] in the balloon from boot */
};

/*
 * ---- The memory mailbox: hotplug, unplug and balloon requests ----
 *
 * One page in boot RAM. The host posts a request (state IDLE -> POSTED);
 * vCPU 0 polls it between self-test passes, takes it (POSTED -> TAKEN, a
 * compare-and-swap, so that the host can withdraw a request nobody took:
 * POSTED -> IDLE), applies it to the RAM it tests, and answers (DONE).
 * The host reads the answer and sets IDLE. The guest then writes the
 * request's sequence number to KD_PORT_MAILBOX, so the host need not poll.
 */
#define KD_MAILBOX_GPA		0x50000ull
#define KD_PORT_MAILBOX		0x520	/* out32: the sequence number just answered */

#define KD_MB_IDLE		0u
#define KD_MB_POSTED		1u
#define KD_MB_TAKEN		2u
#define KD_MB_DONE		3u

#define KD_MB_PLUG		1u	/* start testing [gpa, gpa + size) */
#define KD_MB_UNPLUG		2u	/* stop using [gpa, gpa + size) */
#define KD_MB_BALLOON		3u	/* hold size bytes (the tail of boot RAM) in the balloon */

struct kd_mailbox {
	uint32_t state;		/* KD_MB_IDLE .. KD_MB_DONE, changed atomically */
	uint32_t cmd;		/* KD_MB_PLUG .. KD_MB_BALLOON */
	uint32_t seq;		/* the host's request number */
	int32_t status;		/* answer: 0 done, else refused */
	uint64_t gpa;
	uint64_t size;
	uint64_t ret_gpa;	/* BALLOON answer: the balloon is now [ret_gpa, ret_gpa + ret_size) */
	uint64_t ret_size;
	uint32_t flags;		/* KD_MB_F_*, set by the host before boot */
	uint32_t reserved;
};
#define KD_MB_F_QUIET		(1u << 0)	/* one progress line per 64 passes */
#define KD_MB_F_DEAF		(1u << 1)	/* testing: never answer, like a hung guest */
#define KD_MB_F_CRASH		(1u << 2)	/* testing: vCPU 0 executes UD2 at boot */
#define KD_MB_F_FINISH		(1u << 3)	/* set while running: end after this pass */

/* ---- The vhost-like device (vdev): a virtio split ring, ports only ---- */
/*
 * No PCI here: the guest finds the device through ports. It writes the
 * page number (GPA / 4 KiB) of a struct kd_vdev_setup to KD_VDEV_PORT_SETUP
 * (out32), then reads the outcome from KD_VDEV_PORT_STATUS (in32: 0 or a
 * KD_VDEV_S_* error); page 0 resets the device. Requests go on the ring,
 * laid out as virtio 1.x split virtqueues (descriptor table, available and
 * used rings, little-endian); an out16 of the queue index (0) to
 * KD_VDEV_PORT_KICK announces new available entries. Completions are not
 * interrupts: the guest polls used->idx. KD_VDEV_PORT_MODE (in32) tells the
 * guest what to do: KD_VDEV_MODE_* in bits 0-7, a request count in 8-31.
 */
#define KD_VDEV_PORT_SETUP	0x540	/* out32: setup page number, 0 resets */
#define KD_VDEV_PORT_STATUS	0x544	/* in32: outcome of the last setup */
#define KD_VDEV_PORT_KICK	0x548	/* out16: queue index; an ioeventfd */
#define KD_VDEV_PORT_MODE	0x54c	/* in32: mode | requests << 8 */

#define KD_VDEV_MODE_OFF	0	/* no device traffic */
#define KD_VDEV_MODE_TRAFFIC	1	/* verified fill/copy/checksum requests */
#define KD_VDEV_MODE_HOSTILE	2	/* malformed descriptors, each must fail */
#define KD_VDEV_MODE_CHAOS	3	/* a batch of traffic between self-test passes */
#define KD_VDEV_CHAOS_BATCH	32u	/* requests per batch */

#define KD_VDEV_QUEUE_MAX	256u	/* queue size: a power of two up to this */
#define KD_VDEV_MAX_SEGS	32u	/* descriptors per chain */
#define KD_VDEV_MAX_BYTES	(4u << 20)	/* data bytes per request */

struct kd_vdev_setup {
	uint32_t queue_size;
	uint32_t reserved;
	uint64_t desc_gpa;	/* 16-byte aligned */
	uint64_t avail_gpa;	/* 2-byte aligned */
	uint64_t used_gpa;	/* 4-byte aligned */
};

/* virtio 1.x split virtqueue layout. */
#define KD_VRING_F_NEXT		1
#define KD_VRING_F_WRITE	2
#define KD_VRING_F_INDIRECT	4	/* not offered: a chain using it fails */

struct kd_vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct kd_vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct kd_vring_used_elem {
	uint32_t id;
	uint32_t len;	/* bytes written; 0: the chain was rejected, no status */
};

struct kd_vring_used {
	uint16_t flags;
	uint16_t idx;
	struct kd_vring_used_elem ring[];
};

/*
 * A request: one device-readable descriptor holding the header, the data
 * descriptors, then one device-writable descriptor for the response.
 * FILL: data all writable, filled with kd_vdev_fill_byte(arg, i) for the
 * i-th byte. COPY: readable data, then writable data of the same total
 * length, which receives it. CHECKSUM: readable data; result is its
 * kd_vdev_fnv1a().
 */
#define KD_VDEV_OP_FILL		1
#define KD_VDEV_OP_COPY		2
#define KD_VDEV_OP_CHECKSUM	3

struct kd_vdev_req {
	uint32_t op;
	uint32_t reserved;
	uint64_t arg;		/* FILL: the seed */
};

#define KD_VDEV_S_OK		0
#define KD_VDEV_S_BADREQ	1	/* unknown op, bad header or layout */
#define KD_VDEV_S_FAULT		2	/* a buffer is not guest RAM (or not writable) */
#define KD_VDEV_S_TOOBIG	3	/* more than KD_VDEV_MAX_BYTES of data */

struct kd_vdev_resp {
	uint32_t status;
	uint32_t reserved;
	uint64_t result;	/* CHECKSUM: the sum; else data bytes processed */
};

static inline uint8_t kd_vdev_fill_byte(uint64_t seed, uint64_t i)
{
	return (uint8_t)(((seed ^ i) * 0x9e3779b97f4a7c15ull) >> 56);
}

#define KD_FNV_OFFSET	0xcbf29ce484222325ull
#define KD_FNV_PRIME	0x100000001b3ull

static inline uint64_t kd_vdev_fnv1a(uint64_t h, const volatile uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ p[i]) * KD_FNV_PRIME;
	return h;
}
/* ---- end of the vdev block ---- */

#endif /* !__ASSEMBLER__ */
#endif
