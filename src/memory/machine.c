// SPDX-License-Identifier: MIT
/*
 * The machine context: allocation with failure injection, the registry of
 * regions by id, and teardown.  The machine structure lives until its last
 * region is gone, so a region the caller still holds can always be
 * unreferenced safely.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int mv_machine_new(struct mv_machine **out)
{
	struct mv_machine *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	atomic_init(&m->refs, 1);
	mv_alloc_init(&m->alloc);
	*out = m;
	return 0;
}

void mv_machine_get(struct mv_machine *m)
{
	atomic_fetch_add(&m->refs, 1);
}

void mv_machine_put(struct mv_machine *m)
{
	if (atomic_fetch_sub(&m->refs, 1) == 1) {
		free(m->name);
		mv_view_chunk_cache_drain(m);
		mv_event_log_drain(m);
		mv_spare_drain(m);
		free(m->chunk_refs);
		free(m->free_chunk_ids);
		free(m->blocks);
		free(m);
	}
}

void mv_machine_free(struct mv_machine *m)
{
	struct mv_as *as, *next;
	size_t i;

	if (!m)
		return;
	mv_machine_get(m); /* views and regions may drop the last ones */
	mv_txn_discard(m); /* freed inside a transaction: drop its undo log */
	mv_machine_reclaim(m);
	free(m->retired);
	m->retired = NULL;
	free(m->undo);
	m->undo = NULL;
	m->cap_retired = 0;
	mv_change_list_free(m, m->changes);
	m->changes = NULL;
	for (as = m->as_head; as; as = next) {
		next = as->next;
		mv_as_free(as);
	}
	m->as_head = NULL;
	free(m->listeners);
	m->listeners = NULL;
	m->nr_listeners = 0;
	if (m->empty_view)
		mv_flatview_unref(m->empty_view);
	m->empty_view = NULL;
	mv_txn_clear_dirty(m);
	for (i = 0; i < m->nr_named; i++) {
		free(m->named[i].id);
		mv_region_unref(m->named[i].r);
	}
	free(m->named);
	m->named = NULL;
	m->nr_named = 0;
	mv_reclaim(m);
	m->dead = true;
	mv_machine_put(m);
	mv_machine_put(m);
}

void mv_machine_fail_alloc_after(struct mv_machine *m, long n)
{
	m->alloc.fail_after = n;
}

void mv_machine_get_stats(const struct mv_machine *m,
			  struct mv_machine_stats *st)
{
	*st = m->stats;
}

void *mv_malloc(struct mv_machine *m, size_t size)
{
	return mv_alloc_malloc(&m->alloc, size);
}

void *mv_zalloc(struct mv_machine *m, size_t size)
{
	return mv_alloc_zalloc(&m->alloc, size);
}

void *mv_realloc(struct mv_machine *m, void *p, size_t size)
{
	return mv_alloc_realloc(&m->alloc, p, size);
}

char *mv_strdup(struct mv_machine *m, const char *s)
{
	return mv_alloc_strdup(&m->alloc, s);
}

/* Index of the first entry whose id is >= @id (binary search). */
static size_t named_lower_bound(const struct mv_machine *m, const char *id)
{
	size_t lo = 0, hi = m->nr_named;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(m->named[mid].id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int mv_machine_register_region(struct mv_machine *m, const char *id,
			       struct mv_region *r)
{
	struct mv_named_region *tab;
	char *copy;
	size_t pos;

	if (!m || !id || !r || r->machine != m)
		return -EINVAL;
	pos = named_lower_bound(m, id);
	if (pos < m->nr_named && !strcmp(m->named[pos].id, id))
		return -EEXIST;
	copy = mv_strdup(m, id);
	if (!copy)
		return -ENOMEM;
	tab = mv_realloc(m, m->named, (m->nr_named + 1) * sizeof(*tab));
	if (!tab) {
		free(copy);
		return -ENOMEM;
	}
	m->named = tab;
	memmove(&tab[pos + 1], &tab[pos], (m->nr_named - pos) * sizeof(*tab));
	tab[pos].id = copy;
	tab[pos].r = r;
	m->nr_named++;
	mv_region_ref(r);
	return 0;
}

struct mv_region *mv_machine_find_region(const struct mv_machine *m,
					 const char *id)
{
	size_t pos;

	if (!m || !id)
		return NULL;
	pos = named_lower_bound(m, id);
	if (pos < m->nr_named && !strcmp(m->named[pos].id, id))
		return m->named[pos].r;
	return NULL;
}

struct mv_as *mv_machine_find_as(const struct mv_machine *m, const char *name)
{
	struct mv_as *as;

	for (as = m->as_head; as; as = as->next)
		if (!strcmp(as->name, name))
			return as;
	return NULL;
}

size_t mv_machine_as_count(const struct mv_machine *m)
{
	const struct mv_as *as;
	size_t n = 0;

	for (as = m->as_head; as; as = as->next)
		n++;
	return n;
}

struct mv_as *mv_machine_as_get(const struct mv_machine *m, size_t i)
{
	struct mv_as *as;

	for (as = m->as_head; as && i; as = as->next)
		i--;
	return as;
}

int mv_machine_set_name(struct mv_machine *m, const char *name)
{
	char *copy;

	if (!m || !name)
		return -EINVAL;
	copy = mv_strdup(m, name);
	if (!copy)
		return -ENOMEM;
	free(m->name);
	m->name = copy;
	return 0;
}

const char *mv_machine_name(const struct mv_machine *m)
{
	return m->name;
}

void mv_machine_reclaim(struct mv_machine *m)
{
	mv_reclaim(m);
}
