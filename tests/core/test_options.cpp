// Options: declaration, YAML and --set resolution, validation messages, YAML round trip.
#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "core/options.hpp"
#include "support.hpp"

using namespace onestep;
using Catch::Matchers::Contains;

namespace {

OptionTable sample_table() {
    OptionTable table;
    table.add_int("steps", 100, 1, 1000, "steps")
        .add_float("optim.lr", 2e-4, 0.0, 1.0, "learning rate")
        .add_bool("model.attention", true, "use attention")
        .add_string("data.name", "fashion-mnist", "dataset")
        .add_choice("optim.schedule", "constant", {"constant", "cosine"}, "schedule")
        .add_int_list("model.channel_mult", {1, 2, 2}, 1, 8, "channel multipliers")
        .add_float_list("model.weights", {0.5, 1.5}, 0.0, 10.0, "weights");
    return table;
}


}  // namespace

TEST_CASE("defaults come from the declaration", "[unit]") {
    Config config = resolve_config(sample_table(), "", {});
    CHECK(config.get_int("steps") == 100);
    CHECK(config.get_float("optim.lr") == Approx(2e-4));
    CHECK(config.get_bool("model.attention"));
    CHECK(config.get_string("data.name") == "fashion-mnist");
    CHECK(config.get_int_list("model.channel_mult") == std::vector<int64_t>{1, 2, 2});
}

TEST_CASE("YAML nesting and --set overrides apply in order", "[unit]") {
    test::TempDir dir;
    test::write_text(dir / "a.yaml", "steps: 5\noptim:\n  lr: 1.0e-3\n  schedule: cosine\nmodel:\n  channel_mult: [1, 4]\n");
    Config config = resolve_config(sample_table(), dir / "a.yaml", {"steps=7", "model.weights=[1, 2.5]", "model.attention=false"});
    CHECK(config.get_int("steps") == 7);
    CHECK(config.get_float("optim.lr") == Approx(1e-3));
    CHECK(config.get_string("optim.schedule") == "cosine");
    CHECK(config.get_int_list("model.channel_mult") == std::vector<int64_t>{1, 4});
    CHECK(config.get_float_list("model.weights") == std::vector<double>{1.0, 2.5});
    CHECK_FALSE(config.get_bool("model.attention"));
}

TEST_CASE("resolved config round-trips through YAML text", "[unit]") {
    OptionTable table = sample_table();
    Config config = resolve_config(table, "", {"optim.lr=0.00012345", "data.name=true", "model.channel_mult=3,1"});
    Config again = config_from_yaml_text(table, config.to_yaml(), "round trip");
    bool same = again.values() == config.values();
    CHECK(same);
}

TEST_CASE("unknown keys name the file and suggest the closest key", "[unit]") {
    test::TempDir dir;
    test::write_text(dir / "bad.yaml", "steps: 5\noptim:\n  lrr: 0.1\n");
    std::string message = test::user_error_message([&] { resolve_config(sample_table(), dir / "bad.yaml", {}); });
    CHECK_THAT(message, Contains("bad.yaml line 3"));
    CHECK_THAT(message, Contains("optim.lrr"));
    CHECK_THAT(message, Contains("did you mean 'optim.lr'"));
    message = test::user_error_message([&] { resolve_config(sample_table(), "", {"stepz=3"}); });
    CHECK_THAT(message, Contains("--set stepz=3"));
    CHECK_THAT(message, Contains("did you mean 'steps'"));
}

TEST_CASE("out-of-range and mistyped values are errors naming the range", "[unit]") {
    std::string message = test::user_error_message([&] { resolve_config(sample_table(), "", {"steps=0"}); });
    CHECK_THAT(message, Contains("out of range"));
    CHECK_THAT(message, Contains("[1, 1000]"));
    message = test::user_error_message([&] { resolve_config(sample_table(), "", {"optim.lr=fast"}); });
    CHECK_THAT(message, Contains("expects number"));
    message = test::user_error_message([&] { resolve_config(sample_table(), "", {"optim.schedule=step"}); });
    CHECK_THAT(message, Contains("one of constant cosine"));
    message = test::user_error_message([&] { resolve_config(sample_table(), "", {"model.channel_mult=1,9"}); });
    CHECK_THAT(message, Contains("out of range"));
    message = test::user_error_message([&] { resolve_config(sample_table(), "", {"steps"}); });
    CHECK_THAT(message, Contains("expected key=value"));
    test::TempDir dir;
    test::write_text(dir / "typed.yaml", "steps: 2.5\n");
    message = test::user_error_message([&] { resolve_config(sample_table(), dir / "typed.yaml", {}); });
    CHECK_THAT(message, Contains("typed.yaml line 1"));
    CHECK_THAT(message, Contains("expects integer"));
}

TEST_CASE("malformed and missing YAML files are clear errors", "[unit]") {
    test::TempDir dir;
    test::write_text(dir / "broken.yaml", "steps: 5\noptim: [unclosed\n");
    std::string message = test::user_error_message([&] { resolve_config(sample_table(), dir / "broken.yaml", {}); });
    CHECK_THAT(message, Contains("broken.yaml"));
    CHECK_THAT(message, Contains("malformed YAML"));
    message = test::user_error_message([&] { resolve_config(sample_table(), dir / "missing.yaml", {}); });
    CHECK_THAT(message, Contains("missing.yaml"));
    CHECK_THAT(message, Contains("cannot open"));
    test::write_text(dir / "list.yaml", "- 1\n- 2\n");
    message = test::user_error_message([&] { resolve_config(sample_table(), dir / "list.yaml", {}); });
    CHECK_THAT(message, Contains("expected a mapping"));
}

TEST_CASE("help text lists every key with default and range", "[unit]") {
    std::string help = sample_table().help_text();
    CHECK_THAT(help, Contains("optim.lr (number, range [0.0, 1.0], default 0.0002)"));
    CHECK_THAT(help, Contains("optim.schedule (choice: constant cosine, default constant)"));
    CHECK_THAT(help, Contains("model.channel_mult (list of integers, range [1, 8], default [1, 2, 2])"));
}
