/* SPDX-License-Identifier: MIT */
/*
 * The VM definition: libvirt domain XML.
 *
 * libvirt's own parser validates and normalises the XML in-process (the
 * test driver on an empty node file, no daemon), so users get libvirt's
 * schema and semantic checks and a canonical form (sizes in KiB, defaults
 * filled in). libxml2 XPath then reads that normalised form. Last come the
 * checks libvirt leaves to the hypervisor. Every failure is one line that
 * names the element and the value.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "config/domain.h"
#include "core/util.h"
#include "guest/abi.h"

#define MIB (1024ull * 1024)

/*
 * An error must stay one line, but libvirt's messages can span lines and
 * values quoted from the XML can hold any character a reference names
 * (&#10;, &#13;, &#9;): trailing blanks go, line breaks and tabs become
 * spaces. config_error() escapes what else is not printable ASCII.
 */
static void one_line(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
}

/*
 * kd_error() for the reader: one line, whatever the XML holds. Bytes that
 * are not printable ASCII (control characters, UTF-8, invalid bytes) are
 * shown as \xNN: a terminal gets no escape sequence from a config file.
 */
__attribute__((format(printf, 1, 2)))
static void config_error(const char *fmt, ...)
{
	char msg[1024], out[4 * sizeof(msg)];
	size_t o = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	one_line(msg);
	for (const char *p = msg; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
	}
	out[o] = '\0';
	kd_error("%s", out);
}

/*
 * A --config file: a regular file of at most KD_CONFIG_MAX_BYTES, refused
 * before any parsing (a FIFO would block, a device never end, and libvirt's
 * validation time grows faster than its input). NULL after an error line.
 */
static char *read_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	char *buf = NULL;
	size_t len = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		config_error("cannot read config %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		config_error("config %s: not a regular file", path);
		goto fail;
	}
	if (st.st_size > KD_CONFIG_MAX_BYTES) {
		config_error("config %s: %lld bytes, more than the limit of %d bytes (128 KiB)", path,
			     (long long)st.st_size, KD_CONFIG_MAX_BYTES);
		goto fail;
	}
	buf = malloc(KD_CONFIG_MAX_BYTES + 2);
	if (!buf) {
		config_error("config %s: out of memory", path);
		goto fail;
	}
	/* One byte past the limit tells a file that grew since fstat(). */
	while (len <= KD_CONFIG_MAX_BYTES) {
		ssize_t n = read(fd, buf + len, KD_CONFIG_MAX_BYTES + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			config_error("cannot read config %s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > KD_CONFIG_MAX_BYTES) {
		config_error("config %s: more than the limit of %d bytes (128 KiB)", path,
			     KD_CONFIG_MAX_BYTES);
		goto fail;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void quiet_virt_error(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

/* Keeps libxml2 from printing parse errors itself. */
static void quiet_xml_error(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

/* Well-formedness first, so that a typo gets a line number, not a schema essay. */
static int check_well_formed(const char *what, const char *xml)
{
	xmlDocPtr doc;

	xmlResetLastError();
	doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlGetLastError();
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "cannot parse");
		one_line(msg);
		config_error("%s: malformed XML at line %d: %s", what, e ? e->line : 0, msg);
		return -1;
	}
	xmlFreeDoc(doc);
	return 0;
}

/*
 * libvirt validates (schema and semantics) and normalises XML. Returns the
 * normalised XML (free()) or NULL after printing why. The test driver reads
 * its node file once, at open; that file is a memfd named through
 * /proc/self/fd, so that nothing is left behind in any directory, even by
 * a process killed half-way.
 */
static char *libvirt_normalise(const char *what, const char *xml)
{
	static const char node[] = "<node/>\n";
	char uri[64];
	virConnectPtr conn = NULL;
	virDomainPtr dom = NULL;
	char *out = NULL;
	int fd = memfd_create("kvm-demo-node.xml", MFD_CLOEXEC);

	if (fd < 0 || write(fd, node, sizeof(node) - 1) != (ssize_t)(sizeof(node) - 1)) {
		config_error("cannot create the node file of libvirt's test driver: %s",
			     strerror(errno));
		goto out;
	}
	virSetErrorFunc(NULL, quiet_virt_error);
	snprintf(uri, sizeof(uri), "test:///proc/self/fd/%d", fd);
	conn = virConnectOpen(uri);
	close(fd);
	fd = -1;
	if (!conn) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", virGetLastErrorMessage());
		one_line(msg);
		config_error("cannot open libvirt's test driver (%s): %s", uri, msg);
		goto out;
	}
	dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	if (!dom) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", virGetLastErrorMessage());
		one_line(msg);
		config_error("%s: rejected by libvirt: %s", what, msg);
		goto out;
	}
	out = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
	if (!out)
		config_error("%s: libvirt cannot format the domain: %s", what,
			     virGetLastErrorMessage());
out:
	if (fd >= 0)
		close(fd);
	if (dom)
		virDomainFree(dom);
	if (conn)
		virConnectClose(conn);
	return out;
}

/* ---- reading the normalised XML ---- */

struct reader {
	xmlDocPtr doc;
	xmlXPathContextPtr xp;
};

/* The string value of EXPR (first match), or NULL. Free with free(). */
static char *xp_string(struct reader *rd, xmlNodePtr at, const char *expr)
{
	xmlXPathObjectPtr o;
	char *s = NULL;

	rd->xp->node = at ? at : xmlDocGetRootElement(rd->doc);
	o = xmlXPathEvalExpression(BAD_CAST expr, rd->xp);
	if (o && o->type == XPATH_NODESET && o->nodesetval && o->nodesetval->nodeNr > 0) {
		xmlChar *c = xmlNodeGetContent(o->nodesetval->nodeTab[0]);

		if (c) {
			s = strdup((const char *)c);
			xmlFree(c);
		}
	}
	xmlXPathFreeObject(o);
	return s;
}

static xmlXPathObjectPtr xp_nodes(struct reader *rd, const char *expr)
{
	rd->xp->node = xmlDocGetRootElement(rd->doc);
	return xmlXPathEvalExpression(BAD_CAST expr, rd->xp);
}

static int xp_count(xmlXPathObjectPtr o)
{
	return o && o->type == XPATH_NODESET && o->nodesetval ? o->nodesetval->nodeNr : 0;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* Bytes per unit, libvirt's spelling (normalised XML uses KiB). */
static uint64_t unit_scale(const char *unit)
{
	static const struct { const char *name; uint64_t scale; } units[] = {
		{ "b", 1 }, { "bytes", 1 }, { "KiB", 1ull << 10 }, { "k", 1ull << 10 },
		{ "MiB", 1ull << 20 }, { "M", 1ull << 20 }, { "GiB", 1ull << 30 },
		{ "G", 1ull << 30 }, { "TiB", 1ull << 40 }, { "T", 1ull << 40 },
		{ "KB", 1000 }, { "MB", 1000000 }, { "GB", 1000000000 },
	};

	if (!unit)
		return 1ull << 10;	/* libvirt's default */
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(unit, units[i].name) == 0)
			return units[i].scale;
	return 0;
}

/*
 * A size: the value of VALUE_EXPR scaled by UNIT_EXPR, in bytes. WHAT names
 * the element in errors. Returns 0, 1 when absent, -1 on error.
 */
static int read_size(struct reader *rd, xmlNodePtr at, const char *value_expr,
		     const char *unit_expr, const char *what, uint64_t *bytes)
{
	char *value = xp_string(rd, at, value_expr);
	char *unit = xp_string(rd, at, unit_expr);
	uint64_t v, scale = unit_scale(unit);
	int ret = 0;

	if (!value) {
		ret = 1;
	} else if (!parse_u64(value, &v) || scale == 0 || v > UINT64_MAX / scale) {
		config_error("%s: cannot read size '%s' (unit '%s')", what, value,
			     unit ? unit : "KiB");
		ret = -1;
	} else {
		*bytes = v * scale;
	}
	free(value);
	free(unit);
	return ret;
}

static int check_page_aligned(const char *what, uint64_t bytes)
{
	if (bytes % KD_PAGE_SIZE == 0)
		return 0;
	config_error("%s %" PRIu64 " KiB%s is not a multiple of the %llu KiB page size", what,
		     bytes >> 10, bytes % 1024 ? " (plus some bytes)" : "", KD_PAGE_SIZE >> 10);
	return -1;
}

static int read_basics(struct reader *rd, struct vm_config *cfg)
{
	char *type = xp_string(rd, NULL, "/domain/@type");
	char *arch = xp_string(rd, NULL, "/domain/os/type/@arch");
	char *vcpu = xp_string(rd, NULL, "/domain/vcpu");
	char *current = xp_string(rd, NULL, "/domain/vcpu/@current");
	uint64_t n;
	int ret = -1;

	cfg->name = xp_string(rd, NULL, "/domain/name");
	if (!type || strcmp(type, "kvm") != 0) {
		config_error("<domain type='%s'>: kvm-demo runs type='kvm' domains only",
			     type ? type : "");
		goto out;
	}
	if (arch && strcmp(arch, "x86_64") != 0) {
		config_error("<os><type arch='%s'>: kvm-demo runs x86_64 guests only", arch);
		goto out;
	}
	if (!vcpu || !parse_u64(vcpu, &n) || n == 0) {
		config_error("<vcpu>%s</vcpu>: expected a vCPU count", vcpu ? vcpu : "");
		goto out;
	}
	if (n > KD_MAX_VCPUS) {
		config_error("<vcpu>%s</vcpu>: kvm-demo runs at most %u vCPUs", vcpu, KD_MAX_VCPUS);
		goto out;
	}
	if (current && strcmp(current, vcpu) != 0) {
		config_error("<vcpu current='%s'>: vCPU hotplug is not supported; use <vcpu>%s</vcpu> alone",
			     current, current);
		goto out;
	}
	cfg->nr_vcpus = (unsigned int)n;
	ret = 0;
out:
	free(type);
	free(arch);
	free(vcpu);
	free(current);
	return ret;
}

static int read_backing(struct reader *rd, struct vm_config *cfg)
{
	char *source = xp_string(rd, NULL, "/domain/memoryBacking/source/@type");
	char *access = xp_string(rd, NULL, "/domain/memoryBacking/access/@mode");
	xmlXPathObjectPtr huge = xp_nodes(rd, "/domain/memoryBacking/hugepages");
	int ret = -1;

	if (xp_count(huge) > 0) {
		config_error("<memoryBacking><hugepages>: not supported by kvm-demo");
		goto out;
	}
	if (!source || strcmp(source, "anonymous") == 0) {
		cfg->memfd = false;
	} else if (strcmp(source, "memfd") == 0) {
		cfg->memfd = true;
	} else {
		config_error("<memoryBacking><source type='%s'>: kvm-demo supports 'memfd' and 'anonymous'",
			     source);
		goto out;
	}
	if (!access || strcmp(access, "private") == 0) {
		cfg->shared = false;
	} else if (strcmp(access, "shared") == 0) {
		cfg->shared = true;
	} else {
		config_error("<memoryBacking><access mode='%s'>: expected 'shared' or 'private'", access);
		goto out;
	}
	ret = 0;
out:
	xmlXPathFreeObject(huge);
	free(source);
	free(access);
	return ret;
}

/*
 * A DIMM's <address type='dimm' base='0x...'/> as libvirt normalised it (it
 * drops base 0: see check_raw_dimm_bases()). 0 when absent.
 */
static int read_dimm_base(struct reader *rd, xmlNodePtr dev, int i, uint64_t *base)
{
	char *v = xp_string(rd, dev, "address/@base");
	char *end = NULL;
	int ret = 0;

	*base = 0;
	if (!v)
		return 0;
	errno = 0;
	*base = strtoull(v, &end, 0);
	if (errno || !*v || *v == '-' || *end) {
		config_error("<memory model='dimm'> #%d <address base='%s'>: cannot read the "
			     "address", i, v);
		ret = -1;
	}
	free(v);
	return ret;
}

/*
 * Where kvm-demo can honour a DIMM's base: 2 MiB-aligned, inside the
 * hotplug window [4 GiB, 4 GiB + <maxMemory> - boot RAM), clear of the
 * other DIMMs with a base.
 */
static int check_dimm_bases(const struct vm_config *cfg)
{
	uint64_t end = KD_HOTPLUG_GPA + (cfg->has_max_memory ? cfg->max_memory - cfg->boot_ram : 0);

	for (unsigned int i = 0; i < cfg->nr_dimms; i++) {
		const struct dimm_config *d = &cfg->dimms[i];

		if (!d->base)
			continue;
		if (d->base % KD_DIMM_ALIGN || d->base < KD_HOTPLUG_GPA || d->base > end ||
		    d->size > end - d->base) {
			config_error("<memory model='dimm'> #%u <address base='0x%" PRIx64 "'>: "
				     "a DIMM of %" PRIu64 " MiB must start on a %llu MiB boundary in "
				     "[0x%llx, 0x%" PRIx64 "), the hotplug window", i, d->base,
				     d->size >> 20, KD_DIMM_ALIGN >> 20, KD_HOTPLUG_GPA, end);
			return -1;
		}
		for (unsigned int j = 0; j < i; j++) {
			const struct dimm_config *o = &cfg->dimms[j];

			if (o->base && d->base < o->base + o->size && o->base < d->base + d->size) {
				config_error("<memory model='dimm'> #%u <address base='0x%" PRIx64
					     "'>: overlaps DIMM #%u at 0x%" PRIx64, i, d->base, j,
					     o->base);
				return -1;
			}
		}
	}
	return 0;
}

/*
 * libvirt reads base='0x0' as "no base" and drops it, so a DIMM asked to
 * sit on boot RAM would be placed elsewhere without a word: refuse every
 * base below the hotplug window in the XML as written.
 */
static int check_raw_dimm_bases(const char *xml)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "raw.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlXPathContextPtr xp = doc ? xmlXPathNewContext(doc) : NULL;
	xmlXPathObjectPtr o = xp ? xmlXPathEvalExpression(
		BAD_CAST "/domain/devices/memory[@model='dimm']/address/@base", xp) : NULL;
	int ret = 0;

	for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr && !ret; i++) {
		xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[i]);
		char *end = NULL;
		uint64_t base;

		errno = 0;
		base = v ? strtoull((const char *)v, &end, 0) : 0;
		if (v && !errno && *v && *end == '\0' && base < KD_HOTPLUG_GPA) {
			config_error("<memory model='dimm'> <address base='0x%" PRIx64 "'>: below "
				     "0x%llx, where boot RAM and the 32-bit hole are; DIMMs live in "
				     "the hotplug window from 0x%llx", base, KD_HOTPLUG_GPA,
				     KD_HOTPLUG_GPA);
			ret = -1;
		}
		xmlFree(v);
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(xp);
	xmlFreeDoc(doc);
	return ret;
}

static int read_memory(struct reader *rd, struct vm_config *cfg)
{
	xmlXPathObjectPtr cells = xp_nodes(rd, "/domain/cpu/numa/cell");
	xmlXPathObjectPtr devs = xp_nodes(rd, "/domain/devices/memory");
	uint64_t memory = 0, dimm_total = 0;
	int ret = -1, r;
	char *balloon = NULL;

	if (read_size(rd, NULL, "/domain/memory", "/domain/memory/@unit", "<memory>", &memory) < 0)
		goto out;
	if (check_page_aligned("<memory>", memory) < 0)
		goto out;
	r = read_size(rd, NULL, "/domain/maxMemory", "/domain/maxMemory/@unit", "<maxMemory>",
		      &cfg->max_memory);
	if (r < 0)
		goto out;
	cfg->has_max_memory = r == 0;
	if (cfg->has_max_memory) {
		char *slots = xp_string(rd, NULL, "/domain/maxMemory/@slots");
		uint64_t n = 0;

		if (!slots || !parse_u64(slots, &n) || n > UINT32_MAX) {
			config_error("<maxMemory slots='%s'>: expected a slot count", slots ? slots : "");
			free(slots);
			goto out;
		}
		free(slots);
		cfg->max_slots = (unsigned int)n;
		if (check_page_aligned("<maxMemory>", cfg->max_memory) < 0)
			goto out;
	}
	cfg->current_memory = memory;
	if (read_size(rd, NULL, "/domain/currentMemory", "/domain/currentMemory/@unit",
		      "<currentMemory>", &cfg->current_memory) < 0)
		goto out;

	/* Boot RAM: the NUMA cells when there are any, else all of <memory>. */
	if (xp_count(cells) > 0) {
		cfg->boot_ram = 0;
		for (int i = 0; i < xp_count(cells); i++) {
			xmlNodePtr cell = cells->nodesetval->nodeTab[i];
			uint64_t size = 0;
			char what[64];

			snprintf(what, sizeof(what), "<numa><cell> #%d memory", i);
			if (read_size(rd, cell, "@memory", "@unit", what, &size) != 0 ||
			    check_page_aligned(what, size) < 0)
				goto out;
			cfg->boot_ram += size;
		}
	} else {
		cfg->boot_ram = memory;
	}

	for (int i = 0; i < xp_count(devs); i++) {
		xmlNodePtr dev = devs->nodesetval->nodeTab[i];
		char *model = xp_string(rd, dev, "@model");
		char *node = xp_string(rd, dev, "target/node");
		uint64_t size = 0, nodeval = 0;
		char what[64];

		if (!model || strcmp(model, "dimm") != 0) {
			config_error("<memory model='%s'>: kvm-demo supports model='dimm' only",
				     model ? model : "");
			free(model);
			free(node);
			goto out;
		}
		free(model);
		if (cfg->nr_dimms == KD_MAX_DIMMS) {
			config_error("<memory model='dimm'>: kvm-demo supports at most %u DIMMs",
				     KD_MAX_DIMMS);
			free(node);
			goto out;
		}
		snprintf(what, sizeof(what), "<memory model='dimm'> #%d <target><size>", i);
		if (read_size(rd, dev, "target/size", "target/size/@unit", what, &size) != 0 ||
		    check_page_aligned(what, size) < 0) {
			free(node);
			goto out;
		}
		/* libvirt accepts an empty DIMM; a memory slot cannot be empty. */
		if (size == 0) {
			config_error("%s 0 KiB: a DIMM must hold memory", what);
			free(node);
			goto out;
		}
		/* One rule at boot and at hotplug, so that any DIMM can come back. */
		if (size % KD_DIMM_ALIGN) {
			config_error("%s %" PRIu64 " KiB is not a multiple of %llu MiB, the DIMM "
				     "granularity", what, size >> 10, KD_DIMM_ALIGN >> 20);
			free(node);
			goto out;
		}
		if (node)
			parse_u64(node, &nodeval);
		free(node);
		if (read_dimm_base(rd, dev, i, &cfg->dimms[cfg->nr_dimms].base) < 0)
			goto out;
		cfg->dimms[cfg->nr_dimms].size = size;
		cfg->dimms[cfg->nr_dimms].node = (unsigned int)nodeval;
		cfg->nr_dimms++;
		dimm_total += size;
	}

	/* What libvirt accepts and a hypervisor must refuse. */
	if (cfg->nr_dimms > 0 && !cfg->has_max_memory) {
		config_error("<memory model='dimm'>: %u hot-pluggable DIMM%s but no <maxMemory slots='N'>",
			     cfg->nr_dimms, cfg->nr_dimms == 1 ? "" : "s");
		goto out;
	}
	if (cfg->has_max_memory && cfg->nr_dimms > cfg->max_slots) {
		config_error("<memory model='dimm'>: %u DIMMs but <maxMemory slots='%u'>",
			     cfg->nr_dimms, cfg->max_slots);
		goto out;
	}
	if (cfg->has_max_memory && cfg->boot_ram + dimm_total > cfg->max_memory) {
		config_error("<memory> %" PRIu64 " KiB (boot RAM %" PRIu64 " KiB + DIMMs %" PRIu64
			     " KiB) is above <maxMemory> %" PRIu64 " KiB",
			     (cfg->boot_ram + dimm_total) >> 10, cfg->boot_ram >> 10,
			     dimm_total >> 10, cfg->max_memory >> 10);
		goto out;
	}
	if (check_dimm_bases(cfg) < 0)
		goto out;
	if (cfg->boot_ram == 0) {
		config_error("<memory>: no boot RAM");
		goto out;
	}
	if (cfg->boot_ram > KD_HOTPLUG_GPA - KD_HOTPLUG_GPA / 4) {
		config_error("<memory>/<numa><cell> boot RAM %" PRIu64 " MiB: kvm-demo places boot RAM "
			     "below 3 GiB", cfg->boot_ram >> 20);
		goto out;
	}
	{
		uint64_t hotplug = cfg->has_max_memory ? cfg->max_memory - cfg->boot_ram : 0;

		if (hotplug > (uint64_t)KD_MAX_PDS * 1024 * MIB - KD_HOTPLUG_GPA) {
			config_error("<maxMemory> %" PRIu64 " MiB: the hotplug window above 4 GiB "
				     "may span at most %llu GiB", cfg->max_memory >> 20,
				     (unsigned long long)KD_MAX_PDS - 4);
			goto out;
		}
	}

	balloon = xp_string(rd, NULL, "/domain/devices/memballoon/@model");
	if (balloon && strcmp(balloon, "virtio") != 0 && strcmp(balloon, "none") != 0) {
		config_error("<memballoon model='%s'>: expected 'virtio' or 'none'", balloon);
		goto out;
	}
	cfg->balloon = balloon && strcmp(balloon, "virtio") == 0;
	/* <currentMemory> is the balloon's target from boot on (vm.c). */
	if (cfg->current_memory < memory && !cfg->balloon) {
		config_error("<currentMemory> %" PRIu64 " KiB is below <memory> %" PRIu64 " KiB "
			     "but there is no <memballoon model='virtio'> to hold the difference",
			     cfg->current_memory >> 10, memory >> 10);
		goto out;
	}
	ret = 0;
out:
	free(balloon);
	xmlXPathFreeObject(cells);
	xmlXPathFreeObject(devs);
	return ret;
}

/*
 * kvm-demo's own settings:
 * <metadata><kd:kvm-demo><kd:selftest passes='N' inject-flip='yes|no'/>.
 */
static int read_metadata(struct reader *rd, struct vm_config *cfg)
{
	char *passes = xp_string(rd, NULL, "/domain/metadata/kd:kvm-demo/kd:selftest/@passes");
	char *flip = xp_string(rd, NULL, "/domain/metadata/kd:kvm-demo/kd:selftest/@inject-flip");
	uint64_t n;

	cfg->passes = 0;
	cfg->inject_flip = flip && strcmp(flip, "yes") == 0;
	if (flip && !cfg->inject_flip && strcmp(flip, "no") != 0) {
		config_error("<metadata><kd:selftest inject-flip='%s'> (namespace %s): expected 'yes' or 'no'",
			     flip, KD_METADATA_NS);
		free(flip);
		free(passes);
		return -1;
	}
	free(flip);
	if (!passes)
		return 0;
	if (!parse_u64(passes, &n) || n == 0 || n > 100000) {
		config_error("<metadata><kd:selftest passes='%s'> (namespace %s): expected 1 to 100000",
			     passes, KD_METADATA_NS);
		free(passes);
		return -1;
	}
	free(passes);
	cfg->passes = (unsigned int)n;
	return 0;
}

/*
 * The vhost-like device's guest driver:
 * <metadata><kd:kvm-demo><kd:vdev mode='traffic|hostile' requests='N'/>.
 */
static int read_vdev(struct reader *rd, struct vm_config *cfg)
{
	char *mode = xp_string(rd, NULL, "/domain/metadata/kd:kvm-demo/kd:vdev/@mode");
	char *reqs = xp_string(rd, NULL, "/domain/metadata/kd:kvm-demo/kd:vdev/@requests");
	uint64_t n = 1000;
	int ret = 0;

	cfg->vdev_mode = KD_VDEV_MODE_OFF;
	if (mode && strcmp(mode, "traffic") == 0) {
		cfg->vdev_mode = KD_VDEV_MODE_TRAFFIC;
	} else if (mode && strcmp(mode, "hostile") == 0) {
		cfg->vdev_mode = KD_VDEV_MODE_HOSTILE;
	} else if (mode && strcmp(mode, "off") != 0) {
		config_error("<metadata><kd:vdev mode='%s'> (namespace %s): expected 'traffic', "
			     "'hostile' or 'off'", mode, KD_METADATA_NS);
		ret = -1;
	}
	if (ret == 0 && reqs && (!parse_u64(reqs, &n) || n == 0 || n > 1000000)) {
		config_error("<metadata><kd:vdev requests='%s'> (namespace %s): expected 1 to 1000000",
			     reqs, KD_METADATA_NS);
		ret = -1;
	}
	cfg->vdev_requests = (unsigned int)n;
	free(mode);
	free(reqs);
	return ret;
}

/*
 * <disk type='vhostuser' device='disk'> with <source type='unix'
 * path='...'/> and <target bus='virtio'/>: a disk served by a vhost-user
 * backend listening on that socket. One at most; the backend maps guest
 * RAM from its fds, so the backing must be shared memfd.
 */
static int read_disk(struct reader *rd, struct vm_config *cfg)
{
	xmlXPathObjectPtr disks = xp_nodes(rd, "/domain/devices/disk");
	char *type = NULL, *device = NULL, *stype = NULL, *path = NULL, *bus = NULL;
	int n = xp_count(disks), ret = -1;
	xmlNodePtr node;

	if (n == 0) {
		ret = 0;
		goto out;
	}
	if (n > 1) {
		config_error("%d <disk> elements: kvm-demo serves one disk", n);
		goto out;
	}
	node = disks->nodesetval->nodeTab[0];
	type = xp_string(rd, node, "@type");
	device = xp_string(rd, node, "@device");
	stype = xp_string(rd, node, "source/@type");
	path = xp_string(rd, node, "source/@path");
	bus = xp_string(rd, node, "target/@bus");
	if (!type || strcmp(type, "vhostuser") != 0) {
		config_error("<disk type='%s'>: kvm-demo serves type='vhostuser' disks only (a "
			     "vhost-user backend such as qemu-storage-daemon)", type ? type : "");
	} else if (device && strcmp(device, "disk") != 0) {
		config_error("<disk type='vhostuser' device='%s'>: expected device='disk'", device);
	} else if (!stype || strcmp(stype, "unix") != 0 || !path || !*path) {
		config_error("<disk type='vhostuser'>: expected <source type='unix' path='...'/>, "
			     "the backend's socket");
	} else if (!bus || strcmp(bus, "virtio") != 0) {
		config_error("<disk type='vhostuser'><target bus='%s'>: expected bus='virtio'",
			     bus ? bus : "");
	} else if (!cfg->memfd || !cfg->shared) {
		config_error("<disk type='vhostuser'>: the backend maps guest RAM from fds: needs "
			     "<memoryBacking><source type='memfd'/><access mode='shared'/>");
	} else {
		cfg->disk_socket = path;
		path = NULL;
		ret = 0;
	}
out:
	xmlXPathFreeObject(disks);
	free(type);
	free(device);
	free(stype);
	free(path);
	free(bus);
	return ret;
}

static int read_config(struct vm_config *cfg)
{
	struct reader rd = { 0 };
	int ret = -1;

	rd.doc = xmlReadMemory(cfg->xml, (int)strlen(cfg->xml), "normalised.xml", NULL,
			       XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!rd.doc) {
		config_error("cannot parse libvirt's normalised XML");
		return -1;
	}
	rd.xp = xmlXPathNewContext(rd.doc);
	if (!rd.xp || xmlXPathRegisterNs(rd.xp, BAD_CAST "kd", BAD_CAST KD_METADATA_NS) != 0) {
		config_error("cannot set up XPath: out of memory");
		goto out;
	}
	if (read_basics(&rd, cfg) < 0 || read_backing(&rd, cfg) < 0 ||
	    read_memory(&rd, cfg) < 0 || read_metadata(&rd, cfg) < 0 ||
	    read_vdev(&rd, cfg) < 0 || read_disk(&rd, cfg) < 0)
		goto out;
	ret = 0;
out:
	xmlXPathFreeContext(rd.xp);
	xmlFreeDoc(rd.doc);
	return ret;
}

int config_load(struct vm_config *cfg, const char *path)
{
	char what[600];
	char *xml;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	xmlSetGenericErrorFunc(NULL, quiet_xml_error);
	if (path) {
		snprintf(what, sizeof(what), "config %s", path);
		xml = read_file(path);
		if (!xml)
			return -1;
	} else {
		snprintf(what, sizeof(what), "built-in config");
		xml = strdup(kd_default_domain_xml);
		if (!xml) {
			config_error("out of memory");
			return -1;
		}
	}
	ret = config_load_string(cfg, what, xml);
	free(xml);
	return ret;
}

int config_load_string(struct vm_config *cfg, const char *what, const char *xml)
{
	memset(cfg, 0, sizeof(*cfg));
	xmlSetGenericErrorFunc(NULL, quiet_xml_error);
	if (check_well_formed(what, xml) < 0)
		return -1;
	if (check_raw_dimm_bases(xml) < 0)
		return -1;
	cfg->xml = libvirt_normalise(what, xml);
	if (!cfg->xml || read_config(cfg) < 0) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

/*
 * The fragment alone must be one <memory> element: anything more (a second
 * DIMM, another device) would be spliced in too, and attach-device plugs
 * one DIMM.
 */
static bool one_memory_element(const char *fragment)
{
	xmlDocPtr doc = xmlReadMemory(fragment, (int)strlen(fragment), "fragment.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	bool ok = root && !root->ns && xmlStrcmp(root->name, BAD_CAST "memory") == 0;

	xmlFreeDoc(doc);
	return ok;
}

int config_parse_dimm(const char *base, const char *fragment, struct dimm_config *dimm,
		      char *err, size_t errlen)
{
	struct vm_config cfg;
	const char *pos;
	char *full;
	int ret;

	if (!one_memory_element(fragment)) {
		snprintf(err, errlen, "expected one <memory model='dimm'> element");
		return -1;
	}
	pos = strstr(base, "</devices>");
	if (!pos) {
		snprintf(err, errlen, "the current definition has no <devices>");
		return -1;
	}
	if (asprintf(&full, "%.*s%s\n%s", (int)(pos - base), base, fragment, pos) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ret = config_load_string(&cfg, "the DIMM definition", full);
	free(full);
	if (ret < 0) {
		snprintf(err, errlen, "%s", kd_last_error());
		return -1;
	}
	if (cfg.nr_dimms == 0) {
		config_free(&cfg);
		snprintf(err, errlen, "the fragment holds no <memory model='dimm'>");
		return -1;
	}
	*dimm = cfg.dimms[cfg.nr_dimms - 1];
	config_free(&cfg);
	return 0;
}

void config_free(struct vm_config *cfg)
{
	/* Both were allocated by libvirt or libxml2 users with malloc(). */
	free(cfg->xml);
	free(cfg->name);
	free(cfg->disk_socket);
	cfg->xml = NULL;
	cfg->name = NULL;
	cfg->disk_socket = NULL;
}
