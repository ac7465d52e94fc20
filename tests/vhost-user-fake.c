/* SPDX-License-Identifier: MIT */
/*
 * A fake vhost-user backend that misbehaves on demand: linked into
 * check-vhost-user, and a program of its own (vhost-user-fake --socket
 * PATH --fault NAME [--at CODE]) for the nested fault tests, where
 * kvm-demo connects to it instead of to qemu-storage-daemon.
 */
#define _GNU_SOURCE
#include "vhost-user-fake.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/vhost-user/proto.h"

const char *const fake_fault_names[FAKE_NR_FAULTS] = {
	"ok", "silent", "close", "short", "wrong-code", "huge-size", "small-size", "with-fd",
	"no-reply-flag", "bad-version", "fail-status", "other-ring", "trickle", "no-mem-slots",
};

#define FEATURES	0x175007e46ull		/* what qemu-storage-daemon 7.2 offers */
#define PFEATURES	0x8f2bull
#define CAPACITY	32768ull		/* sectors: 16 MiB */

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Read exactly LEN bytes; descriptors that come along are counted and closed. */
static int read_all(int fd, uint8_t *buf, size_t len, struct fake_stats *st)
{
	size_t done = 0;

	while (done < len) {
		char control[CMSG_SPACE(sizeof(int) * 8)];
		struct iovec iov = { .iov_base = buf + done, .iov_len = len - done };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
				     .msg_controllen = sizeof(control) };
		ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k; i++) {
				int rfd;

				memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(rfd);
			}
			st->fds += (unsigned int)k;
		}
		done += (size_t)n;
	}
	return 0;
}

static void write_all(int fd, const uint8_t *buf, size_t len, bool trickle)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = send(fd, buf + done, trickle ? 1 : len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		done += (size_t)n;
	}
}

static void send_fd_reply(int fd, const uint8_t *buf, size_t len)
{
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	int extra = dup(fd);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &extra, sizeof(int));
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		perror("vhost-user-fake: sendmsg");
	close(extra);
}

void fake_serve(int fd, enum fake_fault fault, uint32_t at, struct fake_stats *st)
{
	uint8_t in[VU_HDR_SIZE + 4096], out[VU_MSG_MAX + 8];
	uint64_t pfeatures = PFEATURES;
	bool acks = false;

	memset(st, 0, sizeof(*st));
	if (fault == FAKE_NO_MEM_SLOTS) {
		pfeatures &= ~(1ull << VU_PF_CONFIGURE_MEM_SLOTS);
		fault = FAKE_OK;
	}
	for (;;) {
		uint32_t req, flags, size, plen = 8;
		bool reply, hit;
		uint64_t v = 0;

		if (read_all(fd, in, VU_HDR_SIZE, st))
			break;
		req = get32(in);
		flags = get32(in + 4);
		size = get32(in + 8);
		if (size > sizeof(in) - VU_HDR_SIZE || (flags & 3) != 1) {
			st->bad++;
			break;
		}
		if (read_all(fd, in + VU_HDR_SIZE, size, st))
			break;
		st->requests++;
		st->last_request = req;
		reply = true;
		memset(out, 0, sizeof(out));
		switch (req) {
		case VU_GET_FEATURES:
			v = FEATURES;
			break;
		case VU_GET_PROTOCOL_FEATURES:
			v = pfeatures;
			break;
		case VU_GET_MAX_MEM_SLOTS:
			v = 32;
			break;
		case VU_GET_VRING_BASE:
			memcpy(out + VU_HDR_SIZE, in + VU_HDR_SIZE, 4);
			v = 7ull << 32 | get32(in + VU_HDR_SIZE);
			break;
		case VU_GET_CONFIG:
			plen = size;
			memcpy(out + VU_HDR_SIZE, in + VU_HDR_SIZE, 12);
			if (get32(in + VU_HDR_SIZE) == 0 && size >= 20)
				for (unsigned int i = 0; i < 8; i++)
					out[VU_HDR_SIZE + 12 + i] = (uint8_t)(CAPACITY >> (8 * i));
			break;
		default:
			if (req == VU_SET_PROTOCOL_FEATURES &&
			    (in[VU_HDR_SIZE] >> VU_PF_REPLY_ACK) & 1)
				acks = true;
			if (req == VU_ADD_MEM_REG)
				st->mem_regions++;
			if (req == VU_REM_MEM_REG)
				st->mem_regions--;
			reply = acks && (flags & VU_FLAG_NEED_REPLY);
			break;
		}
		if (!reply)
			continue;
		if (req != VU_GET_CONFIG)
			for (unsigned int i = 0; i < 8; i++)
				out[VU_HDR_SIZE + i] = (uint8_t)(v >> (8 * i));
		put32(out, req);
		put32(out + 4, VU_FLAG_VERSION | VU_FLAG_REPLY);
		put32(out + 8, plen);
		hit = fault != FAKE_OK && (at == 0 || at == req);
		if (!hit) {
			write_all(fd, out, VU_HDR_SIZE + plen, false);
			continue;
		}
		switch (fault) {
		case FAKE_SILENT:
			/* Wait for the frontend to give up: it closes or shuts down. */
			while (read_all(fd, in, 1, st) == 0)
				;
			goto done;
		case FAKE_CLOSE:
			goto done;
		case FAKE_SHORT:
			write_all(fd, out, VU_HDR_SIZE + plen / 2, false);
			goto done;
		case FAKE_WRONG_CODE:
			put32(out, req + 1);
			break;
		case FAKE_HUGE_SIZE:
			put32(out + 8, 0xffffffffu);
			break;
		case FAKE_SMALL_SIZE:
			put32(out + 8, 4);
			plen = 4;
			break;
		case FAKE_WITH_FD:
			send_fd_reply(fd, out, VU_HDR_SIZE + plen);
			continue;
		case FAKE_NO_REPLY_FLAG:
			put32(out + 4, VU_FLAG_VERSION);
			break;
		case FAKE_BAD_VERSION:
			put32(out + 4, 2 | VU_FLAG_REPLY);
			break;
		case FAKE_FAIL_STATUS:
			out[VU_HDR_SIZE] = 1;
			break;
		case FAKE_OTHER_RING:
			out[VU_HDR_SIZE] ^= 1;
			break;
		case FAKE_TRICKLE:
			write_all(fd, out, VU_HDR_SIZE + plen, true);
			continue;
		default:
			break;
		}
		write_all(fd, out, VU_HDR_SIZE + plen, false);
	}
done:
	close(fd);
}

#ifndef FAKE_NO_MAIN
static int usage(void)
{
	fprintf(stderr, "usage: vhost-user-fake --socket PATH [--fault NAME] [--at CODE]\n"
		"faults:");
	for (unsigned int i = 0; i < FAKE_NR_FAULTS; i++)
		fprintf(stderr, " %s", fake_fault_names[i]);
	fputc('\n', stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	enum fake_fault fault = FAKE_OK;
	const char *path = NULL;
	struct fake_stats st;
	uint32_t at = 0;
	int lfd, fd;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--at") && i + 1 < argc) {
			at = (uint32_t)strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--fault") && i + 1 < argc) {
			unsigned int f;

			for (f = 0; f < FAKE_NR_FAULTS && strcmp(fake_fault_names[f], argv[i + 1]); f++)
				;
			if (f == FAKE_NR_FAULTS) {
				fprintf(stderr, "vhost-user-fake: unknown fault '%s'\n", argv[i + 1]);
				return usage();
			}
			fault = (enum fake_fault)f;
			i++;
		} else {
			return usage();
		}
	}
	if (!path || strlen(path) >= sizeof(sa.sun_path))
		return usage();
	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1)) {
		perror("vhost-user-fake: socket");
		return 1;
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	unlink(path);
	if (fd < 0) {
		perror("vhost-user-fake: accept");
		return 1;
	}
	fake_serve(fd, fault, at, &st);
	fprintf(stderr, "vhost-user-fake: %u requests, %u fds, fault %s\n", st.requests, st.fds,
		fake_fault_names[fault]);
	return 0;
}
#endif
