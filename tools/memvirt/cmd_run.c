// SPDX-License-Identifier: MIT
/*
 * memvirt run: boot a guest under real KVM.  Without --guest, the
 * built-in self-test (selftest.c) on the default machine; with one, the
 * ELF64 or raw image, entered in long mode at CPL3 (guest/abi.h).
 * SIGINT/SIGTERM stop the vCPUs cleanly: they are blocked in every thread
 * and taken by a waiter thread that calls mv_vm_stop().  The waiter is
 * detached, with a small stack, and never joined: it dies with the
 * process, so a short run does not wait for it to wake up and exit
 * (bench/vmstart).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <memvirt/vmm.h>

#include "abi.h"
#include "cli.h"
#include "selftest.h"

#define RUN_DEFAULT_RAM (4ull << 30) /* RAM on both sides of 4 GiB */

/* Sanitizer builds tear everything down, so that leaks still show. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RUN_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer)
#define RUN_SANITIZED 1
#endif
#endif
#ifndef RUN_SANITIZED
#define RUN_SANITIZED 0
#endif

static void usage(FILE *f)
{
	fputs("usage: memvirt run [--machine NAME|FILE] [-m SIZE] [--guest FILE "
	      "[--format auto|elf|raw]]\n"
	      "                   [--vcpus N] [--dirty-mode "
	      "auto|bitmap|manual|ring] [--pages-4k]\n\n"
	      "Boot a guest under /dev/kvm.  Without --guest: the built-in "
	      "self-test guest\non a pc machine with 4 GiB (RAM on both sides "
	      "of 4 GiB); exit status 0\nonly if every check passed.  With "
	      "--guest: the image's exit-port status\n(0xf4, guest/abi.h) "
	      "becomes memvirt's exit status.\n\n" MACHINE_OPTS_HELP
	      "  -g, --guest FILE         ELF64 executable or raw code (raw "
	      "runs at 1 MiB)\n"
	      "      --format FMT         how to read --guest (default auto: "
	      "ELF by magic)\n"
	      "      --vcpus N            vCPUs (default 1, at most 8)\n"
	      "      --dirty-mode MODE    KVM dirty logging (default auto: "
	      "manual protect\n"
	      "                           if offered)\n"
	      "      --pages-4k           map the guest with 4 KiB pages "
	      "(default 2 MiB)\n",
	      f);
}

struct run_args {
	struct machine_opts mo;
	struct mv_vm_opts vm;
	const char *guest;
	enum mv_image_kind kind;
};

/* The VM a signal should stop, if one is running. */
struct run_ctl {
	pthread_mutex_t lock;
	struct mv_vm *vm;
	bool interrupted;
};

static void run_ctl_set(struct run_ctl *ctl, struct mv_vm *vm)
{
	pthread_mutex_lock(&ctl->lock);
	ctl->vm = vm;
	if (vm && ctl->interrupted)
		mv_vm_stop(vm);
	pthread_mutex_unlock(&ctl->lock);
}

static bool run_ctl_interrupted(struct run_ctl *ctl)
{
	bool ret;

	pthread_mutex_lock(&ctl->lock);
	ret = ctl->interrupted;
	pthread_mutex_unlock(&ctl->lock);
	return ret;
}

/*
 * jansson seeds its hash function on first use by opening and reading
 * /dev/urandom; one getrandom() call does the same for less.
 */
static void seed_json(void)
{
	uint32_t seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) ==
		    (ssize_t)sizeof(seed) &&
	    seed)
		json_object_seed(seed);
}

static void selftest_vm(void *opaque, struct mv_vm *vm)
{
	run_ctl_set(opaque, vm);
}

static int parse_enum(const char *arg, const char *const *names, int *out)
{
	int i;

	for (i = 0; names[i]; i++)
		if (!strcmp(arg, names[i])) {
			*out = i;
			return 0;
		}
	return -1;
}

static int parse_opt(struct run_args *a, int opt, const char *arg)
{
	static const char *const formats[] = { "auto", "raw", "elf", NULL };
	static const char *const modes[] = { "auto", "bitmap", "manual", "ring",
					     NULL };
	int v;

	switch (opt) {
	case 'g':
		a->guest = arg;
		return 0;
	case 'F':
		if (parse_enum(arg, formats, &v))
			break;
		a->kind = (enum mv_image_kind)v;
		return 0;
	case 'd':
		if (parse_enum(arg, modes, &v))
			break;
		a->vm.kvm.dirty_mode = (enum mv_kvm_dirty_mode)v;
		return 0;
	case 'c':
		v = atoi(arg);
		if (v < 1 || v > 8)
			break;
		a->vm.nr_vcpus = (unsigned)v;
		return 0;
	case '4':
		a->vm.pages_4k = true;
		return 0;
	default:
		return -1;
	}
	cli_error("run: bad value '%s'", arg);
	return -1;
}

#define WAITER_STACK (256u << 10)

/* The waiter: SIGINT/SIGTERM stop the VM. */
static void *signal_waiter(void *arg)
{
	struct run_ctl *ctl = arg;
	struct mv_vm *vm;
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (!sigwait(&set, &sig)) {
		fprintf(stderr, "memvirt: %s, stopping the guest\n",
			strsignal(sig));
		pthread_mutex_lock(&ctl->lock);
		ctl->interrupted = true;
		vm = ctl->vm;
		if (vm)
			mv_vm_stop(vm);
		pthread_mutex_unlock(&ctl->lock);
	}
	return NULL;
}

static int run_image(struct mv_machine *m, const struct run_args *a,
		     struct run_ctl *ctl)
{
	struct mv_guest_info info = { 0 };
	struct mv_error err = { { 0 } };
	struct mv_vm_result res;
	struct mv_vm_opts vo = a->vm;
	struct mv_vm *vm;
	void *image;
	size_t len;
	int ret;

	vo.console = stdout;
	ret = mv_vm_read_image(a->guest, &image, &len, &err);
	if (ret) {
		cli_error("run: %s", err.msg);
		return CLI_EXIT_FAIL;
	}
	ret = mv_vm_new(m, &vo, &vm);
	if (ret) {
		cli_error("run: cannot create the VM: %s", strerror(-ret));
		free(image);
		return CLI_EXIT_FAIL;
	}
	ret = mv_vm_load(vm, image, len, a->kind, &err);
	free(image);
	if (!ret) {
		mv_vm_scratch(vm, &info.scratch_gpa, &info.scratch_size);
		ret = mv_vm_boot(vm, &info, &err);
	}
	if (ret) {
		cli_error("run: %s: %s", a->guest, err.msg);
		mv_vm_free(vm);
		return CLI_EXIT_FAIL;
	}
	run_ctl_set(ctl, vm);
	ret = mv_vm_run(vm, &res);
	run_ctl_set(ctl, NULL);
	if (!ret && res.end == MV_VM_END_EXIT && !RUN_SANITIZED &&
	    !run_ctl_interrupted(ctl)) {
		/*
		 * The guest's exit status is the process's: exit now and let
		 * the kernel drop the VM, its memory and the machine with the
		 * process, as bench-vmstart-floor does.  Closing the VM first
		 * cost 0.2 ms more (docs/performance.md, VM start).
		 */
		fflush(stdout);
		exit((int)(res.status & 0xff));
	}
	mv_vm_free(vm);
	fflush(stdout);
	if (ret || res.end != MV_VM_END_EXIT) {
		cli_error("run: %s", ret ? strerror(-ret) : res.msg);
		return CLI_EXIT_FAIL;
	}
	return (int)(res.status & 0xff);
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "machine", required_argument, NULL, 'M' },
		{ "memory", required_argument, NULL, 'm' },
		{ "guest", required_argument, NULL, 'g' },
		{ "format", required_argument, NULL, 'F' },
		{ "dirty-mode", required_argument, NULL, 'd' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "pages-4k", no_argument, NULL, '4' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* Static: the waiter outlives this function. */
	static struct run_ctl ctl = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct run_args a = { .mo = { .machine = "pc" } };
	struct selftest_opts so;
	struct mv_machine *m;
	pthread_attr_t attr;
	pthread_t waiter;
	sigset_t set;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "M:m:g:h", longopts, NULL)) !=
	       -1) {
		ret = machine_opts_parse(&a.mo, opt, optarg);
		if (ret < 0)
			return CLI_EXIT_USAGE;
		if (ret)
			continue;
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (parse_opt(&a, opt, optarg)) {
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_error("run: unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (!a.mo.ram_size_set)
		a.mo.ram_size = RUN_DEFAULT_RAM;
	/* Blocked in every thread the VM starts; the waiter takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	seed_json();
	m = machine_opts_load(&a.mo, true);
	if (!m)
		return CLI_EXIT_FAIL;
	ret = -pthread_attr_init(&attr);
	if (!ret) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, WAITER_STACK);
		ret = -pthread_create(&waiter, &attr, signal_waiter, &ctl);
		pthread_attr_destroy(&attr);
	}
	if (ret) {
		cli_error("run: %s", strerror(-ret));
		mv_machine_free(m);
		return CLI_EXIT_FAIL;
	}
	if (a.guest) {
		ret = run_image(m, &a, &ctl);
	} else {
		so.vm = a.vm;
		so.on_vm = selftest_vm;
		so.opaque = &ctl;
		ret = selftest_run(m, &so, stdout) ? CLI_EXIT_FAIL : 0;
	}
	mv_machine_free(m);
	return run_ctl_interrupted(&ctl) ? 128 + SIGINT : ret;
}
