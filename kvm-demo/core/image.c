/* SPDX-License-Identifier: MIT */
/*
 * The guest image's header against the layout (guest/abi.h), before any of
 * it is loaded. Every field comes from the file, so every sum is done in 64
 * bits on values bounded first: nothing can wrap.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "core/util.h"
#include "core/vm.h"

int vm_check_image(const struct vm_config *cfg, const void *image, size_t size)
{
	const uint64_t stubs = (uint64_t)KD_NR_VECTORS * KD_VECTOR_STUB_SIZE;
	struct kd_image_header h;
	uint64_t first, end;	/* the loaded bytes past the header: [first, end) */

	if (size < sizeof(h)) {
		kd_error("guest image (%zu bytes): no kvm-demo image header (%zu bytes)", size,
			 sizeof(h));
		return -1;
	}
	memcpy(&h, image, sizeof(h));
	if (h.magic != KD_IMAGE_MAGIC) {
		kd_error("guest image (%zu bytes): no kvm-demo image header (magic 0x%x)", size,
			 KD_IMAGE_MAGIC);
		return -1;
	}
	/* Below 4 GiB, so that the sums below cannot wrap. */
	if (size > KD_HOTPLUG_GPA - KD_IMAGE_GPA) {
		kd_error("guest image (%zu bytes): larger than the %llu bytes below 4 GiB", size,
			 KD_HOTPLUG_GPA - KD_IMAGE_GPA);
		return -1;
	}
	first = KD_IMAGE_GPA + sizeof(h);
	end = KD_IMAGE_GPA + size;
	if (h.entry_gpa < first || h.entry_gpa >= end) {
		kd_error("guest image (%zu bytes): entry point 0x%x lies outside it (0x%" PRIx64
			 " to 0x%" PRIx64 ")", size, h.entry_gpa, first, end);
		return -1;
	}
	if (h.vectors_gpa < first || h.vectors_gpa > end || end - h.vectors_gpa < stubs) {
		kd_error("guest image (%zu bytes): exception stubs at 0x%x (%" PRIu64 " bytes) lie "
			 "outside it (0x%" PRIx64 " to 0x%" PRIx64 ")", size, h.vectors_gpa, stubs,
			 first, end);
		return -1;
	}
	if (h.end_gpa < end) {
		kd_error("guest image (%zu bytes): its end 0x%" PRIx64 " lies before its last byte",
			 size, h.end_gpa);
		return -1;
	}
	if (h.reserved != 0) {
		kd_error("guest image (%zu bytes): reserved header field is 0x%x, not 0", size,
			 h.reserved);
		return -1;
	}
	if (h.end_gpa > cfg->boot_ram) {
		kd_error("guest image (%" PRIu64 " KiB loaded at 0x%llx) does not fit in boot RAM "
			 "of %" PRIu64 " KiB (<memory> or the <numa> cells)",
			 (uint64_t)((h.end_gpa - KD_IMAGE_GPA) >> 10), KD_IMAGE_GPA, cfg->boot_ram >> 10);
		return -1;
	}
	return 0;
}
