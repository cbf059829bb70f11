// SPDX-License-Identifier: MIT
/*
 * bench/model: what a memslot lookup and a memslot update cost the kernel
 * model (src/kvm_model), next to KVM_SET_USER_MEMORY_REGION on /dev/kvm in
 * the same run, with N = 1, 16, 256, 4096 and 32764 slots.  Both sides go
 * through the same struct mv_backend (backend.h).  Slots are 4 KiB, ids
 * 0..N-1 at GPA i * 8 KiB; updates act on the middle slot: delete +
 * re-create, move away and back, LOG on and off.  Lookups (model only:
 * the kernel has no lookup ioctl) hit random slots, one slot over and over
 * (the last-used cache), or holes, best of three rounds.  Prints JSON;
 * without /dev/kvm it measures the model alone.
 *
 *   bench-model [--quick]     --quick: N <= 256, fewer repetitions
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "replay.h"

#define PG 0x1000ull
#define STRIDE 0x2000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void must(int ret, const char *what)
{
	if (ret) {
		fprintf(stderr, "bench-model: %s: %s\n", what, strerror(-ret));
		exit(1);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double median_us(uint64_t *ns, unsigned n)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	return (double)ns[n / 2] / 1e3;
}

static int set(struct mv_backend *b, uint32_t id, uint32_t flags, uint64_t gpa,
	       uint64_t size, uint64_t hva)
{
	struct mv_region2 r = { .slot = id,
				.flags = flags,
				.guest_phys_addr = gpa,
				.memory_size = size,
				.userspace_addr = hva };

	return b->ops->set_region(b, &r, false);
}

static uint64_t hva_of(const struct mv_replay_mem *m, size_t i)
{
	return (uintptr_t)m->a + (i % (MV_REPLAY_MAP_SIZE / PG)) * PG;
}

/* Timed updates of the middle slot; fills "create_all_ms" and the rest. */
static void bench_updates(struct mv_backend *b, const struct mv_replay_mem *m,
			  size_t n, unsigned reps, json_t *o)
{
	uint64_t *del = calloc(reps, 8), *cre = calloc(reps, 8);
	uint64_t *mov = calloc(reps, 8), *flg = calloc(reps, 8), t0;
	size_t i, mid = n / 2;
	uint64_t gpa = mid * STRIDE, far = (n + 16) * STRIDE;
	unsigned r;

	if (!del || !cre || !mov || !flg)
		must(-ENOMEM, "calloc");
	must(b->ops->vm(b), "vm");
	t0 = now_ns();
	for (i = 0; i < n; i++)
		must(set(b, (uint32_t)i, 0, i * STRIDE, PG, hva_of(m, i)),
		     "create");
	json_object_set_new(o, "create_all_ms",
			    json_real((double)(now_ns() - t0) / 1e6));
	for (r = 0; r < reps; r++) {
		uint64_t h = hva_of(m, mid);

		t0 = now_ns();
		must(set(b, (uint32_t)mid, 0, gpa, 0, h), "delete");
		del[r] = now_ns() - t0;
		t0 = now_ns();
		must(set(b, (uint32_t)mid, 0, gpa, PG, h), "re-create");
		cre[r] = now_ns() - t0;
		t0 = now_ns();
		must(set(b, (uint32_t)mid, 0, far, PG, h), "move");
		must(set(b, (uint32_t)mid, 0, gpa, PG, h), "move back");
		mov[r] = (now_ns() - t0) / 2;
		t0 = now_ns();
		must(set(b, (uint32_t)mid, 1, gpa, PG, h), "log on");
		must(set(b, (uint32_t)mid, 0, gpa, PG, h), "log off");
		flg[r] = (now_ns() - t0) / 2;
	}
	json_object_set_new(o, "delete_us", json_real(median_us(del, reps)));
	json_object_set_new(o, "create_us", json_real(median_us(cre, reps)));
	json_object_set_new(o, "move_us", json_real(median_us(mov, reps)));
	json_object_set_new(o, "flags_us", json_real(median_us(flg, reps)));
	t0 = now_ns();
	must(b->ops->vm(b), "vm"); /* the old VM (and its slots) goes */
	json_object_set_new(o, "drop_all_ms",
			    json_real((double)(now_ns() - t0) / 1e6));
	free(del);
	free(cre);
	free(mov);
	free(flg);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ns per lookup over @count lookups of GPAs drawn by @kind. */
static double lookup_round_ns(struct mv_backend *b, size_t n, unsigned count,
			      int kind)
{
	uint64_t seed = 88172645463325252ull, t0, sum = 0, v;
	unsigned i;
	bool found;

	t0 = now_ns();
	for (i = 0; i < count; i++) {
		uint64_t slot = kind == 1 ? n / 2 : xorshift(&seed) % n;
		uint64_t gpa =
			slot * STRIDE + (kind == 2 ? PG : 0) + (i & 0xff);

		b->ops->lookup(b, gpa, &v, &found);
		sum += v + found;
	}
	if (sum == 1) /* keep the loop */
		fputs("", stderr);
	return (double)(now_ns() - t0) / count;
}

/*
 * The best of three rounds: on a shared host other tenants only ever add
 * cache misses, and at 32764 slots a lookup is mostly cache misses.
 */
static double lookup_ns(struct mv_backend *b, size_t n, unsigned count,
			int kind)
{
	double best = lookup_round_ns(b, n, count, kind), t;
	int i;

	for (i = 0; i < 2; i++) {
		t = lookup_round_ns(b, n, count, kind);
		best = t < best ? t : best;
	}
	return best;
}

static void bench_lookups(struct mv_backend *b, const struct mv_replay_mem *m,
			  size_t n, unsigned count, json_t *o)
{
	size_t i;

	must(b->ops->vm(b), "vm");
	for (i = 0; i < n; i++)
		must(set(b, (uint32_t)i, 0, i * STRIDE, PG, hva_of(m, i)),
		     "create");
	json_object_set_new(o, "lookup_random_ns",
			    json_real(lookup_ns(b, n, count, 0)));
	json_object_set_new(o, "lookup_same_ns",
			    json_real(lookup_ns(b, n, count, 1)));
	json_object_set_new(o, "lookup_hole_ns",
			    json_real(lookup_ns(b, n, count, 2)));
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 1, 16, 256, 4096, 32764 };
	bool quick = argc == 2 && !strcmp(argv[1], "--quick");
	struct mv_backend *model, *kernel = NULL;
	struct mv_backend_limits l;
	struct mv_replay_mem mem;
	json_t *results = json_array(), *top;
	size_t i;
	int ret;

	if (argc > 2 || (argc == 2 && !quick)) {
		fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
		return 2;
	}
	mv_backend_default_limits(&l);
	ret = mv_backend_kernel_new(&kernel);
	if (ret)
		fprintf(stderr, "bench-model: /dev/kvm: %s: the model alone\n",
			strerror(-ret));
	else
		l = kernel->limits;
	must(mv_backend_model_new(&l, &model), "model");
	must(mv_replay_mem_init(&mem), "memory");
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		unsigned reps = quick ? 20 : n > 4096 ? 101 : 201;
		json_t *o = json_pack("{s:I}", "n", (json_int_t)n), *mo, *ko;

		if ((quick && n > 256) || n > l.nr_slots)
			continue;
		mo = json_object();
		bench_updates(model, &mem, n, reps, mo);
		bench_lookups(model, &mem, n, quick ? 100000 : 2000000, mo);
		json_object_set_new(o, "model", mo);
		if (kernel) {
			ko = json_object();
			bench_updates(kernel, &mem, n, reps, ko);
			json_object_set_new(o, "kernel", ko);
		}
		json_array_append_new(results, o);
	}
	top = json_pack("{s:s, s:b, s:b, s:o}", "bench", "model", "quick",
			quick, "kernel", kernel != NULL, "results", results);
	json_dumpf(top, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(4));
	putchar('\n');
	json_decref(top);
	model->ops->free(model);
	if (kernel)
		kernel->ops->free(kernel);
	mv_replay_mem_fini(&mem);
	return 0;
}
