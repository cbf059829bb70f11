// SPDX-License-Identifier: MIT
/*
 * memvirt: the command-line front end of libmemvirt; dispatches to one
 * subcommand per file.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "run", cmd_run, "boot a guest under KVM (default: the self-test)" },
	{ "mtree", cmd_mtree, "print the memory tree, flat views, RAM blocks" },
	{ "explain", cmd_explain, "say which region answers at an address" },
	{ "machine", cmd_machine, "list built-in machines, dump one as JSON" },
	{ "translate", cmd_translate,
	  "follow a guest address GVA->GPA->HVA->HPA" },
	{ "slots", cmd_slots,
	  "register a machine with KVM, print its memslots" },
	{ "kvm-model", cmd_kvm_model,
	  "replay memslot operations on the kernel model or /dev/kvm" },
};

static void usage(FILE *f)
{
	size_t i;

	fputs("usage: memvirt COMMAND [OPTIONS]\n\ncommands:\n", f);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fputs("\n'memvirt COMMAND --help' describes each command.\n", f);
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	cli_error("unknown command '%s'", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
