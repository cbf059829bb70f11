/* SPDX-License-Identifier: MIT */
/*
 * Internals of the memory model shared by the src/memory files: the region,
 * address-space, flat-view and machine structures with their invariants.
 */
#ifndef MV_MEMORY_INTERNAL_H
#define MV_MEMORY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <urcu-bp.h>

#include <memvirt/memory.h>

#include "alloc.h"
#include "range_table.h"

/*
 * Memory a cache keeps for reuse (released chunks, index blocks, the event
 * log) is poisoned under ASan while cached, so a use after its release is
 * still reported.
 */
#if defined(__SANITIZE_ADDRESS__)
#define MV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MV_ASAN 1
#endif
#endif
#ifdef MV_ASAN
#include <sanitizer/asan_interface.h>
#define MV_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define MV_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define MV_POISON(p, n) ((void)(p), (void)(n))
#define MV_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

__extension__ typedef __int128 s128;
__extension__ typedef unsigned __int128 u128;

#define MV_2_64 ((u128)1 << 64)

/* QEMU's MR_SIZE(): the inclusive end offset of a size (0 and 1 alike). */
static inline uint64_t mv_size_last(u128 size)
{
	return size ? (uint64_t)(size - 1) : 0;
}

/* The API spelling of a size (UINT64_MAX = 2^64) to its value. */
static inline u128 mv_size_from_api(uint64_t size)
{
	return size == UINT64_MAX ? MV_2_64 : (u128)size;
}

struct mv_ramblock;

/* Walk @r's children in QEMU's list order (render order). */
#define mv_for_each_child(ch, r)           \
	for (size_t _i = (r)->nr_children; \
	     _i-- > 0 && ((ch) = (r)->children[_i], 1);)

/*
 * struct mv_region - one node of the region graph.
 * @children: QEMU's subregions list (priority descending, newest first
 *	      among equal priorities) stored REVERSED, so that the usual
 *	      insertion, a region newer than its equals, is an append; walk it
 *	      with mv_for_each_child().  Each child holds a reference.
 * @by_addr: the same children sorted by @addr (render fast path).
 * @container: the parent, or NULL; a region has at most one parent.
 * @alias: target of an alias (a reference is held), NULL otherwise.
 * @terminates: renders itself (RAM, ROM device, I/O); false for containers
 *		and aliases.
 * @aliases: the aliases whose target this region is (not referenced: an
 *	      alias unlinks itself when freed), so a change inside it can be
 *	      followed to every place it appears.
 * @mark: graph-walk visit stamp (== machine->mark_gen when visited).
 * @refcount: changed only in writer context, so it needs no atomics;
 *	      that includes dropping the last reference of a flat view.
 */
struct mv_region {
	struct mv_machine *machine;
	long refcount;
	char *name;
	char *owner;
	enum mv_region_kind kind;
	u128 size;
	uint64_t addr;
	int priority;
	bool enabled;
	bool readonly;
	bool nonvolatile;
	bool romd_mode;
	bool terminates;
	uint8_t dirty_log_mask;

	struct mv_region *container;
	struct mv_region **children;
	struct mv_region **by_addr;
	size_t by_addr_hint; /* where the last window render began in it */
	size_t nr_children;
	size_t cap_children;

	struct mv_region *alias;
	uint64_t alias_offset;
	struct mv_region **aliases;
	size_t nr_aliases;

	const struct mv_region_ops *ops;
	void *opaque;
	struct mv_ramblock *block;
	unsigned mark;
	uint64_t seq;	     /* when it was linked: the list order is (priority
		       * descending, seq descending) */
	u128 max_child_size; /* >= the size of every child */
	bool disjoint_known; /* @children_disjoint is up to date */
	bool children_disjoint; /* enabled children pairwise disjoint */
};

/*
 * struct mv_view_same - a run of ranges a spliced view copied unchanged:
 * old->ranges[@old .. @old + @len) equal new->ranges[@new .. @new + @len)
 * field for field (struct mv_flatview's @same).  @old_pos and @end_pos
 * are hints (mv_fv_pos(), for mv_fv_cur()) for the old view's chunks
 * holding the run's first and last ranges: the view build and the
 * listener diff start there without a search.
 */
struct mv_view_same {
	size_t old, new, len;
	size_t old_pos, end_pos;
};

/*
 * struct mv_view_chunk - an immutable piece of a flat view's ranges, shared
 * by every view spliced from one that has it.  It holds one reference per
 * range on the range's region (so views sharing it share those), taken and
 * dropped a run of equal regions at a time.  The count of groups naming it
 * is not in the chunk but in the machine's @chunk_refs[@id], next to the
 * others, so that counting a group's chunks touches neither the chunks
 * nor more cache lines than the group itself; like region references it
 * changes only in writer context, so it is plain.  A view's chunks hold
 * at most MV_VIEW_CHUNK ranges each and, when the view has more than one
 * chunk, at least MV_VIEW_CHUNK / 2 (mv_flatview_check() verifies it).
 */
#define MV_VIEW_CHUNK 32

struct mv_view_chunk {
	uint32_t id;
	bool full; /* room for MV_VIEW_CHUNK ranges: reusable (below) */
	size_t nr;
	/*
	 * Borrowed region references: a chunk patched from another
	 * (view_patch.c) holds that one's ranges but for a hole, where its
	 * own @fresh_n ranges stand from @fresh_at; while its @lender lives
	 * it holds references for those only, the lender's standing for
	 * the rest.  A chunk lends to one @heir at a time.  When a chunk
	 * goes: if it borrows and lends, its heir first takes references of
	 * its own; a heir inherits its lender's references but those of the
	 * hole, which are dropped; a borrower drops its fresh ones only.  As
	 * groups borrow chunk counts (struct mv_view_group).
	 */
	struct mv_view_chunk *lender, *heir;
	size_t fresh_at, fresh_n;
	struct mv_flat_range r[];
};

/*
 * struct mv_view_group - an immutable run of a view's chunks, shared as
 * chunks are: the second level of a view's index.  @first[j] is the index
 * of chunk j's first range counted from the group's first range
 * (@first[@nr]: its ranges), @addr[j] its first address, @id[j] its id.
 * The group holds a count on each chunk (@chunk_refs); @refs counts the
 * views owning the group (struct mv_view_loan), writer context only.  A
 * group holds at most MV_VIEW_GROUP chunks and, when the view has more
 * than one group, at least MV_VIEW_GROUP / 2.  So a one-range splice
 * rebuilds the one or two groups at its seam, copies one chunk and the
 * view's short list of groups, whatever the number of ranges.
 */
#define MV_VIEW_GROUP 32

struct mv_view_group {
	long refs;
	size_t nr;
	/*
	 * Borrowed chunk counts: a group patched from another (view_patch.c)
	 * names the same chunks but at @own; while its @lender lives, it
	 * holds a count on its chunk @own only, the lender's counts standing
	 * for the rest.  A group lends to one @heir at a time.  When a group
	 * goes (mv_view_group_put()): if it borrows and lends, its heir
	 * first takes counts of its own; a heir inherits its lender's counts
	 * but the one on the chunk it replaced, which is dropped; a borrower
	 * drops its chunk @own only.  Writer context only.
	 */
	struct mv_view_group *lender, *heir;
	size_t own;
	uint32_t first[MV_VIEW_GROUP + 1];
	uint32_t id[MV_VIEW_GROUP];
	uint64_t addr[MV_VIEW_GROUP];
	struct mv_view_chunk *ch[MV_VIEW_GROUP];
};

/*
 * Freed chunks with room for MV_VIEW_CHUNK ranges (every chunk of at
 * least MV_VIEW_CHUNK / 2 gets that room) and freed groups go to the
 * machine's @chunk_cache and @group_cache of at most MV_CHUNK_CACHE each,
 * and the next ones come from there: a commit's seam chunks and groups
 * cost no malloc/free nor page faults in the steady state.  Under ASan a
 * cached one is poisoned, so a use after its release is still reported.
 */
#define MV_CHUNK_CACHE 16

/*
 * struct mv_view_index - a view's group index (struct mv_flatview's
 * @groups, @group_first and @group_addr) in one block with room for @cap
 * groups, @g its start.  Released blocks wait in the machine's
 * @index_cache (at most MV_INDEX_CACHE, poisoned under ASan) for the next
 * view whose index fits, so a commit allocates none in the steady state.
 */
#define MV_INDEX_CACHE 4

struct mv_view_index {
	struct mv_view_group **g;
	size_t *first; /* @cap + 1 entries */
	uint64_t *addr;
	size_t cap;
};

/*
 * struct mv_spare - memory kept for the next commit: a render's scratch
 * arrays (render.c: fragments, output ranges, pending slices), a released
 * view's struct and its array of runs (flatview.c).  Whoever needs one
 * takes it (leaving NULL: a nested render allocates its own) and gives it
 * back when done; what is bigger than MV_SPARE_MAX bytes, or given back
 * while the slot is full or the machine dead, is freed.  Poisoned under
 * ASan while kept.  So a one-range commit allocates nothing in the steady
 * state.
 */
enum mv_spare_kind {
	MV_SPARE_FRAGS,
	MV_SPARE_OUT,
	MV_SPARE_PEND,
	MV_SPARE_SAME,
	MV_SPARE_VIEW,
	MV_NR_SPARE
};

#define MV_SPARE_MAX (64 * 1024)

struct mv_spare {
	void *p;
	size_t size; /* bytes */
};

/* Take the spare of @kind (NULL if none; *@size its bytes), give one back
 * (@p may be NULL): inline, below struct mv_machine; view_chunks.c: free
 * them all (the machine's end). */
static inline void *mv_spare_take(struct mv_machine *m, enum mv_spare_kind kind,
				  size_t *size);
static inline void mv_spare_give(struct mv_machine *m, enum mv_spare_kind kind,
				 void *p, size_t size);
void mv_spare_drain(struct mv_machine *m);

/*
 * struct mv_view_loan - groups a spliced view borrows from the view it was
 * spliced from (its @lender): its groups [@to, @to + @n) are the lender's
 * [@from, @from + @n), and it holds no count on them.
 *
 * A group's count (@refs) is the number of views that *own* it.  A splice
 * from a view that lends to no other (no @heir) borrows the groups it
 * shares, in at most MV_VIEW_LOANS runs (beyond that it takes counts), so
 * neither the splice nor the release of the replaced view touches the
 * shared groups.  When a view is destroyed:
 *  - if it owns all its groups (no @lender), its heir inherits the lent
 *    counts (it owns all its groups from then on) and the view drops the
 *    counts of the groups it did not lend: only the seams;
 *  - if it borrows itself (its lender outlives it: a reader or a caller
 *    still holds the older view), its heir first takes counts on what it
 *    borrowed, as a splice without loans would have;
 *  - a borrower drops only the groups it owns and unlinks from its lender.
 * Views die oldest first in the common case (mv_reclaim() releases them
 * in order), so a commit's splice and release touch only its seams.
 */
#define MV_VIEW_LOANS 4

struct mv_view_loan {
	size_t from, to, n;
};

/*
 * struct mv_flatview - an immutable rendered view.  Its @nr ranges are
 * sorted and maximally merged; they are stored in chunks under a
 * two-level index: group g holds ranges [@group_first[g],
 * @group_first[g + 1]) in its chunks (struct mv_view_group); read them
 * with mv_fv_at() / mv_fv_cur().  The view owns or borrows (struct
 * mv_view_loan) a count on each group and holds a reference on @root and
 * on the machine.  An
 * address space's reference on a replaced view is dropped by the writer
 * after an RCU grace period (mv_reclaim()); a last reference dropped
 * outside writer context queues the view on the machine's reclaim list for
 * the writer.
 * @gen: unique per machine (never 0).  A view spliced from another
 * (mv_render_splice) records that view's @gen as @base_gen and the runs
 * it copied unchanged in @same (sorted, disjoint on both sides), so the
 * listener diff against that view walks only what lies between the runs;
 * @base_gen is 0 for a full render.
 * @flat: the ranges as one array (mv_flatview_ranges()), built by the
 * first caller that needs it, as @table is.
 */
struct mv_flatview {
	atomic_long refcount;
	struct mv_flatview *reclaim_next;
	struct mv_machine *machine;
	struct mv_region *root;
	size_t nr;
	struct mv_view_group **groups;
	size_t *group_first;  /* @nr_groups + 1 entries */
	uint64_t *group_addr; /* where each group's first range starts */
	size_t nr_groups;
	size_t index_cap; /* the index block's room (struct mv_view_index) */
	uint64_t gen, base_gen;
	/* mv_fv_pos() of the chunk a patch replaced (view_patch.c), else 0:
	 * where the next splice from this view starts looking */
	size_t hint_pos;
	struct mv_view_same *same;
	size_t nr_same, cap_same;
	/* borrowed chunks (writer context only, flatview.c) */
	struct mv_flatview *lender, *heir;
	struct mv_view_loan loans[MV_VIEW_LOANS];
	size_t nr_loans;
	_Atomic(struct mv_flat_range *) flat;
	/* the range table over the ranges, built by a lookup once the view
	 * has served @nr / MV_TABLE_AFTER lookups by binary search over the
	 * chunks (@lookups counts them), so that its O(n) build is paid
	 * for by lookups, not by commits; readers race to install it, the
	 * loser frees its copy */
	_Atomic(struct mv_range_table *) table;
	atomic_size_t lookups;
};

/*
 * A view builds its range table (O(n)) only after n / MV_TABLE_AFTER
 * lookups by binary search over its chunks, so a view replaced after a
 * few lookups (a commit per memslot change) never pays for one.
 */
#define MV_TABLE_AFTER 16

/*
 * A chunk's place in a view: group g, chunk j of it, as the one number
 * g * MV_VIEW_GROUP + j (a cursor for mv_fv_cur()).
 */
static inline size_t mv_fv_pos(size_t g, size_t j)
{
	return g * MV_VIEW_GROUP + j;
}

/*
 * The last of the @n ascending @first[] at or below @key (@first[0] <=
 * @key): of a view's groups (size_t), of a group's chunks (uint32_t).
 */
#define MV_DEFINE_LAST_AT_OR_BELOW(name, type, key_type)                     \
	static inline size_t name(const type *first, size_t n, key_type key) \
	{                                                                    \
		size_t lo = 0, hi = n;                                       \
                                                                             \
		while (hi - lo > 1) {                                        \
			size_t mid = lo + (hi - lo) / 2;                     \
                                                                             \
			if (first[mid] <= key)                               \
				lo = mid;                                    \
			else                                                 \
				hi = mid;                                    \
		}                                                            \
		return lo;                                                   \
	}

MV_DEFINE_LAST_AT_OR_BELOW(mv_last_at_or_below, size_t, size_t)
MV_DEFINE_LAST_AT_OR_BELOW(mv_last_at_or_below32, uint32_t, size_t)

/* The place of the chunk of @fv holding range @i (< @fv->nr). */
static inline size_t mv_fv_chunk_of(const struct mv_flatview *fv, size_t i)
{
	size_t g = mv_last_at_or_below(fv->group_first, fv->nr_groups, i);
	const struct mv_view_group *gr = fv->groups[g];

	i -= fv->group_first[g];
	return mv_fv_pos(g, mv_last_at_or_below32(gr->first, gr->nr, i));
}

/* The range at @pos's chunk (mv_fv_pos()) for range @i of @fv. */
static inline const struct mv_flat_range *mv_fv_in(const struct mv_flatview *fv,
						   size_t pos, size_t i)
{
	const struct mv_view_group *gr = fv->groups[pos / MV_VIEW_GROUP];
	size_t j = pos % MV_VIEW_GROUP;

	return &gr->ch[j]->r[i - fv->group_first[pos / MV_VIEW_GROUP] -
			     gr->first[j]];
}

/* Range @i (< @fv->nr) of @fv. */
static inline const struct mv_flat_range *mv_fv_at(const struct mv_flatview *fv,
						   size_t i)
{
	return mv_fv_in(fv, mv_fv_chunk_of(fv, i), i);
}

/* Whether range @i of @fv is in the chunk at @pos (any value). */
static inline bool mv_fv_pos_holds(const struct mv_flatview *fv, size_t pos,
				   size_t i)
{
	size_t g = pos / MV_VIEW_GROUP, j = pos % MV_VIEW_GROUP;

	if (g >= fv->nr_groups || j >= fv->groups[g]->nr ||
	    i < fv->group_first[g])
		return false;
	i -= fv->group_first[g];
	return i >= fv->groups[g]->first[j] && i < fv->groups[g]->first[j + 1];
}

/* The place of the chunk after the one at @pos (past the end: any). */
static inline size_t mv_fv_pos_next(const struct mv_flatview *fv, size_t pos)
{
	size_t g = pos / MV_VIEW_GROUP, j = pos % MV_VIEW_GROUP;

	return g < fv->nr_groups && j + 1 >= fv->groups[g]->nr ?
		       mv_fv_pos(g + 1, 0) :
		       pos + 1;
}

/* The place of the chunk before the one at @pos (none: any past the end). */
static inline size_t mv_fv_pos_prev(const struct mv_flatview *fv, size_t pos)
{
	size_t g = pos / MV_VIEW_GROUP, j = pos % MV_VIEW_GROUP;

	if (j)
		return pos - 1;
	if (!g || g > fv->nr_groups)
		return SIZE_MAX;
	return mv_fv_pos(g - 1, fv->groups[g - 1]->nr - 1);
}

/* flatview.c: mv_fv_cur() when @i is not in the chunk at *@k. */
const struct mv_flat_range *mv_fv_cur_slow(const struct mv_flatview *fv,
					   size_t *k, size_t i);

/*
 * Range @i (< @fv->nr) of @fv, *@k caching its chunk's place between
 * calls (start it at 0): a walk in order costs one search per chunk.
 */
static inline const struct mv_flat_range *
mv_fv_cur(const struct mv_flatview *fv, size_t *k, size_t i)
{
	size_t g = *k / MV_VIEW_GROUP, j = *k % MV_VIEW_GROUP;

	if (g < fv->nr_groups && j < fv->groups[g]->nr) {
		const struct mv_view_group *gr = fv->groups[g];
		size_t at = i - fv->group_first[g] - gr->first[j];

		if (at < gr->ch[j]->nr) /* (wraps below the chunk) */
			return &gr->ch[j]->r[at];
	}
	return mv_fv_cur_slow(fv, k, i);
}

/*
 * flatview.c: a chunk of @n ranges for the caller to fill (NULL without
 * memory), its count 1; once filled, mv_view_chunk_seal() takes its
 * ranges' references (it must be sealed before it is put).
 * mv_view_chunk_put() drops a count on a chunk (by its id).
 */
struct mv_view_chunk *mv_view_chunk_alloc(struct mv_machine *m, size_t n);
void mv_view_chunk_seal(struct mv_view_chunk *ch);
/* Seal @ch, filled with @from's ranges but for a hole where its own @n
 * ranges stand from @at: it borrows the others' references from @from
 * when @from lends to no other chunk (struct mv_view_chunk). */
void mv_view_chunk_seal_from(struct mv_view_chunk *ch,
			     struct mv_view_chunk *from, size_t at, size_t n);
void mv_view_chunk_put(struct mv_machine *m, struct mv_view_chunk *ch,
		       uint32_t id);
/*
 * flatview.c: an empty group, its count 1 (NULL without memory); it holds
 * the counts of the chunks put in it.  mv_view_group_put() drops a count.
 */
struct mv_view_group *mv_view_group_alloc(struct mv_machine *m);
void mv_view_group_put(struct mv_machine *m, struct mv_view_group *g);
/*
 * flatview.c: mv_view_index_alloc() an index block with room for at least
 * @cap groups (-ENOMEM without memory), mv_view_index_free() gives one
 * back.  mv_view_chunk_cache_drain() frees the machine's cached chunks,
 * groups and index blocks (its last reference).
 */
int mv_view_index_alloc(struct mv_machine *m, size_t cap,
			struct mv_view_index *ix);
void mv_view_index_free(struct mv_machine *m, struct mv_view_group **block,
			size_t cap);
void mv_view_chunk_cache_drain(struct mv_machine *m);
/* view_chunks.c: drop the counts @fv owns and its index block (struct
 * mv_view_loan: its heir may inherit some, it may unlink from its lender). */
void mv_view_release(struct mv_machine *m, struct mv_flatview *fv);
/*
 * view_build.c: build the chunks and groups of @fv (its @nr and index)
 * from @nr_out fresh ranges @out and, for a splice from @old, the @nr_same
 * runs @same of @old's ranges kept, each standing before @out[@new] (made
 * the run's index in @fv); @fv borrows from @old where it can (struct
 * mv_view_loan).  On error nothing is left held.
 */
int mv_view_build(struct mv_machine *m, const struct mv_flatview *old,
		  const struct mv_flat_range *out, size_t nr_out,
		  struct mv_view_same *same, size_t nr_same,
		  struct mv_flatview *fv);
/*
 * @dst[j] = @src[j] + @delta for the @n entries, a 32-byte vector at a
 * time (-O2 does not vectorise a loop of unknown length): of size_t
 * (mv_shift_copy) and of uint32_t (mv_shift_copy32).
 */
#define MV_DEFINE_SHIFT_COPY(name, type)                                      \
	static inline void name(type *restrict dst, const type *restrict src, \
				size_t n, type delta)                         \
	{                                                                     \
		typedef type vec __attribute__((vector_size(32)));            \
		const size_t lanes = sizeof(vec) / sizeof(type);              \
		size_t j = 0;                                                 \
		vec v;                                                        \
                                                                              \
		for (; j + lanes <= n; j += lanes) {                          \
			memcpy(&v, &src[j], sizeof(v));                       \
			v += delta;                                           \
			memcpy(&dst[j], &v, sizeof(v));                       \
		}                                                             \
		for (; j < n; j++)                                            \
			dst[j] = src[j] + delta;                              \
	}

MV_DEFINE_SHIFT_COPY(mv_shift_copy, size_t)
MV_DEFINE_SHIFT_COPY(mv_shift_copy32, uint32_t)

/*
 * view_patch.c: mv_view_build() for a splice that changed ranges inside
 * one chunk of @old only: @fv gets @old's index with that chunk and its
 * group replaced (*@done true), or nothing happens (*@done false: the
 * general build must run).  -ENOMEM leaves nothing held.
 */
int mv_view_patch(struct mv_machine *m, const struct mv_flatview *old,
		  const struct mv_flat_range *out, size_t nr_out,
		  struct mv_view_same *same, size_t nr_same,
		  struct mv_flatview *fv, bool *done);

/*
 * struct mv_as - an address space.  @view is the current view (the AS
 * holds a reference), published with rcu_assign_pointer() and read by
 * readers with mv_as_read_begin(); @root holds a reference.
 */
struct mv_as {
	struct mv_machine *machine;
	char *name;
	struct mv_region *root;
	struct mv_flatview *view;
	struct mv_as *next; /* creation order */
	/* its listeners, ascending priority, ties in registration order */
	struct mv_listener **listeners;
	size_t nr_listeners;
};

/*
 * struct mv_undo - how to take back one change of the running transaction
 * (a failing region_add rolls the whole transaction back).  @r holds a
 * reference while the entry exists.
 */
enum mv_undo_op {
	MV_UNDO_LINK,	/* @r was linked into @parent: unlink it */
	MV_UNDO_UNLINK, /* @r was unlinked: link it back at @addr/@seq */
	MV_UNDO_ENABLED,
	MV_UNDO_ADDR,
	MV_UNDO_SIZE,
	MV_UNDO_ALIAS_OFFSET,
	MV_UNDO_READONLY,
	MV_UNDO_NONVOLATILE,
	MV_UNDO_ROMD,
	MV_UNDO_LOG,
};

struct mv_undo {
	enum mv_undo_op op;
	struct mv_region *r;
	struct mv_region *parent;
	uint64_t addr;
	int priority;
	uint64_t seq;
	u128 size;
	uint64_t used_length;
	bool flag;
	uint8_t mask;
};

struct mv_named_region {
	char *id;
	struct mv_region *r;
};

struct mv_change_list;

/*
 * struct mv_machine - the context everything hangs off.
 * @as_head: address spaces in creation order.
 * @blocks: RAM blocks, max_length descending (QEMU's ram_list order).
 * @txn_depth, @update_pending: QEMU's transaction state.
 * @named: regions registered by id (sorted by id), each holds a reference.
 * @changes: the pending change list of a machine file (machine_json_apply.c).
 * @dirty: windows that changed since the last commit, each in the local
 *	   coordinates of a region; @dirty_all when they were too many or a
 *	   change has no window (then every view is rendered in full).
 */
#define MV_MAX_DIRTY 32

struct mv_dirty {
	struct mv_region *r;
	u128 start, end;
	bool raw; /* the window is not clipped by @r, nor hidden if disabled */
};

struct mv_machine {
	atomic_long refs; /* the machine itself + every live region */
	char *name;
	unsigned mark_gen;
	uint64_t link_seq;
	struct mv_alloc alloc;
	struct mv_as *as_head;
	struct mv_ramblock **blocks;
	size_t nr_blocks;
	unsigned txn_depth;
	bool update_pending;
	struct mv_flatview *empty_view;
	uint64_t view_gen; /* the last struct mv_flatview @gen given */
	struct mv_named_region *named;
	size_t nr_named;
	struct mv_machine_stats stats;
	struct mv_change_list *changes;
	struct mv_dirty dirty[MV_MAX_DIRTY];
	size_t nr_dirty;
	bool dirty_all;
	/* state at the outermost begin, and how to undo since then */
	bool saved_pending, saved_dirty_all;
	size_t saved_nr_dirty;
	struct mv_undo *undo;
	size_t nr_undo, cap_undo;
	bool undo_failed;   /* an entry could not be recorded: no rollback */
	bool as_new_in_txn; /* an address space rendered uncommitted state */
	bool dead;	    /* mv_machine_free() ran */
	int listener_error; /* first error of a callback this commit */
	/* all listeners, ascending priority, ties in registration order */
	struct mv_listener **listeners;
	size_t nr_listeners;
	bool global_dirty_log;
	bool full_render_only;
	/* references of replaced views, dropped after a grace period */
	struct mv_flatview **retired;
	size_t nr_retired, cap_retired;
	/* unreferenced by a reader thread: a lock-free stack, taken whole */
	_Atomic(struct mv_flatview *) reclaim;
	/*
	 * Set by a read-side section that finds it clear, before it loads
	 * a view; cleared by the writer before each grace period.  Clear
	 * when the writer looks (after publishing), no reader can hold a
	 * view it replaced: those from before the clearing were waited
	 * for, any later one would have set it (Dekker: seq_cst fences
	 * between the store and the load on both sides).  Its own line:
	 * every read-side section loads it (padded, not aligned: the
	 * machine comes from malloc).
	 */
	/* group counts of each chunk by @id (struct mv_view_chunk), and
	 * the ids free for reuse */
	long *chunk_refs;
	size_t nr_chunk_ids, cap_chunk_ids;
	uint32_t *free_chunk_ids;
	size_t nr_free_chunk_ids;
	struct mv_view_chunk *chunk_cache[MV_CHUNK_CACHE];
	size_t nr_chunk_cache;
	struct mv_view_group *group_cache[MV_CHUNK_CACHE];
	size_t nr_group_cache;
	struct mv_view_group **index_cache[MV_INDEX_CACHE];
	size_t index_cache_cap[MV_INDEX_CACHE];
	size_t nr_index_cache;
	/* the last commit's event log, kept for the next (listener.c) */
	struct mv_event_log *spare_log;
	/* a render's scratch arrays and a released view's struct and runs,
	 * kept for the next (struct mv_spare) */
	struct mv_spare spare[MV_NR_SPARE];
	char readers_seen_pad0[64];
	atomic_int readers_seen;
	char readers_seen_pad1[64];
};

static inline void *mv_spare_take(struct mv_machine *m, enum mv_spare_kind kind,
				  size_t *size)
{
	struct mv_spare *sp = &m->spare[kind];
	void *p = sp->p;

	*size = p ? sp->size : 0;
	if (p) {
		MV_UNPOISON(p, sp->size);
		sp->p = NULL;
	}
	return p;
}

static inline void mv_spare_give(struct mv_machine *m, enum mv_spare_kind kind,
				 void *p, size_t size)
{
	struct mv_spare *sp = &m->spare[kind];

	if (p && !sp->p && !m->dead && size <= MV_SPARE_MAX) {
		MV_POISON(p, size);
		sp->p = p;
		sp->size = size;
		return;
	}
	free(p);
}

/*
 * struct mv_ramblock - host memory of a RAM-backed region, placed in the
 * ram_addr space by QEMU's find_ram_offset().
 */
struct mv_ramblock {
	char *idstr;
	mv_ram_addr_t offset;
	uint64_t used_length;
	uint64_t max_length;
	uint64_t page_size;
	uint8_t *host;
	size_t mapped_length; /* what to munmap, 0 for MV_RAM_PTR */
	int fd;
	struct mv_region *mr;
	/* one bit per 4 KiB page of max_length per client (dirty.c) */
	unsigned long *dirty[MV_DIRTY_NR_CLIENTS];
};

/* machine.c */
void mv_machine_get(struct mv_machine *m);
void mv_machine_put(struct mv_machine *m);
void *mv_malloc(struct mv_machine *m, size_t size);
void *mv_zalloc(struct mv_machine *m, size_t size);
void *mv_realloc(struct mv_machine *m, void *p, size_t size);
char *mv_strdup(struct mv_machine *m, const char *s);

/* ramblock.c */
int mv_ramblock_new(struct mv_machine *m, const char *idstr, u128 size,
		    const struct mv_ram_opts *opts, struct mv_ramblock **out);
void mv_ramblock_free(struct mv_machine *m, struct mv_ramblock *b);

/* region.c: @r is the root some address space's current view was
 * rendered from. */
bool mv_region_is_view_root(const struct mv_region *r);
/*
 * txn.c.  mv_txn_mark_pending() is QEMU's update_pending: the next commit
 * produces new views.  The dirty marks say where they can differ:
 * mv_txn_mark_dirty() a window of @r's local coordinates (a child's place),
 * mv_txn_mark_dirty_self() a window of @r's own content, recorded at once
 * where it shows now (in its container, through each alias) so that a
 * later move of @r in the same transaction cannot lose it;
 * mv_txn_mark_dirty_all() everything.  Marks are recorded whatever QEMU's
 * pending rule says; without pending they are dropped at commit.
 */
void mv_txn_mark_pending(struct mv_machine *m);
void mv_txn_mark_dirty(struct mv_machine *m, struct mv_region *r, u128 start,
		       u128 end);
void mv_txn_mark_dirty_self(struct mv_machine *m, struct mv_region *r,
			    u128 start, u128 end);
void mv_txn_mark_dirty_all(struct mv_machine *m);
void mv_txn_clear_dirty(struct mv_machine *m);
/* txn.c: forget an open transaction's undo log (machine teardown). */
void mv_txn_discard(struct mv_machine *m);
/* region.c: @n references at once (a chunk's run of ranges). */
void mv_region_ref_n(struct mv_region *r, long n);
void mv_region_unref_n(struct mv_region *r, long n);
/* txn.c: record how to undo a change (see struct mv_undo). */
void mv_txn_record(struct mv_machine *m, const struct mv_undo *u);
/* region.c: link @child into @parent as the @seq-th linked child. */
void mv_region_relink(struct mv_region *parent, struct mv_region *child,
		      uint64_t seq);
void mv_region_unlink(struct mv_region *parent, struct mv_region *child);
/*
 * dirty.c: mark [@addr, @addr + @size) of @mr dirty for the clients in
 * @mask (invalidate_and_set_dirty: a guest write marks the clients that
 * log the range).  Context: any thread.
 */
void mv_region_set_dirty_mask(struct mv_region *mr, uint64_t addr,
			      uint64_t size, uint8_t mask);
/* The dirty-log mask a range of @mr gets (memory_region_get_dirty_log_mask). */
uint8_t mv_region_dirty_mask(const struct mv_region *mr);

/*
 * listener.c: deliver a commit.  mv_listeners_begin() calls begin on every
 * listener; mv_listeners_update() the topology passes of @as from its
 * current view to @new (recording for rollback);
 * mv_listeners_rollback() the inverse of everything recorded, then commit;
 * mv_listeners_commit() commit on every listener.
 */
struct mv_event_log;
int mv_listeners_begin(struct mv_machine *m);
int mv_listeners_update(struct mv_as *as, const struct mv_flatview *new,
			struct mv_event_log *log);
/*
 * How many old and new ranges mv_listeners_update() walks for @as (all of
 * both views, or only what lies between the unchanged runs of a view
 * spliced from @as's current one); 0 without listeners.
 */
size_t mv_listeners_update_size(const struct mv_as *as,
				const struct mv_flatview *new);
void mv_listeners_rollback(struct mv_machine *m, struct mv_event_log *log);
int mv_listeners_commit(struct mv_machine *m);
int mv_listeners_global_start(struct mv_machine *m);
int mv_listeners_global_stop(struct mv_machine *m);
struct mv_event_log *mv_event_log_new(struct mv_machine *m);
int mv_event_log_error(const struct mv_event_log *log);
/* Room for @n more events, so that delivery can always be taken back. */
int mv_event_log_reserve(struct mv_event_log *log, size_t n);
/* Keeps the last one freed for the next mv_event_log_new() of its machine. */
void mv_event_log_free(struct mv_event_log *log);
/* Free the machine's kept event log (its last reference). */
void mv_event_log_drain(struct mv_machine *m);
void mv_as_listeners_free(struct mv_as *as);

/* render.c: render the view of flat-view root @root (NULL: empty view). */
int mv_render(struct mv_machine *m, struct mv_region *root,
	      struct mv_flatview **out);
/*
 * render.c: a new view of @old's root equal to @old outside the sorted,
 * disjoint @windows [start, end) and re-rendered inside them.
 */
int mv_render_splice(struct mv_machine *m, const struct mv_flatview *old,
		     const u128 (*windows)[2], size_t nr_windows,
		     struct mv_flatview **out);

/* QEMU's memory_region_get_flatview_root(). */
struct mv_region *mv_flatview_root_of(struct mv_region *r);

/*
 * flatview.c: lookup through the view's range table with a caller-owned
 * last-hit hint (NULL allowed).  Context: any thread.
 */
const struct mv_flat_range *
mv_flatview_lookup_hint(const struct mv_flatview *fv, uint64_t addr,
			struct mv_range_hint *hint);
/* flatview.c: index of the first range that ends at or after @addr. */
size_t mv_flatview_index_at_or_after(const struct mv_flatview *fv,
				     uint64_t addr);
/*
 * flatview.c: the first index >= @from whose range starts (@by_first) or
 * ends at or after @key; @fv->nr if none.
 */
size_t mv_flatview_search(const struct mv_flatview *fv, size_t from, u128 key,
			  bool by_first);
/* The same, *@k a hint for the chunk to look in (any value; left at the
 * chunk looked in): one search skipped when it or the next one holds
 * @key. */
size_t mv_flatview_search_near(const struct mv_flatview *fv, size_t from,
			       u128 key, bool by_first, size_t *k);
/* flatview.c */
bool mv_flat_range_can_merge(const struct mv_flat_range *a,
			     const struct mv_flat_range *b);

/*
 * addrspace.c: publish @fv as @as's view (takes over the reference); the
 * old view is released after a grace period.  mv_as_reserve_retired()
 * first makes room to retire @n views, so publishing cannot fail.
 */
int mv_as_reserve_retired(struct mv_machine *m, size_t n);
void mv_as_set_view(struct mv_as *as, struct mv_flatview *fv);
/*
 * Reader side: the view returned stays valid until mv_as_read_end() (an
 * RCU read-side critical section; nests; any thread, no registration).
 */
struct mv_flatview *mv_as_read_begin(struct mv_as *as);
void mv_as_read_end(void);
/*
 * ThreadSanitizer does not see liburcu's grace periods: readers "release"
 * a token when they leave a read-side section and the writer "acquires" it
 * after synchronize_rcu(), which is the order RCU guarantees.  No-ops in
 * other builds.
 */
void mv_rcu_tsan_acquire(void);

/* flatview.c: drop a reference from any thread; the writer frees later. */
void mv_flatview_unref_deferred(struct mv_flatview *fv);
/*
 * flatview.c: after a grace period, drop the references of replaced views
 * and free the views readers released.  Skipped (left for later) when
 * called inside a read-side section, e.g. a commit from an MMIO callback.
 */
void mv_reclaim(struct mv_machine *m);
void mv_as_free(struct mv_as *as);

/* machine_json_apply.c */
void mv_change_list_free(struct mv_machine *m, struct mv_change_list *cl);

#endif /* MV_MEMORY_INTERNAL_H */
