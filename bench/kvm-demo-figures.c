/* SPDX-License-Identifier: MIT */
/*
 * kvm-demo's figures. The shadow map (kvm-demo/devices/shadow.c) is plain
 * userspace code, so mmn-bench measures it here, directly, beside the
 * rwlock + sorted array cache as a baseline. Slot remap and quiescence
 * need real KVM: `kvm-demo --bench` times them (kvm-demo/control/bench.c), make
 * bench runs it through tests/nested/kvm-run, and this file reads its
 * lines (bench/kvm-figures.h) into the table, saying how they were taken.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <mmn/mmn.h>

#include "bench.h"
#include "figures.h"
#include "kvm-figures.h"
#include "report.h"
#include "rwcache.h"
#include "devices/shadow.h"

/* ------------------------------------------------------------------------
 * The shadow map against the rwlock + sorted array cache
 */

#define SH_SPACE	(1ull << 30)
#define SH_BLOCKS	(SH_SPACE / SHADOW_BLOCK)
#define SH_HIT_WORDS	4096u		/* 32 KiB of block 0, read over and over */
#define SH_MISS_OFFSET	(64u << 10)	/* each block's word: past the hit words */

struct sh_ctx {
	char *ram;			/* the "guest memory": SH_SPACE, mostly untouched */
	pthread_rwlock_t table_lock;	/* the "region table" the translation reads */
	struct mmn_state *mm;
	struct shadow_map sm;
	struct rwcache rc;
	bool baseline;
	uint64_t bad;			/* reads that returned the wrong word */
	/* Blocks in random order: a device's misses, and inserts anywhere in the array. */
	uint32_t order[SH_BLOCKS];
};

static uint64_t block_word(uint64_t b)
{
	return b * 0x9e3779b97f4a7c15ull + 1;
}

/* A translation as cheap as memory_translate(): a read lock and a sum. */
static int sh_translate(void *ctx, uint64_t gpa, uint64_t len, bool write, void **hva)
{
	struct sh_ctx *x = ctx;

	(void)write;
	if (len == 0 || gpa + len < gpa || gpa + len > SH_SPACE)
		return -EFAULT;
	pthread_rwlock_rdlock(&x->table_lock);
	*hva = x->ram + gpa;
	pthread_rwlock_unlock(&x->table_lock);
	return 0;
}

/*
 * The baseline's access: under the read lock while the translation is
 * used; a miss translates and installs under the write lock, so that no
 * invalidation (which takes it for writing) can slip in between.
 */
static uint64_t rw_read(struct sh_ctx *x, uint64_t gpa)
{
	const struct sorted_set *set = &x->rc.set;
	uint64_t v, start = gpa & ~(SHADOW_BLOCK - 1);
	void *hva;
	size_t i;

	pthread_rwlock_rdlock(&x->rc.lock);
	i = sorted_first(set, gpa, gpa + sizeof(v) - 1);
	if (i < set->n) {
		memcpy(&v, (char *)set->v[i].item + (gpa - set->v[i].start), sizeof(v));
		pthread_rwlock_unlock(&x->rc.lock);
		return v;
	}
	pthread_rwlock_unlock(&x->rc.lock);
	pthread_rwlock_wrlock(&x->rc.lock);
	i = sorted_first(set, gpa, gpa + sizeof(v) - 1);
	if (i < set->n) {
		hva = set->v[i].item;
		start = set->v[i].start;
	} else if (sh_translate(x, start, SHADOW_BLOCK, false, &hva) ||
		   sorted_insert(&x->rc.set, start, start + SHADOW_BLOCK - 1, hva)) {
		die("shadow baseline: cannot fill [%#llx, +2 MiB)", (unsigned long long)start);
	}
	memcpy(&v, (char *)hva + (gpa - start), sizeof(v));
	pthread_rwlock_unlock(&x->rc.lock);
	return v;
}

static uint64_t sh_read(struct sh_ctx *x, uint64_t gpa)
{
	uint64_t v = 0;

	if (x->baseline)
		return rw_read(x, gpa);
	if (shadow_read(&x->sm, gpa, &v, sizeof(v)))
		die("shadow map: read at %#llx failed", (unsigned long long)gpa);
	return v;
}

static void noop_drop(void *item)
{
	(void)item;
}

/* Drop every entry; returns how many were dropped. */
static uint64_t sh_invalidate_all(struct sh_ctx *x)
{
	struct mmn_invalidate_desc d = { .start = 0, .end = SH_SPACE, .event = MMN_EVENT_REMAP,
					 .flags = MMN_INVALIDATE_BLOCKABLE };
	struct shadow_stats before, after;

	if (x->baseline)
		return rwcache_invalidate(&x->rc, 0, SH_SPACE - 1, noop_drop);
	shadow_map_stats(&x->sm, &before);
	if (mmn_invalidate_start(x->mm, &d))
		die("shadow map: a blockable invalidation was refused");
	mmn_invalidate_end(x->mm, &d);
	shadow_map_stats(&x->sm, &after);
	return after.dropped - before.dropped;
}

static void sh_fill_all(struct sh_ctx *x)
{
	for (uint64_t i = 0; i < SH_BLOCKS; i++) {
		uint64_t b = x->order[i];

		x->bad += sh_read(x, b * SHADOW_BLOCK + SH_MISS_OFFSET) != block_word(b);
	}
}

static uint64_t run_hit(void *ctx, uint64_t ops)
{
	struct sh_ctx *x = ctx;
	uint64_t t0, ns, bad = 0;

	sh_read(x, 0);	/* the entry exists */
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++)
		bad += sh_read(x, (i % SH_HIT_WORDS) * 8) != i % SH_HIT_WORDS;
	ns = bench_now_ns() - t0;
	x->bad += bad;
	return ns;
}

/* OPS rounds: drop everything (not timed), then one miss per block. */
static uint64_t run_miss(void *ctx, uint64_t ops)
{
	struct sh_ctx *x = ctx;
	uint64_t ns = 0;

	for (uint64_t r = 0; r < ops; r++) {
		uint64_t t0;

		sh_invalidate_all(x);
		t0 = bench_now_ns();
		sh_fill_all(x);
		ns += bench_now_ns() - t0;
	}
	return ns;
}

/* OPS rounds: fill every block (not timed), then one invalidation dropping all. */
static uint64_t run_inval(void *ctx, uint64_t ops)
{
	struct sh_ctx *x = ctx;
	uint64_t ns = 0;

	for (uint64_t r = 0; r < ops; r++) {
		uint64_t t0, dropped;

		sh_fill_all(x);
		t0 = bench_now_ns();
		dropped = sh_invalidate_all(x);
		ns += bench_now_ns() - t0;
		if (dropped != SH_BLOCKS)
			die("%s: an invalidation of the whole space dropped %llu entries, not %llu",
			    x->baseline ? "shadow baseline" : "shadow map",
			    (unsigned long long)dropped, (unsigned long long)SH_BLOCKS);
	}
	return ns;
}

struct sh_measure {
	struct sh_ctx *x;
	uint64_t (*run)(void *ctx, uint64_t ops);
	uint64_t ops;
	double per_op;		/* operations per unit of OPS */
};

static double sh_once(void *arg)
{
	struct sh_measure *m = arg;

	return (double)m->run(m->x, m->ops) / ((double)m->ops * m->per_op);
}

void fig_shadow(const struct bench_config *c)
{
	static const char *const keys[] = { "shadow.hit", "shadow.miss", "shadow.invalidate" };
	static const char *const labels[] = {
		"hit: 8-byte read via an entry",
		"miss: fill a 2 MiB entry, read",
		"invalidation, per entry of 512",
	};
	uint64_t (*const runs[])(void *, uint64_t) = { run_hit, run_miss, run_inval };
	const double per_op[] = { 1, SH_BLOCKS, SH_BLOCKS };
	static double samples[3][2][REPORT_MAX_REPS];
	struct sh_ctx *x = calloc(1, sizeof(*x));
	struct sh_measure m[3][2];
	uint64_t seed = c->seed ^ 0x5ead;

	if (!x)
		die("out of memory");
	for (uint32_t i = 0; i < SH_BLOCKS; i++)
		x->order[i] = i;
	for (uint32_t i = SH_BLOCKS - 1; i > 0; i--) {
		uint32_t j = (uint32_t)bench_rand_below(&seed, i + 1), t = x->order[i];

		x->order[i] = x->order[j];
		x->order[j] = t;
	}
	fprintf(stderr, "mmn-bench: measuring the shadow map\n");
	figures_group_begin(c);
	report_section("shadow", "kvm-demo's shadow map (the device's GPA-to-HVA cache), measured"
		       " directly, ns (baseline: rwlock + sorted array, readers holding the read"
		       " lock, misses filled under the write lock)");
	x->ram = mmap(NULL, SH_SPACE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (x->ram == MAP_FAILED)
		die("cannot reserve 1 GiB of address space for the shadow map");
	/* Fault the touched pages in first: page faults are not the map's cost. */
	for (uint64_t i = 0; i < SH_HIT_WORDS; i++)
		memcpy(x->ram + i * 8, &i, sizeof(i));
	for (uint64_t b = 0; b < SH_BLOCKS; b++) {
		uint64_t w = block_word(b);

		memcpy(x->ram + b * SHADOW_BLOCK + SH_MISS_OFFSET, &w, sizeof(w));
	}
	pthread_rwlock_init(&x->table_lock, NULL);
	if (mmn_state_new(&x->mm) || shadow_map_init(&x->sm, x->mm, SH_SPACE, sh_translate, x) ||
	    rwcache_init(&x->rc, SH_BLOCKS))
		die("cannot set up the shadow map or its baseline");

	for (unsigned int k = 0; k < 3; k++) {
		for (unsigned int d = 0; d < 2; d++) {
			m[k][d] = (struct sh_measure){ .x = x, .run = runs[k], .per_op = per_op[k] };
			x->baseline = d;
			m[k][d].ops = figures_calibrate(runs[k], x, c->min_rep_ns, 1ull << 30);
		}
	}
	/* Both designs in each repetition, one after the other. */
	for (unsigned int r = 0; r < c->reps; r++)
		for (unsigned int k = 0; k < 3; k++)
			for (unsigned int d = 0; d < 2; d++) {
				x->baseline = d;
				samples[k][d][r] = figures_repeat(sh_once, &m[k][d]);
			}
	if (x->bad)
		die("shadow map or baseline: %llu reads returned the wrong word",
		    (unsigned long long)x->bad);
	for (unsigned int k = 0; k < 3; k++) {
		struct figure *f = report_figure("shadow", keys[k], "ns/op", LOWER_IS_BETTER, "%s",
						 labels[k]);

		report_series(f, "libmmn", samples[k][0], c->reps, NULL);
		report_series(f, "rwlock", samples[k][1], c->reps, NULL);
		figures_group_mark(f);
	}
	shadow_map_destroy(&x->sm);
	mmn_state_free(x->mm);
	rwcache_fini(&x->rc);
	pthread_rwlock_destroy(&x->table_lock);
	munmap(x->ram, SH_SPACE);
	free(x);
}

/* ------------------------------------------------------------------------
 * kvm-demo --bench's figures, read back
 */

/* The whole of PATH as a string, or NULL with errno set. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			char *n = realloc(buf, cap ? cap * 2 : 65536);

			if (!n) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = n;
			cap = cap ? cap * 2 : 65536;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);

		len += got;
		if (got == 0)
			break;
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

void fig_kvm_demo(const struct bench_config *c)
{
	static const struct {
		const char *key;
		const char *json_key;
		const char *label;
	} figs[] = {
		{ KDFIG_SLOT_REMAP, "kvm_demo.slot_remap", "slot remap, to vCPUs running" },
		{ KDFIG_QUIESCENCE, "kvm_demo.quiescence", "invalidation to quiescence" },
		{ KDFIG_DEVICE_DRAIN, "kvm_demo.device_drain", "of which: shadow map drained" },
	};
	static struct kdfig_set set;
	static char status[320], heading[640], method[320];
	char err[256], *text;
	bool nested;

	if (!c->kvm_demo_path) {
		report_kvm_demo("not measured: no --kvm-demo FILE (make bench runs kvm-demo "
				"--bench and passes its figures)", NULL, false);
		return;
	}
	text = slurp(c->kvm_demo_path);
	if (!text) {
		snprintf(status, sizeof(status), "not measured: cannot read %s: %s",
			 c->kvm_demo_path, strerror(errno));
		report_kvm_demo(status, NULL, false);
		return;
	}
	if (kdfig_parse(text, &set, err, sizeof(err))) {
		snprintf(status, sizeof(status), "not measured: %s: %s", c->kvm_demo_path, err);
		report_kvm_demo(status, NULL, false);
		free(text);
		return;
	}
	free(text);
	if (set.unavailable) {
		snprintf(status, sizeof(status), "not measured: %s", set.reason);
		report_kvm_demo(status, NULL, false);
		return;
	}
	nested = set.method != KDFIG_METHOD_NATIVE;
	if (set.method == KDFIG_METHOD_NESTED)
		snprintf(method, sizeof(method), "nested emulation: real KVM in a %s; slow, not "
			 "comparable with bare metal", set.method_text);
	else if (set.method == KDFIG_METHOD_NATIVE)
		snprintf(method, sizeof(method), "native: %s", set.method_text);
	else
		snprintf(method, sizeof(method), "unknown: no method line, taken as nested emulation");
	report_kvm_demo("measured", method, nested);
	snprintf(heading, sizeof(heading), "kvm-demo: %s moved to a new host address under "
		 "device traffic (%s requests), %s vCPUs, %s; measured by %s",
		 kdfig_info(&set, "slot") ? kdfig_info(&set, "slot") : "a slot",
		 kdfig_info(&set, "device_requests") ? kdfig_info(&set, "device_requests") : "?",
		 kdfig_info(&set, "vcpus") ? kdfig_info(&set, "vcpus") : "?",
		 set.nfigures ? set.fig[0].unit : "us", method);
	report_section("kvm_demo", heading);
	for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++) {
		const struct kdfig_figure *g = kdfig_find(&set, figs[i].key);
		double v[KDFIG_MAX_VALUES];
		struct figure *f;

		memcpy(v, g->v, g->n * sizeof(v[0]));
		f = report_figure("kvm_demo", figs[i].json_key, g->unit, LOWER_IS_BETTER, "%s",
				  figs[i].label);
		f->measured = nested ? "nested emulation" : "native";
		report_series(f, "libmmn", v, g->n, nested ? "NESTED EMULATION" : "native KVM");
	}
}
