// toy:NAME datasets: shapes, labels, the geometry each toy promises, and determinism from
// (seed, split) alone, pinned by golden values.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>

#include "data/dataset.hpp"
#include "data_test_helpers.hpp"

using onestep::DataSpec;
using onestep::data_test::user_error_message;

namespace {

onestep::Dataset toy(const std::string& name, const std::string& split = "train", uint64_t seed = 0,
                     int64_t size = 4000) {
    DataSpec spec;
    spec.name = "toy:" + name;
    spec.split = split;
    spec.seed = seed;
    spec.toy_size = size;
    return onestep::load_dataset(spec);
}

}   // namespace

TEST_CASE("every toy has float32 [N,2] points and labels in range", "[unit]") {
    const std::vector<std::pair<std::string, int64_t>> toys = {{"8gaussians", 8},
                                                               {"8gaussians-coarse", 4},
                                                               {"moons", 2},
                                                               {"checkerboard", 1},
                                                               {"spirals", 2}};
    for (const auto& [name, classes] : toys) {
        INFO(name);
        auto data = toy(name);
        CHECK_FALSE(data.is_image);
        CHECK(data.name == "toy:" + name);
        REQUIRE(data.x.sizes() == torch::IntArrayRef({4000, 2}));
        CHECK(data.x.scalar_type() == torch::kFloat32);
        CHECK(data.y.scalar_type() == torch::kInt64);
        CHECK(data.num_classes == classes);
        CHECK(static_cast<int64_t>(data.class_names.size()) == classes);
        // Every class is drawn, about equally often.
        auto counts = torch::bincount(data.y, {}, classes);
        CHECK(counts.size(0) == classes);
        CHECK(counts.min().item<int64_t>() > 4000 / classes * 0.85);
        CHECK(counts.max().item<int64_t>() < 4000 / classes * 1.15);
        CHECK(data.x.abs().max().item<float>() < 5.0f);
        // Toys reach the model unchanged.
        CHECK(torch::equal(onestep::to_model_input(data, data.x, 32), data.x));
    }
}

TEST_CASE("toys are a pure function of seed and split", "[unit]") {
    for (const std::string name : {"8gaussians", "moons", "checkerboard", "spirals"}) {
        INFO(name);
        auto first = toy(name, "train", 3);
        auto again = toy(name, "train", 3);
        CHECK(torch::equal(first.x, again.x));
        CHECK(torch::equal(first.y, again.y));
        CHECK_FALSE(torch::equal(first.x, toy(name, "test", 3).x));
        CHECK_FALSE(torch::equal(first.x, toy(name, "train", 4).x));
        // torch's global generator plays no part.
        torch::manual_seed(123);
        CHECK(torch::equal(first.x, toy(name, "train", 3).x));
        auto all = toy(name, "all", 3);
        REQUIRE(all.size() == 8000);
        CHECK(torch::equal(all.x.slice(0, 0, 4000), first.x));
        CHECK(torch::equal(all.x.slice(0, 4000), toy(name, "test", 3).x));
    }
    // Golden values: the streams must not change between builds or platforms.
    auto golden = toy("8gaussians", "train", 0, 2);
    CHECK(golden.y[0].item<int64_t>() == 0);
    CHECK(golden.x[0][0].item<float>() == Approx(2.2558105).margin(1e-6));
    CHECK(golden.x[0][1].item<float>() == Approx(-0.0438118167).margin(1e-6));
}

TEST_CASE("8gaussians has its eight modes and coarse merges neighbours", "[unit]") {
    auto fine = toy("8gaussians", "train", 1, 16000);
    constexpr double kPi = 3.14159265358979323846;
    for (int64_t mode = 0; mode < 8; ++mode) {
        INFO("mode " << mode);
        auto points = fine.x.index({fine.y == mode});
        auto mean = points.mean(0);
        CHECK(mean[0].item<double>() == Approx(2 * std::cos(2 * kPi * mode / 8)).margin(0.02));
        CHECK(mean[1].item<double>() == Approx(2 * std::sin(2 * kPi * mode / 8)).margin(0.02));
        CHECK(points.std(0).mean().item<double>() == Approx(0.1).margin(0.01));
    }
    auto coarse = toy("8gaussians-coarse", "train", 1, 16000);
    CHECK(torch::equal(coarse.x, fine.x));
    CHECK(torch::equal(coarse.y, torch::div(fine.y, 2, "floor")));
}

TEST_CASE("checkerboard points lie on the dark squares only", "[unit]") {
    auto board = toy("checkerboard");
    auto squares = torch::floor(board.x / 2).sum(1).remainder(2);
    CHECK(squares.abs().max().item<float>() == 0.0f);
    CHECK(board.x.min().item<float>() >= -4.0f);
    CHECK(board.x.max().item<float>() <= 4.0f);
}

TEST_CASE("describe_dataset reports a toy's splits and classes", "[unit]") {
    DataSpec spec;
    spec.name = "toy:8gaussians-coarse";
    spec.toy_size = 100;
    const std::string report = onestep::describe_dataset(spec);
    CHECK_THAT(report, Catch::Contains("total: 200 points (100 train / 100 test)"));
    CHECK_THAT(report, Catch::Contains("modes 6-7"));
    CHECK_THAT(report, Catch::Contains("classes: 4"));
    CHECK_THAT(report, Catch::Contains("float32, x in [-2."));
}

TEST_CASE("unknown toys and bad sizes are refused", "[unit]") {
    CHECK_THAT(user_error_message([] { toy("swissroll"); }),
               Catch::Contains("unknown toy dataset 'toy:swissroll'; accepted: toy:8gaussians"));
    CHECK_THAT(user_error_message([] { toy("moons", "train", 0, 0); }),
               Catch::Contains("toy_size is 0"));
}
