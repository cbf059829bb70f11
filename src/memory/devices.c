// SPDX-License-Identifier: MIT
/*
 * Built-in device ops for machine files and presets: QEMU's
 * unassigned_io_ops (the x86 `io` root) and a device that reads zero.
 */
#include "internal.h"

static unsigned read_ones(void *opaque, uint64_t addr, uint64_t *data,
			  unsigned size)
{
	(void)opaque;
	(void)addr;
	*data = size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
	return MV_MEMTX_OK;
}

static unsigned read_zero(void *opaque, uint64_t addr, uint64_t *data,
			  unsigned size)
{
	(void)opaque;
	(void)addr;
	(void)size;
	*data = 0;
	return MV_MEMTX_OK;
}

static unsigned write_ignore(void *opaque, uint64_t addr, uint64_t data,
			     unsigned size)
{
	(void)opaque;
	(void)addr;
	(void)data;
	(void)size;
	return MV_MEMTX_OK;
}

const struct mv_region_ops mv_unassigned_io_ops = {
	.read = read_ones,
	.write = write_ignore,
	.valid = { .min_access_size = 1, .max_access_size = 8 },
	.impl = { .min_access_size = 1, .max_access_size = 8 },
};

const struct mv_region_ops mv_zero_ops = {
	.read = read_zero,
	.write = write_ignore,
	.valid = { .min_access_size = 1, .max_access_size = 8 },
	.impl = { .min_access_size = 1, .max_access_size = 8 },
};
