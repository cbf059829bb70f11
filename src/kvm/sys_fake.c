// SPDX-License-Identifier: MIT
/*
 * A minimal fake kernel behind the ioctl seam, so the memslot listener and
 * dirty logging are testable without /dev/kvm.  It keeps, per VM, the
 * slot table with KVM_SET_USER_MEMORY_REGION's validation order and errno
 * (reference kvm-memslots.md §1.2; no REGION2, one address space) and the
 * dirty bitmaps of §2.1-2.2.  vCPUs cannot be created.  Fds are numbers
 * from 1000 up that mean nothing to the host kernel.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FAKE_FD_BASE 1000
#define FAKE_MAX_FDS 64
#define FAKE_NR_SLOTS 32764
#define FAKE_USER_PTR_MAX 0x7ffffffff000ull
#define FAKE_MAX_GFN ((1ull << 40) - 1) /* 52-bit GPAs */
#define FAKE_MAX_PAGES ((1ull << 31) - 1)

struct fake_slot {
	bool used;
	uint32_t flags;
	uint64_t gfn, npages, hva;
	unsigned long *bitmap;
};

struct fake_vm {
	struct fake_slot *slot; /* FAKE_NR_SLOTS entries */
	bool manual, initially_set;
};

enum fake_fd_kind {
	FD_FREE,
	FD_DEV,
	FD_VM
};

struct fake_kernel {
	struct mv_kvm_sys sys;
	enum fake_fd_kind kind[FAKE_MAX_FDS];
	struct fake_vm *vm[FAKE_MAX_FDS];
	long readonly_mem, manual_protect, nr_memslots;
};

static struct fake_kernel *fake_of(struct mv_kvm_sys *s)
{
	return s->opaque;
}

static int fd_alloc(struct fake_kernel *fk, enum fake_fd_kind kind)
{
	int i;

	for (i = 0; i < FAKE_MAX_FDS; i++) {
		if (fk->kind[i] == FD_FREE) {
			fk->kind[i] = kind;
			return FAKE_FD_BASE + i;
		}
	}
	return -EMFILE;
}

static int fd_index(struct fake_kernel *fk, int fd, enum fake_fd_kind kind)
{
	int i = fd - FAKE_FD_BASE;

	if (i < 0 || i >= FAKE_MAX_FDS || fk->kind[i] != kind)
		return -EBADF;
	return i;
}

static void vm_free(struct fake_vm *vm)
{
	unsigned i;

	if (!vm)
		return;
	for (i = 0; i < FAKE_NR_SLOTS; i++)
		free(vm->slot[i].bitmap);
	free(vm->slot);
	free(vm);
}

static int fake_open(struct mv_kvm_sys *s, const char *path)
{
	(void)path;
	return fd_alloc(fake_of(s), FD_DEV);
}

static int fake_close(struct mv_kvm_sys *s, int fd)
{
	struct fake_kernel *fk = fake_of(s);
	int i = fd - FAKE_FD_BASE;

	if (i < 0 || i >= FAKE_MAX_FDS || fk->kind[i] == FD_FREE)
		return -EBADF;
	vm_free(fk->vm[i]);
	fk->vm[i] = NULL;
	fk->kind[i] = FD_FREE;
	return 0;
}

static long check_extension(struct fake_kernel *fk, long cap)
{
	switch (cap) {
	case KVM_CAP_NR_MEMSLOTS:
		return fk->nr_memslots;
	case KVM_CAP_READONLY_MEM:
		return fk->readonly_mem;
	case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
		return fk->manual_protect;
	case KVM_CAP_USER_MEMORY:
		return 1;
	default:
		return 0;
	}
}

static long create_vm(struct fake_kernel *fk)
{
	struct fake_vm *vm = calloc(1, sizeof(*vm));
	int fd;

	if (!vm)
		return -ENOMEM;
	vm->slot = calloc(FAKE_NR_SLOTS, sizeof(*vm->slot));
	fd = vm->slot ? fd_alloc(fk, FD_VM) : -ENOMEM;
	if (fd < 0) {
		vm_free(vm);
		return fd;
	}
	fk->vm[fd - FAKE_FD_BASE] = vm;
	return fd;
}

static long dev_ioctl(struct fake_kernel *fk, unsigned long req, void *arg)
{
	switch (req) {
	case KVM_GET_API_VERSION:
		return KVM_API_VERSION;
	case KVM_CREATE_VM:
		return create_vm(fk);
	case KVM_GET_VCPU_MMAP_SIZE:
		return 3 * 4096;
	case KVM_CHECK_EXTENSION:
		return check_extension(fk, (long)arg);
	default:
		return -ENOTTY;
	}
}

/* ---- memslots ------------------------------------------------------- */

static size_t bitmap_longs(uint64_t npages)
{
	return (npages + 63) / 64 * (8 / sizeof(long));
}

/* A fresh log for @s, which is about to have @npages pages. */
static int slot_new_bitmap(struct fake_vm *vm, struct fake_slot *s,
			   uint64_t npages)
{
	size_t n = bitmap_longs(npages);

	free(s->bitmap);
	s->bitmap = calloc(n ? n : 1, sizeof(long));
	if (!s->bitmap)
		return -ENOMEM;
	if (vm->initially_set) {
		uint64_t i;

		for (i = 0; i < npages; i++)
			s->bitmap[i / (8 * sizeof(long))] |=
				1ul << (i % (8 * sizeof(long)));
	}
	return 0;
}

static bool overlaps_other(const struct fake_vm *vm, unsigned id, uint64_t gfn,
			   uint64_t npages)
{
	unsigned i;

	for (i = 0; i < FAKE_NR_SLOTS; i++) {
		const struct fake_slot *o = &vm->slot[i];

		if (i != id && o->used && gfn < o->gfn + o->npages &&
		    o->gfn < gfn + npages)
			return true;
	}
	return false;
}

/* Steps 1-9 of §1.2: the format of the request alone. */
static int check_format(struct fake_kernel *fk,
			const struct kvm_userspace_memory_region *r)
{
	uint32_t valid = KVM_MEM_LOG_DIRTY_PAGES |
			 (fk->readonly_mem ? KVM_MEM_READONLY : 0);

	if ((uint16_t)r->slot >= fk->nr_memslots)
		return -EINVAL;
	if (r->flags & ~valid)
		return -EINVAL;
	if (r->memory_size % 4096 || r->guest_phys_addr % 4096)
		return -EINVAL;
	if (r->userspace_addr % 4096 ||
	    r->userspace_addr + r->memory_size < r->userspace_addr ||
	    r->userspace_addr + r->memory_size > FAKE_USER_PTR_MAX)
		return -EINVAL;
	if (r->slot >> 16)
		return -EINVAL;
	if (r->guest_phys_addr + r->memory_size < r->guest_phys_addr)
		return -EINVAL;
	if (r->memory_size / 4096 > FAKE_MAX_PAGES)
		return -EINVAL;
	return 0;
}

static long set_region(struct fake_kernel *fk, struct fake_vm *vm,
		       const struct kvm_userspace_memory_region *r)
{
	uint64_t gfn = r->guest_phys_addr / 4096,
		 npages = r->memory_size / 4096;
	struct fake_slot *s;
	bool log = r->flags & KVM_MEM_LOG_DIRTY_PAGES;
	int ret = check_format(fk, r);

	if (ret)
		return ret;
	s = &vm->slot[(uint16_t)r->slot];
	if (!npages) { /* DELETE */
		if (!s->used)
			return -EINVAL;
		free(s->bitmap);
		memset(s, 0, sizeof(*s));
		return 0;
	}
	if (s->used) {
		if (r->userspace_addr != s->hva || npages != s->npages ||
		    (r->flags ^ s->flags) & KVM_MEM_READONLY)
			return -EINVAL;
		if (gfn == s->gfn && r->flags == s->flags)
			return 0; /* no-op */
	}
	if ((!s->used || gfn != s->gfn) &&
	    overlaps_other(vm, (uint16_t)r->slot, gfn, npages))
		return -EEXIST;
	if (gfn + npages - 1 > FAKE_MAX_GFN)
		return -EINVAL;
	if (log && (!s->used || !(s->flags & KVM_MEM_LOG_DIRTY_PAGES))) {
		ret = slot_new_bitmap(vm, s, npages); /* MOVE keeps the bits */
		if (ret)
			return ret;
	} else if (!log) {
		free(s->bitmap);
		s->bitmap = NULL;
	}
	s->used = true;
	s->flags = r->flags;
	s->gfn = gfn;
	s->npages = npages;
	s->hva = r->userspace_addr;
	return 0;
}

/* ---- dirty logs ----------------------------------------------------- */

static long slot_for_log(struct fake_vm *vm, uint32_t slot,
			 struct fake_slot **out)
{
	if (slot >> 16 || (uint16_t)slot >= FAKE_NR_SLOTS)
		return -EINVAL;
	*out = &vm->slot[slot];
	if (!(*out)->used || !(*out)->bitmap)
		return -ENOENT;
	return 0;
}

static long get_dirty_log(struct fake_vm *vm, struct kvm_dirty_log *d)
{
	struct fake_slot *s;
	long ret = slot_for_log(vm, d->slot, &s);
	size_t n;

	if (ret)
		return ret;
	n = bitmap_longs(s->npages);
	memcpy(d->dirty_bitmap, s->bitmap, n * sizeof(long));
	if (!vm->manual)
		memset(s->bitmap, 0, n * sizeof(long));
	return 0;
}

static long clear_dirty_log(struct fake_vm *vm, struct kvm_clear_dirty_log *c)
{
	const unsigned long *user = c->dirty_bitmap;
	struct fake_slot *s;
	long ret = slot_for_log(vm, c->slot, &s);
	uint64_t i, bits = 8 * sizeof(long);

	if (ret)
		return ret;
	if (c->first_page % 64 || c->first_page > s->npages ||
	    c->num_pages > s->npages - c->first_page ||
	    (c->num_pages % 64 && c->first_page + c->num_pages != s->npages))
		return -EINVAL;
	for (i = 0; i < c->num_pages; i++) {
		uint64_t p = c->first_page + i;

		if (user[i / bits] >> (i % bits) & 1)
			s->bitmap[p / bits] &= ~(1ul << (p % bits));
	}
	return 0;
}

static long enable_cap(struct fake_kernel *fk, struct fake_vm *vm,
		       const struct kvm_enable_cap *ec)
{
	uint64_t a = ec->args[0];

	if (ec->cap != KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 || !fk->manual_protect)
		return -EINVAL;
	if (ec->flags || a & ~(uint64_t)fk->manual_protect ||
	    (a & KVM_DIRTY_LOG_INITIALLY_SET &&
	     !(a & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)))
		return -EINVAL;
	vm->manual = a & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
	vm->initially_set = a & KVM_DIRTY_LOG_INITIALLY_SET;
	return 0;
}

static long vm_ioctl(struct fake_kernel *fk, struct fake_vm *vm,
		     unsigned long req, void *arg)
{
	switch (req) {
	case KVM_CHECK_EXTENSION:
		return check_extension(fk, (long)arg);
	case KVM_ENABLE_CAP:
		return enable_cap(fk, vm, arg);
	case KVM_SET_USER_MEMORY_REGION:
		return set_region(fk, vm, arg);
	case KVM_GET_DIRTY_LOG:
		return get_dirty_log(vm, arg);
	case KVM_CLEAR_DIRTY_LOG:
		return clear_dirty_log(vm, arg);
	case KVM_CREATE_VCPU:
		return -ENOTSUP; /* the fake runs no guest */
	default:
		return -ENOTTY;
	}
}

static long fake_ioctl(struct mv_kvm_sys *s, int fd, unsigned long req,
		       void *arg)
{
	struct fake_kernel *fk = fake_of(s);
	int i = fd_index(fk, fd, FD_DEV);

	if (i >= 0)
		return dev_ioctl(fk, req, arg);
	i = fd_index(fk, fd, FD_VM);
	if (i < 0)
		return -EBADF;
	return vm_ioctl(fk, fk->vm[i], req, arg);
}

static int fake_mmap(struct mv_kvm_sys *s, int fd, size_t len, int prot,
		     off_t off, void **out)
{
	(void)s, (void)fd, (void)len, (void)prot, (void)off, (void)out;
	return -ENODEV;
}

static int fake_munmap(struct mv_kvm_sys *s, void *addr, size_t len)
{
	(void)s, (void)addr, (void)len;
	return -EINVAL;
}

static const struct mv_kvm_sys_ops fake_ops = {
	.open = fake_open,
	.close = fake_close,
	.ioctl = fake_ioctl,
	.mmap = fake_mmap,
	.munmap = fake_munmap,
};

int mv_kvm_sys_fake_new(struct mv_kvm_sys **out)
{
	struct fake_kernel *fk = calloc(1, sizeof(*fk));

	if (!fk)
		return -ENOMEM;
	fk->sys.ops = &fake_ops;
	fk->sys.opaque = fk;
	fk->readonly_mem = 1;
	fk->manual_protect = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
			     KVM_DIRTY_LOG_INITIALLY_SET;
	fk->nr_memslots = FAKE_NR_SLOTS;
	*out = &fk->sys;
	return 0;
}

void mv_kvm_sys_fake_free(struct mv_kvm_sys *s)
{
	struct fake_kernel *fk;
	int i;

	if (!s)
		return;
	fk = fake_of(s);
	for (i = 0; i < FAKE_MAX_FDS; i++)
		vm_free(fk->vm[i]);
	free(fk);
}

int mv_kvm_sys_fake_set_cap(struct mv_kvm_sys *s, long cap, long value)
{
	struct fake_kernel *fk = fake_of(s);

	switch (cap) {
	case KVM_CAP_READONLY_MEM:
		fk->readonly_mem = value;
		return 0;
	case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
		fk->manual_protect = value;
		return 0;
	case KVM_CAP_NR_MEMSLOTS:
		if (value <= 0 || value > FAKE_NR_SLOTS)
			return -EINVAL;
		fk->nr_memslots = value;
		return 0;
	default:
		return -EINVAL;
	}
}

int mv_kvm_sys_fake_guest_write(struct mv_kvm_sys *s, int vm_fd, uint64_t gpa)
{
	struct fake_kernel *fk = fake_of(s);
	int i = fd_index(fk, vm_fd, FD_VM);
	uint64_t gfn = gpa / 4096, bits = 8 * sizeof(long);
	unsigned id;

	if (i < 0)
		return i;
	for (id = 0; id < FAKE_NR_SLOTS; id++) {
		struct fake_slot *sl = &fk->vm[i]->slot[id];
		uint64_t p = gfn - sl->gfn;

		if (!sl->used || gfn < sl->gfn || p >= sl->npages)
			continue;
		if (sl->flags & KVM_MEM_READONLY)
			return -EFAULT;
		if (sl->bitmap)
			sl->bitmap[p / bits] |= 1ul << (p % bits);
		return 0;
	}
	return -EFAULT; /* an MMIO exit on real hardware */
}
