// SPDX-License-Identifier: MIT
/*
 * memvirt kvm-model: run a replay file (docs/kvm-model.md) against the
 * in-process model of the kernel's memslots, against the real /dev/kvm
 * (--kernel), or against both, printing where they differ (--diff).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cli.h"
#include "replay.h"

#define MAX_FILE (64u << 20)

static void usage(FILE *f)
{
	fputs("usage: memvirt kvm-model replay FILE [--kernel | --diff] [-v]\n"
	      "       memvirt kvm-model limits\n\n"
	      "  replay    run FILE's operations, one result line each\n"
	      "            (OK, OK result=N, or an errno name)\n"
	      "  --kernel  against /dev/kvm instead of the model\n"
	      "  --diff    against both; print the operations whose results\n"
	      "            or slot tables differ, exit 1 if any\n"
	      "  -v        prefix each result with FILE:LINE and the operation\n"
	      "  limits    the limits probed from /dev/kvm (the model's\n"
	      "            defaults without it)\n"
	      "FILE '-' is standard input.  See docs/kvm-model.md.\n",
	      f);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		size_t got;

		if (n == cap) {
			char *p = cap >= MAX_FILE ?
					  NULL :
					  realloc(buf, cap ? 2 * cap : 65536);

			if (!p) {
				free(buf);
				buf = NULL;
				errno = cap >= MAX_FILE ? EFBIG : ENOMEM;
				break;
			}
			buf = p;
			cap = cap ? 2 * cap : 65536;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				free(buf);
				buf = NULL;
			}
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	*len = n;
	return buf;
}

/*
 * The backends of a run.  The kernel's limits go to the model, so both
 * agree on what the host allows; without /dev/kvm the model takes the
 * limits of the kernel these machines run.
 */
static int open_backends(bool model, bool kernel, struct mv_backend **m,
			 struct mv_backend **k)
{
	struct mv_backend_limits l;
	int ret;

	*m = *k = NULL;
	mv_backend_default_limits(&l);
	if (kernel) {
		ret = mv_backend_kernel_new(k);
		if (ret) {
			cli_error("/dev/kvm: %s", strerror(-ret));
			return ret;
		}
		l = (*k)->limits;
	}
	if (model) {
		ret = mv_backend_model_new(&l, m);
		if (ret) {
			cli_error("the model: %s", strerror(-ret));
			if (*k)
				(*k)->ops->free(*k);
			return ret;
		}
	}
	return 0;
}

static void print_result(const char *file, const struct mv_replay_op *op,
			 const struct mv_replay_result *r, bool verbose)
{
	char res[64], text[512];

	mv_replay_result_format(r, res, sizeof(res));
	if (verbose) {
		mv_replay_op_format(op, text, sizeof(text));
		printf("%s:%u: %s -> %s\n", file, op->line, text, res);
	} else {
		printf("%s\n", res);
	}
}

static int run_one(const char *file, const struct mv_replay *p,
		   struct mv_backend *b, struct mv_replay_mem *mem,
		   bool verbose)
{
	struct mv_replay_exec x;
	struct mv_replay_result r;
	size_t i;
	int ret = mv_replay_exec_init(&x, b, mem);

	if (ret) {
		cli_error("creating the first VM: %s", strerror(-ret));
		mv_replay_exec_fini(&x);
		return CLI_EXIT_FAIL;
	}
	for (i = 0; i < p->nr_ops; i++) {
		mv_replay_exec_op(&x, &p->ops[i], &r);
		print_result(file, &p->ops[i], &r, verbose);
	}
	mv_replay_exec_fini(&x);
	return 0;
}

static int run_diff(const char *file, const struct mv_replay *p,
		    struct mv_backend *m, struct mv_backend *k,
		    struct mv_replay_mem *mem)
{
	struct mv_replay_exec xm, xk;
	char msg[512], text[512];
	size_t i, diffs = 0;
	int ret = mv_replay_exec_init(&xm, m, mem);

	if (!ret)
		ret = mv_replay_exec_init(&xk, k, mem);
	if (ret) {
		cli_error("creating the first VM: %s", strerror(-ret));
		mv_replay_exec_fini(&xm);
		return CLI_EXIT_FAIL;
	}
	for (i = 0; i < p->nr_ops; i++) {
		if (!mv_replay_diff_op(&xm, &xk, &p->ops[i], true, msg,
				       sizeof(msg)))
			continue;
		mv_replay_op_format(&p->ops[i], text, sizeof(text));
		printf("%s:%u: %s: model vs kernel: %s\n", file, p->ops[i].line,
		       text, msg);
		diffs++;
	}
	printf("%zu operations, %zu differ\n", p->nr_ops, diffs);
	mv_replay_exec_fini(&xm);
	mv_replay_exec_fini(&xk);
	return diffs ? CLI_EXIT_FAIL : 0;
}

static int cmd_replay(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "kernel", no_argument, NULL, 'k' },
		{ "diff", no_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool kernel = false, diff = false, verbose = false;
	struct mv_backend *m = NULL, *k = NULL;
	struct mv_replay_mem mem;
	struct mv_replay *p;
	char err[512], *text;
	size_t len;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "kdvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kernel = true;
			break;
		case 'd':
			diff = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || (kernel && diff)) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	text = read_all(argv[optind], &len);
	if (!text) {
		cli_error("%s: %s", argv[optind], strerror(errno));
		return CLI_EXIT_FAIL;
	}
	ret = mv_replay_parse(text, len, argv[optind], &p, err, sizeof(err));
	free(text);
	if (ret) {
		cli_error("%s", ret == -EINVAL ? err : strerror(-ret));
		return CLI_EXIT_FAIL;
	}
	ret = mv_replay_mem_init(&mem);
	if (ret) {
		cli_error("host memory: %s", strerror(-ret));
		mv_replay_free(p);
		return CLI_EXIT_FAIL;
	}
	if (open_backends(!kernel || diff, kernel || diff, &m, &k)) {
		ret = CLI_EXIT_FAIL;
	} else if (diff) {
		ret = run_diff(argv[optind], p, m, k, &mem);
	} else {
		ret = run_one(argv[optind], p, kernel ? k : m, &mem, verbose);
	}
	if (m)
		m->ops->free(m);
	if (k)
		k->ops->free(k);
	mv_replay_mem_fini(&mem);
	mv_replay_free(p);
	return ret;
}

static int cmd_limits(void)
{
	struct mv_backend_limits l;
	struct mv_backend *k = NULL;
	int ret = mv_backend_kernel_new(&k);

	if (ret) {
		fprintf(stderr,
			"memvirt: /dev/kvm: %s; the model's defaults:\n",
			strerror(-ret));
		mv_backend_default_limits(&l);
	} else {
		l = k->limits;
		k->ops->free(k);
	}
	printf("nr_slots %u\nnr_as %u\nreadonly_mem %d\nmanual_protect %u\n"
	       "ring_max_bytes %u\nring_rsvd_entries %u\nuser_memory2 %d\n"
	       "guest_memfd %d\nmax_gfn %#llx\nuser_ptr_max %#llx\n"
	       "guest_phys_bits %u\nslot_zap_all %d\n",
	       l.nr_slots, l.nr_as, l.readonly_mem, l.manual_protect,
	       l.ring_max_bytes, l.ring_rsvd_entries, l.user_memory2,
	       l.guest_memfd, (unsigned long long)l.max_gfn,
	       (unsigned long long)l.user_ptr_max, l.guest_phys_bits,
	       l.slot_zap_all);
	return 0;
}

int cmd_kvm_model(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "replay"))
		return cmd_replay(argc - 1, argv + 1);
	if (argc == 2 && !strcmp(argv[1], "limits"))
		return cmd_limits();
	if (argc == 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return CLI_EXIT_USAGE;
}
