/* SPDX-License-Identifier: MIT */
/*
 * The shadow map: a device's GPA-to-HVA translation cache, like vhost's
 * IOTLB, kept coherent through libmmn.
 *
 * Entries (a 2 MiB block, else pages of it) sit in a hash table of block
 * slots that accesses read without a lock: a slot's sequence count makes
 * a reader see an entry whole, and every access runs inside a read-side
 * section announced in one of the map's reader slots. One range
 * subscription on the guest-physical mmn_state covers the space the map
 * serves, [0, space_end), and nothing past it is cached. Its callback
 * unpublishes the entries an invalidation overlaps (PROTECTION events
 * only make them read-only; CLEAR also leaves a discard marker), then
 * waits until no section that may have seen them runs, so once an
 * invalidation has returned nothing touches the old host address. Misses follow the reader pattern: read_begin, translate, lock,
 * read_retry, publish.
 *
 * Not tied to kvm-demo: the translation is a callback, so tests drive the
 * map over fake guest memory.
 */
#ifndef KVM_DEMO_SHADOW_H
#define KVM_DEMO_SHADOW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mmn/mmn.h>

#define SHADOW_PAGE		4096ull
#define SHADOW_BLOCK		(2ull << 20)	/* largest entry, aligned */
#define SHADOW_CHUNK		(64u << 10)	/* most bytes per read-side section */

/*
 * The authoritative lookup: host address of [GPA, GPA + LEN) for reading
 * or (WRITE) writing. Returns 0, -EFAULT, -EACCES or -EAGAIN (the memory
 * is changing: ask again after read_begin), as memory_translate() does.
 */
typedef int (*shadow_translate_fn)(void *ctx, uint64_t gpa, uint64_t len, bool write,
				   void **hva);

/*
 * Called inside a read-side section on LEN bytes at HVA, OFFSET bytes into
 * the access: invalidations of the map wait for it to return. Must not
 * call into the map or block for long. Returns 0 or a negative errno,
 * which ends the access.
 */
typedef int (*shadow_access_fn)(void *arg, void *hva, size_t len, uint64_t offset);

struct shadow_stats {
	uint64_t hits;		/* accesses served by an entry */
	uint64_t misses;	/* entries filled through the translation */
	uint64_t retries;	/* fills redone: an invalidation collided */
	uint64_t faults;	/* accesses refused: not RAM, discarded, read-only */
	uint64_t slow_writes;	/* writes that met a read-only entry */
	uint64_t invalidations;	/* callbacks that overlapped the space */
	uint64_t dropped;	/* entries dropped by invalidations */
	uint64_t refusals;	/* non-blockable invalidations refused */
	uint64_t entries;	/* entries now */
	uint64_t discard_marks;	/* discard markers now */
};

#define SHADOW_SLOTS		1024u	/* block slots: a cache, colliding blocks evict */
#define SHADOW_READERS		16u	/* read-side sections running at once */

/* A block's entry: (block << 3) | flags in key, the host address in val. */
struct shadow_slot {
	atomic_uint_least64_t seq;	/* odd while val or a page changes */
	atomic_uint_least64_t key;
	atomic_uintptr_t val;		/* hva, or the block's struct shadow_pages */
};

/*
 * A reader slot, claimed for one section by a compare-and-swap; padded to
 * a cache line (the map may sit in malloc()ed memory: no _Alignas).
 */
struct shadow_reader {
	atomic_uint_least64_t state;	/* odd: a section runs */
	atomic_uint_least64_t hits;	/* written by the section's owner only */
	uint64_t pad[6];
};

struct shadow_pages;

struct shadow_map {
	struct mmn_range_sub sub;
	uint64_t space_end;		/* the subscription is [0, space_end) */
	shadow_translate_fn translate;
	void *ctx;
	atomic_bool wlock;		/* writers: slots, marks, retired pages */
	pthread_mutex_t lock;		/* for changed */
	pthread_cond_t changed;		/* broadcast by invalidations when waited for */
	atomic_uint waiters;		/* in shadow_wait_change() */
	struct mmn_itree marks;		/* wlock: discard markers */
	struct shadow_pages *retired;	/* wlock: page tables readers may still see */
	atomic_uint_least64_t nr_entries;	/* written under wlock */
	atomic_uint_least64_t nr_marks;		/* written under wlock */
	atomic_uint_least64_t misses, dropped, invalidations;	/* written under wlock */
	atomic_uint_least64_t retries, faults, slow_writes, refusals;
	struct shadow_reader readers[SHADOW_READERS];
	struct shadow_slot slots[SHADOW_SLOTS];
};

/*
 * Subscribe to [0, SPACE_END) of GUEST_MM: the map caches and serves
 * whole pages below SPACE_END only, refusing the rest with -EFAULT, so
 * that every entry is one an invalidation can reach (libmmn cannot
 * express a range of 2^64 bytes). Returns 0, -EOVERFLOW (SPACE_END 0) or
 * another negative errno. Context: not from a callback of GUEST_MM.
 */
int shadow_map_init(struct shadow_map *sm, struct mmn_state *guest_mm, uint64_t space_end,
		    shadow_translate_fn translate, void *ctx);
/* Unsubscribe and free every entry. Context: no access may run. */
void shadow_map_destroy(struct shadow_map *sm);

/*
 * Run FN over [GPA, GPA + LEN) in pieces, each in a read-side section through a
 * current translation. Returns 0, -EFAULT (not RAM, discarded, or the
 * range overflows), -EACCES (WRITE to read-only memory) or FN's error;
 * pieces before the failing one were done. Context: may block (read_begin
 * waits for running invalidations); not from a callback of GUEST_MM.
 */
int shadow_access(struct shadow_map *sm, uint64_t gpa, uint64_t len, bool write,
		  shadow_access_fn fn, void *arg);
/* Copy out of / into guest memory through shadow_access(). */
int shadow_read(struct shadow_map *sm, uint64_t gpa, void *buf, uint64_t len);
int shadow_write(struct shadow_map *sm, uint64_t gpa, const void *buf, uint64_t len);

/*
 * Invalidations so far. A device whose write met read-only memory (a
 * snapshot pass) reads this before the access and then waits with
 * shadow_wait_change() for the next invalidation, at most MS ms; true
 * when one ran. Context: not from a callback of GUEST_MM.
 */
uint64_t shadow_generation(struct shadow_map *sm);
bool shadow_wait_change(struct shadow_map *sm, uint64_t gen, unsigned int ms);

/* The figures. Context: any thread; never blocks. */
void shadow_map_stats(struct shadow_map *sm, struct shadow_stats *st);

#endif
