/* SPDX-License-Identifier: MIT */
/*
 * The guest runtime: port I/O, exact-size MMIO accesses, the console, the
 * report/sync/exit ports of abi.h, a PRNG and the TSC.  Freestanding; the
 * guest runs at CPL3 with IOPL 3, so only unprivileged instructions here.
 */
#ifndef MEMVIRT_GUEST_LIB_H
#define MEMVIRT_GUEST_LIB_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "prng.h"

/* Each guest's entry, called by crt0.S; its result is the exit status. */
int mv_main(struct mv_guest_info *info);
/* The %rdi of the entry, saved by crt0.S. */
extern struct mv_guest_info *mv_guest_info_ptr;

/*
 * Port I/O.  The "memory" clobber makes every port access a compiler
 * barrier: the host may look at guest memory when it sees one.
 */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/*
 * MMIO: one mov of exactly the access size at a guest address, never
 * merged, split or reordered against other memory accesses.
 */
static inline uint8_t mmio_read8(uint64_t addr)
{
	uint8_t v;

	__asm__ volatile("movb %1, %0"
			 : "=q"(v)
			 : "m"(*(volatile uint8_t *)(uintptr_t)addr)
			 : "memory");
	return v;
}

static inline uint16_t mmio_read16(uint64_t addr)
{
	uint16_t v;

	__asm__ volatile("movw %1, %0"
			 : "=r"(v)
			 : "m"(*(volatile uint16_t *)(uintptr_t)addr)
			 : "memory");
	return v;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	uint32_t v;

	__asm__ volatile("movl %1, %0"
			 : "=r"(v)
			 : "m"(*(volatile uint32_t *)(uintptr_t)addr)
			 : "memory");
	return v;
}

static inline uint64_t mmio_read64(uint64_t addr)
{
	uint64_t v;

	__asm__ volatile("movq %1, %0"
			 : "=r"(v)
			 : "m"(*(volatile uint64_t *)(uintptr_t)addr)
			 : "memory");
	return v;
}

static inline void mmio_write8(uint64_t addr, uint8_t v)
{
	__asm__ volatile("movb %1, %0"
			 : "=m"(*(volatile uint8_t *)(uintptr_t)addr)
			 : "q"(v)
			 : "memory");
}

static inline void mmio_write16(uint64_t addr, uint16_t v)
{
	__asm__ volatile("movw %1, %0"
			 : "=m"(*(volatile uint16_t *)(uintptr_t)addr)
			 : "r"(v)
			 : "memory");
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	__asm__ volatile("movl %1, %0"
			 : "=m"(*(volatile uint32_t *)(uintptr_t)addr)
			 : "r"(v)
			 : "memory");
}

static inline void mmio_write64(uint64_t addr, uint64_t v)
{
	__asm__ volatile("movq %1, %0"
			 : "=m"(*(volatile uint64_t *)(uintptr_t)addr)
			 : "r"(v)
			 : "memory");
}

/* A size-dispatched access (size 1, 2, 4 or 8); other sizes read 0. */
uint64_t mmio_read(uint64_t addr, unsigned int size);
void mmio_write(uint64_t addr, unsigned int size, uint64_t v);

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}

/* The console (MV_GUEST_PORT_CONSOLE), one byte per outb. */
void guest_putc(char c);
void guest_puts(const char *s);
void guest_put_hex(uint64_t v); /* "0x" and lowercase digits */
void guest_put_dec(uint64_t v);

/* One self-test verdict to MV_GUEST_PORT_REPORT. */
static inline void guest_report(unsigned int id, int pass)
{
	outl(MV_GUEST_PORT_REPORT, MV_GUEST_REPORT(id, pass));
}

/* Asks the host for sync step @step (MV_GUEST_PORT_SYNC). */
static inline void guest_sync(uint32_t step)
{
	outl(MV_GUEST_PORT_SYNC, step);
}

/* Ends the guest with @status; halts if the host resumes it anyway. */
_Noreturn void guest_exit(uint32_t status);
/* Stops at the CPL0 stub's HLT (`hlt` at CPL3, see abi.h). */
_Noreturn void guest_halt(void);

/* gcc may emit calls to these even in freestanding code. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif /* MEMVIRT_GUEST_LIB_H */
