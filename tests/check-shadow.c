/* SPDX-License-Identifier: MIT */
/*
 * kvm-demo's shadow map over fake guest memory, with the memory layer's
 * side played by the test: remap, unplug, balloon (CLEAR), protect, each
 * bracketed by mmn_invalidate_start/end on a guest-physical state, blocking
 * and not. The checker: every access runs through check_access(), which
 * finds the host buffer the address belongs to and records a failure when
 * that buffer was retired (the invalidation that retired it had returned),
 * is read-only for a write, or holds the wrong bytes (retired buffers are
 * poisoned). Threads record failures; the main thread asserts after join.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "devices/shadow.h"
#include "testutil.h"

#define NR_REGIONS	3
#define REGION_SIZE	(4ull << 20)
#define REGION_STRIDE	(8ull << 20)	/* holes between the regions */
#define REGION_PAGES	(REGION_SIZE / SHADOW_PAGE)
#define SPACE_END	(NR_REGIONS * REGION_STRIDE)
#define MAX_BUFS	8192
#define POISON		0xee

struct fbuf {
	char *base;
	atomic_bool dead;	/* retired: no access may reach it any more */
	atomic_bool readonly;	/* no write may reach it */
};

struct fregion {
	uint64_t gpa;
	struct fbuf *buf;
	bool present;
	bool readonly;
	bool discarded[REGION_PAGES];
};

/* The fake memory layer: a region table, like kvm-demo's memory.c. */
static struct {
	char *golden[NR_REGIONS];	/* each region's pattern, for memcpy and memcmp */
	pthread_rwlock_t lock;
	struct fregion r[NR_REGIONS];
	bool ignore_discard;	/* a translation that does not know the balloon */
	struct fbuf *bufs[MAX_BUFS];
	atomic_uint nr_bufs;
} mem;

static struct mmn_state *guest_mm;
static struct shadow_map sm;
static struct test_failures failures = TEST_FAILURES_INIT;
static atomic_ulong stale_accesses;
static pthread_rwlock_t device_lock = PTHREAD_RWLOCK_INITIALIZER;

static uint8_t pattern(uint64_t gpa)
{
	return (uint8_t)(gpa ^ (gpa >> 8) ^ (gpa >> 16) ^ 0x5a);
}

/* A new buffer holding the pattern of region R. Called by one thread at a time. */
static struct fbuf *new_buf(unsigned int r)
{
	struct fbuf *b = calloc(1, sizeof(*b));
	unsigned int n = atomic_load(&mem.nr_bufs);

	ck_assert(b && n < MAX_BUFS);
	/* Own mappings: a retired buffer gives its memory back but keeps its addresses. */
	b->base = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert(b->base != MAP_FAILED);
	memcpy(b->base, mem.golden[r], REGION_SIZE);
	mem.bufs[n] = b;
	atomic_store_explicit(&mem.nr_bufs, n + 1, memory_order_release);
	return b;
}

static int fake_translate(void *ctx, uint64_t gpa, uint64_t len, bool write, void **hva)
{
	int ret = -EFAULT;

	(void)ctx;
	if (len == 0 || gpa + len < gpa)
		return -EFAULT;
	pthread_rwlock_rdlock(&mem.lock);
	for (unsigned int i = 0; i < NR_REGIONS; i++) {
		struct fregion *r = &mem.r[i];

		if (!r->present || gpa < r->gpa || gpa + len > r->gpa + REGION_SIZE)
			continue;
		ret = 0;
		for (uint64_t p = (gpa - r->gpa) / SHADOW_PAGE;
		     p <= (gpa + len - 1 - r->gpa) / SHADOW_PAGE; p++)
			if (r->discarded[p] && !mem.ignore_discard)
				ret = -EFAULT;
		if (ret == 0 && write && r->readonly)
			ret = -EACCES;
		if (ret == 0)
			*hva = r->buf->base + (gpa - r->gpa);
		break;
	}
	pthread_rwlock_unlock(&mem.lock);
	return ret;
}

static struct fbuf *find_buf(const char *hva, size_t len)
{
	unsigned int n = atomic_load_explicit(&mem.nr_bufs, memory_order_acquire);

	for (unsigned int i = 0; i < n; i++) {
		struct fbuf *b = mem.bufs[i];

		if (hva >= b->base && hva + len <= b->base + REGION_SIZE)
			return b;
	}
	return NULL;
}

struct access {
	uint64_t gpa;
	bool write;
};

/* The checker, run on every piece of every access, under the map's lock. */
static int check_access(void *arg, void *hva, size_t len, uint64_t offset)
{
	struct access *a = arg;
	struct fbuf *b = find_buf(hva, len);
	uint64_t gpa = a->gpa + offset;

	if (!b) {
		test_fail(&failures, "gpa 0x%" PRIx64 ": host address outside every buffer", gpa);
		return -EIO;
	}
	if (atomic_load(&b->dead)) {
		atomic_fetch_add(&stale_accesses, 1);
		test_fail(&failures, "gpa 0x%" PRIx64 ": access through a retired translation", gpa);
		return -EIO;
	}
	if (a->write && atomic_load(&b->readonly)) {
		test_fail(&failures, "gpa 0x%" PRIx64 ": write to read-only memory", gpa);
		return -EIO;
	}
	/* Every access lies in one region: the map never joins regions. */
	const char *want = mem.golden[(gpa / REGION_STRIDE) % NR_REGIONS] + gpa % REGION_STRIDE;

	if (gpa % REGION_STRIDE + len > REGION_SIZE) {
		test_fail(&failures, "gpa 0x%" PRIx64 " +%zu: piece crosses a region's end", gpa, len);
		return -EIO;
	}
	/*
	 * Device threads access guest memory at once (hits take no lock), and
	 * writers rewrite the pattern: order them among themselves only, the
	 * memory layer's poisoning stays unordered against them.
	 */
	bool bad;

	if (a->write) {
		pthread_rwlock_wrlock(&device_lock);
		memcpy(hva, want, len);
		pthread_rwlock_unlock(&device_lock);
	} else {
		pthread_rwlock_rdlock(&device_lock);
		bad = memcmp(hva, want, len) != 0;
		pthread_rwlock_unlock(&device_lock);
		if (bad) {
			test_fail(&failures, "gpa 0x%" PRIx64 " +%zu: not the pattern", gpa, len);
			return -EIO;
		}
	}
	/* Retired while we were at it: its invalidation returned mid-access. */
	if (atomic_load(&b->dead)) {
		atomic_fetch_add(&stale_accesses, 1);
		test_fail(&failures, "gpa 0x%" PRIx64 ": retired during the access", gpa);
		return -EIO;
	}
	return 0;
}

static int access_range(uint64_t gpa, uint64_t len, bool write)
{
	struct access a = { .gpa = gpa, .write = write };

	return shadow_access(&sm, gpa, len, write, check_access, &a);
}

static void setup(void)
{
	memset(&mem, 0, sizeof(mem));
	pthread_rwlock_init(&mem.lock, NULL);
	for (unsigned int i = 0; i < NR_REGIONS; i++) {
		mem.r[i].gpa = i * REGION_STRIDE;
		mem.golden[i] = malloc(REGION_SIZE);
		ck_assert(mem.golden[i]);
		for (uint64_t j = 0; j < REGION_SIZE; j++)
			mem.golden[i][j] = (char)pattern(mem.r[i].gpa + j);
		mem.r[i].buf = new_buf(i);
		mem.r[i].present = true;
	}
	ck_assert_int_eq(mmn_state_new(&guest_mm), 0);
	ck_assert_int_eq(shadow_map_init(&sm, guest_mm, SPACE_END, fake_translate, NULL), 0);
	atomic_store(&stale_accesses, 0);
	failures.count = 0;
}

static void teardown(void)
{
	shadow_map_destroy(&sm);
	mmn_state_free(guest_mm);
	for (unsigned int i = 0; i < atomic_load(&mem.nr_bufs); i++) {
		munmap(mem.bufs[i]->base, REGION_SIZE);
		free(mem.bufs[i]);
	}
	for (unsigned int i = 0; i < NR_REGIONS; i++)
		free(mem.golden[i]);
	pthread_rwlock_destroy(&mem.lock);
}

static struct shadow_stats stats(void)
{
	struct shadow_stats st;

	shadow_map_stats(&sm, &st);
	return st;
}

/* ------------------------------------------------------------------------
 * The memory layer's operations, each a bracket on guest_mm
 */

static int begin(uint64_t gpa, uint64_t len, enum mmn_event ev, bool blockable,
		 struct mmn_invalidate_desc *d)
{
	*d = (struct mmn_invalidate_desc){ .start = gpa, .end = gpa + len, .event = ev,
					   .flags = blockable ? MMN_INVALIDATE_BLOCKABLE : 0 };
	return mmn_invalidate_start(guest_mm, d);
}

/* Retire a buffer: from here on any access to it is a stale access. */
static void retire(struct fbuf *b)
{
	atomic_store(&b->dead, true);
	memset(b->base, POISON, REGION_SIZE);
	/* Then zero, like memory handed back: no byte of the pattern stays. */
	madvise(b->base, REGION_SIZE, MADV_DONTNEED);
}

static int op_remap(unsigned int r, bool blockable)
{
	struct mmn_invalidate_desc d;
	int err = begin(mem.r[r].gpa, REGION_SIZE, MMN_EVENT_REMAP, blockable, &d);
	struct fbuf *nb;

	if (err)
		return err;
	struct fbuf *old = mem.r[r].buf;

	nb = new_buf(r);
	/* Content moves with the mapping; discarded pages stay empty. */
	memcpy(nb->base, old->base, REGION_SIZE);
	atomic_store(&nb->readonly, atomic_load(&old->readonly));
	retire(old);
	pthread_rwlock_wrlock(&mem.lock);
	mem.r[r].buf = nb;
	pthread_rwlock_unlock(&mem.lock);
	mmn_invalidate_end(guest_mm, &d);
	return 0;
}

static int op_unplug(unsigned int r, bool blockable)
{
	struct mmn_invalidate_desc d;
	int err = begin(mem.r[r].gpa, REGION_SIZE, MMN_EVENT_UNMAP, blockable, &d);

	if (err)
		return err;
	retire(mem.r[r].buf);
	pthread_rwlock_wrlock(&mem.lock);
	mem.r[r].present = false;
	pthread_rwlock_unlock(&mem.lock);
	mmn_invalidate_end(guest_mm, &d);
	return 0;
}

/* Plugging memory in where there was none changes no translation. */
static void op_plug(unsigned int r)
{
	struct fbuf *nb = new_buf(r);

	pthread_rwlock_wrlock(&mem.lock);
	mem.r[r].buf = nb;
	mem.r[r].present = true;
	mem.r[r].readonly = false;
	memset(mem.r[r].discarded, 0, sizeof(mem.r[r].discarded));
	pthread_rwlock_unlock(&mem.lock);
}

/* Balloon inflate: pages [p, p + n) are discarded (zeroed, like DONTNEED). */
static int op_discard(unsigned int r, uint64_t p, uint64_t n, bool blockable)
{
	struct mmn_invalidate_desc d;
	int err = begin(mem.r[r].gpa + p * SHADOW_PAGE, n * SHADOW_PAGE, MMN_EVENT_CLEAR,
			blockable, &d);

	if (err)
		return err;
	pthread_rwlock_wrlock(&mem.lock);
	for (uint64_t i = p; i < p + n; i++)
		mem.r[r].discarded[i] = true;
	memset(mem.r[r].buf->base + p * SHADOW_PAGE, 0, n * SHADOW_PAGE);
	pthread_rwlock_unlock(&mem.lock);
	mmn_invalidate_end(guest_mm, &d);
	return 0;
}

/*
 * Deflate: the pages come back, announced as MIGRATE (new pages in place of
 * the discarded ones). First proves nothing wrote to them while discarded.
 */
static int op_return(unsigned int r, uint64_t p, uint64_t n, bool blockable)
{
	struct mmn_invalidate_desc d;
	int err = begin(mem.r[r].gpa + p * SHADOW_PAGE, n * SHADOW_PAGE, MMN_EVENT_MIGRATE,
			blockable, &d);

	if (err)
		return err;
	pthread_rwlock_wrlock(&mem.lock);
	for (uint64_t i = p; i < p + n; i++) {
		char *page = mem.r[r].buf->base + i * SHADOW_PAGE;

		if (!mem.r[r].discarded[i])
			continue;
		for (uint64_t j = 0; j < SHADOW_PAGE; j++) {
			if (page[j]) {
				test_fail(&failures, "discarded page at gpa 0x%" PRIx64
					  " was written: repopulated", (uint64_t)(mem.r[r].gpa + i * SHADOW_PAGE));
				break;
			}
		}
		memcpy(page, mem.golden[r] + i * SHADOW_PAGE, SHADOW_PAGE);
		mem.r[r].discarded[i] = false;
	}
	pthread_rwlock_unlock(&mem.lock);
	mmn_invalidate_end(guest_mm, &d);
	return 0;
}

static int op_protect(unsigned int r, bool on, bool blockable)
{
	struct mmn_invalidate_desc d;
	int err = begin(mem.r[r].gpa, REGION_SIZE, MMN_EVENT_PROTECTION_VMA, blockable, &d);

	if (err)
		return err;
	atomic_store(&mem.r[r].buf->readonly, on);
	pthread_rwlock_wrlock(&mem.lock);
	mem.r[r].readonly = on;
	pthread_rwlock_unlock(&mem.lock);
	mmn_invalidate_end(guest_mm, &d);
	return 0;
}

/* ------------------------------------------------------------------------
 * One thread
 */

START_TEST(miss_then_hit)
{
	ck_assert_int_eq(access_range(0x1234, 100, false), 0);
	ck_assert_uint_eq(stats().misses, 1);
	ck_assert_uint_eq(stats().hits, 0);
	ck_assert_int_eq(access_range(0x1000, 8192, true), 0);
	ck_assert_uint_eq(stats().misses, 1);
	ck_assert_uint_eq(stats().hits, 1);
	ck_assert_uint_eq(stats().entries, 1);	/* one 2 MiB block */
	/* Across a block boundary: two entries, two pieces. */
	ck_assert_int_eq(access_range(SHADOW_BLOCK - 10, 20, false), 0);
	ck_assert_uint_eq(stats().entries, 2);
	/* Across the end of a region: the part in RAM, then a fault. */
	ck_assert_int_eq(access_range(REGION_SIZE - 10, 20, false), -EFAULT);
	ck_assert_uint_eq(failures.count, 0);
}
END_TEST

START_TEST(outside_ram)
{
	ck_assert_int_eq(access_range(REGION_SIZE + 4096, 8, false), -EFAULT);	/* a hole */
	ck_assert_int_eq(access_range(SPACE_END + (1ull << 30), 8, true), -EFAULT);
	ck_assert_int_eq(access_range(UINT64_MAX - 3, 8, false), -EFAULT);	/* overflows */
	ck_assert_uint_eq(stats().entries, 0);
	ck_assert_uint_eq(stats().faults, 2);	/* the overflow never got as far */
	ck_assert_uint_eq(failures.count, 0);
}
END_TEST

START_TEST(remap_drops_entries)
{
	ck_assert_int_eq(access_range(REGION_STRIDE + 100, 5000, true), 0);
	ck_assert_uint_eq(stats().entries, 1);
	ck_assert_int_eq(op_remap(1, true), 0);
	ck_assert_uint_eq(stats().entries, 0);
	ck_assert_uint_eq(stats().dropped, 1);
	/* The next access goes through the new buffer (the old one is poisoned). */
	ck_assert_int_eq(access_range(REGION_STRIDE + 100, 5000, false), 0);
	ck_assert_uint_eq(stats().misses, 2);
	ck_assert_int_eq(op_unplug(1, true), 0);
	ck_assert_int_eq(access_range(REGION_STRIDE + 100, 5000, false), -EFAULT);
	op_plug(1);
	ck_assert_int_eq(access_range(REGION_STRIDE + 100, 5000, false), 0);
	ck_assert_uint_eq(failures.count, 0);
	ck_assert_uint_eq(atomic_load(&stale_accesses), 0);
}
END_TEST

START_TEST(clear_marks_discarded_pages)
{
	uint64_t page = 16;

	ck_assert_int_eq(access_range(0, REGION_SIZE, false), 0);
	/* A translation that does not know of the balloon: the marker alone refuses. */
	mem.ignore_discard = true;
	ck_assert_int_eq(op_discard(0, page, 2, true), 0);
	ck_assert_uint_eq(stats().discard_marks, 1);
	ck_assert_int_eq(access_range(page * SHADOW_PAGE + 8, 8, true), -EFAULT);
	ck_assert_int_eq(access_range((page + 1) * SHADOW_PAGE, 1, false), -EFAULT);
	/* Its neighbours in the same block are still reachable, page by page. */
	ck_assert_int_eq(access_range((page - 1) * SHADOW_PAGE, SHADOW_PAGE, true), 0);
	ck_assert_int_eq(access_range((page + 2) * SHADOW_PAGE, 100, false), 0);
	/* A later CLEAR or PROTECTION keeps the marker; the return removes it. */
	ck_assert_int_eq(op_protect(0, false, true), 0);
	ck_assert_uint_eq(stats().discard_marks, 1);
	ck_assert_int_eq(op_return(0, page, 2, true), 0);
	ck_assert_uint_eq(stats().discard_marks, 0);
	ck_assert_int_eq(access_range(page * SHADOW_PAGE, 2 * SHADOW_PAGE, true), 0);
	ck_assert_uint_eq(failures.count, 0);
}
END_TEST

START_TEST(protection_downgrades)
{
	ck_assert_int_eq(access_range(0x10000, 64, true), 0);
	ck_assert_int_eq(op_protect(0, true, true), 0);
	ck_assert_uint_eq(stats().entries, 1);	/* kept, read-only */
	ck_assert_int_eq(access_range(0x10000, 64, false), 0);
	ck_assert_uint_eq(stats().hits, 1);
	ck_assert_int_eq(access_range(0x10000, 64, true), -EACCES);
	ck_assert_uint_eq(stats().slow_writes, 1);
	ck_assert_int_eq(access_range(0x10000, 64, false), 0);	/* read-only entry again */
	ck_assert_int_eq(op_protect(0, false, true), 0);
	ck_assert_int_eq(access_range(0x10000, 64, true), 0);	/* slow path, then writable */
	ck_assert_int_eq(access_range(0x10000, 64, true), 0);
	ck_assert_uint_eq(stats().slow_writes, 2);
	ck_assert_uint_eq(failures.count, 0);
}
END_TEST

/* The checker can fail: a translation kept past its invalidation is caught. */
START_TEST(checker_catches_a_stale_translation)
{
	struct access a = { .gpa = 0x2000, .write = false };
	void *hva;

	ck_assert_int_eq(fake_translate(NULL, 0x2000, 64, false, &hva), 0);
	ck_assert_int_eq(check_access(&a, hva, 64, 0), 0);
	ck_assert_int_eq(op_remap(0, true), 0);
	ck_assert_int_eq(check_access(&a, hva, 64, 0), -EIO);
	ck_assert_uint_eq(atomic_load(&stale_accesses), 1);
	ck_assert_uint_eq(failures.count, 1);
}
END_TEST

/* ------------------------------------------------------------------------
 * A device access in progress: non-blockable invalidations are refused
 */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_state;	/* 1: access entered, 2: let it finish */

static int gated_access(void *arg, void *hva, size_t len, uint64_t offset)
{
	pthread_mutex_lock(&gate_lock);
	gate_state = 1;
	pthread_cond_broadcast(&gate_cond);
	while (gate_state != 2)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	return check_access(arg, hva, len, offset);
}

static void *gated_worker(void *arg)
{
	struct access a = { .gpa = 0x3000, .write = true };

	(void)arg;
	if (shadow_access(&sm, 0x3000, 16, true, gated_access, &a) != 0)
		test_fail(&failures, "the gated access failed");
	return NULL;
}

START_TEST(nonblocking_refused_during_access)
{
	struct mmn_invalidate_desc d;
	pthread_t t;

	gate_state = 0;
	ck_assert_int_eq(pthread_create(&t, NULL, gated_worker, NULL), 0);
	pthread_mutex_lock(&gate_lock);
	while (gate_state != 1)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);

	ck_assert_int_eq(begin(0, REGION_SIZE, MMN_EVENT_UNMAP, false, &d), -EAGAIN);
	ck_assert_uint_eq(stats().refusals, 1);
	/* Elsewhere in the space the subscription still refuses: it covers it all. */
	pthread_mutex_lock(&gate_lock);
	gate_state = 2;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	pthread_join(t, NULL);
	ck_assert_int_eq(op_remap(0, false), 0);
	ck_assert_uint_eq(failures.count, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * Threads: device workers against the memory layer
 */

static atomic_bool stop_workers;
static atomic_ulong done_ok, done_fault, done_acces;

static void *worker(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg;

	while (!atomic_load(&stop_workers)) {
		uint64_t gpa = test_rand_below(&seed, SPACE_END + REGION_STRIDE / 4);
		uint64_t len = test_rand_below(&seed, 4) ? 1 + test_rand_below(&seed, 3 * SHADOW_PAGE)
							 : 1 + test_rand_below(&seed, 128 << 10);
		bool write = test_rand_below(&seed, 3) == 0;
		int err = access_range(gpa, len, write);

		if (err == 0)
			atomic_fetch_add(&done_ok, 1);
		else if (err == -EFAULT)
			atomic_fetch_add(&done_fault, 1);
		else if (err == -EACCES)
			atomic_fetch_add(&done_acces, 1);
		else
			break;	/* the checker recorded why */
	}
	return NULL;
}

START_TEST(workers_against_memory_changes)
{
	uint64_t seed = 0xc0ffee00u + (uint64_t)_i;
	unsigned long ops = 0, refused = 0;
	pthread_t t[2];

	atomic_store(&stop_workers, false);
	atomic_store(&done_ok, 0);
	atomic_store(&done_fault, 0);
	atomic_store(&done_acces, 0);
	for (uintptr_t i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker, (void *)(seed + i + 1)), 0);

	for (int i = 0; i < 600; i++) {
		unsigned int r = (unsigned int)test_rand_below(&seed, NR_REGIONS);
		bool blockable = test_rand_below(&seed, 4) != 0;
		uint64_t p = test_rand_below(&seed, REGION_PAGES - 8), n = 1 + test_rand_below(&seed, 8);
		int err = 0;

		if (!mem.r[r].present) {
			op_plug(r);
			continue;
		}
		switch (test_rand_below(&seed, 6)) {
		case 0: err = op_remap(r, blockable); break;
		case 1: err = op_unplug(r, blockable); break;
		case 2: err = op_discard(r, p, n, blockable); break;
		case 3: err = op_return(r, p, n, blockable); break;
		case 4: err = op_protect(r, true, blockable); break;
		case 5: err = op_protect(r, false, blockable); break;
		}
		if (err == -EAGAIN)
			refused++;	/* the memory layer would retry later */
		else if (err)
			test_fail(&failures, "invalidate_start: %d", err);
		ops++;
		if (i % 64 == 0)
			sched_yield();
	}
	atomic_store(&stop_workers, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);

	struct shadow_stats st = stats();

	ck_assert_msg(failures.count == 0, "%lu failures, first: %s", failures.count, failures.first);
	ck_assert_uint_eq(atomic_load(&stale_accesses), 0);
	/* Every path ran. */
	ck_assert_uint_gt(atomic_load(&done_ok), 0);
	ck_assert_uint_gt(atomic_load(&done_fault), 0);
	ck_assert_uint_gt(st.hits, 0);
	ck_assert_uint_gt(st.misses, 0);
	ck_assert_uint_gt(st.invalidations, 0);
	ck_assert_uint_gt(ops, 0);
	printf("check-shadow: %lu memory changes (%lu refused), accesses: %lu ok, %lu faulted, "
	       "%lu read-only; map: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " retries, "
	       "%" PRIu64 " invalidations, %" PRIu64 " dropped, %" PRIu64 " refusals\n",
	       ops, refused, atomic_load(&done_ok), atomic_load(&done_fault),
	       atomic_load(&done_acces), st.hits, st.misses, st.retries, st.invalidations,
	       st.dropped, st.refusals);
}
END_TEST

/* Every address the map may cache is one its subscription covers. */
static char top_page[SHADOW_PAGE];

static int translate_anything(void *ctx, uint64_t gpa, uint64_t len, bool write, void **hva)
{
	(void)ctx, (void)len, (void)write;
	*hva = top_page + (gpa & (SHADOW_PAGE - 1));
	return 0;
}

static int nop_access(void *arg, void *hva, size_t len, uint64_t offset)
{
	(void)arg, (void)hva, (void)len, (void)offset;
	return 0;
}

START_TEST(nothing_cached_past_the_subscription)
{
	struct mmn_state *mm;
	struct shadow_map top;
	struct shadow_stats st;
	/* The last two pages of the 64-bit space. */
	struct mmn_invalidate_desc d = {
		.start = UINT64_MAX - 2 * SHADOW_PAGE + 1, .end = 0,
		.event = MMN_EVENT_UNMAP, .flags = MMN_INVALIDATE_BLOCKABLE,
	};

	ck_assert_int_eq(mmn_state_new(&mm), 0);
	ck_assert_int_eq(shadow_map_init(&top, mm, UINT64_MAX, translate_anything, NULL), 0);
	/*
	 * The map covers [0, UINT64_MAX): the last byte, and so the last page,
	 * are outside it; the page before is cached alone, not as a block.
	 */
	ck_assert_int_eq(shadow_access(&top, UINT64_MAX - 7, 8, false, nop_access, NULL), -EFAULT);
	ck_assert_int_eq(shadow_access(&top, UINT64_MAX - SHADOW_PAGE - 7, 8, false, nop_access,
				       NULL), 0);
	shadow_map_stats(&top, &st);
	ck_assert_uint_eq(st.entries, 1);
	mmn_invalidate_start(mm, &d);
	mmn_invalidate_end(mm, &d);
	shadow_map_stats(&top, &st);
	ck_assert_uint_eq(st.invalidations, 1);
	ck_assert_uint_eq(st.entries, 0);
	shadow_map_destroy(&top);
	/* A map over nothing is refused. */
	ck_assert_int_eq(shadow_map_init(&top, mm, 0, translate_anything, NULL), -EOVERFLOW);
	mmn_state_free(mm);
}
END_TEST

/*
 * Hits against remaps: device threads read and write small pieces of two
 * regions, almost all through existing 2 MiB entries (the lock-free hit),
 * while this thread remaps and unplugs those regions as fast as it can,
 * poisoning and retiring each old buffer as soon as its invalidation has
 * returned. A hit that used an entry its invalidation had dropped, or
 * that was still running when the invalidation returned, meets a retired
 * buffer (or the poison) in the checker.
 */
static void *hitter(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg;

	while (!atomic_load(&stop_workers)) {
		unsigned int r = (unsigned int)test_rand_below(&seed, 2);
		uint64_t gpa = r * REGION_STRIDE + test_rand_below(&seed, REGION_SIZE - 256);
		uint64_t len = 1 + test_rand_below(&seed, 256);
		bool write = test_rand_below(&seed, 4) == 0;
		int err = access_range(gpa, len, write);

		if (err == 0)
			atomic_fetch_add(&done_ok, 1);
		else if (err == -EFAULT)
			atomic_fetch_add(&done_fault, 1);	/* unplugged just now */
		else
			break;	/* the checker recorded why */
	}
	return NULL;
}

START_TEST(hits_against_remaps)
{
	uint64_t seed = 0x5eed0000u + (uint64_t)_i;
	uint64_t hits_before;
	pthread_t t[2];

	atomic_store(&stop_workers, false);
	atomic_store(&done_ok, 0);
	atomic_store(&done_fault, 0);
	for (uintptr_t i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, hitter, (void *)(seed + i + 1)), 0);
	hits_before = stats().hits;
	for (int i = 0; i < 300 && failures.count == 0; i++) {
		unsigned int r = (unsigned int)test_rand_below(&seed, 2);

		if (test_rand_below(&seed, 8) == 0) {
			ck_assert_int_eq(op_unplug(r, true), 0);
			op_plug(r);
		} else {
			ck_assert_int_eq(op_remap(r, true), 0);
		}
		/* Let the device threads fill and hit between changes. */
		for (uint64_t h = stats().hits; stats().hits < h + 64 && !atomic_load(&stop_workers);)
			if (failures.count)
				break;
	}
	atomic_store(&stop_workers, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);

	struct shadow_stats st = stats();

	ck_assert_msg(failures.count == 0, "%lu failures, first: %s", failures.count, failures.first);
	ck_assert_uint_eq(atomic_load(&stale_accesses), 0);
	ck_assert_uint_gt(st.hits - hits_before, 300 * 64);
	ck_assert_uint_ge(st.invalidations, 300);
	printf("check-shadow: hits against remaps: %lu accesses ok, %lu faulted; map: %" PRIu64
	       " hits, %" PRIu64 " misses, %" PRIu64 " dropped\n", atomic_load(&done_ok),
	       atomic_load(&done_fault), st.hits, st.misses, st.dropped);
}
END_TEST

static Suite *shadow_suite(void)
{
	Suite *s = suite_create("shadow");
	TCase *tc = tcase_create("one thread");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, miss_then_hit);
	tcase_add_test(tc, outside_ram);
	tcase_add_test(tc, remap_drops_entries);
	tcase_add_test(tc, clear_marks_discarded_pages);
	tcase_add_test(tc, protection_downgrades);
	tcase_add_test(tc, checker_catches_a_stale_translation);
	tcase_add_test(tc, nonblocking_refused_during_access);
	suite_add_tcase(s, tc);

	tc = tcase_create("space");
	tcase_add_test(tc, nothing_cached_past_the_subscription);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, workers_against_memory_changes, 0, 2);
	tcase_add_loop_test(tc, hits_against_remaps, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(shadow_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
