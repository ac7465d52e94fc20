/* SPDX-License-Identifier: MIT */
/*
 * The VM definition, read from libvirt domain XML (config.c): validation by
 * libvirt, reading by libxml2, the checks libvirt leaves to the hypervisor.
 * Needs only core/util.h below it.
 */
#ifndef KVM_DEMO_CONFIG_DOMAIN_H
#define KVM_DEMO_CONFIG_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KD_MAX_DIMMS		16u
#define KD_CONFIG_MAX_BYTES	(128 << 10)	/* a --config file; larger ones are refused */

/* DIMM sizes and bases, at boot and at hotplug alike. */
#define KD_DIMM_ALIGN		(2ull << 20)

struct dimm_config {
	uint64_t size;			/* bytes, a multiple of KD_DIMM_ALIGN */
	uint64_t base;			/* <address base>: its GPA; 0: kvm-demo places it */
	unsigned int node;		/* NUMA cell */
};

struct vm_config {
	char *name;
	char *xml;			/* libvirt's normalised definition */
	unsigned int nr_vcpus;
	uint64_t boot_ram;		/* bytes: the NUMA cells, or <memory> */
	bool has_max_memory;
	uint64_t max_memory;		/* <maxMemory>, bytes */
	unsigned int max_slots;		/* <maxMemory slots='N'> */
	uint64_t current_memory;	/* <currentMemory>: the balloon target */
	bool balloon;			/* <memballoon model='virtio'> */
	bool memfd;			/* <memoryBacking><source type='memfd'/> */
	bool shared;			/* <memoryBacking><access mode='shared'/> */
	unsigned int nr_dimms;
	struct dimm_config dimms[KD_MAX_DIMMS];
	unsigned int passes;		/* <metadata>: self-test passes, 0 = nr_vcpus */
	bool inject_flip;		/* <metadata>: corrupt one word to prove detection */
	unsigned int vdev_mode;		/* <metadata><kd:vdev mode>: KD_VDEV_MODE_* */
	unsigned int vdev_requests;	/* <metadata><kd:vdev requests> */
	/* <disk type='vhostuser'><source type='unix' path=...>: a backend's socket */
	char *disk_socket;
	/* --disk-image: kvm-demo runs qemu-storage-daemon on this image (not owned) */
	const char *disk_image;
};

/* The private namespace of kvm-demo's settings under <metadata>. */
#define KD_METADATA_NS		"urn:x-libmmn:kvm-demo:1"

extern const char kd_default_domain_xml[];

/*
 * Read PATH (NULL: the embedded default), have libvirt validate and
 * normalise it, then fill CFG. On failure prints one line naming the
 * problem and returns -1.
 */
int config_load(struct vm_config *cfg, const char *path);
/* The same for a definition in memory; WHAT names it in errors. */
int config_load_string(struct vm_config *cfg, const char *what, const char *xml);
void config_free(struct vm_config *cfg);
/*
 * A <memory model='dimm'> FRAGMENT checked the way a domain is: spliced
 * into BASE (a domain definition) before </devices>, then through
 * config_load_string() (libvirt's validation and kvm-demo's checks).
 * Returns 0 with the new DIMM's size, base and NUMA node in DIMM, or -1
 * with one line naming the problem in ERR.
 */
int config_parse_dimm(const char *base, const char *fragment, struct dimm_config *dimm,
		      char *err, size_t errlen);

#endif
