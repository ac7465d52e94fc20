/* SPDX-License-Identifier: MIT */
/*
 * Memory operations while the guest runs: hotplug, unplug, balloon, remap,
 * protect. Each takes ops_lock, so that they run one at a time, and changes
 * guest memory only through libmmn's brackets; slots.c does the rest from
 * the brackets' callbacks. The guest hears of hotplug, unplug and balloon
 * requests through the mailbox page (guest/abi.h).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "core/util.h"
#include "core/vm.h"
#include "mem/mem.h"

void memops_mailbox_answered(struct vm *vm, uint32_t seq)
{
	pthread_mutex_lock(&vm->mb_lock);
	vm->mb_answered = seq;
	pthread_cond_broadcast(&vm->mb_cond);
	pthread_mutex_unlock(&vm->mb_lock);
}

/* Waits for the answer to SEQ until DEADLINE (monotonic s); true if it came. */
static bool mailbox_wait(struct vm *vm, uint32_t seq, double deadline)
{
	bool answered;

	pthread_mutex_lock(&vm->mb_lock);
	while (vm->mb_answered != seq && !atomic_load(&vm->stopping)) {
		double left = deadline - kd_now();
		struct timespec ts;

		if (left <= 0)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)left;
		ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&vm->mb_cond, &vm->mb_lock, &ts);
	}
	answered = vm->mb_answered == seq;
	pthread_mutex_unlock(&vm->mb_lock);
	return answered;
}

/*
 * Posts a request and waits for the guest's answer. Returns 0 (answered,
 * *STATUS set), -ETIMEDOUT (withdrawn: the guest never took it) or
 * -EROFS (boot RAM is write-protected: the mailbox cannot be written).
 * Called with ops_lock held.
 */
static int mailbox_call(struct vm *vm, uint32_t cmd, uint64_t gpa, uint64_t size,
			int32_t *status, uint64_t *ret_gpa, uint64_t *ret_size)
{
	struct kd_mailbox *mb;
	uint32_t seq, expect = KD_MB_POSTED;
	double deadline = kd_now() + vm->unplug_timeout_ms / 1e3;

	pthread_rwlock_rdlock(&vm->mem_lock);
	mb = memory_gpa_to_hva(vm, KD_MAILBOX_GPA, sizeof(*mb));
	if (vm->regions[0].readonly)
		mb = NULL;
	pthread_rwlock_unlock(&vm->mem_lock);
	if (!mb)
		return -EROFS;
	seq = ++vm->mb_seq;
	mb->cmd = cmd;
	mb->gpa = gpa;
	mb->size = size;
	mb->seq = seq;
	mb->status = -1;
	__atomic_store_n(&mb->state, KD_MB_POSTED, __ATOMIC_RELEASE);
	if (!mailbox_wait(vm, seq, deadline)) {
		if (__atomic_compare_exchange_n(&mb->state, &expect, KD_MB_IDLE, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return atomic_load(&vm->stopping) ? -ECANCELED : -ETIMEDOUT;
		/* Taken just now: the guest answers within a few instructions. */
		if (!mailbox_wait(vm, seq, kd_now() + 5)) {
			__atomic_store_n(&mb->state, KD_MB_IDLE, __ATOMIC_RELEASE);
			return -ETIMEDOUT;
		}
	}
	*status = mb->status;
	if (ret_gpa)
		*ret_gpa = mb->ret_gpa;
	if (ret_size)
		*ret_size = mb->ret_size;
	__atomic_store_n(&mb->state, KD_MB_IDLE, __ATOMIC_RELEASE);
	return 0;
}

static const char *mailbox_strerror(int err)
{
	return err == -EROFS ? "boot RAM, which holds the mailbox, is write-protected now"
	       : err == -ECANCELED ? "the VM is stopping"
			     : "the guest did not answer the mailbox in time";
}

/*
 * The GPA for SIZE bytes in the hotplug window: WANT when not 0 and free,
 * else the lowest free one; 0 when there is none, with the problem in ERR.
 */
static uint64_t hotplug_gpa(struct vm *vm, uint64_t size, uint64_t want, char *err,
			    size_t errlen)
{
	const struct vm_config *cfg = vm->cfg;
	uint64_t limit = KD_HOTPLUG_GPA + (cfg->max_memory - cfg->boot_ram);
	uint64_t gpa = KD_HOTPLUG_GPA;
	bool moved = true;

	if (want) {
		/* config_parse_dimm() checked alignment and the window. */
		for (unsigned int i = 1; i < vm->nr_regions; i++) {
			struct mem_region *r = &vm->regions[i];

			if (r->hva && want < r->gpa + r->size && r->gpa < want + size) {
				kd_err(err, errlen, "attach-device: <address base='0x%" PRIx64 "'>: "
					"%s holds [0x%" PRIx64 ", 0x%" PRIx64 ")", want, r->name,
					r->gpa, r->gpa + r->size);
				return 0;
			}
		}
		if (want < KD_HOTPLUG_GPA || want > limit || size > limit - want) {
			kd_err(err, errlen, "attach-device: <address base='0x%" PRIx64 "'>: outside "
				"the hotplug window [0x%llx, 0x%" PRIx64 ")", want, KD_HOTPLUG_GPA,
				limit);
			return 0;
		}
		return want;
	}

	while (moved) {
		moved = false;
		for (unsigned int i = 1; i < vm->nr_regions; i++) {
			struct mem_region *r = &vm->regions[i];

			if (r->hva && gpa < r->gpa + r->size && r->gpa < gpa + size) {
				gpa = r->gpa + r->size;
				moved = true;
			}
		}
	}
	if (gpa + size <= limit)
		return gpa;
	kd_err(err, errlen, "attach-device: no room for %" PRIu64 " MiB in the hotplug window",
		size >> 20);
	return 0;
}

static unsigned int plugged_dimms(struct vm *vm)
{
	unsigned int n = 0;

	for (unsigned int i = 1; i < vm->nr_regions; i++)
		n += vm->regions[i].hva != NULL;
	return n;
}

static int hotplug_locked(struct vm *vm, uint64_t size, uint64_t base, unsigned int node,
			  char *err, size_t errlen)
{
	const struct vm_config *cfg = vm->cfg;
	struct mem_region *r = NULL;
	unsigned int idx = 0;
	uint64_t gpa;
	int32_t status = -1;
	int ret;
	char name[16];

	if (!cfg->has_max_memory)
		return kd_err(err, errlen,
			      "attach-device: the domain has no <maxMemory slots='N'>");
	if (size == 0 || size % KD_DIMM_ALIGN)
		return kd_err(err, errlen, "attach-device: DIMM size %" PRIu64 " KiB is not a "
			      "positive multiple of %llu MiB", size >> 10, KD_DIMM_ALIGN >> 20);
	if (plugged_dimms(vm) >= cfg->max_slots)
		return kd_err(err, errlen, "attach-device: all %u DIMM slots (<maxMemory slots>) "
			      "are in use", cfg->max_slots);
	if (cfg->boot_ram + vm->dimm_bytes + size > cfg->max_memory)
		return kd_err(err, errlen, "attach-device: %" PRIu64 " MiB more would pass "
			      "<maxMemory> of %" PRIu64 " MiB (%" PRIu64 " MiB in use)", size >> 20,
			      cfg->max_memory >> 20, (cfg->boot_ram + vm->dimm_bytes) >> 20);
	for (unsigned int i = 1; i < vm->nr_regions && !r; i++)
		if (!vm->regions[i].hva && vm->regions[i].memfd < 0)
			r = &vm->regions[i];
	if (!r) {
		if (vm->nr_regions == 1 + KD_MAX_DIMMS)
			return kd_err(err, errlen,
				      "attach-device: kvm-demo has no free memory slot");
		r = &vm->regions[vm->nr_regions];
	}
	idx = (unsigned int)(r - vm->regions);
	gpa = hotplug_gpa(vm, size, base, err, errlen);
	if (!gpa)
		return -1;
	snprintf(name, sizeof(name), "dimm%u", idx - 1);
	pthread_rwlock_wrlock(&vm->mem_lock);
	ret = memory_region_alloc(vm, r, name, gpa, size);
	if (ret == 0 && idx == vm->nr_regions)
		vm->nr_regions++;
	pthread_rwlock_unlock(&vm->mem_lock);
	if (ret < 0)
		return kd_err(err, errlen, "attach-device: %s", kd_last_error());
	r->node = node;
	/*
	 * Adding a slot needs no pause on real hardware; under nested
	 * emulation a vCPU running across the memslot update was seen to
	 * triple-fault, so the vCPUs wait out the ioctl (one pause, ~100 us).
	 */
	vm_pause(vm);
	ret = memory_region_map_slot(vm, r);
	vm_resume(vm);
	if (ret < 0 || slots_track(vm, r) < 0) {
		snprintf(err, errlen, "attach-device: %s", kd_last_error());
		memory_region_unmap_slot(vm, r);
		memory_region_free(vm, r);
		return -1;
	}
	atomic_fetch_add(&vm->counters.slot_updates, 1);
	pthread_rwlock_wrlock(&vm->mem_lock);
	r->plugged = true;
	pthread_rwlock_unlock(&vm->mem_lock);
	vm->dimm_bytes += size;
	atomic_fetch_add(&vm->counters.hotplugs, 1);
	ret = mailbox_call(vm, KD_MB_PLUG, gpa, size, &status, NULL, NULL);
	if (ret || status)
		return kd_err(err, errlen, "attach-device: %s is plugged at 0x%" PRIx64 " but %s",
			      name, gpa, ret ? mailbox_strerror(ret) : "the guest refused it");
	snprintf(err, errlen, "%s: %" PRIu64 " MiB at 0x%" PRIx64 ", slot %u", name, size >> 20,
		 gpa, r->slot);
	return 0;
}

int memops_hotplug(struct vm *vm, uint64_t size, unsigned int node, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&vm->ops_lock);
	ret = hotplug_locked(vm, size, 0, node, err, errlen);
	pthread_mutex_unlock(&vm->ops_lock);
	return ret;
}

static int unplug_locked(struct vm *vm, unsigned int slot, char *err, size_t errlen)
{
	struct mem_region *r;
	int32_t status = -1;
	int ret;

	if (slot == 0 || slot >= vm->nr_regions || !vm->regions[slot].hva)
		return kd_err(err, errlen, "detach-device: slot %u holds no DIMM", slot);
	r = &vm->regions[slot];
	if (r->readonly)
		return kd_err(err, errlen, "detach-device: slot %u is write-protected; "
			      "'protect %u off' first", slot, slot);
	ret = mailbox_call(vm, KD_MB_UNPLUG, r->gpa, r->size, &status, NULL, NULL);
	if (ret == -ETIMEDOUT && !atomic_load(&vm->stopping)) {
		atomic_fetch_add(&vm->counters.unplug_timeouts, 1);
		return kd_err(err, errlen, "detach-device: the guest did not acknowledge "
			      "the unplug of %s within %u ms; the DIMM stays", r->name,
			      vm->unplug_timeout_ms);
	}
	if (ret)
		return kd_err(err, errlen, "detach-device: %s; the DIMM stays",
			      mailbox_strerror(ret));
	if (status)
		return kd_err(err, errlen, "detach-device: the guest refused to give up %s; the "
			      "DIMM stays", r->name);
	/* The guest no longer uses it: unmap through the bracket (UNMAP). */
	memory_region_free(vm, r);
	vm->dimm_bytes -= r->size;
	atomic_fetch_add(&vm->counters.unplugs, 1);
	snprintf(err, errlen, "%s: unplugged from slot %u", r->name, slot);
	return 0;
}

int memops_unplug(struct vm *vm, unsigned int slot, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&vm->ops_lock);
	ret = unplug_locked(vm, slot, err, errlen);
	pthread_mutex_unlock(&vm->ops_lock);
	return ret;
}

static char *definition(struct vm *vm, bool dimms, uint64_t memory);

/*
 * A <memory model='dimm'> fragment, checked by libvirt in the definition
 * without its DIMMs and with all of <maxMemory> as <memory>: room for any
 * DIMM that could fit. Whether this one fits now (slots, size left) is
 * hotplug's to say, in its own words.
 */
static int parse_dimm_fragment(struct vm *vm, const char *xml, struct dimm_config *dimm,
			       char *err, size_t errlen)
{
	const struct vm_config *cfg = vm->cfg;
	char *base = definition(vm, false, cfg->has_max_memory ? cfg->max_memory
				: cfg->boot_ram + vm->dimm_bytes);
	int ret;

	if (!base)
		return kd_err(err, errlen, "out of memory");
	ret = config_parse_dimm(base, xml, dimm, err, errlen);
	free(base);
	return ret;
}

int memops_hotplug_xml(struct vm *vm, const char *xml, char *err, size_t errlen)
{
	struct dimm_config dimm;
	int ret;

	pthread_mutex_lock(&vm->ops_lock);
	ret = parse_dimm_fragment(vm, xml, &dimm, err, errlen);
	if (ret == 0)
		ret = hotplug_locked(vm, dimm.size, dimm.base, dimm.node, err, errlen);
	pthread_mutex_unlock(&vm->ops_lock);
	return ret;
}

/*
 * Detach matches the last plugged DIMM of the fragment's size and node (and
 * base, when it gives one).
 */
int memops_unplug_xml(struct vm *vm, const char *xml, char *err, size_t errlen)
{
	struct dimm_config dimm;
	unsigned int slot = 0;
	int ret;

	pthread_mutex_lock(&vm->ops_lock);
	ret = parse_dimm_fragment(vm, xml, &dimm, err, errlen);
	if (ret == 0) {
		for (unsigned int i = 1; i < vm->nr_regions; i++)
			if (vm->regions[i].hva && vm->regions[i].size == dimm.size &&
			    vm->regions[i].node == dimm.node &&
			    (!dimm.base || vm->regions[i].gpa == dimm.base))
				slot = i;
		if (!slot)
			ret = kd_err(err, errlen, "detach-device: no plugged DIMM of %" PRIu64
				     " MiB on node %u", dimm.size >> 20, dimm.node);
		else
			ret = unplug_locked(vm, slot, err, errlen);
	}
	pthread_mutex_unlock(&vm->ops_lock);
	return ret;
}

/*
 * Discards the part of the balloon not yet discarded, non-blockingly: the
 * reclaim path. Returns 0 (nothing left), 1 (refused: try later) or -1.
 * Called with ops_lock held.
 */
static int reclaim_locked(struct vm *vm)
{
	struct mem_region *r = &vm->regions[0];
	uint64_t from, len;
	char *at;
	int err;

	if (vm->balloon_target <= vm->balloon_size)
		return 0;
	from = vm->balloon_end - vm->balloon_target;
	len = vm->balloon_target - vm->balloon_size;
	at = (char *)r->hva + from;
	vm->balloon_next_size = vm->balloon_target;
	/* Shared memfd pages live in the file: MADV_REMOVE frees them, so RSS drops. */
	if (vm->cfg->memfd && vm->cfg->shared)
		err = mmn_madvise(vm->host_mm, at, len, MADV_REMOVE, MMN_NONBLOCK);
	else if (vm->cfg->memfd)
		err = mmn_punch_hole(vm->host_mm, r->memfd, (off_t)from, (off_t)len, at,
				     MMN_NONBLOCK);
	else
		err = mmn_madvise(vm->host_mm, at, len, MADV_DONTNEED, MMN_NONBLOCK);
	if (err == 0 && vm->cfg->memfd && !vm->cfg->shared)
		err = mmn_madvise(vm->host_mm, at, len, MADV_DONTNEED, MMN_NONBLOCK);
	if (err == -EAGAIN) {
		atomic_fetch_add(&vm->counters.reclaim_retries, 1);
		return 1;
	}
	if (err) {
		kd_error("balloon: discarding %" PRIu64 " KiB: %s", len >> 10, strerror(-err));
		return -1;
	}
	return 0;
}

int memops_reclaim(struct vm *vm)
{
	int ret;

	if (pthread_mutex_trylock(&vm->ops_lock) != 0)
		return 1;	/* an operation runs: later */
	ret = reclaim_locked(vm);
	pthread_mutex_unlock(&vm->ops_lock);
	return ret;
}

int memops_setmem(struct vm *vm, uint64_t bytes, char *err, size_t errlen)
{
	uint64_t total, want, cap;
	int32_t status = -1;
	int ret;

	pthread_mutex_lock(&vm->ops_lock);
	total = vm->cfg->boot_ram + vm->dimm_bytes;
	/* The guest keeps at least a quarter of its boot test range. */
	cap = vm->balloon_cap;
	if (!vm->cfg->balloon) {
		ret = kd_err(err, errlen, "setmem: the domain has no <memballoon model='virtio'>");
		goto out;
	}
	if (bytes > total) {
		ret = kd_err(err, errlen, "setmem: %" PRIu64 " KiB is more than the %" PRIu64
			     " KiB the domain has", bytes >> 10, total >> 10);
		goto out;
	}
	want = (total - bytes + KD_PAGE_SIZE - 1) & ~(KD_PAGE_SIZE - 1);
	if (want > cap) {
		ret = kd_err(err, errlen, "setmem: at most %" PRIu64 " KiB can be ballooned (the "
			     "balloon takes boot RAM only); %" PRIu64 " KiB asked", cap >> 10,
			     want >> 10);
		goto out;
	}
	/* Deflate: the pages are RAM again before the guest may use them. */
	if (want < vm->balloon_size) {
		/*
		 * Devices may hold "discarded" marks there (a negative cache): the
		 * pages coming back are announced, as new pages in their place.
		 */
		struct mmn_invalidate_desc back = {
			.start = vm->balloon_end - vm->balloon_size,
			.end = vm->balloon_end - want,
			.event = MMN_EVENT_MIGRATE,
			.flags = MMN_INVALIDATE_BLOCKABLE,
		};

		mmn_invalidate_start(vm->guest_mm, &back);
		pthread_rwlock_wrlock(&vm->mem_lock);
		vm->balloon_size = want;
		pthread_rwlock_unlock(&vm->mem_lock);
		mmn_invalidate_end(vm->guest_mm, &back);
	}
	ret = mailbox_call(vm, KD_MB_BALLOON, 0, want, &status, NULL, NULL);
	if (ret || status) {
		ret = kd_err(err, errlen, "setmem: %s", ret ? mailbox_strerror(ret)
			     : "the guest refused the balloon size");
		goto out;
	}
	vm->balloon_target = want;
	atomic_fetch_add(&vm->counters.balloon_changes, 1);
	/* Inflate: the guest has handed the pages back; discard them. */
	ret = reclaim_locked(vm);
	snprintf(err, errlen, "balloon %" PRIu64 " KiB, current memory %" PRIu64 " KiB%s",
		 want >> 10, (total - want) >> 10, ret == 1 ? " (discard pending)" : "");
	ret = ret < 0 ? -1 : 0;
out:
	pthread_mutex_unlock(&vm->ops_lock);
	return ret;
}

int memops_remap(struct vm *vm, unsigned int slot, unsigned int flags, char *err,
		 size_t errlen)
{
	struct mem_region *r;
	void *dest;
	int ret;

	pthread_mutex_lock(&vm->ops_lock);
	if (slot >= vm->nr_regions || !vm->regions[slot].hva) {
		ret = kd_err(err, errlen, "remap: slot %u holds no memory", slot);
		goto out;
	}
	r = &vm->regions[slot];
	/* A reserved destination, so that the move lands where we said. */
	dest = mmap(NULL, r->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (dest == MAP_FAILED) {
		ret = kd_err(err, errlen, "remap: cannot reserve %" PRIu64 " MiB: %s",
			     r->size >> 20, strerror(errno));
		goto out;
	}
	/* The backstop watches fixed addresses: off during the move, on after. */
	if (r->watch)
		mmn_uffd_watch_stop(r->watch);
	r->watch = NULL;
	void *old = r->hva;

	if (vm->bench)
		vm->bench->t_start = kd_now();	/* the invalidation starts now */
	ret = mmn_mremap(vm->host_mm, old, r->size, r->size, MREMAP_MAYMOVE | MREMAP_FIXED,
			 &dest, flags);
	/* The subscription follows the mapping (slots.c moved hva and the slot). */
	slots_untrack(vm, r);
	if (ret) {
		munmap(dest, r->size);
		slots_track(vm, r);
		if (ret == -EAGAIN) {
			snprintf(err, errlen, "remap: refused (non-blocking, vCPUs running)");
			goto out;
		}
		ret = kd_err(err, errlen, "remap: mremap: %s", strerror(-ret));
		goto out;
	}
	if (slots_track(vm, r) < 0) {
		ret = kd_err(err, errlen, "remap: %s", kd_last_error());
		goto out;
	}
	atomic_fetch_add(&vm->counters.remaps, 1);
	snprintf(err, errlen, "%s: slot %u moved from %p to %p", r->name, slot, old, r->hva);
	ret = 0;
out:
	pthread_mutex_unlock(&vm->ops_lock);
	return ret;
}

int memops_protect(struct vm *vm, unsigned int slot, bool on, char *err, size_t errlen)
{
	struct mem_region *r;
	int ret;

	pthread_mutex_lock(&vm->ops_lock);
	if (slot >= vm->nr_regions || !vm->regions[slot].hva) {
		ret = kd_err(err, errlen, "protect: slot %u holds no memory", slot);
		goto out;
	}
	r = &vm->regions[slot];
	if (r->readonly == on) {
		ret = kd_err(err, errlen, "protect: slot %u is already %s", slot,
			     on ? "read-only" : "writable");
		goto out;
	}
	r->readonly_next = on;
	if (on) {
		/* Before the change: a vCPU's EFAULT must find it protected. */
		pthread_mutex_lock(&vm->pause_lock);
		vm->protected_regions++;
		pthread_mutex_unlock(&vm->pause_lock);
	}
	ret = mmn_mprotect(vm->host_mm, r->hva, r->size,
			   on ? PROT_READ : PROT_READ | PROT_WRITE, 0);
	if (!on || ret) {
		pthread_mutex_lock(&vm->pause_lock);
		vm->protected_regions--;
		pthread_cond_broadcast(&vm->pause_cond);	/* stalled vCPUs retry */
		pthread_mutex_unlock(&vm->pause_lock);
	}
	if (ret) {
		r->readonly_next = !on;
		ret = kd_err(err, errlen, "protect: mprotect: %s", strerror(-ret));
		goto out;
	}
	atomic_fetch_add(&vm->counters.protects, 1);
	snprintf(err, errlen, "%s: slot %u %s", r->name, slot, on ? "read-only" : "writable");
out:
	pthread_mutex_unlock(&vm->ops_lock);
	return ret;
}

/*
 * The definition now, <currentMemory> as ballooned, with the DIMMs as
 * plugged when DIMMS, else none; <memory> says MEMORY bytes.
 */
static char *definition(struct vm *vm, bool dimms, uint64_t memory)
{
	xmlDocPtr doc = xmlReadMemory(vm->cfg->xml, (int)strlen(vm->cfg->xml), "domain.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlXPathContextPtr xp = doc ? xmlXPathNewContext(doc) : NULL;
	xmlXPathObjectPtr o = xp ? xmlXPathEvalExpression(
		BAD_CAST "/domain/devices/memory[@model='dimm'] | /domain/currentMemory | "
			 "/domain/memory", xp) : NULL;
	xmlNodePtr devices = NULL, cur = NULL, mem = NULL;
	xmlChar *out = NULL;
	char *ret = NULL;
	char buf[64];
	int len = 0;

	if (!o)
		goto done;
	for (int i = 0; o->nodesetval && i < o->nodesetval->nodeNr; i++) {
		xmlNodePtr n = o->nodesetval->nodeTab[i];

		if (xmlStrcmp(n->name, BAD_CAST "currentMemory") == 0) {
			cur = n;
			continue;
		}
		if (xmlStrcmp(n->name, BAD_CAST "memory") == 0 && n->parent &&
		    xmlStrcmp(n->parent->name, BAD_CAST "domain") == 0) {
			mem = n;
			continue;
		}
		devices = n->parent;
		xmlUnlinkNode(n);
		xmlFreeNode(n);
	}
	if (!devices) {
		xmlXPathFreeObject(o);
		o = xmlXPathEvalExpression(BAD_CAST "/domain/devices", xp);
		if (o && o->nodesetval && o->nodesetval->nodeNr > 0)
			devices = o->nodesetval->nodeTab[0];
	}
	for (unsigned int i = 1; dimms && devices && i < vm->nr_regions; i++) {
		struct mem_region *r = &vm->regions[i];
		xmlNodePtr m, t, s;

		if (!r->hva)
			continue;
		m = xmlNewChild(devices, NULL, BAD_CAST "memory", NULL);
		xmlNewProp(m, BAD_CAST "model", BAD_CAST "dimm");
		t = xmlNewChild(m, NULL, BAD_CAST "target", NULL);
		snprintf(buf, sizeof(buf), "%" PRIu64, r->size >> 10);
		s = xmlNewChild(t, NULL, BAD_CAST "size", BAD_CAST buf);
		xmlNewProp(s, BAD_CAST "unit", BAD_CAST "KiB");
		snprintf(buf, sizeof(buf), "%u", r->node);
		xmlNewChild(t, NULL, BAD_CAST "node", BAD_CAST buf);
	}
	if (mem) {
		snprintf(buf, sizeof(buf), "%" PRIu64, memory >> 10);
		xmlNodeSetContent(mem, BAD_CAST buf);
		xmlSetProp(mem, BAD_CAST "unit", BAD_CAST "KiB");
	}
	if (cur) {
		snprintf(buf, sizeof(buf), "%" PRIu64,
			 (vm->cfg->boot_ram + vm->dimm_bytes - vm->balloon_target) >> 10);
		xmlNodeSetContent(cur, BAD_CAST buf);
		xmlSetProp(cur, BAD_CAST "unit", BAD_CAST "KiB");
	}
	xmlDocDumpFormatMemory(doc, &out, &len, 1);
	if (out)
		ret = strdup((const char *)out);
	xmlFree(out);
done:
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(xp);
	xmlFreeDoc(doc);
	return ret;
}

char *memops_dumpxml(struct vm *vm)
{
	return definition(vm, true, vm->cfg->boot_ram + vm->dimm_bytes);
}

void memops_fini(struct vm *vm)
{
	free(vm->dumpxml_base);
	vm->dumpxml_base = NULL;
}
