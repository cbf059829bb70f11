// SPDX-License-Identifier: MIT
/*
 * Dirty bitmaps (reference kvm-memslots.md §2.1-2.2): guest stores set
 * bits (mark_page_dirty_in_slot()), KVM_GET_DIRTY_LOG snapshots and clears
 * them in classic mode and only copies them with manual protect, and
 * KVM_CLEAR_DIRTY_LOG clears a 64-aligned window.  Bitmaps are
 * little-endian 64-bit words, one bit per 4 KiB page, ALIGN(npages, 64)
 * bits long.
 *
 *   page p of the slot  ->  word p / 64, bit p % 64
 *   CLEAR window         :  [first, first + num), first % 64 == 0
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

size_t mvm_bitmap_words(uint64_t npages)
{
	return (size_t)((npages + 63) / 64);
}

void mvm_bitmap_set_all(uint64_t *bm, uint64_t npages)
{
	size_t full = (size_t)(npages / 64);

	memset(bm, 0xff, full * sizeof(*bm));
	if (npages % 64)
		bm[full] = (1ull << (npages % 64)) - 1;
}

/* The slot a dirty-log ioctl names (kvm_get_dirty_log_protect()). */
static int log_ids(const struct mv_kvm_model *m, uint32_t slot)
{
	if (slot >> 16 >= m->p.nr_as || (uint16_t)slot >= m->p.nr_slots)
		return -EINVAL;
	return 0;
}

static struct mvm_slot *log_slot(struct mv_kvm_model *m, uint32_t slot)
{
	struct mvm_slot *s = mvm_active(m, slot >> 16)->by_id[(uint16_t)slot];

	return s && s->dirty_bitmap ? s : NULL;
}

int mv_kvm_model_get_dirty_log(struct mv_kvm_model *m, uint32_t slot,
			       uint64_t *bitmap, size_t words)
{
	struct mvm_slot *s;
	size_t n;
	int ret;

	if (!mvm_use_dirty_bitmap(m))
		return -ENXIO;
	ret = log_ids(m, slot);
	if (ret)
		return ret;
	s = log_slot(m, slot);
	if (!s)
		return -ENOENT;
	n = mvm_bitmap_words(s->npages);
	if (words < n || !bitmap)
		return -EFAULT;
	memcpy(bitmap, s->dirty_bitmap, n * sizeof(*bitmap));
	if (!m->manual_protect) /* xchg each word to 0, re-protect */
		memset(s->dirty_bitmap, 0, n * sizeof(*bitmap));
	return 0;
}

/* kvm_clear_dirty_log_protect(): its checks in its order. */
static int clear_window(const struct mvm_slot *s, uint64_t first, uint32_t num)
{
	if (first > s->npages || num > s->npages - first)
		return -EINVAL;
	if (num < s->npages - first && num % 64)
		return -EINVAL;
	return 0;
}

int mv_kvm_model_clear_dirty_log(struct mv_kvm_model *m, uint32_t slot,
				 uint64_t first, uint32_t num,
				 const uint64_t *bitmap)
{
	struct mvm_slot *s;
	uint64_t i;
	int ret;

	if (!mvm_use_dirty_bitmap(m))
		return -ENXIO;
	ret = log_ids(m, slot);
	if (ret)
		return ret;
	if (first % 64)
		return -EINVAL;
	s = log_slot(m, slot);
	if (!s)
		return -ENOENT;
	ret = clear_window(s, first, num);
	if (ret)
		return ret;
	if (num && !bitmap)
		return -EFAULT;
	for (i = 0; i < mvm_bitmap_words(num); i++) {
		uint64_t mask = bitmap[i];

		if (i == num / 64) /* the partial last word of the window */
			mask &= (1ull << (num % 64)) - 1;
		s->dirty_bitmap[first / 64 + i] &= ~mask;
	}
	return 0;
}

/*
 * mark_page_dirty_in_slot(): with the ring and a vCPU, an entry (the
 * caller calls this only for a store that faulted); else a bitmap bit.
 */
void mvm_mark_page_dirty(struct mv_kvm_model *m, struct mvm_vcpu *v,
			 struct mvm_slot *s, uint64_t rel_gfn)
{
	if (!(s->flags & MV_KVM_MODEL_MEM_LOG))
		return;
	if (m->ring_size && v)
		mvm_ring_push(m, v, (uint32_t)s->as_id << 16 | s->id, rel_gfn);
	else if (s->dirty_bitmap)
		s->dirty_bitmap[rel_gfn / 64] |= 1ull << (rel_gfn % 64);
}

/*
 * A store that lands in @s.  With the ring it leaves the page's SPTE
 * writable, LOG or not, and marks the page only if it faulted (the SPTE
 * was not writable).  With bitmaps every store may set the bit: a page
 * with a writable SPTE has its bit set already.
 */
static int store(struct mv_kvm_model *m, struct mvm_vcpu *v, struct mvm_slot *s,
		 uint64_t rel_gfn)
{
	bool faulted = true;
	int ret;

	if (m->ring_size && v) {
		ret = mvm_spte_store(m, s, rel_gfn, &faulted);
		if (ret)
			return ret;
	}
	if (faulted)
		mvm_mark_page_dirty(m, v, s, rel_gfn);
	return 0;
}

int mv_kvm_model_guest_write(struct mv_kvm_model *m, unsigned vcpu,
			     uint64_t gpa, enum mv_kvm_model_exit *exit)
{
	uint64_t gfn = gpa >> MVM_PAGE_SHIFT;
	struct mvm_vcpu *v = NULL;
	struct mvm_slot *s;
	int ret;

	if (vcpu != MV_KVM_MODEL_NO_VCPU) {
		if (vcpu >= m->nr_vcpus)
			return -EINVAL;
		v = &m->vcpu[vcpu];
	} else if (m->ring_size) {
		return -EINVAL; /* the kernel drops it with a WARN */
	}
	if (v && m->ring_size && mvm_ring_soft_full(m, v)) {
		*exit = MV_KVM_MODEL_EXIT_RING_FULL; /* the pending request */
		return 0;
	}
	s = v ? mvm_vcpu_gfn_to_memslot(m, v, gfn) :
		mvm_gfn_to_memslot(m, 0, gfn);
	if (!s || s->flags & (MV_KVM_MODEL_MEMSLOT_INVALID |
			      MV_KVM_MODEL_MEM_READONLY)) {
		*exit = MV_KVM_MODEL_EXIT_MMIO;
		return 0;
	}
	ret = store(m, v, s, gfn - s->base_gfn);
	if (ret)
		return ret;
	*exit = v && m->ring_size && mvm_ring_soft_full(m, v) ?
			MV_KVM_MODEL_EXIT_RING_FULL :
			MV_KVM_MODEL_EXIT_NONE;
	return 0;
}
