/* SPDX-License-Identifier: MIT */
/*
 * Entry of every vCPU, already in 64-bit long mode: kvm-demo set the
 * segments, page tables, IDT, stack (RSP) and the vCPU index (RDI).
 */
#include "abi.h"

	.section .header, "a"
	.long	KD_IMAGE_MAGIC
	.long	_start		/* absolute: linked at KD_IMAGE_GPA */
	.quad	__image_end
	.long	exception_vectors
	.long	0

	.section .text.entry, "ax"
	.globl	_start
_start:
	cld
	call	guest_main
1:	cli
	hlt
	jmp	1b

/*
 * One stub of KD_VECTOR_STUB_SIZE bytes per exception vector; kvm-demo
 * points IDT entry N at exception_vectors + N * KD_VECTOR_STUB_SIZE. Each
 * pushes a zero where the CPU pushes no error code, then the vector.
 */
#define HAS_ERROR_CODE(v) \
	((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

	.text
	.balign	KD_VECTOR_STUB_SIZE
exception_vectors:
	.set	vector, 0
	.rept	KD_NR_VECTORS
	.balign	KD_VECTOR_STUB_SIZE
	.if	!HAS_ERROR_CODE(vector)
	pushq	$0
	.endif
	pushq	$vector
	jmp	exception_common
	.set	vector, vector + 1
	.endr

/* The stack now holds vector, error code, RIP, CS, RFLAGS, RSP, SS. */
exception_common:
	movq	%rsp, %rdi
	movq	%cr2, %rsi
	andq	$-16, %rsp
	call	guest_exception
2:	cli
	hlt
	jmp	2b

	.section .note.GNU-stack, "", @progbits
