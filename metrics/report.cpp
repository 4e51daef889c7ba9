// The run report: discovery of run folders, their summaries, and leaderboards built from every
// evaluation record onestep writes (image metrics, 2-D toy metrics, the trainer's periodic
// evaluations, separation summaries, tabular metrics).
#include "metrics/report.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <sstream>

#include "core/checkpoint.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "data/image_io.hpp"

namespace onestep {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Folders below a root that are searched for runs and records.
constexpr int kMaxDepth = 6;
// JSON files larger than this are not evaluation records (datasets, manifests of big runs).
constexpr uintmax_t kMaxRecordBytes = 8u << 20;

bool is_file(const fs::path& path) {
    std::error_code error;
    return fs::is_regular_file(path, error);
}

bool ends_with(const std::string& text, const std::string& tail) {
    return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

std::string lowercase(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

// A path in a comparable form: absolute and normalised, without touching the file system.
std::string normal_path(const std::string& path) {
    fs::path absolute = fs::path(path).is_absolute() ? fs::path(path) : fs::current_path() / path;
    std::string text = absolute.lexically_normal().string();
    while (text.size() > 1 && text.back() == '/') text.pop_back();
    return text;
}

std::optional<json> read_json(const std::string& path, std::string* why) {
    std::ifstream in(path);
    if (!in) {
        *why = "cannot be read";
        return std::nullopt;
    }
    try {
        return json::parse(in);
    } catch (const json::parse_error& error) {
        *why = "not valid JSON (error at byte " + std::to_string(error.byte) + ")";
        return std::nullopt;
    }
}

std::optional<double> number_at(const json& record, const std::string& key) {
    auto found = record.find(key);
    if (found == record.end() || !found->is_number()) return std::nullopt;
    double value = found->get<double>();
    if (!std::isfinite(value)) return std::nullopt;
    return value;
}

std::string string_at(const json& record, const std::string& key) {
    auto found = record.find(key);
    return found != record.end() && found->is_string() ? found->get<std::string>() : std::string();
}

std::string yaml_string(const YAML::Node& root, std::initializer_list<const char*> keys) {
    YAML::Node node = YAML::Clone(root);
    for (const char* key : keys) {
        if (!node.IsMap() || !node[key]) return "";
        node = node[key];
    }
    return node.IsScalar() ? node.as<std::string>() : std::string();
}

// ---------------------------------------------------------------------------------------------
// Collecting

// The accumulating state: runs by normalised folder, and each board's rows by key.
class Collector {
  public:
    Report report;

    // With several roots, run names start with their root's folder name, so runs of the same
    // name under different roots stay apart.
    explicit Collector(bool name_roots) : name_roots_(name_roots) {}

    void add_root(const std::string& root) {
        std::error_code error;
        if (!fs::is_directory(root, error)) throw UserError("report: " + root + " is not a folder");
        report.roots.push_back(root);
        walk(root, root, 0);
    }

    void finish();

  private:
    struct BoardKey {
        std::string metric, against;
        bool operator<(const BoardKey& other) const {
            return std::tie(metric, against) < std::tie(other.metric, other.against);
        }
    };
    std::map<BoardKey, Leaderboard> boards_;
    std::map<BoardKey, MetricTrace> traces_;
    std::map<std::string, size_t> run_by_folder_;     // normal_path(run folder) -> index in report.runs
    std::vector<std::string> loose_records_;   // JSON files outside run folders
    std::map<BoardKey, double> tabular_references_;   // the training rows scored as if generated
    bool name_roots_;

    std::string run_name(const std::string& root, const std::string& dir) const;

    void walk(const std::string& root, const std::string& dir, int depth);
    void add_trainer_run(const std::string& root, const std::string& dir);
    void add_forest_run(const std::string& root, const std::string& dir, const json& manifest);
    void read_log(RunSummary& run, const std::string& log_path);
    void read_checkpoint(RunSummary& run, const std::string& dir);
    void read_samples(RunSummary& run, const std::string& dir);
    void read_records_in(const RunSummary& run, const std::string& folder, bool strict);
    // Adds the rows of RECORD; false when its shape is not one onestep writes.
    bool add_record(const json& record, const std::string& file, const RunSummary* owner);
    const RunSummary* run_evaluated(const std::string& target) const;
    void add_row(const std::string& metric, const std::string& against, const std::string& reference_meaning,
                 LeaderboardRow row);
    void skip(const std::string& file, const std::string& why) { report.skipped.push_back(file + ": " + why); }
};

std::string Collector::run_name(const std::string& root, const std::string& dir) const {
    fs::path relative = fs::path(dir).lexically_relative(root);
    std::string name = relative.string();
    const std::string root_name = fs::path(normal_path(root)).filename().string();
    if (name.empty() || name == ".") return root_name;
    return name_roots_ ? root_name + "/" + name : name;
}

void Collector::walk(const std::string& root, const std::string& dir, int depth) {
    const fs::path folder(dir);
    if (is_file(folder / "manifest.json")) {
        std::string why;
        std::optional<json> manifest = read_json((folder / "manifest.json").string(), &why);
        if (manifest && manifest->is_object() && string_at(*manifest, "method").rfind("forest-", 0) == 0) {
            add_forest_run(root, dir, *manifest);
            return;
        }
    }
    if (is_file(folder / "config.yaml") && (is_file(folder / "log.jsonl") || is_file(folder / "checkpoints/latest.ckpt"))) {
        add_trainer_run(root, dir);
        return;
    }
    std::vector<DirectoryEntry> entries;
    try {
        entries = list_directory(dir);
    } catch (const UserError& error) {
        skip(dir, error.what());
        return;
    }
    for (const DirectoryEntry& entry : entries) {
        if (entry.is_hidden()) continue;
        if (entry.is_directory && depth < kMaxDepth) walk(root, entry.path, depth + 1);
        if (entry.is_regular_file && ends_with(entry.name, ".json")) loose_records_.push_back(entry.path);
    }
}

void Collector::add_trainer_run(const std::string& root, const std::string& dir) {
    RunSummary run;
    run.path = dir;
    run.name = run_name(root, dir);
    const fs::path folder(dir);
    try {
        YAML::Node config = YAML::LoadFile((folder / "config.yaml").string());
        run.data = yaml_string(config, {"data", "name"});
        // Distillation methods name their teacher as "<method>.teacher" and their teacher pairs as
        // "<method>.pairs"; data.name is unused there.
        std::string distilled;
        for (const char* key : {"teacher", "pairs"})
            for (const auto& section : config) {
                const YAML::Node value = section.second.IsMap() ? section.second[key] : YAML::Node();
                if (!value || !value.IsScalar() || value.as<std::string>().empty()) continue;
                std::string name = value.as<std::string>();
                if (std::string(key) == "pairs") name = fs::path(name).filename().string();
                distilled += (distilled.empty() ? "" : ", ") + std::string(key) + ":" + name;
            }
        if (!distilled.empty()) run.data = distilled;
        run.model = yaml_string(config, {"separator", "preset"});
        if (run.model.empty()) run.model = yaml_string(config, {"model", "arch"});
        // A latent generator samples; the model.* network is then its critic (score-mismatch).
        const std::string generator = yaml_string(config, {"generator", "arch"});
        if (!generator.empty()) run.model = generator + " (critic " + run.model + ")";
        std::string steps = yaml_string(config, {"steps"});
        if (!steps.empty()) run.steps = std::stoll(steps);
    } catch (const std::exception& error) {
        run.notes.push_back((folder / "config.yaml").string() + ": " + error.what());
    }
    read_checkpoint(run, dir);
    if (is_file(folder / "log.jsonl")) read_log(run, (folder / "log.jsonl").string());
    read_samples(run, dir);
    for (const std::string& note : run.notes) report.skipped.push_back(note);
    run_by_folder_[normal_path(dir)] = report.runs.size();
    report.runs.push_back(run);
    read_records_in(report.runs.back(), (fs::path(dir) / "eval").string(), /*strict=*/true);
}

void Collector::read_checkpoint(RunSummary& run, const std::string& dir) {
    const std::string latest = (fs::path(dir) / "checkpoints" / "latest.ckpt").string();
    if (!is_file(latest)) return;
    try {
        Checkpoint header = peek_checkpoint(latest);
        run.method = header.method;
        run.latest_checkpoint = latest;
        // "net/<network>/<tensor>"; the trained networks are those with an optimizer ("optim/<network>"),
        // so EMA copies and frozen copies (SlimFlow's G2) are left out.
        const std::map<std::string, std::vector<int64_t>> shapes = peek_tensor_shapes(latest);
        std::set<std::string> trained;
        for (const auto& entry : shapes)
            if (entry.first.rfind("optim/", 0) == 0) trained.insert(entry.first.substr(6));
        int64_t weights = 0;
        for (const auto& [name, shape] : shapes) {
            if (name.rfind("net/", 0) != 0) continue;
            std::string network = name.substr(4, name.find('/', 4) - 4);
            if (trained.empty() ? network.rfind("ema", 0) == 0 : trained.count(network) == 0) continue;
            weights += std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
        }
        run.weights = weights;
    } catch (const UserError& error) {
        run.notes.push_back(error.what());
    }
}

void Collector::read_log(RunSummary& run, const std::string& log_path) {
    std::ifstream in(log_path);
    std::string text;
    for (int64_t line_number = 1; std::getline(in, text); ++line_number) {
        if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
        json record;
        try {
            record = json::parse(text);
        } catch (const json::parse_error&) {
            // A line cut short by a crash is the usual cause; later lines are still read.
            run.notes.push_back(log_path + ":" + std::to_string(line_number) + ": not a JSON line");
            continue;
        }
        if (!record.is_object()) continue;
        std::optional<double> step = number_at(record, "step");
        if (!step) continue;
        auto evaluation = record.find("eval");
        if (evaluation != record.end() && evaluation->is_object()) {
            for (const auto& [metric, value] : evaluation->items()) {
                if (!value.is_number() || !std::isfinite(value.get<double>())) continue;
                BoardKey key{metric, "evaluation during training on " + (run.data.empty() ? "its data" : run.data)};
                MetricTrace& trace = traces_[key];
                trace.metric = key.metric, trace.against = key.against;
                trace.runs[run.name].emplace_back(static_cast<int64_t>(*step), value.get<double>());
            }
            continue;
        }
        run.step = std::max<int64_t>(run.step, static_cast<int64_t>(*step));
        if (auto time = number_at(record, "time_s")) run.wall_s = *time;
        if (auto loss = number_at(record, "loss")) run.loss = *loss;
    }
}

void Collector::read_samples(RunSummary& run, const std::string& dir) {
    const fs::path samples = fs::path(dir) / "samples";
    if (is_file(samples / "loss.png")) run.loss_curve = (samples / "loss.png").string();
    std::error_code error;
    if (!fs::is_directory(samples, error)) return;
    try {
        for (const DirectoryEntry& entry : list_directory(samples.string()))   // sorted: the last is the newest
            if (entry.is_regular_file && entry.name.rfind("step-", 0) == 0 && ends_with(entry.name, ".png"))
                run.sample_grid = entry.path;
    } catch (const UserError& error) {
        run.notes.push_back(error.what());
    }
}

// The records in FOLDER that belong to RUN. STRICT (a run's eval/ folder): a file that cannot be
// read or is not a record is listed as skipped; otherwise (a run's own folder, where manifests and
// configs lie too) only records are taken and other files are left out quietly.
void Collector::read_records_in(const RunSummary& run, const std::string& folder, bool strict) {
    std::error_code error;
    if (!fs::is_directory(folder, error)) return;
    std::vector<DirectoryEntry> entries;
    try {
        entries = list_directory(folder);
    } catch (const UserError& failure) {
        skip(folder, failure.what());
        return;
    }
    for (const DirectoryEntry& entry : entries) {
        if (!entry.is_regular_file || entry.is_hidden() || !ends_with(entry.name, ".json")) continue;
        std::string why;
        std::optional<json> record = read_json(entry.path, &why);
        if (!record) {
            if (strict) skip(entry.path, why);
            continue;
        }
        // The trainer's periodic evaluations are also lines of log.jsonl, where they were read.
        if (record->is_object() && record->contains("eval") && record->contains("step")) continue;
        if (!add_record(*record, entry.path, &run) && strict) skip(entry.path, "not an evaluation record onestep writes");
    }
}

void Collector::add_forest_run(const std::string& root, const std::string& dir, const json& manifest) {
    RunSummary run;
    run.path = dir;
    run.name = run_name(root, dir);
    run.method = string_at(manifest, "method");
    if (auto data = manifest.find("data"); data != manifest.end() && data->is_object())
        run.data = fs::path(string_at(*data, "path")).filename().string();
    if (auto config = manifest.find("config"); config != manifest.end() && config->is_object()) {
        std::ostringstream model;
        model << "XGBoost";
        if (auto levels = number_at(*config, "levels")) model << ", " << static_cast<int64_t>(*levels) << " levels";
        if (auto rounds = number_at(*config, "rounds")) model << ", " << static_cast<int64_t>(*rounds) << " rounds";
        if (auto depth = number_at(*config, "max_depth")) model << ", depth " << static_cast<int64_t>(*depth);
        run.model = model.str();
    }
    run_by_folder_[normal_path(dir)] = report.runs.size();
    report.runs.push_back(run);
    // Tabular evaluations are usually written next to the run (`eval tabular --out RUN/eval.json`).
    read_records_in(report.runs.back(), dir, /*strict=*/false);
    read_records_in(report.runs.back(), (fs::path(dir) / "eval").string(), /*strict=*/true);
}

// The run whose checkpoint or folder TARGET names ("ckpt:runs/x", "runs/x/checkpoints/step-9.ckpt").
const RunSummary* Collector::run_evaluated(const std::string& target) const {
    std::string path = target.rfind("ckpt:", 0) == 0 ? target.substr(5) : target;
    if (path.empty()) return nullptr;
    // The record's path is relative to where the evaluation ran; the report may run elsewhere, so
    // a run whose own path (relative to its root) ends the named path is also a match.
    fs::path candidate(normal_path(path));
    for (int up = 0; up < 3 && candidate.has_relative_path(); ++up, candidate = candidate.parent_path()) {
        auto found = run_by_folder_.find(candidate.string());
        if (found != run_by_folder_.end()) return &report.runs[found->second];
        for (const RunSummary& run : report.runs)
            if (candidate.string() == run.name || ends_with(candidate.string(), "/" + run.name)) return &run;
    }
    return nullptr;
}

void Collector::add_row(const std::string& metric, const std::string& against, const std::string& reference_meaning,
                        LeaderboardRow row) {
    Leaderboard& board = boards_[BoardKey{metric, against}];
    board.metric = metric, board.against = against;
    board.direction = metric_direction(metric);
    if (board.reference_meaning.empty()) board.reference_meaning = reference_meaning;
    board.rows.push_back(std::move(row));
}

bool Collector::add_record(const json& record, const std::string& file, const RunSummary* owner) {
    if (!record.is_object()) return false;
    auto row_for = [&](const std::string& target, const std::string& how, double value) {
        const RunSummary* run = owner ? owner : run_evaluated(target);
        LeaderboardRow row;
        row.run = run ? run->name : (target.empty() ? fs::path(file).parent_path().filename().string() : target);
        row.method = run ? run->method : "";
        row.how = how;
        row.value = value;
        return row;
    };

    // Image metrics (`eval fid|fd|kid|prdc|acc`): one metric and its real-data baseline.
    if (record.contains("metric") && number_at(record, "value")) {
        std::string against = "real data";
        if (auto reference = record.find("reference"); reference != record.end() && reference->is_object())
            against = string_at(*reference, "source");
        else if (auto baseline = record.find("baseline"); baseline != record.end() && baseline->is_object())
            against = string_at(*baseline, "source");
        if (auto extractor = record.find("extractor"); extractor != record.end() && extractor->is_object())
            against += ", features " + string_at(*extractor, "id");
        LeaderboardRow row = row_for(string_at(record, "fake"), string_at(record, "fake_description"),
                                     *number_at(record, "value"));
        if (auto n = number_at(record, "n_gen")) row.how += (row.how.empty() ? "" : ", ") + std::string("N ") + std::to_string(static_cast<int64_t>(*n));
        if (auto nfe = number_at(record, "nfe")) row.nfe = static_cast<int64_t>(*nfe);
        if (auto step = number_at(record, "step")) row.step = static_cast<int64_t>(*step);
        std::string meaning = "real data against itself";
        if (auto baseline = record.find("baseline"); baseline != record.end() && baseline->is_object()) {
            row.reference = number_at(*baseline, "value");
            std::string stated = string_at(*baseline, "meaning");
            if (!stated.empty()) meaning = stated;
            else if (!string_at(*baseline, "source").empty()) meaning = string_at(*baseline, "source") + " against the reference";
        }
        add_row(string_at(record, "metric"), against, meaning, row);
        return true;
    }
    // 2-D toy metrics (`eval toy`): each metric with the floor two real samples reach.
    if (number_at(record, "sw1") && number_at(record, "nfe")) {
        std::string how = string_at(record, "sampler");
        if (auto step = number_at(record, "step")) how += ", step " + std::to_string(static_cast<int64_t>(*step));
        for (const char* metric : {"sw1", "mmd2", "hq", "cacc", "paired_error"}) {
            auto value = number_at(record, metric);
            if (!value) continue;
            LeaderboardRow row = row_for(string_at(record, "checkpoint"), how, *value);
            row.reference = number_at(record, std::string(metric) + "_floor");
            row.nfe = static_cast<int64_t>(*number_at(record, "nfe"));
            if (auto step = number_at(record, "step")) row.step = static_cast<int64_t>(*step);
            const bool paired = std::string(metric) == "paired_error";
            add_row(metric, paired ? "pairs " + string_at(record, "pairs") : string_at(record, "real"),
                    paired ? "" : "two real samples", row);
        }
        return true;
    }
    // Separation summaries (`eval sdr`): the means over stems and tracks.
    if (string_at(record, "format").rfind("onestep.sep-eval-summary/", 0) == 0) {
        auto scores = record.find("scores");
        if (scores == record.end() || !scores->is_object()) return false;
        std::string estimates = string_at(record, "estimates");
        for (const char* metric : {"mdx_sdr", "musdb_csdr"}) {
            auto value = number_at(*scores, metric);
            if (!value) continue;
            std::string how;
            if (auto tracks = number_at(record, "tracks")) how = std::to_string(static_cast<int64_t>(*tracks)) + " tracks";
            add_row(metric, string_at(record, "reference"), "", row_for(estimates, how, *value));
        }
        return true;
    }
    // Tabular metrics (`eval tabular`): distances and utility averaged over the generated sets. A
    // record whose "generated" sets are the training file itself is the real-data reference.
    if (number_at(record, "w1_test")) {
        const std::string against = string_at(record, "test");
        const std::string train = string_at(record, "train");
        std::vector<std::string> fakes;
        if (auto listed = record.find("fake"); listed != record.end() && listed->is_array())
            for (const json& fake : *listed)
                if (fake.is_string()) fakes.push_back(fake.get<std::string>());
        const bool real_reference =
            !fakes.empty() && std::all_of(fakes.begin(), fakes.end(), [&](const std::string& fake) { return fake == train; });
        const std::string target = fakes.empty() ? "" : fs::path(fakes.front()).parent_path().string();
        for (const std::string metric : {"w1_test", "coverage_test", "tstr_xgb_fake", "disc_xgb_f1"}) {
            auto value = number_at(record, metric);
            if (!value) continue;
            const bool discriminator = metric == "disc_xgb_f1";
            if (real_reference) {
                // The discriminator cannot be scored on the training rows (they are its own labels).
                if (discriminator) continue;
                tabular_references_[BoardKey{metric, against}] = *value;
                continue;
            }
            LeaderboardRow row = row_for(target, std::to_string(fakes.size()) + " generated sets", *value);
            if (metric == "tstr_xgb_fake") row.reference = number_at(record, "tstr_xgb_real");
            add_row(metric, against,
                    discriminator ? "none; 1/3 when fakes cannot be told from real rows, below it they look more real "
                                    "than real (memorisation)"
                                  : "",
                    row);
        }
        return true;
    }
    return false;
}

void Collector::finish() {
    // Records lying outside run folders (written with --out) join the run they evaluated.
    for (const std::string& file : loose_records_) {
        std::error_code error;
        if (fs::file_size(file, error) > kMaxRecordBytes) continue;
        std::string why;
        std::optional<json> record = read_json(file, &why);
        // Other JSON files (dataset descriptions, per-song scores) are not records: left out quietly.
        if (record) add_record(*record, file, nullptr);
    }
    // Training-time evaluations: the latest value of each run, with its best in the description.
    // "X_mix_k" is X for the mixture divided by the number of stems: the reference of X.
    const std::string kMixtureSuffix = "_mix_k";
    for (auto& [key, trace] : traces_) {
        if (ends_with(key.metric, kMixtureSuffix)) continue;
        auto mixture = traces_.find(BoardKey{key.metric + kMixtureSuffix, key.against});
        for (auto& [run_name, points] : trace.runs) {
            std::sort(points.begin(), points.end());
            const auto& [last_step, last_value] = points.back();
            LeaderboardRow row;
            row.run = run_name;
            for (const RunSummary& run : report.runs)
                if (run.name == run_name) row.method = run.method;
            row.how = "step " + std::to_string(last_step);
            int direction = metric_direction(key.metric);
            if (direction != 0 && points.size() > 1) {
                auto best = std::max_element(points.begin(), points.end(), [&](const auto& a, const auto& b) {
                    return direction > 0 ? a.second < b.second : a.second > b.second;
                });
                if (best->first != last_step) {
                    char text[96];
                    std::snprintf(text, sizeof text, " (best %.4g at step %lld)", best->second,
                                  static_cast<long long>(best->first));
                    row.how += text;
                }
            }
            row.value = last_value;
            if (mixture != traces_.end() && mixture->second.runs.count(run_name)) {
                for (const auto& [step, value] : mixture->second.runs.at(run_name))
                    if (step == last_step) row.reference = value;
            }
            add_row(key.metric, key.against, row.reference ? "the mixture divided by the number of stems" : "", row);
        }
        report.traces.push_back(trace);
    }
    for (const auto& [key, trace] : traces_)
        if (ends_with(key.metric, kMixtureSuffix)) report.traces.push_back(trace);
    for (auto& [key, board] : boards_) {
        if (auto reference = tabular_references_.find(key); reference != tabular_references_.end()) {
            board.reference_meaning = "the training rows scored as if generated";
            for (LeaderboardRow& row : board.rows)
                if (!row.reference) row.reference = reference->second;
        }
        if (board.direction != 0) {
            std::stable_sort(board.rows.begin(), board.rows.end(), [&](const LeaderboardRow& a, const LeaderboardRow& b) {
                return board.direction > 0 ? a.value > b.value : a.value < b.value;
            });
        }
        report.leaderboards.push_back(board);
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting

std::string format_number(double value) {
    char text[32];
    double magnitude = std::fabs(value);
    if (magnitude != 0 && (magnitude < 1e-3 || magnitude >= 1e6)) std::snprintf(text, sizeof text, "%.3e", value);
    else if (magnitude >= 100) std::snprintf(text, sizeof text, "%.1f", value);
    else std::snprintf(text, sizeof text, "%.4f", value);
    return text;
}

std::string format_duration(double seconds) {
    if (seconds < 0) return "";
    char text[32];
    if (seconds < 120) std::snprintf(text, sizeof text, "%.0f s", seconds);
    else if (seconds < 7200) std::snprintf(text, sizeof text, "%.1f min", seconds / 60);
    else std::snprintf(text, sizeof text, "%.2f h", seconds / 3600);
    return text;
}

std::string format_weights(int64_t weights) {
    if (weights < 0) return "";
    char text[32];
    if (weights >= 1000000) std::snprintf(text, sizeof text, "%.2f M", weights / 1e6);
    else if (weights >= 1000) std::snprintf(text, sizeof text, "%.1f k", weights / 1e3);
    else std::snprintf(text, sizeof text, "%lld", static_cast<long long>(weights));
    return text;
}

std::string direction_words(int direction) {
    return direction > 0 ? "higher is better" : direction < 0 ? "lower is better" : "order unknown: file order";
}

// A Markdown table cell: pipes escaped, line breaks flattened.
std::string cell(std::string text) {
    std::string out;
    for (char c : text) {
        if (c == '|') out += "\\|";
        else if (c == '\n' || c == '\r') out += ' ';
        else out += c;
    }
    return out;
}

// Quality against network evaluations per sample: one line per run (and training step) evaluated
// at two or more NFE. Empty when no run was.
std::vector<Series> nfe_series(const Leaderboard& board) {
    std::map<std::pair<std::string, int64_t>, std::map<int64_t, double>> points;   // (run, step) -> nfe -> value
    for (const LeaderboardRow& row : board.rows)   // best first: the best of equal NFE is kept
        if (row.nfe > 0) points[{row.run, row.step}].emplace(row.nfe, row.value);
    std::set<std::string> runs_seen, runs_repeated;
    for (const auto& [key, by_nfe] : points)
        if (!runs_seen.insert(key.first).second) runs_repeated.insert(key.first);
    std::vector<Series> series;
    for (const auto& [key, by_nfe] : points) {
        if (by_nfe.size() < 2) continue;
        Series line{key.first, {}, {}};
        if (runs_repeated.count(key.first) && key.second >= 0) line.name += " @ step " + std::to_string(key.second);
        for (const auto& [nfe, value] : by_nfe) line.x.push_back(static_cast<double>(nfe)), line.y.push_back(value);
        series.push_back(std::move(line));
    }
    return series;
}

void ensure_folder(const fs::path& folder) {
    std::error_code error;
    fs::create_directories(folder, error);
    if (error) throw UserError("cannot create " + folder.string() + ": " + error.message());
}

std::string link_from(const fs::path& page_folder, const std::string& target) {
    return fs::path(normal_path(target)).lexically_relative(page_folder).string();
}

// A file-name-safe form of TEXT: at most 80 readable characters, then a hash of the whole text so
// that keys differing only in punctuation or past the cut get different files.
std::string slug(const std::string& text) {
    std::string out;
    for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '-';
    if (out.size() > 80) out.resize(80);
    uint32_t hash = 2166136261u;   // FNV-1a: the same names on every platform
    for (unsigned char c : text) hash = (hash ^ c) * 16777619u;
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "-%08x", hash);
    return out + suffix;
}

}  // namespace

int metric_direction(const std::string& metric) {
    const std::string name = lowercase(metric);
    auto has = [&](const char* part) { return name.find(part) != std::string::npos; };
    auto starts = [&](const char* part) { return name.rfind(part, 0) == 0; };
    if (has("loss") || starts("fd") || starts("fid") || starts("kid") || has("w1") || has("mmd") || starts("disc_") ||
        has("error"))
        return -1;
    if (has("acc") || has("sdr") || starts("hq") || has("coverage") || starts("tstr") || has("precision") ||
        starts("is_") || starts("pr_") || starts("class_share") ||
        has("recall") || has("density") || starts("modes_covered") || has("r2") || has("f1"))
        return +1;
    return 0;
}

Report collect_report(const std::vector<std::string>& roots) {
    if (roots.empty()) throw UserError("report: name at least one folder of runs");
    Collector collector(roots.size() > 1);
    for (const std::string& root : roots) collector.add_root(root);
    collector.finish();
    return std::move(collector.report);
}

std::string format_leaderboards_text(const Report& report) {
    std::ostringstream out;
    if (report.leaderboards.empty()) out << "no evaluation records found\n";
    for (const Leaderboard& board : report.leaderboards) {
        out << board.metric << " (" << direction_words(board.direction) << ")  vs " << board.against << "\n";
        size_t width = 4;
        for (const LeaderboardRow& row : board.rows) width = std::max(width, row.run.size());
        for (size_t rank = 0; rank < board.rows.size(); ++rank) {
            const LeaderboardRow& row = board.rows[rank];
            char line[64];
            std::snprintf(line, sizeof line, "  %2zu. ", rank + 1);
            out << line << row.run << std::string(width - row.run.size() + 2, ' ') << format_number(row.value);
            if (row.reference) out << "  (reference " << format_number(*row.reference) << ")";
            if (!row.how.empty()) out << "  " << row.how;
            out << "\n";
        }
        out << "\n";
    }
    return out.str();
}

void write_report(const Report& report, const std::string& out_path) {
    const fs::path page(normal_path(out_path));
    const fs::path page_folder = page.parent_path();
    const fs::path figures = page_folder / (page.stem().string() + "-figures");

    std::ostringstream md;
    std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    md << "# onestep report\n\n";
    md << report.runs.size() << (report.runs.size() == 1 ? " run" : " runs") << " under";
    for (const std::string& root : report.roots) md << " `" << root << "`";
    md << ", written " << stamp << ".\n\n";

    md << "## Runs\n\n";
    md << "| run | method | data | model | step | time | last loss | weights | samples | loss curve |\n";
    md << "|---|---|---|---|---|---|---|---|---|---|\n";
    for (const RunSummary& run : report.runs) {
        std::string step = run.step >= 0 ? std::to_string(run.step) : "";
        if (run.steps > 0 && run.step >= 0 && run.step < run.steps) step += " of " + std::to_string(run.steps);
        md << "| " << cell(run.name) << " | " << cell(run.method) << " | " << cell(run.data) << " | "
           << cell(run.model) << " | " << step << " | " << format_duration(run.wall_s) << " | "
           << (run.loss ? format_number(*run.loss) : "") << " | " << format_weights(run.weights) << " | ";
        if (!run.sample_grid.empty())
            md << "[" << fs::path(run.sample_grid).filename().string() << "](" << link_from(page_folder, run.sample_grid) << ")";
        md << " | ";
        if (!run.loss_curve.empty()) md << "[loss.png](" << link_from(page_folder, run.loss_curve) << ")";
        md << " |\n";
    }
    md << "\nWeights count the elements of each trained network's tensors, EMA copies left out.\n\n";

    md << "## Leaderboards\n\n";
    if (report.leaderboards.empty()) md << "No evaluation records were found.\n\n";
    for (const Leaderboard& board : report.leaderboards) {
        md << "### " << cell(board.metric) << " — " << cell(board.against) << "\n\n";
        md << direction_words(board.direction);
        if (!board.reference_meaning.empty()) md << "; reference: " << board.reference_meaning;
        md << ".\n\n| rank | run | method | value | reference | how |\n|---|---|---|---|---|---|\n";
        for (size_t rank = 0; rank < board.rows.size(); ++rank) {
            const LeaderboardRow& row = board.rows[rank];
            md << "| " << rank + 1 << " | " << cell(row.run) << " | " << cell(row.method) << " | "
               << format_number(row.value) << " | " << (row.reference ? format_number(*row.reference) : "") << " | "
               << cell(row.how) << " |\n";
        }
        md << "\n";
        std::vector<Series> by_nfe = nfe_series(board);
        if (!by_nfe.empty()) {
            ensure_folder(figures);
            const fs::path png = figures / (slug(board.metric + "-" + board.against) + "-nfe.png");
            // A log y axis when the values span a decade or more, as distances from 1 to 128 NFE do.
            double low = INFINITY, high = -INFINITY;
            for (const Series& line : by_nfe)
                for (double y : line.y) low = std::min(low, y), high = std::max(high, y);
            write_line_plot(png.string(), by_nfe, board.metric + " against network evaluations (" + board.against + ")",
                            "network evaluations per sample", low > 0 && high / low >= 10, true);
            md << "![" << cell(board.metric) << " against NFE](" << png.lexically_relative(page_folder).string() << ")\n\n";
        }
    }

    bool any_trace = false;
    for (const MetricTrace& trace : report.traces) {
        std::vector<Series> series;
        for (const auto& [run_name, points] : trace.runs) {
            if (points.size() < 2) continue;
            Series line{run_name, {}, {}};
            for (const auto& [step, value] : points) line.x.push_back(static_cast<double>(step)), line.y.push_back(value);
            series.push_back(std::move(line));
        }
        if (series.empty()) continue;
        if (!any_trace) {
            md << "## During training\n\n";
            ensure_folder(figures);
            any_trace = true;
        }
        const fs::path png = figures / (slug(trace.metric + "-" + trace.against) + ".png");
        write_line_plot(png.string(), series, trace.metric + " (" + trace.against + ")", "step", false);
        md << "![" << cell(trace.metric) << "](" << png.lexically_relative(page_folder).string() << ")\n\n";
    }

    bool any_curve = false;
    for (const RunSummary& run : report.runs) {
        if (run.loss_curve.empty()) continue;
        if (!any_curve) md << "## Loss curves\n\n", any_curve = true;
        md << "![" << cell(run.name) << "](" << link_from(page_folder, run.loss_curve) << ")\n\n";
    }

    if (!report.skipped.empty()) {
        md << "## Not used\n\n";
        for (const std::string& line : report.skipped) md << "- " << line << "\n";
        md << "\n";
    }
    write_file_atomic(page.string(), md.str());
}

}  // namespace onestep
