/* SPDX-License-Identifier: MIT */
/* Shared by the fuzz targets: reading operations from the input. */
#ifndef MMN_FUZZ_H
#define MMN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input, consumed a byte at a time; zeros once it runs out. */
struct fuzz_input {
	const uint8_t *data;
	size_t size;
	size_t pos;
};

static inline int fuzz_more(const struct fuzz_input *in)
{
	return in->pos < in->size;
}

static inline uint8_t fuzz_u8(struct fuzz_input *in)
{
	return in->pos < in->size ? in->data[in->pos++] : 0;
}

/*
 * A key from one byte: small values so that ranges collide often, plus
 * the two ends of the space, where off-by-one and wrap bugs live.
 */
static inline uint64_t fuzz_key(struct fuzz_input *in)
{
	uint8_t b = fuzz_u8(in);

	if (b == 0xff)
		return UINT64_MAX;
	if (b == 0xfe)
		return UINT64_MAX - 1;
	return b;
}

/* A broken property: say which, and abort so that libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond, ...)							\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);				\
			fputc('\n', stderr);					\
			abort();						\
		}								\
	} while (0)

#endif /* MMN_FUZZ_H */
