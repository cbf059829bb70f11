#!/bin/sh
# SPDX-License-Identifier: MIT
# A short libFuzzer run that never writes into the source tree: libFuzzer
# adds new inputs to its FIRST corpus directory, so that is a scratch
# directory (under the build directory); the seed directory is only read.
# usage: run_fuzz.sh FUZZER SCRATCH_DIR SEED_DIR [libFuzzer options...]
set -eu
fuzzer=$1
scratch=$2
seeds=$3
shift 3
mkdir -p "$scratch"
# libFuzzer exits with 77 on a crash by default: meson would call that a
# skip.
exec "$fuzzer" -error_exitcode=1 "$@" "$scratch" "$seeds"
