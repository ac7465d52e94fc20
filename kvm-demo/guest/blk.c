/* SPDX-License-Identifier: MIT */
/*
 * The guest's virtio-blk driver: one split ring, set up for a batch and
 * stopped after it (the self-test overwrites that RAM next), requests of
 * header, data and status descriptors, up to KD_BLK_QD in flight. The
 * device behind it is another program (a vhost-user backend): the kick is
 * an ioeventfd to it, completions are polled on used->idx.
 */
#include <stdbool.h>
#include <stdint.h>

#include "blk.h"
#include "vdev.h"

#define QS		KD_BLK_QUEUE_SIZE
#define PAGE		4096ull
#define HEAD		0x2000ull	/* rings, setup and headers; data after */
#define REQ_BYTES	(KD_BLK_CHUNK / KD_BLK_QD)

struct slot {
	struct kd_blk_req req;
	uint8_t status;
	uint8_t pad[15];
};

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static volatile struct kd_vring_desc *desc;
static volatile struct kd_vring_avail *avail;
static volatile struct kd_vring_used *used;
static volatile struct slot *slots;
static uint16_t avail_idx, used_seen;

static int present = -1;	/* -1: not asked yet */
static bool failed;
static uint64_t capacity, nr_chunks, next_chunk, sweep, chunks_done, requests;
static uint64_t digest[KD_BLK_MAX_CHUNKS];

/* Set the ring up at BASE; returns a KD_BLK_E_*. */
static uint32_t setup(uint64_t base)
{
	/* The setup block is found by page number: it starts a page. */
	volatile struct kd_blk_setup *q = (volatile struct kd_blk_setup *)(base + 0x1000);
	volatile uint8_t *p = (volatile uint8_t *)base;
	uint32_t status;

	for (uint64_t i = 0; i < HEAD; i++)
		p[i] = 0;
	desc = (volatile struct kd_vring_desc *)base;
	avail = (volatile struct kd_vring_avail *)(base + 0x400);
	used = (volatile struct kd_vring_used *)(base + 0x800);
	slots = (volatile struct slot *)(base + 0x1800);
	avail_idx = used_seen = 0;
	q->queue_size = QS;
	q->desc_gpa = base;
	q->avail_gpa = base + 0x400;
	q->used_gpa = base + 0x800;
	outl(KD_BLK_PORT_SETUP, (uint32_t)((base + 0x1000) / PAGE));
	status = inl(KD_BLK_PORT_STATUS);
	capacity = q->capacity;
	return status;
}

/* Queue request K (of this round): TYPE on REQ_BYTES at SECTOR, data at BUF. */
static void submit(unsigned int k, uint32_t type, uint64_t sector, uint64_t buf)
{
	unsigned int d = 3 * k;

	slots[k].req.type = type;
	slots[k].req.reserved = 0;
	slots[k].req.sector = sector;
	slots[k].status = 0xff;
	desc[d].addr = (uint64_t)&slots[k].req;
	desc[d].len = sizeof(struct kd_blk_req);
	desc[d].flags = KD_VRING_F_NEXT;
	desc[d].next = (uint16_t)(d + 1);
	desc[d + 1].addr = buf;
	desc[d + 1].len = REQ_BYTES;
	desc[d + 1].flags = KD_VRING_F_NEXT | (type == KD_BLK_T_IN ? KD_VRING_F_WRITE : 0);
	desc[d + 1].next = (uint16_t)(d + 2);
	desc[d + 2].addr = (uint64_t)&slots[k].status;
	desc[d + 2].len = 1;
	desc[d + 2].flags = KD_VRING_F_WRITE;
	desc[d + 2].next = 0;
	avail->ring[avail_idx % QS] = (uint16_t)d;
	avail_idx++;
}

/* Publish, kick, and wait for every request queued; false on an I/O error. */
static bool run(unsigned int n, uint64_t chunk)
{
	__atomic_store_n(&avail->idx, avail_idx, __ATOMIC_RELEASE);
	outw(KD_BLK_PORT_KICK, 0);
	while (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != avail_idx)
		__asm__ volatile("pause");
	used_seen = avail_idx;
	requests += n;
	for (unsigned int k = 0; k < n; k++) {
		if (slots[k].status != KD_BLK_S_OK) {
			print("guest: disk: I/O error on chunk %lu (status %u): disk test stopped, "
			      "guest goes on\n", chunk, (uint32_t)slots[k].status);
			return false;
		}
	}
	return true;
}

int blk_between_passes(const struct guest_layout *l, uint32_t pass)
{
	const struct kd_ram_range *r;
	uint64_t base, buf, first;
	volatile uint64_t *w;
	uint32_t status;
	int ret = 1;

	(void)pass;
	if (present < 0)
		present = inl(KD_BLK_PORT_PRESENT) == 1;
	if (!present || failed || l->nr_ranges == 0)
		return 0;
	r = &l->ranges[l->nr_ranges - 1];
	if (r->size < HEAD + KD_BLK_CHUNK)
		return 0;
	base = r->gpa;
	buf = base + HEAD;
	status = setup(base);
	if (status != KD_BLK_E_OK) {
		print("guest: disk: setup failed with status %u: disk test stopped\n", status);
		failed = true;
		return 1;
	}
	if (nr_chunks == 0) {
		nr_chunks = capacity * KD_BLK_SECTOR / KD_BLK_CHUNK;
		if (nr_chunks > KD_BLK_MAX_CHUNKS)
			nr_chunks = KD_BLK_MAX_CHUNKS;
		print("guest: disk: %lu MiB, tested in %lu chunks of 1 MiB\n",
		      capacity * KD_BLK_SECTOR >> 20, nr_chunks);
		if (nr_chunks == 0) {
			failed = true;
			goto out;
		}
	}
	first = next_chunk * (KD_BLK_CHUNK / KD_BLK_SECTOR);
	w = (volatile uint64_t *)buf;
	for (uint64_t i = 0; i < KD_BLK_CHUNK / 8; i++)
		w[i] = kd_blk_word(sweep + 1, first + i / 64, (unsigned int)(i % 64));
	for (unsigned int k = 0; k < KD_BLK_QD; k++)
		submit(k, KD_BLK_T_OUT, first + k * (REQ_BYTES / KD_BLK_SECTOR), buf + k * REQ_BYTES);
	if (!run(KD_BLK_QD, next_chunk)) {
		failed = true;
		goto out;
	}
	for (uint64_t i = 0; i < KD_BLK_CHUNK / 8; i++)
		w[i] = 0;
	for (unsigned int k = 0; k < KD_BLK_QD; k++)
		submit(k, KD_BLK_T_IN, first + k * (REQ_BYTES / KD_BLK_SECTOR), buf + k * REQ_BYTES);
	if (!run(KD_BLK_QD, next_chunk)) {
		failed = true;
		goto out;
	}
	for (uint64_t i = 0; i < KD_BLK_CHUNK / 8; i++) {
		uint64_t want = kd_blk_word(sweep + 1, first + i / 64, (unsigned int)(i % 64));

		if (w[i] != want) {
			print("guest: disk: MISMATCH in chunk %lu at byte %lu: read 0x%lx, "
			      "expected 0x%lx\n", next_chunk, i * 8, w[i], want);
			ret = -1;
			goto out;
		}
	}
	digest[next_chunk] = kd_vdev_fnv1a(KD_FNV_OFFSET, (const volatile uint8_t *)buf,
					   KD_BLK_CHUNK);
	chunks_done++;
	if (++next_chunk == nr_chunks) {
		next_chunk = 0;
		sweep++;
	}
	if (chunks_done % 16 == 1)
		print("guest: disk: %lu chunks written, read back and verified\n", chunks_done);
out:
	outl(KD_BLK_PORT_SETUP, 0);	/* stop: this RAM is the self-test's again */
	inl(KD_BLK_PORT_STATUS);
	return ret;
}

void blk_finish(void)
{
	uint64_t sum = KD_FNV_OFFSET, covered = sweep ? nr_chunks : next_chunk;

	if (present != 1)
		return;
	for (uint64_t c = 0; c < covered; c++)
		sum = kd_blk_combine(sum, digest[c]);
	print("guest: disk: %lu chunks (%lu requests) verified%s, %lu full sweeps; "
	      "checksum 0x%lx over the first %lu MiB\n", chunks_done, requests,
	      failed ? " before it failed" : "", sweep, sum, covered);
	/* A failed disk may hold a half-written chunk: nothing to verify. */
	outl(KD_BLK_PORT_SUM, (uint32_t)sum);
	outl(KD_BLK_PORT_SUM, (uint32_t)(sum >> 32));
	outl(KD_BLK_PORT_SUM, failed ? 0 : (uint32_t)covered);
}
