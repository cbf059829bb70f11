// SPDX-License-Identifier: MIT
/*
 * The ioctl seam: every system call of the KVM layer goes through
 * mv_kvm_ioctl() and friends, which count calls, inject failures for
 * tests, and pass the rest to a kernel -- the host's, or a fake one.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static int host_open(struct mv_kvm_sys *s, const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	(void)s;
	return fd < 0 ? -errno : fd;
}

static int host_close(struct mv_kvm_sys *s, int fd)
{
	(void)s;
	return close(fd) ? -errno : 0;
}

static long host_ioctl(struct mv_kvm_sys *s, int fd, unsigned long req,
		       void *arg)
{
	int ret = ioctl(fd, req, arg);

	(void)s;
	return ret < 0 ? -errno : ret;
}

static int host_mmap(struct mv_kvm_sys *s, int fd, size_t len, int prot,
		     off_t off, void **out)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, off);

	(void)s;
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static int host_munmap(struct mv_kvm_sys *s, void *addr, size_t len)
{
	(void)s;
	return munmap(addr, len) ? -errno : 0;
}

static const struct mv_kvm_sys_ops host_ops = {
	.open = host_open,
	.close = host_close,
	.ioctl = host_ioctl,
	.mmap = host_mmap,
	.munmap = host_munmap,
};

void mv_kvm_sys_init_host(struct mv_kvm_sys *s)
{
	*s = (struct mv_kvm_sys){ .ops = &host_ops };
}

/* Whether this call is the one a test asked to fail. */
static bool inject(struct mv_kvm_sys *s, unsigned long req)
{
	if (!__atomic_load_n(&s->fail_at, __ATOMIC_RELAXED) ||
	    (s->fail_req && s->fail_req != req))
		return false;
	return __atomic_sub_fetch(&s->fail_at, 1, __ATOMIC_RELAXED) == 0;
}

long mv_kvm_ioctl(struct mv_kvm_sys *s, int fd, unsigned long req, void *arg)
{
	__atomic_add_fetch(&s->nr_ioctls, 1, __ATOMIC_RELAXED);
	if (inject(s, req))
		return -s->fail_errno;
	return s->ops->ioctl(s, fd, req, arg);
}

int mv_kvm_open_dev(struct mv_kvm_sys *s, const char *path)
{
	return s->ops->open(s, path);
}

int mv_kvm_close_fd(struct mv_kvm_sys *s, int fd)
{
	return s->ops->close(s, fd);
}

int mv_kvm_mmap(struct mv_kvm_sys *s, int fd, size_t len, int prot, off_t off,
		void **out)
{
	return s->ops->mmap(s, fd, len, prot, off, out);
}

int mv_kvm_munmap(struct mv_kvm_sys *s, void *addr, size_t len)
{
	return s->ops->munmap(s, addr, len);
}
