/* SPDX-License-Identifier: MIT */
/*
 * The userfaultfd watcher: a backstop for changes made behind the VMM's
 * back, reported after the fact.
 *
 * The range is registered in write-protect mode with nothing
 * write-protected, so no fault ever needs servicing: the registration only
 * subscribes to the non-cooperative events REMOVE (madvise DONTNEED,
 * DONTNEED_LOCKED, FREE or REMOVE), UNMAP (munmap, mremap shrink, mmap
 * MAP_FIXED over the range) and REMAP (mremap move). The kernel makes the
 * changing thread wait until the event is read, not until it is handled.
 * For UNMAP and REMAP the change is done (page tables and TLBs included)
 * before the event is sent, so the report only has to drop what was cached.
 * REMOVE is sent before the zap: the thread zaps once the event is read.
 * Its report therefore stays open until the zap is visible (wait_zap()),
 * so that no reader whose read_begin follows the report can translate a
 * page the zap is about to take away. Every report carries
 * MMN_INVALIDATE_AFTER: it is never a bracket of the change.
 *
 * Events caused by a bracket (hostmem.c) are not reported again. A bracket
 * announces its range, and the events its syscall raises, before the
 * syscall and withdraws them after the syscall returns, which is after its
 * events were read. The watcher takes a snapshot of the announced brackets
 * when poll() says an event is queued, before read(): any bracket that
 * raised that event was still blocked in its syscall then, so it is in the
 * snapshot. Only an event that a bracket of the watcher's own state
 * explains is skipped: one of the kinds its syscall raises, wholly inside
 * its range, and for REMAP from its first byte to its destination. Any
 * other event inside a bracket is a foreign change: reported.
 */
#include "fault.h"
#include "hostmem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define SNAPSHOT_MAX 64

/*
 * How long a REMOVE report waits for the zap at most. The zapping thread
 * runs as soon as read() wakes it; the bound only matters when pages stay
 * mapped (MADV_FREE keeps them until reclaim; a non-reader thread faults
 * them back in), where waiting longer would not help.
 */
#define ZAP_WAIT_NS	20000000ull	/* 20 ms */
#define ZAP_POLL_NS	50000		/* between looks, after a few yields */

/* PAGEMAP_SCAN (Linux 6.7), absent from older uapi headers. */
struct scan_region {
	uint64_t start, end, categories;
};
struct scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PM_PAGEMAP_SCAN		_IOWR('f', 16, struct scan_arg)
#define PM_PAGE_IS_PRESENT	(1ull << 3)
#define PM_PAGE_IS_PFNZERO	(1ull << 5)
#define PAGEMAP_PRESENT		(1ull << 63)	/* /proc/PID/pagemap entry */

struct mmn_uffd_watch {
	struct mmn_state *state;
	int uffd;
	int stop_fd;		/* eventfd: wakes the thread to stop */
	pthread_t thread;
	int pagemap_fd;		/* /proc/self/pagemap, or -1 */
	bool scan;		/* PAGEMAP_SCAN works on it */
	void *barrier_page;	/* mprotect()ed to wait for the mmap lock */
	/* Written by the thread, read by mmn_uffd_watch_stats(): atomics. */
	uint64_t events;
	uint64_t reported;
	uint64_t bracketed;
	uint64_t refused;
	struct uffd_zap_stats zap;
};

static void count(uint64_t *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* Whether bracket B's range holds all of [start, end) (closed forms; 0 is the top). */
static bool contains(const struct bracket *b, uint64_t start, uint64_t end)
{
	return b->start <= start && end - 1 <= b->end - 1;
}

/*
 * Whether a bracket on our own state explains the event: its syscall
 * raises events of this kind, the event lies wholly inside its range, and
 * a REMAP moves its first byte to its destination (any destination when
 * the kernel picks it: the bracket learns it only after the event is
 * read). A change that only overlaps a bracket reaches beyond what the
 * bracket told, a change of another kind is not the bracket's, and a
 * bracket on another state told other subscribers: report.
 */
static bool by_bracket(const struct mmn_uffd_watch *w, const struct bracket *snap,
		       size_t n, unsigned int kind, uint64_t start, uint64_t end,
		       uint64_t remap_to)
{
	if (n > SNAPSHOT_MAX)
		return false;	/* too many to tell: report, twice is safe */
	for (size_t i = 0; i < n; i++) {
		const struct bracket *b = &snap[i];

		if (b->state != w->state || !(b->raises & kind) || !contains(b, start, end))
			continue;
		if (kind == RAISES_REMAP &&
		    (start != b->start || (b->remap_to && b->remap_to != remap_to)))
			continue;
		return true;
	}
	return false;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/*
 * Whether some page of [start, end) is mapped to anything but the zero
 * page; -1 when this cannot be told. The zero page holds what a zapped
 * anonymous page reads back as, so a reader faulting it in does not
 * delay the report.
 */
static int range_mapped(struct mmn_uffd_watch *w, uint64_t start, uint64_t end)
{
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t buf[64];

	if (w->pagemap_fd < 0)
		return -1;
	if (w->scan) {
		struct scan_region found;
		struct scan_arg arg = {
			.size = sizeof(arg), .start = start, .end = end,
			.vec = (uint64_t)(uintptr_t)&found, .vec_len = 1, .max_pages = 1,
			.category_inverted = PM_PAGE_IS_PFNZERO,
			.category_mask = PM_PAGE_IS_PRESENT | PM_PAGE_IS_PFNZERO,
			.return_mask = PM_PAGE_IS_PRESENT,
		};
		long r = ioctl(w->pagemap_fd, PM_PAGEMAP_SCAN, &arg);

		if (r >= 0)
			return r > 0;
		w->scan = false;	/* fall back on the entries */
	}
	for (uint64_t a = start; a != end; ) {
		uint64_t left = (end - a) / page;
		size_t n = left < 64 ? (size_t)left : 64;
		ssize_t r = pread(w->pagemap_fd, buf, n * sizeof(buf[0]),
				  (off_t)(a / page * sizeof(buf[0])));

		if (r <= 0)
			return -1;
		n = (size_t)r / sizeof(buf[0]);
		for (size_t i = 0; i < n; i++)
			if (buf[i] & PAGEMAP_PRESENT)
				return 1;
		a += n * page;
	}
	return 0;
}

/*
 * Keep a REMOVE report open until its zap is visible: no page of the range
 * is mapped (but to the zero page), then one mmap write lock taken and
 * dropped. The zapping thread clears the page tables and flushes the TLBs
 * under one hold of the mmap lock for reading, so a write lock granted
 * after the page tables were seen cleared comes after the flush too.
 * Bounded: pages that stay mapped (MADV_FREE, a non-reader faulting them
 * back) end the wait at ZAP_WAIT_NS. Pages that were not mapped when the
 * event came carry nothing the zap could take away.
 */
static void wait_zap(struct mmn_uffd_watch *w, uint64_t start, uint64_t end)
{
	const uint64_t t0 = now_ns();
	uint64_t waited;
	bool expired = false;

	for (unsigned int i = 0; ; i++) {
		int mapped = range_mapped(w, start, end);

		if (mapped <= 0)
			break;	/* zapped, or nothing to look at: the barrier only */
		if (now_ns() - t0 >= ZAP_WAIT_NS) {
			expired = true;
			break;
		}
		if (i < 8)
			sched_yield();
		else
			nanosleep(&(struct timespec){ .tv_nsec = ZAP_POLL_NS }, NULL);
	}
	if (w->barrier_page)
		mprotect(w->barrier_page, (size_t)sysconf(_SC_PAGESIZE), PROT_NONE);
	waited = now_ns() - t0;
	count(&w->zap.waits);
	if (expired)
		count(&w->zap.expired);
	__atomic_fetch_add(&w->zap.total_ns, waited, __ATOMIC_RELAXED);
	for (uint64_t m = __atomic_load_n(&w->zap.max_ns, __ATOMIC_RELAXED); waited > m; )
		if (__atomic_compare_exchange_n(&w->zap.max_ns, &m, waited, false,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			break;
}

void uffd_zap_stats(struct mmn_uffd_watch *w, struct uffd_zap_stats *out)
{
	out->waits = __atomic_load_n(&w->zap.waits, __ATOMIC_RELAXED);
	out->expired = __atomic_load_n(&w->zap.expired, __ATOMIC_RELAXED);
	out->max_ns = __atomic_load_n(&w->zap.max_ns, __ATOMIC_RELAXED);
	out->total_ns = __atomic_load_n(&w->zap.total_ns, __ATOMIC_RELAXED);
}

static void report(struct mmn_uffd_watch *w, uint64_t start, uint64_t end,
		   enum mmn_event event, uint64_t remap_to, bool before_zap)
{
	struct mmn_invalidate_desc desc = {
		.start = start,
		.end = end,
		.event = event,
		.flags = MMN_INVALIDATE_BLOCKABLE | MMN_INVALIDATE_AFTER,
		.remap_to = remap_to,
	};

	if (start >= end) {
		count(&w->refused);
		return;
	}
	if (mmn_invalidate_start(w->state, &desc) == 0) {
		/* Readers wait in read_begin until the end: the zap first. */
		if (before_zap)
			wait_zap(w, start, end);
		mmn_invalidate_end(w->state, &desc);
		count(&w->reported);
	} else {
		count(&w->refused);
	}
}

static void handle(struct mmn_uffd_watch *w, const struct uffd_msg *msg,
		   const struct bracket *snap, size_t n)
{
	uint64_t start, end, remap_to = 0;
	enum mmn_event event;
	unsigned int kind;

	switch (msg->event) {
	case UFFD_EVENT_REMOVE:
		start = msg->arg.remove.start;
		end = msg->arg.remove.end;
		event = MMN_EVENT_CLEAR;
		kind = RAISES_REMOVE;
		break;
	case UFFD_EVENT_UNMAP:
		start = msg->arg.remove.start;
		end = msg->arg.remove.end;
		event = MMN_EVENT_UNMAP;
		kind = RAISES_UNMAP;
		break;
	case UFFD_EVENT_REMAP:
		start = msg->arg.remap.from;
		end = start + msg->arg.remap.len;
		remap_to = msg->arg.remap.to;
		event = MMN_EVENT_REMAP;
		kind = RAISES_REMAP;
		break;
	default:
		return;	/* no faults: nothing is write-protected */
	}
	count(&w->events);
	if (by_bracket(w, snap, n, kind, start, end, remap_to))
		count(&w->bracketed);
	else
		report(w, start, end, event, remap_to, kind == RAISES_REMOVE);
}

static void *watch_main(void *arg)
{
	struct mmn_uffd_watch *w = arg;
	struct pollfd fds[2] = {
		{ .fd = w->uffd, .events = POLLIN },
		{ .fd = w->stop_fd, .events = POLLIN },
	};
	struct bracket snap[SNAPSHOT_MAX];

	for (;;) {
		struct uffd_msg msg;
		size_t n;
		ssize_t r;

		if ((fault_inject("watcher poll") ? -1 : poll(fds, 2, -1)) < 0) {
			/*
			 * Never give up (ENOMEM is transient): events nobody
			 * reads block every thread that raises one, for good.
			 */
			if (errno != EINTR)
				nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
			continue;
		}
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & POLLIN))
			continue;
		/* Before read(): the thread that raised the event still waits. */
		n = brackets_snapshot(snap, SNAPSHOT_MAX);
		r = read(w->uffd, &msg, sizeof(msg));
		if (r != (ssize_t)sizeof(msg))
			continue;	/* EAGAIN: another reader, or a spurious wakeup */
		handle(w, &msg, snap, n);
	}
	return NULL;
}

/*
 * The watcher's thread blocks every signal: process-directed ones (SIGINT,
 * a VMM's vCPU kick) belong to the application's threads, not to ours.
 */
static int start_thread(struct mmn_uffd_watch *w)
{
	sigset_t all, old;
	int err;

	if (fault_inject("pthread_create"))
		return -errno;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&w->thread, NULL, watch_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -err;
}

static int open_uffd(void)
{
	int fd = fault_inject("userfaultfd") ? -1 :
		 (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	/* Unprivileged processes may still watch their own user-mode faults. */
	if (fd < 0 && errno == EPERM)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	return fd < 0 ? -errno : fd;
}

static int setup_uffd(int uffd, void *addr, size_t len)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP |
			    UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_PAGEFAULT_FLAG_WP,
	};
	struct uffdio_register reg = {
		.range = { .start = (uint64_t)(uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (fault_inject("UFFDIO_API") || ioctl(uffd, UFFDIO_API, &api))
		return errno == EINVAL ? -EOPNOTSUPP : -errno;
	if (fault_inject("UFFDIO_REGISTER") || ioctl(uffd, UFFDIO_REGISTER, &reg))
		return errno == EINVAL ? -EOPNOTSUPP : -errno;
	return 0;
}

/*
 * What wait_zap() looks through. Without them a REMOVE report waits for
 * the mmap lock only: still after any zap already under way.
 */
static void open_zap_probes(struct mmn_uffd_watch *w)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	w->barrier_page = p == MAP_FAILED ? NULL : p;
	w->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	w->scan = w->pagemap_fd >= 0;
}

static void close_zap_probes(struct mmn_uffd_watch *w)
{
	if (w->barrier_page)
		munmap(w->barrier_page, (size_t)sysconf(_SC_PAGESIZE));
	if (w->pagemap_fd >= 0)
		close(w->pagemap_fd);
}

MMN_EXPORT int mmn_uffd_watch_start(struct mmn_state *state, void *addr, size_t len,
				    struct mmn_uffd_watch **watchp)
{
	const uint64_t mask = (uint64_t)sysconf(_SC_PAGESIZE) - 1;
	struct mmn_uffd_watch *w;
	int ret;

	if (!state || !watchp || !addr || len == 0 ||
	    ((uintptr_t)addr & mask) || (len & mask))
		return -EINVAL;
	if ((uint64_t)len - 1 > UINT64_MAX - (uint64_t)(uintptr_t)addr)
		return -EOVERFLOW;

	/* The kernel says EINVAL for holes and unsupported memory alike. */
	if (msync(addr, len, MS_ASYNC))
		return errno == ENOMEM ? -ENOMEM : -errno;

	w = fault_inject("calloc") ? NULL : calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->state = state;
	w->stop_fd = -1;
	w->pagemap_fd = -1;

	ret = open_uffd();
	if (ret < 0)
		goto fail;
	w->uffd = ret;
	ret = setup_uffd(w->uffd, addr, len);
	if (ret)
		goto fail_uffd;
	w->stop_fd = fault_inject("eventfd") ? -1 : eventfd(0, EFD_CLOEXEC);
	if (w->stop_fd < 0) {
		ret = -errno;
		goto fail_uffd;
	}
	open_zap_probes(w);
	ret = start_thread(w);
	if (ret)
		goto fail_probes;
	*watchp = w;
	return 0;

fail_probes:
	close_zap_probes(w);
	close(w->stop_fd);
fail_uffd:
	close(w->uffd);	/* also unregisters */
fail:
	free(w);
	return ret;
}

MMN_EXPORT void mmn_uffd_watch_stop(struct mmn_uffd_watch *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	if (write(w->stop_fd, &one, sizeof(one)) != sizeof(one))
		MMN_BUG_ON(true, "mmn_uffd_watch_stop: cannot wake the watcher");
	pthread_join(w->thread, NULL);
	close_zap_probes(w);
	close(w->stop_fd);
	close(w->uffd);	/* unregisters the range */
	free(w);
}

MMN_EXPORT int mmn_uffd_watch_stats(struct mmn_uffd_watch *w, struct mmn_uffd_stats *stats)
{
	struct mmn_uffd_stats s;
	size_t size;

	if (!w || !stats || stats->size < sizeof(stats->size))
		return -EINVAL;
	size = stats->size < sizeof(s) ? stats->size : sizeof(s);
	s.size = size;
	s.events = __atomic_load_n(&w->events, __ATOMIC_RELAXED);
	s.reported = __atomic_load_n(&w->reported, __ATOMIC_RELAXED);
	s.bracketed = __atomic_load_n(&w->bracketed, __ATOMIC_RELAXED);
	s.refused = __atomic_load_n(&w->refused, __ATOMIC_RELAXED);
	memcpy(stats, &s, size);
	return 0;
}
