// SPDX-License-Identifier: MIT
/*
 * bench/render: commit and render cost of the memory model for 16..32768
 * MMIO leaves in three topologies, side by side with a reimplementation of
 * QEMU 7.2's own render (gap insertion + flatview_simplify) over the same
 * leaves in the same run.  Prints JSON on stdout (docs/performance.md).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <memvirt/memory.h>

#define LEAF_STRIDE 0x2000u
#define FANOUT 8
#define GOAL_N 4096
#define GOAL_US 50
#define BASELINE_CAP_S 2.0

enum topology {
	TOPO_FLAT,
	TOPO_NESTED,
	TOPO_OVERLAP
};
static const char *const topo_names[] = { "flat", "nested", "overlap" };

/* A region the bench created, and where world_attach() puts it. */
struct node {
	struct mv_region *mr;
	struct mv_region *parent;
	uint64_t offset; /* in @parent */
	int prio;
};

/*
 * struct world - one machine holding a topology.  @nodes[0, n) are the
 * leaves, leaf i at address i * LEAF_STRIDE; the containers of a nested
 * tree follow, bottom-up.  The bench holds a reference on every region.
 */
struct world {
	struct mv_machine *m;
	struct mv_as *as;
	struct mv_region *root;
	struct node *nodes;
	size_t n, nr_nodes;
};

/* Per topology: the last baseline run, to stop before one exceeds the cap. */
struct baseline_cap {
	double last_s;
	size_t last_n;
};

/* A bench has nothing to unwind: any failure ends the run. */
#define MUST(call) must((call), #call)

static void must(int ret, const char *call)
{
	if (ret) {
		fprintf(stderr, "bench-render: %s: %s\n", call, strerror(-ret));
		exit(1);
	}
}

static void *must_alloc(size_t size)
{
	void *p = calloc(1, size);

	MUST(p ? 0 : -ENOMEM);
	return p;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void set_real(json_t *o, const char *key, double v)
{
	json_object_set_new(o, key, json_real(v));
}

/* ---- the topologies ------------------------------------------------------ */

/* Hang @c nodes from @first, each @span long, under containers of 8. */
static void new_level(struct world *w, size_t first, size_t c, uint64_t span)
{
	struct node *up = &w->nodes[w->nr_nodes];
	size_t j;

	w->nr_nodes += (c + FANOUT - 1) / FANOUT;
	for (j = 0; j < c; j++) {
		if (j % FANOUT == 0)
			MUST(mv_region_new_container(w->m, "c", span * FANOUT,
						     &up[j / FANOUT].mr));
		w->nodes[first + j].parent = up[j / FANOUT].mr;
		w->nodes[first + j].offset = (j % FANOUT) * span;
	}
}

/*
 * Overlap leaves are 0x3000 long at a 0x2000 stride with priorities 0/1.
 * Nested: levels of 8 until at most 8 hang from the root (depth log8 n).
 */
static void world_new(enum topology t, size_t n, struct world *w)
{
	uint64_t span = LEAF_STRIDE, size = t == TOPO_OVERLAP ? 0x3000 : 0x1000;
	size_t first = 0, c = n, j;

	w->n = w->nr_nodes = n;
	w->nodes = must_alloc((2 * n + FANOUT) * sizeof(*w->nodes));
	MUST(mv_machine_new(&w->m));
	MUST(mv_region_new_container(w->m, "root", UINT64_MAX, &w->root));
	MUST(mv_as_new(w->m, "memory", w->root, &w->as));
	for (j = 0; j < n; j++) {
		w->nodes[j].prio = t == TOPO_OVERLAP ? (int)(j % 2) : 0;
		MUST(mv_region_new_io(w->m, "leaf", size, &mv_zero_ops, NULL,
				      &w->nodes[j].mr));
	}
	for (; t == TOPO_NESTED && c > FANOUT; span *= FANOUT) {
		new_level(w, first, c, span);
		first += c;
		c = (c + FANOUT - 1) / FANOUT;
	}
	for (j = 0; j < c; j++) {
		w->nodes[first + j].parent = w->root;
		w->nodes[first + j].offset = j * span;
	}
}

static void world_free(struct world *w)
{
	size_t i;

	mv_machine_free(w->m);
	mv_region_unref(w->root);
	for (i = 0; i < w->nr_nodes; i++)
		mv_region_unref(w->nodes[i].mr);
	free(w->nodes);
}

/* One transaction: the first @count leaves, then the containers. */
static void world_attach(struct world *w, size_t count)
{
	const struct node *nd = w->nodes;
	size_t j;

	mv_txn_begin(w->m);
	for (j = 0; j < w->nr_nodes; j++, nd++)
		if (j < count || j >= w->n)
			MUST(mv_region_add_subregion_overlap(
				nd->parent, nd->offset, nd->mr, nd->prio));
	MUST(mv_txn_commit(w->m));
}

/* ---- QEMU 7.2's algorithm (softmmu/memory.c), over the same leaves ------ */

__extension__ typedef __int128 qint128;

/* QEMU's FlatRange, same fields, so memmove moves as many bytes (64). */
struct qemu_fr {
	struct mv_region *mr;
	uint64_t offset_in_region;
	struct {
		qint128 start, size;
	} addr;
	uint8_t dirty_log_mask;
	bool romd_mode, readonly, nonvolatile;
};

/* @ranges has room for 2n (QEMU grows it by doubling: amortised O(1)). */
struct qemu_view {
	struct qemu_fr *ranges;
	unsigned nr;
};

/* As QEMU's, minus memory_region_ref() (an atomic increment). */
static void flatview_insert(struct qemu_view *v, unsigned pos,
			    const struct qemu_fr *fr)
{
	memmove(v->ranges + pos + 1, v->ranges + pos,
		(v->nr - pos) * sizeof(*v->ranges));
	v->ranges[pos] = *fr;
	v->nr++;
}

/* Advance the cursor of render_leaf() by @now bytes. */
static void advance(struct qemu_fr *fr, qint128 *remain, qint128 now)
{
	fr->addr.start += now;
	fr->offset_in_region += (uint64_t)now;
	*remain -= now;
}

/*
 * render_memory_region() for a terminating leaf: walk the view from index 0
 * and insert the pieces of [@addr, +size) that fall into gaps.
 */
static void render_leaf(struct qemu_view *v, struct mv_region *mr,
			uint64_t addr)
{
	struct qemu_fr fr = { .mr = mr, .romd_mode = true, .addr.start = addr };
	qint128 remain = mv_region_size(mr), now, end;
	unsigned i;

	for (i = 0; i < v->nr && remain; ++i) {
		end = v->ranges[i].addr.start + v->ranges[i].addr.size;
		if (fr.addr.start >= end)
			continue;
		if (fr.addr.start < v->ranges[i].addr.start) {
			now = v->ranges[i].addr.start - fr.addr.start;
			fr.addr.size = now < remain ? now : remain;
			flatview_insert(v, i++, &fr);
			advance(&fr, &remain, fr.addr.size);
		}
		now = fr.addr.start + remain < end ? fr.addr.start + remain :
						     end;
		advance(&fr, &remain, now - fr.addr.start);
	}
	fr.addr.size = remain;
	if (remain)
		flatview_insert(v, i, &fr);
}

static bool can_merge(const struct qemu_fr *a, const struct qemu_fr *b)
{
	return a->addr.start + a->addr.size == b->addr.start &&
	       a->mr == b->mr &&
	       a->offset_in_region + a->addr.size == b->offset_in_region &&
	       a->dirty_log_mask == b->dirty_log_mask &&
	       a->romd_mode == b->romd_mode && a->readonly == b->readonly &&
	       a->nonvolatile == b->nonvolatile;
}

/* As QEMU's, including the memmove when nothing merged. */
static void flatview_simplify(struct qemu_view *v)
{
	unsigned i = 0, j;

	while (i < v->nr) {
		j = i + 1;
		while (j < v->nr && can_merge(&v->ranges[j - 1], &v->ranges[j]))
			v->ranges[i].addr.size += v->ranges[j++].addr.size;
		++i;
		memmove(&v->ranges[i], &v->ranges[j],
			(v->nr - j) * sizeof(v->ranges[j]));
		v->nr -= j - i;
	}
}

/* QEMU's subregion list order: priority descending, newest first. */
static int cmp_qemu_order(const void *a, const void *b)
{
	const struct node *x = *(const struct node *const *)a;
	const struct node *y = *(const struct node *const *)b;

	if (x->prio != y->prio)
		return x->prio > y->prio ? -1 : 1;
	return x > y ? -1 : x < y;
}

static bool view_matches(const struct qemu_view *v, struct mv_as *as)
{
	struct mv_flatview *fv = mv_as_get_flatview(as);
	const struct qemu_fr *q = v->ranges;
	const struct mv_flat_range *r;
	size_t nr, i;
	bool same;

	r = mv_flatview_ranges(fv, &nr);
	same = nr == v->nr;
	for (i = 0; same && i < nr; i++, q++)
		same = r[i].first == (uint64_t)q->addr.start &&
		       r[i].last ==
			       (uint64_t)(q->addr.start + q->addr.size - 1) &&
		       r[i].mr == q->mr &&
		       r[i].offset_in_region == q->offset_in_region;
	mv_flatview_unref(fv);
	return same;
}

/*
 * Median of up to 5 renders, checked against memvirt's view; none once a
 * render would exceed the cap (it is O(n^2)).
 */
static void run_baseline(const struct world *w, struct baseline_cap *cap,
			 json_t *o)
{
	double ratio = (double)w->n / (cap->last_n ? cap->last_n : w->n);
	double predicted = cap->last_s * ratio * ratio, t[5];
	unsigned reps = predicted < 0.05 ? 5 : predicted < 0.5 ? 3 : 1, r;
	struct qemu_view v = { 0 };
	const struct node **order;
	size_t i;

	json_object_set_new(o, "qemu_algorithm_us", json_null());
	json_object_set_new(o, "baseline_matches", json_null());
	if (cap->last_s > BASELINE_CAP_S || predicted > BASELINE_CAP_S)
		return;
	order = must_alloc(w->n * sizeof(*order));
	v.ranges = must_alloc(2 * w->n * sizeof(*v.ranges));
	for (i = 0; i < w->n; i++)
		order[i] = &w->nodes[i];
	qsort(order, w->n, sizeof(*order), cmp_qemu_order);
	for (r = 0; r < reps; r++) {
		t[r] = now_us();
		for (v.nr = 0, i = 0; i < w->n; i++)
			render_leaf(&v, order[i]->mr,
				    (order[i] - w->nodes) * LEAF_STRIDE);
		flatview_simplify(&v);
		t[r] = now_us() - t[r];
	}
	json_object_set_new(o, "baseline_matches",
			    json_boolean(view_matches(&v, w->as)));
	cap->last_s = median(t, reps) / 1e6;
	cap->last_n = w->n;
	set_real(o, "qemu_algorithm_us", cap->last_s * 1e6);
	free(order);
	free(v.ranges);
}

/* ---- the measurements ---------------------------------------------------- */

/* Median of @reps full builds (one transaction); keeps the last world. */
static void measure_build(enum topology t, size_t n, unsigned reps,
			  struct world *w, json_t *o)
{
	struct mv_machine_stats s0, s1;
	double us[16];
	unsigned r;

	for (r = 0; r < reps; r++) {
		if (r)
			world_free(w);
		world_new(t, n, w);
		mv_machine_get_stats(w->m, &s0);
		us[r] = now_us();
		world_attach(w, n);
		us[r] = now_us() - us[r];
		mv_machine_get_stats(w->m, &s1);
	}
	set_real(o, "build_us", median(us, reps));
	set_real(o, "build_per_region_ns", median(us, reps) * 1e3 / n);
	json_object_set_new(o, "build_renders",
			    json_integer(s1.renders - s0.renders));
}

/*
 * With N-1 leaves committed, time adding the N-th (one commit) and deleting
 * it again, each on its own; round 0 warms up.  Returns the add median.
 */
static double measure_add_one(struct world *w, unsigned reps, json_t *o)
{
	const struct node *nd = &w->nodes[w->n - 1];
	double *add = must_alloc(2 * (reps + 1) * sizeof(*add));
	double *del = add + reps + 1, us;
	struct mv_machine_stats s0 = { 0 }, s1;
	json_t *q = json_object_get(o, "qemu_algorithm_us");
	unsigned r;

	for (r = 0; r <= reps; r++) {
		if (r == 1)
			mv_machine_get_stats(w->m, &s0);
		add[r] = now_us();
		MUST(mv_region_add_subregion_overlap(nd->parent, nd->offset,
						     nd->mr, nd->prio));
		del[r] = now_us();
		add[r] = del[r] - add[r];
		MUST(mv_region_del_subregion(nd->parent, nd->mr));
		del[r] = now_us() - del[r];
	}
	mv_machine_get_stats(w->m, &s1);
	us = median(add + 1, reps);
	set_real(o, "add_one_commit_us", us);
	set_real(o, "del_one_commit_us", median(del + 1, reps));
	set_real(o, "per_region_ns", us * 1e3 / w->n);
	json_object_set_new(o, "qemu_over_add_ratio",
			    json_is_real(q) ?
				    json_real(json_real_value(q) / us) :
				    json_null());
	set_real(o, "renders_per_commit",
		 (s1.renders - s0.renders) / (2.0 * reps));
	json_object_set_new(o, "reps", json_integer(reps));
	free(add);
	return us;
}

/* All figures of one (topology, n); returns the add-one median. */
static double run_one(enum topology t, size_t n, bool quick,
		      struct baseline_cap *cap, json_t *o)
{
	unsigned build_reps = quick ? 3 : n <= 1024 ? 9 : n <= 4096 ? 5 : 3;
	unsigned add_reps = n <= GOAL_N ? (quick ? 30 : 200) : 200 * GOAL_N / n;
	struct world w;
	double us;

	measure_build(t, n, build_reps, &w, o);
	run_baseline(&w, cap, o);
	MUST(mv_region_del_subregion(w.nodes[n - 1].parent, w.nodes[n - 1].mr));
	us = measure_add_one(&w, add_reps, o);
	world_free(&w);
	return us;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 16, 64, 256, 1024, 4096, 16384, 32768 };
	bool quick = argc == 2 && !strcmp(argv[1], "--quick");
	json_t *results = json_array(), *o;
	double worst = 0, us;
	struct baseline_cap cap;
	size_t i;
	int t;

	if (argc > 2 || (argc == 2 && !quick)) {
		fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
		return 2;
	}
	for (t = TOPO_FLAT; t <= TOPO_OVERLAP; t++) {
		memset(&cap, 0, sizeof(cap));
		for (i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
			if (quick && sizes[i] > GOAL_N)
				break;
			o = json_pack("{s:s, s:I}", "topology", topo_names[t],
				      "n", (json_int_t)sizes[i]);
			json_array_append_new(results, o);
			us = run_one(t, sizes[i], quick, &cap, o);
			if (sizes[i] == GOAL_N && us > worst)
				worst = us;
		}
	}
	o = json_pack("{s:s, s:s, s:b, s:o, s:{s:i, s:f, s:b}}", "bench",
		      "render", "unit", "us", "quick", quick, "results",
		      results, "goal", "add_one_among_4096_us_max", GOAL_US,
		      "worst_us", worst, "met", worst <= GOAL_US);
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	putchar('\n');
	json_decref(o);
	return 0;
}
