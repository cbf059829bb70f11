/* SPDX-License-Identifier: MIT */
/*
 * The 64-bit entry state the VMM sets up for a guest (guest/abi.h): long
 * mode at CPL3 over identity-mapped page tables, with CPL0 exception stubs
 * that report the vector on MV_GUEST_PORT_FAULT; plus the software page
 * walk and the fault description the run loop needs.  Internal to src/vmm.
 */
#ifndef MEMVIRT_VMM_BOOT_H
#define MEMVIRT_VMM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "memvirt/memory.h"
#include "memvirt/types.h"

/*
 * The GDT written by mv_x86_boot_build(): null, then these selectors.
 * vCPU i's TSS descriptor (16 bytes) is at MV_X86_SEL_TSS + 16 * i.
 */
#define MV_X86_SEL_KCODE 0x08 /* 64-bit code, DPL0: the exception stubs */
#define MV_X86_SEL_KDATA 0x10 /* data, DPL0 */
#define MV_X86_SEL_UCODE 0x1b /* 64-bit code, DPL3: the guest (CS) */
#define MV_X86_SEL_UDATA 0x23 /* data, DPL3: SS, DS, ES, FS, GS */
#define MV_X86_SEL_TSS 0x28   /* busy 64-bit TSS of vCPU 0 */

#define MV_X86_BOOT_MAX_VCPUS 256
#define MV_X86_MAX_MAP_END (1ull << 47) /* the lower canonical half */

/* The control registers of the entry state (fixed, see the file header). */
#define MV_X86_BOOT_CR0 0x80050033ull /* PG AM WP NE ET MP PE */
#define MV_X86_BOOT_CR4 0x620ull      /* OSXMMEXCPT OSFXSR PAE */
#define MV_X86_BOOT_EFER 0x500ull     /* LMA LME */
#define MV_X86_BOOT_RFLAGS 0x3002ull  /* IOPL 3, reserved bit 1 */

/*
 * struct mv_x86_boot - what mv_x86_boot_build() sets up.
 * @tables:      4 KiB-aligned GPA of a RAM area for the page tables, GDT,
 *               IDT, TSSs, CPL0 stubs and CPL0 stacks; inside the map.
 * @tables_size: its size, at least mv_x86_boot_tables_size().
 * @map_end:     identity-map [0, map_end), rounded up to 2 MiB; at most
 *               MV_X86_MAX_MAP_END.
 * @pages_4k:    4 KiB leaves instead of 2 MiB ones.
 * @entry:       first guest instruction, below @map_end.
 * @stack_top:   initial %rsp (CPL3), in (0, map_end].
 * @arg:         -> rdi, rsi, rdx, rcx.
 * @vcpu:        the vCPU being set up: selects its TSS and CPL0 stack
 *               (each vCPU must have its own, or two faulting vCPUs would
 *               push their frames onto the same stack).
 * @nr_vcpus:    TSSs and CPL0 stacks laid out; 0 means 1.  Must be the
 *               same for every vCPU of a VM, with @vcpu < @nr_vcpus.
 */
struct mv_x86_boot {
	mv_gpa_t tables;
	uint64_t tables_size;
	uint64_t map_end;
	bool pages_4k;
	mv_gva_t entry;
	mv_gva_t stack_top;
	uint64_t arg[4];
	unsigned vcpu;
	unsigned nr_vcpus;
};

/**
 * mv_x86_boot_tables_size() - bytes of the tables area @b needs, from
 * @map_end, @pages_4k and @nr_vcpus (a multiple of 4 KiB):
 *
 *   4 KiB * (1 PML4 + ceil(map_end / 512 GiB) PDPTs + ceil(map_end / 1 GiB)
 *            PDs + [pages_4k] map_end / 2 MiB PTs
 *            + ceil((GDT + TSSs + 8 KiB I/O bitmap) / 4 KiB), 3 for up to 27
 *            vCPUs, + 1 IDT + 1 stub page + nr_vcpus CPL0 stacks)
 *
 * with map_end rounded up to 2 MiB.  Return: the size, or 0 if @map_end or
 * @nr_vcpus is out of range (mv_x86_boot_build() then returns -EINVAL).
 */
uint64_t mv_x86_boot_tables_size(const struct mv_x86_boot *b);

/**
 * mv_x86_boot_build() - write the tables of @b into guest RAM and fill the
 * registers of vCPU @b->vcpu for the entry state of guest/abi.h.
 * @mem:   the guest's memory address space; the tables area must be
 *         writable RAM.
 * @sregs: in: the vCPU's KVM_GET_SREGS; out: long mode (CR0/CR3/CR4/EFER,
 *         segments, GDT/IDT, TR, LDT), everything else kept.
 * @regs:  out: zeroed, then rip, rsp, rflags, rdi, rsi, rdx, rcx.
 *
 * Each page table is built in a local buffer and written once, so a call
 * costs one write per 4 KiB of tables (32768 for 64 GiB with 4 KiB pages).
 * Every call writes the whole area (the same bytes for every vCPU).
 * Return: 0, -EINVAL (bad @b: alignment, sizes, addresses outside the map,
 * @vcpu >= @nr_vcpus), -ENOSPC (@tables_size too small), -EFAULT (the area
 * is not entirely writable RAM).
 */
int mv_x86_boot_build(struct mv_as *mem, const struct mv_x86_boot *b,
		      struct kvm_sregs *sregs, struct kvm_regs *regs);

/**
 * mv_x86_describe_fault() - after an exit on MV_GUEST_PORT_FAULT, describe
 * the guest exception for a user: name, vector, the faulting rip and CPL,
 * error code (decoded for #PF and selector errors), cr2 for #PF.  The
 * frame is read from the CPL0 stack at @r->rsp (the stubs push nothing)
 * through @s->cr3.
 * @vector: the value the stub wrote.
 * @msg:    receives the text (always terminated when @len > 0).
 * Return: 0 (also when the frame cannot be read: @msg says so), -EINVAL
 * for NULL arguments.
 */
int mv_x86_describe_fault(struct mv_as *mem, uint32_t vector,
			  const struct kvm_regs *r, const struct kvm_sregs *s,
			  char *msg, size_t len);

/*
 * struct mv_x86_walk - result of mv_x86_walk().
 * @gpa:       the translation of the GVA.
 * @page_size: 4 KiB, 2 MiB or 1 GiB.
 * @pte:       the leaf entry; @level its level (1 PTE, 2 PDE, 3 PDPTE).
 * @writable, @user: AND of RW and US over the levels walked; @nx: OR of NX.
 * @table_gpa, @entry: per level walked, [0] PML4 .. [3] PT, the table's
 *             GPA and the entry read (also filled on -EFAULT up to the
 *             failing level); zero where not walked.
 */
struct mv_x86_walk {
	mv_gpa_t gpa;
	uint64_t page_size;
	uint64_t pte;
	int level;
	bool writable, user, nx;
	mv_gpa_t table_gpa[4];
	uint64_t entry[4];
};

/**
 * mv_x86_walk() - translate @gva through the 4-level tables rooted at @cr3
 * (4 KiB, 2 MiB and 1 GiB leaves), reading them through @mem.
 * @why: on error, receives which level failed and why (may be NULL).
 * Return: 0, -EINVAL (non-canonical @gva, NULL @mem or @w), -EFAULT (an
 * entry not present, reserved bits set, or a table not in readable
 * memory).
 */
int mv_x86_walk(struct mv_as *mem, uint64_t cr3, mv_gva_t gva,
		struct mv_x86_walk *w, char *why, size_t len);

#endif /* MEMVIRT_VMM_BOOT_H */
