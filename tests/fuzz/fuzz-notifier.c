/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: sequences of notifier operations, as one interleaving of
 * simulated threads, against a reference model of the protocol.
 *
 * The model keeps its own sequence number, count of running invalidations,
 * per-subscription stamp and place (in the tree, pending insert, being
 * removed), and whole-space references. Each operation is applied to both;
 * every return value, every callback (which, how often, with which cur_seq)
 * and every counter of mmn_state_stats() must match, and the notifier's
 * internal checker must pass after each operation.
 *
 * Operations that block (a remove, or a read_begin, while an invalidation
 * that concerns the subscription runs) are issued only when the model says
 * they block: each gets a real thread, and the main thread waits until the
 * library's counters show it parked (deferred_removes or read_begin_waits
 * moved). The model then requires it to stay parked until the last running
 * invalidation ends, and to have returned, with the right value, after.
 *
 * Input: operations, each an opcode byte OP and its argument bytes; OP % 10:
 *	0 insert SLOT START LENGTH FLAGS (FLAGS bit 0: refuses non-blockable,
 *	  bit 1: the second of two alike ops tables, so that owners are shared)
 *	1 remove SLOT
 *	2, 3 invalidate_start THREAD START LENGTH FLAGS (bit 0: blockable,
 *	  bit 7: MMN_INVALIDATE_AFTER, FLAGS >> 1: the event; START 0xff:
 *	  all of the space, 0xfe: its top page; LENGTH 0: an invalid desc)
 *	4 invalidate_end THREAD
 *	5 read_begin SLOT
 *	6 read_retry SLOT (check_retry when OP >= 0x80)
 *	7 sub_get KIND, 8 sub_put KIND
 *	9 KNOB: bit 7 set, the next alloc_sub fails; else KIND % 3 toggles
 *	  whether that kind refuses non-blockable starts
 */
#include "fuzz.h"
#include "notifier.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>

#define RSUBS	6	/* range subscriptions */
#define THREADS	3	/* simulated invalidating threads */
#define WOPS	3	/* whole-space subscription kinds (ops tables) */

enum place { FREE, IN_TREE, PENDING_INSERT, REMOVING };
enum blocked_call { NOT_BLOCKED, BLOCKED_REMOVE, BLOCKED_READ_BEGIN };

struct fsub {
	struct mmn_range_sub rsub;
	enum place place;
	bool refuses;		/* refuses non-blockable invalidations */
	uint64_t start, last;
	uint64_t stamp;		/* the model's invalidate_seq */
	/* A simulated reader between read_begin and read_retry. */
	bool reading;
	uint64_t read_seq;
	bool hit_since;		/* a callback ran since read_begin */
	/* A call parked in the library, in its own thread. */
	enum blocked_call blocked;
	pthread_t thread;
	int returned;		/* atomic */
	uint64_t result;
};

struct wsub {
	struct mmn_sub sub;
	unsigned int kind;
};

struct model {
	struct mmn_state *state;
	uint64_t seq;
	uint64_t active;
	struct fsub subs[RSUBS];
	uint64_t range_subs;
	struct {
		bool open;
		struct mmn_invalidate_desc desc;
	} threads[THREADS];
	/* Whole-space subscriptions, in the order the library lists them. */
	struct wsub *wlist[WOPS];
	unsigned long wrefs[WOPS];
	unsigned long wskip[WOPS];	/* ends the kind skips: older than it */
	unsigned int nw;
	bool wrefuse[WOPS];	/* that kind refuses non-blockable starts */
	bool alloc_fails;	/* the next alloc_sub returns NULL */
	unsigned long wfrees, wallocs, wreleases;
	/* Expected counters. */
	uint64_t started, ended, refused, read_waits, deferred_inserts, deferred_removes;
};

static struct model m;

/* What the callbacks of the current call saw. */
static struct {
	unsigned int n;
	size_t order[RSUBS + 1];
	uint64_t cur_seq[RSUBS + 1];
	bool refused[RSUBS + 1];
	unsigned int cancels[RSUBS];
	unsigned int wstarts[WOPS], wends[WOPS];
	unsigned int wstart_order[WOPS + 1], nwstart;
	bool releasing;
} calls;

/* Operations applied, over the whole run: reported at exit for the docs. */
static unsigned long long ops_done;

__attribute__((destructor)) static void report_ops(void)
{
	if (getenv("FUZZ_REPORT_OPS"))
		fprintf(stderr, "fuzz-notifier: %llu operations\n", ops_done);
}

static bool overlaps(uint64_t s, uint64_t l, const struct mmn_invalidate_desc *d)
{
	return s <= d->end - 1 && l >= d->start;	/* end 0: the top */
}

static bool invalidate_cb(struct mmn_range_sub *rsub,
			  const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct fsub *s = mmn_container_of(rsub, struct fsub, rsub);
	size_t i = (size_t)(s - m.subs);

	FUZZ_ASSERT(i < RSUBS, "callback for an unknown subscription");
	FUZZ_ASSERT(mmn_range_sub_state(rsub) == m.state, "callback for a subscription of no state");
	FUZZ_ASSERT(s->place == IN_TREE || s->place == REMOVING,
		    "callback for subscription %zu, which is not in the tree (place %d)",
		    i, s->place);
	FUZZ_ASSERT(overlaps(s->start, s->last, desc), "callback for a subscription the range misses");
	FUZZ_ASSERT(cur_seq & 1, "cur_seq %llu is even", (unsigned long long)cur_seq);
	FUZZ_ASSERT(calls.n < RSUBS, "more callbacks than subscriptions");
	calls.order[calls.n] = i;
	calls.cur_seq[calls.n] = cur_seq;
	calls.refused[calls.n] = s->refuses && !(desc->flags & MMN_INVALIDATE_BLOCKABLE);
	if (calls.refused[calls.n++])
		return false;
	mmn_range_set_seq(rsub, cur_seq);
	return true;
}

static void cancel_cb(struct mmn_range_sub *rsub, const struct mmn_invalidate_desc *desc)
{
	struct fsub *s = mmn_container_of(rsub, struct fsub, rsub);
	size_t i = (size_t)(s - m.subs);

	FUZZ_ASSERT(i < RSUBS, "cancel for an unknown subscription");
	FUZZ_ASSERT(overlaps(s->start, s->last, desc), "cancel for a subscription the range misses");
	FUZZ_ASSERT(!(desc->flags & MMN_INVALIDATE_BLOCKABLE), "cancel of a blockable invalidation");
	calls.cancels[i]++;
}

static const struct mmn_range_sub_ops range_ops[2] = {
	{ .invalidate = invalidate_cb, .invalidate_cancel = cancel_cb },
	{ .invalidate = invalidate_cb, .invalidate_cancel = cancel_cb },
};

static unsigned int wkind(const struct mmn_sub *sub)
{
	return mmn_container_of(sub, struct wsub, sub)->kind;
}

static int wstart_cb(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	unsigned int k = wkind(sub);

	FUZZ_ASSERT(calls.nwstart < WOPS, "more whole-space starts than subscriptions");
	calls.wstart_order[calls.nwstart++] = k;
	calls.wstarts[k]++;
	return m.wrefuse[k] && !(desc->flags & MMN_INVALIDATE_BLOCKABLE) ? -EAGAIN : 0;
}

static void wend_cb(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	(void)desc;
	calls.wends[wkind(sub)]++;
}

static void wrelease_cb(struct mmn_sub *sub, struct mmn_state *state)
{
	FUZZ_ASSERT(state == m.state, "release for another state");
	FUZZ_ASSERT(calls.releasing, "release outside mmn_state_free");
	(void)sub;
	m.wreleases++;
}

static struct mmn_sub *walloc_cb(struct mmn_state *state);

static void wfree_cb(struct mmn_sub *sub)
{
	m.wfrees++;
	free(mmn_container_of(sub, struct wsub, sub));
}

static const struct mmn_sub_ops wops[WOPS] = {
	{ wrelease_cb, wstart_cb, wend_cb, walloc_cb, wfree_cb },
	{ wrelease_cb, wstart_cb, wend_cb, walloc_cb, wfree_cb },
	{ wrelease_cb, NULL, NULL, walloc_cb, wfree_cb },	/* no invalidation callbacks */
};

static struct mmn_sub *walloc_cb(struct mmn_state *state)
{
	struct wsub *w;

	FUZZ_ASSERT(state == m.state, "alloc_sub for another state");
	if (m.alloc_fails) {
		m.alloc_fails = false;
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	FUZZ_ASSERT(w, "out of memory");
	m.wallocs++;
	return &w->sub;	/* the kind is filled in by the caller */
}

/* ------------------------------------------------------------------------
 * Parked calls
 */

static void *remove_thread(void *arg)
{
	struct fsub *s = arg;

	mmn_range_sub_remove(&s->rsub);
	__atomic_store_n(&s->returned, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *read_begin_thread(void *arg)
{
	struct fsub *s = arg;

	s->result = mmn_range_read_begin(&s->rsub);
	__atomic_store_n(&s->returned, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void get_stats(struct mmn_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	FUZZ_ASSERT(mmn_state_stats(m.state, st) == 0, "mmn_state_stats failed");
}

/* Run the call in a thread and wait until the library shows it parked. */
static void park(struct fsub *s, enum blocked_call call)
{
	struct mmn_stats st;

	s->blocked = call;
	s->returned = 0;
	FUZZ_ASSERT(pthread_create(&s->thread, NULL,
				   call == BLOCKED_REMOVE ? remove_thread : read_begin_thread,
				   s) == 0, "pthread_create failed");
	for (;;) {
		get_stats(&st);
		if (call == BLOCKED_REMOVE ? st.deferred_removes == m.deferred_removes
					   : st.read_begin_waits == m.read_waits)
			break;
		FUZZ_ASSERT(!__atomic_load_n(&s->returned, __ATOMIC_ACQUIRE),
			    "%s of subscription %zu returned without waiting for the running invalidations",
			    call == BLOCKED_REMOVE ? "remove" : "read_begin", (size_t)(s - m.subs));
		sched_yield();
	}
}

/* ------------------------------------------------------------------------
 * The model
 */

static void check_state(void)
{
	struct mmn_stats st;
	const char *why;
	unsigned int live = 0;

	get_stats(&st);
	FUZZ_ASSERT(st.active_invalidations == m.active, "active %llu, model %llu",
		    (unsigned long long)st.active_invalidations, (unsigned long long)m.active);
	FUZZ_ASSERT(st.range_subs == m.range_subs, "range_subs %llu, model %llu",
		    (unsigned long long)st.range_subs, (unsigned long long)m.range_subs);
	for (unsigned int k = 0; k < WOPS; k++)
		live += m.wrefs[k] > 0;
	FUZZ_ASSERT(st.subs == live, "subs %llu, model %u", (unsigned long long)st.subs, live);
	FUZZ_ASSERT(st.invalidations_started == m.started, "started %llu, model %llu",
		    (unsigned long long)st.invalidations_started, (unsigned long long)m.started);
	FUZZ_ASSERT(st.invalidations_ended == m.ended, "ended mismatch");
	FUZZ_ASSERT(st.invalidations_refused == m.refused, "refused %llu, model %llu",
		    (unsigned long long)st.invalidations_refused, (unsigned long long)m.refused);
	FUZZ_ASSERT(st.read_begin_waits == m.read_waits, "read_begin_waits mismatch");
	FUZZ_ASSERT(st.deferred_inserts == m.deferred_inserts, "deferred_inserts mismatch");
	FUZZ_ASSERT(st.deferred_removes == m.deferred_removes, "deferred_removes mismatch");
	FUZZ_ASSERT(st.blockable_refusals == 0, "a blockable invalidation was refused");
	why = notifier_check(m.state);
	FUZZ_ASSERT(!why, "notifier_check: %s", why);

	/* Parked calls stay parked while an invalidation runs. */
	for (size_t i = 0; i < RSUBS; i++)
		if (m.subs[i].blocked)
			FUZZ_ASSERT(!__atomic_load_n(&m.subs[i].returned, __ATOMIC_ACQUIRE),
				    "%s of subscription %zu returned while invalidations run",
				    m.subs[i].blocked == BLOCKED_REMOVE ? "remove" : "read_begin", i);
}

/* The last running invalidation ended: what the library must have done. */
static void finish_epoch(void)
{
	if (m.active || !(m.seq & 1))
		return;
	m.seq++;
	for (size_t i = 0; i < RSUBS; i++) {
		struct fsub *s = &m.subs[i];

		if (s->place == PENDING_INSERT)
			s->place = IN_TREE;
		if (!s->blocked)
			continue;
		FUZZ_ASSERT(pthread_join(s->thread, NULL) == 0, "pthread_join failed");
		FUZZ_ASSERT(s->returned, "parked call did not return");
		if (s->blocked == BLOCKED_REMOVE) {
			FUZZ_ASSERT(s->place == REMOVING, "model: removing");
			FUZZ_ASSERT(mmn_range_sub_state(&s->rsub) == NULL,
				    "removed subscription still points at its state");
			s->place = FREE;
		} else {
			FUZZ_ASSERT(s->result == s->stamp, "read_begin returned %llu, model %llu",
				    (unsigned long long)s->result, (unsigned long long)s->stamp);
			s->reading = true;
			s->read_seq = s->result;
			s->hit_since = false;
		}
		s->blocked = NOT_BLOCKED;
	}
}

static void do_insert(struct fuzz_input *in)
{
	struct fsub *s = &m.subs[fuzz_u8(in) % RSUBS];
	uint8_t sb = fuzz_u8(in), lb = fuzz_u8(in), flags = fuzz_u8(in);
	uint64_t start = sb == 0xff ? UINT64_MAX - 15 : sb;
	uint64_t length = lb == 0xff ? UINT64_MAX : lb;
	bool overflow = length == 0 || length - 1 > UINT64_MAX - start;
	int ret;

	if (s->place != FREE)
		return;
	ret = mmn_range_sub_insert(&s->rsub, m.state, start, length, &range_ops[(flags >> 1) & 1]);
	if (overflow) {
		FUZZ_ASSERT(ret == -EOVERFLOW, "insert [%llu, +%llu) returned %d",
			    (unsigned long long)start, (unsigned long long)length, ret);
		return;
	}
	FUZZ_ASSERT(ret == 0, "insert returned %d", ret);
	FUZZ_ASSERT(mmn_range_sub_state(&s->rsub) == m.state, "inserted, but not into the state");
	s->start = start;
	s->last = start + (length - 1);
	s->refuses = flags & 1;
	s->reading = false;
	m.range_subs++;
	if (!m.active) {
		s->place = IN_TREE;
		s->stamp = m.seq - 1;
	} else if (m.seq & 1) {
		s->place = PENDING_INSERT;
		s->stamp = m.seq;
		m.deferred_inserts++;
	} else {
		s->place = IN_TREE;
		s->stamp = ++m.seq;
	}
}

static void do_remove(struct fuzz_input *in)
{
	struct fsub *s = &m.subs[fuzz_u8(in) % RSUBS];

	if (s->blocked || (s->place != IN_TREE && s->place != PENDING_INSERT))
		return;
	s->reading = false;
	m.range_subs--;
	if (s->place == IN_TREE && (m.seq & 1)) {
		s->place = REMOVING;
		m.deferred_removes++;
		park(s, BLOCKED_REMOVE);
		return;
	}
	mmn_range_sub_remove(&s->rsub);
	FUZZ_ASSERT(mmn_range_sub_state(&s->rsub) == NULL, "removed subscription keeps its state");
	s->place = FREE;
}

static void read_desc(struct fuzz_input *in, struct mmn_invalidate_desc *d)
{
	uint8_t sb = fuzz_u8(in), lb = fuzz_u8(in), fl = fuzz_u8(in);

	memset(d, 0, sizeof(*d));
	if (sb == 0xff) {		/* everything */
		d->start = 0;
		d->end = 0;
	} else if (sb == 0xfe) {	/* the top of the space */
		d->start = UINT64_MAX - 7;
		d->end = 0;
	} else {
		d->start = sb;
		d->end = (uint64_t)sb + lb;	/* lb 0: invalid */
	}
	d->event = (enum mmn_event)((fl >> 1) % MMN_EVENT_COUNT);
	d->flags = fl & 1 ? MMN_INVALIDATE_BLOCKABLE : 0;
	if (fl & 0x80)
		d->flags |= MMN_INVALIDATE_AFTER;
}

/* The model's view of one start, checked against the callbacks seen. */
static void do_start(struct fuzz_input *in)
{
	unsigned int t = fuzz_u8(in) % THREADS;
	struct mmn_invalidate_desc d;
	bool hits[RSUBS] = { false }, any_hit = false, range_refuses = false;
	bool seen[RSUBS] = { false };
	unsigned int nhits = 0, wrefuser = WOPS, expect_wstarts = 0;
	uint64_t cur, prev_start = 0;
	int ret, expect;

	read_desc(in, &d);
	if (m.threads[t].open)
		return;
	memset(&calls, 0, sizeof(calls));

	if (d.end != 0 && d.end <= d.start) {
		ret = mmn_invalidate_start(m.state, &d);
		FUZZ_ASSERT(ret == -EINVAL, "invalid desc: start returned %d", ret);
		FUZZ_ASSERT(calls.n == 0 && calls.nwstart == 0, "callbacks for an invalid desc");
		return;
	}
	for (size_t i = 0; i < RSUBS; i++) {
		struct fsub *s = &m.subs[i];

		if ((s->place == IN_TREE || s->place == REMOVING) && overlaps(s->start, s->last, &d)) {
			hits[i] = any_hit = true;
			nhits++;
			if (s->refuses && !(d.flags & MMN_INVALIDATE_BLOCKABLE))
				range_refuses = true;
		}
	}
	if (!range_refuses && !(d.flags & MMN_INVALIDATE_BLOCKABLE))
		for (unsigned int j = 0; j < m.nw && wrefuser == WOPS; j++)
			if (m.wrefuse[m.wlist[j]->kind] && wops[m.wlist[j]->kind].invalidate_start)
				wrefuser = j;
	m.active++;
	if (any_hit && !(m.seq & 1))
		m.seq++;
	cur = m.seq;
	expect = range_refuses || wrefuser < WOPS ? -EAGAIN : 0;

	ret = mmn_invalidate_start(m.state, &d);
	FUZZ_ASSERT(ret == expect, "start returned %d, model %d", ret, expect);

	/* Range callbacks: distinct, hit, in tree order, stop at a refusal. */
	for (unsigned int c = 0; c < calls.n; c++) {
		size_t i = calls.order[c];

		FUZZ_ASSERT(hits[i] && !seen[i], "callback %zu unexpected or repeated", i);
		FUZZ_ASSERT(calls.cur_seq[c] == cur, "cur_seq %llu, model %llu",
			    (unsigned long long)calls.cur_seq[c], (unsigned long long)cur);
		FUZZ_ASSERT(m.subs[i].start >= prev_start, "callbacks out of tree order");
		FUZZ_ASSERT(!calls.refused[c] || c == calls.n - 1, "callbacks after a refusal");
		prev_start = m.subs[i].start;
		seen[i] = true;
		if (!calls.refused[c]) {
			m.subs[i].stamp = cur;
			if (m.subs[i].reading)
				m.subs[i].hit_since = true;
		}
	}
	if (range_refuses) {
		FUZZ_ASSERT(calls.n > 0 && calls.refused[calls.n - 1], "refusal without a refuser");
		FUZZ_ASSERT(calls.nwstart == 0, "whole-space starts after a range refusal");
	} else {
		FUZZ_ASSERT(calls.n == nhits, "%u callbacks, model %u", calls.n, nhits);
		/* Whole-space: in list order, up to the refuser; those before it hear the end. */
		for (unsigned int j = 0; j < m.nw; j++) {
			unsigned int k = m.wlist[j]->kind;

			if (!wops[k].invalidate_start)
				continue;
			if (wrefuser < WOPS && j > wrefuser)
				break;
			FUZZ_ASSERT(expect_wstarts < calls.nwstart &&
				    calls.wstart_order[expect_wstarts] == k,
				    "whole-space start %u out of order", k);
			expect_wstarts++;
		}
		FUZZ_ASSERT(calls.nwstart == expect_wstarts, "%u whole-space starts, model %u",
			    calls.nwstart, expect_wstarts);
		for (unsigned int j = 0; j < m.nw; j++) {
			unsigned int k = m.wlist[j]->kind;
			unsigned int want = wrefuser < WOPS && j < wrefuser && wops[k].invalidate_end;

			FUZZ_ASSERT(calls.wends[k] == want, "kind %u heard %u ends on a start, model %u",
				    k, calls.wends[k], want);
		}
	}

	/* Refused: every range subscription that accepted hears the cancel. */
	for (size_t i = 0; i < RSUBS; i++) {
		bool accepted = false;

		for (unsigned int c = 0; c < calls.n; c++)
			accepted |= calls.order[c] == i && !calls.refused[c];
		FUZZ_ASSERT(calls.cancels[i] == (ret && accepted),
			    "subscription %zu heard %u cancels, model %d", i, calls.cancels[i],
			    ret && accepted);
	}
	if (ret) {
		m.refused++;
		m.active--;
		finish_epoch();
		return;
	}
	m.started++;
	m.threads[t].open = true;
	m.threads[t].desc = d;
}

static void do_end(unsigned int t)
{
	if (!m.threads[t].open)
		return;
	memset(&calls, 0, sizeof(calls));
	mmn_invalidate_end(m.state, &m.threads[t].desc);
	FUZZ_ASSERT(calls.n == 0 && calls.nwstart == 0, "start callbacks during an end");
	for (unsigned int j = 0; j < m.nw; j++) {
		unsigned int k = m.wlist[j]->kind;
		bool skips = m.wskip[k] > 0;

		/* Registered after this one started: it never heard the start. */
		if (skips)
			m.wskip[k]--;
		FUZZ_ASSERT(calls.wends[k] == (!skips && wops[k].invalidate_end != NULL),
			    "kind %u heard %u ends, model %d", k, calls.wends[k],
			    !skips && wops[k].invalidate_end != NULL);
	}
	m.threads[t].open = false;
	m.ended++;
	m.active--;
	finish_epoch();
}

static void do_read_begin(struct fuzz_input *in)
{
	struct fsub *s = &m.subs[fuzz_u8(in) % RSUBS];
	uint64_t seq;

	if (s->blocked || (s->place != IN_TREE && s->place != PENDING_INSERT))
		return;
	if (s->stamp == m.seq) {
		/* Stamped by a running invalidation (or inserted during one). */
		m.read_waits++;
		s->reading = false;
		park(s, BLOCKED_READ_BEGIN);
		return;
	}
	seq = mmn_range_read_begin(&s->rsub);
	FUZZ_ASSERT(seq == s->stamp, "read_begin returned %llu, model %llu",
		    (unsigned long long)seq, (unsigned long long)s->stamp);
	s->reading = true;
	s->read_seq = seq;
	s->hit_since = false;
}

static void do_read_retry(struct fuzz_input *in, bool lockless)
{
	struct fsub *s = &m.subs[fuzz_u8(in) % RSUBS];
	bool retry;

	if (!s->reading || s->blocked)
		return;
	retry = lockless ? mmn_range_check_retry(&s->rsub, s->read_seq)
			 : mmn_range_read_retry(&s->rsub, s->read_seq);
	FUZZ_ASSERT(retry == s->hit_since, "%s returned %d, model %d",
		    lockless ? "check_retry" : "read_retry", retry, s->hit_since);
	if (!lockless)
		s->reading = false;	/* the reader installed, or starts again */
}

static void do_sub_get(unsigned int k)
{
	struct mmn_sub *sub = NULL;
	bool fails = m.alloc_fails && m.wrefs[k] == 0;
	int ret = mmn_sub_get(&wops[k], m.state, &sub);

	if (fails) {
		FUZZ_ASSERT(ret == -ENOMEM && !m.alloc_fails, "failed alloc_sub: get returned %d", ret);
		return;
	}
	FUZZ_ASSERT(ret == 0, "mmn_sub_get returned %d", ret);
	if (m.wrefs[k]++ == 0) {
		struct wsub *w = mmn_container_of(sub, struct wsub, sub);

		w->kind = k;
		m.wlist[m.nw++] = w;
		m.wskip[k] = 0;
		for (unsigned int t = 0; t < THREADS; t++)
			m.wskip[k] += m.threads[t].open;
	} else {
		unsigned int j;

		for (j = 0; j < m.nw && m.wlist[j]->kind != k; j++)
			;
		FUZZ_ASSERT(j < m.nw && sub == &m.wlist[j]->sub,
			    "mmn_sub_get returned another subscription for the same ops");
	}
}

static void do_sub_put(unsigned int k)
{
	unsigned int j;
	unsigned long frees = m.wfrees;

	if (m.wrefs[k] == 0)
		return;
	for (j = 0; m.wlist[j]->kind != k; j++)
		;
	mmn_sub_put(&m.wlist[j]->sub);
	if (--m.wrefs[k] == 0) {
		FUZZ_ASSERT(m.wfrees == frees + 1, "last put did not free");
		memmove(&m.wlist[j], &m.wlist[j + 1], (m.nw - j - 1) * sizeof(m.wlist[0]));
		m.nw--;
	} else {
		FUZZ_ASSERT(m.wfrees == frees, "put freed a referenced subscription");
	}
}

static void teardown(void)
{
	struct mmn_state *state = m.state;
	unsigned int expect_calls = 0, live = m.nw;

	for (unsigned int t = 0; t < THREADS; t++)
		do_end(t);
	check_state();
	for (size_t i = 0; i < RSUBS; i++)
		expect_calls += m.subs[i].place == IN_TREE;

	memset(&calls, 0, sizeof(calls));
	calls.releasing = true;
	for (size_t i = 0; i < RSUBS; i++)
		m.subs[i].refuses = false;	/* RELEASE is blockable */
	mmn_state_free(state);
	FUZZ_ASSERT(calls.n == expect_calls, "RELEASE reached %u subscriptions, model %u",
		    calls.n, expect_calls);
	FUZZ_ASSERT(m.wreleases == live, "%lu releases, model %u", m.wreleases, live);
	for (size_t i = 0; i < RSUBS; i++)
		if (m.subs[i].place != FREE)
			mmn_range_sub_remove(&m.subs[i].rsub);	/* detached: a no-op */
	for (unsigned int j = 0; j < m.nw; j++) {
		struct mmn_sub *sub = &m.wlist[j]->sub;	/* freed by its last put */

		for (unsigned long refs = m.wrefs[m.wlist[j]->kind]; refs; refs--)
			mmn_sub_put(sub);
	}
	FUZZ_ASSERT(m.wfrees == m.wallocs, "%lu subscriptions allocated, %lu freed",
		    m.wallocs, m.wfrees);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size, 0 };

	memset(&m, 0, sizeof(m));
	FUZZ_ASSERT(mmn_state_new(&m.state) == 0, "mmn_state_new failed");
	/* Walks through the index from 3 subscriptions, the tree below 2. */
	notifier_index_min(m.state, 3);
	m.seq = 2;

	while (fuzz_more(&in)) {
		uint8_t op = fuzz_u8(&in);

		switch (op % 10) {
		case 0: do_insert(&in); break;
		case 1: do_remove(&in); break;
		case 2: case 3: do_start(&in); break;
		case 4: do_end(fuzz_u8(&in) % THREADS); break;
		case 5: do_read_begin(&in); break;
		case 6: do_read_retry(&in, op & 0x80); break;
		case 7: do_sub_get(fuzz_u8(&in) % WOPS); break;
		case 8: do_sub_put(fuzz_u8(&in) % WOPS); break;
		default: {	/* switch a knob of the model */
			uint8_t b = fuzz_u8(&in);

			if (b & 0x80)
				m.alloc_fails = true;
			else
				m.wrefuse[b % WOPS] = !m.wrefuse[b % WOPS];
			break;
		}
		}
		ops_done++;
		check_state();
	}
	teardown();
	return 0;
}
