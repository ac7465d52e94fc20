/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: sequences of interval tree operations against a brute-force
 * model (an array of the intervals that are in the tree). After every
 * operation the red-black and subtree-maximum invariants must hold, and
 * every overlap query must return exactly the intervals the model finds,
 * each once, in order of start.
 *
 * Input: a sequence of operations, one byte of opcode and its arguments:
 *	insert SLOT START LENGTH   remove SLOT   query START LENGTH
 */
#include "fuzz.h"
#include "itree.h"

#include <stdbool.h>
#include <string.h>

#define NODES 32

struct slot {
	struct mmn_itree_node node;
	bool in_tree;
};

/* Operations applied, over the whole run: reported at exit for the docs. */
static unsigned long long ops_done;

__attribute__((destructor)) static void report_ops(void)
{
	if (getenv("FUZZ_REPORT_OPS"))
		fprintf(stderr, "fuzz-itree: %llu operations\n", ops_done);
}

static void check_query(struct mmn_itree *tree, struct slot *slots,
			uint64_t start, uint64_t last)
{
	bool seen[NODES] = { false };
	unsigned int found = 0, expected = 0;
	uint64_t prev_start = 0;

	FUZZ_ASSERT(itree_first_prefetch(tree, start, last) ==
		    mmn_itree_iter_first(tree, start, last),
		    "the prefetching search found another first overlap");
	for (struct mmn_itree_node *n = mmn_itree_iter_first(tree, start, last); n;
	     n = mmn_itree_iter_next(n, start, last)) {
		struct slot *s = mmn_container_of(n, struct slot, node);
		size_t i = (size_t)(s - slots);

		FUZZ_ASSERT(i < NODES && s->in_tree, "query returned a node not in the tree");
		FUZZ_ASSERT(!seen[i], "query returned node %zu twice", i);
		FUZZ_ASSERT(n->start <= last && n->last >= start,
			    "[%#llx, %#llx] does not overlap [%#llx, %#llx]",
			    (unsigned long long)n->start, (unsigned long long)n->last,
			    (unsigned long long)start, (unsigned long long)last);
		FUZZ_ASSERT(n->start >= prev_start, "query results out of order");
		prev_start = n->start;
		seen[i] = true;
		found++;
	}
	for (size_t i = 0; i < NODES; i++)
		if (slots[i].in_tree && slots[i].node.start <= last && slots[i].node.last >= start) {
			FUZZ_ASSERT(seen[i], "query [%#llx, %#llx] missed [%#llx, %#llx]",
				    (unsigned long long)start, (unsigned long long)last,
				    (unsigned long long)slots[i].node.start,
				    (unsigned long long)slots[i].node.last);
			expected++;
		}
	FUZZ_ASSERT(found == expected, "found %u, expected %u", found, expected);
}

/* [start, start + len] clamped at the top of the space. */
static uint64_t last_of(uint64_t start, uint64_t len)
{
	return len > UINT64_MAX - start ? UINT64_MAX : start + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size, 0 };
	struct slot slots[NODES];
	struct mmn_itree tree;
	const char *why;

	memset(slots, 0, sizeof(slots));
	mmn_itree_init(&tree);

	while (fuzz_more(&in)) {
		uint8_t op = fuzz_u8(&in);
		struct slot *s = op % 3 != 2 ? &slots[fuzz_u8(&in) % NODES] : NULL;
		uint64_t start, len;

		switch (op % 3) {
		case 0:	/* insert, or remove when the slot is taken */
			start = fuzz_key(&in);
			len = fuzz_key(&in);
			if (s->in_tree) {
				mmn_itree_remove(&tree, &s->node);
				s->in_tree = false;
				break;
			}
			s->node.start = start;
			s->node.last = last_of(start, len);
			mmn_itree_insert(&tree, &s->node);
			s->in_tree = true;
			break;
		case 1:	/* remove */
			if (s->in_tree) {
				mmn_itree_remove(&tree, &s->node);
				s->in_tree = false;
				FUZZ_ASSERT(!itree_node_linked(&s->node), "removed node still linked");
			}
			break;
		default: /* query */
			start = fuzz_key(&in);
			len = fuzz_key(&in);
			check_query(&tree, slots, start, last_of(start, len));
			break;
		}
		ops_done++;
		why = itree_check(&tree);
		FUZZ_ASSERT(!why, "tree invariant broken: %s", why);
	}

	/* Every node comes back out, and the tree is empty after. */
	check_query(&tree, slots, 0, UINT64_MAX);
	for (size_t i = 0; i < NODES; i++)
		if (slots[i].in_tree)
			mmn_itree_remove(&tree, &slots[i].node);
	FUZZ_ASSERT(mmn_itree_empty(&tree), "tree not empty after removing every node");
	return 0;
}
