/* SPDX-License-Identifier: MIT */
/* kvm-demo's figures as text; see kvm-figures.h. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "kvm-figures.h"

static const char *const required[] = { KDFIG_SLOT_REMAP, KDFIG_QUIESCENCE, KDFIG_DEVICE_DRAIN };

void kdfig_print_header(FILE *f)
{
	fprintf(f, KDFIG_PREFIX "format %d\n", KDFIG_FORMAT);
}

void kdfig_print_info(FILE *f, const char *key, const char *fmt, ...)
{
	va_list ap;

	fprintf(f, KDFIG_PREFIX "info %s ", key);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

void kdfig_print_figure(FILE *f, const char *key, const char *unit, const double *v,
			unsigned int n)
{
	/* One write per line: the console is shared with other threads. */
	char line[64 + KDFIG_MAX_VALUES * 24];
	size_t len;

	len = (size_t)snprintf(line, sizeof(line), KDFIG_PREFIX "figure %s %s %u", key, unit, n);
	for (unsigned int i = 0; i < n && len < sizeof(line); i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %.9g", v[i]);
	fprintf(f, "%s\n", line);
}

void kdfig_print_end(FILE *f)
{
	fprintf(f, KDFIG_PREFIX "end\n");
}

const struct kdfig_figure *kdfig_find(const struct kdfig_set *set, const char *key)
{
	for (unsigned int i = 0; i < set->nfigures; i++)
		if (!strcmp(set->fig[i].key, key))
			return &set->fig[i];
	return NULL;
}

const char *kdfig_info(const struct kdfig_set *set, const char *key)
{
	for (unsigned int i = 0; i < set->ninfo; i++)
		if (!strcmp(set->info[i].key, key))
			return set->info[i].value;
	return NULL;
}

/* The next word of *P (space-separated) into BUF; false if none or too long. */
static bool word(const char **p, char *buf, size_t len)
{
	const char *s = *p;
	size_t n;

	while (*s == ' ')
		s++;
	n = strcspn(s, " ");
	if (n == 0 || n >= len)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*p = s + n;
	return true;
}

static bool is_key(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static const char *rest(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, unsigned int lineno, const char *fmt, ...)
{
	va_list ap;
	int n = lineno ? snprintf(err, errlen, "line %u: ", lineno) : 0;

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_figure(const char *p, struct kdfig_set *set, char *err, size_t errlen,
			unsigned int ln)
{
	struct kdfig_figure *fg;
	char key[32], unit[8], count[16], *end;
	unsigned long n;

	if (!word(&p, key, sizeof(key)) || !is_key(key))
		return fail(err, errlen, ln, "figure: expected a key of a-z, 0-9 and _");
	if (kdfig_find(set, key))
		return fail(err, errlen, ln, "figure '%s' given twice", key);
	if (set->nfigures == KDFIG_MAX_FIGURES)
		return fail(err, errlen, ln, "more than %d figures", KDFIG_MAX_FIGURES);
	if (!word(&p, unit, sizeof(unit)))
		return fail(err, errlen, ln, "figure '%s': no unit", key);
	if (!word(&p, count, sizeof(count)))
		return fail(err, errlen, ln, "figure '%s': no repetition count", key);
	n = strtoul(count, &end, 10);
	if (*end || n < 1 || n > KDFIG_MAX_VALUES)
		return fail(err, errlen, ln, "figure '%s': repetition count '%s' is not 1 to %d",
			    key, count, KDFIG_MAX_VALUES);
	fg = &set->fig[set->nfigures];
	memset(fg, 0, sizeof(*fg));
	snprintf(fg->key, sizeof(fg->key), "%s", key);
	snprintf(fg->unit, sizeof(fg->unit), "%s", unit);
	for (fg->n = 0; fg->n < n; fg->n++) {
		char num[32];
		double v;

		if (!word(&p, num, sizeof(num)))
			return fail(err, errlen, ln, "figure '%s': %lu values announced, %u given",
				    key, n, fg->n);
		v = strtod(num, &end);
		if (*end || !isfinite(v) || v < 0)
			return fail(err, errlen, ln, "figure '%s': value '%s' is not a number >= 0",
				    key, num);
		fg->v[fg->n] = v;
	}
	if (*rest(p))
		return fail(err, errlen, ln, "figure '%s': more than the %lu values announced",
			    key, n);
	set->nfigures++;
	return 0;
}

int kdfig_parse(const char *text, struct kdfig_set *set, char *err, size_t errlen)
{
	const size_t plen = strlen(KDFIG_PREFIX);
	bool format = false, ended = false;
	unsigned int ln = 0;
	char line[1024];

	memset(set, 0, sizeof(*set));
	snprintf(err, errlen, "no error");
	while (*text) {
		size_t n = strcspn(text, "\n");
		char what[16];
		const char *p;
		int ret = 0;

		ln++;
		if (n >= sizeof(line))
			n = sizeof(line) - 1;	/* longer lines are not ours */
		memcpy(line, text, n);
		line[n] = '\0';
		text += strcspn(text, "\n");
		if (*text)
			text++;
		if (n && line[n - 1] == '\r')
			line[n - 1] = '\0';
		if (strncmp(line, KDFIG_PREFIX, plen))
			continue;
		p = line + plen;
		if (!word(&p, what, sizeof(what)))
			return fail(err, errlen, ln, "nothing after '%s'", KDFIG_PREFIX);
		if (!strcmp(what, "unavailable")) {
			if (!*rest(p))
				return fail(err, errlen, ln, "unavailable: no reason given");
			set->unavailable = true;
			snprintf(set->reason, sizeof(set->reason), "%s", rest(p));
			continue;
		}
		if (!strcmp(what, "method")) {
			char m[16];

			if (!word(&p, m, sizeof(m)) || (strcmp(m, "native") && strcmp(m, "nested")))
				return fail(err, errlen, ln, "method: expected native or nested");
			set->method = !strcmp(m, "native") ? KDFIG_METHOD_NATIVE
							   : KDFIG_METHOD_NESTED;
			snprintf(set->method_text, sizeof(set->method_text), "%s", rest(p));
			continue;
		}
		if (!strcmp(what, "format")) {
			if (format)
				return fail(err, errlen, ln, "a second 'format' line");
			if (strcmp(rest(p), "1"))
				return fail(err, errlen, ln, "format '%s': this program reads format %d",
					    rest(p), KDFIG_FORMAT);
			format = true;
			continue;
		}
		if (!format)
			return fail(err, errlen, ln, "'%s' before the 'format' line", what);
		if (ended)
			return fail(err, errlen, ln, "'%s' after the 'end' line", what);
		if (!strcmp(what, "end")) {
			ended = true;
		} else if (!strcmp(what, "figure")) {
			ret = parse_figure(p, set, err, errlen, ln);
		} else if (!strcmp(what, "info")) {
			struct kdfig_info *in;

			if (set->ninfo == KDFIG_MAX_INFO)
				return fail(err, errlen, ln, "more than %d info lines", KDFIG_MAX_INFO);
			in = &set->info[set->ninfo];
			if (!word(&p, in->key, sizeof(in->key)) || !is_key(in->key) || !*rest(p))
				return fail(err, errlen, ln, "info: expected a key and a value");
			snprintf(in->value, sizeof(in->value), "%s", rest(p));
			set->ninfo++;
		} else {
			return fail(err, errlen, ln, "unknown line kind '%s'", what);
		}
		if (ret)
			return ret;
	}

	if (set->unavailable) {
		if (format)
			return fail(err, errlen, 0, "both figures and 'unavailable: %s'", set->reason);
		return 0;
	}
	if (!format)
		return fail(err, errlen, 0, "no '%sformat' line: not the output of kvm-demo --bench",
			    KDFIG_PREFIX);
	if (!ended)
		return fail(err, errlen, 0, "no '%send' line: the run was cut short", KDFIG_PREFIX);
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!kdfig_find(set, required[i]))
			return fail(err, errlen, 0, "figure '%s' is missing", required[i]);
	return 0;
}
