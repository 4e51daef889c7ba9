// EMA copies and weight copying between modules of the same architecture.
#include "models/ema.hpp"

#include <torch/torch.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/text.hpp"

namespace onestep {

void copy_weights(torch::nn::Module& target, const torch::nn::Module& source, bool freeze) {
    torch::NoGradGuard no_grad;
    auto source_params = source.named_parameters(true);
    for (auto& item : target.named_parameters(true)) {
        const at::Tensor* from = source_params.find(item.key());
        TORCH_CHECK(from != nullptr, "copy_weights: source lacks parameter ", item.key());
        item.value().copy_(*from);
        if (freeze) item.value().set_requires_grad(false);
    }
    auto source_buffers = source.named_buffers(true);
    for (auto& item : target.named_buffers(true)) {
        const at::Tensor* from = source_buffers.find(item.key());
        TORCH_CHECK(from != nullptr, "copy_weights: source lacks buffer ", item.key());
        item.value().copy_(*from);
    }
}

void check_same_architecture(const torch::nn::Module& target, const torch::nn::Module& source, const std::string& what,
                             const std::string& advice) {
    auto source_params = source.named_parameters(true);
    auto target_params = target.named_parameters(true);
    const std::string hint = "; give this config the model block of " + what + "'s run (" + advice + ")";
    if (source_params.size() != target_params.size())
        throw UserError(what + " has " + std::to_string(source_params.size()) + " parameter tensors, this config's model.* " +
                        std::to_string(target_params.size()) + hint);
    for (const auto& item : target_params) {
        const at::Tensor* from = source_params.find(item.key());
        if (from == nullptr) throw UserError(what + " has no parameter '" + item.key() + "'" + hint);
        if (from->sizes() != item.value().sizes())
            throw UserError(what + ": parameter '" + item.key() + "' is " + shape_text(from->sizes()) + " there and " +
                            shape_text(item.value().sizes()) + " under this config's model.*" + hint);
    }
}

Ema::Ema(std::shared_ptr<torch::nn::Module> online, std::shared_ptr<torch::nn::Module> shadow, double decay,
         bool warmup)
    : online_(std::move(online)), shadow_(std::move(shadow)), decay_(decay), warmup_(warmup) {
    TORCH_CHECK(online_ != shadow_, "an EMA copy must be a separate module");
    copy_from_online();
    for (auto& parameter : shadow_->parameters()) parameter.set_requires_grad(false);
}

void Ema::copy_from_online() { copy_weights(*shadow_, *online_); }

void Ema::update(int64_t step) {
    torch::NoGradGuard no_grad;
    double decay = warmup_ ? std::min(decay_, (1.0 + step) / (10.0 + step)) : decay_;
    auto online_params = online_->named_parameters(true);
    for (auto& item : shadow_->named_parameters(true)) {
        // theta_ema <- decay * theta_ema + (1 - decay) * theta
        item.value().mul_(decay).add_(online_params[item.key()], 1.0 - decay);
    }
    auto online_buffers = online_->named_buffers(true);
    for (auto& item : shadow_->named_buffers(true)) item.value().copy_(online_buffers[item.key()]);
}

}  // namespace onestep
