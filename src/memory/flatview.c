// SPDX-License-Identifier: MIT
/*
 * Flat views: reference counting, lookup, QEMU's can_merge rule and the
 * invariant checker the tests run after every step.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

void mv_flatview_ref(struct mv_flatview *fv)
{
	atomic_fetch_add(&fv->refcount, 1);
}

static void flatview_destroy(struct mv_flatview *fv)
{
	struct mv_machine *m = fv->machine;
	size_t i;

	if (fv->batches) {
		for (i = 0; i < fv->nr_batches; i++)
			mv_region_unref_n(
				fv->batches[i].mr,
				(long)((i + 1 < fv->nr_batches ?
						fv->batches[i + 1].start :
						fv->nr) -
				       fv->batches[i].start));
	} else {
		for (i = 0; i < fv->nr; i++)
			mv_region_unref(fv->ranges[i].mr);
	}
	free(fv->batches);
	if (fv->root)
		mv_region_unref(fv->root);
	mv_range_table_free(atomic_load(&fv->table));
	free(fv->same);
	free(fv->ranges);
	free(fv);
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
	if (m->nr_retired) {
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

const struct mv_flat_range *mv_flatview_ranges(const struct mv_flatview *fv,
					       size_t *nr)
{
	*nr = fv->nr;
	return fv->ranges;
}

struct mv_region *mv_flatview_root(const struct mv_flatview *fv)
{
	return fv->root;
}

size_t mv_flatview_index_at_or_after(const struct mv_flatview *fv,
				     uint64_t addr)
{
	size_t lo = 0, hi = fv->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fv->ranges[mid].last < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Binary search: the fallback while the range table cannot be built. */
static const struct mv_flat_range *bsearch_range(const struct mv_flatview *fv,
						 uint64_t addr)
{
	size_t i = mv_flatview_index_at_or_after(fv, addr);

	if (i < fv->nr && fv->ranges[i].first <= addr)
		return &fv->ranges[i];
	return NULL;
}

/* The view's range table, built and installed by the first caller. */
static struct mv_range_table *view_table(const struct mv_flatview *fv)
{
	struct mv_flatview *w = (struct mv_flatview *)fv;
	struct mv_range_table *t =
		atomic_load_explicit(&w->table, memory_order_acquire);
	struct mv_range_table *expected = NULL;
	struct mv_range *ranges;
	size_t i;

	if (t)
		return t;
	ranges = malloc((fv->nr ? fv->nr : 1) * sizeof(*ranges));
	if (!ranges)
		return NULL;
	for (i = 0; i < fv->nr; i++)
		ranges[i] = (struct mv_range){ .first = fv->ranges[i].first,
					       .last = fv->ranges[i].last,
					       .idx = i };
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
	const struct mv_range_table *t;
	const struct mv_range *r;

	if (fv->nr <= 2) /* nothing to gain from a table */
		return bsearch_range(fv, addr);
	t = view_table(fv);
	if (!t)
		return bsearch_range(fv, addr);
	r = mv_range_table_lookup(t, addr, hint);
	return r ? &fv->ranges[r->idx] : NULL;
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

/* The batches cover the ranges in order, cut exactly where mr changes. */
static int check_batches(const struct mv_flatview *fv, char *why, size_t len)
{
	size_t i, b = 0;

	if (!fv->batches)
		return 0;
	if (!fv->nr != !fv->nr_batches)
		return fail(why, len, 0, "batches do not cover the view");
	for (i = 0; i < fv->nr; i++) {
		bool cut = b < fv->nr_batches && fv->batches[b].start == i;

		if (cut != (!i || fv->ranges[i - 1].mr != fv->ranges[i].mr))
			return fail(why, len, i, "batch boundary misplaced");
		if (cut)
			b++;
		if (fv->batches[b - 1].mr != fv->ranges[i].mr)
			return fail(why, len, i, "batch names another region");
	}
	if (b != fv->nr_batches)
		return fail(why, len, fv->nr, "batches past the view's end");
	return 0;
}

int mv_flatview_check(const struct mv_flatview *fv, char *why, size_t len)
{
	size_t i;

	for (i = 0; i < fv->nr; i++) {
		const struct mv_flat_range *r = &fv->ranges[i];
		u128 span = (u128)r->last - r->first + 1;

		if (r->last < r->first)
			return fail(why, len, i, "last < first");
		if (!r->mr || !r->mr->terminates)
			return fail(why, len, i, "not a terminating region");
		if ((u128)r->offset_in_region + span > r->mr->size)
			return fail(why, len, i, "extends past its region");
		if (!i)
			continue;
		if (fv->ranges[i - 1].last >= r->first)
			return fail(why, len, i, "overlaps or is unsorted");
		if (mv_flat_range_can_merge(&fv->ranges[i - 1], r))
			return fail(why, len, i, "could merge with previous");
	}
	return check_batches(fv, why, len);
}
