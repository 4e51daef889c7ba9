// Memory and time of forest training at scale: one (level, class) task fed by the streaming
// iterator against the reference's materialised levels × K × rows × columns array, and a whole
// run (all levels) in either parallel mode. One configuration per process, so peak RSS is its own.
//   onestep_bench_forest_scale --mode streamed|materialised|full --rows N --duplicates K
//                              [--columns P] [--levels L] [--rounds R] [--threads T] [--parallel tasks|trees]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>

#include "core/files.hpp"
#include "core/runtime.hpp"
#include "tabular/forest.hpp"
#include "tabular/xgb.hpp"

using namespace onestep::tabular;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// N rows of a P-column Gaussian mixture squashed into [−1, 1], one class.
ScaledRows synthetic_rows(size_t rows, size_t columns) {
    ScaledRows data;
    data.rows = rows;
    data.width = columns;
    data.values.resize(rows * columns);
    data.labels.assign(rows, 0);
    std::mt19937_64 rng(3);
    std::normal_distribution<double> normal;
    std::vector<double> centres(8 * columns);
    for (auto& c : centres) c = normal(rng);
    for (size_t r = 0; r < rows; ++r) {
        size_t component = rng() % 8;
        for (size_t j = 0; j < columns; ++j)
            data.values[r * columns + j] =
                static_cast<float>(std::tanh(0.5 * (centres[component * columns + j] + 0.3 * normal(rng))));
    }
    return data;
}

std::vector<std::pair<std::string, std::string>> params(const ForestConfig& config, int threads) {
    return {{"objective", "reg:squarederror"}, {"tree_method", "hist"},
            {"max_depth", std::to_string(config.max_depth)}, {"eta", "0.3"}, {"lambda", "0"},
            {"max_bin", "256"}, {"base_score", "0.5"}, {"nthread", std::to_string(threads)}, {"verbosity", "0"}};
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = "streamed", parallel = "trees";
    size_t rows = 1000, columns = 8;
    int duplicates = 10, levels = 50, rounds = 10, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string key = argv[i], value = argv[i + 1];
        if (key == "--mode") mode = value;
        else if (key == "--rows") rows = std::stoul(value);
        else if (key == "--columns") columns = std::stoul(value);
        else if (key == "--duplicates") duplicates = std::stoi(value);
        else if (key == "--levels") levels = std::stoi(value);
        else if (key == "--rounds") rounds = std::stoi(value);
        else if (key == "--threads") threads = std::stoi(value);
        else if (key == "--parallel") parallel = value;
        else {
            std::cerr << "unknown option " << key << "\n";
            return 2;
        }
    }
    ScaledRows data = synthetic_rows(rows, columns);
    ForestConfig config;
    config.levels = levels;
    config.duplicates = duplicates;
    config.rounds = rounds;
    config.threads = threads;
    config.parallel = parallel;
    const ForestTask task{levels / 2, 0, -1};
    std::vector<size_t> members(rows);
    for (size_t r = 0; r < rows; ++r) members[r] = r;
    const int64_t base_rss = onestep::peak_resident_bytes();
    double build_s = 0, train_s = 0;
    size_t iterator_bytes = 0;
    auto start = std::chrono::steady_clock::now();
    // ROUNDS boosting rounds on MATRIX; the time to build it ends here.
    auto fit = [&](const xgb::DMatrix& matrix) {
        build_s = seconds_since(start);
        start = std::chrono::steady_clock::now();
        xgb::Booster booster(&matrix);
        booster.set_params(params(config, threads));
        for (int round = 0; round < rounds; ++round) booster.update(round, matrix);
        train_s = seconds_since(start);
    };

    if (mode == "streamed") {
        TaskBatches batches(data, members, config, task, NoisePurpose::Train, duplicates);
        iterator_bytes = batches.buffer_bytes();
        fit(xgb::DMatrix::from_batches(batches, 256, threads));
    } else if (mode == "materialised") {
        // The reference's layout: the data tiled K times and every level's noisy copy built up
        // front in float64 (n_t·K·n·p), then one level's slice handed to XGBoost.
        const size_t tiled = rows * duplicates;
        std::vector<double> noise(tiled * columns), inputs(static_cast<size_t>(levels) * tiled * columns);
        std::mt19937_64 rng(1);
        std::normal_distribution<double> normal;
        for (auto& z : noise) z = normal(rng);
        for (int level = 0; level < levels; ++level) {
            double t = level_time(level, config);
            double* out = &inputs[static_cast<size_t>(level) * tiled * columns];
            for (size_t i = 0; i < tiled * columns; ++i)
                out[i] = (1 - t) * noise[i] + t * data.values[(i / columns) % rows * columns + i % columns];
        }
        std::vector<float> slice(tiled * columns), targets(tiled * columns);
        const double* level_inputs = &inputs[static_cast<size_t>(task.level) * tiled * columns];
        for (size_t i = 0; i < tiled * columns; ++i) {
            slice[i] = static_cast<float>(level_inputs[i]);
            targets[i] = static_cast<float>(data.values[(i / columns) % rows * columns + i % columns] - noise[i]);
        }
        xgb::DMatrix matrix(slice.data(), tiled, columns);
        matrix.set_labels(targets.data(), tiled, columns);
        fit(matrix);
    } else if (mode == "full") {
        std::string dir = (std::filesystem::temp_directory_path() /
                           ("onestep-forest-bench-" + std::to_string(::getpid()))).string();
        TrainReport report = train_forest(data, config, dir);
        train_s = seconds_since(start);
        onestep::remove_tree(dir);
        std::cerr << report.trained << " boosters, " << report.plan.mode << "\n";
    } else {
        std::cerr << "unknown mode " << mode << "\n";
        return 2;
    }
    std::printf("{\"mode\":\"%s\",\"parallel\":\"%s\",\"rows\":%zu,\"duplicates\":%d,\"columns\":%zu,\"levels\":%d,"
                "\"rounds\":%d,\"threads\":%d,\"build_s\":%.3f,\"train_s\":%.3f,\"peak_rss_mb\":%.1f,"
                "\"base_rss_mb\":%.1f,\"iterator_bytes\":%zu,\"task_estimate_mb\":%.1f}\n",
                mode.c_str(), parallel.c_str(), rows, duplicates, columns, levels, rounds, threads, build_s, train_s,
                onestep::peak_resident_bytes() / 1048576.0, base_rss / 1048576.0, iterator_bytes,
                task_memory_bytes(rows, duplicates, columns, columns) / 1048576.0);
    return 0;
}
