/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: kvm-demo's control command parser, control_parse(), on
 * arbitrary bytes. A reference parser written from control.h's contract
 * decides what each line is; control_parse() must agree: the same command
 * and fields for a good line, and for a bad one an error that names the
 * same problem, on one line of printable ASCII that fits the buffer.
 *
 * Input: one byte of flags, then the line. Flags 0x80: the line is
 * repeated to just around KD_CTL_MAX_LINE bytes (libFuzzer's inputs are
 * shorter); flags & 15: the size of a second, tiny error buffer.
 */
#include "fuzz.h"
#include "control/control.h"

#include <stdbool.h>
#include <string.h>

/* Lines parsed, over the whole run: reported at exit for the docs. */
static unsigned long long lines_ok, lines_bad;

__attribute__((destructor)) static void report_ops(void)
{
	if (getenv("FUZZ_REPORT_OPS"))
		fprintf(stderr, "fuzz-control: %llu lines accepted, %llu refused\n", lines_ok,
			lines_bad);
}

#define MAX_WORDS 64

struct ref_words {
	size_t start[MAX_WORDS], len[MAX_WORDS];
	unsigned int n;		/* may exceed MAX_WORDS: only counted then */
};

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

static void ref_split(const char *s, size_t len, struct ref_words *w)
{
	size_t i = 0;

	w->n = 0;
	while (i < len) {
		while (i < len && blank(s[i]))
			i++;
		if (i == len)
			break;
		if (w->n < MAX_WORDS)
			w->start[w->n] = i;
		while (i < len && !blank(s[i]))
			i++;
		if (w->n < MAX_WORDS)
			w->len[w->n] = i - w->start[w->n];
		w->n++;
	}
}

static bool ref_word_is(const char *s, const struct ref_words *w, unsigned int i, const char *name)
{
	return w->len[i] == strlen(name) && memcmp(s + w->start[i], name, w->len[i]) == 0;
}

/* DIGITS[UNIT], KiB by default; false on anything else or overflow. */
static bool ref_size(const char *s, size_t len, uint64_t *bytes)
{
	static const struct { const char *unit; uint64_t scale; } units[] = {
		{ "", 1024 }, { "b", 1 }, { "B", 1 }, { "bytes", 1 },
		{ "k", 1024 }, { "K", 1024 }, { "KiB", 1024 },
		{ "m", 1 << 20 }, { "M", 1 << 20 }, { "MiB", 1 << 20 },
		{ "g", 1 << 30 }, { "G", 1 << 30 }, { "GiB", 1 << 30 },
	};
	uint64_t v = 0;
	size_t i = 0;

	while (i < len && s[i] >= '0' && s[i] <= '9') {
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
			return false;
		i++;
	}
	if (i == 0)
		return false;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++)
		if (strlen(units[u].unit) == len - i && memcmp(s + i, units[u].unit, len - i) == 0)
			return !__builtin_mul_overflow(v, units[u].scale, bytes);
	return false;
}

/*
 * Length of the well-formed UTF-8 sequence at P (N bytes left), else 0:
 * the byte ranges of the Unicode standard's table of well-formed sequences.
 */
static size_t ref_utf8(const unsigned char *p, size_t n)
{
	static const struct { unsigned char lo[4], hi[4]; size_t len; } forms[] = {
		{ { 0x00 }, { 0x7f }, 1 },
		{ { 0xc2, 0x80 }, { 0xdf, 0xbf }, 2 },
		{ { 0xe0, 0xa0, 0x80 }, { 0xe0, 0xbf, 0xbf }, 3 },
		{ { 0xe1, 0x80, 0x80 }, { 0xec, 0xbf, 0xbf }, 3 },
		{ { 0xed, 0x80, 0x80 }, { 0xed, 0x9f, 0xbf }, 3 },
		{ { 0xee, 0x80, 0x80 }, { 0xef, 0xbf, 0xbf }, 3 },
		{ { 0xf0, 0x90, 0x80, 0x80 }, { 0xf0, 0xbf, 0xbf, 0xbf }, 4 },
		{ { 0xf1, 0x80, 0x80, 0x80 }, { 0xf3, 0xbf, 0xbf, 0xbf }, 4 },
		{ { 0xf4, 0x80, 0x80, 0x80 }, { 0xf4, 0x8f, 0xbf, 0xbf }, 4 },
	};

	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		size_t i = 0;

		while (i < forms[f].len && i < n && p[i] >= forms[f].lo[i] && p[i] <= forms[f].hi[i])
			i++;
		if (i == forms[f].len)
			return i;
	}
	return 0;
}

static bool ref_slot(const char *s, size_t len, unsigned int *slot)
{
	unsigned int v = 0;

	if (len == 0 || len > 3)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	*slot = v;
	return true;
}

static const struct {
	const char *name;
	enum control_op op;
	int args;		/* -1: the rest of the line */
} ref_commands[] = {
	{ "setmem", CTL_SETMEM, 1 },
	{ "attach-device", CTL_ATTACH_DEVICE, -1 },
	{ "detach-device", CTL_DETACH_DEVICE, -1 },
	{ "remap", CTL_REMAP, 1 },
	{ "protect", CTL_PROTECT, 2 },
	{ "dommemstat", CTL_DOMMEMSTAT, 0 },
	{ "dumpxml", CTL_DUMPXML, 0 },
	{ "stats", CTL_STATS, 0 },
	{ "shutdown", CTL_SHUTDOWN, 0 },
};

/*
 * The reference: fills WANT and returns NULL for a good line, else the
 * text the error must contain (in STORE when formatted).
 */
static const char *reference(const char *line, size_t len, struct control_cmd *want,
			     char *store, size_t storelen)
{
	struct ref_words w;
	size_t c;

	memset(want, 0, sizeof(*want));
	if (len >= KD_CTL_MAX_LINE)
		return "longer than";
	ref_split(line, len, &w);
	/* Printable ASCII, but for the XML of a device: any UTF-8 text there. */
	size_t xml = len;

	if (w.n && (ref_word_is(line, &w, 0, "attach-device") ||
		    ref_word_is(line, &w, 0, "detach-device")))
		for (xml = w.start[0] + w.len[0]; xml < len && blank(line[xml]);)
			xml++;
	for (size_t i = 0; i < len;) {
		unsigned char ch = (unsigned char)line[i];
		size_t n = 1;

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f || (ch > 0x7f && i < xml)) {
			snprintf(store, storelen, "byte 0x%02x at offset %zu: commands are printable "
				 "ASCII", ch, i);
			return store;
		}
		if (ch > 0x7f) {
			n = ref_utf8((const unsigned char *)line + i, len - i);
			if (!n) {
				snprintf(store, storelen, "byte 0x%02x at offset %zu: the XML is not "
					 "UTF-8", ch, i);
				return store;
			}
		}
		i += n;
	}
	if (w.n == 0)
		return "empty command";
	for (c = 0; c < sizeof(ref_commands) / sizeof(ref_commands[0]); c++)
		if (ref_word_is(line, &w, 0, ref_commands[c].name))
			break;
	if (c == sizeof(ref_commands) / sizeof(ref_commands[0]))
		return "unknown command '";
	want->op = ref_commands[c].op;
	snprintf(store, storelen, "usage: %s", ref_commands[c].name);
	if (ref_commands[c].args < 0) {
		size_t from = w.start[0] + w.len[0], to = len;

		while (from < len && blank(line[from]))
			from++;
		while (to > from && blank(line[to - 1]))
			to--;
		if (to == from)
			return store;
		/* The server opens no file a client names. */
		if (line[from] != '<')
			return "the argument is the XML itself";
		want->arg = line + from;
		want->arg_len = to - from;
		return NULL;
	}
	if (w.n - 1 != (unsigned int)ref_commands[c].args)
		return store;
	switch (want->op) {
	case CTL_SETMEM:
		if (!ref_size(line + w.start[1], w.len[1], &want->value) || want->value == 0)
			return "is not a size";
		break;
	case CTL_PROTECT:
		want->on = ref_word_is(line, &w, 2, "on");
		if (!want->on && !ref_word_is(line, &w, 2, "off"))
			return "expected on or off";
		/* fall through */
	case CTL_REMAP:
		if (!ref_slot(line + w.start[1], w.len[1], &want->slot))
			return "is not a slot number";
		break;
	default:
		break;
	}
	return NULL;
}

/* An error reply is "error: " ERR "\n": ERR must be one line that fits. */
static void check_error_text(const char *err, size_t errlen)
{
	const char *end = memchr(err, '\0', errlen);
	size_t n = end ? (size_t)(end - err) : errlen;

	FUZZ_ASSERT(end, "error text not terminated inside its %zu-byte buffer", errlen);
	FUZZ_ASSERT(errlen == 1 || n > 0, "empty error text");
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT(err[i] >= 0x20 && err[i] <= 0x7e,
			    "error text byte %zu is 0x%02x: the reply would not be one line", i,
			    (unsigned char)err[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t flags = size ? data[0] : 0;
	size_t len = size ? size - 1 : 0;
	size_t tiny = 1 + (flags & 15);
	struct control_cmd cmd, want;
	char store[128], err[256];
	const char *expect;
	char *line, *small;
	int ret;

	if (flags & 0x80) {
		/* Around the limit: KD_CTL_MAX_LINE - 2 to + 1 bytes. */
		size_t target = KD_CTL_MAX_LINE - 2 + (flags & 3);

		line = malloc(target);
		if (!line)
			return 0;
		for (size_t i = 0; i < target; i++)
			line[i] = len ? (char)data[1 + i % len] : 'a';
		len = target;
	} else {
		/* Exactly LEN bytes on the heap: ASan sees any read past the line. */
		line = malloc(len ? len : 1);
		if (!line)
			return 0;
		if (len)
			memcpy(line, data + 1, len);
	}
	small = malloc(tiny);
	if (!small) {
		free(line);
		return 0;
	}

	expect = reference(line, len, &want, store, sizeof(store));
	memset(err, 0x55, sizeof(err));
	ret = control_parse(line, len, &cmd, err, sizeof(err));
	if (expect) {
		lines_bad++;
		FUZZ_ASSERT(ret == -1, "accepted a line the reference refuses ('%s')", expect);
		check_error_text(err, sizeof(err));
		FUZZ_ASSERT(strstr(err, expect), "error '%s' does not say '%s'", err, expect);
		/* A tiny buffer gets the same message, cut short and terminated. */
		memset(small, 0x55, tiny);
		FUZZ_ASSERT(control_parse(line, len, &cmd, small, tiny) == -1, "second parse accepted");
		check_error_text(small, tiny);
		FUZZ_ASSERT(strncmp(small, err, tiny - 1) == 0 &&
			    strlen(small) == (strlen(err) < tiny ? strlen(err) : tiny - 1),
			    "truncated error '%s' is not the start of '%s'", small, err);
	} else {
		lines_ok++;
		FUZZ_ASSERT(ret == 0, "refused a good line: %.*s", (int)sizeof(err), err);
		FUZZ_ASSERT(cmd.op == want.op, "op %d, expected %d", cmd.op, want.op);
		FUZZ_ASSERT(cmd.op >= CTL_SETMEM && cmd.op <= CTL_SHUTDOWN, "op %d out of range",
			    cmd.op);
		FUZZ_ASSERT(cmd.value == want.value, "value %llu, expected %llu",
			    (unsigned long long)cmd.value, (unsigned long long)want.value);
		FUZZ_ASSERT(cmd.op != CTL_SETMEM || cmd.value > 0, "setmem of 0 bytes");
		FUZZ_ASSERT(cmd.slot == want.slot && cmd.slot <= 999, "slot %u, expected %u",
			    cmd.slot, want.slot);
		FUZZ_ASSERT(cmd.on == want.on, "on %d, expected %d", cmd.on, want.on);
		FUZZ_ASSERT(cmd.arg == want.arg && cmd.arg_len == want.arg_len,
			    "argument at +%td (%zu bytes), expected +%td (%zu bytes)",
			    cmd.arg ? cmd.arg - line : -1, cmd.arg_len,
			    want.arg ? want.arg - line : -1, want.arg_len);
		if (cmd.arg) {
			FUZZ_ASSERT(cmd.arg_len > 0 && cmd.arg >= line &&
				    cmd.arg_len <= (size_t)(line + len - cmd.arg),
				    "argument outside the line");
			FUZZ_ASSERT(!blank(cmd.arg[0]) && !blank(cmd.arg[cmd.arg_len - 1]),
				    "argument not trimmed");
		}
	}
	free(small);
	free(line);
	return 0;
}
