/* SPDX-License-Identifier: MIT */
/* A host-side vhost-user disk over a memfd (see vu-disk.h). */
#define _GNU_SOURCE
#include "vu-disk.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "guest/abi.h"
#include "guest/blk-abi.h"

#define PARK_GPA	0xfffff000000ull
#define HDR_OFF		(VU_DISK_BUF - 0x1000)	/* request headers and status bytes */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool vu_disk_available(void)
{
	return getenv("KD_QSD") || access("/usr/bin/qemu-storage-daemon", X_OK) == 0;
}

static int map_memfd(size_t size, uint8_t **p)
{
	int fd = memfd_create("vu-disk", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	*p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*p == MAP_FAILED) {
		close(fd);
		return -1;
	}
	return fd;
}

static void place_ring(struct vu_disk *d)
{
	uint64_t base = (uint64_t)(uintptr_t)d->mem;

	d->ring.desc = base;
	d->ring.avail = base + 1024;
	d->ring.used = base + 2048;
	d->region.uaddr = base;
}

int vu_disk_open(struct vu_disk *d, char *err, size_t errlen)
{
	uint8_t cfg[8];
	uint64_t cap = 0;
	int fd;

	memset(d, 0, sizeof(*d));
	d->memfd = d->parkfd = d->ring.kick_fd = d->ring.call_fd = -1;
	snprintf(d->dir, sizeof(d->dir), "/tmp/vu-disk.XXXXXX");
	if (!mkdtemp(d->dir)) {
		snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	snprintf(d->image, sizeof(d->image), "%s/disk.img", d->dir);
	fd = open(d->image, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)VU_DISK_SECTORS * KD_BLK_SECTOR) < 0) {
		snprintf(err, errlen, "%s: %s", d->image, strerror(errno));
		return -1;
	}
	close(fd);
	if (qsd_start(&d->q, d->image, err, errlen))
		return -1;
	if (vu_connect(&d->f, d->q.socket, 2000, 10000) || vu_handshake(&d->f, 0) ||
	    vu_get_config(&d->f, 0, cfg, sizeof(cfg)))
		goto proto;
	for (unsigned int i = 0; i < 8; i++)
		cap |= (uint64_t)cfg[i] << (8 * i);
	if (cap != VU_DISK_SECTORS) {
		snprintf(err, errlen, "capacity %llu sectors, expected %u",
			 (unsigned long long)cap, VU_DISK_SECTORS);
		return -1;
	}
	d->memfd = map_memfd(VU_DISK_MEM, &d->mem);
	d->parkfd = map_memfd(4096, &d->park);
	if (d->memfd < 0 || d->parkfd < 0) {
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		return -1;
	}
	d->region = (struct vu_mem_region){ .gpa = VU_DISK_GPA, .size = VU_DISK_MEM };
	d->park_region = (struct vu_mem_region){ .gpa = PARK_GPA, .size = 4096,
						 .uaddr = (uint64_t)(uintptr_t)d->park };
	place_ring(d);
	d->ring.num = KD_BLK_QUEUE_SIZE;
	d->ring.kick_fd = eventfd(0, EFD_CLOEXEC);
	d->ring.call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vu_add_mem_reg(&d->f, &d->park_region, d->parkfd) ||
	    vu_add_mem_reg(&d->f, &d->region, d->memfd) || vu_ring_start(&d->f, &d->ring))
		goto proto;
	return 0;
proto:
	vu_last_error(&d->f, err, errlen);
	return -1;
}

void vu_disk_close(struct vu_disk *d)
{
	vu_close(&d->f);
	qsd_stop(&d->q, 5000);
	if (d->ring.kick_fd >= 0)
		close(d->ring.kick_fd);
	if (d->ring.call_fd >= 0)
		close(d->ring.call_fd);
	if (d->mem)
		munmap(d->mem, VU_DISK_MEM);
	if (d->park)
		munmap(d->park, 4096);
	if (d->memfd >= 0)
		close(d->memfd);
	if (d->parkfd >= 0)
		close(d->parkfd);
	unlink(d->image);
	rmdir(d->dir);
}

void vu_disk_queue(struct vu_disk *d, unsigned int k, uint32_t type, uint64_t sector,
		   uint32_t bytes, uint32_t buf)
{
	struct kd_vring_desc *desc = (void *)(uintptr_t)d->ring.desc;
	struct kd_vring_avail *avail = (void *)(uintptr_t)d->ring.avail;
	struct kd_blk_req *req = (void *)(d->mem + HDR_OFF + 32 * k);
	uint64_t hdr = VU_DISK_GPA + HDR_OFF + 32 * k;
	uint16_t f = KD_VRING_F_NEXT | (type == KD_BLK_T_IN ? KD_VRING_F_WRITE : 0);

	*req = (struct kd_blk_req){ .type = type, .sector = sector };
	d->mem[HDR_OFF + 32 * k + 16] = 0xff;
	desc[3 * k] = (struct kd_vring_desc){ hdr, 16, KD_VRING_F_NEXT, (uint16_t)(3 * k + 1) };
	desc[3 * k + 1] = (struct kd_vring_desc){ VU_DISK_GPA + buf, bytes, f,
						  (uint16_t)(3 * k + 2) };
	desc[3 * k + 2] = (struct kd_vring_desc){ hdr + 16, 1, KD_VRING_F_WRITE, 0 };
	avail->ring[d->avail_idx % KD_BLK_QUEUE_SIZE] = (uint16_t)(3 * k);
	d->avail_idx++;
}

uint8_t vu_disk_status(struct vu_disk *d, unsigned int k)
{
	return d->mem[HDR_OFF + 32 * k + 16];
}

int vu_disk_run(struct vu_disk *d, int timeout_ms)
{
	struct kd_vring_avail *avail = (void *)(uintptr_t)d->ring.avail;
	struct kd_vring_used *used = (void *)(uintptr_t)d->ring.used;
	struct pollfd p = { .fd = d->ring.call_fd, .events = POLLIN };
	uint64_t v = 1;

	__atomic_store_n(&avail->idx, d->avail_idx, __ATOMIC_RELEASE);
	if (write(d->ring.kick_fd, &v, sizeof(v)) != sizeof(v))
		return -errno;
	while (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != d->avail_idx) {
		if (poll(&p, 1, timeout_ms) != 1)
			return -ETIMEDOUT;
		while (read(d->ring.call_fd, &v, sizeof(v)) > 0)
			;
	}
	d->used_seen = d->avail_idx;
	return 0;
}

int vu_disk_let_go(struct vu_disk *d)
{
	int e = vu_ring_stop(&d->f, &d->ring, d->park_region.uaddr);

	return e ? e : vu_rem_mem_reg(&d->f, &d->region, d->memfd);
}

int vu_disk_remap(struct vu_disk *d)
{
	uint8_t *old = d->mem;
	int oldfd = d->memfd;

	d->memfd = map_memfd(VU_DISK_MEM, &d->mem);
	if (d->memfd < 0)
		return -errno;
	memcpy(d->mem, old, VU_DISK_MEM);
	/* The old memory goes: a backend still using it would fault. */
	munmap(old, VU_DISK_MEM);
	close(oldfd);
	place_ring(d);
	return 0;
}

int vu_disk_take_back(struct vu_disk *d)
{
	int e = vu_add_mem_reg(&d->f, &d->region, d->memfd);

	return e ? e : vu_ring_start(&d->f, &d->ring);
}

int vu_disk_move(struct vu_disk *d, uint64_t *stopped_ns, uint64_t *total_ns)
{
	uint64_t t0 = now_ns();
	int e = vu_disk_let_go(d);

	if (e)
		return e;
	if (stopped_ns)
		*stopped_ns = now_ns() - t0;
	if ((e = vu_disk_remap(d)) || (e = vu_disk_take_back(d)))
		return e;
	if (total_ns)
		*total_ns = now_ns() - t0;
	return 0;
}
