/* SPDX-License-Identifier: MIT */
/* The built-in self-test guest of `memvirt run` (selftest.c). */
#ifndef MEMVIRT_CLI_SELFTEST_H
#define MEMVIRT_CLI_SELFTEST_H

#include <stdio.h>

#include <memvirt/vmm.h>

/* @on_vm(@opaque, vm) is told the VM before it runs and NULL after. */
struct selftest_opts {
	struct mv_vm_opts vm;
	void (*on_vm)(void *opaque, struct mv_vm *vm);
	void *opaque;
};

/*
 * Add the test devices to @m (a pc-like machine), run the self-test
 * guest, print the memory map, slot table, console and verdicts to @out.
 * Return: 0 if every check passed, -EIO if one failed, or the error that
 * stopped the run (already printed).
 */
int selftest_run(struct mv_machine *m, const struct selftest_opts *o,
		 FILE *out);

#endif /* MEMVIRT_CLI_SELFTEST_H */
