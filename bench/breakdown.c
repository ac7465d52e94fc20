/* SPDX-License-Identifier: MIT */
/*
 * mmn-bench-breakdown: where the nanoseconds of one invalidation go, in
 * libmmn and in the rwlock + sorted array baseline, each step timed alone
 * in one process on the invalidation figures' workload (bench/fixture.c).
 *
 *	whole:    mmn_invalidate_start + _end, hitting 0, 1 and 64
 *	locks:    the atomic operations of an invalidation hitting nothing,
 *	          uncontended: libmmn's lock round trip on the state's word
 *	          (range_begin) and the end's compare-and-swap, done the same
 *	          way on a word of this program's; the rwlock write lock +
 *	          unlock (the baseline's one)
 *	search:   the first-overlap search alone: a tree laid out as the
 *	          state's (same objects, same insert order) searched by the
 *	          public iterator and by the notifier's (which prefetches),
 *	          and the sorted array's binary search, for the ranges hitting 0
 *	walk:     the 63 further hits of a 64-hit range, iterated without
 *	          callbacks, per hit: tree successor steps against array steps
 *	dispatch: per extra hit, the whole minus the walk: the indirect call,
 *	          the callback's stores, the ops load through the owner
 *
 * Each figure is the minimum over REPS runs of a loop of at least 20 ms
 * (the minimum: the least disturbed run on a shared machine). A guide to
 * where to look, not a figure to quote: steps overlap in a real
 * invalidation, so the parts need not add up to the whole exactly.
 * Usage: mmn-bench-breakdown [--reps N] [--n N]
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "index.h"
#include "itree.h"

#define RANGES	4096
#define MIN_NS	20000000ull

static uint64_t sink;

struct tree_copy {
	struct mmn_itree tree;
	struct index idx;		/* the same intervals in the B+-tree index */
	struct fix_sub *subs;
};

struct ctx {
	struct fixture *fx;
	struct tree_copy *tc;
	uint64_t start[RANGES], end[RANGES];
	uint64_t word;
	pthread_rwlock_t rwlock;
};

typedef void (*step_fn)(struct ctx *c, uint64_t ops);

static void step_mmn(struct ctx *c, uint64_t ops)
{
	for (uint64_t i = 0; i < ops; i++)
		fixture_invalidate_mmn(c->fx, c->start[i % RANGES], c->end[i % RANGES]);
}

static void step_rw(struct ctx *c, uint64_t ops)
{
	for (uint64_t i = 0; i < ops; i++)
		sink += fixture_invalidate_rw(c->fx, c->start[i % RANGES], c->end[i % RANGES]);
}

/* As notifier.c does: CAS to lock, exchange to unlock, then the end's CAS. */
static void step_word(struct ctx *c, uint64_t ops)
{
	for (uint64_t i = 0; i < ops; i++) {
		uint64_t w = __atomic_load_n(&c->word, __ATOMIC_RELAXED);

		if (!__atomic_compare_exchange_n(&c->word, &w, w | 1, false,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			abort();
		sink++;
		__atomic_exchange_n(&c->word, w + 16, __ATOMIC_RELEASE);
		w = __atomic_load_n(&c->word, __ATOMIC_RELAXED);
		if (!__atomic_compare_exchange_n(&c->word, &w, w - 16, false,
						 __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			abort();
	}
}

static void step_rwlock(struct ctx *c, uint64_t ops)
{
	for (uint64_t i = 0; i < ops; i++) {
		pthread_rwlock_wrlock(&c->rwlock);
		sink++;
		pthread_rwlock_unlock(&c->rwlock);
	}
}

static void step_tree_first(struct ctx *c, uint64_t ops)
{
	for (uint64_t i = 0; i < ops; i++)
		sink += (uintptr_t)mmn_itree_iter_first(&c->tc->tree, c->start[i % RANGES],
							c->end[i % RANGES] - 1);
}

static void step_tree_first_prefetch(struct ctx *c, uint64_t ops)
{
	for (uint64_t i = 0; i < ops; i++)
		sink += (uintptr_t)itree_first_prefetch(&c->tc->tree, c->start[i % RANGES],
							c->end[i % RANGES] - 1);
}

static void step_index_first(struct ctx *c, uint64_t ops)
{
	struct index_iter it;

	for (uint64_t i = 0; i < ops; i++)
		sink += (uintptr_t)index_iter_first(&c->tc->idx, &it, c->start[i % RANGES],
						    c->end[i % RANGES] - 1);
}

static void step_array_first(struct ctx *c, uint64_t ops)
{
	for (uint64_t i = 0; i < ops; i++)
		sink += sorted_first(&c->fx->cache.set, c->start[i % RANGES],
				     c->end[i % RANGES] - 1);
}

static void step_tree_walk(struct ctx *c, uint64_t ops)
{
	for (uint64_t i = 0; i < ops; i++) {
		uint64_t s = c->start[i % RANGES], l = c->end[i % RANGES] - 1;

		for (struct mmn_itree_node *n = mmn_itree_iter_first(&c->tc->tree, s, l); n;
		     n = mmn_itree_iter_next(n, s, l))
			sink++;
	}
}

static void step_array_walk(struct ctx *c, uint64_t ops)
{
	const struct sorted_set *set = &c->fx->cache.set;

	for (uint64_t i = 0; i < ops; i++) {
		uint64_t s = c->start[i % RANGES], l = c->end[i % RANGES] - 1;

		for (size_t k = sorted_first(set, s, l); k < set->n; k = sorted_next(set, k + 1, s, l))
			sink += (uintptr_t)set->v[k].item;
	}
}

/* ns per operation: the least of REPS loops of at least MIN_NS each. */
static double measure(struct ctx *c, step_fn fn, unsigned int reps)
{
	uint64_t ops = 1, t;
	double best = 1e300;

	for (;;) {
		t = bench_now_ns();
		fn(c, ops);
		t = bench_now_ns() - t;
		if (t >= MIN_NS)
			break;
		ops *= t < MIN_NS / 16 ? 8 : 2;
	}
	for (unsigned int r = 0; r < reps; r++) {
		double v;

		t = bench_now_ns();
		fn(c, ops);
		v = (double)(bench_now_ns() - t) / (double)ops;
		if (v < best)
			best = v;
	}
	return best;
}

static void ranges(struct ctx *c, enum fix_hits kind, uint64_t *seed)
{
	for (unsigned int i = 0; i < RANGES; i++)
		fixture_range(c->fx, kind, bench_rand(seed), &c->start[i], &c->end[i]);
}

/* The state's tree, rebuilt beside it: the fixture's insert order and objects. */
static int tree_copy_init(struct tree_copy *tc, const struct fixture *fx)
{
	uint64_t seed = 0x5eed;	/* fixture_init()'s shuffle, step for step */
	size_t *order = malloc(fx->n * sizeof(*order));

	tc->subs = calloc(fx->n, sizeof(*tc->subs));
	if (!order || !tc->subs) {
		free(order);
		free(tc->subs);
		return -ENOMEM;
	}
	mmn_itree_init(&tc->tree);
	index_init(&tc->idx);
	for (size_t i = 0; i < fx->n; i++)
		order[i] = i;
	for (size_t i = fx->n - 1; i > 0; i--) {
		size_t j = (size_t)bench_rand_below(&seed, i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (size_t k = 0; k < fx->n; k++) {
		struct mmn_itree_node *node = &tc->subs[order[k]].rsub.node;

		node->start = fx->subs[order[k]].rsub.node.start;
		node->last = fx->subs[order[k]].rsub.node.last;
		mmn_itree_insert(&tc->tree, node);
		if (index_insert(&tc->idx, node->start, node->last, node)) {
			free(order);
			return -ENOMEM;
		}
	}
	free(order);
	return 0;
}

static void breakdown(size_t n, unsigned int reps)
{
	struct fixture fx;
	struct tree_copy tc;
	struct ctx *c = calloc(1, sizeof(*c));
	uint64_t seed = 0x6d6d6e ^ 0x1234;
	double whole[3][2] = { { 0 } }, lock_pair, rw_pair, first_pf = 0, first_idx = 0, first[2] = { 0 }, walk[2] = { 0 };

	if (!c || fixture_init(&fx, n) || tree_copy_init(&tc, &fx)) {
		fprintf(stderr, "mmn-bench-breakdown: cannot set up %zu subscriptions\n", n);
		exit(1);
	}
	c->fx = &fx;
	c->tc = &tc;
	pthread_rwlock_init(&c->rwlock, NULL);

	for (unsigned int k = 0; k < 3; k++) {
		ranges(c, (enum fix_hits)k, &seed);
		whole[k][0] = measure(c, step_mmn, reps);
		whole[k][1] = measure(c, step_rw, reps);
		if (k == 0) {
			first[0] = measure(c, step_tree_first, reps);
			first_pf = measure(c, step_tree_first_prefetch, reps);
			first_idx = measure(c, step_index_first, reps);
			first[1] = measure(c, step_array_first, reps);
		}
		if (k == 2) {
			walk[0] = measure(c, step_tree_walk, reps);
			walk[1] = measure(c, step_array_walk, reps);
		}
	}
	lock_pair = measure(c, step_word, reps);
	rw_pair = measure(c, step_rwlock, reps);

	printf("\n== among %zu subscriptions, ns (min of %u)     libmmn   rwlock+array\n",
	       n, reps);
	printf("  invalidation hitting 0                  %8.1f   %8.1f   (%.2fx)\n",
	       whole[0][0], whole[0][1], whole[0][1] / whole[0][0]);
	printf("  invalidation hitting 1                  %8.1f   %8.1f   (%.2fx)\n",
	       whole[1][0], whole[1][1], whole[1][1] / whole[1][0]);
	printf("  invalidation hitting 64                 %8.1f   %8.1f   (%.2fx)\n",
		       whole[2][0], whole[2][1], whole[2][1] / whole[2][0]);
	printf("  atomics (lock + end's CAS / rwlock pair) %7.1f   %8.1f\n",
	       lock_pair, rw_pair);
	printf("  first-overlap search, hitting 0         %8.1f   %8.1f\n", first[0], first[1]);
	printf("    the notifier's, prefetching children  %8.1f\n", first_pf);
	printf("    the B+-tree index (not the notifier's) %7.1f   (%.1f bytes an interval)\n",
	       first_idx, (double)index_bytes(&tc.idx) / (double)n);
	printf("  rest of hitting 0 (bookkeeping, calls)  %8.1f   %8.1f\n",
	       whole[0][0] - lock_pair - first[0], whole[0][1] - rw_pair - first[1]);
	printf("  first hit: hitting 1 - hitting 0        %8.1f   %8.1f\n",
	       whole[1][0] - whole[0][0], whole[1][1] - whole[0][1]);
	{
		double per_hit[2] = { (whole[2][0] - whole[1][0]) / 63,
				      (whole[2][1] - whole[1][1]) / 63 };
		double walk_hit[2] = { (walk[0] - first[0]) / 63, (walk[1] - first[1]) / 63 };

		printf("  each further hit                        %8.1f   %8.1f\n",
		       per_hit[0], per_hit[1]);
		printf("    of which the walk (next overlap)      %8.1f   %8.1f\n",
		       walk_hit[0], walk_hit[1]);
		printf("    of which the callback dispatch        %8.1f   %8.1f\n",
		       per_hit[0] - walk_hit[0], per_hit[1] - walk_hit[1]);
	}
	fixture_fini(&fx);
	index_fini(&tc.idx);
	free(tc.subs);
	pthread_rwlock_destroy(&c->rwlock);
	free(c);
}

int main(int argc, char **argv)
{
	unsigned int reps = 15;
	size_t only_n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			reps = (unsigned int)strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--n") && i + 1 < argc) {
			only_n = strtoul(argv[++i], NULL, 0);
		} else {
			fprintf(stderr, "usage: mmn-bench-breakdown [--reps N] [--n N]\n"
				"unknown argument: %s\n", argv[i]);
			return 2;
		}
	}
	if (reps == 0) {
		fprintf(stderr, "mmn-bench-breakdown: --reps must be at least 1\n");
		return 2;
	}
	if (only_n && only_n < 64) {
		fprintf(stderr, "mmn-bench-breakdown: --n must be at least 64 (a range hits 64)\n");
		return 2;
	}
	printf("mmn-bench-breakdown: one invalidation, step by step (see bench/breakdown.c)\n");
	if (only_n) {
		breakdown(only_n, reps);
	} else {
		breakdown(100, reps);
		breakdown(100000, reps);
	}
	return sink == 42 ? 1 : 0;	/* keep the sink alive */
}
