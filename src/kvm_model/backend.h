/* SPDX-License-Identifier: MIT */
/*
 * The operations of `memvirt kvm-model replay` (docs/kvm-model.md), as
 * one interface with two implementations: the in-process model
 * (backend_model.c) and the real kernel through /dev/kvm
 * (backend_kernel.c).  The replay executor and the differential tests
 * drive both through it and compare results, slot tables and bitmaps.
 *
 * Every operation returns 0 or a negative errno exactly as the kernel's
 * ioctl would (-EINVAL, -EEXIST, ...); operations that return data put it
 * in *@result.
 */
#ifndef MV_KVM_MODEL_BACKEND_H
#define MV_KVM_MODEL_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* KVM_SET_USER_MEMORY_REGION2's argument (uapi 6.8+; our headers are 6.1). */
struct mv_region2 {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t guest_memfd_offset;
	uint32_t guest_memfd;
	uint32_t pad1;
	uint64_t pad2[14];
};

#define MV_KVM_MEM_GUEST_MEMFD (1u << 2)

/* One slot as a backend reports it (for table comparisons). */
struct mv_backend_slot {
	uint32_t slot; /* as_id << 16 | id */
	uint32_t flags;
	uint64_t gpa, size, hva;
};

/*
 * struct mv_backend_limits - host-dependent limits, probed from the
 * kernel at start by the kernel backend and handed to the model so both
 * sides agree (never hard-coded in tests).
 */
struct mv_backend_limits {
	unsigned nr_slots;	    /* KVM_CAP_NR_MEMSLOTS */
	unsigned nr_as;		    /* KVM_CAP_MULTI_ADDRESS_SPACE, >= 1 */
	bool readonly_mem;	    /* KVM_CAP_READONLY_MEM */
	uint32_t manual_protect;    /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
	uint32_t ring_max_bytes;    /* KVM_CAP_DIRTY_LOG_RING (0: none) */
	unsigned ring_rsvd_entries; /* 64 (+ PML's 512 on Intel) */
	bool user_memory2;	    /* KVM_CAP_USER_MEMORY2 */
	bool guest_memfd;	    /* KVM_CAP_GUEST_MEMFD */
	uint64_t max_gfn;	    /* last valid gfn */
	uint64_t user_ptr_max;	    /* hva + size must not exceed it */
	/*
	 * CPUID MAXPHYADDR the vCPU sees (48 here): replay.c refuses a
	 * guest_write at or above 2^guest_phys_bits with -EINVAL on both
	 * sides, since a guest PTE cannot point there.  0: unknown (48).
	 */
	unsigned guest_phys_bits;
	/*
	 * A DELETE or MOVE zaps every SPTE (x86 KVM_X86_QUIRK_SLOT_ZAP_ALL,
	 * on for the default VM type the kernel backend creates).
	 */
	bool slot_zap_all;
};

/*
 * struct mv_backend_runner - the guest memory of the kernel backend's CPL3
 * writer: code, stack, page tables and mailbox.  replay.c creates its slot
 * (@slot, @gpa, @size, @hva, no flags) with set_region on BOTH backends at
 * a VM's first create_vcpu, so slot tables and lookups compare equal, then
 * hands it to ops->set_runner.  The slot is never logged.
 */
struct mv_backend_runner {
	uint32_t slot;
	uint64_t gpa, size;
	void *hva;
};

struct mv_backend;

/*
 * struct mv_backend_ops - one per operation of the replay format.  @hva
 * arguments are absolute host addresses (the executor resolves A/B/abs:).
 */
struct mv_backend_ops {
	int (*vm)(struct mv_backend *b); /* fresh VM: slots, caps, rings gone */
	int (*set_region)(struct mv_backend *b, const struct mv_region2 *r,
			  bool v2);
	/* gmem: "new:SIZE" (create one, @gmem_size) or an fd number */
	int (*gmem_create)(struct mv_backend *b, uint64_t size, int *fd);
	int (*enable_cap)(struct mv_backend *b, uint32_t cap, uint64_t arg);
	int (*create_vcpu)(struct mv_backend *b);
	int (*get_dirty_log)(struct mv_backend *b, uint32_t slot,
			     uint64_t *bitmap, size_t words, uint64_t *result);
	int (*clear_dirty_log)(struct mv_backend *b, uint32_t slot,
			       uint32_t first, uint32_t num,
			       const uint64_t *bitmap);
	/*
	 * guest_write: one attempt of a 1-byte guest store at @gpa by vCPU 0
	 * (docs/kvm-model.md, "guest_write").  Returns:
	 *   0        the store landed in a writable slot (logged as the kernel
	 *            logs it: a bitmap bit, or a ring entry on the first write
	 *            to the page since it was last write-protected);
	 *   -EFAULT  the store exited as MMIO (no slot, a read-only slot);
	 *   -EBUSY   the vCPU exited with KVM_EXIT_DIRTY_RING_FULL before the
	 *            store retired: either the entry this store's write fault
	 *            pushed made the ring soft-full (size - rsvd entries), or
	 *            the ring already was.  The store is pending: the caller
	 *            (replay.c) retries the SAME @gpa before any other store,
	 *            and after reset_rings that retry faults again and logs the
	 *            page a second time (kvm-memslots.md §2.3's duplicate);
	 *   -ESRCH   no vCPU (or no runner); -ENOSPC: the kernel backend's
	 *            runner ran out of fresh GVAs.
	 * replay.c prints the first -EBUSY of a store as `OK result=1`, a
	 * retry that is still refused as EBUSY.
	 */
	int (*guest_write)(struct mv_backend *b, uint64_t gpa);
	int (*reset_rings)(struct mv_backend *b, uint64_t *result);
	int (*lookup)(struct mv_backend *b, uint64_t gpa, uint64_t *result,
		      bool *found);
	/* The slot table in (as_id, id) order; returns the count. */
	size_t (*slots)(struct mv_backend *b, struct mv_backend_slot *out,
			size_t max);
	/* May be NULL (the model needs nothing): see mv_backend_runner. */
	int (*set_runner)(struct mv_backend *b,
			  const struct mv_backend_runner *r);
	void (*free)(struct mv_backend *b);
};

struct mv_backend {
	const struct mv_backend_ops *ops;
	struct mv_backend_limits limits;
	void *priv;
};

/*
 * The model backend's guest_write: 0 when the store landed, -EFAULT for an
 * MMIO exit (hole, INVALID window, read-only slot), -EBUSY for a
 * DIRTY_RING_FULL exit (the store did not complete: reset_rings, then
 * retry it); it writes as vCPU 0 when one exists, else as KVM itself
 * (bitmap modes only; -EINVAL with the ring).  Its reset_rings harvests
 * every DIRTY entry first, as userspace would.
 */

/*
 * The two backends.  The kernel backend probes @limits from /dev/kvm
 * (-ENOENT/-EACCES without it); the model backend takes them, so a
 * differential run gives the model exactly the kernel's limits.  The
 * caller owns *@out (ops->free).
 */
int mv_backend_kernel_new(struct mv_backend **out);
int mv_backend_model_new(const struct mv_backend_limits *limits,
			 struct mv_backend **out);
/* The limits of the kernel these machines run (kvm-memslots.md), for
 * model-only runs without /dev/kvm. */
void mv_backend_default_limits(struct mv_backend_limits *l);

#endif /* MV_KVM_MODEL_BACKEND_H */
