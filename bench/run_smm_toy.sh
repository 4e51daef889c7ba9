#!/usr/bin/env bash
# Quality check of Score Mismatching on eight Gaussians (image-methods spec §9, "How to verify"),
# on the median of three seeds: one step of the generator must reach HQ >= 0.5 and cover at least
# 6 of the 8 modes (share >= 0.02); N(0, I) noise scores HQ 0.05. Both mismatch targets are run:
# the paper's independent noise and the zero target. About 20 minutes on 2 cores.
#
#   bench/run_smm_toy.sh                   # seeds 1 2 3
#   WORK=DIR bench/run_smm_toy.sh          # keeps the runs in DIR; a re-run reuses finished ones
#   SET="--set optim.lr=1e-3" bench/run_smm_toy.sh   # extra settings for every run
set -euo pipefail

source "$(dirname "$0")/toy_runs.sh"
targets=${TARGETS:-"noise zero"}
read -r -a extra <<< "${SET:-}"

for seed in $seeds; do
    for target in $targets; do
        train score-mismatch "$work/smm-$target-seed$seed" --config "$root/configs/toy2d/score-mismatch.yaml" \
            --set seed="$seed" --set smm.mismatch_target="$target" "${extra[@]}"
        "$onestep" eval toy --fake "ckpt:$work/smm-$target-seed$seed" --n 2000 --seed "$seed" \
            --out "$work/eval/smm-$target-seed$seed.json" >/dev/null 2>&1
    done
done

"$python" - "$work/eval" "$targets" $seeds <<'PY'
import json, statistics, sys
folder, targets, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
def record(label, s):
    return json.load(open(f"{folder}/{label}-seed{s}.json"))
def med(label, key):
    return statistics.median(record(label, s)[key] for s in seeds)
def modes(label):
    return statistics.median(sum(share >= 0.02 for share in record(label, s)["mode_share"]) for s in seeds)
print(f"median over seeds {', '.join(seeds)} (N = 2000 against fresh data; one step)")
print(f"{'mismatch target':20s} {'SW1':>8s} {'MMD^2':>8s} {'HQ':>6s} {'modes':>6s}   per seed (HQ/modes)")
for target in targets:
    label = f"smm-{target}"
    per_seed = "  ".join(f"{record(label, s)['hq']:.2f}/{sum(x >= 0.02 for x in record(label, s)['mode_share'])}"
                         for s in seeds)
    print(f"{target:20s} {med(label, 'sw1'):8.4f} {med(label, 'mmd2'):8.4f} {med(label, 'hq'):6.3f} {modes(label):6.0f}   {per_seed}")
for target in targets:
    label = f"smm-{target}"
    ok = med(label, "hq") >= 0.5 and modes(label) >= 6
    print(f"{'PASS' if ok else 'FAIL'}  target {target}: HQ >= 0.5 and at least 6 of 8 modes")
PY
