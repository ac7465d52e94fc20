/* SPDX-License-Identifier: MIT */
/* The benchmark checks itself: see selftest.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mmn/mmn.h>

#include "bench.h"
#include "fixture.h"
#include "rwcache.h"
#include "selftest.h"
#include "sorted.h"

static char msg[256];

__attribute__((format(printf, 1, 2)))
static const char *fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return msg;
}

/* ------------------------------------------------------------------------ */

struct st_ival {
	struct mmn_itree_node node;
	bool in;
};

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return (x > y) - (x < y);
}

const char *selftest_itree_vs_sorted(uint64_t seed)
{
	enum { N = 2000, ROUNDS = 3000, SPACE = 1 << 20 };
	struct st_ival *iv = calloc(N, sizeof(*iv));
	void **a = calloc(N, sizeof(*a)), **b = calloc(N, sizeof(*b));
	const char *err = NULL;
	struct mmn_itree tree;
	struct sorted_set set;

	if (!iv || !a || !b || sorted_init(&set, 16)) {
		err = fail("out of memory");
		goto out_free;
	}
	mmn_itree_init(&tree);
	for (unsigned int i = 0; i < N; i++) {
		/* Mostly short intervals, some long, some duplicates. */
		uint64_t start = bench_rand_below(&seed, SPACE);
		uint64_t len = bench_rand_below(&seed, 8) ? 1 + bench_rand_below(&seed, 64)
							  : 1 + bench_rand_below(&seed, SPACE / 4);

		if (i % 97 == 1)
			start = iv[i - 1].node.start;
		iv[i].node.start = start;
		iv[i].node.last = start + len - 1;
	}
	for (unsigned int round = 0; round < ROUNDS && !err; round++) {
		struct st_ival *x = &iv[bench_rand_below(&seed, N)];
		uint64_t qs = bench_rand_below(&seed, SPACE);
		uint64_t ql = qs + bench_rand_below(&seed, bench_rand_below(&seed, 4) ? 64 : SPACE / 8);
		size_t na = 0, nb = 0;

		/* Toggle one interval in both, then query both. */
		if (x->in) {
			mmn_itree_remove(&tree, &x->node);
			if (sorted_remove(&set, x->node.start, x))
				err = fail("sorted_remove lost [%#llx, %#llx]",
					   (unsigned long long)x->node.start,
					   (unsigned long long)x->node.last);
		} else {
			mmn_itree_insert(&tree, &x->node);
			if (sorted_insert(&set, x->node.start, x->node.last, x))
				err = fail("out of memory");
		}
		x->in = !x->in;
		for (struct mmn_itree_node *nd = mmn_itree_iter_first(&tree, qs, ql); nd;
		     nd = mmn_itree_iter_next(nd, qs, ql))
			a[na++] = nd;
		for (size_t k = sorted_first(&set, qs, ql); k < set.n; k = sorted_next(&set, k + 1, qs, ql))
			b[nb++] = set.v[k].item;
		qsort(a, na, sizeof(*a), ptr_cmp);
		qsort(b, nb, sizeof(*b), ptr_cmp);
		if (!err && (na != nb || memcmp(a, b, na * sizeof(*a))))
			err = fail("query [%#llx, %#llx]: interval tree found %zu, sorted array %zu",
				   (unsigned long long)qs, (unsigned long long)ql, na, nb);
	}
	sorted_fini(&set);
out_free:
	free(b);
	free(a);
	free(iv);
	return err;
}

/* ------------------------------------------------------------------------ */

const char *selftest_fixture_hits(uint64_t seed)
{
	const size_t n = 1000;
	struct fixture fx;
	const char *err = NULL;

	if (fixture_init(&fx, n))
		return fail("cannot set up %zu subscriptions", n);
	for (unsigned int kind = FIX_HIT_NONE; kind <= FIX_HIT_64 && !err; kind++) {
		for (unsigned int i = 0; i < 200 && !err; i++) {
			uint64_t start, end, before = fixture_mmn_hits;
			unsigned int want = fixture_expected_hits(kind), got_rw;

			fixture_range(&fx, kind, bench_rand(&seed), &start, &end);
			fixture_invalidate_mmn(&fx, start, end);
			got_rw = fixture_invalidate_rw(&fx, start, end);
			if (fixture_mmn_hits - before != want || got_rw != want)
				err = fail("range [%#llx, %#llx) hit %llu in libmmn, %u in the"
					   " baseline; the figure needs %u",
					   (unsigned long long)start, (unsigned long long)end,
					   (unsigned long long)(fixture_mmn_hits - before), got_rw, want);
		}
	}
	/* Arbitrary ranges: the same subscriptions, one by one. */
	for (unsigned int i = 0; i < 2000 && !err; i++) {
		uint64_t top = 2 * n * FIX_SPAN;
		uint64_t start = bench_rand_below(&seed, top);
		uint64_t end = start + 1 + bench_rand_below(&seed, bench_rand_below(&seed, 2) ?
								BENCH_PAGE : 8 * FIX_SPAN);

		fixture_invalidate_mmn(&fx, start, end);
		fixture_invalidate_rw(&fx, start, end);
	}
	for (size_t i = 0; i < n && !err; i++)
		if (fx.subs[i].hits != fx.items[i].hits)
			err = fail("subscription %zu was hit %llu times in libmmn, %llu in the baseline",
				   i, (unsigned long long)fx.subs[i].hits,
				   (unsigned long long)fx.items[i].hits);
	fixture_fini(&fx);
	return err;
}

/* ------------------------------------------------------------------------ */

const char *selftest_protocol(void)
{
	struct proto_selftest_trace a, b;
	const char *err;

	err = proto_lockfree_impl.trace(&a);
	if (err)
		return err;
	err = proto_locked_impl.trace(&b);
	if (err)
		return err;
	if (a.n != b.n || memcmp(a.values, b.values, a.n * sizeof(a.values[0]))) {
		for (unsigned int i = 0; i < a.n && i < b.n; i++)
			if (a.values[i] != b.values[i])
				return fail("step %u: libmmn traced %llu, kernel-style %llu", i,
					    (unsigned long long)a.values[i],
					    (unsigned long long)b.values[i]);
		return fail("libmmn traced %u values, kernel-style %u", a.n, b.n);
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */

const char *selftest_fault(const char *design, uint64_t duration_ns)
{
	struct fault_params p = {
		.threads = 2,
		.inval_rate = 20000,
		.duration_ns = duration_ns,
		.verify = true,
		.seed = 42,
	};
	struct fault_result res;
	int err;

	/*
	 * On a busy machine the pacer or the faulting threads may not get a
	 * core within a short run: run longer (up to 16 times) until both
	 * have run. Every run is checked for stale translations.
	 */
	for (unsigned int attempt = 0;; attempt++) {
		if (!strcmp(design, "libmmn"))
			err = proto_lockfree_impl.fault(&p, &res);
		else if (!strcmp(design, "kernel_style"))
			err = proto_locked_impl.fault(&p, &res);
		else if (!strcmp(design, "rwlock"))
			err = rwcache_fault(&p, &res);
		else
			return fail("unknown design '%s'", design);
		if (err)
			return fail("%s: fault run failed: %s", design, strerror(-err));
		if (res.stale)
			return fail("%s: %llu stale translations in %llu faults", design,
				    (unsigned long long)res.stale, (unsigned long long)res.faults);
		if (res.faults && res.invalidations)
			return NULL;
		if (attempt == 4)
			return fail("%s: nothing ran in %.2f s: %llu faults, %llu invalidations",
				    design, (double)p.duration_ns / 1e9,
				    (unsigned long long)res.faults,
				    (unsigned long long)res.invalidations);
		p.duration_ns *= 2;
	}
}
