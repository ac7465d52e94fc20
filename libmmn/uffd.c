/* SPDX-License-Identifier: MIT */
/*
 * The userfaultfd watcher: a backstop for changes made behind the VMM's
 * back, reported after the fact.
 *
 * The range is registered in write-protect mode with nothing
 * write-protected, so no fault ever needs servicing: the registration only
 * subscribes to the non-cooperative events REMOVE (madvise DONTNEED,
 * DONTNEED_LOCKED, FREE or REMOVE), UNMAP (munmap, mremap shrink, mmap
 * MAP_FIXED over the range) and REMAP (mremap move). The kernel makes the changing thread wait until
 * the event is read, not until it is handled, and for UNMAP and REMAP the
 * change is already done; so every report carries MMN_INVALIDATE_AFTER and
 * nothing here can be a bracket.
 *
 * Events caused by a bracket (hostmem.c) are not reported again. A bracket
 * announces its range before its syscall and withdraws it after the
 * syscall returns, which is after its event was read. The watcher takes a
 * snapshot of the announced ranges when poll() says an event is queued,
 * before read(): any bracket that raised that event was still blocked in
 * its syscall then, so it is in the snapshot. Only an event that lies
 * wholly inside a bracket of the watcher's own state is skipped.
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

struct mmn_uffd_watch {
	struct mmn_state *state;
	int uffd;
	int stop_fd;		/* eventfd: wakes the thread to stop */
	pthread_t thread;
	/* Written by the thread, read by mmn_uffd_watch_stats(): atomics. */
	uint64_t events;
	uint64_t reported;
	uint64_t bracketed;
	uint64_t refused;
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
 * Whether a bracket on our own state announced the whole event. A foreign
 * change that only overlaps a bracket reaches beyond what the bracket
 * told, and a bracket on another state told other subscribers: report.
 */
static bool by_bracket(const struct mmn_uffd_watch *w, const struct bracket *snap,
		       size_t n, uint64_t start, uint64_t end)
{
	if (n > SNAPSHOT_MAX)
		return false;	/* too many to tell: report, twice is safe */
	for (size_t i = 0; i < n; i++)
		if (snap[i].state == w->state && contains(&snap[i], start, end))
			return true;
	return false;
}

static void report(struct mmn_uffd_watch *w, uint64_t start, uint64_t end,
		   enum mmn_event event, uint64_t remap_to)
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

	switch (msg->event) {
	case UFFD_EVENT_REMOVE:
		start = msg->arg.remove.start;
		end = msg->arg.remove.end;
		event = MMN_EVENT_CLEAR;
		break;
	case UFFD_EVENT_UNMAP:
		start = msg->arg.remove.start;
		end = msg->arg.remove.end;
		event = MMN_EVENT_UNMAP;
		break;
	case UFFD_EVENT_REMAP:
		start = msg->arg.remap.from;
		end = start + msg->arg.remap.len;
		remap_to = msg->arg.remap.to;
		event = MMN_EVENT_REMAP;
		break;
	default:
		return;	/* no faults: nothing is write-protected */
	}
	count(&w->events);
	if (by_bracket(w, snap, n, start, end))
		count(&w->bracketed);
	else
		report(w, start, end, event, remap_to);
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
	ret = start_thread(w);
	if (ret)
		goto fail_stop;
	*watchp = w;
	return 0;

fail_stop:
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
