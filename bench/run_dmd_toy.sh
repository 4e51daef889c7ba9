#!/usr/bin/env bash
# Quality checks of DMD and MSD on eight Gaussians (image-methods spec §7 and §8, "How to verify"),
# on the median of three seeds, with the analytic mixture flow as the real score.
#   DMD: per seed an MLP flow fitted for 3k steps starts the generator and the critic
#        (configs/toy2d/dmd.yaml); one step must reach HQ >= 0.80, SW1 <= 0.15 and cover all 8
#        modes with a share >= 0.05 each.
#   MSD: coarse labels (4 classes of two modes); the same, conditional, for K = 1, 2, 4 students
#        (configs/toy2d/msd.yaml) at equal per-student iterations, all regressing on 20k shared
#        Euler-100 pairs of the analytic teacher; HQ and conditional accuracy must not fall as K
#        grows (tolerance 0.02) and K = 4 must reach HQ >= 0.80. Then two small students
#        (mlp-small, 2 x 48) started by Teacher Score Matching must beat the same from fresh weights.
# About 30 minutes on 2 cores.
#
#   bench/run_dmd_toy.sh                   # seeds 1 2 3
#   WORK=DIR bench/run_dmd_toy.sh          # keeps the runs in DIR; a re-run reuses finished ones
#   PER_STUDENT=10000 bench/run_dmd_toy.sh # MSD DM iterations per student (default 5000)
set -euo pipefail

source "$(dirname "$0")/toy_runs.sh"
students=${STUDENTS:-"1 2 4"}
per_student=${PER_STUDENT:-5000}
tsm_steps=$(sed -n 's/^  tsm_steps: *\([0-9]*\).*/\1/p' "$root/configs/toy2d/msd.yaml")

evaluate() {   # --fake source, label, extra eval args...
    local source=$1 label=$2; shift 2
    "$onestep" eval toy --fake "$source" --n 2000 --seed "$seed" --out "$work/eval/$label-seed$seed.json" "$@" >/dev/null 2>&1
}

[[ -f $work/pairs-coarse.bin ]] || "$onestep" sample --ckpt analytic:8gaussians-coarse --pairs 20000 --sampler euler \
    --steps 100 --seed 0 --out "$work/pairs-coarse.bin" 2> "$work/pairs-coarse.log"

for seed in $seeds; do
    flow=(--config "$root/configs/toy2d/flow.yaml" --set seed="$seed" --set steps=3000 --set ckpt_every=3000)
    train flow "$work/init-seed$seed" "${flow[@]}"
    train flow "$work/init-coarse-seed$seed" "${flow[@]}" --set data.name=toy:8gaussians-coarse --set data.conditional=true
    train dmd "$work/dmd-seed$seed" --config "$root/configs/toy2d/dmd.yaml" --set seed="$seed" \
        --set dmd.init="$work/init-seed$seed"
    for k in $students; do
        train msd "$work/msd-k$k-seed$seed" --config "$root/configs/toy2d/msd.yaml" --set seed="$seed" \
            --set msd.students="$k" --set steps=$((k * per_student)) --set ckpt_every=$((k * per_student)) \
            --set dmd.init="$work/init-coarse-seed$seed" --set dmd.pairs="$work/pairs-coarse.bin"
    done
    # Small students (mlp-small, 2 x 48) for K = 2: Teacher Score Matching first, or fresh weights,
    # then the same DM iterations.
    for init in tsm random; do
        stage0=0; [[ $init == tsm ]] && stage0=$tsm_steps
        train msd "$work/msd-small-$init-seed$seed" --config "$root/configs/toy2d/msd.yaml" --set seed="$seed" \
            --set msd.students=2 --set msd.init="$init" --set model.mlp.hidden=48 --set model.mlp.depth=2 \
            --set steps=$((2 * (per_student + stage0))) --set ckpt_every=100000 \
            --set dmd.pairs="$work/pairs-coarse.bin"
    done
    echo "seed $seed: evaluating" >&2
    for n in 1 100; do evaluate analytic:8gaussians "teacher-euler$n" --sampler euler --steps "$n"; done
    evaluate "ckpt:$work/init-seed$seed" init-euler1 --sampler euler --steps 1
    evaluate "ckpt:$work/dmd-seed$seed" dmd
    for k in $students; do evaluate "ckpt:$work/msd-k$k-seed$seed" "msd-k$k" --real toy:8gaussians-coarse; done
    for init in tsm random; do
        evaluate "ckpt:$work/msd-small-$init-seed$seed" "msd-small-$init" --real toy:8gaussians-coarse
    done
done

"$python" - "$work/eval" "$students" $seeds <<'PY'
import json, statistics, sys
folder, students, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
def med(label, key):
    return statistics.median(json.load(open(f"{folder}/{label}-seed{s}.json"))[key] for s in seeds)
def min_share(label):
    return statistics.median(min(json.load(open(f"{folder}/{label}-seed{s}.json"))["mode_share"]) for s in seeds)
print(f"median over seeds {', '.join(seeds)} (N = 2000 against fresh data)")
print(f"{'samples (one step unless named)':34s} {'SW1':>8s} {'MMD^2':>8s} {'HQ':>6s} {'min share':>9s} {'cond. acc':>9s}")
rows = (["teacher-euler1", "teacher-euler100", "init-euler1", "dmd"] + [f"msd-k{k}" for k in students] +
        ["msd-small-tsm", "msd-small-random"])
for label in rows:
    cacc = f"{med(label, 'cacc'):9.3f}" if label.startswith("msd") else f"{'':9s}"
    print(f"{label:34s} {med(label, 'sw1'):8.4f} {med(label, 'mmd2'):8.4f} {med(label, 'hq'):6.3f} {min_share(label):9.3f} {cacc}")
print(f"{'real vs real (floor)':34s} {med('dmd', 'sw1_floor'):8.4f} {med('dmd', 'mmd2_floor'):8.4f} {med('dmd', 'hq_floor'):6.3f}")
checks = [
    ("DMD, one step: HQ >= 0.80", med("dmd", "hq") >= 0.80),
    ("DMD, one step: SW1 <= 0.15", med("dmd", "sw1") <= 0.15),
    ("DMD, one step: all 8 modes, min share >= 0.05", min_share("dmd") >= 0.05),
]
for a, b in zip(students, students[1:]):
    checks.append((f"MSD: HQ(K={b}) >= HQ(K={a}) - 0.02", med(f"msd-k{b}", "hq") >= med(f"msd-k{a}", "hq") - 0.02))
    checks.append((f"MSD: cond. acc(K={b}) >= cond. acc(K={a}) - 0.02",
                   med(f"msd-k{b}", "cacc") >= med(f"msd-k{a}", "cacc") - 0.02))
if "4" in students:
    checks.append(("MSD, K = 4: HQ >= 0.80", med("msd-k4", "hq") >= 0.80))
checks.append(("TSM: small students end with a higher HQ than the same students from fresh weights",
               med("msd-small-tsm", "hq") > med("msd-small-random", "hq")))
for name, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {name}")
PY
