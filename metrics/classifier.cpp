// The classifier method (cnn128 and wider variants) and its feature extractor.
#include "metrics/classifier.hpp"

#include <torch/torch.h>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/registry.hpp"
#include "core/text.hpp"
#include "core/trainer.hpp"
#include "data/dataset.hpp"
#include "metrics/inception.hpp"

namespace onestep {
namespace {

// [conv3x3 -> BN -> ReLU] x2 (w) -> maxpool -> [conv3x3 -> BN -> ReLU] x2 (2w) -> maxpool ->
// flatten -> Linear(feature) -> ReLU (the feature) -> dropout -> Linear(classes).
struct ClassifierNetImpl : torch::nn::Module {
    ClassifierNetImpl(int64_t channels, int64_t side, int64_t width, int64_t feature_dim, int64_t classes,
                      double dropout_rate) {
        body = register_module("body", torch::nn::Sequential());
        auto block = [&](int64_t in, int64_t out) {
            body->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1)));
            body->push_back(torch::nn::BatchNorm2d(out));
            body->push_back(torch::nn::ReLU());
        };
        block(channels, width);
        block(width, width);
        body->push_back(torch::nn::MaxPool2d(2));
        block(width, 2 * width);
        block(2 * width, 2 * width);
        body->push_back(torch::nn::MaxPool2d(2));
        int64_t flat = 2 * width * (side / 4) * (side / 4);
        feature = register_module("feature", torch::nn::Linear(flat, feature_dim));
        dropout = register_module("dropout", torch::nn::Dropout(dropout_rate));
        head = register_module("head", torch::nn::Linear(feature_dim, classes));
    }
    at::Tensor features(const at::Tensor& x) { return torch::relu(feature(body->forward(x).flatten(1))); }
    at::Tensor forward(const at::Tensor& x) { return head(dropout(features(x))); }

    torch::nn::Sequential body{nullptr};
    torch::nn::Linear feature{nullptr};
    torch::nn::Dropout dropout{nullptr};
    torch::nn::Linear head{nullptr};
};
TORCH_MODULE(ClassifierNet);

OptionTable classifier_options() {
    OptionTable table;
    table.add_int("classifier.width", 32, 4, 1024, "channels of the first two convolutions (doubled after pooling)")
        .add_int("classifier.feature_dim", 128, 8, 8192, "width of the penultimate (feature) layer")
        .add_float("classifier.dropout", 0.3, 0.0, 0.9, "dropout before the last layer")
        .add_int("classifier.eval_n", 10000, 0, 1e9, "held-out images scored at each checkpoint (0: none)");
    return table;
}

class ClassifierMethod : public Method {
  public:
    void build(const Config& config, const DataShape& data, const torch::Device& device) override {
        if (data.sample_shape.size() != 3 || data.num_classes < 2)
            throw UserError("classifier: needs a labelled image dataset; data.name=" + config.get_string("data.name") +
                            " has " + std::to_string(data.num_classes) + " classes");
        if (data.sample_shape[1] % 4 != 0)
            throw UserError("classifier: data.image_size must be a multiple of 4, got " +
                            std::to_string(data.sample_shape[1]));
        config_ = config;
        data_ = data;
        device_ = device;
        net_ = ClassifierNet(data.sample_shape[0], data.sample_shape[1], config.get_int("classifier.width"),
                             config.get_int("classifier.feature_dim"), data.num_classes,
                             config.get_float("classifier.dropout"));
        net_->to(device);
        optimizer_ = make_optimizer(net_->parameters(), config);
        base_lr_ = config.get_float("optim.lr");
    }

    std::map<std::string, double> train_step(const Batch& batch, StepContext& context) override {
        net_->train();
        at::Tensor logits = net_->forward(batch.x);
        at::Tensor loss = torch::nn::functional::cross_entropy(logits, batch.y);
        double grad_norm = context.optimize("net", loss);
        double accuracy = (logits.argmax(1) == batch.y).to(torch::kFloat).mean().item<double>();
        return {{"loss", loss.item<double>()}, {"train_accuracy", accuracy}, {"grad_norm", grad_norm}};
    }

    std::map<std::string, double> evaluate() override {
        int64_t n = config_.get_int("classifier.eval_n");
        if (n == 0) return {};
        if (!held_out_.defined()) load_held_out(n);
        torch::NoGradGuard no_grad;
        net_->eval();
        int64_t correct = 0;
        for (int64_t begin = 0; begin < held_out_.size(0); begin += 500) {
            int64_t end = std::min(held_out_.size(0), begin + 500);
            at::Tensor predicted = net_->forward(held_out_.slice(0, begin, end).to(device_)).argmax(1).cpu();
            correct += (predicted == held_out_labels_.slice(0, begin, end)).sum().item<int64_t>();
        }
        net_->train();
        return {{"test_accuracy", static_cast<double>(correct) / static_cast<double>(held_out_.size(0))}};
    }

    std::vector<NamedModule> modules() override { return {{"net", net_.ptr()}}; }
    std::vector<NamedOptimizer> optimizers() override { return {{"net", optimizer_.get(), base_lr_}}; }
    std::unique_ptr<Sampler> make_sampler() override { return nullptr; }

    ClassifierNet& net() { return net_; }
    const Config& config() const { return config_; }
    int64_t input_side() const { return data_.sample_shape[1]; }
    int64_t input_channels() const { return data_.sample_shape[0]; }

  private:
    void load_held_out(int64_t n) {
        DataSpec spec;
        spec.name = config_.get_string("data.name");
        spec.split = config_.get_string("data.split") == "test" ? "train" : "test";
        spec.cache_dir = config_.get_string("data.cache_dir");
        spec.image_size = config_.get_int("data.image_size");
        spec.channels = config_.get_int("data.channels");
        Dataset held_out = load_dataset(spec);
        n = std::min(n, held_out.size());
        held_out_ = to_model_input(held_out, held_out.x.slice(0, 0, n), spec.image_size);
        held_out_labels_ = held_out.y.slice(0, 0, n);
    }

    Config config_;
    DataShape data_;
    torch::Device device_ = torch::kCPU;
    ClassifierNet net_{nullptr};
    std::unique_ptr<torch::optim::Optimizer> optimizer_;
    double base_lr_ = 0;
    at::Tensor held_out_;
    at::Tensor held_out_labels_;
};

// The centre SIDE x SIDE crop of IMAGES [N, C, H, W] (the 28 -> 32 padding removed).
at::Tensor centre_crop(const at::Tensor& images, int64_t side) {
    int64_t top = (images.size(2) - side) / 2, left = (images.size(3) - side) / 2;
    return images.slice(2, top, top + side).slice(3, left, left + side);
}

class ClassifierExtractor : public FeatureExtractor {
  public:
    ClassifierExtractor(TrainedMethod trained, std::string sha256, const c10::Device& device)
        : trained_(std::move(trained)), sha256_(std::move(sha256)), device_(device) {
        method_ = dynamic_cast<ClassifierMethod*>(trained_.method.get());
        TORCH_CHECK(method_ != nullptr, "not a classifier");
        method_->net()->eval();
        std::string dataset = trained_.config.get_string("data.name");
        id_ = dataset + "/cnn" + std::to_string(trained_.config.get_int("classifier.feature_dim")) + "@" +
              sha256_.substr(0, 8);
    }
    std::string id() const override { return id_; }
    std::string sha256() const override { return sha256_; }
    std::string mode() const override { return "quantized, center crop to " + std::to_string(method_->input_side()); }
    int64_t feature_dim() const override { return trained_.config.get_int("classifier.feature_dim"); }
    at::Tensor features(const at::Tensor& images) override {
        return run(images, [&](const at::Tensor& x) { return method_->net()->features(x); });
    }
    at::Tensor logits(const at::Tensor& images) override {
        return run(images, [&](const at::Tensor& x) { return method_->net()->forward(x); });
    }

  private:
    // Quantise as a PNG would, back to [-1, 1], crop the 28 -> 32 padding, batch through the net.
    template <typename Fn>
    at::Tensor run(const at::Tensor& images, Fn&& fn) {
        torch::NoGradGuard no_grad;
        int64_t side = method_->input_side();
        if (images.dim() != 4 || images.size(2) < side || images.size(3) < side)
            throw UserError("classifier " + id_ + " expects images of at least " + std::to_string(side) + "x" +
                            std::to_string(side));
        std::vector<at::Tensor> outputs;
        for (int64_t begin = 0; begin < images.size(0); begin += 512) {
            at::Tensor batch = images.slice(0, begin, std::min(images.size(0), begin + 512));
            batch = quantize_like_png(batch) / 127.5 - 1.0;
            batch = centre_crop(batch, side).contiguous();
            outputs.push_back(fn(batch.to(device_)).cpu());
        }
        return torch::cat(outputs, 0);
    }

    TrainedMethod trained_;
    ClassifierMethod* method_ = nullptr;
    std::string sha256_;
    std::string id_;
    c10::Device device_;
};

TrainedMethod load_classifier(const std::string& path, const c10::Device& device) {
    TrainedMethod trained = load_trained_method(path, device);
    if (trained.info->name != "classifier")
        throw UserError(path + ": is a '" + trained.info->name + "' checkpoint, not a classifier (train one with "
                        "`onestep train classifier`)");
    return trained;
}

class FrozenClassifierNet : public FrozenClassifier {
  public:
    FrozenClassifierNet(TrainedMethod trained, std::string id) : trained_(std::move(trained)), id_(std::move(id)) {
        method_ = dynamic_cast<ClassifierMethod*>(trained_.method.get());
        TORCH_CHECK(method_ != nullptr, "not a classifier");
        method_->net()->eval();
        for (auto& parameter : method_->net()->parameters()) parameter.set_requires_grad(false);
    }
    at::Tensor logits(const at::Tensor& images) override {
        const int64_t side = method_->input_side();
        if (images.dim() != 4 || images.size(1) != method_->input_channels() || images.size(2) < side ||
            images.size(3) < side)
            throw UserError("classifier " + id_ + " expects images shaped [N, " + std::to_string(method_->input_channels()) +
                            ", >= " + std::to_string(side) + ", >= " + std::to_string(side) + "], got " +
                            shape_text(images.sizes()));
        return method_->net()->forward(centre_crop(images, side));
    }
    int64_t num_classes() const override { return method_->net()->head->weight.size(0); }
    std::vector<int64_t> input_shape() const override {
        return {method_->input_channels(), method_->input_side(), method_->input_side()};
    }
    std::string id() const override { return id_; }

  private:
    TrainedMethod trained_;
    ClassifierMethod* method_ = nullptr;
    std::string id_;
};

}  // namespace

void register_classifier_method() {
    register_method({"classifier", "small CNN classifier whose features drive fd/kid/pr/is_classifier and acc_cond",
                     classifier_options, [] { return std::make_unique<ClassifierMethod>(); }});
}

std::unique_ptr<FeatureExtractor> make_classifier_extractor(const std::string& checkpoint, const c10::Device& device) {
    std::string path = resolve_checkpoint_path(checkpoint);
    TrainedMethod trained = load_classifier(path, device);
    std::string sha = sha256_file(path);
    return std::make_unique<ClassifierExtractor>(std::move(trained), sha, device);
}

std::unique_ptr<FrozenClassifier> load_frozen_classifier(const std::string& checkpoint, const c10::Device& device) {
    std::string path = resolve_checkpoint_path(checkpoint);
    TrainedMethod trained = load_classifier(path, device);
    std::string id = trained.config.get_string("data.name") + "/cnn" +
                     std::to_string(trained.config.get_int("classifier.feature_dim")) + "@" + sha256_file(path).substr(0, 8);
    return std::make_unique<FrozenClassifierNet>(std::move(trained), id);
}

std::unique_ptr<FeatureExtractor> make_feature_extractor(const std::string& spec, const c10::Device& device) {
    auto colon = spec.find(':');
    std::string kind = spec.substr(0, colon);
    std::string path = colon == std::string::npos ? "" : spec.substr(colon + 1);
    if (kind == "classifier" && !path.empty()) return make_classifier_extractor(path, device);
    if (kind == "inception" && !path.empty()) {
        std::string mode;   // empty: pt-bilinear for native weights, the module's own for TorchScript
        auto at = path.rfind('@');
        if (at != std::string::npos) {
            mode = path.substr(at + 1);
            path = path.substr(0, at);
        }
        return make_inception_extractor(path, mode, device);
    }
    throw UserError("--features " + spec + ": expected classifier:CKPT or inception:PATH[@pt-bilinear|tf1-bilinear]");
}

}  // namespace onestep
