// Rewards: classifier log-probabilities and TorchScript modules.
#include "distill/reward.hpp"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/error.hpp"
#include "core/text.hpp"
#include "metrics/classifier.hpp"
#include "models/analytic_mixture.hpp"

namespace onestep {
namespace {

class ClassifierReward : public Reward {
  public:
    explicit ClassifierReward(std::unique_ptr<FrozenClassifier> classifier) : classifier_(std::move(classifier)) {}
    at::Tensor score(const at::Tensor& x, const at::Tensor& labels) override {
        at::Tensor log_probability = torch::log_softmax(classifier_->logits(x), 1);
        return log_probability.gather(1, labels.to(torch::kLong).view({-1, 1})).squeeze(1);
    }
    std::string name() const override { return "log p(y | x), classifier " + classifier_->id(); }

  private:
    std::unique_ptr<FrozenClassifier> classifier_;
};

class MixtureReward : public Reward {
  public:
    MixtureReward(MixtureLabels labels, std::string source) : mixture_(labels), source_(std::move(source)) {}
    at::Tensor score(const at::Tensor& x, const at::Tensor& labels) override { return mixture_.log_posterior(x, labels); }
    std::string name() const override { return "log p(y | x), " + source_; }

  private:
    GaussianMixtureDenoiser mixture_;
    std::string source_;
};

class ScriptReward : public Reward {
  public:
    ScriptReward(torch::jit::script::Module module, std::string path) : module_(std::move(module)), path_(std::move(path)) {}
    at::Tensor score(const at::Tensor& x, const at::Tensor& labels) override {
        return module_.forward({x, labels}).toTensor().to(x.scalar_type());
    }
    std::string name() const override { return "TorchScript " + path_; }

  private:
    torch::jit::script::Module module_;
    std::string path_;
};

// The first line of a libtorch error (the rest is a C++ or TorchScript trace).
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// The last non-empty line (a TorchScript interpreter error ends with the Python-style message).
std::string last_line(const std::string& text) {
    std::string trimmed = text.substr(0, text.find_last_not_of(" \n") + 1);
    return trimmed.substr(trimmed.find_last_of('\n') + 1);
}

}  // namespace

std::unique_ptr<Reward> make_classifier_reward(const std::string& source, const std::vector<int64_t>& sample_shape,
                                               int64_t num_classes, const std::string& key, const c10::Device& device) {
    if (num_classes == 0)
        throw UserError(key + " = " + source + ": a classifier reward needs class labels, and this model is unconditional");
    if (source.rfind("analytic:", 0) == 0) {
        MixtureLabels labels = parse_analytic_teacher(source);
        GaussianMixtureDenoiser mixture(labels);
        if (mixture.num_classes() != num_classes || sample_shape != std::vector<int64_t>{2})
            throw UserError(key + " = " + source + " scores 2-D points with " + std::to_string(mixture.num_classes()) +
                            " classes; this model draws samples shaped " + shape_text(sample_shape) + " with " +
                            std::to_string(num_classes));
        return std::make_unique<MixtureReward>(labels, source);
    }
    std::unique_ptr<FrozenClassifier> classifier = load_frozen_classifier(source, device);
    std::vector<int64_t> input = classifier->input_shape();
    const bool fits = sample_shape.size() == 3 && sample_shape[0] == input[0] && sample_shape[1] >= input[1] &&
                      sample_shape[2] >= input[2];
    if (!fits || classifier->num_classes() != num_classes)
        throw UserError(key + " = " + source + " classifies images shaped " + shape_text(input) + " into " +
                        std::to_string(classifier->num_classes()) + " classes; this model draws samples shaped " +
                        shape_text(sample_shape) + " with " + std::to_string(num_classes));
    return std::make_unique<ClassifierReward>(std::move(classifier));
}

std::unique_ptr<Reward> load_script_reward(const std::string& path, const std::vector<int64_t>& sample_shape,
                                           int64_t num_classes, const c10::Device& device) {
    if (!std::filesystem::is_regular_file(path)) throw UserError("reward.script = " + path + ": no such file");
    torch::jit::script::Module module;
    try {
        module = torch::jit::load(path, device);
    } catch (const c10::Error& error) {
        throw UserError("reward.script = " + path + ": not a TorchScript archive (" + first_line(error.what()) + ")");
    }
    module.eval();
    for (auto parameter : module.parameters()) parameter.set_requires_grad(false);

    // A 2-sample trial batch in the data range.
    std::vector<int64_t> shape{2};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    at::Tensor x = (0.5 * torch::randn(shape, torch::TensorOptions().device(device))).requires_grad_(true);
    at::Tensor y = torch::tensor({int64_t{0}, std::max<int64_t>(0, std::min<int64_t>(1, num_classes - 1))},
                                 torch::TensorOptions().dtype(torch::kLong).device(device));
    const std::string trial = "reward.script = " + path + ": on a trial batch x " + shape_text(shape) + ", y [2], ";
    c10::IValue result;
    try {
        result = module.forward({x, y});
    } catch (const std::exception& error) {   // c10::Error, or the interpreter's JITException
        throw UserError(trial + "forward(x, y) failed: " + last_line(error.what()));
    }
    if (!result.isTensor()) throw UserError(trial + "forward returned a " + result.tagKind() + ", not a Tensor");
    at::Tensor output = result.toTensor();
    if (output.sizes() != c10::IntArrayRef{2})
        throw UserError(trial + "forward returned a tensor shaped " + shape_text(output.sizes()) +
                        "; a reward returns one number per sample, shaped [N]");
    if (!output.is_floating_point())
        throw UserError(trial + "forward returned " + std::string(c10::toString(output.scalar_type())) +
                        " values; a reward returns floating-point numbers");
    if (!torch::isfinite(output).all().item<bool>()) throw UserError(trial + "forward returned non-finite values");
    if (!output.requires_grad())
        throw UserError(trial + "the output does not depend differentiably on x; a reward must pass gradients to x");
    at::Tensor gradient = torch::autograd::grad({output.sum()}, {x}, {}, false, false, true)[0];
    if (!gradient.defined() || gradient.abs().sum().item<double>() == 0.0)
        throw UserError(trial + "the gradient of the reward in x is zero; a reward must pass gradients to x");
    return std::make_unique<ScriptReward>(std::move(module), path);
}

}  // namespace onestep
