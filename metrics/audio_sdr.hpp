// Source-separation scores of one (track, stem), audio spec §1.1 and §1.3: uSDR (MDX), SI-SDR,
// and their improvements over the mixture. Streaming: blocks are folded into float64 sums, so a
// track never has to be in memory; whole-array reference versions sit beside for the tests.
//
//   onestep::SdrAccumulator acc(2);                 // stereo
//   acc.add(reference_block, estimate_block);       // [2, n] each, block after block
//   double usdr = acc.usdr();                       // 10 log10((|s|^2 + eps) / (|s - s^|^2 + eps))
//   double si = acc.si_sdr();
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace onestep {

constexpr double kUsdrEps = 1e-7;             // MDX21/SDX23 and Demucs; MSST uses 1e-8
constexpr double kSiSdrEps = 1e-8;            // added to the two energies of the ratio only
constexpr double kSilentReferencePower = 1e-10;   // |s|^2 / (C T) below this: "silent_reference"

// Per-channel float64 sums over every block added so far. The length is never cropped here:
// both blocks must have the same shape; callers that accept unequal files crop before adding.
// The mean-removal sums are taken around the first block's channel means, which keeps the
// centred energies accurate for signals with a large DC offset.
class SdrAccumulator {
  public:
    explicit SdrAccumulator(int64_t channels);

    // REFERENCE s and ESTIMATE s^: [channels, n] of any floating dtype (n may differ per call).
    void add(const at::Tensor& reference, const at::Tensor& estimate);

    int64_t channels() const { return channels_; }
    int64_t frames() const { return frames_; }
    // |s|^2 and |s - s^|^2, channels pooled.
    double reference_energy() const;
    double error_energy() const;
    // |s|^2 / (C T); 0 before any sample.
    double reference_power() const;
    bool silent_reference(double threshold = kSilentReferencePower) const;

    // uSDR = 10 log10((|s|^2 + eps) / (|s - s^|^2 + eps)), channels pooled.
    double usdr(double eps = kUsdrEps) const;
    // SI-SDR after removing each channel's mean, channels pooled: alpha = <s^, s> / |s|^2,
    // 10 log10((|alpha s|^2 + eps) / (|alpha s - s^|^2 + eps)). A reference with no energy
    // after mean removal gets alpha = 0.
    double si_sdr(double eps = kSiSdrEps) const;

  private:
    int64_t channels_;
    int64_t frames_ = 0;
    std::vector<double> shift_reference_, shift_estimate_;   // first block's means per channel
    std::vector<double> sum_reference_, sum_estimate_;       // sum (s - a), sum (s^ - b)
    std::vector<double> sum_reference_sq_, sum_estimate_sq_; // sum (s - a)^2, sum (s^ - b)^2
    std::vector<double> sum_cross_;                          // sum (s - a)(s^ - b)
    std::vector<double> energy_reference_, energy_error_;    // sum s^2, sum (s - s^)^2 (uncentred)
};

// The scores of one estimate and of the mixture used as an estimate (the oracle floor).
struct SeparationScores {
    double usdr = 0, usdr_mix = 0, sdri = 0;            // SDRi = uSDR(s, s^) - uSDR(s, x)
    double si_sdr = 0, si_sdr_mix = 0, si_sdri = 0;     // SI-SDRi = SI-SDR(s, s^) - SI-SDR(s, x)
    double reference_power = 0;
    bool silent_reference = false;
};

// From the accumulators of (s, s^) and (s, x).
SeparationScores separation_scores(const SdrAccumulator& estimate, const SdrAccumulator& mixture,
                                   double usdr_eps = kUsdrEps, double si_sdr_eps = kSiSdrEps);

// Whole-array references (any float dtype, computed in float64): [channels, frames] each.
double usdr(const at::Tensor& reference, const at::Tensor& estimate, double eps = kUsdrEps);
double si_sdr(const at::Tensor& reference, const at::Tensor& estimate, double eps = kSiSdrEps);

}  // namespace onestep
