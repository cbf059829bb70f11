// SPDX-License-Identifier: MIT
/*
 * Machine selection shared by the subcommands: a built-in preset sized by
 * -m, or a machine file whose change list is applied after loading.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("memvirt: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int machine_opts_parse(struct machine_opts *o, int opt, const char *arg)
{
	int ret;

	switch (opt) {
	case 'M':
		o->machine = arg;
		return 1;
	case 'm':
		ret = mv_parse_size(arg, 1024 * 1024, &o->ram_size);
		if (ret || !o->ram_size) {
			cli_error("-m %s: %s", arg,
				  ret == -ERANGE ? "size too large" :
						   "expected a size such as "
						   "512M, 4G or 1001k");
			return -1;
		}
		o->ram_size_set = true;
		return 1;
	default:
		return 0;
	}
}

static bool is_preset(const char *name)
{
	const char *const *p;

	for (p = mv_machine_preset_names(); *p; p++)
		if (!strcmp(*p, name))
			return true;
	return false;
}

struct mv_machine *machine_opts_load(const struct machine_opts *o,
				     bool apply_changes)
{
	const char *name = o->machine ? o->machine : "pc";
	struct mv_error err = { { 0 } };
	struct mv_machine *m = NULL;
	int ret;

	if (is_preset(name)) {
		ret = mv_machine_preset(
			name, o->ram_size ? o->ram_size : 128ull << 20, &m,
			&err);
	} else {
		if (o->ram_size_set) {
			cli_error("-m applies to built-in machines; %s sets "
				  "its own sizes",
				  name);
			return NULL;
		}
		ret = mv_machine_load_file(name, &m, &err);
		while (!ret && apply_changes && mv_machine_pending_changes(m))
			ret = mv_machine_apply_change(m, &err);
	}
	if (ret) {
		cli_error("%s", err.msg[0] ? err.msg : strerror(-ret));
		mv_machine_free(m);
		return NULL;
	}
	return m;
}
