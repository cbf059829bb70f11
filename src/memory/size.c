// SPDX-License-Identifier: MIT
/*
 * Size strings as QEMU's -m takes them: a number with an optional binary
 * suffix (K, M, G, T, P, E; optional "iB" or "B"), decimal or 0x-hex.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/memory.h>

static int suffix_shift(const char *s, unsigned *shift)
{
	static const char units[] = "KMGTPE";
	const char *u;

	if (!*s)
		return 1; /* no suffix */
	u = strchr(units, toupper((unsigned char)*s));
	if (!u && (*s == 'b' || *s == 'B') && !s[1]) {
		*shift = 0;
		return 0;
	}
	if (!u)
		return -EINVAL;
	*shift = 10 * (unsigned)(u - units + 1);
	s++;
	if (!strcmp(s, "") || !strcmp(s, "B") || !strcmp(s, "iB") ||
	    !strcmp(s, "b"))
		return 0;
	return -EINVAL;
}

int mv_parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;
	int ret;

	if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (end == s)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	ret = suffix_shift(end, &shift);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		if (default_unit && v > UINT64_MAX / default_unit)
			return -ERANGE;
		*out = v * default_unit;
		return 0;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}
