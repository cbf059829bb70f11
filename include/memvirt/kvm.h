/* SPDX-License-Identifier: MIT */
/*
 * The KVM accelerator: one ioctl seam (real /dev/kvm or a fake kernel),
 * a memslot listener that turns flat views into KVM memslots as QEMU's
 * kvm-all.c does (reference qemu-memory.md §4.1, kvm-memslots.md §1),
 * dirty logging in bitmap, manual-protect and ring modes, and vCPUs whose
 * MMIO and port-I/O exits are dispatched through the address spaces.
 */
#ifndef MEMVIRT_KVM_H
#define MEMVIRT_KVM_H

#include <stdio.h>
#include <sys/types.h>

#include <linux/kvm.h>

#include "memvirt/memory.h"

/* ---- the ioctl seam ------------------------------------------------- */

struct mv_kvm_sys;

/*
 * struct mv_kvm_sys_ops - every system call the KVM layer makes.  Each
 * returns what the system call returns on success (an fd, a count, 0) and
 * a negative errno on failure; @mmap stores the mapping in *@out.
 */
struct mv_kvm_sys_ops {
	int (*open)(struct mv_kvm_sys *s, const char *path);
	int (*close)(struct mv_kvm_sys *s, int fd);
	long (*ioctl)(struct mv_kvm_sys *s, int fd, unsigned long req,
		      void *arg);
	int (*mmap)(struct mv_kvm_sys *s, int fd, size_t len, int prot,
		    off_t off, void **out);
	int (*munmap)(struct mv_kvm_sys *s, void *addr, size_t len);
};

/*
 * struct mv_kvm_sys - a kernel: @ops plus whatever state it keeps.
 * @fail_at/@fail_errno: failure injection for tests; the @fail_at-th
 * ioctl from now (1 = the next one) fails with -@fail_errno instead of
 * reaching the kernel (0 = off).  @nr_ioctls counts every ioctl.
 */
struct mv_kvm_sys {
	const struct mv_kvm_sys_ops *ops;
	void *opaque;
	unsigned long nr_ioctls;
	unsigned long fail_at;
	int fail_errno;
	unsigned long fail_req; /* only fail this request (0: any) */
};

/* The host kernel (plain system calls); the caller owns the copy. */
void mv_kvm_sys_init_host(struct mv_kvm_sys *s);
/* The seam's entry points: counting, failure injection, then @s->ops. */
long mv_kvm_ioctl(struct mv_kvm_sys *s, int fd, unsigned long req, void *arg);
int mv_kvm_open_dev(struct mv_kvm_sys *s, const char *path);
int mv_kvm_close_fd(struct mv_kvm_sys *s, int fd);
int mv_kvm_mmap(struct mv_kvm_sys *s, int fd, size_t len, int prot, off_t off,
		void **out);
int mv_kvm_munmap(struct mv_kvm_sys *s, void *addr, size_t len);

/*
 * The fake kernel, backed by the kernel model (include/memvirt/kvm_model.h,
 * src/kvm_model/sys_model.c): /dev/kvm, one model VM per VM fd, the memslot
 * ioctls (REGION and REGION2) with the kernel's validation order and errno
 * (reference kvm-memslots.md §1), capabilities, GET/CLEAR_DIRTY_LOG over
 * bitmaps fed by mv_kvm_sys_fake_guest_write().  No vCPUs can run.  The
 * caller owns *@out (mv_kvm_sys_fake_free()).
 */
int mv_kvm_sys_fake_new(struct mv_kvm_sys **out);
void mv_kvm_sys_fake_free(struct mv_kvm_sys *s);
/* A guest store to @gpa in the fake VM @vm_fd. */
int mv_kvm_sys_fake_guest_write(struct mv_kvm_sys *s, int vm_fd, uint64_t gpa);
/* Set capability @cap's value (e.g. KVM_CAP_READONLY_MEM 0). */
int mv_kvm_sys_fake_set_cap(struct mv_kvm_sys *s, long cap, long value);

/* ---- the VM --------------------------------------------------------- */

enum mv_kvm_dirty_mode {
	MV_KVM_DIRTY_AUTO,   /* manual protect if offered, else bitmap */
	MV_KVM_DIRTY_BITMAP, /* classic KVM_GET_DIRTY_LOG */
	MV_KVM_DIRTY_MANUAL, /* KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG */
	MV_KVM_DIRTY_RING,   /* per-vCPU dirty rings */
};

/*
 * struct mv_kvm_opts - all-zero is the host's /dev/kvm, automatic dirty
 * mode, 4096-entry rings, kernel slot-size limit.
 * @sys: the kernel; borrowed, must outlive the VM (NULL: the host).
 * @dirty_ring_entries: ring size in entries (power of two) for RING mode.
 * @max_slot_size: split ranges above this many bytes (0: the kernel's
 *	KVM_MEM_MAX_NR_PAGES pages); a multiple of the host page size.
 * @no_readonly: behave as if the kernel lacked KVM_CAP_READONLY_MEM.
 */
struct mv_kvm_opts {
	struct mv_kvm_sys *sys;
	const char *dev;
	enum mv_kvm_dirty_mode dirty_mode;
	uint32_t dirty_ring_entries;
	uint64_t max_slot_size;
	bool no_readonly;
};

struct mv_kvm;

/**
 * mv_kvm_new() - open the kernel's KVM device and create a VM.
 * Return: 0, -ENOENT/-EACCES (no /dev/kvm), -EPROTO (API version is not
 * 12), -ENOTSUP (a requested dirty mode is not offered), or the errno of
 * a failing ioctl.  The caller owns *@out (mv_kvm_free()).
 */
int mv_kvm_new(const struct mv_kvm_opts *opts, struct mv_kvm **out);
/* Detaches every address space, frees vCPUs' rings, closes the VM. */
void mv_kvm_free(struct mv_kvm *k);
/* KVM_CHECK_EXTENSION on the VM fd: the value, or a negative errno. */
long mv_kvm_check_extension(struct mv_kvm *k, long cap);
int mv_kvm_vm_fd(const struct mv_kvm *k);
struct mv_kvm_sys *mv_kvm_sys(const struct mv_kvm *k);
enum mv_kvm_dirty_mode mv_kvm_dirty_mode(const struct mv_kvm *k);
/* The kernel's KVM_CAP_NR_MEMSLOTS (32 when it reports 0, as QEMU). */
unsigned mv_kvm_nr_slots(const struct mv_kvm *k);

/* ---- memslots -------------------------------------------------------- */

/**
 * mv_kvm_attach() - keep @as mapped into the VM's memslots (address
 * space id @as_id: 0 memory, 1 SMM).  Registers a memslot listener
 * (priority 10, as QEMU's), so every range present now is added.  Changes
 * are queued by region_add/region_del and applied at commit: deletions
 * (after fetching the dirty log of a logging slot), then creations.
 * Between the two a vCPU touching the range finds no slot and takes an
 * MMIO exit, which the run loop dispatches through @as, so the access
 * still reaches the right place.  @as is borrowed and must stay attached
 * until mv_kvm_detach() or mv_kvm_free().  Return: 0, -EBUSY (an address
 * space is attached with @as_id), -EINVAL (@as_id beyond what the kernel
 * offers), or the error of the first creation.
 */
int mv_kvm_attach(struct mv_kvm *k, struct mv_as *as, unsigned as_id);
/* Remove @as's slots and stop listening. */
void mv_kvm_detach(struct mv_kvm *k, struct mv_as *as);
/* Where port I/O exits go (borrowed; NULL: ports read all-ones). */
void mv_kvm_set_io_as(struct mv_kvm *k, struct mv_as *io);

/*
 * struct mv_kvm_slot_info - one KVM memslot as registered in the kernel.
 * @mr is borrowed from the machine.
 */
struct mv_kvm_slot_info {
	unsigned as_id;
	unsigned id;
	uint32_t flags; /* KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY */
	mv_gpa_t gpa;
	uint64_t size;
	void *hva;
	struct mv_region *mr;
	uint64_t offset_within_region;
};

/* Number of slots in @as_id, and the @i-th in GPA order: 0 or -ENOENT. */
size_t mv_kvm_slot_count(const struct mv_kvm *k, unsigned as_id);
int mv_kvm_slot_at(const struct mv_kvm *k, unsigned as_id, size_t i,
		   struct mv_kvm_slot_info *info);
/* The slot holding @gpa (O(log n)): 0 or -ENOENT for a hole. */
int mv_kvm_slot_lookup(const struct mv_kvm *k, unsigned as_id, mv_gpa_t gpa,
		       struct mv_kvm_slot_info *info);
/*
 * kvm_accel_has_memory(): whether a slot of @as starts at @gpa and is
 * exactly @size long (the ` KVM` marker of `info mtree -f`).
 */
bool mv_kvm_has_memory(const struct mv_kvm *k, const struct mv_as *as,
		       mv_gpa_t gpa, uint64_t size);
/* The slot table as `memvirt slots` prints it. */
int mv_kvm_print_slots(const struct mv_kvm *k, FILE *out);
/*
 * Check the listener's slot table: no overlap, every slot inside a RAM
 * range of the current view with the flags that range asks for, lookup
 * structures consistent.  0, or -EUCLEAN with a reason in @why.
 */
int mv_kvm_slots_check(const struct mv_kvm *k, char *why, size_t len);

/* struct mv_kvm_stats - what the accelerator did, for tests and benches. */
struct mv_kvm_stats {
	unsigned long slot_creates, slot_deletes, slot_flag_changes;
	unsigned long dirty_fetches, ring_entries, ring_full_exits;
	unsigned long commit_errors;
};
void mv_kvm_get_stats(struct mv_kvm *k, struct mv_kvm_stats *st);

/* ---- vCPUs ----------------------------------------------------------- */

struct mv_vcpu;

/**
 * mv_vcpu_new() - KVM_CREATE_VCPU @index, map its kvm_run (and dirty
 * ring in RING mode).  The VM owns the vCPU (freed by mv_kvm_free()) but
 * it can be freed earlier with mv_vcpu_free().  Return: 0, -EEXIST, or
 * the errno of the ioctl/mmap.
 */
int mv_vcpu_new(struct mv_kvm *k, unsigned index, struct mv_vcpu **out);
void mv_vcpu_free(struct mv_vcpu *v);
int mv_vcpu_fd(const struct mv_vcpu *v);
unsigned mv_vcpu_index(const struct mv_vcpu *v);
int mv_vcpu_get_regs(struct mv_vcpu *v, struct kvm_regs *r);
int mv_vcpu_set_regs(struct mv_vcpu *v, const struct kvm_regs *r);
int mv_vcpu_get_sregs(struct mv_vcpu *v, struct kvm_sregs *s);
int mv_vcpu_set_sregs(struct mv_vcpu *v, const struct kvm_sregs *s);
/* KVM_SET_MSRS of one MSR: 0 or a negative errno (-EINVAL if refused). */
int mv_vcpu_set_msr(struct mv_vcpu *v, uint32_t index, uint64_t value);
/* KVM_SET_CPUID2 with what KVM_GET_SUPPORTED_CPUID offers. */
int mv_vcpu_set_supported_cpuid(struct mv_vcpu *v);
/* KVM_TRANSLATE of @gva: 0 with @t filled, or a negative errno. */
int mv_vcpu_translate(struct mv_vcpu *v, mv_gva_t gva,
		      struct kvm_translation *t);

enum mv_vcpu_exit_kind {
	MV_VCPU_EXIT_HLT,
	MV_VCPU_EXIT_STOPPED,  /* mv_vcpu_kick() or a signal */
	MV_VCPU_EXIT_SHUTDOWN, /* triple fault */
	MV_VCPU_EXIT_INTERNAL_ERROR,
	MV_VCPU_EXIT_FAIL_ENTRY,
	MV_VCPU_EXIT_GUEST_EXIT, /* exit hook asked to stop */
	MV_VCPU_EXIT_UNEXPECTED, /* an exit reason the loop does not handle */
};

/*
 * struct mv_vcpu_exit - why mv_vcpu_run() returned: @reason is the raw
 * KVM exit reason, @detail the suberror/hardware reason, @rip the guest
 * RIP when it could be read, @msg a one-line explanation for users.
 */
struct mv_vcpu_exit {
	enum mv_vcpu_exit_kind kind;
	uint32_t reason;
	uint64_t detail;
	uint64_t rip;
	char msg[160];
};

/*
 * Called for every port write before it reaches the io address space;
 * returning > 0 stops the run (MV_VCPU_EXIT_GUEST_EXIT), < 0 is an error
 * (the run returns it), 0 carries on.  Context: the vCPU's thread.
 */
typedef int (*mv_vcpu_pio_hook)(void *opaque, struct mv_vcpu *v, uint16_t port,
				const void *data, unsigned size);
void mv_vcpu_set_pio_hook(struct mv_vcpu *v, mv_vcpu_pio_hook fn, void *opaque);

/**
 * mv_vcpu_run() - KVM_RUN until an exit the loop does not handle itself.
 * MMIO exits go through the memory address space (as_id 0), port I/O
 * through the io address space, dirty-ring-full exits harvest the rings.
 * Return: 0 with @ex filled, or a negative errno of KVM_RUN.
 * Context: one thread per vCPU.
 */
int mv_vcpu_run(struct mv_vcpu *v, struct mv_vcpu_exit *ex);
/*
 * mv_vcpu_kick() - make a running or about-to-run mv_vcpu_run() return
 * MV_VCPU_EXIT_STOPPED.  The stop holds until mv_vcpu_clear_stop(); a
 * kick never signals a thread that has left mv_vcpu_run().  Context: any
 * thread, not a signal handler (it takes the vCPU's run lock; a program
 * stopping on a signal takes it with sigwait() in a thread, as memvirt
 * run does).
 */
void mv_vcpu_kick(struct mv_vcpu *v);
/* Undo a kick so mv_vcpu_run() runs the guest again.  Context: no run. */
void mv_vcpu_clear_stop(struct mv_vcpu *v);

/* ---- dirty logging ---------------------------------------------------- */

/*
 * mv_kvm_dirty_harvest() - collect what the kernel logged for every slot
 * with LOG set (GET_DIRTY_LOG, GET + CLEAR, or ring reap + RESET per the
 * mode) into the memory core's bitmaps.  This is the accelerator's
 * log_sync for all ranges at once; mv_region_sync_dirty_bitmap() reaches
 * the same code per range.  Return: 0 or the first ioctl error.
 */
int mv_kvm_dirty_harvest(struct mv_kvm *k);

#endif /* MEMVIRT_KVM_H */
