// Shortcut k-step sampling (image-methods spec §2.3, item 5): a network conditioned on the
// step-size level l = log2 k jumps x <- x + (1/k) s(x, i/k, l, y) for i = 0..k-1. The same
// checkpoint also samples its flow-matching level (l = log2 M) with Euler, Heun or DDIM on any
// grid, which is what a plain flow model would do.
//
//   ShortcutSampler sampler(net, 128, shape, names, /*num_classes=*/10, /*null=*/true, "shortcut", 1);
//   options.steps = 4;                 // l = 2: four jumps of 1/4
//   at::Tensor x = sampler.sample(z, y, options);
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "models/denoiser.hpp"
#include "samplers/sampler.hpp"

namespace onestep {

// A level-conditioned velocity network seen as a Denoiser at one fixed level.
class LevelDenoiser : public Denoiser {
  public:
    LevelDenoiser(std::shared_ptr<VelocityNet> net, int64_t level, int64_t num_classes, bool has_null_label);
    at::Tensor velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) override;
    int64_t num_classes() const override { return num_classes_; }
    bool has_null_label() const override { return has_null_label_; }
    int64_t level() const { return level_; }

  private:
    std::shared_ptr<VelocityNet> net_;
    int64_t level_;
    int64_t num_classes_;
    bool has_null_label_;
};

// log2 of K when K is a power of two in [1, max_steps]; otherwise a UserError naming WHAT (the
// option or config key that gave K).
int64_t shortcut_level(int64_t k, int64_t max_steps, const std::string& what = "--steps");

class ShortcutSampler : public Sampler {
  public:
    // MAX_STEPS = M, the finest grid (a power of two); the net has levels 0..log2 M.
    // HAS_NULL_LABEL: the flow level was trained with label dropout, so guidance is allowed
    // there; the levels below it never see the null label (guidance, if any, is built in).
    ShortcutSampler(std::shared_ptr<VelocityNet> net, int64_t max_steps, std::vector<int64_t> sample_shape,
                    std::vector<std::string> class_names, int64_t num_classes, bool has_null_label,
                    std::string default_sampler, int64_t default_steps);
    at::Tensor sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) override;
    std::vector<int64_t> sample_shape() const override { return sample_shape_; }
    int64_t num_classes() const override { return num_classes_; }
    std::vector<std::string> class_names() const override { return class_names_; }
    int64_t nfe(const SampleOptions& options) const override;
    std::string describe(const SampleOptions& options) const override;

  private:
    std::string sampler_name(const SampleOptions& options) const;
    int64_t steps(const SampleOptions& options) const;
    // Checks the options and returns the level the network is evaluated at.
    int64_t level_for(const SampleOptions& options) const;

    std::shared_ptr<VelocityNet> net_;
    int64_t max_steps_;
    std::vector<int64_t> sample_shape_;
    std::vector<std::string> class_names_;
    int64_t num_classes_;
    bool has_null_label_;
    std::string default_sampler_;
    int64_t default_steps_;
};

}  // namespace onestep
