/* SPDX-License-Identifier: MIT */
/* The measurements: each adds its figures to the report. */
#ifndef MMN_BENCH_FIGURES_H
#define MMN_BENCH_FIGURES_H

#include <stdbool.h>
#include <stdint.h>

struct bench_config {
	bool quick;
	unsigned int reps;
	uint64_t min_rep_ns;	/* one repetition of a timed loop lasts at least this */
	uint64_t fault_run_ns;	/* one run of the fault pattern */
	unsigned int itree_max_exp;	/* interval tree sizes 10^3 .. 10^this */
	long cores;		/* usable by this process */
	uint64_t seed;
};

void fig_itree(const struct bench_config *c);
void fig_readside(const struct bench_config *c);
void fig_invalidate(const struct bench_config *c);
void fig_insert_remove(const struct bench_config *c);
void fig_bytes(const struct bench_config *c);
void fig_fault(const struct bench_config *c);

#endif /* MMN_BENCH_FIGURES_H */
