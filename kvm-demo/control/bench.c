/* SPDX-License-Identifier: MIT */
/*
 * kvm-demo --bench REPS: the figures of slot sync for `make bench`.
 *
 * While the guest runs device traffic (so that the device's worker is a
 * reader of the shadow map at any moment) and its other vCPUs spin, one
 * thread moves boot RAM to a new host address REPS times (plus one warm-up
 * move) with the same memops_remap() the control socket uses, and takes
 * timestamps along the way (struct kd_bench_marks):
 *
 *   t_start    memops_remap(), just before mmn_mremap() starts the
 *              invalidation of the host range;
 *   t_device   the region's callback: the guest-physical invalidation
 *              returned, so the shadow map's readers have drained;
 *   t_quiesced the same callback, vCPUs parked and the slot deleted: no
 *              device or vCPU user of the old translation remains;
 *   t_running  the last vCPU leaving vcpu_park() after the slot was re-added
 *              at the new address: every vCPU is back on its way to KVM_RUN.
 *
 * The figures go to stdout in the format of bench/kvm-figures.h. The run
 * fails (exit status 1) when the device or a vCPU met a stale translation,
 * a request failed, the backstop saw a change outside the brackets, or the
 * device served nothing while the slot moved.
 */
#define _GNU_SOURCE
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "core/vm.h"
#include "mem/mem.h"
#include "devices/vdev.h"
#include "control/vmctl.h"
#include "kvm-figures.h"

#define BENCH_WARMUP		1
#define BENCH_SETTLE_MS		50	/* between moves: the map refills */
#define BENCH_START_S		120	/* for the guest's first requests */
#define BENCH_RESUME_S		10	/* for the vCPUs to run after a move */

static struct {
	struct vm *vm;
	unsigned int reps;
	pthread_t thread;
	bool started;
	struct kd_bench_marks marks;
} bench;

/* Waits for t_running of the last move; false on timeout or stop. */
static bool wait_running(struct vm *vm)
{
	double deadline = kd_now() + BENCH_RESUME_S;
	bool ok;

	pthread_mutex_lock(&vm->pause_lock);
	while (bench.marks.t_running == 0 && !atomic_load(&vm->stopping) && kd_now() < deadline) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts);
	}
	ok = bench.marks.t_running != 0;
	pthread_mutex_unlock(&vm->pause_lock);
	return ok;
}

static void stop_failed(struct vm *vm, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void stop_failed(struct vm *vm, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kd_error("--bench: %s", msg);
	vm_request_stop(vm, VM_STOP_ERROR, status);
}

static void *bench_main(void *arg)
{
	struct vm *vm = arg;
	double remap[KDFIG_MAX_VALUES], quiesce[KDFIG_MAX_VALUES], drain[KDFIG_MAX_VALUES];
	uint64_t ok0, ok1, errors, stale_exits, unbracketed;
	double deadline = kd_now() + BENCH_START_S;
	char err[512];

	/* Device traffic first: the drain figure needs a reader. */
	vdev_counts(vm, &ok0, &errors);
	while (ok0 == 0 && !atomic_load(&vm->stopping) && kd_now() < deadline) {
		kd_sleep_ms(20);
		vdev_counts(vm, &ok0, &errors);
	}
	if (atomic_load(&vm->stopping))
		return NULL;
	if (ok0 == 0) {
		stop_failed(vm, KD_EXIT_HOST, "the guest sent no device request within %d s",
			    BENCH_START_S);
		return NULL;
	}
	for (unsigned int i = 0; i < BENCH_WARMUP + bench.reps; i++) {
		const struct kd_bench_marks *m = &bench.marks;

		kd_sleep_ms(BENCH_SETTLE_MS);
		if (i == BENCH_WARMUP)
			vdev_counts(vm, &ok0, &errors);
		pthread_mutex_lock(&vm->pause_lock);
		memset(&bench.marks, 0, sizeof(bench.marks));
		vm->bench = &bench.marks;
		pthread_mutex_unlock(&vm->pause_lock);
		if (memops_remap(vm, 0, 0, err, sizeof(err)) != 0) {
			stop_failed(vm, KD_EXIT_HOST, "move %u of boot RAM: %s", i + 1, err);
			return NULL;
		}
		if (!wait_running(vm)) {
			if (!atomic_load(&vm->stopping))
				stop_failed(vm, KD_EXIT_HOST, "move %u: the vCPUs did not run again "
					    "within %d s", i + 1, BENCH_RESUME_S);
			return NULL;
		}
		pthread_mutex_lock(&vm->pause_lock);
		vm->bench = NULL;
		pthread_mutex_unlock(&vm->pause_lock);
		if (!(m->t_start > 0 && m->t_device >= m->t_start && m->t_quiesced >= m->t_device &&
		      m->t_running >= m->t_quiesced)) {
			stop_failed(vm, KD_EXIT_HOST, "move %u: timestamps out of order (start %.6f, "
				    "device %.6f, quiesced %.6f, running %.6f): the callbacks did "
				    "not run as slots.c says", i + 1, m->t_start, m->t_device,
				    m->t_quiesced, m->t_running);
			return NULL;
		}
		if (i < BENCH_WARMUP)
			continue;
		remap[i - BENCH_WARMUP] = (m->t_running - m->t_start) * 1e6;
		quiesce[i - BENCH_WARMUP] = (m->t_quiesced - m->t_start) * 1e6;
		drain[i - BENCH_WARMUP] = (m->t_device - m->t_start) * 1e6;
	}
	vdev_counts(vm, &ok1, &errors);
	stale_exits = atomic_load(&vm->counters.stale_exits);
	unbracketed = atomic_load(&vm->counters.unbracketed);
	if (errors || stale_exits || unbracketed) {
		stop_failed(vm, 1, "%" PRIu64 " device errors (stale accesses, failed or rejected "
			    "requests, ring faults), %" PRIu64 " stale-slot exits, %" PRIu64 " changes "
			    "outside the brackets: the figures are of a broken run", errors,
			    stale_exits, unbracketed);
		return NULL;
	}
	if (ok1 == ok0) {
		stop_failed(vm, 1, "the device completed no request while the slot moved: "
			    "the drain figure would have no reader to wait for");
		return NULL;
	}
	kdfig_print_header(stdout);
	kdfig_print_info(stdout, "vcpus", "%u", vm->nr_vcpus);
	kdfig_print_info(stdout, "slot", "boot RAM, %" PRIu64 " MiB", vm->regions[0].size >> 20);
	kdfig_print_info(stdout, "device_requests", "%" PRIu64, ok1 - ok0);
	kdfig_print_figure(stdout, KDFIG_SLOT_REMAP, "us", remap, bench.reps);
	kdfig_print_figure(stdout, KDFIG_QUIESCENCE, "us", quiesce, bench.reps);
	kdfig_print_figure(stdout, KDFIG_DEVICE_DRAIN, "us", drain, bench.reps);
	kdfig_print_end(stdout);
	vm_request_stop(vm, VM_STOP_CONTROL, 0);
	return NULL;
}

int bench_start(struct vm *vm, unsigned int reps)
{
	bench.vm = vm;
	bench.reps = reps;
	printf("kvm-demo: bench: %u moves of boot RAM (after %d warm-up) under device traffic\n",
	       reps, BENCH_WARMUP);
	if (pthread_create(&bench.thread, NULL, bench_main, vm) != 0) {
		kd_error("--bench: cannot start its thread");
		return -1;
	}
	bench.started = true;
	return 0;
}

void bench_join(void)
{
	if (bench.started)
		pthread_join(bench.thread, NULL);
	bench.started = false;
}
