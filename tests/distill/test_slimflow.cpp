// SlimFlow: the annealing schedule and reflow batch, the distances, stage 2's losses against the
// algorithm box written out step by step (gradients included, so the stop-gradient is checked),
// the one-step sampler, and both stages through the CLI with an exact resume across the switch.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>

#include "distill/slimflow/slimflow.hpp"
#include "models/network.hpp"
#include "samplers/one_step.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace onestep;
using Catch::Matchers::Contains;

namespace {

const std::string kOnestep = ONESTEP_BINARY;

// v(x, t, y) = w x + b t + e y with trainable w, b, e: every input leaves a mark on the gradients.
class AffineNet : public VelocityNet {
  public:
    AffineNet(double w, double b, double e) {
        w_ = register_parameter("w", torch::tensor(w, torch::kDouble));
        b_ = register_parameter("b", torch::tensor(b, torch::kDouble));
        e_ = register_parameter("e", torch::tensor(e, torch::kDouble));
    }
    at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& labels,
                       const at::Tensor& = at::Tensor()) override {
        auto column = [&](const at::Tensor& v) { return v.to(x.dtype()).view({-1, 1}); };
        return w_ * x + b_ * column(t) + e_ * column(labels);
    }
    std::shared_ptr<VelocityNet> make_sibling() const override {
        return std::make_shared<AffineNet>(w_.item<double>(), b_.item<double>(), e_.item<double>());
    }

  private:
    at::Tensor w_, b_, e_;
};

SlimFlowSettings test_settings(const std::string& distance) {
    SlimFlowSettings settings;
    settings.distance = distance;
    settings.num_classes = 3;
    settings.t_eps = 1e-3;
    return settings;
}

}  // namespace

TEST_CASE("the annealing beta falls linearly from 1 to 0 and is 0 without annealing", "[unit]") {
    CHECK(annealing_beta(0, 2000) == 1.0);
    CHECK(annealing_beta(500, 2000) == Approx(0.75));
    CHECK(annealing_beta(2000, 2000) == 0.0);
    CHECK(annealing_beta(9000, 2000) == 0.0);
    CHECK(annealing_beta(0, 0) == 0.0);   // K_anneal = 0: exact reflow from the first step
}

TEST_CASE("annealing reflow blends the pair's noise and keeps the pair together under flips", "[unit]") {
    torch::manual_seed(1);
    at::Tensor z0 = torch::randn({64, 2}, torch::kDouble), x1 = torch::randn({64, 2}, torch::kDouble);
    SlimFlowSettings settings = test_settings("l2");

    ReflowBatch exact = annealing_reflow_batch(z0, x1, 0.0, settings);   // beta 0: the teacher's coupling
    CHECK(torch::allclose(exact.target, x1 - z0));
    at::Tensor t = exact.t.view({-1, 1});
    CHECK(torch::allclose(exact.x_t, (1 - t) * z0 + t * x1));
    CHECK(exact.t.min().item<double>() >= settings.t_eps);
    CHECK(exact.t.max().item<double>() <= 1.0);

    // beta 1: the pair's noise is gone (random pairing); the same draws give the same batch for any z0.
    torch::manual_seed(2);
    ReflowBatch random_a = annealing_reflow_batch(z0, x1, 1.0, settings);
    torch::manual_seed(2);
    ReflowBatch random_b = annealing_reflow_batch(z0 * 5 + 3, x1, 1.0, settings);
    CHECK(torch::allclose(random_a.target, random_b.target));
    // beta 0.6: z0' = 0.8 z0 + 0.6 eps.
    torch::manual_seed(3);
    at::Tensor epsilon = torch::randn_like(z0);
    torch::manual_seed(3);
    ReflowBatch blended = annealing_reflow_batch(z0, x1, 0.6, settings);
    CHECK(torch::allclose(blended.target, x1 - (0.8 * z0 + 0.6 * epsilon)));

    // Images: a flipped item has both its noise and its image mirrored.
    settings.flip = true;
    at::Tensor z_img = torch::randn({32, 1, 4, 4}, torch::kDouble), x_img = torch::randn({32, 1, 4, 4}, torch::kDouble);
    ReflowBatch flipped = annealing_reflow_batch(z_img, x_img, 0.0, settings);
    at::Tensor target_plain = x_img - z_img, target_flipped = (x_img - z_img).flip({-1});
    int64_t plain = 0, mirrored = 0;
    for (int64_t i = 0; i < 32; ++i) {
        bool same = torch::allclose(flipped.target[i], target_plain[i]);
        bool flip = torch::allclose(flipped.target[i], target_flipped[i]);
        CHECK((same || flip));
        plain += same, mirrored += flip && !same;
    }
    CHECK(plain > 0);
    CHECK(mirrored > 0);
}

TEST_CASE("SlimFlow distances: mean squared error and the per-sample pseudo-Huber", "[unit]") {
    at::Tensor a = torch::zeros({2, 4}, torch::kDouble);
    at::Tensor b = torch::tensor({{3.0, 0.0, 0.0, 0.0}, {1.0, 1.0, 1.0, 1.0}}, torch::kDouble);
    at::Tensor l2 = sample_distance(a, b, "l2");
    CHECK(l2[0].item<double>() == Approx(9.0 / 4));
    CHECK(l2[1].item<double>() == Approx(1.0));
    at::Tensor huber = sample_distance(a, b, "pseudo-huber", 0.5);
    CHECK(huber[0].item<double>() == Approx(std::sqrt(9.0 + 0.25) - 0.5));
    CHECK(huber[1].item<double>() == Approx(std::sqrt(4.0 + 0.25) - 0.5));
    // Default c = 0.00054 sqrt(D): 0.017 for a 32x32 image.
    const double c = 0.00054 * 2.0;
    CHECK(sample_distance(a, b, "pseudo-huber")[1].item<double>() == Approx(std::sqrt(4.0 + c * c) - c));
}

TEST_CASE("stage 2's losses follow the algorithm box, with the stop-gradient on the student's jump", "[unit]") {
    for (const std::string distance : {"l2", "pseudo-huber"}) {
        INFO(distance);
        SlimFlowSettings settings = test_settings(distance);
        AffineNet student(0.7, -0.3, 0.2), g2(0.5, 0.4, -0.1);
        for (auto& parameter : g2.parameters()) parameter.set_requires_grad(false);
        torch::manual_seed(4);
        at::Tensor z0 = torch::randn({16, 2}, torch::kDouble), x1 = torch::randn({16, 2}, torch::kDouble);
        at::Tensor y = torch::randint(0, 3, {16}, torch::kLong);

        torch::manual_seed(9);
        DistillationLosses losses = flow_guided_losses(student, g2, z0, x1, y, settings);
        std::vector<at::Tensor> gradients = torch::autograd::grad({losses.regression + losses.guided}, student.parameters());

        // The box, step by step, with the same draws in the same order.
        auto reference = [&](bool stop_gradient) {
            torch::manual_seed(9);
            at::Tensor z = torch::randn_like(z0);
            at::Tensor fresh = torch::randint(0, 3, {16}, y.options());
            at::Tensor t_eps = torch::full({16}, settings.t_eps, torch::kDouble);
            at::Tensor generated = z0 + (1 - settings.t_eps) * student.forward(z0, t_eps, y);   // G(z0, y)
            at::Tensor u = student.forward(z, t_eps, fresh);
            at::Tensor t_prime = (0.2 + 0.6 * torch::rand({16}, torch::kDouble)).view({-1, 1});
            at::Tensor x_t = z + t_prime * (stop_gradient ? u.detach() : u);
            at::Tensor target = x_t + (1 - t_prime) * g2.forward(x_t, t_prime.flatten(), fresh);
            if (stop_gradient) target = target.detach();
            at::Tensor l1 = sample_distance(generated, x1, distance).mean();
            at::Tensor l2 = sample_distance(z + (1 - settings.t_eps) * u, target, distance).mean();
            return std::make_pair(l1 + l2, torch::autograd::grad({l1 + l2}, student.parameters()));
        };
        auto [value, expected] = reference(true);
        CHECK((losses.regression + losses.guided).item<double>() == Approx(value.item<double>()).epsilon(1e-12));
        for (size_t i = 0; i < gradients.size(); ++i) CHECK(torch::allclose(gradients[i], expected[i], 1e-10, 1e-12));
        // Without the stop-gradient the gradients differ: the comparison above can tell.
        auto [unused, leaking] = reference(false);
        CHECK_FALSE(torch::allclose(gradients[0], leaking[0], 1e-10, 1e-12));
    }
}

TEST_CASE("the one-step sampler is G(z) = z + (1 - t0) v(z, t0) and refuses other step counts", "[unit]") {
    auto net = std::make_shared<AffineNet>(0.5, 2.0, 0.1);
    OneStepSampler sampler(net, 0.01, {2}, {"a", "b"}, 2);
    at::Tensor z = torch::randn({5, 2}, torch::kDouble);
    at::Tensor y = torch::tensor({0, 1, 0, 1, 1}, torch::kLong);
    SampleOptions options;
    at::Tensor expected = z + 0.99 * (0.5 * z + 2.0 * 0.01 + 0.1 * y.to(torch::kDouble).view({-1, 1}));
    CHECK(torch::allclose(sampler.sample(z, y, options), expected));
    CHECK(sampler.nfe(options) == 1);
    CHECK_THAT(sampler.describe(options), Contains("one-step"));
    options.steps = 4;
    CHECK_THAT(test::user_error_message([&] { sampler.sample(z, y, options); }), Contains("exactly 1 step"));
    options.sampler = "euler";   // the same network as an ODE in 4 steps
    CHECK(sampler.nfe(options) == 4);
    CHECK(sampler.sample(z, y, options).sizes() == z.sizes());
    options.sampler = "rk4";
    CHECK_THAT(test::user_error_message([&] { sampler.sample(z, y, options); }), Contains("one-step, euler, heun or ddim"));
    options = SampleOptions{};
    options.guidance = 2;
    CHECK_THAT(test::user_error_message([&] { sampler.sample(z, y, options); }), Contains("null label"));
}

TEST_CASE("SlimFlow trains both stages from teacher pairs, resumes exactly across the switch, and samples in one step",
          "[integration]") {
    test::TempDir dir;
    auto teacher = test::run_command(test::toy_train_command("flow", dir / "teacher", "--set steps=20 --set ckpt_every=20"));
    INFO(teacher.output);
    REQUIRE(teacher.exit_code == 0);
    auto pairs = test::run_command(kOnestep + " sample --ckpt " + (dir / "teacher") +
                                   " --pairs 300 --sampler euler --steps 4 --out " + (dir / "pairs.bin"));
    INFO(pairs.output);
    REQUIRE(pairs.exit_code == 0);

    const std::string settings = " --set slimflow.pairs=" + (dir / "pairs.bin") +
                                 " --set steps=12 --set slimflow.reflow_steps=6 --set slimflow.anneal_steps=4"
                                 " --set batch_size=64 --set log_every=1 --set ckpt_every=4 --set model.mlp.hidden=32";
    auto reference = test::run_command(test::toy_train_command("slimflow", dir / "reference", settings));
    INFO(reference.output);
    REQUIRE(reference.exit_code == 0);
    std::string log = test::read_text(dir / "reference/log.jsonl");
    CHECK_THAT(log, Contains("\"beta\":1.0"));          // stage 1 starts from random pairing
    CHECK_THAT(log, Contains("\"loss_guided\""));       // stage 2 ran
    CHECK(test::mean_log_value(dir / "reference/log.jsonl", "loss_regression", 0, 6) > 0);

    // Stopped before the switch (G2 made after resuming) and after it (G2 read from the checkpoint).
    for (int stop : {4, 8})
        test::require_exact_toy_resume("slimflow", dir / ("broken-" + std::to_string(stop)), settings, stop,
                                       dir / "reference/checkpoints/latest.ckpt");

    auto evaluated = test::run_command(kOnestep + " eval toy --fake ckpt:" + (dir / "reference") + " --n 200 --pairs " +
                                       (dir / "pairs.bin"));
    INFO(evaluated.output);
    CHECK(evaluated.exit_code == 0);
    CHECK_THAT(evaluated.output, Contains("one-step, 1 steps"));
    CHECK_THAT(evaluated.output, Contains("paired error"));
    auto many = test::run_command(kOnestep + " sample --ckpt " + (dir / "reference") + " --steps 4 --out " + (dir / "a.csv"));
    CHECK(many.exit_code == 2);
    CHECK_THAT(many.output, Contains("--sampler euler"));
    auto ode = test::run_command(kOnestep + " sample --ckpt " + (dir / "reference") + " --sampler euler --steps 4 --n 10 --out " +
                                 (dir / "b.csv"));
    CHECK(ode.exit_code == 0);

    auto no_pairs = test::run_command(test::toy_train_command("slimflow", dir / "none", "--set steps=2"));
    CHECK(no_pairs.exit_code == 2);
    CHECK_THAT(no_pairs.output, Contains("slimflow.pairs is not set"));
    CHECK_FALSE(fs::exists(dir / "none"));
    auto no_stage_one = test::run_command(test::toy_train_command("slimflow", dir / "none", settings + " --set slimflow.reflow_steps=0"));
    CHECK(no_stage_one.exit_code == 2);
    CHECK_THAT(no_stage_one.output, Contains("slimflow.reflow_steps"));
    auto missing = test::run_command(test::toy_train_command("slimflow", dir / "none", "--set slimflow.pairs=" + (dir / "nope.bin")));
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.output, Contains("nope.bin"));
}
