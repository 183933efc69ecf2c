#!/usr/bin/env bash
# Runs every benchmark and prints its figures. Usage: bench/run.sh <build folder>
set -euo pipefail
build=${1:-build}
"$build"/bench/bench_fit "${@:2}"
"$build"/bench/bench_sweep "${@:2}"
