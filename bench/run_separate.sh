#!/usr/bin/env bash
# Real-time factor and peak memory of `onestep separate` (audio spec §8, P1 and P3): a RoFormer
# preset at its own rate, trained one step on rendered stems (timing does not depend on the
# weights), applied to stereo inputs of 1, 10 (and 60) minutes tiled from a rendered mixture.
# Prints RTF and peak RSS per length and the RSS growth from the shortest to the longest.
#
#   bench/run_separate.sh                                  # bsr-small, 44.1 kHz, 1 and 10 min
#   PRESET=bsr-ci RATE=22050 MINUTES="1 10 60" bench/run_separate.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
onestep=$build/onestep
preset=${PRESET:-bsr-small}
rate=${RATE:-44100}
chunk=${CHUNK:-131072}
minutes=${MINUTES:-"1 10"}
threads=${THREADS:-2}
batch=${BATCH:-2}
work=${WORK:-$(mktemp -d)}
python=/usr/bin/python3   # Debian's interpreter (standard library only here)

[[ -x $onestep ]] || { echo "error: $onestep not found; build it first (scripts/setup.sh)" >&2; exit 2; }
echo "machine: $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); work: $work" >&2

if [[ ! -d $work/stems/train ]]; then
    "$onestep" data render-stems --out "$work/stems" --size ci --sample-rate "$rate" >/dev/null 2>&1
fi
if [[ ! -f $work/run/checkpoints/latest.ckpt ]]; then
    "$onestep" train separator --config "$root/configs/stems/roformer-ci.yaml" --run-dir "$work/run" \
        --set data.name=stems:"$work/stems" --set separator.preset="$preset" --set stems.chunk="$chunk" \
        --set batch_size=1 --set steps=1 --set stems.valid_split= --threads "$threads" >/dev/null 2>&1
fi

# Inputs: the first rendered test mixture repeated to each length (16-bit stereo WAV).
source_wav=$(ls "$work"/stems/test/*/mixture.wav | head -n 1)
for m in $minutes; do
    [[ -f $work/input-${m}min.wav ]] && continue
    "$python" - "$source_wav" "$work/input-${m}min.wav" "$m" <<'PY'
import sys, wave
source, target, minutes = sys.argv[1], sys.argv[2], float(sys.argv[3])
with wave.open(source) as w:
    params, frames = w.getparams(), w.readframes(w.getnframes())
with wave.open(target, "wb") as out:
    out.setparams(params)
    need = int(minutes * 60 * params.framerate) * params.sampwidth * params.nchannels
    while need > 0:
        piece = frames[:need]
        out.writeframes(piece)
        need -= len(piece)
PY
done

printf 'preset\trate\tminutes\tRTF\tpeak_RSS_MiB\n'
first_rss=""
for m in $minutes; do
    rm -rf "$work/out"
    result=$("$onestep" separate --ckpt "$work/run" "$work/input-${m}min.wav" --out "$work/out" --threads "$threads" \
             --batch "$batch" --overlap 0.25 --window triangle)
    rtf=$(sed -n 's/.*RTF \([0-9.]*\)[,)].*/\1/p' <<<"$result")
    rss=$(sed -n 's/^peak RSS \([0-9.]*\) MiB/\1/p' <<<"$result")
    printf '%s\t%s\t%s\t%s\t%s\n' "$preset" "$rate" "$m" "$rtf" "$rss"
    [[ -z $first_rss ]] && first_rss=$rss
    last_rss=$rss
done
echo "peak RSS growth from the shortest to the longest input: $(awk -v a="$first_rss" -v b="$last_rss" 'BEGIN{printf "%.1f", b-a}') MiB"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
