// SPDX-License-Identifier: MIT
/*
 * mv_kvm_model_check(): the invariants of include/memvirt/kvm_model.h,
 * verified from scratch (O(n) in slots plus bitmap words), for tests to
 * call after every step.
 */
#include <errno.h>

#include "internal.h"

#define FAIL(msg)                \
	do {                     \
		*why = (msg);    \
		return -EUCLEAN; \
	} while (0)

static int check_slot(const struct mv_kvm_model *m, const struct mvm_slot *s,
		      const char **why)
{
	const uint32_t known = MV_KVM_MODEL_MEM_LOG |
			       MV_KVM_MODEL_MEM_READONLY |
			       MV_KVM_MODEL_MEM_GUEST_MEMFD;
	size_t words = mvm_bitmap_words(s->npages);

	if (!s->npages || s->npages > m->p.max_npages)
		FAIL("slot size out of range");
	if (s->flags & ~known)
		FAIL("slot has an unknown or INVALID flag");
	if (s->base_gfn + s->npages - 1 > m->p.max_gfn ||
	    s->base_gfn + s->npages < s->base_gfn)
		FAIL("slot beyond the max gfn");
	if (s->hva % MVM_PAGE_SIZE ||
	    s->hva + (s->npages << MVM_PAGE_SHIFT) > m->p.user_ptr_max)
		FAIL("slot hva beyond the user-address limit");
	if (s->dirty_bitmap && !(s->flags & MV_KVM_MODEL_MEM_LOG))
		FAIL("non-LOG slot with a dirty bitmap");
	if (s->writable && !m->ring_size)
		FAIL("SPTE state without the dirty ring");
	if (s->writable && s->npages % 64 &&
	    s->writable[words - 1] >> (s->npages % 64))
		FAIL("writable SPTE past the end of a slot");
	if (s->flags & MV_KVM_MODEL_MEM_LOG && !s->dirty_bitmap &&
	    mvm_use_dirty_bitmap(m))
		FAIL("LOG slot without a bitmap while bitmaps are in use");
	if (s->dirty_bitmap && s->npages % 64 &&
	    s->dirty_bitmap[words - 1] >> (s->npages % 64))
		FAIL("dirty bits set past the end of a slot");
	if (s->gmem && !(s->flags & MV_KVM_MODEL_MEM_GUEST_MEMFD))
		FAIL("gmem binding on a slot without GUEST_MEMFD");
	return 0;
}

/* The gfn tree in order: increasing, disjoint, each at its id. */
static int check_gfn_tree(const struct mv_kvm_model *m, struct mvm_set *s,
			  const char **why)
{
	uint64_t next = 0;
	size_t n = 0;
	struct mvm_gnode *node;

	for (node = mvm_gfn_first(s); node; node = mvm_gfn_next(node)) {
		const struct mvm_slot *slot = node->slot;

		if (node != &s->gnode[slot->id])
			FAIL("gfn node not at its slot's id");
		if (node->base_gfn != slot->base_gfn)
			FAIL("gfn node key differs from its slot's base");
		if (n && slot->base_gfn < next)
			FAIL("slots overlap or gfn tree out of order");
		if (slot->id >= m->p.nr_slots || s->by_id[slot->id] != slot)
			FAIL("gfn tree slot not at its id");
		next = slot->base_gfn + slot->npages;
		n++;
	}
	if (n != s->nr)
		FAIL("gfn tree count differs from the set's");
	return 0;
}

static int check_set(const struct mv_kvm_model *m, unsigned as_id,
		     struct mvm_set *s, const char **why)
{
	size_t n = 0, hva_n;
	unsigned id;
	int ret;

	for (id = 0; id < m->p.nr_slots; id++) {
		const struct mvm_slot *slot = s->by_id[id];

		if (!slot)
			continue;
		if (slot->id != id || slot->as_id != as_id)
			FAIL("slot filed under the wrong id");
		ret = check_slot(m, slot, why);
		if (ret)
			return ret;
		n++;
	}
	if (n != s->nr)
		FAIL("id table count differs from the set's");
	ret = check_gfn_tree(m, s, why);
	if (ret)
		return ret;
	if (mvm_hva_check(s, &hva_n) || hva_n != n)
		FAIL("hva interval tree out of order or badly augmented");
	if (s->last_used && (s->last_used->id >= m->p.nr_slots ||
			     s->by_id[s->last_used->id] != s->last_used))
		FAIL("last-used cache points outside its set");
	return 0;
}

static int check_space(const struct mv_kvm_model *m, unsigned as_id,
		       uint64_t *pages, const char **why)
{
	struct mvm_space *sp = (struct mvm_space *)&m->space[as_id];
	struct mvm_set *a = &sp->set[sp->active], *b = &sp->set[!sp->active];
	unsigned id;
	int ret;

	if (a->generation & MV_KVM_MODEL_GEN_IN_PROGRESS)
		FAIL("generation in progress while idle");
	if ((a->generation - as_id) % m->p.nr_as)
		FAIL("generation not congruent to the address space");
	if (a->idx == b->idx)
		FAIL("both sets use the same node index");
	for (id = 0; id < m->p.nr_slots; id++) {
		if (a->by_id[id] != b->by_id[id])
			FAIL("active and inactive sets differ");
		if (a->by_id[id])
			*pages += a->by_id[id]->npages;
	}
	ret = check_set(m, as_id, a, why);
	return ret ? ret : check_set(m, as_id, b, why);
}

static int check_gmem(const struct mv_kvm_model *m, const char **why)
{
	const struct mvm_gmem *g;
	const struct mvm_slot *x, *y;

	for (g = m->gmem; g; g = g->next) {
		for (x = g->bindings; x; x = x->gmem_next) {
			if (x->gmem != g)
				FAIL("gmem binding list holds a foreign slot");
			if ((x->gmem_pgoff + x->npages) << MVM_PAGE_SHIFT >
			    g->size)
				FAIL("gmem binding beyond its file");
			for (y = x->gmem_next; y; y = y->gmem_next)
				if (x->gmem_pgoff < y->gmem_pgoff + y->npages &&
				    y->gmem_pgoff < x->gmem_pgoff + x->npages)
					FAIL("gmem bindings overlap");
		}
	}
	return 0;
}

static int check_rings(const struct mv_kvm_model *m, const char **why)
{
	unsigned i;
	uint32_t k;

	for (i = 0; i < m->nr_vcpus; i++) {
		const struct mvm_vcpu *v = &m->vcpu[i];
		uint32_t used = v->dirty_index - v->reset_index;

		if (!m->ring_size)
			continue;
		if (!v->ring)
			FAIL("vCPU without a ring while the ring is on");
		if (used > m->ring_size - m->p.ring_rsvd_entries)
			FAIL("ring used past its soft limit");
		for (k = 0; k < m->ring_size; k++) {
			uint32_t flags = v->ring[(v->reset_index + k) &
						 (m->ring_size - 1)]
						 .flags;

			if (k < used && !flags)
				FAIL("ring entry in use without flags");
			if (k >= used && flags)
				FAIL("free ring entry with flags");
		}
	}
	return 0;
}

int mv_kvm_model_check(const struct mv_kvm_model *m, const char **why)
{
	const char *dummy;
	uint64_t pages = 0;
	unsigned as_id;
	int ret;

	if (!why)
		why = &dummy;
	if (m->updating)
		FAIL("update in progress");
	for (as_id = 0; as_id < m->p.nr_as; as_id++) {
		ret = check_space(m, as_id, &pages, why);
		if (ret)
			return ret;
	}
	if (pages != m->nr_memslot_pages)
		FAIL("nr_memslot_pages differs from the slots' sum");
	ret = check_gmem(m, why);
	return ret ? ret : check_rings(m, why);
}
