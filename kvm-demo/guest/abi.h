/* SPDX-License-Identifier: MIT */
/*
 * The contract between kvm-demo and its guest: where things live in
 * guest-physical memory and which I/O ports mean what. Included by the VMM
 * and by the freestanding guest, so it uses <stdint.h> only.
 */
#ifndef KVM_DEMO_GUEST_ABI_H
#define KVM_DEMO_GUEST_ABI_H

#include <stdint.h>

/* Boot RAM layout (guest-physical, identity-mapped). */
#define KD_BOOT_INFO_GPA	0x1000ull	/* struct kd_boot_info */
#define KD_GDT_GPA		0x2000ull
#define KD_PML4_GPA		0x3000ull
#define KD_PDPT_GPA		0x4000ull
#define KD_PD_GPA		0x5000ull	/* KD_MAX_PDS pages, 1 GiB each */
#define KD_MAX_PDS		64u
#define KD_STACKS_GPA		0x80000ull	/* KD_STACK_SIZE per vCPU */
#define KD_STACK_SIZE		0x8000ull
#define KD_MAX_VCPUS		16u
#define KD_IMAGE_GPA		0x100000ull	/* the flat guest image */

/* Hot-pluggable memory (DIMMs) starts here, above the 32-bit hole. */
#define KD_HOTPLUG_GPA		0x100000000ull

/* I/O ports. */
#define KD_PORT_SERIAL		0x3f8	/* 16550 THR; LSR at +5 */
#define KD_PORT_RESULT		0x510	/* out32: 0 pass, else failure; ends the VM */
#define KD_PORT_VERIFIED	0x514	/* out32: pages verified against their pattern */
#define KD_PORT_FILLED		0x518	/* out32: page number (GPA / 4 KiB) of a range just filled */

/* The first bytes of the flat image. */
#define KD_IMAGE_MAGIC		0x4d4d4e4b	/* "KNMM" */
struct kd_image_header {
	uint32_t magic;
	uint32_t entry_gpa;	/* the 64-bit entry point */
	uint64_t end_gpa;	/* end of the loaded image, .bss included */
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

#endif
