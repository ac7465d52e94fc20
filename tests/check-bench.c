/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's baselines compute what libmmn computes: the sorted array
 * finds the same overlaps as the interval tree, the rwlock cache drops the
 * same subscriptions an invalidation hits, the kernel-style build of the
 * notifier answers like libmmn, and every fault design stays coherent.
 * Checks only; 'make bench' measures.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "selftest.h"

#define FAULT_RUN_NS 100000000ull	/* 0.1 s per design */

START_TEST(itree_vs_sorted)
{
	const char *err = selftest_itree_vs_sorted(0x1000 + (uint64_t)_i);

	ck_assert_msg(err == NULL, "%s", err);
}
END_TEST

START_TEST(fixture_hits)
{
	const char *err = selftest_fixture_hits(0x2000 + (uint64_t)_i);

	ck_assert_msg(err == NULL, "%s", err);
}
END_TEST

START_TEST(protocol_both_read_sides)
{
	const char *err = selftest_protocol();

	ck_assert_msg(err == NULL, "%s", err);
}
END_TEST

static const char *const designs[] = { "libmmn", "kernel_style", "rwlock" };

START_TEST(fault_coherent)
{
	const char *err = selftest_fault(designs[_i], FAULT_RUN_NS);

	ck_assert_msg(err == NULL, "%s", err);
}
END_TEST

START_TEST(unknown_design_named)
{
	const char *err = selftest_fault("no-such-design", FAULT_RUN_NS);

	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "no-such-design") != NULL, "message names the design: %s", err);
}
END_TEST

static Suite *bench_suite(void)
{
	Suite *s = suite_create("bench");
	TCase *tc = tcase_create("baselines");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, itree_vs_sorted, 0, 3);
	tcase_add_loop_test(tc, fixture_hits, 0, 3);
	tcase_add_test(tc, protocol_both_read_sides);
	tcase_add_loop_test(tc, fault_coherent, 0, 3);
	tcase_add_test(tc, unknown_design_named);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bench_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
