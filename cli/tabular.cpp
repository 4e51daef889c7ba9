// `onestep forest fetch|train|sample|eval`: tree-based tabular generators (ForestFlow), kept apart
// from the image trainer because boosters are fitted whole, not stepped by SGD.
#include <chrono>
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
#include "tabular/forest_flow.hpp"
#include "tabular/preprocess.hpp"
#include "tabular/table.hpp"
#include "tabular/w1.hpp"
#include "tabular/xgb.hpp"
#endif

namespace fs = std::filesystem;

namespace onestep::cli {
#if ONESTEP_WITH_TABULAR
namespace {

using namespace onestep::tabular;

constexpr int kManifestVersion = 1;
constexpr const char* kSklearnIris = "/usr/lib/python3/dist-packages/sklearn/datasets/data/iris.csv";
// W1 over n·m arcs; the paper skips it from 5000 training rows on.
constexpr size_t kW1RowLimit = 5000;

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

void add_fetch(CLI::App& forest) {
    struct Args {
        std::string name, out, from = kSklearnIris;
        double test_fraction = 0.2;
        uint64_t seed = 0;
    };
    auto args = std::make_shared<Args>();
    CLI::App* fetch = forest.add_subcommand("fetch", "convert a bundled dataset to CSV and split it 80/20 (stratified)");
    fetch->add_option("name", args->name, "dataset: iris")->required()->check(CLI::IsMember({"iris"}));
    fetch->add_option("--out", args->out, "folder for iris.csv, train.csv, test.csv")->required();
    fetch->add_option("--from", args->from, "scikit-learn's iris.csv (from python3-sklearn)")->capture_default_str();
    fetch->add_option("--test-fraction", args->test_fraction, "share of each class held out")
        ->check(CLI::Range(0.0, 0.9))
        ->capture_default_str();
    fetch->add_option("--seed", args->seed, "split seed (the paper uses splits 0, 1, 2)")->capture_default_str();
    fetch->callback([args]() {
        if (!fs::exists(args->from))
            throw UserError(args->from + ": not found; install python3-sklearn or pass --from FILE");
        Table table = read_sklearn_csv(args->from, {"sepal_length", "sepal_width", "petal_length", "petal_width"},
                                       "species");
        Table train, test;
        stratified_split(table, table.columns.size() - 1, args->test_fraction, args->seed, train, test);
        fs::create_directories(args->out);
        write_csv(table, args->out + "/iris.csv");
        write_csv(train, args->out + "/train.csv");
        write_csv(test, args->out + "/test.csv");
        std::cout << args->out << "/train.csv (" << train.rows() << " rows), " << args->out << "/test.csv ("
                  << test.rows() << " rows)\n";
    });
}

void add_train(CLI::App& forest) {
    struct Args {
        std::string method, data, label, categorical, integer, binary, out;
        std::vector<std::string> settings;
        int stop_after = -1;
    };
    auto args = std::make_shared<Args>();
    CLI::App* train = forest.add_subcommand("train", "fit a forest generator on a CSV table (resumes a run)");
    train->add_option("method", args->method, "forest-flow")->required()->check(CLI::IsMember({"forest-flow"}));
    train->add_option("--data", args->data, "training CSV with a header line")->required();
    train->add_option("--label", args->label, "class column (one model set per class); none: unconditional");
    train->add_option("--cat", args->categorical, "comma-separated categorical columns (codes 0..L-1)");
    train->add_option("--int", args->integer, "comma-separated integer columns (rounded, clipped)");
    train->add_option("--bin", args->binary, "comma-separated binary columns (rounded, clipped)");
    train->add_option("--out", args->out, "run directory (manifest.json, models/)")->required();
    train->add_option("--set", args->settings, "KEY=VALUE: levels, duplicates, rounds, max_depth, eta, lambda, "
                                                "max_bin, epsilon, seed, threads");
    train->add_option("--stop-after", args->stop_after, "stop after this many new boosters (resume later)");
    train->callback([args]() {
        ForestFlowConfig config;
        for (const auto& setting : args->settings) config.set(setting);
        std::map<std::string, ColumnKind> kinds;
        for (const auto& name : split_list(args->categorical)) kinds[name] = ColumnKind::Categorical;
        for (const auto& name : split_list(args->integer)) kinds[name] = ColumnKind::Integer;
        for (const auto& name : split_list(args->binary)) kinds[name] = ColumnKind::Binary;
        Table table = read_csv(args->data);
        Preprocessor prep = Preprocessor::fit(table, args->label, kinds, args->data);
        ScaledRows rows = prep.transform(table, args->data);

        nlohmann::ordered_json manifest;
        manifest["format_version"] = kManifestVersion;
        manifest["method"] = args->method;
        manifest["xgboost"] = xgb::version();
        manifest["data"] = {{"path", args->data}, {"sha256", sha256_file(args->data)}, {"rows", table.rows()}};
        manifest["config"] = config.to_json();
        manifest["preprocessing"] = prep.to_json();
        std::vector<double> grid;
        for (int level = 0; level < config.levels; ++level) grid.push_back(level_time(level, config));
        manifest["level_times"] = grid;
        std::string manifest_path = args->out + "/manifest.json";
        if (fs::exists(manifest_path)) {
            // Resuming: every booster on disk must come from the same data and settings.
            nlohmann::ordered_json previous = read_manifest(args->out);
            previous["data"]["path"] = manifest["data"]["path"];
            if (previous != manifest)
                throw UserError(manifest_path + ": the run was started with other data or settings; "
                                "use a new --out or the same options");
        }
        fs::create_directories(args->out);
        write_file_atomic(manifest_path, manifest.dump(2) + "\n");

        auto start = std::chrono::steady_clock::now();
        TrainReport report = train_forest_flow(rows, config, args->out, args->stop_after);
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::cout << "forest-flow: " << report.skipped << " of " << report.total << " boosters already done, "
                  << report.trained << " trained in " << seconds << " s" << "\n";
    });
}

void add_sample(CLI::App& forest) {
    struct Args {
        std::string run, out;
        size_t rows = 0;
        uint64_t seed = 1;
    };
    auto args = std::make_shared<Args>();
    CLI::App* sample = forest.add_subcommand("sample", "generate rows from a trained run as CSV");
    sample->add_option("--run", args->run, "run directory")->required();
    sample->add_option("--n", args->rows, "rows to generate")->required()->check(CLI::PositiveNumber);
    sample->add_option("--out", args->out, "output CSV")->required();
    sample->add_option("--seed", args->seed, "generation seed")->capture_default_str();
    sample->callback([args]() {
        nlohmann::ordered_json manifest = read_manifest(args->run);
        ForestFlowConfig config = ForestFlowConfig::from_json(manifest.at("config"));
        Preprocessor prep = Preprocessor::from_json(manifest.at("preprocessing"));
        auto start = std::chrono::steady_clock::now();
        ScaledRows fake =
            sample_forest_flow(args->run, config, prep.width(), prep.class_counts(), args->rows, args->seed);
        write_csv(prep.inverse(fake), args->out);
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::cout << "wrote " << args->out << " (" << args->rows << " rows in " << seconds << " s)\n";
    });
}

void add_eval(CLI::App& forest) {
    struct Args {
        std::string run, fake;
        std::vector<std::string> real;
    };
    auto args = std::make_shared<Args>();
    CLI::App* eval = forest.add_subcommand("eval", "exact W1 between generated rows and real CSVs");
    eval->add_option("--run", args->run, "run directory (its training ranges scale the columns)")->required();
    eval->add_option("--fake", args->fake, "generated CSV")->required();
    eval->add_option("--real", args->real, "real CSV (repeat for train and test)")->required();
    eval->callback([args]() {
        Preprocessor prep = Preprocessor::from_json(read_manifest(args->run).at("preprocessing"));
        Table fake_table = read_csv(args->fake);
        Points fake = gower_points(fake_table, prep, args->fake);
        for (const auto& real_path : args->real) {
            Table real_table = read_csv(real_path);
            if (std::max(fake.rows, real_table.rows()) >= kW1RowLimit) {
                std::cout << "W1 skipped (n ≥ " << kW1RowLimit << ")\n";
                continue;
            }
            Points real = gower_points(real_table, prep, real_path);
            if (real.dim != fake.dim)
                throw UserError(real_path + ": its categories differ from " + args->fake + "'s beyond the training codes");
            std::cout << "W1(" << args->fake << ", " << real_path << ") = " << wasserstein1(fake, real) << "\n";
        }
    });
}

}  // namespace

void add_forest_command(CLI::App& app) {
    CLI::App* forest = app.add_subcommand("forest", "tabular generators from boosted trees (ForestFlow)");
    forest->require_subcommand(1);
    add_fetch(*forest);
    add_train(*forest);
    add_sample(*forest);
    add_eval(*forest);
}
#else
void add_forest_command(CLI::App&) {}
#endif

}  // namespace onestep::cli
