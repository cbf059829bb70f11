// SPDX-License-Identifier: MIT
/*
 * Flat views at the group level (struct mv_view_group, struct
 * mv_view_loan): worlds of many groups, windows spanning several groups,
 * several windows per commit, two address spaces on one root and one on
 * another, views held and released in random order, failing listeners,
 * allocation failures during splices, and tiny views crossing the
 * one-chunk and one-group thresholds.  Every step is checked against a
 * full render range by range, through every reader (mv_fv_cur(),
 * mv_fv_at(), mv_flatview_search_near() with good and bad hints), and
 * every chunk and group count against the views that name them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "internal.h" /* src/memory: groups, chunks, mv_render */
#include "view_helpers.h"

#define PAGE 0x1000ull
#define NR_COVER 6
#define NR_HELD 8
#define WIN_BASE (1ull << 40) /* where root2 maps its window of root */

/* A listener mirroring its address space: what was added minus what was
 * deleted, as a count and a sum of range hashes. */
struct mirror {
	struct mv_listener l;
	long nr;
	uint64_t sum;
	long adds;
	long fail_add_at; /* the add numbered so fails (0: never) */
	long failed;
};

struct world {
	struct mv_machine *m;
	struct mv_region *root, *root2, *ram, *win, *leaf2;
	struct mv_as *as, *as_same, *as_other;
	struct mv_region **alias;
	size_t nr_alias;
	struct mv_region *cover[NR_COVER];
	struct mv_flatview *held[NR_HELD];
	struct mirror mir, mir2;
	uint64_t seed;
	/* how often a splice's position hints were right (reported) */
	size_t hints, hints_right;
	/* what the steps exercised: splices, views borrowing, commits that
	 * rebuilt several groups of a view of several groups */
	size_t splices, borrowers, wide;
	long ram_base; /* references on @ram but the views' (0: not yet) */
};

static uint64_t rnd(struct world *w, uint64_t n)
{
	w->seed = w->seed * 6364136223846793005ull + 1442695040888963407ull;
	return (w->seed >> 33) % n;
}

static uint64_t range_hash(uint64_t first, uint64_t last, const void *mr,
			   uint64_t off)
{
	uint64_t h = first * 0x9e3779b97f4a7c15ull ^ last;

	h = (h ^ (uintptr_t)mr) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ off) * 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

static uint64_t section_hash(const struct mv_section *s)
{
	return range_hash(s->first, s->last, s->mr, s->offset_within_region);
}

static int mirror_add(struct mv_listener *l, const struct mv_section *s)
{
	struct mirror *mi = l->opaque;

	if (mi->fail_add_at && ++mi->adds == mi->fail_add_at) {
		mi->failed++;
		return -ENOSPC;
	}
	mi->nr++;
	mi->sum += section_hash(s);
	return 0;
}

static int mirror_del(struct mv_listener *l, const struct mv_section *s)
{
	struct mirror *mi = l->opaque;

	mi->nr--;
	mi->sum -= section_hash(s);
	return 0;
}

static const struct mv_listener_ops mirror_ops = {
	.region_add = mirror_add,
	.region_del = mirror_del,
};

static void mirror_register(struct mirror *mi, struct mv_as *as)
{
	memset(mi, 0, sizeof(*mi));
	mi->l.ops = &mirror_ops;
	mi->l.priority = 1;
	mi->l.name = "mirror";
	mi->l.opaque = mi;
	assert_int_equal(mv_listener_register(as, &mi->l), 0);
}

static void mirror_expect(const struct mirror *mi, const struct mv_flatview *fv)
{
	uint64_t sum = 0;
	size_t i, k = 0;

	for (i = 0; i < fv->nr; i++) {
		const struct mv_flat_range *r = mv_fv_cur(fv, &k, i);

		sum += range_hash(r->first, r->last, r->mr,
				  r->offset_in_region);
	}
	assert_int_equal(mi->nr, (long)fv->nr);
	assert_true(mi->sum == sum);
}

/*
 * @nr_alias one-page aliases of "ram", a page apart (no two merge), in
 * root; covers (reservations over many groups, priority 1, disabled);
 * "memory" and "memory2" on root, "other" on root2, which maps half of
 * root through an alias next to a RAM leaf of its own.
 */
static void world_init(struct world *w, size_t nr_alias, uint64_t seed,
		       bool listeners)
{
	char name[32];
	size_t i;

	memset(w, 0, sizeof(*w));
	w->seed = seed;
	w->nr_alias = nr_alias;
	w->alias = calloc(nr_alias, sizeof(*w->alias));
	assert_non_null(w->alias);
	assert_int_equal(mv_machine_new(&w->m), 0);
	assert_int_equal(
		mv_region_new_container(w->m, "root", UINT64_MAX, &w->root), 0);
	assert_int_equal(mv_region_new_container(w->m, "root2", UINT64_MAX,
						 &w->root2),
			 0);
	assert_int_equal(mv_region_new_ram(w->m, "ram", nr_alias * PAGE, NULL,
					   &w->ram),
			 0);
	assert_int_equal(
		mv_region_new_ram(w->m, "leaf2", 4 * PAGE, NULL, &w->leaf2), 0);
	mv_txn_begin(w->m);
	for (i = 0; i < nr_alias; i++) {
		snprintf(name, sizeof(name), "a%zu", i);
		assert_int_equal(mv_region_new_alias(w->m, name, w->ram,
						     i * PAGE, PAGE,
						     &w->alias[i]),
				 0);
		assert_int_equal(mv_region_add_subregion(w->root, i * 2 * PAGE,
							 w->alias[i]),
				 0);
	}
	for (i = 0; i < NR_COVER; i++) {
		snprintf(name, sizeof(name), "cover%zu", i);
		assert_int_equal(mv_region_new_reservation(
					 w->m, name, (1 + rnd(w, 9000)) * PAGE,
					 &w->cover[i]),
				 0);
		assert_int_equal(mv_region_set_enabled(w->cover[i], false), 0);
		assert_int_equal(mv_region_add_subregion_overlap(
					 w->root, rnd(w, 2 * nr_alias) * PAGE,
					 w->cover[i], 1),
				 0);
	}
	assert_int_equal(mv_region_new_alias(w->m, "win", w->root,
					     nr_alias / 2 * PAGE,
					     nr_alias * PAGE, &w->win),
			 0);
	assert_int_equal(mv_region_add_subregion(w->root2, WIN_BASE, w->win),
			 0);
	assert_int_equal(mv_region_add_subregion(w->root2, 0, w->leaf2), 0);
	assert_int_equal(mv_txn_commit(w->m), 0);
	assert_int_equal(mv_as_new(w->m, "memory", w->root, &w->as), 0);
	assert_int_equal(mv_as_new(w->m, "memory2", w->root, &w->as_same), 0);
	assert_int_equal(mv_as_new(w->m, "other", w->root2, &w->as_other), 0);
	if (listeners) {
		mirror_register(&w->mir, w->as);
		mirror_register(&w->mir2, w->as_other);
	}
}

/* Release the held views, the machine, then the test's references. */
static void world_free(struct world *w)
{
	size_t i;

	for (i = 0; i < NR_HELD; i++)
		mv_flatview_unref(w->held[i]);
	mv_machine_free(w->m);
	for (i = 0; i < w->nr_alias; i++)
		mv_region_unref(w->alias[i]);
	for (i = 0; i < NR_COVER; i++)
		mv_region_unref(w->cover[i]);
	mv_region_unref(w->win);
	mv_region_unref(w->leaf2);
	mv_region_unref(w->ram);
	mv_region_unref(w->root2);
	mv_region_unref(w->root);
	free(w->alias);
}

/* The first index >= @from of @flat whose key is >= @key (the oracle of
 * mv_flatview_search()). */
static size_t oracle_search(const struct mv_flat_range *flat, size_t nr,
			    size_t from, u128 key, bool by_first)
{
	size_t lo = 0, hi = nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		u128 k = by_first ? flat[mid].first : flat[mid].last;

		if (k < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > from ? lo : from < nr ? from : nr;
}

/* A position hint: right, next door, past the end, garbage or stale. */
static size_t some_hint(struct world *w, const struct mv_flatview *fv, size_t i)
{
	switch (rnd(w, 5)) {
	case 0:
		return i < fv->nr ? mv_fv_chunk_of(fv, i) : 0;
	case 1:
		return i < fv->nr ? mv_fv_chunk_of(fv, i) + 1 : 1;
	case 2:
		return SIZE_MAX - rnd(w, 3);
	case 3:
		return mv_fv_pos(fv->nr_groups + rnd(w, 2), rnd(w, 40));
	default:
		return mv_fv_pos(rnd(w, fv->nr_groups + 1),
				 rnd(w, MV_VIEW_GROUP));
	}
}

/* Every reader of @fv against the ranges @flat of a full render. */
static void check_readers(struct world *w, const struct mv_flatview *fv,
			  const struct mv_flat_range *flat, size_t nr)
{
	size_t i, t, k = 0;

	assert_int_equal(fv->nr, nr);
	for (i = 0; i < nr; i++) /* in order, one search per chunk */
		assert_true(mv_test_range_eq(mv_fv_cur(fv, &k, i), &flat[i]));
	for (t = 0; nr && t < 64; t++) { /* at random */
		size_t pos;

		i = rnd(w, nr);
		pos = mv_fv_chunk_of(fv, i);
		assert_true(mv_fv_pos_holds(fv, pos, i));
		assert_true(mv_test_range_eq(mv_fv_at(fv, i), &flat[i]));
		assert_true(mv_test_range_eq(mv_fv_in(fv, pos, i), &flat[i]));
		k = some_hint(w, fv, rnd(w, nr));
		assert_true(mv_test_range_eq(mv_fv_cur(fv, &k, i), &flat[i]));
	}
	for (t = 0; t < 96; t++) { /* searches, hints good and bad */
		bool by_first = rnd(w, 2);
		size_t from = nr ? rnd(w, nr + 2) : 0, got, want;
		u128 key;

		if (nr && rnd(w, 2)) {
			const struct mv_flat_range *r = &flat[rnd(w, nr)];

			key = (u128)r->first + rnd(w, 3) - 1 +
			      (rnd(w, 2) ? r->last - r->first : 0);
			if (key > ((u128)1 << 64))
				key = 0;
		} else {
			key = rnd(w, 5) ? (u128)rnd(w, 4 * w->nr_alias + 8) *
						  PAGE / 2 :
					  (u128)1 << 64;
		}
		k = some_hint(w, fv, nr ? rnd(w, nr) : 0);
		got = mv_flatview_search_near(fv, from, key, by_first, &k);
		want = oracle_search(flat, nr, from, key, by_first);
		if (got != want)
			fail_msg("search from %zu key %#" PRIx64
				 "%s: %zu, not %zu",
				 from, (uint64_t)key, by_first ? " first" : "",
				 got, want);
		if (got < nr) /* the hint left behind still reads it */
			assert_true(mv_test_range_eq(mv_fv_cur(fv, &k, got),
						     &flat[got]));
	}
}

/* @as's view equals a full render of its root; returns it (borrowed). */
static struct mv_flatview *check_as(struct world *w, struct mv_as *as)
{
	struct mv_flatview *fv = as->view, *full = NULL;
	const struct mv_flat_range *flat, *mine;
	size_t nr, nr2, i;
	char why[128];

	if (mv_flatview_check(fv, why, sizeof(why)))
		fail_msg("view of %s: %s", mv_as_name(as), why);
	assert_int_equal(mv_render(w->m, fv->root, &full), 0);
	flat = mv_flatview_ranges(full, &nr);
	assert_non_null(flat);
	check_readers(w, fv, flat, nr);
	mine = mv_flatview_ranges(fv, &nr2);
	assert_int_equal(nr2, nr);
	for (i = 0; i < nr; i++) /* (padding differs: field by field) */
		assert_true(mv_test_range_eq(&mine[i], &flat[i]));
	mv_flatview_unref(full);
	return fv;
}

/* The runs @fv kept from @old (struct mv_view_same) are equal there. */
static void check_same(struct world *w, const struct mv_flatview *old,
		       const struct mv_flatview *fv)
{
	size_t s, t, ko = 0, kn = 0;

	if (!fv->base_gen || fv->base_gen != old->gen)
		return;
	for (s = 0; s < fv->nr_same; s++) {
		const struct mv_view_same *r = &fv->same[s];

		assert_true(r->len > 0);
		assert_true(r->old + r->len <= old->nr);
		assert_true(r->new + r->len <= fv->nr);
		assert_true(
			!s ||
			(r->old >= fv->same[s - 1].old + fv->same[s - 1].len &&
			 r->new >= fv->same[s - 1].new + fv->same[s - 1].len));
		for (t = 0; t < r->len; t++)
			assert_true(mv_test_range_eq(
				mv_fv_cur(old, &ko, r->old + t),
				mv_fv_cur(fv, &kn, r->new + t)));
		w->hints += 2;
		w->splices += !s;
		w->hints_right += mv_fv_pos_holds(old, r->old_pos, r->old);
		w->hints_right +=
			mv_fv_pos_holds(old, r->end_pos, r->old + r->len - 1);
	}
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The @n distinct views @v are all the machine's live views: every group
 * is counted once per view naming it without borrowing it, every chunk
 * once per distinct group naming it without borrowing it (the lender
 * of a group that borrows is live too), and every other chunk id is free
 * with no count (nothing leaked, nothing dropped twice).
 */
static void expect_counts(struct mv_machine *m, struct mv_flatview **v,
			  size_t n)
{
	uintptr_t *owned, *named;
	uint32_t *ids;
	size_t i, k, j, nr_owned = 0, nr_named = 0, nr_ids = 0, total = 0;
	size_t nr_live_ids = 0;

	for (i = 0; i < n; i++)
		total += v[i]->nr_groups;
	owned = calloc(total + 1, sizeof(*owned));
	named = calloc(total + 1, sizeof(*named));
	assert_non_null(owned);
	assert_non_null(named);
	for (i = 0; i < n; i++) {
		for (k = 0; k < v[i]->nr_groups; k++) {
			named[nr_named++] = (uintptr_t)v[i]->groups[k];
			if (!mv_test_group_borrowed(v[i], k))
				owned[nr_owned++] = (uintptr_t)v[i]->groups[k];
		}
	}
	qsort(named, nr_named, sizeof(*named), cmp_ptr);
	qsort(owned, nr_owned, sizeof(*owned), cmp_ptr);
	for (i = j = 0; i < nr_named; i++) { /* distinct groups, in place */
		if (!j || named[j - 1] != named[i])
			named[j++] = named[i];
	}
	nr_named = j;
	for (i = 0, k = 0; i < nr_named; i++) {
		const struct mv_view_group *g = (void *)named[i];
		long owners = 0;

		while (k < nr_owned && owned[k] < named[i])
			k++;
		while (k < nr_owned && owned[k] == named[i]) {
			owners++;
			k++;
		}
		if (g->refs != owners)
			fail_msg("group %zu of %zu: %ld counts, %ld owners", i,
				 nr_named, g->refs, owners);
		nr_ids += g->nr;
	}
	ids = calloc(nr_ids + 1, sizeof(*ids));
	assert_non_null(ids);
	for (i = 0, j = 0; i < nr_named; i++) {
		const struct mv_view_group *g = (void *)named[i];

		for (k = 0; k < g->nr; k++)
			if (mv_test_group_holds(g, k))
				ids[j++] = g->id[k];
	}
	nr_ids = j;
	qsort(ids, nr_ids, sizeof(*ids), cmp_u32);
	for (i = 0; i < nr_ids; i = j) {
		for (j = i; j < nr_ids && ids[j] == ids[i]; j++)
			;
		assert_true(ids[i] < m->nr_chunk_ids);
		if (m->chunk_refs[ids[i]] != (long)(j - i))
			fail_msg("chunk id %u: %ld counts, %zu groups", ids[i],
				 m->chunk_refs[ids[i]], j - i);
		nr_live_ids++;
	}
	for (i = 0; i < m->nr_free_chunk_ids; i++)
		if (m->chunk_refs[m->free_chunk_ids[i]] != 0)
			fail_msg("free chunk id %u: %ld counts",
				 m->free_chunk_ids[i],
				 m->chunk_refs[m->free_chunk_ids[i]]);
	if (nr_live_ids + m->nr_free_chunk_ids != m->nr_chunk_ids)
		fail_msg("%zu chunk ids live, %zu free, %zu in all",
			 nr_live_ids, m->nr_free_chunk_ids, m->nr_chunk_ids);
	free(ids);
	free(owned);
	free(named);
}

/* Add @fv to the @n distinct views of @v. */
static void add_view(struct mv_flatview **v, size_t *n, struct mv_flatview *fv)
{
	size_t i;

	for (i = 0; fv && i < *n; i++)
		if (v[i] == fv)
			return;
	if (fv)
		v[(*n)++] = fv;
}

/*
 * The shape of @fv, checked independently of mv_flatview_check() (which
 * also checks the ranges against their regions as they are now, so only
 * fits the current views): groups and chunks within their sizes, the
 * index and each group's first[] consistent, the ranges sorted, the loans
 * inside both views and naming the lender's groups.
 */
static void check_shape(const struct mv_flatview *fv)
{
	size_t k, j, nr_chunks = 0;
	uint64_t prev = 0;

	assert_true(fv->nr_groups <= fv->index_cap);
	assert_int_equal(fv->group_first[0], 0);
	assert_int_equal(fv->group_first[fv->nr_groups], fv->nr);
	for (k = 0; k < fv->nr_groups; k++)
		nr_chunks += fv->groups[k]->nr;
	for (k = 0; k < fv->nr_groups; k++) {
		const struct mv_view_group *g = fv->groups[k];

		assert_true(g->refs >= 1);
		assert_true(g->nr >= 1 && g->nr <= MV_VIEW_GROUP);
		assert_true(fv->nr_groups == 1 || g->nr >= MV_VIEW_GROUP / 2);
		assert_int_equal(g->first[0], 0);
		assert_int_equal(fv->group_first[k + 1] - fv->group_first[k],
				 g->first[g->nr]);
		assert_true(fv->group_addr[k] == g->addr[0]);
		for (j = 0; j < g->nr; j++) {
			const struct mv_view_chunk *ch = g->ch[j];

			assert_int_equal(g->first[j + 1] - g->first[j], ch->nr);
			assert_int_equal(g->id[j], ch->id);
			assert_true(g->addr[j] == ch->r[0].first);
			assert_true(ch->nr >= 1 && ch->nr <= MV_VIEW_CHUNK);
			assert_true(nr_chunks == 1 ||
				    ch->nr >= MV_VIEW_CHUNK / 2);
			assert_true((k == 0 && j == 0) ||
				    ch->r[0].first > prev);
			prev = ch->r[ch->nr - 1].last;
		}
	}
	assert_true(!fv->lender == !fv->nr_loans);
	assert_true(!fv->lender || fv->lender->heir == fv);
	assert_true(!fv->heir || fv->heir->lender == fv);
	for (k = 0; k < fv->nr_loans; k++) {
		const struct mv_view_loan *l = &fv->loans[k];

		assert_true(l->n >= 1);
		assert_true(l->from + l->n <= fv->lender->nr_groups);
		assert_true(l->to + l->n <= fv->nr_groups);
		assert_true(!k || (l->from >= fv->loans[k - 1].from +
						      fv->loans[k - 1].n &&
				   l->to >= fv->loans[k - 1].to +
						    fv->loans[k - 1].n));
		for (j = 0; j < l->n; j++)
			assert_ptr_equal(fv->groups[l->to + j],
					 fv->lender->groups[l->from + j]);
	}
}

/*
 * References the @n live views @v hold on @mr: once per range naming it
 * in each distinct chunk, but for the ranges a chunk borrows from its
 * lender (struct mv_view_chunk).
 */
static long view_refs_on(struct mv_flatview **v, size_t n,
			 const struct mv_region *mr)
{
	struct mv_view_chunk **ch;
	size_t i, k, j, nr = 0, cap = 0;
	long refs = 0;

	for (i = 0; i < n; i++)
		for (k = 0; k < v[i]->nr_groups; k++)
			cap += v[i]->groups[k]->nr;
	ch = calloc(cap + 1, sizeof(*ch));
	assert_non_null(ch);
	for (i = 0; i < n; i++)
		for (k = 0; k < v[i]->nr_groups; k++)
			for (j = 0; j < v[i]->groups[k]->nr; j++)
				ch[nr++] = v[i]->groups[k]->ch[j];
	qsort(ch, nr, sizeof(*ch), cmp_ptr);
	for (i = 0; i < nr; i++) {
		if (i && ch[i] == ch[i - 1])
			continue;
		for (j = 0; j < ch[i]->nr; j++)
			refs += ch[i]->r[j].mr == mr &&
				(!ch[i]->lender ||
				 j - ch[i]->fresh_at < ch[i]->fresh_n);
	}
	free(ch);
	return refs;
}

/* The counts of every live view: the address spaces', the held ones and
 * the machine's empty view (retired ones reclaimed first); the RAM's
 * references other than the views' never change. */
static void expect_live_counts(struct world *w)
{
	struct mv_flatview *v[NR_HELD + 4];
	size_t n = 0, i;

	mv_machine_reclaim(w->m);
	add_view(v, &n, w->as->view);
	add_view(v, &n, w->as_same->view);
	add_view(v, &n, w->as_other->view);
	add_view(v, &n, w->m->empty_view);
	for (i = 0; i < NR_HELD; i++)
		add_view(v, &n, w->held[i]);
	for (i = 0; i < n; i++)
		check_shape(v[i]);
	expect_counts(w->m, v, n);
	if (!w->ram_base)
		w->ram_base = w->ram->refcount - view_refs_on(v, n, w->ram);
	assert_int_equal(w->ram->refcount - view_refs_on(v, n, w->ram),
			 w->ram_base);
}

/* Every address space against a full render, the listeners' mirrors. */
static void check_world(struct world *w)
{
	mv_test_check_views(w->m);
	check_as(w, w->as);
	assert_ptr_equal(w->as->view, w->as_same->view);
	check_as(w, w->as_other);
	if (w->mir.l.ops) {
		mirror_expect(&w->mir, w->as->view);
		mirror_expect(&w->mir2, w->as_other->view);
	}
}

/* One change, inside the running transaction if any. */
static void random_op(struct world *w)
{
	struct mv_region *a = w->alias[rnd(w, w->nr_alias)];
	struct mv_region *c = w->cover[rnd(w, NR_COVER)];
	size_t i, s, n;

	switch (rnd(w, 10)) {
	case 0:
	case 1:
		assert_int_equal(
			mv_region_set_enabled(a, !mv_region_enabled(a)), 0);
		break;
	case 2:
	case 3: /* a window over several groups */
		assert_int_equal(
			mv_region_set_enabled(c, !mv_region_enabled(c)), 0);
		break;
	case 4:
		assert_int_equal(
			mv_region_set_size(c, (1 + rnd(w, 9000)) * PAGE), 0);
		break;
	case 5:
		assert_int_equal(mv_region_set_address(
					 c, rnd(w, 2 * w->nr_alias) * PAGE),
				 0);
		break;
	case 6: /* into another alias's gap */
		assert_int_equal(mv_region_set_address(
					 a,
					 rnd(w, w->nr_alias) * 2 * PAGE + PAGE),
				 0);
		break;
	case 7:
		assert_int_equal(mv_region_set_alias_offset(
					 a, rnd(w, w->nr_alias) * PAGE),
				 0);
		break;
	default: /* a run of aliases, a window each (up to 40) */
		n = 1 + rnd(w, 40);
		s = rnd(w, w->nr_alias - n);
		mv_txn_begin(w->m);
		for (i = s; i < s + n; i += 1 + rnd(w, 3))
			assert_int_equal(
				mv_region_set_enabled(
					w->alias[i],
					!mv_region_enabled(w->alias[i])),
				0);
		assert_int_equal(mv_txn_commit(w->m), 0);
		break;
	}
}

/* Hold the current view in a random slot, or release one. */
static void hold_or_release(struct world *w)
{
	size_t h = rnd(w, NR_HELD);

	mv_flatview_unref(w->held[h]);
	w->held[h] = NULL;
	if (rnd(w, 3))
		w->held[h] =
			mv_as_get_flatview(rnd(w, 4) ? w->as : w->as_other);
}

/* Release the held views in random order, the counts checked after each. */
static void release_held(struct world *w)
{
	size_t order[NR_HELD], i, j, t;

	for (i = 0; i < NR_HELD; i++)
		order[i] = i;
	for (i = NR_HELD - 1; i > 0; i--) {
		j = rnd(w, i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < NR_HELD; i++) {
		if (!w->held[order[i]])
			continue;
		mv_flatview_unref(w->held[order[i]]);
		w->held[order[i]] = NULL;
		expect_live_counts(w);
	}
}

/* How many of @fv's groups are not @old's. */
static size_t rebuilt_groups(const struct mv_flatview *old,
			     const struct mv_flatview *fv)
{
	size_t k, j, n = 0;

	for (k = 0; k < fv->nr_groups; k++) {
		for (j = 0; j < old->nr_groups; j++)
			if (old->groups[j] == fv->groups[k])
				break;
		n += j == old->nr_groups;
	}
	return fv->nr_groups >= 2 ? n : 0;
}

/* Random steps: single changes, batches of several windows, held views;
 * every view equal to a full render, every count accounted for. */
static void run_steps(struct world *w, int steps)
{
	int step, n;

	for (step = 0; step < steps; step++) {
		struct mv_flatview *old = mv_as_get_flatview(w->as);
		struct mv_flatview *old2 = mv_as_get_flatview(w->as_other);

		hold_or_release(w);
		if (rnd(w, 3)) {
			random_op(w);
		} else {
			mv_txn_begin(w->m);
			for (n = 1 + (int)rnd(w, 6); n-- > 0;)
				random_op(w);
			assert_int_equal(mv_txn_commit(w->m), 0);
		}
		check_world(w);
		check_same(w, old, w->as->view);
		check_same(w, old2, w->as_other->view);
		w->borrowers += w->as->view->nr_loans > 0;
		w->wide += rebuilt_groups(old, w->as->view) >= 2;
		mv_flatview_unref(old);
		mv_flatview_unref(old2);
		expect_live_counts(w);
		if (step % 16 == 15)
			release_held(w);
	}
}

/* Many groups (~20 per view of root), windows over several of them. */
static void test_groups_random(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, 6000, 1, true);
	check_world(&w);
	assert_true(w.as->view->nr_groups >= 5);
	assert_true(w.as_other->view->nr_groups >= 3);
	run_steps(&w, 150);
	print_message("splices %zu, borrowing %zu, >= 2 groups rebuilt %zu, "
		      "position hints right: %zu of %zu\n",
		      w.splices, w.borrowers, w.wide, w.hints_right, w.hints);
	assert_true(w.splices >= 150);
	assert_true(w.borrowers >= 50);
	assert_true(w.wide >= 20);
	world_free(&w);
}

/* A world of 40 000 ranges (40 to 160 groups), fewer steps. */
static void test_groups_big_world(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, 40000, 2, true);
	check_world(&w);
	assert_true(w.as->view->nr_groups >= 40);
	run_steps(&w, 24);
	assert_true(w.splices >= 24 && w.borrowers >= 8 && w.wide >= 4);
	world_free(&w);
}

/*
 * A listener that fails region_add rolls the commit back: the views stay
 * as they were (the new ones, which borrowed from them, are released
 * before them), every count is balanced and the next commits splice from
 * the views kept.
 */
static void test_groups_listener_rollback(void **state)
{
	struct world w;
	int step, failed = 0;

	(void)state;
	world_init(&w, 6000, 3, true);
	for (step = 0; step < 60; step++) {
		struct mv_flatview *old = w.as->view, *old2 = w.as_other->view;
		struct mirror *mi = rnd(&w, 2) ? &w.mir : &w.mir2;
		int n, ret;

		hold_or_release(&w);
		mi->adds = 0;
		mi->fail_add_at = 1 + (long)rnd(&w, 3);
		mv_txn_begin(w.m);
		for (n = 1 + (int)rnd(&w, 4); n-- > 0;)
			random_op(&w);
		ret = mv_txn_commit(w.m);
		mi->fail_add_at = 0;
		if (ret) {
			assert_int_equal(ret, -ENOSPC);
			assert_ptr_equal(w.as->view, old);
			assert_ptr_equal(w.as_other->view, old2);
			assert_null(old->heir);
			failed++;
		}
		check_world(&w);
		expect_live_counts(&w);
		if (step % 20 == 19)
			release_held(&w);
	}
	assert_true(failed >= 10);
	world_free(&w);
}

/* Empty the machine's caches and spares, so a commit allocates its
 * view's memory (and each allocation can fail). */
static void empty_caches(struct world *w)
{
	mv_machine_reclaim(w->m);
	mv_view_chunk_cache_drain(w->m);
	mv_spare_drain(w->m);
}

/*
 * Commit the running transaction with allocation @n failing: -ENOMEM or
 * 0, every count balanced either way; after a failure the change, still
 * pending, goes through on a second commit.  Returns the first commit's.
 */
static int commit_failing_at(struct world *w, long n)
{
	int ret;

	mv_machine_fail_alloc_after(w->m, n);
	ret = mv_txn_commit(w->m);
	mv_machine_fail_alloc_after(w->m, -1);
	expect_live_counts(w);
	return ret;
}

/* The second commit of a change whose first one failed. */
static void commit_again(struct world *w, int ret)
{
	assert_int_equal(ret, -ENOMEM);
	mv_txn_begin(w->m);
	assert_int_equal(mv_txn_commit(w->m), 0);
}

/*
 * Allocation failures at every point (the first 140: a commit allocates
 * 40 to 130 times) of a commit that splices across several groups (the
 * machine's caches and spares emptied first, so the view's memory is
 * allocated): the commit fails with -ENOMEM, the views
 * stay whole and every count balanced; the change, still pending, goes
 * through on the next commit.
 */
static void test_groups_alloc_failures(void **state)
{
	struct world w;
	long i, n, failures = 0;

	(void)state;
	world_init(&w, 3000, 4, true);
	/* cover0 over 2/3 of the aliases: off, a flush of ~60 chunks */
	assert_int_equal(mv_region_set_address(w.cover[0], 0), 0);
	assert_int_equal(mv_region_set_size(w.cover[0], 4000 * PAGE), 0);
	for (i = 0; i < 280; i++) {
		int k, ret, nr_cover = i < 160 ? 1 : 3;

		n = i < 160 ? i / 2 : (i - 160) / 2 + 40; /* covers on, off */
		hold_or_release(&w);
		empty_caches(&w);
		mv_txn_begin(w.m);
		for (k = 0; k < nr_cover; k++) /* covers: wide windows */
			assert_int_equal(
				mv_region_set_enabled(
					w.cover[k],
					!mv_region_enabled(w.cover[k])),
				0);
		assert_int_equal(mv_region_set_enabled(w.alias[n % w.nr_alias],
						       false),
				 0);
		ret = commit_failing_at(&w, n);
		if (ret) {
			failures++;
			commit_again(&w, ret);
		}
		check_world(&w);
		expect_live_counts(&w);
		if (i % 10 == 9)
			release_held(&w);
	}
	assert_true(failures >= 60);
	world_free(&w);
}

/*
 * Views held across many commits, released in random order, some after
 * the machine is freed (each view holds the machine): nothing read after
 * its release (ASan), nothing leaked.
 */
static void test_groups_outlive_machine(void **state)
{
	struct world w;
	struct mv_flatview *keep[NR_HELD];
	int round;
	size_t i;

	(void)state;
	for (round = 0; round < 4; round++) {
		world_init(&w, 3000, 10 + (uint64_t)round, round & 1);
		run_steps(&w, 12);
		release_held(&w);
		for (i = 0; i < NR_HELD; i++) { /* a chain of loans */
			keep[i] = mv_as_get_flatview(i % 3 ? w.as : w.as_other);
			random_op(&w);
		}
		memcpy(w.held, keep, sizeof(keep));
		expect_live_counts(&w);
		memset(w.held, 0, sizeof(w.held));
		for (i = 0; i < NR_HELD / 2; i++) { /* some before */
			size_t h = rnd(&w, NR_HELD);

			mv_flatview_unref(keep[h]);
			keep[h] = NULL;
		}
		world_free(&w);
		for (i = 0; i < NR_HELD; i++) { /* the others after */
			size_t h = (i * 5 + (size_t)round) % NR_HELD;

			if (keep[h])
				assert_int_equal(
					mv_flatview_check(keep[h], NULL, 0), 0);
			mv_flatview_unref(keep[h]);
			keep[h] = NULL;
		}
	}
}

/*
 * Tiny views: a cover hides all aliases from the @t-th on, so the view
 * has exactly @t ranges; its sizes go up and down across the one-chunk
 * (16, 32) and one-group (512, 1024, 2048) thresholds, each a splice of
 * the one before, the views held for a while.
 */
static void tiny_set(struct world *w, size_t t)
{
	struct mv_region *c = w->cover[0];
	uint64_t at = (t - 1) * 2 * PAGE;

	mv_txn_begin(w->m);
	assert_int_equal(mv_region_set_enabled(c, true), 0);
	assert_int_equal(mv_region_set_address(c, at), 0);
	assert_int_equal(mv_region_set_size(c, w->nr_alias * 2 * PAGE - at), 0);
	assert_int_equal(mv_txn_commit(w->m), 0);
}

static void test_groups_tiny_thresholds(void **state)
{
	static const size_t sizes[] = {
		1,    2,    15,	  16,	17,   31,   32,	  33,	47,   48,
		63,   64,   65,	  511,	512,  513,  527,  528,	1023, 1024,
		1025, 1040, 1041, 1535, 1536, 2047, 2048, 2049, 2065, 4100,
	};
	size_t nr = sizeof(sizes) / sizeof(sizes[0]);
	struct world w;
	size_t i, step;

	(void)state;
	world_init(&w, 4200, 5, true);
	for (i = 1; i < NR_COVER; i++) /* only cover0 */
		assert_int_equal(mv_region_del_subregion(w.root, w.cover[i]),
				 0);
	assert_int_equal(mv_region_set_enabled(w.win, false), 0);
	for (step = 0; step < 3 * nr + 40; step++) {
		size_t t;

		if (step < nr) /* up */
			t = sizes[step];
		else if (step < 2 * nr) /* down */
			t = sizes[2 * nr - 1 - step];
		else if (step < 3 * nr) /* by one across each threshold */
			t = sizes[step - 2 * nr] + (step & 1);
		else /* jumps */
			t = sizes[rnd(&w, nr)];
		hold_or_release(&w);
		tiny_set(&w, t);
		check_world(&w);
		assert_int_equal(w.as->view->nr, t);
		assert_true(t < 2 || w.as->view->base_gen);
		expect_live_counts(&w);
		/* a toggle at a random place of it, then back */
		if (t > 2) {
			struct mv_region *a = w.alias[rnd(&w, t - 1)];

			assert_int_equal(mv_region_set_enabled(a, false), 0);
			check_world(&w);
			assert_int_equal(mv_region_set_enabled(a, true), 0);
			check_world(&w);
			expect_live_counts(&w);
		}
		if (step % 12 == 11)
			release_held(&w);
	}
	world_free(&w);
}

static uint64_t patched(const struct world *w)
{
	struct mv_machine_stats st;

	mv_machine_get_stats(w->m, &st);
	return st.patched;
}

/* How many of @fv's chunks are not @old's. */
static size_t new_chunks(const struct mv_flatview *old,
			 const struct mv_flatview *fv)
{
	size_t k, j, a, b, n = 0;

	for (k = 0; k < fv->nr_groups; k++)
		for (j = 0; j < fv->groups[k]->nr; j++) {
			bool found = false;

			for (a = 0; a < old->nr_groups && !found; a++)
				for (b = 0; b < old->groups[a]->nr; b++)
					found |= old->groups[a]->ch[b] ==
						 fv->groups[k]->ch[j];
			n += !found;
		}
	return n;
}

/*
 * view_patch.c: a change inside one chunk (an alias toggled, moved
 * within its gap) builds the view by replacing that chunk and its group
 * only, borrowing the rest; a wide window does not; an allocation failure
 * at any point of the patch leaves everything as it was.
 */
static void test_groups_patch(void **state)
{
	struct world w;
	struct mv_flatview *old;
	uint64_t before;
	size_t i, failures = 0;
	int n, ret;

	(void)state;
	world_init(&w, 3000, 6, true);
	for (i = 0; i < 40; i++) {
		struct mv_region *a = w.alias[rnd(&w, w.nr_alias)];

		old = mv_as_get_flatview(w.as);
		before = patched(&w);
		assert_int_equal(
			mv_region_set_enabled(a, !mv_region_enabled(a)), 0);
		check_world(&w);
		check_same(&w, old, w.as->view);
		if (patched(&w) - before >= 1 && w.as->view->nr_groups >= 2) {
			assert_int_equal(rebuilt_groups(old, w.as->view), 1);
			assert_int_equal(new_chunks(old, w.as->view), 1);
			assert_int_equal(w.as->view->nr_groups, old->nr_groups);
			assert_true(w.as->view->nr_loans > 0);
		}
		mv_flatview_unref(old);
		expect_live_counts(&w);
	}
	assert_true(patched(&w) >= 60); /* and as_other's window */
	/* a cover over many chunks: the general build */
	assert_int_equal(mv_region_set_address(w.cover[0], 0), 0);
	assert_int_equal(mv_region_set_size(w.cover[0], 2000 * PAGE), 0);
	before = patched(&w);
	assert_int_equal(mv_region_set_enabled(w.cover[0], true), 0);
	check_world(&w);
	assert_int_equal(patched(&w), before);
	assert_int_equal(mv_region_set_enabled(w.cover[0], false), 0);
	/* every allocation of a patch failing in turn */
	for (n = 0; n < 12; n++) {
		struct mv_region *a = w.alias[w.nr_alias - 100 + n];

		hold_or_release(&w);
		empty_caches(&w);
		old = w.as->view;
		before = patched(&w);
		mv_txn_begin(w.m);
		assert_int_equal(mv_region_set_enabled(a, false), 0);
		ret = commit_failing_at(&w, n);
		if (ret) { /* the old view stays, the change pending */
			assert_ptr_equal(w.as->view, old);
			failures++;
			commit_again(&w, ret);
		}
		assert_true(patched(&w) > before);
		check_world(&w);
		expect_live_counts(&w);
	}
	assert_true(failures >= 4);
	release_held(&w);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_groups_random),
		cmocka_unit_test(test_groups_big_world),
		cmocka_unit_test(test_groups_listener_rollback),
		cmocka_unit_test(test_groups_alloc_failures),
		cmocka_unit_test(test_groups_outlive_machine),
		cmocka_unit_test(test_groups_tiny_thresholds),
		cmocka_unit_test(test_groups_patch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
