// Shortcut k-step sampling and the flow level of a shortcut network.
#include "samplers/shortcut.hpp"

#include <torch/torch.h>

#include <sstream>

#include "core/error.hpp"
#include "samplers/ode.hpp"

namespace onestep {

LevelDenoiser::LevelDenoiser(std::shared_ptr<VelocityNet> net, int64_t level, int64_t num_classes, bool has_null_label)
    : net_(std::move(net)), level_(level), num_classes_(num_classes), has_null_label_(has_null_label) {}

at::Tensor LevelDenoiser::velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) {
    at::Tensor levels = torch::full({x_t.size(0)}, level_, torch::TensorOptions().dtype(torch::kLong).device(x_t.device()));
    return net_->forward(x_t, t, labels, levels);
}

int64_t shortcut_level(int64_t k, int64_t max_steps, const std::string& what) {
    int64_t level = 0;
    for (int64_t power = 1; power <= max_steps; power *= 2, ++level)
        if (power == k) return level;
    throw UserError(what + " " + std::to_string(k) + ": shortcut sampling takes a power of two from 1 to " +
                    std::to_string(max_steps) + " (1, 2, 4, ..., " + std::to_string(max_steps) + ")");
}

ShortcutSampler::ShortcutSampler(std::shared_ptr<VelocityNet> net, int64_t max_steps, std::vector<int64_t> sample_shape,
                                 std::vector<std::string> class_names, int64_t num_classes, bool has_null_label,
                                 std::string default_sampler, int64_t default_steps)
    : net_(std::move(net)), max_steps_(max_steps), sample_shape_(std::move(sample_shape)),
      class_names_(std::move(class_names)), num_classes_(num_classes), has_null_label_(has_null_label),
      default_sampler_(std::move(default_sampler)), default_steps_(default_steps) {}

std::string ShortcutSampler::sampler_name(const SampleOptions& options) const {
    std::string name = options.sampler.empty() ? default_sampler_ : options.sampler;
    if (name != "shortcut" && name != "euler" && name != "heun" && name != "ddim")
        throw UserError("--sampler " + name + ": a shortcut model samples with shortcut (k jumps of 1/k), or with "
                        "euler, heun or ddim on its flow-matching level");
    return name;
}

int64_t ShortcutSampler::steps(const SampleOptions& options) const {
    return options.steps > 0 ? options.steps : default_steps_;
}

int64_t ShortcutSampler::level_for(const SampleOptions& options) const {
    int64_t flow_level = shortcut_level(max_steps_, max_steps_);
    if (sampler_name(options) != "shortcut") return flow_level;
    int64_t k = steps(options);
    int64_t level = shortcut_level(k, max_steps_);
    if (options.grid != "uniform")
        throw UserError("--grid " + options.grid + ": shortcut sampling visits the uniform grid i/k only");
    if (options.guidance != 1.0 && level < flow_level) {
        std::ostringstream weight;
        weight << options.guidance;
        throw UserError("--cfg " + weight.str() + " at " + std::to_string(k) +
                        " steps: the levels below the flow level are trained without the null label, so they have no "
                        "unconditional branch (guidance is built in by shortcut.bootstrap_cfg); use --cfg 1, or --steps " +
                        std::to_string(max_steps_));
    }
    return level;
}

int64_t ShortcutSampler::nfe(const SampleOptions& options) const {
    level_for(options);
    int64_t per_step = (options.guidance != 1.0 ? 2 : 1) * (sampler_name(options) == "heun" ? 2 : 1);
    return per_step * steps(options);
}

std::string ShortcutSampler::describe(const SampleOptions& options) const {
    int64_t level = level_for(options);
    std::string name = sampler_name(options);
    std::ostringstream text;
    if (name == "shortcut")
        text << "shortcut, " << steps(options) << " steps (level " << level << ")";
    else
        text << name << " on the flow level, " << steps(options) << " steps (" << options.grid << ")";
    if (options.guidance != 1.0) text << ", w=" << options.guidance;
    return text.str();
}

at::Tensor ShortcutSampler::sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) {
    int64_t level = level_for(options);
    std::string name = sampler_name(options);
    auto denoiser = std::make_shared<LevelDenoiser>(net_, level, num_classes_, has_null_label_);
    if (name == "shortcut")   // x <- x + (1/k) s(x, i/k, log2 k, y): Euler on the uniform grid at that level
        return euler_sample(*denoiser, noise, labels, time_grid("uniform", steps(options)), options.guidance);
    OdeSampler ode(denoiser, sample_shape_, class_names_, name, steps(options));
    return ode.sample(noise, labels, options);
}

}  // namespace onestep
