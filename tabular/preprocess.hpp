// Preprocessing of a numeric table for the tree-based generators: dummy coding (drop-first),
// min–max scaling to [−1, 1], class labels, and the inverse with rounding and clipping.
//
//   Preprocessor prep = Preprocessor::fit(train, "species", {{"petals", ColumnKind::Integer}});
//   ScaledRows rows = prep.transform(train, "train.csv");   // rows.values in [−1, 1]
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
};

struct FeatureColumn {
    std::string name;
    ColumnKind kind = ColumnKind::Continuous;
    double min = 0, max = 0;   // over the training rows; generated values are clipped to them
    int levels = 0;            // categorical only: codes 0..levels−1, encoded by levels−1 dummies
};

class Preprocessor {
  public:
    // Fits on TRAIN. LABEL may be empty (one class). Columns absent from KINDS are continuous.
    static Preprocessor fit(const Table& train, const std::string& label,
                            const std::map<std::string, ColumnKind>& kinds, const std::string& source = "data");
    static Preprocessor from_json(const nlohmann::ordered_json& json);
    nlohmann::ordered_json to_json() const;

    // Encodes and scales TABLE (which must have the training columns; SOURCE names it in errors).
    ScaledRows transform(const Table& table, const std::string& source) const;
    // Rows on the model's scale back to a table: inverse scaling, dummy decoding, rounding of
    // integer and binary columns, clipping to the training range, label appended last.
    Table inverse(const ScaledRows& rows) const;

    size_t width() const { return scale_lo_.size(); }
    size_t classes() const { return class_values_.empty() ? 1 : class_values_.size(); }
    const std::vector<FeatureColumn>& features() const { return features_; }
    const std::string& label() const { return label_; }
    const std::vector<double>& class_values() const { return class_values_; }
    const std::vector<size_t>& class_counts() const { return class_counts_; }

  private:
    std::vector<FeatureColumn> features_;
    std::string label_;
    std::vector<double> class_values_;   // sorted distinct label values; class index = position
    std::vector<size_t> class_counts_;   // training rows per class
    std::vector<double> scale_lo_, scale_hi_;   // per encoded column
};

}  // namespace onestep::tabular
