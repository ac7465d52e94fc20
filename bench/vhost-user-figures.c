/* SPDX-License-Identifier: MIT */
/*
 * kvm-demo's vhost-user disk, measured on the host without KVM: the
 * frontend drives qemu-storage-daemon over one ring in memfd memory, as
 * the device glue does (tests/vu-disk.c). Requests per second and latency
 * at queue depth 1 and 8 (4 KiB reads), and what a change of guest memory
 * costs when a backend must let go first: libmmn's invalidation start
 * until the backend can no longer reach the memory (ring stopped and
 * parked, region removed, both acked), and the whole move, each against
 * the same move with a subscriber that has nothing to wait for.
 */
#define _GNU_SOURCE
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <mmn/mmn.h>

#include "figures.h"
#include "guest/blk-abi.h"
#include "report.h"
#include "vu-disk.h"

#define container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct move_ctx {
	struct mmn_sub sub;
	struct vu_disk *d;
	bool backend;		/* false: the subscriber has nothing to do */
	int err;
};

static int move_start(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	struct move_ctx *m = container_of(sub, struct move_ctx, sub);

	(void)desc;
	if (m->backend && !m->err)
		m->err = vu_disk_let_go(m->d);
	return 0;
}

static void move_end(struct mmn_sub *sub, const struct mmn_invalidate_desc *desc)
{
	struct move_ctx *m = container_of(sub, struct move_ctx, sub);

	(void)desc;
	if (m->backend && !m->err)
		m->err = vu_disk_take_back(m->d);
}

static const struct mmn_sub_ops move_ops = {
	.invalidate_start = move_start,
	.invalidate_end = move_end,
};

/* Memory no backend maps, moved as vu_disk_remap() moves the disk's. */
struct scratch {
	int fd;
	uint8_t *mem;
};

static int scratch_move(struct scratch *s)
{
	int fd = memfd_create("vu-bench", MFD_CLOEXEC);
	uint8_t *mem;

	if (fd < 0 || ftruncate(fd, VU_DISK_MEM) < 0)
		return -1;
	mem = mmap(NULL, VU_DISK_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return -1;
	if (s->mem) {
		memcpy(mem, s->mem, VU_DISK_MEM);
		munmap(s->mem, VU_DISK_MEM);
		close(s->fd);
	}
	s->mem = mem;
	s->fd = fd;
	return 0;
}

/* N requests of 4 KiB at DEPTH in flight; returns the seconds taken. */
static double io_round(struct vu_disk *d, unsigned int depth, unsigned int n, uint64_t *rng)
{
	double t0 = now_s();

	for (unsigned int done = 0; done < n; done += depth) {
		for (unsigned int k = 0; k < depth; k++) {
			*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
			vu_disk_queue(d, k, KD_BLK_T_IN, (*rng >> 33) % (VU_DISK_SECTORS - 8), 4096,
				      VU_DISK_BUF + 4096 * k);
		}
		if (vu_disk_run(d, 5000))
			die("vhost-user: no completion within 5 s");
		for (unsigned int k = 0; k < depth; k++)
			if (vu_disk_status(d, k) != KD_BLK_S_OK)
				die("vhost-user: a read failed with status %u", vu_disk_status(d, k));
	}
	return now_s() - t0;
}

void fig_vhost_user(const struct bench_config *c)
{
	static const unsigned int depths[2] = { 1, 8 };
	double iops[2][REPORT_MAX_REPS], lat[2][REPORT_MAX_REPS];
	double quiesce[2][REPORT_MAX_REPS], move[2][REPORT_MAX_REPS];
	unsigned int reps = c->reps, n = c->quick ? 400 : 2000;
	struct move_ctx m = { .sub.ops = &move_ops };
	struct mmn_state *mm;
	struct vu_disk d;
	struct scratch scratch = { .fd = -1 };
	struct figure *f;
	char err[256];
	uint64_t rng = c->seed | 1;

	report_section("vhost_user", "kvm-demo's vhost-user disk: qemu-storage-daemon driven by "
		       "the frontend over a memfd ring, on the host without KVM");
	if (!vu_disk_available() || vu_disk_open(&d, err, sizeof(err))) {
		const char *why = vu_disk_available() ? err : "no qemu-storage-daemon";

		f = report_figure("vhost_user", "vhost_user.iops_qd1", "ops/s", HIGHER_IS_BETTER,
				  "4 KiB reads through the backend, queue depth 1");
		report_series(f, "vhost_user", NULL, 0, why);
		return;
	}
	m.d = &d;
	if (mmn_state_new(&mm) || mmn_sub_register(&m.sub, mm))
		die("vhost-user: cannot set up the libmmn state");
	for (unsigned int q = 0; q < 2; q++) {
		io_round(&d, depths[q], n / 4, &rng);	/* warm up */
		for (unsigned int r = 0; r < reps; r++) {
			double t = io_round(&d, depths[q], n, &rng);

			iops[q][r] = n / t;
			lat[q][r] = t / (n / depths[q]) * 1e6;	/* one round of DEPTH requests */
		}
	}
	for (unsigned int b = 0; b < 2; b++) {
		m.backend = b == 0;
		for (unsigned int r = 0; r < reps; r++) {
			struct mmn_invalidate_desc desc = { .start = VU_DISK_GPA,
							    .end = VU_DISK_GPA + VU_DISK_MEM,
							    .event = MMN_EVENT_REMAP,
							    .flags = MMN_INVALIDATE_BLOCKABLE };
			double t0 = now_s(), t1;

			mmn_invalidate_start(mm, &desc);
			t1 = now_s();
			/* Without a backend, the same move of memory it never saw. */
			if (m.backend ? vu_disk_remap(&d) : scratch_move(&scratch))
				die("vhost-user: remap: out of memory");
			mmn_invalidate_end(mm, &desc);
			quiesce[b][r] = (t1 - t0) * 1e6;
			move[b][r] = (now_s() - t0) * 1e6;
			if (m.err) {
				vu_last_error(&d.f, err, sizeof(err));
				die("vhost-user: %s", err);
			}
			/* The moved memory serves again. */
			if (m.backend)
				io_round(&d, 1, 1, &rng);
		}
	}
	scratch_move(&scratch);
	munmap(scratch.mem, VU_DISK_MEM);
	close(scratch.fd);
	mmn_sub_unregister(&m.sub, mm);
	mmn_state_free(mm);
	vu_disk_close(&d);
	for (unsigned int q = 0; q < 2; q++) {
		f = report_figure("vhost_user", q ? "vhost_user.iops_qd8" : "vhost_user.iops_qd1",
				  "ops/s", HIGHER_IS_BETTER, "4 KiB reads through the backend, "
				  "queue depth %u", depths[q]);
		report_series(f, "vhost_user", iops[q], reps, NULL);
		f = report_figure("vhost_user", q ? "vhost_user.latency_qd8" : "vhost_user.latency_qd1",
				  "us", LOWER_IS_BETTER, "latency of %s", q ?
				  "a round of 8 reads in flight" : "one read");
		report_series(f, "vhost_user", lat[q], reps, NULL);
	}
	f = report_figure("vhost_user", "vhost_user.quiescence", "us", LOWER_IS_BETTER,
			  "invalidation start until the backend cannot reach the memory");
	report_series(f, "vhost_user", quiesce[0], reps, NULL);
	report_series(f, "no_backend", quiesce[1], reps, NULL);
	f = report_figure("vhost_user", "vhost_user.move", "us", LOWER_IS_BETTER,
			  "move of 2 MiB of guest memory, start to end");
	report_series(f, "vhost_user", move[0], reps, NULL);
	report_series(f, "no_backend", move[1], reps, NULL);
}
