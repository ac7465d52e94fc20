/* SPDX-License-Identifier: MIT */
/* Shared by the Check programs: seeds, a small PRNG, thread failure records. */
#ifndef MMN_TESTUTIL_H
#define MMN_TESTUTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* xorshift64*: reproducible from a seed printed on failure. */
static inline uint64_t test_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n), n > 0. */
static inline uint64_t test_rand_below(uint64_t *s, uint64_t n)
{
	return test_rand(s) % n;
}

/*
 * Threads never assert: they record the first failure here and the main
 * thread asserts after join.
 */
struct test_failures {
	pthread_mutex_t lock;
	unsigned long count;
	char first[256];
};

#define TEST_FAILURES_INIT { PTHREAD_MUTEX_INITIALIZER, 0, "" }

__attribute__((format(printf, 2, 3)))
static inline void test_fail(struct test_failures *f, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&f->lock);
	if (f->count++ == 0) {
		va_start(ap, fmt);
		vsnprintf(f->first, sizeof(f->first), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&f->lock);
}

#endif /* MMN_TESTUTIL_H */
