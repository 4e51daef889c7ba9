#!/usr/bin/env bash
# Data-parallel scaling on this machine: the flow teacher on eight Gaussians at 1 and 2 processes
# with the same global batch (each of the 2 with half the threads), steps/s, examples/s and the
# gradient all-reduce time per step; with SEEDS, also the sliced-W1 of both per seed.
#
#   bench/run_distributed.sh                        # 300 steps of configs/toy2d/flow.yaml, batch 512
#   STEPS=3000 SEEDS="1 2 3" bench/run_distributed.sh   # plus quality: SW1 per seed, 1 vs 2 processes
#   CONFIG=configs/fmnist/flow.yaml BATCH=64 bench/run_distributed.sh   # another model
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
onestep=${ONESTEP:-$root/build/onestep}
config=${CONFIG:-$root/configs/toy2d/flow.yaml}
steps=${STEPS:-300}
batch=${BATCH:-512}
seeds=${SEEDS:-}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
python=${PYTHON:-python3}

[[ -x $onestep ]] || { echo "error: $onestep not found; build it first (scripts/setup.sh)" >&2; exit 2; }
(( batch % 2 == 0 )) || { echo "error: BATCH=$batch must be even (2 processes x BATCH/2)" >&2; exit 2; }
echo "machine: $(nproc) cores; $config, $steps steps, global batch $batch; runs under $work" >&2

train() {   # processes, seed, run name
    local processes=$1 seed=$2 run=$work/$3
    local common=(--config "$config" --run-dir "$run" --set seed="$seed" --set steps="$steps"
                  --set ckpt_every=1000000 --set log_every=10 --set sample_every=1000000)
    rm -rf "$run"
    if (( processes == 1 )); then
        "$onestep" train flow "${common[@]}" --set batch_size="$batch" > "$run.log" 2>&1
    else
        "$onestep" launch -n "$processes" --master-port 0 -- train flow "${common[@]}" \
            --set batch_size=$((batch / processes)) > "$run.log" 2>&1
    fi
}

for processes in 1 2; do
    echo "speed: $processes process(es)" >&2
    train "$processes" 1 "speed-$processes"
done
for seed in $seeds; do
    for processes in 1 2; do
        echo "quality: seed $seed, $processes process(es)" >&2
        train "$processes" "$seed" "quality-$processes-seed$seed"
        "$onestep" eval toy --fake "ckpt:$work/quality-$processes-seed$seed" --n 2000 --seed "$seed" \
            --out "$work/quality-$processes-seed$seed.json" > /dev/null
    done
done

"$python" - "$work" "$batch" "$seeds" <<'PY'
import json, statistics, sys
work, batch, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def records(run):
    return [json.loads(line) for line in open(f"{work}/{run}/log.jsonl") if '"loss"' in line]
print(f"{'processes':>9s} {'steps/s':>8s} {'examples/s':>11s} {'all-reduce ms/step':>19s} {'speed-up':>8s}")
base = None
for processes in (1, 2):
    log = records(f"speed-{processes}")
    # Rate over the records after the first, so start-up and the first step's allocations are left out.
    first, last = log[0], log[-1]
    rate = (last["step"] - first["step"]) / (last["time_s"] - first["time_s"])
    base = base or rate
    reduce_ms = statistics.mean(r["allreduce_ms"] for r in log[1:]) if "allreduce_ms" in last else 0.0
    print(f"{processes:9d} {rate:8.2f} {rate * batch:11.0f} {reduce_ms:19.3f} {rate / base:8.2f}")
if seeds:
    print(f"\nsliced W1 against fresh data (N = 2000), global batch {batch}")
    print(f"{'seed':>4s} {'1 process':>10s} {'2 processes':>12s}")
    values = {1: [], 2: []}
    for seed in seeds:
        row = [json.load(open(f"{work}/quality-{p}-seed{seed}.json"))["sw1"] for p in (1, 2)]
        values[1].append(row[0]); values[2].append(row[1])
        print(f"{seed:>4s} {row[0]:10.4f} {row[1]:12.4f}")
    for p in (1, 2):
        spread = statistics.stdev(values[p]) if len(values[p]) > 1 else float("nan")
        print(f"{p} process(es): mean {statistics.mean(values[p]):.4f}, seed-to-seed std {spread:.4f}")
    floor = json.load(open(f"{work}/quality-1-seed{seeds[0]}.json")).get("sw1_floor")
    if floor is not None:
        print(f"real vs real floor: {floor:.4f}")
PY
