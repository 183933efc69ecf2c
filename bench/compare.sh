#!/usr/bin/env bash
# linkstyle's stages (pairs, fit, sweep) against a one-image-at-a-time reference pipeline and the
# raw batched ceiling, on the shipped shapes models and the real-scale models; prints one markdown
# table. Long (several minutes): not part of `make bench`. bench/compare.py documents every option.
# Usage: bench/compare.sh <build folder> [--models shapes|realscale|both] [--threads 2] [--quick] ...
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/compare.py" "$@"
