#!/usr/bin/env bash
# From a fresh Debian 12 machine to a first result: set-up and build, fetch Fashion-MNIST,
# describe it, then train a flow-matching teacher on the 8-Gaussians toy and sample it in 1
# and 100 steps. Outputs land in runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bin=build/onestep

echo "== Fashion-MNIST =="
$bin data fetch fashion-mnist
$bin data info fashion-mnist

if $bin train --help | grep -q '^  flow '; then
    echo "== flow teacher on 8 Gaussians =="
    run=runs/quickstart/toy-flow
    rm -rf "$run"
    $bin train flow --config configs/toy2d/flow.yaml --run-dir "$run"
    $bin sample --ckpt "$run" --steps 100 --n 2000 --out runs/quickstart/toy-euler100.png
    $bin sample --ckpt "$run" --steps 1 --n 2000 --out runs/quickstart/toy-euler1.png
    echo "outputs: $run (log.jsonl, samples/loss.png), runs/quickstart/toy-euler100.png, runs/quickstart/toy-euler1.png"
fi
