#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Golden tests: for each machine file NAME.json beside this script, compare
# `memvirt mtree --events NAME.json` with NAME.events byte for byte.
# Usage: run_golden.sh MEMVIRT [--update]
set -u
memvirt=$(realpath "$1")
dir=$(cd "$(dirname "$0")" && pwd)
pass=0 fail=0
for json in "$dir"/*.json; do
	name=$(basename "$json" .json)
	want="$dir/$name.events"
	got=$(cd "$dir" && "$memvirt" mtree --events "$name.json" 2>&1)
	if [ "${2:-}" = --update ]; then
		printf '%s\n' "$got" > "$want"
	fi
	if [ "$got" = "$(cat "$want")" ]; then
		echo "ok $name"
		pass=$((pass + 1))
	else
		echo "FAIL $name"
		diff -u "$want" <(printf '%s\n' "$got") | head -40
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
