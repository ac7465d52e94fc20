/* SPDX-License-Identifier: MIT */
/* The vhost-user wire format: requests as the specification lays them out, every bad reply refused. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <string.h>

#include "devices/vhost-user/proto.h"

static uint8_t buf[VU_MSG_MAX + 64];
static char err[200];
static struct vu_reply out;

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A reply: header then LEN payload bytes of PAYLOAD; returns the total length. */
static size_t reply(uint32_t request, uint32_t flags, uint32_t size, const void *payload,
		    uint32_t len)
{
	put32(buf, request);
	put32(buf + 4, flags);
	put32(buf + 8, size);
	memcpy(buf + VU_HDR_SIZE, payload, len);
	return VU_HDR_SIZE + len;
}

static const struct vu_expect ack_add = { .request = VU_ADD_MEM_REG, .ack = true };
#define RF (VU_FLAG_VERSION | VU_FLAG_REPLY)

START_TEST(encode_layout)
{
	struct vu_mem_region r = { .gpa = 0x100000000ull, .size = 0x200000, .uaddr = 0x7f0000001000,
				   .mmap_offset = 0x3000 };
	struct vu_vring_addr a = { .index = 0, .desc = 0x1111, .used = 0x2222, .avail = 0x3333 };
	uint8_t p[VU_PAYLOAD_MAX];
	uint32_t n;
	size_t len;

	n = vu_encode_mem_reg(p, &r);
	ck_assert_uint_eq(n, 40);
	len = vu_encode(buf, VU_ADD_MEM_REG, VU_FLAG_NEED_REPLY, p, n);
	ck_assert_uint_eq(len, 52);
	ck_assert_uint_eq(buf[0], 37);
	ck_assert_uint_eq(buf[4], VU_FLAG_VERSION | VU_FLAG_NEED_REPLY);
	ck_assert_uint_eq(buf[8], 40);
	for (unsigned int i = 12; i < 20; i++)
		ck_assert_uint_eq(buf[i], 0);		/* padding */
	ck_assert_uint_eq(buf[20 + 4], 1);		/* gpa 2^32, little-endian */
	ck_assert_uint_eq(buf[28 + 2], 0x20);		/* size 2 MiB */
	ck_assert_uint_eq(buf[44 + 1], 0x30);		/* mmap offset */
	n = vu_encode_addr(p, &a);
	ck_assert_uint_eq(n, 40);
	ck_assert_uint_eq(p[8], 0x11);			/* desc, used, avail, log */
	ck_assert_uint_eq(p[16], 0x22);
	ck_assert_uint_eq(p[24], 0x33);
	n = vu_encode_config(p, 0, 60);
	ck_assert_uint_eq(n, 72);
	ck_assert_uint_eq(p[4], 60);
}
END_TEST

START_TEST(good_replies)
{
	uint8_t p[VU_PAYLOAD_MAX] = { 0 };
	struct vu_expect e = { .request = VU_GET_FEATURES };
	size_t len;

	p[4] = 0x01;	/* bit 32 */
	len = reply(VU_GET_FEATURES, RF, 8, p, 8);
	ck_assert_int_eq(vu_parse_reply(buf, len, 0, &e, &out, err, sizeof(err)), 0);
	ck_assert_uint_eq(out.u64, 1ull << 32);

	memset(p, 0, 8);
	len = reply(VU_ADD_MEM_REG, RF, 8, p, 8);
	ck_assert_int_eq(vu_parse_reply(buf, len, 0, &ack_add, &out, err, sizeof(err)), 0);

	e = (struct vu_expect){ .request = VU_GET_VRING_BASE, .index = 0 };
	p[4] = 0x34;
	p[5] = 0x12;
	len = reply(VU_GET_VRING_BASE, RF | VU_FLAG_NEED_REPLY, 8, p, 8);
	ck_assert_int_eq(vu_parse_reply(buf, len, 0, &e, &out, err, sizeof(err)), 0);
	ck_assert_uint_eq(out.state.num, 0x1234);

	e = (struct vu_expect){ .request = VU_GET_CONFIG, .config_size = 8 };
	memset(p, 0, sizeof(p));
	p[4] = 8;
	p[12] = 0x80;	/* capacity 128 sectors */
	len = reply(VU_GET_CONFIG, RF, 20, p, 20);
	ck_assert_int_eq(vu_parse_reply(buf, len, 0, &e, &out, err, sizeof(err)), 0);
	ck_assert_uint_eq(out.config_size, 8);
	ck_assert_uint_eq(out.config[0], 0x80);
}
END_TEST

/* One bad reply: refused with ERRNO, and the message names NEEDLE. */
static void refused(size_t len, unsigned int nfds, const struct vu_expect *e, int errno_,
		    const char *needle)
{
	err[0] = 0;
	ck_assert_int_eq(vu_parse_reply(buf, len, nfds, e, &out, err, sizeof(err)), errno_);
	ck_assert_msg(strstr(err, needle), "error \"%s\" does not say \"%s\"", err, needle);
}

START_TEST(bad_replies)
{
	uint8_t p[VU_PAYLOAD_MAX] = { 0 };
	struct vu_expect base = { .request = VU_GET_VRING_BASE, .index = 0 };
	struct vu_expect cfg = { .request = VU_GET_CONFIG, .config_offset = 0, .config_size = 8 };
	struct vu_expect feat = { .request = VU_GET_FEATURES };
	size_t len;

	refused(5, 0, &ack_add, -EPROTO, "short reply");
	len = reply(VU_ADD_MEM_REG, VU_FLAG_VERSION, 8, p, 8);
	refused(len, 0, &ack_add, -EPROTO, "without the reply flag");
	len = reply(VU_ADD_MEM_REG, RF | 2, 8, p, 8);
	refused(len, 0, &ack_add, -EPROTO, "version");
	len = reply(VU_ADD_MEM_REG, RF | 0x100, 8, p, 8);
	refused(len, 0, &ack_add, -EPROTO, "unknown flags");
	len = reply(VU_REM_MEM_REG, RF, 8, p, 8);
	refused(len, 0, &ack_add, -EPROTO, "reply is for REM_MEM_REG");
	len = reply(99, RF, 8, p, 8);
	refused(len, 0, &ack_add, -EPROTO, "request 99");
	len = reply(VU_ADD_MEM_REG, RF, 0xffffffffu, p, 8);
	refused(len, 0, &ack_add, -EPROTO, "size field 4294967295");
	len = reply(VU_ADD_MEM_REG, RF, 4, p, 4);
	refused(len, 0, &ack_add, -EPROTO, "size field 4");
	len = reply(VU_ADD_MEM_REG, RF, 8, p, 4);
	refused(len, 0, &ack_add, -EPROTO, "carries 4 payload bytes");
	len = reply(VU_ADD_MEM_REG, RF, 8, p, 8);
	refused(len, 1, &ack_add, -EPROTO, "1 file descriptors");
	p[0] = 1;
	len = reply(VU_ADD_MEM_REG, RF, 8, p, 8);
	refused(len, 0, &ack_add, -EREMOTEIO, "failure (status 1)");
	p[0] = 1;	/* ring 1 */
	len = reply(VU_GET_VRING_BASE, RF, 8, p, 8);
	refused(len, 0, &base, -EPROTO, "ring 1");
	memset(p, 0, 8);
	p[6] = 1;	/* base 0x10000 */
	len = reply(VU_GET_VRING_BASE, RF, 8, p, 8);
	refused(len, 0, &base, -EPROTO, "16 bits");
	len = reply(VU_GET_CONFIG, RF, 0, p, 0);
	refused(len, 0, &cfg, -EREMOTEIO, "refused");
	memset(p, 0, 20);
	p[4] = 4;
	len = reply(VU_GET_CONFIG, RF, 20, p, 20);
	refused(len, 0, &cfg, -EPROTO, "config bytes");
	len = reply(VU_GET_FEATURES, RF, 0, p, 0);
	refused(len, 0, &feat, -EPROTO, "size field 0");
	cfg.config_size = VU_CONFIG_MAX + 1;
	refused(VU_HDR_SIZE, 0, &cfg, -EINVAL, "at most");
}
END_TEST

START_TEST(names)
{
	char b[24];

	ck_assert_str_eq(vu_request_name(VU_REM_MEM_REG, b, sizeof(b)), "REM_MEM_REG");
	ck_assert_str_eq(vu_request_name(4, b, sizeof(b)), "request 4");
	ck_assert_str_eq(vu_request_name(0xffffffffu, b, sizeof(b)), "request 4294967295");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vhost-user-proto");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, encode_layout);
	tcase_add_test(tc, good_replies);
	tcase_add_test(tc, bad_replies);
	tcase_add_test(tc, names);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
