/* SPDX-License-Identifier: MIT */
/*
 * The interval tree as libmmn shipped it before its insert and remove
 * paths were reworked (libmmn/itree.c at that time, symbols renamed): the
 * "tree before rework" series of the tree figures and of make bench-ir.
 *
 * An intrusive, augmented red-black interval tree.
 *
 * Nodes are ordered by start (equal starts go right, so duplicates keep
 * their insertion order). Each node also keeps subtree_last, the largest
 * 'last' in its subtree. That one number is what makes overlap queries
 * O(log n + k): a subtree whose subtree_last is below the query's start
 * cannot hold an overlapping interval and is skipped whole, and in-order
 * traversal stops at the first start past the query's last.
 *
 * subtree_last is kept exact by three rules: insert raises it along the
 * path it descends; a rotation hands the rotated subtree's value to the
 * new subtree root and recomputes the old one; remove recomputes upward
 * from the lowest changed node and stops as soon as a value comes out
 * unchanged (nothing above it can change then), except across the node
 * that moved into the removed node's place, whose children all changed.
 *
 * The colour lives in bit 0 of parent_color (set = black). A node in no
 * tree has parent_color pointing at itself.
 */
#include "itree-before.h"

#include <stddef.h>

typedef struct mmn_itree_node node_t;

#define BLACK 1u

static inline node_t *parent_of(const node_t *n)
{
	return (node_t *)(n->parent_color & ~(uintptr_t)1);
}

static inline bool is_black(const node_t *n)
{
	return !n || (n->parent_color & BLACK);	/* leaves are black */
}

static inline bool is_red(const node_t *n)
{
	return !is_black(n);
}

static inline void set_parent(node_t *n, node_t *p)
{
	n->parent_color = (uintptr_t)p | (n->parent_color & BLACK);
}

static inline void set_black(node_t *n)
{
	n->parent_color |= BLACK;
}

static inline void set_red(node_t *n)
{
	n->parent_color &= ~(uintptr_t)BLACK;
}

static inline void copy_color(node_t *to, const node_t *from)
{
	to->parent_color = (to->parent_color & ~(uintptr_t)BLACK) |
			   (from->parent_color & BLACK);
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static inline uint64_t compute_last(const node_t *n)
{
	uint64_t m = n->last;

	if (n->left)
		m = max_u64(m, n->left->subtree_last);
	if (n->right)
		m = max_u64(m, n->right->subtree_last);
	return m;
}

void itree_before_clear(node_t *node)
{
	node->parent_color = (uintptr_t)node;
}

bool itree_before_linked(const node_t *node)
{
	return node->parent_color != (uintptr_t)node;
}

void itree_before_init(struct mmn_itree *tree)
{
	tree->root = NULL;
}

bool itree_before_empty(const struct mmn_itree *tree)
{
	return tree->root == NULL;
}

/* Make NEW take OLD's place under OLD's parent P (or at the root). */
static inline void replace_child(struct mmn_itree *tree, node_t *p,
				 node_t *old, node_t *new)
{
	if (!p)
		tree->root = new;
	else if (p->left == old)
		p->left = new;
	else
		p->right = new;
}

/*
 *      x              y
 *     / \            / \
 *    a   y   -->    x   c
 *       / \        / \
 *      b   c      a   b
 */
static void rotate_left(struct mmn_itree *tree, node_t *x)
{
	node_t *y = x->right, *p = parent_of(x);

	x->right = y->left;
	if (y->left)
		set_parent(y->left, x);
	set_parent(y, p);
	replace_child(tree, p, x, y);
	y->left = x;
	set_parent(x, y);
	/* Same nodes below y now as below x before. */
	y->subtree_last = x->subtree_last;
	x->subtree_last = compute_last(x);
}

static void rotate_right(struct mmn_itree *tree, node_t *x)
{
	node_t *y = x->left, *p = parent_of(x);

	x->left = y->right;
	if (y->right)
		set_parent(y->right, x);
	set_parent(y, p);
	replace_child(tree, p, x, y);
	y->right = x;
	set_parent(x, y);
	y->subtree_last = x->subtree_last;
	x->subtree_last = compute_last(x);
}

static void insert_fixup(struct mmn_itree *tree, node_t *n)
{
	node_t *p, *g, *u;

	while ((p = parent_of(n)) && is_red(p)) {
		g = parent_of(p);	/* exists: a red node is never the root */
		if (p == g->left) {
			u = g->right;
			if (is_red(u)) {
				set_black(p);
				set_black(u);
				set_red(g);
				n = g;
				continue;
			}
			if (n == p->right) {
				rotate_left(tree, p);
				n = p;
				p = parent_of(n);
			}
			set_black(p);
			set_red(g);
			rotate_right(tree, g);
		} else {
			u = g->left;
			if (is_red(u)) {
				set_black(p);
				set_black(u);
				set_red(g);
				n = g;
				continue;
			}
			if (n == p->left) {
				rotate_right(tree, p);
				n = p;
				p = parent_of(n);
			}
			set_black(p);
			set_red(g);
			rotate_left(tree, g);
		}
	}
	set_black(tree->root);
}

void itree_before_insert(struct mmn_itree *tree, node_t *node)
{
	node_t **link = &tree->root, *p = NULL;
	const uint64_t start = node->start, last = node->last;

	MMN_BUG_ON(start > last, "itree_before_insert: start %#llx > last %#llx",
		   (unsigned long long)start, (unsigned long long)last);

	while (*link) {
		p = *link;
		if (p->subtree_last < last)
			p->subtree_last = last;
		link = start < p->start ? &p->left : &p->right;
	}
	node->left = node->right = NULL;
	node->subtree_last = last;
	node->parent_color = (uintptr_t)p;	/* red */
	*link = node;
	insert_fixup(tree, node);
}

/* Recompute subtree_last from N upward; stop once a value holds. */
static void propagate(node_t *n)
{
	for (; n; n = parent_of(n)) {
		uint64_t v = compute_last(n);

		if (n->subtree_last == v)
			break;
		n->subtree_last = v;
	}
}

/* X (possibly NULL) under XP carries an extra black: push it up or out. */
static void remove_fixup(struct mmn_itree *tree, node_t *x, node_t *xp)
{
	node_t *w;

	while (x != tree->root && is_black(x)) {
		if (x == xp->left) {
			w = xp->right;	/* exists: x's side is one black short */
			if (is_red(w)) {
				set_black(w);
				set_red(xp);
				rotate_left(tree, xp);
				w = xp->right;
			}
			if (is_black(w->left) && is_black(w->right)) {
				set_red(w);
				x = xp;
				xp = parent_of(x);
				continue;
			}
			if (is_black(w->right)) {
				set_black(w->left);
				set_red(w);
				rotate_right(tree, w);
				w = xp->right;
			}
			copy_color(w, xp);
			set_black(xp);
			set_black(w->right);
			rotate_left(tree, xp);
		} else {
			w = xp->left;
			if (is_red(w)) {
				set_black(w);
				set_red(xp);
				rotate_right(tree, xp);
				w = xp->left;
			}
			if (is_black(w->left) && is_black(w->right)) {
				set_red(w);
				x = xp;
				xp = parent_of(x);
				continue;
			}
			if (is_black(w->left)) {
				set_black(w->right);
				set_red(w);
				rotate_left(tree, w);
				w = xp->left;
			}
			copy_color(w, xp);
			set_black(xp);
			set_black(w->left);
			rotate_right(tree, xp);
		}
		x = tree->root;
	}
	if (x)
		set_black(x);
}

#ifdef MMN_DEBUG
static void check_removable(const struct mmn_itree *tree, const node_t *node)
{
	const node_t *n = node;

	MMN_BUG_ON(!itree_before_linked(node),
		   "itree_before_remove: node [%#llx, %#llx] is not in a tree",
		   (unsigned long long)node->start, (unsigned long long)node->last);
	while (parent_of(n))
		n = parent_of(n);
	MMN_BUG_ON(n != tree->root,
		   "itree_before_remove: node [%#llx, %#llx] is not in this tree",
		   (unsigned long long)node->start, (unsigned long long)node->last);
}
#else
static inline void check_removable(const struct mmn_itree *tree, const node_t *node)
{
	(void)tree;
	(void)node;
}
#endif

void itree_before_remove(struct mmn_itree *tree, node_t *z)
{
	node_t *p = parent_of(z), *x, *xp;
	bool removed_black;

	check_removable(tree, z);

	if (!z->left || !z->right) {
		/* At most one child: it takes z's place. */
		x = z->left ? z->left : z->right;
		xp = p;
		removed_black = is_black(z);
		if (x)
			set_parent(x, p);
		replace_child(tree, p, z, x);
		propagate(p);
	} else {
		/* Two children: z's successor y (leftmost on the right) moves in. */
		node_t *y = z->right, *yp;

		while (y->left)
			y = y->left;
		yp = parent_of(y);
		x = y->right;
		removed_black = is_black(y);

		if (yp == z) {
			xp = y;
		} else {
			xp = yp;
			yp->left = x;
			if (x)
				set_parent(x, yp);
			y->right = z->right;
			set_parent(z->right, y);
		}
		y->left = z->left;
		set_parent(z->left, y);
		y->parent_color = z->parent_color;	/* z's parent and colour */
		replace_child(tree, p, z, y);

		/* Below y, up to it; then y itself, whose children changed. */
		if (yp != z) {
			node_t *n;

			for (n = yp; n != y; n = parent_of(n))
				n->subtree_last = compute_last(n);
		}
		y->subtree_last = compute_last(y);
		propagate(p);
	}

	if (removed_black)
		remove_fixup(tree, x, xp);
	itree_before_clear(z);
}

/*
 * The leftmost node of the subtree at N that overlaps [start, last].
 * Precondition: N->subtree_last >= start.
 */
static node_t *subtree_first(node_t *n, uint64_t start, uint64_t last)
{
	for (;;) {
		if (n->left && n->left->subtree_last >= start) {
			n = n->left;
			continue;
		}
		/* Nothing to the left: n or its right holds the first candidate. */
		if (n->start > last)
			return NULL;
		if (n->last >= start)
			return n;
		if (!n->right || n->right->subtree_last < start)
			return NULL;
		n = n->right;
	}
}

node_t *itree_before_iter_first(struct mmn_itree *tree,
					uint64_t start, uint64_t last)
{
	node_t *root = tree->root;

	if (!root || root->subtree_last < start)
		return NULL;
	return subtree_first(root, start, last);
}

node_t *itree_before_iter_next(node_t *node, uint64_t start, uint64_t last)
{
	node_t *right = node->right, *prev;

	for (;;) {
		if (right && right->subtree_last >= start)
			return subtree_first(right, start, last);
		/* Climb to the first ancestor we reach from its left. */
		do {
			prev = node;
			node = parent_of(node);
			if (!node)
				return NULL;
		} while (node->right == prev);
		if (node->start > last)
			return NULL;
		if (node->last >= start)
			return node;
		right = node->right;
	}
}

/* ------------------------------------------------------------------------
 * Invariant checker
 */

/*
 * Returns the black height of N's subtree, or -1 with *why set. Every
 * start in the subtree must lie in [lo, hi].
 */
static int check_subtree(const node_t *n, const node_t *parent,
			 uint64_t lo, uint64_t hi, const char **why)
{
	int lh, rh;

	if (!n)
		return 1;
	if (parent_of(n) != parent) {
		*why = "bad parent link";
		return -1;
	}
	if (n->start > n->last) {
		*why = "node with start > last";
		return -1;
	}
	if (n->start < lo || n->start > hi) {
		*why = "order by start violated";
		return -1;
	}
	if (is_red(n) && (is_red(n->left) || is_red(n->right))) {
		*why = "red node with a red child";
		return -1;
	}
	if (n->subtree_last != compute_last(n)) {
		*why = "wrong subtree_last";
		return -1;
	}
	lh = check_subtree(n->left, n, lo, n->start, why);
	if (lh < 0)
		return -1;
	rh = check_subtree(n->right, n, n->start, hi, why);
	if (rh < 0)
		return -1;
	if (lh != rh) {
		*why = "black heights differ";
		return -1;
	}
	return lh + (is_black(n) ? 1 : 0);
}

const char *itree_before_check(const struct mmn_itree *tree)
{
	const char *why = NULL;

	if (tree->root && !is_black(tree->root))
		return "root is red";
	if (check_subtree(tree->root, NULL, 0, UINT64_MAX, &why) < 0)
		return why;
	return NULL;
}
