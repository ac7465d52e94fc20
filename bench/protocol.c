/* SPDX-License-Identifier: MIT */
/*
 * The notifier protocol as a design, for the read-side and fault figures.
 * Built twice (bench/Makemodule.am): against libmmn, and against libmmn's
 * notifier.c rebuilt with MMN_BENCH_LOCKED_READ_BEGIN, whose read_begin
 * takes the state's lock as the kernel's does. The second build renames
 * every symbol of notifier.c (bench/locked-names.h) so that both live in
 * one program; this file calls the public API by its usual names.
 */
#define _GNU_SOURCE	/* PTHREAD_MUTEX_ADAPTIVE_NP */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <mmn/mmn.h>

#include "bench.h"

#ifdef MMN_BENCH_LOCKED_READ_BEGIN
#define PROTO_IMPL	proto_locked_impl
#define PROTO_LABEL	"kernel-style"
#else
#define PROTO_IMPL	proto_lockfree_impl
#define PROTO_LABEL	"libmmn"
#endif

/* ------------------------------------------------------------------------
 * Read side: read_begin + read_retry, one subscription per thread.
 */

struct rs_thread {
	_Alignas(64) struct mmn_range_sub rsub;	/* alone on its lines */
	_Alignas(64) pthread_barrier_t *start;
	uint64_t iters;
	uint64_t ns;
};

static bool rs_invalidate(struct mmn_range_sub *rsub,
			  const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	(void)desc;
	mmn_range_set_seq(rsub, cur_seq);
	return true;
}

static const struct mmn_range_sub_ops rs_ops = { .invalidate = rs_invalidate };

static void *rs_main(void *arg)
{
	struct rs_thread *t = arg;
	uint64_t acc = 0, retries = 0, t0;

	pthread_barrier_wait(t->start);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < t->iters; i++) {
		uint64_t seq = mmn_range_read_begin(&t->rsub);

		retries += mmn_range_read_retry(&t->rsub, seq);
		acc += seq;
	}
	t->ns = bench_now_ns() - t0;
	bench_consume(acc + retries);
	return NULL;
}

/* PRIVATE: one state per thread, so that the threads share nothing at all. */
static int readside_run(unsigned int threads, uint64_t iters, bool private,
			struct readside_result *res)
{
	struct mmn_state *state[BENCH_MAX_THREADS];
	struct rs_thread *t;
	pthread_t tid[BENCH_MAX_THREADS];
	pthread_barrier_t start;
	const unsigned int nstates = private ? threads : 1;
	int err;

	if (threads == 0 || threads > BENCH_MAX_THREADS || iters == 0)
		return -EINVAL;
	t = aligned_alloc(_Alignof(struct rs_thread), threads * sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (unsigned int i = 0; i < nstates; i++) {
		err = mmn_state_new(&state[i]);
		if (err) {
			while (i--)
				mmn_state_free(state[i]);
			free(t);
			return err;
		}
	}
	pthread_barrier_init(&start, NULL, threads);
	for (unsigned int i = 0; i < threads; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].start = &start;
		t[i].iters = iters;
		err = mmn_range_sub_insert(&t[i].rsub, state[private ? i : 0], i * BENCH_PAGE,
					   BENCH_PAGE, &rs_ops);
		if (err)
			abort();
	}
	for (unsigned int i = 0; i < threads; i++)
		if (pthread_create(&tid[i], NULL, rs_main, &t[i]))
			abort();	/* the barrier would hang */
	res->ns_per_op = 0;
	res->ops_per_s = 0;
	for (unsigned int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		res->ns_per_op += (double)t[i].ns / (double)iters / threads;
		res->ops_per_s += (double)iters * 1e9 / (double)t[i].ns;
	}
	for (unsigned int i = 0; i < threads; i++)
		mmn_range_sub_remove(&t[i].rsub);
	pthread_barrier_destroy(&start);
	for (unsigned int i = 0; i < nstates; i++)
		mmn_state_free(state[i]);
	free(t);
	return 0;
}

static int proto_readside(unsigned int threads, uint64_t iters, struct readside_result *res)
{
	return readside_run(threads, iters, false, res);
}

static int proto_readside_private(unsigned int threads, uint64_t iters,
				  struct readside_result *res)
{
	return readside_run(threads, iters, true, res);
}

/* ------------------------------------------------------------------------
 * The fault pattern (bench.h). Each faulting thread keeps its own
 * translation cache, as a vhost-user backend keeps one per queue and an
 * emulator one TLB per vCPU: per slot, a subscription, a lock and a shadow
 * table. An invalidation reaches every thread's subscription of the slot.
 */

struct shadow_entry {
	uint64_t value;
	bool valid;
};

/*
 * The lock has a line of its own: read_begin, on another core, reads
 * rsub.invalidate_seq and must not miss whenever the lock changes hands.
 */
struct fault_slot {
	_Alignas(64) struct mmn_range_sub rsub;
	unsigned int first;			/* first page */
	_Alignas(64) pthread_mutex_t lock;	/* the cache lock of the protocol */
	_Alignas(64) struct shadow_entry shadow[FAULT_SLOT_PAGES];	/* lock */
};

struct fault_ctx {
	struct mmn_state *state;
	_Atomic uint64_t *memory;	/* changed between start and end */
	struct fault_slot *slots;	/* FAULT_SLOTS per thread */
	unsigned int nslots;
	atomic_bool stop;
	pthread_barrier_t start;
	bool verify;
};

struct fault_thread {
	_Alignas(64) struct fault_ctx *ctx;
	struct fault_slot *slots;	/* this thread's cache */
	uint64_t seed;
	uint64_t faults;
	uint64_t retries;
	uint64_t stale;
};

static bool slot_invalidate(struct mmn_range_sub *rsub,
			    const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct fault_slot *s = mmn_container_of(rsub, struct fault_slot, rsub);
	uint64_t first = desc->start / BENCH_PAGE, last = (desc->end - 1) / BENCH_PAGE;

	if (first < s->first)
		first = s->first;
	if (last > s->first + FAULT_SLOT_PAGES - 1)
		last = s->first + FAULT_SLOT_PAGES - 1;
	pthread_mutex_lock(&s->lock);
	mmn_range_set_seq(rsub, cur_seq);
	for (uint64_t p = first; p <= last; p++)
		s->shadow[p - s->first].valid = false;
	pthread_mutex_unlock(&s->lock);
	return true;
}

static const struct mmn_range_sub_ops slot_ops = { .invalidate = slot_invalidate };

static void *fault_main(void *arg)
{
	struct fault_thread *t = arg;
	struct fault_ctx *ctx = t->ctx;
	uint64_t faults = 0, retries = 0, stale = 0;

	pthread_barrier_wait(&ctx->start);
	while (!atomic_load_explicit(&ctx->stop, memory_order_relaxed)) {
		for (unsigned int k = 0; k < 64; k++) {
			unsigned int page = (unsigned int)bench_rand_below(&t->seed, FAULT_PAGES);
			struct fault_slot *s = &t->slots[fault_slot_of(page)];
			uint64_t seq, v;

			for (;;) {
				seq = mmn_range_read_begin(&s->rsub);
				v = atomic_load_explicit(&ctx->memory[page], memory_order_relaxed);
				pthread_mutex_lock(&s->lock);
				if (!mmn_range_read_retry(&s->rsub, seq))
					break;
				pthread_mutex_unlock(&s->lock);
				retries++;
			}
			s->shadow[page - s->first].value = v;
			s->shadow[page - s->first].valid = true;
			if (ctx->verify &&
			    atomic_load_explicit(&ctx->memory[page], memory_order_relaxed) != v)
				stale++;
			pthread_mutex_unlock(&s->lock);
			faults++;
		}
	}
	t->faults = faults;
	t->retries = retries;
	t->stale = stale;
	return NULL;
}

static void fault_invalidate(void *arg, unsigned int first, unsigned int npages)
{
	struct fault_ctx *ctx = arg;
	const struct mmn_invalidate_desc desc = {
		.start = first * BENCH_PAGE,
		.end = (first + npages) * BENCH_PAGE,
		.event = MMN_EVENT_CLEAR,
		.flags = MMN_INVALIDATE_BLOCKABLE,
	};

	if (mmn_invalidate_start(ctx->state, &desc))
		abort();	/* blockable: cannot be refused */
	for (unsigned int p = first; p < first + npages; p++)
		atomic_fetch_add_explicit(&ctx->memory[p], 1, memory_order_relaxed);
	mmn_invalidate_end(ctx->state, &desc);
}

static int proto_fault(const struct fault_params *p, struct fault_result *res)
{
	struct fault_thread t[BENCH_MAX_THREADS];
	void *args[BENCH_MAX_THREADS];
	pthread_mutexattr_t lock_attr;
	struct fault_ctx *ctx;
	struct pacer pacer;
	int err = -ENOMEM;

	if (p->threads == 0 || p->threads > BENCH_MAX_THREADS)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->memory = calloc(FAULT_PAGES, sizeof(*ctx->memory));
	ctx->nslots = p->threads * FAULT_SLOTS;
	ctx->slots = aligned_alloc(_Alignof(struct fault_slot),
				   ctx->nslots * sizeof(*ctx->slots));
	if (!ctx->memory || !ctx->slots)
		goto out;
	err = mmn_state_new(&ctx->state);
	if (err)
		goto out;
	/*
	 * The cache lock is held for a few nanoseconds: spin a little before
	 * sleeping, as a VMM would (a plain mutex sleeps in the kernel on the
	 * first collision, which costs more than the whole fault).
	 */
	pthread_mutexattr_init(&lock_attr);
	pthread_mutexattr_settype(&lock_attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	for (unsigned int s = 0; s < ctx->nslots; s++) {
		struct fault_slot *slot = &ctx->slots[s];

		memset(slot, 0, sizeof(*slot));
		pthread_mutex_init(&slot->lock, &lock_attr);
		slot->first = fault_slot_first[s % FAULT_SLOTS];
		err = mmn_range_sub_insert(&slot->rsub, ctx->state, slot->first * BENCH_PAGE,
					   FAULT_SLOT_PAGES * BENCH_PAGE, &slot_ops);
		if (err)
			abort();
	}
	pthread_mutexattr_destroy(&lock_attr);
	ctx->verify = p->verify;
	atomic_init(&ctx->stop, false);
	pthread_barrier_init(&ctx->start, NULL, p->threads + 1);

	for (unsigned int i = 0; i < p->threads; i++) {
		t[i] = (struct fault_thread){ .ctx = ctx, .slots = &ctx->slots[i * FAULT_SLOTS],
					      .seed = p->seed + 7919 * (i + 1) };
		args[i] = &t[i];
	}
	pacer = (struct pacer){ .rate = p->inval_rate, .stop = &ctx->stop,
				.invalidate = fault_invalidate, .ctx = ctx, .seed = p->seed };
	memset(res, 0, sizeof(*res));
	err = fault_run_threads(p->threads, fault_main, args, &pacer, &ctx->stop,
				&ctx->start, p->duration_ns, &res->elapsed_ns);
	if (err == 0) {
		for (unsigned int i = 0; i < p->threads; i++) {
			res->faults += t[i].faults;
			res->retries += t[i].retries;
			res->stale += t[i].stale;
		}
		res->invalidations = pacer.done;
		/* At rest every valid translation must match memory. */
		for (unsigned int s = 0; s < ctx->nslots; s++)
			for (unsigned int i = 0; i < FAULT_SLOT_PAGES; i++) {
				const struct shadow_entry *e = &ctx->slots[s].shadow[i];

				if (e->valid && e->value != ctx->memory[ctx->slots[s].first + i])
					res->stale++;
			}
	}
	pthread_barrier_destroy(&ctx->start);
	for (unsigned int s = 0; s < ctx->nslots; s++) {
		mmn_range_sub_remove(&ctx->slots[s].rsub);
		pthread_mutex_destroy(&ctx->slots[s].lock);
	}
	mmn_state_free(ctx->state);
out:
	free(ctx->slots);
	free(ctx->memory);
	free(ctx);
	return err;
}

/* ------------------------------------------------------------------------
 * A fixed script of protocol calls. Each build must answer as the
 * protocol says, and both builds must trace the same values.
 */

struct trace_sub {
	struct mmn_range_sub rsub;
	atomic_uint calls;
};

static bool trace_invalidate(struct mmn_range_sub *rsub,
			     const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct trace_sub *s = mmn_container_of(rsub, struct trace_sub, rsub);

	(void)desc;
	mmn_range_set_seq(rsub, cur_seq);
	atomic_fetch_add(&s->calls, 1);
	return true;
}

static const struct mmn_range_sub_ops trace_ops = { .invalidate = trace_invalidate };

struct waiter {
	struct mmn_range_sub *rsub;
	atomic_bool returned;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	mmn_range_read_begin(w->rsub);
	atomic_store(&w->returned, true);
	return NULL;
}

static void trace_add(struct proto_selftest_trace *tr, uint64_t v)
{
	if (tr->n < sizeof(tr->values) / sizeof(tr->values[0]))
		tr->values[tr->n++] = v;
}

static uint64_t read_begin_waits(struct mmn_state *state)
{
	struct mmn_stats st = { .size = sizeof(st) };

	mmn_state_stats(state, &st);
	return st.read_begin_waits;
}

#define EXPECT(cond, msg) do { if (!(cond)) { err = PROTO_LABEL ": " msg; goto out; } } while (0)

static const char *proto_trace(struct proto_selftest_trace *tr)
{
	const struct mmn_invalidate_desc hit_a = {
		.start = 0, .end = BENCH_PAGE, .event = MMN_EVENT_UNMAP,
		.flags = MMN_INVALIDATE_BLOCKABLE,
	};
	const struct mmn_invalidate_desc hit_b = {
		.start = 8 * BENCH_PAGE, .end = 9 * BENCH_PAGE, .event = MMN_EVENT_UNMAP,
		.flags = MMN_INVALIDATE_BLOCKABLE,
	};
	struct trace_sub a = { 0 }, b = { 0 }, c = { 0 };
	struct waiter w = { .rsub = &a.rsub };
	struct mmn_state *state;
	const char *err = NULL;
	uint64_t sa, sb, sc;
	const struct mmn_invalidate_desc *open = NULL;	/* to end on failure */
	pthread_t tid;
	bool c_in = false;

	memset(tr, 0, sizeof(*tr));
	if (mmn_state_new(&state))
		return PROTO_LABEL ": mmn_state_new failed";
	if (mmn_range_sub_insert(&a.rsub, state, 0, 4 * BENCH_PAGE, &trace_ops) ||
	    mmn_range_sub_insert(&b.rsub, state, 8 * BENCH_PAGE, 4 * BENCH_PAGE, &trace_ops)) {
		mmn_state_free(state);
		return PROTO_LABEL ": mmn_range_sub_insert failed";
	}

	/* An invalidation of A between read_begin and read_retry. */
	sa = mmn_range_read_begin(&a.rsub);
	sb = mmn_range_read_begin(&b.rsub);
	EXPECT(!mmn_range_read_retry(&a.rsub, sa), "read_retry true with nothing invalidated");
	EXPECT(mmn_invalidate_start(state, &hit_a) == 0, "mmn_invalidate_start failed");
	open = &hit_a;
	trace_add(tr, atomic_load(&a.calls));
	trace_add(tr, atomic_load(&b.calls));
	EXPECT(mmn_range_read_retry(&a.rsub, sa), "read_retry false after a hit");
	EXPECT(!mmn_range_read_retry(&b.rsub, sb), "read_retry true for a subscription not hit");

	/* read_begin of A must wait for that invalidation to end. */
	EXPECT(pthread_create(&tid, NULL, waiter_main, &w) == 0, "pthread_create failed");
	while (read_begin_waits(state) == 0)
		sched_yield();
	trace_add(tr, atomic_load(&w.returned));
	mmn_invalidate_end(state, &hit_a);
	open = NULL;
	pthread_join(tid, NULL);
	trace_add(tr, atomic_load(&w.returned));
	trace_add(tr, read_begin_waits(state));

	/* After the end, a new read sees no collision. */
	sa = mmn_range_read_begin(&a.rsub);
	EXPECT(!mmn_range_read_retry(&a.rsub, sa), "read_retry true after the end");
	trace_add(tr, sa - sb);

	/* An insert during an invalidation is deferred and its read waits for none after. */
	EXPECT(mmn_invalidate_start(state, &hit_b) == 0, "mmn_invalidate_start failed");
	open = &hit_b;
	EXPECT(mmn_range_read_retry(&b.rsub, sb), "read_retry false after a hit of B");
	EXPECT(mmn_range_sub_insert(&c.rsub, state, 16 * BENCH_PAGE, BENCH_PAGE, &trace_ops) == 0,
	       "deferred mmn_range_sub_insert failed");
	c_in = true;
	mmn_invalidate_end(state, &hit_b);
	open = NULL;
	sc = mmn_range_read_begin(&c.rsub);
	EXPECT(!mmn_range_read_retry(&c.rsub, sc), "read_retry true on a fresh subscription");
	trace_add(tr, sc - sa);
	trace_add(tr, atomic_load(&b.calls));
	trace_add(tr, atomic_load(&c.calls));
	{
		struct mmn_stats st = { .size = sizeof(st) };

		mmn_state_stats(state, &st);
		trace_add(tr, st.invalidations_started);
		trace_add(tr, st.invalidations_ended);
		trace_add(tr, st.deferred_inserts);
		trace_add(tr, st.range_subs);
	}
out:
	if (open)
		mmn_invalidate_end(state, open);
	if (c_in)
		mmn_range_sub_remove(&c.rsub);
	mmn_range_sub_remove(&b.rsub);
	mmn_range_sub_remove(&a.rsub);
	mmn_state_free(state);
	return err;
}

const struct proto_impl PROTO_IMPL = {
	.name = PROTO_LABEL,
	.readside = proto_readside,
	.readside_private = proto_readside_private,
	.fault = proto_fault,
	.trace = proto_trace,
};
