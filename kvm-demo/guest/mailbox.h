/* SPDX-License-Identifier: MIT */
/* The RAM the guest tests, and the mailbox requests that change it. */
#ifndef KVM_DEMO_GUEST_MAILBOX_H
#define KVM_DEMO_GUEST_MAILBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "abi.h"

struct guest_layout {
	uint32_t nr_ranges;			/* what the self-test uses now */
	struct kd_ram_range ranges[KD_MAX_RANGES];
	struct kd_ram_range boot;		/* boot RAM under test, balloon included */
	uint64_t balloon;			/* bytes at the tail of boot given back */
	uint32_t nr_dimms;
	struct kd_ram_range dimms[KD_MAX_RANGES];
};

void layout_init(struct guest_layout *l, const struct kd_boot_info *bi);
/* vCPU 0, between passes, others waiting: true when the layout changed. */
bool mailbox_poll(struct guest_layout *l);
/* KD_MB_F_*: what the host asked for before boot. */
bool mailbox_flag(uint32_t flag);

#endif
