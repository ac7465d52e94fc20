/* SPDX-License-Identifier: MIT */
/*
 * litmus-readside: message passing through the lock-free read_begin.
 *
 * One invalidator and one reader on one subscription, in rounds. In round
 * K the invalidator starts an invalidation (its ->invalidate() stamps the
 * subscription under the cache lock), writes K to a plain, non-atomic
 * 'page', and ends. The reader calls mmn_range_read_begin() until it
 * returns the stamp of round K, then reads the page without any lock and
 * must see K; it then tells the invalidator, which starts round K + 1.
 *
 * read_begin returns the new stamp only after one of two things: it waited
 * under the state's lock until the round ended, or its acquire load of
 * state->seq saw the even seq that range_end() stored with release after
 * the page was written. Either way the reader's load of the page happens
 * after the write. If the acquire or the release were missing:
 *  - on a weakly ordered CPU (Arm, POWER) the reader could see the new
 *    stamp but the old seq or the old page: this test reports the value;
 *  - under ThreadSanitizer the page load is not ordered after the write
 *    by any happens-before edge: TSan reports a data race, on any CPU.
 * On x86 (TSO) loads are not reordered with loads nor stores with stores,
 * so without TSan this test cannot fail there; docs/reliability.md says
 * what it proves where.
 *
 * The page is written only between the start and the end, and the next
 * round starts only after the reader is done, so in the correct library
 * no access to it races.
 *
 * Usage: litmus-readside [ROUNDS]   (default 200000, or 2 s if sooner)
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mmn/mmn.h>

#include "testutil.h"

static struct mmn_state *state;
static struct mmn_range_sub rsub;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long page;		/* plain on purpose: TSan checks its ordering */
static atomic_ulong done;		/* the last round the reader checked */
static atomic_bool stop;
static unsigned long rounds;
static struct test_failures fails = TEST_FAILURES_INIT;

static bool litmus_invalidate(struct mmn_range_sub *r,
			      const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	(void)desc;
	pthread_mutex_lock(&cache_lock);
	mmn_range_set_seq(r, cur_seq);
	pthread_mutex_unlock(&cache_lock);
	return true;
}

static const struct mmn_range_sub_ops litmus_ops = {
	.invalidate = litmus_invalidate,
};

/* Spin, yielding now and then: the other side may share our core. */
static void relax(unsigned long *spins)
{
	if (++*spins % 64 == 0)
		sched_yield();
}

static void *invalidator_main(void *arg)
{
	const struct mmn_invalidate_desc desc = {
		.start = 0,
		.end = 4096,
		.event = MMN_EVENT_UNMAP,
		.flags = MMN_INVALIDATE_BLOCKABLE,
	};

	(void)arg;
	for (unsigned long k = 1; k <= rounds && !atomic_load(&stop); k++) {
		int err = mmn_invalidate_start(state, &desc);

		if (err) {
			test_fail(&fails, "mmn_invalidate_start: %d", err);
			break;
		}
		page = k;
		mmn_invalidate_end(state, &desc);
		for (unsigned long spins = 0;
		     atomic_load_explicit(&done, memory_order_acquire) != k &&
		     !atomic_load(&stop); )
			relax(&spins);
	}
	atomic_store(&stop, true);
	return NULL;
}

static void *reader_main(void *arg)
{
	uint64_t last = *(uint64_t *)arg;	/* the stamp before round 1 */

	for (unsigned long k = 1; k <= rounds && !atomic_load(&stop); k++) {
		uint64_t seq;
		unsigned long seen, spins = 0;

		while ((seq = mmn_range_read_begin(&rsub)) == last && !atomic_load(&stop))
			relax(&spins);
		if (seq == last)
			break;
		seen = page;
		if (seen != k)
			test_fail(&fails, "round %lu: read_begin returned its stamp %llu "
				  "but the page holds %lu", k, (unsigned long long)seq, seen);
		last = seq;
		atomic_store_explicit(&done, k, memory_order_release);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	pthread_t it, rt;
	unsigned long checked;
	struct mmn_stats stats;
	uint64_t first;
	int err;

	rounds = argc > 1 ? strtoul(argv[1], NULL, 0) : 200000;
	err = mmn_state_new(&state);
	if (!err)
		err = mmn_range_sub_insert(&rsub, state, 0, 4096, &litmus_ops);
	if (err) {
		fprintf(stderr, "setup: %d\n", err);
		return 99;
	}

	first = mmn_range_read_begin(&rsub);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&rt, NULL, reader_main, &first);
	pthread_create(&it, NULL, invalidator_main, NULL);
	for (;;) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (atomic_load(&stop))
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec >= 2) {
			atomic_store(&stop, true);
			break;
		}
		nanosleep(&ts, NULL);
	}
	pthread_join(it, NULL);
	pthread_join(rt, NULL);

	checked = atomic_load(&done);
	stats.size = sizeof(stats);
	mmn_state_stats(state, &stats);
	mmn_range_sub_remove(&rsub);
	mmn_state_free(state);
	/* The rounds that did not wait are those where the barriers matter. */
	printf("litmus-readside: %lu rounds checked (%llu waited in read_begin), %lu failures\n",
	       checked, (unsigned long long)stats.read_begin_waits, fails.count);
	if (fails.count) {
		fprintf(stderr, "FAIL: %lu failure(s), first: %s\n", fails.count, fails.first);
		return 1;
	}
	if (checked < 100) {
		fprintf(stderr, "FAIL: only %lu rounds in the time allowed\n", checked);
		return 1;
	}
	return 0;
}
