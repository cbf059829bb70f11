// SPDX-License-Identifier: MIT
/*
 * Rendering a region tree into a flat view (QEMU's render_memory_region and
 * flatview_simplify, reference §3.3).
 *
 * QEMU inserts each terminating region into the gaps of a sorted array,
 * O(n^2).  We compute the same map in two steps:
 *
 *   1. a walk in QEMU's render order collects one clipped fragment per
 *      terminating region; a fragment's rank is its position in that order
 *      and the lowest rank covering an address is what QEMU would keep;
 *   2. a sweep over the fragments sorted by start keeps, at every address,
 *      the lowest-ranked fragment (a min-heap of ranks), merging adjacent
 *      pieces with can_merge as it emits them.
 *
 * When a container's enabled children are pairwise disjoint the walk visits
 * them in address order (their relative rank cannot matter), so the common
 * case produces fragments already sorted and step 2 is a single pass.
 *
 * A commit re-renders only its windows (mv_render_splice): the old ranges
 * between them are found by binary search and copied as whole runs, which
 * the new view records (struct mv_view_same) so that the listener diff
 * skips them, and the view's region references are taken per batch of
 * ranges naming one region (struct mv_view_batch), the copied runs'
 * batches coming from the old view: nothing but the memcpy of the range
 * array walks the unchanged part.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Deeper nesting than this is refused rather than risking the stack. */
#define RENDER_MAX_DEPTH 512

/* [start, end) in the address space, end <= 2^64. */
struct frag {
	u128 start;
	u128 end;
	struct mv_region *mr;
	uint64_t offset;
	bool readonly;
	bool nonvolatile;
};

struct render_ctx {
	struct mv_machine *m;
	struct frag *frags;
	size_t nr, cap;
	struct mv_flat_range *out;
	size_t nr_out, cap_out;
	/* a splice: the runs of old ranges copied as they are (room for
	 * @cap_same; NULL if it could not be had: then none are recorded) */
	struct mv_view_same *same;
	size_t nr_same, cap_same;
};

static int push_frag(struct render_ctx *c, const struct frag *f)
{
	if (c->nr == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct frag *a = mv_realloc(c->m, c->frags, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		c->frags = a;
		c->cap = cap;
	}
	c->frags[c->nr++] = *f;
	return 0;
}

/* Whether the enabled children of @r are pairwise disjoint (cached). */
static bool children_disjoint(struct mv_region *r)
{
	u128 end = 0;
	size_t i;

	if (r->disjoint_known)
		return r->children_disjoint;
	r->children_disjoint = true;
	for (i = 0; i < r->nr_children; i++) {
		const struct mv_region *ch = r->by_addr[i];

		if (!ch->enabled || !ch->size)
			continue;
		if ((u128)ch->addr < end) {
			r->children_disjoint = false;
			break;
		}
		end = (u128)ch->addr + ch->size;
	}
	r->disjoint_known = true;
	return r->children_disjoint;
}

/*
 * Where to start walking @r's children in address order for a clip that
 * begins at @from (relative to @r): the first child starting at or after
 * @from, preceded by the last enabled child starting before it, the only
 * one that can still overlap @from while the children are disjoint.
 */
static size_t first_child_from(const struct mv_region *r, s128 from)
{
	size_t lo = 0, hi = r->nr_children;

	if (from <= 0)
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((s128)r->by_addr[mid]->addr < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo > 0) {
		const struct mv_region *prev = r->by_addr[--lo];

		if (prev->enabled && prev->size)
			break;
	}
	return lo;
}

static int render_region(struct render_ctx *c, struct mv_region *mr, s128 base,
			 u128 clip_start, u128 clip_end, bool ro, bool nv,
			 unsigned depth);

/* Below this many children a plain walk beats the candidate search. */
#define FEW_CHILDREN 16

/* QEMU's list order: priority descending, then most recently linked. */
static int cmp_list_order(const void *a, const void *b)
{
	const struct mv_region *x = *(struct mv_region *const *)a;
	const struct mv_region *y = *(struct mv_region *const *)b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return x->seq > y->seq ? -1 : x->seq < y->seq;
}

/*
 * Overlapping children, clip [s, e): only children starting less than
 * max_child_size before the clip can reach it, so find those in address
 * order and render them in list order.
 */
static int render_overlapping(struct render_ctx *c, struct mv_region *mr,
			      s128 base, u128 s, u128 e, bool ro, bool nv,
			      unsigned depth)
{
	s128 from = (s128)s - base - (s128)mr->max_child_size;
	size_t lo = 0, hi = mr->nr_children, i, n = 0;
	struct mv_region **cand;
	int ret = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((s128)mr->by_addr[mid]->addr < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < mr->nr_children; i++)
		if (base + (s128)mr->by_addr[i]->addr >= (s128)e)
			break;
	cand = mv_malloc(c->m, (i - lo + 1) * sizeof(*cand));
	if (!cand)
		return -ENOMEM;
	for (; lo < i; lo++)
		if (mr->by_addr[lo]->enabled)
			cand[n++] = mr->by_addr[lo];
	qsort(cand, n, sizeof(*cand), cmp_list_order);
	for (i = 0; i < n && !ret; i++)
		ret = render_region(c, cand[i], base, s, e, ro, nv, depth + 1);
	free(cand);
	return ret;
}

static int render_children(struct render_ctx *c, struct mv_region *mr,
			   s128 base, u128 s, u128 e, bool ro, bool nv,
			   unsigned depth)
{
	struct mv_region *ch;
	size_t i;
	int ret;

	if (!children_disjoint(mr)) {
		if (mr->nr_children > FEW_CHILDREN)
			return render_overlapping(c, mr, base, s, e, ro, nv,
						  depth);
		mv_for_each_child(ch, mr) {
			ret = render_region(c, ch, base, s, e, ro, nv,
					    depth + 1);
			if (ret)
				return ret;
		}
		return 0;
	}
	for (i = first_child_from(mr, (s128)s - base); i < mr->nr_children;
	     i++) {
		ch = mr->by_addr[i];
		if (base + (s128)ch->addr >= (s128)e)
			break;
		ret = render_region(c, ch, base, s, e, ro, nv, depth + 1);
		if (ret)
			return ret;
	}
	return 0;
}

static int render_region(struct render_ctx *c, struct mv_region *mr, s128 base,
			 u128 clip_start, u128 clip_end, bool ro, bool nv,
			 unsigned depth)
{
	s128 s, e;
	int ret;

	if (!mr->enabled)
		return 0;
	if (depth > RENDER_MAX_DEPTH)
		return -E2BIG;
	base += mr->addr;
	ro |= mr->readonly;
	nv |= mr->nonvolatile;
	s = base > (s128)clip_start ? base : (s128)clip_start;
	e = base + (s128)mr->size;
	if (e > (s128)clip_end)
		e = (s128)clip_end;
	if (s >= e)
		return 0;

	if (mr->alias) {
		base -= (s128)mr->alias->addr + (s128)mr->alias_offset;
		return render_region(c, mr->alias, base, (u128)s, (u128)e, ro,
				     nv, depth + 1);
	}
	ret = render_children(c, mr, base, (u128)s, (u128)e, ro, nv, depth);
	if (ret || !mr->terminates)
		return ret;
	return push_frag(c, &(struct frag){
				    .start = (u128)s,
				    .end = (u128)e,
				    .mr = mr,
				    .offset = (uint64_t)(s - base),
				    .readonly = ro,
				    .nonvolatile = nv,
			    });
}

/* Room for @n more output ranges. */
static int reserve_out(struct render_ctx *c, size_t n)
{
	size_t cap = c->cap_out ? c->cap_out : 16;
	struct mv_flat_range *a;

	if (c->nr_out + n <= c->cap_out)
		return 0;
	while (cap < c->nr_out + n)
		cap *= 2;
	a = mv_realloc(c->m, c->out, cap * sizeof(*a));
	if (!a)
		return -ENOMEM;
	c->out = a;
	c->cap_out = cap;
	return 0;
}

/* Append @r to the output, merging it into the last range if it can. */
static int emit_range(struct render_ctx *c, const struct mv_flat_range *r)
{
	int ret;

	if (c->nr_out && mv_flat_range_can_merge(&c->out[c->nr_out - 1], r)) {
		c->out[c->nr_out - 1].last = r->last;
		return 0;
	}
	ret = reserve_out(c, 1);
	if (ret)
		return ret;
	c->out[c->nr_out++] = *r;
	return 0;
}

/* Append [start, end) of fragment @f. */
static int emit(struct render_ctx *c, const struct frag *f, u128 start,
		u128 end)
{
	struct mv_flat_range r = {
		.first = (uint64_t)start,
		.last = (uint64_t)(end - 1),
		.mr = f->mr,
		.offset_in_region = f->offset + (uint64_t)(start - f->start),
		.dirty_log_mask = mv_region_dirty_mask(f->mr),
		.romd_mode = f->mr->romd_mode,
		.readonly = f->readonly,
		.nonvolatile = f->nonvolatile,
	};

	return emit_range(c, &r);
}

static bool frags_sorted_disjoint(const struct render_ctx *c)
{
	size_t i;

	for (i = 1; i < c->nr; i++)
		if (c->frags[i].start < c->frags[i - 1].end)
			return false;
	return true;
}

/* ---- the sweep: lowest rank wins at every address ----------------------- */

struct sweep {
	const struct frag *frags;
	size_t *heap; /* ranks, min-heap */
	size_t nr_heap;
};

static void heap_push(struct sweep *sw, size_t rank)
{
	size_t i = sw->nr_heap++;

	while (i && sw->heap[(i - 1) / 2] > rank) {
		sw->heap[i] = sw->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	sw->heap[i] = rank;
}

static void heap_pop(struct sweep *sw)
{
	size_t last = sw->heap[--sw->nr_heap], i = 0, n = sw->nr_heap;

	for (;;) {
		size_t ch = 2 * i + 1;

		if (ch >= n)
			break;
		if (ch + 1 < n && sw->heap[ch + 1] < sw->heap[ch])
			ch++;
		if (sw->heap[ch] >= last)
			break;
		sw->heap[i] = sw->heap[ch];
		i = ch;
	}
	if (n)
		sw->heap[i] = last;
}

static int cmp_start(const void *a, const void *b, void *arg)
{
	const struct frag *f = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	if (f[x].start != f[y].start)
		return f[x].start < f[y].start ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int sweep_emit(struct render_ctx *c, const size_t *order)
{
	struct sweep sw = { .frags = c->frags };
	size_t j = 0, n = c->nr;
	u128 pos = c->frags[order[0]].start;
	int ret = 0;

	sw.heap = mv_malloc(c->m, n * sizeof(*sw.heap));
	if (!sw.heap)
		return -ENOMEM;
	for (;;) {
		const struct frag *w;
		u128 bound;

		while (j < n && c->frags[order[j]].start <= pos)
			heap_push(&sw, order[j++]);
		while (sw.nr_heap && c->frags[sw.heap[0]].end <= pos)
			heap_pop(&sw);
		if (!sw.nr_heap) {
			if (j == n)
				break;
			pos = c->frags[order[j]].start;
			continue;
		}
		w = &c->frags[sw.heap[0]];
		bound = w->end;
		if (j < n && c->frags[order[j]].start < bound)
			bound = c->frags[order[j]].start;
		ret = emit(c, w, pos, bound);
		if (ret)
			break;
		pos = bound;
	}
	free(sw.heap);
	return ret;
}

static int resolve(struct render_ctx *c)
{
	size_t *order, i;
	int ret = 0;

	if (frags_sorted_disjoint(c)) {
		for (i = 0; i < c->nr && !ret; i++)
			ret = emit(c, &c->frags[i], c->frags[i].start,
				   c->frags[i].end);
		return ret;
	}
	order = mv_malloc(c->m, c->nr * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (i = 0; i < c->nr; i++)
		order[i] = i;
	qsort_r(order, c->nr, sizeof(*order), cmp_start, c->frags);
	ret = sweep_emit(c, order);
	free(order);
	return ret;
}

/* ---- views ---------------------------------------------------------------- */

struct mv_region *mv_flatview_root_of(struct mv_region *mr)
{
	while (mr && mr->enabled) {
		struct mv_region *next = NULL;
		unsigned found = 0;
		size_t i;

		if (mr->alias) {
			if (!mr->alias_offset && mr->size >= mr->alias->size) {
				mr = mr->alias;
				continue;
			}
			return mr;
		}
		if (mr->terminates)
			return mr;
		for (i = 0; i < mr->nr_children; i++) {
			struct mv_region *ch = mr->children[i];

			if (!ch->enabled)
				continue;
			if (++found > 1) {
				next = NULL;
				break;
			}
			if (!ch->addr && mr->size >= ch->size)
				next = ch;
		}
		if (!found)
			return NULL;
		if (!next)
			return mr;
		mr = next;
	}
	return NULL;
}

static int view_new(struct mv_machine *m, struct mv_region *root,
		    struct mv_flatview **out)
{
	struct mv_flatview *fv = mv_zalloc(m, sizeof(*fv));

	if (!fv)
		return -ENOMEM;
	atomic_init(&fv->refcount, 1);
	mv_machine_get(m);
	fv->machine = m;
	fv->gen = ++m->view_gen;
	fv->root = root;
	if (root)
		mv_region_ref(root);
	*out = fv;
	return 0;
}

struct batch_build {
	struct mv_view_batch *b;
	size_t nr, cap;
	bool failed;
};

/* Range @start (the next one) names @mr. */
static void batch_add(struct batch_build *bb, size_t start,
		      struct mv_region *mr)
{
	if (bb->failed || (bb->nr && bb->b[bb->nr - 1].mr == mr))
		return;
	if (bb->nr == bb->cap) {
		size_t cap = bb->cap ? 2 * bb->cap : 16;
		struct mv_view_batch *a = realloc(bb->b, cap * sizeof(*a));

		if (!a) {
			bb->failed = true;
			return;
		}
		bb->b = a;
		bb->cap = cap;
	}
	bb->b[bb->nr++] = (struct mv_view_batch){ .start = start, .mr = mr };
}

/* The batches of @old's ranges [@o, @o + @len), copied to @n onwards. */
static void batch_copy(struct batch_build *bb, const struct mv_flatview *old,
		       size_t o, size_t len, size_t n)
{
	size_t lo = 0, hi = old->nr_batches, k;

	while (hi - lo > 1) { /* the last batch starting at or before @o */
		size_t mid = lo + (hi - lo) / 2;

		if (old->batches[mid].start <= o)
			lo = mid;
		else
			hi = mid;
	}
	for (k = lo; k < old->nr_batches && old->batches[k].start < o + len;
	     k++) {
		size_t from =
			old->batches[k].start > o ? old->batches[k].start : o;

		batch_add(bb, n + (from - o), old->batches[k].mr);
	}
}

/*
 * Cut @fv's ranges into batches (those of a run copied from @old come
 * from @old's batches) and take the view's references a batch at a time;
 * without memory for the batches, a range at a time.
 */
static void view_take_refs(struct mv_flatview *fv,
			   const struct mv_flatview *old)
{
	struct batch_build bb = { 0 };
	size_t i, pos = 0, k;

	if (old && old->batches) {
		for (k = 0; k < fv->nr_same; k++) {
			const struct mv_view_same *r = &fv->same[k];

			for (i = pos; i < r->new; i++)
				batch_add(&bb, i, fv->ranges[i].mr);
			batch_copy(&bb, old, r->old, r->len, r->new);
			pos = r->new + r->len;
		}
	}
	for (i = pos; i < fv->nr; i++)
		batch_add(&bb, i, fv->ranges[i].mr);
	if (bb.failed) {
		free(bb.b);
		for (i = 0; i < fv->nr; i++)
			mv_region_ref(fv->ranges[i].mr);
		return;
	}
	fv->batches = bb.b;
	fv->nr_batches = bb.nr;
	for (k = 0; k < bb.nr; k++)
		mv_region_ref_n(
			bb.b[k].mr,
			(long)((k + 1 < bb.nr ? bb.b[k + 1].start : fv->nr) -
			       bb.b[k].start));
}

/*
 * Turn the output of @c into a published-ready view of @root (@old: the
 * view it was spliced from, or NULL).
 */
static int view_finish(struct render_ctx *c, struct mv_region *root, int ret,
		       const struct mv_flatview *old, struct mv_flatview **out)
{
	struct mv_flatview *fv;

	if (!ret)
		ret = view_new(c->m, root, &fv);
	free(c->frags);
	if (ret) {
		free(c->out);
		free(c->same);
		return ret;
	}
	fv->ranges = c->out;
	fv->nr = c->nr_out;
	fv->same = c->same;
	fv->nr_same = c->nr_same;
	view_take_refs(fv, old);
	c->m->stats.renders++;
	*out = fv;
	return 0;
}

int mv_render(struct mv_machine *m, struct mv_region *root,
	      struct mv_flatview **out)
{
	struct render_ctx c = { .m = m };
	int ret;

	if (!root && m->empty_view) {
		mv_flatview_ref(m->empty_view);
		*out = m->empty_view;
		return 0;
	}
	ret = root ? render_region(&c, root, 0, 0, MV_2_64, false, false, 0) :
		     0;
	if (!ret)
		ret = resolve(&c);
	ret = view_finish(&c, root, ret, NULL, out);
	if (!ret && !root) {
		mv_flatview_ref(*out);
		m->empty_view = *out;
	}
	return ret;
}

/* Copy @r clipped to [lo, hi] (inclusive), its offset following the clip. */
static int emit_clipped(struct render_ctx *c, const struct mv_flat_range *r,
			uint64_t lo, uint64_t hi)
{
	struct mv_flat_range piece = *r;

	piece.first = lo > r->first ? lo : r->first;
	piece.last = hi < r->last ? hi : r->last;
	piece.offset_in_region += piece.first - r->first;
	return emit_range(c, &piece);
}

/*
 * Copy the parts of @old's ranges that lie in [lo, hi), starting the search
 * at *@i (ranges wholly below @lo are skipped for good).
 */
static int copy_old(struct render_ctx *c, const struct mv_flatview *old,
		    size_t *i, u128 lo, u128 hi)
{
	const struct mv_flat_range *r = old->ranges;
	size_t j, end, a, b;
	int ret;

	/* Binary searches: the first range ending at or after @lo, then
	 * the first starting at or after @hi. */
	for (a = *i, b = old->nr; a < b;) {
		size_t mid = a + (b - a) / 2;

		if ((u128)r[mid].last < lo)
			a = mid + 1;
		else
			b = mid;
	}
	*i = a;
	for (b = old->nr; a < b;) {
		size_t mid = a + (b - a) / 2;

		if ((u128)r[mid].first < hi)
			a = mid + 1;
		else
			b = mid;
	}
	end = a;
	if (end == *i)
		return 0;
	/* Only the first piece can merge with what precedes it. */
	ret = emit_clipped(c, &r[*i], (uint64_t)lo, (uint64_t)(hi - 1));
	if (ret || end - *i == 1)
		return ret;
	/* Old ranges between the first and the last are copied as they are. */
	j = end - *i - 2;
	ret = reserve_out(c, j);
	if (ret)
		return ret;
	memcpy(&c->out[c->nr_out], &r[*i + 1], j * sizeof(*r));
	if (j && c->nr_same < c->cap_same)
		c->same[c->nr_same++] = (struct mv_view_same){ .old = *i + 1,
							       .new = c->nr_out,
							       .len = j };
	c->nr_out += j;
	return emit_clipped(c, &r[end - 1], (uint64_t)lo, (uint64_t)(hi - 1));
}

/* Every field, the dirty-log mask included. */
static bool range_same(const struct mv_flat_range *a,
		       const struct mv_flat_range *b)
{
	return a->first == b->first && a->last == b->last && a->mr == b->mr &&
	       a->offset_in_region == b->offset_in_region &&
	       a->dirty_log_mask == b->dirty_log_mask &&
	       a->romd_mode == b->romd_mode && a->readonly == b->readonly &&
	       a->nonvolatile == b->nonvolatile;
}

/*
 * A copied run's last range can have been merged with what followed it,
 * so trim each run until its ends equal the old ranges again (a view is
 * maximally merged, so this does not happen; it is checked, not assumed).
 */
static void same_trim(struct render_ctx *c, const struct mv_flatview *old)
{
	size_t k, n = 0;

	for (k = 0; k < c->nr_same; k++) {
		struct mv_view_same s = c->same[k];

		while (s.len && !range_same(&c->out[s.new + s.len - 1],
					    &old->ranges[s.old + s.len - 1]))
			s.len--;
		while (s.len &&
		       !range_same(&c->out[s.new], &old->ranges[s.old])) {
			s.old++;
			s.new ++;
			s.len--;
		}
		if (s.len)
			c->same[n++] = s;
	}
	c->nr_same = n;
}

/*
 * Old ranges outside the windows are copied (clipped at the window edges)
 * and the windows rendered afresh; emit_range() re-merges at every seam, so
 * the result is what a full render gives.  The runs copied unchanged are
 * recorded in the new view for the listener diff and its references.
 */
int mv_render_splice(struct mv_machine *m, const struct mv_flatview *old,
		     const u128 (*windows)[2], size_t nr_windows,
		     struct mv_flatview **out)
{
	struct render_ctx c = { .m = m };
	size_t i = 0, w;
	u128 pos = 0;
	int ret = 0;

	c.cap_out = old->nr + 2 * nr_windows + 1;
	c.out = mv_malloc(m, c.cap_out * sizeof(*c.out));
	if (!c.out)
		return -ENOMEM;
	/* One run at most per copy_old(); without room none is recorded
	 * and the listeners diff the whole views, as before. */
	c.same = malloc((nr_windows + 1) * sizeof(*c.same));
	c.cap_same = c.same ? nr_windows + 1 : 0;
	for (w = 0; w < nr_windows && !ret; w++) {
		ret = copy_old(&c, old, &i, pos, windows[w][0]);
		c.nr = 0;
		if (!ret)
			ret = render_region(&c, old->root, 0, windows[w][0],
					    windows[w][1], false, false, 0);
		if (!ret)
			ret = resolve(&c);
		pos = windows[w][1];
	}
	if (!ret)
		ret = copy_old(&c, old, &i, pos, MV_2_64);
	if (!ret)
		same_trim(&c, old);
	ret = view_finish(&c, old->root, ret, old, out);
	if (!ret && c.same)
		(*out)->base_gen = old->gen;
	return ret;
}
