// Per-sample distances between generated and target samples (image-methods spec §3.10), shared by
// the distillation losses that regress a student onto teacher outputs.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace onestep {

// Per-sample distance [N] between A and B (each [N, ...]): "l2" is the mean squared difference,
// "pseudo-huber" sqrt(||a - b||^2 + c^2) - c with c = HUBER_C, or 0.00054 sqrt(D) when HUBER_C is 0;
// "elementwise-huber" (LCM) the mean over elements of sqrt((a - b)^2 + c^2) - c, c = HUBER_C or 0.001.
at::Tensor sample_distance(const at::Tensor& a, const at::Tensor& b, const std::string& kind, double huber_c = 0);

}  // namespace onestep
