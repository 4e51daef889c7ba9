// The consistency function and its multistep sampler (image-methods spec §1.6 and §2.3, item 6).
// f(x_t, t, y) = x_t + (1 - t) v(x_t, t, y) maps any point of a trajectory to its endpoint and is
// exact at the boundary, f(x, 1) = x. k-step sampling alternates the map with re-noising:
// x̂ = f(z, 0); for j = 1..k-1: x = (1 - τ_j) ξ_j + τ_j x̂, x̂ = f(x, τ_j), with τ_j = t_{⌊jN/k⌋}
// of the N-interval training grid. The same network also samples as an ODE (Euler, Heun, DDIM).
//
//   ConsistencySampler sampler(student_ema, time_grid("karras", 18), shape, names, 10);
//   options.steps = 2;                          // two evaluations
//   at::Tensor x = sampler.sample(z, y, options);
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "samplers/sampler.hpp"

namespace onestep {

class VelocityNet;
class OdeSampler;

// f(x_t, t, y) = x_t + (1 - t) v(x_t, t, y), gradients flowing through v.
at::Tensor consistency_function(VelocityNet& net, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels);

// τ_j = t_{⌊jN/k⌋}, j = 0..k-1, of GRID (N + 1 points, float64): float64 [k]. A UserError unless
// 1 <= k <= N.
at::Tensor consistency_times(const at::Tensor& grid, int64_t k);

// k-step consistency sampling from NOISE; the re-noising ξ_j comes from a CPU generator seeded by
// fresh_noise_seed(SEED).
at::Tensor consistency_sample(VelocityNet& net, const at::Tensor& noise, const at::Tensor& labels, const at::Tensor& grid,
                              int64_t k, uint64_t seed);

class ConsistencySampler : public Sampler {
  public:
    // GRID: the training grid (float64 [N + 1]). DEFAULT_SAMPLER "consistency", "euler", "heun" or "ddim".
    ConsistencySampler(std::shared_ptr<VelocityNet> net, at::Tensor grid, std::vector<int64_t> sample_shape,
                       std::vector<std::string> class_names, int64_t num_classes,
                       std::string default_sampler = "consistency", int64_t default_steps = 1);
    ~ConsistencySampler() override;
    at::Tensor sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) override;
    std::vector<int64_t> sample_shape() const override { return sample_shape_; }
    int64_t num_classes() const override { return num_classes_; }
    std::vector<std::string> class_names() const override { return class_names_; }
    int64_t nfe(const SampleOptions& options) const override;
    std::string describe(const SampleOptions& options) const override;

  private:
    // OPTIONS with the defaults filled in; a UserError for an unknown sampler, a step count
    // outside 1..N, or guidance (the student has no null label).
    SampleOptions with_defaults(const SampleOptions& options) const;

    std::shared_ptr<VelocityNet> net_;
    at::Tensor grid_;
    std::vector<int64_t> sample_shape_;
    std::vector<std::string> class_names_;
    int64_t num_classes_;
    std::string default_sampler_;
    int64_t default_steps_;
    std::unique_ptr<OdeSampler> ode_;
};

}  // namespace onestep
