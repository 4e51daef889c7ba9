// GELU as autograd functions whose float32 CPU forward and backward are single fused passes
// (Eigen's vectorised tanh, erf and exp, AVX2) instead of libtorch's kernels; other CPUs, dtypes
// and devices use at::gelu.
//
//   at::Tensor hidden = onestep::gelu_tanh(mlp_in(x));   // same values as torch::gelu(x, "tanh")
//   at::Tensor hidden = onestep::gelu_erf(ffn_in(x));    // same values as torch::gelu(x)
#pragma once
#include <ATen/core/Tensor.h>

namespace onestep {

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the DiT's GELU.
at::Tensor gelu_tanh(const at::Tensor& x);

// The exact GELU 0.5 x (1 + erf(x / sqrt 2)), the RoFormer's.
at::Tensor gelu_erf(const at::Tensor& x);

// Benchmarks switch the fused paths off (false) to time libtorch's kernels in the same model.
void set_fused_gelu_enabled(bool enabled);

}  // namespace onestep
