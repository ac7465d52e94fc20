/* SPDX-License-Identifier: MIT */
/*
 * The shadow map's costs on this machine: a hit (lookup and an 8-byte copy
 * under the lock), a miss (read_begin, translate, lock, read_retry, insert)
 * and the invalidation that drops an entry, against a translation that is
 * a table lookup like memory_translate(). Figures, not a test.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "shadow.h"

#define SPACE		(1ull << 30)
#define BLOCKS		(SPACE / SHADOW_BLOCK)

static char *ram;
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;

static int translate(void *ctx, uint64_t gpa, uint64_t len, bool write, void **hva)
{
	(void)ctx, (void)write;
	if (len == 0 || gpa + len < gpa || gpa + len > SPACE)
		return -EFAULT;
	pthread_rwlock_rdlock(&table_lock);
	*hva = ram + gpa;
	pthread_rwlock_unlock(&table_lock);
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
	struct mmn_state *mm;
	struct shadow_map sm;
	uint64_t v = 0;
	double t;
	const int hits = 2000000, rounds = 20;

	ram = mmap(NULL, SPACE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (ram == MAP_FAILED || mmn_state_new(&mm) || shadow_map_init(&sm, mm, SPACE, translate, NULL)) {
		fprintf(stderr, "shadow-bench: setup failed\n");
		return 1;
	}
	shadow_read(&sm, 0, &v, sizeof(v));
	t = now();
	for (int i = 0; i < hits; i++)
		shadow_read(&sm, (uint64_t)(i & 4095) * 8, &v, sizeof(v));
	printf("shadow-bench: hit (8-byte read through an entry): %.1f ns\n",
	       (now() - t) / hits * 1e9);

	double miss = 0, inval = 0;

	/* Fault the memory in first: page faults are not the map's cost. */
	for (uint64_t b = 0; b < BLOCKS; b++)
		ram[b * SHADOW_BLOCK + 64] = 1;
	for (int r = 0; r < rounds; r++) {
		struct mmn_invalidate_desc d = { .start = 0, .end = SPACE, .event = MMN_EVENT_REMAP,
						 .flags = MMN_INVALIDATE_BLOCKABLE };

		t = now();
		for (uint64_t b = 0; b < BLOCKS; b++)
			shadow_read(&sm, b * SHADOW_BLOCK + 64, &v, sizeof(v));
		miss += now() - t;
		t = now();
		mmn_invalidate_start(mm, &d);
		mmn_invalidate_end(mm, &d);
		inval += now() - t;
	}
	printf("shadow-bench: miss (fill a 2 MiB entry, then the read): %.1f ns\n",
	       miss / (rounds * (double)BLOCKS) * 1e9);
	printf("shadow-bench: invalidation dropping %" PRIu64 " entries: %.1f us (%.1f ns per entry)\n",
	       (uint64_t)BLOCKS, inval / rounds * 1e6, inval / (rounds * (double)BLOCKS) * 1e9);

	struct shadow_stats st;

	shadow_map_stats(&sm, &st);
	printf("shadow-bench: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " dropped\n", st.hits,
	       st.misses, st.dropped);
	shadow_map_destroy(&sm);
	mmn_state_free(mm);
	munmap(ram, SPACE);
	return 0;
}
