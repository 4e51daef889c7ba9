// Generative separation on the mixture's constraint set: the projections, the prior, the flow
// RoFormer's velocity (tangent to M_x, FiLM starting as the identity), the shortcut batch on
// M_x, and the flow separator through the real CLI (train, resume, separate in 1 and 2 steps
// with mixture-consistent, batch-independent output, bad inputs).
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <regex>

#include "audio/audio_io.hpp"
#include "audio/separators/flow_roformer.hpp"
#include "core/files.hpp"
#include "distill/shortcut/shortcut.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using onestep::BandSplitRoformerConfig;
namespace test = onestep::test;

namespace {

const std::string kOnestep = ONESTEP_BINARY;

double max_abs(const at::Tensor& x) { return x.abs().max().item<double>(); }

std::shared_ptr<onestep::FlowRoformerImpl> small_flow_net(int64_t levels, bool magnitude = false) {
    auto config = BandSplitRoformerConfig::preset("bsr-ci");
    config.band_magnitude = magnitude;
    return std::make_shared<onestep::FlowRoformerImpl>(config, levels);
}

}  // namespace

TEST_CASE("the constraint-set projections and the prior keep sum(stems) = mixture", "[unit]") {
    at::Generator generator = at::detail::createCPUGenerator(3);
    at::Tensor mixture = at::randn({2, 2, 300}, generator);
    at::Tensor stems = at::randn({2, 4, 2, 300}, generator);
    at::Tensor projected = onestep::project_to_mixture(stems, mixture);
    CHECK(max_abs(projected.sum(1) - mixture) < 1e-5);
    CHECK(max_abs(onestep::project_to_mixture(projected, mixture) - projected) < 1e-6);   // idempotent
    // Π_x moves every stem by the same amount: the smallest change that meets the constraint.
    at::Tensor moved = projected - stems;
    CHECK(max_abs(moved - moved.select(1, 0).unsqueeze(1)) < 1e-6);
    CHECK(max_abs(onestep::project_tangent(stems).sum(1)) < 1e-5);

    at::Tensor prior = onestep::mixture_prior(mixture, 4, 0.5, at::detail::createCPUGenerator(7));
    CHECK(max_abs(prior.sum(1) - mixture) < 1e-5);
    CHECK(prior.equal(onestep::mixture_prior(mixture, 4, 0.5, at::detail::createCPUGenerator(7))));
    // The free part is σ_p ε projected onto Σ = 0: per-element variance σ_p² (K − 1) / K.
    at::Tensor free = prior - (mixture / 4).unsqueeze(1);
    CHECK(free.pow(2).mean().item<double>() == Approx(0.25 * 3 / 4).epsilon(0.1));
}

TEST_CASE("the flow RoFormer's velocity is tangent to the constraint set and starts t-independent", "[unit]") {
    torch::manual_seed(4);
    for (bool magnitude : {false, true}) {
        INFO("band magnitudes " << magnitude);
        auto net = small_flow_net(4, magnitude);
        // bsr-ci's count with band inputs K + 1 signals wide, heads emitting spectra (half the GLU's
        // width), the (t, level) embedding (5 312) and FiLM (4 224).
        int64_t parameters = 0;
        for (const auto& parameter : net->parameters()) parameters += parameter.numel();
        CHECK(parameters == (magnitude ? 574002 : 574002 - 5 * 2 * 257 * 33));
        at::Tensor mixture = torch::randn({2, 2, 4096}) * 0.1;
        at::Tensor state = onestep::mixture_prior(mixture, 4, 0.1);
        at::Tensor levels = torch::tensor({0, 3}, torch::kLong);
        torch::NoGradGuard no_grad;
        at::Tensor v = net->forward(state, torch::tensor({0.0f, 0.25f}), at::Tensor(), levels);
        REQUIRE(v.sizes() == state.sizes());
        CHECK(max_abs(v.sum(1)) < 1e-5 * max_abs(v));
        CHECK(max_abs((state + v).sum(1) - mixture) < 1e-5);   // a jump to t = 1 lands on M_x
        // FiLM is zero-initialised: the estimate s_t + (1 − t) v does not depend on (t, level) yet.
        at::Tensor at_half = net->forward(state, torch::tensor({0.5f, 0.5f}), at::Tensor(), torch::tensor({1, 1}, torch::kLong));
        CHECK(max_abs((state + v * torch::tensor({1.0f, 0.75f}).view({2, 1, 1, 1})) - (state + 0.5 * at_half)) < 1e-5);
        // ... and it does once the FiLM weights move.
        for (auto& item : net->named_parameters())
            if (item.key().rfind("film.", 0) == 0) item.value().normal_(0, 0.1);
        at::Tensor moved = net->forward(state, torch::tensor({0.5f, 0.5f}), at::Tensor(), torch::tensor({1, 1}, torch::kLong));
        CHECK(max_abs(moved - at_half) > 1e-4);
    }
    // The prior's scale lives in the module's buffers, so checkpoints and EMA copies carry it.
    auto net = small_flow_net(2);
    CHECK(net->prior_std() == 0);
    net->set_prior_std(0.07);
    auto sibling = std::dynamic_pointer_cast<onestep::FlowRoformerImpl>(net->make_sibling());
    REQUIRE(sibling);
    CHECK(sibling->named_buffers().contains("prior_std"));
    CHECK_THROWS_WITH(net->forward(torch::zeros({1, 3, 2, 1024}), torch::zeros({1}), at::Tensor(), torch::zeros({1}, torch::kLong)),
                      Contains("FlowRoformer expects [B, 4, 2, T]"));
}

TEST_CASE("a shortcut batch from the mixture prior stays on the constraint set", "[unit]") {
    torch::manual_seed(5);
    auto net = small_flow_net(4);
    net->eval();
    onestep::ShortcutSettings settings;
    settings.max_steps = 8;
    settings.bootstrap_fraction = 0.5;
    settings.p_uncond = 0;
    at::Tensor stems = torch::randn({6, 4, 2, 2048}) * 0.1;
    at::Tensor mixture = stems.sum(1);
    at::Tensor prior = onestep::mixture_prior(mixture, 4, 0.1);
    onestep::ShortcutBatch batch = onestep::make_shortcut_batch(stems, at::Tensor(), *net, settings, prior);
    REQUIRE(batch.bootstrap_count == 3);
    CHECK(max_abs(batch.x_t.sum(1) - mixture) < 1e-5);
    // Flow items regress u = s − z̃ exactly; bootstrap targets are mixes of tangent velocities.
    CHECK(max_abs(batch.targets.slice(0, 3, 6) - (stems - prior).slice(0, 3, 6)) < 1e-6);
    CHECK(max_abs(batch.targets.sum(1)) < 1e-4);
    CHECK(batch.levels.slice(0, 3, 6).eq(3).all().item<bool>());
}

TEST_CASE("flow separator: train, resume, separate in 1 and 2 steps through the CLI", "[integration]") {
    test::TempDir dir;
    std::string data = dir / "stems";
    auto rendered = test::run_command(kOnestep + " data render-stems --out " + data + " --size ci --format float");
    INFO(rendered.output);
    REQUIRE(rendered.exit_code == 0);
    auto train = [&](const std::string& run, const std::string& extra) {
        return test::run_command(kOnestep + " train flow-separator --config " + ONESTEP_SOURCE_DIR +
                                 "/configs/stems/flow-separator-ci.yaml --run-dir " + run + " --set data.name=stems:" + data +
                                 " --set steps=6 --set stems.chunk=8192 --set batch_size=4 --set flow.max_steps=4"
                                 " --set log_every=1 --set ckpt_every=3 --set stems.valid_songs=1 --set optim.warmup_steps=0 --threads 2 " +
                                 extra);
    };
    std::string run = dir / "run";
    auto trained = train(run, "");
    INFO(trained.output);
    REQUIRE(trained.exit_code == 0);
    std::string log = test::read_text(run + "/log.jsonl");
    CHECK_THAT(log, Contains("\"loss_shortcut\""));
    CHECK_THAT(log, Contains("\"usdr_mean_mix_k\""));

    // Stopping at 3 and resuming gives the same weights (and prior scale) as the straight run.
    std::string split_run = dir / "split";
    REQUIRE(train(split_run, "--stop-at-step 3").exit_code == 0);
    auto resumed = test::run_command(kOnestep + " train flow-separator --resume " + split_run + " --threads 2");
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    test::require_identical_checkpoints(run + "/checkpoints/latest.ckpt", split_run + "/checkpoints/latest.ckpt");

    std::string song = onestep::list_directory(data + "/test").front().name;
    std::string input = data + "/test/" + song + "/mixture.wav";
    const char* names[] = {"bass", "drums", "other", "vocals"};
    std::map<std::string, double> evaluations;   // network evaluations per audio second, by output folder
    auto separate = [&](const std::string& out, const std::string& extra) {
        auto result = test::run_command(kOnestep + " separate --ckpt " + run + " " + input + " --out " + (dir / out) +
                                        " --format wav-float --overlap 0.5 " + extra);
        INFO(result.output);
        REQUIRE(result.exit_code == 0);
        std::smatch found;
        REQUIRE(std::regex_search(result.output, found, std::regex("RTF [0-9.]+, ([0-9.]+) network evaluations per audio second")));
        evaluations[out] = std::stod(found[1].str());
        std::vector<at::Tensor> stems;
        for (const char* stem : names) stems.push_back(onestep::read_audio(dir / (out + "/" + song + "/" + stem + ".wav")).samples);
        return torch::stack(stems);
    };
    at::Tensor mixture = onestep::read_audio(input).samples;
    at::Tensor one = separate("one", "--steps 1 --batch 1");
    at::Tensor two = separate("two", "--steps 2");
    REQUIRE(one.sizes() == two.sizes());
    CHECK(one.size(-1) == mixture.size(-1));
    // Every chunk is mixture-consistent, so the overlap-added stems sum to the mixture.
    CHECK(max_abs(one.sum(0) - mixture) < 1e-4);
    CHECK(max_abs(two.sum(0) - mixture) < 1e-4);
    CHECK(max_abs(one - two) > 1e-6);
    // Two steps cost two network evaluations per chunk: 8192-frame chunks every 4096 frames.
    CHECK(evaluations["one"] > 0);
    CHECK(evaluations["two"] == Approx(2 * evaluations["one"]).epsilon(0.01));
    // About one chunk per 4096 frames, plus the partial chunks at both ends.
    CHECK(evaluations["one"] >= 0.95 * 22050.0 / 4096);
    CHECK(evaluations["one"] <= 1.6 * 22050.0 / 4096);
    // The prior noise is seeded per chunk, so batching does not change the result.
    CHECK(max_abs(separate("batched", "--steps 1 --batch 3") - one) < 1e-5);

    // Bad step counts are refused and write nothing; a one-pass separator refuses --steps.
    auto bad = test::run_command(kOnestep + " separate --ckpt " + run + " " + input + " --out " + (dir / "nothing") + " --steps 3");
    CHECK(bad.exit_code != 0);
    CHECK_THAT(bad.output, Contains("--steps"));
    CHECK(!fs::exists(dir / "nothing"));
    auto too_many = test::run_command(kOnestep + " separate --ckpt " + run + " " + input + " --out " + (dir / "nothing") + " --steps 8");
    CHECK(too_many.exit_code != 0);
    CHECK(!fs::exists(dir / "nothing"));
    std::string plain = dir / "plain";
    REQUIRE(test::run_command(kOnestep + " train separator --config " + ONESTEP_SOURCE_DIR + "/configs/stems/roformer-ci.yaml --run-dir " +
                              plain + " --set data.name=stems:" + data + " --set steps=1 --set stems.chunk=8192 --set batch_size=2"
                              " --threads 2")
                .exit_code == 0);
    auto one_pass = test::run_command(kOnestep + " separate --ckpt " + plain + " " + input + " --out " + (dir / "nothing") + " --steps 2");
    CHECK(one_pass.exit_code != 0);
    CHECK_THAT(one_pass.output, Contains("sampling steps apply to flow separators"));
    CHECK(!fs::exists(dir / "nothing"));
    // The shortcut needs every level in every batch.
    auto small_batch = train(dir / "small", "--set batch_size=2 --set flow.max_steps=8");
    CHECK(small_batch.exit_code != 0);
    CHECK_THAT(small_batch.output, Contains("raise batch_size or flow.bootstrap_fraction"));
    CHECK(!fs::exists(dir / "small/checkpoints/latest.ckpt"));
}
#endif
