// SPDX-License-Identifier: MIT
/*
 * KVM_SET_USER_MEMORY_REGION(2): the checks of reference kvm-memslots.md
 * §1.2 in the kernel's order (kvm_vm_ioctl(), kvm_set_memory_region(),
 * kvm_set_memslot(), x86 kvm_arch_prepare_memory_region()), the change
 * kinds of §1.3, and the two-set update: edit the inactive set, swap
 * (generation with bit 63 set, then + nr_as), replay the edit on the other
 * set.  DELETE and MOVE first publish an INVALID copy of the slot, so a
 * vCPU meanwhile finds no usable slot (an MMIO exit).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SANE_V1_FLAGS (MV_KVM_MODEL_MEM_LOG | MV_KVM_MODEL_MEM_READONLY)

void mvm_slot_free(struct mv_kvm_model *m, struct mvm_slot *s)
{
	(void)m;
	mvm_gmem_unbind(s);
	free(s->dirty_bitmap);
	free(s->writable);
	free(s);
}

/* ---- the two sets ---------------------------------------------------- */

/* kvm_replace_memslot(): swap @old for @new in the inactive set. */
static void replace(struct mv_kvm_model *m, unsigned as_id,
		    struct mvm_slot *old, struct mvm_slot *new)
{
	struct mvm_set *s = mvm_inactive(m, as_id);

	if (old) {
		s->by_id[old->id] = NULL;
		s->nr--;
		mvm_hva_erase(s, old);
		mvm_gfn_erase(s, old);
		if (s->last_used == old)
			s->last_used = new;
	}
	if (!new)
		return;
	new->node[s->idx].slot = new;
	s->by_id[new->id] = new;
	s->nr++;
	mvm_hva_insert(s, new);
	mvm_gfn_insert(s, new);
}

/* kvm_swap_active_memslots(): publish the inactive set. */
static void swap_active(struct mv_kvm_model *m, unsigned as_id)
{
	struct mvm_space *sp = &m->space[as_id];
	struct mvm_set *next = &sp->set[sp->active ^ 1];
	uint64_t gen = sp->set[sp->active].generation;

	next->generation = gen | MV_KVM_MODEL_GEN_IN_PROGRESS;
	sp->active ^= 1;
	m->stats.swaps++;
	mvm_hook(m, MV_KVM_MODEL_STAGE_SWAP, as_id);
	next->generation = (gen & ~MV_KVM_MODEL_GEN_IN_PROGRESS) + m->p.nr_as;
}

/* kvm_activate_memslot(): swap, then bring the other set along. */
static void activate(struct mv_kvm_model *m, unsigned as_id,
		     struct mvm_slot *old, struct mvm_slot *new)
{
	swap_active(m, as_id);
	replace(m, as_id, old, new);
}

/*
 * kvm_invalidate_memslot(): publish an INVALID copy, then
 * kvm_arch_flush_shadow_memslot().  On x86 a default VM keeps
 * KVM_X86_QUIRK_SLOT_ZAP_ALL, so that zaps every SPTE of the VM, not only
 * the slot's (@slot_zap_all; kvm_pvm 6.18: ring_delete_other_slot_zaps,
 * ring_move_other_slot_zaps).  A MOVE refused after this point (the max
 * gfn) has zapped all the same (ring_failed_move_zaps).
 */
static void invalidate(struct mv_kvm_model *m, struct mvm_slot *old,
		       struct mvm_slot *invalid)
{
	*invalid = *old;
	memset(invalid->node, 0, sizeof(invalid->node));
	invalid->flags |= MV_KVM_MODEL_MEMSLOT_INVALID;
	replace(m, old->as_id, old, invalid);
	swap_active(m, old->as_id);
	if (m->p.slot_zap_all)
		mvm_zap_all(m);
	else
		mvm_spte_zap_slot(m, old);
	mvm_hook(m, MV_KVM_MODEL_STAGE_INVALID, old->as_id);
}

/* ---- prepare and commit ---------------------------------------------- */

static uint64_t *bitmap_alloc(struct mv_kvm_model *m, uint64_t npages)
{
	return mvm_alloc(m, mvm_bitmap_words(npages) * sizeof(uint64_t));
}

/*
 * kvm_prepare_memory_region(): the dirty bitmap (reused from @old, or a
 * new one, all ones with INITIALLY_SET), then the arch checks.  A MOVE or
 * FLAGS_ONLY keeps @old's SPTE state (spte.c), past every failure point.
 */
static int prepare(struct mv_kvm_model *m, struct mvm_slot *old,
		   struct mvm_slot *new, enum mvm_change change)
{
	bool fresh_bitmap = false;
	int ret = 0;

	if (change == MVM_DELETE)
		return 0;
	if (!(new->flags &MV_KVM_MODEL_MEM_LOG)) {
		new->dirty_bitmap = NULL;
	} else if (old && old->dirty_bitmap) {
		new->dirty_bitmap = old->dirty_bitmap;
	} else if (mvm_use_dirty_bitmap(m)) {
		new->dirty_bitmap = bitmap_alloc(m, new->npages);
		if (!new->dirty_bitmap)
			return -ENOMEM;
		fresh_bitmap = true;
		if (m->manual_protect & MV_KVM_MODEL_MANUAL_INITIALLY_SET)
			mvm_bitmap_set_all(new->dirty_bitmap, new->npages);
	}
	if (change == MVM_CREATE || change == MVM_MOVE) {
		if (new->base_gfn + new->npages - 1 > m->p.max_gfn) {
			ret = -EINVAL;
			goto err;
		}
		if (!mvm_alloc_ok(m)) { /* kvm_alloc_memslot_metadata() */
			ret = -ENOMEM;
			goto err;
		}
	}
	new->writable = old ? old->writable : NULL;
	new->writable_gen = old ? old->writable_gen : 0;
	return 0;
err:
	if (fresh_bitmap)
		free(new->dirty_bitmap);
	new->dirty_bitmap = NULL;
	return ret;
}

/* kvm_commit_memory_region(): the counters, then what the old slot held. */
static void commit(struct mv_kvm_model *m, struct mvm_slot *old,
		   struct mvm_slot *new, enum mvm_change change)
{
	m->stats.updates++;
	switch (change) {
	case MVM_CREATE:
		m->nr_memslot_pages += new->npages;
		break;
	case MVM_DELETE:
		m->nr_memslot_pages -= old->npages;
		mvm_slot_free(m, old);
		break;
	case MVM_MOVE:
	case MVM_FLAGS_ONLY:
		if (old->dirty_bitmap && !new->dirty_bitmap)
			free(old->dirty_bitmap);
		if (old->writable != new->writable) /* made by a hook */
			free(old->writable);
		if (change == MVM_FLAGS_ONLY)
			mvm_spte_apply_flags(m, old->flags, new);
		free(old); /* @new took its bitmaps and gmem binding */
		break;
	}
}

/* kvm_set_memslot(). */
static int set_memslot(struct mv_kvm_model *m, struct mvm_slot *old,
		       struct mvm_slot *new, enum mvm_change change)
{
	struct mvm_slot *invalid = NULL;
	unsigned as_id = old ? old->as_id : new->as_id;
	int ret;

	if (change == MVM_DELETE || change == MVM_MOVE) {
		invalid = mvm_alloc(m, sizeof(*invalid));
		if (!invalid)
			return -ENOMEM;
		invalidate(m, old, invalid);
	}
	ret = prepare(m, old, new, change);
	if (ret) {
		if (invalid) {
			activate(m, as_id, invalid, old);
			free(invalid);
		}
		return ret;
	}
	switch (change) {
	case MVM_CREATE:
		replace(m, as_id, NULL, new);
		activate(m, as_id, NULL, new);
		break;
	case MVM_DELETE:
		replace(m, as_id, old, NULL);
		activate(m, as_id, invalid, NULL);
		break;
	case MVM_MOVE:
		replace(m, as_id, old, new);
		activate(m, as_id, invalid, new);
		break;
	case MVM_FLAGS_ONLY:
		replace(m, as_id, old, new);
		activate(m, as_id, old, new);
		break;
	}
	free(invalid);
	commit(m, old, new, change);
	return 0;
}

/* ---- validation ------------------------------------------------------ */

/* check_memory_region_flags(). */
static int check_flags(const struct mv_kvm_model *m, uint32_t flags)
{
	uint32_t valid = MV_KVM_MODEL_MEM_LOG;

	if (m->p.guest_memfd)
		valid |= MV_KVM_MODEL_MEM_GUEST_MEMFD;
	if (flags & MV_KVM_MODEL_MEM_GUEST_MEMFD)
		valid &= ~MV_KVM_MODEL_MEM_LOG;
	if (m->p.readonly_mem && !(flags & MV_KVM_MODEL_MEM_GUEST_MEMFD))
		valid |= MV_KVM_MODEL_MEM_READONLY;
	return flags & ~valid ? -EINVAL : 0;
}

/* Steps 3-9: the request's own fields. */
static int check_fields(const struct mv_kvm_model *m,
			const struct mv_kvm_model_region *r)
{
	unsigned as_id = r->slot >> 16, id = (uint16_t)r->slot;

	if (r->size % MVM_PAGE_SIZE || r->gpa % MVM_PAGE_SIZE)
		return -EINVAL;
	if (r->hva % MVM_PAGE_SIZE || r->hva + r->size < r->hva ||
	    r->hva + r->size > m->p.user_ptr_max)
		return -EINVAL;
	if (r->flags & MV_KVM_MODEL_MEM_GUEST_MEMFD &&
	    (r->gmem_offset % MVM_PAGE_SIZE ||
	     r->gmem_offset + r->size < r->gmem_offset))
		return -EINVAL;
	if (as_id >= m->p.nr_as || id >= MVM_SLOTS_NUM)
		return -EINVAL;
	if (r->gpa + r->size < r->gpa)
		return -EINVAL;
	if (r->size >> MVM_PAGE_SHIFT > m->p.max_npages)
		return -EINVAL;
	return 0;
}

/* Step 11 for an existing slot: what kind of change, or an error. */
static int modify_kind(const struct mvm_slot *old,
		       const struct mv_kvm_model_region *r,
		       enum mvm_change *kind)
{
	const uint32_t fixed = MV_KVM_MODEL_MEM_READONLY |
			       MV_KVM_MODEL_MEM_GUEST_MEMFD;

	if (r->flags & MV_KVM_MODEL_MEM_GUEST_MEMFD)
		return -EINVAL; /* gmem slots are immutable */
	if (r->hva != old->hva || r->size >> MVM_PAGE_SHIFT != old->npages ||
	    (r->flags ^ old->flags) & fixed)
		return -EINVAL;
	if (r->gpa >> MVM_PAGE_SHIFT != old->base_gfn)
		*kind = MVM_MOVE;
	else if (r->flags != old->flags)
		*kind = MVM_FLAGS_ONLY;
	else
		return 1; /* nothing to change */
	return 0;
}

/* The new slot of a CREATE, MOVE or FLAGS_ONLY, bound to its gmem. */
static int new_slot(struct mv_kvm_model *m, const struct mvm_slot *old,
		    const struct mv_kvm_model_region *r, struct mvm_slot **out)
{
	struct mvm_slot *s = mvm_alloc(m, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	s->as_id = (uint16_t)(r->slot >> 16);
	s->id = (uint16_t)r->slot;
	s->flags = r->flags;
	s->base_gfn = r->gpa >> MVM_PAGE_SHIFT;
	s->npages = r->size >> MVM_PAGE_SHIFT;
	s->hva = r->hva;
	if (r->flags & MV_KVM_MODEL_MEM_GUEST_MEMFD) {
		ret = mvm_gmem_bind(m, s, r->gmem_fd, r->gmem_offset);
		if (ret) {
			free(s);
			return ret;
		}
	}
	(void)old;
	*out = s;
	return 0;
}

static int set_region(struct mv_kvm_model *m,
		      const struct mv_kvm_model_region *r)
{
	unsigned as_id = r->slot >> 16, id = (uint16_t)r->slot;
	enum mvm_change change = MVM_CREATE;
	uint64_t npages = r->size >> MVM_PAGE_SHIFT;
	struct mvm_slot *old, *new;
	int ret = check_flags(m, r->flags);

	if (!ret)
		ret = check_fields(m, r);
	if (ret)
		return ret;
	old = mvm_active(m, as_id)->by_id[id];
	if (!npages) {
		if (!old)
			return -EINVAL;
		return set_memslot(m, old, NULL, MVM_DELETE);
	}
	if (!old) {
		if (m->nr_memslot_pages + npages < m->nr_memslot_pages)
			return -EINVAL;
	} else {
		ret = modify_kind(old, r, &change);
		if (ret)
			return ret > 0 ? 0 : ret;
	}
	if ((change == MVM_CREATE || change == MVM_MOVE) &&
	    mvm_overlaps_other(mvm_active(m, as_id), id,
			       r->gpa >> MVM_PAGE_SHIFT,
			       (r->gpa >> MVM_PAGE_SHIFT) + npages))
		return -EEXIST;
	ret = new_slot(m, old, r, &new);
	if (ret)
		return ret;
	ret = set_memslot(m, old, new, change);
	if (ret)
		mvm_slot_free(m, new); /* unbinds; frees no bitmap of @old */
	return ret;
}

int mv_kvm_model_set_region(struct mv_kvm_model *m,
			    const struct mv_kvm_model_region *r, bool v2)
{
	int ret;

	if (v2 && !m->p.user_memory2)
		return -ENOTTY;
	if (!v2 && r->flags & ~SANE_V1_FLAGS)
		return -EINVAL;
	if ((uint16_t)r->slot >= m->p.nr_slots)
		return -EINVAL;
	if (m->updating)
		return -EBUSY;
	m->updating = true;
	ret = set_region(m, r);
	m->updating = false;
	return ret;
}
