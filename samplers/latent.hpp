// The sampler of a latent generator (Score Mismatching's G): x = G(z) with z ~ N(0, I_d), one
// network evaluation. Its noise is the latent, so draw_samples draws [N, d] for it.
//
//   LatentSampler sampler(generator_ema, {1, 32, 32});
//   at::Tensor x = sampler.sample(torch::randn({64, 100}), labels, {});
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "samplers/sampler.hpp"

namespace onestep {

class LatentGenerator;

class LatentSampler : public Sampler {
  public:
    LatentSampler(std::shared_ptr<LatentGenerator> generator, std::vector<int64_t> sample_shape);
    at::Tensor sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) override;
    std::vector<int64_t> sample_shape() const override { return sample_shape_; }
    std::vector<int64_t> noise_shape() const override;
    int64_t num_classes() const override { return 0; }
    int64_t nfe(const SampleOptions& options) const override;
    std::string describe(const SampleOptions& options) const override;

  private:
    // UserError for anything but one step of the generator without guidance.
    void check(const SampleOptions& options) const;

    std::shared_ptr<LatentGenerator> generator_;
    std::vector<int64_t> sample_shape_;
};

}  // namespace onestep
