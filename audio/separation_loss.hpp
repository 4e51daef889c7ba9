// The separators' training loss (audio spec §3.2): L1 on the waveform plus a multi-resolution
// STFT L1 on real and imaginary parts, averaged over stems, channels and batch.
//
//   auto settings = onestep::SeparationLossSettings::for_rate(22050);
//   onestep::SeparationLoss loss = onestep::separation_loss(estimate, target, settings);
//   loss.total.backward();                 // loss.waveform, loss.spectral for the log
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace onestep {

struct SeparationLossSettings {
    double stft_weight = 1.0;                                   // lambda
    std::vector<int64_t> windows = {4096, 2048, 1024, 512, 256};
    int64_t min_n_fft = 2048;                                   // n_fft = max(window, 2048)
    int64_t hop = 147;                                          // at 44.1 kHz

    // The spec's settings with the hop scaled by SAMPLE_RATE / 44100 (rounded).
    static SeparationLossSettings for_rate(int64_t sample_rate);
};

struct SeparationLoss {
    at::Tensor total, waveform, spectral;
};

// ESTIMATE and TARGET: [B, K, C, T] (any leading shape with time last).
SeparationLoss separation_loss(const at::Tensor& estimate, const at::Tensor& target, const SeparationLossSettings& settings);

}  // namespace onestep
