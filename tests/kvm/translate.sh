#!/bin/sh
# SPDX-License-Identifier: MIT
# memvirt translate on the halted dirtywriter guest (issue 4, item 6):
# with 2 MiB and with 4 KiB guest pages, every GVA's walk must agree with
# KVM_TRANSLATE and the slot's HVA with the memory core; pages the guest
# wrote have an HPA when /proc/self/pagemap gives PFNs (root), otherwise
# the output says why; a hole has no slot; unmapped and non-canonical
# addresses say so.  Exit 77 without /dev/kvm.
#
#   translate.sh MEMVIRT
memvirt=$1
[ -r /dev/kvm ] && [ -w /dev/kvm ] || {
	echo "SKIP: no /dev/kvm" >&2
	exit 77
}

fail() {
	printf '%s\n' "$out"
	echo "translate.sh: FAIL ($pages): $*" >&2
	exit 1
}

has() {
	printf '%s\n' "$out" | grep -qF -- "$1" || fail "missing '$1'"
}

# 0x9e000: the boot stack; 0x1200000: the guest's work area (16 MiB +
# 2 MiB), both written by the guest; 0xdead0000: mapped by the guest's
# tables but no RAM behind it.
for pages in 2m 4k; do
	opt=
	[ $pages = 4k ] && opt=--pages-4k
	out=$("$memvirt" translate $opt 0x9e000 0x1200000 0xdead0000 \
		0x7fff00000000 0x800000000000 2>&1) || fail "exit status $?"
	printf '%s\n' "$out" | grep -q DISAGREES && fail "a cross-check disagrees"
	n=$(printf '%s\n' "$out" | grep -c 'KVM_TRANSLATE: .*\[agrees\]')
	[ "$n" -eq 5 ] || fail "$n of 5 KVM_TRANSLATE cross-checks agree"
	has "GVA -> GPA  0x000000000009e000"
	has "GVA -> GPA  0x0000000001200000"
	has "GVA -> GPA  0x00000000dead0000"
	has "none: no KVM memslot holds this GPA"
	has "not present: 0x0"
	has "is not canonical"
	n=$(printf '%s\n' "$out" | grep -c '\[memory core agrees\]')
	[ "$n" -eq 2 ] || fail "$n of 2 HVAs agree with the memory core"
	if [ "$(id -u)" -eq 0 ]; then
		n=$(printf '%s\n' "$out" | grep -c 'HVA -> HPA  0x')
		[ "$n" -eq 2 ] || fail "$n of 2 written pages have an HPA"
	else
		n=$(printf '%s\n' "$out" | grep -c 'HVA -> HPA  unknown: ')
		[ "$n" -eq 2 ] || fail "$n of 2 HPA lines say why there is none"
	fi
	if [ $pages = 4k ]; then
		has "(4 KiB page, rw, user)"
		has "PTE   at gpa"
	else
		has "(2048 KiB page, rw, user)"
	fi
done
echo "translate.sh: PASS"
