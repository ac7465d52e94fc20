/* SPDX-License-Identifier: MIT */
/*
 * kvm-demo's figures as text. `kvm-demo --bench` prints them on stdout,
 * which under nested emulation is a serial console shared with the
 * guest's own lines; `make bench` saves that output with a line saying how
 * it was measured; mmn-bench reads it back into its table and JSON. Every
 * line of the format starts with KDFIG_PREFIX at the start of a line; all
 * other lines are ignored.
 *
 *   kvm-demo-bench: format 1
 *   kvm-demo-bench: info KEY VALUE...          context (vCPUs, slot size)
 *   kvm-demo-bench: figure KEY UNIT N V1 .. VN  N repetitions, N <= 31
 *   kvm-demo-bench: end                        the figures are complete
 *   kvm-demo-bench: method native|nested [TEXT]     added by make bench
 *   kvm-demo-bench: unavailable REASON             instead of all the above
 *
 * Pure: no KVM, no I/O beyond the FILE given, so that tests run the
 * printer and the parser against each other.
 */
#ifndef MMN_BENCH_KVM_FIGURES_H
#define MMN_BENCH_KVM_FIGURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define KDFIG_PREFIX		"kvm-demo-bench: "
#define KDFIG_FORMAT		1
#define KDFIG_MAX_VALUES	31
#define KDFIG_MAX_FIGURES	8
#define KDFIG_MAX_INFO		8

/* The figures kvm-demo --bench must deliver, in table order. */
#define KDFIG_SLOT_REMAP	"slot_remap"
#define KDFIG_QUIESCENCE	"quiescence"
#define KDFIG_DEVICE_DRAIN	"device_drain"

struct kdfig_figure {
	char key[32];
	char unit[8];
	unsigned int n;
	double v[KDFIG_MAX_VALUES];
};

struct kdfig_info {
	char key[32];
	char value[96];
};

enum kdfig_method {
	KDFIG_METHOD_UNKNOWN,	/* no method line: printed by kvm-demo alone */
	KDFIG_METHOD_NATIVE,	/* /dev/kvm on this machine */
	KDFIG_METHOD_NESTED,	/* KVM inside a guest under QEMU TCG */
};

struct kdfig_set {
	bool unavailable;
	char reason[256];		/* when unavailable */
	enum kdfig_method method;
	char method_text[128];		/* what follows the method word */
	unsigned int nfigures;
	struct kdfig_figure fig[KDFIG_MAX_FIGURES];
	unsigned int ninfo;
	struct kdfig_info info[KDFIG_MAX_INFO];
};

/* The producer's side (kvm-demo --bench). */
void kdfig_print_header(FILE *f);
void kdfig_print_info(FILE *f, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kdfig_print_figure(FILE *f, const char *key, const char *unit, const double *v,
			unsigned int n);
void kdfig_print_end(FILE *f);

/*
 * Read TEXT (NUL-terminated). Returns 0 with SET filled: either
 * SET->unavailable with its reason, or every required figure. Returns
 * -EINVAL with one line in ERR naming what is wrong otherwise (a missing
 * "end" means the run was cut short).
 */
int kdfig_parse(const char *text, struct kdfig_set *set, char *err, size_t errlen);

/* Figure KEY of SET, or NULL. */
const struct kdfig_figure *kdfig_find(const struct kdfig_set *set, const char *key);
/* Info KEY of SET, or NULL. */
const char *kdfig_info(const struct kdfig_set *set, const char *key);

#endif /* MMN_BENCH_KVM_FIGURES_H */
