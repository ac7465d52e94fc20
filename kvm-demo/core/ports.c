/* SPDX-License-Identifier: MIT */
/*
 * Port I/O: a write-only 16550 at 0x3f8 whose lines go to stdout, the
 * result port (the guest's verdict, which ends the VM) and the progress
 * port (pages the guest verified). Called from vCPU threads.
 */
#define _GNU_SOURCE
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "core/vm.h"

#define UART_LSR		5
#define UART_LSR_THRE_TEMT	0x60	/* transmitter empty: always ready */

/* Called with serial_lock held. */
static void serial_flush_locked(struct vm *vm)
{
	if (vm->serial_len == 0)
		return;
	fwrite(vm->serial_line, 1, vm->serial_len, stdout);
	fflush(stdout);
	vm->serial_len = 0;
}

static void serial_out(struct vm *vm, uint8_t c)
{
	pthread_mutex_lock(&vm->serial_lock);
	if (c != '\r')
		vm->serial_line[vm->serial_len++] = (char)c;
	if (c == '\n' || vm->serial_len == sizeof(vm->serial_line))
		serial_flush_locked(vm);
	pthread_mutex_unlock(&vm->serial_lock);
}

/* At teardown: a line the guest did not finish still ends with a newline. */
void ports_flush(struct vm *vm)
{
	pthread_mutex_lock(&vm->serial_lock);
	if (vm->serial_len > 0 && vm->serial_len < sizeof(vm->serial_line))
		vm->serial_line[vm->serial_len++] = '\n';
	serial_flush_locked(vm);
	pthread_mutex_unlock(&vm->serial_lock);
}

/*
 * <kd:selftest inject-flip='yes'>: once, flip a bit in a range the guest
 * has just filled and is about to read back, from the host side, to show
 * that the self-test catches corruption. Called from vCPU threads.
 */
static void inject_flip(struct vm *vm, uint64_t gpa)
{
	uint64_t word = gpa + 8 * 100;	/* inside the first page */
	volatile uint64_t *hva;

	pthread_rwlock_rdlock(&vm->mem_lock);
	hva = memory_gpa_to_hva(vm, word, 8);
	if (hva && !atomic_exchange(&vm->flip_injected, true))
		*hva ^= 1ull << 17;
	else
		hva = NULL;
	pthread_rwlock_unlock(&vm->mem_lock);
	if (!hva)
		return;
	printf("kvm-demo: inject-flip: flipped bit 17 of the word at gpa 0x%" PRIx64 "\n", word);
}

static uint32_t io_value(const uint8_t *data, uint8_t size)
{
	uint32_t v = 0;

	memcpy(&v, data, size <= 4 ? size : 4);
	return v;
}

bool ports_handle_io(struct vm *vm, struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint16_t port = run->io.port;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		if (port == KD_PORT_SERIAL && out) {
			serial_out(vm, data[0]);
		} else if (port >= KD_PORT_SERIAL && port < KD_PORT_SERIAL + 8) {
			if (!out)
				memset(data, port == KD_PORT_SERIAL + UART_LSR ? UART_LSR_THRE_TEMT : 0,
				       run->io.size);
		} else if (port == KD_PORT_RESULT && out && run->io.size == 4) {
			uint32_t result = io_value(data, run->io.size);

			if (result == KD_RESULT_EXCEPTION)
				vcpu_print_kvm_stats(vcpu);
			vm_request_stop(vm, VM_STOP_GUEST, result > 255 ? 255 : (int)result);
			return false;
		} else if (port == KD_PORT_VERIFIED && out && run->io.size == 4) {
			atomic_fetch_add(&vm->pages_verified, io_value(data, run->io.size));
		} else if (port == KD_PORT_MAILBOX && out && run->io.size == 4) {
			memops_mailbox_answered(vm, io_value(data, run->io.size));
		} else if (port == KD_PORT_FILLED && out && run->io.size == 4) {
			if (vm->cfg->inject_flip)
				inject_flip(vm, (uint64_t)io_value(data, run->io.size) * KD_PAGE_SIZE);
		} else if (vdev_handle_io(vm, port, out, data, run->io.size)) {
			/* the device's */
		} else if (vu_blk_handle_io(vm, port, out, data, run->io.size)) {
			/* the disk's */
		} else if (!out) {
			memset(data, 0xff, run->io.size);	/* nothing there */
		}
		/* Writes to other ports are ignored, as on a PC. */
	}
	return true;
}
