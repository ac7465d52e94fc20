/* SPDX-License-Identifier: MIT */
/* Baseline 1: a sorted array behind a pthread_rwlock. See rwcache.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rwcache.h"

/*
 * Writers first: with glibc's default (readers first) two busy readers keep
 * an invalidation waiting for as long as they run, and the invalidation
 * rates the figures ask for are never reached. A VMM cannot let munmap
 * wait that long either.
 */
static int rwlock_init_writer_preferred(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;
	int err = pthread_rwlockattr_init(&attr);

	if (err)
		return -err;
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	err = pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	return -err;
}

int rwcache_init(struct rwcache *c, size_t cap)
{
	int err = sorted_init(&c->set, cap);

	if (err)
		return err;
	err = rwlock_init_writer_preferred(&c->lock);
	if (err) {
		sorted_fini(&c->set);
		return -err;
	}
	return 0;
}

void rwcache_fini(struct rwcache *c)
{
	pthread_rwlock_destroy(&c->lock);
	sorted_fini(&c->set);
}

int rwcache_build(struct rwcache *c, const struct sorted_entry *e, size_t n)
{
	return sorted_build(&c->set, e, n);
}

int rwcache_insert(struct rwcache *c, uint64_t start, uint64_t last, void *item)
{
	int err;

	pthread_rwlock_wrlock(&c->lock);
	err = sorted_insert(&c->set, start, last, item);
	pthread_rwlock_unlock(&c->lock);
	return err;
}

int rwcache_remove(struct rwcache *c, uint64_t start, void *item)
{
	int err;

	pthread_rwlock_wrlock(&c->lock);
	err = sorted_remove(&c->set, start, item);
	pthread_rwlock_unlock(&c->lock);
	return err;
}

unsigned int rwcache_invalidate(struct rwcache *c, uint64_t start, uint64_t last,
				void (*drop)(void *item))
{
	unsigned int hits = 0;
	size_t i;

	pthread_rwlock_wrlock(&c->lock);
	for (i = sorted_first(&c->set, start, last); i < c->set.n;
	     i = sorted_next(&c->set, i + 1, start, last)) {
		drop(c->set.v[i].item);
		hits++;
	}
	pthread_rwlock_unlock(&c->lock);
	return hits;
}

/* ------------------------------------------------------------------------
 * Read side: what a reader pays to hold a translation.
 */

struct rs_thread {
	_Alignas(64) struct rwcache *cache;
	pthread_barrier_t *start;
	uint64_t iters;
	uint64_t ns;
};

static void *rs_main(void *arg)
{
	struct rs_thread *t = arg;
	struct rwcache *c = t->cache;
	uint64_t acc = 0, t0;

	pthread_barrier_wait(t->start);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < t->iters; i++) {
		pthread_rwlock_rdlock(&c->lock);
		acc += c->set.n;	/* "use" the translations */
		pthread_rwlock_unlock(&c->lock);
	}
	t->ns = bench_now_ns() - t0;
	bench_consume(acc);
	return NULL;
}

int rwcache_readside(unsigned int threads, uint64_t iters, struct readside_result *res)
{
	struct rs_thread t[BENCH_MAX_THREADS];
	pthread_t tid[BENCH_MAX_THREADS];
	pthread_barrier_t start;
	struct rwcache *c;
	int err;

	if (threads == 0 || threads > BENCH_MAX_THREADS || iters == 0)
		return -EINVAL;
	c = aligned_alloc(64, (sizeof(*c) + 63) / 64 * 64);
	if (!c)
		return -ENOMEM;
	err = rwcache_init(c, 16);
	if (err) {
		free(c);
		return err;
	}
	pthread_barrier_init(&start, NULL, threads);
	for (unsigned int i = 0; i < threads; i++) {
		t[i] = (struct rs_thread){ .cache = c, .start = &start, .iters = iters };
		err = pthread_create(&tid[i], NULL, rs_main, &t[i]);
		if (err)
			abort();	/* the barrier would hang */
	}
	res->ns_per_op = 0;
	res->ops_per_s = 0;
	for (unsigned int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		res->ns_per_op += (double)t[i].ns / (double)iters / threads;
		res->ops_per_s += (double)iters * 1e9 / (double)t[i].ns;
	}
	pthread_barrier_destroy(&start);
	rwcache_fini(c);
	free(c);
	return 0;
}

/* ------------------------------------------------------------------------
 * The fault pattern: readers translate and install under the read lock;
 * an invalidation changes memory and drops translations under the write
 * lock. Each thread installs into shadow tables of its own, as in the
 * libmmn design, so that only the synchronisation differs.
 */

#define SHADOW_VALID 1ull	/* entry = value << 1 | SHADOW_VALID */

/* The lock has a line of its own, away from what readers only read. */
struct fault_ctx {
	_Alignas(64) pthread_rwlock_t lock;
	_Alignas(64) _Atomic uint64_t *memory;	/* written under the write lock */
	/* Per thread and slot. Written under the read lock, hence atomic. */
	_Atomic uint64_t *shadow[BENCH_MAX_THREADS][FAULT_SLOTS];
	unsigned int threads;
	atomic_bool stop;
	pthread_barrier_t start;
	bool verify;
};

struct fault_thread {
	_Alignas(64) struct fault_ctx *ctx;
	_Atomic uint64_t **shadow;	/* this thread's, per slot */
	uint64_t seed;
	uint64_t faults;
	uint64_t stale;
};

static void *fault_main(void *arg)
{
	struct fault_thread *t = arg;
	struct fault_ctx *ctx = t->ctx;
	uint64_t faults = 0, stale = 0;

	pthread_barrier_wait(&ctx->start);
	while (!atomic_load_explicit(&ctx->stop, memory_order_relaxed)) {
		for (unsigned int k = 0; k < 64; k++) {
			unsigned int page = (unsigned int)bench_rand_below(&t->seed, FAULT_PAGES);
			unsigned int slot;
			uint64_t v;

			pthread_rwlock_rdlock(&ctx->lock);
			slot = fault_slot_of(page);
			v = atomic_load_explicit(&ctx->memory[page], memory_order_relaxed);
			atomic_store_explicit(&t->shadow[slot][page - fault_slot_first[slot]],
					      v << 1 | SHADOW_VALID, memory_order_relaxed);
			if (ctx->verify &&
			    atomic_load_explicit(&ctx->memory[page], memory_order_relaxed) != v)
				stale++;
			pthread_rwlock_unlock(&ctx->lock);
			faults++;
		}
	}
	t->faults = faults;
	t->stale = stale;
	return NULL;
}

static void fault_invalidate(void *arg, unsigned int first, unsigned int npages)
{
	struct fault_ctx *ctx = arg;

	pthread_rwlock_wrlock(&ctx->lock);
	for (unsigned int p = first; p < first + npages; p++) {
		unsigned int slot = fault_slot_of(p);

		atomic_fetch_add_explicit(&ctx->memory[p], 1, memory_order_relaxed);
		for (unsigned int t = 0; t < ctx->threads; t++)
			atomic_store_explicit(&ctx->shadow[t][slot][p - fault_slot_first[slot]], 0,
					      memory_order_relaxed);
	}
	pthread_rwlock_unlock(&ctx->lock);
}

int rwcache_fault(const struct fault_params *p, struct fault_result *res)
{
	struct fault_thread t[BENCH_MAX_THREADS];
	void *args[BENCH_MAX_THREADS];
	struct fault_ctx *ctx;
	struct pacer pacer;
	int err = -ENOMEM;

	if (p->threads == 0 || p->threads > BENCH_MAX_THREADS)
		return -EINVAL;
	ctx = aligned_alloc(_Alignof(struct fault_ctx), sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	memset(ctx, 0, sizeof(*ctx));
	ctx->memory = calloc(FAULT_PAGES, sizeof(*ctx->memory));
	if (!ctx->memory)
		goto out;
	ctx->threads = p->threads;
	for (unsigned int i = 0; i < p->threads; i++)
		for (unsigned int s = 0; s < FAULT_SLOTS; s++) {
			ctx->shadow[i][s] = calloc(FAULT_SLOT_PAGES, sizeof(*ctx->shadow[i][s]));
			if (!ctx->shadow[i][s])
				goto out;
		}
	ctx->verify = p->verify;
	atomic_init(&ctx->stop, false);
	err = rwlock_init_writer_preferred(&ctx->lock);
	if (err)
		goto out;
	pthread_barrier_init(&ctx->start, NULL, p->threads + 1);

	for (unsigned int i = 0; i < p->threads; i++) {
		t[i] = (struct fault_thread){ .ctx = ctx, .shadow = ctx->shadow[i],
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
			res->stale += t[i].stale;
		}
		res->invalidations = pacer.done;
		/* At rest every valid translation must match memory. */
		for (unsigned int i = 0; i < p->threads; i++)
			for (unsigned int page = 0; page < FAULT_PAGES; page++) {
				unsigned int slot = fault_slot_of(page);
				uint64_t e = ctx->shadow[i][slot][page - fault_slot_first[slot]];

				if ((e & SHADOW_VALID) && e >> 1 != ctx->memory[page])
					res->stale++;
			}
	}
	pthread_barrier_destroy(&ctx->start);
	pthread_rwlock_destroy(&ctx->lock);
out:
	for (unsigned int i = 0; i < BENCH_MAX_THREADS; i++)
		for (unsigned int s = 0; s < FAULT_SLOTS; s++)
			free(ctx->shadow[i][s]);
	free(ctx->memory);
	free(ctx);
	return err;
}
