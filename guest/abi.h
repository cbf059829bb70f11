/* SPDX-License-Identifier: MIT */
/*
 * The contract between memvirt's VMM and its guest programs: the ports a
 * guest talks through and the boot-info block it is handed.  Included by
 * both sides (freestanding guest code and the host), so fixed-width types
 * only and no host headers.
 *
 * Entry state (set by src/vmm/boot.c): 64-bit long mode, CPL3, IOPL 3,
 * identity-mapped page tables (GVA == GPA) with U=1 everywhere, interrupts
 * off, %rdi = GPA of struct mv_guest_info, %rsp = top of a stack in RAM.
 * Exceptions go to CPL0 stubs that write the vector to MV_GUEST_PORT_FAULT
 * and halt.  `hlt` at CPL3 raises #GP; the VMM recognises it and lets the
 * stub halt at CPL0: a guest "stopped at HLT" (kvm_pvm raises #UD for
 * `int $0x80` from CPL3, so there is no software-interrupt way down).
 */
#ifndef MEMVIRT_GUEST_ABI_H
#define MEMVIRT_GUEST_ABI_H

#include <stdint.h>

/* Port I/O, all through the VM's io address space unless said otherwise. */
#define MV_GUEST_PORT_CONSOLE 0x3f8 /* 1-byte writes: console text */
#define MV_GUEST_PORT_EXIT \
	0xf4			   /* 1/2/4-byte write: end, status = value
				     * (isa-debug-exit's port; caught by the
				     * run loop before the io space) */
#define MV_GUEST_PORT_FAULT 0xf5   /* CPL0 stub: 4-byte exception vector */
#define MV_GUEST_PORT_REPORT 0x500 /* 4-byte write: MV_GUEST_REPORT() */
#define MV_GUEST_PORT_SYNC 0x504   /* 4-byte write: ask the host for step N */

/* A self-test verdict: check id in bits 7:0, 1 = pass in bit 8. */
#define MV_GUEST_REPORT(id, pass) ((uint32_t)(id) | ((pass) ? 0x100u : 0))

#define MV_GUEST_INFO_MAGIC 0x6f666e6974766d6dull /* "mmvtinfo" */

/* Self-test check ids (memvirt run's built-in guest). */
enum mv_selftest_check {
	MV_CHECK_RAM_LOW = 1,  /* RAM below the 4 GiB split */
	MV_CHECK_RAM_HIGH = 2, /* RAM above 4 GiB */
	MV_CHECK_ROM = 3,      /* a guest write to ROM has no effect */
	MV_CHECK_ROMD = 4,     /* romd read from RAM, write to the ops */
	MV_CHECK_MMIO = 5,     /* 1/2/4/8-byte MMIO accesses */
	MV_CHECK_CONSOLE = 6,  /* port-I/O console output */
	MV_CHECK_ALIAS = 7,    /* one RAM page seen through two GPAs */
	MV_CHECK_HOLE = 8,     /* unassigned GPA: reads 0, writes vanish */
	MV_CHECK_TOGGLE = 9,   /* host toggles a region while we run */
	MV_CHECK_DIRTY = 10,   /* pages the guest wrote are logged dirty */
	MV_CHECK_NR = 11,
};

/* Sync steps (MV_GUEST_PORT_SYNC values). */
#define MV_SYNC_TOGGLE_ARM 1 /* "I am polling toggle_gpa; flip it" */

/*
 * The self-test MMIO device: a read of size S at offset O returns
 * MV_MMIO_PATTERN(O, S) masked to S bytes unless a write of the same size
 * to the same offset came before, then the value written.
 */
#define MV_MMIO_PATTERN(off, size) \
	(0x0123456789abcdefull ^ ((uint64_t)(off) << 8) ^ (uint64_t)(size))

/*
 * struct mv_guest_info - handed to every guest in %rdi.  GPAs are also
 * GVAs (identity map).  Zero means "not present" for optional areas.
 */
struct mv_guest_info {
	uint64_t magic;
	uint64_t ram_size;     /* total guest RAM */
	uint64_t ram_below_4g; /* RAM at [0, ram_below_4g) */
	uint64_t ram_above_4g; /* RAM at [4 GiB, 4 GiB + this) */
	uint64_t scratch_gpa;  /* free RAM below 4 GiB for the guest */
	uint64_t scratch_size;
	uint64_t high_scratch_gpa; /* free RAM above 4 GiB (0: none) */
	uint64_t high_scratch_size;
	/* self-test devices (0 when not set up) */
	uint64_t rom_gpa; /* 4 KiB of ROM filled with rom_signature */
	uint64_t rom_signature;
	uint64_t romd_gpa; /* ROM device: RAM holds romd_signature */
	uint64_t romd_signature;
	uint64_t mmio_gpa;  /* the MMIO test device, 4 KiB */
	uint64_t alias_gpa; /* alias of alias_target_gpa, 4 KiB */
	uint64_t alias_target_gpa;
	uint64_t hole_gpa;   /* nothing mapped here */
	uint64_t toggle_gpa; /* reads toggle_before, later toggle_after */
	uint64_t toggle_before;
	uint64_t toggle_after;
	uint64_t dirty_gpa;    /* write one qword to each listed page */
	uint64_t dirty_stride; /* pages between two writes */
	uint64_t dirty_count;  /* number of pages to write */
	/* workloads (dirty-log stress, bandwidth) */
	uint64_t work_gpa; /* the buffer a workload runs over */
	uint64_t work_size;
	uint64_t iteration_gpa; /* host-updated 8-byte iteration counter */
	uint64_t seed;
	uint64_t arg[4];    /* workload-specific */
	uint64_t result[8]; /* written by the guest before it exits */
};

#endif /* MEMVIRT_GUEST_ABI_H */
