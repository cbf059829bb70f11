// SPDX-License-Identifier: MIT
/*
 * The dirty ring (reference kvm-memslots.md §2.3, virt/kvm/dirty_ring.c):
 * per-vCPU rings of struct kvm_dirty_gfn, indexes that only grow (masked
 * by size - 1), entry flags 00 -> DIRTY -> RESET -> 00.
 *
 *   reset_index <= harvest_index <= dirty_index <= reset_index + size
 *   [reset, harvest): harvested (RESET), [harvest, dirty): DIRTY
 *   soft full: dirty_index - reset_index >= size - rsvd
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

int mvm_ring_alloc(struct mv_kvm_model *m, struct mvm_vcpu *v)
{
	v->ring = mvm_alloc(m, (size_t)m->ring_size * sizeof(*v->ring));
	return v->ring ? 0 : -ENOMEM;
}

static uint32_t ring_used(const struct mvm_vcpu *v)
{
	return v->dirty_index - v->reset_index;
}

bool mvm_ring_soft_full(const struct mv_kvm_model *m, const struct mvm_vcpu *v)
{
	return ring_used(v) >= m->ring_size - m->p.ring_rsvd_entries;
}

/* kvm_dirty_ring_push(); soft-full exits keep it from ever overflowing. */
void mvm_ring_push(struct mv_kvm_model *m, struct mvm_vcpu *v, uint32_t slot,
		   uint64_t offset)
{
	struct mv_kvm_model_dirty_gfn *e =
		&v->ring[v->dirty_index & (m->ring_size - 1)];

	e->slot = slot;
	e->offset = offset;
	e->flags = MV_KVM_MODEL_GFN_DIRTY;
	v->dirty_index++;
}

static struct mvm_vcpu *ring_vcpu(struct mv_kvm_model *m, unsigned vcpu)
{
	if (!m->ring_size || vcpu >= m->nr_vcpus)
		return NULL;
	return &m->vcpu[vcpu];
}

int mv_kvm_model_ring_harvest(struct mv_kvm_model *m, unsigned vcpu,
			      struct mv_kvm_model_dirty_gfn *out, size_t max)
{
	struct mvm_vcpu *v = ring_vcpu(m, vcpu);
	size_t n = 0;

	if (!v)
		return -EINVAL;
	if (v->harvest_index - v->reset_index > ring_used(v))
		v->harvest_index = v->reset_index; /* a reset passed it */
	while (n < max && v->harvest_index != v->dirty_index) {
		struct mv_kvm_model_dirty_gfn *e =
			&v->ring[v->harvest_index & (m->ring_size - 1)];

		v->harvest_index++;
		if (e->flags != MV_KVM_MODEL_GFN_DIRTY)
			continue; /* collected through the mapping */
		out[n++] = *e;
		e->flags |= MV_KVM_MODEL_GFN_RESET;
	}
	return (int)n;
}

struct mv_kvm_model_dirty_gfn *mv_kvm_model_ring(struct mv_kvm_model *m,
						 unsigned vcpu, uint32_t *nr)
{
	struct mvm_vcpu *v = ring_vcpu(m, vcpu);

	if (!v)
		return NULL;
	*nr = m->ring_size;
	return v->ring;
}

int mv_kvm_model_ring_used(const struct mv_kvm_model *m, unsigned vcpu)
{
	if (!m->ring_size || vcpu >= m->nr_vcpus)
		return -EINVAL;
	return (int)ring_used(&m->vcpu[vcpu]);
}

/*
 * kvm_reset_dirty_gfn(): re-protect page @offset + i of the slot @slot
 * names for each bit i of @mask -- in any slot, LOG or not -- unless the
 * highest of them is past the slot's end (a slot deleted and made again
 * smaller), which skips the whole mask.
 */
static void reset_gfns(struct mv_kvm_model *m, uint32_t slot, uint64_t offset,
		       uint64_t mask)
{
	unsigned as_id = slot >> 16, id = (uint16_t)slot;
	struct mvm_slot *s;

	if (!mask || as_id >= m->p.nr_as || id >= m->p.nr_slots)
		return;
	s = mvm_active(m, as_id)->by_id[id];
	if (!s || offset + (63 - (unsigned)__builtin_clzll(mask)) >= s->npages)
		return;
	mvm_spte_protect(m, s, offset, mask);
}

/*
 * One batch of kvm_dirty_ring_reset(): entries of one slot within 64
 * pages of each other, forwards or backwards, are reset as one mask.
 */
struct reset_batch {
	uint32_t slot;
	uint64_t offset, mask;
};

static void batch_add(struct mv_kvm_model *m, struct reset_batch *b,
		      uint32_t slot, uint64_t offset)
{
	int64_t delta = (int64_t)(offset - b->offset);

	if (b->mask && slot == b->slot) {
		if (delta >= 0 && delta < 64) {
			b->mask |= 1ull << delta;
			return;
		}
		/* backwards, if the mask still fits shifted up */
		if (delta > -64 && delta < 0 &&
		    (b->mask << -delta >> -delta) == b->mask) {
			b->offset = offset;
			b->mask = b->mask << -delta | 1;
			return;
		}
	}
	reset_gfns(m, b->slot, b->offset, b->mask);
	*b = (struct reset_batch){ slot, offset, 1 };
}

/* kvm_dirty_ring_reset(): from reset_index while entries are harvested. */
static int ring_reset(struct mv_kvm_model *m, struct mvm_vcpu *v)
{
	struct reset_batch b = { 0, 0, 0 };
	int n = 0;

	while (v->reset_index != v->dirty_index) {
		struct mv_kvm_model_dirty_gfn *e =
			&v->ring[v->reset_index & (m->ring_size - 1)];

		if (!(e->flags & MV_KVM_MODEL_GFN_RESET))
			break;
		batch_add(m, &b, e->slot, e->offset);
		e->flags = 0;
		v->reset_index++;
		n++;
	}
	reset_gfns(m, b.slot, b.offset, b.mask);
	return n;
}

int mv_kvm_model_reset_rings(struct mv_kvm_model *m)
{
	unsigned i;
	int n = 0;

	if (!m->ring_size)
		return -EINVAL;
	for (i = 0; i < m->nr_vcpus; i++)
		n += ring_reset(m, &m->vcpu[i]);
	return n;
}
