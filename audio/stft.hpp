// The STFT front end shared by the separators and the oracle masks (audio spec §3.1): periodic
// Hann window, reflect padding by n_fft/2, unnormalised, S = 1 + floor(T / hop) frames.
//
//   onestep::StftConfig config{2048, 512};
//   at::Tensor spectrum = onestep::stft(waveform, config);        // [..., T] -> complex [..., F, S]
//   at::Tensor back = onestep::istft(spectrum, config, T);         // [..., T]
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace onestep {

struct StftConfig {
    int64_t n_fft = 2048;
    int64_t hop = 512;
    int64_t window_length = 0;   // Hann length, centred in n_fft (0: n_fft)

    int64_t window() const { return window_length > 0 ? window_length : n_fft; }
    int64_t bins() const { return n_fft / 2 + 1; }
    int64_t frames(int64_t samples) const { return 1 + samples / hop; }
};

// Throws UserError unless n_fft is even and positive, the window fits in n_fft, and
// 0 < hop <= window / 2 (the overlap a periodic Hann window needs for overlap-add to invert).
// With INVERTIBLE false (an analysis-only STFT, e.g. a loss) any positive hop is accepted.
void check_stft_config(const StftConfig& config, bool invertible = true);

// Periodic Hann 0.5 - 0.5 cos(2 pi n / N), N = window(), in the dtype and on the device of LIKE.
at::Tensor stft_window(const StftConfig& config, const at::Tensor& like);

// SIGNAL [..., T] real (float or double) -> complex [..., bins, frames]. Signals of at most
// n_fft/2 samples are zero-padded first, since reflection needs more samples than it pads.
at::Tensor stft(const at::Tensor& signal, const StftConfig& config);

// SPECTRUM complex [..., bins, frames] -> real [..., LENGTH]: windowed overlap-add divided by
// the summed squared window, n_fft/2 cropped at the front.
at::Tensor istft(const at::Tensor& spectrum, const StftConfig& config, int64_t length);

}  // namespace onestep
