// SPDX-License-Identifier: MIT
/*
 * bench/vmstart: wall time from process start to the guest's first port
 * write and the process's exit, for `memvirt run` with the raw exit42
 * guest, a raw-ioctl floor doing the same work (bench/vmstart_floor.c)
 * and QEMU 7.2 running the same bytes from its reset vector.  Each
 * candidate is spawned N times, interleaved in rounds (every candidate
 * once per round, in a random order that changes from round to round),
 * after one untimed warm-up round.  Prints JSON on stdout (docs/performance.md).
 *
 *   bench-vmstart [--quick] [--runs N] [--memvirt EXE] [--floor EXE]
 *                 [--floor-static EXE]
 *                 [--guest exit42.bin] [--qemu EXE]
 *
 * Paths default to the build tree, found from /proc/self/exe.  Exits 77
 * when /dev/kvm is missing; a missing QEMU is reported as skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS_DEFAULT 40
#define RUNS_QUICK 3
#define BIOS_SIZE 0x10000
#define RESET_OFFSET 0xfff0
#define MAX_ARGS 24
#define MAX_CANDIDATES 16
#define GOAL_FLOOR_RATIO 1.2
#define GOAL_QEMU_SPEEDUP 10.0

extern char **environ;

/* One program started N times: its command line and what it took. */
struct candidate {
	const char *name;
	const char *what;
	char *argv[MAX_ARGS];
	int expect; /* exit status */
	bool skipped;
	const char *skip_reason;
	double *ms;
	unsigned runs;
	int bad_status; /* first unexpected wait status, or -1 */
	double last_ms; /* this round's time, 0 if none */
};

struct paths {
	char memvirt[PATH_MAX], floor[PATH_MAX], floor_static[PATH_MAX];
	char guest[PATH_MAX];
	char qemu[PATH_MAX], bios[PATH_MAX];
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *must_alloc(size_t size)
{
	void *p = calloc(1, size);

	if (!p) {
		fputs("bench-vmstart: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

/* @rel resolved against the directory of this executable. */
static void path_from_self(char *out, const char *rel)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0) {
		snprintf(out, PATH_MAX, "%s", rel);
		return;
	}
	self[n] = '\0';
	snprintf(out, PATH_MAX, "%s/%s", dirname(self), rel);
}

/* Where `qemu-system-x86_64` is on $PATH; false if nowhere. */
static bool find_in_path(const char *prog, char *out)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	bool found = false;

	copy = strdup(path ? path : "/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, PATH_MAX, "%s/%s", dir, prog);
		found = !access(out, X_OK);
	}
	free(copy);
	return found;
}

/*
 * A 64 KiB firmware image holding @code at the reset vector (offset
 * 0xfff0: QEMU maps the image's last 64 KiB below 4 GiB and the CPU starts
 * at 0xfffffff0 in real mode).  Returns false if it cannot be written.
 */
static bool write_bios(const char *guest, char *out)
{
	static unsigned char bios[BIOS_SIZE];
	ssize_t n;
	int fd;

	fd = open(guest, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, bios + RESET_OFFSET, BIOS_SIZE - RESET_OFFSET);
	close(fd);
	if (n <= 0)
		return false;
	snprintf(out, PATH_MAX, "/tmp/bench-vmstart-bios-XXXXXX");
	fd = mkstemp(out);
	if (fd < 0)
		return false;
	n = write(fd, bios, sizeof(bios));
	close(fd);
	return n == (ssize_t)sizeof(bios);
}

static void set_argv(struct candidate *c, const char *const *args)
{
	unsigned i;

	for (i = 0; args[i] && i + 1 < MAX_ARGS; i++)
		c->argv[i] = (char *)args[i];
	c->argv[i] = NULL;
}

/* Spawn @c once with stdout/stderr on /dev/null; returns the wait status. */
static int spawn_once(const struct candidate *c, double *ms)
{
	posix_spawn_file_actions_t fa;
	double t0;
	pid_t pid;
	int st = -1;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	t0 = now_ms();
	if (posix_spawn(&pid, c->argv[0], &fa, NULL, c->argv, environ) ||
	    waitpid(pid, &st, 0) < 0)
		st = -1;
	*ms = now_ms() - t0;
	posix_spawn_file_actions_destroy(&fa);
	return st;
}

/* xorshift64: the order of each round, the same in every bench run. */
static uint64_t order_rng = 0x9e3779b97f4a7c15ull;

static uint64_t order_next(void)
{
	order_rng ^= order_rng << 13;
	order_rng ^= order_rng >> 7;
	order_rng ^= order_rng << 17;
	return order_rng;
}

/*
 * One round: every candidate once, in a fresh random order (Fisher-Yates)
 * so that none always follows the same one -- QEMU's teardown, say, or a
 * VM destruction the kernel finishes after the process has exited.
 */
static void run_round(struct candidate *cands, size_t nr, bool timed)
{
	size_t order[MAX_CANDIDATES], i, j, t;
	double ms;
	int st;

	for (i = 0; i < nr; i++)
		order[i] = i;
	for (i = nr; i > 1; i--) {
		j = (size_t)(order_next() % i);
		t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	for (i = 0; i < nr; i++) {
		struct candidate *c = &cands[order[i]];

		if (c->skipped)
			continue;
		st = spawn_once(c, &ms);
		if (st == -1 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != c->expect) {
			if (c->bad_status == -1)
				c->bad_status = st;
			continue;
		}
		if (timed)
			c->ms[c->runs++] = ms;
		c->last_ms = timed ? ms : 0;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile @p (0..100) of the sorted @v[0, n). */
static double percentile(const double *v, unsigned n, double p)
{
	unsigned k = (unsigned)((p / 100.0) * n + 0.999999);

	return v[k ? k - 1 : 0];
}

static double median(const double *v, unsigned n)
{
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static json_t *candidate_json(struct candidate *c, double *med)
{
	json_t *o = json_pack("{s:s, s:s}", "name", c->name, "what", c->what);
	json_t *cmd = json_array();
	unsigned i;

	for (i = 0; c->argv[i]; i++)
		json_array_append_new(cmd, json_string(c->argv[i]));
	json_object_set_new(o, "argv", cmd);
	json_object_set_new(o, "expected_exit", json_integer(c->expect));
	*med = 0;
	if (c->skipped) {
		json_object_set_new(o, "skipped", json_string(c->skip_reason));
		return o;
	}
	if (c->bad_status != -1 || !c->runs) {
		json_object_set_new(
			o, "error",
			json_sprintf("unexpected wait status 0x%x (exit %d)",
				     c->bad_status,
				     WIFEXITED(c->bad_status) ?
					     WEXITSTATUS(c->bad_status) :
					     -1));
		return o;
	}
	qsort(c->ms, c->runs, sizeof(double), cmp_double);
	*med = median(c->ms, c->runs);
	json_object_set_new(o, "median_ms", json_real(*med));
	json_object_set_new(o, "min_ms", json_real(c->ms[0]));
	json_object_set_new(o, "p90_ms",
			    json_real(percentile(c->ms, c->runs, 90)));
	json_object_set_new(o, "runs", json_integer(c->runs));
	return o;
}

static json_t *ratio(double num, double den)
{
	return num > 0 && den > 0 ? json_real(num / den) : json_null();
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--quick] [--runs N] [--memvirt EXE] [--floor EXE] "
		"[--floor-static EXE] [--guest FILE] [--qemu EXE]\n",
		prog);
	exit(2);
}

static void parse_args(int argc, char **argv, struct paths *p, bool *quick,
		       unsigned *runs)
{
	int i;

	path_from_self(p->memvirt, "../tools/memvirt/memvirt");
	path_from_self(p->floor, "bench-vmstart-floor");
	path_from_self(p->floor_static, "bench-vmstart-floor-static");
	path_from_self(p->guest, "../guest/exit42.bin");
	if (!find_in_path("qemu-system-x86_64", p->qemu))
		p->qemu[0] = '\0';
	for (i = 1; i < argc; i++) {
		char *dst = NULL;

		if (!strcmp(argv[i], "--quick")) {
			*quick = true;
			continue;
		}
		if (i + 1 >= argc)
			usage(argv[0]);
		if (!strcmp(argv[i], "--runs"))
			*runs = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--memvirt"))
			dst = p->memvirt;
		else if (!strcmp(argv[i], "--floor"))
			dst = p->floor;
		else if (!strcmp(argv[i], "--floor-static"))
			dst = p->floor_static;
		else if (!strcmp(argv[i], "--guest"))
			dst = p->guest;
		else if (!strcmp(argv[i], "--qemu"))
			dst = p->qemu;
		else
			usage(argv[0]);
		if (dst)
			snprintf(dst, PATH_MAX, "%s", argv[++i]);
	}
	if (!*runs)
		*runs = *quick ? RUNS_QUICK : RUNS_DEFAULT;
}

enum {
	C_MICRO,
	C_PC,
	C_FLOOR,
	C_FLOOR_STATIC,
	C_FLOOR_REAL,
	C_QEMU,
	C_NOVM,
	C_FLOOR_NOVM,
	C_NR
};

static void setup_candidates(struct candidate *c, struct paths *p)
{
	const char *micro[] = { p->memvirt, "run",	 "--guest",
				p->guest,   "--machine", "micro",
				"-m",	    "64M",	 NULL };
	const char *pc[] = { p->memvirt, "run",	      "--guest",
			     p->guest,	 "--machine", "pc",
			     "-m",	 "64M",	      NULL };
	const char *floor[] = { p->floor, p->guest, NULL };
	const char *floor_static[] = { p->floor_static, p->guest, NULL };
	const char *real[] = { p->floor, "--real-mode", p->guest, NULL };
	const char *qemu[] = { p->qemu,
			       "-accel",
			       "kvm",
			       "-machine",
			       "pc",
			       "-m",
			       "64M",
			       "-nodefaults",
			       "-nographic",
			       "-display",
			       "none",
			       "-bios",
			       p->bios,
			       "-device",
			       "isa-debug-exit,iobase=0xf4,iosize=0x04",
			       NULL };
	const char *novm[] = { p->memvirt, "machine", "list", NULL };
	const char *floor_novm[] = { p->floor, NULL };

	c[C_MICRO] = (struct candidate){ "memvirt-micro",
					 "memvirt run, micro machine, 64 MiB",
					 .expect = 42 };
	set_argv(&c[C_MICRO], micro);
	c[C_PC] = (struct candidate){ "memvirt-pc",
				      "memvirt run, pc machine, 64 MiB",
				      .expect = 42 };
	set_argv(&c[C_PC], pc);
	c[C_FLOOR] = (struct candidate){
		"floor", "raw ioctls, 64 MiB slot, long mode at CPL3",
		.expect = 42
	};
	set_argv(&c[C_FLOOR], floor);
	/* The same floor linked as memvirt is (static PIE): the goal's
	 * comparison with equal linkage. */
	c[C_FLOOR_STATIC] =
		(struct candidate){ "floor-static",
				    "the floor, linked as a static PIE",
				    .expect = 42 };
	set_argv(&c[C_FLOOR_STATIC], floor_static);
	if (!p->floor_static[0] || access(p->floor_static, X_OK)) {
		c[C_FLOOR_STATIC].skipped = true;
		c[C_FLOOR_STATIC].skip_reason = "no static floor was built";
	}
	c[C_FLOOR_REAL] =
		(struct candidate){ "floor-realmode",
				    "raw ioctls, 64 MiB slot, real mode",
				    .expect = 42 };
	set_argv(&c[C_FLOOR_REAL], real);
	c[C_QEMU] = (struct candidate){
		"qemu", "QEMU 7.2, pc, 64 MiB, exit42 at the reset vector",
		.expect = (42 << 1) | 1
	};
	set_argv(&c[C_QEMU], qemu);
	/* How much of memvirt's time is exec, dynamic linking and exit. */
	c[C_NOVM] = (struct candidate){ "memvirt-no-vm",
					"memvirt machine list: no VM, no KVM",
					.expect = 0 };
	set_argv(&c[C_NOVM], novm);
	c[C_FLOOR_NOVM] = (struct candidate){ "floor-no-vm",
					      "the floor's usage error: no VM",
					      .expect = 2 };
	set_argv(&c[C_FLOOR_NOVM], floor_novm);
	if (!p->qemu[0] || access(p->qemu, X_OK)) {
		c[C_QEMU].skipped = true;
		c[C_QEMU].skip_reason = "qemu-system-x86_64 not found";
	} else if (!write_bios(p->guest, p->bios)) {
		c[C_QEMU].skipped = true;
		c[C_QEMU].skip_reason = "cannot write the firmware image";
		p->bios[0] = '\0';
	}
}

int main(int argc, char **argv)
{
	static struct paths p;
	struct candidate c[C_NR];
	double med[C_NR];
	unsigned runs = 0, r, i, npaired = 0;
	double *paired, goal_floor;
	bool quick = false, ok = true;
	json_t *cands, *o;

	parse_args(argc, argv, &p, &quick, &runs);
	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("{\"bench\": \"vmstart\", \"skipped\": \"/dev/kvm: "
		       "%s\"}\n",
		       strerror(errno));
		return 77;
	}
	setup_candidates(c, &p);
	for (i = 0; i < C_NR; i++) {
		c[i].ms = must_alloc(runs * sizeof(double));
		c[i].bad_status = -1;
	}
	paired = must_alloc(runs * sizeof(double));
	run_round(c, C_NR, false); /* warm-up: page cache, binaries */
	for (r = 0; r < runs; r++) {
		run_round(c, C_NR, true);
		/* memvirt-micro / floor within the round: slow minutes cancel */
		if (c[C_MICRO].last_ms > 0 && c[C_FLOOR].last_ms > 0)
			paired[npaired++] =
				c[C_MICRO].last_ms / c[C_FLOOR].last_ms;
	}
	cands = json_array();
	for (i = 0; i < C_NR; i++) {
		json_array_append_new(cands, candidate_json(&c[i], &med[i]));
		if (!c[i].skipped && !med[i])
			ok = false;
	}
	o = json_pack("{s:s, s:s, s:b, s:i, s:o}", "bench", "vmstart", "unit",
		      "ms", "quick", quick, "runs", runs, "candidates", cands);
	/* The goal is judged against the faster floor: with equal linkage
	 * when the static floor exists. */
	goal_floor = med[C_FLOOR];
	if (med[C_FLOOR_STATIC] > 0 && med[C_FLOOR_STATIC] < goal_floor)
		goal_floor = med[C_FLOOR_STATIC];
	json_object_set_new(o, "ratios",
			    json_pack("{s:o, s:o, s:o, s:o, s:o}",
				      "memvirt_micro_over_floor",
				      ratio(med[C_MICRO], med[C_FLOOR]),
				      "memvirt_micro_over_floor_static",
				      ratio(med[C_MICRO], med[C_FLOOR_STATIC]),
				      "memvirt_pc_over_floor",
				      ratio(med[C_PC], med[C_FLOOR]),
				      "floor_over_floor_realmode",
				      ratio(med[C_FLOOR], med[C_FLOOR_REAL]),
				      "qemu_over_memvirt_micro",
				      ratio(med[C_QEMU], med[C_MICRO])));
	/* Extra information, not the goal: the median of the rounds' own
	 * memvirt-micro / floor ratios. */
	qsort(paired, npaired, sizeof(double), cmp_double);
	json_object_set_new(o, "memvirt_micro_over_floor_paired_median",
			    npaired ? json_real(median(paired, npaired)) :
				      json_null());
	free(paired);
	json_object_set_new(
		o, "goals",
		json_pack("{s:{s:f, s:b}, s:{s:f, s:o}}", "memvirt_over_floor",
			  "max", GOAL_FLOOR_RATIO, "met",
			  med[C_MICRO] > 0 && goal_floor > 0 &&
				  med[C_MICRO] / goal_floor <= GOAL_FLOOR_RATIO,
			  "qemu_over_memvirt", "min", GOAL_QEMU_SPEEDUP, "met",
			  med[C_QEMU] > 0 && med[C_MICRO] > 0 ?
				  json_boolean(med[C_QEMU] / med[C_MICRO] >=
					       GOAL_QEMU_SPEEDUP) :
				  json_null()));
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(5));
	putchar('\n');
	json_decref(o);
	if (p.bios[0])
		unlink(p.bios);
	for (i = 0; i < C_NR; i++)
		free(c[i].ms);
	return ok ? 0 : 1;
}
