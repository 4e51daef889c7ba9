// The mixture-conditioned flow RoFormer: band embeddings of the mixture and the K current stems,
// FiLM by (t, level) after the embedding and after every time/band layer pair, and per-stem
// complex spectra (not masks) that become the estimate the velocity points to.
#include "audio/separators/flow_roformer.hpp"

#include <torch/torch.h>

#include <algorithm>

#include "audio/stft.hpp"
#include "core/error.hpp"
#include "distill/shortcut/shortcut.hpp"
#include "models/conversions.hpp"

namespace onestep {

at::Tensor project_to_mixture(const at::Tensor& stems, const at::Tensor& mixture) {
    return stems + ((mixture - stems.sum(1)) / static_cast<double>(stems.size(1))).unsqueeze(1);
}

at::Tensor project_tangent(const at::Tensor& velocity) { return velocity - velocity.mean(1, /*keepdim=*/true); }

at::Tensor mixture_prior(const at::Tensor& mixture, int64_t stems, double prior_std, const at::Generator& generator) {
    std::vector<int64_t> shape{mixture.size(0), stems};
    shape.insert(shape.end(), mixture.sizes().begin() + 1, mixture.sizes().end());
    auto options = mixture.options();
    at::Tensor noise = generator.defined() ? at::randn(shape, generator, options.device(torch::kCPU)).to(mixture.device())
                                           : torch::randn(shape, options);
    return project_to_mixture(noise * prior_std, mixture);
}

FlowRoformerImpl::FlowRoformerImpl(const BandSplitRoformerConfig& config, int64_t level_count)
    : config_(config), level_count_(level_count) {
    config.validate();
    const int64_t per_bin = 2 * config.channels, per_bin_in = config.input_values_per_bin(), D = config.dim, K = config.stems;
    condition_ = register_module("condition", ConditionEmbedding(D, 0, level_count));
    // One (γ, β) pair after the band embedding and one after each layer pair.
    film_ = register_module("film", torch::nn::Linear(D, (config.layers + 1) * 2 * D));
    {
        torch::NoGradGuard no_grad;
        film_->weight.zero_();
        film_->bias.zero_();
    }
    band_norms_ = register_module("band_norms", torch::nn::ModuleList());
    band_embeddings_ = register_module("band_embeddings", torch::nn::ModuleList());
    int64_t start = 0;
    for (int64_t width : config.band_widths) {
        band_starts_.push_back(start);
        start += per_bin * width;
        // The mixture's band and the same band of every stem's current state.
        band_norms_->push_back(RmsNorm((K + 1) * per_bin_in * width));
        band_embeddings_->push_back(torch::nn::Linear((K + 1) * per_bin_in * width, D));
    }
    band_starts_.push_back(start);
    time_blocks_ = register_module("time_blocks", torch::nn::ModuleList());
    band_blocks_ = register_module("band_blocks", torch::nn::ModuleList());
    add_time_band_layers(time_blocks_, band_blocks_, config);
    final_norm_ = register_module("final_norm", RmsNorm(D));
    head_hidden_ = register_module("head_hidden", torch::nn::ModuleList());
    head_out_ = register_module("head_out", torch::nn::ModuleList());
    for (int64_t stem = 0; stem < K; ++stem) {
        for (int64_t width : config.band_widths) {
            head_hidden_->push_back(torch::nn::Linear(D, config.mask_mult * D));
            head_out_->push_back(torch::nn::Linear(config.mask_mult * D, per_bin * width));
        }
    }
    prior_std_ = register_buffer("prior_std", torch::zeros({}));
}

std::shared_ptr<VelocityNet> FlowRoformerImpl::make_sibling() const {
    return std::make_shared<FlowRoformerImpl>(config_, level_count_);
}

double FlowRoformerImpl::prior_std() const { return prior_std_.item<double>(); }

void FlowRoformerImpl::set_prior_std(double value) {
    torch::NoGradGuard no_grad;
    prior_std_.fill_(value);
}

at::Tensor FlowRoformerImpl::modulate(const at::Tensor& h, const at::Tensor& film, int64_t slot) {
    // film [B, slots, 2, D] -> [B, 1, 1, D] scale and shift.
    at::Tensor gamma = film.select(1, slot).select(1, 0).unsqueeze(1).unsqueeze(1);
    at::Tensor beta = film.select(1, slot).select(1, 1).unsqueeze(1).unsqueeze(1);
    return (1 + gamma) * h + beta;
}

at::Tensor FlowRoformerImpl::estimate(const at::Tensor& state, const at::Tensor& mixture, const at::Tensor& t,
                                      const at::Tensor& levels) {
    const int64_t batch = state.size(0), K = config_.stems, C = config_.channels, length = state.size(-1);
    const int64_t bands = static_cast<int64_t>(config_.band_widths.size()), D = config_.dim;
    const StftConfig stft_config = config_.stft();
    // One STFT over the mixture and the K stems: [B, K + 1, C, T] -> features [B, K + 1, S, F C 2].
    at::Tensor signals = torch::cat({mixture.unsqueeze(1), state}, 1).reshape({batch * (K + 1), C, length});
    at::Tensor features = BandSplitRoformerImpl::spectrum_to_features(stft(signals, stft_config));
    const int64_t frames = features.size(1);
    features = features.view({batch, K + 1, frames, -1});

    at::Tensor film = film_(torch::silu(condition_(t, at::Tensor(), levels))).view({batch, config_.layers + 1, 2, D});
    std::vector<at::Tensor> embedded;
    for (int64_t b = 0; b < bands; ++b) {
        // [B, K + 1, S, w] -> [B, S, (K + 1) w]: the mixture's band, then each stem's.
        at::Tensor band = features.slice(-1, band_starts_[b], band_starts_[b + 1]);
        if (config_.band_magnitude) {
            // |X|^p per bin and channel, as in the discriminative RoFormer (the floor keeps the
            // derivative finite at silent bins).
            at::Tensor pairs = band.reshape({batch, K + 1, frames, -1, 2});
            band = torch::cat({band, torch::pow(pairs.pow(2).sum(-1) + 1e-12, 0.5 * config_.magnitude_power)}, -1);
        }
        band = band.permute({0, 2, 1, 3}).reshape({batch, frames, -1});
        band = band_norms_->at<RmsNormImpl>(b).forward(band);
        embedded.push_back(band_embeddings_->at<torch::nn::LinearImpl>(b).forward(band));
    }
    at::Tensor h = modulate(torch::stack(embedded, 2), film, 0);   // [B, S, bands, D]
    for (int64_t layer = 0; layer < config_.layers; ++layer)
        h = modulate(time_band_layer(time_blocks_->at<RoformerBlockImpl>(layer), band_blocks_->at<RoformerBlockImpl>(layer), h),
                     film, layer + 1);
    h = final_norm_(h);
    std::vector<at::Tensor> per_stem;
    for (int64_t stem = 0; stem < K; ++stem) {
        std::vector<at::Tensor> per_band;
        for (int64_t b = 0; b < bands; ++b) {
            int64_t index = stem * bands + b;
            at::Tensor hidden = torch::tanh(head_hidden_->at<torch::nn::LinearImpl>(index).forward(h.select(2, b)));
            per_band.push_back(head_out_->at<torch::nn::LinearImpl>(index).forward(hidden));
        }
        per_stem.push_back(torch::cat(per_band, -1));   // [B, S, F C 2]
    }
    at::Tensor spectra = BandSplitRoformerImpl::features_to_spectrum(torch::stack(per_stem, 1), C);   // [B, K, C, F, S]
    return istft(spectra, stft_config, length);
}

at::Tensor FlowRoformerImpl::forward(const at::Tensor& state, const at::Tensor& t, const at::Tensor& /*labels*/,
                                     const at::Tensor& levels) {
    TORCH_CHECK(state.dim() == 4 && state.size(1) == config_.stems && state.size(2) == config_.channels,
                "FlowRoformer expects [B, ", config_.stems, ", ", config_.channels, ", T], got ", state.sizes());
    at::Tensor mixture = state.sum(1);
    at::Tensor target = project_to_mixture(estimate(state, mixture, t, levels), mixture);
    // 1 − t is at least 1/M on the training grids; the floor only guards a caller's t = 1.
    at::Tensor remaining = broadcast_time((1 - t).clamp_min(1e-4), state);
    return (target - state) / remaining;
}

FlowSeparationLoss flow_separation_loss(FlowRoformerImpl& net, VelocityNet& target_net, const at::Tensor& stems,
                                        const at::Tensor& mixture, const ShortcutSettings& settings,
                                        const SeparationLossSettings& loss_settings, double estimate_weight) {
    const double sigma = net.prior_std();
    ShortcutBatch items = make_shortcut_batch(stems, at::Tensor(), target_net, settings, mixture_prior(mixture, stems.size(1), sigma));
    at::Tensor velocity = net.forward(items.x_t, items.t, at::Tensor(), items.levels);
    at::Tensor remaining = broadcast_time(1 - items.t, stems);
    at::Tensor estimate = items.x_t + remaining * velocity;
    at::Tensor target = items.x_t + remaining * items.targets;
    FlowSeparationLoss loss;
    loss.shortcut = (estimate - target).pow(2).mean() / (sigma * sigma);
    const int64_t first_flow = items.bootstrap_count, size = stems.size(0);
    loss.separation = separation_loss(estimate.slice(0, first_flow, size), stems.slice(0, first_flow, size), loss_settings);
    loss.total = loss.shortcut + estimate_weight * loss.separation.total / sigma;
    return loss;
}

}  // namespace onestep
