// W1 by min-cost flow on the complete bipartite graph (LEMON NetworkSimplex with integer supplies
// and fixed-point integer costs), as the ForestFlow paper computes it (POT's exact emd).
#include "tabular/w1.hpp"

#include <lemon/network_simplex.h>
#include <lemon/static_graph.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "core/error.hpp"

namespace onestep::tabular {

double wasserstein1(const Points& a, const Points& b, Metric metric) {
    if (a.dim != b.dim) throw std::invalid_argument("wasserstein1: point sets of different dimension");
    if (a.rows == 0 || b.rows == 0) throw std::invalid_argument("wasserstein1: empty point set");
    const size_t n = a.rows, m = b.rows;
    const int64_t g = std::gcd(static_cast<int64_t>(n), static_cast<int64_t>(m));

    // StaticDigraph wants arcs sorted by source: sources 0..n−1, targets n..n+m−1.
    std::vector<std::pair<int, int>> arcs;
    arcs.reserve(n * m);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < m; ++j) arcs.emplace_back(static_cast<int>(i), static_cast<int>(n + j));
    lemon::StaticDigraph graph;
    graph.build(static_cast<int>(n + m), arcs.begin(), arcs.end());

    std::vector<double> distances(n * m);
    lemon::StaticDigraph::NodeMap<int64_t> supply(graph);
    for (size_t i = 0; i < n; ++i) supply[graph.node(static_cast<int>(i))] = static_cast<int64_t>(m) / g;
    for (size_t j = 0; j < m; ++j) supply[graph.node(static_cast<int>(n + j))] = -static_cast<int64_t>(n) / g;
    for (size_t i = 0; i < n; ++i) {
        const double* row_a = &a.values[i * a.dim];
        for (size_t j = 0; j < m; ++j) {
            const double* row_b = &b.values[j * b.dim];
            double distance = 0;
            for (size_t k = 0; k < a.dim; ++k) {
                double difference = row_a[k] - row_b[k];
                distance += metric == Metric::L1 ? std::fabs(difference) : difference * difference;
            }
            distances[i * m + j] = metric == Metric::L1 ? distance : std::sqrt(distance);
        }
    }
    // Costs in fixed point: with double costs the simplex can cycle on rounding ties and never
    // stop (seen on 120 × 120 iris rows). 1e9 units per unit distance unless the total could overflow.
    const double flow = static_cast<double>(n) * static_cast<double>(m) / static_cast<double>(g);
    const double largest = std::max(1e-12, *std::max_element(distances.begin(), distances.end()));
    const double scale = std::min(1e9, 4e18 / (largest * flow));
    lemon::StaticDigraph::ArcMap<int64_t> cost(graph);
    for (size_t arc = 0; arc < n * m; ++arc)
        cost[graph.arc(static_cast<int>(arc))] = std::llround(distances[arc] * scale);
    lemon::NetworkSimplex<lemon::StaticDigraph, int64_t, int64_t> simplex(graph);
    simplex.costMap(cost).supplyMap(supply);
    if (simplex.run() != decltype(simplex)::OPTIMAL) throw std::runtime_error("wasserstein1: no optimal flow");
    return static_cast<double>(simplex.totalCost<int64_t>()) / scale * static_cast<double>(g) /
           (static_cast<double>(n) * static_cast<double>(m));
}

Points gower_points(const Table& table, const Preprocessor& prep, const std::string& source) {
    struct Block {
        size_t column;
        bool one_hot;
        double lo, hi;
        int levels;
    };
    std::vector<Block> blocks;
    for (const auto& feature : prep.features()) {
        size_t column = table.column_index(feature.name, source);
        bool one_hot = feature.kind == ColumnKind::Categorical;
        blocks.push_back({column, one_hot, feature.min, feature.max, feature.levels});
    }
    if (!prep.label().empty()) {
        // A multi-class label is categorical; a binary label counts as a numeric 0/1 column.
        size_t column = table.column_index(prep.label(), source);
        const auto& values = prep.class_values();
        blocks.push_back({column, values.size() >= 3, values.front(), values.back(), 0});
    }
    Points points;
    points.rows = table.rows();
    std::vector<std::vector<double>> codes(blocks.size());
    for (size_t b = 0; b < blocks.size(); ++b) {
        Block& block = blocks[b];
        if (!block.one_hot) {
            points.dim += 1;
            continue;
        }
        // Indicators over the codes seen (the label is matched by value, features by code).
        const bool is_label = b + 1 == blocks.size() && !prep.label().empty();
        std::vector<double> values = is_label ? prep.class_values() : std::vector<double>();
        if (!is_label)
            for (int level = 0; level < block.levels; ++level) values.push_back(level);
        for (size_t i = 0; i < table.rows(); ++i) {
            double value = table.at(i, block.column);
            if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(value);
        }
        codes[b] = values;
        points.dim += values.size();
    }
    points.values.reserve(points.rows * points.dim);
    for (size_t i = 0; i < table.rows(); ++i) {
        for (size_t b = 0; b < blocks.size(); ++b) {
            const Block& block = blocks[b];
            double value = table.at(i, block.column);
            if (block.one_hot) {
                for (double code : codes[b]) points.values.push_back(value == code ? 0.5 : 0.0);
            } else {
                double range = block.hi - block.lo;
                points.values.push_back(range > 0 ? (value - block.lo) / range : 0.0);
            }
        }
    }
    return points;
}

}  // namespace onestep::tabular
