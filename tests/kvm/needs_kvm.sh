#!/bin/sh
# SPDX-License-Identifier: MIT
# Run a command that needs /dev/kvm: exit 77 (meson's SKIP) without a
# usable /dev/kvm, else the command's status -- or, with --expect N,
# 0 when the command exits with N and 1 otherwise.
#
#   needs_kvm.sh [--expect N] COMMAND [ARG...]
[ -r /dev/kvm ] && [ -w /dev/kvm ] || {
	echo "SKIP: no /dev/kvm" >&2
	exit 77
}
if [ "$1" = "--expect" ]; then
	want=$2
	shift 2
	"$@"
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "needs_kvm.sh: '$*' exited with $got, expected $want" >&2
		exit 1
	fi
	exit 0
fi
exec "$@"
