/* SPDX-License-Identifier: MIT */
/*
 * The kvm-demo guest: a memory self-test run by every vCPU.
 *
 * The RAM ranges in the boot info are cut into one chunk per vCPU. In pass
 * P, vCPU I owns chunk (I + P) mod N: it first checks that the chunk still
 * holds the pattern its previous owner wrote in pass P - 1 (memory written
 * by one vCPU is read back by another), then fills it with its own pattern,
 * distinct per vCPU and pass, and reads it back. After N passes every vCPU
 * has tested all RAM. A barrier separates passes. Any mismatch is printed
 * and reported through the result port, which ends the VM.
 *
 * Between passes vCPU 0 answers the memory mailbox (mailbox.c); when the
 * RAM under test changed, chunks move, so the next pass fills before it
 * checks instead of checking the previous owner's pattern.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "abi.h"
#include "blk.h"
#include "mailbox.h"
#include "vdev.h"

#define PAGE_SIZE 4096ull

void guest_main(uint32_t cpu);
void guest_exception(const uint64_t *frame, uint64_t cr2);

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

/* Serial output: one line at a time under a spinlock, so lines never mix. */
static uint32_t print_lock;

static void lock(uint32_t *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(l, __ATOMIC_RELAXED))
			cpu_relax();
}

static void unlock(uint32_t *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

static void put_char(char c)
{
	outb(KD_PORT_SERIAL, (uint8_t)c);
}

static void put_str(const char *s)
{
	while (*s)
		put_char(*s++);
}

static void put_num(uint64_t v, unsigned int base)
{
	char buf[24];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		put_char(buf[--n]);
}

/* %s, %u, %lu (decimal), %x, %lx (hex): all this guest needs. */
void print(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lock(&print_lock);
	for (; *fmt; fmt++) {
		bool is_long = false;

		if (*fmt != '%') {
			put_char(*fmt);
			continue;
		}
		if (*++fmt == 'l') {
			is_long = true;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			put_str(va_arg(ap, const char *));
			break;
		case 'u':
			put_num(is_long ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t), 10);
			break;
		case 'x':
			put_num(is_long ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t), 16);
			break;
		default:
			put_char('?');
			break;
		}
	}
	unlock(&print_lock);
	va_end(ap);
}

/* Sense-reversing barrier over all vCPUs. */
static uint32_t barrier_count;
static uint32_t barrier_sense;

static void barrier(uint32_t nr_vcpus)
{
	uint32_t sense = !__atomic_load_n(&barrier_sense, __ATOMIC_RELAXED);

	if (__atomic_add_fetch(&barrier_count, 1, __ATOMIC_ACQ_REL) == nr_vcpus) {
		__atomic_store_n(&barrier_count, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&barrier_sense, sense, __ATOMIC_RELEASE);
	} else {
		while (__atomic_load_n(&barrier_sense, __ATOMIC_ACQUIRE) != sense)
			cpu_relax();
	}
}

static uint32_t failed;

static void fail(void)
{
	__atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
	outl(KD_PORT_RESULT, KD_RESULT_MISMATCH);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static const char *const exception_names[KD_NR_VECTORS] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF (old)", "#TS",
	"#NP", "#SS", "#GP", "#PF", "reserved", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

/*
 * Any CPU exception: entry.S's stubs land here with FRAME = vector, error
 * code, RIP, CS, RFLAGS, RSP, SS. Nothing here is expected; say what it was
 * (a shutdown exit would say nothing) and end the VM.
 */
void guest_exception(const uint64_t *frame, uint64_t cr2)
{
	uint64_t vector = frame[0], rsp = frame[5];
	const char *name = vector < KD_NR_VECTORS && exception_names[vector] ?
			   exception_names[vector] : "reserved";
	uint64_t cpu = (rsp - KD_STACKS_GPA) / KD_STACK_SIZE;

	/* This vCPU may have faulted inside print(): break its lock. */
	__atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
	print("guest: vcpu %lu: exception %lu (%s), error code 0x%lx, rip 0x%lx, rsp 0x%lx, "
	      "cr2 0x%lx\n", cpu, vector, name, frame[1], frame[2], rsp, cr2);
	outl(KD_PORT_RESULT, KD_RESULT_EXCEPTION);
}

/* Distinct per (vCPU, pass): multiplying by an odd constant is a bijection. */
static inline uint64_t pattern(uint64_t gpa, uint64_t seed)
{
	return (gpa ^ seed) * 0x9e3779b97f4a7c15ull;
}

static uint64_t seed_of(uint32_t cpu, uint32_t pass)
{
	return ((uint64_t)(cpu + 1) << 56) | ((uint64_t)(pass + 1) << 40) | 0x5a5au;
}

/* volatile: every store and load really reaches RAM, none is folded away. */
static void fill(uint64_t gpa, uint64_t size, uint64_t seed)
{
	volatile uint64_t *p = (volatile uint64_t *)gpa, *end = (volatile uint64_t *)(gpa + size);

	for (; p < end; p++)
		*p = pattern((uint64_t)p, seed);
}

/* Returns the first bad address, or 0. */
static volatile uint64_t *check(uint64_t gpa, uint64_t size, uint64_t seed)
{
	volatile uint64_t *p = (volatile uint64_t *)gpa, *end = (volatile uint64_t *)(gpa + size);

	for (; p < end; p++)
		if (*p != pattern((uint64_t)p, seed))
			return p;
	return 0;
}

enum op { OP_FILL, OP_CHECK };

/*
 * Applies OP to logical pages [first, last) of the concatenated ranges.
 * Returns false after printing a mismatch.
 */
static bool chunk_op(const struct guest_layout *bi, uint64_t first, uint64_t last,
		     enum op op, uint64_t seed, uint32_t cpu, uint32_t pass,
		     uint32_t owner)
{
	uint64_t base = 0;

	for (uint32_t r = 0; r < bi->nr_ranges && first < last; r++) {
		uint64_t pages = bi->ranges[r].size / PAGE_SIZE;

		if (first < base + pages) {
			uint64_t from = first - base;
			uint64_t to = (last < base + pages ? last : base + pages) - base;
			uint64_t gpa = bi->ranges[r].gpa + from * PAGE_SIZE;
			uint64_t size = (to - from) * PAGE_SIZE;

			if (op == OP_FILL) {
				fill(gpa, size, seed);
				outl(KD_PORT_FILLED, (uint32_t)(gpa / PAGE_SIZE));
			} else {
				volatile uint64_t *bad = check(gpa, size, seed);

				if (bad) {
					print("guest: vcpu %u pass %u: MISMATCH at gpa 0x%lx: "
					      "read 0x%lx, expected 0x%lx (pattern of vcpu %u)\n",
					      cpu, pass, (uint64_t)bad, *bad,
					      pattern((uint64_t)bad, seed), owner);
					return false;
				}
				outl(KD_PORT_VERIFIED, (uint32_t)(to - from));
			}
			first = base + to;
		}
		base += pages;
	}
	return true;
}

static struct guest_layout layout;
static uint32_t layout_changed, finish;

static uint64_t total_pages(void)
{
	uint64_t total = 0;

	for (uint32_t r = 0; r < layout.nr_ranges; r++)
		total += layout.ranges[r].size / PAGE_SIZE;
	return total;
}

void guest_main(uint32_t cpu)
{
	const struct kd_boot_info *bi = (const struct kd_boot_info *)KD_BOOT_INFO_GPA;
	uint32_t n = bi->nr_vcpus;
	uint64_t total;
	bool fresh = true;

	if (bi->magic != KD_BOOT_MAGIC || cpu >= n) {
		outl(KD_PORT_RESULT, KD_RESULT_BAD_BOOT);
		return;
	}
	if (cpu == 0 && mailbox_flag(KD_MB_F_CRASH))
		__asm__ volatile("ud2");	/* #UD: the exception report's test */
	if (cpu == 0)
		layout_init(&layout, bi);
	barrier(n);
	total = total_pages();

	if (cpu == 0) {
		print("guest: %u vCPUs in long mode, %u RAM ranges:", n, bi->nr_ranges);
		for (uint32_t r = 0; r < bi->nr_ranges; r++)
			print(" [0x%lx, +%lu MiB)", bi->ranges[r].gpa,
			      bi->ranges[r].size >> 20);
		print("\nguest: self-test of %lu MiB, %u passes\n", total >> 8, bi->passes);
		/* Device traffic first, alone on the RAM it uses. */
		if ((vdev_mode() & 0xff) != KD_VDEV_MODE_OFF && vdev_run(&layout, vdev_mode()) != 0)
			fail();
	}
	barrier(n);

	for (uint32_t pass = 0; pass < bi->passes; pass++) {
		uint32_t chunk = (cpu + pass) % n;
		uint64_t first = total * chunk / n, last = total * (chunk + 1) / n;
		uint64_t seed = seed_of(cpu, pass);

		if (pass > 0 && !fresh) {
			uint32_t prev = (cpu + 1) % n;	/* (prev + pass - 1) % n == chunk */

			if (!chunk_op(&layout, first, last, OP_CHECK, seed_of(prev, pass - 1),
				      cpu, pass, prev))
				fail();
		}
		chunk_op(&layout, first, last, OP_FILL, seed, cpu, pass, cpu);
		if (!chunk_op(&layout, first, last, OP_CHECK, seed, cpu, pass, cpu))
			fail();
		if (!mailbox_flag(KD_MB_F_QUIET) || (cpu == 0 && pass % 64 == 0))
			print("guest: vcpu %u pass %u: chunk %u, %lu MiB written and verified\n",
			      cpu, pass, chunk, (last - first) >> 8);
		barrier(n);
		if (cpu == 0) {
			uint32_t changed = mailbox_poll(&layout);
			int dev = vdev_between_passes(&layout, pass);
			int disk = blk_between_passes(&layout, pass);

			if (dev < 0 || disk < 0)
				fail();
			__atomic_store_n(&layout_changed, changed || dev > 0 || disk > 0,
					 __ATOMIC_RELAXED);
			/* One vCPU reads the flag, so that all stop after the same pass. */
			__atomic_store_n(&finish, mailbox_flag(KD_MB_F_FINISH), __ATOMIC_RELAXED);
		}
		barrier(n);
		if (__atomic_load_n(&finish, __ATOMIC_RELAXED))
			break;
		fresh = __atomic_load_n(&layout_changed, __ATOMIC_RELAXED);
		if (fresh)
			total = total_pages();
	}

	if (cpu == 0) {
		blk_finish();
		print("guest: self-test passed\n");
		outl(KD_PORT_RESULT, KD_RESULT_PASS);
	}
}
