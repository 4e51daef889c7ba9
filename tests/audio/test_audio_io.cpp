// Audio files through libsndfile: exact round trips of WAV 16/24-bit/float and FLAC, chunked
// reads, atomic writes, clipping, and errors that name the file.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "audio/audio_io.hpp"
#include "core/error.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using onestep::AudioFormat;
namespace test = onestep::test;

namespace {

// Values on the grid of a BITS-bit PCM file: k / 2^(bits-1), |k| < 0.9 full scale.
at::Tensor pcm_grid(int64_t channels, int64_t frames, int bits, uint64_t seed) {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    double full_scale = std::ldexp(1.0, bits - 1);
    at::Tensor levels = torch::randint(static_cast<int64_t>(-0.9 * full_scale), static_cast<int64_t>(0.9 * full_scale),
                                       {channels, frames}, generator, torch::kDouble);
    return levels / full_scale;
}

double max_abs_difference(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace

TEST_CASE("WAV and FLAC round trips are exact on the PCM grid and float WAV is exact", "[unit]") {
    test::TempDir dir;
    struct Case {
        AudioFormat format;
        const char* file;
        int bits;   // 0: float
    };
    const Case cases[] = {{AudioFormat::kWavPcm16, "a.wav", 16},  {AudioFormat::kWavPcm24, "b.wav", 24},
                          {AudioFormat::kWavFloat, "c.wav", 0},   {AudioFormat::kFlacPcm16, "d.flac", 16},
                          {AudioFormat::kFlacPcm24, "e.flac", 24}};
    for (const Case& c : cases) {
        INFO(onestep::audio_format_name(c.format));
        at::Tensor signal = c.bits ? pcm_grid(2, 5000, c.bits, 3) : pcm_grid(2, 5000, 24, 3).to(torch::kFloat) * 1.7;
        std::string path = dir / c.file;
        CHECK(onestep::write_audio(path, signal, 22050, c.format) == 0);
        onestep::AudioInfo info = onestep::probe_audio(path);
        CHECK(info.sample_rate == 22050);
        CHECK(info.channels == 2);
        CHECK(info.frames == 5000);
        CHECK(info.format == onestep::audio_format_name(c.format));
        onestep::AudioData data = onestep::read_audio(path, torch::kDouble);
        REQUIRE(data.samples.sizes() == signal.sizes());
        CHECK(max_abs_difference(data.samples, signal) == 0.0);

        // Off-grid values come back within half a step.
        if (c.bits) {
            at::Tensor off_grid = signal + 0.3 / std::ldexp(1.0, c.bits - 1);
            onestep::write_audio(path, off_grid, 22050, c.format);
            CHECK(max_abs_difference(onestep::read_audio(path).samples, off_grid) <= 0.5 / std::ldexp(1.0, c.bits - 1) + 1e-7);
        }
    }
}

TEST_CASE("Ogg Vorbis writes and reads back close to the input", "[unit]") {
    test::TempDir dir;
    at::Tensor time = torch::arange(22050, torch::kDouble) / 22050.0;
    at::Tensor tone = torch::stack({0.3 * torch::sin(2 * M_PI * 440 * time), 0.2 * torch::sin(2 * M_PI * 660 * time)});
    onestep::write_audio(dir / "t.ogg", tone, 22050, AudioFormat::kOggVorbis);
    onestep::AudioData data = onestep::read_audio(dir / "t.ogg");
    CHECK(data.info.format == "ogg-vorbis");
    CHECK(data.info.channels == 2);
    REQUIRE(data.info.frames == 22050);
    double error = (data.samples.to(torch::kDouble) - tone).pow(2).sum().item<double>();
    CHECK(10 * std::log10(tone.pow(2).sum().item<double>() / error) > 15.0);
}

TEST_CASE("chunked reads concatenate to the whole file and seek", "[unit]") {
    test::TempDir dir;
    at::Tensor signal = pcm_grid(3, 10007, 16, 5);
    onestep::AudioWriter writer(dir / "x.wav", 8000, 3, AudioFormat::kWavPcm16);
    for (int64_t start = 0; start < 10007; start += 3000) writer.write(signal.narrow(1, start, std::min<int64_t>(3000, 10007 - start)));
    CHECK(writer.frames_written() == 10007);
    writer.close();

    onestep::AudioReader reader(dir / "x.wav");
    std::vector<at::Tensor> blocks;
    while (true) {
        at::Tensor block = reader.read(1024);
        CHECK(block.scalar_type() == torch::kFloat);
        if (block.size(1) == 0) break;
        CHECK(block.size(0) == 3);
        blocks.push_back(block);
    }
    CHECK(blocks.size() == 10);
    CHECK(reader.position() == 10007);
    CHECK(max_abs_difference(torch::cat(blocks, 1), signal) == 0.0);
    reader.seek(5000);
    CHECK(max_abs_difference(reader.read(7, torch::kDouble), signal.narrow(1, 5000, 7)) == 0.0);
    CHECK_THAT(test::user_error_message([&] { reader.read_exactly(10000); }), Contains("x.wav"));
}

TEST_CASE("the writer is atomic: nothing at the path until close, no temporary left", "[unit]") {
    test::TempDir dir;
    std::string path = dir / "out.wav";
    {
        onestep::AudioWriter writer(path, 8000, 1, AudioFormat::kWavFloat);
        writer.write(torch::ones({1, 100}));
        CHECK_FALSE(fs::exists(path));
    }
    CHECK_FALSE(fs::exists(path));
    CHECK_FALSE(fs::exists(path + ".tmp"));

    test::write_text(path, "old contents");
    onestep::AudioWriter writer(path, 8000, 1, AudioFormat::kWavFloat);
    writer.write(torch::ones({1, 100}));
    CHECK(test::read_text(path) == "old contents");
    writer.close();
    CHECK(onestep::probe_audio(path).frames == 100);
    CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("PCM output is clipped to full scale and counted", "[unit]") {
    test::TempDir dir;
    at::Tensor signal = torch::tensor({0.5, 1.5, -2.0, 0.999}, torch::kDouble).unsqueeze(0);
    CHECK(onestep::write_audio(dir / "c.wav", signal, 8000, AudioFormat::kWavPcm16) == 2);
    at::Tensor back = onestep::read_audio(dir / "c.wav", torch::kDouble).samples;
    CHECK(back[0][1].item<double>() == 32767.0 / 32768.0);
    CHECK(back[0][2].item<double>() == -1.0);
    CHECK(onestep::write_audio(dir / "f.wav", signal, 8000, AudioFormat::kWavFloat) == 0);
    CHECK(onestep::read_audio(dir / "f.wav", torch::kDouble).samples[0][1].item<double>() == 1.5);
    std::string message = test::user_error_message([&] {
        onestep::write_audio(dir / "n.wav", torch::full({1, 4}, NAN), 8000, AudioFormat::kWavPcm16);
    });
    CHECK_THAT(message, Contains("n.wav"));
    CHECK_FALSE(fs::exists(dir / "n.wav"));
}

TEST_CASE("unreadable, corrupt and truncated files are UserErrors naming the file", "[unit]") {
    test::TempDir dir;
    test::write_text(dir / "garbage.wav", std::string(4096, '\x5a'));
    CHECK_THAT(test::user_error_message([&] { onestep::probe_audio(dir / "garbage.wav"); }),
               Contains("garbage.wav") && Contains("corrupt or unsupported"));
    test::write_text(dir / "empty.flac", "");
    CHECK_THAT(test::user_error_message([&] { onestep::AudioReader reader(dir / "empty.flac"); }), Contains("empty.flac"));
    CHECK_THAT(test::user_error_message([&] { onestep::read_audio(dir / "missing.wav"); }),
               Contains("missing.wav") && Contains("no such file"));
    CHECK_THAT(test::user_error_message([&] { onestep::audio_format_from_name("mp3"); }), Contains("wav-pcm16"));

    // A FLAC file cut in half: the header promises frames the stream no longer has.
    onestep::write_audio(dir / "whole.flac", pcm_grid(2, 50000, 16, 9), 8000, AudioFormat::kFlacPcm16);
    std::string bytes = test::read_text(dir / "whole.flac");
    test::write_text(dir / "cut.flac", bytes.substr(0, bytes.size() / 2));
    CHECK_THAT(test::user_error_message([&] { onestep::read_audio(dir / "cut.flac"); }), Contains("cut.flac"));
}
#endif
