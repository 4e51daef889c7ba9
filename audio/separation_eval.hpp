// `onestep eval sdr`: scores separated stems against a MUSDB-style reference folder (audio spec
// §1.1-§1.3, §1.5): uSDR, SI-SDR, museval's cSDR and, on request, the full BSSEval v4
// decomposition, streaming every file block by block.
//
// Layout: REF/<track>/{mixture.*, <stem>.*} (or REF/<split>/<track>/...), EST/<track>/<stem>.*
// mirroring it; extensions .wav, .flac, .ogg. The stems are the sorted basenames other than
// "mixture" of the first track, required in every track; a missing mixture is the sum of the
// reference stems. All files of a track must agree in sample rate, channel count and length;
// with `crop` unequal lengths are scored over the shortest instead (recorded in the JSON).
//
// BSSEval (museval v4 images mode, 1 s frames) scores all stems of a track together: a stem
// silent over the whole track makes the track's BSSEval "skipped: silent source" (museval refuses
// it), while uSDR and SI-SDR are still reported. Full BSSEval needs at least two stems.
//
// Every file is opened and checked before any score is computed, and nothing is written until
// every track is scored: a UserError leaves OUT untouched.
#pragma once
#include <cstdint>
#include <string>

#include "metrics/audio_sdr.hpp"
#include "metrics/bsseval.hpp"

namespace onestep {

struct SeparationEvalRequest {
    std::string reference_dir;
    std::string estimate_dir;
    std::string out_dir;            // empty: print the table only
    bool usdr = true;               // uSDR, uSDR_mix, SDRi
    bool si_sdr = true;             // SI-SDR, SI-SDR_mix, SI-SDRi
    bool csdr = false;              // museval frame SDR (= frame SNR) and its median: no filters
    bool bsseval_full = false;      // also SIR, ISR, SAR from the 512-tap filters (implies csdr)
    std::string museval_json_dir;   // museval's own per-track layout here (needs bsseval_full)
    double usdr_eps = kUsdrEps;
    bool crop = false;              // score unequal lengths over the shortest instead of refusing
    int64_t block_frames = 1 << 16;
};

// A comma-separated subset of "usdr", "sisdr" (also "si-sdr") and "csdr"; anything else is a
// UserError listing them.
void set_sdr_metrics(const std::string& list, SeparationEvalRequest* request);
// --bsseval: "off" or "full" (SIR, ISR, SAR besides cSDR); anything else is a UserError.
void set_bsseval_mode(const std::string& mode, SeparationEvalRequest* request);

// Prints a per-stem table (mean and median over tracks, n, n_excluded) to stdout, writes
// OUT/[<split>/]<track>.json ("onestep.sep-eval/1"), OUT/summary.json and OUT/summary.csv, and
// returns the summary JSON text. Means and medians leave out silent references
// (|s|^2 / (C T) < 1e-10) and non-finite values, counted in n_excluded. BSSEval metrics are
// aggregated like museval: per track the median over frames of the 5-decimal values with +-inf
// as NaN, then over tracks the median ("median_of_medians", the paper number) and the mean
// ("mean_of_medians", Demucs), leaving out skipped tracks and NaN medians.
std::string run_separation_eval(const SeparationEvalRequest& request);

}  // namespace onestep
