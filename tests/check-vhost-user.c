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
#include <sys/wait.h>

#include "devices/vhost-user/frontend.h"
#include "devices/vhost-user/qsd.h"
#include "guest/abi.h"
#include "guest/blk-abi.h"
#include "vhost-user-fake.h"
#include "vu-disk.h"

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


/* ---- qemu-storage-daemon itself (tests/vu-disk.c drives it) ---- */

static bool disk_open(struct vu_disk *d)
{
	char err[256];

	if (!vu_disk_available()) {
		fprintf(stderr, "check-vhost-user: no qemu-storage-daemon: its tests skipped\n");
		return false;
	}
	ck_assert_msg(vu_disk_open(d, err, sizeof(err)) == 0, "%s", err);
	return true;
}

static void fill(struct vu_disk *d, uint64_t pass, uint64_t sector, uint32_t sectors)
{
	uint64_t *w = (uint64_t *)(void *)(d->mem + VU_DISK_BUF);

	for (uint32_t s = 0; s < sectors; s++)
		for (unsigned int i = 0; i < KD_BLK_SECTOR / 8; i++)
			w[s * 64 + i] = kd_blk_word(pass, sector + s, i);
}

static bool holds(struct vu_disk *d, uint64_t pass, uint64_t sector, uint32_t sectors)
{
	const uint64_t *w = (const uint64_t *)(const void *)(d->mem + VU_DISK_BUF);

	for (uint32_t s = 0; s < sectors; s++)
		for (unsigned int i = 0; i < KD_BLK_SECTOR / 8; i++)
			if (w[s * 64 + i] != kd_blk_word(pass, sector + s, i))
				return false;
	return true;
}

/* One request, waited for; returns its status byte. */
static int disk_io(struct vu_disk *d, uint32_t type, uint64_t sector, uint32_t sectors)
{
	vu_disk_queue(d, 0, type, sector, sectors * KD_BLK_SECTOR, VU_DISK_BUF);
	ck_assert_int_eq(vu_disk_run(d, 5000), 0);
	return vu_disk_status(d, 0);
}

START_TEST(qsd_write_read)
{
	struct vu_disk d;

	if (!disk_open(&d))
		return;
	fill(&d, 1, 100, 8);
	ck_assert_int_eq(disk_io(&d, KD_BLK_T_OUT, 100, 8), KD_BLK_S_OK);
	memset(d.mem + VU_DISK_BUF, 0, 8 * KD_BLK_SECTOR);
	ck_assert_int_eq(disk_io(&d, KD_BLK_T_IN, 100, 8), KD_BLK_S_OK);
	ck_assert(holds(&d, 1, 100, 8));
	/* Past the end: the backend's error status, not a crash. */
	ck_assert_int_eq(disk_io(&d, KD_BLK_T_IN, VU_DISK_SECTORS, 1), KD_BLK_S_IOERR);
	vu_disk_close(&d);
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
	struct vu_disk d;

	if (!disk_open(&d))
		return;
	fill(&d, 2, 7, 4);
	ck_assert_int_eq(disk_io(&d, KD_BLK_T_OUT, 7, 4), KD_BLK_S_OK);
	for (unsigned int round = 0; round < 3; round++) {
		ck_assert_int_eq(vu_disk_move(&d, NULL, NULL), 0);
		ck_assert_uint_eq(d.ring.base, d.avail_idx);
		memset(d.mem + VU_DISK_BUF, 0, 4 * KD_BLK_SECTOR);
		ck_assert_int_eq(disk_io(&d, KD_BLK_T_IN, 7, 4), KD_BLK_S_OK);
		ck_assert(holds(&d, 2, 7, 4));
	}
	vu_disk_close(&d);
}
END_TEST

/*
 * A request published and kicked while the ring is stopped is served when
 * it restarts: the backend must have its call fd before it starts.
 */
START_TEST(qsd_kick_while_stopped)
{
	struct vu_disk d;

	if (!disk_open(&d))
		return;
	for (unsigned int round = 0; round < 3; round++) {
		ck_assert_int_eq(vu_ring_stop(&d.f, &d.ring, d.park_region.uaddr), 0);
		vu_disk_queue(&d, 0, KD_BLK_T_IN, 3, 4096, VU_DISK_BUF);
		/* Published and kicked: the kick waits in the eventfd. */
		__atomic_store_n(&((struct kd_vring_avail *)(uintptr_t)d.ring.avail)->idx,
				 d.avail_idx, __ATOMIC_RELEASE);
		ck_assert_int_eq(eventfd_write(d.ring.kick_fd, 1), 0);
		ck_assert_int_eq(vu_ring_start(&d.f, &d.ring), 0);
		ck_assert_int_eq(vu_disk_run(&d, 5000), 0);
		ck_assert_int_eq(vu_disk_status(&d, 0), KD_BLK_S_OK);
		ck_assert(!vu_broken(&d.f));
	}
	vu_disk_close(&d);
}
END_TEST

START_TEST(qsd_killed)
{
	struct vu_disk d;
	uint16_t base;
	int status;

	if (!disk_open(&d))
		return;
	kill(d.q.pid, SIGKILL);
	/* The next request meets a closed socket: an error, not a hang. */
	ck_assert_int_lt(vu_get_vring_base(&d.f, 0, &base), 0);
	ck_assert(vu_broken(&d.f));
	status = qsd_stop(&d.q, 5000);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	vu_disk_close(&d);
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
	tcase_add_test(tc, qsd_kick_while_stopped);
	tcase_add_test(tc, qsd_killed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
