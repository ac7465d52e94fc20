/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: kvm-demo's configuration reader (kvm-demo/config/config.c), the
 * whole way: libxml2's well-formedness check, libvirt's validation and
 * normalisation (its test driver, in process), then kvm-demo's own reading
 * and checks.
 *
 * Input: one mode byte, then text. Mode & 3 = 0: a domain definition for
 * config_load_string(); 1 or 3: a <memory model='dimm'> fragment for
 * config_parse_dimm(), spliced into the built-in definition as
 * attach-device does; 2: the values of a template domain (see
 * build_template()), which keeps most inputs well-formed so that they
 * reach kvm-demo's own checks.
 *
 * Properties:
 *  - a definition that is accepted satisfies what the rest of kvm-demo
 *    relies on: 1 to KD_MAX_VCPUS vCPUs; boot RAM non-zero, page-aligned
 *    and below the 3 GiB limit, so [0, boot RAM) stays under the hotplug
 *    window; each DIMM non-empty and page-aligned, at most KD_MAX_DIMMS
 *    and at most <maxMemory slots>; DIMMs laid out from KD_HOTPLUG_GPA as
 *    vm.c does end inside the window [KD_HOTPLUG_GPA, + maxMemory - boot
 *    RAM), which the identity map (KD_MAX_PDS GiB) covers, so no two
 *    regions overlap and none leaves the guest-physical space; the
 *    settings within their documented ranges;
 *  - libvirt's normalised form, read again, gives the same configuration;
 *  - an accepted DIMM fragment gives a non-empty, page-aligned size that
 *    fits in the window, and adds exactly that one DIMM to the definition;
 *  - a refused input printed exactly one error, one line of printable
 *    text naming an element ('<...'), the XML syntax or libvirt's verdict;
 *  - nothing leaks (ASan's leak check under libFuzzer).
 */
#define _GNU_SOURCE
#include "fuzz.h"
#include "config/domain.h"
#include "core/util.h"
#include "guest/abi.h"

#include <stdarg.h>
#include <string.h>

/* The built-in definition, as kvm-demo embeds it (kvm-demo/blobs.S). */
__asm__(".section .rodata\n"
	".globl kd_default_domain_xml\n"
	"kd_default_domain_xml:\n"
	".incbin \"" KD_DEFAULT_XML_PATH "\"\n"
	".byte 0\n"
	".previous");

/* Over the whole run: reported at exit for the docs. */
static unsigned long long accepted, refused;

__attribute__((destructor)) static void report_ops(void)
{
	if (getenv("FUZZ_REPORT_OPS"))
		fprintf(stderr, "fuzz-config: %llu definitions accepted, %llu refused\n", accepted,
			refused);
}

/* kvm-demo's error reporting (main.c), recorded instead of printed. */
static char last_error[512];
static unsigned int nr_errors;

void kd_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	nr_errors++;
}

const char *kd_last_error(void)
{
	return last_error;
}

/* One line of printable text that says what is wrong. */
static void check_error(const char *msg)
{
	size_t n = strlen(msg);

	FUZZ_ASSERT(n > 0, "refused without a message");
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT((unsigned char)msg[i] >= 0x20 && msg[i] != 0x7f,
			    "byte %zu of the error is 0x%02x: more than one line: %s", i,
			    (unsigned char)msg[i], msg);
	FUZZ_ASSERT(strchr(msg, '<') || strstr(msg, "malformed XML at line") ||
		    strstr(msg, "rejected by libvirt"),
		    "the error names no element: %s", msg);
}

static void check_config(const struct vm_config *cfg)
{
	uint64_t window = cfg->has_max_memory ? cfg->max_memory - cfg->boot_ram : 0;
	uint64_t gpa = KD_HOTPLUG_GPA;

	FUZZ_ASSERT(cfg->xml && cfg->name, "accepted without its XML or name");
	FUZZ_ASSERT(cfg->nr_vcpus >= 1 && cfg->nr_vcpus <= KD_MAX_VCPUS, "%u vCPUs",
		    cfg->nr_vcpus);
	FUZZ_ASSERT(cfg->boot_ram > 0 && cfg->boot_ram % KD_PAGE_SIZE == 0,
		    "boot RAM %llu bytes", (unsigned long long)cfg->boot_ram);
	FUZZ_ASSERT(cfg->boot_ram <= KD_HOTPLUG_GPA - KD_HOTPLUG_GPA / 4,
		    "boot RAM %llu bytes reaches the hole below 4 GiB",
		    (unsigned long long)cfg->boot_ram);
	FUZZ_ASSERT(cfg->nr_dimms <= KD_MAX_DIMMS, "%u DIMMs", cfg->nr_dimms);
	FUZZ_ASSERT(cfg->nr_dimms == 0 || cfg->has_max_memory, "DIMMs without <maxMemory>");
	if (cfg->has_max_memory) {
		FUZZ_ASSERT(cfg->max_memory % KD_PAGE_SIZE == 0 && cfg->max_memory >= cfg->boot_ram,
			    "<maxMemory> %llu bytes, boot RAM %llu",
			    (unsigned long long)cfg->max_memory, (unsigned long long)cfg->boot_ram);
		FUZZ_ASSERT(cfg->nr_dimms <= cfg->max_slots, "%u DIMMs in %u slots", cfg->nr_dimms,
			    cfg->max_slots);
		FUZZ_ASSERT(window <= (uint64_t)KD_MAX_PDS * (1ull << 30) - KD_HOTPLUG_GPA,
			    "a hotplug window of %llu bytes passes the identity map",
			    (unsigned long long)window);
	}
	/* The layout vm.c gives the DIMMs: one after the other from 4 GiB. */
	for (unsigned int i = 0; i < cfg->nr_dimms; i++) {
		uint64_t size = cfg->dimms[i].size;

		FUZZ_ASSERT(size > 0 && size % KD_PAGE_SIZE == 0, "DIMM %u: %llu bytes", i,
			    (unsigned long long)size);
		FUZZ_ASSERT(size <= KD_HOTPLUG_GPA + window - gpa,
			    "DIMM %u at %#llx (%llu bytes) passes the hotplug window's end %#llx",
			    i, (unsigned long long)gpa, (unsigned long long)size,
			    (unsigned long long)(KD_HOTPLUG_GPA + window));
		gpa += size;
	}
	FUZZ_ASSERT(cfg->passes <= 100000, "%u self-test passes", cfg->passes);
	FUZZ_ASSERT(cfg->vdev_mode <= KD_VDEV_MODE_HOSTILE, "vdev mode %u", cfg->vdev_mode);
	FUZZ_ASSERT(cfg->vdev_requests >= 1 && cfg->vdev_requests <= 1000000,
		    "%u vdev requests", cfg->vdev_requests);
}

static void same_config(const struct vm_config *a, const struct vm_config *b)
{
	FUZZ_ASSERT(strcmp(a->name, b->name) == 0 && a->nr_vcpus == b->nr_vcpus &&
		    a->boot_ram == b->boot_ram && a->has_max_memory == b->has_max_memory &&
		    a->max_memory == b->max_memory && a->max_slots == b->max_slots &&
		    a->current_memory == b->current_memory && a->balloon == b->balloon &&
		    a->memfd == b->memfd && a->shared == b->shared && a->nr_dimms == b->nr_dimms &&
		    a->passes == b->passes && a->inject_flip == b->inject_flip &&
		    a->vdev_mode == b->vdev_mode && a->vdev_requests == b->vdev_requests,
		    "libvirt's normalised form reads back differently");
	for (unsigned int i = 0; i < a->nr_dimms; i++)
		FUZZ_ASSERT(a->dimms[i].size == b->dimms[i].size &&
			    a->dimms[i].base == b->dimms[i].base &&
			    a->dimms[i].node == b->dimms[i].node,
			    "DIMM %u reads back differently", i);
}

/* FUZZ_SHOW_ERRORS set: print each verdict, to see what a corpus covers. */
static void show(const char *msg)
{
	if (getenv("FUZZ_SHOW_ERRORS"))
		fprintf(stderr, "fuzz-config: %s\n", msg);
}

static void fuzz_domain(const char *xml)
{
	struct vm_config cfg, again;

	nr_errors = 0;
	last_error[0] = '\0';
	if (config_load_string(&cfg, "fuzz input", xml) < 0) {
		refused++;
		show(last_error);
		FUZZ_ASSERT(nr_errors == 1, "refused with %u errors, expected one", nr_errors);
		check_error(last_error);
		return;
	}
	accepted++;
	show("accepted");
	FUZZ_ASSERT(nr_errors == 0, "accepted after an error: %s", last_error);
	check_config(&cfg);
	FUZZ_ASSERT(config_load_string(&again, "normalised", cfg.xml) == 0,
		    "libvirt's normalised form is refused: %s", last_error);
	same_config(&cfg, &again);
	config_free(&again);
	config_free(&cfg);
}

static void fuzz_dimm(const char *fragment)
{
	struct dimm_config dimm = { 0 };
	uint64_t size;
	char err[256];
	int ret;

	nr_errors = 0;
	memset(err, 0x55, sizeof(err));
	ret = config_parse_dimm(kd_default_domain_xml, fragment, &dimm, err, sizeof(err));
	size = dimm.size;
	if (ret < 0) {
		refused++;
		show(err);
		FUZZ_ASSERT(nr_errors <= 1, "refused with %u errors", nr_errors);
		FUZZ_ASSERT(memchr(err, '\0', sizeof(err)), "error not terminated");
		/* Without a libvirt error, the splice itself refused: its own words. */
		if (nr_errors == 0)
			FUZZ_ASSERT(strlen(err) > 0 && strchr(err, '<'), "error: %s", err);
		else
			check_error(err);
		return;
	}
	accepted++;
	show("accepted");
	FUZZ_ASSERT(ret == 0 && nr_errors == 0, "accepted after an error: %s", last_error);
	FUZZ_ASSERT(size > 0 && size % KD_DIMM_ALIGN == 0, "DIMM of %llu bytes",
		    (unsigned long long)size);
	FUZZ_ASSERT(dimm.base == 0 || (dimm.base >= KD_HOTPLUG_GPA && dimm.base % KD_DIMM_ALIGN == 0),
		    "DIMM at 0x%llx", (unsigned long long)dimm.base);
	FUZZ_ASSERT(size <= (uint64_t)KD_MAX_PDS * (1ull << 30) - KD_HOTPLUG_GPA,
		    "DIMM of %llu bytes cannot fit the window", (unsigned long long)size);
	/* attach-device plugs one DIMM: the fragment must add exactly that one. */
	{
		static unsigned int base_dimms = UINT32_MAX;
		const char *pos = strstr(kd_default_domain_xml, "</devices>");
		struct vm_config cfg;
		char *full;

		if (base_dimms == UINT32_MAX) {
			FUZZ_ASSERT(config_load_string(&cfg, "base", kd_default_domain_xml) == 0,
				    "the built-in definition is refused: %s", last_error);
			base_dimms = cfg.nr_dimms;
			config_free(&cfg);
		}
		FUZZ_ASSERT(pos && asprintf(&full, "%.*s%s\n%s", (int)(pos - kd_default_domain_xml),
					    kd_default_domain_xml, fragment, pos) > 0, "splice");
		FUZZ_ASSERT(config_load_string(&cfg, "spliced", full) == 0,
			    "the spliced definition is refused: %s", last_error);
		FUZZ_ASSERT(cfg.nr_dimms == base_dimms + 1 &&
			    cfg.dimms[cfg.nr_dimms - 1].size == size &&
			    cfg.dimms[cfg.nr_dimms - 1].node == dimm.node,
			    "the fragment adds %u DIMMs, not the one accepted",
			    cfg.nr_dimms - base_dimms);
		config_free(&cfg);
		free(full);
	}
}

/*
 * The template: a domain whose values come from the input, so that most
 * inputs are well-formed and reach kvm-demo's own checks. Fields are
 * separated by '|'; a missing field keeps its default, an empty one drops
 * its element or attribute. Values are escaped: they stay values.
 */
enum {
	T_TYPE, T_MAXMEM, T_MAXMEM_UNIT, T_SLOTS, T_MEMORY, T_MEMORY_UNIT, T_CURRENT,
	T_SOURCE, T_ACCESS, T_VCPU, T_VCPU_CURRENT, T_ARCH, T_CELL0, T_CELL_UNIT, T_CELL1,
	T_DIMMS, T_DIMM_UNIT, T_DIMM_NODES, T_BALLOON, T_PASSES, T_FLIP, T_VDEV_MODE,
	T_VDEV_REQUESTS, T_FIELDS
};

static const char *const template_defaults[T_FIELDS] = {
	[T_TYPE] = "kvm", [T_MAXMEM] = "256", [T_MAXMEM_UNIT] = "MiB", [T_SLOTS] = "2",
	[T_MEMORY] = "96", [T_MEMORY_UNIT] = "MiB", [T_CURRENT] = "", [T_SOURCE] = "memfd",
	[T_ACCESS] = "shared", [T_VCPU] = "2", [T_VCPU_CURRENT] = "", [T_ARCH] = "x86_64",
	[T_CELL0] = "64", [T_CELL_UNIT] = "MiB", [T_CELL1] = "", [T_DIMMS] = "32",
	[T_DIMM_UNIT] = "MiB", [T_DIMM_NODES] = "0", [T_BALLOON] = "virtio", [T_PASSES] = "",
	[T_FLIP] = "", [T_VDEV_MODE] = "", [T_VDEV_REQUESTS] = "",
};

struct text {
	char *buf;
	size_t len, cap;
};

static void put(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->buf = realloc(t->buf, t->cap);
		FUZZ_ASSERT(t->buf, "out of memory");
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

static void puts_(struct text *t, const char *s)
{
	put(t, s, strlen(s));
}

/* A value, escaped so that it cannot end its attribute or element. */
static void put_value(struct text *t, const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (v[i]) {
		case '<': puts_(t, "&lt;"); break;
		case '>': puts_(t, "&gt;"); break;
		case '&': puts_(t, "&amp;"); break;
		case '\'': puts_(t, "&apos;"); break;
		case '"': puts_(t, "&quot;"); break;
		default: put(t, v + i, 1);
		}
	}
}

struct field {
	const char *s;
	size_t n;
};

/* PRE value POST when the field is not empty. */
static void opt(struct text *t, const struct field *f, const char *pre, const char *post)
{
	if (!f->n)
		return;
	puts_(t, pre);
	put_value(t, f->s, f->n);
	puts_(t, post);
}

static char *build_template(const char *in)
{
	struct field f[T_FIELDS];
	struct text t = { 0 };
	const char *p = *in ? in : NULL;

	for (unsigned int i = 0; i < T_FIELDS; i++) {
		const char *bar = p ? strchr(p, '|') : NULL;

		if (p) {
			f[i].s = p;
			f[i].n = bar ? (size_t)(bar - p) : strlen(p);
			p = bar ? bar + 1 : NULL;
		} else {
			f[i].s = template_defaults[i];
			f[i].n = strlen(template_defaults[i]);
		}
	}
	opt(&t, &f[T_TYPE], "<domain type='", "'>\n<name>t</name>\n");
	if (!f[T_TYPE].n)
		puts_(&t, "<domain>\n<name>t</name>\n");
	if (f[T_PASSES].n || f[T_FLIP].n || f[T_VDEV_MODE].n || f[T_VDEV_REQUESTS].n) {
		puts_(&t, "<metadata><kd:kvm-demo xmlns:kd='" KD_METADATA_NS "'>");
		if (f[T_PASSES].n || f[T_FLIP].n) {
			puts_(&t, "<kd:selftest");
			opt(&t, &f[T_PASSES], " passes='", "'");
			opt(&t, &f[T_FLIP], " inject-flip='", "'");
			puts_(&t, "/>");
		}
		if (f[T_VDEV_MODE].n || f[T_VDEV_REQUESTS].n) {
			puts_(&t, "<kd:vdev");
			opt(&t, &f[T_VDEV_MODE], " mode='", "'");
			opt(&t, &f[T_VDEV_REQUESTS], " requests='", "'");
			puts_(&t, "/>");
		}
		puts_(&t, "</kd:kvm-demo></metadata>\n");
	}
	if (f[T_MAXMEM].n) {
		opt(&t, &f[T_SLOTS], "<maxMemory slots='", "'");
		if (!f[T_SLOTS].n)
			puts_(&t, "<maxMemory");
		opt(&t, &f[T_MAXMEM_UNIT], " unit='", "'");
		opt(&t, &f[T_MAXMEM], ">", "</maxMemory>\n");
	}
	opt(&t, &f[T_MEMORY_UNIT], "<memory unit='", "'>");
	if (!f[T_MEMORY_UNIT].n)
		puts_(&t, "<memory>");
	put_value(&t, f[T_MEMORY].s, f[T_MEMORY].n);
	puts_(&t, "</memory>\n");
	opt(&t, &f[T_CURRENT], "<currentMemory>", "</currentMemory>\n");
	puts_(&t, "<memoryBacking>");
	opt(&t, &f[T_SOURCE], "<source type='", "'/>");
	opt(&t, &f[T_ACCESS], "<access mode='", "'/>");
	puts_(&t, "</memoryBacking>\n<vcpu");
	opt(&t, &f[T_VCPU_CURRENT], " current='", "'");
	puts_(&t, ">");
	put_value(&t, f[T_VCPU].s, f[T_VCPU].n);
	puts_(&t, "</vcpu>\n<os><type");
	opt(&t, &f[T_ARCH], " arch='", "'");
	puts_(&t, ">hvm</type></os>\n");
	if (f[T_CELL0].n) {
		puts_(&t, "<cpu><numa>");
		opt(&t, &f[T_CELL0], "<cell id='0' cpus='0' memory='", "'");
		opt(&t, &f[T_CELL_UNIT], " unit='", "'");
		puts_(&t, "/>");
		opt(&t, &f[T_CELL1], "<cell id='1' cpus='1' memory='", "'");
		if (f[T_CELL1].n) {
			opt(&t, &f[T_CELL_UNIT], " unit='", "'");
			puts_(&t, "/>");
		}
		puts_(&t, "</numa></cpu>\n");
	}
	puts_(&t, "<devices>\n");
	/* One DIMM per comma-separated size, its node from the same place in the node list. */
	for (size_t i = 0, node = 0; i < f[T_DIMMS].n;) {
		size_t end = i, nend = node;

		while (end < f[T_DIMMS].n && f[T_DIMMS].s[end] != ',')
			end++;
		while (nend < f[T_DIMM_NODES].n && f[T_DIMM_NODES].s[nend] != ',')
			nend++;
		puts_(&t, "<memory model='dimm'><target><size");
		opt(&t, &f[T_DIMM_UNIT], " unit='", "'");
		puts_(&t, ">");
		put_value(&t, f[T_DIMMS].s + i, end - i);
		puts_(&t, "</size>");
		if (nend > node) {
			puts_(&t, "<node>");
			put_value(&t, f[T_DIMM_NODES].s + node, nend - node);
			puts_(&t, "</node>");
		}
		puts_(&t, "</target></memory>\n");
		i = end + 1;
		node = nend < f[T_DIMM_NODES].n ? nend + 1 : nend;
	}
	opt(&t, &f[T_BALLOON], "<memballoon model='", "'/>\n");
	puts_(&t, "</devices>\n</domain>\n");
	return t.buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if ((data[0] & 3) == 2) {
		char *xml = build_template(text);

		if (getenv("FUZZ_SHOW_ERRORS"))
			fprintf(stderr, "%s", xml);
		fuzz_domain(xml);
		free(xml);
	} else if (data[0] & 1) {
		fuzz_dimm(text);
	} else {
		fuzz_domain(text);
	}
	free(text);
	return 0;
}
