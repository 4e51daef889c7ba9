// CSV and ARFF reading for the tabular generators: values, factorized text columns, scikit-learn's
// format, splits, and errors that name the file, line and column of the bad cell.
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
    REQUIRE(parse_csv("\xEF\xBB\xBF" "a,b\n1,2\n", "bom.csv").columns[0] == "a");
    REQUIRE_THAT(user_error_message([&] { table.column_index("c", "data.csv"); }),
                 Catch::Contains("no column named 'c'") && Catch::Contains("a, b"));
}

TEST_CASE("CSV errors name the line and the column", "[unit]") {
    REQUIRE_THAT(user_error_message([] { parse_csv("a,b\n1,2\n3\n", "data.csv"); }),
                 Catch::Contains("data.csv:3") && Catch::Contains("1 cells") && Catch::Contains("2 columns"));
    REQUIRE_THAT(user_error_message([] { parse_csv("a,b\n1,2\nNA,2\n", "data.csv"); }),
                 Catch::Contains("data.csv:3: column 1 (a)") && Catch::Contains("missing value"));
    REQUIRE_THAT(user_error_message([] { parse_csv("a,b\n1,nan\n", "data.csv"); }),
                 Catch::Contains("data.csv:2: column 2 (b)"));
    REQUIRE_THAT(user_error_message([] { parse_csv("a,b\n", "data.csv"); }), Catch::Contains("no data rows"));
    REQUIRE_THAT(user_error_message([] { parse_csv("a,b\n1,x\n2,\n", "data.csv"); }),
                 Catch::Contains("data.csv:3: column 2 (b)") && Catch::Contains("missing value"));
    REQUIRE_THAT(user_error_message([] { parse_csv("a\n\"open\n", "data.csv"); }),
                 Catch::Contains("data.csv:2") && Catch::Contains("unterminated"));
    Table with_missing = parse_csv("a,b\n1,\n", "data.csv", true);
    REQUIRE(std::isnan(with_missing.at(0, 1)));
}

TEST_CASE("CSV text columns are factorized in byte order and written back as strings", "[unit]") {
    const std::string text = "x,color\n1,red\n2,\"dark, blue\"\n3,red\n4,\n5,\"?\"\n";
    Table table = parse_csv(text, "colors.csv", true);
    REQUIRE(!table.is_text(0));
    REQUIRE(table.is_text(1));
    // Byte order, whatever the row order: "?" < "dark, blue" < "red".
    REQUIRE(table.levels[1] == std::vector<std::string>{"?", "dark, blue", "red"});
    REQUIRE(table.at(0, 1) == 2);
    REQUIRE(table.at(1, 1) == 1);
    REQUIRE(std::isnan(table.at(3, 1)));   // an empty cell is missing; a quoted "?" is a level
    REQUIRE(table.at(4, 1) == 0);
    REQUIRE(table.cell_text(1, 1) == "dark, blue");
    REQUIRE(table.text_lines == std::vector<size_t>{0, 2});
    REQUIRE(table.row_lines == std::vector<size_t>{2, 3, 4, 5, 6});
    REQUIRE(table.where(2, 1, "colors.csv") == "colors.csv:4: column 2 (color)");
    REQUIRE(format_csv(table) == text);
    // Numbers in a text column are levels like any other string.
    Table mixed = parse_csv("v\n10\n9\na\n", "mixed.csv");
    REQUIRE(mixed.levels[0] == std::vector<std::string>{"10", "9", "a"});
    REQUIRE(mixed.text_lines[0] == 4);
    // A column of numbers stays numeric, quoted or not.
    Table numbers = parse_csv("v\n\"1.5\"\n2\n", "numbers.csv");
    REQUIRE(!numbers.is_text(0));
    REQUIRE(numbers.at(0, 0) == 1.5);
}

TEST_CASE("splits keep the level strings and the source lines", "[unit]") {
    std::string text = "x,y\n";
    for (int i = 0; i < 10; ++i) text += std::to_string(i) + "," + (i % 2 ? "odd" : "even") + "\n";
    Table table = parse_csv(text, "parity.csv");
    Table train, test;
    stratified_split(table, 1, 0.2, 0, train, test);
    REQUIRE(train.rows() == 8);
    REQUIRE(test.rows() == 2);
    REQUIRE(test.levels == table.levels);
    REQUIRE(test.cell_text(0, 1) != test.cell_text(1, 1));   // one row of each class
    REQUIRE(test.row_lines[0] == test.at(0, 0) + 2);
    shuffle_split(table, 0.3, 1, train, test);
    REQUIRE(train.rows() == 7);
    REQUIRE(test.rows() == 3);
    REQUIRE(train.levels == table.levels);
    Table again_train, again_test;
    shuffle_split(table, 0.3, 1, again_train, again_test);
    REQUIRE(again_test.values == test.values);
    Table unlabeled = parse_csv("x,y\n1,a\n2,\n", "gap.csv", true);
    REQUIRE_THAT(user_error_message([&] { stratified_split(unlabeled, 1, 0.5, 0, train, test); }),
                 Catch::Contains("labels must not be missing"));
}

TEST_CASE("ARFF files read declared levels, quoted names and missing cells", "[unit]") {
    const std::string text =
        "% votes of a tiny house\n"
        "@RELATION 'tiny votes'\n"
        "\n"
        "@attribute 'party name' {'demo crat', republican}\n"
        "@attribute age INTEGER\n"
        "@ATTRIBUTE vote {y, n, '?'}\n"
        "@attribute note string\n"
        "@data\n"
        "% rows follow\n"
        "'demo crat', 40, y, 'hello, world'\n"
        "republican, ?, '?', plain\n";
    Table table = parse_arff(text, "votes.arff");
    REQUIRE(table.columns == std::vector<std::string>{"party name", "age", "vote", "note"});
    REQUIRE(table.rows() == 2);
    REQUIRE(table.levels[0] == std::vector<std::string>{"demo crat", "republican"});
    REQUIRE(table.levels[2] == std::vector<std::string>{"y", "n", "?"});   // declared order
    REQUIRE(table.levels[3] == std::vector<std::string>{"hello, world", "plain"});
    REQUIRE(!table.is_text(1));
    REQUIRE(table.at(0, 1) == 40);
    REQUIRE(std::isnan(table.at(1, 1)));
    REQUIRE(table.at(1, 2) == 2);   // a quoted '?' is the declared value, not a missing cell
    REQUIRE(table.cell_text(0, 3) == "hello, world");
    REQUIRE(table.row_lines == std::vector<size_t>{10, 11});

    REQUIRE_THAT(user_error_message([&] { parse_arff(text, "votes.arff", false); }),
                 Catch::Contains("votes.arff:11: column 2 (age)") && Catch::Contains("missing"));
    std::string undeclared = text + "republican, 3, maybe, x\n";
    REQUIRE_THAT(user_error_message([&] { parse_arff(undeclared, "votes.arff"); }),
                 Catch::Contains("votes.arff:12: column 3 (vote)") && Catch::Contains("'maybe'") &&
                     Catch::Contains("{y,n,?}"));
    REQUIRE_THAT(user_error_message([] { parse_arff("@attribute d date\n@data\n1\n", "d.arff"); }),
                 Catch::Contains("d.arff:1") && Catch::Contains("'date'"));
    REQUIRE_THAT(user_error_message([] { parse_arff("@attribute a real\n@data\n1,2\n", "w.arff"); }),
                 Catch::Contains("w.arff:3") && Catch::Contains("2 cells"));
}

TEST_CASE("read_table picks the reader by the file extension", "[unit]") {
    onestep::test::TempDir dir;
    onestep::test::write_text(dir / "t.ARFF", "@relation r\n@attribute a numeric\n@data\n1\n?\n");
    onestep::test::write_text(dir / "t.csv", "a\n1\n\n");
    REQUIRE(read_table(dir / "t.ARFF", true).rows() == 2);
    REQUIRE(read_table(dir / "t.csv").rows() == 1);
    REQUIRE_THAT(user_error_message([&] { read_table(dir / "t.ARFF"); }), Catch::Contains("t.ARFF:5"));
    REQUIRE_THAT(user_error_message([&] { read_table(dir / "t.tsv"); }),
                 Catch::Contains("t.tsv") && Catch::Contains(".csv, .arff"));
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
