// SPDX-License-Identifier: MIT
/*
 * bench/slots: what one memslot update costs memvirt itself, next to the
 * KVM_SET_USER_MEMORY_REGION ioctl it makes, at 1..32000 slots.  A machine
 * maps N 4 KiB aliases of one RAM region, each at its own GPA with a gap,
 * into a real VM; one alias in the middle is disabled and enabled again,
 * one commit (one ioctl) each.  The ioctl is timed by wrapping the KVM
 * layer's ioctl seam; the memslot listener's callbacks are bracketed by
 * two listeners of priority 9 and 11; the memory core alone is timed with
 * an empty listener before the VM exists.  Prints JSON on stdout.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <memvirt/kvm.h>

#define PAGE 0x1000ull
#define STRIDE 0x2000ull /* one page mapped, one page gap */
#define GOAL_N 32000
#define GOAL_RATIO 0.05

/* A bench has nothing to unwind: any failure ends the run. */
#define MUST(call) must((call), #call)

static void must(long ret, const char *call)
{
	if (ret) {
		fprintf(stderr, "bench-slots: %s: %s\n", call,
			strerror((int)-ret));
		exit(1);
	}
}

static void *must_alloc(size_t size)
{
	void *p = calloc(1, size);

	MUST(p ? 0 : -ENOMEM);
	return p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the timed ioctl seam ----------------------------------------------- */

/* struct timed_sys - the host kernel with KVM_SET_USER_MEMORY_REGION timed. */
struct timed_sys {
	struct mv_kvm_sys sys; /* first: the seam hands us &sys */
	const struct mv_kvm_sys_ops *host;
	struct mv_kvm_sys_ops ops;
	uint64_t slot_ns;
	unsigned long slot_calls;
};

static long timed_ioctl(struct mv_kvm_sys *s, int fd, unsigned long req,
			void *arg)
{
	struct timed_sys *t = (struct timed_sys *)s;
	uint64_t t0;
	long ret;

	if (req != KVM_SET_USER_MEMORY_REGION)
		return t->host->ioctl(s, fd, req, arg);
	t0 = now_ns();
	ret = t->host->ioctl(s, fd, req, arg);
	t->slot_ns += now_ns() - t0;
	t->slot_calls++;
	return ret;
}

static void timed_sys_init(struct timed_sys *t)
{
	mv_kvm_sys_init_host(&t->sys);
	t->host = t->sys.ops;
	t->ops = *t->host;
	t->ops.ioctl = timed_ioctl;
	t->sys.ops = &t->ops;
}

/* ---- listeners bracketing the memslot listener (priority 10) ------------ */

/*
 * Forward events (begin, region_add, commit) reach priority 9, then the
 * memslot listener, then 11; region_del goes the other way.  The time
 * between the two brackets of one event is the memslot listener's.
 */
struct bracket {
	struct mv_listener lo, hi; /* priority 9 and 11 */
	uint64_t t0;
	uint64_t ns;
};

static struct bracket *to_bracket(struct mv_listener *l)
{
	return l->opaque;
}

static int open_fwd(struct mv_listener *l)
{
	to_bracket(l)->t0 = now_ns();
	return 0;
}

static int close_fwd(struct mv_listener *l)
{
	struct bracket *b = to_bracket(l);

	b->ns += now_ns() - b->t0;
	return 0;
}

static int open_sec(struct mv_listener *l, const struct mv_section *s)
{
	(void)s;
	return open_fwd(l);
}

static int close_sec(struct mv_listener *l, const struct mv_section *s)
{
	(void)s;
	return close_fwd(l);
}

static const struct mv_listener_ops lo_ops = {
	.begin = open_fwd,
	.region_add = open_sec,
	.commit = open_fwd,
	.region_del = close_sec,
};

static const struct mv_listener_ops hi_ops = {
	.begin = close_fwd,
	.region_add = close_sec,
	.commit = close_fwd,
	.region_del = open_sec,
};

static void bracket_register(struct bracket *b, struct mv_as *as)
{
	b->lo = (struct mv_listener){ .ops = &lo_ops,
				      .priority = 9,
				      .name = "bench-lo",
				      .opaque = b };
	b->hi = (struct mv_listener){ .ops = &hi_ops,
				      .priority = 11,
				      .name = "bench-hi",
				      .opaque = b };
	MUST(mv_listener_register(as, &b->lo));
	MUST(mv_listener_register(as, &b->hi));
}

/* ---- the machine -------------------------------------------------------- */

/* struct world - N aliases of one N-page RAM region, alias i at i*STRIDE. */
struct world {
	struct mv_machine *m;
	struct mv_region *root, *ram;
	struct mv_region **alias;
	struct mv_as *as;
	size_t n;
};

static void world_new(struct world *w, size_t n)
{
	char name[32];
	size_t i;

	w->n = n;
	w->alias = must_alloc(n * sizeof(*w->alias));
	MUST(mv_machine_new(&w->m));
	MUST(mv_region_new_container(w->m, "system", UINT64_MAX, &w->root));
	MUST(mv_region_new_ram(w->m, "pages", n * PAGE, NULL, &w->ram));
	mv_txn_begin(w->m);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "page-%zu", i);
		MUST(mv_region_new_alias(w->m, name, w->ram, i * PAGE, PAGE,
					 &w->alias[i]));
		MUST(mv_region_add_subregion(w->root, i * STRIDE, w->alias[i]));
	}
	MUST(mv_txn_commit(w->m));
	MUST(mv_as_new(w->m, "memory", w->root, &w->as));
}

static void world_free(struct world *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		mv_region_unref(w->alias[i]);
	mv_region_unref(w->ram);
	mv_region_unref(w->root);
	mv_machine_free(w->m);
	free(w->alias);
}

/* ---- measurements ------------------------------------------------------- */

/* Per commit: total, inside the ioctl, inside the memslot listener. */
struct sample {
	double total_us, ioctl_us, listener_us;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * @reps commits alternately disabling and enabling the middle alias;
 * @t and @b may be NULL (no VM, no brackets).
 */
static void toggle(struct world *w, unsigned reps, struct timed_sys *t,
		   struct bracket *b, struct sample *out)
{
	struct mv_region *mid = w->alias[w->n / 2];
	uint64_t t0, io0, br0;
	unsigned r;

	for (r = 0; r < reps; r++) {
		io0 = t ? t->slot_ns : 0;
		br0 = b ? b->ns : 0;
		t0 = now_ns();
		MUST(mv_region_set_enabled(mid, r % 2 == 1));
		out[r].total_us = (now_ns() - t0) / 1e3;
		out[r].ioctl_us = t ? (t->slot_ns - io0) / 1e3 : 0;
		out[r].listener_us = b ? (b->ns - br0) / 1e3 : 0;
	}
}

/* The memory core alone: commits with an empty listener, no VM. */
static double measure_core(struct world *w, unsigned reps)
{
	static const struct mv_listener_ops none;
	struct mv_listener l = { .ops = &none,
				 .priority = 10,
				 .name = "bench-empty" };
	struct sample *s = must_alloc((reps + 2) * sizeof(*s));
	double *v = must_alloc(reps * sizeof(*v));
	double us;
	unsigned r;

	MUST(mv_listener_register(w->as, &l));
	toggle(w, 2, NULL, NULL, s); /* warm-up */
	toggle(w, reps, NULL, NULL, s);
	mv_listener_unregister(&l);
	for (r = 0; r < reps; r++)
		v[r] = s[r].total_us;
	us = median(v, reps);
	free(v);
	free(s);
	return us;
}

static void set_real(json_t *o, const char *key, double v)
{
	json_object_set_new(o, key, json_real(v));
}

/* Medians over @reps samples: the commit, the ioctl, the difference. */
static void report_own(json_t *o, struct sample *s, unsigned reps)
{
	double *v = must_alloc(reps * sizeof(*v)), ioctl, own;
	unsigned r;

	for (r = 0; r < reps; r++)
		v[r] = s[r].total_us;
	set_real(o, "total_us_per_commit", median(v, reps));
	for (r = 0; r < reps; r++)
		v[r] = s[r].ioctl_us;
	ioctl = median(v, reps);
	set_real(o, "ioctl_us_per_call", ioctl);
	for (r = 0; r < reps; r++)
		v[r] = s[r].total_us - s[r].ioctl_us;
	own = median(v, reps);
	set_real(o, "memvirt_own_us_per_commit", own);
	set_real(o, "own_over_ioctl", own / ioctl);
	free(v);
}

/* Medians over @reps bracketed samples: the memslot listener, the rest. */
static void report_split(json_t *o, struct sample *s, unsigned reps,
			 double core)
{
	double *v = must_alloc(reps * sizeof(*v));
	unsigned r;

	for (r = 0; r < reps; r++)
		v[r] = s[r].total_us - s[r].ioctl_us;
	set_real(o, "bracketed_own_us_per_commit", median(v, reps));
	for (r = 0; r < reps; r++)
		v[r] = s[r].listener_us - s[r].ioctl_us;
	set_real(o, "listener_own_us_per_commit", median(v, reps));
	for (r = 0; r < reps; r++)
		v[r] = s[r].total_us - s[r].listener_us;
	set_real(o, "core_in_run_us_per_commit", median(v, reps));
	set_real(o, "core_alone_us_per_commit", core);
	free(v);
}

static void run_one(size_t n, unsigned reps, json_t *o)
{
	struct mv_kvm_opts ko = { 0 };
	struct sample *s = must_alloc(reps * sizeof(*s));
	struct mv_kvm_stats st;
	struct timed_sys t = { 0 };
	struct bracket b = { 0 };
	struct world w;
	struct mv_kvm *k;
	uint64_t t0;
	double core;

	world_new(&w, n);
	core = measure_core(&w, reps);
	timed_sys_init(&t);
	ko.sys = &t.sys;
	MUST(mv_kvm_new(&ko, &k));
	t0 = now_ns();
	MUST(mv_kvm_attach(k, w.as, 0));
	set_real(o, "attach_ms", (now_ns() - t0) / 1e6);
	json_object_set_new(o, "slots",
			    json_integer((json_int_t)mv_kvm_slot_count(k, 0)));
	/* the goal's pass: nothing but memvirt between the clock reads */
	toggle(&w, 2, &t, NULL, s); /* warm-up */
	t.slot_calls = 0;
	toggle(&w, reps, &t, NULL, s);
	json_object_set_new(o, "ioctls_per_commit",
			    json_real((double)t.slot_calls / reps));
	report_own(o, s, reps);
	/* the breakdown's pass: the brackets' clock reads cost it ~0.15 us */
	bracket_register(&b, w.as);
	toggle(&w, 2, &t, &b, s);
	toggle(&w, reps, &t, &b, s);
	report_split(o, s, reps, core);
	mv_kvm_get_stats(k, &st);
	json_object_set_new(o, "commit_errors",
			    json_integer((json_int_t)st.commit_errors));
	json_object_set_new(o, "reps", json_integer(reps));
	mv_listener_unregister(&b.hi);
	mv_listener_unregister(&b.lo);
	t0 = now_ns();
	mv_kvm_free(k);
	set_real(o, "free_ms", (now_ns() - t0) / 1e6);
	world_free(&w);
	free(s);
}

/*
 * --loop N REPS [--cold]: only the toggles, at N slots, with nothing
 * timed inside them, for a profiler (callgrind --toggle-collect=
 * mv_region_set_enabled counts exactly the commits); --cold sweeps an
 * 8 MiB buffer between toggles, so every commit starts on cold caches.
 * Prints the median commit time (with the ioctl) as JSON.
 */
static int toggle_loop(size_t n, unsigned reps, bool cold)
{
	static char sweep[8 << 20];
	struct mv_kvm_opts ko = { 0 };
	double *v = must_alloc(reps * sizeof(*v));
	struct world w;
	struct mv_kvm *k;
	unsigned r;
	size_t i;

	world_new(&w, n);
	MUST(mv_kvm_new(&ko, &k));
	MUST(mv_kvm_attach(k, w.as, 0));
	for (r = 0; r < reps; r++) {
		uint64_t t0;

		for (i = 0; cold && i < sizeof(sweep); i += 64)
			sweep[i]++;
		t0 = now_ns();
		MUST(mv_region_set_enabled(w.alias[n / 2], r % 2 == 1));
		v[r] = (now_ns() - t0) / 1e3;
	}
	printf("{\"bench\": \"slots-loop\", \"n\": %zu, \"reps\": %u, "
	       "\"cold\": %s, \"commit_us_median\": %g}\n",
	       n, reps, cold ? "true" : "false", median(v, reps));
	mv_kvm_free(k);
	world_free(&w);
	free(v);
	return 0;
}

static int usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--quick]\n       %s --loop N REPS [--cold]\n", prog,
		prog);
	return 2;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 1, 16, 256, 4096, 32000 };
	bool quick = argc == 2 && !strcmp(argv[1], "--quick");
	bool loop = argc >= 4 && !strcmp(argv[1], "--loop");
	json_t *results, *o, *goal = json_null();
	size_t i;

	if (loop ? argc > 5 || (argc == 5 && strcmp(argv[4], "--cold")) ||
			    strtoul(argv[2], NULL, 10) < 1 ||
			    strtoul(argv[3], NULL, 10) < 1 :
		   argc > 2 || (argc == 2 && !quick))
		return usage(argv[0]);
	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("{\"bench\": \"slots\", \"skipped\": \"/dev/kvm: %s\"}\n",
		       strerror(errno));
		return 77;
	}
	if (loop)
		return toggle_loop(strtoul(argv[2], NULL, 10),
				   (unsigned)strtoul(argv[3], NULL, 10),
				   argc == 5);
	results = json_array();
	for (i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		if (quick && sizes[i] > 256)
			break;
		o = json_pack("{s:I}", "n", (json_int_t)sizes[i]);
		json_array_append_new(results, o);
		run_one(sizes[i], quick ? 20 : 1000, o);
		if (sizes[i] == GOAL_N) {
			double r = json_real_value(
				json_object_get(o, "own_over_ioctl"));
			double l = json_real_value(json_object_get(
					   o, "listener_own_us_per_commit")) /
				   json_real_value(json_object_get(
					   o, "ioctl_us_per_call"));

			goal = json_pack("{s:f, s:f, s:b, s:f, s:b}",
					 "own_over_ioctl_max", GOAL_RATIO,
					 "own_over_ioctl", r, "met",
					 r <= GOAL_RATIO,
					 "listener_own_over_ioctl", l,
					 "listener_only_met", l <= GOAL_RATIO);
		}
	}
	o = json_pack("{s:s, s:s, s:b, s:o, s:o}", "bench", "slots", "unit",
		      "us", "quick", quick, "results", results, "goal_at_32000",
		      goal);
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	putchar('\n');
	json_decref(o);
	return 0;
}
