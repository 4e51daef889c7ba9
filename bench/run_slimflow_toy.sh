#!/usr/bin/env bash
# Quality checks of SlimFlow on eight Gaussians (image-methods spec §6, "How to verify"), on the
# median of three seeds: the teacher (the analytic mixture flow by default, TEACHER=trained for a
# flow teacher trained here) makes 20k Euler-100 training pairs and 2k held-out pairs (other
# noise); per seed a SlimFlow run (5k steps of annealing reflow, 3k of flow-guided
# distillation) and the same run with K_anneal = 0. Evaluates one step of the stage-1 student
# (its step-5000 checkpoint), of the final student and of the teacher's Euler 1/2/4/100, with the
# paired error to the held-out pairs, then prints the medians and the checks. About 12 minutes on
# 2 cores.
#
#   bench/run_slimflow_toy.sh                 # seeds 1 2 3, the analytic teacher
#   TEACHER=trained bench/run_slimflow_toy.sh # pairs from configs/toy2d/flow.yaml trained with seed 1
#   WORK=DIR bench/run_slimflow_toy.sh        # keeps the runs in DIR; a re-run reuses finished ones
set -euo pipefail

source "$(dirname "$0")/toy_runs.sh"
teacher_kind=${TEACHER:-analytic}

evaluate() {   # --fake source (ckpt:PATH or analytic:NAME), label, extra eval args...
    local source=$1 label=$2; shift 2
    "$onestep" eval toy --fake "$source" --n 2000 --seed "$seed" --pairs "$work/pairs-heldout.bin" \
        --out "$work/eval/$label-seed$seed.json" "$@" >/dev/null 2>&1
}

case $teacher_kind in
    analytic) teacher=analytic:8gaussians; teacher_source=$teacher ;;
    trained) teacher=$work/teacher; teacher_source=ckpt:$teacher
             train flow "$teacher" --config "$root/configs/toy2d/flow.yaml" --set seed=1 ;;
    *) echo "error: TEACHER=$teacher_kind; expected analytic or trained" >&2; exit 2 ;;
esac
[[ -f $work/pairs.bin ]] || "$onestep" sample --ckpt "$teacher" --pairs 20000 --sampler euler --steps 100 \
    --seed 0 --out "$work/pairs.bin" 2> "$work/pairs.log"
[[ -f $work/pairs-heldout.bin ]] || "$onestep" sample --ckpt "$teacher" --pairs 2000 --sampler euler --steps 100 \
    --seed 777 --out "$work/pairs-heldout.bin" 2> "$work/pairs-heldout.log"

for seed in $seeds; do
    common=(--config "$root/configs/toy2d/slimflow.yaml" --set seed="$seed" --set slimflow.pairs="$work/pairs.bin"
            --set ckpt_every=5000)
    train slimflow "$work/slimflow-seed$seed" "${common[@]}"
    train slimflow "$work/slimflow-k0-seed$seed" "${common[@]}" --set slimflow.anneal_steps=0
    echo "seed $seed: evaluating" >&2
    for k in 1 2 4 100; do evaluate "$teacher_source" "teacher-euler$k" --sampler euler --steps "$k"; done
    evaluate "ckpt:$work/slimflow-seed$seed/checkpoints/step-00005000.ckpt" stage1
    evaluate "ckpt:$work/slimflow-seed$seed" stage2
    evaluate "ckpt:$work/slimflow-k0-seed$seed/checkpoints/step-00005000.ckpt" k0-stage1
    evaluate "ckpt:$work/slimflow-k0-seed$seed" k0-stage2
done

"$python" - "$work/eval" $seeds <<'PY'
import json, statistics, sys
folder, seeds = sys.argv[1], sys.argv[2:]
def med(label, key):
    return statistics.median(json.load(open(f"{folder}/{label}-seed{s}.json"))[key] for s in seeds)
labels = ["teacher-euler1", "teacher-euler2", "teacher-euler4", "teacher-euler100",
          "stage1", "stage2", "k0-stage1", "k0-stage2"]
print(f"median over seeds {', '.join(seeds)} (N = 2000 against fresh data; paired error to 2000 held-out pairs)")
print(f"{'samples (one step unless named)':32s} {'SW1':>8s} {'MMD^2':>8s} {'HQ':>6s} {'paired':>7s}")
for label in labels:
    print(f"{label:32s} {med(label, 'sw1'):8.4f} {med(label, 'mmd2'):8.4f} {med(label, 'hq'):6.3f} {med(label, 'paired_error'):7.3f}")
print(f"{'real vs real (floor)':32s} {med('stage2', 'sw1_floor'):8.4f} {med('stage2', 'mmd2_floor'):8.4f} {med('stage2', 'hq_floor'):6.3f}")
checks = [
    ("stage 1, one step: SW1 <= 0.30", med("stage1", "sw1") <= 0.30),
    ("stage 2, one step: HQ >= 0.75", med("stage2", "hq") >= 0.75),
    ("stage 2, one step: SW1 <= 0.15", med("stage2", "sw1") <= 0.15),
    ("stage 2, one step: paired error <= 0.35", med("stage2", "paired_error") <= 0.35),
    ("stage 2 beats stage 1 on SW1", med("stage2", "sw1") < med("stage1", "sw1")),
]
for name, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {name}")
PY
