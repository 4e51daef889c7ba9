// BSSEval v4 closed-form checks (audio spec §1.6 items 2, 3, 5, 6, 7, 8) on seeded float64 noise
// at 8 kHz (1 s frames of 8000 samples), plus filtering versus leakage and the museval rounding.
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "metrics/audio_sdr.hpp"
#include "metrics/bsseval.hpp"

namespace {

using onestep::BssEvalFrameScores;
using onestep::BssEvalOptions;
using onestep::BssEvalResult;

constexpr int64_t kRate = 8000;

at::Tensor noise(at::IntArrayRef shape, uint64_t seed) {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    return torch::randn(shape, generator, torch::kDouble);
}

// J independent stereo sources, each channel zero-mean with RMS 0.1: [J, 2, seconds * 8000].
at::Tensor make_sources(int64_t sources, double seconds, uint64_t seed) {
    at::Tensor s = noise({sources, 2, static_cast<int64_t>(std::llround(seconds * kRate))}, seed);
    s = s - s.mean(2, true);
    return s * (0.1 / s.pow(2).mean(2, true).sqrt());
}

BssEvalOptions options() { return onestep::bsseval_options(kRate); }

// Calls ADD(reference_block, estimate_block) on consecutive blocks of BLOCK samples.
template <typename Add>
void in_blocks(const at::Tensor& references, const at::Tensor& estimates, int64_t block, Add add) {
    int64_t length = references.size(2);
    for (int64_t start = 0; start < length; start += block) {
        int64_t n = std::min(block, length - start);
        add(references.narrow(2, start, n), estimates.narrow(2, start, n));
    }
}

// Both streaming passes fed in blocks of BLOCK samples.
BssEvalResult run_stream(const at::Tensor& references, const at::Tensor& estimates, int64_t block = 1 << 16) {
    onestep::BssEvalStream stream(references.size(0), references.size(1), references.size(2), options());
    in_blocks(references, estimates, block, [&](const at::Tensor& s, const at::Tensor& e) { stream.add_correlations(s, e); });
    stream.fit_filters();
    in_blocks(references, estimates, block, [&](const at::Tensor& s, const at::Tensor& e) { stream.add_frames(s, e); });
    return stream.result();
}

BssEvalResult run_fast(const at::Tensor& references, const at::Tensor& estimates, int64_t block = 1 << 16) {
    onestep::FrameSnrAccumulator accumulator(references.size(0), references.size(1), references.size(2), options());
    in_blocks(references, estimates, block, [&](const at::Tensor& s, const at::Tensor& e) { accumulator.add(s, e); });
    return accumulator.result();
}

// 10 log10(|y_j^t|^2 / |s^_j^t - y_j^t|^2) by hand.
double frame_snr(const at::Tensor& references, const at::Tensor& estimates, int64_t j, int64_t frame) {
    at::Tensor s = references[j].narrow(1, frame * kRate, kRate), e = estimates[j].narrow(1, frame * kRate, kRate);
    return 10.0 * std::log10(s.pow(2).sum().item<double>() / (e - s).pow(2).sum().item<double>());
}

double relative(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

// Same value, or both NaN, or the same infinity.
bool same(double a, double b, double tolerance) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return relative(a, b) <= tolerance;
}

}  // namespace

TEST_CASE("bsseval frame count, museval rounding and NaN-ignoring median", "[unit][bsseval]") {
    CHECK(onestep::bsseval_frame_count(84000, 8000) == 10);   // 10.5 s: the partial second is dropped
    CHECK(onestep::bsseval_frame_count(80000, 8000) == 10);
    CHECK(onestep::bsseval_frame_count(8000, 8000) == 1);
    CHECK(onestep::bsseval_frame_count(5000, 8000) == 1);     // shorter than a frame: one short frame
    CHECK(onestep::bsseval_options(44100).win == 44100);
    CHECK(std::isnan(onestep::museval_quantize(INFINITY)));
    CHECK(std::isnan(onestep::museval_quantize(-INFINITY)));
    CHECK(onestep::museval_quantize(7.123456789) == 7.12346);
    CHECK(onestep::museval_quantize(-3.0102999566) == -3.0103);
    CHECK(onestep::nan_median({3.0, NAN, 1.0, 2.0, 10.0}) == 2.5);
    CHECK(std::isnan(onestep::nan_median({NAN, NAN})));
    // An infinite frame is left out of the median, as in museval's files.
    std::vector<BssEvalFrameScores> frames(3);
    frames[0].sdr = 1.0;
    frames[1].sdr = INFINITY;
    frames[2].sdr = 2.0;
    onestep::BssEvalMedians medians = onestep::bsseval_medians(frames);
    CHECK(medians.sdr == 1.5);
    CHECK(medians.frames_nan == 1);
    CHECK(medians.frames_total == 3);
}

TEST_CASE("bsseval: a gain counts as spatial distortion (spec 1.6 item 2)", "[unit][bsseval]") {
    at::Tensor s = make_sources(2, 3.0, 11);
    at::Tensor estimate = s.clone();
    estimate[0] = 0.5 * s[0];
    BssEvalResult result = run_stream(s, estimate);
    REQUIRE_FALSE(result.skipped);
    REQUIRE(result.frames == 3);
    for (const auto& frame : result.targets[0]) {
        CHECK(std::abs(frame.sdr - 6.0206) < 0.01);
        CHECK(std::abs(frame.isr - 6.0206) < 0.01);
        CHECK(frame.sir >= 60);
        CHECK(frame.sar >= 60);
    }
    // The untouched estimate: its frame SDR is exactly +inf (zero error).
    for (const auto& frame : result.targets[1]) CHECK(frame.sdr == INFINITY);
}

TEST_CASE("bsseval with independent noise: SDR = frame SNR, SAR = SNR, SIR = SNR + 10log10(N/((J-1)CL)) "
          "(spec 1.6 item 3)",
          "[unit][bsseval]") {
    const int64_t sources = 2, channels = 2;
    at::Tensor s = make_sources(sources, 20.0, 21);
    const double length = static_cast<double>(s.size(2));
    for (double snr : {0.0, 10.0, 20.0}) {
        INFO("SNR " << snr);
        at::Tensor n = make_sources(sources, 20.0, 100 + static_cast<uint64_t>(snr));
        at::Tensor estimate = s + n * std::pow(10.0, -snr / 20.0);
        BssEvalResult result = run_stream(s, estimate);
        REQUIRE(result.frames == 20);
        double sir_expected = snr + 10.0 * std::log10(length / ((sources - 1) * channels * onestep::kBssEvalFilterLength));
        for (int64_t j = 0; j < sources; ++j) {
            for (int64_t t = 0; t < result.frames; ++t)
                CHECK(relative(result.targets[j][t].sdr, frame_snr(s, estimate, j, t)) < 1e-9);
            onestep::BssEvalMedians medians = onestep::bsseval_medians(result.targets[j]);
            CHECK(std::abs(medians.sdr - snr) < 0.1);
            CHECK(std::abs(medians.sar - snr) < 0.2);
            CHECK(std::abs(medians.sir - sir_expected) < 1.5);
        }
    }
}

TEST_CASE("bsseval: leakage of another source is interference (spec 1.6 item 5)", "[unit][bsseval]") {
    // Four stereo sources; 30 s so that the own-source projection of the leak stays below -40 dB.
    at::Tensor s = make_sources(4, 30.0, 31);
    at::Tensor estimate = s + 0.1 * s.roll(1, 0);   // s^_j = s_j + 0.1 s_{j-1}
    BssEvalResult result = run_stream(s, estimate);
    REQUIRE(result.targets.size() == 4);
    for (int64_t j = 0; j < 4; ++j) {
        INFO("target " << j);
        onestep::BssEvalMedians medians = onestep::bsseval_medians(result.targets[j]);
        CHECK(std::abs(medians.sdr - 20.0) < 0.2);
        CHECK(std::abs(medians.sir - 20.0) < 0.2);
        CHECK(medians.isr >= 40);
        CHECK(medians.sar >= 40);
    }
}

TEST_CASE("bsseval frames: partial second dropped, silent frames NaN for every target, silent tracks skipped "
          "(spec 1.6 item 6)",
          "[unit][bsseval]") {
    at::Tensor s = make_sources(2, 10.5, 41);
    at::Tensor estimate = s + 0.1 * make_sources(2, 10.5, 42);
    s[1].narrow(1, 3 * kRate, kRate).zero_();   // source 2 silent in second 3
    for (bool full : {true, false}) {
        INFO((full ? "full" : "cSDR path"));
        BssEvalResult result = full ? run_stream(s, estimate) : run_fast(s, estimate);
        REQUIRE_FALSE(result.skipped);
        REQUIRE(result.frames == 10);
        for (int64_t j = 0; j < 2; ++j) {
            REQUIRE(result.targets[j].size() == 10);
            const BssEvalFrameScores& silent = result.targets[j][3];
            CHECK(std::isnan(silent.sdr));
            CHECK(std::isnan(silent.isr));
            CHECK(std::isnan(silent.sir));
            CHECK(std::isnan(silent.sar));
            std::vector<double> others;
            for (int64_t t = 0; t < 10; ++t)
                if (t != 3) {
                    CHECK(std::isfinite(result.targets[j][t].sdr));
                    others.push_back(onestep::museval_quantize(result.targets[j][t].sdr));
                }
            onestep::BssEvalMedians medians = onestep::bsseval_medians(result.targets[j]);
            CHECK(medians.frames_nan == 1);
            CHECK(medians.frames_total == 10);
            CHECK(medians.sdr == onestep::nan_median(others));
            if (full) CHECK(std::isfinite(medians.sir));
        }
    }

    // An exactly anti-phase stereo source has a zero channel sum: silent by museval's rule.
    at::Tensor antiphase = make_sources(2, 3.0, 43);
    antiphase[0][1].narrow(0, kRate, kRate).copy_(-antiphase[0][0].narrow(0, kRate, kRate));
    at::Tensor antiphase_estimate = antiphase + 0.1 * make_sources(2, 3.0, 44);
    BssEvalResult anti = run_stream(antiphase, antiphase_estimate);
    CHECK(std::isnan(anti.targets[1][1].sdr));
    CHECK(std::isfinite(anti.targets[1][0].sdr));

    // A reference or an estimate silent over the whole track: museval refuses; we skip.
    at::Tensor quiet = make_sources(2, 3.0, 45);
    at::Tensor quiet_estimate = quiet.clone();
    quiet[1].zero_();
    CHECK(run_stream(quiet, quiet_estimate).skipped);
    CHECK(run_fast(quiet, quiet_estimate).skip_reason == onestep::kBssEvalSilentSource);
    at::Tensor loud = make_sources(2, 3.0, 46);
    at::Tensor silent_estimate = loud.clone();
    silent_estimate[0].zero_();
    CHECK(run_stream(loud, silent_estimate).skipped);
    CHECK(run_fast(loud, silent_estimate).skipped);
}

TEST_CASE("bsseval: a 100-sample delay is spatial distortion, not interference (spec 1.6 item 7)",
          "[unit][bsseval]") {
    at::Tensor s = make_sources(2, 10.0, 51);
    at::Tensor estimate = s.clone();
    estimate[0].zero_();
    estimate[0].narrow(1, 100, s.size(2) - 100).copy_(s[0].narrow(1, 0, s.size(2) - 100));
    CHECK(std::abs(onestep::usdr(s[0], estimate[0]) - (-3.0103)) < 0.05);
    BssEvalResult result = run_stream(s, estimate);
    for (int64_t t = 0; t < result.frames; ++t)
        CHECK(relative(result.targets[0][t].sdr, frame_snr(s, estimate, 0, t)) < 1e-9);
    onestep::BssEvalMedians medians = onestep::bsseval_medians(result.targets[0]);
    CHECK(std::abs(medians.isr - (-3.0103)) < 0.1);
    CHECK(medians.sir >= 40);
}

TEST_CASE("bsseval: a near-identity FIR keeps SDR high, leakage of another source lowers SIR", "[unit][bsseval]") {
    at::Tensor s = make_sources(2, 10.0, 61);
    // s^_0 = h * s_0 with h = [1, 0.05, -0.03]: the error is |h - delta|^2 = 0.0034 of the energy.
    auto filtered_copy = [&](const at::Tensor& x) {
        at::Tensor out = x.clone();
        int64_t n = x.size(1);
        out.narrow(1, 1, n - 1).add_(0.05 * x.narrow(1, 0, n - 1));
        out.narrow(1, 2, n - 2).add_(-0.03 * x.narrow(1, 0, n - 2));
        return out;
    };
    at::Tensor estimate = s.clone();
    estimate[0] = filtered_copy(s[0]);
    onestep::BssEvalMedians fir = onestep::bsseval_medians(run_stream(s, estimate).targets[0]);
    CHECK(std::abs(fir.sdr - 10.0 * std::log10(1.0 / 0.0034)) < 0.2);
    CHECK(std::abs(fir.isr - fir.sdr) < 0.1);   // filtering is spatial distortion in images mode
    CHECK(fir.sir >= 40);
    CHECK(fir.sar >= 40);

    estimate[0] = filtered_copy(s[0]) + 0.1 * s[1];
    onestep::BssEvalMedians leaky = onestep::bsseval_medians(run_stream(s, estimate).targets[0]);
    CHECK(std::abs(leaky.sir - 20.0) < 0.3);
    CHECK(leaky.sir < fir.sir - 15);
    CHECK(leaky.sdr < fir.sdr);
    CHECK(leaky.sar >= 40);
}

TEST_CASE("bsseval streaming agrees across block sizes and with the whole-array paths (spec 1.6 item 8)",
          "[unit][bsseval]") {
    // 3 s plus a partial second, leakage and noise so that every metric is finite and nontrivial.
    at::Tensor s = make_sources(2, 3.2, 71);
    at::Tensor estimate = 0.8 * s + 0.2 * s.roll(1, 0) + 0.05 * make_sources(2, 3.2, 72);
    BssEvalResult small = run_stream(s, estimate, 1 << 12);
    BssEvalResult large = run_stream(s, estimate, 1 << 16);
    BssEvalResult whole = onestep::bsseval_reference(s, estimate, options());
    BssEvalResult fast = run_fast(s, estimate, 1 << 12);
    BssEvalResult fast_odd = run_fast(s, estimate, 777);   // blocks that split frames
    BssEvalResult fast_whole = onestep::csdr_reference(s, estimate, options());
    REQUIRE(small.frames == 3);
    REQUIRE(whole.frames == 3);
    for (int64_t j = 0; j < 2; ++j) {
        for (int64_t t = 0; t < 3; ++t) {
            INFO("target " << j << " frame " << t);
            const BssEvalFrameScores& reference = small.targets[j][t];
            for (const BssEvalResult* other : {&large, &whole}) {
                const BssEvalFrameScores& value = other->targets[j][t];
                CHECK(same(value.sdr, reference.sdr, 1e-9));
                CHECK(same(value.isr, reference.isr, 1e-9));
                CHECK(same(value.sir, reference.sir, 1e-9));
                CHECK(same(value.sar, reference.sar, 1e-9));
            }
            for (const BssEvalResult* other : {&fast, &fast_odd, &fast_whole}) {
                CHECK(same(other->targets[j][t].sdr, reference.sdr, 1e-9));
                CHECK(std::isnan(other->targets[j][t].sir));
            }
            CHECK(std::isfinite(reference.sir));
            CHECK(reference.sir < 20);   // the 0.2 leak is seen
        }
    }
}
