// SlimFlow: Annealing Reflow and Flow-Guided Distillation on teacher pairs, and the `slimflow`
// method that runs both stages in one training run.
#include "distill/slimflow/slimflow.hpp"

#include <torch/torch.h>

#include <cmath>

#include "core/error.hpp"
#include "core/registry.hpp"
#include "distill/pairs_source.hpp"
#include "models/conversions.hpp"
#include "models/network.hpp"
#include "models/trained_network.hpp"
#include "samplers/one_step.hpp"
#include "samplers/teacher_pairs.hpp"

namespace onestep {

double annealing_beta(int64_t step, int64_t anneal_steps) {
    if (anneal_steps <= 0) return 0.0;
    return std::max(0.0, 1.0 - static_cast<double>(step) / static_cast<double>(anneal_steps));
}

ReflowBatch annealing_reflow_batch(const at::Tensor& z0, const at::Tensor& x1, double beta, const SlimFlowSettings& settings) {
    at::Tensor epsilon = torch::randn_like(z0);
    at::Tensor blended = std::sqrt(1.0 - beta * beta) * z0 + beta * epsilon;   // z0' = sqrt(1 - b^2) z0 + b eps
    at::Tensor data = x1;
    if (settings.flip) {
        // The pair is flipped as a whole, so the coupling z0' -> x1 survives the augmentation.
        at::Tensor flipped = (torch::rand({z0.size(0)}, z0.options()) < 0.5).view({-1, 1, 1, 1});
        blended = torch::where(flipped, blended.flip({-1}), blended);
        data = torch::where(flipped, data.flip({-1}), data);
    }
    at::Tensor t = settings.t_eps + (1.0 - settings.t_eps) * torch::rand({z0.size(0)}, z0.options());
    at::Tensor tb = broadcast_time(t, z0);
    return {(1 - tb) * blended + tb * data, t, data - blended};   // x_t = (1 - t) z0' + t x1, v = x1 - z0'
}

DistillationLosses flow_guided_losses(VelocityNet& student, VelocityNet& g2, const at::Tensor& z0, const at::Tensor& x1,
                                      const at::Tensor& labels, const SlimFlowSettings& settings) {
    const int64_t n = z0.size(0);
    // Fresh noise with labels drawn uniformly (the pairs' own labels when unconditional: all 0).
    at::Tensor z = torch::randn_like(z0);
    at::Tensor fresh_labels = settings.num_classes > 0
                                  ? torch::randint(0, settings.num_classes, {n}, labels.options())
                                  : torch::zeros_like(labels);
    // One student forward at t_eps over [pairs' noise; fresh noise].
    at::Tensor inputs = torch::cat({z0, z});
    at::Tensor t0 = torch::full({2 * n}, settings.t_eps, z0.options());
    at::Tensor velocity = student.forward(inputs, t0, torch::cat({labels, fresh_labels}));
    at::Tensor generated = z0 + (1.0 - settings.t_eps) * velocity.slice(0, 0, n);   // G(z0, y)
    at::Tensor u = velocity.slice(0, n, 2 * n);

    at::Tensor target;
    {
        torch::NoGradGuard no_grad;
        at::Tensor t_prime = settings.t_prime_min + (settings.t_prime_max - settings.t_prime_min) * torch::rand({n}, z0.options());
        at::Tensor tb = broadcast_time(t_prime, z);
        at::Tensor x_t = z + tb * u.detach();                            // x_t' = z + t' sg(u)
        target = x_t + (1 - tb) * g2.forward(x_t, t_prime, fresh_labels);   // x1* = x_t' + (1 - t') v_G2(x_t', t')
    }
    at::Tensor jumped = z + (1.0 - settings.t_eps) * u;
    return {sample_distance(generated, x1, settings.distance, settings.huber_c).mean(),
            sample_distance(jumped, target, settings.distance, settings.huber_c).mean()};
}

namespace {

OptionTable slimflow_options() {
    OptionTable table = network_options("unet");
    table.add_string("slimflow.pairs", "", "teacher pairs (`onestep sample --ckpt TEACHER --pairs N --out FILE`)")
        .add_int("slimflow.reflow_steps", 5000, 1, 100000000,
                 "K1: steps of stage 1 (annealing reflow; at least 1, G2 is its student); the remaining `steps` are "
                 "stage 2 (flow-guided distillation)")
        .add_int("slimflow.anneal_steps", 2000, 0, 100000000,
                 "K_anneal: beta falls from 1 (random pairing) to 0 (exact reflow) over these steps; 0: plain reflow")
        .add_float("slimflow.t_eps", 1e-3, 0.0, 0.5, "t ~ U[t_eps, 1] in stage 1; the one-step generator's t0")
        .add_bool("slimflow.flip", false, "flip z0' and x1 horizontally together (only for flip-equivariant image teachers)")
        .add_choice("slimflow.distance", "pseudo-huber", {"pseudo-huber", "l2"},
                    "stage 2's distance: per-sample pseudo-Huber or mean squared error")
        .add_float("slimflow.huber_c", 0.0, 0.0, 1e6, "pseudo-Huber c (0: 0.00054 sqrt(D))")
        .add_float("slimflow.t_prime_min", 0.2, 0.0, 1.0, "stage 2: t' ~ U[t_prime_min, t_prime_max]")
        .add_float("slimflow.t_prime_max", 0.8, 0.0, 1.0, "stage 2: upper end of t'")
        .add_float("slimflow.regression_weight", 1.0, 0.0, 1e6, "weight of dist(G(z0), x1) on the pairs")
        .add_float("slimflow.guided_weight", 1.0, 0.0, 1e6, "weight of the flow-guided term against G2's 2-step target")
        .add_choice("sampler.name", "one-step", {"one-step", "euler", "heun", "ddim"},
                    "default sampler: the one-step generator, or an ODE solver over the student")
        .add_int("sampler.steps", 1, 1, 100000, "default sampling steps");
    return table;
}

class SlimFlowMethod : public Method {
  public:
    std::unique_ptr<BatchSource> open_data(const Config& config) override {
        TeacherPairs pairs = read_training_pairs(config.get_string("slimflow.pairs"), "slimflow.pairs",
                                                 config.get_int("batch_size"));
        return std::make_unique<PairsSource>(std::move(pairs), config.get_int("batch_size"),
                                             static_cast<uint64_t>(config.get_int("seed")));
    }

    void build(const Config& config, const DataShape& data, const torch::Device& device) override {
        config_ = config;
        data_ = data;
        settings_.reflow_steps = config.get_int("slimflow.reflow_steps");
        settings_.anneal_steps = config.get_int("slimflow.anneal_steps");
        settings_.t_eps = config.get_float("slimflow.t_eps");
        settings_.flip = config.get_bool("slimflow.flip");
        settings_.distance = config.get_string("slimflow.distance");
        settings_.huber_c = config.get_float("slimflow.huber_c");
        settings_.t_prime_min = config.get_float("slimflow.t_prime_min");
        settings_.t_prime_max = config.get_float("slimflow.t_prime_max");
        settings_.regression_weight = config.get_float("slimflow.regression_weight");
        settings_.guided_weight = config.get_float("slimflow.guided_weight");
        settings_.num_classes = data.num_classes;
        if (settings_.t_prime_min > settings_.t_prime_max)
            throw UserError("slimflow.t_prime_min " + std::to_string(settings_.t_prime_min) + " is above slimflow.t_prime_max " +
                            std::to_string(settings_.t_prime_max));
        if (settings_.flip && data.sample_shape.size() != 3)
            throw UserError("slimflow.flip needs images; these pairs hold samples shaped [" +
                            std::to_string(data.sample_shape.size()) + " dims]");
        model_.build(config, NetworkShape{data.sample_shape, data.num_classes, 0}, device);
        // G2 is checkpointed with the run; it becomes the stage-1 EMA when stage 2 starts.
        g2_ = model_.net->make_sibling();
        g2_->to(device);
        copy_weights(*g2_, *model_.ema_net, /*freeze=*/true);
        g2_->eval();
    }

    std::map<std::string, double> train_step(const Batch& batch, StepContext& context) override {
        const int64_t step = context.step();
        model_.net->train();
        const at::Tensor& labels = batch.y;   // all 0 for an unconditional teacher (read_teacher_pairs checks)
        if (step < settings_.reflow_steps) {
            double beta = annealing_beta(step, settings_.anneal_steps);
            ReflowBatch reflow = annealing_reflow_batch(batch.noise, batch.x, beta, settings_);
            at::Tensor loss = (model_.net->forward(reflow.x_t, reflow.t, labels) - reflow.target).pow(2).mean();
            double grad_norm = context.optimize("net", loss);
            return {{"loss", loss.item<double>()}, {"beta", beta}, {"stage", 1}, {"grad_norm", grad_norm}};
        }
        if (step == settings_.reflow_steps) {
            // G2: the stage-1 EMA, frozen. A run resumed later reads it from its checkpoint.
            copy_weights(*g2_, *model_.ema_net, /*freeze=*/true);
            g2_->eval();
        }
        DistillationLosses losses = flow_guided_losses(*model_.net, *g2_, batch.noise, batch.x, labels, settings_);
        at::Tensor loss = settings_.regression_weight * losses.regression + settings_.guided_weight * losses.guided;
        double grad_norm = context.optimize("net", loss);
        return {{"loss", loss.item<double>()},
                {"loss_regression", losses.regression.item<double>()},
                {"loss_guided", losses.guided.item<double>()},
                {"stage", 2},
                {"grad_norm", grad_norm}};
    }

    std::vector<NamedModule> modules() override {
        std::vector<NamedModule> modules = model_.modules();
        modules.push_back({"g2", g2_});
        return modules;
    }
    std::vector<NamedOptimizer> optimizers() override { return model_.optimizers(); }
    std::vector<Ema*> emas() override { return model_.emas(); }

    std::unique_ptr<Sampler> make_sampler() override {
        model_.ema_net->eval();
        return std::make_unique<OneStepSampler>(model_.ema_net, settings_.t_eps, data_.sample_shape, data_.class_names,
                                                data_.num_classes, config_.get_string("sampler.name"),
                                                config_.get_int("sampler.steps"));
    }

  private:
    Config config_;
    DataShape data_;
    SlimFlowSettings settings_;
    TrainedNetwork model_;
    std::shared_ptr<VelocityNet> g2_;
};

}  // namespace

void register_slimflow_method() {
    register_method({"slimflow",
                     "SlimFlow: a small one-step student trained on teacher pairs by annealing reflow, then "
                     "flow-guided distillation against its own frozen stage-1 copy",
                     slimflow_options, [] { return std::make_unique<SlimFlowMethod>(); }});
}

}  // namespace onestep
