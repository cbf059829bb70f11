// SPDX-License-Identifier: MIT
/*
 * Dirty bitmaps of RAM blocks (reference §3.9): one bit per 4 KiB page per
 * client, all set on a new block, get/set/reset over clipped ranges, the
 * little-endian bitmap accelerators hand in, and snapshot-and-clear, whose
 * atomic test-and-clear loses no bit set concurrently.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/memory.h>

#include "helpers.h"

#define PAGE 0x1000ull
#define PAGES 200 /* more than three bitmap words */
#define BPL (sizeof(unsigned long) * 8)

struct ctx {
	struct mv_machine *m;
	struct mv_region *ram;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c || mv_machine_new(&c->m) ||
	    mv_region_new_ram(c->m, "ram", PAGES * PAGE, NULL, &c->ram))
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	mv_region_unref(c->ram);
	mv_machine_free(c->m);
	free(c);
	return 0;
}

static void reset_all(struct mv_region *r)
{
	unsigned cl;

	for (cl = 0; cl < MV_DIRTY_NR_CLIENTS; cl++)
		mv_region_reset_dirty(r, 0, UINT64_MAX, cl);
}

/* The set pages of @client as a string of '0'/'1', pages [first, end). */
static void expect_pages(struct mv_region *r, enum mv_dirty_client client,
			 unsigned first, const char *want)
{
	size_t i, n = strlen(want);
	char *got = calloc(1, n + 1);

	assert_non_null(got);
	for (i = 0; i < n; i++)
		got[i] = mv_region_get_dirty(r, (first + i) * PAGE, PAGE,
					     client) ?
				 '1' :
				 '0';
	assert_string_equal(got, want);
	free(got);
}

/* ram_block_add(): a new block is dirty everywhere for every client. */
static void test_new_block_dirty_for_every_client(void **state)
{
	struct ctx *c = *state;
	unsigned cl, p;

	for (cl = 0; cl < MV_DIRTY_NR_CLIENTS; cl++)
		for (p = 0; p < PAGES; p++)
			assert_true(
				mv_region_get_dirty(c->ram, p * PAGE, 1, cl));
}

/* get: any dirty page of the range; the range touches every page any of
 * its bytes is in. */
static void test_get_dirty_any_page_touched(void **state)
{
	struct ctx *c = *state;

	reset_all(c->ram);
	assert_false(
		mv_region_get_dirty(c->ram, 0, PAGES * PAGE, MV_DIRTY_VGA));
	mv_region_set_dirty(c->ram, 70 * PAGE + 5, 1);
	assert_true(mv_region_get_dirty(c->ram, 0, PAGES * PAGE, MV_DIRTY_VGA));
	assert_true(mv_region_get_dirty(c->ram, 70 * PAGE - 1, 2,
					MV_DIRTY_MIGRATION));
	assert_false(
		mv_region_get_dirty(c->ram, 70 * PAGE - 1, 1, MV_DIRTY_CODE));
	assert_false(
		mv_region_get_dirty(c->ram, 71 * PAGE, PAGE, MV_DIRTY_CODE));
	assert_false(mv_region_get_dirty(c->ram, 70 * PAGE, 0, MV_DIRTY_VGA));
	assert_false(mv_region_get_dirty(c->ram, 0, PAGE, MV_DIRTY_NR_CLIENTS));
}

/* set marks every client; reset clears one client only; both cover the
 * pages their bytes touch, across bitmap words. */
static void test_set_every_client_reset_one(void **state)
{
	struct ctx *c = *state;

	reset_all(c->ram);
	mv_region_set_dirty(c->ram, 62 * PAGE + 1, 3 * PAGE);
	expect_pages(c->ram, MV_DIRTY_VGA, 60, "00111100");
	expect_pages(c->ram, MV_DIRTY_CODE, 60, "00111100");
	expect_pages(c->ram, MV_DIRTY_MIGRATION, 60, "00111100");
	mv_region_reset_dirty(c->ram, 63 * PAGE, PAGE + 1, MV_DIRTY_VGA);
	expect_pages(c->ram, MV_DIRTY_VGA, 60, "00100100");
	expect_pages(c->ram, MV_DIRTY_MIGRATION, 60, "00111100");
	mv_region_reset_dirty(c->ram, 0, 0, MV_DIRTY_MIGRATION);
	expect_pages(c->ram, MV_DIRTY_MIGRATION, 60, "00111100");
}

/* Ranges past the block are clipped; ranges wrapping 2^64 too. */
static void test_ranges_clipped_to_block(void **state)
{
	struct ctx *c = *state;

	reset_all(c->ram);
	mv_region_set_dirty(c->ram, (PAGES - 1) * PAGE, UINT64_MAX);
	expect_pages(c->ram, MV_DIRTY_VGA, PAGES - 3, "001");
	assert_false(
		mv_region_get_dirty(c->ram, PAGES * PAGE, PAGE, MV_DIRTY_VGA));
	assert_true(mv_region_get_dirty(c->ram, PAGES * PAGE - 1, UINT64_MAX,
					MV_DIRTY_VGA));
	mv_region_set_dirty(c->ram, UINT64_MAX - 10, 100);
	mv_region_reset_dirty(c->ram, PAGES * PAGE, UINT64_MAX, MV_DIRTY_VGA);
	expect_pages(c->ram, MV_DIRTY_VGA, PAGES - 3, "001");
	mv_region_reset_dirty(c->ram, 0, UINT64_MAX, MV_DIRTY_VGA);
	expect_pages(c->ram, MV_DIRTY_VGA, PAGES - 3, "000");
}

/* Regions without a RAM block have no bitmaps: false, nothing, -EINVAL. */
static void test_region_without_block(void **state)
{
	struct ctx *c = *state;
	struct mv_region *cont = NULL, *al = NULL;
	struct mv_dirty_snapshot *snap = NULL;
	unsigned long bm = ~0ul;

	assert_int_equal(mv_region_new_container(c->m, "c", PAGE, &cont), 0);
	assert_int_equal(mv_region_new_alias(c->m, "al", c->ram, 0, PAGE, &al),
			 0);
	assert_false(mv_region_get_dirty(cont, 0, PAGE, MV_DIRTY_VGA));
	assert_false(mv_region_get_dirty(al, 0, PAGE, MV_DIRTY_VGA));
	assert_false(mv_region_get_dirty(NULL, 0, PAGE, MV_DIRTY_VGA));
	mv_region_set_dirty(cont, 0, PAGE);
	mv_region_reset_dirty(al, 0, PAGE, MV_DIRTY_VGA);
	mv_region_set_dirty_bitmap(cont, 0, &bm, 64);
	assert_int_equal(mv_region_snapshot_and_clear_dirty(
				 al, 0, PAGE, MV_DIRTY_VGA, &snap),
			 -EINVAL);
	assert_null(snap);
	mv_region_unref(al);
	mv_region_unref(cont);
}

/* cpu_physical_memory_set_dirty_lebitmap(): bit i of the little-endian
 * bitmap is page i from @addr's page, for every client, at any page
 * offset (here straddling bitmap words); bits past @npages ignored. */
static void test_set_dirty_bitmap_little_endian(void **state)
{
	struct ctx *c = *state;
	unsigned long bm[2];
	uint8_t *bytes = (uint8_t *)bm;

	reset_all(c->ram);
	memset(bm, 0, sizeof(bm));
	bytes[0] = 0x05;	   /* pages 0 and 2 */
	bytes[1] = 0x80;	   /* page 15 */
	bytes[BPL / 8] = 0x01;	   /* page BPL */
	bytes[BPL / 8 + 1] = 0x02; /* page BPL + 9: past npages */
	mv_region_set_dirty_bitmap(c->ram, 60 * PAGE, bm, BPL + 1);
	expect_pages(c->ram, MV_DIRTY_VGA, 60, "1010000000000001");
	expect_pages(c->ram, MV_DIRTY_CODE, 60 + BPL, "1000000000");
	expect_pages(c->ram, MV_DIRTY_MIGRATION, 60 + BPL - 1, "01");
	assert_false(mv_region_get_dirty(c->ram, (60 + BPL + 9) * PAGE, PAGE,
					 MV_DIRTY_VGA));
	/* clipped at the end of the block */
	memset(bm, 0xff, sizeof(bm));
	mv_region_set_dirty_bitmap(c->ram, (PAGES - 2) * PAGE, bm, 2 * BPL);
	expect_pages(c->ram, MV_DIRTY_VGA, PAGES - 3, "011");
	mv_region_set_dirty_bitmap(c->ram, PAGES * PAGE, bm, 2 * BPL);
	mv_region_set_dirty_bitmap(c->ram, 0, NULL, 2);
}

/* The bits come out in the snapshot and are cleared for that client only,
 * and only for the pages asked for. */
static void test_snapshot_and_clear_takes_bits(void **state)
{
	struct ctx *c = *state;
	struct mv_dirty_snapshot *snap = NULL;

	reset_all(c->ram);
	mv_region_set_dirty(c->ram, 10 * PAGE, PAGE);
	mv_region_set_dirty(c->ram, 64 * PAGE, 2 * PAGE);
	mv_region_set_dirty(c->ram, 100 * PAGE, PAGE);
	assert_int_equal(mv_region_snapshot_and_clear_dirty(
				 c->ram, 10 * PAGE + 7, 60 * PAGE, MV_DIRTY_VGA,
				 &snap),
			 0);
	assert_int_equal(snap->start, 10 * PAGE);
	assert_int_equal(snap->npages, 61);
	assert_true(mv_dirty_snapshot_get(snap, 10 * PAGE, 1));
	assert_false(mv_dirty_snapshot_get(snap, 11 * PAGE, 53 * PAGE));
	assert_true(mv_dirty_snapshot_get(snap, 64 * PAGE + 100, 1));
	assert_true(mv_dirty_snapshot_get(snap, 65 * PAGE, PAGE));
	assert_false(mv_dirty_snapshot_get(snap, 66 * PAGE, 4 * PAGE));
	/* outside the snapshot: clean */
	assert_false(mv_dirty_snapshot_get(snap, 100 * PAGE, PAGE));
	assert_false(mv_dirty_snapshot_get(snap, 0, 10 * PAGE));
	assert_true(mv_dirty_snapshot_get(snap, 0, UINT64_MAX));
	expect_pages(c->ram, MV_DIRTY_VGA, 9, "000");
	expect_pages(c->ram, MV_DIRTY_VGA, 63, "0000");
	expect_pages(c->ram, MV_DIRTY_VGA, 100, "1");
	expect_pages(c->ram, MV_DIRTY_MIGRATION, 9, "010");
	expect_pages(c->ram, MV_DIRTY_MIGRATION, 63, "0110");
	mv_dirty_snapshot_free(snap);
	mv_dirty_snapshot_free(NULL);
}

/* A bit set after the snapshot stays set for the next one. */
static void test_snapshot_bits_set_after_stay_set(void **state)
{
	struct ctx *c = *state;
	struct mv_dirty_snapshot *s1 = NULL, *s2 = NULL;

	assert_int_equal(mv_region_snapshot_and_clear_dirty(
				 c->ram, 0, PAGES * PAGE, MV_DIRTY_VGA, &s1),
			 0);
	assert_true(mv_dirty_snapshot_get(s1, 5 * PAGE, 1));
	assert_false(
		mv_region_get_dirty(c->ram, 0, PAGES * PAGE, MV_DIRTY_VGA));
	mv_region_set_dirty(c->ram, 5 * PAGE, 1);
	assert_true(mv_dirty_snapshot_get(s1, 5 * PAGE, 1));
	assert_true(mv_region_get_dirty(c->ram, 5 * PAGE, 1, MV_DIRTY_VGA));
	assert_int_equal(mv_region_snapshot_and_clear_dirty(
				 c->ram, 0, PAGES * PAGE, MV_DIRTY_VGA, &s2),
			 0);
	assert_true(mv_dirty_snapshot_get(s2, 5 * PAGE, 1));
	assert_false(mv_dirty_snapshot_get(s2, 6 * PAGE, (PAGES - 6) * PAGE));
	mv_dirty_snapshot_free(s1);
	mv_dirty_snapshot_free(s2);
}

/* Ranges past the block give a clipped or empty snapshot. */
static void test_snapshot_clipped(void **state)
{
	struct ctx *c = *state;
	struct mv_dirty_snapshot *snap = NULL;

	assert_int_equal(mv_region_snapshot_and_clear_dirty(
				 c->ram, (PAGES - 2) * PAGE, UINT64_MAX,
				 MV_DIRTY_CODE, &snap),
			 0);
	assert_int_equal(snap->npages, 2);
	assert_true(mv_dirty_snapshot_get(snap, (PAGES - 1) * PAGE, 1));
	assert_false(mv_dirty_snapshot_get(snap, PAGES * PAGE, PAGE));
	mv_dirty_snapshot_free(snap);
	assert_int_equal(
		mv_region_snapshot_and_clear_dirty(c->ram, PAGES * PAGE, PAGE,
						   MV_DIRTY_CODE, &snap),
		0);
	assert_int_equal(snap->npages, 0);
	assert_false(mv_dirty_snapshot_get(snap, 0, UINT64_MAX));
	mv_dirty_snapshot_free(snap);
	assert_int_equal(mv_region_snapshot_and_clear_dirty(
				 c->ram, 0, PAGE, MV_DIRTY_NR_CLIENTS, &snap),
			 -EINVAL);
	assert_int_equal(mv_region_snapshot_and_clear_dirty(c->ram, 0, PAGE,
							    MV_DIRTY_VGA, NULL),
			 -EINVAL);
}

/* A failed snapshot allocation clears nothing. */
static void test_snapshot_alloc_failure_clears_nothing(void **state)
{
	struct ctx *c = *state;
	struct mv_dirty_snapshot *snap = NULL;
	long n;

	for (n = 0; n < 2; n++) {
		mv_machine_fail_alloc_after(c->m, n);
		assert_int_equal(mv_region_snapshot_and_clear_dirty(
					 c->ram, 0, PAGES * PAGE, MV_DIRTY_VGA,
					 &snap),
				 -ENOMEM);
		mv_machine_fail_alloc_after(c->m, -1);
		assert_true(mv_region_get_dirty(c->ram, 0, PAGE, MV_DIRTY_VGA));
	}
}

/* Creating RAM walks every allocation failure, the bitmaps' included,
 * without leaks (ASan). */
static void test_ram_bitmap_alloc_failure_unwinds(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = NULL;
	long n;
	int ret;

	for (n = 0;; n++) {
		mv_machine_fail_alloc_after(c->m, n);
		ret = mv_region_new_ram(c->m, "more", 3 * PAGE, NULL, &r);
		mv_machine_fail_alloc_after(c->m, -1);
		if (!ret)
			break;
		assert_int_equal(ret, -ENOMEM);
		assert_true(n < 50);
	}
	assert_true(n >= 4); /* region, name, block, idstr, bitmaps... */
	assert_true(mv_region_get_dirty(r, 2 * PAGE, 1, MV_DIRTY_CODE));
	assert_false(mv_region_get_dirty(r, 3 * PAGE, 1, MV_DIRTY_CODE));
	mv_region_unref(r);
}

/*
 * Concurrent setters against a snapshot taker: every page is set exactly
 * once after the reset, so with an atomic test-and-clear each turns up in
 * exactly one snapshot or stays set at the end; none is lost or doubled.
 */
struct setter {
	struct mv_region *r;
	unsigned first;
};

static void *setter_main(void *arg)
{
	struct setter *s = arg;
	unsigned p;

	for (p = s->first; p < PAGES; p += 2)
		mv_region_set_dirty(s->r, p * PAGE, 1);
	return NULL;
}

static void count_snapshot(struct ctx *c, unsigned *seen)
{
	struct mv_dirty_snapshot *snap = NULL;
	unsigned p;

	assert_int_equal(
		mv_region_snapshot_and_clear_dirty(c->ram, 0, PAGES * PAGE,
						   MV_DIRTY_MIGRATION, &snap),
		0);
	for (p = 0; p < PAGES; p++)
		seen[p] += mv_dirty_snapshot_get(snap, p * PAGE, 1);
	mv_dirty_snapshot_free(snap);
}

static void test_snapshot_loses_no_concurrent_bit(void **state)
{
	struct ctx *c = *state;
	struct setter s[2] = { { c->ram, 0 }, { c->ram, 1 } };
	pthread_t t[2];
	unsigned seen[PAGES], p, round;

	for (round = 0; round < 50; round++) {
		memset(seen, 0, sizeof(seen));
		reset_all(c->ram);
		assert_int_equal(
			pthread_create(&t[0], NULL, setter_main, &s[0]), 0);
		assert_int_equal(
			pthread_create(&t[1], NULL, setter_main, &s[1]), 0);
		for (p = 0; p < 20; p++)
			count_snapshot(c, seen);
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
		count_snapshot(c, seen);
		for (p = 0; p < PAGES; p++)
			assert_int_equal(seen[p], 1);
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_new_block_dirty_for_every_client),
		T(test_get_dirty_any_page_touched),
		T(test_set_every_client_reset_one),
		T(test_ranges_clipped_to_block),
		T(test_region_without_block),
		T(test_set_dirty_bitmap_little_endian),
		T(test_snapshot_and_clear_takes_bits),
		T(test_snapshot_bits_set_after_stay_set),
		T(test_snapshot_clipped),
		T(test_snapshot_alloc_failure_clears_nothing),
		T(test_ram_bitmap_alloc_failure_unwinds),
		T(test_snapshot_loses_no_concurrent_bit),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
