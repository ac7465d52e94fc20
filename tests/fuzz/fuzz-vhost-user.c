/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the vhost-user reply parser, vu_parse_reply(), on bytes a
 * backend could send. The first input byte picks what was asked (an ack,
 * GET_FEATURES, GET_VRING_BASE of a ring, GET_CONFIG of some bytes), the
 * second how many descriptors came along; the rest is the reply.
 *
 * Properties:
 *  - only 0, -EPROTO or -EREMOTEIO come back, and a refusal says why;
 *  - a reply is accepted only when its header says version 1, reply, the
 *    request asked, and a size equal to the bytes that follow and to what
 *    that request's reply holds, with no descriptors;
 *  - the header check alone agrees with the whole check;
 *  - nothing is read past the reply (it is allocated to size: ASan), and
 *    accepted config bytes are the reply's.
 */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "devices/vhost-user/proto.h"

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { .data = data, .size = size };
	uint8_t pick = fuzz_u8(&in), nfds = fuzz_u8(&in) % 3;
	struct vu_expect exp = { 0 };
	struct vu_reply out;
	char err[200] = "", herr[200] = "";
	size_t len = size - in.pos;
	uint8_t *buf;
	int r, h;

	switch (pick % 4) {
	case 0:
		exp = (struct vu_expect){ .request = VU_ADD_MEM_REG + (pick >> 7), .ack = true };
		break;
	case 1:
		exp = (struct vu_expect){ .request = VU_GET_FEATURES };
		break;
	case 2:
		exp = (struct vu_expect){ .request = VU_GET_VRING_BASE, .index = (pick >> 2) & 1 };
		break;
	default:
		exp = (struct vu_expect){ .request = VU_GET_CONFIG, .config_offset = (pick >> 6) & 1,
					  .config_size = (pick >> 2) & 15 };
		break;
	}
	if (size < 2)
		return 0;
	buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + in.pos, len);
	r = vu_parse_reply(buf, len, nfds, &exp, &out, err, sizeof(err));
	FUZZ_ASSERT(r == 0 || r == -EPROTO || r == -EREMOTEIO, "returned %d", r);
	FUZZ_ASSERT(r == 0 || err[0], "refused (%d) without saying why", r);
	if (len >= VU_HDR_SIZE) {
		h = vu_parse_header(buf, &exp, herr, sizeof(herr));
		FUZZ_ASSERT(h >= 0 || r == h, "header check %d, whole check %d", h, r);
		FUZZ_ASSERT(h < 0 || r != 0 || (size_t)h == len - VU_HDR_SIZE,
			    "accepted %zu payload bytes, header says %d", len - VU_HDR_SIZE, h);
	}
	if (r == 0) {
		uint32_t flags = get32(buf + 4);

		FUZZ_ASSERT(len >= VU_HDR_SIZE && get32(buf) == exp.request, "wrong request accepted");
		FUZZ_ASSERT((flags & 3) == 1 && (flags & VU_FLAG_REPLY), "flags %#x accepted", flags);
		FUZZ_ASSERT(get32(buf + 8) == len - VU_HDR_SIZE, "size field disagrees with length");
		FUZZ_ASSERT(nfds == 0, "reply with %u descriptors accepted", nfds);
		FUZZ_ASSERT(out.request == exp.request && out.size == len - VU_HDR_SIZE,
			    "reply summary wrong");
		if (exp.request == VU_GET_CONFIG) {
			FUZZ_ASSERT(out.config_size == exp.config_size && len == VU_HDR_SIZE + 12 +
				    exp.config_size, "config of %u bytes accepted", out.config_size);
			FUZZ_ASSERT(!memcmp(out.config, buf + VU_HDR_SIZE + 12, exp.config_size),
				    "config bytes not the reply's");
		} else {
			FUZZ_ASSERT(len == VU_HDR_SIZE + 8, "reply of %zu bytes accepted", len);
		}
		if (exp.request == VU_GET_VRING_BASE)
			FUZZ_ASSERT(out.state.index == exp.index && out.state.num <= 0xffff,
				    "ring %u base %u accepted", out.state.index, out.state.num);
		if (exp.ack)
			FUZZ_ASSERT(out.u64 == 0, "failed ack accepted");
	}
	free(buf);
	return 0;
}
