/* SPDX-License-Identifier: MIT */
/*
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
#include "itree.h"

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

void itree_node_clear(node_t *node)
{
	node->parent_color = (uintptr_t)node;
}

bool itree_node_linked(const node_t *node)
{
	return node->parent_color != (uintptr_t)node;
}

MMN_EXPORT void mmn_itree_init(struct mmn_itree *tree)
{
	tree->root = NULL;
}

MMN_EXPORT bool mmn_itree_empty(const struct mmn_itree *tree)
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
 * The second half of a rotation that lifts NEW above OLD, once the child
 * links are set: NEW takes OLD's parent and colour, OLD goes under NEW
 * with COLOR. Colours are stored whole, never read back: every caller
 * knows them, and a store does not wait for a cold line.
 */
static inline void rotate_links(struct mmn_itree *tree, node_t *old, node_t *new,
				uintptr_t color)
{
	uintptr_t pc = old->parent_color;

	new->parent_color = pc;
	old->parent_color = (uintptr_t)new | color;
	replace_child(tree, (node_t *)(pc & ~(uintptr_t)BLACK), old, new);
	/* Same nodes below NEW now as below OLD before. */
	new->subtree_last = old->subtree_last;
	old->subtree_last = compute_last(old);
}

/* N is red and in place, its subtree maxima are exact: restore the colours. */
static void insert_fixup(struct mmn_itree *tree, node_t *n)
{
	node_t *p = (node_t *)n->parent_color, *g, *u, *t;

	for (;;) {
		if (!p) {
			n->parent_color = BLACK;	/* the root */
			return;
		}
		if (p->parent_color & BLACK)
			return;
		g = (node_t *)p->parent_color;	/* p is red: not the root */
		u = g->right;
		if (p != u) {
			if (u && !(u->parent_color & BLACK)) {
				/* Red uncle: push the red up to g. */
				u->parent_color = (uintptr_t)g | BLACK;
				p->parent_color = (uintptr_t)g | BLACK;
				n = g;
				p = parent_of(n);
				n->parent_color = (uintptr_t)p;
				continue;
			}
			t = p->right;
			if (n == t) {
				/* Inner child: rotate it to the outside first. */
				t = n->left;
				p->right = t;
				n->left = p;
				if (t)
					t->parent_color = (uintptr_t)p | BLACK;
				p->parent_color = (uintptr_t)n;
				n->subtree_last = p->subtree_last;
				p->subtree_last = compute_last(p);
				p = n;
				t = n->right;
			}
			g->left = t;
			p->right = g;
			if (t)
				t->parent_color = (uintptr_t)g | BLACK;
			rotate_links(tree, g, p, 0);
			return;
		}
		u = g->left;
		if (u && !(u->parent_color & BLACK)) {
			u->parent_color = (uintptr_t)g | BLACK;
			p->parent_color = (uintptr_t)g | BLACK;
			n = g;
			p = parent_of(n);
			n->parent_color = (uintptr_t)p;
			continue;
		}
		t = p->left;
		if (n == t) {
			t = n->right;
			p->left = t;
			n->right = p;
			if (t)
				t->parent_color = (uintptr_t)p | BLACK;
			p->parent_color = (uintptr_t)n;
			n->subtree_last = p->subtree_last;
			p->subtree_last = compute_last(p);
			p = n;
			t = n->left;
		}
		g->right = t;
		p->left = g;
		if (t)
			t->parent_color = (uintptr_t)g | BLACK;
		rotate_links(tree, g, p, 0);
		return;
	}
}

MMN_EXPORT void mmn_itree_insert(struct mmn_itree *tree, node_t *node)
{
	node_t **link = &tree->root, *p = NULL;
	const uint64_t start = node->start, last = node->last;

	MMN_BUG_ON(start > last, "mmn_itree_insert: start %#llx > last %#llx",
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

/*
 * Recompute subtree_last from N upward, N's subtree having lost nodes
 * only; stop once a value holds (nothing above it can change then).
 */
static void propagate(node_t *n)
{
	for (; n; n = parent_of(n)) {
		uint64_t v = compute_last(n);

		if (n->subtree_last == v)
			break;
		n->subtree_last = v;
	}
}

/*
 * A black leaf was removed below P: the side it was on is one black
 * short. Push the shortage up until a red node absorbs it or a rotation
 * ends it. Subtree maxima are exact on entry; rotations keep them so.
 */
static void remove_fixup(struct mmn_itree *tree, node_t *p)
{
	node_t *n = NULL, *s, *near, *far;

	for (;;) {
		s = p->right;
		if (n != s) {
			/* n is p's left; its sibling s exists (it is a black taller). */
			if (!(s->parent_color & BLACK)) {
				/* Red sibling: rotate it above p; a black one comes next to n. */
				near = s->left;
				p->right = near;
				s->left = p;
				near->parent_color = (uintptr_t)p | BLACK;
				rotate_links(tree, p, s, 0);
				s = near;
			}
			far = s->right;
			if (!far || (far->parent_color & BLACK)) {
				near = s->left;
				if (!near || (near->parent_color & BLACK)) {
					/* Both nephews black: s turns red, p carries the shortage. */
					s->parent_color = (uintptr_t)p;
					if (!(p->parent_color & BLACK)) {
						p->parent_color |= BLACK;
						return;
					}
					n = p;
					p = parent_of(n);
					if (!p)
						return;
					continue;
				}
				/* Near nephew red: rotate it above s; s becomes the far one. */
				far = near->right;
				s->left = far;
				near->right = s;
				p->right = near;
				if (far)
					far->parent_color = (uintptr_t)s | BLACK;
				near->subtree_last = s->subtree_last;
				s->subtree_last = compute_last(s);
				far = s;
				s = near;
			}
			/* Far nephew red: rotate s above p, which turns black. */
			near = s->left;
			p->right = near;
			s->left = p;
			if (near)
				set_parent(near, p);
			rotate_links(tree, p, s, BLACK);
			far->parent_color = (uintptr_t)s | BLACK;
			return;
		}
		s = p->left;
		if (!(s->parent_color & BLACK)) {
			near = s->right;
			p->left = near;
			s->right = p;
			near->parent_color = (uintptr_t)p | BLACK;
			rotate_links(tree, p, s, 0);
			s = near;
		}
		far = s->left;
		if (!far || (far->parent_color & BLACK)) {
			near = s->right;
			if (!near || (near->parent_color & BLACK)) {
				s->parent_color = (uintptr_t)p;
				if (!(p->parent_color & BLACK)) {
					p->parent_color |= BLACK;
					return;
				}
				n = p;
				p = parent_of(n);
				if (!p)
					return;
				continue;
			}
			far = near->left;
			s->right = far;
			near->left = s;
			p->left = near;
			if (far)
				far->parent_color = (uintptr_t)s | BLACK;
			near->subtree_last = s->subtree_last;
			s->subtree_last = compute_last(s);
			far = s;
			s = near;
		}
		near = s->right;
		p->left = near;
		s->right = p;
		if (near)
			set_parent(near, p);
		rotate_links(tree, p, s, BLACK);
		far->parent_color = (uintptr_t)s | BLACK;
		return;
	}
}

#ifdef MMN_DEBUG
static void check_removable(const struct mmn_itree *tree, const node_t *node)
{
	const node_t *n = node;

	MMN_BUG_ON(!itree_node_linked(node),
		   "mmn_itree_remove: node [%#llx, %#llx] is not in a tree",
		   (unsigned long long)node->start, (unsigned long long)node->last);
	while (parent_of(n))
		n = parent_of(n);
	MMN_BUG_ON(n != tree->root,
		   "mmn_itree_remove: node [%#llx, %#llx] is not in this tree",
		   (unsigned long long)node->start, (unsigned long long)node->last);
}
#else
static inline void check_removable(const struct mmn_itree *tree, const node_t *node)
{
	(void)tree;
	(void)node;
}
#endif

/*
 * Only the removal of a black leaf unbalances the tree: a node with one
 * child is black with a red leaf below it, which takes its place and
 * colour; a node with two children is replaced by its successor, which
 * has no left child, and so on recursively for the successor's place.
 */
MMN_EXPORT void mmn_itree_remove(struct mmn_itree *tree, node_t *z)
{
	node_t *l = z->left, *r = z->right, *p, *rebalance = NULL;
	const uintptr_t pc = z->parent_color;
	const uint64_t z_max = z->subtree_last;

	check_removable(tree, z);
	p = (node_t *)(pc & ~(uintptr_t)BLACK);

	if (!l || !r) {
		node_t *c = l ? l : r;

		replace_child(tree, p, z, c);
		if (c)
			c->parent_color = pc;	/* red leaf under black z */
		else if (pc & BLACK)
			rebalance = p;
		/* p lost z's subtree; if that did not hold p's maximum, no change. */
		if (p && z_max >= p->subtree_last)
			propagate(p);
	} else {
		node_t *y = r, *yp = r, *c;

		if (r->left) {
			/* The successor y is deeper: its right child takes its place. */
			do {
				yp = y;
				y = y->left;
			} while (y->left);
			c = y->right;
			yp->left = c;
			y->right = r;
			set_parent(r, y);
		} else {
			c = y->right;	/* y is z's right child and keeps its right */
		}
		y->left = l;
		set_parent(l, y);
		replace_child(tree, p, z, y);
		if (c)
			c->parent_color = (uintptr_t)yp | BLACK;	/* red leaf under black y */
		else if (y->parent_color & BLACK)
			rebalance = yp;
		y->parent_color = pc;

		/* Below y's new place, the nodes that lost y; then y itself. */
		if (yp != y) {
			for (node_t *n = yp; n != y; n = parent_of(n)) {
				uint64_t v = compute_last(n);

				if (n->subtree_last == v)
					break;
				n->subtree_last = v;
			}
		}
		y->subtree_last = compute_last(y);
		if (p && y->subtree_last != z_max)
			propagate(p);
	}

	if (rebalance)
		remove_fixup(tree, rebalance);
	itree_node_clear(z);
}

/*
 * The leftmost node of the subtree at N that overlaps [start, last].
 * Precondition: N->subtree_last >= start.
 */
static node_t *subtree_first(node_t *n, uint64_t start, uint64_t last)
{
	/*
	 * No prefetch of the right child here: it halves the misses of the
	 * levels that turn right, but costs two instructions a level, more
	 * than the budget of docs/performance.md allows; the interval index
	 * (index.c) is the answer to the misses.
	 */
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

/*
 * subtree_first() with both children of each node fetched as soon as the
 * node is reached: a level that looks left, finds nothing and turns right
 * then waits for one miss instead of two in a row. For the notifier's
 * walks over large trees; the public iterator keeps its lower instruction
 * count (see mmn_itree_iter_first()).
 */
node_t *itree_first_prefetch(struct mmn_itree *tree, uint64_t start, uint64_t last)
{
	node_t *n = tree->root;

	if (!n || n->subtree_last < start)
		return NULL;
	for (;;) {
		node_t *left = n->left, *right = n->right;

		__builtin_prefetch(right);
		if (left) {
			__builtin_prefetch(left->left);
			__builtin_prefetch(left->right);
			if (left->subtree_last >= start) {
				n = left;
				continue;
			}
		}
		if (n->start > last)
			return NULL;
		if (n->last >= start)
			return n;
		if (!right || right->subtree_last < start)
			return NULL;
		n = right;
	}
}

MMN_EXPORT node_t *mmn_itree_iter_first(struct mmn_itree *tree,
					uint64_t start, uint64_t last)
{
	node_t *root = tree->root;

	if (!root || root->subtree_last < start)
		return NULL;
	return subtree_first(root, start, last);
}

MMN_EXPORT node_t *mmn_itree_iter_next(node_t *node, uint64_t start, uint64_t last)
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

const char *itree_check(const struct mmn_itree *tree)
{
	const char *why = NULL;

	if (tree->root && !is_black(tree->root))
		return "root is red";
	if (check_subtree(tree->root, NULL, 0, UINT64_MAX, &why) < 0)
		return why;
	return NULL;
}
