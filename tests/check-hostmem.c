/* SPDX-License-Identifier: MIT */
/* The brackets around memory syscalls, on real anonymous, shared and memfd memory. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include <mmn/mmn.h>

#include "testutil.h"

#define PAGES 8
#define PATTERN 0xa5

static size_t page;

/* ------------------------------------------------------------------------
 * Memory of each kind (testutil.h), each a loop index of the tests.
 */

struct region {
	int fd;			/* memfd, or -1 */
	unsigned char *base;
	size_t len;
};

static void region_map(struct region *r, enum test_mem_kind kind, size_t pages)
{
	r->len = pages * page;
	r->base = test_mem_map(kind, r->len, PATTERN, &r->fd);
	ck_assert_ptr_nonnull(r->base);
}

static void region_unmap(struct region *r)
{
	munmap(r->base, r->len);	/* may already be partly gone */
	if (r->fd >= 0)
		close(r->fd);
}

/* Whether [addr, addr + len) is mapped at all (msync fails with ENOMEM if not). */
static bool mapped(const void *addr, size_t len)
{
	return msync((void *)addr, len, MS_ASYNC) == 0;
}

/* The permission string ("rw-p") of the mapping holding ADDR, from /proc/self/maps. */
static void perms_of(const void *addr, char out[5])
{
	uintptr_t a = (uintptr_t)addr, lo, hi;
	char line[512], perms[5];
	FILE *f = fopen("/proc/self/maps", "r");

	ck_assert_ptr_nonnull(f);
	strcpy(out, "none");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && a >= lo && a < hi) {
			memcpy(out, perms, 5);
			break;
		}
	}
	fclose(f);
}

/* ------------------------------------------------------------------------
 * A subscription that records its calls and what the memory held then.
 */

struct rec_sub {
	struct mmn_range_sub rsub;
	pthread_mutex_t lock;
	int calls;
	struct mmn_invalidate_desc desc;	/* of the last call */
	const unsigned char *peek;		/* read in the callback, if set */
	int seen;				/* what *peek held then, or -1 */
	bool refuse;				/* refuse non-blockable invalidations */
};

static bool rec_invalidate(struct mmn_range_sub *rsub,
			   const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct rec_sub *r = mmn_container_of(rsub, struct rec_sub, rsub);

	if (r->refuse && !(desc->flags & MMN_INVALIDATE_BLOCKABLE))
		return false;
	pthread_mutex_lock(&r->lock);
	mmn_range_set_seq(rsub, cur_seq);
	r->calls++;
	r->desc = *desc;
	r->seen = r->peek ? *r->peek : -1;
	pthread_mutex_unlock(&r->lock);
	return true;
}

static const struct mmn_range_sub_ops rec_ops = { .invalidate = rec_invalidate };

static void rec_insert(struct rec_sub *r, struct mmn_state *state,
		       const void *addr, size_t len)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->seen = -1;
	ck_assert_int_eq(mmn_range_sub_insert(&r->rsub, state, (uintptr_t)addr, len,
					      &rec_ops), 0);
}

static struct mmn_stats stats_of(struct mmn_state *state)
{
	struct mmn_stats s = { .size = sizeof(s) };

	ck_assert_int_eq(mmn_state_stats(state, &s), 0);
	return s;
}

/* Nothing is left running: every start had its end, seq is even again. */
static void assert_quiet(struct mmn_state *state)
{
	struct mmn_stats s = stats_of(state);

	ck_assert_uint_eq(s.active_invalidations, 0);
	ck_assert_uint_eq(s.invalidations_started, s.invalidations_ended);
}

static void assert_desc(const struct rec_sub *r, enum mmn_event event,
			const void *start, size_t len)
{
	ck_assert_int_eq(r->calls, 1);
	ck_assert_int_eq(r->desc.event, event);
	ck_assert_uint_eq(r->desc.start, (uintptr_t)start);
	ck_assert_uint_eq(r->desc.end, (uintptr_t)start + len);
	ck_assert(r->desc.flags & MMN_INVALIDATE_BLOCKABLE);
	ck_assert(!(r->desc.flags & MMN_INVALIDATE_AFTER));
}

/*
 * The common setup: a region of PAGES pages; 'hit' subscribes to pages
 * [2, 4), where the bracket acts, and peeks at page 2; 'beside' to the
 * pages just before and after (not touched); 'far' to another region.
 */
struct scene {
	struct mmn_state *state;
	struct region mem, other;
	struct rec_sub hit, before, after, far;
	unsigned char *target;		/* page 2 */
	size_t target_len;		/* 2 pages */
};

static void scene_setup(struct scene *s, enum test_mem_kind kind)
{
	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(mmn_state_new(&s->state), 0);
	region_map(&s->mem, kind, PAGES);
	region_map(&s->other, kind, 2);
	s->target = s->mem.base + 2 * page;
	s->target_len = 2 * page;
	rec_insert(&s->hit, s->state, s->target, s->target_len);
	rec_insert(&s->before, s->state, s->mem.base + page, page);
	rec_insert(&s->after, s->state, s->mem.base + 4 * page, page);
	rec_insert(&s->far, s->state, s->other.base, s->other.len);
	s->hit.peek = s->target;
}

static void scene_check_others_untouched(const struct scene *s)
{
	ck_assert_int_eq(s->before.calls, 0);
	ck_assert_int_eq(s->after.calls, 0);
	ck_assert_int_eq(s->far.calls, 0);
}

static void scene_teardown(struct scene *s)
{
	mmn_range_sub_remove(&s->hit.rsub);
	mmn_range_sub_remove(&s->before.rsub);
	mmn_range_sub_remove(&s->after.rsub);
	mmn_range_sub_remove(&s->far.rsub);
	assert_quiet(s->state);
	mmn_state_free(s->state);
	region_unmap(&s->mem);
	region_unmap(&s->other);
}

/* The target was told CLEAR while it still held data, and is zero now. */
static void assert_cleared(const struct scene *s)
{
	assert_desc(&s->hit, MMN_EVENT_CLEAR, s->target, s->target_len);
	ck_assert_int_eq(s->hit.seen, PATTERN);
	ck_assert_int_eq(s->target[0], 0);
	ck_assert_int_eq(s->target[s->target_len - 1], 0);
	ck_assert_int_eq(s->mem.base[4 * page], PATTERN);
	scene_check_others_untouched(s);
}

/* ------------------------------------------------------------------------
 * Each bracket: called before the change, right event and range.
 */

START_TEST(munmap_bracket)
{
	struct scene s;

	scene_setup(&s, (enum test_mem_kind)_i);
	ck_assert_int_eq(mmn_munmap(s.state, s.target, s.target_len, 0), 0);
	assert_desc(&s.hit, MMN_EVENT_UNMAP, s.target, s.target_len);
	ck_assert_int_eq(s.hit.seen, PATTERN);	/* still mapped during the callback */
	ck_assert(!mapped(s.target, s.target_len));
	ck_assert(mapped(s.mem.base + 4 * page, page));
	scene_check_others_untouched(&s);
	scene_teardown(&s);
}
END_TEST

START_TEST(madvise_bracket)
{
	const enum test_mem_kind kind = (enum test_mem_kind)_i;
	/* DONTNEED drops private pages; shared ones need REMOVE to lose data. */
	const int advice = kind == TEST_MEM_PRIVATE ? MADV_DONTNEED : MADV_REMOVE;
	struct scene s;

	scene_setup(&s, kind);
	ck_assert_int_eq(mmn_madvise(s.state, s.target, s.target_len, advice, 0), 0);
	assert_cleared(&s);
	scene_teardown(&s);
}
END_TEST

START_TEST(madvise_harmless_advice_invalidates_nothing)
{
	struct scene s;

	scene_setup(&s, (enum test_mem_kind)_i);
	ck_assert_int_eq(mmn_madvise(s.state, s.target, s.target_len, MADV_WILLNEED, 0), 0);
	ck_assert_int_eq(mmn_madvise(s.state, s.target, s.target_len, MADV_SEQUENTIAL, 0), 0);
	ck_assert_int_eq(s.hit.calls, 0);
	ck_assert_uint_eq(stats_of(s.state).invalidations_started, 0);
	scene_check_others_untouched(&s);
	scene_teardown(&s);
}
END_TEST

START_TEST(mprotect_bracket)
{
	struct scene s;
	char perms[5];

	scene_setup(&s, (enum test_mem_kind)_i);
	ck_assert_int_eq(mmn_mprotect(s.state, s.target, s.target_len, PROT_READ, 0), 0);
	assert_desc(&s.hit, MMN_EVENT_PROTECTION_VMA, s.target, s.target_len);
	perms_of(s.target, perms);
	ck_assert_msg(perms[0] == 'r' && perms[1] == '-', "perms now %s", perms);
	perms_of(s.mem.base, perms);
	ck_assert_msg(perms[1] == 'w', "page 0 perms now %s", perms);
	ck_assert_int_eq(s.target[0], PATTERN);
	scene_check_others_untouched(&s);
	scene_teardown(&s);
}
END_TEST

START_TEST(mremap_bracket_fixed)
{
	struct scene s;
	struct rec_sub dest_sub;
	unsigned char *dest;
	void *to;

	scene_setup(&s, (enum test_mem_kind)_i);
	/* A destination that is mapped, so the move replaces it. */
	dest = mmap(NULL, s.target_len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(dest, MAP_FAILED);
	memset(dest, 0x5a, s.target_len);
	rec_insert(&dest_sub, s.state, dest, s.target_len);
	dest_sub.peek = dest;

	to = dest;
	ck_assert_int_eq(mmn_mremap(s.state, s.target, s.target_len, s.target_len,
				    MREMAP_MAYMOVE | MREMAP_FIXED, &to, 0), 0);
	ck_assert_ptr_eq(to, dest);
	assert_desc(&s.hit, MMN_EVENT_REMAP, s.target, s.target_len);
	ck_assert_uint_eq(s.hit.desc.remap_to, (uintptr_t)dest);
	ck_assert_int_eq(s.hit.seen, PATTERN);
	/* The replaced destination hears an UNMAP, before its old data goes. */
	assert_desc(&dest_sub, MMN_EVENT_UNMAP, dest, s.target_len);
	ck_assert_int_eq(dest_sub.seen, 0x5a);
	ck_assert_int_eq(dest[0], PATTERN);	/* the data moved */
	ck_assert(!mapped(s.target, s.target_len));
	scene_check_others_untouched(&s);

	mmn_range_sub_remove(&dest_sub.rsub);
	munmap(dest, s.target_len);
	scene_teardown(&s);
}
END_TEST

START_TEST(mremap_bracket_grow)
{
	struct scene s;
	void *to = NULL;

	scene_setup(&s, (enum test_mem_kind)_i);
	/* Grow the whole region: the kernel may move it, remap_to is unknown at the start. */
	ck_assert_int_eq(mmn_mremap(s.state, s.mem.base, s.mem.len, 4 * s.mem.len,
				    MREMAP_MAYMOVE, &to, 0), 0);
	ck_assert_ptr_nonnull(to);
	ck_assert_int_eq(s.hit.calls, 1);
	ck_assert_int_eq(s.hit.desc.event, MMN_EVENT_REMAP);
	ck_assert_uint_eq(s.hit.desc.start, (uintptr_t)s.mem.base);
	ck_assert_uint_eq(s.hit.desc.end, (uintptr_t)s.mem.base + s.mem.len);
	ck_assert_uint_eq(s.hit.desc.remap_to, 0);
	ck_assert_int_eq(s.before.calls, 1);
	ck_assert_int_eq(s.after.calls, 1);
	ck_assert_int_eq(s.far.calls, 0);
	ck_assert_int_eq(((unsigned char *)to)[2 * page], PATTERN);
	s.mem.base = to;
	s.mem.len *= 4;
	scene_teardown(&s);
}
END_TEST

START_TEST(punch_hole_bracket)
{
	struct scene s;

	scene_setup(&s, TEST_MEM_MEMFD);
	ck_assert_int_eq(mmn_punch_hole(s.state, s.mem.fd, (off_t)(2 * page),
					(off_t)s.target_len, s.target, 0), 0);
	assert_cleared(&s);
	scene_teardown(&s);
}
END_TEST

START_TEST(mmap_fixed_bracket)
{
	struct scene s;

	scene_setup(&s, (enum test_mem_kind)_i);
	ck_assert_int_eq(mmn_mmap_fixed(s.state, s.target, s.target_len,
					PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
					-1, 0, 0), 0);
	assert_desc(&s.hit, MMN_EVENT_UNMAP, s.target, s.target_len);
	ck_assert_int_eq(s.hit.seen, PATTERN);
	ck_assert_int_eq(s.target[0], 0);	/* fresh memory */
	scene_check_others_untouched(&s);
	scene_teardown(&s);
}
END_TEST

/* A length that is not a page multiple is rounded up, like the kernel does. */
START_TEST(length_rounds_up_to_pages)
{
	struct scene s;

	scene_setup(&s, TEST_MEM_PRIVATE);
	ck_assert_int_eq(mmn_munmap(s.state, s.target, page + 1, 0), 0);
	assert_desc(&s.hit, MMN_EVENT_UNMAP, s.target, 2 * page);
	scene_teardown(&s);
}
END_TEST

/* ------------------------------------------------------------------------
 * Refusals, failures and bad arguments.
 */

/* Each bracket, non-blockable, against a subscriber that refuses. */
static int nonblock_call(int which, struct scene *s, void **to)
{
	switch (which) {
	case 0: return mmn_munmap(s->state, s->target, s->target_len, MMN_NONBLOCK);
	case 1: return mmn_madvise(s->state, s->target, s->target_len, MADV_REMOVE, MMN_NONBLOCK);
	case 2: return mmn_mprotect(s->state, s->target, s->target_len, PROT_NONE, MMN_NONBLOCK);
	case 3: return mmn_mremap(s->state, s->target, s->target_len, 8 * s->target_len,
				  MREMAP_MAYMOVE, to, MMN_NONBLOCK);
	case 4: return mmn_punch_hole(s->state, s->mem.fd, (off_t)(2 * page),
				      (off_t)s->target_len, s->target, MMN_NONBLOCK);
	default: return mmn_mmap_fixed(s->state, s->target, s->target_len, PROT_READ,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, MMN_NONBLOCK);
	}
}

START_TEST(nonblock_refusal_leaves_memory_untouched)
{
	struct scene s;
	void *to = NULL;
	char perms[5];

	scene_setup(&s, TEST_MEM_MEMFD);
	s.hit.refuse = true;
	ck_assert_int_eq(nonblock_call(_i, &s, &to), -EAGAIN);
	ck_assert_int_eq(s.hit.calls, 0);
	ck_assert_ptr_null(to);
	ck_assert(mapped(s.target, s.target_len));
	perms_of(s.target, perms);
	ck_assert_msg(perms[0] == 'r' && perms[1] == 'w', "perms now %s", perms);
	for (size_t i = 0; i < s.target_len; i += page / 4)
		ck_assert_int_eq(s.target[i], PATTERN);
	ck_assert_uint_eq(stats_of(s.state).invalidations_refused, 1);
	assert_quiet(s.state);

	/* Blockable, the same call goes through: the refusal was not sticky. */
	s.hit.refuse = false;
	ck_assert_int_eq(mmn_munmap(s.state, s.target, s.target_len, 0), 0);
	ck_assert_int_eq(s.hit.calls, 1);
	scene_teardown(&s);
}
END_TEST

/* A refused destination leaves the source in place too. */
START_TEST(mremap_refused_destination)
{
	struct scene s;
	void *to;

	scene_setup(&s, TEST_MEM_PRIVATE);
	s.after.refuse = true;	/* page 4 is the destination */
	to = s.mem.base + 4 * page;
	ck_assert_int_eq(mmn_mremap(s.state, s.target, s.target_len, s.target_len,
				    MREMAP_MAYMOVE | MREMAP_FIXED, &to, MMN_NONBLOCK), -EAGAIN);
	ck_assert_int_eq(s.hit.calls, 1);	/* told, then nothing happened: it retries */
	ck_assert_int_eq(s.target[0], PATTERN);
	ck_assert_int_eq(s.mem.base[4 * page], PATTERN);
	assert_quiet(s.state);
	scene_teardown(&s);
}
END_TEST

/* The syscall fails after the invalidation started: it still ends. */
START_TEST(syscall_failure_still_ends)
{
	struct scene s;
	int pipefd[2];
	uint64_t seq;
	void *to;

	scene_setup(&s, TEST_MEM_PRIVATE);
	seq = mmn_range_read_begin(&s.hit.rsub);

	/* MADV_REMOVE is refused for private anonymous memory. */
	ck_assert_int_eq(mmn_madvise(s.state, s.target, s.target_len, MADV_REMOVE, 0), -EINVAL);
	ck_assert_int_eq(s.hit.calls, 1);
	ck_assert(mmn_range_read_retry(&s.hit.rsub, seq));
	assert_quiet(s.state);

	/* fallocate on the write end of a pipe: ESPIPE. */
	ck_assert_int_eq(pipe(pipefd), 0);
	ck_assert_int_eq(mmn_punch_hole(s.state, pipefd[1], 0, (off_t)page, s.target, 0),
			 -ESPIPE);
	ck_assert_int_eq(s.hit.calls, 2);
	close(pipefd[0]);
	close(pipefd[1]);

	/* MREMAP_FIXED without MREMAP_MAYMOVE: EINVAL from the kernel. */
	to = s.other.base;
	ck_assert_int_eq(mmn_mremap(s.state, s.target, s.target_len, s.target_len,
				    MREMAP_FIXED, &to, 0), -EINVAL);
	ck_assert_int_eq(s.hit.calls, 3);
	ck_assert_ptr_eq(to, s.other.base);

	/* Nothing stays odd: a reader gets through without waiting. */
	seq = mmn_range_read_begin(&s.hit.rsub);
	ck_assert(!mmn_range_read_retry(&s.hit.rsub, seq));
	ck_assert_uint_eq(stats_of(s.state).read_begin_waits, 0);
	assert_quiet(s.state);
	ck_assert_int_eq(s.target[0], PATTERN);
	scene_teardown(&s);
}
END_TEST

START_TEST(bad_arguments_invalidate_nothing)
{
	const uintptr_t top = UINTPTR_MAX - (page - 1);	/* the last page */
	struct scene s;
	void *to = NULL;

	scene_setup(&s, TEST_MEM_PRIVATE);
	ck_assert_int_eq(mmn_munmap(s.state, s.target + 1, page, 0), -EINVAL);
	ck_assert_int_eq(mmn_munmap(s.state, s.target, 0, 0), -EINVAL);
	ck_assert_int_eq(mmn_munmap(NULL, s.target, page, 0), -EINVAL);
	ck_assert_int_eq(mmn_munmap(s.state, s.target, page, 0x80), -EINVAL);
	ck_assert_int_eq(mmn_munmap(s.state, (void *)top, 2 * page, 0), -EOVERFLOW);
	ck_assert_int_eq(mmn_munmap(s.state, s.target, SIZE_MAX, 0), -EOVERFLOW);
	ck_assert_int_eq(mmn_madvise(s.state, s.target + 8, page, MADV_DONTNEED, 0), -EINVAL);
	ck_assert_int_eq(mmn_madvise(NULL, s.target, page, MADV_WILLNEED, 0), -EINVAL);
	ck_assert_int_eq(mmn_mprotect(s.state, (void *)top, 2 * page, PROT_READ, 0),
			 -EOVERFLOW);
	ck_assert_int_eq(mmn_mremap(s.state, s.target, page, page, 0, NULL, 0), -EINVAL);
	ck_assert_int_eq(mmn_mremap(s.state, s.target, page, 0, 0, &to, 0), -EINVAL);
	to = s.target + 1;
	ck_assert_int_eq(mmn_mremap(s.state, s.target, page, page,
				    MREMAP_MAYMOVE | MREMAP_FIXED, &to, 0), -EINVAL);
	ck_assert_int_eq(mmn_punch_hole(s.state, -1, 0, (off_t)page, s.target, 0), -EINVAL);
	ck_assert_int_eq(mmn_punch_hole(s.state, 0, 1, (off_t)page, s.target, 0), -EINVAL);
	ck_assert_int_eq(mmn_punch_hole(s.state, 0, 0, 0, s.target, 0), -EINVAL);
	ck_assert_int_eq(mmn_mmap_fixed(s.state, s.target + 1, page, PROT_READ,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, 0), -EINVAL);

	ck_assert_int_eq(s.hit.calls, 0);
	ck_assert_uint_eq(stats_of(s.state).invalidations_started, 0);
	ck_assert_int_eq(s.target[0], PATTERN);
	scene_check_others_untouched(&s);
	scene_teardown(&s);
}
END_TEST

/* ------------------------------------------------------------------------
 * The protocol across a bracket, with real threads.
 *
 * A translation cache holds a pointer into a region that a mover thread
 * keeps moving between two halves of a span with mmn_mremap(); after each
 * move the mover maps poison where the data was. Readers fill the cache
 * with read_begin / translate / lock / read_retry and read through it under
 * the lock. A reader that ever reads poison used a stale translation.
 * Like a VMM's slot table, 'where' is updated inside the invalidation.
 */

struct mover_scene {
	struct mmn_state *state;
	struct mmn_range_sub rsub;	/* over the whole span */
	pthread_mutex_t lock;		/* the cache lock */
	unsigned char *cached;		/* lock: the translation, or NULL */
	unsigned char *_Atomic where;	/* the "page table": where the data is now */
	unsigned char *span;		/* two halves of 'half' bytes */
	size_t half;
	atomic_bool stop;
	atomic_ulong fills, retries, reads;
	struct test_failures failures;
};

#define POISON 0xde

static bool mover_invalidate(struct mmn_range_sub *rsub,
			     const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	struct mover_scene *m = mmn_container_of(rsub, struct mover_scene, rsub);

	pthread_mutex_lock(&m->lock);
	mmn_range_set_seq(rsub, cur_seq);
	m->cached = NULL;
	if (desc->event == MMN_EVENT_REMAP)
		atomic_store(&m->where, (unsigned char *)(uintptr_t)desc->remap_to);
	pthread_mutex_unlock(&m->lock);
	return true;
}

static const struct mmn_range_sub_ops mover_ops = { .invalidate = mover_invalidate };

static void *mover_reader(void *arg)
{
	struct mover_scene *m = arg;

	while (!atomic_load(&m->stop)) {
		uint64_t seq = mmn_range_read_begin(&m->rsub);
		unsigned char *hva = atomic_load(&m->where);	/* translate */

		pthread_mutex_lock(&m->lock);
		if (mmn_range_read_retry(&m->rsub, seq)) {
			pthread_mutex_unlock(&m->lock);
			atomic_fetch_add(&m->retries, 1);
			continue;
		}
		m->cached = hva;
		atomic_fetch_add(&m->fills, 1);
		/* Use the cache as a device would, still under the lock. */
		if (m->cached[0] != PATTERN || m->cached[m->half - 1] != PATTERN)
			test_fail(&m->failures, "read %#x through a stale translation %p",
				  m->cached[0], (void *)m->cached);
		atomic_fetch_add(&m->reads, 1);
		pthread_mutex_unlock(&m->lock);
	}
	return NULL;
}

START_TEST(readers_never_use_stale_translation)
{
	struct mover_scene *m = calloc(1, sizeof(*m));
	const unsigned int moves = 2000;
	pthread_t readers[2];

	ck_assert_ptr_nonnull(m);
	m->failures = (struct test_failures)TEST_FAILURES_INIT;
	pthread_mutex_init(&m->lock, NULL);
	m->half = 4 * page;
	m->span = mmap(NULL, 2 * m->half, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(m->span, MAP_FAILED);
	memset(m->span, PATTERN, m->half);
	memset(m->span + m->half, POISON, m->half);
	atomic_store(&m->where, m->span);
	ck_assert_int_eq(mmn_state_new(&m->state), 0);
	ck_assert_int_eq(mmn_range_sub_insert(&m->rsub, m->state, (uintptr_t)m->span,
					      2 * m->half, &mover_ops), 0);

	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&readers[i], NULL, mover_reader, m), 0);

	for (unsigned int i = 0; i < moves; i++) {
		unsigned char *from = atomic_load(&m->where);
		void *to = from == m->span ? m->span + m->half : m->span;
		int ret;

		ret = mmn_mremap(m->state, from, m->half, m->half,
				 MREMAP_MAYMOVE | MREMAP_FIXED, &to, 0);
		if (ret || atomic_load(&m->where) != to) {
			test_fail(&m->failures, "mmn_mremap: %d, data now at %p, not %p", ret,
				  (void *)atomic_load(&m->where), to);
			break;
		}
		/* Poison where the data was: a stale reader sees it instead of crashing. */
		if (mmap(from, m->half, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
			test_fail(&m->failures, "poison mmap: %d", errno);
			break;
		}
		memset(from, POISON, m->half);
		/* Let the readers in between moves on a 2-core machine. */
		if (i % 16 == 0)
			sched_yield();
	}
	atomic_store(&m->stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(readers[i], NULL);

	ck_assert_msg(m->failures.count == 0, "%lu failures, first: %s",
		      m->failures.count, m->failures.first);
	ck_assert_uint_gt(atomic_load(&m->reads), 0);
	ck_assert_uint_eq(stats_of(m->state).invalidations_started, 2 * moves);
	mmn_range_sub_remove(&m->rsub);
	assert_quiet(m->state);
	mmn_state_free(m->state);
	munmap(m->span, 2 * m->half);
	free(m);
}
END_TEST

/* ------------------------------------------------------------------------
 * Every madvise advice against what the kernel does to the pages.
 */

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* The frame backing ADDR, or 0 when it cannot be read (no privilege, not present). */
static uint64_t pfn_of(const void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)addr / page * sizeof(e))) != sizeof(e))
		e = 0;
	close(fd);
	return (e >> 63) ? e & ((1ull << 55) - 1) : 0;
}

/*
 * Advice that replaces the pages under a translation (same contents,
 * other memory) is announced as MIGRATE before the change, whether or not
 * the kernel then manages it.
 */
static void assert_migrate_told(struct rec_sub *r, const void *addr, size_t len)
{
	ck_assert_msg(r->calls == 1, "%d calls", r->calls);
	ck_assert_int_eq(r->desc.event, MMN_EVENT_MIGRATE);
	ck_assert_uint_eq(r->desc.start, (uintptr_t)addr);
	ck_assert_uint_eq(r->desc.end, (uintptr_t)addr + len);
	ck_assert(!(r->desc.flags & MMN_INVALIDATE_AFTER));
}

START_TEST(madvise_collapse_announced)
{
	const size_t huge = 2u << 20;
	struct mmn_state *state;
	unsigned char *raw, *p;
	struct rec_sub r;
	uint64_t before, after;
	bool was_huge;
	int ret;

	/* A huge-page-aligned stretch of small pages with data in them. */
	raw = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(raw, MAP_FAILED);
	p = (unsigned char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
	madvise(p, huge, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < huge; i += page)
		p[i] = (unsigned char)(i / page + 1);
	madvise(p, huge, MADV_HUGEPAGE);
	before = pfn_of(p);
	/* Some runtimes get a huge page anyway: then there is nothing to collapse. */
	was_huge = before && before % (huge / page) == 0 &&
		   pfn_of(p + huge - page) == before + huge / page - 1;

	ck_assert_int_eq(mmn_state_new(&state), 0);
	rec_insert(&r, state, p, huge);
	r.peek = p;
	ret = mmn_madvise(state, p, huge, MADV_COLLAPSE, 0);
	after = pfn_of(p);
	assert_migrate_told(&r, p, huge);
	ck_assert_int_eq(r.seen, 1);
	ck_assert_int_eq(p[5 * page], 6);
	/* Where the kernel collapsed and the frames can be read: they did change. */
	if (ret == 0 && before && after && !was_huge)
		ck_assert_uint_ne(before, after);
	mmn_range_sub_remove(&r.rsub);
	assert_quiet(state);
	mmn_state_free(state);
	munmap(raw, 2 * huge);
}
END_TEST

/* A write fault over the zero page (or a shared COW page) gives a new page. */
START_TEST(madvise_populate_write_announced)
{
	struct mmn_state *state;
	volatile unsigned char *p;
	struct rec_sub r;
	uint64_t before, after;
	int ret;

	p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne((void *)p, MAP_FAILED);
	ck_assert_int_eq(p[0], 0);	/* read fault: the zero page */
	before = pfn_of((const void *)p);
	ck_assert_int_eq(mmn_state_new(&state), 0);
	rec_insert(&r, state, (const void *)p, 2 * page);
	ret = mmn_madvise(state, (void *)p, 2 * page, MADV_POPULATE_WRITE, 0);
	after = pfn_of((const void *)p);
	assert_migrate_told(&r, (const void *)p, 2 * page);
	if (ret == 0 && before && after)
		ck_assert_uint_ne(before, after);
	mmn_range_sub_remove(&r.rsub);
	assert_quiet(state);
	mmn_state_free(state);
	munmap((void *)p, 2 * page);
}
END_TEST

START_TEST(madvise_unmergeable_announced)
{
	struct scene s;

	scene_setup(&s, TEST_MEM_PRIVATE);
	mmn_madvise(s.state, s.target, s.target_len, MADV_UNMERGEABLE, 0);
	assert_migrate_told(&s.hit, s.target, s.target_len);
	ck_assert_int_eq(s.target[0], PATTERN);
	scene_check_others_untouched(&s);
	scene_teardown(&s);
}
END_TEST

/* Advice the kernel does not know (yet) may drop pages: announced as CLEAR. */
START_TEST(madvise_unknown_advice_announced)
{
	struct scene s;

	scene_setup(&s, TEST_MEM_PRIVATE);
	ck_assert_int_eq(mmn_madvise(s.state, s.target, s.target_len, 99, 0), -EINVAL);
	ck_assert_int_eq(s.hit.calls, 1);
	ck_assert_int_eq(s.hit.desc.event, MMN_EVENT_CLEAR);
	scene_check_others_untouched(&s);
	scene_teardown(&s);
}
END_TEST

/*
 * Advice that changes no translation now: hints, flags for later (ksmd
 * and khugepaged act on their own), fork behaviour, ageing, and populating
 * pages that were not there. Whether the kernel accepts it does not
 * matter here.
 */
START_TEST(madvise_advice_without_translation_change)
{
	static const int advice[] = {
		MADV_NORMAL, MADV_RANDOM, MADV_DONTFORK, MADV_DOFORK, MADV_MERGEABLE,
		MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP,
		MADV_WIPEONFORK, MADV_KEEPONFORK, 20 /* COLD */, MADV_POPULATE_READ,
		103 /* GUARD_REMOVE */,
	};
	struct scene s;

	scene_setup(&s, (enum test_mem_kind)_i);
	for (size_t i = 0; i < sizeof(advice) / sizeof(advice[0]); i++) {
		mmn_madvise(s.state, s.target, s.target_len, advice[i], 0);
		ck_assert_msg(s.hit.calls == 0, "advice %d invalidated", advice[i]);
	}
	ck_assert_uint_eq(stats_of(s.state).invalidations_started, 0);
	ck_assert_int_eq(s.target[0], PATTERN);
	scene_check_others_untouched(&s);
	scene_teardown(&s);
}
END_TEST

/* ------------------------------------------------------------------------
 * mremap: the end of the invalidation says where the range went.
 */

struct end_sub {
	struct mmn_sub sub;
	pthread_mutex_t lock;
	int ends;
	struct mmn_invalidate_desc last;	/* of the last REMAP end */
};

static void end_sub_end(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	struct end_sub *e = mmn_container_of(sub, struct end_sub, sub);

	pthread_mutex_lock(&e->lock);
	if (desc->event == MMN_EVENT_REMAP) {
		e->ends++;
		e->last = *desc;
	}
	pthread_mutex_unlock(&e->lock);
}

static const struct mmn_sub_ops end_sub_ops = { .invalidate_end = end_sub_end };

START_TEST(mremap_end_tells_destination)
{
	const bool fixed = _i == 1;
	struct end_sub e = { .sub = { .ops = &end_sub_ops } };
	struct scene s;
	void *to = NULL;

	scene_setup(&s, TEST_MEM_PRIVATE);
	pthread_mutex_init(&e.lock, NULL);
	ck_assert_int_eq(mmn_sub_register(&e.sub, s.state), 0);
	if (fixed) {
		to = s.other.base;
		ck_assert_int_eq(mmn_mremap(s.state, s.mem.base, page, page,
					    MREMAP_MAYMOVE | MREMAP_FIXED, &to, 0), 0);
		ck_assert_ptr_eq(to, s.other.base);
		s.other.len = page;	/* the rest of it is still there */
		munmap(s.other.base + page, page);
	} else {
		/* Grown fourfold: where the kernel puts it is known only at the end. */
		ck_assert_int_eq(mmn_mremap(s.state, s.mem.base, s.mem.len, 4 * s.mem.len,
					    MREMAP_MAYMOVE, &to, 0), 0);
		s.mem.base = to;
		s.mem.len *= 4;
	}
	ck_assert_int_eq(e.ends, 1);
	ck_assert_msg(e.last.remap_to == (uintptr_t)to, "end said %#llx, the range is at %p",
		      (unsigned long long)e.last.remap_to, to);
	mmn_sub_unregister(&e.sub, s.state);
	scene_teardown(&s);
}
END_TEST

static Suite *hostmem_suite(void)
{
	Suite *s = suite_create("hostmem");
	TCase *tc;

	tc = tcase_create("brackets");
	tcase_add_loop_test(tc, munmap_bracket, 0, TEST_MEM_KINDS);
	tcase_add_loop_test(tc, madvise_bracket, 0, TEST_MEM_KINDS);
	tcase_add_loop_test(tc, madvise_harmless_advice_invalidates_nothing, 0, TEST_MEM_KINDS);
	tcase_add_loop_test(tc, mprotect_bracket, 0, TEST_MEM_KINDS);
	tcase_add_loop_test(tc, mremap_bracket_fixed, 0, TEST_MEM_KINDS);
	tcase_add_loop_test(tc, mremap_bracket_grow, 0, TEST_MEM_KINDS);
	tcase_add_test(tc, punch_hole_bracket);
	tcase_add_loop_test(tc, mmap_fixed_bracket, 0, TEST_MEM_KINDS);
	tcase_add_test(tc, length_rounds_up_to_pages);
	suite_add_tcase(s, tc);

	tc = tcase_create("advice");
	tcase_add_test(tc, madvise_collapse_announced);
	tcase_add_test(tc, madvise_populate_write_announced);
	tcase_add_test(tc, madvise_unmergeable_announced);
	tcase_add_test(tc, madvise_unknown_advice_announced);
	tcase_add_loop_test(tc, madvise_advice_without_translation_change, 0, TEST_MEM_KINDS);
	suite_add_tcase(s, tc);

	tc = tcase_create("remap destination");
	tcase_add_loop_test(tc, mremap_end_tells_destination, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("refusals and failures");
	tcase_add_loop_test(tc, nonblock_refusal_leaves_memory_untouched, 0, 6);
	tcase_add_test(tc, mremap_refused_destination);
	tcase_add_test(tc, syscall_failure_still_ends);
	tcase_add_test(tc, bad_arguments_invalidate_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("protocol");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, readers_never_use_stale_translation);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	page = (size_t)sysconf(_SC_PAGESIZE);
	sr = srunner_create(hostmem_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
