/* SPDX-License-Identifier: MIT */
/*
 * The memvirt command line: one file per subcommand, sharing the machine
 * selection options (--machine NAME|FILE, -m SIZE) of machine_opts.c.
 */
#ifndef MEMVIRT_CLI_H
#define MEMVIRT_CLI_H

#include <memvirt/memory.h>

/* Exit codes: 0 ok, 1 failure, 2 usage error. */
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/*
 * struct machine_opts - what --machine and -m selected.  @machine is a
 * preset name or a machine file; @ram_size 0 means the default (128 MiB,
 * as QEMU).
 */
struct machine_opts {
	const char *machine;
	uint64_t ram_size;
	bool ram_size_set;
};

#define MACHINE_OPTS_HELP                                                       \
	"  -M, --machine NAME|FILE  built-in machine (pc, q35, micro) or a "    \
	"machine file\n"                                                        \
	"                           (default: pc)\n"                            \
	"  -m, --memory SIZE        RAM size of a built-in machine, as QEMU's " \
	"-m\n"                                                                  \
	"                           (default unit MiB; default 128M)\n"

/* Handles -M/-m; returns 1 if consumed, 0 if not ours, -1 on error. */
int machine_opts_parse(struct machine_opts *o, int opt, const char *arg);
/*
 * Build the machine and apply the changes a machine file lists.  Prints
 * the error and returns NULL on failure.
 */
struct mv_machine *machine_opts_load(const struct machine_opts *o,
				     bool apply_changes);
/*
 * Print the listener events of the machine file's change list: register a
 * printing listener per address space, apply every change, unregister.
 */
int cli_print_events(struct mv_machine *m, FILE *out);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct mv_kvm;
struct mv_kvm_opts;
/*
 * Create a VM with @o and attach the machine's "memory" address space as
 * KVM address space 0; prints the error.  The caller owns *@out.
 */
int cli_kvm_attach(struct mv_machine *m, const struct mv_kvm_opts *o,
		   struct mv_kvm **out);
/* The " KVM" markers of `mtree -f --kvm`. */
void cli_kvm_mtree_accel(struct mv_kvm *k, struct mv_mtree_accel *ac);

int cmd_mtree(int argc, char **argv);
int cmd_slots(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_translate(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_machine(int argc, char **argv);
int cmd_kvm_model(int argc, char **argv);

#endif /* MEMVIRT_CLI_H */
