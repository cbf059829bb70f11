// SPDX-License-Identifier: MIT
/*
 * memvirt machine list | dump NAME [-m SIZE]: the built-in machines, and
 * one of them as a machine file to start your own from.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fputs("usage: memvirt machine list\n"
	      "       memvirt machine dump NAME [-m SIZE]\n\n"
	      "List the built-in machines, or print one as a machine file "
	      "(docs/machine-format.md).\n",
	      f);
}

static int dump(int argc, char **argv)
{
	struct machine_opts mo = { 0 };
	struct mv_error err = { { 0 } };
	char *text;
	int opt, ret;

	while ((opt = getopt(argc, argv, "m:h")) != -1) {
		ret = machine_opts_parse(&mo, opt, optarg);
		if (ret < 0)
			return CLI_EXIT_USAGE;
		if (!ret) {
			usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	ret = mv_machine_preset_json(argv[optind],
				     mo.ram_size ? mo.ram_size : 128ull << 20,
				     &text, &err);
	if (ret) {
		cli_error("%s", err.msg);
		return CLI_EXIT_FAIL;
	}
	printf("%s\n", text);
	free(text);
	return 0;
}

int cmd_machine(int argc, char **argv)
{
	const char *const *p;

	if (argc >= 2 && !strcmp(argv[1], "list")) {
		for (p = mv_machine_preset_names(); *p; p++)
			printf("%s\n", *p);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "dump"))
		return dump(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return CLI_EXIT_USAGE;
}
