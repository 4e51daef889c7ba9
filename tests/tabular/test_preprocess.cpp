// Preprocessing round trips (spec §2, §6, R4, R5): dummy coding with a reference level, string
// levels, [−1, 1] scaling fitted on training rows, rounding, clipping, labels and missing cells.
#include <catch2/catch.hpp>

#if ONESTEP_WITH_TABULAR
#include <cmath>

#include "support.hpp"
#include "tabular/preprocess.hpp"

using namespace onestep::tabular;
using onestep::test::user_error_message;

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
                 Catch::Contains("test.csv:2: column 3 (color)") && Catch::Contains("0..2"));
    Table unknown = parse_csv("x,n,color,flag,y\n0,1,0,0,30\n", "test.csv");
    REQUIRE_THAT(onestep::test::user_error_message([&] { prep.transform(unknown, "test.csv"); }),
                 Catch::Contains("not a training class"));
    Table fractional = parse_csv("x,c\n0,0.5\n", "f.csv");
    REQUIRE_THAT(onestep::test::user_error_message(
                     [&] { Preprocessor::fit(fractional, "", {{"c", ColumnKind::Categorical}}, "f.csv"); }),
                 Catch::Contains("f.csv:2: column 2 (c)") && Catch::Contains("codes 0, 1, 2"));
}

namespace {

// n integer, color text categorical (one level holds a comma), label kind as text.
const char* kStringTable =
    "n,color,kind\n"
    "1,red,a\n"
    "3,\"dark, blue\",b\n"
    "2,green,a\n"
    "5,red,b\n";

Preprocessor fit_strings(const Table& table) {
    return Preprocessor::fit(table, "kind", {{"n", ColumnKind::Integer}, {"color", ColumnKind::Categorical}},
                             "strings.csv");
}

}  // namespace

TEST_CASE("string categories and labels round-trip with their original strings", "[unit]") {
    onestep::test::TempDir dir;
    onestep::test::write_text(dir / "strings.csv", kStringTable);
    Table table = read_csv(dir / "strings.csv");
    Preprocessor fitted = fit_strings(table);
    nlohmann::ordered_json json = fitted.to_json();
    // The code ↔ level table travels with the preprocessing (spec R4).
    REQUIRE(json["columns"][1]["level_names"] == std::vector<std::string>{"dark, blue", "green", "red"});
    REQUIRE(json["class_names"] == std::vector<std::string>{"a", "b"});
    Preprocessor prep = Preprocessor::from_json(json);
    REQUIRE(prep.classes() == 2);
    REQUIRE(prep.class_names() == std::vector<std::string>{"a", "b"});
    ScaledRows rows = prep.transform(table, "strings.csv");
    REQUIRE(rows.width == 3);   // n and two indicators (reference level "dark, blue")
    REQUIRE(rows.labels == std::vector<int>{0, 1, 0, 1});
    REQUIRE(!rows.has_missing());
    Table back = prep.inverse(rows);
    write_csv(back, dir / "back.csv");
    REQUIRE(onestep::test::read_text(dir / "back.csv") == kStringTable);

    // Another table with other level codes for the same strings (only two colors, other order).
    Table test = parse_csv("n,color,kind\n4,red,b\n2,green,a\n", "test.csv");
    REQUIRE(test.at(0, 1) == 1);   // "red" is code 1 in this file, 2 in training
    ScaledRows test_rows = prep.transform(test, "test.csv");
    REQUIRE(format_csv(prep.inverse(test_rows)) == "n,color,kind\n4,red,b\n2,green,a\n");
    Table codes = prep.to_training_codes(test, "test.csv");
    REQUIRE(codes.values == std::vector<double>{4, 2, 1, 2, 1, 0});
}

TEST_CASE("string categories reject unknown levels and undeclared text by line and column", "[unit]") {
    Table table = parse_csv(kStringTable, "strings.csv");
    Preprocessor prep = fit_strings(table);
    Table unknown = parse_csv("n,color,kind\n1,red,a\n2,purple,b\n", "test.csv");
    REQUIRE_THAT(user_error_message([&] { prep.transform(unknown, "test.csv"); }),
                 Catch::Contains("test.csv:3: column 2 (color)") && Catch::Contains("'purple'") &&
                     Catch::Contains("not seen in training"));
    Table new_class = parse_csv("n,color,kind\n1,red,c\n", "test.csv");
    REQUIRE_THAT(user_error_message([&] { prep.transform(new_class, "test.csv"); }),
                 Catch::Contains("test.csv:2: column 3 (kind)") && Catch::Contains("'c'"));
    // Text in a column not declared categorical names the first text cell and suggests --cat.
    Table undeclared = parse_csv("x,color\n1,7\n3,red\n", "train.csv");
    REQUIRE_THAT(user_error_message([&] { Preprocessor::fit(undeclared, "", {}, "train.csv"); }),
                 Catch::Contains("train.csv:3: column 2 (color)") && Catch::Contains("text 'red'") &&
                     Catch::Contains("--cat color"));
    // Integer codes in training, text at transform.
    Table coded = parse_csv("c\n0\n1\n", "train.csv");
    Preprocessor by_code = Preprocessor::fit(coded, "", {{"c", ColumnKind::Categorical}}, "train.csv");
    REQUIRE_THAT(user_error_message([&] { by_code.transform(parse_csv("c\n1\nred\n", "t.csv"), "t.csv"); }),
                 Catch::Contains("t.csv:3: column 1 (c)") && Catch::Contains("integer codes"));
}

TEST_CASE("missing cells: ranges ignore them, transform keeps them, labels refuse them", "[unit]") {
    // c categorical with 3 levels; row 2 misses x, row 3 misses c.
    Table table = parse_csv("x,c,y\n0,0,0\n,1,0\n4,,1\n2,2,1\n", "gaps.csv", true);
    Preprocessor prep = Preprocessor::fit(table, "y", {{"c", ColumnKind::Categorical}}, "gaps.csv");
    REQUIRE(prep.features()[0].min == 0);
    REQUIRE(prep.features()[0].max == 4);
    REQUIRE(prep.features()[1].levels == 3);
    ScaledRows rows = prep.transform(table, "gaps.csv");
    REQUIRE(rows.width == 3);
    REQUIRE(rows.missing == 3);   // x once, both indicators of c once
    REQUIRE(rows.has_missing());
    REQUIRE(rows.values[0] == -1.0f);
    REQUIRE(std::isnan(rows.values[1 * 3 + 0]));
    REQUIRE(std::isnan(rows.values[2 * 3 + 1]));
    REQUIRE(std::isnan(rows.values[2 * 3 + 2]));
    REQUIRE(rows.values[3 * 3 + 0] == 0.0f);
    REQUIRE(rows.values[3 * 3 + 2] == 1.0f);
    Table back = prep.inverse(rows);
    REQUIRE(std::isnan(back.at(1, 0)));
    REQUIRE(std::isnan(back.at(2, 1)));
    REQUIRE(back.at(3, 1) == 2);

    Table no_label = parse_csv("x,y\n1,0\n2,\n3,1\n", "data.csv", true);
    REQUIRE_THAT(user_error_message([&] { Preprocessor::fit(no_label, "y", {}, "data.csv"); }),
                 Catch::Contains("data.csv:3: column 2 (y)") && Catch::Contains("labels must not be missing"));
    Table test = parse_csv("x,c,y\n1,0,\n", "test.csv", true);
    REQUIRE_THAT(user_error_message([&] { prep.transform(test, "test.csv"); }),
                 Catch::Contains("test.csv:2: column 3 (y)") && Catch::Contains("labels must not be missing"));
}

TEST_CASE("rows with every feature missing are dropped from fitting", "[unit]") {
    Table table = parse_csv("x,z,y\n1,2,0\n,,1\n3,4,1\n5,,1\n", "sparse.csv", true);
    Preprocessor prep = Preprocessor::fit(table, "y", {}, "sparse.csv");
    REQUIRE(prep.dropped_rows() == 1);
    REQUIRE(prep.class_counts() == std::vector<size_t>{1, 2});
    REQUIRE(prep.features()[1].max == 4);
    REQUIRE(drop_all_missing_rows(table, "y") == 1);
    REQUIRE(table.rows() == 3);
    REQUIRE(table.row_lines == std::vector<size_t>{2, 4, 5});
    REQUIRE(drop_all_missing_rows(table, "y") == 0);
    Table empty = parse_csv("x,y\n,0\n", "empty.csv", true);
    REQUIRE_THAT(user_error_message([&] { Preprocessor::fit(empty, "y", {}, "empty.csv"); }),
                 Catch::Contains("every row has all its features missing"));
}
#endif
