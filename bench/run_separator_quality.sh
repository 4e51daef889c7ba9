#!/usr/bin/env bash
# Per-stem uSDR and cSDR of trained separators, of their ensemble, and of the mixture / K floor
# on the rendered test splits (in-distribution soundfonts and unseen ones), through the real
# `separate` and `eval sdr` commands.
#
#   RUNS="/tmp/sep-ci-small /tmp/umx-small" STEMS=/tmp/stems-small bench/run_separator_quality.sh
#   SPLITS="test test-ood" OVERLAP=0.25 WORK=/tmp/sepq bench/run_separator_quality.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
onestep=${BUILD_DIR:-$root/build}/onestep
runs=${RUNS:?set RUNS to one or more separator run folders}
stems=${STEMS:?set STEMS to the rendered stem root (with test/ and test-ood/)}
splits=${SPLITS:-"test test-ood"}
overlap=${OVERLAP:-0.25}
threads=${THREADS:-2}
work=${WORK:-$(mktemp -d)}

echo "machine: $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); work: $work" >&2
names=()
for run in $runs; do names+=("$(basename "$run")"); done
ensemble=$(tr ' ' ',' <<<"$runs")
[[ ${#names[@]} -gt 1 ]] && names+=("ensemble")

for split in $splits; do
    [[ -d $stems/$split ]] || { echo "skip $split: $stems/$split missing" >&2; continue; }
    inputs=$(ls "$stems/$split"/*/mixture.wav)
    i=0
    for name in "${names[@]}"; do
        if [[ $name == ensemble ]]; then ckpt=$ensemble; else ckpt=$(awk -v n=$((i + 1)) '{print $n}' <<<"$runs"); fi
        i=$((i + 1))
        out=$work/$split/$name
        if [[ ! -f $out/scores/summary.json ]]; then
            rm -rf "$out"
            mkdir -p "$out"
            # shellcheck disable=SC2086
            "$onestep" separate --ckpt "$ckpt" $inputs --out "$out/est" --overlap "$overlap" --threads "$threads" \
                --format wav-float > "$out.separate.log"
            "$onestep" eval sdr --ref "$stems/$split" --est "$out/est" --out "$out/scores" --metrics usdr,csdr \
                --threads "$threads" > "$out.eval.log"
        fi
    done
    floor=$work/$split/oracle
    if [[ ! -f $floor/scores/mix-k/summary.json ]]; then
        mkdir -p "$floor"
        "$onestep" eval oracle --ref "$stems/$split" --out "$floor" --methods mix-k --metrics usdr,csdr > "$floor.log"
    fi
done

printf 'split\tmodel\tstem\tuSDR_mean\tcSDR_median\n'
for split in $splits; do
    for name in "${names[@]}" oracle; do
        summary=$work/$split/$name/scores/summary.json
        [[ $name == oracle ]] && summary=$work/$split/oracle/scores/mix-k/summary.json
        [[ -f $summary ]] || continue
        label=$name; [[ $name == oracle ]] && label="mixture/K"
        jq -r --arg split "$split" --arg model "$label" '.targets | to_entries[] |
            [$split, $model, .key, (.value.uSDR.mean | . * 100 | round / 100),
             (.value.cSDR.median_of_medians | . * 100 | round / 100)] | @tsv' "$summary"
        jq -r --arg split "$split" --arg model "$label" '[$split, $model, "mean",
            ([.targets[] | .uSDR.mean] | add / length | . * 100 | round / 100),
            (.scores.musdb_csdr | . * 100 | round / 100)] | @tsv' "$summary"
    done
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
