// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the replay format (docs/kvm-model.md): parse the
 * bytes; a parse error must name its line; a program that parses runs
 * against the model backend with the default limits and is printed back.
 * Operations that would make the model allocate a lot (logging slots over
 * 1 GiB, bitmaps over 1 MiB) are skipped, and at most MAX_OPS run.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "replay.h"

#define MAX_OPS 256
#define MAX_SLOT_BYTES (1ull << 30)
#define MAX_BITMAP (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool too_costly(const struct mv_replay_op *op)
{
	return (op->kind == MV_REPLAY_SET_REGION ||
		op->kind == MV_REPLAY_SET_REGION2) &&
	       op->size > MAX_SLOT_BYTES;
}

static void run(const struct mv_replay *p)
{
	static struct mv_replay_mem mem;
	static bool mem_ok;
	struct mv_backend_limits l;
	struct mv_backend *b;
	struct mv_replay_exec x;
	struct mv_replay_result r;
	char text[512], res[64];
	size_t i, n = 0;

	if (!mem_ok && mv_replay_mem_init(&mem))
		abort();
	mem_ok = true;
	mv_backend_default_limits(&l);
	if (mv_backend_model_new(&l, &b))
		abort();
	if (!mv_replay_exec_init(&x, b, &mem)) {
		x.max_bitmap_bytes = MAX_BITMAP;
		for (i = 0; i < p->nr_ops && n < MAX_OPS; i++) {
			mv_replay_op_format(&p->ops[i], text, sizeof(text));
			if (too_costly(&p->ops[i]))
				continue;
			mv_replay_exec_op(&x, &p->ops[i], &r);
			mv_replay_result_format(&r, res, sizeof(res));
			if (!res[0])
				abort();
			n++;
		}
	}
	mv_replay_exec_fini(&x);
	b->ops->free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mv_replay *p;
	char err[512];
	int ret;

	ret = mv_replay_parse((const char *)data, size, "fuzz", &p, err,
			      sizeof(err));
	if (ret == -EINVAL) {
		if (strncmp(err, "fuzz:", 5)) /* must say where */
			abort();
		return 0;
	}
	if (ret)
		return 0;
	run(p);
	mv_replay_free(p);
	return 0;
}
