/* SPDX-License-Identifier: MIT */
/*
 * The VM: /dev/kvm, the guest-physical layout, the guest image, the page
 * tables, and the stop protocol shared by vCPU threads and the main thread.
 *
 * Layout: boot RAM at 0 holds the boot info, the GDT, the page tables, the
 * vCPU stacks and the image at KD_IMAGE_GPA (see guest/abi.h); the rest of
 * it is tested by the guest. DIMMs follow each other from KD_HOTPLUG_GPA.
 * The page tables identity-map the whole hotplug window up front (2 MiB
 * pages), so memory plugged later needs a slot, not a page-table change.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <mmn/mmn.h>

#include "core/util.h"
#include "core/vm.h"

#define GIB		(1ull << 30)
#define PTE_P		(1ull << 0)
#define PTE_RW		(1ull << 1)
#define PTE_PS		(1ull << 7)
#define GATE_INTR64	0x8eull		/* present, DPL 0, 64-bit interrupt gate */
#define KVM_API		12
/* Where KVM may put the TSS it needs on Intel hosts: above RAM, below 4 GiB. */
#define KD_TSS_GPA	0xfffbd000ull

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int open_kvm(struct vm *vm)
{
	int api;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		kd_error("cannot open /dev/kvm: %s", strerror(errno));
		return -1;
	}
	api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API) {
		kd_error("/dev/kvm: API version %d, kvm-demo needs %d", api, KVM_API);
		return -1;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		kd_error("KVM_CREATE_VM: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
	    ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KD_TSS_GPA) < 0) {
		kd_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -1;
	}
	int size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);

	if (size < (int)sizeof(struct kvm_run)) {
		kd_error("KVM_GET_VCPU_MMAP_SIZE: %s", size < 0 ? strerror(errno) : "too small");
		return -1;
	}
	vm->run_size = (size_t)size;
	return 0;
}

/*
 * The GPA of the config's DIMM I: its base, else the lowest one in the
 * hotplug window clear of the DIMMs placed so far (regions 1 to I) and of
 * those still to come that have a base. 0 when none is left.
 */
static uint64_t dimm_gpa(struct vm *vm, unsigned int i)
{
	const struct vm_config *cfg = vm->cfg;
	uint64_t end = KD_HOTPLUG_GPA + (cfg->has_max_memory ? cfg->max_memory - cfg->boot_ram : 0);
	uint64_t gpa = KD_HOTPLUG_GPA, size = cfg->dimms[i].size;
	bool moved = true;

	if (cfg->dimms[i].base)
		return cfg->dimms[i].base;
	while (moved) {
		moved = false;
		for (unsigned int j = 0; j < cfg->nr_dimms; j++) {
			uint64_t at = j < i ? vm->regions[1 + j].gpa : cfg->dimms[j].base;

			if (j != i && at && gpa < at + cfg->dimms[j].size && at < gpa + size) {
				gpa = at + cfg->dimms[j].size;
				moved = true;
			}
		}
	}
	return gpa <= end && size <= end - gpa ? gpa : 0;
}

static int setup_memory(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	uint64_t gpa = KD_HOTPLUG_GPA;
	uint64_t window = cfg->has_max_memory ? cfg->max_memory - cfg->boot_ram : 0;

	if (memory_region_alloc(vm, &vm->regions[0], "boot", 0, cfg->boot_ram) < 0)
		return -1;
	vm->regions[0].plugged = true;
	vm->nr_regions = 1;
	for (unsigned int i = 0; i < cfg->nr_dimms; i++) {
		char name[16];

		/* At its <address base>, else the lowest room clear of every DIMM. */
		gpa = dimm_gpa(vm, i);
		if (!gpa) {
			kd_error("<memory model='dimm'> #%u: no room for %" PRIu64 " MiB in the "
				 "hotplug window beside the DIMMs placed by address", i,
				 cfg->dimms[i].size >> 20);
			return -1;
		}
		snprintf(name, sizeof(name), "dimm%u", i);
		if (memory_region_alloc(vm, &vm->regions[vm->nr_regions], name, gpa,
					cfg->dimms[i].size) < 0)
			return -1;
		vm->regions[vm->nr_regions].plugged = true;
		vm->regions[vm->nr_regions].node = cfg->dimms[i].node;
		vm->dimm_bytes += cfg->dimms[i].size;
		vm->nr_regions++;
		gpa += cfg->dimms[i].size;
	}
	vm->hotplug_next_gpa = gpa;
	vm->map_end = align_up(window ? KD_HOTPLUG_GPA + window : cfg->boot_ram, GIB);
	for (unsigned int i = 0; i < vm->nr_regions; i++)
		if (memory_region_map_slot(vm, &vm->regions[i]) < 0 ||
		    slots_track(vm, &vm->regions[i]) < 0)
			return -1;
	vm->balloon_end = cfg->boot_ram;
	vm->mailbox = memory_gpa_to_hva(vm, KD_MAILBOX_GPA, sizeof(struct kd_mailbox));
	return 0;
}

/* GDT, identity page tables, boot info, and the image, all in boot RAM. */
static int load_guest(struct vm *vm)
{
	const struct kd_image_header *h = vm->image;
	uint64_t *gdt = memory_gpa_to_hva(vm, KD_GDT_GPA, 3 * 8);
	uint64_t *idt = memory_gpa_to_hva(vm, KD_IDT_GPA, KD_NR_VECTORS * KD_IDT_GATE_SIZE);
	uint64_t *pml4 = memory_gpa_to_hva(vm, KD_PML4_GPA, KD_PAGE_SIZE);
	uint64_t *pdpt = memory_gpa_to_hva(vm, KD_PDPT_GPA, KD_PAGE_SIZE);
	unsigned int nr_pd = (unsigned int)(vm->map_end / GIB);
	uint64_t *pd = memory_gpa_to_hva(vm, KD_PD_GPA, nr_pd * KD_PAGE_SIZE);
	struct kd_boot_info *bi = memory_gpa_to_hva(vm, KD_BOOT_INFO_GPA, sizeof(*bi));
	void *image = memory_gpa_to_hva(vm, KD_IMAGE_GPA, h->end_gpa - KD_IMAGE_GPA);
	uint64_t test_start = align_up(h->end_gpa, 64 * 1024);

	if (!gdt || !idt || !pml4 || !pdpt || !pd || !bi || !image || nr_pd > KD_MAX_PDS) {
		kd_error("boot RAM of %" PRIu64 " KiB cannot hold the boot structures",
			 vm->cfg->boot_ram >> 10);
		return -1;
	}
	/* Accessed bits set, as in the vCPUs' segment registers: no GDT writes. */
	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffull;		/* 64-bit code, DPL 0 */
	gdt[2] = 0x00cf93000000ffffull;		/* data, DPL 0 */

	/* Every exception goes to the guest's stub, which reports it. */
	for (unsigned int v = 0; v < KD_NR_VECTORS; v++) {
		uint64_t stub = h->vectors_gpa + (uint64_t)v * KD_VECTOR_STUB_SIZE;

		idt[2 * v] = (stub & 0xffff) | (uint64_t)KD_SEL_CODE64 << 16 |
			     GATE_INTR64 << 40 | (stub >> 16 & 0xffff) << 48;
		idt[2 * v + 1] = stub >> 32;
	}

	pml4[0] = KD_PDPT_GPA | PTE_P | PTE_RW;
	for (unsigned int i = 0; i < nr_pd; i++) {
		pdpt[i] = (KD_PD_GPA + i * KD_PAGE_SIZE) | PTE_P | PTE_RW;
		for (unsigned int j = 0; j < 512; j++)
			pd[i * 512 + j] = (i * GIB + j * (2ull << 20)) | PTE_P | PTE_RW | PTE_PS;
	}

	memcpy(image, vm->image, vm->image_size);
	memset((char *)image + vm->image_size, 0, h->end_gpa - KD_IMAGE_GPA - vm->image_size);

	memset(bi, 0, sizeof(*bi));
	bi->magic = KD_BOOT_MAGIC;
	bi->nr_vcpus = vm->nr_vcpus;
	bi->passes = vm->cfg->passes ? vm->cfg->passes : vm->nr_vcpus;
	if (test_start < vm->cfg->boot_ram) {
		bi->ranges[bi->nr_ranges].gpa = test_start;
		bi->ranges[bi->nr_ranges].size = vm->cfg->boot_ram - test_start;
		bi->nr_ranges++;
	}
	for (unsigned int i = 1; i < vm->nr_regions && bi->nr_ranges < KD_MAX_RANGES; i++) {
		bi->ranges[bi->nr_ranges].gpa = vm->regions[i].gpa;
		bi->ranges[bi->nr_ranges].size = vm->regions[i].size;
		bi->nr_ranges++;
	}
	/* The guest keeps a quarter of its boot test range (guest/mailbox.c). */
	if (test_start < vm->cfg->boot_ram) {
		uint64_t n = vm->cfg->boot_ram - test_start;

		vm->balloon_cap = (n - n / 4) & ~(KD_PAGE_SIZE - 1);
	}
	/*
	 * <currentMemory> below <memory>: the balloon holds the difference from
	 * boot, pages the guest never touches (they were never backed).
	 */
	if (vm->cfg->current_memory < vm->cfg->boot_ram + vm->dimm_bytes) {
		uint64_t want = (vm->cfg->boot_ram + vm->dimm_bytes - vm->cfg->current_memory +
				 KD_PAGE_SIZE - 1) & ~(KD_PAGE_SIZE - 1);

		if (want > vm->balloon_cap) {
			kd_error("<currentMemory> %" PRIu64 " KiB: the balloon takes boot RAM only, "
				 "at most %" PRIu64 " KiB of it here (%" PRIu64 " KiB asked)",
				 vm->cfg->current_memory >> 10, vm->balloon_cap >> 10, want >> 10);
			return -1;
		}
		bi->balloon = want;
		vm->balloon_size = vm->balloon_target = vm->balloon_next_size = want;
	}
	vm->test_bytes = 0;
	for (unsigned int i = 0; i < bi->nr_ranges; i++)
		vm->test_bytes += bi->ranges[i].size;
	vm->test_bytes -= bi->balloon;
	vm->passes = bi->passes;
	return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg, const void *image, size_t size)
{
	int err;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->image = image;
	vm->image_size = size;
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_mutex_init(&vm->serial_lock, NULL);
	pthread_rwlock_init(&vm->mem_lock, NULL);
	pthread_mutex_init(&vm->ops_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	pthread_mutex_init(&vm->inval_lock, NULL);
	pthread_mutex_init(&vm->mb_lock, NULL);
	pthread_cond_init(&vm->mb_cond, NULL);
	vm->unplug_timeout_ms = 20000;
	for (unsigned int i = 0; i < KD_MAX_VCPUS; i++)
		vm->vcpus[i].fd = -1;

	err = mmn_state_new(&vm->host_mm);
	if (err == 0)
		err = mmn_state_new(&vm->guest_mm);
	if (err) {
		kd_error("mmn_state_new: %s", strerror(-err));
		return -1;
	}
	vm->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (vm->stop_fd < 0) {
		kd_error("eventfd: %s", strerror(errno));
		return -1;
	}
	if (slots_init(vm) < 0 || open_kvm(vm) < 0 || setup_memory(vm) < 0)
		return -1;
	vm->nr_vcpus = cfg->nr_vcpus;
	if (load_guest(vm) < 0 || crashdump_record(vm) < 0 || vdev_create(vm) < 0 ||
	    vu_blk_create(vm) < 0)
		return -1;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		if (vcpu_create(vm, &vm->vcpus[i], i) < 0)
			return -1;
	return 0;
}

int vm_start(struct vm *vm)
{
	int ret = 0;

	/* Under stop_lock, so that a stop request never sees a half-started vCPU. */
	pthread_mutex_lock(&vm->stop_lock);
	atomic_store(&vm->running_vcpus, vm->nr_vcpus);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		if (vcpu_start(vm, &vm->vcpus[i]) < 0) {
			/* Threads never started do not count as running. */
			atomic_fetch_sub(&vm->running_vcpus, vm->nr_vcpus - i);
			ret = -1;
			break;
		}
	}
	pthread_mutex_unlock(&vm->stop_lock);
	if (ret < 0)
		vm_request_stop(vm, VM_STOP_ERROR, KD_EXIT_HOST);
	return ret;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int result)
{
	bool first;
	uint64_t one = 1;

	pthread_mutex_lock(&vm->stop_lock);
	first = vm->stop_reason == VM_RUNNING;
	if (first) {
		vm->stop_reason = reason;
		vm->guest_result = result;
		vm->stop_time = kd_now();
		/* stopping before immediate_exit: see the comment at the top of vcpu.c. */
		atomic_store(&vm->stopping, true);
		for (unsigned int i = 0; i < vm->nr_vcpus; i++)
			vcpu_kick(vm, &vm->vcpus[i]);
	}
	pthread_mutex_unlock(&vm->stop_lock);
	if (!first)
		return;
	/* Parked vCPUs and waiters on the mailbox look at stopping too. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	pthread_mutex_lock(&vm->mb_lock);
	pthread_cond_broadcast(&vm->mb_cond);
	pthread_mutex_unlock(&vm->mb_lock);
	if (vm->stop_fd >= 0 && write(vm->stop_fd, &one, sizeof(one)) != sizeof(one))
		kd_error("eventfd write: %s", strerror(errno));
}

void vm_destroy(struct vm *vm)
{
	if (vm->nr_vcpus && !atomic_load(&vm->stopping))
		vm_request_stop(vm, VM_STOP_ERROR, KD_EXIT_HOST);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(vm, &vm->vcpus[i]);
	ports_flush(vm);
	vdev_destroy(vm);	/* its worker reaches guest RAM */
	if (!vu_blk_destroy(vm))	/* so does its backend */
		vm->disk_broken = true;
	for (unsigned int i = 0; i < KD_MAX_VCPUS; i++)
		vcpu_destroy(vm, &vm->vcpus[i]);
	for (unsigned int i = 0; i < vm->nr_regions; i++) {
		if (vm->vm_fd >= 0)
			memory_region_unmap_slot(vm, &vm->regions[i]);
		memory_region_free(vm, &vm->regions[i]);
	}
	memops_fini(vm);
	crashdump_free();
	if (vm->host_mm)
		slots_fini(vm);
	/* Devices subscribe to guest_mm; they are gone by now. */
	mmn_state_free(vm->guest_mm);
	mmn_state_free(vm->host_mm);
	vm->guest_mm = vm->host_mm = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	vm->vm_fd = vm->kvm_fd = vm->stop_fd = -1;
	pthread_mutex_destroy(&vm->stop_lock);
	pthread_mutex_destroy(&vm->serial_lock);
	pthread_rwlock_destroy(&vm->mem_lock);
	pthread_mutex_destroy(&vm->ops_lock);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_cond_destroy(&vm->pause_cond);
	pthread_mutex_destroy(&vm->inval_lock);
	pthread_mutex_destroy(&vm->mb_lock);
	pthread_cond_destroy(&vm->mb_cond);
}
