/* SPDX-License-Identifier: MIT */
/*
 * The dma_pauser EXAMPLE of mmn_sub_register(3), compiled as printed and
 * run against a model device: quiesced from the first start it hears to
 * the last end, never resumed while a change it heard of runs.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include <mmn/mmn.h>

#include "testutil.h"

/* The device the example drives. */
static atomic_int device_quiesced, device_is_busy;

static bool device_busy(void)
{
	return atomic_load(&device_is_busy);
}

static void device_quiesce(void)
{
	atomic_store(&device_quiesced, 1);
}

static void device_resume(void)
{
	atomic_store(&device_quiesced, 0);
}

#include "example-dma-pauser.c"

static struct mmn_state *state;
static struct mmn_invalidate_desc early = {
	.start = 0, .end = 0x1000, .event = MMN_EVENT_UNMAP, .flags = MMN_INVALIDATE_BLOCKABLE,
};
static struct mmn_invalidate_desc later = {
	.start = 0x1000, .end = 0x2000, .event = MMN_EVENT_CLEAR, .flags = MMN_INVALIDATE_BLOCKABLE,
};
static int changing_after_early, quiesced_during_later, quiesced_after_later, changing_after_later;

static int changing_now(void)
{
	struct mmn_sub *sub;
	int changing;

	ck_assert_int_eq(mmn_sub_get(&pause_ops, state, &sub), 0);
	changing = atomic_load(&mmn_container_of(sub, struct dma_pauser, sub)->changing);
	ck_assert_int_eq(mmn_sub_put(sub), 0);
	return changing;
}

/* The pauser came to life while EARLY ran: it must not hear EARLY's end. */
static void dma_across_invalidations(void)
{
	mmn_invalidate_end(state, &early);
	changing_after_early = changing_now();
	ck_assert_int_eq(mmn_invalidate_start(state, &later), 0);
	quiesced_during_later = atomic_load(&device_quiesced);
	mmn_invalidate_end(state, &later);
	quiesced_after_later = atomic_load(&device_quiesced);
	changing_after_later = changing_now();
}

START_TEST(pauser_got_during_an_invalidation)
{
	ck_assert_int_eq(mmn_state_new(&state), 0);
	atomic_store(&device_quiesced, 0);
	ck_assert_int_eq(mmn_invalidate_start(state, &early), 0);
	ck_assert_int_eq(dma_with_pauser(state, dma_across_invalidations), 0);
	ck_assert_int_eq(changing_after_early, 0);
	ck_assert_int_eq(quiesced_during_later, 1);
	ck_assert_int_eq(quiesced_after_later, 0);
	ck_assert_int_eq(changing_after_later, 0);
	mmn_state_free(state);
}
END_TEST

static void dma_idle(void)
{
}

static void dma_refused(void)
{
	struct mmn_invalidate_desc nb = later;

	nb.flags = 0;
	atomic_store(&device_is_busy, 1);
	ck_assert_int_eq(mmn_invalidate_start(state, &nb), -EAGAIN);
	atomic_store(&device_is_busy, 0);
	ck_assert_int_eq(atomic_load(&device_quiesced), 0);
}

START_TEST(pauser_refuses_when_busy)
{
	ck_assert_int_eq(mmn_state_new(&state), 0);
	atomic_store(&device_quiesced, 0);
	ck_assert_int_eq(dma_with_pauser(state, dma_refused), 0);
	ck_assert_int_eq(dma_with_pauser(state, dma_idle), 0);
	mmn_state_free(state);
}
END_TEST

/* Users come and go while other threads invalidate. */
static atomic_int stop;

static void *invalidator(void *arg)
{
	uint64_t rnd = (uint64_t)(uintptr_t)arg | 1;

	while (!atomic_load(&stop)) {
		struct mmn_invalidate_desc d = early;

		d.start = test_rand_below(&rnd, 16) * 0x1000;
		d.end = d.start + 0x1000;
		if (mmn_invalidate_start(state, &d) == 0)
			mmn_invalidate_end(state, &d);
	}
	return NULL;
}

static struct mmn_sub *holder;

static void dma_hold(void)
{
	/* Keep the pauser alive across a few rounds of the storm. */
	ck_assert_int_eq(mmn_sub_get(&pause_ops, state, &holder), 0);
}

START_TEST(pauser_under_storm)
{
	pthread_t t[2];

	ck_assert_int_eq(mmn_state_new(&state), 0);
	atomic_store(&device_quiesced, 0);
	atomic_store(&stop, 0);
	for (uintptr_t i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, invalidator, (void *)(i + 1)), 0);
	for (int round = 0; round < 2000; round++) {
		ck_assert_int_eq(dma_with_pauser(state, round % 2 ? dma_hold : dma_idle), 0);
		if (holder) {
			sched_yield();
			/* An end whose start it missed would take it below 0. */
			ck_assert_int_ge(atomic_load(&mmn_container_of(holder, struct dma_pauser,
								       sub)->changing), 0);
			ck_assert_int_eq(mmn_sub_put(holder), 0);
			holder = NULL;
		}
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* Nothing runs: a pauser alive now must have the device running. */
	ck_assert_int_eq(dma_with_pauser(state, dma_idle), 0);
	ck_assert_int_eq(changing_now(), 0);
	mmn_state_free(state);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("example-dma-pauser");
	TCase *tc = tcase_create("example");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, pauser_got_during_an_invalidation);
	tcase_add_test(tc, pauser_refuses_when_busy);
	tcase_add_test(tc, pauser_under_storm);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
