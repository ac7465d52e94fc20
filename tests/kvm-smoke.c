/* kvm-smoke: the smallest real KVM guest, to prove that /dev/kvm works.
 *
 * One VM, one memory slot at guest physical 0, one vCPU in real mode
 * running a few instructions: read a byte the host put in guest memory,
 * write it and its successor to an I/O port, store a byte to guest memory,
 * halt. Every exit, every value and the final registers are checked.
 * Exit status: 0 pass, 1 fail, 77 skip (no /dev/kvm).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE	0x10000u	/* 64 KiB slot at guest physical 0 */
#define CODE_GPA	0x1000u
#define IN_GPA		0x2001u		/* the host writes here, the guest reads */
#define OUT_GPA		0x2000u		/* the guest writes here, the host reads */
#define TEST_PORT	0x10u
#define IN_VALUE	0x42u
#define OUT_VALUE	0xa5u

/* 16-bit real-mode code; DS is 0, so [disp16] is a guest physical address. */
static const uint8_t guest_code[] = {
	0xa0, IN_GPA & 0xff, IN_GPA >> 8,		/* mov al, [IN_GPA] */
	0xba, TEST_PORT, 0x00,				/* mov dx, TEST_PORT */
	0xee,						/* out dx, al */
	0x04, 0x01,					/* add al, 1 */
	0xee,						/* out dx, al */
	0xc6, 0x06, OUT_GPA & 0xff, OUT_GPA >> 8, OUT_VALUE, /* mov byte [OUT_GPA], OUT_VALUE */
	0xf4,						/* hlt */
};

static int failures;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		printf("kvm-smoke: FAIL: " __VA_ARGS__);		\
		printf("\n");						\
		failures++;						\
	}								\
} while (0)

static int xioctl(int fd, unsigned long req, void *arg, const char *what)
{
	int r = ioctl(fd, req, arg);

	if (r < 0) {
		printf("kvm-smoke: FAIL: %s: %s\n", what, strerror(errno));
		exit(1);
	}
	return r;
}

static const char *exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: return "other";
	}
}

/* Run until the next exit; expect an 8-bit OUT of @value to TEST_PORT. */
static void expect_out(int vcpu, struct kvm_run *run, uint8_t value)
{
	xioctl(vcpu, KVM_RUN, NULL, "KVM_RUN");
	if (run->exit_reason != KVM_EXIT_IO) {
		CHECK(0, "expected an I/O exit, got %s (%u)",
		      exit_name(run->exit_reason), run->exit_reason);
		exit(1);
	}
	uint8_t got = *((uint8_t *)run + run->io.data_offset);

	printf("kvm-smoke: exit IO %s port 0x%x size %u count %u value 0x%02x\n",
	       run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
	       run->io.port, run->io.size, run->io.count, got);
	CHECK(run->io.direction == KVM_EXIT_IO_OUT, "I/O exit is not an OUT");
	CHECK(run->io.port == TEST_PORT, "port 0x%x, expected 0x%x", run->io.port, TEST_PORT);
	CHECK(run->io.size == 1 && run->io.count == 1, "size %u count %u, expected 1 1",
	      run->io.size, run->io.count);
	CHECK(got == value, "value 0x%02x, expected 0x%02x", got, value);
}

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (kvm < 0) {
		printf("kvm-smoke: SKIP: cannot open /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	int api = ioctl(kvm, KVM_GET_API_VERSION, 0);

	printf("kvm-smoke: KVM_GET_API_VERSION = %d\n", api);
	if (api != KVM_API_VERSION) {
		printf("kvm-smoke: FAIL: API version %d, expected %d\n", api, KVM_API_VERSION);
		return 1;
	}
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0) {
		printf("kvm-smoke: FAIL: no KVM_CAP_USER_MEMORY\n");
		return 1;
	}

	int vm = xioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED) {
		printf("kvm-smoke: FAIL: mmap: %s\n", strerror(errno));
		return 1;
	}
	memcpy(mem + CODE_GPA, guest_code, sizeof(guest_code));
	mem[IN_GPA] = IN_VALUE;

	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)mem,
	};
	xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");

	int vcpu = xioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
	int run_size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, NULL, "KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE,
				   MAP_SHARED, vcpu, 0);

	if (run == MAP_FAILED) {
		printf("kvm-smoke: FAIL: mmap of the kvm_run area: %s\n", strerror(errno));
		return 1;
	}

	struct kvm_sregs sregs;

	xioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	xioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");

	struct kvm_regs regs = { .rip = CODE_GPA, .rflags = 0x2 };

	xioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
	printf("kvm-smoke: VM with a %u KiB slot and one vCPU in real mode at 0x%x\n",
	       MEM_SIZE / 1024, CODE_GPA);

	expect_out(vcpu, run, IN_VALUE);
	expect_out(vcpu, run, IN_VALUE + 1);

	xioctl(vcpu, KVM_RUN, NULL, "KVM_RUN");
	printf("kvm-smoke: exit %s\n", exit_name(run->exit_reason));
	CHECK(run->exit_reason == KVM_EXIT_HLT, "expected HLT, got %s (%u)",
	      exit_name(run->exit_reason), run->exit_reason);

	xioctl(vcpu, KVM_GET_REGS, &regs, "KVM_GET_REGS");
	printf("kvm-smoke: rip 0x%llx al 0x%02llx, guest wrote 0x%02x at 0x%x\n",
	       (unsigned long long)regs.rip, (unsigned long long)(regs.rax & 0xff),
	       mem[OUT_GPA], OUT_GPA);
	CHECK(regs.rip == CODE_GPA + sizeof(guest_code), "rip 0x%llx, expected 0x%zx",
	      (unsigned long long)regs.rip, CODE_GPA + sizeof(guest_code));
	CHECK((regs.rax & 0xff) == IN_VALUE + 1, "al 0x%02llx, expected 0x%02x",
	      (unsigned long long)(regs.rax & 0xff), IN_VALUE + 1);
	CHECK(mem[OUT_GPA] == OUT_VALUE, "guest memory 0x%02x at 0x%x, expected 0x%02x",
	      mem[OUT_GPA], OUT_GPA, OUT_VALUE);

	munmap(run, (size_t)run_size);
	munmap(mem, MEM_SIZE);
	close(vcpu);
	close(vm);
	close(kvm);
	printf("kvm-smoke: %s\n", failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
