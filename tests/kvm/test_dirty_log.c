// SPDX-License-Identifier: MIT
/*
 * "Nothing lost", the kernel's dirty_log_test (reference kvm-memslots.md
 * §2.4) through memvirt's whole stack: the dirtywriter guest stores the
 * current iteration into random pages of a logged region while the host
 * harvests (mv_kvm_dirty_harvest()) at a random point; then the host
 * stops the vCPU, harvests again, takes the memory core's bitmap
 * (mv_region_snapshot_and_clear_dirty()) and checks every page:
 *
 *   dirty  =>  value == iteration          (else "stale dirty page")
 *   clean  =>  value <  iteration          (== iteration: a LOST bit)
 *
 * mv_vm_stop() interrupts the guest anywhere, not at a loop boundary as
 * the kernel test's guest does, so two pages per stop are tolerated and
 * counted, both pinned down exactly:
 *   - "pending": the vCPU stopped on its store after the write fault had
 *     been logged (the ring-full re-fault of §2.3 is one way there): the
 *     page is dirty but still holds its old value.  The store is decoded
 *     from the stopped vCPU (RIP, registers), so only that page passes.
 *   - "stale": the store completes after the restart with the iteration
 *     the guest loaded before the stop, so the page is dirty next
 *     iteration holding iteration - 1; at most one page per iteration,
 *     and it must be the pending store's page when there was one.
 * With INITIALLY_SET (manual mode) iteration 1 may see dirty pages never
 * written (value 0); tolerated in iteration 1 only.
 *
 * usage: test_dirty_log bitmap|manual|ring [ITERATIONS] [--quick]
 *        [--interval-ms N] [--ring-entries N] [--seed N]
 *        [--no-stop-harvest]  (skip the harvest after the stop: the test
 *                              must then fail with lost bits)
 * Exit: 0 pass, 1 fail, 77 no /dev/kvm (or the mode is not offered).
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <memvirt/vmm.h>

#include "abi.h"
#include "guests.h"
#include "runner.h"

#define PAGE 4096ull
#define RAM_SIZE (1ull << 30)
#define WORK_GPA (2ull << 30)	  /* a hole in the micro machine */
#define WORK_PAGES (16384ull + 3) /* not a multiple of 64, as 1 GiB + 3 */
#define WORK_SIZE (WORK_PAGES * PAGE)
#define MIN_WRITES 0x100 /* pages per iteration, as the kernel test */
#define MAX_WAIT_MS 5000
#define NO_PAGE UINT64_MAX
#define MAX_REPORTS 10

struct opts {
	enum mv_kvm_dirty_mode mode;
	const char *mode_name;
	unsigned iterations;
	unsigned interval_ms;
	uint32_t ring_entries;
	uint64_t seed;
	bool no_stop_harvest; /* test the test: must report lost bits */
};

/* Totals over the run, printed at the end. */
struct totals {
	uint64_t dirty, lost, bad, pending, stale, stale_decoded, initial;
	uint64_t min_dirty, max_dirty, phantom;
	unsigned stops, extra_stops;
	double stop_ms_max;
};

struct dlt {
	struct opts o;
	struct mv_machine *m;
	struct mv_region *work;
	struct mv_vm *vm;
	struct mv_as *mem;
	const volatile uint64_t *host;
	mv_gpa_t iter_gpa;
	struct kvm_runner run;
	uint64_t rng;
	uint64_t pending_page, prev_pending_page; /* NO_PAGE: none */
	struct totals tot;
	unsigned reports;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Print the first MAX_REPORTS problems, count them all. */
static void report(struct dlt *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(struct dlt *t, const char *fmt, ...)
{
	va_list ap;

	if (t->reports++ >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "dirty_log %s: ", t->o.mode_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- options ------------------------------------------------------------ */

static int parse_mode(const char *s, struct opts *o)
{
	static const struct {
		const char *name;
		enum mv_kvm_dirty_mode mode;
	} modes[] = {
		{ "bitmap", MV_KVM_DIRTY_BITMAP },
		{ "manual", MV_KVM_DIRTY_MANUAL },
		{ "ring", MV_KVM_DIRTY_RING },
	};
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(s, modes[i].name)) {
			o->mode = modes[i].mode;
			o->mode_name = modes[i].name;
			return 0;
		}
	return -1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	*o = (struct opts){ .iterations = 200,
			    .interval_ms = 2,
			    .seed = (uint64_t)time(NULL) ^
				    ((uint64_t)getpid() << 32) };
	if (argc < 2 || parse_mode(argv[1], o))
		return -1;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quick"))
			o->iterations = 20;
		else if (!strcmp(a, "--interval-ms") && v && ++i)
			o->interval_ms = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--ring-entries") && v && ++i)
			o->ring_entries = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--no-stop-harvest"))
			o->no_stop_harvest = true;
		else if (!strcmp(a, "--seed") && v && ++i)
			o->seed = strtoull(v, NULL, 0);
		else if (a[0] >= '1' && a[0] <= '9')
			o->iterations = (unsigned)strtoul(a, NULL, 0);
		else
			return -1;
	}
	if (!o->seed)
		o->seed = 1;
	return o->iterations >= 2 ? 0 : -1;
}

/* ---- set-up -------------------------------------------------------------- */

/* The logged region at WORK_GPA, added with LOG on in one transaction. */
static int add_work_region(struct dlt *t)
{
	struct mv_region *root = mv_as_root(t->mem);
	int ret;

	ret = mv_region_new_ram(t->m, "test.dirty", WORK_SIZE, NULL, &t->work);
	if (ret)
		return ret;
	mv_txn_begin(t->m);
	ret = mv_region_add_subregion_overlap(root, WORK_GPA, t->work, 0);
	if (!ret)
		ret = mv_region_set_log(t->work, true, MV_DIRTY_VGA);
	ret = ret ? ret : mv_txn_commit(t->m);
	t->host = mv_region_ram_ptr(t->work);
	return ret;
}

/*
 * The VM in @t->o.mode.  Ring mode asks for a small ring, so the vCPU
 * takes ring-full exits: 256 entries (4 KiB, legal without PML), else
 * 1024 when the kernel wants more (with PML).
 */
static int new_vm(struct dlt *t)
{
	struct mv_vm_opts vo = { .nr_vcpus = 1 };
	int ret;

	vo.kvm.dirty_mode = t->o.mode;
	vo.kvm.dirty_ring_entries = t->o.ring_entries ? t->o.ring_entries : 256;
	ret = mv_vm_new(t->m, &vo, &t->vm);
	if (ret == -EINVAL && t->o.mode == MV_KVM_DIRTY_RING &&
	    !t->o.ring_entries) {
		vo.kvm.dirty_ring_entries = 1024;
		ret = mv_vm_new(t->m, &vo, &t->vm);
	}
	t->o.ring_entries = vo.kvm.dirty_ring_entries;
	if (!ret && mv_kvm_dirty_mode(mv_vm_kvm(t->vm)) != t->o.mode)
		ret = -ENOTSUP;
	return ret;
}

static int boot(struct dlt *t)
{
	struct mv_guest_info info = { 0 };
	struct mv_error err = { { 0 } };
	uint64_t size, one = 1;
	int ret;

	ret = mv_vm_load(t->vm, mv_guest_dirtywriter, mv_guest_dirtywriter_len,
			 MV_GUEST_IMAGE_ELF, &err);
	if (ret)
		goto out;
	mv_vm_scratch(t->vm, &info.scratch_gpa, &size);
	info.scratch_size = size;
	info.iteration_gpa = info.scratch_gpa;
	info.work_gpa = WORK_GPA;
	info.work_size = WORK_SIZE;
	info.seed = t->o.seed;
	t->iter_gpa = info.iteration_gpa;
	ret = mv_as_write(t->mem, t->iter_gpa, &one, sizeof(one)) ? -EIO : 0;
	if (!ret)
		ret = mv_vm_boot(t->vm, &info, &err);
out:
	if (ret)
		fprintf(stderr, "dirty_log %s: boot: %s (%s)\n", t->o.mode_name,
			err.msg, strerror(-ret));
	return ret;
}

static int setup(struct dlt *t)
{
	struct mv_error err = { { 0 } };
	int ret;

	ret = mv_machine_preset("micro", RAM_SIZE, &t->m, &err);
	if (ret) {
		fprintf(stderr, "machine: %s\n", err.msg);
		return ret;
	}
	t->mem = mv_machine_find_as(t->m, "memory");
	ret = t->mem ? add_work_region(t) : -ENOENT;
	if (!ret)
		ret = new_vm(t);
	if (!ret)
		ret = boot(t);
	if (!ret)
		ret = kvm_runner_init(&t->run, t->vm);
	/* New RAM starts dirty in the core; the kernel's log is left as is
	 * (INITIALLY_SET shows up in iteration 1, as in the kernel test). */
	if (!ret)
		mv_region_reset_dirty(t->work, 0, WORK_SIZE, MV_DIRTY_VGA);
	return ret;
}

static void teardown(struct dlt *t)
{
	mv_vm_free(t->vm);
	if (t->work) {
		if (mv_region_container(t->work))
			mv_region_del_subregion(mv_region_container(t->work),
						t->work);
		mv_region_unref(t->work);
	}
	mv_machine_free(t->m);
}

/* ---- the pending store ------------------------------------------------- */

/* GPR @n in ModRM numbering (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..). */
static uint64_t gpr(const struct kvm_regs *r, unsigned n)
{
	const uint64_t v[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp,
				 r->rsi, r->rdi, r->r8,	 r->r9,	 r->r10, r->r11,
				 r->r12, r->r13, r->r14, r->r15 };

	return v[n & 15];
}

/*
 * If @b is `mov r64, m64` (REX.W 89 /r, not RIP-relative), the address it
 * stores to, from the registers @r:
 *
 *   REX 0100WRXB | 89 | ModRM mm rrr bbb | [SIB ss iii bbb] | [disp8/32]
 */
static bool decode_store(const uint8_t *b, const struct kvm_regs *r,
			 uint64_t *addr)
{
	unsigned rex = b[0], mod = b[2] >> 6, rm = b[2] & 7, i = 3;
	uint64_t ea;

	if ((rex & 0xf8) != 0x48 || b[1] != 0x89 || mod == 3)
		return false;
	if (rm == 4) {
		unsigned sib = b[i++], base = (sib & 7) | (rex & 1) << 3;
		unsigned index = ((sib >> 3) & 7) | (rex & 2) << 2;

		if ((sib & 7) == 5 && mod == 0)
			return false;
		ea = gpr(r, base) +
		     (index == 4 ? 0 : gpr(r, index) << (sib >> 6));
	} else {
		if (rm == 5 && mod == 0)
			return false;
		ea = gpr(r, rm | (rex & 1) << 3);
	}
	if (mod == 1)
		ea += (uint64_t)(int64_t)(int8_t)b[i];
	else if (mod == 2)
		ea += (uint64_t)(int64_t)(int32_t)((uint32_t)b[i] |
						   (uint32_t)b[i + 1] << 8 |
						   (uint32_t)b[i + 2] << 16 |
						   (uint32_t)b[i + 3] << 24);
	*addr = ea;
	return true;
}

/* The work page the stopped vCPU is about to store to, or NO_PAGE. */
static uint64_t pending_store_page(struct dlt *t)
{
	struct mv_vcpu *v = mv_vm_vcpu(t->vm, 0);
	struct kvm_regs regs;
	uint8_t code[16];
	uint64_t addr;

	if (mv_vcpu_get_regs(v, &regs) ||
	    mv_as_read(t->mem, regs.rip, code, sizeof(code)) ||
	    !decode_store(code, &regs, &addr))
		return NO_PAGE;
	if (addr < WORK_GPA || addr - WORK_GPA >= WORK_SIZE)
		return NO_PAGE;
	return (addr - WORK_GPA) / PAGE;
}

/* ---- one iteration ------------------------------------------------------ */

static uint64_t page_value(const struct dlt *t, uint64_t page)
{
	return t->host[page * PAGE / sizeof(uint64_t)];
}

/* Pages holding @iter already: what the guest wrote this iteration. */
static uint64_t written(const struct dlt *t, uint64_t iter)
{
	uint64_t p, n = 0;

	for (p = 0; p < WORK_PAGES; p++)
		n += page_value(t, p) == iter;
	return n;
}

static int harvest(struct dlt *t, const char *when)
{
	int ret = mv_kvm_dirty_harvest(mv_vm_kvm(t->vm));

	if (ret)
		report(t, "harvest %s: %s", when, strerror(-ret));
	return ret;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { .tv_sec = (time_t)(us / 1000000),
			       .tv_nsec = (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * Let the guest run: a harvest at a random point of the interval (for
 * the ring, again every millisecond once it has filled), then on until
 * the interval is over and the guest wrote at least MIN_WRITES pages.
 */
static int let_run(struct dlt *t, uint64_t iter)
{
	struct mv_kvm_stats st;
	uint64_t us = t->o.interval_ms * 1000ull, at = rnd(&t->rng) % us;
	unsigned long full;
	double t0 = kvm_test_now_ms();
	int ret;

	mv_kvm_get_stats(mv_vm_kvm(t->vm), &st);
	full = st.ring_full_exits;
	sleep_us(at);
	ret = harvest(t, "while running");
	sleep_us(us - at);
	while (!ret) {
		mv_kvm_get_stats(mv_vm_kvm(t->vm), &st);
		if (st.ring_full_exits != full) {
			full = st.ring_full_exits;
			ret = harvest(t, "after ring full");
		}
		if (written(t, iter) >= MIN_WRITES)
			break;
		if (kvm_test_now_ms() - t0 > MAX_WAIT_MS) {
			report(t,
			       "iteration %" PRIu64 ": the guest wrote "
			       "fewer than %u pages in %u ms",
			       iter, MIN_WRITES, MAX_WAIT_MS);
			return -ETIMEDOUT;
		}
		sleep_us(1000);
	}
	return ret;
}

/* Stop the vCPU; it must stop because we asked, not for another reason. */
static int stop(struct dlt *t, uint64_t iter)
{
	unsigned stops = 0;
	double ms = 0;
	int ret;

	ret = kvm_runner_stop(&t->run, MAX_WAIT_MS, &stops, &ms);
	if (ret) {
		report(t,
		       "iteration %" PRIu64 ": the vCPU did not stop "
		       "within %u ms",
		       iter, MAX_WAIT_MS);
		return ret;
	}
	t->tot.stops++;
	t->tot.extra_stops += stops > 1 ? stops - 1 : 0;
	if (ms > t->tot.stop_ms_max)
		t->tot.stop_ms_max = ms;
	if (t->run.ret || t->run.res.end != MV_VM_END_STOPPED) {
		report(t, "iteration %" PRIu64 ": the run ended with %d: %s",
		       iter, t->run.ret, t->run.res.msg);
		return -EPROTO;
	}
	return 0;
}

/* Per-iteration counts. */
struct iter_check {
	uint64_t dirty, lost, bad, pending, stale, stale_decoded, initial;
};

/* One dirty page: holds @iter, or is one of the tolerated cases. */
static void check_dirty(struct dlt *t, uint64_t iter, uint64_t p, uint64_t val,
			struct iter_check *c)
{
	c->dirty++;
	if (val == iter)
		return;
	if (val < iter && p == t->pending_page) {
		c->pending++;
		return;
	}
	/* Iteration 1 follows no stop: nothing can be stale. */
	if (iter > 1 && val == iter - 1 && !c->stale &&
	    (t->prev_pending_page == NO_PAGE || p == t->prev_pending_page)) {
		c->stale++;
		c->stale_decoded += p == t->prev_pending_page;
		return;
	}
	if (iter == 1 && val == 0 && t->o.mode == MV_KVM_DIRTY_MANUAL) {
		c->initial++;
		return;
	}
	c->bad++;
	report(t,
	       "iteration %" PRIu64 ": page %" PRIu64 " is dirty but "
	       "holds %" PRIu64,
	       iter, p, val);
}

/* Every page against the memory core's bitmap. */
static int check(struct dlt *t, uint64_t iter)
{
	struct mv_dirty_snapshot *snap;
	struct iter_check c = { 0 };
	uint64_t p;
	int ret;

	ret = mv_region_snapshot_and_clear_dirty(t->work, 0, WORK_SIZE,
						 MV_DIRTY_VGA, &snap);
	if (ret) {
		report(t, "snapshot: %s", strerror(-ret));
		return ret;
	}
	for (p = 0; p < WORK_PAGES; p++) {
		uint64_t val = page_value(t, p);

		if (mv_dirty_snapshot_get(snap, p * PAGE, PAGE)) {
			check_dirty(t, iter, p, val, &c);
		} else if (val >= iter) {
			c.lost += val == iter;
			c.bad += val > iter;
			report(t,
			       "iteration %" PRIu64 ": page %" PRIu64
			       " holds %" PRIu64 " but is clean%s",
			       iter, p, val, val == iter ? " (LOST)" : "");
		}
	}
	mv_dirty_snapshot_free(snap);
	t->tot.dirty += c.dirty;
	t->tot.lost += c.lost;
	t->tot.bad += c.bad;
	t->tot.pending += c.pending;
	t->tot.stale += c.stale;
	t->tot.stale_decoded += c.stale_decoded;
	t->tot.initial += c.initial;
	if (iter > 1 && c.dirty < t->tot.min_dirty)
		t->tot.min_dirty = c.dirty;
	if (iter > 1 && c.dirty > t->tot.max_dirty)
		t->tot.max_dirty = c.dirty;
	return c.lost || c.bad ? -EUCLEAN : 0;
}

/* With the vCPU stopped, a second harvest must find nothing new. */
static int check_quiet(struct dlt *t, uint64_t iter)
{
	int ret = harvest(t, "again while stopped");

	if (!ret && mv_region_get_dirty(t->work, 0, WORK_SIZE, MV_DIRTY_VGA)) {
		t->tot.phantom++;
		report(t,
		       "iteration %" PRIu64 ": a harvest with the vCPU "
		       "stopped found dirty pages",
		       iter);
		ret = -EUCLEAN;
	}
	mv_region_reset_dirty(t->work, 0, WORK_SIZE, MV_DIRTY_VGA);
	return ret;
}

static int iteration(struct dlt *t, uint64_t iter)
{
	int ret;

	ret = mv_as_write(t->mem, t->iter_gpa, &iter, sizeof(iter)) ? -EIO : 0;
	if (!ret)
		ret = kvm_runner_start(&t->run);
	if (ret) {
		report(t, "iteration %" PRIu64 ": cannot start: %s", iter,
		       strerror(-ret));
		return ret;
	}
	ret = let_run(t, iter);
	if (stop(t, iter))
		return -EPROTO;
	t->prev_pending_page = t->pending_page;
	t->pending_page = pending_store_page(t);
	if (!ret && !t->o.no_stop_harvest)
		ret = harvest(t, "after the stop");
	if (!ret)
		ret = check(t, iter);
	if (!ret)
		ret = check_quiet(t, iter);
	return ret;
}

/* ---- main ------------------------------------------------------------------ */

static void print_summary(struct dlt *t, uint64_t done, double ms)
{
	struct mv_kvm_stats st;

	mv_kvm_get_stats(mv_vm_kvm(t->vm), &st);
	if (t->tot.min_dirty > t->tot.max_dirty)
		t->tot.min_dirty = t->tot.max_dirty;
	printf("dirty_log %s: %" PRIu64 " iterations, %" PRIu64
	       " dirty pages (%" PRIu64 "-%" PRIu64 " per iteration after "
	       "the first), "
	       "lost %" PRIu64 ", bad %" PRIu64 "\n",
	       t->o.mode_name, done, t->tot.dirty, t->tot.min_dirty,
	       t->tot.max_dirty, t->tot.lost, t->tot.bad);
	printf("  tolerated: pending store at stop %" PRIu64
	       ", stale store after restart %" PRIu64 " (%" PRIu64
	       " of them the decoded pending store), INITIALLY_SET in "
	       "iteration 1 %" PRIu64 "\n",
	       t->tot.pending, t->tot.stale, t->tot.stale_decoded,
	       t->tot.initial);
	printf("  kvm: %lu harvests, %lu ring entries, %lu ring-full exits",
	       st.dirty_fetches, st.ring_entries, st.ring_full_exits);
	if (t->o.mode == MV_KVM_DIRTY_RING)
		printf(" (%u-entry ring)", t->o.ring_entries);
	printf("\n");
	printf("  stops %u (extra mv_vm_stop calls %u, slowest %.2f ms), "
	       "%.0f ms, seed %" PRIu64 "\n",
	       t->tot.stops, t->tot.extra_stops, t->tot.stop_ms_max, ms,
	       t->o.seed);
}

int main(int argc, char **argv)
{
	struct dlt t = { .pending_page = NO_PAGE,
			 .prev_pending_page = NO_PAGE };
	uint64_t iter = 0;
	double t0;
	int ret;

	if (parse_args(argc, argv, &t.o)) {
		fprintf(stderr,
			"usage: %s bitmap|manual|ring [ITERATIONS] "
			"[--quick] [--interval-ms N] "
			"[--ring-entries N] [--seed N]\n",
			argv[0]);
		return 1;
	}
	if (!kvm_test_usable())
		return KVM_TEST_SKIP;
	t.rng = t.o.seed;
	t.tot.min_dirty = UINT64_MAX;
	ret = setup(&t);
	if (ret == -ENOTSUP) {
		fprintf(stderr, "SKIP: dirty mode %s not offered by KVM\n",
			t.o.mode_name);
		teardown(&t);
		return KVM_TEST_SKIP;
	}
	if (ret) {
		fprintf(stderr, "dirty_log %s: set-up failed: %s\n",
			t.o.mode_name, strerror(-ret));
		teardown(&t);
		return 1;
	}
	t0 = kvm_test_now_ms();
	for (iter = 1; iter <= t.o.iterations && !ret; iter++)
		ret = iteration(&t, iter);
	print_summary(&t, iter - 1, kvm_test_now_ms() - t0);
	if (t.reports > MAX_REPORTS)
		fprintf(stderr, "(%u problems, first %d shown)\n", t.reports,
			MAX_REPORTS);
	if (!t.run.started) {
		kvm_runner_fini(&t.run);
		teardown(&t);
	}
	return ret || t.tot.lost || t.tot.bad ? 1 : 0;
}
