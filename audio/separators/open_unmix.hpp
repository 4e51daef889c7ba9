// Open-Unmix (Stöter et al., 2019; audio spec §3.3): one magnitude-masking network per target
// (FC, BiLSTM, skip concatenation, FC) and the multi-target separator that combines the targets'
// magnitudes with a soft Wiener-style mask on the mixture's complex STFT.
//
//   onestep::OpenUnmixConfig config;                    // 4096/1024, max_bin 1487, hidden 512
//   onestep::OpenUnmixSeparator umx(config);            // config.stems targets
//   at::Tensor stems = umx->forward(mixture);           // [B, C, T] -> [B, K, C, T]
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "audio/stft.hpp"

namespace onestep {

struct OpenUnmixConfig {
    int64_t sample_rate = 44100;
    int64_t n_fft = 4096;
    int64_t hop = 1024;
    int64_t max_bin = 1487;   // input bins kept (about 16 kHz at 44.1 kHz)
    int64_t hidden = 512;
    int64_t lstm_layers = 3;
    bool unidirectional = false;
    int64_t channels = 2;
    int64_t stems = 4;

    StftConfig stft() const { return {n_fft, hop}; }
    int64_t bins() const { return n_fft / 2 + 1; }
    // UserError naming the field for sizes out of range.
    void validate() const;
    // Parameters of one target network (8 893 348 for the defaults).
    int64_t parameter_count_per_target() const;
};

// One target: mixture magnitude [S, B, C, F] -> the target's magnitude estimate, same shape.
class OpenUnmixImpl : public torch::nn::Module {
  public:
    explicit OpenUnmixImpl(const OpenUnmixConfig& config);
    at::Tensor forward(const at::Tensor& magnitude);
    // Sets the input normalisation from training statistics: mean and std per bin [max_bin].
    void set_input_statistics(const at::Tensor& mean, const at::Tensor& std);

  private:
    OpenUnmixConfig config_;
    at::Tensor input_mean_, input_scale_, output_scale_, output_mean_;
    torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
    torch::nn::BatchNorm1d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
    torch::nn::LSTM lstm_{nullptr};
};
TORCH_MODULE(OpenUnmix);

class OpenUnmixSeparatorImpl : public torch::nn::Module {
  public:
    explicit OpenUnmixSeparatorImpl(const OpenUnmixConfig& config);
    // MIXTURE [B, C, T] -> stems [B, K, C, T]: S_k = |S_k|^2 / (sum_j |S_j|^2 + 1e-10) X.
    at::Tensor forward(const at::Tensor& mixture);
    // The targets' magnitude estimates [B, K, C, F, S] from the mixture's STFT [B, C, F, S].
    at::Tensor magnitudes(const at::Tensor& spectrum);
    const OpenUnmixConfig& config() const { return config_; }
    OpenUnmixImpl& target(int64_t k) { return targets_->at<OpenUnmixImpl>(k); }

  private:
    OpenUnmixConfig config_;
    torch::nn::ModuleList targets_;
};
TORCH_MODULE(OpenUnmixSeparator);

}  // namespace onestep
