#!/usr/bin/env bash
# Set-up, build, then every test (ctest labels: unit, integration, slow).
# ONESTEP_TEST_LABELS narrows the run, e.g. ONESTEP_TEST_LABELS=unit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
args=(--output-on-failure -j "$(nproc)")
[ -n "${ONESTEP_TEST_LABELS:-}" ] && args+=(-L "$ONESTEP_TEST_LABELS")
start=$(date +%s)
ctest "${args[@]}"
echo "test: ctest finished in $(( $(date +%s) - start )) s"
