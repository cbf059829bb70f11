// SPDX-License-Identifier: MIT
/*
 * The windowed listener diff: a commit whose view was spliced from the
 * previous one walks only the ranges between the runs it copied
 * unchanged.  Listeners must not notice: the same random operations on
 * three identical machines -- windowed (the default), rendering and
 * diffing in full (mv_machine_set_full_render), and windowed but with a
 * listener that wants region_nop (which forces the full walk) -- must
 * deliver exactly the same event stream, rollbacks of a failing
 * region_add included, and the windowed machine must really have taken
 * the windowed path.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "internal.h" /* src/memory: struct mv_flatview's splice record */

#define NR_WORLDS 3
#define NR_RAM 4
#define NR_LEAVES 48
#define NR_SUB 3
#define SPACE 0x100000ull
#define PAGE 0x1000ull

enum world_kind {
	W_WINDOWED,
	W_FULL,
	W_NOP,
};

/* One recording listener; @fail_mr makes its region_add fail on it. */
struct recorder {
	struct mv_listener l;
	struct world *w;
};

struct world {
	struct mv_machine *m;
	struct mv_as *as;
	struct mv_region *root;
	struct mv_region *ram[NR_RAM];
	struct mv_region *sub[NR_SUB];
	struct mv_region *leaf[NR_LEAVES];
	struct mv_region *parent_of[NR_LEAVES];
	/* A and B listen to @as; C to @as2 (same root: a shared view), D to
	 * @as3 (rooted at sub0: its own views) */
	struct mv_as *as2, *as3;
	struct recorder rec[4];
	char *log;
	size_t len, cap;
	struct mv_region *fail_mr; /* region_add on it fails (-EIO) */
	unsigned windowed_commits;
};

static void logf_(struct world *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void logf_(struct world *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!w->log) {
		w->cap = 4096;
		w->log = calloc(1, w->cap);
		assert_non_null(w->log);
	}
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(w->log + w->len, w->cap - w->len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if (w->len + (size_t)n < w->cap)
			break;
		w->cap = 2 * (w->len + (size_t)n + 64);
		w->log = realloc(w->log, w->cap);
		assert_non_null(w->log);
	}
	w->len += (size_t)n;
}

static struct recorder *to_rec(struct mv_listener *l)
{
	return l->opaque;
}

static void log_sec(struct mv_listener *l, const char *what,
		    const struct mv_section *s, unsigned om, unsigned nm)
{
	logf_(to_rec(l)->w,
	      "%s %s %" PRIx64 "-%" PRIx64 " %s@%" PRIx64 " m%u ro%d nv%d "
	      "rd%d %u>%u\n",
	      l->name, what, s->first, s->last, mv_region_name(s->mr),
	      s->offset_within_region, s->dirty_log_mask, s->readonly,
	      s->nonvolatile, s->romd_mode, om, nm);
}

static int on_begin(struct mv_listener *l)
{
	logf_(to_rec(l)->w, "%s begin\n", l->name);
	return 0;
}

static int on_commit(struct mv_listener *l)
{
	logf_(to_rec(l)->w, "%s commit\n", l->name);
	return 0;
}

static int on_add(struct mv_listener *l, const struct mv_section *s)
{
	struct world *w = to_rec(l)->w;

	log_sec(l, "add", s, 0, 0);
	return w->fail_mr && s->mr == w->fail_mr && l == &w->rec[1].l ? -EIO :
									0;
}

static int on_del(struct mv_listener *l, const struct mv_section *s)
{
	log_sec(l, "del", s, 0, 0);
	return 0;
}

static int on_nop(struct mv_listener *l, const struct mv_section *s)
{
	(void)l;
	(void)s;
	return 0; /* only there to force the full walk */
}

static int on_log_start(struct mv_listener *l, const struct mv_section *s,
			unsigned om, unsigned nm)
{
	log_sec(l, "log_start", s, om, nm);
	return 0;
}

static int on_log_stop(struct mv_listener *l, const struct mv_section *s,
		       unsigned om, unsigned nm)
{
	log_sec(l, "log_stop", s, om, nm);
	return 0;
}

static int on_global_start(struct mv_listener *l)
{
	logf_(to_rec(l)->w, "%s global_start\n", l->name);
	return 0;
}

static int on_global_stop(struct mv_listener *l)
{
	logf_(to_rec(l)->w, "%s global_stop\n", l->name);
	return 0;
}

static const struct mv_listener_ops rec_ops = {
	.begin = on_begin,
	.commit = on_commit,
	.region_add = on_add,
	.region_del = on_del,
	.log_start = on_log_start,
	.log_stop = on_log_stop,
	.log_global_start = on_global_start,
	.log_global_stop = on_global_stop,
};

static const struct mv_listener_ops rec_nop_ops = {
	.begin = on_begin,
	.commit = on_commit,
	.region_add = on_add,
	.region_del = on_del,
	.region_nop = on_nop,
	.log_start = on_log_start,
	.log_stop = on_log_stop,
	.log_global_start = on_global_start,
	.log_global_stop = on_global_stop,
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The same topology for every seed and world kind: what @seed draws. */
static void world_new(struct world *w, enum world_kind kind, uint64_t seed)
{
	char name[32];
	size_t i;

	memset(w, 0, sizeof(*w));
	assert_int_equal(mv_machine_new(&w->m), 0);
	mv_machine_set_full_render(w->m, kind == W_FULL);
	assert_int_equal(mv_region_new_container(w->m, "root", SPACE, &w->root),
			 0);
	for (i = 0; i < NR_RAM; i++) {
		snprintf(name, sizeof(name), "ram%zu", i);
		assert_int_equal(mv_region_new_ram(w->m, name, 16 * PAGE, NULL,
						   &w->ram[i]),
				 0);
	}
	for (i = 0; i < NR_SUB; i++) {
		snprintf(name, sizeof(name), "sub%zu", i);
		assert_int_equal(mv_region_new_container(w->m, name, 32 * PAGE,
							 &w->sub[i]),
				 0);
		assert_int_equal(
			mv_region_add_subregion_overlap(
				w->root,
				(rnd(&seed) % (SPACE / PAGE - 32)) * PAGE,
				w->sub[i], (int)(rnd(&seed) % 3) - 1),
			0);
	}
	mv_txn_begin(w->m);
	for (i = 0; i < NR_LEAVES; i++) {
		struct mv_region *parent;
		uint64_t limit;
		unsigned what = (unsigned)(rnd(&seed) % 8);

		snprintf(name, sizeof(name), "leaf%zu", i);
		if (what < 5) /* mostly aliases of RAM: KVM's case */
			assert_int_equal(
				mv_region_new_alias(w->m, name,
						    w->ram[rnd(&seed) % NR_RAM],
						    (rnd(&seed) % 8) * PAGE,
						    (1 + rnd(&seed) % 8) * PAGE,
						    &w->leaf[i]),
				0);
		else if (what < 6)
			assert_int_equal(mv_region_new_alias(
						 w->m, name,
						 w->sub[rnd(&seed) % NR_SUB],
						 (rnd(&seed) % 4) * PAGE,
						 (1 + rnd(&seed) % 16) * PAGE,
						 &w->leaf[i]),
					 0);
		else
			assert_int_equal(mv_region_new_reservation(
						 w->m, name,
						 (1 + rnd(&seed) % 4) * PAGE,
						 &w->leaf[i]),
					 0);
		/* aliases of a sub-container stay at the root (no cycle) */
		parent = what != 5 && rnd(&seed) % 3 == 0 ?
				 w->sub[rnd(&seed) % NR_SUB] :
				 w->root;
		limit = parent == w->root ? SPACE / PAGE : 32;
		assert_int_equal(mv_region_add_subregion_overlap(
					 parent, (rnd(&seed) % limit) * PAGE,
					 w->leaf[i], (int)(rnd(&seed) % 3) - 1),
				 0);
		w->parent_of[i] = parent;
	}
	assert_int_equal(mv_txn_commit(w->m), 0);
	assert_int_equal(mv_as_new(w->m, "as", w->root, &w->as), 0);
	assert_int_equal(mv_as_new(w->m, "as2", w->root, &w->as2), 0);
	assert_int_equal(mv_as_new(w->m, "as3", w->sub[0], &w->as3), 0);
	for (i = 0; i < 4; i++) {
		static const char *const names[] = { "A", "B", "C", "D" };
		struct mv_as *as = i < 2 ? w->as : i == 2 ? w->as2 : w->as3;

		w->rec[i].w = w;
		w->rec[i].l = (struct mv_listener){
			.ops = kind == W_NOP && i ? &rec_nop_ops : &rec_ops,
			.priority = i == 1 ? 15 : 5 + (int)i,
			.name = names[i],
			.opaque = &w->rec[i],
		};
		assert_int_equal(mv_listener_register(as, &w->rec[i].l), 0);
	}
}

static void world_free(struct world *w)
{
	size_t i;

	for (i = 4; i-- > 0;)
		mv_listener_unregister(&w->rec[i].l);
	for (i = 0; i < NR_LEAVES; i++)
		mv_region_unref(w->leaf[i]);
	for (i = 0; i < NR_SUB; i++)
		mv_region_unref(w->sub[i]);
	for (i = 0; i < NR_RAM; i++)
		mv_region_unref(w->ram[i]);
	mv_region_unref(w->root);
	mv_machine_free(w->m);
	free(w->log);
}

/* One random operation, drawn from @s, applied to @w; returns its result. */
static int world_op(struct world *w, uint64_t s)
{
	size_t i = rnd(&s) % NR_LEAVES;
	struct mv_region *r = w->leaf[i];
	unsigned op = (unsigned)(rnd(&s) % 16);
	uint64_t v = rnd(&s);

	switch (op) {
	case 0:
	case 1:
	case 2:
	case 3: /* the toggle of bench/slots, most often */
		return mv_region_set_enabled(r, !mv_region_enabled(r));
	case 4:
		return mv_region_set_address(
			r,
			(v % (w->parent_of[i] == w->root ? SPACE / PAGE : 32)) *
				PAGE);
	case 5:
		return mv_region_set_alias_offset(r, (v % 8) * PAGE);
	case 6:
		return mv_region_set_readonly(r, !mv_region_readonly(r));
	case 7:
		return mv_region_set_nonvolatile(r, v & 1);
	case 8:
		return mv_region_set_size(r, (1 + v % 8) * PAGE);
	case 9:
		return mv_region_set_log(w->ram[v % NR_RAM], (v >> 8) & 1,
					 MV_DIRTY_VGA);
	case 10:
		return v & 1 ? mv_machine_dirty_log_start(w->m) :
			       mv_machine_dirty_log_stop(w->m);
	case 11:
		return mv_region_set_enabled(w->sub[v % NR_SUB],
					     (v >> 8) % 4 != 0);
	case 12:
		if (mv_region_container(r))
			return mv_region_del_subregion(w->parent_of[i], r);
		return mv_region_add_subregion_overlap(
			w->parent_of[i],
			(v % (w->parent_of[i] == w->root ? SPACE / PAGE : 32)) *
				PAGE,
			r, (int)((v >> 20) % 3) - 1);
	default: /* a transaction of several changes */
		mv_txn_begin(w->m);
		for (op = 0; op < 2 + v % 4; op++) {
			i = rnd(&s) % NR_LEAVES;
			r = w->leaf[i];
			if (rnd(&s) % 2)
				mv_region_set_enabled(r, !mv_region_enabled(r));
			else
				mv_region_set_address(
					r,
					(rnd(&s) % (w->parent_of[i] == w->root ?
							    SPACE / PAGE :
							    32)) *
						PAGE);
		}
		return mv_txn_commit(w->m);
	}
}

/* Whether @w's current view was spliced and diffed in windows. */
static bool view_windowed(struct world *w)
{
	struct mv_flatview *fv = mv_as_get_flatview(w->as);
	bool yes = fv->base_gen && fv->nr_same;

	mv_flatview_unref(fv);
	return yes;
}

static void run_seed(uint64_t seed, unsigned steps, unsigned *windowed)
{
	struct world w[NR_WORLDS];
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	unsigned step, k;

	for (k = 0; k < NR_WORLDS; k++)
		world_new(&w[k], (enum world_kind)k, s);
	for (k = 1; k < NR_WORLDS; k++)
		assert_string_equal(w[0].log, w[k].log);
	for (step = 0; step < steps; step++) {
		uint64_t op_seed = rnd(&s);
		struct mv_region *fail = NULL;
		uint64_t before = 0;
		int ret[NR_WORLDS];

		if (rnd(&s) % 16 == 0) /* a failing region_add: rollback */
			fail = (struct mv_region
					*)(uintptr_t)(rnd(&s) % NR_LEAVES + 1);
		for (k = 0; k < NR_WORLDS; k++) {
			struct mv_flatview *fv = mv_as_get_flatview(w[k].as);

			if (!k)
				before = fv->gen;
			mv_flatview_unref(fv);
			w[k].len = 0;
			if (w[k].log)
				w[k].log[0] = '\0';
			w[k].fail_mr = fail ? w[k].leaf[(uintptr_t)fail - 1] :
					      NULL;
			ret[k] = world_op(&w[k], op_seed);
			w[k].fail_mr = NULL;
			mv_test_check_views(w[k].m);
		}
		for (k = 1; k < NR_WORLDS; k++) {
			if (strcmp(w[0].log ? w[0].log : "",
				   w[k].log ? w[k].log : ""))
				fail_msg("seed %" PRIu64 " step %u: world %u "
					 "differs:\n--- windowed\n%s--- "
					 "world %u\n%s",
					 seed, step, k, w[0].log, k, w[k].log);
			assert_int_equal(ret[0], ret[k]);
		}
		{
			struct mv_flatview *fv = mv_as_get_flatview(w[0].as);

			if (fv->gen != before && fv->base_gen == before &&
			    fv->nr_same)
				(*windowed)++;
			mv_flatview_unref(fv);
		}
	}
	assert_false(view_windowed(&w[W_FULL]));
	for (k = 0; k < NR_WORLDS; k++)
		world_free(&w[k]);
}

/* Random topologies and operations: identical event streams. */
static void windowed_diff_matches_full_diff(void **state)
{
	unsigned windowed = 0;
	uint64_t seed;

	(void)state;
	for (seed = 1; seed <= 400; seed++)
		run_seed(seed, 80, &windowed);
	print_message("%u of %u commits windowed\n", windowed, 400 * 80);
	/* many commits must really have been windowed */
	assert_true(windowed > 400 * 80 / 4);
}

/* bench/slots' case: one alias toggled among many, a few ranges walked. */
static void toggle_walks_a_window(void **state)
{
	struct mv_machine *m;
	struct mv_region *root, *ram, *a[64];
	struct mv_as *as;
	struct world rec = { 0 };
	struct recorder r = { .w = &rec };
	struct mv_flatview *fv;
	size_t i;

	(void)state;
	assert_int_equal(mv_machine_new(&m), 0);
	assert_int_equal(mv_region_new_container(m, "root", UINT64_MAX, &root),
			 0);
	assert_int_equal(mv_region_new_ram(m, "ram", 64 * PAGE, NULL, &ram), 0);
	for (i = 0; i < 64; i++) {
		char name[16];

		snprintf(name, sizeof(name), "a%zu", i);
		assert_int_equal(mv_region_new_alias(m, name, ram, i * PAGE,
						     PAGE, &a[i]),
				 0);
		assert_int_equal(
			mv_region_add_subregion(root, i * 2 * PAGE, a[i]), 0);
	}
	assert_int_equal(mv_as_new(m, "as", root, &as), 0);
	r.l = (struct mv_listener){ .ops = &rec_ops,
				    .name = "L",
				    .opaque = &r };
	assert_int_equal(mv_listener_register(as, &r.l), 0);
	rec.len = 0;
	assert_int_equal(mv_region_set_enabled(a[32], false), 0);
	assert_string_equal(rec.log,
			    "L begin\n"
			    "L del 40000-40fff ram@20000 m0 ro0 nv0 rd1 0>0\n"
			    "L commit\n");
	fv = mv_as_get_flatview(as);
	assert_int_equal(fv->nr, 63);
	assert_int_not_equal(fv->base_gen, 0);
	/* everything but the ranges around the window was skipped */
	assert_true(fv->nr_same >= 1);
	{
		size_t copied = 0;

		for (i = 0; i < fv->nr_same; i++)
			copied += fv->same[i].len;
		assert_true(copied >= 63 - 4);
	}
	mv_flatview_unref(fv);
	rec.len = 0;
	assert_int_equal(mv_region_set_enabled(a[32], true), 0);
	assert_string_equal(rec.log,
			    "L begin\n"
			    "L add 40000-40fff ram@20000 m0 ro0 nv0 rd1 0>0\n"
			    "L commit\n");
	mv_listener_unregister(&r.l);
	for (i = 0; i < 64; i++)
		mv_region_unref(a[i]);
	mv_region_unref(ram);
	mv_region_unref(root);
	mv_machine_free(m);
	free(rec.log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(toggle_walks_a_window),
		cmocka_unit_test(windowed_diff_matches_full_diff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
