// Generative separation on the mixture's constraint set (audio spec §5.2, variant 1): a
// band-split RoFormer that sees the mixture and the current state of all K stems, conditioned on
// the flow time t and the shortcut step level by FiLM, and returning a velocity that keeps
// Σ_k s_k = x. With M_x = {s : Σ_k s_k = x}, the prior Π_x(σ_p ε) and the path
// s_t = (1 − t) z̃ + t s stay on M_x, so every Euler or shortcut jump is mixture-consistent.
//
//   FlowRoformer net(BandSplitRoformerConfig::preset("bsr-ci"), /*level_count=*/8);
//   at::Tensor z = mixture_prior(mixture, 4, net->prior_std(), generator);   // [B, K, C, T] on M_x
//   at::Tensor v = net->forward(z, t, at::Tensor(), levels);                 // Σ_k v_k = 0
//   at::Tensor stems = z + v;                                                 // one step at t = 0, d = 1
#pragma once
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <vector>

#include "audio/separation_loss.hpp"
#include "audio/separators/bs_roformer.hpp"
#include "models/network.hpp"

namespace onestep {

// Π_x(s)_k = s_k + (x − Σ_j s_j) / K: STEMS [B, K, C, T], MIXTURE [B, C, T].
at::Tensor project_to_mixture(const at::Tensor& stems, const at::Tensor& mixture);
// Π_0(v)_k = v_k − Σ_j v_j / K.
at::Tensor project_tangent(const at::Tensor& velocity);
// z̃ = Π_x(σ_p ε), ε ~ N(0, I) [B, K, C, T] drawn from GENERATOR (libtorch's default when undefined).
at::Tensor mixture_prior(const at::Tensor& mixture, int64_t stems, double prior_std,
                         const at::Generator& generator = at::Generator());

class FlowRoformerImpl : public VelocityNet {
  public:
    // CONFIG as for the discriminative RoFormer (stems and channels from the data); LEVEL_COUNT
    // shortcut levels 0..LEVEL_COUNT-1 embedded beside the time.
    FlowRoformerImpl(const BandSplitRoformerConfig& config, int64_t level_count);

    // STATE [B, K, C, T] on M_x (x = Σ_k STATE_k), t [B] in [0, 1), LEVELS [B]; LABELS ignored.
    // Returns v = (Π_x(F) − s_t) / (1 − t): the jump that lands on the network's mixture-consistent
    // estimate F of the stems at t = 1, so Σ_k v_k = 0.
    at::Tensor forward(const at::Tensor& state, const at::Tensor& t, const at::Tensor& labels,
                       const at::Tensor& levels = at::Tensor()) override;
    std::shared_ptr<VelocityNet> make_sibling() const override;

    const BandSplitRoformerConfig& config() const { return config_; }
    int64_t level_count() const { return level_count_; }
    // σ_p, the prior's scale: the RMS of a training stem, measured once and kept in checkpoints
    // (0 until set).
    double prior_std() const;
    void set_prior_std(double value);

  private:
    // The network's estimate F [B, K, C, T] of the stems.
    at::Tensor estimate(const at::Tensor& state, const at::Tensor& mixture, const at::Tensor& t, const at::Tensor& levels);
    // (1 + γ_i) h + β_i of FiLM slot I: h [B, S, bands, D], FILM [B, slots, 2, D].
    static at::Tensor modulate(const at::Tensor& h, const at::Tensor& film, int64_t slot);

    BandSplitRoformerConfig config_;
    int64_t level_count_;
    std::vector<int64_t> band_starts_;   // first feature column of each band in one signal's features
    ConditionEmbedding condition_{nullptr};
    torch::nn::Linear film_{nullptr};    // zero-initialised: the conditioning starts as the identity
    torch::nn::ModuleList band_norms_, band_embeddings_, time_blocks_, band_blocks_, head_hidden_, head_out_;
    RmsNorm final_norm_{nullptr};
    at::Tensor prior_std_;
};

struct ShortcutSettings;

struct FlowSeparationLoss {
    at::Tensor total, shortcut;   // shortcut: the MSE term alone
    SeparationLoss separation;    // L1 + MR-STFT of the flow items' estimates (unweighted)
};

// One training batch of the flow separator: a shortcut batch from the prior Π_x(σ_p ε) (σ_p =
// NET's prior_std()), TARGET_NET giving the self-consistency targets. Both sides are compared as
// the estimates s_t + (1 − t) v they jump to: MSE over σ_p², plus ESTIMATE_WEIGHT times L1 +
// MR-STFT of the flow items' estimates against STEMS, over σ_p. STEMS [B, K, C, T], MIXTURE [B, C, T].
FlowSeparationLoss flow_separation_loss(FlowRoformerImpl& net, VelocityNet& target_net, const at::Tensor& stems,
                                        const at::Tensor& mixture, const ShortcutSettings& settings,
                                        const SeparationLossSettings& loss_settings, double estimate_weight);

}  // namespace onestep
