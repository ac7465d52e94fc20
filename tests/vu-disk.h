/* SPDX-License-Identifier: MIT */
/*
 * A host-side vhost-user disk for tests and figures, without KVM:
 * qemu-storage-daemon on a fresh image, "guest memory" in a memfd that
 * the backend maps, one split ring in it, virtio-blk requests.
 */
#ifndef TESTS_VU_DISK_H
#define TESTS_VU_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/vhost-user/frontend.h"
#include "devices/vhost-user/qsd.h"

#define VU_DISK_MEM		(2u << 20)
#define VU_DISK_SECTORS		32768u		/* 16 MiB */
#define VU_DISK_GPA		0x100000000ull	/* where the memory sits */
#define VU_DISK_BUF		0x10000u	/* data buffers from here */

struct vu_disk {
	struct qsd q;
	struct vu_frontend f;
	char dir[64], image[80];
	int memfd, parkfd;
	uint8_t *mem, *park;
	struct vu_mem_region region, park_region;
	struct vu_ring ring;
	uint16_t avail_idx, used_seen;
};

/* Whether qemu-storage-daemon can be run here ($KD_QSD or /usr/bin). */
bool vu_disk_available(void);
/* Start the backend, negotiate, map the memory, start the ring; -1 with ERR. */
int vu_disk_open(struct vu_disk *d, char *err, size_t errlen);
void vu_disk_close(struct vu_disk *d);
/*
 * Queue request K (descriptors 3K to 3K + 2; K < 16): TYPE on BYTES at
 * SECTOR, data at BUF (an offset into the memory). Its status byte is
 * vu_disk_status(d, K) once complete.
 */
void vu_disk_queue(struct vu_disk *d, unsigned int k, uint32_t type, uint64_t sector,
		   uint32_t bytes, uint32_t buf);
/* Publish what was queued, kick, wait for it all; -ETIMEDOUT after TIMEOUT_MS. */
int vu_disk_run(struct vu_disk *d, int timeout_ms);
uint8_t vu_disk_status(struct vu_disk *d, unsigned int k);
/*
 * What the device glue does around a change of the memory: stop and park
 * the ring, remove the region (the backend lets go: STOPPED_NS, from the
 * start), move the memory to a new memfd at a new address, add it back,
 * restart the ring where it stopped (TOTAL_NS). Either may be NULL.
 */
int vu_disk_move(struct vu_disk *d, uint64_t *stopped_ns, uint64_t *total_ns);
/* Its three steps: the backend lets go; the memory moves; the backend takes it back. */
int vu_disk_let_go(struct vu_disk *d);
int vu_disk_remap(struct vu_disk *d);
int vu_disk_take_back(struct vu_disk *d);

#endif
