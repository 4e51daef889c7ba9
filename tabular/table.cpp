// CSV and ARFF reading and CSV writing for the tabular generators: numbers and factorized text,
// strict about shape, with errors that point at the offending line and column.
#include "tabular/table.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"

namespace onestep::tabular {
namespace {

struct Cell {
    std::string text;
    bool quoted = false;
};

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Splits one line on DELIMITER. Blanks around a cell are dropped; a cell opened by one of QUOTES
// runs to the matching quote, may hold delimiters, and a doubled quote inside stands for one.
std::vector<Cell> split_cells(const std::string& line, char delimiter, const std::string& quotes,
                              const std::string& source, size_t line_number) {
    std::vector<Cell> cells;
    size_t pos = 0;
    while (true) {
        Cell cell;
        while (pos < line.size() && is_blank(line[pos])) ++pos;
        if (pos < line.size() && quotes.find(line[pos]) != std::string::npos) {
            char quote = line[pos++];
            cell.quoted = true;
            while (true) {
                if (pos >= line.size())
                    throw UserError(source + ":" + std::to_string(line_number) + ": unterminated " + quote +
                                    " quote in cell " + std::to_string(cells.size() + 1));
                if (line[pos] == quote) {
                    if (pos + 1 < line.size() && line[pos + 1] == quote) {
                        cell.text += quote;
                        pos += 2;
                        continue;
                    }
                    ++pos;
                    break;
                }
                cell.text += line[pos++];
            }
            while (pos < line.size() && line[pos] != delimiter) ++pos;   // blanks after the quote
        } else {
            size_t end = line.find(delimiter, pos);
            if (end == std::string::npos) end = line.size();
            cell.text = line.substr(pos, end - pos);
            while (!cell.text.empty() && is_blank(cell.text.back())) cell.text.pop_back();
            pos = end;
        }
        cells.push_back(std::move(cell));
        if (pos >= line.size()) break;
        ++pos;   // the delimiter
    }
    return cells;
}

bool is_missing_token(const std::string& cell) {
    return cell.empty() || cell == "NA" || cell == "nan" || cell == "NaN" || cell == "?";
}

bool is_missing(const Cell& cell) { return cell.text.empty() || (!cell.quoted && is_missing_token(cell.text)); }

std::string format_number(double value) {
    char buffer[64];
    if (std::isnan(value))
        buffer[0] = '\0';
    else if (value == std::round(value) && std::fabs(value) < 1e15)
        std::snprintf(buffer, sizeof buffer, "%.0f", value);
    else
        std::snprintf(buffer, sizeof buffer, "%.9g", value);
    return buffer;
}

// Quotes TEXT when a reader would otherwise split it, trim it or take it for a missing value.
std::string csv_field(const std::string& text) {
    bool plain = !text.empty() && !is_missing_token(text) && text.find_first_of(",\"\n") == std::string::npos &&
                 !is_blank(text.front()) && !is_blank(text.back());
    if (plain) return text;
    std::string quoted = "\"";
    for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UserError(path + ": cannot open for reading");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

// Assigns each distinct string of a text column its position in byte order, whatever the row order.
class Factorizer {
  public:
    size_t id(const std::string& text) { return ids_.emplace(text, ids_.size()).first->second; }
    // The sorted levels; RANK maps a first-seen id to its level index.
    std::vector<std::string> finish(std::vector<size_t>& rank) const {
        std::vector<std::string> levels;
        rank.assign(ids_.size(), 0);
        for (const auto& [text, first_seen] : ids_) {
            rank[first_seen] = levels.size();
            levels.push_back(text);
        }
        return levels;
    }

  private:
    std::map<std::string, size_t> ids_;
};

}  // namespace

bool parse_number(const std::string& text, double& value) {
    if (text.empty()) return false;
    char* end = nullptr;
    double parsed = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return false;
    value = parsed;
    return true;
}

size_t Table::column_index(const std::string& name, const std::string& source) const {
    for (size_t j = 0; j < columns.size(); ++j)
        if (columns[j] == name) return j;
    std::string known;
    for (const auto& column : columns) known += (known.empty() ? "" : ", ") + column;
    throw UserError(source + ": no column named '" + name + "' (columns: " + known + ")");
}

std::string Table::cell_text(size_t row, size_t column) const {
    double value = at(row, column);
    if (std::isnan(value)) return "";
    if (!is_text(column)) return format_number(value);
    return levels[column].at(static_cast<size_t>(value));
}

std::string Table::where(size_t row, size_t column, const std::string& source) const {
    std::string name = " (" + columns.at(column) + ")";
    if (row < row_lines.size())
        return source + ":" + std::to_string(row_lines[row]) + ": column " + std::to_string(column + 1) + name;
    return source + ": data row " + std::to_string(row + 1) + ", column " + std::to_string(column + 1) + name;
}

Table Table::take_rows(const std::vector<size_t>& rows) const {
    Table out;
    out.columns = columns;
    out.levels = levels;
    out.text_lines = text_lines;
    const size_t width = columns.size();
    out.values.reserve(rows.size() * width);
    for (size_t i : rows) {
        out.values.insert(out.values.end(), values.begin() + i * width, values.begin() + (i + 1) * width);
        if (i < row_lines.size()) out.row_lines.push_back(row_lines[i]);
    }
    if (out.row_lines.size() != rows.size()) out.row_lines.clear();
    return out;
}

Table parse_csv(const std::string& text, const std::string& source, bool allow_missing) {
    Table table;
    auto for_each_row = [&](auto&& visit) {
        std::istringstream stream(text);
        std::string line;
        size_t line_number = 0;
        bool header = true;
        while (std::getline(stream, line)) {
            ++line_number;
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            std::vector<Cell> cells = split_cells(line, ',', "\"", source, line_number);
            if (header) {
                header = false;
                if (table.columns.empty())
                    for (const auto& cell : cells) table.columns.push_back(cell.text);
                // Spreadsheets may start the file with a UTF-8 byte-order mark.
                if (table.columns[0].rfind("\xEF\xBB\xBF", 0) == 0) table.columns[0].erase(0, 3);
                continue;
            }
            if (cells.size() != table.columns.size())
                throw UserError(source + ":" + std::to_string(line_number) + ": " + std::to_string(cells.size()) +
                                " cells, but the header has " + std::to_string(table.columns.size()) + " columns");
            visit(cells, line_number);
        }
    };
    auto where = [&](size_t line_number, size_t column) {
        return source + ":" + std::to_string(line_number) + ": column " + std::to_string(column + 1) + " (" +
               table.columns[column] + ")";
    };

    // First pass: which columns hold text (the first text line of each is kept for errors).
    size_t data_rows = 0;
    for_each_row([&](const std::vector<Cell>& cells, size_t line_number) {
        if (data_rows++ == 0) table.text_lines.assign(table.columns.size(), 0);
        for (size_t j = 0; j < cells.size(); ++j) {
            double value;
            if (is_missing(cells[j])) {
                if (!allow_missing)
                    throw UserError(where(line_number, j) + ": missing value '" + cells[j].text +
                                    "' where a value is required");
            } else if (!parse_number(cells[j].text, value)) {
                if (table.text_lines[j] == 0) table.text_lines[j] = line_number;
            } else if (std::isnan(value) && !allow_missing) {
                throw UserError(where(line_number, j) + ": NaN where a number is required");
            }
        }
    });
    if (table.columns.empty()) throw UserError(source + ": empty file, expected a header line");
    if (data_rows == 0) throw UserError(source + ": header but no data rows");
    bool any_text = std::any_of(table.text_lines.begin(), table.text_lines.end(), [](size_t l) { return l > 0; });

    // Second pass: numbers, and first-seen ids of text cells (sorted into levels afterwards).
    std::vector<Factorizer> factorizers(table.columns.size());
    for_each_row([&](const std::vector<Cell>& cells, size_t line_number) {
        table.row_lines.push_back(line_number);
        for (size_t j = 0; j < cells.size(); ++j) {
            double value = std::nan("");
            if (is_missing(cells[j])) {
            } else if (table.text_lines[j] > 0) {
                value = static_cast<double>(factorizers[j].id(cells[j].text));
            } else {
                parse_number(cells[j].text, value);
            }
            table.values.push_back(value);
        }
    });
    if (any_text) {
        table.levels.assign(table.columns.size(), {});
        const size_t width = table.columns.size();
        for (size_t j = 0; j < width; ++j) {
            if (table.text_lines[j] == 0) continue;
            std::vector<size_t> rank;
            table.levels[j] = factorizers[j].finish(rank);
            for (size_t i = 0; i < table.rows(); ++i) {
                double& value = table.values[i * width + j];
                if (!std::isnan(value)) value = static_cast<double>(rank[static_cast<size_t>(value)]);
            }
        }
    }
    return table;
}

Table read_csv(const std::string& path, bool allow_missing) {
    return parse_csv(read_file(path), path, allow_missing);
}

Table parse_sklearn_csv(const std::string& text, const std::string& source,
                        const std::vector<std::string>& feature_names, const std::string& label_name) {
    size_t first_break = text.find('\n');
    if (first_break == std::string::npos) throw UserError(source + ": expected a count line and data rows");
    std::vector<Cell> counts = split_cells(text.substr(0, first_break), ',', "\"", source, 1);
    double announced_rows = 0, announced_features = 0;
    if (counts.size() < 2 || !parse_number(counts[0].text, announced_rows) ||
        !parse_number(counts[1].text, announced_features) || announced_features != feature_names.size())
        throw UserError(source + ":1: expected 'n_samples," + std::to_string(feature_names.size()) + ",...'");
    // Replace the count line by a header, then read as an ordinary CSV; blank lines keep the line numbers.
    std::string header;
    for (const auto& name : feature_names) header += csv_field(name) + ",";
    header += csv_field(label_name);
    Table table = parse_csv(header + "\n" + text.substr(first_break + 1), source);
    if (table.rows() != announced_rows)
        throw UserError(source + ": the count line announces " + counts[0].text + " rows, the file holds " +
                        std::to_string(table.rows()));
    if (!table.levels.empty())
        for (size_t j = 0; j < table.columns.size(); ++j)
            if (table.is_text(j))
                throw UserError(source + ":" + std::to_string(table.text_lines[j]) + ": column " +
                                std::to_string(j + 1) + " (" + table.columns[j] + "): text where a number is required");
    return table;
}

Table read_sklearn_csv(const std::string& path, const std::vector<std::string>& feature_names,
                       const std::string& label_name) {
    return parse_sklearn_csv(read_file(path), path, feature_names, label_name);
}

Table parse_arff(const std::string& text, const std::string& source, bool allow_missing) {
    enum class Type { Numeric, Nominal, String };
    Table table;
    std::vector<Type> types;
    std::vector<std::map<std::string, size_t>> nominal_codes;
    std::vector<Factorizer> strings;
    bool in_data = false;
    std::istringstream stream(text);
    std::string line;
    size_t line_number = 0;
    auto at_line = [&]() { return source + ":" + std::to_string(line_number) + ": "; };
    while (std::getline(stream, line)) {
        ++line_number;
        size_t start = line.find_first_not_of(" \t\r");
        if (start == std::string::npos || line[start] == '%') continue;
        line = line.substr(start);
        while (!line.empty() && is_blank(line.back())) line.pop_back();
        if (!in_data) {
            size_t keyword_end = line.find_first_of(" \t");
            std::string keyword = lower(line.substr(0, keyword_end));
            std::string rest = keyword_end == std::string::npos ? "" : line.substr(keyword_end);
            rest.erase(0, rest.find_first_not_of(" \t"));
            if (keyword == "@relation") continue;
            if (keyword == "@data") {
                if (table.columns.empty()) throw UserError(at_line() + "@data before any @attribute");
                in_data = true;
                continue;
            }
            if (keyword != "@attribute")
                throw UserError(at_line() + "expected @relation, @attribute or @data, found '" + line + "'");
            // The name: quoted, or up to the first blank.
            std::string name, type;
            if (!rest.empty() && (rest[0] == '\'' || rest[0] == '"')) {
                size_t close = rest.find(rest[0], 1);
                if (close == std::string::npos) throw UserError(at_line() + "unterminated quote in the attribute name");
                name = rest.substr(1, close - 1);
                type = rest.substr(close + 1);
            } else {
                size_t end = rest.find_first_of(" \t{");
                name = rest.substr(0, end);
                type = end == std::string::npos ? "" : rest.substr(end);
            }
            type.erase(0, type.find_first_not_of(" \t"));
            if (name.empty() || type.empty()) throw UserError(at_line() + "expected '@attribute NAME TYPE'");
            table.columns.push_back(name);
            table.levels.emplace_back();
            table.text_lines.push_back(0);
            nominal_codes.emplace_back();
            strings.emplace_back();
            if (type[0] == '{') {
                size_t close = type.rfind('}');
                if (close == std::string::npos) throw UserError(at_line() + "nominal values without a closing '}'");
                for (const Cell& value : split_cells(type.substr(1, close - 1), ',', "'\"", source, line_number)) {
                    if (!nominal_codes.back().emplace(value.text, table.levels.back().size()).second)
                        throw UserError(at_line() + "attribute '" + name + "' declares '" + value.text + "' twice");
                    table.levels.back().push_back(value.text);
                }
                if (table.levels.back().empty()) throw UserError(at_line() + "attribute '" + name + "' has no values");
                types.push_back(Type::Nominal);
            } else {
                std::string kind = lower(type.substr(0, type.find_first_of(" \t")));
                if (kind == "numeric" || kind == "real" || kind == "integer")
                    types.push_back(Type::Numeric);
                else if (kind == "string")
                    types.push_back(Type::String);
                else
                    throw UserError(at_line() + "attribute '" + name + "' has type '" + kind +
                                    "'; accepted: numeric, real, integer, string, {values}");
            }
            continue;
        }
        if (line[0] == '{') throw UserError(at_line() + "sparse ARFF rows are not supported; write dense rows");
        std::vector<Cell> cells = split_cells(line, ',', "'\"", source, line_number);
        if (cells.size() != table.columns.size())
            throw UserError(at_line() + std::to_string(cells.size()) + " cells, but " +
                            std::to_string(table.columns.size()) + " attributes are declared");
        table.row_lines.push_back(line_number);
        for (size_t j = 0; j < cells.size(); ++j) {
            const Cell& cell = cells[j];
            std::string where = at_line() + "column " + std::to_string(j + 1) + " (" + table.columns[j] + ")";
            if (!cell.quoted && cell.text == "?") {
                if (!allow_missing) throw UserError(where + ": missing value '?' where a value is required");
                table.values.push_back(std::nan(""));
                continue;
            }
            double value = 0;
            if (types[j] == Type::Numeric) {
                if (!parse_number(cell.text, value))
                    throw UserError(where + ": '" + cell.text + "' is not a number");
            } else if (types[j] == Type::Nominal) {
                auto found = nominal_codes[j].find(cell.text);
                if (found == nominal_codes[j].end()) {
                    std::string declared;
                    for (const auto& level : table.levels[j]) declared += (declared.empty() ? "" : ",") + level;
                    throw UserError(where + ": '" + cell.text + "' is not one of the declared values {" + declared +
                                    "}");
                }
                value = static_cast<double>(found->second);
            } else {
                value = static_cast<double>(strings[j].id(cell.text));
            }
            if (types[j] != Type::Numeric && table.text_lines[j] == 0) table.text_lines[j] = line_number;
            table.values.push_back(value);
        }
    }
    if (!in_data) throw UserError(source + ": no @data section");
    if (table.rows() == 0) throw UserError(source + ": @data holds no rows");
    for (size_t j = 0; j < table.columns.size(); ++j) {
        if (types[j] != Type::String) continue;
        std::vector<size_t> rank;
        table.levels[j] = strings[j].finish(rank);
        for (size_t i = 0; i < table.rows(); ++i) {
            double& value = table.at(i, j);
            if (!std::isnan(value)) value = static_cast<double>(rank[static_cast<size_t>(value)]);
        }
    }
    return table;
}

Table read_arff(const std::string& path, bool allow_missing) {
    return parse_arff(read_file(path), path, allow_missing);
}

Table read_table(const std::string& path, bool allow_missing) {
    size_t dot = path.rfind('.');
    std::string extension = dot == std::string::npos ? "" : lower(path.substr(dot));
    if (extension == ".csv") return read_csv(path, allow_missing);
    if (extension == ".arff") return read_arff(path, allow_missing);
    throw UserError(path + ": unknown table format '" + extension + "'; accepted: .csv, .arff");
}

void stratified_split(const Table& table, size_t label, double test_fraction, uint64_t seed, Table& train,
                      Table& test) {
    std::map<double, std::vector<size_t>> by_class;
    for (size_t i = 0; i < table.rows(); ++i) {
        double value = table.at(i, label);
        if (std::isnan(value)) throw UserError(table.where(i, label, "split") + ": labels must not be missing");
        by_class[value].push_back(i);
    }
    std::mt19937_64 rng(seed);
    std::vector<bool> in_test(table.rows(), false);
    for (auto& [value, rows] : by_class) {
        std::shuffle(rows.begin(), rows.end(), rng);
        size_t count = static_cast<size_t>(std::ceil(test_fraction * rows.size() - 1e-9));
        for (size_t k = 0; k < count && k < rows.size(); ++k) in_test[rows[k]] = true;
    }
    std::vector<size_t> train_rows, test_rows;
    for (size_t i = 0; i < table.rows(); ++i) (in_test[i] ? test_rows : train_rows).push_back(i);
    train = table.take_rows(train_rows);
    test = table.take_rows(test_rows);
}

void shuffle_split(const Table& table, double test_fraction, uint64_t seed, Table& train, Table& test) {
    std::vector<size_t> order(table.rows());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    size_t count = std::min(order.size(), static_cast<size_t>(std::ceil(test_fraction * order.size() - 1e-9)));
    std::vector<bool> in_test(table.rows(), false);
    for (size_t k = 0; k < count; ++k) in_test[order[k]] = true;
    std::vector<size_t> train_rows, test_rows;
    for (size_t i = 0; i < table.rows(); ++i) (in_test[i] ? test_rows : train_rows).push_back(i);
    train = table.take_rows(train_rows);
    test = table.take_rows(test_rows);
}

std::string format_csv(const Table& table) {
    std::string out;
    for (size_t j = 0; j < table.columns.size(); ++j) out += (j ? "," : "") + csv_field(table.columns[j]);
    out += "\n";
    for (size_t i = 0; i < table.rows(); ++i) {
        for (size_t j = 0; j < table.columns.size(); ++j) {
            if (j) out += ",";
            double value = table.at(i, j);
            if (std::isnan(value)) continue;
            out += table.is_text(j) ? csv_field(table.levels[j].at(static_cast<size_t>(value))) : format_number(value);
        }
        out += "\n";
    }
    return out;
}

void write_csv(const Table& table, const std::string& path) { write_file_atomic(path, format_csv(table)); }

}  // namespace onestep::tabular
