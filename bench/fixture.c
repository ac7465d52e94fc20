/* SPDX-License-Identifier: MIT */
/* The subscription fixture: see fixture.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

uint64_t fixture_mmn_hits;

/* The least a subscriber does: stamp, and count instead of dropping. */
static bool fix_invalidate(struct mmn_range_sub *rsub,
			   const struct mmn_invalidate_desc *desc, uint64_t cur_seq)
{
	(void)desc;
	mmn_range_set_seq(rsub, cur_seq);
	mmn_container_of(rsub, struct fix_sub, rsub)->hits++;
	fixture_mmn_hits++;
	return true;
}

const struct mmn_range_sub_ops fixture_ops = { .invalidate = fix_invalidate };

static void fix_drop(void *item)
{
	((struct fix_item *)item)->hits++;
}

static uint64_t sub_start(size_t i)
{
	return (uint64_t)i * 2 * FIX_SPAN;
}

int fixture_init(struct fixture *fx, size_t n)
{
	struct sorted_entry *e;
	uint64_t seed = 0x5eed;
	size_t *order;
	int err;

	memset(fx, 0, sizeof(*fx));
	if (n < 64)
		return -EINVAL;
	fx->n = n;
	fx->subs = calloc(n, sizeof(*fx->subs));
	fx->items = calloc(n, sizeof(*fx->items));
	e = calloc(n, sizeof(*e));
	order = malloc(n * sizeof(*order));
	if (!fx->subs || !fx->items || !e || !order) {
		err = -ENOMEM;
		goto fail;
	}
	err = mmn_state_new(&fx->state);
	if (err)
		goto fail;
	err = rwcache_init(&fx->cache, n);
	if (err)
		goto fail;
	fx->cache_ready = true;
	/* Inserted in a shuffled order, as subscriptions come and go. */
	for (size_t i = 0; i < n; i++)
		e[i] = (struct sorted_entry){ .start = sub_start(i),
					      .last = sub_start(i) + FIX_SPAN - 1,
					      .item = &fx->items[i] };
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)bench_rand_below(&seed, i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (size_t k = 0; k < n && !err; k++)
		err = mmn_range_sub_insert(&fx->subs[order[k]].rsub, fx->state,
					   sub_start(order[k]), FIX_SPAN, &fixture_ops);
	if (!err)
		err = rwcache_build(&fx->cache, e, n);
	if (err)
		goto fail;
	free(order);
	free(e);
	return 0;
fail:
	free(order);
	free(e);
	fixture_fini(fx);
	return err;
}

void fixture_fini(struct fixture *fx)
{
	if (fx->state) {
		for (size_t i = 0; i < fx->n; i++)
			mmn_range_sub_remove(&fx->subs[i].rsub);
		mmn_state_free(fx->state);
	}
	if (fx->cache_ready)
		rwcache_fini(&fx->cache);
	free(fx->subs);
	free(fx->items);
	memset(fx, 0, sizeof(*fx));
}

unsigned int fixture_expected_hits(enum fix_hits kind)
{
	return kind == FIX_HIT_NONE ? 0 : kind == FIX_HIT_ONE ? 1 : 64;
}

void fixture_range(const struct fixture *fx, enum fix_hits kind, uint64_t r,
		   uint64_t *start, uint64_t *end)
{
	switch (kind) {
	case FIX_HIT_NONE:
		*start = sub_start(r % fx->n) + FIX_SPAN + BENCH_PAGE;
		*end = *start + BENCH_PAGE;
		break;
	case FIX_HIT_ONE:
		*start = sub_start(r % fx->n) + BENCH_PAGE;
		*end = *start + BENCH_PAGE;
		break;
	case FIX_HIT_64:
		*start = sub_start(r % (fx->n - 63));
		*end = *start + 63 * 2 * FIX_SPAN + FIX_SPAN;
		break;
	}
}

uint64_t fixture_gap_page(const struct fixture *fx, uint64_t r)
{
	return sub_start(r % fx->n) + FIX_SPAN + 2 * BENCH_PAGE;
}

void fixture_invalidate_mmn(struct fixture *fx, uint64_t start, uint64_t end)
{
	const struct mmn_invalidate_desc desc = {
		.start = start,
		.end = end,
		.event = MMN_EVENT_UNMAP,
		.flags = MMN_INVALIDATE_BLOCKABLE,
	};

	if (mmn_invalidate_start(fx->state, &desc))
		abort();	/* blockable: cannot be refused */
	mmn_invalidate_end(fx->state, &desc);
}

unsigned int fixture_invalidate_rw(struct fixture *fx, uint64_t start, uint64_t end)
{
	return rwcache_invalidate(&fx->cache, start, end - 1, fix_drop);
}
