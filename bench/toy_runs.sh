# Shared by the quality scripts (sourced, not run): the binary, seeds, the work folder and a
# `train` that starts a run or finishes an interrupted one.
#   ONESTEP (build/onestep), SEEDS ("1 2 3"), WORK (a new temporary folder), PYTHON (python3)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
onestep=${ONESTEP:-$root/build/onestep}
seeds=${SEEDS:-"1 2 3"}
work=${WORK:-$(mktemp -d)}
python=${PYTHON:-python3}

[[ -x $onestep ]] || { echo "error: $onestep not found; build it first (scripts/setup.sh)" >&2; exit 2; }
echo "machine: $(nproc) cores; runs and results under $work" >&2
mkdir -p "$work/eval"

train() {   # method, run folder, args...  (a finished or interrupted run is resumed, not restarted)
    local method=$1 run=$2; shift 2
    if [[ -f $run/checkpoints/latest.ckpt ]]; then
        "$onestep" train "$method" --resume "$run" >> "$run.log" 2>&1
    else
        echo "training $(basename "$run")" >&2
        "$onestep" train "$method" --run-dir "$run" "$@" > "$run.log" 2>&1
    fi
}
