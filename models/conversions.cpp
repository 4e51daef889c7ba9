// Time-convention maps (see conversions.hpp).
#include "models/conversions.hpp"

#include <torch/torch.h>

#include <cmath>

namespace onestep {

at::Tensor broadcast_time(const at::Tensor& t, const at::Tensor& like) {
    std::vector<int64_t> shape(like.dim(), 1);
    shape[0] = t.size(0);
    return t.to(like.dtype()).view(shape);
}

at::Tensor x0_from_velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& v) {
    return x_t + (1 - broadcast_time(t, x_t)) * v;
}
at::Tensor noise_from_velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& v) {
    return x_t - broadcast_time(t, x_t) * v;
}
at::Tensor velocity_from_x0(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& x0) {
    return (x0 - x_t) / (1 - broadcast_time(t, x_t));
}
at::Tensor velocity_from_noise(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& z) {
    return (x_t - z) / broadcast_time(t, x_t);
}

at::Tensor edm_sigma_from_t(const at::Tensor& t) { return (1 - t) / t; }
at::Tensor t_from_edm_sigma(const at::Tensor& sigma) { return 1 / (1 + sigma); }

at::Tensor karras_time(const at::Tensor& u) {
    // sigma(u) = (smax^(1/rho) + u (smin^(1/rho) - smax^(1/rho)))^rho
    const double sigma_max = 80.0, sigma_min = 0.002, rho = 7.0;
    const double top = std::pow(sigma_max, 1 / rho), bottom = std::pow(sigma_min, 1 / rho);
    return t_from_edm_sigma(torch::pow(top + u * (bottom - top), rho));
}

at::Tensor vp_scale(const at::Tensor& t) { return torch::sqrt(t * t + (1 - t) * (1 - t)); }
at::Tensor vp_alpha(const at::Tensor& t) { return t / vp_scale(t); }
at::Tensor vp_sigma(const at::Tensor& t) { return (1 - t) / vp_scale(t); }
at::Tensor t_from_vp(const at::Tensor& alpha, const at::Tensor& sigma) { return alpha / (alpha + sigma); }

at::Tensor ddpm_alpha_bar() {
    at::Tensor betas = torch::linspace(1e-4, 0.02, kDdpmSteps, torch::kDouble);
    return torch::cumprod(1 - betas, 0);
}

at::Tensor t_from_ddpm_index(const at::Tensor& tau) {
    at::Tensor alpha_bar = ddpm_alpha_bar().index_select(0, tau.to(torch::kLong).cpu());
    at::Tensor root = torch::sqrt(alpha_bar);
    return (root / (root + torch::sqrt(1 - alpha_bar))).to(torch::kFloat).to(tau.device());
}

at::Tensor ddpm_index_from_t(const at::Tensor& t) {
    // alpha_bar(t) = t^2 / (t^2 + (1-t)^2); take the nearest tabulated value.
    at::Tensor td = t.to(torch::kDouble).cpu();
    at::Tensor wanted = td * td / (td * td + (1 - td) * (1 - td));
    at::Tensor distance = (ddpm_alpha_bar().unsqueeze(0) - wanted.unsqueeze(1)).abs();
    return distance.argmin(1).to(t.device());
}

}  // namespace onestep
