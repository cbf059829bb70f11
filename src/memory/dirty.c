// SPDX-License-Identifier: MIT
/*
 * Dirty tracking: the per-client bitmaps of a RAM block (one bit per 4 KiB
 * page), set by writes and accelerators from any thread and taken by their
 * consumers with an atomic test-and-clear (reference §3.9).
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

#define PAGE_BITS 12
#define BITS_PER_LONG (sizeof(unsigned long) * 8)

/* Pages of @b's max_length: the bits of each of its bitmaps. */
static uint64_t block_pages(const struct mv_ramblock *b)
{
	return (b->max_length >> PAGE_BITS) +
	       !!(b->max_length & ((1ull << PAGE_BITS) - 1));
}

/*
 * The pages [*first, *end) of @b that [@addr, @addr + @size) touches,
 * clipped to the block; false when nothing is left.
 */
static bool page_span(const struct mv_ramblock *b, uint64_t addr, uint64_t size,
		      uint64_t *first, uint64_t *end)
{
	uint64_t last;

	if (!size)
		return false;
	last = size - 1 > UINT64_MAX - addr ? UINT64_MAX : addr + size - 1;
	*first = addr >> PAGE_BITS;
	*end = (last >> PAGE_BITS) + 1;
	if (*end > block_pages(b))
		*end = block_pages(b);
	return *first < *end;
}

/*
 * Walk the bits [@first, @end) one word at a time:
 *
 *   word w:  |.....xxxxxxxx|   bits of the span in w, as a mask
 *                 ^off
 * @fn gets the word and the mask and returns whether to stop.
 */
static bool span_walk(unsigned long *map, uint64_t first, uint64_t end,
		      bool (*fn)(unsigned long *word, unsigned long mask,
				 void *arg),
		      void *arg)
{
	uint64_t bit = first;

	while (bit < end) {
		unsigned off = (unsigned)(bit % BITS_PER_LONG);
		uint64_t n = BITS_PER_LONG - off;
		unsigned long mask;

		if (n > end - bit)
			n = end - bit;
		mask = n == BITS_PER_LONG ? ~0ul : ((1ul << n) - 1) << off;
		if (fn(&map[bit / BITS_PER_LONG], mask, arg))
			return true;
		bit += n;
	}
	return false;
}

static bool word_test(unsigned long *word, unsigned long mask, void *arg)
{
	(void)arg;
	return __atomic_load_n(word, __ATOMIC_ACQUIRE) & mask;
}

static bool word_set(unsigned long *word, unsigned long mask, void *arg)
{
	(void)arg;
	__atomic_fetch_or(word, mask, __ATOMIC_SEQ_CST);
	return false;
}

static bool word_clear(unsigned long *word, unsigned long mask, void *arg)
{
	(void)arg;
	__atomic_fetch_and(word, ~mask, __ATOMIC_SEQ_CST);
	return false;
}

/* The block behind @mr, or NULL (containers, aliases, I/O). */
static struct mv_ramblock *region_block(const struct mv_region *mr)
{
	return mr ? mr->block : NULL;
}

bool mv_region_get_dirty(struct mv_region *mr, uint64_t addr, uint64_t size,
			 enum mv_dirty_client client)
{
	struct mv_ramblock *b = region_block(mr);
	uint64_t first, end;

	if (!b || (unsigned)client >= MV_DIRTY_NR_CLIENTS ||
	    !page_span(b, addr, size, &first, &end))
		return false;
	return span_walk(b->dirty[client], first, end, word_test, NULL);
}

void mv_region_set_dirty_mask(struct mv_region *mr, uint64_t addr,
			      uint64_t size, uint8_t mask)
{
	struct mv_ramblock *b = region_block(mr);
	uint64_t first, end;
	size_t c;

	if (!mask || !b || !page_span(b, addr, size, &first, &end))
		return;
	for (c = 0; c < MV_DIRTY_NR_CLIENTS; c++)
		if (mask & (1u << c))
			span_walk(b->dirty[c], first, end, word_set, NULL);
}

void mv_region_set_dirty(struct mv_region *mr, uint64_t addr, uint64_t size)
{
	mv_region_set_dirty_mask(mr, addr, size,
				 (1u << MV_DIRTY_NR_CLIENTS) - 1);
}

void mv_region_reset_dirty(struct mv_region *mr, uint64_t addr, uint64_t size,
			   enum mv_dirty_client client)
{
	struct mv_ramblock *b = region_block(mr);
	uint64_t first, end;

	if (!b || (unsigned)client >= MV_DIRTY_NR_CLIENTS ||
	    !page_span(b, addr, size, &first, &end))
		return;
	span_walk(b->dirty[client], first, end, word_clear, NULL);
}

/*
 * OR the word @bits into @map at bit @pos, dropping bits at or past
 * @nbits.  Unless @pos is word-aligned the bits straddle two words:
 *
 *   bits:        [hhhhllll]            (l: the low BITS_PER_LONG - s)
 *   map:   |llll....|....hhhh|  ->  word pos/64 gets bits << s,
 *                                   the next one bits >> (64 - s)
 */
static void bits_put(unsigned long *map, uint64_t nbits, uint64_t pos,
		     unsigned long bits, bool atomic)
{
	unsigned s = (unsigned)(pos % BITS_PER_LONG);
	uint64_t w = pos / BITS_PER_LONG;
	unsigned long part[2] = { bits << s,
				  s ? bits >> (BITS_PER_LONG - s) : 0 };
	int i;

	for (i = 0; i < 2; i++, w++) {
		uint64_t base = w * BITS_PER_LONG;

		if (base >= nbits || !part[i])
			continue;
		if (nbits - base < BITS_PER_LONG)
			part[i] &= (1ul << (nbits - base)) - 1;
		if (atomic)
			__atomic_fetch_or(&map[w], part[i], __ATOMIC_SEQ_CST);
		else
			map[w] |= part[i];
	}
}

/* A word of a little-endian bitmap in host order. */
static unsigned long le_word(unsigned long w)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return sizeof(w) == 8 ? (unsigned long)__builtin_bswap64(w) :
				(unsigned long)__builtin_bswap32(w);
#else
	return w;
#endif
}

/*
 * cpu_physical_memory_set_dirty_lebitmap(): bit i is page i from @addr's
 * page; bits past @npages and pages past the block are ignored.
 */
void mv_region_set_dirty_bitmap(struct mv_region *mr, uint64_t addr,
				const unsigned long *bitmap, uint64_t npages)
{
	struct mv_ramblock *b = region_block(mr);
	uint64_t first = addr >> PAGE_BITS, i, words;
	size_t c;

	if (!b || !bitmap || first >= block_pages(b))
		return;
	if (npages > block_pages(b) - first)
		npages = block_pages(b) - first;
	words = npages / BITS_PER_LONG + !!(npages % BITS_PER_LONG);
	for (i = 0; i < words; i++) {
		unsigned long w = le_word(bitmap[i]);
		uint64_t left = npages - i * BITS_PER_LONG;
		uint64_t pos = first + i * BITS_PER_LONG;

		if (left < BITS_PER_LONG)
			w &= (1ul << left) - 1;
		if (!w)
			continue;
		for (c = 0; c < MV_DIRTY_NR_CLIENTS; c++)
			bits_put(b->dirty[c], block_pages(b), pos, w, true);
	}
}

/* Arguments of word_take(): where the taken bits go. */
struct take {
	struct mv_dirty_snapshot *snap;
	uint64_t first; /* the bit of snap->bitmap[0] in the block map */
	uint64_t at;	/* the bit of the word being taken */
};

/*
 * Test-and-clear the masked bits in one atomic operation, so a bit set
 * concurrently is either in this snapshot or still set afterwards.
 */
static bool word_take(unsigned long *word, unsigned long mask, void *arg)
{
	struct take *t = arg;
	unsigned long old = __atomic_fetch_and(word, ~mask, __ATOMIC_SEQ_CST);
	uint64_t base = t->at - t->at % BITS_PER_LONG;
	unsigned long got = (old & mask) >> (t->at - base);

	bits_put(t->snap->bitmap, t->snap->npages, t->at - t->first, got,
		 false);
	t->at = base + BITS_PER_LONG;
	return false;
}

static int snapshot_alloc(struct mv_machine *m, uint64_t addr, uint64_t npages,
			  struct mv_dirty_snapshot **out)
{
	uint64_t words = npages / BITS_PER_LONG + !!(npages % BITS_PER_LONG);
	struct mv_dirty_snapshot *snap;

	snap = mv_zalloc(m, sizeof(*snap));
	if (!snap)
		return -ENOMEM;
	snap->start = addr & ~((1ull << PAGE_BITS) - 1);
	snap->npages = npages;
	snap->bitmap = mv_zalloc(m, words * sizeof(unsigned long));
	if (!snap->bitmap)
		goto err_free_snap;
	*out = snap;
	return 0;

err_free_snap:
	free(snap);
	return -ENOMEM;
}

/*
 * memory_region_snapshot_and_clear_dirty() for the pages [@addr, @addr +
 * @size) touches, clipped to the block (an empty snapshot past its end).
 * QEMU rounds out to 64-page words and clears them whole; we take and
 * clear exactly the pages asked for.
 */
int mv_region_snapshot_and_clear_dirty(struct mv_region *mr, uint64_t addr,
				       uint64_t size,
				       enum mv_dirty_client client,
				       struct mv_dirty_snapshot **out)
{
	struct mv_ramblock *b = region_block(mr);
	uint64_t first = 0, end = 0;
	struct take t;
	int ret;

	if (!b || !out || (unsigned)client >= MV_DIRTY_NR_CLIENTS)
		return -EINVAL;
	if (!page_span(b, addr, size, &first, &end))
		end = first = addr >> PAGE_BITS;
	ret = snapshot_alloc(mr->machine, addr, end - first, out);
	if (ret)
		return ret;
	t = (struct take){ .snap = *out, .first = first, .at = first };
	span_walk(b->dirty[client], first, end, word_take, &t);
	return 0;
}

/* memory_region_snapshot_get_dirty(); pages outside the snapshot: clean. */
bool mv_dirty_snapshot_get(const struct mv_dirty_snapshot *snap, uint64_t addr,
			   uint64_t size)
{
	uint64_t base, first, last;

	if (!snap || !size || !snap->npages)
		return false;
	base = snap->start >> PAGE_BITS;
	last = size - 1 > UINT64_MAX - addr ? UINT64_MAX : addr + size - 1;
	first = addr >> PAGE_BITS;
	last >>= PAGE_BITS;
	if (last < base)
		return false;
	first = first < base ? 0 : first - base;
	last -= base;
	if (first >= snap->npages)
		return false;
	if (last >= snap->npages)
		last = snap->npages - 1;
	return span_walk(snap->bitmap, first, last + 1, word_test, NULL);
}

void mv_dirty_snapshot_free(struct mv_dirty_snapshot *snap)
{
	if (!snap)
		return;
	free(snap->bitmap);
	free(snap);
}
