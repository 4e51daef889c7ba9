#!/usr/bin/env bash
# Sampling throughput of 1-step against 100-step Euler with the same network (U-Net and DiT),
# through the real sampler; prints images/s of each and their ratio. Builds nothing: build
# onestep_bench_sample first (see bench/README.md).
#
#   bench/run_sample.sh
#   MODELS=dit SECONDS_PER_COUNT=30 bench/run_sample.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
binary=$build/bench/onestep_bench_sample
models=${MODELS:-"unet dit"}
batch=${BATCH:-64}
threads=${THREADS:-2}
seconds=${SECONDS_PER_COUNT:-20}
out=${OUT:-$(mktemp -d)/sample.jsonl}

[[ -x $binary ]] || { echo "error: $binary not found; build it with: ninja -C $build onestep_bench_sample" >&2; exit 2; }

# The binary sets this itself (core/runtime.hpp); spinning libgomp workers fight OpenBLAS's
# threads on small machines.
export OMP_WAIT_POLICY=PASSIVE

echo "machine: $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "results: $out" >&2
: > "$out"
for model in $models; do
    echo "$model (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    "$binary" --model "$model" --batch "$batch" --threads "$threads" --steps 1 --steps 100 --seconds "$seconds" >> "$out"
done

jq -r 'select(.bench == "sample") | [.model, .steps, .nfe, .batch, .threads, .batches,
        (.images_per_s | . * 100 | round / 100), (.ms_per_network_evaluation | . * 10 | round / 10)] | @tsv' "$out" |
    (printf 'model\tsteps\tNFE\tbatch\tthreads\tbatches\timages/s\tms/NFE\n'; cat) | column -t
jq -r 'select(.bench == "sample_ratio") | "\(.model): \(.few_steps)-step is \(.speedup | . * 10 | round / 10)x the images/s of \(.many_steps)-step"' "$out"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
