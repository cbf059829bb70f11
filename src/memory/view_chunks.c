// SPDX-License-Identifier: MIT
/*
 * The memory of flat views: chunks of ranges, groups of chunks, index
 * blocks and the machine's caches and spares of them; the counts that
 * share them between views, and the loans by which a spliced view borrows
 * the groups of the view it was spliced from (struct mv_view_loan).
 * Writer context only, except once the machine is dead (nothing is cached
 * then).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHUNK_FULL_SIZE                 \
	(sizeof(struct mv_view_chunk) + \
	 MV_VIEW_CHUNK * sizeof(struct mv_flat_range))

/* Take (@take) or drop the references of @n ranges, a run of ranges of
 * one region at a time (four compared at once: runs are long). */
static void ranges_ref(const struct mv_flat_range *r, size_t n, bool take)
{
	size_t i = 0, j;

	while (i < n) {
		struct mv_region *mr = r[i].mr;

		for (j = i + 1;
		     j + 4 <= n && r[j].mr == mr && r[j + 1].mr == mr &&
		     r[j + 2].mr == mr && r[j + 3].mr == mr;
		     j += 4)
			;
		for (; j < n && r[j].mr == mr; j++)
			;
		if (take)
			mv_region_ref_n(mr, (long)(j - i));
		else
			mv_region_unref_n(mr, (long)(j - i));
		i = j;
	}
}

/* A free chunk id (its count set to 1), or -ENOMEM. */
static int64_t chunk_id_new(struct mv_machine *m)
{
	uint32_t id;

	if (m->nr_free_chunk_ids) {
		id = m->free_chunk_ids[--m->nr_free_chunk_ids];
	} else {
		if (m->nr_chunk_ids == m->cap_chunk_ids) {
			size_t cap = m->cap_chunk_ids ? 2 * m->cap_chunk_ids :
							64;
			long *r =
				mv_realloc(m, m->chunk_refs, cap * sizeof(*r));
			uint32_t *f;

			if (!r)
				return -ENOMEM;
			m->chunk_refs = r;
			/* every id can be free at once */
			f = mv_realloc(m, m->free_chunk_ids, cap * sizeof(*f));
			if (!f)
				return -ENOMEM;
			m->free_chunk_ids = f;
			m->cap_chunk_ids = cap;
		}
		if (m->nr_chunk_ids >= UINT32_MAX)
			return -ENOMEM;
		id = (uint32_t)m->nr_chunk_ids++;
	}
	m->chunk_refs[id] = 1;
	return id;
}

/* Memory for a chunk of @n ranges: a cached one if @n is big enough. */
static struct mv_view_chunk *chunk_mem(struct mv_machine *m, size_t n)
{
	struct mv_view_chunk *ch;
	bool full = n >= MV_VIEW_CHUNK / 2 && n <= MV_VIEW_CHUNK;

	if (full && m->nr_chunk_cache) {
		ch = m->chunk_cache[--m->nr_chunk_cache];
		MV_UNPOISON(ch, CHUNK_FULL_SIZE);
	} else {
		ch = mv_malloc(
			m,
			full ? CHUNK_FULL_SIZE :
			       sizeof(*ch) + n * sizeof(struct mv_flat_range));
	}
	if (ch)
		ch->full = full;
	return ch;
}

/* Release a chunk's memory: to the cache if it is full-sized and the
 * cache has room (never once the machine is dead: any thread may free
 * then). */
static void chunk_mem_free(struct mv_machine *m, struct mv_view_chunk *ch)
{
	if (ch->full && !m->dead && m->nr_chunk_cache < MV_CHUNK_CACHE) {
		MV_POISON(ch, CHUNK_FULL_SIZE);
		m->chunk_cache[m->nr_chunk_cache++] = ch;
		return;
	}
	free(ch);
}

struct mv_view_chunk *mv_view_chunk_alloc(struct mv_machine *m, size_t n)
{
	struct mv_view_chunk *ch = chunk_mem(m, n);
	int64_t id = ch ? chunk_id_new(m) : -ENOMEM;

	if (id < 0) {
		if (ch)
			chunk_mem_free(m, ch);
		return NULL;
	}
	ch->id = (uint32_t)id;
	ch->nr = n;
	ch->lender = ch->heir = NULL;
	ch->fresh_at = ch->fresh_n = 0;
	return ch;
}

void mv_view_chunk_seal(struct mv_view_chunk *ch)
{
	ranges_ref(ch->r, ch->nr, true);
}

void mv_view_chunk_seal_from(struct mv_view_chunk *ch,
			     struct mv_view_chunk *from, size_t at, size_t n)
{
	if (from->heir) { /* it lends already: references of our own */
		mv_view_chunk_seal(ch);
		return;
	}
	ranges_ref(&ch->r[at], n, true);
	ch->lender = from;
	from->heir = ch;
	ch->fresh_at = at;
	ch->fresh_n = n;
}

/* Drop the region references @ch holds (struct mv_view_chunk: loans). */
static void chunk_refs_drop(struct mv_view_chunk *ch)
{
	struct mv_view_chunk *h = ch->heir;

	if (h && ch->lender) { /* its heir takes what it borrowed */
		ranges_ref(h->r, h->fresh_at, true);
		ranges_ref(&h->r[h->fresh_at + h->fresh_n],
			   h->nr - h->fresh_at - h->fresh_n, true);
		h->lender = NULL;
		ch->heir = h = NULL;
	}
	if (h) { /* it inherits all but the hole's */
		h->lender = NULL;
		ranges_ref(&ch->r[h->fresh_at], ch->nr - (h->nr - h->fresh_n),
			   false);
	} else if (ch->lender) {
		ch->lender->heir = NULL;
		ranges_ref(&ch->r[ch->fresh_at], ch->fresh_n, false);
	} else {
		ranges_ref(ch->r, ch->nr, false);
	}
}

/* A chunk whose last count went: its id, references and memory. */
static void chunk_free(struct mv_machine *m, struct mv_view_chunk *ch,
		       uint32_t id)
{
	m->free_chunk_ids[m->nr_free_chunk_ids++] = id;
	chunk_refs_drop(ch);
	chunk_mem_free(m, ch);
}

void mv_view_chunk_put(struct mv_machine *m, struct mv_view_chunk *ch,
		       uint32_t id)
{
	if (!--m->chunk_refs[id])
		chunk_free(m, ch, id);
}

struct mv_view_group *mv_view_group_alloc(struct mv_machine *m)
{
	struct mv_view_group *g;

	if (m->nr_group_cache) {
		g = m->group_cache[--m->nr_group_cache];
		MV_UNPOISON(g, sizeof(*g));
	} else {
		g = mv_malloc(m, sizeof(*g));
		if (!g)
			return NULL;
	}
	g->refs = 1;
	g->nr = 0;
	g->first[0] = 0;
	g->lender = g->heir = NULL;
	g->own = 0;
	return g;
}

/* mv_view_chunk_put() of @g's chunk @j. */
static void group_chunk_put(struct mv_machine *m, struct mv_view_group *g,
			    size_t j)
{
	if (!--m->chunk_refs[g->id[j]])
		chunk_free(m, g->ch[j], g->id[j]);
}

/* Drop the chunk counts @g holds (struct mv_view_group: loans). */
static void group_chunks_put(struct mv_machine *m, struct mv_view_group *g)
{
	struct mv_view_group *h = g->heir;
	size_t j;

	if (h && g->lender) { /* its heir counts what it borrowed */
		for (j = 0; j < h->nr; j++)
			if (j != h->own)
				m->chunk_refs[h->id[j]]++;
		h->lender = NULL;
		g->heir = h = NULL;
	}
	if (h) { /* it inherits all but the chunk it replaced */
		h->lender = NULL;
		group_chunk_put(m, g, h->own);
	} else if (g->lender) {
		g->lender->heir = NULL;
		group_chunk_put(m, g, g->own);
	} else {
		for (j = 0; j < g->nr; j++)
			group_chunk_put(m, g, j);
	}
}

void mv_view_group_put(struct mv_machine *m, struct mv_view_group *g)
{
	if (--g->refs)
		return;
	group_chunks_put(m, g);
	if (!m->dead && m->nr_group_cache < MV_CHUNK_CACHE) {
		MV_POISON(g, sizeof(*g));
		m->group_cache[m->nr_group_cache++] = g;
		return;
	}
	free(g);
}

static size_t index_size(size_t cap)
{
	return cap * (sizeof(struct mv_view_group *) + sizeof(size_t) +
		      sizeof(uint64_t)) +
	       sizeof(size_t);
}

int mv_view_index_alloc(struct mv_machine *m, size_t cap,
			struct mv_view_index *ix)
{
	struct mv_view_group **b = NULL;
	size_t i, best = m->nr_index_cache;

	for (i = 0; i < m->nr_index_cache; i++) /* the smallest that fits */
		if (m->index_cache_cap[i] >= cap &&
		    (best == m->nr_index_cache ||
		     m->index_cache_cap[i] < m->index_cache_cap[best]))
			best = i;
	if (best < m->nr_index_cache) {
		b = m->index_cache[best];
		cap = m->index_cache_cap[best];
		m->nr_index_cache--;
		m->index_cache[best] = m->index_cache[m->nr_index_cache];
		m->index_cache_cap[best] =
			m->index_cache_cap[m->nr_index_cache];
		MV_UNPOISON(b, index_size(cap));
	}
	if (!b && (cap > SIZE_MAX / 64 || !(b = mv_malloc(m, index_size(cap)))))
		return -ENOMEM;
	ix->g = b;
	ix->first = (size_t *)(b + cap);
	ix->addr = (uint64_t *)(ix->first + cap + 1);
	ix->cap = cap;
	return 0;
}

void mv_view_index_free(struct mv_machine *m, struct mv_view_group **block,
			size_t cap)
{
	if (block && !m->dead && m->nr_index_cache < MV_INDEX_CACHE) {
		MV_POISON(block, index_size(cap));
		m->index_cache[m->nr_index_cache] = block;
		m->index_cache_cap[m->nr_index_cache++] = cap;
		return;
	}
	free(block);
}

void mv_spare_drain(struct mv_machine *m)
{
	size_t size;
	int k;

	for (k = 0; k < MV_NR_SPARE; k++)
		free(mv_spare_take(m, k, &size));
}

void mv_view_chunk_cache_drain(struct mv_machine *m)
{
	while (m->nr_chunk_cache) {
		struct mv_view_chunk *ch = m->chunk_cache[--m->nr_chunk_cache];

		MV_UNPOISON(ch, CHUNK_FULL_SIZE);
		free(ch);
	}
	while (m->nr_group_cache) {
		struct mv_view_group *g = m->group_cache[--m->nr_group_cache];

		MV_UNPOISON(g, sizeof(*g));
		free(g);
	}
	while (m->nr_index_cache) {
		struct mv_view_group **b = m->index_cache[--m->nr_index_cache];

		MV_UNPOISON(b,
			    index_size(m->index_cache_cap[m->nr_index_cache]));
		free(b);
	}
}

/* Drop @fv's counts on its groups [@k, @e) (freed when the last goes). */
static void groups_put(struct mv_machine *m, const struct mv_flatview *fv,
		       size_t k, size_t e)
{
	for (; k < e; k++)
		mv_view_group_put(m, fv->groups[k]);
}

/* @fv's heir, which borrows from it, takes counts of its own. */
static void heir_take_counts(struct mv_flatview *fv)
{
	struct mv_flatview *h = fv->heir;
	size_t i, k;

	for (i = 0; i < h->nr_loans; i++)
		for (k = h->loans[i].to; k < h->loans[i].to + h->loans[i].n;
		     k++)
			h->groups[k]->refs++;
	h->nr_loans = 0;
	h->lender = NULL;
	fv->heir = NULL;
}

/*
 * Drop the counts @fv owns (struct mv_view_loan): on all its groups but
 * those it borrows, or, when its heir inherits them, but those it lends.
 */
void mv_view_release(struct mv_machine *m, struct mv_flatview *fv)
{
	const struct mv_view_loan *l = NULL;
	size_t i, nr = 0, k = 0;
	bool lent = false;

	if (fv->heir && fv->lender)
		heir_take_counts(fv);
	if (fv->heir) { /* it inherits the groups it borrowed */
		l = fv->heir->loans;
		nr = fv->heir->nr_loans;
		lent = true;
		fv->heir->nr_loans = 0;
		fv->heir->lender = NULL;
	} else if (fv->lender) {
		l = fv->loans;
		nr = fv->nr_loans;
		fv->lender->heir = NULL;
	}
	for (i = 0; i < nr; i++) { /* loans are in order on both sides */
		size_t at = lent ? l[i].from : l[i].to;

		groups_put(m, fv, k, at);
		k = at + l[i].n;
	}
	groups_put(m, fv, k, fv->nr_groups);
	mv_view_index_free(m, fv->groups, fv->index_cap);
}
