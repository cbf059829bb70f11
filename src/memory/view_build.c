// SPDX-License-Identifier: MIT
/*
 * Building a view's chunks and groups (struct mv_view_group) from its
 * ranges in order: the fresh ranges a render output, and for a splice the
 * runs of the old view's ranges it kept.  Two levels of the same rule:
 *  - ranges go into chunks of MV_VIEW_CHUNK / 2 to MV_VIEW_CHUNK: a whole
 *    old chunk is taken as it is (one more count) unless the ranges
 *    pending before it are too few for a chunk of their own, then it is
 *    copied with them; parts of chunks are copied;
 *  - chunks go into groups of MV_VIEW_GROUP / 2 to MV_VIEW_GROUP: a whole
 *    old group is shared as it is (borrowed, struct mv_view_loan, or one
 *    more count) unless the chunks pending before it are too few for a
 *    group of their own, then its chunks are taken one by one;
 *  - at the end, ranges or chunks too few take in the chunk or group
 *    before them.
 * So a splice touching one window rebuilds the one or two groups and the
 * one or two chunks at each seam and copies the short group index.  A
 * change inside one chunk does not come here: mv_view_patch()
 * (view_patch.c) replaces that chunk and its group first.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define GROUP_MIN (MV_VIEW_GROUP / 2)
#define CHUNK_MIN (MV_VIEW_CHUNK / 2)

/* Ranges to copy into chunks: @n from @r. */
struct slice {
	const struct mv_flat_range *r;
	size_t n;
};

/*
 * Chunks waiting for their group, laid out as a group's (so a group is
 * made of them and whole chunks of an old group join them by block
 * copies, touching none of the chunks): each holds a count on its chunk;
 * @first[i] counts chunk i's first range from the first one's.  Fewer
 * than MV_VIEW_GROUP * 3 / 2 but when a group before them is taken apart
 * at the end.
 */
struct pending {
	size_t nr;
	uint32_t first[2 * MV_VIEW_GROUP + 1];
	uint32_t id[2 * MV_VIEW_GROUP];
	uint64_t addr[2 * MV_VIEW_GROUP];
	struct mv_view_chunk *ch[2 * MV_VIEW_GROUP];
};

/* A chunk taken apart at the end, its count held until its ranges are
 * copied. */
struct popped {
	struct mv_view_chunk *ch;
	uint32_t id;
};

struct view_build {
	struct mv_machine *m;
	const struct mv_flatview *old;
	/* @old when the view may borrow its groups (it lends to no other) */
	const struct mv_flatview *lender;
	/* the group index built: @nr groups holding @total ranges */
	struct mv_view_group **g;
	size_t *first;
	uint64_t *addr;
	size_t nr, cap, total;
	struct mv_view_loan loans[MV_VIEW_LOANS];
	size_t nr_loans;
	/* ranges pending for chunks (@n_pend of them) */
	struct slice *pend;
	size_t nr_pend, cap_pend, n_pend;
	struct pending pc; /* chunks pending for groups */
	struct popped popped;
};

/* Room for @n more groups: a bigger index block, the entries copied. */
static int vb_reserve(struct view_build *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4;
	struct mv_view_index ix;

	if (b->nr + n <= b->cap)
		return 0;
	while (cap < b->nr + n)
		cap *= 2;
	if (mv_view_index_alloc(b->m, cap, &ix))
		return -ENOMEM;
	if (b->nr) {
		memcpy(ix.g, b->g, b->nr * sizeof(*ix.g));
		memcpy(ix.first, b->first, b->nr * sizeof(*ix.first));
		memcpy(ix.addr, b->addr, b->nr * sizeof(*ix.addr));
	}
	mv_view_index_free(b->m, b->g, b->cap);
	b->g = ix.g;
	b->first = ix.first;
	b->addr = ix.addr;
	b->cap = ix.cap;
	return 0;
}

/* Group @k of the view built is borrowed. */
static bool vb_borrowed(const struct view_build *b, size_t k)
{
	size_t i;

	for (i = 0; i < b->nr_loans; i++)
		if (k - b->loans[i].to < b->loans[i].n)
			return true;
	return false;
}

/* Borrow @old's groups [@k, @k + @n) into place @b->nr, in one loan with
 * the last when they follow it on both sides; false if the loans are
 * used up. */
static bool vb_borrow(struct view_build *b, size_t k, size_t n)
{
	struct mv_view_loan *l = b->nr_loans ? &b->loans[b->nr_loans - 1] :
					       NULL;

	if (l && l->from + l->n == k && l->to + l->n == b->nr) {
		l->n += n;
		return true;
	}
	if (b->nr_loans == MV_VIEW_LOANS)
		return false;
	b->loans[b->nr_loans++] =
		(struct mv_view_loan){ .from = k, .to = b->nr, .n = n };
	return true;
}

/* Share @old's groups [@k, @e): index entries copied as blocks, the
 * groups borrowed or counted. */
static int vb_share_groups(struct view_build *b, size_t k, size_t e)
{
	const struct mv_flatview *old = b->old;
	size_t j, n = e - k, delta = b->total - old->group_first[k];
	int ret = vb_reserve(b, n);

	if (ret)
		return ret;
	memcpy(&b->g[b->nr], &old->groups[k], n * sizeof(*b->g));
	memcpy(&b->addr[b->nr], &old->group_addr[k], n * sizeof(*b->addr));
	mv_shift_copy(&b->first[b->nr], &old->group_first[k], n, delta);
	if (!b->lender || !vb_borrow(b, k, n))
		for (j = 0; j < n; j++)
			old->groups[k + j]->refs++;
	b->nr += n;
	b->total = old->group_first[e] + delta;
	return 0;
}

/* Make a group of the first @n pending chunks and append it. */
static int vb_group(struct view_build *b, size_t n)
{
	struct mv_view_group *g;
	struct pending *p = &b->pc;
	size_t j, rest = p->nr - n;
	int ret = vb_reserve(b, 1);

	if (ret)
		return ret;
	g = mv_view_group_alloc(b->m);
	if (!g)
		return -ENOMEM;
	memcpy(g->ch, p->ch, n * sizeof(*g->ch));
	memcpy(g->id, p->id, n * sizeof(*g->id));
	memcpy(g->addr, p->addr, n * sizeof(*g->addr));
	memcpy(g->first, p->first, (n + 1) * sizeof(*g->first));
	g->nr = n;
	memmove(p->ch, &p->ch[n], rest * sizeof(*p->ch));
	memmove(p->id, &p->id[n], rest * sizeof(*p->id));
	memmove(p->addr, &p->addr[n], rest * sizeof(*p->addr));
	for (j = 0; j <= rest; j++)
		p->first[j] = p->first[n + j] - g->first[g->nr];
	p->nr = rest;
	b->g[b->nr] = g;
	b->first[b->nr] = b->total;
	b->addr[b->nr++] = g->addr[0];
	b->total += g->first[n];
	return 0;
}

/* A chunk holding a count, pending for a group (its count is the
 * build's from here on, even on error); a group goes out when enough are
 * pending that at least a minimal one stays. */
static int vb_entry(struct view_build *b, struct mv_view_chunk *ch)
{
	struct pending *p = &b->pc;

	p->ch[p->nr] = ch;
	p->id[p->nr] = ch->id;
	p->addr[p->nr] = ch->r[0].first;
	p->first[p->nr + 1] = p->first[p->nr] + (uint32_t)ch->nr;
	if (++p->nr < MV_VIEW_GROUP + GROUP_MIN)
		return 0;
	return vb_group(b, MV_VIEW_GROUP);
}

/* Chunks [@j, @e) of an old group @g, taken whole: one more count each,
 * pending for groups (a group goes out as in vb_entry()). */
static int vb_share_chunks(struct view_build *b, const struct mv_view_group *g,
			   size_t j, size_t e)
{
	struct pending *p = &b->pc;
	int ret = 0;

	while (j < e && !ret) {
		size_t room = MV_VIEW_GROUP + GROUP_MIN - p->nr;
		size_t n = e - j < room ? e - j : room, i;
		uint32_t base = p->first[p->nr] - g->first[j];

		memcpy(&p->ch[p->nr], &g->ch[j], n * sizeof(*p->ch));
		memcpy(&p->id[p->nr], &g->id[j], n * sizeof(*p->id));
		memcpy(&p->addr[p->nr], &g->addr[j], n * sizeof(*p->addr));
		for (i = 1; i <= n; i++)
			p->first[p->nr + i] = g->first[j + i] + base;
		for (i = 0; i < n; i++)
			b->m->chunk_refs[g->id[j + i]]++;
		p->nr += n;
		j += n;
		if (p->nr == MV_VIEW_GROUP + GROUP_MIN)
			ret = vb_group(b, MV_VIEW_GROUP);
	}
	return ret;
}

/* Add @n ranges from @r to the pending ones (@front: before them). */
static int vb_slice(struct view_build *b, const struct mv_flat_range *r,
		    size_t n, bool front)
{
	if (!n)
		return 0;
	if (b->nr_pend == b->cap_pend) {
		size_t cap = b->cap_pend ? 2 * b->cap_pend : 8;
		struct slice *a = mv_realloc(b->m, b->pend, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		b->pend = a;
		b->cap_pend = cap;
	}
	if (front) {
		memmove(&b->pend[1], &b->pend[0],
			b->nr_pend * sizeof(*b->pend));
		b->pend[0] = (struct slice){ r, n };
	} else {
		b->pend[b->nr_pend] = (struct slice){ r, n };
	}
	b->nr_pend++;
	b->n_pend += n;
	return 0;
}

/* Copy the pending ranges into chunks of equal size (± 1), at most
 * MV_VIEW_CHUNK each, pending for groups. */
static int vb_flush_ranges(struct view_build *b)
{
	size_t nch = (b->n_pend + MV_VIEW_CHUNK - 1) / MV_VIEW_CHUNK;
	size_t j, s = 0, off = 0;
	int ret;

	for (j = 0; j < nch; j++) {
		size_t n = b->n_pend / nch + (j < b->n_pend % nch);
		struct mv_view_chunk *ch = mv_view_chunk_alloc(b->m, n);
		size_t got = 0;

		if (!ch)
			return -ENOMEM;
		while (got < n) {
			size_t take = b->pend[s].n - off;

			if (take > n - got)
				take = n - got;
			memcpy(&ch->r[got], &b->pend[s].r[off],
			       take * sizeof(ch->r[0]));
			got += take;
			off += take;
			if (off == b->pend[s].n) {
				s++;
				off = 0;
			}
		}
		mv_view_chunk_seal(ch);
		ret = vb_entry(b, ch);
		if (ret) /* @ch is pending even so: vb_abort() drops it */
			return ret;
	}
	b->nr_pend = 0;
	b->n_pend = 0;
	return 0;
}

/* The pending chunks into groups of equal size (± 1), at most
 * MV_VIEW_GROUP each. */
static int vb_flush_entries(struct view_build *b)
{
	size_t ng = (b->pc.nr + MV_VIEW_GROUP - 1) / MV_VIEW_GROUP;
	size_t total = b->pc.nr, j;
	int ret = 0;

	for (j = 0; j < ng && !ret; j++)
		ret = vb_group(b, total / ng + (j < total % ng));
	return ret;
}

/* The last group built, taken apart: its chunks (one more count each)
 * go before the pending ones, its own count (or loan) is given up. */
static void vb_unshare_last(struct view_build *b)
{
	struct mv_view_group *g = b->g[--b->nr];
	struct pending *p = &b->pc;
	size_t j;

	b->total -= g->first[g->nr];
	memmove(&p->ch[g->nr], p->ch, p->nr * sizeof(*p->ch));
	memmove(&p->id[g->nr], p->id, p->nr * sizeof(*p->id));
	memmove(&p->addr[g->nr], p->addr, p->nr * sizeof(*p->addr));
	for (j = p->nr + 1; j-- > 0;)
		p->first[g->nr + j] = p->first[j] + g->first[g->nr];
	memcpy(p->ch, g->ch, g->nr * sizeof(*p->ch));
	memcpy(p->id, g->id, g->nr * sizeof(*p->id));
	memcpy(p->addr, g->addr, g->nr * sizeof(*p->addr));
	memcpy(p->first, g->first, g->nr * sizeof(*p->first));
	for (j = 0; j < g->nr; j++)
		b->m->chunk_refs[g->id[j]]++;
	p->nr += g->nr;
	if (vb_borrowed(b, b->nr)) { /* the last of the last loan */
		if (!--b->loans[b->nr_loans - 1].n)
			b->nr_loans--;
	} else {
		mv_view_group_put(b->m, g);
	}
}

/* The last pending ranges and chunks: too few for a chunk or a group of
 * their own, they take in the one before them (a view of one chunk or
 * one group may have any size). */
static int vb_end(struct view_build *b)
{
	int ret;

	if (b->n_pend && b->n_pend < CHUNK_MIN && (b->pc.nr || b->nr)) {
		if (!b->pc.nr)
			vb_unshare_last(b);
		b->pc.nr--;
		b->popped = (struct popped){ b->pc.ch[b->pc.nr],
					     b->pc.id[b->pc.nr] };
		ret = vb_slice(b, b->popped.ch->r, b->popped.ch->nr, true);
		if (ret)
			return ret;
	}
	ret = vb_flush_ranges(b);
	if (ret)
		return ret;
	if (b->pc.nr && b->pc.nr < GROUP_MIN && b->nr)
		vb_unshare_last(b);
	return vb_flush_entries(b);
}

/* Whether @old's group @k can be shared whole after what is pending. */
static bool vb_group_fits(const struct view_build *b, size_t k)
{
	size_t pending =
		b->pc.nr + (b->n_pend + MV_VIEW_CHUNK - 1) / MV_VIEW_CHUNK;

	if (b->old->nr_groups == 1 && b->old->groups[k]->nr < GROUP_MIN)
		return false;
	return !pending || pending >= GROUP_MIN;
}

/*
 * @old's ranges [@o, @o + @len): whole groups shared, whole chunks taken,
 * parts of chunks copied, by the rules above (@hint: mv_fv_pos() of the
 * chunk holding @o, if right).
 */
static int vb_run(struct view_build *b, size_t o, size_t len, size_t hint)
{
	const struct mv_flatview *old = b->old;
	bool one_chunk = old->nr_groups == 1 && old->groups[0]->nr == 1;
	size_t end = o + len, pos;
	int ret = 0;

	if (!len)
		return 0;
	pos = mv_fv_pos_holds(old, hint, o) ? hint : mv_fv_chunk_of(old, o);
	while (!ret && o < end) {
		size_t k = pos / MV_VIEW_GROUP, j = pos % MV_VIEW_GROUP;
		const struct mv_view_group *g = old->groups[k];
		size_t cfirst = old->group_first[k] + g->first[j];
		size_t cend = old->group_first[k] + g->first[j + 1];
		const struct mv_view_chunk *ch = g->ch[j];

		if (cfirst < o || cend > end ||
		    (one_chunk && ch->nr < CHUNK_MIN) ||
		    (b->n_pend && b->n_pend < CHUNK_MIN)) {
			size_t to = cend < end ? cend : end;

			ret = vb_slice(b, &ch->r[o - cfirst], to - o, false);
			o = to;
		} else if (!j && old->group_first[k + 1] <= end &&
			   vb_group_fits(b, k)) {
			size_t e = end == old->nr ? old->nr_groups : k + 1;

			while (e < old->nr_groups &&
			       old->group_first[e + 1] <= end)
				e++;
			ret = vb_flush_ranges(b);
			if (!ret)
				ret = vb_flush_entries(b);
			if (!ret)
				ret = vb_share_groups(b, k, e);
			o = old->group_first[e];
			pos = mv_fv_pos(e, 0);
			continue;
		} else { /* whole chunks up to the group's or the run's end */
			size_t base = old->group_first[k];
			size_t e = old->group_first[k + 1] <= end ? g->nr :
								    j + 1;

			while (e < g->nr && base + g->first[e + 1] <= end)
				e++;
			ret = vb_flush_ranges(b);
			if (!ret)
				ret = vb_share_chunks(b, g, j, e);
			o = base + g->first[e];
			pos = mv_fv_pos(k, e - 1);
		}
		pos = mv_fv_pos_next(old, pos);
	}
	return ret;
}

/* Give up everything held by a build that failed. */
static void vb_abort(struct view_build *b)
{
	size_t k;

	for (k = 0; k < b->nr; k++)
		if (!vb_borrowed(b, k))
			mv_view_group_put(b->m, b->g[k]);
	for (k = 0; k < b->pc.nr; k++)
		mv_view_chunk_put(b->m, b->pc.ch[k], b->pc.id[k]);
	mv_view_index_free(b->m, b->g, b->cap);
}

int mv_view_build(struct mv_machine *m, const struct mv_flatview *old,
		  const struct mv_flat_range *out, size_t nr_out,
		  struct mv_view_same *same, size_t nr_same,
		  struct mv_flatview *fv)
{
	struct view_build b; /* not zeroed whole: @pc is 1.5 KiB */
	size_t pos = 0, k, shift = 0, size;
	bool done;
	int ret;

	ret = mv_view_patch(m, old, out, nr_out, same, nr_same, fv, &done);
	if (ret || done)
		return ret;
	b.m = m;
	b.old = old;
	b.lender = old && !old->heir ? old : NULL;
	b.g = NULL;
	b.first = NULL;
	b.addr = NULL;
	b.nr = b.cap = b.total = 0;
	b.nr_loans = 0;
	b.nr_pend = b.n_pend = 0;
	b.pc.nr = 0;
	b.pc.first[0] = 0;
	b.popped = (struct popped){ NULL, 0 };

	b.pend = mv_spare_take(m, MV_SPARE_PEND, &size);
	b.cap_pend = size / sizeof(*b.pend);
	/* as many groups as the old view, give or take a few */
	ret = vb_reserve(&b, (old ? old->nr_groups : 0) +
				     nr_out / (CHUNK_MIN * GROUP_MIN) + 4);
	for (k = 0; k < nr_same && !ret; k++) {
		struct mv_view_same *s = &same[k];

		ret = vb_slice(&b, out + pos, s->new - pos, false);
		if (!ret)
			ret = vb_run(&b, s->old, s->len, s->old_pos);
		pos = s->new;
		s->new += shift; /* its index in the new view */
		shift += s->len;
	}
	if (!ret)
		ret = vb_slice(&b, out + pos, nr_out - pos, false);
	if (!ret)
		ret = vb_end(&b);
	if (b.popped.ch) /* its ranges are copied (or given up) */
		mv_view_chunk_put(m, b.popped.ch, b.popped.id);
	mv_spare_give(m, MV_SPARE_PEND, b.pend, b.cap_pend * sizeof(*b.pend));
	if (ret) {
		vb_abort(&b);
		return ret;
	}
	fv->groups = b.g;
	fv->group_first = b.first;
	fv->group_addr = b.addr;
	fv->index_cap = b.cap;
	fv->nr_groups = b.nr;
	fv->group_first[b.nr] = b.total;
	fv->nr = b.total;
	if (b.nr_loans) {
		memcpy(fv->loans, b.loans, b.nr_loans * sizeof(*b.loans));
		fv->nr_loans = b.nr_loans;
		fv->lender = (struct mv_flatview *)old;
		fv->lender->heir = fv;
	}
	return 0;
}
