/* SPDX-License-Identifier: MIT */
/*
 * The interval index against a brute-force model after every operation,
 * allocation failure at every allocation an insert makes, edge cases, and
 * misuse. Built against libmmn-fault, whose fault_inject() calls
 * mmn_fault_inject() below.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <mmn/mmn.h>

#include "fault.h"
#include "index.h"
#include "testutil.h"

/* Fail the fail_at-th allocation from now on, and only that one. */
static unsigned long allocs_seen, fail_at;

bool mmn_fault_inject(const char *site)
{
	if (strcmp(site, "index node"))
		return false;
	if (++allocs_seen != fail_at)
		return false;
	errno = ENOMEM;
	return true;
}

static void arm(unsigned long n)
{
	allocs_seen = 0;
	fail_at = n;
}

struct item {
	uint64_t start, last;
	uint64_t seq;		/* insertion order: equal starts come out in it */
	bool in;
};

#define NR_ITEMS 2000	/* three levels above the leaves when filled in order */

struct model {
	struct item items[NR_ITEMS];
	uint64_t seq;
	struct index idx;
};

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = *(struct item *const *)a, *y = *(struct item *const *)b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* One query against the model: the same items, in the same order. */
static const char *check_query(struct model *m, uint64_t start, uint64_t last)
{
	static struct item *want[NR_ITEMS];
	struct index_iter it;
	size_t n = 0, k = 0;

	for (size_t i = 0; i < NR_ITEMS; i++)
		if (m->items[i].in && m->items[i].start <= last && m->items[i].last >= start)
			want[n++] = &m->items[i];
	qsort(want, n, sizeof(want[0]), cmp_item);
	for (void *p = index_iter_first(&m->idx, &it, start, last); p; p = index_iter_next(&it)) {
		if (k == n)
			return "an interval too many";
		if (p != want[k++])
			return "another interval or order than the model's";
	}
	return k == n ? NULL : "an interval missing";
}

static void check_all(struct model *m, uint64_t *seed, const char *after)
{
	const char *why = index_check(&m->idx);
	size_t count = 0;

	ck_assert_msg(why == NULL, "after %s: %s", after, why);
	for (size_t i = 0; i < NR_ITEMS; i++)
		count += m->items[i].in;
	ck_assert_uint_eq(m->idx.count, count);
	for (int q = 0; q < 3; q++) {
		uint64_t s, l;

		test_random_interval(seed, &s, &l);
		why = check_query(m, s, l);
		ck_assert_msg(why == NULL, "after %s: query [%#" PRIx64 ", %#" PRIx64 "]: %s",
			      after, s, l, why);
	}
	/* Every interval in it is found by a query of its own start. */
	why = check_query(m, 0, UINT64_MAX);
	ck_assert_msg(why == NULL, "after %s: query of everything: %s", after, why);
}

/*
 * Try to insert item I with the FAIL_NTH-th allocation failing: either it
 * needed fewer and is in (0), or -ENOMEM and the index is as before.
 */
static int try_insert(struct model *m, size_t i, unsigned long fail_nth, uint64_t *seed)
{
	struct item *it = &m->items[i];
	size_t count = m->idx.count, nodes = m->idx.nodes;
	int err;

	arm(fail_nth);
	err = index_insert(&m->idx, it->start, it->last, it);
	arm(0);
	if (err == 0) {
		it->seq = m->seq++;
		it->in = true;
		return 0;
	}
	ck_assert_int_eq(err, -ENOMEM);
	ck_assert_uint_eq(m->idx.count, count);
	ck_assert_uint_eq(m->idx.nodes, nodes);
	check_all(m, seed, "a failed insert");
	return err;
}

/* Insert item I; with FAIL_NTH, a try with that allocation failing first. */
static void model_insert(struct model *m, size_t i, unsigned long fail_nth, uint64_t *seed)
{
	struct item *it = &m->items[i];

	if (fail_nth && try_insert(m, i, fail_nth, seed) == 0)
		return;
	ck_assert_int_eq(index_insert(&m->idx, it->start, it->last, it), 0);
	it->seq = m->seq++;
	it->in = true;
}

START_TEST(random_against_model)
{
	static struct model m;
	uint64_t seed = 0x1d3e5 + (uint64_t)_i;

	memset(&m, 0, sizeof(m));
	index_init(&m.idx);
	for (int op = 0; op < 6000; op++) {
		size_t i = (size_t)test_rand_below(&seed, NR_ITEMS);
		struct item *it = &m.items[i];

		/* Grow to full first, then churn, then drain. */
		if (!it->in && (op < 3000 || test_rand_below(&seed, 2))) {
			test_random_interval(&seed, &it->start, &it->last);
			model_insert(&m, i, test_rand_below(&seed, 4) == 0 ?
				     1 + test_rand_below(&seed, 3) : 0, &seed);
			check_all(&m, &seed, "insert");
		} else if (it->in) {
			ck_assert_int_eq(index_remove(&m.idx, it->start, it->last, it), 0);
			it->in = false;
			check_all(&m, &seed, "remove");
		}
	}
	for (size_t i = 0; i < NR_ITEMS; i++) {
		if (!m.items[i].in)
			continue;
		ck_assert_int_eq(index_remove(&m.idx, m.items[i].start, m.items[i].last,
					      &m.items[i]), 0);
		m.items[i].in = false;
		check_all(&m, &seed, "draining remove");
	}
	ck_assert_ptr_null(m.idx.root);
	ck_assert_uint_eq(m.idx.nodes, 0);
	index_fini(&m.idx);
}
END_TEST

/* Ascending inserts split the rightmost path at every level: fail each allocation. */
START_TEST(allocation_failure_in_every_split)
{
	static struct model m;
	uint64_t seed = 7;
	unsigned long failures = 0;

	memset(&m, 0, sizeof(m));
	index_init(&m.idx);
	for (size_t i = 0; i < NR_ITEMS; i++) {
		m.items[i].start = (uint64_t)i << 12;
		m.items[i].last = m.items[i].start + 0x1fff;
		/* Fail the first, then the second, ... allocation until none is left. */
		for (unsigned long k = 1; try_insert(&m, i, k, &seed); k++)
			failures++;
		if (i % 50 == 0)
			check_all(&m, &seed, "insert");
	}
	ck_assert_uint_ge(m.idx.height, 3);
	/* Each allocation failed once: as many as there are nodes. */
	ck_assert_uint_eq(failures, m.idx.nodes);
	check_all(&m, &seed, "the inserts");
	/* The index never allocates to remove. */
	arm(1);
	for (size_t i = 0; i < NR_ITEMS; i += 2)
		ck_assert_int_eq(index_remove(&m.idx, m.items[i].start, m.items[i].last,
					      &m.items[i]), 0);
	ck_assert_uint_eq(allocs_seen, 0);
	arm(0);
	for (size_t i = 0; i < NR_ITEMS; i += 2)
		m.items[i].in = false;
	check_all(&m, &seed, "the removes");
	index_fini(&m.idx);
	ck_assert_ptr_null(m.idx.root);
}
END_TEST

START_TEST(empty_duplicates_and_extremes)
{
	static struct model m;
	struct index_iter it;
	uint64_t seed = 3;

	memset(&m, 0, sizeof(m));
	index_init(&m.idx);
	ck_assert_ptr_null(index_iter_first(&m.idx, &it, 0, UINT64_MAX));
	ck_assert_ptr_null(index_check(&m.idx));
	/* Many equal starts, over several leaves: insertion order kept. */
	for (size_t i = 0; i < 100; i++) {
		m.items[i].start = i % 2 ? 42 : UINT64_MAX;
		m.items[i].last = i % 3 ? UINT64_MAX : m.items[i].start;
		model_insert(&m, i, 0, &seed);
	}
	check_all(&m, &seed, "duplicates");
	ck_assert_ptr_nonnull(index_iter_first(&m.idx, &it, UINT64_MAX, UINT64_MAX));
	ck_assert_ptr_null(check_query(&m, 43, UINT64_MAX - 1));
	ck_assert_ptr_null(check_query(&m, UINT64_MAX, UINT64_MAX));
	ck_assert_ptr_null(check_query(&m, 0, 41));
	/* Removing from the middle of a run of equal starts. */
	for (size_t i = 1; i < 100; i += 3) {
		ck_assert_int_eq(index_remove(&m.idx, m.items[i].start, m.items[i].last,
					      &m.items[i]), 0);
		m.items[i].in = false;
		check_all(&m, &seed, "remove of a duplicate");
	}
	index_fini(&m.idx);
}
END_TEST

static void remove_missing(void *unused)
{
	struct index idx = INDEX_INIT;
	int a, b;

	(void)unused;
	if (index_insert(&idx, 1, 2, &a))
		abort();
	index_remove(&idx, 1, 2, &b);
}

static void insert_inverted(void *unused)
{
	struct index idx = INDEX_INIT;
	int a;

	(void)unused;
	index_insert(&idx, 20, 10, &a);
}

START_TEST(debug_misuse_aborts)
{
	static const struct {
		void (*fn)(void *);
		const char *message;
	} cases[] = {
		{ insert_inverted, "index_insert: start 0x14 > last 0xa" },
		{ remove_missing, "index_remove: no interval [0x1, 0x2] for this item" },
	};
	const char *why = test_expect_abort(cases[_i].fn, NULL, cases[_i].message);

	ck_assert_msg(why == NULL, "%s", why);
}
END_TEST

START_TEST(release_remove_missing)
{
	struct index idx = INDEX_INIT;
	int a, b;

	ck_assert_int_eq(index_insert(&idx, 1, 2, &a), 0);
	ck_assert_int_eq(index_remove(&idx, 1, 2, &b), -ENOENT);
	ck_assert_int_eq(index_remove(&idx, 1, 3, &a), -ENOENT);
	ck_assert_int_eq(index_remove(&idx, 1, 2, &a), 0);
	ck_assert_int_eq(index_remove(&idx, 1, 2, &a), -ENOENT);
	index_fini(&idx);
}
END_TEST

static Suite *index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *tc;

	tc = tcase_create("model");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, random_against_model, 0, 4);
	tcase_add_test(tc, allocation_failure_in_every_split);
	tcase_add_test(tc, empty_duplicates_and_extremes);
	suite_add_tcase(s, tc);

#ifdef MMN_DEBUG
	tc = tcase_create("misuse");
	tcase_add_loop_test(tc, debug_misuse_aborts, 0, 2);
	suite_add_tcase(s, tc);
	(void)release_remove_missing;
#else
	(void)debug_misuse_aborts;
	tc = tcase_create("misuse");
	tcase_add_test(tc, release_remove_missing);
	suite_add_tcase(s, tc);
#endif
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(index_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
