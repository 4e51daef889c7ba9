// Helpers shared by the tabular tests: seeded point sets for the distance-based metrics.
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>

#include "tabular/w1.hpp"

namespace onestep::tabular_test {

// ROWS × DIM standard normal values, the same for the same SEED.
inline onestep::tabular::Points random_points(size_t rows, size_t dim, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    onestep::tabular::Points points{rows, dim, {}};
    for (size_t i = 0; i < rows * dim; ++i) points.values.push_back(normal(rng));
    return points;
}

}  // namespace onestep::tabular_test
