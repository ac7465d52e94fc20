/* SPDX-License-Identifier: MIT */
/* The interval tree before its rework, linked beside libmmn's for the bench. */
#ifndef MMN_BENCH_ITREE_BEFORE_H
#define MMN_BENCH_ITREE_BEFORE_H

#include "internal.h"

void itree_before_init(struct mmn_itree *tree);
bool itree_before_empty(const struct mmn_itree *tree);
void itree_before_insert(struct mmn_itree *tree, struct mmn_itree_node *node);
void itree_before_remove(struct mmn_itree *tree, struct mmn_itree_node *node);
struct mmn_itree_node *itree_before_iter_first(struct mmn_itree *tree,
					       uint64_t start, uint64_t last);
struct mmn_itree_node *itree_before_iter_next(struct mmn_itree_node *node,
					      uint64_t start, uint64_t last);
const char *itree_before_check(const struct mmn_itree *tree);
bool itree_before_linked(const struct mmn_itree_node *node);
void itree_before_clear(struct mmn_itree_node *node);

#endif /* MMN_BENCH_ITREE_BEFORE_H */
