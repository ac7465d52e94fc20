/* SPDX-License-Identifier: MIT */
/* What the designs share: the slot array, the pacer, the thread harness. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "bench.h"

_Atomic uint64_t bench_sink;

#define SLOT(i) ((i) * FAULT_SLOT_PAGES)
const unsigned int fault_slot_first[FAULT_SLOTS] = {
	SLOT(0), SLOT(1), SLOT(2), SLOT(3), SLOT(4), SLOT(5), SLOT(6), SLOT(7),
	SLOT(8), SLOT(9), SLOT(10), SLOT(11), SLOT(12), SLOT(13), SLOT(14), SLOT(15),
};
_Static_assert(FAULT_SLOTS == 16, "fault_slot_first lists 16 slots");

static void sleep_until(uint64_t deadline_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ns / 1000000000ull),
		.tv_nsec = (long)(deadline_ns % 1000000000ull),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

void *pacer_main(void *arg)
{
	struct pacer *p = arg;
	const uint64_t period = (uint64_t)(1e9 / p->rate) ? (uint64_t)(1e9 / p->rate) : 1;
	uint64_t next = bench_now_ns() + period;

	/* Default slack (50 us) would cap the rate near 20000/s. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	while (!atomic_load_explicit(p->stop, memory_order_relaxed)) {
		uint64_t now = bench_now_ns();

		/* Far behind (preempted): restart the schedule, do not burst. */
		if (now > next + 1000 * period)
			next = now;
		while (next <= now && !atomic_load_explicit(p->stop, memory_order_relaxed)) {
			unsigned int first = (unsigned int)bench_rand_below(&p->seed, FAULT_PAGES);
			unsigned int n = 1 + (unsigned int)bench_rand_below(&p->seed, FAULT_MAX_INVAL_PAGES);

			if (first + n > FAULT_PAGES)
				n = FAULT_PAGES - first;
			p->invalidate(p->ctx, first, n);
			p->done++;
			next += period;
		}
		sleep_until(next);
	}
	return NULL;
}

static void die_errno(const char *what, int err)
{
	fprintf(stderr, "mmn-bench: %s: %s\n", what, strerror(err));
	exit(2);
}

int fault_run_threads(unsigned int threads, void *(*fn)(void *), void **args,
		      struct pacer *pacer, atomic_bool *stop, pthread_barrier_t *start,
		      uint64_t duration_ns, double *elapsed_ns)
{
	pthread_t tid[BENCH_MAX_THREADS], pacer_tid;
	const bool pacing = pacer && pacer->rate > 0;
	uint64_t t0, t1;
	int err;

	if (threads == 0 || threads > BENCH_MAX_THREADS)
		return -EINVAL;
	for (unsigned int i = 0; i < threads; i++) {
		err = pthread_create(&tid[i], NULL, fn, args[i]);
		if (err)
			die_errno("pthread_create", err);	/* the barrier would hang */
	}
	pthread_barrier_wait(start);
	t0 = bench_now_ns();
	if (pacing) {
		err = pthread_create(&pacer_tid, NULL, pacer_main, pacer);
		if (err)
			die_errno("pthread_create", err);
	}
	sleep_until(t0 + duration_ns);
	atomic_store(stop, true);
	for (unsigned int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	t1 = bench_now_ns();
	if (pacing)
		pthread_join(pacer_tid, NULL);
	*elapsed_ns = (double)(t1 - t0);
	return 0;
}
