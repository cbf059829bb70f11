// SPDX-License-Identifier: MIT
/*
 * bench/lookup: ns per "which range holds this address" for the range
 * table (src/util/range_table.h), with and without a hint, side by side
 * in the same run with a linear scan, a plain binary search and DPDK
 * 22.11's rte_vhost_va_from_guest_pa() over an equivalent table.  Every
 * method translates a GPA to an HVA and clamps a length, as DPDK does.
 * Prints JSON on stdout (docs/performance.md).
 */
#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_DPDK
#include <rte_vhost.h>
#endif

#include "range_table.h"

#define MIB (1ull << 20)
#define REGION_SIZE (64 * MIB) /* reference/vhost-user.md §7 */
#define REGION_GAP (2 * MIB)
#define HVA_BASE 0x7f0000000000ull
#define NR_ADDRS 65536
#define LEN 1500
#define CHECK_ADDRS 1024

enum method {
	M_MEMVIRT,
	M_MEMVIRT_HINT,
	M_LINEAR,
	M_BSEARCH,
	M_DPDK,
	NR_METHODS
};
static const char *const method_names[] = { "memvirt", "memvirt_hint", "linear",
					    "bsearch", "dpdk" };

enum pattern {
	P_RANDOM,
	P_SEQUENTIAL,
	NR_PATTERNS
};
static const char *const pattern_names[] = { "random", "sequential" };

/* The same N regions, as our table and as DPDK's. */
struct setup {
	size_t n;
	struct mv_range *ranges; /* idx = the region's HVA */
	struct mv_range_table *t;
#ifdef HAVE_DPDK
	struct rte_vhost_memory *mem;
#endif
	uint64_t *addrs[NR_PATTERNS];
};

/* A bench has nothing to unwind: any failure ends the run. */
static void must(int ret, const char *what)
{
	if (ret) {
		fprintf(stderr, "bench-lookup: %s: %s\n", what, strerror(-ret));
		exit(1);
	}
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	must(p ? 0 : -ENOMEM, "calloc");
	return p;
}

static uint64_t rnd_state = 0x6c6f6f6b75702121ull;

static uint64_t rnd(void)
{
	uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the methods: translate every address, return a checksum ---------- */

/* What every method computes from the range holding @gpa. */
static inline uint64_t translate(const struct mv_range *r, uint64_t gpa)
{
	uint64_t len = LEN;

	if (!r)
		return 0;
	if (len > r->last - gpa + 1)
		len = r->last - gpa + 1;
	return (gpa - r->first + r->idx) ^ len;
}

static uint64_t run_memvirt(const struct setup *s, const uint64_t *a, size_t m)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < m; i++)
		sum += translate(mv_range_table_lookup(s->t, a[i], NULL), a[i]);
	return sum;
}

/* One hint per reader: here, per run. */
static uint64_t run_memvirt_hint(const struct setup *s, const uint64_t *a,
				 size_t m)
{
	struct mv_range_hint hint = MV_RANGE_HINT_INIT;
	uint64_t sum = 0;

	for (size_t i = 0; i < m; i++)
		sum += translate(mv_range_table_lookup(s->t, a[i], &hint),
				 a[i]);
	return sum;
}

static const struct mv_range *linear(const struct mv_range *r, size_t n,
				     uint64_t gpa)
{
	for (size_t i = 0; i < n; i++)
		if (gpa >= r[i].first && gpa <= r[i].last)
			return &r[i];
	return NULL;
}

static uint64_t run_linear(const struct setup *s, const uint64_t *a, size_t m)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < m; i++)
		sum += translate(linear(s->ranges, s->n, a[i]), a[i]);
	return sum;
}

/* The textbook binary search over the array of ranges. */
static const struct mv_range *bsearch_range(const struct mv_range *r, size_t n,
					    uint64_t gpa)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (gpa < r[mid].first)
			hi = mid;
		else if (gpa > r[mid].last)
			lo = mid + 1;
		else
			return &r[mid];
	}
	return NULL;
}

static uint64_t run_bsearch(const struct setup *s, const uint64_t *a, size_t m)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < m; i++)
		sum += translate(bsearch_range(s->ranges, s->n, a[i]), a[i]);
	return sum;
}

#ifdef HAVE_DPDK
static uint64_t run_dpdk(const struct setup *s, const uint64_t *a, size_t m)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < m; i++) {
		uint64_t len = LEN;
		uint64_t hva = rte_vhost_va_from_guest_pa(s->mem, a[i], &len);

		sum += hva ^ len;
	}
	return sum;
}
#endif

typedef uint64_t run_fn(const struct setup *, const uint64_t *, size_t);

static run_fn *const runners[NR_METHODS] = {
	run_memvirt, run_memvirt_hint, run_linear, run_bsearch,
#ifdef HAVE_DPDK
	run_dpdk,
#else
	NULL,
#endif
};

/* ---- the setup --------------------------------------------------------- */

static void setup_table(struct setup *s)
{
	s->ranges = xcalloc(s->n, sizeof(*s->ranges));
	for (size_t i = 0; i < s->n; i++) {
		s->ranges[i].first = i * (REGION_SIZE + REGION_GAP);
		s->ranges[i].last = s->ranges[i].first + REGION_SIZE - 1;
		s->ranges[i].idx = HVA_BASE + i * REGION_SIZE;
	}
	must(mv_range_table_new(s->ranges, s->n, &s->t), "mv_range_table_new");
#ifdef HAVE_DPDK
	s->mem =
		xcalloc(1, sizeof(*s->mem) + s->n * sizeof(s->mem->regions[0]));
	s->mem->nregions = (uint32_t)s->n;
	for (size_t i = 0; i < s->n; i++) {
		struct rte_vhost_mem_region *r = &s->mem->regions[i];

		r->guest_phys_addr = s->ranges[i].first;
		r->guest_user_addr = s->ranges[i].idx;
		r->host_user_addr = s->ranges[i].idx;
		r->size = REGION_SIZE;
		r->mmap_addr = (void *)(uintptr_t)s->ranges[i].idx;
		r->mmap_size = REGION_SIZE;
		r->fd = -1;
	}
#endif
}

/* Uniformly random region + offset; sequential is the same set sorted. */
static void setup_addrs(struct setup *s)
{
	uint64_t *a = xcalloc(NR_ADDRS, sizeof(*a));

	for (size_t i = 0; i < NR_ADDRS; i++)
		a[i] = s->ranges[rnd() % s->n].first + rnd() % REGION_SIZE;
	s->addrs[P_RANDOM] = a;
	s->addrs[P_SEQUENTIAL] = xcalloc(NR_ADDRS, sizeof(*a));
	memcpy(s->addrs[P_SEQUENTIAL], a, NR_ADDRS * sizeof(*a));
	qsort(s->addrs[P_SEQUENTIAL], NR_ADDRS, sizeof(*a), cmp_u64);
}

static void setup_free(struct setup *s)
{
	mv_range_table_free(s->t);
	free(s->ranges);
#ifdef HAVE_DPDK
	free(s->mem);
#endif
	for (int p = 0; p < NR_PATTERNS; p++)
		free(s->addrs[p]);
}

/*
 * All methods must agree, or the figures compare different work; checked
 * on a strided sample, which the O(n) methods walk in reasonable time.
 */
static void check_agree(const struct setup *s)
{
	for (int p = 0; p < NR_PATTERNS; p++) {
		uint64_t a[CHECK_ADDRS], want;

		for (size_t i = 0; i < CHECK_ADDRS; i++)
			a[i] = s->addrs[p][i * (NR_ADDRS / CHECK_ADDRS)];
		want = run_linear(s, a, CHECK_ADDRS);
		for (int k = 0; k < NR_METHODS; k++)
			if (runners[k] && runners[k](s, a, CHECK_ADDRS) != want)
				must(-EPROTO, method_names[k]);
	}
}

/* ---- measuring --------------------------------------------------------- */

/*
 * A sample times @lookups translations.  O(n) methods get fewer at large
 * n, taken at a stride through the address array so that a sequential
 * sample still sweeps every region.
 */
struct sample {
	const uint64_t *addrs;
	size_t len, passes;
	uint64_t *own; /* strided copy, or NULL */
};

static void sample_init(struct sample *sm, const uint64_t *addrs,
			size_t lookups)
{
	memset(sm, 0, sizeof(*sm));
	if (lookups >= NR_ADDRS) {
		sm->addrs = addrs;
		sm->len = NR_ADDRS;
		sm->passes = lookups / NR_ADDRS;
		return;
	}
	sm->own = xcalloc(lookups, sizeof(*sm->own));
	for (size_t i = 0; i < lookups; i++)
		sm->own[i] = addrs[i * (NR_ADDRS / lookups)];
	sm->addrs = sm->own;
	sm->len = lookups;
	sm->passes = 1;
}

static volatile uint64_t sink;

/* ns per lookup of one timed sample. */
static double sample_run(run_fn *fn, const struct setup *s,
			 const struct sample *sm)
{
	uint64_t sum = 0;
	double t0 = now_ns();

	for (size_t p = 0; p < sm->passes; p++)
		sum += fn(s, sm->addrs, sm->len);
	sink += sum;
	return (now_ns() - t0) / (double)(sm->len * sm->passes);
}

static size_t lookups_for(enum method k, size_t n, bool quick)
{
	size_t fast = quick ? 4096 : 8 * NR_ADDRS;
	size_t slow;

	if (k != M_LINEAR && k != M_DPDK)
		return fast;
	slow = (quick ? 1ul << 16 : 1ul << 22) / n;
	if (slow < (quick ? 256 : 4096))
		slow = quick ? 256 : 4096;
	return slow < fast ? slow : fast;
}

/*
 * One row: every method on one pattern, @reps rounds, the methods
 * interleaved inside each round so drift hits them alike; medians.
 */
static json_t *measure_row(const struct setup *s, enum pattern p,
			   unsigned int reps, bool quick, double med[])
{
	struct sample sm[NR_METHODS];
	double *ns = xcalloc(NR_METHODS * reps, sizeof(*ns));
	json_t *row = json_pack("{s:I, s:s}", "n", (json_int_t)s->n, "pattern",
				pattern_names[p]);

	for (int k = 0; k < NR_METHODS; k++) {
		sample_init(&sm[k], s->addrs[p], lookups_for(k, s->n, quick));
		if (runners[k]) /* warm up caches and predictors */
			sample_run(runners[k], s, &sm[k]);
	}
	for (unsigned int r = 0; r < reps; r++)
		for (int k = 0; k < NR_METHODS; k++)
			if (runners[k])
				ns[k * reps + r] =
					sample_run(runners[k], s, &sm[k]);
	for (int k = 0; k < NR_METHODS; k++) {
		med[k] = runners[k] ? median(&ns[k * reps], reps) : -1;
		json_object_set_new(row, method_names[k],
				    runners[k] ? json_real(med[k]) :
						 json_null());
		free(sm[k].own);
	}
	free(ns);
	return row;
}

/* Pin to the CPU we are on, so the caches stay ours. */
static int pin_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu < 0)
		return -1;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -1 : cpu;
}

/* ---- the goals of the issue -------------------------------------------- */

/* memvirt (no hint) is at least @factor times as fast as DPDK at @n. */
static json_t *goal_vs_dpdk(const double *med, size_t n, double factor)
{
	bool have = med[M_DPDK] >= 0;
	double ratio = have ? med[M_DPDK] / med[M_MEMVIRT] : 0;
	double ratio_hint = have ? med[M_DPDK] / med[M_MEMVIRT_HINT] : 0;

	return json_pack("{s:I, s:s, s:f, s:f, s:f, s:o, s:o, s:o, s:o}", "n",
			 (json_int_t)n, "pattern", "random", "min_speedup",
			 factor, "memvirt", med[M_MEMVIRT], "memvirt_hint",
			 med[M_MEMVIRT_HINT], "dpdk",
			 have ? json_real(med[M_DPDK]) : json_null(), "speedup",
			 have ? json_real(ratio) : json_null(), "speedup_hint",
			 have ? json_real(ratio_hint) : json_null(), "met",
			 have ? json_boolean(ratio >= factor) : json_null());
}

static json_t *goal_max_ns(const double *med, size_t n, double max_ns)
{
	return json_pack("{s:I, s:s, s:f, s:f, s:f, s:b}", "n", (json_int_t)n,
			 "pattern", "random", "max_ns", max_ns, "memvirt",
			 med[M_MEMVIRT], "memvirt_hint", med[M_MEMVIRT_HINT],
			 "met", med[M_MEMVIRT] <= max_ns);
}

static json_t *goals(double med[][NR_METHODS])
{
	return json_pack("{s:o, s:o, s:o, s:o}", "n1_no_slower_than_dpdk",
			 goal_vs_dpdk(med[0], 1, 1.0), "n8_2x_faster_than_dpdk",
			 goal_vs_dpdk(med[1], 8, 2.0),
			 "n509_10x_faster_than_dpdk",
			 goal_vs_dpdk(med[3], 509, 10.0),
			 "n32768_random_at_most_10ns",
			 goal_max_ns(med[5], 32768, 10.0));
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 1, 8, 32, 509, 4096, 32768 };
	enum {
		NR_SIZES = sizeof(sizes) / sizeof(sizes[0])
	};
	bool quick = argc == 2 && !strcmp(argv[1], "--quick");
	unsigned int reps = quick ? 1 : 7;
	double med[NR_SIZES][NR_METHODS], unused[NR_METHODS];
	json_t *results = json_array(), *o;
	int cpu;

	if (argc > 2 || (argc == 2 && !quick)) {
		fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
		return 2;
	}
	cpu = pin_cpu();
	for (size_t i = 0; i < NR_SIZES; i++) {
		struct setup s = { .n = sizes[i] };

		setup_table(&s);
		setup_addrs(&s);
		check_agree(&s);
		json_array_append_new(results, measure_row(&s, P_RANDOM, reps,
							   quick, med[i]));
		json_array_append_new(results,
				      measure_row(&s, P_SEQUENTIAL, reps, quick,
						  unused));
		setup_free(&s);
	}
	o = json_pack("{s:s, s:s, s:b, s:i, s:o, s:i, s:I, s:o, s:o}", "bench",
		      "lookup", "unit", "ns", "quick", quick, "reps", reps,
		      "cpu", cpu >= 0 ? json_integer(cpu) : json_null(),
		      "addresses", NR_ADDRS, "region_size",
		      (json_int_t)REGION_SIZE, "results", results, "goals",
		      goals(med));
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(4));
	putchar('\n');
	json_decref(o);
	return 0;
}
