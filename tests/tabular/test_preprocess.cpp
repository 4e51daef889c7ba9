// Preprocessing round trips (spec §2): dummy coding with a reference level, [−1, 1] scaling fitted
// on training rows, rounding of integer and binary columns, clipping, and class labels.
#include <catch2/catch.hpp>

#if ONESTEP_WITH_TABULAR
#include "support.hpp"
#include "tabular/preprocess.hpp"

using namespace onestep::tabular;

namespace {

// x continuous, n integer, color categorical (3 levels), flag binary, label y in {10, 20}.
Table mixed_table() {
    return parse_csv(
        "x,n,color,flag,y\n"
        "0.5,1,0,0,10\n"
        "1.5,3,1,1,20\n"
        "-1,2,2,0,20\n"
        "2,5,1,1,10\n",
        "mixed.csv");
}

Preprocessor fit_mixed(const Table& table) {
    return Preprocessor::fit(table, "y",
                             {{"n", ColumnKind::Integer}, {"color", ColumnKind::Categorical},
                              {"flag", ColumnKind::Binary}},
                             "mixed.csv");
}

}  // namespace

TEST_CASE("preprocessing encodes categories with drop-first dummies on [-1, 1]", "[unit]") {
    Table table = mixed_table();
    Preprocessor prep = fit_mixed(table);
    ScaledRows rows = prep.transform(table, "mixed.csv");
    // x, n, two color indicators, flag.
    REQUIRE(rows.width == 5);
    REQUIRE(prep.classes() == 2);
    REQUIRE(rows.labels == std::vector<int>{0, 1, 1, 0});
    REQUIRE(prep.class_counts() == std::vector<size_t>{2, 2});
    for (float value : rows.values) REQUIRE((value >= -1.0f && value <= 1.0f));
    // Row 0: color 0 is the reference level, both indicators low; row 2: color 2 sets the second.
    REQUIRE(rows.values[0 * 5 + 2] == -1.0f);
    REQUIRE(rows.values[0 * 5 + 3] == -1.0f);
    REQUIRE(rows.values[2 * 5 + 2] == -1.0f);
    REQUIRE(rows.values[2 * 5 + 3] == 1.0f);
    REQUIRE(rows.values[2 * 5 + 0] == -1.0f);   // x = −1 is the training minimum
    REQUIRE(rows.values[3 * 5 + 0] == 1.0f);
}

TEST_CASE("preprocessing round-trips and survives its JSON form", "[unit]") {
    Table table = mixed_table();
    Preprocessor prep = Preprocessor::from_json(fit_mixed(table).to_json());
    Table back = prep.inverse(prep.transform(table, "mixed.csv"));
    REQUIRE(back.columns == table.columns);
    for (size_t i = 0; i < table.values.size(); ++i) REQUIRE(back.values[i] == Approx(table.values[i]).margin(1e-6));
}

TEST_CASE("inverse preprocessing rounds, decodes and clips", "[unit]") {
    Table table = mixed_table();
    Preprocessor prep = fit_mixed(table);
    ScaledRows rows;
    rows.rows = 2;
    rows.width = 5;
    // n: scaled 0.1 ↦ 1 + 1.1·2 = 3.2 → 3; color indicators (0.2, 0.9) ↦ (0.6, 0.95) → level 2;
    // flag 0.3 ↦ 0.65 → 1; then a row entirely out of range is clipped to the training bounds.
    rows.values = {0.0f, 0.1f, 0.2f, 0.9f, 0.3f,   //
                   5.0f, -7.0f, -3.0f, -3.0f, 4.0f};
    rows.labels = {1, 0};
    Table out = prep.inverse(rows);
    REQUIRE(out.at(0, 0) == Approx(0.5));
    REQUIRE(out.at(0, 1) == 3);
    REQUIRE(out.at(0, 2) == 2);
    REQUIRE(out.at(0, 3) == 1);
    REQUIRE(out.at(0, 4) == 20);
    REQUIRE(out.at(1, 0) == 2);    // clipped to max x
    REQUIRE(out.at(1, 1) == 1);    // clipped to min n
    REQUIRE(out.at(1, 2) == 0);    // all indicators below 0.5: reference level
    REQUIRE(out.at(1, 3) == 1);    // clipped to max flag
    REQUIRE(out.at(1, 4) == 10);
}

TEST_CASE("preprocessing rejects bad categories and labels with their row", "[unit]") {
    Table table = mixed_table();
    Preprocessor prep = fit_mixed(table);
    Table other = parse_csv("x,n,color,flag,y\n0,1,3,0,10\n", "test.csv");
    REQUIRE_THAT(onestep::test::user_error_message([&] { prep.transform(other, "test.csv"); }),
                 Catch::Contains("test.csv: data row 1, column 'color'") && Catch::Contains("0..2"));
    Table unknown = parse_csv("x,n,color,flag,y\n0,1,0,0,30\n", "test.csv");
    REQUIRE_THAT(onestep::test::user_error_message([&] { prep.transform(unknown, "test.csv"); }),
                 Catch::Contains("not a training class"));
    Table fractional = parse_csv("x,c\n0,0.5\n", "f.csv");
    REQUIRE_THAT(onestep::test::user_error_message(
                     [&] { Preprocessor::fit(fractional, "", {{"c", ColumnKind::Categorical}}, "f.csv"); }),
                 Catch::Contains("column 'c'") && Catch::Contains("codes 0, 1, 2"));
}
#endif
