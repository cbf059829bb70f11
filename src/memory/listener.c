// SPDX-License-Identifier: MIT
/*
 * Memory listeners (QEMU 7.2's MemoryListener, reference §3.4-3.5):
 * registration in priority order with replay, the two topology passes of a
 * commit (deletions first in reverse order, then nops, log changes and
 * additions in forward order), and the rollback of a commit whose
 * region_add failed: every delivered event is taken back in reverse.
 * A view spliced from the current one is diffed only between the runs it
 * copied unchanged (update_windowed() says why that delivers the same
 * events in the same order).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum ev_type {
	EV_ADD,
	EV_DEL,
	EV_LOG_START,
	EV_LOG_STOP
};

struct event {
	enum ev_type type;
	struct mv_listener *l;
	struct mv_section s;
	unsigned old_mask, new_mask;
};

/*
 * struct mv_event_log - what a commit delivered, for rollback.  @broken:
 * an event could not be recorded, so a rollback would be partial.
 */
struct mv_event_log {
	struct mv_machine *m;
	struct event *ev;
	size_t nr, cap;
	bool broken;
	int first_error; /* of a callback other than region_add */
};

/* A kept log's event array above this is freed, not kept. */
#define SPARE_LOG_MAX_EVENTS 4096

struct mv_event_log *mv_event_log_new(struct mv_machine *m)
{
	struct mv_event_log *log = m->spare_log;

	if (log) { /* the last commit's, its array's room kept */
		m->spare_log = NULL;
		MV_UNPOISON(log, sizeof(*log));
		MV_UNPOISON(log->ev, log->cap * sizeof(*log->ev));
		log->nr = 0;
		log->broken = false;
		log->first_error = 0;
		return log;
	}
	log = mv_zalloc(m, sizeof(*log));
	if (log)
		log->m = m;
	return log;
}

int mv_event_log_reserve(struct mv_event_log *log, size_t n)
{
	struct event *a;

	if (log->nr + n <= log->cap)
		return 0;
	a = mv_realloc(log->m, log->ev, (log->nr + n) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	log->ev = a;
	log->cap = log->nr + n;
	return 0;
}

int mv_event_log_error(const struct mv_event_log *log)
{
	return log->first_error;
}

void mv_event_log_free(struct mv_event_log *log)
{
	struct mv_machine *m;

	if (!log)
		return;
	m = log->m;
	if (!m->spare_log && !m->dead && log->cap <= SPARE_LOG_MAX_EVENTS) {
		MV_POISON(log->ev, log->cap * sizeof(*log->ev));
		MV_POISON(log, sizeof(*log));
		m->spare_log = log;
		return;
	}
	free(log->ev);
	free(log);
}

void mv_event_log_drain(struct mv_machine *m)
{
	struct mv_event_log *log = m->spare_log;

	if (!log)
		return;
	m->spare_log = NULL;
	MV_UNPOISON(log, sizeof(*log));
	MV_UNPOISON(log->ev, log->cap * sizeof(*log->ev));
	free(log->ev);
	free(log);
}

static void log_event(struct mv_event_log *log, enum ev_type type,
		      struct mv_listener *l, const struct mv_section *s,
		      unsigned old_mask, unsigned new_mask)
{
	if (!log || log->broken)
		return;
	if (log->nr == log->cap) {
		size_t cap = log->cap ? log->cap * 2 : 32;
		struct event *a = mv_realloc(log->m, log->ev, cap * sizeof(*a));

		if (!a) {
			log->broken = true;
			return;
		}
		log->ev = a;
		log->cap = cap;
	}
	log->ev[log->nr++] = (struct event){ type, l, *s, old_mask, new_mask };
}

static void note_error(struct mv_event_log *log, int ret)
{
	if (log && ret && !log->first_error)
		log->first_error = ret;
}

static struct mv_section section_of(struct mv_as *as,
				    const struct mv_flat_range *fr)
{
	return (struct mv_section){
		.as = as,
		.mr = fr->mr,
		.offset_within_region = fr->offset_in_region,
		.first = fr->first,
		.last = fr->last,
		.dirty_log_mask = fr->dirty_log_mask,
		.readonly = fr->readonly,
		.nonvolatile = fr->nonvolatile,
		.romd_mode = fr->romd_mode,
	};
}

/* flatrange_equal(): everything but the dirty-log mask. */
static bool range_equal(const struct mv_flat_range *a,
			const struct mv_flat_range *b)
{
	return a->mr == b->mr && a->first == b->first && a->last == b->last &&
	       a->offset_in_region == b->offset_in_region &&
	       a->romd_mode == b->romd_mode && a->readonly == b->readonly &&
	       a->nonvolatile == b->nonvolatile;
}

/* ---- delivery to one address space's listeners ---------------------- */

static int call_region(struct mv_listener *l, enum ev_type t,
		       const struct mv_section *s, unsigned om, unsigned nm)
{
	const struct mv_listener_ops *o = l->ops;

	switch (t) {
	case EV_ADD:
		return o->region_add ? o->region_add(l, s) : 0;
	case EV_DEL:
		return o->region_del ? o->region_del(l, s) : 0;
	case EV_LOG_START:
		return o->log_start ? o->log_start(l, s, om, nm) : 0;
	default:
		return o->log_stop ? o->log_stop(l, s, om, nm) : 0;
	}
}

/*
 * MEMORY_LISTENER_UPDATE_REGION for one range: every listener of @as in
 * forward or reverse order.  Only region_add failures stop delivery.
 */
static int update_region(struct mv_as *as, enum ev_type t, bool reverse,
			 const struct mv_flat_range *fr, unsigned om,
			 unsigned nm, struct mv_event_log *log)
{
	struct mv_section s = section_of(as, fr);
	size_t i, n = as->nr_listeners;
	int ret;

	for (i = 0; i < n; i++) {
		struct mv_listener *l = as->listeners[reverse ? n - 1 - i : i];

		ret = call_region(l, t, &s, om, nm);
		if (ret && t == EV_ADD)
			return ret;
		note_error(log, ret);
		log_event(log, t, l, &s, om, nm);
	}
	return 0;
}

static void update_nop(struct mv_as *as, const struct mv_flat_range *fr,
		       struct mv_event_log *log)
{
	struct mv_section s = section_of(as, fr);
	size_t i;

	for (i = 0; i < as->nr_listeners; i++) {
		struct mv_listener *l = as->listeners[i];

		if (l->ops->region_nop)
			note_error(log, l->ops->region_nop(l, &s));
	}
}

/*
 * address_space_update_topology_pass() over old ranges [@io, @eo) and new
 * ranges [@in, @en).
 */
static int topology_pass(struct mv_as *as, const struct mv_flatview *old,
			 size_t io, size_t eo, const struct mv_flatview *new,
			 size_t in, size_t en, bool adding, size_t ko,
			 struct mv_event_log *log)
{
	size_t kn = ko; /* a patched view's chunks are where @old's are */
	int ret = 0;

	while ((io < eo || in < en) && !ret) {
		const struct mv_flat_range *fo =
			io < eo ? mv_fv_cur(old, &ko, io) : NULL;
		const struct mv_flat_range *fn =
			in < en ? mv_fv_cur(new, &kn, in) : NULL;

		if (fo && (!fn || fo->first < fn->first ||
			   (fo->first == fn->first && !range_equal(fo, fn)))) {
			if (!adding)
				ret = update_region(as, EV_DEL, true, fo, 0, 0,
						    log);
			io++;
		} else if (fo && fn && range_equal(fo, fn)) {
			if (adding) {
				update_nop(as, fn, log);
				if (fn->dirty_log_mask & ~fo->dirty_log_mask)
					ret = update_region(as, EV_LOG_START,
							    false, fn,
							    fo->dirty_log_mask,
							    fn->dirty_log_mask,
							    log);
				if (fo->dirty_log_mask & ~fn->dirty_log_mask)
					ret = update_region(as, EV_LOG_STOP,
							    true, fn,
							    fo->dirty_log_mask,
							    fn->dirty_log_mask,
							    log);
			}
			io++;
			in++;
		} else {
			if (adding)
				ret = update_region(as, EV_ADD, false, fn, 0, 0,
						    log);
			in++;
		}
	}
	return ret;
}

/*
 * Whether the passes may skip the runs @new copied unchanged from @as's
 * current view.  Both views are sorted and disjoint, so when the walk
 * reaches the start of such a run on one side, every range still left
 * before it on the other side starts below it: the walk deletes or adds
 * those and meets the run on both sides at once; inside the run every
 * pair is equal, mask included, so it delivers nothing but region_nop.
 * The passes over the gaps between the runs therefore deliver exactly
 * the events of the full passes, in the same order -- unless a listener
 * wants region_nop for every unchanged range.
 */
static bool update_windowed(const struct mv_as *as,
			    const struct mv_flatview *new)
{
	size_t i;

	if (!new->base_gen || new->base_gen != as->view->gen)
		return false;
	for (i = 0; i < as->nr_listeners; i++)
		if (as->listeners[i]->ops->region_nop)
			return false;
	return true;
}

/* One pass over the gaps between @new's unchanged runs (or everything). */
static int update_pass(struct mv_as *as, const struct mv_flatview *new,
		       bool windowed, bool adding, struct mv_event_log *log)
{
	const struct mv_flatview *old = as->view;
	size_t io = 0, in = 0, k, ko = 0; /* ko: a hint for old range io */
	int ret;

	for (k = 0; windowed && k < new->nr_same; k++) {
		const struct mv_view_same *r = &new->same[k];

		/* a gap of old ranges only has nothing to add, of new ones
		 * nothing to delete */
		if (adding ? in < r->new : io < r->old) {
			ret = topology_pass(as, old, io, r->old, new, in,
					    r->new, adding, ko, log);
			if (ret)
				return ret;
		}
		io = r->old + r->len;
		in = r->new + r->len;
		ko = r->end_pos;
	}
	if (adding ? in == new->nr : io == old->nr)
		return 0;
	return topology_pass(as, old, io, old->nr, new, in, new->nr, adding, ko,
			     log);
}

size_t mv_listeners_update_size(const struct mv_as *as,
				const struct mv_flatview *new)
{
	size_t n, k;

	if (!as->nr_listeners || as->view == new)
		return 0;
	n = as->view->nr + new->nr;
	if (update_windowed(as, new))
		for (k = 0; k < new->nr_same; k++)
			n -= 2 * new->same[k].len;
	return n;
}

int mv_listeners_update(struct mv_as *as, const struct mv_flatview *new,
			struct mv_event_log *log)
{
	bool windowed;
	int ret;

	if (!as->nr_listeners || as->view == new)
		return 0;
	windowed = update_windowed(as, new);
	ret = update_pass(as, new, windowed, false, log);
	if (!ret)
		ret = update_pass(as, new, windowed, true, log);
	return ret;
}

/* ---- machine-wide calls ------------------------------------------------ */

enum global_cb {
	CB_BEGIN,
	CB_COMMIT,
	CB_GLOBAL_START,
	CB_GLOBAL_STOP
};

static int call_one(struct mv_listener *l, enum global_cb cb)
{
	const struct mv_listener_ops *o = l->ops;

	switch (cb) {
	case CB_BEGIN:
		return o->begin ? o->begin(l) : 0;
	case CB_COMMIT:
		return o->commit ? o->commit(l) : 0;
	case CB_GLOBAL_START:
		return o->log_global_start ? o->log_global_start(l) : 0;
	default:
		return o->log_global_stop ? o->log_global_stop(l) : 0;
	}
}

/* MEMORY_LISTENER_CALL_GLOBAL: every listener, forward or reverse. */
static int call_all(struct mv_machine *m, enum global_cb cb, bool reverse)
{
	size_t i, n = m->nr_listeners;
	int first = 0;

	for (i = 0; i < n; i++) {
		int ret = call_one(m->listeners[reverse ? n - 1 - i : i], cb);

		if (ret && !first)
			first = ret;
	}
	return first;
}

int mv_listeners_begin(struct mv_machine *m)
{
	return call_all(m, CB_BEGIN, false);
}

int mv_listeners_commit(struct mv_machine *m)
{
	return call_all(m, CB_COMMIT, false);
}

int mv_listeners_global_start(struct mv_machine *m)
{
	return call_all(m, CB_GLOBAL_START, false);
}

int mv_listeners_global_stop(struct mv_machine *m)
{
	return call_all(m, CB_GLOBAL_STOP, true);
}

void mv_listeners_rollback(struct mv_machine *m, struct mv_event_log *log)
{
	static const enum ev_type inverse[] = {
		[EV_ADD] = EV_DEL,
		[EV_DEL] = EV_ADD,
		[EV_LOG_START] = EV_LOG_STOP,
		[EV_LOG_STOP] = EV_LOG_START,
	};
	size_t i;

	for (i = log->nr; i-- > 0;) {
		const struct event *e = &log->ev[i];

		/* Best effort: a failing undo cannot be undone in turn. */
		call_region(e->l, inverse[e->type], &e->s, e->new_mask,
			    e->old_mask);
	}
	mv_listeners_commit(m);
}

/* ---- registration ------------------------------------------------------ */

/* Insert @l after every entry whose priority is <= its own. */
static int list_insert(struct mv_machine *m, struct mv_listener ***list,
		       size_t *nr, struct mv_listener *l)
{
	struct mv_listener **a;
	size_t pos;

	a = mv_realloc(m, *list, (*nr + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*list = a;
	for (pos = *nr; pos > 0 && a[pos - 1]->priority > l->priority; pos--)
		;
	memmove(&a[pos + 1], &a[pos], (*nr - pos) * sizeof(*a));
	a[pos] = l;
	(*nr)++;
	return 0;
}

static void list_remove(struct mv_listener **list, size_t *nr,
			struct mv_listener *l)
{
	size_t i;

	for (i = 0; i < *nr; i++) {
		if (list[i] == l) {
			memmove(&list[i], &list[i + 1],
				(*nr - i - 1) * sizeof(*list));
			(*nr)--;
			return;
		}
	}
}

/* log_stop + region_del for range @i of @fv (listener_del_address_space) */
static void replay_del_one(struct mv_listener *l, struct mv_as *as,
			   const struct mv_flatview *fv, size_t i)
{
	struct mv_section s = section_of(as, mv_fv_at(fv, i));

	if (s.dirty_log_mask && l->ops->log_stop)
		l->ops->log_stop(l, &s, s.dirty_log_mask, 0);
	if (l->ops->region_del)
		l->ops->region_del(l, &s);
}

/* listener_add_address_space(); on a failing region_add, take it back. */
static int replay_add(struct mv_listener *l, struct mv_as *as)
{
	const struct mv_flatview *fv = as->view;
	size_t i, k = 0;
	int ret = 0;

	if (l->ops->begin)
		l->ops->begin(l);
	if (as->machine->global_dirty_log && l->ops->log_global_start)
		l->ops->log_global_start(l);
	for (i = 0; i < fv->nr && !ret; i++) {
		struct mv_section s = section_of(as, mv_fv_cur(fv, &k, i));

		if (l->ops->region_add)
			ret = l->ops->region_add(l, &s);
		if (!ret && s.dirty_log_mask && l->ops->log_start)
			l->ops->log_start(l, &s, 0, s.dirty_log_mask);
	}
	if (ret) {
		/* ranges 0 .. i-2 were added; take them back, newest first */
		for (i--; i-- > 0;)
			replay_del_one(l, as, fv, i);
		if (as->machine->global_dirty_log && l->ops->log_global_stop)
			l->ops->log_global_stop(l);
	}
	if (l->ops->commit)
		l->ops->commit(l);
	return ret;
}

int mv_listener_register(struct mv_as *as, struct mv_listener *l)
{
	struct mv_machine *m;
	int ret;

	if (!as || !l || !l->ops)
		return -EINVAL;
	if (l->as)
		return -EBUSY;
	m = as->machine;
	ret = list_insert(m, &m->listeners, &m->nr_listeners, l);
	if (ret)
		return ret;
	ret = list_insert(m, &as->listeners, &as->nr_listeners, l);
	if (ret) {
		list_remove(m->listeners, &m->nr_listeners, l);
		return ret;
	}
	ret = replay_add(l, as);
	if (ret) {
		list_remove(as->listeners, &as->nr_listeners, l);
		list_remove(m->listeners, &m->nr_listeners, l);
		return ret;
	}
	l->as = as;
	return 0;
}

void mv_listener_unregister(struct mv_listener *l)
{
	struct mv_as *as;
	size_t i;

	if (!l || !l->as)
		return;
	as = l->as;
	if (l->ops->begin)
		l->ops->begin(l);
	for (i = 0; i < as->view->nr; i++)
		replay_del_one(l, as, as->view, i);
	if (l->ops->commit)
		l->ops->commit(l);
	list_remove(as->listeners, &as->nr_listeners, l);
	list_remove(as->machine->listeners, &as->machine->nr_listeners, l);
	l->as = NULL;
}

/* At teardown listeners still registered are dropped without callbacks. */
void mv_as_listeners_free(struct mv_as *as)
{
	size_t i;

	for (i = 0; i < as->nr_listeners; i++)
		as->listeners[i]->as = NULL;
	free(as->listeners);
	as->listeners = NULL;
	as->nr_listeners = 0;
}

/* ---- dirty logging ------------------------------------------------------ */

/*
 * memory_global_dirty_log_start(): log_global_start (forward), then a
 * commit in which every RAM range gains the migration bit (log_start).
 */
int mv_machine_dirty_log_start(struct mv_machine *m)
{
	int ret, ret2;

	if (!m)
		return -EINVAL;
	if (m->global_dirty_log)
		return 0;
	m->global_dirty_log = true;
	ret = mv_listeners_global_start(m);
	mv_txn_begin(m);
	mv_txn_mark_dirty_all(m);
	mv_txn_mark_pending(m);
	ret2 = mv_txn_commit(m);
	return ret2 ? ret2 : ret;
}

/* memory_global_dirty_log_stop(): the commit first, then log_global_stop
 * (reverse). */
int mv_machine_dirty_log_stop(struct mv_machine *m)
{
	int ret, ret2;

	if (!m)
		return -EINVAL;
	if (!m->global_dirty_log)
		return 0;
	m->global_dirty_log = false;
	mv_txn_begin(m);
	mv_txn_mark_dirty_all(m);
	mv_txn_mark_pending(m);
	ret = mv_txn_commit(m);
	ret2 = mv_listeners_global_stop(m);
	return ret2 ? ret2 : ret;
}

/* memory_region_sync_dirty_bitmap() */
int mv_region_sync_dirty_bitmap(struct mv_machine *m, struct mv_region *mr)
{
	size_t i, j;
	int first = 0;

	if (!m)
		return -EINVAL;
	for (i = 0; i < m->nr_listeners; i++) {
		struct mv_listener *l = m->listeners[i];
		const struct mv_flatview *fv = l->as->view;
		size_t k = 0;

		if (!l->ops->log_sync)
			continue;
		for (j = 0; j < fv->nr; j++) {
			const struct mv_flat_range *fr = mv_fv_cur(fv, &k, j);
			struct mv_section s;
			int ret;

			if (!fr->dirty_log_mask || (mr && fr->mr != mr))
				continue;
			s = section_of(l->as, fr);
			ret = l->ops->log_sync(l, &s);
			if (ret && !first)
				first = ret;
		}
	}
	return first;
}
