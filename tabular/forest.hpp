// ForestFlow and ForestDiffusion (Jolicoeur-Martineau et al., AISTATS 2024): one XGBoost regressor
// per (noise level, class[, column]), fitted on streamed noisy copies of the data, sampled level by level.
//
//   ForestConfig config;                              // paper defaults: 50 levels, K = 100, 100 rounds
//   config.kind = ForestKind::Diffusion;              // VP noise prediction; Flow: velocity x − z
//   train_forest(scaled_train, config, "runs/iris");  // resumes: finished boosters are kept
//   ForestModel model("runs/iris", config, width, classes, per_column);
//   ScaledRows fake = sample_forest(model, class_counts, 150, 7);
//   ScaledRows filled = impute_forest(model, rows_with_nan, 7, {10, 0.1});   // VP only, REPAINT
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tabular/philox.hpp"
#include "tabular/preprocess.hpp"
#include "tabular/xgb.hpp"

namespace onestep::tabular {

enum class ForestKind { Flow, Diffusion };
std::string to_string(ForestKind kind);
ForestKind forest_kind_from_string(const std::string& name);

struct ForestConfig {
    ForestKind kind = ForestKind::Flow;
    int levels = 50;             // n_t: grid g_i = ε + i(1 − ε)/(n_t − 1) (g = t for flow, τ = 1 − t for VP)
    int duplicates = 100;        // K: noise draws per training row
    int rounds = 100;            // boosting rounds (the most, with early stopping)
    int max_depth = 7;
    double eta = 0.3;
    double lambda = 0.0;         // XGBoost defaults to 1; the paper uses 0
    int max_bin = 256;
    double epsilon = 1e-3;
    double beta_min = 0.1;       // VP schedule β(τ) = β_min + τ(β_max − β_min)
    double beta_max = 8.0;
    uint64_t seed = 0;
    int early_stopping = 0;      // patience in rounds on a fresh-noise validation copy; 0: fixed rounds
    int valid_duplicates = 0;    // K_val of that copy; 0: K
    int chunk_rows = 0;          // regression rows per iterator batch; 0: max(class rows, 65 536)
    bool share_noise_across_levels = false;   // the reference draws the same noise at every level
    // Resources, not part of the model: they may change when a run is resumed.
    std::string parallel = "auto";   // tasks (one XGBoost thread per task), trees (one task, all threads), auto
    int threads = 0;                 // 0: all cores
    double memory_budget_gb = 0;     // for `auto`; 0: half of the machine's memory

    // KEY=VALUE override (from --set); UserError naming the key and the accepted keys.
    void set(const std::string& assignment);
    nlohmann::ordered_json to_json() const;
    // The keys that define the models (a resumed run must match them).
    nlohmann::ordered_json model_json() const;
    static ForestConfig from_json(const nlohmann::ordered_json& json);
};

// g_i, the time of level i.
double level_time(int level, const ForestConfig& config);
// i(g) = clamp(round(g·(n_t − 1)), 0, n_t − 1).
int level_for_time(double time, int levels);
// Levels with boosters: flow's Euler never queries the top level (t = 1); VP uses all of them.
int trained_levels(const ForestConfig& config);

// VP schedule in diffusion time τ.
double vp_beta(double tau, const ForestConfig& config);
double vp_alpha(double tau, const ForestConfig& config);
double vp_sigma(double tau, const ForestConfig& config);

// Conditioning columns (spec §5.2): appended to the booster input at every level, never noised,
// never predicted, never scaled (users standardise them). Row-aligned with the rows they condition.
struct Covariates {
    size_t width = 0;
    std::vector<float> values;   // rows × width
    const float* row(size_t r) const { return &values[r * width]; }
};

// One booster to fit: all columns (COLUMN = −1) or one column when the data has missing cells.
struct ForestTask {
    int level = 0, label = 0, column = -1;
};
std::vector<ForestTask> forest_tasks(const ForestConfig& config, int classes, size_t width, bool per_column);
std::string model_path(const std::string& run_dir, const ForestTask& task);

// The noisy regression rows of one task, produced batch by batch from counter-based noise, so
// every pass is bit-identical and the n_c·K rows never exist at once. PURPOSE Valid gives the
// early-stopping copy (same rows, fresh noise).
class TaskBatches : public xgb::BatchSource {
  public:
    TaskBatches(const ScaledRows& data, const std::vector<size_t>& class_rows, const ForestConfig& config,
                const ForestTask& task, NoisePurpose purpose, int duplicates, const Covariates* covariates = nullptr);
    size_t regression_rows() const { return rows_.size() * duplicates_; }
    // The iterator's own buffers: one batch, bounded whatever K is.
    size_t buffer_bytes() const { return (inputs_.size() + labels_.size()) * sizeof(float); }
    size_t columns() const override { return data_.width + (covariates_ ? covariates_->width : 0); }
    size_t outputs() const override { return task_.column < 0 ? data_.width : 1; }
    void reset() override { position_ = 0; }
    bool next(const float*& inputs, const float*& labels, size_t& count) override;

  private:
    const ScaledRows& data_;
    const Covariates* covariates_;
    ForestConfig config_;
    ForestTask task_;
    NoiseStream noise_;
    int duplicates_;
    std::vector<size_t> rows_;
    size_t chunk_ = 1;
    std::vector<float> inputs_, labels_, noise_row_;
    double data_weight_ = 0, noise_weight_ = 1;
    uint32_t field_ = 0;
    size_t position_ = 0;   // next regression row of the pass, in [0, n_c·K)
};

// Approximate XGBoost memory of one task (spec §7.4): n_c·K·(2·p + 16·p_out + 16) bytes.
double task_memory_bytes(size_t class_rows, int duplicates, size_t width, size_t outputs);

struct TrainPlan {
    int total = 0, finished = 0;
    std::string mode;        // tasks or trees
    int workers = 1, threads_per_task = 1;
    double task_bytes = 0;   // the largest task
};

struct TrainReport {
    int total = 0, skipped = 0, trained = 0;
    TrainPlan plan;
};

// The tasks, the parallel mode and the memory estimate, without fitting anything.
TrainPlan plan_forest(const ScaledRows& train, const ForestConfig& config, const std::string& run_dir,
                      size_t covariate_width = 0);

// Fits every missing booster of RUN_DIR/models, level-major, each written atomically as soon as
// it is done. MAX_NEW_TASKS ≥ 0 stops after that many new boosters (an interruption at a task
// boundary). Rows with NaN cells make the model set per column. ON_PLAN sees the layout once the
// finished boosters are counted, before any fitting.
TrainReport train_forest(const ScaledRows& train, const ForestConfig& config, const std::string& run_dir,
                         int max_new_tasks = -1, const Covariates* covariates = nullptr,
                         const std::function<void(const TrainPlan&)>& on_plan = {});

// A trained run's boosters, loaded level by level as the samplers walk the grid.
class ForestModel {
  public:
    ForestModel(std::string run_dir, ForestConfig config, size_t width, int classes, bool per_column,
                size_t covariate_width = 0);
    // The model's output (ROWS × width) for ROWS × (width + covariate_width) inputs at LEVEL for class LABEL: velocity (flow) or
    // predicted noise (VP). One call = one "model evaluation", whatever the number of boosters.
    std::vector<float> predict(int level, int label, const float* inputs, size_t rows) const;
    const ForestConfig& config() const { return config_; }
    size_t width() const { return width_; }
    size_t covariate_width() const { return covariate_width_; }
    int classes() const { return classes_; }
    // Model evaluations since construction.
    int calls() const { return calls_; }

  private:
    std::string run_dir_;
    ForestConfig config_;
    size_t width_;
    int classes_;
    bool per_column_;
    size_t covariate_width_;
    mutable int calls_ = 0;
};

// ROWS generated rows on the model's scale. Labels are drawn i.i.d. from CLASS_COUNTS' frequencies,
// or taken from GIVEN_LABELS when not empty. Flow: Euler over n_t − 1 steps; VP: reverse
// Euler–Maruyama over n_t − 1 steps and a Tweedie denoise (n_t calls per class batch).
// COVARIATES (one row per generated row) are required when the model was trained with them.
// STEPS (0: n_t) shortens the grid; each step uses the level nearest its time.
ScaledRows sample_forest(const ForestModel& model, const std::vector<size_t>& class_counts, size_t rows,
                         uint64_t seed, const std::vector<int>& given_labels = {},
                         const Covariates* covariates = nullptr, int steps = 0);

// REPAINT (Lugmayr et al. 2022): R passes over each block of J steps; r = 1 disables it.
struct Repaint {
    int repaints = 1;
    double jump_fraction = 0.1;   // J = ⌈fraction·n_t⌉
};

// Fills the NaN cells of ROWS (on the model's scale, labels given) with the VP model; observed
// cells are returned unchanged. Each call draws fresh noise for the observed cells.
ScaledRows impute_forest(const ForestModel& model, const ScaledRows& rows, uint64_t seed, const Repaint& repaint,
                         const Covariates* covariates = nullptr);

// Zero-shot classification (spec §8): for each row and class, L_c = mean ‖ẑ − z‖² over NOISE_DRAWS
// draws and the grid g_j = j/n', j = 1..n'−1 (n' = GRID, 0: n_t), where ẑ is the noise the class's
// boosters recover from the noised row (flow: x − f(x_t); VP: ε̂). Draws are shared across classes.
// Returns rows × classes losses; the prediction is the argmin, probabilities softmax(−L).
std::vector<double> zero_shot_losses(const ForestModel& model, const ScaledRows& rows, uint64_t seed,
                                     int noise_draws = 10, int grid = 0);

}  // namespace onestep::tabular
