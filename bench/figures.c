/* SPDX-License-Identifier: MIT */
/*
 * The measurements. Each figure is timed over REPS repetitions of a loop
 * long enough (min_rep_ns) that the clock's resolution and the cost of
 * reading it vanish; libmmn and its baselines run in the same repetition,
 * one after the other, on the same workload.
 */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mmn/mmn.h>

#include "bench.h"
#include "figures.h"
#include "fixture.h"
#include "index.h"
#include "itree-before.h"
#include "report.h"
#include "rwcache.h"
#include "sorted.h"

void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mmn-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xmalloc(size_t size)
{
	void *p = calloc(1, size);

	if (!p)
		die("out of memory (%zu bytes)", size);
	return p;
}

static void progress(const char *what)
{
	fprintf(stderr, "mmn-bench: measuring %s\n", what);
}

/*
 * On a shared machine a repetition that spent its time waiting for a core
 * measures the scheduler, not the code. So each repetition checks the
 * process's CPU time against the wall time: with fewer than ON_CPU_MIN of
 * its cores, it runs again, up to MAX_ATTEMPTS times, and the attempt that
 * had the most CPU is kept; the figure says how many were rerun and how
 * many kept below the mark.
 */
#define ON_CPU_MIN	0.9
#define MAX_ATTEMPTS	5

static long usable_cores = 1;
static unsigned int group_reruns, group_disturbed;

struct guard {
	uint64_t wall;
	uint64_t cpu;
	unsigned int cores;
};

static void guard_start(struct guard *g, unsigned int threads)
{
	g->cores = threads < usable_cores ? threads : (unsigned int)usable_cores;
	g->wall = bench_now_ns();
	g->cpu = bench_cpu_ns();
}

/* The share of its cores the process had since guard_start(). */
static double guard_on_cpu(const struct guard *g)
{
	double wall = (double)(bench_now_ns() - g->wall);
	double cpu = (double)(bench_cpu_ns() - g->cpu);

	return wall > 0 ? cpu / (wall * g->cores) : 1;
}

/*
 * One repetition on THREADS threads: MEASURE runs it, KEEP stores its
 * results (for the best attempt so far).
 */
#define REPEAT_UNDISTURBED(threads, measure, keep)				\
	do {									\
		double best_ = -1;						\
										\
		for (unsigned int attempt_ = 1;; attempt_++) {			\
			struct guard guard_;					\
			double on_cpu_;						\
										\
			guard_start(&guard_, (threads));			\
			measure;						\
			on_cpu_ = guard_on_cpu(&guard_);			\
			if (on_cpu_ > best_) {					\
				best_ = on_cpu_;				\
				keep;						\
			}							\
			if (on_cpu_ >= ON_CPU_MIN)				\
				break;						\
			if (attempt_ == MAX_ATTEMPTS) {				\
				group_disturbed++;				\
				break;						\
			}							\
			group_reruns++;						\
		}								\
	} while (0)

static void group_begin(const struct bench_config *c)
{
	usable_cores = c->cores > 0 ? c->cores : 1;
	group_reruns = group_disturbed = 0;
}

/* The figure was measured by the group's repetitions. */
static void group_mark(struct figure *f)
{
	f->reruns = group_reruns;
	f->disturbed = group_disturbed;
}

/*
 * How many operations make one repetition last MIN_NS, given that RUN(ctx,
 * ops) returns the nanoseconds OPS operations took.
 */
static uint64_t calibrate(uint64_t (*run)(void *ctx, uint64_t ops), void *ctx,
			  uint64_t min_ns, uint64_t max_ops)
{
	uint64_t ops = 16;

	for (;;) {
		uint64_t ns = run(ctx, ops);

		if (ns >= min_ns / 4 || ops >= max_ops) {
			/* Scale up from the last run, with 20% to spare. */
			double want = (double)ops * (double)min_ns * 1.2 / (ns ? (double)ns : 1.0);

			ops = want > (double)max_ops ? max_ops : (uint64_t)want;
			return ops ? ops : 1;
		}
		ops *= 4;
	}
}

/* ------------------------------------------------------------------------
 * Interval tree against the sorted array
 */

struct ival {
	struct mmn_itree_node node;
	struct mmn_itree_node before;	/* in the tree as it was before its rework */
};

static void shuffle(size_t *v, size_t n, uint64_t *seed)
{
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)bench_rand_below(seed, i + 1), t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

struct itree_ctx {
	size_t n;
	struct ival *iv;
	struct mmn_itree tree;
	struct mmn_itree before_tree;
	struct index idx;
	struct sorted_set set;
	size_t *perm;		/* nodes in random order: victims of removes */
	size_t cursor;		/* next victim */
	uint64_t *qs;		/* query starts */
	size_t queries;
	size_t tree_ops;	/* removes (and inserts) per repetition */
	size_t sorted_ops;
	size_t batch;		/* removed before they are inserted back */
	uint64_t hits;		/* of the last repetition's queries */
	double ins_ns, rm_ns, q_ns;	/* per op, last repetition */
};

#define QUERY_PAGES 16

/*
 * Remove a batch of random intervals, insert them back, OPS of each in
 * all; then the queries. Always inlined into each design's repetition
 * below, with its operations as constants, so that they are direct calls.
 */
typedef void itree_op_fn(struct itree_ctx *x, struct ival *v);
typedef uint64_t itree_query_fn(struct itree_ctx *x, uint64_t start, uint64_t last);

static inline __attribute__((always_inline)) void
itree_rep(struct itree_ctx *x, size_t ops, size_t batch, itree_op_fn *rm, itree_op_fn *ins,
	  itree_query_fn *query)
{
	uint64_t rm_ns = 0, ins_ns = 0, t0, t1, t2, hits = 0;
	size_t done, cursor = x->cursor;

	for (done = 0; done < ops; done += batch) {
		t0 = bench_now_ns();
		for (size_t j = 0; j < batch; j++)
			rm(x, &x->iv[x->perm[(cursor + j) % x->n]]);
		t1 = bench_now_ns();
		for (size_t j = 0; j < batch; j++)
			ins(x, &x->iv[x->perm[(cursor + j) % x->n]]);
		t2 = bench_now_ns();
		rm_ns += t1 - t0;
		ins_ns += t2 - t1;
		cursor = (cursor + batch) % x->n;
	}
	x->cursor = cursor;
	x->rm_ns = (double)rm_ns / (double)done;
	x->ins_ns = (double)ins_ns / (double)done;

	t0 = bench_now_ns();
	for (size_t j = 0; j < x->queries; j++)
		hits += query(x, x->qs[j], x->qs[j] + QUERY_PAGES * BENCH_PAGE - 1);
	x->q_ns = (double)(bench_now_ns() - t0) / (double)x->queries;
	x->hits = hits;
	bench_consume(hits);
}

/* libmmn's interval tree. */
static void tree_rm(struct itree_ctx *x, struct ival *v)
{
	mmn_itree_remove(&x->tree, &v->node);
}

static void tree_ins(struct itree_ctx *x, struct ival *v)
{
	mmn_itree_insert(&x->tree, &v->node);
}

static uint64_t tree_query(struct itree_ctx *x, uint64_t start, uint64_t last)
{
	uint64_t hits = 0;

	for (struct mmn_itree_node *nd = mmn_itree_iter_first(&x->tree, start, last); nd;
	     nd = mmn_itree_iter_next(nd, start, last))
		hits++;
	return hits;
}

static void itree_tree_rep(struct itree_ctx *x)
{
	itree_rep(x, x->tree_ops, x->batch, tree_rm, tree_ins, tree_query);
}

/* The tree before its rework. */
static void before_rm(struct itree_ctx *x, struct ival *v)
{
	itree_before_remove(&x->before_tree, &v->before);
}

static void before_ins(struct itree_ctx *x, struct ival *v)
{
	itree_before_insert(&x->before_tree, &v->before);
}

static uint64_t before_query(struct itree_ctx *x, uint64_t start, uint64_t last)
{
	uint64_t hits = 0;

	for (struct mmn_itree_node *nd = itree_before_iter_first(&x->before_tree, start, last);
	     nd; nd = itree_before_iter_next(nd, start, last))
		hits++;
	return hits;
}

static void itree_before_rep(struct itree_ctx *x)
{
	itree_rep(x, x->tree_ops, x->batch, before_rm, before_ins, before_query);
}

/* The interval index (libmmn/index.c). */
static void index_rm(struct itree_ctx *x, struct ival *v)
{
	if (index_remove(&x->idx, v->node.start, v->node.last, v))
		die("the index lost an interval");
}

static void index_ins(struct itree_ctx *x, struct ival *v)
{
	if (index_insert(&x->idx, v->node.start, v->node.last, v))
		die("out of memory");
}

static uint64_t index_query(struct itree_ctx *x, uint64_t start, uint64_t last)
{
	struct index_iter it;
	uint64_t hits = 0;

	for (void *p = index_iter_first(&x->idx, &it, start, last); p; p = index_iter_next(&it))
		hits++;
	return hits;
}

static void itree_index_rep(struct itree_ctx *x)
{
	itree_rep(x, x->tree_ops, x->batch, index_rm, index_ins, index_query);
}

/* The sorted array, with fewer updates when n is large. */
static void sorted_rm(struct itree_ctx *x, struct ival *v)
{
	if (sorted_remove(&x->set, v->node.start, v))
		die("sorted array lost an entry");
}

static void sorted_ins(struct itree_ctx *x, struct ival *v)
{
	if (sorted_insert(&x->set, v->node.start, v->node.last, v))
		die("out of memory");
}

static uint64_t sorted_query(struct itree_ctx *x, uint64_t start, uint64_t last)
{
	uint64_t hits = 0;

	for (size_t k = sorted_first(&x->set, start, last); k < x->set.n;
	     k = sorted_next(&x->set, k + 1, start, last))
		hits++;
	return hits;
}

static void itree_sorted_rep(struct itree_ctx *x)
{
	itree_rep(x, x->sorted_ops, x->batch < x->sorted_ops ? x->batch : x->sorted_ops,
		  sorted_rm, sorted_ins, sorted_query);
}

static void fig_itree_n(const struct bench_config *c, unsigned int exp)
{
	double t_ins[REPORT_MAX_REPS], t_rm[REPORT_MAX_REPS], t_q[REPORT_MAX_REPS];
	double s_ins[REPORT_MAX_REPS], s_rm[REPORT_MAX_REPS], s_q[REPORT_MAX_REPS];
	double b_ins[REPORT_MAX_REPS], b_rm[REPORT_MAX_REPS], b_q[REPORT_MAX_REPS];
	double i_ins[REPORT_MAX_REPS], i_rm[REPORT_MAX_REPS], i_q[REPORT_MAX_REPS];
	uint64_t seed = c->seed + exp, total_hits = 0;
	struct itree_ctx x = { .n = 1 };
	struct sorted_entry *e;
	struct figure *f;
	char what[64], key[64];

	for (unsigned int i = 0; i < exp; i++)
		x.n *= 10;
	snprintf(what, sizeof(what), "interval tree, n = 10^%u", exp);
	progress(what);
	group_begin(c);

	/*
	 * n intervals of 1 to 32 pages at random pages of a space of 16n
	 * pages: each point is covered about once, and a query of 16 pages
	 * returns about two intervals. The array moves n/2 entries per
	 * update, so it gets fewer updates at large n.
	 */
	const uint64_t space_pages = 16 * (uint64_t)x.n;

	x.tree_ops = c->quick ? 4000 : 20000;
	x.batch = x.n / 2 < x.tree_ops ? x.n / 2 : x.tree_ops;
	x.sorted_ops = (size_t)((1ull << 26) / x.n);
	if (x.sorted_ops > x.tree_ops)
		x.sorted_ops = x.tree_ops;
	if (x.sorted_ops < 32)
		x.sorted_ops = 32;
	x.queries = c->quick ? 4000 : 20000;

	x.iv = xmalloc(x.n * sizeof(*x.iv));
	e = xmalloc(x.n * sizeof(*e));
	x.perm = xmalloc(x.n * sizeof(*x.perm));
	x.qs = xmalloc(x.queries * sizeof(*x.qs));
	mmn_itree_init(&x.tree);
	itree_before_init(&x.before_tree);
	index_init(&x.idx);
	for (size_t i = 0; i < x.n; i++) {
		uint64_t start = bench_rand_below(&seed, space_pages) * BENCH_PAGE;
		uint64_t len = (1 + bench_rand_below(&seed, 32)) * BENCH_PAGE;

		x.iv[i].node.start = start;
		x.iv[i].node.last = start + len - 1;
		e[i] = (struct sorted_entry){ .start = start, .last = start + len - 1,
					      .item = &x.iv[i] };
		mmn_itree_insert(&x.tree, &x.iv[i].node);
		x.iv[i].before = x.iv[i].node;
		itree_before_insert(&x.before_tree, &x.iv[i].before);
		if (index_insert(&x.idx, start, start + len - 1, &x.iv[i]))
			die("out of memory building an index of %zu", x.n);
		x.perm[i] = i;
	}
	if (sorted_init(&x.set, x.n) || sorted_build(&x.set, e, x.n))
		die("out of memory building a sorted array of %zu", x.n);
	free(e);
	shuffle(x.perm, x.n, &seed);
	for (size_t i = 0; i < x.queries; i++)
		x.qs[i] = bench_rand_below(&seed, space_pages) * BENCH_PAGE;

	for (unsigned int r = 0; r < c->reps; r++) {
		uint64_t tree_hits = 0, sorted_hits = 0, before_hits = 0, index_hits = 0;

		REPEAT_UNDISTURBED(1, itree_tree_rep(&x),
				   (t_ins[r] = x.ins_ns, t_rm[r] = x.rm_ns, t_q[r] = x.q_ns,
				    tree_hits = x.hits));
		REPEAT_UNDISTURBED(1, itree_sorted_rep(&x),
				   (s_ins[r] = x.ins_ns, s_rm[r] = x.rm_ns, s_q[r] = x.q_ns,
				    sorted_hits = x.hits));
		REPEAT_UNDISTURBED(1, itree_before_rep(&x),
				   (b_ins[r] = x.ins_ns, b_rm[r] = x.rm_ns, b_q[r] = x.q_ns,
				    before_hits = x.hits));
		REPEAT_UNDISTURBED(1, itree_index_rep(&x),
				   (i_ins[r] = x.ins_ns, i_rm[r] = x.rm_ns, i_q[r] = x.q_ns,
				    index_hits = x.hits));
		if (tree_hits != before_hits || tree_hits != index_hits)
			die("n = %zu: the trees and the index found %llu, %llu and %llu overlaps",
			    x.n, (unsigned long long)tree_hits, (unsigned long long)before_hits,
			    (unsigned long long)index_hits);
		if (tree_hits != sorted_hits)
			die("n = %zu: the interval tree found %llu overlaps, the sorted array %llu",
			    x.n, (unsigned long long)tree_hits, (unsigned long long)sorted_hits);
		total_hits += tree_hits;
	}

	snprintf(key, sizeof(key), "itree.insert.n1e%u", exp);
	f = report_figure("itree", key, "ns/op", LOWER_IS_BETTER, "insert, n=10^%u", exp);
	report_series(f, "libmmn", t_ins, c->reps, NULL);
	report_series(f, "sorted_array", s_ins, c->reps, NULL);
	report_series(f, "itree_before", b_ins, c->reps, NULL);
	report_series(f, "index", i_ins, c->reps, NULL);
	group_mark(f);
	snprintf(key, sizeof(key), "itree.remove.n1e%u", exp);
	f = report_figure("itree", key, "ns/op", LOWER_IS_BETTER, "remove, n=10^%u", exp);
	report_series(f, "libmmn", t_rm, c->reps, NULL);
	report_series(f, "sorted_array", s_rm, c->reps, NULL);
	report_series(f, "itree_before", b_rm, c->reps, NULL);
	report_series(f, "index", i_rm, c->reps, NULL);
	group_mark(f);
	snprintf(key, sizeof(key), "itree.query.n1e%u", exp);
	f = report_figure("itree", key, "ns/op", LOWER_IS_BETTER,
			  "query (%.1f hits), n=10^%u",
			  (double)total_hits / (double)(x.queries * c->reps), exp);
	report_series(f, "libmmn", t_q, c->reps, NULL);
	report_series(f, "sorted_array", s_q, c->reps, NULL);
	report_series(f, "itree_before", b_q, c->reps, NULL);
	report_series(f, "index", i_q, c->reps, NULL);
	group_mark(f);

	sorted_fini(&x.set);
	index_fini(&x.idx);
	free(x.qs);
	free(x.perm);
	free(x.iv);
}

void fig_itree(const struct bench_config *c)
{
	report_section("itree", "Interval tree, ns/op (baseline: sorted array, binary search"
		       " + linear overlap scan; also the tree before its rework and the"
		       " B+-tree interval index)");
	for (unsigned int exp = 3; exp <= c->itree_max_exp; exp++)
		fig_itree_n(c, exp);
}

/* ------------------------------------------------------------------------
 * Read side
 */

typedef int (*readside_fn)(unsigned int threads, uint64_t iters, struct readside_result *res);

static uint64_t run_readside1(void *ctx, uint64_t ops)
{
	struct readside_result res;

	if ((*(readside_fn *)ctx)(1, ops, &res))
		die("read-side run failed");
	return (uint64_t)(res.ns_per_op * (double)ops);
}

void fig_readside(const struct bench_config *c)
{
	enum { NDESIGNS = 4 };	/* the last is the control */
	static const char *const ids[NDESIGNS] = { "libmmn", "kernel_style", "rwlock", "control" };
	readside_fn fns[NDESIGNS] = { proto_lockfree_impl.readside, proto_locked_impl.readside,
				      rwcache_readside, proto_lockfree_impl.readside_private };
	double ns1[NDESIGNS][REPORT_MAX_REPS], ns2[NDESIGNS][REPORT_MAX_REPS];
	double scale[NDESIGNS][REPORT_MAX_REPS];
	uint64_t iters[NDESIGNS];
	struct figure *f;

	progress("read side, 1 and 2 threads");
	group_begin(c);
	report_section("readside", "Read side: read_begin + read_retry, ns/op per thread"
		       " (baselines: the same protocol with the state's lock taken in"
		       " read_begin; pthread_rwlock read lock + unlock)");
	for (unsigned int d = 0; d < NDESIGNS; d++)
		iters[d] = calibrate(run_readside1, &fns[d], c->min_rep_ns, 1ull << 32);
	for (unsigned int r = 0; r < c->reps; r++) {
		for (unsigned int d = 0; d < NDESIGNS; d++) {
			struct readside_result one = { 0 }, two = { 0 }, run;
			int err = 0;

			REPEAT_UNDISTURBED(1, err |= fns[d](1, iters[d], &run), one = run);
			REPEAT_UNDISTURBED(2, err |= fns[d](2, iters[d], &run), two = run);
			if (err)
				die("read-side run failed");
			ns1[d][r] = one.ns_per_op;
			ns2[d][r] = two.ns_per_op;
			scale[d][r] = two.ops_per_s / one.ops_per_s;
		}
	}
	f = report_figure("readside", "readside.threads1", "ns/op", LOWER_IS_BETTER, "1 thread");
	for (unsigned int d = 0; d < NDESIGNS - 1; d++)
		report_series(f, ids[d], ns1[d], c->reps, NULL);
	group_mark(f);
	f = report_figure("readside", "readside.threads2", "ns/op", LOWER_IS_BETTER,
			  "2 threads, each");
	for (unsigned int d = 0; d < NDESIGNS - 1; d++)
		report_series(f, ids[d], ns2[d], c->reps, NULL);
	group_mark(f);
	f = report_figure("readside", "readside.scaling", "x", HIGHER_IS_BETTER,
			  "throughput 2 threads / 1 thread");
	for (unsigned int d = 0; d < NDESIGNS - 1; d++)
		report_series(f, ids[d], scale[d], c->reps, NULL);
	group_mark(f);
	/* What the machine allows: the same loop, sharing nothing at all. */
	f = report_figure("readside", "readside.scaling_control", "x", INFORMATION,
			  "same, one state per thread");
	report_series(f, "control", scale[NDESIGNS - 1], c->reps,
		      "libmmn sharing nothing: the machine's ceiling");
	group_mark(f);
}

/* ------------------------------------------------------------------------
 * Invalidation among 10^5 subscriptions, and subscription insert + remove
 */

#define RANGES 4096	/* precomputed random ranges, cycled */

struct inval_ctx {
	struct fixture *fx;
	uint64_t start[RANGES];
	uint64_t end[RANGES];
	unsigned int expected;
	bool baseline;
};

static uint64_t run_invalidate(void *arg, uint64_t ops)
{
	struct inval_ctx *ic = arg;
	uint64_t hits = 0, t0, ns;

	if (!ic->baseline) {
		uint64_t before = fixture_mmn_hits;

		t0 = bench_now_ns();
		for (uint64_t i = 0; i < ops; i++)
			fixture_invalidate_mmn(ic->fx, ic->start[i % RANGES], ic->end[i % RANGES]);
		ns = bench_now_ns() - t0;
		hits = fixture_mmn_hits - before;
	} else {
		t0 = bench_now_ns();
		for (uint64_t i = 0; i < ops; i++)
			hits += fixture_invalidate_rw(ic->fx, ic->start[i % RANGES],
						      ic->end[i % RANGES]);
		ns = bench_now_ns() - t0;
	}
	if (hits != ops * ic->expected)
		die("%s: %llu invalidations hit %llu subscriptions, expected %u each",
		    ic->baseline ? "baseline" : "libmmn", (unsigned long long)ops,
		    (unsigned long long)hits, ic->expected);
	return ns;
}

/*
 * Measure RUN(CTX, ops) for libmmn (*BASELINE false) and the rwlock
 * baseline (true), alternately, c->reps times each, and add both series
 * to figure F in ns/op.
 */
static void measure_lib_vs_rwlock(const struct bench_config *c,
				  uint64_t (*run)(void *ctx, uint64_t ops), void *ctx,
				  bool *baseline, struct figure *f)
{
	double lib[REPORT_MAX_REPS], base[REPORT_MAX_REPS];
	uint64_t ops_lib, ops_base;

	*baseline = false;
	ops_lib = calibrate(run, ctx, c->min_rep_ns, 1ull << 30);
	*baseline = true;
	ops_base = calibrate(run, ctx, c->min_rep_ns, 1ull << 30);
	for (unsigned int r = 0; r < c->reps; r++) {
		double v;

		*baseline = false;
		REPEAT_UNDISTURBED(1, v = (double)run(ctx, ops_lib) / (double)ops_lib, lib[r] = v);
		*baseline = true;
		REPEAT_UNDISTURBED(1, v = (double)run(ctx, ops_base) / (double)ops_base, base[r] = v);
	}
	report_series(f, "libmmn", lib, c->reps, NULL);
	report_series(f, "rwlock", base, c->reps, NULL);
	group_mark(f);
}

/* Measure libmmn and the rwlock baseline on IC's ranges as figure KEY. */
static void measure_invalidate(const struct bench_config *c, struct inval_ctx *ic,
			       const char *key, const char *what)
{
	struct figure *f = report_figure("invalidate", key, "ns/op", LOWER_IS_BETTER, "%s", what);

	measure_lib_vs_rwlock(c, run_invalidate, ic, &ic->baseline, f);
}

void fig_invalidate(const struct bench_config *c)
{
	static const enum fix_hits kinds[] = { FIX_HIT_NONE, FIX_HIT_ONE, FIX_HIT_64 };
	static const char *const keys[] = { "invalidate.hit0", "invalidate.hit1",
					    "invalidate.hit64" };
	const size_t nsubs = 100000;
	struct fixture fx;
	struct inval_ctx *ic = xmalloc(sizeof(*ic));
	uint64_t seed = c->seed ^ 0x1234;

	progress("invalidation among 10^5 subscriptions");
	group_begin(c);
	report_section("invalidate", "mmn_invalidate_start + mmn_invalidate_end, among 10^5"
		       " subscriptions unless said, ns/op (baseline: rwlock + sorted array: write lock,"
		       " find, drop)");
	if (fixture_init(&fx, nsubs))
		die("cannot set up %zu subscriptions", nsubs);
	ic->fx = &fx;
	for (unsigned int k = 0; k < 3; k++) {
		char what[32];

		for (unsigned int i = 0; i < RANGES; i++)
			fixture_range(&fx, kinds[k], bench_rand(&seed), &ic->start[i], &ic->end[i]);
		ic->expected = fixture_expected_hits(kinds[k]);
		snprintf(what, sizeof(what), "hitting %u", ic->expected);
		measure_invalidate(c, ic, keys[k], what);
	}
	fixture_fini(&fx);

	/* The fixed cost, without cache misses: 100 subscriptions, all cached. */
	if (fixture_init(&fx, 100))
		die("cannot set up 100 subscriptions");
	for (unsigned int i = 0; i < RANGES; i++)
		fixture_range(&fx, FIX_HIT_NONE, bench_rand(&seed), &ic->start[i], &ic->end[i]);
	ic->expected = 0;
	measure_invalidate(c, ic, "invalidate.hit0.n100", "hitting 0, among 100 (cached)");
	fixture_fini(&fx);
	free(ic);
}

struct insrm_ctx {
	struct fixture *fx;
	uint64_t page[RANGES];
	bool baseline;
};

static uint64_t run_insert_remove(void *arg, uint64_t ops)
{
	struct insrm_ctx *ic = arg;
	struct fix_sub extra = { 0 };
	struct fix_item item = { 0 };
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < ops; i++) {
		uint64_t start = ic->page[i % RANGES];

		if (!ic->baseline) {
			if (mmn_range_sub_insert(&extra.rsub, ic->fx->state, start, BENCH_PAGE,
						 &fixture_ops))
				die("mmn_range_sub_insert failed");
			mmn_range_sub_remove(&extra.rsub);
		} else {
			if (rwcache_insert(&ic->fx->cache, start, start + BENCH_PAGE - 1, &item) ||
			    rwcache_remove(&ic->fx->cache, start, &item))
				die("baseline insert or remove failed");
		}
	}
	return bench_now_ns() - t0;
}

void fig_insert_remove(const struct bench_config *c)
{
	static const size_t sizes[] = { 100, 100000 };
	struct insrm_ctx *ic = xmalloc(sizeof(*ic));
	uint64_t seed = c->seed ^ 0x5678;

	progress("subscription insert + remove");
	group_begin(c);
	report_section("insert_remove", "mmn_range_sub_insert + mmn_range_sub_remove (the"
		       " per-fault pattern), ns/op (baseline: rwlock + sorted array insert"
		       " + remove)");
	for (unsigned int s = 0; s < 2; s++) {
		struct fixture fx;
		struct figure *f;
		char key[64];

		if (fixture_init(&fx, sizes[s]))
			die("cannot set up %zu subscriptions", sizes[s]);
		ic->fx = &fx;
		for (unsigned int i = 0; i < RANGES; i++)
			ic->page[i] = fixture_gap_page(&fx, bench_rand(&seed));
		snprintf(key, sizeof(key), "insert_remove.n%zu", sizes[s]);
		f = report_figure("insert_remove", key, "ns/op", LOWER_IS_BETTER,
				  "among %zu others", sizes[s]);
		measure_lib_vs_rwlock(c, run_insert_remove, ic, &ic->baseline, f);
		fixture_fini(&fx);
	}
	free(ic);
}

/* ------------------------------------------------------------------------
 * Bytes per range subscription
 */

static long heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	return (long)mallinfo2().uordblks;
#else
	return -1;
#endif
}

/*
 * Bytes per subscription among N: the struct plus what the state allocates
 * for them (mallinfo2() around the inserts), into NOTE.
 */
static double lib_bytes(size_t n, char *note, size_t size)
{
	struct fix_sub *subs = xmalloc(n * sizeof(*subs));
	struct mmn_state *state;
	long before, after;
	double lib = (double)sizeof(struct mmn_range_sub);

	/* Zeroed before their first insert, as the API asks. */
	memset(subs, 0, n * sizeof(*subs));
	if (mmn_state_new(&state))
		die("mmn_state_new failed");
	before = heap_in_use();
	for (size_t i = 0; i < n; i++)
		if (mmn_range_sub_insert(&subs[i].rsub, state, i * 2 * BENCH_PAGE, BENCH_PAGE,
					 &fixture_ops))
			die("mmn_range_sub_insert failed");
	after = heap_in_use();
	for (size_t i = 0; i < n; i++)
		mmn_range_sub_remove(&subs[i].rsub);
	mmn_state_free(state);
	free(subs);

	if (before >= 0 && after >= 0) {
		lib += (double)(after - before) / (double)n;
		snprintf(note, size, "sizeof %zu + %.1f allocated (mallinfo2), n=%zu",
			 sizeof(struct mmn_range_sub), (double)(after - before) / (double)n, n);
	} else {
		snprintf(note, size, "sizeof %zu; allocations not measurable",
			 sizeof(struct mmn_range_sub));
	}
	return lib;
}

void fig_bytes(const struct bench_config *c)
{
	/* 10^4: the tree alone; 10^5: the index beside it (design.md). */
	static const struct {
		size_t n;
		const char *key, *what;
	} sizes[] = {
		{ 10000, "range_sub.bytes", "per subscription" },
		{ 100000, "range_sub.bytes.n1e5", "per subscription, among 10^5 (with the index)" },
	};
	static char lib_note[2][96], base_note[2][96];
	struct fix_item item;
	struct rwcache cache;
	double lib, base;
	struct figure *f;

	(void)c;
	progress("bytes per subscription");
	report_section("bytes", "Bytes per range subscription (baseline: one entry of the"
		       " rwlock + sorted array)");
	for (unsigned int k = 0; k < 2; k++) {
		size_t n = sizes[k].n;

		lib = lib_bytes(n, lib_note[k], sizeof(lib_note[k]));
		if (rwcache_init(&cache, 16))
			die("out of memory");
		for (size_t i = 0; i < n; i++)
			if (sorted_insert(&cache.set, i * 2 * BENCH_PAGE,
					  i * 2 * BENCH_PAGE + BENCH_PAGE - 1, &item))
				die("out of memory");
		base = sorted_bytes_per_entry(&cache.set);
		snprintf(base_note[k], sizeof(base_note[k]),
			 "%zu-byte entry, array grown by doubling, n=%zu",
			 sizeof(struct sorted_entry), n);
		rwcache_fini(&cache);

		f = report_figure("bytes", sizes[k].key, "bytes", LOWER_IS_BETTER, "%s",
				  sizes[k].what);
		report_series(f, "libmmn", &lib, 1, lib_note[k]);
		report_series(f, "rwlock", &base, 1, base_note[k]);
	}
}

/* ------------------------------------------------------------------------
 * The fault pattern under concurrent invalidation
 */

/* One run of design D; stale translations stop the benchmark, kept or not. */
static void run_fault(unsigned int d, const struct fault_params *p, struct fault_result *res)
{
	static const char *const names[] = { "libmmn", "kernel_style", "rwlock" };
	int err = d == 0 ? proto_lockfree_impl.fault(p, res) :
		  d == 1 ? proto_locked_impl.fault(p, res) :
			   rwcache_fault(p, res);

	if (err)
		die("%s: fault run failed: %s", names[d], strerror(-err));
	if (res->stale)
		die("%s installed %llu stale translations", names[d],
		    (unsigned long long)res->stale);
}

void fig_fault(const struct bench_config *c)
{
	static const unsigned int rates[] = { 0, 1000, 10000, 100000 };
	static const char *const ids[] = { "libmmn", "kernel_style", "rwlock" };
	enum { NRATES = 4, NDESIGNS = 3 };
	static double fps[NRATES][NDESIGNS][REPORT_MAX_REPS];
	static double rpf[NRATES][NDESIGNS][REPORT_MAX_REPS];
	static double ips[NRATES][NDESIGNS][REPORT_MAX_REPS];

	progress("the fault pattern under invalidation");
	group_begin(c);
	report_section("fault", "The fault pattern, 2 faulting threads, under invalidations"
		       " at a given rate (baselines: the same with the kernel-style read side;"
		       " rwlock + sorted array, readers holding the read lock)");
	for (unsigned int r = 0; r < c->reps; r++) {
		for (unsigned int i = 0; i < NRATES; i++) {
			for (unsigned int d = 0; d < NDESIGNS; d++) {
				const struct fault_params p = {
					.threads = 2,
					.inval_rate = rates[i],
					.duration_ns = c->fault_run_ns,
					.seed = c->seed + 31 * r + i,
				};
				struct fault_result res = { 0 }, run;

				/* The pacer shares the cores: ask for the two. */
				REPEAT_UNDISTURBED(2, run_fault(d, &p, &run), res = run);
				fps[i][d][r] = (double)res.faults * 1e9 / res.elapsed_ns;
				rpf[i][d][r] = res.faults ? (double)res.retries / (double)res.faults : 0;
				ips[i][d][r] = (double)res.invalidations * 1e9 / res.elapsed_ns;
			}
		}
	}
	for (unsigned int i = 0; i < NRATES; i++) {
		struct figure *f;
		char key[64];

		snprintf(key, sizeof(key), "fault.rate%u.faults_per_s", rates[i]);
		f = report_figure("fault", key, "faults/s", HIGHER_IS_BETTER,
				  "faults/s, %u invalidations/s", rates[i]);
		for (unsigned int d = 0; d < NDESIGNS; d++)
			report_series(f, ids[d], fps[i][d], c->reps, NULL);
		group_mark(f);

		snprintf(key, sizeof(key), "fault.rate%u.retries_per_fault", rates[i]);
		f = report_figure("fault", key, "retries", INFORMATION,
				  "retries/fault, %u inval/s", rates[i]);
		for (unsigned int d = 0; d < NDESIGNS - 1; d++)
			report_series(f, ids[d], rpf[i][d], c->reps, NULL);
		report_series(f, "rwlock", NULL, 0,
			      "0 by design: readers block the invalidation instead");

		snprintf(key, sizeof(key), "fault.rate%u.invalidations_per_s", rates[i]);
		f = report_figure("fault", key, "inval/s", INFORMATION,
				  "invalidations/s achieved");
		for (unsigned int d = 0; d < NDESIGNS; d++)
			report_series(f, ids[d], ips[i][d], c->reps, NULL);
	}
}

/* ------------------------------------------------------------------------
 * For the groups in other files (kvm-demo-figures.c)
 */

void figures_group_begin(const struct bench_config *c)
{
	group_begin(c);
}

void figures_group_mark(struct figure *f)
{
	group_mark(f);
}

double figures_repeat(double (*measure)(void *ctx), void *ctx)
{
	double v = 0, kept = 0;

	REPEAT_UNDISTURBED(1, v = measure(ctx), kept = v);
	return kept;
}

uint64_t figures_calibrate(uint64_t (*run)(void *ctx, uint64_t ops), void *ctx, uint64_t min_ns,
			   uint64_t max_ops)
{
	return calibrate(run, ctx, min_ns, max_ops);
}
