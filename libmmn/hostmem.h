/* SPDX-License-Identifier: MIT */
/* Shared by the brackets and the userfaultfd watcher. */
#ifndef MMN_HOSTMEM_H
#define MMN_HOSTMEM_H

#include "internal.h"

/* The userfaultfd events a bracket's syscall raises: what it explains. */
#define RAISES_REMOVE	(1u << 0)	/* madvise DONTNEED, DONTNEED_LOCKED, FREE, REMOVE */
#define RAISES_UNMAP	(1u << 1)	/* munmap, mmap MAP_FIXED, mremap's old range */
#define RAISES_REMAP	(1u << 2)	/* mremap moving the range */

/*
 * A bracket in flight: its range is announced here before its syscall and
 * withdrawn after, so that the watcher can tell the events the syscall
 * raises from changes made behind the VMM's back.
 */
struct bracket {
	const struct mmn_state *state;	/* the state the bracket invalidates */
	unsigned int raises;	/* RAISES_*: the only events it explains */
	uint64_t start;
	uint64_t end;		/* 0: the top of the space */
	uint64_t remap_to;	/* RAISES_REMAP: the destination; 0 if the kernel picks */
	struct bracket *next;
};

/*
 * Copy up to MAX in-flight bracket ranges into OUT; returns how many there
 * are (possibly more than MAX). Context: never blocks for long.
 */
size_t brackets_snapshot(struct bracket *out, size_t max);

/*
 * How long the watcher has kept REMOVE reports open waiting for the zap:
 * reports that waited, how many of them the bound cut short, the longest
 * and the total wait in nanoseconds. For tests and measurements.
 */
struct uffd_zap_stats {
	uint64_t waits;
	uint64_t expired;
	uint64_t max_ns;
	uint64_t total_ns;
};

struct mmn_uffd_watch;
void uffd_zap_stats(struct mmn_uffd_watch *w, struct uffd_zap_stats *out);

#endif /* MMN_HOSTMEM_H */
