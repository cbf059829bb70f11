// SPDX-License-Identifier: MIT
/*
 * Flat views: reference counting, lookup, QEMU's can_merge rule and the
 * invariant checker the tests run after every step.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void mv_flatview_ref(struct mv_flatview *fv)
{
	atomic_fetch_add(&fv->refcount, 1);
}

static void flatview_destroy(struct mv_flatview *fv)
{
	struct mv_machine *m = fv->machine;

	mv_view_release(m, fv);
	if (fv->root)
		mv_region_unref(fv->root);
	mv_range_table_free(atomic_load(&fv->table));
	free(atomic_load(&fv->flat));
	mv_spare_give(m, MV_SPARE_SAME, fv->same,
		      fv->cap_same * sizeof(*fv->same));
	mv_spare_give(m, MV_SPARE_VIEW, fv, sizeof(*fv));
	mv_machine_put(m);
}

void mv_flatview_unref(struct mv_flatview *fv)
{
	if (fv && atomic_fetch_sub(&fv->refcount, 1) == 1)
		flatview_destroy(fv);
}

void mv_flatview_unref_deferred(struct mv_flatview *fv)
{
	struct mv_machine *m = fv->machine;

	if (atomic_fetch_sub(&fv->refcount, 1) != 1)
		return;
	if (m->dead) { /* no writer will drain the list any more */
		flatview_destroy(fv);
		return;
	}
	fv->reclaim_next =
		atomic_load_explicit(&m->reclaim, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(
		&m->reclaim, &fv->reclaim_next, fv, memory_order_release,
		memory_order_relaxed))
		;
}

void mv_reclaim(struct mv_machine *m)
{
	struct mv_flatview *fv, *next;

	size_t i;

	/* The replaced views were unpublished before this fence; if no
	 * read-side section began since the last grace period, none can
	 * hold them and none needs waiting for (struct mv_machine) -- not
	 * even one this thread is in: it would have set the flag, and no
	 * grace period can have ended since.  With the flag set, a commit
	 * from inside a section (an MMIO callback, as QEMU's devices do)
	 * cannot wait for one and leaves the views for later. */
	atomic_thread_fence(memory_order_seq_cst);
	if (m->nr_retired &&
	    atomic_load_explicit(&m->readers_seen, memory_order_relaxed)) {
		if (urcu_bp_read_ongoing())
			return;
		atomic_store_explicit(&m->readers_seen, 0,
				      memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		urcu_bp_synchronize_rcu();
		mv_rcu_tsan_acquire();
	}
	for (i = 0; i < m->nr_retired; i++)
		mv_flatview_unref(m->retired[i]);
	m->nr_retired = 0;
	/* the whole stack at once (no ABA); none queued: no atomic write */
	fv = atomic_load_explicit(&m->reclaim, memory_order_relaxed) ?
		     atomic_exchange_explicit(&m->reclaim, NULL,
					      memory_order_acquire) :
		     NULL;
	for (; fv; fv = next) {
		next = fv->reclaim_next;
		flatview_destroy(fv);
	}
}

/*
 * The ranges as one array, built by the first caller and installed for
 * every later one (readers race; the loser frees its copy).  NULL (and
 * *@nr 0) only if the memory for it cannot be had.
 */
const struct mv_flat_range *mv_flatview_ranges(const struct mv_flatview *fv,
					       size_t *nr)
{
	struct mv_flatview *w = (struct mv_flatview *)fv;
	struct mv_flat_range *a =
		atomic_load_explicit(&w->flat, memory_order_acquire);
	struct mv_flat_range *expected = NULL;
	size_t k, j;

	*nr = fv->nr;
	if (a)
		return a;
	a = malloc((fv->nr ? fv->nr : 1) * sizeof(*a));
	if (!a) {
		*nr = 0;
		return NULL;
	}
	for (k = 0; k < fv->nr_groups; k++) {
		const struct mv_view_group *g = fv->groups[k];

		for (j = 0; j < g->nr; j++)
			memcpy(&a[fv->group_first[k] + g->first[j]],
			       g->ch[j]->r, g->ch[j]->nr * sizeof(*a));
	}
	if (!atomic_compare_exchange_strong_explicit(&w->flat, &expected, a,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		free(a); /* another reader was first */
		a = expected;
	}
	return a;
}

const struct mv_flat_range *mv_fv_cur_slow(const struct mv_flatview *fv,
					   size_t *k, size_t i)
{
	size_t g = *k / MV_VIEW_GROUP, j = *k % MV_VIEW_GROUP + 1;

	if (g < fv->nr_groups) { /* the chunk after *@k first */
		const struct mv_view_group *gr = fv->groups[g];

		if (j >= gr->nr) {
			gr = ++g < fv->nr_groups ? fv->groups[g] : NULL;
			j = 0;
		}
		if (gr &&
		    i - fv->group_first[g] - gr->first[j] < gr->ch[j]->nr) {
			*k = mv_fv_pos(g, j);
			return &gr->ch[j]->r[i - fv->group_first[g] -
					     gr->first[j]];
		}
	}
	*k = i ? mv_fv_chunk_of(fv, i) : 0;
	return mv_fv_in(fv, *k, i);
}

struct mv_region *mv_flatview_root(const struct mv_flatview *fv)
{
	return fv->root;
}

/* The first of @n ranges @r whose @field is at or above @key (or @n). */
#define DEFINE_KEY_AT_OR_ABOVE(name, field)                         \
	static size_t name(const struct mv_flat_range *r, size_t n, \
			   uint64_t key)                            \
	{                                                           \
		size_t lo = 0, hi = n;                              \
                                                                    \
		while (lo < hi) {                                   \
			size_t mid = lo + (hi - lo) / 2;            \
                                                                    \
			if (r[mid].field < key)                     \
				lo = mid + 1;                       \
			else                                        \
				hi = mid;                           \
		}                                                   \
		return lo;                                          \
	}

DEFINE_KEY_AT_OR_ABOVE(first_key_at_or_above, first)
DEFINE_KEY_AT_OR_ABOVE(last_key_at_or_above, last)

/* @key falls in chunk @pos (mv_fv_pos()) of @fv: at or after its start,
 * before the next chunk's. */
static bool chunk_holds(const struct mv_flatview *fv, size_t pos, uint64_t key)
{
	size_t g = pos / MV_VIEW_GROUP, j = pos % MV_VIEW_GROUP;
	const struct mv_view_group *gr;

	if (g >= fv->nr_groups || j >= fv->groups[g]->nr)
		return false;
	gr = fv->groups[g];
	if (gr->addr[j] > key)
		return false;
	if (j + 1 < gr->nr)
		return gr->addr[j + 1] > key;
	return g + 1 == fv->nr_groups || fv->group_addr[g + 1] > key;
}

/* The last of the @n ascending @addr[] at or below @key, or 0. */
MV_DEFINE_LAST_AT_OR_BELOW(last_addr_at_or_below, uint64_t, uint64_t)

size_t mv_flatview_search_near(const struct mv_flatview *fv, size_t from,
			       u128 at, bool by_first, size_t *k)
{
	const struct mv_view_chunk *ch;
	size_t lo = 0, hi, i, g;
	uint64_t key;

	if (!fv->nr)
		return 0;
	if (from >= fv->nr || at > UINT64_MAX) { /* the last chunk's end */
		*k = mv_fv_pos(fv->nr_groups - 1,
			       fv->groups[fv->nr_groups - 1]->nr - 1);
		return fv->nr;
	}
	if (!at) /* no chunk looked in: *@k stays a hint for later */
		return from;
	key = (uint64_t)at;
	/* The last chunk starting at or before @key (or the first): the
	 * ranges are sorted and disjoint, so the answer is in it or is the
	 * next chunk's first range.  The hint, or the chunks around it, first. */
	if (!chunk_holds(fv, *k, key)) {
		size_t next = mv_fv_pos_next(fv, *k),
		       prev = mv_fv_pos_prev(fv, *k);

		if (chunk_holds(fv, next, key)) {
			*k = next;
		} else if (chunk_holds(fv, prev, key)) {
			*k = prev;
		} else {
			g = last_addr_at_or_below(fv->group_addr, fv->nr_groups,
						  key);
			*k = mv_fv_pos(g, last_addr_at_or_below(
						  fv->groups[g]->addr,
						  fv->groups[g]->nr, key));
		}
	}
	g = *k / MV_VIEW_GROUP;
	ch = fv->groups[g]->ch[*k % MV_VIEW_GROUP];
	hi = ch->nr;
	if (by_first)
		lo = first_key_at_or_above(ch->r, hi, key);
	else
		lo = last_key_at_or_above(ch->r, hi, key);
	i = fv->group_first[g] + fv->groups[g]->first[*k % MV_VIEW_GROUP] + lo;
	return i > from ? i : from; /* the keys grow with the index */
}

size_t mv_flatview_search(const struct mv_flatview *fv, size_t from, u128 key,
			  bool by_first)
{
	size_t k = SIZE_MAX;

	return mv_flatview_search_near(fv, from, key, by_first, &k);
}

size_t mv_flatview_index_at_or_after(const struct mv_flatview *fv,
				     uint64_t addr)
{
	return mv_flatview_search(fv, 0, addr, false);
}

/* Binary search: the fallback while the range table cannot be built. */
static const struct mv_flat_range *bsearch_range(const struct mv_flatview *fv,
						 uint64_t addr)
{
	size_t i = mv_flatview_index_at_or_after(fv, addr);
	const struct mv_flat_range *r = i < fv->nr ? mv_fv_at(fv, i) : NULL;

	return r && r->first <= addr ? r : NULL;
}

/* The view's range table, built and installed by the first caller. */
static struct mv_range_table *view_table(const struct mv_flatview *fv)
{
	struct mv_flatview *w = (struct mv_flatview *)fv;
	struct mv_range_table *t =
		atomic_load_explicit(&w->table, memory_order_acquire);
	struct mv_range_table *expected = NULL;
	struct mv_range *ranges;
	size_t i, k = 0;

	if (t)
		return t;
	ranges = malloc((fv->nr ? fv->nr : 1) * sizeof(*ranges));
	if (!ranges)
		return NULL;
	for (i = 0; i < fv->nr; i++) { /* @idx: the range itself */
		const struct mv_flat_range *r = mv_fv_cur(fv, &k, i);

		ranges[i] = (struct mv_range){ .first = r->first,
					       .last = r->last,
					       .idx = (uintptr_t)r };
	}
	if (mv_range_table_new(ranges, fv->nr, &t))
		t = NULL;
	free(ranges);
	if (t && !atomic_compare_exchange_strong_explicit(
			 &w->table, &expected, t, memory_order_acq_rel,
			 memory_order_acquire)) {
		mv_range_table_free(t); /* another reader was first */
		t = expected;
	}
	return t;
}

const struct mv_flat_range *
mv_flatview_lookup_hint(const struct mv_flatview *fv, uint64_t addr,
			struct mv_range_hint *hint)
{
	struct mv_flatview *w = (struct mv_flatview *)fv;
	const struct mv_range_table *t;
	const struct mv_range *r;

	if (fv->nr <= 2) /* nothing to gain from a table */
		return bsearch_range(fv, addr);
	t = atomic_load_explicit(&w->table, memory_order_acquire);
	if (!t &&
	    atomic_fetch_add_explicit(&w->lookups, 1, memory_order_relaxed) <
		    fv->nr / MV_TABLE_AFTER)
		return bsearch_range(fv, addr); /* O(log n), no build yet */
	if (!t)
		t = view_table(fv);
	if (!t)
		return bsearch_range(fv, addr);
	r = mv_range_table_lookup(t, addr, hint);
	return r ? (const struct mv_flat_range *)r->idx : NULL;
}

const struct mv_flat_range *mv_flatview_lookup(const struct mv_flatview *fv,
					       uint64_t addr)
{
	return mv_flatview_lookup_hint(fv, addr, NULL);
}

/*
 * QEMU 7.2's can_merge(): adjacent, same region, contiguous offsets, equal
 * attributes.  Which alias produced a range does not matter.
 */
bool mv_flat_range_can_merge(const struct mv_flat_range *a,
			     const struct mv_flat_range *b)
{
	return a->last != UINT64_MAX && a->last + 1 == b->first &&
	       a->mr == b->mr &&
	       (u128)a->offset_in_region + (a->last - a->first) + 1 ==
		       b->offset_in_region &&
	       a->dirty_log_mask == b->dirty_log_mask &&
	       a->romd_mode == b->romd_mode && a->readonly == b->readonly &&
	       a->nonvolatile == b->nonvolatile;
}

static int fail(char *why, size_t len, size_t i, const char *what)
{
	if (why)
		snprintf(why, len, "range %zu: %s", i, what);
	return -EINVAL;
}

/* @p is one of the @n pointers of @cache (a released block). */
static bool in_cache(const void *p, void *const *cache, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cache[i] == p)
			return true;
	return false;
}

/* A group's chunks cover its ranges in order, none empty, too big or
 * (with more than one chunk in the view) too small, none released; the
 * group holds a count on each. */
/* A group's and a chunk's borrowing links agree both ways, and what
 * they borrow is the lender's (struct mv_view_group, mv_view_chunk). */
static bool group_loans_ok(const struct mv_view_group *g)
{
	const struct mv_view_group *l = g->lender;
	size_t j;

	if ((g->heir && g->heir->lender != g) || (l && l->heir != g))
		return false;
	if (!l)
		return true;
	if (l->nr != g->nr || g->own >= g->nr)
		return false;
	for (j = 0; j < g->nr; j++)
		if (j != g->own && l->ch[j] != g->ch[j])
			return false;
	return true;
}

static bool chunk_loans_ok(const struct mv_view_chunk *ch)
{
	const struct mv_view_chunk *l = ch->lender;
	size_t j, hole;

	if ((ch->heir && ch->heir->lender != ch) || (l && l->heir != ch))
		return false;
	if (!l)
		return true;
	if (ch->fresh_at + ch->fresh_n > ch->nr || ch->nr - ch->fresh_n > l->nr)
		return false;
	hole = l->nr - (ch->nr - ch->fresh_n);
	for (j = 0; j < ch->nr; j++) { /* outside the fresh ones: copies */
		const struct mv_flat_range *a = &ch->r[j], *b;

		if (j - ch->fresh_at < ch->fresh_n)
			continue;
		b = &l->r[j < ch->fresh_at ? j : j - ch->fresh_n + hole];
		if (a->mr != b->mr || a->first != b->first ||
		    a->offset_in_region != b->offset_in_region)
			return false;
	}
	return true;
}

static int check_group(const struct mv_flatview *fv, size_t k, char *why,
		       size_t len)
{
	const struct mv_machine *m = fv->machine;
	const struct mv_view_group *g = fv->groups[k];
	bool many = fv->nr_groups > 1 || g->nr > 1;
	size_t j, at = fv->group_first[k];

	if (in_cache(g, (void *const *)m->group_cache, m->nr_group_cache) ||
	    g->refs < 1 || !g->nr || g->nr > MV_VIEW_GROUP ||
	    (fv->nr_groups > 1 && g->nr < MV_VIEW_GROUP / 2))
		return fail(why, len, at,
			    "group released, empty or of bad size");
	if (g->first[0] || fv->group_first[k + 1] - at != g->first[g->nr] ||
	    fv->group_addr[k] != g->addr[0])
		return fail(why, len, at, "group disagrees with the index");
	if (!group_loans_ok(g))
		return fail(why, len, at, "group's loan links broken");
	for (j = 0; j < g->nr; j++) {
		const struct mv_view_chunk *ch = g->ch[j];

		at = fv->group_first[k] + g->first[j];
		if (in_cache(ch, (void *const *)m->chunk_cache,
			     m->nr_chunk_cache) ||
		    ch->full != (ch->nr >= MV_VIEW_CHUNK / 2 &&
				 ch->nr <= MV_VIEW_CHUNK))
			return fail(why, len, at,
				    "chunk released or of the wrong room");
		if (g->first[j + 1] - g->first[j] != ch->nr ||
		    g->addr[j] != ch->r[0].first)
			return fail(why, len, at,
				    "group disagrees with its chunk");
		if (!ch->nr || ch->nr > MV_VIEW_CHUNK ||
		    (many && ch->nr < MV_VIEW_CHUNK / 2))
			return fail(why, len, at, "chunk too small or too big");
		if (g->id[j] != ch->id || ch->id >= m->nr_chunk_ids ||
		    m->chunk_refs[ch->id] < 1)
			return fail(why, len, at, "chunk without references");
		if (!chunk_loans_ok(ch))
			return fail(why, len, at, "chunk's loan links broken");
	}
	return 0;
}

/* The group index covers the ranges in order; it is one block with room
 * for its groups, and neither it nor a group or chunk is in the
 * machine's caches of released ones (full-sized chunks exactly those of
 * at least MV_VIEW_CHUNK / 2 ranges). */
static int check_chunks(const struct mv_flatview *fv, char *why, size_t len)
{
	const struct mv_machine *m = fv->machine;
	size_t k;
	int ret = 0;

	if (fv->index_cap < fv->nr_groups ||
	    fv->group_first != (size_t *)(fv->groups + fv->index_cap) ||
	    fv->group_addr !=
		    (uint64_t *)(fv->group_first + fv->index_cap + 1) ||
	    m->nr_index_cache > MV_INDEX_CACHE ||
	    m->nr_chunk_cache > MV_CHUNK_CACHE ||
	    m->nr_group_cache > MV_CHUNK_CACHE ||
	    in_cache(fv->groups, (void *const *)m->index_cache,
		     m->nr_index_cache))
		return fail(why, len, 0, "group index block is not the view's");
	if (!fv->nr != !fv->nr_groups || fv->group_first[0] != 0 ||
	    fv->group_first[fv->nr_groups] != fv->nr)
		return fail(why, len, 0, "groups do not cover the view");
	for (k = 0; k < fv->nr_groups && !ret; k++)
		ret = check_group(fv, k, why, len);
	return ret;
}

/* A borrower's loans lie inside both views, in order, name the same
 * groups on both sides, and its lender names it as heir. */
static int check_loans(const struct mv_flatview *fv, char *why, size_t len)
{
	const struct mv_flatview *l = fv->lender;
	size_t i, j, from = 0, to = 0;

	if (!l != !fv->nr_loans || fv->nr_loans > MV_VIEW_LOANS ||
	    (l && l->heir != fv) || (fv->heir && fv->heir->lender != fv))
		return fail(why, len, 0, "loan links broken");
	for (i = 0; i < fv->nr_loans; i++) {
		const struct mv_view_loan *n = &fv->loans[i];

		if (!n->n || n->from < from || n->to < to ||
		    n->from + n->n > l->nr_groups ||
		    n->to + n->n > fv->nr_groups)
			return fail(why, len, 0, "loan out of order or bounds");
		for (j = 0; j < n->n; j++)
			if (fv->groups[n->to + j] != l->groups[n->from + j])
				return fail(
					why, len, fv->group_first[n->to + j],
					"borrowed group is not the lender's");
		from = n->from + n->n;
		to = n->to + n->n;
	}
	return 0;
}

/* Whether @fv is some address space's current view: only its ranges
 * must lie inside their regions as they are now (a view held across a
 * resize still shows the region's old size, as QEMU's would). */
static bool view_is_current(const struct mv_flatview *fv)
{
	const struct mv_as *as;

	for (as = fv->machine->as_head; as; as = as->next)
		if (as->view == fv)
			return true;
	return false;
}

int mv_flatview_check(const struct mv_flatview *fv, char *why, size_t len)
{
	const struct mv_flat_range *prev = NULL;
	bool current = view_is_current(fv);
	size_t i, k = 0;
	int ret = check_chunks(fv, why, len);

	if (!ret)
		ret = check_loans(fv, why, len);
	if (ret)
		return ret;
	for (i = 0; i < fv->nr; i++) {
		const struct mv_flat_range *r = mv_fv_cur(fv, &k, i);
		u128 span = (u128)r->last - r->first + 1;

		if (r->last < r->first)
			return fail(why, len, i, "last < first");
		if (!r->mr || !r->mr->terminates || r->mr->refcount < 1)
			return fail(why, len, i, "not a terminating region");
		if (current && (u128)r->offset_in_region + span > r->mr->size)
			return fail(why, len, i, "extends past its region");
		if (prev && prev->last >= r->first)
			return fail(why, len, i, "overlaps or is unsorted");
		if (prev && mv_flat_range_can_merge(prev, r))
			return fail(why, len, i, "could merge with previous");
		prev = r;
	}
	return 0;
}
