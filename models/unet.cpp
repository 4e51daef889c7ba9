// DDPM++/ADM-style U-Net: residual blocks modulated by the time/label/level embedding, self-attention
// at chosen resolutions, strided-conv downsampling, nearest+conv upsampling and skip concatenations.
#include "models/unet.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace onestep {
namespace {

// Embedding width = 4 x base channels, as in DDPM++ and ADM.
constexpr int64_t kEmbeddingPerChannel = 4;

// What every block needs besides its channel counts.
struct BlockSettings {
    int64_t embedding_dim = 0;
    int64_t groups = 1;
    int64_t heads = 1;
    double dropout = 0.0;
};

torch::nn::Conv2d conv3x3(int64_t in_channels, int64_t out_channels, int64_t stride = 1) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, 3).stride(stride).padding(1));
}

torch::nn::Conv2d conv1x1(int64_t in_channels, int64_t out_channels) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, 1));
}

void zero_parameters(torch::nn::Module& module) {
    torch::NoGradGuard no_grad;
    for (auto& parameter : module.parameters()) parameter.zero_();
}

// Every normalised channel count (level widths and their skip concatenations) must split into
// the configured groups; say which count does not.
torch::nn::GroupNorm group_norm(int64_t groups, int64_t channels) {
    if (channels % groups != 0) {
        throw UserError("model.unet.groups=" + std::to_string(groups) + " does not divide " +
                        std::to_string(channels) +
                        ", the channel count of a U-Net normalisation layer (base channels x channel_mult, "
                        "and their skip concatenations)");
    }
    return torch::nn::GroupNorm(groups, channels);
}

// GroupNorm -> SiLU -> conv3x3 -> GroupNorm -> h (1 + scale) + shift -> SiLU -> dropout -> conv3x3,
// added to the input (projected by a 1x1 conv when the channel count changes).
class ResBlockImpl : public torch::nn::Module {
  public:
    ResBlockImpl(int64_t in_channels, int64_t out_channels, const BlockSettings& settings) {
        norm_in_ = register_module("norm_in", group_norm(settings.groups, in_channels));
        conv_in_ = register_module("conv_in", conv3x3(in_channels, out_channels));
        modulation_ = register_module("modulation", torch::nn::Linear(settings.embedding_dim, 2 * out_channels));
        norm_out_ = register_module("norm_out", group_norm(settings.groups, out_channels));
        dropout_ = register_module("dropout", torch::nn::Dropout(settings.dropout));
        conv_out_ = register_module("conv_out", conv3x3(out_channels, out_channels));
        if (in_channels != out_channels) skip_ = register_module("skip", conv1x1(in_channels, out_channels));
        // Each block starts as (a projection of) the identity, which keeps deep stacks stable.
        zero_parameters(*conv_out_);
    }

    // EMBEDDING has already been through SiLU.
    at::Tensor forward(const at::Tensor& x, const at::Tensor& embedding) {
        at::Tensor h = conv_in_->forward(torch::silu(norm_in_->forward(x)));
        std::vector<at::Tensor> scale_shift = modulation_->forward(embedding).unsqueeze(-1).unsqueeze(-1).chunk(2, 1);
        h = norm_out_->forward(h) * (1 + scale_shift[0]) + scale_shift[1];
        h = conv_out_->forward(dropout_->forward(torch::silu(h)));
        return (skip_.is_empty() ? x : skip_->forward(x)) + h;
    }

  private:
    torch::nn::GroupNorm norm_in_{nullptr};
    torch::nn::Conv2d conv_in_{nullptr};
    torch::nn::Linear modulation_{nullptr};
    torch::nn::GroupNorm norm_out_{nullptr};
    torch::nn::Dropout dropout_{nullptr};
    torch::nn::Conv2d conv_out_{nullptr};
    torch::nn::Conv2d skip_{nullptr};
};
TORCH_MODULE(ResBlock);

// Multi-head self-attention over the H x W positions, added to the input:
// x + W_out softmax(q k^T / sqrt(d)) v with q, k, v = 1x1 conv of GroupNorm(x).
class AttentionBlockImpl : public torch::nn::Module {
  public:
    AttentionBlockImpl(int64_t channels, const BlockSettings& settings) : heads_(settings.heads) {
        if (channels % heads_ != 0) {
            throw UserError("model.unet.heads=" + std::to_string(heads_) + " does not divide " +
                            std::to_string(channels) + ", the channel count of a U-Net attention layer");
        }
        norm_ = register_module("norm", group_norm(settings.groups, channels));
        qkv_ = register_module("qkv", conv1x1(channels, 3 * channels));
        output_ = register_module("output", conv1x1(channels, channels));
        // Starts as the identity, like the residual blocks.
        zero_parameters(*output_);
    }

    at::Tensor forward(const at::Tensor& x) {
        int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
        int64_t head_dim = channels / heads_;
        // [N, 3C, H, W] -> q, k, v, each [N, heads, HW, head_dim]
        std::vector<at::Tensor> qkv = qkv_->forward(norm_->forward(x))
                                          .reshape({batch, 3, heads_, head_dim, height * width})
                                          .transpose(-1, -2)
                                          .unbind(1);
        at::Tensor weights =
            torch::softmax(torch::matmul(qkv[0], qkv[1].transpose(-1, -2)) / std::sqrt(double(head_dim)), -1);
        at::Tensor mixed = torch::matmul(weights, qkv[2]).transpose(-1, -2).reshape({batch, channels, height, width});
        return x + output_->forward(mixed);
    }

  private:
    int64_t heads_;
    torch::nn::GroupNorm norm_{nullptr};
    torch::nn::Conv2d qkv_{nullptr};
    torch::nn::Conv2d output_{nullptr};
};
TORCH_MODULE(AttentionBlock);

// One encoder resolution: residual blocks (each followed by attention where asked), then a
// strided 3x3 conv unless it is the lowest resolution. Every output is kept for the decoder.
class DownLevelImpl : public torch::nn::Module {
  public:
    DownLevelImpl(int64_t in_channels, int64_t out_channels, int64_t res_blocks, bool attention, bool downsample,
                  const BlockSettings& settings) {
        blocks_ = register_module("blocks", torch::nn::ModuleList());
        attentions_ = register_module("attentions", torch::nn::ModuleList());
        for (int64_t i = 0; i < res_blocks; ++i) {
            blocks_->push_back(ResBlock(i == 0 ? in_channels : out_channels, out_channels, settings));
            if (attention) attentions_->push_back(AttentionBlock(out_channels, settings));
        }
        if (downsample) downsample_ = register_module("downsample", conv3x3(out_channels, out_channels, 2));
    }

    at::Tensor forward(at::Tensor h, const at::Tensor& embedding, std::vector<at::Tensor>& skips) {
        for (size_t i = 0; i < blocks_->size(); ++i) {
            h = blocks_->at<ResBlockImpl>(i).forward(h, embedding);
            if (!attentions_->is_empty()) h = attentions_->at<AttentionBlockImpl>(i).forward(h);
            skips.push_back(h);
        }
        if (!downsample_.is_empty()) {
            h = downsample_->forward(h);
            skips.push_back(h);
        }
        return h;
    }

  private:
    torch::nn::ModuleList blocks_{nullptr};
    torch::nn::ModuleList attentions_{nullptr};
    torch::nn::Conv2d downsample_{nullptr};
};
TORCH_MODULE(DownLevel);

// One decoder resolution: one residual block per encoder output of this resolution (res_blocks + 1,
// as in DDPM++/ADM), each fed the concatenation [h, skip]; then nearest x2 + conv3x3 unless it is
// the highest resolution. SKIP_CHANNELS lists the skips' widths in the order they are consumed.
class UpLevelImpl : public torch::nn::Module {
  public:
    UpLevelImpl(int64_t in_channels, const std::vector<int64_t>& skip_channels, int64_t out_channels, bool attention,
                bool upsample, const BlockSettings& settings) {
        blocks_ = register_module("blocks", torch::nn::ModuleList());
        attentions_ = register_module("attentions", torch::nn::ModuleList());
        int64_t channels = in_channels;
        for (int64_t skip : skip_channels) {
            blocks_->push_back(ResBlock(channels + skip, out_channels, settings));
            if (attention) attentions_->push_back(AttentionBlock(out_channels, settings));
            channels = out_channels;
        }
        if (upsample) upsample_ = register_module("upsample", conv3x3(out_channels, out_channels));
    }

    at::Tensor forward(at::Tensor h, const at::Tensor& embedding, std::vector<at::Tensor>& skips) {
        for (size_t i = 0; i < blocks_->size(); ++i) {
            h = blocks_->at<ResBlockImpl>(i).forward(torch::cat({h, skips.back()}, 1), embedding);
            skips.pop_back();
            if (!attentions_->is_empty()) h = attentions_->at<AttentionBlockImpl>(i).forward(h);
        }
        if (!upsample_.is_empty()) {
            namespace F = torch::nn::functional;
            std::vector<double> factor{2.0, 2.0};
            h = F::interpolate(h, F::InterpolateFuncOptions().scale_factor(factor).mode(torch::kNearest));
            h = upsample_->forward(h);
        }
        return h;
    }

  private:
    torch::nn::ModuleList blocks_{nullptr};
    torch::nn::ModuleList attentions_{nullptr};
    torch::nn::Conv2d upsample_{nullptr};
};
TORCH_MODULE(UpLevel);

std::string join(const std::vector<int64_t>& values) {
    std::string text;
    for (size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + std::to_string(values[i]);
    return text;
}

class UNet : public VelocityNet {
  public:
    UNet(const Config& config, const NetworkShape& shape) : config_(config), shape_(shape) {
        if (shape.sample_shape.size() != 3) {
            throw UserError("model.arch=unet needs images [C, H, W]; the data has samples of " +
                            std::to_string(shape.sample_shape.size()) + " dimension(s)");
        }
        int64_t image_channels = shape.sample_shape[0];
        int64_t height = shape.sample_shape[1];
        int64_t width = shape.sample_shape[2];
        int64_t base = config.get_int("model.unet.channels");
        std::vector<int64_t> channel_mult = config.get_int_list("model.unet.channel_mult");
        int64_t res_blocks = config.get_int("model.unet.res_blocks");
        std::vector<int64_t> attention_resolutions = config.get_int_list("model.unet.attention_resolutions");
        BlockSettings settings;
        settings.embedding_dim = kEmbeddingPerChannel * base;
        settings.groups = config.get_int("model.unet.groups");
        settings.heads = config.get_int("model.unet.heads");
        settings.dropout = config.get_float("model.unet.dropout");

        size_t level_count = channel_mult.size();
        if (level_count == 0) throw UserError("model.unet.channel_mult must list at least one level");
        int64_t reduction = int64_t(1) << (level_count - 1);
        if (height % reduction != 0 || width % reduction != 0) {
            throw UserError("model.unet.channel_mult=[" + join(channel_mult) + "] has " +
                            std::to_string(level_count) + " levels, so the image sides must be divisible by " +
                            std::to_string(reduction) + "; the images are " + std::to_string(height) + "x" +
                            std::to_string(width));
        }
        // A level's resolution is its height; attention goes where it is listed.
        std::vector<int64_t> level_resolutions;
        for (size_t level = 0; level < level_count; ++level) level_resolutions.push_back(height >> level);
        for (int64_t resolution : attention_resolutions) {
            if (std::find(level_resolutions.begin(), level_resolutions.end(), resolution) == level_resolutions.end()) {
                throw UserError("model.unet.attention_resolutions lists " + std::to_string(resolution) +
                                ", but the levels of this U-Net have resolutions " + join(level_resolutions));
            }
        }
        auto has_attention = [&](size_t level) {
            return std::count(attention_resolutions.begin(), attention_resolutions.end(), level_resolutions[level]) > 0;
        };

        int64_t embedding_dim = settings.embedding_dim;
        embedding_ = register_module("embedding", ConditionEmbedding(embedding_dim, shape.num_classes, shape.level_count));

        input_conv_ = register_module("input_conv", conv3x3(image_channels, base));
        // Widths of the encoder outputs, in the order they are produced; the decoder consumes them in reverse.
        std::vector<int64_t> skip_channels{base};
        down_ = register_module("down", torch::nn::ModuleList());
        int64_t channels = base;
        for (size_t level = 0; level < level_count; ++level) {
            int64_t out_channels = base * channel_mult[level];
            bool downsample = level + 1 < level_count;
            down_->push_back(DownLevel(channels, out_channels, res_blocks, has_attention(level), downsample, settings));
            for (int64_t i = 0; i < res_blocks; ++i) skip_channels.push_back(out_channels);
            if (downsample) skip_channels.push_back(out_channels);
            channels = out_channels;
        }

        middle_in_ = register_module("middle_in", ResBlock(channels, channels, settings));
        middle_attention_ = register_module("middle_attention", AttentionBlock(channels, settings));
        middle_out_ = register_module("middle_out", ResBlock(channels, channels, settings));

        up_ = register_module("up", torch::nn::ModuleList());
        for (size_t level = level_count; level-- > 0;) {
            int64_t out_channels = base * channel_mult[level];
            std::vector<int64_t> level_skips;
            for (int64_t i = 0; i <= res_blocks; ++i) {
                level_skips.push_back(skip_channels.back());
                skip_channels.pop_back();
            }
            up_->push_back(UpLevel(channels, level_skips, out_channels, has_attention(level), level > 0, settings));
            channels = out_channels;
        }
        TORCH_CHECK(skip_channels.empty(), "U-Net decoder left encoder outputs unused");

        output_norm_ = register_module("output_norm", group_norm(settings.groups, channels));
        output_conv_ = register_module("output_conv", conv3x3(channels, image_channels));
        // v = 0 at init (spec §1.7).
        zero_parameters(*output_conv_);
    }

    at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& labels,
                       const at::Tensor& levels) override {
        TORCH_CHECK(x.dim() == 4, "U-Net expects images [N, C, H, W], got ", x.sizes());
        at::Tensor embedding = embedding_->forward(t, labels, levels);
        // Every block's modulation is Linear(SiLU(e)); applying SiLU once here is the same.
        embedding = torch::silu(embedding);

        std::vector<at::Tensor> skips;
        at::Tensor h = input_conv_->forward(x);
        skips.push_back(h);
        for (size_t i = 0; i < down_->size(); ++i) h = down_->at<DownLevelImpl>(i).forward(h, embedding, skips);
        h = middle_in_->forward(h, embedding);
        h = middle_attention_->forward(h);
        h = middle_out_->forward(h, embedding);
        for (size_t i = 0; i < up_->size(); ++i) h = up_->at<UpLevelImpl>(i).forward(h, embedding, skips);
        return output_conv_->forward(torch::silu(output_norm_->forward(h)));
    }

    std::shared_ptr<VelocityNet> make_sibling() const override { return std::make_shared<UNet>(config_, shape_); }

  private:
    Config config_;
    NetworkShape shape_;
    ConditionEmbedding embedding_{nullptr};
    torch::nn::Conv2d input_conv_{nullptr};
    torch::nn::ModuleList down_{nullptr};
    ResBlock middle_in_{nullptr};
    AttentionBlock middle_attention_{nullptr};
    ResBlock middle_out_{nullptr};
    torch::nn::ModuleList up_{nullptr};
    torch::nn::GroupNorm output_norm_{nullptr};
    torch::nn::Conv2d output_conv_{nullptr};
};

}  // namespace

std::shared_ptr<VelocityNet> make_unet(const Config& config, const NetworkShape& shape) {
    return std::make_shared<UNet>(config, shape);
}

}  // namespace onestep
