// SPDX-License-Identifier: MIT
/*
 * The range table (src/util/range_table.h): holes and edges up to
 * UINT64_MAX, input validation, the hint path, randomized differential
 * tests against a linear scan (skewed layouts too), and the bucket index.
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

/*
 * Every edge of every range, for n too large for expect_edges(): the
 * answer at an edge is known from the array alone.
 */
static void expect_edges_by_construction(const struct mv_range_table *t,
					 const struct mv_range *r, size_t n)
{
	struct mv_range_hint hint = MV_RANGE_HINT_INIT;

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
}

/* Large n: every edge of 100000 ranges, checked by construction. */
static void large_table_finds_every_edge(void **state)
{
	const size_t n = 100000;
	struct mv_range *r = malloc(n * sizeof(*r));
	struct mv_range_table *t;

	(void)state;
	assert_non_null(r);
	random_ranges(r, n);
	t = table_new(r, n);
	expect_edges_by_construction(t, r, n);
	mv_range_table_free(t);
	free(r);
}

/* ---- skewed layouts and the bucket index ------------------------------ */

/* [first, first + size - 1] with payload @i. */
static struct mv_range range_of(uint64_t first, uint64_t size, size_t i)
{
	return (struct mv_range){ first, first + size - 1, { .idx = i } };
}

/*
 * Skewed layouts of n >= 2 ranges, each a case the bucket index must
 * leave to the tree or get right at its limits.
 */
enum layout {
	/* n - 1 one-byte ranges at 0.., one at UINT64_MAX: all in bucket 0 */
	L_PACKED_LOW,
	/* one range at 0, n - 1 tiny ones packed just below UINT64_MAX */
	L_PACKED_HIGH,
	/* tiny ranges on both sides of one range of about 2^63 */
	L_GIANT_AND_TINY,
	/* n touching ranges of random sizes covering [0, UINT64_MAX] */
	L_WHOLE_SPACE,
	/* clusters of 1..6 touching pages, far apart: full and crowded buckets */
	L_CLUSTERS,
	/* ranges starting on multiples of 2^24, which are bucket starts */
	L_ALIGNED,
	/* random_ranges() at a random scale, slid to a random base */
	L_RANDOM_SPAN,
	NR_LAYOUTS
};

static const char *const layout_names[] = {
	"packed-low", "packed-high", "giant-and-tiny", "whole-space",
	"clusters",   "aligned",     "random-span",
};

static void make_layout(enum layout l, struct mv_range *r, size_t n)
{
	uint64_t at = 0;
	size_t i;

	switch (l) {
	case L_PACKED_LOW:
		for (i = 0; i + 1 < n; i++)
			r[i] = range_of(2 * i, 1, i);
		r[n - 1] = range_of(UINT64_MAX, 1, n - 1);
		break;
	case L_PACKED_HIGH:
		r[0] = range_of(0, 0x1000, 0);
		for (i = 1; i < n; i++)
			r[i] = range_of(UINT64_MAX - 3 * (n - i) + 1, 2, i);
		break;
	case L_GIANT_AND_TINY:
		for (i = 0; i < n / 2; i++)
			r[i] = range_of(0x1000 + 0x2000 * i, 0x1000, i);
		at = r[n / 2 - 1].last + 1 + rnd() % 4;
		r[n / 2] = range_of(at, 1ull << 63, n / 2);
		at = r[n / 2].last + 1;
		for (i = n / 2 + 1; i < n; i++) {
			r[i] = range_of(at + rnd() % 2, 1 + rnd() % 8, i);
			at = r[i].last + 1;
		}
		break;
	case L_WHOLE_SPACE:
		for (i = 0; i < n; i++) {
			r[i].first = at;
			r[i].idx = i;
			/* leave each remaining range at least one byte */
			at += 1 + rnd() % ((UINT64_MAX - at - (n - 1 - i)) /
						   (n - i) * 2 +
					   1);
			r[i].last = i + 1 < n ? at - 1 : UINT64_MAX;
		}
		break;
	case L_CLUSTERS:
		for (i = 0; i < n;) {
			size_t c = 1 + rnd() % 6;

			at += 1ull << (20 + rnd() % 12);
			for (; c > 0 && i < n; c--, i++) {
				r[i] = range_of(at, 0x1000, i);
				at += 0x1000;
			}
		}
		break;
	case L_ALIGNED:
		for (i = 0; i < n; i++)
			r[i] = range_of((i + 1) << 24, 1ull << (rnd() % 25), i);
		break;
	default: {
		uint64_t shift, base;

		random_ranges(r, n);
		shift = rnd() % 64;
		for (i = 0; i < n; i++) {
			r[i].first >>= shift;
			r[i].last >>= shift;
		}
		/* shifting may merge neighbours: respace them */
		for (i = 1; i < n; i++) {
			uint64_t size = r[i].last - r[i].first;

			if (r[i].first <= r[i - 1].last) {
				r[i].first = r[i - 1].last + 1;
				r[i].last = r[i].first + size;
			}
		}
		/* slide by a random amount that keeps it in the space */
		base = UINT64_MAX - r[n - 1].last;
		base = base ? rnd() % base : 0;
		for (i = 0; i < n; i++) {
			r[i].first += base;
			r[i].last += base;
		}
		break;
	}
	}
}

/*
 * The addresses where the bucket index changes its mind: each bucket's
 * start and its neighbours (at most 2000 buckets spread over them all, or
 * 200 when n is large and the linear scan slow).
 */
static void expect_bucket_edges(const struct mv_range_table *t,
				const struct mv_range *r, size_t n)
{
	size_t buckets, step;

	if (!t->bucket)
		return;
	buckets = (size_t)(t->span >> t->shift) + 1;
	step = buckets / (n <= 2000 ? 2000 : 200) + 1;
	for (size_t b = 0; b < buckets; b += step) {
		uint64_t start = t->base + ((uint64_t)b << t->shift);

		expect_same(t, r, n, start - 1, NULL);
		expect_same(t, r, n, start, NULL);
		expect_same(t, r, n, start + 1, NULL);
	}
	expect_same(t, r, n, t->base + t->span, NULL);
	if (t->base + t->span < UINT64_MAX)
		expect_same(t, r, n, t->base + t->span + 1, NULL);
}

/* One layout at one n, against the linear scan. */
static void check_layout(enum layout l, struct mv_range *r, size_t n)
{
	struct mv_range_hint hint = MV_RANGE_HINT_INIT;
	struct mv_range_table *t;

	make_layout(l, r, n);
	for (size_t i = 0; i < n; i++)
		if (r[i].first > r[i].last ||
		    (i > 0 && r[i].first <= r[i - 1].last))
			fail_msg("layout %s n=%zu: bad range %zu",
				 layout_names[l], n, i);
	t = table_new(r, n);
	if (n <= 2000)
		expect_edges(t, r, n, &hint);
	else
		expect_edges_by_construction(t, r, n);
	expect_bucket_edges(t, r, n);
	for (int k = 0; k < (n <= 2000 ? 300 : 100); k++) {
		uint64_t span = r[n - 1].last - r[0].first;

		expect_same(t, r, n, rnd(), &hint);
		expect_same(t, r, n, r[0].first + rnd() % (span ? span : 1),
			    &hint);
		/* near a random range, where the small ones are */
		expect_same(t, r, n, r[rnd() % n].first + rnd() % 64 - 32,
			    &hint);
	}
	mv_range_table_free(t);
}

static void skewed_layouts_match_linear_scan(void **state)
{
	static const size_t sizes[] = {
		2, 8, 9, 10, 16, 17, 33, 100, 1000, 4097
	};
	struct mv_range *r = malloc(4097 * sizeof(*r));

	(void)state;
	assert_non_null(r);
	for (int l = 0; l < NR_LAYOUTS; l++)
		for (size_t s = 0; s < ARRAY_SIZE(sizes); s++)
			for (int rep = 0; rep < 3; rep++)
				check_layout(l, r, sizes[s]);
	free(r);
}

/* n = 100000 in the skewed layouts: edges by construction, the rest linear. */
static void large_skewed_layouts_are_right(void **state)
{
	const size_t n = 100000;
	struct mv_range *r = malloc(n * sizeof(*r));

	(void)state;
	assert_non_null(r);
	for (int l = 0; l < NR_LAYOUTS; l++)
		check_layout(l, r, n);
	free(r);
}

/*
 * The bucket index takes at most 2n + 1 entries, and an even layout is
 * answered without the tree: each bucket holds few starts.
 */
static void bucket_index_is_small_and_even_layouts_fit_it(void **state)
{
	const size_t sizes[] = { 9, 32, 100, 509, 4096, 32768, 100000 };
	struct mv_range *r = malloc(100000 * sizeof(*r));

	(void)state;
	assert_non_null(r);
	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		const size_t n = sizes[s];
		struct mv_range_table *t;
		size_t buckets;

		/* bench/lookup's layout: 64 MiB regions, 2 MiB gaps */
		for (size_t i = 0; i < n; i++)
			r[i] = range_of(i * (66ull << 20), 64ull << 20, i);
		t = table_new(r, n);
		assert_non_null(t->bucket);
		buckets = (size_t)(t->span >> t->shift) + 1;
		assert_true(buckets <= 2 * n);
		assert_true(buckets >= n / 2);
		for (size_t b = 0; b < buckets; b++)
			assert_true(t->bucket[b + 1] - t->bucket[b] <=
				    MV_RANGE_TABLE_BUCKET_SCAN);
		mv_range_table_free(t);
	}
	free(r);
}

/*
 * What a table of more than UINT32_MAX ranges gets, tried on a small one:
 * a two-bucket index whose bounds are 2^31 apart sends every address to
 * the tree, which gives the same answers.
 */
static void two_bucket_tree_only_index_uses_the_tree(void **state)
{
	static const uint32_t tree_only[3] = { 0, 0x80000000u, 0 };
	struct mv_range r[300];
	struct mv_range_table *t;

	(void)state;
	make_layout(L_RANDOM_SPAN, r, ARRAY_SIZE(r));
	t = table_new(r, ARRAY_SIZE(r));
	t->bucket = tree_only;
	t->shift = 63;
	assert_int_equal(mv_range_table_check(t), -EINVAL); /* n is small */
	expect_edges(t, r, ARRAY_SIZE(r), NULL);
	for (int k = 0; k < 1000; k++)
		expect_same(t, r, ARRAY_SIZE(r), rnd(), NULL);
	mv_range_table_free(t);
}

/* mv_range_table_check() notices a bucket index that disagrees. */
static void check_catches_a_corrupt_bucket_index(void **state)
{
	struct mv_range r[1000];
	struct mv_range_table *t;
	uint32_t *bucket;
	size_t buckets;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(r); i++)
		r[i] = range_of(0x100000 * i, 0x1000, i);
	t = table_new(r, ARRAY_SIZE(r));
	bucket = (uint32_t *)t->bucket;
	buckets = (size_t)(t->span >> t->shift) + 1;
	for (size_t b = 0; b <= buckets; b += 97) {
		bucket[b]++;
		assert_int_equal(mv_range_table_check(t), -EINVAL);
		bucket[b]--;
		assert_int_equal(mv_range_table_check(t), 0);
	}
	t->shift++;
	assert_int_equal(mv_range_table_check(t), -EINVAL);
	t->shift--;
	t->span--;
	assert_int_equal(mv_range_table_check(t), -EINVAL);
	t->span++;
	t->base++;
	assert_int_equal(mv_range_table_check(t), -EINVAL);
	t->base--;
	t->ranges[ARRAY_SIZE(r)].first = 0; /* the padding */
	assert_int_equal(mv_range_table_check(t), -EINVAL);
	t->ranges[ARRAY_SIZE(r)].first = UINT64_MAX;
	assert_int_equal(mv_range_table_check(t), 0);
	mv_range_table_free(t);
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
		cmocka_unit_test(skewed_layouts_match_linear_scan),
		cmocka_unit_test(large_skewed_layouts_are_right),
		cmocka_unit_test(bucket_index_is_small_and_even_layouts_fit_it),
		cmocka_unit_test(two_bucket_tree_only_index_uses_the_tree),
		cmocka_unit_test(check_catches_a_corrupt_bucket_index),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
