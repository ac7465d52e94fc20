/* SPDX-License-Identifier: MIT */
/* The interval tree against a brute-force model, edge cases, and misuse. */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <string.h>

#include <mmn/mmn.h>

#include "itree.h"
#include "testutil.h"

struct item {
	int payload;
	struct mmn_itree_node node;
	bool in_tree;
};

/* ------------------------------------------------------------------------
 * Randomised sequences against a model
 */

#define NR_ITEMS 512

/* Compare one query with the model; returns NULL or what went wrong. */
static const char *check_query(struct mmn_itree *tree, const struct item *items,
			       uint64_t qs, uint64_t ql)
{
	static char why[256];
	struct mmn_itree_node *n;
	unsigned int found = 0, want = 0;
	uint64_t prev_start = 0;

	for (int i = 0; i < NR_ITEMS; i++)
		if (items[i].in_tree && items[i].node.start <= ql && items[i].node.last >= qs)
			want++;
	/* The notifier's prefetching search finds the same first overlap. */
	if (itree_first_prefetch(tree, qs, ql) != mmn_itree_iter_first(tree, qs, ql)) {
		snprintf(why, sizeof(why), "query [%#" PRIx64 ", %#" PRIx64 "]: the prefetching "
			 "search found another first overlap", qs, ql);
		return why;
	}
	for (n = mmn_itree_iter_first(tree, qs, ql); n; n = mmn_itree_iter_next(n, qs, ql)) {
		const struct item *it = mmn_container_of(n, struct item, node);

		if (!it->in_tree || n->start > ql || n->last < qs) {
			snprintf(why, sizeof(why), "query [%#" PRIx64 ", %#" PRIx64 "] returned "
				 "[%#" PRIx64 ", %#" PRIx64 "], %s", qs, ql, n->start, n->last,
				 it->in_tree ? "which does not overlap" : "which is not in the tree");
			return why;
		}
		if (n->start < prev_start) {
			snprintf(why, sizeof(why), "query [%#" PRIx64 ", %#" PRIx64 "]: start "
				 "%#" PRIx64 " after %#" PRIx64, qs, ql, n->start, prev_start);
			return why;
		}
		prev_start = n->start;
		if (++found > want)
			break;
	}
	if (found != want) {
		snprintf(why, sizeof(why), "query [%#" PRIx64 ", %#" PRIx64 "]: %u nodes, model %u",
			 qs, ql, found, want);
		return why;
	}
	return NULL;
}

static unsigned int count(struct mmn_itree *tree, uint64_t s, uint64_t l);

static void run_sequence(uint64_t seed, unsigned int ops)
{
	struct item *items = calloc(NR_ITEMS, sizeof(*items));
	struct mmn_itree tree;
	uint64_t s = seed;
	const char *why;

	ck_assert_ptr_nonnull(items);
	mmn_itree_init(&tree);
	for (unsigned int op = 0; op < ops; op++) {
		struct item *it = &items[test_rand_below(&s, NR_ITEMS)];
		uint64_t qs, ql;

		if (it->in_tree) {
			mmn_itree_remove(&tree, &it->node);
			it->in_tree = false;
			ck_assert_msg(!itree_node_linked(&it->node),
				      "seed %" PRIu64 " op %u: removed node still linked", seed, op);
		} else {
			test_random_interval(&s, &it->node.start, &it->node.last);
			mmn_itree_insert(&tree, &it->node);
			it->in_tree = true;
			ck_assert_msg(itree_node_linked(&it->node),
				      "seed %" PRIu64 " op %u: inserted node not linked", seed, op);
		}
		why = itree_check(&tree);
		ck_assert_msg(why == NULL, "seed %" PRIu64 " op %u: %s", seed, op, why);

		test_random_interval(&s, &qs, &ql);
		why = check_query(&tree, items, qs, ql);
		ck_assert_msg(why == NULL, "seed %" PRIu64 " op %u: %s", seed, op, why);
	}

	/* Drain it: the model and the tree must agree to the end. */
	for (int i = 0; i < NR_ITEMS; i++) {
		if (!items[i].in_tree)
			continue;
		mmn_itree_remove(&tree, &items[i].node);
		items[i].in_tree = false;
		why = itree_check(&tree);
		ck_assert_msg(why == NULL, "seed %" PRIu64 " drain: %s", seed, why);
	}
	ck_assert(mmn_itree_empty(&tree));
	free(items);
}

START_TEST(random_against_model)
{
	/* 4 seeds x 40000 operations, each with a query and a full check. */
	run_sequence(0x9e3779b97f4a7c15ull * (uint64_t)(_i + 1), 40000);
}
END_TEST

/*
 * Every node of many small trees removed in turn from the same shape: each
 * rebalancing case of remove, on both sides, at the root and below it,
 * with the subtree maxima checked after each removal.
 */
START_TEST(every_removal_of_small_trees)
{
	struct item items[12];
	struct mmn_itree tree;
	uint64_t s = 0x5eed + (uint64_t)_i;
	const char *why;

	for (unsigned int n = 1; n <= 12; n++) {
		for (unsigned int shape = 0; shape < 150; shape++) {
			uint64_t starts[12], lasts[12];

			for (unsigned int i = 0; i < n; i++) {
				starts[i] = test_rand_below(&s, 32);
				lasts[i] = starts[i] + test_rand_below(&s, 16);
			}
			for (unsigned int victim = 0; victim < n; victim++) {
				unsigned int left = n;

				memset(items, 0, sizeof(items));
				mmn_itree_init(&tree);
				for (unsigned int i = 0; i < n; i++) {
					items[i].node.start = starts[i];
					items[i].node.last = lasts[i];
					mmn_itree_insert(&tree, &items[i].node);
					items[i].in_tree = true;
				}
				/* The victim first, then the others in a random order. */
				for (unsigned int k = victim; left > 0; left--) {
					mmn_itree_remove(&tree, &items[k].node);
					items[k].in_tree = false;
					why = itree_check(&tree);
					ck_assert_msg(why == NULL, "n %u shape %u victim %u: %s", n,
						      shape, victim, why);
					ck_assert_int_eq(count(&tree, 0, UINT64_MAX), left - 1);
					if (left > 1)
						do
							k = (unsigned int)test_rand_below(&s, n);
						while (!items[k].in_tree);
				}
				ck_assert(mmn_itree_empty(&tree));
			}
		}
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * Edge cases
 */

static unsigned int count(struct mmn_itree *tree, uint64_t s, uint64_t l)
{
	unsigned int n = 0;

	for (struct mmn_itree_node *it = mmn_itree_iter_first(tree, s, l); it;
	     it = mmn_itree_iter_next(it, s, l))
		n++;
	return n;
}

START_TEST(empty_and_single)
{
	static struct mmn_itree tree = MMN_ITREE_INIT;
	struct item a = { .payload = 7 };

	ck_assert(mmn_itree_empty(&tree));
	ck_assert_ptr_null(mmn_itree_iter_first(&tree, 0, UINT64_MAX));

	a.node.start = 10;
	a.node.last = 20;
	mmn_itree_insert(&tree, &a.node);
	ck_assert(!mmn_itree_empty(&tree));
	ck_assert_uint_eq(count(&tree, 0, 9), 0);
	ck_assert_uint_eq(count(&tree, 21, UINT64_MAX), 0);
	ck_assert_uint_eq(count(&tree, 0, 10), 1);
	ck_assert_uint_eq(count(&tree, 20, 20), 1);
	ck_assert_uint_eq(count(&tree, 15, 15), 1);
	ck_assert_int_eq(mmn_container_of(mmn_itree_iter_first(&tree, 0, 100),
					  struct item, node)->payload, 7);
	mmn_itree_remove(&tree, &a.node);
	ck_assert(mmn_itree_empty(&tree));
}
END_TEST

START_TEST(full_range_and_extremes)
{
	struct mmn_itree tree;
	struct item all, zero, top;

	mmn_itree_init(&tree);
	all.node.start = 0;
	all.node.last = UINT64_MAX;
	zero.node.start = zero.node.last = 0;
	top.node.start = top.node.last = UINT64_MAX;
	mmn_itree_insert(&tree, &all.node);
	mmn_itree_insert(&tree, &zero.node);
	mmn_itree_insert(&tree, &top.node);
	ck_assert_ptr_null(itree_check(&tree));

	ck_assert_uint_eq(count(&tree, 0, 0), 2);
	ck_assert_uint_eq(count(&tree, UINT64_MAX, UINT64_MAX), 2);
	ck_assert_uint_eq(count(&tree, 1, UINT64_MAX - 1), 1);
	ck_assert_uint_eq(count(&tree, 0, UINT64_MAX), 3);
	/* Ascending start: zero and all share start 0, then top. */
	ck_assert_uint_eq(mmn_itree_iter_first(&tree, UINT64_MAX, UINT64_MAX)->start, 0);

	mmn_itree_remove(&tree, &all.node);
	ck_assert_uint_eq(count(&tree, 1, UINT64_MAX - 1), 0);
	mmn_itree_remove(&tree, &zero.node);
	mmn_itree_remove(&tree, &top.node);
	ck_assert(mmn_itree_empty(&tree));
}
END_TEST

START_TEST(duplicates_and_nesting)
{
	enum { N = 100 };
	struct mmn_itree tree;
	struct item dup[N], nest[N];

	mmn_itree_init(&tree);
	for (int i = 0; i < N; i++) {
		dup[i].node.start = 1000;
		dup[i].node.last = 2000;
		mmn_itree_insert(&tree, &dup[i].node);
		/* [i, 2N - i]: each contains the next */
		nest[i].node.start = (uint64_t)i;
		nest[i].node.last = (uint64_t)(2 * N - i);
		mmn_itree_insert(&tree, &nest[i].node);
	}
	ck_assert_ptr_null(itree_check(&tree));
	ck_assert_uint_eq(count(&tree, 1500, 1500), N);
	ck_assert_uint_eq(count(&tree, N, N), N);
	ck_assert_uint_eq(count(&tree, 0, 0), 1);
	ck_assert_uint_eq(count(&tree, 2000, 2000), N);
	for (int i = 0; i < N; i += 2) {
		mmn_itree_remove(&tree, &dup[i].node);
		mmn_itree_remove(&tree, &nest[i].node);
	}
	ck_assert_ptr_null(itree_check(&tree));
	ck_assert_uint_eq(count(&tree, 1500, 1500), N / 2);
	ck_assert_uint_eq(count(&tree, N, N), N / 2);
}
END_TEST

/* ------------------------------------------------------------------------
 * Misuse, in debug builds
 */

static void insert_inverted(void *unused)
{
	struct mmn_itree tree = MMN_ITREE_INIT;
	struct item it = { .node = { .start = 20, .last = 10 } };

	(void)unused;
	mmn_itree_insert(&tree, &it.node);
}

static void remove_twice(void *unused)
{
	struct mmn_itree tree = MMN_ITREE_INIT;
	struct item a = { .node = { .start = 1, .last = 2 } };
	struct item b = { .node = { .start = 3, .last = 4 } };

	(void)unused;
	mmn_itree_insert(&tree, &a.node);
	mmn_itree_insert(&tree, &b.node);
	mmn_itree_remove(&tree, &a.node);
	mmn_itree_remove(&tree, &a.node);
}

static void remove_from_other_tree(void *unused)
{
	struct mmn_itree t1 = MMN_ITREE_INIT, t2 = MMN_ITREE_INIT;
	struct item a = { .node = { .start = 1, .last = 2 } };
	struct item b = { .node = { .start = 3, .last = 4 } };

	(void)unused;
	mmn_itree_insert(&t1, &a.node);
	mmn_itree_insert(&t2, &b.node);
	mmn_itree_remove(&t2, &a.node);
}

START_TEST(debug_misuse_aborts)
{
	static const struct {
		void (*fn)(void *);
		const char *message;
	} cases[] = {
		{ insert_inverted, "mmn_itree_insert: start 0x14 > last 0xa" },
		{ remove_twice, "is not in a tree" },
		{ remove_from_other_tree, "is not in this tree" },
	};
	const char *why = test_expect_abort(cases[_i].fn, NULL, cases[_i].message);

	ck_assert_msg(why == NULL, "%s", why);
}
END_TEST

static Suite *itree_suite(void)
{
	Suite *s = suite_create("itree");
	TCase *tc;

	tc = tcase_create("model");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, random_against_model, 0, 4);
	tcase_add_loop_test(tc, every_removal_of_small_trees, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("edges");
	tcase_add_test(tc, empty_and_single);
	tcase_add_test(tc, full_range_and_extremes);
	tcase_add_test(tc, duplicates_and_nesting);
	suite_add_tcase(s, tc);

#ifdef MMN_DEBUG
	tc = tcase_create("misuse");
	tcase_add_loop_test(tc, debug_misuse_aborts, 0, 3);
	suite_add_tcase(s, tc);
#else
	(void)debug_misuse_aborts;
	printf("check-itree: release build, misuse-abort tests need --enable-debug\n");
#endif
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(itree_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
