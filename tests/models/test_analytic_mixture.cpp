// The analytic eight-Gaussians teacher: its velocity at t = 0 (the label's mean), against a Monte
// Carlo estimate of E[x - z | x_t] from mixture samples, its samples through the CLI against the
// spec's reference values, and pairs made from it.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "models/analytic_mixture.hpp"
#include "samplers/teacher_pairs.hpp"
#include "support.hpp"

using namespace onestep;
using Catch::Matchers::Contains;

namespace {

const std::string kOnestep = ONESTEP_BINARY;

at::Tensor mode(int64_t k) {
    return 2 * torch::tensor({std::cos(2 * M_PI * k / 8), std::sin(2 * M_PI * k / 8)}, torch::kDouble);
}

}  // namespace

TEST_CASE("the analytic teacher's velocity at t = 0 points from x to the label's mean", "[unit]") {
    at::Tensor x = torch::tensor({{0.3, -0.2}, {1.0, 1.0}}, torch::kDouble);
    at::Tensor t = torch::zeros({2}, torch::kDouble);
    at::Tensor none = torch::zeros({2}, torch::kLong);

    GaussianMixtureDenoiser unconditional(MixtureLabels::None);
    CHECK(torch::allclose(unconditional.velocity(x, t, none), -x, 1e-9, 1e-12));   // the mixture's mean is 0
    CHECK(unconditional.num_classes() == 0);

    GaussianMixtureDenoiser fine(MixtureLabels::Fine);
    at::Tensor labels = torch::tensor({3, 5}, torch::kLong);
    at::Tensor expected = torch::stack({mode(3), mode(5)}) - x;
    CHECK(torch::allclose(fine.velocity(x, t, labels), expected, 1e-9, 1e-12));
    // The null label (8) allows every mode.
    CHECK(torch::allclose(fine.velocity(x, t, torch::full({2}, 8, torch::kLong)), -x, 1e-9, 1e-12));

    GaussianMixtureDenoiser coarse(MixtureLabels::Coarse);
    CHECK(coarse.num_classes() == 4);
    at::Tensor pair_mean = (mode(2) + mode(3)) / 2;
    CHECK(torch::allclose(coarse.velocity(x, t, torch::tensor({1, 1}, torch::kLong)), pair_mean - x, 1e-9, 1e-12));
    CHECK(coarse.class_names().at(1) == "modes 2-3");
}

TEST_CASE("the analytic velocity equals a Monte Carlo estimate of E[x - z | x_t]", "[unit]") {
    // x ~ mixture, x_t = (1 - t) z + t x: given x, x_t ~ N(t x, (1 - t)^2 I), so
    // E[x | x_t] = sum_j w_j x_j with w_j ∝ exp(-|x_t - t x_j|^2 / (2 (1 - t)^2)), and v = (E[x | x_t] - x_t) / (1 - t).
    torch::manual_seed(11);
    const int64_t m = 400000;
    at::Tensor which = torch::randint(0, 8, {m}, torch::kLong);
    at::Tensor angle = which.to(torch::kDouble) * (2 * M_PI / 8);
    at::Tensor data = 2 * torch::stack({torch::cos(angle), torch::sin(angle)}, 1) + 0.1 * torch::randn({m, 2}, torch::kDouble);

    GaussianMixtureDenoiser teacher(MixtureLabels::None);
    for (double t : {0.3, 0.6, 0.85}) {
        INFO("t = " << t);
        // Typical points of x_t (where the Monte Carlo estimate has many effective samples).
        at::Tensor points = (1 - t) * torch::randn({3, 2}, torch::kDouble) + t * data.slice(0, 0, 3);
        at::Tensor analytic = teacher.velocity(points, torch::full({3}, t, torch::kDouble), torch::zeros({3}, torch::kLong));
        for (int64_t i = 0; i < 3; ++i) {
            at::Tensor logits = -(points[i] - t * data).pow(2).sum(1) / (2 * (1 - t) * (1 - t));
            at::Tensor weights = torch::softmax(logits, 0).unsqueeze(1);
            at::Tensor estimate = ((weights * data).sum(0) - points[i]) / (1 - t);
            INFO("point " << i << ": analytic " << analytic[i] << ", Monte Carlo " << estimate);
            CHECK(torch::allclose(analytic[i], estimate, 0.02, 0.03 / (1 - t)));
        }
    }
}

TEST_CASE("the analytic teacher samples and makes pairs through the CLI at the spec's reference values", "[integration]") {
    test::TempDir dir;
    auto one = test::run_command(kOnestep + " eval toy --fake analytic:8gaussians --sampler euler --steps 1 --n 1000 --out " +
                                 (dir / "one.json"));
    INFO(one.output);
    REQUIRE(one.exit_code == 0);
    auto many = test::run_command(kOnestep + " eval toy --fake analytic:8gaussians --sampler euler --steps 100 --n 1000 --out " +
                                  (dir / "many.json"));
    INFO(many.output);
    REQUIRE(many.exit_code == 0);
    nlohmann::json naive = nlohmann::json::parse(test::read_text(dir / "one.json"));
    nlohmann::json exact = nlohmann::json::parse(test::read_text(dir / "many.json"));
    // Spec §4.1: Euler 1 collapses to the mean (SW1 1.27, HQ 0); Euler 100 reaches the data (HQ 0.99).
    CHECK(naive["sw1"].get<double>() == Approx(1.27).margin(0.05));
    CHECK(naive["hq"].get<double>() == 0.0);
    CHECK(exact["hq"].get<double>() > 0.97);
    CHECK(exact["sw1"].get<double>() < 0.07);
    CHECK(exact["method"] == "analytic");

    auto pairs = test::run_command(kOnestep + " sample --ckpt analytic:8gaussians-fine --pairs 16 --steps 8 --out " +
                                   (dir / "pairs.bin"));
    INFO(pairs.output);
    REQUIRE(pairs.exit_code == 0);
    TeacherPairs made = read_teacher_pairs(dir / "pairs.bin");
    CHECK(made.num_classes == 8);
    CHECK(made.metadata.at("teacher_method") == "analytic");
    CHECK(torch::equal(made.y, torch::arange(16, torch::kLong).remainder(8)));

    auto unknown = test::run_command(kOnestep + " sample --ckpt analytic:9gaussians --n 4 --out " + (dir / "x.csv"));
    CHECK(unknown.exit_code == 2);
    CHECK_THAT(unknown.output, Contains("accepted: analytic:8gaussians"));
}
