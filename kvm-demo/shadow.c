/* SPDX-License-Identifier: MIT */
/* The shadow map; see shadow.h. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shadow.h"

enum entry_kind { ENTRY_MAP, ENTRY_DISCARDED };

struct shadow_entry {
	struct mmn_itree_node node;	/* [gpa, last gpa] */
	enum entry_kind kind;
	bool writable;			/* ENTRY_MAP */
	char *hva;			/* ENTRY_MAP: host address of node.start */
};

#define ENTRY(n) mmn_container_of(n, struct shadow_entry, node)

static void count(atomic_uint_least64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* The entry or marker holding GPA; lock held. */
static struct shadow_entry *lookup(struct shadow_map *sm, uint64_t gpa)
{
	struct mmn_itree_node *n = mmn_itree_iter_first(&sm->tree, gpa, gpa);

	return n ? ENTRY(n) : NULL;
}

static bool marked(struct shadow_map *sm, uint64_t start, uint64_t last)
{
	for (struct mmn_itree_node *n = mmn_itree_iter_first(&sm->tree, start, last); n;
	     n = mmn_itree_iter_next(n, start, last))
		if (ENTRY(n)->kind == ENTRY_DISCARDED)
			return true;
	return false;
}

static void drop(struct shadow_map *sm, struct shadow_entry *e)
{
	mmn_itree_remove(&sm->tree, &e->node);
	atomic_fetch_sub(e->kind == ENTRY_MAP ? &sm->nr_entries : &sm->nr_marks, 1);
	free(e);
}

static bool shadow_invalidate(struct mmn_range_sub *rsub, const struct mmn_invalidate_desc *desc,
			      uint64_t cur_seq)
{
	struct shadow_map *sm = mmn_container_of(rsub, struct shadow_map, sub);
	uint64_t start = desc->start, last = desc->end ? desc->end - 1 : UINT64_MAX;
	bool protect = desc->event == MMN_EVENT_PROTECTION_VMA ||
		       desc->event == MMN_EVENT_PROTECTION_PAGE;
	/* Markers outlive what does not give the pages back. */
	bool keep_marks = protect || desc->event == MMN_EVENT_CLEAR ||
			  desc->event == MMN_EVENT_SOFT_DIRTY;
	struct mmn_itree_node *n;

	/* The lock is held across every access: taking it waits for the device. */
	if (desc->flags & MMN_INVALIDATE_BLOCKABLE) {
		pthread_mutex_lock(&sm->lock);
	} else if (pthread_mutex_trylock(&sm->lock) != 0) {
		count(&sm->refusals);
		return false;
	}
	mmn_range_set_seq(rsub, cur_seq);
	count(&sm->invalidations);
	pthread_cond_broadcast(&sm->changed);
again:
	for (n = mmn_itree_iter_first(&sm->tree, start, last); n;
	     n = mmn_itree_iter_next(n, start, last)) {
		struct shadow_entry *e = ENTRY(n);

		if (e->kind == ENTRY_DISCARDED ? keep_marks : protect) {
			e->writable = false;
			continue;
		}
		drop(sm, e);
		count(&sm->dropped);
		goto again;	/* removal rebalances: start over */
	}
	if (desc->event == MMN_EVENT_CLEAR && !marked(sm, start, last)) {
		struct shadow_entry *m = calloc(1, sizeof(*m));

		/* Without a marker the translation still refuses ballooned pages. */
		if (m) {
			m->kind = ENTRY_DISCARDED;
			m->node.start = start;
			m->node.last = last;
			mmn_itree_insert(&sm->tree, &m->node);
			count(&sm->nr_marks);
		}
	}
	pthread_mutex_unlock(&sm->lock);
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

	mmn_itree_init(&sm->tree);
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
	while ((n = mmn_itree_iter_first(&sm->tree, 0, UINT64_MAX)))
		drop(sm, ENTRY(n));
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
	while (!(changed = atomic_load(&sm->invalidations) != gen) &&
	       pthread_cond_timedwait(&sm->changed, &sm->lock, &until) == 0)
		;
	changed = atomic_load(&sm->invalidations) != gen;
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

/*
 * The miss path: returns 0 with the lock held and *out holding GPA, or an
 * error without the lock.
 */
static int fill(struct shadow_map *sm, uint64_t gpa, bool write, struct shadow_entry **out)
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
		pthread_mutex_lock(&sm->lock);
		if (mmn_range_read_retry(&sm->sub, seq)) {
			pthread_mutex_unlock(&sm->lock);
			count(&sm->retries);
			continue;
		}
		if (marked(sm, base, base + size - 1)) {
			/* Never bring discarded pages back, even if the block is RAM. */
			if (size == SHADOW_PAGE || marked(sm, gpa & ~(SHADOW_PAGE - 1),
							  (gpa | (SHADOW_PAGE - 1)))) {
				pthread_mutex_unlock(&sm->lock);
				count(&sm->faults);
				return -EFAULT;
			}
			hva = (char *)hva + ((gpa & ~(SHADOW_PAGE - 1)) - base);
			base = gpa & ~(SHADOW_PAGE - 1);
			size = SHADOW_PAGE;
		}
		/* Entries never overlap: drop what a smaller fill left here. */
		for (struct mmn_itree_node *n;
		     (n = mmn_itree_iter_first(&sm->tree, base, base + size - 1));)
			drop(sm, ENTRY(n));
		struct shadow_entry *e = calloc(1, sizeof(*e));

		if (!e) {
			pthread_mutex_unlock(&sm->lock);
			return -ENOMEM;
		}
		e->kind = ENTRY_MAP;
		e->node.start = base;
		e->node.last = base + size - 1;
		e->hva = hva;
		e->writable = writable;
		mmn_itree_insert(&sm->tree, &e->node);
		count(&sm->nr_entries);
		count(&sm->misses);
		if (write && !writable) {
			pthread_mutex_unlock(&sm->lock);
			count(&sm->faults);
			return -EACCES;
		}
		*out = e;
		return 0;
	}
}

int shadow_access(struct shadow_map *sm, uint64_t gpa, uint64_t len, bool write,
		  shadow_access_fn fn, void *arg)
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
		struct shadow_entry *e;
		int err;

		pthread_mutex_lock(&sm->lock);
		e = lookup(sm, cur);
		if (e && e->kind == ENTRY_DISCARDED) {
			pthread_mutex_unlock(&sm->lock);
			count(&sm->faults);
			return -EFAULT;
		}
		if (e && write && !e->writable) {
			/* Maybe writable again: ask the translation, not the cache. */
			drop(sm, e);
			count(&sm->slow_writes);
			e = NULL;
		}
		if (e) {
			count(&sm->hits);
		} else {
			pthread_mutex_unlock(&sm->lock);
			err = fill(sm, cur, write, &e);
			if (err)
				return err;
		}
		n = e->node.last - cur + 1;
		if (n > len - done)
			n = len - done;
		if (n > SHADOW_CHUNK)
			n = SHADOW_CHUNK;
		err = fn(arg, e->hva + (cur - e->node.start), (size_t)n, done);
		pthread_mutex_unlock(&sm->lock);
		if (err)
			return err;
		done += n;
	}
	return 0;
}

struct copy_arg {
	char *buf;
	const char *cbuf;
};

static int copy_out(void *arg, void *hva, size_t len, uint64_t offset)
{
	memcpy(((struct copy_arg *)arg)->buf + offset, hva, len);
	return 0;
}

static int copy_in(void *arg, void *hva, size_t len, uint64_t offset)
{
	memcpy(hva, ((struct copy_arg *)arg)->cbuf + offset, len);
	return 0;
}

int shadow_read(struct shadow_map *sm, uint64_t gpa, void *buf, uint64_t len)
{
	struct copy_arg a = { .buf = buf };

	return shadow_access(sm, gpa, len, false, copy_out, &a);
}

int shadow_write(struct shadow_map *sm, uint64_t gpa, const void *buf, uint64_t len)
{
	struct copy_arg a = { .cbuf = buf };

	return shadow_access(sm, gpa, len, true, copy_in, &a);
}

void shadow_map_stats(struct shadow_map *sm, struct shadow_stats *st)
{
	st->hits = atomic_load(&sm->hits);
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
