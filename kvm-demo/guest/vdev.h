/* SPDX-License-Identifier: MIT */
/* The guest's driver of the vhost-like device, and what it uses of main.c. */
#ifndef KVM_DEMO_GUEST_VDEV_H
#define KVM_DEMO_GUEST_VDEV_H

#include <stdint.h>

#include "abi.h"
#include "mailbox.h"

/* main.c */
void print(const char *fmt, ...);

#ifdef KD_GUEST_HOSTED
/* A host test builds the driver against its own model of the ports. */
void kd_hosted_out(uint16_t port, uint32_t v, unsigned int size);
uint32_t kd_hosted_inl(uint16_t port);
#endif

/* KD_VDEV_PORT_MODE as the VMM set it. */
uint32_t vdev_mode(void);
/*
 * Run the device traffic MODE asks for on the RAM L tests (the balloon
 * left out); 0 when all went as expected. Returns with the device reset:
 * the rings' RAM is free again.
 */
int vdev_run(const struct guest_layout *l, uint32_t mode);
/*
 * From vCPU 0 between passes, after the mailbox: under --chaos a batch of
 * traffic; in hostile mode, requests at memory that was unplugged or
 * ballooned since. -1 failed, 1 the device wrote RAM under test (the next
 * pass must fill first), 0 nothing done. Returns with the device reset.
 */
int vdev_between_passes(const struct guest_layout *l, uint32_t pass);

#endif
