/* SPDX-License-Identifier: MIT */
/*
 * The memory-bandwidth kernels, shared by the bandwidth guest and the host
 * benchmark so both run the very same loops (guest/host ratio).  Every
 * access is a volatile 8-byte load or store: the compiler can neither
 * vectorise, merge, elide repeated passes nor turn a loop into a memcpy or
 * memset call, in the guest (freestanding) and on the host alike.
 *
 * The bandwidth guest's contract (struct mv_guest_info):
 *   arg[0]    kernel, enum mv_bw_kernel
 *   arg[1]    passes over [work_gpa, work_gpa + work_size), or chase steps
 *   arg[2]    the value the write kernel stores
 *   result[0] TSC cycles of the kernel's loop alone
 *   result[1] the read kernel's sum, the chase's final pointer
 */
#ifndef MEMVIRT_GUEST_BW_KERNELS_H
#define MEMVIRT_GUEST_BW_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "prng.h"

enum mv_bw_kernel {
	MV_BW_WRITE = 1, /* 8-byte stores of one value */
	MV_BW_READ = 2,	 /* sum of 8-byte loads */
	MV_BW_COPY = 3,	 /* first half of the buffer to the second half */
	MV_BW_CHASE = 4, /* follow a random cycle of pointers */
};

/* The chase's nodes start at multiples of this (a cache line). */
#define MV_BW_CHASE_ALIGN 64

/*
 * The kernels are out of line and start at a 64-byte boundary, so the
 * guest (freestanding, -fno-pic) and the host (PIE) run byte-identical
 * code at the same offsets within the instruction fetch windows.  Inlined,
 * each side's loops landed wherever the surrounding code put them: the
 * guest's read loop straddled a 64-byte boundary and the host's did not
 * (docs/performance.md, guest/host bandwidth).  `objdump -d` of
 * guest/bandwidth.elf and bench-bandwidth shows the same bytes.
 */
#if defined(__clang__) /* no noclone; the guest is always built by gcc */
#define MV_BW_KERNEL static __attribute__((noinline, aligned(64), unused))
#else
#define MV_BW_KERNEL \
	static __attribute__((noinline, noclone, aligned(64), unused))
#endif

static inline uint64_t mv_bw_rdtsc(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;

	/* lfence: the earlier loads and stores are done before we count. */
	__asm__ volatile("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
#else
	return 0;
#endif
}

MV_BW_KERNEL void mv_bw_write(void *buf, uint64_t size, uint64_t passes,
			      uint64_t value)
{
	volatile uint64_t *p = buf;
	uint64_t n = size / 8;

	for (uint64_t r = 0; r < passes; r++)
		for (uint64_t i = 0; i < n; i++)
			p[i] = value;
}

MV_BW_KERNEL uint64_t mv_bw_read(const void *buf, uint64_t size,
				 uint64_t passes)
{
	const volatile uint64_t *p = buf;
	uint64_t n = size / 8, sum = 0;

	for (uint64_t r = 0; r < passes; r++)
		for (uint64_t i = 0; i < n; i++)
			sum += p[i];
	return sum;
}

/* Copies the first size/2 bytes (rounded down to qwords) after them. */
MV_BW_KERNEL void mv_bw_copy(void *buf, uint64_t size, uint64_t passes)
{
	uint64_t n = size / 16;
	const volatile uint64_t *src = buf;
	volatile uint64_t *dst = (volatile uint64_t *)buf + n;

	for (uint64_t r = 0; r < passes; r++)
		for (uint64_t i = 0; i < n; i++)
			dst[i] = src[i];
}

/*
 * Follows @steps links from @start, where each node's first qword is the
 * address of the next one; returns the address reached.
 */
MV_BW_KERNEL uint64_t mv_bw_chase(const void *start, uint64_t steps)
{
	uint64_t p = (uint64_t)(uintptr_t)start;

	for (uint64_t i = 0; i < steps; i++)
		p = *(const volatile uint64_t *)(uintptr_t)p;
	return p;
}

/*
 * Links the nodes at buf + k * @stride (k < size / stride) into one random
 * cycle through all of them (Sattolo's algorithm, in place), each node
 * pointing at the next as @base + k' * @stride.  @base is the address the
 * chase will see @buf at: the buffer's GPA when the guest runs it, @buf
 * itself on the host.  @stride must be a non-zero multiple of 8
 * (MV_BW_CHASE_ALIGN for the guest's contract).  Returns the node count.
 */
static inline uint64_t mv_bw_chase_init(void *buf, uint64_t size,
					uint64_t stride, uint64_t base,
					uint64_t seed)
{
	unsigned char *b = buf;
	uint64_t n = stride ? size / stride : 0;
	struct mv_xorshift64 rng;

	mv_xorshift64_seed(&rng, seed);
	for (uint64_t k = 0; k < n; k++)
		*(uint64_t *)(void *)(b + k * stride) = k;
	/* Sattolo: swapping only with a smaller index gives a single cycle. */
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = mv_xorshift64_next(&rng) % (i - 1);
		uint64_t *a = (uint64_t *)(void *)(b + (i - 1) * stride);
		uint64_t *c = (uint64_t *)(void *)(b + j * stride);
		uint64_t t = *a;

		*a = *c;
		*c = t;
	}
	for (uint64_t k = 0; k < n; k++) {
		uint64_t *a = (uint64_t *)(void *)(b + k * stride);

		*a = base + *a * stride;
	}
	return n;
}

/*
 * Runs @kernel over (@buf, @size), @reps passes or chase steps; stores the
 * loop's TSC cycles in *@cycles and the read sum or chase end in *@value
 * (the write value goes in through *@value).  Returns 0, or -1 for an
 * unknown kernel.
 */
static inline int mv_bw_run(unsigned int kernel, void *buf, uint64_t size,
			    uint64_t reps, uint64_t *cycles, uint64_t *value)
{
	uint64_t t0, t1, v = *value;

	switch (kernel) {
	case MV_BW_WRITE:
		t0 = mv_bw_rdtsc();
		mv_bw_write(buf, size, reps, v);
		t1 = mv_bw_rdtsc();
		break;
	case MV_BW_READ:
		t0 = mv_bw_rdtsc();
		v = mv_bw_read(buf, size, reps);
		t1 = mv_bw_rdtsc();
		break;
	case MV_BW_COPY:
		t0 = mv_bw_rdtsc();
		mv_bw_copy(buf, size, reps);
		t1 = mv_bw_rdtsc();
		break;
	case MV_BW_CHASE:
		t0 = mv_bw_rdtsc();
		v = mv_bw_chase(buf, reps);
		t1 = mv_bw_rdtsc();
		break;
	default:
		return -1;
	}
	*cycles = t1 - t0;
	*value = v;
	return 0;
}

#endif /* MEMVIRT_GUEST_BW_KERNELS_H */
