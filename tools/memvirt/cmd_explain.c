// SPDX-License-Identifier: MIT
/*
 * memvirt explain ADDR: which region answers at an address of an address
 * space, the path that put it there, and what it hides.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fputs("usage: memvirt explain ADDR [--as NAME] [--machine NAME|FILE] "
	      "[-m SIZE] [--json]\n\n"
	      "Say which region answers at ADDR and why.\n\n" MACHINE_OPTS_HELP
	      "      --as NAME            address space (default: memory)\n"
	      "      --json               JSON output\n",
	      f);
}

static int parse_addr(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return (errno || *end) ? -EINVAL : 0;
}

int cmd_explain(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "machine", required_argument, NULL, 'M' },
		{ "memory", required_argument, NULL, 'm' },
		{ "as", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct machine_opts mo = { 0 };
	const char *as_name = "memory";
	struct mv_machine *m;
	struct mv_as *as;
	bool json = false;
	uint64_t addr;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "M:m:h", longopts, NULL)) != -1) {
		ret = machine_opts_parse(&mo, opt, optarg);
		if (ret < 0)
			return CLI_EXIT_USAGE;
		if (ret)
			continue;
		if (opt == 'a') {
			as_name = optarg;
		} else if (opt == 'j') {
			json = true;
		} else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || parse_addr(argv[optind], &addr)) {
		cli_error("explain: expected one address (decimal or 0x-hex)");
		return CLI_EXIT_USAGE;
	}
	m = machine_opts_load(&mo, true);
	if (!m)
		return CLI_EXIT_FAIL;
	as = mv_machine_find_as(m, as_name);
	if (!as) {
		cli_error("explain: no address space called '%s'", as_name);
		mv_machine_free(m);
		return CLI_EXIT_FAIL;
	}
	ret = mv_explain(as, addr, json, stdout);
	mv_machine_free(m);
	if (ret) {
		cli_error("explain: %s", strerror(-ret));
		return CLI_EXIT_FAIL;
	}
	return 0;
}
