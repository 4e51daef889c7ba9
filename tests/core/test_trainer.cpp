// The Trainer through the real CLI (the test binary with test-only methods): exact resume after
// a planned stop, a SIGTERM and a kill -9; the NaN guard; bad input; export round trip.
#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/checkpoint.hpp"
#include "core/tensor_file.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace onestep;
using Catch::Matchers::Contains;

namespace {

const std::string kCli = ONESTEP_TEST_CLI;

std::string train_command(const std::string& run_dir, const std::string& extra = "") {
    return kCli + " train test-regress --threads 2 --run-dir " + run_dir +
           " --set data.name=toy:8gaussians --set data.toy_size=4000 --set steps=60 --set batch_size=32"
           " --set ckpt_every=10 --set keep_checkpoints=0 --set log_every=5 --set optim.lr=0.01"
           " --set optim.schedule=cosine --set optim.warmup_steps=5 " + extra;
}

std::string reference_run(const test::TempDir& dir) {
    auto result = test::run_command(train_command(dir / "reference"));
    INFO(result.output);
    REQUIRE(result.exit_code == 0);
    return dir / "reference/checkpoints/latest.ckpt";
}

}  // namespace

TEST_CASE("a run stopped and resumed equals an unbroken run bit for bit", "[integration]") {
    test::TempDir dir;
    std::string reference = reference_run(dir);
    CHECK(fs::exists(dir / "reference/config.yaml"));
    CHECK(fs::exists(dir / "reference/log.jsonl"));
    CHECK(fs::exists(dir / "reference/samples/loss.png"));
    CHECK(fs::exists(dir / "reference/checkpoints/step-00000060.ckpt"));

    auto first = test::run_command(train_command(dir / "broken", "--stop-at-step 27"));
    INFO(first.output);
    REQUIRE(first.exit_code == 0);
    CHECK_THAT(first.output, Contains("--resume"));
    CHECK(load_checkpoint(dir / "broken/checkpoints/latest.ckpt").step == 27);
    auto second = test::run_command(kCli + " train test-regress --threads 2 --resume " + (dir / "broken"));
    INFO(second.output);
    REQUIRE(second.exit_code == 0);
    test::require_identical_checkpoints(reference, dir / "broken/checkpoints/latest.ckpt");
}

TEST_CASE("kill -9 between checkpoints loses nothing but the unsaved steps", "[integration]") {
    test::TempDir dir;
    std::string reference = reference_run(dir);
    pid_t pid = test::spawn_shell(train_command(dir / "killed", "--set test.sleep_ms=40") + " > " + (dir / "killed.log") +
                            " 2>&1");
    REQUIRE(test::wait_for_file(dir / "killed/checkpoints/step-00000020.ckpt", 60));
    std::this_thread::sleep_for(std::chrono::milliseconds(150));   // a few steps past the checkpoint
    ::kill(pid, SIGKILL);
    CHECK(test::wait_exit(pid) == 128 + SIGKILL);
    REQUIRE(!fs::exists(dir / "killed/checkpoints/step-00000060.ckpt"));
    int64_t saved = load_checkpoint(dir / "killed/checkpoints/latest.ckpt").step;
    CHECK(saved >= 20);
    CHECK(saved < 60);
    auto resumed = test::run_command(kCli + " train test-regress --threads 2 --set test.sleep_ms=0 --resume " +
                                     (dir / "killed"));
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    test::require_identical_checkpoints(reference, dir / "killed/checkpoints/latest.ckpt");
    // The log holds each record once, in order, although steps after the checkpoint were logged twice.
    std::ifstream log(dir / "killed/log.jsonl");
    std::string line;
    int64_t previous = 0;
    int records = 0;
    while (std::getline(log, line)) {
        auto at = line.find("\"step\":");
        REQUIRE(at != std::string::npos);
        int64_t step = std::stoll(line.substr(at + 7));
        CHECK(step > previous);
        previous = step;
        ++records;
    }
    CHECK(records == 12);
}

TEST_CASE("SIGTERM saves a checkpoint, says how to resume, and the resumed run is exact", "[integration]") {
    test::TempDir dir;
    std::string reference = reference_run(dir);
    pid_t pid = test::spawn_shell(train_command(dir / "term", "--set test.sleep_ms=40") + " > " + (dir / "term.log") + " 2>&1");
    REQUIRE(test::wait_for_file(dir / "term/checkpoints/step-00000010.ckpt", 60));
    ::kill(pid, SIGTERM);
    CHECK(test::wait_exit(pid) == 130);
    std::string output = test::read_text(dir / "term.log");
    CHECK_THAT(output, Contains("Resume with: onestep train test-regress --resume"));
    int64_t saved = load_checkpoint(dir / "term/checkpoints/latest.ckpt").step;
    CHECK(saved >= 10);
    CHECK_FALSE(fs::exists(dir / "term/checkpoints/latest.ckpt.tmp"));
    auto resumed = test::run_command(kCli + " train test-regress --threads 2 --set test.sleep_ms=0 --resume " + (dir / "term"));
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    test::require_identical_checkpoints(reference, dir / "term/checkpoints/latest.ckpt");
}

TEST_CASE("non-finite steps are skipped and counted, and too many in a row stop the run", "[integration]") {
    test::TempDir dir;
    auto skipped = test::run_command(train_command(dir / "skip", "--set test.nan_from_step=12 --set test.nan_steps=3"));
    INFO(skipped.output);
    REQUIRE(skipped.exit_code == 0);
    CHECK_THAT(skipped.output, Contains("step skipped (3 in a row)"));
    CHECK_THAT(test::read_text(dir / "skip/log.jsonl"), Contains("\"skipped_total\":3"));

    auto diverged = test::run_command(
        train_command(dir / "diverge", "--set test.nan_from_step=25 --set test.nan_steps=1000 --set nan.max_in_a_row=4"));
    INFO(diverged.output);
    CHECK(diverged.exit_code == 2);
    CHECK_THAT(diverged.output, Contains("training diverged: 4 non-finite steps in a row"));
    Checkpoint last = load_checkpoint(dir / "diverge/checkpoints/latest.ckpt");
    CHECK(last.step == 20);
    for (const auto& [name, tensor] : last.tensors)
        if (name.rfind("net/", 0) == 0) CHECK(torch::isfinite(tensor).all().item<bool>());
}

TEST_CASE("bad input to train gets one clear line and a non-zero exit", "[integration]") {
    test::TempDir dir;
    auto unknown = test::run_command(kCli + " train no-such-method");
    CHECK(unknown.exit_code == 2);
    CHECK_THAT(unknown.output, Contains("unknown method 'no-such-method'"));

    auto missing = test::run_command(kCli + " train test-regress --config " + (dir / "nope.yaml"));
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.output, Contains("nope.yaml: cannot open config file"));

    test::write_text(dir / "bad.yaml", "steps: 10\nbatch_sise: 4\n");
    auto typo = test::run_command(kCli + " train test-regress --config " + (dir / "bad.yaml"));
    CHECK(typo.exit_code == 2);
    CHECK_THAT(typo.output, Contains("bad.yaml line 2: unknown key 'batch_sise' (did you mean 'batch_size'?)"));

    auto range = test::run_command(kCli + " train test-regress --set optim.lr=-1");
    CHECK(range.exit_code == 2);
    CHECK_THAT(range.output, Contains("out of range"));

    test::write_text(dir / "file", "x");
    auto unwritable = test::run_command(train_command(dir / "file/run"));
    CHECK(unwritable.exit_code == 2);
    CHECK_THAT(unwritable.output, Contains("cannot create run directory"));

    CHECK_THAT(unknown.output, !Contains("terminate"));
}

TEST_CASE("a truncated or corrupted checkpoint is refused and left untouched", "[integration]") {
    test::TempDir dir;
    auto run = test::run_command(train_command(dir / "run", "--set steps=20"));
    REQUIRE(run.exit_code == 0);
    fs::path latest = dir / "run/checkpoints/latest.ckpt";
    std::string bytes = test::read_text(latest.string());
    test::write_text(latest.string(), bytes.substr(0, bytes.size() / 2));
    auto resumed = test::run_command(kCli + " train test-regress --resume " + (dir / "run") + " --set steps=40");
    CHECK(resumed.exit_code == 2);
    CHECK_THAT(resumed.output, Contains("latest.ckpt"));
    CHECK(fs::file_size(latest) == bytes.size() / 2);
    auto sampled = test::run_command(kCli + " sample --ckpt " + latest.string() + " --out " + (dir / "x.png"));
    CHECK(sampled.exit_code == 2);
    CHECK_FALSE(fs::exists(dir / "x.png"));

    std::string flipped = bytes;
    flipped[flipped.size() / 2] ^= 0x20;
    test::write_text(latest.string(), flipped);
    auto corrupt = test::run_command(kCli + " sample --ckpt " + latest.string() + " --out " + (dir / "y.png"));
    CHECK(corrupt.exit_code == 2);
    CHECK_THAT(corrupt.output, Contains("checksum"));
}

TEST_CASE("export writes safetensors that load back into the same modules", "[integration]") {
    test::TempDir dir;
    auto run = test::run_command(train_command(dir / "run", "--set steps=20"));
    REQUIRE(run.exit_code == 0);
    auto exported = test::run_command(kCli + " export --ckpt " + (dir / "run") + " --out " + (dir / "model.safetensors"));
    INFO(exported.output);
    REQUIRE(exported.exit_code == 0);
    TensorFile file = read_safetensors(dir / "model.safetensors");
    Checkpoint checkpoint = load_checkpoint(dir / "run/checkpoints/latest.ckpt");
    CHECK(file.metadata.at("method") == "test-regress");
    CHECK(file.metadata.at("config") == checkpoint.config_yaml);
    for (const auto& [name, tensor] : checkpoint.tensors)
        if (name.rfind("net/", 0) == 0) CHECK(torch::equal(file.tensors.at(name), tensor));
    // Sampling from the export and from the checkpoint gives the same points.
    auto from_ckpt = test::run_command(kCli + " sample --ckpt " + (dir / "run") + " --n 50 --out " + (dir / "a.csv"));
    auto from_export = test::run_command(kCli + " sample --ckpt " + (dir / "model.safetensors") + " --n 50 --out " + (dir / "b.csv"));
    REQUIRE(from_ckpt.exit_code == 0);
    REQUIRE(from_export.exit_code == 0);
    std::string points = test::read_text(dir / "a.csv");
    CHECK(points == test::read_text(dir / "b.csv"));
    CHECK(std::count(points.begin(), points.end(), '\n') == 51);
}

TEST_CASE("help lists methods and every config key with its default", "[integration]") {
    auto methods = test::run_command(kCli + " train --help");
    CHECK(methods.exit_code == 0);
    CHECK_THAT(methods.output, Contains("test-regress"));
    auto keys = test::run_command(kCli + " train test-regress --help");
    CHECK(keys.exit_code == 0);
    CHECK_THAT(keys.output, Contains("optim.lr (number, range [0.0, 10.0], default 0.0002)"));
    CHECK_THAT(keys.output, Contains("test.sleep_ms"));
    auto version = test::run_command(kCli + " --version");
    CHECK(version.exit_code == 0);
    CHECK_THAT(version.output, Contains("onestep"));
}
