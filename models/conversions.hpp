// The project's time convention and the maps to every other one (image-methods spec §1):
// x_t = (1 - t) z + t x, t = 0 noise, t = 1 data, v = x - z. Time tensors are [N] and are
// broadcast over the sample dimensions.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace onestep {

// t [N] viewed as [N, 1, ...] to broadcast against LIKE.
at::Tensor broadcast_time(const at::Tensor& t, const at::Tensor& like);

// Denoiser and noise views of a velocity, and back.
at::Tensor x0_from_velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& v);      // x_t + (1-t) v
at::Tensor noise_from_velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& v);   // x_t - t v
at::Tensor velocity_from_x0(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& x0);     // (x0 - x_t)/(1-t)
at::Tensor velocity_from_noise(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& z);   // (x_t - z)/t

// EDM: sigma = (1-t)/t, t = 1/(1+sigma), x_sigma = x_t / t.
at::Tensor edm_sigma_from_t(const at::Tensor& t);
at::Tensor t_from_edm_sigma(const at::Tensor& sigma);
// The Karras noise level at fraction U of its index range (0: sigma_max = 80, 1: sigma_min = 0.002;
// rho = 7) as project time t = 1 / (1 + sigma): the karras grid and DMD's noise draws.
at::Tensor karras_time(const at::Tensor& u);

// VP: r_t = sqrt(t^2 + (1-t)^2), alpha = t/r_t, sigma_v = (1-t)/r_t, x_vp = x_t / r_t; t = alpha/(alpha+sigma_v).
at::Tensor vp_scale(const at::Tensor& t);   // r_t
at::Tensor vp_alpha(const at::Tensor& t);
at::Tensor vp_sigma(const at::Tensor& t);
at::Tensor t_from_vp(const at::Tensor& alpha, const at::Tensor& sigma);

// DDPM linear schedule (beta 1e-4 .. 0.02 over 1000 steps); tau = 0 is near data.
constexpr int64_t kDdpmSteps = 1000;
at::Tensor ddpm_alpha_bar();                        // float64 [1000]
at::Tensor t_from_ddpm_index(const at::Tensor& tau);   // int64 -> float
at::Tensor ddpm_index_from_t(const at::Tensor& t);     // nearest alpha_bar, int64

}  // namespace onestep
