// ITU-R BS.1770-4 integrated loudness through libebur128, and the gain rules of the stems mix:
// per-source normalisation to a target loudness and one global gain that keeps every file safe.
//
//   double lufs = onestep::render::integrated_loudness(left, right, frames, 44100);
//   double g = onestep::render::loudness_gain(-13.0, lufs);
//   double G = onestep::render::mix_gain(mix_peak, {drums_peak, bass_peak, ...});
#pragma once
#include <cstdint>
#include <vector>

namespace onestep::render {

// Sources quieter than this are treated as silent (the BS.1770 absolute gate).
constexpr double kSilentLufs = -70.0;
// -1 dBFS: the mixture's peak after the global gain.
constexpr double kMixPeakLimit = 0.891251;
// Every stem file stays below full scale as well.
constexpr double kStemPeakLimit = 0.999;

// Integrated loudness in LUFS of the planar channels LEFT and RIGHT (FRAMES each, weight 1 each;
// RIGHT = nullptr for mono). -infinity for silence.
double integrated_loudness(const float* left, const float* right, int64_t frames, int64_t sample_rate);
double integrated_loudness(const double* left, const double* right, int64_t frames, int64_t sample_rate);

// 10^((target - measured) / 20).
double loudness_gain(double target_lufs, double measured_lufs);

// G = min(1, 0.891251 / peak(mix), 0.999 / max_k peak(stem_k)); zero peaks impose nothing.
double mix_gain(double mix_peak, const std::vector<double>& stem_peaks);

}  // namespace onestep::render
