// ForestFlow and ForestDiffusion on tiny data: counter-based noise, the streamed iterator, sampler
// call counts and exactness, resumable training, early stopping, missing values and imputation.
#include <catch2/catch.hpp>

#if ONESTEP_WITH_TABULAR
#include <cmath>
#include <filesystem>
#include <functional>
#include <random>
#include <sstream>

#include "core/files.hpp"
#include "support.hpp"
#include "tabular/forest.hpp"
#include "tabular/table.hpp"
#include "tabular/xgb.hpp"

using namespace onestep::tabular;
namespace fs = std::filesystem;

namespace {

// Two classes of 2-D points around (±0.5, ∓0.5), already on the model's scale.
ScaledRows toy_rows(size_t count = 20) {
    ScaledRows rows;
    rows.rows = count;
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

ForestConfig tiny_config(ForestKind kind = ForestKind::Flow) {
    ForestConfig config;
    config.kind = kind;
    config.levels = 4;
    config.duplicates = 5;
    config.rounds = 5;
    config.max_depth = 3;
    config.threads = 1;
    return config;
}

std::string file_bytes(const std::string& path) { return onestep::test::read_text(path); }

// FNV-1a over every batch of one pass.
uint64_t pass_hash(TaskBatches& batches, size_t& rows) {
    uint64_t hash = 1469598103934665603ull;
    auto mix = [&](const float* values, size_t count) {
        const auto* bytes = reinterpret_cast<const unsigned char*>(values);
        for (size_t i = 0; i < count * sizeof(float); ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
    };
    batches.reset();
    rows = 0;
    const float* inputs = nullptr;
    const float* labels = nullptr;
    size_t count = 0;
    while (batches.next(inputs, labels, count)) {
        mix(inputs, count * batches.columns());
        mix(labels, count * batches.outputs());
        for (size_t i = 0; i < count * batches.outputs(); ++i) REQUIRE_FALSE(std::isnan(labels[i]));
        rows += count;
    }
    return hash;
}

}  // namespace

TEST_CASE("Philox4x32-10 matches the published known answers", "[unit]") {
    using Block = std::array<uint32_t, 4>;
    REQUIRE(philox4x32({0, 0, 0, 0}, {0, 0}) == Block{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
    REQUIRE(philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
            Block{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
    REQUIRE(philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
            Block{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
    // The Gaussian lanes are standard normal and a pure function of their key.
    NoiseStream noise(7, NoisePurpose::Train);
    double sum = 0, squares = 0;
    const int count = 40000;
    for (int row = 0; row < count / 4; ++row)
        for (uint32_t column = 0; column < 4; ++column) {
            double z = noise.normal(row, 3, NoiseStream::field(2, 1), column);
            sum += z, squares += z * z;
        }
    REQUIRE(sum / count == Approx(0).margin(0.02));
    REQUIRE(squares / count == Approx(1).margin(0.03));
    REQUIRE(noise.normal(5, 3, 9, 6) == NoiseStream(7, NoisePurpose::Train).normal(5, 3, 9, 6));
    REQUIRE(noise.normal(5, 3, 9, 6) != NoiseStream(7, NoisePurpose::Sample).normal(5, 3, 9, 6));
}

TEST_CASE("the level grid runs from epsilon to 1, the VP schedule matches the spec, keys are checked", "[unit]") {
    ForestConfig config;
    REQUIRE(level_time(0, config) == Approx(1e-3));
    REQUIRE(level_time(49, config) == Approx(1.0));
    REQUIRE(level_for_time(0.0, 50) == 0);
    REQUIRE(level_for_time(48.0 / 49, 50) == 48);
    REQUIRE(level_for_time(1.5, 50) == 49);
    REQUIRE(trained_levels(config) == 49);
    config.kind = ForestKind::Diffusion;
    REQUIRE(trained_levels(config) == 50);
    REQUIRE(vp_alpha(1.0, config) == Approx(0.1320).margin(1e-4));
    REQUIRE(vp_sigma(1.0, config) == Approx(0.9913).margin(1e-4));
    REQUIRE(vp_sigma(1e-3, config) == Approx(0.0102).margin(1e-4));
    config.set("levels=10");
    REQUIRE(config.levels == 10);
    config.set("parallel=trees");
    REQUIRE(config.parallel == "trees");
    REQUIRE_THAT(onestep::test::user_error_message([&] { config.set("depth=3"); }),
                 Catch::Contains("unknown key") && Catch::Contains("max_depth"));
    REQUIRE_THAT(onestep::test::user_error_message([&] { config.set("levels=1"); }), Catch::Contains("at least 2"));
    REQUIRE_THAT(onestep::test::user_error_message([&] { config.set("parallel=both"); }), Catch::Contains("tasks"));
}

TEST_CASE("the task iterator yields identical batches on every pass, with buffers flat in K", "[unit]") {
    ScaledRows rows = toy_rows(30);
    std::vector<size_t> members;
    for (size_t r = 0; r < rows.rows; ++r)
        if (rows.labels[r] == 1) members.push_back(r);
    for (ForestKind kind : {ForestKind::Flow, ForestKind::Diffusion}) {
        ForestConfig config = tiny_config(kind);
        config.chunk_rows = 4;   // several batches per epoch, the last one short
        TaskBatches batches(rows, members, config, {2, 1, -1}, NoisePurpose::Train, 10);
        size_t first_rows = 0, second_rows = 0;
        uint64_t first = pass_hash(batches, first_rows), second = pass_hash(batches, second_rows);
        REQUIRE(first == second);
        REQUIRE(first_rows == members.size() * 10);
        REQUIRE(second_rows == first_rows);
        // A fresh iterator replays the same stream; another purpose or level does not.
        TaskBatches again(rows, members, config, {2, 1, -1}, NoisePurpose::Train, 10);
        REQUIRE(pass_hash(again, first_rows) == first);
        TaskBatches valid(rows, members, config, {2, 1, -1}, NoisePurpose::Valid, 10);
        REQUIRE(pass_hash(valid, first_rows) != first);
        TaskBatches other_level(rows, members, config, {1, 1, -1}, NoisePurpose::Train, 10);
        REQUIRE(pass_hash(other_level, first_rows) != first);
        TaskBatches many(rows, members, config, {2, 1, -1}, NoisePurpose::Train, 100);
        REQUIRE(many.buffer_bytes() == batches.buffer_bytes());
    }
}

TEST_CASE("a quantile matrix from the iterator trains the same model as the materialised rows", "[unit]") {
    ScaledRows rows = toy_rows(16);
    std::vector<size_t> members;
    for (size_t r = 0; r < rows.rows; ++r)
        if (rows.labels[r] == 0) members.push_back(r);
    ForestConfig config = tiny_config();
    config.chunk_rows = 3;
    TaskBatches batches(rows, members, config, {1, 0, -1}, NoisePurpose::Train, 5);
    std::vector<float> inputs, labels;
    const float* in = nullptr;
    const float* out = nullptr;
    size_t count = 0;
    batches.reset();
    while (batches.next(in, out, count)) {
        inputs.insert(inputs.end(), in, in + count * 2);
        labels.insert(labels.end(), out, out + count * 2);
    }
    xgb::DMatrix streamed = xgb::DMatrix::from_batches(batches, 256, 1);
    xgb::DMatrix materialised(inputs.data(), labels.size() / 2, 2);
    materialised.set_labels(labels.data(), labels.size() / 2, 2);
    REQUIRE(streamed.rows() == 8 * 5);
    auto fit = [&](const xgb::DMatrix& matrix) {
        xgb::Booster booster(&matrix);
        booster.set_params({{"tree_method", "hist"}, {"max_depth", "3"}, {"nthread", "1"}, {"base_score", "0.5"}});
        for (int round = 0; round < 5; ++round) booster.update(round, matrix);
        return booster.predict(inputs.data(), labels.size() / 2, 2);
    };
    std::vector<float> a = fit(streamed), b = fit(materialised);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(b[i]).margin(1e-6));
}

TEST_CASE("flow Euler is exact on a one-level model and calls each class's booster n_t - 1 times", "[unit]") {
    // n_t = 2: one trained level whose booster predicts a constant velocity, fitted exactly.
    auto write_constant_model = [](const std::string& run, int label, std::vector<float> velocity) {
        fs::create_directories(run + "/models");
        std::vector<float> inputs, labels;
        for (int i = 0; i < 64; ++i) {
            inputs.push_back(static_cast<float>(i % 8) - 4), inputs.push_back(static_cast<float>(i / 8) - 4);
            labels.insert(labels.end(), velocity.begin(), velocity.end());
        }
        xgb::DMatrix matrix(inputs.data(), 64, 2);
        matrix.set_labels(labels.data(), 64, 2);
        xgb::Booster booster(&matrix);
        booster.set_params({{"base_score", "0.5"}, {"eta", "1"}, {"lambda", "0"}, {"nthread", "1"}});
        booster.update(0, matrix);
        booster.set_attribute("onestep_task", "constant");
        booster.save(model_path(run, {0, label, -1}));
    };
    onestep::test::TempDir a, b;
    write_constant_model(a.path(), 0, {1.0f, -2.0f});
    write_constant_model(a.path(), 1, {0.25f, 0.5f});
    write_constant_model(b.path(), 0, {0.0f, 0.0f});
    write_constant_model(b.path(), 1, {0.0f, 0.0f});
    ForestConfig config = tiny_config();
    config.levels = 2;
    ForestModel moved(a.path(), config, 2, 2, false), still(b.path(), config, 2, 2, false);
    ScaledRows y = sample_forest(moved, {5, 5}, 300, 11), z = sample_forest(still, {5, 5}, 300, 11);
    REQUIRE(moved.calls() == 2 * (config.levels - 1));
    REQUIRE(y.labels == z.labels);
    for (size_t r = 0; r < y.rows; ++r) {
        // y = z + h·v with h = 1: exact up to float rounding.
        float v0 = y.labels[r] == 0 ? 1.0f : 0.25f, v1 = y.labels[r] == 0 ? -2.0f : 0.5f;
        REQUIRE(y.values[r * 2] - z.values[r * 2] == Approx(v0).margin(1e-5));
        REQUIRE(y.values[r * 2 + 1] - z.values[r * 2 + 1] == Approx(v1).margin(1e-5));
    }
}

TEST_CASE("sampling follows the data, repeats per seed, and counts n_t - 1 (flow) or n_t (VP) calls", "[unit]") {
    for (ForestKind kind : {ForestKind::Flow, ForestKind::Diffusion}) {
        onestep::test::TempDir dir;
        ForestConfig config = tiny_config(kind);
        config.levels = kind == ForestKind::Flow ? 4 : 12;
        config.rounds = 30;
        config.duplicates = 20;
        TrainReport report = train_forest(toy_rows(), config, dir.path());
        REQUIRE(report.total == trained_levels(config) * 2);
        REQUIRE(report.trained == report.total);
        ForestModel model(dir.path(), config, 2, 2, false);
        ScaledRows fake = sample_forest(model, {10, 10}, 200, 3);
        REQUIRE(model.calls() == 2 * (kind == ForestKind::Flow ? config.levels - 1 : config.levels));
        REQUIRE(fake.values.size() == 400);
        REQUIRE(sample_forest(model, {10, 10}, 200, 3).values == fake.values);
        REQUIRE(sample_forest(model, {10, 10}, 200, 4).values != fake.values);
        // A shorter grid: one model call per step and class.
        ForestModel short_model(dir.path(), config, 2, 2, false);
        sample_forest(short_model, {10, 10}, 50, 3, {}, nullptr, 3);
        REQUIRE(short_model.calls() == 2 * (kind == ForestKind::Flow ? 2 : 3));
        double mean[2][2] = {{0, 0}, {0, 0}};
        int count[2] = {0, 0};
        for (size_t i = 0; i < fake.rows; ++i) {
            ++count[fake.labels[i]];
            for (int j = 0; j < 2; ++j) mean[fake.labels[i]][j] += fake.values[i * 2 + j];
        }
        INFO(to_string(kind));
        REQUIRE(count[0] > 60);
        REQUIRE(count[1] > 60);
        REQUIRE(mean[0][0] / count[0] == Approx(-0.5).margin(0.2));
        REQUIRE(mean[1][0] / count[1] == Approx(0.5).margin(0.2));
        REQUIRE(mean[1][1] / count[1] == Approx(-0.5).margin(0.2));
    }
}

TEST_CASE("interrupted training resumes without refitting finished boosters, in both parallel modes", "[unit]") {
    for (std::string mode : {"trees", "tasks"}) {
        INFO(mode);
        onestep::test::TempDir whole, parts;
        ForestConfig config = tiny_config();
        config.parallel = mode;
        config.threads = 2;
        train_forest(toy_rows(), config, whole.path());
        TrainReport first = train_forest(toy_rows(), config, parts.path(), 2);
        REQUIRE(first.trained == 2);
        std::string done_a = model_path(parts.path(), {0, 0}), done_b = model_path(parts.path(), {0, 1});
        REQUIRE(fs::exists(done_b));
        REQUIRE_FALSE(fs::exists(model_path(parts.path(), {1, 0})));
        auto time_a = fs::last_write_time(done_a), time_b = fs::last_write_time(done_b);
        // A damaged file (a crash outside the atomic rename) is refitted rather than trusted.
        onestep::test::write_text(model_path(parts.path(), {1, 0}), "not a model");
        TrainReport second = train_forest(toy_rows(), config, parts.path());
        REQUIRE(second.skipped == 2);
        REQUIRE(second.trained == 4);
        REQUIRE(fs::last_write_time(done_a) == time_a);
        REQUIRE(fs::last_write_time(done_b) == time_b);
        for (const auto& task : forest_tasks(config, 2, 2, false))
            REQUIRE(file_bytes(model_path(whole.path(), task)) == file_bytes(model_path(parts.path(), task)));
        REQUIRE(train_forest(toy_rows(), config, parts.path()).trained == 0);
    }
}

TEST_CASE("early stopping keeps rounds up to the best validation round", "[unit]") {
    onestep::test::TempDir dir;
    ForestConfig config = tiny_config();
    config.levels = 2;
    config.rounds = 400;
    config.early_stopping = 5;
    config.duplicates = 10;
    train_forest(toy_rows(40), config, dir.path());
    xgb::Booster booster;
    booster.load(model_path(dir.path(), {0, 0}));
    int best = std::stoi(booster.attribute("best_iteration"));
    REQUIRE(booster.boosted_rounds() == best + 1);
    REQUIRE(booster.boosted_rounds() < 400);
    REQUIRE(std::stod(booster.attribute("best_score")) > 0);
}

TEST_CASE("missing cells give per-column boosters; VP imputation keeps observed cells and fills the rest", "[unit]") {
    onestep::test::TempDir dir;
    ScaledRows rows = toy_rows(40);
    for (size_t r = 0; r < rows.rows; r += 5) rows.values[r * 2 + (r / 5) % 2] = NAN;
    ForestConfig config = tiny_config(ForestKind::Diffusion);
    config.levels = 10;
    config.rounds = 20;
    TrainReport report = train_forest(rows, config, dir.path());
    REQUIRE(report.total == 10 * 2 * 2);
    REQUIRE(fs::exists(model_path(dir.path(), {3, 1, 1})));
    ForestModel model(dir.path(), config, 2, 2, true);
    ScaledRows filled = impute_forest(model, rows, 5, {});
    // n_t calls per class batch without REPAINT.
    REQUIRE(model.calls() == 2 * config.levels);
    for (size_t i = 0; i < rows.values.size(); ++i) {
        REQUIRE_FALSE(std::isnan(filled.values[i]));
        if (!std::isnan(rows.values[i])) REQUIRE(filled.values[i] == rows.values[i]);
    }
    // A filled cell lands near its class's centre (±0.5).
    for (size_t r = 0; r < rows.rows; r += 5) {
        size_t j = (r / 5) % 2;
        double centre = (rows.labels[r] ? 0.5 : -0.5) * (j == 0 ? 1 : -1);
        REQUIRE(filled.values[r * 2 + j] == Approx(centre).margin(0.6));
    }
    // Flow models cannot impute.
    ForestConfig flow = config;
    flow.kind = ForestKind::Flow;
    REQUIRE_THAT(onestep::test::user_error_message(
                     [&] { impute_forest(ForestModel(dir.path(), flow, 2, 2, true), rows, 5, {}); }),
                 Catch::Contains("forest-diffusion"));
}

TEST_CASE("covariates condition the generated rows and are required again to sample", "[unit]") {
    // One column that copies its covariate: x = w + small noise, w uniform in [−1, 1].
    ScaledRows rows;
    Covariates given;
    rows.width = 1;
    given.width = 1;
    std::mt19937_64 rng(2);
    std::uniform_real_distribution<double> uniform(-1, 1);
    std::normal_distribution<double> normal(0, 0.05);
    for (int i = 0; i < 200; ++i) {
        double w = uniform(rng);
        given.values.push_back(static_cast<float>(w));
        rows.values.push_back(static_cast<float>(w + normal(rng)));
        rows.labels.push_back(0);
    }
    rows.rows = 200;
    for (ForestKind kind : {ForestKind::Flow, ForestKind::Diffusion}) {
        INFO(to_string(kind));
        onestep::test::TempDir dir;
        ForestConfig config = tiny_config(kind);
        config.levels = kind == ForestKind::Flow ? 10 : 40;   // VP needs many levels (spec §3)
        config.rounds = 30;
        config.duplicates = 10;
        train_forest(rows, config, dir.path(), -1, &given);
        ForestModel model(dir.path(), config, 1, 1, false, 1);
        Covariates wanted;
        wanted.width = 1;
        for (int i = 0; i < 100; ++i) wanted.values.push_back(i % 2 ? 0.8f : -0.8f);
        ScaledRows fake = sample_forest(model, {200}, 100, 4, {}, &wanted);
        double error = 0;
        for (size_t i = 0; i < fake.rows; ++i) error += std::abs(fake.values[i] - wanted.values[i]);
        UNSCOPED_INFO("mean |x - w| " << error / fake.rows);
        REQUIRE(error / fake.rows < 0.15);
        REQUIRE_THAT(onestep::test::user_error_message([&] { sample_forest(model, {200}, 100, 4); }),
                     Catch::Contains("covariate"));
    }
}

TEST_CASE("zero-shot classification finds each row's class with C·(n' - 1) model calls", "[unit]") {
    for (ForestKind kind : {ForestKind::Flow, ForestKind::Diffusion}) {
        INFO(to_string(kind));
        onestep::test::TempDir dir;
        ForestConfig config = tiny_config(kind);
        config.levels = 10;
        config.rounds = 20;
        config.duplicates = 20;
        ScaledRows train = toy_rows(40);
        train_forest(train, config, dir.path());
        ForestModel model(dir.path(), config, 2, 2, false);
        ScaledRows test = toy_rows(20);
        std::vector<double> losses = zero_shot_losses(model, test, 3, 5);
        REQUIRE(model.calls() == 2 * (config.levels - 1));
        int correct = 0;
        for (size_t r = 0; r < test.rows; ++r) correct += (losses[r * 2 + test.labels[r]] < losses[r * 2 + 1 - test.labels[r]]);
        REQUIRE(correct >= 19);
        REQUIRE(zero_shot_losses(model, test, 3, 5) == losses);
        test.values[0] = NAN;
        REQUIRE_THAT(onestep::test::user_error_message([&] { zero_shot_losses(model, test, 3, 5); }),
                     Catch::Contains("complete rows"));
    }
}

TEST_CASE("REPAINT at n_t = 50, j = 5, r = 10 makes 455 model calls", "[unit]") {
    onestep::test::TempDir dir;
    ScaledRows rows = toy_rows(8);
    for (auto& label : rows.labels) label = 0;
    rows.values[2] = NAN;
    ForestConfig config = tiny_config(ForestKind::Diffusion);
    config.levels = 50;
    config.rounds = 1;
    config.duplicates = 1;
    config.max_depth = 1;
    train_forest(rows, config, dir.path());
    ForestModel model(dir.path(), config, 2, 1, true);
    ScaledRows filled = impute_forest(model, rows, 1, {10, 0.1});
    REQUIRE(model.calls() == 455);
    REQUIRE_FALSE(std::isnan(filled.values[2]));
}

TEST_CASE("forest train, sample and impute through the CLI", "[integration]") {
    onestep::test::TempDir dir;
    std::ostringstream csv, holes;
    csv << "a,k,g,label\n";
    holes << "a,k,g,label\n";
    std::mt19937_64 rng(9);
    std::normal_distribution<double> normal;
    for (int i = 0; i < 24; ++i) {
        double a = normal(rng);
        csv << a << "," << (i % 5) << "," << (i % 3) << "," << (i % 2) << "\n";
        holes << (i % 4 == 0 ? std::string("") : std::to_string(a)) << "," << (i % 5) << ","
              << (i % 3 == 1 ? std::string("?") : std::to_string(i % 3)) << "," << (i % 2) << "\n";
    }
    onestep::test::write_text(dir / "train.csv", csv.str());
    onestep::test::write_text(dir / "holes.csv", holes.str());
    const std::string binary = ONESTEP_BINARY;
    const std::string train = binary + " train forest-flow --data " + (dir / "train.csv") +
                              " --label label --int k --cat g --run-dir " + (dir / "run") +
                              " --set levels=4 --set duplicates=3 --set rounds=3 --threads 1";
    auto help = onestep::test::run_command(binary + " train forest-diffusion --help");
    REQUIRE(help.exit_code == 0);
    REQUIRE_THAT(help.output, Catch::Contains("--data") && Catch::Contains("--parallel"));
    auto dry = onestep::test::run_command(train + " --dry-run");
    INFO(dry.output);
    REQUIRE(dry.exit_code == 0);
    REQUIRE_THAT(dry.output, Catch::Contains("6 tasks") && Catch::Contains("per task"));
    REQUIRE_FALSE(fs::exists(dir / "run/manifest.json"));
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

    auto sample = onestep::test::run_command(binary + " sample --ckpt " + (dir / "run") + " --n 50 --out " +
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
    // Flow runs cannot impute; a diffusion run can.
    auto flow_impute = onestep::test::run_command(binary + " impute --ckpt " + (dir / "run") + " --data " +
                                                  (dir / "holes.csv") + " --out " + (dir / "filled.csv"));
    REQUIRE(flow_impute.exit_code == 2);
    REQUIRE_THAT(flow_impute.output, Catch::Contains("forest-diffusion"));
    REQUIRE_FALSE(fs::exists(dir / "filled.csv"));
    auto vp = onestep::test::run_command(binary + " train forest-diffusion --data " + (dir / "train.csv") +
                                         " --label label --int k --cat g --run-dir " + (dir / "vp") +
                                         " --set levels=5 --set duplicates=3 --set rounds=3 --threads 1");
    INFO(vp.output);
    REQUIRE(vp.exit_code == 0);
    auto impute = onestep::test::run_command(binary + " impute --ckpt " + (dir / "vp") + " --data " +
                                             (dir / "holes.csv") + " --out " + (dir / "filled.csv") +
                                             " --repaint 2,0.4");
    INFO(impute.output);
    REQUIRE(impute.exit_code == 0);
    Table filled = read_csv(dir / "filled.csv"), original = read_csv(dir / "holes.csv", true);
    REQUIRE(filled.rows() == 24);
    for (size_t i = 0; i < filled.rows(); ++i)
        for (size_t j = 0; j < 4; ++j) {
            REQUIRE_FALSE(std::isnan(filled.at(i, j)));
            if (!std::isnan(original.at(i, j))) REQUIRE(filled.at(i, j) == Approx(original.at(i, j)).epsilon(1e-12));
        }

    // An unknown category in the imputation input names its line and column.
    onestep::test::write_text(dir / "unknown.csv", "a,k,g,label\n0.5,1,2,1\n,3,7,0\n");
    auto unknown = onestep::test::run_command(binary + " impute --ckpt " + (dir / "vp") + " --data " +
                                              (dir / "unknown.csv") + " --out " + (dir / "u.csv"));
    REQUIRE(unknown.exit_code == 2);
    REQUIRE_THAT(unknown.output, Catch::Contains("unknown.csv:3") && Catch::Contains("(g)"));
    REQUIRE_FALSE(fs::exists(dir / "u.csv"));

    // Covariates: 'a' given, the rest generated; labels fixed by the condition file.
    auto conditioned = onestep::test::run_command(binary + " train forest-flow --data " + (dir / "train.csv") +
                                                  " --label label --int k --cat g --cond a --run-dir " +
                                                  (dir / "cond") + " --set levels=4 --set duplicates=3 --set rounds=3");
    INFO(conditioned.output);
    REQUIRE(conditioned.exit_code == 0);
    auto unconditioned = onestep::test::run_command(binary + " sample --ckpt " + (dir / "cond") + " --n 5 --out " +
                                                    (dir / "c.csv"));
    REQUIRE(unconditioned.exit_code == 2);
    REQUIRE_THAT(unconditioned.output, Catch::Contains("--cond-data"));
    onestep::test::write_text(dir / "given.csv", "a,label\n0.5,1\n-2,0\n3.25,1\n");
    auto given = onestep::test::run_command(binary + " sample --ckpt " + (dir / "cond") + " --cond-data " +
                                            (dir / "given.csv") + " --out " + (dir / "c.csv"));
    INFO(given.output);
    REQUIRE(given.exit_code == 0);
    Table generated = read_csv(dir / "c.csv");
    REQUIRE(generated.columns == std::vector<std::string>{"a", "k", "g", "label"});
    REQUIRE(generated.rows() == 3);
    REQUIRE(generated.at(2, 0) == 3.25);
    REQUIRE(generated.at(1, 3) == 0);
    REQUIRE(generated.at(2, 3) == 1);

    // Zero-shot classification through the CLI, with and without the label column.
    auto classified = onestep::test::run_command(binary + " classify --ckpt " + (dir / "run") + " --data " +
                                                 (dir / "train.csv") + " --out " + (dir / "classes.csv"));
    INFO(classified.output);
    REQUIRE(classified.exit_code == 0);
    REQUIRE_THAT(classified.output, Catch::Contains("accuracy"));
    Table classes = read_csv(dir / "classes.csv");
    REQUIRE(classes.columns == std::vector<std::string>{"predicted_label", "p_0", "p_1"});
    REQUIRE(classes.rows() == 24);
    for (size_t i = 0; i < classes.rows(); ++i) REQUIRE(classes.at(i, 1) + classes.at(i, 2) == Approx(1));
    auto with_covariates = onestep::test::run_command(binary + " classify --ckpt " + (dir / "cond") + " --data " +
                                                      (dir / "train.csv"));
    REQUIRE(with_covariates.exit_code == 2);
    REQUIRE_THAT(with_covariates.output, Catch::Contains("covariate"));

    auto bad = onestep::test::run_command(binary + " train forest-flow --data " + (dir / "train.csv") +
                                          " --label nope --run-dir " + (dir / "bad"));
    REQUIRE(bad.exit_code == 2);
    REQUIRE_THAT(bad.output, Catch::Contains("no column named 'nope'"));
}

TEST_CASE("a forest training killed mid-way resumes to the same boosters", "[integration]") {
    onestep::test::TempDir dir;
    std::ostringstream csv;
    csv << "x,y,label\n";
    std::mt19937_64 rng(4);
    std::normal_distribution<double> normal;
    for (int i = 0; i < 60; ++i) csv << normal(rng) << "," << normal(rng) + (i % 3) << "," << i % 3 << "\n";
    onestep::test::write_text(dir / "train.csv", csv.str());
    const std::string binary = ONESTEP_BINARY;
    auto train = [&](const std::string& run) {
        return binary + " train forest-diffusion --data " + (dir / "train.csv") + " --label label --run-dir " + run +
               " --set levels=8 --set duplicates=20 --set rounds=20 --threads 1";
    };
    auto whole = onestep::test::run_command(train(dir / "whole"));
    REQUIRE(whole.exit_code == 0);
    // SIGKILL once a few boosters exist: no handler runs, only the atomic writes protect the run.
    auto killed = onestep::test::run_command(
        "sh -c '" + train(dir / "parts") + " >/dev/null 2>&1 & pid=$!; " +
        "while [ \"$(ls " + (dir / "parts/models") + " 2>/dev/null | grep -c ubj$)\" -lt 5 ]; do sleep 0.01; done; " +
        "kill -9 $pid; wait $pid; echo killed $?'");
    INFO(killed.output);
    REQUIRE_THAT(killed.output, Catch::Contains("killed 137"));
    size_t done = 0;
    for (const onestep::DirectoryEntry& entry : onestep::list_directory(dir / "parts/models"))
        if (fs::path(entry.name).extension() == ".ubj") ++done;
    REQUIRE(done >= 5);
    REQUIRE(done < 24);
    auto resumed = onestep::test::run_command(train(dir / "parts"));
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    REQUIRE_THAT(resumed.output, Catch::Contains(std::to_string(done) + " of 24 boosters already done"));
    for (const onestep::DirectoryEntry& entry : onestep::list_directory(dir / "whole/models"))
        REQUIRE(file_bytes(entry.path) == file_bytes((dir / "parts/models/") + entry.name));
}
#endif
