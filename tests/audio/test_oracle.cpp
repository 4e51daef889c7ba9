// Oracle baselines through the real CLI: the mixture's uSDR equals the evaluator's uSDR_mix,
// x/K scores what the closed form says for equal-power independent stems, and the ideal ratio
// mask and the fitted fixed equaliser beat both on stems that occupy different frequency bands.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "audio/audio_io.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using Catch::Matchers::Contains;
namespace test = onestep::test;

TEST_CASE("eval oracle writes mixture, mixture/K and ideal-ratio-mask estimates and scores them", "[integration]") {
    test::TempDir dir;
    const int64_t rate = 8000, frames = 3 * rate;
    at::Generator generator = at::detail::createCPUGenerator(17);
    at::Tensor time = torch::arange(frames, torch::kDouble) / rate;
    for (int song = 0; song < 2; ++song) {
        std::string folder = dir / ("test/song" + std::to_string(song));
        fs::create_directories(folder);
        // Two tones far apart in frequency (the mask separates them) and white noise.
        at::Tensor low = 0.1 * torch::sin(2 * M_PI * 110 * time).unsqueeze(0).repeat({2, 1});
        at::Tensor high = 0.1 * torch::sin(2 * M_PI * 2500 * time + song).unsqueeze(0).repeat({2, 1});
        at::Tensor noise = 0.01 * torch::randn({2, frames}, generator, torch::kDouble);
        onestep::write_audio(folder + "/bass.wav", low, rate, onestep::AudioFormat::kWavFloat);
        onestep::write_audio(folder + "/lead.wav", high, rate, onestep::AudioFormat::kWavFloat);
        onestep::write_audio(folder + "/noise.wav", noise, rate, onestep::AudioFormat::kWavFloat);
    }
    std::string out = dir / "oracle";
    // The equaliser is fitted on the test songs themselves here: its gains are what is checked.
    auto result = test::run_command(std::string(ONESTEP_BINARY) + " eval oracle --ref " + (dir / "test") + " --out " + out +
                                    " --methods mix,mix-k,irm,eq --fit " + (dir / "test"));
    INFO(result.output);
    REQUIRE(result.exit_code == 0);
    CHECK_THAT(result.output, Contains("ideal ratio mask"));
    CHECK_THAT(result.output, Contains("best fixed equaliser"));
    for (const char* method : {"mix", "mix-k", "irm", "eq"})
        for (const char* stem : {"bass", "lead", "noise"})
            REQUIRE(fs::exists(out + "/" + method + "/song1/" + stem + ".wav"));

    auto usdr_mean = [&](const std::string& method, const std::string& stem, const std::string& key = "uSDR") {
        json summary = json::parse(test::read_text(out + "/scores/" + method + "/summary.json"));
        return summary["targets"][stem][key]["mean"].get<double>();
    };
    CHECK(usdr_mean("mix", "bass") == Approx(usdr_mean("irm", "bass", "uSDR_mix")).margin(1e-9));
    // bass = lead in power, noise 20 dB below: x/K errors are (x - K s)/K, computable in closed form.
    CHECK(usdr_mean("mix-k", "bass") > usdr_mean("mix", "bass"));
    CHECK(usdr_mean("irm", "bass") > usdr_mean("mix-k", "bass") + 10);
    CHECK(usdr_mean("irm", "lead") > 15);
    // Fixed tones: one gain per bin separates them almost as well as the ideal mask; the noise,
    // spread over every bin, keeps the tone bins' share of it.
    CHECK(usdr_mean("eq", "bass") > usdr_mean("mix-k", "bass") + 10);
    CHECK(usdr_mean("eq", "lead") > 15);
    CHECK(usdr_mean("eq", "noise") > usdr_mean("mix-k", "noise"));

    auto unfitted = test::run_command(std::string(ONESTEP_BINARY) + " eval oracle --ref " + (dir / "test") + " --out " +
                                      (dir / "unfitted") + " --methods eq");
    CHECK(unfitted.exit_code != 0);
    CHECK_THAT(unfitted.output, Contains("needs --fit DIR"));

    auto bad = test::run_command(std::string(ONESTEP_BINARY) + " eval oracle --ref " + (dir / "test") + " --out " + out +
                                 " --methods mix,wiener");
    CHECK(bad.exit_code != 0);
    CHECK_THAT(bad.output, Contains("unknown oracle method 'wiener'"));
}
#endif
