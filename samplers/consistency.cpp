// The consistency function and the multistep consistency sampler.
#include "samplers/consistency.hpp"

#include <torch/torch.h>

#include "core/error.hpp"
#include "models/conversions.hpp"
#include "models/network.hpp"
#include "samplers/sampler.hpp"

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

}  // namespace onestep
