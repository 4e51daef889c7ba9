// Denoiser views, classifier-free guidance and network adapters.
#include "models/denoiser.hpp"

#include <torch/torch.h>

#include "core/error.hpp"
#include "models/conversions.hpp"

#include <sstream>

namespace onestep {

at::Tensor Denoiser::x0(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) {
    return x0_from_velocity(x_t, t, velocity(x_t, t, labels));
}

at::Tensor Denoiser::noise(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) {
    return noise_from_velocity(x_t, t, velocity(x_t, t, labels));
}

at::Tensor guided_velocity(Denoiser& denoiser, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels,
                           double guidance) {
    std::ostringstream weight;
    weight << guidance;
    if (guidance == 1.0 || denoiser.num_classes() == 0) {
        if (guidance != 1.0) throw UserError("--cfg " + weight.str() + ": the model is unconditional");
        return denoiser.velocity(x_t, t, labels);
    }
    if (!denoiser.has_null_label())
        throw UserError("--cfg " + weight.str() +
                        ": the model was trained without label dropout (p_uncond = 0), so it has no unconditional "
                        "branch; use --cfg 1");
    int64_t n = x_t.size(0);
    at::Tensor null_labels = torch::full_like(labels, denoiser.num_classes());
    at::Tensor both = denoiser.velocity(torch::cat({x_t, x_t}), torch::cat({t, t}), torch::cat({labels, null_labels}));
    at::Tensor conditional = both.slice(0, 0, n);
    at::Tensor unconditional = both.slice(0, n, 2 * n);
    return unconditional + guidance * (conditional - unconditional);
}

NetworkDenoiser::NetworkDenoiser(std::shared_ptr<VelocityNet> net, Parameterisation parameterisation,
                                 int64_t num_classes, bool has_null_label)
    : net_(std::move(net)), parameterisation_(parameterisation), num_classes_(num_classes),
      has_null_label_(has_null_label) {}

double NetworkDenoiser::t_min() const {
    if (parameterisation_ == Parameterisation::VpEpsilon)
        return t_from_ddpm_index(torch::full({1}, kDdpmSteps - 1, torch::kLong)).item<double>();
    return 0.0;
}

at::Tensor NetworkDenoiser::velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) {
    at::Tensor clamped = t.clamp(t_min(), t_max());
    if (parameterisation_ == Parameterisation::Velocity) return net_->forward(x_t, clamped, labels);
    // eps-net -> project: z_hat = eps(x_t / r_t, t); v = (x_t - z_hat) / t.
    at::Tensor epsilon = net_->forward(x_t / broadcast_time(vp_scale(clamped), x_t), clamped, labels);
    return velocity_from_noise(x_t, clamped, epsilon);
}

}  // namespace onestep
