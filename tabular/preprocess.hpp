// Preprocessing of a table for the tree-based generators: dummy coding (drop-first) of integer-
// or string-coded categories, min–max scaling to [−1, 1], class labels, missing cells kept as NaN,
// and the inverse with rounding, clipping and the original level strings.
//
//   Preprocessor prep = Preprocessor::fit(train, "species", {{"petals", ColumnKind::Integer}});
//   ScaledRows rows = prep.transform(train, "train.csv");   // rows.values in [−1, 1] or NaN
//   Table back = prep.inverse(rows);                         // original columns + label
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tabular/table.hpp"

namespace onestep::tabular {

enum class ColumnKind { Continuous, Integer, Binary, Categorical };
std::string to_string(ColumnKind kind);
ColumnKind column_kind_from_string(const std::string& name);

// Rows on the model's scale: row-major rows × width floats, plus a class index per row.
struct ScaledRows {
    size_t rows = 0, width = 0;
    std::vector<float> values;
    std::vector<int> labels;   // 0..C−1; all 0 without a label column
    size_t missing = 0;        // NaN cells in values: per-column boosters are needed (spec §6)
    bool has_missing() const { return missing > 0; }
};

struct FeatureColumn {
    std::string name;
    ColumnKind kind = ColumnKind::Continuous;
    double min = 0, max = 0;   // over the training rows; generated values are clipped to them
    int levels = 0;            // categorical only: codes 0..levels−1, encoded by levels−1 dummies
    // Categorical text columns: the level string of each code (training order); empty when the
    // column holds integer codes.
    std::vector<std::string> level_names;
};

// Column kinds from comma-separated lists of names (the CLI's --cat, --int and --bin).
std::map<std::string, ColumnKind> column_kinds(const std::string& categorical, const std::string& integer,
                                               const std::string& binary);

// Removes the rows of TABLE whose every column except LABEL is missing (spec §2.1: nothing to
// learn from them) and returns how many there were.
size_t drop_all_missing_rows(Table& table, const std::string& label);

class Preprocessor {
  public:
    // Fits on TRAIN. LABEL may be empty (one class). Columns absent from KINDS are continuous; a
    // text column must be declared categorical (or be the label). Missing cells are ignored for the
    // ranges; rows with every feature missing are left out (dropped_rows() says how many); a
    // missing label is an error.
    static Preprocessor fit(const Table& train, const std::string& label,
                            const std::map<std::string, ColumnKind>& kinds, const std::string& source = "data");
    static Preprocessor from_json(const nlohmann::ordered_json& json);
    nlohmann::ordered_json to_json() const;

    // Encodes and scales TABLE (which must have the training columns; SOURCE names it in errors).
    // Level strings are matched to the training levels by text; a missing cell stays NaN (all the
    // dummies of a missing category are NaN); unknown categories and missing labels are errors.
    ScaledRows transform(const Table& table, const std::string& source) const;
    // Rows on the model's scale back to a table: inverse scaling, dummy decoding, rounding of
    // integer and binary columns, clipping to the training range, label appended last. Text
    // columns and a text label come back with their training level strings.
    Table inverse(const ScaledRows& rows) const;
    // TABLE's feature and label columns with categorical cells as training codes and labels as
    // class values, all numeric (for metrics that compare codes); other columns are dropped.
    Table to_training_codes(const Table& table, const std::string& source) const;

    size_t width() const { return scale_lo_.size(); }
    size_t classes() const { return class_values_.empty() ? 1 : class_values_.size(); }
    const std::vector<FeatureColumn>& features() const { return features_; }
    const std::string& label() const { return label_; }
    const std::vector<double>& class_values() const { return class_values_; }
    const std::vector<size_t>& class_counts() const { return class_counts_; }
    // A text label's level string per class index; empty for a numeric label.
    const std::vector<std::string>& class_names() const { return class_names_; }
    // Training rows left out by fit because every feature was missing.
    size_t dropped_rows() const { return dropped_rows_; }

  private:
    std::vector<FeatureColumn> features_;
    std::string label_;
    std::vector<double> class_values_;   // sorted distinct label values; class index = position
    std::vector<size_t> class_counts_;   // training rows per class
    std::vector<std::string> class_names_;   // text label: class_values_ are 0..C−1 into these
    size_t dropped_rows_ = 0;
    std::vector<double> scale_lo_, scale_hi_;   // per encoded column
};

}  // namespace onestep::tabular
