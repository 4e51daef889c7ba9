// Network options, the backbone factory, the toy MLP and the sinusoidal time features.
#include "models/network.hpp"

#include <torch/torch.h>

#include <cmath>

#include "core/error.hpp"
#include "models/dit.hpp"
#include "models/unet.hpp"

namespace onestep {

at::Tensor timestep_features(const at::Tensor& t, int64_t dim, double scale, double max_period) {
    int64_t half = dim / 2;
    at::Tensor frequencies =
        torch::exp(-std::log(max_period) * torch::arange(half, t.options().dtype(torch::kFloat)) / half);
    at::Tensor angles = (scale * t.to(torch::kFloat)).unsqueeze(1) * frequencies.unsqueeze(0);
    at::Tensor features = torch::cat({torch::cos(angles), torch::sin(angles)}, 1);
    if (dim % 2 == 1) features = torch::cat({features, torch::zeros_like(features.slice(1, 0, 1))}, 1);
    return features;
}

int64_t count_parameters(const torch::nn::Module& module) {
    int64_t total = 0;
    for (const auto& parameter : module.parameters()) total += parameter.numel();
    return total;
}

ConditionEmbeddingImpl::ConditionEmbeddingImpl(int64_t dim, int64_t num_classes, int64_t level_count) {
    time_mlp = register_module("time_mlp", torch::nn::Sequential(torch::nn::Linear(kTimeFeatures, dim), torch::nn::SiLU(),
                                                                 torch::nn::Linear(dim, dim)));
    if (num_classes > 0)
        label_embedding = register_module("label_embedding", torch::nn::Embedding(num_classes + 1, dim));
    if (level_count > 0) level_embedding = register_module("level_embedding", torch::nn::Embedding(level_count, dim));
}

at::Tensor ConditionEmbeddingImpl::forward(const at::Tensor& t, const at::Tensor& labels, const at::Tensor& levels) {
    at::Tensor embedding = time_mlp->forward(timestep_features(t, kTimeFeatures));
    if (!label_embedding.is_empty()) {
        TORCH_CHECK(labels.defined(), "this network is class-conditional: labels are required");
        embedding = embedding + label_embedding->forward(labels);
    }
    if (!level_embedding.is_empty()) {
        TORCH_CHECK(levels.defined(), "this network needs step levels");
        embedding = embedding + level_embedding->forward(levels);
    }
    return embedding;
}

OptionTable network_options(const std::string& default_arch) {
    OptionTable table;
    table.add_choice("model.arch", default_arch, {"mlp", "unet", "dit"}, "backbone of the velocity network")
        .add_int("model.mlp.hidden", 256, 1, 65536, "MLP: width of each hidden layer")
        .add_int("model.mlp.depth", 3, 1, 64, "MLP: hidden layers")
        .add_int("model.unet.channels", 32, 4, 4096, "U-Net: base channels")
        .add_int_list("model.unet.channel_mult", {1, 2, 2}, 1, 64, "U-Net: channel multiplier per level")
        .add_int("model.unet.res_blocks", 1, 1, 16, "U-Net: residual blocks per level")
        .add_int_list("model.unet.attention_resolutions", {8}, 1, 1024,
                      "U-Net: spatial sizes with self-attention (empty list: none)")
        .add_float("model.unet.dropout", 0.1, 0.0, 0.9, "U-Net: dropout in residual blocks")
        .add_int("model.unet.groups", 8, 1, 256, "U-Net: GroupNorm groups")
        .add_int("model.unet.heads", 1, 1, 64, "U-Net: attention heads")
        .add_int("model.dit.patch", 4, 1, 64, "DiT: patch side")
        .add_int("model.dit.dim", 128, 8, 8192, "DiT: token width")
        .add_int("model.dit.depth", 6, 1, 128, "DiT: transformer blocks")
        .add_int("model.dit.heads", 4, 1, 128, "DiT: attention heads")
        .add_float("model.dit.mlp_ratio", 4.0, 0.5, 16.0, "DiT: MLP width / token width");
    return table;
}

namespace {

// The toy backbone: [x || e] -> depth x (Linear, SiLU) -> Linear, with e the time (and label,
// level) embedding. The output layer starts at zero so v = 0 at init, as for the image nets.
class MlpNet : public VelocityNet {
  public:
    MlpNet(const Config& config, const NetworkShape& shape) : config_(config), shape_(shape) {
        TORCH_CHECK(shape.sample_shape.size() == 1, "MLP expects flat samples");
        int64_t dim = shape.sample_shape[0];
        int64_t hidden = config.get_int("model.mlp.hidden");
        int64_t embed = 128;
        embedding_ = register_module("embedding", ConditionEmbedding(embed, shape.num_classes, shape.level_count));
        body_ = register_module("body", torch::nn::Sequential());
        int64_t width = dim + embed;
        for (int64_t i = 0; i < config.get_int("model.mlp.depth"); ++i) {
            body_->push_back(torch::nn::Linear(width, hidden));
            body_->push_back(torch::nn::SiLU());
            width = hidden;
        }
        output_ = register_module("output", torch::nn::Linear(width, dim));
        torch::NoGradGuard no_grad;
        output_->weight.zero_();
        output_->bias.zero_();
    }

    at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& labels,
                       const at::Tensor& levels) override {
        at::Tensor embedding = embedding_->forward(t, labels, levels);
        return output_->forward(body_->forward(torch::cat({x, embedding}, 1)));
    }

    std::shared_ptr<VelocityNet> make_sibling() const override { return std::make_shared<MlpNet>(config_, shape_); }

  private:
    Config config_;
    NetworkShape shape_;
    ConditionEmbedding embedding_{nullptr};
    torch::nn::Sequential body_{nullptr};
    torch::nn::Linear output_{nullptr};
};

}  // namespace

std::shared_ptr<VelocityNet> make_network(const Config& config, const NetworkShape& shape) {
    std::string arch = config.get_string("model.arch");
    bool image = shape.sample_shape.size() == 3;
    if (arch == "mlp") {
        if (image) throw UserError("model.arch=mlp is for flat (2-D toy) data; images need unet or dit");
        return std::make_shared<MlpNet>(config, shape);
    }
    if (!image) throw UserError("model.arch=" + arch + " needs image data; use model.arch=mlp for toy data");
    if (arch == "unet") return make_unet(config, shape);
    return make_dit(config, shape);
}

}  // namespace onestep
