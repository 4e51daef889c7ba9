#!/usr/bin/env bash
# Forest training memory at scale (tabular spec §7): one (level, class) task, streamed through the
# QuantileDMatrix iterator vs the reference's materialised levels × K × rows × columns float64 array,
# for K ∈ {10, 100, 1000} and rows ∈ {1k, 10k, 100k}; then n_t-independence and the parallel modes
# on whole runs. Configurations whose projected memory exceeds CAP_GB are reported, not run.
#
#   bench/run_forest_scale.sh                 # COLUMNS=8 ROUNDS=3 CAP_GB=6
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bench=${BUILD_DIR:-$root/build}/bench/onestep_bench_forest_scale
columns=${COLUMNS:-8}
rounds=${ROUNDS:-3}
levels=${LEVELS:-50}
cap_gb=${CAP_GB:-6}
json() { sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p" <<<"$1"; }

echo "| rows | K | streamed peak − base (MB) | estimate (MB) | iterator buffers (B) | build + ${rounds} rounds (s) | materialised peak − base (MB) | build + ${rounds} rounds (s) |"
echo "|---|---|---|---|---|---|---|---|"
for rows in 1000 10000 100000; do
    for k in 10 100 1000; do
        # XGBoost per task ≈ n·K·(2p + 16p + 16) B; the reference adds n_t·K·n·p·8 B of inputs.
        streamed_gb=$(awk -v n="$rows" -v k="$k" -v p="$columns" 'BEGIN { print n*k*(18*p+16)/1e9 }')
        materialised_gb=$(awk -v n="$rows" -v k="$k" -v p="$columns" -v l="$levels" \
            'BEGIN { print n*k*p*8*(l+1)/1e9 + n*k*(18*p+16)/1e9 }')
        streamed="projected $(printf %.1f "$streamed_gb") GB, not run"; streamed_time="–"; estimate="–"; buffers="–"
        if awk -v g="$streamed_gb" -v c="$cap_gb" 'BEGIN { exit !(g <= c) }'; then
            out=$("$bench" --mode streamed --rows "$rows" --duplicates "$k" --columns "$columns" --levels "$levels" --rounds "$rounds")
            streamed=$(awk -v a="$(json "$out" peak_rss_mb)" -v b="$(json "$out" base_rss_mb)" 'BEGIN { printf "%.0f", a-b }')
            estimate=$(printf %.0f "$(json "$out" task_estimate_mb)")
            buffers=$(json "$out" iterator_bytes)
            streamed_time=$(awk -v a="$(json "$out" build_s)" -v b="$(json "$out" train_s)" 'BEGIN { printf "%.1f + %.1f", a, b }')
        fi
        materialised="projected $(printf %.1f "$materialised_gb") GB, not run"; materialised_time="–"
        if awk -v g="$materialised_gb" -v c="$cap_gb" 'BEGIN { exit !(g <= c) }'; then
            out=$("$bench" --mode materialised --rows "$rows" --duplicates "$k" --columns "$columns" --levels "$levels" --rounds "$rounds")
            materialised=$(awk -v a="$(json "$out" peak_rss_mb)" -v b="$(json "$out" base_rss_mb)" 'BEGIN { printf "%.0f", a-b }')
            materialised_time=$(awk -v a="$(json "$out" build_s)" -v b="$(json "$out" train_s)" 'BEGIN { printf "%.1f + %.1f", a, b }')
        fi
        echo "| $rows | $k | $streamed | $estimate | $buffers | $streamed_time | $materialised | $materialised_time |"
    done
done

echo
echo "Whole runs (${FULL_ROWS:=2000} rows, K = ${FULL_K:=10}, ${FULL_ROUNDS:=5} rounds, ${columns} columns, 2 threads):"
echo
echo "| levels | parallel | peak − base (MB) | time (s) |"
echo "|---|---|---|---|"
for full_levels in 10 50; do
    for parallel in trees tasks; do
        out=$("$bench" --mode full --rows "$FULL_ROWS" --duplicates "$FULL_K" --columns "$columns" --levels "$full_levels" \
              --rounds "$FULL_ROUNDS" --threads 2 --parallel "$parallel" 2>/dev/null)
        peak=$(awk -v a="$(json "$out" peak_rss_mb)" -v b="$(json "$out" base_rss_mb)" 'BEGIN { printf "%.0f", a-b }')
        echo "| $full_levels | $parallel | $peak | $(json "$out" train_s) |"
    done
done
