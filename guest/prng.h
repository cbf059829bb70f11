/* SPDX-License-Identifier: MIT */
/*
 * xorshift64 (Marsaglia 2003), the guests' PRNG.  Header-only and free of
 * host headers so the guest runtime and host-side code (benchmarks, tests)
 * draw the same sequence from the same seed.
 */
#ifndef MEMVIRT_GUEST_PRNG_H
#define MEMVIRT_GUEST_PRNG_H

#include <stdint.h>

/* struct mv_xorshift64 - generator state; never 0 (0 is a fixed point). */
struct mv_xorshift64 {
	uint64_t s;
};

/* A zero seed is replaced by a fixed non-zero one. */
static inline void mv_xorshift64_seed(struct mv_xorshift64 *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static inline uint64_t mv_xorshift64_next(struct mv_xorshift64 *r)
{
	uint64_t x = r->s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	r->s = x;
	return x;
}

#endif /* MEMVIRT_GUEST_PRNG_H */
