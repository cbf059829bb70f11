// SPDX-License-Identifier: MIT
/*
 * Flat views stored in shared chunks (struct mv_view_chunk): a spliced
 * view shares the chunks of the view it was spliced from outside its
 * windows.  Random operations on a view of thousands of ranges, each
 * commit checked against a full render range by range (through the
 * chunks and through mv_flatview_ranges()), chunk invariants checked by
 * mv_flatview_check(); a one-range change must share all but the few
 * chunks around it; views kept across many commits and then released
 * must leave every region reference balanced (the RAM blocks of deleted
 * regions go exactly when the last view naming them does).
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#if defined(__SANITIZE_ADDRESS__)
#define MV_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MV_TEST_ASAN 1
#endif
#endif
#ifdef MV_TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif
#include "internal.h" /* src/memory: chunks, mv_render */
#include "view_helpers.h"

#define PAGE 0x1000ull
#define NR_ALIAS 10000
#define NR_COVER 6
#define NR_LEAF 8
#define NR_HELD 6

struct world {
	struct mv_machine *m;
	struct mv_as *as;
	struct mv_region *root, *ram;
	struct mv_region *alias[NR_ALIAS];
	struct mv_region *cover[NR_COVER];
	struct mv_region *leaf[NR_LEAF]; /* RAM, deleted along the way */
	struct mv_flatview *held[NR_HELD];
	uint64_t seed;
};

/* Drop the test's own references to the world's regions. */
static void world_unref(struct world *w)
{
	int n;

	for (n = 0; n < NR_ALIAS; n++)
		mv_region_unref(w->alias[n]);
	for (n = 0; n < NR_COVER; n++)
		mv_region_unref(w->cover[n]);
	for (n = 0; n < NR_LEAF; n++)
		mv_region_unref(w->leaf[n]);
	mv_region_unref(w->ram);
	mv_region_unref(w->root);
}

static uint64_t rnd(struct world *w, uint64_t n)
{
	w->seed = w->seed * 6364136223846793005ull + 1442695040888963407ull;
	return (w->seed >> 33) % n;
}

static void world_init(struct world *w, uint64_t seed)
{
	char name[32];
	int i;

	memset(w, 0, sizeof(*w));
	w->seed = seed;
	assert_int_equal(mv_machine_new(&w->m), 0);
	assert_int_equal(
		mv_region_new_container(w->m, "root", UINT64_MAX, &w->root), 0);
	assert_int_equal(mv_region_new_ram(w->m, "ram", NR_ALIAS * PAGE, NULL,
					   &w->ram),
			 0);
	assert_int_equal(mv_as_new(w->m, "memory", w->root, &w->as), 0);
	mv_txn_begin(w->m);
	for (i = 0; i < NR_ALIAS; i++) {
		snprintf(name, sizeof(name), "a%d", i);
		assert_int_equal(mv_region_new_alias(w->m, name, w->ram,
						     (uint64_t)i * PAGE, PAGE,
						     &w->alias[i]),
				 0);
		/* a page of gap: no two ranges merge */
		assert_int_equal(mv_region_add_subregion(w->root,
							 (uint64_t)i * 2 * PAGE,
							 w->alias[i]),
				 0);
	}
	for (i = 0; i < NR_COVER; i++) {
		snprintf(name, sizeof(name), "cover%d", i);
		assert_int_equal(mv_region_new_reservation(
					 w->m, name,
					 (uint64_t)(50 + 150 * i) * PAGE,
					 &w->cover[i]),
				 0);
		assert_int_equal(mv_region_set_enabled(w->cover[i], false), 0);
		assert_int_equal(mv_region_add_subregion_overlap(
					 w->root,
					 (uint64_t)(i * 900 + 11) * PAGE,
					 w->cover[i], 1),
				 0);
	}
	for (i = 0; i < NR_LEAF; i++) {
		snprintf(name, sizeof(name), "leaf%d", i);
		assert_int_equal(mv_region_new_ram(w->m, name, 3 * PAGE, NULL,
						   &w->leaf[i]),
				 0);
		assert_int_equal(mv_region_add_subregion_overlap(
					 w->root,
					 (uint64_t)(i * 700 + 5) * 2 * PAGE,
					 w->leaf[i], 2),
				 0);
	}
	assert_int_equal(mv_txn_commit(w->m), 0);
}

/* The current view equals a full render, range by range, both ways of
 * reading it; returns it (borrowed). */
static struct mv_flatview *check_view(struct world *w)
{
	struct mv_flatview *fv = w->as->view, *full = NULL;
	const struct mv_flat_range *flat;
	size_t i, nr, k = 0;

	mv_test_check_views(w->m);
	assert_int_equal(mv_render(w->m, fv->root, &full), 0);
	assert_int_equal(fv->nr, full->nr);
	flat = mv_flatview_ranges(fv, &nr);
	assert_int_equal(nr, fv->nr);
	for (i = 0; i < fv->nr; i++) {
		const struct mv_flat_range *r = mv_fv_cur(fv, &k, i);

		assert_true(mv_test_range_eq(r, mv_fv_at(full, i)));
		assert_true(mv_test_range_eq(r, &flat[i]));
		assert_ptr_equal(mv_flatview_lookup(fv, r->first), r);
		assert_ptr_equal(mv_flatview_lookup(fv, r->last), r);
	}
	mv_flatview_unref(full);
	return fv;
}

/* How many chunks @fv has, in all its groups. */
static size_t nr_chunks(const struct mv_flatview *fv)
{
	size_t g, n = 0;

	for (g = 0; g < fv->nr_groups; g++)
		n += fv->groups[g]->nr;
	return n;
}

/* Chunk @k of @fv, counting through its groups. */
static struct mv_view_chunk *chunk_at(const struct mv_flatview *fv, size_t k)
{
	size_t g;

	for (g = 0; k >= fv->groups[g]->nr; g++)
		k -= fv->groups[g]->nr;
	return fv->groups[g]->ch[k];
}

/* How many of @new's chunks are @old's. */
static size_t shared_chunks(const struct mv_flatview *old,
			    const struct mv_flatview *new)
{
	size_t i, j, n = 0;

	for (i = 0; i < nr_chunks(new); i++)
		for (j = 0; j < nr_chunks(old); j++)
			if (chunk_at(new, i) == chunk_at(old, j)) {
				n++;
				break;
			}
	return n;
}

static void random_op(struct world *w)
{
	struct mv_region *a = w->alias[rnd(w, NR_ALIAS)];
	struct mv_region *c = w->cover[rnd(w, NR_COVER)];

	switch (rnd(w, 6)) {
	case 0:
	case 1:
		assert_int_equal(
			mv_region_set_enabled(a, !mv_region_enabled(a)), 0);
		break;
	case 2: /* a window over hundreds of ranges */
		assert_int_equal(
			mv_region_set_enabled(c, !mv_region_enabled(c)), 0);
		break;
	case 3: /* into another alias's gap */
		assert_int_equal(mv_region_set_address(
					 a, rnd(w, NR_ALIAS) * 2 * PAGE + PAGE),
				 0);
		break;
	case 4:
		assert_int_equal(
			mv_region_set_alias_offset(a, rnd(w, NR_ALIAS) * PAGE),
			0);
		break;
	default:
		assert_int_equal(
			mv_region_set_size(c, (1 + rnd(w, 6000)) * PAGE), 0);
		break;
	}
}

/* Random single and batched changes, every view equal to a full render. */
static void test_splices_equal_full_render(void **state)
{
	struct world w;
	int step, n;

	(void)state;
	world_init(&w, 42);
	check_view(&w);
	for (step = 0; step < 300; step++) {
		struct mv_flatview *old = mv_as_get_flatview(w.as);
		struct mv_flatview *fv;

		if (rnd(&w, 4)) {
			random_op(&w);
		} else {
			mv_txn_begin(w.m);
			for (n = 1 + (int)rnd(&w, 6); n-- > 0;)
				random_op(&w);
			assert_int_equal(mv_txn_commit(w.m), 0);
		}
		fv = check_view(&w);
		if (fv != old && fv->base_gen == old->gen)
			assert_true(shared_chunks(old, fv) > 0 ||
				    nr_chunks(old) < 4);
		mv_flatview_unref(old);
	}
	mv_machine_free(w.m);
	/* the test's own references */
	world_unref(&w);
}

/* Toggling one range of thousands copies only the chunks around it. */
static void test_one_change_shares_the_rest(void **state)
{
	struct world w;
	int i;

	(void)state;
	world_init(&w, 7);
	for (i = 0; i < 50; i++) {
		struct mv_region *a = w.alias[rnd(&w, NR_ALIAS)];
		struct mv_flatview *old = mv_as_get_flatview(w.as);
		struct mv_flatview *fv;

		assert_int_equal(
			mv_region_set_enabled(a, !mv_region_enabled(a)), 0);
		fv = check_view(&w);
		assert_true(nr_chunks(old) >= NR_ALIAS / MV_VIEW_CHUNK);
		assert_int_equal(fv->base_gen, old->gen);
		assert_true(shared_chunks(old, fv) + 3 >= nr_chunks(fv));
		mv_flatview_unref(old);
	}
	mv_machine_free(w.m);
	world_unref(&w);
}

static bool cached(void *const *cache, size_t n, const void *p)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cache[i] == p)
			return true;
	return false;
}

/*
 * Released chunks and index blocks are reused: after a warm-up, every
 * chunk a one-range change copies and the new view's index block come
 * from the machine's caches (so the steady state allocates neither), the
 * caches stay bounded when many views are released at once, and under
 * ASan a released block stays poisoned until it is reused.
 */
static void test_chunk_cache_reuse(void **state)
{
	struct mv_view_chunk *chunk_snap[MV_CHUNK_CACHE];
	struct mv_view_group **index_snap[MV_INDEX_CACHE];
	struct mv_flatview *held[40];
	struct world w;
	size_t nc, ni, k;
	int i;

	(void)state;
	world_init(&w, 11);
	for (i = 0; i < 4; i++) /* warm-up: fills the caches */
		assert_int_equal(mv_region_set_enabled(w.alias[NR_ALIAS / 2],
						       i % 2 == 1),
				 0);
	for (i = 0; i < 20; i++) {
		struct mv_flatview *old = w.as->view, *fv;
		size_t copied = 0;

		nc = w.m->nr_chunk_cache;
		ni = w.m->nr_index_cache;
		assert_true(nc >= 1);
		assert_true(ni >= 1);
		memcpy(chunk_snap, w.m->chunk_cache, nc * sizeof(*chunk_snap));
		memcpy(index_snap, w.m->index_cache, ni * sizeof(*index_snap));
#ifdef MV_TEST_ASAN
		for (k = 0; k < nc; k++)
			assert_true(__asan_address_is_poisoned(chunk_snap[k]));
		for (k = 0; k < ni; k++)
			assert_true(__asan_address_is_poisoned(index_snap[k]));
#endif
		mv_flatview_ref(old);
		assert_int_equal(mv_region_set_enabled(w.alias[NR_ALIAS / 2],
						       i % 2 == 1),
				 0);
		fv = check_view(&w);
		assert_true(cached((void *const *)index_snap, ni, fv->groups));
		for (k = 0; k < nr_chunks(fv); k++) {
			size_t j;
			bool old_has = false;

			for (j = 0; j < nr_chunks(old); j++)
				old_has |= chunk_at(old, j) == chunk_at(fv, k);
			if (old_has)
				continue;
			copied++;
			assert_true(cached((void *const *)chunk_snap, nc,
					   chunk_at(fv, k)));
		}
		assert_true(copied >= 1 && copied <= 3);
		mv_flatview_unref(old);
	}
	/* many views released at once: the caches stay bounded */
	for (i = 0; i < 40; i++) {
		held[i] = mv_as_get_flatview(w.as);
		random_op(&w);
		check_view(&w);
	}
	for (i = 0; i < 40; i++)
		mv_flatview_unref(held[i]);
	assert_true(w.m->nr_chunk_cache == MV_CHUNK_CACHE);
	assert_true(w.m->nr_index_cache == MV_INDEX_CACHE);
	check_view(&w);
	mv_machine_free(w.m); /* frees the caches (ASan: no leak) */
	world_unref(&w);
}

static int count_add(struct mv_listener *l, const struct mv_section *s)
{
	(void)s;
	(*(int *)l->opaque)++;
	return 0;
}

/*
 * A commit's event log is kept for the next commit (no allocation per
 * commit), poisoned under ASan while kept, and freed with the machine.
 */
static void test_event_log_kept(void **state)
{
	static const struct mv_listener_ops ops = { .region_add = count_add };
	int adds = 0;
	struct mv_listener l = { .ops = &ops, .priority = 1, .opaque = &adds };
	struct mv_event_log *kept;
	struct world w;
	int i;

	(void)state;
	world_init(&w, 5);
	assert_int_equal(mv_listener_register(w.as, &l), 0);
	assert_int_equal(adds, (int)w.as->view->nr); /* the replay */
	adds = 0;
	assert_int_equal(mv_region_set_enabled(w.alias[10], false), 0);
	kept = w.m->spare_log;
	assert_non_null(kept);
	for (i = 0; i < 10; i++) {
#ifdef MV_TEST_ASAN
		assert_true(__asan_address_is_poisoned(w.m->spare_log));
#endif
		assert_int_equal(mv_region_set_enabled(w.alias[10], i % 2 == 0),
				 0);
		assert_ptr_equal(w.m->spare_log, kept);
		check_view(&w);
	}
	assert_int_equal(adds, 5); /* one per enable */
	mv_listener_unregister(&l);
	mv_machine_free(w.m); /* frees the kept log (ASan: no leak) */
	world_unref(&w);
}

/* Whether group @g is among the @n of @a. */
static bool has_group(struct mv_view_group *const *a, size_t n,
		      const struct mv_view_group *g)
{
	while (n--)
		if (a[n] == g)
			return true;
	return false;
}

/*
 * Every group of the @n live views @v is counted once per view that names
 * it without borrowing it, every chunk once per live group naming it
 * without borrowing it.
 */
static void expect_counts(struct mv_machine *m, struct mv_flatview **v,
			  size_t n)
{
	struct mv_view_group *groups[256];
	size_t i, j, k, nr = 0;

	for (i = 0; i < n; i++)
		for (k = 0; k < v[i]->nr_groups; k++) {
			struct mv_view_group *g = v[i]->groups[k];
			long owners = 0;

			for (j = 0; j < v[i]->nr_groups && j < k; j++)
				assert_ptr_not_equal(v[i]->groups[j], g);
			for (j = 0; j < n; j++) {
				size_t l;

				for (l = 0; l < v[j]->nr_groups; l++)
					owners += v[j]->groups[l] == g &&
						  !mv_test_group_borrowed(v[j],
									  l);
			}
			assert_int_equal(g->refs, owners);
			if (!has_group(groups, nr, g)) {
				assert_true(nr < 256);
				groups[nr++] = g;
			}
		}
	for (i = 0; i < nr; i++)
		for (k = 0; k < groups[i]->nr; k++) {
			long holders = 0;

			for (j = 0; j < nr; j++) {
				size_t l;

				for (l = 0; l < groups[j]->nr; l++)
					holders += groups[j]->ch[l] ==
							   groups[i]->ch[k] &&
						   mv_test_group_holds(
							   groups[j], l);
			}
			assert_int_equal(m->chunk_refs[groups[i]->id[k]],
					 holders);
		}
}

/* The same for the world's current and held views, once each. */
static void expect_live_counts(struct world *w)
{
	struct mv_flatview *v[NR_HELD + 1];
	size_t n = 0, i, j;

	mv_machine_reclaim(w->m);
	v[n++] = w->as->view;
	for (i = 0; i < NR_HELD; i++) {
		for (j = 0; j < n && w->held[i] && v[j] != w->held[i]; j++)
			;
		if (w->held[i] && j == n)
			v[n++] = w->held[i];
	}
	expect_counts(w->m, v, n);
}

/*
 * Views held across commits share chunks (and their region references);
 * a deleted RAM region lives exactly as long as the last view naming it,
 * and when everything is released nothing is left.
 */
static void test_references_balanced(void **state)
{
	struct world w;
	size_t blocks;
	int step, i;

	(void)state;
	world_init(&w, 99);
	blocks = mv_ramblock_count(w.m);
	assert_int_equal(blocks, 1 + NR_LEAF);
	for (step = 0; step < 200; step++) {
		int h = (int)rnd(&w, NR_HELD);

		if (w.held[h])
			mv_flatview_unref(w.held[h]);
		w.held[h] = mv_as_get_flatview(w.as);
		random_op(&w);
		if (step % 25 ==
		    24) { /* delete a leaf: the held views keep it */
			struct mv_region *l = w.leaf[step / 25];

			assert_int_equal(mv_region_del_subregion(w.root, l), 0);
			mv_region_unref(l);
			w.leaf[step / 25] = NULL;
		}
		check_view(&w);
		expect_live_counts(&w);
	}
	mv_machine_reclaim(w.m);
	/* Leaves deleted: each still alive iff a held view names it. */
	assert_true(mv_ramblock_count(w.m) >= 1);
	for (i = 0; i < NR_HELD; i++) {
		if (w.held[i])
			mv_flatview_unref(w.held[i]);
		w.held[i] = NULL;
	}
	/* The current view names only "ram" (every leaf deleted). */
	assert_int_equal(mv_ramblock_count(w.m), 1);
	mv_test_check_views(w.m);
	for (i = 0; i < NR_ALIAS; i++)
		mv_region_unref(w.alias[i]);
	for (i = 0; i < NR_COVER; i++)
		mv_region_unref(w.cover[i]);
	mv_region_unref(w.ram);
	mv_region_unref(w.root);
	assert_int_equal(mv_ramblock_count(w.m), 1); /* the AS's view holds */
	mv_machine_free(w.m);
}

/*
 * A one-range change borrows the chunks it shares from the view it was
 * spliced from (no count taken); the replaced view, released first,
 * leaves them to it.  When the borrower is released before its lender (a
 * caller holds the older view), the view borrowing from it takes counts
 * of its own; each chunk's count stays the number of views owning it.
 */
static void test_loans_follow_views(void **state)
{
	struct mv_flatview *v0, *v1, *v2, *live[2];
	struct world w;

	(void)state;
	world_init(&w, 5);
	v0 = mv_as_get_flatview(w.as);
	assert_int_equal(mv_region_set_enabled(w.alias[NR_ALIAS / 2], false),
			 0);
	v1 = mv_as_get_flatview(w.as);
	assert_ptr_equal(v1->lender, v0);
	assert_ptr_equal(v0->heir, v1);
	/* before and after the seam: all groups but those around it */
	assert_true(v1->nr_loans >= 1 && v1->nr_loans <= 2);
	assert_true(v1->loans[0].n + (v1->nr_loans > 1 ? v1->loans[1].n : 0) +
			    3 >=
		    v1->nr_groups);
	assert_true(v1->nr_groups >= 5);
	live[0] = v0;
	live[1] = v1;
	expect_counts(w.m, live, 2);

	/* v2 borrows from v1, which goes before its lender v0 */
	assert_int_equal(mv_region_set_enabled(w.alias[NR_ALIAS / 3], false),
			 0);
	check_view(&w);
	v2 = mv_as_get_flatview(w.as);
	assert_ptr_equal(v2->lender, v1);
	mv_flatview_unref(v1);
	mv_machine_reclaim(w.m);
	assert_null(v2->lender);
	assert_int_equal(v2->nr_loans, 0);
	assert_null(v0->heir);
	live[1] = v2;
	expect_counts(w.m, live, 2);

	/* v3 borrows from v2; v0 goes, then v2: v3 inherits */
	assert_int_equal(mv_region_set_enabled(w.alias[NR_ALIAS / 4], false),
			 0);
	assert_ptr_equal(check_view(&w)->lender, v2);
	mv_flatview_unref(v0);
	mv_machine_reclaim(w.m);
	assert_ptr_equal(w.as->view->lender, v2);
	mv_flatview_unref(v2);
	live[0] = w.as->view;
	assert_null(live[0]->lender);
	expect_counts(w.m, live, 1);

	mv_machine_free(w.m);
	world_unref(&w);
}

/* A new view answers lookups by binary search until it has served
 * nr / MV_TABLE_AFTER of them; then it builds its range table. */
static void test_range_table_built_after_lookups(void **state)
{
	struct world w;
	struct mv_flatview *fv;
	size_t i, n;

	(void)state;
	world_init(&w, 3);
	assert_int_equal(mv_region_set_enabled(w.alias[5], false), 0);
	fv = w.as->view;
	n = fv->nr / MV_TABLE_AFTER;
	for (i = 0; i < n; i++) {
		const struct mv_flat_range *r = mv_fv_at(fv, i % fv->nr);

		assert_ptr_equal(mv_flatview_lookup(fv, r->first), r);
		assert_null(atomic_load(&fv->table));
	}
	assert_ptr_equal(mv_flatview_lookup(fv, mv_fv_at(fv, 7)->last),
			 mv_fv_at(fv, 7));
	assert_non_null(atomic_load(&fv->table));
	assert_null(mv_flatview_lookup(fv, mv_fv_at(fv, 7)->last + 1));
	mv_machine_free(w.m);
	for (i = 0; i < NR_ALIAS; i++)
		mv_region_unref(w.alias[i]);
	for (i = 0; i < NR_COVER; i++)
		mv_region_unref(w.cover[i]);
	for (i = 0; i < NR_LEAF; i++)
		mv_region_unref(w.leaf[i]);
	mv_region_unref(w.ram);
	mv_region_unref(w.root);
}

struct reader {
	struct mv_as *as;
	atomic_int inside;
	uint64_t sum;
};

/* Inside a read-side section: hold the view while the writer commits,
 * then read every range of it (ASan: nothing may have been freed). */
static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct mv_flatview *fv = mv_as_read_begin(rd->as);
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	size_t i, k = 0;

	atomic_store(&rd->inside, 1);
	nanosleep(&ts, NULL); /* the writer commits meanwhile */
	for (i = 0; i < fv->nr; i++) {
		const struct mv_flat_range *r = mv_fv_cur(fv, &k, i);

		rd->sum += r->first + (uint64_t)mv_region_size(r->mr);
	}
	mv_as_read_end();
	return NULL;
}

/*
 * A commit releases the replaced view at once when no read-side section
 * began since the last grace period, and waits for one otherwise: a
 * reader holding the old view keeps it (and its chunks and regions)
 * valid until it leaves its section.
 */
static void test_reader_keeps_replaced_view(void **state)
{
	struct world w;
	struct reader rd = { 0 };
	struct mv_region *l;
	pthread_t t;
	int i;

	(void)state;
	world_init(&w, 5);
	rd.as = w.as;
	/* no reader yet: the old view goes at the end of the commit */
	l = w.leaf[0];
	w.leaf[0] = NULL;
	assert_int_equal(mv_region_del_subregion(w.root, l), 0);
	mv_region_unref(l);
	assert_int_equal(mv_ramblock_count(w.m), NR_LEAF);
	/* a reader holds the view naming leaf1 while it is deleted */
	assert_int_equal(pthread_create(&t, NULL, reader_main, &rd), 0);
	while (!atomic_load(&rd.inside))
		sched_yield();
	l = w.leaf[1];
	w.leaf[1] = NULL;
	assert_int_equal(mv_region_del_subregion(w.root, l), 0);
	mv_region_unref(l);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(rd.sum != 0);
	/* the commit waited for the reader, then released it all */
	assert_int_equal(mv_ramblock_count(w.m), NR_LEAF - 1);
	check_view(&w);
	mv_machine_free(w.m);
	for (i = 0; i < NR_ALIAS; i++)
		mv_region_unref(w.alias[i]);
	for (i = 0; i < NR_COVER; i++)
		mv_region_unref(w.cover[i]);
	for (i = 2; i < NR_LEAF; i++)
		mv_region_unref(w.leaf[i]);
	mv_region_unref(w.ram);
	mv_region_unref(w.root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_splices_equal_full_render),
		cmocka_unit_test(test_one_change_shares_the_rest),
		cmocka_unit_test(test_references_balanced),
		cmocka_unit_test(test_loans_follow_views),
		cmocka_unit_test(test_chunk_cache_reuse),
		cmocka_unit_test(test_event_log_kept),
		cmocka_unit_test(test_range_table_built_after_lookups),
		cmocka_unit_test(test_reader_keeps_replaced_view),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
