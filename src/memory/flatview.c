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

#define CHUNK_FULL_SIZE                 \
	(sizeof(struct mv_view_chunk) + \
	 MV_VIEW_CHUNK * sizeof(struct mv_flat_range))

void mv_flatview_ref(struct mv_flatview *fv)
{
	atomic_fetch_add(&fv->refcount, 1);
}

/* Take (@take) or drop the references of @n ranges, a run at a time. */
static void ranges_ref(const struct mv_flat_range *r, size_t n, bool take)
{
	size_t i = 0, j;

	while (i < n) {
		for (j = i + 1; j < n && r[j].mr == r[i].mr; j++)
			;
		if (take)
			mv_region_ref_n(r[i].mr, (long)(j - i));
		else
			mv_region_unref_n(r[i].mr, (long)(j - i));
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
			long *r = realloc(m->chunk_refs, cap * sizeof(*r));
			uint32_t *f;

			if (!r)
				return -ENOMEM;
			m->chunk_refs = r;
			/* every id can be free at once */
			f = realloc(m->free_chunk_ids, cap * sizeof(*f));
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
		ch = malloc(full ? CHUNK_FULL_SIZE :
				   sizeof(*ch) +
					    n * sizeof(struct mv_flat_range));
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

static size_t index_size(size_t cap)
{
	return cap * (sizeof(struct mv_view_chunk *) + sizeof(size_t) +
		      sizeof(uint64_t) + sizeof(uint32_t)) +
	       sizeof(size_t);
}

int mv_view_index_alloc(struct mv_machine *m, size_t cap,
			struct mv_view_index *ix)
{
	struct mv_view_chunk **b = NULL;
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
	if (!b && (cap > SIZE_MAX / 64 || !(b = malloc(index_size(cap)))))
		return -ENOMEM;
	ix->ch = b;
	ix->first = (size_t *)(b + cap);
	ix->addr = (uint64_t *)(ix->first + cap + 1);
	ix->id = (uint32_t *)(ix->addr + cap);
	ix->cap = cap;
	return 0;
}

void mv_view_index_free(struct mv_machine *m, struct mv_view_chunk **block,
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

void *mv_spare_take(struct mv_machine *m, enum mv_spare_kind kind, size_t *size)
{
	struct mv_spare *sp = &m->spare[kind];
	void *p = sp->p;

	*size = p ? sp->size : 0;
	if (p) {
		MV_UNPOISON(p, sp->size);
		sp->p = NULL;
	}
	return p;
}

void mv_spare_give(struct mv_machine *m, enum mv_spare_kind kind, void *p,
		   size_t size)
{
	struct mv_spare *sp = &m->spare[kind];

	if (p && !sp->p && !m->dead && size <= MV_SPARE_MAX) {
		MV_POISON(p, size);
		sp->p = p;
		sp->size = size;
		return;
	}
	free(p);
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
	while (m->nr_index_cache) {
		struct mv_view_chunk **b = m->index_cache[--m->nr_index_cache];

		MV_UNPOISON(b,
			    index_size(m->index_cache_cap[m->nr_index_cache]));
		free(b);
	}
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
	return ch;
}

void mv_view_chunk_seal(struct mv_view_chunk *ch)
{
	ranges_ref(ch->r, ch->nr, true);
}

static void chunk_free(struct mv_machine *m, struct mv_view_chunk *ch)
{
	m->free_chunk_ids[m->nr_free_chunk_ids++] = ch->id;
	ranges_ref(ch->r, ch->nr, false);
	chunk_mem_free(m, ch);
}

void mv_view_chunk_put(struct mv_machine *m, struct mv_view_chunk *ch)
{
	if (!--m->chunk_refs[ch->id])
		chunk_free(m, ch);
}

/* Drop @fv's counts on its chunks [@k, @e) (the chunks only when freed). */
static void chunks_put(struct mv_machine *m, const struct mv_flatview *fv,
		       size_t k, size_t e)
{
	for (; k < e; k++)
		if (!--m->chunk_refs[fv->chunk_id[k]])
			chunk_free(m, fv->chunks[k]);
}

/* @fv's heir, which borrows from it, takes counts of its own. */
static void heir_take_counts(struct mv_machine *m, struct mv_flatview *fv)
{
	struct mv_flatview *h = fv->heir;
	size_t i, k;

	for (i = 0; i < h->nr_loans; i++)
		for (k = h->loans[i].to; k < h->loans[i].to + h->loans[i].n;
		     k++)
			m->chunk_refs[h->chunk_id[k]]++;
	h->nr_loans = 0;
	h->lender = NULL;
	fv->heir = NULL;
}

/*
 * Drop the counts @fv owns (struct mv_view_loan): all its chunks but
 * those it borrows, or, when its heir inherits them, but those it lends.
 */
static void chunks_release(struct mv_machine *m, struct mv_flatview *fv)
{
	const struct mv_view_loan *l = NULL;
	size_t i, nr = 0, k = 0;
	bool lent = false;

	if (fv->heir && fv->lender)
		heir_take_counts(m, fv);
	if (fv->heir) { /* it inherits the chunks it borrowed */
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

		chunks_put(m, fv, k, at);
		k = at + l[i].n;
	}
	chunks_put(m, fv, k, fv->nr_chunks);
}

static void flatview_destroy(struct mv_flatview *fv)
{
	struct mv_machine *m = fv->machine;

	chunks_release(m, fv);
	mv_view_index_free(m, fv->chunks, fv->index_cap);
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
	pthread_mutex_lock(&m->reclaim_lock);
	fv->reclaim_next = m->reclaim;
	m->reclaim = fv;
	pthread_mutex_unlock(&m->reclaim_lock);
}

void mv_reclaim(struct mv_machine *m)
{
	struct mv_flatview *fv, *next;

	size_t i;

	if (urcu_bp_read_ongoing())
		return;
	/* The replaced views were unpublished before this fence; if no
	 * read-side section began since the last grace period, none can
	 * hold them and none needs waiting for (struct mv_machine). */
	atomic_thread_fence(memory_order_seq_cst);
	if (m->nr_retired &&
	    atomic_load_explicit(&m->readers_seen, memory_order_relaxed)) {
		atomic_store_explicit(&m->readers_seen, 0,
				      memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		urcu_bp_synchronize_rcu();
		mv_rcu_tsan_acquire();
	}
	for (i = 0; i < m->nr_retired; i++)
		mv_flatview_unref(m->retired[i]);
	m->nr_retired = 0;
	pthread_mutex_lock(&m->reclaim_lock);
	fv = m->reclaim;
	m->reclaim = NULL;
	pthread_mutex_unlock(&m->reclaim_lock);
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
	size_t k;

	*nr = fv->nr;
	if (a)
		return a;
	a = malloc((fv->nr ? fv->nr : 1) * sizeof(*a));
	if (!a) {
		*nr = 0;
		return NULL;
	}
	for (k = 0; k < fv->nr_chunks; k++)
		memcpy(&a[fv->chunk_first[k]], fv->chunks[k]->r,
		       fv->chunks[k]->nr * sizeof(*a));
	if (!atomic_compare_exchange_strong_explicit(&w->flat, &expected, a,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		free(a); /* another reader was first */
		a = expected;
	}
	return a;
}

struct mv_region *mv_flatview_root(const struct mv_flatview *fv)
{
	return fv->root;
}

static u128 range_key(const struct mv_flat_range *r, bool by_first)
{
	return by_first ? r->first : r->last;
}

/* @key falls in chunk @k of @fv: at or after its start, before the next. */
static bool chunk_holds(const struct mv_flatview *fv, size_t k, u128 key)
{
	return k < fv->nr_chunks && (u128)fv->chunk_addr[k] <= key &&
	       (k + 1 == fv->nr_chunks || (u128)fv->chunk_addr[k + 1] > key);
}

size_t mv_flatview_search_near(const struct mv_flatview *fv, size_t from,
			       u128 key, bool by_first, size_t *k)
{
	size_t lo = 0, hi = fv->nr_chunks, i;
	const struct mv_view_chunk *ch;

	if (from >= fv->nr || key > UINT64_MAX)
		return fv->nr;
	if (!key)
		return from;
	/* The last chunk starting at or before @key (or the first): the
	 * ranges are sorted and disjoint, so the answer is in it or is the
	 * next chunk's first range.  The hint, or the chunk after it, first. */
	if (chunk_holds(fv, *k + 1, key))
		++*k;
	if (!chunk_holds(fv, *k, key)) {
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;

			if ((u128)fv->chunk_addr[mid] <= key)
				lo = mid;
			else
				hi = mid;
		}
		*k = lo;
	}
	ch = fv->chunks[*k];
	lo = 0;
	hi = ch->nr;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (range_key(&ch->r[mid], by_first) < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	i = fv->chunk_first[*k] + lo;
	return i > from ? i : from; /* the keys grow with the index */
}

size_t mv_flatview_search(const struct mv_flatview *fv, size_t from, u128 key,
			  bool by_first)
{
	size_t k = SIZE_MAX - 1;

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

/* The chunk index covers the ranges in order, chunks neither empty, too
 * big nor (with more than one) too small; the index is one block with
 * room for its chunks, and neither it nor a chunk is in the machine's
 * caches of released ones (full-sized chunks exactly those of at least
 * MV_VIEW_CHUNK / 2 ranges). */
static int check_chunks(const struct mv_flatview *fv, char *why, size_t len)
{
	const struct mv_machine *m = fv->machine;
	size_t k;

	if (fv->index_cap < fv->nr_chunks ||
	    fv->chunk_first != (size_t *)(fv->chunks + fv->index_cap) ||
	    fv->chunk_addr !=
		    (uint64_t *)(fv->chunk_first + fv->index_cap + 1) ||
	    fv->chunk_id != (uint32_t *)(fv->chunk_addr + fv->index_cap) ||
	    m->nr_index_cache > MV_INDEX_CACHE ||
	    m->nr_chunk_cache > MV_CHUNK_CACHE ||
	    in_cache(fv->chunks, (void *const *)m->index_cache,
		     m->nr_index_cache))
		return fail(why, len, 0, "chunk index block is not the view's");
	if (!fv->nr != !fv->nr_chunks || fv->chunk_first[0] != 0 ||
	    fv->chunk_first[fv->nr_chunks] != fv->nr)
		return fail(why, len, 0, "chunks do not cover the view");
	for (k = 0; k < fv->nr_chunks; k++) {
		const struct mv_view_chunk *ch = fv->chunks[k];

		if (in_cache(ch, (void *const *)m->chunk_cache,
			     m->nr_chunk_cache) ||
		    ch->full != (ch->nr >= MV_VIEW_CHUNK / 2 &&
				 ch->nr <= MV_VIEW_CHUNK))
			return fail(why, len, fv->chunk_first[k],
				    "chunk released or of the wrong room");

		if (fv->chunk_first[k + 1] - fv->chunk_first[k] != ch->nr ||
		    fv->chunk_addr[k] != ch->r[0].first)
			return fail(why, len, fv->chunk_first[k],
				    "chunk index disagrees with its chunk");
		if (!ch->nr || ch->nr > MV_VIEW_CHUNK ||
		    (fv->nr_chunks > 1 && ch->nr < MV_VIEW_CHUNK / 2))
			return fail(why, len, fv->chunk_first[k],
				    "chunk too small or too big");
		if (fv->chunk_id[k] != ch->id ||
		    ch->id >= fv->machine->nr_chunk_ids ||
		    fv->machine->chunk_refs[ch->id] < 1)
			return fail(why, len, fv->chunk_first[k],
				    "chunk without references");
	}
	return 0;
}

/* A borrower's loans lie inside both views, in order, name the same
 * chunks on both sides, and its lender names it as heir. */
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
		    n->from + n->n > l->nr_chunks ||
		    n->to + n->n > fv->nr_chunks)
			return fail(why, len, 0, "loan out of order or bounds");
		for (j = 0; j < n->n; j++)
			if (fv->chunks[n->to + j] != l->chunks[n->from + j])
				return fail(
					why, len, fv->chunk_first[n->to + j],
					"borrowed chunk is not the lender's");
		from = n->from + n->n;
		to = n->to + n->n;
	}
	return 0;
}

int mv_flatview_check(const struct mv_flatview *fv, char *why, size_t len)
{
	const struct mv_flat_range *prev = NULL;
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
		if ((u128)r->offset_in_region + span > r->mr->size)
			return fail(why, len, i, "extends past its region");
		if (prev && prev->last >= r->first)
			return fail(why, len, i, "overlaps or is unsorted");
		if (prev && mv_flat_range_can_merge(prev, r))
			return fail(why, len, i, "could merge with previous");
		prev = r;
	}
	return 0;
}
