// SPDX-License-Identifier: MIT
/*
 * A splice's view patched at one chunk: the common commit (a region
 * enabled, disabled, moved or resized inside one chunk's ranges) as one
 * copied chunk, one copied group and a copied group index, with none of
 * the general build's pending machinery (view_build.c).
 *
 * It applies when the new view is @old's ranges [0, a), then the fresh
 * ranges, then @old's ranges [b, nr) - the splice kept a prefix and a
 * suffix run (either may be empty) - and one chunk of @old, ranges
 * [cf, ce) with cf <= a <= b <= ce, can hold the result: its
 * m = (a - cf) + fresh + (ce - b) ranges fit in MV_VIEW_CHUNK and are at
 * least MV_VIEW_CHUNK / 2 (or @old has that one chunk only, and m >= 1).
 * Then the view's layout is @old's with that chunk replaced, so every
 * invariant of the general build holds: chunk sizes as said, group sizes
 * and the group count unchanged.  Nothing unchanged is counted or
 * referenced again where it can be borrowed instead: the new chunk
 * borrows the region references of the ranges it copies from the chunk it
 * replaces (struct mv_view_chunk), the chunk's group is replaced by a copy
 * that borrows the counts of its other chunks from it (struct
 * mv_view_group), and the other groups are borrowed from @old (struct
 * mv_view_loan); each only when the lender lends to no other, else counted.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* The hole of a splice: @old ranges [@a, @b) replaced by the fresh ones;
 * @pos a hint (mv_fv_pos()) for the chunk of range @a - 1; @suf the
 * suffix run, if any. */
struct hole {
	size_t a, b, pos;
	struct mv_view_same *suf;
};

/* Whether @same is a prefix run and/or a suffix run around all @nr_out
 * fresh ranges; the hole between them in *@h. */
static bool find_hole(const struct mv_flatview *old, size_t nr_out,
		      struct mv_view_same *same, size_t nr_same, struct hole *h)
{
	struct mv_view_same *pre = NULL, *last;

	if (!nr_same || nr_same > 2)
		return false;
	last = &same[nr_same - 1];
	if (!same[0].old && !same[0].new)
		pre = &same[0];
	h->suf = NULL;
	if ((nr_same == 2 || !pre) && last->new == nr_out &&
	    last->old + last->len == old->nr)
		h->suf = last;
	if ((size_t)(pre != NULL) + (h->suf != NULL) != nr_same)
		return false;
	h->a = pre ? pre->len : 0;
	h->b = h->suf ? h->suf->old : old->nr;
	h->pos = pre ? pre->end_pos : 0;
	return h->a <= h->b;
}

/* Ranges [*@cf, *@ce) of @old are its chunk at @pos. */
static void chunk_bounds(const struct mv_flatview *old, size_t pos, size_t *cf,
			 size_t *ce)
{
	const struct mv_view_group *gr = old->groups[pos / MV_VIEW_GROUP];
	size_t base = old->group_first[pos / MV_VIEW_GROUP];

	*cf = base + gr->first[pos % MV_VIEW_GROUP];
	*ce = base + gr->first[pos % MV_VIEW_GROUP + 1];
}

/* Whether the chunk of @old at @pos, ranges [*@cf, *@ce), holds the
 * hole and, with the @fresh ranges in place of it, a chunk's size (a view
 * of one chunk may have any); its new size in *@n. */
static bool seam_fits(const struct mv_flatview *old, const struct hole *h,
		      size_t fresh, size_t pos, size_t *cf, size_t *ce,
		      size_t *n)
{
	bool one_chunk = old->nr_groups == 1 && old->groups[0]->nr == 1;

	chunk_bounds(old, pos, cf, ce);
	if (*cf > h->a || h->b > *ce)
		return false;
	*n = (h->a - *cf) + fresh + (*ce - h->b);
	return *n && *n <= MV_VIEW_CHUNK &&
	       (*n >= MV_VIEW_CHUNK / 2 || one_chunk);
}

/* Place (mv_fv_pos()) of the chunk of @old to patch, or SIZE_MAX: the
 * chunk of range @a - 1, or the next one when the hole starts it (an
 * insertion between two chunks goes into either, whichever has room). */
static size_t seam_chunk(const struct mv_flatview *old, const struct hole *h,
			 size_t fresh, size_t *cf, size_t *ce, size_t *n)
{
	size_t pos = 0;

	if (h->a) {
		pos = mv_fv_pos_holds(old, h->pos, h->a - 1) ?
			      h->pos :
			      mv_fv_chunk_of(old, h->a - 1);
		if (seam_fits(old, h, fresh, pos, cf, ce, n))
			return pos;
		if (h->a < *ce || h->a == old->nr)
			return SIZE_MAX;
		pos = mv_fv_pos_next(old, pos);
	}
	return seam_fits(old, h, fresh, pos, cf, ce, n) ? pos : SIZE_MAX;
}

/* The seam chunk @c's replacement: its ranges outside the hole around the
 * fresh ones, sealed, borrowing from @c (NULL without memory). */
static struct mv_view_chunk *patched_chunk(struct mv_machine *m,
					   struct mv_view_chunk *c, size_t cf,
					   const struct hole *h,
					   const struct mv_flat_range *out,
					   size_t nr_out, size_t n)
{
	struct mv_view_chunk *ch = mv_view_chunk_alloc(m, n);
	size_t before = h->a - cf, after = n - before - nr_out;

	if (!ch)
		return NULL;
	memcpy(ch->r, c->r, before * sizeof(ch->r[0]));
	if (nr_out) /* (@out may be NULL then) */
		memcpy(&ch->r[before], out, nr_out * sizeof(ch->r[0]));
	memcpy(&ch->r[before + nr_out], &c->r[c->nr - after],
	       after * sizeof(ch->r[0]));
	mv_view_chunk_seal_from(ch, c, before, nr_out);
	return ch;
}

/* A copy of @g with chunk @j replaced by @ch (@delta more ranges), which
 * borrows the counts of the others from @g, or takes its own (NULL
 * without memory, @ch put). */
static struct mv_view_group *patched_group(struct mv_machine *m,
					   struct mv_view_group *g, size_t j,
					   struct mv_view_chunk *ch, long delta)
{
	struct mv_view_group *ng = mv_view_group_alloc(m);
	size_t i;

	if (!ng) {
		mv_view_chunk_put(m, ch, ch->id);
		return NULL;
	}
	*ng = *g; /* one block copy (a seam group is nearly full) */
	ng->refs = 1;
	ng->lender = ng->heir = NULL;
	mv_shift_copy32(&ng->first[j + 1], &g->first[j + 1], g->nr - j,
			(uint32_t)delta);
	if (g->heir) { /* it lends already: counts of our own */
		for (i = 0; i < g->nr; i++) /* (the new chunk has its own) */
			if (i != j)
				m->chunk_refs[g->id[i]]++;
	} else {
		ng->lender = g;
		g->heir = ng;
		ng->own = j;
	}
	ng->ch[j] = ch;
	ng->id[j] = ch->id;
	ng->addr[j] = ch->r[0].first;
	return ng;
}

/* @fv's index: @old's with group @k replaced by @ng, the others
 * borrowed or counted. */
static void patched_index(const struct mv_flatview *old, size_t k,
			  struct mv_view_group *ng, long delta,
			  struct mv_flatview *fv)
{
	size_t n = old->nr_groups, i;

	memcpy(fv->groups, old->groups, n * sizeof(fv->groups[0]));
	memcpy(fv->group_addr, old->group_addr, n * sizeof(fv->group_addr[0]));
	memcpy(fv->group_first, old->group_first,
	       (k + 1) * sizeof(fv->group_first[0]));
	mv_shift_copy(&fv->group_first[k + 1], &old->group_first[k + 1], n - k,
		      (size_t)delta);
	fv->groups[k] = ng;
	fv->group_addr[k] = ng->addr[0];
	fv->nr_groups = n;
	fv->nr = fv->group_first[n];
	if (old->heir) { /* it lends already: counts of our own */
		for (i = 0; i < n; i++)
			if (i != k)
				old->groups[i]->refs++;
		return;
	}
	fv->nr_loans = 0;
	if (k)
		fv->loans[fv->nr_loans++] =
			(struct mv_view_loan){ .from = 0, .to = 0, .n = k };
	if (k + 1 < n)
		fv->loans[fv->nr_loans++] =
			(struct mv_view_loan){ .from = k + 1,
					       .to = k + 1,
					       .n = n - k - 1 };
	if (fv->nr_loans) {
		fv->lender = (struct mv_flatview *)old;
		fv->lender->heir = fv;
	}
}

int mv_view_patch(struct mv_machine *m, const struct mv_flatview *old,
		  const struct mv_flat_range *out, size_t nr_out,
		  struct mv_view_same *same, size_t nr_same,
		  struct mv_flatview *fv, bool *done)
{
	struct mv_view_index ix;
	struct mv_view_group *ng;
	struct mv_view_chunk *ch;
	size_t cf, ce, pos, n, k;
	struct hole h;
	long delta;

	*done = false;
	if (!old || !old->nr || !find_hole(old, nr_out, same, nr_same, &h))
		return 0;
	pos = seam_chunk(old, &h, nr_out, &cf, &ce, &n);
	if (pos == SIZE_MAX)
		return 0;
	k = pos / MV_VIEW_GROUP;
	delta = (long)n - (long)(ce - cf);
	ch = patched_chunk(m, old->groups[k]->ch[pos % MV_VIEW_GROUP], cf, &h,
			   out, nr_out, n);
	if (!ch)
		return -ENOMEM;
	ng = patched_group(m, old->groups[k], pos % MV_VIEW_GROUP, ch, delta);
	if (!ng)
		return -ENOMEM;
	if (mv_view_index_alloc(m, old->nr_groups, &ix)) {
		mv_view_group_put(m, ng);
		return -ENOMEM;
	}
	fv->groups = ix.g;
	fv->group_first = ix.first;
	fv->group_addr = ix.addr;
	fv->index_cap = ix.cap;
	patched_index(old, k, ng, delta, fv);
	fv->hint_pos = pos;
	if (h.suf) /* its index in the new view */
		h.suf->new += h.a;
	m->stats.patched++;
	*done = true;
	return 0;
}
