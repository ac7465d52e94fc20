/* SPDX-License-Identifier: MIT */
/*
 * The crash dump: when a vCPU stops with a shutdown exit (the guest
 * triple-faulted), what the guest's structures hold now against what
 * kvm-demo wrote at boot. A triple fault needs the IDT, the GDT, the page
 * tables or the stack unusable; all live in boot RAM, which kvm-demo moves
 * (remap) and protects, so a corrupt or missing page there would name
 * kvm-demo. The dump prints the vCPU's registers, the KVM slot table as
 * kvm-demo last set it beside its region table, a line per structure, and
 * one verdict line that tests and tests/nested/chaos-experiment read.
 *
 * Every vCPU shares the GDT, the IDT and the page tables: whether the
 * other vCPUs go on verifying pages after the crash is the guest's own
 * evidence that they work.
 */
#define _GNU_SOURCE
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/util.h"
#include "core/vm.h"

#define GIB		(1ull << 30)
/* Set by the CPU in paging entries as it walks them: not a corruption. */
#define PTE_AD		((1ull << 5) | (1ull << 6))
#define PT_ENTRIES	512u

/* What KVM_SET_USER_MEMORY_REGION last said per slot; slot_lock. */
struct slot_note {
	bool active;
	uint64_t gpa, size, hva;
};

static struct {
	bool recorded;
	uint64_t gdt[3];
	uint64_t idt[2 * KD_NR_VECTORS];
	uint64_t *tables;		/* PML4, PDPT, then nr_pd PDs: pages */
	unsigned int nr_pd;
	struct kd_boot_info bi;
	unsigned char *image;		/* the image as loaded: image_size bytes */
	size_t image_size;
	pthread_mutex_t slot_lock;
	struct slot_note slots[1 + KD_MAX_DIMMS];
	atomic_bool dumped;		/* one dump per run: the first crash */
} boot = { .slot_lock = PTHREAD_MUTEX_INITIALIZER };

/* The guest-physical copy of [GPA, GPA + LEN) into DST; false if not in RAM. */
static bool copy_gpa(struct vm *vm, uint64_t gpa, void *dst, size_t len)
{
	const void *src = memory_gpa_to_hva(vm, gpa, len);

	if (!src)
		return false;
	memcpy(dst, src, len);
	return true;
}

int crashdump_record(struct vm *vm)
{
	size_t tables = (2 + (size_t)(vm->map_end / GIB)) * KD_PAGE_SIZE;
	const struct kd_image_header *h = vm->image;

	boot.nr_pd = (unsigned int)(vm->map_end / GIB);
	boot.tables = malloc(tables);
	boot.image_size = h->end_gpa - KD_IMAGE_GPA;
	boot.image = malloc(boot.image_size);
	if (!boot.tables || !boot.image) {
		kd_error("crash dump: out of memory for the boot copy");
		return -1;
	}
	pthread_rwlock_rdlock(&vm->mem_lock);
	bool ok = copy_gpa(vm, KD_GDT_GPA, boot.gdt, sizeof(boot.gdt)) &&
		  copy_gpa(vm, KD_IDT_GPA, boot.idt, sizeof(boot.idt)) &&
		  copy_gpa(vm, KD_PML4_GPA, boot.tables, KD_PAGE_SIZE) &&
		  copy_gpa(vm, KD_PDPT_GPA, boot.tables + PT_ENTRIES, KD_PAGE_SIZE) &&
		  copy_gpa(vm, KD_PD_GPA, boot.tables + 2 * PT_ENTRIES,
			   boot.nr_pd * KD_PAGE_SIZE) &&
		  copy_gpa(vm, KD_BOOT_INFO_GPA, &boot.bi, sizeof(boot.bi)) &&
		  copy_gpa(vm, KD_IMAGE_GPA, boot.image, boot.image_size);
	pthread_rwlock_unlock(&vm->mem_lock);
	if (!ok) {
		kd_error("crash dump: the boot structures are not in boot RAM");
		return -1;
	}
	boot.recorded = true;
	return 0;
}

void crashdump_free(void)
{
	free(boot.tables);
	free(boot.image);
	boot.tables = NULL;
	boot.image = NULL;
	boot.recorded = false;
}

void crashdump_note_slot(const struct mem_region *r, bool active)
{
	if (r->slot >= 1 + KD_MAX_DIMMS)
		return;
	pthread_mutex_lock(&boot.slot_lock);
	boot.slots[r->slot] = (struct slot_note){
		.active = active, .gpa = r->gpa, .size = r->size,
		.hva = (uint64_t)(uintptr_t)r->hva,
	};
	pthread_mutex_unlock(&boot.slot_lock);
}

/* Prints VCPU's registers; false if they could not be read, else *SREGS holds them. */
static bool print_regs(struct vcpu *vcpu, const char *what, FILE *f, struct kvm_sregs *sregs)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(f, "kvm-demo: %s: vCPU %u: KVM_GET_REGS/SREGS failed\n", what,
			vcpu->index);
		return false;
	}
	fprintf(f, "kvm-demo: %s: vCPU %u regs: rip 0x%llx rsp 0x%llx rflags 0x%llx "
		"rax 0x%llx rcx 0x%llx rdi 0x%llx\n", what, vcpu->index, r.rip, r.rsp, r.rflags,
		r.rax, r.rcx, r.rdi);
	fprintf(f, "kvm-demo: %s: vCPU %u sregs: cr0 0x%llx cr2 0x%llx cr3 0x%llx "
		"cr4 0x%llx efer 0x%llx cs 0x%x base 0x%llx gdt 0x%llx/%u idt 0x%llx/%u\n",
		what, vcpu->index, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.base,
		s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
	/* KVM resets the vCPU at a shutdown: these registers are not the crash's. */
	if (r.rip == 0xfff0 && s.cs.base == 0xffff0000)
		fprintf(f, "kvm-demo: %s: vCPU %u: in its reset state (KVM reset it at "
			"the shutdown); the registers at the fault are gone\n", what, vcpu->index);
	*sregs = s;
	return true;
}

/* The slot table KVM has (as kvm-demo set it) against the regions; false if they disagree. */
static bool check_slots(struct vm *vm, FILE *f)
{
	bool ok = true;

	pthread_mutex_lock(&boot.slot_lock);
	for (unsigned int i = 0; i < vm->nr_regions; i++) {
		const struct mem_region *r = &vm->regions[i];
		const struct slot_note *n = r->slot < 1 + KD_MAX_DIMMS ? &boot.slots[r->slot] : NULL;
		bool same = n && n->active == r->slot_active &&
			    (!n->active || (n->gpa == r->gpa && n->size == r->size &&
					    n->hva == (uint64_t)(uintptr_t)r->hva));
		/* A plugged region with memory needs its slot, unless it is moving. */
		bool needed = r->plugged && r->hva && !r->moving;

		fprintf(f, "kvm-demo: crash dump: slot %u (%s): gpa 0x%" PRIx64 " size %" PRIu64
			" MiB hva %p%s%s%s%s; KVM: %s\n", r->slot, r->name, r->gpa, r->size >> 20,
			r->hva, r->plugged ? " plugged" : "", r->readonly ? " read-only" : "",
			r->moving ? " moving" : "", r->slot_active ? " active" : " inactive",
			!n || !n->active ? "no slot" : same ? "the same" : "DIFFERENT");
		if (!same || (needed && !r->slot_active)) {
			ok = false;
			fprintf(f, "kvm-demo: crash dump: slot %u (%s): KVM's slot %s\n", r->slot,
				r->name, !same ? "is not what the region table says"
					       : "is missing for plugged memory");
		}
	}
	pthread_mutex_unlock(&boot.slot_lock);
	return ok;
}

/* Entries of N 64-bit words at GPA against WANT, ignoring IGNORE bits. */
static bool check_words(struct vm *vm, FILE *f, const char *what, uint64_t gpa,
			const uint64_t *want, size_t n, uint64_t ignore)
{
	const uint64_t *have = memory_gpa_to_hva(vm, gpa, n * 8);
	unsigned int bad = 0;

	if (!have) {
		fprintf(f, "kvm-demo: crash dump: %s at gpa 0x%" PRIx64 ": NOT in guest RAM now\n",
			what, gpa);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if ((have[i] & ~ignore) == (want[i] & ~ignore))
			continue;
		if (bad++ < 4)
			fprintf(f, "kvm-demo: crash dump: %s[%zu] differs: 0x%016" PRIx64
				" (wrote 0x%016" PRIx64 ")\n", what, i, have[i], want[i]);
	}
	if (bad)
		fprintf(f, "kvm-demo: crash dump: %s: %u of %zu entries differ\n", what, bad, n);
	else
		fprintf(f, "kvm-demo: crash dump: %s intact (%zu entries)\n", what, n);
	return bad == 0;
}

/* Bytes in use at the bottom of vCPU I's stack: how deep it ever went. */
static void check_stack(struct vm *vm, FILE *f, unsigned int i)
{
	uint64_t base = KD_STACKS_GPA + i * KD_STACK_SIZE;
	const unsigned char *s = memory_gpa_to_hva(vm, base, KD_STACK_SIZE);
	size_t low = 0;

	if (!s) {
		fprintf(f, "kvm-demo: crash dump: stack of vCPU %u: NOT in guest RAM now\n", i);
		return;
	}
	while (low < KD_STACK_SIZE && !s[low])
		low++;
	fprintf(f, "kvm-demo: crash dump: stack of vCPU %u: at most %zu of %llu bytes used%s\n",
		i, (size_t)KD_STACK_SIZE - low, KD_STACK_SIZE,
		low == 0 ? " (FULL: an overflow?)" : "");
}

/* The loaded image's pages that differ now (data and bss do; code must not). */
static void check_image(struct vm *vm, FILE *f)
{
	const unsigned char *have = memory_gpa_to_hva(vm, KD_IMAGE_GPA, boot.image_size);
	unsigned int pages = 0;
	char list[160] = "";
	size_t used = 0;

	if (!have) {
		fprintf(f, "kvm-demo: crash dump: the image: NOT in guest RAM now\n");
		return;
	}
	for (size_t off = 0; off < boot.image_size; off += KD_PAGE_SIZE) {
		size_t len = boot.image_size - off < KD_PAGE_SIZE ? boot.image_size - off
								  : KD_PAGE_SIZE;

		if (memcmp(have + off, boot.image + off, len) == 0)
			continue;
		pages++;
		if (used < sizeof(list) - 24) {
			int n = snprintf(list + used, sizeof(list) - used, " 0x%" PRIx64,
					 (uint64_t)(KD_IMAGE_GPA + off));

			used += n > 0 ? (size_t)n : 0;
		}
	}
	fprintf(f, "kvm-demo: crash dump: the image: %u of %zu pages differ from the load "
		"(data and bss change; code does not)%s%s\n", pages,
		(size_t)((boot.image_size + KD_PAGE_SIZE - 1) / KD_PAGE_SIZE), pages ? ": at" : "", list);
}

void crashdump_print(struct vm *vm, struct vcpu *vcpu, FILE *f)
{
	struct kvm_sregs sregs;
	bool slots_ok, gdt, idt, pml4, pdpt, pd, bi;
	uint64_t before, after;

	if (!boot.recorded || atomic_exchange(&boot.dumped, true))
		return;
	fflush(stdout);
	fprintf(f, "kvm-demo: crash dump: vCPU %u stopped with a shutdown exit\n", vcpu->index);
	print_regs(vcpu, "crash dump", f, &sregs);
	/*
	 * mem_lock for reading: no region moves while we read. Safe from a
	 * vCPU thread: a writer that must pause the vCPUs waits for this one
	 * in vm_pause() before it takes the lock.
	 */
	pthread_rwlock_rdlock(&vm->mem_lock);
	slots_ok = check_slots(vm, f);
	gdt = check_words(vm, f, "GDT", KD_GDT_GPA, boot.gdt, 3, 0);
	idt = check_words(vm, f, "IDT", KD_IDT_GPA, boot.idt, 2 * KD_NR_VECTORS, 0);
	pml4 = check_words(vm, f, "PML4", KD_PML4_GPA, boot.tables, PT_ENTRIES, PTE_AD);
	pdpt = check_words(vm, f, "PDPT", KD_PDPT_GPA, boot.tables + PT_ENTRIES, PT_ENTRIES,
			   PTE_AD);
	pd = check_words(vm, f, "PD", KD_PD_GPA, boot.tables + 2 * PT_ENTRIES,
			 (size_t)boot.nr_pd * PT_ENTRIES, PTE_AD);
	bi = check_words(vm, f, "boot info", KD_BOOT_INFO_GPA, (const uint64_t *)&boot.bi,
			 sizeof(boot.bi) / 8, 0);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		check_stack(vm, f, i);
	check_image(vm, f);
	pthread_rwlock_unlock(&vm->mem_lock);

	/*
	 * The other vCPUs walk the same tables and take exceptions through
	 * the same IDT. ops_lock keeps new memory operations (and their
	 * pauses) out meanwhile; only tried, since an operation that holds it
	 * may be waiting for this vCPU to park.
	 */
	before = after = 0;
	if (pthread_mutex_trylock(&vm->ops_lock) == 0) {
		before = atomic_load(&vm->pages_verified);
		kd_sleep_ms(300);
		after = atomic_load(&vm->pages_verified);
		pthread_mutex_unlock(&vm->ops_lock);
		fprintf(f, "kvm-demo: crash dump: the other vCPUs verified %" PRIu64 " pages in "
			"the 300 ms after the crash%s\n", after - before,
			after > before ? ", through the same GDT, IDT and page tables"
				       : " (done or stalled: no evidence either way)");
	} else {
		fprintf(f, "kvm-demo: crash dump: the other vCPUs' progress not sampled: a memory "
			"operation is under way\n");
	}

	if (slots_ok && gdt && idt && pml4 && pdpt && pd && bi)
		fprintf(f, "kvm-demo: crash dump: verdict: what kvm-demo wrote is intact (GDT, "
			"IDT, page tables, boot info) and KVM's slots match the regions%s\n",
			after > before ? "; other vCPUs ran on" : "");
	else
		fprintf(f, "kvm-demo: crash dump: VERDICT: kvm-demo's state is damaged:%s%s%s%s%s%s%s\n",
			slots_ok ? "" : " slots", gdt ? "" : " GDT", idt ? "" : " IDT",
			pml4 ? "" : " PML4", pdpt ? "" : " PDPT", pd ? "" : " PD",
			bi ? "" : " boot-info");
	fflush(f);
}

void crashdump_print_stuck(struct vm *vm, FILE *f)
{
	fflush(stdout);
	/* Bounded: a vCPU thread stuck outside KVM_RUN would never park. */
	if (vm_pause_timed(vm, 2000)) {
		for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
			struct kvm_sregs s;

			/*
			 * The guest never changes its GDT: another one means the
			 * vCPU runs on state neither kvm-demo nor the guest set.
			 */
			if (print_regs(&vm->vcpus[i], "stuck guest", f, &s) &&
			    s.gdt.base != KD_GDT_GPA)
				fprintf(f, "kvm-demo: stuck guest: verdict: vCPU %u runs on state "
					"kvm-demo never set (GDT at 0x%llx, not 0x%llx): replaced below "
					"kvm-demo\n", vm->vcpus[i].index,
					s.gdt.base, KD_GDT_GPA);
		}
		vm_resume(vm);
	} else {
		fprintf(f, "kvm-demo: stuck guest: a vCPU thread did not park within 2 s: it is "
			"blocked in kvm-demo, not in the guest\n");
	}
	vu_blk_print_state(vm, f);
}
