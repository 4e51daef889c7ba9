// GELU with the tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as one
// autograd function whose float32 CPU forward and backward are single fused passes (Eigen's
// vectorised tanh, AVX2) instead of libtorch's kernels; other CPUs, dtypes and devices use at::gelu.
//
//   at::Tensor hidden = onestep::gelu_tanh(mlp_in(x));   // same values as torch::gelu(x, "tanh")
#pragma once
#include <ATen/core/Tensor.h>

namespace onestep {

at::Tensor gelu_tanh(const at::Tensor& x);

// Benchmarks switch the fused path off (false) to time libtorch's kernels in the same model.
void set_fused_gelu_enabled(bool enabled);

}  // namespace onestep
