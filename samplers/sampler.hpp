// The Sampler interface: every trained method hands one out, and `sample`, `eval` and the
// trainer's preview grids talk only to it. Image samplers map noise and class labels to images,
// toy samplers map noise to points.
//
//   auto sampler = method->make_sampler();
//   SampleOptions options;  options.steps = 4;
//   at::Tensor x = sampler->sample(noise, labels, options);   // noise shaped [N, noise_shape()...]
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

namespace onestep {

struct SampleOptions {
    int64_t steps = 0;          // 0: the method's default
    std::string sampler;        // "": the method's default (e.g. "euler", "heun", "ddim", "shortcut")
    std::string grid = "uniform";
    double guidance = 1.0;      // w of v_u + w (v_c - v_u); 1 = plain conditional
    double eta = 0.0;           // DDIM stochasticity
    uint64_t seed = 0;          // for stochastic samplers
};

class Sampler {
  public:
    virtual ~Sampler() = default;
    // noise: [N, noise_shape...]; labels: int64 [N] (ignored when num_classes() == 0).
    virtual at::Tensor sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) = 0;
    // Shape of one sample without the batch dimension, e.g. {1, 32, 32} or {2}.
    virtual std::vector<int64_t> sample_shape() const = 0;
    // Shape of one sample's noise: the sample's own shape for the ODE and one-step maps, the
    // latent {d} for a latent generator.
    virtual std::vector<int64_t> noise_shape() const { return sample_shape(); }
    virtual int64_t num_classes() const = 0;   // 0 when unconditional
    virtual std::vector<std::string> class_names() const { return {}; }
    // Network evaluations per sample under OPTIONS.
    virtual int64_t nfe(const SampleOptions& options) const = 0;
    // One line for logs: "euler, 100 steps, w=1".
    virtual std::string describe(const SampleOptions& options) const = 0;
};

}  // namespace onestep

namespace onestep {

// Draws N samples in batches: noise from a generator seeded by SEED (so the same seed gives the
// same samples whatever the batch size), labels given ([N] int64). Returns CPU samples.
at::Tensor draw_samples(Sampler& sampler, const at::Tensor& labels, const SampleOptions& options, uint64_t seed,
                        int64_t batch, const c10::Device& device);

// The seed of a sampler's own fresh noise (DDIM's xi, consistency re-noising) under SEED: another
// stream than the starting noise draw_samples takes from the same seed, which would otherwise
// come back as the "fresh" noise of the first batch.
uint64_t fresh_noise_seed(uint64_t seed);

// Labels for N samples: CLASS_ID for all when >= 0, else classes in turn (i mod C), zeros when unconditional.
at::Tensor default_labels(int64_t n, int64_t num_classes, int64_t class_id = -1);

}  // namespace onestep
