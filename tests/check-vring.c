/* SPDX-License-Identifier: MIT */
/* kvm-demo's descriptor-chain walker: valid chains, every hostile shape, fuzz. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>

#include "testutil.h"
#include "devices/vring.h"

#define QS 16u

static struct kd_vring_desc table[KD_VDEV_QUEUE_MAX];
static struct vring_seg segs[KD_VDEV_QUEUE_MAX];	/* room for the longest loop test */

static void setup(void)
{
	memset(table, 0, sizeof(table));
	memset(segs, 0, sizeof(segs));
}

static void set(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	table[i] = (struct kd_vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

START_TEST(valid_chain)
{
	set(3, 0x1000, 16, KD_VRING_F_NEXT, 7);
	set(7, 0x2000, 100, KD_VRING_F_NEXT, 0);
	set(0, 0x9000, 4096, KD_VRING_F_NEXT | KD_VRING_F_WRITE, 15);
	set(15, 0xa000, 16, KD_VRING_F_WRITE, 99);	/* next ignored without NEXT */
	ck_assert_int_eq(vring_walk(table, QS, 3, segs, KD_VDEV_MAX_SEGS), 4);
	ck_assert_uint_eq(segs[0].gpa, 0x1000);
	ck_assert_uint_eq(segs[0].len, 16);
	ck_assert(!segs[0].write && !segs[1].write);
	ck_assert_uint_eq(segs[1].len, 100);
	ck_assert(segs[2].write && segs[3].write);
	ck_assert_uint_eq(segs[3].gpa, 0xa000);
}
END_TEST

START_TEST(single_and_top_of_space)
{
	/* Ends exactly at 2^64: no overflow. */
	set(0, UINT64_MAX - 15, 16, KD_VRING_F_WRITE, 0);
	ck_assert_int_eq(vring_walk(table, QS, 0, segs, 1), 1);
	ck_assert_uint_eq(segs[0].gpa, UINT64_MAX - 15);
}
END_TEST

START_TEST(bad_indices)
{
	ck_assert_int_eq(vring_walk(table, QS, QS, segs, KD_VDEV_MAX_SEGS), -EINVAL);
	ck_assert_int_eq(vring_walk(table, QS, 0xffff, segs, KD_VDEV_MAX_SEGS), -EINVAL);
	set(1, 0x1000, 8, KD_VRING_F_NEXT, QS);
	ck_assert_int_eq(vring_walk(table, QS, 1, segs, KD_VDEV_MAX_SEGS), -EINVAL);
	set(1, 0x1000, 8, 0, 0);
	ck_assert_int_eq(vring_walk(table, 0, 1, segs, KD_VDEV_MAX_SEGS), -EINVAL);
	ck_assert_int_eq(vring_walk(table, KD_VDEV_QUEUE_MAX + 1, 1, segs, KD_VDEV_MAX_SEGS),
			 -EINVAL);
}
END_TEST

START_TEST(loops)
{
	set(2, 0x1000, 8, KD_VRING_F_NEXT, 2);
	ck_assert_int_eq(vring_walk(table, QS, 2, segs, KD_VDEV_MAX_SEGS), -ELOOP);
	set(4, 0x1000, 8, KD_VRING_F_NEXT, 5);
	set(5, 0x2000, 8, KD_VRING_F_NEXT, 6);
	set(6, 0x3000, 8, KD_VRING_F_NEXT, 4);
	ck_assert_int_eq(vring_walk(table, QS, 4, segs, KD_VDEV_MAX_SEGS), -ELOOP);
	/* A loop longer than the segment limit is still a loop, not E2BIG. */
	for (unsigned int i = 0; i < KD_VDEV_QUEUE_MAX; i++)
		set(i, 0x1000 + i, 1, KD_VRING_F_NEXT, (uint16_t)((i + 1) % KD_VDEV_QUEUE_MAX));
	ck_assert_int_eq(vring_walk(table, KD_VDEV_QUEUE_MAX, 0, segs, KD_VDEV_QUEUE_MAX),
			 -ELOOP);
}
END_TEST

START_TEST(overlong)
{
	for (unsigned int i = 0; i < KD_VDEV_QUEUE_MAX - 1; i++)
		set(i, 0x1000 * i, 8, KD_VRING_F_NEXT, (uint16_t)(i + 1));
	set(KD_VDEV_QUEUE_MAX - 1, 0, 8, 0, 0);
	ck_assert_int_eq(vring_walk(table, KD_VDEV_QUEUE_MAX, 0, segs, KD_VDEV_MAX_SEGS), -E2BIG);
	ck_assert_int_eq(vring_walk(table, KD_VDEV_QUEUE_MAX, KD_VDEV_QUEUE_MAX - KD_VDEV_MAX_SEGS,
				    segs, KD_VDEV_MAX_SEGS), (int)KD_VDEV_MAX_SEGS);
}
END_TEST

START_TEST(bad_descriptors)
{
	set(0, UINT64_MAX - 15, 17, 0, 0);
	ck_assert_int_eq(vring_walk(table, QS, 0, segs, KD_VDEV_MAX_SEGS), -EOVERFLOW);
	set(0, 0xfffffffffffff000ull, 0x2000, 0, 0);
	ck_assert_int_eq(vring_walk(table, QS, 0, segs, KD_VDEV_MAX_SEGS), -EOVERFLOW);
	set(0, 0x1000, 0, 0, 0);
	ck_assert_int_eq(vring_walk(table, QS, 0, segs, KD_VDEV_MAX_SEGS), -EINVAL);
	set(0, 0x1000, 16, KD_VRING_F_INDIRECT, 0);
	ck_assert_int_eq(vring_walk(table, QS, 0, segs, KD_VDEV_MAX_SEGS), -ENOTSUP);
	set(0, 0x1000, 16, KD_VRING_F_WRITE | KD_VRING_F_NEXT, 1);
	set(1, 0x2000, 16, 0, 0);
	ck_assert_int_eq(vring_walk(table, QS, 0, segs, KD_VDEV_MAX_SEGS), -EPROTO);
}
END_TEST

/* Random tables: never more segments than allowed, and what comes back is right. */
START_TEST(fuzz)
{
	uint64_t seed = 0x5eed0000u + (uint64_t)_i;

	for (int round = 0; round < 20000; round++) {
		unsigned int qs = 1u << test_rand_below(&seed, 9);
		unsigned int max = 1 + (unsigned int)test_rand_below(&seed, KD_VDEV_MAX_SEGS);

		for (unsigned int i = 0; i < qs; i++) {
			uint64_t r = test_rand(&seed);

			set(i, test_rand_below(&seed, 4) ? r >> 20 : r, (uint32_t)(r % 3 ? r & 0xffff : r),
			    (uint16_t)(test_rand(&seed) & 7),
			    (uint16_t)test_rand_below(&seed, qs + (qs >> 2) + 1));
		}
		unsigned int head = (unsigned int)test_rand_below(&seed, qs + 1);
		int n = vring_walk(table, qs, head, segs, max);

		ck_assert_msg(n == -EINVAL || n == -ELOOP || n == -E2BIG || n == -EOVERFLOW ||
			      n == -ENOTSUP || n == -EPROTO || (n >= 1 && n <= (int)max),
			      "seed %" PRIu64 " round %d: %d", seed, round, n);
		if (n > 0) {
			bool w = false;

			for (int i = 0; i < n; i++) {
				ck_assert(segs[i].len > 0);
				ck_assert(segs[i].gpa + segs[i].len - 1 >= segs[i].gpa);
				ck_assert(!w || segs[i].write);
				w = segs[i].write;
			}
		}
	}
}
END_TEST

static Suite *vring_suite(void)
{
	Suite *s = suite_create("vring");
	TCase *tc = tcase_create("walk");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, valid_chain);
	tcase_add_test(tc, single_and_top_of_space);
	tcase_add_test(tc, bad_indices);
	tcase_add_test(tc, loops);
	tcase_add_test(tc, overlong);
	tcase_add_test(tc, bad_descriptors);
	tcase_add_loop_test(tc, fuzz, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vring_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
