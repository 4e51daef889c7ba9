// Flow-matching and VP teachers.
#include "models/teacher.hpp"

#include <torch/torch.h>

#include "core/error.hpp"
#include "core/registry.hpp"
#include "models/conversions.hpp"
#include "models/denoiser.hpp"
#include "models/network.hpp"
#include "models/time_distribution.hpp"
#include "models/trained_network.hpp"
#include "samplers/ode.hpp"

namespace onestep {
namespace {

OptionTable teacher_options() {
    OptionTable table = network_options("unet");
    table.add_float("teacher.p_uncond", 0.1, 0.0, 1.0, "probability of replacing the label by the null label")
        .add_choice("teacher.t_dist", "uniform", {"uniform", "logit-normal"}, "flow: distribution of training times t")
        .add_float("teacher.logit_mean", 0.0, -10.0, 10.0, "flow: mean of logit t for logit-normal")
        .add_float("teacher.logit_std", 1.0, 0.01, 10.0, "flow: std of logit t for logit-normal")
        .add_choice("sampler.name", "euler", {"euler", "heun", "ddim"}, "default sampler for previews and `sample`")
        .add_int("sampler.steps", 100, 1, 100000, "default sampling steps");
    return table;
}

class TeacherMethod : public Method {
  public:
    explicit TeacherMethod(Parameterisation parameterisation) : parameterisation_(parameterisation) {}

    void build(const Config& config, const DataShape& data, const torch::Device& device) override {
        config_ = config;
        data_ = data;
        model_.build(config, NetworkShape{data.sample_shape, data.num_classes, 0}, device);
        p_uncond_ = data.num_classes > 0 ? config.get_float("teacher.p_uncond") : 0.0;
        times_ = TimeDistribution::of_flow_config(config);
    }

    std::map<std::string, double> train_step(const Batch& batch, StepContext& context) override {
        model_.net->train();
        at::Tensor labels = drop_labels(batch.y);
        at::Tensor loss = parameterisation_ == Parameterisation::Velocity ? flow_loss(batch.x, labels)
                                                                           : vp_loss(batch.x, labels);
        double grad_norm = context.optimize("net", loss);
        return {{"loss", loss.item<double>()}, {"grad_norm", grad_norm}};
    }

    std::vector<NamedModule> modules() override { return model_.modules(); }
    std::vector<NamedOptimizer> optimizers() override { return model_.optimizers(); }
    std::vector<Ema*> emas() override { return model_.emas(); }

    std::unique_ptr<Sampler> make_sampler() override {
        model_.ema_net->eval();
        auto denoiser = std::make_shared<NetworkDenoiser>(model_.ema_net, parameterisation_, data_.num_classes, p_uncond_ > 0);
        return std::make_unique<OdeSampler>(denoiser, data_.sample_shape, data_.class_names,
                                            config_.get_string("sampler.name"), config_.get_int("sampler.steps"));
    }

  private:
    // y <- null with probability p_uncond (classifier-free guidance training).
    at::Tensor drop_labels(const at::Tensor& labels) const {
        if (p_uncond_ <= 0) return labels;
        at::Tensor drop = torch::rand({labels.size(0)}, labels.options().dtype(torch::kFloat)) < p_uncond_;
        return torch::where(drop, torch::full_like(labels, data_.num_classes), labels);
    }

    at::Tensor flow_loss(const at::Tensor& x, const at::Tensor& labels) {
        at::Tensor z = torch::randn_like(x);
        at::Tensor t = times_.sample(x.size(0), x.options());
        at::Tensor tb = broadcast_time(t, x);
        at::Tensor x_t = (1 - tb) * z + tb * x;   // x_t = (1-t) z + t x
        return (model_.net->forward(x_t, t, labels) - (x - z)).pow(2).mean();   // target v = x - z
    }

    at::Tensor vp_loss(const at::Tensor& x, const at::Tensor& labels) {
        at::Tensor tau = torch::randint(0, kDdpmSteps, {x.size(0)}, torch::TensorOptions().dtype(torch::kLong));
        at::Tensor alpha_bar = ddpm_alpha_bar().index_select(0, tau).to(x.options());
        at::Tensor t = t_from_ddpm_index(tau).to(x.device());
        at::Tensor epsilon = torch::randn_like(x);
        at::Tensor ab = broadcast_time(alpha_bar, x);
        at::Tensor x_vp = torch::sqrt(ab) * x + torch::sqrt(1 - ab) * epsilon;   // x_vp = sqrt(ab) x + sqrt(1-ab) eps
        return (model_.net->forward(x_vp, t, labels) - epsilon).pow(2).mean();
    }

    Parameterisation parameterisation_;
    Config config_;
    DataShape data_;
    TrainedNetwork model_;
    double p_uncond_ = 0;
    TimeDistribution times_;
};

}  // namespace

void register_teacher_methods() {
    register_method({"flow", "rectified-flow / flow-matching teacher (velocity MSE); Euler, Heun, DDIM sampling",
                     teacher_options, [] { return std::make_unique<TeacherMethod>(Parameterisation::Velocity); }});
    register_method({"vp", "VP / DDPM teacher (noise prediction), sampled through the project-time adapter",
                     teacher_options, [] { return std::make_unique<TeacherMethod>(Parameterisation::VpEpsilon); }});
}

}  // namespace onestep
