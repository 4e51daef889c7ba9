// Preprocessing for ForestFlow (spec §2): reference-level dummy coding, global min–max scaling to
// [−1, 1] fitted on the training rows, and post-processing of generated rows.
#include "tabular/preprocess.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/options.hpp"

namespace onestep::tabular {
namespace {

const std::vector<std::pair<ColumnKind, std::string>> kKindNames = {
    {ColumnKind::Continuous, "continuous"},
    {ColumnKind::Integer, "integer"},
    {ColumnKind::Binary, "binary"},
    {ColumnKind::Categorical, "categorical"},
};

bool is_code(double value) { return value >= 0 && value == std::round(value); }

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
}

// The levels of text column COLUMN that occur in TABLE, in the table's level order.
std::vector<std::string> observed_levels(const Table& table, size_t column) {
    std::vector<bool> seen(table.levels[column].size(), false);
    for (size_t i = 0; i < table.rows(); ++i)
        if (!std::isnan(table.at(i, column))) seen[static_cast<size_t>(table.at(i, column))] = true;
    std::vector<std::string> levels;
    for (size_t k = 0; k < seen.size(); ++k)
        if (seen[k]) levels.push_back(table.levels[column][k]);
    return levels;
}

// Reads one table column as training values: cells of a column that was text in training are
// matched to NAMES by their string (giving the training code); other cells must be numbers, and a
// text cell among them is reported with the hint NOT_NUMBER.
class CellReader {
  public:
    CellReader(const Table& table, size_t column, const std::vector<std::string>& names, const std::string& source,
               std::string not_number)
        : table_(table), column_(column), names_(names), source_(source), not_number_(std::move(not_number)) {
        for (size_t k = 0; k < names.size(); ++k) code_of_.emplace(names[k], static_cast<double>(k));
        if (!table.is_text(column)) return;
        // One lookup per level instead of one per cell.
        for (const auto& level : table.levels[column]) {
            double value = std::nan("");
            if (!names.empty()) {
                auto found = code_of_.find(level);
                if (found != code_of_.end()) value = found->second;
            } else {
                parse_number(level, value);
            }
            level_value_.push_back(value);
        }
    }

    // The training value of row ROW, NaN for a missing cell.
    double operator()(size_t row) const {
        double cell = table_.at(row, column_);
        if (std::isnan(cell)) return cell;
        if (table_.is_text(column_)) {
            double value = level_value_[static_cast<size_t>(cell)];
            if (std::isnan(value)) fail(row);
            return value;
        }
        if (names_.empty()) return cell;
        auto found = code_of_.find(table_.cell_text(row, column_));
        if (found == code_of_.end()) fail(row);
        return found->second;
    }

  private:
    [[noreturn]] void fail(size_t row) const {
        std::string where = table_.where(row, column_, source_);
        std::string cell = table_.cell_text(row, column_);
        if (names_.empty()) throw UserError(where + ": text '" + cell + "' " + not_number_);
        throw UserError(where + ": '" + cell + "' was not seen in training (known: " + joined(names_) + ")");
    }

    const Table& table_;
    size_t column_;
    std::vector<std::string> names_;
    std::string source_;
    std::string not_number_;
    std::map<std::string, double> code_of_;
    std::vector<double> level_value_;
};

// The rows of TABLE with at least one observed cell outside column LABEL_INDEX.
std::vector<size_t> rows_with_a_feature(const Table& table, size_t label_index) {
    std::vector<size_t> keep;
    for (size_t i = 0; i < table.rows(); ++i) {
        for (size_t j = 0; j < table.columns.size(); ++j) {
            if (j != label_index && !std::isnan(table.at(i, j))) {
                keep.push_back(i);
                break;
            }
        }
    }
    return keep;
}

std::string not_number_hint(const FeatureColumn& column) {
    if (column.kind == ColumnKind::Categorical) return "where the training column holds integer codes";
    return "in a " + to_string(column.kind) + " column; declare it categorical (--cat " + column.name +
           ") to use its strings as levels";
}

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

std::map<std::string, ColumnKind> column_kinds(const std::string& categorical, const std::string& integer,
                                               const std::string& binary) {
    std::map<std::string, ColumnKind> kinds;
    for (const auto& name : split_list(categorical)) kinds[name] = ColumnKind::Categorical;
    for (const auto& name : split_list(integer)) kinds[name] = ColumnKind::Integer;
    for (const auto& name : split_list(binary)) kinds[name] = ColumnKind::Binary;
    return kinds;
}

size_t drop_all_missing_rows(Table& table, const std::string& label) {
    size_t label_index = label.empty() ? table.columns.size() : table.column_index(label, "table");
    std::vector<size_t> keep = rows_with_a_feature(table, label_index);
    size_t dropped = table.rows() - keep.size();
    if (dropped > 0) table = table.take_rows(keep);
    return dropped;
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
    // Rows with every feature missing are left out of the statistics (a copy only when there are any).
    Table kept;
    const Table* rows = &train;
    std::vector<size_t> keep = rows_with_a_feature(train, label_index);
    bool has_features = train.columns.size() > (label.empty() ? 0 : 1);
    if (has_features && keep.empty()) throw UserError(source + ": every row has all its features missing");
    if (has_features && keep.size() < train.rows()) {
        kept = train.take_rows(keep);
        rows = &kept;
        prep.dropped_rows_ = train.rows() - keep.size();
    }
    if (label_index < train.columns.size())
        for (size_t i = 0; i < rows->rows(); ++i)
            if (std::isnan(rows->at(i, label_index)))
                throw UserError(rows->where(i, label_index, source) + ": labels must not be missing");
    for (size_t j = 0; j < train.columns.size(); ++j) {
        if (j == label_index) continue;
        FeatureColumn column;
        column.name = train.columns[j];
        auto kind = kinds.find(column.name);
        if (kind != kinds.end()) column.kind = kind->second;
        if (column.kind == ColumnKind::Categorical && rows->is_text(j)) column.level_names = observed_levels(*rows, j);
        CellReader read(*rows, j, column.level_names, source, not_number_hint(column));
        column.min = INFINITY;
        column.max = -INFINITY;
        for (size_t i = 0; i < rows->rows(); ++i) {
            double value = read(i);
            if (std::isnan(value)) continue;
            if (column.kind == ColumnKind::Categorical && !is_code(value))
                throw UserError(rows->where(i, j, source) +
                                ": categorical cells must be codes 0, 1, 2, ... or text; found " +
                                rows->cell_text(i, j));
            column.min = std::min(column.min, value);
            column.max = std::max(column.max, value);
        }
        if (column.min > column.max)
            throw UserError(source + ": column '" + column.name + "' has no value in the training rows");
        if (column.kind == ColumnKind::Categorical)
            column.levels = column.level_names.empty() ? static_cast<int>(column.max) + 1
                                                       : static_cast<int>(column.level_names.size());
        prep.features_.push_back(column);
    }
    if (!label.empty()) {
        if (rows->is_text(label_index)) {
            // Class index = position among the training's label strings.
            prep.class_names_ = observed_levels(*rows, label_index);
            for (size_t c = 0; c < prep.class_names_.size(); ++c) prep.class_values_.push_back(static_cast<double>(c));
        } else {
            CellReader read(*rows, label_index, {}, source, "in the label column; labels are numbers or text");
            std::vector<double> values;
            for (size_t i = 0; i < rows->rows(); ++i) values.push_back(read(i));
            std::sort(values.begin(), values.end());
            values.erase(std::unique(values.begin(), values.end()), values.end());
            prep.class_values_ = values;
        }
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
    encoded = prep.transform(*rows, source);
    for (size_t k = 0; k < prep.width(); ++k) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < encoded.rows; ++i) {
            double value = (encoded.values[i * encoded.width + k] + 1.0) / 2.0;
            if (std::isnan(value)) continue;
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
    std::vector<CellReader> readers;
    for (const auto& column : features_) {
        indices.push_back(table.column_index(column.name, source));
        readers.emplace_back(table, indices.back(), column.level_names, source, not_number_hint(column));
    }
    size_t label_index = label_.empty() ? 0 : table.column_index(label_, source);
    std::vector<CellReader> label_reader;
    if (!label_.empty())
        label_reader.emplace_back(table, label_index, class_names_, source, "where the training labels are numbers");
    const double missing = std::nan("");
    for (size_t i = 0; i < rows.rows; ++i) {
        size_t k = 0;
        auto push = [&](double encoded) {
            // x' = 2(x − lo)/(hi − lo) − 1; a constant column maps to −1; a missing cell stays NaN.
            double range = scale_hi_[k] - scale_lo_[k];
            double scaled = range > 0 ? 2.0 * (encoded - scale_lo_[k]) / range - 1.0 : -1.0;
            if (std::isnan(encoded)) {
                scaled = encoded;
                ++rows.missing;
            }
            rows.values.push_back(static_cast<float>(scaled));
            ++k;
        };
        for (size_t f = 0; f < features_.size(); ++f) {
            const FeatureColumn& column = features_[f];
            double value = readers[f](i);
            if (column.kind != ColumnKind::Categorical) {
                push(value);
                continue;
            }
            if (std::isnan(value)) {
                for (int level = 1; level < column.levels; ++level) push(missing);
                continue;
            }
            if (!is_code(value) || value >= column.levels)
                throw UserError(table.where(i, indices[f], source) + ": category code " +
                                table.cell_text(i, indices[f]) +
                                " outside the training codes 0.." + std::to_string(column.levels - 1));
            // Reference-level dummy coding: level 0 is all zeros, level m sets indicator m − 1.
            for (int level = 1; level < column.levels; ++level) push(value == level ? 1.0 : 0.0);
        }
        int label_value = 0;
        if (!label_.empty()) {
            double value = label_reader[0](i);
            if (std::isnan(value))
                throw UserError(table.where(i, label_index, source) + ": labels must not be missing");
            auto found = std::lower_bound(class_values_.begin(), class_values_.end(), value);
            if (found == class_values_.end() || *found != value)
                throw UserError(table.where(i, label_index, source) + ": label '" + table.cell_text(i, label_index) +
                                "' is not a training class");
            label_value = static_cast<int>(found - class_values_.begin());
        }
        rows.labels.push_back(label_value);
    }
    return rows;
}

Table Preprocessor::inverse(const ScaledRows& rows) const {
    Table table;
    bool any_text = !class_names_.empty();
    for (const auto& column : features_) {
        table.columns.push_back(column.name);
        table.levels.push_back(column.level_names);
        any_text = any_text || !column.level_names.empty();
    }
    if (!label_.empty()) {
        table.columns.push_back(label_);
        table.levels.push_back(class_names_);
    }
    if (!any_text) table.levels.clear();
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
                bool missing = false;
                value = 0;
                for (int level = 1; level < column.levels; ++level) {
                    double indicator = unscale();
                    missing = missing || std::isnan(indicator);
                    if (indicator > best) {
                        best = indicator;
                        value = level;
                    }
                }
                if (missing) value = std::nan("");   // a missing category stays missing
            } else {
                value = unscale();
                if (column.kind != ColumnKind::Continuous) value = std::round(value);
            }
            table.values.push_back(std::isnan(value) ? value : std::clamp(value, column.min, column.max));
        }
        if (!label_.empty()) table.values.push_back(class_values_.at(rows.labels.at(i)));
    }
    return table;
}

Table Preprocessor::to_training_codes(const Table& table, const std::string& source) const {
    Table codes;
    std::vector<size_t> indices;
    std::vector<CellReader> readers;
    for (const auto& column : features_) {
        codes.columns.push_back(column.name);
        indices.push_back(table.column_index(column.name, source));
        readers.emplace_back(table, indices.back(), column.level_names, source, not_number_hint(column));
    }
    if (!label_.empty()) {
        codes.columns.push_back(label_);
        indices.push_back(table.column_index(label_, source));
        readers.emplace_back(table, indices.back(), class_names_, source, "where the training labels are numbers");
    }
    codes.row_lines = table.row_lines;
    codes.values.reserve(table.rows() * readers.size());
    for (size_t i = 0; i < table.rows(); ++i)
        for (const auto& read : readers) codes.values.push_back(read(i));
    return codes;
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
    // The code ↔ level table of string categories (spec R4): code k is level_names[k].
    for (size_t f = 0; f < features_.size(); ++f)
        if (!features_[f].level_names.empty()) json["columns"][f]["level_names"] = features_[f].level_names;
    if (!class_names_.empty()) json["class_names"] = class_names_;
    json["scale_lo"] = scale_lo_;
    json["scale_hi"] = scale_hi_;
    return json;
}

Preprocessor Preprocessor::from_json(const nlohmann::ordered_json& json) {
    Preprocessor prep;
    prep.label_ = json.at("label").get<std::string>();
    prep.class_values_ = json.at("class_values").get<std::vector<double>>();
    prep.class_counts_ = json.at("class_counts").get<std::vector<size_t>>();
    if (json.contains("class_names")) prep.class_names_ = json.at("class_names").get<std::vector<std::string>>();
    for (const auto& entry : json.at("columns")) {
        FeatureColumn column;
        column.name = entry.at("name").get<std::string>();
        column.kind = column_kind_from_string(entry.at("kind").get<std::string>());
        column.min = entry.at("min").get<double>();
        column.max = entry.at("max").get<double>();
        column.levels = entry.at("levels").get<int>();
        if (entry.contains("level_names")) column.level_names = entry.at("level_names").get<std::vector<std::string>>();
        prep.features_.push_back(column);
    }
    prep.scale_lo_ = json.at("scale_lo").get<std::vector<double>>();
    prep.scale_hi_ = json.at("scale_hi").get<std::vector<double>>();
    return prep;
}

}  // namespace onestep::tabular
