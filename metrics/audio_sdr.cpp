// uSDR and SI-SDR from streaming float64 sums, plus the whole-array formulas they are tested against.
#include "metrics/audio_sdr.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace onestep {
namespace {

double pooled(const std::vector<double>& values) {
    double total = 0;
    for (double value : values) total += value;
    return total;
}

double decibels(double numerator, double denominator) { return 10.0 * std::log10(numerator / denominator); }

}  // namespace

SdrAccumulator::SdrAccumulator(int64_t channels)
    : channels_(channels),
      shift_reference_(channels, 0.0),
      shift_estimate_(channels, 0.0),
      sum_reference_(channels, 0.0),
      sum_estimate_(channels, 0.0),
      sum_reference_sq_(channels, 0.0),
      sum_estimate_sq_(channels, 0.0),
      sum_cross_(channels, 0.0),
      energy_reference_(channels, 0.0),
      energy_error_(channels, 0.0) {
    TORCH_CHECK(channels > 0, "SdrAccumulator needs at least one channel");
}

void SdrAccumulator::add(const at::Tensor& reference, const at::Tensor& estimate) {
    TORCH_CHECK(reference.dim() == 2 && reference.size(0) == channels_, "SdrAccumulator::add: reference must be [",
                channels_, ", n], got ", reference.sizes());
    TORCH_CHECK(estimate.sizes() == reference.sizes(), "SdrAccumulator::add: estimate ", estimate.sizes(),
                " and reference ", reference.sizes(), " differ");
    int64_t n = reference.size(1);
    if (n == 0) return;
    at::Tensor s = reference.detach().to(at::kCPU, at::kDouble);
    at::Tensor e = estimate.detach().to(at::kCPU, at::kDouble);
    if (frames_ == 0) {
        at::Tensor mean_s = s.mean(1), mean_e = e.mean(1);
        for (int64_t c = 0; c < channels_; ++c) {
            shift_reference_[c] = mean_s[c].item<double>();
            shift_estimate_[c] = mean_e[c].item<double>();
        }
    }
    auto options = at::TensorOptions().dtype(at::kDouble);
    at::Tensor sc = s - at::tensor(shift_reference_, options).unsqueeze(1);   // s - a
    at::Tensor ec = e - at::tensor(shift_estimate_, options).unsqueeze(1);    // s^ - b
    at::Tensor difference = s - e;
    at::Tensor sums = at::stack({sc.sum(1), ec.sum(1), (sc * sc).sum(1), (ec * ec).sum(1), (sc * ec).sum(1),
                                 (s * s).sum(1), (difference * difference).sum(1)})
                          .contiguous();
    const double* values = sums.data_ptr<double>();
    for (int64_t c = 0; c < channels_; ++c) {
        sum_reference_[c] += values[0 * channels_ + c];
        sum_estimate_[c] += values[1 * channels_ + c];
        sum_reference_sq_[c] += values[2 * channels_ + c];
        sum_estimate_sq_[c] += values[3 * channels_ + c];
        sum_cross_[c] += values[4 * channels_ + c];
        energy_reference_[c] += values[5 * channels_ + c];
        energy_error_[c] += values[6 * channels_ + c];
    }
    frames_ += n;
}

double SdrAccumulator::reference_energy() const { return pooled(energy_reference_); }
double SdrAccumulator::error_energy() const { return pooled(energy_error_); }

double SdrAccumulator::reference_power() const {
    return frames_ == 0 ? 0.0 : reference_energy() / (static_cast<double>(channels_) * static_cast<double>(frames_));
}

bool SdrAccumulator::silent_reference(double threshold) const { return reference_power() < threshold; }

double SdrAccumulator::usdr(double eps) const { return decibels(reference_energy() + eps, error_energy() + eps); }

double SdrAccumulator::si_sdr(double eps) const {
    // Centred sums: sum (x - mean)(y - mean) = sum (x - a)(y - b) - sum (x - a) sum (y - b) / T.
    double frames = static_cast<double>(std::max<int64_t>(frames_, 1));
    double reference = 0, estimate = 0, cross = 0;
    for (int64_t c = 0; c < channels_; ++c) {
        reference += std::max(0.0, sum_reference_sq_[c] - sum_reference_[c] * sum_reference_[c] / frames);
        estimate += std::max(0.0, sum_estimate_sq_[c] - sum_estimate_[c] * sum_estimate_[c] / frames);
        cross += sum_cross_[c] - sum_reference_[c] * sum_estimate_[c] / frames;
    }
    double alpha = reference > 0 ? cross / reference : 0.0;   // alpha = <s^, s> / |s|^2
    double target = alpha * alpha * reference;                 // |alpha s|^2
    // |alpha s - s^|^2 = alpha^2 |s|^2 - 2 alpha <s, s^> + |s^|^2, >= 0 up to rounding.
    double error = std::max(0.0, target - 2.0 * alpha * cross + estimate);
    return decibels(target + eps, error + eps);
}

SeparationScores separation_scores(const SdrAccumulator& estimate, const SdrAccumulator& mixture, double usdr_eps,
                                   double si_sdr_eps) {
    SeparationScores scores;
    scores.usdr = estimate.usdr(usdr_eps);
    scores.usdr_mix = mixture.usdr(usdr_eps);
    scores.sdri = scores.usdr - scores.usdr_mix;
    scores.si_sdr = estimate.si_sdr(si_sdr_eps);
    scores.si_sdr_mix = mixture.si_sdr(si_sdr_eps);
    scores.si_sdri = scores.si_sdr - scores.si_sdr_mix;
    scores.reference_power = estimate.reference_power();
    scores.silent_reference = estimate.silent_reference();
    return scores;
}

double usdr(const at::Tensor& reference, const at::Tensor& estimate, double eps) {
    TORCH_CHECK(reference.sizes() == estimate.sizes(), "usdr: shapes differ");
    at::Tensor s = reference.to(at::kDouble), e = estimate.to(at::kDouble);
    return decibels((s * s).sum().item<double>() + eps, ((s - e) * (s - e)).sum().item<double>() + eps);
}

double si_sdr(const at::Tensor& reference, const at::Tensor& estimate, double eps) {
    TORCH_CHECK(reference.sizes() == estimate.sizes() && reference.dim() == 2, "si_sdr: expected two equal [C, T]");
    at::Tensor s = reference.to(at::kDouble), e = estimate.to(at::kDouble);
    s = s - s.mean(1, true);
    e = e - e.mean(1, true);
    double energy = (s * s).sum().item<double>();
    double alpha = energy > 0 ? (s * e).sum().item<double>() / energy : 0.0;
    at::Tensor target = alpha * s;
    at::Tensor error = target - e;
    return decibels((target * target).sum().item<double>() + eps, (error * error).sum().item<double>() + eps);
}

}  // namespace onestep
