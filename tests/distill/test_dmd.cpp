// DMD and MSD: the distribution-matching gradient (zero when the critic is the teacher, its sign on
// the spec's two-mode point, its autograd form), the critic's loss, label draws, the partition and
// the router, shared regression batches, and both methods through the CLI with an exact resume.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "distill/dmd/dmd.hpp"
#include "distill/pairs_source.hpp"
#include "models/analytic_mixture.hpp"
#include "models/conversions.hpp"
#include "models/denoiser.hpp"
#include "models/ema.hpp"
#include "models/network.hpp"
#include "models/time_distribution.hpp"
#include "samplers/routed.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace onestep;
using Catch::Matchers::Contains;

namespace {

const std::string kOnestep = ONESTEP_BINARY;

// The exact flow towards one isotropic Gaussian N(mean, s^2 I): x0* = m + (t s^2 / q_t)(x_t - t m),
// q_t = t^2 s^2 + (1 - t)^2 (the analytic teacher's formula with a single mode).
class GaussianDenoiser : public Denoiser {
  public:
    GaussianDenoiser(at::Tensor mean, double std) : mean_(std::move(mean)), std_(std) {}
    at::Tensor velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor&) override {
        at::Tensor tb = broadcast_time(t, x_t);
        at::Tensor q = tb * tb * std_ * std_ + (1 - tb) * (1 - tb);
        at::Tensor x0 = mean_ + (tb * std_ * std_ / q) * (x_t - tb * mean_);
        return velocity_from_x0(x_t, t, x0);
    }
    int64_t num_classes() const override { return 0; }
    bool has_null_label() const override { return false; }

  private:
    at::Tensor mean_;
    double std_;
};

// x0 = VALUES[y] whatever x_t and t (label C, the null label, included): the DM step's inputs known exactly.
class ConstantDenoiser : public Denoiser {
  public:
    explicit ConstantDenoiser(std::vector<double> values) : values_(std::move(values)) {}
    at::Tensor velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) override {
        at::Tensor x0 = torch::tensor(values_, x_t.options()).index_select(0, labels).view({-1, 1}).expand_as(x_t);
        return velocity_from_x0(x_t, t, x0);
    }
    int64_t num_classes() const override { return static_cast<int64_t>(values_.size()) - 1; }
    bool has_null_label() const override { return true; }

  private:
    std::vector<double> values_;
};

std::shared_ptr<VelocityNet> random_mlp(int64_t classes) {
    Config config = resolve_config(network_options("mlp"), "", {"model.mlp.hidden=16", "model.mlp.depth=2"});
    auto net = make_network(config, {{2}, classes, 0});
    torch::NoGradGuard no_grad;
    for (auto& parameter : net->parameters()) parameter.normal_(0.0, 0.3);   // the output layer starts at zero
    return net;
}

// A sampler that answers with its own index in every coordinate: which student drew a sample.
class IndexSampler : public Sampler {
  public:
    explicit IndexSampler(double index) : index_(index) {}
    at::Tensor sample(const at::Tensor& noise, const at::Tensor&, const SampleOptions&) override {
        return torch::full_like(noise, index_);
    }
    std::vector<int64_t> sample_shape() const override { return {2}; }
    int64_t num_classes() const override { return 5; }
    int64_t nfe(const SampleOptions&) const override { return 1; }
    std::string describe(const SampleOptions&) const override { return "index"; }

  private:
    double index_;
};

}  // namespace

TEST_CASE("DM: with the critic a copy of the teacher the gradient is exactly zero", "[unit]") {
    torch::manual_seed(3);
    auto teacher_net = random_mlp(3);
    auto critic_net = teacher_net->make_sibling();
    copy_weights(*critic_net, *teacher_net);
    NetworkDenoiser teacher(teacher_net, Parameterisation::Velocity, 3, false);
    NetworkDenoiser critic(critic_net, Parameterisation::Velocity, 3, false);
    at::Tensor x = torch::randn({64, 2}, torch::requires_grad());
    DistributionMatching dm = distribution_matching(teacher, critic, x, torch::randint(0, 3, {64}), DmdSettings{});
    CHECK(dm.gradient.abs().max().item<double>() == 0.0);
    CHECK(dm.real_gap.abs().max().item<double>() == 0.0);
    // A different critic gives a non-zero pull.
    torch::NoGradGuard no_grad;
    for (auto& parameter : critic_net->parameters()) parameter.add_(0.1);
    DistributionMatching moved = distribution_matching(teacher, critic, x, torch::randint(0, 3, {64}), DmdSettings{});
    CHECK(moved.gradient.abs().max().item<double>() > 1e-3);
}

TEST_CASE("DM: one step moves an off-centre point towards its nearer mode; the flipped sign moves it away", "[unit]") {
    const double pi = 3.14159265358979323846;
    at::Tensor mu0 = torch::tensor({2.0, 0.0}), mu1 = torch::tensor({2 * std::cos(2 * pi / 8), 2 * std::sin(2 * pi / 8)});
    at::Tensor start = 0.7 * mu0 + 0.3 * mu1;
    GaussianMixtureDenoiser real(MixtureLabels::None);
    for (double sign : {1.0, -1.0}) {
        INFO("sign " << sign);
        torch::manual_seed(11);
        at::Tensor p = start.clone().requires_grad_(true);
        GaussianDenoiser fake(p.detach().clone(), 0.05);   // the generator's own distribution: N(p, 0.05^2)
        at::Tensor x = p.unsqueeze(0).expand({256, 2});    // 256 copies, independent t and eps
        DistributionMatching dm = distribution_matching(real, fake, x, torch::zeros({256}, torch::kLong), DmdSettings{});
        (sign * dm.loss).backward();
        torch::NoGradGuard no_grad;
        at::Tensor moved = p - 0.1 * p.grad();   // one SGD step
        double before = (start - mu0).norm().item<double>(), after = (moved - mu0).norm().item<double>();
        if (sign > 0)
            CHECK(after < before - 1e-4);
        else
            CHECK(after > before + 1e-4);
    }
}

TEST_CASE("DM: the loss's gradient in x is g / numel", "[unit]") {
    torch::manual_seed(5);
    auto teacher_net = random_mlp(0), critic_net = random_mlp(0);
    NetworkDenoiser teacher(teacher_net, Parameterisation::Velocity, 0, false);
    NetworkDenoiser critic(critic_net, Parameterisation::Velocity, 0, false);
    at::Tensor x = torch::randn({32, 2}, torch::requires_grad());
    DistributionMatching dm = distribution_matching(teacher, critic, x, torch::zeros({32}, torch::kLong), DmdSettings{});
    dm.loss.backward();
    CHECK(torch::allclose(x.grad(), dm.gradient / static_cast<double>(x.numel()), 1e-5, 1e-6));
    CHECK_FALSE(dm.gradient.requires_grad());
    CHECK(torch::isfinite(dm.gradient).all().item<bool>());
}

TEST_CASE("DM: g is (x0_fake - x0_real) over each sample's own mean |x - x0_real|, guidance on the real side only",
          "[unit]") {
    // Two classes and the null label: real x0 = 1 (y = 0), 3 (y = 1), 0 (null); fake x0 = 2 everywhere.
    ConstantDenoiser real({1.0, 3.0, 0.0}), fake({2.0, 2.0, 2.0});
    at::Tensor x = torch::tensor({{1.5, 0.5, 1.0, 1.0}, {3.0, 5.0, 3.0, 3.0}}, torch::kDouble);
    at::Tensor labels = torch::tensor({0, 1}, torch::kLong);
    DmdSettings settings;
    DistributionMatching plain = distribution_matching(real, fake, x, labels, settings);
    // Sample 0: x0_real = 1, mean |x - 1| = 0.25, g = (2 - 1) / 0.25 = 4. Sample 1: x0_real = 3,
    // mean |x - 3| = 0.5, g = (2 - 3) / 0.5 = -2. A batch-wide normaliser would give 1/0.375 and -1/0.375.
    CHECK(torch::allclose(plain.gradient[0], torch::full({4}, 4.0, torch::kDouble), 1e-9, 1e-9));
    CHECK(torch::allclose(plain.gradient[1], torch::full({4}, -2.0, torch::kDouble), 1e-9, 1e-9));
    // w = 2 on the real score: x0_real = 0 + 2 (c - 0) = 2 c; the fake side stays unguided (2).
    settings.guidance = 2.0;
    DistributionMatching guided = distribution_matching(real, fake, x, labels, settings);
    // Sample 0: x0_real = 2 = x0_fake, g = 0. Sample 1: x0_real = 6, mean |x - 6| = 2.5, g = (2 - 6) / 2.5.
    CHECK(guided.gradient[0].abs().max().item<double>() < 1e-9);
    CHECK(torch::allclose(guided.gradient[1], torch::full({4}, -1.6, torch::kDouble), 1e-9, 1e-9));
    // A non-finite real prediction (here for class 1) leaves g = 0 for that sample, the others intact.
    ConstantDenoiser broken({1.0, std::nan(""), 0.0});
    DistributionMatching cleaned = distribution_matching(broken, fake, x, labels, DmdSettings{});
    CHECK(torch::allclose(cleaned.gradient[0], torch::full({4}, 4.0, torch::kDouble), 1e-9, 1e-9));
    CHECK(cleaned.gradient[1].abs().max().item<double>() == 0.0);
}

TEST_CASE("the critic regresses the flow velocity of detached samples", "[unit]") {
    torch::manual_seed(7);
    auto critic = random_mlp(0);
    at::Tensor x = torch::randn({16, 2}, torch::requires_grad());
    at::Tensor loss = critic_flow_loss(*critic, x, torch::zeros({16}, torch::kLong), TimeDistribution{});
    loss.backward();
    CHECK(loss.item<double>() > 0);
    CHECK_FALSE(x.grad().defined());   // never a path into the generator
    bool any = false;
    for (auto& parameter : critic->parameters()) any = any || (parameter.grad().defined() && parameter.grad().abs().sum().item<double>() > 0);
    CHECK(any);
}

TEST_CASE("generator labels come only from the student's classes", "[unit]") {
    torch::manual_seed(1);
    at::Tensor labels = draw_labels(torch::tensor({5, 6, 9}, torch::kLong), 3000);
    std::set<int64_t> seen;
    for (int64_t i = 0; i < labels.numel(); ++i) seen.insert(labels[i].item<int64_t>());
    CHECK(seen == std::set<int64_t>{5, 6, 9});
    CHECK(draw_labels(torch::empty({0}, torch::kLong), 4).abs().sum().item<int64_t>() == 0);
}

TEST_CASE("MSD partition: equal contiguous groups, a total router, each class drawn by its own student", "[unit]") {
    auto two = contiguous_partition(10, 2);
    CHECK(two == std::vector<std::vector<int64_t>>{{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}});
    for (int64_t groups = 1; groups <= 10; ++groups) {
        auto partition = contiguous_partition(10, groups);
        size_t smallest = 10, largest = 0;
        for (const auto& group : partition) {
            smallest = std::min(smallest, group.size());
            largest = std::max(largest, group.size());
        }
        CHECK(largest - smallest <= 1);
        std::vector<int64_t> route = route_table(partition, 10);
        for (int64_t c = 0; c < 10; ++c) CHECK(route[static_cast<size_t>(c)] == c * groups / 10);   // floor(cK/C)
    }
    CHECK(route_table(contiguous_partition(10, 3), 10) == std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 2, 2, 2});
    CHECK(route_table(contiguous_partition(4, 4), 4) == std::vector<int64_t>{0, 1, 2, 3});
    CHECK_THAT(test::user_error_message([] { contiguous_partition(4, 5); }), Contains("5 students for 4 classes"));
    CHECK_THAT(test::user_error_message([] { contiguous_partition(0, 1); }), Contains("class-conditional"));

    std::vector<std::unique_ptr<Sampler>> students;
    students.push_back(std::make_unique<IndexSampler>(0));
    students.push_back(std::make_unique<IndexSampler>(1));
    auto route = route_table(contiguous_partition(5, 2), 5);   // {0, 1, 2} -> 0, {3, 4} -> 1
    RoutedSampler routed(std::move(students), route);
    at::Tensor labels = torch::tensor({4, 0, 3, 1, 2, 4}, torch::kLong);
    at::Tensor x = routed.sample(torch::randn({6, 2}), labels, {});
    for (int64_t i = 0; i < 6; ++i) CHECK(x[i][0].item<double>() == static_cast<double>(route[labels[i].item<int64_t>()]));
    CHECK_THAT(test::user_error_message([&] { routed.sample(torch::randn({1, 2}), torch::tensor({5}, torch::kLong), {}); }),
               Contains("0..4"));
}

TEST_CASE("MSD regression batches are shared: every student's pairs hold classes outside its group", "[unit]") {
    TeacherPairs pairs;
    pairs.z = torch::randn({40, 2});
    pairs.x = torch::randn({40, 2});
    pairs.y = torch::arange(40, torch::kLong) % 4;
    pairs.num_classes = 4;
    PairsSource source(pairs, 16, 1);
    auto groups = contiguous_partition(4, 2);
    for (int64_t step = 0; step < 6; ++step) {   // students take the steps in turn
        const auto& own = groups[static_cast<size_t>(step % 2)];
        Batch batch = source.batch(step, 0, 1);
        bool outside = false;
        for (int64_t i = 0; i < batch.y.numel(); ++i)
            outside = outside || std::find(own.begin(), own.end(), batch.y[i].item<int64_t>()) == own.end();
        CHECK(outside);
    }
}

TEST_CASE("DMD and MSD train from a flow teacher through the CLI, resume exactly and sample in one step",
          "[integration]") {
    test::TempDir dir;
    // A conditional teacher on the coarse labels (4 classes of two modes each).
    auto teacher = test::run_command(test::toy_train_command("flow", dir / "teacher",
                                                 "--set steps=20 --set ckpt_every=20 --set data.name=toy:8gaussians-coarse "
                                                 "--set data.conditional=true --set model.mlp.hidden=32"));
    INFO(teacher.output);
    REQUIRE(teacher.exit_code == 0);
    auto pairs = test::run_command(kOnestep + " sample --ckpt " + (dir / "teacher") +
                                   " --pairs 200 --sampler euler --steps 4 --out " + (dir / "pairs.bin"));
    INFO(pairs.output);
    REQUIRE(pairs.exit_code == 0);

    const std::string common = " --set dmd.teacher=" + (dir / "teacher") +
                               " --set steps=12 --set batch_size=32 --set log_every=1 --set ckpt_every=4 "
                               "--set model.mlp.hidden=32 --set dmd.ttur=3 --set dmd.init=";
    const std::string shared_pairs = " --set dmd.pairs=" + (dir / "pairs.bin") +
                                     " --set dmd.regression_weight=0.25 --set msd.students=2";
    struct Variant {
        std::string name, method, settings;
    };
    // msd-tsm: students half the teacher's width, by Teacher Score Matching on real data of their
    // classes for 2 iterations each; the run stops between the two students' switches to DM.
    const std::vector<Variant> variants{
        {"dmd", "dmd", common},
        {"msd", "msd", common + shared_pairs},
        {"msd-tsm", "msd",
         common + shared_pairs + " --set msd.init=tsm --set msd.tsm_steps=2 --set model.mlp.hidden=16"}};
    for (const Variant& variant : variants) {
        const std::string method = variant.method, settings = variant.settings, name = variant.name;
        INFO(name);
        auto reference = test::run_command(test::toy_train_command(method, dir / (name + "-ref"), settings));
        INFO(reference.output);
        REQUIRE(reference.exit_code == 0);
        const std::string log = dir / (name + "-ref/log.jsonl");
        const size_t dm_records = name == "msd-tsm" ? 8 : 12;   // after 2 TSM iterations per student
        CHECK(test::mean_log_value(log, "loss_critic", 0, dm_records) > 0);
        CHECK(test::mean_log_value(log, "g_norm", 0, dm_records) > 0);   // the critic moved away from the teacher
        if (method == "msd") {
            CHECK(test::mean_log_value(log, "loss_regression", 0, dm_records) > 0);
            // Each student's regression rows come from every class: about half lie outside its own two.
            CHECK(test::mean_log_value(log, "regression_outside_share", 0, dm_records) > 0.2);
        }
        if (name == "msd-tsm") CHECK(test::mean_log_value(log, "loss_tsm", 0, 4) > 0);

        test::require_exact_toy_resume(method, dir / (name + "-broken"), settings, 5,
                                       dir / (name + "-ref/checkpoints/latest.ckpt"));

        auto evaluated = test::run_command(kOnestep + " eval toy --fake ckpt:" + (dir / (name + "-ref")) +
                                           " --real toy:8gaussians-coarse --n 200");
        INFO(evaluated.output);
        CHECK(evaluated.exit_code == 0);
        CHECK_THAT(evaluated.output, Contains("1 NFE"));
        if (method == "msd") CHECK_THAT(evaluated.output, Contains("routed over 2 students"));
        CHECK_THAT(evaluated.output, Contains("conditional accuracy"));
    }

    auto no_teacher = test::run_command(test::toy_train_command("dmd", dir / "none", "--set steps=2 --set dmd.teacher="));
    CHECK(no_teacher.exit_code == 2);
    CHECK_THAT(no_teacher.output, Contains("dmd.teacher is not set"));
    auto analytic = test::run_command(test::toy_train_command("dmd", dir / "none", "--set steps=2"));   // no network to start from
    CHECK(analytic.exit_code == 2);
    CHECK_THAT(analytic.output, Contains("dmd.init is not set"));
    auto other_size = test::run_command(test::toy_train_command("dmd", dir / "none", common + " --set model.mlp.hidden=64"));
    CHECK(other_size.exit_code == 2);
    CHECK_THAT(other_size.output, Contains("model block"));
    auto too_many = test::run_command(test::toy_train_command("msd", dir / "none", common + " --set msd.students=5 --set dmd.regression_weight=0"));
    CHECK(too_many.exit_code == 2);
    CHECK_THAT(too_many.output, Contains("msd.students = 5 but the teacher has 4 classes"));
    auto tsm_only = test::run_command(test::toy_train_command(
        "msd", dir / "none", common + shared_pairs + " --set msd.init=tsm --set msd.tsm_steps=6"));
    CHECK(tsm_only.exit_code == 2);   // 12 steps, all of them TSM
    CHECK_THAT(tsm_only.output, Contains("leaves no DM iterations"));
    auto unweighted = test::run_command(test::toy_train_command("dmd", dir / "none", common + " --set dmd.pairs=" + (dir / "pairs.bin")));
    CHECK(unweighted.exit_code == 2);
    CHECK_THAT(unweighted.output, Contains("dmd.regression_weight is 0"));
    auto wrong_data = test::run_command(
        test::toy_train_command("msd", dir / "none", common + shared_pairs + " --set msd.init=tsm --set data.name=toy:8gaussians"));
    CHECK(wrong_data.exit_code == 2);   // 8 fine classes, the teacher has 4 coarse ones
    CHECK_THAT(wrong_data.output, Contains("msd.init = tsm: data.name"));
    auto student = test::run_command(test::toy_train_command("dmd", dir / "none", "--set steps=2 --set dmd.teacher=" + (dir / "dmd-ref")));
    CHECK(student.exit_code == 2);
    CHECK_THAT(student.output, Contains("not a multi-step teacher"));
    CHECK_FALSE(fs::exists(dir / "none"));
}
