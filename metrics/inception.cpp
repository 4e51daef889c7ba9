// The FID InceptionV3, its weight files and input pipeline (see inception.hpp). Layer shapes,
// names and pools follow the TF graph as pytorch-fid and torch-fidelity rebuild it.
#include "metrics/inception.hpp"

#include <ATen/Context.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <cfloat>
#include <fstream>
#include <iterator>
#include <tuple>
#include <utility>
#include <vector>

#include "core/text.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/tensor_file.hpp"

namespace F = torch::nn::functional;

namespace onestep {

namespace {

// The TF graph's average pools ignore padded zeros (count_include_pad = false).
at::Tensor average_pool_3x3(const at::Tensor& x) {
    return F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
}

at::Tensor max_pool_3x3(const at::Tensor& x, int64_t stride, int64_t padding) {
    return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(stride).padding(padding));
}

bool is_batch_counter(const std::string& key) {
    const std::string suffix = "num_batches_tracked";
    return key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "a, b, c and 12 more": a wrong file can miss all 472 keys, and one line must stay readable.
std::string name_list(const std::vector<std::string>& names) {
    constexpr size_t kShown = 8;
    std::string text;
    for (size_t i = 0; i < names.size() && i < kShown; ++i) text += (i ? ", " : "") + names[i];
    if (names.size() > kShown) text += " and " + std::to_string(names.size() - kShown) + " more";
    return text;
}

std::string file_head(const std::string& path, size_t count) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes(count, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(count));
    bytes.resize(static_cast<size_t>(in.gcount()));
    return bytes;
}

bool is_zip(const std::string& path) { return file_head(path, 4) == std::string("PK\x03\x04", 4); }

// A safetensors file opens with an 8-byte header length and then the JSON header.
bool is_safetensors(const std::string& path) {
    std::string head = file_head(path, 9);
    return head.size() == 9 && head[8] == '{';
}

// torch.jit.save archives carry compiled code and constants; torch.save checkpoints do not.
// Record names may or may not keep the archive's top folder, so both spellings are accepted.
bool is_torchscript_archive(const std::string& path) {
    std::vector<std::string> records;
    try {
        records = caffe2::serialize::PyTorchStreamReader(path).getAllRecords();
    } catch (const c10::Error& error) {
        std::string reason = error.what_without_backtrace();
        throw UserError(path + ": a damaged zip archive (" + reason.substr(0, reason.find('\n')) + ")");
    }
    for (const std::string& record : records) {
        size_t slash = record.find('/');
        std::string inner = slash == std::string::npos ? record : record.substr(slash + 1);
        for (const std::string& name : {record, inner}) {
            if (name == "constants.pkl" || name.rfind("code/", 0) == 0) return true;
        }
    }
    return false;
}

const std::string kConversionHint =
    "only a plain dict of tensors loads here (torch.save of a state_dict stores an OrderedDict): re-save it once in "
    "Python with `torch.save(dict(torch.load(f)), out)` or convert it to .safetensors";

// torch.save(model.state_dict()) pickles an OrderedDict, which libtorch's unpickler cannot build;
// its pickle opens with that class, so the error can say so instead of an internal assert.
bool holds_ordered_dict(const std::string& path) {
    try {
        caffe2::serialize::PyTorchStreamReader reader(path);
        if (!reader.hasRecord("data.pkl")) return false;
        auto record = reader.getRecord("data.pkl");
        const size_t size = std::min<size_t>(std::get<1>(record), 64);
        std::string head(static_cast<const char*>(std::get<0>(record).get()), size);
        return head.find("collections\nOrderedDict\n") != std::string::npos;
    } catch (const c10::Error&) {
        return false;
    }
}

// torch::pickle_load reads the zip format of torch.save when the top object is a plain dict.
std::map<std::string, at::Tensor> read_plain_dict_checkpoint(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UserError(path + ": cannot open");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    c10::IValue top;
    try {
        top = torch::pickle_load(bytes);
    } catch (const c10::Error& error) {
        if (holds_ordered_dict(path)) throw UserError(path + ": holds an OrderedDict; " + kConversionHint);
        std::string reason = error.what_without_backtrace();
        reason = reason.substr(0, reason.find('\n'));
        throw UserError(path + ": cannot read it as a PyTorch checkpoint (" + reason + "); " + kConversionHint);
    }
    if (!top.isGenericDict()) {
        if (holds_ordered_dict(path)) throw UserError(path + ": holds an OrderedDict; " + kConversionHint);
        throw UserError(path + ": holds a " + top.tagKind() + ", not a dict of tensors; " + kConversionHint);
    }
    std::map<std::string, at::Tensor> tensors;
    for (const auto& entry : top.toGenericDict()) {
        if (!entry.key().isString()) throw UserError(path + ": a key of its dict is not a string");
        const std::string key = entry.key().toStringRef();
        if (!entry.value().isTensor()) {
            throw UserError(path + ": entry '" + key + "' is a " + entry.value().tagKind() +
                            ", not a tensor; the file must hold the state dict alone");
        }
        tensors[key] = entry.value().toTensor();
    }
    return tensors;
}

// Metrics are compared with references computed in full float32: TF32 convolutions and matmuls
// (the default on recent GPUs) would move FID, so they are off for one call and then restored.
class FullFloat32OnCuda {
  public:
    explicit FullFloat32OnCuda(const c10::Device& device) : active_(device.is_cuda()) {
        if (!active_) return;
        auto& context = at::globalContext();
        cudnn_ = context.allowTF32CuDNN();
        cublas_ = context.allowTF32CuBLAS();
        context.setAllowTF32CuDNN(false);
        context.setAllowTF32CuBLAS(false);
    }
    ~FullFloat32OnCuda() {
        if (!active_) return;
        at::globalContext().setAllowTF32CuDNN(cudnn_);
        at::globalContext().setAllowTF32CuBLAS(cublas_);
    }
    FullFloat32OnCuda(const FullFloat32OnCuda&) = delete;
    FullFloat32OnCuda& operator=(const FullFloat32OnCuda&) = delete;

  private:
    bool active_;
    bool cudnn_ = false;
    bool cublas_ = false;
};

void check_images(const at::Tensor& images, const std::string& who) {
    if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3)) {
        throw UserError(who + " needs images [N, 1 or 3, H, W], got " + shape_text(images.sizes()));
    }
}

// A named function rather than the holder's variadic constructor, so that {1, 7} can spell a kernel.
BasicConv2d basic_conv(int64_t in, int64_t out, torch::ExpandingArray<2> kernel, torch::ExpandingArray<2> stride = 1,
                       torch::ExpandingArray<2> padding = 0) {
    return BasicConv2d(in, out, kernel, stride, padding);
}

std::string short_hash(const std::string& sha256) { return sha256.substr(0, 8); }

// NVIDIA's TorchScript InceptionV3 (StyleGAN2-ADA's inception-2015-12-05.pt): it takes RGB in
// [0, 255] of any size and resizes and normalises internally.
class TorchScriptInceptionExtractor : public FeatureExtractor {
  public:
    TorchScriptInceptionExtractor(torch::jit::script::Module module, std::string sha256, const c10::Device& device,
                                  int64_t batch_size = 32)
        : module_(std::move(module)), sha256_(std::move(sha256)), device_(device), batch_size_(batch_size) {
        module_.eval();
        module_.to(device_);
    }
    std::string id() const override { return "inception-pool3@" + short_hash(sha256_); }
    std::string sha256() const override { return sha256_; }
    std::string mode() const override { return "quantized, ts"; }
    int64_t feature_dim() const override { return kInceptionFeatures; }

    at::Tensor features(const at::Tensor& images) override {
        return run(images, "return_features", kInceptionFeatures);
    }

    // The module returns softmax probabilities without the fc bias; their logarithm differs from
    // the logits by a per-row constant, which every softmax-based score ignores. The clamp keeps
    // an underflowed probability finite (its weight in any score is zero anyway).
    at::Tensor logits(const at::Tensor& images) override {
        return run(images, "no_output_bias", kInceptionClasses).clamp_min(FLT_MIN).log();
    }

  private:
    at::Tensor run(const at::Tensor& images, const std::string& flag, int64_t width) {
        check_images(images, "inception (TorchScript)");
        torch::NoGradGuard no_grad;
        FullFloat32OnCuda full_float32(device_);
        std::vector<at::Tensor> outputs;
        for (int64_t begin = 0; begin < images.size(0); begin += batch_size_) {
            at::Tensor batch = images.slice(0, begin, std::min(images.size(0), begin + batch_size_)).to(device_);
            at::Tensor pixels = grey_to_rgb(quantize_like_png(batch));
            c10::IValue output = module_.forward({pixels}, {{flag, c10::IValue(true)}});
            TORCH_CHECK(output.isTensor(), "the TorchScript Inception returned a ", output.tagKind());
            outputs.push_back(output.toTensor().to(torch::kCPU, torch::kFloat).reshape({pixels.size(0), width}));
        }
        if (outputs.empty()) return torch::zeros({0, width});
        return torch::cat(outputs, 0);
    }

    torch::jit::script::Module module_;
    std::string sha256_;
    c10::Device device_;
    int64_t batch_size_;
};

}  // namespace

// ---------------------------------------------------------------- network

BasicConv2dImpl::BasicConv2dImpl(int64_t in, int64_t out, torch::ExpandingArray<2> kernel,
                                 torch::ExpandingArray<2> stride, torch::ExpandingArray<2> padding) {
    auto options = torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false);
    conv = register_module("conv", torch::nn::Conv2d(options));
    bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(kInceptionBatchNormEps)));
}

at::Tensor BasicConv2dImpl::forward(const at::Tensor& x) { return torch::relu(bn(conv(x))); }

InceptionAImpl::InceptionAImpl(int64_t in, int64_t pool_channels) {
    branch1x1 = register_module("branch1x1", basic_conv(in, 64, 1));
    branch5x5_1 = register_module("branch5x5_1", basic_conv(in, 48, 1));
    branch5x5_2 = register_module("branch5x5_2", basic_conv(48, 64, 5, 1, 2));
    branch3x3dbl_1 = register_module("branch3x3dbl_1", basic_conv(in, 64, 1));
    branch3x3dbl_2 = register_module("branch3x3dbl_2", basic_conv(64, 96, 3, 1, 1));
    branch3x3dbl_3 = register_module("branch3x3dbl_3", basic_conv(96, 96, 3, 1, 1));
    branch_pool = register_module("branch_pool", basic_conv(in, pool_channels, 1));
}

at::Tensor InceptionAImpl::forward(const at::Tensor& x) {
    return torch::cat({branch1x1(x), branch5x5_2(branch5x5_1(x)), branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))),
                       branch_pool(average_pool_3x3(x))},
                      1);
}

InceptionBImpl::InceptionBImpl(int64_t in) {
    branch3x3 = register_module("branch3x3", basic_conv(in, 384, 3, 2));
    branch3x3dbl_1 = register_module("branch3x3dbl_1", basic_conv(in, 64, 1));
    branch3x3dbl_2 = register_module("branch3x3dbl_2", basic_conv(64, 96, 3, 1, 1));
    branch3x3dbl_3 = register_module("branch3x3dbl_3", basic_conv(96, 96, 3, 2));
}

at::Tensor InceptionBImpl::forward(const at::Tensor& x) {
    return torch::cat({branch3x3(x), branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))), max_pool_3x3(x, 2, 0)}, 1);
}

InceptionCImpl::InceptionCImpl(int64_t in, int64_t c7) {
    branch1x1 = register_module("branch1x1", basic_conv(in, 192, 1));
    branch7x7_1 = register_module("branch7x7_1", basic_conv(in, c7, 1));
    branch7x7_2 = register_module("branch7x7_2", basic_conv(c7, c7, {1, 7}, 1, {0, 3}));
    branch7x7_3 = register_module("branch7x7_3", basic_conv(c7, 192, {7, 1}, 1, {3, 0}));
    branch7x7dbl_1 = register_module("branch7x7dbl_1", basic_conv(in, c7, 1));
    branch7x7dbl_2 = register_module("branch7x7dbl_2", basic_conv(c7, c7, {7, 1}, 1, {3, 0}));
    branch7x7dbl_3 = register_module("branch7x7dbl_3", basic_conv(c7, c7, {1, 7}, 1, {0, 3}));
    branch7x7dbl_4 = register_module("branch7x7dbl_4", basic_conv(c7, c7, {7, 1}, 1, {3, 0}));
    branch7x7dbl_5 = register_module("branch7x7dbl_5", basic_conv(c7, 192, {1, 7}, 1, {0, 3}));
    branch_pool = register_module("branch_pool", basic_conv(in, 192, 1));
}

at::Tensor InceptionCImpl::forward(const at::Tensor& x) {
    at::Tensor single = branch7x7_3(branch7x7_2(branch7x7_1(x)));
    at::Tensor twice = branch7x7dbl_5(branch7x7dbl_4(branch7x7dbl_3(branch7x7dbl_2(branch7x7dbl_1(x)))));
    return torch::cat({branch1x1(x), single, twice, branch_pool(average_pool_3x3(x))}, 1);
}

InceptionDImpl::InceptionDImpl(int64_t in) {
    branch3x3_1 = register_module("branch3x3_1", basic_conv(in, 192, 1));
    branch3x3_2 = register_module("branch3x3_2", basic_conv(192, 320, 3, 2));
    branch7x7x3_1 = register_module("branch7x7x3_1", basic_conv(in, 192, 1));
    branch7x7x3_2 = register_module("branch7x7x3_2", basic_conv(192, 192, {1, 7}, 1, {0, 3}));
    branch7x7x3_3 = register_module("branch7x7x3_3", basic_conv(192, 192, {7, 1}, 1, {3, 0}));
    branch7x7x3_4 = register_module("branch7x7x3_4", basic_conv(192, 192, 3, 2));
}

at::Tensor InceptionDImpl::forward(const at::Tensor& x) {
    return torch::cat({branch3x3_2(branch3x3_1(x)), branch7x7x3_4(branch7x7x3_3(branch7x7x3_2(branch7x7x3_1(x)))),
                       max_pool_3x3(x, 2, 0)},
                      1);
}

InceptionEImpl::InceptionEImpl(int64_t in, bool max_pool) : max_pool(max_pool) {
    branch1x1 = register_module("branch1x1", basic_conv(in, 320, 1));
    branch3x3_1 = register_module("branch3x3_1", basic_conv(in, 384, 1));
    branch3x3_2a = register_module("branch3x3_2a", basic_conv(384, 384, {1, 3}, 1, {0, 1}));
    branch3x3_2b = register_module("branch3x3_2b", basic_conv(384, 384, {3, 1}, 1, {1, 0}));
    branch3x3dbl_1 = register_module("branch3x3dbl_1", basic_conv(in, 448, 1));
    branch3x3dbl_2 = register_module("branch3x3dbl_2", basic_conv(448, 384, 3, 1, 1));
    branch3x3dbl_3a = register_module("branch3x3dbl_3a", basic_conv(384, 384, {1, 3}, 1, {0, 1}));
    branch3x3dbl_3b = register_module("branch3x3dbl_3b", basic_conv(384, 384, {3, 1}, 1, {1, 0}));
    branch_pool = register_module("branch_pool", basic_conv(in, 192, 1));
}

at::Tensor InceptionEImpl::forward(const at::Tensor& x) {
    at::Tensor inner = branch3x3_1(x);
    at::Tensor inner_dbl = branch3x3dbl_2(branch3x3dbl_1(x));
    at::Tensor pooled = max_pool ? max_pool_3x3(x, 1, 1) : average_pool_3x3(x);
    return torch::cat({branch1x1(x), branch3x3_2a(inner), branch3x3_2b(inner), branch3x3dbl_3a(inner_dbl),
                       branch3x3dbl_3b(inner_dbl), branch_pool(pooled)},
                      1);
}

FidInceptionV3Impl::FidInceptionV3Impl() {
    Conv2d_1a_3x3 = register_module("Conv2d_1a_3x3", basic_conv(3, 32, 3, 2));
    Conv2d_2a_3x3 = register_module("Conv2d_2a_3x3", basic_conv(32, 32, 3));
    Conv2d_2b_3x3 = register_module("Conv2d_2b_3x3", basic_conv(32, 64, 3, 1, 1));
    Conv2d_3b_1x1 = register_module("Conv2d_3b_1x1", basic_conv(64, 80, 1));
    Conv2d_4a_3x3 = register_module("Conv2d_4a_3x3", basic_conv(80, 192, 3));
    Mixed_5b = register_module("Mixed_5b", InceptionA(192, 32));
    Mixed_5c = register_module("Mixed_5c", InceptionA(256, 64));
    Mixed_5d = register_module("Mixed_5d", InceptionA(288, 64));
    Mixed_6a = register_module("Mixed_6a", InceptionB(288));
    Mixed_6b = register_module("Mixed_6b", InceptionC(768, 128));
    Mixed_6c = register_module("Mixed_6c", InceptionC(768, 160));
    Mixed_6d = register_module("Mixed_6d", InceptionC(768, 160));
    Mixed_6e = register_module("Mixed_6e", InceptionC(768, 192));
    Mixed_7a = register_module("Mixed_7a", InceptionD(768));
    Mixed_7b = register_module("Mixed_7b", InceptionE(1280, false));
    Mixed_7c = register_module("Mixed_7c", InceptionE(2048, true));
    fc = register_module("fc", torch::nn::Linear(kInceptionFeatures, kInceptionClasses));
}

at::Tensor FidInceptionV3Impl::forward(const at::Tensor& x) { return forward_all(x, false, false).pool3; }

InceptionOutputs FidInceptionV3Impl::forward_all(const at::Tensor& x, bool with_taps, bool with_logits) {
    TORCH_CHECK(x.dim() == 4 && x.size(1) == 3, "the Inception network expects [N, 3, H, W], got ", x.sizes());
    InceptionOutputs outputs;
    auto tap = [&](int64_t channels, const at::Tensor& value) {
        if (with_taps) outputs.taps[channels] = value;
    };
    at::Tensor h = Conv2d_2b_3x3(Conv2d_2a_3x3(Conv2d_1a_3x3(x)));
    h = max_pool_3x3(h, 2, 0);
    tap(64, h);
    h = Conv2d_4a_3x3(Conv2d_3b_1x1(h));
    h = max_pool_3x3(h, 2, 0);
    tap(192, h);
    h = Mixed_6a(Mixed_5d(Mixed_5c(Mixed_5b(h))));
    h = Mixed_6e(Mixed_6d(Mixed_6c(Mixed_6b(h))));
    tap(768, h);
    h = Mixed_7c(Mixed_7b(Mixed_7a(h)));
    tap(kInceptionFeatures, h);
    outputs.pool3 = h.mean({2, 3});
    // IS uses p(y|x) = softmax(W pool3) without the bias, as the original TF code does.
    if (with_logits) outputs.logits = torch::matmul(outputs.pool3, fc->weight.t());
    return outputs;
}

// ---------------------------------------------------------------- weights

std::map<std::string, at::Tensor> inception_state_dict(const FidInceptionV3& net) {
    std::map<std::string, at::Tensor> tensors;
    for (const auto& item : net->named_parameters(true)) tensors[item.key()] = item.value().detach();
    for (const auto& item : net->named_buffers(true)) {
        if (!is_batch_counter(item.key())) tensors[item.key()] = item.value().detach();
    }
    return tensors;
}

void load_inception_state_dict(FidInceptionV3& net, const std::map<std::string, at::Tensor>& tensors,
                               const std::string& source) {
    std::map<std::string, at::Tensor> targets;
    for (const auto& item : net->named_parameters(true)) targets[item.key()] = item.value();
    for (const auto& item : net->named_buffers(true)) {
        if (!is_batch_counter(item.key())) targets[item.key()] = item.value();
    }
    std::vector<std::string> missing, unexpected, misshaped;
    for (const auto& [key, target] : targets) {
        auto found = tensors.find(key);
        if (found == tensors.end()) {
            missing.push_back(key);
        } else if (found->second.sizes() != target.sizes()) {
            misshaped.push_back(key + " " + shape_text(found->second.sizes()) + " (expected " +
                                shape_text(target.sizes()) + ")");
        } else if (!found->second.is_floating_point()) {
            misshaped.push_back(key + " of dtype " + std::string(c10::toString(found->second.scalar_type())) +
                                " (expected floating point)");
        }
    }
    for (const auto& item : tensors) {
        if (!targets.count(item.first) && !is_batch_counter(item.first)) unexpected.push_back(item.first);
    }
    if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
        std::string message = source + ": not the FID InceptionV3 state dict (pytorch-fid / torch-fidelity names)";
        if (!missing.empty()) message += "; missing " + std::to_string(missing.size()) + ": " + name_list(missing);
        if (!unexpected.empty())
            message += "; unexpected " + std::to_string(unexpected.size()) + ": " + name_list(unexpected);
        if (!misshaped.empty())
            message += "; mis-shaped " + std::to_string(misshaped.size()) + ": " + name_list(misshaped);
        throw UserError(message);
    }
    {
        torch::NoGradGuard no_grad;
        for (auto& [key, target] : targets) target.copy_(tensors.at(key));
    }
    net->eval();
}

void load_inception_weights(FidInceptionV3& net, const std::string& path) {
    if (is_safetensors(path)) {
        load_inception_state_dict(net, read_safetensors(path).tensors, path);
    } else if (is_zip(path)) {
        load_inception_state_dict(net, read_plain_dict_checkpoint(path), path);
    } else {
        throw UserError(path + ": neither a .safetensors file nor a zip-format PyTorch checkpoint (a legacy "
                               "torch.save pickle?); " + kConversionHint);
    }
}

// ---------------------------------------------------------------- input pipeline

std::string resize_name(InceptionResize resize) {
    switch (resize) {
        case InceptionResize::PtBilinear: return "pt-bilinear";
        case InceptionResize::Tf1Bilinear: return "tf1-bilinear";
        case InceptionResize::TorchScript: return "ts";
    }
    TORCH_CHECK(false, "unknown Inception resize mode");
    return "";
}

InceptionResize parse_resize(const std::string& name) {
    for (InceptionResize resize :
         {InceptionResize::PtBilinear, InceptionResize::Tf1Bilinear, InceptionResize::TorchScript}) {
        if (resize_name(resize) == name) return resize;
    }
    throw UserError("unknown Inception resize mode '" + name + "' (accepted: pt-bilinear, tf1-bilinear, ts)");
}

at::Tensor tf1_bilinear_resize(const at::Tensor& images, int64_t out_height, int64_t out_width) {
    TORCH_CHECK(images.dim() == 4, "tf1_bilinear_resize expects [N, C, H, W], got ", images.sizes());
    // Lerps along DIM as TF1 does: top + (bottom - top) * w, with w broadcast along DIM.
    auto resize_axis = [](const at::Tensor& x, int64_t dim, int64_t out) {
        const int64_t in = x.size(dim);
        at::Tensor source = torch::arange(out, torch::kDouble) * (static_cast<double>(in) / static_cast<double>(out));
        at::Tensor lower = source.floor();
        at::Tensor weight = (source - lower).to(x.scalar_type()).to(x.device());
        at::Tensor lower_index = lower.to(torch::kLong).to(x.device());
        at::Tensor upper_index = (lower_index + 1).clamp_max(in - 1);
        std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
        shape[static_cast<size_t>(dim)] = out;
        at::Tensor low = x.index_select(dim, lower_index);
        return low + (x.index_select(dim, upper_index) - low) * weight.view(shape);
    };
    return resize_axis(resize_axis(images, 3, out_width), 2, out_height);
}

at::Tensor grey_to_rgb(const at::Tensor& pixels) {
    return pixels.size(1) == 1 ? pixels.expand({-1, 3, -1, -1}).contiguous() : pixels;
}

at::Tensor inception_input(const at::Tensor& images, InceptionResize resize) {
    check_images(images, "inception");
    at::Tensor pixels = grey_to_rgb(quantize_like_png(images));
    switch (resize) {
        case InceptionResize::PtBilinear: {
            auto options = F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{kInceptionSide, kInceptionSide})
                               .mode(torch::kBilinear)
                               .align_corners(false);
            at::Tensor resized = F::interpolate(pixels / 255.0, options);
            return resized * 2.0 - 1.0;
        }
        case InceptionResize::Tf1Bilinear:
            return (tf1_bilinear_resize(pixels, kInceptionSide, kInceptionSide) - 128.0) / 128.0;
        case InceptionResize::TorchScript: break;
    }
    throw UserError("the 'ts' resize happens inside a TorchScript Inception file; native weights take "
                    "pt-bilinear or tf1-bilinear");
}

// ---------------------------------------------------------------- extractors

InceptionExtractor::InceptionExtractor(FidInceptionV3 net, std::string sha256, InceptionResize resize,
                                       const c10::Device& device, int64_t tap, int64_t batch_size)
    : net_(std::move(net)), sha256_(std::move(sha256)), resize_(resize), device_(device), tap_(tap),
      batch_size_(batch_size) {
    if (tap_ != 64 && tap_ != 192 && tap_ != 768 && tap_ != kInceptionFeatures) {
        throw UserError("unknown Inception feature tap " + std::to_string(tap_) + " (accepted: 2048, 768, 192, 64)");
    }
    if (resize_ == InceptionResize::TorchScript) {
        throw UserError("the 'ts' mode needs a TorchScript Inception file; native weights take pt-bilinear or "
                        "tf1-bilinear");
    }
    TORCH_CHECK(batch_size_ > 0, "batch size must be positive");
    net_->eval();
    net_->to(device_);
}

std::string InceptionExtractor::id() const {
    return (tap_ == kInceptionFeatures ? std::string("inception-pool3") : "inception-tap" + std::to_string(tap_)) +
           "@" + short_hash(sha256_);
}

std::string InceptionExtractor::mode() const { return "quantized, " + resize_name(resize_) + " 299"; }

at::Tensor InceptionExtractor::features(const at::Tensor& images) { return run(images, false); }

at::Tensor InceptionExtractor::logits(const at::Tensor& images) { return run(images, true); }

at::Tensor InceptionExtractor::run(const at::Tensor& images, bool want_logits) {
    check_images(images, "inception");
    torch::NoGradGuard no_grad;
    FullFloat32OnCuda full_float32(device_);
    const bool want_tap = !want_logits && tap_ != kInceptionFeatures;
    std::vector<at::Tensor> outputs;
    for (int64_t begin = 0; begin < images.size(0); begin += batch_size_) {
        at::Tensor batch = images.slice(0, begin, std::min(images.size(0), begin + batch_size_)).to(device_);
        InceptionOutputs out = net_->forward_all(inception_input(batch, resize_), want_tap, want_logits);
        at::Tensor result = want_logits ? out.logits : want_tap ? out.taps.at(tap_).mean({2, 3}) : out.pool3;
        outputs.push_back(result.to(torch::kCPU, torch::kFloat));
    }
    if (outputs.empty()) return torch::zeros({0, want_logits ? kInceptionClasses : tap_});
    return torch::cat(outputs, 0);
}

std::unique_ptr<FeatureExtractor> make_inception_extractor(const std::string& path, const std::string& mode,
                                                           const c10::Device& device, int64_t tap) {
    if (!std::ifstream(path)) throw UserError(path + ": cannot open the Inception weights");
    if (is_zip(path) && is_torchscript_archive(path)) {
        if (!mode.empty() && mode != "ts") {
            throw UserError(path + ": a TorchScript Inception resizes inside itself, so it takes mode 'ts' only, " +
                            "not '" + mode + "'; use a state-dict file (.safetensors / .pth) for pt-bilinear or " +
                            "tf1-bilinear");
        }
        if (tap != kInceptionFeatures) {
            throw UserError(path + ": a TorchScript Inception gives pool3 (2048) only, not tap " + std::to_string(tap));
        }
        torch::jit::script::Module module;
        try {
            module = torch::jit::load(path, torch::kCPU);
        } catch (const c10::Error& error) {
            std::string reason = error.what_without_backtrace();
            reason = reason.substr(0, reason.find('\n'));
            throw UserError(path + ": cannot load the TorchScript module (" + reason + ")");
        }
        return std::make_unique<TorchScriptInceptionExtractor>(std::move(module), sha256_file(path), device);
    }
    InceptionResize resize = mode.empty() ? InceptionResize::PtBilinear : parse_resize(mode);
    if (resize == InceptionResize::TorchScript) {
        throw UserError(path + ": mode 'ts' needs a TorchScript Inception file (NVIDIA's inception-2015-12-05.pt); "
                               "state-dict weights take pt-bilinear or tf1-bilinear");
    }
    FidInceptionV3 net;
    load_inception_weights(net, path);
    return std::make_unique<InceptionExtractor>(std::move(net), sha256_file(path), resize, device, tap);
}

}  // namespace onestep
