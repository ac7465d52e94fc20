/* SPDX-License-Identifier: MIT */
/* The notifier protocol: one suite per rule of the design. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include <mmn/mmn.h>

#include "notifier.h"
#include "testutil.h"

/* ------------------------------------------------------------------------
 * Fixtures: a subscription that records its calls.
 */

struct rec_sub {
	struct mmn_range_sub rsub;
	pthread_mutex_t lock;		/* the "cache lock" of the protocol */
	atomic_int calls;
	uint64_t last_seq;
	struct mmn_invalidate_desc last_desc;
	bool refuse;			/* return false when not blockable */
	bool skip_set_seq;		/* a buggy subscriber */
	/* When set, the callback parks until 'go' (for interleavings). */
	bool park;
	atomic_int parked;
	atomic_int go;
};

static bool rec_invalidate(struct mmn_range_sub *rsub,
			   const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct rec_sub *r = mmn_container_of(rsub, struct rec_sub, rsub);

	if (r->refuse && !(desc->flags & MMN_INVALIDATE_BLOCKABLE))
		return false;
	pthread_mutex_lock(&r->lock);
	if (!r->skip_set_seq)
		mmn_range_set_seq(rsub, cur_seq);
	r->last_seq = cur_seq;
	r->last_desc = *desc;
	pthread_mutex_unlock(&r->lock);
	atomic_fetch_add(&r->calls, 1);
	if (r->park) {
		atomic_store(&r->parked, 1);
		while (!atomic_load(&r->go))
			sched_yield();
	}
	return true;
}

static const struct mmn_range_sub_ops rec_ops = { .invalidate = rec_invalidate };

static void rec_init(struct rec_sub *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
}

/* The second run walks the index from the first subscription on. */
static bool index_always;

static struct mmn_state *new_state(void)
{
	struct mmn_state *state = NULL;

	ck_assert_int_eq(mmn_state_new(&state), 0);
	ck_assert_ptr_nonnull(state);
	if (index_always)
		notifier_index_min(state, 0);
	return state;
}

static struct mmn_invalidate_desc desc_of(uint64_t start, uint64_t end, bool blockable)
{
	struct mmn_invalidate_desc d = {
		.start = start,
		.end = end,
		.event = MMN_EVENT_UNMAP,
		.flags = blockable ? MMN_INVALIDATE_BLOCKABLE : 0,
	};
	return d;
}

static struct mmn_stats stats_of(struct mmn_state *state)
{
	struct mmn_stats s = { .size = sizeof(s) };

	ck_assert_int_eq(mmn_state_stats(state, &s), 0);
	return s;
}

/* Spin until COND holds: progress is guaranteed by the scenario. */
#define WAIT_FOR(cond)				\
	do {					\
		while (!(cond))			\
			sched_yield();		\
	} while (0)

/* A thread that runs mmn_range_read_begin() and records what it got. */
struct reader {
	pthread_t thread;
	struct mmn_range_sub *rsub;
	uint64_t seq;
	atomic_int done;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;

	rd->seq = mmn_range_read_begin(rd->rsub);
	atomic_store(&rd->done, 1);
	return NULL;
}

static void reader_start(struct reader *rd, struct mmn_range_sub *rsub)
{
	memset(rd, 0, sizeof(*rd));
	rd->rsub = rsub;
	ck_assert_int_eq(pthread_create(&rd->thread, NULL, reader_main, rd), 0);
}

/* ------------------------------------------------------------------------
 * Rule 1: read_begin / read_retry
 */

START_TEST(read_retry_sees_overlapping_invalidation)
{
	struct mmn_state *state = new_state();
	struct rec_sub r;
	struct mmn_invalidate_desc d;
	uint64_t seq;

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops), 0);

	seq = mmn_range_read_begin(&r.rsub);
	ck_assert(!mmn_range_read_retry(&r.rsub, seq));
	ck_assert(!mmn_range_check_retry(&r.rsub, seq));

	/* Outside: [0, 0x1000) and [0x2000, 0x3000) touch but do not overlap. */
	d = desc_of(0, 0x1000, true);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	mmn_invalidate_end(state, &d);
	d = desc_of(0x2000, 0x3000, true);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	mmn_invalidate_end(state, &d);
	ck_assert_int_eq(atomic_load(&r.calls), 0);
	ck_assert(!mmn_range_read_retry(&r.rsub, seq));

	/* Overlapping by one byte on either side. */
	d = desc_of(0x1fff, 0x2000, true);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	ck_assert_int_eq(atomic_load(&r.calls), 1);
	ck_assert(r.last_seq & 1);
	ck_assert(mmn_range_read_retry(&r.rsub, seq));
	ck_assert(mmn_range_check_retry(&r.rsub, seq));
	mmn_invalidate_end(state, &d);
	ck_assert_uint_eq(r.last_desc.start, 0x1fff);
	ck_assert_uint_eq(r.last_desc.end, 0x2000);
	ck_assert_int_eq(r.last_desc.event, MMN_EVENT_UNMAP);

	/* A new read after the end does not retry. */
	seq = mmn_range_read_begin(&r.rsub);
	ck_assert(!mmn_range_read_retry(&r.rsub, seq));

	mmn_range_sub_remove(&r.rsub);
	mmn_state_free(state);
}
END_TEST

START_TEST(read_begin_waits_for_running_invalidation)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);
	struct rec_sub r;
	struct reader rd;

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);

	reader_start(&rd, &r.rsub);
	WAIT_FOR(stats_of(state).read_begin_waits == 1);
	/* Parked in the wait: it cannot return before the end. */
	ck_assert_int_eq(atomic_load(&rd.done), 0);

	mmn_invalidate_end(state, &d);
	pthread_join(rd.thread, NULL);
	ck_assert_int_eq(atomic_load(&rd.done), 1);
	/* The seq it got is current: no retry unless a new invalidation hits. */
	ck_assert(!mmn_range_read_retry(&r.rsub, rd.seq));

	mmn_range_sub_remove(&r.rsub);
	mmn_state_free(state);
}
END_TEST

START_TEST(read_begin_waits_for_every_invalidation)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc a = desc_of(0x1000, 0x2000, true);
	struct mmn_invalidate_desc b = desc_of(0x8000, 0x9000, true);
	struct rec_sub r;
	struct reader rd;

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &a), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &b), 0);
	reader_start(&rd, &r.rsub);
	WAIT_FOR(stats_of(state).read_begin_waits == 1);

	/* The one that hit ends first; the other still holds seq odd. */
	mmn_invalidate_end(state, &a);
	ck_assert_uint_eq(stats_of(state).active_invalidations, 1);
	ck_assert_int_eq(atomic_load(&rd.done), 0);

	mmn_invalidate_end(state, &b);
	pthread_join(rd.thread, NULL);
	ck_assert(!mmn_range_read_retry(&r.rsub, rd.seq));

	mmn_range_sub_remove(&r.rsub);
	mmn_state_free(state);
}
END_TEST

START_TEST(read_begin_does_not_wait_for_others)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc d = desc_of(0x1000, 0x2000, true);
	struct rec_sub hit, other;
	uint64_t seq;

	rec_init(&hit);
	rec_init(&other);
	ck_assert_int_eq(mmn_range_sub_insert(&hit.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&other.rsub, state, 0x5000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);

	/* seq is odd, but OTHER was not hit: it reads on, in this thread. */
	seq = mmn_range_read_begin(&other.rsub);
	ck_assert(!mmn_range_read_retry(&other.rsub, seq));
	ck_assert_uint_eq(stats_of(state).read_begin_waits, 0);

	mmn_invalidate_end(state, &d);
	mmn_range_sub_remove(&hit.rsub);
	mmn_range_sub_remove(&other.rsub);
	mmn_state_free(state);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rule 2: many invalidations at once; the odd cur_seq; set_seq
 */

START_TEST(concurrent_invalidations_share_odd_seq)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc a = desc_of(0x1000, 0x2000, true);
	struct mmn_invalidate_desc b = desc_of(0x3000, 0x4000, false);
	struct rec_sub ra, rb;
	uint64_t before, seq;

	rec_init(&ra);
	rec_init(&rb);
	ck_assert_int_eq(mmn_range_sub_insert(&ra.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&rb.rsub, state, 0x3000, 0x1000, &rec_ops), 0);
	before = mmn_range_read_begin(&rb.rsub);

	ck_assert_int_eq(mmn_invalidate_start(state, &a), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &b), 0);
	ck_assert_uint_eq(stats_of(state).active_invalidations, 2);
	ck_assert(ra.last_seq & 1);
	ck_assert_uint_eq(ra.last_seq, rb.last_seq);
	ck_assert(mmn_range_read_retry(&rb.rsub, before));
	mmn_invalidate_end(state, &b);
	mmn_invalidate_end(state, &a);

	/* A later invalidation gets a later odd seq. */
	seq = ra.last_seq;
	ck_assert_int_eq(mmn_invalidate_start(state, &a), 0);
	mmn_invalidate_end(state, &a);
	ck_assert(ra.last_seq & 1);
	ck_assert_uint_gt(ra.last_seq, seq);

	mmn_range_sub_remove(&ra.rsub);
	mmn_range_sub_remove(&rb.rsub);
	mmn_state_free(state);
}
END_TEST

struct inv_loop {
	struct mmn_state *state;
	struct test_failures *fails;
	int rounds;
};

static void *inv_loop_main(void *p)
{
	struct inv_loop *a = p;
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);

	for (int i = 0; i < a->rounds; i++) {
		int err = mmn_invalidate_start(a->state, &d);

		if (err) {
			test_fail(a->fails, "start returned %d", err);
			return NULL;
		}
		mmn_invalidate_end(a->state, &d);
	}
	return NULL;
}

START_TEST(concurrent_invalidations_from_threads)
{
	enum { THREADS = 2, ROUNDS = 2000 };
	struct mmn_state *state = new_state();
	struct rec_sub r;
	pthread_t t[THREADS];
	struct test_failures fails = TEST_FAILURES_INIT;
	struct mmn_stats s;

	struct inv_loop arg = { state, &fails, ROUNDS };

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, inv_loop_main, &arg), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);

	ck_assert_msg(fails.count == 0, "%s", fails.first);
	s = stats_of(state);
	ck_assert_uint_eq(s.invalidations_started, THREADS * ROUNDS);
	ck_assert_uint_eq(s.invalidations_ended, THREADS * ROUNDS);
	ck_assert_uint_eq(s.active_invalidations, 0);
	ck_assert_int_eq(atomic_load(&r.calls), THREADS * ROUNDS);
	/* Nothing left odd: a read neither waits nor retries. */
	uint64_t seq = mmn_range_read_begin(&r.rsub);
	ck_assert(!mmn_range_read_retry(&r.rsub, seq));

	mmn_range_sub_remove(&r.rsub);
	mmn_state_free(state);
}
END_TEST

static void missing_set_seq(void *unused)
{
	struct mmn_state *state = NULL;
	struct rec_sub r;
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);

	(void)unused;
	mmn_state_new(&state);
	rec_init(&r);
	r.skip_set_seq = true;
	mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops);
	mmn_invalidate_start(state, &d);
}

START_TEST(debug_missing_set_seq_aborts)
{
	const char *why = test_expect_abort(missing_set_seq, NULL,
					    "without calling mmn_range_set_seq");

	ck_assert_msg(why == NULL, "%s", why);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rule 3: non-blocking invalidation
 */

struct rec_whole {
	struct mmn_sub sub;
	atomic_int starts, ends, releases;
	int refuse;			/* return -EAGAIN when not blockable */
};

static int whole_start(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	struct rec_whole *w = mmn_container_of(sub, struct rec_whole, sub);

	if (w->refuse && !(desc->flags & MMN_INVALIDATE_BLOCKABLE))
		return -EAGAIN;
	atomic_fetch_add(&w->starts, 1);
	return 0;
}

static void whole_end(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	struct rec_whole *w = mmn_container_of(sub, struct rec_whole, sub);

	(void)desc;
	atomic_fetch_add(&w->ends, 1);
}

static void whole_release(struct mmn_sub *sub, struct mmn_state *state)
{
	struct rec_whole *w = mmn_container_of(sub, struct rec_whole, sub);

	(void)state;
	atomic_fetch_add(&w->releases, 1);
}

static const struct mmn_sub_ops whole_ops = {
	.release = whole_release,
	.invalidate_start = whole_start,
	.invalidate_end = whole_end,
};

START_TEST(nonblock_range_refusal)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc nb = desc_of(0, 0x10000, false);
	struct mmn_invalidate_desc bl = desc_of(0, 0x10000, true);
	struct rec_sub ok, refuser;
	struct rec_whole w = { .sub.ops = &whole_ops };
	struct mmn_stats s;
	uint64_t seq;

	rec_init(&ok);
	rec_init(&refuser);
	refuser.refuse = true;
	ck_assert_int_eq(mmn_range_sub_insert(&ok.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&refuser.rsub, state, 0x2000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_sub_register(&w.sub, state), 0);

	ck_assert_int_eq(mmn_invalidate_start(state, &nb), -EAGAIN);
	s = stats_of(state);
	ck_assert_uint_eq(s.invalidations_refused, 1);
	ck_assert_uint_eq(s.invalidations_started, 0);
	ck_assert_uint_eq(s.active_invalidations, 0);
	/* The refused invalidation never reached the whole-space side. */
	ck_assert_int_eq(atomic_load(&w.starts), 0);
	ck_assert_int_eq(atomic_load(&w.ends), 0);
	/* Bookkeeping undone: reads neither wait nor stay odd. */
	seq = mmn_range_read_begin(&refuser.rsub);
	ck_assert(!mmn_range_read_retry(&refuser.rsub, seq));
	ck_assert_uint_eq(stats_of(state).read_begin_waits, 0);

	/* The same range, blockable, goes through. */
	ck_assert_int_eq(mmn_invalidate_start(state, &bl), 0);
	mmn_invalidate_end(state, &bl);
	ck_assert_int_eq(atomic_load(&refuser.calls), 1);
	ck_assert_int_eq(atomic_load(&w.starts), 1);
	ck_assert_int_eq(atomic_load(&w.ends), 1);

	mmn_sub_unregister(&w.sub, state);
	mmn_range_sub_remove(&ok.rsub);
	mmn_range_sub_remove(&refuser.rsub);
	mmn_state_free(state);
}
END_TEST

START_TEST(nonblock_whole_space_refusal_undoes_earlier)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc nb = desc_of(0, 0x10000, false);
	struct rec_whole first = { .sub.ops = &whole_ops };
	struct rec_whole refuser = { .sub.ops = &whole_ops, .refuse = 1 };
	struct rec_whole third = { .sub.ops = &whole_ops };
	struct rec_sub r;
	struct mmn_stats s;
	uint64_t seq;

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_sub_register(&first.sub, state), 0);
	ck_assert_int_eq(mmn_sub_register(&refuser.sub, state), 0);
	ck_assert_int_eq(mmn_sub_register(&third.sub, state), 0);

	ck_assert_int_eq(mmn_invalidate_start(state, &nb), -EAGAIN);
	/* The one that accepted hears the end; the others heard nothing. */
	ck_assert_int_eq(atomic_load(&first.starts), 1);
	ck_assert_int_eq(atomic_load(&first.ends), 1);
	ck_assert_int_eq(atomic_load(&refuser.starts), 0);
	ck_assert_int_eq(atomic_load(&refuser.ends), 0);
	ck_assert_int_eq(atomic_load(&third.starts), 0);
	ck_assert_int_eq(atomic_load(&third.ends), 0);
	s = stats_of(state);
	ck_assert_uint_eq(s.active_invalidations, 0);
	ck_assert_uint_eq(s.invalidations_refused, 1);
	/* The range side was undone too: nothing left odd. */
	seq = mmn_range_read_begin(&r.rsub);
	ck_assert(!mmn_range_read_retry(&r.rsub, seq));
	ck_assert_uint_eq(stats_of(state).read_begin_waits, 0);

	mmn_sub_unregister(&first.sub, state);
	mmn_sub_unregister(&refuser.sub, state);
	mmn_sub_unregister(&third.sub, state);
	mmn_range_sub_remove(&r.rsub);
	mmn_state_free(state);
}
END_TEST

/* A whole-space subscriber whose start parks until told to go. */
struct parking_whole {
	struct mmn_sub sub;
	atomic_int parked, go;
};

static int parking_start(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	struct parking_whole *p = mmn_container_of(sub, struct parking_whole, sub);

	if (desc->flags & MMN_INVALIDATE_BLOCKABLE) {
		atomic_store(&p->parked, 1);
		WAIT_FOR(atomic_load(&p->go));
	}
	return 0;
}

static const struct mmn_sub_ops parking_ops = { .invalidate_start = parking_start };

struct inv_once {
	struct mmn_state *state;
	struct mmn_invalidate_desc desc;
	int ret;
};

static void *inv_once_main(void *arg)
{
	struct inv_once *o = arg;

	o->ret = mmn_invalidate_start(o->state, &o->desc);
	if (o->ret == 0)
		mmn_invalidate_end(o->state, &o->desc);
	return NULL;
}

struct registrar {
	struct mmn_state *state;
	struct rec_whole w;
	atomic_long tid;
};

static void *registrar_main(void *arg)
{
	struct registrar *r = arg;

	atomic_store(&r->tid, (long)gettid());
	mmn_sub_register(&r->w.sub, r->state);
	return NULL;
}

/* Whether thread TID of this process is asleep (state S in /proc). */
static bool thread_sleeping(long tid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the state follows the command name */
	return p && p[1] == ' ' && p[2] == 'S';
}

/*
 * A register waits for a blockable whole-space callback to return; the
 * rwlock prefers that waiting writer. A non-blockable start must refuse
 * then, not queue behind it.
 */
START_TEST(nonblock_start_refuses_behind_pending_register)
{
	struct mmn_state *state = new_state();
	struct parking_whole parker = { .sub.ops = &parking_ops };
	struct inv_once blocker = { state, desc_of(0, 0x1000, true), -1 };
	struct registrar reg = { .state = state, .w.sub.ops = &whole_ops };
	struct mmn_invalidate_desc nb = desc_of(0, 0x1000, false);
	pthread_t inv, regt;

	ck_assert_int_eq(mmn_sub_register(&parker.sub, state), 0);
	ck_assert_int_eq(pthread_create(&inv, NULL, inv_once_main, &blocker), 0);
	WAIT_FOR(atomic_load(&parker.parked));
	ck_assert_int_eq(pthread_create(&regt, NULL, registrar_main, &reg), 0);
	WAIT_FOR(atomic_load(&reg.tid) && thread_sleeping(atomic_load(&reg.tid)));

	ck_assert_int_eq(mmn_invalidate_start(state, &nb), -EAGAIN);
	ck_assert_uint_eq(stats_of(state).invalidations_refused, 1);

	atomic_store(&parker.go, 1);
	pthread_join(inv, NULL);
	pthread_join(regt, NULL);
	ck_assert_int_eq(blocker.ret, 0);
	/* With nothing pending, the same start goes through. */
	ck_assert_int_eq(mmn_invalidate_start(state, &nb), 0);
	mmn_invalidate_end(state, &nb);
	ck_assert_int_eq(atomic_load(&reg.w.starts), 1);
	mmn_sub_unregister(&reg.w.sub, state);
	mmn_sub_unregister(&parker.sub, state);
	mmn_state_free(state);
}
END_TEST

static bool always_refuse(struct mmn_range_sub *rsub,
			  const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	(void)rsub; (void)desc; (void)cur_seq;
	return false;
}

static const struct mmn_range_sub_ops refuse_ops = { .invalidate = always_refuse };

static void blockable_refusal(void *unused)
{
	struct mmn_state *state = NULL;
	struct mmn_range_sub rsub = { 0 };
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);

	(void)unused;
	mmn_state_new(&state);
	mmn_range_sub_insert(&rsub, state, 0x1000, 0x1000, &refuse_ops);
	mmn_invalidate_start(state, &d);
}

START_TEST(blockable_refusal_is_a_bug)
{
#ifdef MMN_DEBUG
	const char *why = test_expect_abort(blockable_refusal, NULL,
					    "refused a blockable invalidation");

	ck_assert_msg(why == NULL, "%s", why);
#else
	/* Release builds count it and carry on. */
	struct mmn_state *state = new_state();
	struct mmn_range_sub rsub = { 0 };
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);

	(void)blockable_refusal;
	ck_assert_int_eq(mmn_range_sub_insert(&rsub, state, 0x1000, 0x1000, &refuse_ops), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	mmn_invalidate_end(state, &d);
	ck_assert_uint_eq(stats_of(state).blockable_refusals, 1);
	mmn_range_sub_remove(&rsub);
	mmn_state_free(state);
#endif
}
END_TEST

START_TEST(invalid_descs)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc d = desc_of(0x2000, 0x1000, true);
	struct mmn_stats s;

	ck_assert_int_eq(mmn_invalidate_start(state, &d), -EINVAL);
	d = desc_of(0x1000, 0x1000, true);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), -EINVAL);
	d = desc_of(0, 0x1000, true);
	d.event = MMN_EVENT_COUNT;
	ck_assert_int_eq(mmn_invalidate_start(state, &d), -EINVAL);
	d.event = MMN_EVENT_CLEAR;
	d.flags = 1u << 7;
	ck_assert_int_eq(mmn_invalidate_start(state, &d), -EINVAL);
	ck_assert_int_eq(mmn_invalidate_start(NULL, &d), -EINVAL);
	ck_assert_int_eq(mmn_invalidate_start(state, NULL), -EINVAL);
	s = stats_of(state);
	ck_assert_uint_eq(s.invalidations_started + s.invalidations_refused, 0);
	ck_assert_uint_eq(s.active_invalidations, 0);

	/* end == 0 is the top of the space: valid, and reaches the last byte. */
	struct rec_sub top;
	rec_init(&top);
	ck_assert_int_eq(mmn_range_sub_insert(&top.rsub, state, UINT64_MAX, 1, &rec_ops), 0);
	d = desc_of(UINT64_MAX - 0xfff, 0, true);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	mmn_invalidate_end(state, &d);
	ck_assert_int_eq(atomic_load(&top.calls), 1);
	mmn_range_sub_remove(&top.rsub);
	mmn_state_free(state);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rule 4: deferred inserts and removes
 */

START_TEST(insert_during_invalidation_is_deferred)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);
	struct rec_sub hit, late;
	struct reader rd;
	struct mmn_stats s;

	rec_init(&hit);
	rec_init(&late);
	ck_assert_int_eq(mmn_range_sub_insert(&hit.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);

	ck_assert_int_eq(mmn_range_sub_insert(&late.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	s = stats_of(state);
	ck_assert_uint_eq(s.deferred_inserts, 1);
	ck_assert_uint_eq(s.range_subs, 2);

	/* A second invalidation now does not see it either: not yet in the tree. */
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	mmn_invalidate_end(state, &d);
	ck_assert_int_eq(atomic_load(&late.calls), 0);

	/* Its first read cannot miss that the range is changing. */
	reader_start(&rd, &late.rsub);
	WAIT_FOR(stats_of(state).read_begin_waits == 1);
	ck_assert_int_eq(atomic_load(&rd.done), 0);
	mmn_invalidate_end(state, &d);
	pthread_join(rd.thread, NULL);
	ck_assert(!mmn_range_read_retry(&late.rsub, rd.seq));

	/* Applied at the last end: now it is called. */
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	mmn_invalidate_end(state, &d);
	ck_assert_int_eq(atomic_load(&late.calls), 1);
	ck_assert(mmn_range_read_retry(&late.rsub, rd.seq));

	mmn_range_sub_remove(&hit.rsub);
	mmn_range_sub_remove(&late.rsub);
	mmn_state_free(state);
}
END_TEST

/* Cancelling deferred inserts, first, middle or last, keeps the others. */
START_TEST(cancelled_deferred_inserts_leave_the_others)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc d = desc_of(0, 0x100000, true);
	struct rec_sub hit, late[5];
	struct mmn_stats s;

	rec_init(&hit);
	ck_assert_int_eq(mmn_range_sub_insert(&hit.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	for (int i = 0; i < 5; i++) {
		rec_init(&late[i]);
		ck_assert_int_eq(mmn_range_sub_insert(&late[i].rsub, state,
						      0x10000 * (uint64_t)(i + 1), 0x1000,
						      &rec_ops), 0);
	}
	/* The list is newest first: 4 3 2 1 0. Cancel its head, middle, tail. */
	mmn_range_sub_remove(&late[4].rsub);
	mmn_range_sub_remove(&late[2].rsub);
	mmn_range_sub_remove(&late[0].rsub);
	s = stats_of(state);
	ck_assert_uint_eq(s.deferred_inserts, 5);
	ck_assert_uint_eq(s.deferred_removes, 0);
	ck_assert_uint_eq(s.range_subs, 3);
	mmn_invalidate_end(state, &d);

	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	mmn_invalidate_end(state, &d);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(atomic_load(&late[i].calls), i == 1 || i == 3);
	mmn_range_sub_remove(&late[1].rsub);
	mmn_range_sub_remove(&late[3].rsub);
	mmn_range_sub_remove(&hit.rsub);
	ck_assert_uint_eq(stats_of(state).range_subs, 0);
	mmn_state_free(state);
}
END_TEST

START_TEST(insert_while_unhit_invalidation_runs)
{
	struct mmn_state *state = new_state();
	/* Runs, but hits nothing: the tree is empty. */
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);
	struct rec_sub late;
	struct reader rd;

	rec_init(&late);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&late.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_uint_eq(stats_of(state).deferred_inserts, 0);

	/* That invalidation may be changing the new range: the read waits. */
	reader_start(&rd, &late.rsub);
	WAIT_FOR(stats_of(state).read_begin_waits == 1);
	ck_assert_int_eq(atomic_load(&rd.done), 0);
	mmn_invalidate_end(state, &d);
	pthread_join(rd.thread, NULL);

	mmn_range_sub_remove(&late.rsub);
	mmn_state_free(state);
}
END_TEST

struct remover {
	pthread_t thread;
	struct mmn_range_sub *rsub;
	atomic_int done;
};

static void *remover_main(void *arg)
{
	struct remover *rm = arg;

	mmn_range_sub_remove(rm->rsub);
	atomic_store(&rm->done, 1);
	return NULL;
}

START_TEST(remove_during_invalidation_is_deferred)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);
	struct rec_sub r;
	struct remover rm = { 0 };
	struct mmn_stats s;

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);

	rm.rsub = &r.rsub;
	ck_assert_int_eq(pthread_create(&rm.thread, NULL, remover_main, &rm), 0);
	WAIT_FOR(stats_of(state).deferred_removes == 1);
	ck_assert_int_eq(atomic_load(&rm.done), 0);

	/* Still in the tree: a concurrent invalidation still calls it. */
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	ck_assert_int_eq(atomic_load(&r.calls), 2);
	mmn_invalidate_end(state, &d);
	ck_assert_int_eq(atomic_load(&rm.done), 0);

	mmn_invalidate_end(state, &d);
	pthread_join(rm.thread, NULL);
	s = stats_of(state);
	ck_assert_uint_eq(s.range_subs, 0);

	/* Gone: the next invalidation does not call it. */
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	mmn_invalidate_end(state, &d);
	ck_assert_int_eq(atomic_load(&r.calls), 2);
	mmn_state_free(state);
}
END_TEST

START_TEST(remove_cancels_pending_insert)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);
	struct rec_sub hit, late, late2;

	rec_init(&hit);
	rec_init(&late);
	rec_init(&late2);
	ck_assert_int_eq(mmn_range_sub_insert(&hit.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&late.rsub, state, 0x2000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&late2.rsub, state, 0x3000, 0x1000, &rec_ops), 0);

	/* Never in the tree: returns at once, without waiting for the end. */
	mmn_range_sub_remove(&late.rsub);
	ck_assert_uint_eq(stats_of(state).range_subs, 2);
	mmn_invalidate_end(state, &d);

	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	mmn_invalidate_end(state, &d);
	ck_assert_int_eq(atomic_load(&late.calls), 0);
	ck_assert_int_eq(atomic_load(&late2.calls), 1);

	mmn_range_sub_remove(&hit.rsub);
	mmn_range_sub_remove(&late2.rsub);
	ck_assert_uint_eq(stats_of(state).range_subs, 0);
	mmn_state_free(state);
}
END_TEST

START_TEST(insert_arguments)
{
	struct mmn_state *state = new_state();
	struct rec_sub r;
	const struct mmn_range_sub_ops no_op = { 0 };

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0, &rec_ops), -EOVERFLOW);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, UINT64_MAX, 2, &rec_ops), -EOVERFLOW);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 2, UINT64_MAX, &rec_ops), -EOVERFLOW);
	ck_assert_int_eq(mmn_range_sub_insert(NULL, state, 0, 1, &rec_ops), -EINVAL);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, NULL, 0, 1, &rec_ops), -EINVAL);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0, 1, NULL), -EINVAL);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0, 1, &no_op), -EINVAL);
	ck_assert_uint_eq(stats_of(state).range_subs, 0);

	/* The whole space, and a range ending exactly at the top. */
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 1, UINT64_MAX, &rec_ops), 0);
	mmn_range_sub_remove(&r.rsub);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, UINT64_MAX - 9, 10, &rec_ops), 0);
	mmn_range_sub_remove(&r.rsub);
	ck_assert_uint_eq(stats_of(state).range_subs, 0);
	mmn_state_free(state);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rule 5: remove waits for callbacks; misuse from callbacks
 */

struct inv_thread {
	pthread_t thread;
	struct mmn_state *state;
	struct mmn_invalidate_desc desc;
	int ret;
};

static void *inv_thread_main(void *arg)
{
	struct inv_thread *it = arg;

	it->ret = mmn_invalidate_start(it->state, &it->desc);
	if (it->ret == 0)
		mmn_invalidate_end(it->state, &it->desc);
	return NULL;
}

START_TEST(remove_waits_for_running_callback)
{
	struct mmn_state *state = new_state();
	struct rec_sub *r = malloc(sizeof(*r));
	struct inv_thread it = { .state = state, .desc = desc_of(0, 0x10000, true) };
	struct remover rm = { 0 };

	ck_assert_ptr_nonnull(r);
	rec_init(r);
	r->park = true;
	ck_assert_int_eq(mmn_range_sub_insert(&r->rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(pthread_create(&it.thread, NULL, inv_thread_main, &it), 0);
	WAIT_FOR(atomic_load(&r->parked));

	/* The callback is running: remove must not return. */
	rm.rsub = &r->rsub;
	ck_assert_int_eq(pthread_create(&rm.thread, NULL, remover_main, &rm), 0);
	WAIT_FOR(stats_of(state).deferred_removes == 1);
	ck_assert_int_eq(atomic_load(&rm.done), 0);

	atomic_store(&r->go, 1);
	pthread_join(rm.thread, NULL);
	/* Returned: libmmn must hold no pointer to it; ASan checks the rest. */
	free(r);
	pthread_join(it.thread, NULL);
	ck_assert_int_eq(it.ret, 0);
	mmn_state_free(state);
}
END_TEST

struct reentrant {
	struct mmn_range_sub rsub;
	int what;	/* 0 remove, 1 read_begin, 2 invalidate_start */
};

static bool reentrant_invalidate(struct mmn_range_sub *rsub,
				 const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct reentrant *re = mmn_container_of(rsub, struct reentrant, rsub);

	mmn_range_set_seq(rsub, cur_seq);
	if (re->what == 0)
		mmn_range_sub_remove(rsub);
	else if (re->what == 1)
		mmn_range_read_begin(rsub);
	else
		mmn_invalidate_start(mmn_range_sub_state(rsub), desc);
	return true;
}

static const struct mmn_range_sub_ops reentrant_ops = { .invalidate = reentrant_invalidate };

static void call_from_callback(void *arg)
{
	struct mmn_state *state = NULL;
	struct reentrant re = { .what = *(int *)arg };
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);

	mmn_state_new(&state);
	mmn_range_sub_insert(&re.rsub, state, 0x1000, 0x1000, &reentrant_ops);
	mmn_invalidate_start(state, &d);
}

START_TEST(debug_calls_from_callback_abort)
{
	static const char *const names[] = {
		"mmn_range_sub_remove called from a callback",
		"mmn_range_read_begin called from a callback",
		"mmn_invalidate_start called from a callback",
	};
	int what = _i;
	const char *why = test_expect_abort(call_from_callback, &what, names[what]);

	ck_assert_msg(why == NULL, "%s", why);
}
END_TEST

/* A callback of one state may invalidate another (host -> guest chains). */
struct chain {
	struct mmn_range_sub rsub;
	struct mmn_state *next;
};

static bool chain_invalidate(struct mmn_range_sub *rsub,
			     const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct chain *c = mmn_container_of(rsub, struct chain, rsub);

	mmn_range_set_seq(rsub, cur_seq);
	if (mmn_invalidate_start(c->next, desc) == 0)
		mmn_invalidate_end(c->next, desc);
	return true;
}

static const struct mmn_range_sub_ops chain_ops = { .invalidate = chain_invalidate };

START_TEST(callback_may_invalidate_another_state)
{
	struct mmn_state *host = new_state(), *guest = new_state();
	struct chain c = { .next = guest };
	struct rec_sub r;
	struct mmn_invalidate_desc d = desc_of(0x1000, 0x2000, true);

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&c.rsub, host, 0, 0x10000, &chain_ops), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, guest, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_invalidate_start(host, &d), 0);
	mmn_invalidate_end(host, &d);
	ck_assert_int_eq(atomic_load(&r.calls), 1);
	mmn_range_sub_remove(&c.rsub);
	mmn_range_sub_remove(&r.rsub);
	mmn_state_free(host);
	mmn_state_free(guest);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rule 6: teardown
 */

START_TEST(state_free_releases_everyone)
{
	struct mmn_state *state = new_state();
	struct rec_sub a, b;
	struct rec_whole w = { .sub.ops = &whole_ops };

	rec_init(&a);
	rec_init(&b);
	ck_assert_int_eq(mmn_range_sub_insert(&a.rsub, state, 0, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&b.rsub, state, UINT64_MAX - 0xfff, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_sub_register(&w.sub, state), 0);

	mmn_state_free(state);
	ck_assert_int_eq(atomic_load(&a.calls), 1);
	ck_assert_int_eq(atomic_load(&b.calls), 1);
	ck_assert_int_eq(a.last_desc.event, MMN_EVENT_RELEASE);
	ck_assert(a.last_desc.flags & MMN_INVALIDATE_BLOCKABLE);
	ck_assert_uint_eq(a.last_desc.start, 0);
	ck_assert_uint_eq(a.last_desc.end, 0);	/* 2^64 */
	ck_assert_int_eq(atomic_load(&w.releases), 1);
	/* Whole-space subscribers get release, not an invalidation. */
	ck_assert_int_eq(atomic_load(&w.starts), 0);

	/* Detached: removing afterwards is a no-op. */
	mmn_range_sub_remove(&a.rsub);
	mmn_range_sub_remove(&b.rsub);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rule 7: mmn_sub_get / mmn_sub_put
 */

struct counted {
	struct mmn_sub sub;
	atomic_int starts;
};

static atomic_int allocs, frees;

static struct mmn_sub *counted_alloc(struct mmn_state *state)
{
	struct counted *c = calloc(1, sizeof(*c));

	(void)state;
	if (!c)
		return NULL;
	atomic_fetch_add(&allocs, 1);
	return &c->sub;
}

static void counted_free(struct mmn_sub *sub)
{
	atomic_fetch_add(&frees, 1);
	free(mmn_container_of(sub, struct counted, sub));
}

static int counted_start(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	(void)desc;
	atomic_fetch_add(&mmn_container_of(sub, struct counted, sub)->starts, 1);
	return 0;
}

static const struct mmn_sub_ops counted_ops = {
	.invalidate_start = counted_start,
	.alloc_sub = counted_alloc,
	.free_sub = counted_free,
};

static struct mmn_sub *failing_alloc(struct mmn_state *state)
{
	(void)state;
	return NULL;
}

static const struct mmn_sub_ops failing_ops = {
	.alloc_sub = failing_alloc,
	.free_sub = counted_free,
};

START_TEST(sub_get_shares_and_counts)
{
	struct mmn_state *state = new_state(), *other = new_state();
	struct mmn_sub *s1 = NULL, *s2 = NULL, *s3 = NULL;
	struct mmn_invalidate_desc d = desc_of(0, 0x1000, true);

	atomic_store(&allocs, 0);
	atomic_store(&frees, 0);
	ck_assert_int_eq(mmn_sub_get(&counted_ops, state, &s1), 0);
	ck_assert_int_eq(mmn_sub_get(&counted_ops, state, &s2), 0);
	ck_assert_ptr_eq(s1, s2);
	ck_assert_int_eq(atomic_load(&allocs), 1);
	ck_assert_uint_eq(stats_of(state).subs, 1);
	/* Another state gets its own. */
	ck_assert_int_eq(mmn_sub_get(&counted_ops, other, &s3), 0);
	ck_assert_ptr_ne(s1, s3);
	ck_assert_int_eq(atomic_load(&allocs), 2);

	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	mmn_invalidate_end(state, &d);
	ck_assert_int_eq(atomic_load(&mmn_container_of(s1, struct counted, sub)->starts), 1);

	mmn_sub_put(s1);
	ck_assert_int_eq(atomic_load(&frees), 0);
	ck_assert_uint_eq(stats_of(state).subs, 1);
	mmn_sub_put(s2);
	ck_assert_int_eq(atomic_load(&frees), 1);
	ck_assert_uint_eq(stats_of(state).subs, 0);

	ck_assert_int_eq(mmn_sub_get(&failing_ops, state, &s1), -ENOMEM);
	ck_assert_int_eq(mmn_sub_get(NULL, state, &s1), -EINVAL);
	mmn_sub_put(s3);
	ck_assert_int_eq(atomic_load(&frees), 2);
	mmn_state_free(state);
	mmn_state_free(other);
}
END_TEST

START_TEST(sub_get_put_under_invalidation_storm)
{
	enum { ROUNDS = 3000 };
	struct mmn_state *state = new_state();
	struct test_failures fails = TEST_FAILURES_INIT;
	struct inv_loop storm = { state, &fails, ROUNDS };
	pthread_t t[2];
	struct mmn_sub *sub;

	/* A storm of invalidations while references come and go; ASan watches. */
	atomic_store(&allocs, 0);
	atomic_store(&frees, 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, inv_loop_main, &storm), 0);
	for (int i = 0; i < ROUNDS; i++) {
		ck_assert_int_eq(mmn_sub_get(&counted_ops, state, &sub), 0);
		mmn_sub_put(sub);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ck_assert_msg(fails.count == 0, "%s", fails.first);
	ck_assert_int_eq(atomic_load(&allocs), ROUNDS);
	ck_assert_int_eq(atomic_load(&frees), ROUNDS);
	mmn_state_free(state);
}
END_TEST

START_TEST(sub_register_twice_is_busy)
{
	struct mmn_state *state = new_state();
	struct rec_whole w = { .sub.ops = &whole_ops };

	ck_assert_int_eq(mmn_sub_register(&w.sub, state), 0);
	ck_assert_int_eq(mmn_sub_register(&w.sub, state), -EBUSY);
	ck_assert_uint_eq(stats_of(state).subs, 1);
	mmn_sub_unregister(&w.sub, state);
	ck_assert_uint_eq(stats_of(state).subs, 0);
	ck_assert_int_eq(mmn_sub_register(NULL, state), -EINVAL);
	mmn_state_free(state);
	ck_assert_int_eq(atomic_load(&w.releases), 0);
}
END_TEST

START_TEST(state_free_releases_got_sub)
{
	struct mmn_state *state = new_state();
	struct mmn_sub *sub;

	atomic_store(&allocs, 0);
	atomic_store(&frees, 0);
	ck_assert_int_eq(mmn_sub_get(&counted_ops, state, &sub), 0);
	mmn_state_free(state);
	/* The reference outlives the state; the last put frees it. */
	ck_assert_int_eq(atomic_load(&frees), 0);
	mmn_sub_put(sub);
	ck_assert_int_eq(atomic_load(&frees), 1);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rule 8: the read side takes no lock
 */

START_TEST(read_side_takes_no_lock)
{
	struct mmn_state *state = new_state();
	struct rec_sub r;
	struct reader rd;
	uint64_t seq;

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	seq = mmn_range_read_begin(&r.rsub);

	/* With the state's lock held, another thread reads undisturbed. */
	state_lock(state);
	reader_start(&rd, &r.rsub);
	WAIT_FOR(atomic_load(&rd.done));
	state_unlock(state);
	pthread_join(rd.thread, NULL);
	ck_assert_uint_eq(rd.seq, seq);
	ck_assert(!mmn_range_read_retry(&r.rsub, rd.seq));

	mmn_range_sub_remove(&r.rsub);
	mmn_state_free(state);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rule 9: counters
 */

START_TEST(stats_count_and_grow)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);
	struct rec_sub r;
	struct mmn_stats s;
	struct { size_t size; uint64_t started; } old = { .size = sizeof(old) };
	struct { struct mmn_stats s; uint64_t future[4]; } big;

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
		mmn_invalidate_end(state, &d);
	}
	s = stats_of(state);
	ck_assert_uint_eq(s.invalidations_started, 3);
	ck_assert_uint_eq(s.invalidations_ended, 3);
	ck_assert_uint_eq(s.range_subs, 1);
	ck_assert_uint_eq(s.subs, 0);

	/* An older, smaller struct gets its prefix. */
	ck_assert_int_eq(mmn_state_stats(state, (struct mmn_stats *)&old), 0);
	ck_assert_uint_eq(old.size, sizeof(old));
	ck_assert_uint_eq(old.started, 3);
	/* A newer, larger one: the size says how much was filled. */
	memset(&big, 0xff, sizeof(big));
	big.s.size = sizeof(big);
	ck_assert_int_eq(mmn_state_stats(state, &big.s), 0);
	ck_assert_uint_eq(big.s.size, sizeof(struct mmn_stats));
	ck_assert_uint_eq(big.future[0], UINT64_MAX);

	s.size = 1;
	ck_assert_int_eq(mmn_state_stats(state, &s), -EINVAL);
	ck_assert_int_eq(mmn_state_stats(NULL, &s), -EINVAL);
	mmn_range_sub_remove(&r.rsub);
	mmn_state_free(state);
}
END_TEST


/* ------------------------------------------------------------------------
 * Rule 9: misuse gets an error (and an abort in debug builds), never a
 * corrupted state or a hang
 */

START_TEST(unregister_after_state_free_touches_nothing)
{
	struct mmn_state *state = new_state(), *other;
	struct rec_whole w = { .sub.ops = &whole_ops };
	struct rec_sub r;

	rec_init(&r);
	ck_assert_int_eq(mmn_sub_register(&w.sub, state), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0, 0x1000, &rec_ops), 0);
	mmn_state_free(state);
	/* The teardown order the header allows: STATE is freed memory now. */
	ck_assert_int_eq(mmn_sub_unregister(&w.sub, state), 0);
	mmn_range_sub_remove(&r.rsub);
	/* Both are detached and may serve another state. */
	other = new_state();
	ck_assert_int_eq(mmn_sub_register(&w.sub, other), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, other, 0, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_sub_unregister(&w.sub, other), 0);
	mmn_range_sub_remove(&r.rsub);
	ck_assert_ptr_null(notifier_check(other));
	mmn_state_free(other);
}
END_TEST

START_TEST(insert_twice_is_busy)
{
	struct mmn_state *a = new_state(), *b = new_state();
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);
	struct rec_sub r, hit, late;

	rec_init(&r);
	rec_init(&hit);
	rec_init(&late);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, a, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, a, 0x1000, 0x1000, &rec_ops), -EBUSY);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, b, 0x1000, 0x1000, &rec_ops), -EBUSY);
	ck_assert_uint_eq(stats_of(a).range_subs, 1);
	ck_assert_uint_eq(stats_of(b).range_subs, 0);
	ck_assert_ptr_null(notifier_check(a));
	ck_assert_ptr_null(notifier_check(b));

	/* A deferred insert is inserted too. */
	ck_assert_int_eq(mmn_range_sub_insert(&hit.rsub, b, 0, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_invalidate_start(b, &d), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&late.rsub, b, 0x4000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&late.rsub, b, 0x4000, 0x1000, &rec_ops), -EBUSY);
	ck_assert_int_eq(mmn_range_sub_insert(&late.rsub, a, 0x4000, 0x1000, &rec_ops), -EBUSY);
	ck_assert_int_eq(mmn_invalidate_end(b, &d), 0);
	ck_assert_uint_eq(stats_of(b).range_subs, 2);
	ck_assert_ptr_null(notifier_check(b));

	/* Removed, it may be inserted again. */
	mmn_range_sub_remove(&r.rsub);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, b, 0x1000, 0x1000, &rec_ops), 0);
	mmn_range_sub_remove(&r.rsub);
	mmn_range_sub_remove(&hit.rsub);
	mmn_range_sub_remove(&late.rsub);
	mmn_state_free(a);
	mmn_state_free(b);
}
END_TEST

START_TEST(register_on_another_state_is_busy)
{
	struct mmn_state *a = new_state(), *b = new_state();
	struct rec_whole w = { .sub.ops = &whole_ops };
	struct mmn_invalidate_desc d = desc_of(0, 0x1000, true);

	ck_assert_int_eq(mmn_sub_register(&w.sub, a), 0);
	ck_assert_int_eq(mmn_sub_register(&w.sub, b), -EBUSY);
	ck_assert_uint_eq(stats_of(b).subs, 0);
	ck_assert_ptr_null(notifier_check(a));
	ck_assert_ptr_null(notifier_check(b));
	/* Still on A's list alone. */
	ck_assert_int_eq(mmn_invalidate_start(a, &d), 0);
	ck_assert_int_eq(mmn_invalidate_end(a, &d), 0);
	ck_assert_int_eq(mmn_invalidate_start(b, &d), 0);
	ck_assert_int_eq(mmn_invalidate_end(b, &d), 0);
	ck_assert_int_eq(atomic_load(&w.starts), 1);
	ck_assert_int_eq(atomic_load(&w.ends), 1);
	ck_assert_int_eq(mmn_sub_unregister(&w.sub, a), 0);
	ck_assert_int_eq(mmn_sub_register(&w.sub, b), 0);
	ck_assert_int_eq(mmn_sub_unregister(&w.sub, b), 0);
	mmn_state_free(a);
	mmn_state_free(b);
}
END_TEST

/* The misuse calls below, each in a fresh state. */
enum misuse { PUT_REGISTERED, END_WITHOUT_START, UNREGISTER_OTHER_STATE, MISUSE_COUNT };

static const char *const misuse_abort[MISUSE_COUNT] = {
	[PUT_REGISTERED] = "mmn_sub_put: no reference held",
	[END_WITHOUT_START] = "mmn_invalidate_end without a matching mmn_invalidate_start",
	[UNREGISTER_OTHER_STATE] = "registered with another state",
};

/* Returns what the misuse call returned; then checks the state still works. */
static int do_misuse(enum misuse what)
{
	struct mmn_state *state = new_state(), *other = new_state();
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);
	struct rec_whole w = { .sub.ops = &whole_ops };
	struct rec_sub r;
	struct mmn_stats s;
	int ret = 0;

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	ck_assert_int_eq(mmn_sub_register(&w.sub, state), 0);
	switch (what) {
	case PUT_REGISTERED:
		ret = mmn_sub_put(&w.sub);
		break;
	case END_WITHOUT_START:
		ret = mmn_invalidate_end(state, &d);
		break;
	case UNREGISTER_OTHER_STATE:
		ret = mmn_sub_unregister(&w.sub, other);
		break;
	default:
		break;
	}
	/* Nothing changed: the next invalidation and read go through. */
	s = stats_of(state);
	ck_assert_uint_eq(s.active_invalidations, 0);
	ck_assert_uint_eq(s.subs, 1);
	ck_assert_int_eq(atomic_load(&w.ends), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	ck_assert_int_eq(mmn_invalidate_end(state, &d), 0);
	ck_assert_int_eq(atomic_load(&w.starts), 1);
	ck_assert_int_eq(atomic_load(&w.ends), 1);
	(void)mmn_range_read_begin(&r.rsub);
	ck_assert_uint_eq(stats_of(state).read_begin_waits, 0);
	ck_assert_ptr_null(notifier_check(state));
	ck_assert_int_eq(mmn_sub_unregister(&w.sub, state), 0);
	mmn_range_sub_remove(&r.rsub);
	mmn_state_free(state);
	mmn_state_free(other);
	return ret;
}

#ifdef MMN_DEBUG
static void misuse_child(void *arg)
{
	do_misuse(*(enum misuse *)arg);
}
#endif

START_TEST(misuse_is_refused)
{
	enum misuse what = (enum misuse)_i;
#ifdef MMN_DEBUG
	const char *why = test_expect_abort(misuse_child, &what, misuse_abort[what]);

	ck_assert_msg(why == NULL, "%s", why);
#else
	(void)misuse_abort;
	ck_assert_int_eq(do_misuse(what), -EINVAL);
#endif
}
END_TEST

START_TEST(put_too_often_after_state_free_is_refused)
{
	struct mmn_state *state = new_state();
	struct mmn_sub *sub, *again;

	atomic_store(&allocs, 0);
	atomic_store(&frees, 0);
	ck_assert_int_eq(mmn_sub_get(&counted_ops, state, &sub), 0);
	ck_assert_int_eq(mmn_sub_get(&counted_ops, state, &again), 0);
	ck_assert_ptr_eq(sub, again);
	ck_assert_int_eq(mmn_sub_put(again), 0);
	mmn_state_free(state);
	ck_assert_int_eq(mmn_sub_put(sub), 0);
	ck_assert_int_eq(atomic_load(&frees), 1);
	ck_assert_int_eq(mmn_sub_put(NULL), -EINVAL);
}
END_TEST

/* A thread that reads under its own open invalidation would wait for itself. */
static void read_under_own_invalidation(void *arg)
{
	struct mmn_state *state = NULL;
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);
	struct rec_sub r;
	bool remove = arg != NULL;

	mmn_state_new(&state);
	rec_init(&r);
	mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops);
	mmn_invalidate_start(state, &d);
	if (remove)
		mmn_range_sub_remove(&r.rsub);
	else
		mmn_range_read_begin(&r.rsub);
}

START_TEST(debug_wait_under_own_invalidation_aborts)
{
	const char *why;

	why = test_expect_abort(read_under_own_invalidation, NULL,
				"mmn_range_read_begin would wait for an invalidation");
	ck_assert_msg(why == NULL, "%s", why);
	why = test_expect_abort(read_under_own_invalidation, (void *)1,
				"mmn_range_sub_remove would wait for an invalidation");
	ck_assert_msg(why == NULL, "%s", why);
}
END_TEST

START_TEST(read_under_others_invalidation_is_fine)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc d = desc_of(0, 0x10000, true);
	struct mmn_invalidate_desc miss = desc_of(0x100000, 0x200000, true);
	struct rec_sub r;
	uint64_t seq;

	rec_init(&r);
	ck_assert_int_eq(mmn_range_sub_insert(&r.rsub, state, 0x1000, 0x1000, &rec_ops), 0);
	/* Ended invalidations leave no record behind, nested or not. */
	ck_assert_int_eq(mmn_invalidate_start(state, &d), 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &miss), 0);
	ck_assert_int_eq(mmn_invalidate_end(state, &d), 0);
	ck_assert_int_eq(mmn_invalidate_end(state, &miss), 0);
	seq = mmn_range_read_begin(&r.rsub);
	ck_assert(!mmn_range_read_retry(&r.rsub, seq));
	mmn_range_sub_remove(&r.rsub);
	mmn_state_free(state);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rule 10: a refused invalidation is cancelled at every range subscriber
 * that accepted it
 */

struct cancel_sub {
	struct rec_sub rec;
	atomic_int cancels;
	struct mmn_invalidate_desc cancelled;
	bool seq_odd_at_cancel;
	struct mmn_state *state;
};

static void rec_cancel(struct mmn_range_sub *rsub, const struct mmn_invalidate_desc *desc)
{
	struct cancel_sub *c = mmn_container_of(rsub, struct cancel_sub, rec.rsub);

	c->cancelled = *desc;
	/* Readers still wait: the stamp is the running seq. */
	c->seq_odd_at_cancel = __atomic_load_n(&rsub->invalidate_seq, __ATOMIC_RELAXED) & 1;
	atomic_fetch_add(&c->cancels, 1);
}

static const struct mmn_range_sub_ops cancel_ops = {
	.invalidate = rec_invalidate,
	.invalidate_cancel = rec_cancel,
};

static void cancel_init(struct cancel_sub *c, struct mmn_state *state, uint64_t start, bool refuse)
{
	memset(c, 0, sizeof(*c));
	rec_init(&c->rec);
	c->rec.refuse = refuse;
	c->state = state;
	ck_assert_int_eq(mmn_range_sub_insert(&c->rec.rsub, state, start, 0x1000, &cancel_ops), 0);
}

START_TEST(range_refusal_cancels_earlier_range_subs)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc nb = desc_of(0, 0x10000, false);
	struct cancel_sub first, second, refuser, after;
	struct rec_whole w = { .sub.ops = &whole_ops };

	/* Tree order is by start: first, second, refuser, after. */
	cancel_init(&first, state, 0x1000, false);
	cancel_init(&second, state, 0x2000, false);
	cancel_init(&refuser, state, 0x3000, true);
	cancel_init(&after, state, 0x4000, false);
	ck_assert_int_eq(mmn_sub_register(&w.sub, state), 0);

	ck_assert_int_eq(mmn_invalidate_start(state, &nb), -EAGAIN);
	ck_assert_int_eq(atomic_load(&first.rec.calls), 1);
	ck_assert_int_eq(atomic_load(&first.cancels), 1);
	ck_assert_int_eq(atomic_load(&second.cancels), 1);
	ck_assert(first.seq_odd_at_cancel && second.seq_odd_at_cancel);
	ck_assert_uint_eq(first.cancelled.start, nb.start);
	ck_assert_uint_eq(first.cancelled.end, nb.end);
	/* The refuser and those after it accepted nothing. */
	ck_assert_int_eq(atomic_load(&refuser.cancels), 0);
	ck_assert_int_eq(atomic_load(&after.rec.calls), 0);
	ck_assert_int_eq(atomic_load(&after.cancels), 0);
	ck_assert_int_eq(atomic_load(&w.starts), 0);
	ck_assert_int_eq(atomic_load(&w.ends), 0);
	ck_assert_uint_eq(stats_of(state).active_invalidations, 0);

	/* A successful invalidation cancels nothing. */
	refuser.rec.refuse = false;
	ck_assert_int_eq(mmn_invalidate_start(state, &nb), 0);
	ck_assert_int_eq(mmn_invalidate_end(state, &nb), 0);
	ck_assert_int_eq(atomic_load(&first.cancels), 1);
	ck_assert_int_eq(atomic_load(&after.cancels), 0);

	mmn_sub_unregister(&w.sub, state);
	mmn_range_sub_remove(&first.rec.rsub);
	mmn_range_sub_remove(&second.rec.rsub);
	mmn_range_sub_remove(&refuser.rec.rsub);
	mmn_range_sub_remove(&after.rec.rsub);
	mmn_state_free(state);
}
END_TEST

START_TEST(whole_space_refusal_cancels_range_subs)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc nb = desc_of(0, 0x3000, false);
	struct cancel_sub a, b, outside;
	struct rec_whole accepter = { .sub.ops = &whole_ops };
	struct rec_whole refuser = { .sub.ops = &whole_ops, .refuse = 1 };
	uint64_t seq;

	cancel_init(&a, state, 0x1000, false);
	cancel_init(&b, state, 0x2000, false);
	cancel_init(&outside, state, 0x8000, false);
	ck_assert_int_eq(mmn_sub_register(&accepter.sub, state), 0);
	ck_assert_int_eq(mmn_sub_register(&refuser.sub, state), 0);

	ck_assert_int_eq(mmn_invalidate_start(state, &nb), -EAGAIN);
	ck_assert_int_eq(atomic_load(&a.cancels), 1);
	ck_assert_int_eq(atomic_load(&b.cancels), 1);
	ck_assert_int_eq(atomic_load(&outside.cancels), 0);
	ck_assert_int_eq(atomic_load(&accepter.starts), 1);
	ck_assert_int_eq(atomic_load(&accepter.ends), 1);
	ck_assert_int_eq(atomic_load(&refuser.ends), 0);
	seq = mmn_range_read_begin(&a.rec.rsub);
	ck_assert(!mmn_range_read_retry(&a.rec.rsub, seq));
	ck_assert_uint_eq(stats_of(state).active_invalidations, 0);

	mmn_sub_unregister(&accepter.sub, state);
	mmn_sub_unregister(&refuser.sub, state);
	mmn_range_sub_remove(&a.rec.rsub);
	mmn_range_sub_remove(&b.rec.rsub);
	mmn_range_sub_remove(&outside.rec.rsub);
	mmn_state_free(state);
}
END_TEST

/* ------------------------------------------------------------------------
 * Rule 11: a whole-space subscription never hears more ends than starts
 */

struct balance {
	struct mmn_sub sub;
	atomic_int open;	/* starts minus ends heard */
	atomic_int min;		/* lowest 'open' seen */
};

static int balance_start(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	struct balance *b = mmn_container_of(sub, struct balance, sub);

	(void)desc;
	atomic_fetch_add(&b->open, 1);
	return 0;
}

static void balance_end(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	struct balance *b = mmn_container_of(sub, struct balance, sub);
	int now = atomic_fetch_sub(&b->open, 1) - 1;

	(void)desc;
	if (now < atomic_load(&b->min))
		atomic_store(&b->min, now);
}

static const struct mmn_sub_ops balance_ops = {
	.invalidate_start = balance_start,
	.invalidate_end = balance_end,
};

START_TEST(registered_mid_invalidation_skips_its_end)
{
	struct mmn_state *state = new_state();
	struct mmn_invalidate_desc d1 = desc_of(0, 0x1000, true);
	struct mmn_invalidate_desc d2 = desc_of(0x1000, 0x2000, true);
	struct mmn_invalidate_desc d3 = desc_of(0x2000, 0x3000, true);
	struct mmn_invalidate_desc nb = desc_of(0x1000, 0x3000, false);
	struct rec_whole early = { .sub.ops = &whole_ops };
	struct balance late = { .sub.ops = &balance_ops };
	struct balance later = { .sub.ops = &balance_ops };
	struct cancel_sub refuser;

	/* D1 starts with no whole-space subscription at all. */
	ck_assert_int_eq(mmn_invalidate_start(state, &d1), 0);
	ck_assert_int_eq(mmn_sub_register(&late.sub, state), 0);
	/* D2 starts with one: LATE hears it. */
	ck_assert_int_eq(mmn_invalidate_start(state, &d2), 0);
	ck_assert_int_eq(atomic_load(&late.open), 1);
	ck_assert_int_eq(mmn_sub_register(&early.sub, state), 0);
	ck_assert_int_eq(mmn_sub_register(&later.sub, state), 0);
	/* D1 and D2 end: LATE skips one, LATER (registered after both) two. */
	ck_assert_int_eq(mmn_invalidate_end(state, &d1), 0);
	ck_assert_int_eq(mmn_invalidate_end(state, &d2), 0);
	ck_assert_int_eq(atomic_load(&late.open), 0);
	ck_assert_int_eq(atomic_load(&later.open), 0);
	ck_assert_int_eq(atomic_load(&early.ends), 0);

	/* An invalidation counted without subscriptions, then refused. */
	ck_assert_int_eq(mmn_sub_unregister(&late.sub, state), 0);
	ck_assert_int_eq(mmn_sub_unregister(&later.sub, state), 0);
	ck_assert_int_eq(mmn_sub_unregister(&early.sub, state), 0);
	cancel_init(&refuser, state, 0x2000, true);
	ck_assert_int_eq(mmn_invalidate_start(state, &d3), 0);
	ck_assert_int_eq(mmn_sub_register(&late.sub, state), 0);	/* skips D3's end */
	ck_assert_int_eq(mmn_invalidate_start(state, &nb), -EAGAIN);
	ck_assert_int_eq(mmn_invalidate_end(state, &d3), 0);
	ck_assert_int_eq(atomic_load(&late.open), 0);
	ck_assert_int_eq(atomic_load(&late.min), 0);
	ck_assert_int_eq(atomic_load(&later.min), 0);

	/* From now on every start has its end. */
	ck_assert_int_eq(mmn_invalidate_start(state, &d1), 0);
	ck_assert_int_eq(atomic_load(&late.open), 1);
	ck_assert_int_eq(mmn_invalidate_end(state, &d1), 0);
	ck_assert_int_eq(atomic_load(&late.open), 0);
	ck_assert_int_eq(atomic_load(&late.min), 0);
	ck_assert_uint_eq(stats_of(state).active_invalidations, 0);
	ck_assert_ptr_null(notifier_check(state));

	ck_assert_int_eq(mmn_sub_unregister(&late.sub, state), 0);
	mmn_range_sub_remove(&refuser.rec.rsub);
	mmn_state_free(state);
}
END_TEST

/* Invalidations from threads while subscriptions come and go. */
struct balance_storm {
	struct mmn_state *state;
	atomic_int stop;
};

static void *balance_storm_main(void *arg)
{
	struct balance_storm *bs = arg;
	uint64_t rnd = (uint64_t)(uintptr_t)&rnd | 1;

	while (!atomic_load(&bs->stop)) {
		uint64_t start = test_rand_below(&rnd, 16) * 0x1000;
		struct mmn_invalidate_desc d = desc_of(start, start + 0x1000,
						       test_rand_below(&rnd, 2));

		if (mmn_invalidate_start(bs->state, &d) == 0)
			mmn_invalidate_end(bs->state, &d);
	}
	return NULL;
}

START_TEST(whole_space_balance_under_storm)
{
	struct balance_storm bs = { .state = new_state() };
	struct cancel_sub refuser;
	pthread_t t[2];
	int min = 0;

	cancel_init(&refuser, bs.state, 0x8000, true);
	for (unsigned int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, balance_storm_main, &bs), 0);
	for (unsigned int round = 0; round < 2000; round++) {
		struct balance b = { .sub.ops = &balance_ops };

		ck_assert_int_eq(mmn_sub_register(&b.sub, bs.state), 0);
		sched_yield();
		ck_assert_int_eq(mmn_sub_unregister(&b.sub, bs.state), 0);
		if (atomic_load(&b.min) < min)
			min = atomic_load(&b.min);
	}
	atomic_store(&bs.stop, 1);
	for (unsigned int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(min, 0);
	mmn_range_sub_remove(&refuser.rec.rsub);
	ck_assert_ptr_null(notifier_check(bs.state));
	mmn_state_free(bs.state);
}
END_TEST

static Suite *notifier_suite(void)
{
	Suite *s = suite_create("notifier");
	TCase *tc;

#define TCASE(name) (tc = tcase_create(name), tcase_set_timeout(tc, 30), suite_add_tcase(s, tc), tc)
	tc = TCASE("read-side");
	tcase_add_test(tc, read_retry_sees_overlapping_invalidation);
	tcase_add_test(tc, read_begin_waits_for_running_invalidation);
	tcase_add_test(tc, read_begin_waits_for_every_invalidation);
	tcase_add_test(tc, read_begin_does_not_wait_for_others);

	tc = TCASE("multi-writer");
	tcase_add_test(tc, concurrent_invalidations_share_odd_seq);
	tcase_add_test(tc, concurrent_invalidations_from_threads);

	tc = TCASE("non-blocking");
	tcase_add_test(tc, nonblock_range_refusal);
	tcase_add_test(tc, nonblock_whole_space_refusal_undoes_earlier);
	tcase_add_test(tc, nonblock_start_refuses_behind_pending_register);
	tcase_add_test(tc, blockable_refusal_is_a_bug);
	tcase_add_test(tc, invalid_descs);

	tc = TCASE("deferred");
	tcase_add_test(tc, insert_during_invalidation_is_deferred);
	tcase_add_test(tc, cancelled_deferred_inserts_leave_the_others);
	tcase_add_test(tc, insert_while_unhit_invalidation_runs);
	tcase_add_test(tc, remove_during_invalidation_is_deferred);
	tcase_add_test(tc, remove_cancels_pending_insert);
	tcase_add_test(tc, insert_arguments);

	tc = TCASE("remove");
	tcase_add_test(tc, remove_waits_for_running_callback);
	tcase_add_test(tc, callback_may_invalidate_another_state);

	tc = TCASE("teardown");
	tcase_add_test(tc, state_free_releases_everyone);

	tc = TCASE("sub-get");
	tcase_add_test(tc, sub_get_shares_and_counts);
	tcase_add_test(tc, sub_get_put_under_invalidation_storm);
	tcase_add_test(tc, sub_register_twice_is_busy);
	tcase_add_test(tc, state_free_releases_got_sub);

	tc = TCASE("lock-free-read");
	tcase_add_test(tc, read_side_takes_no_lock);

	tc = TCASE("stats");
	tcase_add_test(tc, stats_count_and_grow);

	tc = TCASE("misuse");
	tcase_add_test(tc, unregister_after_state_free_touches_nothing);
	tcase_add_test(tc, insert_twice_is_busy);
	tcase_add_test(tc, register_on_another_state_is_busy);
	tcase_add_loop_test(tc, misuse_is_refused, 0, MISUSE_COUNT);
	tcase_add_test(tc, put_too_often_after_state_free_is_refused);
	tcase_add_test(tc, read_under_others_invalidation_is_fine);

	tc = TCASE("cancel");
	tcase_add_test(tc, range_refusal_cancels_earlier_range_subs);
	tcase_add_test(tc, whole_space_refusal_cancels_range_subs);

	tc = TCASE("end-balance");
	tcase_add_test(tc, registered_mid_invalidation_skips_its_end);
	tcase_add_test(tc, whole_space_balance_under_storm);

#ifdef MMN_DEBUG
	tc = TCASE("debug-misuse");
	tcase_add_test(tc, debug_missing_set_seq_aborts);
	tcase_add_loop_test(tc, debug_calls_from_callback_abort, 0, 3);
	tcase_add_test(tc, debug_wait_under_own_invalidation_aborts);
#else
	(void)debug_wait_under_own_invalidation_aborts;
	(void)debug_missing_set_seq_aborts;
	(void)debug_calls_from_callback_abort;
	printf("check-notifier: release build, misuse-abort tests need --enable-debug\n");
#endif
	return s;
}

int main(void)
{
	int failed = 0;

	/* Every test twice: walks through the tree, then through the index. */
	for (int run = 0; run < 2; run++) {
		SRunner *sr = srunner_create(notifier_suite());

		index_always = run == 1;
		printf("walks through the %s\n", index_always ? "index" : "tree");
		srunner_run_all(sr, CK_NORMAL);
		failed += srunner_ntests_failed(sr);
		srunner_free(sr);
	}
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
