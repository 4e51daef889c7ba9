#!/usr/bin/env bash
# ForestFlow on iris against the paper's protocol (tabular spec §10, §12): stratified 80/20 splits
# 0..2, five generated sets of n_train rows each, W1 to the train and test rows, through the CLI.
#
#   bench/run_forest_iris.sh                              # paper defaults: 50 levels, K = 100
#   SPLITS=0 SETTINGS="--set levels=10 --set duplicates=20" WORK=/tmp/iris bench/run_forest_iris.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
onestep=${BUILD_DIR:-$root/build}/onestep
work=${WORK:-/tmp/forest-iris}
splits=${SPLITS:-"0 1 2"}
settings=${SETTINGS:-}

for split in $splits; do
    data=$work/split$split
    run=$work/run$split
    "$onestep" forest fetch iris --out "$data" --seed "$split" >/dev/null
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$onestep" forest train forest-flow --data "$data/train.csv" --label species --out "$run" $settings
    echo "split $split: training $(( $(date +%s) - start )) s"
    rows=$(( $(wc -l < "$data/train.csv") - 1 ))
    for generation in 0 1 2 3 4; do
        "$onestep" forest sample --run "$run" --n "$rows" --seed $((100 + generation)) \
            --out "$run/fake$generation.csv" >/dev/null
        "$onestep" forest eval --run "$run" --fake "$run/fake$generation.csv" \
            --real "$data/train.csv" --real "$data/test.csv"
    done
    "$onestep" forest eval --run "$run" --fake "$data/train.csv" --real "$data/test.csv" | sed 's/^/oracle /'
done
