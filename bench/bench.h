/* SPDX-License-Identifier: MIT */
/* Shared by the benchmark's parts: clock, PRNG, workloads, the designs. */
#ifndef MMN_BENCH_H
#define MMN_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define BENCH_PAGE	4096ull

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the whole process (all threads) in nanoseconds. */
static inline uint64_t bench_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: every workload is reproducible from its seed. */
static inline uint64_t bench_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform enough in [0, n), n > 0. */
static inline uint64_t bench_rand_below(uint64_t *s, uint64_t n)
{
	return bench_rand(s) % n;
}

/*
 * Results of measured work end up here, so that the compiler cannot drop
 * the work as dead code.
 */
extern _Atomic uint64_t bench_sink;

static inline void bench_consume(uint64_t v)
{
	atomic_fetch_add_explicit(&bench_sink, v, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Read side: read_begin + read_retry (or its baseline) in a loop.
 */

#define BENCH_MAX_THREADS 8

struct readside_result {
	double ns_per_op;	/* mean over threads of elapsed / iterations */
	double ops_per_s;	/* sum over threads of iterations / elapsed */
};

/*
 * The fault pattern: FAULT_THREADS vCPU-like threads fault random pages of
 * FAULT_PAGES guest pages, split into FAULT_SLOTS memory slots; one pacer
 * thread invalidates 1 to 8 pages at a time at a given rate and changes
 * them. A fault computes the translation of a page from the "page table"
 * (an array that invalidations change) and installs it in a shadow table.
 * Every design finds the slot of a page by the same binary search.
 */
#define FAULT_PAGES		4096u
#define FAULT_SLOTS		16u
#define FAULT_SLOT_PAGES	(FAULT_PAGES / FAULT_SLOTS)
#define FAULT_MAX_INVAL_PAGES	8u

struct fault_params {
	unsigned int threads;	/* faulting threads */
	double inval_rate;	/* invalidations per second; 0: none */
	uint64_t duration_ns;
	bool verify;		/* check every install against memory */
	uint64_t seed;
};

struct fault_result {
	uint64_t faults;
	uint64_t retries;	/* read_retry answers "again" */
	uint64_t invalidations;
	uint64_t stale;		/* installs that did not match memory: bugs */
	double elapsed_ns;
};

/* First page of every slot, ascending: what a VMM's slot array holds. */
extern const unsigned int fault_slot_first[FAULT_SLOTS];

/* The slot holding PAGE, by binary search, as a VMM would look it up. */
static inline unsigned int fault_slot_of(unsigned int page)
{
	unsigned int lo = 0, hi = FAULT_SLOTS;

	while (hi - lo > 1) {
		unsigned int mid = (lo + hi) / 2;

		if (fault_slot_first[mid] <= page)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The pacer: calls INVALIDATE(ctx, first_page, npages) RATE times per
 * second until *STOP, sleeping between deadlines and catching up after a
 * late wake-up. Returns how many it made.
 */
struct pacer {
	double rate;
	const atomic_bool *stop;
	void (*invalidate)(void *ctx, unsigned int first, unsigned int npages);
	void *ctx;
	uint64_t seed;
	uint64_t done;
};
void *pacer_main(void *arg);

/* Start THREADS threads at FN(ARGS[i]) and the pacer; run; stop; join. */
int fault_run_threads(unsigned int threads, void *(*fn)(void *), void **args,
		      struct pacer *pacer, atomic_bool *stop, pthread_barrier_t *start,
		      uint64_t duration_ns, double *elapsed_ns);

/* ------------------------------------------------------------------------
 * The notifier protocol as a design, built twice: libmmn's lock-free
 * read side, and the kernel-style read side that takes the state's lock
 * (libmmn's notifier.c built with MMN_BENCH_LOCKED_READ_BEGIN).
 */
struct proto_selftest_trace {
	uint64_t values[16];
	unsigned int n;
};

struct proto_impl {
	const char *name;
	int (*readside)(unsigned int threads, uint64_t iters, struct readside_result *res);
	/* The same with one state per thread: a control that shares nothing. */
	int (*readside_private)(unsigned int threads, uint64_t iters,
				struct readside_result *res);
	int (*fault)(const struct fault_params *p, struct fault_result *res);
	/* A fixed script of protocol calls; both builds must trace alike. */
	const char *(*trace)(struct proto_selftest_trace *trace);
};

extern const struct proto_impl proto_lockfree_impl;
extern const struct proto_impl proto_locked_impl;

#endif /* MMN_BENCH_H */
