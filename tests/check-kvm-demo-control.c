/* SPDX-License-Identifier: MIT */
/* check-kvm-demo-control: kvm-demo's control command parser, no KVM needed. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

static int parse(const char *line, struct control_cmd *cmd, char *err)
{
	return control_parse(line, strlen(line), cmd, err, 256);
}

START_TEST(test_good)
{
	struct control_cmd c;
	char err[256];

	ck_assert_int_eq(parse("setmem 1024", &c, err), 0);
	ck_assert_int_eq(c.op, CTL_SETMEM);
	ck_assert_uint_eq(c.value, 1024u * 1024);
	ck_assert_int_eq(parse("  setmem\t96M  ", &c, err), 0);
	ck_assert_uint_eq(c.value, 96ull << 20);
	ck_assert_int_eq(parse("setmem 1G", &c, err), 0);
	ck_assert_uint_eq(c.value, 1ull << 30);
	ck_assert_int_eq(parse("setmem 4096b", &c, err), 0);
	ck_assert_uint_eq(c.value, 4096);
	ck_assert_int_eq(parse("protect 3 on", &c, err), 0);
	ck_assert_int_eq(c.op, CTL_PROTECT);
	ck_assert_uint_eq(c.slot, 3);
	ck_assert(c.on);
	ck_assert_int_eq(parse("protect 0 off", &c, err), 0);
	ck_assert(!c.on);
	ck_assert_int_eq(parse("remap 12", &c, err), 0);
	ck_assert_int_eq(c.op, CTL_REMAP);
	ck_assert_uint_eq(c.slot, 12);
	ck_assert_int_eq(parse("attach-device <memory model='dimm'> x </memory>  ", &c, err), 0);
	ck_assert_int_eq(c.op, CTL_ATTACH_DEVICE);
	ck_assert_uint_eq(c.arg_len, strlen("<memory model='dimm'> x </memory>"));
	ck_assert(memcmp(c.arg, "<memory", 7) == 0);
	ck_assert_int_eq(parse("detach-device /tmp/d.xml", &c, err), 0);
	ck_assert_int_eq(c.op, CTL_DETACH_DEVICE);
	for (const char *const *s = (const char *const[]){ "dommemstat", "dumpxml", "stats",
							   "shutdown", NULL }; *s; s++)
		ck_assert_msg(parse(*s, &c, err) == 0, "%s: %s", *s, err);
}
END_TEST

/* Each bad line fails with a message that names the problem. */
static const struct {
	const char *line;
	const char *msg;
} bad[] = {
	{ "", "empty command" },
	{ "   \t ", "empty command" },
	{ "frobnicate", "unknown command 'frobnicate'" },
	{ "SETMEM 1", "unknown command" },
	{ "setmem", "usage: setmem" },
	{ "setmem 1 2", "usage: setmem" },
	{ "setmem lots", "'lots' is not a size" },
	{ "setmem 0", "is not a size" },
	{ "setmem -5", "is not a size" },
	{ "setmem 5X", "is not a size" },
	{ "setmem 99999999999999999999", "is not a size" },
	{ "setmem 18014398509481984G", "is not a size" },
	{ "protect 1", "usage: protect" },
	{ "protect 1 maybe", "expected on or off" },
	{ "protect x on", "not a slot number" },
	{ "protect 1 on extra", "usage: protect" },
	{ "remap", "usage: remap" },
	{ "remap 1234", "not a slot number" },
	{ "remap -1", "not a slot number" },
	{ "attach-device", "usage: attach-device" },
	{ "detach-device   ", "usage: detach-device" },
	{ "dumpxml now", "usage: dumpxml" },
	{ "stats a b c d e", "usage: stats" },
	{ "shutdown -h", "usage: shutdown" },
	{ "stats\r", "byte 0x0d" },
	{ "st\x01ts", "byte 0x01 at offset 2" },
	{ "setmem \xff", "byte 0xff" },
};

START_TEST(test_bad)
{
	struct control_cmd c;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		ck_assert_msg(parse(bad[i].line, &c, err) == -1, "'%s' was accepted", bad[i].line);
		ck_assert_msg(strstr(err, bad[i].msg), "'%s': got '%s', expected '%s'",
			      bad[i].line, err, bad[i].msg);
	}
}
END_TEST

START_TEST(test_embedded_nul_and_oversize)
{
	struct control_cmd c;
	char err[256];
	char *big = malloc(KD_CTL_MAX_LINE + 1);

	ck_assert_int_eq(control_parse("stats\0x", 7, &c, err, sizeof(err)), -1);
	ck_assert(strstr(err, "byte 0x00 at offset 5"));
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', KD_CTL_MAX_LINE);
	ck_assert_int_eq(control_parse(big, KD_CTL_MAX_LINE, &c, err, sizeof(err)), -1);
	ck_assert(strstr(err, "longer than"));
	ck_assert_int_eq(control_parse(NULL, 0, &c, err, sizeof(err)), -1);
	/* A tiny error buffer still gets a terminated (truncated) message. */
	ck_assert_int_eq(control_parse("nope", 4, &c, err, 5), -1);
	ck_assert_uint_eq(strlen(err), 4);
	free(big);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kvm-demo control");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_good);
	tcase_add_test(tc, test_bad);
	tcase_add_test(tc, test_embedded_nul_and_oversize);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
