/* SPDX-License-Identifier: MIT */
/*
 * vhost-user messages, frontend side: requests out, replies checked.
 * Little-endian on the wire, written byte by byte so that the code does
 * not depend on the host's order or on structure padding.
 */
#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (unsigned int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static const char *const names[] = {
	[VU_GET_FEATURES] = "GET_FEATURES",
	[VU_SET_FEATURES] = "SET_FEATURES",
	[VU_SET_OWNER] = "SET_OWNER",
	[VU_SET_VRING_NUM] = "SET_VRING_NUM",
	[VU_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[VU_SET_VRING_BASE] = "SET_VRING_BASE",
	[VU_GET_VRING_BASE] = "GET_VRING_BASE",
	[VU_SET_VRING_KICK] = "SET_VRING_KICK",
	[VU_SET_VRING_CALL] = "SET_VRING_CALL",
	[VU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[VU_GET_CONFIG] = "GET_CONFIG",
	[VU_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
	[VU_ADD_MEM_REG] = "ADD_MEM_REG",
	[VU_REM_MEM_REG] = "REM_MEM_REG",
};

const char *vu_request_name(uint32_t request, char *buf, size_t len)
{
	if (request < sizeof(names) / sizeof(names[0]) && names[request])
		return names[request];
	snprintf(buf, len, "request %u", request);
	return buf;
}

size_t vu_encode(uint8_t *buf, uint32_t request, uint32_t flags, const void *payload,
		 uint32_t len)
{
	put32(buf, request);
	put32(buf + 4, flags | VU_FLAG_VERSION);
	put32(buf + 8, len);
	if (len)
		memcpy(buf + VU_HDR_SIZE, payload, len);
	return VU_HDR_SIZE + len;
}

uint32_t vu_encode_u64(uint8_t *out, uint64_t v)
{
	put64(out, v);
	return 8;
}

uint32_t vu_encode_state(uint8_t *out, uint32_t index, uint32_t num)
{
	put32(out, index);
	put32(out + 4, num);
	return 8;
}

uint32_t vu_encode_addr(uint8_t *out, const struct vu_vring_addr *a)
{
	put32(out, a->index);
	put32(out + 4, a->flags);
	put64(out + 8, a->desc);
	put64(out + 16, a->used);
	put64(out + 24, a->avail);
	put64(out + 32, a->log);
	return 40;
}

/* The single-region message: 8 bytes of padding, then the region. */
uint32_t vu_encode_mem_reg(uint8_t *out, const struct vu_mem_region *r)
{
	put64(out, 0);
	put64(out + 8, r->gpa);
	put64(out + 16, r->size);
	put64(out + 24, r->uaddr);
	put64(out + 32, r->mmap_offset);
	return 40;
}

/* GET_CONFIG: offset, size, flags, then SIZE bytes the backend fills. */
uint32_t vu_encode_config(uint8_t *out, uint32_t offset, uint32_t size)
{
	put32(out, offset);
	put32(out + 4, size);
	put32(out + 8, 0);
	memset(out + 12, 0, size);
	return 12 + size;
}

/* The payload size EXP's reply must have; GET_CONFIG may also send 0 (refused). */
static uint32_t expected_size(const struct vu_expect *exp)
{
	if (exp->request == VU_GET_CONFIG && !exp->ack)
		return 12 + exp->config_size;
	return 8;	/* an ack, a u64, or a vring state */
}

int vu_parse_header(const uint8_t *hdr, const struct vu_expect *exp, char *err, size_t errlen)
{
	uint32_t request = get32(hdr), flags = get32(hdr + 4), size = get32(hdr + 8);
	uint32_t want = expected_size(exp);
	char b1[24];

	if ((flags & VU_FLAG_VERSION_MASK) != VU_FLAG_VERSION) {
		snprintf(err, errlen, "reply has protocol version %u, not 1",
			 flags & VU_FLAG_VERSION_MASK);
		return -EPROTO;
	}
	if (!(flags & VU_FLAG_REPLY)) {
		snprintf(err, errlen, "message without the reply flag (flags %#x)", flags);
		return -EPROTO;
	}
	if (flags & ~(VU_FLAG_VERSION_MASK | VU_FLAG_REPLY | VU_FLAG_NEED_REPLY)) {
		snprintf(err, errlen, "reply has unknown flags %#x", flags);
		return -EPROTO;
	}
	if (request != exp->request) {
		snprintf(err, errlen, "reply is for %s", vu_request_name(request, b1, sizeof(b1)));
		return -EPROTO;
	}
	if (size != want && !(exp->request == VU_GET_CONFIG && !exp->ack && size == 0)) {
		snprintf(err, errlen, "reply size field %u, expected %u", size, want);
		return -EPROTO;
	}
	return (int)size;
}

int vu_parse_reply(const uint8_t *buf, size_t len, unsigned int nfds,
		   const struct vu_expect *exp, struct vu_reply *out, char *err, size_t errlen)
{
	const uint8_t *p = buf + VU_HDR_SIZE;
	int size;

	memset(out, 0, sizeof(*out));
	if (exp->config_size > VU_CONFIG_MAX) {
		snprintf(err, errlen, "asked for %u config bytes, at most %u", exp->config_size,
			 VU_CONFIG_MAX);
		return -EINVAL;
	}
	if (len < VU_HDR_SIZE) {
		snprintf(err, errlen, "short reply: %zu bytes, a header is %u", len, VU_HDR_SIZE);
		return -EPROTO;
	}
	size = vu_parse_header(buf, exp, err, errlen);
	if (size < 0)
		return size;
	if (len - VU_HDR_SIZE != (size_t)size) {
		snprintf(err, errlen, "reply carries %zu payload bytes, its size field says %d",
			 len - VU_HDR_SIZE, size);
		return -EPROTO;
	}
	/* No reply kvm-demo asks for carries descriptors. */
	if (nfds) {
		snprintf(err, errlen, "reply carries %u file descriptors, expected none", nfds);
		return -EPROTO;
	}
	out->request = exp->request;
	out->size = (uint32_t)size;
	if (exp->ack) {
		out->u64 = get64(p);
		if (out->u64) {
			snprintf(err, errlen, "backend reports failure (status %llu)",
				 (unsigned long long)out->u64);
			return -EREMOTEIO;
		}
		return 0;
	}
	switch (exp->request) {
	case VU_GET_VRING_BASE:
		out->state.index = get32(p);
		out->state.num = get32(p + 4);
		if (out->state.index != exp->index) {
			snprintf(err, errlen, "reply is for ring %u, asked about ring %u",
				 out->state.index, exp->index);
			return -EPROTO;
		}
		/* A split ring's index is 16 bits. */
		if (out->state.num > 0xffff) {
			snprintf(err, errlen, "ring base %u does not fit 16 bits", out->state.num);
			return -EPROTO;
		}
		return 0;
	case VU_GET_CONFIG:
		if (size == 0) {
			snprintf(err, errlen, "backend refused to read its configuration");
			return -EREMOTEIO;
		}
		if (get32(p) != exp->config_offset || get32(p + 4) != exp->config_size) {
			snprintf(err, errlen, "reply is for config bytes [%u, +%u), asked [%u, +%u)",
				 get32(p), get32(p + 4), exp->config_offset, exp->config_size);
			return -EPROTO;
		}
		out->config_size = exp->config_size;
		memcpy(out->config, p + 12, exp->config_size);
		return 0;
	default:
		out->u64 = get64(p);
		return 0;
	}
}
