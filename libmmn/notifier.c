/* SPDX-License-Identifier: MIT */
/*
 * Address spaces, range and whole-space subscriptions, and the
 * invalidation sequence protocol.
 *
 * THE PROTOCOL
 *
 * A reader (a VMM's fault path, a device worker filling a translation
 * cache) wants to compute something from memory in a range and install it
 * into a cache, without ever installing a value that an invalidation has
 * since made stale. It does
 *
 *	again:
 *		seq = mmn_range_read_begin(rsub);
 *		value = translate(memory);		no lock held
 *		lock(cache);
 *		if (mmn_range_read_retry(rsub, seq)) {
 *			unlock(cache);
 *			goto again;
 *		}
 *		install(value);
 *		unlock(cache);
 *
 * and the subscription's ->invalidate() takes the same cache lock, calls
 * mmn_range_set_seq(rsub, cur_seq) and drops what the cache holds.
 *
 * The state keeps one sequence number, seq. Its parity says whether an
 * invalidation that hit the tree is running: it becomes odd when the first
 * running invalidation finds a subscription, and even again only when the
 * last running invalidation ends. Many invalidations may run at once; the
 * state counts them in 'active'. Each subscription keeps the odd seq of the
 * last invalidation that hit it, so read_retry() is one comparison.
 *
 * Why read_retry() must answer true in this interleaving:
 *
 *	reader					invalidator
 *	seq = read_begin(rsub)   [R]
 *						start: seq := S (odd)
 *	value = translate(memory)
 *						->invalidate(): lock(cache)
 *						  set_seq(rsub, S), drop
 *						  unlock(cache)
 *						change memory
 *	lock(cache)
 *	read_retry(rsub, R): S != R -> retry
 *
 * Had the reader taken the cache lock before ->invalidate() did, it would
 * have installed a value computed from unchanged memory, and ->invalidate()
 * would then have dropped it: memory changes only after every callback has
 * returned. Either way no stale value survives.
 *
 * read_begin() must not return while an invalidation that already hit the
 * subscription runs, or the reader would compute from memory that is being
 * changed and find no collision later (set_seq() already happened). It
 * detects this as rsub->invalidate_seq == state->seq (the subscription was
 * stamped by the invalidation that is still running) and waits until seq
 * moves on, which happens only once every running invalidation has ended.
 *
 * The read side takes no lock. read_begin() loads rsub->invalidate_seq and
 * then state->seq, both with acquire. If it sees the stamp S, the acquire
 * pairs with set_seq()'s release, which came after the store of S to
 * state->seq, so the second load sees S or later; it never misses a running
 * invalidation that hit the subscription. If it sees an older stamp, the
 * invalidation (if any) has not called ->invalidate() on it yet, and the
 * interleaving above applies. When the wait ends, state->seq was stored
 * with release after the memory change, so the reader sees new memory.
 *
 * THE TREE AND THE DEFERRED LIST
 *
 * Invalidations walk the interval tree and call callbacks without holding
 * the state's lock (callbacks may sleep). The tree therefore changes only
 * while seq is even: nobody walks it then. Inserts and removes that arrive
 * while seq is odd go onto the deferred list and are applied, under the
 * lock, by the invalidation that ends last, before seq becomes even. Like
 * rtnl_unlock() running the work queued while the lock was held. The list
 * costs the subscription no field: a pending insert is in no tree, so its
 * node's left pointer links it; a pending remove waits, so its entry lives
 * on the remover's stack.
 *
 * An insert while invalidations run but none hit the tree (seq even,
 * active > 0) goes straight into the tree, but makes seq odd and stamps the
 * new subscription with it: those running invalidations may be changing
 * memory in its range, and its first read_begin() must wait for them.
 *
 * A remove while seq is odd defers, then waits for seq to move on. seq is
 * advanced only after the deferred list has been applied, so that when the
 * remover wakes, libmmn holds no pointer to the subscription any more.
 * (Advancing seq first and applying the list afterwards lets the remover
 * free the subscription under the feet of the list walk.)
 *
 * WHOLE-SPACE SUBSCRIPTIONS
 *
 * They sit on a list guarded by a writer-preferring rwlock: invalidations
 * hold it for reading while they call the callbacks, register and
 * unregister hold it for writing, so that when unregister returns no
 * callback runs or can run again. A count of them lets invalidations skip
 * the rwlock when there are none.
 */
#include "fault.h"
#include "itree.h"
#include "notifier.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CACHELINE 64

struct mmn_state {
	/*
	 * seq: odd while an invalidation that hit the tree runs. Written with
	 * release under 'lock'; read lock-free (acquire) by read_begin.
	 * Alone on its cache line: readers load it on every read_begin,
	 * and nothing they load should share a line with the lock.
	 */
	_Alignas(CACHELINE) uint64_t seq;

	_Alignas(CACHELINE) pthread_mutex_t lock;
	pthread_cond_t seq_changed;		/* waits for seq to move on */
	unsigned long seq_waiters;		/* lock */
	unsigned long active;			/* lock: running invalidations */
	struct mmn_itree itree;			/* lock; changes only while seq is even */
	struct mmn_range_sub *deferred_ins;	/* lock; linked through node.left */
	struct deferred_remove *deferred_rm;	/* lock; records on removers' stacks */
	uint64_t nr_range_subs;			/* lock */
	uint64_t begun;				/* lock: range sides begun */
	uint64_t ended;				/* lock */
	uint64_t read_waits;			/* lock */
	uint64_t deferred_inserts;		/* lock */
	uint64_t deferred_removes;		/* lock */

	uint64_t refused;			/* atomic: non-blockable -EAGAIN */
	uint64_t blockable_refusals;		/* atomic: callback bugs */

	pthread_rwlock_t subs_lock;		/* whole-space list, see above */
	struct mmn_sub subs;			/* subs_lock: list head */
	unsigned long nr_subs;			/* atomic; written under subs_lock */
};

/*
 * A remove deferred while seq is odd. The remover waits until the list has
 * been applied, so the record lives on its stack and the subscription
 * needs no list field of its own.
 */
struct deferred_remove {
	struct mmn_range_sub *rsub;
	struct deferred_remove *next;
};

/* A deferred insert is in no tree: its node's left pointer links the list. */
static struct mmn_range_sub *deferred_ins_next(const struct mmn_range_sub *rsub)
{
	return rsub->node.left ? mmn_container_of(rsub->node.left, struct mmn_range_sub, node)
			       : NULL;
}

/*
 * The one place where a half-open [start, end) becomes the tree's closed
 * [start, last]. end == 0 stands for 2^64, and then last is UINT64_MAX.
 */
static inline uint64_t range_last(uint64_t end)
{
	return end - 1;
}

static inline uint64_t seq_load(const struct mmn_state *state)
{
	return __atomic_load_n(&state->seq, __ATOMIC_ACQUIRE);
}

/* Called with state->lock held. Pairs with the acquire in read_begin. */
static inline void seq_store(struct mmn_state *state, uint64_t seq)
{
	__atomic_store_n(&state->seq, seq, __ATOMIC_RELEASE);
}

static inline bool seq_invalidating(uint64_t seq)
{
	return seq & 1;
}

static inline void stat_inc(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------------
 * Debug builds: which states' callbacks this thread is running, so that
 * calls that would deadlock or break the protocol from a callback abort.
 */
#ifdef MMN_DEBUG
#define CB_NEST_MAX 16
static __thread const struct mmn_state *cb_states[CB_NEST_MAX];
static __thread unsigned int cb_depth;

static void cb_enter(const struct mmn_state *state)
{
	MMN_BUG_ON(cb_depth >= CB_NEST_MAX,
		   "callbacks nested more than %d deep", CB_NEST_MAX);
	cb_states[cb_depth++] = state;
}

static void cb_leave(void)
{
	cb_depth--;
}

static bool in_callback_of(const struct mmn_state *state)
{
	for (unsigned int i = 0; i < cb_depth; i++)
		if (cb_states[i] == state)
			return true;
	return false;
}
#else
static inline void cb_enter(const struct mmn_state *state) { (void)state; }
static inline void cb_leave(void) { }
static inline bool in_callback_of(const struct mmn_state *state) { (void)state; return false; }
#endif

#define BUG_IN_CALLBACK(state, what)					\
	MMN_BUG_ON(in_callback_of(state),				\
		   "%s called from a callback of the same state: it would deadlock", what)

void state_lock(struct mmn_state *state)
{
	pthread_mutex_lock(&state->lock);
}

void state_unlock(struct mmn_state *state)
{
	pthread_mutex_unlock(&state->lock);
}

/* With state->lock held: sleep until seq is no longer SEQ. */
static void wait_seq_change_locked(struct mmn_state *state, uint64_t seq)
{
	state->seq_waiters++;
	while (__atomic_load_n(&state->seq, __ATOMIC_RELAXED) == seq)
		pthread_cond_wait(&state->seq_changed, &state->lock);
	state->seq_waiters--;
}

/* ------------------------------------------------------------------------
 * State
 */

MMN_EXPORT int mmn_state_new(struct mmn_state **statep)
{
	struct mmn_state *state;
	pthread_rwlockattr_t attr;
	int err;

	if (!statep)
		return -EINVAL;
	if (fault_inject("posix_memalign") ||
	    posix_memalign((void **)&state, CACHELINE, sizeof(*state)))
		return -ENOMEM;
	memset(state, 0, sizeof(*state));

	/* Even: nothing invalidating. 2 so that insert's seq - 1 stays odd. */
	state->seq = 2;
	mmn_itree_init(&state->itree);
	state->subs.next = state->subs.prev = &state->subs;

	err = fault_inject("pthread_mutex_init") ? errno : pthread_mutex_init(&state->lock, NULL);
	if (err)
		goto fail_mutex;
	err = fault_inject("pthread_cond_init") ? errno : pthread_cond_init(&state->seq_changed, NULL);
	if (err)
		goto fail_cond;
	err = fault_inject("pthread_rwlockattr_init") ? errno : pthread_rwlockattr_init(&attr);
	if (err)
		goto fail_attr;
	/* Writers (register, unregister) must not starve under a storm. */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	err = fault_inject("pthread_rwlock_init") ? errno :
	      pthread_rwlock_init(&state->subs_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (err)
		goto fail_attr;

	*statep = state;
	return 0;

fail_attr:
	pthread_cond_destroy(&state->seq_changed);
fail_cond:
	pthread_mutex_destroy(&state->lock);
fail_mutex:
	free(state);
	return -err;
}

/* Detach every range subscription so that a later remove is a no-op. */
static void detach_range_subs(struct mmn_state *state)
{
	struct mmn_itree_node *node;

	for (node = mmn_itree_iter_first(&state->itree, 0, UINT64_MAX); node;
	     node = mmn_itree_iter_next(node, 0, UINT64_MAX))
		mmn_container_of(node, struct mmn_range_sub, node)->state = NULL;
	mmn_itree_init(&state->itree);
	state->nr_range_subs = 0;
}

MMN_EXPORT void mmn_state_free(struct mmn_state *state)
{
	const struct mmn_invalidate_desc release = {
		.start = 0,
		.end = 0,	/* 2^64: everything */
		.event = MMN_EVENT_RELEASE,
		.flags = MMN_INVALIDATE_BLOCKABLE,
	};
	struct mmn_sub *sub;

	if (!state)
		return;
	BUG_IN_CALLBACK(state, "mmn_state_free");
	MMN_BUG_ON(state->active, "mmn_state_free: %lu invalidations still running",
		   state->active);

	/*
	 * Range subscriptions hear RELEASE like any invalidation. Whole-space
	 * ones get ->release() instead, below, so keep them out of it.
	 */
	pthread_rwlock_wrlock(&state->subs_lock);
	struct mmn_sub *first = state->subs.next, *last = state->subs.prev;
	unsigned long nr_subs = state->nr_subs;
	state->subs.next = state->subs.prev = &state->subs;
	__atomic_store_n(&state->nr_subs, 0, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&state->subs_lock);

	if (mmn_invalidate_start(state, &release) == 0)
		mmn_invalidate_end(state, &release);

	state_lock(state);
	MMN_BUG_ON(state->deferred_ins || state->deferred_rm,
		   "mmn_state_free: deferred operations left after the last invalidation");
	detach_range_subs(state);
	state_unlock(state);

	/* ->release() may drop the last reference: read next first. */
	if (nr_subs) {
		last->next = NULL;
		for (sub = first; sub; ) {
			struct mmn_sub *next = sub->next;

			sub->state = NULL;
			sub->next = sub->prev = sub;
			if (sub->ops->release) {
				cb_enter(state);
				sub->ops->release(sub, state);
				cb_leave();
			}
			sub = next;
		}
	}

	pthread_rwlock_destroy(&state->subs_lock);
	pthread_cond_destroy(&state->seq_changed);
	pthread_mutex_destroy(&state->lock);
	free(state);
}

MMN_EXPORT int mmn_state_stats(struct mmn_state *state, struct mmn_stats *stats)
{
	struct mmn_stats s;
	size_t size;

	if (!state || !stats || stats->size < sizeof(stats->size))
		return -EINVAL;
	size = stats->size < sizeof(s) ? stats->size : sizeof(s);

	memset(&s, 0, sizeof(s));
	state_lock(state);
	s.invalidations_refused = __atomic_load_n(&state->refused, __ATOMIC_RELAXED);
	/* Every refusal also began; at rest started == ended. */
	s.invalidations_started = state->begun - s.invalidations_refused;
	s.invalidations_ended = state->ended;
	s.read_begin_waits = state->read_waits;
	s.deferred_inserts = state->deferred_inserts;
	s.deferred_removes = state->deferred_removes;
	s.range_subs = state->nr_range_subs;
	s.active_invalidations = state->active;
	state_unlock(state);
	s.blockable_refusals = __atomic_load_n(&state->blockable_refusals, __ATOMIC_RELAXED);
	s.subs = __atomic_load_n(&state->nr_subs, __ATOMIC_RELAXED);
	s.size = size;

	memcpy(stats, &s, size);
	return 0;
}

/* ------------------------------------------------------------------------
 * Invalidation, range side
 */

/*
 * Count a new invalidation and find the first subscription it hits. When
 * there is one, make seq odd: from here until the last invalidation ends,
 * the tree does not change and can be walked without the lock.
 */
static struct mmn_itree_node *range_begin(struct mmn_state *state,
					  uint64_t start, uint64_t last,
					  uint64_t *cur_seq)
{
	struct mmn_itree_node *node;

	state_lock(state);
	state->active++;
	state->begun++;
	node = mmn_itree_iter_first(&state->itree, start, last);
	if (node && !seq_invalidating(state->seq))
		seq_store(state, state->seq + 1);
	*cur_seq = state->seq;
	state_unlock(state);
	return node;
}

/* Apply the inserts and removes that arrived while seq was odd. */
static void apply_deferred_locked(struct mmn_state *state)
{
	struct mmn_range_sub *rsub, *next;

	for (struct deferred_remove *rm = state->deferred_rm; rm; rm = rm->next)
		mmn_itree_remove(&state->itree, &rm->rsub->node);
	state->deferred_rm = NULL;
	for (rsub = state->deferred_ins; rsub; rsub = next) {
		next = deferred_ins_next(rsub);
		mmn_itree_insert(&state->itree, &rsub->node);
	}
	state->deferred_ins = NULL;
}

/*
 * One invalidation is over. The last one applies the deferred list and
 * only then advances seq (see the essay: removers free on that signal).
 */
static void range_end(struct mmn_state *state, bool completed)
{
	bool wake = false;

	state_lock(state);
	MMN_BUG_ON(state->active == 0,
		   "mmn_invalidate_end without a matching mmn_invalidate_start");
	if (completed)
		state->ended++;
	if (--state->active == 0 && seq_invalidating(state->seq)) {
		apply_deferred_locked(state);
		seq_store(state, state->seq + 1);
		wake = state->seq_waiters != 0;
	}
	state_unlock(state);
	if (wake)
		pthread_cond_broadcast(&state->seq_changed);
}

/* Call ->invalidate() on every subscription overlapping the desc. */
static int range_invalidate(struct mmn_state *state,
			    const struct mmn_invalidate_desc *desc)
{
	const bool blockable = desc->flags & MMN_INVALIDATE_BLOCKABLE;
	const uint64_t last = range_last(desc->end);
	struct mmn_itree_node *node;
	uint64_t cur_seq;

	for (node = range_begin(state, desc->start, last, &cur_seq); node;
	     node = mmn_itree_iter_next(node, desc->start, last)) {
		struct mmn_range_sub *rsub =
			mmn_container_of(node, struct mmn_range_sub, node);
		bool ok;

		cb_enter(state);
		ok = rsub->ops->invalidate(rsub, desc, cur_seq);
		cb_leave();

		if (unlikely(!ok)) {
			if (!blockable) {
				range_end(state, false);
				return -EAGAIN;
			}
			stat_inc(&state->blockable_refusals);
			MMN_BUG_ON(true, "->invalidate() of the subscription at "
				   "[%#llx, %#llx] refused a blockable invalidation",
				   (unsigned long long)node->start,
				   (unsigned long long)node->last);
			continue;
		}
		MMN_BUG_ON(__atomic_load_n(&rsub->invalidate_seq, __ATOMIC_RELAXED) != cur_seq,
			   "->invalidate() of the subscription at [%#llx, %#llx] "
			   "returned true without calling mmn_range_set_seq()",
			   (unsigned long long)node->start,
			   (unsigned long long)node->last);
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Invalidation, whole-space side
 */

/* Call ->invalidate_end() on the subscriptions from the first to STOP. */
static void subs_end_until(struct mmn_state *state, struct mmn_sub *stop,
			   const struct mmn_invalidate_desc *desc)
{
	struct mmn_sub *sub;

	for (sub = state->subs.next; sub != stop; sub = sub->next) {
		if (!sub->ops->invalidate_end)
			continue;
		cb_enter(state);
		sub->ops->invalidate_end(sub, desc);
		cb_leave();
	}
}

static int subs_invalidate_start(struct mmn_state *state,
				 const struct mmn_invalidate_desc *desc)
{
	const bool blockable = desc->flags & MMN_INVALIDATE_BLOCKABLE;
	struct mmn_sub *sub;
	int ret = 0;

	if (__atomic_load_n(&state->nr_subs, __ATOMIC_RELAXED) == 0)
		return 0;

	/*
	 * The rwlock prefers writers: a pending register or unregister, itself
	 * waiting for blockable callbacks, would make us wait. Refuse instead.
	 */
	if (blockable)
		pthread_rwlock_rdlock(&state->subs_lock);
	else if (pthread_rwlock_tryrdlock(&state->subs_lock))
		return -EAGAIN;
	for (sub = state->subs.next; sub != &state->subs; sub = sub->next) {
		if (!sub->ops->invalidate_start)
			continue;
		cb_enter(state);
		ret = sub->ops->invalidate_start(sub, desc);
		cb_leave();
		if (likely(ret == 0))
			continue;
		if (!blockable) {
			/* Undo: those before SUB accepted and must hear the end. */
			subs_end_until(state, sub, desc);
			break;
		}
		stat_inc(&state->blockable_refusals);
		MMN_BUG_ON(true, "->invalidate_start() returned %d for a blockable invalidation",
			   ret);
		ret = 0;
	}
	pthread_rwlock_unlock(&state->subs_lock);
	return ret ? -EAGAIN : 0;
}

static void subs_invalidate_end(struct mmn_state *state,
				const struct mmn_invalidate_desc *desc)
{
	if (__atomic_load_n(&state->nr_subs, __ATOMIC_RELAXED) == 0)
		return;
	pthread_rwlock_rdlock(&state->subs_lock);
	subs_end_until(state, &state->subs, desc);
	pthread_rwlock_unlock(&state->subs_lock);
}

/* ------------------------------------------------------------------------
 * Invalidation, public
 */

#define KNOWN_FLAGS (MMN_INVALIDATE_BLOCKABLE | MMN_INVALIDATE_AFTER)

static bool desc_valid(const struct mmn_invalidate_desc *desc)
{
	return (desc->end == 0 || desc->end > desc->start) &&
	       (unsigned int)desc->event < MMN_EVENT_COUNT &&
	       !(desc->flags & ~KNOWN_FLAGS);
}

MMN_EXPORT int mmn_invalidate_start(struct mmn_state *state,
				    const struct mmn_invalidate_desc *desc)
{
	int ret;

	if (!state || !desc || !desc_valid(desc))
		return -EINVAL;
	BUG_IN_CALLBACK(state, "mmn_invalidate_start");

	ret = range_invalidate(state, desc);
	if (ret == 0) {
		ret = subs_invalidate_start(state, desc);
		if (ret)
			range_end(state, false);
	}
	if (ret)
		stat_inc(&state->refused);
	return ret;
}

MMN_EXPORT void mmn_invalidate_end(struct mmn_state *state,
				   const struct mmn_invalidate_desc *desc)
{
	if (!state || !desc)
		return;
	BUG_IN_CALLBACK(state, "mmn_invalidate_end");

	subs_invalidate_end(state, desc);
	range_end(state, true);
}

/* ------------------------------------------------------------------------
 * Range subscriptions
 */

MMN_EXPORT int mmn_range_sub_insert(struct mmn_range_sub *rsub,
				    struct mmn_state *state,
				    uint64_t start, uint64_t length,
				    const struct mmn_range_sub_ops *ops)
{
	if (!rsub || !state || !ops || !ops->invalidate)
		return -EINVAL;
	/* A range may end exactly at 2^64; the closed form keeps that exact. */
	if (length == 0 || length - 1 > UINT64_MAX - start)
		return -EOVERFLOW;
	BUG_IN_CALLBACK(state, "mmn_range_sub_insert");

	rsub->node.start = start;
	rsub->node.last = start + (length - 1);
	rsub->state = state;
	rsub->ops = ops;
	itree_node_clear(&rsub->node);

	state_lock(state);
	if (state->active) {
		/*
		 * Running invalidations may be changing this range: stamp the
		 * subscription with the odd seq so its first read_begin waits.
		 */
		if (seq_invalidating(state->seq)) {
			rsub->node.left = state->deferred_ins ? &state->deferred_ins->node : NULL;
			state->deferred_ins = rsub;
			state->deferred_inserts++;
		} else {
			seq_store(state, state->seq + 1);
			mmn_itree_insert(&state->itree, &rsub->node);
		}
		__atomic_store_n(&rsub->invalidate_seq, state->seq, __ATOMIC_RELAXED);
	} else {
		/* Odd and older than any seq to come: read_begin never waits. */
		__atomic_store_n(&rsub->invalidate_seq, state->seq - 1, __ATOMIC_RELAXED);
		mmn_itree_insert(&state->itree, &rsub->node);
	}
	state->nr_range_subs++;
	state_unlock(state);
	return 0;
}

/* Cancel a pending insert. The list is short: it only lives while seq is odd. */
static bool deferred_unlink_locked(struct mmn_state *state, struct mmn_range_sub *rsub)
{
	struct mmn_range_sub *prev = NULL;

	for (struct mmn_range_sub *r = state->deferred_ins; r; prev = r, r = deferred_ins_next(r)) {
		if (r != rsub)
			continue;
		if (prev)
			prev->node.left = rsub->node.left;
		else
			state->deferred_ins = deferred_ins_next(rsub);
		rsub->node.left = NULL;
		return true;
	}
	return false;
}

static bool remove_pending_locked(const struct mmn_state *state,
				  const struct mmn_range_sub *rsub)
{
	for (const struct deferred_remove *rm = state->deferred_rm; rm; rm = rm->next)
		if (rm->rsub == rsub)
			return true;
	return false;
}

MMN_EXPORT void mmn_range_sub_remove(struct mmn_range_sub *rsub)
{
	struct mmn_state *state = rsub ? rsub->state : NULL;
	struct deferred_remove rm = { .rsub = rsub };
	uint64_t wait_for = 0;

	if (!state)
		return;	/* never inserted, or detached by mmn_state_free() */
	BUG_IN_CALLBACK(state, "mmn_range_sub_remove");

	state_lock(state);
	MMN_BUG_ON(remove_pending_locked(state, rsub),
		   "mmn_range_sub_remove: subscription at [%#llx, %#llx] is already being removed",
		   (unsigned long long)rsub->node.start, (unsigned long long)rsub->node.last);
	if (seq_invalidating(state->seq)) {
		if (!itree_node_linked(&rsub->node)) {
			bool found = deferred_unlink_locked(state, rsub);

			MMN_BUG_ON(!found, "mmn_range_sub_remove: subscription at "
				   "[%#llx, %#llx] is not inserted",
				   (unsigned long long)rsub->node.start,
				   (unsigned long long)rsub->node.last);
			(void)found;
		} else {
			/* Walkers may hold it: defer, then wait for the last end. */
			rm.next = state->deferred_rm;
			state->deferred_rm = &rm;
			state->deferred_removes++;
			wait_for = state->seq;
		}
	} else {
		MMN_BUG_ON(!itree_node_linked(&rsub->node),
			   "mmn_range_sub_remove: subscription at [%#llx, %#llx] is not inserted",
			   (unsigned long long)rsub->node.start,
			   (unsigned long long)rsub->node.last);
		mmn_itree_remove(&state->itree, &rsub->node);
	}
	state->nr_range_subs--;
	if (wait_for)
		wait_seq_change_locked(state, wait_for);
	rsub->state = NULL;
	state_unlock(state);
}

static uint64_t read_begin_wait(struct mmn_state *state, uint64_t seq)
{
	state_lock(state);
	state->read_waits++;
	wait_seq_change_locked(state, seq);
	state_unlock(state);
	return seq;
}

MMN_EXPORT uint64_t mmn_range_read_begin(struct mmn_range_sub *rsub)
{
	struct mmn_state *state = rsub->state;
	uint64_t seq;
	bool running;

	MMN_BUG_ON(!state, "mmn_range_read_begin: subscription is not inserted");
	BUG_IN_CALLBACK(state, "mmn_range_read_begin");

#ifdef MMN_BENCH_LOCKED_READ_BEGIN
	/*
	 * Benchmark baseline only, never defined for libmmn itself (see
	 * bench/Makemodule.am): load both sequences under the state's lock,
	 * as the kernel's read side does, to show what lock-free buys.
	 */
	state_lock(state);
#endif
	/* Pairs with the release in mmn_range_set_seq(); see the essay. */
	seq = __atomic_load_n(&rsub->invalidate_seq, __ATOMIC_ACQUIRE);
	running = seq == seq_load(state);
#ifdef MMN_BENCH_LOCKED_READ_BEGIN
	state_unlock(state);
#endif
	if (likely(!running))
		return seq;
	/* An invalidation that hit RSUB (or predates it) is still running. */
	return read_begin_wait(state, seq);
}

/* ------------------------------------------------------------------------
 * Whole-space subscriptions
 */

static bool sub_listed_locked(struct mmn_state *state, const struct mmn_sub *sub)
{
	for (const struct mmn_sub *s = state->subs.next; s != &state->subs; s = s->next)
		if (s == sub)
			return true;
	return false;
}

static void sub_link_locked(struct mmn_state *state, struct mmn_sub *sub)
{
	sub->state = state;
	sub->prev = state->subs.prev;
	sub->next = &state->subs;
	state->subs.prev->next = sub;
	state->subs.prev = sub;
	__atomic_store_n(&state->nr_subs, state->nr_subs + 1, __ATOMIC_RELAXED);
}

static void sub_unlink_locked(struct mmn_state *state, struct mmn_sub *sub)
{
	sub->prev->next = sub->next;
	sub->next->prev = sub->prev;
	sub->next = sub->prev = sub;
	sub->state = NULL;
	__atomic_store_n(&state->nr_subs, state->nr_subs - 1, __ATOMIC_RELAXED);
}

MMN_EXPORT int mmn_sub_register(struct mmn_sub *sub, struct mmn_state *state)
{
	int ret = 0;

	if (!sub || !state || !sub->ops)
		return -EINVAL;
	BUG_IN_CALLBACK(state, "mmn_sub_register");

	pthread_rwlock_wrlock(&state->subs_lock);
	if (sub_listed_locked(state, sub)) {
		ret = -EBUSY;
	} else {
		sub->refs = 0;
		sub_link_locked(state, sub);
	}
	pthread_rwlock_unlock(&state->subs_lock);
	return ret;
}

MMN_EXPORT void mmn_sub_unregister(struct mmn_sub *sub, struct mmn_state *state)
{
	if (!sub || !state)
		return;
	BUG_IN_CALLBACK(state, "mmn_sub_unregister");

	/* Taking the lock for writing waits out every running callback. */
	pthread_rwlock_wrlock(&state->subs_lock);
	if (sub_listed_locked(state, sub))
		sub_unlink_locked(state, sub);
	else
		MMN_BUG_ON(sub->state != NULL,
			   "mmn_sub_unregister: subscription is registered with another state");
	pthread_rwlock_unlock(&state->subs_lock);
}

MMN_EXPORT int mmn_sub_get(const struct mmn_sub_ops *ops, struct mmn_state *state,
			   struct mmn_sub **subp)
{
	struct mmn_sub *sub;
	int ret = 0;

	if (!ops || !state || !subp || !ops->alloc_sub || !ops->free_sub)
		return -EINVAL;
	BUG_IN_CALLBACK(state, "mmn_sub_get");

	pthread_rwlock_wrlock(&state->subs_lock);
	for (sub = state->subs.next; sub != &state->subs; sub = sub->next)
		if (sub->ops == ops && sub->refs > 0)
			break;
	if (sub != &state->subs) {
		sub->refs++;
	} else {
		/* alloc_sub runs under subs_lock: it must not call into STATE. */
		sub = ops->alloc_sub(state);
		if (sub) {
			sub->ops = ops;
			sub->refs = 1;
			sub_link_locked(state, sub);
		} else {
			ret = -ENOMEM;
		}
	}
	pthread_rwlock_unlock(&state->subs_lock);
	if (ret == 0)
		*subp = sub;
	return ret;
}

MMN_EXPORT void mmn_sub_put(struct mmn_sub *sub)
{
	struct mmn_state *state;
	bool last;

	if (!sub)
		return;
	state = sub->state;
	if (!state) {
		/* Released by mmn_state_free(): only the count is left, and no lock. */
		unsigned long refs = __atomic_sub_fetch(&sub->refs, 1, __ATOMIC_ACQ_REL);

		MMN_BUG_ON(refs == ULONG_MAX, "mmn_sub_put: no reference held");
		if (refs == 0)
			sub->ops->free_sub(sub);
		return;
	}
	BUG_IN_CALLBACK(state, "mmn_sub_put");

	pthread_rwlock_wrlock(&state->subs_lock);
	MMN_BUG_ON(sub->refs == 0, "mmn_sub_put: no reference held (registered with "
		   "mmn_sub_register, or put too often)");
	last = --sub->refs == 0;
	if (last)
		sub_unlink_locked(state, sub);
	pthread_rwlock_unlock(&state->subs_lock);
	/* The write lock waited out every callback; none can start now. */
	if (last)
		sub->ops->free_sub(sub);
}

/* ------------------------------------------------------------------------
 * Invariant checker, for the tests
 */

const char *notifier_check(struct mmn_state *state)
{
	uint64_t in_tree = 0, pending_inserts = 0, pending_removes = 0;
	unsigned long listed = 0;
	const char *why = NULL;
	struct mmn_itree_node *node;
	struct mmn_range_sub *rsub;

	state_lock(state);
	why = itree_check(&state->itree);
	for (node = mmn_itree_iter_first(&state->itree, 0, UINT64_MAX); node && !why;
	     node = mmn_itree_iter_next(node, 0, UINT64_MAX)) {
		if (mmn_container_of(node, struct mmn_range_sub, node)->state != state)
			why = "a subscription in the tree points at another state";
		in_tree++;
	}
	for (rsub = state->deferred_ins; rsub && !why; rsub = deferred_ins_next(rsub)) {
		if (itree_node_linked(&rsub->node) || rsub->state != state)
			why = "the deferred inserts name a subscription in a tree or of another state";
		if (++pending_inserts > state->nr_range_subs)
			why = "the deferred inserts loop or name a subscription twice";
	}
	for (const struct deferred_remove *rm = state->deferred_rm; rm && !why; rm = rm->next) {
		if (!itree_node_linked(&rm->rsub->node))
			why = "a deferred remove names a subscription in no tree";
		if (++pending_removes > in_tree)
			why = "the deferred removes loop or name a subscription twice";
	}
	if (!why && !seq_invalidating(state->seq) && (state->deferred_ins || state->deferred_rm))
		why = "deferred operations left while seq is even";
	if (!why && state->active == 0 && seq_invalidating(state->seq))
		why = "seq odd with no invalidation running";
	if (!why && state->nr_range_subs != in_tree - pending_removes + pending_inserts)
		why = "the count of range subscriptions disagrees with the tree and the deferred list";
	state_unlock(state);
	if (why)
		return why;

	pthread_rwlock_rdlock(&state->subs_lock);
	for (struct mmn_sub *s = state->subs.next; s != &state->subs; s = s->next)
		listed++;
	if (listed != __atomic_load_n(&state->nr_subs, __ATOMIC_RELAXED))
		why = "the count of whole-space subscriptions disagrees with the list";
	pthread_rwlock_unlock(&state->subs_lock);
	return why;
}
