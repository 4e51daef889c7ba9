// The analytic eight-Gaussians teacher.
#include "models/analytic_mixture.hpp"

#include <torch/torch.h>

#include <cmath>

#include "core/error.hpp"

namespace onestep {

GaussianMixtureDenoiser::GaussianMixtureDenoiser(MixtureLabels labels) : labels_(labels) {
    at::Tensor angle = torch::arange(8, torch::kDouble) * (2 * M_PI / 8);
    modes_ = 2 * torch::stack({torch::cos(angle), torch::sin(angle)}, 1);
}

int64_t GaussianMixtureDenoiser::num_classes() const {
    return labels_ == MixtureLabels::Fine ? 8 : labels_ == MixtureLabels::Coarse ? 4 : 0;
}

std::vector<std::string> GaussianMixtureDenoiser::class_names() const {
    std::vector<std::string> names;
    for (int64_t c = 0; c < num_classes(); ++c)
        names.push_back(labels_ == MixtureLabels::Fine ? "mode " + std::to_string(c)
                                                       : "modes " + std::to_string(2 * c) + "-" + std::to_string(2 * c + 1));
    return names;
}

at::Tensor GaussianMixtureDenoiser::velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) {
    TORCH_CHECK(x_t.dim() == 2 && x_t.size(1) == 2, "the analytic teacher takes 2-D points");
    at::Tensor x = x_t.to(torch::kDouble);
    at::Tensor time = t.to(torch::kDouble).clamp(0.0, t_max()).view({-1, 1});    // [N, 1]
    at::Tensor modes = modes_.to(x.device());
    at::Tensor q = time.pow(2) * (std_ * std_) + (1 - time).pow(2);                // q_t
    at::Tensor centred = x.unsqueeze(1) - time.unsqueeze(2) * modes.unsqueeze(0);  // x - t mu_k: [N, 8, 2]
    at::Tensor logits = -centred.pow(2).sum(2) / (2 * q);                          // [N, 8]
    const int64_t classes = num_classes();
    if (classes > 0) {
        // Modes outside the label get no weight; the null label C allows every mode.
        logits = logits.masked_fill(allowed_modes(labels, x.device()).logical_not(), -INFINITY);
    }
    at::Tensor weights = torch::softmax(logits, 1).unsqueeze(2);                   // pi_k
    at::Tensor shrink = (time * (std_ * std_) / q).unsqueeze(2);                   // t s^2 / q_t
    at::Tensor x0 = (weights * (modes.unsqueeze(0) + shrink * centred)).sum(1);
    return ((x0 - x) / (1 - time)).to(x_t.scalar_type());
}

at::Tensor GaussianMixtureDenoiser::allowed_modes(const at::Tensor& labels, const c10::Device& device) const {
    at::Tensor mode_class = torch::arange(8, torch::kLong).to(device);
    if (labels_ == MixtureLabels::Coarse) mode_class = mode_class.div(2, "floor");
    at::Tensor label = labels.to(torch::kLong).to(device).view({-1, 1});
    return (mode_class.unsqueeze(0) == label) | (label == num_classes());
}

at::Tensor GaussianMixtureDenoiser::log_posterior(const at::Tensor& x, const at::Tensor& labels) const {
    TORCH_CHECK(x.dim() == 2 && x.size(1) == 2, "the analytic mixture takes 2-D points");
    TORCH_CHECK(num_classes() > 0, "log p(y | x) needs a labelled mixture");
    at::Tensor modes = modes_.to(x.device()).to(x.scalar_type());
    at::Tensor log_density = -(x.unsqueeze(1) - modes.unsqueeze(0)).pow(2).sum(2) / (2 * std_ * std_);   // [N, 8]
    at::Tensor own = log_density.masked_fill(allowed_modes(labels, x.device()).logical_not(), -INFINITY);
    return torch::logsumexp(own, 1) - torch::logsumexp(log_density, 1);
}

MixtureLabels parse_analytic_teacher(const std::string& name) {
    if (name == "analytic:8gaussians") return MixtureLabels::None;
    if (name == "analytic:8gaussians-fine") return MixtureLabels::Fine;
    if (name == "analytic:8gaussians-coarse") return MixtureLabels::Coarse;
    throw UserError("unknown analytic teacher '" + name +
                    "' (accepted: analytic:8gaussians, analytic:8gaussians-fine, analytic:8gaussians-coarse)");
}

}  // namespace onestep
