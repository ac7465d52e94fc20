/* SPDX-License-Identifier: MIT */
/* The table, the JSON file and the plot data. See report.h. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define MAX_FIGURES	128
#define MAX_SECTIONS	16
/* 12 instruction counts and 21 figures today; adding one past it aborts. */
#define MAX_TARGETS	48

static struct figure figures[MAX_FIGURES];
static unsigned int nfigures;

static struct {
	const char *id;
	const char *heading;
} sections[MAX_SECTIONS];
static unsigned int nsections;

static struct {
	const char *text;
	const char *key;
	double measured;
	double limit;
	bool at_most;
	const char *unit;
} targets[MAX_TARGETS];
static unsigned int ntargets;

static struct {
	char status[320];
	char method[320];
	bool nested;
} kvm_demo = { .status = "not measured: mmn-bench ran without kvm-demo's figures" };

void report_kvm_demo(const char *status, const char *method, bool nested)
{
	snprintf(kvm_demo.status, sizeof(kvm_demo.status), "%s", status);
	snprintf(kvm_demo.method, sizeof(kvm_demo.method), "%s", method ? method : "");
	kvm_demo.nested = nested;
}

static const struct {
	const char *id;
	const char *name;
} series_names[] = {
	{ "libmmn", "libmmn" },
	{ "kernel_style", "kernel-style read side" },
	{ "rwlock", "rwlock + sorted array" },
	{ "sorted_array", "sorted array" },
	{ "itree_before", "tree before rework" },
	{ "index", "B+-tree index" },
	{ "control", "control: nothing shared" },
};

const char *series_name(const char *id)
{
	for (size_t i = 0; i < sizeof(series_names) / sizeof(series_names[0]); i++)
		if (!strcmp(series_names[i].id, id))
			return series_names[i].name;
	return id;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct summary summarise(double *samples, unsigned int n)
{
	struct summary s = { .reps = n };

	qsort(samples, n, sizeof(*samples), dbl_cmp);
	s.min = samples[0];
	s.max = samples[n - 1];
	s.median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
	return s;
}

void report_section(const char *id, const char *heading)
{
	if (nsections < MAX_SECTIONS) {
		sections[nsections].id = id;
		sections[nsections++].heading = heading;
	}
}

struct figure *report_figure(const char *section, const char *key, const char *unit,
			     enum better better, const char *label_fmt, ...)
{
	struct figure *f;
	va_list ap;

	if (nfigures == MAX_FIGURES) {
		fprintf(stderr, "mmn-bench: more than %d figures\n", MAX_FIGURES);
		exit(2);
	}
	f = &figures[nfigures++];
	memset(f, 0, sizeof(*f));
	snprintf(f->key, sizeof(f->key), "%s", key);
	f->section = section;
	f->unit = unit;
	f->better = better;
	va_start(ap, label_fmt);
	vsnprintf(f->label, sizeof(f->label), label_fmt, ap);
	va_end(ap);
	return f;
}

void report_series(struct figure *f, const char *id, double *samples, unsigned int n,
		   const char *note)
{
	struct series *s;

	if (f->nseries == REPORT_MAX_SERIES)
		return;
	s = &f->series[f->nseries++];
	s->id = id;
	s->note = note;
	s->measured = n > 0;
	if (n)
		s->s = summarise(samples, n);
}

const struct figure *report_find(const char *key)
{
	for (unsigned int i = 0; i < nfigures; i++)
		if (!strcmp(figures[i].key, key))
			return &figures[i];
	return NULL;
}

double report_median(const char *key, const char *id)
{
	const struct figure *f = report_find(key);

	if (!f)
		return NAN;
	for (unsigned int i = 0; i < f->nseries; i++)
		if (!strcmp(f->series[i].id, id) && f->series[i].measured)
			return f->series[i].s.median;
	return NAN;
}

double report_ratio(const struct figure *f, unsigned int i)
{
	double a, b;

	if (f->better == INFORMATION || i == 0 || i >= f->nseries ||
	    !f->series[0].measured || !f->series[i].measured)
		return NAN;
	a = f->series[0].s.median;
	b = f->series[i].s.median;
	if (f->better == LOWER_IS_BETTER)
		return a > 0 ? b / a : NAN;
	return b > 0 ? a / b : NAN;
}

void report_target(const char *text, const char *key, double measured, double limit,
		   bool at_most, const char *unit)
{
	if (ntargets == MAX_TARGETS) {
		/* A target dropped silently would read as never set: refuse. */
		fprintf(stderr, "mmn-bench: more than %d targets; raise MAX_TARGETS in "
			"bench/report.c (dropping \"%s\")\n", MAX_TARGETS, text);
		exit(2);
	}
	targets[ntargets].text = text;
	targets[ntargets].key = key;
	targets[ntargets].measured = measured;
	targets[ntargets].limit = limit;
	targets[ntargets].at_most = at_most;
	targets[ntargets++].unit = unit;
}

static const char *target_result(unsigned int i)
{
	if (isnan(targets[i].measured))
		return "NOT MEASURED";
	if (targets[i].at_most)
		return targets[i].measured <= targets[i].limit ? "PASS" : "MISS";
	return targets[i].measured >= targets[i].limit ? "PASS" : "MISS";
}

unsigned int report_targets_missed(void)
{
	unsigned int missed = 0;

	for (unsigned int i = 0; i < ntargets; i++)
		missed += !strcmp(target_result(i), "MISS");
	return missed;
}

/* ------------------------------------------------------------------------
 * The table
 */

/* A number in 7 columns or so: 2.41, 35.2, 412, 12.3k, 4.56M. */
static const char *fmt_num(char *buf, size_t len, double v)
{
	double a = fabs(v);

	if (isnan(v))
		snprintf(buf, len, "-");
	else if (a >= 1e9)
		snprintf(buf, len, "%.3gG", v / 1e9);
	else if (a >= 1e6)
		snprintf(buf, len, "%.3gM", v / 1e6);
	else if (a >= 1e4)
		snprintf(buf, len, "%.3gk", v / 1e3);
	else if (a >= 100 || v == 0)
		snprintf(buf, len, "%.0f", v);
	else if (a >= 10)
		snprintf(buf, len, "%.1f", v);
	else if (a >= 0.01)
		snprintf(buf, len, "%.2f", v);
	else
		snprintf(buf, len, "%.1e", v);
	return buf;
}

static void print_figure(FILE *out, const struct figure *f)
{
	char med[32], lo[32], hi[32];

	for (unsigned int i = 0; i < f->nseries; i++) {
		const struct series *s = &f->series[i];
		double r = report_ratio(f, i);

		fprintf(out, "  %-34s %-24s", i == 0 ? f->label : "", series_name(s->id));
		if (!s->measured) {
			fprintf(out, " %s\n", s->note ? s->note : "not measured");
			continue;
		}
		fprintf(out, " %8s %-10s [%s .. %s]", fmt_num(med, sizeof(med), s->s.median),
			f->unit, fmt_num(lo, sizeof(lo), s->s.min), fmt_num(hi, sizeof(hi), s->s.max));
		if (!isnan(r))
			fprintf(out, "  libmmn %.2fx %s", r >= 1 ? r : 1 / r,
				r >= 1 ? "better" : "worse");
		if (s->note)
			fprintf(out, "  (%s)", s->note);
		fputc('\n', out);
	}
	if (f->reruns || f->disturbed)
		fprintf(out, "  %-34s (%u repetitions rerun for lack of CPU, %u kept disturbed)\n",
			"", f->reruns, f->disturbed);
}

void report_print(FILE *out, const struct machine *m)
{
	char a[32];

	fprintf(out, "\nlibmmn benchmark, %s UTC\n", m->date);
	fprintf(out, "machine: %ld cores online, %ld usable by this process; %s; %s\n",
		m->cores_online, m->cores_usable, m->cpu, m->kernel);
	fprintf(out, "load average: %.2f %.2f %.2f before, %.2f %.2f %.2f after\n",
		m->load_before[0], m->load_before[1], m->load_before[2],
		m->load_after[0], m->load_after[1], m->load_after[2]);
	fprintf(out, "build: %s, %s; %s; %u repetitions per figure, median [min .. max]\n",
		m->debug_build ? "DEBUG (run-time checks on: figures are not representative)"
			       : "release", m->compiler, m->quick ? "quick mode" : "full run",
		m->reps);

	for (unsigned int s = 0; s < nsections; s++) {
		fprintf(out, "\n== %s\n", sections[s].heading);
		for (unsigned int i = 0; i < nfigures; i++)
			if (!strcmp(figures[i].section, sections[s].id))
				print_figure(out, &figures[i]);
	}

	if (strcmp(kvm_demo.status, "measured"))
		fprintf(out, "\n== kvm-demo on real KVM\n  %-34s %s\n",
			"slot remap, quiescence, drain", kvm_demo.status);

	fprintf(out, "\n== Targets\n");
	for (unsigned int i = 0; i < ntargets; i++)
		fprintf(out, "  %-58s %8s %-3s  %s\n", targets[i].text,
			fmt_num(a, sizeof(a), targets[i].measured), targets[i].unit,
			target_result(i));
	fprintf(out, "\nrun took %.0f s\n", m->seconds);
}

/* ------------------------------------------------------------------------
 * JSON
 */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

int report_write_json(const char *path, const struct machine *m)
{
	static const char *const better_names[] = { "lower", "higher", "information" };
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "{\n  \"format\": \"libmmn-bench 1\",\n");
	fprintf(f, "  \"date\": ");
	json_str(f, m->date);
	fprintf(f, ",\n  \"machine\": {\n    \"cores_online\": %ld,\n    \"cores_usable\": %ld,\n",
		m->cores_online, m->cores_usable);
	fprintf(f, "    \"cpu\": ");
	json_str(f, m->cpu);
	fprintf(f, ",\n    \"kernel\": ");
	json_str(f, m->kernel);
	fprintf(f, ",\n    \"load_before\": [%.2f, %.2f, %.2f],\n",
		m->load_before[0], m->load_before[1], m->load_before[2]);
	fprintf(f, "    \"load_after\": [%.2f, %.2f, %.2f]\n  },\n",
		m->load_after[0], m->load_after[1], m->load_after[2]);
	fprintf(f, "  \"build\": {\n    \"compiler\": ");
	json_str(f, m->compiler);
	fprintf(f, ",\n    \"debug\": %s\n  },\n", m->debug_build ? "true" : "false");
	fprintf(f, "  \"run\": {\n    \"quick\": %s,\n    \"reps\": %u,\n    \"seconds\": %.1f\n  },\n",
		m->quick ? "true" : "false", m->reps, m->seconds);

	fprintf(f, "  \"figures\": {");
	for (unsigned int i = 0; i < nfigures; i++) {
		const struct figure *g = &figures[i];
		bool any_ratio = false;

		fprintf(f, "%s\n    ", i ? "," : "");
		json_str(f, g->key);
		fprintf(f, ": {\n      \"section\": ");
		json_str(f, g->section);
		fprintf(f, ",\n      \"label\": ");
		json_str(f, g->label);
		fprintf(f, ",\n      \"unit\": ");
		json_str(f, g->unit);
		fprintf(f, ",\n      \"better\": \"%s\",\n", better_names[g->better]);
		if (g->measured) {
			fprintf(f, "      \"measured\": ");
			json_str(f, g->measured);
			fprintf(f, ",\n");
		}
		fprintf(f, "      \"reps_rerun\": %u,\n      \"reps_disturbed\": %u,\n",
			g->reruns, g->disturbed);
		fprintf(f, "      \"series\": {");
		for (unsigned int s = 0; s < g->nseries; s++) {
			const struct series *se = &g->series[s];

			fprintf(f, "%s\n        ", s ? "," : "");
			json_str(f, se->id);
			if (se->measured)
				fprintf(f, ": {\"median\": %.6g, \"min\": %.6g, \"max\": %.6g, \"reps\": %u",
					se->s.median, se->s.min, se->s.max, se->s.reps);
			else
				fprintf(f, ": {\"median\": null");
			if (se->note) {
				fprintf(f, ", \"note\": ");
				json_str(f, se->note);
			}
			fputc('}', f);
		}
		fprintf(f, "\n      },\n      \"libmmn_times_better_than\": {");
		for (unsigned int s = 1; s < g->nseries; s++) {
			if (g->better == INFORMATION)
				break;
			fprintf(f, "%s\n        ", any_ratio ? "," : "");
			json_str(f, g->series[s].id);
			fputs(": ", f);
			json_num(f, report_ratio(g, s));
			any_ratio = true;
		}
		fprintf(f, "%s}\n    }", any_ratio ? "\n      " : "");
	}
	fprintf(f, "\n  },\n");

	/*
	 * A summary of kvm-demo's figures, medians: those timed in kvm-demo
	 * under the method given, and the shadow map's, which mmn-bench
	 * measures itself (no KVM needed). The full series are in figures.
	 */
	bool kvm_measured = !strcmp(kvm_demo.status, "measured");

	fprintf(f, "  \"kvm_demo\": {\n    \"status\": ");
	json_str(f, kvm_demo.status);
	fprintf(f, ",\n    \"method\": ");
	if (kvm_measured)
		json_str(f, kvm_demo.method);
	else
		fputs("null", f);
	fprintf(f, ",\n    \"nested_emulation\": %s", !kvm_measured ? "null"
		: kvm_demo.nested ? "true" : "false");
	fprintf(f, ",\n    \"slot_remap_latency_us\": ");
	json_num(f, report_median("kvm_demo.slot_remap", "libmmn"));
	fprintf(f, ",\n    \"invalidation_to_quiescence_us\": ");
	json_num(f, report_median("kvm_demo.quiescence", "libmmn"));
	fprintf(f, ",\n    \"device_drain_us\": ");
	json_num(f, report_median("kvm_demo.device_drain", "libmmn"));
	fprintf(f, ",\n    \"shadow_map_hit_ns\": ");
	json_num(f, report_median("shadow.hit", "libmmn"));
	fprintf(f, ",\n    \"shadow_map_miss_ns\": ");
	json_num(f, report_median("shadow.miss", "libmmn"));
	fprintf(f, ",\n    \"shadow_map_measured\": \"directly, by mmn-bench (no KVM needed)\"\n  },\n");

	fprintf(f, "  \"targets\": [");
	for (unsigned int i = 0; i < ntargets; i++) {
		fprintf(f, "%s\n    {\"target\": ", i ? "," : "");
		json_str(f, targets[i].text);
		fprintf(f, ", \"figure\": ");
		json_str(f, targets[i].key);
		fprintf(f, ", \"limit\": ");
		json_num(f, targets[i].limit);
		fprintf(f, ", \"at_most\": %s, \"measured\": ", targets[i].at_most ? "true" : "false");
		json_num(f, targets[i].measured);
		fprintf(f, ", \"unit\": ");
		json_str(f, targets[i].unit);
		fprintf(f, ", \"result\": \"%s\"}", target_result(i));
	}
	fprintf(f, "\n  ]\n}\n");
	if (fclose(f))
		return -errno;
	return 0;
}

/* ------------------------------------------------------------------------
 * Plot data: one file per plot, columns median min max per series.
 */

static void dat_series(FILE *f, const char *key, const char *id)
{
	const struct figure *g = report_find(key);

	for (unsigned int i = 0; g && i < g->nseries; i++) {
		if (strcmp(g->series[i].id, id) || !g->series[i].measured)
			continue;
		fprintf(f, " %.6g %.6g %.6g", g->series[i].s.median, g->series[i].s.min,
			g->series[i].s.max);
		return;
	}
	fprintf(f, " NaN NaN NaN");
}

static FILE *dat_open(const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return fopen(path, "w");
}

int report_write_plot_data(const char *dir, const struct machine *m)
{
	static const char *const designs[] = { "libmmn", "kernel_style", "rwlock" };
	static const unsigned int exps[] = { 3, 4, 5, 6 };
	static const unsigned int rates[] = { 0, 1000, 10000, 100000 };
	char key[64];
	FILE *f;

	f = dat_open(dir, "plot-machine.txt");
	if (!f)
		return -errno;
	fprintf(f, "%ld cores (%s), load %.2f, %s%s\n", m->cores_online, m->cpu,
		m->load_before[0], m->date, m->quick ? ", quick mode" : "");
	fclose(f);

	f = dat_open(dir, "plot-itree.dat");
	if (!f)
		return -errno;
	fprintf(f, "# n, then median min max of: tree insert, tree remove, tree query,"
		   " sorted insert, sorted remove, sorted query (ns/op)\n");
	for (unsigned int e = 0; e < 4; e++) {
		static const char *const ops[] = { "insert", "remove", "query" };

		snprintf(key, sizeof(key), "itree.insert.n1e%u", exps[e]);
		if (!report_find(key))
			continue;
		fprintf(f, "1e%u", exps[e]);
		for (unsigned int d = 0; d < 2; d++)
			for (unsigned int o = 0; o < 3; o++) {
				snprintf(key, sizeof(key), "itree.%s.n1e%u", ops[o], exps[e]);
				dat_series(f, key, d ? "sorted_array" : "libmmn");
			}
		fputc('\n', f);
	}
	fclose(f);

	f = dat_open(dir, "plot-readside.dat");
	if (!f)
		return -errno;
	fprintf(f, "# design, then median min max of: ns/op 1 thread, ns/op 2 threads,"
		   " throughput 2 threads / 1 thread\n");
	for (unsigned int d = 0; d < 3; d++) {
		static const char *const short_names[] = { "libmmn", "kernel-style", "rwlock" };

		fprintf(f, "\"%s\"", short_names[d]);
		dat_series(f, "readside.threads1", designs[d]);
		dat_series(f, "readside.threads2", designs[d]);
		dat_series(f, "readside.scaling", designs[d]);
		fputc('\n', f);
	}
	/* The control only has a scaling figure. */
	fprintf(f, "\"no sharing\" NaN NaN NaN NaN NaN NaN");
	dat_series(f, "readside.scaling_control", "control");
	fputc('\n', f);
	fclose(f);

	f = dat_open(dir, "plot-fault.dat");
	if (!f)
		return -errno;
	fprintf(f, "# invalidations/s asked, then median min max faults/s of:"
		   " libmmn, kernel-style, rwlock\n");
	for (unsigned int r = 0; r < 4; r++) {
		snprintf(key, sizeof(key), "fault.rate%u.faults_per_s", rates[r]);
		if (!report_find(key))
			continue;
		fprintf(f, "%u", rates[r]);
		for (unsigned int d = 0; d < 3; d++)
			dat_series(f, key, designs[d]);
		fputc('\n', f);
	}
	fclose(f);
	return 0;
}
