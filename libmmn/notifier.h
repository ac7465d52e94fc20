/* SPDX-License-Identifier: MIT */
/* Notifier internals shared with the tests. */
#ifndef MMN_NOTIFIER_H
#define MMN_NOTIFIER_H

#include "internal.h"

/* The state's lock: the tests hold it to prove the read side never takes it. */
void state_lock(struct mmn_state *state);
void state_unlock(struct mmn_state *state);

#endif /* MMN_NOTIFIER_H */
