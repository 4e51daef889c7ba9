#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: set up and build, fetch Fashion-MNIST, train the
# metric classifier if there is none, train a class-conditional shortcut model within a bounded
# CPU budget (configs/fmnist/shortcut-quick.yaml: 4000 steps, about 18 minutes on 2 cores), write its 1-step
# and 4-step sample grids, and print the Fréchet distance in the classifier's feature space of
# 1-, 4- and 128-step samples beside the real-data baseline (train vs test at the same N).
#
# Re-running resumes an unfinished shortcut run and reuses a finished one.
#   ONESTEP_QUICK_N=2000      images per side for the Fréchet distance (default 2000)
#   ONESTEP_QUICK_STEPS=K     override the shortcut's training steps (e.g. 200 for a smoke run)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The tabular benchmark sets glass, ionosphere, sonar, vowel and congress come from R's mlbench
# (`onestep data fetch uci` skips them without it); about 10 s with R's core, as root only.
if ! Rscript -e 'library(mlbench)' >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y --no-install-recommends r-cran-mlbench >/dev/null ||
        echo "r-cran-mlbench not installed: data fetch uci will skip the R datasets"
fi
bin=build/onestep
out=runs/quickstart
classifier=runs/fmnist-classifier
run=$out/fmnist-shortcut
n=${ONESTEP_QUICK_N:-2000}
mkdir -p "$out"
start=$(date +%s)

echo "== Fashion-MNIST =="
$bin data fetch fashion-mnist
$bin data info fashion-mnist

if [ ! -f "$classifier/checkpoints/latest.ckpt" ]; then
    echo "== metric classifier (cnn128, configs/fmnist/classifier.yaml) =="
    if [ -d "$classifier" ]; then
        $bin train classifier --resume "$classifier"
    else
        $bin train classifier --config configs/fmnist/classifier.yaml --run-dir "$classifier"
    fi
fi

echo "== shortcut model (configs/fmnist/shortcut-quick.yaml) =="
steps_args=()
[ -n "${ONESTEP_QUICK_STEPS:-}" ] && steps_args=(--set "steps=$ONESTEP_QUICK_STEPS")
if [ -f "$run/checkpoints/latest.ckpt" ]; then
    $bin train shortcut --resume "$run"   # finishes an interrupted run; a finished one returns at once
else
    rm -rf "$run"
    $bin train shortcut --config configs/fmnist/shortcut-quick.yaml --run-dir "$run" "${steps_args[@]}"
fi

echo "== sample grids =="
$bin sample --ckpt "$run" --steps 1 --n 100 --out "$out/shortcut-1step.png"
$bin sample --ckpt "$run" --steps 4 --n 100 --out "$out/shortcut-4step.png"

echo "== Fréchet distance in the classifier's feature space (N = $n, Fashion-MNIST test split) =="
for k in 1 4 128; do
    $bin eval fid --features "classifier:$classifier" --fake "ckpt:$run" --steps "$k" --n "$n" \
        --real fashion-mnist:test --out "$out/fd-${k}step.json"
done

echo "== tabular: ForestFlow on iris (10 levels, about a minute) =="
$bin data fetch uci --out data/uci --only iris
iris=data/uci/iris/split0
$bin train forest-flow --data "$iris/train.csv" --label class --run-dir "$out/iris-forest-flow" --set levels=10
fakes=()
for g in 0 1 2 3 4; do
    $bin sample --ckpt "$out/iris-forest-flow" --n 120 --seed "$g" --out "$out/iris-forest-flow/fake$g.csv"
    fakes+=(--fake "$out/iris-forest-flow/fake$g.csv")
done
$bin eval tabular --train "$iris/train.csv" --test "$iris/test.csv" "${fakes[@]}" --label class \
    --out "$out/iris-forest-flow/eval.json"

echo "== report over every run in $out =="
$bin report "$out" --quiet

echo
echo "== summary ($(( ($(date +%s) - start) / 60 )) minutes) =="
for k in 1 4 128; do
    jq -r --arg k "$k" '"shortcut, \($k) step(s): FD \(.value * 100 | round / 100)   real train vs test at the same N: \(.baseline.value * 100 | round / 100)   (\(.extractor.id))"' \
        "$out/fd-${k}step.json"
done
jq -r '"ForestFlow on iris: W1 train \(.w1_train * 1000 | round / 1000), W1 test \(.w1_test * 1000 | round / 1000) (paper at 50 levels: 0.197, 0.328)"' \
    "$out/iris-forest-flow/eval.json"
echo "files:"
echo "  $run/ : the shortcut run (config.yaml, log.jsonl, checkpoints/, samples/loss.png)"
echo "  $out/shortcut-1step.png : 100 samples, one network evaluation each (a column per class)"
echo "  $out/shortcut-4step.png : the same noise in 4 steps"
echo "  $out/fd-{1,4,128}step.json : the Fréchet distances with the extractor's id and hash"
echo "  $classifier/ : the metric classifier"
echo "  $out/iris-forest-flow/ : the ForestFlow run (manifest.json, models/), fake*.csv its rows, eval.json their metrics"
echo "  $out/report.md : every run above in one page, with a leaderboard per metric"
