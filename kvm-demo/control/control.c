/* SPDX-License-Identifier: MIT */
/*
 * The control command parser: virsh-like commands, one per line. A pure
 * function, so that it can be tested and fuzzed without a VM.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "control/control.h"

struct words {
	const char *w[4];
	size_t len[4];
	unsigned int n;
	const char *rest;	/* after the first word */
	size_t rest_len;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Splits into at most 4 words; false when there are more. */
static bool split(const char *s, size_t len, struct words *w)
{
	size_t i = 0;

	memset(w, 0, sizeof(*w));
	for (;;) {
		while (i < len && is_space(s[i]))
			i++;
		if (i == len)
			return true;
		if (w->n == 4)
			return false;
		w->w[w->n] = s + i;
		while (i < len && !is_space(s[i]))
			i++;
		w->len[w->n] = (size_t)(s + i - w->w[w->n]);
		if (w->n++ == 0) {
			size_t j = i;

			while (j < len && is_space(s[j]))
				j++;
			w->rest = s + j;
			w->rest_len = len - j;
			while (w->rest_len && is_space(w->rest[w->rest_len - 1]))
				w->rest_len--;
		}
	}
}

size_t ctl_utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1fu;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0fu;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07u;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static bool word_is(const struct words *w, unsigned int i, const char *s)
{
	return w->len[i] == strlen(s) && memcmp(w->w[i], s, w->len[i]) == 0;
}

/* A decimal number with an optional unit (KiB default, as virsh's setmem). */
static bool parse_size(const char *s, size_t len, uint64_t *bytes)
{
	uint64_t v = 0, scale = 1024;
	size_t i = 0;

	if (len == 0 || s[0] < '0' || s[0] > '9')
		return false;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		uint64_t d = (uint64_t)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (i < len) {
		size_t ulen = len - i;
		const char *u = s + i;

		if ((ulen == 1 && (u[0] == 'b' || u[0] == 'B')) || (ulen == 5 && !memcmp(u, "bytes", 5)))
			scale = 1;
		else if ((ulen == 1 && (u[0] == 'k' || u[0] == 'K')) || (ulen == 3 && !memcmp(u, "KiB", 3)))
			scale = 1024;
		else if ((ulen == 1 && (u[0] == 'm' || u[0] == 'M')) || (ulen == 3 && !memcmp(u, "MiB", 3)))
			scale = 1024 * 1024;
		else if ((ulen == 1 && (u[0] == 'g' || u[0] == 'G')) || (ulen == 3 && !memcmp(u, "GiB", 3)))
			scale = 1024 * 1024 * 1024;
		else
			return false;
	}
	if (v > UINT64_MAX / scale)
		return false;
	*bytes = v * scale;
	return true;
}

static bool parse_slot(const char *s, size_t len, unsigned int *slot)
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
	unsigned int args;	/* words after the command; 9: the rest of the line */
	const char *usage;
} commands[] = {
	{ "setmem", CTL_SETMEM, 1, "setmem SIZE (KiB, or with a unit: 96M, 1G)" },
	{ "attach-device", CTL_ATTACH_DEVICE, 9, "attach-device FILE|XML" },
	{ "detach-device", CTL_DETACH_DEVICE, 9, "detach-device FILE|XML" },
	{ "remap", CTL_REMAP, 1, "remap SLOT" },
	{ "protect", CTL_PROTECT, 2, "protect SLOT on|off" },
	{ "dommemstat", CTL_DOMMEMSTAT, 0, "dommemstat" },
	{ "dumpxml", CTL_DUMPXML, 0, "dumpxml" },
	{ "stats", CTL_STATS, 0, "stats" },
	{ "shutdown", CTL_SHUTDOWN, 0, "shutdown" },
};

int control_parse(const char *line, size_t len, struct control_cmd *cmd, char *err,
		  size_t errlen)
{
	struct words w;
	unsigned int c;

	memset(cmd, 0, sizeof(*cmd));
	if (!line)
		return kd_err(err, errlen, "no command");
	if (len >= KD_CTL_MAX_LINE)
		return kd_err(err, errlen, "command line longer than %d bytes", KD_CTL_MAX_LINE - 1);
	bool few = split(line, len, &w);
	/* The XML of a device may hold UTF-8 (names, comments); the rest is ASCII. */
	size_t xml_from = w.n && (word_is(&w, 0, "attach-device") || word_is(&w, 0, "detach-device"))
			  ? (size_t)(w.rest - line) : len;

	for (size_t i = 0; i < len;) {
		unsigned char ch = (unsigned char)line[i];
		size_t n = i >= xml_from ? ctl_utf8_len((const unsigned char *)line + i, len - i) : 1;

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f || (ch > 0x7f && i < xml_from))
			return kd_err(err, errlen, "byte 0x%02x at offset %zu: commands are printable ASCII",
				      ch, i);
		if (n == 0)
			return kd_err(err, errlen, "byte 0x%02x at offset %zu: the XML is not UTF-8",
				      ch, i);
		i += n;
	}

	if (w.n == 0)
		return kd_err(err, errlen, "empty command");
	for (c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
		if (word_is(&w, 0, commands[c].name))
			break;
	if (c == sizeof(commands) / sizeof(commands[0]))
		return kd_err(err, errlen, "unknown command '%.*s' (try: setmem, attach-device, "
			      "detach-device, remap, protect, dommemstat, dumpxml, stats, shutdown)",
			      (int)(w.len[0] > 40 ? 40 : w.len[0]), w.w[0]);
	cmd->op = commands[c].op;
	if (commands[c].args == 9) {
		if (w.rest_len == 0)
			return kd_err(err, errlen, "usage: %s", commands[c].usage);
		if (w.rest[0] != '<')
			return kd_err(err, errlen, "%s: the argument is the XML itself, starting with "
				      "'<' (kvm-demo ctl reads a FILE and sends its content)",
				      commands[c].name);
		cmd->arg = w.rest;
		cmd->arg_len = w.rest_len;
		return 0;
	}
	if (!few || w.n - 1 != commands[c].args)
		return kd_err(err, errlen, "usage: %s", commands[c].usage);
	switch (cmd->op) {
	case CTL_SETMEM:
		if (!parse_size(w.w[1], w.len[1], &cmd->value) || cmd->value == 0)
			return kd_err(err, errlen, "setmem: '%.*s' is not a size (usage: %s)",
				      (int)(w.len[1] > 40 ? 40 : w.len[1]), w.w[1], commands[c].usage);
		break;
	case CTL_PROTECT:
		if (word_is(&w, 2, "on"))
			cmd->on = true;
		else if (!word_is(&w, 2, "off"))
			return kd_err(err, errlen, "protect: expected on or off, not '%.*s'",
				      (int)(w.len[2] > 40 ? 40 : w.len[2]), w.w[2]);
		/* fall through */
	case CTL_REMAP:
		if (!parse_slot(w.w[1], w.len[1], &cmd->slot))
			return kd_err(err, errlen, "%s: '%.*s' is not a slot number", commands[c].name,
				      (int)(w.len[1] > 40 ? 40 : w.len[1]), w.w[1]);
		break;
	default:
		break;
	}
	return 0;
}
