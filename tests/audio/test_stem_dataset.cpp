// MUSDB-style stem folders: data-driven stem names, validation errors that name the file,
// cropping, residual stems, the index cache; the chunk sampler's determinism, remixing and
// augmentations.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include <filesystem>
#include <set>

#include "audio/audio_io.hpp"
#include "audio/stem_dataset.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using onestep::AudioFormat;
namespace test = onestep::test;

namespace {

constexpr int64_t kRate = 8000;

// Stem K of song I holds the constant level(i, k) on both channels (left) and its negative
// (right), so a chunk tells which song and stem it came from and whether channels were swapped.
double level(int song, int stem) { return 0.01 * (10 * (song + 1) + stem + 1); }

void write_song(const std::string& folder, int song, const std::vector<std::string>& stems, int64_t frames,
                bool with_mixture = true, int64_t rate = kRate) {
    fs::create_directories(folder);
    at::Tensor sum = torch::zeros({2, frames}, torch::kDouble);
    for (size_t k = 0; k < stems.size(); ++k) {
        at::Tensor signal = torch::full({2, frames}, level(song, static_cast<int>(k)), torch::kDouble);
        signal[1].neg_();
        onestep::write_audio(folder + "/" + stems[k] + ".wav", signal, rate, AudioFormat::kWavFloat);
        sum += signal;
    }
    if (with_mixture) onestep::write_audio(folder + "/mixture.wav", sum, rate, AudioFormat::kWavFloat);
}

}  // namespace

TEST_CASE("stem folders: stems come from the data, songs and lengths are indexed", "[unit]") {
    test::TempDir dir;
    for (int i = 0; i < 3; ++i) write_song(dir / ("train/song" + std::to_string(i)), i, {"keys", "bass", "drums"}, 4000 + 1000 * i);
    onestep::StemDataset data = onestep::StemDataset::open(dir.path(), "train", {});
    REQUIRE(data.stems() == std::vector<std::string>{"bass", "drums", "keys"});
    REQUIRE(data.songs().size() == 3);
    CHECK(data.sample_rate() == kRate);
    CHECK(data.channels() == 2);
    CHECK(data.song(2).frames == 6000);
    CHECK(data.total_frames() == 15000);
    CHECK(data.song(0).mixture_sum_snr_db > 100);   // float32 rounding of the sums only
    // Sorted stems: bass was written second (k = 1).
    at::Tensor bass = data.read_stem(1, 0, 100, 50);
    CHECK(bass[0].mean().item<double>() == Approx(level(1, 1)).epsilon(1e-6));
    // Past the end reads nothing, the mixture is the file's.
    CHECK(data.read_stem(0, 0, 3990, 50).size(1) == 10);
    CHECK(data.read_mixture(0, 0, 10)[0][0].item<double>() ==
          Approx(level(0, 0) + level(0, 1) + level(0, 2)).epsilon(1e-6));
    REQUIRE(fs::exists(dir / "train/../.onestep-index.json"));

    // The index answers the second open; a changed file is probed again.
    write_song(dir / "train/song0", 0, {"keys", "bass", "drums"}, 4500);
    onestep::StemDataset again = onestep::StemDataset::open(dir.path(), "train", {});
    CHECK(again.song(0).frames == 4500);
}

TEST_CASE("stem folders: bad layouts are refused naming the file", "[unit]") {
    test::TempDir dir;
    write_song(dir / "train/a", 0, {"bass", "drums"}, 3000);
    write_song(dir / "train/b", 1, {"bass"}, 3000);
    CHECK_THAT(test::user_error_message([&] { onestep::StemDataset::open(dir.path(), "train", {}); }),
               Contains("train/b has no stem 'drums'"));
    onestep::StemDatasetOptions zeros;
    zeros.missing_stem_zeros = true;
    onestep::StemDataset filled = onestep::StemDataset::open(dir.path(), "train", zeros);
    CHECK(filled.read_stem(1, 1, 0, 100).abs().max().item<double>() == 0);

    write_song(dir / "valid/a", 0, {"bass", "drums"}, 3000);
    write_song(dir / "valid/b", 1, {"bass", "drums"}, 3000, true, 16000);
    CHECK_THAT(test::user_error_message([&] { onestep::StemDataset::open(dir.path(), "valid", {}); }),
               Contains("is at 16000 Hz but"));

    write_song(dir / "test/a", 0, {"bass", "drums"}, 3000);
    onestep::write_audio(dir / "test/a/drums.wav", torch::zeros({2, 5000}), kRate, AudioFormat::kWavFloat);
    CHECK_THAT(test::user_error_message([&] { onestep::StemDataset::open(dir.path(), "test", {}); }),
               Contains("differ in length by 2000 frames"));
    onestep::write_audio(dir / "test/a/drums.wav", torch::zeros({1, 3000}), kRate, AudioFormat::kWavFloat);
    CHECK_THAT(test::user_error_message([&] { onestep::StemDataset::open(dir.path(), "test", {}); }),
               Contains("--mono-to-stereo"));
    onestep::StemDatasetOptions widen;
    widen.mono_to_stereo = true;
    CHECK(onestep::StemDataset::open(dir.path(), "test", widen).read_stem(0, 1, 0, 10).size(0) == 2);
    CHECK_THAT(test::user_error_message([&] { onestep::StemDataset::open(dir.path(), "nope", {}); }),
               Contains("has no 'nope' split"));
}

TEST_CASE("stem folders: small length mismatches are cropped and the residual stem is computed", "[unit]") {
    test::TempDir dir;
    write_song(dir / "train/a", 0, {"bass", "drums", "other"}, 3000);
    onestep::write_audio(dir / "train/a/bass.wav", torch::full({2, 3500}, level(0, 0)), kRate, AudioFormat::kWavFloat);
    onestep::StemDatasetOptions options;
    options.residual_stem = "other";
    fs::remove(dir / "train/a/other.wav");
    onestep::StemDataset data = onestep::StemDataset::open(dir.path(), "train", options);
    CHECK(data.song(0).frames == 3000);
    REQUIRE(data.stems() == std::vector<std::string>{"bass", "drums", "other"});
    at::Tensor other = data.read_stem(0, 2, 0, 100);
    // Left channel: mixture minus bass minus drums leaves the deleted 'other' level.
    CHECK(other[0].mean().item<double>() == Approx(level(0, 2)).epsilon(1e-5));
}

TEST_CASE("stem sampler: reproducible per step, mixtures are sums, remixing draws stems apart", "[unit]") {
    test::TempDir dir;
    for (int i = 0; i < 4; ++i) write_song(dir / ("train/s" + std::to_string(i)), i, {"a", "b", "c"}, 3000);
    onestep::StemDataset data = onestep::StemDataset::open(dir.path(), "train", {});
    onestep::StemSamplerOptions options;
    options.chunk_frames = 500;
    options.batch = 16;
    options.seed = 5;
    onestep::StemChunkSampler sampler(data, options);
    onestep::StemBatch first = sampler.batch(3), again = sampler.batch(3), other = sampler.batch(4);
    REQUIRE(first.stems.sizes() == at::IntArrayRef({16, 3, 2, 500}));
    REQUIRE(first.mixture.sizes() == at::IntArrayRef({16, 2, 500}));
    CHECK(torch::equal(first.stems, again.stems));
    CHECK(!torch::equal(first.stems, other.stems));
    CHECK((first.mixture - first.stems.sum(1)).abs().max().item<float>() < 1e-6f);

    // Gains lie in [0.25, 1.25], signs and channel order vary across the batch.
    at::Tensor left = first.stems.select(2, 0).select(2, 0);   // [B, K]
    std::set<int> signs;
    for (int64_t b = 0; b < 16; ++b)
        for (int64_t k = 0; k < 3; ++k) signs.insert(left[b][k].item<double>() > 0 ? 1 : -1);
    CHECK(signs.size() == 2);

    // Without augmentation and without remixing every stem of an example comes from one song.
    options.p_remix = 0;
    options.gain_min = options.gain_max = 1;
    options.p_channel_swap = options.p_polarity_flip = 0;
    onestep::StemBatch coherent = onestep::StemChunkSampler(data, options).batch(0);
    int mixed_songs = 0;
    for (int64_t b = 0; b < 16; ++b) {
        double a = coherent.stems[b][0][0][0].item<double>();
        int song = static_cast<int>(std::lround(a / 0.01)) / 10 - 1;
        for (int64_t k = 0; k < 3; ++k)
            CHECK(coherent.stems[b][k][0][0].item<double>() == Approx(level(song, static_cast<int>(k))).epsilon(1e-6));
        CHECK(coherent.stems[b][0][1][0].item<double>() < 0);   // no swap
    }
    // With remixing, stems of one example come from different songs somewhere in the batch.
    options.p_remix = 1;
    onestep::StemBatch remixed = onestep::StemChunkSampler(data, options).batch(0);
    for (int64_t b = 0; b < 16; ++b) {
        int song_a = static_cast<int>(std::lround(remixed.stems[b][0][0][0].item<double>() / 0.01)) / 10;
        int song_b = static_cast<int>(std::lround(remixed.stems[b][1][0][0].item<double>() / 0.01)) / 10;
        mixed_songs += song_a != song_b;
    }
    CHECK(mixed_songs > 0);
}

TEST_CASE("stem sampler: silent stem chunks are redrawn, silent mixtures never pass", "[unit]") {
    test::TempDir dir;
    // Song 0's stem 'a' is silent in its first half, so a third of the chunk offsets give silence.
    write_song(dir / "train/s0", 0, {"a", "b"}, 4000);
    at::Tensor half = torch::full({2, 4000}, level(0, 0));
    half.slice(1, 0, 2000).zero_();
    onestep::write_audio(dir / "train/s0/a.wav", half, kRate, AudioFormat::kWavFloat);
    onestep::write_audio(dir / "train/s0/mixture.wav", half + torch::full({2, 4000}, level(0, 1)) * torch::tensor({{1.0}, {-1.0}}),
                         kRate, AudioFormat::kWavFloat);
    onestep::StemDataset data = onestep::StemDataset::open(dir.path(), "train", {});
    onestep::StemSamplerOptions options;
    options.chunk_frames = 1000;
    options.batch = 32;
    options.gain_min = options.gain_max = 1;
    onestep::StemBatch batch = onestep::StemChunkSampler(data, options).batch(0);
    at::Tensor mean_abs = batch.stems.abs().mean({2, 3});   // [B, K]
    // Without redraws about 11 of 32 'a' chunks would be silent; with 8 redraws (3^-9) none is.
    CHECK((mean_abs.select(1, 0) < 1e-3).sum().item<int64_t>() == 0);
    options.silent_retries = 0;
    at::Tensor unfiltered = onestep::StemChunkSampler(data, options).batch(0).stems.abs().mean({2, 3});
    CHECK((unfiltered.select(1, 0) < 1e-3).sum().item<int64_t>() >= 4);
    CHECK((batch.mixture.abs().mean({1, 2}) >= 1e-3).all().item<bool>());

    test::TempDir quiet;
    fs::create_directories(quiet / "train/s");
    onestep::write_audio(quiet / "train/s/a.wav", torch::zeros({2, 4000}), kRate, AudioFormat::kWavFloat);
    onestep::StemDataset silent = onestep::StemDataset::open(quiet.path(), "train", {});
    CHECK_THAT(test::user_error_message([&] { onestep::StemChunkSampler(silent, options).batch(0); }),
               Contains("is the data silent?"));
}
#endif
