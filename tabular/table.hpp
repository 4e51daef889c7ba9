// Numeric tables read from and written to CSV files with a header line.
// Readers report the file, line and column of every malformed cell.
//
//   Table table = read_csv("iris.csv");                 // header + numeric rows
//   double first = table.at(0, table.column_index("sepal_length", "iris.csv"));
//   write_csv(table, "copy.csv");
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace onestep::tabular {

struct Table {
    std::vector<std::string> columns;
    std::vector<double> values;   // row-major, rows() × columns.size(); NaN marks a missing cell

    size_t rows() const { return columns.empty() ? 0 : values.size() / columns.size(); }
    double at(size_t row, size_t column) const { return values[row * columns.size() + column]; }
    double& at(size_t row, size_t column) { return values[row * columns.size() + column]; }
    // Index of NAME; a UserError naming SOURCE and the known columns when absent.
    size_t column_index(const std::string& name, const std::string& source) const;
};

// Reads a comma-separated file whose first line is the header. Empty cells, "NA", "nan" and "?"
// are missing values, accepted only when ALLOW_MISSING; any other non-numeric cell is an error.
Table read_csv(const std::string& path, bool allow_missing = false);
// The same, from TEXT (SOURCE names it in errors).
Table parse_csv(const std::string& text, const std::string& source, bool allow_missing = false);
// scikit-learn's bundled format: first line "n_samples,n_features,class names...", then rows with
// the integer class code last. Columns are named FEATURE_NAMES plus LABEL_NAME.
Table read_sklearn_csv(const std::string& path, const std::vector<std::string>& feature_names,
                       const std::string& label_name);

// Splits TABLE by the class in column LABEL: within each class a seeded shuffle sends the first
// ⌈TEST_FRACTION·n_c⌉ rows to TEST, the rest to TRAIN; both keep the original row order.
void stratified_split(const Table& table, size_t label, double test_fraction, uint64_t seed, Table& train,
                      Table& test);

// Writes TABLE with a header; integral values are written without a fractional part.
void write_csv(const Table& table, const std::string& path);

}  // namespace onestep::tabular
