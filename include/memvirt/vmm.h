/* SPDX-License-Identifier: MIT */
/*
 * A tiny VMM over the KVM accelerator: a machine's "memory" address space
 * mapped into a VM, vCPU threads whose exits go through the machine's
 * address spaces, guests loaded from ELF64 or raw images and entered
 * directly in 64-bit long mode at CPL3 (guest/abi.h is the contract).
 */
#ifndef MEMVIRT_VMM_H
#define MEMVIRT_VMM_H

#include <stdio.h>

#include "memvirt/kvm.h"

struct mv_vm;

/*
 * struct mv_vm_opts - all-zero: one vCPU, the host's KVM, console to
 * nothing (captured only).
 * @console: where guest console bytes go as well (borrowed; NULL: none).
 * @map_end: identity-map [0, @map_end) (0: up to the end of RAM, and at
 *	least 4 GiB so the devices below 4 GiB are reachable).
 * @pages_4k: map with 4 KiB pages instead of 2 MiB ones.
 * @exit_port_continues: a write to MV_GUEST_PORT_EXIT does not end the
 *	run (the guest goes on, e.g. to its HLT).
 */
struct mv_vm_opts {
	unsigned nr_vcpus;
	struct mv_kvm_opts kvm;
	FILE *console;
	uint64_t map_end;
	bool pages_4k;
	bool exit_port_continues;
};

enum mv_vm_end {
	MV_VM_END_EXIT,	   /* the guest wrote MV_GUEST_PORT_EXIT */
	MV_VM_END_HLT,	   /* a vCPU halted (int $0x80 at CPL3) */
	MV_VM_END_FAULT,   /* a guest exception reached the CPL0 stubs */
	MV_VM_END_STOPPED, /* mv_vm_stop() */
	MV_VM_END_ERROR,   /* shutdown, internal error, failed entry, ... */
};

/*
 * struct mv_vm_result - how a run ended, decided by the first vCPU that
 * stopped: @status is the value written to the exit port, @vcpu the vCPU,
 * @msg a one-line explanation for users.
 */
struct mv_vm_result {
	enum mv_vm_end end;
	uint32_t status;
	unsigned vcpu;
	int error; /* negative errno when a KVM_RUN failed */
	char msg[256];
};

/**
 * mv_vm_new() - a VM for @m: KVM address space 0 = @m's "memory", port
 * I/O through "I/O" (if present), a console device at port 0x3f8 added
 * to the io root with priority 100, @o->nr_vcpus vCPUs.  @m is borrowed
 * and must outlive the VM.  The caller owns *@out (mv_vm_free()).
 * Return: 0, -ENOENT (no "memory" address space), or an error of
 * mv_kvm_new()/mv_vcpu_new().
 */
int mv_vm_new(struct mv_machine *m, const struct mv_vm_opts *o,
	      struct mv_vm **out);
void mv_vm_free(struct mv_vm *vm);
struct mv_kvm *mv_vm_kvm(const struct mv_vm *vm);
struct mv_vcpu *mv_vm_vcpu(const struct mv_vm *vm, unsigned i);
struct mv_machine *mv_vm_machine(const struct mv_vm *vm);
struct mv_as *mv_vm_memory(const struct mv_vm *vm);

enum mv_image_kind {
	MV_GUEST_IMAGE_AUTO, /* ELF64 if the magic says so, else raw */
	MV_GUEST_IMAGE_RAW,  /* loaded and entered at 1 MiB */
	MV_GUEST_IMAGE_ELF,
};

/*
 * struct mv_guest_info and the guest's entry: mv_vm_load() copies the
 * image into guest RAM; mv_vm_boot() writes page tables, the boot info
 * block @info (copied; magic and the RAM fields are filled in) and sets
 * every vCPU's registers (vCPU i gets %rsi = i and its own stack).
 */
struct mv_guest_info;
/* Read a guest image file (at most 1 GiB); the caller frees *@buf. */
int mv_vm_read_image(const char *path, void **buf, size_t *len,
		     struct mv_error *err);
int mv_vm_load(struct mv_vm *vm, const void *image, size_t len,
	       enum mv_image_kind kind, struct mv_error *err);
int mv_vm_boot(struct mv_vm *vm, const struct mv_guest_info *info,
	       struct mv_error *err);
/* Where mv_vm_boot() put the boot info block (its GPA). */
mv_gpa_t mv_vm_info_gpa(const struct mv_vm *vm);
/* Free guest RAM below 4 GiB that mv_vm_boot() leaves alone. */
void mv_vm_scratch(const struct mv_vm *vm, mv_gpa_t *gpa, uint64_t *size);

/**
 * mv_vm_run() - run the vCPUs until one of them stops (exit port, fault,
 * error or mv_vm_stop()) or all of them halted; the others are then
 * kicked and joined.  vCPU 0 runs on the calling thread, each other vCPU
 * on a thread of its own, all with the caller's signal mask (the kick
 * signal, SIGUSR1, must not be blocked).  Return: 0 with @res filled, or
 * -errno if threads could not be started.  Context: not from a vCPU
 * thread.
 */
int mv_vm_run(struct mv_vm *vm, struct mv_vm_result *res);
/*
 * Make mv_vm_run() return (MV_VM_END_STOPPED).  Context: any thread, not
 * a signal handler (see mv_vcpu_kick()).
 */
void mv_vm_stop(struct mv_vm *vm);

/*
 * The console bytes the guest wrote so far (borrowed; NUL-terminated;
 * the first 64 KiB are kept).
 */
const char *mv_vm_console(const struct mv_vm *vm, size_t *len);

/*
 * Explain a guest exception that reached the CPL0 stubs (vector, rip,
 * error code, cr2) into @msg; used for MV_VM_END_FAULT.
 */
int mv_vm_describe_fault(struct mv_vm *vm, unsigned vcpu, uint32_t vector,
			 char *msg, size_t len);

/*
 * struct mv_vm_translation - GVA -> GPA -> HVA -> HPA on a stopped vCPU.
 * @mapped, @gpa...: the software walk of the guest's tables (@walk_why
 *	says why not mapped); @table_gpa/@entry per level, PML4 first.
 * @kvm_*: KVM_TRANSLATE's answer for the same GVA (@kvm_ret its error).
 * @has_slot, @slot, @hva: the KVM memslot holding @gpa (@hva_why if
 *	none); @core_agrees: the memory core maps @gpa to the same HVA.
 * @has_hpa, @hpa: from /proc/self/pagemap, or @hpa_why.
 */
struct mv_vm_translation {
	mv_gva_t gva;
	uint64_t cr3;
	bool mapped;
	mv_gpa_t gpa;
	uint64_t page_size;
	bool writable, user, nx;
	mv_gpa_t table_gpa[4];
	uint64_t entry[4];
	char walk_why[128];
	int kvm_ret;
	bool kvm_valid, kvm_writeable, kvm_user;
	mv_gpa_t kvm_gpa;
	bool has_slot, core_agrees;
	unsigned slot;
	struct mv_region *slot_mr;
	void *hva;
	char hva_why[128];
	bool has_hpa;
	uint64_t hpa;
	char hpa_why[128];
};

/**
 * mv_vm_translate() - translate @gva for vCPU @vcpu, which must not be
 * running.  Return: 0 with @t filled (also when @gva is not mapped: see
 * @t->mapped), or a negative errno of the vCPU ioctls.
 */
int mv_vm_translate(struct mv_vm *vm, unsigned vcpu, mv_gva_t gva,
		    struct mv_vm_translation *t);

#endif /* MEMVIRT_VMM_H */
