// `onestep eval sdr` through the real binary on a generated 2-track, 2-stem MUSDB-style fixture:
// the JSON records match the whole-array formulas, silent references are left out of the
// means, BSSEval frames and medians are written as museval would, and bad inputs exit 2
// without writing anything.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "audio/audio_io.hpp"
#include "metrics/audio_sdr.hpp"
#include "metrics/bsseval.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using json = nlohmann::json;
using onestep::AudioFormat;
namespace test = onestep::test;

namespace {

const std::string kOnestep = ONESTEP_BINARY;
constexpr int64_t kFrames = 6000;
constexpr int64_t kRate = 8000;

at::Tensor noise(int64_t frames, uint64_t seed, double scale) {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    return (torch::randn({2, frames}, generator, torch::kDouble) * scale).to(torch::kFloat);
}

// ref/<track>/{mixture,bass,drums}.wav and est/<track>/{bass,drums}.wav as float WAV, so the
// values the binary reads are exactly the tensors kept here. Track t2's drums are silent.
struct Fixture {
    test::TempDir dir;
    std::map<std::string, at::Tensor> references, estimates, mixtures;

    explicit Fixture(int64_t frames = kFrames) {
        uint64_t seed = 1;
        for (std::string track : {"t1", "t2"}) {
            at::Tensor mixture = torch::zeros({2, frames}, torch::kFloat);
            for (std::string stem : {"bass", "drums"}) {
                bool silent = track == "t2" && stem == "drums";
                at::Tensor reference = silent ? torch::zeros({2, frames}, torch::kFloat) : noise(frames, seed++, 0.1);
                at::Tensor estimate = reference + noise(frames, seed++, 0.02);
                references[track + "/" + stem] = reference;
                estimates[track + "/" + stem] = estimate;
                mixture = mixture + reference;
                write(dir / ("ref/" + track + "/" + stem + ".wav"), reference);
                write(dir / ("est/" + track + "/" + stem + ".wav"), estimate);
            }
            mixtures[track] = mixture;
            write(dir / ("ref/" + track + "/mixture.wav"), mixture);
        }
    }

    static void write(const std::string& path, const at::Tensor& samples, int64_t rate = kRate) {
        fs::create_directories(fs::path(path).parent_path());
        onestep::write_audio(path, samples, rate, AudioFormat::kWavFloat);
    }

    std::string command(const std::string& out, const std::string& extra = "", const std::string& block = "1000") const {
        return kOnestep + " eval sdr --ref " + (dir / "ref") + " --est " + (dir / "est") + " --out " + out +
               " --block " + block + " --threads 1" + extra;
    }
};

}  // namespace

TEST_CASE("eval sdr writes per-track and summary JSON that match the formulas", "[integration]") {
    Fixture fixture;
    std::string out = fixture.dir / "scores";
    auto run = test::run_command(fixture.command(out));
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    CHECK_THAT(run.output, Contains("bass") && Contains("SI-SDRi") && Contains("n_excluded"));

    for (std::string track : {"t1", "t2"}) {
        json record = json::parse(test::read_text(out + "/" + track + ".json"));
        CHECK(record["format"] == "onestep.sep-eval/1");
        CHECK(record["track"] == track);
        CHECK(record["sample_rate"] == kRate);
        CHECK(record["channels"] == 2);
        CHECK(record["length_samples"] == kFrames);
        CHECK(record["settings"]["usdr_eps"].get<double>() == 1e-7);
        REQUIRE(record["targets"].size() == 2);
        CHECK(record["targets"][0]["name"] == "bass");
        CHECK(record["targets"][1]["name"] == "drums");
        for (const auto& target : record["targets"]) {
            std::string key = track + "/" + target["name"].get<std::string>();
            const at::Tensor& s = fixture.references[key];
            const auto& global = target["global"];
            INFO(key);
            CHECK(std::abs(global["uSDR"].get<double>() - onestep::usdr(s, fixture.estimates[key])) < 1e-8);
            CHECK(std::abs(global["uSDR_mix"].get<double>() - onestep::usdr(s, fixture.mixtures[track])) < 1e-8);
            CHECK(std::abs(global["SI-SDR"].get<double>() - onestep::si_sdr(s, fixture.estimates[key])) < 1e-8);
            CHECK(std::abs(global["SDRi"].get<double>() - (global["uSDR"].get<double>() - global["uSDR_mix"].get<double>())) < 1e-9);
            CHECK(target["silent_reference"] == (key == "t2/drums"));
        }
    }
    json summary = json::parse(test::read_text(out + "/summary.json"));
    const auto& bass = summary["targets"]["bass"]["uSDR"];
    double expected = 0.5 * (onestep::usdr(fixture.references["t1/bass"], fixture.estimates["t1/bass"]) +
                             onestep::usdr(fixture.references["t2/bass"], fixture.estimates["t2/bass"]));
    CHECK(std::abs(bass["mean"].get<double>() - expected) < 1e-8);
    CHECK(std::abs(bass["median"].get<double>() - expected) < 1e-8);
    CHECK(bass["n"] == 2);
    CHECK(bass["n_excluded"] == 0);
    const auto& drums = summary["targets"]["drums"]["SI-SDR"];
    CHECK(drums["n"] == 1);
    CHECK(drums["n_excluded"] == 1);
    CHECK(std::abs(drums["mean"].get<double>() - onestep::si_sdr(fixture.references["t1/drums"], fixture.estimates["t1/drums"])) < 1e-8);
    CHECK(summary["scores"]["mdx_sdr"].is_number());
    CHECK(fs::exists(out + "/summary.csv"));

    // Only uSDR asked for: no SI-SDR keys; a different block size gives the same numbers.
    auto usdr_only = test::run_command(fixture.command(fixture.dir / "usdr", " --metrics usdr", "4096"));
    INFO(usdr_only.output);
    REQUIRE(usdr_only.exit_code == 0);
    json t1 = json::parse(test::read_text(fixture.dir / "usdr/t1.json"));
    CHECK_FALSE(t1["targets"][0]["global"].contains("SI-SDR"));
    json before = json::parse(test::read_text(out + "/t1.json"));
    CHECK(std::abs(t1["targets"][0]["global"]["uSDR"].get<double>() - before["targets"][0]["global"]["uSDR"].get<double>()) <
          1e-9);
}

TEST_CASE("eval sdr refuses bad inputs with exit status 2 and writes nothing", "[integration]") {
    Fixture fixture;
    auto refused = [&](const std::string& expected, const std::string& extra = "") {
        std::string out = fixture.dir / "never";
        auto run = test::run_command(fixture.command(out, extra));
        INFO(run.output);
        CHECK(run.exit_code == 2);
        CHECK_THAT(run.output, Contains(expected));
        CHECK_FALSE(fs::exists(out));
    };
    // A missing stem estimate (in the second track, so the first would otherwise be scored).
    fs::rename(fixture.dir / "est/t2/drums.wav", fixture.dir / "drums.wav");
    refused("missing estimate of stem 'drums' for track 't2'");
    fs::rename(fixture.dir / "drums.wav", fixture.dir / "est/t2/drums.wav");

    // Sample rates that disagree.
    Fixture::write(fixture.dir / "est/t2/bass.wav", fixture.estimates["t2/bass"], 16000);
    refused("est/t2/bass.wav is 16000 Hz");

    // Lengths that disagree: refused, or scored over the shortest with --crop.
    Fixture::write(fixture.dir / "est/t2/bass.wav", fixture.estimates["t2/bass"].narrow(1, 0, kFrames - 10));
    refused("--crop");
    auto cropped = test::run_command(fixture.command(fixture.dir / "cropped", " --crop"));
    INFO(cropped.output);
    REQUIRE(cropped.exit_code == 0);
    json t2 = json::parse(test::read_text(fixture.dir / "cropped/t2.json"));
    CHECK(t2["length_samples"] == kFrames - 10);
    CHECK(t2["cropped_samples"] == 10);

    // A corrupt estimate.
    test::write_text(fixture.dir / "est/t2/bass.wav", std::string(2000, '\x11'));
    refused("est/t2/bass.wav");
    refused("unknown metric 'sdr'", " --metrics sdr");
}
#endif

#if ONESTEP_WITH_AUDIO
TEST_CASE("eval sdr --bsseval full writes frames, museval medians, cSDR summaries and museval files",
          "[integration]") {
    // 2.5 s: two 1 s frames, the last half second dropped; track t2 has a silent stem.
    const int64_t frames = 20000;
    Fixture fixture(frames);
    std::string out = fixture.dir / "scores", museval_dir = fixture.dir / "museval";
    auto run = test::run_command(fixture.command(out, " --metrics usdr,csdr --bsseval full --museval-json " + museval_dir));
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    CHECK_THAT(run.output, Contains("cSDR") && Contains("SIR") && Contains("musdb_csdr"));

    json t1 = json::parse(test::read_text(out + "/t1.json"));
    CHECK(t1["settings"]["bsseval"]["win"] == kRate);
    CHECK(t1["settings"]["bsseval"]["filters_len"] == 512);
    std::vector<double> medians;
    for (size_t k = 0; k < 2; ++k) {
        const auto& target = t1["targets"][k];
        std::string key = "t1/" + target["name"].get<std::string>();
        INFO(key);
        const at::Tensor s = fixture.references[key].to(torch::kDouble), e = fixture.estimates[key].to(torch::kDouble);
        const auto& bsseval = target["bsseval"];
        CHECK(bsseval["frames_total"] == 2);
        CHECK(bsseval["frames_nan"] == 0);
        REQUIRE(target["frames"].size() == 2);
        std::vector<double> quantized;
        for (int64_t t = 0; t < 2; ++t) {
            const auto& frame = target["frames"][t];
            CHECK(frame["time"].get<double>() == static_cast<double>(t));
            CHECK(frame["duration"].get<double>() == 1.0);
            at::Tensor sf = s.narrow(1, t * kRate, kRate), ef = e.narrow(1, t * kRate, kRate);
            double snr = 10 * std::log10(sf.pow(2).sum().item<double>() / (ef - sf).pow(2).sum().item<double>());
            CHECK(std::abs(frame["metrics"]["SDR"].get<double>() - snr) < 1e-8);
            // Independent stems: SIR ~ SNR + 10 log10(N / ((J - 1) C L)) = 14 + 12.9 dB.
            CHECK(std::abs(frame["metrics"]["SIR"].get<double>() - 26.9) < 1.5);
            CHECK(frame["metrics"].contains("ISR"));
            CHECK(frame["metrics"].contains("SAR"));
            quantized.push_back(onestep::museval_quantize(frame["metrics"]["SDR"].get<double>()));
        }
        CHECK(bsseval["median"]["SDR"].get<double>() == onestep::nan_median(quantized));
        medians.push_back(bsseval["median"]["SDR"].get<double>());
        CHECK(target["global"]["uSDR"].is_number());
    }
    // The silent stem makes museval refuse t2: BSSEval skipped, uSDR still there.
    json t2 = json::parse(test::read_text(out + "/t2.json"));
    for (const auto& target : t2["targets"]) {
        CHECK(target["bsseval"] == onestep::kBssEvalSilentSource);
        CHECK_FALSE(target.contains("frames"));
    }
    CHECK(t2["targets"][0]["global"]["uSDR"].is_number());

    json summary = json::parse(test::read_text(out + "/summary.json"));
    const auto& bass = summary["targets"]["bass"]["cSDR"];
    CHECK(bass["median_of_medians"].get<double>() == medians[0]);
    CHECK(bass["mean_of_medians"].get<double>() == medians[0]);
    CHECK(bass["n"] == 1);
    CHECK(bass["n_excluded"] == 1);
    CHECK(summary["targets"]["drums"]["SAR"]["n"] == 1);
    CHECK(std::abs(summary["scores"]["musdb_csdr"].get<double>() - 0.5 * (medians[0] + medians[1])) < 1e-12);
    CHECK(summary["scores"]["bsseval_tracks_skipped"] == 1);
    std::string csv = test::read_text(out + "/summary.csv");
    CHECK_THAT(csv, Contains(",cSDR,SIR,ISR,SAR,silent_reference,bsseval") && Contains("skipped: silent source"));

    // museval's layout: 5 decimals, no file for the track museval would refuse.
    std::string museval = test::read_text(museval_dir + "/t1.json");
    char expected[64];
    double first_sdr = t1["targets"][0]["frames"][0]["metrics"]["SDR"].get<double>();
    std::snprintf(expected, sizeof(expected), "\"SDR\": %.5f", onestep::museval_quantize(first_sdr));
    CHECK_THAT(museval, Contains("\"targets\"") && Contains("\"name\": \"bass\"") && Contains(expected));
    CHECK(json::parse(museval)["targets"][1]["frames"].size() == 2);
    CHECK_FALSE(fs::exists(museval_dir + "/t2.json"));

    // The cheap path gives the same frame SDRs without the filters.
    auto fast = test::run_command(fixture.command(fixture.dir / "fast", " --metrics csdr", "4096"));
    INFO(fast.output);
    REQUIRE(fast.exit_code == 0);
    json fast_t1 = json::parse(test::read_text(fixture.dir / "fast/t1.json"));
    for (size_t k = 0; k < 2; ++k)
        for (size_t t = 0; t < 2; ++t) {
            double full_sdr = t1["targets"][k]["frames"][t]["metrics"]["SDR"].get<double>();
            CHECK(std::abs(fast_t1["targets"][k]["frames"][t]["metrics"]["SDR"].get<double>() - full_sdr) < 1e-9);
            CHECK_FALSE(fast_t1["targets"][k]["frames"][t]["metrics"].contains("SIR"));
        }
    CHECK_FALSE(fast_t1["targets"][0]["global"].contains("uSDR"));

    // Refused: a museval file without the full decomposition, an unknown mode, full BSSEval of one stem.
    auto refused = [&](const std::string& command, const std::string& expected_text) {
        auto result = test::run_command(command);
        INFO(result.output);
        CHECK(result.exit_code == 2);
        CHECK_THAT(result.output, Contains(expected_text));
    };
    refused(fixture.command(fixture.dir / "never", " --museval-json " + museval_dir + "2"), "needs --bsseval full");
    refused(fixture.command(fixture.dir / "never", " --bsseval half"), "accepted: off, full");
    for (std::string side : {"ref", "est"})
        for (std::string track : {"t1", "t2"}) fs::remove(fixture.dir / (side + "/" + track + "/drums.wav"));
    refused(fixture.command(fixture.dir / "never", " --bsseval full"), "needs at least 2 stems");
    CHECK_FALSE(fs::exists(fixture.dir / "never"));
    auto one_stem = test::run_command(fixture.command(fixture.dir / "one", " --metrics csdr"));
    INFO(one_stem.output);
    CHECK(one_stem.exit_code == 0);
}
#endif
