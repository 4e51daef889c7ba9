// Time-convention adapters: round trips and the spec's reference values; a VP epsilon oracle
// seen through NetworkDenoiser returns the exact velocity.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "models/conversions.hpp"
#include "models/denoiser.hpp"

using namespace onestep;

TEST_CASE("velocity, x0 and noise views round-trip", "[unit]") {
    torch::manual_seed(0);
    at::Tensor x = torch::randn({6, 1, 4, 4}, torch::kDouble);
    at::Tensor z = torch::randn({6, 1, 4, 4}, torch::kDouble);
    at::Tensor t = torch::linspace(0.05, 0.95, 6, torch::kDouble);
    at::Tensor tb = broadcast_time(t, x);
    at::Tensor x_t = (1 - tb) * z + tb * x;
    at::Tensor v = x - z;
    CHECK(torch::allclose(x0_from_velocity(x_t, t, v), x, 1e-10, 1e-10));
    CHECK(torch::allclose(noise_from_velocity(x_t, t, v), z, 1e-10, 1e-10));
    CHECK(torch::allclose(velocity_from_x0(x_t, t, x), v, 1e-10, 1e-10));
    CHECK(torch::allclose(velocity_from_noise(x_t, t, z), v, 1e-10, 1e-10));
}

TEST_CASE("EDM and VP maps round-trip and match the spec's values", "[unit]") {
    at::Tensor t = torch::linspace(0.02, 0.98, 25, torch::kDouble);
    CHECK(torch::allclose(t_from_edm_sigma(edm_sigma_from_t(t)), t, 1e-12, 1e-12));
    CHECK(torch::allclose(t_from_vp(vp_alpha(t), vp_sigma(t)), t, 1e-12, 1e-12));
    CHECK(torch::allclose(vp_alpha(t).pow(2) + vp_sigma(t).pow(2), torch::ones_like(t), 1e-12, 1e-12));
    // sigma = 80 is t = 0.0123; sigma = 0.002 is t = 0.998.
    CHECK(t_from_edm_sigma(torch::tensor({80.0}, torch::kDouble)).item<double>() == Approx(0.0123).margin(1e-4));
    at::Tensor tau = torch::tensor({0, 19, 99, 249, 499, 749, 999}, torch::kLong);
    at::Tensor expected = torch::tensor({0.990, 0.929, 0.747, 0.512, 0.226, 0.055, 0.0063});
    CHECK(torch::allclose(t_from_ddpm_index(tau), expected, 0, 1.5e-3));
    CHECK(torch::equal(ddpm_index_from_t(t_from_ddpm_index(tau)), tau));
}

namespace {

// The exact epsilon-prediction for data concentrated at one point x*: eps = (x_t - t x*)/(1 - t).
class EpsilonOracle : public VelocityNet {
  public:
    explicit EpsilonOracle(at::Tensor target) : target_(std::move(target)) {}
    at::Tensor forward(const at::Tensor& x_vp, const at::Tensor& t, const at::Tensor&, const at::Tensor&) override {
        at::Tensor tb = broadcast_time(t, x_vp);
        at::Tensor x_t = x_vp * broadcast_time(vp_scale(t), x_vp);
        return (x_t - tb * target_) / (1 - tb);
    }
    std::shared_ptr<VelocityNet> make_sibling() const override { return std::make_shared<EpsilonOracle>(target_); }

  private:
    at::Tensor target_;
};

class VelocityOracle : public VelocityNet {
  public:
    explicit VelocityOracle(at::Tensor target) : target_(std::move(target)) {}
    at::Tensor forward(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor&, const at::Tensor&) override {
        return (target_ - x_t) / (1 - broadcast_time(t, x_t));
    }
    std::shared_ptr<VelocityNet> make_sibling() const override { return std::make_shared<VelocityOracle>(target_); }

  private:
    at::Tensor target_;
};

}  // namespace

TEST_CASE("a VP epsilon network seen through the adapter gives the exact velocity", "[unit]") {
    at::Tensor target = torch::tensor({{0.5, -1.0}}, torch::kDouble);
    NetworkDenoiser vp(std::make_shared<EpsilonOracle>(target), Parameterisation::VpEpsilon, 0, false);
    NetworkDenoiser flow(std::make_shared<VelocityOracle>(target), Parameterisation::Velocity, 0, false);
    at::Tensor x_t = torch::tensor({{0.1, 0.3}, {-0.7, 2.0}, {1.0, 1.0}}, torch::kDouble);
    at::Tensor t = torch::tensor({0.02, 0.5, 0.98}, torch::kDouble);
    at::Tensor labels = torch::zeros({3}, torch::kLong);
    at::Tensor exact = (target - x_t) / (1 - broadcast_time(t, x_t));
    CHECK(torch::allclose(vp.velocity(x_t, t, labels), exact, 1e-6, 1e-6));
    CHECK(torch::allclose(flow.velocity(x_t, t, labels), exact, 1e-12, 1e-12));
    CHECK(torch::allclose(vp.x0(x_t, t, labels), target.expand({3, 2}), 1e-6, 1e-6));
    CHECK(vp.t_min() == Approx(0.0063).margin(1e-4));
}
