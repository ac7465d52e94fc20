/* SPDX-License-Identifier: MIT */
/* The guest's virtio-blk driver (the disk a vhost-user backend serves). */
#ifndef KVM_DEMO_GUEST_BLK_H
#define KVM_DEMO_GUEST_BLK_H

#include <stdint.h>

#include "abi.h"
#include "blk-abi.h"
#include "mailbox.h"

/*
 * From vCPU 0 between passes, others waiting: write a chunk of the disk,
 * read it back, verify it, with the ring and the buffer at the start of
 * the last RAM range (a DIMM when one is plugged). 1: RAM under test was
 * written (the next pass fills first); 0: nothing done (no disk, or it
 * failed before). An I/O error is reported once and ends the disk test,
 * not the guest; a mismatch returns -1.
 */
int blk_between_passes(const struct guest_layout *l, uint32_t pass);
/* At the end: report the checksum the disk must have, and a summary line. */
void blk_finish(void);

#endif
