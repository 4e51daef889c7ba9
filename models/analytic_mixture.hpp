// The analytic teacher of the eight-Gaussians toy (image-methods spec §4.1): the exact velocity of
// the flow from N(0, I) to a mixture of isotropic Gaussians, no training needed. With
// q_t = t^2 s^2 + (1 - t)^2 and weights pi_k ∝ exp(-|x - t mu_k|^2 / (2 q_t)) over the modes a
// label allows, x0* = sum_k pi_k [mu_k + (t s^2 / q_t)(x - t mu_k)] and v* = (x0* - x) / (1 - t).
//
//   auto teacher = std::make_shared<GaussianMixtureDenoiser>(MixtureLabels::None);
//   at::Tensor v = teacher->velocity(x_t, t, labels);
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "models/denoiser.hpp"

namespace onestep {

// Which modes a label allows: None, every mode (unconditional); Fine, label k is mode k (8
// classes); Coarse, label c is modes 2c and 2c + 1 (4 classes, each bimodal).
enum class MixtureLabels { None, Fine, Coarse };

class GaussianMixtureDenoiser : public Denoiser {
  public:
    // Modes 2 (cos 2 pi k / 8, sin 2 pi k / 8), k = 0..7, standard deviation 0.1.
    explicit GaussianMixtureDenoiser(MixtureLabels labels);
    at::Tensor velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) override;
    int64_t num_classes() const override;
    bool has_null_label() const override { return labels_ != MixtureLabels::None; }   // label C: every mode
    double t_max() const override { return 1.0 - 1e-6; }
    bool singular_at_one() const override { return true; }
    std::vector<std::string> class_names() const;
    // log p(y | x) under the data distribution (t = 1): the log share of the label's modes in the
    // mixture density at X [N, 2]; [N], differentiable in X. A labelled mixture only.
    at::Tensor log_posterior(const at::Tensor& x, const at::Tensor& labels) const;

  private:
    // bool [N, 8]: the modes each label allows (the null label C: all).
    at::Tensor allowed_modes(const at::Tensor& labels, const c10::Device& device) const;

    MixtureLabels labels_;
    at::Tensor modes_;   // [8, 2]
    double std_ = 0.1;
};

// "analytic:8gaussians" (unconditional), "analytic:8gaussians-fine", "analytic:8gaussians-coarse";
// UserError naming the accepted names otherwise.
MixtureLabels parse_analytic_teacher(const std::string& name);

}  // namespace onestep
