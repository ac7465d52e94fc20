/* SPDX-License-Identifier: MIT */
/*
 * notifier-stress: the fault pattern against invalidations, in real threads.
 *
 * "Memory" is an array of page values. Reader threads own a subscription
 * over a window of pages and fill a shadow table with the read_begin /
 * compute / lock / read_retry pattern. Invalidator threads pick a range,
 * invalidate it (blockable or not), change the page values, and end. A
 * churn thread inserts, uses, removes and frees short-lived subscriptions.
 *
 * Invariant, checked by every reader under its table lock after every
 * install: each valid shadow entry equals the current page value. A stale
 * value would mean an install raced an invalidation undetected. At the end
 * the counters must match what the threads did.
 *
 * Usage: notifier-stress [SECONDS]   (default 3; STRESS_SECONDS overrides)
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mmn/mmn.h>

#include "testutil.h"

#define PAGE		4096ull
#define NR_PAGES	256
#define NR_READERS	2
#define NR_INVALIDATORS	2
#define WINDOW		32	/* pages per reader subscription */

static _Atomic uint64_t memory[NR_PAGES];
static struct mmn_state *state;
static atomic_bool stop;
static struct test_failures fails = TEST_FAILURES_INIT;

struct shadow_entry {
	bool valid;
	uint64_t value;
};

struct reader {
	struct mmn_range_sub rsub;
	pthread_mutex_t lock;		/* guards table */
	unsigned int first;		/* first page of the window */
	struct shadow_entry table[WINDOW];
	uint64_t seed;
	unsigned long installs, retries;
};

static bool reader_invalidate(struct mmn_range_sub *rsub,
			      const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct reader *r = mmn_container_of(rsub, struct reader, rsub);
	uint64_t first = desc->start / PAGE, last = (desc->end - 1) / PAGE;

	if (desc->flags & MMN_INVALIDATE_BLOCKABLE) {
		pthread_mutex_lock(&r->lock);
	} else if (pthread_mutex_trylock(&r->lock)) {
		return false;	/* would have to wait for the reader */
	}
	mmn_range_set_seq(rsub, cur_seq);
	for (uint64_t p = first; p <= last; p++)
		if (p >= r->first && p < r->first + WINDOW)
			r->table[p - r->first].valid = false;
	pthread_mutex_unlock(&r->lock);
	return true;
}

static const struct mmn_range_sub_ops reader_ops = { .invalidate = reader_invalidate };

/* Under r->lock: every valid entry must hold the current page value. */
static void check_table(struct reader *r)
{
	for (unsigned int i = 0; i < WINDOW; i++) {
		uint64_t now = atomic_load_explicit(&memory[r->first + i], memory_order_relaxed);

		if (r->table[i].valid && r->table[i].value != now)
			test_fail(&fails, "stale translation: page %u holds %llu, memory %llu",
				  r->first + i, (unsigned long long)r->table[i].value,
				  (unsigned long long)now);
	}
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	while (!atomic_load(&stop)) {
		unsigned int i = (unsigned int)test_rand_below(&r->seed, WINDOW);
		uint64_t seq, value;

		for (;;) {
			seq = mmn_range_read_begin(&r->rsub);
			value = atomic_load_explicit(&memory[r->first + i], memory_order_relaxed);
			pthread_mutex_lock(&r->lock);
			if (!mmn_range_read_retry(&r->rsub, seq))
				break;
			pthread_mutex_unlock(&r->lock);
			r->retries++;
		}
		r->table[i].valid = true;
		r->table[i].value = value;
		r->installs++;
		check_table(r);
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

struct invalidator {
	uint64_t seed;
	unsigned long started, refused;
};

static void *invalidator_main(void *arg)
{
	struct invalidator *inv = arg;

	while (!atomic_load(&stop)) {
		uint64_t first = test_rand_below(&inv->seed, NR_PAGES);
		uint64_t n = 1 + test_rand_below(&inv->seed, 8);
		struct mmn_invalidate_desc d = {
			.start = first * PAGE,
			.end = (first + n) * PAGE,
			.event = MMN_EVENT_CLEAR,
			.flags = test_rand_below(&inv->seed, 2) ? MMN_INVALIDATE_BLOCKABLE : 0,
		};
		int err = mmn_invalidate_start(state, &d);

		if (err == -EAGAIN && !(d.flags & MMN_INVALIDATE_BLOCKABLE)) {
			inv->refused++;
			continue;	/* memory untouched, as promised */
		}
		if (err) {
			test_fail(&fails, "mmn_invalidate_start: %d", err);
			break;
		}
		inv->started++;
		for (uint64_t p = first; p < first + n && p < NR_PAGES; p++)
			atomic_fetch_add_explicit(&memory[p], 1, memory_order_relaxed);
		mmn_invalidate_end(state, &d);
	}
	return NULL;
}

/* Short-lived subscriptions: insert, read once, remove, free. */
struct churn {
	uint64_t seed;
	unsigned long cycles;
};

static bool churn_invalidate(struct mmn_range_sub *rsub,
			     const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	(void)desc;
	mmn_range_set_seq(rsub, cur_seq);
	return true;
}

static const struct mmn_range_sub_ops churn_ops = { .invalidate = churn_invalidate };

static void *churn_main(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&stop)) {
		struct mmn_range_sub *rsub = calloc(1, sizeof(*rsub));
		uint64_t first = test_rand_below(&c->seed, NR_PAGES);
		int err;

		if (!rsub) {
			test_fail(&fails, "out of memory");
			break;
		}
		err = mmn_range_sub_insert(rsub, state, first * PAGE, 4 * PAGE, &churn_ops);
		if (err) {
			test_fail(&fails, "mmn_range_sub_insert: %d", err);
			free(rsub);
			break;
		}
		(void)mmn_range_read_begin(rsub);
		mmn_range_sub_remove(rsub);
		/* Freed at once: any later touch by libmmn is a use-after-free. */
		free(rsub);
		c->cycles++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *env = getenv("STRESS_SECONDS");
	double seconds = env ? atof(env) : argc > 1 ? atof(argv[1]) : 3;
	uint64_t seed = (uint64_t)time(NULL);
	struct reader *readers = calloc(NR_READERS, sizeof(*readers));
	struct invalidator invs[NR_INVALIDATORS] = { 0 };
	struct churn churn = { .seed = seed ^ 0xc0ffee };
	pthread_t rt[NR_READERS], it[NR_INVALIDATORS], ct;
	unsigned long started = 0, refused = 0, installs = 0, retries = 0;
	struct mmn_stats s = { .size = sizeof(s) };
	struct timespec ts;
	int err;

	if (!readers || mmn_state_new(&state)) {
		fprintf(stderr, "notifier-stress: setup failed\n");
		return 1;
	}
	printf("notifier-stress: %.1f s, seed %llu\n", seconds, (unsigned long long)seed);

	for (int i = 0; i < NR_READERS; i++) {
		struct reader *r = &readers[i];

		pthread_mutex_init(&r->lock, NULL);
		r->first = (unsigned int)i * WINDOW / 2;	/* windows overlap */
		r->seed = seed + (uint64_t)i + 1;
		err = mmn_range_sub_insert(&r->rsub, state, r->first * PAGE, WINDOW * PAGE,
					   &reader_ops);
		if (err) {
			fprintf(stderr, "notifier-stress: insert: %d\n", err);
			return 1;
		}
		pthread_create(&rt[i], NULL, reader_main, r);
	}
	for (int i = 0; i < NR_INVALIDATORS; i++) {
		invs[i].seed = seed * 31 + (uint64_t)i + 7;
		pthread_create(&it[i], NULL, invalidator_main, &invs[i]);
	}
	pthread_create(&ct, NULL, churn_main, &churn);

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);	/* the run's length, not a synchronisation */
	atomic_store(&stop, true);

	for (int i = 0; i < NR_READERS; i++) {
		pthread_join(rt[i], NULL);
		installs += readers[i].installs;
		retries += readers[i].retries;
	}
	for (int i = 0; i < NR_INVALIDATORS; i++) {
		pthread_join(it[i], NULL);
		started += invs[i].started;
		refused += invs[i].refused;
	}
	pthread_join(ct, NULL);

	mmn_state_stats(state, &s);
	printf("notifier-stress: %lu installs, %lu retries, %lu invalidations, %lu refused, "
	       "%lu churn cycles, %llu read waits, %llu deferred inserts, %llu deferred removes\n",
	       installs, retries, started, refused, churn.cycles,
	       (unsigned long long)s.read_begin_waits,
	       (unsigned long long)s.deferred_inserts, (unsigned long long)s.deferred_removes);

	if (s.invalidations_started != started || s.invalidations_ended != started)
		test_fail(&fails, "counters: started %llu ended %llu, threads did %lu",
			  (unsigned long long)s.invalidations_started,
			  (unsigned long long)s.invalidations_ended, started);
	if (s.invalidations_refused != refused)
		test_fail(&fails, "counters: refused %llu, threads saw %lu",
			  (unsigned long long)s.invalidations_refused, refused);
	if (s.active_invalidations != 0 || s.range_subs != NR_READERS)
		test_fail(&fails, "after join: %llu active, %llu subscriptions",
			  (unsigned long long)s.active_invalidations,
			  (unsigned long long)s.range_subs);
	if (installs == 0 || started == 0 || churn.cycles == 0)
		test_fail(&fails, "a thread made no progress");

	for (int i = 0; i < NR_READERS; i++) {
		pthread_mutex_lock(&readers[i].lock);
		check_table(&readers[i]);
		pthread_mutex_unlock(&readers[i].lock);
		mmn_range_sub_remove(&readers[i].rsub);
	}
	mmn_state_free(state);
	free(readers);

	if (fails.count) {
		fprintf(stderr, "notifier-stress: FAILED (%lu failures, seed %llu): %s\n",
			fails.count, (unsigned long long)seed, fails.first);
		return 1;
	}
	printf("notifier-stress: passed\n");
	return 0;
}
