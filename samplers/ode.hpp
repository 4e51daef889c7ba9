// ODE samplers over a Denoiser (image-methods spec §2.2–2.3): Euler, Heun and DDIM on a time
// grid 0 = t_0 < ... < t_N = 1, with classifier-free guidance; and OdeSampler, the Sampler
// that methods with a multi-step teacher hand out.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "models/denoiser.hpp"
#include "samplers/sampler.hpp"

namespace onestep {

// "uniform" (t_n = n/N), "karras" (EDM sigmas, rho 7, t_0 := 0, t_N := 1) or "ddpm-skip".
// Returns float64 [steps + 1]. Unknown kinds are a UserError.
at::Tensor time_grid(const std::string& kind, int64_t steps);

at::Tensor euler_sample(Denoiser& denoiser, const at::Tensor& noise, const at::Tensor& labels, const at::Tensor& grid,
                        double guidance);
// Second-order Heun; skips the correction on the last interval when the denoiser is singular at t = 1.
at::Tensor heun_sample(Denoiser& denoiser, const at::Tensor& noise, const at::Tensor& labels, const at::Tensor& grid,
                       double guidance);
// DDIM with stochasticity eta (0: identical to Euler); fresh noise from a generator seeded by
// fresh_noise_seed(SEED).
at::Tensor ddim_sample(Denoiser& denoiser, const at::Tensor& noise, const at::Tensor& labels, const at::Tensor& grid,
                       double guidance, double eta, uint64_t seed);

class OdeSampler : public Sampler {
  public:
    OdeSampler(std::shared_ptr<Denoiser> denoiser, std::vector<int64_t> sample_shape,
               std::vector<std::string> class_names, std::string default_sampler, int64_t default_steps);
    at::Tensor sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) override;
    std::vector<int64_t> sample_shape() const override { return sample_shape_; }
    int64_t num_classes() const override { return denoiser_->num_classes(); }
    std::vector<std::string> class_names() const override { return class_names_; }
    int64_t nfe(const SampleOptions& options) const override;
    std::string describe(const SampleOptions& options) const override;
    const std::shared_ptr<Denoiser>& denoiser() const { return denoiser_; }

  private:
    std::string sampler_name(const SampleOptions& options) const;
    int64_t steps(const SampleOptions& options) const;

    std::shared_ptr<Denoiser> denoiser_;
    std::vector<int64_t> sample_shape_;
    std::vector<std::string> class_names_;
    std::string default_sampler_;
    int64_t default_steps_;
};

}  // namespace onestep
