// The consistency function and its multistep sampler (image-methods spec §1.6 and §2.3, item 6).
// f(x_t, t, y) = x_t + (1 - t) v(x_t, t, y) maps any point of a trajectory to its endpoint and is
// exact at the boundary, f(x, 1) = x. k-step sampling alternates the map with re-noising:
// x̂ = f(z, 0); for j = 1..k-1: x = (1 - τ_j) ξ_j + τ_j x̂, x̂ = f(x, τ_j), with τ_j = t_{⌊jN/k⌋}
// of the N-interval training grid. OneStepSampler, given the grid, offers it as "consistency".
//
//   at::Tensor x = consistency_sample(*student, z, y, time_grid("karras", 18), /*k=*/2, seed);
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace onestep {

class VelocityNet;

// f(x_t, t, y) = x_t + (1 - t) v(x_t, t, y), gradients flowing through v.
at::Tensor consistency_function(VelocityNet& net, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels);

// τ_j = t_{⌊jN/k⌋}, j = 0..k-1, of GRID (N + 1 points, float64): float64 [k]. A UserError unless
// 1 <= k <= N.
at::Tensor consistency_times(const at::Tensor& grid, int64_t k);

// k-step consistency sampling from NOISE; the re-noising ξ_j comes from a CPU generator seeded by
// fresh_noise_seed(SEED).
at::Tensor consistency_sample(VelocityNet& net, const at::Tensor& noise, const at::Tensor& labels, const at::Tensor& grid,
                              int64_t k, uint64_t seed);

}  // namespace onestep
