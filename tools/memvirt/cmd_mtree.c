// SPDX-License-Identifier: MIT
/*
 * memvirt mtree: QEMU's `info mtree [-f] [-D]` and `info ramblock` for a
 * machine, or the same data as JSON.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <memvirt/kvm.h>

#include "cli.h"

static void usage(FILE *f)
{
	fputs("usage: memvirt mtree [--machine NAME|FILE] [-m SIZE] [-f] [-D] "
	      "[-o] [--ramblock] [--json]\n"
	      "       memvirt mtree --events FILE\n\n"
	      "Print the machine's memory topology as QEMU 7.2's monitor "
	      "does.\n\n" MACHINE_OPTS_HELP
	      "  -f, --flatview           flat views (info mtree -f)\n"
	      "  -D, --disabled           show disabled regions (info mtree "
	      "-D)\n"
	      "  -o, --owner              show owner tags\n"
	      "      --kvm                register the machine with /dev/kvm "
	      "(not run) and mark\n"
	      "                           ranges backed by a memslot \" KVM\" "
	      "as QEMU does\n"
	      "      --ramblock           RAM blocks (info ramblock)\n"
	      "      --json               everything as JSON, with each flat "
	      "range's provenance\n"
	      "      --events FILE        the listener events of FILE's change "
	      "list\n",
	      f);
}

int cmd_mtree(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "machine", required_argument, NULL, 'M' },
		{ "memory", required_argument, NULL, 'm' },
		{ "flatview", no_argument, NULL, 'f' },
		{ "disabled", no_argument, NULL, 'D' },
		{ "owner", no_argument, NULL, 'o' },
		{ "ramblock", no_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "events", required_argument, NULL, 'e' },
		{ "kvm", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct machine_opts mo = { 0 };
	bool ramblock = false, json = false, events = false, kvm = false;
	struct mv_mtree_accel ac;
	struct mv_kvm *k = NULL;
	unsigned flags = 0;
	struct mv_machine *m;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "M:m:fDoh", longopts, NULL)) !=
	       -1) {
		ret = machine_opts_parse(&mo, opt, optarg);
		if (ret < 0)
			return CLI_EXIT_USAGE;
		if (ret)
			continue;
		switch (opt) {
		case 'f':
			flags |= MV_MTREE_FLAT;
			break;
		case 'D':
			flags |= MV_MTREE_DISABLED;
			break;
		case 'o':
			flags |= MV_MTREE_OWNER;
			break;
		case 'r':
			ramblock = true;
			break;
		case 'j':
			json = true;
			break;
		case 'e':
			events = true;
			mo.machine = optarg;
			break;
		case 'k':
			kvm = true;
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
		cli_error("mtree: unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	m = machine_opts_load(&mo, !events);
	if (!m)
		return CLI_EXIT_FAIL;
	if (kvm && cli_kvm_attach(m, NULL, &k)) {
		mv_machine_free(m);
		return CLI_EXIT_FAIL;
	}
	if (k) {
		cli_kvm_mtree_accel(k, &ac);
		ret = mv_mtree_print_accel(m, stdout, flags, &ac);
	} else if (events)
		ret = cli_print_events(m, stdout);
	else if (json)
		ret = mv_mtree_print_json(m, stdout, flags);
	else if (ramblock)
		ret = mv_ramblock_print(m, stdout);
	else
		ret = mv_mtree_print(m, stdout, flags);
	mv_kvm_free(k);
	mv_machine_free(m);
	if (ret || fflush(stdout)) {
		cli_error("mtree: %s", strerror(ret ? -ret : EIO));
		return CLI_EXIT_FAIL;
	}
	return 0;
}
