// Velocity networks v_theta(x_t, t, y[, level]) and their options. Every backbone (MLP, U-Net,
// DiT) implements VelocityNet; methods build theirs with make_network from the "model.*" keys.
//
//   auto net = make_network(config, data_shape);            // config holds model.arch etc.
//   at::Tensor v = net->forward(x_t, t, y);                  // t float [N] in [0,1], y int64 [N]
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <memory>
#include <string>

#include "core/method.hpp"
#include "core/options.hpp"

namespace onestep {

class VelocityNet : public torch::nn::Module {
  public:
    // x: [N, sample_shape...]; t: float [N]; labels: int64 [N] in 0..C where C is the null
    // label (ignored when the net is unconditional); levels: int64 [N] for nets built with
    // level_count > 0 (shortcut step size log2), else undefined. Returns a tensor shaped like x.
    virtual at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& labels,
                               const at::Tensor& levels = at::Tensor()) = 0;
    // A new network of the same architecture and configuration, with fresh weights (for EMA
    // copies, critics and students; copy weights with copy_weights).
    virtual std::shared_ptr<VelocityNet> make_sibling() const = 0;
};

// What every backbone needs to know besides its own options.
struct NetworkShape {
    std::vector<int64_t> sample_shape;   // {C, H, W} or {D}
    int64_t num_classes = 0;             // 0: unconditional; else C classes plus the null label
    int64_t level_count = 0;             // > 0: an extra embedding of levels 0..level_count-1
};

// The "model.*" options shared by every method that builds a velocity network.
OptionTable network_options(const std::string& default_arch = "unet");

// Builds the backbone named by model.arch ("mlp", "unet", "dit"). Bad combinations (an image
// net on 2-D data, a patch size that does not divide the image) are UserErrors naming the key.
std::shared_ptr<VelocityNet> make_network(const Config& config, const NetworkShape& shape);

int64_t count_parameters(const torch::nn::Module& module);

// The conditioning vector every backbone shares (spec §1.7):
// e = MLP_t(sinusoid(1000 t)) + E_y[y] (C + 1 rows, row C the null label) + E_l[level].
class ConditionEmbeddingImpl : public torch::nn::Module {
  public:
    ConditionEmbeddingImpl(int64_t dim, int64_t num_classes, int64_t level_count);
    // labels may be undefined for an unconditional embedding; levels only when level_count > 0.
    at::Tensor forward(const at::Tensor& t, const at::Tensor& labels, const at::Tensor& levels);

    torch::nn::Sequential time_mlp{nullptr};
    torch::nn::Embedding label_embedding{nullptr};   // empty when unconditional
    torch::nn::Embedding level_embedding{nullptr};   // empty without levels
};
TORCH_MODULE(ConditionEmbedding);

constexpr int64_t kTimeFeatures = 128;   // sinusoidal features fed to the time MLP

// Sinusoidal features of SCALE * t (128 features, max period 1e4 by default): [N] -> [N, dim].
at::Tensor timestep_features(const at::Tensor& t, int64_t dim, double scale = 1000.0, double max_period = 10000.0);

}  // namespace onestep
