/* SPDX-License-Identifier: MIT */
/*
 * libmmn: keep caches of memory translations coherent while memory changes.
 *
 * A userspace counterpart of the Linux kernel's mmu_interval_notifier.
 * One struct mmn_state stands for one address space. Subscribers are told
 * before memory in their range changes; readers detect collisions with a
 * sequence counter. See mmn(7) and docs/design.md.
 *
 * Conventions: functions return 0 or a negative errno. Addresses handed in
 * by callers are half-open [start, end) or (start, length); the interval
 * tree stores closed intervals [start, last].
 */
#ifndef MMN_MMN_H
#define MMN_MMN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <mmn/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Version
 */

/*
 * The version of the library actually loaded, as a string "MAJOR.MINOR.MICRO".
 * Compare with MMN_VERSION_STRING to detect a header/library mismatch.
 * Context: any; never blocks.
 */
const char *mmn_version(void);

/*
 * Whether the loaded library is at least MAJOR.MINOR.MICRO.
 * Context: any; never blocks.
 */
bool mmn_version_check(unsigned int major, unsigned int minor, unsigned int micro);

/* ------------------------------------------------------------------------
 * Helpers
 */

/* The structure of TYPE whose MEMBER is at PTR. */
#define mmn_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ------------------------------------------------------------------------
 * Interval tree: intrusive, augmented red-black tree of closed intervals.
 *
 * Nodes are embedded in the caller's objects; the tree never allocates.
 * The tree has no lock of its own: callers serialise writers against
 * each other and against readers. Several readers may iterate at once.
 */

struct mmn_itree_node {
	uint64_t start;		/* first key, set by the caller before insert */
	uint64_t last;		/* last key (inclusive), start <= last */
	/* Private to libmmn. */
	uint64_t subtree_last;	/* max of last over this subtree */
	uintptr_t parent_color;	/* parent pointer | colour in bit 0 */
	struct mmn_itree_node *left;
	struct mmn_itree_node *right;
};

struct mmn_itree {
	struct mmn_itree_node *root;	/* private */
};

#define MMN_ITREE_INIT { NULL }

/* Make TREE empty. Context: any; never blocks. */
void mmn_itree_init(struct mmn_itree *tree);

/* Whether TREE holds no node. Context: any; never blocks. */
bool mmn_itree_empty(const struct mmn_itree *tree);

/*
 * Insert NODE, whose start and last the caller has set (start <= last).
 * O(log n). Several nodes may hold equal or overlapping intervals.
 * Context: any; never blocks; caller excludes other users of TREE.
 */
void mmn_itree_insert(struct mmn_itree *tree, struct mmn_itree_node *node);

/*
 * Remove NODE, which must be in TREE. O(log n).
 * Context: any; never blocks; caller excludes other users of TREE.
 */
void mmn_itree_remove(struct mmn_itree *tree, struct mmn_itree_node *node);

/*
 * The node with the lowest start that overlaps [start, last], or NULL.
 * mmn_itree_iter_next() gives the following ones, ascending by start, with
 * the same bounds. A whole iteration costs O(log n + k) for k results.
 * Context: any; never blocks; TREE must not change during an iteration.
 */
struct mmn_itree_node *mmn_itree_iter_first(struct mmn_itree *tree,
					    uint64_t start, uint64_t last);
struct mmn_itree_node *mmn_itree_iter_next(struct mmn_itree_node *node,
					   uint64_t start, uint64_t last);

/* ------------------------------------------------------------------------
 * Address spaces and invalidations
 */

/* One address space: the host process, or a guest-physical space. Opaque. */
struct mmn_state;

/*
 * Create an empty state.
 * Returns 0, -EINVAL (STATEP is NULL), -ENOMEM, or the negated error of
 * a failed pthread initialisation (-EAGAIN when out of resources).
 * Context: may allocate; never blocks otherwise.
 */
int mmn_state_new(struct mmn_state **statep);

/*
 * Tear STATE down: a blockable MMN_EVENT_RELEASE over the whole space goes
 * to every range subscription, then ->release() to every whole-space
 * subscription, then the state is freed. Subscriptions stay owned by their
 * callers and are left detached: mmn_range_sub_remove() and
 * mmn_sub_unregister() on them afterwards are no-ops that do not touch the
 * freed state, and they may be inserted or registered again elsewhere.
 * Context: may block (callbacks); no invalidation may run or start; not
 * from a callback.
 */
void mmn_state_free(struct mmn_state *state);

/* What is about to happen to the range. */
enum mmn_event {
	MMN_EVENT_UNMAP = 0,		/* the range is unmapped */
	MMN_EVENT_CLEAR,		/* contents discarded; mapping stays */
	MMN_EVENT_PROTECTION_VMA,	/* access rights of the mapping change */
	MMN_EVENT_PROTECTION_PAGE,	/* access rights of some pages change */
	MMN_EVENT_SOFT_DIRTY,		/* write tracking is reset */
	MMN_EVENT_RELEASE,		/* the address space is torn down */
	MMN_EVENT_MIGRATE,		/* pages move to other memory */
	MMN_EVENT_REMAP,		/* the mapping moves to another address */
	MMN_EVENT_COUNT			/* number of events; not an event */
};

/* The callbacks may sleep: wait for readers, take mutexes, do I/O. */
#define MMN_INVALIDATE_BLOCKABLE	(1u << 0)
/*
 * The change may already be visible: it was seen after the fact (for
 * example by the userfaultfd watcher). No invalidate_end follows from the
 * source of the change itself; the reporter brackets only its own report.
 */
#define MMN_INVALIDATE_AFTER		(1u << 1)

/* Describes one invalidation; passed to every callback. */
struct mmn_invalidate_desc {
	uint64_t start;		/* first byte */
	uint64_t end;		/* one past the last byte, > start; 0 stands
				 * for 2^64, the top of the space */
	enum mmn_event event;
	unsigned int flags;	/* MMN_INVALIDATE_* */
	const void *owner;	/* lets a subscriber skip changes it caused */
	/*
	 * For MMN_EVENT_REMAP: where the range moves to (new first byte),
	 * or 0 when unknown. Ignored for other events.
	 */
	uint64_t remap_to;
};

/*
 * Announce that [desc->start, desc->end) is about to change. Calls
 * ->invalidate() on every range subscription overlapping it, then
 * ->invalidate_start() on every whole-space subscription.
 *
 * Without MMN_INVALIDATE_BLOCKABLE a callback may refuse because it would
 * have to wait, and so does libmmn itself when a whole-space subscription
 * is being registered or unregistered; the call then undoes what it did
 * (whole-space subscribers that had accepted get ->invalidate_end(), then
 * range subscribers that had accepted get ->invalidate_cancel()) and
 * returns -EAGAIN, and the caller must not call mmn_invalidate_end() nor
 * make the change.
 *
 * Returns 0, -EINVAL (NULL pointer, end <= start while end != 0, unknown
 * event or flag) or -EAGAIN. On 0 the caller makes the change, then calls
 * mmn_invalidate_end() with the same DESC.
 * Context: with MMN_INVALIDATE_BLOCKABLE may block in callbacks; takes the
 * state's lock briefly and the whole-space list lock for reading; may run
 * concurrently with any other call; not from a callback of the same state.
 * At most 2^30 - 1 invalidations of a state run at once: one more aborts.
 */
int mmn_invalidate_start(struct mmn_state *state,
			 const struct mmn_invalidate_desc *desc);

/*
 * The change announced by a successful mmn_invalidate_start() is done.
 * Calls ->invalidate_end() on every whole-space subscription; when the
 * last running invalidation ends, applies deferred inserts and removes and
 * wakes readers waiting in mmn_range_read_begin().
 * Returns 0, or -EINVAL (NULL pointer, or no invalidation of STATE is
 * running: an end without its start; debug builds abort on that).
 * Context: never blocks except in whole-space callbacks and, briefly, on
 * the state's lock, which it skips (one compare-and-swap) when there are no
 * whole-space subscriptions and it is not the last end of an invalidation
 * that hit a range subscription; not from a callback of the same state. End on the thread that started: debug builds
 * keep a per-thread record of open invalidations (see mmn_range_read_begin()).
 */
int mmn_invalidate_end(struct mmn_state *state,
		       const struct mmn_invalidate_desc *desc);

/* ------------------------------------------------------------------------
 * Range subscriptions
 */

struct mmn_range_sub;

struct mmn_range_sub_ops {
	/*
	 * [desc->start, desc->end) overlapping this subscription is about to
	 * change. Take the lock that guards your cached translations, call
	 * mmn_range_set_seq(rsub, cur_seq), drop the translations, unlock.
	 * Without MMN_INVALIDATE_BLOCKABLE in desc->flags, return false
	 * instead of waiting; otherwise always return true.
	 * Context: must not call mmn_range_sub_remove(), mmn_range_read_begin()
	 * or mmn_invalidate_start() on the same state.
	 */
	bool (*invalidate)(struct mmn_range_sub *rsub,
			   const struct mmn_invalidate_desc *desc,
			   uint64_t cur_seq);
	/*
	 * Optional. A non-blockable invalidation whose ->invalidate() this
	 * subscription accepted was refused afterwards (by another range
	 * subscription or the whole-space side): the change will not be
	 * made and no end follows. Undo what ->invalidate() started. Runs
	 * before mmn_invalidate_start() returns -EAGAIN, while readers still
	 * wait; never after a successful invalidation.
	 * Context: as ->invalidate(); should not wait long.
	 */
	void (*invalidate_cancel)(struct mmn_range_sub *rsub,
				  const struct mmn_invalidate_desc *desc);
};

/*
 * Private to libmmn: what the range subscriptions of one state with one ops
 * table share. Keeps struct mmn_range_sub at 64 bytes, one cache line.
 */
struct mmn_range_owner {
	struct mmn_state *state;
	const struct mmn_range_sub_ops *ops;
};

/*
 * Embed in your object, zeroed before its first insert (calloc, or an
 * initializer such as = { 0 }). Every field is private to libmmn; the struct
 * is in the header only so that it can be embedded without an allocation.
 */
struct mmn_range_sub {
	struct mmn_itree_node node;	/* [start, last] in the state's tree */
	/* NULL when not inserted; bit 0 set: the state's address, see below */
	const struct mmn_range_owner *owner;
	uint64_t invalidate_seq;	/* odd; see mmn_range_read_begin() */
};

/*
 * Subscribe RSUB to changes of [start, start + length) in STATE. When an
 * invalidation is running, the insert is deferred until the last one ends;
 * RSUB is not called for invalidations running now, but its first
 * mmn_range_read_begin() waits for them.
 * Returns 0, -EINVAL (NULL pointer, no invalidate op), -EOVERFLOW
 * (length 0, or the range would pass the top of the space: a range may
 * end exactly at 2^64, so start + length == 0 is allowed only as that),
 * -EBUSY (RSUB is inserted already, into this state or another) or -ENOMEM
 * (the subscriptions with one OPS share a small record: the state holds
 * one, each further ops table in use allocates one on its first insert;
 * RSUB is then left as it was).
 * Context: never blocks; takes the state's lock; not from a callback of
 * the same state (debug builds abort).
 */
int mmn_range_sub_insert(struct mmn_range_sub *rsub, struct mmn_state *state,
			 uint64_t start, uint64_t length,
			 const struct mmn_range_sub_ops *ops);

/*
 * Unsubscribe RSUB. Returns once no callback for RSUB runs or can run
 * again, so that RSUB may be freed. When an invalidation is running, waits
 * for the last one to end.
 * Context: may block; takes the state's lock; not from a callback of the
 * same state (debug builds abort).
 */
void mmn_range_sub_remove(struct mmn_range_sub *rsub);

/*
 * Begin a read of the translations RSUB covers: returns a sequence to give
 * to mmn_range_read_retry(). Waits while an invalidation that hit RSUB (or
 * began before RSUB was inserted) is running, and returns once every
 * invalidation on the state has ended. When none is running the call takes
 * no lock and writes no shared memory.
 * Context: may block; not from a callback of the same state, nor from a
 * thread that has an invalidation of the same state open when it would
 * wait: it would wait for itself (debug builds abort in both cases).
 */
uint64_t mmn_range_read_begin(struct mmn_range_sub *rsub);

/*
 * Whether an invalidation overlapping RSUB started after the read_begin
 * that returned SEQ (or was running during it). Call under the lock that
 * ->invalidate() takes, and install the translation only if this returns
 * false. Context: never blocks; lock-free.
 */
static inline bool mmn_range_read_retry(const struct mmn_range_sub *rsub,
					uint64_t seq)
{
	/* Pairs with the release store in mmn_range_set_seq(). */
	return __atomic_load_n(&rsub->invalidate_seq, __ATOMIC_ACQUIRE) != seq;
}

/*
 * Like mmn_range_read_retry() but without the caller's lock: an early exit
 * for long reads. A false answer proves nothing; true means retry.
 * Context: never blocks; lock-free.
 */
static inline bool mmn_range_check_retry(const struct mmn_range_sub *rsub,
					 uint64_t seq)
{
	return __atomic_load_n(&rsub->invalidate_seq, __ATOMIC_RELAXED) != seq;
}

/*
 * From ->invalidate(), under the caller's lock: record CUR_SEQ so that
 * readers between read_begin and read_retry see the collision.
 * Context: never blocks; only from ->invalidate().
 */
static inline void mmn_range_set_seq(struct mmn_range_sub *rsub,
				     uint64_t cur_seq)
{
	/* Pairs with the acquire loads in read_retry and read_begin. */
	__atomic_store_n(&rsub->invalidate_seq, cur_seq, __ATOMIC_RELEASE);
}

/* The state RSUB was inserted into. Context: any; never blocks. */
static inline struct mmn_state *mmn_range_sub_state(const struct mmn_range_sub *rsub)
{
	/* With bit 0 set, owner is the state's address (its own record). */
	uintptr_t owner = (uintptr_t)rsub->owner;

	if (owner & 1)
		return (struct mmn_state *)(owner - 1);
	return owner ? ((const struct mmn_range_owner *)owner)->state : NULL;
}

/* ------------------------------------------------------------------------
 * Whole-space subscriptions
 */

struct mmn_sub;

struct mmn_sub_ops {
	/*
	 * The state is being freed (mmn_state_free()). Optional. After it
	 * returns, no other callback runs for this subscription.
	 */
	void (*release)(struct mmn_sub *sub, struct mmn_state *state);
	/*
	 * A range is about to change. Without MMN_INVALIDATE_BLOCKABLE,
	 * return -EAGAIN instead of waiting. Return 0 otherwise. Optional.
	 */
	int (*invalidate_start)(struct mmn_sub *sub,
				const struct mmn_invalidate_desc *desc);
	/*
	 * The change is done. Optional. A subscription never hears more
	 * ends than starts; registered while invalidations run, it skips as
	 * many ends as had their start before it (see mmn_sub_register(3)).
	 */
	void (*invalidate_end)(struct mmn_sub *sub,
			       const struct mmn_invalidate_desc *desc);
	/* Allocate a subscription for mmn_sub_get(); NULL on failure. */
	struct mmn_sub *(*alloc_sub)(struct mmn_state *state);
	/* Free a subscription made by alloc_sub, after the last put. */
	void (*free_sub)(struct mmn_sub *sub);
};

/*
 * Embed in your object, zeroed before its first registration, and set ops.
 * Other fields private.
 */
struct mmn_sub {
	const struct mmn_sub_ops *ops;
	struct mmn_state *state;
	struct mmn_sub *next;
	struct mmn_sub *prev;
	unsigned long refs;	/* mmn_sub_get() references; 0 if registered */
	unsigned long skip_ends; /* ends of invalidations older than the sub */
};

/*
 * Register SUB (zeroed, then SUB->ops set) for every invalidation of STATE.
 * Returns 0, -EINVAL (NULL pointer or ops) or -EBUSY (already registered,
 * with this state or another).
 * Context: may block until running whole-space callbacks return; not from
 * a callback of the same state.
 */
int mmn_sub_register(struct mmn_sub *sub, struct mmn_state *state);

/*
 * Unregister SUB. Returns once no callback for SUB runs or can run again.
 * A SUB that is not registered, or was released by mmn_state_free() (STATE
 * may then be freed already), is left alone: returns 0.
 * Returns 0 or -EINVAL (NULL pointer, SUB registered with another state or
 * taken with mmn_sub_get(); debug builds abort on those two).
 * Context: may block; not from a callback of the same state.
 */
int mmn_sub_unregister(struct mmn_sub *sub, struct mmn_state *state);

/*
 * Get a reference on the one subscription with OPS on STATE, creating it
 * with ops->alloc_sub() and registering it when there is none.
 * Returns 0, -EINVAL (NULL pointer, no alloc_sub or free_sub) or -ENOMEM
 * (alloc_sub returned NULL).
 * Context: may block; not from a callback of the same state.
 */
int mmn_sub_get(const struct mmn_sub_ops *ops, struct mmn_state *state,
		struct mmn_sub **subp);

/*
 * Drop a reference taken by mmn_sub_get(). The last one unregisters the
 * subscription and frees it with ops->free_sub() once no callback runs.
 * Returns 0 or -EINVAL (NULL, or no reference held: a subscription from
 * mmn_sub_register(), or one put too often while its memory lives; debug
 * builds abort on the latter).
 * Context: may block; not from a callback of the same state.
 */
int mmn_sub_put(struct mmn_sub *sub);

/* ------------------------------------------------------------------------
 * Counters
 */

struct mmn_stats {
	size_t size;			/* set by the caller: sizeof(struct mmn_stats) */
	uint64_t invalidations_started;	/* successful mmn_invalidate_start() */
	uint64_t invalidations_ended;
	uint64_t invalidations_refused;	/* non-blockable starts that got -EAGAIN */
	uint64_t blockable_refusals;	/* callbacks that refused a blockable desc (bugs) */
	uint64_t read_begin_waits;	/* read_begin calls that had to wait */
	uint64_t deferred_inserts;
	uint64_t deferred_removes;
	uint64_t range_subs;		/* range subscriptions now in the state */
	uint64_t subs;			/* whole-space subscriptions now */
	uint64_t active_invalidations;	/* invalidations running now */
};

/*
 * Copy STATE's counters into STATS, up to STATS->size bytes (so that
 * callers built against an older header keep working).
 * Returns 0 or -EINVAL (NULL pointer, size too small to hold 'size').
 * Context: never blocks; takes the state's lock briefly.
 */
int mmn_state_stats(struct mmn_state *state, struct mmn_stats *stats);

/* ------------------------------------------------------------------------
 * Host memory: brackets around the VMM's own memory syscalls
 *
 * Each call runs mmn_invalidate_start() over the affected range of STATE
 * (which stands for the host address space: keys are virtual addresses),
 * makes the syscall, then runs mmn_invalidate_end(). Subscribers hear of
 * the change before it is visible. Common rules:
 *  - FLAGS: MMN_NONBLOCK makes the invalidation non-blockable; when a
 *    subscriber refuses, the call returns -EAGAIN and the syscall is not
 *    made. Without it the invalidation is blockable.
 *  - ADDR must be page-aligned; LEN is rounded up to whole pages, must not
 *    be 0, and ADDR + LEN must not pass the top of the address space
 *    (-EINVAL, -EOVERFLOW), all checked before anything is invalidated.
 *  - When the syscall fails, the invalidation still ends and the syscall's
 *    -errno is returned.
 *  - The userfaultfd watcher (below) does not report changes made here.
 * Other mapping changes follow the same recipe with mmn_invalidate_start()
 * and mmn_invalidate_end() around the call (see mmn_hostmem(7)).
 * Context: may block (blockable callbacks); not from a callback of STATE.
 */

#define MMN_NONBLOCK	(1u << 0)

/* munmap(2): MMN_EVENT_UNMAP. */
int mmn_munmap(struct mmn_state *state, void *addr, size_t len, unsigned int flags);

/*
 * madvise(2), announced for what the kernel does to the pages: advice that
 * discards contents (MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE,
 * MADV_REMOVE, MADV_PAGEOUT, MADV_HWPOISON) and advice libmmn does not know
 * as MMN_EVENT_CLEAR; advice that puts the contents in other pages
 * (MADV_COLLAPSE, MADV_POPULATE_WRITE's copy-on-write break,
 * MADV_UNMERGEABLE, MADV_SOFT_OFFLINE) as MMN_EVENT_MIGRATE;
 * MADV_GUARD_INSTALL as MMN_EVENT_UNMAP. Advice that changes no
 * translation now (hints, fork behaviour, MADV_COLD, MADV_POPULATE_READ,
 * MADV_MERGEABLE and MADV_HUGEPAGE, whose effects ksmd and khugepaged
 * bring later on their own) invalidates nothing. See mmn_madvise(3).
 */
int mmn_madvise(struct mmn_state *state, void *addr, size_t len, int advice,
		unsigned int flags);

/* mprotect(2): MMN_EVENT_PROTECTION_VMA. */
int mmn_mprotect(struct mmn_state *state, void *addr, size_t len, int prot,
		 unsigned int flags);

/*
 * mremap(2): MMN_EVENT_REMAP of [OLD_ADDR, OLD_ADDR + OLD_LEN). At the
 * start desc.remap_to is the destination when MREMAP_FIXED names it
 * (*NEW_ADDR on entry, page-aligned), else 0; after a successful call it
 * is where the range went, in every case, before the invalidation ends.
 * With MREMAP_FIXED the destination [*NEW_ADDR, *NEW_ADDR + NEW_LEN),
 * whose old mapping the move replaces, is invalidated too, as
 * MMN_EVENT_UNMAP, both open at once during the call (no libmmn lock is
 * held between them; see mmn_mremap(3) for why this cannot deadlock). On
 * success *NEW_ADDR is where the mapping now is.
 */
int mmn_mremap(struct mmn_state *state, void *old_addr, size_t old_len,
	       size_t new_len, int mremap_flags, void **new_addr,
	       unsigned int flags);

/*
 * fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) of [OFFSET,
 * OFFSET + LEN) in FD, mapped at MAPPED_AT: MMN_EVENT_CLEAR of the mapped
 * range. OFFSET and LEN must be page-aligned.
 */
int mmn_punch_hole(struct mmn_state *state, int fd, off_t offset, off_t len,
		   void *mapped_at, unsigned int flags);

/*
 * mmap(2) with MAP_FIXED over [ADDR, ADDR + LEN), which replaces whatever
 * was mapped there: MMN_EVENT_UNMAP. PROT, MAP_FLAGS (MAP_FIXED is added),
 * FD and OFFSET are mmap's.
 */
int mmn_mmap_fixed(struct mmn_state *state, void *addr, size_t len, int prot,
		   int map_flags, int fd, off_t offset, unsigned int flags);

/* ------------------------------------------------------------------------
 * Host memory: the userfaultfd watcher, an after-the-fact backstop
 *
 * Changes made behind the VMM's back (munmap, madvise(MADV_DONTNEED,
 * MADV_DONTNEED_LOCKED, MADV_FREE or MADV_REMOVE), mremap, mmap(MAP_FIXED)
 * by other code in the process) are
 * seen through userfaultfd events, on a thread of the watcher's own, and
 * reported as a blockable invalidation with MMN_INVALIDATE_AFTER: the
 * change may already be visible. The kernel does not wait for the report,
 * so this is never a bracket. UNMAP and REMAP are sent after the change is
 * complete. REMOVE is sent before the zap: its report stays open until no
 * page of the range is mapped (but to the zero page) and the zapping
 * thread has left the mmap lock, at most 20 ms, so a reader whose
 * read_begin returns after the report sees the memory after the zap.
 * Events a bracket of the same state raises are skipped, only those: same
 * kind, inside its range, for REMAP to its destination. mprotect, hole
 * punching and file truncation raise no event and are not seen. A REMAP
 * report covers the old range and carries the new address in
 * desc.remap_to; it moves nothing itself.
 * Callbacks run on the watcher's thread: they must not change watched
 * mappings themselves (the kernel would wait for the watcher: deadlock).
 */

struct mmn_uffd_watch;

/*
 * Watch [ADDR, ADDR + LEN) (page-aligned, already mapped) and report into
 * STATE. Returns 0, -EINVAL, -EOVERFLOW, -ENOMEM (out of memory, or part of
 * the range is not mapped), -EPERM (userfaultfd not
 * permitted for this process: see /proc/sys/vm/unprivileged_userfaultfd),
 * -ENOSYS (no userfaultfd in this kernel), -EOPNOTSUPP (this kernel cannot
 * watch without servicing faults: no write-protect mode for this memory),
 * -EBUSY (the range already has a userfaultfd, e.g. post-copy migration).
 * Context: may block; starts a thread.
 */
int mmn_uffd_watch_start(struct mmn_state *state, void *addr, size_t len,
			 struct mmn_uffd_watch **watchp);

/*
 * Stop the thread, unregister and free WATCH. After it returns no report
 * from WATCH runs. Context: may block; not from a callback run by WATCH.
 */
void mmn_uffd_watch_stop(struct mmn_uffd_watch *watch);

struct mmn_uffd_stats {
	size_t size;		/* set by the caller: sizeof(struct mmn_uffd_stats) */
	uint64_t events;	/* userfaultfd events read */
	uint64_t reported;	/* reported as MMN_INVALIDATE_AFTER invalidations */
	uint64_t bracketed;	/* skipped: caused by a bracket above */
	uint64_t refused;	/* reports whose invalidation failed */
};

/* Copy WATCH's counters (up to STATS->size bytes). Returns 0 or -EINVAL. */
int mmn_uffd_watch_stats(struct mmn_uffd_watch *watch, struct mmn_uffd_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* MMN_MMN_H */
