#!/usr/bin/env bash
# Imputation with ForestDiffusion (tabular spec §6): 20% of the feature cells of a training split
# removed completely at random, a forest-diffusion run trained on the incomplete table (one booster
# per level, class and column), the holes filled without and with REPAINT; mean absolute error on
# the removed cells after min–max scaling to [0, 1], beside column-mean imputation.
#
#   bench/run_forest_impute.sh iris             # UCI=data/uci WORK=/tmp/forest-impute SETTINGS=...
set -euo pipefail

name=${1:?usage: run_forest_impute.sh DATASET}
root=$(cd "$(dirname "$0")/.." && pwd)
onestep=${BUILD_DIR:-$root/build}/onestep
uci=${UCI:-$root/data/uci}
work=${WORK:-/tmp/forest-impute}/$name
settings=${SETTINGS:-}
share=${SHARE:-0.2}
mkdir -p "$work"
[ -f "$uci/$name/dataset.json" ] || "$onestep" data fetch uci --out "$uci" --only "$name"
label=$(jq -r '.label' "$uci/$name/dataset.json")
complete=$uci/$name/split0/train.csv

# MCAR holes in every column but the label, seeded.
awk -F, -v OFS=, -v share="$share" -v label="$label" 'BEGIN { srand(7) }
    NR == 1 { for (i = 1; i <= NF; ++i) if ($i == label) skip = i; print; next }
    { for (i = 1; i <= NF; ++i) if (i != skip && rand() < share) $i = ""; print }' "$complete" > "$work/holes.csv"

start=$(date +%s)
# shellcheck disable=SC2086
"$onestep" train forest-diffusion --data "$work/holes.csv" --label "$label" --run-dir "$work/run" $settings 2>/dev/null | tail -1
echo "training: $(( $(date +%s) - start )) s"

# MAE over the removed cells, each column scaled by its range in the complete table.
mae() {
    awk -F, -v label="$label" 'FNR == 1 { file++; next }
        file == 1 { for (i = 1; i <= NF; ++i) { truth[FNR, i] = $i; if (!(i in lo) || $i < lo[i]) lo[i] = $i; if (!(i in hi) || $i > hi[i]) hi[i] = $i } }
        file == 2 { for (i = 1; i <= NF; ++i) hole[FNR, i] = ($i == "") }
        file == 3 { for (i = 1; i <= NF; ++i) if (hole[FNR, i] && hi[i] > lo[i]) { sum += ($i > truth[FNR, i] ? $i - truth[FNR, i] : truth[FNR, i] - $i) / (hi[i] - lo[i]); n++ } }
        END { printf "%.4f over %d cells\n", sum / n, n }' "$complete" "$work/holes.csv" "$1"
}
# Column means of the observed cells.
awk -F, -v OFS=, 'NR == FNR { if (FNR > 1) for (i = 1; i <= NF; ++i) if ($i != "") { s[i] += $i; c[i]++ } next }
    FNR == 1 { print; next } { for (i = 1; i <= NF; ++i) if ($i == "") $i = s[i] / c[i]; print }' \
    "$work/holes.csv" "$work/holes.csv" > "$work/mean.csv"
echo "column mean:        $(mae "$work/mean.csv")"
for repaint in 1 10,0.1; do
    start=$(date +%s.%N)
    "$onestep" impute --ckpt "$work/run" --data "$work/holes.csv" --out "$work/filled-$repaint.csv" --repaint "$repaint" \
        --seed 1 | tail -1
    echo "forest-diffusion, repaint $repaint: $(mae "$work/filled-$repaint.csv")"
done
