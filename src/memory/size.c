// SPDX-License-Identifier: MIT
/*
 * Size strings as QEMU 7.2's -m takes them (qemu_strtosz): a decimal
 * number, possibly with a fraction, or 0x-hex without fraction or suffix;
 * then an optional binary suffix (K, M, G, T, P, E; optional "iB" or "B").
 * A bare number is in units of the caller's default.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/memory.h>

/* Multiplier shift of the suffix at @s: 0 bytes, 10 K, ...; 1 if none. */
static int suffix_shift(const char *s, unsigned *shift)
{
	static const char units[] = "KMGTPE";
	const char *u;

	if (!*s)
		return 1;
	if ((*s == 'b' || *s == 'B') && !s[1]) {
		*shift = 0;
		return 0;
	}
	u = strchr(units, toupper((unsigned char)*s));
	if (!u)
		return -EINVAL;
	*shift = 10 * (unsigned)(u - units + 1);
	s++;
	if (!*s || !strcmp(s, "B") || !strcmp(s, "iB") || !strcmp(s, "b"))
		return 0;
	return -EINVAL;
}

/* Hex takes no fraction and no suffix, but the default unit applies. */
static int parse_hex(const char *s, uint64_t unit, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 16);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s + 2 || *end)
		return -EINVAL;
	if (unit && v > UINT64_MAX / unit)
		return -ERANGE;
	*out = v * (unit ? unit : 1);
	return 0;
}

int mv_parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
	unsigned long long v;
	uint64_t mul;
	unsigned shift = 0;
	double frac = 0;
	char *end;
	int ret;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return parse_hex(s, default_unit, out);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end == '.') {
		char *fend;

		frac = strtod(end, &fend);
		if (fend == end + 1)
			return -EINVAL;
		end = fend;
	}
	ret = suffix_shift(end, &shift);
	if (ret < 0)
		return ret;
	mul = ret ? default_unit : 1ull << shift;
	if (!mul || v > UINT64_MAX / mul)
		return -ERANGE;
	if (frac) {
		double part = frac * (double)mul;

		if (mul < 2)
			return -EINVAL; /* a fraction of a byte */
		if ((double)(UINT64_MAX - v * mul) < part)
			return -ERANGE;
		*out = v * mul + (uint64_t)part;
		return 0;
	}
	*out = v * mul;
	return 0;
}
