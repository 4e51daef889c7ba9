// One evaluation of a latent generator.
#include "samplers/latent.hpp"

#include <torch/torch.h>

#include "core/error.hpp"
#include "models/latent_generator.hpp"

namespace onestep {

LatentSampler::LatentSampler(std::shared_ptr<LatentGenerator> generator, std::vector<int64_t> sample_shape)
    : generator_(std::move(generator)), sample_shape_(std::move(sample_shape)) {}

std::vector<int64_t> LatentSampler::noise_shape() const { return {generator_->latent_dim()}; }

void LatentSampler::check(const SampleOptions& options) const {
    if (!options.sampler.empty() && options.sampler != "one-step")
        throw UserError("--sampler " + options.sampler + ": a latent generator has no ODE; it samples with one-step only");
    if (options.steps > 1)
        throw UserError("--steps " + std::to_string(options.steps) + ": a latent generator takes exactly 1 step");
    if (options.guidance != 1.0) throw UserError("--cfg: this generator is unconditional; there is nothing to guide");
}

at::Tensor LatentSampler::sample(const at::Tensor& noise, const at::Tensor&, const SampleOptions& options) {
    check(options);
    TORCH_CHECK(noise.dim() == 2 && noise.size(1) == generator_->latent_dim(), "LatentSampler: noise must be [N, ",
                generator_->latent_dim(), "]");
    torch::NoGradGuard no_grad;
    generator_->eval();   // BatchNorm from its running statistics
    return generator_->forward(noise);
}

int64_t LatentSampler::nfe(const SampleOptions& options) const {
    check(options);
    return 1;
}

std::string LatentSampler::describe(const SampleOptions& options) const {
    check(options);
    return "latent generator, 1 step (z in R^" + std::to_string(generator_->latent_dim()) + ")";
}

}  // namespace onestep
