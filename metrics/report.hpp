// `onestep report`: one page over many run folders. It finds every training run (config.yaml with
// log.jsonl) and forest run (manifest.json) under the given folders, summarises each one (method,
// data, model, steps, time, loss, weights) and ranks the evaluation records they hold, one
// leaderboard per metric and reference set, best first.
//
//   onestep::Report report = onestep::collect_report({"runs"});
//   onestep::write_report(report, "runs/report.md");   // Markdown, with figures beside it
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace onestep {

// +1 when a larger value is better (accuracy, SDR, coverage), -1 when smaller is better (FD,
// Wasserstein, MMD, loss), 0 when the name is not one onestep knows.
int metric_direction(const std::string& metric);

struct RunSummary {
    std::string path;       // the run folder as found
    std::string name;       // its path relative to the folder it was found under
    std::string method;     // "flow", "separator", "forest-flow", ... ("" when unknown)
    std::string data;       // data.name of the config, or the forest run's training file
    std::string model;      // architecture or preset
    int64_t step = -1;      // last logged step (-1: none)
    int64_t steps = -1;     // the config's planned steps (-1: not set)
    double wall_s = -1;     // training time of the last logged step
    std::optional<double> loss;   // the last logged "loss"
    int64_t weights = -1;   // elements of the trained networks' tensors, EMA copies left out
    std::string latest_checkpoint;
    std::string loss_curve;    // samples/loss.png when present
    std::string sample_grid;   // the newest samples/step-*.png
    std::vector<std::string> notes;   // what could not be read, one line each
};

struct LeaderboardRow {
    std::string run;        // RunSummary::name
    std::string method;
    std::string how;        // sampler and steps, evaluation step, ...
    double value = 0;
    std::optional<double> reference;   // the real-data floor or baseline when the record has one
    int64_t nfe = -1;       // network evaluations per sample, when the record says
    int64_t step = -1;      // the generator's training step, when the record says
};

struct Leaderboard {
    std::string metric;
    std::string against;    // reference set, extractor or evaluation split
    int direction = 0;      // metric_direction(metric)
    std::string reference_meaning;     // what the reference column holds
    std::vector<LeaderboardRow> rows;  // best first (file order when the direction is unknown)
};

// A metric traced over training steps (the trainer's periodic evaluations), per run.
struct MetricTrace {
    std::string metric;
    std::string against;
    std::map<std::string, std::vector<std::pair<int64_t, double>>> runs;   // run name -> (step, value)
};

struct Report {
    std::vector<std::string> roots;
    std::vector<RunSummary> runs;
    std::vector<Leaderboard> leaderboards;
    std::vector<MetricTrace> traces;
    std::vector<std::string> skipped;   // "FILE: reason" for records that could not be used
};

// Throws UserError naming a root that is not a folder. Unreadable records inside runs do not stop
// the report: they are listed in Report::skipped.
Report collect_report(const std::vector<std::string>& roots);

// The leaderboards as plain-text tables (what the CLI prints).
std::string format_leaderboards_text(const Report& report);

// Writes OUT_PATH (Markdown, atomically) and, beside it in OUT_STEM-figures/, a PNG per traced
// metric and one of quality against network evaluations for each leaderboard where a run was
// evaluated at two or more NFE. Links inside the page are relative to OUT_PATH's folder.
void write_report(const Report& report, const std::string& out_path);

}  // namespace onestep
