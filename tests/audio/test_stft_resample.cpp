// The STFT front end against a naive float64 DFT and for round trips; libsamplerate resampling:
// exact lengths, a sine keeps frequency, amplitude and phase, streaming equals one call.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "audio/resample.hpp"
#include "audio/stft.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
namespace test = onestep::test;

namespace {

at::Tensor noise(std::vector<int64_t> shape, uint64_t seed, at::ScalarType dtype = torch::kDouble) {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    return torch::randn(shape, generator, torch::TensorOptions().dtype(dtype));
}

// X[f, m] = sum_n w[n] x~[m H + n] exp(-2 pi i f n / N), x~ reflect-padded by N/2, in float64.
at::Tensor naive_stft(const at::Tensor& x, int64_t n_fft, int64_t hop) {
    const int64_t samples = x.size(0), half = n_fft / 2;
    auto reflected = [&](int64_t i) {
        if (i < 0) i = -i;
        if (i >= samples) i = 2 * (samples - 1) - i;
        return x[i].item<double>();
    };
    const int64_t frames = 1 + samples / hop, bins = half + 1;
    at::Tensor out = torch::zeros({bins, frames}, torch::kComplexDouble);
    at::Tensor n = torch::arange(n_fft, torch::kDouble);
    at::Tensor window = 0.5 - 0.5 * torch::cos(2 * M_PI * n / n_fft);
    at::Tensor f = torch::arange(bins, torch::kDouble).unsqueeze(1);
    at::Tensor angle = -2 * M_PI * f * n.unsqueeze(0) / n_fft;   // [bins, n_fft]
    at::Tensor basis = torch::complex(torch::cos(angle), torch::sin(angle));
    for (int64_t m = 0; m < frames; ++m) {
        at::Tensor segment = torch::empty({n_fft}, torch::kDouble);
        for (int64_t k = 0; k < n_fft; ++k) segment[k] = reflected(m * hop + k - half);
        out.select(1, m).copy_(torch::matmul(basis, torch::complex(segment * window, torch::zeros_like(segment))));
    }
    return out;
}

}  // namespace

TEST_CASE("stft equals a naive float64 DFT of the reflect-padded, Hann-windowed frames", "[unit]") {
    for (auto [n_fft, hop, samples] : {std::tuple<int64_t, int64_t, int64_t>{64, 16, 301}, {128, 32, 1000}, {32, 8, 97}}) {
        at::Tensor x = noise({samples}, 7 + samples);
        onestep::StftConfig config{n_fft, hop};
        at::Tensor ours = onestep::stft(x, config);
        at::Tensor reference = naive_stft(x, n_fft, hop);
        REQUIRE(ours.sizes() == reference.sizes());
        REQUIRE(ours.size(1) == 1 + samples / hop);
        CHECK((ours - reference).abs().max().item<double>() < 1e-9);
    }
}

TEST_CASE("istft inverts stft for the separators' window/hop pairs, any length and batch shape", "[unit]") {
    for (auto [n_fft, hop] : {std::pair<int64_t, int64_t>{512, 128}, {1024, 256}, {2048, 512}, {4096, 1024}, {2048, 441}}) {
        onestep::StftConfig config{n_fft, hop};
        for (int64_t samples : {n_fft * 5 + 17, hop * 9, n_fft / 2 - 3}) {
            at::Tensor x = noise({2, 3, samples}, 11 + n_fft + samples, torch::kFloat);
            at::Tensor spectrum = onestep::stft(x, config);
            REQUIRE(spectrum.sizes() == at::IntArrayRef({2, 3, config.bins(), config.frames(samples)}));
            at::Tensor back = onestep::istft(spectrum, config, samples);
            REQUIRE(back.sizes() == x.sizes());
            INFO("n_fft " << n_fft << " hop " << hop << " samples " << samples);
            CHECK((back - x).abs().max().item<float>() < 1e-6f * 8);
        }
    }
}

TEST_CASE("stft refuses a hop that the window cannot invert", "[unit]") {
    CHECK_THAT(test::user_error_message([] { onestep::check_stft_config({1024, 700}); }), Contains("hop must be in 1..512"));
    CHECK_THAT(test::user_error_message([] { onestep::check_stft_config({1023, 256}); }), Contains("positive even"));
}

TEST_CASE("resampling keeps a sine's frequency, amplitude and phase at the exact output length", "[unit]") {
    const int64_t from = 44100, to = 22050, frames = 44100;
    const double hz = 1000;
    at::Tensor time_in = torch::arange(frames, torch::kDouble) / from;
    at::Tensor sine = (0.5 * torch::sin(2 * M_PI * hz * time_in)).unsqueeze(0).repeat({2, 1});
    at::Tensor out = onestep::resample(sine, from, to);
    REQUIRE(out.sizes() == at::IntArrayRef({2, 22050}));
    at::Tensor time_out = torch::arange(out.size(1), torch::kDouble) / to;
    at::Tensor expected = 0.5 * torch::sin(2 * M_PI * hz * time_out);
    // Away from the edges (where the sinc filter sees the stream's zero boundary) the resampled
    // sine is the ideal one to within the converter's passband ripple.
    at::Tensor error = (out[0].to(torch::kDouble) - expected).slice(0, 500, -500).abs().max();
    CHECK(error.item<double>() < 1e-3);
    at::Tensor up = onestep::resample(out, to, 48000);
    CHECK(up.size(1) == 48000);
}

TEST_CASE("streaming resampling in uneven blocks equals resampling in one call", "[unit]") {
    at::Tensor x = noise({2, 30001}, 3, torch::kFloat) * 0.1;
    at::Tensor whole = onestep::resample(x, 44100, 16000);
    onestep::Resampler resampler(44100, 16000, 2);
    std::vector<at::Tensor> parts;
    int64_t position = 0;
    for (int64_t block : {1000, 7, 12345, 4096}) {
        parts.push_back(resampler.process(x.slice(1, position, position + block)));
        position += block;
    }
    parts.push_back(resampler.process(x.slice(1, position)));
    parts.push_back(resampler.finish());
    at::Tensor streamed = torch::cat(parts, 1);
    REQUIRE(streamed.size(1) == whole.size(1));
    REQUIRE(streamed.size(1) == std::llround(30001.0 * 16000 / 44100));
    CHECK((streamed - whole).abs().max().item<float>() < 1e-6f);
}

TEST_CASE("resampling names an impossible ratio or an unknown quality", "[unit]") {
    CHECK_THAT(test::user_error_message([] { onestep::Resampler(1000, 400000, 1); }), Contains("cannot convert 1000 Hz"));
    CHECK_THAT(test::user_error_message([] { onestep::resample_quality_from_name("great"); }),
               Contains("best, medium, fastest, linear"));
}
#endif
