// SPDX-License-Identifier: MIT
/*
 * The fake kernel behind the ioctl seam (include/memvirt/kvm.h), backed
 * by the model: /dev/kvm, one model per VM fd, guest_memfd fds, and the
 * memslot, dirty-log and capability ioctls with the model's semantics.
 * Fds are numbers from 1000 up that mean nothing to the host kernel.  No
 * vCPU can be created (KVM_CREATE_VCPU gives -ENOTSUP), so the fake
 * offers no dirty ring unless a test sets KVM_CAP_DIRTY_LOG_RING.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sys/ioctl.h>

#include <memvirt/kvm.h>
#include <memvirt/kvm_model.h>

#include "backend.h"

#define FAKE_FD_BASE 1000
#define FAKE_MAX_FDS 256
#define FAKE_MAX_SLOTS 32764 /* KVM_MEM_SLOTS_NUM minus x86's 3 */

/* Not in the 6.1 uapi headers this project builds with. */
#define MV_KVM_CAP_USER_MEMORY2 231
#define MV_KVM_CAP_GUEST_MEMFD 234
#define MV_KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct mv_region2)
struct mv_create_guest_memfd {
	uint64_t size;
	uint64_t flags;
	uint64_t reserved[6];
};
#define MV_KVM_CREATE_GUEST_MEMFD \
	_IOWR(KVMIO, 0xd4, struct mv_create_guest_memfd)

enum fake_fd_kind {
	FD_FREE,
	FD_DEV,
	FD_VM,
	FD_GMEM,
};

/*
 * struct fake_fd - one open fd.  FD_VM: @model (owned).  FD_GMEM: @vm is
 * the table index of its VM (-1 once that VM is closed) and @model_fd the
 * file's number inside the VM's model.
 */
struct fake_fd {
	enum fake_fd_kind kind;
	struct mv_kvm_model *model;
	int vm;
	int model_fd;
};

struct fake_kernel {
	struct mv_kvm_sys sys;
	struct fake_fd fd[FAKE_MAX_FDS];
	struct mv_kvm_model_params params; /* for VMs created from now */
};

static struct fake_kernel *fake_of(struct mv_kvm_sys *s)
{
	return s->opaque;
}

static int fd_alloc(struct fake_kernel *fk, enum fake_fd_kind kind)
{
	int i;

	for (i = 0; i < FAKE_MAX_FDS; i++) {
		if (fk->fd[i].kind == FD_FREE) {
			fk->fd[i] = (struct fake_fd){ .kind = kind, .vm = -1 };
			return i;
		}
	}
	return -EMFILE;
}

/* The table index of @fd, or -EBADF if it is not open. */
static int fd_index(struct fake_kernel *fk, int fd)
{
	int i = fd - FAKE_FD_BASE;

	if (i < 0 || i >= FAKE_MAX_FDS || fk->fd[i].kind == FD_FREE)
		return -EBADF;
	return i;
}

static int fake_open(struct mv_kvm_sys *s, const char *path)
{
	int i = fd_alloc(fake_of(s), FD_DEV);

	(void)path;
	return i < 0 ? i : FAKE_FD_BASE + i;
}

static void close_vm(struct fake_kernel *fk, int i)
{
	int j;

	for (j = 0; j < FAKE_MAX_FDS; j++)
		if (fk->fd[j].kind == FD_GMEM && fk->fd[j].vm == i)
			fk->fd[j].vm = -1; /* now another VM's file */
	mv_kvm_model_free(fk->fd[i].model);
}

static int fake_close(struct mv_kvm_sys *s, int fd)
{
	struct fake_kernel *fk = fake_of(s);
	int i = fd_index(fk, fd);
	struct fake_fd *f;

	if (i < 0)
		return i;
	f = &fk->fd[i];
	if (f->kind == FD_VM)
		close_vm(fk, i);
	else if (f->kind == FD_GMEM && f->vm >= 0)
		mv_kvm_model_gmem_close(fk->fd[f->vm].model, f->model_fd);
	*f = (struct fake_fd){ .kind = FD_FREE, .vm = -1 };
	return 0;
}

static long check_extension(const struct mv_kvm_model_params *p, long cap)
{
	switch (cap) {
	case KVM_CAP_USER_MEMORY:
		return 1;
	case KVM_CAP_NR_MEMSLOTS:
		return p->nr_slots;
	case KVM_CAP_MULTI_ADDRESS_SPACE:
		return p->nr_as > 1 ? p->nr_as : 0;
	case KVM_CAP_READONLY_MEM:
		return p->readonly_mem;
	case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
		return p->manual_protect;
	case KVM_CAP_DIRTY_LOG_RING:
		return p->ring_max_bytes;
	case MV_KVM_CAP_USER_MEMORY2:
		return p->user_memory2;
	case MV_KVM_CAP_GUEST_MEMFD:
		return p->guest_memfd;
	default:
		return 0;
	}
}

static long create_vm(struct fake_kernel *fk)
{
	struct mv_kvm_model *m;
	int i, ret = mv_kvm_model_new(&fk->params, &m);

	if (ret)
		return ret;
	i = fd_alloc(fk, FD_VM);
	if (i < 0) {
		mv_kvm_model_free(m);
		return i;
	}
	fk->fd[i].model = m;
	return FAKE_FD_BASE + i;
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
		return check_extension(&fk->params, (long)arg);
	default:
		return -ENOTTY;
	}
}

/* ---- VM ioctls ----------------------------------------------------------- */

/*
 * A guest_memfd field in the model's terms: this VM's file -> its model
 * number; another open fd -> a number the model does not know (EINVAL);
 * anything else -> -1 (EBADF).
 */
static uint32_t gmem_fd_for_model(struct fake_kernel *fk, int vm, uint32_t fd)
{
	int i = fd_index(fk, (int)fd);

	if (i < 0)
		return UINT32_MAX;
	if (fk->fd[i].kind == FD_GMEM && fk->fd[i].vm == vm)
		return (uint32_t)fk->fd[i].model_fd;
	return INT32_MAX;
}

static long set_region(struct fake_kernel *fk, int vm, const void *arg, bool v2)
{
	const struct kvm_userspace_memory_region *r1 = arg;
	const struct mv_region2 *r2 = arg;
	struct mv_kvm_model_region r = {
		.slot = r1->slot,
		.flags = r1->flags,
		.gpa = r1->guest_phys_addr,
		.size = r1->memory_size,
		.hva = r1->userspace_addr,
	};

	if (v2) {
		r.gmem_offset = r2->guest_memfd_offset;
		r.gmem_fd = gmem_fd_for_model(fk, vm, r2->guest_memfd);
	}
	return mv_kvm_model_set_region(fk->fd[vm].model, &r, v2);
}

static long create_gmem(struct fake_kernel *fk, int vm,
			const struct mv_create_guest_memfd *g)
{
	struct mv_kvm_model *m = fk->fd[vm].model;
	int model_fd, i, ret;

	ret = mv_kvm_model_gmem_create(m, g->size, g->flags, &model_fd);
	if (ret)
		return ret;
	i = fd_alloc(fk, FD_GMEM);
	if (i < 0) {
		mv_kvm_model_gmem_close(m, model_fd);
		return i;
	}
	fk->fd[i].vm = vm;
	fk->fd[i].model_fd = model_fd;
	return FAKE_FD_BASE + i;
}

static long vm_ioctl(struct fake_kernel *fk, int vm, unsigned long req,
		     void *arg)
{
	struct mv_kvm_model *m = fk->fd[vm].model;
	struct kvm_enable_cap *ec = arg;
	struct kvm_dirty_log *d = arg;
	struct kvm_clear_dirty_log *c = arg;

	switch (req) {
	case KVM_CHECK_EXTENSION:
		return check_extension(mv_kvm_model_params(m), (long)arg);
	case KVM_ENABLE_CAP:
		return mv_kvm_model_enable_cap(m, ec->cap, ec->flags,
					       ec->args[0]);
	case KVM_SET_USER_MEMORY_REGION:
		return set_region(fk, vm, arg, false);
	case MV_KVM_SET_USER_MEMORY_REGION2:
		return set_region(fk, vm, arg, true);
	case MV_KVM_CREATE_GUEST_MEMFD:
		return create_gmem(fk, vm, arg);
	case KVM_GET_DIRTY_LOG:
		return mv_kvm_model_get_dirty_log(m, d->slot, d->dirty_bitmap,
						  SIZE_MAX);
	case KVM_CLEAR_DIRTY_LOG:
		return mv_kvm_model_clear_dirty_log(m, c->slot, c->first_page,
						    c->num_pages,
						    c->dirty_bitmap);
	case KVM_RESET_DIRTY_RINGS:
		return mv_kvm_model_reset_rings(m);
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
	int i = fd_index(fk, fd);

	if (i < 0)
		return i;
	switch (fk->fd[i].kind) {
	case FD_DEV:
		return dev_ioctl(fk, req, arg);
	case FD_VM:
		return vm_ioctl(fk, i, req, arg);
	default:
		return -ENOTTY;
	}
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

/* ---- the public fake ---------------------------------------------------- */

int mv_kvm_sys_fake_new(struct mv_kvm_sys **out)
{
	struct fake_kernel *fk = calloc(1, sizeof(*fk));
	int i;

	if (!fk)
		return -ENOMEM;
	fk->sys.ops = &fake_ops;
	fk->sys.opaque = fk;
	for (i = 0; i < FAKE_MAX_FDS; i++)
		fk->fd[i].vm = -1;
	mv_kvm_model_default_params(&fk->params);
	fk->params.ring_max_bytes = 0; /* no vCPUs, so no ring */
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
		if (fk->fd[i].kind == FD_VM)
			mv_kvm_model_free(fk->fd[i].model);
	free(fk);
}

int mv_kvm_sys_fake_set_cap(struct mv_kvm_sys *s, long cap, long value)
{
	struct mv_kvm_model_params *p = &fake_of(s)->params;

	switch (cap) {
	case KVM_CAP_READONLY_MEM:
		p->readonly_mem = value != 0;
		return 0;
	case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
		if (value < 0 || value > 3)
			return -EINVAL;
		p->manual_protect = (uint32_t)value;
		return 0;
	case KVM_CAP_NR_MEMSLOTS:
		if (value <= 0 || value > FAKE_MAX_SLOTS)
			return -EINVAL;
		p->nr_slots = (unsigned)value;
		return 0;
	case KVM_CAP_MULTI_ADDRESS_SPACE:
		if (value < 0 || value > 2)
			return -EINVAL;
		p->nr_as = value ? (unsigned)value : 1;
		return 0;
	case KVM_CAP_DIRTY_LOG_RING:
		if (value < 0 || value > UINT32_MAX)
			return -EINVAL;
		p->ring_max_bytes = (uint32_t)value;
		return 0;
	case MV_KVM_CAP_USER_MEMORY2:
		p->user_memory2 = value != 0;
		return 0;
	case MV_KVM_CAP_GUEST_MEMFD:
		p->guest_memfd = value != 0;
		return 0;
	default:
		return -EINVAL;
	}
}

int mv_kvm_sys_fake_guest_write(struct mv_kvm_sys *s, int vm_fd, uint64_t gpa)
{
	struct fake_kernel *fk = fake_of(s);
	enum mv_kvm_model_exit exit;
	int i = fd_index(fk, vm_fd), ret;

	if (i < 0 || fk->fd[i].kind != FD_VM)
		return -EBADF;
	ret = mv_kvm_model_guest_write(fk->fd[i].model, MV_KVM_MODEL_NO_VCPU,
				       gpa, &exit);
	if (ret)
		return ret;
	return exit == MV_KVM_MODEL_EXIT_NONE ? 0 : -EFAULT; /* MMIO exit */
}
