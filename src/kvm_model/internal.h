/* SPDX-License-Identifier: MIT */
/*
 * Internals of the kernel model.  Names follow virt/kvm/kvm_main.c where
 * the model mirrors a kernel structure, so the two read side by side.
 */
#ifndef MV_KVM_MODEL_INTERNAL_H
#define MV_KVM_MODEL_INTERNAL_H

#include <bsd/sys/tree.h>

#include "memvirt/kvm_model.h"

#define MVM_PAGE_SHIFT 12
#define MVM_PAGE_SIZE (1ull << MVM_PAGE_SHIFT)
#define MVM_MAX_AS 2
#define MVM_SLOTS_NUM 32767 /* KVM_MEM_SLOTS_NUM: SHRT_MAX */
#define MVM_RING_MAX_ENTRIES 65536

enum mvm_change {
	MVM_CREATE,
	MVM_DELETE,
	MVM_MOVE,
	MVM_FLAGS_ONLY,
};

struct mvm_slot;

/*
 * struct mvm_gnode - a slot's place in one set's gfn tree (the kernel's
 * gfn_node[idx]).  The kernel embeds it in the slot; here each set keeps
 * them in an array indexed by slot id (a set holds at most one slot per
 * id), 48 bytes each with the key, so a descent reads one dense line per
 * level instead of a line of a ~270-byte slot and then, through @slot,
 * another (at 32764 slots that was most of a lookup's cost).
 */
struct mvm_gnode {
	uint64_t base_gfn; /* == slot->base_gfn, which never changes */
	RB_ENTRY(mvm_gnode) entry;
	struct mvm_slot *slot;
};

/*
 * struct mvm_node - a slot's membership in one of its space's two hva
 * trees (the kernel's hva_node[idx]).  @hva_max_last is the largest
 * hva_last in this node's hva subtree (the interval augmentation).
 */
struct mvm_node {
	RB_ENTRY(mvm_node) hva_entry;
	uint64_t hva_last; /* hva + size - 1 */
	uint64_t hva_max_last;
	struct mvm_slot *slot;
};

RB_HEAD(mvm_gfn_tree, mvm_gnode);
RB_HEAD(mvm_hva_tree, mvm_node);

struct mvm_gmem;

/*
 * struct mvm_slot - a kvm_memory_slot.  Shared by both sets through
 * @node[0] and @node[1] (hva) and each set's gnode[@id] (gfn).  @dirty_bitmap: ALIGN(npages, 64) bits, owned by
 * the live slot (an INVALID copy and an old slot being replaced only
 * borrow it).  @writable (ring mode, any slot a vCPU stored to): the
 * pages whose SPTE is present and writable, so that the next store does
 * not fault and, in a LOG slot, pushes no ring entry.  It is valid only
 * while @writable_gen equals the VM's @mmu_gen: a zap of every SPTE
 * (mvm_zap_all()) just bumps that, as kvm_mmu_zap_all_fast() bumps
 * mmu_valid_gen.  NULL: no SPTE was ever made (all not present).
 */
struct mvm_slot {
	struct mvm_node node[2];
	uint16_t id, as_id;
	uint32_t flags;
	uint64_t base_gfn, npages, hva;
	uint64_t *dirty_bitmap;
	uint64_t *writable;
	uint64_t writable_gen;
	struct mvm_gmem *gmem; /* NULL once the file is closed */
	uint64_t gmem_pgoff;
	struct mvm_slot *gmem_next; /* in @gmem's binding list */
};

/*
 * struct mvm_set - a struct kvm_memslots.  @idx is the node index its
 * slots use.  @by_id and @gnode have @nr_slots entries; @nr counts the
 * non-NULL ones of @by_id, and gnode[id] is in @gfn_tree iff by_id[id] is
 * set.
 */
struct mvm_set {
	struct mvm_gfn_tree gfn_tree;
	struct mvm_gnode *gnode;
	struct mvm_hva_tree hva_tree;
	struct mvm_slot **by_id;
	struct mvm_slot *last_used;
	uint64_t generation;
	unsigned idx;
	size_t nr;
};

struct mvm_space {
	struct mvm_set set[2];
	unsigned active; /* index into @set of the published set */
};

/* A guest_memfd file and the slots bound to it (by page offset). */
struct mvm_gmem {
	int fd;
	uint64_t size;
	struct mvm_slot *bindings;
	struct mvm_gmem *next;
};

/* A vCPU: its memslot cache and dirty ring (the kernel's indexes). */
struct mvm_vcpu {
	struct mvm_slot *last_used;
	uint64_t last_used_gen;
	struct mv_kvm_model_dirty_gfn *ring; /* @ring_size entries or NULL */
	uint32_t dirty_index, reset_index, harvest_index;
};

struct mv_kvm_model {
	struct mv_kvm_model_params p;
	struct mvm_space space[MVM_MAX_AS];
	uint64_t nr_memslot_pages;
	uint64_t mmu_gen; /* bumped by a zap of every SPTE (mvm_zap_all()) */
	uint32_t manual_protect; /* the enabled MANUAL_DIRTY_LOG_PROTECT2 arg */
	uint32_t ring_size;	 /* entries per vCPU ring (0: off) */
	struct mvm_vcpu *vcpu;
	unsigned nr_vcpus;
	struct mvm_gmem *gmem;
	int next_gmem_fd;
	bool updating;
	unsigned long nr_allocs, fail_at;
	mv_kvm_model_hook_fn hook;
	void *hook_opaque;
	struct mv_kvm_model_stats stats;
};

/* model.c */
/* One allocation point: false when the failure knob says it fails. */
bool mvm_alloc_ok(struct mv_kvm_model *m);
void *mvm_alloc(struct mv_kvm_model *m, size_t size);
bool mvm_use_dirty_bitmap(const struct mv_kvm_model *m);
void mvm_hook(struct mv_kvm_model *m, enum mv_kvm_model_stage stage,
	      unsigned as_id);
void mvm_slot_info(const struct mvm_slot *s,
		   struct mv_kvm_model_slot_info *out);
static inline struct mvm_set *mvm_active(struct mv_kvm_model *m, unsigned as_id)
{
	return &m->space[as_id].set[m->space[as_id].active];
}
static inline struct mvm_set *mvm_inactive(struct mv_kvm_model *m,
					   unsigned as_id)
{
	return &m->space[as_id].set[m->space[as_id].active ^ 1];
}

/* gfn_tree.c */
void mvm_gfn_insert(struct mvm_set *s, struct mvm_slot *slot);
void mvm_gfn_erase(struct mvm_set *s, struct mvm_slot *slot);
struct mvm_slot *mvm_search(struct mvm_set *s, uint64_t gfn);
struct mvm_slot *mvm_gfn_to_memslot(struct mv_kvm_model *m, unsigned as_id,
				    uint64_t gfn);
struct mvm_slot *mvm_vcpu_gfn_to_memslot(struct mv_kvm_model *m,
					 struct mvm_vcpu *v, uint64_t gfn);
bool mvm_overlaps_other(struct mvm_set *s, unsigned id, uint64_t start,
			uint64_t end);
struct mvm_gnode *mvm_gfn_first(struct mvm_set *s);
struct mvm_gnode *mvm_gfn_next(struct mvm_gnode *n);

/* hva_tree.c */
void mvm_hva_insert(struct mvm_set *s, struct mvm_slot *slot);
void mvm_hva_erase(struct mvm_set *s, struct mvm_slot *slot);
int mvm_hva_for_each(struct mvm_set *s, uint64_t first, uint64_t last,
		     mv_kvm_model_slot_fn fn, void *opaque);
/* 0 if @s's hva tree is ordered and its augmentation right; counts nodes */
int mvm_hva_check(struct mvm_set *s, size_t *count);

/* memslots.c */
void mvm_slot_free(struct mv_kvm_model *m, struct mvm_slot *s);

/* dirty.c */
size_t mvm_bitmap_words(uint64_t npages);
void mvm_bitmap_set_all(uint64_t *bm, uint64_t npages);
void mvm_mark_page_dirty(struct mv_kvm_model *m, struct mvm_vcpu *v,
			 struct mvm_slot *s, uint64_t rel_gfn);

/* spte.c */
int mvm_spte_store(struct mv_kvm_model *m, struct mvm_slot *s, uint64_t rel_gfn,
		   bool *faulted);
/* Write-protect page @first + i of @s for each bit i set in @mask. */
void mvm_spte_protect(struct mv_kvm_model *m, struct mvm_slot *s,
		      uint64_t first, uint64_t mask);
void mvm_spte_zap_slot(struct mv_kvm_model *m, struct mvm_slot *s);
/* Drop every SPTE of the VM (kvm_mmu_zap_all_fast()). */
void mvm_zap_all(struct mv_kvm_model *m);
void mvm_spte_apply_flags(struct mv_kvm_model *m, uint32_t old_flags,
			  struct mvm_slot *s);

/* ring.c */
int mvm_ring_alloc(struct mv_kvm_model *m, struct mvm_vcpu *v);
bool mvm_ring_soft_full(const struct mv_kvm_model *m, const struct mvm_vcpu *v);
void mvm_ring_push(struct mv_kvm_model *m, struct mvm_vcpu *v, uint32_t slot,
		   uint64_t offset);

/* gmem.c */
struct mvm_gmem *mvm_gmem_find(struct mv_kvm_model *m, int fd);
int mvm_gmem_bind(struct mv_kvm_model *m, struct mvm_slot *s, uint32_t fd,
		  uint64_t offset);
void mvm_gmem_unbind(struct mvm_slot *s);
void mvm_gmem_free_all(struct mv_kvm_model *m);

#endif /* MV_KVM_MODEL_INTERNAL_H */
