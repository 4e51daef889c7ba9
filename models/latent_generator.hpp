// Generators from a latent code z ~ N(0, I_d) straight to a sample, with no time input: the DCGAN
// image generator (preset dcgan32 of spec/image-methods.md §2.4) and an MLP for 2-D data,
// configured by the "generator.*" keys. Score Mismatching trains one from scratch.
//
//   auto generator = make_latent_generator(config, {1, 32, 32});   // generator.arch = dcgan
//   at::Tensor x = generator->forward(torch::randn({64, generator->latent_dim()}));   // [64, 1, 32, 32]
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/options.hpp"

namespace onestep {

class LatentGenerator : public torch::nn::Module {
  public:
    // z: [N, latent_dim()] -> [N, sample_shape...]
    virtual at::Tensor forward(const at::Tensor& z) = 0;
    virtual int64_t latent_dim() const = 0;
    // The same architecture with fresh weights (EMA copies; copy weights with copy_weights).
    virtual std::shared_ptr<LatentGenerator> make_sibling() const = 0;
};

// The "generator.*" options.
OptionTable latent_generator_options(const std::string& default_arch = "dcgan", int64_t default_latent = 100);

// UserError naming the key when generator.arch does not fit SAMPLE_SHAPE (dcgan on points, mlp on
// images, an image side that is not 4 x 2^k).
std::shared_ptr<LatentGenerator> make_latent_generator(const Config& config, const std::vector<int64_t>& sample_shape);

}  // namespace onestep
