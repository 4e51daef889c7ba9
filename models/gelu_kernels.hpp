// Vectorised tanh-GELU loops over float32 arrays, compiled for AVX2 + FMA in their own
// translation unit (no libtorch headers there, so no libtorch code is built with those flags).
// Call them only when supported() is true.
#pragma once
#include <cstdint>

namespace onestep::gelu_kernels {

// True when this CPU runs AVX2 and FMA instructions.
bool supported();
// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), N elements.
void forward(const float* x, float* y, int64_t n);
// out = grad * dy/dx, N elements.
void backward(const float* grad, const float* x, float* out, int64_t n);

}  // namespace onestep::gelu_kernels
