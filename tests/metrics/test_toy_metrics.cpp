// The eight-Gaussians metrics: sliced W1 against a known shift, MMD^2 of a set with itself, and the
// mode report (high-quality share, shares, coverage, conditional accuracy on fine and coarse labels).
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>

#include "metrics/toy.hpp"

using namespace onestep;

namespace {

at::Tensor mode_points(int64_t per_mode) {   // PER_MODE copies of each mode, mode k at rows k*PER_MODE..
    const double pi = 3.14159265358979323846;
    at::Tensor angles = torch::arange(8, torch::kDouble).repeat_interleave(per_mode) * (2 * pi / 8);
    return 2.0 * torch::stack({torch::cos(angles), torch::sin(angles)}, 1);
}

}  // namespace

TEST_CASE("sliced W1 is zero for equal sets and the mean |projection| of a shift otherwise", "[unit]") {
    torch::manual_seed(2);
    at::Tensor a = torch::randn({500, 2}, torch::kDouble);
    CHECK(sliced_wasserstein1(a, a) == Approx(0.0).margin(1e-12));
    // Shifting by (s, 0) moves every projection on theta by s cos(theta): the mean of |cos| over
    // the 128 directions theta_p = pi p / 128.
    const double pi = 3.14159265358979323846;
    double mean_cos = 0;
    for (int p = 0; p < 128; ++p) mean_cos += std::abs(std::cos(pi * p / 128)) / 128;
    at::Tensor shifted = a + torch::tensor({0.5, 0.0}, torch::kDouble);
    CHECK(sliced_wasserstein1(a, shifted) == Approx(0.5 * mean_cos).epsilon(1e-9));
    CHECK(mmd2_unbiased(a, shifted) > mmd2_unbiased(a, a + 1e-9));
}

TEST_CASE("the mode report counts shares, quality and conditional accuracy for fine and coarse labels", "[unit]") {
    at::Tensor points = mode_points(10);
    ModeReport exact = eight_gaussians_modes(points);
    CHECK(exact.high_quality == 1.0);
    CHECK(exact.modes_covered == 8);
    for (double share : exact.mode_share) CHECK(share == Approx(0.125));
    CHECK(exact.conditional_accuracy == -1);   // no labels

    at::Tensor fine = torch::arange(8, torch::kLong).repeat_interleave(10);
    CHECK(eight_gaussians_modes(points, fine, 8).conditional_accuracy == 1.0);
    CHECK(eight_gaussians_modes(points, torch::div(fine, 2, "floor"), 4).conditional_accuracy == 1.0);
    CHECK(eight_gaussians_modes(points, (fine + 1) % 8, 8).conditional_accuracy == 0.0);
    // Coarse class c holds modes 2c and 2c + 1: labelling mode k as class (k + 1) / 2 mod 4 is right
    // for the odd modes only.
    at::Tensor shifted = torch::remainder(torch::div(fine + 1, 2, "floor"), 4);
    CHECK(eight_gaussians_modes(points, shifted, 4).conditional_accuracy == Approx(0.5));

    // Half the points pushed 0.5 off their mode: outside 3 std, still nearest to it.
    at::Tensor off = points.clone();
    off.slice(0, 0, 40) *= 1.25;
    ModeReport report = eight_gaussians_modes(off);
    CHECK(report.high_quality == Approx(0.5));
    CHECK(report.modes_covered == 8);
}
