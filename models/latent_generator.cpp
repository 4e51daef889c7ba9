// The DCGAN generator and the toy MLP generator.
#include "models/latent_generator.hpp"

#include <torch/torch.h>

#include "core/error.hpp"
#include "core/text.hpp"

namespace onestep {

OptionTable latent_generator_options(const std::string& default_arch, int64_t default_latent) {
    OptionTable table;
    table.add_choice("generator.arch", default_arch, {"dcgan", "mlp"}, "the latent generator's backbone")
        .add_int("generator.latent_dim", default_latent, 1, 65536, "d: the latent z ~ N(0, I_d)")
        .add_int("generator.channels", 64, 1, 4096,
                 "DCGAN: ngf, the channels at the last upsampling (x2 per level towards the 4x4 start)")
        .add_int("generator.mlp.hidden", 256, 1, 65536, "MLP: width of each hidden layer")
        .add_int("generator.mlp.depth", 3, 1, 64, "MLP: hidden layers");
    return table;
}

namespace {

// z -> ConvT(4x4, stride 1) to 4x4, then ConvT(4x4, stride 2, pad 1) doubling the side down to
// ngf channels, each with BatchNorm + ReLU, then ConvT to the image channels and tanh. A 32x32
// image: 100 -> 256x4x4 -> 128x8x8 -> 64x16x16 -> 1x32x32 (ngf 64, about 1.07M parameters).
class DcganGenerator : public LatentGenerator {
  public:
    DcganGenerator(int64_t latent, int64_t ngf, std::vector<int64_t> shape)
        : latent_(latent), ngf_(ngf), shape_(std::move(shape)) {
        int64_t side = shape_[1], doublings = 0;
        while ((4 << doublings) < side) ++doublings;   // side = 4 * 2^doublings
        int64_t channels = ngf * (int64_t{1} << (doublings - 1));
        body_ = register_module("body", torch::nn::Sequential());
        auto block = [this](int64_t in, int64_t out, int64_t stride, int64_t padding) {
            body_->push_back(torch::nn::ConvTranspose2d(
                torch::nn::ConvTranspose2dOptions(in, out, 4).stride(stride).padding(padding).bias(false)));
            body_->push_back(torch::nn::BatchNorm2d(out));
            body_->push_back(torch::nn::ReLU());
        };
        block(latent, channels, 1, 0);
        for (int64_t level = 1; level < doublings; ++level, channels /= 2) block(channels, channels / 2, 2, 1);
        body_->push_back(torch::nn::ConvTranspose2d(
            torch::nn::ConvTranspose2dOptions(channels, shape_[0], 4).stride(2).padding(1).bias(false)));
        body_->push_back(torch::nn::Tanh());
        // DCGAN's initialisation: conv weights N(0, 0.02), BatchNorm scales N(1, 0.02).
        torch::NoGradGuard no_grad;
        for (auto& item : named_parameters(true)) {
            if (item.key().find("weight") == std::string::npos) continue;
            if (item.value().dim() == 4) item.value().normal_(0.0, 0.02);
            else item.value().normal_(1.0, 0.02);
        }
    }

    at::Tensor forward(const at::Tensor& z) override { return body_->forward(z.view({z.size(0), latent_, 1, 1})); }
    int64_t latent_dim() const override { return latent_; }
    std::shared_ptr<LatentGenerator> make_sibling() const override {
        return std::make_shared<DcganGenerator>(latent_, ngf_, shape_);
    }

  private:
    int64_t latent_, ngf_;
    std::vector<int64_t> shape_;
    torch::nn::Sequential body_{nullptr};
};

// z -> depth x (Linear, SiLU) -> Linear: the toy generator.
class MlpGenerator : public LatentGenerator {
  public:
    MlpGenerator(int64_t latent, int64_t hidden, int64_t depth, int64_t dim)
        : latent_(latent), hidden_(hidden), depth_(depth), dim_(dim) {
        body_ = register_module("body", torch::nn::Sequential());
        int64_t width = latent;
        for (int64_t i = 0; i < depth; ++i, width = hidden) {
            body_->push_back(torch::nn::Linear(width, hidden));
            body_->push_back(torch::nn::SiLU());
        }
        body_->push_back(torch::nn::Linear(width, dim));
    }

    at::Tensor forward(const at::Tensor& z) override { return body_->forward(z); }
    int64_t latent_dim() const override { return latent_; }
    std::shared_ptr<LatentGenerator> make_sibling() const override {
        return std::make_shared<MlpGenerator>(latent_, hidden_, depth_, dim_);
    }

  private:
    int64_t latent_, hidden_, depth_, dim_;
    torch::nn::Sequential body_{nullptr};
};

}  // namespace

std::shared_ptr<LatentGenerator> make_latent_generator(const Config& config, const std::vector<int64_t>& sample_shape) {
    const std::string arch = config.get_string("generator.arch");
    const int64_t latent = config.get_int("generator.latent_dim");
    const bool image = sample_shape.size() == 3;
    if (arch == "mlp") {
        if (sample_shape.size() != 1)
            throw UserError("generator.arch = mlp is for flat (2-D toy) data, not samples shaped " + shape_text(sample_shape) +
                            "; images need generator.arch = dcgan");
        return std::make_shared<MlpGenerator>(latent, config.get_int("generator.mlp.hidden"),
                                              config.get_int("generator.mlp.depth"), sample_shape[0]);
    }
    if (!image) throw UserError("generator.arch = dcgan needs image data; use generator.arch = mlp for toy data");
    const int64_t side = sample_shape[1];
    const bool power_of_two = side >= 8 && side == sample_shape[2] && (side & (side - 1)) == 0;
    if (!power_of_two)
        throw UserError("generator.arch = dcgan draws square images of side 4 x 2^k (8, 16, 32, 64, ...), not " +
                        shape_text(sample_shape) + "; set data.image_size");
    const int64_t ngf = config.get_int("generator.channels");
    return std::make_shared<DcganGenerator>(latent, ngf, sample_shape);
}

}  // namespace onestep
