/* SPDX-License-Identifier: MIT */
/* Baseline 3: a sorted array of intervals. See sorted.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sorted.h"

int sorted_init(struct sorted_set *s, size_t cap)
{
	memset(s, 0, sizeof(*s));
	if (cap == 0)
		cap = 16;
	s->v = malloc(cap * sizeof(*s->v));
	if (!s->v)
		return -ENOMEM;
	s->cap = cap;
	return 0;
}

void sorted_fini(struct sorted_set *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int grow(struct sorted_set *s, size_t want)
{
	struct sorted_entry *v;
	size_t cap = s->cap;

	if (want <= cap)
		return 0;
	while (cap < want)
		cap *= 2;
	v = realloc(s->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->cap = cap;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct sorted_entry *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

int sorted_build(struct sorted_set *s, const struct sorted_entry *e, size_t n)
{
	int err = grow(s, n);

	if (err)
		return err;
	memcpy(s->v, e, n * sizeof(*e));
	qsort(s->v, n, sizeof(*e), entry_cmp);
	s->n = n;
	s->max_span = 0;
	for (size_t i = 0; i < n; i++)
		if (e[i].last - e[i].start > s->max_span)
			s->max_span = e[i].last - e[i].start;
	return 0;
}

/* The first index whose start is >= KEY (or > KEY when AFTER_EQUAL). */
static size_t lower_bound(const struct sorted_set *s, uint64_t key, int after_equal)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t st = s->v[mid].start;

		if (st < key || (after_equal && st == key))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int sorted_insert(struct sorted_set *s, uint64_t start, uint64_t last, void *item)
{
	size_t i;
	int err = grow(s, s->n + 1);

	if (err)
		return err;
	i = lower_bound(s, start, 1);
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	s->v[i] = (struct sorted_entry){ .start = start, .last = last, .item = item };
	s->n++;
	if (last - start > s->max_span)
		s->max_span = last - start;
	return 0;
}

int sorted_remove(struct sorted_set *s, uint64_t start, void *item)
{
	for (size_t i = lower_bound(s, start, 0); i < s->n && s->v[i].start == start; i++) {
		if (s->v[i].item != item)
			continue;
		memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
		s->n--;
		return 0;
	}
	return -ENOENT;
}

size_t sorted_next(const struct sorted_set *s, size_t i, uint64_t start, uint64_t last)
{
	for (; i < s->n && s->v[i].start <= last; i++)
		if (s->v[i].last >= start)
			return i;
	return s->n;
}

size_t sorted_first(const struct sorted_set *s, uint64_t start, uint64_t last)
{
	uint64_t from = start > s->max_span ? start - s->max_span : 0;

	return sorted_next(s, lower_bound(s, from, 0), start, last);
}

double sorted_bytes_per_entry(const struct sorted_set *s)
{
	return s->n ? (double)(s->cap * sizeof(*s->v)) / (double)s->n : 0;
}
