// DiT (Peebles & Xie, 2023): patch embedding with fixed 2-D sin-cos positions, transformer blocks
// conditioned by adaLN-Zero, a modulated linear head and unpatchify back to [N, C, H, W].
#include "models/dit.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "models/gelu.hpp"

namespace onestep {
namespace {

constexpr double kNormEpsilon = 1e-6;
// DiT's initialisation of the time MLP and the label table.
constexpr double kEmbeddingInitStd = 0.02;

// Sin-cos features of POSITIONS [n] at dim/2 frequencies: [n, dim], sines then cosines.
at::Tensor sincos_1d(const at::Tensor& positions, int64_t dim) {
    at::Tensor omega = torch::arange(dim / 2, torch::kDouble) / (dim / 2.0);
    omega = 1.0 / torch::pow(10000.0, omega);
    at::Tensor angles = positions.to(torch::kDouble).unsqueeze(1) * omega.unsqueeze(0);
    return torch::cat({torch::sin(angles), torch::cos(angles)}, 1);
}

// Fixed positions of a ROWS x COLS token grid (row-major): [1, rows * cols, dim], the first half
// of the features encoding the column, the second the row (as MAE and DiT do).
at::Tensor sincos_2d(int64_t rows, int64_t cols, int64_t dim) {
    at::Tensor row = torch::arange(rows, torch::kDouble).repeat_interleave(cols);
    at::Tensor col = torch::arange(cols, torch::kDouble).repeat({rows});
    return torch::cat({sincos_1d(col, dim / 2), sincos_1d(row, dim / 2)}, 1).to(torch::kFloat).unsqueeze(0);
}

at::Tensor layer_norm(const at::Tensor& x) {
    namespace F = torch::nn::functional;
    return F::layer_norm(x, F::LayerNormFuncOptions({x.size(-1)}).eps(kNormEpsilon));
}

// x (1 + scale) + shift, with SHIFT and SCALE [N, dim] broadcast over the tokens; one fused
// pass over the activations (addcmul) instead of a multiply and an add.
at::Tensor modulate(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
    return torch::addcmul(shift.unsqueeze(1), x, 1 + scale.unsqueeze(1));
}

// x + gate y with GATE [N, dim] broadcast over the tokens, in one pass.
at::Tensor gated_residual(const at::Tensor& x, const at::Tensor& gate, const at::Tensor& y) {
    return torch::addcmul(x, gate.unsqueeze(1), y);
}

void zero_parameters(torch::nn::Module& module) {
    torch::NoGradGuard no_grad;
    for (auto& parameter : module.parameters()) parameter.zero_();
}

// x + gate_msa attention(modulate(LN(x))) then x + gate_mlp MLP(modulate(LN(x))), with the six
// shift/scale/gate vectors from Linear(SiLU(c)) initialised at zero so the block starts as the identity.
class DiTBlockImpl : public torch::nn::Module {
  public:
    DiTBlockImpl(int64_t dim, int64_t heads, int64_t mlp_hidden) : heads_(heads) {
        qkv_ = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
        projection_ = register_module("projection", torch::nn::Linear(dim, dim));
        mlp_in_ = register_module("mlp_in", torch::nn::Linear(dim, mlp_hidden));
        mlp_out_ = register_module("mlp_out", torch::nn::Linear(mlp_hidden, dim));
        modulation_ = register_module("modulation", torch::nn::Linear(dim, 6 * dim));
    }

    // CONDITION has already been through SiLU.
    at::Tensor forward(at::Tensor x, const at::Tensor& condition) {
        // shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp
        std::vector<at::Tensor> mod = modulation_->forward(condition).chunk(6, 1);
        x = gated_residual(x, mod[2], attention(modulate(layer_norm(x), mod[0], mod[1])));
        at::Tensor hidden = gelu_tanh(mlp_in_->forward(modulate(layer_norm(x), mod[3], mod[4])));
        return gated_residual(x, mod[5], mlp_out_->forward(hidden));
    }

    torch::nn::Linear& modulation() { return modulation_; }

  private:
    // softmax(q k^T / sqrt(d)) v per head, over the tokens.
    at::Tensor attention(const at::Tensor& x) {
        int64_t batch = x.size(0), tokens = x.size(1), dim = x.size(2);
        int64_t head_dim = dim / heads_;
        // [N, T, 3 dim] -> q, k, v, each [N, heads, T, head_dim]
        std::vector<at::Tensor> qkv =
            qkv_->forward(x).reshape({batch, tokens, 3, heads_, head_dim}).permute({2, 0, 3, 1, 4}).unbind(0);
        // The 1/sqrt(d) goes on q ([T, head_dim] per head), a smaller tensor than the scores ([T, T]).
        at::Tensor weights =
            torch::softmax(torch::matmul(qkv[0] * (1.0 / std::sqrt(double(head_dim))), qkv[1].transpose(-1, -2)), -1);
        at::Tensor mixed = torch::matmul(weights, qkv[2]).transpose(1, 2).reshape({batch, tokens, dim});
        return projection_->forward(mixed);
    }

    int64_t heads_;
    torch::nn::Linear qkv_{nullptr};
    torch::nn::Linear projection_{nullptr};
    torch::nn::Linear mlp_in_{nullptr};
    torch::nn::Linear mlp_out_{nullptr};
    torch::nn::Linear modulation_{nullptr};
};
TORCH_MODULE(DiTBlock);

class DiT : public VelocityNet {
  public:
    DiT(const Config& config, const NetworkShape& shape) : config_(config), shape_(shape) {
        if (shape.sample_shape.size() != 3) {
            throw UserError("model.arch=dit needs images [C, H, W]; the data has samples of " +
                            std::to_string(shape.sample_shape.size()) + " dimension(s)");
        }
        channels_ = shape.sample_shape[0];
        int64_t height = shape.sample_shape[1];
        int64_t width = shape.sample_shape[2];
        patch_ = config.get_int("model.dit.patch");
        int64_t dim = config.get_int("model.dit.dim");
        int64_t depth = config.get_int("model.dit.depth");
        int64_t heads = config.get_int("model.dit.heads");
        double mlp_ratio = config.get_float("model.dit.mlp_ratio");
        if (height % patch_ != 0 || width % patch_ != 0) {
            throw UserError("model.dit.patch=" + std::to_string(patch_) + " does not divide the image sides " +
                            std::to_string(height) + "x" + std::to_string(width));
        }
        if (dim % heads != 0) {
            throw UserError("model.dit.dim=" + std::to_string(dim) + " is not divisible by model.dit.heads=" +
                            std::to_string(heads));
        }
        if (dim % 4 != 0) {
            throw UserError("model.dit.dim=" + std::to_string(dim) +
                            " must be a multiple of 4 (the 2-D sin-cos positions split it in four)");
        }
        rows_ = height / patch_;
        cols_ = width / patch_;
        int64_t mlp_hidden = std::max<int64_t>(1, std::llround(dim * mlp_ratio));

        patch_embedding_ = register_module(
            "patch_embedding", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels_, dim, patch_).stride(patch_)));
        positions_ = register_buffer("positions", sincos_2d(rows_, cols_, dim));
        embedding_ = register_module("embedding", ConditionEmbedding(dim, shape.num_classes, shape.level_count));
        blocks_ = register_module("blocks", torch::nn::ModuleList());
        for (int64_t i = 0; i < depth; ++i) blocks_->push_back(DiTBlock(dim, heads, mlp_hidden));
        final_modulation_ = register_module("final_modulation", torch::nn::Linear(dim, 2 * dim));
        final_linear_ = register_module("final_linear", torch::nn::Linear(dim, patch_ * patch_ * channels_));
        initialize();
    }

    at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& labels,
                       const at::Tensor& levels) override {
        TORCH_CHECK(x.dim() == 4, "DiT expects images [N, C, H, W], got ", x.sizes());
        int64_t batch = x.size(0);
        // c = MLP_t(features(t)) + E_y[y] (+ E_l[level])
        at::Tensor condition = embedding_->forward(t, labels, levels);
        // Every adaLN modulation is Linear(SiLU(c)); applying SiLU once here is the same.
        condition = torch::silu(condition);

        // [N, C, H, W] -> [N, dim, rows, cols] -> tokens [N, rows * cols, dim]
        at::Tensor h = patch_embedding_->forward(x).flatten(2).transpose(1, 2) + positions_;
        for (size_t i = 0; i < blocks_->size(); ++i) h = blocks_->at<DiTBlockImpl>(i).forward(h, condition);
        std::vector<at::Tensor> shift_scale = final_modulation_->forward(condition).chunk(2, 1);
        h = final_linear_->forward(modulate(layer_norm(h), shift_scale[0], shift_scale[1]));
        // Unpatchify: [N, rows * cols, p * p * C] -> [N, C, rows * p, cols * p]
        return h.reshape({batch, rows_, cols_, patch_, patch_, channels_})
            .permute({0, 5, 1, 3, 2, 4})
            .reshape({batch, channels_, rows_ * patch_, cols_ * patch_});
    }

    std::shared_ptr<VelocityNet> make_sibling() const override { return std::make_shared<DiT>(config_, shape_); }

  private:
    // DiT's initialisation: Xavier-uniform linears with zero bias, the patch embedding as a linear,
    // N(0, 0.02) embeddings; adaLN modulations and the output layer at zero (v = 0 at init).
    void initialize() {
        torch::NoGradGuard no_grad;
        for (auto& module : modules(false)) {
            if (auto* linear = module->as<torch::nn::LinearImpl>()) {
                torch::nn::init::xavier_uniform_(linear->weight);
                linear->bias.zero_();
            }
        }
        auto& patch_weight = patch_embedding_->weight;
        torch::nn::init::xavier_uniform_(patch_weight.view({patch_weight.size(0), -1}));
        patch_embedding_->bias.zero_();
        for (auto& parameter : embedding_->time_mlp->parameters()) {
            if (parameter.dim() == 2) torch::nn::init::normal_(parameter, 0.0, kEmbeddingInitStd);
        }
        if (!embedding_->label_embedding.is_empty())
            torch::nn::init::normal_(embedding_->label_embedding->weight, 0.0, kEmbeddingInitStd);
        if (!embedding_->level_embedding.is_empty())
            torch::nn::init::normal_(embedding_->level_embedding->weight, 0.0, kEmbeddingInitStd);
        for (size_t i = 0; i < blocks_->size(); ++i) zero_parameters(*blocks_->at<DiTBlockImpl>(i).modulation());
        zero_parameters(*final_modulation_);
        zero_parameters(*final_linear_);
    }

    Config config_;
    NetworkShape shape_;
    int64_t channels_ = 0;
    int64_t patch_ = 0;
    int64_t rows_ = 0;
    int64_t cols_ = 0;
    torch::nn::Conv2d patch_embedding_{nullptr};
    at::Tensor positions_;
    ConditionEmbedding embedding_{nullptr};
    torch::nn::ModuleList blocks_{nullptr};
    torch::nn::Linear final_modulation_{nullptr};
    torch::nn::Linear final_linear_{nullptr};
};

}  // namespace

std::shared_ptr<VelocityNet> make_dit(const Config& config, const NetworkShape& shape) {
    return std::make_shared<DiT>(config, shape);
}

}  // namespace onestep
