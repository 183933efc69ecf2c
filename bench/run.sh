#!/usr/bin/env bash
# Runs bench_fit, bench_sweep, bench_counterfactual and bench_serve and prints their figures. Usage: bench/run.sh <build folder>
# Not run here (several minutes): linkstyle against the reference pipeline and the ceiling,
#   bench/compare.sh <build folder> [--models shapes|realscale|both] [--threads 2] [--quick]
set -euo pipefail
build=${1:-build}
"$build"/bench/bench_fit "${@:2}"
"$build"/bench/bench_sweep "${@:2}"
"$build"/bench/bench_counterfactual "${@:2}"
"$build"/bench/bench_serve "${@:2}"
