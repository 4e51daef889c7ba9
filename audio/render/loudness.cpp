// BS.1770-4 integrated loudness via libebur128 (fed in interleaved blocks) and the mix gain rules.
#include "audio/render/loudness.hpp"

#include <ebur128.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace onestep::render {
namespace {

template <typename Sample>
double loudness_of(const std::vector<const Sample*>& channels, int64_t frames, int64_t sample_rate) {
    const size_t channel_count = channels.size();
    if (channel_count < 1 || channel_count > 2)
        throw std::invalid_argument("integrated_loudness: 1 or 2 channels, got " + std::to_string(channel_count));
    ebur128_state* raw = ebur128_init(static_cast<unsigned>(channel_count), static_cast<unsigned long>(sample_rate),
                                      EBUR128_MODE_I);
    if (raw == nullptr) throw std::runtime_error("libebur128: cannot initialise at " + std::to_string(sample_rate) + " Hz");
    std::unique_ptr<ebur128_state, void (*)(ebur128_state*)> state(raw, [](ebur128_state* s) { ebur128_destroy(&s); });
    constexpr int64_t kBlock = 1 << 14;
    std::vector<Sample> interleaved(kBlock * channel_count);
    for (int64_t start = 0; start < frames; start += kBlock) {
        int64_t count = std::min(kBlock, frames - start);
        for (int64_t i = 0; i < count; ++i)
            for (size_t c = 0; c < channel_count; ++c) interleaved[i * channel_count + c] = channels[c][start + i];
        int status;
        if constexpr (std::is_same_v<Sample, float>)
            status = ebur128_add_frames_float(state.get(), interleaved.data(), static_cast<size_t>(count));
        else
            status = ebur128_add_frames_double(state.get(), interleaved.data(), static_cast<size_t>(count));
        if (status != EBUR128_SUCCESS) throw std::runtime_error("libebur128: add_frames failed");
    }
    double lufs = 0;
    if (ebur128_loudness_global(state.get(), &lufs) != EBUR128_SUCCESS)
        throw std::runtime_error("libebur128: loudness_global failed");
    return std::isfinite(lufs) ? lufs : -std::numeric_limits<double>::infinity();
}

}  // namespace

double integrated_loudness(const float* left, const float* right, int64_t frames, int64_t sample_rate) {
    return right ? loudness_of<float>({left, right}, frames, sample_rate) : loudness_of<float>({left}, frames, sample_rate);
}

double integrated_loudness(const double* left, const double* right, int64_t frames, int64_t sample_rate) {
    return right ? loudness_of<double>({left, right}, frames, sample_rate) : loudness_of<double>({left}, frames, sample_rate);
}

double loudness_gain(double target_lufs, double measured_lufs) {
    return std::pow(10.0, (target_lufs - measured_lufs) / 20.0);
}

double mix_gain(double mix_peak, const std::vector<double>& stem_peaks) {
    double gain = 1.0;
    if (mix_peak > 0) gain = std::min(gain, kMixPeakLimit / mix_peak);
    double stem_peak = 0;
    for (double peak : stem_peaks) stem_peak = std::max(stem_peak, peak);
    if (stem_peak > 0) gain = std::min(gain, kStemPeakLimit / stem_peak);
    return gain;
}

}  // namespace onestep::render
