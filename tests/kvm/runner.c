// SPDX-License-Identifier: MIT
/*
 * The /dev/kvm skip rule and a stoppable VM run on its own thread, shared
 * by the tests of the kvm suite.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

bool kvm_test_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "SKIP: /dev/kvm not available (%s)\n",
			strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

double kvm_test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int kvm_runner_init(struct kvm_runner *r, struct mv_vm *vm)
{
	pthread_condattr_t ca;
	int ret;

	memset(r, 0, sizeof(*r));
	r->vm = vm;
	ret = pthread_condattr_init(&ca);
	if (ret)
		return -ret;
	ret = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!ret)
		ret = pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (ret)
		return -ret;
	pthread_mutex_init(&r->lock, NULL);
	return 0;
}

void kvm_runner_fini(struct kvm_runner *r)
{
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
}

static void *runner_main(void *arg)
{
	struct kvm_runner *r = arg;
	struct mv_vm_result res;
	int ret;

	memset(&res, 0, sizeof(res));
	ret = mv_vm_run(r->vm, &res);
	pthread_mutex_lock(&r->lock);
	r->ret = ret;
	r->res = res;
	r->done = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int kvm_runner_start(struct kvm_runner *r)
{
	int ret;

	if (r->started)
		return -EBUSY;
	r->done = false;
	ret = pthread_create(&r->thread, NULL, runner_main, r);
	if (ret)
		return -ret;
	r->started = true;
	return 0;
}

/* @ts = now + @ms on CLOCK_MONOTONIC. */
static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Join a finished run.  Context: @r->lock not held. */
static void join(struct kvm_runner *r)
{
	pthread_join(r->thread, NULL);
	r->started = false;
}

int kvm_runner_wait(struct kvm_runner *r, unsigned timeout_ms)
{
	struct timespec dl;
	bool done;

	if (!r->started)
		return 0;
	deadline_in(&dl, timeout_ms);
	pthread_mutex_lock(&r->lock);
	while (!r->done)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &dl) ==
		    ETIMEDOUT)
			break;
	done = r->done;
	pthread_mutex_unlock(&r->lock);
	if (!done)
		return -ETIMEDOUT;
	join(r);
	return 0;
}

int kvm_runner_stop(struct kvm_runner *r, unsigned timeout_ms, unsigned *stops,
		    double *ms)
{
	double t0 = kvm_test_now_ms();
	unsigned n = 0;
	struct timespec dl;
	bool done;

	if (!r->started)
		return 0;
	pthread_mutex_lock(&r->lock);
	while (!r->done && kvm_test_now_ms() - t0 < timeout_ms) {
		mv_vm_stop(r->vm);
		n++;
		deadline_in(&dl, 2);
		pthread_cond_timedwait(&r->cond, &r->lock, &dl);
	}
	done = r->done;
	pthread_mutex_unlock(&r->lock);
	if (stops)
		*stops = n;
	if (ms)
		*ms = kvm_test_now_ms() - t0;
	if (!done)
		return -ETIMEDOUT;
	join(r);
	return 0;
}
