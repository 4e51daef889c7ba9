// The fused GELUs (tanh approximation and exact erf) against a float64 evaluation of the same
// formula and against libtorch's kernels: values, gradients, odd sizes and strides, the fallbacks
// and double backward.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "models/gelu.hpp"

namespace {

// Inputs across the whole useful range: dense near 0 (where the derivative changes sign), the
// saturated tails and exact zeros; 10 007 elements, not a multiple of the kernel's block.
at::Tensor test_inputs() {
    torch::manual_seed(3);
    return torch::cat({torch::linspace(-12, 12, 4001), torch::randn({6000}) * 3, torch::zeros({6})});
}

// The largest |a - b| relative to max(1, |reference|).
double scaled_error(const at::Tensor& a, const at::Tensor& b, const at::Tensor& reference) {
    at::Tensor scale = reference.abs().clamp_min(1.0);
    return ((a.to(torch::kDouble) - b.to(torch::kDouble)).abs() / scale.to(torch::kDouble)).max().item<double>();
}

// Each fused GELU beside libtorch's name for the same function.
struct Variant {
    const char* approximate;
    at::Tensor (*fused)(const at::Tensor&);
};
const Variant kVariants[] = {{"tanh", onestep::gelu_tanh}, {"none", onestep::gelu_erf}};

}  // namespace

TEST_CASE("the fused GELUs match the formula in float64 and libtorch's kernels", "[unit]") {
    const Variant& variant = GENERATE(kVariants[0], kVariants[1]);
    INFO("approximate=" << variant.approximate);
    at::Tensor x = test_inputs();
    at::Tensor exact = at::gelu(x.to(torch::kDouble), variant.approximate);
    at::Tensor fused = variant.fused(x);
    at::Tensor library = at::gelu(x, variant.approximate);
    CHECK(fused.scalar_type() == torch::kFloat);
    CHECK(scaled_error(fused, exact, exact) < 1e-6);
    CHECK(scaled_error(fused, library, exact) < 1e-6);
    CHECK(scaled_error(library, exact, exact) < 1e-6);
}

TEST_CASE("the fused GELU gradients match the float64 derivatives", "[unit]") {
    const Variant& variant = GENERATE(kVariants[0], kVariants[1]);
    INFO("approximate=" << variant.approximate);
    at::Tensor x = test_inputs();
    // With an incoming gradient of ones the backward returns GELU'(x) itself.
    at::Tensor ones = torch::ones_like(x);
    at::Tensor exact = at::gelu_backward(ones.to(torch::kDouble), x.to(torch::kDouble), variant.approximate);
    at::Tensor leaf = x.clone().requires_grad_(true);
    variant.fused(leaf).backward(ones);
    double fused_error = (leaf.grad().to(torch::kDouble) - exact).abs().max().item<double>();
    double library_error =
        (at::gelu_backward(ones, x, variant.approximate).to(torch::kDouble) - exact).abs().max().item<double>();
    INFO("fused " << fused_error << ", libtorch " << library_error);
    // Eigen's rational tanh is off by up to ~4 ulp near |u| = 4, where 1 - t^2 amplifies it;
    // libtorch's kernel stays near 1e-6. Both are far below what a float32 training step resolves.
    CHECK(fused_error < 5e-6);
    CHECK(library_error < 2e-6);

    // Any incoming gradient scales the derivative element by element.
    at::Tensor grad = torch::randn_like(x) * 2;
    at::Tensor again = x.clone().requires_grad_(true);
    variant.fused(again).backward(grad);
    CHECK(torch::allclose(again.grad(), grad * leaf.grad(), 1e-6, 1e-6));
}

TEST_CASE("the fused GELUs take strided inputs and run on several threads", "[unit]") {
    const Variant& variant = GENERATE(kVariants[0], kVariants[1]);
    INFO("approximate=" << variant.approximate);
    at::Tensor x = torch::randn({64, 300}) * 4;
    at::Tensor transposed = x.t();   // not contiguous
    at::Tensor exact = at::gelu(transposed.to(torch::kDouble), variant.approximate);
    int threads = at::get_num_threads();
    at::set_num_threads(2);
    at::Tensor fused = variant.fused(transposed);
    at::set_num_threads(threads);
    CHECK(fused.sizes() == transposed.sizes());
    CHECK(scaled_error(fused, exact, exact) < 1e-6);
}

TEST_CASE("the fused GELUs fall back to libtorch for other dtypes and keep double backward", "[unit]") {
    const Variant& variant = GENERATE(kVariants[0], kVariants[1]);
    INFO("approximate=" << variant.approximate);
    at::Tensor x = torch::randn({257}) * 3;
    at::Tensor x64 = x.to(torch::kDouble);
    CHECK(variant.fused(x64).scalar_type() == torch::kDouble);
    CHECK(torch::equal(variant.fused(x64), at::gelu(x64, variant.approximate)));
    at::Tensor half = x.to(torch::kBFloat16);
    CHECK(torch::equal(variant.fused(half), at::gelu(half, variant.approximate)));

    // With create_graph the first derivative is itself differentiable: d2/dx2 matches libtorch's.
    auto second_derivative = [&](bool fused) {
        at::Tensor leaf = x.clone().requires_grad_(true);
        at::Tensor y = fused ? variant.fused(leaf) : at::gelu(leaf, variant.approximate);
        at::Tensor first = torch::autograd::grad({y.sum()}, {leaf}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
        return torch::autograd::grad({first.sum()}, {leaf})[0];
    };
    CHECK(torch::allclose(second_derivative(true), second_derivative(false), 1e-5, 1e-6));
}
