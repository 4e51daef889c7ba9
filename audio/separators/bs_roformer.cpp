// Band-split RoFormer: band embeddings, time/band transformer pairs, mask heads (GLU), and the
// complex masking of the mixture's STFT. Attention and RoPE are written out by hand.
#include "audio/separators/bs_roformer.hpp"

#include <torch/torch.h>

#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "models/gelu.hpp"

namespace onestep {
namespace {

std::vector<int64_t> repeated(std::initializer_list<std::pair<int64_t, int64_t>> groups) {
    std::vector<int64_t> widths;
    for (auto [count, width] : groups) widths.insert(widths.end(), count, width);
    return widths;
}

// Sequences handled per attention call: bounds the score tensor to 64 * H * L^2 floats.
constexpr int64_t kAttentionSlice = 64;

}  // namespace

BandSplitRoformerConfig BandSplitRoformerConfig::preset(const std::string& name) {
    BandSplitRoformerConfig config;
    const auto bands_2048 = repeated({{24, 2}, {12, 4}, {8, 12}, {8, 24}, {8, 48}, {1, 128}, {1, 129}});
    if (name == "bsr-ci") {
        config = {22050, 512, 128, repeated({{16, 2}, {8, 4}, {8, 8}, {4, 16}, {1, 65}}), 32, 1, 2, 16, 2, 1, 4, 2};
    } else if (name == "bsr-small-22k") {
        config = {22050, 1024, 256, repeated({{24, 2}, {12, 4}, {8, 12}, {4, 24}, {4, 48}, {1, 33}}), 64, 4, 4, 32, 4, 1, 4, 2};
    } else if (name == "bsr-small") {
        config = {44100, 2048, 512, bands_2048, 64, 4, 4, 32, 4, 1, 4, 2};
    } else if (name == "bsr-small-6") {
        config = {44100, 2048, 512, bands_2048, 64, 4, 4, 32, 4, 1, 6, 2};
    } else if (name == "bsr-large") {
        config = {44100, 2048, 441, bands_2048, 384, 8, 8, 64, 4, 2, 4, 2};
    } else if (name == "bsr-large-1stem") {
        config = {44100, 2048, 441, bands_2048, 384, 12, 8, 64, 4, 4, 1, 2};
    } else {
        throw UserError("unknown band-split RoFormer preset '" + name +
                        "' (accepted: bsr-ci, bsr-small-22k, bsr-small, bsr-small-6, bsr-large, bsr-large-1stem)");
    }
    return config;
}

void BandSplitRoformerConfig::validate() const {
    check_stft_config(stft());
    auto positive = [](int64_t value, const char* key) {
        if (value <= 0) throw UserError("model." + std::string(key) + " must be positive (got " + std::to_string(value) + ")");
    };
    positive(sample_rate, "sample_rate");
    positive(dim, "dim");
    positive(layers, "layers");
    positive(heads, "heads");
    positive(head_dim, "head_dim");
    positive(ffn_mult, "ffn_mult");
    positive(mask_mult, "mask_mult");
    positive(stems, "stems");
    positive(channels, "channels");
    if (!(magnitude_power > 0 && magnitude_power <= 2))
        throw UserError("model.magnitude_power must lie in (0, 2] (got " + std::to_string(magnitude_power) + ")");
    if (head_dim % 2 != 0) throw UserError("model.head_dim must be even for the rotary embedding (got " + std::to_string(head_dim) + ")");
    int64_t covered = 0;
    for (int64_t width : band_widths) {
        positive(width, "bands");
        covered += width;
    }
    if (covered != n_fft / 2 + 1)
        throw UserError("model.bands cover " + std::to_string(covered) + " bins but n_fft " + std::to_string(n_fft) +
                        " has " + std::to_string(n_fft / 2 + 1));
}

int64_t BandSplitRoformerConfig::parameter_count() const {
    const int64_t per_bin = 2 * channels;   // 4 for stereo: re/im of each channel
    const int64_t per_bin_in = input_values_per_bin();
    const int64_t D = dim, f = ffn_mult, e = mask_mult;
    int64_t total = 0;
    for (int64_t width : band_widths) total += per_bin_in * width + per_bin_in * width * D + D;
    total += 2 * layers * (2 * D + 4 * heads * head_dim * D + heads * D + heads + 2 * f * D * D + f * D + D);
    total += D;
    for (int64_t width : band_widths) total += stems * (e * D * D + e * D + 2 * per_bin * width * e * D + 2 * per_bin * width);
    return total;
}

RmsNormImpl::RmsNormImpl(int64_t size) { gain = register_parameter("gain", torch::ones({size})); }

at::Tensor RmsNormImpl::forward(const at::Tensor& x) {
    return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + 1e-8) * gain;
}

at::Tensor apply_rope(const at::Tensor& x) {
    const int64_t length = x.size(-2), dim = x.size(-1);
    auto options = torch::TensorOptions().dtype(x.scalar_type()).device(x.device());
    at::Tensor frequency = torch::pow(10000.0, -torch::arange(0, dim / 2, options) * 2.0 / dim);   // [d/2]
    at::Tensor angle = torch::arange(length, options).unsqueeze(1) * frequency.unsqueeze(0);     // [L, d/2]
    at::Tensor cos = torch::cos(angle), sin = torch::sin(angle);
    at::Tensor pairs = x.reshape({-1, length, dim / 2, 2});
    at::Tensor even = pairs.select(-1, 0), odd = pairs.select(-1, 1);
    return torch::stack({even * cos - odd * sin, even * sin + odd * cos}, -1).reshape(x.sizes());
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    at::Tensor scores = torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(q.size(-1)))), k.transpose(-2, -1));
    scores = scores - std::get<0>(scores.max(-1, /*keepdim=*/true)).detach();
    return torch::matmul(torch::softmax(scores, -1), v);
}

RoformerBlockImpl::RoformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t ffn_mult)
    : heads_(heads), head_dim_(head_dim) {
    attention_norm_ = register_module("attention_norm", RmsNorm(dim));
    qkv_ = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * heads * head_dim).bias(false)));
    gate_ = register_module("gate", torch::nn::Linear(dim, heads));
    out_ = register_module("out", torch::nn::Linear(torch::nn::LinearOptions(heads * head_dim, dim).bias(false)));
    ffn_norm_ = register_module("ffn_norm", RmsNorm(dim));
    ffn_in_ = register_module("ffn_in", torch::nn::Linear(dim, ffn_mult * dim));
    ffn_out_ = register_module("ffn_out", torch::nn::Linear(ffn_mult * dim, dim));
}

at::Tensor RoformerBlockImpl::forward(const at::Tensor& x) {
    const int64_t sequences = x.size(0), length = x.size(1);
    at::Tensor u = attention_norm_(x);
    at::Tensor qkv = qkv_(u).view({sequences, length, 3, heads_, head_dim_}).permute({2, 0, 3, 1, 4});   // [3, N, H, L, d]
    at::Tensor q = apply_rope(qkv[0]), k = apply_rope(qkv[1]), v = qkv[2];
    std::vector<at::Tensor> slices;
    for (int64_t start = 0; start < sequences; start += kAttentionSlice) {
        int64_t end = std::min(sequences, start + kAttentionSlice);
        slices.push_back(attention(q.slice(0, start, end), k.slice(0, start, end), v.slice(0, start, end)));
    }
    at::Tensor heads = slices.size() == 1 ? slices.front() : torch::cat(slices, 0);   // [N, H, L, d]
    // Per-head gate sigma(w_h u + b_h) scales each head's output.
    heads = heads * torch::sigmoid(gate_(u)).permute({0, 2, 1}).unsqueeze(-1);
    at::Tensor h = x + out_(heads.permute({0, 2, 1, 3}).reshape({sequences, length, heads_ * head_dim_}));
    return h + ffn_out_(gelu_erf(ffn_in_(ffn_norm_(h))));
}

void add_time_band_layers(torch::nn::ModuleList& time, torch::nn::ModuleList& band, const BandSplitRoformerConfig& config) {
    for (int64_t layer = 0; layer < config.layers; ++layer) {
        time->push_back(RoformerBlock(config.dim, config.heads, config.head_dim, config.ffn_mult));
        band->push_back(RoformerBlock(config.dim, config.heads, config.head_dim, config.ffn_mult));
    }
}

at::Tensor time_band_layer(RoformerBlockImpl& time, RoformerBlockImpl& band, const at::Tensor& h) {
    const int64_t batch = h.size(0), frames = h.size(1), bands = h.size(2), D = h.size(3);
    // Over time: one sequence of S frames per (batch, band).
    at::Tensor over_time = time.forward(h.permute({0, 2, 1, 3}).reshape({batch * bands, frames, D}));
    at::Tensor back = over_time.view({batch, bands, frames, D}).permute({0, 2, 1, 3});
    // Over bands: one sequence of bands per (batch, frame).
    return band.forward(back.reshape({batch * frames, bands, D})).view({batch, frames, bands, D});
}

BandSplitRoformerImpl::BandSplitRoformerImpl(const BandSplitRoformerConfig& config) : config_(config) {
    config.validate();
    const int64_t per_bin = 2 * config.channels, D = config.dim;
    const int64_t per_bin_in = config.input_values_per_bin();
    band_norms_ = register_module("band_norms", torch::nn::ModuleList());
    band_embeddings_ = register_module("band_embeddings", torch::nn::ModuleList());
    int64_t start = 0;
    for (int64_t width : config.band_widths) {
        band_starts_.push_back(start);
        start += per_bin * width;
        band_norms_->push_back(RmsNorm(per_bin_in * width));
        band_embeddings_->push_back(torch::nn::Linear(per_bin_in * width, D));
    }
    band_starts_.push_back(start);
    time_blocks_ = register_module("time_blocks", torch::nn::ModuleList());
    band_blocks_ = register_module("band_blocks", torch::nn::ModuleList());
    add_time_band_layers(time_blocks_, band_blocks_, config);
    final_norm_ = register_module("final_norm", RmsNorm(D));
    mask_hidden_ = register_module("mask_hidden", torch::nn::ModuleList());
    mask_out_ = register_module("mask_out", torch::nn::ModuleList());
    for (int64_t stem = 0; stem < config.stems; ++stem) {
        for (int64_t width : config.band_widths) {
            mask_hidden_->push_back(torch::nn::Linear(D, config.mask_mult * D));
            mask_out_->push_back(torch::nn::Linear(config.mask_mult * D, 2 * per_bin * width));
        }
    }
}

at::Tensor BandSplitRoformerImpl::spectrum_to_features(const at::Tensor& spectrum) {
    // [B, C, F, S] complex -> [B, S, F, C, 2] -> [B, S, F * C * 2]: bin-major, then channel, then re/im.
    at::Tensor real = torch::view_as_real(spectrum).permute({0, 3, 2, 1, 4});
    return real.reshape({spectrum.size(0), spectrum.size(3), -1});
}

at::Tensor BandSplitRoformerImpl::features_to_spectrum(const at::Tensor& features, int64_t channels) {
    // [..., S, F * C * 2] -> complex [..., C, F, S]
    std::vector<int64_t> shape(features.sizes().begin(), features.sizes().end() - 1);
    const int64_t rank = static_cast<int64_t>(shape.size());   // leading dims + S
    shape.push_back(features.size(-1) / (2 * channels));
    shape.push_back(channels);
    shape.push_back(2);
    at::Tensor spectrum = torch::view_as_complex(features.reshape(shape).contiguous());   // [..., S, F, C]
    std::vector<int64_t> order;
    for (int64_t axis = 0; axis < rank - 1; ++axis) order.push_back(axis);
    order.insert(order.end(), {rank + 1, rank, rank - 1});
    return spectrum.permute(order);
}

at::Tensor BandSplitRoformerImpl::band_input(const at::Tensor& features, int64_t band) const {
    at::Tensor columns = features.slice(-1, band_starts_[band], band_starts_[band + 1]);   // [B, S, F_b * C * 2]
    if (!config_.band_magnitude) return columns;
    std::vector<int64_t> pairs(columns.sizes().begin(), columns.sizes().end() - 1);
    pairs.insert(pairs.end(), {-1, 2});
    // (re^2 + im^2 + 1e-12)^(p/2): the floor keeps the derivative finite at silent bins when the
    // mixture itself carries a gradient.
    at::Tensor magnitude = torch::pow(columns.reshape(pairs).pow(2).sum(-1) + 1e-12, 0.5 * config_.magnitude_power);   // [B, S, F_b * C]
    return torch::cat({columns, magnitude}, -1);
}

at::Tensor BandSplitRoformerImpl::masks(const at::Tensor& features) {
    const int64_t bands = static_cast<int64_t>(config_.band_widths.size());
    std::vector<at::Tensor> embedded;
    for (int64_t b = 0; b < bands; ++b) {
        at::Tensor band = band_norms_->at<RmsNormImpl>(b).forward(band_input(features, b));
        embedded.push_back(band_embeddings_->at<torch::nn::LinearImpl>(b).forward(band));
    }
    at::Tensor h = torch::stack(embedded, 2);   // [B, S, bands, D]
    for (int64_t layer = 0; layer < config_.layers; ++layer)
        h = time_band_layer(time_blocks_->at<RoformerBlockImpl>(layer), band_blocks_->at<RoformerBlockImpl>(layer), h);
    h = final_norm_(h);
    std::vector<at::Tensor> per_stem;
    for (int64_t stem = 0; stem < config_.stems; ++stem) {
        std::vector<at::Tensor> per_band;
        for (int64_t b = 0; b < bands; ++b) {
            int64_t index = stem * bands + b;
            at::Tensor hidden = torch::tanh(mask_hidden_->at<torch::nn::LinearImpl>(index).forward(h.select(2, b)));
            per_band.push_back(torch::glu(mask_out_->at<torch::nn::LinearImpl>(index).forward(hidden), -1));
        }
        per_stem.push_back(torch::cat(per_band, -1));   // [B, S, F * C * 2]
    }
    return torch::stack(per_stem, 1);   // [B, K, S, F * C * 2]
}

at::Tensor BandSplitRoformerImpl::forward(const at::Tensor& mixture) {
    TORCH_CHECK(mixture.dim() == 3 && mixture.size(1) == config_.channels, "BandSplitRoformer expects [B, ",
                config_.channels, ", T], got ", mixture.sizes());
    const StftConfig stft_config = config_.stft();
    at::Tensor spectrum = stft(mixture, stft_config);   // [B, C, F, S]
    at::Tensor mask = features_to_spectrum(masks(spectrum_to_features(spectrum)), config_.channels);   // [B, K, C, F, S]
    return istft(mask * spectrum.unsqueeze(1), stft_config, mixture.size(-1));
}

}  // namespace onestep
