/* SPDX-License-Identifier: MIT */
/*
 * mmn-bench-ir: the interval index designs on one workload, per operation.
 *
 * The workload: N closed intervals, start uniform in [0, 2^40), length
 * uniform in [4 KiB, 64 KiB]; all inserted in random order into an empty
 * index; N queries [q, q + 4095], q uniform; all removed in another random
 * order.
 *
 * --callgrind: run one design once under valgrind --tool=callgrind
 * --collect-atstart=no with --toggle-collect on the design's own functions
 * (printed by --functions); after each phase a client request dumps the
 * phase's counts, so they hold the design's instructions and nothing of
 * the workload around them (bench/bench-ir sums them up).
 *
 * --wall REPS: every design in turn, REPS times, wall clock per operation:
 * median, min and max over the repetitions of one run.
 *
 * usage: mmn-bench-ir --functions DESIGN
 *        mmn-bench-ir --callgrind DESIGN N [--check]
 *        mmn-bench-ir --wall REPS N [--seed S]
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mmn/mmn.h>

#include "bench.h"
#include "index.h"
#include "itree.h"
#include "itree-before.h"
#include "sorted.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND_H 1
#endif
#endif
#ifndef HAVE_CALLGRIND_H
#define CALLGRIND_DUMP_STATS_AT(what) ((void)(what))
#endif

#define SPACE_BITS	40
#define LEN_MIN		4096ull
#define LEN_MAX		65536ull
#define QUERY_LEN	4096ull

_Atomic uint64_t bench_sink;

struct item {
	struct mmn_itree_node node;	/* start and last live here for all designs */
};

struct work {
	size_t n;
	struct item *items;
	size_t *ins_order, *rm_order;
	uint64_t *qs;
	bool check;
	/* The designs' state. */
	struct mmn_itree tree;
	struct index idx;
	struct sorted_set set;
};

static void die(const char *what)
{
	fprintf(stderr, "mmn-bench-ir: %s\n", what);
	exit(2);
}

static void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		die("out of memory");
	return p;
}

static void shuffle(size_t *v, size_t n, uint64_t *seed)
{
	for (size_t i = 0; i < n; i++)
		v[i] = i;
	for (size_t i = n - 1; n && i > 0; i--) {
		size_t j = (size_t)bench_rand_below(seed, i + 1), t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

static void work_init(struct work *w, size_t n, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->n = n;
	w->items = xmalloc(n * sizeof(*w->items));
	w->ins_order = xmalloc(n * sizeof(size_t));
	w->rm_order = xmalloc(n * sizeof(size_t));
	w->qs = xmalloc(n * sizeof(uint64_t));
	for (size_t i = 0; i < n; i++) {
		uint64_t start = bench_rand(&seed) >> (64 - SPACE_BITS);
		uint64_t len = LEN_MIN + bench_rand_below(&seed, LEN_MAX - LEN_MIN + 1);

		w->items[i].node.start = start;
		w->items[i].node.last = start + len - 1;
	}
	shuffle(w->ins_order, n, &seed);
	shuffle(w->rm_order, n, &seed);
	for (size_t i = 0; i < n; i++)
		w->qs[i] = bench_rand(&seed) >> (64 - SPACE_BITS);
}

static void work_fini(struct work *w)
{
	free(w->items);
	free(w->ins_order);
	free(w->rm_order);
	free(w->qs);
}

/* ------------------------------------------------------------------------
 * The designs, behind one interface. The phases call them through
 * pointers, out of line: what callgrind counts starts at their entry.
 */

struct design {
	const char *id;
	const char *functions;	/* for --toggle-collect, comma-separated */
	void (*init)(struct work *w);
	void (*insert)(struct work *w, struct item *it);
	uint64_t (*query)(struct work *w, uint64_t start, uint64_t last);
	void (*remove)(struct work *w, struct item *it);
	const char *(*check)(struct work *w);
	void (*fini)(struct work *w);
};

static void before_init(struct work *w)
{
	itree_before_init(&w->tree);
}

static void before_insert(struct work *w, struct item *it)
{
	itree_before_insert(&w->tree, &it->node);
}

static uint64_t before_query(struct work *w, uint64_t start, uint64_t last)
{
	uint64_t hits = 0;

	for (struct mmn_itree_node *nd = itree_before_iter_first(&w->tree, start, last); nd;
	     nd = itree_before_iter_next(nd, start, last))
		hits++;
	return hits;
}

static void before_remove(struct work *w, struct item *it)
{
	itree_before_remove(&w->tree, &it->node);
}

static const char *before_check(struct work *w)
{
	return itree_before_check(&w->tree);
}

static void itree_init(struct work *w)
{
	mmn_itree_init(&w->tree);
}

static void itree_insert(struct work *w, struct item *it)
{
	mmn_itree_insert(&w->tree, &it->node);
}

static uint64_t itree_query(struct work *w, uint64_t start, uint64_t last)
{
	uint64_t hits = 0;

	for (struct mmn_itree_node *nd = mmn_itree_iter_first(&w->tree, start, last); nd;
	     nd = mmn_itree_iter_next(nd, start, last))
		hits++;
	return hits;
}

static void itree_remove(struct work *w, struct item *it)
{
	mmn_itree_remove(&w->tree, &it->node);
}

static const char *itree_check_w(struct work *w)
{
	return itree_check(&w->tree);
}

static void tree_fini(struct work *w)
{
	(void)w;
}

static void idx_init(struct work *w)
{
	index_init(&w->idx);
}

static void idx_insert(struct work *w, struct item *it)
{
	if (index_insert(&w->idx, it->node.start, it->node.last, it))
		die("index_insert: out of memory");
}

static uint64_t idx_query(struct work *w, uint64_t start, uint64_t last)
{
	struct index_iter iter;
	uint64_t hits = 0;

	for (void *p = index_iter_first(&w->idx, &iter, start, last); p;
	     p = index_iter_next(&iter))
		hits++;
	return hits;
}

static void idx_remove(struct work *w, struct item *it)
{
	index_remove(&w->idx, it->node.start, it->node.last, it);
}

static const char *idx_check(struct work *w)
{
	return index_check(&w->idx);
}

static void idx_fini(struct work *w)
{
	index_fini(&w->idx);
}


static void sorted_init_w(struct work *w)
{
	if (sorted_init(&w->set, w->n))
		die("out of memory");
}

static void sorted_insert_w(struct work *w, struct item *it)
{
	if (sorted_insert(&w->set, it->node.start, it->node.last, it))
		die("out of memory");
}

static uint64_t sorted_query(struct work *w, uint64_t start, uint64_t last)
{
	uint64_t hits = 0;

	for (size_t k = sorted_first(&w->set, start, last); k < w->set.n;
	     k = sorted_next(&w->set, k + 1, start, last))
		hits++;
	return hits;
}

static void sorted_remove_w(struct work *w, struct item *it)
{
	if (sorted_remove(&w->set, it->node.start, it))
		die("sorted array lost an entry");
}

/* Past this many, the array is built at once and only queried. */
#define SORTED_MAX_UPDATES 10000

static void sorted_build_all(struct work *w)
{
	struct sorted_entry *e = xmalloc(w->n * sizeof(*e));

	for (size_t i = 0; i < w->n; i++)
		e[i] = (struct sorted_entry){ .start = w->items[i].node.start,
					      .last = w->items[i].node.last,
					      .item = &w->items[i] };
	if (sorted_build(&w->set, e, w->n))
		die("out of memory");
	free(e);
}

static const char *sorted_check(struct work *w)
{
	(void)w;
	return NULL;
}

static void sorted_fini_w(struct work *w)
{
	sorted_fini(&w->set);
}

static const struct design designs[] = {
	{ "itree_before", "itree_before_insert,itree_before_iter_*,itree_before_remove",
	  before_init, before_insert, before_query, before_remove, before_check, tree_fini },
	{ "libmmn", "mmn_itree_insert,mmn_itree_iter_*,mmn_itree_remove",
	  itree_init, itree_insert, itree_query, itree_remove, itree_check_w, tree_fini },
	{ "index", "index_insert,index_iter_*,index_remove",
	  idx_init, idx_insert, idx_query, idx_remove, idx_check, idx_fini },
	{ "sorted_array", "sorted_insert,sorted_first,sorted_next,sorted_remove",
	  sorted_init_w, sorted_insert_w, sorted_query, sorted_remove_w, sorted_check,
	  sorted_fini_w },
};
#define NDESIGNS (sizeof(designs) / sizeof(designs[0]))

static const struct design *find_design(const char *id)
{
	for (size_t i = 0; i < NDESIGNS; i++)
		if (!strcmp(designs[i].id, id))
			return &designs[i];
	fprintf(stderr, "mmn-bench-ir: unknown design '%s'\n", id);
	exit(2);
}

static void check(struct work *w, const struct design *d, const char *after)
{
	const char *why;

	if (!w->check)
		return;
	why = d->check(w);
	if (why) {
		fprintf(stderr, "mmn-bench-ir: %s: broken after %s: %s\n", d->id, after, why);
		exit(1);
	}
}

static uint64_t phase_insert(struct work *w, const struct design *d)
{
	for (size_t i = 0; i < w->n; i++) {
		d->insert(w, &w->items[w->ins_order[i]]);
		check(w, d, "insert");
	}
	return bench_now_ns();
}

static uint64_t phase_query(struct work *w, const struct design *d, uint64_t *hits)
{
	uint64_t h = 0;

	for (size_t i = 0; i < w->n; i++)
		h += d->query(w, w->qs[i], w->qs[i] + QUERY_LEN - 1);
	*hits = h;
	return bench_now_ns();
}

static uint64_t phase_remove(struct work *w, const struct design *d)
{
	for (size_t i = 0; i < w->n; i++) {
		d->remove(w, &w->items[w->rm_order[i]]);
		check(w, d, "remove");
	}
	return bench_now_ns();
}

static int run_callgrind(const struct design *d, size_t n, uint64_t seed, bool checking)
{
	struct work w;
	uint64_t hits;

	work_init(&w, n, seed);
	w.check = checking;
	d->init(&w);
	phase_insert(&w, d);
	CALLGRIND_DUMP_STATS_AT("insert");
	if (d->init == idx_init)
		fprintf(stderr, "index: %.1f bytes per interval, height %u\n",
			(double)index_bytes(&w.idx) / (double)n, w.idx.height);
	phase_query(&w, d, &hits);
	CALLGRIND_DUMP_STATS_AT("query");
	phase_remove(&w, d);
	CALLGRIND_DUMP_STATS_AT("remove");
	d->fini(&w);
	/* The same hits from every design, or one of them is wrong. */
	printf("%s n=%zu hits=%llu\n", d->id, n, (unsigned long long)hits);
	work_fini(&w);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

#define MAX_REPS 31

static int run_wall(unsigned int reps, size_t n, uint64_t seed, const char *only)
{
	static const char *const ops[3] = { "insert", "query", "remove" };
	double t[NDESIGNS][3][MAX_REPS];
	uint64_t hits[NDESIGNS];
	struct work w;

	work_init(&w, n, seed);
	for (unsigned int r = 0; r < reps; r++) {
		for (size_t k = 0; k < NDESIGNS; k++) {
			/* Rotate the order: no design always runs on a cold cache. */
			const struct design *d = &designs[(k + r) % NDESIGNS];
			size_t di = (size_t)(d - designs);
			uint64_t t0, t1, t2, t3;

			if (only && !strstr(only, d->id))
				continue;
			d->init(&w);
			if (d->init == sorted_init_w && n > SORTED_MAX_UPDATES) {
				/* O(n) per update: built whole, only queried. */
				sorted_build_all(&w);
				t0 = t1 = bench_now_ns();
				t2 = phase_query(&w, d, &hits[di]);
				t3 = t2;
				d->fini(&w);
				t[di][0][r] = t[di][2][r] = NAN;
				t[di][1][r] = (double)(t2 - t1) / (double)n;
				continue;
			}
			t0 = bench_now_ns();
			t1 = phase_insert(&w, d);
			t2 = phase_query(&w, d, &hits[di]);
			t3 = phase_remove(&w, d);
			d->fini(&w);
			t[di][0][r] = (double)(t1 - t0) / (double)n;
			t[di][1][r] = (double)(t2 - t1) / (double)n;
			t[di][2][r] = (double)(t3 - t2) / (double)n;
		}
	}
	for (size_t di = 0; di < NDESIGNS; di++) {
		if (only && !strstr(only, designs[di].id))
			continue;
		for (unsigned int op = 0; op < 3; op++) {
			qsort(t[di][op], reps, sizeof(double), cmp_double);
			/* design n op median min max hits */
			printf("%s %zu %s %.1f %.1f %.1f %llu\n", designs[di].id, n, ops[op],
			       t[di][op][reps / 2], t[di][op][0], t[di][op][reps - 1],
			       (unsigned long long)hits[di]);
		}
	}
	work_fini(&w);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mmn-bench-ir --functions DESIGN\n"
		"       mmn-bench-ir --callgrind DESIGN N [--check] [--seed S]\n"
		"       mmn-bench-ir --wall REPS N [--only DESIGNS] [--seed S]\n"
		"designs: itree_before libmmn index sorted_array\n");
	exit(2);
}

static size_t parse_n(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || v < 1 || v > 1e8)
		usage();
	return (size_t)v;
}

int main(int argc, char **argv)
{
	uint64_t seed = 0x6d6d6e;
	const char *only = NULL;
	bool checking = false;

	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--check"))
			checking = true;
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else
			usage();
	}
	if (argc == 3 && !strcmp(argv[1], "--functions")) {
		puts(find_design(argv[2])->functions);
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "--callgrind")) {
#ifndef HAVE_CALLGRIND_H
		die("built without <valgrind/callgrind.h>: install package valgrind, rebuild");
#endif
		return run_callgrind(find_design(argv[2]), parse_n(argv[3]), seed, checking);
	}
	if (argc >= 4 && !strcmp(argv[1], "--wall")) {
		unsigned long reps = strtoul(argv[2], NULL, 10);

		if (reps < 1 || reps > MAX_REPS)
			usage();
		return run_wall((unsigned int)reps, parse_n(argv[3]), seed, only);
	}
	usage();
	return 2;
}
