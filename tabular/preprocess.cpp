// Preprocessing for ForestFlow (spec §2): reference-level dummy coding, global min–max scaling to
// [−1, 1] fitted on the training rows, and post-processing of generated rows.
#include "tabular/preprocess.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace onestep::tabular {
namespace {

const std::vector<std::pair<ColumnKind, std::string>> kKindNames = {
    {ColumnKind::Continuous, "continuous"},
    {ColumnKind::Integer, "integer"},
    {ColumnKind::Binary, "binary"},
    {ColumnKind::Categorical, "categorical"},
};

bool is_code(double value) { return value >= 0 && value == std::round(value); }

}  // namespace

std::string to_string(ColumnKind kind) {
    for (const auto& [known, name] : kKindNames)
        if (known == kind) return name;
    return "continuous";
}

ColumnKind column_kind_from_string(const std::string& name) {
    for (const auto& [kind, known] : kKindNames)
        if (known == name) return kind;
    throw UserError("unknown column kind '" + name + "' (accepted: continuous, integer, binary, categorical)");
}

Preprocessor Preprocessor::fit(const Table& train, const std::string& label,
                               const std::map<std::string, ColumnKind>& kinds, const std::string& source) {
    Preprocessor prep;
    prep.label_ = label;
    size_t label_index = label.empty() ? train.columns.size() : train.column_index(label, source);
    for (const auto& [name, kind] : kinds) {
        size_t index = train.column_index(name, source);
        if (index == label_index) throw UserError(source + ": column '" + name + "' is the label; it has no kind");
    }
    for (size_t j = 0; j < train.columns.size(); ++j) {
        if (j == label_index) continue;
        FeatureColumn column;
        column.name = train.columns[j];
        auto kind = kinds.find(column.name);
        if (kind != kinds.end()) column.kind = kind->second;
        column.min = INFINITY;
        column.max = -INFINITY;
        for (size_t i = 0; i < train.rows(); ++i) {
            double value = train.at(i, j);
            if (column.kind == ColumnKind::Categorical && !is_code(value))
                throw UserError(source + ": data row " + std::to_string(i + 1) + ", column '" + column.name +
                                "': categorical cells must be codes 0, 1, 2, ...; found " + std::to_string(value));
            column.min = std::min(column.min, value);
            column.max = std::max(column.max, value);
        }
        if (column.kind == ColumnKind::Categorical) column.levels = static_cast<int>(column.max) + 1;
        prep.features_.push_back(column);
    }
    if (!label.empty()) {
        std::vector<double> values;
        for (size_t i = 0; i < train.rows(); ++i) values.push_back(train.at(i, label_index));
        std::sort(values.begin(), values.end());
        values.erase(std::unique(values.begin(), values.end()), values.end());
        prep.class_values_ = values;
    }
    prep.class_counts_.assign(prep.classes(), 0);

    // Scale bounds come from the encoded training table, so indicators land on ±1.
    ScaledRows encoded;
    prep.scale_lo_.clear();
    for (const auto& column : prep.features_) {
        size_t count = column.kind == ColumnKind::Categorical ? column.levels - 1 : 1;
        for (size_t k = 0; k < count; ++k) {
            prep.scale_lo_.push_back(0);
            prep.scale_hi_.push_back(1);
        }
    }
    // With lo = 0 and hi = 1 transform gives 2x − 1; undo that to recover the encoded values.
    encoded = prep.transform(train, source);
    for (size_t k = 0; k < prep.width(); ++k) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < encoded.rows; ++i) {
            double value = (encoded.values[i * encoded.width + k] + 1.0) / 2.0;
            lo = std::min(lo, value);
            hi = std::max(hi, value);
        }
        prep.scale_lo_[k] = lo;
        prep.scale_hi_[k] = hi;
    }
    for (int label_index_value : encoded.labels) ++prep.class_counts_[label_index_value];
    return prep;
}

ScaledRows Preprocessor::transform(const Table& table, const std::string& source) const {
    ScaledRows rows;
    rows.rows = table.rows();
    rows.width = width();
    rows.values.reserve(rows.rows * rows.width);
    std::vector<size_t> indices;
    for (const auto& column : features_) indices.push_back(table.column_index(column.name, source));
    size_t label_index = label_.empty() ? 0 : table.column_index(label_, source);
    for (size_t i = 0; i < rows.rows; ++i) {
        size_t k = 0;
        auto push = [&](double encoded) {
            // x' = 2(x − lo)/(hi − lo) − 1; a constant column maps to −1.
            double range = scale_hi_[k] - scale_lo_[k];
            rows.values.push_back(static_cast<float>(range > 0 ? 2.0 * (encoded - scale_lo_[k]) / range - 1.0 : -1.0));
            ++k;
        };
        for (size_t f = 0; f < features_.size(); ++f) {
            const FeatureColumn& column = features_[f];
            double value = table.at(i, indices[f]);
            if (column.kind != ColumnKind::Categorical) {
                push(value);
                continue;
            }
            if (!is_code(value) || value >= column.levels)
                throw UserError(source + ": data row " + std::to_string(i + 1) + ", column '" + column.name +
                                "': category code " + std::to_string(value) + " outside the training codes 0.." +
                                std::to_string(column.levels - 1));
            // Reference-level dummy coding: level 0 is all zeros, level m sets indicator m − 1.
            for (int level = 1; level < column.levels; ++level) push(value == level ? 1.0 : 0.0);
        }
        int label_value = 0;
        if (!label_.empty()) {
            double value = table.at(i, label_index);
            auto found = std::lower_bound(class_values_.begin(), class_values_.end(), value);
            if (found == class_values_.end() || *found != value)
                throw UserError(source + ": data row " + std::to_string(i + 1) + ", label '" + label_ + "': value " +
                                std::to_string(value) + " is not a training class");
            label_value = static_cast<int>(found - class_values_.begin());
        }
        rows.labels.push_back(label_value);
    }
    return rows;
}

Table Preprocessor::inverse(const ScaledRows& rows) const {
    Table table;
    for (const auto& column : features_) table.columns.push_back(column.name);
    if (!label_.empty()) table.columns.push_back(label_);
    for (size_t i = 0; i < rows.rows; ++i) {
        size_t k = 0;
        auto unscale = [&]() {
            double scaled = rows.values[i * rows.width + k];
            double value = (scaled + 1.0) / 2.0 * (scale_hi_[k] - scale_lo_[k]) + scale_lo_[k];
            ++k;
            return value;
        };
        for (const auto& column : features_) {
            double value;
            if (column.kind == ColumnKind::Categorical) {
                // A constant 0.5 stands for the reference level; the largest indicator above it wins.
                double best = 0.5;
                value = 0;
                for (int level = 1; level < column.levels; ++level) {
                    double indicator = unscale();
                    if (indicator > best) {
                        best = indicator;
                        value = level;
                    }
                }
            } else {
                value = unscale();
                if (column.kind != ColumnKind::Continuous) value = std::round(value);
            }
            table.values.push_back(std::clamp(value, column.min, column.max));
        }
        if (!label_.empty()) table.values.push_back(class_values_.at(rows.labels.at(i)));
    }
    return table;
}

nlohmann::ordered_json Preprocessor::to_json() const {
    nlohmann::ordered_json json;
    json["label"] = label_;
    json["class_values"] = class_values_;
    json["class_counts"] = class_counts_;
    for (const auto& column : features_)
        json["columns"].push_back({{"name", column.name},
                                   {"kind", to_string(column.kind)},
                                   {"min", column.min},
                                   {"max", column.max},
                                   {"levels", column.levels}});
    json["scale_lo"] = scale_lo_;
    json["scale_hi"] = scale_hi_;
    return json;
}

Preprocessor Preprocessor::from_json(const nlohmann::ordered_json& json) {
    Preprocessor prep;
    prep.label_ = json.at("label").get<std::string>();
    prep.class_values_ = json.at("class_values").get<std::vector<double>>();
    prep.class_counts_ = json.at("class_counts").get<std::vector<size_t>>();
    for (const auto& entry : json.at("columns")) {
        FeatureColumn column;
        column.name = entry.at("name").get<std::string>();
        column.kind = column_kind_from_string(entry.at("kind").get<std::string>());
        column.min = entry.at("min").get<double>();
        column.max = entry.at("max").get<double>();
        column.levels = entry.at("levels").get<int>();
        prep.features_.push_back(column);
    }
    prep.scale_lo_ = json.at("scale_lo").get<std::vector<double>>();
    prep.scale_hi_ = json.at("scale_hi").get<std::vector<double>>();
    return prep;
}

}  // namespace onestep::tabular
