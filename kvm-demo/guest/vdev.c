/* SPDX-License-Identifier: MIT */
/*
 * The guest's driver of the vhost-like device: one split ring, requests
 * over scatter-gather buffers in every RAM range, each completion checked
 * (fills and copies byte by byte, checksums against the guest's own). The
 * hostile mode sends malformed chains and buffers outside RAM and checks
 * that each one fails, and that the device still serves a good request
 * after it.
 *
 * Layout: the first 64 KiB of the first RAM range hold the setup block,
 * the rings and the request headers; data buffers come from the rest.
 */
#include <stdbool.h>
#include <stdint.h>

#include "vdev.h"

#define QS		64u
#define BATCH		8u
#define PAGE		4096ull
#define HEAD_SPACE	0x10000ull

struct slot {
	struct kd_vdev_req req;
	struct kd_vdev_resp resp;
};

static volatile struct kd_vring_desc *desc;
static volatile struct kd_vring_avail *avail;
static volatile struct kd_vring_used *used;
static volatile struct slot *slots;	/* BATCH of them */
static uint16_t avail_idx, used_seen;
static uint64_t rng = 0x243f6a8885a308d3ull;

#ifdef KD_GUEST_HOSTED
/* Built into a host test: its model of the device answers the ports. */
#define outw(port, v)	kd_hosted_out(port, v, 2)
#define outl(port, v)	kd_hosted_out(port, v, 4)
#define inl(port)	kd_hosted_inl(port)
#else
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
#endif

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static uint64_t below(uint64_t n)
{
	return rnd() % n;
}

uint32_t vdev_mode(void)
{
	return inl(KD_VDEV_PORT_MODE);
}

static uint32_t setup_status(void)
{
	uint32_t s;

	while ((s = inl(KD_VDEV_PORT_STATUS)) == 0xffffffffu)
		__asm__ volatile("pause");
	return s;
}

/*
 * Whether the device may still read the rings. The rings live in RAM the
 * self-test overwrites next: the device is reset first (release()), or a
 * trailing re-read of avail->idx, or a late kick, reads the fill pattern.
 */
static bool live;

static void release(void)
{
	if (!live)
		return;
	outl(KD_VDEV_PORT_SETUP, 0);
	setup_status();
	live = false;
}

static uint32_t setup(uint64_t base, uint64_t desc_gpa)
{
	volatile struct kd_vdev_setup *q = (volatile struct kd_vdev_setup *)(base + 0x3000);
	volatile uint8_t *p = (volatile uint8_t *)base;

	/* Reset first: the device must not serve the old rings while they are rewritten. */
	outl(KD_VDEV_PORT_SETUP, 0);
	setup_status();
	for (uint64_t i = 0; i < 0x3000; i++)
		p[i] = 0;
	desc = (volatile struct kd_vring_desc *)base;
	avail = (volatile struct kd_vring_avail *)(base + 0x1000);
	used = (volatile struct kd_vring_used *)(base + 0x2000);
	slots = (volatile struct slot *)(base + 0x4000);
	avail_idx = used_seen = 0;
	q->queue_size = QS;
	q->reserved = 0;
	q->desc_gpa = desc_gpa;
	q->avail_gpa = base + 0x1000;
	q->used_gpa = base + 0x2000;
	live = true;
	outl(KD_VDEV_PORT_SETUP, (uint32_t)((base + 0x3000) / PAGE));
	return setup_status();
}

static void set_desc(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc[i].addr = addr;
	desc[i].len = len;
	desc[i].flags = flags;
	desc[i].next = next;
}

static void submit(uint16_t head)
{
	avail->ring[avail_idx % QS] = head;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	avail_idx++;
	avail->idx = avail_idx;
}

static void kick(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	outw(KD_VDEV_PORT_KICK, 0);
}

/* Waits for the next completion; false when the device never answers. */
static bool next_used(struct kd_vring_used_elem *e)
{
	for (uint64_t spins = 0; used->idx == used_seen; spins++) {
		if (spins == (1ull << 32)) {
			print("guest: vdev: no completion for used index %u\n", used_seen);
			return false;
		}
		__asm__ volatile("pause");
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	e->id = used->ring[used_seen % QS].id;
	e->len = used->ring[used_seen % QS].len;
	used_seen++;
	return true;
}

/* ---- traffic ---- */

struct seg {
	uint64_t gpa;
	uint32_t len;
};

struct request {
	uint32_t op;
	uint64_t seed;
	unsigned int nr_in, nr_out;
	struct seg in[4], out[4];
	uint64_t expect;	/* CHECKSUM */
};

static struct request reqs[BATCH];

/* The RAM in use: ranges[0] holds the rings in its first HEAD_SPACE. */
static const struct kd_ram_range *ram;
static uint32_t nr_ram;

/* Data windows: each range split into BATCH windows, one per request slot. */
static void window(unsigned int k, uint64_t *start, uint64_t *size)
{
	unsigned int r = (unsigned int)below(nr_ram);
	uint64_t gpa = ram[r].gpa, len = ram[r].size;

	if (r == 0) {
		gpa += HEAD_SPACE;
		len -= HEAD_SPACE;
	}
	*size = len / BATCH;
	*start = gpa + k * *size;
}

/* Carve up to N segments from the window of slot K, none overlapping. */
static unsigned int carve(struct seg *segs, unsigned int n, uint64_t *cur, uint64_t end,
			  uint64_t total)
{
	unsigned int i = 0;

	for (; i < n && total; i++) {
		uint64_t len = i == n - 1 ? total : 1 + below(total);

		if (*cur + len > end)
			break;
		segs[i].gpa = *cur;
		segs[i].len = (uint32_t)len;
		total -= len;
		*cur += len + below(300);
	}
	return total ? 0 : i;
}

static void fill_random(const struct seg *segs, unsigned int n, uint64_t seed, uint64_t *sum)
{
	uint64_t s = seed | 1, h = KD_FNV_OFFSET;

	for (unsigned int i = 0; i < n; i++) {
		volatile uint8_t *p = (volatile uint8_t *)segs[i].gpa;

		for (uint32_t j = 0; j < segs[i].len; j++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			p[j] = (uint8_t)s;
		}
		h = kd_vdev_fnv1a(h, p, segs[i].len);
	}
	if (sum)
		*sum = h;
}

/* Build request K of the batch into descriptors [K * 8, K * 8 + 8). */
static bool build(unsigned int k)
{
	struct request *r = &reqs[k];
	uint64_t start, size, cur, total;
	unsigned int d = k * 8, nsegs;

	window(k, &start, &size);
	cur = start + below(PAGE);
	total = 1 + below(below(4) ? 3 * PAGE : size / 3);
	r->op = 1 + (uint32_t)below(3);
	r->seed = rnd();
	r->nr_in = r->nr_out = 0;
	if (r->op == KD_VDEV_OP_FILL) {
		r->nr_out = carve(r->out, 1 + (unsigned int)below(4), &cur, start + size, total);
	} else if (r->op == KD_VDEV_OP_CHECKSUM) {
		r->nr_in = carve(r->in, 1 + (unsigned int)below(4), &cur, start + size, total);
		fill_random(r->in, r->nr_in, r->seed, &r->expect);
	} else {
		total = total / 2 + 1;
		r->nr_in = carve(r->in, 1 + (unsigned int)below(3), &cur, start + size, total);
		r->nr_out = carve(r->out, 1 + (unsigned int)below(3), &cur, start + size, total);
		fill_random(r->in, r->nr_in, r->seed, 0);
		for (unsigned int i = 0; i < r->nr_out; i++)
			for (uint32_t j = 0; j < r->out[i].len; j++)
				((volatile uint8_t *)r->out[i].gpa)[j] = 0;
	}
	if (r->nr_in + r->nr_out == 0 || (r->op == KD_VDEV_OP_COPY && (!r->nr_in || !r->nr_out)))
		return false;	/* did not fit: try again */
	slots[k].req.op = r->op;
	slots[k].req.arg = r->seed;
	slots[k].resp.status = 0xdead;
	nsegs = 0;
	set_desc(d, (uint64_t)&slots[k].req, sizeof(struct kd_vdev_req), KD_VRING_F_NEXT,
		 (uint16_t)(d + 1));
	for (unsigned int i = 0; i < r->nr_in; i++, nsegs++)
		set_desc(d + 1 + nsegs, r->in[i].gpa, r->in[i].len, KD_VRING_F_NEXT,
			 (uint16_t)(d + 2 + nsegs));
	for (unsigned int i = 0; i < r->nr_out; i++, nsegs++)
		set_desc(d + 1 + nsegs, r->out[i].gpa, r->out[i].len,
			 KD_VRING_F_NEXT | KD_VRING_F_WRITE, (uint16_t)(d + 2 + nsegs));
	set_desc(d + 1 + nsegs, (uint64_t)&slots[k].resp, sizeof(struct kd_vdev_resp),
		 KD_VRING_F_WRITE, 0);
	return true;
}

static uint64_t seg_total(const struct seg *s, unsigned int n)
{
	uint64_t t = 0;

	for (unsigned int i = 0; i < n; i++)
		t += s[i].len;
	return t;
}

/* The byte at logical offset POS of a segment list. */
static uint8_t seg_byte(const struct seg *s, uint64_t pos)
{
	while (pos >= s->len)
		pos -= s++->len;
	return ((volatile uint8_t *)s->gpa)[pos];
}

static bool verify(unsigned int k, const struct kd_vring_used_elem *e)
{
	struct request *r = &reqs[k];
	volatile struct kd_vdev_resp *resp = &slots[k].resp;
	uint64_t out = seg_total(r->out, r->nr_out);

	if (resp->status != KD_VDEV_S_OK || e->len != out + sizeof(struct kd_vdev_resp)) {
		print("guest: vdev: request op %u: status %u, used length %u (expected %lu)\n",
		      r->op, resp->status, e->len, out + sizeof(struct kd_vdev_resp));
		return false;
	}
	if (r->op == KD_VDEV_OP_CHECKSUM && resp->result != r->expect) {
		print("guest: vdev: CHECKSUM 0x%lx, expected 0x%lx\n", resp->result, r->expect);
		return false;
	}
	for (uint64_t i = 0; i < out; i++) {
		uint8_t want = r->op == KD_VDEV_OP_FILL ? kd_vdev_fill_byte(r->seed, i)
						       : seg_byte(r->in, i);
		uint8_t got = seg_byte(r->out, i);

		if (got != want) {
			print("guest: vdev: %s byte %lu: 0x%x, expected 0x%x\n",
			      r->op == KD_VDEV_OP_FILL ? "FILL" : "COPY", i, got, want);
			return false;
		}
	}
	return true;
}

static int traffic(uint32_t requests, bool quiet)
{
	uint64_t done = 0, bytes = 0;

	while (done < requests) {
		unsigned int n = requests - done < BATCH ? (unsigned int)(requests - done) : BATCH;
		bool seen[BATCH] = { false };

		for (unsigned int k = 0; k < n; k++) {
			while (!build(k))
				;
			submit((uint16_t)(k * 8));
		}
		kick();
		for (unsigned int i = 0; i < n; i++) {
			struct kd_vring_used_elem e;
			unsigned int k;

			if (!next_used(&e))
				return 1;
			k = e.id / 8;
			if (e.id % 8 || k >= n || seen[k]) {
				print("guest: vdev: completion of unknown head %u\n", e.id);
				return 1;
			}
			seen[k] = true;
			if (!verify(k, &e))
				return 1;
			bytes += seg_total(reqs[k].in, reqs[k].nr_in) +
				 seg_total(reqs[k].out, reqs[k].nr_out);
		}
		done += n;
	}
	if (!quiet)
		print("guest: vdev: %lu requests completed and verified (%lu KiB of data)\n", done,
		      bytes >> 10);
	return 0;
}

/* ---- hostile ---- */

#define REJECTED	0x100u	/* used length 0: no status */

/* One request whose chain starts at HEAD; returns its status or REJECTED. */
static uint32_t run_one(uint16_t head, uint32_t *used_len)
{
	struct kd_vring_used_elem e;

	slots[0].resp.status = 0xdead;
	submit(head);
	kick();
	if (!next_used(&e))
		return 0xdeadu;
	*used_len = e.len;
	if (e.id != head)
		return 0xbadu;
	return e.len == 0 ? REJECTED : slots[0].resp.status;
}

/* A good CHECKSUM of 100 bytes right after the head area: the device still works. */
static bool still_works(void)
{
	uint64_t data = ram[0].gpa + HEAD_SPACE, sum;
	struct seg s = { data, 100 };
	uint32_t len;

	fill_random(&s, 1, rnd(), &sum);
	slots[0].req.op = KD_VDEV_OP_CHECKSUM;
	set_desc(0, (uint64_t)&slots[0].req, sizeof(struct kd_vdev_req), KD_VRING_F_NEXT, 1);
	set_desc(1, data, 100, KD_VRING_F_NEXT, 2);
	set_desc(2, (uint64_t)&slots[0].resp, sizeof(struct kd_vdev_resp), KD_VRING_F_WRITE, 0);
	return run_one(0, &len) == KD_VDEV_S_OK && slots[0].resp.result == sum;
}

/* Header, one data descriptor, response; the data one as given. */
static void chain3(uint32_t op, uint64_t addr, uint32_t len, uint16_t flags)
{
	slots[0].req.op = op;
	slots[0].req.arg = 7;
	set_desc(0, (uint64_t)&slots[0].req, sizeof(struct kd_vdev_req), KD_VRING_F_NEXT, 1);
	set_desc(1, addr, len, flags | KD_VRING_F_NEXT, 2);
	set_desc(2, (uint64_t)&slots[0].resp, sizeof(struct kd_vdev_resp), KD_VRING_F_WRITE, 0);
}

static int hostile(void)
{
	const struct kd_ram_range *last = &ram[nr_ram - 1];
	uint64_t ram0_end = ram[0].gpa + ram[0].size;
	uint64_t data = ram[0].gpa + HEAD_SPACE;
	uint64_t top = last->gpa + last->size;
	unsigned int cases = 0, bad = 0;
	uint32_t got, len;

#define EXPECT(what, head, want)						\
	do {									\
		got = run_one(head, &len);					\
		cases++;							\
		if (got != (want)) {						\
			print("guest: vdev hostile: %s: got 0x%x, expected 0x%x\n",\
			      what, got, (uint32_t)(want));			\
			bad++;							\
		} else if (!still_works()) {					\
			print("guest: vdev hostile: the device is broken after: %s\n", what);\
			bad++;							\
		}								\
	} while (0)

	chain3(KD_VDEV_OP_FILL, top + (1ull << 30), 64, KD_VRING_F_WRITE);
	EXPECT("FILL 1 GiB above the last RAM", 0, KD_VDEV_S_FAULT);
	chain3(KD_VDEV_OP_CHECKSUM, 0x7ffffffff000ull, 64, 0);
	EXPECT("CHECKSUM at 128 TiB", 0, KD_VDEV_S_FAULT);
	chain3(KD_VDEV_OP_CHECKSUM, ram0_end + PAGE, 64, 0);
	EXPECT("CHECKSUM in the hole after boot RAM", 0, KD_VDEV_S_FAULT);
	chain3(KD_VDEV_OP_FILL, ram0_end - 8, 4096, KD_VRING_F_WRITE);
	EXPECT("FILL across the end of boot RAM", 0, KD_VDEV_S_FAULT);
	chain3(KD_VDEV_OP_CHECKSUM, top - 16, 64, 0);
	EXPECT("CHECKSUM across the end of the last RAM", 0, KD_VDEV_S_FAULT);
	chain3(KD_VDEV_OP_CHECKSUM, 0xfffffffffffff000ull, 0x2000, 0);
	EXPECT("address + length overflows", 0, REJECTED);
	chain3(KD_VDEV_OP_CHECKSUM, data, 0, 0);
	EXPECT("zero length", 0, REJECTED);
	chain3(KD_VDEV_OP_CHECKSUM, data, 64, KD_VRING_F_INDIRECT);
	EXPECT("indirect descriptor", 0, REJECTED);
	chain3(KD_VDEV_OP_CHECKSUM, data, 64, 0);
	desc[1].next = 1;
	EXPECT("descriptor chained to itself", 0, REJECTED);
	chain3(KD_VDEV_OP_CHECKSUM, data, 64, 0);
	set_desc(2, (uint64_t)&slots[0].resp, sizeof(struct kd_vdev_resp),
		 KD_VRING_F_WRITE | KD_VRING_F_NEXT, 0);
	EXPECT("chain looping back to its head", 0, REJECTED);
	chain3(KD_VDEV_OP_CHECKSUM, data, 64, 0);
	desc[1].next = 1000;
	EXPECT("next index outside the table", 0, REJECTED);
	slots[0].req.op = KD_VDEV_OP_CHECKSUM;
	set_desc(0, (uint64_t)&slots[0].req, sizeof(struct kd_vdev_req), KD_VRING_F_NEXT, 1);
	for (unsigned int i = 1; i < 40; i++)
		set_desc(i, data + i, 1, KD_VRING_F_NEXT, (uint16_t)(i + 1));
	set_desc(40, (uint64_t)&slots[0].resp, sizeof(struct kd_vdev_resp), KD_VRING_F_WRITE, 0);
	EXPECT("chain of 41 descriptors", 0, REJECTED);
	EXPECT("head index outside the table", 1000, REJECTED);
	chain3(KD_VDEV_OP_CHECKSUM, data, 64, 0);
	desc[2].flags = 0;
	EXPECT("response not writable", 0, REJECTED);
	chain3(KD_VDEV_OP_CHECKSUM, data, 64, 0);
	desc[2].addr = top + PAGE;
	EXPECT("response outside RAM", 0, REJECTED);
	chain3(KD_VDEV_OP_CHECKSUM, data, 64, 0);
	desc[0].addr = top + PAGE;
	EXPECT("header outside RAM", 0, KD_VDEV_S_FAULT);
	chain3(KD_VDEV_OP_CHECKSUM, data, 64, 0);
	desc[0].flags |= KD_VRING_F_WRITE;
	desc[1].flags |= KD_VRING_F_WRITE;
	EXPECT("header device-writable", 0, KD_VDEV_S_BADREQ);
	chain3(99, data, 64, 0);
	EXPECT("unknown operation", 0, KD_VDEV_S_BADREQ);
	chain3(KD_VDEV_OP_FILL, data, 64, 0);
	EXPECT("FILL into device-readable buffers", 0, KD_VDEV_S_BADREQ);
	chain3(KD_VDEV_OP_COPY, data, 64, 0);
	EXPECT("COPY with no destination", 0, KD_VDEV_S_BADREQ);
	chain3(KD_VDEV_OP_CHECKSUM, data, KD_VDEV_MAX_BYTES + 1, 0);
	EXPECT("more data than a request may carry", 0, KD_VDEV_S_TOOBIG);
	/* Rings outside RAM are refused at setup; a good setup works again. */
	cases++;
	if (setup(data, top + PAGE) != KD_VDEV_S_FAULT) {
		print("guest: vdev hostile: a descriptor table outside RAM was accepted\n");
		bad++;
	}
	cases++;
	if (setup(ram[0].gpa, ram[0].gpa) != KD_VDEV_S_OK || !still_works()) {
		print("guest: vdev hostile: the device did not come back after a good setup\n");
		bad++;
	}
#undef EXPECT
	print("guest: vdev hostile: %u cases, %u did not fail as they should\n", cases, bad);
	return bad != 0;
}

static int run(const struct guest_layout *l, uint32_t mode)
{
	uint64_t base = l->ranges[0].gpa;
	uint32_t status;

	ram = l->ranges;
	nr_ram = l->nr_ranges;
	if (nr_ram == 0 || ram[0].size < 4 * HEAD_SPACE) {
		print("guest: vdev: not enough RAM for the device's rings\n");
		return 1;
	}
	status = setup(base, base);
	if (status != KD_VDEV_S_OK) {
		print("guest: vdev: setup failed with status %u\n", status);
		return 1;
	}
	print("guest: vdev: queue of %u at 0x%lx\n", QS, base);
	if ((mode & 0xff) == KD_VDEV_MODE_HOSTILE)
		return hostile();
	return traffic(mode >> 8, false);
}

int vdev_run(const struct guest_layout *l, uint32_t mode)
{
	int ret;

	if ((mode & 0xff) == KD_VDEV_MODE_CHAOS)
		return 0;	/* vdev_between_passes() does the work */
	ret = run(l, mode);
	release();	/* the self-test's pass 0 overwrites the rings */
	return ret;
}

/*
 * Hostile mode, later: memory the VMM unplugged or ballooned while the guest
 * ran (a control script asks for it). The guest hears of it through the
 * mailbox before the VMM takes it away, so a request there may still
 * succeed for a while; once refused with FAULT it must stay refused.
 */
#define MAX_GONE	8
#define GONE_TRIES	400	/* passes before "never refused" */

static struct {
	struct kd_ram_range range;
	const char *what;
	uint32_t tries;
	bool refused;
} gone[MAX_GONE];
static uint32_t nr_gone;
static struct kd_ram_range known[KD_MAX_RANGES];
static uint32_t nr_known;
static uint64_t seen_balloon;
static bool tracking;

static void track(uint64_t gpa, const char *what)
{
	if (nr_gone == MAX_GONE)
		return;
	gone[nr_gone].range.gpa = gpa;
	gone[nr_gone].range.size = PAGE;
	gone[nr_gone].what = what;
	gone[nr_gone].tries = 0;
	gone[nr_gone].refused = false;
	nr_gone++;
}

static int hostile_late(const struct guest_layout *l)
{
	uint32_t status, len;
	int ret = 0;

	if (!tracking) {
		tracking = true;
		for (uint32_t i = 0; i < l->nr_dimms; i++)
			known[i] = l->dimms[i];
		nr_known = l->nr_dimms;
	}
	for (uint32_t k = 0; k < nr_known; k++) {
		bool still = false;

		for (uint32_t i = 0; i < l->nr_dimms; i++)
			still |= l->dimms[i].gpa == known[k].gpa;
		if (!still) {
			track(known[k].gpa + known[k].size / 2, "unplugged DIMM");
			known[k--] = known[--nr_known];
		}
	}
	if (l->balloon > seen_balloon) {
		track(l->boot.gpa + l->boot.size - l->balloon, "ballooned page");
		seen_balloon = l->balloon;
	}
	if (nr_gone == 0 || l->nr_ranges == 0 || l->ranges[0].size < 4 * HEAD_SPACE)
		return 0;
	ram = l->ranges;
	nr_ram = l->nr_ranges;
	if (setup(ram[0].gpa, ram[0].gpa) != KD_VDEV_S_OK) {
		print("guest: vdev hostile: setup failed\n");
		return -1;
	}
	for (uint32_t i = 0; i < nr_gone; i++) {
		if (gone[i].refused && gone[i].tries == 0)
			continue;	/* reported; checked again below */
		chain3(KD_VDEV_OP_CHECKSUM, gone[i].range.gpa, 64, 0);
		status = run_one(0, &len);
		if (status == KD_VDEV_S_FAULT) {
			if (!gone[i].refused)
				print("guest: vdev hostile: %s at 0x%lx refused (status FAULT) after %u "
				      "tries\n", gone[i].what, gone[i].range.gpa, gone[i].tries + 1);
			gone[i].refused = true;
			gone[i].tries = 0;
		} else if (gone[i].refused || status != KD_VDEV_S_OK ||
			   ++gone[i].tries == GONE_TRIES) {
			print("guest: vdev hostile: %s at 0x%lx: status 0x%x%s\n", gone[i].what,
			      gone[i].range.gpa, status,
			      gone[i].refused ? " after it had been refused" : "");
			ret = -1;
		}
	}
	/* Refused ones stay refused: ask once more. */
	for (uint32_t i = 0; i < nr_gone && ret == 0; i++) {
		if (!gone[i].refused)
			continue;
		chain3(KD_VDEV_OP_CHECKSUM, gone[i].range.gpa, 64, 0);
		if (run_one(0, &len) != KD_VDEV_S_FAULT) {
			print("guest: vdev hostile: %s at 0x%lx served after it had been refused\n",
			      gone[i].what, gone[i].range.gpa);
			ret = -1;
		}
	}
	return ret < 0 ? -1 : 1;
}

/*
 * KD_VDEV_MODE_CHAOS, vCPU 0 between passes with the others waiting: set the
 * ring up again in the RAM tested now (the self-test overwrote it) and run
 * a batch over all of that RAM.
 */
static int between_passes(const struct guest_layout *l, uint32_t pass)
{
	uint32_t mode = vdev_mode(), status;
	static uint64_t batches, requests;

	if ((mode & 0xff) == KD_VDEV_MODE_HOSTILE)
		return hostile_late(l);
	if ((mode & 0xff) != KD_VDEV_MODE_CHAOS || pass % 2 || l->nr_ranges == 0 ||
	    l->ranges[0].size < 4 * HEAD_SPACE)
		return 0;
	ram = l->ranges;
	nr_ram = l->nr_ranges;
	status = setup(ram[0].gpa, ram[0].gpa);
	if (status != KD_VDEV_S_OK) {
		print("guest: vdev: setup failed with status %u\n", status);
		return -1;
	}
	if (traffic(mode >> 8, true) != 0)
		return -1;
	batches++;
	requests += mode >> 8;
	if (batches % 16 == 1)
		print("guest: vdev: %lu batches, %lu requests completed and verified\n", batches,
		      requests);
	return 1;
}

int vdev_between_passes(const struct guest_layout *l, uint32_t pass)
{
	int ret = between_passes(l, pass);

	release();	/* the next pass overwrites the rings */
	return ret;
}
