// Exact 1-Wasserstein distance between two uniformly weighted point sets (LEMON network simplex),
// and the Gower-style encoding of tables that the paper's W1 is computed on (spec §10).
//
//   Points a = gower_points(fake, prep), b = gower_points(test, prep);
//   double w1 = wasserstein1(a, b, Metric::L1);
#pragma once
#include <cstddef>
#include <vector>

#include "tabular/preprocess.hpp"
#include "tabular/table.hpp"

namespace onestep::tabular {

struct Points {
    size_t rows = 0, dim = 0;
    std::vector<double> values;   // row-major
};

enum class Metric { L1, Euclidean };

// min over couplings π with marginals 1/n, 1/m of Σ π_ij d(a_i, b_j). Solved as an integer
// transportation problem: with g = gcd(n, m) each a_i supplies m/g units and each b_j takes n/g,
// costs stay in double, and the total is rescaled by g/(n·m).
double wasserstein1(const Points& a, const Points& b, Metric metric = Metric::L1);

// The full table including the label: non-categorical columns min–max to [0, 1] with the training
// range (no clipping), categorical columns and a multi-class label one-hot with each indicator
// halved so a mismatch costs 1 in L1.
Points gower_points(const Table& table, const Preprocessor& prep, const std::string& source);

}  // namespace onestep::tabular
