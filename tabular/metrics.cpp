// Coverage, TSTR efficiency and the discriminator score of spec §10, computed as the paper's
// reference code does (distances block-wise in double, boosters through the C API wrapper).
#include "tabular/metrics.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "core/error.hpp"
#include "tabular/xgb.hpp"

namespace onestep::tabular {
namespace {

// Rows handed to a worker at a time: small enough to balance the early-exit scans of coverage().
constexpr size_t kRowBlock = 64;
// Points compared with a row block at a time, so that they stay in cache across its rows.
constexpr size_t kColumnTile = 512;
// Share of real rows that must count as covered by R itself for a k to be accepted (the reference).
constexpr double kSelfCoverage = 0.95;

double l1_distance(const double* a, const double* b, size_t dim) {
    double distance = 0;
    for (size_t k = 0; k < dim; ++k) distance += std::fabs(a[k] - b[k]);
    return distance;
}

// Runs BODY(begin, end) over blocks of [0, rows) on THREADS workers (≤ 0: all cores).
template <class Body>
void for_row_blocks(size_t rows, int threads, const Body& body) {
    size_t workers = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
    workers = std::min(workers, (rows + kRowBlock - 1) / kRowBlock);
    std::atomic<size_t> next{0};
    auto work = [&]() {
        for (size_t begin = next.fetch_add(kRowBlock); begin < rows; begin = next.fetch_add(kRowBlock))
            body(begin, std::min(rows, begin + kRowBlock));
    };
    if (workers <= 1) {
        work();
        return;
    }
    std::vector<std::thread> pool;
    for (size_t w = 0; w < workers; ++w) pool.emplace_back(work);
    for (auto& thread : pool) thread.join();
}

std::vector<double> column_values(const Table& table, const std::string& name) {
    size_t column = table.column_index(name, "table");
    std::vector<double> values(table.rows());
    for (size_t i = 0; i < table.rows(); ++i) values[i] = table.at(i, column);
    return values;
}

std::vector<double> distinct_sorted(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return values;
}

// Model inputs: numeric columns as they are, categorical ones as indicators of LEVELS (all of them,
// or levels[1..] for reference-level coding, where any other value is all zeros).
struct InputColumn {
    std::string name;
    bool categorical = false;
    std::vector<double> levels;
};

struct Inputs {
    size_t rows = 0, width = 0;
    std::vector<float> values;
};

std::vector<InputColumn> input_columns(const MetricSchema& schema, const std::vector<const Table*>& level_sources,
                                       bool with_target, bool drop_first) {
    std::vector<InputColumn> inputs;
    for (const auto& name : schema.columns) {
        bool is_target = name == schema.target;
        if (is_target && !with_target) continue;
        InputColumn input{name, schema.categorical.count(name) > 0 || (is_target && schema.classification), {}};
        if (input.categorical) {
            for (const Table* table : level_sources) {
                std::vector<double> values = column_values(*table, name);
                input.levels.insert(input.levels.end(), values.begin(), values.end());
            }
            input.levels = distinct_sorted(input.levels);
            if (drop_first && !input.levels.empty()) input.levels.erase(input.levels.begin());
        }
        inputs.push_back(std::move(input));
    }
    return inputs;
}

Inputs encode(const Table& table, const std::vector<InputColumn>& columns) {
    Inputs inputs;
    inputs.rows = table.rows();
    std::vector<size_t> indices;
    for (const auto& column : columns) {
        indices.push_back(table.column_index(column.name, "table"));
        inputs.width += column.categorical ? column.levels.size() : 1;
    }
    inputs.values.reserve(inputs.rows * inputs.width);
    for (size_t i = 0; i < table.rows(); ++i) {
        for (size_t c = 0; c < columns.size(); ++c) {
            double value = table.at(i, indices[c]);
            if (!columns[c].categorical) {
                inputs.values.push_back(static_cast<float>(value));
                continue;
            }
            for (double level : columns[c].levels) inputs.values.push_back(value == level ? 1.0f : 0.0f);
        }
    }
    return inputs;
}

// 100 rounds of XGBoost with the library's defaults except lambda = 0; predictions for TEST
// (rows × outputs, probabilities for the classification objectives).
std::vector<float> fit_predict(const Inputs& train, const std::vector<float>& labels, const Inputs& test,
                               const std::string& objective, size_t classes, int threads) {
    if (train.width == 0) throw UserError("the table has no feature columns besides the target");
    xgb::DMatrix matrix(train.values.data(), train.rows, train.width);
    matrix.set_labels(labels.data(), train.rows, 1);
    xgb::Booster booster(&matrix);
    std::vector<std::pair<std::string, std::string>> params = {
        {"objective", objective}, {"lambda", "0"},         {"max_depth", "6"},
        {"eta", "0.3"},           {"tree_method", "hist"}, {"base_score", "0.5"}};
    if (objective == "multi:softprob") params.emplace_back("num_class", std::to_string(classes));
    if (threads > 0) params.emplace_back("nthread", std::to_string(threads));
    booster.set_params(params);
    for (int round = 0; round < 100; ++round) booster.update(round, matrix);
    return booster.predict(test.values.data(), test.rows, test.width);
}

}  // namespace

std::pair<Points, Points> gower_pair(const Table& a, const Table& b, const Preprocessor& prep,
                                     const std::string& source_a, const std::string& source_b) {
    // One table holding both, so gower_points sees every level of either side.
    Table both = a;
    std::vector<size_t> from_b;
    for (const auto& name : a.columns) from_b.push_back(b.column_index(name, source_b));
    both.values.reserve((a.rows() + b.rows()) * a.columns.size());
    for (size_t i = 0; i < b.rows(); ++i)
        for (size_t column : from_b) both.values.push_back(b.at(i, column));
    Points joint = gower_points(both, prep, source_a + " and " + source_b);
    Points points_a, points_b;
    points_a.dim = points_b.dim = joint.dim;
    points_a.rows = a.rows();
    points_b.rows = b.rows();
    auto split = joint.values.begin() + static_cast<std::ptrdiff_t>(a.rows() * joint.dim);
    points_a.values.assign(joint.values.begin(), split);
    points_b.values.assign(split, joint.values.end());
    return {std::move(points_a), std::move(points_b)};
}

int coverage_k(const Points& real) {
    // Exact duplicates are runs of equal rows after a lexicographic sort (L1 distance 0 ⇔ equal rows).
    const size_t n = real.rows, dim = real.dim;
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    auto row = [&](size_t i) { return real.values.begin() + static_cast<std::ptrdiff_t>(i * dim); };
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
        return std::lexicographical_compare(row(x), row(x) + dim, row(y), row(y) + dim);
    });
    std::vector<size_t> rows_with_duplicates(n + 1, 0);   // [d]: rows having exactly d duplicates
    for (size_t begin = 0; begin < n;) {
        size_t end = begin + 1;
        while (end < n && std::equal(row(order[begin]), row(order[begin]) + dim, row(order[end]))) ++end;
        rows_with_duplicates[end - begin - 1] += end - begin;
        begin = end;
    }
    // coverage(R, R; k) = share of rows with fewer than k duplicates.
    size_t covered = 0;
    for (size_t k = 1; k <= n; ++k) {
        covered += rows_with_duplicates[k - 1];
        if (static_cast<double>(covered) / static_cast<double>(n) >= kSelfCoverage) return static_cast<int>(k) + 1;
    }
    throw std::invalid_argument("coverage_k: empty point set");
}

CoverageRadii coverage_radii(const Points& real, int k, int threads) {
    CoverageRadii radii;
    radii.k = k > 0 ? k : coverage_k(real);
    const size_t n = real.rows, dim = real.dim, kept = static_cast<size_t>(radii.k) + 1;
    if (n < kept)
        throw std::invalid_argument("coverage: k = " + std::to_string(radii.k) + " needs at least " +
                                    std::to_string(kept) + " rows, got " + std::to_string(n));
    radii.radius.assign(n, 0);
    for_row_blocks(n, threads, [&](size_t begin, size_t end) {
        // Per row of the block, the k+1 smallest distances so far (ascending), r itself included.
        std::vector<double> nearest((end - begin) * kept, std::numeric_limits<double>::infinity());
        for (size_t tile = 0; tile < n; tile += kColumnTile) {
            const size_t tile_end = std::min(n, tile + kColumnTile);
            for (size_t i = begin; i < end; ++i) {
                const double* point = &real.values[i * dim];
                double* best = &nearest[(i - begin) * kept];
                for (size_t j = tile; j < tile_end; ++j) {
                    double distance = l1_distance(point, &real.values[j * dim], dim);
                    if (distance >= best[kept - 1]) continue;
                    size_t slot = kept - 1;
                    for (; slot > 0 && best[slot - 1] > distance; --slot) best[slot] = best[slot - 1];
                    best[slot] = distance;
                }
            }
        }
        for (size_t i = begin; i < end; ++i) radii.radius[i] = nearest[(i - begin) * kept + kept - 1];
    });
    return radii;
}

double coverage(const Points& real, const CoverageRadii& radii, const Points& fake, int threads) {
    if (real.dim != fake.dim) throw std::invalid_argument("coverage: point sets of different dimension");
    if (radii.radius.size() != real.rows) throw std::invalid_argument("coverage: radii of another point set");
    if (real.rows == 0) throw std::invalid_argument("coverage: empty real set");
    std::vector<char> covered(real.rows, 0);
    for_row_blocks(real.rows, threads, [&](size_t begin, size_t end) {
        size_t open = end - begin;   // rows of the block not yet covered; stop when none is left
        for (size_t tile = 0; tile < fake.rows && open > 0; tile += kColumnTile) {
            const size_t tile_end = std::min(fake.rows, tile + kColumnTile);
            for (size_t i = begin; i < end; ++i) {
                const double* point = &real.values[i * real.dim];
                for (size_t j = tile; j < tile_end && !covered[i]; ++j)
                    if (l1_distance(point, &fake.values[j * fake.dim], real.dim) < radii.radius[i]) {
                        covered[i] = 1;
                        --open;
                    }
            }
        }
    });
    return static_cast<double>(std::count(covered.begin(), covered.end(), 1)) / static_cast<double>(real.rows);
}

double macro_f1(const std::vector<double>& truth, const std::vector<double>& predicted) {
    if (truth.size() != predicted.size()) throw std::invalid_argument("macro_f1: sizes differ");
    std::vector<double> classes = truth;
    classes.insert(classes.end(), predicted.begin(), predicted.end());
    classes = distinct_sorted(classes);
    if (classes.empty()) return 0;
    double sum = 0;
    for (double label : classes) {
        size_t tp = 0, fp = 0, fn = 0;
        for (size_t i = 0; i < truth.size(); ++i) {
            bool is_true = truth[i] == label, is_predicted = predicted[i] == label;
            tp += is_true && is_predicted;
            fp += !is_true && is_predicted;
            fn += is_true && !is_predicted;
        }
        size_t denominator = 2 * tp + fp + fn;
        sum += denominator == 0 ? 0.0 : 2.0 * static_cast<double>(tp) / static_cast<double>(denominator);
    }
    return sum / static_cast<double>(classes.size());
}

double r_squared(const std::vector<double>& truth, const std::vector<double>& predicted) {
    if (truth.size() != predicted.size() || truth.empty()) throw std::invalid_argument("r_squared: bad sizes");
    double mean = std::accumulate(truth.begin(), truth.end(), 0.0) / static_cast<double>(truth.size());
    double residual = 0, total = 0;
    for (size_t i = 0; i < truth.size(); ++i) {
        residual += (truth[i] - predicted[i]) * (truth[i] - predicted[i]);
        total += (truth[i] - mean) * (truth[i] - mean);
    }
    if (total == 0) return residual == 0 ? 1.0 : 0.0;
    return 1.0 - residual / total;
}

double tstr_xgb(const Table& train_on, const Table& real_train, const Table& test, const MetricSchema& schema,
                int threads) {
    std::vector<InputColumn> columns = input_columns(schema, {&real_train, &test}, false, true);
    Inputs inputs = encode(train_on, columns), test_inputs = encode(test, columns);
    std::vector<double> targets = column_values(train_on, schema.target);
    std::vector<double> truth = column_values(test, schema.target);

    if (!schema.classification) {
        std::vector<float> labels(targets.begin(), targets.end());
        std::vector<float> output = fit_predict(inputs, labels, test_inputs, "reg:squarederror", 1, threads);
        return r_squared(truth, std::vector<double>(output.begin(), output.end()));
    }
    // Classes are those the training side has; a test class it never saw cannot be predicted.
    std::vector<double> classes = distinct_sorted(targets);
    for (double label : truth)
        if (!std::binary_search(classes.begin(), classes.end(), label)) return 0;
    std::vector<double> predicted(test.rows(), classes.front());
    if (classes.size() >= 2) {
        std::vector<float> labels;
        for (double label : targets)
            labels.push_back(
                static_cast<float>(std::lower_bound(classes.begin(), classes.end(), label) - classes.begin()));
        const size_t count = classes.size();
        std::vector<float> output = fit_predict(inputs, labels, test_inputs,
                                                count == 2 ? "binary:logistic" : "multi:softprob", count, threads);
        for (size_t i = 0; i < test.rows(); ++i) {
            if (count == 2) {
                predicted[i] = classes[output[i] > 0.5f ? 1 : 0];
                continue;
            }
            const float* scores = &output[i * count];
            predicted[i] = classes[std::max_element(scores, scores + count) - scores];   // first maximum
        }
    }
    return macro_f1(truth, predicted);
}

double disc_f1(double q) { return q == 0 ? 1.0 : (1.0 - q) / (2.0 - q); }

DiscriminatorResult disc_xgb(const Table& real_train, const Table& fake, const Table& fake_heldout,
                             const MetricSchema& schema, int threads) {
    std::vector<InputColumn> columns = input_columns(schema, {&real_train, &fake, &fake_heldout}, true, false);
    Inputs real_inputs = encode(real_train, columns), fake_inputs = encode(fake, columns);
    Inputs train = real_inputs;
    train.rows += fake_inputs.rows;
    train.values.insert(train.values.end(), fake_inputs.values.begin(), fake_inputs.values.end());
    std::vector<float> labels(real_inputs.rows, 1.0f);
    labels.resize(train.rows, 0.0f);
    std::vector<float> output =
        fit_predict(train, labels, encode(fake_heldout, columns), "binary:logistic", 2, threads);
    // Probability exactly 0.5 counts as fake, as the reference's threshold does.
    size_t called_real = std::count_if(output.begin(), output.end(), [](float p) { return p > 0.5f; });
    DiscriminatorResult result;
    result.q = output.empty() ? 0.0 : static_cast<double>(called_real) / static_cast<double>(output.size());
    result.f1 = disc_f1(result.q);
    return result;
}

}  // namespace onestep::tabular
