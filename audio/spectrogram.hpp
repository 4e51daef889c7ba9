// A spectrogram picture of an audio excerpt, for checking rendered or separated audio by eye:
// log-magnitude STFT of the channel mean, 80 dB range, magma colours, low frequencies at the bottom.
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
};

// UserError naming the file when AUDIO_PATH cannot be read, the excerpt is empty, or the PNG
// cannot be written. The PNG appears atomically.
void write_spectrogram_png(const std::string& audio_path, const std::string& png_path, const SpectrogramOptions& options);

}  // namespace onestep
