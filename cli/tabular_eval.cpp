// `onestep eval tabular`: the paper's metrics of generated tables against the real train and test
// CSVs (W1, coverage, TSTR, discriminator), averaged over the generated sets, as a table and JSON.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/options.hpp"
#if ONESTEP_WITH_TABULAR
#include "tabular/metrics.hpp"
#include "tabular/preprocess.hpp"
#include "tabular/table.hpp"
#include "tabular/w1.hpp"
#endif

namespace onestep::cli {
#if ONESTEP_WITH_TABULAR
namespace {

using namespace onestep::tabular;
using ordered_json = nlohmann::ordered_json;

// W1 costs n·m arcs; the paper skips it from 5000 training rows on.
constexpr size_t kW1RowLimit = 5000;
// With --task auto a label is a class label when it holds integers with at most this many values.
constexpr size_t kMaxAutoClasses = 20;

struct TabularEvalArgs {
    std::string train, test, label, categorical, integer, binary, task = "auto", out;
    std::vector<std::string> fakes;
    int threads = 0;
};

struct NamedTable {
    std::string path;
    Table table;
};

// TABLE must have exactly the columns of REFERENCE (any order): the metrics match columns by name.
void require_same_columns(const NamedTable& table, const NamedTable& reference) {
    for (const auto& name : reference.table.columns) table.table.column_index(name, table.path);
    for (const auto& name : table.table.columns)
        if (std::find(reference.table.columns.begin(), reference.table.columns.end(), name) ==
            reference.table.columns.end())
            throw UserError(table.path + ": column '" + name + "' is not in " + reference.path);
}

bool looks_like_class_label(const Table& train, size_t column) {
    std::vector<double> values;
    for (size_t i = 0; i < train.rows(); ++i) {
        double value = train.at(i, column);
        if (value != std::round(value)) return false;
        if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(value);
        if (values.size() > kMaxAutoClasses) return false;
    }
    return true;
}

// The first and second half of TABLE's rows: the discriminator's g and g' when only one fake set is given.
std::pair<Table, Table> halves(const Table& table) {
    Table first, second;
    first.columns = second.columns = table.columns;
    size_t split = table.rows() / 2 * table.columns.size();
    first.values.assign(table.values.begin(), table.values.begin() + static_cast<std::ptrdiff_t>(split));
    second.values.assign(table.values.begin() + static_cast<std::ptrdiff_t>(split), table.values.end());
    return {std::move(first), std::move(second)};
}

CoverageRadii radii_of(const NamedTable& real, const Preprocessor& prep, int threads) {
    try {
        return coverage_radii(gower_points(real.table, prep, real.path), 0, threads);
    } catch (const std::invalid_argument& error) {
        throw UserError(real.path + ": " + error.what());
    }
}

double mean_of(const ordered_json& records, const std::string& key) {
    double sum = 0;
    for (const auto& record : records) sum += record.at(key).get<double>();
    return sum / static_cast<double>(records.size());
}

void run_tabular_eval(const TabularEvalArgs& args) {
    NamedTable train{args.train, read_csv(args.train)}, test{args.test, read_csv(args.test)};
    std::vector<NamedTable> fakes;
    for (const auto& path : args.fakes) fakes.push_back({path, read_csv(path)});
    require_same_columns(test, train);
    for (const auto& fake : fakes) require_same_columns(fake, train);
    if (fakes.size() == 1 && fakes[0].table.rows() < 2)
        throw UserError(fakes[0].path + ": the discriminator needs at least 2 generated rows (halves of one file)");

    std::map<std::string, ColumnKind> kinds = column_kinds(args.categorical, args.integer, args.binary);

    // The target: the label, or without one the last column as a regression target.
    MetricSchema schema;
    schema.columns = train.table.columns;
    schema.target = args.label.empty() ? train.table.columns.back() : args.label;
    size_t target_column = train.table.column_index(schema.target, train.path);
    if (args.task == "classification" && args.label.empty())
        throw UserError("--task classification needs --label COLUMN");
    const bool auto_class =
        args.task == "auto" && !args.label.empty() && looks_like_class_label(train.table, target_column);
    schema.classification = args.task == "classification" || auto_class;
    if (!schema.classification && kinds.count(schema.target) && kinds[schema.target] == ColumnKind::Categorical)
        throw UserError("column '" + schema.target +
                        "' is categorical; a regression target must be numeric (pass --label)");
    for (const auto& [name, kind] : kinds)
        if (kind == ColumnKind::Categorical) schema.categorical.insert(name);
    // A class label enters Gower as a label (one-hot from 3 classes); a regression target as a column.
    Preprocessor prep = Preprocessor::fit(train.table, schema.classification ? schema.target : "", kinds, train.path);

    const bool with_w1 = train.table.rows() < kW1RowLimit;
    CoverageRadii radii_train = radii_of(train, prep, args.threads), radii_test = radii_of(test, prep, args.threads);
    const double tstr_real = tstr_xgb(train.table, train.table, test.table, schema, args.threads);

    ordered_json per_fake = ordered_json::array();
    for (size_t f = 0; f < fakes.size(); ++f) {
        const NamedTable& fake = fakes[f];
        ordered_json record;
        record["fake"] = fake.path;
        auto [train_points, fake_points] = gower_pair(train.table, fake.table, prep, train.path, fake.path);
        auto [test_points, fake_points_test] = gower_pair(test.table, fake.table, prep, test.path, fake.path);
        if (with_w1) {
            record["w1_train"] = wasserstein1(fake_points, train_points);
            record["w1_test"] = wasserstein1(fake_points_test, test_points);
        }
        record["coverage_train"] = coverage(train_points, radii_train, fake_points, args.threads);
        record["coverage_test"] = coverage(test_points, radii_test, fake_points_test, args.threads);
        record["tstr_xgb"] = tstr_xgb(fake.table, train.table, test.table, schema, args.threads);
        // g' = the next generated set, as the reference's (g + 1) mod 5; one file: its two halves.
        DiscriminatorResult disc;
        if (fakes.size() == 1) {
            auto [first, second] = halves(fake.table);
            disc = disc_xgb(train.table, first, second, schema, args.threads);
            record["disc_heldout"] = fake.path + " (second half; trained on the first)";
        } else {
            const NamedTable& heldout = fakes[(f + 1) % fakes.size()];
            disc = disc_xgb(train.table, fake.table, heldout.table, schema, args.threads);
            record["disc_heldout"] = heldout.path;
        }
        record["disc_xgb_f1"] = disc.f1;
        record["disc_xgb_q"] = disc.q;
        per_fake.push_back(record);
    }

    ordered_json result;
    result["train"] = train.path;
    result["test"] = test.path;
    result["fake"] = args.fakes;
    result["label"] = args.label.empty() ? ordered_json(nullptr) : ordered_json(args.label);
    result["target"] = schema.target;
    result["task"] = schema.classification ? "classification" : "regression";
    result["n_train"] = train.table.rows();
    result["n_test"] = test.table.rows();
    result["w1_train"] = with_w1 ? ordered_json(mean_of(per_fake, "w1_train")) : ordered_json(nullptr);
    result["w1_test"] = with_w1 ? ordered_json(mean_of(per_fake, "w1_test")) : ordered_json(nullptr);
    result["coverage_train"] = mean_of(per_fake, "coverage_train");
    result["coverage_test"] = mean_of(per_fake, "coverage_test");
    result["k_sel_train"] = radii_train.k;
    result["k_sel_test"] = radii_test.k;
    result["tstr_metric"] = schema.classification ? "macro_f1" : "r2";
    result["tstr_xgb_fake"] = mean_of(per_fake, "tstr_xgb");
    result["tstr_xgb_real"] = tstr_real;
    result["disc_xgb_f1"] = mean_of(per_fake, "disc_xgb_f1");
    result["disc_xgb_q"] = mean_of(per_fake, "disc_xgb_q");
    result["per_fake"] = per_fake;

    std::printf("%s: target '%s', %zu train rows, %zu test rows, %zu generated set(s)\n",
                result["task"].get<std::string>().c_str(), schema.target.c_str(), train.table.rows(),
                test.table.rows(), fakes.size());
    std::printf("%-22s %10s %12s\n", "metric", "generated", "real train");
    if (with_w1) {
        std::printf("%-22s %10.4f\n", "W1 train", result["w1_train"].get<double>());
        std::printf("%-22s %10.4f\n", "W1 test", result["w1_test"].get<double>());
    } else {
        std::printf("W1 skipped (n_train ≥ %zu)\n", kW1RowLimit);
    }
    std::printf("%-22s %10.4f   (k_sel = %d)\n", "coverage train", result["coverage_train"].get<double>(),
                radii_train.k);
    std::printf("%-22s %10.4f   (k_sel = %d)\n", "coverage test", result["coverage_test"].get<double>(), radii_test.k);
    std::string tstr_name = std::string("tstr_xgb ") + (schema.classification ? "macro-F1" : "R^2");
    std::printf("%-22s %10.4f %12.4f\n", tstr_name.c_str(), result["tstr_xgb_fake"].get<double>(), tstr_real);
    std::printf("%-22s %10.4f   (q = %.4f)\n", "disc_xgb F1", result["disc_xgb_f1"].get<double>(),
                result["disc_xgb_q"].get<double>());
    if (fakes.size() == 1)
        std::printf("(one generated set: the discriminator trained on its first half against all %zu train rows, "
                    "which leans q towards real; pass two or more --fake files for the paper's protocol)\n",
                    train.table.rows());
    if (!args.out.empty()) {
        write_file_atomic(args.out, result.dump(2) + "\n");
        std::fprintf(stderr, "wrote %s\n", args.out.c_str());
    }
}

}  // namespace

void add_tabular_eval(CLI::App& eval) {
    auto args = std::make_shared<TabularEvalArgs>();
    CLI::App* tabular = eval.add_subcommand(
        "tabular", "W1, coverage, TSTR (XGBoost) and discriminator of generated CSV tables against real train/test");
    tabular->add_option("--train", args->train, "real training CSV (its ranges and levels scale the distances)")
        ->required();
    tabular->add_option("--test", args->test, "real test CSV")->required();
    tabular->add_option("--fake", args->fakes,
                        "generated CSV, repeatable; metrics are averaged. The discriminator tests each set's model on "
                        "the next set; with one file it trains on the first half and tests on the second (half as "
                        "many fake as real rows, which leans q towards 'real')")
        ->required();
    tabular->add_option("--label", args->label, "class label or regression target (none: the last column, regression)");
    tabular->add_option("--cat", args->categorical, "comma-separated categorical columns (codes 0..L-1)");
    tabular->add_option("--int", args->integer, "comma-separated integer columns");
    tabular->add_option("--bin", args->binary, "comma-separated binary columns");
    tabular->add_option("--task", args->task, "auto: classification when the label holds at most 20 integer values")
        ->check(CLI::IsMember({"auto", "classification", "regression"}))
        ->capture_default_str();
    tabular->add_option("--out", args->out, "JSON result");
    tabular->add_option("--threads", args->threads, "threads for distances and XGBoost (0: all cores)")
        ->check(CLI::Range(0, 1024))
        ->capture_default_str();
    tabular->callback([args]() { run_tabular_eval(*args); });
}
#else
void add_tabular_eval(CLI::App&) {}
#endif

}  // namespace onestep::cli
