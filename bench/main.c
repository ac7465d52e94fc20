/* SPDX-License-Identifier: MIT */
/*
 * mmn-bench: libmmn's figures beside the designs a VMM author would
 * otherwise use, measured in one run on one workload. Prints a table and
 * writes the same figures as JSON. See docs/performance.md.
 *
 * Usage: mmn-bench [--quick] [--selftest] [--reps N] [--only GROUP,...]
 *                  [--json PATH] [--plot-dir DIR] [--kvm-demo FILE] [--ir FILE]
 */
#define _GNU_SOURCE	/* sched_getaffinity, CPU_COUNT */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <mmn/mmn.h>

#include "bench.h"
#include "figures.h"
#include "report.h"
#include "selftest.h"

static const struct {
	const char *name;
	void (*run)(const struct bench_config *c);
} groups[] = {
	/* The threaded groups first: they need both cores free the most. */
	{ "readside", fig_readside },
	{ "fault", fig_fault },
	{ "invalidate", fig_invalidate },
	{ "insert_remove", fig_insert_remove },
	{ "bytes", fig_bytes },
	{ "itree", fig_itree },
	{ "shadow", fig_shadow },
	{ "vhost_user", fig_vhost_user },
	/* Read from kvm-demo --bench's output: measured before mmn-bench ran. */
	{ "kvm_demo", fig_kvm_demo },
};
#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mmn-bench [--quick] [--selftest] [--reps N] [--only GROUP,...]\n"
		"                 [--json PATH] [--plot-dir DIR] [--kvm-demo FILE]\n"
		"  --quick      fewer repetitions and sizes: a smoke run, not figures\n"
		"  --selftest   only check that the baselines agree with libmmn\n"
		"  --reps N     repetitions per figure (default 7, quick 3; at most %d)\n"
		"  --only LIST  groups to measure: readside,fault,invalidate,insert_remove,\n"
		"               bytes,itree,shadow,vhost_user,kvm_demo (default all)\n"
		"  --json PATH  where to write the figures (default results.json)\n"
		"  --plot-dir DIR  also write gnuplot data files there\n"
		"  --kvm-demo FILE  kvm-demo --bench's figures, saved by make bench\n"
		"  --ir FILE    make bench-ir's instruction counts, for their targets\n",
		REPORT_MAX_REPS);
}

static void read_loadavg(double load[3])
{
	FILE *f = fopen("/proc/loadavg", "r");

	load[0] = load[1] = load[2] = NAN;
	if (f) {
		if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
			load[0] = load[1] = load[2] = NAN;
		fclose(f);
	}
}

static void read_cpu_model(char *buf, size_t len)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(buf, len, "unknown CPU");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 2;
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(buf, len, "%s", colon);
		break;
	}
	fclose(f);
}

static void machine_init(struct machine *m, const struct bench_config *c)
{
	struct utsname u;
	cpu_set_t set;
	time_t now = time(NULL);

	memset(m, 0, sizeof(*m));
	m->cores_online = sysconf(_SC_NPROCESSORS_ONLN);
	m->cores_usable = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
									: m->cores_online;
	read_cpu_model(m->cpu, sizeof(m->cpu));
	if (uname(&u) == 0)
		snprintf(m->kernel, sizeof(m->kernel), "%s %s %s", u.sysname, u.release, u.machine);
#if defined(__clang__)
	snprintf(m->compiler, sizeof(m->compiler), "clang %s", __clang_version__);
#elif defined(__GNUC__)
	snprintf(m->compiler, sizeof(m->compiler), "gcc %s", __VERSION__);
#else
	snprintf(m->compiler, sizeof(m->compiler), "unknown compiler");
#endif
	strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	read_loadavg(m->load_before);
	m->quick = c->quick;
	m->reps = c->reps;
#ifdef MMN_DEBUG
	m->debug_build = true;
#endif
}

static int run_selftests(bool quick)
{
	const uint64_t fault_ns = quick ? 50000000ull : 200000000ull;
	const char *designs[] = { "libmmn", "kernel_style", "rwlock" };
	const char *err;
	int failed = 0;

#define CHECK(what, call)							\
	do {									\
		err = (call);							\
		fprintf(stderr, "mmn-bench: selftest %-28s %s%s\n", what,	\
			err ? "FAILED: " : "ok", err ? err : "");		\
		failed += err != NULL;						\
	} while (0)

	CHECK("interval tree vs sorted array", selftest_itree_vs_sorted(1));
	CHECK("invalidation hits", selftest_fixture_hits(2));
	CHECK("protocol, both read sides", selftest_protocol());
	for (unsigned int d = 0; d < 3; d++) {
		char what[64];

		snprintf(what, sizeof(what), "fault pattern, %s", designs[d]);
		CHECK(what, selftest_fault(designs[d], fault_ns));
	}
#undef CHECK
	return failed;
}

static bool group_wanted(const char *only, const char *name)
{
	size_t len = strlen(name);

	if (!only)
		return true;
	for (const char *p = only; (p = strstr(p, name)); p += len)
		if ((p == only || p[-1] == ',') && (p[len] == '\0' || p[len] == ','))
			return true;
	return false;
}

/*
 * The instruction counts of make bench-ir (bench/ir.txt: "DESIGN N OP
 * INSTRUCTIONS" a line): libmmn's tree at most the kernel design's.
 */
static void add_ir_targets(const char *path)
{
	static const struct {
		const char *op;
		double kernel[4];	/* n = 10^3 .. 10^6 */
	} ref[] = {
		{ "insert", { 150, 183, 217, 251 } },
		{ "query", { 120, 154, 189, 227 } },
		{ "remove", { 101, 103, 103, 103 } },
	};
	static char text[12][96], key[12][48];
	double v[3][4];
	char design[32], op[16];
	unsigned long n;
	double ir;
	FILE *f = path ? fopen(path, "r") : NULL;

	for (unsigned int o = 0; o < 3; o++)
		for (unsigned int e = 0; e < 4; e++)
			v[o][e] = NAN;
	while (f && fscanf(f, "%31s %lu %15s %lf", design, &n, op, &ir) == 4) {
		unsigned int e = n == 1000 ? 0 : n == 10000 ? 1 : n == 100000 ? 2 :
				 n == 1000000 ? 3 : 4;

		for (unsigned int o = 0; o < 3 && e < 4; o++)
			if (!strcmp(design, "libmmn") && !strcmp(op, ref[o].op))
				v[o][e] = ir;
	}
	if (f)
		fclose(f);
	for (unsigned int o = 0; o < 3; o++)
		for (unsigned int e = 0; e < 4; e++) {
			unsigned int k = o * 4 + e;

			snprintf(text[k], sizeof(text[k]),
				 "tree %s n=10^%u: at most %.0f instructions (kernel design)",
				 ref[o].op, e + 3, ref[o].kernel[e]);
			snprintf(key[k], sizeof(key[k]), "itree_ir.%s.n1e%u", ref[o].op, e + 3);
			report_target(text[k], key[k], v[o][e], ref[o].kernel[e], true, "ins");
		}
}

static void add_targets(void)
{
	static const struct {
		const char *key, *text;
	} inval_keys[] = {
		{ "invalidate.hit0", "invalidation hitting 0 of 10^5: at least 1x rwlock" },
		{ "invalidate.hit1", "invalidation hitting 1 of 10^5: at least 1x rwlock" },
		{ "invalidate.hit64", "invalidation hitting 64 of 10^5: at least 1x rwlock" },
		{ "invalidate.hit0.n100", "invalidation hitting 0 of 100: at least 1x rwlock" },
	};

	report_target("read_begin + read_retry, 1 thread: at most 5 ns",
		      "readside.threads1", report_median("readside.threads1", "libmmn"), 5,
		      true, "ns");
	report_target("read side, 2 threads: at least 1.8x 1 thread", "readside.scaling",
		      report_median("readside.scaling", "libmmn"), 1.8, false, "x");
	report_target("invalidation hitting none of 10^5: at most 150 ns", "invalidate.hit0",
		      report_median("invalidate.hit0", "libmmn"), 150, true, "ns");
	for (unsigned int i = 0; i < sizeof(inval_keys) / sizeof(inval_keys[0]); i++)
		report_target(inval_keys[i].text, inval_keys[i].key,
			      report_median(inval_keys[i].key, "rwlock") /
			      report_median(inval_keys[i].key, "libmmn"), 1, false, "x");
	report_target("interval tree n=10^6, query: at most 1 us", "itree.query.n1e6",
		      report_median("itree.query.n1e6", "libmmn"), 1000, true, "ns");
	report_target("interval tree n=10^6, insert: at most 400 ns", "itree.insert.n1e6",
		      report_median("itree.insert.n1e6", "libmmn"), 400, true, "ns");
	report_target("interval tree n=10^6, remove: at most 400 ns", "itree.remove.n1e6",
		      report_median("itree.remove.n1e6", "libmmn"), 400, true, "ns");
	report_target("interval index n=10^6, query: at least 2x the tree before",
		      "itree.query.n1e6", report_median("itree.query.n1e6", "itree_before") /
		      report_median("itree.query.n1e6", "index"), 2, false, "x");
	report_target("interval index n=10^6, insert: at least 2x the tree before",
		      "itree.insert.n1e6", report_median("itree.insert.n1e6", "itree_before") /
		      report_median("itree.insert.n1e6", "index"), 2, false, "x");
	report_target("bytes per range subscription: at most 64", "range_sub.bytes",
		      report_median("range_sub.bytes", "libmmn"), 64, true, "B");
	report_target("faults/s at 1000 inval/s: at least 3x rwlock", "fault.rate1000.faults_per_s",
		      report_median("fault.rate1000.faults_per_s", "libmmn") /
		      report_median("fault.rate1000.faults_per_s", "rwlock"), 3, false, "x");
	report_target("faults/s at 10000 inval/s: at least 3x rwlock",
		      "fault.rate10000.faults_per_s",
		      report_median("fault.rate10000.faults_per_s", "libmmn") /
		      report_median("fault.rate10000.faults_per_s", "rwlock"), 3, false, "x");
	report_target("faults/s at 100000 inval/s: at least 3x rwlock",
		      "fault.rate100000.faults_per_s",
		      report_median("fault.rate100000.faults_per_s", "libmmn") /
		      report_median("fault.rate100000.faults_per_s", "rwlock"), 3, false, "x");
	/* The shadow map: times faster than the rwlock + sorted array cache. */
	report_target("shadow map hit: at least 2x rwlock", "shadow.hit",
		      report_median("shadow.hit", "rwlock") / report_median("shadow.hit", "libmmn"),
		      2, false, "x");
	report_target("shadow map miss: at least 1x rwlock", "shadow.miss",
		      report_median("shadow.miss", "rwlock") / report_median("shadow.miss", "libmmn"),
		      1, false, "x");
	report_target("shadow map invalidation per entry: at least 1x rwlock",
		      "shadow.invalidate",
		      report_median("shadow.invalidate", "rwlock") /
		      report_median("shadow.invalidate", "libmmn"), 1, false, "x");
}

int main(int argc, char **argv)
{
	struct bench_config c = { .seed = 0x6d6d6e };
	const char *json = "results.json", *plot_dir = NULL, *only = NULL, *ir_path = NULL;
	bool selftest_only = false;
	unsigned int reps = 0;
	struct machine m;
	uint64_t t0;
	int err;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--quick")) {
			c.quick = true;
		} else if (!strcmp(a, "--selftest")) {
			selftest_only = true;
		} else if (!strcmp(a, "--reps") && i + 1 < argc) {
			char *end;
			unsigned long v = strtoul(argv[++i], &end, 10);

			if (*end || v < 1 || v > REPORT_MAX_REPS) {
				fprintf(stderr, "mmn-bench: --reps: expected 1 to %d, got '%s'\n",
					REPORT_MAX_REPS, argv[i]);
				return 2;
			}
			reps = (unsigned int)v;
		} else if (!strcmp(a, "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(a, "--json") && i + 1 < argc) {
			json = argv[++i];
		} else if (!strcmp(a, "--kvm-demo") && i + 1 < argc) {
			c.kvm_demo_path = argv[++i];
		} else if (!strcmp(a, "--ir") && i + 1 < argc) {
			ir_path = argv[++i];
		} else if (!strcmp(a, "--plot-dir") && i + 1 < argc) {
			plot_dir = argv[++i];
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "mmn-bench: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (only) {
		/* Every name in the list must be a group. */
		char *copy = strdup(only), *save = NULL;

		for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			bool known = false;

			for (size_t g = 0; g < NGROUPS; g++)
				known |= !strcmp(tok, groups[g].name);
			if (!known) {
				fprintf(stderr, "mmn-bench: --only: unknown group '%s'\n", tok);
				free(copy);
				return 2;
			}
		}
		free(copy);
	}

	c.reps = reps ? reps : c.quick ? 3 : 7;
	c.min_rep_ns = c.quick ? 2000000ull : 20000000ull;
	c.fault_run_ns = c.quick ? 50000000ull : 100000000ull;
	c.itree_max_exp = c.quick ? 4 : 6;

	t0 = bench_now_ns();
	machine_init(&m, &c);
	c.cores = m.cores_usable;
	fprintf(stderr, "mmn-bench: libmmn %s, %ld cores online, %ld usable%s\n", mmn_version(),
		m.cores_online, m.cores_usable,
		m.debug_build ? "; DEBUG build: figures include run-time checks" : "");

	/* Baselines that compute something else would prove nothing. */
	if (run_selftests(c.quick)) {
		fprintf(stderr, "mmn-bench: selftest failed: no figures\n");
		return 1;
	}
	if (selftest_only)
		return 0;

	for (size_t g = 0; g < NGROUPS; g++)
		if (group_wanted(only, groups[g].name))
			groups[g].run(&c);
	if (!group_wanted(only, "kvm_demo"))
		report_kvm_demo("not measured: not asked for (--only)", NULL, false);
	add_targets();
	add_ir_targets(ir_path);

	read_loadavg(m.load_after);
	m.seconds = (double)(bench_now_ns() - t0) / 1e9;
	report_print(stdout, &m);
	err = report_write_json(json, &m);
	if (err) {
		fprintf(stderr, "mmn-bench: %s: %s\n", json, strerror(-err));
		return 2;
	}
	printf("figures written to %s\n", json);
	if (plot_dir) {
		err = report_write_plot_data(plot_dir, &m);
		if (err) {
			fprintf(stderr, "mmn-bench: %s: %s\n", plot_dir, strerror(-err));
			return 2;
		}
		printf("plot data written to %s/plot-*.dat\n", plot_dir);
	}
	/* Missed targets are reported, not failures: the run itself worked. */
	return 0;
}
