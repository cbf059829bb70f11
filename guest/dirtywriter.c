// SPDX-License-Identifier: MIT
/*
 * The guest of the kernel's dirty_log_test: store the host's current
 * iteration number into the first qword of random pages of the work area,
 * forever, so the host can check that every page it finds changed was
 * logged dirty and holds an iteration no newer than its own.
 *
 *   iteration_gpa  8-byte counter the host bumps between log collections
 *   work_gpa/size  the pages written (4 KiB each)
 *   seed           PRNG seed
 *   arg[0]         stop after this many stores and exit 0 (0: never stop)
 *   result[0]      stores so far, updated every 4096 stores and at the end
 */
#include "lib.h"

#define PAGE_SIZE 4096ull
#define PUBLISH_EVERY 4096ull

int mv_main(struct mv_guest_info *info)
{
	uint64_t pages = info->work_size / PAGE_SIZE, limit = info->arg[0];
	uint64_t iter_gpa = info->iteration_gpa, base = info->work_gpa;
	struct mv_xorshift64 rng;
	uint64_t count = 0;

	if (info->magic != MV_GUEST_INFO_MAGIC || !pages || !iter_gpa) {
		guest_puts("dirtywriter: no work area or iteration counter\n");
		return 1;
	}
	mv_xorshift64_seed(&rng, info->seed);
	for (;;) {
		uint64_t iter = mmio_read64(iter_gpa);
		uint64_t page = mv_xorshift64_next(&rng) % pages;

		mmio_write64(base + page * PAGE_SIZE, iter);
		count++;
		if (count % PUBLISH_EVERY == 0)
			mmio_write64((uintptr_t)&info->result[0], count);
		if (limit && count >= limit)
			break;
	}
	mmio_write64((uintptr_t)&info->result[0], count);
	return 0;
}
