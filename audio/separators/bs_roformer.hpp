// The band-split RoFormer separator (audio spec §3.2): per-band embeddings of the mixture's
// STFT, alternating time and band transformers with RoPE and gated heads, one complex mask per
// stem and band.
//
//   auto config = onestep::BandSplitRoformerConfig::preset("bsr-ci");
//   onestep::BandSplitRoformer net(config);
//   at::Tensor stems = net->forward(mixture);          // [B, C, T] -> [B, K, C, T]
//   at::Tensor masks = net->masks(features);           // the STFT-free core (exportable)
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "audio/stft.hpp"

namespace onestep {

struct BandSplitRoformerConfig {
    int64_t sample_rate = 44100;
    int64_t n_fft = 2048;
    int64_t hop = 512;
    std::vector<int64_t> band_widths;   // non-overlapping, summing to n_fft / 2 + 1
    int64_t dim = 64;
    int64_t layers = 4;
    int64_t heads = 4;
    int64_t head_dim = 32;
    int64_t ffn_mult = 4;
    int64_t mask_mult = 1;
    int64_t stems = 4;
    int64_t channels = 2;
    // Off in every preset (the spec's model: re/im only). On: each bin of a band also feeds its
    // magnitude per channel, so v_b has 6 F_b values for stereo instead of 4 F_b.
    bool band_magnitude = false;
    // The magnitudes enter as |X|^power (power-law compression lifts quiet bins before the band's RMSNorm).
    double magnitude_power = 1.0;

    // bsr-ci, bsr-small-22k, bsr-small, bsr-small-6, bsr-large, bsr-large-1stem; UserError otherwise.
    static BandSplitRoformerConfig preset(const std::string& name);
    StftConfig stft() const { return {n_fft, hop}; }
    // Values per bin in a band's input: re/im per channel, plus a magnitude per channel with band_magnitude.
    int64_t input_values_per_bin() const { return (band_magnitude ? 3 : 2) * channels; }
    // UserError naming the field when the bands do not cover the bins or a size is not positive.
    void validate() const;
    // The spec's closed form of the parameter count.
    int64_t parameter_count() const;
};

// RMSNorm(v) = g * v / sqrt(mean(v^2) + 1e-8).
class RmsNormImpl : public torch::nn::Module {
  public:
    explicit RmsNormImpl(int64_t size);
    at::Tensor forward(const at::Tensor& x);
    at::Tensor gain;
};
TORCH_MODULE(RmsNorm);

// Pre-norm transformer layer over the second-to-last axis of [N, L, D], RoPE on positions 0..L-1.
class RoformerBlockImpl : public torch::nn::Module {
  public:
    RoformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t ffn_mult);
    at::Tensor forward(const at::Tensor& x);

  private:
    int64_t heads_, head_dim_;
    RmsNorm attention_norm_{nullptr}, ffn_norm_{nullptr};
    torch::nn::Linear qkv_{nullptr}, gate_{nullptr}, out_{nullptr}, ffn_in_{nullptr}, ffn_out_{nullptr};
};
TORCH_MODULE(RoformerBlock);

// The time/band transformer shared by the RoFormers: CONFIG.layers pairs of blocks appended to
// TIME and BAND, and one pair applied to h [B, S, bands, D] (attention over the S frames of each
// band, then over the bands of each frame).
void add_time_band_layers(torch::nn::ModuleList& time, torch::nn::ModuleList& band, const BandSplitRoformerConfig& config);
at::Tensor time_band_layer(RoformerBlockImpl& time, RoformerBlockImpl& band, const at::Tensor& h);

// softmax(q k^T / sqrt(d)) v with the row maximum subtracted, q/k/v [N, H, L, d]; written by
// hand (no scaled_dot_product_attention on libtorch 1.13).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
// Rotary embedding of [N, H, L, d]: pair i of position p rotated by p * 10000^(-2i/d),
// interleaved pairs (0,1), (2,3), ...
at::Tensor apply_rope(const at::Tensor& x);

class BandSplitRoformerImpl : public torch::nn::Module {
  public:
    explicit BandSplitRoformerImpl(const BandSplitRoformerConfig& config);

    // MIXTURE [B, C, T] -> stems [B, K, C, T] (masks applied to the mixture's STFT, iSTFT).
    at::Tensor forward(const at::Tensor& mixture);
    // The core: band features [B, S, 2 C F] (bin-major, channel, re/im) -> masks [B, K, S, 2 C F].
    at::Tensor masks(const at::Tensor& features);

    // STFT [B, C, F, S] complex -> features [B, S, F * C * 2], and back for masks.
    static at::Tensor spectrum_to_features(const at::Tensor& spectrum);
    static at::Tensor features_to_spectrum(const at::Tensor& features, int64_t channels);

    const BandSplitRoformerConfig& config() const { return config_; }

  private:
    BandSplitRoformerConfig config_;
    std::vector<int64_t> band_starts_;   // first feature column of each band (4 F_b wide for stereo)
    // v_b of band B: its re/im columns, with config.band_magnitude also each bin's magnitude.
    at::Tensor band_input(const at::Tensor& features, int64_t band) const;
    torch::nn::ModuleList band_norms_, band_embeddings_, time_blocks_, band_blocks_, mask_hidden_, mask_out_;
    RmsNorm final_norm_{nullptr};
};
TORCH_MODULE(BandSplitRoformer);

}  // namespace onestep
