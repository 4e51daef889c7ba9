// The separator end to end through the real CLI: render CI stems, train a few steps (the loss
// falls, validation uSDR is logged), resume bit-exactly, separate the test mixtures into files
// that `eval sdr` scores, and refuse bad inputs without writing anything.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "audio/audio_io.hpp"
#include "core/files.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using Catch::Matchers::Contains;
namespace test = onestep::test;

namespace {

const std::string kOnestep = ONESTEP_BINARY;

std::string train_command(const std::string& data, const std::string& run, int steps, const std::string& extra = "") {
    return kOnestep + " train separator --config " + ONESTEP_SOURCE_DIR + "/configs/stems/roformer-ci.yaml --run-dir " + run +
           " --set data.name=stems:" + data + " --set steps=" + std::to_string(steps) +
           " --set stems.chunk=8192 --set batch_size=2 --set log_every=1 --set ckpt_every=4 --set stems.valid_songs=1"
           " --set optim.warmup_steps=0 --set optim.lr=1e-3 --threads 2 " + extra;
}

}  // namespace

TEST_CASE("separator: train, resume, separate and score through the CLI", "[integration]") {
    test::TempDir dir;
    std::string data = dir / "stems";
    auto rendered = test::run_command(kOnestep + " data render-stems --out " + data + " --size ci --format float");
    INFO(rendered.output);
    REQUIRE(rendered.exit_code == 0);

    std::string run = dir / "run";
    auto trained = test::run_command(train_command(data, run, 8));
    INFO(trained.output);
    REQUIRE(trained.exit_code == 0);
    REQUIRE(fs::exists(run + "/checkpoints/latest.ckpt"));
    // Validation on a whole test song with each checkpoint, beside the mixture/K floor.
    std::string log = test::read_text(run + "/log.jsonl");
    CHECK_THAT(log, Contains("\"usdr_mean\""));
    CHECK_THAT(log, Contains("\"usdr_mean_mix_k\""));
    CHECK_THAT(log, Contains("usdr/vocals"));
    // Whole-song validation improves from the first checkpoint to the second.
    std::vector<double> validation;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        json record = json::parse(line);
        if (record.contains("eval")) validation.push_back(record["eval"]["usdr_mean"].get<double>());
    }
    REQUIRE(validation.size() == 2);
    CHECK(validation[1] > validation[0]);

    // Stopping at 4 and resuming gives the same weights as the straight run.
    std::string split_run = dir / "split";
    REQUIRE(test::run_command(train_command(data, split_run, 8, "--stop-at-step 4")).exit_code == 0);
    auto resumed = test::run_command(kOnestep + " train separator --resume " + split_run + " --threads 2");
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    test::require_identical_checkpoints(run + "/checkpoints/latest.ckpt", split_run + "/checkpoints/latest.ckpt");

    // Separate every test mixture (named after its folder), then score with eval sdr.
    std::string inputs;
    for (const onestep::DirectoryEntry& song : onestep::list_directory(data + "/test")) inputs += " " + song.path + "/mixture.wav";
    std::string est = dir / "est";
    auto separated = test::run_command(kOnestep + " separate --ckpt " + run + inputs + " --out " + est + " --tta swap --overlap 0.5");
    INFO(separated.output);
    REQUIRE(separated.exit_code == 0);
    CHECK_THAT(separated.output, Contains("RTF"));
    std::string song = onestep::list_directory(data + "/test").front().name;
    onestep::AudioInfo mixture = onestep::probe_audio(data + "/test/" + song + "/mixture.wav");
    for (const char* stem : {"bass", "drums", "other", "vocals"}) {
        onestep::AudioInfo out = onestep::probe_audio(est + "/" + song + "/" + stem + ".wav");
        CHECK(out.frames == mixture.frames);
        CHECK(out.sample_rate == mixture.sample_rate);
        CHECK(out.channels == mixture.channels);
        CHECK(out.format == mixture.format);
    }
    auto scored = test::run_command(kOnestep + " eval sdr --ref " + data + "/test --est " + est + " --out " + (dir / "scores"));
    INFO(scored.output);
    CHECK(scored.exit_code == 0);
    CHECK(json::parse(test::read_text(dir / "scores/summary.json"))["scores"]["mdx_sdr"].is_number());

    // An ensemble of the model with itself, only two stems, a residual.
    auto subset = test::run_command(kOnestep + " separate --ckpt " + run + "," + run + " " + data + "/test/" + song +
                                    "/mixture.wav --out " + (dir / "subset") + " --stems vocals,bass --residual other");
    INFO(subset.output);
    CHECK(subset.exit_code == 0);
    CHECK(fs::exists(dir / ("subset/" + song + "/vocals.wav")));
    CHECK(!fs::exists(dir / ("subset/" + song + "/drums.wav")));

    // A corrupt input is named and nothing is written.
    test::write_text(dir / "broken.wav", "RIFF not really audio");
    auto broken = test::run_command(kOnestep + " separate --ckpt " + run + " " + (dir / "broken.wav") + " " + data +
                                    "/test/" + song + "/mixture.wav --out " + (dir / "nothing"));
    CHECK(broken.exit_code != 0);
    CHECK_THAT(broken.output, Contains("broken.wav"));
    CHECK(!fs::exists(dir / "nothing"));
    auto unknown = test::run_command(kOnestep + " separate --ckpt " + run + " " + data + "/test/" + song +
                                     "/mixture.wav --out " + (dir / "nothing") + " --stems piano");
    CHECK(unknown.exit_code != 0);
    CHECK_THAT(unknown.output, Contains("no stem 'piano'"));
    CHECK(!fs::exists(dir / "nothing"));
    auto too_long = test::run_command(kOnestep + " separate --ckpt " + run + " " + data + "/test/" + song +
                                      "/mixture.wav --out " + (dir / "nothing") + " --chunk 100000");
    CHECK(too_long.exit_code != 0);
    CHECK_THAT(too_long.output, Contains("longer than the training chunk (8192 frames)"));
    CHECK(!fs::exists(dir / "nothing"));
}
#endif
