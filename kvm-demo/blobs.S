/* SPDX-License-Identifier: MIT */
/* The embedded default domain XML (NUL-terminated) and the guest image. */
	.section .rodata
	.globl	kd_default_domain_xml
kd_default_domain_xml:
	.incbin	KD_DEFAULT_XML_PATH
	.byte	0

	.balign	16
	.globl	kd_guest_image
	.globl	kd_guest_image_end
kd_guest_image:
	.incbin	KD_GUEST_IMAGE_PATH
kd_guest_image_end:

	.section .note.GNU-stack, "", @progbits
