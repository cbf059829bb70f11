// SPDX-License-Identifier: MIT
/*
 * gfn -> slot: one red-black tree per set keyed by base_gfn (slots never
 * overlap in GPA), a last-used cache per set and per vCPU, and the overlap
 * check -- search_memslots(), __gfn_to_memslot(), kvm_vcpu_gfn_to_memslot()
 * and kvm_check_memslot_overlap() of kvm_main.c.
 */
#include "internal.h"

static int gfn_cmp(const struct mvm_gnode *a, const struct mvm_gnode *b)
{
	uint64_t x = a->base_gfn, y = b->base_gfn;

	return x < y ? -1 : x > y;
}

RB_PROTOTYPE(mvm_gfn_tree, mvm_gnode, entry, gfn_cmp)
RB_GENERATE(mvm_gfn_tree, mvm_gnode, entry, gfn_cmp)

void mvm_gfn_insert(struct mvm_set *s, struct mvm_slot *slot)
{
	struct mvm_gnode *g = &s->gnode[slot->id];

	g->base_gfn = slot->base_gfn;
	g->slot = slot;
	RB_INSERT(mvm_gfn_tree, &s->gfn_tree, g);
}

void mvm_gfn_erase(struct mvm_set *s, struct mvm_slot *slot)
{
	RB_REMOVE(mvm_gfn_tree, &s->gfn_tree, &s->gnode[slot->id]);
}

struct mvm_gnode *mvm_gfn_first(struct mvm_set *s)
{
	return RB_MIN(mvm_gfn_tree, &s->gfn_tree);
}

struct mvm_gnode *mvm_gfn_next(struct mvm_gnode *n)
{
	return RB_NEXT(mvm_gfn_tree, NULL, n);
}

/* The last slot whose base is <= @gfn (its "predecessor"), or NULL. */
static struct mvm_slot *floor_slot(struct mvm_set *s, uint64_t gfn)
{
	struct mvm_gnode *n = RB_ROOT(&s->gfn_tree), *best = NULL;

	while (n) {
		if (n->base_gfn <= gfn) {
			best = n;
			n = RB_RIGHT(n, entry);
		} else {
			n = RB_LEFT(n, entry);
		}
	}
	return best ? best->slot : NULL;
}

static bool slot_has(const struct mvm_slot *slot, uint64_t gfn)
{
	return slot && gfn >= slot->base_gfn &&
	       gfn - slot->base_gfn < slot->npages;
}

/* search_memslots(approx = false): the holder or NULL, never a neighbour. */
struct mvm_slot *mvm_search(struct mvm_set *s, uint64_t gfn)
{
	struct mvm_slot *slot = floor_slot(s, gfn);

	return slot_has(slot, gfn) ? slot : NULL;
}

struct mvm_slot *mvm_gfn_to_memslot(struct mv_kvm_model *m, unsigned as_id,
				    uint64_t gfn)
{
	struct mvm_set *s = mvm_active(m, as_id);
	struct mvm_slot *slot = s->last_used;

	m->stats.lookups++;
	if (slot_has(slot, gfn)) {
		m->stats.cache_hits++;
		return slot;
	}
	m->stats.tree_searches++;
	slot = mvm_search(s, gfn);
	if (slot)
		s->last_used = slot;
	return slot;
}

/* The vCPU's cache is keyed by generation and leaves the VM's alone. */
struct mvm_slot *mvm_vcpu_gfn_to_memslot(struct mv_kvm_model *m,
					 struct mvm_vcpu *v, uint64_t gfn)
{
	struct mvm_set *s = mvm_active(m, 0);
	struct mvm_slot *slot;

	if (v->last_used_gen != s->generation) {
		v->last_used = NULL;
		v->last_used_gen = s->generation;
	}
	m->stats.lookups++;
	if (slot_has(v->last_used, gfn)) {
		m->stats.cache_hits++;
		return v->last_used;
	}
	m->stats.tree_searches++;
	slot = mvm_search(s, gfn);
	if (slot)
		v->last_used = slot;
	return slot;
}

/*
 * kvm_check_memslot_overlap(): a slot other than @id meets [@start, @end)
 * (gfns).  Only the predecessor of @start and the slots that start inside
 * the range can, so this walks O(log n + k).
 */
bool mvm_overlaps_other(struct mvm_set *s, unsigned id, uint64_t start,
			uint64_t end)
{
	struct mvm_slot *slot = floor_slot(s, start);
	struct mvm_gnode *n;

	if (slot && slot->id != id && start - slot->base_gfn < slot->npages)
		return true;
	n = slot ? &s->gnode[slot->id] : mvm_gfn_first(s);
	for (; n && n->slot->base_gfn < end; n = mvm_gfn_next(n)) {
		if (n->slot->base_gfn >= start && n->slot->id != id)
			return true;
	}
	return false;
}
