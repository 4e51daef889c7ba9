#!/usr/bin/env bash
# Training-step throughput of onestep (C++) against the Python PyTorch reference on the same
# libtorch, model, batch and threads: runs them alternately (C++, Python, C++, Python, ...) for
# each model and prints images/s, the ratio C++/Python, GFLOP/s and the fraction of the GEMM peak.
# Builds nothing: build onestep_bench_train_step first (see bench/README.md).
#
#   bench/run_train_step.sh                         # unet and dit, 3 rounds
#   MODELS=dit ROUNDS=3 STEPS_DIT=20 bench/run_train_step.sh
#   VARIANT="--bf16-autocast" bench/run_train_step.sh   # the same variant flag on both sides
#   CPP_VARIANT="--glibc-malloc-defaults" bench/run_train_step.sh   # a flag for the C++ side only
#   CPP_VARIANT="--library-gelu" MODELS=dit bench/run_train_step.sh   # libtorch's GELU instead of the fused one
#   PYTHON_ACTIVE=1 bench/run_train_step.sh         # also one Python run with libgomp's default wait policy
#   DEVICE=cuda PYTHON=python3 bench/run_train_step.sh   # both sides on the GPU (a CUDA libtorch and its torch)
# BINARY overrides the C++ benchmark (e.g. a wrapper that sets LD_LIBRARY_PATH). Without jq, the
# JSON is handled by the Python interpreter.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
binary=${BINARY:-$build/bench/onestep_bench_train_step}
python=${PYTHON:-/usr/bin/python3}   # Debian's interpreter: python3-torch 1.13, the same libtorch
models=${MODELS:-"unet dit"}
rounds=${ROUNDS:-3}
batch=${BATCH:-128}
threads=${THREADS:-2}
warmup=${WARMUP:-3}
steps_unet=${STEPS_UNET:-10}
steps_dit=${STEPS_DIT:-15}
variant=${VARIANT:-}
cpp_variant=${CPP_VARIANT:-}
python_variant=${PY_VARIANT:-}
device=${DEVICE:-}
out=${OUT:-$(mktemp -d)/train_step.jsonl}

[[ -x $binary ]] || { echo "error: $binary not found; build it with: ninja -C $build onestep_bench_train_step" >&2; exit 2; }
command -v "$python" >/dev/null || { echo "error: $python not found (Debian's python3 with python3-torch)" >&2; exit 2; }

# json_field KEY: that key of the JSON object on stdin (strings raw, the rest as compact JSON).
# with_round N: each JSON line on stdin with "round": N added.
if command -v jq >/dev/null; then
    json_field() { jq -c -r ".$1"; }
    with_round() { jq -c ". + {round: $1}"; }
else
    json_field() {
        "$python" -c 'import json, sys
value = json.load(sys.stdin)[sys.argv[1]]
print(value if isinstance(value, str) else json.dumps(value, separators=(",", ":")))' "$1"
    }
    with_round() {
        "$python" -c 'import json, sys
for line in sys.stdin:
    if line.strip():
        print(json.dumps({**json.loads(line), "round": int(sys.argv[1])}, separators=(",", ":")))' "$1"
    }
fi

# libgomp's default wait policy keeps idle OpenMP workers spinning for a while after each
# parallel region; between ATen's OpenMP regions run OpenBLAS's own pthreads (matrix products),
# and on 2 cores the spinning workers take the cores from them. The onestep binaries set PASSIVE
# themselves (core/runtime.hpp); it is set here for both sides so the comparison is like for like.
# PYTHON_ACTIVE=1 also measures the Python side once with the default, for the record.
export OMP_WAIT_POLICY=PASSIVE

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "results: $out" >&2
: > "$out"
for model in $models; do
    steps=$steps_unet
    [[ $model == dit ]] && steps=$steps_dit
    describe=$("$binary" --mode describe --model "$model")
    params=$(json_field params <<< "$describe")
    reference_config=$(json_field reference_config <<< "$describe")
    common=(--model "$model" --batch "$batch" --threads "$threads" --warmup "$warmup" --steps "$steps")
    [[ -n $device ]] && common+=(--device "$device")
    for round in $(seq "$rounds"); do
        echo "$model round $round/$rounds: C++ (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        # shellcheck disable=SC2086
        "$binary" "${common[@]}" $variant $cpp_variant | with_round "$round" >> "$out"
        echo "$model round $round/$rounds: Python (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        # The reference fails loudly when its parameter count differs from the C++ one.
        # shellcheck disable=SC2086
        "$python" "$root/bench/train_step.py" "${common[@]}" $variant $python_variant --config-json "$reference_config" \
            --expect-params "$params" | with_round "$round" >> "$out"
    done
    if [[ ${PYTHON_ACTIVE:-0} == 1 ]]; then
        echo "$model: Python with libgomp's default wait policy" >&2
        # shellcheck disable=SC2086
        env -u OMP_WAIT_POLICY "$python" "$root/bench/train_step.py" "${common[@]}" $variant $python_variant \
            --config-json "$reference_config" --expect-params "$params" | with_round 0 >> "$out"
    fi
done

"$python" - "$out" <<'EOF'
# Per model: median over rounds of each side, and the median of the per-round ratios.
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"load at the end: {open('/proc/loadavg').read().split()[:3]}")
def flags(row):
    names = [k for k in ("channels_last", "bf16_autocast", "grads_to_none", "keep_freed_memory", "library_gelu") if row["variant"].get(k)]
    return ",".join(names) or "-"
header = ("model", "impl", "variant", "OMP wait", "params", "batch", "thr", "images/s", "ms/step", "C++/Py",
          "GFLOP/img", "GFLOP/s", "GEMM peak", "of peak", "loss first->last")
table = [header]
for model in dict.fromkeys(r["model"] for r in rows):
    runs = [r for r in rows if r["model"] == model]
    ratios = []
    for round_ in sorted({r["round"] for r in runs if r["round"] > 0}):
        pair = {r["impl"]: r for r in runs if r["round"] == round_}
        if "cpp" in pair and "python" in pair:
            ratios.append(pair["cpp"]["images_per_s"] / pair["python"]["images_per_s"])
    groups = {}
    for r in runs:
        key = (r["impl"], flags(r), r["variant"]["omp_wait_policy"] or "default")
        groups.setdefault(key, []).append(r)
    for (impl, variant, policy), group in groups.items():
        median = lambda key: statistics.median(r[key] for r in group)
        ratio = f"{statistics.median(ratios):.3f}" if impl == "cpp" and ratios else ""
        table.append((model, impl, variant, policy, str(group[0]["params"]), str(group[0]["batch"]), str(group[0]["threads"]),
                      f"{median('images_per_s'):.1f}", f"{median('ms_per_step'):.0f}", ratio,
                      f"{group[0]['train_gflop_per_image']:.3f}", f"{median('achieved_gflops'):.1f}",
                      f"{median('gemm_gflops'):.1f}", f"{median('fraction_of_gemm_peak'):.1%}",
                      f"{group[-1]['loss_first']:.4f}->{group[-1]['loss_last']:.4f}"))
    if ratios:
        print(f"{model}: per-round C++/Python ratios {', '.join(f'{x:.3f}' for x in ratios)}")
widths = [max(len(row[i]) for row in table) for i in range(len(header))]
for row in table:
    print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
EOF
