// Tables read from and written to CSV and ARFF files: numbers, and text columns factorized into
// level strings. Readers report the file, line and column of every malformed cell.
//
//   Table table = read_table("congress.csv", true);     // header + rows; "?" cells are NaN
//   double first = table.at(0, table.column_index("V1", "congress.csv"));
//   std::string vote = table.cell_text(0, 0);           // "y": the level string of a text cell
//   write_csv(table, "copy.csv");                        // text columns written as their strings
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace onestep::tabular {

struct Table {
    std::vector<std::string> columns;
    std::vector<double> values;   // row-major, rows() × columns.size(); NaN marks a missing cell
    // Per column: the level strings of a text column, whose cells hold the index of their level
    // (0, 1, ...); empty for a numeric column. May be shorter than columns (all numeric then).
    std::vector<std::vector<std::string>> levels;
    // Per column: the file line of the first text cell of a text column (0: numeric or unknown).
    std::vector<size_t> text_lines;
    // Per row: its line in the source file, for error messages; empty when the rows were built in
    // memory (errors then name the data row).
    std::vector<size_t> row_lines;

    size_t rows() const { return columns.empty() ? 0 : values.size() / columns.size(); }
    double at(size_t row, size_t column) const { return values[row * columns.size() + column]; }
    double& at(size_t row, size_t column) { return values[row * columns.size() + column]; }
    // Index of NAME; a UserError naming SOURCE and the known columns when absent.
    size_t column_index(const std::string& name, const std::string& source) const;

    bool is_text(size_t column) const { return column < levels.size() && !levels[column].empty(); }
    // The cell as written in a file: its level string for a text column, the number otherwise,
    // "" when missing.
    std::string cell_text(size_t row, size_t column) const;
    // "SOURCE:LINE: column J (NAME)", or "SOURCE: data row I, column J (NAME)" without row_lines.
    std::string where(size_t row, size_t column, const std::string& source) const;
    // The rows ROWS (in that order) with the same columns, levels and line numbers.
    Table take_rows(const std::vector<size_t>& rows) const;
};

// True when TEXT is one whole number (strtod syntax); VALUE is written only then.
bool parse_number(const std::string& text, double& value);

// Reads a comma-separated file whose first line is the header. Empty cells and unquoted "NA",
// "nan", "NaN" and "?" are missing values, accepted only when ALLOW_MISSING. A column whose
// non-missing cells are not all numbers becomes a text column; its levels are its distinct
// strings in byte order (so "10" < "9" < "a"), which makes the codes independent of row order.
// Quoted cells may hold commas and doubled quotes; a quoted "?" or "NA" is text, not missing.
Table read_csv(const std::string& path, bool allow_missing = false);
// The same, from TEXT (SOURCE names it in errors).
Table parse_csv(const std::string& text, const std::string& source, bool allow_missing = false);
// scikit-learn's bundled format: first line "n_samples,n_features,class names...", then rows with
// the integer class code last. Columns are named FEATURE_NAMES plus LABEL_NAME.
Table read_sklearn_csv(const std::string& path, const std::vector<std::string>& feature_names,
                       const std::string& label_name);
// The same format from TEXT (SOURCE names it in errors).
Table parse_sklearn_csv(const std::string& text, const std::string& source,
                        const std::vector<std::string>& feature_names, const std::string& label_name);

// Weka's ARFF (dense rows): @relation, @attribute NAME numeric|real|integer|string|{a,b,...} with
// quoted names and values, @data, "?" for missing cells (errors when not ALLOW_MISSING), "%"
// comments. Nominal attributes become text columns whose levels keep the declared order.
Table read_arff(const std::string& path, bool allow_missing = true);
Table parse_arff(const std::string& text, const std::string& source, bool allow_missing = true);
// read_csv or read_arff by the extension (.csv, .arff, either case); other extensions are errors.
Table read_table(const std::string& path, bool allow_missing = false);

// Splits TABLE by the class in column LABEL: within each class a seeded shuffle sends the first
// ⌈TEST_FRACTION·n_c⌉ rows to TEST, the rest to TRAIN; both keep the original row order.
void stratified_split(const Table& table, size_t label, double test_fraction, uint64_t seed, Table& train,
                      Table& test);
// The same without classes (regression): the first ⌈TEST_FRACTION·n⌉ rows of a seeded shuffle.
void shuffle_split(const Table& table, double test_fraction, uint64_t seed, Table& train, Table& test);

// Writes TABLE with a header (atomically: a reader sees the old file or the whole new one).
// Integral values are written without a fractional part, text cells as their level strings
// (quoted when they hold a comma, a quote or blanks, or read as a missing-value token), missing
// cells as empty.
void write_csv(const Table& table, const std::string& path);
// The text write_csv writes.
std::string format_csv(const Table& table);

}  // namespace onestep::tabular
