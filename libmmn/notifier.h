/* SPDX-License-Identifier: MIT */
/* Notifier internals shared with the tests. */
#ifndef MMN_NOTIFIER_H
#define MMN_NOTIFIER_H

#include "internal.h"

#include <stdint.h>

/* The state's lock: the tests hold it to prove the read side never takes it. */
void state_lock(struct mmn_state *state);
void state_unlock(struct mmn_state *state);

/*
 * Check STATE's invariants at rest or between calls: the tree's, seq odd
 * only while invalidations run, the deferred list empty while seq is even
 * and consistent with the tree, the counts of subscriptions. Returns NULL
 * when all hold, else a static string naming the first broken one. Takes
 * the state's locks; for tests.
 */
const char *notifier_check(struct mmn_state *state);

/*
 * Walk through the index once the tree holds MIN subscriptions (0: always),
 * instead of INDEX_BUILD_MIN, so that the tests and fuzzers reach both
 * walks and the index's changes with few subscriptions.
 */
void notifier_index_min(struct mmn_state *state, uint64_t min);

#endif /* MMN_NOTIFIER_H */
