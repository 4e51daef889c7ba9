// ForestFlow on tiny data: level grid, Euler call counts, resumed training identical to an
// uninterrupted run, and the CLI path train → sample → eval producing a CSV of the right shape.
#include <catch2/catch.hpp>

#if ONESTEP_WITH_TABULAR
#include <cmath>
#include <filesystem>
#include <random>
#include <sstream>

#include "support.hpp"
#include "tabular/forest_flow.hpp"
#include "tabular/table.hpp"

using namespace onestep::tabular;
namespace fs = std::filesystem;

namespace {

// Two classes of 2-D points around (±0.5, ±0.5), already on the model's scale.
ScaledRows toy_rows() {
    ScaledRows rows;
    rows.rows = 20;
    rows.width = 2;
    std::mt19937_64 rng(5);
    std::normal_distribution<double> normal(0, 0.1);
    for (size_t i = 0; i < rows.rows; ++i) {
        int label = i % 2;
        double center = label ? 0.5 : -0.5;
        rows.values.push_back(static_cast<float>(center + normal(rng)));
        rows.values.push_back(static_cast<float>(-center + normal(rng)));
        rows.labels.push_back(label);
    }
    return rows;
}

ForestFlowConfig tiny_config() {
    ForestFlowConfig config;
    config.levels = 4;
    config.duplicates = 5;
    config.rounds = 5;
    config.max_depth = 3;
    config.threads = 1;
    return config;
}

std::string file_bytes(const std::string& path) { return onestep::test::read_text(path); }

}  // namespace

TEST_CASE("the level grid runs from epsilon to 1 and time lookups round", "[unit]") {
    ForestFlowConfig config;
    REQUIRE(level_time(0, config) == Approx(1e-3));
    REQUIRE(level_time(49, config) == Approx(1.0));
    REQUIRE(level_for_time(0.0, 50) == 0);
    REQUIRE(level_for_time(48.0 / 49, 50) == 48);
    REQUIRE(level_for_time(1.5, 50) == 49);
    REQUIRE(trained_levels(config) == 49);
    config.set("levels=10");
    REQUIRE(config.levels == 10);
    REQUIRE_THAT(onestep::test::user_error_message([&] { config.set("depth=3"); }),
                 Catch::Contains("unknown key") && Catch::Contains("max_depth"));
    REQUIRE_THAT(onestep::test::user_error_message([&] { config.set("levels=1"); }), Catch::Contains("at least 2"));
}

TEST_CASE("Euler sampling calls each class's boosters n_t - 1 times, follows the data and repeats per seed", "[unit]") {
    onestep::test::TempDir dir;
    ForestFlowConfig config = tiny_config();
    config.rounds = 30;
    config.duplicates = 20;
    TrainReport report = train_forest_flow(toy_rows(), config, dir.path());
    REQUIRE(report.total == 3 * 2);
    REQUIRE(report.trained == 6);
    int predictions = 0;
    ScaledRows fake = sample_forest_flow(dir.path(), config, 2, {10, 10}, 200, 3, &predictions);
    REQUIRE(predictions == 2 * (config.levels - 1));
    REQUIRE(fake.values.size() == 400);
    // Deterministic given the generation seed; a new seed gives new rows.
    REQUIRE(sample_forest_flow(dir.path(), config, 2, {10, 10}, 200, 3).values == fake.values);
    REQUIRE(sample_forest_flow(dir.path(), config, 2, {10, 10}, 200, 4).values != fake.values);
    // Each class lands near its own centre, far from the other class's.
    double mean[2][2] = {{0, 0}, {0, 0}};
    int count[2] = {0, 0};
    for (size_t i = 0; i < fake.rows; ++i) {
        ++count[fake.labels[i]];
        for (int j = 0; j < 2; ++j) mean[fake.labels[i]][j] += fake.values[i * 2 + j];
    }
    REQUIRE(count[0] > 60);
    REQUIRE(count[1] > 60);
    REQUIRE(mean[0][0] / count[0] == Approx(-0.5).margin(0.2));
    REQUIRE(mean[1][0] / count[1] == Approx(0.5).margin(0.2));
    REQUIRE(mean[1][1] / count[1] == Approx(-0.5).margin(0.2));
}

TEST_CASE("interrupted training resumes without refitting finished boosters", "[unit]") {
    onestep::test::TempDir whole, parts;
    ForestFlowConfig config = tiny_config();
    train_forest_flow(toy_rows(), config, whole.path());
    TrainReport first = train_forest_flow(toy_rows(), config, parts.path(), 2);
    REQUIRE(first.trained == 2);
    std::string done_a = model_path(parts.path(), 0, 0), done_b = model_path(parts.path(), 0, 1);
    REQUIRE(fs::exists(done_b));
    REQUIRE_FALSE(fs::exists(model_path(parts.path(), 1, 0)));
    auto time_a = fs::last_write_time(done_a), time_b = fs::last_write_time(done_b);
    // A truncated file (a crash while writing) is retrained rather than trusted.
    onestep::test::write_text(model_path(parts.path(), 1, 0), "not a model");
    TrainReport second = train_forest_flow(toy_rows(), config, parts.path());
    REQUIRE(second.skipped == 2);
    REQUIRE(second.trained == 4);
    REQUIRE(fs::last_write_time(done_a) == time_a);
    REQUIRE(fs::last_write_time(done_b) == time_b);
    for (int level = 0; level < trained_levels(config); ++level)
        for (int label = 0; label < 2; ++label)
            REQUIRE(file_bytes(model_path(whole.path(), level, label)) ==
                    file_bytes(model_path(parts.path(), level, label)));
    REQUIRE(train_forest_flow(toy_rows(), config, parts.path()).trained == 0);
}

TEST_CASE("forest train, sample and eval through the CLI", "[integration]") {
    onestep::test::TempDir dir;
    std::ostringstream csv;
    csv << "a,k,g,label\n";
    std::mt19937_64 rng(9);
    std::normal_distribution<double> normal;
    for (int i = 0; i < 24; ++i) csv << normal(rng) << "," << (i % 5) << "," << (i % 3) << "," << (i % 2) << "\n";
    onestep::test::write_text(dir / "train.csv", csv.str());
    const std::string binary = ONESTEP_BINARY;
    const std::string train = binary + " forest train forest-flow --data " + (dir / "train.csv") +
                              " --label label --int k --cat g --out " + (dir / "run") +
                              " --set levels=4 --set duplicates=3 --set rounds=3 --set threads=1";
    auto partial = onestep::test::run_command(train + " --stop-after 2");
    INFO(partial.output);
    REQUIRE(partial.exit_code == 0);
    auto resumed = onestep::test::run_command(train);
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    REQUIRE_THAT(resumed.output, Catch::Contains("2 of 6 boosters already done, 4 trained"));
    auto changed = onestep::test::run_command(train + " --set eta=0.1");
    REQUIRE(changed.exit_code == 2);
    REQUIRE_THAT(changed.output, Catch::Contains("manifest.json") && Catch::Contains("other data or settings"));

    auto sample = onestep::test::run_command(binary + " forest sample --run " + (dir / "run") + " --n 50 --out " +
                                             (dir / "fake.csv"));
    INFO(sample.output);
    REQUIRE(sample.exit_code == 0);
    Table fake = read_csv(dir / "fake.csv");
    REQUIRE(fake.columns == std::vector<std::string>{"a", "k", "g", "label"});
    REQUIRE(fake.rows() == 50);
    for (size_t i = 0; i < fake.rows(); ++i) {
        double k = fake.at(i, 1), g = fake.at(i, 2), label = fake.at(i, 3);
        REQUIRE((k >= 0 && k <= 4 && k == std::round(k)));
        REQUIRE((g == 0 || g == 1 || g == 2));
        REQUIRE((label == 0 || label == 1));
    }
    auto eval = onestep::test::run_command(binary + " forest eval --run " + (dir / "run") + " --fake " +
                                           (dir / "fake.csv") + " --real " + (dir / "train.csv"));
    INFO(eval.output);
    REQUIRE(eval.exit_code == 0);
    REQUIRE_THAT(eval.output, Catch::Contains("W1("));

    auto bad = onestep::test::run_command(binary + " forest train forest-flow --data " + (dir / "train.csv") +
                                          " --label nope --out " + (dir / "bad"));
    REQUIRE(bad.exit_code == 2);
    REQUIRE_THAT(bad.output, Catch::Contains("no column named 'nope'"));
}
#endif
