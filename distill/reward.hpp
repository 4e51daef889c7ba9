// Differentiable rewards on generated samples (image-methods spec §3.11 and §10): a frozen
// classifier's log p(y | x), the exact posterior of the toy mixture, or any TorchScript module.
// Higher is better; every reward is differentiable in the samples and trains nothing itself.
//
//   auto reward = make_classifier_reward("runs/fmnist-classifier-b", {1, 32, 32}, 10, "reward.classifier", device);
//   at::Tensor r = reward->score(pred, labels);    // [N], gradients flow into pred
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace onestep {

class Reward {
  public:
    virtual ~Reward() = default;
    // x: [N, sample_shape...] in the data range, with its graph; labels: int64 [N]. Returns [N].
    virtual at::Tensor score(const at::Tensor& x, const at::Tensor& labels) = 0;
    virtual std::string name() const = 0;
};

// log softmax(classifier(x))[y]. SOURCE is a classifier run or checkpoint, or
// "analytic:8gaussians-fine" / "analytic:8gaussians-coarse" (the exact log p(y | x) of the toy
// mixture). A UserError naming KEY when it is neither, or when its input shape or class count
// does not fit samples shaped SAMPLE_SHAPE with NUM_CLASSES classes.
std::unique_ptr<Reward> make_classifier_reward(const std::string& source, const std::vector<int64_t>& sample_shape,
                                               int64_t num_classes, const std::string& key, const c10::Device& device);

// A TorchScript module (torch.jit.save) with forward(x: Tensor, y: Tensor) -> Tensor[N]: loaded
// once in eval mode with frozen parameters on DEVICE, and tried on a 2-sample batch (output shape
// [2], a floating dtype, finite values, a non-zero gradient in x). A UserError naming PATH otherwise.
std::unique_ptr<Reward> load_script_reward(const std::string& path, const std::vector<int64_t>& sample_shape,
                                           int64_t num_classes, const c10::Device& device);

}  // namespace onestep
