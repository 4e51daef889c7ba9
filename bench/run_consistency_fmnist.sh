#!/usr/bin/env bash
# Quality checks of consistency distillation on Fashion-MNIST, quick preset (image-methods spec
# §10, "How to verify"). Trains what is missing under RUNS (the metric classifier A, classifier B
# for the reward, the unet16 flow teacher), then three students from that teacher:
#   cd        plain CD (classifier B's reward logged, beta 0)
#   reward    the same with beta_cls 0.02 on classifier B's log p(y | x)
#   guided    distilled from the teacher guided at w = 2
# and judges them with classifier A only (FD_cls at N = 2000 against the test split, conditional accuracy):
#   plain:  FD_cls(1 step) < Y_2 (the teacher's 2-step Euler) and FD_cls(4) <= FD_cls(1)
#   guided: accuracy of the w = 2 student >= that of the w = 1 student
#   reward: accuracy >= accuracy(beta 0) + 0.02 and FD_cls <= 1.1 FD_cls(beta 0)
# About 90 minutes on 2 cores from nothing; the students alone about 35.
#
#   bench/run_consistency_fmnist.sh                 # runs under runs/, results under runs/eval/consistency
#   RUNS=DIR N=10000 bench/run_consistency_fmnist.sh
set -euo pipefail

WORK=${RUNS:-$(cd "$(dirname "$0")/.." && pwd)/runs}
source "$(dirname "$0")/toy_runs.sh"
runs=$work
n=${N:-2000}
out=$work/eval/consistency
mkdir -p "$out"

fd() {   # label, ckpt, extra...
    local label=$1 ckpt=$2; shift 2
    "$onestep" eval fid --features "classifier:$runs/fmnist-classifier" --fake "ckpt:$ckpt" --n "$n" \
        --real fashion-mnist:test --out "$out/fd-$label.json" "$@" > /dev/null 2>&1
}
acc() {
    local label=$1 ckpt=$2; shift 2
    "$onestep" eval cacc --features "classifier:$runs/fmnist-classifier" --fake "ckpt:$ckpt" --n "$n" \
        --real fashion-mnist:test --out "$out/acc-$label.json" "$@" > /dev/null 2>&1
}

"$onestep" data fetch fashion-mnist > /dev/null
train classifier "$runs/fmnist-classifier" --config "$root/configs/fmnist/classifier.yaml"
train classifier "$runs/fmnist-classifier-b" --config "$root/configs/fmnist/classifier-b.yaml"
train flow "$runs/fmnist-flow-quick" --config "$root/configs/fmnist/flow-quick.yaml"
cd=(--config "$root/configs/fmnist/consistency-quick.yaml" --set consistency.teacher="$runs/fmnist-flow-quick"
    --set reward.classifier="$runs/fmnist-classifier-b")
train consistency "$runs/fmnist-cd" "${cd[@]}"
train consistency "$runs/fmnist-cd-reward" "${cd[@]}" --set reward.classifier_weight=0.02
train consistency "$runs/fmnist-cd-guided" "${cd[@]}" --set consistency.guidance=2

echo "evaluating ($(date +%H:%M))" >&2
for k in 1 2 4 100; do fd "teacher-euler$k" "$runs/fmnist-flow-quick" --sampler euler --steps "$k"; done
acc teacher-euler100 "$runs/fmnist-flow-quick" --sampler euler --steps 100
for k in 1 2 4; do fd "cd-$k" "$runs/fmnist-cd" --steps "$k"; done
for run in cd cd-reward cd-guided; do
    [[ $run == cd ]] || fd "$run-1" "$runs/fmnist-$run" --steps 1
    acc "$run-1" "$runs/fmnist-$run" --steps 1
done
"$onestep" sample --ckpt "$runs/fmnist-cd" --steps 1 --n 100 --out "$out/cd-1step.png" > /dev/null 2>&1
"$onestep" sample --ckpt "$runs/fmnist-cd" --steps 4 --n 100 --out "$out/cd-4step.png" > /dev/null 2>&1
"$onestep" sample --ckpt "$runs/fmnist-cd-reward" --steps 1 --n 100 --out "$out/cd-reward-1step.png" > /dev/null 2>&1

"$python" - "$out" <<'PY'
import json, sys
folder = sys.argv[1]
def value(name):
    return json.load(open(f"{folder}/{name}.json"))["value"]
floor = json.load(open(f"{folder}/fd-cd-1.json"))["baseline"]["value"]
acc_real = json.load(open(f"{folder}/acc-cd-1.json"))["baseline"]["value"]
print(f"FD_cls, N from the test split; real train vs test at the same N: {floor:.2f}; classifier A's test accuracy {acc_real:.3f}")
print(f"{'model':36s} {'NFE':>4s} {'FD_cls':>8s} {'acc':>6s}")
for k in (1, 2, 4, 100):
    acc = f"{value('acc-teacher-euler100'):6.3f}" if k == 100 else ""
    print(f"{'teacher Euler ' + str(k):36s} {k:4d} {value(f'fd-teacher-euler{k}'):8.2f} {acc:>6s}")
for k in (1, 2, 4):
    acc = f"{value('acc-cd-1'):6.3f}" if k == 1 else ""
    print(f"{'CD, ' + str(k) + ' step(s)':36s} {k:4d} {value(f'fd-cd-{k}'):8.2f} {acc:>6s}")
print(f"{'CD + reward (beta_cls 0.02), 1 step':36s} {1:4d} {value('fd-cd-reward-1'):8.2f} {value('acc-cd-reward-1'):6.3f}")
print(f"{'CD of the w = 2 teacher, 1 step':36s} {1:4d} {value('fd-cd-guided-1'):8.2f} {value('acc-cd-guided-1'):6.3f}")
checks = [
    ("plain: FD_cls(1) < Y_2", value("fd-cd-1") < value("fd-teacher-euler2")),
    ("plain: FD_cls(4) <= FD_cls(1)", value("fd-cd-4") <= value("fd-cd-1")),
    ("guided: acc(w = 2) >= acc(w = 1)", value("acc-cd-guided-1") >= value("acc-cd-1")),
    ("reward: acc >= acc(beta 0) + 0.02", value("acc-cd-reward-1") >= value("acc-cd-1") + 0.02),
    ("reward: FD_cls <= 1.1 FD_cls(beta 0)", value("fd-cd-reward-1") <= 1.1 * value("fd-cd-1")),
]
for name, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {name}")
PY
