#!/usr/bin/env bash
# Per-stem uSDR and cSDR of trained separators, of their ensemble, and of the mixture / K floor
# on the rendered test splits (in-distribution soundfonts and unseen ones), through the real
# `separate` and `eval sdr` commands. A flow separator is named RUN@K to separate in K steps;
# each model also gets its mean SI-SDRi, real-time factor and network evaluations per audio second.
#
#   RUNS="/tmp/sep-ci-small /tmp/umx-small" STEMS=/tmp/stems-small bench/run_separator_quality.sh
#   RUNS="/tmp/flow-sep@1 /tmp/flow-sep@8 /tmp/sep-ci" SPLITS=test ENSEMBLE=0 bench/run_separator_quality.sh
#   SPLITS="test test-ood" OVERLAP=0.25 WORK=/tmp/sepq bench/run_separator_quality.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
onestep=${BUILD_DIR:-$root/build}/onestep
runs=${RUNS:?set RUNS to one or more separator run folders (RUN@K: a flow separator in K steps)}
stems=${STEMS:?set STEMS to the rendered stem root (with test/ and test-ood/)}
splits=${SPLITS:-"test test-ood"}
overlap=${OVERLAP:-0.25}
threads=${THREADS:-2}
with_ensemble=${ENSEMBLE:-1}
work=${WORK:-$(mktemp -d)}

echo "machine: $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); work: $work" >&2
names=() checkpoints=() step_options=()
for entry in $runs; do
    run=${entry%@*}
    steps=""; [[ $entry == *@* ]] && steps=${entry##*@}
    names+=("$(basename "$run")${steps:+-k$steps}")
    checkpoints+=("$run")
    step_options+=("${steps:+--steps $steps}")
done
if [[ ${#names[@]} -gt 1 && $with_ensemble == 1 ]]; then
    names+=("ensemble")
    checkpoints+=("$(tr ' ' ',' <<<"${checkpoints[*]}")")
    step_options+=("")
fi

for split in $splits; do
    [[ -d $stems/$split ]] || { echo "skip $split: $stems/$split missing" >&2; continue; }
    inputs=$(ls "$stems/$split"/*/mixture.wav)
    for i in "${!names[@]}"; do
        out=$work/$split/${names[$i]}
        if [[ ! -f $out/scores/summary.json ]]; then
            rm -rf "$out"
            mkdir -p "$out"
            # shellcheck disable=SC2086
            "$onestep" separate --ckpt "${checkpoints[$i]}" $inputs --out "$out/est" --overlap "$overlap" --threads "$threads" \
                --format wav-float ${step_options[$i]} > "$out.separate.log"
            "$onestep" eval sdr --ref "$stems/$split" --est "$out/est" --out "$out/scores" --metrics usdr,csdr,sisdr \
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

# Cost beside quality: the mean RTF and network evaluations per audio second over the split's tracks.
printf '\nsplit\tmodel\tSI-SDRi_mean\tRTF_mean\tevaluations_per_audio_second\n'
for split in $splits; do
    for name in "${names[@]}"; do
        summary=$work/$split/$name/scores/summary.json
        [[ -f $summary ]] || continue
        sisdri=$(jq -r '[.targets[] | ."SI-SDRi".mean] | add / length | . * 100 | round / 100' "$summary")
        cost=$(sed -n 's/.*RTF \([0-9.]*\), \([0-9.]*\) network evaluations.*/\1 \2/p' "$work/$split/$name.separate.log" |
            awk '{ rtf += $1; nfe += $2; n += 1 } END { if (n) printf "%.3f\t%.2f", rtf / n, nfe / n }')
        printf '%s\t%s\t%s\t%s\n' "$split" "$name" "$sisdri" "$cost"
    done
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
