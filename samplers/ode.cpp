// Euler, Heun and DDIM over any Denoiser, and the time grids they walk.
#include "samplers/ode.hpp"

#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "core/error.hpp"
#include "models/conversions.hpp"

namespace onestep {

at::Tensor time_grid(const std::string& kind, int64_t steps) {
    if (steps < 1) throw UserError("sampling steps must be at least 1, got " + std::to_string(steps));
    if (kind == "uniform") return torch::linspace(0.0, 1.0, steps + 1, torch::kDouble);
    if (kind == "karras") {
        // t_i = karras_time(i / (N - 1)) for i < N, then t_0 := 0 and t_N := 1.
        at::Tensor fraction = steps > 1 ? torch::linspace(0.0, 1.0, steps, torch::kDouble) : torch::zeros({1}, torch::kDouble);
        at::Tensor t = torch::cat({karras_time(fraction), torch::ones({1}, torch::kDouble)});
        t[0] = 0.0;
        return t;
    }
    if (kind == "ddpm-skip") {
        // tau_n = (n+1) * 1000/N - 1 mapped to t, sorted increasing, then t_0 := 0 and t_N := 1.
        if (steps > kDdpmSteps) throw UserError("ddpm-skip supports at most 1000 steps");
        std::vector<int64_t> taus;
        for (int64_t n = 0; n < steps; ++n) taus.push_back((n + 1) * (kDdpmSteps / steps) - 1);
        at::Tensor t = std::get<0>(torch::sort(t_from_ddpm_index(torch::tensor(taus, torch::kLong)).to(torch::kDouble)));
        t = torch::cat({t, torch::ones({1}, torch::kDouble)});
        t[0] = 0.0;
        return t;
    }
    throw UserError("time grid '" + kind + "': expected uniform, karras or ddpm-skip");
}

namespace {

at::Tensor time_batch(double t, const at::Tensor& like) {
    return torch::full({like.size(0)}, t, like.options().dtype(torch::kFloat));
}

}  // namespace

at::Tensor euler_sample(Denoiser& denoiser, const at::Tensor& noise, const at::Tensor& labels, const at::Tensor& grid,
                        double guidance) {
    at::Tensor x = noise;
    auto t = grid.accessor<double, 1>();
    for (int64_t n = 0; n + 1 < grid.size(0); ++n) {
        // x <- x + (t_{n+1} - t_n) v_w(x, t_n)
        x = x + (t[n + 1] - t[n]) * guided_velocity(denoiser, x, time_batch(t[n], x), labels, guidance);
    }
    return x;
}

at::Tensor heun_sample(Denoiser& denoiser, const at::Tensor& noise, const at::Tensor& labels, const at::Tensor& grid,
                       double guidance) {
    at::Tensor x = noise;
    auto t = grid.accessor<double, 1>();
    for (int64_t n = 0; n + 1 < grid.size(0); ++n) {
        double h = t[n + 1] - t[n];
        at::Tensor v1 = guided_velocity(denoiser, x, time_batch(t[n], x), labels, guidance);
        at::Tensor predicted = x + h * v1;
        if (t[n + 1] >= 1.0 && denoiser.singular_at_one()) {
            x = predicted;
            continue;
        }
        at::Tensor v2 = guided_velocity(denoiser, predicted, time_batch(t[n + 1], x), labels, guidance);
        x = x + h * 0.5 * (v1 + v2);
    }
    return x;
}

at::Tensor ddim_sample(Denoiser& denoiser, const at::Tensor& noise, const at::Tensor& labels, const at::Tensor& grid,
                       double guidance, double eta, uint64_t seed) {
    at::Tensor x = noise;
    auto t = grid.accessor<double, 1>();
    auto generator = at::make_generator<at::CPUGeneratorImpl>(fresh_noise_seed(seed));
    for (int64_t n = 0; n + 1 < grid.size(0); ++n) {
        double ta = t[n], tb = t[n + 1];
        at::Tensor time = time_batch(ta, x);
        at::Tensor v = guided_velocity(denoiser, x, time, labels, guidance);
        at::Tensor x0 = x0_from_velocity(x, time, v);
        at::Tensor z = noise_from_velocity(x, time, v);
        at::Tensor direction = z;
        if (eta > 0 && tb < 1.0 && ta > 0.0) {
            // rho = (eta / sigma_a) sqrt(1 - alpha_a^2 / alpha_b^2) in VP terms; re-noise part of z with fresh xi.
            auto alpha = [](double s) { return s / std::sqrt(s * s + (1 - s) * (1 - s)); };
            auto sigma = [](double s) { return (1 - s) / std::sqrt(s * s + (1 - s) * (1 - s)); };
            double ratio = alpha(ta) * alpha(ta) / (alpha(tb) * alpha(tb));
            double rho = std::min(1.0, (eta / sigma(ta)) * std::sqrt(std::max(0.0, 1 - ratio)));
            at::Tensor xi = at::randn(x.sizes(), generator, x.options().device(torch::kCPU)).to(x.device());
            direction = std::sqrt(1 - rho * rho) * z + rho * xi;
        }
        // x_b = t_b x0 + (1 - t_b) z: exactly the Euler step when eta = 0.
        x = tb * x0 + (1 - tb) * direction;
    }
    return x;
}

OdeSampler::OdeSampler(std::shared_ptr<Denoiser> denoiser, std::vector<int64_t> sample_shape,
                       std::vector<std::string> class_names, std::string default_sampler, int64_t default_steps)
    : denoiser_(std::move(denoiser)), sample_shape_(std::move(sample_shape)), class_names_(std::move(class_names)),
      default_sampler_(std::move(default_sampler)), default_steps_(default_steps) {}

std::string OdeSampler::sampler_name(const SampleOptions& options) const {
    std::string name = options.sampler.empty() ? default_sampler_ : options.sampler;
    if (name != "euler" && name != "heun" && name != "ddim")
        throw UserError("--sampler " + name + ": this model samples with euler, heun or ddim");
    return name;
}

int64_t OdeSampler::steps(const SampleOptions& options) const {
    return options.steps > 0 ? options.steps : default_steps_;
}

int64_t OdeSampler::nfe(const SampleOptions& options) const {
    int64_t n = steps(options);
    int64_t per_step = options.guidance != 1.0 ? 2 : 1;
    if (sampler_name(options) == "heun") return per_step * (denoiser_->singular_at_one() ? 2 * n - 1 : 2 * n);
    return per_step * n;
}

std::string OdeSampler::describe(const SampleOptions& options) const {
    std::string text = sampler_name(options) + ", " + std::to_string(steps(options)) + " steps (" + options.grid + ")";
    if (options.guidance != 1.0) {
        std::ostringstream weight;
        weight << options.guidance;
        text += ", w=" + weight.str();
    }
    return text;
}

at::Tensor OdeSampler::sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) {
    at::Tensor grid = time_grid(options.grid, steps(options));
    std::string name = sampler_name(options);
    if (name == "heun") return heun_sample(*denoiser_, noise, labels, grid, options.guidance);
    if (name == "ddim") return ddim_sample(*denoiser_, noise, labels, grid, options.guidance, options.eta, options.seed);
    return euler_sample(*denoiser_, noise, labels, grid, options.guidance);
}

}  // namespace onestep
