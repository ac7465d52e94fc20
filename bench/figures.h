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
	const char *kvm_demo_path;	/* kvm-demo --bench's lines, or NULL */
};

void fig_itree(const struct bench_config *c);
void fig_readside(const struct bench_config *c);
void fig_invalidate(const struct bench_config *c);
void fig_insert_remove(const struct bench_config *c);
void fig_bytes(const struct bench_config *c);
void fig_fault(const struct bench_config *c);
/* kvm-demo-figures.c: the device's shadow map, and kvm-demo --bench's figures. */
void fig_shadow(const struct bench_config *c);
void fig_kvm_demo(const struct bench_config *c);
/* vhost-user-figures.c: the vhost-user disk through qemu-storage-daemon. */
void fig_vhost_user(const struct bench_config *c);

/* "mmn-bench: MESSAGE" on stderr, then exit status 2: a measurement went wrong. */
__attribute__((format(printf, 1, 2), noreturn))
void die(const char *fmt, ...);

struct figure;
/* The rerun-when-disturbed machinery of figures.c, for groups elsewhere. */
void figures_group_begin(const struct bench_config *c);
void figures_group_mark(struct figure *f);
/* One single-threaded repetition: MEASURE(ctx), rerun while disturbed. */
double figures_repeat(double (*measure)(void *ctx), void *ctx);
/* How many operations make RUN(ctx, ops) last MIN_NS. */
uint64_t figures_calibrate(uint64_t (*run)(void *ctx, uint64_t ops), void *ctx, uint64_t min_ns,
			   uint64_t max_ops);

#endif /* MMN_BENCH_FIGURES_H */
