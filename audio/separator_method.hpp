// `onestep train separator`: a band-split RoFormer or Open-Unmix trained on MUSDB-style stem
// folders (data.name: stems:DIR) with the waveform + multi-resolution STFT loss, validated on
// whole songs by uSDR per stem; `onestep train flow-separator`: the generative separator of
// audio/separators/flow_roformer.hpp, trained with the shortcut objective on the same data; and
// the loader `onestep separate` uses for both.
//
//   onestep train separator --config configs/stems/roformer-ci.yaml
//   onestep train flow-separator --config configs/stems/flow-separator-ci.yaml
//   onestep::LoadedSeparator model = onestep::load_separator("runs/sep", torch::kCPU);
//   at::Tensor stems = model.separate(chunks);      // [N, C, T] -> [N, K, C, T]
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "audio/overlap_add.hpp"

namespace onestep {

void register_separator_method();

// A trained separator ready for inference (EMA weights, eval mode, no autograd).
struct LoadedSeparator {
    std::string path;
    SeparatorFn separate;
    std::vector<std::string> stems;
    int64_t sample_rate = 0;
    int64_t channels = 0;
    int64_t chunk = 0;   // the training chunk: the default inference chunk
    int64_t passes = 1;  // network evaluations per chunk (a flow separator's sampling steps)
};

// From a checkpoint or run folder; a non-separator checkpoint is a UserError naming it. STEPS:
// the sampling steps of a flow separator (0: its sampler.steps); any other value than 0 is a
// UserError for a one-pass separator.
LoadedSeparator load_separator(const std::string& path, const c10::Device& device, int64_t steps = 0);

}  // namespace onestep
