// SPDX-License-Identifier: MIT
/*
 * bench/bandwidth: guest/host memory speed.  The bandwidth guest runs one
 * kernel of guest/bw_kernels.h (write, read, copy, pointer chase) over a
 * buffer in guest RAM under KVM; the host runs the very same inline code
 * over a host buffer of the same size and page size, in the same process,
 * alternating with the guest.  Both time the loop alone with the TSC.
 * Page sizes are matched: 2 MiB guest pages on THP-backed guest RAM
 * against a THP host buffer, and 4 KiB guest pages on MADV_NOHUGEPAGE
 * guest RAM against a MADV_NOHUGEPAGE host buffer.  Prints JSON on stdout
 * (docs/performance.md); ratio = host cycles / guest cycles.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <memvirt/vmm.h>

#include "abi.h"
#include "bw_kernels.h"
#include "guests.h"

#define MiB (1ull << 20)
#define HUGE (2 * MiB)
#define SEED 0x9e3779b97f4a7c15ull
#define WRITE_VALUE 0x0123456789abcdefull
#define GOAL_RATIO 0.97

/* A bench has nothing to unwind: any failure ends the run. */
#define MUST(call) must((call), #call)

static void must(long ret, const char *call)
{
	if (ret) {
		fprintf(stderr, "bench-bandwidth: %s: %s\n", call,
			strerror((int)-ret));
		exit(1);
	}
}

static void fail(const char *what, const char *msg)
{
	fprintf(stderr, "bench-bandwidth: %s: %s\n", what, msg);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* TSC ticks per second, against CLOCK_MONOTONIC over 100 ms. */
static double tsc_hz(void)
{
	double t0 = now_s(), t1;
	uint64_t c0 = mv_bw_rdtsc(), c1;

	do
		t1 = now_s();
	while (t1 - t0 < 0.1);
	c1 = mv_bw_rdtsc();
	return (double)(c1 - c0) / (t1 - t0);
}

/*
 * Pin the process, and so the vCPU threads it starts later, to the CPU it
 * runs on: guest and host then share one core and its caches.
 */
static int pin_self(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu < 0)
		return -1;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -1 : cpu;
}

/* ---- page sizes ---------------------------------------------------------- */

/*
 * The share of [p, p + len) backed by transparent huge pages, from
 * /proc/self/pagemap and /proc/kpageflags (KPF_THP, bit 22): 0..1, or -1
 * when the files cannot be read (not root).
 */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * How scattered [p, p + len) is in (this kernel's) physical memory: the
 * number of distinct 2 MiB-aligned physical blocks its pages lie in, and
 * of 4 KiB pages that directly follow their predecessor physically.
 * -1 when /proc/self/pagemap hides the frame numbers.
 */
static void phys_layout(const void *p, uint64_t len, long long *blocks,
			long long *contig)
{
	uint64_t first = (uintptr_t)p / 4096, n = len / 4096, i;
	uint64_t *pm = calloc(n, sizeof(*pm)), *b = calloc(n, sizeof(*b));
	int pfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	*blocks = *contig = -1;
	if (!pm || !b || pfd < 0 ||
	    pread(pfd, pm, n * 8, (off_t)(first * 8)) != (ssize_t)(n * 8))
		goto out;
	*contig = 0;
	for (i = 0; i < n; i++) {
		uint64_t pfn = pm[i] & ((1ull << 55) - 1);

		if (!(pm[i] >> 63) || !pfn) {
			*blocks = *contig = -1;
			goto out;
		}
		b[i] = pfn >> 9;
		if (i && pfn == (pm[i - 1] & ((1ull << 55) - 1)) + 1)
			(*contig)++;
	}
	qsort(b, n, sizeof(*b), cmp_u64);
	*blocks = n ? 1 : 0;
	for (i = 1; i < n; i++)
		*blocks += b[i] != b[i - 1];
out:
	free(pm);
	free(b);
	if (pfd >= 0)
		close(pfd);
}

static double thp_share(const void *p, uint64_t len)
{
	uint64_t first = (uintptr_t)p / 4096, n = len / 4096, i, huge = 0;
	uint64_t *pm = calloc(n, sizeof(*pm)), flags;
	int pfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int kfd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	double share = -1;

	if (!pm || pfd < 0 || kfd < 0 ||
	    pread(pfd, pm, n * 8, (off_t)(first * 8)) != (ssize_t)(n * 8))
		goto out;
	for (i = 0; i < n; i++) {
		uint64_t pfn = pm[i] & ((1ull << 55) - 1);

		if (!(pm[i] >> 63) || !pfn)
			goto out; /* not present, or PFNs hidden */
		if (pread(kfd, &flags, 8, (off_t)(pfn * 8)) != 8)
			goto out;
		huge += (flags >> 22) & 1;
	}
	share = (double)huge / (double)n;
out:
	free(pm);
	if (pfd >= 0)
		close(pfd);
	if (kfd >= 0)
		close(kfd);
	return share;
}

/*
 * A VM-wide KVM statistic by name (KVM_GET_STATS_FD): the shadow MMU's
 * "pages_4k" and "pages_2m" say which page size it actually maps guest
 * memory with.  -1 if the kernel does not offer it.
 */
static long long kvm_fd_stat(int fd, const char *name);

static long long kvm_vm_stat(int vm_fd, const char *name)
{
	return kvm_fd_stat(vm_fd, name);
}

/* The same for a vCPU fd, or a VM fd: @name's value, -1 if none. */
static long long kvm_fd_stat(int obj_fd, const char *name)
{
	int fd = ioctl(obj_fd, KVM_GET_STATS_FD, NULL);
	struct kvm_stats_header h;
	long long val = -1;
	size_t dsz, i;
	char *d = NULL;

	if (fd < 0 || pread(fd, &h, sizeof(h), 0) != sizeof(h))
		goto out;
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	d = malloc(dsz * h.num_desc);
	if (!d || pread(fd, d, dsz * h.num_desc, h.desc_offset) !=
			  (ssize_t)(dsz * h.num_desc))
		goto out;
	for (i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *e = (void *)(d + i * dsz);
		uint64_t v;

		if (strcmp(e->name, name))
			continue;
		if (pread(fd, &v, 8, h.data_offset + e->offset) == 8)
			val = (long long)v;
		break;
	}
out:
	free(d);
	if (fd >= 0)
		close(fd);
	return val;
}

/*
 * Every statistic of a KVM stats fd (KVM_GET_STATS_FD of a VM or vCPU),
 * first value of each, as a JSON object; NULL if there is none.
 */
static json_t *kvm_stats_all(int obj_fd)
{
	int fd = ioctl(obj_fd, KVM_GET_STATS_FD, NULL);
	struct kvm_stats_header h;
	json_t *o = NULL;
	size_t dsz, i;
	char *d = NULL;

	if (fd < 0 || pread(fd, &h, sizeof(h), 0) != sizeof(h))
		goto out;
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	d = malloc(dsz * h.num_desc);
	if (!d || pread(fd, d, dsz * h.num_desc, h.desc_offset) !=
			  (ssize_t)(dsz * h.num_desc))
		goto out;
	o = json_object();
	for (i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *e = (void *)(d + i * dsz);
		uint64_t v;

		if (pread(fd, &v, 8, h.data_offset + e->offset) == 8)
			json_object_set_new(o, e->name,
					    json_integer((json_int_t)v));
	}
out:
	free(d);
	if (fd >= 0)
		close(fd);
	return o;
}

/* @after - @before for the counters that moved (both from kvm_stats_all). */
static json_t *kvm_stats_delta(json_t *before, json_t *after)
{
	json_t *o = json_object(), *v;
	const char *name;

	if (!before || !after)
		return o;
	json_object_foreach(after, name, v)
	{
		json_int_t d =
			json_integer_value(v) -
			json_integer_value(json_object_get(before, name));

		if (d)
			json_object_set_new(o, name, json_integer(d));
	}
	return o;
}

static void *host_buffer(uint64_t size, bool huge)
{
	uint8_t *p = mmap(NULL, size + HUGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *a;

	if (p == MAP_FAILED)
		MUST(-errno);
	a = (uint8_t *)(((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	MUST(madvise(a, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) ? -errno :
									0);
	return a;
}

/*
 * How the buffers' pages are first faulted in, from the host, before the
 * guest's first pass builds its shadow page tables (--populate):
 *
 *   alternate    both, alternating in 64 KiB chunks, so that they get
 *                pages from the same stream of allocations (default)
 *   guest-first  all of the guest's RAM, then all of the host buffer
 *   host-first   the other way round
 *
 * Touched one after the other, the first buffer gets pages recycled from
 * the free lists, in no physical order, and the second fresh, physically
 * ascending ones; with 4 KiB pages the second then runs 10-15 % faster,
 * whichever side it is (docs/performance.md, guest/host bandwidth).  The
 * bench used to be guest-first in effect (the guest's warm-up pass came
 * first).  The layout each got is in the output (*_phys_*).
 */
enum populate {
	POP_ALTERNATE,
	POP_GUEST_FIRST,
	POP_HOST_FIRST
};
static const char *const populate_names[] = { "alternate", "guest-first",
					      "host-first", NULL };
static enum populate populate_mode = POP_ALTERNATE;

#define POPULATE_CHUNK (64u << 10)

static void populate(uint8_t *p, uint64_t size)
{
	MUST(madvise(p, size, MADV_POPULATE_WRITE) ? -errno : 0);
}

static void populate_both(uint8_t *guest, uint8_t *host, uint64_t size)
{
	uint64_t off, n;

	switch (populate_mode) {
	case POP_GUEST_FIRST:
		populate(guest, size);
		populate(host, size);
		break;
	case POP_HOST_FIRST:
		populate(host, size);
		populate(guest, size);
		break;
	default:
		for (off = 0; off < size; off += n) {
			n = size - off < POPULATE_CHUNK ? size - off :
							  POPULATE_CHUNK;
			populate(guest + off, n);
			populate(host + off, n);
		}
	}
}

/* ---- the guest side ---------------------------------------------------- */

/* One page-size case: a micro machine, its VM, and the host's buffer. */
struct setup {
	bool pages_4k;
	uint64_t size;
	struct mv_machine *m;
	struct mv_vm *vm;
	mv_gpa_t work_gpa;
	uint8_t *guest_buf; /* host view of the guest's work area */
	uint8_t *host_buf;
	uint32_t slot_flags;
	bool ram_aligned;
};

/* The micro machine's RAM advised for (or against) THP before any touch. */
static void advise_guest_ram(struct setup *s)
{
	struct mv_region *ram = mv_machine_find_region(s->m, "ram");
	uint8_t *p = NULL;

	if (!ram || !(p = mv_region_ram_ptr(ram)))
		fail("micro machine", "no RAM region \"ram\"");
	s->ram_aligned = !((uintptr_t)p % HUGE);
	MUST(madvise(p, mv_region_size(ram),
		     s->pages_4k ? MADV_NOHUGEPAGE : MADV_HUGEPAGE) ?
		     -errno :
		     0);
}

static void setup_new(struct setup *s, bool pages_4k, uint64_t size)
{
	struct mv_vm_opts o = { .nr_vcpus = 1, .pages_4k = pages_4k };
	struct mv_error err = { { 0 } };
	struct mv_kvm_slot_info slot;
	uint64_t scratch_size, len;
	mv_gpa_t scratch;
	void *hva;

	memset(s, 0, sizeof(*s));
	s->pages_4k = pages_4k;
	s->size = size;
	/* RAM: the boot area (16 MiB with 4 KiB page tables), the buffer. */
	if (mv_machine_preset("micro", size + 64 * MiB, &s->m, &err))
		fail("micro machine", err.msg);
	advise_guest_ram(s);
	MUST(mv_vm_new(s->m, &o, &s->vm));
	if (mv_vm_load(s->vm, mv_guest_bandwidth, mv_guest_bandwidth_len,
		       MV_GUEST_IMAGE_ELF, &err))
		fail("bandwidth guest", err.msg);
	mv_vm_scratch(s->vm, &scratch, &scratch_size);
	s->work_gpa = (scratch + HUGE - 1) & ~(HUGE - 1);
	if (s->work_gpa + size > scratch + scratch_size)
		fail("scratch RAM", "too small for the work area");
	MUST(mv_as_translate(mv_vm_memory(s->vm), s->work_gpa, true, &hva,
			     &len));
	if (len < size)
		fail("work area", "not contiguous in host memory");
	s->guest_buf = hva;
	s->host_buf = host_buffer(size, !pages_4k);
	populate_both(s->guest_buf, s->host_buf, size);
	MUST(mv_kvm_slot_lookup(mv_vm_kvm(s->vm), 0, s->work_gpa, &slot));
	s->slot_flags = slot.flags;
}

static int vm_fd(const struct setup *s)
{
	return mv_kvm_vm_fd(mv_vm_kvm(s->vm));
}

static void setup_free(struct setup *s)
{
	mv_vm_free(s->vm);
	mv_machine_free(s->m);
	munmap(s->host_buf, s->size); /* the alignment slack stays mapped */
}

/* Boot and run the guest once; its TSC cycles, *@value its result[1]. */
static uint64_t guest_run(struct setup *s, unsigned kernel, uint64_t reps,
			  uint64_t *value)
{
	struct mv_guest_info info = {
		.work_gpa = s->work_gpa,
		.work_size = s->size,
		.arg = { kernel, reps, WRITE_VALUE },
	};
	struct mv_error err = { { 0 } };
	struct mv_vm_result res;
	mv_gpa_t at = mv_vm_info_gpa(s->vm);
	uint64_t out[2];

	mv_vm_scratch(s->vm, &info.scratch_gpa, &info.scratch_size);
	if (mv_vm_boot(s->vm, &info, &err))
		fail("boot", err.msg);
	MUST(mv_vm_run(s->vm, &res));
	if (res.end != MV_VM_END_EXIT || res.status)
		fail("guest run", res.msg[0] ? res.msg : "unexpected end");
	at = mv_vm_info_gpa(s->vm);
	MUST(mv_as_read(mv_vm_memory(s->vm),
			at + offsetof(struct mv_guest_info, result), out,
			sizeof(out)) ?
		     -EIO :
		     0);
	*value = out[1];
	return out[0];
}

static uint64_t host_run(struct setup *s, unsigned kernel, uint64_t reps,
			 uint64_t *value)
{
	uint64_t cycles;

	*value = WRITE_VALUE;
	if (mv_bw_run(kernel, s->host_buf, s->size, reps, &cycles, value))
		fail("host run", "unknown kernel");
	return cycles;
}

/* ---- measurement --------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned kernel;
	unsigned bytes_per_pass; /* per byte of buffer: traffic per pass */
} kernels[] = {
	{ "write", MV_BW_WRITE, 1 },
	{ "read", MV_BW_READ, 1 },
	{ "copy", MV_BW_COPY, 1 }, /* half read + half written */
	{ "chase", MV_BW_CHASE, 0 },
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Does the guest see what the host sees?  Read sums must match (both
 * buffers hold what the write kernel left); chase ends at the same node.
 */
static bool results_match(struct setup *s, unsigned kernel, uint64_t gv,
			  uint64_t hv)
{
	if (kernel == MV_BW_READ)
		return gv == hv;
	if (kernel == MV_BW_CHASE)
		return gv - s->work_gpa == hv - (uintptr_t)s->host_buf;
	return true;
}

static json_t *measure_kernel(struct setup *s, unsigned k, unsigned pairs,
			      uint64_t passes, double hz)
{
	double *g = calloc(pairs, sizeof(double)), *h, *r;
	json_t *before, *after;
	uint64_t reps = passes, gv, hv;
	bool match = true;
	unsigned i;
	json_t *o;

	h = calloc(pairs, sizeof(double));
	r = calloc(pairs, sizeof(double));
	MUST(g && h && r ? 0 : -ENOMEM);
	if (kernels[k].kernel == MV_BW_CHASE) {
		uint64_t nodes = mv_bw_chase_init(s->guest_buf, s->size,
						  MV_BW_CHASE_ALIGN,
						  s->work_gpa, SEED);

		mv_bw_chase_init(s->host_buf, s->size, MV_BW_CHASE_ALIGN,
				 (uintptr_t)s->host_buf, SEED);
		reps = nodes * passes / 8; /* ~as long as the other kernels */
	}
	guest_run(s, kernels[k].kernel, reps, &gv); /* warm-up */
	host_run(s, kernels[k].kernel, reps, &hv);
	before = kvm_stats_all(mv_vcpu_fd(mv_vm_vcpu(s->vm, 0)));
	for (i = 0; i < pairs; i++) {
		/* G H, then H G: a drift in machine speed cancels out. */
		if (i % 2)
			h[i] = (double)host_run(s, kernels[k].kernel, reps,
						&hv);
		g[i] = (double)guest_run(s, kernels[k].kernel, reps, &gv);
		if (!(i % 2))
			h[i] = (double)host_run(s, kernels[k].kernel, reps,
						&hv);
		r[i] = h[i] / g[i];
		match = match && results_match(s, kernels[k].kernel, gv, hv);
	}
	after = kvm_stats_all(mv_vcpu_fd(mv_vm_vcpu(s->vm, 0)));
	o = json_pack("{s:s, s:I, s:b}", "kernel", kernels[k].name, "reps",
		      (json_int_t)reps, "results_match", match);
	/* What the vCPU went through in the timed guest runs (exits ...). */
	json_object_set_new(o, "vcpu_stats_delta",
			    kvm_stats_delta(before, after));
	json_decref(before);
	json_decref(after);
	json_object_set_new(o, "ratio", json_real(median(r, pairs)));
	json_object_set_new(o, "ratio_min", json_real(r[0]));
	json_object_set_new(o, "ratio_max", json_real(r[pairs - 1]));
	if (kernels[k].kernel == MV_BW_CHASE) {
		json_object_set_new(
			o, "guest_ns_per_step",
			json_real(median(g, pairs) / hz * 1e9 / (double)reps));
		json_object_set_new(
			o, "host_ns_per_step",
			json_real(median(h, pairs) / hz * 1e9 / (double)reps));
	} else {
		double bytes = (double)s->size * (double)reps;

		json_object_set_new(
			o, "guest_mb_s",
			json_real(bytes / (median(g, pairs) / hz) / 1e6));
		json_object_set_new(
			o, "host_mb_s",
			json_real(bytes / (median(h, pairs) / hz) / 1e6));
	}
	free(g);
	free(h);
	free(r);
	return o;
}

/* Touch every page of both buffers (shadow and host faults) first. */
static void warm_up(struct setup *s)
{
	uint64_t v;

	guest_run(s, MV_BW_WRITE, 1, &v);
	host_run(s, MV_BW_WRITE, 1, &v);
}

static json_t *run_case(bool pages_4k, uint64_t size, unsigned pairs,
			uint64_t passes, double hz, double *worst)
{
	struct setup s;
	json_t *o, *ks = json_array(), *ko;
	unsigned k;

	setup_new(&s, pages_4k, size);
	warm_up(&s);
	o = json_pack("{s:s, s:I, s:I, s:b, s:f, s:f, s:b}", "pages",
		      pages_4k ? "4k" : "2m", "work_size", (json_int_t)size,
		      "work_gpa", (json_int_t)s.work_gpa,
		      "guest_ram_2m_aligned", s.ram_aligned,
		      "guest_ram_thp_share", thp_share(s.guest_buf, size),
		      "host_thp_share", thp_share(s.host_buf, size),
		      "slot_logs_dirty",
		      (s.slot_flags & KVM_MEM_LOG_DIRTY_PAGES) != 0);
	for (k = 0; k < sizeof(kernels) / sizeof(*kernels); k++) {
		ko = measure_kernel(&s, k, pairs, passes, hz);
		if (json_real_value(json_object_get(ko, "ratio")) < *worst)
			*worst = json_real_value(json_object_get(ko, "ratio"));
		json_array_append_new(ks, ko);
	}
	json_object_set_new(o, "kernels", ks);
	{
		long long gb, gc, hb, hc;

		phys_layout(s.guest_buf, size, &gb, &gc);
		phys_layout(s.host_buf, size, &hb, &hc);
		json_object_set_new(o, "guest_phys_2m_blocks",
				    json_integer(gb));
		json_object_set_new(o, "guest_phys_contig_pages",
				    json_integer(gc));
		json_object_set_new(o, "host_phys_2m_blocks", json_integer(hb));
		json_object_set_new(o, "host_phys_contig_pages",
				    json_integer(hc));
	}
	/* After the runs: did the pages stay what they were? */
	json_object_set_new(o, "guest_ram_thp_share_after",
			    json_real(thp_share(s.guest_buf, size)));
	json_object_set_new(o, "kvm_pages_4k",
			    json_integer(kvm_vm_stat(vm_fd(&s), "pages_4k")));
	json_object_set_new(o, "kvm_pages_2m",
			    json_integer(kvm_vm_stat(vm_fd(&s), "pages_2m")));
	setup_free(&s);
	return o;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--quick] [--size MIB] [--passes N] [--pairs N] "
		"[--pages 2m|4k|both]\n"
		"       [--populate alternate|guest-first|host-first]\n",
		argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	bool quick = false, do_2m = true, do_4k = true;
	uint64_t size = 0, passes = 2;
	unsigned pairs = 0;
	double hz, worst = 1e9;
	int cpu, i;
	json_t *cases = json_array(), *o;

	for (i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--quick")) {
			quick = true;
			continue;
		}
		if (!v)
			usage(argv[0]);
		i++;
		if (!strcmp(argv[i - 1], "--size") && atoi(v) > 0)
			size = (uint64_t)atoi(v) * MiB;
		else if (!strcmp(argv[i - 1], "--passes") && atoi(v) > 0)
			passes = (uint64_t)atoi(v);
		else if (!strcmp(argv[i - 1], "--pairs") && atoi(v) > 0)
			pairs = (unsigned)atoi(v);
		else if (!strcmp(argv[i - 1], "--populate")) {
			int m;

			for (m = 0; populate_names[m]; m++)
				if (!strcmp(v, populate_names[m]))
					break;
			if (!populate_names[m])
				usage(argv[0]);
			populate_mode = (enum populate)m;
		} else if (!strcmp(argv[i - 1], "--pages") &&
			   (!strcmp(v, "2m") || !strcmp(v, "4k") ||
			    !strcmp(v, "both"))) {
			do_2m = strcmp(v, "4k") != 0;
			do_4k = strcmp(v, "2m") != 0;
		} else
			usage(argv[0]);
	}
	if (!size)
		size = quick ? 8 * MiB : 64 * MiB;
	if (size % HUGE)
		usage(argv[0]);
	if (!pairs)
		pairs = quick ? 3 : 61;
	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("{\"bench\": \"bandwidth\", \"skipped\": \"/dev/kvm: "
		       "%s\"}\n",
		       strerror(errno));
		return 77;
	}
	cpu = pin_self();
	hz = tsc_hz();
	if (do_2m)
		json_array_append_new(cases, run_case(false, size, pairs,
						      passes, hz, &worst));
	if (do_4k)
		json_array_append_new(cases, run_case(true, size, pairs, passes,
						      hz, &worst));
	o = json_pack("{s:s, s:b, s:s, s:i, s:f, s:i, s:I, s:o, s:{s:f, s:f, "
		      "s:b}}",
		      "bench", "bandwidth", "quick", quick, "populate",
		      populate_names[populate_mode], "pinned_cpu", cpu,
		      "tsc_mhz", hz / 1e6, "pairs", pairs, "passes",
		      (json_int_t)passes, "cases", cases, "goal", "ratio_min",
		      GOAL_RATIO, "worst_ratio", worst, "met",
		      worst >= GOAL_RATIO);
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(5));
	putchar('\n');
	json_decref(o);
	return 0;
}
