/* SPDX-License-Identifier: MIT */
/*
 * The VM and its vCPUs: struct vm, with the state of every layer (the
 * layers above reach it through a struct vm *), and the core's files:
 *   vm.c      the VM: /dev/kvm, layout, guest loading, page tables, start/stop
 *   vcpu.c    vCPU threads: long-mode setup, the KVM_RUN loop, kicks
 *   ports.c   port I/O: the serial port and the result/progress ports
 *   image.c   the guest image's header check (pure: no I/O, no VM)
 *   crashdump.c at a triple fault: the guest's structures against the boot copy
 * Core includes only core/ and config/ headers; what it calls above it
 * is declared in core/hooks.h.
 */
#ifndef KVM_DEMO_CORE_VM_H
#define KVM_DEMO_CORE_VM_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include <mmn/mmn.h>

#include "config/domain.h"
#include "core/hooks.h"
#include "guest/abi.h"

struct vm;
struct vdev;
struct vu_blk;
struct kd_bench_marks;

/* The guest-physical space: x86-64's widest physical address is 52 bits. */
#define KD_GPA_SPACE_END	(1ull << 52)

/* Segment selectors in the GDT vm.c builds. */
#define KD_SEL_CODE64		0x08
#define KD_SEL_DATA		0x10

/* ---- the VM's memory state; mem/ works on it ---- */

/* A RAM region (mem/memory.c), one KVM memory slot. */
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
	struct vu_blk *blk;		/* the vhost-user disk, or NULL */
	bool disk_broken;		/* its image did not verify */

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

/* ---- crashdump.c: what the guest's structures hold at a triple fault ---- */

/* After the guest is loaded: copy what kvm-demo wrote (GDT, IDT, page tables, image). */
int crashdump_record(struct vm *vm);
void crashdump_free(void);
/* Every KVM_SET_USER_MEMORY_REGION of R (ACTIVE: added, else deleted). */
void crashdump_note_slot(const struct mem_region *r, bool active);
/*
 * At a shutdown exit of VCPU, from its thread (holding nothing): its
 * registers, the slot table, each boot structure against the copy, the
 * other vCPUs' progress, and a verdict line. The first call only.
 */
void crashdump_print(struct vm *vm, struct vcpu *vcpu, FILE *f);
/*
 * The guest stopped making progress (it did not finish when asked): each
 * vCPU's registers, read with the vCPUs paused. From a control thread,
 * holding nothing.
 */
void crashdump_print_stuck(struct vm *vm, FILE *f);

extern const unsigned char kd_guest_image[];
extern const unsigned char kd_guest_image_end[];

#endif
