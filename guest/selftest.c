// SPDX-License-Identifier: MIT
/*
 * The built-in self-test of `memvirt run`: the guest side of each check in
 * enum mv_selftest_check, one report and one console line per check.  The
 * host checks what only it can see (ops calls, console text, dirty log).
 * Exit status 0 when every guest-side check passed, else 1.
 */
#include "lib.h"

#define RAM_CHECK_MAX (1ull << 20)
#define TOGGLE_SPINS (1ull << 32)
#define ROMD_WRITE 0x5a5a5a5a5a5a5a5aull
#define MMIO_WRITE_XOR 0xa5a5a5a5a5a5a5a5ull
#define DIRTY_TAG 0xd1d1000000000000ull
#define PAGE_SIZE 4096ull

static uint64_t size_mask(unsigned int size)
{
	return size == 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

/* Prints "NAME: WHAT at ADDR: got X, want Y". */
static void mismatch(const char *name, const char *what, uint64_t addr,
		     uint64_t got, uint64_t want)
{
	guest_puts(name);
	guest_puts(": ");
	guest_puts(what);
	guest_puts(" at ");
	guest_put_hex(addr);
	guest_puts(": got ");
	guest_put_hex(got);
	guest_puts(", want ");
	guest_put_hex(want);
	guest_putc('\n');
}

/* Reads 8 bytes at @addr, says so and returns 0 unless it is @want. */
static int expect64(const char *name, const char *what, uint64_t addr,
		    uint64_t want)
{
	uint64_t got = mmio_read64(addr);

	if (got == want)
		return 1;
	mismatch(name, what, addr, got, want);
	return 0;
}

static int not_set_up(const char *name)
{
	guest_puts(name);
	guest_puts(": not set up by the host\n");
	return 0;
}

/* Writes a per-address pattern over (gpa, size), at most 1 MiB, reads back. */
static int check_ram(const char *name, uint64_t gpa, uint64_t size)
{
	uint64_t end, a;

	if (!gpa || size < 8)
		return not_set_up(name);
	if (size > RAM_CHECK_MAX)
		size = RAM_CHECK_MAX;
	end = gpa + (size & ~7ull);
	for (a = gpa; a < end; a += 8)
		mmio_write64(a, a ^ 0x5a5aa5a5c3c33c3cull);
	for (a = gpa; a < end; a += 8) {
		if (!expect64(name, "read back", a, a ^ 0x5a5aa5a5c3c33c3cull))
			return 0;
	}
	return 1;
}

static int check_ram_low(const struct mv_guest_info *info)
{
	return check_ram("ram-low", info->scratch_gpa, info->scratch_size);
}

static int check_ram_high(const struct mv_guest_info *info)
{
	return check_ram("ram-high", info->high_scratch_gpa,
			 info->high_scratch_size);
}

/* A write to ROM is dropped: the signature stays. */
static int check_rom(const struct mv_guest_info *info)
{
	uint64_t a = info->rom_gpa, sig = info->rom_signature;

	if (!a)
		return not_set_up("rom");
	if (!expect64("rom", "read", a, sig))
		return 0;
	mmio_write64(a, ~sig);
	return expect64("rom", "read after write", a, sig);
}

/* Reads come from the RAM part, the write goes to the device's ops. */
static int check_romd(const struct mv_guest_info *info)
{
	uint64_t a = info->romd_gpa, before;

	if (!a)
		return not_set_up("romd");
	if (!expect64("romd", "read", a, info->romd_signature))
		return 0;
	before = mmio_read64(a + 8);
	mmio_write64(a + 8, ROMD_WRITE);
	return expect64("romd", "read after write", a + 8, before);
}

static int check_mmio_size(uint64_t base, unsigned int size)
{
	uint64_t off = 0x10 * size, mask = size_mask(size);
	uint64_t want = MV_MMIO_PATTERN(off, size) & mask, got;

	got = mmio_read(base + off, size);
	if (got != want) {
		mismatch("mmio", "read", base + off, got, want);
		return 0;
	}
	want = (MV_MMIO_PATTERN(off, size) ^ MMIO_WRITE_XOR) & mask;
	mmio_write(base + off, size, want);
	got = mmio_read(base + off, size);
	if (got != want) {
		mismatch("mmio", "read after write", base + off, got, want);
		return 0;
	}
	return 1;
}

static int check_mmio(const struct mv_guest_info *info)
{
	int ok = 1;

	if (!info->mmio_gpa)
		return not_set_up("mmio");
	for (unsigned int size = 1; size <= 8; size *= 2)
		ok &= check_mmio_size(info->mmio_gpa, size);
	return ok;
}

/* The host checks that the line arrived. */
static int check_console(const struct mv_guest_info *info)
{
	(void)info;
	guest_puts("memvirt guest console: hello\n");
	return 1;
}

/* One page through two GPAs, written through each of them. */
static int check_alias(const struct mv_guest_info *info)
{
	uint64_t a = info->alias_gpa, t = info->alias_target_gpa;
	uint64_t v = rdtsc() * 0x9e3779b97f4a7c15ull;

	if (!a || !t)
		return not_set_up("alias");
	mmio_write64(a, v);
	if (!expect64("alias", "read of the target", t, v))
		return 0;
	mmio_write64(t + 8, ~v);
	return expect64("alias", "read through the alias", a + 8, ~v);
}

/* Unassigned: reads give 0, writes vanish (and do not fault). */
static int check_hole(const struct mv_guest_info *info)
{
	uint64_t a = info->hole_gpa, got;
	int ok = 1;

	if (!a)
		return not_set_up("hole");
	for (unsigned int size = 1; size <= 8; size *= 2) {
		got = mmio_read(a, size);
		if (got) {
			mismatch("hole", "read", a, got, 0);
			ok = 0;
		}
	}
	mmio_write64(a, 0x401e401e401e401eull);
	mmio_write8(a + 1, 0x41);
	return expect64("hole", "read after write", a, 0) && ok;
}

/* The host flips the region under toggle_gpa once we say we poll it. */
static int check_toggle(const struct mv_guest_info *info)
{
	uint64_t a = info->toggle_gpa, got = 0;
	int ok;

	if (!a)
		return not_set_up("toggle");
	ok = expect64("toggle", "read before", a, info->toggle_before);
	guest_sync(MV_SYNC_TOGGLE_ARM);
	for (uint64_t i = 0; i < TOGGLE_SPINS; i++) {
		got = mmio_read64(a);
		if (got == info->toggle_after)
			return ok;
	}
	mismatch("toggle", "never flipped", a, got, info->toggle_after);
	return 0;
}

/* The host checks its dirty log for exactly these pages. */
static int check_dirty(const struct mv_guest_info *info)
{
	uint64_t stride = info->dirty_stride * PAGE_SIZE;

	if (!info->dirty_gpa || !info->dirty_count)
		return not_set_up("dirty");
	for (uint64_t i = 0; i < info->dirty_count; i++)
		mmio_write64(info->dirty_gpa + i * stride, DIRTY_TAG | i);
	return 1;
}

static const struct selftest_check {
	enum mv_selftest_check id;
	const char *name;
	int (*run)(const struct mv_guest_info *info);
} checks[] = {
	{ MV_CHECK_RAM_LOW, "ram-low", check_ram_low },
	{ MV_CHECK_RAM_HIGH, "ram-high", check_ram_high },
	{ MV_CHECK_ROM, "rom", check_rom },
	{ MV_CHECK_ROMD, "romd", check_romd },
	{ MV_CHECK_MMIO, "mmio", check_mmio },
	{ MV_CHECK_CONSOLE, "console", check_console },
	{ MV_CHECK_ALIAS, "alias", check_alias },
	{ MV_CHECK_HOLE, "hole", check_hole },
	{ MV_CHECK_TOGGLE, "toggle", check_toggle },
	{ MV_CHECK_DIRTY, "dirty", check_dirty },
};

int mv_main(struct mv_guest_info *info)
{
	int failed = 0;

	if (info->magic != MV_GUEST_INFO_MAGIC) {
		guest_puts("selftest: bad mv_guest_info magic\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		int ok = checks[i].run(info);

		guest_report(checks[i].id, ok);
		guest_puts(checks[i].name);
		guest_puts(ok ? ": ok\n" : ": FAIL\n");
		failed |= !ok;
	}
	return failed;
}
