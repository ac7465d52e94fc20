/* SPDX-License-Identifier: MIT */
/*
 * vCPUs: one thread each, started directly in 64-bit long mode.
 *
 * Stopping a vCPU: vm_request_stop() sets vm->stopping, then vcpu_kick()
 * sets run->immediate_exit and sends KD_KICK_SIGNAL to the thread. A
 * thread inside KVM_RUN leaves it with EINTR; a thread about to enter it
 * sees immediate_exit and returns at once; a thread between the two checks
 * vm->stopping at the top of its loop. No window loses the kick.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/util.h"
#include "core/vm.h"

#define CR0_PE		(1u << 0)
#define CR0_MP		(1u << 1)
#define CR0_ET		(1u << 4)
#define CR0_NE		(1u << 5)
#define CR0_WP		(1u << 16)
#define CR0_PG		(1u << 31)
#define CR4_PAE		(1u << 5)
#define EFER_LME	(1u << 8)
#define EFER_LMA	(1u << 10)

static void kick_handler(int sig)
{
	(void)sig;	/* only there to make KVM_RUN return EINTR */
}

int vcpu_init_kick_signal(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;	/* no SA_RESTART: KVM_RUN must return */
	sigemptyset(&sa.sa_mask);
	if (sigaction(KD_KICK_SIGNAL, &sa, NULL) < 0) {
		kd_error("sigaction: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The host's supported CPUID, with this vCPU's APIC ID filled in. */
static int setup_cpuid(struct vm *vm, struct vcpu *vcpu)
{
	unsigned int n = 128;
	struct kvm_cpuid2 *cpuid;
	int ret = -1;

	for (;;) {
		cpuid = calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
		if (!cpuid) {
			kd_error("out of memory");
			return -1;
		}
		cpuid->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			break;
		free(cpuid);
		if (errno != E2BIG || n >= 4096) {
			kd_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
			return -1;
		}
		n *= 2;
	}
	for (unsigned int i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffffu) | (vcpu->index << 24);
		} else if (e->function == 0xb || e->function == 0x1f) {
			e->edx = vcpu->index;	/* x2APIC ID */
		}
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0)
		kd_error("vCPU %u: KVM_SET_CPUID2: %s", vcpu->index, strerror(errno));
	else
		ret = 0;
	free(cpuid);
	return ret;
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, bool code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = selector;
	s->type = code ? 0xb : 0x3;	/* execute/read accessed, read/write accessed */
	s->present = 1;
	s->dpl = 0;
	s->db = code ? 0 : 1;		/* a 64-bit code segment has D = 0 */
	s->s = 1;
	s->l = code ? 1 : 0;
	s->g = 1;
}

static int setup_long_mode(struct vm *vm, struct vcpu *vcpu)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0) {
		kd_error("vCPU %u: KVM_GET_SREGS: %s", vcpu->index, strerror(errno));
		return -1;
	}
	flat_segment(&sregs.cs, KD_SEL_CODE64, true);
	flat_segment(&sregs.ds, KD_SEL_DATA, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = KD_GDT_GPA;
	sregs.gdt.limit = 3 * 8 - 1;
	sregs.idt.base = KD_IDT_GPA;
	sregs.idt.limit = KD_NR_VECTORS * KD_IDT_GATE_SIZE - 1;
	sregs.cr3 = KD_PML4_GPA;
	sregs.cr4 = CR4_PAE;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.efer = EFER_LME | EFER_LMA;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0) {
		kd_error("vCPU %u: KVM_SET_SREGS (long mode): %s", vcpu->index, strerror(errno));
		return -1;
	}

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;		/* bit 1 is always set; interrupts off */
	regs.rip = ((const struct kd_image_header *)vm->image)->entry_gpa;
	regs.rsp = KD_STACKS_GPA + (uint64_t)(vcpu->index + 1) * KD_STACK_SIZE;
	regs.rdi = vcpu->index;		/* guest_main(cpu) */
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0) {
		kd_error("vCPU %u: KVM_SET_REGS: %s", vcpu->index, strerror(errno));
		return -1;
	}
	return 0;
}

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned int index)
{
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0) {
		kd_error("KVM_CREATE_VCPU %u: %s", index, strerror(errno));
		return -1;
	}
	vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		kd_error("vCPU %u: cannot map kvm_run: %s", index, strerror(errno));
		return -1;
	}
	if (setup_cpuid(vm, vcpu) < 0 || setup_long_mode(vm, vcpu) < 0)
		return -1;
	return 0;
}

static bool protection_active(struct vm *vm)
{
	bool on;

	pthread_mutex_lock(&vm->pause_lock);
	on = vm->protected_regions > 0;
	pthread_mutex_unlock(&vm->pause_lock);
	return on;
}

static const char *exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_SHUTDOWN:		return "shutdown (triple fault)";
	case KVM_EXIT_FAIL_ENTRY:	return "entry failed";
	case KVM_EXIT_INTERNAL_ERROR:	return "internal error";
	case KVM_EXIT_MMIO:		return "MMIO";
	case KVM_EXIT_EXCEPTION:	return "exception";
	default:			return "unexpected";
	}
}

/*
 * After a crash: the vCPU's nonzero KVM counters (binary stats), on one
 * line. They say what KVM did behind the guest's back, e.g. whether it
 * emulated instructions or injected page faults. Best effort: a kernel
 * without KVM_GET_STATS_FD prints nothing.
 */
void vcpu_print_kvm_stats(struct vcpu *vcpu)
{
	struct kvm_stats_header h;
	char *descs = NULL, line[2048];
	size_t desc_size, used = 0;
	int fd = ioctl(vcpu->fd, KVM_GET_STATS_FD, 0);

	if (fd < 0)
		return;
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.num_desc > 4096 ||
	    h.name_size > 256)
		goto out;
	desc_size = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = malloc(desc_size * h.num_desc);
	if (!descs || pread(fd, descs, desc_size * h.num_desc, h.desc_offset) !=
		      (ssize_t)(desc_size * h.num_desc))
		goto out;
	line[0] = 0;
	for (uint32_t i = 0; i < h.num_desc; i++) {
		const struct kvm_stats_desc *d = (const void *)(descs + i * desc_size);
		uint64_t v;
		int n;

		if ((d->flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE || d->size != 1 ||
		    pread(fd, &v, sizeof(v), h.data_offset + d->offset) != (ssize_t)sizeof(v) || !v)
			continue;
		n = snprintf(line + used, sizeof(line) - used, "%s%.*s %" PRIu64,
			     used ? ", " : "", (int)h.name_size, d->name, v);
		if (n < 0 || (size_t)n >= sizeof(line) - used) {
			line[used] = 0;	/* the counters that fit */
			break;
		}
		used += (size_t)n;
	}
	if (used)
		kd_error("vCPU %u: KVM counters: %s", vcpu->index, line);
out:
	free(descs);
	close(fd);
}

/* Returns true to keep running. */
static bool handle_exit(struct vm *vm, struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return ports_handle_io(vm, vcpu);
	case KVM_EXIT_HLT:
		/* Without an in-kernel irqchip nothing can wake it: it is done. */
		return false;
	case KVM_EXIT_MMIO:
		/* No device is memory-mapped: at a RAM GPA this is a missing or stale slot. */
		if (memory_is_ram_gpa(vm, run->mmio.phys_addr))
			atomic_fetch_add(&vm->counters.stale_exits, 1);
		kd_error("vCPU %u: %s %u bytes at gpa 0x%" PRIx64 ": no memory slot there",
			 vcpu->index, run->mmio.is_write ? "write of" : "read of", run->mmio.len,
			 (uint64_t)run->mmio.phys_addr);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		kd_error("vCPU %u: entry failed, hardware reason 0x%llx", vcpu->index,
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		kd_error("vCPU %u: KVM internal error, suberror %u", vcpu->index,
			 run->internal.suberror);
		break;
	default: {
		struct kvm_regs regs;

		if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0)
			kd_error("vCPU %u: exit %u (%s) at rip 0x%llx", vcpu->index,
				 run->exit_reason, exit_name(run->exit_reason),
				 (unsigned long long)regs.rip);
		else
			kd_error("vCPU %u: exit %u (%s)", vcpu->index, run->exit_reason,
				 exit_name(run->exit_reason));
		vcpu_print_kvm_stats(vcpu);
		break;
	}
	}
	vm_request_stop(vm, VM_STOP_ERROR, KD_EXIT_HOST);
	return false;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), name);

	while (!atomic_load(&vm->stopping)) {
		if (atomic_load(&vm->pause_requested)) {
			vcpu_park(vm, false);	/* the acknowledgement vm_pause() waits for */
			continue;
		}
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* Atomic: kicks store it from other threads. */
				__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			/*
			 * A write to memory the host made read-only (protect):
			 * KVM cannot get a writable page. Wait until the
			 * protection ends, then the access is retried.
			 */
			if (errno == EFAULT && protection_active(vm)) {
				atomic_fetch_add(&vm->counters.protect_stalls, 1);
				vcpu_park(vm, true);
				continue;
			}
			if (errno == EFAULT)
				atomic_fetch_add(&vm->counters.stale_exits, 1);
			kd_error("vCPU %u: KVM_RUN: %s", vcpu->index, strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR, KD_EXIT_HOST);
			break;
		}
		vcpu->exits++;
		if (!handle_exit(vm, vcpu))
			break;
	}
	/* The last vCPU to halt without a result would leave the VM hanging. */
	pthread_mutex_lock(&vm->pause_lock);
	unsigned int was = atomic_fetch_sub(&vm->running_vcpus, 1);

	pthread_cond_broadcast(&vm->pause_cond);	/* vm_pause() waits for fewer now */
	pthread_mutex_unlock(&vm->pause_lock);
	if (was == 1 && !atomic_load(&vm->stopping)) {
		kd_error("every vCPU halted and the guest reported no result");
		vm_request_stop(vm, VM_STOP_ERROR, KD_EXIT_HOST);
	}
	return NULL;
}

int vcpu_start(struct vm *vm, struct vcpu *vcpu)
{
	int err = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (err) {
		kd_error("vCPU %u: cannot start its thread: %s", vcpu->index, strerror(err));
		return -1;
	}
	vcpu->thread_started = true;
	return 0;
}

void vcpu_kick(struct vm *vm, struct vcpu *vcpu)
{
	(void)vm;
	if (!vcpu->thread_started)
		return;
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->thread, KD_KICK_SIGNAL);
}

void vcpu_join(struct vm *vm, struct vcpu *vcpu)
{
	(void)vm;
	if (!vcpu->thread_started)
		return;
	pthread_join(vcpu->thread, NULL);
	vcpu->thread_started = false;
}

void vcpu_destroy(struct vm *vm, struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vm->run_size);
	vcpu->run = NULL;
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->fd = -1;
}
