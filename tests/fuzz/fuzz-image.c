/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: kvm-demo's guest-image header check, vm_check_image(). A
 * reference computed in 128 bits from guest/abi.h's layout decides whether
 * a header is good; vm_check_image() must agree, read nothing past the
 * header (or past a shorter image), and explain a refusal on one line.
 *
 * Input: one byte of flags (& 3: the boot RAM, 0, 2 MiB, 128 MiB or 3 GiB),
 * the image size as 8 bytes little-endian, then the header's bytes; zeros
 * once the input runs out. Only the header is allocated: the check must
 * not read the rest.
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include <stdarg.h>
#include <string.h>

#include "core/util.h"
#include "core/vm.h"

static char last_error[512];
static unsigned int nr_errors;

void kd_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	nr_errors++;
}

static bool reference(const struct kd_image_header *h, uint64_t size, uint64_t boot_ram)
{
	typedef unsigned __int128 u128;
	u128 base = KD_IMAGE_GPA, hdr = sizeof(*h), end = base + size;

	return size >= hdr && h->magic == KD_IMAGE_MAGIC && end <= KD_HOTPLUG_GPA &&
	       h->entry_gpa >= base + hdr && h->entry_gpa < end &&
	       h->vectors_gpa >= base + hdr &&
	       (u128)h->vectors_gpa + (u128)KD_NR_VECTORS * KD_VECTOR_STUB_SIZE <= end &&
	       h->end_gpa >= end && h->reserved == 0 && h->end_gpa <= boot_ram;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t rams[] = { 0, 2ull << 20, 128ull << 20, 3ull << 30 };
	struct fuzz_input in = { data, size, 0 };
	struct vm_config cfg = { .boot_ram = rams[fuzz_u8(&in) & 3] };
	struct kd_image_header want;
	uint8_t bytes[sizeof(want)];
	uint64_t image_size = 0;
	size_t have;
	bool good;
	int ret;

	for (int i = 0; i < 8; i++)
		image_size |= (uint64_t)fuzz_u8(&in) << (8 * i);
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = fuzz_u8(&in);
	memcpy(&want, bytes, sizeof(want));
	/* Exactly what exists on the heap: ASan sees any read past it. */
	have = image_size < sizeof(bytes) ? (size_t)image_size : sizeof(bytes);
	uint8_t *image = malloc(have ? have : 1);

	if (!image)
		return 0;
	memcpy(image, bytes, have);
	good = reference(&want, image_size, cfg.boot_ram);
	nr_errors = 0;
	last_error[0] = 0;
	ret = vm_check_image(&cfg, image, (size_t)image_size);
	FUZZ_ASSERT(ret == 0 || ret == -1, "returned %d", ret);
	if (good)
		FUZZ_ASSERT(ret == 0, "refused a good header (size %llu): %s",
			    (unsigned long long)image_size, last_error);
	else
		FUZZ_ASSERT(ret == -1, "accepted a bad header: size %llu, entry 0x%x, end 0x%llx, "
			    "vectors 0x%x, reserved 0x%x, boot RAM %llu",
			    (unsigned long long)image_size, want.entry_gpa,
			    (unsigned long long)want.end_gpa, want.vectors_gpa, want.reserved,
			    (unsigned long long)cfg.boot_ram);
	FUZZ_ASSERT(ret == 0 ? nr_errors == 0 : nr_errors == 1, "%u error lines", nr_errors);
	for (const char *p = last_error; *p; p++)
		FUZZ_ASSERT(*p >= 0x20 && *p < 0x7f, "error byte 0x%02x", (unsigned char)*p);
	free(image);
	return 0;
}
