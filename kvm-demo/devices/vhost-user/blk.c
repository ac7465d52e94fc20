/* SPDX-License-Identifier: MIT */
/*
 * The disk: a virtio-blk device served by a vhost-user backend in another
 * process (qemu-storage-daemon), kept coherent through libmmn.
 *
 * The mmu-notifier contract across a socket. The backend maps guest RAM
 * from the regions' memfds and reaches it from its own threads, so it is
 * a whole-space subscriber of vm->guest_mm:
 *   - blockable invalidate_start over RAM it holds: pause the vCPUs (no
 *     new requests), wait until every request published is complete, stop
 *     the ring (GET_VRING_BASE: qemu-storage-daemon 7.2 must not complete a
 *     request after it, its notification would hit a closed fd), park
 *     the ring on a 4 KiB region of its own (a backend may not keep a ring
 *     in a region it is told to drop), then REM_MEM_REG each region the
 *     range touches, every step acked. Only then may the change happen.
 *   - invalidate_end: ADD_MEM_REG the regions as they are now (a remapped
 *     one at its new address), and restart the ring where it stopped,
 *     unless another change is still running or RAM is write-protected
 *     (the backend would write through its own mapping).
 *   - non-blockable: refused (-EAGAIN) while the ring runs; a discard
 *     while it is stopped goes ahead (the backend's mapping stays valid
 *     and nothing uses it).
 * A backend that does not answer in time, or answers wrongly, is treated
 * as dead before the change goes on: the connection is shut down and a
 * backend kvm-demo started is killed and reaped, so that its mappings are
 * gone. An external backend's mappings last until it notices; the line
 * printed says so.
 *
 * The guest's kicks are an ioeventfd on KD_BLK_PORT_KICK that the backend
 * reads directly; the VMM is not on the data path. Once the backend is
 * gone, the watcher thread reads the kicks instead and completes every
 * request with an I/O error, outstanding ones first.
 *
 * Lock order: [guest_mm callbacks, vCPU port I/O, watcher] -> d->lock ->
 * mem_lock (read, in memory_translate()) and the frontend's lock.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "core/vm.h"
#include "devices/vhost-user/blk.h"
#include "devices/vhost-user/frontend.h"
#include "devices/vhost-user/qsd.h"
#include "devices/vring.h"
#include "guest/blk-abi.h"
#include "mem/mem.h"

#define container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

#define NR_SLOTS	(1 + KD_MAX_DIMMS)
#define PARK_SIZE	4096u
#define PARK_GPA	(KD_GPA_SPACE_END - PARK_SIZE)	/* never guest RAM */
#define MAX_SUSPENDS	16u

/* A region as the backend holds it. */
struct held {
	bool used;
	struct vu_mem_region r;
	int fd;			/* our duplicate of the region's memfd */
};

struct vu_blk {
	struct vm *vm;
	pthread_mutex_t lock;		/* all below, and every use of the frontend */
	struct vu_frontend f;
	bool f_open;
	struct qsd qsd;			/* pid 0: not running (any more) */
	bool own_backend;		/* kvm-demo started it */
	char what[160];			/* the backend, for messages */
	uint64_t capacity;		/* sectors */
	struct held held[NR_SLOTS];
	int park_fd;
	void *park;
	struct vu_mem_region park_region;
	struct vu_ring ring;
	bool ring_wanted;		/* the guest has a ring set up */
	uint64_t ring_gpa[3];		/* its desc, avail and used GPAs */
	const struct mmn_invalidate_desc *suspends[MAX_SUSPENDS];	/* starts that stopped it */
	unsigned int nr_suspends;
	atomic_bool dead;
	uint16_t dead_next;		/* dead: the next available entry to fail */
	atomic_uint setup_status;	/* read by vCPUs without the lock */
	struct mmn_sub sub;
	bool sub_registered;
	int stop_fd;			/* eventfd: the watcher stops */
	int wake_fd;			/* eventfd: the backend just died */
	pthread_t watcher;
	bool watcher_started;
	bool ioeventfd;
	bool corrupt;			/* --inject disk-corrupt */
	atomic_bool kill_in_flight;	/* --inject backend-kill, not done yet */
	uint64_t sum;			/* the guest's checksum report */
	uint32_t sum_covered;
	unsigned int sum_words;
	/* Figures. */
	atomic_uint_least64_t invalidations, refusals, ring_stops, removed, added, failed_reqs;
	atomic_uint_least64_t wait_ns_total, wait_ns_max, waits;
};

static uint64_t ns_since(double t0)
{
	return (uint64_t)((kd_now() - t0) * 1e9);
}

static bool overlaps(const struct vu_mem_region *r, uint64_t start, uint64_t end)
{
	/* END 0 stands for 2^64. */
	return r->gpa + r->size > start && (end == 0 || r->gpa < end);
}

/*
 * The backend cannot be trusted to reach memory correctly any more: shut
 * the connection, and kill and reap a backend we started, so that its
 * mappings of guest RAM are gone. Prints one line. d->lock held.
 */
static void backend_failed(struct vu_blk *d, const char *consequence)
{
	char err[256];

	if (atomic_exchange(&d->dead, true))
		return;
	vu_last_error(&d->f, err, sizeof(err));
	vu_shutdown(&d->f, "given up");
	if (d->qsd.pid > 0) {
		kill(d->qsd.pid, SIGKILL);
		waitpid(d->qsd.pid, NULL, 0);
		d->qsd.pid = 0;
		kd_error("disk: %s: %s killed%s; disk requests now fail with an I/O error", err,
			 d->what, consequence);
	} else if (d->own_backend) {
		kd_error("disk: %s: %s is gone%s; disk requests now fail with an I/O error", err,
			 d->what, consequence);
	} else {
		kd_error("disk: %s: connection to %s closed%s (it keeps its mappings until it "
			 "notices); disk requests now fail with an I/O error", err, d->what,
			 consequence);
	}
	if (eventfd_write(d->wake_fd, 1) < 0)
		kd_error("disk: eventfd write: %s", strerror(errno));
}

static void hold_drop(struct held *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->used = false;
}

/* Make the backend hold exactly the plugged RAM regions as they are now. d->lock held. */
static int sync_regions(struct vu_blk *d)
{
	struct vm *vm = d->vm;
	struct vu_mem_region want[NR_SLOTS];
	int fds[NR_SLOTS];
	unsigned int n = 0;

	pthread_rwlock_rdlock(&vm->mem_lock);
	for (unsigned int i = 0; i < vm->nr_regions && n < NR_SLOTS; i++) {
		const struct mem_region *r = &vm->regions[i];

		if (!r->plugged || !r->hva || r->memfd < 0)
			continue;
		want[n] = (struct vu_mem_region){ .gpa = r->gpa, .size = r->size,
						  .uaddr = (uint64_t)(uintptr_t)r->hva };
		fds[n] = r->memfd;
		n++;
	}
	pthread_rwlock_unlock(&vm->mem_lock);
	/* Drop what changed or went, then add what is missing. */
	for (unsigned int i = 0; i < NR_SLOTS; i++) {
		struct held *h = &d->held[i];
		bool keep = false;

		if (!h->used)
			continue;
		for (unsigned int k = 0; k < n && !keep; k++)
			keep = !memcmp(&want[k], &h->r, sizeof(h->r));
		if (keep)
			continue;
		if (vu_rem_mem_reg(&d->f, &h->r, h->fd))
			return -1;
		atomic_fetch_add(&d->removed, 1);
		hold_drop(h);
	}
	for (unsigned int k = 0; k < n; k++) {
		struct held *h = NULL;
		bool have = false;

		for (unsigned int i = 0; i < NR_SLOTS; i++) {
			have |= d->held[i].used && !memcmp(&want[k], &d->held[i].r, sizeof(want[k]));
			if (!d->held[i].used && !h)
				h = &d->held[i];
		}
		if (have)
			continue;
		if (!h)
			return -1;
		h->fd = fcntl(fds[k], F_DUPFD_CLOEXEC, 0);
		if (h->fd < 0) {
			kd_error("disk: dup of a memfd: %s", strerror(errno));
			return -1;
		}
		if (vu_add_mem_reg(&d->f, &want[k], h->fd)) {
			close(h->fd);
			h->fd = -1;
			return -1;
		}
		h->r = want[k];
		h->used = true;
		atomic_fetch_add(&d->added, 1);
	}
	return 0;
}

/* Host addresses of the guest's ring; each part must lie in RAM. */
static int ring_translate(struct vu_blk *d)
{
	static const uint64_t len[3] = {
		16ull * KD_BLK_QUEUE_SIZE, 6 + 2ull * KD_BLK_QUEUE_SIZE, 6 + 8ull * KD_BLK_QUEUE_SIZE
	};
	void *hva[3];

	for (unsigned int i = 0; i < 3; i++)
		if (memory_translate(d->vm, d->ring_gpa[i], len[i], i == 2, &hva[i]))
			return -1;
	d->ring.desc = (uint64_t)(uintptr_t)hva[0];
	d->ring.avail = (uint64_t)(uintptr_t)hva[1];
	d->ring.used = (uint64_t)(uintptr_t)hva[2];
	return 0;
}

/* Requests the guest published that are not complete; after ring_translate(). */
static uint16_t in_flight(const struct vu_blk *d)
{
	const struct kd_vring_avail *avail = (const void *)(uintptr_t)d->ring.avail;
	const struct kd_vring_used *used = (const void *)(uintptr_t)d->ring.used;

	return (uint16_t)(__atomic_load_n(&avail->idx, __ATOMIC_ACQUIRE) -
			  __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE));
}

static bool any_readonly(struct vm *vm)
{
	bool ro = false;

	pthread_rwlock_rdlock(&vm->mem_lock);
	for (unsigned int i = 0; i < vm->nr_regions; i++)
		ro |= vm->regions[i].plugged && vm->regions[i].readonly;
	pthread_rwlock_unlock(&vm->mem_lock);
	return ro;
}

/* Start the guest's ring if it wants one and nothing holds it back. d->lock held. */
static void ring_resume(struct vu_blk *d)
{
	if (atomic_load(&d->dead) || !d->ring_wanted || d->ring.started || d->nr_suspends ||
	    any_readonly(d->vm))
		return;
	if (ring_translate(d)) {
		kd_error("disk: the guest's ring is no longer in RAM: not restarted");
		return;
	}
	if (vu_ring_start(&d->f, &d->ring)) {
		backend_failed(d, "");
		return;
	}
	/* Kicks that came while it was stopped: the backend looks again. */
	if (eventfd_write(d->ring.kick_fd, 1) < 0)
		kd_error("disk: eventfd write: %s", strerror(errno));
}

/*
 * Wait, within the timeout, until the backend completed every request the
 * guest published; the vCPUs are paused, so no new one comes. d->lock held.
 */
static int drain(struct vu_blk *d)
{
	const volatile uint16_t *avail = (const volatile uint16_t *)(uintptr_t)(d->ring.avail + 2);
	const volatile uint16_t *used = (const volatile uint16_t *)(uintptr_t)(d->ring.used + 2);
	double deadline = kd_now() + d->f.timeout_ms / 1e3;

	/* A vCPU paused between publishing and kicking: kick for it. */
	if (__atomic_load_n(used, __ATOMIC_ACQUIRE) != *avail &&
	    eventfd_write(d->ring.kick_fd, 1) < 0)
		kd_error("disk: eventfd write: %s", strerror(errno));
	while (__atomic_load_n(used, __ATOMIC_ACQUIRE) != *avail) {
		if (kd_now() >= deadline) {
			char msg[160];

			snprintf(msg, sizeof(msg), "ring 0: requests still in flight %u ms after "
				 "the vCPUs stopped (used index %u, available %u)", d->f.timeout_ms,
				 (unsigned int)*used, (unsigned int)*avail);
			vu_shutdown(&d->f, msg);
			return -ETIMEDOUT;
		}
		/* Completions signal the call eventfd, which the watcher drains: poll. */
		poll(NULL, 0, 1);
	}
	return 0;
}

static int blk_invalidate_start(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	struct vu_blk *d = container_of(sub, struct vu_blk, sub);
	bool touches = false, paused = false;
	double t0 = kd_now();
	uint64_t ns;

	/* Before d->lock: a vCPU in the disk's port handler holds it while it runs. */
	if ((desc->flags & MMN_INVALIDATE_BLOCKABLE) && __atomic_load_n(&d->ring.started, __ATOMIC_RELAXED) &&
	    !atomic_load(&d->dead)) {
		vm_pause(d->vm);
		paused = true;
	}
	pthread_mutex_lock(&d->lock);
	for (unsigned int i = 0; i < NR_SLOTS; i++)
		touches |= d->held[i].used && overlaps(&d->held[i].r, desc->start, desc->end);
	if (!touches || atomic_load(&d->dead)) {
		pthread_mutex_unlock(&d->lock);
		if (paused)
			vm_resume(d->vm);
		return 0;
	}
	if (!(desc->flags & MMN_INVALIDATE_BLOCKABLE)) {
		/* Stopping the ring, or removing a region, means waiting for the backend. */
		if (d->ring.started || desc->event != MMN_EVENT_CLEAR) {
			atomic_fetch_add(&d->refusals, 1);
			pthread_mutex_unlock(&d->lock);
			return -EAGAIN;
		}
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	atomic_fetch_add(&d->invalidations, 1);
	if (d->nr_suspends == MAX_SUSPENDS) {
		kd_error("disk: more than %u memory changes at once", MAX_SUSPENDS);
		abort();
	}
	d->suspends[d->nr_suspends++] = desc;
	if (d->ring.started) {
		atomic_fetch_add(&d->ring_stops, 1);
		/* A vCPU may have set the ring up after the check above. */
		if (!paused) {
			pthread_mutex_unlock(&d->lock);
			vm_pause(d->vm);
			paused = true;
			pthread_mutex_lock(&d->lock);
		}
		if ((d->ring.started && drain(d)) ||
		    (d->ring.started && vu_ring_stop(&d->f, &d->ring, d->park_region.uaddr))) {
			backend_failed(d, "; the memory change goes on without it");
			goto out;
		}
	}
	for (unsigned int i = 0; i < NR_SLOTS; i++) {
		struct held *h = &d->held[i];

		if (!h->used || !overlaps(&h->r, desc->start, desc->end))
			continue;
		if (vu_rem_mem_reg(&d->f, &h->r, h->fd)) {
			backend_failed(d, "; the memory change goes on without it");
			goto out;
		}
		atomic_fetch_add(&d->removed, 1);
		hold_drop(h);
	}
out:
	ns = ns_since(t0);
	atomic_fetch_add(&d->waits, 1);
	atomic_fetch_add(&d->wait_ns_total, ns);
	if (ns > atomic_load(&d->wait_ns_max))
		atomic_store(&d->wait_ns_max, ns);
	pthread_mutex_unlock(&d->lock);
	if (paused)
		vm_resume(d->vm);
	return 0;
}

static void blk_invalidate_end(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	struct vu_blk *d = container_of(sub, struct vu_blk, sub);
	bool mine = false;

	pthread_mutex_lock(&d->lock);
	for (unsigned int i = 0; i < d->nr_suspends && !mine; i++) {
		if (d->suspends[i] != desc)
			continue;
		d->suspends[i] = d->suspends[--d->nr_suspends];
		mine = true;
	}
	if (mine && !atomic_load(&d->dead)) {
		if (sync_regions(d))
			backend_failed(d, "");
		else
			ring_resume(d);
	}
	pthread_mutex_unlock(&d->lock);
}

static const struct mmn_sub_ops blk_sub_ops = {
	.invalidate_start = blk_invalidate_start,
	.invalidate_end = blk_invalidate_end,
};

/*
 * Dead backend: complete the guest's requests from d->dead_next on with
 * an I/O error, as the device would. d->lock held.
 */
static void fail_pending(struct vu_blk *d)
{
	struct kd_vring_desc table[KD_BLK_QUEUE_SIZE];
	struct kd_vring_avail *avail;
	struct kd_vring_used *used;
	void *p;

	if (!d->ring_wanted)
		return;
	if (memory_translate(d->vm, d->ring_gpa[0], sizeof(table), false, &p))
		return;
	if (ring_translate(d))
		return;
	avail = (void *)(uintptr_t)d->ring.avail;
	used = (void *)(uintptr_t)d->ring.used;
	while (d->dead_next != __atomic_load_n(&avail->idx, __ATOMIC_ACQUIRE)) {
		uint16_t head = avail->ring[d->dead_next % KD_BLK_QUEUE_SIZE];
		struct vring_seg segs[KD_VDEV_MAX_SEGS];
		uint32_t len = 0;
		int n;

		memcpy(table, p, sizeof(table));
		n = vring_walk(table, KD_BLK_QUEUE_SIZE, head, segs, KD_VDEV_MAX_SEGS);
		if (n > 0 && segs[n - 1].write) {
			void *status;

			if (!memory_translate(d->vm, segs[n - 1].gpa + segs[n - 1].len - 1, 1, true,
					      &status)) {
				*(volatile uint8_t *)status = KD_BLK_S_IOERR;
				len = 1;
			}
		}
		used->ring[used->idx % KD_BLK_QUEUE_SIZE] = (struct kd_vring_used_elem){ head, len };
		__atomic_store_n(&used->idx, (uint16_t)(used->idx + 1), __ATOMIC_RELEASE);
		d->dead_next++;
		atomic_fetch_add(&d->failed_reqs, 1);
	}
}

/*
 * --inject backend-kill: once the guest has requests published and not
 * completed, stop the backend, look again (stopped, it completes nothing,
 * so what is outstanding now stays so) and SIGKILL it; otherwise let it
 * go on and try later. The watcher then finds the connection closed, as
 * with any death. d->lock held.
 */
static void inject_kill(struct vu_blk *d)
{
	pid_t pid = d->qsd.pid;
	uint16_t n;
	int status;

	if (pid <= 0 || !d->ring.started || ring_translate(d) || !in_flight(d))
		return;
	atomic_store(&d->kill_in_flight, false);
	if (kill(pid, SIGSTOP) || waitpid(pid, &status, WUNTRACED) != pid) {
		kd_error("disk: --inject backend-kill: could not stop %s: %s", d->what,
			 strerror(errno));
		return;
	}
	if (!WIFSTOPPED(status)) {
		/* It ended on its own meanwhile, and is reaped: nothing to inject. */
		d->qsd.pid = 0;
		kd_error("disk: --inject backend-kill: %s ended before it could be stopped",
			 d->what);
		return;
	}
	n = in_flight(d);
	if (n == 0) {
		/* They completed before it stopped: let it go on, look again later. */
		atomic_store(&d->kill_in_flight, true);
		kill(pid, SIGCONT);
		return;
	}
	printf("kvm-demo: disk: --inject backend-kill: %u requests in flight, %s stopped and "
	       "killed with SIGKILL\n", (unsigned int)n, d->what);
	fflush(stdout);
	kill(pid, SIGKILL);
}

/*
 * The watcher: notices the backend hang up (or die), then, once it is
 * dead, serves the kicks itself with I/O errors.
 */
static void *watcher_main(void *arg)
{
	struct vu_blk *d = arg;
	bool was_dead = false;

	for (;;) {
		bool dead = atomic_load(&d->dead);
		struct pollfd p[3] = {
			{ .fd = d->stop_fd, .events = POLLIN },
			{ .fd = dead ? d->ring.kick_fd : vu_socket(&d->f), .events = dead ? POLLIN : POLLRDHUP },
			{ .fd = dead ? d->wake_fd : d->ring.call_fd, .events = POLLIN },
		};
		uint64_t v;
		/* --inject backend-kill looks at the ring every 2 ms until it has struck. */
		int timeout = !dead && atomic_load(&d->kill_in_flight) ? 2 : -1;

		if (poll(p, 3, timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		if (p[2].revents & POLLIN)
			(void)eventfd_read(p[2].fd, &v);
		pthread_mutex_lock(&d->lock);
		if (!dead && (p[1].revents & (POLLHUP | POLLRDHUP | POLLERR))) {
			char why[96] = "";

			/* Its end closed the socket: it is gone, or going within a second. */
			if (d->qsd.pid > 0) {
				int status;

				if (qsd_wait(&d->qsd, 1000, &status)) {
					if (WIFSIGNALED(status))
						snprintf(why, sizeof(why), " (killed by signal %d)",
							 WTERMSIG(status));
					else
						snprintf(why, sizeof(why), " (exited with status %d)",
							 WEXITSTATUS(status));
				}
			}
			{
				char err[128];

				snprintf(err, sizeof(err), "the backend closed the connection%s", why);
				vu_shutdown(&d->f, err);
			}
			backend_failed(d, "");
		}
		dead = atomic_load(&d->dead);
		if (dead) {
			if (!was_dead && d->ring_wanted && !ring_translate(d))
				d->dead_next = __atomic_load_n(
					&((struct kd_vring_used *)(uintptr_t)d->ring.used)->idx,
					__ATOMIC_ACQUIRE);
			was_dead = true;
			if (p[1].revents & POLLIN)
				(void)eventfd_read(d->ring.kick_fd, &v);
			fail_pending(d);
		} else if (atomic_load(&d->kill_in_flight)) {
			inject_kill(d);
		}
		pthread_mutex_unlock(&d->lock);
	}
	return NULL;
}

/* The guest wrote a setup page number (0: stop). Returns a KD_BLK_E_*. d->lock held. */
static uint32_t guest_setup(struct vu_blk *d, uint32_t page)
{
	struct kd_blk_setup *q;
	void *p;

	/* A guest that stops its ring with requests in flight: they complete first. */
	if (d->ring.started && (drain(d) || vu_ring_stop(&d->f, &d->ring, d->park_region.uaddr)))
		backend_failed(d, "");
	d->ring_wanted = false;
	if (page == 0)
		return KD_BLK_E_OK;
	if (atomic_load(&d->dead))
		return KD_BLK_E_BACKEND;
	if (memory_translate(d->vm, (uint64_t)page * KD_PAGE_SIZE, sizeof(*q), true, &p))
		return KD_BLK_E_BADSETUP;
	q = p;
	d->ring_gpa[0] = q->desc_gpa;
	d->ring_gpa[1] = q->avail_gpa;
	d->ring_gpa[2] = q->used_gpa;
	if (q->queue_size != KD_BLK_QUEUE_SIZE || q->desc_gpa % 16 || q->avail_gpa % 2 ||
	    q->used_gpa % 4 || ring_translate(d))
		return KD_BLK_E_BADSETUP;
	q->capacity = d->capacity;
	/* During a change the backend must not get the old memory back: the end syncs. */
	if (!d->nr_suspends && sync_regions(d)) {
		backend_failed(d, "");
		return KD_BLK_E_BACKEND;
	}
	d->ring.base = 0;
	d->ring_wanted = true;
	ring_resume(d);
	return atomic_load(&d->dead) ? KD_BLK_E_BACKEND : KD_BLK_E_OK;
}

void vu_blk_print_state(struct vm *vm, FILE *f)
{
	struct vu_blk *d = vm->blk;
	struct timespec ts;
	unsigned int held = 0;

	if (!d)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	/* Bounded: whoever holds it waits for the backend, within its own timeout. */
	if (pthread_mutex_timedlock(&d->lock, &ts)) {
		fprintf(f, "kvm-demo: disk: state unknown: its lock is held for more than 2 s\n");
		return;
	}
	for (unsigned int i = 0; i < NR_SLOTS; i++)
		held += d->held[i].used;
	fprintf(f, "kvm-demo: disk: ring %s%s, %u memory changes under way, %u regions held, "
		"backend %s", d->ring.started ? "started" : "stopped",
		d->ring_wanted ? " (set up by the guest)" : " (none set up)", d->nr_suspends, held,
		atomic_load(&d->dead) ? "gone" : "connected");
	if (d->ring_wanted && !ring_translate(d)) {
		const struct kd_vring_avail *a = (const void *)(uintptr_t)d->ring.avail;
		const struct kd_vring_used *u = (const void *)(uintptr_t)d->ring.used;

		fprintf(f, "; available index %u, used index %u, base %u",
			(unsigned int)__atomic_load_n(&a->idx, __ATOMIC_ACQUIRE),
			(unsigned int)__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE),
			(unsigned int)d->ring.base);
	}
	fprintf(f, "\n");
	pthread_mutex_unlock(&d->lock);
}

bool vu_blk_handle_io(struct vm *vm, uint16_t port, bool out, uint8_t *data, uint8_t size)
{
	struct vu_blk *d = vm->blk;
	uint32_t v = 0;

	if (port < KD_BLK_PORT_SETUP || port > KD_BLK_PORT_SUM + 3)
		return false;
	memcpy(&v, data, size < 4 ? size : 4);
	if (!out) {
		uint32_t r = 0xffffffffu;

		if (port == KD_BLK_PORT_PRESENT)
			r = d ? 1 : 0;
		else if (d && port == KD_BLK_PORT_STATUS)
			r = atomic_load(&d->setup_status);
		memcpy(data, &r, size < 4 ? size : 4);
		return true;
	}
	if (!d || size != (port == KD_BLK_PORT_KICK ? 2 : 4))
		return true;
	pthread_mutex_lock(&d->lock);
	if (port == KD_BLK_PORT_SETUP) {
		atomic_store(&d->setup_status, guest_setup(d, v));
	} else if (port == KD_BLK_PORT_KICK) {
		/* Only without KVM_IOEVENTFD: pass the kick on. */
		if (eventfd_write(d->ring.kick_fd, 1) < 0)
			kd_error("disk: eventfd write: %s", strerror(errno));
	} else if (port == KD_BLK_PORT_SUM) {
		if (d->sum_words == 0)
			d->sum = v;
		else if (d->sum_words == 1)
			d->sum |= (uint64_t)v << 32;
		else
			d->sum_covered = v;
		d->sum_words++;
	}
	pthread_mutex_unlock(&d->lock);
	return true;
}

/* Connect, negotiate, read the capacity, give the backend the parking region. */
static int backend_open(struct vu_blk *d, const char *path)
{
	char err[256];
	uint8_t cfg[8];

	d->f_open = true;	/* vu_connect() sets it up, connected or not */
	if (vu_connect(&d->f, path, VU_TIMEOUT_MS_DEFAULT, 10000) || vu_handshake(&d->f, 0) ||
	    vu_get_config(&d->f, 0, cfg, sizeof(cfg)))
		goto fail;
	d->capacity = 0;
	for (unsigned int i = 0; i < 8; i++)
		d->capacity |= (uint64_t)cfg[i] << (8 * i);
	d->park_fd = memfd_create("kvm-demo-park", MFD_CLOEXEC);
	if (d->park_fd < 0 || ftruncate(d->park_fd, PARK_SIZE) ||
	    (d->park = mmap(NULL, PARK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, d->park_fd, 0)) ==
	    MAP_FAILED) {
		d->park = NULL;
		kd_error("disk: the parking region: %s", strerror(errno));
		return -1;
	}
	d->park_region = (struct vu_mem_region){ .gpa = PARK_GPA, .size = PARK_SIZE,
						 .uaddr = (uint64_t)(uintptr_t)d->park };
	if (vu_add_mem_reg(&d->f, &d->park_region, d->park_fd) || sync_regions(d))
		goto fail;
	return 0;
fail:
	vu_last_error(&d->f, err, sizeof(err));
	kd_error("disk: %s: %s", d->what, err);
	return -1;
}

int vu_blk_create(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	struct vu_blk *d;
	struct kvm_ioeventfd ioe = { .addr = KD_BLK_PORT_KICK, .len = 2,
				     .flags = KVM_IOEVENTFD_FLAG_PIO };
	char err[256];

	if (!cfg->disk_image && !cfg->disk_socket)
		return 0;
	for (unsigned int i = 0; i < vm->nr_regions; i++) {
		if (vm->regions[i].memfd < 0) {
			kd_error("disk: a vhost-user backend maps guest memory from fds: use "
				 "<memoryBacking><source type='memfd'/><access mode='shared'/>");
			return -1;
		}
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -1;
	vm->blk = d;
	d->vm = vm;
	pthread_mutex_init(&d->lock, NULL);
	d->park_fd = d->stop_fd = d->wake_fd = d->ring.kick_fd = d->ring.call_fd = -1;
	for (unsigned int i = 0; i < NR_SLOTS; i++)
		d->held[i].fd = -1;
	if (cfg->disk_image) {
		if (qsd_start(&d->qsd, cfg->disk_image, err, sizeof(err))) {
			kd_error("%s", err);
			return -1;
		}
		snprintf(d->what, sizeof(d->what), "qemu-storage-daemon (pid %d)", (int)d->qsd.pid);
		d->own_backend = true;
		if (backend_open(d, d->qsd.socket))
			return -1;
	} else {
		snprintf(d->what, sizeof(d->what), "the backend at %s", cfg->disk_socket);
		if (backend_open(d, cfg->disk_socket))
			return -1;
	}
	d->ring.num = KD_BLK_QUEUE_SIZE;
	d->ring.kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->ring.call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->stop_fd = eventfd(0, EFD_CLOEXEC);
	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->ring.kick_fd < 0 || d->ring.call_fd < 0 || d->stop_fd < 0 || d->wake_fd < 0) {
		kd_error("disk: eventfd: %s", strerror(errno));
		return -1;
	}
	ioe.fd = d->ring.kick_fd;
	d->ioeventfd = ioctl(vm->vm_fd, KVM_IOEVENTFD, &ioe) == 0;
	if (!d->ioeventfd)
		printf("kvm-demo: disk: KVM_IOEVENTFD: %s; kicks exit to userspace instead\n",
		       strerror(errno));
	d->sub.ops = &blk_sub_ops;
	if (mmn_sub_register(&d->sub, vm->guest_mm)) {
		kd_error("disk: cannot subscribe to the guest-physical space");
		return -1;
	}
	d->sub_registered = true;
	if (pthread_create(&d->watcher, NULL, watcher_main, d)) {
		kd_error("disk: cannot start its thread");
		return -1;
	}
	d->watcher_started = true;
	printf("kvm-demo: disk: %" PRIu64 " MiB served by %s over vhost-user (features %#" PRIx64
	       ", %" PRIu64 " memory slots)\n", d->capacity * KD_BLK_SECTOR >> 20, d->what,
	       d->f.features, d->f.max_mem_slots);
	return 0;
}

void vu_blk_inject_corruption(struct vm *vm)
{
	if (vm->blk)
		vm->blk->corrupt = true;
}

bool vu_blk_inject_backend_kill(struct vm *vm)
{
	if (!vm->blk || vm->blk->qsd.pid <= 0)
		return false;
	atomic_store(&vm->blk->kill_in_flight, true);
	/* A call the watcher reads and drops: it wakes and starts looking. */
	if (eventfd_write(vm->blk->ring.call_fd, 1) < 0)
		kd_error("disk: eventfd write: %s", strerror(errno));
	return true;
}

/* --inject disk-corrupt: one byte of the first chunk inverted, as a bad write would. */
static void corrupt_image(const char *image)
{
	int fd = open(image, O_RDWR | O_CLOEXEC);
	uint8_t b;

	if (fd < 0 || pread(fd, &b, 1, 4096) != 1) {
		kd_error("disk: --inject disk-corrupt: %s: %s", image, strerror(errno));
	} else {
		b = (uint8_t)~b;
		if (pwrite(fd, &b, 1, 4096) != 1)
			kd_error("disk: --inject disk-corrupt: %s: %s", image, strerror(errno));
		else
			printf("kvm-demo: disk: --inject disk-corrupt: byte 4096 of %s inverted\n",
			       image);
	}
	if (fd >= 0)
		close(fd);
}

/*
 * After the backend is gone (its writes are on the image): the checksum
 * of the image's first chunks against the one the guest reported.
 */
static bool verify_image(struct vu_blk *d)
{
	const char *image = d->vm->cfg->disk_image;
	uint64_t sum = KD_FNV_OFFSET;
	uint8_t *buf;
	int fd;

	if (d->sum_words < 3) {
		printf("kvm-demo: disk: the guest reported no checksum: image not verified\n");
		return true;
	}
	if (d->sum_covered == 0) {
		printf("kvm-demo: disk: the guest's disk test did not finish cleanly: image not "
		       "verified\n");
		return true;
	}
	if (!image) {
		printf("kvm-demo: disk: guest checksum %#" PRIx64 " over %u MiB (the image is the "
		       "external backend's: not verified here)\n", d->sum, d->sum_covered);
		return true;
	}
	if (d->corrupt)
		corrupt_image(image);
	buf = malloc(KD_BLK_CHUNK);
	fd = open(image, O_RDONLY | O_CLOEXEC);
	if (!buf || fd < 0) {
		kd_error("disk: verify %s: %s", image, strerror(errno));
		free(buf);
		if (fd >= 0)
			close(fd);
		return false;
	}
	for (uint32_t c = 0; c < d->sum_covered; c++) {
		if (pread(fd, buf, KD_BLK_CHUNK, (off_t)c * KD_BLK_CHUNK) != KD_BLK_CHUNK) {
			kd_error("disk: verify %s: short read at chunk %u", image, c);
			close(fd);
			free(buf);
			return false;
		}
		sum = kd_blk_combine(sum, kd_vdev_fnv1a(KD_FNV_OFFSET, buf, KD_BLK_CHUNK));
	}
	close(fd);
	free(buf);
	if (sum != d->sum) {
		kd_error("disk: IMAGE MISMATCH: %s holds checksum %#" PRIx64 " over its first %u MiB, "
			 "the guest wrote %#" PRIx64, image, sum, d->sum_covered, d->sum);
		return false;
	}
	printf("kvm-demo: disk: image verified: %s holds what the guest wrote (checksum %#" PRIx64
	       " over %u MiB)\n", image, sum, d->sum_covered);
	return true;
}

bool vu_blk_destroy(struct vm *vm)
{
	struct vu_blk *d = vm->blk;
	bool ok = true;

	if (!d)
		return true;
	vu_blk_report(vm, stdout);
	if (d->watcher_started) {
		if (eventfd_write(d->stop_fd, 1) < 0)
			kd_error("disk: eventfd write: %s", strerror(errno));
		pthread_join(d->watcher, NULL);
	}
	if (d->sub_registered)
		mmn_sub_unregister(&d->sub, vm->guest_mm);
	if (d->f_open)
		vu_close(&d->f);
	if (d->qsd.pid > 0 || d->qsd.dir[0]) {
		int status = qsd_stop(&d->qsd, 5000);

		if (status == -1)
			kd_error("disk: qemu-storage-daemon did not stop within 5 s: killed");
		ok = verify_image(d);
	} else if (d->sum_words) {
		ok = verify_image(d);
	}
	for (unsigned int i = 0; i < NR_SLOTS; i++)
		hold_drop(&d->held[i]);
	if (d->park)
		munmap(d->park, PARK_SIZE);
	{
		int fds[] = { d->park_fd, d->stop_fd, d->wake_fd, d->ring.kick_fd, d->ring.call_fd };

		for (unsigned int i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	pthread_mutex_destroy(&d->lock);
	free(d);
	vm->blk = NULL;
	return ok;
}

void vu_blk_figures(struct vm *vm, struct vu_blk_figures *f)
{
	struct vu_blk *d = vm->blk;

	memset(f, 0, sizeof(*f));
	if (!d)
		return;
	f->invalidations = atomic_load(&d->invalidations);
	f->refusals = atomic_load(&d->refusals);
	f->ring_stops = atomic_load(&d->ring_stops);
	f->removed = atomic_load(&d->removed);
	f->added = atomic_load(&d->added);
	f->failed_requests = atomic_load(&d->failed_reqs);
	f->waits = atomic_load(&d->waits);
	f->wait_ns_total = atomic_load(&d->wait_ns_total);
	f->wait_ns_max = atomic_load(&d->wait_ns_max);
	f->dead = atomic_load(&d->dead);
}

void vu_blk_report(struct vm *vm, FILE *out)
{
	struct vu_blk_figures f;

	if (!vm->blk)
		return;
	vu_blk_figures(vm, &f);
	fprintf(out, "kvm-demo: disk: %" PRIu64 " memory changes made the backend let go first "
		"(%" PRIu64 " ring stops, %" PRIu64 " regions removed, %" PRIu64 " added), %" PRIu64
		" non-blocking ones refused; wait for its acks %.1f us mean, %.1f us max%s\n",
		f.invalidations, f.ring_stops, f.removed, f.added, f.refusals,
		f.waits ? (double)f.wait_ns_total / (double)f.waits / 1e3 : 0.0,
		(double)f.wait_ns_max / 1e3, f.dead ? "; the backend is gone" : "");
}
