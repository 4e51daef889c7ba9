// Score Mismatching: the noise levels, the three losses and the `score-mismatch` method.
#include "distill/score_mismatch/score_mismatch.hpp"

#include <torch/torch.h>

#include "core/error.hpp"
#include "core/registry.hpp"
#include "core/text.hpp"
#include "core/trainer.hpp"
#include "models/conversions.hpp"
#include "models/ema.hpp"
#include "models/latent_generator.hpp"
#include "models/network.hpp"
#include "samplers/latent.hpp"

namespace onestep {

NoiseLevels NoiseLevels::ddpm(int64_t count, double beta_min, double beta_max) {
    TORCH_CHECK(count >= 1, "NoiseLevels: at least one level");
    at::Tensor beta = torch::linspace(beta_min, beta_max, count, torch::kDouble);
    at::Tensor alpha_bar = torch::cumprod(1 - beta, 0);
    NoiseLevels levels;
    at::Tensor sigma = torch::sqrt(1 - alpha_bar);
    levels.sigma = sigma.to(torch::kFloat);
    levels.t = (1 / (1 + sigma)).to(torch::kFloat);   // x_t = t (x + sigma eps): (1 - t) / t = sigma
    return levels;
}

at::Tensor predict_noise(VelocityNet& score, const at::Tensor& noisy, const at::Tensor& level, const NoiseLevels& levels) {
    at::Tensor t = levels.t.to(noisy.device()).index_select(0, level);
    return score.forward(broadcast_time(t, noisy) * noisy, t, at::Tensor());
}

namespace {

// x_i = x + sigma_i eps at levels i ~ U{0..T-1}, one per sample.
struct Noised {
    at::Tensor level, epsilon, noisy;
};

Noised noise_at_random_levels(const at::Tensor& x, const NoiseLevels& levels) {
    Noised noised;
    noised.level = torch::randint(0, levels.sigma.size(0), {x.size(0)}, x.options().dtype(torch::kLong));
    noised.epsilon = torch::randn_like(x);
    at::Tensor sigma = broadcast_time(levels.sigma.to(x.device()).index_select(0, noised.level), x);
    noised.noisy = x + sigma * noised.epsilon;
    return noised;
}

// Freezes MODULE's parameters for one scope: the generator's loss runs through S without
// leaving gradients in it.
class FrozenScope {
  public:
    explicit FrozenScope(torch::nn::Module& module) {
        for (auto& parameter : module.parameters())
            if (parameter.requires_grad()) {
                parameter.set_requires_grad(false);
                frozen_.push_back(parameter);
            }
    }
    ~FrozenScope() {
        for (auto& parameter : frozen_) parameter.set_requires_grad(true);
    }
    FrozenScope(const FrozenScope&) = delete;
    FrozenScope& operator=(const FrozenScope&) = delete;

  private:
    std::vector<at::Tensor> frozen_;
};

}  // namespace

at::Tensor denoising_loss(VelocityNet& score, const at::Tensor& x, const NoiseLevels& levels) {
    Noised noised = noise_at_random_levels(x, levels);
    return (predict_noise(score, noised.noisy, noised.level, levels) - noised.epsilon).pow(2).mean();
}

at::Tensor generator_loss(VelocityNet& score, const at::Tensor& x_generated, const NoiseLevels& levels) {
    // The graph is built without S's parameters, so restoring them after the forward is safe.
    FrozenScope frozen(score);
    return denoising_loss(score, x_generated, levels);
}

at::Tensor mismatch_loss(VelocityNet& score, const at::Tensor& x_generated, const NoiseLevels& levels, bool zero_target) {
    Noised noised = noise_at_random_levels(x_generated.detach(), levels);
    // The target must not be the added noise: that would teach S to denoise G's samples correctly.
    at::Tensor target = zero_target ? torch::zeros_like(noised.noisy) : torch::randn_like(noised.noisy);
    return (predict_noise(score, noised.noisy, noised.level, levels) - target).pow(2).mean();
}

at::Tensor r1_penalty(VelocityNet& score, const at::Tensor& x, const NoiseLevels& levels) {
    Noised noised = noise_at_random_levels(x.detach(), levels);
    at::Tensor noisy = noised.noisy.requires_grad_(true);
    at::Tensor output = predict_noise(score, noisy, noised.level, levels).sum();
    at::Tensor gradient = torch::autograd::grad({output}, {noisy}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    return gradient.pow(2).flatten(1).sum(1).mean();
}

namespace {

OptionTable score_mismatch_options() {
    OptionTable table = network_options("unet");
    table.merge(latent_generator_options("dcgan", 100));
    table.add_int("smm.levels", 10, 1, 1000, "T: the fixed noise levels (small noise only: sigma <= 0.31 at T = 10)")
        .add_float("smm.beta_min", 1e-4, 1e-8, 0.5, "beta_1 of the levels' linspace")
        .add_float("smm.beta_max", 0.02, 1e-8, 0.5, "beta_T of the levels' linspace")
        .add_choice("smm.mismatch_target", "noise", {"noise", "zero"},
                    "L_mis's target on generated samples: an independent noise eps2 (the paper) or 0 (same expected "
                    "gradient, less variance)")
        .add_float("smm.generator_lr_scale", 1.0, 1e-6, 1e6,
                   "the generator's learning rate as a multiple of optim.lr (the score net's): below 1 slows the "
                   "generator against its critic (two time-scale updates)")
        .add_float("smm.r1_gamma", 0.0, 0.0, 1e6, "gamma of the lazy R1 penalty on S's input gradient at real data (0: off)")
        .add_int("smm.r1_every", 16, 1, 1000000, "the R1 penalty's interval, weighted by it (lazy regularisation)");
    return table;
}

class ScoreMismatchMethod : public Method {
  public:
    void build(const Config& config, const DataShape& data, const torch::Device& device) override {
        data_ = data;
        if (config.get_float("smm.beta_min") > config.get_float("smm.beta_max"))
            throw UserError("smm.beta_min " + number_text(config.get_float("smm.beta_min")) + " is above smm.beta_max " +
                            number_text(config.get_float("smm.beta_max")));
        levels_ = NoiseLevels::ddpm(config.get_int("smm.levels"), config.get_float("smm.beta_min"),
                                    config.get_float("smm.beta_max"));
        zero_target_ = config.get_string("smm.mismatch_target") == "zero";
        r1_gamma_ = config.get_float("smm.r1_gamma");
        r1_every_ = config.get_int("smm.r1_every");
        // Unconditional, as in the paper: labels of a labelled dataset are not used.
        score_ = make_network(config, NetworkShape{data.sample_shape, 0, 0});
        generator_ = make_latent_generator(config, data.sample_shape);
        generator_ema_ = generator_->make_sibling();
        score_->to(device);
        generator_->to(device);
        generator_ema_->to(device);
        ema_ = std::make_unique<Ema>(generator_, generator_ema_, config.get_float("ema.decay"), config.get_bool("ema.warmup"));
        score_optimizer_ = make_optimizer(score_->parameters(), config);
        generator_optimizer_ = make_optimizer(generator_->parameters(), config);
        base_lr_ = config.get_float("optim.lr");
        generator_lr_ = base_lr_ * config.get_float("smm.generator_lr_scale");
        set_learning_rate(*generator_optimizer_, generator_lr_);
    }

    std::map<std::string, double> train_step(const Batch& batch, StepContext& context) override {
        at::Tensor x = batch.x;
        std::map<std::string, double> metrics;
        score_->train();
        generator_->train();
        // Score step: DSM on real data, mismatch on the generator's detached samples.
        at::Tensor x_generated;
        {
            torch::NoGradGuard no_grad;
            x_generated = generator_->forward(draw_latent(x));
        }
        at::Tensor match = denoising_loss(*score_, x, levels_);
        at::Tensor mismatch = mismatch_loss(*score_, x_generated, levels_, zero_target_);
        at::Tensor score_loss = match + mismatch;
        if (r1_gamma_ > 0 && context.step() % r1_every_ == 0) {
            at::Tensor penalty = r1_penalty(*score_, x, levels_);
            score_loss = score_loss + static_cast<double>(r1_every_) * (r1_gamma_ / 2) * penalty;
            last_r1_ = penalty.item<double>();
        }
        if (r1_gamma_ > 0) metrics["r1"] = last_r1_;   // every step, so log averages are not diluted
        metrics["grad_norm_score"] = context.optimize("score", score_loss);
        metrics["loss_match"] = match.item<double>();
        metrics["loss_mismatch"] = mismatch.item<double>();

        // Generator step: the frozen S should denoise G's samples as if they were real.
        at::Tensor loss_g = generator_loss(*score_, generator_->forward(draw_latent(x)), levels_);
        metrics["grad_norm_generator"] = context.optimize("generator", loss_g);
        metrics["loss_generator"] = loss_g.item<double>();
        return metrics;
    }

    std::vector<NamedModule> modules() override {
        return {{"generator", generator_}, {"ema", generator_ema_}, {"score", score_}};
    }
    std::vector<NamedOptimizer> optimizers() override {
        return {{"score", score_optimizer_.get(), base_lr_}, {"generator", generator_optimizer_.get(), generator_lr_}};
    }
    std::vector<Ema*> emas() override { return {ema_.get()}; }

    std::unique_ptr<Sampler> make_sampler() override {
        generator_ema_->eval();
        return std::make_unique<LatentSampler>(generator_ema_, data_.sample_shape);
    }

  private:
    at::Tensor draw_latent(const at::Tensor& like) const {
        return torch::randn({like.size(0), generator_->latent_dim()}, like.options());   // as many as the real batch
    }

    DataShape data_;
    NoiseLevels levels_;
    bool zero_target_ = false;
    double r1_gamma_ = 0;
    int64_t r1_every_ = 16;
    double last_r1_ = 0;        // the latest R1 penalty (logged only)
    double base_lr_ = 0;        // the score net's rate
    double generator_lr_ = 0;   // base_lr_ x smm.generator_lr_scale
    std::shared_ptr<VelocityNet> score_;
    std::shared_ptr<LatentGenerator> generator_;
    std::shared_ptr<LatentGenerator> generator_ema_;
    std::unique_ptr<Ema> ema_;
    std::unique_ptr<torch::optim::Optimizer> score_optimizer_;
    std::unique_ptr<torch::optim::Optimizer> generator_optimizer_;
};

}  // namespace

void register_score_mismatch_method() {
    register_method({"score-mismatch",
                     "Score Mismatching: an unconditional latent generator trained from scratch against a denoiser "
                     "that learns real data's noise and no denoising direction on generated samples",
                     score_mismatch_options, [] { return std::make_unique<ScoreMismatchMethod>(); }});
}

}  // namespace onestep
