// `data fetch uci`: converts scikit-learn's bundled CSVs and R mlbench data frames into CSV tables,
// applies the column notes of spec §11, and writes the paper's seeded train/test splits.
#include "tabular/datasets.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;

namespace onestep::tabular {
namespace {

struct Loaded {
    Table table;
    DatasetInfo info;
};

struct SklearnSet {
    std::string name, file;
    std::vector<std::string> features;
};

std::vector<std::string> breast_cancer_features() {
    const std::vector<std::string> measures = {"radius",      "texture",   "perimeter",      "area",
                                               "smoothness",  "compactness", "concavity", "concave_points",
                                               "symmetry",    "fractal_dimension"};
    // scikit-learn's order: ten means, ten standard errors, ten worst values.
    std::vector<std::string> names;
    for (const auto& measure : measures) names.push_back("mean_" + measure);
    for (const auto& measure : measures) names.push_back(measure + "_error");
    for (const auto& measure : measures) names.push_back("worst_" + measure);
    return names;
}

const std::vector<SklearnSet>& sklearn_sets() {
    static const std::vector<SklearnSet> sets = {
        {"iris", "iris.csv", {"sepal_length", "sepal_width", "petal_length", "petal_width"}},
        {"wine",
         "wine_data.csv",
         {"alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
          "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280_od315_of_diluted_wines",
          "proline"}},
        {"breast-cancer", "breast_cancer.csv", breast_cancer_features()},
    };
    return sets;
}

// An mlbench data frame: NAME is its R name, PREPARE optional R lines run on `d` before export.
struct MlbenchSet {
    std::string name, frame, label, prepare;
};

const std::vector<MlbenchSet>& mlbench_sets() {
    static const std::vector<MlbenchSet> sets = {
        {"glass", "Glass", "Type", ""},
        {"ionosphere", "Ionosphere", "Class", ""},
        {"sonar", "Sonar", "Class", ""},
        {"vowel", "Vowel", "Class", ""},
        // Unrecorded votes are their own level "?" (spec §11), and the party moves last.
        {"congress", "HouseVotes84", "Class",
         "for (j in 2:17) { x <- as.character(d[[j]]); x[is.na(x)] <- \"?\"; d[[j]] <- x }; d <- d[c(2:17, 1)]"},
    };
    return sets;
}

std::string shell_quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

void drop_column(Table& table, size_t column) {
    const size_t width = table.columns.size();
    std::vector<double> values;
    values.reserve(table.rows() * (width - 1));
    for (size_t i = 0; i < table.rows(); ++i)
        for (size_t j = 0; j < width; ++j)
            if (j != column) values.push_back(table.at(i, j));
    table.values = std::move(values);
    table.columns.erase(table.columns.begin() + column);
    if (column < table.levels.size()) table.levels.erase(table.levels.begin() + column);
    if (column < table.text_lines.size()) table.text_lines.erase(table.text_lines.begin() + column);
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

Loaded load_sklearn(const SklearnSet& set, const std::string& dir) {
    std::string path = dir + "/" + set.file;
    std::string text = read_gzip_text(path);
    Loaded loaded;
    loaded.table = parse_sklearn_csv(text, path, set.features, "class");
    loaded.info.name = set.name;
    loaded.info.task = "classification";
    loaded.info.source = "python3-sklearn " + path;
    // The count line names the classes after n_samples and n_features.
    std::istringstream counts(first_line(text));
    std::string cell;
    for (int k = 0; std::getline(counts, cell, ','); ++k) {
        while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.pop_back();
        if (k >= 2) loaded.info.class_names.push_back(cell);
    }
    return loaded;
}

// A whitespace-separated numeric file, one row per line.
std::vector<std::vector<double>> read_numbers(const std::string& path) {
    std::istringstream lines(read_gzip_text(path));
    std::string line;
    std::vector<std::vector<double>> rows;
    for (size_t line_number = 1; std::getline(lines, line); ++line_number) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::istringstream cells(line);
        std::string cell;
        std::vector<double> row;
        while (cells >> cell) {
            double value;
            if (!parse_number(cell, value))
                throw UserError(path + ":" + std::to_string(line_number) + ": column " +
                                std::to_string(row.size() + 1) + ": '" + cell + "' is not a number");
            row.push_back(value);
        }
        if (!rows.empty() && row.size() != rows.front().size())
            throw UserError(path + ":" + std::to_string(line_number) + ": " + std::to_string(row.size()) +
                            " values, the first row has " + std::to_string(rows.front().size()));
        rows.push_back(row);
    }
    if (rows.empty()) throw UserError(path + ": no rows");
    return rows;
}

Loaded load_diabetes(const std::string& dir) {
    std::string data_path = dir + "/diabetes_data_raw.csv.gz", target_path = dir + "/diabetes_target.csv.gz";
    std::vector<std::vector<double>> data = read_numbers(data_path), target = read_numbers(target_path);
    const std::vector<std::string> features = {"age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"};
    if (data.front().size() != features.size())
        throw UserError(data_path + ": expected " + std::to_string(features.size()) + " columns, found " +
                        std::to_string(data.front().size()));
    if (target.size() != data.size() || target.front().size() != 1)
        throw UserError(target_path + ": expected one value per row of " + data_path + " (" +
                        std::to_string(data.size()) + ")");
    Loaded loaded;
    loaded.table.columns = features;
    loaded.table.columns.push_back("target");
    for (size_t i = 0; i < data.size(); ++i) {
        loaded.table.values.insert(loaded.table.values.end(), data[i].begin(), data[i].end());
        loaded.table.values.push_back(target[i][0]);
    }
    loaded.info.name = "diabetes";
    loaded.info.task = "regression";
    loaded.info.integer = {"age"};
    loaded.info.binary = {"sex"};   // coded 1/2; binary columns are rounded and clipped, never dummy-coded
    loaded.info.source = "python3-sklearn " + data_path + " + " + target_path;
    return loaded;
}

bool mlbench_available(const std::string& rscript) {
    if (rscript.empty()) return false;
    std::string probe = shell_quote(rscript) +
                        " -e 'quit(status = if (requireNamespace(\"mlbench\", quietly = TRUE)) 0 else 1)'"
                        " >/dev/null 2>&1";
    return std::system(probe.c_str()) == 0;
}

Loaded load_mlbench(const MlbenchSet& set, const std::string& rscript, const std::string& work_dir) {
    std::string export_path = work_dir + "/.mlbench-export.csv";
    std::string script = "args <- commandArgs(trailingOnly = TRUE); data(" + set.frame +
                         ", package = \"mlbench\"); d <- " + set.frame + "; " +
                         (set.prepare.empty() ? "" : set.prepare + "; ") + "write.csv(d, args[1], row.names = FALSE)";
    std::string command = shell_quote(rscript) + " -e " + shell_quote(script) + " " + shell_quote(export_path);
    if (std::system(command.c_str()) != 0)
        throw UserError(set.name + ": exporting mlbench's " + set.frame + " failed: " + command);
    Loaded loaded;
    loaded.table = read_csv(export_path, true);
    fs::remove(export_path);
    Table& table = loaded.table;
    DatasetInfo& info = loaded.info;
    info.name = set.name;
    info.task = "classification";
    info.source = "r-cran-mlbench " + set.frame;
    size_t label = table.column_index(set.label, export_path);
    table.columns[label] = "class";
    if (set.name == "glass") {
        // Types 1, 2, 3, 5, 6, 7 (no 4 in the data) become classes 0..5.
        info.class_names = {"1", "2", "3", "5", "6", "7"};
        for (size_t i = 0; i < table.rows(); ++i) {
            std::string type = table.cell_text(i, label);
            auto found = std::find(info.class_names.begin(), info.class_names.end(), type);
            if (found == info.class_names.end())
                throw UserError(table.where(i, label, export_path) + ": unexpected glass type '" + type + "'");
            table.at(i, label) = static_cast<double>(found - info.class_names.begin());
        }
        if (table.is_text(label)) table.levels[label].clear();
    } else {
        info.class_names = table.is_text(label) ? table.levels[label] : std::vector<std::string>();
    }
    if (set.name == "ionosphere") {
        // V2 is 0 in every row: a constant carries nothing for the generator.
        size_t constant = table.column_index("V2", export_path);
        for (size_t i = 1; i < table.rows(); ++i)
            if (table.at(i, constant) != table.at(0, constant))
                throw UserError(table.where(i, constant, export_path) + ": expected the constant column of Ionosphere");
        drop_column(table, constant);
        info.binary = {"V1"};
    }
    if (set.name == "vowel") info.categorical = {"V1"};   // documented as nominal (15 codes)
    if (set.name == "congress")
        for (size_t j = 0; j + 1 < table.columns.size(); ++j) info.categorical.push_back(table.columns[j]);
    // The export file is gone; errors about these rows should not point at it.
    table.row_lines.clear();
    table.text_lines.assign(table.columns.size(), 0);
    return loaded;
}

void write_dataset(Loaded& loaded, const UciFetchOptions& options, std::ostream& log) {
    Table& table = loaded.table;
    DatasetInfo& info = loaded.info;
    info.label = table.columns.back();
    info.rows = table.rows();
    info.features = table.columns.size() - 1;
    info.splits = options.splits;
    info.test_fraction = options.test_fraction;
    std::string dir = options.out_dir + "/" + info.name;
    fs::create_directories(dir);
    write_csv(table, dir + "/data.csv");
    const size_t label = table.columns.size() - 1;
    for (int k = 0; k < options.splits; ++k) {
        Table train, test;
        if (info.task == "classification")
            stratified_split(table, label, options.test_fraction, static_cast<uint64_t>(k), train, test);
        else
            shuffle_split(table, options.test_fraction, static_cast<uint64_t>(k), train, test);
        std::string split_dir = dir + "/split" + std::to_string(k);
        fs::create_directories(split_dir);
        write_csv(train, split_dir + "/train.csv");
        write_csv(test, split_dir + "/test.csv");
    }
    // Written last: its presence marks a complete dataset folder.
    write_file_atomic(dir + "/dataset.json", info.to_json().dump(2) + "\n");
    log << info.name << ": " << info.rows << " rows, " << info.features << " features, "
        << (info.task == "classification" ? std::to_string(info.class_names.size()) + " classes" : info.task)
        << " -> " << dir << " (" << options.splits << " splits)\n";
}

std::vector<std::string> list_of(const nlohmann::ordered_json& json, const char* key) {
    return json.contains(key) ? json.at(key).get<std::vector<std::string>>() : std::vector<std::string>();
}

}  // namespace

std::map<std::string, ColumnKind> DatasetInfo::kinds() const {
    std::map<std::string, ColumnKind> kinds;
    for (const auto& name : integer) kinds[name] = ColumnKind::Integer;
    for (const auto& name : binary) kinds[name] = ColumnKind::Binary;
    for (const auto& name : categorical) kinds[name] = ColumnKind::Categorical;
    return kinds;
}

nlohmann::ordered_json DatasetInfo::to_json() const {
    nlohmann::ordered_json json;
    json["name"] = name;
    json["task"] = task;
    json["label"] = label;
    json["rows"] = rows;
    json["features"] = features;
    json["integer"] = integer;
    json["binary"] = binary;
    json["categorical"] = categorical;
    if (task == "classification") json["class_names"] = class_names;
    std::vector<int> seeds;
    for (int k = 0; k < splits; ++k) seeds.push_back(k);   // split<k> uses seed k
    json["splits"] = {{"count", splits},
                      {"seeds", seeds},
                      {"test_fraction", test_fraction},
                      {"protocol", task == "classification" ? "stratified by class" : "shuffled"}};
    json["source"] = source;
    return json;
}

DatasetInfo DatasetInfo::from_json(const nlohmann::ordered_json& json, const std::string& source) {
    DatasetInfo info;
    try {
        info.name = json.at("name").get<std::string>();
        info.task = json.at("task").get<std::string>();
        info.label = json.at("label").get<std::string>();
        info.rows = json.at("rows").get<size_t>();
        info.features = json.at("features").get<size_t>();
        info.integer = list_of(json, "integer");
        info.binary = list_of(json, "binary");
        info.categorical = list_of(json, "categorical");
        info.class_names = list_of(json, "class_names");
        if (json.contains("splits")) {
            info.splits = json.at("splits").at("count").get<int>();
            info.test_fraction = json.at("splits").at("test_fraction").get<double>();
        }
        if (json.contains("source")) info.source = json.at("source").get<std::string>();
    } catch (const nlohmann::json::exception& error) {
        throw UserError(source + ": " + error.what());
    }
    if (info.task != "classification" && info.task != "regression")
        throw UserError(source + ": task '" + info.task + "'; accepted: classification, regression");
    return info;
}

DatasetInfo read_dataset_info(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw UserError(path + ": cannot open for reading");
    try {
        return DatasetInfo::from_json(nlohmann::ordered_json::parse(in), path);
    } catch (const nlohmann::json::parse_error& error) {
        throw UserError(path + ": not valid JSON (" + error.what() + ")");
    }
}

const std::vector<std::string>& uci_dataset_names() {
    static const std::vector<std::string> names = {"iris",  "wine",       "breast-cancer", "diabetes", "glass",
                                                   "ionosphere", "sonar", "vowel",         "congress"};
    return names;
}

std::string read_gzip_text(const std::string& path) {
    gzFile file = gzopen(path.c_str(), "rb");
    if (!file) throw UserError(path + ": cannot open for reading");
    std::string text;
    char buffer[1 << 16];
    int count;
    while ((count = gzread(file, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<size_t>(count));
    int status = 0;
    std::string reason = count < 0 ? gzerror(file, &status) : "";
    gzclose(file);
    if (count < 0) throw UserError(path + ": read failed (" + reason + ")");
    return text;
}

std::vector<std::string> fetch_uci(const UciFetchOptions& options, std::ostream& log) {
    if (options.splits < 1) throw UserError("--splits: " + std::to_string(options.splits) + "; expected at least 1");
    if (!(options.test_fraction > 0 && options.test_fraction < 1))
        throw UserError("test fraction " + std::to_string(options.test_fraction) + "; expected a value in (0, 1)");
    const auto& known = uci_dataset_names();
    std::vector<std::string> wanted = options.names.empty() ? known : options.names;
    for (const auto& name : wanted) {
        if (std::find(known.begin(), known.end(), name) == known.end()) {
            std::string list;
            for (const auto& entry : known) list += (list.empty() ? "" : ", ") + entry;
            throw UserError("unknown dataset '" + name + "' (accepted: " + list + ")");
        }
    }
    std::vector<std::string> written;
    int mlbench = -1;   // probed once, when the first R dataset comes up
    for (const auto& name : wanted) {
        Loaded loaded;
        auto sklearn = std::find_if(sklearn_sets().begin(), sklearn_sets().end(),
                                    [&](const SklearnSet& set) { return set.name == name; });
        auto r_set = std::find_if(mlbench_sets().begin(), mlbench_sets().end(),
                                  [&](const MlbenchSet& set) { return set.name == name; });
        if (sklearn != sklearn_sets().end() || name == "diabetes") {
            std::string needed = sklearn != sklearn_sets().end() ? sklearn->file : "diabetes_data_raw.csv.gz";
            if (!fs::exists(options.sklearn_dir + "/" + needed)) {
                log << name << ": skipped, " << options.sklearn_dir << "/" << needed
                    << " not found (install python3-sklearn)\n";
                continue;
            }
            loaded = sklearn != sklearn_sets().end() ? load_sklearn(*sklearn, options.sklearn_dir)
                                                     : load_diabetes(options.sklearn_dir);
        } else {
            if (mlbench < 0) mlbench = mlbench_available(options.rscript) ? 1 : 0;
            if (mlbench == 0) {
                log << name << ": skipped, needs Rscript with mlbench (apt-get install r-cran-mlbench)\n";
                continue;
            }
            fs::create_directories(options.out_dir + "/" + name);
            loaded = load_mlbench(*r_set, options.rscript, options.out_dir + "/" + name);
        }
        write_dataset(loaded, options, log);
        written.push_back(name);
    }
    if (written.empty()) throw UserError("data fetch uci: no dataset could be read (see the lines above)");
    return written;
}

}  // namespace onestep::tabular
