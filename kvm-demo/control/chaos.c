/* SPDX-License-Identifier: MIT */
/*
 * --chaos SECONDS: one thread performs random memory operations of every
 * kind at random times while the guest's self-test runs on every vCPU,
 * then stops the VM and reports. Invariants: the guest found no corrupt
 * word; no vCPU exit came from a missing or stale slot; the backstop saw
 * no change that bypassed the brackets; every kind of operation succeeded
 * at least once and the guest verified pages. Other parts of kvm-demo (a
 * device) join through chaos_register().
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "core/vm.h"
#include "mem/mem.h"
#include "control/vmctl.h"

enum chaos_kind {
	K_HOTPLUG, K_UNPLUG, K_SETMEM, K_REMAP, K_PROTECT, K_RECLAIM, K_NONBLOCK_REMAP,
	K_PARTICIPANT, K_COUNT
};
static const char *const kind_names[K_COUNT] = {
	"hotplug", "unplug", "setmem", "remap", "protect", "reclaim", "nonblock-remap",
	"participants",
};

#define MAX_PARTICIPANTS 8
#define HISTORY 16		/* operations remembered for a post-mortem */

struct op_record {
	double start, end;	/* seconds since the chaos started */
	enum chaos_kind kind;
	bool ok;
	char what[120];		/* the operation's own message */
};

static struct {
	const struct chaos_participant *parts[MAX_PARTICIPANTS];
	unsigned int nr_parts;
	struct vm *vm;
	pthread_t thread;
	bool started;
	unsigned int seconds;
	uint64_t rng;
	uint64_t ok[K_COUNT], failed[K_COUNT];
	double t0;
	struct op_record history[HISTORY];
	unsigned int nr_ops;	/* history[nr_ops % HISTORY] is the next */
	bool guest_finished;	/* asked to, the guest ended with its result */
	/* --chaos-ops, --chaos-gap-ms: what to draw and how long between draws. */
	unsigned int kinds_mask;	/* 0: every kind */
	unsigned int gap_min_ms, gap_max_ms;
	bool options_given;
} chaos = { .gap_min_ms = 5, .gap_max_ms = 104 };

static bool selected(enum chaos_kind k)
{
	return !chaos.kinds_mask || (chaos.kinds_mask & 1u << k);
}

/* "remap,unplug": the kinds named, by kind_names[] ("balloon" is setmem). */
static int parse_kinds(const char *arg)
{
	char buf[256], *save = NULL;
	unsigned int mask = 0;

	if (strlen(arg) >= sizeof(buf)) {
		kd_error("--chaos-ops: the list is too long");
		return -1;
	}
	strcpy(buf, arg);
	for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		int k;

		for (k = 0; k < K_COUNT; k++)
			if (strcmp(w, kind_names[k]) == 0 ||
			    (k == K_SETMEM && strcmp(w, "balloon") == 0) ||
			    (k == K_PARTICIPANT && strcmp(w, "device") == 0))
				break;
		if (k == K_COUNT) {
			kd_error("--chaos-ops: unknown kind '%s' (expected a comma-separated list of "
				 "hotplug, unplug, setmem or balloon, remap, protect, reclaim, "
				 "nonblock-remap, device)", w);
			return -1;
		}
		mask |= 1u << k;
	}
	if (!mask) {
		kd_error("--chaos-ops '%s': no kind named", arg);
		return -1;
	}
	chaos.kinds_mask = mask;
	return 0;
}

/* A number at S, part of the option OPT's argument ARG. */
static int parse_uint(const char *opt, const char *arg, const char *s, char **end,
		      unsigned long max, unsigned long *v)
{
	errno = 0;
	*v = strtoul(s, end, 10);
	if (*s < '0' || *s > '9' || errno || *v > max) {
		kd_error("--%s '%s': expected a number, 0 to %lu", opt, arg, max);
		return -1;
	}
	return 0;
}

int chaos_option(const char *name, const char *arg)
{
	unsigned long a, b;
	char *end;

	chaos.options_given = true;
	if (strcmp(name, "chaos-ops") == 0)
		return parse_kinds(arg);
	if (strcmp(name, "chaos-gap-ms") == 0) {
		if (parse_uint(name, arg, arg, &end, 10000, &a) < 0)
			return -1;
		b = a;
		if (*end == '-' && parse_uint(name, arg, end + 1, &end, 10000, &b) < 0)
			return -1;
		if (*end || b < a) {
			kd_error("--chaos-gap-ms '%s': expected MS or MIN-MAX with MIN <= MAX", arg);
			return -1;
		}
		chaos.gap_min_ms = (unsigned int)a;
		chaos.gap_max_ms = (unsigned int)b;
		return 0;
	}
	if (strcmp(name, "chaos-widen-us") == 0) {
		if (parse_uint(name, arg, arg, &end, 1000000, &a) < 0)
			return -1;
		if (*end) {
			kd_error("--chaos-widen-us '%s': expected microseconds, 0 to 1000000", arg);
			return -1;
		}
		slots_widen_windows((unsigned int)a);
		return 0;
	}
	kd_error("chaos: no option '%s'", name);
	return -1;
}

bool chaos_options_given(void)
{
	return chaos.options_given;
}

/* How long the guest may take to finish its pass at the end, with a disk. */
#define CHAOS_FINISH_S	60.0

int chaos_register(const struct chaos_participant *p)
{
	if (chaos.nr_parts == MAX_PARTICIPANTS)
		return -1;
	chaos.parts[chaos.nr_parts++] = p;
	return 0;
}

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the seed that is printed. */
	chaos.rng ^= chaos.rng >> 12;
	chaos.rng ^= chaos.rng << 25;
	chaos.rng ^= chaos.rng >> 27;
	return chaos.rng * 0x2545f4914f6cdd1dull;
}

/* A random region index holding memory: DIMMs only when DIMMS_ONLY. */
static int pick_slot(struct vm *vm, bool dimms_only)
{
	unsigned int cand[1 + KD_MAX_DIMMS], n = 0;

	pthread_mutex_lock(&vm->ops_lock);
	for (unsigned int i = dimms_only ? 1 : 0; i < vm->nr_regions; i++)
		if (vm->regions[i].hva)
			cand[n++] = i;
	pthread_mutex_unlock(&vm->ops_lock);
	return n ? (int)cand[rnd() % n] : -1;
}

static int one_op(struct vm *vm, enum chaos_kind k, char *err, size_t errlen)
{
	int slot;

	switch (k) {
	case K_HOTPLUG:
		return memops_hotplug(vm, (1 + rnd() % 4) * (2u << 20), 0, err, errlen);
	case K_UNPLUG:
		slot = pick_slot(vm, true);
		if (slot < 0)
			return snprintf(err, errlen, "no DIMM to unplug"), -1;
		return memops_unplug(vm, (unsigned int)slot, err, errlen);
	case K_SETMEM: {
		uint64_t total;

		pthread_mutex_lock(&vm->ops_lock);
		total = vm->cfg->boot_ram + vm->dimm_bytes;
		pthread_mutex_unlock(&vm->ops_lock);
		uint64_t balloon = (rnd() % (vm->balloon_cap / KD_PAGE_SIZE + 1)) * KD_PAGE_SIZE;

		return memops_setmem(vm, total - balloon, err, errlen);
	}
	case K_REMAP:
		slot = pick_slot(vm, false);
		return slot < 0 ? -1 : memops_remap(vm, (unsigned int)slot, 0, err, errlen);
	case K_PROTECT:
		slot = pick_slot(vm, false);
		if (slot < 0 || memops_protect(vm, (unsigned int)slot, true, err, errlen) < 0)
			return -1;
		kd_sleep_ms(10 + (unsigned int)(rnd() % 150));	/* a snapshot pass */
		return memops_protect(vm, (unsigned int)slot, false, err, errlen);
	case K_RECLAIM:
		return memops_reclaim(vm) < 0 ? -1 : 0;
	case K_NONBLOCK_REMAP:
		/* Must be refused while vCPUs run; succeeding is fine too. */
		slot = pick_slot(vm, false);
		if (slot < 0)
			return -1;
		return memops_remap(vm, (unsigned int)slot, MMN_NONBLOCK, err, errlen) == -1 ? -1 : 0;
	case K_PARTICIPANT:
		if (!chaos.nr_parts)
			return 0;
		{
			const struct chaos_participant *p = chaos.parts[rnd() % chaos.nr_parts];

			return p->op ? p->op(vm, rnd(), err, errlen) : 0;
		}
	default:
		return -1;
	}
}

/* The kinds that must succeed at least once for a run to count. */
static bool every_kind_done(void)
{
	for (int k = K_HOTPLUG; k <= K_PROTECT; k++)
		if (selected((enum chaos_kind)k) && chaos.ok[k] == 0)
			return false;
	return true;
}

/*
 * Go on until SECONDS are over, and past that until every kind succeeded
 * once (for CHAOS_GRACE_S or as long again, whichever is longer): on a
 * busy host under emulation a hotplug, which waits for the guest's next
 * pass, can take seconds, and a run that missed a kind proves less than
 * it claims.
 */
#define CHAOS_GRACE_S 120u

static bool keep_going(struct vm *vm, double end)
{
	unsigned int grace = chaos.seconds > CHAOS_GRACE_S ? chaos.seconds : CHAOS_GRACE_S;
	double now = kd_now();

	if (atomic_load(&vm->stopping))
		return false;
	return now < end || (now < end + grace && !every_kind_done());
}

/* The last HISTORY operations: what ran when the VM stopped early? */
static void print_history(struct vm *vm, FILE *f)
{
	unsigned int n = chaos.nr_ops < HISTORY ? chaos.nr_ops : HISTORY;
	double stop_time;

	pthread_mutex_lock(&vm->stop_lock);
	stop_time = vm->stop_time;
	pthread_mutex_unlock(&vm->stop_lock);
	fprintf(f, "kvm-demo: chaos: the VM stopped at %.3f s; the last %u operations:\n",
		stop_time - chaos.t0, n);
	for (unsigned int i = chaos.nr_ops - n; i < chaos.nr_ops; i++) {
		const struct op_record *r = &chaos.history[i % HISTORY];

		fprintf(f, "kvm-demo: chaos:   %8.3f-%8.3f s %-15s %s%s%s\n", r->start, r->end,
			kind_names[r->kind], r->ok ? "ok" : "failed", r->what[0] ? ": " : "",
			r->what);
	}
}

static void *chaos_thread(void *arg)
{
	struct vm *vm = arg;
	double end = kd_now() + chaos.seconds;
	enum chaos_kind draw[K_COUNT];
	unsigned int kinds = 0;
	char err[512];

	pthread_setname_np(pthread_self(), "chaos");
	/* Without participants there is nothing to draw for them. */
	for (int k = 0; k < (chaos.nr_parts ? K_COUNT : K_PARTICIPANT); k++)
		if (selected((enum chaos_kind)k))
			draw[kinds++] = (enum chaos_kind)k;
	for (unsigned int n = 0; kinds && keep_going(vm, end); n++) {
		/*
		 * The first round takes every kind once, in order, so that a
		 * short or slow run still covers them all; then at random.
		 */
		enum chaos_kind k = draw[n < kinds ? n : rnd() % kinds];
		struct op_record *r = &chaos.history[chaos.nr_ops % HISTORY];
		unsigned int span = chaos.gap_max_ms - chaos.gap_min_ms + 1;

		kd_sleep_ms(chaos.gap_min_ms + (unsigned int)(rnd() % span));
		err[0] = 0;
		r->kind = k;
		r->start = kd_now() - chaos.t0;
		r->ok = one_op(vm, k, err, sizeof(err)) == 0;
		r->end = kd_now() - chaos.t0;
		snprintf(r->what, sizeof(r->what), "%s", err);
		chaos.nr_ops++;
		if (r->ok) {
			chaos.ok[k]++;
		} else {
			chaos.failed[k]++;
			if (err[0])
				printf("kvm-demo: chaos: %s: %s\n", kind_names[k], err);
		}
	}
	if (kd_now() > end + 1)
		printf("kvm-demo: chaos: ran %.1f s past %u s to cover every kind\n",
		       kd_now() - end, chaos.seconds);
	/* Leave nothing protected; the guest then stops with a clean state. */
	for (unsigned int i = 0; i < vm->nr_regions; i++)
		if (vm->regions[i].readonly)
			memops_protect(vm, i, false, err, sizeof(err));
	/*
	 * With a disk, the guest reports the checksum its image must have at
	 * the end of a pass: let it finish (bounded), so that it can be checked.
	 */
	if (vm->blk) {
		double deadline = kd_now() + CHAOS_FINISH_S;

		guest_ask_finish(vm);
		while (!atomic_load(&vm->stopping) && kd_now() < deadline)
			kd_sleep_ms(20);
		chaos.guest_finished = atomic_load(&vm->stopping);
		if (!chaos.guest_finished) {
			printf("kvm-demo: chaos: the guest did not finish its pass within %.0f s of "
			       "being asked\n", CHAOS_FINISH_S);
			crashdump_print_stuck(vm, stdout);
		}
	}
	vm_request_stop(vm, VM_STOP_CONTROL, 0);
	return NULL;
}

int chaos_start(struct vm *vm, unsigned int seconds, uint64_t seed)
{
	chaos.vm = vm;
	chaos.seconds = seconds;
	chaos.rng = seed ? seed : 1;
	chaos.t0 = kd_now();
	printf("kvm-demo: chaos: %u s of random operations, seed %" PRIu64 "\n", seconds, seed);
	if (chaos.options_given) {
		char list[160] = "";
		size_t used = 0;

		for (int k = 0; k < K_COUNT; k++)
			if (selected((enum chaos_kind)k) && used < sizeof(list))
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
							 used ? "," : "", kind_names[k]);
		printf("kvm-demo: chaos: kinds %s, %u-%u ms apart, windows widened by %u us\n",
		       list, chaos.gap_min_ms, chaos.gap_max_ms, slots_widened_us());
	}
	if (pthread_create(&chaos.thread, NULL, chaos_thread, vm) != 0) {
		kd_error("--chaos: cannot start its thread");
		return -1;
	}
	chaos.started = true;
	return 0;
}

bool chaos_finish(struct vm *vm, FILE *f)
{
	struct kd_counters *c = &vm->counters;
	bool broken = false;
	uint64_t total_ok = 0;

	if (!chaos.started)
		return false;
	pthread_join(chaos.thread, NULL);
	chaos.started = false;
	for (unsigned int i = 0; i < chaos.nr_parts; i++)
		if (chaos.parts[i]->quiesce)
			chaos.parts[i]->quiesce(vm);
	fprintf(f, "kvm-demo: chaos report:\n");
	for (int k = 0; k < K_COUNT; k++) {
		fprintf(f, "kvm-demo: chaos:   %-15s %6" PRIu64 " done, %6" PRIu64 " failed or refused\n",
			kind_names[k], chaos.ok[k], chaos.failed[k]);
		total_ok += chaos.ok[k];
	}
	fprintf(f, "kvm-demo: chaos:   operations done %" PRIu64 "\n", total_ok);
	kd_stats_print(vm, f);
	for (unsigned int i = 0; i < chaos.nr_parts; i++)
		if (chaos.parts[i]->report)
			chaos.parts[i]->report(vm, f);
	if (vm->stop_reason != VM_STOP_CONTROL &&
	    !(chaos.guest_finished && vm->stop_reason == VM_STOP_GUEST &&
	      vm->guest_result == KD_RESULT_PASS)) {
		fprintf(f, "kvm-demo: chaos: BROKEN: the VM stopped before the end (guest result %d)\n",
			vm->guest_result);
		print_history(vm, f);
		broken = true;
	}
	if (atomic_load(&c->stale_exits)) {
		fprintf(f, "kvm-demo: chaos: BROKEN: %" PRIu64 " vCPU exits from a missing or stale slot\n",
			(uint64_t)atomic_load(&c->stale_exits));
		broken = true;
	}
	if (atomic_load(&c->unbracketed)) {
		fprintf(f, "kvm-demo: chaos: BROKEN: the backstop saw %" PRIu64 " changes outside the brackets\n",
			(uint64_t)atomic_load(&c->unbracketed));
		broken = true;
	}
	if (atomic_load(&vm->pages_verified) == 0) {
		fprintf(f, "kvm-demo: chaos: BROKEN: the guest verified no page\n");
		broken = true;
	}
	for (int k = K_HOTPLUG; k <= K_PROTECT; k++) {
		if (selected((enum chaos_kind)k) && chaos.ok[k] == 0) {	/* see keep_going() */
			fprintf(f, "kvm-demo: chaos: BROKEN: no %s succeeded\n", kind_names[k]);
			broken = true;
		}
	}
	for (unsigned int i = 0; i < chaos.nr_parts; i++)
		if (chaos.parts[i]->broken && chaos.parts[i]->broken(vm)) {
			fprintf(f, "kvm-demo: chaos: BROKEN: participant %s\n", chaos.parts[i]->name);
			broken = true;
		}
	if (broken) {
		fflush(f);	/* the counters go to stderr, after the report */
		for (unsigned int i = 0; i < vm->nr_vcpus; i++)
			vcpu_print_kvm_stats(&vm->vcpus[i]);
	}
	fprintf(f, "kvm-demo: chaos: %s\n", broken ? "FAILED" : "all invariants held");
	return broken;
}
