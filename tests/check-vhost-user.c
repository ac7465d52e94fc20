/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend against a fake backend that misbehaves in each
 * way it can (every bad reply is an error naming the request, never a
 * hang), then against qemu-storage-daemon itself when it is installed.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "devices/vhost-user/frontend.h"
#include "devices/vhost-user/qsd.h"
#include "guest/abi.h"
#include "guest/blk-abi.h"
#include "vhost-user-fake.h"

#define SHORT_MS 200u	/* the frontend's reply timeout in these tests */

struct fake {
	pthread_t thread;
	int fd;
	enum fake_fault fault;
	uint32_t at;
	struct fake_stats st;
};

static void *fake_main(void *arg)
{
	struct fake *fk = arg;

	fake_serve(fk->fd, fk->fault, fk->at, &fk->st);
	return NULL;
}

static void fake_start(struct fake *fk, struct vu_frontend *f, enum fake_fault fault,
		       uint32_t at)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fk->fd = sv[1];
	fk->fault = fault;
	fk->at = at;
	vu_init(f, sv[0], SHORT_MS);
	ck_assert_int_eq(pthread_create(&fk->thread, NULL, fake_main, fk), 0);
}

/* Close our end, so that the fake sees EOF, and join it. */
static void fake_stop(struct fake *fk, struct vu_frontend *f)
{
	vu_close(f);
	pthread_join(fk->thread, NULL);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void assert_error(struct vu_frontend *f, const char *needle)
{
	char e[256];

	vu_last_error(f, e, sizeof(e));
	ck_assert_msg(strstr(e, needle), "error \"%s\" does not say \"%s\"", e, needle);
}

START_TEST(handshake_ok)
{
	struct vu_mem_region r = { .gpa = 0, .size = 4096, .uaddr = 0x1000 };
	struct vu_frontend f;
	struct fake fk;
	uint8_t cfg[8];
	uint16_t base;
	int fd = dup(0);

	fake_start(&fk, &f, FAKE_OK, 0);
	ck_assert_int_eq(vu_handshake(&f, 1ull << 6), 0);
	ck_assert_uint_eq(f.features, 1ull << 32 | 1ull << 30 | 1ull << 6);
	ck_assert_uint_eq(f.max_mem_slots, 32);
	ck_assert_int_eq(vu_get_config(&f, 0, cfg, sizeof(cfg)), 0);
	ck_assert_uint_eq(cfg[1], 0x80);	/* 32768 sectors */
	ck_assert_int_eq(vu_add_mem_reg(&f, &r, fd), 0);
	ck_assert_int_eq(vu_set_vring_kick(&f, 0, fd), 0);
	ck_assert_int_eq(vu_set_vring_call(&f, 0, -1), 0);
	ck_assert_int_eq(vu_get_vring_base(&f, 0, &base), 0);
	ck_assert_uint_eq(base, 7);
	ck_assert_int_eq(vu_rem_mem_reg(&f, &r, fd), 0);
	close(fd);
	fake_stop(&fk, &f);
	ck_assert_uint_eq(fk.st.fds, 3);	/* ADD, KICK, REM: none for the no-fd CALL */
	ck_assert_uint_eq(fk.st.mem_regions, 0);
	ck_assert_uint_eq(fk.st.bad, 0);
}
END_TEST

/* One fault at REQUEST: the call fails with ERRNO_ and an error naming NEEDLE. */
struct fault_case {
	enum fake_fault fault;
	uint32_t at;
	int errno_;
	const char *needle;
	bool stays_up;		/* the connection survives it */
};

static const struct fault_case cases[] = {
	{ FAKE_SILENT, VU_REM_MEM_REG, -ETIMEDOUT, "REM_MEM_REG: no reply within 200 ms", false },
	{ FAKE_CLOSE, VU_ADD_MEM_REG, -EPIPE, "ADD_MEM_REG: backend closed the connection",
	  false },
	{ FAKE_SHORT, VU_GET_VRING_BASE, -EPIPE, "GET_VRING_BASE: backend closed the "
	  "connection mid-reply", false },
	{ FAKE_WRONG_CODE, VU_ADD_MEM_REG, -EPROTO, "ADD_MEM_REG: reply is for REM_MEM_REG",
	  false },
	{ FAKE_HUGE_SIZE, VU_GET_VRING_BASE, -EPROTO, "size field 4294967295, expected 8", false },
	{ FAKE_SMALL_SIZE, VU_REM_MEM_REG, -EPROTO, "size field 4, expected 8", false },
	{ FAKE_WITH_FD, VU_ADD_MEM_REG, -EPROTO, "carries 1 file descriptors", false },
	{ FAKE_NO_REPLY_FLAG, VU_SET_VRING_ADDR, -EPROTO, "without the reply flag", false },
	{ FAKE_BAD_VERSION, VU_SET_VRING_BASE, -EPROTO, "protocol version 2", false },
	{ FAKE_FAIL_STATUS, VU_ADD_MEM_REG, -EREMOTEIO, "ADD_MEM_REG: backend reports failure",
	  true },
	{ FAKE_OTHER_RING, VU_GET_VRING_BASE, -EPROTO, "reply is for ring 1", false },
	{ FAKE_SILENT, VU_GET_CONFIG, -ETIMEDOUT, "GET_CONFIG: no reply within", false },
	{ FAKE_TRICKLE, 0, 0, "", true },
};

/* After the handshake: the requests the device makes, in its order. */
static int device_requests(struct vu_frontend *f, int fd)
{
	struct vu_mem_region r = { .gpa = 0x100000, .size = 8192, .uaddr = 0x2000 };
	struct vu_vring_addr a = { .index = 0, .desc = 0x2000, .avail = 0x2400, .used = 0x2800 };
	uint8_t cfg[8];
	uint16_t base;
	int e;

	if ((e = vu_get_config(f, 0, cfg, sizeof(cfg))) || (e = vu_add_mem_reg(f, &r, fd)) ||
	    (e = vu_set_vring_num(f, 0, 64)) || (e = vu_set_vring_base(f, 0, 0)) ||
	    (e = vu_set_vring_addr(f, &a)) || (e = vu_set_vring_kick(f, 0, fd)) ||
	    (e = vu_set_vring_enable(f, 0, true)) || (e = vu_get_vring_base(f, 0, &base)) ||
	    (e = vu_rem_mem_reg(f, &r, fd)))
		return e;
	return 0;
}

START_TEST(faults)
{
	const struct fault_case *c = &cases[_i];
	struct vu_frontend f;
	struct fake fk;
	int fd = dup(0);
	double t0;
	int e;

	fake_start(&fk, &f, c->fault, c->at);
	ck_assert_int_eq(vu_handshake(&f, 0), c->at ? 0 : c->errno_);
	t0 = now();
	e = device_requests(&f, fd);
	ck_assert_int_eq(e, c->errno_);
	/* Never a hang: one timeout at most. */
	ck_assert_msg(now() - t0 < 4.0 * SHORT_MS / 1000, "took %.3f s", now() - t0);
	if (e)
		assert_error(&f, c->needle);
	ck_assert(vu_broken(&f) == !c->stays_up);
	if (!c->stays_up) {
		/* Every later call fails at once, and the first error stays. */
		uint16_t base;

		ck_assert_int_eq(vu_get_vring_base(&f, 0, &base), -EPIPE);
		assert_error(&f, c->needle);
	}
	close(fd);
	fake_stop(&fk, &f);
	ck_assert_uint_eq(fk.st.bad, 0);
}
END_TEST

START_TEST(missing_features)
{
	struct vu_frontend f;
	struct fake fk;

	fake_start(&fk, &f, FAKE_NO_MEM_SLOTS, 0);
	ck_assert_int_eq(vu_handshake(&f, 0), -EOPNOTSUPP);
	assert_error(&f, "GET_PROTOCOL_FEATURES: backend offers 0xf2b, without REPLY_ACK, "
		     "CONFIG or CONFIGURE_MEM_SLOTS");
	fake_stop(&fk, &f);
}
END_TEST

START_TEST(no_socket)
{
	struct vu_frontend f;
	double t0 = now();

	ck_assert_int_eq(vu_connect(&f, "/nonexistent/vhost.sock", 100, 50), -ENOENT);
	ck_assert(now() - t0 < 1.0);
	assert_error(&f, "connect to /nonexistent/vhost.sock: No such file");
	vu_close(&f);
}
END_TEST


/* ---- qemu-storage-daemon itself: a userspace ring over a memfd ---- */

#define MEM_SIZE	(2u << 20)
#define IMG_SECTORS	32768u		/* 16 MiB */
#define GPA_BASE	0x100000000ull	/* where "guest" memory sits */
#define PARK_GPA	0xfffff000000ull
#define RING_OFF	0u		/* desc; avail at +1 KiB, used at +2 KiB */
#define BUF_OFF		0x10000u

struct disk {
	struct qsd q;
	struct vu_frontend f;
	char image[64];
	int memfd, parkfd;
	uint8_t *mem, *park;
	struct vu_mem_region region, park_region;
	struct vu_ring ring;
	uint16_t avail_idx, used_seen;
};

static uint64_t hva(struct disk *d, uint64_t off)
{
	return (uint64_t)(uintptr_t)(d->mem + off);
}

static void place_ring(struct disk *d)
{
	d->ring.desc = hva(d, RING_OFF);
	d->ring.avail = hva(d, RING_OFF + 1024);
	d->ring.used = hva(d, RING_OFF + 2048);
}

static int map_memfd(size_t size, uint8_t **p)
{
	int fd = memfd_create("check-vhost-user", MFD_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	*p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(*p != MAP_FAILED);
	return fd;
}

static bool disk_open(struct disk *d)
{
	char err[256], dir[] = "/tmp/check-vhost-user.XXXXXX";
	uint8_t cfg[8];
	uint64_t cap = 0;
	int fd;

	if (access("/usr/bin/qemu-storage-daemon", X_OK) && !getenv("KD_QSD")) {
		fprintf(stderr, "check-vhost-user: no qemu-storage-daemon: its tests skipped\n");
		return false;
	}
	memset(d, 0, sizeof(*d));
	ck_assert(mkdtemp(dir));
	snprintf(d->image, sizeof(d->image), "%s/disk.img", dir);
	fd = open(d->image, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)IMG_SECTORS * KD_BLK_SECTOR), 0);
	close(fd);
	ck_assert_msg(qsd_start(&d->q, d->image, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(vu_connect(&d->f, d->q.socket, 2000, 10000), 0);
	ck_assert_int_eq(vu_handshake(&d->f, 0), 0);
	ck_assert_int_eq(vu_get_config(&d->f, 0, cfg, sizeof(cfg)), 0);
	for (unsigned int i = 0; i < 8; i++)
		cap |= (uint64_t)cfg[i] << (8 * i);
	ck_assert_uint_eq(cap, IMG_SECTORS);

	d->memfd = map_memfd(MEM_SIZE, &d->mem);
	d->parkfd = map_memfd(4096, &d->park);
	d->region = (struct vu_mem_region){ .gpa = GPA_BASE, .size = MEM_SIZE,
					    .uaddr = hva(d, 0) };
	d->park_region = (struct vu_mem_region){ .gpa = PARK_GPA, .size = 4096,
						 .uaddr = (uint64_t)(uintptr_t)d->park };
	ck_assert_int_eq(vu_add_mem_reg(&d->f, &d->park_region, d->parkfd), 0);
	ck_assert_int_eq(vu_add_mem_reg(&d->f, &d->region, d->memfd), 0);
	d->ring.num = KD_BLK_QUEUE_SIZE;
	d->ring.kick_fd = eventfd(0, EFD_CLOEXEC);
	d->ring.call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	place_ring(d);
	ck_assert_int_eq(vu_ring_start(&d->f, &d->ring), 0);
	return true;
}

/*
 * One request of TYPE on SECTORS sectors at SECTOR with data at BUF_OFF,
 * waited for through the call eventfd; returns the status byte.
 */
static int disk_io(struct disk *d, uint32_t type, uint64_t sector, uint32_t sectors)
{
	struct kd_vring_desc *desc = (void *)(uintptr_t)d->ring.desc;
	struct kd_vring_avail *avail = (void *)(uintptr_t)d->ring.avail;
	struct kd_vring_used *used = (void *)(uintptr_t)d->ring.used;
	struct kd_blk_req *req = (void *)(d->mem + BUF_OFF - 64);
	uint8_t *status = d->mem + BUF_OFF - 32;
	struct pollfd p = { .fd = d->ring.call_fd, .events = POLLIN };
	uint64_t v = 1;

	*req = (struct kd_blk_req){ .type = type, .sector = sector };
	*status = 0xff;
	desc[0] = (struct kd_vring_desc){ GPA_BASE + BUF_OFF - 64, 16, KD_VRING_F_NEXT, 1 };
	desc[1] = (struct kd_vring_desc){ GPA_BASE + BUF_OFF, sectors * KD_BLK_SECTOR,
					  KD_VRING_F_NEXT | (type == KD_BLK_T_IN ? KD_VRING_F_WRITE : 0), 2 };
	desc[2] = (struct kd_vring_desc){ GPA_BASE + BUF_OFF - 32, 1, KD_VRING_F_WRITE, 0 };
	avail->ring[d->avail_idx % KD_BLK_QUEUE_SIZE] = 0;
	__atomic_store_n(&avail->idx, (uint16_t)++d->avail_idx, __ATOMIC_RELEASE);
	ck_assert_int_eq(write(d->ring.kick_fd, &v, sizeof(v)), sizeof(v));
	while (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) == d->used_seen) {
		ck_assert_msg(poll(&p, 1, 5000) == 1, "no completion within 5 s");
		while (read(d->ring.call_fd, &v, sizeof(v)) > 0)
			;
	}
	d->used_seen++;
	return *status;
}

static void fill(struct disk *d, uint64_t pass, uint64_t sector, uint32_t sectors)
{
	uint64_t *w = (uint64_t *)(d->mem + BUF_OFF);

	for (uint32_t s = 0; s < sectors; s++)
		for (unsigned int i = 0; i < KD_BLK_SECTOR / 8; i++)
			w[s * 64 + i] = kd_blk_word(pass, sector + s, i);
}

static bool holds(struct disk *d, uint64_t pass, uint64_t sector, uint32_t sectors)
{
	const uint64_t *w = (const uint64_t *)(d->mem + BUF_OFF);

	for (uint32_t s = 0; s < sectors; s++)
		for (unsigned int i = 0; i < KD_BLK_SECTOR / 8; i++)
			if (w[s * 64 + i] != kd_blk_word(pass, sector + s, i))
				return false;
	return true;
}

static void disk_close(struct disk *d)
{
	char dir[64];

	vu_close(&d->f);
	ck_assert_int_eq(qsd_stop(&d->q, 5000), 0);
	close(d->ring.kick_fd);
	close(d->ring.call_fd);
	munmap(d->mem, MEM_SIZE);
	munmap(d->park, 4096);
	close(d->memfd);
	close(d->parkfd);
	unlink(d->image);
	snprintf(dir, sizeof(dir), "%s", d->image);
	*strrchr(dir, '/') = 0;
	rmdir(dir);
}

START_TEST(qsd_write_read)
{
	struct disk d;

	if (!disk_open(&d))
		return;
	fill(&d, 1, 100, 8);
	ck_assert_int_eq(disk_io(&d, KD_BLK_T_OUT, 100, 8), KD_BLK_S_OK);
	memset(d.mem + BUF_OFF, 0, 8 * KD_BLK_SECTOR);
	ck_assert_int_eq(disk_io(&d, KD_BLK_T_IN, 100, 8), KD_BLK_S_OK);
	ck_assert(holds(&d, 1, 100, 8));
	/* Past the end: the backend's error status, not a crash. */
	ck_assert_int_eq(disk_io(&d, KD_BLK_T_IN, IMG_SECTORS, 1), KD_BLK_S_IOERR);
	disk_close(&d);
}
END_TEST

/*
 * The coherence step the device does around a layout change: stop and
 * park the ring, remove the region, move the memory to another memfd at
 * another address, add it back, restart the ring where it stopped; the
 * backend must serve the next request from the new memory.
 */
START_TEST(qsd_move_region)
{
	struct disk d;
	uint8_t *old;
	int oldfd;

	if (!disk_open(&d))
		return;
	fill(&d, 2, 7, 4);
	ck_assert_int_eq(disk_io(&d, KD_BLK_T_OUT, 7, 4), KD_BLK_S_OK);
	for (unsigned int round = 0; round < 3; round++) {
		ck_assert_int_eq(vu_ring_stop(&d.f, &d.ring, d.park_region.uaddr), 0);
		ck_assert_uint_eq(d.ring.base, d.avail_idx);
		ck_assert_int_eq(vu_rem_mem_reg(&d.f, &d.region, d.memfd), 0);
		old = d.mem;
		oldfd = d.memfd;
		d.memfd = map_memfd(MEM_SIZE, &d.mem);
		memcpy(d.mem, old, MEM_SIZE);
		/* The old memory is gone: a backend still using it would fault. */
		munmap(old, MEM_SIZE);
		close(oldfd);
		d.region.uaddr = hva(&d, 0);
		ck_assert_int_eq(vu_add_mem_reg(&d.f, &d.region, d.memfd), 0);
		place_ring(&d);
		ck_assert_int_eq(vu_ring_start(&d.f, &d.ring), 0);
		memset(d.mem + BUF_OFF, 0, 4 * KD_BLK_SECTOR);
		ck_assert_int_eq(disk_io(&d, KD_BLK_T_IN, 7, 4), KD_BLK_S_OK);
		ck_assert(holds(&d, 2, 7, 4));
	}
	disk_close(&d);
}
END_TEST

START_TEST(qsd_killed)
{
	struct disk d;
	uint16_t base;

	if (!disk_open(&d))
		return;
	kill(d.q.pid, SIGKILL);
	/* The next request meets a closed socket: an error, not a hang. */
	ck_assert_int_lt(vu_get_vring_base(&d.f, 0, &base), 0);
	ck_assert(vu_broken(&d.f));
	ck_assert_int_eq(qsd_alive(&d.q), 0);
	disk_close(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vhost-user");
	TCase *tc = tcase_create("fake");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, handshake_ok);
	tcase_add_loop_test(tc, faults, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, missing_features);
	tcase_add_test(tc, no_socket);
	suite_add_tcase(s, tc);
	tc = tcase_create("qemu-storage-daemon");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, qsd_write_read);
	tcase_add_test(tc, qsd_move_region);
	tcase_add_test(tc, qsd_killed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
