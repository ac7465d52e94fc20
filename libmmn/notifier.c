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
 * THE INDEX
 *
 * A red-black tree of 10^5 subscriptions scattered over the caller's
 * memory costs an invalidation one dependent cache miss per level, about
 * 17 levels. So once the tree holds idx_min subscriptions, the state also
 * keeps them in a B+-tree index (index.c: wide nodes, one miss a level,
 * 4 levels at 10^5) and the walks use it. The tree stays the truth: the
 * index allocates, and when an allocation fails it is dropped and the
 * walks use the tree again, so no insert fails for its sake and applying
 * the deferred list never fails. It is built again later (once the tree
 * has doubled), and dropped below idx_min / 2. It changes with the tree,
 * under the lock, while seq is even, so walkers may read it unlocked.
 * Inserts and removes do not change it at once: they queue the change
 * (idx_pending), so that a subscription inserted and removed again between
 * two invalidations never costs the index anything, and the next
 * invalidation that finds seq even applies the queue. While changes wait
 * (seq odd, or a full queue could not be applied), walks take the tree.
 *
 * WHOLE-SPACE SUBSCRIPTIONS
 *
 * They sit on a list guarded by a writer-preferring rwlock: invalidations
 * hold it for reading while they call the callbacks, register and
 * unregister hold it for writing, so that when unregister returns no
 * callback runs or can run again. A count of them lets invalidations skip
 * the rwlock when there are none.
 *
 * A subscription registered while invalidations run must not hear the end
 * of one whose start it missed (a counter of invalidations in progress
 * would go negative). The invalidation cannot be told which subscriptions
 * saw its start: mmn_invalidate_end() gets only the caller's descriptor.
 * So register counts the invalidations that have passed their whole-space
 * start and not yet their end ('open', in the state's word), and the new
 * subscription skips that many ends. The count is exact because both
 * sides of each invalidation decide under a lock that register holds:
 * with subscriptions, the start and end walks count under subs_lock (and
 * the state's lock, which guards the word); without, the start counts in
 * range_begin under the state's lock, and the end counts either there or
 * in one compare-and-swap of the word that fails while the lock is held
 * or whole-space subscriptions exist (W_SUBS); register raises nr_subs
 * under both locks. Skipped ends are interchangeable: the subscription may skip the
 * end of an invalidation it saw start and hear one it did not, but it
 * never hears more ends than starts, and it hears fewer while any
 * invalidation whose start it heard runs. An invalidation counted without
 * subscriptions that a range subscriber then refuses still runs its end
 * side, so that the count stays exact.
 *
 * THE STATE'S WORD
 *
 * The state's lock is one 64-bit word, a futex-based mutex in its two low
 * bits. The rest of the word holds what an end must see at once to finish
 * without taking the lock: the count of running invalidations, the count
 * 'open' above, whether seq is odd and whether whole-space subscriptions
 * exist. While the lock is held only its holder changes those fields (in
 * 'held', stored back by the unlock's exchange); while it is free only an
 * end does, by compare-and-swap, and only when it is not the last end of
 * an invalidation that hit (W_ODD: that end applies the deferred list and
 * advances seq under the lock) and there is no whole-space side to tell.
 * An insert that makes seq odd sets W_ODD in the same unlock, so an end
 * that read the word before it fails its compare-and-swap. Thus an
 * invalidation that hits nothing costs one lock round trip and one
 * compare-and-swap, not two round trips.
 *
 * REFUSAL
 *
 * A non-blockable invalidation refused by a range subscription or by the
 * whole-space side is undone in reverse: whole-space subscriptions that
 * accepted hear ->invalidate_end(), then range subscriptions that accepted
 * hear ->invalidate_cancel(), then seq moves on. Range subscriptions get
 * no end after a successful invalidation: an end would have to walk the
 * tree again on every end, and the whole-space side already offers one.
 */
#include "fault.h"
#include "index.h"
#include "itree.h"
#include "notifier.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CACHELINE 64

/*
 * Subscriptions in the tree from which walks take the index (THE INDEX).
 * Below it the tree, 1 MiB at most, stays mostly in the caches and its
 * search costs about what the index's does (mmn-bench-breakdown: 23
 * against 16 ns at 4096, 116 against 22 ns at 16384); above it every level
 * of the tree misses. Not lower: the index costs 44 bytes a subscription.
 */
#define INDEX_BUILD_MIN 16384

/*
 * The state's word (see THE STATE'S WORD): the lock's two bits; whether
 * seq is odd and whether whole-space subscriptions exist, both set where
 * seq and nr_subs change, under the lock; then the count of running
 * invalidations and the count of open ones.
 */
#define W_LOCKED	1ull		/* held */
#define W_WAITERS	2ull		/* held, and someone may sleep for it */
#define W_LOCK		(W_LOCKED | W_WAITERS)
#define W_ODD		4ull		/* seq is odd */
#define W_SUBS		8ull		/* whole-space subscriptions exist */
#define W_ACTIVE_SHIFT	4
#define W_OPEN_SHIFT	34
#define W_COUNT_MAX	((1ull << 30) - 1)
#define W_ACTIVE_ONE	(1ull << W_ACTIVE_SHIFT)
#define W_OPEN_ONE	(1ull << W_OPEN_SHIFT)

static inline unsigned long w_active(uint64_t w)
{
	return (w >> W_ACTIVE_SHIFT) & W_COUNT_MAX;
}

static inline unsigned long w_open(uint64_t w)
{
	return w >> W_OPEN_SHIFT;
}

/* Tries on a held lock before sleeping: a holder keeps it for well under a microsecond. */
#define LOCK_SPINS 100

/*
 * What the range subscriptions with one ops table share (the public part
 * first: rsub->owner points at it). Counted and listed under the state's
 * lock. A state has one per ops table, a handful at most: the first sits
 * in the state, so that the usual state, with one ops table, allocates
 * none; the others are allocated by the first insert of their ops and
 * freed by the last remove, or with the state.
 */
struct range_owner {
	struct mmn_range_owner pub;
	unsigned long refs;		/* lock: subscriptions inserted or pending */
	struct range_owner *next;	/* lock: state->owners */
};

/*
 * A change of the tree not yet made to the index. The values, not the
 * subscription, say what to remove: it may be freed by then.
 */
#define IDX_PENDING 16

struct idx_op {
	uint64_t start, last;
	struct mmn_range_sub *rsub;
	bool insert;
};

struct mmn_state {
	/*
	 * seq: odd while an invalidation that hit the tree runs. Written with
	 * release under 'lock'; read lock-free (acquire) by read_begin.
	 * Alone on its cache line: readers load it on every read_begin,
	 * and nothing they load should share a line with the lock.
	 */
	_Alignas(CACHELINE) uint64_t seq;

	/*
	 * The lock, with the counts an end changes without it (THE STATE'S
	 * WORD); atomic. While the lock is held its holder keeps the fields
	 * in 'held', which the unlock stores back.
	 */
	_Alignas(CACHELINE) uint64_t word;
	uint64_t held;				/* lock: the word's fields, no lock bits */
	unsigned long seq_waiters;		/* lock: sleepers on seq's futex */
	struct mmn_itree itree;			/* lock; changes only while seq is even */
	/*
	 * Beside the tree once it is large, the same subscriptions in the
	 * B+-tree index, which walks take instead (see THE INDEX). Like
	 * the tree it changes only while seq is even.
	 */
	struct index idx;			/* lock, as itree */
	bool idx_on;				/* lock: idx holds the tree, but for idx_pending */
	unsigned int idx_npending;		/* lock */
	struct idx_op idx_pending[IDX_PENDING];	/* lock: changes not yet made to idx */
	uint64_t idx_min;			/* lock: build at this many in the tree */
	uint64_t idx_retry;			/* lock, as itree: after a failed build, not below this */
	uint64_t idx_build_at;			/* lock: 0 while idx_on, else the larger of both */
	struct mmn_range_sub *deferred_ins;	/* lock; linked through node.left */
	struct deferred_remove *deferred_rm;	/* lock; records on removers' stacks */
	struct range_owner owner0;		/* lock; free for any ops when refs == 0 */
	struct range_owner *owners;		/* lock; the allocated ones */
	uint64_t nr_range_subs;			/* lock */
	uint64_t begun;				/* lock: range sides begun */
	uint64_t cancelled;			/* lock: range sides ended by a refusal */
	uint64_t read_waits;			/* lock */
	uint64_t deferred_inserts;		/* lock */
	uint64_t deferred_removes;		/* lock */

	uint64_t refused;			/* atomic: non-blockable -EAGAIN */
	uint64_t blockable_refusals;		/* atomic: callback bugs */

	_Alignas(CACHELINE) pthread_rwlock_t subs_lock; /* whole-space list, see above */
	struct mmn_sub subs;			/* subs_lock: list head */
	/* atomic; written under subs_lock, and also under lock by register */
	unsigned long nr_subs;
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


_Static_assert(sizeof(struct mmn_range_sub) == 64,
	       "a range subscription is one cache line (see docs/design.md)");

/*
 * A subscription using the state's own record has in rsub->owner the
 * state's address with bit 0 set, so that read_begin reaches seq in two
 * dependent loads (rsub, then seq at -1 from that value), as when the
 * subscription held the state pointer itself, not three.
 */
#define OWNER_IN_STATE 1ul

_Static_assert(offsetof(struct mmn_state, seq) == 0, "read_begin loads seq at the tag's -1");

static inline const struct mmn_range_owner *rsub_owner(const struct mmn_range_sub *rsub)
{
	uintptr_t o = (uintptr_t)rsub->owner;

	if (o & OWNER_IN_STATE)
		return &((struct mmn_state *)(o - OWNER_IN_STATE))->owner0.pub;
	return (const struct mmn_range_owner *)o;
}

static inline struct mmn_state *rsub_state(const struct mmn_range_sub *rsub)
{
	uintptr_t o = (uintptr_t)rsub->owner;

	if (likely(o & OWNER_IN_STATE))
		return (struct mmn_state *)(o - OWNER_IN_STATE);
	return ((const struct mmn_range_owner *)o)->state;
}

/* seq_load(rsub_state(RSUB)), the tagged case's address in the load itself. */
static inline uint64_t rsub_seq_load(const struct mmn_range_sub *rsub)
{
	uintptr_t o = (uintptr_t)rsub->owner;

	if (likely(o & OWNER_IN_STATE))
		return __atomic_load_n((const uint64_t *)(o - OWNER_IN_STATE), __ATOMIC_ACQUIRE);
	return __atomic_load_n(&((const struct mmn_range_owner *)o)->state->seq, __ATOMIC_ACQUIRE);
}

static inline const struct mmn_range_sub_ops *rsub_ops(const struct mmn_range_sub *rsub)
{
	return rsub_owner(rsub)->ops;
}

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

/*
 * Called with the state's lock held. Pairs with the acquire in read_begin.
 * The word's W_ODD follows at the unlock.
 */
static inline void seq_store(struct mmn_state *state, uint64_t seq)
{
	__atomic_store_n(&state->seq, seq, __ATOMIC_RELEASE);
	state->held = (state->held & ~W_ODD) | (seq & 1 ? W_ODD : 0);
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

/*
 * Debug builds: the invalidations this thread has open, by state. A thread
 * that waits for seq to move on while it holds an invalidation of the same
 * state open waits for itself. An invalidation ended on another thread
 * stays recorded here; the API expects start and end on one thread.
 */
#ifdef MMN_DEBUG
#define OPEN_MAX 16
static __thread const struct mmn_state *open_states[OPEN_MAX];
static __thread unsigned int open_depth;

static void open_push(const struct mmn_state *state)
{
	if (open_depth < OPEN_MAX)
		open_states[open_depth++] = state;
}

static void open_pop(const struct mmn_state *state)
{
	for (unsigned int i = open_depth; i-- > 0; ) {
		if (open_states[i] != state)
			continue;
		open_states[i] = open_states[--open_depth];
		return;
	}
}

static bool holds_open(const struct mmn_state *state)
{
	for (unsigned int i = 0; i < open_depth; i++)
		if (open_states[i] == state)
			return true;
	return false;
}
#else
static inline void open_push(const struct mmn_state *state) { (void)state; }
static inline void open_pop(const struct mmn_state *state) { (void)state; }
static inline bool holds_open(const struct mmn_state *state) { (void)state; return false; }
#endif

#define BUG_WAITS_FOR_ITSELF(state, what)				\
	MMN_BUG_ON(holds_open(state), "%s would wait for an invalidation "	\
		   "of the same state that this thread has open: it would deadlock", what)

#define BUG_IN_CALLBACK(state, what)					\
	MMN_BUG_ON(in_callback_of(state),				\
		   "%s called from a callback of the same state: it would deadlock", what)

/* ------------------------------------------------------------------------
 * The state's lock (THE STATE'S WORD)
 */

/* The futex of a 64-bit word: its low half, which holds what changes. */
static inline uint32_t *futex_of(uint64_t *word)
{
	return (uint32_t *)word + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
}

/* Sleep while *ADDR == VAL; returns early on a wake, a change or a signal. */
static void futex_wait(uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Held by someone else: spin a little, then sleep (W_WAITERS) until free. */
static __attribute__((noinline)) void lock_slow(struct mmn_state *state)
{
	uint64_t w;

	for (int spin = 0; spin < LOCK_SPINS; spin++) {
		w = __atomic_load_n(&state->word, __ATOMIC_RELAXED);
		if (!(w & W_LOCK) &&
		    __atomic_compare_exchange_n(&state->word, &w, w | W_LOCKED, true,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			goto got;
		cpu_relax();
	}
	for (;;) {
		w = __atomic_load_n(&state->word, __ATOMIC_RELAXED);
		if (!(w & W_LOCK)) {
			/* Others may sleep too: keep W_WAITERS so that our unlock wakes one. */
			if (__atomic_compare_exchange_n(&state->word, &w, w | W_LOCKED | W_WAITERS,
							true, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				goto got;
			continue;
		}
		if (!(w & W_WAITERS) &&
		    !__atomic_compare_exchange_n(&state->word, &w, w | W_WAITERS, true,
						 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			continue;
		futex_wait(futex_of(&state->word), (uint32_t)(w | W_WAITERS));
	}
got:
	state->held = w;
}

static inline void lock_state(struct mmn_state *state)
{
	uint64_t w = __atomic_load_n(&state->word, __ATOMIC_RELAXED);

	if (likely(!(w & W_LOCK)) &&
	    likely(__atomic_compare_exchange_n(&state->word, &w, w | W_LOCKED, false,
					       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))) {
		state->held = w;
		return;
	}
	lock_slow(state);
}

/* Store the fields back: HELD has no lock bits. */
static inline void unlock_state(struct mmn_state *state)
{
	if (unlikely(__atomic_exchange_n(&state->word, state->held, __ATOMIC_RELEASE) & W_WAITERS))
		futex_wake(futex_of(&state->word), 1);
}

void state_lock(struct mmn_state *state)
{
	lock_state(state);
}

void state_unlock(struct mmn_state *state)
{
	unlock_state(state);
}

static inline unsigned long held_active(const struct mmn_state *state)
{
	return w_active(state->held);
}

/* With the lock held: sleep until seq is no longer SEQ. */
static void wait_seq_change_locked(struct mmn_state *state, uint64_t seq)
{
	state->seq_waiters++;
	while (__atomic_load_n(&state->seq, __ATOMIC_RELAXED) == seq) {
		unlock_state(state);
		/* seq changes under the lock: a change since is seen by the futex. */
		futex_wait(futex_of(&state->seq), (uint32_t)seq);
		lock_state(state);
	}
	state->seq_waiters--;
}

/* After seq moved on and the lock was dropped: wake everyone waiting. */
static void wake_seq_waiters(struct mmn_state *state)
{
	futex_wake(futex_of(&state->seq), INT_MAX);
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
	state->owner0.pub.state = state;
	index_init(&state->idx);
	state->idx_min = INDEX_BUILD_MIN;
	state->idx_build_at = INDEX_BUILD_MIN;
	state->subs.next = state->subs.prev = &state->subs;

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
	free(state);
	return -err;
}

/* ------------------------------------------------------------------------
 * The index beside the tree (see THE INDEX). All with the lock held, while
 * seq is even or the deferred list is being applied: nobody walks.
 */

/* Drop the index; build it again only once the tree holds RETRY. */
static void idx_drop_locked(struct mmn_state *state, uint64_t retry)
{
	index_fini(&state->idx);
	state->idx_on = false;
	state->idx_npending = 0;
	state->idx_retry = retry;
	state->idx_build_at = retry > state->idx_min ? retry : state->idx_min;
}

/* Make the queued changes to the index. Only while nobody walks. */
static void idx_apply_locked(struct mmn_state *state)
{
	for (unsigned int i = 0; i < state->idx_npending && state->idx_on; i++) {
		const struct idx_op *op = &state->idx_pending[i];
		int err;

		if (op->insert) {
			if (index_insert(&state->idx, op->start, op->last, op->rsub))
				idx_drop_locked(state, 2 * (state->idx.count + 1));
			continue;
		}
		err = index_remove(&state->idx, op->start, op->last, op->rsub);
		MMN_BUG_ON(err, "the index lost the subscription at [%#llx, %#llx]",
			   (unsigned long long)op->start, (unsigned long long)op->last);
		(void)err;
	}
	state->idx_npending = 0;
}

/* Queue a change; a full queue is applied first. Only while nobody walks. */
static void idx_queue_locked(struct mmn_state *state, struct mmn_range_sub *rsub, bool insert)
{
	if (!state->idx_on)
		return;
	/* The remove of a queued insert cancels it: the index never knew. */
	for (unsigned int i = state->idx_npending; !insert && i-- > 0; ) {
		if (state->idx_pending[i].rsub != rsub || !state->idx_pending[i].insert)
			continue;
		state->idx_pending[i] = state->idx_pending[--state->idx_npending];
		return;
	}
	if (state->idx_npending == IDX_PENDING)
		idx_apply_locked(state);
	if (!state->idx_on)
		return;
	state->idx_pending[state->idx_npending++] = (struct idx_op){
		.start = rsub->node.start, .last = rsub->node.last, .rsub = rsub, .insert = insert,
	};
}

static void idx_add_locked(struct mmn_state *state, struct mmn_range_sub *rsub)
{
	idx_queue_locked(state, rsub, true);
}

static void idx_del_locked(struct mmn_state *state, struct mmn_range_sub *rsub)
{
	idx_queue_locked(state, rsub, false);
}

/* Build the index from the tree of IN_TREE subscriptions, or drop it. */
static __attribute__((noinline)) void idx_resize_slow(struct mmn_state *state, uint64_t in_tree)
{
	struct mmn_itree_node *node;

	if (state->idx_on) {
		idx_drop_locked(state, 0);
		return;
	}
	state->idx_on = true;
	state->idx_npending = 0;
	for (node = mmn_itree_iter_first(&state->itree, 0, UINT64_MAX); node;
	     node = mmn_itree_iter_next(node, 0, UINT64_MAX)) {
		if (index_insert(&state->idx, node->start, node->last,
				 mmn_container_of(node, struct mmn_range_sub, node))) {
			idx_drop_locked(state, 2 * in_tree);
			return;
		}
	}
	state->idx_build_at = 0;
}

/*
 * RSUB went straight into the tree, which holds IN_TREE now. Out of line:
 * inserts reach it only while the index is on or due (idx_build_at).
 */
static __attribute__((noinline)) void idx_inserted_slow(struct mmn_state *state,
							 struct mmn_range_sub *rsub,
							 uint64_t in_tree);

/* After the tree changed to IN_TREE subscriptions: build or drop the index. */
static inline void idx_resize_locked(struct mmn_state *state, uint64_t in_tree)
{
	if (state->idx_on ? in_tree < state->idx_min / 2 :
			    in_tree >= state->idx_min && in_tree >= state->idx_retry)
		idx_resize_slow(state, in_tree);
}

static void idx_inserted_slow(struct mmn_state *state, struct mmn_range_sub *rsub,
			      uint64_t in_tree)
{
	idx_add_locked(state, rsub);
	idx_resize_locked(state, in_tree);
}

void notifier_index_min(struct mmn_state *state, uint64_t min)
{
	lock_state(state);
	state->idx_min = min;
	state->idx_retry = 0;
	state->idx_build_at = state->idx_on ? 0 : min;
	if (!seq_invalidating(state->seq))
		idx_resize_locked(state, state->nr_range_subs);
	unlock_state(state);
}

/*
 * A walk over the subscriptions overlapping [start, last], in the index or
 * the tree, ascending by start. Under the lock, or unlocked while seq is
 * odd (neither changes then).
 */
struct walk {
	uint64_t start, last;
	struct mmn_range_sub *cur;
	bool idx;
	struct index_iter it;
};

static inline __attribute__((always_inline))
struct mmn_range_sub *walk_first(struct mmn_state *state, struct walk *w,
				 uint64_t start, uint64_t last)
{
	struct mmn_itree_node *node;

	w->start = start;
	w->last = last;
	w->idx = state->idx_on && state->idx_npending == 0;
	if (w->idx)
		return w->cur = index_iter_first(&state->idx, &w->it, start, last);
	/*
	 * Fetching both children pays only once the tree leaves the caches:
	 * when it is large but its index failed to allocate (idx_retry set).
	 * Not the count of subscriptions: that moves while seq is odd.
	 */
	node = likely(!state->idx_retry) ? mmn_itree_iter_first(&state->itree, start, last) :
					   itree_first_prefetch(&state->itree, start, last);
	return w->cur = node ? mmn_container_of(node, struct mmn_range_sub, node) : NULL;
}

static struct mmn_range_sub *walk_next(struct walk *w)
{
	struct mmn_itree_node *node;

	if (w->idx)
		return w->cur = index_iter_next(&w->it);
	node = mmn_itree_iter_next(&w->cur->node, w->start, w->last);
	return w->cur = node ? mmn_container_of(node, struct mmn_range_sub, node) : NULL;
}

/* Detach every range subscription so that a later remove is a no-op. */
static void detach_range_subs(struct mmn_state *state)
{
	struct mmn_itree_node *node;

	for (node = mmn_itree_iter_first(&state->itree, 0, UINT64_MAX); node;
	     node = mmn_itree_iter_next(node, 0, UINT64_MAX))
		mmn_container_of(node, struct mmn_range_sub, node)->owner = NULL;
	mmn_itree_init(&state->itree);
	idx_drop_locked(state, 0);
	state->nr_range_subs = 0;
	while (state->owners) {
		struct range_owner *next = state->owners->next;

		free(state->owners);
		state->owners = next;
	}
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
	MMN_BUG_ON(w_active(__atomic_load_n(&state->word, __ATOMIC_RELAXED)),
		   "mmn_state_free: %lu invalidations still running",
		   w_active(__atomic_load_n(&state->word, __ATOMIC_RELAXED)));

	/*
	 * Range subscriptions hear RELEASE like any invalidation. Whole-space
	 * ones get ->release() instead, below, so keep them out of it.
	 */
	pthread_rwlock_wrlock(&state->subs_lock);
	struct mmn_sub *first = state->subs.next, *last = state->subs.prev;
	unsigned long nr_subs = state->nr_subs;
	state->subs.next = state->subs.prev = &state->subs;
	__atomic_store_n(&state->nr_subs, 0, __ATOMIC_RELAXED);
	lock_state(state);
	state->held &= ~W_SUBS;
	unlock_state(state);
	pthread_rwlock_unlock(&state->subs_lock);

	if (mmn_invalidate_start(state, &release) == 0)
		mmn_invalidate_end(state, &release);

	lock_state(state);
	MMN_BUG_ON(state->deferred_ins || state->deferred_rm,
		   "mmn_state_free: deferred operations left after the last invalidation");
	detach_range_subs(state);
	unlock_state(state);

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
	lock_state(state);
	s.invalidations_refused = __atomic_load_n(&state->refused, __ATOMIC_RELAXED);
	/* Every refusal also began; at rest started == ended. */
	s.invalidations_started = state->begun - s.invalidations_refused;
	s.invalidations_ended = state->begun - state->cancelled - held_active(state);
	s.read_begin_waits = state->read_waits;
	s.deferred_inserts = state->deferred_inserts;
	s.deferred_removes = state->deferred_removes;
	s.range_subs = state->nr_range_subs;
	s.active_invalidations = held_active(state);
	unlock_state(state);
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
 * the tree does not change and can be walked without the lock. *QUIET:
 * there is no whole-space subscription, so the invalidation skips the
 * whole-space start and counts in 'open' at once (see the essay).
 */
static inline __attribute__((always_inline))
struct mmn_range_sub *range_begin(struct mmn_state *state, struct walk *w,
					 uint64_t start, uint64_t last,
					 uint64_t *cur_seq, bool *quiet)
{
	struct mmn_range_sub *node;

	lock_state(state);
	if (unlikely(held_active(state) == W_COUNT_MAX || w_open(state->held) == W_COUNT_MAX))
		mmn_bug(__FILE__, __LINE__, "more than %llu invalidations running at once",
			(unsigned long long)W_COUNT_MAX);
	state->held += W_ACTIVE_ONE;
	state->begun++;
	*quiet = !(state->held & W_SUBS);
	if (*quiet)
		state->held += W_OPEN_ONE;
	/* Nobody walks while seq is even: the index may catch up. */
	if (unlikely(state->idx_npending) && !seq_invalidating(state->seq))
		idx_apply_locked(state);
	node = walk_first(state, w, start, last);
	if (node && !seq_invalidating(state->seq))
		seq_store(state, state->seq + 1);
	*cur_seq = state->seq;
	unlock_state(state);
	return node;
}

/* Apply the inserts and removes that arrived while seq was odd. */
static void apply_deferred_locked(struct mmn_state *state)
{
	struct mmn_range_sub *rsub, *next;

	for (struct deferred_remove *rm = state->deferred_rm; rm; rm = rm->next) {
		idx_del_locked(state, rm->rsub);
		mmn_itree_remove(&state->itree, &rm->rsub->node);
	}
	state->deferred_rm = NULL;
	for (rsub = state->deferred_ins; rsub; rsub = next) {
		next = deferred_ins_next(rsub);
		mmn_itree_insert(&state->itree, &rsub->node);
		idx_add_locked(state, rsub);
	}
	state->deferred_ins = NULL;
	/* Removers still waiting were counted out already. */
	idx_resize_locked(state, state->nr_range_subs);
}

/*
 * One invalidation is over. The last one applies the deferred list and
 * only then advances seq (see the essay: removers free on that signal).
 * Called with the lock held; drops it.
 */
static void range_end_locked(struct mmn_state *state, bool completed)
{
	bool wake = false;

	MMN_BUG_ON(held_active(state) == 0,
		   "mmn_invalidate_end without a matching mmn_invalidate_start");
	if (unlikely(held_active(state) == 0)) {
		unlock_state(state);
		return;
	}
	if (!completed)
		state->cancelled++;
	state->held -= W_ACTIVE_ONE;
	if (held_active(state) == 0 && seq_invalidating(state->seq)) {
		apply_deferred_locked(state);
		seq_store(state, state->seq + 1);
		wake = state->seq_waiters != 0;
	}
	unlock_state(state);
	if (wake)
		wake_seq_waiters(state);
}

static void range_end(struct mmn_state *state, bool completed)
{
	lock_state(state);
	range_end_locked(state, completed);
}

/*
 * A refused invalidation: tell the range subscriptions that accepted it,
 * from the first hit up to STOP (NULL: every one hit), that it is off.
 * Only after a hit: seq is odd, so the tree stands still.
 */
static void range_cancel_until(struct mmn_state *state,
			       const struct mmn_invalidate_desc *desc,
			       const struct mmn_range_sub *stop)
{
	struct mmn_range_sub *rsub;
	struct walk w;

	for (rsub = walk_first(state, &w, desc->start, range_last(desc->end)); rsub != stop;
	     rsub = walk_next(&w)) {
		const struct mmn_range_sub_ops *ops = rsub_ops(rsub);

		if (!ops->invalidate_cancel)
			continue;
		cb_enter(state);
		ops->invalidate_cancel(rsub, desc);
		cb_leave();
	}
}

static void end_locked(struct mmn_state *state, const struct mmn_invalidate_desc *desc,
		       bool completed);

/*
 * range_invalidate() once something was hit: call ->invalidate() on RSUB,
 * the first hit of walk W, and every later one. Out of line, so that an
 * invalidation that hits nothing runs none of it.
 */
static __attribute__((noinline)) int range_call_hits(struct mmn_state *state,
						     const struct mmn_invalidate_desc *desc,
						     struct walk *w, struct mmn_range_sub *rsub,
						     uint64_t cur_seq, const bool *quiet)
{
	const bool blockable = desc->flags & MMN_INVALIDATE_BLOCKABLE;
	/* Neighbours usually share an owner record: look its callback up once. */
	const struct mmn_range_owner *owner = NULL;
	bool (*invalidate)(struct mmn_range_sub *, const struct mmn_invalidate_desc *,
			   uint64_t) = NULL;
	/* The index's leaf and slot in locals: registers across the callbacks. */
	const bool idx = w->idx;
	const struct index_node *leaf = idx ? w->it.node[w->it.height] : NULL;
	unsigned int slot = idx ? w->it.slot[w->it.height] : 0;
	const uint64_t qs = w->start, ql = w->last;

	for (struct mmn_range_sub *next; rsub; rsub = next) {
		bool ok;

		/*
		 * Find the next hit before calling this one, and fetch it
		 * while the callback runs: the walk stands still (seq is odd)
		 * and the callback cannot change it.
		 */
		next = idx ? index_iter_step(&w->it, &leaf, &slot, qs, ql) : walk_next(w);
		if (next)
			__builtin_prefetch(next, 1);
		if (unlikely(rsub->owner != owner)) {
			owner = rsub->owner;
			invalidate = rsub_ops(rsub)->invalidate;
		}
		cb_enter(state);
		ok = invalidate(rsub, desc, cur_seq);
		cb_leave();

		if (unlikely(!ok)) {
			if (!blockable) {
				range_cancel_until(state, desc, rsub);
				if (*quiet) {
					/* Counted in 'open' already: run the end side. */
					lock_state(state);
					end_locked(state, desc, false);
				} else {
					range_end(state, false);
				}
				return -EAGAIN;
			}
			stat_inc(&state->blockable_refusals);
			MMN_BUG_ON(true, "->invalidate() of the subscription at "
				   "[%#llx, %#llx] refused a blockable invalidation",
				   (unsigned long long)rsub->node.start,
				   (unsigned long long)rsub->node.last);
			continue;
		}
		MMN_BUG_ON(__atomic_load_n(&rsub->invalidate_seq, __ATOMIC_RELAXED) != cur_seq,
			   "->invalidate() of the subscription at [%#llx, %#llx] "
			   "returned true without calling mmn_range_set_seq()",
			   (unsigned long long)rsub->node.start,
			   (unsigned long long)rsub->node.last);
	}
	return 0;
}

/*
 * Call ->invalidate() on every subscription overlapping the desc. *QUIET:
 * see range_begin(); *HIT: some subscription was called. On refusal the
 * invalidation is over when this returns.
 */
static inline __attribute__((always_inline)) int range_invalidate(struct mmn_state *state,
				   const struct mmn_invalidate_desc *desc,
				   bool *quiet, bool *hit)
{
	struct mmn_range_sub *rsub;
	uint64_t cur_seq;
	struct walk w;

	rsub = range_begin(state, &w, desc->start, range_last(desc->end), &cur_seq, quiet);
	*hit = rsub != NULL;
	if (likely(!rsub))
		return 0;
	return range_call_hits(state, desc, &w, rsub, cur_seq, quiet);
}

/* ------------------------------------------------------------------------
 * Invalidation, whole-space side
 */

/* Whether SUB still owes a skipped end (see the essay); takes it if so. */
static bool sub_skips_end(struct mmn_sub *sub)
{
	unsigned long n = __atomic_load_n(&sub->skip_ends, __ATOMIC_RELAXED);

	while (n && !__atomic_compare_exchange_n(&sub->skip_ends, &n, n - 1, true,
						 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	return n != 0;
}

/*
 * Call ->invalidate_end() on the subscriptions from the first to STOP.
 * UNDO: they all heard this invalidation's start, none skips.
 */
static void subs_end_until(struct mmn_state *state, struct mmn_sub *stop,
			   const struct mmn_invalidate_desc *desc, bool undo)
{
	struct mmn_sub *sub;

	for (sub = state->subs.next; sub != stop; sub = sub->next) {
		if (!undo && sub_skips_end(sub))
			continue;
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
			subs_end_until(state, sub, desc, true);
			break;
		}
		stat_inc(&state->blockable_refusals);
		MMN_BUG_ON(true, "->invalidate_start() returned %d for a blockable invalidation",
			   ret);
		ret = 0;
	}
	if (ret == 0) {
		/* Counted while register is excluded (see the essay). */
		lock_state(state);
		state->held += W_OPEN_ONE;
		unlock_state(state);
	}
	pthread_rwlock_unlock(&state->subs_lock);
	return ret ? -EAGAIN : 0;
}

/* The whole-space ends, then, still under subs_lock, the range side's. */
static void subs_invalidate_end(struct mmn_state *state,
				const struct mmn_invalidate_desc *desc, bool completed)
{
	pthread_rwlock_rdlock(&state->subs_lock);
	subs_end_until(state, &state->subs, desc, false);
	lock_state(state);
	state->held -= W_OPEN_ONE;
	range_end_locked(state, completed);
	pthread_rwlock_unlock(&state->subs_lock);
}

/*
 * The end side of an invalidation counted in 'open': whole-space ends,
 * then the range side. Called with the lock held, which decides, with
 * register excluded, whether there is anyone to tell. Drops the lock.
 */
static void end_locked(struct mmn_state *state, const struct mmn_invalidate_desc *desc,
		       bool completed)
{
	if (likely(!(state->held & W_SUBS))) {
		state->held -= W_OPEN_ONE;
		range_end_locked(state, completed);
		return;
	}
	unlock_state(state);
	subs_invalidate_end(state, desc, completed);
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
	bool quiet, hit;
	int ret;

	if (!state || !desc || !desc_valid(desc))
		return -EINVAL;
	BUG_IN_CALLBACK(state, "mmn_invalidate_start");

	ret = range_invalidate(state, desc, &quiet, &hit);
	if (ret == 0 && !quiet) {
		ret = subs_invalidate_start(state, desc);
		if (ret) {
			if (hit)
				range_cancel_until(state, desc, NULL);
			range_end(state, false);
		}
	}
	if (ret)
		stat_inc(&state->refused);
	else
		open_push(state);
	return ret;
}

static int end_unmatched(void)
{
	MMN_BUG_ON(true, "mmn_invalidate_end without a matching mmn_invalidate_start");
	return -EINVAL;
}

/* mmn_invalidate_end() when the word said no to the compare-and-swap: W. */
static __attribute__((noinline)) int end_slow(struct mmn_state *state,
					       const struct mmn_invalidate_desc *desc, uint64_t w)
{
	if (w & W_SUBS) {
		if (unlikely(w_active(w) == 0))
			return end_unmatched();
		open_pop(state);
		subs_invalidate_end(state, desc, true);
		return 0;
	}
	lock_state(state);
	if (unlikely(held_active(state) == 0)) {
		unlock_state(state);
		return end_unmatched();
	}
	open_pop(state);
	end_locked(state, desc, true);
	return 0;
}

MMN_EXPORT int mmn_invalidate_end(struct mmn_state *state,
				  const struct mmn_invalidate_desc *desc)
{
	uint64_t w;

	if (!state || !desc)
		return -EINVAL;
	BUG_IN_CALLBACK(state, "mmn_invalidate_end");

	/*
	 * Without the lock while it is free, with no whole-space side to
	 * tell, unless this may be the last end of an invalidation that hit
	 * (see THE STATE'S WORD). Release: what the caller changed happens
	 * before the end that advances seq, whose lock reads this word.
	 */
	w = __atomic_load_n(&state->word, __ATOMIC_RELAXED);
	while (likely(!(w & (W_LOCK | W_SUBS)))) {
		if (unlikely(w_active(w) == 0 || w_open(w) == 0))
			return end_unmatched();
		if (w_active(w) == 1 && (w & W_ODD))
			break;
		if (likely(__atomic_compare_exchange_n(&state->word, &w,
						       w - W_ACTIVE_ONE - W_OPEN_ONE, true,
						       __ATOMIC_RELEASE, __ATOMIC_RELAXED))) {
			open_pop(state);
			return 0;
		}
	}
	return end_slow(state, desc, w);
}

/* ------------------------------------------------------------------------
 * Range subscriptions
 */

/* The owner record of OPS in STATE, counted for one more subscription. */
static struct range_owner *owner_get_locked(struct mmn_state *state,
					    const struct mmn_range_sub_ops *ops)
{
	struct range_owner *owner = &state->owner0;

	if (owner->refs && owner->pub.ops == ops)
		goto found;
	for (owner = state->owners; owner; owner = owner->next)
		if (owner->pub.ops == ops)
			goto found;
	if (!state->owner0.refs) {
		owner = &state->owner0;
		owner->pub.ops = ops;
	} else {
		owner = fault_inject("calloc") ? NULL : calloc(1, sizeof(*owner));
		if (!owner)
			return NULL;
		owner->pub.state = state;
		owner->pub.ops = ops;
		owner->next = state->owners;
		state->owners = owner;
	}
found:
	owner->refs++;
	return owner;
}

/* RSUB is in no tree and on no list any more: drop its share of the owner. */
static void owner_put_locked(struct mmn_state *state, const struct mmn_range_sub *rsub)
{
	struct range_owner *owner = mmn_container_of(rsub_owner(rsub), struct range_owner, pub);
	struct range_owner **p;

	if (--owner->refs || owner == &state->owner0)
		return;
	for (p = &state->owners; *p != owner; p = &(*p)->next)
		;
	*p = owner->next;
	free(owner);
}

MMN_EXPORT int mmn_range_sub_insert(struct mmn_range_sub *rsub,
				    struct mmn_state *state,
				    uint64_t start, uint64_t length,
				    const struct mmn_range_sub_ops *ops)
{
	struct range_owner *owner;
	bool direct = false;

	if (!rsub || !state || !ops || !ops->invalidate)
		return -EINVAL;
	/* A range may end exactly at 2^64; the closed form keeps that exact. */
	if (length == 0 || length - 1 > UINT64_MAX - start)
		return -EOVERFLOW;
	BUG_IN_CALLBACK(state, "mmn_range_sub_insert");
	/* Zeroed before its first insert, and cleared again by remove and free. */
	if (rsub->owner)
		return -EBUSY;

	lock_state(state);
	owner = owner_get_locked(state, ops);
	if (!owner) {
		unlock_state(state);
		return -ENOMEM;
	}
	rsub->node.start = start;
	rsub->node.last = start + (length - 1);
	rsub->owner = owner == &state->owner0 ?
		      (const struct mmn_range_owner *)((uintptr_t)state | OWNER_IN_STATE) :
		      &owner->pub;
	itree_node_clear(&rsub->node);
	if (held_active(state)) {
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
			direct = true;
		}
		__atomic_store_n(&rsub->invalidate_seq, state->seq, __ATOMIC_RELAXED);
	} else {
		/* Odd and older than any seq to come: read_begin never waits. */
		__atomic_store_n(&rsub->invalidate_seq, state->seq - 1, __ATOMIC_RELAXED);
		mmn_itree_insert(&state->itree, &rsub->node);
		direct = true;
	}
	state->nr_range_subs++;
	/* Straight into the tree: nothing was pending, the counts agree. */
	if (direct && unlikely(state->nr_range_subs >= state->idx_build_at))
		idx_inserted_slow(state, rsub, state->nr_range_subs);
	unlock_state(state);
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
	struct mmn_state *state = rsub && rsub->owner ? rsub_state(rsub) : NULL;
	struct deferred_remove rm = { .rsub = rsub };
	uint64_t wait_for = 0;

	if (!state)
		return;	/* never inserted, or detached by mmn_state_free() */
	BUG_IN_CALLBACK(state, "mmn_range_sub_remove");

	lock_state(state);
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
		if (unlikely(state->idx_on)) {
			idx_del_locked(state, rsub);
			idx_resize_locked(state, state->nr_range_subs - 1);
		}
	}
	state->nr_range_subs--;
	if (wait_for) {
		BUG_WAITS_FOR_ITSELF(state, "mmn_range_sub_remove");
		wait_seq_change_locked(state, wait_for);
	}
	owner_put_locked(state, rsub);
	rsub->owner = NULL;
	unlock_state(state);
}

/* Out of line and cold, so that the fast path of read_begin stays small. */
static __attribute__((noinline, cold)) uint64_t read_begin_wait(struct mmn_range_sub *rsub,
								uint64_t seq)
{
	struct mmn_state *state = rsub_state(rsub);

	BUG_WAITS_FOR_ITSELF(state, "mmn_range_read_begin");
	lock_state(state);
	state->read_waits++;
	wait_seq_change_locked(state, seq);
	unlock_state(state);
	return seq;
}

MMN_EXPORT uint64_t mmn_range_read_begin(struct mmn_range_sub *rsub)
{
	uint64_t seq;
	bool running;

	MMN_BUG_ON(!rsub->owner, "mmn_range_read_begin: subscription is not inserted");
	BUG_IN_CALLBACK(rsub_state(rsub), "mmn_range_read_begin");

#ifdef MMN_BENCH_LOCKED_READ_BEGIN
	/*
	 * Benchmark baseline only, never defined for libmmn itself (see
	 * bench/Makemodule.am): load both sequences under the state's lock,
	 * as the kernel's read side does, to show what lock-free buys.
	 */
	lock_state(rsub_state(rsub));
#endif
	/* Pairs with the release in mmn_range_set_seq(); see the essay. */
	seq = __atomic_load_n(&rsub->invalidate_seq, __ATOMIC_ACQUIRE);
	running = seq == rsub_seq_load(rsub);
#ifdef MMN_BENCH_LOCKED_READ_BEGIN
	unlock_state(rsub_state(rsub));
#endif
	if (likely(!running))
		return seq;
	/*
	 * An invalidation that hit RSUB (or predates it) is still running.
	 * The wait finds the state again: kept out of the fast path, the
	 * state's address folds into the load of its seq.
	 */
	return read_begin_wait(rsub, seq);
}

/* ------------------------------------------------------------------------
 * Whole-space subscriptions
 */

/*
 * With subs_lock held for writing. The state's lock orders the new count
 * against range_begin() and end_locked(), which read it to decide whether
 * an invalidation has whole-space subscriptions to tell (see the essay).
 */
static void sub_link_locked(struct mmn_state *state, struct mmn_sub *sub)
{
	sub->state = state;
	sub->prev = state->subs.prev;
	sub->next = &state->subs;
	state->subs.prev->next = sub;
	state->subs.prev = sub;
	lock_state(state);
	sub->skip_ends = w_open(state->held);
	__atomic_store_n(&state->nr_subs, state->nr_subs + 1, __ATOMIC_RELAXED);
	state->held |= W_SUBS;
	unlock_state(state);
}

static void sub_unlink_locked(struct mmn_state *state, struct mmn_sub *sub)
{
	sub->prev->next = sub->next;
	sub->next->prev = sub->prev;
	sub->next = sub->prev = sub;
	sub->state = NULL;
	__atomic_store_n(&state->nr_subs, state->nr_subs - 1, __ATOMIC_RELAXED);
	if (state->nr_subs == 0) {
		lock_state(state);
		state->held &= ~W_SUBS;
		unlock_state(state);
	}
}

MMN_EXPORT int mmn_sub_register(struct mmn_sub *sub, struct mmn_state *state)
{
	int ret = 0;

	if (!sub || !state || !sub->ops)
		return -EINVAL;
	BUG_IN_CALLBACK(state, "mmn_sub_register");

	pthread_rwlock_wrlock(&state->subs_lock);
	/* Zeroed before its first register; cleared by unregister and free. */
	if (sub->state) {
		ret = -EBUSY;
	} else {
		sub->refs = 0;
		sub_link_locked(state, sub);
	}
	pthread_rwlock_unlock(&state->subs_lock);
	return ret;
}

MMN_EXPORT int mmn_sub_unregister(struct mmn_sub *sub, struct mmn_state *state)
{
	bool got;

	if (!sub || !state)
		return -EINVAL;
	/*
	 * Not registered, or released by mmn_state_free(): STATE may be
	 * freed already (or be a new state at the same address). Touch it not.
	 */
	if (!sub->state)
		return 0;
	BUG_IN_CALLBACK(state, "mmn_sub_unregister");
	if (sub->state != state) {
		MMN_BUG_ON(true, "mmn_sub_unregister: subscription is registered with another state");
		return -EINVAL;
	}

	/* Taking the lock for writing waits out every running callback. */
	pthread_rwlock_wrlock(&state->subs_lock);
	got = sub->refs != 0;
	if (!got)
		sub_unlink_locked(state, sub);
	pthread_rwlock_unlock(&state->subs_lock);
	MMN_BUG_ON(got, "mmn_sub_unregister: subscription comes from mmn_sub_get(): "
		   "drop it with mmn_sub_put()");
	return got ? -EINVAL : 0;
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

#define PUT_UNHELD "mmn_sub_put: no reference held (registered with mmn_sub_register, " \
		   "or put too often)"

MMN_EXPORT int mmn_sub_put(struct mmn_sub *sub)
{
	struct mmn_state *state;
	bool unheld, last = false;

	if (!sub)
		return -EINVAL;
	state = sub->state;
	if (!state) {
		/* Released by mmn_state_free(): only the count is left, and no lock. */
		unsigned long refs = __atomic_load_n(&sub->refs, __ATOMIC_RELAXED);

		do {
			if (refs == 0) {
				MMN_BUG_ON(true, PUT_UNHELD);
				return -EINVAL;
			}
		} while (!__atomic_compare_exchange_n(&sub->refs, &refs, refs - 1, true,
						      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
		if (refs == 1)
			sub->ops->free_sub(sub);
		return 0;
	}
	BUG_IN_CALLBACK(state, "mmn_sub_put");

	pthread_rwlock_wrlock(&state->subs_lock);
	unheld = sub->refs == 0;
	if (!unheld) {
		last = --sub->refs == 0;
		if (last)
			sub_unlink_locked(state, sub);
	}
	pthread_rwlock_unlock(&state->subs_lock);
	if (unheld) {
		MMN_BUG_ON(true, PUT_UNHELD);
		return -EINVAL;
	}
	/* The write lock waited out every callback; none can start now. */
	if (last)
		sub->ops->free_sub(sub);
	return 0;
}

/* ------------------------------------------------------------------------
 * Invariant checker, for the tests
 */

const char *notifier_check(struct mmn_state *state)
{
	uint64_t in_tree = 0, pending_inserts = 0, pending_removes = 0, owned = 0;
	unsigned long listed = 0;
	const char *why = NULL;
	struct mmn_itree_node *node;
	struct mmn_range_sub *rsub;

	lock_state(state);
	why = itree_check(&state->itree);
	if (!why && state->idx_on)
		why = index_check(&state->idx);
	for (node = mmn_itree_iter_first(&state->itree, 0, UINT64_MAX); node && !why;
	     node = mmn_itree_iter_next(node, 0, UINT64_MAX)) {
		if (rsub_state(mmn_container_of(node, struct mmn_range_sub, node)) != state)
			why = "a subscription in the tree points at another state";
		in_tree++;
	}
	if (!why && state->idx_on) {
		/* Queued removes may name freed subscriptions: count only then. */
		uint64_t indexed = 0, want = in_tree;
		struct index_iter it;

		for (unsigned int i = 0; i < state->idx_npending; i++)
			want += state->idx_pending[i].insert ? -1 : 1;
		for (void *p = index_iter_first(&state->idx, &it, 0, UINT64_MAX); p && !why;
		     p = index_iter_next(&it), indexed++)
			if (!state->idx_npending &&
			    !itree_node_linked(&((struct mmn_range_sub *)p)->node))
				why = "the index names a subscription in no tree";
		if (!why && indexed != want)
			why = "the index and the tree, with the queued changes, hold different counts";
	}
	if (!why && state->idx_npending > IDX_PENDING)
		why = "the index's queue overflowed";
	if (!why && !state->idx_on && state->idx.count)
		why = "an index left behind while the walks use the tree";
	for (rsub = state->deferred_ins; rsub && !why; rsub = deferred_ins_next(rsub)) {
		if (itree_node_linked(&rsub->node) || rsub_state(rsub) != state)
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
	if (!why && held_active(state) == 0 && seq_invalidating(state->seq))
		why = "seq odd with no invalidation running";
	if (!why && state->nr_range_subs != in_tree - pending_removes + pending_inserts)
		why = "the count of range subscriptions disagrees with the tree and the deferred list";
	owned = state->owner0.refs;
	if (owned && state->owner0.pub.state != state)
		why = "the state's own owner record names another state";
	for (const struct range_owner *o = state->owners; o && !why; o = o->next) {
		if (o->refs == 0 || o->pub.state != state)
			why = "an allocated owner record is unused or of another state";
		if (state->owner0.refs && o->pub.ops == state->owner0.pub.ops)
			why = "two owner records for one ops table";
		owned += o->refs;
	}
	if (!why && owned != state->nr_range_subs + pending_removes)
		why = "the owner records' counts disagree with the range subscriptions";
	unlock_state(state);
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
