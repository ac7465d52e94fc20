/* SPDX-License-Identifier: MIT */
/*
 * A benchmark whose baselines compute something else proves nothing:
 * these check, on small workloads, that every baseline gives the answers
 * libmmn gives and that every design keeps its translations coherent.
 * Each returns NULL, or a message naming what disagreed.
 */
#ifndef MMN_BENCH_SELFTEST_H
#define MMN_BENCH_SELFTEST_H

#include <stdint.h>

/* The sorted array finds the same overlaps as the interval tree. */
const char *selftest_itree_vs_sorted(uint64_t seed);

/* Invalidations hit the same subscriptions in libmmn and the rwlock
 * baseline, and the figures' ranges hit 0, 1 and 64 of them. */
const char *selftest_fixture_hits(uint64_t seed);

/* Both builds of the notifier answer a script of calls alike. */
const char *selftest_protocol(void);

/* The fault pattern of DESIGN ("libmmn", "kernel_style", "rwlock") under
 * invalidations installs no stale translation. A run in which faults or
 * invalidations did not both happen is repeated, longer, up to 16 times. */
const char *selftest_fault(const char *design, uint64_t duration_ns);

#endif /* MMN_BENCH_SELFTEST_H */
