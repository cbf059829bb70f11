/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the tests that need /dev/kvm: the skip rule (exit 77, meson's
 * SKIP) and a VM run on its own thread that the test can stop, wait for
 * with a deadline and start again.
 */
#ifndef MEMVIRT_TESTS_KVM_RUNNER_H
#define MEMVIRT_TESTS_KVM_RUNNER_H

#include <pthread.h>
#include <stdbool.h>

#include <memvirt/vmm.h>

#define KVM_TEST_SKIP 77

/* Whether /dev/kvm opens read-write; if not, says SKIP on stderr. */
bool kvm_test_usable(void);

/*
 * struct kvm_runner - one mv_vm_run() on a thread of its own.  @done is
 * set (under @lock, @cond broadcast) when mv_vm_run() has returned; then
 * @ret and @res hold what it returned.
 */
struct kvm_runner {
	struct mv_vm *vm;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool started, done;
	int ret;
	struct mv_vm_result res;
};

int kvm_runner_init(struct kvm_runner *r, struct mv_vm *vm);
void kvm_runner_fini(struct kvm_runner *r);
/* Start mv_vm_run() on a new thread: 0 or -errno. */
int kvm_runner_start(struct kvm_runner *r);
/*
 * Wait up to @timeout_ms for the run to end on its own and join it:
 * 0, or -ETIMEDOUT (the run goes on and stays started).
 */
int kvm_runner_wait(struct kvm_runner *r, unsigned timeout_ms);
/*
 * Stop the run and join it: mv_vm_stop() every 2 ms until mv_vm_run()
 * returns (a stop that lands before mv_vm_run() cleared the previous one
 * is lost, so one is not enough), at most @timeout_ms.  @stops (may be
 * NULL) gets the number of mv_vm_stop() calls, @ms the time it took.
 * Return: 0 or -ETIMEDOUT.
 */
int kvm_runner_stop(struct kvm_runner *r, unsigned timeout_ms, unsigned *stops,
		    double *ms);

/* CLOCK_MONOTONIC in milliseconds. */
double kvm_test_now_ms(void);

#endif /* MEMVIRT_TESTS_KVM_RUNNER_H */
