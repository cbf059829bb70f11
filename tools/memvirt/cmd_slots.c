// SPDX-License-Identifier: MIT
/*
 * memvirt slots: register the machine's memory in a real VM (without
 * running it) and print the KVM memslot table the listener built.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <memvirt/kvm.h>

#include "cli.h"

static void usage(FILE *f)
{
	fputs("usage: memvirt slots [--machine NAME|FILE] [-m SIZE] "
	      "[--no-readonly]\n\n"
	      "Register the machine's \"memory\" address space with /dev/kvm "
	      "and print the\nmemslots, one line per slot in address "
	      "order.\n\n" MACHINE_OPTS_HELP
	      "      --no-readonly        as if the kernel lacked "
	      "KVM_CAP_READONLY_MEM\n",
	      f);
}

int cmd_slots(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "machine", required_argument, NULL, 'M' },
		{ "memory", required_argument, NULL, 'm' },
		{ "no-readonly", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct machine_opts mo = { 0 };
	struct mv_kvm_opts ko = { 0 };
	struct mv_machine *m;
	struct mv_kvm *k;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "M:m:h", longopts, NULL)) != -1) {
		ret = machine_opts_parse(&mo, opt, optarg);
		if (ret < 0)
			return CLI_EXIT_USAGE;
		if (ret)
			continue;
		switch (opt) {
		case 'R':
			ko.no_readonly = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_error("slots: unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	m = machine_opts_load(&mo, true);
	if (!m)
		return CLI_EXIT_FAIL;
	ret = cli_kvm_attach(m, &ko, &k);
	if (!ret) {
		ret = mv_kvm_print_slots(k, stdout);
		mv_kvm_free(k);
	}
	mv_machine_free(m);
	if (ret || fflush(stdout))
		return CLI_EXIT_FAIL;
	return 0;
}
