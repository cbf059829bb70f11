// SPDX-License-Identifier: MIT
/*
 * The bandwidth guest: one kernel of bw_kernels.h over the work area,
 * timed with the TSC around the loop alone; the host runs the same
 * kernels natively for the guest/host ratio.  Contract in bw_kernels.h.
 */
#include "lib.h"
#include "bw_kernels.h"

int mv_main(struct mv_guest_info *info)
{
	uint64_t cycles, value = info->arg[2];
	void *buf = (void *)(uintptr_t)info->work_gpa;

	if (info->magic != MV_GUEST_INFO_MAGIC || !info->work_gpa) {
		guest_puts("bandwidth: no work area\n");
		return 1;
	}
	if (mv_bw_run((unsigned int)info->arg[0], buf, info->work_size,
		      info->arg[1], &cycles, &value)) {
		guest_puts("bandwidth: unknown kernel ");
		guest_put_dec(info->arg[0]);
		guest_putc('\n');
		return 1;
	}
	info->result[0] = cycles;
	info->result[1] = value;
	return 0;
}
