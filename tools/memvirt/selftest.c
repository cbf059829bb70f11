// SPDX-License-Identifier: MIT
/*
 * The built-in self-test of `memvirt run`: test devices added to the
 * machine, the guest of guest/selftest.c run under real KVM, and for each
 * memory concept (guest/abi.h's enum mv_selftest_check) the guest's
 * verdict combined with what only the host can see: the ops calls, the
 * console text, memory contents through the host's view, the dirty log.
 *
 * Test layout in the PCI hole of a pc machine (nothing answers there):
 *
 *   0xfd000000  selftest.rom     4 KiB ROM, filled with ROM_SIG
 *   0xfd001000  selftest.romd    4 KiB ROM device in romd mode
 *   0xfd002000  selftest.mmio    4 KiB MMIO test device
 *   0xfd003000  selftest.alias   alias of 4 KiB of RAM below 4 GiB
 *   0xfd004000  selftest.toggle-a  RAM reading TOGGLE_A, under
 *               selftest.toggle-b  RAM reading TOGGLE_B, disabled, prio 2
 *   0xfd100000  a hole
 *   0xfd200000  selftest.dirty   1 MiB of RAM with dirty logging on
 *   ports 0x500 selftest.report, 0x504 selftest.sync
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <memvirt/vmm.h>

#include "abi.h"
#include "cli.h"
#include "guests.h"
#include "selftest.h"

#define BASE 0xfd000000ull
#define ROM_GPA (BASE + 0x0000)
#define ROMD_GPA (BASE + 0x1000)
#define MMIO_GPA (BASE + 0x2000)
#define ALIAS_GPA (BASE + 0x3000)
#define TOGGLE_GPA (BASE + 0x4000)
#define HOLE_GPA (BASE + 0x100000)
#define DIRTY_GPA (BASE + 0x200000)
#define DIRTY_SIZE (1ull << 20)
#define DIRTY_STRIDE 3
#define DIRTY_COUNT 64
#define ROM_SIG 0x4d4f5274766d6d00ull  /* "\0mmvtROM" */
#define ROMD_SIG 0x444d4f5274766d6dull /* "mmvtROMD" */
#define TOGGLE_A 0xaaaaaaaa00000001ull
#define TOGGLE_B 0xbbbbbbbb00000002ull
#define ROMD_WRITE 0x5a5a5a5a5a5a5a5aull
#define CONSOLE_LINE "memvirt guest console: hello\n"
#define PAGE 4096ull

/* What the host observed while the guest ran. */
struct selftest {
	struct mv_machine *m;
	struct mv_vm *vm;
	struct mv_region *rom, *romd, *mmio, *alias, *toggle_a, *toggle_b;
	struct mv_region *dirty, *report_port, *sync_port;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool toggle_armed, toggled, quit;
	int toggle_error;
	uint32_t guest_verdict[MV_CHECK_NR]; /* 0 none, 1 fail, 2 pass */
	uint64_t mmio_written[4];	     /* by log2(size) */
	unsigned mmio_writes;
	uint64_t romd_addr, romd_data;
	unsigned romd_writes;
	struct mv_guest_info info;
};

static const char *const check_name[MV_CHECK_NR] = {
	[MV_CHECK_RAM_LOW] = "RAM below 4 GiB",
	[MV_CHECK_RAM_HIGH] = "RAM above 4 GiB",
	[MV_CHECK_ROM] = "ROM (guest write has no effect)",
	[MV_CHECK_ROMD] = "ROM device (romd read, write to ops)",
	[MV_CHECK_MMIO] = "MMIO device, 1/2/4/8-byte accesses",
	[MV_CHECK_CONSOLE] = "port-I/O console",
	[MV_CHECK_ALIAS] = "alias coherence",
	[MV_CHECK_HOLE] = "unassigned hole (reads 0)",
	[MV_CHECK_TOGGLE] = "region toggled by the host while running",
	[MV_CHECK_DIRTY] = "dirty pages logged for guest writes",
};

/* ---- devices ---------------------------------------------------------- */

static unsigned log2_size(unsigned size)
{
	return size == 8 ? 3 : size == 4 ? 2 : size == 2 ? 1 : 0;
}

static uint64_t mask(unsigned size)
{
	return size >= 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
}

static unsigned mmio_read(void *opaque, uint64_t addr, uint64_t *data,
			  unsigned size)
{
	struct selftest *t = opaque;

	pthread_mutex_lock(&t->lock);
	if (addr == 0x10ull * size && t->mmio_written[log2_size(size)])
		*data = t->mmio_written[log2_size(size)];
	else
		*data = MV_MMIO_PATTERN(addr, size) & mask(size);
	pthread_mutex_unlock(&t->lock);
	return MV_MEMTX_OK;
}

static unsigned mmio_write(void *opaque, uint64_t addr, uint64_t data,
			   unsigned size)
{
	struct selftest *t = opaque;

	pthread_mutex_lock(&t->lock);
	if (addr == 0x10ull * size) {
		t->mmio_written[log2_size(size)] = data & mask(size);
		t->mmio_writes++;
	}
	pthread_mutex_unlock(&t->lock);
	return MV_MEMTX_OK;
}

static const struct mv_region_ops mmio_ops = {
	.read = mmio_read,
	.write = mmio_write,
	.valid = { .min_access_size = 1, .max_access_size = 8 },
	.impl = { .min_access_size = 1, .max_access_size = 8 },
};

static unsigned romd_write(void *opaque, uint64_t addr, uint64_t data,
			   unsigned size)
{
	struct selftest *t = opaque;

	(void)size;
	pthread_mutex_lock(&t->lock);
	t->romd_addr = addr;
	t->romd_data = data;
	t->romd_writes++;
	pthread_mutex_unlock(&t->lock);
	return MV_MEMTX_OK;
}

static const struct mv_region_ops romd_ops = {
	.write = romd_write,
	.valid = { .min_access_size = 1, .max_access_size = 8 },
	.impl = { .min_access_size = 1, .max_access_size = 8 },
};

static unsigned report_write(void *opaque, uint64_t addr, uint64_t data,
			     unsigned size)
{
	struct selftest *t = opaque;
	unsigned id = data & 0xff;

	(void)addr;
	(void)size;
	if (id > 0 && id < MV_CHECK_NR)
		t->guest_verdict[id] = data & 0x100 ? 2 : 1;
	return MV_MEMTX_OK;
}

static unsigned sync_write(void *opaque, uint64_t addr, uint64_t data,
			   unsigned size)
{
	struct selftest *t = opaque;

	(void)addr;
	(void)size;
	if (data == MV_SYNC_TOGGLE_ARM) {
		pthread_mutex_lock(&t->lock);
		t->toggle_armed = true;
		pthread_cond_signal(&t->cond);
		pthread_mutex_unlock(&t->lock);
	}
	return MV_MEMTX_OK;
}

static const struct mv_region_ops report_ops = {
	.write = report_write,
	.valid = { .min_access_size = 4, .max_access_size = 4 },
};

static const struct mv_region_ops sync_ops = {
	.write = sync_write,
	.valid = { .min_access_size = 4, .max_access_size = 4 },
};

/* ---- building the test machine ------------------------------------------ */

static int fill(struct mv_region *r, uint64_t value)
{
	uint64_t *p = mv_region_ram_ptr(r), i;

	if (!p)
		return -EINVAL;
	for (i = 0; i < PAGE / 8; i++)
		p[i] = value;
	return 0;
}

static int add(struct mv_region *parent, uint64_t at, struct mv_region *r,
	       int prio)
{
	return mv_region_add_subregion_overlap(parent, at, r, prio);
}

/* The alias target: 4 KiB of the RAM region holding @gpa. */
static int make_alias(struct selftest *t, struct mv_as *mem, mv_gpa_t gpa)
{
	struct mv_flatview *fv = mv_as_get_flatview(mem);
	const struct mv_flat_range *r = mv_flatview_lookup(fv, gpa);
	int ret = -ENOENT;

	if (r && mv_region_kind(r->mr) == MV_REGION_RAM)
		ret = mv_region_new_alias(t->m, "selftest.alias", r->mr,
					  r->offset_in_region + gpa - r->first,
					  PAGE, &t->alias);
	mv_flatview_unref(fv);
	return ret;
}

static int add_memory_devices(struct selftest *t, struct mv_region *sys)
{
	struct mv_machine *m = t->m;
	int ret;

	ret = mv_region_new_rom(m, "selftest.rom", PAGE, NULL, &t->rom);
	if (!ret)
		ret = fill(t->rom, ROM_SIG);
	if (!ret)
		ret = mv_region_new_rom_device(m, "selftest.romd", PAGE,
					       &romd_ops, t, NULL, &t->romd);
	if (!ret)
		ret = fill(t->romd, ROMD_SIG);
	if (!ret)
		ret = mv_region_new_io(m, "selftest.mmio", PAGE, &mmio_ops, t,
				       &t->mmio);
	if (!ret)
		ret = mv_region_new_ram(m, "selftest.toggle-a", PAGE, NULL,
					&t->toggle_a);
	if (!ret)
		ret = mv_region_new_ram(m, "selftest.toggle-b", PAGE, NULL,
					&t->toggle_b);
	if (!ret)
		ret = mv_region_new_ram(m, "selftest.dirty", DIRTY_SIZE, NULL,
					&t->dirty);
	if (ret)
		return ret;
	fill(t->toggle_a, TOGGLE_A);
	fill(t->toggle_b, TOGGLE_B);
	mv_txn_begin(m);
	ret = add(sys, ROM_GPA, t->rom, 1);
	if (!ret)
		ret = add(sys, ROMD_GPA, t->romd, 1);
	if (!ret)
		ret = add(sys, MMIO_GPA, t->mmio, 1);
	if (!ret)
		ret = add(sys, ALIAS_GPA, t->alias, 1);
	if (!ret)
		ret = add(sys, TOGGLE_GPA, t->toggle_a, 1);
	if (!ret)
		ret = mv_region_set_enabled(t->toggle_b, false);
	if (!ret)
		ret = add(sys, TOGGLE_GPA, t->toggle_b, 2);
	if (!ret)
		ret = add(sys, DIRTY_GPA, t->dirty, 1);
	if (!ret)
		ret = mv_region_set_log(t->dirty, true, MV_DIRTY_VGA);
	return ret ? ret : mv_txn_commit(m);
}

static int add_ports(struct selftest *t, struct mv_as *io)
{
	int ret;

	if (!io)
		return -ENOENT;
	ret = mv_region_new_io(t->m, "selftest.report", 4, &report_ops, t,
			       &t->report_port);
	if (!ret)
		ret = mv_region_new_io(t->m, "selftest.sync", 4, &sync_ops, t,
				       &t->sync_port);
	if (!ret)
		ret = add(mv_as_root(io), MV_GUEST_PORT_REPORT, t->report_port,
			  100);
	if (!ret)
		ret = add(mv_as_root(io), MV_GUEST_PORT_SYNC, t->sync_port,
			  100);
	return ret;
}

static void fill_info(struct selftest *t, mv_gpa_t scratch, uint64_t size)
{
	struct mv_guest_info *i = &t->info;

	i->scratch_gpa = scratch;
	i->scratch_size = size / 2;
	i->alias_target_gpa = scratch + size / 2;
	i->rom_gpa = ROM_GPA;
	i->rom_signature = ROM_SIG;
	i->romd_gpa = ROMD_GPA;
	i->romd_signature = ROMD_SIG;
	i->mmio_gpa = MMIO_GPA;
	i->alias_gpa = ALIAS_GPA;
	i->hole_gpa = HOLE_GPA;
	i->toggle_gpa = TOGGLE_GPA;
	i->toggle_before = TOGGLE_A;
	i->toggle_after = TOGGLE_B;
	i->dirty_gpa = DIRTY_GPA;
	i->dirty_stride = DIRTY_STRIDE;
	i->dirty_count = DIRTY_COUNT;
}

/* 1 MiB of RAM from 4 GiB + 16 MiB, if the machine has RAM there. */
static void high_scratch(struct selftest *t, struct mv_as *mem)
{
	const mv_gpa_t at = (4ull << 30) + (16ull << 20);
	struct mv_flatview *fv = mv_as_get_flatview(mem);
	const struct mv_flat_range *r = mv_flatview_lookup(fv, at);

	if (r && mv_region_kind(r->mr) == MV_REGION_RAM && !r->readonly &&
	    r->last - at + 1 >= (1ull << 20)) {
		t->info.high_scratch_gpa = at;
		t->info.high_scratch_size = 1ull << 20;
	}
	mv_flatview_unref(fv);
}

/* ---- the toggling thread ------------------------------------------------- */

static void *toggler(void *arg)
{
	struct selftest *t = arg;
	struct timespec pause = { 0, 2 * 1000 * 1000 };

	pthread_mutex_lock(&t->lock);
	while (!t->toggle_armed && !t->quit)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	if (t->quit)
		return NULL;
	nanosleep(&pause, NULL); /* the guest is polling by now */
	t->toggle_error = mv_region_set_enabled(t->toggle_b, true);
	t->toggled = !t->toggle_error;
	return NULL;
}

/* ---- host-side verdicts ---------------------------------------------------- */

static bool ram_pattern_ok(struct mv_as *mem, mv_gpa_t gpa, uint64_t size)
{
	uint64_t v, a;

	if (size > (1ull << 20))
		size = 1ull << 20;
	for (a = gpa; a + 8 <= gpa + size; a += size / 8 & ~7ull) {
		if (mv_as_read(mem, a, &v, 8) ||
		    v != (a ^ 0x5a5aa5a5c3c33c3cull))
			return false;
		if (!(size / 8 & ~7ull))
			break;
	}
	return true;
}

static bool dirty_ok(struct selftest *t, char *why, size_t len)
{
	uint64_t p, i, npages = DIRTY_SIZE / PAGE;
	int ret = mv_kvm_dirty_harvest(mv_vm_kvm(t->vm));

	if (ret) {
		snprintf(why, len, "harvest failed: %s", strerror(-ret));
		return false;
	}
	for (p = 0; p < npages; p++) {
		bool want = p % DIRTY_STRIDE == 0 &&
			    p / DIRTY_STRIDE < DIRTY_COUNT;
		bool got = mv_region_get_dirty(t->dirty, p * PAGE, PAGE,
					       MV_DIRTY_VGA);

		if (want != got) {
			i = p / DIRTY_STRIDE;
			snprintf(why, len,
				 "page %" PRIu64 " %s (write %" PRIu64 ")", p,
				 got ? "reported but never written" :
				       "written but not reported",
				 i);
			return false;
		}
	}
	return true;
}

static bool host_check(struct selftest *t, int id, char *why, size_t len)
{
	struct mv_as *mem = mv_vm_memory(t->vm);
	const char *console;
	uint64_t v = 0;
	unsigned s;

	switch (id) {
	case MV_CHECK_RAM_LOW:
		return ram_pattern_ok(mem, t->info.scratch_gpa,
				      t->info.scratch_size);
	case MV_CHECK_RAM_HIGH:
		return ram_pattern_ok(mem, t->info.high_scratch_gpa,
				      t->info.high_scratch_size);
	case MV_CHECK_ROM:
		mv_as_read(mem, ROM_GPA, &v, 8);
		snprintf(why, len, "ROM now holds 0x%" PRIx64, v);
		return v == ROM_SIG;
	case MV_CHECK_ROMD:
		snprintf(why, len,
			 "ops saw %u writes, last 0x%" PRIx64 " at +0x%" PRIx64,
			 t->romd_writes, t->romd_data, t->romd_addr);
		return t->romd_writes == 1 && t->romd_addr == 8 &&
		       t->romd_data == ROMD_WRITE;
	case MV_CHECK_MMIO:
		for (s = 0; s < 4; s++) {
			unsigned size = 1u << s;
			uint64_t want = (MV_MMIO_PATTERN(0x10 * size, size) ^
					 0xa5a5a5a5a5a5a5a5ull) &
					mask(size);

			if (t->mmio_written[s] != want) {
				snprintf(why, len, "%u-byte write not seen",
					 size);
				return false;
			}
		}
		return t->mmio_writes == 4;
	case MV_CHECK_CONSOLE:
		console = mv_vm_console(t->vm, NULL);
		snprintf(why, len, "console text missing");
		return strstr(console, CONSOLE_LINE) != NULL;
	case MV_CHECK_TOGGLE:
		snprintf(why, len, "host toggle: %s",
			 t->toggle_error ? strerror(-t->toggle_error) :
					   "never armed");
		return t->toggled;
	case MV_CHECK_DIRTY:
		return dirty_ok(t, why, len);
	default:
		return true; /* the guest alone can tell */
	}
}

static int verdicts(struct selftest *t, FILE *out)
{
	unsigned passed = 0, id;
	char why[160];

	fputs("\nchecks:\n", out);
	for (id = 1; id < MV_CHECK_NR; id++) {
		bool guest = t->guest_verdict[id] == 2, host;

		why[0] = '\0';
		host = host_check(t, (int)id, why, sizeof(why));
		if (!t->guest_verdict[id])
			snprintf(why, sizeof(why), "the guest never reported");
		else if (!guest)
			snprintf(why, sizeof(why), "the guest saw a failure");
		fprintf(out, "  %-4s %-42s%s%s\n",
			guest && host ? "PASS" : "FAIL", check_name[id],
			guest && host ? "" : " -- ", guest && host ? "" : why);
		passed += guest && host;
	}
	return (int)passed;
}

/* ---- printing -------------------------------------------------------------- */

static void print_map(struct selftest *t, FILE *out)
{
	struct mv_as *mem = mv_vm_memory(t->vm);
	struct mv_kvm *k = mv_vm_kvm(t->vm);
	struct mv_flatview *fv = mv_as_get_flatview(mem);
	size_t nr, i;
	const struct mv_flat_range *r = mv_flatview_ranges(fv, &nr);

	fputs("memory map (address space \"memory\"):\n", out);
	for (i = 0; i < nr; i++) {
		struct mv_kvm_slot_info si;
		bool slot = !mv_kvm_slot_lookup(k, 0, r[i].first, &si);

		fprintf(out, "  %016" PRIx64 "-%016" PRIx64 " %-8s %s%s\n",
			r[i].first, r[i].last,
			r[i].readonly ? "rom" : mv_region_type(r[i].mr),
			mv_region_name(r[i].mr), slot ? "  [KVM]" : "");
	}
	mv_flatview_unref(fv);
}

/* ---- the run ------------------------------------------------------------------ */

static int setup(struct selftest *t, const struct selftest_opts *o, FILE *out,
		 struct mv_error *err)
{
	struct mv_vm_opts vo = o->vm;
	struct mv_region *sys;
	mv_gpa_t scratch;
	uint64_t size;
	int ret;

	sys = mv_as_root(mv_machine_find_as(t->m, "memory"));
	if (!vo.console)
		vo.console = out;
	ret = mv_vm_new(t->m, &vo, &t->vm);
	if (ret) {
		snprintf(err->msg, sizeof(err->msg), "cannot create the VM: %s",
			 strerror(-ret));
		return ret;
	}
	mv_vm_scratch(t->vm, &scratch, &size);
	if (size < 4 * PAGE) {
		snprintf(err->msg, sizeof(err->msg), "too little RAM");
		return -ENOSPC;
	}
	fill_info(t, scratch, size);
	high_scratch(t, mv_vm_memory(t->vm));
	ret = make_alias(t, mv_vm_memory(t->vm), t->info.alias_target_gpa);
	if (!ret)
		ret = add_memory_devices(t, sys);
	if (!ret)
		ret = add_ports(t, mv_machine_find_as(t->m, "I/O"));
	if (ret) {
		snprintf(err->msg, sizeof(err->msg),
			 "adding the test devices failed: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

static void release(struct selftest *t)
{
	struct mv_region **r[] = { &t->rom,   &t->romd,	       &t->mmio,
				   &t->alias, &t->toggle_a,    &t->toggle_b,
				   &t->dirty, &t->report_port, &t->sync_port };
	size_t i;

	mv_vm_free(t->vm);
	for (i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (*r[i]) {
			if (mv_region_container(*r[i]))
				mv_region_del_subregion(
					mv_region_container(*r[i]), *r[i]);
			mv_region_unref(*r[i]);
		}
}

/* Clean start for the dirty check: drop INITIALLY_SET's all-ones. */
static int dirty_baseline(struct selftest *t)
{
	int ret = mv_kvm_dirty_harvest(mv_vm_kvm(t->vm));

	mv_region_reset_dirty(t->dirty, 0, DIRTY_SIZE, MV_DIRTY_VGA);
	return ret;
}

static int run_guest(struct selftest *t, const struct selftest_opts *o,
		     struct mv_vm_result *res, struct mv_error *err)
{
	pthread_t th;
	int ret;

	ret = mv_vm_load(t->vm, mv_guest_selftest, mv_guest_selftest_len,
			 MV_GUEST_IMAGE_ELF, err);
	if (ret)
		return ret;
	ret = dirty_baseline(t);
	if (!ret)
		ret = mv_vm_boot(t->vm, &t->info, err);
	if (ret)
		return ret;
	ret = -pthread_create(&th, NULL, toggler, t);
	if (ret)
		return ret;
	if (o->on_vm)
		o->on_vm(o->opaque, t->vm);
	ret = mv_vm_run(t->vm, res);
	if (o->on_vm)
		o->on_vm(o->opaque, NULL);
	pthread_mutex_lock(&t->lock);
	t->quit = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(th, NULL);
	return ret;
}

int selftest_run(struct mv_machine *m, const struct selftest_opts *o, FILE *out)
{
	struct selftest t = { .m = m };
	struct mv_vm_result res = { 0 };
	struct mv_error err = { { 0 } };
	struct timespec t0, t1;
	int passed = 0, ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cond, NULL);
	ret = setup(&t, o, out, &err);
	if (!ret) {
		print_map(&t, out);
		fputc('\n', out);
		mv_kvm_print_slots(mv_vm_kvm(t.vm), out);
		fputs("\nguest console:\n", out);
		fflush(out);
		ret = run_guest(&t, o, &res, &err);
	}
	if (!ret) {
		passed = verdicts(&t, out);
		if (res.end != MV_VM_END_EXIT || res.status)
			fprintf(out, "\nguest: %s\n", res.msg);
	} else {
		cli_error("run: %s", err.msg[0] ? err.msg : strerror(-ret));
	}
	release(&t);
	pthread_cond_destroy(&t.cond);
	pthread_mutex_destroy(&t.lock);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(out, "\nself-test: %d/%d checks passed in %.0f ms -- %s\n",
		passed, MV_CHECK_NR - 1,
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
		!ret && passed == MV_CHECK_NR - 1 &&
				res.end == MV_VM_END_EXIT && !res.status ?
			"PASS" :
			"FAIL");
	if (ret)
		return ret;
	return passed == MV_CHECK_NR - 1 && res.end == MV_VM_END_EXIT &&
			       !res.status ?
		       0 :
		       -EIO;
}
