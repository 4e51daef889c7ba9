// ForestFlow (Jolicoeur-Martineau et al., AISTATS 2024): one multi-target XGBoost regressor per
// (noise level, class) fitted to the flow velocity x − z, sampled with Euler steps over the levels.
//
//   ForestFlowConfig config;                       // paper defaults: 50 levels, K = 100, 100 rounds
//   train_forest_flow(scaled_train, config, "runs/iris");      // resumes finished boosters
//   ScaledRows fake = sample_forest_flow("runs/iris", config, prep.class_counts(), 150, 7);
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tabular/preprocess.hpp"

namespace onestep::tabular {

struct ForestFlowConfig {
    int levels = 50;          // n_t: grid g_i = ε + i(1 − ε)/(n_t − 1)
    int duplicates = 100;     // K: noise draws per training row
    int rounds = 100;         // boosting rounds per booster
    int max_depth = 7;
    double eta = 0.3;
    double lambda = 0.0;      // XGBoost defaults to 1; the paper uses 0
    int max_bin = 256;
    double epsilon = 1e-3;
    uint64_t seed = 0;
    int threads = 1;          // XGBoost nthread per booster (spinning OpenMP threads hurt on busy cores)

    // KEY=VALUE override (from --set); UserError naming the key and the accepted keys.
    void set(const std::string& assignment);
    nlohmann::ordered_json to_json() const;
    static ForestFlowConfig from_json(const nlohmann::ordered_json& json);
};

// g_i, the time of level i (t = 0 noise, t = 1 data).
double level_time(int level, const ForestFlowConfig& config);
// i(t) = clamp(round(t·(n_t − 1)), 0, n_t − 1).
int level_for_time(double time, int levels);
// Levels that get a booster: Euler with N = n_t steps never queries the top level (t = 1).
int trained_levels(const ForestFlowConfig& config);
std::string model_path(const std::string& run_dir, int level, int label);

struct TrainReport {
    int total = 0, skipped = 0, trained = 0;
};

// Fits every missing booster of RUN_DIR/models, level-major, each saved as soon as it is done.
// Boosters already on disk with the full number of rounds are kept. MAX_NEW_TASKS ≥ 0 stops
// after that many new boosters (an interruption at a task boundary).
TrainReport train_forest_flow(const ScaledRows& train, const ForestFlowConfig& config, const std::string& run_dir,
                              int max_new_tasks = -1);

// N generated rows on the model's scale: labels drawn from the class frequencies CLASS_COUNTS,
// then one Euler batch per class. The number of predictions per class batch is n_t − 1.
ScaledRows sample_forest_flow(const std::string& run_dir, const ForestFlowConfig& config, size_t width,
                              const std::vector<size_t>& class_counts, size_t rows, uint64_t seed,
                              int* predictions = nullptr);

}  // namespace onestep::tabular
