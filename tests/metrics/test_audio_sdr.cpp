// Closed-form checks of uSDR and SI-SDR (audio spec §1.6 items 1-4 and 8) on seeded float64
// signals, the streaming sums against the whole-array formulas, and the silent-reference flag.
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "metrics/audio_sdr.hpp"

namespace {

using onestep::SdrAccumulator;

constexpr int64_t kFrames = 441000;   // 10 s at 44.1 kHz

at::Tensor noise(int64_t channels, int64_t frames, uint64_t seed) {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    return torch::randn({channels, frames}, generator, torch::kDouble);
}

// Zero-mean (per channel, exactly) white noise with RMS 0.1: the spec's default signal.
at::Tensor default_signal(uint64_t seed = 1) {
    at::Tensor s = noise(2, kFrames, seed);
    s = s - s.mean(1, true);
    return s * (0.1 / s.pow(2).mean().sqrt().item<double>());
}

SdrAccumulator accumulate(const at::Tensor& reference, const at::Tensor& estimate, int64_t block) {
    SdrAccumulator accumulator(reference.size(0));
    for (int64_t start = 0; start < reference.size(1); start += block) {
        int64_t n = std::min(block, reference.size(1) - start);
        accumulator.add(reference.narrow(1, start, n), estimate.narrow(1, start, n));
    }
    return accumulator;
}

double relative(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

// n zero-mean per channel, <n, s> = 0 exactly (pooled), |n|^2 = |s|^2 10^(-snr/10).
at::Tensor orthogonal_noise(const at::Tensor& s, double snr_db, uint64_t seed) {
    at::Tensor n = noise(s.size(0), s.size(1), seed);
    n = n - n.mean(1, true);
    n = n - ((n * s).sum() / (s * s).sum()) * s;   // Gram-Schmidt; s is zero-mean, so n stays zero-mean
    double target = (s * s).sum().item<double>() * std::pow(10.0, -snr_db / 10.0);
    return n * std::sqrt(target / (n * n).sum().item<double>());
}

}  // namespace

TEST_CASE("a perfect estimate scores 10 log10((|s|^2 + eps) / eps) uSDR and >= 100 dB SI-SDR", "[unit]") {
    at::Tensor s = default_signal();
    SdrAccumulator accumulator = accumulate(s, s, 1 << 16);
    double energy = (s * s).sum().item<double>();
    CHECK(relative(accumulator.usdr(), 10 * std::log10((energy + 1e-7) / 1e-7)) < 1e-9);
    CHECK(accumulator.usdr() >= 100);
    CHECK(accumulator.si_sdr() >= 100);
    CHECK(relative(accumulator.usdr(1e-8), 10 * std::log10((energy + 1e-8) / 1e-8)) < 1e-9);
}

TEST_CASE("half the reference scores 6.0206 dB uSDR and >= 100 dB SI-SDR", "[unit]") {
    at::Tensor s = default_signal();
    SdrAccumulator accumulator = accumulate(s, 0.5 * s, 1 << 16);
    CHECK(std::abs(accumulator.usdr() - 6.0206) <= 1e-6);
    CHECK(accumulator.si_sdr() >= 100);
}

TEST_CASE("orthogonal noise at a given SNR gives uSDR = SI-SDR = SNR", "[unit]") {
    at::Tensor s = default_signal();
    for (double snr : {0.0, 10.0, 20.0}) {
        at::Tensor estimate = s + orthogonal_noise(s, snr, 7);
        SdrAccumulator accumulator = accumulate(s, estimate, 1 << 16);
        INFO("SNR " << snr);
        CHECK(std::abs(accumulator.usdr() - snr) <= 1e-6);
        CHECK(std::abs(accumulator.si_sdr() - snr) <= 1e-6);
        CHECK(std::abs(onestep::usdr(s, estimate) - snr) <= 1e-6);
        CHECK(std::abs(onestep::si_sdr(s, estimate) - snr) <= 1e-6);
    }
}

TEST_CASE("SI-SDR is invariant to scaling the estimate, sign included; uSDR is not", "[unit]") {
    at::Tensor s = default_signal();
    at::Tensor estimate = s + orthogonal_noise(s, 10, 3);
    double base = accumulate(s, estimate, 1 << 16).si_sdr();
    for (double c : {-1.0, 3.7}) {
        INFO("c = " << c);
        CHECK(std::abs(accumulate(s, c * estimate, 1 << 16).si_sdr() - base) <= 1e-9);
    }
    // The 1e-8 added to the energies is not scaled with the estimate: at c = 0.01 the energies
    // are ~1 and it moves the score by ~5e-7 dB. Without it the invariance is exact.
    SdrAccumulator small = accumulate(s, 0.01 * estimate, 1 << 16);
    SdrAccumulator unscaled = accumulate(s, estimate, 1 << 16);
    CHECK(std::abs(small.si_sdr(0.0) - unscaled.si_sdr(0.0)) <= 1e-9);
    CHECK(std::abs(small.si_sdr() - base) <= 1e-6);
    CHECK(std::abs(accumulate(s, 3.7 * estimate, 1 << 16).usdr() - accumulate(s, estimate, 1 << 16).usdr()) > 1.0);
}

TEST_CASE("streaming sums agree with the whole-array formulas for any block size", "[unit]") {
    // Uneven length, DC offsets and a partly correlated estimate exercise the mean removal.
    at::Tensor s = noise(2, kFrames + 1234, 11) * 0.1 + 0.03;
    at::Tensor estimate = 0.8 * s + 0.05 * noise(2, kFrames + 1234, 12) - 0.2;
    double whole_usdr = onestep::usdr(s, estimate);
    double whole_si_sdr = onestep::si_sdr(s, estimate);
    for (int64_t block : {int64_t{1} << 12, int64_t{1} << 16, int64_t{1} << 20}) {
        INFO("block " << block);
        SdrAccumulator accumulator = accumulate(s, estimate, block);
        CHECK(accumulator.frames() == kFrames + 1234);
        CHECK(relative(accumulator.usdr(), whole_usdr) < 1e-9);
        CHECK(relative(accumulator.si_sdr(), whole_si_sdr) < 1e-9);
    }
    // A large offset (first block's means as the shift) keeps the centred sums accurate.
    at::Tensor offset = s + 50.0;
    at::Tensor offset_estimate = estimate + 80.0;
    CHECK(relative(accumulate(offset, offset_estimate, 1 << 12).si_sdr(), whole_si_sdr) < 1e-8);
}

TEST_CASE("a silent reference is flagged and still scores finite numbers", "[unit]") {
    at::Tensor quiet = default_signal() * 1e-5;   // power 1e-12 < 1e-10
    at::Tensor estimate = default_signal(2);
    SdrAccumulator with_estimate = accumulate(quiet, estimate, 1 << 14);
    SdrAccumulator with_mixture = accumulate(quiet, quiet + estimate, 1 << 14);
    CHECK(with_estimate.silent_reference());
    onestep::SeparationScores scores = onestep::separation_scores(with_estimate, with_mixture);
    CHECK(scores.silent_reference);
    CHECK(std::isfinite(scores.usdr));
    CHECK(std::isfinite(scores.si_sdr));
    CHECK(scores.usdr < -90);   // 10 log10((8.8e-7 + 1e-7) / 8820)

    at::Tensor zeros = torch::zeros({2, 1000}, torch::kDouble);
    SdrAccumulator all_zero = accumulate(zeros, estimate.narrow(1, 0, 1000), 256);
    CHECK(all_zero.silent_reference());
    CHECK(std::isfinite(all_zero.usdr()));
    CHECK(std::isfinite(all_zero.si_sdr()));
    CHECK_FALSE(accumulate(estimate, estimate, 1 << 16).silent_reference());
}

TEST_CASE("separation scores subtract the mixture's scores", "[unit]") {
    at::Tensor s = default_signal(1);
    at::Tensor other = default_signal(2);
    at::Tensor estimate = s + orthogonal_noise(s, 12, 5);
    onestep::SeparationScores scores =
        onestep::separation_scores(accumulate(s, estimate, 1 << 16), accumulate(s, s + other, 1 << 16));
    CHECK(std::abs(scores.usdr_mix - onestep::usdr(s, s + other)) < 1e-9);
    CHECK(std::abs(scores.sdri - (scores.usdr - scores.usdr_mix)) < 1e-12);
    CHECK(std::abs(scores.si_sdri - (scores.si_sdr - scores.si_sdr_mix)) < 1e-12);
    CHECK(std::abs(scores.usdr_mix) < 0.1);   // equal-power independent sources: ~0 dB
    CHECK(scores.sdri > 11);
}
