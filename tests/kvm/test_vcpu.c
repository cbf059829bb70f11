// SPDX-License-Identifier: MIT
/*
 * The VMM's run loop against real KVM, one case per rule: the exit port
 * ends a run with its status, an exception reaches the CPL0 stubs, a
 * triple fault ends the run with an error, mv_vm_stop() stops a guest
 * that never stops by itself (and a second run goes on where it left),
 * a guest's MMIO accesses reach the region's ops.
 * Exit: 0 pass, 1 fail, 77 no /dev/kvm.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <memvirt/vmm.h>

#include "abi.h"
#include "guests.h"
#include "runner.h"

#define RAM_SIZE (64ull << 20)
#define MMIO_GPA 0xc0000000ull /* a hole in the micro machine */
#define MMIO_READ_VALUE 0xfeedfacecafebeefull
#define RUN_TIMEOUT_MS 10000

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "  %s:%d: %s: ", __FILE__, __LINE__, \
				#cond);                                      \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			ret = -1;                                            \
			goto out;                                            \
		}                                                            \
	} while (0)

/* Raw guests (64-bit code at 1 MiB, CPL3). */
static const uint8_t guest_ud2[] = { 0x0f, 0x0b };
/*
 *   movabs $MMIO_GPA, %rbx
 *   movl   $0x12345678, 0x8(%rbx)
 *   movq   (%rbx), %rax
 *   movq   %rax, 0x10(%rbx)
 *   movb   $42, %al;  outb %al, $0xf4
 *   1: jmp 1b
 */
static const uint8_t guest_mmio[] = {
	0x48, 0xbb, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00,
	0xc7, 0x43, 0x08, 0x78, 0x56, 0x34, 0x12, 0x48, 0x8b, 0x03,
	0x48, 0x89, 0x43, 0x10, 0xb0, 0x2a, 0xe6, 0xf4, 0xeb, 0xfe,
};

/* A machine, a VM on it, a guest loaded and booted. */
struct env {
	struct mv_machine *m;
	struct mv_vm *vm;
	struct mv_guest_info info;
	struct kvm_runner run;
	bool runner;
};

static int env_new(struct env *e, const void *image, size_t len,
		   enum mv_image_kind kind,
		   void (*prepare)(struct env *e, mv_gpa_t scratch))
{
	struct mv_error err = { { 0 } };
	uint64_t size;
	int ret;

	memset(e, 0, sizeof(*e));
	ret = mv_machine_preset("micro", RAM_SIZE, &e->m, &err);
	if (!ret)
		ret = mv_vm_new(e->m, NULL, &e->vm);
	if (!ret)
		ret = mv_vm_load(e->vm, image, len, kind, &err);
	if (!ret) {
		mv_vm_scratch(e->vm, &e->info.scratch_gpa, &size);
		e->info.scratch_size = size;
		if (prepare)
			prepare(e, e->info.scratch_gpa);
		ret = mv_vm_boot(e->vm, &e->info, &err);
	}
	if (!ret) {
		ret = kvm_runner_init(&e->run, e->vm);
		e->runner = !ret;
	}
	if (ret)
		fprintf(stderr, "  set-up: %s (%s)\n", err.msg, strerror(-ret));
	return ret;
}

static void env_free(struct env *e)
{
	if (e->runner) {
		if (e->run.started &&
		    kvm_runner_stop(&e->run, RUN_TIMEOUT_MS, NULL, NULL)) {
			fprintf(stderr, "  the vCPU does not stop; leaking\n");
			return;
		}
		kvm_runner_fini(&e->run);
	}
	mv_vm_free(e->vm);
	mv_machine_free(e->m);
}

/* Run until the guest ends the run by itself (or fail after a while). */
static int run_to_end(struct env *e, struct mv_vm_result *res)
{
	int ret = kvm_runner_start(&e->run);

	if (!ret)
		ret = kvm_runner_wait(&e->run, RUN_TIMEOUT_MS);
	if (ret == -ETIMEDOUT)
		fprintf(stderr, "  the guest still runs after %u ms\n",
			RUN_TIMEOUT_MS);
	if (!ret) {
		*res = e->run.res;
		ret = e->run.ret;
	}
	return ret;
}

/* ---- the exit port ------------------------------------------------------ */

static int test_exit_port_status(void)
{
	struct mv_vm_result res;
	struct env e;
	int ret;

	ret = env_new(&e, mv_guest_exit42, mv_guest_exit42_len,
		      MV_GUEST_IMAGE_RAW, NULL);
	if (!ret)
		ret = run_to_end(&e, &res);
	CHECK(!ret, "%s", strerror(-ret));
	CHECK(res.end == MV_VM_END_EXIT, "end %d: %s", res.end, res.msg);
	CHECK(res.status == 42, "status %" PRIu32, res.status);
out:
	env_free(&e);
	return ret;
}

/* ---- exceptions ---------------------------------------------------------- */

static int test_exception_reaches_stubs(void)
{
	struct mv_vm_result res;
	struct env e;
	int ret;

	ret = env_new(&e, guest_ud2, sizeof(guest_ud2), MV_GUEST_IMAGE_RAW,
		      NULL);
	if (!ret)
		ret = run_to_end(&e, &res);
	CHECK(!ret, "%s", strerror(-ret));
	CHECK(res.end == MV_VM_END_FAULT, "end %d: %s", res.end, res.msg);
	CHECK(strstr(res.msg, "#UD") || strstr(res.msg, "vector 6"),
	      "message: %s", res.msg);
out:
	env_free(&e);
	return ret;
}

/* With an empty IDT, #UD -> #GP -> #DF -> triple fault: KVM's SHUTDOWN. */
static int test_triple_fault_is_error(void)
{
	struct mv_vm_result res;
	struct kvm_sregs s;
	struct env e;
	int ret;

	ret = env_new(&e, guest_ud2, sizeof(guest_ud2), MV_GUEST_IMAGE_RAW,
		      NULL);
	CHECK(!ret, "%s", strerror(-ret));
	ret = mv_vcpu_get_sregs(mv_vm_vcpu(e.vm, 0), &s);
	CHECK(!ret, "get sregs: %s", strerror(-ret));
	s.idt.limit = 0;
	ret = mv_vcpu_set_sregs(mv_vm_vcpu(e.vm, 0), &s);
	CHECK(!ret, "set sregs: %s", strerror(-ret));
	ret = run_to_end(&e, &res);
	CHECK(!ret, "%s", strerror(-ret));
	CHECK(res.end == MV_VM_END_ERROR, "end %d: %s", res.end, res.msg);
	CHECK(strstr(res.msg, "shut down") || strstr(res.msg, "triple"),
	      "message: %s", res.msg);
out:
	env_free(&e);
	return ret;
}

/* ---- mv_vm_stop() --------------------------------------------------------- */

#define WORK_OFFSET (1ull << 20)
#define WORK_SIZE (1ull << 20)

static void dirtywriter_info(struct env *e, mv_gpa_t scratch)
{
	uint64_t one = 1;

	e->info.iteration_gpa = scratch;
	e->info.work_gpa = scratch + WORK_OFFSET;
	e->info.work_size = WORK_SIZE;
	e->info.seed = 42;
	mv_as_write(mv_vm_memory(e->vm), scratch, &one, sizeof(one));
}

/* The guest's store counter (result[0], published every 4096 stores). */
static uint64_t stores(struct env *e)
{
	uint64_t n = 0;

	mv_as_read(mv_vm_memory(e->vm),
		   mv_vm_info_gpa(e->vm) +
			   offsetof(struct mv_guest_info, result[0]),
		   &n, sizeof(n));
	return n;
}

/* Run the endless dirtywriter for @ms, then stop it within 1 s. */
static int run_and_stop(struct env *e, unsigned ms, unsigned *stops,
			double *took)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };
	int ret = kvm_runner_start(&e->run);

	if (ret)
		return ret;
	nanosleep(&ts, NULL);
	if (!kvm_runner_wait(&e->run, 0)) {
		fprintf(stderr, "  the guest stopped by itself: %s\n",
			e->run.res.msg);
		return -EPROTO;
	}
	return kvm_runner_stop(&e->run, 1000, stops, took);
}

static int test_stop_ends_endless_guest(void)
{
	uint64_t before, after;
	unsigned stops = 0;
	double took = 0;
	struct env e;
	int ret;

	ret = env_new(&e, mv_guest_dirtywriter, mv_guest_dirtywriter_len,
		      MV_GUEST_IMAGE_ELF, dirtywriter_info);
	CHECK(!ret, "%s", strerror(-ret));
	ret = run_and_stop(&e, 50, &stops, &took);
	CHECK(!ret, "first run: %s", strerror(-ret));
	CHECK(e.run.res.end == MV_VM_END_STOPPED, "end %d: %s", e.run.res.end,
	      e.run.res.msg);
	before = stores(&e);
	CHECK(before > 0, "the guest made no stores");
	printf("  stopped in %.3f ms (%u mv_vm_stop calls), %" PRIu64
	       " stores\n",
	       took, stops, before);
	/* The vCPU keeps its state: a second run continues the loop. */
	ret = run_and_stop(&e, 50, &stops, &took);
	CHECK(!ret, "second run: %s", strerror(-ret));
	CHECK(e.run.res.end == MV_VM_END_STOPPED, "end %d: %s", e.run.res.end,
	      e.run.res.msg);
	after = stores(&e);
	CHECK(after > before,
	      "no progress in the second run: %" PRIu64 " -> %" PRIu64, before,
	      after);
out:
	env_free(&e);
	return ret;
}

/* ---- MMIO ------------------------------------------------------------------ */

struct mmio_log {
	unsigned writes, reads;
	uint64_t addr[4], data[4];
	unsigned size[4];
};

static unsigned mmio_read(void *opaque, uint64_t addr, uint64_t *data,
			  unsigned size)
{
	struct mmio_log *l = opaque;

	(void)addr;
	(void)size;
	l->reads++;
	*data = MMIO_READ_VALUE;
	return MV_MEMTX_OK;
}

static unsigned mmio_write(void *opaque, uint64_t addr, uint64_t data,
			   unsigned size)
{
	struct mmio_log *l = opaque;

	if (l->writes < 4) {
		l->addr[l->writes] = addr;
		l->data[l->writes] = data;
		l->size[l->writes] = size;
	}
	l->writes++;
	return MV_MEMTX_OK;
}

static const struct mv_region_ops mmio_ops = {
	.read = mmio_read,
	.write = mmio_write,
	.endianness = MV_ENDIAN_LITTLE,
	.valid = { .min_access_size = 1, .max_access_size = 8 },
	.impl = { .min_access_size = 1, .max_access_size = 8 },
};

static struct mmio_log mmio;

/* The device at MMIO_GPA; the machine keeps the only reference. */
static void add_mmio(struct env *e, mv_gpa_t scratch)
{
	struct mv_as *mem = mv_machine_find_as(e->m, "memory");
	struct mv_region *mr;

	(void)scratch;
	if (mv_region_new_io(e->m, "test.mmio", 4096, &mmio_ops, &mmio, &mr)) {
		fprintf(stderr, "  cannot create the MMIO region\n");
		return;
	}
	if (mv_region_add_subregion_overlap(mv_as_root(mem), MMIO_GPA, mr, 0))
		fprintf(stderr, "  cannot add the MMIO region\n");
	mv_region_unref(mr);
}

static int test_mmio_reaches_ops(void)
{
	struct mv_vm_result res;
	struct env e;
	int ret;

	memset(&mmio, 0, sizeof(mmio));
	ret = env_new(&e, guest_mmio, sizeof(guest_mmio), MV_GUEST_IMAGE_RAW,
		      add_mmio);
	if (!ret)
		ret = run_to_end(&e, &res);
	CHECK(!ret, "%s", strerror(-ret));
	CHECK(res.end == MV_VM_END_EXIT && res.status == 42, "end %d: %s",
	      res.end, res.msg);
	CHECK(mmio.writes == 2, "%u writes", mmio.writes);
	CHECK(mmio.addr[0] == 8 && mmio.size[0] == 4 &&
		      mmio.data[0] == 0x12345678,
	      "first write: %u bytes at 0x%" PRIx64 ": 0x%" PRIx64,
	      mmio.size[0], mmio.addr[0], mmio.data[0]);
	CHECK(mmio.reads == 1, "%u reads", mmio.reads);
	CHECK(mmio.addr[1] == 0x10 && mmio.size[1] == 8 &&
		      mmio.data[1] == MMIO_READ_VALUE,
	      "second write: %u bytes at 0x%" PRIx64 ": 0x%" PRIx64,
	      mmio.size[1], mmio.addr[1], mmio.data[1]);
out:
	env_free(&e);
	return ret;
}

/* ---- main ------------------------------------------------------------------ */

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	{ "exit_port_status", test_exit_port_status },
	{ "exception_reaches_stubs", test_exception_reaches_stubs },
	{ "triple_fault_is_error", test_triple_fault_is_error },
	{ "stop_ends_endless_guest", test_stop_ends_endless_guest },
	{ "mmio_reaches_ops", test_mmio_reaches_ops },
};

int main(int argc, char **argv)
{
	unsigned i, failed = 0;

	if (!kvm_test_usable())
		return KVM_TEST_SKIP;
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (argc > 1 && strcmp(argv[1], tests[i].name))
			continue;
		printf("%s\n", tests[i].name);
		fflush(stdout);
		if (tests[i].fn()) {
			printf("FAIL %s\n", tests[i].name);
			failed++;
		} else {
			printf("ok   %s\n", tests[i].name);
		}
	}
	printf("%u failed\n", failed);
	return failed ? 1 : 0;
}
