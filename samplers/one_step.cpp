// The one-step generator and its Sampler.
#include "samplers/one_step.hpp"

#include <torch/torch.h>

#include <cstdio>

#include "core/error.hpp"
#include "models/conversions.hpp"
#include "models/denoiser.hpp"
#include "models/network.hpp"
#include "samplers/consistency.hpp"
#include "samplers/ode.hpp"

namespace onestep {

at::Tensor one_step_generate(VelocityNet& net, const at::Tensor& noise, const at::Tensor& labels, double t0) {
    at::Tensor t = torch::full({noise.size(0)}, t0, noise.options());
    return noise + (1.0 - t0) * net.forward(noise, t, labels);   // G(z, y) = z + (1 - t0) v(z, t0, y)
}

OneStepSampler::OneStepSampler(std::shared_ptr<VelocityNet> net, double t0, std::vector<int64_t> sample_shape,
                               std::vector<std::string> class_names, int64_t num_classes, std::string default_sampler,
                               int64_t default_steps, at::Tensor consistency_grid)
    : net_(std::move(net)),
      t0_(t0),
      sample_shape_(std::move(sample_shape)),
      class_names_(std::move(class_names)),
      num_classes_(num_classes),
      default_sampler_(std::move(default_sampler)),
      default_steps_(default_steps),
      consistency_grid_(std::move(consistency_grid)) {
    TORCH_CHECK(!consistency_grid_.defined() || t0_ == 0.0, "a consistency student samples from t0 = 0");
    // The student never saw the null label, so the ODE path offers no guidance either.
    auto denoiser = std::make_shared<NetworkDenoiser>(net_, Parameterisation::Velocity, num_classes_, false);
    ode_ = std::make_unique<OdeSampler>(denoiser, sample_shape_, class_names_,
                                        default_sampler_ == "one-step" || default_sampler_ == "consistency"
                                            ? "euler"
                                            : default_sampler_,
                                        default_steps_);
}

OneStepSampler::~OneStepSampler() = default;

SampleOptions OneStepSampler::with_defaults(const SampleOptions& options) const {
    SampleOptions filled = options;
    if (filled.sampler.empty()) filled.sampler = default_sampler_;
    const bool consistency = consistency_grid_.defined();
    if (filled.sampler != "one-step" && filled.sampler != "euler" && filled.sampler != "heun" && filled.sampler != "ddim" &&
        !(consistency && filled.sampler == "consistency"))
        throw UserError("--sampler " + filled.sampler + ": this model samples with " +
                        (consistency ? "consistency, one-step, euler, heun or ddim" : "one-step, euler, heun or ddim"));
    // An unset step count: the configured one for the configured sampler; one for any other.
    if (filled.steps == 0) filled.steps = filled.sampler == default_sampler_ ? default_steps_ : 1;
    if (filled.sampler == "one-step" && filled.steps != 1)
        throw UserError("the one-step sampler takes exactly 1 step (got " + std::to_string(filled.steps) + "); for more " +
                        (consistency ? "use --sampler consistency (or an ODE: euler, heun, ddim)"
                                     : "steps of the same network use --sampler euler, heun or ddim"));
    if (filled.sampler == "consistency") consistency_times(consistency_grid_, filled.steps);   // checks the count
    if ((filled.sampler == "one-step" || filled.sampler == "consistency") && filled.guidance != 1.0)
        throw UserError("guidance needs a null label, and this generator was never trained without labels");
    return filled;
}

at::Tensor OneStepSampler::sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) {
    SampleOptions filled = with_defaults(options);
    if (filled.sampler != "one-step" && filled.sampler != "consistency") return ode_->sample(noise, labels, filled);
    torch::NoGradGuard no_grad;
    net_->eval();
    at::Tensor y = labels.defined() && num_classes_ > 0 ? labels : torch::zeros({noise.size(0)}, torch::kLong);
    y = y.to(noise.device());
    if (filled.sampler == "consistency")
        return consistency_sample(*net_, noise, y, consistency_grid_, filled.steps, filled.seed);
    return one_step_generate(*net_, noise, y, t0_);
}

int64_t OneStepSampler::nfe(const SampleOptions& options) const {
    SampleOptions filled = with_defaults(options);
    if (filled.sampler == "consistency") return filled.steps;
    return filled.sampler == "one-step" ? 1 : ode_->nfe(filled);
}

std::string OneStepSampler::describe(const SampleOptions& options) const {
    SampleOptions filled = with_defaults(options);
    if (filled.sampler == "consistency") return "consistency, " + std::to_string(filled.steps) + " steps";
    if (filled.sampler != "one-step") return ode_->describe(filled);
    char text[64];
    std::snprintf(text, sizeof text, "one-step, 1 steps (t0 = %g)", t0_);
    return text;
}

}  // namespace onestep
