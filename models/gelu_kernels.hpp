// Vectorised GELU loops over float32 arrays, compiled for AVX2 + FMA in their own translation unit
// (no libtorch headers there, so no libtorch code is built with those flags). Call them only when
// supported() is true.
#pragma once
#include <cstdint>

namespace onestep::gelu_kernels {

// True when this CPU runs AVX2 and FMA instructions.
bool supported();
// The tanh approximation: y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), N elements.
void forward_tanh(const float* x, float* y, int64_t n);
// out = grad * dy/dx of the tanh approximation, N elements.
void backward_tanh(const float* grad, const float* x, float* out, int64_t n);
// The exact GELU: y = 0.5 x (1 + erf(x / sqrt 2)), N elements.
void forward_erf(const float* x, float* y, int64_t n);
// out = grad * (Phi(x) + x phi(x)), N elements.
void backward_erf(const float* grad, const float* x, float* out, int64_t n);

}  // namespace onestep::gelu_kernels
