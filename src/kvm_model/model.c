// SPDX-License-Identifier: MIT
/*
 * The model's VM: its life cycle, capabilities (kvm_vm_ioctl_enable_cap_
 * generic), vCPUs, the allocation-failure knob and the read-only queries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void mv_kvm_model_default_params(struct mv_kvm_model_params *p)
{
	*p = (struct mv_kvm_model_params){
		.nr_slots = 32764,
		.nr_as = 1,
		.readonly_mem = true,
		.manual_protect = MV_KVM_MODEL_MANUAL_ENABLE |
				  MV_KVM_MODEL_MANUAL_INITIALLY_SET,
		.ring_max_bytes = MVM_RING_MAX_ENTRIES * 16,
		.ring_rsvd_entries = 64,
		.user_memory2 = true,
		.guest_memfd = true,
		.max_gfn = (1ull << 40) - 1, /* 52-bit GPAs, shadow MMU */
		.user_ptr_max = 0x7ffffffff000ull,
		.max_npages = (1ull << 31) - 1,
		.max_vcpus = 4096,
		.first_gmem_fd = 1000,
		.slot_zap_all = true, /* x86, KVM_X86_QUIRK_SLOT_ZAP_ALL */
	};
}

bool mvm_alloc_ok(struct mv_kvm_model *m)
{
	m->nr_allocs++;
	return !(m->fail_at && --m->fail_at == 0);
}

void *mvm_alloc(struct mv_kvm_model *m, size_t size)
{
	if (!mvm_alloc_ok(m))
		return NULL;
	return calloc(1, size ? size : 1);
}

void mv_kvm_model_fail_alloc(struct mv_kvm_model *m, unsigned long nth)
{
	m->fail_at = nth;
}

unsigned long mv_kvm_model_nr_allocs(const struct mv_kvm_model *m)
{
	return m->nr_allocs;
}

void mv_kvm_model_set_hook(struct mv_kvm_model *m, mv_kvm_model_hook_fn fn,
			   void *opaque)
{
	m->hook = fn;
	m->hook_opaque = opaque;
}

void mvm_hook(struct mv_kvm_model *m, enum mv_kvm_model_stage stage,
	      unsigned as_id)
{
	if (m->hook)
		m->hook(m, stage, as_id, m->hook_opaque);
}

/* kvm_use_dirty_bitmap(): the ring replaces bitmaps (no WITH_BITMAP). */
bool mvm_use_dirty_bitmap(const struct mv_kvm_model *m)
{
	return !m->ring_size;
}

static int space_init(struct mv_kvm_model *m, unsigned as_id)
{
	unsigned j;

	for (j = 0; j < 2; j++) {
		struct mvm_set *s = &m->space[as_id].set[j];

		RB_INIT(&s->gfn_tree);
		RB_INIT(&s->hva_tree);
		s->idx = j;
		s->generation = as_id; /* distinct per address space */
		s->by_id = calloc(m->p.nr_slots, sizeof(*s->by_id));
		s->gnode = calloc(m->p.nr_slots, sizeof(*s->gnode));
		if (!s->by_id || !s->gnode)
			return -ENOMEM;
	}
	return 0;
}

int mv_kvm_model_new(const struct mv_kvm_model_params *p,
		     struct mv_kvm_model **out)
{
	struct mv_kvm_model *m;
	unsigned i;
	int ret;

	if (!p->nr_slots || p->nr_slots > MVM_SLOTS_NUM || !p->nr_as ||
	    p->nr_as > MVM_MAX_AS)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->p = *p;
	m->next_gmem_fd = p->first_gmem_fd;
	for (i = 0; i < p->nr_as; i++) {
		ret = space_init(m, i);
		if (ret) {
			mv_kvm_model_free(m);
			return ret;
		}
	}
	*out = m;
	return 0;
}

void mv_kvm_model_free(struct mv_kvm_model *m)
{
	unsigned i, j, id;

	if (!m)
		return;
	for (i = 0; i < m->p.nr_as; i++) {
		struct mvm_set *s = mvm_active(m, i);

		for (id = 0; s->by_id && id < m->p.nr_slots; id++)
			if (s->by_id[id])
				mvm_slot_free(m, s->by_id[id]);
		for (j = 0; j < 2; j++) {
			free(m->space[i].set[j].by_id);
			free(m->space[i].set[j].gnode);
		}
	}
	for (i = 0; i < m->nr_vcpus; i++)
		free(m->vcpu[i].ring);
	free(m->vcpu);
	mvm_gmem_free_all(m);
	free(m);
}

const struct mv_kvm_model_params *
mv_kvm_model_params(const struct mv_kvm_model *m)
{
	return &m->p;
}

/* ---- capabilities ------------------------------------------------------ */

static int enable_manual_protect(struct mv_kvm_model *m, uint32_t flags,
				 uint64_t arg)
{
	uint64_t allowed = MV_KVM_MODEL_MANUAL_ENABLE;

	if (!m->p.manual_protect)
		return -EINVAL;
	if (arg & MV_KVM_MODEL_MANUAL_ENABLE)
		allowed = m->p.manual_protect;
	if (flags || arg & ~allowed)
		return -EINVAL;
	m->manual_protect = (uint32_t)arg;
	return 0;
}

/*
 * kvm_vm_ioctl_enable_dirty_log_ring(), in its order.  It takes a u32
 * @size, so args[0] is truncated first: 2^32 is 0 (EINVAL, not E2BIG),
 * 2^32 + 4096 is 4096 (kvm_pvm 6.18: ring_size_4g, ring_size_4g_plus_4k).
 */
static int enable_dirty_ring(struct mv_kvm_model *m, uint32_t size)
{
	if (!m->p.ring_max_bytes)
		return -EINVAL;
	if (!size || size & (size - 1))
		return -EINVAL;
	if (size < (uint64_t)m->p.ring_rsvd_entries * 16 ||
	    size < MVM_PAGE_SIZE)
		return -EINVAL;
	if (size > m->p.ring_max_bytes)
		return -E2BIG;
	if (m->ring_size || m->nr_vcpus)
		return -EINVAL;
	m->ring_size = size / (uint32_t)sizeof(struct mv_kvm_model_dirty_gfn);
	return 0;
}

int mv_kvm_model_enable_cap(struct mv_kvm_model *m, uint32_t cap,
			    uint32_t flags, uint64_t arg)
{
	if (m->updating)
		return -EBUSY;
	switch (cap) {
	case MV_KVM_MODEL_CAP_MANUAL_DIRTY_LOG_PROTECT2:
		return enable_manual_protect(m, flags, arg);
	case MV_KVM_MODEL_CAP_DIRTY_LOG_RING:
	case MV_KVM_MODEL_CAP_DIRTY_LOG_RING_ACQ_REL:
		return enable_dirty_ring(m, (uint32_t)arg);
	default:
		return -EINVAL;
	}
}

/* ---- vCPUs ----------------------------------------------------------------- */

int mv_kvm_model_create_vcpu(struct mv_kvm_model *m, unsigned *index)
{
	struct mvm_vcpu *v, *grown;
	int ret;

	if (m->nr_vcpus >= m->p.max_vcpus)
		return -EINVAL;
	grown = realloc(m->vcpu, (m->nr_vcpus + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	m->vcpu = grown;
	v = &m->vcpu[m->nr_vcpus];
	memset(v, 0, sizeof(*v));
	if (m->ring_size) {
		ret = mvm_ring_alloc(m, v);
		if (ret)
			return ret;
	}
	*index = m->nr_vcpus++;
	return 0;
}

unsigned mv_kvm_model_nr_vcpus(const struct mv_kvm_model *m)
{
	return m->nr_vcpus;
}

/* ---- queries ------------------------------------------------------------- */

void mvm_slot_info(const struct mvm_slot *s, struct mv_kvm_model_slot_info *out)
{
	*out = (struct mv_kvm_model_slot_info){
		.slot = (uint32_t)s->as_id << 16 | s->id,
		.flags = s->flags,
		.gpa = s->base_gfn << MVM_PAGE_SHIFT,
		.size = s->npages << MVM_PAGE_SHIFT,
		.hva = s->hva,
		.gmem_fd = s->gmem ? s->gmem->fd : -1,
		.gmem_offset = s->gmem_pgoff << MVM_PAGE_SHIFT,
	};
}

size_t mv_kvm_model_slots(const struct mv_kvm_model *m,
			  struct mv_kvm_model_slot_info *out, size_t max)
{
	size_t n = 0;
	unsigned as, id;

	for (as = 0; as < m->p.nr_as; as++) {
		const struct mvm_space *sp = &m->space[as];
		const struct mvm_set *s = &sp->set[sp->active];

		for (id = 0; id < m->p.nr_slots; id++) {
			if (!s->by_id[id])
				continue;
			if (n < max)
				mvm_slot_info(s->by_id[id], &out[n]);
			n++;
		}
	}
	return n;
}

int mv_kvm_model_slot(const struct mv_kvm_model *m, uint32_t slot,
		      struct mv_kvm_model_slot_info *out)
{
	unsigned as_id = slot >> 16, id = (uint16_t)slot;
	const struct mvm_space *sp;

	if (as_id >= m->p.nr_as || id >= m->p.nr_slots)
		return -EINVAL;
	sp = &m->space[as_id];
	if (!sp->set[sp->active].by_id[id])
		return -ENOENT;
	mvm_slot_info(sp->set[sp->active].by_id[id], out);
	return 0;
}

uint64_t mv_kvm_model_generation(const struct mv_kvm_model *m, unsigned as_id)
{
	const struct mvm_space *sp;

	if (as_id >= m->p.nr_as)
		return 0;
	sp = &m->space[as_id];
	return sp->set[sp->active].generation;
}

uint64_t mv_kvm_model_nr_pages(const struct mv_kvm_model *m)
{
	return m->nr_memslot_pages;
}

void mv_kvm_model_get_stats(const struct mv_kvm_model *m,
			    struct mv_kvm_model_stats *out)
{
	*out = m->stats;
}

/* A usable slot: INVALID copies are holes to their users. */
static int lookup_result(struct mvm_slot *s, struct mv_kvm_model_slot_info *out)
{
	if (!s || s->flags & MV_KVM_MODEL_MEMSLOT_INVALID)
		return -ENOENT;
	if (out)
		mvm_slot_info(s, out);
	return 0;
}

int mv_kvm_model_lookup(struct mv_kvm_model *m, unsigned as_id, uint64_t gpa,
			struct mv_kvm_model_slot_info *out)
{
	if (as_id >= m->p.nr_as)
		return -EINVAL;
	return lookup_result(
		mvm_gfn_to_memslot(m, as_id, gpa >> MVM_PAGE_SHIFT), out);
}

int mv_kvm_model_vcpu_lookup(struct mv_kvm_model *m, unsigned vcpu,
			     uint64_t gpa, struct mv_kvm_model_slot_info *out)
{
	if (vcpu >= m->nr_vcpus)
		return -EINVAL;
	return lookup_result(mvm_vcpu_gfn_to_memslot(m, &m->vcpu[vcpu],
						     gpa >> MVM_PAGE_SHIFT),
			     out);
}

int mv_kvm_model_hva_for_each(struct mv_kvm_model *m, unsigned as_id,
			      uint64_t first, uint64_t last,
			      mv_kvm_model_slot_fn fn, void *opaque)
{
	if (as_id >= m->p.nr_as || first > last)
		return -EINVAL;
	return mvm_hva_for_each(mvm_active(m, as_id), first, last, fn, opaque);
}
