// Consistency distillation: the exact boundary f(x, 1) = x, the anchoring step into t = 1, zero
// loss for a teacher copy one Euler step from the end, Heun's skipped correction, the multistep
// sampler's times, the rewards (the mixture's exact posterior against finite differences, the
// TorchScript checks at load), and the method through the CLI with an exact resume.
#include <catch2/catch.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/options.hpp"
#include "core/registry.hpp"
#include "distill/consistency/consistency.hpp"
#include "distill/distance.hpp"
#include "distill/reward.hpp"
#include "models/analytic_mixture.hpp"
#include "models/denoiser.hpp"
#include "models/ema.hpp"
#include "models/network.hpp"
#include "samplers/consistency.hpp"
#include "samplers/ode.hpp"
#include "samplers/one_step.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace onestep;
using Catch::Matchers::Contains;

namespace {

const std::string kOnestep = ONESTEP_BINARY;

// A toy MLP (or a small U-Net) with random weights everywhere, the output layer included.
std::shared_ptr<VelocityNet> random_net(const std::string& arch, const std::vector<int64_t>& shape, int64_t classes) {
    Config config = resolve_config(network_options(arch), "",
                                   {"model.mlp.hidden=32", "model.mlp.depth=2", "model.unet.channels=8",
                                    "model.unet.attention_resolutions=[]", "model.unet.dropout=0"});
    auto net = make_network(config, {shape, classes, 0});
    torch::NoGradGuard no_grad;
    for (auto& parameter : net->parameters()) parameter.add_(0.1 * torch::randn_like(parameter));
    return net;
}

// A TorchScript module with body BODY for forward(self, x, y), saved under DIR.
std::string save_script(const test::TempDir& dir, const std::string& name, const std::string& body) {
    torch::jit::Module module(name);
    module.define("def forward(self, x, y):\n    " + body + "\n");
    const std::string path = dir / (name + ".pt");
    module.save(path);
    return path;
}

}  // namespace

TEST_CASE("consistency function: f(x, 1) = x exactly for random weights; f(z, 0) is the one-step map", "[unit]") {
    torch::manual_seed(1);
    for (const auto& [arch, shape] : std::vector<std::pair<std::string, std::vector<int64_t>>>{{"mlp", {2}}, {"unet", {1, 8, 8}}}) {
        auto net = random_net(arch, shape, 3);
        std::vector<int64_t> batch{4};
        batch.insert(batch.end(), shape.begin(), shape.end());
        at::Tensor x = torch::randn(batch);
        at::Tensor labels = torch::tensor({0, 1, 2, 3}, torch::kLong);
        CHECK(torch::equal(consistency_function(*net, x, torch::ones({4}), labels), x));
        at::Tensor at_zero = consistency_function(*net, x, torch::zeros({4}), labels);
        CHECK(torch::allclose(at_zero, x + net->forward(x, torch::zeros({4}), labels)));
        CHECK_FALSE(torch::allclose(at_zero, x));
    }
}

TEST_CASE("consistency pair: the step into t = 1 targets x_b itself; a teacher copy one Euler step from the end has zero loss",
          "[unit]") {
    torch::manual_seed(2);
    auto teacher_net = random_net("mlp", {2}, 0);
    teacher_net->eval();
    NetworkDenoiser teacher(teacher_net, Parameterisation::Velocity, 0, false);
    auto student = teacher_net->make_sibling();
    auto target = teacher_net->make_sibling();
    copy_weights(*student, *teacher_net);
    copy_weights(*target, *teacher_net);   // mu = 0: the target is the online weights
    student->eval();
    target->eval();
    const int64_t n = 64;
    at::Tensor x = torch::randn({n, 2}), z = torch::randn({n, 2}), labels = torch::zeros({n}, torch::kLong);
    at::Tensor grid = time_grid("karras", 18).to(torch::kFloat);
    ConsistencySettings euler;
    euler.solver = "euler";

    // Consistency training: x_b = x at t_b = 1, and the target is exactly x.
    ConsistencySettings training;
    training.solver = "none";
    auto anchored = consistency_pair(*student, *target, nullptr, x, z, labels, torch::full({n}, grid[17].item<float>()),
                                     torch::ones({n}), training);
    CHECK(torch::equal(anchored.target, x));

    // t_b = 1: x_b = x_a + (1 - t_a) v_T(x_a) is the teacher's x0 guess, and so is the student's prediction.
    auto last = consistency_pair(*student, *target, &teacher, x, z, labels, torch::full({n}, grid[17].item<float>()),
                                 torch::ones({n}), euler);
    CHECK(sample_distance(last.pred, last.target, "elementwise-huber").abs().max().item<double>() == 0.0);
    // Elsewhere the copy's prediction at t_a differs from its prediction at t_b: a real loss.
    auto inner = consistency_pair(*student, *target, &teacher, x, z, labels, torch::full({n}, grid[5].item<float>()),
                                  torch::full({n}, grid[6].item<float>()), euler);
    CHECK(sample_distance(inner.pred, inner.target, "elementwise-huber").mean().item<double>() > 1e-4);
    CHECK(inner.pred.requires_grad());
    CHECK_FALSE(inner.target.requires_grad());
}

TEST_CASE("teacher solver step: Heun is second order, and skips its correction into t = 1 on a singular teacher", "[unit]") {
    GaussianMixtureDenoiser mixture(MixtureLabels::None);
    const int64_t n = 256;
    torch::manual_seed(3);
    at::Tensor x = torch::randn({n, 2}, torch::kDouble), labels = torch::zeros({n}, torch::kLong);
    ConsistencySettings euler, heun;
    euler.solver = "euler";
    heun.solver = "heun";
    at::Tensor t_a = torch::full({n}, 0.9, torch::kDouble), t_one = torch::ones({n}, torch::kDouble);
    CHECK(torch::equal(teacher_solver_step(mixture, x, t_a, t_one, labels, heun),
                       teacher_solver_step(mixture, x, t_a, t_one, labels, euler)));
    // Against a fine Euler reference on [0.3, 0.4], Heun's error is far below Euler's.
    at::Tensor start = torch::full({n}, 0.3, torch::kDouble), end = torch::full({n}, 0.4, torch::kDouble);
    at::Tensor reference = x.clone();
    for (int i = 0; i < 1000; ++i) {
        at::Tensor from = torch::full({n}, 0.3 + 0.1 * i / 1000, torch::kDouble);
        reference = teacher_solver_step(mixture, reference, from, from + 0.1 / 1000, labels, euler);
    }
    double euler_error = (teacher_solver_step(mixture, x, start, end, labels, euler) - reference).norm().item<double>();
    double heun_error = (teacher_solver_step(mixture, x, start, end, labels, heun) - reference).norm().item<double>();
    CHECK(heun_error < 0.2 * euler_error);
}

TEST_CASE("consistency sampler: tau_j = t_floor(jN/k); one step is f(z, 0); bad step counts and guidance refused", "[unit]") {
    at::Tensor grid = time_grid("karras", 18);
    at::Tensor times = consistency_times(grid, 4);
    REQUIRE(times.numel() == 4);
    CHECK(times[0].item<double>() == 0.0);
    CHECK(times[1].item<double>() == grid[4].item<double>());
    CHECK(times[2].item<double>() == grid[9].item<double>());
    CHECK(times[3].item<double>() == grid[13].item<double>());
    CHECK_THAT(test::user_error_message([&] { consistency_times(grid, 19); }), Contains("1 to 18 steps"));

    torch::manual_seed(4);
    auto net = random_net("mlp", {2}, 0);
    OneStepSampler sampler(net, 0.0, {2}, {}, 0, "consistency", 1, grid);
    at::Tensor z = torch::randn({8, 2}), labels = torch::zeros({8}, torch::kLong);
    at::Tensor one = sampler.sample(z, labels, {});
    {
        torch::NoGradGuard no_grad;
        CHECK(torch::allclose(one, z + net->forward(z, torch::zeros({8}), labels)));
    }
    SampleOptions two;
    two.steps = 2;
    two.seed = 9;
    CHECK(sampler.nfe(two) == 2);
    CHECK(torch::equal(sampler.sample(z, labels, two), sampler.sample(z, labels, two)));   // seeded re-noising
    CHECK_FALSE(torch::allclose(sampler.sample(z, labels, two), one));
    // Re-noising draws fresh noise, not the starting noise of the same seed: with v = 0 (f the
    // identity) one step returns z itself, two steps (1 - tau) xi + tau z.
    Config zero_config = resolve_config(network_options("mlp"), "", {"model.mlp.hidden=8", "model.mlp.depth=1"});
    OneStepSampler identity(make_network(zero_config, {{2}, 0, 0}), 0.0, {2}, {}, 0, "consistency", 1, grid);
    at::Tensor start = draw_samples(identity, torch::zeros({16}, torch::kLong), {}, 9, 16, torch::kCPU);
    at::Tensor renoised = draw_samples(identity, torch::zeros({16}, torch::kLong), two, 9, 16, torch::kCPU);
    const double tau = grid[9].item<double>();
    at::Tensor xi = (renoised - tau * start) / (1 - tau);
    CHECK(std::abs(torch::corrcoef(torch::stack({xi.flatten(), start.flatten()}))[0][1].item<double>()) < 0.6);
    SampleOptions euler;
    euler.sampler = "euler";
    euler.steps = 3;
    CHECK(sampler.nfe(euler) == 3);
    SampleOptions guided;
    guided.guidance = 2;
    CHECK_THAT(test::user_error_message([&] { sampler.sample(z, labels, guided); }), Contains("null label"));
    SampleOptions wrong;
    wrong.sampler = "shortcut";
    CHECK_THAT(test::user_error_message([&] { sampler.nfe(wrong); }), Contains("--sampler shortcut"));
}

TEST_CASE("mixture reward: the exact log p(y | x), with input gradients matching finite differences", "[unit]") {
    auto reward = make_classifier_reward("analytic:8gaussians-coarse", {2}, 4, "reward.classifier", torch::kCPU);
    // Mode 1 lies in class 0 (modes 0 and 1): the posterior there is nearly 1, elsewhere nearly 0.
    at::Tensor mode1 = torch::tensor({{2 * std::cos(M_PI / 4), 2 * std::sin(M_PI / 4)}}, torch::kDouble);
    CHECK(reward->score(mode1, torch::tensor({0}, torch::kLong)).item<double>() == Approx(0.0).margin(1e-9));
    CHECK(reward->score(mode1, torch::tensor({2}, torch::kLong)).item<double>() < -100);
    // Between modes 1 and 2 (classes 0 and 1) the two classes share the point.
    at::Tensor between = torch::tensor({{2 * std::cos(3 * M_PI / 8), 2 * std::sin(3 * M_PI / 8)}}, torch::kDouble);
    CHECK(reward->score(between, torch::tensor({1}, torch::kLong)).item<double>() == Approx(std::log(0.5)).margin(1e-6));

    torch::manual_seed(5);
    at::Tensor x = (1.5 * torch::randn({6, 2}, torch::kDouble)).requires_grad_(true);
    at::Tensor labels = torch::tensor({0, 1, 2, 3, 0, 1}, torch::kLong);
    at::Tensor gradient = torch::autograd::grad({reward->score(x, labels).sum()}, {x})[0];
    const double h = 1e-6;
    for (int64_t i = 0; i < 6; ++i)
        for (int64_t d = 0; d < 2; ++d) {
            at::Tensor plus = x.detach().clone(), minus = x.detach().clone();
            plus[i][d] += h;
            minus[i][d] -= h;
            double numeric = (reward->score(plus, labels)[i].item<double>() - reward->score(minus, labels)[i].item<double>()) / (2 * h);
            CHECK(gradient[i][d].item<double>() == Approx(numeric).epsilon(1e-4).margin(1e-6));
        }
    CHECK_THAT(test::user_error_message([] { make_classifier_reward("analytic:8gaussians-coarse", {2}, 8, "reward.classifier", torch::kCPU); }),
               Contains("reward.classifier"));
    CHECK_THAT(test::user_error_message([] { make_classifier_reward("analytic:8gaussians-fine", {2}, 0, "reward.classifier", torch::kCPU); }),
               Contains("unconditional"));
}

TEST_CASE("TorchScript reward: a good module scores with gradients; bad ones fail at load naming the file", "[unit]") {
    test::TempDir dir;
    const std::string good = save_script(dir, "good", "return -(x * x).flatten(1).sum(1) + y.to(x.dtype)");
    auto reward = load_script_reward(good, {1, 4, 4}, 10, torch::kCPU);
    at::Tensor x = torch::ones({3, 1, 4, 4}).requires_grad_(true);
    at::Tensor score = reward->score(x, torch::tensor({0, 1, 2}, torch::kLong));
    CHECK(torch::allclose(score, torch::tensor({-16.0f, -15.0f, -14.0f})));
    at::Tensor gradient = torch::autograd::grad({score.sum()}, {x})[0];
    CHECK(torch::allclose(gradient, -2 * torch::ones_like(x)));

    const std::string wide = save_script(dir, "wide", "return x.flatten(1)");
    CHECK_THAT(test::user_error_message([&] { load_script_reward(wide, {1, 4, 4}, 10, torch::kCPU); }),
               Contains(wide) && Contains("shaped [2, 16]"));
    const std::string constant = save_script(dir, "constant", "return y.float()");
    CHECK_THAT(test::user_error_message([&] { load_script_reward(constant, {1, 4, 4}, 10, torch::kCPU); }),
               Contains(constant) && Contains("gradient"));
    const std::string flat = save_script(dir, "flat", "return (x * 0.0).flatten(1).sum(1)");
    CHECK_THAT(test::user_error_message([&] { load_script_reward(flat, {1, 4, 4}, 10, torch::kCPU); }),
               Contains(flat) && Contains("zero"));
    const std::string broken = save_script(dir, "broken", "return x.view(7, 3).sum(1)");
    CHECK_THAT(test::user_error_message([&] { load_script_reward(broken, {1, 4, 4}, 10, torch::kCPU); }),
               Contains(broken) && Contains("failed"));
    test::write_text(dir / "text.pt", "not an archive");
    CHECK_THAT(test::user_error_message([&] { load_script_reward(dir / "text.pt", {1, 4, 4}, 10, torch::kCPU); }),
               Contains("text.pt") && Contains("TorchScript"));
    CHECK_THAT(test::user_error_message([&] { load_script_reward(dir / "missing.pt", {2}, 0, torch::kCPU); }),
               Contains("missing.pt") && Contains("no such file"));
}

TEST_CASE("consistency trains through the CLI, resumes exactly, samples and evaluates", "[integration]") {
    test::TempDir dir;
    const std::string settings = "--set steps=10 --set batch_size=64 --set ckpt_every=10 --set log_every=5 --set sample.n=50";
    auto reference = test::run_command(test::toy_train_command("consistency", dir / "ref", settings));
    INFO(reference.output);
    REQUIRE(reference.exit_code == 0);
    CHECK_THAT(reference.output, Contains("fresh weights"));
    CHECK(test::mean_log_value(dir / "ref/log.jsonl", "loss_cd", 0, 2) >= 0);
    test::require_exact_toy_resume("consistency", dir / "broken", settings, 5, dir / "ref/checkpoints/latest.ckpt");

    auto pairs = test::run_command(kOnestep + " sample --ckpt analytic:8gaussians --pairs 200 --steps 20 --out " +
                                   (dir / "pairs.bin"));
    INFO(pairs.output);
    REQUIRE(pairs.exit_code == 0);
    auto evaluated = test::run_command(kOnestep + " eval toy --fake ckpt:" + (dir / "ref") + " --steps 2 --n 200 --pairs " +
                                       (dir / "pairs.bin") + " --out " + (dir / "eval.json"));
    INFO(evaluated.output);
    CHECK(evaluated.exit_code == 0);
    CHECK_THAT(test::read_text(dir / "eval.json"), Contains("paired_error") && Contains("consistency, 2 steps"));
    auto ode = test::run_command(kOnestep + " sample --ckpt " + (dir / "ref") + " --sampler heun --steps 3 --out " +
                                 (dir / "s.png"));
    INFO(ode.output);
    CHECK(ode.exit_code == 0);

    // The reward variant: coarse labels, the exact posterior as reward, and a TorchScript reward only logged.
    const std::string script = save_script(dir, "near_origin", "return -(x * x).sum(1)");
    auto rewarded = test::run_command(test::toy_train_command(
        "consistency", dir / "reward",
        "--set steps=4 --set batch_size=32 --set data.name=toy:8gaussians-coarse --set data.conditional=true "
        "--set consistency.teacher=analytic:8gaussians-coarse --set reward.classifier=analytic:8gaussians-coarse "
        "--set reward.classifier_weight=0.1 --set reward.fraction=0.5 --set reward.script=" + script));
    INFO(rewarded.output);
    REQUIRE(rewarded.exit_code == 0);
    CHECK(test::mean_log_value(dir / "reward/log.jsonl", "reward_classifier", 0, 1) <= 0);
    CHECK(test::mean_log_value(dir / "reward/log.jsonl", "reward_script", 0, 1) <= 0);

    // Bad input: a clear error, nothing trained.
    auto no_teacher = test::run_command(test::toy_train_command("consistency", dir / "none", "--set consistency.teacher="));
    CHECK(no_teacher.exit_code != 0);
    CHECK_THAT(no_teacher.output, Contains("consistency.teacher is not set"));
    auto weight_only = test::run_command(test::toy_train_command("consistency", dir / "none", "--set reward.classifier_weight=0.1"));
    CHECK(weight_only.exit_code != 0);
    CHECK_THAT(weight_only.output, Contains("reward.classifier_weight > 0 needs reward.classifier"));
    auto unconditional = test::run_command(
        test::toy_train_command("consistency", dir / "none", "--set reward.classifier=analytic:8gaussians-coarse"));
    CHECK(unconditional.exit_code != 0);
    CHECK_THAT(unconditional.output, Contains("unconditional"));
    auto bad_script = test::run_command(test::toy_train_command("consistency", dir / "none", "--set reward.script=" + (dir / "nope.pt")));
    CHECK(bad_script.exit_code != 0);
    CHECK_THAT(bad_script.output, Contains("nope.pt: no such file"));
    auto guided = test::run_command(test::toy_train_command("consistency", dir / "none", "--set consistency.guidance=2"));
    CHECK(guided.exit_code != 0);
    CHECK_THAT(guided.output, Contains("cannot be guided"));
    CHECK_FALSE(fs::exists(dir / "none/checkpoints/latest.ckpt"));
}
