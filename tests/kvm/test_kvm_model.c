// SPDX-License-Identifier: MIT
/*
 * The differential test of the kernel model (docs/kvm-model.md): the same
 * operations on the model and on /dev/kvm must give identical results,
 * identical slot tables and identical dirty bitmaps.  Host limits are
 * probed from the kernel and handed to the model.  Exit 77 without
 * /dev/kvm.
 *
 *   test_kvm_model files DIR      every DIR/NAME.replay (the edge cases)
 *   test_kvm_model random SEED N [--no-ring]
 *                                 N random operations from SEED (without
 *                                 enabling the dirty ring)
 *
 * A difference prints the operation, both results, and the episode so far
 * as a replay file to reproduce it (`memvirt kvm-model replay F --diff`).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "replay.h"

#define SKIP 77
#define TABLE_EVERY 16 /* random runs compare slot tables this often */
#define MAX_EPISODE 4096
#define MAX_DUMPS 2 /* episodes printed for reproduction */

struct diff {
	struct mv_backend *model, *kernel;
	struct mv_replay_mem mem;
	struct mv_replay_exec xm, xk;
	unsigned long ops, differ;
	unsigned long ok[MV_REPLAY_LOOKUP + 1], all[MV_REPLAY_LOOKUP + 1];
};

static int diff_open(struct diff *d)
{
	struct mv_backend_limits l;
	int ret;

	memset(d, 0, sizeof(*d));
	ret = mv_backend_kernel_new(&d->kernel);
	if (ret) {
		fprintf(stderr, "SKIP: /dev/kvm: %s\n", strerror(-ret));
		return SKIP;
	}
	l = d->kernel->limits;
	ret = mv_backend_model_new(&l, &d->model);
	if (!ret)
		ret = mv_replay_mem_init(&d->mem);
	if (ret) {
		fprintf(stderr, "setup: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}

static void diff_close(struct diff *d)
{
	if (d->model)
		d->model->ops->free(d->model);
	if (d->kernel)
		d->kernel->ops->free(d->kernel);
	mv_replay_mem_fini(&d->mem);
}

static int diff_start(struct diff *d)
{
	int ret = mv_replay_exec_init(&d->xm, d->model, &d->mem);

	if (!ret)
		ret = mv_replay_exec_init(&d->xk, d->kernel, &d->mem);
	return ret;
}

static void diff_stop(struct diff *d)
{
	mv_replay_exec_fini(&d->xm);
	mv_replay_exec_fini(&d->xk);
}

/* One operation on both; prints and counts a difference. */
static bool diff_op(struct diff *d, const char *where,
		    const struct mv_replay_op *op, bool tables)
{
	char msg[512], text[512];

	d->ops++;
	d->all[op->kind]++;
	if (!mv_replay_diff_op(&d->xm, &d->xk, op, tables, msg, sizeof(msg))) {
		d->ok[op->kind] += !d->xk.last_err;
		return true;
	}
	mv_replay_op_format(op, text, sizeof(text));
	fprintf(stderr, "%s:%u: %s: model vs kernel: %s\n", where, op->line,
		text, msg);
	d->differ++;
	return false;
}

/* ---- the edge cases ---------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 &&
	    !fseek(f, 0, SEEK_SET)) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* One file: every operation compared, tables after each. */
static bool run_file(struct diff *d, const char *path)
{
	struct mv_replay *p;
	char err[512];
	size_t len, i;
	char *text = slurp(path, &len);
	bool ok = true;

	if (!text || mv_replay_parse(text, len, path, &p, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", path, text ? err : strerror(errno));
		free(text);
		return false;
	}
	free(text);
	if (diff_start(d)) {
		fprintf(stderr, "%s: cannot start\n", path);
		ok = false;
	}
	for (i = 0; ok && i < p->nr_ops; i++)
		ok = diff_op(d, path, &p->ops[i], true) && ok;
	for (; i < p->nr_ops; i++) /* keep going after a difference */
		diff_op(d, path, &p->ops[i], true);
	diff_stop(d);
	mv_replay_free(p);
	return ok;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_files(const char *dir)
{
	struct diff d;
	DIR *dp = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, i, passed = 0;
	int ret;

	if (!dp) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return 1;
	}
	while ((e = readdir(dp))) {
		size_t l = strlen(e->d_name);
		char **nn;

		if (l < 8 || strcmp(e->d_name + l - 7, ".replay"))
			continue;
		nn = realloc(names, (n + 1) * sizeof(*names));
		if (!nn)
			break;
		names = nn;
		names[n] = malloc(strlen(dir) + l + 2);
		if (!names[n])
			break;
		sprintf(names[n++], "%s/%s", dir, e->d_name);
	}
	closedir(dp);
	qsort(names, n, sizeof(*names), cmp_str);
	ret = diff_open(&d);
	for (i = 0; !ret && i < n; i++)
		passed += run_file(&d, names[i]);
	if (!ret) {
		printf("edge cases: %zu/%zu files agree (%lu operations, %lu "
		       "differ)\n",
		       passed, n, d.ops, d.differ);
		ret = passed == n && n ? 0 : 1;
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	diff_close(&d);
	return ret;
}

/* How many operations of each kind ran, and how many of them succeeded. */
static void print_mix(const struct diff *d)
{
	static const char *const names[] = {
		"vm",
		"set_region",
		"set_region2",
		"enable_cap",
		"create_vcpu",
		"get_dirty_log",
		"clear_dirty_log",
		"guest_write",
		"reset_rings",
		"lookup",
	};
	unsigned k;

	printf("mix (ok/all):");
	for (k = 0; k <= MV_REPLAY_LOOKUP; k++)
		printf(" %s %lu/%lu", names[k], d->ok[k], d->all[k]);
	printf("\n");
}

/* ---- random operations ------------------------------------------------- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool chance(struct rng *r, unsigned percent)
{
	return below(r, 100) < percent;
}

#define PG 0x1000ull
#define GPA_PAGES 512 /* the random GPA space: 2 MiB, so slots collide */
#define SLOT_IDS 12

/* The generator's view of the kernel's table (after each operation). */
struct gen {
	struct rng r;
	struct diff *d;
	struct mv_backend_slot *table;
	size_t n;
	unsigned nr_vcpus;
	bool ring, pending;
	size_t nr_gmem;
	struct mv_replay episode;
	unsigned dumps;
	bool no_ring; /* leave the dirty ring out (its own run) */
};

static void gen_refresh(struct gen *g)
{
	struct mv_replay_exec *x = &g->d->xk;

	g->n = x->b->ops->slots(x->b, x->table, x->table_len);
	if (g->n > x->table_len)
		g->n = x->table_len;
	g->table = x->table;
}

static const struct mv_backend_slot *gen_pick(struct gen *g);

static uint32_t gen_slot_id(struct gen *g)
{
	const struct mv_backend_limits *l = &g->d->kernel->limits;
	const struct mv_backend_slot *s = chance(&g->r, 50) ? gen_pick(g) :
							      NULL;

	if (s)
		return s->slot;
	if (chance(&g->r, 95))
		return (uint32_t)below(&g->r, SLOT_IDS);
	switch (below(&g->r, 5)) {
	case 0:
		return l->nr_slots - 2;
	case 1:
		return l->nr_slots;
	case 2:
		return 0xffff;
	case 3:
		return 1u << 16; /* address space 1 */
	default:
		return (uint32_t)rnd(&g->r);
	}
}

static uint32_t gen_flags(struct gen *g)
{
	static const uint32_t common[] = { 0, 0, 1, 1, 1, 2, 3 };

	if (chance(&g->r, 97))
		return common[below(&g->r, 7)];
	return chance(&g->r, 50) ? 1u << below(&g->r, 32) :
				   (uint32_t)rnd(&g->r);
}

static uint64_t gen_size(struct gen *g)
{
	if (chance(&g->r, 90))
		return (1 + below(&g->r, 64)) * PG;
	switch (below(&g->r, 4)) {
	case 0:
		return below(&g->r, 3 * PG); /* unaligned or 0 */
	case 1:
		return 1ull << (12 + below(&g->r, 52));
	case 2:
		return (1ull << 31) * PG; /* one page over the max */
	default:
		return rnd(&g->r) & ~(PG - 1);
	}
}

/* Mostly inside A or B (so guest writes can land), sometimes odd. */
static void gen_hva(struct gen *g, struct mv_replay_op *op)
{
	const struct mv_backend_limits *l = &g->d->kernel->limits;
	uint64_t room = MV_REPLAY_MAP_SIZE > op->size ?
				MV_REPLAY_MAP_SIZE - op->size :
				0;

	op->hva_base = chance(&g->r, 50) ? MV_REPLAY_HVA_A : MV_REPLAY_HVA_B;
	op->hva_off = below(&g->r, room / PG + 1) * PG;
	if (chance(&g->r, 95))
		return;
	op->hva_base = MV_REPLAY_HVA_ABS;
	switch (below(&g->r, 4)) {
	case 0:
		op->hva_off = l->user_ptr_max - op->size + PG * below(&g->r, 2);
		break;
	case 1:
		op->hva_off = 0xffff800000000000ull;
		break;
	case 2:
		op->hva_off = 1 + below(&g->r, PG); /* unaligned */
		break;
	default:
		op->hva_off = rnd(&g->r) & ~(PG - 1);
	}
}

static bool is_runner(struct gen *g, uint32_t slot)
{
	return g->d->xk.runner && slot == g->d->xk.r.slot;
}

/* @hva as A+OFF or B+OFF when it is there, so episodes replay anywhere. */
static void gen_hva_of(struct gen *g, uint64_t hva, struct mv_replay_op *op)
{
	uint64_t a = (uintptr_t)g->d->mem.a, b = (uintptr_t)g->d->mem.b;

	op->hva_base = MV_REPLAY_HVA_ABS;
	op->hva_off = hva;
	if (hva - a < MV_REPLAY_MAP_SIZE) {
		op->hva_base = MV_REPLAY_HVA_A;
		op->hva_off = hva - a;
	} else if (hva - b < MV_REPLAY_MAP_SIZE) {
		op->hva_base = MV_REPLAY_HVA_B;
		op->hva_off = hva - b;
	}
}

/* A slot of the current table other than the runner's, or NULL. */
static const struct mv_backend_slot *gen_pick(struct gen *g)
{
	const struct mv_backend_slot *s;
	unsigned tries;

	for (tries = 0; g->n && tries < 4; tries++) {
		s = &g->table[below(&g->r, g->n)];
		if (!is_runner(g, s->slot))
			return s;
	}
	return NULL;
}

static void gen_set_region(struct gen *g, struct mv_replay_op *op)
{
	const struct mv_backend_slot *s = gen_pick(g);
	unsigned kind = (unsigned)below(&g->r, 10);

	op->kind = MV_REPLAY_SET_REGION;
	op->slot = gen_slot_id(g);
	if (is_runner(g, op->slot))
		op->slot = 0;
	op->flags = gen_flags(g);
	op->gpa = below(&g->r, GPA_PAGES) * PG;
	op->size = gen_size(g);
	gen_hva(g, op);
	if (chance(&g->r, 2))
		op->gpa |= 1 + below(&g->r, PG - 1);
	if (chance(&g->r, 2))
		op->gpa = ~0ull << below(&g->r, 60) & ~(PG - 1);
	if (!s || kind < 4) /* create */
		return;
	/* Modify an existing slot: move, flags, delete, or a bad resize. */
	op->slot = s->slot;
	gen_hva_of(g, s->hva, op);
	op->size = s->size;
	if (kind < 6) { /* move (maybe with a LOG change) */
		op->flags = s->flags ^ (chance(&g->r, 30) ? 1 : 0);
	} else if (kind < 8) { /* flags only */
		op->gpa = s->gpa;
		op->flags = chance(&g->r, 80) ? s->flags ^ 1 : gen_flags(g);
	} else if (kind < 9) { /* delete */
		op->size = 0;
		if (chance(&g->r, 70))
			op->gpa = s->gpa;
	} else { /* resize or new hva: EINVAL */
		op->gpa = s->gpa;
		op->flags = s->flags;
		if (chance(&g->r, 50))
			op->size += PG;
		else
			op->hva_off += PG;
	}
}

static void gen_set_region2(struct gen *g, struct mv_replay_op *op)
{
	gen_set_region(g, op);
	op->kind = MV_REPLAY_SET_REGION2;
	if (chance(&g->r, 60)) {
		op->flags = MV_KVM_MEM_GUEST_MEMFD |
			    (chance(&g->r, 10) ? (uint32_t)below(&g->r, 4) : 0);
		if (!g->nr_gmem || chance(&g->r, 40)) {
			op->gmem = MV_REPLAY_GMEM_NEW;
			op->gmem_size = (1 + below(&g->r, 64)) * PG;
			if (chance(&g->r, 5))
				op->gmem_size = below(&g->r, 2 * PG);
			g->nr_gmem++;
		} else {
			op->gmem = chance(&g->r, 95) ? MV_REPLAY_GMEM_FD :
						       MV_REPLAY_GMEM_MEMFD;
			op->gmem_index =
				chance(&g->r, 95) ?
					(int64_t)below(&g->r, g->nr_gmem) :
					-1;
		}
		op->gmem_offset = below(&g->r, 32) * PG;
		if (chance(&g->r, 5))
			op->gmem_offset |= below(&g->r, PG);
	}
	if (chance(&g->r, 3))
		op->pad = rnd(&g->r);
}

/* A page the guest can really write: inside A or B's mapping. */
static bool gen_guest_write(struct gen *g, struct mv_replay_op *op)
{
	const struct mv_backend_slot *s = gen_pick(g);
	struct mv_replay_mem *m = &g->d->mem;
	uint64_t a = (uintptr_t)m->a, b = (uintptr_t)m->b;

	op->kind = MV_REPLAY_GUEST_WRITE;
	if (!s || chance(&g->r, 10)) {
		op->gpa = below(&g->r, GPA_PAGES) * PG + below(&g->r, PG);
		/* a hole, unless a slot is there: then it must be mapped */
		for (size_t i = 0; i < g->n; i++) {
			const struct mv_backend_slot *t = &g->table[i];
			bool mapped =
				(t->hva >= a &&
				 t->hva + t->size <= a + MV_REPLAY_MAP_SIZE) ||
				(t->hva >= b &&
				 t->hva + t->size <= b + MV_REPLAY_MAP_SIZE);

			if (op->gpa >= t->gpa && op->gpa - t->gpa < t->size &&
			    !mapped)
				return false;
		}
		return true;
	}
	if (s->flags & MV_KVM_MEM_GUEST_MEMFD)
		return false;
	if (!((s->hva >= a && s->hva + s->size <= a + MV_REPLAY_MAP_SIZE) ||
	      (s->hva >= b && s->hva + s->size <= b + MV_REPLAY_MAP_SIZE)))
		return false;
	op->gpa = s->gpa + below(&g->r, s->size / PG) * PG + below(&g->r, PG);
	return true;
}

static void gen_dirty_log(struct gen *g, struct mv_replay_op *op)
{
	const struct mv_backend_slot *s = gen_pick(g);
	uint64_t npages = s ? s->size / PG : 64;

	op->slot = s && chance(&g->r, 90) ? s->slot : gen_slot_id(g);
	if (chance(&g->r, 50)) {
		op->kind = MV_REPLAY_GET_DIRTY_LOG;
		return;
	}
	op->kind = MV_REPLAY_CLEAR_DIRTY_LOG;
	op->first = (uint32_t)(chance(&g->r, 85) ?
				       below(&g->r, npages / 64 + 1) * 64 :
				       below(&g->r, npages + 2));
	op->num = (uint32_t)(chance(&g->r, 50) && npages >= op->first ?
				     npages - op->first :
				     below(&g->r, npages + 65));
	op->bits_all = chance(&g->r, 50);
	if (!op->bits_all) {
		op->bits = &g->r.s; /* copied by mv_replay_append */
		op->bits_words = 1;
	}
}

static void gen_enable_cap(struct gen *g, struct mv_replay_op *op)
{
	static const uint64_t manual[] = { 0, 1, 3, 3, 2, 4, 7 };
	static const uint64_t ring[] = { 4096, 4096, 8192,     65536,	0,
					 2048, 4095, 1u << 21, 1u << 20 };

	op->kind = MV_REPLAY_ENABLE_CAP;
	if (chance(&g->r, 50)) {
		op->cap = 168;
		op->arg = manual[below(&g->r, 7)];
	} else {
		op->cap = 192;
		op->arg = ring[below(&g->r, 9)];
	}
	if (g->no_ring && op->cap == 192)
		op->arg = 0; /* refused: EINVAL */
}

/* The next operation of the episode; false to skip this draw. */
static bool gen_op(struct gen *g, struct mv_replay_op *op)
{
	unsigned w = (unsigned)below(&g->r, 100);

	memset(op, 0, sizeof(*op));
	op->bits_all = true;
	if (w < 30)
		gen_set_region(g, op);
	else if (w < 34)
		gen_set_region2(g, op);
	else if (w < 60)
		return g->nr_vcpus ? gen_guest_write(g, op) : false;
	else if (w < 75)
		gen_dirty_log(g, op);
	else if (w < 82) {
		op->kind = MV_REPLAY_RESET_RINGS;
	} else if (w < 90) {
		op->kind = MV_REPLAY_LOOKUP;
		op->gpa = below(&g->r, GPA_PAGES + 8) * PG + below(&g->r, PG);
	} else if (w < 93) {
		gen_enable_cap(g, op);
	} else if (w < 96) {
		op->kind = MV_REPLAY_CREATE_VCPU;
	} else {
		return false;
	}
	return true;
}

static void dump_episode(const struct mv_replay *ep)
{
	char text[512];
	size_t i;

	fprintf(stderr, "--- episode to reproduce (replay format) ---\n");
	for (i = 0; i < ep->nr_ops; i++) {
		mv_replay_op_format(&ep->ops[i], text, sizeof(text));
		fprintf(stderr, "%s\n", text);
	}
	fprintf(stderr, "--- end ---\n");
}

static void episode_reset(struct mv_replay *ep)
{
	size_t i;

	for (i = 0; i < ep->nr_ops; i++)
		free(ep->ops[i].bits);
	ep->nr_ops = 0;
}

/* Run one operation on both and record it; false on a difference. */
static bool gen_step(struct gen *g, struct mv_replay_op *op, bool tables)
{
	bool ok;

	op->line = (unsigned)(g->episode.nr_ops + 1);
	if (mv_replay_append(&g->episode, op))
		return false;
	ok = diff_op(g->d, "random", op, tables);
	if (op->kind == MV_REPLAY_VM) {
		g->nr_vcpus = 0;
	} else if (op->kind == MV_REPLAY_CREATE_VCPU) {
		g->nr_vcpus = g->d->xk.nr_vcpus;
	}
	gen_refresh(g);
	return ok;
}

/* An episode: a fresh VM, maybe a cap, a vCPU, then random operations. */
static bool gen_episode(struct gen *g, unsigned long *left)
{
	struct mv_replay_op op = { .kind = MV_REPLAY_VM, .bits_all = true };
	unsigned long len = 50 + below(&g->r, 450), i;
	bool ok;

	episode_reset(&g->episode);
	ok = gen_step(g, &op, true);
	if (ok && chance(&g->r, 70)) {
		gen_enable_cap(g, &op);
		if (chance(&g->r, 50) && !g->no_ring) { /* a valid ring */
			op.cap = 192;
			op.arg = 4096u << below(&g->r, 3);
		}
		ok = gen_step(g, &op, true);
	}
	if (ok && chance(&g->r, 80)) {
		memset(&op, 0, sizeof(op));
		op.kind = MV_REPLAY_CREATE_VCPU;
		ok = gen_step(g, &op, true);
	}
	for (i = 0; ok && i < len && *left; i++) {
		if (!gen_op(g, &op))
			continue;
		ok = gen_step(g, &op, i % TABLE_EVERY == 0);
		(*left)--;
		if (g->episode.nr_ops >= MAX_EPISODE)
			break;
	}
	if (ok) {
		char msg[512];

		if (mv_replay_tables_diff(&g->d->xm, &g->d->xk, msg,
					  sizeof(msg))) {
			fprintf(stderr, "random: end of episode: %s\n", msg);
			ok = false;
		}
	}
	if (!ok && g->dumps < MAX_DUMPS) {
		dump_episode(&g->episode);
		g->dumps++;
	}
	return ok;
}

static int run_random(uint64_t seed, unsigned long nops, bool no_ring)
{
	struct diff d;
	struct gen g = { .r = { seed ? seed : 1 },
			 .d = &d,
			 .no_ring = no_ring };
	unsigned long left = nops, episodes = 0, bad = 0;
	int ret = diff_open(&d);

	if (ret) {
		diff_close(&d);
		return ret;
	}
	if (diff_start(&d)) {
		diff_close(&d);
		return 1;
	}
	while (left) { /* an episode stops at its first difference */
		bad += !gen_episode(&g, &left);
		episodes++;
	}
	printf("random: seed %" PRIu64 "%s, %lu operations in %lu episodes, "
	       "%lu differ (%lu episodes)\n",
	       seed, no_ring ? " (no ring)" : "", d.ops, episodes, d.differ,
	       bad);
	print_mix(&d);
	episode_reset(&g.episode);
	free(g.episode.ops);
	diff_stop(&d);
	diff_close(&d);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "files"))
		return run_files(argv[2]);
	if ((argc == 4 || (argc == 5 && !strcmp(argv[4], "--no-ring"))) &&
	    !strcmp(argv[1], "random"))
		return run_random(strtoull(argv[2], NULL, 0),
				  strtoul(argv[3], NULL, 0), argc == 5);
	fprintf(stderr,
		"usage: test_kvm_model files DIR | random SEED N [--no-ring]\n");
	return 2;
}
