/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: every call in libmmn that can fail is made to fail in
 * turn (allocations, pthread initialisation and creation, the syscall of
 * each bracket, the watcher's syscalls). Each time, the API call must
 * return the injected -errno (-ENOMEM for allocations), and afterwards the
 * state must be as before and consistent: no stuck odd sequence, no leaked
 * subscription or file descriptor, no lost deferred operation. Leaks of
 * memory are left to ASan (the sanitizer build runs this test too).
 *
 * Built against libmmn-fault, the library compiled with
 * -DMMN_FAULT_INJECTION, whose fault_inject() calls mmn_fault_inject()
 * below.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>

#include <mmn/mmn.h>

#include "fault.h"
#include "notifier.h"
#include "testutil.h"

/* The errno injected at syscall and pthread sites: one no real call here returns. */
#define INJECTED_ERRNO EHWPOISON

/* ------------------------------------------------------------------------
 * The plan: fail the fail_at-th fault point reached, and only that one.
 * The watcher's loop runs in its own thread, at its own pace: its site
 * counts only when named in only_site, and then it is the only one.
 */
#define WATCHER_LOOP_SITE "watcher poll"

static unsigned long points_reached;
static unsigned long fail_at;
static const char *only_site;
static int inject_errno = INJECTED_ERRNO;
static const char *fired_site;		/* atomic: the watcher may set it */
static unsigned long faults_injected;	/* atomic */

bool mmn_fault_inject(const char *site)
{
	unsigned long n;

	if (only_site ? strcmp(site, only_site) != 0 : strcmp(site, WATCHER_LOOP_SITE) == 0)
		return false;
	n = __atomic_add_fetch(&points_reached, 1, __ATOMIC_RELAXED);
	if (n != fail_at)
		return false;
	__atomic_store_n(&fired_site, site, __ATOMIC_RELEASE);
	__atomic_fetch_add(&faults_injected, 1, __ATOMIC_RELAXED);
	errno = inject_errno;
	return true;
}

static void arm(unsigned long n)
{
	points_reached = 0;
	fail_at = n;
	fired_site = NULL;
}

static void disarm(void)
{
	fail_at = 0;
}

/* What the API must return when SITE failed. */
static int expected_ret(const char *site)
{
	if (!strcmp(site, "posix_memalign") || !strcmp(site, "calloc"))
		return -ENOMEM;
	return -INJECTED_ERRNO;
}

static void report(const char *what, unsigned long sites)
{
	printf("%s: %lu faults injected at %lu sites\n", what, faults_injected, sites);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ------------------------------------------------------------------------
 * A range subscription that records its calls.
 */
struct rec_sub {
	struct mmn_range_sub rsub;
	unsigned int calls;
};

static bool rec_invalidate(struct mmn_range_sub *rsub,
			   const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	(void)desc;
	mmn_range_set_seq(rsub, cur_seq);
	mmn_container_of(rsub, struct rec_sub, rsub)->calls++;
	return true;
}

static const struct mmn_range_sub_ops rec_ops = { .invalidate = rec_invalidate };

static struct mmn_stats stats_of(struct mmn_state *state)
{
	struct mmn_stats st = { .size = sizeof(st) };

	ck_assert_int_eq(mmn_state_stats(state, &st), 0);
	return st;
}

static void assert_consistent(struct mmn_state *state)
{
	const char *why = notifier_check(state);

	ck_assert_msg(!why, "notifier_check: %s", why);
}

/* The fields that say where the state is (not the event counters). */
static void assert_same_place(const struct mmn_stats *a, const struct mmn_stats *b)
{
	ck_assert_uint_eq(a->active_invalidations, b->active_invalidations);
	ck_assert_uint_eq(a->range_subs, b->range_subs);
	ck_assert_uint_eq(a->subs, b->subs);
	ck_assert_uint_eq(a->deferred_inserts, b->deferred_inserts);
	ck_assert_uint_eq(a->deferred_removes, b->deferred_removes);
	ck_assert_uint_eq(a->read_begin_waits, b->read_begin_waits);
	ck_assert_uint_eq(a->blockable_refusals, b->blockable_refusals);
	ck_assert_uint_eq(a->invalidations_started - a->invalidations_ended,
			  b->invalidations_started - b->invalidations_ended);
}

/* ------------------------------------------------------------------------
 * mmn_state_new: the allocation and every pthread initialisation.
 */
START_TEST(state_new_faults)
{
	unsigned long n, sites = 0;

	for (n = 1;; n++) {
		struct mmn_state *state = (struct mmn_state *)&n;	/* must stay untouched */
		int fds = count_fds();
		int ret;

		arm(n);
		ret = mmn_state_new(&state);
		disarm();
		ck_assert_int_eq(count_fds(), fds);
		if (!fired_site) {
			ck_assert_int_eq(ret, 0);
			assert_consistent(state);
			mmn_state_free(state);
			break;
		}
		sites++;
		ck_assert_msg(ret == expected_ret(fired_site), "%s failed: mmn_state_new returned %d",
			      fired_site, ret);
		ck_assert_ptr_eq(state, (struct mmn_state *)&n);
	}
	ck_assert_uint_ge(sites, 3);	/* memalign, rwlockattr, rwlock */
	report("mmn_state_new", sites);
}
END_TEST

/* ------------------------------------------------------------------------
 * Brackets: the syscall fails after the invalidation began. The error comes
 * back, memory is untouched, the invalidation ended (seq even again), and a
 * deferred insert queued by an invalidation running around it still lands.
 */
#define PAGES 4

struct bracket_env {
	struct mmn_state *state;
	struct rec_sub covering;	/* over the mapping */
	struct rec_sub late;		/* inserted while OUTER runs: deferred */
	struct mmn_invalidate_desc outer;
	char *map;
	size_t page;
	int memfd;
};

typedef int (*bracket_call)(struct bracket_env *env);

static int call_munmap(struct bracket_env *e)
{
	return mmn_munmap(e->state, e->map, e->page, 0);
}

static int call_madvise(struct bracket_env *e)
{
	return mmn_madvise(e->state, e->map, e->page, MADV_DONTNEED, 0);
}

static int call_mprotect(struct bracket_env *e)
{
	return mmn_mprotect(e->state, e->map, e->page, PROT_READ, 0);
}

static int call_mremap(struct bracket_env *e)
{
	void *to = NULL;

	return mmn_mremap(e->state, e->map, 2 * e->page, e->page, 0, &to, 0);
}

static int call_punch_hole(struct bracket_env *e)
{
	return mmn_punch_hole(e->state, e->memfd, 0, (off_t)e->page, e->map, 0);
}

static int call_mmap_fixed(struct bracket_env *e)
{
	return mmn_mmap_fixed(e->state, e->map, e->page, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, 0);
}

static const struct {
	const char *name;
	bracket_call call;
} brackets[] = {
	{ "mmn_munmap", call_munmap },
	{ "mmn_madvise", call_madvise },
	{ "mmn_mprotect", call_mprotect },
	{ "mmn_mremap", call_mremap },
	{ "mmn_punch_hole", call_punch_hole },
	{ "mmn_mmap_fixed", call_mmap_fixed },
};

static void bracket_setup(struct bracket_env *e, bool outer_running)
{
	memset(e, 0, sizeof(*e));
	e->page = (size_t)sysconf(_SC_PAGESIZE);
	e->state = NULL;
	ck_assert_int_eq(mmn_state_new(&e->state), 0);
	e->memfd = memfd_create("mmn-faults", MFD_CLOEXEC);
	ck_assert_int_ge(e->memfd, 0);
	ck_assert_int_eq(ftruncate(e->memfd, (off_t)(PAGES * e->page)), 0);
	e->map = mmap(NULL, PAGES * e->page, PROT_READ | PROT_WRITE, MAP_SHARED, e->memfd, 0);
	ck_assert_ptr_ne(e->map, MAP_FAILED);
	memset(e->map, 0x5a, PAGES * e->page);
	ck_assert_int_eq(mmn_range_sub_insert(&e->covering.rsub, e->state,
					      (uint64_t)(uintptr_t)e->map,
					      PAGES * e->page, &rec_ops), 0);
	if (!outer_running)
		return;
	/* An invalidation elsewhere that hits COVERING: seq odd, inserts defer. */
	e->outer = (struct mmn_invalidate_desc){
		.start = (uint64_t)(uintptr_t)e->map + (PAGES - 1) * e->page,
		.end = (uint64_t)(uintptr_t)e->map + PAGES * e->page,
		.event = MMN_EVENT_CLEAR,
		.flags = MMN_INVALIDATE_BLOCKABLE,
	};
	ck_assert_int_eq(mmn_invalidate_start(e->state, &e->outer), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&e->late.rsub, e->state,
					      (uint64_t)(uintptr_t)e->map, e->page, &rec_ops), 0);
	ck_assert_uint_eq(stats_of(e->state).deferred_inserts, 1);
}

static void bracket_teardown(struct bracket_env *e, bool outer_running)
{
	if (outer_running) {
		struct mmn_invalidate_desc probe = {
			.start = (uint64_t)(uintptr_t)e->map,
			.end = (uint64_t)(uintptr_t)e->map + 1,
			.event = MMN_EVENT_CLEAR,
			.flags = MMN_INVALIDATE_BLOCKABLE,
		};
		unsigned int before = e->late.calls;

		mmn_invalidate_end(e->state, &e->outer);
		assert_consistent(e->state);
		/* The deferred insert landed: the next invalidation reaches it. */
		ck_assert_int_eq(mmn_invalidate_start(e->state, &probe), 0);
		mmn_invalidate_end(e->state, &probe);
		ck_assert_uint_eq(e->late.calls, before + 1);
		mmn_range_sub_remove(&e->late.rsub);
	}
	mmn_range_sub_remove(&e->covering.rsub);
	assert_consistent(e->state);
	ck_assert_uint_eq(stats_of(e->state).range_subs, 0);
	mmn_state_free(e->state);
	munmap(e->map, PAGES * e->page);
	close(e->memfd);
}

static void bracket_faults(bool outer_running)
{
	unsigned long sites = 0;

	for (size_t b = 0; b < sizeof(brackets) / sizeof(brackets[0]); b++) {
		struct bracket_env e;
		struct mmn_stats before, after;
		uint64_t seq;
		int ret;

		bracket_setup(&e, outer_running);
		before = stats_of(e.state);
		arm(1);
		ret = brackets[b].call(&e);
		disarm();
		ck_assert_msg(fired_site && !strcmp(fired_site, "bracket syscall"),
			      "%s reached no fault point", brackets[b].name);
		sites++;
		ck_assert_msg(ret == -INJECTED_ERRNO, "%s returned %d, want %d",
			      brackets[b].name, ret, -INJECTED_ERRNO);
		after = stats_of(e.state);
		assert_same_place(&before, &after);
		assert_consistent(e.state);
		/* Memory untouched: the syscall never ran. */
		ck_assert_int_eq(e.map[0], 0x5a);
		e.map[0] = 0x5a;	/* still mapped and writable */
		ck_assert_int_eq(e.map[e.page], 0x5a);
		/* Subscribers heard it: readers retry, they do not miss it. */
		ck_assert_uint_eq(e.covering.calls, outer_running ? 2 : 1);
		if (!outer_running) {
			/* seq even again: read_begin does not wait. */
			seq = mmn_range_read_begin(&e.covering.rsub);
			ck_assert(!mmn_range_read_retry(&e.covering.rsub, seq));
			ck_assert_uint_eq(stats_of(e.state).read_begin_waits, 0);
		}
		bracket_teardown(&e, outer_running);
	}
	report(outer_running ? "brackets, around a running invalidation" : "brackets", sites);
}

START_TEST(bracket_syscall_faults)
{
	bracket_faults(false);
}
END_TEST

START_TEST(bracket_syscall_faults_deferred)
{
	bracket_faults(true);
}
END_TEST

/* ------------------------------------------------------------------------
 * The userfaultfd watcher: its allocation, syscalls and thread creation.
 */
START_TEST(uffd_watch_faults)
{
	const size_t len = 4 * (size_t)sysconf(_SC_PAGESIZE);
	struct mmn_state *state = NULL;
	unsigned long n, sites = 0;
	void *map;

	ck_assert_int_eq(mmn_state_new(&state), 0);
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);

	for (n = 1;; n++) {
		struct mmn_uffd_watch *w = (struct mmn_uffd_watch *)&n;
		int fds = count_fds();
		int ret;

		arm(n);
		ret = mmn_uffd_watch_start(state, map, len, &w);
		disarm();
		if (!fired_site) {
			if (ret == -EOPNOTSUPP || ret == -EPERM || ret == -ENOSYS) {
				printf("uffd: userfaultfd unavailable (%d): sites after it not reached\n", ret);
				break;
			}
			ck_assert_int_eq(ret, 0);
			mmn_uffd_watch_stop(w);
			ck_assert_int_eq(count_fds(), fds);
			ck_assert_uint_ge(sites, 6);	/* calloc, uffd, 2 ioctls, eventfd, thread */
			break;
		}
		sites++;
		ck_assert_msg(ret == expected_ret(fired_site),
			      "%s failed: mmn_uffd_watch_start returned %d", fired_site, ret);
		ck_assert_msg(count_fds() == fds, "%s failed: file descriptors leaked", fired_site);
		ck_assert_ptr_eq(w, (struct mmn_uffd_watch *)&n);
		assert_consistent(state);
	}
	munmap(map, len);
	mmn_state_free(state);
	report("mmn_uffd_watch_start", sites);
}
END_TEST

/*
 * A failed poll() in the watcher's thread (ENOMEM is transient) must not
 * end the watch: a registered range whose events nobody reads blocks
 * every thread that raises one (madvise, munmap) for good.
 */
struct raise_arg {
	char *addr;
	size_t len;
	int ret;
};

static void *raise_remove_event(void *p)
{
	struct raise_arg *a = p;

	a->ret = madvise(a->addr, a->len, MADV_DONTNEED);
	return NULL;
}

START_TEST(uffd_watcher_survives_poll_failure)
{
	const size_t len = 4 * (size_t)sysconf(_SC_PAGESIZE);
	struct mmn_uffd_stats st = { .size = sizeof(st) };
	struct timespec deadline, now;
	struct mmn_state *state = NULL;
	struct mmn_uffd_watch *w = NULL;
	struct raise_arg arg;
	pthread_t raiser;
	char *map;
	int ret;

	ck_assert_int_eq(mmn_state_new(&state), 0);
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	memset(map, 1, len);

	only_site = WATCHER_LOOP_SITE;
	inject_errno = ENOMEM;
	arm(1);
	ret = mmn_uffd_watch_start(state, map, len, &w);
	if (ret == -EOPNOTSUPP || ret == -EPERM || ret == -ENOSYS) {
		munmap(map, len);
		mmn_state_free(state);
		printf("uffd: userfaultfd unavailable (%d): not tested\n", ret);
		return;
	}
	ck_assert_int_eq(ret, 0);

	/* The first poll() failed, or will: then an event arrives. */
	arg = (struct raise_arg){ map, len, 0 };
	ck_assert_int_eq(pthread_create(&raiser, NULL, raise_remove_event, &arg), 0);

	/* A deadline to report a hang as a failure, not to synchronise. */
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 10;
	for (;;) {
		ck_assert_int_eq(mmn_uffd_watch_stats(w, &st), 0);
		clock_gettime(CLOCK_MONOTONIC, &now);
		/* Read, then handled: reported is counted after the invalidation. */
		if ((st.events > 0 && st.reported + st.bracketed + st.refused == st.events) ||
		    now.tv_sec > deadline.tv_sec ||
		    (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
			break;
		sched_yield();
	}
	/* Closing the userfaultfd also releases a raiser nobody served. */
	mmn_uffd_watch_stop(w);
	pthread_join(raiser, NULL);
	disarm();
	only_site = NULL;
	inject_errno = INJECTED_ERRNO;

	ck_assert_msg(__atomic_load_n(&fired_site, __ATOMIC_ACQUIRE) != NULL,
		      "the watcher's poll() was not reached");
	ck_assert_msg(st.events == 1, "after a failed poll() the watcher read %llu events in 10 s",
		      (unsigned long long)st.events);
	ck_assert_uint_eq(st.reported, 1);
	ck_assert_int_eq(arg.ret, 0);
	assert_consistent(state);
	munmap(map, len);
	mmn_state_free(state);
}
END_TEST

/* ------------------------------------------------------------------------
 * mmn_range_sub_insert: the subscriptions of one ops table share a record.
 * The state holds one; the first insert of each further ops table
 * allocates one. Failing it leaves the subscription uninserted and the
 * state as it was; later inserts of the same ops allocate nothing.
 */
static const struct mmn_range_sub_ops rec_ops2 = { .invalidate = rec_invalidate };
static const struct mmn_range_sub_ops rec_ops3 = { .invalidate = rec_invalidate };

/* Insert RSUB with OPS, the first allocation failing; expect FAILS or 0. */
static void insert_failing(struct mmn_state *state, struct mmn_range_sub *rsub,
			   uint64_t start, const struct mmn_range_sub_ops *ops, bool fails)
{
	struct mmn_stats before = stats_of(state), after;

	arm(1);
	ck_assert_int_eq(mmn_range_sub_insert(rsub, state, start, 0x1000, ops),
			 fails ? -ENOMEM : 0);
	disarm();
	if (!fails) {
		ck_assert_ptr_null(fired_site);
		return;
	}
	ck_assert_str_eq(fired_site, "calloc");
	ck_assert_ptr_null(mmn_range_sub_state(rsub));
	after = stats_of(state);
	assert_same_place(&before, &after);
	assert_consistent(state);
	/* Nothing was left half done: the same subscription inserts now. */
	ck_assert_int_eq(mmn_range_sub_insert(rsub, state, start, 0x1000, ops), 0);
	ck_assert_ptr_eq(mmn_range_sub_state(rsub), state);
}

START_TEST(range_insert_alloc_fault)
{
	struct mmn_invalidate_desc all = {
		.start = 0, .end = 0, .event = MMN_EVENT_CLEAR, .flags = MMN_INVALIDATE_BLOCKABLE,
	};
	struct rec_sub r[4] = { 0 };
	struct mmn_state *state = NULL;

	ck_assert_int_eq(mmn_state_new(&state), 0);
	insert_failing(state, &r[0].rsub, 0x1000, &rec_ops, false);	/* the state's record */
	insert_failing(state, &r[1].rsub, 0x3000, &rec_ops2, true);
	insert_failing(state, &r[2].rsub, 0x5000, &rec_ops2, false);	/* shared */
	/* A third ops table while an invalidation runs: the insert defers. */
	ck_assert_int_eq(mmn_invalidate_start(state, &all), 0);
	insert_failing(state, &r[3].rsub, 0x7000, &rec_ops3, true);
	ck_assert_uint_eq(stats_of(state).deferred_inserts, 1);
	mmn_invalidate_end(state, &all);
	assert_consistent(state);
	/* Every record reaches its subscriptions. */
	for (int i = 0; i < 4; i++)
		r[i].calls = 0;
	ck_assert_int_eq(mmn_invalidate_start(state, &all), 0);
	mmn_invalidate_end(state, &all);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(r[i].calls, 1);
	for (int i = 0; i < 4; i++) {
		mmn_range_sub_remove(&r[i].rsub);
		assert_consistent(state);
	}
	ck_assert_uint_eq(stats_of(state).range_subs, 0);
	/* The state's record is free again, for any ops table. */
	insert_failing(state, &r[0].rsub, 0x1000, &rec_ops3, false);
	insert_failing(state, &r[1].rsub, 0x3000, &rec_ops, true);
	mmn_state_free(state);	/* frees the allocated record; ASan checks */
}
END_TEST

/* ------------------------------------------------------------------------
 * The index beside the tree: its allocations fail on inserts (a full
 * queue of changes applied), on its build, at an invalidation's start
 * (the queue applied) and while the deferred list is applied. No call fails for it: the
 * walks use the tree again, and every subscription is still reached.
 */
#define IDX_SUBS 80

/* ARMED: the start's first allocation fails (applying the index's queue). */
static unsigned long all_reached_once(struct mmn_state *state, struct rec_sub *r,
				      unsigned int n, bool armed)
{
	unsigned long fired;
	const struct mmn_invalidate_desc all = {
		.start = 0, .end = 0, .event = MMN_EVENT_CLEAR, .flags = MMN_INVALIDATE_BLOCKABLE,
	};

	for (unsigned int i = 0; i < n; i++)
		r[i].calls = 0;
	arm(armed ? 1 : 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &all), 0);
	disarm();
	fired = fired_site != NULL;
	mmn_invalidate_end(state, &all);
	for (unsigned int i = 0; i < n; i++)
		ck_assert_uint_eq(r[i].calls, 1);
	assert_consistent(state);
	return fired;
}

START_TEST(index_alloc_faults)
{
	const struct mmn_invalidate_desc first = {
		.start = 0, .end = 0x1000, .event = MMN_EVENT_CLEAR,
		.flags = MMN_INVALIDATE_BLOCKABLE,
	};
	static struct rec_sub r[IDX_SUBS];
	struct mmn_state *state = NULL;
	unsigned long fired = 0;

	memset(r, 0, sizeof(r));
	ck_assert_int_eq(mmn_state_new(&state), 0);
	notifier_index_min(state, 4);
	/* Straight inserts, every other one failing its first allocation. */
	for (unsigned int i = 0; i < IDX_SUBS / 2; i++) {
		arm(i % 2 ? 1 : 0);
		ck_assert_int_eq(mmn_range_sub_insert(&r[i].rsub, state, (uint64_t)i * 0x1000,
						      0x1000, &rec_ops), 0);
		disarm();
		fired += fired_site != NULL;
		ck_assert(!fired_site || !strcmp(fired_site, "index node"));
		assert_consistent(state);
	}
	fired += all_reached_once(state, r, IDX_SUBS / 2, true);
	/* Deferred inserts, applied by the end that fails an allocation. */
	ck_assert_int_eq(mmn_invalidate_start(state, &first), 0);
	for (unsigned int i = IDX_SUBS / 2; i < IDX_SUBS; i++)
		ck_assert_int_eq(mmn_range_sub_insert(&r[i].rsub, state, (uint64_t)i * 0x1000,
						      0x1000, &rec_ops), 0);
	arm(1);
	mmn_invalidate_end(state, &first);
	disarm();
	fired += fired_site != NULL;
	assert_consistent(state);
	fired += all_reached_once(state, r, IDX_SUBS, false);
	ck_assert_uint_ge(fired, 3);
	for (unsigned int i = 0; i < IDX_SUBS; i++) {
		mmn_range_sub_remove(&r[i].rsub);
		assert_consistent(state);
	}
	mmn_state_free(state);
	report("the index beside the tree", fired);
}
END_TEST

/* ------------------------------------------------------------------------
 * mmn_sub_get: the subscriber's own allocation fails.
 */
static bool alloc_fails;
static unsigned long subs_freed;

static struct mmn_sub *alloc_sub(struct mmn_state *state)
{
	(void)state;
	return alloc_fails ? NULL : calloc(1, sizeof(struct mmn_sub));
}

static void free_sub(struct mmn_sub *sub)
{
	subs_freed++;
	free(sub);
}

static const struct mmn_sub_ops sub_ops = { .alloc_sub = alloc_sub, .free_sub = free_sub };

START_TEST(sub_get_alloc_fault)
{
	struct mmn_state *state = NULL;
	struct mmn_sub *sub = NULL, *again = NULL;
	struct mmn_stats before;

	ck_assert_int_eq(mmn_state_new(&state), 0);
	before = stats_of(state);
	alloc_fails = true;
	ck_assert_int_eq(mmn_sub_get(&sub_ops, state, &sub), -ENOMEM);
	ck_assert_ptr_null(sub);
	{
		struct mmn_stats after = stats_of(state);

		assert_same_place(&before, &after);
	}
	assert_consistent(state);
	alloc_fails = false;
	ck_assert_int_eq(mmn_sub_get(&sub_ops, state, &sub), 0);
	ck_assert_int_eq(mmn_sub_get(&sub_ops, state, &again), 0);
	ck_assert_ptr_eq(sub, again);
	mmn_sub_put(sub);
	mmn_sub_put(again);
	ck_assert_uint_eq(subs_freed, 1);
	ck_assert_uint_eq(stats_of(state).subs, 0);
	mmn_state_free(state);
}
END_TEST

static Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("every failure point in turn");

	tcase_set_timeout(tc, 60);

	tcase_add_test(tc, state_new_faults);
	tcase_add_test(tc, bracket_syscall_faults);
	tcase_add_test(tc, bracket_syscall_faults_deferred);
	tcase_add_test(tc, uffd_watch_faults);
	tcase_add_test(tc, uffd_watcher_survives_poll_failure);
	tcase_add_test(tc, sub_get_alloc_fault);
	tcase_add_test(tc, range_insert_alloc_fault);
	tcase_add_test(tc, index_alloc_faults);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(faults_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
