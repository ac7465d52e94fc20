/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: sequences of interval index operations against a
 * brute-force model, with allocations failing where the input says. After
 * every operation the index's invariants must hold, a failed insert must
 * leave it as it was, and every overlap query must return exactly the
 * model's intervals in order of start, equal starts in insertion order.
 *
 * Input: a sequence of operations, one byte of opcode and its arguments:
 *	insert SLOT START LENGTH   insert-failing SLOT NTH START LENGTH
 *	remove SLOT                query START LENGTH
 * Built with -DMMN_FAULT_INJECTION: mmn_fault_inject() below decides.
 */
#include "fuzz.h"
#include "fault.h"
#include "index.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define SLOTS 255	/* enough for three levels of nodes */

struct slot {
	uint64_t start, last, seq;
	bool in;
};

static unsigned long long ops_done;
static unsigned int fail_countdown;	/* 0: no failure; n: the n-th allocation fails */

__attribute__((destructor)) static void report_ops(void)
{
	if (getenv("FUZZ_REPORT_OPS"))
		fprintf(stderr, "fuzz-index: %llu operations\n", ops_done);
}

bool mmn_fault_inject(const char *site)
{
	if (strcmp(site, "index node") || !fail_countdown || --fail_countdown)
		return false;
	errno = ENOMEM;
	return true;
}

static void check_query(const struct index *idx, struct slot *slots, uint64_t start,
			uint64_t last)
{
	bool seen[SLOTS] = { false };
	unsigned int found = 0, expected = 0;
	const struct slot *prev = NULL;
	struct index_iter it;

	for (struct slot *s = index_iter_first(idx, &it, start, last); s; s = index_iter_next(&it)) {
		size_t i = (size_t)(s - slots);

		FUZZ_ASSERT(i < SLOTS && s->in, "query returned an interval not in the index");
		FUZZ_ASSERT(!seen[i], "query returned slot %zu twice", i);
		FUZZ_ASSERT(s->start <= last && s->last >= start, "[%#llx, %#llx] does not overlap",
			    (unsigned long long)s->start, (unsigned long long)s->last);
		FUZZ_ASSERT(!prev || prev->start < s->start ||
			    (prev->start == s->start && prev->seq < s->seq),
			    "query results out of order");
		prev = s;
		seen[i] = true;
		found++;
	}
	for (size_t i = 0; i < SLOTS; i++)
		if (slots[i].in && slots[i].start <= last && slots[i].last >= start) {
			FUZZ_ASSERT(seen[i], "query [%#llx, %#llx] missed slot %zu",
				    (unsigned long long)start, (unsigned long long)last, i);
			expected++;
		}
	FUZZ_ASSERT(found == expected, "found %u, expected %u", found, expected);
}

static uint64_t last_of(uint64_t start, uint64_t len)
{
	return len > UINT64_MAX - start ? UINT64_MAX : start + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size, 0 };
	struct slot slots[SLOTS];
	struct index idx;
	uint64_t seq = 0;
	const char *why;

	memset(slots, 0, sizeof(slots));
	index_init(&idx);

	while (fuzz_more(&in)) {
		uint8_t op = fuzz_u8(&in);
		struct slot *s = op % 4 != 3 ? &slots[fuzz_u8(&in) % SLOTS] : NULL;
		unsigned int nth = op % 4 == 1 ? 1 + fuzz_u8(&in) % 4 : 0;
		uint64_t start, len;
		int err;

		switch (op % 4) {
		case 0:	/* insert, or remove when the slot is taken */
		case 1:	/* the same with the nth allocation failing */
			start = fuzz_key(&in);
			len = fuzz_key(&in);
			if (s->in) {
				FUZZ_ASSERT(!index_remove(&idx, s->start, s->last, s), "remove failed");
				s->in = false;
				break;
			}
			s->start = start;
			s->last = last_of(start, len);
			fail_countdown = nth;
			{
				size_t count = idx.count, nodes = idx.nodes;

				err = index_insert(&idx, s->start, s->last, s);
				FUZZ_ASSERT(!err || (nth && err == -ENOMEM), "insert: %d", err);
				FUZZ_ASSERT(!err || (idx.count == count && idx.nodes == nodes),
					    "a failed insert changed the index");
			}
			fail_countdown = 0;
			if (!err) {
				s->seq = seq++;
				s->in = true;
			}
			break;
		case 2:	/* remove */
			if (s->in) {
				FUZZ_ASSERT(!index_remove(&idx, s->start, s->last, s), "remove failed");
				s->in = false;
			}
			break;
		default: /* query */
			start = fuzz_key(&in);
			len = fuzz_key(&in);
			check_query(&idx, slots, start, last_of(start, len));
			break;
		}
		ops_done++;
		why = index_check(&idx);
		FUZZ_ASSERT(!why, "index invariant broken: %s", why);
	}

	/* Everything comes back out, and the index is empty after. */
	check_query(&idx, slots, 0, UINT64_MAX);
	for (size_t i = 0; i < SLOTS; i++)
		if (slots[i].in)
			FUZZ_ASSERT(!index_remove(&idx, slots[i].start, slots[i].last, &slots[i]),
				    "final remove failed");
	FUZZ_ASSERT(!idx.root && !idx.nodes, "index not empty after removing everything");
	index_fini(&idx);
	return 0;
}
