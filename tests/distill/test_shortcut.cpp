// Shortcut models: the bootstrap target on a hand-made linear model, level coverage for small
// batches, the sampler's step rules, and training, sampling and exact resume through the CLI.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>

#include "distill/shortcut/shortcut.hpp"
#include "models/network.hpp"
#include "samplers/shortcut.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace onestep;
using Catch::Matchers::Contains;

namespace {

// s(x, t, l, y) = a x + b t + c l + e y: no parameters, every term visible in the targets.
class LinearNet : public VelocityNet {
  public:
    LinearNet(double a, double b, double c, double e) : a_(a), b_(b), c_(c), e_(e) {}
    at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& labels,
                       const at::Tensor& levels) override {
        auto column = [&](const at::Tensor& v) { return v.to(x.dtype()).view({-1, 1}); };
        return a_ * x + b_ * column(t) + c_ * column(levels) + e_ * column(labels);
    }
    std::shared_ptr<VelocityNet> make_sibling() const override { return std::make_shared<LinearNet>(a_, b_, c_, e_); }

  private:
    double a_, b_, c_, e_;
};

ShortcutSettings toy_settings() {
    ShortcutSettings settings;
    settings.max_steps = 128;
    settings.bootstrap_fraction = 0.25;
    settings.p_uncond = 0.0;
    settings.num_classes = 3;
    return settings;
}

const std::string kOnestep = ONESTEP_BINARY;

std::string toy_train(const std::string& run_dir, int steps, const std::string& extra = "") {
    return kOnestep + " train shortcut --config " + ONESTEP_SOURCE_DIR + "/configs/toy2d/shortcut.yaml --threads 2 " +
           "--run-dir " + run_dir + " --set steps=" + std::to_string(steps) +
           " --set log_every=10 --set ckpt_every=20 --set keep_checkpoints=0 --set data.toy_size=4000"
           " --set batch_size=64 --set sample.n=200 " + extra;
}

}  // namespace

TEST_CASE("the bootstrap target is the mean of two half-jumps of the target network", "[unit]") {
    LinearNet net(0.5, -0.3, 0.2, 0.1);
    ShortcutSettings settings = toy_settings();
    at::Tensor x_t = torch::tensor({{0.4, -1.0}, {1.5, 0.25}, {-0.2, 0.7}}, torch::kDouble);
    at::Tensor t = torch::tensor({0.0, 0.5, 0.75}, torch::kDouble);
    at::Tensor levels = torch::tensor({0, 1, 2}, torch::kLong);
    at::Tensor labels = torch::tensor({2, 0, 1}, torch::kLong);
    at::Tensor target = bootstrap_targets(net, x_t, t, labels, levels, settings);

    for (int64_t i = 0; i < 3; ++i) {
        double d = std::pow(2.0, -levels[i].item<double>());
        double finer = levels[i].item<double>() + 1;
        double y = labels[i].item<double>();
        double time = t[i].item<double>();
        for (int64_t j = 0; j < 2; ++j) {
            double x = x_t[i][j].item<double>();
            double v1 = 0.5 * x - 0.3 * time + 0.2 * finer + 0.1 * y;
            double mid = x + d / 2 * v1;
            double v2 = 0.5 * mid - 0.3 * (time + d / 2) + 0.2 * finer + 0.1 * y;
            INFO("item " << i << " coordinate " << j);
            CHECK(target[i][j].item<double>() == Approx((v1 + v2) / 2).epsilon(1e-12));
        }
    }
}

TEST_CASE("bootstrap targets and midpoints are clipped", "[unit]") {
    LinearNet net(10.0, 0.0, 0.0, 0.0);   // v = 10 x: far outside the clip range
    ShortcutSettings settings = toy_settings();
    at::Tensor x_t = torch::tensor({{1.0, -1.0}}, torch::kDouble);
    at::Tensor target = bootstrap_targets(net, x_t, torch::zeros({1}, torch::kDouble), torch::zeros({1}, torch::kLong),
                                          torch::zeros({1}, torch::kLong), settings);
    // v1 = +-10; x_mid = clip(+-1 + 0.5 * 10) = +-4; v2 = +-40; target = clip(25) = 4.
    CHECK(target[0][0].item<double>() == Approx(4.0));
    CHECK(target[0][1].item<double>() == Approx(-4.0));
}

TEST_CASE("guided bootstrap applies guidance to the level below the flow level only", "[unit]") {
    LinearNet net(0.0, 0.0, 0.0, 1.0);   // v = label: conditional y, unconditional 3 (the null label)
    ShortcutSettings settings = toy_settings();
    settings.bootstrap_cfg = 2.0;
    at::Tensor x_t = torch::zeros({2, 2}, torch::kDouble);
    at::Tensor levels = torch::tensor({settings.flow_level() - 1, int64_t(0)}, torch::kLong);
    at::Tensor labels = torch::tensor({1, 1}, torch::kLong);
    at::Tensor target = bootstrap_targets(net, x_t, torch::zeros({2}, torch::kDouble), labels, levels, settings);
    CHECK(target[0][0].item<double>() == Approx(3.0 + 2.0 * (1.0 - 3.0)));   // v_u + w (v_c - v_u)
    CHECK(target[1][0].item<double>() == Approx(1.0));                         // unguided
}

TEST_CASE("every level is in every batch, also for small batches", "[unit]") {
    ShortcutSettings settings = toy_settings();
    int64_t levels = settings.flow_level();
    REQUIRE(levels == 7);
    for (int64_t batch : {28, 32, 40, 64, 100}) {
        int64_t count = shortcut_bootstrap_count(batch, settings);
        CHECK(count == std::llround(0.25 * batch));
        for (int64_t offset = 0; offset < levels; ++offset) {
            at::Tensor histogram = torch::bincount(round_robin_levels(count, levels, offset), {}, levels);
            INFO("batch " << batch << " offset " << offset);
            CHECK(histogram.min().item<int64_t>() >= 1);
            CHECK(histogram.max().item<int64_t>() - histogram.min().item<int64_t>() <= 1);
        }
    }
    CHECK_THAT(test::user_error_message([&] { shortcut_bootstrap_count(16, settings); }),
               Contains("fewer than the 7 levels"));
}

TEST_CASE("a shortcut batch keeps bootstrap and flow items apart, on their grids", "[unit]") {
    torch::manual_seed(3);
    ShortcutSettings settings = toy_settings();
    settings.p_uncond = 0.5;
    LinearNet net(0.5, 0.0, 0.0, 0.0);
    at::Tensor x = torch::randn({64, 2});
    at::Tensor y = torch::randint(0, 3, {64}, torch::kLong);
    ShortcutBatch batch = make_shortcut_batch(x, y, net, settings);
    REQUIRE(batch.bootstrap_count == 16);
    at::Tensor boot_levels = batch.levels.slice(0, 0, 16);
    at::Tensor boot_t = batch.t.slice(0, 0, 16).to(torch::kDouble);
    at::Tensor jumps = torch::pow(2.0, boot_levels.to(torch::kDouble));
    CHECK(torch::bincount(boot_levels, {}, 7).min().item<int64_t>() >= 2);
    CHECK(torch::allclose(boot_t * jumps, torch::round(boot_t * jumps)));    // t = i d
    CHECK((boot_t + 1 / jumps).max().item<double>() <= 1.0 + 1e-9);          // t + d <= 1
    CHECK(torch::equal(batch.labels.slice(0, 0, 16), y.slice(0, 0, 16)));    // never dropped
    at::Tensor flow_t = batch.t.slice(0, 16, 64).to(torch::kDouble) * 128;
    CHECK(torch::allclose(flow_t, torch::round(flow_t)));                     // t = i / M
    CHECK((batch.levels.slice(0, 16, 64) == 7).all().item<bool>());
    at::Tensor flow_labels = batch.labels.slice(0, 16, 64);
    int64_t dropped = (flow_labels == 3).sum().item<int64_t>();
    CHECK(dropped > 5);
    CHECK(dropped < 43);
    CHECK(torch::equal(torch::where(flow_labels == 3, y.slice(0, 16, 64), flow_labels), y.slice(0, 16, 64)));
}

TEST_CASE("one shortcut step is one Euler step at d = 1; step counts must be powers of two", "[unit]") {
    auto net = std::make_shared<LinearNet>(0.5, -0.3, 0.2, 0.1);
    ShortcutSampler sampler(net, 128, {2}, {}, 3, true, "shortcut", 1);
    at::Tensor z = torch::randn({5, 2}, torch::kDouble);
    at::Tensor y = torch::tensor({0, 1, 2, 0, 1}, torch::kLong);
    SampleOptions options;
    options.steps = 1;
    at::Tensor one = sampler.sample(z, y, options);
    at::Tensor expected = z + net->forward(z, torch::zeros({5}, torch::kDouble), y, torch::zeros({5}, torch::kLong));
    CHECK(torch::allclose(one, expected, 1e-12, 1e-12));
    CHECK(sampler.nfe(options) == 1);

    options.steps = 4;   // four jumps of 1/4 at level 2
    at::Tensor x = z.clone();
    for (int i = 0; i < 4; ++i)
        x = x + 0.25 * net->forward(x, torch::full({5}, i / 4.0, torch::kDouble), y, torch::full({5}, 2, torch::kLong));
    CHECK(torch::allclose(sampler.sample(z, y, options), x, 1e-12, 1e-12));

    for (int64_t bad : {3, 6, 100, 256}) {
        options.steps = bad;
        CHECK_THAT(test::user_error_message([&] { sampler.sample(z, y, options); }), Contains("power of two"));
    }
    options.steps = 4;
    options.guidance = 2.0;
    CHECK_THAT(test::user_error_message([&] { sampler.sample(z, y, options); }), Contains("null label"));
    options.steps = 128;   // the flow level knows the null label
    CHECK(sampler.sample(z, y, options).sizes() == z.sizes());
    options.sampler = "euler";
    options.steps = 3;     // Euler on the flow level takes any step count
    CHECK(sampler.sample(z, y, options).sizes() == z.sizes());
    options.sampler = "rk4";
    CHECK_THAT(test::user_error_message([&] { sampler.sample(z, y, options); }), Contains("--sampler rk4"));
}

TEST_CASE("shortcut training lowers the flow loss and samples in 1 to 128 steps", "[integration]") {
    test::TempDir dir;
    // Batch 256 and a constant, higher rate make the fall from the untrained net's E|x - z|^2
    // (about 3 per coordinate) towards the flow-matching floor (about 1.9) clear in 300 steps:
    // the ratio below is about 0.68.
    auto run = test::run_command(
        toy_train(dir / "sc", 300, "--set batch_size=256 --set optim.schedule=constant --set optim.lr=3e-3"));
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    std::string log = dir / "sc/log.jsonl";
    CHECK(test::mean_log_value(log, "loss_flow", 20, 30) < 0.8 * test::mean_log_value(log, "loss_flow", 0, 1));
    for (const char* steps : {"1", "4", "128"}) {
        auto sampled = test::run_command(kOnestep + " sample --ckpt " + (dir / "sc") + " --steps " + steps +
                                         " --n 50 --out " + (dir / (std::string("s") + steps + ".csv")));
        INFO(sampled.output);
        CHECK(sampled.exit_code == 0);
    }
    auto bad = test::run_command(kOnestep + " sample --ckpt " + (dir / "sc") + " --steps 3 --out " + (dir / "x.csv"));
    CHECK(bad.exit_code == 2);
    CHECK_THAT(bad.output, Contains("power of two"));
    CHECK_FALSE(fs::exists(dir / "x.csv"));
    auto evaluated = test::run_command(kOnestep + " eval toy --fake ckpt:" + (dir / "sc") + " --steps 2 --n 300");
    INFO(evaluated.output);
    CHECK(evaluated.exit_code == 0);
    CHECK_THAT(evaluated.output, Contains("shortcut, 2 steps"));

    auto small = test::run_command(toy_train(dir / "small", 5, "--set batch_size=16"));
    CHECK(small.exit_code == 2);
    CHECK_THAT(small.output, Contains("fewer than the 7 levels"));
    CHECK_FALSE(fs::exists(dir / "small"));   // a refused config leaves no run folder behind
    auto odd_m = test::run_command(toy_train(dir / "odd", 5, "--set shortcut.max_steps=100"));
    CHECK(odd_m.exit_code == 2);
    CHECK_THAT(odd_m.output, Contains("shortcut.max_steps 100"));
    auto odd_k = test::run_command(toy_train(dir / "odd", 5, "--set sampler.steps=3"));
    CHECK(odd_k.exit_code == 2);
    CHECK_THAT(odd_k.output, Contains("sampler.steps 3"));
}

TEST_CASE("a shortcut run stopped and resumed equals an unbroken run bit for bit", "[integration]") {
    test::TempDir dir;
    auto reference = test::run_command(toy_train(dir / "reference", 40));
    INFO(reference.output);
    REQUIRE(reference.exit_code == 0);
    auto first = test::run_command(toy_train(dir / "broken", 40, "--stop-at-step 17"));
    INFO(first.output);
    REQUIRE(first.exit_code == 0);
    auto second = test::run_command(kOnestep + " train shortcut --threads 2 --resume " + (dir / "broken"));
    INFO(second.output);
    REQUIRE(second.exit_code == 0);
    test::require_identical_checkpoints(dir / "reference/checkpoints/latest.ckpt", dir / "broken/checkpoints/latest.ckpt");
}
