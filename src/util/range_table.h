/* SPDX-License-Identifier: MIT */
/*
 * The range table: one immutable, sorted table of non-overlapping 64-bit
 * ranges that answers every "which range holds this address" question
 * (flat-view dispatch, slot lookup, vhost-user translation, reverse HVA
 * lookup) in O(log n), with a per-reader last-hit hint.
 */
#ifndef MV_UTIL_RANGE_TABLE_H
#define MV_UTIL_RANGE_TABLE_H

#include <stddef.h>
#include <stdint.h>

/*
 * struct mv_range - the inclusive range [@first, @last] and its payload.
 *
 * Inclusive bounds let [0, UINT64_MAX] describe the whole 2^64 space
 * without a 128-bit size.  The payload is either a pointer (@ptr) or a
 * small number (@idx, e.g. an index into the caller's own array); the
 * table copies it and never interprets it.
 *
 * Invariant: @first <= @last.
 */
struct mv_range {
	uint64_t first;
	uint64_t last;
	union {
		void *ptr;
		uintptr_t idx;
	};
};

/* Up to this many ranges, a lookup scans the keys instead of the tree. */
#define MV_RANGE_TABLE_SCAN_MAX 8

/*
 * In larger tables, an address whose bucket holds at most this many range
 * starts is found by comparing them; a fuller bucket (skewed layouts)
 * sends it to the tree.
 */
#define MV_RANGE_TABLE_BUCKET_SCAN 2

struct mv_range_index;

/*
 * struct mv_range_table - built once by mv_range_table_new(), then only
 * read.  The fields are private: they are in the header only so that the
 * common cases of mv_range_table_lookup() are inline and reach the ranges
 * without a call.
 * @n: the number of ranges.
 * @bucket: for n > MV_RANGE_TABLE_SCAN_MAX, the bucket index, else NULL:
 *          [@base, @base + @span] is cut into buckets of 2^@shift
 *          addresses, bucket b starting at @base + (b << @shift), and
 *          @bucket[b] is the index of the last range whose first is <=
 *          the start of bucket b, for b = 0 .. @span >> @shift, then one
 *          more entry, n - 1.  Between about n and 2n buckets
 *          (range_table.c).  Tables of more than UINT32_MAX ranges share
 *          a static two-bucket index that sends every address to the tree.
 * @base: ranges[0].first (when n > MV_RANGE_TABLE_SCAN_MAX, else 0).
 * @span: ranges[n - 1].last - @base (likewise).
 * @shift: log2 of the bucket size (likewise).
 * @index: the search tree over ranges[].first (range_table.c), or NULL
 *         when @n is 0.
 * @first: ranges[i].first for i < min(n, MV_RANGE_TABLE_SCAN_MAX), then
 *         UINT64_MAX: the keys of the fixed-length scan of small tables.
 * @ranges: the table's copy of the ranges, in the same allocation,
 *          followed by MV_RANGE_TABLE_BUCKET_SCAN padding ranges whose
 *          first is UINT64_MAX (so a bucket scan needs no bounds check).
 *
 * Invariants, checked by mv_range_table_new() and mv_range_table_check():
 *  - ranges[i].first <= ranges[i].last;
 *  - ranges[i].last < ranges[i + 1].first (sorted, disjoint; touching is
 *    allowed, overlapping is not);
 *  - @first, @base, @span, @shift, @bucket, the padding and @index are
 *    derived from ranges[] and agree with it.
 * After construction nothing writes to the table, so any number of threads
 * may look up concurrently without locks or shared writes.
 */
struct mv_range_table {
	size_t n;
	const uint32_t *bucket;
	uint64_t base;
	uint64_t span;
	unsigned int shift;
	const struct mv_range_index *index;
	uint64_t first[MV_RANGE_TABLE_SCAN_MAX];
	struct mv_range ranges[];
};

/*
 * struct mv_range_hint - a reader's memory of its last hit.
 *
 * Owned by the caller and private to one reader (a thread, a vCPU, a
 * device queue): lookups write it, so sharing one hint between threads
 * would bounce its cache line.  Zero-initialise it (or use
 * MV_RANGE_HINT_INIT) before first use.
 *
 * A hint may be used with any table, including one other than the table
 * it was filled by, or a table allocated at the address of a freed one:
 * the lookup bounds-checks @idx against the table at hand and accepts it
 * only when that table's range @idx contains the address.  Since ranges
 * are disjoint, a range that contains the address is the answer, so a
 * stale hint can cost a full search but can never give a wrong result.
 */
struct mv_range_hint {
	size_t idx;
};

#define MV_RANGE_HINT_INIT \
	{                  \
		0          \
	}

/**
 * mv_range_table_new() - build a table from a sorted array of ranges.
 * @ranges: @n ranges sorted by @first, disjoint (may be NULL when @n is 0).
 * @n: number of ranges; 0 gives an empty table.  No upper limit other than
 *     memory.
 * @out: receives the new table.
 *
 * The table copies @ranges; the caller keeps ownership of the array.  The
 * caller owns *@out and frees it with mv_range_table_free().  Payloads are
 * copied as they are: if they point to objects, keeping those alive is the
 * caller's business.
 *
 * Return: 0; -EINVAL if @out is NULL, @ranges is NULL with @n > 0, a range
 * has @first > @last, or the ranges are unsorted or overlap; -ENOMEM.
 * *@out is left untouched on error.
 */
int mv_range_table_new(const struct mv_range *ranges, size_t n,
		       struct mv_range_table **out);

/**
 * mv_range_table_free() - free a table.
 * @t: the table, or NULL.
 *
 * Pointers returned by lookups in @t are invalid afterwards.  Readers that
 * may still hold them must be gone (e.g. an RCU grace period) first.
 */
void mv_range_table_free(struct mv_range_table *t);

/**
 * mv_range_table_rank() - how many ranges start at or below an address.
 * @t: the table.
 * @addr: the address.
 *
 * The tree search behind mv_range_table_lookup() (for addresses its
 * bucket index leaves open), which is what callers want; also the index
 * of the first range above @addr.  O(log n), no branch on the keys; reads
 * only @t.
 *
 * Context: any thread, concurrently with other lookups; no locks.
 * Return: the number of ranges whose first is <= @addr, in [0, n].
 */
size_t mv_range_table_rank(const struct mv_range_table *t, uint64_t addr)
	__attribute__((pure));

/* True when @r contains @addr: one subtraction and compare each side. */
static inline int mv_range_has(const struct mv_range *r, uint64_t addr)
{
	return addr - r->first <= r->last - r->first;
}

/*
 * The one range of @t that may hold @addr: the last one whose first is <=
 * @addr.  Internal to mv_range_table_lookup(): for tables of more than
 * MV_RANGE_TABLE_SCAN_MAX ranges, and @addr in [t->base, t->base +
 * t->span].
 *
 * Bucket b of @addr is one subtraction and shift away.  Range lo =
 * bucket[b] starts at or below the bucket's start, so at or below @addr;
 * range bucket[b + 1] is at or beyond the answer.  When they are at most
 * MV_RANGE_TABLE_BUCKET_SCAN apart, the answer is lo plus the number of
 * the next MV_RANGE_TABLE_BUCKET_SCAN firsts that are <= @addr, at most
 * that distance: the padding past ranges[n - 1] counts only for
 * UINT64_MAX, in the last bucket, where the clamp to n - 1 drops it.  The
 * loads of bucket[b] and of the ranges are the only ones that depend on
 * another, and range lo and the firsts after it share their cache lines
 * with the answer.  A crowded bucket goes to the tree.
 */
static inline const struct mv_range *
mv_range_table_find_big(const struct mv_range_table *t, uint64_t addr)
{
	const size_t b = (size_t)((addr - t->base) >> t->shift);
	const uint32_t lo = t->bucket[b];
	const uint32_t d = t->bucket[b + 1] - lo;
	const struct mv_range *c = &t->ranges[lo];
	uint32_t k = 0;

	if (d > MV_RANGE_TABLE_BUCKET_SCAN)
		return &t->ranges[mv_range_table_rank(t, addr) - 1];
	for (unsigned int j = 1; j <= MV_RANGE_TABLE_BUCKET_SCAN; j++)
		k += c[j].first <= addr;
	k = k < d ? k : d; /* a cmov, where k == d is common */
	return c + k;
}

/**
 * mv_range_table_lookup() - find the range that contains an address.
 * @t: the table.
 * @addr: the address.
 * @hint: the caller's last-hit hint, or NULL.  Read, and on a hit may be
 *        updated; a miss leaves it unchanged.
 *
 * O(log n) in the worst case.  Inline, so the common cases cost no call:
 * a one-range table or a hit on the hinted range is one compare pair; a
 * table of at most MV_RANGE_TABLE_SCAN_MAX ranges is a branchless scan of
 * their keys; in larger tables, an address below the first range or above
 * the last is one compare, and one whose bucket holds at most
 * MV_RANGE_TABLE_BUCKET_SCAN range starts is a bucket read and as many
 * compares, without a branch on the keys.  Other addresses (crowded
 * buckets of skewed layouts) call mv_range_table_rank().
 *
 * The hint pays off when consecutive lookups tend to hit the same range
 * (a vCPU streaming through one RAM block); for addresses spread over many
 * ranges its check is a branch that mostly fails, so pass NULL.
 *
 * Context: any thread, concurrently with other lookups; no locks.
 * Return: the range of @t containing @addr, owned by @t and valid until
 * mv_range_table_free(@t); NULL if @addr falls in a hole (never a
 * neighbouring range).
 */
static inline const struct mv_range *
mv_range_table_lookup(const struct mv_range_table *t, uint64_t addr,
		      struct mv_range_hint *hint)
{
	const struct mv_range *r;

	/*
	 * QEMU's plain RAM: laid out first, and two compares, which run
	 * faster here than mv_range_has()'s subtractions
	 */
	if (__builtin_expect(t->n == 1, 1))
		return addr >= t->ranges[0].first && addr <= t->ranges[0].last ?
			       t->ranges :
			       NULL;
	if (hint && hint->idx < t->n &&
	    mv_range_has(&t->ranges[hint->idx], addr))
		return &t->ranges[hint->idx];
	if (t->n <= MV_RANGE_TABLE_SCAN_MAX) {
		const uint64_t *k = t->first;
		size_t pos;

		pos = (size_t)((k[0] <= addr) + (k[1] <= addr) +
			       (k[2] <= addr) + (k[3] <= addr) +
			       (k[4] <= addr) + (k[5] <= addr) +
			       (k[6] <= addr) + (k[7] <= addr));
		/* the padding counts only for addr == UINT64_MAX */
		pos = pos < t->n ? pos : t->n;
		/* range pos - 1 is the only one that can hold addr */
		if (pos == 0)
			return NULL;
		r = &t->ranges[pos - 1];
	} else {
		if (addr - t->base > t->span) /* below or above them all */
			return NULL;
		r = mv_range_table_find_big(t, addr);
	}
	if (addr > r->last)
		return NULL;
	if (hint)
		hint->idx = (size_t)(r - t->ranges);
	return r;
}

/**
 * mv_range_table_count() - number of ranges in a table.
 * @t: the table.
 *
 * Return: n as given to mv_range_table_new().
 */
size_t mv_range_table_count(const struct mv_range_table *t);

/**
 * mv_range_table_at() - the i-th range, in address order.
 * @t: the table.
 * @i: the index.
 *
 * Return: the range, owned by @t; NULL if @i >= count.
 */
const struct mv_range *mv_range_table_at(const struct mv_range_table *t,
					 size_t i);

/**
 * mv_range_table_index() - the index of a range returned by @t.
 * @t: the table.
 * @r: a range returned by a lookup in, or mv_range_table_at() of, @t.
 *
 * Return: its index, in [0, count).
 */
size_t mv_range_table_index(const struct mv_range_table *t,
			    const struct mv_range *r);

/**
 * mv_range_table_check() - verify the invariants of a table.
 * @t: the table.
 *
 * For tests and debug builds: checks the ranges and that the search index
 * agrees with them.
 *
 * Return: 0, or -EINVAL if any invariant is broken (a bug).
 */
int mv_range_table_check(const struct mv_range_table *t);

/*
 * mv_range_table_for_each() - walk the ranges of @t in address order.
 * @r: a `const struct mv_range *` cursor.
 * @t: the table.
 */
#define mv_range_table_for_each(r, t)                      \
	for ((r) = mv_range_table_at((t), 0); (r) != NULL; \
	     (r) = mv_range_table_at((t), mv_range_table_index((t), (r)) + 1))

#endif /* MV_UTIL_RANGE_TABLE_H */
