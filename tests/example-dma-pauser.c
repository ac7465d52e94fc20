/* SPDX-License-Identifier: MIT */
/*
 * The EXAMPLE of mmn_sub_register(3), verbatim below this comment:
 * tests/man-example.sh compares the two, check-example-dma-pauser runs it.
 */

struct dma_pauser {
        struct mmn_sub sub;
        atomic_int changing;       /* invalidations in progress */
};

static int pause_start(struct mmn_sub *sub,
                       const struct mmn_invalidate_desc *desc)
{
        struct dma_pauser *p = mmn_container_of(sub, struct dma_pauser, sub);

        if (!(desc->flags & MMN_INVALIDATE_BLOCKABLE) && device_busy())
                return -EAGAIN;
        atomic_fetch_add(&p->changing, 1);
        device_quiesce();          /* may sleep when blockable */
        return 0;
}

static void pause_end(struct mmn_sub *sub,
                      const struct mmn_invalidate_desc *desc)
{
        struct dma_pauser *p = mmn_container_of(sub, struct dma_pauser, sub);

        (void)desc;
        /* libmmn never sends more ends than starts: never below 0. */
        if (atomic_fetch_sub(&p->changing, 1) == 1)
                device_resume();
}

static struct mmn_sub *pause_alloc(struct mmn_state *state)
{
        struct dma_pauser *p = calloc(1, sizeof(*p));

        (void)state;
        return p ? &p->sub : NULL;
}

static void pause_free(struct mmn_sub *sub)
{
        free(mmn_container_of(sub, struct dma_pauser, sub));
}

static const struct mmn_sub_ops pause_ops = {
        .invalidate_start = pause_start,
        .invalidate_end = pause_end,
        .alloc_sub = pause_alloc,
        .free_sub = pause_free,
};

/* Any number of users share one pauser per state: */
static int dma_with_pauser(struct mmn_state *state, void (*dma)(void))
{
        struct mmn_sub *sub;
        int err = mmn_sub_get(&pause_ops, state, &sub);

        if (err)
                return err;
        dma();                     /* paused around every change */
        return mmn_sub_put(sub);
}
