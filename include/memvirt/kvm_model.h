/* SPDX-License-Identifier: MIT */
/*
 * An in-process model of the kernel's memslot table and dirty logging
 * (reference kvm-memslots.md §1-2, virt/kvm/kvm_main.c and dirty_ring.c of
 * Linux 6.18), parameterised by what the kernel reports (struct
 * mv_kvm_model_params), so it can stand in for /dev/kvm: behind the ioctl
 * seam as the fake kernel (mv_kvm_sys_fake_new()), or next to the real
 * kernel in differential tests.
 *
 * What it keeps, and the invariants mv_kvm_model_check() verifies after
 * every step (outside an update):
 *   - per address space, two slot sets (active, inactive) holding the
 *     same slots; each set has a gfn-keyed red-black tree (slots never
 *     overlap in GPA), an hva interval tree (an RB tree keyed by hva start,
 *     augmented with the subtree's max hva end), an id table and a
 *     last-used-slot cache.  An update edits the inactive set, swaps, and
 *     replays the edit on the other one, as the kernel does;
 *   - generations: every swap publishes the set with bit 63 set (update in
 *     progress), then clears it and adds nr_as.  Address space i starts at
 *     i, so outside an update (active generation - as_id) % nr_as == 0
 *     and bit 63 is clear.  CREATE and FLAGS_ONLY swap once, DELETE and
 *     MOVE twice (an INVALID copy first); a no-op does not swap;
 *   - a LOG slot has a dirty bitmap of ALIGN(npages, 64) bits unless it
 *     was created with the dirty ring on; bits past npages are zero; a
 *     non-LOG slot has none;
 *   - with the dirty ring on, a slot a vCPU stored to has a bitmap of the
 *     pages with a writable SPTE (what decides whether a store faults and
 *     logs), none past npages; without the ring no slot has one;
 *   - the sum of all slots' npages, gmem bindings that never overlap
 *     within one guest_memfd file, and per-vCPU rings whose entries between
 *     the reset index and the dirty index are DIRTY or RESET.
 *
 * The model is single-threaded (the kernel's slots_lock is the caller's
 * business), keeps no global state, never prints, and never dereferences
 * host addresses: an hva is a number.  Functions return 0 or a negative
 * errno exactly as the kernel's ioctl would.
 */
#ifndef MEMVIRT_KVM_MODEL_H
#define MEMVIRT_KVM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Slot flags (uapi values; GUEST_MEMFD is REGION2 only). */
#define MV_KVM_MODEL_MEM_LOG (1u << 0)
#define MV_KVM_MODEL_MEM_READONLY (1u << 1)
#define MV_KVM_MODEL_MEM_GUEST_MEMFD (1u << 2)
/* Kernel-internal: the slot is being deleted or moved (never in a table). */
#define MV_KVM_MODEL_MEMSLOT_INVALID (1u << 16)

/* Capabilities mv_kvm_model_enable_cap() knows (uapi numbers). */
#define MV_KVM_MODEL_CAP_MANUAL_DIRTY_LOG_PROTECT2 168
#define MV_KVM_MODEL_CAP_DIRTY_LOG_RING 192
#define MV_KVM_MODEL_CAP_DIRTY_LOG_RING_ACQ_REL 214
/* MANUAL_DIRTY_LOG_PROTECT2 arguments. */
#define MV_KVM_MODEL_MANUAL_ENABLE (1u << 0)
#define MV_KVM_MODEL_MANUAL_INITIALLY_SET (1u << 1)

/* Dirty ring entry flags: 00 -> DIRTY (KVM) -> RESET (user) -> 00. */
#define MV_KVM_MODEL_GFN_DIRTY (1u << 0)
#define MV_KVM_MODEL_GFN_RESET (1u << 1)

/* The generation bit set while a swap is in progress. */
#define MV_KVM_MODEL_GEN_IN_PROGRESS (1ull << 63)

/* A guest write made by KVM itself, not by a vCPU. */
#define MV_KVM_MODEL_NO_VCPU (~0u)

/*
 * struct mv_kvm_model_params - what the kernel reports, plus two kernel
 * constants.  mv_kvm_model_default_params() gives the values of the kernel
 * these machines run (kvm-memslots.md).
 * @nr_slots: KVM_CAP_NR_MEMSLOTS: user slot ids 0..nr_slots-1.
 * @nr_as: address spaces (1, or 2 on x86 with SMM).
 * @readonly_mem: KVM_CAP_READONLY_MEM.
 * @manual_protect: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (0: not offered).
 * @ring_max_bytes: KVM_CAP_DIRTY_LOG_RING (0: no ring).
 * @ring_rsvd_entries: entries kept free in a ring (64, + 512 with PML).
 * @user_memory2: KVM_CAP_USER_MEMORY2 (REGION2 exists).
 * @guest_memfd: KVM_CAP_GUEST_MEMFD.
 * @max_gfn: the last gfn a slot may map (kvm_mmu_max_gfn()).
 * @user_ptr_max: hva + size must not exceed it (USER_PTR_MAX).
 * @max_npages: KVM_MEM_MAX_NR_PAGES (2^31 - 1).
 * @max_vcpus: KVM_CAP_MAX_VCPUS.
 * @first_gmem_fd: the first fd number handed out for a guest_memfd.
 * @slot_zap_all: a DELETE or MOVE zaps every SPTE of the VM, so every
 *   page of every slot write-faults again (what the dirty ring shows):
 *   x86's KVM_X86_QUIRK_SLOT_ZAP_ALL, on for a default VM.  false: only
 *   the slot's own SPTEs (the quirk disabled, or other architectures).
 */
struct mv_kvm_model_params {
	unsigned nr_slots;
	unsigned nr_as;
	bool readonly_mem;
	uint32_t manual_protect;
	uint32_t ring_max_bytes;
	unsigned ring_rsvd_entries;
	bool user_memory2;
	bool guest_memfd;
	uint64_t max_gfn;
	uint64_t user_ptr_max;
	uint64_t max_npages;
	unsigned max_vcpus;
	int first_gmem_fd;
	bool slot_zap_all;
};

/* KVM_SET_USER_MEMORY_REGION2's fields (v1 uses the first five). */
struct mv_kvm_model_region {
	uint32_t slot; /* as_id << 16 | id */
	uint32_t flags;
	uint64_t gpa;
	uint64_t size;
	uint64_t hva;
	uint64_t gmem_offset;
	uint32_t gmem_fd;
};

/* One slot as the model holds it (a copy; nothing to free). */
struct mv_kvm_model_slot_info {
	uint32_t slot; /* as_id << 16 | id */
	uint32_t flags;
	uint64_t gpa, size, hva;
	int gmem_fd;	      /* -1 without GUEST_MEMFD or once closed */
	uint64_t gmem_offset; /* bytes */
};

/* struct kvm_dirty_gfn's layout, so a ring can be handed out as is. */
struct mv_kvm_model_dirty_gfn {
	uint32_t flags;
	uint32_t slot;	 /* as_id << 16 | id */
	uint64_t offset; /* gfn - base_gfn */
};

/* What a guest store did. */
enum mv_kvm_model_exit {
	MV_KVM_MODEL_EXIT_NONE, /* the store landed in a writable slot */
	MV_KVM_MODEL_EXIT_MMIO, /* hole, INVALID window or read-only slot */
	MV_KVM_MODEL_EXIT_RING_FULL, /* not done: reset the ring and retry */
};

/* Points inside an update where mv_kvm_model_set_hook()'s hook runs. */
enum mv_kvm_model_stage {
	/* a set was published with the in-progress generation */
	MV_KVM_MODEL_STAGE_SWAP,
	/* the INVALID copy of a slot being deleted/moved is active */
	MV_KVM_MODEL_STAGE_INVALID,
};

/* Counters (lookups through the VM-wide or a vCPU's cache). */
struct mv_kvm_model_stats {
	uint64_t lookups, cache_hits, tree_searches;
	uint64_t swaps, updates;
};

struct mv_kvm_model;

/* ---- life cycle -------------------------------------------------------- */

/* This host's values (kvm-memslots.md "The KVM on these machines"). */
void mv_kvm_model_default_params(struct mv_kvm_model_params *p);

/**
 * mv_kvm_model_new() - a fresh VM: no slots, no capabilities enabled, no
 * vCPUs, no guest_memfd files.
 * @p: the limits; copied.
 * Return: 0, -EINVAL (@p->nr_slots 0 or above 32767, @p->nr_as 0 or above
 * 2), or -ENOMEM.  The caller owns *@out (mv_kvm_model_free()).
 */
int mv_kvm_model_new(const struct mv_kvm_model_params *p,
		     struct mv_kvm_model **out);
/* Frees @m and everything it holds (NULL is fine). */
void mv_kvm_model_free(struct mv_kvm_model *m);
const struct mv_kvm_model_params *
mv_kvm_model_params(const struct mv_kvm_model *m);

/* ---- the VM ioctls ----------------------------------------------------- */

/**
 * mv_kvm_model_set_region() - KVM_SET_USER_MEMORY_REGION (@v2 false) or
 * KVM_SET_USER_MEMORY_REGION2 (@v2 true), with the checks of §1.2 in the
 * kernel's order; the first failing one wins.
 * Return: 0, -EINVAL (also a gmem binding overlap), -EEXIST (GPA
 * overlap), -EBADF (guest_memfd is not an fd), -ENOMEM (injected),
 * -ENOTTY (REGION2 without @user_memory2), or -EBUSY when called from the
 * update hook.
 */
int mv_kvm_model_set_region(struct mv_kvm_model *m,
			    const struct mv_kvm_model_region *r, bool v2);

/**
 * mv_kvm_model_gmem_create() - KVM_CREATE_GUEST_MEMFD: a guest_memfd file
 * of @size bytes owned by the model; *@fd is its number (never reused).
 * Return: 0, -EINVAL (@size 0 or not page-aligned, @flags not 0), -ENOTTY
 * (no @guest_memfd), -ENOMEM.
 */
int mv_kvm_model_gmem_create(struct mv_kvm_model *m, uint64_t size,
			     uint64_t flags, int *fd);
/*
 * Close a guest_memfd: its bindings go (the slots stay, unbacked), as the
 * kernel's kvm_gmem_release().  Return: 0 or -EBADF.
 */
int mv_kvm_model_gmem_close(struct mv_kvm_model *m, int fd);

/**
 * mv_kvm_model_enable_cap() - KVM_ENABLE_CAP on the VM for
 * MANUAL_DIRTY_LOG_PROTECT2 (@arg a subset of ENABLE|INITIALLY_SET,
 * INITIALLY_SET only with ENABLE, @flags 0) or DIRTY_LOG_RING(_ACQ_REL)
 * (@arg ring bytes per vCPU, truncated to 32 bits as the kernel's u32
 * parameter does: a power of 2, >= 4096 and >= rsvd * 16, <=
 * @ring_max_bytes, once, before any vCPU).
 * Return: 0, -EINVAL, -E2BIG (ring too big), -EBUSY (from the hook).
 */
int mv_kvm_model_enable_cap(struct mv_kvm_model *m, uint32_t cap,
			    uint32_t flags, uint64_t arg);

/**
 * mv_kvm_model_create_vcpu() - KVM_CREATE_VCPU; allocates the vCPU's
 * dirty ring when the ring is on.  *@index gets its number (0, 1, ...).
 * Return: 0, -EINVAL (@max_vcpus reached) or -ENOMEM.
 */
int mv_kvm_model_create_vcpu(struct mv_kvm_model *m, unsigned *index);
unsigned mv_kvm_model_nr_vcpus(const struct mv_kvm_model *m);

/**
 * mv_kvm_model_get_dirty_log() - KVM_GET_DIRTY_LOG: copies the slot's
 * ALIGN(npages, 64) bits (little-endian 64-bit words) into @bitmap; in
 * classic mode it also clears them (and re-protects), with manual protect
 * it only copies.
 * @words: room in @bitmap; fewer than needed gives -EFAULT.
 * Return: 0, -ENXIO (ring on), -EINVAL (bad as_id/id), -ENOENT (no slot or
 * LOG off), -EFAULT.
 */
int mv_kvm_model_get_dirty_log(struct mv_kvm_model *m, uint32_t slot,
			       uint64_t *bitmap, size_t words);

/**
 * mv_kvm_model_clear_dirty_log() - KVM_CLEAR_DIRTY_LOG: clears (and
 * re-protects) page first+i for every bit i set in @bitmap, i < @num.
 * Works with manual protect off too.  Bits past the slot are ignored.
 * @bitmap: ALIGN(@num, 64) bits (may be NULL when @num is 0).
 * Return: 0, -ENXIO (ring on), -EINVAL (bad ids, @first % 64, @first >
 * npages, @num > npages - @first, @num % 64 short of the end), -ENOENT.
 */
int mv_kvm_model_clear_dirty_log(struct mv_kvm_model *m, uint32_t slot,
				 uint64_t first, uint32_t num,
				 const uint64_t *bitmap);

/**
 * mv_kvm_model_reset_rings() - KVM_RESET_DIRTY_RINGS: for every vCPU,
 * from its reset index while the entry is RESET (harvested): clear the
 * entry and re-protect its page, in whatever slot now has that id, LOG or
 * not.  Entries of one slot within 64 pages of each other are protected
 * as one mask, all or none: none when its highest page is past the slot's
 * end.  Stops at the first entry not harvested.
 * Return: the number of entries reset, or -EINVAL without a ring.
 */
int mv_kvm_model_reset_rings(struct mv_kvm_model *m);

/* ---- the guest and userspace ------------------------------------------- */

/**
 * mv_kvm_model_guest_write() - a store by vCPU @vcpu (or by KVM itself:
 * MV_KVM_MODEL_NO_VCPU) to the page of @gpa in address space 0.  A store
 * into a writable slot lands and is logged when the slot has LOG: a bit in
 * the bitmap, or with the ring a DIRTY entry on the vCPU's ring for the
 * first store to that page since it was last protected (a RESET of its
 * entry, LOG turned on without INITIALLY_SET, any DELETE or MOVE with
 * @slot_zap_all; stores to a slot without LOG leave pages writable too).
 * When that entry
 * makes the ring soft-full (used >= size - rsvd) the vCPU exits with
 * MV_KVM_MODEL_EXIT_RING_FULL instead of completing the store, and keeps
 * exiting so until a reset; the retried store, its page re-protected by
 * the reset, is logged again.  Host writes through the hva are not guest
 * writes: don't feed them.
 * Return: 0 with *@exit set, or -EINVAL (no such vCPU; ring on and no
 * vCPU), -ENOMEM.
 */
int mv_kvm_model_guest_write(struct mv_kvm_model *m, unsigned vcpu,
			     uint64_t gpa, enum mv_kvm_model_exit *exit);

/**
 * mv_kvm_model_ring_harvest() - collect vCPU @vcpu's DIRTY entries in
 * order as userspace does, marking each RESET, up to @max of them into
 * @out (may be NULL when @max is 0).  The model keeps the harvest index.
 * Return: the number collected, or -EINVAL (no ring or no such vCPU).
 */
int mv_kvm_model_ring_harvest(struct mv_kvm_model *m, unsigned vcpu,
			      struct mv_kvm_model_dirty_gfn *out, size_t max);

/*
 * The vCPU's ring itself (what mmap of the vCPU fd shows), @*nr entries;
 * borrowed, valid until mv_kvm_model_free().  A consumer may set RESET
 * flags in it directly.  NULL without a ring.
 */
struct mv_kvm_model_dirty_gfn *mv_kvm_model_ring(struct mv_kvm_model *m,
						 unsigned vcpu, uint32_t *nr);
/* Entries pushed and not yet reset, or -EINVAL. */
int mv_kvm_model_ring_used(const struct mv_kvm_model *m, unsigned vcpu);

/* ---- lookups ------------------------------------------------------------ */

/**
 * mv_kvm_model_lookup() - the slot holding @gpa in @as_id, through the
 * set's last-used cache, then its gfn tree (updating the cache).
 * Return: 0 with *@out filled, -ENOENT for a hole (never a neighbour; an
 * INVALID slot counts as a hole), -EINVAL (bad @as_id).
 */
int mv_kvm_model_lookup(struct mv_kvm_model *m, unsigned as_id, uint64_t gpa,
			struct mv_kvm_model_slot_info *out);
/*
 * The same through vCPU @vcpu's own cache, which is dropped when the
 * generation changes and never touches the VM-wide one (address space 0).
 */
int mv_kvm_model_vcpu_lookup(struct mv_kvm_model *m, unsigned vcpu,
			     uint64_t gpa, struct mv_kvm_model_slot_info *out);

/* Called by mv_kvm_model_hva_for_each(); a non-zero return stops. */
typedef int (*mv_kvm_model_slot_fn)(const struct mv_kvm_model_slot_info *s,
				    void *opaque);
/**
 * mv_kvm_model_hva_for_each() - every slot of @as_id whose hva range meets
 * [@first, @last], in hva order, through the interval tree (O(log n + k)).
 * Return: 0, what @fn returned to stop, or -EINVAL.
 */
int mv_kvm_model_hva_for_each(struct mv_kvm_model *m, unsigned as_id,
			      uint64_t first, uint64_t last,
			      mv_kvm_model_slot_fn fn, void *opaque);

/**
 * mv_kvm_model_slots() - the slot table in (as_id, id) order: up to @max
 * slots into @out.  Return: how many slots there are in all.
 */
size_t mv_kvm_model_slots(const struct mv_kvm_model *m,
			  struct mv_kvm_model_slot_info *out, size_t max);
/* The slot with id @slot (as_id << 16 | id): 0 or -ENOENT/-EINVAL. */
int mv_kvm_model_slot(const struct mv_kvm_model *m, uint32_t slot,
		      struct mv_kvm_model_slot_info *out);
/* The active set's generation of @as_id (0 for a bad one). */
uint64_t mv_kvm_model_generation(const struct mv_kvm_model *m, unsigned as_id);
/* The VM's nr_memslot_pages: the sum of every slot's pages. */
uint64_t mv_kvm_model_nr_pages(const struct mv_kvm_model *m);
void mv_kvm_model_get_stats(const struct mv_kvm_model *m,
			    struct mv_kvm_model_stats *out);

/* ---- testing ------------------------------------------------------------- */

/*
 * Make the @nth allocation from now fail with -ENOMEM (1: the next; 0:
 * off).  Every allocation the kernel makes in these paths is one (slot,
 * INVALID copy, dirty bitmap, rmap metadata, ring, gmem file).
 */
void mv_kvm_model_fail_alloc(struct mv_kvm_model *m, unsigned long nth);
/* Allocations attempted so far (for walking every failure point). */
unsigned long mv_kvm_model_nr_allocs(const struct mv_kvm_model *m);

typedef void (*mv_kvm_model_hook_fn)(struct mv_kvm_model *m,
				     enum mv_kvm_model_stage stage,
				     unsigned as_id, void *opaque);
/*
 * Call @fn at each stage of an update (NULL: none).  The hook sees the
 * model mid-update, as a vCPU would: it may look up, read the generation
 * and make guest writes; updates and enable_cap give -EBUSY there.
 */
void mv_kvm_model_set_hook(struct mv_kvm_model *m, mv_kvm_model_hook_fn fn,
			   void *opaque);

/**
 * mv_kvm_model_check() - verify every invariant of the header comment.
 * @why: if not NULL, gets a static description of the first violation.
 * Return: 0, or -EUCLEAN when an invariant does not hold.
 */
int mv_kvm_model_check(const struct mv_kvm_model *m, const char **why);

#endif /* MEMVIRT_KVM_MODEL_H */
