/* SPDX-License-Identifier: MIT */
/* Shared by the Check programs: seeds, a small PRNG, thread failure records. */
#ifndef MMN_TESTUTIL_H
#define MMN_TESTUTIL_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Closed intervals of every shape an interval structure must handle. */
static inline void test_random_interval(uint64_t *seed, uint64_t *start, uint64_t *last)
{
	uint64_t s, len;

	switch (test_rand_below(seed, 6)) {
	case 0:		/* tiny, crowded near 0: many duplicates and nestings */
		s = test_rand_below(seed, 64);
		len = test_rand_below(seed, 8);
		break;
	case 1:		/* a point */
		s = test_rand_below(seed, 128);
		len = 0;
		break;
	case 2:		/* huge, anywhere, possibly reaching the top */
		s = test_rand(seed);
		len = test_rand(seed) >> test_rand_below(seed, 64);
		break;
	case 3:		/* the whole space */
		s = 0;
		len = UINT64_MAX;
		break;
	case 4:		/* near the top */
		s = UINT64_MAX - test_rand_below(seed, 64);
		len = test_rand_below(seed, 64);
		break;
	default:	/* page-like ranges in a 1 TiB space */
		s = test_rand_below(seed, 1ull << 28) << 12;
		len = (test_rand_below(seed, 512) << 12) + 0xfff;
		break;
	}
	*start = s;
	*last = len > UINT64_MAX - s ? UINT64_MAX : s + len;
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

/*
 * Run FN(ARG) in a forked child with stderr captured. Returns NULL when the
 * child died of SIGABRT and its stderr contains NEEDLE, else a static
 * description of what happened instead.
 */
static inline const char *test_expect_abort(void (*fn)(void *), void *arg,
					    const char *needle)
{
	static char why[512];
	char out[4096];
	size_t used = 0;
	ssize_t n;
	int fds[2], status;
	pid_t pid;

	if (pipe(fds))
		return "pipe failed";
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return "fork failed";
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		fn(arg);
		_exit(0);	/* no abort: the parent reports it */
	}
	close(fds[1]);
	while (used < sizeof(out) - 1 &&
	       (n = read(fds[0], out + used, sizeof(out) - 1 - used)) > 0)
		used += (size_t)n;
	out[used] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);

	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
		snprintf(why, sizeof(why), "child did not abort (status %#x), stderr: %.400s",
			 status, out);
		return why;
	}
	if (!strstr(out, needle)) {
		snprintf(why, sizeof(why), "abort message lacks \"%.60s\": %.400s", needle, out);
		return why;
	}
	return NULL;
}

/* The kinds of memory a VMM backs guest RAM with. */
enum test_mem_kind { TEST_MEM_PRIVATE, TEST_MEM_SHARED, TEST_MEM_MEMFD, TEST_MEM_KINDS };

/*
 * Map LEN bytes of KIND, read-write, filled with FILL. *FD gets the memfd,
 * or -1. Returns NULL on failure.
 */
static inline unsigned char *test_mem_map(enum test_mem_kind kind, size_t len,
					  int fill, int *fd)
{
	int flags = kind == TEST_MEM_PRIVATE ? MAP_PRIVATE : MAP_SHARED;
	void *p;

	*fd = -1;
	if (kind == TEST_MEM_MEMFD) {
		*fd = memfd_create("libmmn-test", MFD_CLOEXEC);
		if (*fd < 0 || ftruncate(*fd, (off_t)len))
			return NULL;
	} else {
		flags |= MAP_ANONYMOUS;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, *fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, fill, len);
	return p;
}

#endif /* MMN_TESTUTIL_H */
