// ForestFlow training and sampling (spec §3, §4): x_t = (1 − t)·z + t·x, target v = x − z,
// Euler y ← y + h·f_{i(t),c}(y) from noise to data.
#include "tabular/forest_flow.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>

#include "core/error.hpp"
#include "core/files.hpp"
#include "tabular/xgb.hpp"

namespace fs = std::filesystem;

namespace onestep::tabular {
namespace {

// Distinct streams for training noise and sampling noise, so generation never replays training.
constexpr uint64_t kTrainPurpose = 1;
constexpr uint64_t kSamplePurpose = 3;

uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// One generator per (seed, purpose, level, class): a task's noise does not depend on which tasks
// ran before it, which is what makes resumed runs identical to uninterrupted ones.
std::mt19937_64 task_rng(uint64_t seed, uint64_t purpose, uint64_t level, uint64_t label) {
    return std::mt19937_64(splitmix64(splitmix64(splitmix64(seed ^ (purpose << 56)) ^ level) ^ (label << 32)));
}

std::vector<std::pair<std::string, std::string>> booster_params(const ForestFlowConfig& config) {
    return {
        {"objective", "reg:squarederror"},
        {"tree_method", "hist"},
        {"max_depth", std::to_string(config.max_depth)},
        {"eta", std::to_string(config.eta)},
        {"lambda", std::to_string(config.lambda)},
        {"alpha", "0"},
        {"gamma", "0"},
        {"subsample", "1"},
        {"min_child_weight", "1"},
        {"max_bin", std::to_string(config.max_bin)},
        {"base_score", "0.5"},   // explicit: newer XGBoost estimates it, which would change models
        {"eval_metric", "rmse"},
        {"nthread", std::to_string(config.threads)},
        {"seed", "0"},
        {"verbosity", "1"},
    };
}

bool finished(const std::string& path, int rounds) {
    if (!fs::exists(path)) return false;
    try {
        xgb::Booster booster;
        booster.load(path);
        return booster.boosted_rounds() == rounds;
    } catch (const std::exception&) {
        return false;   // a truncated file is retrained
    }
}

}  // namespace

void ForestFlowConfig::set(const std::string& assignment) {
    size_t equals = assignment.find('=');
    if (equals == std::string::npos) throw UserError("--set " + assignment + ": expected KEY=VALUE");
    std::string key = assignment.substr(0, equals), value = assignment.substr(equals + 1);
    nlohmann::ordered_json json = to_json();
    if (!json.contains(key)) {
        std::string keys;
        for (const auto& item : json.items()) keys += (keys.empty() ? "" : ", ") + item.key();
        throw UserError("--set " + key + ": unknown key (accepted: " + keys + ")");
    }
    try {
        json[key] = nlohmann::json::parse(value);
        *this = from_json(json);
    } catch (const std::exception&) {
        throw UserError("--set " + key + "=" + value + ": not a valid " + std::string(json[key].type_name()));
    }
    if (levels < 2) throw UserError("--set levels=" + value + ": at least 2 levels are needed");
    if (duplicates < 1 || rounds < 1 || max_depth < 1 || max_bin < 2 || threads < 1)
        throw UserError("--set " + key + "=" + value + ": must be positive");
}

nlohmann::ordered_json ForestFlowConfig::to_json() const {
    return {{"levels", levels}, {"duplicates", duplicates}, {"rounds", rounds},   {"max_depth", max_depth},
            {"eta", eta},       {"lambda", lambda},         {"max_bin", max_bin}, {"epsilon", epsilon},
            {"seed", seed},     {"threads", threads}};
}

ForestFlowConfig ForestFlowConfig::from_json(const nlohmann::ordered_json& json) {
    ForestFlowConfig config;
    config.levels = json.at("levels").get<int>();
    config.duplicates = json.at("duplicates").get<int>();
    config.rounds = json.at("rounds").get<int>();
    config.max_depth = json.at("max_depth").get<int>();
    config.eta = json.at("eta").get<double>();
    config.lambda = json.at("lambda").get<double>();
    config.max_bin = json.at("max_bin").get<int>();
    config.epsilon = json.at("epsilon").get<double>();
    config.seed = json.at("seed").get<uint64_t>();
    config.threads = json.at("threads").get<int>();
    return config;
}

double level_time(int level, const ForestFlowConfig& config) {
    return config.epsilon + level * (1.0 - config.epsilon) / (config.levels - 1);
}

int level_for_time(double time, int levels) {
    return std::clamp(static_cast<int>(std::lround(time * (levels - 1))), 0, levels - 1);
}

int trained_levels(const ForestFlowConfig& config) { return config.levels - 1; }

std::string model_path(const std::string& run_dir, int level, int label) {
    char name[64];
    std::snprintf(name, sizeof name, "L%03d_C%03d.ubj", level, label);
    return run_dir + "/models/" + name;
}

TrainReport train_forest_flow(const ScaledRows& train, const ForestFlowConfig& config, const std::string& run_dir,
                              int max_new_tasks) {
    fs::create_directories(run_dir + "/models");
    const size_t width = train.width;
    int classes = 1 + *std::max_element(train.labels.begin(), train.labels.end());
    std::vector<std::vector<size_t>> class_rows(classes);
    for (size_t r = 0; r < train.rows; ++r) class_rows[train.labels[r]].push_back(r);

    TrainReport report;
    report.total = trained_levels(config) * classes;
    for (int level = 0; level < trained_levels(config); ++level) {
        for (int label = 0; label < classes; ++label) {
            std::string path = model_path(run_dir, level, label);
            if (finished(path, config.rounds)) {
                ++report.skipped;
                continue;
            }
            if (max_new_tasks >= 0 && report.trained >= max_new_tasks) {
                if (report.trained > 0) std::cerr << "\n";
                return report;
            }
            // n_c·K regression rows: x_t = (1 − t)·z + t·x as input, v = x − z as target.
            const std::vector<size_t>& rows = class_rows[label];
            const double time = level_time(level, config);
            const size_t count = rows.size() * config.duplicates;
            std::vector<float> inputs(count * width), targets(count * width);
            std::mt19937_64 rng = task_rng(config.seed, kTrainPurpose, level, label);
            std::normal_distribution<double> normal;
            size_t out = 0;
            for (int duplicate = 0; duplicate < config.duplicates; ++duplicate)
                for (size_t row : rows)
                    for (size_t j = 0; j < width; ++j, ++out) {
                        double x = train.values[row * width + j], z = normal(rng);
                        inputs[out] = static_cast<float>((1.0 - time) * z + time * x);
                        targets[out] = static_cast<float>(x - z);
                    }
            xgb::DMatrix matrix(inputs.data(), count, width);
            matrix.set_labels(targets.data(), count, width);
            xgb::Booster booster(&matrix);
            booster.set_params(booster_params(config));
            for (int round = 0; round < config.rounds; ++round) booster.update(round, matrix);
            // Atomic: a crash leaves the model absent or complete, never named but empty.
            write_file_atomic(path, booster.to_ubj());
            ++report.trained;
            std::cerr << "\rforest-flow: " << report.skipped + report.trained << " of " << report.total
                      << " boosters" << std::flush;
        }
    }
    if (report.trained > 0) std::cerr << "\n";
    return report;
}

ScaledRows sample_forest_flow(const std::string& run_dir, const ForestFlowConfig& config, size_t width,
                              const std::vector<size_t>& class_counts, size_t rows, uint64_t seed,
                              int* predictions) {
    ScaledRows fake;
    fake.rows = rows;
    fake.width = width;
    fake.values.resize(rows * width);
    // Labels i.i.d. from the training frequencies π̂_c = n_c / n.
    std::mt19937_64 label_rng = task_rng(seed, kSamplePurpose, 0xFFFFF, 0xFFFF);
    std::discrete_distribution<int> class_draw(class_counts.begin(), class_counts.end());
    fake.labels.resize(rows);
    for (auto& label : fake.labels) label = class_draw(label_rng);

    const int steps = config.levels;
    const double h = 1.0 / (steps - 1);
    if (predictions) *predictions = 0;
    for (int label = 0; label < static_cast<int>(class_counts.size()); ++label) {
        std::vector<size_t> members;
        for (size_t r = 0; r < rows; ++r)
            if (fake.labels[r] == label) members.push_back(r);
        if (members.empty()) continue;
        // y_0 = z ~ N(0, I)
        std::vector<float> state(members.size() * width);
        std::mt19937_64 rng = task_rng(seed, kSamplePurpose, 0, label);
        std::normal_distribution<double> normal;
        for (auto& value : state) value = static_cast<float>(normal(rng));
        for (int k = 0; k + 1 < steps; ++k) {
            const double time = k * h;
            std::string path = model_path(run_dir, level_for_time(time, config.levels), label);
            if (!fs::exists(path)) throw UserError(path + ": missing model; finish training first");
            xgb::Booster booster;
            booster.load(path);
            std::vector<float> velocity = booster.predict(state.data(), members.size(), width);
            if (predictions) ++*predictions;
            for (size_t i = 0; i < state.size(); ++i) state[i] += static_cast<float>(h * velocity[i]);
        }
        for (size_t m = 0; m < members.size(); ++m)
            std::copy_n(state.begin() + m * width, width, fake.values.begin() + members[m] * width);
    }
    return fake;
}

}  // namespace onestep::tabular
