/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM: each region (boot RAM, each DIMM) is one host mapping and one
 * KVM memory slot. Backing follows <memoryBacking>: a memfd per region
 * (mapped MAP_SHARED when access is shared) or anonymous memory. Mappings
 * are released through libmmn's munmap bracket, so anything subscribed to
 * the host address space hears of it first.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <mmn/mmn.h>

#include "core/util.h"
#include "core/vm.h"
#include "mem/mem.h"

int memory_region_alloc(struct vm *vm, struct mem_region *r, const char *name,
			uint64_t gpa, uint64_t size)
{
	const struct vm_config *cfg = vm->cfg;
	int flags = cfg->shared ? MAP_SHARED : MAP_PRIVATE;

	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->gpa = gpa;
	r->size = size;
	r->memfd = -1;
	r->slot = (uint32_t)(r - vm->regions);
	r->vm = vm;

	if (cfg->memfd) {
		char fdname[32];

		snprintf(fdname, sizeof(fdname), "kvm-demo-%s", name);
		r->memfd = memfd_create(fdname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (r->memfd < 0) {
			kd_error("%s: memfd_create: %s", name, strerror(errno));
			return -1;
		}
		if (ftruncate(r->memfd, (off_t)size) < 0) {
			kd_error("%s: cannot size the memfd to %" PRIu64 " MiB: %s", name,
				 size >> 20, strerror(errno));
			goto fail;
		}
		r->hva = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, r->memfd, 0);
	} else {
		r->hva = mmap(NULL, size, PROT_READ | PROT_WRITE,
			      flags | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	}
	if (r->hva == MAP_FAILED) {
		r->hva = NULL;
		kd_error("%s: cannot map %" PRIu64 " MiB of guest RAM: %s", name, size >> 20,
			 strerror(errno));
		goto fail;
	}
	/* Guest RAM never goes into a core dump or a fork. */
	madvise(r->hva, size, MADV_DONTDUMP);
	madvise(r->hva, size, MADV_DONTFORK);
	return 0;
fail:
	if (r->memfd >= 0)
		close(r->memfd);
	r->memfd = -1;
	return -1;
}

int memory_region_map_slot(struct vm *vm, struct mem_region *r)
{
	struct kvm_userspace_memory_region m = {
		.slot = r->slot,
		.guest_phys_addr = r->gpa,
		.memory_size = r->size,
		.userspace_addr = (uint64_t)(uintptr_t)r->hva,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) < 0) {
		kd_error("%s: KVM_SET_USER_MEMORY_REGION slot %u [0x%" PRIx64 ", +%" PRIu64
			 " MiB): %s", r->name, r->slot, r->gpa, r->size >> 20, strerror(errno));
		return -1;
	}
	r->slot_active = true;
	return 0;
}

void memory_region_unmap_slot(struct vm *vm, struct mem_region *r)
{
	struct kvm_userspace_memory_region m = { .slot = r->slot };	/* size 0 deletes */

	if (!r->slot_active)
		return;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) < 0)
		kd_error("%s: deleting slot %u: %s", r->name, r->slot, strerror(errno));
	r->slot_active = false;
}

void memory_region_free(struct vm *vm, struct mem_region *r)
{
	/* The backstop first: its own thread must not see our munmap. */
	if (r->watch)
		mmn_uffd_watch_stop(r->watch);
	r->watch = NULL;
	if (r->hva) {
		int err = mmn_munmap(vm->host_mm, r->hva, r->size, 0);

		if (err)
			kd_error("%s: munmap: %s", r->name, strerror(-err));
	}
	slots_untrack(vm, r);
	pthread_rwlock_wrlock(&vm->mem_lock);
	r->hva = NULL;
	r->plugged = false;
	pthread_rwlock_unlock(&vm->mem_lock);
	if (r->memfd >= 0)
		close(r->memfd);
	r->memfd = -1;
}

/* Called with mem_lock held (or before any other thread runs). */
void *memory_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < vm->nr_regions; i++) {
		struct mem_region *r = &vm->regions[i];

		if (r->plugged && r->hva && gpa >= r->gpa && len <= r->size &&
		    gpa - r->gpa <= r->size - len)
			return (char *)r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int memory_translate(struct vm *vm, uint64_t gpa, uint64_t len, bool write, void **hva)
{
	int ret = -EFAULT;

	*hva = NULL;
	if (len == 0 || gpa + len < gpa)
		return -EFAULT;
	pthread_rwlock_rdlock(&vm->mem_lock);
	for (unsigned int i = 0; i < vm->nr_regions; i++) {
		struct mem_region *r = &vm->regions[i];

		if (!(gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len))
			continue;
		if (!r->plugged || !r->hva)
			break;				/* unplugged: -EFAULT */
		if (i == 0 && vm->balloon_size && gpa + len > vm->balloon_end - vm->balloon_size &&
		    gpa < vm->balloon_end)
			break;				/* ballooned out: -EFAULT */
		if (r->moving) {
			ret = -EAGAIN;			/* mid-REMAP: retry after read_begin */
			break;
		}
		if (write && r->readonly) {
			ret = -EACCES;
			break;
		}
		*hva = (char *)r->hva + (gpa - r->gpa);
		ret = 0;
		break;
	}
	pthread_rwlock_unlock(&vm->mem_lock);
	return ret;
}
