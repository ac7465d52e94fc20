/* SPDX-License-Identifier: MIT */
/* Shared by the brackets and the userfaultfd watcher. */
#ifndef MMN_HOSTMEM_H
#define MMN_HOSTMEM_H

#include "internal.h"

/*
 * A bracket in flight: its range is announced here before its syscall and
 * withdrawn after, so that the watcher can tell the events the syscall
 * raises from changes made behind the VMM's back.
 */
struct bracket {
	const struct mmn_state *state;	/* the state the bracket invalidates */
	uint64_t start;
	uint64_t end;		/* 0: the top of the space */
	struct bracket *next;
};

/*
 * Copy up to MAX in-flight bracket ranges into OUT; returns how many there
 * are (possibly more than MAX). Context: never blocks for long.
 */
size_t brackets_snapshot(struct bracket *out, size_t max);

#endif /* MMN_HOSTMEM_H */
