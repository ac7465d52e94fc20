/* SPDX-License-Identifier: MIT */
/*
 * The interval index: a B+-tree ordered by start with per-slot maxima.
 *
 * Every node has the same layout, one array per two cache lines:
 *   max[i]    leaf: the last of interval i;  inner: the largest last below child i
 *   ptr[i]    leaf: the item of interval i;  inner: child i
 *   start[i]  leaf: the start of interval i; inner: a separator, every start
 *             in children < i is <= start[i] <= every start in children >= i
 *             (start[0] of an inner node is only a lower bound of child 0)
 * An overlap query wants the first interval, by start, whose last reaches
 * the query's start: at each level the first slot whose max does, which
 * always exists below a slot chosen so. Its own start then says whether
 * there is any overlap at all. So a level costs the max line and the ptr
 * lines of one node, fetched together.
 *
 * Nodes other than the root hold INDEX_MIN to INDEX_FANOUT slots: insert
 * splits a full node in two, remove merges a node that falls below the
 * minimum with a sibling or takes slots from it. Insert allocates the
 * nodes its splits need before changing anything, so that -ENOMEM leaves
 * the index as it was.
 */
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

#define F		INDEX_FANOUT
#define INDEX_MIN	(F / 2)

_Static_assert(sizeof(struct index_node) == 64 * (3 * F / 8 + 1), "an index node is whole cache lines");

static struct index_node *node_alloc(void)
{
	void *p;

	if (fault_inject("index node"))
		return NULL;
	if (posix_memalign(&p, 64, sizeof(struct index_node)))
		return NULL;
	return p;
}

static inline uint64_t node_max(const struct index_node *nd)
{
	uint64_t m = nd->max[0];

	for (unsigned int i = 1; i < nd->n; i++)
		if (nd->max[i] > m)
			m = nd->max[i];
	return m;
}

void index_init(struct index *idx)
{
	memset(idx, 0, sizeof(*idx));
}

static void free_subtree(struct index_node *nd)
{
	if (!nd->leaf)
		for (unsigned int i = 0; i < nd->n; i++)
			free_subtree(nd->ptr[i]);
	free(nd);
}

void index_fini(struct index *idx)
{
	if (idx->root)
		free_subtree(idx->root);
	index_init(idx);
}

size_t index_bytes(const struct index *idx)
{
	return idx->nodes * sizeof(struct index_node);
}

/*
 * Slot moves are loops, not memmove(): at most F slots, and a call per
 * array would cost more than the copy.
 */
static inline void slot_copy(struct index_node *dst, unsigned int d,
			     const struct index_node *src, unsigned int s)
{
	dst->max[d] = src->max[s];
	dst->ptr[d] = src->ptr[s];
	dst->start[d] = src->start[s];
}

/* Slots [at, n) of ND move up by one; slot AT gets (mx, p, st). */
static void slot_insert(struct index_node *nd, unsigned int at, uint64_t mx, void *p,
			uint64_t st)
{
	for (unsigned int k = nd->n; k > at; k--)
		slot_copy(nd, k, nd, k - 1);
	nd->max[at] = mx;
	nd->ptr[at] = p;
	nd->start[at] = st;
	nd->n++;
}

static void slot_delete(struct index_node *nd, unsigned int at)
{
	for (unsigned int k = at + 1; k < nd->n; k++)
		slot_copy(nd, k - 1, nd, k);
	nd->n--;
}

/* Move COUNT slots of SRC from FROM on to DST at AT (DST has room). */
static void slots_move(struct index_node *dst, unsigned int at, struct index_node *src,
		       unsigned int from, unsigned int count)
{
	for (unsigned int k = dst->n; k > at; k--)
		slot_copy(dst, k - 1 + count, dst, k - 1);
	for (unsigned int k = 0; k < count; k++)
		slot_copy(dst, at + k, src, from + k);
	dst->n += count;
	for (unsigned int k = from + count; k < src->n; k++)
		slot_copy(src, k - count, src, k);
	src->n -= count;
}

/* The child of inner ND where START goes: after equal starts. */
static inline unsigned int child_for_insert(const struct index_node *nd, uint64_t start)
{
	unsigned int i = 1;

	while (i < nd->n && nd->start[i] <= start)
		i++;
	return i - 1;
}

/* The first child of inner ND that may hold START. */
static inline unsigned int child_for_find(const struct index_node *nd, uint64_t start)
{
	unsigned int i = 1;

	while (i < nd->n && nd->start[i] < start)
		i++;
	return i - 1;
}

int index_insert(struct index *idx, uint64_t start, uint64_t last, void *item)
{
	struct index_node *path[INDEX_MAX_DEPTH], *spare[INDEX_MAX_DEPTH + 1];
	unsigned int slot[INDEX_MAX_DEPTH], h = idx->height, need = 0, at;
	struct index_node *nd = idx->root;

	MMN_BUG_ON(start > last, "index_insert: start %#llx > last %#llx",
		   (unsigned long long)start, (unsigned long long)last);

	if (!nd) {
		nd = node_alloc();
		if (!nd)
			return -ENOMEM;
		nd->n = 0;
		nd->leaf = true;
		nd->next = NULL;
		idx->root = nd;
		idx->height = 0;
		idx->nodes++;
	}
	for (unsigned int d = 0; d < h; d++) {
		/* The child pointer's line with the separators': one miss a level. */
		__builtin_prefetch(&nd->ptr[0]);
		path[d] = nd;
		slot[d] = child_for_insert(nd, start);
		nd = nd->ptr[slot[d]];
	}

	/* The splits to come: the full nodes from the leaf up, and a new root. */
	if (nd->n == F) {
		unsigned int d = h;

		need = 1;
		while (d > 0 && path[d - 1]->n == F) {
			need++;
			d--;
		}
		if (d == 0)
			need++;
	}
	for (unsigned int i = 0; i < need; i++) {
		spare[i] = node_alloc();
		if (!spare[i]) {
			while (i > 0)
				free(spare[--i]);
			return -ENOMEM;
		}
	}
	idx->nodes += need;
	idx->count++;

	for (unsigned int d = 0; d < h; d++)
		if (path[d]->max[slot[d]] < last)
			path[d]->max[slot[d]] = last;

	at = 0;
	while (at < nd->n && nd->start[at] <= start)
		at++;

	/* Insert (mx, p, st) at AT of ND, splitting full nodes upward. */
	uint64_t mx = last, st = start;
	void *p = item;

	for (unsigned int d = h;; d--) {
		struct index_node *r;
		unsigned int left;

		if (nd->n < F) {
			slot_insert(nd, at, mx, p, st);
			return 0;
		}
		r = spare[--need];
		r->n = 0;
		r->leaf = nd->leaf;
		r->next = NULL;
		if (nd->leaf) {
			r->next = nd->next;
			nd->next = r;
		}
		/* F + 1 slots: the left keeps the larger half. */
		left = (F + 2) / 2;
		if (at < left) {
			slots_move(r, 0, nd, left - 1, F - (left - 1));
			slot_insert(nd, at, mx, p, st);
		} else {
			slots_move(r, 0, nd, left, F - left);
			slot_insert(r, at - left, mx, p, st);
		}
		/* r's first separator bounds all of r from below and nd from above. */
		mx = node_max(r);
		p = r;
		st = r->start[0];
		if (d == 0) {
			struct index_node *root = spare[--need];

			root->leaf = false;
			root->next = NULL;
			root->n = 2;
			root->max[0] = node_max(nd);
			root->ptr[0] = nd;
			root->start[0] = nd->start[0];
			root->max[1] = mx;
			root->ptr[1] = r;
			root->start[1] = st;
			idx->root = root;
			idx->height++;
			return 0;
		}
		path[d - 1]->max[slot[d - 1]] = node_max(nd);
		nd = path[d - 1];
		at = slot[d - 1] + 1;
	}
}

/*
 * ND (at depth D of PATH) fell below the minimum: merge it with a sibling
 * or take slots from one. The parent's slots for both are made exact.
 */
static void rebalance(struct index *idx, struct index_node **path, unsigned int *slot,
		      unsigned int d, struct index_node *nd)
{
	struct index_node *parent = path[d - 1], *l, *r;
	unsigned int li = slot[d - 1];

	if (li > 0) {
		li--;
		l = parent->ptr[li];
		r = nd;
	} else {
		l = nd;
		r = parent->ptr[li + 1];
	}
	/* An inner node's start[0] is only a bound: the parent's separator is exact. */
	if (!r->leaf)
		r->start[0] = parent->start[li + 1];
	if (l->n + r->n <= F) {
		slots_move(l, l->n, r, 0, r->n);
		if (l->leaf)
			l->next = r->next;
		parent->max[li] = node_max(l);
		slot_delete(parent, li + 1);
		free(r);
		idx->nodes--;
		return;
	}
	if (l->n < r->n)
		slots_move(l, l->n, r, 0, (r->n - l->n) / 2);
	else
		slots_move(r, 0, l, l->n - (l->n - r->n) / 2, (l->n - r->n) / 2);
	parent->max[li] = node_max(l);
	parent->max[li + 1] = node_max(r);
	parent->start[li + 1] = r->start[0];
}

/* From the leaf at PATH[H], on to the next leaf; false after the last. */
static bool next_leaf(struct index_node **path, unsigned int *slot, unsigned int h)
{
	unsigned int d = h;

	while (d > 0 && slot[d - 1] + 1 >= path[d - 1]->n)
		d--;
	if (d == 0)
		return false;
	slot[d - 1]++;
	for (; d <= h; d++) {
		path[d] = path[d - 1]->ptr[slot[d - 1]];
		slot[d] = 0;
	}
	return true;
}

int index_remove(struct index *idx, uint64_t start, uint64_t last, void *item)
{
	struct index_node *path[INDEX_MAX_DEPTH + 1], *nd = idx->root;
	unsigned int slot[INDEX_MAX_DEPTH + 1], h = idx->height, at;

	if (!nd)
		goto missing;
	for (unsigned int d = 0; d < h; d++) {
		__builtin_prefetch(&nd->ptr[0]);
		path[d] = nd;
		slot[d] = child_for_find(nd, start);
		nd = nd->ptr[slot[d]];
	}
	path[h] = nd;
	slot[h] = 0;
	/* Equal starts may run on over several leaves. */
	for (at = 0;;) {
		nd = path[h];
		while (at < nd->n && nd->start[at] < start)
			at++;
		while (at < nd->n && nd->start[at] == start && nd->ptr[at] != item)
			at++;
		if (at < nd->n)
			break;
		if (!next_leaf(path, slot, h))
			goto missing;
		at = 0;
	}
	if (nd->start[at] != start || nd->max[at] != last)
		goto missing;

	slot_delete(nd, at);
	idx->count--;
	for (unsigned int d = h;; d--) {
		nd = path[d];
		if (d == 0) {
			/* The root: drop it when it has one child or nothing left. */
			if (nd->leaf && nd->n == 0) {
				idx->root = NULL;
				free(nd);
				idx->nodes--;
			} else if (!nd->leaf && nd->n == 1) {
				idx->root = nd->ptr[0];
				idx->height--;
				free(nd);
				idx->nodes--;
			}
			return 0;
		}
		if (nd->n < INDEX_MIN) {
			rebalance(idx, path, slot, d, nd);
		} else {
			uint64_t m = node_max(nd);

			/* Same maximum, same shape above: nothing more changes. */
			if (path[d - 1]->max[slot[d - 1]] == m)
				return 0;
			path[d - 1]->max[slot[d - 1]] = m;
		}
	}

missing:
	MMN_BUG_ON(true, "index_remove: no interval [%#llx, %#llx] for this item",
		   (unsigned long long)start, (unsigned long long)last);
	return -ENOENT;
}

/* Every line of a node: an iteration reads all of them. */
void index_prefetch_node(const struct index_node *nd)
{
	for (size_t off = 0; off < sizeof(*nd); off += 64)
		__builtin_prefetch((const char *)nd + off);
}

/*
 * From inner or leaf ND at depth D, down to the first interval whose last
 * reaches it->start; ND has one. NULL when that interval starts after
 * it->last: nothing further overlaps then.
 */
static void *descend(struct index_iter *it, unsigned int d, const struct index_node *nd)
{
	const uint64_t qs = it->start;

	for (;; d++) {
		unsigned int i = 0;

		__builtin_prefetch(&nd->ptr[0]);
		while (nd->max[i] < qs)
			i++;
		it->node[d] = (struct index_node *)nd;
		it->slot[d] = (unsigned char)i;
		if (d == it->height) {
			if (nd->start[i] > it->last)
				return NULL;
			/* The query reaches into the next leaf: fetch it meanwhile. */
			if (nd->start[nd->n - 1] <= it->last && nd->next)
				index_prefetch_node(nd->next);
			return nd->ptr[i];
		}
		nd = nd->ptr[i];
	}
}

void *index_iter_first(const struct index *idx, struct index_iter *it,
		       uint64_t start, uint64_t last)
{
	const struct index_node *root = idx->root;

	if (!root)
		return NULL;
	it->start = start;
	it->last = last;
	it->height = idx->height;
	/* The root alone may have no slot that reaches start. */
	for (unsigned int i = 0; i < root->n; i++)
		if (root->max[i] >= start)
			return descend(it, 0, root);
	return NULL;
}

void *index_iter_next_slow(struct index_iter *it)
{
	const uint64_t qs = it->start, ql = it->last;
	unsigned int d = it->height;
	const struct index_node *nd = it->node[d];

	for (unsigned int i = it->slot[d] + 1u; i < nd->n; i++) {
		if (nd->start[i] > ql)
			return NULL;
		if (nd->max[i] >= qs) {
			it->slot[d] = (unsigned char)i;
			return nd->ptr[i];
		}
	}
	while (d-- > 0) {
		nd = it->node[d];
		for (unsigned int i = it->slot[d] + 1u; i < nd->n; i++) {
			if (nd->start[i] > ql)
				return NULL;
			if (nd->max[i] >= qs) {
				it->slot[d] = (unsigned char)i;
				return descend(it, d + 1, nd->ptr[i]);
			}
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Invariant checker
 */

struct check_state {
	size_t count, nodes;
	uint64_t prev_start;
	bool any;
	const struct index_node *prev_leaf;	/* the leaves' chain so far */
};

/*
 * Checks the subtree at ND at depth D of HEIGHT, whose starts must lie in
 * [lo, hi]; sets *MAX to its largest last. Returns NULL or why not.
 */
static const char *check_node(const struct index_node *nd, unsigned int d, unsigned int height,
			      uint64_t lo, uint64_t hi, uint64_t *max, struct check_state *cs)
{
	const char *why;

	cs->nodes++;
	if (nd->n > F || nd->n == 0)
		return "node with no slot or too many";
	if (d > 0 && nd->n < INDEX_MIN)
		return "node below the minimum fill";
	if (d == 0 && !nd->leaf && nd->n < 2)
		return "inner root with one child";
	if (nd->leaf != (d == height))
		return "leaves at different depths";
	if (nd->leaf) {
		if (cs->prev_leaf && cs->prev_leaf->next != nd)
			return "a leaf's next is not the leaf that follows it";
		cs->prev_leaf = nd;
	}
	*max = 0;
	for (unsigned int i = 0; i < nd->n; i++) {
		uint64_t m;

		if (nd->leaf) {
			if (nd->start[i] > nd->max[i])
				return "interval with start > last";
			if (nd->start[i] < lo || nd->start[i] > hi)
				return "start outside its separators";
			if (cs->any && nd->start[i] < cs->prev_start)
				return "starts out of order";
			cs->prev_start = nd->start[i];
			cs->any = true;
			cs->count++;
			m = nd->max[i];
		} else {
			uint64_t clo = i ? nd->start[i] : lo;
			uint64_t chi = i + 1 < nd->n ? nd->start[i + 1] : hi;

			if (i && (nd->start[i] < lo || nd->start[i] > hi))
				return "separator outside its parent's";
			if (clo > chi)
				return "separators out of order";
			why = check_node(nd->ptr[i], d + 1, height, clo, chi, &m, cs);
			if (why)
				return why;
			if (m != nd->max[i])
				return "wrong maximum of a slot";
		}
		if (m > *max)
			*max = m;
	}
	return NULL;
}

const char *index_check(const struct index *idx)
{
	struct check_state cs = { 0, 0, 0, false, NULL };
	const char *why;
	uint64_t max;

	if (!idx->root)
		return idx->count || idx->nodes || idx->height ? "empty index with counts" : NULL;
	why = check_node(idx->root, 0, idx->height, 0, UINT64_MAX, &max, &cs);
	if (why)
		return why;
	if (cs.prev_leaf->next)
		return "the last leaf has a next";
	if (cs.count != idx->count)
		return "wrong count";
	if (cs.nodes != idx->nodes)
		return "wrong node count";
	return NULL;
}
