/* SPDX-License-Identifier: MIT */
/*
 * Entry of every vCPU, already in 64-bit long mode: kvm-demo set the
 * segments, page tables, stack (RSP) and the vCPU index (RDI).
 */
	.section .header, "a"
	.long	0x4d4d4e4b		/* KD_IMAGE_MAGIC */
	.long	_start		/* absolute: linked at KD_IMAGE_GPA */
	.quad	__image_end

	.section .text.entry, "ax"
	.globl	_start
_start:
	cld
	call	guest_main
1:	cli
	hlt
	jmp	1b

	.section .note.GNU-stack, "", @progbits
