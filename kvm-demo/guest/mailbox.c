/* SPDX-License-Identifier: MIT */
/*
 * The guest's side of the memory mailbox (see abi.h): hotplugged DIMMs
 * join the self-test, unplugged ones leave it, and the balloon takes pages
 * from the tail of boot RAM. Runs on vCPU 0 between passes, while the other
 * vCPUs wait at the barrier, so no vCPU uses memory being handed back.
 */
#include "mailbox.h"

static volatile struct kd_mailbox *const mb = (volatile struct kd_mailbox *)KD_MAILBOX_GPA;

static void rebuild(struct guest_layout *l)
{
	l->nr_ranges = 0;
	if (l->boot.size > l->balloon) {
		l->ranges[0].gpa = l->boot.gpa;
		l->ranges[0].size = l->boot.size - l->balloon;
		l->nr_ranges = 1;
	}
	for (uint32_t i = 0; i < l->nr_dimms && l->nr_ranges < KD_MAX_RANGES; i++)
		l->ranges[l->nr_ranges++] = l->dimms[i];
}

void layout_init(struct guest_layout *l, const struct kd_boot_info *bi)
{
	l->boot.gpa = l->boot.size = 0;
	l->balloon = 0;
	l->nr_dimms = 0;
	for (uint32_t r = 0; r < bi->nr_ranges; r++) {
		if (bi->ranges[r].gpa < KD_HOTPLUG_GPA)
			l->boot = bi->ranges[r];
		else if (l->nr_dimms < KD_MAX_RANGES)
			l->dimms[l->nr_dimms++] = bi->ranges[r];
	}
	/* <currentMemory>: the balloon holds its share from the start. */
	if (!(bi->balloon & 4095) && bi->balloon <= l->boot.size - l->boot.size / 4)
		l->balloon = bi->balloon;
	rebuild(l);
}

bool mailbox_flag(uint32_t flag)
{
	return mb->flags & flag;
}

static int32_t apply(struct guest_layout *l, uint32_t cmd, uint64_t gpa, uint64_t size)
{
	switch (cmd) {
	case KD_MB_PLUG:
		if (l->nr_dimms == KD_MAX_RANGES || size == 0)
			return -1;
		l->dimms[l->nr_dimms].gpa = gpa;
		l->dimms[l->nr_dimms].size = size;
		l->nr_dimms++;
		return 0;
	case KD_MB_UNPLUG:
		for (uint32_t i = 0; i < l->nr_dimms; i++) {
			if (l->dimms[i].gpa == gpa && l->dimms[i].size == size) {
				l->dimms[i] = l->dimms[--l->nr_dimms];
				return 0;
			}
		}
		return -1;
	case KD_MB_BALLOON:
		/* Keep at least a quarter of boot RAM: the test needs something. */
		if (size & 4095 || size > l->boot.size - l->boot.size / 4)
			return -1;
		l->balloon = size;
		mb->ret_gpa = l->boot.gpa + l->boot.size - size;
		mb->ret_size = size;
		return 0;
	default:
		return -1;
	}
}

bool mailbox_poll(struct guest_layout *l)
{
	uint32_t expect = KD_MB_POSTED;
	int32_t status;
	uint32_t seq;

	if ((mb->flags & KD_MB_F_DEAF) ||
	    __atomic_load_n(&mb->state, __ATOMIC_ACQUIRE) != KD_MB_POSTED ||
	    !__atomic_compare_exchange_n(&mb->state, &expect, KD_MB_TAKEN, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	seq = mb->seq;
	status = apply(l, mb->cmd, mb->gpa, mb->size);
	mb->status = status;
	if (status == 0)
		rebuild(l);
	__atomic_store_n(&mb->state, KD_MB_DONE, __ATOMIC_RELEASE);
	__asm__ volatile("outl %0, %1" : : "a"(seq), "Nd"((uint16_t)KD_PORT_MAILBOX));
	return status == 0;
}
