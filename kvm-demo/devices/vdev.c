/* SPDX-License-Identifier: MIT */
/*
 * The vhost-like device: one virtio split ring in guest memory, served by a
 * worker thread that reaches guest memory only through its shadow map.
 *
 * vCPU threads never touch guest memory for the device: a setup write is
 * recorded and handed to the worker, and a kick is an ioeventfd the worker
 * polls, so a vCPU never waits behind the device and the device never runs
 * on a vCPU thread. The guest polls the used ring: no interrupt controller
 * exists in this VM (see docs/design.md).
 *
 * Every guest address is untrusted: chains go through vring_walk(), every
 * byte through shadow_access(), which refuses what memory_translate() does
 * not call guest RAM. A bad chain completes with used length 0; a bad
 * buffer completes with an error status.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <mmn/mmn.h>

#include "core/util.h"
#include "core/vm.h"
#include "mem/mem.h"
#include "devices/vdev.h"
#include "devices/shadow.h"
#include "devices/vring.h"

#define SETUP_PENDING	0xffffffffu

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct vdev {
	struct vm *vm;
	struct shadow_map map;
	int kick_fd;			/* eventfd: the guest's kicks (ioeventfd) */
	int stop_fd;			/* eventfd: stop the worker */
	bool ioeventfd;			/* else ports.c signals kick_fd */
	pthread_t worker;
	bool worker_started;

	atomic_uint_least64_t setup_page;	/* written by vCPUs, taken by the worker */
	atomic_uint setup_status;

	/* The worker's own. */
	bool ready;
	struct kd_vdev_setup q;
	uint16_t last_avail;
	uint16_t used_idx;
	struct kd_vring_desc table[KD_VDEV_QUEUE_MAX];
	uint8_t bounce[KD_VDEV_MAX_BYTES];

	atomic_bool chaos;		/* --chaos, the demo: batches between passes, checker on */
	bool in_chaos;			/* a --chaos participant: the report prints the figures */
	unsigned int batch;		/* requests per batch between passes */
	bool map_ready;
	_Atomic double first_ns, last_ns;	/* first request seen, last completed */
	atomic_uint_least64_t kicks, requests, ok, failed, rejected, bytes, ring_faults;
	atomic_uint_least64_t protect_waits;	/* writes that waited for a snapshot pass */
	atomic_uint_least64_t checked, stale;	/* the stale-translation checker */
};

static int translate(void *ctx, uint64_t gpa, uint64_t len, bool write, void **hva)
{
	return memory_translate(ctx, gpa, len, write, hva);
}

static void count(atomic_uint_least64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- every access of the device: the checker, and waits on read-only memory ---- */

struct checked {
	struct vdev *d;
	uint64_t gpa;
	shadow_access_fn fn;
	void *arg;
};

/*
 * During the access, the translation used must be the one the memory
 * layer gives now: every change of the region table is preceded by an
 * invalidation that drops the entry (and waits for the access). A stale
 * entry shows as a different address, or none.
 */
static int checked_access(void *arg, void *hva, size_t len, uint64_t offset)
{
	struct checked *c = arg;

	if (atomic_load_explicit(&c->d->chaos, memory_order_relaxed)) {
		void *now = NULL;
		int err = memory_translate(c->d->vm, c->gpa + offset, len, false, &now);

		count(&c->d->checked, 1);
		if (err || now != hva) {
			if (atomic_fetch_add(&c->d->stale, 1) == 0)
				kd_error("vdev: STALE translation: gpa 0x%" PRIx64 " +%zu at %p, the "
					 "memory layer says %p (%d)", c->gpa + offset, len, hva,
					 now, err);
		}
	}
	return c->fn(c->arg, hva, len, offset);
}

/* A write that meets read-only memory waits for the change that ends it, up to 5 s. */
static int vdev_access(struct vdev *d, uint64_t gpa, uint64_t len, bool write,
		       shadow_access_fn fn, void *arg)
{
	struct checked c = { .d = d, .gpa = gpa, .fn = fn, .arg = arg };
	double give_up = now_s() + 5;

	for (;;) {
		uint64_t gen = shadow_generation(&d->map);
		int err = shadow_access(&d->map, gpa, len, write, checked_access, &c);

		if (err != -EACCES || !write || now_s() > give_up)
			return err;
		count(&d->protect_waits, 1);
		shadow_wait_change(&d->map, gen, 1000);
	}
}

static int copy_out(void *arg, void *hva, size_t len, uint64_t offset)
{
	memcpy((char *)arg + offset, hva, len);
	return 0;
}

static int copy_in(void *arg, void *hva, size_t len, uint64_t offset)
{
	memcpy(hva, (const char *)arg + offset, len);
	return 0;
}

/* The ring indices: one 16-bit access each, never torn (the GPAs are aligned). */
static int load16(void *arg, void *hva, size_t len, uint64_t offset)
{
	(void)offset;
	if (len != 2 || (uintptr_t)hva % 2)
		return -EINVAL;
	*(uint16_t *)arg = __atomic_load_n((uint16_t *)hva, __ATOMIC_ACQUIRE);
	return 0;
}

static int store16(void *arg, void *hva, size_t len, uint64_t offset)
{
	(void)offset;
	if (len != 2 || (uintptr_t)hva % 2)
		return -EINVAL;
	__atomic_store_n((uint16_t *)hva, *(uint16_t *)arg, __ATOMIC_RELEASE);
	return 0;
}

static int vdev_read(struct vdev *d, uint64_t gpa, void *buf, uint64_t len)
{
	return vdev_access(d, gpa, len, false, copy_out, buf);
}

static int vdev_write(struct vdev *d, uint64_t gpa, const void *buf, uint64_t len)
{
	return vdev_access(d, gpa, len, true, copy_in, (void *)buf);
}

/* ---- the request operations, as shadow_access() callbacks ---- */

struct op_state {
	uint64_t pos;		/* bytes of data done before this segment */
	uint64_t seed;
	uint64_t sum;
	uint8_t *buf;
};

static int do_fill(void *arg, void *hva, size_t len, uint64_t offset)
{
	struct op_state *s = arg;
	uint8_t *p = hva;

	for (size_t i = 0; i < len; i++)
		p[i] = kd_vdev_fill_byte(s->seed, s->pos + offset + i);
	return 0;
}

static int do_sum(void *arg, void *hva, size_t len, uint64_t offset)
{
	struct op_state *s = arg;

	(void)offset;
	s->sum = kd_vdev_fnv1a(s->sum, hva, len);
	return 0;
}

static int do_gather(void *arg, void *hva, size_t len, uint64_t offset)
{
	struct op_state *s = arg;

	memcpy(s->buf + s->pos + offset, hva, len);
	return 0;
}

static int do_scatter(void *arg, void *hva, size_t len, uint64_t offset)
{
	struct op_state *s = arg;

	memcpy(hva, s->buf + s->pos + offset, len);
	return 0;
}

static int do_nothing(void *arg, void *hva, size_t len, uint64_t offset)
{
	(void)arg, (void)hva, (void)len, (void)offset;
	return 0;
}

/* Runs FN over segments [from, to) as one stream. Returns a KD_VDEV_S_*. */
static uint32_t over_segs(struct vdev *d, const struct vring_seg *segs, unsigned int from,
			  unsigned int to, bool write, shadow_access_fn fn, struct op_state *s)
{
	s->pos = 0;
	for (unsigned int i = from; i < to; i++) {
		if (segs[i].write != write)
			return KD_VDEV_S_BADREQ;
		if (vdev_access(d, segs[i].gpa, segs[i].len, write, fn, s) != 0)
			return KD_VDEV_S_FAULT;
		s->pos += segs[i].len;
	}
	return KD_VDEV_S_OK;
}

/*
 * One request: returns the used length (bytes written; 0 when the chain is
 * rejected and no status could be written).
 */
static uint32_t handle_request(struct vdev *d, unsigned int head)
{
	struct vring_seg segs[KD_VDEV_MAX_SEGS];
	struct kd_vdev_req req;
	struct kd_vdev_resp resp = { .status = KD_VDEV_S_OK };
	struct op_state s = { 0 };
	uint64_t data = 0, written = 0;
	unsigned int first_write;
	int n = vring_walk(d->table, d->q.queue_size, head, segs, KD_VDEV_MAX_SEGS);

	count(&d->requests, 1);
	if (n < 0 || !segs[n - 1].write || segs[n - 1].len < sizeof(resp)) {
		count(&d->rejected, 1);
		return 0;
	}
	for (int i = 1; i < n - 1; i++)
		data += segs[i].len;
	for (first_write = 1; first_write < (unsigned int)n - 1 && !segs[first_write].write;)
		first_write++;
	if (n < 2 || segs[0].write || segs[0].len < sizeof(req)) {
		resp.status = KD_VDEV_S_BADREQ;
	} else if (vdev_read(d, segs[0].gpa, &req, sizeof(req)) != 0) {
		resp.status = KD_VDEV_S_FAULT;
	} else if (data > KD_VDEV_MAX_BYTES) {
		resp.status = KD_VDEV_S_TOOBIG;
	} else if (req.op == KD_VDEV_OP_FILL) {
		s.seed = req.arg;
		resp.status = over_segs(d, segs, 1, (unsigned int)n - 1, true, do_fill, &s);
		written = s.pos;
		resp.result = s.pos;
	} else if (req.op == KD_VDEV_OP_CHECKSUM) {
		s.sum = KD_FNV_OFFSET;
		resp.status = over_segs(d, segs, 1, (unsigned int)n - 1, false, do_sum, &s);
		resp.result = s.sum;
	} else if (req.op == KD_VDEV_OP_COPY) {
		uint64_t in = 0;

		for (unsigned int i = 1; i < first_write; i++)
			in += segs[i].len;
		s.buf = d->bounce;
		if (first_write == 1 || first_write == (unsigned int)n - 1 || in * 2 != data) {
			resp.status = KD_VDEV_S_BADREQ;
		} else {
			resp.status = over_segs(d, segs, 1, first_write, false, do_gather, &s);
			if (resp.status == KD_VDEV_S_OK)
				resp.status = over_segs(d, segs, first_write, (unsigned int)n - 1,
							true, do_scatter, &s);
			written = s.pos;
			resp.result = s.pos;
		}
	} else {
		resp.status = KD_VDEV_S_BADREQ;
	}
	if (vdev_write(d, segs[n - 1].gpa, &resp, sizeof(resp)) != 0) {
		count(&d->rejected, 1);
		return 0;
	}
	count(resp.status == KD_VDEV_S_OK ? &d->ok : &d->failed, 1);
	count(&d->bytes, resp.status == KD_VDEV_S_OK ? data : 0);
	return (uint32_t)(written + sizeof(resp));
}

/* The rings must be guest RAM, the used ring writable. */
static uint32_t do_setup(struct vdev *d, uint64_t page)
{
	struct kd_vdev_setup q;
	uint64_t qs;

	d->ready = false;
	if (page == 0)
		return KD_VDEV_S_OK;	/* reset */
	if (vdev_read(d, page * KD_PAGE_SIZE, &q, sizeof(q)) != 0)
		return KD_VDEV_S_FAULT;
	qs = q.queue_size;
	if (qs == 0 || qs > KD_VDEV_QUEUE_MAX || (qs & (qs - 1)) || q.desc_gpa % 16 ||
	    q.avail_gpa % 2 || q.used_gpa % 4)
		return KD_VDEV_S_BADREQ;
	if (vdev_access(d, q.desc_gpa, 16 * qs, false, do_nothing, NULL) != 0 ||
	    vdev_access(d, q.avail_gpa, 4 + 2 * qs, false, do_nothing, NULL) != 0 ||
	    vdev_access(d, q.used_gpa, 4 + 8 * qs, true, do_nothing, NULL) != 0)
		return KD_VDEV_S_FAULT;
	d->q = q;
	d->last_avail = d->used_idx = 0;
	d->ready = true;
	return KD_VDEV_S_OK;
}

/*
 * Serve the available ring until it is empty. False: the rings faulted,
 * and WHY names the check that failed and the value read.
 */
static bool drain(struct vdev *d, char *why, size_t len)
{
	uint16_t qs = (uint16_t)d->q.queue_size;
	int err;

	for (;;) {
		uint16_t avail;

		err = vdev_access(d, d->q.avail_gpa + 2, 2, false, load16, &avail);
		if (err) {
			snprintf(why, len, "reading avail->idx at 0x%" PRIx64 ": %s",
				 d->q.avail_gpa + 2, strerror(-err));
			return false;
		}
		if (avail == d->last_avail)
			return true;
		if ((uint16_t)(avail - d->last_avail) > qs) {
			snprintf(why, len, "avail->idx %u is %u entries ahead, more than the "
				 "queue's %u", avail, (uint16_t)(avail - d->last_avail), qs);
			return false;
		}
		err = vdev_read(d, d->q.desc_gpa, d->table, 16ull * qs);
		if (err) {
			snprintf(why, len, "reading the descriptor table at 0x%" PRIx64 ": %s",
				 d->q.desc_gpa, strerror(-err));
			return false;
		}
		while (d->last_avail != avail) {
			uint64_t at = d->q.avail_gpa + 4 + 2ull * (d->last_avail % qs);
			uint16_t head;
			struct kd_vring_used_elem e;

			err = vdev_read(d, at, &head, 2);
			if (err) {
				snprintf(why, len, "reading avail->ring at 0x%" PRIx64 ": %s", at,
					 strerror(-err));
				return false;
			}
			if (atomic_load(&d->requests) == 0)
				atomic_store(&d->first_ns, now_s());
			e.id = head;
			e.len = head < qs ? handle_request(d, head) : 0;
			if (head >= qs) {
				count(&d->requests, 1);
				count(&d->rejected, 1);
			}
			at = d->q.used_gpa + 4 + 8ull * (d->used_idx % qs);
			err = vdev_write(d, at, &e, sizeof(e));
			if (err) {
				snprintf(why, len, "writing used->ring at 0x%" PRIx64 ": %s", at,
					 strerror(-err));
				return false;
			}
			d->used_idx++;
			d->last_avail++;
			err = vdev_access(d, d->q.used_gpa + 2, 2, true, store16, &d->used_idx);
			if (err) {
				snprintf(why, len, "writing used->idx %u at 0x%" PRIx64 ": %s",
					 d->used_idx, d->q.used_gpa + 2, strerror(-err));
				return false;
			}
			atomic_store(&d->last_ns, now_s());
		}
	}
}

static void *worker(void *arg)
{
	struct vdev *d = arg;
	struct pollfd fds[2] = {
		{ .fd = d->kick_fd, .events = POLLIN },
		{ .fd = d->stop_fd, .events = POLLIN },
	};

	for (;;) {
		char why[160];
		uint64_t v;

		if (poll(fds, 2, -1) < 0)
			continue;	/* EINTR */
		if (fds[1].revents)
			return NULL;
		if (!(fds[0].revents & POLLIN) || read(d->kick_fd, &v, sizeof(v)) != sizeof(v))
			continue;
		count(&d->kicks, 1);
		uint64_t page = atomic_exchange(&d->setup_page, UINT64_MAX);

		if (page != UINT64_MAX)
			atomic_store(&d->setup_status, do_setup(d, page));
		if (d->ready && !drain(d, why, sizeof(why))) {
			uint32_t status = atomic_load(&d->setup_status);

			/* A broken ring stops the device until the guest sets it up again. */
			count(&d->ring_faults, 1);
			printf("kvm-demo: vdev: ring fault (avail 0x%" PRIx64 ", used 0x%" PRIx64
			       ", last avail %u): %s; the device stops until the guest sets it up "
			       "again\n", d->q.avail_gpa, d->q.used_gpa, d->last_avail, why);
			d->ready = false;
			/*
			 * The status port reports the fault, unless a setup or reset
			 * was posted meanwhile: its answer is the one the guest waits for.
			 */
			if (status != SETUP_PENDING)
				atomic_compare_exchange_strong(&d->setup_status, &status,
							       KD_VDEV_S_FAULT);
		}
	}
}

static void kick(struct vdev *d)
{
	uint64_t one = 1;

	if (write(d->kick_fd, &one, sizeof(one)) != sizeof(one))
		kd_error("vdev: eventfd write: %s", strerror(errno));
}

int vdev_create(struct vm *vm)
{
	struct vdev *d = calloc(1, sizeof(*d));
	struct kvm_ioeventfd ioe = {
		.addr = KD_VDEV_PORT_KICK,
		.len = 2,
		.flags = KVM_IOEVENTFD_FLAG_PIO,
	};
	int err;

	if (!d) {
		kd_error("vdev: out of memory");
		return -1;
	}
	vm->vdev = d;
	d->vm = vm;
	d->stop_fd = -1;
	d->setup_page = UINT64_MAX;
	d->setup_status = KD_VDEV_S_BADREQ;	/* not set up */
	d->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (d->kick_fd < 0 || d->stop_fd < 0) {
		kd_error("vdev: eventfd: %s", strerror(errno));
		return -1;
	}
	/*
	 * Every address x86-64 can give guest RAM (52 bits), the hotplug
	 * window included; the map refuses any other, so nothing it caches
	 * escapes the subscription.
	 */
	err = shadow_map_init(&d->map, vm->guest_mm, KD_GPA_SPACE_END, translate, vm);
	if (err) {
		kd_error("vdev: shadow map: %s", strerror(-err));
		return -1;
	}
	d->map_ready = true;
	ioe.fd = d->kick_fd;
	d->ioeventfd = ioctl(vm->vm_fd, KVM_IOEVENTFD, &ioe) == 0;
	if (!d->ioeventfd)
		printf("kvm-demo: vdev: KVM_IOEVENTFD: %s; kicks exit to userspace instead\n",
		       strerror(errno));
	err = pthread_create(&d->worker, NULL, worker, d);
	if (err) {
		kd_error("vdev: cannot start the worker: %s", strerror(err));
		return -1;
	}
	d->worker_started = true;
	return 0;
}

/*
 * The worker finishes the requests it has taken, then stops: after this
 * every request counted has its outcome counted too.
 */
static void stop_worker(struct vdev *d)
{
	uint64_t one = 1;

	if (!d->worker_started)
		return;
	if (write(d->stop_fd, &one, sizeof(one)) != sizeof(one))
		kd_error("vdev: eventfd write: %s", strerror(errno));
	pthread_join(d->worker, NULL);
	d->worker_started = false;
}

void vdev_destroy(struct vm *vm)
{
	struct vdev *d = vm->vdev;

	if (!d)
		return;
	stop_worker(d);
	if ((vm->cfg->vdev_mode != KD_VDEV_MODE_OFF || atomic_load(&d->chaos)) && !d->in_chaos) {
		char line[1024];

		vdev_stats(vm, line, sizeof(line));
		printf("kvm-demo: %s\n", line);
		vdev_shadow_stats(vm, line, sizeof(line));
		printf("kvm-demo: %s\n", line);
	}
	if (d->map_ready)
		shadow_map_destroy(&d->map);
	if (d->ioeventfd) {
		struct kvm_ioeventfd ioe = {
			.addr = KD_VDEV_PORT_KICK, .len = 2, .fd = d->kick_fd,
			.flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DEASSIGN,
		};

		ioctl(vm->vm_fd, KVM_IOEVENTFD, &ioe);
	}
	if (d->kick_fd >= 0)
		close(d->kick_fd);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	free(d);
	vm->vdev = NULL;
}

bool vdev_handle_io(struct vm *vm, uint16_t port, bool out, uint8_t *data, uint8_t size)
{
	struct vdev *d = vm->vdev;
	uint32_t v = 0;

	if (port < KD_VDEV_PORT_SETUP || port >= KD_VDEV_PORT_MODE + 4)
		return false;
	if (!d) {
		if (!out)
			memset(data, 0xff, size);
		return true;
	}
	if (out) {
		memcpy(&v, data, size < 4 ? size : 4);
		if (port == KD_VDEV_PORT_SETUP && size == 4) {
			atomic_store(&d->setup_status, SETUP_PENDING);
			atomic_store(&d->setup_page, v);
			kick(d);
		} else if (port == KD_VDEV_PORT_KICK) {
			kick(d);	/* only without an ioeventfd */
		}
		return true;
	}
	if (port == KD_VDEV_PORT_STATUS)
		v = atomic_load(&d->setup_status);
	else if (port == KD_VDEV_PORT_MODE && atomic_load(&d->chaos))
		v = KD_VDEV_MODE_CHAOS | d->batch << 8;
	else if (port == KD_VDEV_PORT_MODE && vm->cfg->vdev_mode != KD_VDEV_MODE_OFF)
		v = vm->cfg->vdev_mode | vm->cfg->vdev_requests << 8;
	else if (port == KD_VDEV_PORT_MODE)
		v = KD_VDEV_MODE_OFF;
	else
		v = 0xffffffffu;
	memcpy(data, &v, size < 4 ? size : 4);
	return true;
}

int vdev_stats(struct vm *vm, char *buf, size_t len)
{
	struct vdev *d = vm->vdev;
	double secs;

	if (!d)
		return snprintf(buf, len, "vdev: none");
	secs = atomic_load(&d->last_ns) - atomic_load(&d->first_ns);
	return snprintf(buf, len,
			"vdev: %" PRIu64 " requests (%" PRIu64 " ok, %" PRIu64 " failed with a status, %"
			PRIu64 " rejected) in %.3f s, %" PRIu64 " KiB of data, %" PRIu64 " kicks (%s), %"
			PRIu64 " ring faults, %" PRIu64 " waits on read-only memory",
			atomic_load(&d->requests), atomic_load(&d->ok), atomic_load(&d->failed),
			atomic_load(&d->rejected), secs > 0 ? secs : 0.0, atomic_load(&d->bytes) >> 10,
			atomic_load(&d->kicks), d->ioeventfd ? "ioeventfd" : "port exits",
			atomic_load(&d->ring_faults), atomic_load(&d->protect_waits));
}

int vdev_shadow_stats(struct vm *vm, char *buf, size_t len)
{
	struct vdev *d = vm->vdev;
	struct shadow_stats st;

	if (!d)
		return snprintf(buf, len, "shadow map: none");
	shadow_map_stats(&d->map, &st);
	return snprintf(buf, len,
			"shadow map: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " retries, %"
			PRIu64 " faults, %" PRIu64 " slow writes, %" PRIu64 " invalidations, %" PRIu64
			" entries dropped, %" PRIu64 " refusals, %" PRIu64 " entries, %" PRIu64
			" discard marks; checker: %" PRIu64 " accesses checked, %" PRIu64 " stale",
			st.hits, st.misses, st.retries, st.faults, st.slow_writes, st.invalidations,
			st.dropped, st.refusals, st.entries, st.discard_marks,
			atomic_load(&d->checked), atomic_load(&d->stale));
}

void vdev_counts(struct vm *vm, uint64_t *ok, uint64_t *errors)
{
	struct vdev *d = vm->vdev;

	*ok = d ? atomic_load(&d->ok) : 0;
	*errors = d ? atomic_load(&d->failed) + atomic_load(&d->rejected) +
		      atomic_load(&d->ring_faults) + atomic_load(&d->stale) : 0;
}

/* ---- --chaos: the guest runs a batch of requests between self-test passes ---- */

static void chaos_quiesce(struct vm *vm)
{
	stop_worker(vm->vdev);
}

static void chaos_report(struct vm *vm, FILE *f)
{
	char line[1024];

	vdev_stats(vm, line, sizeof(line));
	fprintf(f, "kvm-demo: %s\n", line);
	vdev_shadow_stats(vm, line, sizeof(line));
	fprintf(f, "kvm-demo: %s\n", line);
}

/* Every request must have succeeded, through current translations only. */
static bool chaos_broken(struct vm *vm)
{
	struct vdev *d = vm->vdev;
	bool broken = atomic_load(&d->stale) || atomic_load(&d->failed) ||
		      atomic_load(&d->rejected) || atomic_load(&d->ring_faults) ||
		      atomic_load(&d->ok) == 0 || atomic_load(&d->checked) == 0;

	if (broken)
		fprintf(stdout, "kvm-demo: chaos: vdev: %" PRIu64 " stale accesses, %" PRIu64
			" failed, %" PRIu64 " rejected, %" PRIu64 " ring faults, %" PRIu64 " ok\n",
			atomic_load(&d->stale), atomic_load(&d->failed), atomic_load(&d->rejected),
			atomic_load(&d->ring_faults), atomic_load(&d->ok));
	return broken;
}

static const struct chaos_participant vdev_participant = {
	.name = "vdev",
	.quiesce = chaos_quiesce,
	.report = chaos_report,
	.broken = chaos_broken,
};

int vdev_chaos_enable(struct vm *vm)
{
	if (!vm->vdev)
		return -1;
	vm->vdev->batch = KD_VDEV_CHAOS_BATCH;
	atomic_store(&vm->vdev->chaos, true);
	vm->vdev->in_chaos = true;
	return chaos_register(&vdev_participant);
}

int vdev_batches_enable(struct vm *vm, unsigned int requests)
{
	if (!vm->vdev || requests == 0 || requests > KD_VDEV_CHAOS_BATCH)
		return -1;
	vm->vdev->batch = requests;
	atomic_store(&vm->vdev->chaos, true);
	return 0;
}

void vdev_figures(struct vm *vm, struct vdev_figures *f)
{
	struct vdev *d = vm->vdev;
	struct shadow_stats st;

	memset(f, 0, sizeof(*f));
	if (!d)
		return;
	shadow_map_stats(&d->map, &st);
	f->ok = atomic_load(&d->ok);
	f->bytes = atomic_load(&d->bytes);
	f->errors = atomic_load(&d->failed) + atomic_load(&d->rejected) +
		    atomic_load(&d->ring_faults);
	f->invalidations = st.invalidations;
	f->dropped = st.dropped;
	f->checked = atomic_load(&d->checked);
	f->stale = atomic_load(&d->stale);
}
