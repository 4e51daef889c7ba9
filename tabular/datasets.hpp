// The offline tabular benchmark sets (spec §11), gathered from Debian packages into CSV files with
// the paper's three train/test splits and a dataset.json that declares the label and column kinds.
//
//   UciFetchOptions options;                       // data/uci, 3 splits, every dataset
//   fetch_uci(options, std::cout);                 // data/uci/iris/{data.csv,dataset.json,split0/train.csv,...}
//   DatasetInfo info = read_dataset_info("data/uci/iris/dataset.json");
//   Preprocessor prep = Preprocessor::fit(train, info.label, info.kinds(), "train.csv");
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "tabular/preprocess.hpp"
#include "tabular/table.hpp"

namespace onestep::tabular {

constexpr const char* kSklearnDataDir = "/usr/lib/python3/dist-packages/sklearn/datasets/data";

// What dataset.json says: enough to train without repeating --label, --cat, --int, --bin.
struct DatasetInfo {
    std::string name, label;
    std::string task;   // classification | regression
    size_t rows = 0, features = 0;
    std::vector<std::string> integer, binary, categorical;   // columns not listed are continuous
    std::vector<std::string> class_names;                    // classification: name of each class
    std::string source;                                      // package and file it came from
    int splits = 0;
    double test_fraction = 0.2;

    std::map<std::string, ColumnKind> kinds() const;
    nlohmann::ordered_json to_json() const;
    // SOURCE names the file in errors.
    static DatasetInfo from_json(const nlohmann::ordered_json& json, const std::string& source);
};
DatasetInfo read_dataset_info(const std::string& path);

struct UciFetchOptions {
    std::string out_dir = "data/uci";
    int splits = 3;                           // split k uses seed k
    double test_fraction = 0.2;
    std::string sklearn_dir = kSklearnDataDir;   // python3-sklearn's data folder
    std::string rscript = "Rscript";          // runs R for r-cran-mlbench; empty skips those datasets
    std::vector<std::string> names;           // datasets to fetch; empty: all of uci_dataset_names()
};

// iris, wine, breast-cancer, diabetes, glass, ionosphere, sonar, vowel, congress.
const std::vector<std::string>& uci_dataset_names();

// Writes <out>/<name>/data.csv, dataset.json and split<k>/{train,test}.csv (classification: 80/20
// stratified; regression: shuffled) for each dataset, every file atomically. A dataset whose
// Debian package is absent is skipped with one line on LOG naming the package. Returns the names
// written; a UserError when none could be.
std::vector<std::string> fetch_uci(const UciFetchOptions& options, std::ostream& log);

// Reads a gzip-compressed (or plain) file whole; zlib reads both.
std::string read_gzip_text(const std::string& path);

}  // namespace onestep::tabular
