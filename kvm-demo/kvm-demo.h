/* SPDX-License-Identifier: MIT */
/*
 * kvm-demo: a small KVM VMM. One file per concern, struct vm * first:
 *   main.c    options, signals, the main thread's wait, the summary
 *   config.c  libvirt domain XML: validation by libvirt, reading by libxml2,
 *             the checks libvirt leaves to the hypervisor
 *   vm.c      the VM: /dev/kvm, layout, guest loading, page tables, start/stop
 *   memory.c  RAM regions (host backing) and their KVM memory slots
 *   vcpu.c    vCPU threads: long-mode setup, the KVM_RUN loop, kicks
 *   ports.c   port I/O: the serial port and the result/progress ports
 */
#ifndef KVM_DEMO_H
#define KVM_DEMO_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "guest/abi.h"

struct vm;
struct mmn_state;

#define KD_PAGE_SIZE		4096ull
#define KD_MAX_DIMMS		16u

/* Exit statuses besides the guest's own result (0 pass, 1 fail). */
#define KD_EXIT_USAGE		2	/* bad option or bad input: nothing started */
#define KD_EXIT_HOST		3	/* KVM or host failure, or the guest crashed */
#define KD_EXIT_STOPPED		4	/* stopped by SIGINT or SIGTERM before the guest's result */

/* ---- config.c: the VM definition, read from libvirt domain XML ---- */

struct dimm_config {
	uint64_t size;			/* bytes */
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
void config_free(struct vm_config *cfg);

/* ---- memory.c: RAM regions, one KVM memory slot each ---- */

struct mem_region {
	char name[16];			/* "boot", "dimm0", ... */
	uint64_t gpa;
	uint64_t size;
	void *hva;			/* host mapping, MAP_SHARED on a memfd or anonymous */
	int memfd;			/* -1 for anonymous backing */
	uint32_t slot;			/* KVM slot id */
	bool slot_active;
};

int memory_region_alloc(struct vm *vm, struct mem_region *r, const char *name,
			uint64_t gpa, uint64_t size);
int memory_region_map_slot(struct vm *vm, struct mem_region *r);
void memory_region_unmap_slot(struct vm *vm, struct mem_region *r);
void memory_region_free(struct vm *vm, struct mem_region *r);
/* Host address of [GPA, GPA + LEN) inside one region, or NULL. */
void *memory_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len);
/*
 * The translation a device uses: the host address of [GPA, GPA + LEN),
 * which must lie in one RAM region, for reading or (WRITE) writing.
 * Returns 0, -EFAULT (not guest RAM: outside every region, or the
 * length overflows) or -EACCES (WRITE to memory that is read-only now).
 * Safe from any thread, concurrently with changes to the regions; the
 * answer is current when given, so callers that cache it must hold a
 * subscription on vm->guest_mm and use the read_begin/read_retry pattern.
 */
int memory_translate(struct vm *vm, uint64_t gpa, uint64_t len, bool write, void **hva);

/* ---- vcpu.c ---- */

struct vcpu {
	struct vm *vm;
	unsigned int index;
	int fd;
	struct kvm_run *run;		/* mmap of the vCPU fd */
	pthread_t thread;
	bool thread_started;		/* set under vm->stop_lock; cleared after join */
	uint64_t exits;			/* written by the vCPU thread only */
};

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned int index);
int vcpu_start(struct vm *vm, struct vcpu *vcpu);
/* Get VCPU out of KVM_RUN soon (immediate_exit + signal); safe from any thread. */
void vcpu_kick(struct vm *vm, struct vcpu *vcpu);
void vcpu_join(struct vm *vm, struct vcpu *vcpu);
void vcpu_destroy(struct vm *vm, struct vcpu *vcpu);
/* The signal used to kick vCPUs; its handler does nothing. */
#define KD_KICK_SIGNAL		SIGUSR1
int vcpu_init_kick_signal(void);

/* ---- ports.c ---- */

/* Handles one KVM_EXIT_IO; returns false when the VM must stop. */
bool ports_handle_io(struct vm *vm, struct vcpu *vcpu);
/* Flushes a partial serial line. */
void ports_flush(struct vm *vm);

/* ---- vdev.c: the vhost-like device ---- */

struct vdev;
/* The device and its worker; after the RAM regions exist. */
int vdev_create(struct vm *vm);
/* Stops the worker; before the RAM regions go. */
void vdev_destroy(struct vm *vm);
/* Port I/O of the device from a vCPU thread; false: not the device's port. */
bool vdev_handle_io(struct vm *vm, uint16_t port, bool out, uint8_t *data, uint8_t size);
/* One line of figures (device and shadow map) into BUF; snprintf's return. */
int vdev_stats(struct vm *vm, char *buf, size_t len);

/* ---- vm.c ---- */

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_GUEST,			/* the guest wrote the result port */
	VM_STOP_SIGNAL,			/* SIGINT or SIGTERM */
	VM_STOP_ERROR,			/* a vCPU failed: unexpected exit, KVM error */
};

struct vm {
	const struct vm_config *cfg;
	const void *image;		/* the flat guest image */
	size_t image_size;
	int kvm_fd;
	int vm_fd;
	size_t run_size;		/* KVM_GET_VCPU_MMAP_SIZE */
	struct mmn_state *host_mm;	/* the host address space guest RAM lives in */
	/*
	 * The guest-physical address space (keys are GPAs). Whoever changes
	 * what a GPA range maps to invalidates it here first, so that devices
	 * caching GPA-to-HVA translations drop them in time.
	 */
	struct mmn_state *guest_mm;
	struct vdev *vdev;		/* the vhost-like device */

	/* Readers: memory_translate(); writers: whoever changes the regions. */
	pthread_rwlock_t mem_lock;
	unsigned int nr_regions;			/* mem_lock */
	struct mem_region regions[1 + KD_MAX_DIMMS];	/* mem_lock; [0] is boot RAM */
	uint64_t map_end;		/* the identity map covers [0, map_end) */

	unsigned int nr_vcpus;
	struct vcpu vcpus[KD_MAX_VCPUS];

	/*
	 * Stop protocol: the first stop request wins and kicks every vCPU under
	 * stop_lock; the main thread waits on stop_fd.
	 */
	pthread_mutex_t stop_lock;
	enum vm_stop_reason stop_reason;	/* protected by stop_lock */
	int guest_result;			/* protected by stop_lock */
	atomic_bool stopping;			/* read by vCPU threads before KVM_RUN */
	atomic_uint running_vcpus;		/* vCPU threads not yet finished */
	int stop_fd;				/* eventfd: written once on the first stop */

	/* The serial line buffer, protected by serial_lock. */
	pthread_mutex_t serial_lock;
	char serial_line[256];
	size_t serial_len;

	atomic_uint_least64_t pages_verified;	/* reported by the guest */
	uint64_t test_bytes;			/* RAM handed to the self-test */
	atomic_bool flip_injected;		/* inject-flip done */
	unsigned int passes;
};

/* Checks the guest image against the layout; nothing is opened. */
int vm_check_image(const struct vm_config *cfg, const void *image, size_t size);
int vm_create(struct vm *vm, const struct vm_config *cfg, const void *image, size_t size);
int vm_start(struct vm *vm);
/* Records why the VM stops (first caller wins) and kicks every vCPU. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int result);
void vm_destroy(struct vm *vm);

/* Errors: "kvm-demo: " + message on stderr, one line. */
__attribute__((format(printf, 1, 2)))
void kd_error(const char *fmt, ...);

extern const unsigned char kd_guest_image[];
extern const unsigned char kd_guest_image_end[];

#endif
