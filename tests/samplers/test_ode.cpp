// ODE samplers: convergence order on a linear ODE with a known solution, DDIM(eta=0) = Euler,
// guidance arithmetic, time grids against the spec's reference values, determinism.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>

#include "core/error.hpp"
#include "models/conversions.hpp"
#include "samplers/ode.hpp"

using namespace onestep;

namespace {

// dx/dt = a x (+ label offset): x(1) = x(0) e^a for label-free use.
class LinearDenoiser : public Denoiser {
  public:
    explicit LinearDenoiser(double rate, int64_t classes = 0, bool null_label = false)
        : rate_(rate), classes_(classes), null_label_(null_label) {}
    at::Tensor velocity(const at::Tensor& x, const at::Tensor& t, const at::Tensor& labels) override {
        ++calls;
        at::Tensor v = rate_ * x;
        if (classes_ > 0) v = v + broadcast_time(labels.to(torch::kFloat), x);
        return v;
    }
    int64_t num_classes() const override { return classes_; }
    bool has_null_label() const override { return null_label_; }
    int64_t calls = 0;

  private:
    double rate_;
    int64_t classes_;
    bool null_label_;
};

double final_error(const std::string& method, int64_t steps) {
    LinearDenoiser denoiser(0.8);
    at::Tensor z = torch::ones({4, 2}, torch::kDouble);
    at::Tensor labels = torch::zeros({4}, torch::kLong);
    at::Tensor grid = time_grid("uniform", steps);
    at::Tensor x = method == "euler" ? euler_sample(denoiser, z, labels, grid, 1.0)
                                     : heun_sample(denoiser, z, labels, grid, 1.0);
    return (x - std::exp(0.8)).abs().max().item<double>();
}

}  // namespace

TEST_CASE("Euler converges at first order and Heun at second order", "[unit]") {
    double euler_ratio = final_error("euler", 16) / final_error("euler", 32);
    double heun_ratio = final_error("heun", 16) / final_error("heun", 32);
    CHECK(euler_ratio == Approx(2.0).epsilon(0.1));
    CHECK(heun_ratio == Approx(4.0).epsilon(0.1));
    CHECK(final_error("heun", 64) < 1e-4);
}

TEST_CASE("DDIM with eta 0 equals Euler and counts one evaluation per step", "[unit]") {
    LinearDenoiser euler_model(-0.5), ddim_model(-0.5);
    at::Tensor z = torch::randn({8, 3}, torch::kDouble);
    at::Tensor labels = torch::zeros({8}, torch::kLong);
    at::Tensor grid = time_grid("uniform", 10);
    at::Tensor by_euler = euler_sample(euler_model, z, labels, grid, 1.0);
    at::Tensor by_ddim = ddim_sample(ddim_model, z, labels, grid, 1.0, 0.0, 3);
    // Time reaches the model in float32, so the two agree to float precision.
    CHECK(torch::allclose(by_euler, by_ddim, 1e-6, 1e-6));
    CHECK(euler_model.calls == 10);
    CHECK(ddim_model.calls == 10);
}

TEST_CASE("DDIM with eta > 0 is stochastic but reproducible from its seed", "[unit]") {
    LinearDenoiser model(-0.5);
    at::Tensor z = torch::randn({8, 3});
    at::Tensor labels = torch::zeros({8}, torch::kLong);
    at::Tensor grid = time_grid("uniform", 10);
    at::Tensor a = ddim_sample(model, z, labels, grid, 1.0, 1.0, 5);
    at::Tensor b = ddim_sample(model, z, labels, grid, 1.0, 1.0, 5);
    at::Tensor c = ddim_sample(model, z, labels, grid, 1.0, 1.0, 6);
    CHECK(torch::equal(a, b));
    CHECK_FALSE(torch::allclose(a, c));
}

TEST_CASE("guidance: w = 1 is the conditional model, w = 0 the unconditional, w = 2 extrapolates", "[unit]") {
    LinearDenoiser model(0.0, 3, true);
    at::Tensor x = torch::zeros({2, 1});
    at::Tensor t = torch::full({2}, 0.5);
    at::Tensor labels = torch::tensor({1, 2}, torch::kLong);
    // v(y) = y, and the null label is 3.
    CHECK(torch::allclose(guided_velocity(model, x, t, labels, 1.0), torch::tensor({{1.0f}, {2.0f}})));
    CHECK(torch::allclose(guided_velocity(model, x, t, labels, 0.0), torch::tensor({{3.0f}, {3.0f}})));
    CHECK(torch::allclose(guided_velocity(model, x, t, labels, 2.0), torch::tensor({{-1.0f}, {1.0f}})));
    LinearDenoiser no_null(0.0, 3, false);
    CHECK_THROWS_AS(guided_velocity(no_null, x, t, labels, 2.0), UserError);
}

TEST_CASE("time grids match the spec's reference values", "[unit]") {
    at::Tensor uniform = time_grid("uniform", 4);
    CHECK(torch::allclose(uniform, torch::tensor({0.0, 0.25, 0.5, 0.75, 1.0}, torch::kDouble)));
    at::Tensor karras = time_grid("karras", 18);
    REQUIRE(karras.size(0) == 19);
    CHECK(karras[0].item<double>() == 0.0);
    CHECK(karras[1].item<double>() == Approx(0.0171).margin(5e-4));
    CHECK(karras[9].item<double>() == Approx(0.342).margin(5e-4));
    CHECK(karras[17].item<double>() == Approx(0.998).margin(5e-4));
    CHECK(karras[18].item<double>() == 1.0);
    at::Tensor skip = time_grid("ddpm-skip", 50);
    REQUIRE(skip.size(0) == 51);
    CHECK(skip[0].item<double>() == 0.0);
    CHECK(skip[50].item<double>() == 1.0);
    CHECK((skip.slice(0, 1) - skip.slice(0, 0, -1)).min().item<double>() > 0);
    CHECK_THROWS_AS(time_grid("cosine", 10), UserError);
    CHECK_THROWS_AS(time_grid("uniform", 0), UserError);
}

TEST_CASE("OdeSampler reports NFE per sampler and rejects unknown samplers", "[unit]") {
    auto model = std::make_shared<LinearDenoiser>(0.1, 3, true);
    OdeSampler sampler(model, {1}, {}, "euler", 100);
    SampleOptions options;
    CHECK(sampler.nfe(options) == 100);
    options.sampler = "heun";
    options.steps = 10;
    CHECK(sampler.nfe(options) == 20);
    options.guidance = 2.0;
    CHECK(sampler.nfe(options) == 40);
    options.sampler = "rk4";
    CHECK_THROWS_AS(sampler.nfe(options), UserError);
}
