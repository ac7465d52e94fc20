/* SPDX-License-Identifier: MIT */
/*
 * The shadow map; see shadow.h.
 *
 * Readers take no lock. A section claims a reader slot with one
 * compare-and-swap (state odd), reads its block's slot under the slot's
 * sequence count, runs the access and releases the slot (state even).
 * Writers (fills, invalidations) hold the map's mutex. An invalidation
 * unpublishes entries with plain stores, then issues a full fence and
 * waits for every reader slot it saw odd to change: the reader's CAS and
 * the writer's fence order the two sides, so a section either misses the
 * unpublished entry or is seen running and waited for.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/shadow.h"

#define PAGES_PER_BLOCK	(SHADOW_BLOCK / SHADOW_PAGE)
#define BLOCK_SHIFT	21
#define PAGE_SHIFT	12

/* Flags in a slot's key (beside the block number) and in a page's flags. */
#define E_VALID		1u
#define E_WRITABLE	2u
#define E_PAGES		4u	/* key only: val is a struct shadow_pages */

/* A block split into pages; a page is valid when its flags say so. */
struct shadow_pages {
	atomic_uintptr_t hva[PAGES_PER_BLOCK];
	atomic_uchar flags[PAGES_PER_BLOCK];
	unsigned int count;		/* lock: valid pages */
	struct shadow_pages *next;	/* lock: on the retired list */
};

struct mark {
	struct mmn_itree_node node;	/* [gpa, last gpa] */
};

#define MARK(n) mmn_container_of(n, struct mark, node)

static void count(atomic_uint_least64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* For counters written under the lock only: no read-modify-write needed. */
static void add_locked(atomic_uint_least64_t *c, int64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)n,
			      memory_order_relaxed);
}

/*
 * The writers' lock: held briefly (a fill's piece of at most 64 KiB at
 * most), never while waiting for readers, so spinning is short; one
 * atomic exchange to take, a store to release.
 */
static bool wlock_try(struct shadow_map *sm)
{
	return !atomic_load_explicit(&sm->wlock, memory_order_relaxed) &&
	       !atomic_exchange_explicit(&sm->wlock, true, memory_order_acquire);
}

static void wlock(struct shadow_map *sm)
{
	for (unsigned int spin = 0; !wlock_try(sm); spin++)
		if (spin >= 64)
			sched_yield();
}

static void wunlock(struct shadow_map *sm)
{
	atomic_store_explicit(&sm->wlock, false, memory_order_release);
}

static inline struct shadow_slot *slot_of(struct shadow_map *sm, uint64_t block)
{
	return &sm->slots[(block * 0x9e3779b97f4a7c15ull) >> (64 - 10)];
}

_Static_assert(SHADOW_SLOTS == 1u << 10, "slot_of() hashes to 10 bits");

/* ------------------------------------------------------------------------
 * Readers
 */

struct section {
	struct shadow_reader *r;
	uint64_t state;		/* odd, ours */
};

/* Busy slots: try the others, in turn. */
static void __attribute__((noinline)) section_enter_slow(struct shadow_map *sm, struct section *s,
							 unsigned int i)
{
	for (unsigned int tries = 1;; tries++) {
		struct shadow_reader *r = &sm->readers[i = (i + 1) % SHADOW_READERS];
		uint64_t st = atomic_load_explicit(&r->state, memory_order_relaxed);

		if (!(st & 1) && atomic_compare_exchange_strong_explicit(
					 &r->state, &st, st + 1, memory_order_seq_cst,
					 memory_order_relaxed)) {
			s->r = r;
			s->state = st + 1;
			return;
		}
		if (tries % SHADOW_READERS == 0)
			sched_yield();	/* every slot busy */
	}
}

static inline __attribute__((always_inline)) void section_enter(struct shadow_map *sm,
								  struct section *s)
{
	/* Threads' stacks lie megabytes apart: a per-thread slot without TLS. */
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	unsigned int i = (unsigned int)((sp >> 20) ^ (sp >> 24)) % SHADOW_READERS;
	struct shadow_reader *r = &sm->readers[i];
	uint64_t st = atomic_load_explicit(&r->state, memory_order_relaxed);

	/* seq_cst: ordered before the slot reads, against the writer's fence. */
	if (__builtin_expect(!(st & 1), 1) &&
	    __builtin_expect(atomic_compare_exchange_strong_explicit(&r->state, &st, st + 1,
								     memory_order_seq_cst,
								     memory_order_relaxed), 1)) {
		s->r = r;
		s->state = st + 1;
		return;
	}
	section_enter_slow(sm, s, i);
}

static inline void section_exit(struct section *s)
{
	/* Release: the access is done before a waiting writer sees the slot free. */
	atomic_store_explicit(&s->r->state, s->state + 1, memory_order_release);
}

struct lookup {
	char *hva;		/* of GPA */
	uint64_t last;		/* last GPA of the entry */
	unsigned int flags;	/* E_*; 0: no entry */
};

/* GPA's entry as a consistent snapshot; inside a section or under the lock. */
static inline __attribute__((always_inline)) void lookup(struct shadow_map *sm, uint64_t gpa,
							   struct lookup *l)
{
	uint64_t block = gpa >> BLOCK_SHIFT;
	struct shadow_slot *sl = slot_of(sm, block);

	for (;;) {
		/* seq_cst: see section_enter(). */
		uint64_t seq = atomic_load_explicit(&sl->seq, memory_order_seq_cst);
		uint64_t key = atomic_load_explicit(&sl->key, memory_order_relaxed);
		uintptr_t val = atomic_load_explicit(&sl->val, memory_order_relaxed);

		if (seq & 1)
			continue;	/* a fill is writing it: a few stores */
		l->flags = 0;
		if (key >> 3 != block || !(key & E_VALID))
			return;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&sl->seq, memory_order_relaxed) != seq)
			continue;
		if (key & E_PAGES) {
			/* Validated above: the table is not retired before we leave. */
			struct shadow_pages *pt = (struct shadow_pages *)val;
			unsigned int p = (gpa >> PAGE_SHIFT) & (PAGES_PER_BLOCK - 1);

			l->flags = atomic_load_explicit(&pt->flags[p], memory_order_relaxed);
			/* Integer arithmetic: an empty page's hva is 0. */
			l->hva = (char *)(atomic_load_explicit(&pt->hva[p], memory_order_relaxed) +
					  (gpa & (SHADOW_PAGE - 1)));
			l->last = gpa | (SHADOW_PAGE - 1);
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&sl->seq, memory_order_relaxed) != seq)
				continue;
		} else {
			l->flags = (unsigned int)key & (E_VALID | E_WRITABLE);
			l->hva = (char *)val + (gpa & (SHADOW_BLOCK - 1));
			l->last = gpa | (SHADOW_BLOCK - 1);
		}
		return;
	}
}

/*
 * After unpublishing: wait for every section that may have seen the old
 * entries, or (BLOCK false) tell whether one runs.
 */
static bool readers_gone(struct shadow_map *sm, bool block)
{
	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned int i = 0; i < SHADOW_READERS; i++) {
		struct shadow_reader *r = &sm->readers[i];
		uint64_t st = atomic_load_explicit(&r->state, memory_order_seq_cst);

		if (!(st & 1))
			continue;
		if (!block)
			return false;
		for (unsigned int spin = 0;
		     atomic_load_explicit(&r->state, memory_order_acquire) == st; spin++)
			if (spin >= 64)
				sched_yield();
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Writers (lock held)
 */

static void slot_write_begin(struct shadow_slot *sl)
{
	atomic_store_explicit(&sl->seq, atomic_load_explicit(&sl->seq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void slot_write_end(struct shadow_slot *sl)
{
	atomic_store_explicit(&sl->seq, atomic_load_explicit(&sl->seq, memory_order_relaxed) + 1,
			      memory_order_release);
}

/* Readers may hold PT until the next wait for readers. */
static void retire(struct shadow_map *sm, struct shadow_pages *pt)
{
	pt->next = sm->retired;
	sm->retired = pt;
}

static void free_list(struct shadow_pages *pt)
{
	while (pt) {
		struct shadow_pages *next = pt->next;

		free(pt);
		pt = next;
	}
}

/* Empty SL (entries it held no longer count). */
static void slot_clear(struct shadow_map *sm, struct shadow_slot *sl)
{
	uint64_t key = atomic_load_explicit(&sl->key, memory_order_relaxed);

	if (!(key & E_VALID))
		return;
	/* One store: a reader sees the old entry whole, or none. */
	atomic_store_explicit(&sl->key, 0, memory_order_relaxed);
	if (key & E_PAGES) {
		struct shadow_pages *pt = (struct shadow_pages *)atomic_load_explicit(
			&sl->val, memory_order_relaxed);

		add_locked(&sm->nr_entries, -(int64_t)pt->count);
		retire(sm, pt);
	} else {
		add_locked(&sm->nr_entries, -1);
	}
}

static bool marked(struct shadow_map *sm, uint64_t start, uint64_t last)
{
	return atomic_load_explicit(&sm->nr_marks, memory_order_relaxed) &&
	       mmn_itree_iter_first(&sm->marks, start, last);
}

/*
 * Drop the entries of one block's slot overlapping [START, LAST], or make
 * them read-only (PROTECT). Returns how many were dropped.
 */
static uint64_t slot_invalidate(struct shadow_map *sm, struct shadow_slot *sl, uint64_t start,
				uint64_t last, bool protect)
{
	uint64_t key = atomic_load_explicit(&sl->key, memory_order_relaxed);
	uint64_t base = (key >> 3) << BLOCK_SHIFT, dropped = 0;
	struct shadow_pages *pt;

	if (!(key & E_VALID) || base > last || base + SHADOW_BLOCK - 1 < start)
		return 0;
	if (!(key & E_PAGES)) {
		if (protect) {
			atomic_store_explicit(&sl->key, key & ~(uint64_t)E_WRITABLE,
					      memory_order_relaxed);
			return 0;
		}
		slot_clear(sm, sl);
		return 1;
	}
	pt = (struct shadow_pages *)atomic_load_explicit(&sl->val, memory_order_relaxed);
	for (uint64_t p = start > base ? (start - base) >> PAGE_SHIFT : 0;
	     p < PAGES_PER_BLOCK && base + (p << PAGE_SHIFT) <= last; p++) {
		unsigned char f = atomic_load_explicit(&pt->flags[p], memory_order_relaxed);

		if (!(f & E_VALID))
			continue;
		/* One store each: the hva stays, so a reader's pair stays whole. */
		if (protect) {
			atomic_store_explicit(&pt->flags[p], f & ~E_WRITABLE, memory_order_relaxed);
			continue;
		}
		atomic_store_explicit(&pt->flags[p], 0, memory_order_relaxed);
		pt->count--;
		add_locked(&sm->nr_entries, -1);
		dropped++;
	}
	return dropped;
}

static bool shadow_invalidate(struct mmn_range_sub *rsub, const struct mmn_invalidate_desc *desc,
			      uint64_t cur_seq)
{
	struct shadow_map *sm = mmn_container_of(rsub, struct shadow_map, sub);
	uint64_t start = desc->start, last = desc->end ? desc->end - 1 : UINT64_MAX;
	bool blockable = desc->flags & MMN_INVALIDATE_BLOCKABLE;
	bool protect = desc->event == MMN_EVENT_PROTECTION_VMA ||
		       desc->event == MMN_EVENT_PROTECTION_PAGE;
	/* Markers outlive what does not give the pages back. */
	bool keep_marks = protect || desc->event == MMN_EVENT_CLEAR ||
			  desc->event == MMN_EVENT_SOFT_DIRTY;
	uint64_t dropped = 0, first = start >> BLOCK_SHIFT, lastb = last >> BLOCK_SHIFT;
	struct shadow_pages *retired;
	struct mmn_itree_node *n;

	if (blockable) {
		wlock(sm);
	} else if (!wlock_try(sm)) {
		count(&sm->refusals);	/* a fill's piece runs */
		return false;
	}
	/* Fills from here on retry, and wait in read_begin until the end. */
	mmn_range_set_seq(rsub, cur_seq);
	if (atomic_load_explicit(&sm->nr_entries, memory_order_relaxed)) {
		if (lastb - first < SHADOW_SLOTS) {
			uint64_t blocks = 0;

			for (uint64_t b = first;; b++) {
				struct shadow_slot *sl = slot_of(sm, b);
				uint64_t key = atomic_load_explicit(&sl->key, memory_order_relaxed);

				/* The common case inline: a block entry dropped with one store. */
				if ((key & ~(uint64_t)E_WRITABLE) == (b << 3 | E_VALID) && !protect) {
					atomic_store_explicit(&sl->key, 0, memory_order_relaxed);
					blocks++;
				} else if ((key & E_VALID) && key >> 3 == b) {
					dropped += slot_invalidate(sm, sl, start, last, protect);
				}
				if (b == lastb)
					break;
			}
			add_locked(&sm->nr_entries, -(int64_t)blocks);
			dropped += blocks;
		} else {
			for (unsigned int i = 0; i < SHADOW_SLOTS; i++)
				dropped += slot_invalidate(sm, &sm->slots[i], start, last, protect);
		}
	}
	add_locked(&sm->dropped, (int64_t)dropped);
	if (!blockable && !readers_gone(sm, false)) {
		/* Dropping was harmless: the change will not be made. */
		wunlock(sm);
		count(&sm->refusals);
		return false;
	}
	/* Only what was retired before the wait below may be freed after it. */
	retired = sm->retired;
	sm->retired = NULL;
	wunlock(sm);
	/* Sections that saw the old entries end before the memory changes. */
	readers_gone(sm, true);
	free_list(retired);

	wlock(sm);
again:
	for (n = mmn_itree_iter_first(&sm->marks, start, last); n && !keep_marks;
	     n = mmn_itree_iter_next(n, start, last)) {
		mmn_itree_remove(&sm->marks, n);
		free(MARK(n));
		add_locked(&sm->nr_marks, -1);
		add_locked(&sm->dropped, 1);
		goto again;	/* removal rebalances: start over */
	}
	if (desc->event == MMN_EVENT_CLEAR && !marked(sm, start, last)) {
		struct mark *m = calloc(1, sizeof(*m));

		/* Without a marker the translation still refuses ballooned pages. */
		if (m) {
			m->node.start = start;
			m->node.last = last;
			mmn_itree_insert(&sm->marks, &m->node);
			add_locked(&sm->nr_marks, 1);
		}
	}
	atomic_fetch_add(&sm->invalidations, 1);
	wunlock(sm);
	/* seq_cst: against a waiter's count and its look at invalidations. */
	if (atomic_load_explicit(&sm->waiters, memory_order_seq_cst)) {
		pthread_mutex_lock(&sm->lock);
		pthread_cond_broadcast(&sm->changed);
		pthread_mutex_unlock(&sm->lock);
	}
	return true;
}

static const struct mmn_range_sub_ops shadow_ops = { .invalidate = shadow_invalidate };

int shadow_map_init(struct shadow_map *sm, struct mmn_state *guest_mm, uint64_t space_end,
		    shadow_translate_fn translate, void *ctx)
{
	memset(sm, 0, sizeof(*sm));
	if (space_end == 0)
		return -EOVERFLOW;
	sm->space_end = space_end;
	sm->translate = translate;
	sm->ctx = ctx;
	pthread_condattr_t ca;

	mmn_itree_init(&sm->marks);
	pthread_mutex_init(&sm->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sm->changed, &ca);
	pthread_condattr_destroy(&ca);
	return mmn_range_sub_insert(&sm->sub, guest_mm, 0, space_end, &shadow_ops);
}

void shadow_map_destroy(struct shadow_map *sm)
{
	struct mmn_itree_node *n;

	mmn_range_sub_remove(&sm->sub);
	for (unsigned int i = 0; i < SHADOW_SLOTS; i++)
		slot_clear(sm, &sm->slots[i]);
	free_list(sm->retired);
	while ((n = mmn_itree_iter_first(&sm->marks, 0, UINT64_MAX))) {
		mmn_itree_remove(&sm->marks, n);
		free(MARK(n));
	}
	pthread_mutex_destroy(&sm->lock);
	pthread_cond_destroy(&sm->changed);
}

uint64_t shadow_generation(struct shadow_map *sm)
{
	return atomic_load(&sm->invalidations);
}

bool shadow_wait_change(struct shadow_map *sm, uint64_t gen, unsigned int ms)
{
	struct timespec until;
	bool changed;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&sm->lock);
	atomic_fetch_add(&sm->waiters, 1);
	while (!(changed = atomic_load(&sm->invalidations) != gen) &&
	       pthread_cond_timedwait(&sm->changed, &sm->lock, &until) == 0)
		;
	changed = atomic_load(&sm->invalidations) != gen;
	atomic_fetch_sub(&sm->waiters, 1);
	pthread_mutex_unlock(&sm->lock);
	return changed;
}

/*
 * Translate the block around GPA, else its page, preferring a writable
 * translation. Returns 0 with [*base, *base + *size) at *hva.
 */
static int translate_around(struct shadow_map *sm, uint64_t gpa, uint64_t *base, uint64_t *size,
			    void **hva, bool *writable)
{
	static const uint64_t sizes[] = { SHADOW_BLOCK, SHADOW_PAGE };
	int err = -EFAULT;

	for (unsigned int i = 0; i < 2; i++) {
		*base = gpa & ~(sizes[i] - 1);
		*size = sizes[i];
		/* Nothing past the subscription: no invalidation would reach it. */
		if (*size - 1 > sm->space_end - 1 - *base)
			continue;
		*writable = true;
		err = sm->translate(sm->ctx, *base, *size, true, hva);
		if (err == -EACCES) {
			*writable = false;
			err = sm->translate(sm->ctx, *base, *size, false, hva);
		}
		if (err == 0 || err == -EAGAIN)
			return err;
	}
	return err;
}

/* Publish a translation of [BASE, BASE + SIZE) at HVA. Lock held. */
static int publish(struct shadow_map *sm, uint64_t base, uint64_t size, void *hva, bool writable)
{
	uint64_t block = base >> BLOCK_SHIFT;
	struct shadow_slot *sl = slot_of(sm, block);
	uint64_t key = atomic_load_explicit(&sl->key, memory_order_relaxed);
	unsigned int f = E_VALID | (writable ? E_WRITABLE : 0);
	struct shadow_pages *pt;

	if (size == SHADOW_BLOCK) {
		/* Entries never overlap: the block replaces what a smaller fill left. */
		slot_clear(sm, sl);
		slot_write_begin(sl);
		atomic_store_explicit(&sl->val, (uintptr_t)hva, memory_order_relaxed);
		atomic_store_explicit(&sl->key, block << 3 | f, memory_order_relaxed);
		slot_write_end(sl);
		add_locked(&sm->nr_entries, 1);
		return 0;
	}
	if ((key & E_VALID) && key >> 3 == block && (key & E_PAGES)) {
		pt = (struct shadow_pages *)atomic_load_explicit(&sl->val, memory_order_relaxed);
	} else {
		/* Another block (the slot is a cache), or the whole block read-only. */
		pt = calloc(1, sizeof(*pt));
		if (!pt)
			return -ENOMEM;
		slot_clear(sm, sl);
		slot_write_begin(sl);
		atomic_store_explicit(&sl->val, (uintptr_t)pt, memory_order_relaxed);
		atomic_store_explicit(&sl->key, block << 3 | E_VALID | E_PAGES, memory_order_relaxed);
		slot_write_end(sl);
	}
	unsigned int p = (base >> PAGE_SHIFT) & (PAGES_PER_BLOCK - 1);

	slot_write_begin(sl);
	if (!(atomic_load_explicit(&pt->flags[p], memory_order_relaxed) & E_VALID)) {
		pt->count++;
		add_locked(&sm->nr_entries, 1);
	}
	atomic_store_explicit(&pt->hva[p], (uintptr_t)hva, memory_order_relaxed);
	atomic_store_explicit(&pt->flags[p], (unsigned char)f, memory_order_relaxed);
	slot_write_end(sl);
	return 0;
}

/*
 * The miss path: returns 0 with the lock held and *l holding GPA's entry,
 * or an error without the lock.
 */
static int fill(struct shadow_map *sm, uint64_t gpa, bool write, struct lookup *l)
{
	for (;;) {
		uint64_t seq = mmn_range_read_begin(&sm->sub);
		uint64_t base, size;
		bool writable;
		void *hva;
		int err = translate_around(sm, gpa, &base, &size, &hva, &writable);

		if (err == -EAGAIN) {
			/* The region is moving: read_begin waits for the move to end. */
			count(&sm->retries);
			sched_yield();
			continue;
		}
		if (err) {
			/* Nothing is cached and nothing was touched. */
			count(&sm->faults);
			return err;
		}
		wlock(sm);
		if (mmn_range_read_retry(&sm->sub, seq)) {
			wunlock(sm);
			count(&sm->retries);
			continue;
		}
		/* Valid until unlock: start loading the access's line now. */
		__builtin_prefetch((char *)hva + (gpa - base));
		if (marked(sm, base, base + size - 1)) {
			/* Never bring discarded pages back, even if the block is RAM. */
			if (size == SHADOW_PAGE || marked(sm, gpa & ~(SHADOW_PAGE - 1),
							  (gpa | (SHADOW_PAGE - 1)))) {
				wunlock(sm);
				count(&sm->faults);
				return -EFAULT;
			}
			hva = (char *)hva + ((gpa & ~(SHADOW_PAGE - 1)) - base);
			base = gpa & ~(SHADOW_PAGE - 1);
			size = SHADOW_PAGE;
		}
		err = publish(sm, base, size, hva, writable);
		if (err) {
			wunlock(sm);
			return err;
		}
		add_locked(&sm->misses, 1);
		if (write && !writable) {
			wunlock(sm);
			count(&sm->faults);
			return -EACCES;
		}
		/* The caller accesses under the lock: invalidations take it. */
		l->flags = E_VALID | (writable ? E_WRITABLE : 0);
		l->hva = (char *)hva + (gpa - base);
		l->last = base + size - 1;
		return 0;
	}
}

/* A write met a read-only entry: drop it, the translation may say writable now. */
static void drop_readonly(struct shadow_map *sm, uint64_t gpa)
{
	struct shadow_slot *sl = slot_of(sm, gpa >> BLOCK_SHIFT);

	wlock(sm);
	slot_invalidate(sm, sl, gpa, gpa, false);
	wunlock(sm);
	count(&sm->slow_writes);
}

/* What an access does with each piece: FN, or a copy the compiler sees. */
enum piece_op { PIECE_FN, PIECE_COPY_OUT, PIECE_COPY_IN };

/* Small copies inline (ring indices, descriptors): no call into libc. */
static inline __attribute__((always_inline)) void copy(char *to, const char *from, uint64_t n)
{
	if (n >= 8 && n <= 16) {
		uint64_t a, b;

		memcpy(&a, from, 8);
		memcpy(&b, from + n - 8, 8);
		memcpy(to, &a, 8);
		memcpy(to + n - 8, &b, 8);
	} else if (n >= 4 && n < 8) {
		uint32_t a, b;

		memcpy(&a, from, 4);
		memcpy(&b, from + n - 4, 4);
		memcpy(to, &a, 4);
		memcpy(to + n - 4, &b, 4);
	} else {
		memcpy(to, from, (size_t)n);
	}
}

static inline __attribute__((always_inline)) int
do_piece(enum piece_op op, shadow_access_fn fn, void *arg, char *hva, uint64_t n, uint64_t done)
{
	if (op == PIECE_COPY_OUT)
		copy((char *)arg + done, hva, n);
	else if (op == PIECE_COPY_IN)
		copy(hva, (const char *)arg + done, n);
	else
		return fn(arg, hva, (size_t)n, done);
	return 0;
}

/*
 * Any access: piece by piece, through misses, pages and slow writes. MISS:
 * the first piece is known to have no entry.
 */
static inline __attribute__((always_inline)) int
access_pieces(struct shadow_map *sm, uint64_t gpa, uint64_t len, bool write, bool miss,
	      enum piece_op op, shadow_access_fn fn, void *arg)
{
	uint64_t done = 0;

	if (len == 0)
		return 0;
	if (gpa + len - 1 < gpa)
		return -EFAULT;
	if (gpa + len - 1 >= sm->space_end) {
		count(&sm->faults);	/* outside the subscription: never cached */
		return -EFAULT;
	}
	while (done < len) {
		uint64_t cur = gpa + done, n;
		struct section s;
		struct lookup l = { .flags = 0 };
		bool locked = false;
		int err;

		if (!miss) {
			section_enter(sm, &s);
			lookup(sm, cur, &l);
		}
		if (l.flags && (!write || (l.flags & E_WRITABLE))) {
			atomic_store_explicit(&s.r->hits,
					      atomic_load_explicit(&s.r->hits, memory_order_relaxed) + 1,
					      memory_order_relaxed);
		} else {
			if (!miss)
				section_exit(&s);
			if (l.flags)
				drop_readonly(sm, cur);
			err = fill(sm, cur, write, &l);
			if (err)
				return err;
			locked = true;
		}
		miss = false;
		n = l.last - cur + 1;
		if (n > len - done)
			n = len - done;
		if (n > SHADOW_CHUNK)
			n = SHADOW_CHUNK;
		err = do_piece(op, fn, arg, l.hva, n, done);
		if (locked)
			wunlock(sm);
		else
			section_exit(&s);
		if (err)
			return err;
		done += n;
	}
	return 0;
}

static int __attribute__((noinline)) access_fn(struct shadow_map *sm, uint64_t gpa, uint64_t len,
						bool write, bool miss, shadow_access_fn fn,
						void *arg)
{
	return access_pieces(sm, gpa, len, write, miss, PIECE_FN, fn, arg);
}

static int __attribute__((noinline)) access_out(struct shadow_map *sm, uint64_t gpa, uint64_t len,
						bool miss, void *buf)
{
	return access_pieces(sm, gpa, len, false, miss, PIECE_COPY_OUT, NULL, buf);
}

static int __attribute__((noinline)) access_in(struct shadow_map *sm, uint64_t gpa, uint64_t len,
					       bool miss, const void *buf)
{
	return access_pieces(sm, gpa, len, true, miss, PIECE_COPY_IN, NULL, (void *)buf);
}

enum hit_result { HIT_DONE, HIT_NO, HIT_MISS };

/*
 * The hit: one piece inside a block entry, in a few dozen instructions.
 * HIT_DONE with *err set, or (nothing done) HIT_MISS when the block has
 * no entry, else HIT_NO.
 */
static inline __attribute__((always_inline)) enum hit_result
try_hit(struct shadow_map *sm, uint64_t gpa, uint64_t len, bool write, enum piece_op op,
	shadow_access_fn fn, void *arg, int *err)
{
	uint64_t block = gpa >> BLOCK_SHIFT;
	struct shadow_slot *sl = slot_of(sm, block);
	uint64_t want = block << 3 | E_VALID, seq, key;
	struct section s;
	uintptr_t val;

	/* len - 1 rejects len 0; one block also rejects an overflow. */
	if (len - 1 >= SHADOW_CHUNK || (gpa + len - 1) >> BLOCK_SHIFT != block)
		return HIT_NO;
	/* A look before the section: a miss costs no compare-and-swap. */
	key = atomic_load_explicit(&sl->key, memory_order_relaxed);
	if ((key & ~(uint64_t)(E_WRITABLE | E_PAGES)) != want)
		return HIT_MISS;
	section_enter(sm, &s);
	seq = atomic_load_explicit(&sl->seq, memory_order_seq_cst);	/* see section_enter() */
	key = atomic_load_explicit(&sl->key, memory_order_relaxed);
	val = atomic_load_explicit(&sl->val, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	if ((key & ~(uint64_t)E_WRITABLE) != want || (write && !(key & E_WRITABLE)) || (seq & 1) ||
	    atomic_load_explicit(&sl->seq, memory_order_relaxed) != seq) {
		section_exit(&s);
		return HIT_NO;
	}
	atomic_store_explicit(&s.r->hits, atomic_load_explicit(&s.r->hits, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	*err = do_piece(op, fn, arg, (char *)val + (gpa & (SHADOW_BLOCK - 1)), len, 0);
	section_exit(&s);
	return HIT_DONE;
}

int shadow_access(struct shadow_map *sm, uint64_t gpa, uint64_t len, bool write,
		  shadow_access_fn fn, void *arg)
{
	int err;
	enum hit_result h = try_hit(sm, gpa, len, write, PIECE_FN, fn, arg, &err);

	return h == HIT_DONE ? err : access_fn(sm, gpa, len, write, h == HIT_MISS, fn, arg);
}

int shadow_read(struct shadow_map *sm, uint64_t gpa, void *buf, uint64_t len)
{
	int err;
	enum hit_result h = try_hit(sm, gpa, len, false, PIECE_COPY_OUT, NULL, buf, &err);

	return h == HIT_DONE ? err : access_out(sm, gpa, len, h == HIT_MISS, buf);
}

int shadow_write(struct shadow_map *sm, uint64_t gpa, const void *buf, uint64_t len)
{
	int err;
	enum hit_result h = try_hit(sm, gpa, len, true, PIECE_COPY_IN, NULL, (void *)buf, &err);

	return h == HIT_DONE ? err : access_in(sm, gpa, len, h == HIT_MISS, buf);
}

void shadow_map_stats(struct shadow_map *sm, struct shadow_stats *st)
{
	st->hits = 0;
	for (unsigned int i = 0; i < SHADOW_READERS; i++)
		st->hits += atomic_load_explicit(&sm->readers[i].hits, memory_order_relaxed);
	st->misses = atomic_load(&sm->misses);
	st->retries = atomic_load(&sm->retries);
	st->faults = atomic_load(&sm->faults);
	st->slow_writes = atomic_load(&sm->slow_writes);
	st->invalidations = atomic_load(&sm->invalidations);
	st->dropped = atomic_load(&sm->dropped);
	st->refusals = atomic_load(&sm->refusals);
	st->entries = atomic_load(&sm->nr_entries);
	st->discard_marks = atomic_load(&sm->nr_marks);
}
