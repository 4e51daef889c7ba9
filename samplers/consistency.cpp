// The consistency function and the multistep consistency sampler.
#include "samplers/consistency.hpp"

#include <torch/torch.h>

#include <cstdio>

#include "core/error.hpp"
#include "models/conversions.hpp"
#include "models/denoiser.hpp"
#include "models/network.hpp"
#include "samplers/ode.hpp"

namespace onestep {

at::Tensor consistency_function(VelocityNet& net, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) {
    return x_t + (1 - broadcast_time(t, x_t)) * net.forward(x_t, t, labels);
}

at::Tensor consistency_times(const at::Tensor& grid, int64_t k) {
    const int64_t intervals = grid.numel() - 1;
    if (k < 1 || k > intervals)
        throw UserError("consistency sampling takes 1 to " + std::to_string(intervals) +
                        " steps (the training grid's intervals), got " + std::to_string(k));
    at::Tensor index = (torch::arange(k, torch::kLong) * intervals).div(k, "floor");   // ⌊jN/k⌋
    return grid.to(torch::kDouble).index_select(0, index);
}

at::Tensor consistency_sample(VelocityNet& net, const at::Tensor& noise, const at::Tensor& labels, const at::Tensor& grid,
                              int64_t k, uint64_t seed) {
    torch::NoGradGuard no_grad;
    at::Tensor times = consistency_times(grid, k);
    auto generator = at::make_generator<at::CPUGeneratorImpl>(fresh_noise_seed(seed));
    const int64_t n = noise.size(0);
    at::Tensor estimate = consistency_function(net, noise, torch::zeros({n}, noise.options()), labels);
    for (int64_t j = 1; j < k; ++j) {
        const double tau = times[j].item<double>();
        at::Tensor xi = at::randn(noise.sizes(), generator, noise.options().device(torch::kCPU)).to(noise.device());
        at::Tensor x = (1 - tau) * xi + tau * estimate;
        estimate = consistency_function(net, x, torch::full({n}, tau, noise.options()), labels);
    }
    return estimate;
}

ConsistencySampler::ConsistencySampler(std::shared_ptr<VelocityNet> net, at::Tensor grid, std::vector<int64_t> sample_shape,
                                       std::vector<std::string> class_names, int64_t num_classes,
                                       std::string default_sampler, int64_t default_steps)
    : net_(std::move(net)),
      grid_(std::move(grid)),
      sample_shape_(std::move(sample_shape)),
      class_names_(std::move(class_names)),
      num_classes_(num_classes),
      default_sampler_(std::move(default_sampler)),
      default_steps_(default_steps) {
    // The student never saw the null label, so the ODE path offers no guidance either.
    auto denoiser = std::make_shared<NetworkDenoiser>(net_, Parameterisation::Velocity, num_classes_, false);
    ode_ = std::make_unique<OdeSampler>(denoiser, sample_shape_, class_names_,
                                        default_sampler_ == "consistency" ? "euler" : default_sampler_, default_steps_);
}

ConsistencySampler::~ConsistencySampler() = default;

SampleOptions ConsistencySampler::with_defaults(const SampleOptions& options) const {
    SampleOptions filled = options;
    if (filled.sampler.empty() || filled.sampler == "one-step") {
        if (filled.sampler == "one-step" && filled.steps > 1)
            throw UserError("the one-step sampler takes exactly 1 step; for more use --sampler consistency");
        if (filled.sampler == "one-step") filled.steps = 1;
        filled.sampler = filled.sampler.empty() ? default_sampler_ : "consistency";
    }
    if (filled.sampler != "consistency" && filled.sampler != "euler" && filled.sampler != "heun" && filled.sampler != "ddim")
        throw UserError("--sampler " + filled.sampler + ": this model samples with consistency (one-step), euler, heun or ddim");
    if (filled.steps == 0) filled.steps = filled.sampler == default_sampler_ ? default_steps_ : 1;
    if (filled.sampler == "consistency") {
        consistency_times(grid_, filled.steps);   // checks the step count
        if (filled.guidance != 1.0)
            throw UserError("guidance needs a null label, and this consistency model was never trained without labels; "
                            "distil at a fixed guidance (consistency.guidance) instead");
    }
    return filled;
}

at::Tensor ConsistencySampler::sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) {
    SampleOptions filled = with_defaults(options);
    if (filled.sampler != "consistency") return ode_->sample(noise, labels, filled);
    net_->eval();
    at::Tensor y = labels.defined() && num_classes_ > 0 ? labels : torch::zeros({noise.size(0)}, torch::kLong);
    return consistency_sample(*net_, noise, y.to(noise.device()), grid_, filled.steps, filled.seed);
}

int64_t ConsistencySampler::nfe(const SampleOptions& options) const {
    SampleOptions filled = with_defaults(options);
    return filled.sampler == "consistency" ? filled.steps : ode_->nfe(filled);
}

std::string ConsistencySampler::describe(const SampleOptions& options) const {
    SampleOptions filled = with_defaults(options);
    if (filled.sampler != "consistency") return ode_->describe(filled);
    return "consistency, " + std::to_string(filled.steps) + " steps";
}

}  // namespace onestep
