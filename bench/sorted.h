/* SPDX-License-Identifier: MIT */
/*
 * Baseline: closed intervals in an array sorted by start, found by binary
 * search and a linear overlap scan. What a VMM writes when it keeps its
 * memory slots or a device's translations in an array.
 *
 * The overlap scan starts at the first entry whose start is at least
 * (query start - widest span): an entry ending at or after the query's
 * start cannot begin before that. So a query costs one binary search plus
 * the entries in that window, and the widest span is remembered.
 */
#ifndef MMN_BENCH_SORTED_H
#define MMN_BENCH_SORTED_H

#include <stddef.h>
#include <stdint.h>

struct sorted_entry {
	uint64_t start;
	uint64_t last;		/* inclusive */
	void *item;		/* the caller's object */
};

struct sorted_set {
	struct sorted_entry *v;
	size_t n;
	size_t cap;
	uint64_t max_span;	/* largest last - start ever inserted */
};

/* Returns 0 or -ENOMEM. */
int sorted_init(struct sorted_set *s, size_t cap);
void sorted_fini(struct sorted_set *s);

/*
 * Replace the contents with N entries (any order), sorted once: how a
 * large set is built without N inserts. Returns 0 or -ENOMEM.
 */
int sorted_build(struct sorted_set *s, const struct sorted_entry *e, size_t n);

/* Insert after entries with an equal start. Returns 0 or -ENOMEM. */
int sorted_insert(struct sorted_set *s, uint64_t start, uint64_t last, void *item);

/* Remove the entry for ITEM at START. Returns 0 or -ENOENT. */
int sorted_remove(struct sorted_set *s, uint64_t start, void *item);

/*
 * The index of the first entry overlapping [start, last], ascending by
 * start, or s->n when none; sorted_next() gives the following ones.
 */
size_t sorted_first(const struct sorted_set *s, uint64_t start, uint64_t last);
size_t sorted_next(const struct sorted_set *s, size_t i, uint64_t start, uint64_t last);

/* Bytes the array holds per entry, slack included. */
double sorted_bytes_per_entry(const struct sorted_set *s);

#endif /* MMN_BENCH_SORTED_H */
