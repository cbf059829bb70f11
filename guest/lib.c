// SPDX-License-Identifier: MIT
/*
 * The guest runtime's out-of-line half: console output, exit and halt, and
 * the mem* functions gcc may call.  These use string instructions rather
 * than C loops, which gcc could turn back into calls to themselves.
 */
#include "lib.h"

uint64_t mmio_read(uint64_t addr, unsigned int size)
{
	switch (size) {
	case 1:
		return mmio_read8(addr);
	case 2:
		return mmio_read16(addr);
	case 4:
		return mmio_read32(addr);
	case 8:
		return mmio_read64(addr);
	}
	return 0;
}

void mmio_write(uint64_t addr, unsigned int size, uint64_t v)
{
	switch (size) {
	case 1:
		mmio_write8(addr, (uint8_t)v);
		break;
	case 2:
		mmio_write16(addr, (uint16_t)v);
		break;
	case 4:
		mmio_write32(addr, (uint32_t)v);
		break;
	case 8:
		mmio_write64(addr, v);
		break;
	}
}

void guest_putc(char c)
{
	outb(MV_GUEST_PORT_CONSOLE, (uint8_t)c);
}

void guest_puts(const char *s)
{
	while (*s)
		guest_putc(*s++);
}

void guest_put_hex(uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	int shift = 60;

	guest_puts("0x");
	while (shift > 0 && !(v >> shift))
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		guest_putc(digits[(v >> shift) & 0xf]);
}

void guest_put_dec(uint64_t v)
{
	char buf[20];
	int n = 0;

	do {
		buf[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		guest_putc(buf[--n]);
}

_Noreturn void guest_exit(uint32_t status)
{
	outl(MV_GUEST_PORT_EXIT, status);
	guest_halt();
}

_Noreturn void guest_halt(void)
{
	for (;;)
		__asm__ volatile("hlt" : : : "memory");
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb"
			 : "+D"(d), "+S"(src), "+c"(n)
			 :
			 : "memory");
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	/* Overlap with dst above src: copy backwards. */
	d += n - 1;
	s += n - 1;
	__asm__ volatile("std\n\trep movsb\n\tcld"
			 : "+D"(d), "+S"(s), "+c"(n)
			 :
			 : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	}
	return 0;
}
