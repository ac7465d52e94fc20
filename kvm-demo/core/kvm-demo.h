/* SPDX-License-Identifier: MIT */
/*
 * kvm-demo: a small KVM VMM. One file per concern, struct vm * first:
 *   main.c    options, signals, the main thread's wait, the summary
 *   config.c  libvirt domain XML: validation by libvirt, reading by libxml2,
 *             the checks libvirt leaves to the hypervisor
 *   vm.c      the VM: /dev/kvm, layout, guest loading, page tables, start/stop
 *   image.c   the guest image's header check (pure: no I/O, no VM)
 *   memory.c  RAM regions (host backing) and their KVM memory slots
 *   vcpu.c    vCPU threads: long-mode setup, the KVM_RUN loop, kicks
 *   ports.c   port I/O: the serial port and the result/progress ports
 *   slots.c   slot sync: host-side invalidations pause the vCPUs, update
 *             the KVM slots and propagate to the guest-physical state
 *   memops.c  operations while the guest runs: hotplug, unplug, balloon,
 *             remap, protect (through libmmn's brackets only)
 *   control.c the control command parser (pure: no I/O, no VM)
 *   ctlio.c   the control socket's server thread and client (no VM)
 *   ctlsock.c what the control commands do to the VM; --ctl-script
 *   chaos.c   --chaos: random operations and the invariant report
 *   scenario.c the default run's scripted operations, one line each
 *   bench.c   --bench: slot remap and quiescence figures for make bench
 */
#ifndef KVM_DEMO_H
#define KVM_DEMO_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/kvm.h>

#include <mmn/mmn.h>

#include "control.h"
#include "guest/abi.h"

struct vm;
struct mmn_state;

#define KD_PAGE_SIZE		4096ull
#define KD_MAX_DIMMS		16u
/* The guest-physical space: x86-64's widest physical address is 52 bits. */
#define KD_GPA_SPACE_END	(1ull << 52)

/* Segment selectors in the GDT vm.c builds. */
#define KD_SEL_CODE64		0x08
#define KD_SEL_DATA		0x10

/* Exit statuses besides the guest's own result (a KD_RESULT_*, guest/abi.h). */
#define KD_EXIT_USAGE		2	/* bad option or bad input: nothing started */
#define KD_EXIT_HOST		3	/* KVM or host failure, or the guest crashed */
#define KD_EXIT_STOPPED		4	/* stopped by SIGINT or SIGTERM before the guest's result */

/* ---- config.c: the VM definition, read from libvirt domain XML ---- */

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

/* ---- memory.c: RAM regions, one KVM memory slot each ---- */

struct mem_region {
	char name[16];			/* "boot", "dimm0", ... */
	uint64_t gpa;
	uint64_t size;
	void *hva;			/* host mapping, MAP_SHARED on a memfd or anonymous */
	int memfd;			/* -1 for anonymous backing */
	uint32_t slot;			/* KVM slot id */
	bool slot_active;
	/* Slot sync (slots.c). Fields below: written under mem_lock (write). */
	bool plugged;			/* holds RAM the guest may use */
	bool readonly;			/* host mapping read-only (protect) */
	bool subscribed;		/* host_sub is inserted */
	struct mmn_range_sub host_sub;	/* on vm->host_mm over [hva, hva + size) */
	struct mmn_uffd_watch *watch;	/* the backstop over the same range */
	unsigned int node;		/* NUMA cell, for dumpxml */
	bool readonly_next;		/* ops_lock: protection being set */
	bool moving;			/* mem_lock: a REMAP is in its bracket */
	struct vm *vm;
};

int memory_region_alloc(struct vm *vm, struct mem_region *r, const char *name,
			uint64_t gpa, uint64_t size);
int memory_region_map_slot(struct vm *vm, struct mem_region *r);
void memory_region_unmap_slot(struct vm *vm, struct mem_region *r);
void memory_region_free(struct vm *vm, struct mem_region *r);
/* Host address of [GPA, GPA + LEN) inside one plugged region, or NULL; mem_lock held. */
void *memory_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len);
/*
 * The translation a device uses: the host address of [GPA, GPA + LEN),
 * which must lie in one RAM region, for reading or (WRITE) writing.
 * Returns 0, -EFAULT (not guest RAM: outside every region, unplugged,
 * ballooned out, or the length overflows), -EACCES (WRITE to memory that
 * is read-only now) or -EAGAIN (the region is moving: a REMAP is inside
 * its invalidation of vm->guest_mm; mmn_range_read_begin() waits it out).
 * Safe from any thread, concurrently with changes to the regions; the
 * answer is current when given, so callers that cache it must hold a
 * subscription on vm->guest_mm and use the read_begin/read_retry pattern.
 */
int memory_translate(struct vm *vm, uint64_t gpa, uint64_t len, bool write, void **hva);

/* ---- slots.c: slot sync ---- */

/* One host-side invalidation being propagated (slots.c). */
struct slot_inval {
	const struct mmn_invalidate_desc *host;	/* NULL: free entry */
	struct mmn_invalidate_desc guest;	/* started on vm->guest_mm */
	struct mem_region *region;
	bool paused;				/* holds a vm_pause() */
	bool slot_removed;
	/* What apply_start() changed, for a cancel (the change is off). */
	bool was_plugged, was_moving, was_readonly;
	uint64_t was_balloon_size;
};
#define KD_MAX_INVALS		16u

/* Counters of the memory layer; read by stats and the chaos report. */
struct kd_counters {
	atomic_uint_least64_t host_invalidations;	/* range callbacks run */
	atomic_uint_least64_t guest_invalidations;	/* started on guest_mm */
	atomic_uint_least64_t refusals;		/* non-blockable callbacks refused */
	atomic_uint_least64_t reclaim_retries;	/* reclaim passes that met a refusal */
	atomic_uint_least64_t pauses;		/* vCPU stop-the-world episodes */
	atomic_uint_least64_t slot_updates;	/* KVM_SET_USER_MEMORY_REGION changes */
	atomic_uint_least64_t unbracketed;	/* changes seen only by the backstop */
	atomic_uint_least64_t protect_stalls;	/* vCPU writes that waited for unprotect */
	atomic_uint_least64_t stale_exits;	/* MMIO or EFAULT at RAM: missing/stale slot */
	atomic_uint_least64_t hotplugs, unplugs, unplug_timeouts;
	atomic_uint_least64_t remaps, protects, balloon_changes;
	atomic_uint_least64_t pause_ns_total, pause_ns_max;	/* pause to resume */
};

int slots_init(struct vm *vm);		/* the whole-space sub on host_mm */
void slots_fini(struct vm *vm);
/* Subscribes R's host range and starts its backstop; R is mapped. */
int slots_track(struct vm *vm, struct mem_region *r);
/* Undoes slots_track(); not from a callback. */
void slots_untrack(struct vm *vm, struct mem_region *r);
/*
 * Stop every vCPU out of KVM_RUN and wait until each has acknowledged
 * (parked). Nests. vm_resume() lets them go when the last pause ends.
 */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
/* vCPU threads: park while paused (or, WAIT_PROTECT, while memory is protected). */
void vcpu_park(struct vm *vm, bool wait_protect);
/* Whether GPA lies in a RAM region (plugged or not): for the stale-slot check. */
bool memory_is_ram_gpa(struct vm *vm, uint64_t gpa);

/* ---- memops.c: operations while the guest runs (serialised by ops_lock) ---- */

/* Each returns 0 or -1 after writing one line naming the problem to ERR. */
int memops_hotplug(struct vm *vm, uint64_t size, unsigned int node, char *err, size_t errlen);
int memops_hotplug_xml(struct vm *vm, const char *xml, char *err, size_t errlen);
int memops_unplug(struct vm *vm, unsigned int slot, char *err, size_t errlen);
int memops_unplug_xml(struct vm *vm, const char *xml, char *err, size_t errlen);
int memops_setmem(struct vm *vm, uint64_t bytes, char *err, size_t errlen);
/* FLAGS: 0 or MMN_NONBLOCK (then -EAGAIN when a callback refused). */
int memops_remap(struct vm *vm, unsigned int slot, unsigned int flags, char *err, size_t errlen);
int memops_protect(struct vm *vm, unsigned int slot, bool on, char *err, size_t errlen);
/* Non-blocking reclaim: discard the balloon with MMN_NONBLOCK; 1 if refused. */
int memops_reclaim(struct vm *vm);
/* The current definition (hotplugged DIMMs included); caller frees. */
char *memops_dumpxml(struct vm *vm);
/* Called by ports.c when the guest answers a mailbox request. */
void memops_mailbox_answered(struct vm *vm, uint32_t seq);
/* Teardown of the operations' state. */
void memops_fini(struct vm *vm);

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
/* After a crash: the vCPU's nonzero KVM counters, on one line of stderr. */
void vcpu_print_kvm_stats(struct vcpu *vcpu);
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

/* ---- ctlsock.c: the control socket's commands (control.h: its server) ---- */

int ctl_start(struct ctl_server *s, struct vm *vm);
void ctl_stop(struct ctl_server *s);
int ctl_script_start(struct vm *vm, struct ctl_server *s, const char *path);
unsigned int ctl_script_join(void);
uint64_t kd_rss_kib(void);
void kd_stats_print(struct vm *vm, FILE *f);

/* ---- chaos.c: --chaos ---- */

/*
 * Something else that takes part in --chaos (a device, say): op() runs one
 * random operation (RND is random bits) and returns 0 or -1 with ERR set;
 * report() adds lines to the report; broken() says whether an invariant of
 * the participant's broke. Register before chaos_start().
 */
struct chaos_participant {
	const char *name;
	int (*op)(struct vm *vm, uint64_t rnd, char *err, size_t errlen);
	/* Stop the participant's threads before the report: final figures. */
	void (*quiesce)(struct vm *vm);
	void (*report)(struct vm *vm, FILE *f);
	bool (*broken)(struct vm *vm);
};
int chaos_register(const struct chaos_participant *p);
int chaos_start(struct vm *vm, unsigned int seconds, uint64_t seed);
/* Joins the chaos thread, prints the report; returns true if an invariant broke. */
bool chaos_finish(struct vm *vm, FILE *f);

/* ---- scenario.c: the demo's scripted memory operations ---- */

/*
 * While the guest's self-test runs (KD_MB_F_QUIET, many passes) and the
 * device moves data between passes: hotplug a DIMM, balloon down and up,
 * remap boot RAM, write-protect and release a slot, unplug the DIMM; one
 * line per step, then the guest is asked to finish (KD_MB_F_FINISH).
 */
int scenario_start(struct vm *vm);
/* Joins the scenario; prints its summary; true if a step failed or anything was stale. */
bool scenario_finish(struct vm *vm, FILE *f);

/* ---- bench.c: --bench ---- */

/*
 * Timestamps (kd_now()) of one move of a slot, taken where bench.c says.
 * t_running is written under pause_lock; the others by the moving thread.
 */
struct kd_bench_marks {
	double t_start, t_device, t_quiesced, t_running;
};
/* Moves boot RAM REPS times, prints the figures, then stops the VM. */
int bench_start(struct vm *vm, unsigned int reps);
void bench_join(void);

/* ---- vdev.c: the vhost-like device ---- */

struct vdev;
/* The device and its worker; after the RAM regions exist. */
int vdev_create(struct vm *vm);
/* Stops the worker; before the RAM regions go. */
void vdev_destroy(struct vm *vm);
/* Port I/O of the device from a vCPU thread; false: not the device's port. */
bool vdev_handle_io(struct vm *vm, uint16_t port, bool out, uint8_t *data, uint8_t size);
/* One line of figures of the device, of its shadow map, into BUF; snprintf's return. */
int vdev_stats(struct vm *vm, char *buf, size_t len);
int vdev_shadow_stats(struct vm *vm, char *buf, size_t len);
/* Requests completed fine so far, and those that failed, were rejected, met a
 * ring fault or a stale translation. */
void vdev_counts(struct vm *vm, uint64_t *ok, uint64_t *errors);
/* --chaos drives device traffic too: the guest's mode, the checker, the report. */
int vdev_chaos_enable(struct vm *vm);
/* Batches of REQUESTS (1 to KD_VDEV_CHAOS_BATCH) between passes, checker on, without --chaos. */
int vdev_batches_enable(struct vm *vm, unsigned int requests);
/* The device's figures so far, for the demo's lines. */
struct vdev_figures {
	uint64_t ok, bytes, errors;		/* requests done, data moved, failures */
	uint64_t invalidations, dropped;	/* of its shadow map */
	uint64_t checked, stale;		/* accesses checked, stale translations used */
};
void vdev_figures(struct vm *vm, struct vdev_figures *f);

/* ---- vm.c ---- */

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_GUEST,			/* the guest wrote the result port */
	VM_STOP_SIGNAL,			/* SIGINT or SIGTERM */
	VM_STOP_ERROR,			/* a vCPU failed: unexpected exit, KVM error */
	VM_STOP_CONTROL,		/* 'shutdown' on the control socket, or --chaos ended */
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
	double stop_time;			/* kd_now() of the stop; stop_lock */
	atomic_bool stopping;			/* read by vCPU threads before KVM_RUN */
	atomic_uint running_vcpus;		/* vCPU threads not yet finished */
	int stop_fd;				/* eventfd: written once on the first stop */

	/* The serial line buffer, protected by serial_lock. */
	pthread_mutex_t serial_lock;
	char serial_line[256];
	size_t serial_len;

	/* ---- slot sync and memory operations (slots.c, memops.c) ---- */
	pthread_mutex_t ops_lock;		/* serialises memory operations */
	pthread_mutex_t pause_lock;		/* the fields below up to parked */
	pthread_cond_t pause_cond;		/* parked changes, pause ends, unprotect */
	unsigned int pause_depth;		/* pause_lock */
	unsigned int parked;			/* pause_lock: vCPUs parked */
	unsigned int protected_regions;		/* pause_lock */
	atomic_bool pause_requested;		/* read by vCPUs before KVM_RUN */
	double pause_started;			/* pause_lock: for latency */
	struct kd_bench_marks *bench;		/* pause_lock: --bench is timing a move */
	pthread_mutex_t inval_lock;		/* invals[] */
	struct slot_inval invals[KD_MAX_INVALS];
	struct mmn_sub layout_sub;		/* learns when host changes end */
	bool layout_sub_registered;
	struct kd_counters counters;
	struct kd_mailbox *mailbox;		/* host address of the mailbox page */
	pthread_mutex_t mb_lock;		/* mb_answered */
	pthread_cond_t mb_cond;
	uint32_t mb_seq;			/* ops_lock: last request number */
	uint32_t mb_answered;			/* mb_lock: last answer seen */
	unsigned int unplug_timeout_ms;		/* how long a guest may take to ack */
	uint64_t balloon_gpa, balloon_size;	/* mem_lock: discarded, not returned */
	uint64_t balloon_next_size;		/* ops_lock: what a discard makes it */
	uint64_t balloon_end;			/* the balloon is [end - size, end) */
	uint64_t balloon_cap;			/* the most the guest gives back */
	uint64_t balloon_target;		/* ops_lock: bytes the guest gave back */
	uint64_t hotplug_next_gpa;		/* ops_lock */
	uint64_t dimm_bytes;			/* ops_lock: plugged DIMM bytes */
	char *dumpxml_base;			/* ops_lock: the domain without DIMMs */

	atomic_uint_least64_t pages_verified;	/* reported by the guest */
	uint64_t test_bytes;			/* RAM handed to the self-test */
	atomic_bool flip_injected;		/* inject-flip done */
	unsigned int passes;
};

/* Checks the guest image's header against the layout (image.c); reads the header only. */
int vm_check_image(const struct vm_config *cfg, const void *image, size_t size);
int vm_create(struct vm *vm, const struct vm_config *cfg, const void *image, size_t size);
int vm_start(struct vm *vm);
/* Records why the VM stops (first caller wins) and kicks every vCPU. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int result);
void vm_destroy(struct vm *vm);

/* Errors: "kvm-demo: " + message on stderr, one line. */
__attribute__((format(printf, 1, 2)))
void kd_error(const char *fmt, ...);
/* The calling thread's last kd_error() message, for control replies. */
const char *kd_last_error(void);
double kd_now(void);		/* CLOCK_MONOTONIC seconds */
void kd_sleep_ms(unsigned int ms);	/* the whole time, across signals */

extern const unsigned char kd_guest_image[];
extern const unsigned char kd_guest_image_end[];

#endif
