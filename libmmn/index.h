/* SPDX-License-Identifier: MIT */
/*
 * An interval index with the interval tree's semantics and a shallower
 * shape: a B+-tree of closed intervals [start, last] ordered by start,
 * whose nodes (INDEX_FANOUT slots, 448 bytes, seven cache lines) keep per
 * slot the largest 'last' below it. An overlap query decides each level
 * from the lines of one node, fetched together, so at 10^6 intervals it
 * takes about 6 dependent misses where a binary tree takes about 22.
 *
 * Unlike the intrusive tree, the index owns its nodes: insert allocates
 * and may fail with -ENOMEM, leaving the index as it was; remove never
 * allocates. No lock of its own: callers serialise writers against each
 * other and against readers; readers may iterate side by side while no
 * writer runs. See docs/design.md, "The interval index".
 */
#ifndef MMN_INDEX_H
#define MMN_INDEX_H

#include "internal.h"

#include <stddef.h>

#define INDEX_FANOUT	16
#define INDEX_MAX_DEPTH	32	/* 16 * 8^31 entries: more than memory holds */

/* Layout: see index.c. Here so that the next step within a leaf inlines. */
struct index_node {
	uint64_t max[INDEX_FANOUT];
	void *ptr[INDEX_FANOUT];
	uint64_t start[INDEX_FANOUT];
	unsigned int n;
	bool leaf;
	struct index_node *next;	/* leaves: the next leaf, or NULL */
} __attribute__((aligned(64)));

struct index {
	struct index_node *root;	/* NULL when empty */
	unsigned int height;		/* levels above the leaves */
	size_t count;			/* intervals */
	size_t nodes;			/* allocated nodes */
};

/* Where an iteration stands: the path from the root to the current leaf. */
struct index_iter {
	uint64_t start, last;
	unsigned int height;
	struct index_node *node[INDEX_MAX_DEPTH];
	unsigned char slot[INDEX_MAX_DEPTH];
};

#define INDEX_INIT { NULL, 0, 0, 0 }

void index_init(struct index *idx);

/* Free every node; the index is empty after. The items are the caller's. */
void index_fini(struct index *idx);

/*
 * Add ITEM for [start, last] (start <= last), after any interval with an
 * equal start. Returns 0, or -ENOMEM with the index unchanged.
 */
int index_insert(struct index *idx, uint64_t start, uint64_t last, void *item);

/*
 * Remove ITEM, inserted for [start, last]. Returns 0, or -ENOENT when it
 * is not there (a debug build aborts then). Never allocates.
 */
int index_remove(struct index *idx, uint64_t start, uint64_t last, void *item);

/*
 * The item of the interval with the lowest start that overlaps
 * [start, last], or NULL; index_iter_next() gives the following ones,
 * ascending by start, equal starts in insertion order. O(log n + k).
 * The index must not change during an iteration.
 */
void *index_iter_first(const struct index *idx, struct index_iter *it,
		       uint64_t start, uint64_t last);
void *index_iter_next_slow(struct index_iter *it);
void index_prefetch_node(const struct index_node *nd);

/*
 * index_iter_next() for a caller that keeps the current leaf and slot in
 * *LEAF and *SLOT, and the query's START and LAST, in locals (registers
 * across calls): start with all from IT after index_iter_first().
 *
 * Within a leaf, a slot either overlaps, or starts after LAST (the end),
 * or ends before START: skipping that takes the path in IT. Across leaves
 * the chain serves once the next leaf starts at or after START: from
 * there every slot up to LAST overlaps, so the path is never needed again
 * and is left behind.
 */
static inline void *index_iter_step(struct index_iter *it, const struct index_node **leaf,
				    unsigned int *slot, uint64_t start, uint64_t last)
{
	const struct index_node *l = *leaf;
	unsigned int i = *slot + 1u;
	void *p;

	if (likely(i < l->n)) {
		if (l->start[i] > last)
			return NULL;
		if (likely(l->max[i] >= start)) {
			*slot = i;
			return l->ptr[i];
		}
	} else if (!l->next) {
		return NULL;		/* the last leaf */
	} else if (l->next->start[0] >= start) {
		l = l->next;
		if (l->start[0] > last)
			return NULL;
		if (l->start[l->n - 1] <= last && l->next)
			index_prefetch_node(l->next);
		*leaf = l;
		*slot = 0;
		return l->ptr[0];
	}
	it->slot[it->height] = (unsigned char)*slot;
	p = index_iter_next_slow(it);
	*leaf = it->node[it->height];
	*slot = it->slot[it->height];
	return p;
}

static inline void *index_iter_next(struct index_iter *it)
{
	const struct index_node *leaf = it->node[it->height];
	unsigned int slot = it->slot[it->height];
	void *p = index_iter_step(it, &leaf, &slot, it->start, it->last);

	it->node[it->height] = (struct index_node *)leaf;
	it->slot[it->height] = (unsigned char)slot;
	return p;
}

/* Bytes of nodes the index holds. */
size_t index_bytes(const struct index *idx);

/*
 * Check the order, the per-slot maxima, the separators, the fill and the
 * uniform depth. Returns NULL when all hold, else a static string naming
 * the first broken one. O(n); for tests and debug builds.
 */
const char *index_check(const struct index *idx);

#endif /* MMN_INDEX_H */
