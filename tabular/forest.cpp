// ForestFlow / ForestDiffusion training over streamed noise (spec §3, §7), the flow Euler and VP
// Euler–Maruyama samplers (§4) and VP imputation with REPAINT (§6).
#include "tabular/forest.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "core/error.hpp"
#include "core/files.hpp"
#include "tabular/xgb.hpp"

namespace fs = std::filesystem;

namespace onestep::tabular {
namespace {

constexpr size_t kBatchRows = 65536;

std::vector<std::pair<std::string, std::string>> booster_params(const ForestConfig& config, int threads) {
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
        {"nthread", std::to_string(threads)},
        {"seed", "0"},
        {"verbosity", "1"},
    };
}

int machine_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

double machine_memory_bytes() {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<double>(pages) * page : 8e9;
}

std::vector<std::vector<size_t>> rows_by_class(const ScaledRows& rows, int classes) {
    std::vector<std::vector<size_t>> out(classes);
    for (size_t r = 0; r < rows.rows; ++r) out.at(rows.labels[r]).push_back(r);
    return out;
}

int class_count(const ScaledRows& rows) {
    return rows.labels.empty() ? 1 : 1 + *std::max_element(rows.labels.begin(), rows.labels.end());
}

bool has_missing(const ScaledRows& rows) {
    return std::any_of(rows.values.begin(), rows.values.end(), [](float v) { return std::isnan(v); });
}

// A booster file written by train_forest: it loads and carries the completion mark.
bool finished(const std::string& path) {
    if (!fs::exists(path)) return false;
    try {
        xgb::Booster booster;
        booster.load(path);
        return !booster.attribute("onestep_task").empty();
    } catch (const std::exception&) {
        return false;   // a damaged file is refitted
    }
}

std::string format_duration(double seconds) {
    char text[32];
    int whole = static_cast<int>(seconds + 0.5);
    if (whole >= 3600)
        std::snprintf(text, sizeof text, "%dh%02dm", whole / 3600, whole / 60 % 60);
    else
        std::snprintf(text, sizeof text, "%dm%02ds", whole / 60, whole % 60);
    return text;
}

}  // namespace

TaskBatches::TaskBatches(const ScaledRows& data, const std::vector<size_t>& class_rows, const ForestConfig& config,
                         const ForestTask& task, NoisePurpose purpose, int duplicates, const Covariates* covariates)
    : data_(data), covariates_(covariates && covariates->width > 0 ? covariates : nullptr), config_(config), task_(task), noise_(config.seed, purpose), duplicates_(duplicates) {
    // Column k's booster learns only from rows where column k is observed: its target is undefined elsewhere.
    for (size_t row : class_rows)
        if (task.column < 0 || !std::isnan(data.values[row * data.width + task.column])) rows_.push_back(row);
    // XGBoost sketches every batch separately, so many small batches are slow (10k rows × K = 1000
    // took 5× longer than 100k × 100): batches span epochs, at least kBatchRows rows unless a class is larger.
    const size_t total = rows_.size() * static_cast<size_t>(duplicates_);
    chunk_ = config.chunk_rows > 0 ? static_cast<size_t>(config.chunk_rows) : std::max(rows_.size(), kBatchRows);
    chunk_ = std::max<size_t>(std::min(chunk_, total), 1);
    inputs_.resize(chunk_ * columns());
    labels_.resize(chunk_ * outputs());
    noise_row_.resize(data.width);
    const double g = level_time(task.level, config);
    if (config.kind == ForestKind::Flow) {
        data_weight_ = g;   // x_t = (1 − t)·z + t·x
        noise_weight_ = 1 - g;
    } else {
        data_weight_ = vp_alpha(g, config);   // x_τ = α(τ)·x + σ(τ)·z
        noise_weight_ = vp_sigma(g, config);
    }
    field_ = NoiseStream::field(config.share_noise_across_levels ? 0 : task.level, task.label);
}

bool TaskBatches::next(const float*& inputs, const float*& labels, size_t& count) {
    const size_t total = rows_.size() * static_cast<size_t>(duplicates_);
    if (position_ >= total) return false;
    const size_t width = data_.width, outs = outputs(), stride = columns();
    count = std::min(chunk_, total - position_);
    for (size_t i = 0; i < count; ++i) {
        // Regression row p is data row p mod n_c under noise draw (epoch) p / n_c.
        const size_t row = rows_[(position_ + i) % rows_.size()];
        const auto epoch = static_cast<uint32_t>((position_ + i) / rows_.size());
        const float* x = &data_.values[row * width];
        noise_.fill_row(row, epoch, field_, width, noise_row_.data());
        float* input = &inputs_[i * stride];
        for (size_t j = 0; j < width; ++j)   // a missing cell stays NaN: XGBoost routes it by its default direction
            input[j] = static_cast<float>(noise_weight_ * noise_row_[j] + data_weight_ * x[j]);
        if (covariates_) std::copy_n(covariates_->row(row), covariates_->width, input + width);
        float* label = &labels_[i * outs];
        for (size_t o = 0; o < outs; ++o) {
            size_t j = task_.column < 0 ? o : static_cast<size_t>(task_.column);
            // flow: v = x − z; VP: the noise z itself.
            label[o] = config_.kind == ForestKind::Flow ? x[j] - noise_row_[j] : noise_row_[j];
        }
    }
    inputs = inputs_.data();
    labels = labels_.data();
    position_ += count;
    return true;
}

// ---------------------------------------------------------------------------------------------
// Configuration.

std::string to_string(ForestKind kind) { return kind == ForestKind::Flow ? "flow" : "diffusion"; }

ForestKind forest_kind_from_string(const std::string& name) {
    if (name == "flow" || name == "forest-flow") return ForestKind::Flow;
    if (name == "diffusion" || name == "vp" || name == "forest-diffusion") return ForestKind::Diffusion;
    throw UserError("unknown forest kind '" + name + "' (accepted: flow, diffusion)");
}

void ForestConfig::set(const std::string& assignment) {
    size_t equals = assignment.find('=');
    if (equals == std::string::npos) throw UserError("--set " + assignment + ": expected KEY=VALUE");
    std::string key = assignment.substr(0, equals), value = assignment.substr(equals + 1);
    nlohmann::ordered_json json = to_json();
    if (!json.contains(key) || key == "kind") {
        std::string keys;
        for (const auto& item : json.items())
            if (item.key() != "kind") keys += (keys.empty() ? "" : ", ") + item.key();
        throw UserError("--set " + key + ": unknown key (accepted: " + keys + ")");
    }
    ForestConfig next;
    try {
        json[key] = json[key].is_string() ? nlohmann::ordered_json(value) : nlohmann::ordered_json::parse(value);
        next = from_json(json);
    } catch (const std::exception&) {
        throw UserError("--set " + key + "=" + value + ": not a valid " + std::string(json[key].type_name()));
    }
    // Checked on a copy: a refused value leaves the configuration as it was.
    if (next.levels < 2) throw UserError("--set levels=" + value + ": at least 2 levels are needed");
    if (next.duplicates < 1 || next.rounds < 1 || next.max_depth < 1 || next.max_bin < 2 || next.threads < 0 ||
        next.early_stopping < 0 || next.valid_duplicates < 0 || next.chunk_rows < 0 || next.memory_budget_gb < 0)
        throw UserError("--set " + key + "=" + value + ": out of range (counts are positive)");
    if (next.parallel != "auto" && next.parallel != "tasks" && next.parallel != "trees")
        throw UserError("--set parallel=" + next.parallel + ": accepted: auto, tasks, trees");
    if (!(next.epsilon > 0 && next.epsilon < 1) || !(next.beta_max > next.beta_min) || next.beta_min < 0)
        throw UserError("--set " + key + "=" + value + ": need 0 < epsilon < 1 and 0 ≤ beta_min < beta_max");
    *this = next;
}

nlohmann::ordered_json ForestConfig::model_json() const {
    return {{"kind", to_string(kind)},
            {"levels", levels},
            {"duplicates", duplicates},
            {"rounds", rounds},
            {"max_depth", max_depth},
            {"eta", eta},
            {"lambda", lambda},
            {"max_bin", max_bin},
            {"epsilon", epsilon},
            {"beta_min", beta_min},
            {"beta_max", beta_max},
            {"seed", seed},
            {"early_stopping", early_stopping},
            {"valid_duplicates", valid_duplicates},
            {"chunk_rows", chunk_rows},
            {"share_noise_across_levels", share_noise_across_levels}};
}

nlohmann::ordered_json ForestConfig::to_json() const {
    nlohmann::ordered_json json = model_json();
    json["parallel"] = parallel;
    json["threads"] = threads;
    json["memory_budget_gb"] = memory_budget_gb;
    return json;
}

ForestConfig ForestConfig::from_json(const nlohmann::ordered_json& json) {
    ForestConfig config;
    config.kind = forest_kind_from_string(json.at("kind").get<std::string>());
    config.levels = json.at("levels").get<int>();
    config.duplicates = json.at("duplicates").get<int>();
    config.rounds = json.at("rounds").get<int>();
    config.max_depth = json.at("max_depth").get<int>();
    config.eta = json.at("eta").get<double>();
    config.lambda = json.at("lambda").get<double>();
    config.max_bin = json.at("max_bin").get<int>();
    config.epsilon = json.at("epsilon").get<double>();
    config.beta_min = json.at("beta_min").get<double>();
    config.beta_max = json.at("beta_max").get<double>();
    config.seed = json.at("seed").get<uint64_t>();
    config.early_stopping = json.at("early_stopping").get<int>();
    config.valid_duplicates = json.at("valid_duplicates").get<int>();
    config.chunk_rows = json.at("chunk_rows").get<int>();
    config.share_noise_across_levels = json.at("share_noise_across_levels").get<bool>();
    config.parallel = json.value("parallel", std::string("auto"));
    config.threads = json.value("threads", 0);
    config.memory_budget_gb = json.value("memory_budget_gb", 0.0);
    return config;
}

double level_time(int level, const ForestConfig& config) {
    return config.epsilon + level * (1.0 - config.epsilon) / (config.levels - 1);
}

int level_for_time(double time, int levels) {
    return std::clamp(static_cast<int>(std::lround(time * (levels - 1))), 0, levels - 1);
}

int trained_levels(const ForestConfig& config) {
    return config.kind == ForestKind::Flow ? config.levels - 1 : config.levels;
}

double vp_beta(double tau, const ForestConfig& config) {
    return config.beta_min + tau * (config.beta_max - config.beta_min);
}

double vp_alpha(double tau, const ForestConfig& config) {
    return std::exp(-0.25 * tau * tau * (config.beta_max - config.beta_min) - 0.5 * tau * config.beta_min);
}

double vp_sigma(double tau, const ForestConfig& config) {
    double alpha = vp_alpha(tau, config);
    return std::sqrt(1.0 - alpha * alpha);
}

std::vector<ForestTask> forest_tasks(const ForestConfig& config, int classes, size_t width, bool per_column) {
    std::vector<ForestTask> tasks;
    for (int level = 0; level < trained_levels(config); ++level)
        for (int label = 0; label < classes; ++label) {
            if (!per_column) {
                tasks.push_back({level, label, -1});
                continue;
            }
            for (size_t column = 0; column < width; ++column)
                tasks.push_back({level, label, static_cast<int>(column)});
        }
    return tasks;
}

std::string model_path(const std::string& run_dir, const ForestTask& task) {
    char name[64];
    if (task.column < 0)
        std::snprintf(name, sizeof name, "L%03d_C%03d.ubj", task.level, task.label);
    else
        std::snprintf(name, sizeof name, "L%03d_C%03d_K%03d.ubj", task.level, task.label, task.column);
    return run_dir + "/models/" + name;
}

double task_memory_bytes(size_t class_rows, int duplicates, size_t width, size_t outputs) {
    return static_cast<double>(class_rows) * duplicates * (2.0 * width + 16.0 * outputs + 16.0);
}

// ---------------------------------------------------------------------------------------------
// Training.

namespace {

// Fits one task and writes its booster atomically.
void fit_task(const ScaledRows& train, const std::vector<size_t>& class_rows, const ForestConfig& config,
              const ForestTask& task, int threads, const std::string& path, const Covariates* covariates) {
    TaskBatches batches(train, class_rows, config, task, NoisePurpose::Train, config.duplicates, covariates);
    if (batches.regression_rows() == 0)
        throw UserError("class " + std::to_string(task.label) + (task.column >= 0 ? ", column " + std::to_string(task.column) : "") +
                        ": no training rows (every value missing?)");
    xgb::DMatrix matrix = xgb::DMatrix::from_batches(batches, config.max_bin, threads);
    if (matrix.rows() != batches.regression_rows())
        throw std::runtime_error("quantile matrix holds " + std::to_string(matrix.rows()) + " rows, expected " +
                                 std::to_string(batches.regression_rows()));
    xgb::Booster booster(&matrix);
    booster.set_params(booster_params(config, threads));
    if (config.early_stopping <= 0) {
        for (int round = 0; round < config.rounds; ++round) booster.update(round, matrix);
        booster.set_attribute("onestep_task", path.substr(path.rfind('/') + 1));
        write_file_atomic(path, booster.to_ubj());
        return;
    }
    // Early stopping on the same rows with fresh noise; bin cuts shared with the training matrix.
    int valid_duplicates = config.valid_duplicates > 0 ? config.valid_duplicates : config.duplicates;
    TaskBatches valid_batches(train, class_rows, config, task, NoisePurpose::Valid, valid_duplicates, covariates);
    xgb::DMatrix valid = xgb::DMatrix::from_batches(valid_batches, config.max_bin, threads, &matrix);
    int best = 0;
    double best_score = INFINITY;
    for (int round = 0; round < config.rounds; ++round) {
        booster.update(round, matrix);
        double score = booster.evaluate(round, valid);
        if (score < best_score) best_score = score, best = round;
        if (round - best >= config.early_stopping) break;
    }
    // Keep rounds [0, best + 1): the best round itself included.
    xgb::Booster kept = booster.slice(best + 1);
    kept.set_attribute("best_iteration", std::to_string(best));
    char score_text[32];
    std::snprintf(score_text, sizeof score_text, "%.9g", best_score);
    kept.set_attribute("best_score", score_text);
    kept.set_attribute("onestep_task", path.substr(path.rfind('/') + 1));
    write_file_atomic(path, kept.to_ubj());
}

// The parallel layout and memory of a run with FINISHED of TOTAL tasks already done.
TrainPlan plan_for(const ScaledRows& train, const ForestConfig& config, int total, int finished,
                   size_t covariate_width) {
    TrainPlan plan;
    plan.total = total;
    plan.finished = finished;
    const bool per_column = has_missing(train);
    std::vector<size_t> class_sizes(class_count(train), 0);
    for (int label : train.labels) ++class_sizes[label];
    const size_t largest =
        train.labels.empty() ? train.rows : *std::max_element(class_sizes.begin(), class_sizes.end());
    const size_t inputs = train.width + covariate_width, outputs = per_column ? 1 : train.width;
    plan.task_bytes = task_memory_bytes(largest, config.duplicates, inputs, outputs);
    if (config.early_stopping > 0) {
        int valid = config.valid_duplicates > 0 ? config.valid_duplicates : config.duplicates;
        plan.task_bytes += task_memory_bytes(largest, valid, inputs, outputs);
    }
    const int threads = config.threads > 0 ? config.threads : machine_threads();
    const int pending = std::max(1, plan.total - plan.finished);
    const double budget = config.memory_budget_gb > 0 ? config.memory_budget_gb * 1e9 : 0.5 * machine_memory_bytes();
    int workers = std::min(threads, pending);
    // `auto`: tasks in parallel whenever they fit the budget; on the 2-core box a whole run was
    // 5-10x faster that way than one task on all threads (BENCHMARKS.md, tabular scale).
    std::string mode = config.parallel;
    if (mode == "auto") mode = workers > 1 && workers * plan.task_bytes <= budget ? "tasks" : "trees";
    plan.mode = mode;
    plan.workers = mode == "tasks" ? workers : 1;
    plan.threads_per_task = mode == "tasks" ? 1 : threads;
    return plan;
}

}  // namespace

TrainPlan plan_forest(const ScaledRows& train, const ForestConfig& config, const std::string& run_dir,
                      size_t covariate_width) {
    std::vector<ForestTask> tasks = forest_tasks(config, class_count(train), train.width, has_missing(train));
    int finished_count = 0;
    for (const auto& task : tasks)
        if (finished(model_path(run_dir, task))) ++finished_count;
    return plan_for(train, config, static_cast<int>(tasks.size()), finished_count, covariate_width);
}

TrainReport train_forest(const ScaledRows& train, const ForestConfig& config, const std::string& run_dir,
                         int max_new_tasks, const Covariates* covariates,
                         const std::function<void(const TrainPlan&)>& on_plan) {
    if (train.rows == 0) throw UserError("no training rows");
    const size_t covariate_width = covariates ? covariates->width : 0;
    if (covariates && covariates->values.size() != train.rows * covariate_width)
        throw UserError("covariates: one row per training row is needed");
    fs::create_directories(run_dir + "/models");
    const int classes = class_count(train);
    const bool per_column = has_missing(train);
    const std::vector<std::vector<size_t>> class_rows = rows_by_class(train, classes);
    std::vector<ForestTask> pending;
    TrainReport report;
    for (const auto& task : forest_tasks(config, classes, train.width, per_column)) {
        ++report.total;
        if (finished(model_path(run_dir, task)))
            ++report.skipped;
        else
            pending.push_back(task);
    }
    report.plan = plan_for(train, config, report.total, report.skipped, covariate_width);
    if (on_plan) on_plan(report.plan);
    if (max_new_tasks >= 0 && pending.size() > static_cast<size_t>(max_new_tasks)) pending.resize(max_new_tasks);
    if (pending.empty()) return report;

    const int threads = config.threads > 0 ? config.threads : machine_threads();
    const int workers = report.plan.mode == "tasks" ? std::min<int>(threads, pending.size()) : 1;
    std::atomic<size_t> next_task{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex mutex;
    int done = 0;
    double last_print = -1.0;   // progress at most once a second
    const auto start = std::chrono::steady_clock::now();

    auto worker = [&]() {
        while (!failed) {
            size_t index = next_task++;
            if (index >= pending.size()) return;
            const ForestTask& task = pending[index];
            // Trees mode: all threads on one task. Tasks mode: one each, until fewer tasks than
            // workers remain; then the last ones share the idle cores (a pure function of INDEX).
            int task_threads = threads;
            if (workers > 1) {
                size_t remaining = pending.size() - index;
                task_threads = remaining < static_cast<size_t>(workers)
                                   ? static_cast<int>((threads + remaining - 1) / remaining)
                                   : 1;
            }
            try {
                fit_task(train, class_rows[task.label], config, task, task_threads, model_path(run_dir, task),
                         covariates);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mutex);
                if (!error) error = std::current_exception();
                failed = true;
                return;
            }
            std::lock_guard<std::mutex> lock(mutex);
            ++done;
            double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (elapsed < last_print + 1.0 && done < static_cast<int>(pending.size())) continue;
            last_print = elapsed;
            double eta = elapsed / done * (pending.size() - done);
            std::cerr << "\rforest-" << to_string(config.kind) << ": " << report.skipped + done << "/"
                      << report.total << " tasks, ETA " << format_duration(eta) << "   " << std::flush;
        }
    };
    if (workers == 1) {
        worker();
    } else {
        std::vector<std::thread> pool;
        for (int w = 0; w < workers; ++w) pool.emplace_back(worker);
        for (auto& thread : pool) thread.join();
    }
    std::cerr << "\n";
    if (error) std::rethrow_exception(error);
    report.trained = done;
    return report;
}

// ---------------------------------------------------------------------------------------------
// Sampling and imputation.

ForestModel::ForestModel(std::string run_dir, ForestConfig config, size_t width, int classes, bool per_column,
                         size_t covariate_width)
    : run_dir_(std::move(run_dir)),
      config_(config),
      width_(width),
      classes_(classes),
      per_column_(per_column),
      covariate_width_(covariate_width) {}

std::vector<float> ForestModel::predict(int level, int label, const float* inputs, size_t rows) const {
    ++calls_;
    auto load = [&](const ForestTask& task) {
        std::string path = model_path(run_dir_, task);
        if (!fs::exists(path)) throw UserError(path + ": missing booster; finish training first (train resumes)");
        xgb::Booster booster;
        booster.load(path);
        return booster;
    };
    const size_t input_width = width_ + covariate_width_;
    if (!per_column_) return load({level, label, -1}).predict(inputs, rows, input_width);
    std::vector<float> out(rows * width_);
    for (size_t column = 0; column < width_; ++column) {
        std::vector<float> values =
            load({level, label, static_cast<int>(column)}).predict(inputs, rows, input_width);
        for (size_t r = 0; r < rows; ++r) out[r * width_ + column] = values[r];
    }
    return out;
}

namespace {

// The third noise-counter word for draws that are not keyed by level: distinct uses of one step.
constexpr uint32_t kInitialField = 0xFFFFF, kStepField = 0xFFFFE, kObservedField = 0xFFFFD, kLabelField = 0xFFFFC;

// One model evaluation on COUNT state rows, each followed by its covariates when the model has them.
std::vector<float> evaluate(const ForestModel& model, int level, int label, const std::vector<float>& state,
                            size_t count, const std::vector<size_t>& row_ids, const Covariates* covariates) {
    const size_t width = model.width(), extra = model.covariate_width();
    if (extra == 0) return model.predict(level, label, state.data(), count);
    std::vector<float> inputs(count * (width + extra));
    for (size_t r = 0; r < count; ++r) {
        std::copy_n(&state[r * width], width, &inputs[r * (width + extra)]);
        std::copy_n(covariates->row(row_ids[r]), extra, &inputs[r * (width + extra) + width]);
    }
    return model.predict(level, label, inputs.data(), count);
}

void check_covariates(const ForestModel& model, const Covariates* covariates, size_t rows) {
    const size_t extra = model.covariate_width();
    if (extra == 0) return;
    if (!covariates || covariates->width != extra || covariates->values.size() != rows * extra)
        throw UserError("the model is conditioned on " + std::to_string(extra) +
                        " covariate column(s): give their values for every row");
}

// One class batch through the sampler of the model's kind; STATE holds z on entry.
void run_sampler(const ForestModel& model, int label, std::vector<float>& state, size_t count,
                 const std::vector<size_t>& row_ids, const NoiseStream& noise, const Covariates* covariates,
                 int steps) {
    const ForestConfig& config = model.config();
    const size_t width = model.width();
    if (config.kind == ForestKind::Flow) {
        // Euler with h = 1/(N − 1): y ← y + h·f_{i(t_k)}(y), t_k = k·h.
        const double h = 1.0 / (steps - 1);
        for (int k = 0; k + 1 < steps; ++k) {
            std::vector<float> velocity =
                evaluate(model, level_for_time(k * h, config.levels), label, state, count, row_ids, covariates);
            for (size_t i = 0; i < state.size(); ++i) state[i] += static_cast<float>(h * velocity[i]);
        }
        return;
    }
    // Reverse Euler–Maruyama on τ_k = linspace(1, ε, N), then the Tweedie denoise at ε.
    std::vector<float> xi(width);
    auto tau_at = [&](int k) { return 1.0 + k * (config.epsilon - 1.0) / (steps - 1); };
    for (int k = 0; k + 1 < steps; ++k) {
        double tau = tau_at(k), h = tau - tau_at(k + 1);
        double beta = vp_beta(tau, config), sigma = vp_sigma(tau, config), spread = std::sqrt(beta * h);
        std::vector<float> eps =
            evaluate(model, level_for_time(tau, config.levels), label, state, count, row_ids, covariates);
        for (size_t r = 0; r < count; ++r) {
            noise.fill_row(row_ids[r], static_cast<uint32_t>(k + 1), kStepField, width, xi.data());
            for (size_t j = 0; j < width; ++j) {
                size_t i = r * width + j;
                double score = -eps[i] / sigma;
                state[i] += static_cast<float>(h * (0.5 * beta * state[i] + beta * score) + spread * xi[j]);
            }
        }
    }
    // x ← x + σ(ε)²·ŝ(x, ε) = x − σ(ε)·ε̂ (no 1/α(ε) factor, as in the reference).
    double sigma = vp_sigma(config.epsilon, config);
    std::vector<float> eps = evaluate(model, 0, label, state, count, row_ids, covariates);
    for (size_t i = 0; i < state.size(); ++i) state[i] -= static_cast<float>(sigma * eps[i]);
}

}  // namespace

ScaledRows sample_forest(const ForestModel& model, const std::vector<size_t>& class_counts, size_t rows,
                         uint64_t seed, const std::vector<int>& given_labels, const Covariates* covariates,
                         int steps) {
    const size_t width = model.width();
    check_covariates(model, covariates, rows);
    if (steps == 0) steps = model.config().levels;
    if (steps < 2) throw UserError("--steps " + std::to_string(steps) + ": at least 2 grid points (1 model step)");
    ScaledRows fake;
    fake.rows = rows;
    fake.width = width;
    fake.values.resize(rows * width);
    NoiseStream noise(seed, NoisePurpose::Sample);
    if (!given_labels.empty()) {
        if (given_labels.size() != rows) throw UserError("given labels: one per generated row is needed");
        fake.labels = given_labels;
    } else {
        // Labels i.i.d. from π̂_c = n_c / n, with a generator seeded from the same counter stream.
        auto bits = philox4x32({0, 0, kLabelField, 0}, {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
        std::mt19937_64 label_rng((static_cast<uint64_t>(bits[0]) << 32) | bits[1]);
        std::discrete_distribution<int> class_draw(class_counts.begin(), class_counts.end());
        fake.labels.resize(rows);
        for (auto& label : fake.labels) label = class_draw(label_rng);
    }
    for (int label = 0; label < model.classes(); ++label) {
        std::vector<size_t> members;
        for (size_t r = 0; r < rows; ++r)
            if (fake.labels[r] == label) members.push_back(r);
        if (members.empty()) continue;
        std::vector<float> state(members.size() * width);
        for (size_t m = 0; m < members.size(); ++m) noise.fill_row(members[m], 0, kInitialField, width, &state[m * width]);
        run_sampler(model, label, state, members.size(), members, noise, covariates, steps);
        for (size_t m = 0; m < members.size(); ++m)
            std::copy_n(state.begin() + m * width, width, fake.values.begin() + members[m] * width);
    }
    return fake;
}

ScaledRows impute_forest(const ForestModel& model, const ScaledRows& rows, uint64_t seed, const Repaint& repaint,
                         const Covariates* covariates) {
    const ForestConfig& config = model.config();
    if (config.kind != ForestKind::Diffusion)
        throw UserError("imputation needs a forest-diffusion (VP) model; flow models cannot condition on observed cells");
    if (repaint.repaints < 1 || !(repaint.jump_fraction > 0 && repaint.jump_fraction <= 1))
        throw UserError("--repaint R,J: R ≥ 1 and 0 < J ≤ 1 (J is a fraction of the levels)");
    const size_t width = model.width();
    if (rows.width != width) throw UserError("imputation rows have " + std::to_string(rows.width) +
                                             " encoded columns, the model " + std::to_string(width));
    check_covariates(model, covariates, rows.rows);
    ScaledRows out = rows;
    NoiseStream noise(seed, NoisePurpose::Impute);
    const int steps = config.levels;
    const int jump = std::max(1, static_cast<int>(std::ceil(repaint.jump_fraction * steps - 1e-9)));
    auto tau_at = [&](int k) { return 1.0 + k * (config.epsilon - 1.0) / (steps - 1); };

    for (int label = 0; label < model.classes(); ++label) {
        std::vector<size_t> members;
        for (size_t r = 0; r < rows.rows; ++r) {
            if (rows.labels[r] != label) continue;
            const float* x = &rows.values[r * width];
            if (std::any_of(x, x + width, [](float v) { return std::isnan(v); })) members.push_back(r);
        }
        if (members.empty()) continue;
        const size_t count = members.size();
        std::vector<float> state(count * width), full(count * width), xi(width);
        std::vector<char> missing(count * width);
        for (size_t m = 0; m < count; ++m) {
            noise.fill_row(members[m], 0, kInitialField, width, &state[m * width]);
            for (size_t j = 0; j < width; ++j) missing[m * width + j] = std::isnan(rows.values[members[m] * width + j]);
        }
        uint32_t call = 0;
        // ε̂ at τ for full rows: observed cells re-noised freshly at every call, missing cells = state.
        auto predict_noise = [&](double tau) {
            ++call;
            double alpha = vp_alpha(tau, config), sigma = vp_sigma(tau, config);
            for (size_t m = 0; m < count; ++m) {
                noise.fill_row(members[m], call, kObservedField, width, xi.data());
                for (size_t j = 0; j < width; ++j) {
                    size_t i = m * width + j;
                    full[i] = missing[i] ? state[i]
                                         : static_cast<float>(alpha * rows.values[members[m] * width + j] + sigma * xi[j]);
                }
            }
            return evaluate(model, level_for_time(tau, config.levels), label, full, count, members, covariates);
        };
        uint32_t draw = 0;   // counter of the Euler–Maruyama and re-noising draws
        int repeats = 0;
        for (int k = 0; k + 1 < steps; ++k) {
            double tau = tau_at(k), h = tau - tau_at(k + 1);
            double beta = vp_beta(tau, config), sigma = vp_sigma(tau, config), spread = std::sqrt(beta * h);
            std::vector<float> eps = predict_noise(tau);
            ++draw;
            for (size_t m = 0; m < count; ++m) {
                noise.fill_row(members[m], draw, kStepField, width, xi.data());
                for (size_t j = 0; j < width; ++j) {
                    size_t i = m * width + j;
                    double score = -eps[i] / sigma;
                    state[i] += static_cast<float>(h * (0.5 * beta * state[i] + beta * score) + spread * xi[j]);
                }
            }
            if ((k + 1) % jump != 0) continue;
            if (repeats < repaint.repaints - 1) {
                // Back to the block's start: one forward Euler–Maruyama step of the block's length.
                double span = tau_at(k - jump + 1) - tau_at(k + 1);
                double beta_k = vp_beta(tau, config);
                ++draw;
                for (size_t m = 0; m < count; ++m) {
                    noise.fill_row(members[m], draw, kStepField, width, xi.data());
                    for (size_t j = 0; j < width; ++j) {
                        size_t i = m * width + j;
                        state[i] += static_cast<float>(-0.5 * beta_k * state[i] * span + std::sqrt(beta_k * span) * xi[j]);
                    }
                }
                ++repeats;
                k -= jump;   // the loop's ++k resumes at k − j + 1
            } else {
                repeats = 0;
            }
        }
        std::vector<float> eps = predict_noise(config.epsilon);
        double sigma = vp_sigma(config.epsilon, config);
        for (size_t m = 0; m < count; ++m)
            for (size_t j = 0; j < width; ++j) {
                size_t i = m * width + j;
                if (missing[i]) out.values[members[m] * width + j] = static_cast<float>(state[i] - sigma * eps[i]);
            }
    }
    return out;
}

std::vector<double> zero_shot_losses(const ForestModel& model, const ScaledRows& rows, uint64_t seed,
                                     int noise_draws, int grid) {
    const ForestConfig& config = model.config();
    const size_t width = model.width(), count = rows.rows;
    if (model.covariate_width() > 0) throw UserError("zero-shot classification of covariate-conditioned runs is not supported");
    if (rows.width != width) throw UserError("classification rows have " + std::to_string(rows.width) +
                                             " encoded columns, the model " + std::to_string(width));
    if (std::any_of(rows.values.begin(), rows.values.end(), [](float v) { return std::isnan(v); }))
        throw UserError("zero-shot classification needs complete rows (impute the missing cells first)");
    if (noise_draws < 1) throw UserError("--draws must be at least 1");
    if (grid == 0) grid = config.levels;
    if (grid < 2) throw UserError("--grid must be at least 2");
    NoiseStream noise(seed, NoisePurpose::ZeroShot);
    const size_t batch = count * static_cast<size_t>(noise_draws);
    std::vector<double> losses(count * model.classes(), 0.0);
    std::vector<float> z(batch * width), inputs(batch * width);
    for (int j = 1; j < grid; ++j) {
        const double g = static_cast<double>(j) / grid;
        const double data_weight = config.kind == ForestKind::Flow ? g : vp_alpha(g, config);
        const double noise_weight = config.kind == ForestKind::Flow ? 1 - g : vp_sigma(g, config);
        // z_{m,j} keyed by (row, draw m, grid point j): the same for every class.
        for (size_t r = 0; r < count; ++r)
            for (int m = 0; m < noise_draws; ++m) {
                size_t b = r * noise_draws + m;
                noise.fill_row(r, static_cast<uint32_t>(m), static_cast<uint32_t>(j), width, &z[b * width]);
                for (size_t k = 0; k < width; ++k)
                    inputs[b * width + k] =
                        static_cast<float>(data_weight * rows.values[r * width + k] + noise_weight * z[b * width + k]);
            }
        for (int label = 0; label < model.classes(); ++label) {
            std::vector<float> out = model.predict(level_for_time(g, config.levels), label, inputs.data(), batch);
            for (size_t b = 0; b < batch; ++b) {
                const size_t r = b / noise_draws;
                double squared = 0;
                for (size_t k = 0; k < width; ++k) {
                    // flow: v = x − z, so ẑ = x − v̂; VP: ε̂ is ẑ.
                    double recovered = config.kind == ForestKind::Flow ? rows.values[r * width + k] - out[b * width + k]
                                                                       : out[b * width + k];
                    double difference = recovered - z[b * width + k];
                    squared += difference * difference;
                }
                losses[r * model.classes() + label] += squared / (noise_draws * (grid - 1));
            }
        }
    }
    return losses;
}

}  // namespace onestep::tabular
