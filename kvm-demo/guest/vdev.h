/* SPDX-License-Identifier: MIT */
/* The guest's driver of the vhost-like device, and what it uses of main.c. */
#ifndef KVM_DEMO_GUEST_VDEV_H
#define KVM_DEMO_GUEST_VDEV_H

#include <stdint.h>

#include "abi.h"
#include "mailbox.h"

/* main.c */
void print(const char *fmt, ...);

/* KD_VDEV_PORT_MODE as the VMM set it. */
uint32_t vdev_mode(void);
/* Run the device traffic MODE asks for on RAM of BI; 0 when all went as expected. */
int vdev_run(const struct kd_boot_info *bi, uint32_t mode);
/*
 * From vCPU 0 between passes, after the mailbox: under --chaos a batch of
 * traffic; in hostile mode, requests at memory that was unplugged or
 * ballooned since. -1 failed, 1 the device wrote RAM under test (the next
 * pass must fill first), 0 nothing done.
 */
int vdev_between_passes(const struct guest_layout *l, uint32_t pass);

#endif
