// The flow and VP teachers through the real onestep binary: losses fall on a tiny toy problem,
// checkpoints sample through every sampler, and bad sampling requests get clear errors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
namespace test = onestep::test;

namespace {

const std::string kOnestep = ONESTEP_BINARY;

std::string toy_train(const std::string& method, const std::string& run_dir, int steps) {
    return kOnestep + " train " + method + " --config " + ONESTEP_SOURCE_DIR + "/configs/toy2d/" + method +
           ".yaml --threads 2 --run-dir " + run_dir + " --set steps=" + std::to_string(steps) +
           " --set log_every=10 --set ckpt_every=1000 --set data.toy_size=5000 --set batch_size=256 --set sample.n=200"
           " --set data.conditional=true --set teacher.p_uncond=0.1";
}

}  // namespace

TEST_CASE("the flow teacher's loss falls on eight Gaussians and it samples with every sampler", "[integration]") {
    test::TempDir dir;
    auto run = test::run_command(toy_train("flow", dir / "flow", 300));
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    CHECK(test::mean_log_value(dir / "flow/log.jsonl", "loss", 25, 30) < 0.8 * test::mean_log_value(dir / "flow/log.jsonl", "loss", 0, 3));
    for (std::string sampler : {"euler", "heun", "ddim"}) {
        auto sampled = test::run_command(kOnestep + " sample --ckpt " + (dir / "flow") + " --sampler " + sampler +
                                         " --steps 8 --n 100 --cfg 1.5 --out " + (dir / (sampler + ".csv")));
        INFO(sampled.output);
        CHECK(sampled.exit_code == 0);
        CHECK(fs::exists(dir / (sampler + ".csv")));
    }
    auto scatter = test::run_command(kOnestep + " sample --ckpt " + (dir / "flow") + " --steps 4 --out " + (dir / "s.png"));
    CHECK(scatter.exit_code == 0);
    CHECK(fs::file_size(dir / "s.png") > 1000);
    auto evaluated = test::run_command(kOnestep + " eval toy --fake ckpt:" + (dir / "flow") + " --steps 20 --n 500");
    INFO(evaluated.output);
    CHECK(evaluated.exit_code == 0);
    CHECK_THAT(evaluated.output, Contains("sliced W1"));
    CHECK(fs::exists(dir / "flow/eval/toy-default-20nfe.json"));
}

TEST_CASE("the VP teacher's loss falls and it samples through the adapter", "[integration]") {
    test::TempDir dir;
    auto run = test::run_command(toy_train("vp", dir / "vp", 300));
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    CHECK(test::mean_log_value(dir / "vp/log.jsonl", "loss", 25, 30) < 0.9 * test::mean_log_value(dir / "vp/log.jsonl", "loss", 0, 3));
    auto sampled = test::run_command(kOnestep + " sample --ckpt " + (dir / "vp") + " --steps 10 --n 64 --out " + (dir / "p.csv"));
    INFO(sampled.output);
    CHECK(sampled.exit_code == 0);
}

TEST_CASE("a two-step image teacher trains and samples through the CLI", "[integration]") {
    test::TempDir dir;
    test::write_square_images(dir / "images");
    std::string common = " --threads 2 --set data.name=folder:" + (dir / "images") +
                         " --set data.image_size=8 --set steps=2 --set batch_size=4 --set sample.n=4"
                         " --set sampler.steps=2 --set model.unet.channels=8 --set model.unet.channel_mult=[1,2]"
                         " --set model.unet.attention_resolutions=[4] --set model.dit.dim=16 --set model.dit.depth=1"
                         " --set model.dit.patch=2 --set model.dit.heads=2";
    for (std::string arch : {"unet", "dit"}) {
        auto run = test::run_command(kOnestep + " train flow --run-dir " + (dir / arch) + " --set model.arch=" + arch + common);
        INFO(run.output);
        REQUIRE(run.exit_code == 0);
        CHECK(fs::exists(dir / (arch + "/samples/step-00000002.png")));
        auto grid = test::run_command(kOnestep + " sample --ckpt " + (dir / arch) + " --steps 2 --n 6 --out " + (dir / (arch + ".png")));
        INFO(grid.output);
        CHECK(grid.exit_code == 0);
        auto folder = test::run_command(kOnestep + " sample --ckpt " + (dir / arch) + " --steps 1 --n 3 --out " + (dir / (arch + "-each/")));
        CHECK(folder.exit_code == 0);
        CHECK(fs::exists(dir / (arch + "-each/000002.png")));
    }
}

TEST_CASE("bad sampling requests are refused with the reason", "[integration]") {
    test::TempDir dir;
    auto run = test::run_command(toy_train("flow", dir / "flow", 2) + " --set teacher.p_uncond=0.0");
    REQUIRE(run.exit_code == 0);
    auto guided = test::run_command(kOnestep + " sample --ckpt " + (dir / "flow") + " --cfg 2 --out " + (dir / "a.csv"));
    CHECK(guided.exit_code == 2);
    CHECK_THAT(guided.output, Contains("without label dropout"));
    auto klass = test::run_command(kOnestep + " sample --ckpt " + (dir / "flow") + " --class 12 --out " + (dir / "a.csv"));
    CHECK(klass.exit_code == 2);
    CHECK_THAT(klass.output, Contains("8 classes"));
    auto format = test::run_command(kOnestep + " sample --ckpt " + (dir / "flow") + " --out " + (dir / "a.txt"));
    CHECK(format.exit_code == 2);
    auto unwritable = test::run_command(kOnestep + " sample --ckpt " + (dir / "flow") + " --out /proc/nope/a.csv");
    CHECK(unwritable.exit_code == 2);
    CHECK_THAT(unwritable.output, Contains("/proc/nope/a.csv"));
    auto missing = test::run_command(kOnestep + " sample --ckpt " + (dir / "nothing") + " --out " + (dir / "a.csv"));
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.output, Contains("no such checkpoint"));
    CHECK_FALSE(fs::exists(dir / "a.csv"));
}
