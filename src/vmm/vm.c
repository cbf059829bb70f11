// SPDX-License-Identifier: MIT
/*
 * The VMM: a machine mapped into a KVM VM, a console device, guests
 * loaded and entered in long mode at CPL3, one thread per vCPU (vCPU 0's
 * is the caller of mv_vm_run()).
 *
 * Guest RAM layout used by mv_vm_boot() (all below 640 KiB unless the
 * page tables need more, then from 16 MiB):
 *
 *   0x1000            struct mv_guest_info
 *   0x10000-0x7f000   page tables, GDT, IDT, TSS, CPL0 stubs and stack
 *   0x7f000-0x9f000   CPL3 stacks, 16 KiB per vCPU, vCPU 0 on top
 *   0x100000-         the guest image (guest/guest.ld), below 16 MiB
 *   scratch           from the end of the tables or 16 MiB, to the end
 *                     of RAM below 4 GiB
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/vmm.h>

#include "abi.h"
#include "boot.h"
#include "loader.h"

#define MV_VM_MAX_VCPUS 8
#define INFO_GPA 0x1000ull
#define LOW_TABLES 0x10000ull
#define LOW_TABLES_END 0x7f000ull
#define STACK_TOP 0x9f000ull
#define STACK_SIZE 0x4000ull
#define HIGH_TABLES (16ull << 20)
#define RAW_BASE 0x100000ull
#define CONSOLE_KEEP (64u << 10)
#define GiB (1ull << 30)
#define MiB (1ull << 20)

/* Per vCPU: its thread and what its last run ended with. */
struct vm_vcpu {
	struct mv_vm *vm;
	struct mv_vcpu *v;
	unsigned index;
	pthread_t thread;
	enum mv_vm_end end;
	uint32_t status, vector;
};

struct mv_vm {
	struct mv_machine *m;
	struct mv_as *mem, *io;
	struct mv_kvm *kvm;
	struct mv_region *console_mr;
	struct mv_vm_opts opts;
	unsigned nr_vcpus;
	struct vm_vcpu vcpu[MV_VM_MAX_VCPUS];
	mv_gva_t entry;
	struct mv_x86_boot layout; /* planned by mv_vm_new() */
	int layout_error;
	mv_gpa_t scratch;
	uint64_t ram_below_4g, ram_above_4g;
	pthread_mutex_t lock; /* the console, the run's result */
	char *console;
	size_t console_len;
	bool finished;
	unsigned nr_halted;
	struct mv_vm_result result;
};

/* ---- the console (port 0x3f8, through the io address space) -------- */

static unsigned console_write(void *opaque, uint64_t addr, uint64_t data,
			      unsigned size)
{
	struct mv_vm *vm = opaque;
	char c = (char)data;

	(void)size;
	if (addr) /* only THR; the other UART registers are ignored */
		return MV_MEMTX_OK;
	pthread_mutex_lock(&vm->lock);
	if (vm->console_len + 1 < CONSOLE_KEEP) {
		vm->console[vm->console_len++] = c;
		vm->console[vm->console_len] = '\0';
	}
	if (vm->opts.console) {
		fputc(c, vm->opts.console);
		if (c == '\n')
			fflush(vm->opts.console);
	}
	pthread_mutex_unlock(&vm->lock);
	return MV_MEMTX_OK;
}

static unsigned console_read(void *opaque, uint64_t addr, uint64_t *data,
			     unsigned size)
{
	(void)opaque;
	(void)size;
	/* LSR (offset 5): transmitter empty, so polling guests go on. */
	*data = addr == 5 ? 0x60 : 0;
	return MV_MEMTX_OK;
}

static const struct mv_region_ops console_ops = {
	.read = console_read,
	.write = console_write,
	.valid = { .min_access_size = 1, .max_access_size = 1 },
	.impl = { .min_access_size = 1, .max_access_size = 1 },
};

static int add_console(struct mv_vm *vm)
{
	int ret;

	/* Not calloc(): zeroing 64 KiB faults in 16 pages a short run never
	 * uses (bench/vmstart); the buffer is kept NUL-terminated. */
	vm->console = malloc(CONSOLE_KEEP);
	if (!vm->console)
		return -ENOMEM;
	vm->console[0] = '\0';
	if (!vm->io)
		return 0;
	ret = mv_region_new_io(vm->m, "memvirt-console", 8, &console_ops, vm,
			       &vm->console_mr);
	if (ret)
		return ret;
	return mv_region_add_subregion_overlap(
		mv_as_root(vm->io), MV_GUEST_PORT_CONSOLE, vm->console_mr, 100);
}

const char *mv_vm_console(const struct mv_vm *vm, size_t *len)
{
	if (len)
		*len = vm->console_len;
	return vm->console;
}

/* ---- the exit and fault ports ---------------------------------------- */

static uint32_t port_value(const void *data, unsigned size)
{
	const uint8_t *b = data;
	uint32_t v = 0;
	unsigned i;

	for (i = 0; i < size && i < 4; i++)
		v |= (uint32_t)b[i] << (8 * i);
	return v;
}

/*
 * Whether the #GP being reported was raised by a `hlt` at CPL3: the stub
 * runs on the CPU-pushed frame [error code, rip, cs, ...] at %rsp, and
 * the tables are identity-mapped, so GVAs are GPAs.
 */
static bool faulted_on_hlt(struct mv_vm *vm, struct mv_vcpu *v)
{
	uint64_t frame[3];
	uint8_t insn = 0;
	struct kvm_regs r;

	if (mv_vcpu_get_regs(v, &r) ||
	    mv_as_read(vm->mem, r.rsp, frame, sizeof(frame)) ||
	    (frame[2] & 3) != 3 || mv_as_read(vm->mem, frame[1], &insn, 1))
		return false;
	return insn == 0xf4;
}

static int pio_hook(void *opaque, struct mv_vcpu *v, uint16_t port,
		    const void *data, unsigned size)
{
	struct vm_vcpu *c = opaque;

	(void)v;
	if (port == MV_GUEST_PORT_EXIT) {
		c->status = port_value(data, size);
		c->end = MV_VM_END_EXIT;
		return c->vm->opts.exit_port_continues ? 0 : 1;
	}
	if (port == MV_GUEST_PORT_FAULT) {
		c->vector = port_value(data, size);
		if (c->vector == 13 && faulted_on_hlt(c->vm, v))
			return 0; /* the stub's own hlt follows */
		c->end = MV_VM_END_FAULT;
		return 1;
	}
	return 0;
}

/* ---- creation --------------------------------------------------------- */

/* The RAM below 4 GiB that holds 1 MiB, and the RAM at 4 GiB. */
static void find_ram(struct mv_vm *vm)
{
	struct mv_flatview *fv = mv_as_get_flatview(vm->mem);
	const struct mv_flat_range *r;

	r = mv_flatview_lookup(fv, MiB);
	if (r && mv_region_kind(r->mr) == MV_REGION_RAM && !r->readonly)
		vm->ram_below_4g = r->last + 1 < 4 * GiB ? r->last + 1 :
							   4 * GiB;
	r = mv_flatview_lookup(fv, 4 * GiB);
	if (r && mv_region_kind(r->mr) == MV_REGION_RAM && !r->readonly)
		vm->ram_above_4g = r->last + 1 - 4 * GiB;
	mv_flatview_unref(fv);
}

static int create_vcpus(struct mv_vm *vm)
{
	unsigned i;
	int ret;

	for (i = 0; i < vm->nr_vcpus; i++) {
		struct vm_vcpu *c = &vm->vcpu[i];

		c->vm = vm;
		c->index = i;
		ret = mv_vcpu_new(vm->kvm, i, &c->v);
		if (!ret)
			ret = mv_vcpu_set_supported_cpuid(c->v);
		if (ret)
			return ret;
		mv_vcpu_set_pio_hook(c->v, pio_hook, c);
	}
	return 0;
}

static int plan_layout(struct mv_vm *vm);

int mv_vm_new(struct mv_machine *m, const struct mv_vm_opts *o,
	      struct mv_vm **out)
{
	static const struct mv_vm_opts defaults;
	struct mv_vm *vm;
	int ret;

	o = o ? o : &defaults;
	if (o->nr_vcpus > MV_VM_MAX_VCPUS)
		return -EINVAL;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->m = m;
	vm->opts = *o;
	vm->nr_vcpus = o->nr_vcpus ? o->nr_vcpus : 1;
	vm->mem = mv_machine_find_as(m, "memory");
	vm->io = mv_machine_find_as(m, "I/O");
	pthread_mutex_init(&vm->lock, NULL);
	ret = vm->mem ? 0 : -ENOENT;
	if (!ret)
		ret = add_console(vm);
	if (!ret)
		ret = mv_kvm_new(&o->kvm, &vm->kvm);
	if (!ret)
		ret = mv_kvm_attach(vm->kvm, vm->mem, 0);
	if (!ret)
		ret = create_vcpus(vm);
	if (ret) {
		mv_vm_free(vm);
		return ret;
	}
	mv_kvm_set_io_as(vm->kvm, vm->io);
	find_ram(vm);
	vm->layout_error = plan_layout(vm);
	*out = vm;
	return 0;
}

void mv_vm_free(struct mv_vm *vm)
{
	if (!vm)
		return;
	mv_kvm_free(vm->kvm);
	if (vm->console_mr) {
		mv_region_del_subregion(mv_as_root(vm->io), vm->console_mr);
		mv_region_unref(vm->console_mr);
	}
	pthread_mutex_destroy(&vm->lock);
	free(vm->console);
	free(vm);
}

struct mv_kvm *mv_vm_kvm(const struct mv_vm *vm)
{
	return vm->kvm;
}

struct mv_vcpu *mv_vm_vcpu(const struct mv_vm *vm, unsigned i)
{
	return i < vm->nr_vcpus ? vm->vcpu[i].v : NULL;
}

struct mv_machine *mv_vm_machine(const struct mv_vm *vm)
{
	return vm->m;
}

struct mv_as *mv_vm_memory(const struct mv_vm *vm)
{
	return vm->mem;
}

/* ---- loading and booting ----------------------------------------------- */

int mv_vm_read_image(const char *path, void **buf, size_t *len,
		     struct mv_error *err)
{
	return mv_image_read_file(path, buf, len, err);
}

int mv_vm_load(struct mv_vm *vm, const void *image, size_t len,
	       enum mv_image_kind kind, struct mv_error *err)
{
	static const enum mv_image_format fmt[] = {
		[MV_GUEST_IMAGE_AUTO] = MV_IMAGE_AUTO,
		[MV_GUEST_IMAGE_RAW] = MV_IMAGE_RAW,
		[MV_GUEST_IMAGE_ELF] = MV_IMAGE_ELF,
	};
	struct mv_image img;
	int ret;

	ret = mv_image_parse(image, len, fmt[kind], RAW_BASE, &img, err);
	if (!ret)
		ret = mv_image_load(vm->mem, &img, err);
	if (!ret)
		vm->entry = img.entry;
	return ret;
}

static uint64_t map_end(const struct mv_vm *vm)
{
	uint64_t end = vm->opts.map_end;

	if (!end) {
		end = 4 * GiB + vm->ram_above_4g;
		if (end < 4 * GiB)
			end = 4 * GiB;
	}
	return (end + 2 * MiB - 1) & ~(2 * MiB - 1);
}

/*
 * Place the tables: low memory if they fit, else from 16 MiB; the scratch
 * area follows.  Planned once at creation so mv_vm_scratch() is known
 * before boot.
 */
static int plan_layout(struct mv_vm *vm)
{
	struct mv_x86_boot *b = &vm->layout;
	uint64_t need;

	b->map_end = map_end(vm);
	b->pages_4k = vm->opts.pages_4k;
	b->nr_vcpus = vm->nr_vcpus;
	need = mv_x86_boot_tables_size(b);
	if (!need)
		return -EINVAL;
	if (need <= LOW_TABLES_END - LOW_TABLES) {
		b->tables = LOW_TABLES;
		b->tables_size = LOW_TABLES_END - LOW_TABLES;
		vm->scratch = HIGH_TABLES;
	} else {
		b->tables = HIGH_TABLES;
		b->tables_size = (need + 2 * MiB - 1) & ~(2 * MiB - 1);
		vm->scratch = HIGH_TABLES + b->tables_size;
	}
	return vm->ram_below_4g < vm->scratch + 2 * MiB ? -ENOSPC : 0;
}

void mv_vm_scratch(const struct mv_vm *vm, mv_gpa_t *gpa, uint64_t *size)
{
	*gpa = vm->scratch;
	*size = vm->ram_below_4g > vm->scratch ?
			vm->ram_below_4g - vm->scratch :
			0;
}

mv_gpa_t mv_vm_info_gpa(const struct mv_vm *vm)
{
	(void)vm;
	return INFO_GPA;
}

static int boot_vcpu(struct mv_vm *vm, struct vm_vcpu *c, struct mv_x86_boot *b)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int ret;

	b->stack_top = STACK_TOP - c->index * STACK_SIZE;
	b->vcpu = c->index;
	b->arg[1] = c->index;
	ret = mv_vcpu_get_sregs(c->v, &sregs);
	if (!ret)
		ret = mv_x86_boot_build(vm->mem, b, &sregs, &regs);
	if (!ret)
		ret = mv_vcpu_set_sregs(c->v, &sregs);
	if (!ret)
		ret = mv_vcpu_set_regs(c->v, &regs);
	return ret;
}

int mv_vm_boot(struct mv_vm *vm, const struct mv_guest_info *info,
	       struct mv_error *err)
{
	struct mv_x86_boot b = vm->layout;
	struct mv_guest_info gi = *info;
	unsigned i;
	int ret;

	if (!vm->entry) {
		snprintf(err->msg, sizeof(err->msg), "no guest loaded");
		return -EINVAL;
	}
	if (vm->layout_error) {
		snprintf(err->msg, sizeof(err->msg),
			 "guest RAM below 4 GiB (%" PRIu64 " MiB) is too small "
			 "for the boot layout (page tables, stacks, image and "
			 "scratch need %" PRIu64 " MiB)",
			 vm->ram_below_4g >> 20, (vm->scratch >> 20) + 2);
		return vm->layout_error;
	}
	b.entry = vm->entry;
	b.arg[0] = INFO_GPA;
	gi.magic = MV_GUEST_INFO_MAGIC;
	gi.ram_below_4g = vm->ram_below_4g;
	gi.ram_above_4g = vm->ram_above_4g;
	gi.ram_size = vm->ram_below_4g + vm->ram_above_4g;
	ret = mv_as_write(vm->mem, INFO_GPA, &gi, sizeof(gi));
	for (i = 0; i < vm->nr_vcpus && !ret; i++)
		ret = boot_vcpu(vm, &vm->vcpu[i], &b);
	if (ret && !err->msg[0])
		snprintf(err->msg, sizeof(err->msg),
			 "setting up long mode failed: %s", strerror(-ret));
	return ret;
}

/* ---- running ----------------------------------------------------------- */

int mv_vm_describe_fault(struct mv_vm *vm, unsigned vcpu, uint32_t vector,
			 char *msg, size_t len)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	int ret;

	if (vcpu >= vm->nr_vcpus)
		return -EINVAL;
	ret = mv_vcpu_get_regs(vm->vcpu[vcpu].v, &r);
	if (!ret)
		ret = mv_vcpu_get_sregs(vm->vcpu[vcpu].v, &s);
	if (!ret)
		ret = mv_x86_describe_fault(vm->mem, vector, &r, &s, msg, len);
	return ret;
}

static void set_result(struct vm_vcpu *c, const struct mv_vcpu_exit *ex,
		       int error)
{
	struct mv_vm_result *res = &c->vm->result;

	res->vcpu = c->index;
	res->error = error;
	if (error) {
		res->end = MV_VM_END_ERROR;
		snprintf(res->msg, sizeof(res->msg), "vCPU %u: KVM_RUN: %s",
			 c->index, strerror(-error));
		return;
	}
	switch (ex->kind) {
	case MV_VCPU_EXIT_GUEST_EXIT:
		res->end = c->end;
		res->status = c->status;
		if (c->end == MV_VM_END_FAULT)
			mv_vm_describe_fault(c->vm, c->index, c->vector,
					     res->msg, sizeof(res->msg));
		else
			snprintf(res->msg, sizeof(res->msg),
				 "guest exited with status %u", c->status);
		break;
	case MV_VCPU_EXIT_HLT:
		res->end = MV_VM_END_HLT;
		snprintf(res->msg, sizeof(res->msg), "%s", ex->msg);
		break;
	case MV_VCPU_EXIT_STOPPED:
		res->end = MV_VM_END_STOPPED;
		snprintf(res->msg, sizeof(res->msg), "stopped");
		break;
	default:
		res->end = MV_VM_END_ERROR;
		snprintf(res->msg, sizeof(res->msg), "%s", ex->msg);
		break;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vm_vcpu *c = arg;
	struct mv_vm *vm = c->vm;
	struct mv_vcpu_exit ex;
	bool first = false;
	unsigned i;
	int ret;

	ret = mv_vcpu_run(c->v, &ex);
	pthread_mutex_lock(&vm->lock);
	/* A halted vCPU ends the run only once every vCPU has halted. */
	if (!ret && ex.kind == MV_VCPU_EXIT_HLT &&
	    ++vm->nr_halted < vm->nr_vcpus) {
		pthread_mutex_unlock(&vm->lock);
		return NULL;
	}
	if (!vm->finished) {
		vm->finished = first = true;
		set_result(c, &ex, ret);
	}
	pthread_mutex_unlock(&vm->lock);
	if (first)
		for (i = 0; i < vm->nr_vcpus; i++)
			if (i != c->index)
				mv_vcpu_kick(vm->vcpu[i].v);
	return NULL;
}

int mv_vm_run(struct mv_vm *vm, struct mv_vm_result *res)
{
	unsigned i, started = 0;
	int ret = 0;

	vm->finished = false;
	vm->nr_halted = 0;
	memset(&vm->result, 0, sizeof(vm->result));
	for (i = 0; i < vm->nr_vcpus; i++)
		mv_vcpu_clear_stop(vm->vcpu[i].v);
	/*
	 * vCPU 0 runs on the calling thread: no thread to create, no
	 * cross-CPU wake-up to join it (bench/vmstart).  The others get
	 * their own threads.
	 */
	for (i = 1; i < vm->nr_vcpus && !ret; i++) {
		ret = -pthread_create(&vm->vcpu[i].thread, NULL, vcpu_thread,
				      &vm->vcpu[i]);
		if (!ret)
			started++;
	}
	if (ret)
		mv_vm_stop(vm); /* vCPU 0 then returns at once: stopped */
	vcpu_thread(&vm->vcpu[0]);
	for (i = 1; i <= started; i++)
		pthread_join(vm->vcpu[i].thread, NULL);
	*res = vm->result;
	return ret;
}

void mv_vm_stop(struct mv_vm *vm)
{
	unsigned i;

	for (i = 0; i < vm->nr_vcpus; i++)
		mv_vcpu_kick(vm->vcpu[i].v);
}
