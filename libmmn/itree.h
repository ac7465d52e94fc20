/* SPDX-License-Identifier: MIT */
/* Interval tree internals shared with the notifier and the tests. */
#ifndef MMN_ITREE_H
#define MMN_ITREE_H

#include "internal.h"

/*
 * Check the red-black properties, the subtree maxima and the parent links
 * of TREE. Returns NULL when all hold, else a static string naming the
 * first broken one. O(n); for tests and debug builds.
 */
const char *itree_check(const struct mmn_itree *tree);

/* Whether NODE is in a tree (it is cleared on init and remove). */
bool itree_node_linked(const struct mmn_itree_node *node);

/*
 * mmn_itree_iter_first() that prefetches both children at every level:
 * fewer dependent misses in a large tree, a few more instructions.
 */
struct mmn_itree_node *itree_first_prefetch(struct mmn_itree *tree,
					    uint64_t start, uint64_t last);

/* Mark NODE as in no tree. */
void itree_node_clear(struct mmn_itree_node *node);

#endif /* MMN_ITREE_H */
