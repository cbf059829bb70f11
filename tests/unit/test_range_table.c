// SPDX-License-Identifier: MIT
/*
 * The range table (src/util/range_table.h): holes and edges up to
 * UINT64_MAX, input validation, the hint path, and a randomized
 * differential test against a linear scan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/util/range_table.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* splitmix64: a fixed seed, so a failure replays. */
static uint64_t rnd_state = 0x6d656d7669727421ull;

static uint64_t rnd(void)
{
	uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static struct mv_range_table *table_new(const struct mv_range *r, size_t n)
{
	struct mv_range_table *t = NULL;

	assert_int_equal(mv_range_table_new(r, n, &t), 0);
	assert_non_null(t);
	assert_int_equal(mv_range_table_check(t), 0);
	assert_int_equal(mv_range_table_count(t), n);
	return t;
}

/* The reference: a linear scan over the caller's array. */
static const struct mv_range *linear(const struct mv_range *r, size_t n,
				     uint64_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= r[i].first && addr <= r[i].last)
			return &r[i];
	return NULL;
}

/* The reference rank: how many ranges start at or below @addr. */
static size_t linear_rank(const struct mv_range *r, size_t n, uint64_t addr)
{
	size_t k = 0;

	while (k < n && r[k].first <= addr)
		k++;
	return k;
}

/*
 * Look @addr up with and without @hint and compare both, and the rank,
 * with the linear scan of @r, the array @t was built from.
 */
static void expect_same(const struct mv_range_table *t,
			const struct mv_range *r, size_t n, uint64_t addr,
			struct mv_range_hint *hint)
{
	const struct mv_range *want = linear(r, n, addr);
	const struct mv_range *got = mv_range_table_lookup(t, addr, NULL);
	const struct mv_range *hinted = mv_range_table_lookup(t, addr, hint);

	if (mv_range_table_rank(t, addr) != linear_rank(r, n, addr))
		fail_msg("n=%zu addr=%#" PRIx64 ": rank %zu, want %zu", n, addr,
			 mv_range_table_rank(t, addr), linear_rank(r, n, addr));

	if (!want) {
		if (got || hinted)
			fail_msg("n=%zu addr=%#" PRIx64 ": hole, got a range",
				 n, addr);
		return;
	}
	if (!got || mv_range_table_index(t, got) != (size_t)(want - r))
		fail_msg("n=%zu addr=%#" PRIx64 ": want range %zu", n, addr,
			 (size_t)(want - r));
	assert_ptr_equal(hinted, got);
	assert_int_equal(got->first, want->first);
	assert_int_equal(got->last, want->last);
	assert_int_equal(got->idx, want->idx);
}

/* Every edge of every range, and the addresses on either side. */
static void expect_edges(const struct mv_range_table *t,
			 const struct mv_range *r, size_t n,
			 struct mv_range_hint *hint)
{
	expect_same(t, r, n, 0, hint);
	expect_same(t, r, n, UINT64_MAX, hint);
	for (size_t i = 0; i < n; i++) {
		expect_same(t, r, n, r[i].first, hint);
		expect_same(t, r, n, r[i].first - 1, hint);
		expect_same(t, r, n, r[i].last, hint);
		expect_same(t, r, n, r[i].last + 1, hint);
	}
}

static void empty_table_holds_nothing(void **state)
{
	struct mv_range_hint hint = MV_RANGE_HINT_INIT;
	struct mv_range_table *t = table_new(NULL, 0);
	const struct mv_range *r;
	size_t visited = 0;

	(void)state;
	assert_null(mv_range_table_lookup(t, 0, NULL));
	assert_null(mv_range_table_lookup(t, UINT64_MAX, NULL));
	assert_null(mv_range_table_lookup(t, 0x1234, &hint));
	assert_null(mv_range_table_at(t, 0));
	mv_range_table_for_each(r, t)
		visited++;
	assert_int_equal(visited, 0);
	mv_range_table_free(t);
	mv_range_table_free(NULL);
}

static void one_range_has_two_edges(void **state)
{
	const struct mv_range in = { .first = 0x1000,
				     .last = 0x1fff,
				     .idx = 7 };
	struct mv_range_table *t = table_new(&in, 1);
	const struct mv_range *r;

	(void)state;
	assert_null(mv_range_table_lookup(t, 0, NULL));
	assert_null(mv_range_table_lookup(t, 0xfff, NULL));
	r = mv_range_table_lookup(t, 0x1000, NULL);
	assert_non_null(r);
	assert_int_equal(r->idx, 7);
	assert_ptr_equal(mv_range_table_lookup(t, 0x1fff, NULL), r);
	assert_null(mv_range_table_lookup(t, 0x2000, NULL));
	assert_null(mv_range_table_lookup(t, UINT64_MAX, NULL));
	mv_range_table_free(t);
}

/* [0, UINT64_MAX] is the 2^64-byte root: no address is a hole. */
static void whole_space_range_holds_every_address(void **state)
{
	int payload;
	const struct mv_range in = { .first = 0,
				     .last = UINT64_MAX,
				     .ptr = &payload };
	struct mv_range_table *t = table_new(&in, 1);
	const uint64_t addrs[] = { 0, 1, 1ull << 63, UINT64_MAX - 1,
				   UINT64_MAX };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++) {
		const struct mv_range *r =
			mv_range_table_lookup(t, addrs[i], NULL);

		assert_non_null(r);
		assert_ptr_equal(r->ptr, &payload);
	}
	mv_range_table_free(t);
}

/* Ranges ending at UINT64_MAX, including [MAX, MAX], small and tree-sized. */
static void ranges_touching_max_are_found(void **state)
{
	struct mv_range in[100];
	struct mv_range_hint hint = MV_RANGE_HINT_INIT;

	(void)state;
	for (size_t n = 1; n <= ARRAY_SIZE(in); n++) {
		struct mv_range_table *t;

		/* n - 1 pages below a gap, then [MAX, MAX] */
		for (size_t i = 0; i + 1 < n; i++) {
			in[i].first = UINT64_MAX - 0x10000 * (n - i);
			in[i].last = in[i].first + 0xfff;
			in[i].idx = i;
		}
		in[n - 1] = (struct mv_range){ UINT64_MAX,
					       UINT64_MAX,
					       { .idx = n - 1 } };
		t = table_new(in, n);
		assert_ptr_equal(mv_range_table_lookup(t, UINT64_MAX, NULL),
				 mv_range_table_at(t, n - 1));
		assert_null(mv_range_table_lookup(t, UINT64_MAX - 1, NULL));
		expect_edges(t, in, n, &hint);
		mv_range_table_free(t);

		/* the last range is [MAX - 0xfff, MAX] and touches the one below */
		in[n - 1].first = UINT64_MAX - 0xfff;
		if (n > 1)
			in[n - 2].last = in[n - 1].first - 1;
		t = table_new(in, n);
		expect_edges(t, in, n, &hint);
		mv_range_table_free(t);
	}
}

/* A hole between two ranges is a hole at both of its edges. */
static void holes_return_null_not_a_neighbour(void **state)
{
	const struct mv_range in[] = {
		{ 0x0, 0x9ffff, { .idx = 0 } },
		{ 0xc0000, 0xfffff, { .idx = 1 } },	/* hole before */
		{ 0x100000, 0x7fffffff, { .idx = 2 } }, /* touching */
		{ 0xfee00000, 0xfee00fff, { .idx = 3 } },
		{ 0x100000000, 0x17fffffff, { .idx = 4 } },
	};
	struct mv_range_table *t = table_new(in, ARRAY_SIZE(in));

	(void)state;
	assert_null(mv_range_table_lookup(t, 0xa0000, NULL));
	assert_null(mv_range_table_lookup(t, 0xbffff, NULL));
	assert_int_equal(mv_range_table_lookup(t, 0xfffff, NULL)->idx, 1);
	assert_int_equal(mv_range_table_lookup(t, 0x100000, NULL)->idx, 2);
	assert_null(mv_range_table_lookup(t, 0x80000000, NULL));
	assert_null(mv_range_table_lookup(t, 0xfedfffff, NULL));
	assert_null(mv_range_table_lookup(t, 0xfee01000, NULL));
	assert_null(mv_range_table_lookup(t, 0x180000000, NULL));
	assert_null(mv_range_table_lookup(t, UINT64_MAX, NULL));
	mv_range_table_free(t);
}

static void expect_einval(const struct mv_range *in, size_t n)
{
	struct mv_range_table *t = (struct mv_range_table *)&t;

	assert_int_equal(mv_range_table_new(in, n, &t), -EINVAL);
	assert_ptr_equal(t, (struct mv_range_table *)&t); /* untouched */
}

static void bad_input_is_einval(void **state)
{
	const struct mv_range unsorted[] = { { 0x2000, 0x2fff, { 0 } },
					     { 0x1000, 0x1fff, { 0 } } };
	const struct mv_range overlap[] = { { 0x1000, 0x2000, { 0 } },
					    { 0x2000, 0x2fff, { 0 } } };
	const struct mv_range same[] = { { 0x1000, 0x1000, { 0 } },
					 { 0x1000, 0x1000, { 0 } } };
	const struct mv_range inside[] = { { 0, UINT64_MAX, { 0 } },
					   { 5, 6, { 0 } } };
	const struct mv_range reversed[] = { { 0x2000, 0x1fff, { 0 } } };
	struct mv_range big[64];

	(void)state;
	expect_einval(unsorted, 2);
	expect_einval(overlap, 2);
	expect_einval(same, 2);
	expect_einval(inside, 2);
	expect_einval(reversed, 1);
	expect_einval(NULL, 1);
	assert_int_equal(mv_range_table_new(reversed, 0, NULL), -EINVAL);
	/* one bad pair deep in a tree-sized array */
	for (size_t i = 0; i < ARRAY_SIZE(big); i++)
		big[i] = (struct mv_range){ i * 0x1000,
					    i * 0x1000 + 0xfff,
					    { .idx = i } };
	big[40].last = big[41].first;
	expect_einval(big, ARRAY_SIZE(big));
}

/* A hit fills the hint, a hole leaves it, the next hit uses it. */
static void hint_remembers_the_last_hit(void **state)
{
	struct mv_range in[32];
	struct mv_range_hint hint = MV_RANGE_HINT_INIT;
	struct mv_range_table *t;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(in); i++)
		in[i] = (struct mv_range){ i * 0x10000,
					   i * 0x10000 + 0xfff,
					   { .idx = i } };
	t = table_new(in, ARRAY_SIZE(in));
	assert_int_equal(mv_range_table_lookup(t, 0x170010, &hint)->idx, 23);
	assert_int_equal(hint.idx, 23);
	assert_null(mv_range_table_lookup(t, 0x171000, &hint));
	assert_int_equal(hint.idx, 23);
	assert_int_equal(mv_range_table_lookup(t, 0x170fff, &hint)->idx, 23);
	assert_int_equal(mv_range_table_lookup(t, 0x20000, &hint)->idx, 2);
	assert_int_equal(hint.idx, 2);
	/* garbage in the hint costs a search, not a wrong answer */
	hint.idx = SIZE_MAX;
	assert_int_equal(mv_range_table_lookup(t, 0x50000, &hint)->idx, 5);
	mv_range_table_free(t);
}

/*
 * A hint filled by one table and used with another (even one allocated
 * where the first was) is checked against the table at hand.
 */
static void stale_hint_from_another_table_is_harmless(void **state)
{
	struct mv_range big[100], small[3];
	struct mv_range_hint hint = MV_RANGE_HINT_INIT;
	struct mv_range_table *a, *b;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(big); i++)
		big[i] = (struct mv_range){ i * 0x1000,
					    i * 0x1000 + 0xfff,
					    { .idx = i } };
	for (size_t i = 0; i < ARRAY_SIZE(small); i++)
		small[i] = (struct mv_range){ i * 0x100000,
					      i * 0x100000 + 0xfff,
					      { .idx = 100 + i } };
	a = table_new(big, ARRAY_SIZE(big));
	b = table_new(small, ARRAY_SIZE(small));
	assert_int_equal(mv_range_table_lookup(a, 0x63000, &hint)->idx, 99);
	/* index 99 does not exist in b */
	assert_null(mv_range_table_lookup(b, 0x63000, &hint));
	assert_int_equal(mv_range_table_lookup(b, 0x200000, &hint)->idx, 102);
	/* index 2 exists in a but holds another range */
	assert_int_equal(mv_range_table_lookup(a, 0x200, &hint)->idx, 0);
	assert_int_equal(mv_range_table_lookup(a, 0x2000, &hint)->idx, 2);
	/* free a, build b' (maybe at a's address) and reuse the hint */
	mv_range_table_free(a);
	a = table_new(small, ARRAY_SIZE(small));
	assert_null(mv_range_table_lookup(a, 0x2000, &hint));
	assert_int_equal(mv_range_table_lookup(a, 0x100000, &hint)->idx, 101);
	mv_range_table_free(a);
	mv_range_table_free(b);
}

static void iterator_walks_in_order(void **state)
{
	struct mv_range in[20];
	struct mv_range_table *t;
	const struct mv_range *r;
	size_t i = 0;

	(void)state;
	for (size_t k = 0; k < ARRAY_SIZE(in); k++)
		in[k] = (struct mv_range){ k * 3, k * 3 + 1, { .idx = k } };
	t = table_new(in, ARRAY_SIZE(in));
	mv_range_table_for_each(r, t) {
		assert_int_equal(r->idx, i);
		assert_int_equal(mv_range_table_index(t, r), i);
		i++;
	}
	assert_int_equal(i, ARRAY_SIZE(in));
	mv_range_table_free(t);
}

/* A gap or size-minus-one: 0, 1, small, or up to 2^bits. */
static uint64_t rnd_len(unsigned int bits)
{
	switch (rnd() % 4) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return rnd() % 16;
	default:
		return rnd() >> (64 - bits);
	}
}

/*
 * n random sorted disjoint ranges: touching or not, of 1 byte or huge,
 * starting at 0, ending at UINT64_MAX, or neither.
 */
static void random_ranges(struct mv_range *r, size_t n)
{
	unsigned int bits = 60;
	uint64_t at = 0;

	for (size_t k = n + 1; k > 1; k >>= 1)
		bits--;
	for (size_t i = 0; i < n; i++) {
		at += i || rnd() % 2 ? rnd_len(bits) : 0;
		r[i].first = at;
		at += rnd_len(bits);
		r[i].last = at;
		r[i].idx = i;
		at++;
	}
	if (n && rnd() % 3 == 0) { /* slide up to end at UINT64_MAX */
		uint64_t shift = UINT64_MAX - r[n - 1].last;

		for (size_t i = 0; i < n; i++) {
			r[i].first += shift;
			r[i].last += shift;
		}
	}
}

static void random_tables_match_linear_scan(void **state)
{
	struct mv_range *r = malloc(1000 * sizeof(*r));

	(void)state;
	assert_non_null(r);
	for (size_t n = 0; n <= 1000; n++) {
		struct mv_range_hint hint = MV_RANGE_HINT_INIT;
		struct mv_range_table *t;

		random_ranges(r, n);
		t = table_new(r, n);
		expect_edges(t, r, n, &hint);
		for (int k = 0; k < 200; k++) {
			uint64_t lo = n ? r[0].first : 0;
			uint64_t span = n ? r[n - 1].last - lo : 0;

			expect_same(t, r, n, rnd(), &hint);
			if (span)
				expect_same(t, r, n, lo + rnd() % span, &hint);
		}
		mv_range_table_free(t);
	}
	free(r);
}

/* Large n: every edge of 100000 ranges, checked by construction. */
static void large_table_finds_every_edge(void **state)
{
	const size_t n = 100000;
	struct mv_range *r = malloc(n * sizeof(*r));
	struct mv_range_hint hint = MV_RANGE_HINT_INIT;
	struct mv_range_table *t;

	(void)state;
	assert_non_null(r);
	random_ranges(r, n);
	t = table_new(r, n);
	for (size_t i = 0; i < n; i++) {
		const struct mv_range *below =
			i > 0 && r[i - 1].last + 1 == r[i].first ?
				mv_range_table_at(t, i - 1) :
				NULL;
		const struct mv_range *above =
			i + 1 < n && r[i].last + 1 == r[i + 1].first ?
				mv_range_table_at(t, i + 1) :
				NULL;

		assert_ptr_equal(mv_range_table_lookup(t, r[i].first, NULL),
				 mv_range_table_at(t, i));
		assert_ptr_equal(mv_range_table_lookup(t, r[i].last, &hint),
				 mv_range_table_at(t, i));
		if (r[i].first > 0)
			assert_ptr_equal(
				mv_range_table_lookup(t, r[i].first - 1, &hint),
				below);
		if (r[i].last < UINT64_MAX)
			assert_ptr_equal(mv_range_table_lookup(t, r[i].last + 1,
							       NULL),
					 above);
	}
	mv_range_table_free(t);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_table_holds_nothing),
		cmocka_unit_test(one_range_has_two_edges),
		cmocka_unit_test(whole_space_range_holds_every_address),
		cmocka_unit_test(ranges_touching_max_are_found),
		cmocka_unit_test(holes_return_null_not_a_neighbour),
		cmocka_unit_test(bad_input_is_einval),
		cmocka_unit_test(hint_remembers_the_last_hit),
		cmocka_unit_test(stale_hint_from_another_table_is_harmless),
		cmocka_unit_test(iterator_walks_in_order),
		cmocka_unit_test(random_tables_match_linear_scan),
		cmocka_unit_test(large_table_finds_every_edge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
