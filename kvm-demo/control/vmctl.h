/* SPDX-License-Identifier: MIT */
/*
 * What drives the VM from outside, for main.c:
 *   control.c  the control command parser (pure: no I/O, no VM; control.h)
 *   ctlio.c    the control socket's server thread and client (no VM)
 *   ctlsock.c  what the control commands do to the VM; --ctl-script
 *   chaos.c    --chaos: random operations and the invariant report
 *   scenario.c the default run's scripted operations, one line each
 *   bench.c    --bench: slot remap and quiescence figures for make bench
 */
#ifndef KVM_DEMO_CONTROL_VMCTL_H
#define KVM_DEMO_CONTROL_VMCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "control/control.h"

struct vm;

/* ---- ctlsock.c: the control socket's commands (control.h: its server) ---- */

int ctl_start(struct ctl_server *s, struct vm *vm);
void ctl_stop(struct ctl_server *s);
int ctl_script_start(struct vm *vm, struct ctl_server *s, const char *path);
unsigned int ctl_script_join(void);
uint64_t kd_rss_kib(void);
void kd_stats_print(struct vm *vm, FILE *f);

/* ---- chaos.c: --chaos (participants: core/hooks.h) ---- */

/*
 * --chaos-ops LIST, --chaos-gap-ms MIN-MAX, --chaos-widen-us N (NAME
 * without the dashes): returns 0, or -1 after one line naming the problem.
 * Before chaos_start().
 */
int chaos_option(const char *name, const char *arg);
/* Whether one of them was given (they need --chaos). */
bool chaos_options_given(void);
int chaos_start(struct vm *vm, unsigned int seconds, uint64_t seed);
/* Joins the chaos thread, prints the report; returns true if an invariant broke. */
bool chaos_finish(struct vm *vm, FILE *f);

/* ---- scenario.c: the demo's scripted memory operations ---- */

/*
 * While the guest's self-test runs (KD_MB_F_QUIET, many passes) and the
 * device moves data between passes: hotplug a DIMM, balloon down and up,
 * remap boot RAM, write-protect and release a slot, unplug the DIMM; one
 * line per step, then the guest is asked to finish (KD_MB_F_FINISH).
 */
int scenario_start(struct vm *vm);
/* Joins the scenario; prints its summary; true if a step failed or anything was stale. */
bool scenario_finish(struct vm *vm, FILE *f);
/* Ask the guest to end after its current pass (KD_MB_F_FINISH); it checks what it wrote. */
void guest_ask_finish(struct vm *vm);

/* ---- bench.c: --bench ---- */

/* Moves boot RAM REPS times, prints the figures, then stops the VM. */
int bench_start(struct vm *vm, unsigned int reps);
void bench_join(void);

#endif
