// A spectrogram picture of an audio excerpt, for checking rendered or separated audio by eye:
// log-magnitude STFT of the channel mean on a log-frequency axis, 80 dB range, magma colours.
//
//   onestep::SpectrogramOptions options;                  // start 0 s, 10 s, n_fft 2048, hop 512
//   onestep::write_spectrogram_png("song/mixture.wav", "/tmp/mixture.png", options);
#pragma once
#include <cstdint>
#include <string>

namespace onestep {

struct SpectrogramOptions {
    double start_seconds = 0;
    double seconds = 10;
    int64_t n_fft = 2048;
    int64_t hop = 512;
    double range_db = 80;
    // Rows log-spaced from MIN_HZ to Nyquist (musical pitch reads evenly); 0 rows = linear bins.
    int64_t rows = 512;
    double min_hz = 30;
};

// UserError naming the file when AUDIO_PATH cannot be read, the excerpt is empty, or the PNG
// cannot be written. The PNG appears atomically.
void write_spectrogram_png(const std::string& audio_path, const std::string& png_path, const SpectrogramOptions& options);

}  // namespace onestep
