/* SPDX-License-Identifier: MIT */
/*
 * Address kinds and small shared types of libmemvirt.  Addresses get their
 * own typedefs so a prototype says which space a number lives in.
 */
#ifndef MEMVIRT_TYPES_H
#define MEMVIRT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t mv_gpa_t;	/* guest-physical address */
typedef uint64_t mv_gva_t;	/* guest-virtual address */
typedef uint64_t mv_hva_t;	/* host-virtual address, as a number */
typedef uint64_t mv_ram_addr_t; /* offset in the ram_addr space of blocks */

/*
 * A size of UINT64_MAX stands for 2^64, as in QEMU's memory_region_init():
 * the only way to describe a region covering the whole 64-bit space
 * without a 128-bit type.
 */
#define MV_SIZE_2_64 UINT64_MAX

/*
 * struct mv_error - a message for the user, filled by functions that parse
 * outside input (machine files, sizes).  Library code never prints; the
 * CLI prints @msg.
 */
struct mv_error {
	char msg[512];
};

#endif /* MEMVIRT_TYPES_H */
