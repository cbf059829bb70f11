/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the unit tests: invariant checks after every step and
 * compact flat-view assertions.
 */
#ifndef MV_TEST_HELPERS_H
#define MV_TEST_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <memvirt/memory.h>

/* Fails the test if any address space's view breaks mv_flatview_check(). */
void mv_test_check_views(struct mv_machine *m);

/*
 * Compare @as's flat view with @expect: one line per range,
 * "FIRST-LAST NAME@OFFSET[ ro][ nv]" in hex without 0x, joined by '\n'.
 */
void mv_test_expect_view(struct mv_as *as, const char *expect);
/* The same text for @as (caller frees). */
char *mv_test_view_text(struct mv_as *as);

/* The region references a test owns, dropped together at teardown. */
#define MV_TEST_MAX_REGIONS 32
struct mv_test_regions {
	struct mv_region *r[MV_TEST_MAX_REGIONS];
	size_t nr;
};

/* Assert @ret == 0 and take over the reference returned in *@r. */
struct mv_region *mv_test_track(struct mv_test_regions *t, int ret,
				struct mv_region **r);
/* Forget @r: the test drops that reference itself. */
void mv_test_untrack(struct mv_test_regions *t, struct mv_region *r);
void mv_test_unref_all(struct mv_test_regions *t);

#endif /* MV_TEST_HELPERS_H */
