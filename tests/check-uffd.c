/* SPDX-License-Identifier: MIT */
/* The userfaultfd watcher: foreign changes reported after the fact, brackets once. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include <mmn/mmn.h>

#include "hostmem.h"
#include "testutil.h"

#define PAGES 16
#define PATTERN 0xa5
#define MAX_CALLS 16
#define REPORT_TIMEOUT_S 20	/* a bound on a wait that must end; never reached */

static size_t page;

/* ------------------------------------------------------------------------
 * A subscription over the whole watched region that records every call;
 * the watcher calls it from its own thread, so waits go through a condvar.
 */

struct recorder {
	struct mmn_range_sub rsub;
	pthread_mutex_t lock;
	pthread_cond_t called;
	unsigned int calls;
	struct mmn_invalidate_desc descs[MAX_CALLS];
	bool gate_closed;	/* reports wait in the callback while set */
	bool gate_holding;	/* a report waits at the gate */
};

static bool rec_invalidate(struct mmn_range_sub *rsub,
			   const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct recorder *r = mmn_container_of(rsub, struct recorder, rsub);

	pthread_mutex_lock(&r->lock);
	mmn_range_set_seq(rsub, cur_seq);
	if (r->calls < MAX_CALLS)
		r->descs[r->calls] = *desc;
	r->calls++;
	pthread_cond_broadcast(&r->called);
	/* Hold the watcher here, so that events queue up behind this one. */
	while ((desc->flags & MMN_INVALIDATE_AFTER) && r->gate_closed) {
		r->gate_holding = true;
		pthread_cond_broadcast(&r->called);
		pthread_cond_wait(&r->called, &r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return true;
}

static const struct mmn_range_sub_ops rec_ops = { .invalidate = rec_invalidate };

/* Wait until the recorder has had N calls; false if that never happens. */
static bool rec_wait(struct recorder *r, unsigned int n)
{
	struct timespec deadline;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += REPORT_TIMEOUT_S;
	pthread_mutex_lock(&r->lock);
	while (r->calls < n && err == 0)
		err = pthread_cond_timedwait(&r->called, &r->lock, &deadline);
	n = r->calls >= n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Wait until a report is held at the gate. */
static bool rec_wait_held(struct recorder *r)
{
	struct timespec deadline;
	int err = 0;
	bool held;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += REPORT_TIMEOUT_S;
	pthread_mutex_lock(&r->lock);
	while (!r->gate_holding && err == 0)
		err = pthread_cond_timedwait(&r->called, &r->lock, &deadline);
	held = r->gate_holding;
	pthread_mutex_unlock(&r->lock);
	return held;
}

static void rec_open_gate(struct recorder *r)
{
	pthread_mutex_lock(&r->lock);
	r->gate_closed = false;
	pthread_cond_broadcast(&r->called);
	pthread_mutex_unlock(&r->lock);
}

/* The index of the first report of EVENT over [start, start + len), or -1. */
static int rec_find(struct recorder *r, enum mmn_event event, const void *start, size_t len)
{
	int found = -1;

	pthread_mutex_lock(&r->lock);
	for (unsigned int i = 0; i < r->calls && i < MAX_CALLS && found < 0; i++)
		if (r->descs[i].event == event && r->descs[i].start == (uintptr_t)start &&
		    r->descs[i].end == (uintptr_t)start + len &&
		    (r->descs[i].flags & MMN_INVALIDATE_AFTER))
			found = (int)i;
	pthread_mutex_unlock(&r->lock);
	return found;
}

static unsigned int rec_calls(struct recorder *r)
{
	unsigned int n;

	pthread_mutex_lock(&r->lock);
	n = r->calls;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* ------------------------------------------------------------------------
 * The scene: a watched region with a recorder over it.
 */

struct scene {
	struct mmn_state *state;
	struct mmn_uffd_watch *watch;
	struct recorder rec;
	unsigned char *base;
	size_t len;
	int fd;
};

static void scene_setup(struct scene *s, enum test_mem_kind kind)
{
	memset(s, 0, sizeof(*s));
	s->len = PAGES * page;
	s->base = test_mem_map(kind, s->len, PATTERN, &s->fd);
	ck_assert_ptr_nonnull(s->base);

	ck_assert_int_eq(mmn_state_new(&s->state), 0);
	pthread_mutex_init(&s->rec.lock, NULL);
	pthread_cond_init(&s->rec.called, NULL);
	ck_assert_int_eq(mmn_range_sub_insert(&s->rec.rsub, s->state, (uintptr_t)s->base,
					      s->len, &rec_ops), 0);
	ck_assert_int_eq(mmn_uffd_watch_start(s->state, s->base, s->len, &s->watch), 0);
}

static void scene_teardown(struct scene *s)
{
	mmn_uffd_watch_stop(s->watch);
	mmn_range_sub_remove(&s->rec.rsub);
	mmn_state_free(s->state);
	munmap(s->base, s->len);
	if (s->fd >= 0)
		close(s->fd);
}

/*
 * The watcher's counters once it has handled EVENTS events: it counts an
 * event's outcome after the subscribers' callbacks return, so wait for it.
 */
static struct mmn_uffd_stats watch_stats(struct scene *s, uint64_t events)
{
	struct mmn_uffd_stats st = { .size = sizeof(st) };
	time_t deadline = time(NULL) + REPORT_TIMEOUT_S;

	for (;;) {
		ck_assert_int_eq(mmn_uffd_watch_stats(s->watch, &st), 0);
		if (st.events >= events && st.reported + st.bracketed + st.refused == st.events)
			return st;
		ck_assert_msg(time(NULL) < deadline, "the watcher handled %llu of %llu events",
			      (unsigned long long)st.events, (unsigned long long)events);
		sched_yield();
	}
}

static void assert_report(const struct mmn_invalidate_desc *d, enum mmn_event event,
			  const void *start, size_t len)
{
	ck_assert_int_eq(d->event, event);
	ck_assert_uint_eq(d->start, (uintptr_t)start);
	ck_assert_uint_eq(d->end, (uintptr_t)start + len);
	ck_assert(d->flags & MMN_INVALIDATE_AFTER);
	ck_assert(d->flags & MMN_INVALIDATE_BLOCKABLE);
}

/* ------------------------------------------------------------------------
 * Changes made by another thread, behind libmmn's back.
 */

enum foreign_op { FOREIGN_MUNMAP, FOREIGN_DONTNEED, FOREIGN_MREMAP, FOREIGN_FREE,
		  FOREIGN_REMOVE };

struct foreign {
	enum foreign_op op;
	void *addr;
	size_t len;
	void *to;
	int err;
};

static void *foreign_main(void *arg)
{
	struct foreign *f = arg;

	switch (f->op) {
	case FOREIGN_MUNMAP:
		f->err = munmap(f->addr, f->len) ? errno : 0;
		break;
	case FOREIGN_DONTNEED:
		f->err = madvise(f->addr, f->len, MADV_DONTNEED) ? errno : 0;
		break;
	case FOREIGN_FREE:
		f->err = madvise(f->addr, f->len, MADV_FREE) ? errno : 0;
		break;
	case FOREIGN_REMOVE:
		f->err = madvise(f->addr, f->len, MADV_REMOVE) ? errno : 0;
		break;
	case FOREIGN_MREMAP:
		f->err = mremap(f->addr, f->len, f->len, MREMAP_MAYMOVE | MREMAP_FIXED,
				f->to) == MAP_FAILED ? errno : 0;
		break;
	}
	return NULL;
}

static void run_foreign(enum foreign_op op, void *addr, size_t len, void *to)
{
	struct foreign f = { .op = op, .addr = addr, .len = len, .to = to };
	pthread_t thread;

	ck_assert_int_eq(pthread_create(&thread, NULL, foreign_main, &f), 0);
	pthread_join(thread, NULL);
	ck_assert_int_eq(f.err, 0);
}

START_TEST(foreign_munmap_reported_after)
{
	struct scene s;
	unsigned char *target;

	scene_setup(&s, (enum test_mem_kind)_i);
	target = s.base + 3 * page;
	run_foreign(FOREIGN_MUNMAP, target, 2 * page, NULL);
	ck_assert_msg(rec_wait(&s.rec, 1), "no report of a foreign munmap");
	assert_report(&s.rec.descs[0], MMN_EVENT_UNMAP, target, 2 * page);
	ck_assert_uint_eq(watch_stats(&s, 1).reported, 1);
	scene_teardown(&s);
}
END_TEST

START_TEST(foreign_dontneed_reported_after)
{
	struct scene s;
	unsigned char *target;

	scene_setup(&s, (enum test_mem_kind)_i);
	target = s.base + 5 * page;
	run_foreign(FOREIGN_DONTNEED, target, 3 * page, NULL);
	ck_assert_msg(rec_wait(&s.rec, 1), "no report of a foreign madvise");
	assert_report(&s.rec.descs[0], MMN_EVENT_CLEAR, target, 3 * page);
	scene_teardown(&s);
}
END_TEST

START_TEST(foreign_mremap_reported_with_destination)
{
	struct scene s;
	unsigned char *target, *dest;

	scene_setup(&s, (enum test_mem_kind)_i);
	target = s.base + 2 * page;
	dest = mmap(NULL, 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(dest, MAP_FAILED);
	run_foreign(FOREIGN_MREMAP, target, 2 * page, dest);
	/* The kernel sends REMAP, then UNMAP of the old range. */
	ck_assert_msg(rec_wait(&s.rec, 2), "%u reports of a foreign mremap", rec_calls(&s.rec));
	assert_report(&s.rec.descs[0], MMN_EVENT_REMAP, target, 2 * page);
	ck_assert_uint_eq(s.rec.descs[0].remap_to, (uintptr_t)dest);
	assert_report(&s.rec.descs[1], MMN_EVENT_UNMAP, target, 2 * page);
	ck_assert_int_eq(dest[0], PATTERN);
	munmap(dest, 2 * page);
	scene_teardown(&s);
}
END_TEST

/*
 * A bracketed change is told once, by the bracket, before it happens. The
 * watcher sees its events, in order; a foreign change made afterwards is
 * the fence that proves the watcher has handled them all.
 */
START_TEST(bracketed_changes_reported_once)
{
	struct scene s;
	struct mmn_uffd_stats st;
	void *to = NULL;
	unsigned int n;

	scene_setup(&s, (enum test_mem_kind)_i);
	ck_assert_int_eq(mmn_madvise(s.state, s.base, page, MADV_DONTNEED, 0), 0);
	ck_assert_int_eq(mmn_munmap(s.state, s.base + page, page, 0), 0);
	to = s.base + page;
	ck_assert_int_eq(mmn_mremap(s.state, s.base + 2 * page, page, page,
				    MREMAP_MAYMOVE | MREMAP_FIXED, &to, 0), 0);
	n = rec_calls(&s.rec);
	/* madvise, munmap, mremap (source, and its destination inside the region) */
	ck_assert_uint_eq(n, 4);
	for (unsigned int i = 0; i < n; i++)
		ck_assert(!(s.rec.descs[i].flags & MMN_INVALIDATE_AFTER));

	run_foreign(FOREIGN_DONTNEED, s.base + 8 * page, page, NULL);
	ck_assert(rec_wait(&s.rec, n + 1));
	ck_assert_uint_eq(rec_calls(&s.rec), n + 1);
	assert_report(&s.rec.descs[n], MMN_EVENT_CLEAR, s.base + 8 * page, page);

	st = watch_stats(&s, 5);
	ck_assert_uint_eq(st.bracketed, 4);	/* REMOVE, UNMAP, REMAP, UNMAP */
	ck_assert_uint_eq(st.reported, 1);
	ck_assert_uint_eq(st.events, 5);
	scene_teardown(&s);
}
END_TEST

/* A bracket on another state told other subscribers: ours still hear it. */
START_TEST(bracket_on_other_state_is_reported)
{
	struct mmn_state *other;
	struct scene s;

	scene_setup(&s, TEST_MEM_PRIVATE);
	ck_assert_int_eq(mmn_state_new(&other), 0);
	ck_assert_int_eq(mmn_madvise(other, s.base + 4 * page, page, MADV_DONTNEED, 0), 0);
	ck_assert_msg(rec_wait(&s.rec, 1), "a bracket on another state hid the change");
	assert_report(&s.rec.descs[0], MMN_EVENT_CLEAR, s.base + 4 * page, page);
	mmn_state_free(other);
	scene_teardown(&s);
}
END_TEST

START_TEST(stop_ends_reports)
{
	struct scene s;

	scene_setup(&s, TEST_MEM_PRIVATE);
	mmn_uffd_watch_stop(s.watch);
	s.watch = NULL;
	/* Unregistered: the kernel no longer waits for anyone, nobody reports. */
	run_foreign(FOREIGN_MUNMAP, s.base, page, NULL);
	ck_assert_uint_eq(rec_calls(&s.rec), 0);
	{
		struct mmn_stats st = { .size = sizeof(st) };

		ck_assert_int_eq(mmn_state_stats(s.state, &st), 0);
		ck_assert_uint_eq(st.invalidations_started, 0);
	}
	mmn_range_sub_remove(&s.rec.rsub);
	mmn_state_free(s.state);
	munmap(s.base, s.len);
}
END_TEST

START_TEST(bad_arguments)
{
	struct mmn_uffd_watch *w = NULL, *again = NULL;
	struct mmn_uffd_stats st = { .size = 0 };
	struct scene s;
	void *hole;

	scene_setup(&s, TEST_MEM_PRIVATE);
	ck_assert_int_eq(mmn_uffd_watch_start(NULL, s.base, page, &w), -EINVAL);
	ck_assert_int_eq(mmn_uffd_watch_start(s.state, s.base + 1, page, &w), -EINVAL);
	ck_assert_int_eq(mmn_uffd_watch_start(s.state, s.base, page + 1, &w), -EINVAL);
	ck_assert_int_eq(mmn_uffd_watch_start(s.state, s.base, 0, &w), -EINVAL);
	ck_assert_int_eq(mmn_uffd_watch_start(s.state, s.base, page, NULL), -EINVAL);
	ck_assert_int_eq(mmn_uffd_watch_start(s.state, (void *)(UINTPTR_MAX - (page - 1)),
					      2 * page, &w), -EOVERFLOW);
	/* Only one userfaultfd per mapping: the kernel says EBUSY. */
	ck_assert_int_eq(mmn_uffd_watch_start(s.state, s.base, page, &again), -EBUSY);
	/* A range that is not mapped. */
	hole = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(hole, MAP_FAILED);
	munmap(hole, page);
	ck_assert_int_eq(mmn_uffd_watch_start(s.state, hole, page, &w), -ENOMEM);
	ck_assert_ptr_null(w);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(mmn_uffd_watch_stats(s.watch, &st), -EINVAL);
	ck_assert_int_eq(mmn_uffd_watch_stats(NULL, &st), -EINVAL);
	scene_teardown(&s);
}
END_TEST

/* ------------------------------------------------------------------------
 * A REMOVE report ends only once the zap is visible.
 *
 * A cache of one translation, the byte at the start of a page: filled by
 * a reader thread whenever the report dropped it, kept until the next
 * report drops it. Another thread writes a marker there and discards the
 * page with madvise(MADV_DONTNEED) behind libmmn's back. Once madvise has
 * returned and the watcher is done, the cache must not hold the marker:
 * a reader that began after the report and read before the zap would have
 * put it there, and nothing would drop it again.
 */

#define ZAP_TRIES 200

struct cache {
	struct mmn_range_sub rsub;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	const unsigned char *byte;
	int installed;		/* the cached byte, or -1: none */
	bool stop;
};

static bool cache_invalidate(struct mmn_range_sub *rsub,
			     const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct cache *c = mmn_container_of(rsub, struct cache, rsub);

	(void)desc;
	pthread_mutex_lock(&c->lock);
	mmn_range_set_seq(rsub, cur_seq);
	c->installed = -1;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	return true;
}

static const struct mmn_range_sub_ops cache_ops = { .invalidate = cache_invalidate };

static void *cache_reader(void *arg)
{
	struct cache *c = arg;

	for (;;) {
		uint64_t seq;
		int v;

		pthread_mutex_lock(&c->lock);
		while (c->installed >= 0 && !c->stop)
			pthread_cond_wait(&c->changed, &c->lock);
		if (c->stop) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		pthread_mutex_unlock(&c->lock);
		seq = mmn_range_read_begin(&c->rsub);
		v = __atomic_load_n(c->byte, __ATOMIC_RELAXED);
		pthread_mutex_lock(&c->lock);
		if (!mmn_range_read_retry(&c->rsub, seq)) {
			c->installed = v;
			pthread_cond_broadcast(&c->changed);
		}
		pthread_mutex_unlock(&c->lock);
	}
}

/* The cached byte once the reader has filled the cache again. */
static int cache_wait_filled(struct cache *c)
{
	struct timespec deadline;
	int err = 0, v;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += REPORT_TIMEOUT_S;
	pthread_mutex_lock(&c->lock);
	while (c->installed < 0 && err == 0)
		err = pthread_cond_timedwait(&c->changed, &c->lock, &deadline);
	v = c->installed;
	pthread_mutex_unlock(&c->lock);
	return v;
}

/* Private memory loses its pages to DONTNEED, a memfd to REMOVE (a hole punch). */
START_TEST(remove_report_outlasts_zap)
{
	const enum test_mem_kind kind = _i ? TEST_MEM_MEMFD : TEST_MEM_PRIVATE;
	struct cache c = { .installed = -1 };
	struct uffd_zap_stats zs;
	struct scene s;
	pthread_t reader;
	unsigned int stale = 0, first_stale = 0;
	unsigned char *target;

	scene_setup(&s, kind);
	target = s.base + 6 * page;
	c.byte = target;
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.changed, NULL);
	ck_assert_int_eq(mmn_range_sub_insert(&c.rsub, s.state, (uintptr_t)target, page,
					      &cache_ops), 0);
	ck_assert_int_eq(pthread_create(&reader, NULL, cache_reader, &c), 0);

	for (unsigned int i = 1; i <= ZAP_TRIES; i++) {
		const unsigned char marker = (unsigned char)(i % 255 + 1);

		__atomic_store_n(target, marker, __ATOMIC_RELAXED);
		run_foreign(_i ? FOREIGN_REMOVE : FOREIGN_DONTNEED, target, page, NULL);
		watch_stats(&s, i);	/* the report has ended */
		if (cache_wait_filled(&c) == marker && stale++ == 0)
			first_stale = i;
	}

	pthread_mutex_lock(&c.lock);
	c.stop = true;
	pthread_cond_broadcast(&c.changed);
	pthread_mutex_unlock(&c.lock);
	pthread_join(reader, NULL);
	uffd_zap_stats(s.watch, &zs);
	printf("remove_report_outlasts_zap(%s): %u stale of %u; zap waits %llu, expired %llu, "
	       "mean %llu ns, max %llu ns\n", _i ? "memfd" : "private", stale, ZAP_TRIES,
	       (unsigned long long)zs.waits, (unsigned long long)zs.expired,
	       (unsigned long long)(zs.waits ? zs.total_ns / zs.waits : 0),
	       (unsigned long long)zs.max_ns);
	ck_assert_msg(stale == 0, "%u of %u tries cached the discarded page's byte (first: %u)",
		      stale, ZAP_TRIES, first_stale);
	mmn_range_sub_remove(&c.rsub);
	scene_teardown(&s);
}
END_TEST

/*
 * MADV_FREE leaves the pages mapped until reclaim wants them: the report
 * cannot see a zap and ends at the bound, once per event.
 */
START_TEST(free_report_ends_at_bound)
{
	struct uffd_zap_stats zs;
	struct scene s;
	const unsigned int tries = 10;

	scene_setup(&s, TEST_MEM_PRIVATE);
	for (unsigned int i = 1; i <= tries; i++) {
		s.base[7 * page] = PATTERN;
		run_foreign(FOREIGN_FREE, s.base + 7 * page, page, NULL);
		watch_stats(&s, i);
	}
	uffd_zap_stats(s.watch, &zs);
	printf("free_report_ends_at_bound: zap waits %llu, expired %llu, mean %llu ns, "
	       "max %llu ns\n", (unsigned long long)zs.waits, (unsigned long long)zs.expired,
	       (unsigned long long)(zs.total_ns / zs.waits), (unsigned long long)zs.max_ns);
	ck_assert_uint_eq(zs.waits, tries);
	ck_assert_uint_eq(zs.expired, tries);
	ck_assert_uint_lt(zs.max_ns, REPORT_TIMEOUT_S * 1000000000ull);
	scene_teardown(&s);
}
END_TEST

/* ------------------------------------------------------------------------
 * A foreign change inside a bracket in flight is reported unless the
 * bracket's own syscall raised it.
 *
 * The order is made certain: the watcher is held in a report while an
 * mmn_madvise(MADV_DONTNEED) bracket over pages [1, 5) blocks in the
 * kernel on its REMOVE event, then the foreign change on page 2 queues
 * its event behind it. The foreign change splits the mapping, so the
 * bracket's madvise raises a second REMOVE for [3, 5) once the first is
 * read; that one queues behind the foreign event, and the bracket is
 * still in flight when the watcher reads the foreign event.
 */

/* Wait until thread TID sleeps in syscall NR waiting for the watcher. */
static bool wait_blocked_in(pid_t tid, long nr)
{
	time_t deadline = time(NULL) + REPORT_TIMEOUT_S;
	char path[64], buf[128];

	while (time(NULL) < deadline) {
		bool in_nr = false, in_uffd = true;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
		f = fopen(path, "r");
		if (f) {
			in_nr = fgets(buf, sizeof(buf), f) && buf[0] != 'r' && atol(buf) == nr;
			fclose(f);
		}
		/* Where the kernel names the wait, it must be userfaultfd's. */
		snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", (int)tid);
		f = fopen(path, "r");
		if (f) {
			if (fgets(buf, sizeof(buf), f) && strcmp(buf, "0") != 0 && buf[0])
				in_uffd = strstr(buf, "userfaultfd") != NULL;
			fclose(f);
		}
		if (in_nr && in_uffd)
			return true;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	return false;
}

struct bracket_thread {
	struct mmn_state *state;
	void *addr;
	size_t len;
	pid_t tid;
	int ret;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void thread_started(pthread_mutex_t *lock, pthread_cond_t *cond, pid_t *tid,
			   bool *started)
{
	pthread_mutex_lock(lock);
	*tid = (pid_t)syscall(SYS_gettid);
	*started = true;
	pthread_cond_broadcast(cond);
	pthread_mutex_unlock(lock);
}

static pid_t thread_tid(pthread_mutex_t *lock, pthread_cond_t *cond, pid_t *tid,
			bool *started)
{
	pid_t t;

	pthread_mutex_lock(lock);
	while (!*started)
		pthread_cond_wait(cond, lock);
	t = *tid;
	pthread_mutex_unlock(lock);
	return t;
}

static void *bracket_main(void *arg)
{
	struct bracket_thread *b = arg;

	thread_started(&b->lock, &b->cond, &b->tid, &b->started);
	b->ret = mmn_madvise(b->state, b->addr, b->len, MADV_DONTNEED, 0);
	return NULL;
}

struct foreign_thread {
	struct foreign f;
	pid_t tid;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void *foreign_thread_main(void *arg)
{
	struct foreign_thread *t = arg;

	thread_started(&t->lock, &t->cond, &t->tid, &t->started);
	return foreign_main(&t->f);
}

/* Run foreign OP on page 2 while a DONTNEED bracket over [1, 5) is in flight. */
static void foreign_inside_bracket(struct scene *s, enum foreign_op op, void *to,
				   uint64_t events)
{
	struct bracket_thread b = { .state = s->state, .addr = s->base + page, .len = 4 * page };
	struct foreign_thread f = { .f = { .op = op, .addr = s->base + 2 * page, .len = page,
					   .to = to } };
	static const long nr[] = { [FOREIGN_MUNMAP] = SYS_munmap,
				   [FOREIGN_DONTNEED] = SYS_madvise,
				   [FOREIGN_FREE] = SYS_madvise,
				   [FOREIGN_REMOVE] = SYS_madvise,
				   [FOREIGN_MREMAP] = SYS_mremap };
	pthread_t bt, ft;

	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.cond, NULL);

	/* Hold the watcher in the report of a change elsewhere. */
	pthread_mutex_lock(&s->rec.lock);
	s->rec.gate_closed = true;
	pthread_mutex_unlock(&s->rec.lock);
	run_foreign(FOREIGN_DONTNEED, s->base + 12 * page, page, NULL);
	ck_assert_msg(rec_wait_held(&s->rec), "the watcher never reported");

	ck_assert_int_eq(pthread_create(&bt, NULL, bracket_main, &b), 0);
	ck_assert_msg(wait_blocked_in(thread_tid(&b.lock, &b.cond, &b.tid, &b.started),
				      SYS_madvise), "the bracket never waited for the watcher");
	ck_assert_int_eq(pthread_create(&ft, NULL, foreign_thread_main, &f), 0);
	ck_assert_msg(wait_blocked_in(thread_tid(&f.lock, &f.cond, &f.tid, &f.started),
				      nr[op]), "the foreign change never waited for the watcher");

	rec_open_gate(&s->rec);
	pthread_join(ft, NULL);
	pthread_join(bt, NULL);
	ck_assert_int_eq(f.f.err, 0);
	/* The hole at page 2 makes the bracket's madvise say ENOMEM. */
	ck_assert_msg(b.ret == 0 || b.ret == -ENOMEM, "mmn_madvise: %d", b.ret);
	watch_stats(s, events);
}

START_TEST(foreign_munmap_inside_other_bracket_reported)
{
	struct mmn_uffd_stats st;
	struct scene s;

	scene_setup(&s, TEST_MEM_PRIVATE);
	foreign_inside_bracket(&s, FOREIGN_MUNMAP, NULL, 4);
	/* The change elsewhere, and the munmap: UNMAP, not only the bracket's CLEAR. */
	ck_assert_int_ge(rec_find(&s.rec, MMN_EVENT_CLEAR, s.base + 12 * page, page), 0);
	ck_assert_msg(rec_find(&s.rec, MMN_EVENT_UNMAP, s.base + 2 * page, page) >= 0,
		      "a foreign munmap inside a DONTNEED bracket was never reported");
	st = watch_stats(&s, 4);
	ck_assert_uint_eq(st.bracketed, 2);	/* the bracket's two REMOVEs */
	ck_assert_uint_eq(st.reported, 2);
	scene_teardown(&s);
}
END_TEST

START_TEST(foreign_mremap_inside_other_bracket_reported)
{
	struct mmn_uffd_stats st;
	unsigned char *dest;
	struct scene s;
	int i;

	scene_setup(&s, TEST_MEM_PRIVATE);
	dest = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(dest, MAP_FAILED);
	foreign_inside_bracket(&s, FOREIGN_MREMAP, dest, 5);
	i = rec_find(&s.rec, MMN_EVENT_REMAP, s.base + 2 * page, page);
	ck_assert_msg(i >= 0, "a foreign mremap inside a DONTNEED bracket was never reported");
	ck_assert_uint_eq(s.rec.descs[i].remap_to, (uintptr_t)dest);
	ck_assert_int_ge(rec_find(&s.rec, MMN_EVENT_UNMAP, s.base + 2 * page, page), 0);
	st = watch_stats(&s, 5);
	ck_assert_uint_eq(st.bracketed, 2);
	ck_assert_uint_eq(st.reported, 3);	/* elsewhere, REMAP, UNMAP of the old range */
	scene_teardown(&s);
	munmap(dest, page);
}
END_TEST

/*
 * An mremap bracket to one destination does not explain a move of the
 * same source elsewhere: checked on the bracket's own move, whose
 * destination the kernel reports exactly.
 */
START_TEST(bracketed_mremap_fixed_is_its_own)
{
	struct mmn_uffd_stats st;
	struct scene s;
	void *to;

	scene_setup(&s, TEST_MEM_PRIVATE);
	to = s.base + 10 * page;
	ck_assert_int_eq(mmn_mremap(s.state, s.base + 2 * page, page, page,
				    MREMAP_MAYMOVE | MREMAP_FIXED, &to, 0), 0);
	run_foreign(FOREIGN_DONTNEED, s.base + 12 * page, page, NULL);
	st = watch_stats(&s, 4);	/* UNMAP of the destination, REMAP, UNMAP, the fence */
	ck_assert_uint_eq(st.bracketed, 3);
	ck_assert_uint_eq(st.reported, 1);
	scene_teardown(&s);
}
END_TEST

static Suite *uffd_suite(void)
{
	Suite *s = suite_create("uffd");
	TCase *tc;

	tc = tcase_create("foreign changes");
	tcase_add_loop_test(tc, foreign_munmap_reported_after, 0, TEST_MEM_KINDS);
	tcase_add_loop_test(tc, foreign_dontneed_reported_after, 0, TEST_MEM_KINDS);
	tcase_add_loop_test(tc, foreign_mremap_reported_with_destination, 0, TEST_MEM_KINDS);
	tcase_add_loop_test(tc, remove_report_outlasts_zap, 0, 2);
	tcase_add_test(tc, free_report_ends_at_bound);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("brackets");
	tcase_add_loop_test(tc, bracketed_changes_reported_once, 0, TEST_MEM_KINDS);
	tcase_add_test(tc, bracket_on_other_state_is_reported);
	tcase_add_test(tc, foreign_munmap_inside_other_bracket_reported);
	tcase_add_test(tc, foreign_mremap_inside_other_bracket_reported);
	tcase_add_test(tc, bracketed_mremap_fixed_is_its_own);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_test(tc, stop_ends_reports);
	tcase_add_test(tc, bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}

/* Whether this process may watch at all; if not, say why and skip. */
static const char *watch_unavailable(void)
{
	static char why[160];
	struct mmn_uffd_watch *w;
	struct mmn_state *state;
	void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ret;

	if (p == MAP_FAILED || mmn_state_new(&state))
		return "cannot set up the probe";
	ret = mmn_uffd_watch_start(state, p, page, &w);
	if (ret == 0)
		mmn_uffd_watch_stop(w);
	mmn_state_free(state);
	munmap(p, page);
	if (ret == 0)
		return NULL;
	snprintf(why, sizeof(why), "userfaultfd watching is unavailable here: %s", strerror(-ret));
	return why;
}

int main(void)
{
	const char *why;
	SRunner *sr;
	int failed;

	page = (size_t)sysconf(_SC_PAGESIZE);
	why = watch_unavailable();
	if (why) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	sr = srunner_create(uffd_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
