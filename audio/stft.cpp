// torch::stft / torch::istft with every argument spelled out (libtorch 2.x requires
// return_complex and warns on implicit centre padding), over any number of leading dimensions.
#include "audio/stft.hpp"

#include <torch/torch.h>

#include <vector>

#include "core/error.hpp"

namespace onestep {

void check_stft_config(const StftConfig& config, bool invertible) {
    if (config.n_fft <= 0 || config.n_fft % 2 != 0)
        throw UserError("stft n_fft must be a positive even number (got " + std::to_string(config.n_fft) + ")");
    if (config.window() > config.n_fft || config.window() < 2)
        throw UserError("stft window length must be in 2.." + std::to_string(config.n_fft) + " (got " +
                        std::to_string(config.window()) + ")");
    if (config.hop <= 0 || (invertible && config.hop > config.window() / 2))
        throw UserError("stft hop must be in 1.." + std::to_string(config.window() / 2) + " for a window of " +
                        std::to_string(config.window()) + " (got " + std::to_string(config.hop) + ")");
}

at::Tensor stft_window(const StftConfig& config, const at::Tensor& like) {
    auto real_type = like.is_complex() ? c10::toRealValueType(like.scalar_type()) : like.scalar_type();
    return torch::hann_window(config.window(), /*periodic=*/true, torch::TensorOptions().dtype(real_type).device(like.device()));
}

at::Tensor stft(const at::Tensor& signal, const StftConfig& config) {
    check_stft_config(config, /*invertible=*/false);
    TORCH_CHECK(signal.dim() >= 1 && !signal.is_complex(), "stft expects a real [..., T] signal, got ", signal.sizes());
    const int64_t samples = signal.size(-1);
    std::vector<int64_t> leading(signal.sizes().begin(), signal.sizes().end() - 1);
    at::Tensor flat = signal.reshape({-1, samples});
    if (samples <= config.n_fft / 2)
        flat = torch::constant_pad_nd(flat, {0, config.n_fft / 2 + 1 - samples}, 0.0);
    at::Tensor spectrum = torch::stft(flat, config.n_fft, config.hop, config.window(), stft_window(config, signal),
                                      /*center=*/true, "reflect", /*normalized=*/false, /*onesided=*/true,
                                      /*return_complex=*/true);
    spectrum = spectrum.slice(-1, 0, config.frames(samples));
    leading.push_back(config.bins());
    leading.push_back(spectrum.size(-1));
    return spectrum.reshape(leading);
}

at::Tensor istft(const at::Tensor& spectrum, const StftConfig& config, int64_t length) {
    check_stft_config(config);
    TORCH_CHECK(spectrum.dim() >= 2 && spectrum.is_complex() && spectrum.size(-2) == config.bins(),
                "istft expects complex [..., ", config.bins(), ", frames], got ", spectrum.sizes());
    std::vector<int64_t> leading(spectrum.sizes().begin(), spectrum.sizes().end() - 2);
    at::Tensor flat = spectrum.reshape({-1, spectrum.size(-2), spectrum.size(-1)});
    at::Tensor signal = torch::istft(flat, config.n_fft, config.hop, config.window(), stft_window(config, spectrum),
                                     /*center=*/true, /*normalized=*/false, /*onesided=*/true, length,
                                     /*return_complex=*/false);
    leading.push_back(length);
    return signal.reshape(leading);
}

}  // namespace onestep
