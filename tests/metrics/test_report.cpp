// The run report: run discovery and summaries, leaderboards ordered by each metric's direction,
// records outside run folders joined to the run they evaluated, real-data references, and the
// Markdown page and CLI, on run folders the test writes itself.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/checkpoint.hpp"
#include "core/error.hpp"
#include "metrics/report.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using onestep::test::read_text;
using onestep::test::TempDir;
using onestep::test::user_error_message;
using onestep::test::write_text;
using Catch::Matchers::Contains;

namespace {

// A training run folder: config, log (losses and periodic evaluations) and a checkpoint whose
// trained network has WEIGHTS elements beside an EMA copy of the same size.
void write_trainer_run(const std::string& dir, const std::string& method, int64_t weights,
                       const std::vector<std::pair<int64_t, double>>& usdr) {
    write_text(dir + "/config.yaml", "steps: 100\ndata:\n  name: \"stems:/x\"\nmodel:\n  arch: \"unet\"\n");
    std::string log;
    for (int64_t step = 10; step <= 40; step += 10)
        log += json{{"step", step}, {"loss", 1.0 / static_cast<double>(step)}, {"time_s", 2.0 * step}}.dump() + "\n";
    for (const auto& [step, value] : usdr)
        log += json{{"step", step}, {"eval", {{"usdr_mean", value}, {"usdr_mean_mix_k", 0.25}}}}.dump() + "\n";
    write_text(dir + "/log.jsonl", log);
    onestep::Checkpoint checkpoint;
    checkpoint.method = method;
    checkpoint.step = 40;
    checkpoint.tensors["net/net/weight"] = torch::zeros({weights});
    checkpoint.tensors["net/ema/weight"] = torch::zeros({weights});
    checkpoint.tensors["net/g2/weight"] = torch::zeros({weights});   // a frozen copy, as SlimFlow's G2
    checkpoint.tensors["optim/net"] = onestep::bytes_to_tensor("adam");
    checkpoint.tensors["rng/cpu"] = onestep::bytes_to_tensor("state");
    fs::create_directories(dir + "/checkpoints");
    onestep::save_checkpoint(dir + "/checkpoints/latest.ckpt", checkpoint);
}

json image_record(const std::string& fake, double value) {
    return {{"metric", "fd_classifier"},
            {"value", value},
            {"fake", fake},
            {"fake_description", "euler, 4 steps"},
            {"n_gen", 500},
            {"baseline", {{"value", 2.0}, {"source", "fashion-mnist:train"}}},
            {"reference", {{"source", "fashion-mnist:test"}}},
            {"extractor", {{"id", "cnn"}}}};
}

const onestep::Leaderboard& board(const onestep::Report& report, const std::string& metric) {
    for (const onestep::Leaderboard& candidate : report.leaderboards)
        if (candidate.metric == metric) return candidate;
    FAIL("no leaderboard for " << metric);
    throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("metric_direction knows which way each of onestep's metrics improves", "[unit]") {
    for (const char* lower : {"fd_classifier", "fid_inception", "kid", "sw1", "mmd2", "w1_test", "loss", "disc_xgb_f1",
                              "paired_error"})
        CHECK(onestep::metric_direction(lower) == -1);
    for (const char* higher : {"usdr_mean", "usdr/vocals", "mdx_sdr", "musdb_csdr", "test_accuracy", "acc_cond", "hq",
                               "coverage_test", "tstr_xgb_fake", "precision", "recall", "is_inception", "pr_classifier",
                               "class_share"})
        CHECK(onestep::metric_direction(higher) == +1);
    CHECK(onestep::metric_direction("inception_score_variant") == 0);
}

TEST_CASE("collect_report summarises runs and ranks their records best first", "[unit]") {
    TempDir root;
    write_trainer_run(root / "group/a", "flow", 12, {{20, 1.5}, {40, 1.0}});
    write_trainer_run(root / "b", "shortcut", 5, {{20, 2.0}, {40, 3.0}});
    write_trainer_run(root / "c", "slimflow", 5, {});
    write_text(root / "c/config.yaml", "steps: 100\ndata:\n  name: \"toy:8gaussians\"\nslimflow:\n  pairs: /p/pairs.bin\n");
    write_trainer_run(root / "d", "score-mismatch", 5, {});
    write_text(root / "d/config.yaml", "steps: 100\nmodel:\n  arch: unet\ngenerator:\n  arch: dcgan\n");
    // Recorded inside run a, and outside any run (written with --out) for run b.
    write_text(root / "group/a/eval/fd_1.json", image_record("ckpt:" + (root / "group/a"), 10.0).dump());
    write_text(root / "fd-b.json", image_record("ckpt:" + (root / "b/checkpoints/latest.ckpt"), 5.0).dump());
    // Written from another working directory: the path names the run relative to somewhere else.
    write_text(root / "group/fd-a.json", image_record("ckpt:elsewhere/group/a", 12.0).dump());
    write_text(root / "group/a/eval/broken.json", "{\"metric\": ");
    write_text(root / "unrelated.json", "{\"rows\": 3}");
    json toy = {{"checkpoint", root / "b"}, {"sampler", "euler, 1 steps"}, {"nfe", 1}, {"step", 40}, {"real", "toy:8gaussians"},
                {"sw1", 0.5}, {"sw1_floor", 0.02}, {"mmd2", 0.1}, {"mmd2_floor", 0.001}, {"hq", 0.7}, {"hq_floor", 0.98}};
    write_text(root / "b/eval/toy-euler-1nfe.json", toy.dump());

    onestep::Report report = onestep::collect_report({root.path()});

    REQUIRE(report.runs.size() == 4);
    auto run_named = [&](const std::string& name) -> const onestep::RunSummary& {
        for (const onestep::RunSummary& run : report.runs)
            if (run.name == name) return run;
        FAIL("no run " << name);
        throw std::logic_error("unreachable");
    };
    const onestep::RunSummary& a = run_named("group/a");
    CHECK(a.name == "group/a");
    CHECK(a.method == "flow");
    CHECK(a.data == "stems:/x");
    CHECK(a.model == "unet");
    CHECK(a.step == 40);
    CHECK(a.steps == 100);
    CHECK(a.wall_s == Approx(80.0));
    REQUIRE(a.loss);
    CHECK(*a.loss == Approx(1.0 / 40));
    CHECK(a.weights == 12);   // only the network with an optimizer: not its EMA or frozen copies
    CHECK(run_named("c").data == "pairs:pairs.bin");   // runs trained on teacher pairs name the pairs file
    CHECK(run_named("d").model == "dcgan (critic unet)");   // a latent generator samples, model.* judges

    const onestep::Leaderboard& fd = board(report, "fd_classifier");
    CHECK(fd.direction == -1);
    CHECK(fd.against == "fashion-mnist:test, features cnn");
    REQUIRE(fd.rows.size() == 3);
    CHECK(fd.rows[0].run == "b");   // 5 < 10 < 12: lower is better
    CHECK(fd.rows[0].method == "shortcut");
    CHECK(fd.rows[0].value == Approx(5.0));
    CHECK(fd.rows[1].run == "group/a");
    CHECK(fd.rows[2].run == "group/a");
    CHECK(fd.rows[2].method == "flow");
    REQUIRE(fd.rows[1].reference);
    CHECK(*fd.rows[1].reference == Approx(2.0));
    CHECK(fd.rows[1].how == "euler, 4 steps, N 500");

    const onestep::Leaderboard& hq = board(report, "hq");
    CHECK(hq.direction == +1);
    REQUIRE(hq.rows.size() == 1);
    CHECK(hq.rows[0].run == "b");
    CHECK(*hq.rows[0].reference == Approx(0.98));

    // Training-time evaluations: the latest value, higher first, the mixture/K value as reference.
    const onestep::Leaderboard& usdr = board(report, "usdr_mean");
    REQUIRE(usdr.rows.size() == 2);
    CHECK(usdr.rows[0].run == "b");
    CHECK(usdr.rows[0].value == Approx(3.0));
    CHECK(usdr.rows[1].how == "step 40 (best 1.5 at step 20)");
    CHECK(*usdr.rows[1].reference == Approx(0.25));
    for (const onestep::Leaderboard& any : report.leaderboards) CHECK(any.metric != "usdr_mean_mix_k");

    REQUIRE(report.skipped.size() == 1);   // the broken record, named; unrelated JSON is left out quietly
    CHECK(report.skipped[0].find("broken.json") != std::string::npos);
    CHECK(report.skipped[0].find("not valid JSON") != std::string::npos);
}

TEST_CASE("collect_report keeps runs of the same name under different folders apart", "[unit]") {
    TempDir root;
    write_trainer_run(root / "x/flow", "flow", 3, {{20, 1.0}});
    write_trainer_run(root / "y/flow", "flow", 3, {{20, 2.0}});
    onestep::Report report = onestep::collect_report({root / "x", root / "y"});
    REQUIRE(report.runs.size() == 2);
    CHECK(report.runs[0].name == "x/flow");
    CHECK(report.runs[1].name == "y/flow");
    const onestep::Leaderboard& usdr = board(report, "usdr_mean");
    REQUIRE(usdr.rows.size() == 2);
    CHECK(usdr.rows[0].run == "y/flow");
    CHECK(onestep::collect_report({root / "x"}).runs[0].name == "flow");
}

TEST_CASE("collect_report reads forest runs and takes the training rows as the tabular reference", "[unit]") {
    TempDir root;
    const std::string run = root / "iris-flow";
    write_text(run + "/manifest.json", json{{"method", "forest-flow"},
                                            {"data", {{"path", "/d/iris/train.csv"}}},
                                            {"config", {{"levels", 50}, {"rounds", 100}, {"max_depth", 7}}}}
                                           .dump());
    auto tabular = [&](const std::vector<std::string>& fakes, double w1, double disc) {
        return json{{"train", "/d/iris/train.csv"}, {"test", "/d/iris/test.csv"}, {"fake", fakes},
                    {"w1_test", w1}, {"coverage_test", 0.9}, {"tstr_xgb_fake", 0.8}, {"tstr_xgb_real", 0.9},
                    {"disc_xgb_f1", disc}};
    };
    write_text(run + "/eval.json", tabular({run + "/fake0.csv", run + "/fake1.csv"}, 0.3, 0.4).dump());
    write_text(run + "/oracle.json", tabular({"/d/iris/train.csv"}, 0.2, 1.0).dump());

    onestep::Report report = onestep::collect_report({root.path()});
    REQUIRE(report.runs.size() == 1);
    CHECK(report.runs[0].method == "forest-flow");
    CHECK(report.runs[0].data == "train.csv");
    CHECK(report.runs[0].model == "XGBoost, 50 levels, 100 rounds, depth 7");

    const onestep::Leaderboard& w1 = board(report, "w1_test");
    REQUIRE(w1.rows.size() == 1);   // the training rows are the reference, not a competitor
    CHECK(w1.rows[0].run == "iris-flow");
    CHECK(w1.rows[0].value == Approx(0.3));
    REQUIRE(w1.rows[0].reference);
    CHECK(*w1.rows[0].reference == Approx(0.2));
    CHECK(*board(report, "tstr_xgb_fake").rows[0].reference == Approx(0.9));
    CHECK_FALSE(board(report, "disc_xgb_f1").rows[0].reference);
}

TEST_CASE("write_report writes the page, its figures and relative links", "[unit]") {
    TempDir root;
    write_trainer_run(root / "runs/a", "flow", 3, {{20, 1.0}, {40, 2.0}});
    write_text(root / "runs/a/samples/loss.png", "png");
    write_text(root / "runs/a/samples/step-00000020.png", "png");
    write_text(root / "runs/a/samples/step-00000040.png", "png");
    for (int nfe : {1, 4, 16}) {
        json toy = {{"sampler", "euler"}, {"nfe", nfe}, {"step", 40}, {"real", "toy:8gaussians"}, {"sw1", 1.0 / nfe}};
        write_text(root / ("runs/a/eval/toy-" + std::to_string(nfe) + ".json"), toy.dump());
    }
    onestep::Report report = onestep::collect_report({root / "runs"});
    REQUIRE(board(report, "sw1").rows.size() == 3);
    CHECK(board(report, "sw1").rows[0].nfe == 16);
    onestep::write_report(report, root / "out/page.md");

    std::string page = read_text(root / "out/page.md");
    CHECK(page.find("| a | flow | stems:/x | unet | 40 of 100 | 80 s | 0.0250 | 3 | "
                    "[step-00000040.png](../runs/a/samples/step-00000040.png) | [loss.png](../runs/a/samples/loss.png) |") !=
          std::string::npos);
    CHECK(page.find("### usdr_mean") != std::string::npos);
    // Each figure the page links exists beside it.
    auto linked = [&](const std::string& prefix) {
        size_t start = page.find(prefix);
        if (start == std::string::npos) return std::string();
        start += prefix.size() - std::string("page-figures/").size();
        return page.substr(start, page.find(')', start) - start);
    };
    std::string trace = linked("![usdr_mean](page-figures/");
    CHECK_THAT(trace, Contains("usdr-mean-evaluation-during-training-on-stems--x-"));
    CHECK(fs::exists(root / ("out/" + trace)));
    std::string by_nfe = linked("![sw1 against NFE](page-figures/");
    CHECK_THAT(by_nfe, Contains("sw1-toy-8gaussians-"));
    CHECK(fs::exists(root / ("out/" + by_nfe)));
    CHECK_FALSE(fs::exists(root / "out/page.md.tmp"));

    CHECK(user_error_message([&] { onestep::collect_report({root / "missing"}); }).find(root / "missing") !=
          std::string::npos);
}

TEST_CASE("onestep report prints leaderboards and refuses a folder as --out", "[integration]") {
    TempDir root;
    write_trainer_run(root / "runs/a", "flow", 3, {{20, 1.0}, {40, 2.0}});
    const std::string binary = ONESTEP_BINARY;

    onestep::test::CommandResult result = onestep::test::run_command(binary + " report " + (root / "runs"));
    CHECK(result.exit_code == 0);
    CHECK(result.output.find("usdr_mean (higher is better)") != std::string::npos);
    CHECK(result.output.find("wrote " + (root / "runs/report.md") + " (1 run, 1 leaderboard)") != std::string::npos);
    CHECK(fs::exists(root / "runs/report.md"));

    result = onestep::test::run_command(binary + " report " + (root / "nothing-here"));
    CHECK(result.exit_code == 2);
    CHECK(result.output.find("nothing-here is not a folder") != std::string::npos);

    fs::create_directories(root / "pages");
    result = onestep::test::run_command(binary + " report " + (root / "runs") + " --out " + (root / "pages"));
    CHECK(result.exit_code == 2);
    CHECK(result.output.find("is a folder") != std::string::npos);
    CHECK(fs::is_empty(root / "pages"));
}
