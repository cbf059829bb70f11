// SPDX-License-Identifier: MIT
/*
 * Address spaces: a named root whose current flat view is shared with every
 * address space that reaches the same flat-view root, and GPA<->HVA
 * translation over that view.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(__SANITIZE_THREAD__)
#define MV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MV_TSAN 1
#endif
#endif

#ifdef MV_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/* Only its address is used, as the token of the annotations. */
static char rcu_token;

static void tsan_release(void)
{
	__tsan_release(&rcu_token);
}

void mv_rcu_tsan_acquire(void)
{
	__tsan_acquire(&rcu_token);
}
#else
static void tsan_release(void)
{
}

void mv_rcu_tsan_acquire(void)
{
}
#endif

/* address_space_update_topology(): reuse a live view of the same root. */
static int view_for_root(struct mv_machine *m, struct mv_region *root,
			 struct mv_flatview **out)
{
	struct mv_as *as;

	for (as = m->as_head; as; as = as->next) {
		if (as->view && as->view->root == root) {
			mv_flatview_ref(as->view);
			*out = as->view;
			return 0;
		}
	}
	return mv_render(m, root, out);
}

int mv_as_new(struct mv_machine *m, const char *name, struct mv_region *root,
	      struct mv_as **out)
{
	struct mv_as *as, **tail;
	int ret;

	if (!m || !name || !root || root->machine != m)
		return -EINVAL;
	if (mv_machine_find_as(m, name))
		return -EEXIST;
	as = mv_zalloc(m, sizeof(*as));
	if (!as)
		return -ENOMEM;
	as->machine = m;
	as->name = mv_strdup(m, name);
	if (!as->name) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = view_for_root(m, mv_flatview_root_of(root), &as->view);
	if (m->txn_depth)
		m->as_new_in_txn = true; /* rendered from uncommitted state */
	if (ret)
		goto err_free;
	mv_region_ref(root);
	as->root = root;
	for (tail = &m->as_head; *tail; tail = &(*tail)->next)
		;
	*tail = as;
	if (out)
		*out = as;
	return 0;

err_free:
	free(as->name);
	free(as);
	return ret;
}

int mv_as_reserve_retired(struct mv_machine *m, size_t n)
{
	struct mv_flatview **a;
	size_t cap = m->cap_retired ? m->cap_retired : 8;

	if (m->nr_retired + n <= m->cap_retired)
		return 0;
	while (cap < m->nr_retired + n)
		cap *= 2;
	a = mv_realloc(m, m->retired, cap * sizeof(*a));
	if (!a)
		return -ENOMEM;
	m->retired = a;
	m->cap_retired = cap;
	return 0;
}

void mv_as_set_view(struct mv_as *as, struct mv_flatview *fv)
{
	struct mv_machine *m = as->machine;

	/* Readers may still use the old view: its reference goes after a
	 * grace period (room was reserved by mv_as_reserve_retired()). */
	m->retired[m->nr_retired++] = as->view;
	/* rcu_assign_pointer(), spelled so that TSan understands it */
	__atomic_store_n(&as->view, fv, __ATOMIC_RELEASE);
}

struct mv_flatview *mv_as_read_begin(struct mv_as *as)
{
	struct mv_machine *m = as->machine;

	urcu_bp_read_lock();
	/* Tell the writer that a grace period is needed (internal.h). */
	if (!atomic_load_explicit(&m->readers_seen, memory_order_relaxed)) {
		atomic_store_explicit(&m->readers_seen, 1,
				      memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
	}
	return __atomic_load_n(&as->view, __ATOMIC_ACQUIRE);
}

void mv_as_read_end(void)
{
	tsan_release();
	urcu_bp_read_unlock();
}

void mv_as_free(struct mv_as *as)
{
	mv_as_listeners_free(as);
	mv_flatview_unref(as->view);
	mv_region_unref(as->root);
	free(as->name);
	free(as);
}

const char *mv_as_name(const struct mv_as *as)
{
	return as->name;
}

struct mv_region *mv_as_root(const struct mv_as *as)
{
	return as->root;
}

struct mv_flatview *mv_as_get_flatview(struct mv_as *as)
{
	/* The address space's reference outlives the read-side section. */
	struct mv_flatview *fv = mv_as_read_begin(as);

	mv_flatview_ref(fv);
	mv_as_read_end();
	return fv;
}

static bool range_is_ram(const struct mv_flat_range *r)
{
	return r->mr->block && r->mr->kind == MV_REGION_RAM;
}

int mv_as_gpa_to_hva(struct mv_as *as, mv_gpa_t gpa, void **hva, uint64_t *len)
{
	const struct mv_flat_range *r = mv_flatview_lookup(as->view, gpa);
	uint64_t off;

	if (!r || !range_is_ram(r))
		return -ENOENT;
	off = r->offset_in_region + (gpa - r->first);
	*hva = r->mr->block->host + off;
	if (len)
		*len = r->last - gpa + 1;
	return 0;
}

int mv_as_hva_to_gpas(struct mv_as *as, const void *hva, mv_gpa_t *gpas,
		      size_t max, size_t *nr)
{
	const struct mv_flatview *fv = as->view;
	const uint8_t *p = hva;
	size_t i, n = 0, k = 0;

	for (i = 0; i < fv->nr; i++) {
		const struct mv_flat_range *r = mv_fv_cur(fv, &k, i);
		const uint8_t *lo;

		if (!range_is_ram(r))
			continue;
		lo = r->mr->block->host + r->offset_in_region;
		if (p < lo || (uint64_t)(p - lo) > r->last - r->first)
			continue;
		if (n < max)
			gpas[n] = r->first + (uint64_t)(p - lo);
		n++;
	}
	*nr = n;
	return 0;
}
