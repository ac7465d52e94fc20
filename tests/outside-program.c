/* SPDX-License-Identifier: MIT */
/*
 * Built by 'make installcheck' against the installed header and library
 * only (pkg-config libmmn), as a program outside this tree would be.
 */
#include <mmn/mmn.h>

#include <stdio.h>

struct mapping {
	const char *name;
	struct mmn_itree_node node;
};

int main(void)
{
	static struct mmn_itree tree = MMN_ITREE_INIT;
	struct mapping maps[] = {
		{ "low", { .start = 0x0000, .last = 0x0fff } },
		{ "mid", { .start = 0x1000, .last = 0x1fff } },
		{ "top", { .start = 0xffffffffffff0000ull, .last = UINT64_MAX } },
	};
	const char *want[] = { "mid", "top" };
	struct mmn_itree_node *n;
	unsigned int i = 0;

	for (unsigned int k = 0; k < 3; k++)
		mmn_itree_insert(&tree, &maps[k].node);
	for (n = mmn_itree_iter_first(&tree, 0x1800, UINT64_MAX); n;
	     n = mmn_itree_iter_next(n, 0x1800, UINT64_MAX), i++) {
		const char *name = mmn_container_of(n, struct mapping, node)->name;

		if (i >= 2 || name != want[i]) {
			fprintf(stderr, "outside-program: unexpected node %s\n", name);
			return 1;
		}
	}
	for (unsigned int k = 0; k < 3; k++)
		mmn_itree_remove(&tree, &maps[k].node);
	if (i != 2 || !mmn_itree_empty(&tree)) {
		fprintf(stderr, "outside-program: %u nodes found, tree %s\n", i,
			mmn_itree_empty(&tree) ? "empty" : "not empty");
		return 1;
	}
	printf("outside-program: libmmn %s from the installed tree works\n", mmn_version());
	return 0;
}
