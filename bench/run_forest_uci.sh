#!/usr/bin/env bash
# ForestFlow / ForestDiffusion on the offline UCI sets against the paper's protocol (tabular spec
# §10, §12): the splits of `onestep data fetch uci` (80/20, seeds 0..2), five generated sets of
# n_train rows per split, `onestep eval tabular` over the five, means over the splits.
#
#   bench/run_forest_uci.sh iris                       # forest-flow at the paper's defaults
#   METHOD=forest-diffusion SPLITS=0 SETTINGS="--set levels=10" bench/run_forest_uci.sh wine
set -euo pipefail

name=${1:?usage: run_forest_uci.sh DATASET (iris, wine, breast-cancer, ...)}
root=$(cd "$(dirname "$0")/.." && pwd)
onestep=${BUILD_DIR:-$root/build}/onestep
uci=${UCI:-$root/data/uci}
work=${WORK:-/tmp/forest-uci}
method=${METHOD:-forest-flow}
splits=${SPLITS:-"0 1 2"}
settings=${SETTINGS:-}
threads=${THREADS:-0}

[ -f "$uci/$name/dataset.json" ] || "$onestep" data fetch uci --out "$uci" --only "$name"
info=$uci/$name/dataset.json
kinds=()
label=$(jq -r '.label // empty' "$info")
[ "$(jq -r .task "$info")" = classification ] && kinds+=(--label "$label")
for kind in cat:categorical int:integer bin:binary; do
    list=$(jq -r ".${kind#*:} | join(\",\")" "$info")
    [ -n "$list" ] && kinds+=("--${kind%%:*}" "$list")
done

mkdir -p "$work"
for split in $splits; do
    data=$uci/$name/split$split
    run=$work/$name-$method-$split
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$onestep" train "$method" --data "$data/train.csv" "${kinds[@]}" --run-dir "$run" --threads "$threads" $settings \
        2>/dev/null | tail -1 >&2
    seconds=$(( $(date +%s) - start ))
    rows=$(( $(wc -l < "$data/train.csv") - 1 ))
    fakes=()
    for generation in 0 1 2 3 4; do
        "$onestep" sample --ckpt "$run" --n "$rows" --seed $((100 + generation)) --out "$run/fake$generation.csv" >/dev/null
        fakes+=(--fake "$run/fake$generation.csv")
    done
    "$onestep" eval tabular --train "$data/train.csv" --test "$data/test.csv" "${fakes[@]}" "${kinds[@]}" \
        --out "$run/eval.json" >/dev/null 2>&1
    "$onestep" eval tabular --train "$data/train.csv" --test "$data/test.csv" --fake "$data/train.csv" \
        --fake "$data/train.csv" "${kinds[@]}" --out "$run/oracle.json" >/dev/null 2>&1
    jq -c --arg split "$split" --arg seconds "$seconds" --slurpfile oracle "$run/oracle.json" \
        '{split: $split, train_s: $seconds, w1_train, w1_test, coverage_train, coverage_test, tstr_xgb_fake,
          tstr_xgb_real, disc_xgb_f1, oracle_w1_test: $oracle[0].w1_test}' "$run/eval.json"
done | tee "$work/$name-$method.jsonl"
echo "means over splits:"
jq -s '{w1_train: (map(.w1_train) | add / length), w1_test: (map(.w1_test) | add / length),
        coverage_train: (map(.coverage_train) | add / length), coverage_test: (map(.coverage_test) | add / length),
        tstr_xgb_fake: (map(.tstr_xgb_fake) | add / length), tstr_xgb_real: (map(.tstr_xgb_real) | add / length),
        disc_xgb_f1: (map(.disc_xgb_f1) | add / length), oracle_w1_test: (map(.oracle_w1_test) | add / length)}' \
    "$work/$name-$method.jsonl"
