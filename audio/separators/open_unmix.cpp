// Open-Unmix as in the reference implementation: normalised cropped magnitudes, FC + BN + tanh,
// a 3-layer BiLSTM, skip concatenation, two FC + BN layers, output scaling, ReLU mask on |X|.
#include "audio/separators/open_unmix.hpp"

#include <torch/torch.h>

#include "core/error.hpp"

namespace onestep {

void OpenUnmixConfig::validate() const {
    check_stft_config(stft());
    auto positive = [](int64_t value, const std::string& key) {
        if (value <= 0) throw UserError("model." + key + " must be positive (got " + std::to_string(value) + ")");
    };
    positive(hidden, "hidden");
    positive(lstm_layers, "lstm_layers");
    positive(channels, "channels");
    positive(stems, "stems");
    if (max_bin <= 0 || max_bin > bins())
        throw UserError("model.max_bin must be in 1.." + std::to_string(bins()) + " (got " + std::to_string(max_bin) + ")");
    if (!unidirectional && hidden % 2 != 0)
        throw UserError("model.hidden must be even for the bidirectional LSTM (got " + std::to_string(hidden) + ")");
}

int64_t OpenUnmixConfig::parameter_count_per_target() const {
    const int64_t H = hidden, lstm_hidden = unidirectional ? H : H / 2, directions = unidirectional ? 1 : 2;
    int64_t total = 2 * max_bin + 2 * bins();                   // input mean/scale, output scale/mean
    total += max_bin * channels * H + 2 * H;                    // fc1 (no bias), bn1
    for (int64_t layer = 0; layer < lstm_layers; ++layer) {     // input size H for every layer
        total += directions * (4 * lstm_hidden * (H + lstm_hidden) + 8 * lstm_hidden);
    }
    total += 2 * H * H + 2 * H;                                 // fc2 (no bias), bn2
    total += H * bins() * channels + 2 * bins() * channels;     // fc3 (no bias), bn3
    return total;
}

OpenUnmixImpl::OpenUnmixImpl(const OpenUnmixConfig& config) : config_(config) {
    config.validate();
    const int64_t H = config.hidden, out_features = config.bins() * config.channels;
    input_mean_ = register_parameter("input_mean", torch::zeros({config.max_bin}));
    input_scale_ = register_parameter("input_scale", torch::ones({config.max_bin}));
    output_scale_ = register_parameter("output_scale", torch::ones({config.bins()}));
    output_mean_ = register_parameter("output_mean", torch::ones({config.bins()}));
    fc1_ = register_module("fc1", torch::nn::Linear(torch::nn::LinearOptions(config.max_bin * config.channels, H).bias(false)));
    bn1_ = register_module("bn1", torch::nn::BatchNorm1d(H));
    lstm_ = register_module(
        "lstm", torch::nn::LSTM(torch::nn::LSTMOptions(H, config.unidirectional ? H : H / 2)
                                    .num_layers(config.lstm_layers)
                                    .bidirectional(!config.unidirectional)
                                    .dropout(config.lstm_layers > 1 ? 0.4 : 0.0)));
    fc2_ = register_module("fc2", torch::nn::Linear(torch::nn::LinearOptions(2 * H, H).bias(false)));
    bn2_ = register_module("bn2", torch::nn::BatchNorm1d(H));
    fc3_ = register_module("fc3", torch::nn::Linear(torch::nn::LinearOptions(H, out_features).bias(false)));
    bn3_ = register_module("bn3", torch::nn::BatchNorm1d(out_features));
}

void OpenUnmixImpl::set_input_statistics(const at::Tensor& mean, const at::Tensor& std) {
    torch::NoGradGuard no_grad;
    input_mean_.copy_(-mean.slice(0, 0, config_.max_bin));
    input_scale_.copy_(1.0 / std.slice(0, 0, config_.max_bin).clamp_min(1e-8));
}

at::Tensor OpenUnmixImpl::forward(const at::Tensor& magnitude) {
    const int64_t frames = magnitude.size(0), batch = magnitude.size(1), channels = magnitude.size(2);
    const int64_t H = config_.hidden;
    at::Tensor x = (magnitude.slice(3, 0, config_.max_bin) + input_mean_) * input_scale_;
    x = bn1_(fc1_(x.reshape({frames * batch, channels * config_.max_bin})));
    x = torch::tanh(x.reshape({frames, batch, H}));
    at::Tensor recurrent = std::get<0>(lstm_->forward(x));   // [S, B, H]
    x = torch::cat({x, recurrent}, -1).reshape({frames * batch, 2 * H});
    x = torch::relu(bn2_(fc2_(x)));
    x = bn3_(fc3_(x)).reshape({frames, batch, channels, config_.bins()});
    x = x * output_scale_ + output_mean_;
    return torch::relu(x) * magnitude;
}

OpenUnmixSeparatorImpl::OpenUnmixSeparatorImpl(const OpenUnmixConfig& config) : config_(config) {
    config.validate();
    targets_ = register_module("targets", torch::nn::ModuleList());
    for (int64_t k = 0; k < config.stems; ++k) targets_->push_back(OpenUnmix(config));
}

at::Tensor OpenUnmixSeparatorImpl::magnitudes(const at::Tensor& spectrum) {
    at::Tensor magnitude = spectrum.abs().permute({3, 0, 1, 2});   // [S, B, C, F]
    std::vector<at::Tensor> estimates;
    for (int64_t k = 0; k < config_.stems; ++k) estimates.push_back(target(k).forward(magnitude).permute({1, 2, 3, 0}));
    return torch::stack(estimates, 1);   // [B, K, C, F, S]
}

at::Tensor OpenUnmixSeparatorImpl::forward(const at::Tensor& mixture) {
    TORCH_CHECK(mixture.dim() == 3 && mixture.size(1) == config_.channels, "OpenUnmixSeparator expects [B, ",
                config_.channels, ", T], got ", mixture.sizes());
    at::Tensor spectrum = stft(mixture, config_.stft());   // [B, C, F, S]
    at::Tensor power = magnitudes(spectrum).pow(2);
    at::Tensor mask = power / (power.sum(1, /*keepdim=*/true) + 1e-10);
    return istft(mask * spectrum.unsqueeze(1), config_.stft(), mixture.size(-1));
}

}  // namespace onestep
