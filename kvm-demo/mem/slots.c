/* SPDX-License-Identifier: MIT */
/*
 * Slot sync: KVM memory slots follow every change of the host memory that
 * backs them, and the change propagates to the guest-physical state.
 *
 * Each plugged region holds a range subscription on vm->host_mm over its
 * host mapping, and a userfaultfd backstop over the same range. The VMM
 * changes guest memory only through libmmn's brackets (memops.c), so the
 * region's ->invalidate() runs before the change:
 *
 *   1. start the same invalidation (event, BLOCKABLE) on vm->guest_mm over
 *      the region's GPAs, owner NULL, so devices drop their translations;
 *   2. for UNMAP, REMAP, RELEASE: pause the vCPUs (vm_pause: kick, wait for
 *      every vCPU to acknowledge that it is parked) and delete the KVM slot;
 *      CLEAR and PROTECTION need neither: KVM's own notifier follows the
 *      same host address;
 *   3. update the region table under mem_lock (write).
 *
 * The end is learnt from a whole-space subscription on host_mm, whose
 * ->invalidate_end() runs once the syscall is done: it installs the new
 * layout (re-adds the slot at the new address after a REMAP), ends the
 * guest-physical invalidation, then resumes the vCPUs. So no vCPU runs
 * between the slot's removal and the new layout, and no device holds a
 * translation across the change.
 *
 * When a later subscriber refuses a non-blockable host invalidation that a
 * region accepted, no end comes: the region's ->invalidate_cancel() puts
 * the table back, ends the guest-physical invalidation and resumes.
 *
 * Non-blockable invalidations (MMN_NONBLOCK: the reclaim path) refuse when
 * they would have to wait: to stop a running vCPU, for a device that refused
 * the guest-physical invalidation, or for mem_lock.
 *
 * Lock order: ops_lock -> [guest_mm callbacks: device locks] -> pause_lock
 * -> mem_lock (write) -> stop_lock. vCPU threads park holding nothing.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "core/vm.h"
#include "mem/mem.h"

#define container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

/* slots_widen_windows(); read by whichever thread runs a callback. */
static atomic_uint widen_us;

void slots_widen_windows(unsigned int us)
{
	atomic_store(&widen_us, us);
}

unsigned int slots_widened_us(void)
{
	return atomic_load(&widen_us);
}

void slots_widen(void)
{
	unsigned int us = atomic_load(&widen_us);
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };

	/* Across the kick signal: the window must be as wide as asked. */
	while (us && nanosleep(&ts, &ts) != 0)
		;
}

static bool breaks_mapping(enum mmn_event e)
{
	return e == MMN_EVENT_UNMAP || e == MMN_EVENT_REMAP || e == MMN_EVENT_RELEASE;
}

static void max_u64(atomic_uint_least64_t *m, uint64_t v)
{
	uint64_t cur = atomic_load(m);

	while (v > cur && !atomic_compare_exchange_weak(m, &cur, v))
		;
}

/* pause_lock held: the first pause kicks every vCPU out of KVM_RUN. */
static void pause_request(struct vm *vm)
{
	if (vm->pause_depth++ == 0) {
		vm->pause_started = kd_now();
		atomic_fetch_add(&vm->counters.pauses, 1);
		/* pause_requested before immediate_exit: as for stopping (vcpu.c). */
		atomic_store(&vm->pause_requested, true);
		pthread_mutex_lock(&vm->stop_lock);
		for (unsigned int i = 0; i < vm->nr_vcpus; i++)
			vcpu_kick(vm, &vm->vcpus[i]);
		pthread_mutex_unlock(&vm->stop_lock);
	}
}

void vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	pause_request(vm);
	/* Each vCPU thread still in its loop acknowledges by parking. */
	while (vm->parked < atomic_load(&vm->running_vcpus))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_pause_timed(struct vm *vm, unsigned int ms)
{
	struct timespec ts;
	bool parked = true;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&vm->pause_lock);
	pause_request(vm);
	while (parked && vm->parked < atomic_load(&vm->running_vcpus))
		parked = pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts) == 0;
	parked = vm->parked >= atomic_load(&vm->running_vcpus);
	pthread_mutex_unlock(&vm->pause_lock);
	if (!parked)
		vm_resume(vm);
	return parked;
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	if (--vm->pause_depth == 0) {
		uint64_t ns = (uint64_t)((kd_now() - vm->pause_started) * 1e9);

		atomic_fetch_add(&vm->counters.pause_ns_total, ns);
		max_u64(&vm->counters.pause_ns_max, ns);
		atomic_store(&vm->pause_requested, false);
		pthread_cond_broadcast(&vm->pause_cond);
	}
	pthread_mutex_unlock(&vm->pause_lock);
}

void vcpu_park(struct vm *vm, bool wait_protect)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while ((vm->pause_depth > 0 || (wait_protect && vm->protected_regions > 0)) &&
	       !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->parked--;
	/* --bench: the last vCPU on its way back to KVM_RUN. */
	if (vm->parked == 0 && vm->bench && vm->pause_depth == 0) {
		vm->bench->t_running = kd_now();
		pthread_cond_broadcast(&vm->pause_cond);
	}
	pthread_mutex_unlock(&vm->pause_lock);
}

bool memory_is_ram_gpa(struct vm *vm, uint64_t gpa)
{
	bool ram = gpa < vm->cfg->boot_ram;

	pthread_rwlock_rdlock(&vm->mem_lock);
	for (unsigned int i = 0; i < vm->nr_regions && !ram; i++)
		ram = vm->regions[i].plugged && gpa >= vm->regions[i].gpa &&
		      gpa - vm->regions[i].gpa < vm->regions[i].size;
	pthread_rwlock_unlock(&vm->mem_lock);
	return ram;
}

static struct slot_inval *inval_get(struct vm *vm, const struct mmn_invalidate_desc *host)
{
	struct slot_inval *e = NULL;

	pthread_mutex_lock(&vm->inval_lock);
	for (unsigned int i = 0; i < KD_MAX_INVALS && !e; i++)
		if (!vm->invals[i].host)
			e = &vm->invals[i];
	if (e) {
		memset(e, 0, sizeof(*e));
		e->host = host;
	}
	pthread_mutex_unlock(&vm->inval_lock);
	return e;
}

static void inval_put(struct vm *vm, struct slot_inval *e)
{
	pthread_mutex_lock(&vm->inval_lock);
	e->host = NULL;
	pthread_mutex_unlock(&vm->inval_lock);
}

/* Called with mem_lock held for writing: the table update of step 3. */
static void apply_start(struct vm *vm, struct mem_region *r, const struct mmn_invalidate_desc *d,
			struct slot_inval *e)
{
	switch (d->event) {
	case MMN_EVENT_UNMAP:
	case MMN_EVENT_RELEASE:
		r->plugged = false;	/* whatever the range held is gone */
		break;
	case MMN_EVENT_REMAP:
		r->moving = true;	/* memory_translate: -EAGAIN until the end */
		break;
	case MMN_EVENT_PROTECTION_VMA:
	case MMN_EVENT_PROTECTION_PAGE:
		if (r->readonly_next)
			r->readonly = true;	/* narrowing: before the change */
		break;
	case MMN_EVENT_CLEAR:
		/* The balloon's discard: its pages are gone from now on. */
		if (r == &vm->regions[0] && vm->balloon_next_size > vm->balloon_size)
			vm->balloon_size = vm->balloon_next_size;
		break;
	default:
		break;
	}
	if (breaks_mapping(d->event) && r->slot_active) {
		memory_region_unmap_slot(vm, r);
		e->slot_removed = true;
		atomic_fetch_add(&vm->counters.slot_updates, 1);
		if (d->flags & MMN_INVALIDATE_BLOCKABLE)
			slots_widen();	/* slot gone, host unchanged yet */
	}
}

static bool region_invalidate(struct mmn_range_sub *rsub, const struct mmn_invalidate_desc *d,
			      uint64_t cur_seq)
{
	struct mem_region *r = container_of(rsub, struct mem_region, host_sub);
	struct vm *vm = r->vm;
	bool blockable = d->flags & MMN_INVALIDATE_BLOCKABLE;
	bool breaks = breaks_mapping(d->event);
	uint64_t hstart = (uint64_t)(uintptr_t)r->hva, hend = hstart + r->size;
	uint64_t from = d->start > hstart ? d->start : hstart;
	uint64_t to = d->end == 0 || d->end > hend ? hend : d->end;
	struct slot_inval *e;

	atomic_fetch_add(&vm->counters.host_invalidations, 1);
	if (d->flags & MMN_INVALIDATE_AFTER) {
		atomic_fetch_add(&vm->counters.unbracketed, 1);
		kd_error("%s: the backstop saw a change of [%#" PRIx64 ", %#" PRIx64 ") (event %d) "
			 "made outside libmmn's brackets", r->name, from, to, (int)d->event);
	}
	/* Stopping a running vCPU means waiting for it. */
	if (!blockable && breaks && atomic_load(&vm->running_vcpus) > 0)
		goto refuse;
	e = inval_get(vm, d);
	if (!e) {
		if (!blockable)
			goto refuse;
		kd_error("slot sync: more than %u invalidations at once", KD_MAX_INVALS);
		abort();
	}
	e->region = r;
	e->guest = (struct mmn_invalidate_desc){
		.start = r->gpa + (from - hstart),
		.end = r->gpa + (to - hstart),
		.event = d->event,
		.flags = d->flags & (MMN_INVALIDATE_BLOCKABLE | MMN_INVALIDATE_AFTER),
		.owner = NULL,
	};
	/* Devices first: they may refuse a non-blockable one. */
	if (mmn_invalidate_start(vm->guest_mm, &e->guest) != 0) {
		inval_put(vm, e);
		goto refuse;
	}
	atomic_fetch_add(&vm->counters.guest_invalidations, 1);
	if (vm->bench)
		vm->bench->t_device = kd_now();	/* devices have drained */
	if (blockable) {
		if (breaks) {
			vm_pause(vm);
			e->paused = true;
			slots_widen();	/* paused, slot not yet updated */
		}
		pthread_rwlock_wrlock(&vm->mem_lock);
	} else if (pthread_rwlock_trywrlock(&vm->mem_lock) != 0) {
		mmn_invalidate_end(vm->guest_mm, &e->guest);
		inval_put(vm, e);
		goto refuse;
	}
	mmn_range_set_seq(rsub, cur_seq);
	e->was_plugged = r->plugged;
	e->was_moving = r->moving;
	e->was_readonly = r->readonly;
	e->was_balloon_size = vm->balloon_size;
	apply_start(vm, r, d, e);
	pthread_rwlock_unlock(&vm->mem_lock);
	if (vm->bench)
		vm->bench->t_quiesced = kd_now();	/* and the vCPUs, and the slot */
	return true;
refuse:
	atomic_fetch_add(&vm->counters.refusals, 1);
	return false;
}

/*
 * A later subscriber refused the host invalidation this region accepted:
 * no change and no whole-space end follow. Put the region back as it was,
 * end the guest-physical invalidation, resume.
 */
static void region_invalidate_cancel(struct mmn_range_sub *rsub,
				     const struct mmn_invalidate_desc *d)
{
	struct mem_region *r = container_of(rsub, struct mem_region, host_sub);
	struct vm *vm = r->vm;
	struct slot_inval *e = NULL;

	pthread_mutex_lock(&vm->inval_lock);
	for (unsigned int i = 0; i < KD_MAX_INVALS && !e; i++)
		if (vm->invals[i].host == d && vm->invals[i].region == r)
			e = &vm->invals[i];
	pthread_mutex_unlock(&vm->inval_lock);
	if (!e)
		return;
	pthread_rwlock_wrlock(&vm->mem_lock);
	r->plugged = e->was_plugged;
	r->moving = e->was_moving;
	r->readonly = e->was_readonly;
	vm->balloon_size = e->was_balloon_size;
	if (e->slot_removed && r->plugged && r->hva && memory_region_map_slot(vm, r) == 0)
		atomic_fetch_add(&vm->counters.slot_updates, 1);
	pthread_rwlock_unlock(&vm->mem_lock);
	mmn_invalidate_end(vm->guest_mm, &e->guest);
	if (e->paused)
		vm_resume(vm);
	inval_put(vm, e);
}

static const struct mmn_range_sub_ops region_ops = {
	.invalidate = region_invalidate,
	.invalidate_cancel = region_invalidate_cancel,
};

/* The host change is done: install the new layout, end, resume. */
static void layout_invalidate_end(struct mmn_sub *sub, const struct mmn_invalidate_desc *d)
{
	struct vm *vm = container_of(sub, struct vm, layout_sub);

	for (unsigned int i = 0; i < KD_MAX_INVALS; i++) {
		struct slot_inval *e = &vm->invals[i];
		struct mem_region *r;

		pthread_mutex_lock(&vm->inval_lock);
		if (e->host != d) {
			pthread_mutex_unlock(&vm->inval_lock);
			continue;
		}
		pthread_mutex_unlock(&vm->inval_lock);
		r = e->region;
		if (e->guest.flags & MMN_INVALIDATE_BLOCKABLE)
			slots_widen();	/* host changed, slot not yet updated */
		pthread_rwlock_wrlock(&vm->mem_lock);
		if (d->event == MMN_EVENT_REMAP) {
			if (d->remap_to)
				r->hva = (void *)(uintptr_t)d->remap_to;
			r->moving = false;
		}
		if ((d->event == MMN_EVENT_PROTECTION_VMA || d->event == MMN_EVENT_PROTECTION_PAGE) &&
		    !r->readonly_next)
			r->readonly = false;	/* widening: after the change */
		if (e->slot_removed && r->plugged && r->hva) {
			if (memory_region_map_slot(vm, r) == 0)
				atomic_fetch_add(&vm->counters.slot_updates, 1);
		}
		pthread_rwlock_unlock(&vm->mem_lock);
		mmn_invalidate_end(vm->guest_mm, &e->guest);
		if (e->paused)
			vm_resume(vm);
		inval_put(vm, e);
	}
}

static const struct mmn_sub_ops layout_ops = {
	.invalidate_end = layout_invalidate_end,
};

int slots_init(struct vm *vm)
{
	int err;

	vm->layout_sub.ops = &layout_ops;
	err = mmn_sub_register(&vm->layout_sub, vm->host_mm);
	if (err) {
		kd_error("mmn_sub_register: %s", strerror(-err));
		return -1;
	}
	vm->layout_sub_registered = true;
	return 0;
}

void slots_fini(struct vm *vm)
{
	if (vm->layout_sub_registered)
		mmn_sub_unregister(&vm->layout_sub, vm->host_mm);
	vm->layout_sub_registered = false;
}

int slots_track(struct vm *vm, struct mem_region *r)
{
	int err;

	r->vm = vm;
	err = mmn_range_sub_insert(&r->host_sub, vm->host_mm, (uint64_t)(uintptr_t)r->hva,
				   r->size, &region_ops);
	if (err) {
		kd_error("%s: mmn_range_sub_insert: %s", r->name, strerror(-err));
		return -1;
	}
	r->subscribed = true;
	err = mmn_uffd_watch_start(vm->host_mm, r->hva, r->size, &r->watch);
	if (err) {
		/* Not fatal: the brackets still work; only the backstop is missing. */
		static atomic_bool warned;

		r->watch = NULL;
		if (!atomic_exchange(&warned, true))
			kd_error("%s: no userfaultfd backstop (%s): changes outside the brackets "
				 "will go unseen", r->name, strerror(-err));
	}
	return 0;
}

void slots_untrack(struct vm *vm, struct mem_region *r)
{
	(void)vm;
	if (r->watch)
		mmn_uffd_watch_stop(r->watch);
	r->watch = NULL;
	if (r->subscribed)
		mmn_range_sub_remove(&r->host_sub);
	r->subscribed = false;
}
