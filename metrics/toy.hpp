// Metrics for 2-D toy samples (image-methods spec §4.1): sliced Wasserstein-1 over 128 fixed
// directions, the unbiased multi-bandwidth MMD^2, high-quality share and mode coverage for
// the eight-Gaussians layout.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace onestep {

// Mean over directions theta_p = pi p / 128 of the mean |a_(i) - b_(i)| of sorted projections.
// Sets of different sizes are compared on quantiles of the smaller size.
double sliced_wasserstein1(const at::Tensor& a, const at::Tensor& b, int64_t directions = 128);

// Unbiased MMD^2 with kernel sum_h exp(-|a-b|^2 / (2 h^2)), h in {0.1, 0.2, 0.5, 1}.
double mmd2_unbiased(const at::Tensor& a, const at::Tensor& b);

struct ModeReport {
    double high_quality = 0;          // share within 3 std (0.3) of the nearest mode
    std::vector<double> mode_share;   // share nearest to each mode
    int64_t modes_covered = 0;        // modes with share >= 0.02
    double conditional_accuracy = -1; // -1 when no labels were given
};

// Eight modes 2 (cos 2 pi k/8, sin 2 pi k/8), std 0.1. With LABELS (int64 [N]) of NUM_CLASSES 8
// (fine: label k is mode k) or 4 (coarse: label c is modes 2c, 2c + 1), also the conditional
// accuracy: the share of samples whose nearest mode belongs to their label.
ModeReport eight_gaussians_modes(const at::Tensor& samples, const at::Tensor& labels = at::Tensor(), int64_t num_classes = 0);

}  // namespace onestep
