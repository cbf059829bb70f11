// SPDX-License-Identifier: MIT
/*
 * vCPUs and their run loop.  Exits the loop handles itself: port I/O
 * (through the io address space, after the caller's hook), MMIO (through
 * the memory address space -- including accesses to RAM whose slot is
 * momentarily missing during a commit), a full dirty ring (harvest), and
 * signals.  Everything else returns to the caller with an explanation.
 *
 * Kicking: mv_vcpu_kick() sets kvm_run.immediate_exit and sends SIGUSR1
 * to the vCPU's thread, so a KVM_RUN in progress returns EINTR and the
 * next one returns at once.  A no-op SIGUSR1 handler is installed when
 * the process has none (the default action would kill it).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define MV_VCPU_KICK_SIGNAL SIGUSR1

static void kick_handler(int sig)
{
	(void)sig;
}

/* Install a no-op handler for the kick signal unless one exists. */
static int kick_signal_setup(void)
{
	struct sigaction old, sa = { .sa_handler = kick_handler };

	if (sigaction(MV_VCPU_KICK_SIGNAL, NULL, &old))
		return -errno;
	if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)
		return 0;
	sigemptyset(&sa.sa_mask);
	return sigaction(MV_VCPU_KICK_SIGNAL, &sa, NULL) ? -errno : 0;
}

static int map_run(struct mv_vcpu *v)
{
	void *p;
	int ret;

	ret = mv_kvm_mmap(v->k->sys, v->fd, (size_t)v->k->run_size,
			  PROT_READ | PROT_WRITE, 0, &p);
	if (ret)
		return ret;
	v->run = p;
	return 0;
}

int mv_vcpu_new(struct mv_kvm *k, unsigned index, struct mv_vcpu **out)
{
	struct mv_vcpu *v;
	long ret;

	if (index >= MV_KVM_MAX_VCPUS)
		return -EINVAL;
	if (k->vcpu[index])
		return -EEXIST;
	ret = kick_signal_setup();
	if (ret)
		return (int)ret;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	ret = pthread_mutex_init(&v->run_lock, NULL);
	if (ret) {
		free(v);
		return -(int)ret;
	}
	v->k = k;
	v->index = index;
	ret = mv_kvm_ioctl(k->sys, k->vm_fd, KVM_CREATE_VCPU,
			   (void *)(uintptr_t)index);
	if (ret < 0)
		goto err_free;
	v->fd = (int)ret;
	ret = map_run(v);
	if (ret)
		goto err_close;
	if (k->dirty_mode == MV_KVM_DIRTY_RING) {
		ret = mv_kvm_vcpu_ring_map(v);
		if (ret)
			goto err_unmap;
	}
	pthread_mutex_lock(&k->lock);
	k->vcpu[index] = v;
	pthread_mutex_unlock(&k->lock);
	*out = v;
	return 0;
err_unmap:
	mv_kvm_munmap(k->sys, v->run, (size_t)k->run_size);
err_close:
	mv_kvm_close_fd(k->sys, v->fd);
err_free:
	pthread_mutex_destroy(&v->run_lock);
	free(v);
	return (int)ret;
}

void mv_vcpu_free(struct mv_vcpu *v)
{
	struct mv_kvm *k;

	if (!v)
		return;
	k = v->k;
	pthread_mutex_lock(&k->lock);
	if (v->ring && !k->closing)
		mv_kvm_rings_harvest(k); /* nothing logged is lost */
	k->vcpu[v->index] = NULL;
	pthread_mutex_unlock(&k->lock);
	if (v->ring)
		mv_kvm_munmap(k->sys, v->ring,
			      (size_t)k->ring_entries *
				      sizeof(struct kvm_dirty_gfn));
	mv_kvm_munmap(k->sys, v->run, (size_t)k->run_size);
	mv_kvm_close_fd(k->sys, v->fd);
	pthread_mutex_destroy(&v->run_lock);
	free(v);
}

int mv_vcpu_fd(const struct mv_vcpu *v)
{
	return v->fd;
}

unsigned mv_vcpu_index(const struct mv_vcpu *v)
{
	return v->index;
}

static int vcpu_ioctl(struct mv_vcpu *v, unsigned long req, void *arg)
{
	long ret = mv_kvm_ioctl(v->k->sys, v->fd, req, arg);

	return ret < 0 ? (int)ret : 0;
}

int mv_vcpu_get_regs(struct mv_vcpu *v, struct kvm_regs *r)
{
	return vcpu_ioctl(v, KVM_GET_REGS, r);
}

int mv_vcpu_set_regs(struct mv_vcpu *v, const struct kvm_regs *r)
{
	return vcpu_ioctl(v, KVM_SET_REGS, (void *)r);
}

int mv_vcpu_get_sregs(struct mv_vcpu *v, struct kvm_sregs *s)
{
	return vcpu_ioctl(v, KVM_GET_SREGS, s);
}

int mv_vcpu_set_sregs(struct mv_vcpu *v, const struct kvm_sregs *s)
{
	return vcpu_ioctl(v, KVM_SET_SREGS, (void *)s);
}

int mv_vcpu_set_msr(struct mv_vcpu *v, uint32_t index, uint64_t value)
{
	/* struct kvm_msrs ends in a flexible array: one entry follows it. */
	union {
		struct kvm_msrs h;
		uint8_t bytes[sizeof(struct kvm_msrs) +
			      sizeof(struct kvm_msr_entry)];
	} m;
	struct kvm_msr_entry *e = m.h.entries;
	long ret;

	memset(&m, 0, sizeof(m));
	m.h.nmsrs = 1;
	e->index = index;
	e->data = value;
	ret = mv_kvm_ioctl(v->k->sys, v->fd, KVM_SET_MSRS, &m);

	if (ret < 0)
		return (int)ret;
	return ret == 1 ? 0 : -EINVAL;
}

int mv_vcpu_set_supported_cpuid(struct mv_vcpu *v)
{
	enum {
		MAX_ENTRIES = 256
	};
	struct kvm_cpuid2 *c;
	long ret;

	c = calloc(1, sizeof(*c) + MAX_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = MAX_ENTRIES;
	ret = mv_kvm_ioctl(v->k->sys, v->k->kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
	if (ret >= 0)
		ret = vcpu_ioctl(v, KVM_SET_CPUID2, c);
	free(c);
	return ret < 0 ? (int)ret : 0;
}

int mv_vcpu_translate(struct mv_vcpu *v, mv_gva_t gva,
		      struct kvm_translation *t)
{
	memset(t, 0, sizeof(*t));
	t->linear_address = gva;
	return vcpu_ioctl(v, KVM_TRANSLATE, t);
}

void mv_vcpu_set_pio_hook(struct mv_vcpu *v, mv_vcpu_pio_hook fn, void *opaque)
{
	v->pio_hook = fn;
	v->pio_opaque = opaque;
}

void mv_vcpu_kick(struct mv_vcpu *v)
{
	pthread_mutex_lock(&v->run_lock);
	atomic_store(&v->stop, true);
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (v->has_thread)
		pthread_kill(v->thread, MV_VCPU_KICK_SIGNAL);
	pthread_mutex_unlock(&v->run_lock);
}

/* ---- exits ---------------------------------------------------------- */

static int handle_pio(struct mv_vcpu *v, struct mv_vcpu_exit *ex)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	struct mv_as *io = v->k->io;
	uint32_t i;
	int ret;

	for (i = 0; i < run->io.count; i++, data += run->io.size) {
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			if (v->pio_hook) {
				ret = v->pio_hook(v->pio_opaque, v,
						  run->io.port, data,
						  run->io.size);
				if (ret < 0)
					return ret;
				if (ret > 0) {
					ex->kind = MV_VCPU_EXIT_GUEST_EXIT;
					snprintf(ex->msg, sizeof(ex->msg),
						 "guest wrote port 0x%x",
						 run->io.port);
					return 1;
				}
			}
			if (io)
				mv_as_write(io, run->io.port, data,
					    run->io.size);
		} else if (io) {
			mv_as_read(io, run->io.port, data, run->io.size);
		} else {
			memset(data, 0xff, run->io.size);
		}
	}
	return 0;
}

static void handle_mmio(struct mv_vcpu *v)
{
	struct kvm_run *run = v->run;
	struct mv_as *mem = v->k->space[0] ? v->k->space[0]->as : NULL;
	uint32_t len = run->mmio.len <= 8 ? run->mmio.len : 8;

	if (!mem) {
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0, len);
		return;
	}
	/* A refused access reads zero (docs/access.md); the guest is told
	 * nothing, as QEMU's kvm_cpu_exec() ignores the MEMTX result. */
	if (run->mmio.is_write)
		mv_as_write(mem, run->mmio.phys_addr, run->mmio.data, len);
	else
		mv_as_read(mem, run->mmio.phys_addr, run->mmio.data, len);
}

static void fill_exit(struct mv_vcpu *v, struct mv_vcpu_exit *ex,
		      enum mv_vcpu_exit_kind kind, uint64_t detail,
		      const char *what)
{
	struct kvm_regs r;

	ex->kind = kind;
	ex->reason = v->run->exit_reason;
	ex->detail = detail;
	ex->rip = mv_vcpu_get_regs(v, &r) ? 0 : r.rip;
	snprintf(ex->msg, sizeof(ex->msg), "vCPU %u: %s at rip 0x%" PRIx64,
		 v->index, what, ex->rip);
}

/* One exit: 0 = run again, 1 = return to the caller, < 0 error. */
static int handle_exit(struct mv_vcpu *v, struct mv_vcpu_exit *ex)
{
	struct kvm_run *run = v->run;
	char what[96];
	int ret;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return handle_pio(v, ex);
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return 0;
	case KVM_EXIT_INTR:
		return 0;
	case KVM_EXIT_DIRTY_RING_FULL:
		pthread_mutex_lock(&v->k->lock);
		v->k->stats.ring_full_exits++;
		ret = mv_kvm_rings_harvest(v->k);
		pthread_mutex_unlock(&v->k->lock);
		return ret;
	case KVM_EXIT_HLT:
		fill_exit(v, ex, MV_VCPU_EXIT_HLT, 0, "guest halted");
		return 1;
	case KVM_EXIT_SHUTDOWN:
		fill_exit(v, ex, MV_VCPU_EXIT_SHUTDOWN, 0,
			  "guest shut down (triple fault)");
		return 1;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error, suberror %u",
			 run->internal.suberror);
		fill_exit(v, ex, MV_VCPU_EXIT_INTERNAL_ERROR,
			  run->internal.suberror, what);
		return 1;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what),
			 "VM entry failed, hardware reason 0x%llx",
			 (unsigned long long)
				 run->fail_entry.hardware_entry_failure_reason);
		fill_exit(v, ex, MV_VCPU_EXIT_FAIL_ENTRY,
			  run->fail_entry.hardware_entry_failure_reason, what);
		return 1;
	default:
		snprintf(what, sizeof(what), "unexpected exit reason %u",
			 run->exit_reason);
		fill_exit(v, ex, MV_VCPU_EXIT_UNEXPECTED, run->exit_reason,
			  what);
		return 1;
	}
}

static void stopped(struct mv_vcpu *v, struct mv_vcpu_exit *ex)
{
	ex->kind = MV_VCPU_EXIT_STOPPED;
	ex->reason = 0;
	snprintf(ex->msg, sizeof(ex->msg), "vCPU %u stopped", v->index);
}

int mv_vcpu_run(struct mv_vcpu *v, struct mv_vcpu_exit *ex)
{
	long ret;

	memset(ex, 0, sizeof(*ex));
	pthread_mutex_lock(&v->run_lock);
	v->thread = pthread_self();
	v->has_thread = true;
	pthread_mutex_unlock(&v->run_lock);
	for (;;) {
		if (atomic_load(&v->stop)) {
			stopped(v, ex);
			ret = 0;
			break;
		}
		ret = mv_kvm_ioctl(v->k->sys, v->fd, KVM_RUN, NULL);
		if (ret == -EINTR || ret == -EAGAIN)
			continue;
		if (ret < 0)
			break;
		ret = handle_exit(v, ex);
		if (ret) {
			ret = ret > 0 ? 0 : ret;
			break;
		}
	}
	pthread_mutex_lock(&v->run_lock);
	v->has_thread = false;
	pthread_mutex_unlock(&v->run_lock);
	return (int)ret;
}

void mv_vcpu_clear_stop(struct mv_vcpu *v)
{
	pthread_mutex_lock(&v->run_lock);
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	atomic_store(&v->stop, false);
	pthread_mutex_unlock(&v->run_lock);
}
