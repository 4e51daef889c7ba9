// Feature extractors for image metrics: the suite's own classifier (classifier:CKPT) and the FID
// InceptionV3 (inception:PATH). A metric is meaningless without its extractor, so each one
// carries an id and the SHA-256 of its weights, printed and stored with every value.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace onestep {

class FeatureExtractor {
  public:
    virtual ~FeatureExtractor() = default;
    virtual std::string id() const = 0;        // e.g. "fashion-mnist/cnn128@3f9a2c1e", "inception-pool3@6726825d"
    virtual std::string sha256() const = 0;    // of the weight file
    virtual std::string mode() const = 0;      // preprocessing, e.g. "quantized, pt-bilinear 299"
    virtual int64_t feature_dim() const = 0;
    // images: float [N, C, H, W] in [-1, 1]; quantised as a PNG writer would before use.
    // Returns float32 [N, feature_dim] on the CPU.
    virtual at::Tensor features(const at::Tensor& images) = 0;
    // Class logits [N, classes] (Inception: 1008-way without the fc bias), for IS and accuracy.
    virtual at::Tensor logits(const at::Tensor& images) = 0;
};

// The quantisation of a PNG writer: u = clamp(floor(127.5 x + 128), 0, 255), as float [0, 255].
at::Tensor quantize_like_png(const at::Tensor& images);

// "classifier:CKPT" or "inception:PATH" (a .safetensors / plain-dict .pth state dict, or a
// TorchScript .pt); "inception:PATH@tf1-bilinear" picks a resize mode. UserError otherwise.
std::unique_ptr<FeatureExtractor> make_feature_extractor(const std::string& spec, const c10::Device& device);

}  // namespace onestep
