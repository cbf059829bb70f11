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
 * between them are found by binary search and kept as runs, which the new
 * view records (struct mv_view_same) so that the listener diff skips them;
 * the new view shares the old one's chunks (struct mv_view_chunk) wholly
 * inside the runs, with their region references, and copies only the
 * chunks at the seams: nothing walks the unchanged ranges.
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
	/* a splice: the view spliced from, and the runs of its ranges kept
	 * as they are, each standing before @out[@new] (@new becomes the
	 * run's index in the new view when the view is built) */
	const struct mv_flatview *old;
	size_t old_k; /* the chunk of @old looked in last */
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
/* The first of @r's children in address order starting at or after
 * @from (binary search). */
static size_t child_at_or_after(const struct mv_region *r, s128 from)
{
	size_t lo = 0, hi = r->nr_children;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((s128)r->by_addr[mid]->addr < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t first_child_from(struct mv_region *r, s128 from)
{
	size_t lo, h = r->by_addr_hint;

	if (from <= 0)
		return 0;
	/* the last window's place first: a region toggled again and again
	 * costs no search among thousands of siblings */
	if (h < r->nr_children && (s128)r->by_addr[h]->addr >= from &&
	    (!h || (s128)r->by_addr[h - 1]->addr < from)) {
		lo = h;
	} else {
		lo = child_at_or_after(r, from);
		r->by_addr_hint = lo;
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
	size_t lo = child_at_or_after(mr, from), i, n = 0;
	struct mv_region **cand;
	int ret = 0;

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
		/* what render_region() would clip away whole, not called */
		if (!ch->enabled ||
		    base + (s128)ch->addr + (s128)ch->size <= (s128)s)
			continue;
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

/* A render's scratch arrays: the machine's spares (struct mv_spare). */
static void scratch_take(struct render_ctx *c)
{
	size_t size;

	c->frags = mv_spare_take(c->m, MV_SPARE_FRAGS, &size);
	c->cap = size / sizeof(*c->frags);
	c->out = mv_spare_take(c->m, MV_SPARE_OUT, &size);
	c->cap_out = size / sizeof(*c->out);
	c->same = mv_spare_take(c->m, MV_SPARE_SAME, &size);
	c->cap_same = size / sizeof(*c->same);
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

/* The last range of kept run @s (its chunk's place as a hint). */
static const struct mv_flat_range *run_last(const struct render_ctx *c,
					    const struct mv_view_same *s)
{
	size_t k = s->end_pos;

	return mv_fv_cur(c->old, &k, s->old + s->len - 1);
}

/* Append @r to the output, merging it into the last range if it can. */
static int emit_range(struct render_ctx *c, const struct mv_flat_range *r)
{
	int ret;

	if (c->nr_same && c->same[c->nr_same - 1].new == c->nr_out) {
		/* The last thing out is a kept run: if @r merges with its
		 * last range (a view is maximally merged, so this does not
		 * happen; it is checked, not assumed), take that out of it. */
		struct mv_view_same *s = &c->same[c->nr_same - 1];
		const struct mv_flat_range *last = run_last(c, s);

		if (mv_flat_range_can_merge(last, r)) {
			ret = reserve_out(c, 1);
			if (ret)
				return ret;
			c->out[c->nr_out++] = *last;
			if (!--s->len)
				c->nr_same--;
		}
	}
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
	size_t size;
	struct mv_flatview *fv = mv_spare_take(m, MV_SPARE_VIEW, &size);

	if (fv)
		memset(fv, 0, sizeof(*fv));
	else
		fv = mv_zalloc(m, sizeof(*fv));
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

/*
 * Turn the output of @c into a published-ready view of @root: its fresh
 * ranges (@c->out) and, for a splice, the runs of @c->old it kept.
 */
static int view_finish(struct render_ctx *c, struct mv_region *root, int ret,
		       struct mv_flatview **out)
{
	struct mv_flatview *fv = NULL;

	mv_spare_give(c->m, MV_SPARE_FRAGS, c->frags,
		      c->cap * sizeof(*c->frags));
	if (!ret)
		ret = view_new(c->m, root, &fv);
	if (!ret) {
		ret = mv_view_build(c->m, c->old, c->out, c->nr_out, c->same,
				    c->nr_same, fv);
		if (ret) {
			fv->nr_groups = 0;
			fv->groups = NULL;
			mv_flatview_unref(fv);
		}
	}
	mv_spare_give(c->m, MV_SPARE_OUT, c->out, c->cap_out * sizeof(*c->out));
	if (ret) {
		mv_spare_give(c->m, MV_SPARE_SAME, c->same,
			      c->cap_same * sizeof(*c->same));
		return ret;
	}
	fv->same = c->same;
	fv->nr_same = c->nr_same;
	fv->cap_same = c->cap_same;
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
	scratch_take(&c);
	ret = root ? render_region(&c, root, 0, 0, MV_2_64, false, false, 0) :
		     0;
	if (!ret)
		ret = resolve(&c);
	ret = view_finish(&c, root, ret, out);
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

/* Keep @old's ranges [@o, @o + @len) as they are, next in the output. */
static int keep_run(struct render_ctx *c, size_t o, size_t len, size_t old_pos,
		    size_t end_pos)
{
	if (c->nr_same == c->cap_same) {
		size_t cap = c->cap_same ? 2 * c->cap_same : 8;
		struct mv_view_same *a =
			mv_realloc(c->m, c->same, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		c->same = a;
		c->cap_same = cap;
	}
	c->same[c->nr_same++] = (struct mv_view_same){ .old = o,
						       .new = c->nr_out,
						       .len = len,
						       .old_pos = old_pos,
						       .end_pos = end_pos };
	return 0;
}

/* The range output last: a fresh one, or the end of the last kept run. */
static const struct mv_flat_range *last_out(const struct render_ctx *c)
{
	const struct mv_view_same *s = c->nr_same ? &c->same[c->nr_same - 1] :
						    NULL;

	if (s && s->new == c->nr_out)
		return run_last(c, s);
	return c->nr_out ? &c->out[c->nr_out - 1] : NULL;
}

/*
 * Copy the parts of @old's ranges that lie in [lo, hi), starting the search
 * at *@i (ranges wholly below @lo are skipped for good): those between are
 * kept as a run, the first and the last output afresh when they must be
 * clipped (or the first merges with what precedes it).
 */
static int copy_old(struct render_ctx *c, const struct mv_flatview *old,
		    size_t *i, u128 lo, u128 hi)
{
	const struct mv_flat_range *r, *prev;
	size_t a, b, end, ka, kb; /* chunks near @a and near @end */
	int ret = 0;

	*i = mv_flatview_search_near(old, *i, lo, false, &c->old_k);
	ka = c->old_k;
	end = mv_flatview_search_near(old, *i, hi, true, &c->old_k);
	kb = c->old_k;
	if (end == *i)
		return 0;
	a = *i;
	b = end;
	r = mv_fv_cur(old, &ka, a);
	prev = last_out(c);
	if ((u128)r->first < lo || (u128)r->last >= hi ||
	    (prev && mv_flat_range_can_merge(prev, r))) {
		ret = emit_clipped(c, r, (uint64_t)lo, (uint64_t)(hi - 1));
		a++;
	}
	if (!ret && b > a && (u128)mv_fv_cur(old, &kb, b - 1)->last >= hi)
		b--;
	if (!ret && b > a) { /* the hints: the chunks of its ends */
		mv_fv_cur(old, &ka, a);
		mv_fv_cur(old, &kb, b - 1);
		ret = keep_run(c, a, b - a, ka, kb);
	}
	if (!ret && b < end && b >= a)
		ret = emit_clipped(c, mv_fv_cur(old, &kb, end - 1),
				   (uint64_t)lo, (uint64_t)(hi - 1));
	return ret;
}

/* The place (mv_fv_pos()) of the chunk of @old holding range @i, given
 * the place @k of the chunk holding range @i + 1. */
static size_t chunk_before(const struct mv_flatview *old, size_t k, size_t i)
{
	size_t g = k / MV_VIEW_GROUP;

	if (i + 1 ==
	    old->group_first[g] + old->groups[g]->first[k % MV_VIEW_GROUP])
		return mv_fv_pos_prev(old, k);
	return k;
}

/*
 * mv_render_splice() of one window [lo, hi) whose edges cut no range of
 * @old (the common commit: a region toggled, added or removed): one
 * search for the window's ranges, the rest kept as two runs around it.
 * Return: 1 when the window does not qualify (nothing done: the general
 * splice runs), else 0 or -ENOMEM.
 */
static int splice_one(struct render_ctx *c, const struct mv_flatview *old,
		      u128 lo, u128 hi)
{
	size_t k = c->old_k, a, b, kb, n = old->nr;
	const struct mv_flat_range *r = NULL, *prev;
	int ret = 0;

	if (!n || !lo || hi > UINT64_MAX)
		return 1;
	a = mv_flatview_search_near(old, 0, lo, false, &k); /* last >= lo */
	kb = k;
	for (b = a; b < n; b++) { /* the window's own ranges, a few */
		r = mv_fv_cur(old, &kb, b);
		if ((u128)r->first >= hi)
			break;
		if ((u128)r->first < lo || (u128)r->last >= hi || b - a == 4)
			return 1;
	}
	if (a)
		ret = keep_run(c, 0, a, 0,
			       a < n ? chunk_before(old, k, a - 1) : k);
	c->nr = 0;
	if (!ret)
		ret = render_region(c, old->root, 0, lo, hi, false, false, 0);
	if (!ret)
		ret = resolve(c);
	if (ret || b == n)
		return ret;
	prev = last_out(c);
	if (prev && mv_flat_range_can_merge(prev, r)) { /* rare: merged */
		ret = emit_range(c, r);
		if (ret || ++b == n)
			return ret;
		mv_fv_cur(old, &kb, b);
	}
	return keep_run(c, b, n - b, kb,
			mv_fv_pos(old->nr_groups - 1,
				  old->groups[old->nr_groups - 1]->nr - 1));
}

/*
 * Old ranges outside the windows are copied (clipped at the window edges)
 * and the windows rendered afresh; emit_range() re-merges at every seam, so
 * the result is what a full render gives.  The runs between the clipped
 * ends are kept as they are: the new view shares the old one's chunks
 * inside them, and records them for the listener diff.
 */
int mv_render_splice(struct mv_machine *m, const struct mv_flatview *old,
		     const u128 (*windows)[2], size_t nr_windows,
		     struct mv_flatview **out)
{
	struct render_ctx c = { .m = m, .old = old, .old_k = old->hint_pos };
	size_t i = 0, w;
	u128 pos = 0;
	int ret = 0;

	scratch_take(&c);
	if (nr_windows == 1) {
		ret = splice_one(&c, old, windows[0][0], windows[0][1]);
		if (ret <= 0)
			goto finish;
		ret = 0;
	}
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
finish:
	ret = view_finish(&c, old->root, ret, out);
	if (!ret)
		(*out)->base_gen = old->gen;
	return ret;
}
