#!/usr/bin/env bash
# Quality gates of the shortcut model on eight Gaussians (image-methods spec §5, G1-G3), each on
# the median of three seeds, beside the flow teacher trained with the same seeds: trains both
# per seed, evaluates k = 1..128 shortcut steps, a single Euler step on the flow level (G3), and
# the teacher's Euler 1 and 100, then prints the medians, the gates and the ratio of the
# shortcut's 1-step SW1 to the teacher's 100-step SW1. About 15 minutes on 2 cores.
#
#   bench/run_shortcut_toy.sh                 # seeds 1 2 3, each config's own step count
#   SEEDS="1" STEPS=2000 bench/run_shortcut_toy.sh   # a quick look: both runs 2000 steps
#   WORK=DIR bench/run_shortcut_toy.sh        # keeps the runs in DIR; a re-run reuses finished ones
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
onestep=${ONESTEP:-$root/build/onestep}
seeds=${SEEDS:-"1 2 3"}
steps=${STEPS:-}
work=${WORK:-$(mktemp -d)}
python=${PYTHON:-python3}

[[ -x $onestep ]] || { echo "error: $onestep not found; build it first (scripts/setup.sh)" >&2; exit 2; }
echo "machine: $(nproc) cores; runs and results under $work" >&2

evaluate() {   # run, label, extra eval args...
    local run=$1 label=$2; shift 2
    "$onestep" eval toy --fake "ckpt:$run" --n 2000 --seed "$seed" --out "$work/eval/$label-seed$seed.json" "$@" >/dev/null
}

mkdir -p "$work/eval"
for seed in $seeds; do
    for method in flow shortcut; do
        if [[ -f $work/$method-seed$seed/checkpoints/latest.ckpt ]]; then   # a re-run finishes or reuses it
            "$onestep" train "$method" --resume "$work/$method-seed$seed" >> "$work/$method-seed$seed.log" 2>&1
            continue
        fi
        echo "seed $seed: training $method (${steps:-configured} steps)" >&2
        "$onestep" train "$method" --config "$root/configs/toy2d/$method.yaml" --run-dir "$work/$method-seed$seed" \
            --set seed="$seed" ${steps:+--set steps="$steps"} --set ckpt_every=100000 > "$work/$method-seed$seed.log" 2>&1
    done
    echo "seed $seed: evaluating" >&2
    evaluate "$work/flow-seed$seed" teacher-euler1 --sampler euler --steps 1
    evaluate "$work/flow-seed$seed" teacher-euler100 --sampler euler --steps 100
    for k in 1 2 4 8 16 32 64 128; do
        evaluate "$work/shortcut-seed$seed" "shortcut-$k" --sampler shortcut --steps "$k"
    done
    evaluate "$work/shortcut-seed$seed" shortcut-flowlevel-euler1 --sampler euler --steps 1
done

"$python" - "$work/eval" $seeds <<'PY'
import json, statistics, sys
folder, seeds = sys.argv[1], sys.argv[2:]
def med(label, key):
    return statistics.median(json.load(open(f"{folder}/{label}-seed{s}.json"))[key] for s in seeds)
labels = ["teacher-euler1", "teacher-euler100"] + [f"shortcut-{k}" for k in (1, 2, 4, 8, 16, 32, 64, 128)] + ["shortcut-flowlevel-euler1"]
print(f"median over seeds {', '.join(seeds)} (N = 2000 against fresh data)")
print(f"{'samples':28s} {'SW1':>8s} {'MMD^2':>8s} {'HQ':>6s}")
for label in labels:
    print(f"{label:28s} {med(label, 'sw1'):8.4f} {med(label, 'mmd2'):8.4f} {med(label, 'hq'):6.3f}")
print(f"{'real vs real (floor)':28s} {med('shortcut-1', 'sw1_floor'):8.4f} {med('shortcut-1', 'mmd2_floor'):8.4f} {med('shortcut-1', 'hq_floor'):6.3f}")
sw = {k: med(f"shortcut-{k}", "sw1") for k in (1, 2, 4, 8)}
gates = [
    ("G1 one step: HQ >= 0.70 and SW1 <= 0.20", med("shortcut-1", "hq") >= 0.70 and sw[1] <= 0.20),
    ("G1 four steps: HQ >= 0.85", med("shortcut-4", "hq") >= 0.85),
    ("G1 128 steps: HQ >= 0.93", med("shortcut-128", "hq") >= 0.93),
    ("G2 monotone: SW1(k) <= SW1(k/2) + 0.01, k = 2, 4, 8", all(sw[k] <= sw[k // 2] + 0.01 for k in (2, 4, 8))),
    ("G3 Euler 1 on the flow level: HQ <= 0.10", med("shortcut-flowlevel-euler1", "hq") <= 0.10),
]
for name, ok in gates:
    print(f"{'PASS' if ok else 'FAIL'}  {name}")
ratio = sw[1] / med("teacher-euler100", "sw1")
print(f"1-step shortcut SW1 / teacher 100-step SW1 = {ratio:.2f} (aim: <= 2)")
PY
