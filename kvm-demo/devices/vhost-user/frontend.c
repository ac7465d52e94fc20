/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend's transport: send a request (with its fds),
 * read the reply against a deadline, hand it to the pure parser. The
 * backend is another program: nothing it sends is trusted, and nothing it
 * fails to send may hang kvm-demo.
 */
#define _GNU_SOURCE
#include "frontend.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vu_init(struct vu_frontend *f, int sock, unsigned int timeout_ms)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->sock = sock;
	f->timeout_ms = timeout_ms ? timeout_ms : VU_TIMEOUT_MS_DEFAULT;
}

int vu_connect(struct vu_frontend *f, const char *path, unsigned int timeout_ms,
	       unsigned int wait_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + wait_ms;
	int fd, err;

	vu_init(f, -1, timeout_ms);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(f->err, sizeof(f->err), "vhost-user: socket path %s: longer than %zu bytes",
			 path, sizeof(sa.sun_path) - 1);
		atomic_store(&f->broken, true);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = -errno;
			break;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			f->sock = fd;
			return 0;
		}
		err = -errno;
		close(fd);
		if ((err != -ENOENT && err != -ECONNREFUSED) || now_ms() >= deadline)
			break;
		/* Nothing announces that a socket appeared: poll for it, briefly. */
		poll(NULL, 0, 10);
	}
	snprintf(f->err, sizeof(f->err), "vhost-user: connect to %s: %s", path, strerror(-err));
	atomic_store(&f->broken, true);
	return err;
}

void vu_close(struct vu_frontend *f)
{
	pthread_mutex_lock(&f->lock);
	if (f->sock >= 0)
		close(f->sock);
	f->sock = -1;
	atomic_store(&f->broken, true);
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_destroy(&f->lock);
}

/* With the lock held: the connection is unusable from now on. */
static void breakdown(struct vu_frontend *f)
{
	if (f->sock >= 0)
		shutdown(f->sock, SHUT_RDWR);
	atomic_store(&f->broken, true);
}

void vu_shutdown(struct vu_frontend *f, const char *why)
{
	pthread_mutex_lock(&f->lock);
	if (!atomic_load(&f->broken))
		snprintf(f->err, sizeof(f->err), "vhost-user: %s", why);
	breakdown(f);
	pthread_mutex_unlock(&f->lock);
}

bool vu_broken(struct vu_frontend *f)
{
	return atomic_load(&f->broken);
}

int vu_socket(struct vu_frontend *f)
{
	return f->sock;
}

void vu_last_error(struct vu_frontend *f, char *buf, size_t len)
{
	pthread_mutex_lock(&f->lock);
	snprintf(buf, len, "%s", f->err);
	pthread_mutex_unlock(&f->lock);
}

__attribute__((format(printf, 3, 4)))
static void fail(struct vu_frontend *f, uint32_t request, const char *fmt, ...)
{
	char name[24], msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(f->err, sizeof(f->err), "vhost-user: %s: %s",
		 vu_request_name(request, name, sizeof(name)), msg);
}

static int send_msg(struct vu_frontend *f, const uint8_t *buf, size_t len, const int *fds,
		    unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} control;
	size_t done = 0;

	while (done < len) {
		struct iovec iov = { .iov_base = (void *)(buf + done), .iov_len = len - done };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		/* The descriptors go with the first byte only. */
		if (nfds && done == 0) {
			struct cmsghdr *c;

			memset(&control, 0, sizeof(control));
			mh.msg_control = control.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		n = sendmsg(f->sock, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/*
 * Read exactly LEN bytes into BUF by DEADLINE; fds that come along are
 * counted into *NFDS and closed (no reply kvm-demo reads may carry any).
 */
static int recv_exact(struct vu_frontend *f, uint32_t request, uint8_t *buf, size_t len,
		      long long deadline, unsigned int *nfds)
{
	size_t done = 0;

	while (done < len) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
			struct cmsghdr align;
		} control;
		struct iovec iov = { .iov_base = buf + done, .iov_len = len - done };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf) };
		struct pollfd pfd = { .fd = f->sock, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;
		int r;

		if (left < 0)
			left = 0;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fail(f, request, "poll: %s", strerror(errno));
			return -errno;
		}
		if (r == 0) {
			fail(f, request, "no reply within %u ms", f->timeout_ms);
			return -ETIMEDOUT;
		}
		n = recvmsg(f->sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			fail(f, request, "reading the reply: %s", strerror(errno));
			return -EPIPE;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(fd);
			}
			*nfds += (unsigned int)k;
		}
		if (mh.msg_flags & MSG_CTRUNC)
			*nfds += VU_MAX_FDS + 1;	/* more than fit: certainly wrong */
		if (n == 0) {
			fail(f, request, done ? "backend closed the connection mid-reply" :
			     "backend closed the connection");
			return -EPIPE;
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * Send one request and, if EXP (an ack or a reply) is wanted, read and
 * check its reply into OUT. The lock is held throughout. Any failure but
 * the backend's own "failed" breaks the connection.
 */
static int transact(struct vu_frontend *f, uint32_t request, uint32_t flags,
		    const uint8_t *payload, uint32_t len, const int *fds, unsigned int nfds,
		    const struct vu_expect *exp, struct vu_reply *out)
{
	uint8_t msg[VU_MSG_MAX], reply[VU_MSG_MAX];
	unsigned int got_fds = 0;
	char why[160];
	int r, size;

	pthread_mutex_lock(&f->lock);
	/* Keep the failure that broke it: that is the one worth reporting. */
	if (atomic_load(&f->broken) || f->sock < 0) {
		pthread_mutex_unlock(&f->lock);
		return -EPIPE;
	}
	r = send_msg(f, msg, vu_encode(msg, request, flags, payload, len), fds, nfds);
	atomic_fetch_add(&f->requests, 1);
	if (r < 0) {
		fail(f, request, "sending: %s", strerror(-r));
		goto broken;
	}
	if (!exp)
		goto out;

	long long deadline = now_ms() + f->timeout_ms;

	r = recv_exact(f, request, reply, VU_HDR_SIZE, deadline, &got_fds);
	if (r < 0)
		goto broken;
	size = vu_parse_header(reply, exp, why, sizeof(why));
	if (size < 0) {
		r = size;
		fail(f, request, "%s", why);
		goto broken;
	}
	r = recv_exact(f, request, reply + VU_HDR_SIZE, (size_t)size, deadline, &got_fds);
	if (r < 0)
		goto broken;
	r = vu_parse_reply(reply, VU_HDR_SIZE + (size_t)size, got_fds, exp, out, why, sizeof(why));
	if (r == -EREMOTEIO) {
		fail(f, request, "%s", why);
		goto out;
	}
	if (r < 0) {
		fail(f, request, "%s", why);
		goto broken;
	}
out:
	pthread_mutex_unlock(&f->lock);
	return r;
broken:
	breakdown(f);
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* A setting: acked once REPLY_ACK is negotiated, so its failure is seen here. */
static int set(struct vu_frontend *f, uint32_t request, const uint8_t *payload, uint32_t len,
	       const int *fds, unsigned int nfds)
{
	struct vu_expect exp = { .request = request, .ack = true };
	struct vu_reply out;
	bool ack = f->protocol_features & (1ull << VU_PF_REPLY_ACK);

	return transact(f, request, ack ? VU_FLAG_NEED_REPLY : 0, payload, len, fds, nfds,
			ack ? &exp : NULL, &out);
}

static int get_u64(struct vu_frontend *f, uint32_t request, uint64_t *v)
{
	struct vu_expect exp = { .request = request };
	struct vu_reply out;
	int r = transact(f, request, 0, NULL, 0, NULL, 0, &exp, &out);

	*v = out.u64;
	return r;
}

static int set_u64(struct vu_frontend *f, uint32_t request, uint64_t v)
{
	uint8_t p[8];

	return set(f, request, p, vu_encode_u64(p, v), NULL, 0);
}

int vu_handshake(struct vu_frontend *f, uint64_t want)
{
	const uint64_t need = 1ull << VU_F_VERSION_1 | 1ull << VU_F_PROTOCOL_FEATURES;
	const uint64_t pneed = 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG |
			       1ull << VU_PF_CONFIGURE_MEM_SLOTS;
	uint64_t offered, poffered;
	int r;

	f->protocol_features = 0;
	r = set(f, VU_SET_OWNER, NULL, 0, NULL, 0);
	if (!r)
		r = get_u64(f, VU_GET_FEATURES, &offered);
	if (r)
		return r;
	if ((offered & need) != need) {
		pthread_mutex_lock(&f->lock);
		fail(f, VU_GET_FEATURES, "backend offers %#llx, without VERSION_1 or "
		     "PROTOCOL_FEATURES", (unsigned long long)offered);
		pthread_mutex_unlock(&f->lock);
		return -EOPNOTSUPP;
	}
	r = get_u64(f, VU_GET_PROTOCOL_FEATURES, &poffered);
	if (r)
		return r;
	if ((poffered & pneed) != pneed) {
		pthread_mutex_lock(&f->lock);
		fail(f, VU_GET_PROTOCOL_FEATURES, "backend offers %#llx, without REPLY_ACK, "
		     "CONFIG or CONFIGURE_MEM_SLOTS", (unsigned long long)poffered);
		pthread_mutex_unlock(&f->lock);
		return -EOPNOTSUPP;
	}
	r = set_u64(f, VU_SET_PROTOCOL_FEATURES, pneed);
	if (r)
		return r;
	f->protocol_features = pneed;	/* from here on, settings are acked */
	f->features = need | (offered & want);
	r = set_u64(f, VU_SET_FEATURES, f->features);
	if (!r)
		r = get_u64(f, VU_GET_MAX_MEM_SLOTS, &f->max_mem_slots);
	if (!r && f->max_mem_slots == 0) {
		pthread_mutex_lock(&f->lock);
		fail(f, VU_GET_MAX_MEM_SLOTS, "backend has no memory slots");
		pthread_mutex_unlock(&f->lock);
		r = -EOPNOTSUPP;
	}
	return r;
}

int vu_get_config(struct vu_frontend *f, uint32_t offset, void *buf, uint32_t size)
{
	struct vu_expect exp = { .request = VU_GET_CONFIG, .config_offset = offset,
				 .config_size = size };
	uint8_t p[VU_PAYLOAD_MAX];
	struct vu_reply out;
	int r;

	if (size > VU_CONFIG_MAX)
		return -EINVAL;
	r = transact(f, VU_GET_CONFIG, 0, p, vu_encode_config(p, offset, size), NULL, 0, &exp,
		     &out);
	if (!r)
		memcpy(buf, out.config, size);
	return r;
}

int vu_add_mem_reg(struct vu_frontend *f, const struct vu_mem_region *r, int fd)
{
	uint8_t p[40];

	return set(f, VU_ADD_MEM_REG, p, vu_encode_mem_reg(p, r), &fd, 1);
}

/* The fd goes along too: some backends insist on one, and ignore it. */
int vu_rem_mem_reg(struct vu_frontend *f, const struct vu_mem_region *r, int fd)
{
	uint8_t p[40];

	return set(f, VU_REM_MEM_REG, p, vu_encode_mem_reg(p, r), &fd, fd >= 0 ? 1 : 0);
}

static int set_state(struct vu_frontend *f, uint32_t request, uint32_t index, uint32_t num)
{
	uint8_t p[8];

	return set(f, request, p, vu_encode_state(p, index, num), NULL, 0);
}

int vu_set_vring_num(struct vu_frontend *f, uint32_t index, uint32_t num)
{
	return set_state(f, VU_SET_VRING_NUM, index, num);
}

int vu_set_vring_base(struct vu_frontend *f, uint32_t index, uint32_t base)
{
	return set_state(f, VU_SET_VRING_BASE, index, base);
}

int vu_set_vring_enable(struct vu_frontend *f, uint32_t index, bool on)
{
	return set_state(f, VU_SET_VRING_ENABLE, index, on);
}

int vu_set_vring_addr(struct vu_frontend *f, const struct vu_vring_addr *a)
{
	uint8_t p[40];

	return set(f, VU_SET_VRING_ADDR, p, vu_encode_addr(p, a), NULL, 0);
}

static int set_fd(struct vu_frontend *f, uint32_t request, uint32_t index, int fd)
{
	uint8_t p[8];

	return set(f, request, p, vu_encode_u64(p, index | (fd < 0 ? VU_VRING_NOFD : 0)),
		   &fd, fd < 0 ? 0 : 1);
}

int vu_set_vring_kick(struct vu_frontend *f, uint32_t index, int fd)
{
	return set_fd(f, VU_SET_VRING_KICK, index, fd);
}

int vu_set_vring_call(struct vu_frontend *f, uint32_t index, int fd)
{
	return set_fd(f, VU_SET_VRING_CALL, index, fd);
}

int vu_get_vring_base(struct vu_frontend *f, uint32_t index, uint16_t *base)
{
	struct vu_expect exp = { .request = VU_GET_VRING_BASE, .index = index };
	struct vu_reply out;
	uint8_t p[8];
	int r;

	r = transact(f, VU_GET_VRING_BASE, 0, p, vu_encode_state(p, index, 0), NULL, 0, &exp,
		     &out);
	if (!r)
		*base = (uint16_t)out.state.num;
	return r;
}

int vu_ring_start(struct vu_frontend *f, struct vu_ring *r)
{
	struct vu_vring_addr a = { .index = r->index, .desc = r->desc, .used = r->used,
				   .avail = r->avail };
	int e;

	/*
	 * The call fd before the kick fd: a kick that came while the ring was
	 * stopped starts the backend at once, and libvhost-user 7.2 would
	 * signal its completions through the call fd it closed at
	 * GET_VRING_BASE (and give up on the device).
	 */
	if ((e = vu_set_vring_num(f, r->index, r->num)) ||
	    (e = vu_set_vring_base(f, r->index, r->base)) || (e = vu_set_vring_addr(f, &a)) ||
	    (e = vu_set_vring_call(f, r->index, r->call_fd)) ||
	    (e = vu_set_vring_enable(f, r->index, true)) ||
	    (e = vu_set_vring_kick(f, r->index, r->kick_fd)))
		return e;
	__atomic_store_n(&r->started, true, __ATOMIC_RELAXED);	/* peeked at without a lock */
	return 0;
}

/* Parked: the three parts of a queue of up to 64 entries in 4 KiB. */
#define PARK_AVAIL	1024u
#define PARK_USED	2048u

int vu_ring_stop(struct vu_frontend *f, struct vu_ring *r, uint64_t park)
{
	struct vu_vring_addr a = { .index = r->index, .desc = park, .avail = park + PARK_AVAIL,
				   .used = park + PARK_USED };
	const volatile uint16_t *used_idx = (const volatile uint16_t *)(uintptr_t)(r->used + 2);
	long long deadline;
	uint16_t base;
	int e;

	if (!r->started)
		return 0;
	if (r->num > 64)
		return -EINVAL;
	e = vu_get_vring_base(f, r->index, &base);
	if (e)
		return e;
	__atomic_store_n(&r->started, false, __ATOMIC_RELAXED);
	r->base = base;
	/*
	 * The backend dropped its call fd with the ring, so nothing signals the
	 * last completions: watch the used index, briefly, within the deadline.
	 */
	deadline = now_ms() + f->timeout_ms;
	while (__atomic_load_n(used_idx, __ATOMIC_ACQUIRE) != base) {
		if (now_ms() >= deadline) {
			pthread_mutex_lock(&f->lock);
			fail(f, VU_GET_VRING_BASE, "requests still in flight %u ms after the "
			     "ring stopped (used index %u, base %u)", f->timeout_ms,
			     (unsigned int)*used_idx, base);
			breakdown(f);
			pthread_mutex_unlock(&f->lock);
			return -ETIMEDOUT;
		}
		poll(NULL, 0, 1);
	}
	return vu_set_vring_addr(f, &a);
}
