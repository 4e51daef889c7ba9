// Chunked separation of arbitrarily long audio (audio spec §4.1–4.4): overlapping chunks with
// triangle or fade windows, batched through a separator, overlap-added and streamed to the
// output files, so memory does not grow with track length. TTA and ensembles wrap the
// separator function.
//
//   onestep::OverlapAddSettings settings{.chunk = 65536, .overlap = 0.25};
//   onestep::StemSink sink = ...;                         // receives final samples in order
//   onestep::separate_stream(reader, separator, 4, settings, sink);
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace onestep {

class AudioReader;

// Chunks [N, C, T] -> stems [N, K, C, T].
using SeparatorFn = std::function<at::Tensor(const at::Tensor&)>;

enum class OverlapWindow { kTriangle, kFade };

// "triangle" or "fade"; anything else is a UserError.
OverlapWindow overlap_window_from_name(const std::string& name);

struct OverlapAddSettings {
    int64_t chunk = 65536;
    double overlap = 0.25;        // r in [0, 0.9]; step = round(chunk (1 - r))
    OverlapWindow window = OverlapWindow::kTriangle;
    double transition_power = 1;  // triangle ** power
    int64_t batch = 2;            // chunks per separator call

    int64_t step() const;
    int64_t border() const { return chunk - step(); }
    // UserError naming the option when out of range (fade needs r >= 0.1).
    void validate() const;
};

// The window of one chunk; FIRST and LAST drop the fade-in/-out of the fade window.
at::Tensor overlap_window(const OverlapAddSettings& settings, bool first, bool last);

// Receives final output samples in order: [K, C, n] per call, n > 0.
using StemSink = std::function<void(const at::Tensor&)>;

// Separates READER's whole stream (channels as in the file) with STEMS outputs, calling SINK
// with consecutive final blocks that add up to exactly the input's length. Memory holds about
// (K + 2) C (chunk + batch step) samples besides the separator's activations.
void separate_stream(AudioReader& reader, const SeparatorFn& separator, int64_t stems,
                     const OverlapAddSettings& settings, const StemSink& sink);

// The same on an in-memory signal [C, T] -> [K, C, T] (a reference for the streaming path and
// what the trainer's validation uses).
at::Tensor separate_tensor(const at::Tensor& signal, const SeparatorFn& separator, int64_t stems,
                           const OverlapAddSettings& settings);

// Test-time augmentation (spec §4.3): the mean of the separator on the original input and on
// the chosen variants, each undone on the output: channel swap (stereo) and polarity -f(-x).
SeparatorFn with_tta(SeparatorFn separator, bool channel_swap, bool polarity);

// Weighted ensemble (spec §4.4): s_k = sum_m w[m][k] s_k^(m) / sum_m w[m][k]. WEIGHTS is
// [members][stems]; empty means equal weights.
SeparatorFn ensemble(std::vector<SeparatorFn> members, std::vector<std::vector<double>> weights, int64_t stems);

// Stem RESIDUAL becomes the mixture minus every other stem (spec §4.4).
SeparatorFn with_residual_stem(SeparatorFn separator, int64_t residual);

// Uniform mixture-consistency projection s_k += (x - sum_j s_j) / K: the stems sum to the input.
SeparatorFn with_mixture_consistency(SeparatorFn separator);

}  // namespace onestep
