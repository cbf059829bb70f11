// SPDX-License-Identifier: MIT
/*
 * Shared unit-test helpers (see helpers.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

void mv_test_check_views(struct mv_machine *m)
{
	size_t i;

	for (i = 0; i < mv_machine_as_count(m); i++) {
		struct mv_as *as = mv_machine_as_get(m, i);
		struct mv_flatview *fv = mv_as_get_flatview(as);
		char why[128];

		if (mv_flatview_check(fv, why, sizeof(why)))
			fail_msg("view of %s: %s", mv_as_name(as), why);
		mv_flatview_unref(fv);
	}
	assert_null(mv_machine_as_get(m, i));
}

char *mv_test_view_text(struct mv_as *as)
{
	struct mv_flatview *fv = mv_as_get_flatview(as);
	const struct mv_flat_range *r;
	char *text = NULL;
	size_t len = 0, nr, i;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	r = mv_flatview_ranges(fv, &nr);
	for (i = 0; i < nr; i++)
		fprintf(f, "%s%" PRIx64 "-%" PRIx64 " %s@%" PRIx64 "%s%s",
			i ? "\n" : "", r[i].first, r[i].last,
			mv_region_name(r[i].mr), r[i].offset_in_region,
			r[i].readonly ? " ro" : "",
			r[i].nonvolatile ? " nv" : "");
	fclose(f);
	mv_flatview_unref(fv);
	return text;
}

void mv_test_expect_view(struct mv_as *as, const char *expect)
{
	char *text = mv_test_view_text(as);

	if (strcmp(text, expect)) {
		print_error("view of %s:\n%s\nexpected:\n%s\n", mv_as_name(as),
			    text, expect);
		free(text);
		fail();
	}
	free(text);
}

struct mv_region *mv_test_track(struct mv_test_regions *t, int ret,
				struct mv_region **r)
{
	assert_int_equal(ret, 0);
	assert_non_null(*r);
	assert_true(t->nr < MV_TEST_MAX_REGIONS);
	t->r[t->nr++] = *r;
	return *r;
}

void mv_test_untrack(struct mv_test_regions *t, struct mv_region *r)
{
	size_t i;

	for (i = 0; i < t->nr; i++)
		if (t->r[i] == r)
			t->r[i] = NULL;
}

void mv_test_unref_all(struct mv_test_regions *t)
{
	size_t i;

	for (i = 0; i < t->nr; i++)
		mv_region_unref(t->r[i]);
	t->nr = 0;
}
