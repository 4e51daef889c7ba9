// CSV reading for the tabular generators: values, scikit-learn's format, and errors that name the
// file, line and column of the bad cell.
#include <catch2/catch.hpp>

#if ONESTEP_WITH_TABULAR
#include <cmath>

#include "support.hpp"
#include "tabular/table.hpp"

using namespace onestep::tabular;
using onestep::test::user_error_message;

TEST_CASE("CSV tables read numbers under their header", "[unit]") {
    Table table = parse_csv("a,b\n1,2.5\n\n-3,4e1\n", "data.csv");
    REQUIRE(table.columns == std::vector<std::string>{"a", "b"});
    REQUIRE(table.rows() == 2);
    REQUIRE(table.at(1, 0) == -3);
    REQUIRE(table.at(1, 1) == 40);
    REQUIRE(table.column_index("b", "data.csv") == 1);
    REQUIRE_THAT(user_error_message([&] { table.column_index("c", "data.csv"); }),
                 Catch::Contains("no column named 'c'") && Catch::Contains("a, b"));
}

TEST_CASE("CSV errors name the line and the column", "[unit]") {
    REQUIRE_THAT(user_error_message([] { parse_csv("a,b\n1,2\n3\n", "data.csv"); }),
                 Catch::Contains("data.csv:3") && Catch::Contains("1 cells") && Catch::Contains("2 columns"));
    REQUIRE_THAT(user_error_message([] { parse_csv("a,b\n1,abc\n", "data.csv"); }),
                 Catch::Contains("data.csv:2: column 2 (b)") && Catch::Contains("'abc' is not a number"));
    REQUIRE_THAT(user_error_message([] { parse_csv("a,b\n1,2\nNA,2\n", "data.csv"); }),
                 Catch::Contains("data.csv:3: column 1 (a)") && Catch::Contains("missing value"));
    REQUIRE_THAT(user_error_message([] { parse_csv("a,b\n1,nan\n", "data.csv"); }),
                 Catch::Contains("data.csv:2: column 2 (b)"));
    REQUIRE_THAT(user_error_message([] { parse_csv("a,b\n", "data.csv"); }), Catch::Contains("no data rows"));
    Table with_missing = parse_csv("a,b\n1,\n", "data.csv", true);
    REQUIRE(std::isnan(with_missing.at(0, 1)));
}

TEST_CASE("scikit-learn's CSV format and CSV writing round-trip", "[unit]") {
    onestep::test::TempDir dir;
    onestep::test::write_text(dir / "iris.csv", "2,2,setosa,versicolor\n5.1,3.5,0\n4.9,3,1\n");
    Table table = read_sklearn_csv(dir / "iris.csv", {"x", "y"}, "species");
    REQUIRE(table.columns == std::vector<std::string>{"x", "y", "species"});
    REQUIRE(table.at(1, 2) == 1);
    write_csv(table, dir / "copy.csv");
    REQUIRE(onestep::test::read_text(dir / "copy.csv") == "x,y,species\n5.1,3.5,0\n4.9,3,1\n");
    onestep::test::write_text(dir / "short.csv", "3,2,a\n1,2,0\n");
    REQUIRE_THAT(user_error_message([&] { read_sklearn_csv(dir / "short.csv", {"x", "y"}, "c"); }),
                 Catch::Contains("announces 3 rows"));
}
#endif
