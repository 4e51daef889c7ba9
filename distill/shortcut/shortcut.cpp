// Shortcut models: the self-consistency training step and the `shortcut` method.
#include "distill/shortcut/shortcut.hpp"

#include <torch/torch.h>

#include <cmath>

#include "core/error.hpp"
#include "core/registry.hpp"
#include "models/conversions.hpp"
#include "models/network.hpp"
#include "models/trained_network.hpp"
#include "samplers/shortcut.hpp"

namespace onestep {

int64_t ShortcutSettings::flow_level() const { return shortcut_level(max_steps, max_steps); }

int64_t shortcut_bootstrap_count(int64_t batch_size, const ShortcutSettings& settings) {
    int64_t levels = settings.flow_level();
    const std::string& prefix = settings.option_prefix;
    auto count = static_cast<int64_t>(std::llround(settings.bootstrap_fraction * static_cast<double>(batch_size)));
    if (count < levels)
        throw UserError("batch_size " + std::to_string(batch_size) + " with " + prefix + ".bootstrap_fraction " +
                        std::to_string(settings.bootstrap_fraction) + " gives " + std::to_string(count) +
                        " self-consistency items, fewer than the " + std::to_string(levels) + " levels of " + prefix +
                        ".max_steps " + std::to_string(settings.max_steps) + "; raise batch_size or " + prefix +
                        ".bootstrap_fraction");
    if (count >= batch_size)
        throw UserError(prefix + ".bootstrap_fraction " + std::to_string(settings.bootstrap_fraction) +
                        " leaves no flow-matching items in a batch of " + std::to_string(batch_size));
    return count;
}

at::Tensor round_robin_levels(int64_t count, int64_t flow_level, int64_t offset) {
    return (torch::arange(count, torch::kLong) + offset).remainder(flow_level);
}

at::Tensor bootstrap_targets(VelocityNet& target_net, const at::Tensor& x_t, const at::Tensor& t,
                             const at::Tensor& labels, const at::Tensor& levels, const ShortcutSettings& settings) {
    torch::NoGradGuard no_grad;
    const double clip = settings.target_clip;
    at::Tensor half = torch::pow(2.0, -levels.to(x_t.options().dtype())) / 2;   // d/2 per item
    at::Tensor finer = levels + 1;
    // Guided items: level L-1, whose halves are evaluated at the flow level (which knows the null label).
    bool guided = settings.bootstrap_cfg != 1.0 && settings.num_classes > 0;
    at::Tensor guided_index;
    if (guided) {
        guided_index = (levels == settings.flow_level() - 1).nonzero().flatten();
        guided = guided_index.numel() > 0;
    }
    auto velocity = [&](const at::Tensor& x, const at::Tensor& time) {
        if (!guided) return target_net.forward(x, time, labels, finer);
        // One forward over [all items (conditional); guided items with the null label].
        at::Tensor null_labels = torch::full({guided_index.numel()}, settings.num_classes, labels.options());
        at::Tensor both = target_net.forward(torch::cat({x, x.index_select(0, guided_index)}),
                                             torch::cat({time, time.index_select(0, guided_index)}),
                                             torch::cat({labels, null_labels}),
                                             torch::cat({finer, finer.index_select(0, guided_index)}));
        int64_t n = x.size(0);
        at::Tensor v = both.slice(0, 0, n);
        at::Tensor conditional = v.index_select(0, guided_index);
        at::Tensor unconditional = both.slice(0, n, both.size(0));
        return v.index_copy(0, guided_index, unconditional + settings.bootstrap_cfg * (conditional - unconditional));
    };
    at::Tensor v1 = velocity(x_t, t);
    at::Tensor x_mid = (x_t + broadcast_time(half, x_t) * v1).clamp(-clip, clip);
    at::Tensor v2 = velocity(x_mid, t + half);
    return ((v1 + v2) / 2).clamp(-clip, clip);
}

ShortcutBatch make_shortcut_batch(const at::Tensor& x, const at::Tensor& y, VelocityNet& target_net,
                                  const ShortcutSettings& settings, const at::Tensor& noise) {
    const int64_t batch = x.size(0);
    const int64_t flow_level = settings.flow_level();
    const int64_t count = shortcut_bootstrap_count(batch, settings);
    auto long_options = torch::TensorOptions().dtype(torch::kLong);
    at::Tensor labels = y.defined() ? y : torch::zeros({batch}, long_options.device(x.device()));

    // Bootstrap items: round-robin levels from a random offset, t on the level's own grid i d.
    int64_t offset = torch::randint(0, flow_level, {1}, long_options).item<int64_t>();
    at::Tensor levels_b = round_robin_levels(count, flow_level, offset);
    at::Tensor jumps = torch::pow(2.0, levels_b.to(torch::kDouble));   // 2^l jumps of d = 2^-l fill [0, 1]
    at::Tensor index_b = torch::floor(torch::rand({count}, torch::kDouble) * jumps).clamp_max(jumps - 1);
    at::Tensor t_b = (index_b / jumps).to(x.options().dtype());

    // Flow items: the remaining images, label dropout, t on the finest grid i/M, level L.
    int64_t flows = batch - count;
    at::Tensor index_f = torch::randint(0, settings.max_steps, {flows}, long_options);
    at::Tensor t_f = (index_f.to(torch::kDouble) / static_cast<double>(settings.max_steps)).to(x.options().dtype());
    at::Tensor labels_f = labels.slice(0, count, batch);
    if (settings.p_uncond > 0 && settings.num_classes > 0) {
        at::Tensor drop = (torch::rand({flows}) < settings.p_uncond).to(labels.device());
        labels_f = torch::where(drop, torch::full_like(labels_f, settings.num_classes), labels_f);
    }

    at::Tensor z = noise.defined() ? noise : torch::randn_like(x);
    at::Tensor t = torch::cat({t_b, t_f}).to(x.device());
    at::Tensor tb = broadcast_time(t, x);
    at::Tensor x_t = (1 - tb) * z + tb * x;   // x_t = (1 - t) z + t x

    ShortcutBatch out;
    out.bootstrap_count = count;
    out.x_t = x_t;
    out.t = t;
    out.labels = torch::cat({labels.slice(0, 0, count), labels_f});
    out.levels = torch::cat({levels_b, torch::full({flows}, flow_level, long_options)}).to(x.device());
    at::Tensor boot_targets = bootstrap_targets(target_net, x_t.slice(0, 0, count), t.slice(0, 0, count),
                                                out.labels.slice(0, 0, count), out.levels.slice(0, 0, count), settings);
    at::Tensor flow_targets = (x - z).slice(0, count, batch);   // v = x - z
    out.targets = torch::cat({boot_targets, flow_targets});
    return out;
}

namespace {

constexpr int64_t kMaxShortcutSteps = 4096;

OptionTable shortcut_options() {
    OptionTable table = network_options("unet");
    table.add_int("shortcut.max_steps", 128, 2, kMaxShortcutSteps, "M: the finest step 1/M (a power of two); sampling takes 1..M steps")
        .add_float("shortcut.bootstrap_fraction", 0.25, 0.0, 1.0,
                   "share of each batch trained by self-consistency (at least one item per level)")
        .add_float("shortcut.p_uncond", 0.1, 0.0, 1.0, "label dropout of the flow-matching items (guidance at M steps)")
        .add_float("shortcut.bootstrap_cfg", 1.0, 0.0, 20.0,
                   "guidance w built into the level below the flow level (1: none; the official ImageNet runs use 1.5)")
        .add_float("shortcut.target_clip", 4.0, 0.1, 1e6, "clip x_mid and the bootstrap targets to +-this")
        .add_choice("sampler.name", "shortcut", {"shortcut", "euler", "heun", "ddim"},
                    "default sampler: shortcut jumps, or an ODE solver on the flow level")
        .add_int("sampler.steps", 1, 1, 100000, "default sampling steps");
    return table;
}

class ShortcutMethod : public Method {
  public:
    void build(const Config& config, const DataShape& data, const torch::Device& device) override {
        config_ = config;
        data_ = data;
        settings_.max_steps = config.get_int("shortcut.max_steps");
        shortcut_level(settings_.max_steps, kMaxShortcutSteps, "shortcut.max_steps");   // a power of two
        settings_.bootstrap_fraction = config.get_float("shortcut.bootstrap_fraction");
        settings_.num_classes = data.num_classes;
        settings_.p_uncond = data.num_classes > 0 ? config.get_float("shortcut.p_uncond") : 0.0;
        settings_.bootstrap_cfg = config.get_float("shortcut.bootstrap_cfg");
        settings_.target_clip = config.get_float("shortcut.target_clip");
        if (settings_.bootstrap_cfg != 1.0 && (data.num_classes == 0 || settings_.p_uncond == 0))
            throw UserError("shortcut.bootstrap_cfg needs class labels and shortcut.p_uncond > 0 (the flow level must "
                            "learn the unconditional velocity)");
        shortcut_bootstrap_count(config.get_int("batch_size"), settings_);   // refuses batches missing a level
        if (config.get_string("sampler.name") == "shortcut")
            shortcut_level(config.get_int("sampler.steps"), settings_.max_steps, "sampler.steps");

        model_.build(config, NetworkShape{data.sample_shape, data.num_classes, settings_.flow_level() + 1}, device);
    }

    std::map<std::string, double> train_step(const Batch& batch, StepContext& context) override {
        model_.ema_net->eval();   // targets without dropout
        ShortcutBatch inputs = make_shortcut_batch(batch.x, batch.y, *model_.ema_net, settings_);
        model_.net->train();
        at::Tensor prediction = model_.net->forward(inputs.x_t, inputs.t, inputs.labels, inputs.levels);
        at::Tensor error = (prediction - inputs.targets).pow(2).flatten(1).mean(1);   // mean_e per item
        at::Tensor loss = error.mean();
        double grad_norm = context.optimize("net", loss);
        int64_t count = inputs.bootstrap_count;
        return {{"loss", loss.item<double>()},
                {"loss_bootstrap", error.slice(0, 0, count).mean().item<double>()},
                {"loss_flow", error.slice(0, count, error.size(0)).mean().item<double>()},
                {"grad_norm", grad_norm}};
    }

    std::vector<NamedModule> modules() override { return model_.modules(); }
    std::vector<NamedOptimizer> optimizers() override { return model_.optimizers(); }
    std::vector<Ema*> emas() override { return model_.emas(); }

    std::unique_ptr<Sampler> make_sampler() override {
        model_.ema_net->eval();
        return std::make_unique<ShortcutSampler>(model_.ema_net, settings_.max_steps, data_.sample_shape, data_.class_names,
                                                 data_.num_classes, settings_.p_uncond > 0,
                                                 config_.get_string("sampler.name"), config_.get_int("sampler.steps"));
    }

  private:
    Config config_;
    DataShape data_;
    ShortcutSettings settings_;
    TrainedNetwork model_;
};

}  // namespace

void register_shortcut_method() {
    register_method({"shortcut",
                     "shortcut model: one network sampling in 1, 2, 4, ..., M steps, trained from scratch by flow "
                     "matching plus self-consistency",
                     shortcut_options, [] { return std::make_unique<ShortcutMethod>(); }});
}

}  // namespace onestep
