// SPDX-License-Identifier: MIT
/*
 * The model as a struct mv_backend (backend.h): each operation of the
 * replay format maps onto one model call; "vm" replaces the model with a
 * fresh one whose guest_memfd numbers continue where the old left off, so
 * an old fd reads as another VM's file.
 */
#include <errno.h>
#include <stdlib.h>

#include "backend.h"
#include "internal.h"

struct model_backend {
	struct mv_backend b;
	struct mv_kvm_model *m;
};

static struct mv_kvm_model *model_of(struct mv_backend *b)
{
	return ((struct model_backend *)b->priv)->m;
}

void mv_backend_default_limits(struct mv_backend_limits *l)
{
	struct mv_kvm_model_params p;

	mv_kvm_model_default_params(&p);
	*l = (struct mv_backend_limits){
		.nr_slots = p.nr_slots,
		.nr_as = p.nr_as,
		.readonly_mem = p.readonly_mem,
		.manual_protect = p.manual_protect,
		.ring_max_bytes = p.ring_max_bytes,
		.ring_rsvd_entries = p.ring_rsvd_entries,
		.user_memory2 = p.user_memory2,
		.guest_memfd = p.guest_memfd,
		.max_gfn = p.max_gfn,
		.user_ptr_max = p.user_ptr_max,
		.slot_zap_all = p.slot_zap_all,
	};
}

/* The model's parameters for @l (@first_gmem_fd < 0: the default). */
static void params_of(const struct mv_backend_limits *l, int first_gmem_fd,
		      struct mv_kvm_model_params *p)
{
	mv_kvm_model_default_params(p);
	p->nr_slots = l->nr_slots;
	p->nr_as = l->nr_as;
	p->readonly_mem = l->readonly_mem;
	p->manual_protect = l->manual_protect;
	p->ring_max_bytes = l->ring_max_bytes;
	p->ring_rsvd_entries = l->ring_rsvd_entries;
	p->user_memory2 = l->user_memory2;
	p->guest_memfd = l->guest_memfd;
	p->max_gfn = l->max_gfn;
	p->user_ptr_max = l->user_ptr_max;
	p->slot_zap_all = l->slot_zap_all;
	if (first_gmem_fd >= 0)
		p->first_gmem_fd = first_gmem_fd;
}

static int op_vm(struct mv_backend *b)
{
	struct model_backend *mb = b->priv;
	struct mv_kvm_model_params p;
	struct mv_kvm_model *fresh;
	int ret;

	params_of(&b->limits, mb->m->next_gmem_fd, &p);
	ret = mv_kvm_model_new(&p, &fresh);
	if (ret)
		return ret;
	mv_kvm_model_free(mb->m);
	mb->m = fresh;
	return 0;
}

static int op_set_region(struct mv_backend *b, const struct mv_region2 *r,
			 bool v2)
{
	struct mv_kvm_model_region mr = {
		.slot = r->slot,
		.flags = r->flags,
		.gpa = r->guest_phys_addr,
		.size = r->memory_size,
		.hva = r->userspace_addr,
		.gmem_offset = v2 ? r->guest_memfd_offset : 0,
		.gmem_fd = v2 ? r->guest_memfd : 0,
	};

	return mv_kvm_model_set_region(model_of(b), &mr, v2);
}

static int op_gmem_create(struct mv_backend *b, uint64_t size, int *fd)
{
	return mv_kvm_model_gmem_create(model_of(b), size, 0, fd);
}

static int op_enable_cap(struct mv_backend *b, uint32_t cap, uint64_t arg)
{
	return mv_kvm_model_enable_cap(model_of(b), cap, 0, arg);
}

static int op_create_vcpu(struct mv_backend *b)
{
	unsigned index;

	return mv_kvm_model_create_vcpu(model_of(b), &index);
}

static int op_get_dirty_log(struct mv_backend *b, uint32_t slot,
			    uint64_t *bitmap, size_t words, uint64_t *result)
{
	int ret = mv_kvm_model_get_dirty_log(model_of(b), slot, bitmap, words);
	struct mv_kvm_model_slot_info info;
	size_t i, n;

	if (ret)
		return ret;
	mv_kvm_model_slot(model_of(b), slot, &info);
	n = mvm_bitmap_words(info.size >> MVM_PAGE_SHIFT);
	*result = 0;
	for (i = 0; i < n; i++)
		*result += (uint64_t)__builtin_popcountll(bitmap[i]);
	return 0;
}

static int op_clear_dirty_log(struct mv_backend *b, uint32_t slot,
			      uint32_t first, uint32_t num,
			      const uint64_t *bitmap)
{
	return mv_kvm_model_clear_dirty_log(model_of(b), slot, first, num,
					    bitmap);
}

/* vCPU 0 stores when there is one; otherwise KVM itself (bitmap modes). */
static int op_guest_write(struct mv_backend *b, uint64_t gpa)
{
	struct mv_kvm_model *m = model_of(b);
	enum mv_kvm_model_exit exit;
	unsigned vcpu = m->nr_vcpus ? 0 : MV_KVM_MODEL_NO_VCPU;
	int ret = mv_kvm_model_guest_write(m, vcpu, gpa, &exit);

	if (ret)
		return ret;
	switch (exit) {
	case MV_KVM_MODEL_EXIT_NONE:
		return 0;
	case MV_KVM_MODEL_EXIT_MMIO:
		return -EFAULT;
	default:
		return -EBUSY;
	}
}

/* Userspace's harvest of every ring, then KVM_RESET_DIRTY_RINGS. */
static int op_reset_rings(struct mv_backend *b, uint64_t *result)
{
	struct mv_kvm_model *m = model_of(b);
	struct mv_kvm_model_dirty_gfn e[64];
	unsigned i;
	int ret;

	for (i = 0; m->ring_size && i < m->nr_vcpus; i++)
		while (mv_kvm_model_ring_harvest(m, i, e, 64) > 0)
			;
	ret = mv_kvm_model_reset_rings(m);
	if (ret < 0)
		return ret;
	*result = (uint64_t)ret;
	return 0;
}

static int op_lookup(struct mv_backend *b, uint64_t gpa, uint64_t *result,
		     bool *found)
{
	struct mv_kvm_model_slot_info info;
	int ret = mv_kvm_model_lookup(model_of(b), 0, gpa, &info);

	*found = ret == 0;
	*result = ret ? 0 : info.slot;
	return ret == -ENOENT ? 0 : ret;
}

static size_t op_slots(struct mv_backend *b, struct mv_backend_slot *out,
		       size_t max)
{
	struct mv_kvm_model *m = model_of(b);
	size_t i, n = mv_kvm_model_slots(m, NULL, 0);
	struct mv_kvm_model_slot_info *all = calloc(n ? n : 1, sizeof(*all));

	if (!all)
		return 0;
	mv_kvm_model_slots(m, all, n);
	for (i = 0; i < n && i < max; i++)
		out[i] = (struct mv_backend_slot){ all[i].slot, all[i].flags,
						   all[i].gpa, all[i].size,
						   all[i].hva };
	free(all);
	return n;
}

static void op_free(struct mv_backend *b)
{
	struct model_backend *mb;

	if (!b)
		return;
	mb = b->priv;
	mv_kvm_model_free(mb->m);
	free(mb);
}

static const struct mv_backend_ops model_ops = {
	.vm = op_vm,
	.set_region = op_set_region,
	.gmem_create = op_gmem_create,
	.enable_cap = op_enable_cap,
	.create_vcpu = op_create_vcpu,
	.get_dirty_log = op_get_dirty_log,
	.clear_dirty_log = op_clear_dirty_log,
	.guest_write = op_guest_write,
	.reset_rings = op_reset_rings,
	.lookup = op_lookup,
	.slots = op_slots,
	.free = op_free,
};

int mv_backend_model_new(const struct mv_backend_limits *limits,
			 struct mv_backend **out)
{
	struct model_backend *mb = calloc(1, sizeof(*mb));
	struct mv_kvm_model_params p;
	int ret;

	if (!mb)
		return -ENOMEM;
	params_of(limits, -1, &p);
	ret = mv_kvm_model_new(&p, &mb->m);
	if (ret) {
		free(mb);
		return ret;
	}
	mb->b.ops = &model_ops;
	mb->b.limits = *limits;
	mb->b.priv = mb;
	*out = &mb->b;
	return 0;
}
