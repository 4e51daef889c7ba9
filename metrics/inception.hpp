// The FID InceptionV3 (image-metrics spec §1–3): the TF graph's network with pytorch-fid's names,
// weight loading by name, the input pipeline, and the pool3 feature extractors built on it.
//
//   auto extractor = onestep::make_inception_extractor("pt_inception-2015-12-05.safetensors", "pt-bilinear",
//                                                      torch::kCPU);
//   at::Tensor pool3 = extractor->features(images);   // images [N, 1|3, H, W] in [-1, 1] -> [N, 2048]
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "metrics/features.hpp"

namespace onestep {

constexpr int64_t kInceptionSide = 299;
constexpr int64_t kInceptionFeatures = 2048;   // pool3
constexpr int64_t kInceptionClasses = 1008;
constexpr double kInceptionBatchNormEps = 1e-3;   // the TF graph's; libtorch's default is 1e-5

// Conv (no bias) -> BatchNorm (eps 1e-3, running statistics in eval mode) -> ReLU.
struct BasicConv2dImpl : torch::nn::Module {
    BasicConv2dImpl(int64_t in, int64_t out, torch::ExpandingArray<2> kernel, torch::ExpandingArray<2> stride = 1,
                    torch::ExpandingArray<2> padding = 0);
    at::Tensor forward(const at::Tensor& x);

    torch::nn::Conv2d conv{nullptr};
    torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

// Block A (Mixed_5b-d): 1x1 | 5x5 | double 3x3 | average pool (padding excluded) + 1x1 to POOL_CHANNELS.
struct InceptionAImpl : torch::nn::Module {
    InceptionAImpl(int64_t in, int64_t pool_channels);
    at::Tensor forward(const at::Tensor& x);

    BasicConv2d branch1x1{nullptr}, branch5x5_1{nullptr}, branch5x5_2{nullptr}, branch3x3dbl_1{nullptr},
        branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(InceptionA);

// Block B (Mixed_6a): grid reduction 35 -> 17.
struct InceptionBImpl : torch::nn::Module {
    explicit InceptionBImpl(int64_t in);
    at::Tensor forward(const at::Tensor& x);

    BasicConv2d branch3x3{nullptr}, branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr};
};
TORCH_MODULE(InceptionB);

// Block C (Mixed_6b-e): factorised 7x7 convolutions with C7 inner channels.
struct InceptionCImpl : torch::nn::Module {
    InceptionCImpl(int64_t in, int64_t c7);
    at::Tensor forward(const at::Tensor& x);

    BasicConv2d branch1x1{nullptr}, branch7x7_1{nullptr}, branch7x7_2{nullptr}, branch7x7_3{nullptr},
        branch7x7dbl_1{nullptr}, branch7x7dbl_2{nullptr}, branch7x7dbl_3{nullptr}, branch7x7dbl_4{nullptr},
        branch7x7dbl_5{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(InceptionC);

// Block D (Mixed_7a): grid reduction 17 -> 8.
struct InceptionDImpl : torch::nn::Module {
    explicit InceptionDImpl(int64_t in);
    at::Tensor forward(const at::Tensor& x);

    BasicConv2d branch3x3_1{nullptr}, branch3x3_2{nullptr}, branch7x7x3_1{nullptr}, branch7x7x3_2{nullptr},
        branch7x7x3_3{nullptr}, branch7x7x3_4{nullptr};
};
TORCH_MODULE(InceptionD);

// Block E (Mixed_7b, Mixed_7c): expanded filter bank. The TF graph pools with an average (padding
// excluded) in Mixed_7b and with a max in Mixed_7c; MAX_POOL picks the latter.
struct InceptionEImpl : torch::nn::Module {
    InceptionEImpl(int64_t in, bool max_pool);
    at::Tensor forward(const at::Tensor& x);

    bool max_pool;
    BasicConv2d branch1x1{nullptr}, branch3x3_1{nullptr}, branch3x3_2a{nullptr}, branch3x3_2b{nullptr},
        branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3a{nullptr}, branch3x3dbl_3b{nullptr},
        branch_pool{nullptr};
};
TORCH_MODULE(InceptionE);

struct InceptionOutputs {
    at::Tensor pool3;                       // [N, 2048]
    // By channel count: 64 [N,64,73,73], 192 [N,192,35,35], 768 [N,768,17,17], 2048 [N,2048,8,8].
    std::map<int64_t, at::Tensor> taps;
    at::Tensor logits;                      // [N, 1008], fc without its bias (the IS convention)
};

// The network, expecting normalised RGB input [N, 3, 299, 299] (inception_input). Child names are
// those of pytorch-fid and torch-fidelity, so their state dicts load by name.
struct FidInceptionV3Impl : torch::nn::Module {
    FidInceptionV3Impl();
    at::Tensor forward(const at::Tensor& x);   // pool3 [N, 2048]
    InceptionOutputs forward_all(const at::Tensor& x, bool with_taps, bool with_logits);

    BasicConv2d Conv2d_1a_3x3{nullptr}, Conv2d_2a_3x3{nullptr}, Conv2d_2b_3x3{nullptr}, Conv2d_3b_1x1{nullptr},
        Conv2d_4a_3x3{nullptr};
    InceptionA Mixed_5b{nullptr}, Mixed_5c{nullptr}, Mixed_5d{nullptr};
    InceptionB Mixed_6a{nullptr};
    InceptionC Mixed_6b{nullptr}, Mixed_6c{nullptr}, Mixed_6d{nullptr}, Mixed_6e{nullptr};
    InceptionD Mixed_7a{nullptr};
    InceptionE Mixed_7b{nullptr}, Mixed_7c{nullptr};
    torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(FidInceptionV3);

// The state dict as written to files: every parameter and buffer except num_batches_tracked.
std::map<std::string, at::Tensor> inception_state_dict(const FidInceptionV3& net);

// Copies TENSORS into NET by name under NoGradGuard, then eval(). Every parameter and buffer
// (num_batches_tracked excepted, in either place) must be present with its shape; otherwise one
// UserError, naming SOURCE, lists the missing, unexpected and mis-shaped keys.
void load_inception_state_dict(FidInceptionV3& net, const std::map<std::string, at::Tensor>& tensors,
                               const std::string& source);

// Reads the weights of PATH (.safetensors, or a PyTorch zip checkpoint holding a plain dict of
// tensors) into NET. UserError naming PATH for other files, with the conversion to use.
void load_inception_weights(FidInceptionV3& net, const std::string& path);

// How images reach 299x299 (spec §3); the name is part of every report.
enum class InceptionResize {
    PtBilinear,    // "pt-bilinear": u/255, bilinear (align_corners = false), 2v - 1; pytorch-fid
    Tf1Bilinear,   // "tf1-bilinear": TF1's bilinear on u, (v - 128)/128; torch-fidelity, the TF graph
    TorchScript,   // "ts": inside NVIDIA's TorchScript module, which takes u
};
std::string resize_name(InceptionResize resize);
InceptionResize parse_resize(const std::string& name);   // UserError listing the accepted names

// TF1's resize_bilinear (align_corners = false, no half-pixel centres) of [N, C, H, W]: source
// coordinate s = o * in/out, i0 = floor(s), i1 = min(i0 + 1, in - 1), w = s - i0, separable.
at::Tensor tf1_bilinear_resize(const at::Tensor& images, int64_t out_height, int64_t out_width);

// Quantised pixels u [N, 1|3, H, W] in [0, 255] -> RGB [N, 3, H, W] (grey repeated).
at::Tensor grey_to_rgb(const at::Tensor& pixels);

// Images [N, 1|3, H, W] in [-1, 1] -> the network's input [N, 3, 299, 299]: quantised like a PNG,
// grey repeated to RGB, resized and normalised by RESIZE (PtBilinear or Tf1Bilinear).
at::Tensor inception_input(const at::Tensor& images, InceptionResize resize);

// Pool3 (or a lower tap, averaged over space) of the native network. Not comparable across taps.
class InceptionExtractor : public FeatureExtractor {
  public:
    // TAP: 2048 (pool3, the FID feature), 768, 192 or 64.
    InceptionExtractor(FidInceptionV3 net, std::string sha256, InceptionResize resize, const c10::Device& device,
                       int64_t tap = kInceptionFeatures, int64_t batch_size = 32);
    std::string id() const override;
    std::string sha256() const override { return sha256_; }
    std::string mode() const override;
    int64_t feature_dim() const override { return tap_; }
    at::Tensor features(const at::Tensor& images) override;
    at::Tensor logits(const at::Tensor& images) override;

  private:
    at::Tensor run(const at::Tensor& images, bool want_logits);

    FidInceptionV3 net_;
    std::string sha256_;
    InceptionResize resize_;
    c10::Device device_;
    int64_t tap_;
    int64_t batch_size_;
};

// Native network for a .safetensors or plain-dict zip .pth state dict; NVIDIA's TorchScript
// module for a TorchScript archive (mode "ts" only, tap 2048 only). MODE "" picks "pt-bilinear"
// for native weights and "ts" for TorchScript. UserError for unreadable files, wrong weights and
// modes or taps the file cannot serve.
std::unique_ptr<FeatureExtractor> make_inception_extractor(const std::string& path, const std::string& mode,
                                                           const c10::Device& device,
                                                           int64_t tap = kInceptionFeatures);

}  // namespace onestep
