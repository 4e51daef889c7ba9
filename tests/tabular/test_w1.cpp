// Exact W1 (spec §10): zero on identical sets, the shift length on translated sets, the 1-D
// sorted-difference formula, unequal set sizes, and the Gower encoding of tables.
#include <catch2/catch.hpp>

#if ONESTEP_WITH_TABULAR
#include <algorithm>
#include <cmath>

#include "tabular/w1.hpp"
#include "tabular_test_helpers.hpp"

using namespace onestep::tabular;
using onestep::tabular_test::random_points;

TEST_CASE("W1 of a set with itself is 0 and with a shifted copy is the shift", "[unit]") {
    Points a = random_points(30, 3, 1);
    REQUIRE(wasserstein1(a, a, Metric::L1) == Approx(0).margin(1e-12));
    REQUIRE(wasserstein1(a, a, Metric::Euclidean) == Approx(0).margin(1e-12));
    Points shifted = a;
    for (size_t i = 0; i < shifted.rows; ++i) {
        shifted.values[i * 3 + 0] += 0.3;
        shifted.values[i * 3 + 2] -= 0.4;
    }
    REQUIRE(wasserstein1(a, shifted, Metric::L1) == Approx(0.7).epsilon(1e-9));
    REQUIRE(wasserstein1(a, shifted, Metric::Euclidean) == Approx(0.5).epsilon(1e-9));
    REQUIRE(wasserstein1(shifted, a, Metric::L1) == Approx(wasserstein1(a, shifted, Metric::L1)));
}

TEST_CASE("W1 in one dimension is the mean sorted difference, also for unequal sizes", "[unit]") {
    Points a = random_points(25, 1, 2), b = random_points(25, 1, 3);
    std::vector<double> sa = a.values, sb = b.values;
    std::sort(sa.begin(), sa.end());
    std::sort(sb.begin(), sb.end());
    double expected = 0;
    for (size_t i = 0; i < sa.size(); ++i) expected += std::fabs(sa[i] - sb[i]) / sa.size();
    REQUIRE(wasserstein1(a, b) == Approx(expected).epsilon(1e-9));
    // {0, 1} against {0, 0.5, 1}: |F_a − F_b| = 1/6 on [0, 1].
    REQUIRE(wasserstein1(Points{2, 1, {0, 1}}, Points{3, 1, {0, 0.5, 1}}) == Approx(1.0 / 6).epsilon(1e-9));
}

TEST_CASE("Gower points scale by the training range and half one-hot the class", "[unit]") {
    Table train = parse_csv("x,y\n0,0\n4,1\n2,2\n", "train.csv");
    Preprocessor prep = Preprocessor::fit(train, "y", {}, "train.csv");
    Points points = gower_points(parse_csv("x,y\n1,2\n6,0\n", "fake.csv"), prep, "fake.csv");
    REQUIRE(points.dim == 4);
    REQUIRE(points.values == std::vector<double>{0.25, 0, 0, 0.5, 1.5, 0.5, 0, 0});
    // A class mismatch alone costs exactly 1.
    Points same_x = gower_points(parse_csv("x,y\n1,0\n", "a.csv"), prep, "a.csv");
    Points other_class = gower_points(parse_csv("x,y\n1,1\n", "b.csv"), prep, "b.csv");
    REQUIRE(wasserstein1(same_x, other_class) == Approx(1.0));
}
#endif
