// Chunked separation: an identity model reproduces the input for every overlap, window and
// length; streaming from a file equals the in-memory path and a naive overlap-add reference;
// results do not depend on the batch; TTA of a linear model is exact; ensembles, residual
// stems and mixture consistency.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "audio/audio_io.hpp"
#include "audio/overlap_add.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using onestep::OverlapAddSettings;
using onestep::OverlapWindow;
namespace test = onestep::test;

namespace {

at::Tensor noise(int64_t channels, int64_t frames, uint64_t seed) {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    return torch::randn({channels, frames}, generator) * 0.2;
}

// Every stem is x / K: overlap-add of it must give back x / K exactly.
onestep::SeparatorFn split_evenly(int64_t stems) {
    return [stems](const at::Tensor& x) { return (x / static_cast<double>(stems)).unsqueeze(1).repeat({1, stems, 1, 1}); };
}

// A model whose output depends on the whole chunk (its mean), so windows and chunk borders matter.
onestep::SeparatorFn context_model() {
    return [](const at::Tensor& x) {
        at::Tensor context = x.mean(-1, /*keepdim=*/true);
        return torch::stack({torch::tanh(3 * x) + context, x * x - context}, 1);
    };
}

// The spec's formula on whole arrays: pad, cut every chunk, weight, sum, divide, crop.
at::Tensor naive_overlap_add(const at::Tensor& x, const onestep::SeparatorFn& model, const OverlapAddSettings& s) {
    const int64_t frames = x.size(1), border = s.border(), step = s.step(), length = s.chunk;
    at::Tensor padded = frames > 2 * border
                            ? torch::reflection_pad1d(x.unsqueeze(0), {border, border}).squeeze(0)
                            : torch::constant_pad_nd(x, {border, border}, 0.0);
    const int64_t total = padded.size(1);
    const int64_t chunks = total <= length ? 1 : (total - length + step - 1) / step + 1;
    padded = torch::constant_pad_nd(padded, {0, (chunks - 1) * step + length - total}, 0.0);
    at::Tensor numerator, weight = torch::zeros({padded.size(1)});
    for (int64_t k = 0; k < chunks; ++k) {
        at::Tensor out = model(padded.slice(1, k * step, k * step + length).unsqueeze(0))[0];
        if (!numerator.defined()) numerator = torch::zeros({out.size(0), x.size(0), padded.size(1)});
        at::Tensor window = onestep::overlap_window(s, k == 0, k == chunks - 1);
        numerator.slice(2, k * step, k * step + length) += out * window;
        weight.slice(0, k * step, k * step + length) += window;
    }
    return (numerator / weight).slice(2, border, border + frames);
}

}  // namespace

TEST_CASE("overlap-add of an identity model reproduces the input for every overlap and window", "[unit]") {
    for (OverlapWindow window : {OverlapWindow::kTriangle, OverlapWindow::kFade}) {
        for (double overlap : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9}) {
            if (window == OverlapWindow::kFade && overlap < 0.1) continue;
            for (int64_t frames : {100, 999, 4321}) {
                for (int64_t batch : {1, 3}) {
                    OverlapAddSettings settings;
                    settings.chunk = 400;
                    settings.overlap = overlap;
                    settings.window = window;
                    settings.batch = batch;
                    at::Tensor x = noise(2, frames, static_cast<uint64_t>(frames));
                    at::Tensor stems = onestep::separate_tensor(x, split_evenly(3), 3, settings);
                    INFO("window " << static_cast<int>(window) << " overlap " << overlap << " frames " << frames);
                    REQUIRE(stems.sizes() == at::IntArrayRef({3, 2, frames}));
                    CHECK((stems[1] - x / 3).abs().max().item<float>() < 1e-5f);
                }
            }
        }
    }
}

TEST_CASE("overlap-add equals the naive formula and does not depend on the batch size", "[unit]") {
    at::Tensor x = noise(2, 5000, 9);
    for (OverlapWindow window : {OverlapWindow::kTriangle, OverlapWindow::kFade}) {
        OverlapAddSettings settings;
        settings.chunk = 512;
        settings.overlap = 0.5;
        settings.window = window;
        settings.batch = 1;
        at::Tensor one = onestep::separate_tensor(x, context_model(), 2, settings);
        settings.batch = 4;
        at::Tensor four = onestep::separate_tensor(x, context_model(), 2, settings);
        CHECK((one - four).abs().max().item<float>() < 1e-6f);
        CHECK((one - naive_overlap_add(x, context_model(), settings)).abs().max().item<float>() < 1e-5f);
    }
}

TEST_CASE("streaming separation from a file equals the in-memory path", "[unit]") {
    test::TempDir dir;
    at::Tensor x = noise(2, 20011, 10);
    onestep::write_audio(dir / "in.wav", x, 8000, onestep::AudioFormat::kWavFloat);
    OverlapAddSettings settings;
    settings.chunk = 1024;
    settings.overlap = 0.25;
    settings.batch = 2;
    onestep::AudioReader reader(dir / "in.wav");
    std::vector<at::Tensor> blocks;
    onestep::separate_stream(reader, context_model(), 2, settings, [&](const at::Tensor& block) { blocks.push_back(block); });
    at::Tensor streamed = torch::cat(blocks, 2);
    CHECK(blocks.size() > 5);   // written as it goes, not at the end
    at::Tensor in_memory = onestep::separate_tensor(x, context_model(), 2, settings);
    REQUIRE(streamed.sizes() == in_memory.sizes());
    CHECK((streamed - in_memory).abs().max().item<float>() < 1e-6f);
}

TEST_CASE("TTA of a channel-symmetric linear model is exact; ensembles, residual and consistency", "[unit]") {
    at::Tensor chunks = noise(2, 300, 11).unsqueeze(0).repeat({3, 1, 1});
    // f(x)_k = a_k x + b_k (x_L + x_R): linear, odd, and unchanged by swapping channels.
    onestep::SeparatorFn linear = [](const at::Tensor& x) {
        at::Tensor sum = x.sum(1, /*keepdim=*/true).expand_as(x);
        return torch::stack({0.7 * x + 0.1 * sum, 0.3 * x - 0.1 * sum}, 1);
    };
    at::Tensor plain = linear(chunks);
    CHECK((onestep::with_tta(linear, true, true)(chunks) - plain).abs().max().item<float>() < 1e-6f);
    // A model that treats channels differently is changed by the swap: the check can fail.
    onestep::SeparatorFn lopsided = [](const at::Tensor& x) {
        return torch::stack({x * torch::tensor({1.0f, 0.0f}).view({1, 2, 1}), x}, 1);
    };
    CHECK((onestep::with_tta(lopsided, true, false)(chunks) - lopsided(chunks)).abs().max().item<float>() > 0.01f);

    CHECK((onestep::ensemble({linear, linear, linear}, {}, 2)(chunks) - plain).abs().max().item<float>() < 1e-6f);
    onestep::SeparatorFn doubled = [&](const at::Tensor& x) { return 2 * linear(x); };
    at::Tensor mixed = onestep::ensemble({linear, doubled}, {{1, 1}, {0, 3}}, 2)(chunks);
    CHECK((mixed.select(1, 0) - plain.select(1, 0)).abs().max().item<float>() < 1e-6f);
    CHECK((mixed.select(1, 1) - 1.75 * plain.select(1, 1)).abs().max().item<float>() < 1e-6f);
    CHECK_THAT(test::user_error_message([&] { onestep::ensemble({linear, doubled}, {{1, 0}}, 2); }),
               Contains("1 rows for 2 models"));

    at::Tensor residual = onestep::with_residual_stem(lopsided, 1)(chunks);
    CHECK((residual.sum(1) - chunks).abs().max().item<float>() < 1e-6f);
    at::Tensor consistent = onestep::with_mixture_consistency(lopsided)(chunks);
    CHECK((consistent.sum(1) - chunks).abs().max().item<float>() < 1e-6f);
}

TEST_CASE("overlap-add settings are checked", "[unit]") {
    OverlapAddSettings settings;
    settings.window = OverlapWindow::kFade;
    settings.overlap = 0.05;
    CHECK_THAT(test::user_error_message([&] { settings.validate(); }), Contains("fade needs --overlap of at least 0.1"));
    settings.window = OverlapWindow::kTriangle;
    settings.overlap = 0.95;
    CHECK_THAT(test::user_error_message([&] { settings.validate(); }), Contains("--overlap must be in [0, 0.9]"));
    CHECK_THAT(test::user_error_message([] { onestep::overlap_window_from_name("hann"); }), Contains("triangle, fade"));
}
#endif
