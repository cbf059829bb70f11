/* SPDX-License-Identifier: MIT */
/*
 * Internals of the KVM accelerator.  Locking: @k->lock protects the slot
 * tables and the dirty rings' harvest state; commit, log_sync, harvests
 * and lookups take it.  vCPU run loops never take it except to harvest a
 * full dirty ring.
 *
 * The pending-change queues and a slot's @dying and @flags_queued marks
 * are the listener's own: only region_add/region_del/log_start/log_stop
 * and commit touch them (mv_kvm_slots_check(), a writer-side checker,
 * reads @nr_queue), and the memory core delivers those from one writer
 * at a time, so the queueing callbacks take no lock.  They only read the
 * slot tables, which change only in commit and at detach, both on the
 * writer's side; commit takes the lock against the vCPU threads and
 * lookups that read the tables meanwhile.
 */
#ifndef MV_KVM_INTERNAL_H
#define MV_KVM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <bsd/sys/tree.h>

#include "memvirt/kvm.h"

#define MV_KVM_MAX_AS 2
#define MV_KVM_MAX_VCPUS 64

/*
 * struct mv_kvm_slot - one registered memslot.  Invariant: present in its
 * space's @tree (keyed by @gpa; slots never overlap) and at @by_id[@id]
 * exactly while the kernel has it.  Holds a reference on @mr.  @bitmap
 * (LOG slots only) is the GET_DIRTY_LOG buffer, ALIGN(npages, 64) bits.
 */
struct mv_kvm_slot {
	RB_ENTRY(mv_kvm_slot) node;
	unsigned id;
	uint32_t flags;
	mv_gpa_t gpa;
	uint64_t size;
	void *hva;
	struct mv_region *mr;
	uint64_t offset_within_region;
	unsigned long *bitmap;
	bool dying;	   /* a deletion is queued */
	bool flags_queued; /* a flag change is queued */
	bool ring_touched; /* @bitmap got ring entries */
};

RB_HEAD(mv_kvm_slot_tree, mv_kvm_slot);
int mv_kvm_slot_cmp(const struct mv_kvm_slot *a, const struct mv_kvm_slot *b);
RB_PROTOTYPE(mv_kvm_slot_tree, mv_kvm_slot, node, mv_kvm_slot_cmp)

enum mv_kvm_change_kind {
	MV_KVM_DEL,
	MV_KVM_FLAGS,
	MV_KVM_ADD
};

/* A queued change: DEL/FLAGS point at a slot, ADD carries the new one. */
struct mv_kvm_change {
	enum mv_kvm_change_kind kind;
	struct mv_kvm_slot *slot; /* DEL, FLAGS */
	uint32_t new_flags;	  /* FLAGS */
	struct mv_kvm_slot add;	  /* ADD (not yet in the tree) */
};

/*
 * struct mv_kvm_space - QEMU's KVMMemoryListener: the slots of one KVM
 * address space.  @by_id has @k->nr_slots entries; @id_used is its bitmap
 * of taken ids (pending adds included), searched from @id_hint, the
 * lowest id that may be free, so ids are reused lowest first as QEMU's
 * kvm_get_free_slot() does.  @by_gpa indexes the slots by exact start
 * (open addressing, linear probing, @gpa_mask + 1 entries, at most half
 * full), so that a region_del or log change finds its slot in O(1)
 * without walking the tree.
 */
struct mv_kvm_space {
	struct mv_listener listener;
	struct mv_kvm *k;
	struct mv_as *as;
	unsigned as_id;
	struct mv_kvm_slot_tree tree;
	size_t nr;
	struct mv_kvm_slot **by_id;
	uint64_t *id_used;
	unsigned id_hint;
	unsigned ids_taken;
	struct mv_kvm_slot **by_gpa;
	size_t gpa_mask;
	struct mv_kvm_change *queue;
	size_t nr_queue, queue_cap;
	size_t nr_queued_adds, nr_queued_dels;
	/* the last slot deleted, kept for the next creation (poisoned
	 * under ASan while kept) */
	struct mv_kvm_slot *spare;
};

struct mv_kvm {
	struct mv_kvm_sys *sys;
	struct mv_kvm_sys own_sys; /* the host kernel unless opts->sys */
	int kvm_fd, vm_fd;
	long run_size;
	unsigned nr_slots;
	uint64_t max_slot_size;
	uint64_t page_size;
	bool readonly_mem;
	enum mv_kvm_dirty_mode dirty_mode;
	uint32_t ring_entries;
	bool manual_initially_set;
	bool closing; /* mv_kvm_free(): slots go with the VM fd */
	pthread_mutex_t lock;
	struct mv_kvm_space *space[MV_KVM_MAX_AS];
	struct mv_as *io;
	struct mv_vcpu *vcpu[MV_KVM_MAX_VCPUS];
	struct mv_kvm_stats stats;
};

struct mv_vcpu {
	struct mv_kvm *k;
	unsigned index;
	int fd;
	struct kvm_run *run;
	struct kvm_dirty_gfn *ring;
	uint32_t ring_next; /* the next entry to harvest */
	mv_vcpu_pio_hook pio_hook;
	void *pio_opaque;
	/*
	 * stop, thread and has_thread change only under run_lock, so a kick
	 * never signals a thread that has left mv_vcpu_run() and a stop is
	 * never lost to a concurrent mv_vcpu_clear_stop().  The run loop
	 * reads stop without the lock; kvm_run.immediate_exit (set with it)
	 * covers the window between that read and KVM_RUN.
	 */
	pthread_mutex_t run_lock;
	atomic_bool stop;
	pthread_t thread;
	bool has_thread;
};

/* slots.c */
int mv_kvm_space_new(struct mv_kvm *k, struct mv_as *as, unsigned as_id,
		     struct mv_kvm_space **out);
void mv_kvm_space_free(struct mv_kvm_space *sp);
struct mv_kvm_slot *mv_kvm_space_find(struct mv_kvm_space *sp, mv_gpa_t gpa);
bool mv_kvm_section_flags(const struct mv_kvm *k, const struct mv_section *sec,
			  uint32_t *flags);
bool mv_kvm_section_align(const struct mv_kvm *k, const struct mv_section *sec,
			  struct mv_kvm_slot *t);
struct mv_kvm_slot mv_kvm_next_chunk(const struct mv_kvm *k,
				     struct mv_kvm_slot *t);

/* dirty_log.c: LOG slots.  Called with k->lock held. */
int mv_kvm_slot_alloc_bitmap(struct mv_kvm *k, struct mv_kvm_slot *s);
int mv_kvm_slot_fetch_dirty(struct mv_kvm *k, struct mv_kvm_space *sp,
			    struct mv_kvm_slot *s);
int mv_kvm_space_sync(struct mv_kvm *k, struct mv_kvm_space *sp, mv_gpa_t first,
		      mv_gpa_t last);
uint64_t mv_kvm_slot_npages(const struct mv_kvm_slot *s);

/* dirty_ring.c.  Called with k->lock held. */
int mv_kvm_rings_harvest(struct mv_kvm *k);
int mv_kvm_ring_enable(struct mv_kvm *k);
int mv_kvm_vcpu_ring_map(struct mv_vcpu *v);

#endif /* MV_KVM_INTERNAL_H */
