// SPDX-License-Identifier: MIT
/*
 * The range table (range_table.h): a copy of the sorted ranges, a bucket
 * index that answers most addresses of large tables with two dependent
 * reads, and a static B+ tree over their `first` keys for the rest,
 * searched without branches on the keys (SIMD where the CPU has it), so
 * a lookup costs no misprediction whatever the address pattern.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86_SIMD 1
#include <immintrin.h>
#include <sys/platform/x86.h>
#endif

#include "range_table.h"

/*
 * The search index is a static B+ tree ("S+ tree") of the keys
 * first[0..n), B keys per node, B + 1 children per internal node, stored
 * layer by layer from the root down.  With B = 8 a node is one 64-byte
 * cache line, compared with x in one AVX-512 or two AVX2 instructions.
 *
 *   layer[0]          root: 1 node
 *   layer[1]          <= B + 1 nodes
 *   ...
 *   layer[height-1]   leaves: the sorted keys, padded with KEY_PAD
 *
 *   leaf node k holds first[kB .. kB + B)
 *   internal node k: key j = the smallest key below child k(B+1) + j + 1,
 *   children being numbered across their whole layer
 *
 * rank(node, x) = the number of keys <= x in the node.  Descending with
 * child = node(B+1) + rank ends in the leaf where x belongs, and
 * pos = leaf * B + rank is the number of keys <= x: range pos - 1 is the
 * only candidate, and it holds x iff x <= its last.
 *
 * Padding: missing keys are KEY_PAD (UINT64_MAX), so for x < UINT64_MAX
 * they never count, and the descent only enters children that hold at
 * least one real key: each layer needs no more nodes than that.  x ==
 * UINT64_MAX, the one address every key is <= to, is answered without the
 * tree (pos = n).
 *
 * Keys are stored with the sign bit flipped (BIAS), so that the signed
 * 64-bit compares of SSE4.2/AVX2 order them as unsigned numbers; every
 * variant compares them the same way.
 */
#define B 8
#define BIAS 0x8000000000000000ull
#define KEY_PAD (UINT64_MAX ^ BIAS)
#define CACHE_LINE 64
/* (B + 1)^MAX_HEIGHT leaves exceed any array that fits in memory. */
#define MAX_HEIGHT 24

/* How nodes are compared: chosen once per table from the CPU's features. */
enum rank_kind {
	RANK_SCALAR,
	RANK_AVX2,
	RANK_AVX512,
	NR_RANK_KINDS
};

/*
 * struct mv_range_index - the tree of a table with n >= 1 ranges.
 * @n: the table's n.
 * @kind: the node compare this CPU runs best.
 * @height: layers of the tree; @layer[h] points into @keys, root first;
 *          @nodes[h] is how many nodes layer h has.
 */
struct mv_range_index {
	size_t n;
	enum rank_kind kind;
	unsigned int height;
	const int64_t *layer[MAX_HEIGHT];
	size_t nodes[MAX_HEIGHT];
	int64_t *keys;
};

/* ---- node ranks ------------------------------------------------------ */

/* The number of keys <= @x in one node; branchless, unrolled. */
static inline size_t rank_scalar(const int64_t *k, int64_t x)
{
	return (size_t)((k[0] <= x) + (k[1] <= x) + (k[2] <= x) + (k[3] <= x) +
			(k[4] <= x) + (k[5] <= x) + (k[6] <= x) + (k[7] <= x));
}

/*
 * DEFINE_TREE_RANK() - a descent of the tree with node compare @rank,
 * which takes a node and @x_type built from the biased address by
 * @x_make; @attr gives the function the instruction set @rank needs.
 * The result is the number of keys <= the address.
 */
#define DEFINE_TREE_RANK(name, attr, x_type, x_make, rank)                   \
	attr static size_t name(const struct mv_range_index *t, int64_t key) \
	{                                                                    \
		const unsigned int leaf = t->height - 1;                     \
		const x_type x = x_make(key);                                \
		size_t node = 0;                                             \
                                                                             \
		for (unsigned int h = 0; h < leaf; h++)                      \
			node = node * (B + 1) +                              \
			       rank(t->layer[h] + node * B, x);              \
		return node * B + rank(t->layer[leaf] + node * B, x);        \
	}

#define SCALAR_X(key) (key)
DEFINE_TREE_RANK(tree_rank_scalar, , int64_t, SCALAR_X, rank_scalar)

#ifdef HAVE_X86_SIMD
#define TARGET_AVX2 __attribute__((target("avx2,popcnt")))
#define TARGET_AVX512 __attribute__((target("avx512f,popcnt")))

/* B - the number of keys > x: vpcmpgtq is the only 64-bit compare. */
TARGET_AVX2 static inline size_t rank_avx2(const int64_t *k, __m256i x)
{
	__m256i lo = _mm256_load_si256((const __m256i *)k);
	__m256i hi = _mm256_load_si256((const __m256i *)(k + 4));
	__m256d gt_lo = _mm256_castsi256_pd(_mm256_cmpgt_epi64(lo, x));
	__m256d gt_hi = _mm256_castsi256_pd(_mm256_cmpgt_epi64(hi, x));
	int gt = _mm256_movemask_pd(gt_lo) | _mm256_movemask_pd(gt_hi) << 4;

	return B - (size_t)__builtin_popcount((unsigned int)gt);
}

TARGET_AVX512 static inline size_t rank_avx512(const int64_t *k, __m512i x)
{
	return (size_t)__builtin_popcount(
		_mm512_cmple_epi64_mask(_mm512_load_si512(k), x));
}

DEFINE_TREE_RANK(tree_rank_avx2, TARGET_AVX2, __m256i, _mm256_set1_epi64x,
		 rank_avx2)
DEFINE_TREE_RANK(tree_rank_avx512, TARGET_AVX512, __m512i, _mm512_set1_epi64,
		 rank_avx512)
#endif

/* Whether this CPU (and its OS, which must save the registers) runs @k. */
static bool rank_kind_supported(enum rank_kind k)
{
#ifdef HAVE_X86_SIMD
	/*
	 * glibc's view of the CPU (computed at process start anyway):
	 * "active" also means the kernel saves the vector state.  Not
	 * __builtin_cpu_supports(): it links libgcc's CPU detection, a
	 * constructor costing ~90 us of CPUIDs at every start under
	 * kvm_pvm (docs/performance.md, VM start).
	 */
	switch (k) {
	case RANK_AVX512:
		return CPU_FEATURE_ACTIVE(AVX512F) &&
		       CPU_FEATURE_ACTIVE(POPCNT);
	case RANK_AVX2:
		return CPU_FEATURE_ACTIVE(AVX2) && CPU_FEATURE_ACTIVE(POPCNT);
	default:
		return true;
	}
#else
	return k == RANK_SCALAR;
#endif
}

/* The fastest node compare this machine runs. */
static enum rank_kind rank_kind_best(void)
{
	int k = NR_RANK_KINDS - 1;

	while (k > RANK_SCALAR && !rank_kind_supported(k))
		k--;
	return k;
}

/* The number of ranges whose first is <= @x, by node compare @kind. */
static size_t tree_rank(const struct mv_range_index *t, enum rank_kind kind,
			uint64_t x)
{
	if (x == UINT64_MAX)
		return t->n;
	switch (kind) {
#ifdef HAVE_X86_SIMD
	case RANK_AVX512:
		return tree_rank_avx512(t, (int64_t)(x ^ BIAS));
	case RANK_AVX2:
		return tree_rank_avx2(t, (int64_t)(x ^ BIAS));
#endif
	default:
		return tree_rank_scalar(t, (int64_t)(x ^ BIAS));
	}
}

size_t mv_range_table_rank(const struct mv_range_table *t, uint64_t addr)
{
	if (t->n == 0)
		return 0;
	return tree_rank(t->index, t->index->kind, addr);
}

/* ---- building the tree ----------------------------------------------- */

/*
 * The leaf position of the leftmost key below node @node of a layer
 * @depth levels above the leaves, or @n if that subtree holds no key.
 */
static size_t leftmost_pos(size_t node, unsigned int depth, size_t n)
{
	size_t pos = node * B; /* if this layer were the leaves */

	for (unsigned int d = 0; d < depth; d++) {
		if (pos >= n) /* also keeps pos * (B + 1) from overflowing */
			return n;
		pos *= B + 1;
	}
	return pos < n ? pos : n;
}

/* The biased key at leaf position @pos: first[pos], or padding. */
static int64_t key_at(const struct mv_range *ranges, size_t n, size_t pos)
{
	if (pos >= n)
		return (int64_t)KEY_PAD;
	return (int64_t)(ranges[pos].first ^ BIAS);
}

/*
 * Sizes of the layers, root first: the leaves need ceil(n / B) nodes and
 * a layer above needs ceil(below / (B + 1)).
 */
static int tree_shape(struct mv_range_index *t)
{
	size_t need[MAX_HEIGHT];
	unsigned int h = 0;

	need[0] = (t->n + B - 1) / B;
	while (need[h] > 1) {
		if (h + 1 == MAX_HEIGHT)
			return -ENOMEM;
		need[h + 1] = (need[h] + B) / (B + 1);
		h++;
	}
	t->height = h + 1;
	for (unsigned int i = 0; i < t->height; i++)
		t->nodes[i] = need[t->height - 1 - i];
	return 0;
}

/* Fill layer @i (root = 0) of the tree. */
static void tree_fill_layer(struct mv_range_index *t, int64_t *keys,
			    unsigned int i, const struct mv_range *ranges)
{
	const unsigned int depth = t->height - 1 - i;

	for (size_t k = 0; k < t->nodes[i]; k++) {
		for (unsigned int j = 0; j < B; j++) {
			size_t pos = k * B + j;

			if (depth > 0)
				pos = leftmost_pos(k * (B + 1) + j + 1,
						   depth - 1, t->n);
			keys[k * B + j] = key_at(ranges, t->n, pos);
		}
	}
}

/* The tree over @n >= 1 sorted @ranges; *@out owned by the caller. */
static int tree_new(const struct mv_range *ranges, size_t n,
		    struct mv_range_index **out)
{
	struct mv_range_index *t;
	size_t total = 0;
	int64_t *keys;
	int ret;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->n = n;
	t->kind = rank_kind_best();
	ret = tree_shape(t);
	if (ret)
		goto err_free_index;
	for (unsigned int i = 0; i < t->height; i++)
		total += t->nodes[i];
	keys = aligned_alloc(CACHE_LINE, total * B * sizeof(*keys));
	if (!keys) {
		ret = -ENOMEM;
		goto err_free_index;
	}
	t->keys = keys;
	for (unsigned int i = 0; i < t->height; i++) {
		tree_fill_layer(t, keys, i, ranges);
		t->layer[i] = keys;
		keys += t->nodes[i] * B;
	}
	*out = t;
	return 0;

err_free_index:
	free(t);
	return ret;
}

static void tree_free(const struct mv_range_index *t)
{
	if (!t)
		return;
	free(t->keys);
	free((void *)t);
}

/* ---- the bucket index ------------------------------------------------ */

/*
 * Tables of more than MV_RANGE_TABLE_SCAN_MAX ranges are first cut by
 * address: [base, base + span], from the first range's first to the last
 * range's last, into 2^k equal buckets, 2^k being the power of two in
 * (n, 2n], of 2^shift addresses each: shift = bit_width(span) - k, or 0
 * when the span is narrower than 2^k.  span = last - first fits in 64
 * bits even for the whole space, and shift <= 64 - 4.  Only the buckets
 * up to the one holding base + span exist, at most 2^k <= 2n, so the
 * index takes at most (2n + 1) * 4 bytes next to the 24n of the ranges.
 *
 * bucket[b] is the index of the last range starting at or below the
 * start of bucket b (range 0 starts at base, so there is one), and the
 * entry after the last bucket is n - 1.  An address in bucket b lies in
 * range bucket[b] or in one of those starting inside the bucket, which
 * end at range bucket[b + 1]: mv_range_table_find_big() (range_table.h)
 * compares the few firsts after bucket[b] when the two entries are at
 * most MV_RANGE_TABLE_BUCKET_SCAN apart, which on an even layout is every
 * bucket, and searches the tree otherwise.  So a lookup reads two entries
 * of one cache line (rarely two), then the lines of the candidate ranges,
 * where the tree reads one line per layer before them; and the worst case
 * stays the tree's O(log n), plus one read.
 */

/* The number of significant bits of @x: 0 for 0, 64 for >= 2^63. */
static unsigned int bit_width(uint64_t x)
{
	return x ? 64 - (unsigned int)__builtin_clzll(x) : 0;
}

/* The shift of the bucket index of @n > MV_RANGE_TABLE_SCAN_MAX ranges. */
static unsigned int bucket_shift(size_t n, uint64_t span)
{
	unsigned int k = bit_width(n);
	unsigned int w = bit_width(span);

	return w > k ? w - k : 0;
}

/* How many entries the bucket index of @t has: one more than buckets. */
static size_t bucket_entries(const struct mv_range_table *t)
{
	return (size_t)(t->span >> t->shift) + 2;
}

/*
 * Whether a table of @n ranges gets a bucket index of its own: small
 * tables scan their keys, and the indexes must fit in 32 bits.
 */
static bool wants_buckets(size_t n)
{
	return n > MV_RANGE_TABLE_SCAN_MAX && n <= UINT32_MAX;
}

/*
 * The index of tables of more than UINT32_MAX ranges: with a shift of 63
 * there are two buckets, and both bounds are 2^31 apart, more than any
 * scan, so every address goes to the tree.
 */
#define TREE_ONLY_SHIFT 63
static const uint32_t tree_only[3] = { 0, 0x80000000u, 0 };

/*
 * The index of the last range of @t whose first is <= @addr, moving @i
 * up to it; @addr >= the first range's first.
 */
static size_t last_at_or_below(const struct mv_range_table *t, size_t i,
			       uint64_t addr)
{
	while (i + 1 < t->n && t->ranges[i + 1].first <= addr)
		i++;
	return i;
}

/* Fill @bucket for @t: the last range starting at each bucket's start. */
static void bucket_fill(const struct mv_range_table *t, uint32_t *bucket)
{
	const size_t last = bucket_entries(t) - 1;
	size_t i = 0;

	for (size_t b = 0; b < last; b++) {
		/* <= base + span: no overflow */
		uint64_t start = t->base + ((uint64_t)b << t->shift);

		i = last_at_or_below(t, i, start);
		bucket[b] = (uint32_t)i;
	}
	bucket[last] = (uint32_t)(t->n - 1); /* its start may be 2^64 */
}

/* The bucket index agrees with the ranges (mv_range_table_check()). */
static bool buckets_agree(const struct mv_range_table *t)
{
	size_t entries;

	if (t->n <= MV_RANGE_TABLE_SCAN_MAX)
		return !t->bucket && !t->base && !t->span && !t->shift;
	if (t->base != t->ranges[0].first ||
	    t->span != t->ranges[t->n - 1].last - t->base)
		return false;
	if (!wants_buckets(t->n))
		return t->bucket == tree_only && t->shift == TREE_ONLY_SHIFT;
	if (!t->bucket || t->shift != bucket_shift(t->n, t->span))
		return false;
	entries = bucket_entries(t);
	if (entries - 1 > (size_t)1 << bit_width(t->n))
		return false; /* the memory bound */
	for (size_t b = 0; b + 1 < entries; b++) {
		uint64_t start = t->base + ((uint64_t)b << t->shift);
		size_t i = t->bucket[b];

		/* range i is the last to start at or below start */
		if (i >= t->n || t->ranges[i].first > start ||
		    (i + 1 < t->n && t->ranges[i + 1].first <= start))
			return false;
	}
	return t->bucket[entries - 1] == t->n - 1;
}

/* ---- the table ------------------------------------------------------- */

static bool ranges_valid(const struct mv_range *ranges, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ranges[i].first > ranges[i].last)
			return false;
		if (i > 0 && ranges[i].first <= ranges[i - 1].last)
			return false;
	}
	return true;
}

int mv_range_table_new(const struct mv_range *ranges, size_t n,
		       struct mv_range_table **out)
{
	const size_t pad = MV_RANGE_TABLE_BUCKET_SCAN;
	struct mv_range_index *index = NULL;
	struct mv_range_table *t;
	uint64_t base = 0, span = 0;
	unsigned int shift = 0;
	size_t size, entries = 0;
	int ret;

	if (!out || (n && !ranges) || !ranges_valid(ranges, n))
		return -EINVAL;
	/* 24 bytes per range and padding, 4 per bucket entry (<= 2n + 1) */
	if (n > (SIZE_MAX - sizeof(*t)) / (sizeof(*ranges) + 16) - pad)
		return -ENOMEM;
	if (n > MV_RANGE_TABLE_SCAN_MAX) {
		base = ranges[0].first;
		span = ranges[n - 1].last - base;
		shift = wants_buckets(n) ? bucket_shift(n, span) :
					   TREE_ONLY_SHIFT;
		if (wants_buckets(n))
			entries = (size_t)(span >> shift) + 2;
	}
	if (n) {
		ret = tree_new(ranges, n, &index);
		if (ret)
			return ret;
	}
	size = sizeof(*t) + (n + pad) * sizeof(*ranges);
	t = malloc(size + entries * sizeof(*t->bucket));
	if (!t) {
		tree_free(index);
		return -ENOMEM;
	}
	t->n = n;
	t->base = base;
	t->span = span;
	t->shift = shift;
	t->index = index;
	for (size_t i = 0; i < MV_RANGE_TABLE_SCAN_MAX; i++)
		t->first[i] = i < n ? ranges[i].first : UINT64_MAX;
	if (n)
		memcpy(t->ranges, ranges, n * sizeof(*ranges));
	for (size_t i = n; i < n + pad; i++)
		t->ranges[i] = (struct mv_range){ .first = UINT64_MAX,
						  .last = UINT64_MAX };
	t->bucket = n > MV_RANGE_TABLE_SCAN_MAX ? tree_only : NULL;
	if (entries) {
		uint32_t *bucket = (uint32_t *)((char *)t + size);

		bucket_fill(t, bucket);
		t->bucket = bucket;
	}
	*out = t;
	return 0;
}

void mv_range_table_free(struct mv_range_table *t)
{
	if (!t)
		return;
	tree_free(t->index);
	free(t);
}

size_t mv_range_table_count(const struct mv_range_table *t)
{
	return t->n;
}

const struct mv_range *mv_range_table_at(const struct mv_range_table *t,
					 size_t i)
{
	return i < t->n ? &t->ranges[i] : NULL;
}

size_t mv_range_table_index(const struct mv_range_table *t,
			    const struct mv_range *r)
{
	return (size_t)(r - t->ranges);
}

/* Every node compare this machine runs finds range @i at its edges. */
static bool tree_agrees(const struct mv_range_table *t, size_t i)
{
	const struct mv_range *r = &t->ranges[i];

	for (int k = RANK_SCALAR; k < NR_RANK_KINDS; k++) {
		if (!rank_kind_supported(k))
			continue;
		if (tree_rank(t->index, k, r->first) != i + 1 ||
		    tree_rank(t->index, k, r->last) != i + 1)
			return false;
		if (r->first > 0 && tree_rank(t->index, k, r->first - 1) != i)
			return false;
	}
	return true;
}

/* The scan keys of small tables are the firsts, then padding. */
static bool scan_keys_agree(const struct mv_range_table *t)
{
	for (size_t i = 0; i < MV_RANGE_TABLE_SCAN_MAX; i++)
		if (t->first[i] != (i < t->n ? t->ranges[i].first : UINT64_MAX))
			return false;
	return true;
}

/*
 * mv_range_table_lookup() finds range @i at its edges, and a hole or the
 * range below just under it.
 */
static bool lookup_agrees(const struct mv_range_table *t, size_t i)
{
	const struct mv_range *r = &t->ranges[i];
	const struct mv_range *below = NULL;

	if (mv_range_table_lookup(t, r->first, NULL) != r ||
	    mv_range_table_lookup(t, r->last, NULL) != r)
		return false;
	if (r->first == 0)
		return true;
	if (i > 0 && t->ranges[i - 1].last == r->first - 1)
		below = r - 1;
	return mv_range_table_lookup(t, r->first - 1, NULL) == below;
}

/* The padding after the ranges stops a bucket scan at any address. */
static bool padding_agrees(const struct mv_range_table *t)
{
	for (size_t i = t->n; i < t->n + MV_RANGE_TABLE_BUCKET_SCAN; i++)
		if (t->ranges[i].first != UINT64_MAX)
			return false;
	return true;
}

int mv_range_table_check(const struct mv_range_table *t)
{
	if (!ranges_valid(t->ranges, t->n) || !scan_keys_agree(t) ||
	    !padding_agrees(t) || !buckets_agree(t))
		return -EINVAL;
	if ((t->n == 0) != (t->index == NULL))
		return -EINVAL;
	if (t->index && t->index->n != t->n)
		return -EINVAL;
	for (size_t i = 0; i < t->n; i++)
		if (!tree_agrees(t, i) || !lookup_agrees(t, i))
			return -EINVAL;
	return 0;
}
