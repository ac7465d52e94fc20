/* SPDX-License-Identifier: MIT */
/*
 * Baseline 1: translations in a sorted array behind a pthread_rwlock.
 * Readers hold the read lock for as long as they use a translation;
 * writers (invalidations, inserts, removes) take it for writing, so a
 * writer waits for every reader and no reader ever retries. What many
 * VMMs and vhost-user backends do.
 */
#ifndef MMN_BENCH_RWCACHE_H
#define MMN_BENCH_RWCACHE_H

#include <pthread.h>

#include "bench.h"
#include "sorted.h"

struct rwcache {
	pthread_rwlock_t lock;
	struct sorted_set set;		/* lock */
};

/* Returns 0 or -errno. */
int rwcache_init(struct rwcache *c, size_t cap);
void rwcache_fini(struct rwcache *c);

/* Fill an unused cache with N entries. Returns 0 or -ENOMEM. */
int rwcache_build(struct rwcache *c, const struct sorted_entry *e, size_t n);

/* Under the write lock. Return 0 or -errno. */
int rwcache_insert(struct rwcache *c, uint64_t start, uint64_t last, void *item);
int rwcache_remove(struct rwcache *c, uint64_t start, void *item);

/*
 * Under the write lock, call DROP(item) on every entry overlapping
 * [start, last]. Returns how many.
 */
unsigned int rwcache_invalidate(struct rwcache *c, uint64_t start, uint64_t last,
				void (*drop)(void *item));

/* read lock + unlock in a loop, THREADS threads on one cache. */
int rwcache_readside(unsigned int threads, uint64_t iters, struct readside_result *res);

/* The fault pattern of bench.h with the rwlock design. */
int rwcache_fault(const struct fault_params *p, struct fault_result *res);

#endif /* MMN_BENCH_RWCACHE_H */
