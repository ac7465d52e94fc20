/* SPDX-License-Identifier: MIT */
/*
 * Brackets: invalidate, make the memory syscall, end the invalidation.
 *
 * In the kernel the mm calls the notifiers itself; in userspace nobody
 * does, so every change the VMM makes to memory that subscribers cache
 * goes through one of these calls. They are the only way to honour "told
 * before the change is visible". Each bracket also announces its range to
 * the userfaultfd watcher (uffd.c) while its syscall runs, so that the
 * events the syscall raises are not reported a second time.
 */
#include "fault.h"
#include "hostmem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

/* In-flight brackets, process-wide: userfaultfd events are per process. */
static pthread_mutex_t brackets_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bracket *brackets;	/* brackets_lock */

static void bracket_announce(struct bracket *b)
{
	pthread_mutex_lock(&brackets_lock);
	b->next = brackets;
	brackets = b;
	pthread_mutex_unlock(&brackets_lock);
}

static void bracket_withdraw(struct bracket *b)
{
	struct bracket **pp;

	pthread_mutex_lock(&brackets_lock);
	for (pp = &brackets; *pp; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	pthread_mutex_unlock(&brackets_lock);
}

size_t brackets_snapshot(struct bracket *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&brackets_lock);
	for (struct bracket *b = brackets; b; b = b->next, n++)
		if (n < max)
			out[n] = *b;
	pthread_mutex_unlock(&brackets_lock);
	return n;
}

static size_t page_size(void)
{
	static size_t size;

	if (!size)
		size = (size_t)sysconf(_SC_PAGESIZE);
	return size;
}

/*
 * Check ADDR and LEN and compute the range in whole pages. The end may be
 * exactly the top of the space (returned as 0, the desc convention).
 */
static int page_range(const void *addr, size_t len, uint64_t *start, uint64_t *end)
{
	const uint64_t mask = page_size() - 1;
	uint64_t a = (uint64_t)(uintptr_t)addr;

	if ((a & mask) || len == 0)
		return -EINVAL;
	if (len > UINT64_MAX - mask)
		return -EOVERFLOW;
	len = (size_t)(((uint64_t)len + mask) & ~mask);
	if ((uint64_t)len - 1 > UINT64_MAX - a)
		return -EOVERFLOW;
	*start = a;
	*end = a + len;	/* wraps to 0 exactly at the top */
	return 0;
}

/* The syscall a bracket makes: returns 0 or -errno. */
typedef int (*bracket_op)(void *arg);

/*
 * Start an invalidation for each of the N descs (a syscall may change two
 * ranges: mremap's source and the destination it maps over), make the
 * syscall, end them all. RAISES[i] names the userfaultfd events the syscall
 * raises over descs[i]: the watcher skips those and only those. A refusal
 * ends those already started and leaves memory untouched.
 *
 * With two descs both invalidations are open at once on this thread. No
 * lock of libmmn is held from a start to its end, so the only waits are
 * the subscribers' own, and each subscription overlapping either range is
 * hit exactly as one invalidation of both ranges would hit it: a reader
 * blocked in mmn_range_read_begin() waits for the same callbacks either
 * way (see mmn_mremap(3)).
 */
static int run_bracket(struct mmn_state *state, struct mmn_invalidate_desc *descs,
		       const unsigned int *raises, size_t n, unsigned int flags,
		       bracket_op op, void *arg)
{
	struct bracket b[2];
	size_t started, i;
	int ret = 0;

	if (!state || (flags & ~MMN_NONBLOCK))
		return -EINVAL;

	for (started = 0; started < n; started++) {
		descs[started].flags = flags & MMN_NONBLOCK ? 0 : MMN_INVALIDATE_BLOCKABLE;
		ret = mmn_invalidate_start(state, &descs[started]);
		if (ret)
			break;	/* refused: memory untouched */
	}
	if (ret == 0) {
		for (i = 0; i < n; i++) {
			b[i] = (struct bracket){ .state = state, .raises = raises[i],
						 .start = descs[i].start, .end = descs[i].end,
						 .remap_to = descs[i].remap_to };
			bracket_announce(&b[i]);
		}
		ret = fault_inject("bracket syscall") ? -errno : op(arg);
		for (i = 0; i < n; i++)
			bracket_withdraw(&b[i]);
	}
	/* Even when the syscall failed: readers retry, nothing stays odd. */
	while (started--)
		mmn_invalidate_end(state, &descs[started]);
	return ret;
}

static int errno_ret(long r)
{
	return r < 0 ? -errno : 0;
}

struct munmap_args {
	void *addr;
	size_t len;
};

static int do_munmap(void *p)
{
	struct munmap_args *a = p;

	return errno_ret(munmap(a->addr, a->len));
}

MMN_EXPORT int mmn_munmap(struct mmn_state *state, void *addr, size_t len,
			  unsigned int flags)
{
	struct mmn_invalidate_desc desc = { .event = MMN_EVENT_UNMAP };
	struct munmap_args a = { addr, len };
	const unsigned int raises = RAISES_UNMAP;
	int ret = page_range(addr, len, &desc.start, &desc.end);

	return ret ? ret : run_bracket(state, &desc, &raises, 1, flags, do_munmap, &a);
}

/* Linux's values; older glibc headers lack some. */
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102	/* Linux 6.13 */
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

/*
 * What ADVICE does to the pages of the range, from the kernel's madvise:
 * false when it changes no translation (only hints, flags for later, fork
 * behaviour, or faults in pages where there were none); else *EVENT and
 * the userfaultfd events its syscall raises (*RAISES). Advice this table
 * does not know is announced as CLEAR: a newer kernel's advice may drop
 * pages, and an invalidation too many is only a retry.
 */
static bool advice_event(int advice, enum mmn_event *event, unsigned int *raises)
{
	*raises = 0;
	switch (advice) {
	case MADV_DONTNEED:
	case MADV_DONTNEED_LOCKED:
	case MADV_FREE:		/* lazily: the pages go when reclaim wants them */
	case MADV_REMOVE:
		*event = MMN_EVENT_CLEAR;	/* contents go, the mapping stays */
		*raises = RAISES_REMOVE;
		return true;
	case MADV_PAGEOUT:	/* unmapped and written out: back in another page */
	case MADV_HWPOISON:	/* the page is gone: access raises SIGBUS */
		*event = MMN_EVENT_CLEAR;
		return true;
	case MADV_SOFT_OFFLINE:	/* contents copied to another page */
	case MADV_COLLAPSE:	/* small pages copied into a new huge page */
	case MADV_POPULATE_WRITE: /* write fault: breaks COW of shared or zero pages */
	case MADV_UNMERGEABLE:	/* KSM pages replaced by private copies */
		*event = MMN_EVENT_MIGRATE;	/* same contents, other memory */
		return true;
	case MADV_GUARD_INSTALL:
		*event = MMN_EVENT_UNMAP;	/* every access faults from now on */
		return true;
	case MADV_NORMAL:
	case MADV_RANDOM:
	case MADV_SEQUENTIAL:
	case MADV_WILLNEED:	/* reads ahead into the page cache or swap cache */
	case MADV_DONTFORK:
	case MADV_DOFORK:
	case MADV_WIPEONFORK:	/* the child's copy only */
	case MADV_KEEPONFORK:
	case MADV_MERGEABLE:	/* ksmd merges later, out of any bracket's reach */
	case MADV_HUGEPAGE:	/* khugepaged collapses later, likewise */
	case MADV_NOHUGEPAGE:
	case MADV_DONTDUMP:
	case MADV_DODUMP:
	case MADV_COLD:		/* ages the pages; the mappings stay */
	case MADV_POPULATE_READ: /* maps pages where none were; replaces none */
	case MADV_GUARD_REMOVE:	/* guarded pages had no translation */
		return false;
	default:
		*event = MMN_EVENT_CLEAR;
		return true;
	}
}

struct madvise_args {
	void *addr;
	size_t len;
	int advice;
};

static int do_madvise(void *p)
{
	struct madvise_args *a = p;

	return errno_ret(madvise(a->addr, a->len, a->advice));
}

MMN_EXPORT int mmn_madvise(struct mmn_state *state, void *addr, size_t len,
			   int advice, unsigned int flags)
{
	struct mmn_invalidate_desc desc = { .event = MMN_EVENT_CLEAR };
	struct madvise_args a = { addr, len, advice };
	unsigned int raises;
	int ret = page_range(addr, len, &desc.start, &desc.end);

	if (ret)
		return ret;
	if (!advice_event(advice, &desc.event, &raises)) {
		if (!state || (flags & ~MMN_NONBLOCK))
			return -EINVAL;
		return do_madvise(&a);
	}
	return run_bracket(state, &desc, &raises, 1, flags, do_madvise, &a);
}

struct mprotect_args {
	void *addr;
	size_t len;
	int prot;
};

static int do_mprotect(void *p)
{
	struct mprotect_args *a = p;

	return errno_ret(mprotect(a->addr, a->len, a->prot));
}

MMN_EXPORT int mmn_mprotect(struct mmn_state *state, void *addr, size_t len,
			    int prot, unsigned int flags)
{
	struct mmn_invalidate_desc desc = { .event = MMN_EVENT_PROTECTION_VMA };
	struct mprotect_args a = { addr, len, prot };
	const unsigned int raises = 0;	/* mprotect raises no event */
	int ret = page_range(addr, len, &desc.start, &desc.end);

	return ret ? ret : run_bracket(state, &desc, &raises, 1, flags, do_mprotect, &a);
}

struct mremap_args {
	void *old_addr;
	size_t old_len;
	size_t new_len;
	int flags;
	void *fixed;
	void *result;
	struct mmn_invalidate_desc *moved;	/* the source's desc */
};

static int do_mremap(void *p)
{
	struct mremap_args *a = p;

	a->result = mremap(a->old_addr, a->old_len, a->new_len, a->flags, a->fixed);
	if (a->result == MAP_FAILED)
		return -errno;
	/* Known now: the end tells where the range went. */
	a->moved->remap_to = (uint64_t)(uintptr_t)a->result;
	return 0;
}

MMN_EXPORT int mmn_mremap(struct mmn_state *state, void *old_addr, size_t old_len,
			  size_t new_len, int mremap_flags, void **new_addr,
			  unsigned int flags)
{
	/* [0]: the source moves; [1]: with MREMAP_FIXED, what the move maps over. */
	struct mmn_invalidate_desc desc[2] = {
		{ .event = MMN_EVENT_REMAP },
		{ .event = MMN_EVENT_UNMAP },
	};
	struct mremap_args a = { old_addr, old_len, new_len, mremap_flags, NULL, NULL, &desc[0] };
	/*
	 * The source raises REMAP (a move) and UNMAP (the old range, or the
	 * tail a shrink drops); the destination, UNMAP of what it replaces.
	 */
	const unsigned int raises[2] = { RAISES_REMAP | RAISES_UNMAP, RAISES_UNMAP };
	size_t n = 1;
	int ret;

	if (!new_addr || new_len == 0)
		return -EINVAL;
	ret = page_range(old_addr, old_len, &desc[0].start, &desc[0].end);
	if (ret)
		return ret;
	if (mremap_flags & MREMAP_FIXED) {
		a.fixed = *new_addr;
		ret = page_range(a.fixed, new_len, &desc[1].start, &desc[1].end);
		if (ret)
			return ret;
		desc[0].remap_to = desc[1].start;
		n = 2;
	}
	ret = run_bracket(state, desc, raises, n, flags, do_mremap, &a);
	if (ret == 0)
		*new_addr = a.result;
	return ret;
}

struct punch_args {
	int fd;
	off_t offset;
	off_t len;
};

static int do_punch(void *p)
{
	struct punch_args *a = p;

	return errno_ret(fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   a->offset, a->len));
}

MMN_EXPORT int mmn_punch_hole(struct mmn_state *state, int fd, off_t offset,
			      off_t len, void *mapped_at, unsigned int flags)
{
	struct mmn_invalidate_desc desc = { .event = MMN_EVENT_CLEAR };
	struct punch_args a = { fd, offset, len };
	const unsigned int raises = 0;
	int ret;

	if (fd < 0 || offset < 0 || len <= 0 ||
	    (((uint64_t)offset | (uint64_t)len) & (page_size() - 1)))
		return -EINVAL;
	ret = page_range(mapped_at, (size_t)len, &desc.start, &desc.end);
	/* fallocate raises no event: the watcher never sees a punch. */
	return ret ? ret : run_bracket(state, &desc, &raises, 1, flags, do_punch, &a);
}

struct mmap_args {
	void *addr;
	size_t len;
	int prot;
	int flags;
	int fd;
	off_t offset;
};

static int do_mmap_fixed(void *p)
{
	struct mmap_args *a = p;
	void *r = mmap(a->addr, a->len, a->prot, a->flags | MAP_FIXED, a->fd, a->offset);

	return r == MAP_FAILED ? -errno : 0;
}

MMN_EXPORT int mmn_mmap_fixed(struct mmn_state *state, void *addr, size_t len,
			      int prot, int map_flags, int fd, off_t offset,
			      unsigned int flags)
{
	struct mmn_invalidate_desc desc = { .event = MMN_EVENT_UNMAP };
	struct mmap_args a = { addr, len, prot, map_flags, fd, offset };
	const unsigned int raises = RAISES_UNMAP;
	int ret = page_range(addr, len, &desc.start, &desc.end);

	return ret ? ret : run_bracket(state, &desc, &raises, 1, flags, do_mmap_fixed, &a);
}
