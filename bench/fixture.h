/* SPDX-License-Identifier: MIT */
/*
 * N range subscriptions, each covering FIX_SPAN bytes with a gap of the
 * same size after it, held both by a libmmn state and by the rwlock +
 * sorted array baseline, so that one range hits the same subscriptions in
 * both. For the invalidation and insert/remove figures and their self-test.
 */
#ifndef MMN_BENCH_FIXTURE_H
#define MMN_BENCH_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <mmn/mmn.h>

#include "rwcache.h"

#define FIX_SPAN	(16 * BENCH_PAGE)

struct fix_sub {
	struct mmn_range_sub rsub;
	uint64_t hits;		/* ->invalidate() calls */
};

struct fix_item {
	uint64_t hits;		/* drops by the baseline */
};

struct fixture {
	size_t n;
	struct mmn_state *state;
	struct fix_sub *subs;
	struct rwcache cache;
	bool cache_ready;
	struct fix_item *items;
};

/* How many subscriptions a fixture_range() hits. */
enum fix_hits {
	FIX_HIT_NONE,
	FIX_HIT_ONE,
	FIX_HIT_64,
};

/* Returns 0 or -errno. */
int fixture_init(struct fixture *fx, size_t n);
void fixture_fini(struct fixture *fx);

/* The subscriptions KIND stands for: 0, 1 or 64. */
unsigned int fixture_expected_hits(enum fix_hits kind);

/*
 * A range [*start, *end) hitting exactly fixture_expected_hits(KIND)
 * subscriptions, chosen by R (any number: reduced to what fits).
 */
void fixture_range(const struct fixture *fx, enum fix_hits kind, uint64_t r,
		   uint64_t *start, uint64_t *end);

/* A one-page range inside a gap, chosen by R, for a new subscription. */
uint64_t fixture_gap_page(const struct fixture *fx, uint64_t r);

/* Invalidate [start, end) in the libmmn state (start + end). */
void fixture_invalidate_mmn(struct fixture *fx, uint64_t start, uint64_t end);

/* Invalidate [start, end) in the baseline. Returns the hits. */
unsigned int fixture_invalidate_rw(struct fixture *fx, uint64_t start, uint64_t end);

/* ->invalidate() calls on fixture subscriptions so far, all fixtures. */
extern uint64_t fixture_mmn_hits;

/* The callbacks a new libmmn subscription uses. */
extern const struct mmn_range_sub_ops fixture_ops;

#endif /* MMN_BENCH_FIXTURE_H */
