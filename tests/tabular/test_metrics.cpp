// Metrics of generated tables (spec §10, §13.10): coverage radii and the k rule, macro-F1, R²,
// TSTR and the discriminator on synthetic data, and `onestep eval tabular` through the binary.
#include <catch2/catch.hpp>

#if ONESTEP_WITH_TABULAR
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "support.hpp"
#include "tabular/metrics.hpp"
#include "tabular_test_helpers.hpp"

using namespace onestep::tabular;
using onestep::tabular_test::random_points;

namespace {

void copy_row(Points& points, size_t from, size_t to) {
    std::copy_n(points.values.begin() + from * points.dim, points.dim, points.values.begin() + to * points.dim);
}

// ρ_k(r) by sorting every distance: the (k+1)-th smallest, r itself included.
double brute_force_radius(const Points& points, size_t row, int k) {
    std::vector<double> distances;
    for (size_t j = 0; j < points.rows; ++j) {
        double distance = 0;
        for (size_t d = 0; d < points.dim; ++d)
            distance += std::fabs(points.values[row * points.dim + d] - points.values[j * points.dim + d]);
        distances.push_back(distance);
    }
    std::sort(distances.begin(), distances.end());
    return distances[static_cast<size_t>(k)];
}

// Three classes around distinct centres in (x1, x2), a categorical column g tied to the class and
// a continuous noise column; the label is last. Rows cycle through the classes. x1 and x2 take
// only the values centre + {−0.1, 0, 0.1}: histogram cuts sit on training values, so a test value
// outside its class's training range could land on a neighbour's side of a split.
Table three_class_table(size_t rows, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> offset(-1, 1);
    std::normal_distribution<double> noise(0, 0.2);
    Table table;
    table.columns = {"x1", "x2", "g", "noise", "label"};
    for (size_t i = 0; i < rows; ++i) {
        double label = static_cast<double>(i % 3);
        table.values.insert(table.values.end(), {3 * label + 0.1 * offset(rng), -2 * label + 0.1 * offset(rng),
                                                 label == 2 ? 1.0 : 0.0, noise(rng), label});
    }
    return table;
}

Table keep_rows(const Table& table, const std::function<bool(size_t)>& keep) {
    Table kept;
    kept.columns = table.columns;
    for (size_t i = 0; i < table.rows(); ++i)
        if (keep(i))
            for (size_t j = 0; j < table.columns.size(); ++j) kept.values.push_back(table.at(i, j));
    return kept;
}

MetricSchema class_schema(const Table& table) { return MetricSchema{table.columns, {"g"}, "label", true}; }

}  // namespace

TEST_CASE("coverage picks k_sel = 2 on continuous data, 3 when 10% of rows have a duplicate", "[unit][tabular]") {
    Points points = random_points(100, 3, 11);
    REQUIRE(coverage_k(points) == 2);
    CoverageRadii radii = coverage_radii(points, 0, 2);
    REQUIRE(radii.k == 2);
    for (size_t row : {0, 17, 99}) REQUIRE(radii.radius[row] == Approx(brute_force_radius(points, row, 2)));

    // Rows 90..94 copy rows 0..4: 10 rows have one exact duplicate, coverage(R, R; 1) = 0.90.
    for (size_t row = 0; row < 5; ++row) copy_row(points, row, 90 + row);
    REQUIRE(coverage_k(points) == 3);
    radii = coverage_radii(points, 0, 1);
    REQUIRE(radii.k == 3);
    for (size_t row : {0, 4, 50, 92}) REQUIRE(radii.radius[row] == Approx(brute_force_radius(points, row, 3)));
    // 4% of rows with a duplicate stays under the 5% allowance.
    Points few = random_points(100, 3, 12);
    for (size_t row = 0; row < 2; ++row) copy_row(few, row, 98 + row);
    REQUIRE(coverage_k(few) == 2);
}

TEST_CASE("coverage of a set by itself is 1, by far-away points 0, and strict at the radius", "[unit][tabular]") {
    Points real = random_points(60, 4, 21);
    CoverageRadii radii = coverage_radii(real);
    REQUIRE(coverage(real, radii, real, 1) == 1.0);
    Points far = random_points(60, 4, 22);
    for (double& value : far.values) value += 100;
    REQUIRE(coverage(real, radii, far, 2) == 0.0);

    // 1-D {0, 1, 2, 3} with k = 1: every radius is 1.
    Points line{4, 1, {0, 1, 2, 3}};
    CoverageRadii unit = coverage_radii(line, 1);
    REQUIRE(unit.radius == std::vector<double>{1, 1, 1, 1});
    REQUIRE(coverage(line, unit, Points{1, 1, {0.5}}) == 0.5);   // covers 0 and 1
    REQUIRE(coverage(line, unit, Points{1, 1, {-1}}) == 0.0);    // distance 1 = ρ is not inside
    REQUIRE_THROWS(coverage(line, unit, Points{1, 2, {0, 0}}));
}

TEST_CASE("macro-F1 averages over the classes of truth and prediction; R² by hand", "[unit][tabular]") {
    // Classes {0, 1, 2, 3}: F1 = 2/3, 4/5, 0 (never predicted), 0 (never true).
    std::vector<double> truth = {0, 0, 1, 1, 2}, predicted = {0, 1, 1, 1, 3};
    REQUIRE(macro_f1(truth, predicted) == Approx((2.0 / 3 + 0.8) / 4));
    REQUIRE(macro_f1(truth, truth) == 1.0);
    REQUIRE(r_squared({1, 2, 3}, {1, 2, 4}) == Approx(0.5));
    REQUIRE(r_squared({2, 2}, {2, 2}) == 1.0);
    REQUIRE(r_squared({2, 2}, {2, 3}) == 0.0);
}

TEST_CASE("disc_f1 is 1 at q = 0, 1/3 at q = 1/2 and 0 at q = 1", "[unit][tabular]") {
    REQUIRE(disc_f1(0.0) == 1.0);
    REQUIRE(disc_f1(0.5) == Approx(1.0 / 3));
    REQUIRE(disc_f1(1.0) == 0.0);
}

TEST_CASE("TSTR on separable classes: F1 = 1 from real rows, 0 when a test class is missing", "[unit][tabular]") {
    Table train = three_class_table(90, 31), test = three_class_table(30, 32);
    MetricSchema schema = class_schema(train);
    REQUIRE(tstr_xgb(train, train, test, schema, 1) == 1.0);
    Table two_classes = keep_rows(train, [&](size_t i) { return train.at(i, 4) != 2; });
    REQUIRE(tstr_xgb(two_classes, train, test, schema, 1) == 0.0);
    // A two-class problem goes through binary:logistic.
    auto not_two = [&](const Table& table) { return keep_rows(table, [&](size_t i) { return table.at(i, 4) != 2; }); };
    REQUIRE(tstr_xgb(not_two(train), not_two(train), not_two(test), schema, 1) == 1.0);
}

TEST_CASE("TSTR R² on a linear regression exceeds 0.9", "[unit][tabular]") {
    std::mt19937_64 rng(41);
    std::uniform_real_distribution<double> uniform(-1, 1);
    std::normal_distribution<double> noise(0, 0.05);
    auto make = [&](size_t rows) {
        Table table;
        table.columns = {"a", "b", "y"};
        for (size_t i = 0; i < rows; ++i) {
            double a = uniform(rng), b = uniform(rng);
            table.values.insert(table.values.end(), {a, b, 2 * a - b + 0.5 + noise(rng)});
        }
        return table;
    };
    Table train = make(300), test = make(100);
    MetricSchema schema{train.columns, {}, "y", false};
    REQUIRE(tstr_xgb(train, train, test, schema, 1) > 0.9);
}

TEST_CASE("the discriminator tells shifted fakes from real rows and calls training rows real", "[unit][tabular]") {
    Table train = three_class_table(90, 51);
    MetricSchema schema = class_schema(train);
    auto shifted = [](Table table, double shift) {
        for (size_t i = 0; i < table.rows(); ++i) table.at(i, 0) += shift;
        return table;
    };
    // Held-out fakes lie beyond the training fakes: histogram cuts sit on training values, so a
    // held-out row just below the fakes' minimum could fall on the real side of the split.
    Table fake = shifted(three_class_table(90, 52), 20), heldout = shifted(three_class_table(90, 53), 30);
    DiscriminatorResult far = disc_xgb(train, fake, heldout, schema, 1);
    REQUIRE(far.q == 0.0);
    REQUIRE(far.f1 == 1.0);
    // Rows the classifier learnt as real come back as real: memorisation scores low.
    DiscriminatorResult copied = disc_xgb(train, fake, train, schema, 1);
    REQUIRE(copied.q > 0.9);
    REQUIRE(copied.f1 == Approx(disc_f1(copied.q)));
    REQUIRE(copied.f1 < 0.1);
}

TEST_CASE("gower_pair encodes both tables over the union of their levels", "[unit][tabular]") {
    Table train = parse_csv("x,c\n0,0\n2,1\n", "train.csv");
    Table fake = parse_csv("c,x\n2,1\n", "fake.csv");   // another column order and an unseen level
    Preprocessor prep = Preprocessor::fit(train, "", {{"c", ColumnKind::Categorical}}, "train.csv");
    auto [a, b] = gower_pair(train, fake, prep, "train.csv", "fake.csv");
    REQUIRE(a.dim == 4);
    REQUIRE(b.dim == 4);
    REQUIRE(a.values == std::vector<double>{0, 0.5, 0, 0, 1, 0, 0.5, 0});
    REQUIRE(b.values == std::vector<double>{0.5, 0, 0, 0.5});
}

TEST_CASE("eval tabular via the CLI writes every metric and names a missing column", "[integration][tabular]") {
    onestep::test::TempDir dir;
    auto write_table = [&](const std::string& name, const Table& table) {
        std::ostringstream csv;
        for (size_t j = 0; j < table.columns.size(); ++j) csv << (j ? "," : "") << table.columns[j];
        csv << "\n";
        for (size_t i = 0; i < table.rows(); ++i)
            for (size_t j = 0; j < table.columns.size(); ++j)
                csv << table.at(i, j) << (j + 1 < table.columns.size() ? "," : "\n");
        onestep::test::write_text(dir / name, csv.str());
    };
    write_table("train.csv", three_class_table(48, 61));
    write_table("test.csv", three_class_table(24, 62));
    write_table("fake1.csv", three_class_table(48, 63));
    write_table("fake2.csv", three_class_table(48, 64));
    const std::string eval = std::string(ONESTEP_BINARY) + " eval tabular --train " + (dir / "train.csv") +
                             " --test " + (dir / "test.csv") + " --cat g --threads 1";

    auto run = onestep::test::run_command(eval + " --label label --fake " + (dir / "fake1.csv") + " --fake " +
                                          (dir / "fake2.csv") + " --out " + (dir / "result.json"));
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    REQUIRE_THAT(run.output, Catch::Contains("coverage train") && Catch::Contains("disc_xgb F1"));
    auto result = nlohmann::json::parse(onestep::test::read_text(dir / "result.json"));
    for (const char* key : {"w1_train", "w1_test", "coverage_train", "coverage_test", "tstr_xgb_fake", "tstr_xgb_real",
                            "disc_xgb_f1", "disc_xgb_q"}) {
        INFO(key);
        REQUIRE(result.at(key).is_number());
    }
    REQUIRE(result.at("task") == "classification");
    REQUIRE(result.at("tstr_metric") == "macro_f1");
    REQUIRE(result.at("k_sel_train") == 2);
    REQUIRE(result.at("per_fake").size() == 2);
    REQUIRE(result.at("per_fake")[0].at("disc_heldout") == dir / "fake2.csv");
    REQUIRE(result.at("tstr_xgb_real").get<double>() == Approx(1.0));
    REQUIRE(result.at("w1_train").get<double>() > 0);

    auto unknown = onestep::test::run_command(eval + " --label species --fake " + (dir / "fake1.csv") + " --out " +
                                              (dir / "bad.json"));
    REQUIRE(unknown.exit_code == 2);
    REQUIRE_THAT(unknown.output, Catch::Contains("train.csv") && Catch::Contains("no column named 'species'"));
    REQUIRE_FALSE(std::filesystem::exists(dir / "bad.json"));

    onestep::test::write_text(dir / "narrow.csv", "x1,x2,g,label\n0,0,0,0\n1,1,1,1\n");
    auto narrow = onestep::test::run_command(eval + " --label label --fake " + (dir / "narrow.csv") + " --out " +
                                             (dir / "bad.json"));
    REQUIRE(narrow.exit_code == 2);
    REQUIRE_THAT(narrow.output, Catch::Contains("narrow.csv") && Catch::Contains("no column named 'noise'"));
    REQUIRE_FALSE(std::filesystem::exists(dir / "bad.json"));

    auto missing = onestep::test::run_command(eval + " --label label --fake " + (dir / "absent.csv"));
    REQUIRE(missing.exit_code == 2);
    REQUIRE_THAT(missing.output, Catch::Contains("absent.csv"));
}
#endif
