#!/usr/bin/env bash
# Quality checks of consistency distillation on eight Gaussians (image-methods spec §10, "How to
# verify"), on the median of three seeds, with the analytic mixture flow as the teacher (Heun on
# karras(18)). Per seed an MLP flow fitted for 3k steps starts the student (configs/toy2d/consistency.yaml).
#   Plain CD: one step HQ >= 0.60, SW1 <= 0.25, paired error (to the teacher's Euler-100 endpoint
#             from the same noise) <= 0.5; two steps SW1 <= one-step SW1 + 0.01.
#   Reward:   coarse labels (4 classes of two modes), reward = the exact log p(y | x), beta 0.1,
#             against beta = 0 at equal steps: the mean reward of one-step samples rises,
#             conditional accuracy does not fall, HQ falls by at most 0.05.
# About 25 minutes on 2 cores.
#
#   bench/run_consistency_toy.sh             # seeds 1 2 3
#   WORK=DIR bench/run_consistency_toy.sh    # keeps the runs in DIR; a re-run reuses finished ones
#   BETA=0.2 bench/run_consistency_toy.sh    # another reward weight
set -euo pipefail

source "$(dirname "$0")/toy_runs.sh"
beta=${BETA:-0.1}

evaluate() {   # --fake source, label, extra eval args...
    local source=$1 label=$2; shift 2
    "$onestep" eval toy --fake "$source" --n 2000 --seed "$seed" --out "$work/eval/$label-seed$seed.json" "$@" >/dev/null 2>&1
}

[[ -f $work/pairs.bin ]] || "$onestep" sample --ckpt analytic:8gaussians --pairs 2000 --sampler euler --steps 100 \
    --seed 0 --out "$work/pairs.bin" 2> "$work/pairs.log"

coarse=(--set data.name=toy:8gaussians-coarse --set data.conditional=true)
for seed in $seeds; do
    flow=(--config "$root/configs/toy2d/flow.yaml" --set seed="$seed" --set steps=3000 --set ckpt_every=3000)
    train flow "$work/init-seed$seed" "${flow[@]}"
    train flow "$work/init-coarse-seed$seed" "${flow[@]}" "${coarse[@]}"
    cd=(--config "$root/configs/toy2d/consistency.yaml" --set seed="$seed")
    train consistency "$work/cd-seed$seed" "${cd[@]}" --set consistency.init="$work/init-seed$seed"
    for b in 0 "$beta"; do
        train consistency "$work/cd-coarse-beta$b-seed$seed" "${cd[@]}" "${coarse[@]}" \
            --set consistency.init="$work/init-coarse-seed$seed" --set consistency.teacher=analytic:8gaussians-coarse \
            --set reward.classifier=analytic:8gaussians-coarse --set reward.classifier_weight="$b"
    done
    echo "seed $seed: evaluating" >&2
    evaluate analytic:8gaussians teacher-euler1 --sampler euler --steps 1 --pairs "$work/pairs.bin"
    for k in 1 2 4; do evaluate "ckpt:$work/cd-seed$seed" "cd-$k" --steps "$k" --pairs "$work/pairs.bin"; done
    for b in 0 "$beta"; do
        evaluate "ckpt:$work/cd-coarse-beta$b-seed$seed" "cd-coarse-beta$b" --steps 1 --real toy:8gaussians-coarse
    done
done

"$python" - "$work/eval" "$beta" $seeds <<'PY'
import json, statistics, sys
folder, beta, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
def record(label, s):
    return json.load(open(f"{folder}/{label}-seed{s}.json"))
def med(label, key):
    return statistics.median(record(label, s)[key] for s in seeds)
print(f"median over seeds {', '.join(seeds)} (N = 2000 against fresh data)")
print(f"{'model':32s} {'NFE':>4s} {'SW1':>7s} {'MMD^2':>7s} {'HQ':>6s} {'paired':>7s}   per-seed HQ")
rows = [("teacher Euler 1 (naive one step)", "teacher-euler1", 1)] + [(f"CD, {k} step(s)", f"cd-{k}", k) for k in (1, 2, 4)]
for name, label, nfe in rows:
    per_seed = " ".join(f"{record(label, s)['hq']:.2f}" for s in seeds)
    print(f"{name:32s} {nfe:4d} {med(label, 'sw1'):7.4f} {med(label, 'mmd2'):7.4f} {med(label, 'hq'):6.3f} "
          f"{med(label, 'paired_error'):7.4f}   {per_seed}")
print()
print(f"coarse labels, one step: {'beta':>6s} {'log p(y|x)':>11s} {'cacc':>6s} {'HQ':>6s} {'SW1':>7s}")
for b in ("0", beta):
    label = f"cd-coarse-beta{b}"
    print(f"{'':25s}{b:>6s} {med(label, 'log_p_y_given_x'):11.2e} {med(label, 'cacc'):6.3f} {med(label, 'hq'):6.3f} "
          f"{med(label, 'sw1'):7.4f}")
checks = [
    ("plain CD one step: HQ >= 0.60", med("cd-1", "hq") >= 0.60),
    ("plain CD one step: SW1 <= 0.25", med("cd-1", "sw1") <= 0.25),
    ("plain CD one step: paired error <= 0.5", med("cd-1", "paired_error") <= 0.5),
    ("two steps: SW1 <= one-step SW1 + 0.01", med("cd-2", "sw1") <= med("cd-1", "sw1") + 0.01),
    (f"reward beta {beta}: mean log p(y|x) rises", med(f"cd-coarse-beta{beta}", "log_p_y_given_x") > med("cd-coarse-beta0", "log_p_y_given_x")),
    (f"reward beta {beta}: conditional accuracy does not fall", med(f"cd-coarse-beta{beta}", "cacc") >= med("cd-coarse-beta0", "cacc")),
    (f"reward beta {beta}: HQ falls by at most 0.05", med(f"cd-coarse-beta{beta}", "hq") >= med("cd-coarse-beta0", "hq") - 0.05),
]
for name, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {name}")
PY
