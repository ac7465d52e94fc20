/* SPDX-License-Identifier: MIT */
/*
 * Figures: each is a set of series (libmmn first, then the baselines),
 * each series the median of several repetitions with their min and max.
 * Printed as a table and written as JSON with stable keys.
 */
#ifndef MMN_BENCH_REPORT_H
#define MMN_BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#define REPORT_MAX_SERIES	4
#define REPORT_MAX_REPS		31

enum better {
	LOWER_IS_BETTER,
	HIGHER_IS_BETTER,
	INFORMATION,		/* no ratio: context for another figure */
};

struct summary {
	double median;
	double min;
	double max;
	unsigned int reps;
};

struct series {
	const char *id;		/* stable: "libmmn", "kernel_style", ... */
	struct summary s;
	const char *note;	/* instead of a number, or beside it */
	bool measured;
};

struct figure {
	char key[64];		/* stable JSON key */
	const char *section;	/* stable JSON key of the table section */
	char label[96];
	const char *unit;
	enum better better;
	unsigned int nseries;
	struct series series[REPORT_MAX_SERIES];
	const char *measured;	/* how, when not by this program directly: "nested emulation" */
	unsigned int reruns;	/* repetitions run again: not on CPU enough */
	unsigned int disturbed;	/* kept anyway after the last attempt */
};

/* Median, min and max of N samples (N >= 1); reorders SAMPLES. */
struct summary summarise(double *samples, unsigned int n);

/* Sections in table order: id and heading. */
void report_section(const char *id, const char *heading);

/* A new figure; add series to it with report_series(). */
struct figure *report_figure(const char *section, const char *key, const char *unit,
			     enum better better, const char *label_fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Add series ID from N samples (N may be 0 with a note: not measured). */
void report_series(struct figure *f, const char *id, double *samples, unsigned int n,
		   const char *note);

const struct figure *report_find(const char *key);

/* Median of series ID of figure KEY, or NAN when not measured. */
double report_median(const char *key, const char *id);

/* How many times better series 0 is than series I (NAN if unknown). */
double report_ratio(const struct figure *f, unsigned int i);

/* A target: MEASURED compared with LIMIT; NAN means not measured. */
void report_target(const char *text, const char *key, double measured, double limit,
		   bool at_most, const char *unit);
/*
 * kvm-demo's figures: STATUS ("measured" or "not measured: why"), METHOD
 * (how they were measured, NULL when not), NESTED (under emulation).
 */
void report_kvm_demo(const char *status, const char *method, bool nested);

/* Targets missed (not counting those not measured). */
unsigned int report_targets_missed(void);

struct machine {
	long cores_online;
	long cores_usable;	/* in this process's affinity mask */
	char cpu[128];
	char kernel[256];
	char compiler[128];
	char date[32];		/* UTC, ISO 8601 */
	double load_before[3];
	double load_after[3];
	bool quick;
	bool debug_build;
	unsigned int reps;
	double seconds;
};

void report_print(FILE *out, const struct machine *m);
/* Returns 0 or -errno. */
int report_write_json(const char *path, const struct machine *m);
/* Data files for gnuplot in DIR. Returns 0 or -errno. */
int report_write_plot_data(const char *dir, const struct machine *m);

/* Display name of a series id. */
const char *series_name(const char *id);

#endif /* MMN_BENCH_REPORT_H */
