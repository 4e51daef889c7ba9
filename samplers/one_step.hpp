// The one-step generator G(z, y) = z + (1 - t0) v(z, t0, y) (image-methods spec §3.6): the sampler
// of SlimFlow's student and of the distilled one-step methods. Other step counts run the same
// network as an ODE (Euler, Heun, DDIM) over the usual time grid. A consistency student (t0 = 0,
// where G is f(z, 0)) also samples in k steps with the consistency multistep sampler on its
// training grid (samplers/consistency.hpp).
//
//   OneStepSampler sampler(student_ema, 1e-3, {2}, {}, 0);
//   at::Tensor x = sampler.sample(noise, labels, {});           // one network evaluation
//   options.sampler = "euler"; options.steps = 4;                // or the ODE in 4 steps
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "samplers/sampler.hpp"

namespace onestep {

class VelocityNet;
class OdeSampler;

// G(z, y) = z + (1 - t0) v(z, t0, y), gradients flowing through v.
at::Tensor one_step_generate(VelocityNet& net, const at::Tensor& noise, const at::Tensor& labels, double t0);

class OneStepSampler : public Sampler {
  public:
    // DEFAULT_SAMPLER: "one-step", "euler", "heun" or "ddim" (what an empty SampleOptions::sampler
    // means), or "consistency" when CONSISTENCY_GRID (float64 [N + 1], the training grid; t0 must
    // be 0) is given: that adds the consistency multistep sampler in 1 to N steps.
    OneStepSampler(std::shared_ptr<VelocityNet> net, double t0, std::vector<int64_t> sample_shape,
                   std::vector<std::string> class_names, int64_t num_classes, std::string default_sampler = "one-step",
                   int64_t default_steps = 1, at::Tensor consistency_grid = at::Tensor());
    ~OneStepSampler() override;
    at::Tensor sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) override;
    std::vector<int64_t> sample_shape() const override { return sample_shape_; }
    int64_t num_classes() const override { return num_classes_; }
    std::vector<std::string> class_names() const override { return class_names_; }
    int64_t nfe(const SampleOptions& options) const override;
    std::string describe(const SampleOptions& options) const override;

  private:
    // OPTIONS with the defaults filled in; a UserError for an unknown sampler, for the one-step
    // map asked for more than one step, for consistency steps outside 1..N, or for guidance.
    SampleOptions with_defaults(const SampleOptions& options) const;

    std::shared_ptr<VelocityNet> net_;
    double t0_;
    std::vector<int64_t> sample_shape_;
    std::vector<std::string> class_names_;
    int64_t num_classes_;
    std::string default_sampler_;
    int64_t default_steps_;
    at::Tensor consistency_grid_;   // undefined unless a consistency student
    std::unique_ptr<OdeSampler> ode_;
};

}  // namespace onestep
