/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the tests that look inside flat views (test_view_chunks,
 * test_view_groups); include after src/memory/internal.h.
 */
#ifndef MV_TEST_VIEW_HELPERS_H
#define MV_TEST_VIEW_HELPERS_H

#include <stdbool.h>
#include <stddef.h>

/* Two ranges equal field for field. */
static inline bool mv_test_range_eq(const struct mv_flat_range *a,
				    const struct mv_flat_range *b)
{
	return a->first == b->first && a->last == b->last && a->mr == b->mr &&
	       a->offset_in_region == b->offset_in_region &&
	       a->dirty_log_mask == b->dirty_log_mask &&
	       a->romd_mode == b->romd_mode && a->readonly == b->readonly &&
	       a->nonvolatile == b->nonvolatile;
}

/* Group @k of @fv is borrowed (struct mv_view_loan). */
static inline bool mv_test_group_borrowed(const struct mv_flatview *fv,
					  size_t k)
{
	size_t i;

	for (i = 0; i < fv->nr_loans; i++)
		if (k >= fv->loans[i].to &&
		    k < fv->loans[i].to + fv->loans[i].n)
			return true;
	return false;
}

/* Group @g holds a count on its chunk @k (struct mv_view_group: it
 * borrows the others from its lender). */
static inline bool mv_test_group_holds(const struct mv_view_group *g, size_t k)
{
	return !g->lender || k == g->own;
}

#endif
