/* SPDX-License-Identifier: MIT */
/*
 * The default run: a short scripted scenario of memory operations while
 * the guest's self-test runs on every vCPU and the device moves data
 * between passes, so that the demo shows what libmmn is for. Each step is
 * one memops_*() call, as the control socket and --chaos make them, and
 * prints one line as it happens: what changed, how long the vCPUs were
 * paused, what the device's shadow map dropped. At the end the guest is
 * asked to finish its pass; the summary gives the counters that moved and
 * the stale-translation invariant.
 */
#define _GNU_SOURCE
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "core/vm.h"
#include "mem/mem.h"
#include "devices/vdev.h"
#include "devices/vhost-user/blk.h"
#include "control/vmctl.h"

#define PROTECT_MS	300	/* how long the slot stays read-only */
#define BALLOON_BYTES	(16ull << 20)
#define DIMM_BYTES	(16ull << 20)

static struct {
	struct vm *vm;
	pthread_t thread;
	bool started;
	unsigned int steps, failed;
	double t0;
} sc;

struct snap {
	uint64_t pauses, pause_ns, stalls;
	struct vdev_figures dev;
	struct vu_blk_figures disk;
};

static void take(struct vm *vm, struct snap *s)
{
	s->pauses = atomic_load(&vm->counters.pauses);
	s->pause_ns = atomic_load(&vm->counters.pause_ns_total);
	s->stalls = atomic_load(&vm->counters.protect_stalls);
	vdev_figures(vm, &s->dev);
	vu_blk_figures(vm, &s->disk);
}

/* One line: the step's own message, then what it cost the vCPUs and the device. */
static void report(struct vm *vm, const char *name, const struct snap *before, int ret,
		   const char *msg)
{
	struct snap after;
	char extra[64] = "", disk[96] = "";
	uint64_t pauses;

	take(vm, &after);
	pauses = after.pauses - before->pauses;
	sc.steps++;
	if (ret < 0) {
		sc.failed++;
		printf("kvm-demo: scenario: %5.2f s %-10s FAILED: %s\n", kd_now() - sc.t0, name,
		       msg);
		return;
	}
	if (after.stalls != before->stalls)
		snprintf(extra, sizeof(extra), ", %" PRIu64 " vCPU writes waited",
			 after.stalls - before->stalls);
	if (vm->blk)
		snprintf(disk, sizeof(disk), "; disk backend let go of %" PRIu64 " region%s "
			 "(%" PRIu64 " ring stop%s)", after.disk.removed - before->disk.removed,
			 after.disk.removed - before->disk.removed == 1 ? "" : "s",
			 after.disk.ring_stops - before->disk.ring_stops,
			 after.disk.ring_stops - before->disk.ring_stops == 1 ? "" : "s");
	printf("kvm-demo: scenario: %5.2f s %-10s %s; vCPUs paused %" PRIu64 " time%s, %.3f ms"
	       "%s; shadow map dropped %" PRIu64 " entr%s%s\n", kd_now() - sc.t0, name, msg,
	       pauses, pauses == 1 ? "" : "s", (after.pause_ns - before->pause_ns) / 1e6, extra,
	       after.dev.dropped - before->dev.dropped,
	       after.dev.dropped - before->dev.dropped == 1 ? "y" : "ies", disk);
}

/* The DIMM slot that holds memory now and did not before: the one just plugged. */
static unsigned int new_slot(struct vm *vm, const bool *had)
{
	for (unsigned int i = 1; i < vm->nr_regions; i++)
		if (vm->regions[i].hva && !had[i])
			return i;
	return 0;
}

static uint64_t total_bytes(struct vm *vm)
{
	uint64_t t;

	pthread_mutex_lock(&vm->ops_lock);
	t = vm->cfg->boot_ram + vm->dimm_bytes;
	pthread_mutex_unlock(&vm->ops_lock);
	return t;
}

/* Steps the definition cannot take are skipped, with a line saying why. */
static bool skip(const char *name)
{
	const struct vm_config *cfg = sc.vm->cfg;
	const char *why = NULL;

	if (!strcmp(name, "hotplug") && !cfg->has_max_memory)
		why = "the domain has no <maxMemory slots='N'>";
	else if ((!strcmp(name, "balloon") || !strcmp(name, "deflate")) && !cfg->balloon)
		why = "the domain has no <memballoon model='virtio'>";
	if (why)
		printf("kvm-demo: scenario: %5.2f s %-10s skipped: %s\n", kd_now() - sc.t0, name,
		       why);
	return why != NULL;
}

static void *scenario_thread(void *arg)
{
	struct vm *vm = arg;
	bool had[1 + KD_MAX_DIMMS] = { false };
	unsigned int dimm = 0;
	struct snap s;
	char msg[512];
	int ret = -1;

	pthread_setname_np(pthread_self(), "scenario");

#define STEP(name, call)						\
	do {								\
		if (atomic_load(&vm->stopping))				\
			goto out;					\
		if (skip(name))						\
			break;						\
		msg[0] = 0;						\
		take(vm, &s);						\
		ret = (call);						\
		report(vm, name, &s, ret, msg);				\
	} while (0)

	pthread_mutex_lock(&vm->ops_lock);
	for (unsigned int i = 1; i < vm->nr_regions; i++)
		had[i] = vm->regions[i].hva != NULL;
	pthread_mutex_unlock(&vm->ops_lock);
	STEP("hotplug", memops_hotplug(vm, DIMM_BYTES, 0, msg, sizeof(msg)));
	if (ret == 0) {
		pthread_mutex_lock(&vm->ops_lock);
		dimm = new_slot(vm, had);
		pthread_mutex_unlock(&vm->ops_lock);
	}
	STEP("balloon", memops_setmem(vm, total_bytes(vm) - BALLOON_BYTES, msg, sizeof(msg)));
	STEP("deflate", memops_setmem(vm, total_bytes(vm), msg, sizeof(msg)));
	STEP("remap", memops_remap(vm, 0, 0, msg, sizeof(msg)));
	/* A DIMM the guest is testing, read-only for a moment: its writes wait. */
	STEP("protect", memops_protect(vm, dimm, true, msg, sizeof(msg)));
	if (ret == 0) {
		/* The release's line counts the writes that waited meanwhile. */
		take(vm, &s);
		kd_sleep_ms(PROTECT_MS);
		ret = memops_protect(vm, dimm, false, msg, sizeof(msg));
		report(vm, "release", &s, ret, msg);
	}
	if (dimm)
		STEP("unplug", memops_unplug(vm, dimm, msg, sizeof(msg)));
	else if (!atomic_load(&vm->stopping))
		printf("kvm-demo: scenario: %5.2f s %-10s skipped: no DIMM was plugged\n",
		       kd_now() - sc.t0, "unplug");
#undef STEP
out:
	guest_ask_finish(vm);
	return NULL;
}

void guest_ask_finish(struct vm *vm)
{
	struct kd_mailbox *mb;

	/* Boot RAM may have moved: the mailbox's host address is the current one. */
	pthread_rwlock_rdlock(&vm->mem_lock);
	mb = memory_gpa_to_hva(vm, KD_MAILBOX_GPA, sizeof(*mb));
	if (mb && !vm->regions[0].readonly)
		__atomic_or_fetch(&mb->flags, KD_MB_F_FINISH, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&vm->mem_lock);
}

int scenario_start(struct vm *vm)
{
	sc.vm = vm;
	sc.t0 = kd_now();
	printf("kvm-demo: scenario: hotplug, balloon, remap, protect and unplug while the guest "
	       "tests its memory and the device moves data (--no-scenario: none)\n");
	if (pthread_create(&sc.thread, NULL, scenario_thread, vm) != 0) {
		kd_error("scenario: cannot start its thread");
		return -1;
	}
	sc.started = true;
	return 0;
}

/* "name N" for each counter that moved, after PREFIX. */
static void counter(char *buf, size_t len, const char *name, uint64_t v)
{
	size_t n = strlen(buf);

	if (v && n < len)
		snprintf(buf + n, len - n, "%s%s %" PRIu64, n ? ", " : "", name, v);
}

bool scenario_finish(struct vm *vm, FILE *f)
{
	struct kd_counters *c = &vm->counters;
	struct vdev_figures dev;
	char line[1024] = "";
	uint64_t stale_exits, unbracketed;

	if (!sc.started)
		return false;
	pthread_join(sc.thread, NULL);
	sc.started = false;
	vdev_figures(vm, &dev);
	counter(line, sizeof(line), "hotplug", atomic_load(&c->hotplugs));
	counter(line, sizeof(line), "unplug", atomic_load(&c->unplugs));
	counter(line, sizeof(line), "balloon", atomic_load(&c->balloon_changes));
	counter(line, sizeof(line), "remap", atomic_load(&c->remaps));
	counter(line, sizeof(line), "protect", atomic_load(&c->protects));
	counter(line, sizeof(line), "host invalidations", atomic_load(&c->host_invalidations));
	counter(line, sizeof(line), "guest invalidations", atomic_load(&c->guest_invalidations));
	counter(line, sizeof(line), "slot updates", atomic_load(&c->slot_updates));
	counter(line, sizeof(line), "pauses", atomic_load(&c->pauses));
	counter(line, sizeof(line), "protection stalls", atomic_load(&c->protect_stalls));
	counter(line, sizeof(line), "reclaim retries", atomic_load(&c->reclaim_retries));
	counter(line, sizeof(line), "device requests", dev.ok);
	counter(line, sizeof(line), "device KiB", dev.bytes >> 10);
	counter(line, sizeof(line), "shadow invalidations", dev.invalidations);
	counter(line, sizeof(line), "shadow entries dropped", dev.dropped);
	counter(line, sizeof(line), "accesses checked", dev.checked);
	fprintf(f, "kvm-demo: scenario: %u steps, %u failed; %s\n", sc.steps, sc.failed, line);
	stale_exits = atomic_load(&c->stale_exits);
	unbracketed = atomic_load(&c->unbracketed);
	fprintf(f, "kvm-demo: scenario: %" PRIu64 " stale (%" PRIu64 " device accesses through a "
		"stale translation, %" PRIu64 " vCPU exits at a missing or stale slot, %" PRIu64
		" changes outside libmmn's brackets)\n", dev.stale + stale_exits + unbracketed,
		dev.stale, stale_exits, unbracketed);
	return sc.failed || dev.stale || stale_exits || unbracketed || dev.errors;
}
