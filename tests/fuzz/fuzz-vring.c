/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the vhost-like device's path from ring to guest memory.
 * Guest memory (two regions, contents and placement from the input) holds
 * the descriptor table and the available ring; the device's steps run
 * against it: read the table and a head through the shadow map, walk the
 * chain with vring_walk(), then reach every segment through
 * shadow_access(). Between requests the memory changes as in kvm-demo
 * (a DIMM unplugged and freed, boot RAM write-protected or released, a
 * page ballooned), each change bracketed by an invalidation.
 *
 * Properties:
 *  - vring_walk() returns what vring.h documents: the chain from the head
 *    (distinct indices inside the table, NEXT on all but the last), one
 *    segment per descriptor with its address, length and direction, at
 *    most MAX_SEGS of them; loops, over-long chains, bad indices, zero
 *    lengths, wrapping ranges, indirect descriptors and readable after
 *    writable are refused with their error code;
 *  - the walker reads only the QUEUE_SIZE descriptors it is given (the
 *    table is allocated to size: ASan);
 *  - every host address the device touches lies inside a live region's
 *    buffer and is the one that backs the guest address (checked before
 *    each touch; freed regions are also caught by ASan), and an access
 *    succeeds exactly when every byte is plugged, not ballooned, and
 *    writable for a write; otherwise it fails with -EFAULT or -EACCES
 *    after doing exactly the bytes before the first bad one.
 *
 * Input: a 10-byte header (see the H_* offsets), one action byte per
 * request, then the contents of guest memory.
 */
#include "fuzz.h"
#include "devices/shadow.h"
#include "devices/vring.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define PAGE		SHADOW_PAGE
#define MAX_PAGES	16	/* per region: keeps each run small */
#define MAX_REQUESTS	8

enum { H_QUEUE, H_SEGS, H_PAGES0, H_PAGES1, H_PLACE1, H_DESC, H_DESC_HI = H_DESC + 1,
       H_AVAIL, H_AVAIL_HI = H_AVAIL + 1, H_REQUESTS, H_SIZE };

/* Over the whole run: reported at exit for the docs. */
static unsigned long long walks, chains, accesses, bytes_touched;

__attribute__((destructor)) static void report_ops(void)
{
	if (getenv("FUZZ_REPORT_OPS"))
		fprintf(stderr, "fuzz-vring: %llu walks, %llu chains accepted, %llu segment "
			"accesses, %llu bytes touched\n", walks, chains, accesses, bytes_touched);
}

struct region {
	uint64_t gpa, size;
	uint8_t *buf;		/* exactly SIZE bytes; NULL once unplugged */
	bool readonly;
	bool ballooned[MAX_PAGES];
};

static struct region regions[2];

/*
 * The memory layer, as memory_translate() behaves: one region must hold
 * the whole range; an unplugged region or a ballooned page faults; a
 * write to read-only memory gets -EACCES.
 */
static int translate(void *ctx, uint64_t gpa, uint64_t len, bool write, void **hva)
{
	(void)ctx;
	*hva = NULL;
	if (len == 0 || gpa + len < gpa)
		return -EFAULT;
	for (unsigned int i = 0; i < 2; i++) {
		struct region *r = &regions[i];

		if (!r->size || gpa < r->gpa || len > r->size || gpa - r->gpa > r->size - len)
			continue;
		if (!r->buf)
			return -EFAULT;
		for (uint64_t p = (gpa - r->gpa) / PAGE; p <= (gpa - r->gpa + len - 1) / PAGE; p++)
			if (r->ballooned[p])
				return -EFAULT;
		if (write && r->readonly)
			return -EACCES;
		*hva = r->buf + (gpa - r->gpa);
		return 0;
	}
	return -EFAULT;
}

/* The region holding GPA, or NULL. */
static struct region *region_at(uint64_t gpa)
{
	for (unsigned int i = 0; i < 2; i++)
		if (regions[i].size && gpa >= regions[i].gpa && gpa - regions[i].gpa < regions[i].size)
			return &regions[i];
	return NULL;
}

/*
 * What an access must do: the bytes done before the first one that is not
 * plugged RAM (or ballooned), or read-only for a write; returns 0 or the
 * error that byte gives.
 */
static int expect_access(uint64_t gpa, uint64_t len, bool write, uint64_t *done)
{
	*done = 0;
	if (len == 0)
		return 0;
	if (gpa + len - 1 < gpa)
		return -EFAULT;
	while (*done < len) {
		uint64_t cur = gpa + *done;
		struct region *r = region_at(cur);
		uint64_t step;

		if (!r || !r->buf || r->ballooned[(cur - r->gpa) / PAGE])
			return -EFAULT;
		if (write && r->readonly)
			return -EACCES;
		step = PAGE - (cur - r->gpa) % PAGE;
		*done += step < len - *done ? step : len - *done;
	}
	return 0;
}

struct touch {
	uint64_t gpa;
	bool write;
	uint64_t done;		/* bytes touched so far */
	uint8_t sum;
};

/* Every piece: inside a live buffer, at the host address of its GPA. */
static int touch(void *arg, void *hva, size_t len, uint64_t offset)
{
	struct touch *t = arg;
	uint64_t gpa = t->gpa + offset;
	struct region *r = region_at(gpa);
	uint8_t *p = hva;

	FUZZ_ASSERT(offset == t->done, "piece at offset %llu, expected %llu",
		    (unsigned long long)offset, (unsigned long long)t->done);
	FUZZ_ASSERT(r && r->buf, "gpa %#llx touched: not plugged RAM", (unsigned long long)gpa);
	FUZZ_ASSERT(p == r->buf + (gpa - r->gpa), "gpa %#llx reached through a stale or wrong "
		    "host address", (unsigned long long)gpa);
	FUZZ_ASSERT(len > 0 && len <= r->size - (gpa - r->gpa), "piece of %zu bytes at gpa %#llx "
		    "passes the end of its region", len, (unsigned long long)gpa);
	FUZZ_ASSERT(!t->write || !r->readonly, "write to read-only gpa %#llx",
		    (unsigned long long)gpa);
	if (t->write) {
		memset(p, 0xa5, len);
	} else {
		for (size_t i = 0; i < len; i++)
			t->sum ^= p[i];
	}
	t->done += len;
	bytes_touched += len;
	return 0;
}

/* FUZZ_SHOW_ERRORS set: print each outcome, to see what a corpus covers. */
static void show(const char *what, uint64_t a, uint64_t b, int result)
{
	if (getenv("FUZZ_SHOW_ERRORS"))
		fprintf(stderr, "fuzz-vring: %s %#llx %llu: %d\n", what, (unsigned long long)a,
			(unsigned long long)b, result);
}

/* One device access, checked against expect_access(). */
static int device_access(struct shadow_map *sm, uint64_t gpa, uint64_t len, bool write)
{
	struct touch t = { .gpa = gpa, .write = write };
	uint64_t want_done;
	int want = expect_access(gpa, len, write, &want_done);
	int err = shadow_access(sm, gpa, len, write, touch, &t);

	accesses++;
	show(write ? "write" : "read", gpa, len, err);
	FUZZ_ASSERT(err == want, "access [%#llx, +%llu) %s: %d, expected %d",
		    (unsigned long long)gpa, (unsigned long long)len, write ? "write" : "read",
		    err, want);
	FUZZ_ASSERT(t.done == want_done, "access [%#llx, +%llu): %llu bytes done, expected %llu",
		    (unsigned long long)gpa, (unsigned long long)len,
		    (unsigned long long)t.done, (unsigned long long)want_done);
	return err;
}

static int copy_out(void *arg, void *hva, size_t len, uint64_t offset)
{
	memcpy((uint8_t *)arg + offset, hva, len);
	return 0;
}

/* A device read into BUF, checked like any access. */
static int device_read(struct shadow_map *sm, uint64_t gpa, void *buf, uint64_t len)
{
	uint64_t want_done;
	int want = expect_access(gpa, len, false, &want_done);
	int err = shadow_access(sm, gpa, len, false, copy_out, buf);

	FUZZ_ASSERT(err == want, "read [%#llx, +%llu): %d, expected %d", (unsigned long long)gpa,
		    (unsigned long long)len, err, want);
	return err;
}

/* vring.h's contract, step by step: the result a walk must give. */
static int expect_walk(const struct kd_vring_desc *table, unsigned int qs, unsigned int head,
		       unsigned int max_segs)
{
	bool visited[KD_VDEV_QUEUE_MAX] = { false };
	bool seen_write = false;
	unsigned int idx = head, n = 0;

	if (qs == 0 || qs > KD_VDEV_QUEUE_MAX)
		return -EINVAL;
	for (;;) {
		const struct kd_vring_desc *d;

		if (idx >= qs)
			return -EINVAL;
		if (visited[idx])
			return -ELOOP;
		visited[idx] = true;
		if (n == max_segs)
			return -E2BIG;
		d = &table[idx];
		if (d->flags & KD_VRING_F_INDIRECT)
			return -ENOTSUP;
		if (d->len == 0)
			return -EINVAL;
		if (d->len - 1 > UINT64_MAX - d->addr)
			return -EOVERFLOW;
		if (d->flags & KD_VRING_F_WRITE)
			seen_write = true;
		else if (seen_write)
			return -EPROTO;
		n++;
		if (!(d->flags & KD_VRING_F_NEXT))
			return (int)n;
		idx = d->next;
	}
}

/* A chain the walker accepted: exactly the descriptors from HEAD on. */
static void check_chain(const struct kd_vring_desc *table, unsigned int qs, unsigned int head,
			const struct vring_seg *segs, int n, unsigned int max_segs)
{
	bool visited[KD_VDEV_QUEUE_MAX] = { false };
	unsigned int idx = head;

	FUZZ_ASSERT(n >= 1 && (unsigned int)n <= max_segs, "%d segments, at most %u allowed", n,
		    max_segs);
	for (int i = 0; i < n; i++) {
		const struct kd_vring_desc *d;

		FUZZ_ASSERT(idx < qs, "segment %d from descriptor %u, outside the table of %u", i,
			    idx, qs);
		FUZZ_ASSERT(!visited[idx], "descriptor %u used twice: a loop was followed", idx);
		visited[idx] = true;
		d = &table[idx];
		FUZZ_ASSERT(segs[i].gpa == d->addr && segs[i].len == d->len &&
			    segs[i].write == ((d->flags & KD_VRING_F_WRITE) != 0),
			    "segment %d is not descriptor %u", i, idx);
		FUZZ_ASSERT(segs[i].len > 0 && segs[i].gpa + segs[i].len - 1 >= segs[i].gpa,
			    "segment %d: empty or wrapping", i);
		FUZZ_ASSERT(!(d->flags & KD_VRING_F_INDIRECT), "indirect descriptor %u accepted",
			    idx);
		FUZZ_ASSERT(i == 0 || segs[i].write || !segs[i - 1].write,
			    "readable segment %d after a writable one", i);
		FUZZ_ASSERT(((d->flags & KD_VRING_F_NEXT) != 0) == (i < n - 1),
			    "chain ends at segment %d of %d", i, n);
		idx = d->next;
	}
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* The memory changes kvm-demo makes, each bracketed by an invalidation. */
static void change_memory(struct mmn_state *guest_mm, uint8_t action)
{
	struct region *r = &regions[(action >> 2) & 1];
	struct mmn_invalidate_desc d = { .start = r->gpa, .end = r->gpa + r->size,
					 .flags = MMN_INVALIDATE_BLOCKABLE };
	unsigned int page = (action >> 3) % MAX_PAGES;

	if (!r->size || !r->buf || (action & 3) == 0)
		return;
	switch (action & 3) {
	case 1:		/* unplug: the memory is gone */
		d.event = MMN_EVENT_UNMAP;
		break;
	case 2:		/* write-protect, or back to writable */
		d.event = MMN_EVENT_PROTECTION_VMA;
		break;
	case 3:		/* balloon one page */
		if (page * PAGE >= r->size)
			return;
		d.event = MMN_EVENT_CLEAR;
		d.start = r->gpa + page * PAGE;
		d.end = d.start + PAGE;
		break;
	}
	FUZZ_ASSERT(mmn_invalidate_start(guest_mm, &d) == 0, "blockable invalidation refused");
	if (d.event == MMN_EVENT_UNMAP) {
		free(r->buf);
		r->buf = NULL;
	} else if (d.event == MMN_EVENT_PROTECTION_VMA) {
		r->readonly = !r->readonly;
	} else {
		r->ballooned[page] = true;
		memset(r->buf + page * PAGE, 0, PAGE);
	}
	mmn_invalidate_end(guest_mm, &d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[H_SIZE] = { 0 };
	struct fuzz_input in = { data, size, 0 };
	struct kd_vring_desc *table = NULL;
	struct vring_seg *segs = NULL;
	struct mmn_state *guest_mm;
	struct shadow_map sm;
	unsigned int qs, max_segs, requests;
	uint8_t actions[MAX_REQUESTS];
	uint64_t desc_gpa, avail_gpa;

	for (unsigned int i = 0; i < H_SIZE; i++)
		h[i] = fuzz_u8(&in);
	/* Mostly what the device accepts at setup, sometimes what it must refuse. */
	qs = h[H_QUEUE] & 0x80 ? (h[H_QUEUE] & 0x7fu) * 3 : 1u << (h[H_QUEUE] % 9);
	max_segs = h[H_SEGS] & 0x80 ? h[H_SEGS] & 0x7fu : KD_VDEV_MAX_SEGS;
	requests = 1 + h[H_REQUESTS] % MAX_REQUESTS;
	for (unsigned int i = 0; i < requests; i++)
		actions[i] = fuzz_u8(&in);

	/* Boot RAM at 0; the DIMM after a gap, right after it, or at 4 GiB. */
	memset(regions, 0, sizeof(regions));
	regions[0].size = (1 + h[H_PAGES0] % MAX_PAGES) * PAGE;
	regions[1].size = (h[H_PAGES1] % (MAX_PAGES + 1)) * PAGE;
	regions[1].gpa = h[H_PLACE1] & 0x80 ? KD_HOTPLUG_GPA
					    : regions[0].size + (h[H_PLACE1] & 3) * PAGE;
	for (unsigned int i = 0; i < 2; i++) {
		struct region *r = &regions[i];

		if (!r->size)
			continue;
		r->buf = malloc(r->size);
		if (!r->buf)
			goto out;
		for (uint64_t j = 0; j < r->size; j++)
			r->buf[j] = fuzz_u8(&in);
	}
	/* The rings: from the start of a region, or anywhere at all. */
	desc_gpa = regions[h[H_DESC_HI] >> 7].gpa + 16ull * (le16(h + H_DESC) & 0x7fff);
	avail_gpa = regions[h[H_AVAIL_HI] >> 7].gpa + 2ull * (le16(h + H_AVAIL) & 0x7fff);

	/* Allocated to size: any read past them is an ASan report. */
	table = malloc(sizeof(*table) * (qs ? qs : 1));
	segs = malloc(sizeof(*segs) * (max_segs ? max_segs : 1));
	if (!table || !segs || mmn_state_new(&guest_mm) != 0)
		goto out;
	FUZZ_ASSERT(shadow_map_init(&sm, guest_mm, UINT64_MAX, translate, NULL) == 0,
		    "shadow_map_init failed");

	for (unsigned int i = 0; i < requests; i++) {
		uint16_t head;
		int n, want;

		change_memory(guest_mm, actions[i]);
		/* The device's steps: table, then the head, then the chain. */
		if (device_read(&sm, desc_gpa, table, 16ull * qs) != 0 ||
		    device_read(&sm, avail_gpa + 4 + 2ull * (qs ? i % qs : 0), &head, 2) != 0) {
			show("ring fault at table", desc_gpa, qs, -EFAULT);
			break;
		}
		walks++;
		n = vring_walk(table, qs, head, segs, max_segs);
		want = expect_walk(table, qs, head, max_segs);
		show("walk from head", head, qs, n);
		FUZZ_ASSERT(n == want, "walk from %u (queue %u, %u segments): %d, expected %d", head,
			    qs, max_segs, n, want);
		if (n < 0)
			continue;
		chains++;
		check_chain(table, qs, head, segs, n, max_segs);
		for (int s = 0; s < n; s++)
			device_access(&sm, segs[s].gpa, segs[s].len, segs[s].write);
	}
	shadow_map_destroy(&sm);
	mmn_state_free(guest_mm);
out:
	free(table);
	free(segs);
	for (unsigned int i = 0; i < 2; i++)
		free(regions[i].buf);
	return 0;
}
