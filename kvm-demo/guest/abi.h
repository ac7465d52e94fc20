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

#endif
