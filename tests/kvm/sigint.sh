#!/bin/sh
# SPDX-License-Identifier: MIT
# SIGINT stops `memvirt run` cleanly (issue 4, item 3): a raw guest that
# spins forever at CPL3 on two vCPUs is interrupted after 300 ms; memvirt
# must say it is stopping, exit 130 by itself (not killed by the signal),
# and -- in sanitizer builds -- report no leak or error.  Exit 77 without
# /dev/kvm.
#
#   sigint.sh MEMVIRT
memvirt=$1
[ -r /dev/kvm ] && [ -w /dev/kvm ] || {
	echo "SKIP: no /dev/kvm" >&2
	exit 77
}
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
printf '\353\376' >"$dir/spin.bin" # jmp .

"$memvirt" run --guest "$dir/spin.bin" --machine micro -m 64M --vcpus 2 \
	>"$dir/out" 2>"$dir/err" &
pid=$!
sleep 0.3
kill -INT $pid
wait $pid
rc=$?
cat "$dir/out" "$dir/err"
if [ $rc -ne 130 ]; then
	echo "sigint.sh: FAIL: exit status $rc, expected 130" >&2
	exit 1
fi
if ! grep -q "stopping the guest" "$dir/err"; then
	echo "sigint.sh: FAIL: memvirt did not handle SIGINT itself" >&2
	exit 1
fi
if grep -q "Sanitizer" "$dir/err"; then
	echo "sigint.sh: FAIL: sanitizer report" >&2
	exit 1
fi
echo "sigint.sh: PASS"
