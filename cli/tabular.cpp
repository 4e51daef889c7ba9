// `onestep train forest-flow|forest-diffusion`, forest sampling and `onestep impute`: tree-based
// tabular generators, kept apart from the image trainer because boosters are fitted whole, not stepped.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/hash.hpp"
#include "core/options.hpp"
#if ONESTEP_WITH_TABULAR
#include "tabular/forest.hpp"
#include "tabular/preprocess.hpp"
#include "tabular/table.hpp"
#include "tabular/xgb.hpp"
#endif

namespace fs = std::filesystem;

namespace onestep::cli {
#if ONESTEP_WITH_TABULAR
namespace {

using namespace onestep::tabular;

constexpr int kManifestVersion = 2;

nlohmann::ordered_json read_manifest(const std::string& run_dir) {
    std::string path = run_dir + "/manifest.json";
    std::ifstream in(path);
    if (!in) throw UserError(path + ": not found; is " + run_dir + " a forest run directory?");
    try {
        return nlohmann::ordered_json::parse(in);
    } catch (const std::exception& error) {
        throw UserError(path + ": not valid JSON (" + error.what() + ")");
    }
}

// The CSV columns and kinds a run was trained with, re-applied to imputation input.
struct ForestRun {
    nlohmann::ordered_json manifest;
    ForestConfig config;
    Preprocessor prep;
    bool per_column = false;
    std::vector<std::string> covariates;   // conditioning columns, raw values
};

// The covariate columns NAMES of TABLE as raw floats, row-aligned; they must be numeric and present.
Covariates covariate_values(const Table& table, const std::vector<std::string>& names, const std::string& source) {
    Covariates out;
    out.width = names.size();
    if (names.empty()) return out;
    std::vector<size_t> columns;
    for (const auto& name : names) {
        size_t column = table.column_index(name, source);
        if (table.is_text(column))
            throw UserError(source + ": covariate column '" + name + "' holds text; covariates must be numbers "
                            "(standardised by you)");
        columns.push_back(column);
    }
    out.values.reserve(table.rows() * names.size());
    for (size_t r = 0; r < table.rows(); ++r)
        for (size_t column : columns) {
            double value = table.at(r, column);
            if (std::isnan(value)) throw UserError(table.where(r, column, source) + ": a covariate must not be missing");
            out.values.push_back(static_cast<float>(value));
        }
    return out;
}

// TABLE without the columns NAMES (the covariates are not modelled).
Table without_columns(const Table& table, const std::vector<std::string>& names, const std::string& source) {
    if (names.empty()) return table;
    std::vector<bool> drop(table.columns.size(), false);
    for (const auto& name : names) drop[table.column_index(name, source)] = true;
    Table out;
    out.row_lines = table.row_lines;
    for (size_t c = 0; c < table.columns.size(); ++c) {
        if (drop[c]) continue;
        out.columns.push_back(table.columns[c]);
        out.levels.push_back(c < table.levels.size() ? table.levels[c] : std::vector<std::string>());
        out.text_lines.push_back(c < table.text_lines.size() ? table.text_lines[c] : 0);
    }
    for (size_t r = 0; r < table.rows(); ++r)
        for (size_t c = 0; c < table.columns.size(); ++c)
            if (!drop[c]) out.values.push_back(table.at(r, c));
    return out;
}

ForestRun open_run(const std::string& run_dir) {
    ForestRun run;
    run.manifest = read_manifest(run_dir);
    if (!run.manifest.contains("method") || run.manifest["method"].get<std::string>().rfind("forest-", 0) != 0)
        throw UserError(run_dir + "/manifest.json: not a forest run");
    run.config = ForestConfig::from_json(run.manifest.at("config"));
    run.prep = Preprocessor::from_json(run.manifest.at("preprocessing"));
    run.per_column = run.manifest.at("per_column").get<bool>();
    run.covariates = run.manifest.value("covariates", std::vector<std::string>());
    return run;
}

ForestModel model_of(const std::string& run_dir, const ForestRun& run) {
    return ForestModel(run_dir, run.config, run.prep.width(), static_cast<int>(run.prep.classes()), run.per_column,
                       run.covariates.size());
}

// Generated (or imputed) rows GENERATED plus the covariate columns copied from GIVEN, in the
// training file's column order.
Table with_covariates(const Table& generated, const Table& given, const ForestRun& run) {
    if (run.covariates.empty()) return generated;
    std::vector<std::string> order = run.manifest.at("columns").get<std::vector<std::string>>();
    Table out;
    out.columns = order;
    out.levels.resize(order.size());
    std::vector<std::pair<const Table*, size_t>> sources;
    for (size_t c = 0; c < order.size(); ++c) {
        bool covariate = std::find(run.covariates.begin(), run.covariates.end(), order[c]) != run.covariates.end();
        const Table* from = covariate ? &given : &generated;
        size_t column = from->column_index(order[c], covariate ? "covariates" : "generated rows");
        if (from->is_text(column)) out.levels[c] = from->levels[column];
        sources.emplace_back(from, column);
    }
    for (size_t r = 0; r < generated.rows(); ++r)
        for (const auto& [from, column] : sources) out.values.push_back(from->at(r, column));
    return out;
}

std::string gigabytes(double bytes) {
    std::ostringstream text;
    text.precision(3);
    text << bytes / 1e9 << " GB";
    return text.str();
}

void add_forest_train(CLI::App& train, const std::string& method) {
    struct Args {
        std::string data, label, categorical, integer, binary, conditions, out, parallel;
        std::vector<std::string> settings;
        int stop_after = -1, threads = -1;
        bool dry_run = false;
    };
    auto args = std::make_shared<Args>();
    const bool flow = method == "forest-flow";
    CLI::App* command = train.add_subcommand(
        method, flow ? "ForestFlow: XGBoost flow matching on a CSV table (one booster per level and class)"
                     : "ForestDiffusion: XGBoost VP diffusion on a CSV table (also imputes missing cells)");
    command->set_help_flag("-h,--help", "this help");   // `train` handles its own --help; its forest methods use CLI11's
    command->add_option("--data", args->data, "training table: CSV with a header line or ARFF (missing cells: empty, NA, ?)")
        ->required();
    command->add_option("--label", args->label, "class column (one model set per class); none: unconditional");
    command->add_option("--cat", args->categorical, "comma-separated categorical columns (text or codes 0..L-1)");
    command->add_option("--int", args->integer, "comma-separated integer columns (rounded, clipped)");
    command->add_option("--bin", args->binary, "comma-separated binary columns (rounded, clipped)");
    command->add_option("--cond", args->conditions,
                        "comma-separated covariate columns: given, never generated (sample with --cond-data)");
    command->add_option("--run-dir,--out", args->out, "run directory (manifest.json, models/)")->required();
    command->add_option("--set", args->settings,
                        "KEY=VALUE: levels, duplicates, rounds, max_depth, eta, lambda, max_bin, epsilon, beta_min, "
                        "beta_max, seed, early_stopping, valid_duplicates, chunk_rows, share_noise_across_levels, "
                        "parallel, threads, memory_budget_gb");
    command->add_option("--threads", args->threads, "threads in all (0: all cores); same as --set threads=N");
    command->add_option("--parallel", args->parallel,
                        "tasks (boosters in parallel, one thread each), trees (one booster, all threads) or auto");
    command->add_option("--stop-after", args->stop_after, "stop after this many new boosters (resume later)");
    command->add_flag("--dry-run", args->dry_run, "print the task count, the parallel layout and memory, fit nothing");
    command->callback([args, method, flow]() {
        ForestConfig config;
        config.kind = flow ? ForestKind::Flow : ForestKind::Diffusion;
        for (const auto& setting : args->settings) config.set(setting);
        if (args->threads >= 0) config.set("threads=" + std::to_string(args->threads));
        if (!args->parallel.empty()) config.set("parallel=" + args->parallel);
        std::map<std::string, ColumnKind> kinds = column_kinds(args->categorical, args->integer, args->binary);
        Table table = read_table(args->data, true);
        std::vector<std::string> conditions = split_list(args->conditions);
        Table modelled = without_columns(table, conditions, args->data);
        size_t dropped = drop_all_missing_rows(modelled, args->label);
        if (dropped > 0) {
            if (!conditions.empty())
                throw UserError(args->data + ": " + std::to_string(dropped) +
                                " row(s) have every modelled cell missing; remove them (covariates are row-aligned)");
            std::cout << args->data << ": " << dropped << " row(s) with every feature missing left out\n";
        }
        Covariates covariates = covariate_values(table, conditions, args->data);
        Preprocessor prep = Preprocessor::fit(modelled, args->label, kinds, args->data);
        ScaledRows rows = prep.transform(modelled, args->data);
        const bool per_column = rows.has_missing();

        nlohmann::ordered_json manifest;
        manifest["format_version"] = kManifestVersion;
        manifest["method"] = method;
        manifest["xgboost"] = xgb::version();
        manifest["data"] = {{"path", args->data}, {"sha256", sha256_file(args->data)}, {"rows", table.rows()}};
        manifest["config"] = config.model_json();
        manifest["preprocessing"] = prep.to_json();
        manifest["per_column"] = per_column;
        manifest["covariates"] = conditions;
        manifest["columns"] = table.columns;   // the input order, restored in generated files
        // User-facing times are t (0 noise, 1 data) for both kinds; VP levels live at τ = 1 − t.
        std::vector<double> grid;
        for (int level = 0; level < config.levels; ++level)
            grid.push_back(flow ? level_time(level, config) : 1.0 - level_time(level, config));
        manifest["level_times"] = grid;

        auto print_plan = [&](const TrainPlan& plan) {
            std::cout << method << ": " << plan.total << " tasks (" << trained_levels(config) << " levels × "
                      << prep.classes() << " classes"
                      << (per_column ? " × " + std::to_string(prep.width()) + " columns, missing cells present" : "")
                      << "), " << plan.finished << " already done; parallel " << plan.mode << ": " << plan.workers
                      << " worker(s) × " << plan.threads_per_task << " XGBoost thread(s); about "
                      << gigabytes(plan.task_bytes) << " per task, " << gigabytes(plan.task_bytes * plan.workers)
                      << " at peak" << std::endl;
        };
        if (args->dry_run) {
            print_plan(plan_forest(rows, config, args->out, covariates.width));
            return;
        }

        std::string manifest_path = args->out + "/manifest.json";
        if (fs::exists(manifest_path)) {
            // Resuming: every booster on disk must come from the same data and settings.
            nlohmann::ordered_json previous = read_manifest(args->out);
            previous["data"]["path"] = manifest["data"]["path"];
            if (previous != manifest)
                throw UserError(manifest_path + ": the run was started with other data or settings; "
                                "use a new --run-dir or the same options");
        }
        fs::create_directories(args->out);
        write_file_atomic(manifest_path, manifest.dump(2) + "\n");

        auto start = std::chrono::steady_clock::now();
        // The plan is printed by the trainer once it has counted the finished boosters (read once).
        TrainReport report = train_forest(rows, config, args->out, args->stop_after, &covariates, print_plan);
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::cout << method << ": " << report.skipped << " of " << report.total << " boosters already done, "
                  << report.trained << " trained in " << seconds << " s"
                  << (report.skipped + report.trained < report.total ? " (stopped early; run again to resume)" : "")
                  << "\n";
    });
}

void add_impute(CLI::App& app) {
    struct Args {
        std::string run, data, out, repaint = "1,0.1";
        uint64_t seed = 1;
    };
    auto args = std::make_shared<Args>();
    CLI::App* impute = app.add_subcommand("impute", "fill missing cells of a CSV with a forest-diffusion run");
    impute->add_option("--ckpt,--run", args->run, "forest-diffusion run directory")->required();
    impute->add_option("--data", args->data, "CSV with the training columns; empty, NA or ? cells are filled")
        ->required();
    impute->add_option("--out", args->out, "imputed CSV")->required();
    impute->add_option("--repaint", args->repaint,
                       "R,J: REPAINT with R passes over blocks of J·n_t steps (paper: 10,0.1; 1: plain)")
        ->capture_default_str();
    impute->add_option("--seed", args->seed, "imputation seed (a new seed gives another imputation)")
        ->capture_default_str();
    impute->callback([args]() {
        ForestRun run = open_run(args->run);
        if (run.config.kind != ForestKind::Diffusion)
            throw UserError(args->run + ": a " + run.manifest["method"].get<std::string>() +
                            " run; imputation needs a forest-diffusion (VP) run");
        Repaint repaint;
        std::vector<std::string> parts = split_list(args->repaint);
        try {
            if (parts.empty() || parts.size() > 2) throw std::invalid_argument("count");
            repaint.repaints = std::stoi(parts[0]);
            if (parts.size() == 2) repaint.jump_fraction = std::stod(parts[1]);
        } catch (const std::exception&) {
            throw UserError("--repaint " + args->repaint + ": expected R,J (e.g. 10,0.1)");
        }
        Table table = read_table(args->data, true);
        Covariates covariates = covariate_values(table, run.covariates, args->data);
        ScaledRows rows = run.prep.transform(without_columns(table, run.covariates, args->data), args->data);
        ForestModel model = model_of(args->run, run);
        auto start = std::chrono::steady_clock::now();
        ScaledRows filled = impute_forest(model, rows, args->seed, repaint, &covariates);
        Table out = with_covariates(run.prep.inverse(filled), table, run);
        // Observed numeric cells are returned exactly as read, not through the scaling round trip
        // (text cells already come back as their level strings).
        size_t missing = 0;
        for (size_t column = 0; column < out.columns.size(); ++column) {
            size_t source = table.column_index(out.columns[column], args->data);
            for (size_t r = 0; r < out.rows(); ++r) {
                if (std::isnan(table.at(r, source)))
                    ++missing;
                else if (!out.is_text(column))
                    out.at(r, column) = table.at(r, source);
            }
        }
        write_csv(out, args->out);
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::cout << "imputed " << missing << " cells of " << table.rows() << " rows into " << args->out << " ("
                  << model.calls() << " model calls, " << seconds << " s)\n";
    });
}

}  // namespace

void add_classify(CLI::App& app) {
    struct Args {
        std::string run, data, out;
        int draws = 10, grid = 0;
        uint64_t seed = 1;
    };
    auto args = std::make_shared<Args>();
    CLI::App* classify = app.add_subcommand(
        "classify", "zero-shot classification with a label-conditioned forest run (the class whose boosters best "
                    "recover the noise); density estimation is not offered (it would cost n_t·draws·classes "
                    "booster calls per row)");
    classify->add_option("--ckpt,--run", args->run, "forest run trained with --label")->required();
    classify->add_option("--data", args->data, "rows to classify (the label column, if present, gives the accuracy)")
        ->required();
    classify->add_option("--out", args->out, "CSV: the predicted class and a probability per class");
    classify->add_option("--draws", args->draws, "noise draws per grid point")->capture_default_str();
    classify->add_option("--grid", args->grid, "grid points n' (0: the run's n_t)")->capture_default_str();
    classify->add_option("--seed", args->seed, "noise seed")->capture_default_str();
    classify->callback([args]() {
        ForestRun run = open_run(args->run);
        const std::string& label = run.prep.label();
        if (label.empty() || run.prep.classes() < 2)
            throw UserError(args->run + ": not label-conditioned; zero-shot classification needs a run trained with --label");
        Table table = read_table(args->data, false);
        auto found = std::find(table.columns.begin(), table.columns.end(), label);
        const bool has_label = found != table.columns.end();
        Table features = table;
        if (!has_label) {
            // A placeholder label so the rows encode; the models never see it.
            features.columns.push_back(label);
            std::vector<double> values;
            for (size_t r = 0; r < table.rows(); ++r) {
                values.insert(values.end(), table.values.begin() + r * table.columns.size(),
                              table.values.begin() + (r + 1) * table.columns.size());
                values.push_back(run.prep.class_names().empty() ? run.prep.class_values().front() : 0.0);
            }
            features.values = values;
            features.levels.resize(features.columns.size());
            if (!run.prep.class_names().empty()) features.levels.back() = run.prep.class_names();
        }
        ScaledRows rows = run.prep.transform(features, args->data);
        ForestModel model = model_of(args->run, run);
        auto start = std::chrono::steady_clock::now();
        std::vector<double> losses = zero_shot_losses(model, rows, args->seed, args->draws, args->grid);
        const size_t classes = run.prep.classes();
        Table out;
        out.columns.push_back("predicted_" + label);
        out.levels.push_back(run.prep.class_names());
        for (size_t c = 0; c < classes; ++c) {
            std::ostringstream name;
            if (run.prep.class_names().empty())
                name << "p_" << run.prep.class_values()[c];
            else
                name << "p_" << run.prep.class_names()[c];
            out.columns.push_back(name.str());
            out.levels.emplace_back();
        }
        size_t correct = 0;
        for (size_t r = 0; r < rows.rows; ++r) {
            const double* loss = &losses[r * classes];
            size_t best = std::min_element(loss, loss + classes) - loss;
            if (has_label && static_cast<int>(best) == rows.labels[r]) ++correct;
            out.values.push_back(run.prep.class_names().empty() ? run.prep.class_values()[best]
                                                                : static_cast<double>(best));
            double total = 0;
            for (size_t c = 0; c < classes; ++c) total += std::exp(loss[best] - loss[c]);   // softmax(−L), stable
            for (size_t c = 0; c < classes; ++c) out.values.push_back(std::exp(loss[best] - loss[c]) / total);
        }
        if (!args->out.empty()) write_csv(out, args->out);
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::cout << "classified " << rows.rows << " rows (" << model.calls() << " model calls, " << seconds << " s)";
        if (has_label) std::cout << "; accuracy " << static_cast<double>(correct) / rows.rows;
        std::cout << (args->out.empty() ? "" : "; wrote " + args->out) << "\n";
    });
}

bool is_forest_run(const std::string& path) {
    std::ifstream in(path + "/manifest.json");
    if (!in) return false;
    try {
        auto manifest = nlohmann::ordered_json::parse(in);
        return manifest.value("method", std::string()).rfind("forest-", 0) == 0;
    } catch (const std::exception&) {
        return false;
    }
}

void run_forest_sample(const std::string& run_dir, size_t rows, const std::string& out, uint64_t seed,
                       const std::string& condition_file, int steps) {
    ForestRun run = open_run(run_dir);
    ForestModel model = model_of(run_dir, run);
    Table given;
    Covariates covariates;
    std::vector<int> labels;
    if (!run.covariates.empty() && condition_file.empty())
        throw UserError(run_dir + " is conditioned on " + run.manifest["covariates"].dump() +
                        ": give their values with --cond-data FILE.csv (one generated row per line)");
    if (!condition_file.empty()) {
        given = read_table(condition_file, false);
        covariates = covariate_values(given, run.covariates, condition_file);
        rows = given.rows();
        // A label column in the file fixes each row's class (`--labels given`).
        const std::string& label = run.prep.label();
        auto found = std::find(given.columns.begin(), given.columns.end(), label);
        if (!label.empty() && found != given.columns.end()) {
            const size_t column = found - given.columns.begin();
            const auto& names = run.prep.class_names();   // text labels; numeric ones match class_values
            const auto& values = run.prep.class_values();
            for (size_t r = 0; r < given.rows(); ++r) {
                size_t index = values.size();
                for (size_t c = 0; c < values.size(); ++c)
                    if (names.empty() ? given.at(r, column) == values[c] : given.cell_text(r, column) == names[c])
                        index = c;
                if (index == values.size())
                    throw UserError(given.where(r, column, condition_file) + ": a class the run was not trained on");
                labels.push_back(static_cast<int>(index));
            }
        }
    }
    auto start = std::chrono::steady_clock::now();
    ScaledRows fake = sample_forest(model, run.prep.class_counts(), rows, seed, labels, &covariates, steps);
    write_csv(with_covariates(run.prep.inverse(fake), given, run), out);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "wrote " << out << " (" << rows << " rows, " << model.calls() << " model calls, " << seconds
              << " s)\n";
}

void add_forest_train_commands(CLI::App& train) {
    add_forest_train(train, "forest-flow");
    add_forest_train(train, "forest-diffusion");
}

void add_impute_command(CLI::App& app) {
    add_impute(app);
    add_classify(app);
}
#else
bool is_forest_run(const std::string&) { return false; }
void run_forest_sample(const std::string&, size_t, const std::string&, uint64_t, const std::string&, int) {}
void add_forest_train_commands(CLI::App&) {}
void add_impute_command(CLI::App&) {}
#endif

}  // namespace onestep::cli
