// SPDX-License-Identifier: MIT
/*
 * Transactions: nestable begin/commit; the outermost commit produces one
 * new view per distinct flat-view root and publishes them, or, if that
 * fails, publishes nothing and keeps the change pending (reference §3.4).
 *
 * QEMU re-renders every root in full at every commit.  We produce the same
 * views, but render only the windows that changed: each change records the
 * window it touched in the local coordinates of a region, and the commit
 * follows each window up through containers and through every alias of
 * every region on the way to the view roots.  The rest of a new view is
 * copied from the old one.  Too many windows, or a change of the view's
 * root, fall back to a full render.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Beyond this many windows (or steps to find them) render in full. */
#define MAX_WINDOWS 64
#define MAX_STEPS 4096

void mv_txn_begin(struct mv_machine *m)
{
	if (m->txn_depth++)
		return;
	m->as_new_in_txn = false;
	m->saved_pending = m->update_pending;
	m->saved_dirty_all = m->dirty_all;
	m->saved_nr_dirty = m->nr_dirty;
}

void mv_txn_record(struct mv_machine *m, const struct mv_undo *u)
{
	struct mv_undo *a;

	if (m->undo_failed)
		return;
	if (m->nr_undo == m->cap_undo) {
		size_t cap = m->cap_undo ? m->cap_undo * 2 : 16;

		a = mv_realloc(m, m->undo, cap * sizeof(*a));
		if (!a) {
			m->undo_failed = true;
			return;
		}
		m->undo = a;
		m->cap_undo = cap;
	}
	m->undo[m->nr_undo++] = *u;
	mv_region_ref(u->r);
	if (u->parent)
		mv_region_ref(u->parent);
}

static void undo_clear(struct mv_machine *m)
{
	size_t i;

	for (i = 0; i < m->nr_undo; i++) {
		mv_region_unref(m->undo[i].r);
		mv_region_unref(m->undo[i].parent);
	}
	m->nr_undo = 0;
	m->undo_failed = false;
}

static void undo_one(const struct mv_undo *u)
{
	struct mv_region *r = u->r;

	switch (u->op) {
	case MV_UNDO_LINK:
		mv_region_unlink(u->parent, r);
		r->addr = u->addr;
		r->priority = u->priority;
		mv_region_unref(r); /* the parent's reference */
		break;
	case MV_UNDO_UNLINK:
		mv_region_ref(r);
		r->addr = u->addr;
		r->priority = u->priority;
		mv_region_relink(u->parent, r, u->seq);
		break;
	case MV_UNDO_ADDR:
		if (u->parent)
			mv_region_unlink(u->parent, r);
		r->addr = u->addr;
		r->priority = u->priority;
		if (u->parent)
			mv_region_relink(u->parent, r, u->seq);
		break;
	case MV_UNDO_ENABLED:
		r->enabled = u->flag;
		break;
	case MV_UNDO_SIZE:
		r->size = u->size;
		if (r->block)
			r->block->used_length = u->used_length;
		break;
	case MV_UNDO_ALIAS_OFFSET:
		r->alias_offset = u->addr;
		break;
	case MV_UNDO_READONLY:
		r->readonly = u->flag;
		break;
	case MV_UNDO_NONVOLATILE:
		r->nonvolatile = u->flag;
		break;
	case MV_UNDO_ROMD:
		r->romd_mode = u->flag;
		break;
	case MV_UNDO_LOG:
		r->dirty_log_mask = u->mask;
		break;
	}
	if (r->container)
		r->container->disjoint_known = false;
}

/*
 * Take back every change of the transaction: the tree is as it was at the
 * outermost begin, so the published views match it again.
 */
static void undo_apply(struct mv_machine *m)
{
	size_t i;

	for (i = m->nr_undo; i-- > 0;)
		undo_one(&m->undo[i]);
	while (m->nr_dirty > m->saved_nr_dirty)
		mv_region_unref(m->dirty[--m->nr_dirty].r);
	m->update_pending = m->saved_pending;
	/* What the undo log does not cover (global logging turned on, an
	 * address space rendered from the undone tree) is put right by a
	 * full render: at the next commit, or now owed. */
	m->dirty_all = true;
	if (m->as_new_in_txn)
		m->update_pending = true;
}

void mv_txn_discard(struct mv_machine *m)
{
	undo_clear(m);
	m->txn_depth = 0;
}

void mv_txn_mark_pending(struct mv_machine *m)
{
	m->update_pending = true;
}

void mv_txn_mark_dirty_all(struct mv_machine *m)
{
	m->dirty_all = true;
}

static void add_mark(struct mv_machine *m, struct mv_region *r, s128 start,
		     s128 end, bool raw)
{
	if (m->dirty_all)
		return;
	if (m->nr_dirty == MV_MAX_DIRTY) {
		m->dirty_all = true;
		return;
	}
	if (start < 0)
		start = 0;
	if (end <= start)
		return;
	mv_region_ref(r); /* it must outlive the commit that reads it */
	m->dirty[m->nr_dirty++] =
		(struct mv_dirty){ r, (u128)start, (u128)end, raw };
}

void mv_txn_mark_dirty(struct mv_machine *m, struct mv_region *r, u128 start,
		       u128 end)
{
	add_mark(m, r, (s128)start, (s128)end, false);
}

void mv_txn_mark_dirty_self(struct mv_machine *m, struct mv_region *r,
			    u128 start, u128 end)
{
	size_t i;

	if (mv_region_is_view_root(r)) /* it renders at its own address */
		add_mark(m, r, (s128)start, (s128)end, true);
	if (r->container)
		add_mark(m, r->container, (s128)(start + r->addr),
			 (s128)(end + r->addr), false);
	for (i = 0; i < r->nr_aliases; i++) {
		s128 off = (s128)r->aliases[i]->alias_offset;

		add_mark(m, r->aliases[i], (s128)start - off, (s128)end - off,
			 false);
	}
}

void mv_txn_clear_dirty(struct mv_machine *m)
{
	size_t i;

	for (i = 0; i < m->nr_dirty; i++)
		mv_region_unref(m->dirty[i].r);
	m->nr_dirty = 0;
	m->dirty_all = false;
}

void mv_machine_set_full_render(struct mv_machine *m, bool full)
{
	m->full_render_only = full;
}

/* Windows of one view root, in view coordinates. */
struct window_set {
	const struct mv_region *root;
	u128 w[MAX_WINDOWS][2];
	size_t nr;
	size_t steps;
	bool overflow;
};

/*
 * Follow the window [s, e) of @x's local coordinates to the view root:
 * through @x's container and through every alias of @x.
 */
static void propagate(struct window_set *ws, const struct mv_region *x, s128 s,
		      s128 e, bool raw)
{
	size_t i;

	if (ws->overflow || ++ws->steps > MAX_STEPS) {
		ws->overflow = true;
		return;
	}
	if (!raw) {
		if (!x->enabled)
			return;
		if (s < 0)
			s = 0;
		if (e > (s128)x->size)
			e = (s128)x->size;
	}
	if (s >= e)
		return;
	if (x == ws->root) {
		/* A view root renders at its own address (QEMU). */
		s128 lo = s + (s128)x->addr, hi = e + (s128)x->addr;

		if (lo < 0)
			lo = 0;
		if (hi > (s128)MV_2_64)
			hi = (s128)MV_2_64;
		if (lo >= hi)
			return;
		if (ws->nr == MAX_WINDOWS) {
			ws->overflow = true;
			return;
		}
		ws->w[ws->nr][0] = (u128)lo;
		ws->w[ws->nr][1] = (u128)hi;
		ws->nr++;
		return;
	}
	if (x->container)
		propagate(ws, x->container, s + (s128)x->addr,
			  e + (s128)x->addr, false);
	/* An alias shows target offset t at its own offset t - alias_offset. */
	for (i = 0; i < x->nr_aliases; i++)
		propagate(ws, x->aliases[i],
			  s - (s128)x->aliases[i]->alias_offset,
			  e - (s128)x->aliases[i]->alias_offset, false);
}

/*
 * Sort by start.  A commit has a handful of windows (one or two for a
 * single change, at most MAX_WINDOWS): an insertion sort, not qsort()
 * with its comparator calls and element copies through memcpy().
 */
static void windows_sort(struct window_set *ws)
{
	size_t i, j;

	for (i = 1; i < ws->nr; i++) {
		u128 lo = ws->w[i][0], hi = ws->w[i][1];

		for (j = i; j > 0 && ws->w[j - 1][0] > lo; j--) {
			ws->w[j][0] = ws->w[j - 1][0];
			ws->w[j][1] = ws->w[j - 1][1];
		}
		ws->w[j][0] = lo;
		ws->w[j][1] = hi;
	}
}

/* Sort and merge overlapping or touching windows. */
static void windows_normalize(struct window_set *ws)
{
	size_t i, n = 0;

	windows_sort(ws);
	for (i = 0; i < ws->nr; i++) {
		if (n && ws->w[i][0] <= ws->w[n - 1][1]) {
			if (ws->w[i][1] > ws->w[n - 1][1])
				ws->w[n - 1][1] = ws->w[i][1];
			continue;
		}
		ws->w[n][0] = ws->w[i][0];
		ws->w[n][1] = ws->w[i][1];
		n++;
	}
	ws->nr = n;
}

/* The next view of root @root, whose current view is @old. */
static int next_view(struct mv_machine *m, struct mv_region *root,
		     struct mv_flatview *old, struct mv_flatview **out)
{
	struct window_set set, *ws = &set; /* 2 KiB: on the stack */
	size_t i;
	int ret;

	if (!root || m->dirty_all || m->full_render_only || old->root != root)
		return mv_render(m, root, out);
	ws->root = root;
	ws->nr = 0;
	ws->steps = 0;
	ws->overflow = false;
	for (i = 0; i < m->nr_dirty && !ws->overflow; i++)
		propagate(ws, m->dirty[i].r, (s128)m->dirty[i].start,
			  (s128)m->dirty[i].end, m->dirty[i].raw);
	if (ws->overflow) {
		ret = mv_render(m, root, out);
	} else {
		windows_normalize(ws);
		ret = mv_render_splice(m, old, (const u128(*)[2])ws->w, ws->nr,
				       out);
	}
	return ret;
}

/* One new view per address space; ASes with the same root share it. */
static int render_all(struct mv_machine *m, struct mv_flatview **views)
{
	struct mv_as *as;
	size_t i = 0, j;
	int ret;

	for (as = m->as_head; as; as = as->next, i++) {
		struct mv_region *root = mv_flatview_root_of(as->root);

		views[i] = NULL;
		for (j = 0; j < i; j++) {
			if (views[j] && views[j]->root == root) {
				mv_flatview_ref(views[j]);
				views[i] = views[j];
				break;
			}
		}
		if (views[i])
			continue;
		ret = next_view(m, root, as->view, &views[i]);
		if (ret) {
			for (j = 0; j < i; j++)
				mv_flatview_unref(views[j]);
			return ret;
		}
	}
	return 0;
}

/*
 * Tell the listeners (begin, then each address space's topology passes);
 * a failing region_add rolls everything back: the inverse events to the
 * listeners, then the tree as it was.
 */
static int deliver(struct mv_machine *m, struct mv_flatview **views)
{
	struct mv_event_log *log;
	struct mv_as *as;
	size_t i = 0, bound = 0;
	int ret = 0;

	m->listener_error = 0;
	if (!m->nr_listeners)
		return 0;
	log = mv_event_log_new(m);
	if (!log)
		return -ENOMEM;
	/* At most a del or add and a log change per range and listener. */
	for (as = m->as_head; as; as = as->next)
		bound += 2 * mv_listeners_update_size(as, views[i++]) *
			 as->nr_listeners;
	ret = mv_event_log_reserve(log, bound);
	if (ret) {
		mv_event_log_free(log);
		return ret;
	}
	i = 0;
	m->listener_error = mv_listeners_begin(m);
	for (as = m->as_head; as && !ret; as = as->next)
		ret = mv_listeners_update(as, views[i++], log);
	if (ret) {
		mv_listeners_rollback(m, log);
		if (!m->undo_failed)
			undo_apply(m);
	} else if (!m->listener_error) {
		m->listener_error = mv_event_log_error(log);
	}
	mv_event_log_free(log);
	return ret;
}

int mv_txn_commit(struct mv_machine *m)
{
	struct mv_flatview **views, *few[8]; /* few: no allocation */
	struct mv_as *as;
	size_t nr_as = 0, i = 0;
	int ret;

	if (!m->txn_depth)
		return -EINVAL;
	if (--m->txn_depth)
		return 0;
	if (!m->update_pending) {
		/* Nothing visible changed (QEMU): the windows can go, but a
		 * moved root still owes its views a full render. */
		bool all = m->dirty_all;

		mv_txn_clear_dirty(m);
		m->dirty_all = all;
		undo_clear(m);
		return 0;
	}
	for (as = m->as_head; as; as = as->next)
		nr_as++;
	views = nr_as <= 8 ? few : mv_malloc(m, nr_as * sizeof(*views));
	if (!views) {
		undo_clear(m);
		return -ENOMEM;
	}
	ret = mv_as_reserve_retired(m, nr_as);
	if (!ret)
		ret = render_all(m, views);
	if (!ret) {
		ret = deliver(m, views);
		for (i = 0; ret && i < nr_as; i++)
			mv_flatview_unref(views[i]);
		i = 0;
	}
	if (ret) {
		/* Nothing published; on a render failure the change stays
		 * pending, after a rollback it is gone. */
		if (views != few)
			free(views);
		undo_clear(m);
		return ret;
	}
	for (as = m->as_head; as; as = as->next)
		mv_as_set_view(as, views[i++]);
	if (views != few)
		free(views);
	ret = mv_listeners_commit(m);
	if (!ret)
		ret = m->listener_error;
	m->update_pending = false;
	mv_txn_clear_dirty(m);
	undo_clear(m);
	m->stats.commits++;
	mv_reclaim(m); /* views whose grace period ended meanwhile */
	return ret;
}
