/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's baselines compute what libmmn computes: the sorted array
 * finds the same overlaps as the interval tree, the rwlock cache drops the
 * same subscriptions an invalidation hits, the kernel-style build of the
 * notifier answers like libmmn, and every fault design stays coherent.
 * kvm-demo --bench's lines survive the trip from its printer to the
 * parser mmn-bench reads them with, every malformed input is refused with a
 * message naming the problem, and figures measured under nested emulation
 * say so in results.json. Checks only; 'make bench' measures.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "figures.h"
#include "kvm-figures.h"
#include "report.h"
#include "selftest.h"

#define FAULT_RUN_NS 100000000ull	/* 0.1 s per design */

START_TEST(itree_vs_sorted)
{
	const char *err = selftest_itree_vs_sorted(0x1000 + (uint64_t)_i);

	ck_assert_msg(err == NULL, "%s", err);
}
END_TEST

START_TEST(fixture_hits)
{
	const char *err = selftest_fixture_hits(0x2000 + (uint64_t)_i);

	ck_assert_msg(err == NULL, "%s", err);
}
END_TEST

START_TEST(protocol_both_read_sides)
{
	const char *err = selftest_protocol();

	ck_assert_msg(err == NULL, "%s", err);
}
END_TEST

static const char *const designs[] = { "libmmn", "kernel_style", "rwlock" };

START_TEST(fault_coherent)
{
	const char *err = selftest_fault(designs[_i], FAULT_RUN_NS);

	ck_assert_msg(err == NULL, "%s", err);
}
END_TEST

START_TEST(unknown_design_named)
{
	const char *err = selftest_fault("no-such-design", FAULT_RUN_NS);

	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "no-such-design") != NULL, "message names the design: %s", err);
}
END_TEST

/* ---- kvm-demo --bench's figures ---- */

static const double remap_v[] = { 81234.5, 90000, 0.25, 77000.125, 1e-3 };
static const double quiesce_v[] = { 40000, 41000.5, 39999.75 };
static const double drain_v[] = { 12, 0, 13.5 };

/* What kvm-demo --bench prints, amid a console's other lines. */
static char *bench_output(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	fprintf(f, "kvm-demo-bench: method nested QEMU TCG guest, -cpu max\n");
	fprintf(f, "guest: vdev: queue of 64 at 0x100000\n");
	kdfig_print_header(f);
	kdfig_print_info(f, "vcpus", "%u", 2u);
	fprintf(f, "guest: says kvm-demo-bench: figure x us 1 5 in the middle of a line\n");
	kdfig_print_info(f, "slot", "boot RAM, %d MiB", 64);
	kdfig_print_figure(f, KDFIG_SLOT_REMAP, "us", remap_v, 5);
	fprintf(f, "kvm-demo: vdev: 12 requests\r\n");
	kdfig_print_figure(f, KDFIG_QUIESCENCE, "us", quiesce_v, 3);
	kdfig_print_figure(f, KDFIG_DEVICE_DRAIN, "us", drain_v, 3);
	kdfig_print_end(f);
	fprintf(f, "kvm-demo: summary: ...\n");
	fclose(f);
	return buf;
}

static void assert_values(const struct kdfig_set *set, const char *key, const double *v,
			  unsigned int n)
{
	const struct kdfig_figure *g = kdfig_find(set, key);

	ck_assert_msg(g != NULL, "figure %s parsed", key);
	ck_assert_uint_eq(g->n, n);
	ck_assert_str_eq(g->unit, "us");
	for (unsigned int i = 0; i < n; i++)
		ck_assert_msg(g->v[i] == v[i], "%s value %u: %g, printed %g", key, i, g->v[i], v[i]);
}

START_TEST(kvm_figures_round_trip)
{
	char *text = bench_output(), err[256];
	struct kdfig_set set;

	ck_assert_int_eq(kdfig_parse(text, &set, err, sizeof(err)), 0);
	ck_assert(!set.unavailable);
	ck_assert_int_eq(set.method, KDFIG_METHOD_NESTED);
	ck_assert_str_eq(set.method_text, "QEMU TCG guest, -cpu max");
	ck_assert_uint_eq(set.nfigures, 3);
	assert_values(&set, KDFIG_SLOT_REMAP, remap_v, 5);
	assert_values(&set, KDFIG_QUIESCENCE, quiesce_v, 3);
	assert_values(&set, KDFIG_DEVICE_DRAIN, drain_v, 3);
	ck_assert_str_eq(kdfig_info(&set, "vcpus"), "2");
	ck_assert_str_eq(kdfig_info(&set, "slot"), "boot RAM, 64 MiB");
	ck_assert_ptr_null(kdfig_info(&set, "nothing"));
	free(text);
}
END_TEST

START_TEST(kvm_figures_unavailable)
{
	struct kdfig_set set;
	char err[256];

	ck_assert_int_eq(kdfig_parse("kvm-demo-bench: unavailable no qemu here\n", &set, err,
				     sizeof(err)), 0);
	ck_assert(set.unavailable);
	ck_assert_str_eq(set.reason, "no qemu here");
	ck_assert_uint_eq(set.nfigures, 0);
}
END_TEST

/* Each malformed input: refused, with a message holding the words given. */
static const struct {
	const char *text;
	const char *message;
} bad_inputs[] = {
	{ "", "not the output of kvm-demo --bench" },
	{ "guest: nothing of ours\n", "not the output of kvm-demo --bench" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure slot_remap us 2 1 2\n", "cut short" },
	{ "kvm-demo-bench: format 2\n", "reads format 1" },
	{ "kvm-demo-bench: format 1\nkvm-demo-bench: format 1\n", "second 'format'" },
	{ "kvm-demo-bench: figure slot_remap us 1 5\n", "before the 'format' line" },
	{ "kvm-demo-bench: format 1\nkvm-demo-bench: end\n"
	  "kvm-demo-bench: figure slot_remap us 1 5\n", "after the 'end' line" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure slot_remap us 3 1 2\n", "3 values announced, 2 given" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure slot_remap us 1 1 2\n", "more than the 1 values" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure slot_remap us 0\n", "count '0' is not 1 to 31" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure slot_remap us 32 1\n", "count '32' is not 1 to 31" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure slot_remap us 2 1 -3\n", "value '-3' is not a number" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure slot_remap us 2 1 nan\n", "value 'nan' is not a number" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure slot_remap us 1 1x\n", "value '1x' is not a number" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure Slot us 1 1\n", "expected a key" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure slot_remap us 1 1\n"
	  "kvm-demo-bench: figure slot_remap us 1 2\n", "'slot_remap' given twice" },
	{ "kvm-demo-bench: format 1\n"
	  "kvm-demo-bench: figure slot_remap us 1 1\n"
	  "kvm-demo-bench: figure quiescence us 1 1\n"
	  "kvm-demo-bench: end\n", "'device_drain' is missing" },
	{ "kvm-demo-bench: format 1\nkvm-demo-bench: timing 3\n", "unknown line kind 'timing'" },
	{ "kvm-demo-bench: format 1\nkvm-demo-bench: info vcpus\n", "info: expected a key" },
	{ "kvm-demo-bench: method emulated\n", "expected native or nested" },
	{ "kvm-demo-bench: unavailable \n", "no reason given" },
	{ "kvm-demo-bench: unavailable no KVM\nkvm-demo-bench: format 1\n",
	  "both figures and 'unavailable" },
};

START_TEST(kvm_figures_bad_input)
{
	struct kdfig_set set;
	char err[256];
	int ret = kdfig_parse(bad_inputs[_i].text, &set, err, sizeof(err));

	ck_assert_msg(ret == -EINVAL, "input %d accepted: %s", _i, bad_inputs[_i].text);
	ck_assert_msg(strstr(err, bad_inputs[_i].message) != NULL,
		      "input %d: message '%s' does not say '%s'", _i, err, bad_inputs[_i].message);
}
END_TEST

/* A temporary file holding TEXT; its name in PATH. */
static void temp_file(char *path, size_t len, const char *text)
{
	int fd;

	snprintf(path, len, "%s/check-bench.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static char *json_of_run(const char *kvm_demo_text)
{
	char in[256], out[256], *json = NULL;
	struct bench_config c = { .reps = 1 };
	struct machine m;
	size_t len = 0;
	FILE *f;

	memset(&m, 0, sizeof(m));
	temp_file(in, sizeof(in), kvm_demo_text);
	c.kvm_demo_path = in;
	fig_kvm_demo(&c);
	temp_file(out, sizeof(out), "");
	ck_assert_int_eq(report_write_json(out, &m), 0);
	f = fopen(out, "r");
	ck_assert_ptr_nonnull(f);
	json = calloc(1, 1 << 16);
	len = fread(json, 1, (1 << 16) - 1, f);
	ck_assert_uint_gt(len, 0);
	fclose(f);
	unlink(in);
	unlink(out);
	return json;
}

START_TEST(kvm_figures_json_nested)
{
	char *text = bench_output(), *json = json_of_run(text);

	ck_assert_msg(strstr(json, "\"status\": \"measured\""), "%s", json);
	ck_assert_msg(strstr(json, "\"nested_emulation\": true"), "%s", json);
	ck_assert_msg(strstr(json, "\"measured\": \"nested emulation\""), "%s", json);
	/* Medians of what was printed: 77000.125 of five, 40000 of three. */
	ck_assert_msg(strstr(json, "\"slot_remap_latency_us\": 77000.1"), "%s", json);
	ck_assert_msg(strstr(json, "\"invalidation_to_quiescence_us\": 40000"), "%s", json);
	ck_assert_msg(strstr(json, "\"device_drain_us\": 12"), "%s", json);
	ck_assert_msg(strstr(json, "\"kvm_demo.slot_remap\""), "%s", json);
	free(json);
	free(text);
}
END_TEST

START_TEST(kvm_figures_json_missing)
{
	char *json = json_of_run("kvm-demo-bench: unavailable no qemu-system-x86_64 here\n");

	ck_assert_msg(strstr(json, "\"status\": \"not measured: no qemu-system-x86_64 here\""),
		      "%s", json);
	ck_assert_msg(strstr(json, "\"nested_emulation\": null"), "%s", json);
	ck_assert_msg(strstr(json, "\"slot_remap_latency_us\": null"), "%s", json);
	ck_assert_msg(!strstr(json, "kvm_demo.slot_remap"), "%s", json);
	free(json);
}
END_TEST

static Suite *bench_suite(void)
{
	Suite *s = suite_create("bench");
	TCase *tc = tcase_create("baselines");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, itree_vs_sorted, 0, 3);
	tcase_add_loop_test(tc, fixture_hits, 0, 3);
	tcase_add_test(tc, protocol_both_read_sides);
	tcase_add_loop_test(tc, fault_coherent, 0, 3);
	tcase_add_test(tc, unknown_design_named);
	suite_add_tcase(s, tc);

	tc = tcase_create("kvm-demo figures");
	tcase_add_test(tc, kvm_figures_round_trip);
	tcase_add_test(tc, kvm_figures_unavailable);
	tcase_add_loop_test(tc, kvm_figures_bad_input, 0,
			    (int)(sizeof(bad_inputs) / sizeof(bad_inputs[0])));
	tcase_add_test(tc, kvm_figures_json_nested);
	tcase_add_test(tc, kvm_figures_json_missing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bench_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
