/* SPDX-License-Identifier: MIT */
/*
 * The guest's device driver (kvm-demo/guest/vdev.c), built for the host
 * against a model of the device: the ports are function calls, guest RAM
 * is a mapping below 2 GiB (the setup port takes a 32-bit page number) and
 * a GPA is its host address. The model serves the ring synchronously on
 * each kick, checking every address against that RAM.
 *
 * What it checks: whenever the driver hands the RAM back to the self-test
 * (after vdev_run(), after a batch between passes), the device has been
 * reset. The window is made as wide as it gets: the test overwrites all
 * RAM with a fill pattern, as the next self-test pass does, and then lets
 * the device run once more, as a late kick or the worker's trailing
 * re-read of avail->idx does. A device still set up reads the pattern as
 * its available ring, which is a ring fault.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "testutil.h"
#include "devices/vring.h"
#include "guest/vdev.h"

#define RAM_SIZE	(4ull << 20)

static uint8_t *ram;
static struct guest_layout lay;	/* the RAM the guest tests */

static struct {
	uint32_t mode;			/* KD_VDEV_PORT_MODE */
	uint32_t status;		/* KD_VDEV_PORT_STATUS */
	bool ready;
	struct kd_vdev_setup q;
	uint16_t last_avail, used_idx;
	unsigned int resets, ring_faults, requests;
	char fault[160];
	uint8_t bounce[KD_VDEV_MAX_BYTES];
} dev;

__attribute__((format(printf, 1, 2))) void print(const char *fmt, ...);

void print(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static bool in_ram(uint64_t gpa, uint64_t len)
{
	uint64_t base = (uintptr_t)ram;

	return len && gpa >= base && gpa + len >= gpa && gpa + len <= base + RAM_SIZE;
}

static void *at(uint64_t gpa)
{
	return (void *)(uintptr_t)gpa;
}

static void ring_fault(const char *what, unsigned int value)
{
	dev.ring_faults++;
	dev.ready = false;
	snprintf(dev.fault, sizeof(dev.fault), "%s %u (last avail %u)", what, value,
		 dev.last_avail);
}

/* One request, as kvm-demo/devices/vdev.c serves it; returns the used length. */
static uint32_t serve(const struct kd_vring_desc *table, uint16_t head)
{
	struct vring_seg segs[KD_VDEV_MAX_SEGS];
	struct kd_vdev_resp resp = { .status = KD_VDEV_S_OK };
	int n = vring_walk(table, dev.q.queue_size, head, segs, KD_VDEV_MAX_SEGS);
	uint64_t data = 0, written = 0, in = 0, pos = 0, sum = KD_FNV_OFFSET;
	int first_write = 1;
	struct kd_vdev_req req;

	dev.requests++;
	if (n < 0 || !segs[n - 1].write || segs[n - 1].len < sizeof(resp) ||
	    !in_ram(segs[n - 1].gpa, sizeof(resp)))
		return 0;
	for (int i = 1; i < n - 1; i++) {
		data += segs[i].len;
		if (!in_ram(segs[i].gpa, segs[i].len))
			resp.status = KD_VDEV_S_FAULT;
	}
	while (first_write < n - 1 && !segs[first_write].write)
		in += segs[first_write++].len;
	if (n < 2 || segs[0].write || segs[0].len < sizeof(req)) {
		resp.status = KD_VDEV_S_BADREQ;
		goto out;
	}
	if (!in_ram(segs[0].gpa, sizeof(req))) {
		resp.status = KD_VDEV_S_FAULT;
		goto out;
	}
	memcpy(&req, at(segs[0].gpa), sizeof(req));
	if (resp.status != KD_VDEV_S_OK)
		goto out;
	if (data > KD_VDEV_MAX_BYTES) {
		resp.status = KD_VDEV_S_TOOBIG;
		goto out;
	}
	switch (req.op) {
	case KD_VDEV_OP_FILL:
		if (first_write != 1) {
			resp.status = KD_VDEV_S_BADREQ;
			break;
		}
		for (int i = 1; i < n - 1; i++)
			for (uint32_t j = 0; j < segs[i].len; j++)
				((uint8_t *)at(segs[i].gpa))[j] = kd_vdev_fill_byte(req.arg, pos++);
		written = resp.result = data;
		break;
	case KD_VDEV_OP_CHECKSUM:
		if (first_write != n - 1) {
			resp.status = KD_VDEV_S_BADREQ;
			break;
		}
		for (int i = 1; i < n - 1; i++)
			sum = kd_vdev_fnv1a(sum, at(segs[i].gpa), segs[i].len);
		resp.result = sum;
		break;
	case KD_VDEV_OP_COPY:
		if (first_write == 1 || first_write == n - 1 || in * 2 != data) {
			resp.status = KD_VDEV_S_BADREQ;
			break;
		}
		for (int i = 1; i < first_write; i++, pos += segs[i - 1].len)
			memcpy(dev.bounce + pos, at(segs[i].gpa), segs[i].len);
		pos = 0;
		for (int i = first_write; i < n - 1; i++, pos += segs[i - 1].len)
			memcpy(at(segs[i].gpa), dev.bounce + pos, segs[i].len);
		written = resp.result = in;
		break;
	default:
		resp.status = KD_VDEV_S_BADREQ;
	}
out:
	memcpy(at(segs[n - 1].gpa), &resp, sizeof(resp));
	return (uint32_t)(written + sizeof(resp));
}

/* What the device's worker does on a kick: serve until avail->idx is reached. */
static void drain(void)
{
	uint16_t qs = (uint16_t)dev.q.queue_size;
	struct kd_vring_desc table[KD_VDEV_QUEUE_MAX];

	while (dev.ready) {
		uint16_t avail = *(volatile uint16_t *)at(dev.q.avail_gpa + 2);

		if (avail == dev.last_avail)
			return;
		if ((uint16_t)(avail - dev.last_avail) > qs) {
			ring_fault("avail->idx", avail);
			return;
		}
		memcpy(table, at(dev.q.desc_gpa), 16u * qs);
		while (dev.last_avail != avail) {
			uint16_t head = ((uint16_t *)at(dev.q.avail_gpa + 4))[dev.last_avail % qs];
			struct kd_vring_used_elem *e = at(dev.q.used_gpa + 4 + 8ull * (dev.used_idx % qs));

			e->id = head;
			e->len = head < qs ? serve(table, head) : 0;
			dev.used_idx++;
			dev.last_avail++;
			__atomic_store_n((uint16_t *)at(dev.q.used_gpa + 2), dev.used_idx,
					 __ATOMIC_RELEASE);
		}
	}
}

static uint32_t setup_device(uint32_t page)
{
	uint64_t qs;

	dev.ready = false;
	if (page == 0) {
		dev.resets++;
		return KD_VDEV_S_OK;
	}
	if (!in_ram(page * 4096ull, sizeof(dev.q)))
		return KD_VDEV_S_FAULT;
	memcpy(&dev.q, at(page * 4096ull), sizeof(dev.q));
	qs = dev.q.queue_size;
	if (qs == 0 || qs > KD_VDEV_QUEUE_MAX || (qs & (qs - 1)))
		return KD_VDEV_S_BADREQ;
	if (!in_ram(dev.q.desc_gpa, 16 * qs) || !in_ram(dev.q.avail_gpa, 4 + 2 * qs) ||
	    !in_ram(dev.q.used_gpa, 4 + 8 * qs))
		return KD_VDEV_S_FAULT;
	dev.last_avail = dev.used_idx = 0;
	dev.ready = true;
	return KD_VDEV_S_OK;
}

void kd_hosted_out(uint16_t port, uint32_t v, unsigned int size)
{
	(void)size;
	if (port == KD_VDEV_PORT_SETUP)
		dev.status = setup_device(v);
	else if (port == KD_VDEV_PORT_KICK)
		drain();
}

uint32_t kd_hosted_inl(uint16_t port)
{
	if (port == KD_VDEV_PORT_STATUS)
		return dev.status;
	if (port == KD_VDEV_PORT_MODE)
		return dev.mode;
	return 0xffffffffu;
}

/* What the next self-test pass does to the RAM, then a late kick. */
static void reuse_ram_then_kick(void)
{
	uint64_t *words = (uint64_t *)(void *)ram;

	for (uint64_t i = 0; i < RAM_SIZE / 8; i++)
		words[i] = ((uintptr_t)&words[i] ^ 0x5a5a) * 0x9e3779b97f4a7c15ull;
	drain();
}

static void setup(void)
{
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	ck_assert(ram != MAP_FAILED);
	memset(&dev, 0, sizeof(dev));
	memset(&lay, 0, sizeof(lay));
	lay.nr_ranges = 2;
	lay.ranges[0].gpa = (uintptr_t)ram;
	lay.ranges[0].size = RAM_SIZE / 2;
	lay.ranges[1].gpa = (uintptr_t)ram + RAM_SIZE / 2;
	lay.ranges[1].size = RAM_SIZE / 2;
	lay.boot = lay.ranges[0];
}

static void teardown(void)
{
	munmap(ram, RAM_SIZE);
}

static void check_released(const char *after)
{
	ck_assert_msg(!dev.ready, "%s: the device still serves rings in RAM handed back", after);
	reuse_ram_then_kick();
	ck_assert_msg(dev.ring_faults == 0, "%s: ring fault on the reused RAM: %s", after,
		      dev.fault);
}

START_TEST(traffic_then_self_test)
{
	dev.mode = KD_VDEV_MODE_TRAFFIC | 40u << 8;
	ck_assert_int_eq(vdev_run(&lay, dev.mode), 0);
	ck_assert_uint_ge(dev.requests, 40);
	check_released("after vdev_run()");
}
END_TEST

START_TEST(hostile_then_self_test)
{
	dev.mode = KD_VDEV_MODE_HOSTILE;
	vdev_run(&lay, dev.mode);	/* the model is no judge of each case */
	ck_assert_uint_gt(dev.requests, 20);
	check_released("after the hostile cases");
}
END_TEST

START_TEST(chaos_batches_between_passes)
{
	struct guest_layout l = lay;

	dev.mode = KD_VDEV_MODE_CHAOS | KD_VDEV_CHAOS_BATCH << 8;
	ck_assert_int_eq(vdev_run(&lay, dev.mode), 0);	/* nothing before the passes */
	ck_assert_uint_eq(dev.requests, 0);
	for (uint32_t pass = 0; pass < 4; pass++) {
		ck_assert_int_eq(vdev_between_passes(&l, pass), pass % 2 ? 0 : 1);
		check_released(pass % 2 ? "after an odd pass" : "after a batch");
	}
	ck_assert_uint_eq(dev.requests, 2 * KD_VDEV_CHAOS_BATCH);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vdev-guest");
	TCase *tc = tcase_create("rings handed back");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, traffic_then_self_test);
	tcase_add_test(tc, hostile_then_self_test);
	tcase_add_test(tc, chaos_batches_between_passes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
