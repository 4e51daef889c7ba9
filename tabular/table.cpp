// CSV reading and writing for the tabular generators: numbers only, strict about shape, with
// errors that point at the offending line and column.
#include "tabular/table.hpp"

#include <cmath>
#include <cstdio>
#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/error.hpp"

namespace onestep::tabular {
namespace {

std::vector<std::string> split_line(const std::string& line) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream stream(line);
    while (std::getline(stream, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    for (auto& value : cells) {
        // Trim blanks and optional quotes so "a", a and  a  read the same.
        size_t first = value.find_first_not_of(" \t\r\"");
        size_t last = value.find_last_not_of(" \t\r\"");
        value = first == std::string::npos ? std::string() : value.substr(first, last - first + 1);
    }
    return cells;
}

bool is_missing_token(const std::string& cell) {
    return cell.empty() || cell == "NA" || cell == "nan" || cell == "NaN" || cell == "?";
}

std::string where(const std::string& source, size_t line, size_t column, const std::string& name) {
    return source + ":" + std::to_string(line) + ": column " + std::to_string(column + 1) + " (" + name + ")";
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UserError(path + ": cannot open for reading");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

size_t Table::column_index(const std::string& name, const std::string& source) const {
    for (size_t j = 0; j < columns.size(); ++j)
        if (columns[j] == name) return j;
    std::string known;
    for (const auto& column : columns) known += (known.empty() ? "" : ", ") + column;
    throw UserError(source + ": no column named '" + name + "' (columns: " + known + ")");
}

Table parse_csv(const std::string& text, const std::string& source, bool allow_missing) {
    Table table;
    std::istringstream stream(text);
    std::string line;
    size_t line_number = 0;
    while (std::getline(stream, line)) {
        ++line_number;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::vector<std::string> cells = split_line(line);
        if (table.columns.empty()) {
            table.columns = cells;
            continue;
        }
        if (cells.size() != table.columns.size())
            throw UserError(source + ":" + std::to_string(line_number) + ": " + std::to_string(cells.size()) +
                            " cells, but the header has " + std::to_string(table.columns.size()) + " columns");
        for (size_t j = 0; j < cells.size(); ++j) {
            const std::string& cell = cells[j];
            if (is_missing_token(cell)) {
                if (!allow_missing)
                    throw UserError(where(source, line_number, j, table.columns[j]) + ": missing value '" + cell +
                                    "' where a number is required");
                table.values.push_back(std::nan(""));
                continue;
            }
            char* end = nullptr;
            double value = std::strtod(cell.c_str(), &end);
            if (end != cell.c_str() + cell.size())
                throw UserError(where(source, line_number, j, table.columns[j]) + ": '" + cell +
                                "' is not a number");
            if (std::isnan(value) && !allow_missing)
                throw UserError(where(source, line_number, j, table.columns[j]) + ": NaN where a number is required");
            table.values.push_back(value);
        }
    }
    if (table.columns.empty()) throw UserError(source + ": empty file, expected a header line");
    if (table.rows() == 0) throw UserError(source + ": header but no data rows");
    return table;
}

Table read_csv(const std::string& path, bool allow_missing) {
    return parse_csv(read_file(path), path, allow_missing);
}

Table read_sklearn_csv(const std::string& path, const std::vector<std::string>& feature_names,
                       const std::string& label_name) {
    std::string text = read_file(path);
    size_t first_break = text.find('\n');
    if (first_break == std::string::npos) throw UserError(path + ": expected a count line and data rows");
    std::vector<std::string> counts = split_line(text.substr(0, first_break));
    if (counts.size() < 2 || std::stoul(counts[1]) != feature_names.size())
        throw UserError(path + ":1: expected 'n_samples," + std::to_string(feature_names.size()) + ",...'");
    // Replace the count line by a header, then read as an ordinary CSV.
    std::string header;
    for (const auto& name : feature_names) header += name + ",";
    header += label_name;
    Table table = parse_csv(header + "\n" + text.substr(first_break + 1), path);
    if (table.rows() != std::stoul(counts[0]))
        throw UserError(path + ": the count line announces " + counts[0] + " rows, the file holds " +
                        std::to_string(table.rows()));
    return table;
}

void stratified_split(const Table& table, size_t label, double test_fraction, uint64_t seed, Table& train,
                      Table& test) {
    train.columns = test.columns = table.columns;
    train.values.clear();
    test.values.clear();
    std::map<double, std::vector<size_t>> by_class;
    for (size_t i = 0; i < table.rows(); ++i) by_class[table.at(i, label)].push_back(i);
    std::mt19937_64 rng(seed);
    std::vector<bool> in_test(table.rows(), false);
    for (auto& [value, rows] : by_class) {
        std::shuffle(rows.begin(), rows.end(), rng);
        size_t count = static_cast<size_t>(std::ceil(test_fraction * rows.size() - 1e-9));
        for (size_t k = 0; k < count && k < rows.size(); ++k) in_test[rows[k]] = true;
    }
    const size_t width = table.columns.size();
    for (size_t i = 0; i < table.rows(); ++i) {
        Table& target = in_test[i] ? test : train;
        target.values.insert(target.values.end(), table.values.begin() + i * width,
                             table.values.begin() + (i + 1) * width);
    }
}

void write_csv(const Table& table, const std::string& path) {
    std::ofstream out(path);
    if (!out) throw UserError(path + ": cannot open for writing");
    for (size_t j = 0; j < table.columns.size(); ++j) out << (j ? "," : "") << table.columns[j];
    out << "\n";
    char buffer[64];
    for (size_t i = 0; i < table.rows(); ++i) {
        for (size_t j = 0; j < table.columns.size(); ++j) {
            double value = table.at(i, j);
            if (std::isnan(value))
                buffer[0] = '\0';
            else if (value == std::round(value) && std::fabs(value) < 1e15)
                std::snprintf(buffer, sizeof buffer, "%.0f", value);
            else
                std::snprintf(buffer, sizeof buffer, "%.9g", value);
            out << (j ? "," : "") << buffer;
        }
        out << "\n";
    }
    if (!out) throw UserError(path + ": write failed");
}

}  // namespace onestep::tabular
