// Waveform L1 + sum over resolutions of the mean |STFT(estimate) - STFT(target)| over re/im.
#include "audio/separation_loss.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "audio/stft.hpp"

namespace onestep {

SeparationLossSettings SeparationLossSettings::for_rate(int64_t sample_rate) {
    SeparationLossSettings settings;
    settings.hop = std::max<int64_t>(1, std::llround(147.0 * static_cast<double>(sample_rate) / 44100.0));
    return settings;
}

SeparationLoss separation_loss(const at::Tensor& estimate, const at::Tensor& target, const SeparationLossSettings& settings) {
    TORCH_CHECK(estimate.sizes() == target.sizes(), "separation_loss: estimate ", estimate.sizes(), " vs target ",
                target.sizes());
    SeparationLoss loss;
    loss.waveform = (estimate - target).abs().mean();
    loss.spectral = torch::zeros({}, estimate.options());
    if (settings.stft_weight != 0) {
        // The STFT is linear: one transform of the difference is the difference of the transforms.
        at::Tensor difference = estimate - target;
        for (int64_t window : settings.windows) {
            StftConfig config{std::max(window, settings.min_n_fft), settings.hop, window};
            loss.spectral = loss.spectral + torch::view_as_real(stft(difference, config)).abs().mean();
        }
    }
    loss.total = loss.waveform + settings.stft_weight * loss.spectral;
    return loss;
}

}  // namespace onestep
