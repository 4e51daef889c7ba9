// Consistency distillation: the teacher's solver step, the consistency pair and the
// `consistency` method with its rewards.
#include "distill/consistency/consistency.hpp"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "core/registry.hpp"
#include "core/text.hpp"
#include "core/trainer.hpp"
#include "distill/distance.hpp"
#include "distill/reward.hpp"
#include "models/conversions.hpp"
#include "models/denoiser.hpp"
#include "models/ema.hpp"
#include "models/network.hpp"
#include "models/trained_network.hpp"
#include "samplers/consistency.hpp"
#include "samplers/generator.hpp"
#include "samplers/one_step.hpp"
#include "samplers/ode.hpp"

namespace onestep {

at::Tensor teacher_solver_step(Denoiser& teacher, const at::Tensor& x_a, const at::Tensor& t_a, const at::Tensor& t_b,
                               const at::Tensor& labels, const ConsistencySettings& settings) {
    torch::NoGradGuard no_grad;
    at::Tensor h = broadcast_time(t_b - t_a, x_a);
    at::Tensor v = guided_velocity(teacher, x_a, t_a, labels, settings.guidance);
    at::Tensor euler = x_a + h * v;
    if (settings.solver == "euler") return euler;
    TORCH_CHECK(settings.solver == "heun", "teacher_solver_step: unknown solver '", settings.solver, "'");
    at::Tensor v_end = guided_velocity(teacher, euler, t_b, labels, settings.guidance);
    at::Tensor heun = x_a + h * (v + v_end) / 2;
    if (!teacher.singular_at_one()) return heun;
    return torch::where(broadcast_time(t_b, x_a) >= 1.0, euler, heun);   // EDM: no correction into t = 1
}

ConsistencyPair consistency_pair(VelocityNet& student, VelocityNet& target, Denoiser* teacher, const at::Tensor& x,
                                 const at::Tensor& z, const at::Tensor& labels, const at::Tensor& t_a, const at::Tensor& t_b,
                                 const ConsistencySettings& settings) {
    at::Tensor x_a = (1 - broadcast_time(t_a, x)) * z + broadcast_time(t_a, x) * x;
    at::Tensor x_b;
    if (settings.solver == "none") {
        x_b = (1 - broadcast_time(t_b, x)) * z + broadcast_time(t_b, x) * x;   // the same z one level later
    } else {
        TORCH_CHECK(teacher != nullptr, "consistency distillation needs a teacher");
        x_b = teacher_solver_step(*teacher, x_a, t_a, t_b, labels, settings);
    }
    ConsistencyPair pair;
    pair.pred = consistency_function(student, x_a, t_a, labels);
    {
        torch::NoGradGuard no_grad;
        pair.target = consistency_function(target, x_b, t_b, labels);   // x_b itself where t_b = 1
    }
    return pair;
}

namespace {

OptionTable consistency_options() {
    OptionTable table = network_options("unet");
    table.add_string("consistency.teacher", "",
                     "the teacher whose ODE is distilled: a flow or vp run (or checkpoint), or "
                     "analytic:8gaussians[-fine|-coarse]; empty only with consistency.solver=none")
        .add_string("consistency.init", "",
                    "a flow run whose velocity network initialises the student (empty: the teacher's network; fresh "
                    "weights when the teacher has none); its architecture must be this config's model.*")
        .add_choice("consistency.solver", "heun", {"heun", "euler", "none"},
                    "the teacher's step from t_n to t_n+1 (euler is DDIM); none: consistency training, no teacher")
        .add_choice("consistency.grid", "karras", {"karras", "uniform", "ddpm-skip"}, "the time grid t_0 = 0 < ... < t_N = 1")
        .add_int("consistency.grid_steps", 18, 1, 100000, "N: intervals of the grid")
        .add_float("consistency.guidance", 1.0, 0.0, 50.0,
                   "w of the teacher's classifier-free guidance; the student learns the guided ODE at this w")
        .add_float("consistency.target_decay", 0.95, 0.0, 1.0, "mu of the target network, an EMA of the student (0: online weights)")
        .add_choice("consistency.distance", "elementwise-huber", {"elementwise-huber", "pseudo-huber", "l2"},
                    "d(pred, target): element-wise pseudo-Huber (LCM), per-sample pseudo-Huber, or mean squared error")
        .add_float("consistency.huber_c", 0.0, 0.0, 1e6, "pseudo-Huber c (0: 0.001 element-wise, 0.00054 sqrt(D) per sample)")
        .add_string("reward.classifier", "",
                    "a frozen classifier whose log p(y | x) rewards the prediction: a classifier run (not the metric "
                    "classifier) or analytic:8gaussians-fine|-coarse; empty: none")
        .add_float("reward.classifier_weight", 0.0, 0.0, 1e6,
                   "beta_cls (0 with reward.classifier set: the reward is only logged)")
        .add_string("reward.script", "", "a TorchScript reward, forward(x, y) -> [N], higher is better; empty: none")
        .add_float("reward.script_weight", 0.0, 0.0, 1e6, "beta_user (0 with reward.script set: only logged)")
        .add_float("reward.fraction", 1.0, 0.0, 1.0, "rho_r: the share of each batch the rewards see")
        .add_choice("sampler.name", "consistency", {"consistency", "one-step", "euler", "heun", "ddim"},
                    "default sampler: consistency multistep (one-step is its 1-step case), or an ODE solver over the "
                    "student's velocity")
        .add_int("sampler.steps", 1, 1, 100000, "default sampling steps");
    return table;
}

class ConsistencyMethod : public Method {
  public:
    // Training only: the teacher and the initial weights.
    std::unique_ptr<BatchSource> open_data(const Config& config) override {
        training_ = true;
        const std::string solver = config.get_string("consistency.solver");
        const std::string teacher_source = config.get_string("consistency.teacher");
        const c10::Device cpu(c10::kCPU);
        if (solver != "none") {
            if (teacher_source.empty())
                throw UserError("consistency.teacher is not set: name the teacher run, e.g. --set consistency.teacher="
                                "runs/fmnist-flow (or consistency.solver=none for consistency training)");
            teacher_ = std::make_unique<TeacherDenoiser>(open_teacher_denoiser(teacher_source, "consistency.teacher", cpu));
            const double guidance = config.get_float("consistency.guidance");
            if (guidance != 1.0 && !teacher_->denoiser->has_null_label())
                throw UserError("consistency.guidance = " + number_text(guidance) + ": the teacher " + teacher_source +
                                " was trained without label dropout (or is unconditional), so it cannot be guided; use 1");
        } else if (!teacher_source.empty()) {
            std::fprintf(stderr, "note: consistency.teacher is not used with consistency.solver = none\n");
        }
        const std::string init_source = config.get_string("consistency.init");
        if (!init_source.empty()) {
            TeacherDenoiser init = open_teacher_denoiser(init_source, "consistency.init", cpu);
            if (!init.velocity_net)
                throw UserError("consistency.init = " + init_source + ": a '" + init.method +
                                "' run has no velocity network; name a flow run");
            init_ = init.velocity_net;
            init_name_ = "consistency.init " + init_source;
        } else if (teacher_ && teacher_->velocity_net) {
            init_ = teacher_->velocity_net;
            init_name_ = "consistency.teacher " + teacher_source;
        } else {
            std::fprintf(stderr, "note: the student starts from fresh weights (%s)\n",
                         teacher_ ? "the analytic teacher has no network; consistency.init names one"
                                  : "consistency training without consistency.init");
        }
        return nullptr;   // the trainer reads data.name: the real (x, y) of step 1
    }

    void build(const Config& config, const DataShape& data, const torch::Device& device) override {
        config_ = config;
        data_ = data;
        settings_.solver = config.get_string("consistency.solver");
        settings_.guidance = config.get_float("consistency.guidance");
        settings_.distance = config.get_string("consistency.distance");
        settings_.huber_c = config.get_float("consistency.huber_c");
        grid_ = time_grid(config.get_string("consistency.grid"), config.get_int("consistency.grid_steps"));
        classifier_weight_ = config.get_float("reward.classifier_weight");
        script_weight_ = config.get_float("reward.script_weight");
        reward_fraction_ = config.get_float("reward.fraction");

        model_.build(config, NetworkShape{data.sample_shape, data.num_classes, 0}, device);
        target_net_ = model_.net->make_sibling();
        target_net_->to(device);
        target_ = std::make_unique<Ema>(model_.net, target_net_, config.get_float("consistency.target_decay"), false);
        if (!training_) return;

        if (teacher_) {
            if (teacher_->sample_shape != data.sample_shape || teacher_->denoiser->num_classes() != data.num_classes)
                throw UserError("consistency.teacher = " + config.get_string("consistency.teacher") + " draws samples shaped " +
                                shape_text(teacher_->sample_shape) + " with " +
                                std::to_string(teacher_->denoiser->num_classes()) + " classes; data.name = " +
                                config.get_string("data.name") + " holds " + shape_text(data.sample_shape) + " with " +
                                std::to_string(data.num_classes));
            if (auto* network = dynamic_cast<NetworkDenoiser*>(teacher_->denoiser.get())) network->net()->to(device);
        }
        if (init_) {
            // The student, its evaluation EMA and the target all start as the teacher.
            check_same_architecture(*model_.net, *init_, init_name_, "or leave consistency.init empty for fresh weights");
            copy_weights(*model_.net, *init_);
            model_.ema->copy_from_online();
            target_->copy_from_online();
            init_.reset();   // copied; a teacher keeps its own reference
        }
        const std::string classifier = config.get_string("reward.classifier");
        const std::string script = config.get_string("reward.script");
        if (classifier_weight_ > 0 && classifier.empty())
            throw UserError("reward.classifier_weight > 0 needs reward.classifier (a classifier run, not the metric one)");
        if (script_weight_ > 0 && script.empty()) throw UserError("reward.script_weight > 0 needs reward.script");
        if (!classifier.empty())
            classifier_reward_ = make_classifier_reward(classifier, data.sample_shape, data.num_classes, "reward.classifier", device);
        if (!script.empty()) script_reward_ = load_script_reward(script, data.sample_shape, data.num_classes, device);
        for (Reward* reward : {classifier_reward_.get(), script_reward_.get()})
            if (reward) std::fprintf(stderr, "reward: %s\n", reward->name().c_str());
    }

    std::map<std::string, double> train_step(const Batch& batch, StepContext& context) override {
        if (!training_) throw std::logic_error("consistency: train_step on a model loaded for sampling");
        const at::Tensor& x = batch.x;
        const int64_t n = x.size(0);
        at::Tensor labels = batch.y.defined() ? batch.y : torch::zeros({n}, torch::TensorOptions().dtype(torch::kLong));
        labels = labels.to(x.device());
        // n ~ U{0..N-1}: t_a = t_n, t_b = t_n+1.
        at::Tensor index = torch::randint(0, grid_.numel() - 1, {n}, torch::kLong);
        at::Tensor grid = grid_.to(x.options());
        at::Tensor t_a = grid.index_select(0, index.to(x.device()));
        at::Tensor t_b = grid.index_select(0, (index + 1).to(x.device()));
        at::Tensor z = torch::randn_like(x);

        // Dropout off in the student and target passes (spec §10): eval mode throughout.
        model_.net->eval();
        target_net_->eval();
        Denoiser* teacher = teacher_ ? teacher_->denoiser.get() : nullptr;
        ConsistencyPair pair = consistency_pair(*model_.net, *target_net_, teacher, x, z, labels, t_a, t_b, settings_);
        at::Tensor consistency = sample_distance(pair.pred, pair.target, settings_.distance, settings_.huber_c).mean();
        at::Tensor loss = consistency;
        std::map<std::string, double> metrics;
        // Rewards on the first ceil(rho B) predictions (the batch is already in random order).
        const int64_t rewarded = static_cast<int64_t>(std::ceil(reward_fraction_ * static_cast<double>(n)));
        auto add_reward = [&](Reward* reward, double weight, const std::string& name) {
            if (!reward || rewarded == 0) return;
            at::Tensor pred = pair.pred.slice(0, 0, rewarded);
            at::Tensor value;
            if (weight > 0) {
                value = reward->score(pred, labels.slice(0, 0, rewarded)).mean();
                loss = loss - weight * value;
            } else {
                torch::NoGradGuard no_grad;
                value = reward->score(pred.detach(), labels.slice(0, 0, rewarded)).mean();
            }
            metrics[name] = value.item<double>();
        };
        add_reward(classifier_reward_.get(), classifier_weight_, "reward_classifier");
        add_reward(script_reward_.get(), script_weight_, "reward_script");
        double grad_norm = context.optimize("net", loss);
        metrics["loss"] = loss.item<double>();
        metrics["loss_cd"] = consistency.item<double>();
        metrics["grad_norm"] = grad_norm;
        return metrics;
    }

    std::vector<NamedModule> modules() override {
        std::vector<NamedModule> modules = model_.modules();
        modules.push_back({"target", target_net_});
        return modules;
    }
    std::vector<NamedOptimizer> optimizers() override { return model_.optimizers(); }
    // The evaluation EMA and the target θ⁻ both follow the student after each step.
    std::vector<Ema*> emas() override { return {model_.ema.get(), target_.get()}; }

    std::unique_ptr<Sampler> make_sampler() override {
        model_.ema_net->eval();
        return std::make_unique<OneStepSampler>(model_.ema_net, 0.0, data_.sample_shape, data_.class_names,
                                                data_.num_classes, config_.get_string("sampler.name"),
                                                config_.get_int("sampler.steps"), grid_);
    }

  private:
    bool training_ = false;
    Config config_;
    DataShape data_;
    ConsistencySettings settings_;
    at::Tensor grid_;   // float64 [N + 1] on the CPU
    TrainedNetwork model_;
    std::shared_ptr<VelocityNet> target_net_;
    std::unique_ptr<Ema> target_;
    std::unique_ptr<TeacherDenoiser> teacher_;   // training only
    std::shared_ptr<VelocityNet> init_;          // until build has copied it
    std::string init_name_;
    std::unique_ptr<Reward> classifier_reward_;  // training only
    std::unique_ptr<Reward> script_reward_;
    double classifier_weight_ = 0, script_weight_ = 0, reward_fraction_ = 1;
};

}  // namespace

void register_consistency_method() {
    register_method({"consistency",
                     "consistency distillation: a student that agrees with itself one teacher ODE step apart, sampled "
                     "in 1 to N steps; optional rewards (classifier log p(y | x), TorchScript) on its prediction",
                     consistency_options, [] { return std::make_unique<ConsistencyMethod>(); }});
}

}  // namespace onestep
