// SPDX-License-Identifier: MIT
/*
 * The part of the x86 MMU the dirty ring can see: which pages have a
 * present, writable SPTE (a store to one does not fault, so it pushes no
 * ring entry), and what makes them fault again -- a RESET of their entry,
 * LOG turned on, and the zap of a DELETE or MOVE (arch/x86/kvm/mmu/mmu.c,
 * x86.c kvm_mmu_slot_apply_flags()).  Only tracked while the ring is on:
 * with bitmaps a writable page's bit is already set, so the state never
 * shows.
 *
 *   slot->writable, valid while slot->writable_gen == m->mmu_gen
 *   page p: word p / 64, bit p % 64; 1 = writable SPTE, 0 = faults
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

static void bitmap_zero(uint64_t *bm, uint64_t npages)
{
	memset(bm, 0, mvm_bitmap_words(npages) * sizeof(*bm));
}

/* @s's writable-SPTE bitmap, cleared first if a zap made it stale. */
static uint64_t *spte_writable(struct mv_kvm_model *m, struct mvm_slot *s)
{
	if (s->writable && s->writable_gen != m->mmu_gen) {
		bitmap_zero(s->writable, s->npages);
		s->writable_gen = m->mmu_gen;
	}
	return s->writable;
}

/*
 * A vCPU store to page @rel_gfn of writable slot @s: *@faulted says
 * whether it faulted (no writable SPTE yet), after which the SPTE is
 * writable.  The first store to a slot allocates its state (all pages
 * fault: no vCPU existed before the ring was enabled).
 */
int mvm_spte_store(struct mv_kvm_model *m, struct mvm_slot *s, uint64_t rel_gfn,
		   bool *faulted)
{
	uint64_t bit = 1ull << (rel_gfn % 64), *w = spte_writable(m, s);

	if (!w) {
		w = mvm_alloc(m, mvm_bitmap_words(s->npages) * sizeof(*w));
		if (!w)
			return -ENOMEM;
		s->writable = w;
		s->writable_gen = m->mmu_gen;
	}
	*faulted = !(w[rel_gfn / 64] & bit);
	w[rel_gfn / 64] |= bit;
	return 0;
}

/* kvm_arch_mmu_enable_log_dirty_pt_masked() without PML: write-protect. */
void mvm_spte_protect(struct mv_kvm_model *m, struct mvm_slot *s,
		      uint64_t first, uint64_t mask)
{
	uint64_t *w = spte_writable(m, s), i;

	if (!w)
		return;
	for (i = 0; i < 64 && mask >> i; i++)
		if (mask >> i & 1 && first + i < s->npages)
			w[(first + i) / 64] &= ~(1ull << ((first + i) % 64));
}

/* kvm_mmu_zap_memslot(): only @s's SPTEs. */
void mvm_spte_zap_slot(struct mv_kvm_model *m, struct mvm_slot *s)
{
	if (spte_writable(m, s))
		bitmap_zero(s->writable, s->npages);
}

/* kvm_mmu_zap_all_fast(): every root obsolete, every page faults again. */
void mvm_zap_all(struct mv_kvm_model *m)
{
	m->mmu_gen++;
}

/*
 * kvm_mmu_slot_apply_flags() for a FLAGS_ONLY change giving @s: turning LOG
 * on write-protects the slot, except with MANUAL_PROTECT2's INITIALLY_SET
 * ("they're all assumed to be dirty"), where pages written while LOG was
 * off keep their writable SPTEs and log nothing until a RESET protects
 * them.  Turning LOG off keeps the SPTEs (it only recovers huge pages).
 * Checked against kvm_pvm 6.18 (ring_manual_initially_set_log_toggle,
 * ring_initially_set_log_on_writable).
 */
void mvm_spte_apply_flags(struct mv_kvm_model *m, uint32_t old_flags,
			  struct mvm_slot *s)
{
	if (!((old_flags ^ s->flags) & MV_KVM_MODEL_MEM_LOG) ||
	    !(s->flags & MV_KVM_MODEL_MEM_LOG) ||
	    s->flags & MV_KVM_MODEL_MEM_READONLY)
		return;
	if (m->manual_protect & MV_KVM_MODEL_MANUAL_INITIALLY_SET)
		return;
	mvm_spte_zap_slot(m, s); /* write-protect = fault on next store */
}
